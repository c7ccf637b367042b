"""Scores detection weights on a converted split: ultralytics' mAP, COCOeval cross-check, image-level figures.

    python -m detection.evaluate --data datasets/metal_nut/data.yaml --weights runs/detect/RUN/weights/best.pt

Three views of the same detections:

1. **Box mAP from ultralytics' own validator** (``DetectionValidator``: mAP50,
   mAP50-95, per-class AP, precision, recall), exactly what ``yolo val`` prints.
2. **The same boxes scored by pycocotools' COCOeval** against the converter's
   ``annotations/instances_<split>.json``. The validator's detections are
   recorded per image in original pixels (:class:`RecordingValidator`), so both
   evaluators see identical boxes. The two mAP50 agree closely but not exactly:
   ultralytics integrates the interpolated precision-recall curve over 101
   recall points with the trapezoid rule, COCO averages the precision envelope
   at 101 recall points; and each matches detections to ground truth in its own
   order (ultralytics by IoU, COCO greedily by score). Perfect detections score
   1.0 in COCOeval but 0.995 in ultralytics, whose curve drops to precision 0 at
   recall 1 (a sentinel point), so expect ultralytics up to 0.005 lower near the
   top. COCO keeps the top ``max_det`` detections per image, set here to
   ultralytics' 300 (COCO's own default is 100).
3. **Image-level figures**, which classification and anomaly-detection
   baselines report: the image's class is the class of its top box with score
   >= ``conf``, ``good`` if there is none; defect-type accuracy over good + each
   defect type, with its confusion matrix; and anomaly AUROC with the image's
   top box score (0 without boxes) as its anomaly score. The ground-truth class
   of an image is that of its largest instance (MVTec images hold one defect
   type), ``good`` without instances.

With ``--tile N`` the detections come from tiled inference
(:func:`detection.tiling.predict_tiled`: overlapping ``N``-px windows of the
original image, each letterboxed to ``imgsz``, boxes merged back) for a model
trained with ``tile=N``; they are scored by the same validator, COCOeval and
image-level code (:class:`TiledRecordingValidator`).

Results: printed tables and ``evaluation.json`` in the output folder (with
ultralytics' PR-curve and confusion-matrix plots).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from ultralytics.data.augment import LetterBox
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils import ops

from common.errors import UserError
from common.fonts import ensure_ultralytics_fonts
from detection.data import data_names, read_data_yaml
from detection.detections import ImageDetections
from detection.tiling import predict_tiled

GOOD = "good"


class RecordingValidator(DetectionValidator):
    """ultralytics' ``DetectionValidator`` that also keeps each image's detections, in original pixels.

    Nothing about scoring changes; :attr:`detections` maps an image's file name to
    the boxes the validator scored (after NMS, before any confidence threshold
    other than the validator's own ``conf``).
    """

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        self.detections: dict[str, ImageDetections] = {}

    def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        super().update_metrics(preds, batch)
        for si, pred in enumerate(preds):
            pbatch = self._prepare_batch(si, batch)
            scaled = self.scale_preds(pred, pbatch)
            self.detections[Path(pbatch["im_file"]).name] = ImageDetections(
                boxes=scaled["bboxes"].detach().float().cpu().numpy().reshape(-1, 4),
                scores=pred["conf"].detach().float().cpu().numpy(),
                classes=pred["cls"].detach().cpu().numpy().astype(int),
            )


class TiledRecordingValidator(RecordingValidator):
    """A :class:`RecordingValidator` that scores detections from tiled inference.

    For each image of a batch the original file is read again and cut into
    overlapping ``tile``-px windows; the model runs on the windows (each
    letterboxed to ``imgsz``, NMS with the validator's ``conf``/``iou``), the boxes are
    merged back (:func:`detection.tiling.predict_tiled`) and mapped into the
    batch's letterboxed frame, where ultralytics matches them with the ground
    truth as usual. ultralytics' loop still runs the model on the whole image
    first; that output is discarded (one extra forward pass per image).

    Attributes:
        tile, tile_overlap: window side in pixels and overlap fraction.
        merge_iou: NMS threshold when merging windows.
    """

    tile: int = 640
    tile_overlap: float = 0.2
    merge_iou: float = 0.5

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        self.tile_model = model

    def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        tiled = []
        for si in range(len(preds)):
            pbatch = self._prepare_batch(si, batch)
            image = cv2.imread(pbatch["im_file"], cv2.IMREAD_COLOR)
            if image is None:
                raise UserError(f"cannot read image {pbatch['im_file']}")
            found = self.tile_detections(image, pbatch["im_file"])
            # the inverse of ops.scale_boxes(imgsz, boxes, ori_shape, ratio_pad): original -> letterboxed
            gain, (pad_x, pad_y) = pbatch["ratio_pad"][0][0], pbatch["ratio_pad"][1]
            boxes = (
                torch.as_tensor(found.boxes, dtype=torch.float32, device=self.device).reshape(-1, 4) * gain
            )
            boxes += torch.tensor([pad_x, pad_y, pad_x, pad_y], dtype=torch.float32, device=self.device)
            tiled.append(
                {
                    "bboxes": boxes,
                    "conf": torch.as_tensor(found.scores, dtype=torch.float32, device=self.device),
                    "cls": torch.as_tensor(found.classes, dtype=torch.float32, device=self.device),
                    "extra": torch.zeros((len(boxes), 0), device=self.device),
                }
            )
        super().update_metrics(tiled, batch)

    def tile_detections(self, image: np.ndarray, im_file: str) -> ImageDetections:
        """Merged detections of one ``(H, W, 3)`` BGR image in its pixels (``im_file`` names it)."""
        return predict_tiled(
            image,
            self.predict_tiles,
            tile=self.tile,
            overlap=self.tile_overlap,
            iou=self.merge_iou,
            batch=max(1, int(self.args.batch)),
            max_det=int(self.args.max_det),
        )

    def predict_tiles(self, tiles: list[np.ndarray], windows: np.ndarray) -> list[ImageDetections]:
        """The model on BGR tiles letterboxed to ``imgsz``: NMS'd boxes in tile pixels."""
        size = self.args.imgsz if isinstance(self.args.imgsz, int) else max(self.args.imgsz)
        letterbox = LetterBox(new_shape=(size, size), auto=False)
        batch = np.stack([letterbox(image=tile) for tile in tiles])[..., ::-1].transpose(0, 3, 1, 2)
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).float() / 255
        if self.args.quantize == 16:
            x = x.half()
        with torch.inference_mode():
            preds = self.postprocess(self.tile_model(x))
        found = []
        for pred, tile in zip(preds, tiles, strict=True):
            boxes = ops.scale_boxes((size, size), pred["bboxes"].clone().float(), tile.shape[:2])
            found.append(
                ImageDetections(
                    boxes=boxes.cpu().numpy().reshape(-1, 4),
                    scores=pred["conf"].float().cpu().numpy(),
                    classes=pred["cls"].cpu().numpy().astype(int),
                )
            )
        return found


# --- image-level metrics (pure) ------------------------------------------------------------------


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve: the probability that a positive outscores a negative (ties count half).

    Computed from average ranks (Mann-Whitney U), exact with ties. NaN when
    either class is absent.

    >>> auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
    0.75
    """
    scores = np.asarray(scores, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    sorted_scores = scores[order]
    # average rank (1-based) of each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def confusion_matrix(true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """``(L, L)`` int counts, rows = true label, columns = predicted label, in ``labels`` order.

    >>> confusion_matrix(["good", "cut", "cut"], ["good", "good", "cut"], ["good", "cut"]).tolist()
    [[1, 0], [1, 1]]
    """
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(true, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    return matrix


def image_prediction(
    detections: ImageDetections | None, names: Sequence[str], conf: float
) -> tuple[str, float]:
    """``(predicted label, anomaly score)`` of one image: the top box's class if its score >= ``conf``.

    The anomaly score is the top box score whatever ``conf`` (0 without boxes),
    so AUROC does not depend on the threshold.
    """
    if detections is None or len(detections.scores) == 0:
        return GOOD, 0.0
    top = int(np.argmax(detections.scores))
    score = float(detections.scores[top])
    return (names[int(detections.classes[top])] if score >= conf else GOOD), score


def image_labels(coco: Mapping) -> dict[str, str]:
    """Ground-truth label per image file name (basename): its largest instance's class, ``good`` if none."""
    categories = {c["id"]: c["name"] for c in coco["categories"]}
    largest: dict[int, tuple[float, str]] = {}
    for ann in coco["annotations"]:
        area = float(ann.get("area", ann["bbox"][2] * ann["bbox"][3]))
        if ann["image_id"] not in largest or area > largest[ann["image_id"]][0]:
            largest[ann["image_id"]] = (area, categories[ann["category_id"]])
    return {
        Path(image["file_name"]).name: largest.get(image["id"], (0.0, GOOD))[1] for image in coco["images"]
    }


@dataclass
class ImageLevelReport:
    """Image-level figures. ``matrix`` rows are true labels, columns predicted, both in ``labels`` order."""

    labels: list[str]
    matrix: list[list[int]]
    accuracy: float
    balanced_accuracy: float
    per_label_accuracy: dict[str, float]
    auroc: float
    conf: float
    n_images: int


def image_level_report(
    true: Mapping[str, str], detections: Mapping[str, ImageDetections], names: Sequence[str], conf: float
) -> ImageLevelReport:
    """Defect-type accuracy, confusion matrix and anomaly AUROC over the images in ``true``."""
    files = sorted(true)
    predicted, scores = zip(*(image_prediction(detections.get(f), names, conf) for f in files), strict=True)
    truth = [true[f] for f in files]
    labels = [GOOD, *names]
    matrix = confusion_matrix(truth, predicted, labels)
    rows = matrix.sum(axis=1)
    per_label = {label: float(matrix[i, i] / rows[i]) for i, label in enumerate(labels) if rows[i]}
    return ImageLevelReport(
        labels=labels,
        matrix=matrix.tolist(),
        accuracy=float(np.trace(matrix) / max(len(files), 1)),
        balanced_accuracy=float(np.mean(list(per_label.values()))) if per_label else float("nan"),
        per_label_accuracy=per_label,
        auroc=auroc(scores, [t != GOOD for t in truth]),
        conf=conf,
        n_images=len(files),
    )


# --- COCOeval cross-check ------------------------------------------------------------------------


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
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = coco_detections(coco, detections)
    if not results or not coco["annotations"]:
        return {"mAP50": 0.0, "mAP50-95": 0.0, "n_detections": len(results), "per_class": {}}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground_truth = COCO()
        ground_truth.dataset = json.loads(json.dumps(coco))  # loadRes mutates; keep the caller's copy
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), "bbox")
        evaluation.params.imgIds = sorted(image["id"] for image in coco["images"])
        evaluation.params.maxDets = [1, 10, max_det]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # (IoU, recall, class), -1 = no ground truth
    at50 = np.isclose(evaluation.params.iouThrs, 0.5)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    per_class = {}
    for k, category in enumerate(evaluation.params.catIds):
        if (precision[:, :, k] > -1).any():
            per_class[names[category]] = {
                "AP50": _mean_valid(precision[at50, :, k]),
                "AP50-95": _mean_valid(precision[:, :, k]),
            }
    return {
        "mAP50": _mean_valid(precision[at50]),
        "mAP50-95": _mean_valid(precision),
        "n_detections": len(results),
        "per_class": per_class,
    }


def _mean_valid(values: np.ndarray) -> float:
    """Mean over the entries COCOeval filled (it writes -1 where a class has no ground truth)."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else 0.0


# --- the whole evaluation ------------------------------------------------------------------------


@dataclass
class EvaluationReport:
    """Everything :func:`evaluate` measured (also written as ``evaluation.json``)."""

    weights: str
    data: str
    split: str
    ultralytics: dict[str, float]
    per_class: list[dict[str, Any]]
    coco: dict[str, float] | None
    image_level: ImageLevelReport
    save_dir: str
    notes: list[str] = field(default_factory=list)
    tiling: dict[str, float] | None = None


def default_coco_file(data_yaml: Path, split: str) -> Path:
    """The converter's ``annotations/instances_<split>.json`` beside ``data.yaml``."""
    return data_yaml.parent / "annotations" / f"instances_{split}.json"


def read_coco(path: Path) -> dict:
    try:
        coco = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read COCO file {path}: {' '.join(str(error).split())}") from None
    if not all(key in coco for key in ("images", "annotations", "categories")):
        raise UserError(f"{path} is not a COCO instances file (needs images, annotations, categories)")
    return coco


def yolo_labels(validator: RecordingValidator, names: Sequence[str]) -> dict[str, str]:
    """Ground-truth image labels from the YOLO label files the validator read (when there is no COCO file)."""
    labels = {}
    for label in validator.dataloader.dataset.labels:
        classes, areas = label["cls"].reshape(-1).astype(int), label["bboxes"][:, 2] * label["bboxes"][:, 3]
        labels[Path(label["im_file"]).name] = names[classes[int(np.argmax(areas))]] if len(classes) else GOOD
    return labels


def evaluate(
    data: str | Path,
    weights: Any,
    *,
    split: str = "test",
    conf: float = 0.25,
    coco_file: str | Path | None = None,
    imgsz: int = 640,
    batch: int = 16,
    device: str | None = None,
    out: str | Path | None = None,
    plots: bool = True,
    tile: int | None = None,
    tile_overlap: float = 0.2,
    validator_class: type[RecordingValidator] | None = None,
) -> EvaluationReport:
    """Runs ultralytics' validator on ``split`` and derives the COCOeval and image-level figures.

    Args:
        data: the converter's ``data.yaml``.
        weights: ``best.pt`` of a run (YOLO-World or plain YOLO), or a loaded ``torch.nn.Module``.
        split: ``train``, ``val`` or ``test``.
        conf: box score from which an image is called defective (image-level figures only;
            mAP uses the validator's own 0.001 like ``yolo val``).
        coco_file: ground truth for the cross-check; default the converter's
            ``annotations/instances_<split>.json`` (skipped with a note when absent).
        imgsz, batch, device: as in ``yolo val``.
        out: output folder, used as given; default ``runs/detect/evaluate`` (numbered when taken).
        plots: ultralytics' PR curves and confusion matrix.
        tile: tiled inference with windows of this many pixels (a model trained with ``tile``);
            None: whole images. ``imgsz`` is then the size each window is letterboxed to.
        tile_overlap: overlap of the windows, a fraction of ``tile``.
        validator_class: the validator to run (tests feed ground truth through a subclass);
            default :class:`RecordingValidator`, :class:`TiledRecordingValidator` with ``tile``.
    """
    data = Path(data)
    names = data_names(data)
    if split not in read_data_yaml(data):
        raise UserError(f"data file {data} has no '{split}' split")
    if isinstance(weights, (str, Path)) and not Path(weights).is_file():
        raise UserError(f"weights not found: {weights}")
    ensure_ultralytics_fonts()
    exact = out is not None  # an --out given is used as is; the default folder is numbered when taken
    out = Path(out) if exact else Path("runs/detect/evaluate")
    args = {
        "model": str(weights) if isinstance(weights, (str, Path)) else None,
        "data": str(data.resolve()),
        "split": split,
        "imgsz": imgsz,
        "batch": batch,
        "device": device,
        "conf": 0.001,
        "iou": 0.7,
        "max_det": 300,
        "rect": True,
        "plots": plots,
        "save_json": False,  # ultralytics' own COCO path would pip-install faster-coco-eval
        "project": str(out.absolute().parent),
        "name": out.name,
        "exist_ok": exact,
        "mode": "val",
    }
    if validator_class is None:
        validator_class = TiledRecordingValidator if tile else RecordingValidator
    if tile and not issubclass(validator_class, TiledRecordingValidator):
        raise UserError(f"tile={tile} needs a TiledRecordingValidator, got {validator_class.__name__}")
    if tile and (tile < 32 or not 0 <= tile_overlap < 1):
        raise UserError(
            f"tiled inference needs tile >= 32 and 0 <= overlap < 1, got {tile}, {tile_overlap}"
        )
    validator = validator_class(args=args)
    if tile:
        validator.tile, validator.tile_overlap = int(tile), float(tile_overlap)
    stats = validator(model=weights if not isinstance(weights, (str, Path)) else None)
    model_names = validator.names.values() if isinstance(validator.names, dict) else validator.names
    model_names = [str(n) for n in model_names]
    if model_names != names:
        raise UserError(f"the model's classes {model_names} are not the data set's {names} ({data})")
    notes = []

    coco_file = Path(coco_file) if coco_file is not None else default_coco_file(data, split)
    coco = None
    if coco_file.is_file():
        ground_truth = read_coco(coco_file)
        coco = coco_map(ground_truth, validator.detections, max_det=300)
        truth = image_labels(ground_truth)
    else:
        notes.append(f"no COCO file {coco_file} (convert with --coco): COCOeval cross-check skipped")
        truth = yolo_labels(validator, names)
    image_level = image_level_report(truth, validator.detections, names, conf)

    report = EvaluationReport(
        weights=str(weights) if isinstance(weights, (str, Path)) else type(weights).__name__,
        data=str(data),
        split=split,
        ultralytics={k: float(v) for k, v in stats.items()},
        per_class=[{k: _plain(v) for k, v in row.items()} for row in validator.metrics.summary()],
        coco=coco,
        image_level=image_level,
        save_dir=str(validator.save_dir),
        notes=notes,
        tiling={"tile": int(tile), "overlap": float(tile_overlap), "imgsz": imgsz} if tile else None,
    )
    Path(validator.save_dir).mkdir(parents=True, exist_ok=True)
    (Path(validator.save_dir) / "evaluation.json").write_text(json.dumps(asdict(report), indent=1) + "\n")
    return report


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def format_report(report: EvaluationReport) -> str:
    """The printed summary: box mAP both ways, per-class AP, image-level accuracy, confusion matrix, AUROC."""
    u = report.ultralytics
    lines = [f"Evaluation of {report.weights} on the {report.split} split of {report.data}"]
    if report.tiling:
        t = report.tiling
        lines.append(
            f"tiled inference: {t['tile']}-px windows, overlap {t['overlap']:g}, each at imgsz {t['imgsz']}"
        )
    lines.append("")
    lines.append(f"{'box metrics':24s}{'mAP50':>10s}{'mAP50-95':>10s}{'P':>8s}{'R':>8s}")
    figures = [u.get(f"metrics/{k}(B)", 0.0) for k in ("mAP50", "mAP50-95", "precision", "recall")]
    map50, map50_95, precision, recall = figures
    lines.append(f"{'ultralytics validator':24s}{map50:10.3f}{map50_95:10.3f}{precision:8.3f}{recall:8.3f}")
    if report.coco is not None:
        coco = report.coco
        lines.append(f"{'pycocotools COCOeval':24s}{coco['mAP50']:10.3f}{coco['mAP50-95']:10.3f}")
        gap = report.coco["mAP50"] - u.get("metrics/mAP50(B)", 0)
        lines.append(f"  mAP50 gap (COCO - ultralytics): {gap:+.3f}")
    coco_classes = report.coco["per_class"] if report.coco is not None else {}
    header = f"{'class':24s}{'images':>8s}{'boxes':>8s}{'P':>8s}{'R':>8s}{'AP50':>8s}{'AP50-95':>9s}"
    lines += ["", header + (f"{'COCO AP50':>11s}" if coco_classes else "")]
    for row in report.per_class:
        coco_ap = coco_classes.get(str(row["Class"]), {}).get("AP50")
        lines.append(
            f"{str(row['Class'])[:24]:24s}{row['Images']:8d}{row['Instances']:8d}{row['Box-P']:8.3f}"
            f"{row['Box-R']:8.3f}{row['mAP50']:8.3f}{row['mAP50-95']:9.3f}"
            + (f"{coco_ap:11.3f}" if coco_ap is not None else "")
        )
    level = report.image_level
    lines += [
        "",
        f"image level ({level.n_images} images; class = top box with score >= {level.conf}, else good):",
        f"  defect-type accuracy {level.accuracy:.3f}   balanced {level.balanced_accuracy:.3f}   "
        f"anomaly AUROC (top box score) {level.auroc:.3f}",
        "  confusion matrix (rows: true, columns: predicted)",
    ]
    width = max(8, *(len(label) + 2 for label in level.labels))
    lines.append("  " + " " * width + "".join(f"{label[: width - 1]:>{width}s}" for label in level.labels))
    for label, row in zip(level.labels, level.matrix, strict=True):
        accuracy = level.per_label_accuracy.get(label)
        tail = f"   acc {accuracy:.3f}" if accuracy is not None else ""
        lines.append(f"  {label[:width]:{width}s}" + "".join(f"{n:{width}d}" for n in row) + tail)
    lines += [*(f"note: {n}" for n in report.notes), "", f"Results in {report.save_dir} (evaluation.json)"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m detection.evaluate",
        description="Box mAP (ultralytics + COCOeval cross-check) and image-level defect-type accuracy and "
        "anomaly AUROC of detection weights on a converted data set split.",
    )
    parser.add_argument("--data", type=Path, required=True, help="data.yaml written by the converters")
    parser.add_argument("--weights", type=Path, required=True, help="weights to score (a run's best.pt)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--conf", type=float, default=0.25, help="box score that makes an image defective")
    parser.add_argument("--coco", type=Path, help="COCO ground truth (annotations/instances_SPLIT.json)")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default=None, help="cpu, 0, ... (default: first GPU, else CPU)")
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder, used as is (default: runs/detect/evaluate, numbered)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip ultralytics' curves and matrices")
    parser.add_argument(
        "--tile", type=int, help="tiled inference with windows of this many px (a model trained with tile=N)"
    )
    parser.add_argument("--tile-overlap", type=float, default=0.2, help="window overlap, fraction of --tile")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = evaluate(
            args.data,
            args.weights,
            split=args.split,
            conf=args.conf,
            coco_file=args.coco,
            imgsz=args.imgsz,
            batch=args.batch,
            device=args.device,
            out=args.out,
            plots=not args.no_plots,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
        )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = format_report(report)
    Path(report.save_dir, "report.txt").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
