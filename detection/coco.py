"""The converter's COCO ground truth, and box mAP of detections by pycocotools' COCOeval.

:func:`coco_map` is the cross-check of ultralytics' own mAP in
:mod:`detection.evaluate`: the same boxes, scored by the reference evaluator.
The two mAP50 agree closely but not exactly: ultralytics integrates the
interpolated precision-recall curve over 101 recall points with the trapezoid
rule, COCO averages the precision envelope at 101 recall points; and each
matches detections to ground truth in its own order (ultralytics by IoU, COCO
greedily by score). Perfect detections score 1.0 in COCOeval but 0.995 in
ultralytics, whose curve drops to precision 0 at recall 1 (a sentinel point).
COCO keeps the top ``max_det`` detections per image, set to ultralytics' 300
(COCO's own default is 100).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.io import read_json_object
from detection.detections import ImageDetections


def default_coco_file(data_yaml: Path, split: str) -> Path:
    """The converter's ``annotations/instances_<split>.json`` beside ``data.yaml``."""
    return data_yaml.parent / "annotations" / f"instances_{split}.json"


def read_coco(path: Path) -> dict:
    """A COCO instances file (``images``, ``annotations``, ``categories``); one-line errors naming it."""
    coco = read_json_object(path, what="COCO file")
    if not all(key in coco for key in ("images", "annotations", "categories")):
        raise UserError(f"{path} is not a COCO instances file (needs images, annotations, categories)")
    return coco


def coco_detections(coco: Mapping, detections: Mapping[str, ImageDetections]) -> list[dict]:
    """Detections as COCO results (``bbox`` xywh, ``category_id`` = class id + 1, the converter's ids)."""
    ids = {Path(image["file_name"]).name: image["id"] for image in coco["images"]}
    results = []
    for file_name, found in detections.items():
        if file_name not in ids:
            raise UserError(f"detections for {file_name}, which the COCO file does not list")
        for (x1, y1, x2, y2), score, cls in zip(found.boxes, found.scores, found.classes, strict=True):
            results.append(
                {
                    "image_id": ids[file_name],
                    "category_id": int(cls) + 1,
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                    "score": float(score),
                }
            )
    return results


def coco_map(coco: Mapping, detections: Mapping[str, ImageDetections], *, max_det: int = 300) -> dict:
    """pycocotools' box mAP50 and mAP50-95 of ``detections`` against the ground truth ``coco``.

    Read from COCOeval's accumulated precision table (IoU x recall x class x area x
    max-dets) at area ``all`` and ``max_det``, the numbers ``summarize()`` prints
    (which hard-codes 100 detections for its first line).

    Returns:
        ``{"mAP50", "mAP50-95", "n_detections", "per_class": {name: {"AP50", "AP50-95"}}}``.
    """
    results = coco_detections(coco, detections)
    if not results or not coco["annotations"]:
        return {"mAP50": 0.0, "mAP50-95": 0.0, "n_detections": len(results), "per_class": {}}
    precision, iou_thresholds, category_ids = _coco_precision(coco, results, max_det=max_det)
    at50 = np.isclose(iou_thresholds, 0.5)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    per_class = {
        names[category]: {
            "AP50": _mean_valid(precision[at50, :, k]),
            "AP50-95": _mean_valid(precision[:, :, k]),
        }
        for k, category in enumerate(category_ids)
        if (precision[:, :, k] > -1).any()
    }
    return {
        "mAP50": _mean_valid(precision[at50]),
        "mAP50-95": _mean_valid(precision),
        "n_detections": len(results),
        "per_class": per_class,
    }


def _coco_precision(
    coco: Mapping, results: list[dict], *, max_det: int
) -> tuple[np.ndarray, np.ndarray, list]:
    """COCOeval's precision table at area ``all`` and ``max_det``, with its IoU thresholds and class ids.

    Returns:
        ``(T, R, K)`` precision (IoU threshold x recall point x class; -1 where a class has no
        ground truth), the ``(T,)`` IoU thresholds and the ``K`` COCO category ids.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground_truth = COCO()
        ground_truth.dataset = json.loads(json.dumps(coco))  # loadRes mutates; keep the caller's copy
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), "bbox")
        evaluation.params.imgIds = sorted(image["id"] for image in coco["images"])
        evaluation.params.maxDets = [1, 10, max_det]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    return precision, evaluation.params.iouThrs, list(evaluation.params.catIds)


def _mean_valid(values: np.ndarray) -> float:
    """Mean over the entries COCOeval filled (it writes -1 where a class has no ground truth)."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else 0.0
