"""Scoring COCO results against a converters' COCO file with pycocotools' COCOeval: one wrapper for all.

Box AP (detection), mask AP (segmentation, the inspection cascade) and their
precision-recall curves are all read from COCOeval's accumulated precision
table (IoU threshold x recall point x class x area x max-dets) at area ``all``:
the numbers ``COCOeval.summarize()`` prints, per class as well, without its
printing and without running the evaluation once per class.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from common.coco import coco_index

#: COCO's own cap on detections per image in its headline AP.
COCO_MAX_DET = 100
IOU_TYPES = ("bbox", "segm")


@dataclass(frozen=True)
class PrecisionTable:
    """COCOeval's precision at area ``all`` and one max-dets setting.

    Attributes:
        precision: ``(T, R, K)`` precision per IoU threshold, recall point and class;
            -1 where a class has no ground truth.
        iou_thresholds: ``(T,)``, 0.50 to 0.95.
        recall: ``(R,)`` the 101 recall points.
        category_ids: the ``K`` COCO category ids.
        names: category id -> name.
    """

    precision: np.ndarray
    iou_thresholds: np.ndarray
    recall: np.ndarray
    category_ids: list[int]
    names: dict[int, str]

    def ap(self, *, category: int | None = None, iou: float | None = None) -> float:
        """Mean precision over recall points, IoU thresholds (or only ``iou``) and classes (or one).

        NaN when nothing was filled: no ground truth (of ``category``), where COCOeval defines no AP
        (``null`` in the JSON records, ``-`` in the tables, :func:`common.tables.fmt`). It was 0.0, which
        read as a model that missed every instance of a split that had none.

        Raises:
            ValueError: ``iou`` is not one of :attr:`iou_thresholds` (it averaged nothing: 0.0 too).
        """
        table = self.precision
        if iou is not None:
            at = np.isclose(self.iou_thresholds, iou)
            if not at.any():
                raise ValueError(
                    f"iou={iou} is not one of COCOeval's thresholds {self.iou_thresholds.tolist()}"
                )
            table = table[at]
        if category is not None:
            table = table[:, :, self.category_ids.index(category)]
        valid = table[table > -1]
        return float(valid.mean()) if valid.size else float("nan")

    def has_ground_truth(self, category: int) -> bool:
        return bool((self.precision[:, :, self.category_ids.index(category)] > -1).any())

    def summary(self) -> dict:
        """``{"AP", "AP50", "per_class": {name: {"AP", "AP50"}}}`` (classes with ground truth only; AP and
        AP50 NaN without any, :meth:`ap`)."""
        return {
            "AP": self.ap(),
            "AP50": self.ap(iou=0.5),
            "per_class": {
                self.names[c]: {"AP": self.ap(category=c), "AP50": self.ap(category=c, iou=0.5)}
                for c in self.category_ids
                if self.has_ground_truth(c)
            },
        }

    def pr_curve(self, *, iou: float = 0.5, category: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(recall, precision)`` at one IoU threshold, averaged over classes with ground truth.

        Precision is NaN at every recall point (a plot draws nothing) when no class, or not
        ``category``, has ground truth: COCOeval defines no curve there (it read 0, as if every
        prediction were wrong, on a split of good images alone).
        """
        table = self.precision[np.isclose(self.iou_thresholds, iou)][0]  # (R, K)
        if category is not None:
            table = table[:, [self.category_ids.index(category)]]
        table = table[:, (table > -1).any(axis=0)]
        precision = table.mean(axis=1) if table.size else np.full(len(self.recall), np.nan)
        return self.recall.copy(), np.clip(precision, 0.0, 1.0)


def precision_table(
    ground_truth: Mapping,
    results: Sequence[Mapping],
    *,
    iou_type: str = "bbox",
    max_det: int = COCO_MAX_DET,
    image_ids: Sequence[int] | None = None,
) -> PrecisionTable:
    """Runs COCOeval and returns its precision table.

    Args:
        ground_truth: a COCO instances dict (``images``, ``annotations``, ``categories``); not modified.
        results: COCO results (``image_id``, ``category_id``, ``score``, and ``bbox`` or
            ``segmentation``); not modified. May be empty: every filled entry is then 0.
        iou_type: ``bbox`` or ``segm``.
        max_det: detections kept per image (COCO's headline AP uses 100, ultralytics 300).
        image_ids: the images evaluated (default, ``None``: all of ``ground_truth``, so images without
            results count their ground truth as missed). An empty list scores no image: the table
            is then that of no ground truth (every entry -1, :meth:`PrecisionTable.pr_curve` NaN).
    """
    from pycocotools.cocoeval import COCOeval

    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = coco_index(copy.deepcopy(dict(ground_truth)))  # loadRes mutates; keep the caller's copy
        _complete(gt)
        dt = gt.loadRes(copy.deepcopy(list(results))) if results else _empty_results(gt)
        evaluation = COCOeval(gt, dt, iou_type)
        if image_ids is None:
            image_ids = [image["id"] for image in ground_truth["images"]]
        evaluation.params.imgIds = sorted(image_ids)
        evaluation.params.maxDets = [1, 10, max_det]
        evaluation.evaluate()
        evaluation.accumulate()
    return PrecisionTable(
        precision=evaluation.eval["precision"][:, :, :, 0, -1],
        iou_thresholds=np.asarray(evaluation.params.iouThrs),
        recall=np.asarray(evaluation.params.recThrs),
        category_ids=list(evaluation.params.catIds),
        names={c["id"]: c["name"] for c in ground_truth["categories"]},
    )


def _complete(gt) -> None:
    """Fills in the ``iscrowd`` (0) and ``area`` a COCO file written by hand or by another tool may leave
    out, as every annotation of COCO's own files has them: COCOeval read both with a bare ``KeyError``.

    ``area`` is the mask's pixel count (COCO's definition), the box's for an annotation without a mask.
    """
    from pycocotools import mask as mask_utils

    for annotation in gt.dataset.get("annotations", []):  # the same dicts as gt.anns
        annotation.setdefault("iscrowd", 0)
        if "area" not in annotation:
            if annotation.get("segmentation"):
                annotation["area"] = float(mask_utils.area(gt.annToRLE(annotation)))
            else:
                annotation["area"] = float(annotation["bbox"][2] * annotation["bbox"][3])


def one_class(
    ground_truth: Mapping, results: Sequence[Mapping], *, name: str = "defect"
) -> tuple[dict, list[dict]]:
    """``ground_truth`` and ``results`` with every category merged into one (id 1, ``name``): copies.

    Scored with :func:`precision_table`, a prediction then matches any true instance whatever the
    class either names (class-agnostic AP, as ultralytics' ``single_cls``): how well defects are
    found and outlined, apart from how well they are told apart. Results of a category the ground
    truth lacks (the inspection cascade's ``anomaly`` regions) count as well. Instances are pooled,
    not averaged per class, so it may fall below the per-class AP.
    """
    truth = {
        **ground_truth,
        "categories": [{"id": 1, "name": name}],
        "annotations": [{**a, "category_id": 1} for a in ground_truth.get("annotations", [])],
    }
    return truth, [{**r, "category_id": 1} for r in results]


def _empty_results(gt):
    """Results without detections (``loadRes`` refuses an empty list; a bare ``COCO()`` has no keys)."""
    return coco_index({**gt.dataset, "annotations": []})
