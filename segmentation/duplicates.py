"""Duplicate masks: one defect outlined twice by SAM, from two of the detector's boxes.

The detector's NMS compares boxes. Two boxes on one defect that overlap less than its IoU (a box
and a part of it, a loose box and a tight one) both reach SAM, which often outlines the same
pixels from each: one stain becomes several instances, the later ones false positives of mask AP
and clutter in every overlay. After SAM the cascade (and the annotation page's ``--detector``)
compares masks instead and keeps, of the masks of one class that overlap by more than a mask IoU,
the best-scored one: greedy NMS on the masks' pixels instead of their boxes (segment-anything's
automatic mask generator runs it on the boxes of its masks).

Measured on hazelnut_toy's five folds (bench/experiments/cascade_mask_nms/): at mask IoU 0.7 the
cascade's mask AP rises 0.007-0.015 with two detectors and two thresholds, per-image IoU moves by
0.003 at most on average (0.013 in one fold), and 13-26 % of the instances go. Its cost, one
thread (bench/results/mask_nms_speed.md): a few ms for 10 masks of 1024 x 1024, about 0.2 s for 300,
against SAM's 0.04-0.06 s per box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

#: The default mask IoU of the inspection cascade and of the annotation page's ``--detector``.
MASK_IOU = 0.7


def mask_ious(masks: np.ndarray) -> np.ndarray:
    """``(N, N)`` IoU of every pair of ``(N, H, W)`` bool masks (:func:`rle_ious` of their RLEs)."""
    return rle_ious(encode(masks))


def rle_ious(rles: Sequence[dict]) -> np.ndarray:
    """``(N, N)`` IoU of every pair of COCO RLEs (pycocotools: no ``N x H x W`` copy); an empty
    mask's IoU with anything is 0."""
    if not len(rles):
        return np.zeros((0, 0))
    ious = mask_utils.iou(list(rles), list(rles), [0] * len(rles))
    return np.asarray(ious, dtype=float).reshape(len(rles), len(rles))


def encode(masks: np.ndarray) -> list[dict]:
    """pycocotools' RLEs of ``(N, H, W)`` bool masks *transposed* (``W x H``): for IoUs only.

    IoU does not change under transposition, and the transposed stack of a C-ordered ``(N, H, W)``
    array is already the Fortran-ordered ``(W, H, N)`` one pycocotools encodes: no copy (the
    untransposed ``(H, W, N)`` copy took 1.4 s for 100 masks of 1024 x 1024, encoding 0.06 s).
    """
    masks = np.ascontiguousarray(masks, dtype=bool).view(np.uint8)
    return mask_utils.encode(np.asfortranarray(masks.transpose(2, 1, 0)))


def distinct_masks(masks: np.ndarray, classes: Sequence[int], max_iou: float) -> np.ndarray:
    """Indices of the masks kept by greedy mask NMS per class, in their order (best first).

    Args:
        masks: ``(N, H, W)`` bool, best-scored first.
        classes: ``(N,)`` their class ids; masks of different classes never suppress each other.
        max_iou: a mask whose IoU with a kept mask of its class is above this is dropped;
            1 keeps every mask.

    >>> square = np.zeros((3, 4, 4), bool); square[:, :2, :2] = True; square[1, 2, 2] = True
    >>> distinct_masks(square, np.array([0, 0, 1]), 0.7).tolist()  # the second is 4/5 the first
    [0, 2]
    """
    if max_iou >= 1 or len(masks) < 2:
        return np.arange(len(masks))
    return distinct(encode(masks), classes, max_iou)


def distinct(rles: Sequence[dict], classes: Sequence[int], max_iou: float) -> np.ndarray:
    """:func:`distinct_masks` of masks given as COCO RLEs (``{"size", "counts"}``, counts str or bytes)."""
    if max_iou >= 1 or len(rles) < 2:
        return np.arange(len(rles))
    classes = np.asarray(classes)
    ious = rle_ious(rles)
    kept: list[int] = []
    for index in range(len(rles)):
        rivals = [k for k in kept if classes[k] == classes[index]]
        if not rivals or ious[index, rivals].max() <= max_iou:
            kept.append(index)
    return np.array(kept, dtype=int)
