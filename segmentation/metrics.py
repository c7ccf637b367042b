"""Segmentation scores: IoU, Dice and Boundary IoU per image, IoU per instance, COCO mask AP.

The per-image protocol is the one published zero-shot SAM figures on MVTec
use: one box prompt per ground-truth connected region, the predicted masks of
an image are unioned and compared with the image's whole ground-truth mask.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.io import read_json_object
from common.metrics import boundary_iou, per_image_iou_dice
from converters.cocoeval import precision_table


@dataclass
class ImageScore:
    """Scores of one image: over all its defect pixels, and per class present in its ground truth.

    ``boundary_iou``: :func:`common.metrics.boundary_iou` of the same masks (the band along the
    outlines, 2 % of the image diagonal wide).
    """

    image_id: int
    iou: float
    dice: float
    boundary_iou: float = float("nan")
    class_iou: dict[int, float] = field(default_factory=dict)
    class_dice: dict[int, float] = field(default_factory=dict)
    class_boundary_iou: dict[int, float] = field(default_factory=dict)
    instance_iou: list[float] = field(default_factory=list)


def score_image(
    image_id: int,
    gt_masks: np.ndarray,
    pred_masks: np.ndarray,
    category_ids: Sequence[int],
) -> ImageScore:
    """Scores the predictions of one image, one prediction per ground-truth instance.

    Args:
        gt_masks: ``(N, H, W)`` bool ground-truth instances.
        pred_masks: ``(N, H, W)`` bool, ``pred_masks[i]`` prompted from instance ``i``.
        category_ids: ``(N,)`` class of each instance.
    """
    pred_union, gt_union = pred_masks.any(0), gt_masks.any(0)
    iou, dice = per_image_iou_dice(pred_union, gt_union)
    score = ImageScore(image_id, iou, dice, boundary_iou(pred_union, gt_union))
    ids = np.asarray(category_ids)
    for category in sorted(set(ids.tolist())):
        pick = ids == category
        pred, gt = pred_masks[pick].any(0), gt_masks[pick].any(0)
        score.class_iou[category], score.class_dice[category] = per_image_iou_dice(pred, gt)
        score.class_boundary_iou[category] = boundary_iou(pred, gt)
    score.instance_iou = [per_image_iou_dice(p, g)[0] for p, g in zip(pred_masks, gt_masks, strict=True)]
    return score


@dataclass
class Summary:
    """Means over a split: overall and per class (keys are class names, plus ``all``)."""

    iou: dict[str, float]
    dice: dict[str, float]
    boundary_iou: dict[str, float]
    instance_iou: dict[str, float]
    mask_ap: dict[str, float]
    mask_ap50: dict[str, float]
    n_images: dict[str, int]


def summarise(
    scores: Sequence[ImageScore],
    categories: dict[int, str],
    instance_categories: Sequence[Sequence[int]],
    ap: dict[int | str, tuple[float, float]] | None = None,
) -> Summary:
    """Means of per-image scores, overall (``all``) and per class.

    Args:
        scores: one per image.
        categories: class name by id.
        instance_categories: per image, the class of each instance (as given to :func:`score_image`).
        ap: optional ``{category id or "all": (AP, AP50)}`` from :func:`coco_mask_ap`.
    """
    per_iou, per_dice, per_boundary, per_inst = (defaultdict(list) for _ in range(4))
    for score, classes in zip(scores, instance_categories, strict=True):
        per_iou["all"].append(score.iou)
        per_dice["all"].append(score.dice)
        per_boundary["all"].append(score.boundary_iou)
        per_inst["all"] += score.instance_iou
        for category, value in score.class_iou.items():
            per_iou[categories[category]].append(value)
            per_dice[categories[category]].append(score.class_dice[category])
            per_boundary[categories[category]].append(score.class_boundary_iou[category])
        for category, value in zip(classes, score.instance_iou, strict=True):
            per_inst[categories[category]].append(value)
    ap = ap or {}
    names = {key: ("all" if key == "all" else categories[key]) for key in ap}

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return Summary(
        iou={k: mean(v) for k, v in per_iou.items()},
        dice={k: mean(v) for k, v in per_dice.items()},
        boundary_iou={k: mean(v) for k, v in per_boundary.items()},
        instance_iou={k: mean(v) for k, v in per_inst.items()},
        mask_ap={names[k]: v[0] for k, v in ap.items()},
        mask_ap50={names[k]: v[1] for k, v in ap.items()},
        n_images={k: len(v) for k, v in per_iou.items()},
    )


def coco_mask_ap(annotation_file: str | Path, detections: list[dict]) -> dict[int | str, tuple[float, float]]:
    """COCO mask AP@[.5:.95] and AP50 with pycocotools, overall (``"all"``) and per category id.

    Args:
        annotation_file: the split's ground truth (``instances_<split>.json``).
        detections: COCO results: ``image_id``, ``category_id``, ``segmentation``
            (RLE with str counts), ``score``.

    Returns:
        ``(AP, AP50)`` overall and per category id; NaN for a category without ground truth, and
        overall for a file without any (no score rather than a zero: ``null`` in ``metrics.json``,
        ``-`` in ``table.md``), and 0.0 where there is ground truth and no detection.
    """
    ground_truth = read_json_object(annotation_file, what="COCO file")
    table = precision_table(ground_truth, detections, iou_type="segm")
    results: dict[int | str, tuple[float, float]] = {"all": (float(table.ap()), float(table.ap(iou=0.5)))}
    for category in table.category_ids:  # numpy integers: a JSON key only as int (json.dumps refused them)
        if table.has_ground_truth(category):
            ap = (float(table.ap(category=category)), float(table.ap(category=category, iou=0.5)))
        else:
            ap = (float("nan"), float("nan"))
        results[int(category)] = ap
    return results
