"""A view of an image as the encoder sees it: a label-safe transform, then optionally a zoomed crop.

Training, evaluation and the cascade ask the embedding cache for views: the
plain image (``View()``), a flipped or rotated copy (:mod:`segmentation.augment`)
and a square crop around a small box (:mod:`segmentation.crops`), the crop cut
from the transformed image. A view's :attr:`View.key` joins the image's hash in
the cache key, so each view is encoded once and a moved crop is a new entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmentation.augment import check_transform, transform_boxes, transform_image, transformed_size
from segmentation.crops import Window, box_to_window, crop_image


@dataclass(frozen=True)
class View:
    """How an image is shown to the encoder.

    Attributes:
        transform: a :data:`segmentation.augment.TRANSFORMS` name.
        window: a crop of the transformed image, or None for all of it.
    """

    transform: str = "identity"
    window: Window | None = None

    def __post_init__(self) -> None:
        check_transform(self.transform)

    @property
    def key(self) -> str:
        """The view's part of a cache key: ``""`` for the plain image, else e.g. ``fliplr-crop10_-4_256``."""
        parts = [] if self.transform == "identity" else [self.transform]
        if self.window is not None:
            parts.append(f"crop{self.window.x0}_{self.window.y0}_{self.window.side}")
        return "-".join(parts)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, ...)`` image or mask in this view's frame."""
        out = transform_image(image, self.transform)
        return out if self.window is None else crop_image(out, self.window)

    def boxes(self, boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
        """``(..., 4)`` xyxy boxes of an ``(H, W)`` image in this view's frame."""
        out = transform_boxes(boxes, self.transform, image_size)
        return out if self.window is None else box_to_window(out, self.window)

    def size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """``(H, W)`` of this view of an ``(H, W)`` image."""
        if self.window is not None:
            return (self.window.side, self.window.side)
        return transformed_size(image_size, self.transform)
