"""Anomaly map -> defect regions: a threshold, 8-connected components, their boxes.

Pure numpy/OpenCV: the map (``(H, W)`` float, the photo's size) is cut at ``threshold``; each
8-connected component of at least ``min_area`` pixels is one region, with its tight xyxy box in pixel
edges (the converters' convention: a one-pixel region at (0, 0) has box ``[0, 0, 1, 1]``), its pixels
inside that box, and its peak map value, which ranks it. A region holds its box's pixels only, never a
map-sized mask: a 12 MP map with a hundred regions held a hundred 12 MB masks, each made by comparing
the whole label image (:meth:`Region.full_mask` makes one where a caller needs it).

>>> m = np.zeros((4, 6)); m[1:3, 4:6] = 2.0
>>> [(r.box.tolist(), r.area, r.peak, r.crop.shape) for r in map_regions(m, 1.0)]
[([4.0, 1.0, 6.0, 3.0], 4, 2.0, (2, 2))]
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
        crop: ``(y2 - y1, x2 - x1)`` bool, the region's pixels inside its box (another region's pixels
            there are False): ``map[region.window][region.crop]`` are its map values.
        box: ``(4,)`` float xyxy in pixel edges.
        area: pixels.
        peak: the largest map value inside (the region's score).
        image_shape: ``(H, W)``, the map's.
    """

    crop: np.ndarray
    box: np.ndarray
    area: int
    peak: float
    image_shape: tuple[int, int]

    @property
    def window(self) -> tuple[slice, slice]:
        """The box's rows and columns, to index a map-sized array with."""
        x1, y1, x2, y2 = (int(v) for v in self.box)
        return slice(y1, y2), slice(x1, x2)

    def full_mask(self) -> np.ndarray:
        """``(H, W)`` bool, the region's pixels at the map's size (a new array each call)."""
        mask = np.zeros(self.image_shape, bool)
        mask[self.window] = self.crop
        return mask


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
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < min_area:
            continue
        # the component's box alone (its stats), not the whole label image once per component: that was
        # O(regions x pixels) and a map-sized mask kept per region
        window = slice(y, y + h), slice(x, x + w)
        crop = labels[window] == label
        box = np.array([x, y, x + w, y + h], dtype=float)
        peak = float(anomaly_map[window][crop].max())
        regions.append(Region(crop, box, area, peak, anomaly_map.shape[:2]))
    return sorted(regions, key=lambda r: -r.peak)


def check_threshold(value: float, flag: str, typed: str | None = None) -> float:
    """``value`` when a map cut at it can tell pixels apart.

    Maps are distances to the memory bank, never negative: a negative threshold flags every pixel
    (0 does too, on purpose), NaN or infinity none; either way silently.

    ``typed``: the text ``value`` was read from, which the message names (``1e400`` was 'got inf', ``-5``
    'got -5.0').

    Raises:
        UserError: NaN, infinite or negative, naming ``flag`` and the value.
    """
    shown = value if typed is None else typed.strip()  # -5 is named as typed, not as -5.0
    if not math.isfinite(value):
        beyond = "" if typed is None or "inf" in typed.lower() or math.isnan(value) else ", beyond any float"
        raise UserError(f"{flag} must be a finite number, got {shown}{beyond}")
    if value < 0:
        raise UserError(
            f"{flag} must be >= 0 (anomaly maps are distances, never negative: it would flag every "
            f"pixel), got {shown}"
        )
    return value


def check_min_area(min_area: int, image_shape: tuple[int, int], flag: str = "--min-area") -> int:
    """``min_area`` when a region of the photos' size ``image_shape`` (``(H, W)``) can have that many pixels.

    A ``min_area`` above the photo's pixel count drops every region: masks empty, IoU 0 on every defect
    photo, without a word.

    Raises:
        UserError: ``min_area`` < 1 or more pixels than a whole photo, naming ``flag``, value and size.
    """
    if min_area < 1:
        raise UserError(f"{flag} must be at least 1, got {min_area}")
    height, width = image_shape
    if min_area > height * width:
        raise UserError(
            f"{flag} {min_area} is more pixels than a whole photo ({width}x{height} = {height * width}): "
            f"every region would be dropped; take at most {height * width}"
        )
    return min_area
