"""End-to-end scores of the cascade on a labelled split, beside the oracle (SAM from ground-truth boxes).

:class:`SplitScorer` is fed one image at a time (the cascade's
:class:`~inspection.result.Inspection`, the oracle's masks, the ground truth)
and keeps only what the figures need: COCO results (small RLE strings), one
anomaly map per image as float16 (a photo whose map is all 0, one without boxes, as one
value: :func:`held_map`), its true defect pixels as bits (:class:`PackedMasks`), the
per-image IoU/Dice and the image-level call. :meth:`SplitScorer.finish` computes everything at the end:

- box AP50 / AP50-95 of the detector's boxes (COCOeval, 300 detections per image);
- mask AP of the cascade's masks under three ranking scores (the box score,
  SAM's predicted IoU, their product) and of the oracle's masks, so the loss
  due to detection is visible; the ranking ``rank_by`` names (``predictions.json``'s
  score) is the headline; and the cascade's mask AP with every class merged into one
  (class-agnostic: defects found and outlined, whatever type the verdict gave them);
- per-image IoU, Dice and boundary IoU (:func:`common.metrics.boundary_iou`) of the
  predicted defect pixels, over defect and good images (a false positive on a good image
  scores 0), and the oracle's per-image IoU and boundary IoU beside them over the defect images (on a good
  one it is 1 by construction), so the pixels lost to detection and those lost to SAM's outlines can be
  told apart;
- pixel AUROC and AUPRO (FPR <= 0.3, normalised) of the anomaly maps;
- image-level defect-type accuracy, confusion matrix and AUROC (of each photo's ``image_score`` where the
  inspection has one: its top box whatever the threshold, :class:`~inspection.result.Inspection`; with
  anomaly regions at least the threshold on a photo with one, so that AUROC moves with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from common import metrics
from common.metrics import auroc
from converters.cocoeval import PrecisionTable, one_class, precision_table
from detection.image_level import confusion_matrix
from inspection.outputs import RANK_BY, instance_results
from inspection.photos import Photo
from inspection.result import GOOD, Inspection

#: Detections per image kept by COCOeval (ultralytics' own cap).
MAX_DET = 300


def ranked(results: Sequence[dict], rank_by: str) -> list[dict]:
    """The cascade's results with ``score`` set by ``rank_by`` (what COCOeval orders them by)."""
    scores = {
        "box": lambda r: r["box_score"],
        "mask": lambda r: r["mask_score"],
        "product": lambda r: r["box_score"] * r["mask_score"],
    }[rank_by]
    return [{**result, "score": scores(result)} for result in results]


def oracle_inspection(
    inspection: Inspection, truth: TrueInstances, masks: np.ndarray, mask_scores: np.ndarray
) -> Inspection:
    """SAM's masks from the ground-truth boxes, as an :class:`Inspection` of the same photo (box score 1)."""
    return replace(
        inspection,
        boxes=truth.boxes,
        scores=np.ones(len(truth.boxes)),
        classes=truth.classes,
        names=[],
        masks=masks,
        mask_scores=np.asarray(mask_scores, dtype=float),
        mask_probs=None,
    )


def image_label(classes: Sequence[int], areas: Sequence[float], names: Sequence[str]) -> str:
    """The ground-truth call of an image: its largest instance's class, ``good`` without instances.

    ``areas`` are the instances' box areas, as :func:`detection.image_level.image_labels` measures them
    (the labels ``--conf-from`` picks on, and ``detection.evaluate``'s).
    """
    if not len(classes):
        return GOOD
    return names[int(classes[int(np.argmax(areas))])]


def held_map(anomaly_map: np.ndarray) -> np.ndarray:
    """``(H, W)`` float16 ``anomaly_map`` as the scorer keeps it: a map all ``+0.0`` (a photo without boxes)
    is one value seen as ``(H, W)`` (:func:`numpy.broadcast_to`), 0 bytes a pixel instead of 2; the
    pixel figures read the same values either way."""
    held = np.asarray(anomaly_map).astype(np.float16)
    if not held.view(np.uint16).any():  # every bit 0: +0.0 throughout (a -0.0 stays as it is)
        return np.broadcast_to(np.zeros((), np.float16), held.shape)
    return held


class PackedMasks(Sequence[np.ndarray]):
    """``(H, W)`` bool masks kept as bits (:func:`numpy.packbits`), an eighth of a bool array's bytes;
    each reads back as the ``(H, W)`` bool mask it was (:func:`common.metrics.pixel_figures` reads each
    mask more than once, and one at a time)."""

    def __init__(self) -> None:
        self._bits: list[tuple[np.ndarray, tuple[int, int]]] = []

    def append(self, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        self._bits.append((np.packbits(mask, axis=None), mask.shape))

    def __len__(self) -> int:
        return len(self._bits)

    def __getitem__(self, index: int | slice) -> np.ndarray | list[np.ndarray]:  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        bits, shape = self._bits[index]
        return np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).view(bool)


@dataclass(frozen=True)
class TrueInstances:
    """An image's ground truth: ``(M, H, W)`` bool masks, ``(M, 4)`` xyxy boxes, ``(M,)`` class ids."""

    masks: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray

    def union(self, height: int, width: int) -> np.ndarray:
        """``(H, W)`` bool: every defect pixel (all False for a good image)."""
        return self.masks.any(axis=0) if len(self.masks) else np.zeros((height, width), bool)


@dataclass
class ImageRecord:
    """What the report keeps of one image: where it is, its calls and its scores (``score``: the
    inspection's ``image_score`` where it has one, else its ``score``)."""

    image_id: int
    file_name: str
    truth: str
    verdict: str
    score: float
    iou: float
    dice: float
    boundary_iou: float
    oracle_iou: float
    oracle_boundary_iou: float
    n_true: int
    n_found: int


@dataclass
class SplitScorer:
    """Collects one split's images; :meth:`finish` turns them into the figures (see the module doc).

    Attributes:
        ground_truth: the split's COCO instances dict (the converters' ``instances_<split>.json``).
        names: class names in detector id order (category id = id + 1), and the class of the
            anomaly regions last where the cascade has them (a call, never a photo's truth).
        conf: the box score from which an image is called defective (the cascade's ``conf``).
        rank_by: the ranking whose mask AP is the headline (``predictions.json``'s score); the
            other two are reported beside it. Picking the best of the three on the scored split
            would flatter it and name a figure ``predictions.json`` does not give.
        truth_names: the classes a photo's truth can be (the ground truth's categories in id order);
            None: ``names``.
    """

    ground_truth: dict
    names: list[str]
    conf: float
    rank_by: str = "box"
    truth_names: list[str] | None = None
    cascade: list[dict] = field(default_factory=list)
    oracle: list[dict] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)  # float16, an all-0 map one value (held_map)
    truths: PackedMasks = field(default_factory=PackedMasks)  # every true defect pixel, as bits
    images: list[ImageRecord] = field(default_factory=list)

    def add(
        self, photo: Photo, inspection: Inspection, truth: TrueInstances, oracle: Inspection
    ) -> ImageRecord:
        """Adds one image: the cascade's result, its ground truth, and the oracle's masks.

        Args:
            photo: the image's COCO id and file name.
            inspection: the cascade's result (with mask probabilities kept).
            truth: the ground-truth instances.
            oracle: SAM prompted with the ground-truth boxes (:func:`oracle_inspection`).
        """
        self.cascade += instance_results(inspection, photo)
        self.oracle += instance_results(oracle, photo, rank_by="mask")
        true_masks = truth.masks
        true_pixels = truth.union(inspection.height, inspection.width)
        self.maps.append(held_map(inspection.anomaly_map()))
        self.truths.append(true_pixels)
        predicted, from_truth_boxes = inspection.defect_mask(), oracle.defect_mask()
        iou, dice = metrics.per_image_iou_dice(predicted, true_pixels)
        boxes = np.asarray(truth.boxes, dtype=float).reshape(-1, 4)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        record = ImageRecord(
            image_id=photo.image_id,
            file_name=photo.file_name,
            truth=image_label(truth.classes, areas, self.names),
            verdict=inspection.verdict,
            score=inspection.score if inspection.image_score is None else inspection.image_score,
            iou=iou,
            dice=dice,
            boundary_iou=metrics.boundary_iou(predicted, true_pixels),
            oracle_iou=metrics.per_image_iou_dice(from_truth_boxes, true_pixels)[0],
            oracle_boundary_iou=metrics.boundary_iou(from_truth_boxes, true_pixels),
            n_true=len(true_masks),
            n_found=len(inspection),
        )
        self.images.append(record)
        return record

    def finish(self, *, progress: bool = False) -> dict:
        """Every figure, as plain JSON-ready values (see :func:`summarise`); ``progress``: a bar on stderr
        while the pixel metrics are computed, which takes long on many large photos."""
        return summarise(self, progress=progress)


def mask_tables(scorer: SplitScorer) -> tuple[dict[str, PrecisionTable], PrecisionTable, PrecisionTable]:
    """COCOeval tables: the cascade's masks per ranking, the oracle's masks, the cascade's boxes."""
    gt = scorer.ground_truth
    cascade = {
        rank: precision_table(gt, ranked(scorer.cascade, rank), iou_type="segm", max_det=MAX_DET)
        for rank in RANK_BY
    }
    oracle = precision_table(gt, scorer.oracle, iou_type="segm", max_det=MAX_DET)
    boxes = precision_table(gt, ranked(scorer.cascade, "box"), iou_type="bbox", max_det=MAX_DET)
    return cascade, oracle, boxes


def any_class_tables(scorer: SplitScorer) -> dict[str, PrecisionTable]:
    """COCOeval tables of the cascade's masks per ranking, every class merged into one (class-agnostic).

    A mask of the wrong defect type, or of the ``anomaly`` regions' class, still matches its defect
    here. Not an upper bound of the per-class AP: instances are pooled instead of classes averaged, and
    two masks of different classes on one defect leave one a false positive.
    """
    tables = {}
    for rank in RANK_BY:
        truth, results = one_class(scorer.ground_truth, ranked(scorer.cascade, rank))
        tables[rank] = precision_table(truth, results, iou_type="segm", max_det=MAX_DET)
    return tables


def image_level(
    images: Sequence[ImageRecord], names: Sequence[str], truth_names: Sequence[str] | None = None
) -> dict:
    """Defect-type accuracy (and balanced), confusion matrix and AUROC of the image calls.

    The matrix's rows are ``true_labels`` (good and ``truth_names``; None: ``names``), its columns
    ``labels`` (good and ``names``, the calls the cascade can make): with ``--anomaly-run`` the
    ``anomaly`` class is a call, never a photo's truth, so it is a column and not a row.
    """
    labels = [GOOD, *names]
    true_labels = labels if truth_names is None else [GOOD, *truth_names]
    truth, called = [r.truth for r in images], [r.verdict for r in images]
    matrix = confusion_matrix(truth, called, true_labels, labels)
    right = [int(matrix[i, labels.index(label)]) for i, label in enumerate(true_labels)]
    per_label = {
        label: float(right[i] / matrix[i].sum()) for i, label in enumerate(true_labels) if matrix[i].sum()
    }
    return {
        "labels": labels,
        "true_labels": true_labels,
        "matrix": matrix.tolist(),
        "accuracy": float(sum(right) / max(1, matrix.sum())),
        "balanced_accuracy": float(np.mean(list(per_label.values()))) if per_label else float("nan"),
        "per_label_accuracy": per_label,
        "auroc": auroc([r.score for r in images], [r.truth != GOOD for r in images]),
    }


def summarise(scorer: SplitScorer, *, progress: bool = False) -> dict:
    """The figures of a finished split (the ``metrics.json`` of an evaluation, less its settings)."""
    cascade, oracle, boxes = mask_tables(scorer)
    return {
        "images": len(scorer.images),
        "defect_images": sum(r.truth != GOOD for r in scorer.images),
        "instances": sum(r.n_true for r in scorer.images),
        "detections": len(scorer.cascade),
        "box": _table_figures(boxes),
        "mask": {rank: _table_figures(cascade[rank]) for rank in RANK_BY},
        "mask_any_class": {rank: _any_class_figures(t) for rank, t in any_class_tables(scorer).items()},
        "mask_oracle": _table_figures(oracle),
        "rank_by": scorer.rank_by,
        "per_image": _iou_summary(scorer.images),
        "pixel": metrics.pixel_figures(scorer.maps, scorer.truths, progress=progress),
        "image_level": {
            **image_level(scorer.images, scorer.names, scorer.truth_names),
            "conf": float(scorer.conf),
        },
        "photos": [photo_figures(record) for record in scorer.images],
    }


def photo_figures(record: ImageRecord) -> dict:
    """One photo's line of ``metrics.json``'s ``photos``: which it is, its call and its IoUs.

    ``instances`` is the ground truth's count, ``detections`` the cascade's (``images.json``, written by
    :class:`~inspection.outputs.PredictionWriter`, calls the cascade's count ``instances``); ``oracle_iou``
    is None on a good photo (:data:`ORACLE_FIGURES`).
    """
    return {
        "file_name": record.file_name,
        "truth": record.truth,
        "verdict": record.verdict,
        "score": round(float(record.score), 4),
        "iou": round(float(record.iou), 4),
        # null on a good photo: the oracle has no true box there, and its empty mask is 1 by construction
        "oracle_iou": round(float(record.oracle_iou), 4) if record.truth != GOOD else None,
        "instances": record.n_true,
        "detections": record.n_found,
    }


def _table_figures(table: PrecisionTable) -> dict:
    """A table's AP, AP50, per-class figures and PR curve; AP and AP50 NaN (``null``, ``-`` in the
    reports) on a split without a true instance, where COCOeval defines none
    (:meth:`~converters.cocoeval.PrecisionTable.ap`): they read 0.000 there."""
    recall, precision = table.pr_curve(iou=0.5)
    return {**table.summary(), "pr50": {"recall": recall.tolist(), "precision": precision.tolist()}}


def _any_class_figures(table: PrecisionTable) -> dict:
    """A one-class table's figures: its per-class entry repeats the overall one, so it is left out."""
    return {key: value for key, value in _table_figures(table).items() if key != "per_class"}


#: The per-image figures averaged by :func:`_iou_summary` (``ImageRecord`` fields).
PER_IMAGE_FIGURES = ("iou", "dice", "boundary_iou", "oracle_iou", "oracle_boundary_iou")
#: Those of the oracle: on a good image it has no true box to prompt SAM with, so its empty mask scores 1 by
#: construction; they are averaged over the defect images alone.
ORACLE_FIGURES = ("oracle_iou", "oracle_boundary_iou")


def _iou_summary(images: Sequence[ImageRecord]) -> dict:
    """Means of :data:`PER_IMAGE_FIGURES` over all images, the defect ones and the good ones; the oracle's
    (:data:`ORACLE_FIGURES`) over the defect ones alone (over all images they were pulled towards 1 by every
    good one, and over the good ones they were 1)."""
    groups = {
        "all": list(images),
        "defect": [r for r in images if r.truth != GOOD],
        "good": [r for r in images if r.truth == GOOD],
    }
    return {
        name: {
            "images": len(group),
            **{
                figure: float(np.mean([getattr(r, figure) for r in group])) if group else float("nan")
                for figure in PER_IMAGE_FIGURES
                if name == "defect" or figure not in ORACLE_FIGURES
            },
        }
        for name, group in groups.items()
    }
