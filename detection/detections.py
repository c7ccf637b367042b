"""The detections of one image, the record that evaluation, tiled inference and prediction share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageDetections:
    """The final detections of one image.

    Attributes:
        boxes: ``(N, 4)`` float xyxy in original-image pixels.
        scores: ``(N,)`` confidences.
        classes: ``(N,)`` int class ids.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def empty(cls) -> ImageDetections:
        return cls(np.zeros((0, 4), dtype=float), np.zeros(0, dtype=float), np.zeros(0, dtype=int))
