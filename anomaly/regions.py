"""Anomaly map -> defect regions: a threshold, 8-connected components, their boxes.

Pure numpy/OpenCV: the map (``(H, W)`` float, the photo's size) is cut at ``threshold``; each
8-connected component of at least ``min_area`` pixels is one region, with its tight xyxy box in pixel
edges (the converters' convention: a one-pixel region at (0, 0) has box ``[0, 0, 1, 1]``) and its
peak map value, which ranks it.

>>> m = np.zeros((4, 6)); m[1:3, 4:6] = 2.0
>>> [(r.box.tolist(), r.area, r.peak) for r in map_regions(m, 1.0)]
[([4.0, 1.0, 6.0, 3.0], 4, 2.0)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from common.errors import UserError


@dataclass(frozen=True)
class Region:
    """One connected region of the thresholded map.

    Attributes:
        mask: ``(H, W)`` bool, the region's pixels.
        box: ``(4,)`` float xyxy in pixel edges.
        area: pixels.
        peak: the largest map value inside (the region's score).
    """

    mask: np.ndarray
    box: np.ndarray
    area: int
    peak: float


def map_regions(anomaly_map: np.ndarray, threshold: float, *, min_area: int = 1) -> list[Region]:
    """The regions where ``anomaly_map >= threshold``, highest peak first.

    Args:
        anomaly_map: ``(H, W)`` float.
        threshold: map value at and above which a pixel is anomalous.
        min_area: smaller components are dropped (specks of noise).
    """
    # a float64 scalar: a threshold past float32's range (1e300) is compared as it is, not cast to inf
    binary = (anomaly_map >= np.float64(threshold)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    regions = []
    for label in range(1, count):
        x, y, w, h, area = stats[label]
        if area < min_area:
            continue
        mask = labels == label
        box = np.array([x, y, x + w, y + h], dtype=float)
        regions.append(Region(mask, box, int(area), float(anomaly_map[mask].max())))
    return sorted(regions, key=lambda r: -r.peak)


def check_threshold(value: float, flag: str) -> float:
    """``value`` when a map cut at it can tell pixels apart.

    Maps are distances to the memory bank, never negative: a negative threshold flags every pixel
    (0 does too, on purpose), NaN or infinity none; either way silently.

    Raises:
        UserError: NaN, infinite or negative, naming ``flag`` and the value.
    """
    if not math.isfinite(value):
        raise UserError(f"{flag} must be a finite number, got {value}")
    if value < 0:
        raise UserError(
            f"{flag} must be >= 0 (anomaly maps are distances, never negative: it would flag every "
            f"pixel), got {value}"
        )
    return value
