"""The record of one inspected photo, shared by every writer, the evaluation and the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The verdict of a photo without any box at or above the confidence threshold.
GOOD = "good"


@dataclass(frozen=True)
class Inspection:
    """One photo through the cascade: the detector's boxes, SAM's mask of each, and the verdict.

    Attributes:
        path: the photo's file.
        width, height: its size in pixels (masks and boxes are in these pixels).
        boxes: ``(N, 4)`` float xyxy, pixel edges (COCO's convention, ``x2``/``y2`` exclusive).
        scores: ``(N,)`` detector confidences, highest first.
        classes: ``(N,)`` int class ids of the detector.
        names: ``N`` class names, ``names[i]`` for ``classes[i]``.
        masks: ``(N, H, W)`` bool, SAM's mask of each box.
        mask_scores: ``(N,)`` SAM's predicted IoU of each mask.
        mask_probs: ``(N, H, W)`` float16 sigmoid of SAM's logits, for the anomaly map; None
            when not kept (it is ``2 * N * H * W`` bytes).
        verdict: ``good``, or the class of the top box with score >= the threshold.
        score: the image's anomaly score: its top box score, 0 without boxes.
        image_score: its top box score whatever the threshold, the detector's boxes kept down to a floor
            (``Inspector(path, score_floor=...)``: ``inspection.evaluate``'s image AUROC), or ``score``
            where an anomaly region's is higher; None: not made.
    """

    path: Path
    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    names: list[str]
    masks: np.ndarray
    mask_scores: np.ndarray
    verdict: str
    score: float
    mask_probs: np.ndarray | None = None
    image_score: float | None = None

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def is_good(self) -> bool:
        return self.verdict == GOOD

    def defect_mask(self) -> np.ndarray:
        """``(H, W)`` bool: the union of the instance masks (all False without instances)."""
        if not len(self):
            return np.zeros((self.height, self.width), dtype=bool)
        return self.masks.any(axis=0)

    def anomaly_map(self) -> np.ndarray:
        """``(H, W)`` float32: per pixel the highest ``box score x mask probability``; 0 without boxes.

        Raises:
            ValueError: the mask probabilities were not kept (``keep_probs=False``).
        """
        if not len(self):
            return np.zeros((self.height, self.width), dtype=np.float32)
        if self.mask_probs is None:
            raise ValueError("mask probabilities were not kept; inspect with keep_probs=True")
        # one box at a time: the (N, H, W) float32 product was 4 bytes a pixel per box, twice over
        # (40 boxes of a 4000 x 3000 photo: two 1.9 GB arrays for one 48 MB map)
        scores = self.scores.astype(np.float32)
        best = self.mask_probs[0].astype(np.float32) * scores[0]
        for probs, score in zip(self.mask_probs[1:], scores[1:], strict=True):
            np.maximum(best, probs.astype(np.float32) * score, out=best)
        return best
