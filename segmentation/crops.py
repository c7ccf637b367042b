"""Zoomed crops for small instances: encode a square around the box, prompt there, paste the mask back.

SAM's decoder outputs 256x256 logits over the whole (padded) image, so a defect
a few dozen pixels wide on a 1024-px photo is a handful of cells: no decoder
tuning can outline it. For a box whose longest side is below ``max_fraction``
of the image's longest side, a square window around it (``margin`` box sides
on each side, at least ``min_side`` pixels) is cut out, encoded on its own
(resized to SAM's input like any image) and prompted in its own frame; the mask
comes back at the window's size and is pasted into the image.

A window is moved inside the image where it fits; where it is larger than the
image along one axis (a non-square photo) it is centred on that axis and the
outside is zero padding. A window as large as the whole image is no zoom: the
rule then keeps the image itself.

Crop embeddings live in the image embedding cache, keyed by the image bytes and
the window (:class:`segmentation.views.View`), so a crop is encoded once however
often training, evaluation or the cascade asks for it, and a moved window is a
new entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from common.config import Option, Schema


class Window(NamedTuple):
    """A square window in image pixels: columns ``x0 .. x0 + side``, rows ``y0 .. y0 + side`` (ends open).

    ``x0``/``y0`` are negative (and the window runs past the far edge) only where ``side`` exceeds
    the image along that axis.
    """

    x0: int
    y0: int
    side: int


@dataclass(frozen=True)
class CropRule:
    """Which boxes get a zoomed crop, and how large.

    Attributes:
        max_fraction: a box whose longest side is below this fraction of the image's longest
            side is small; 0 turns crops off.
        margin: context on each side of the box, in box sides (1.0: the window is 3 box sides).
        min_side: smallest window side in pixels (SAM sees at least this much context).
    """

    max_fraction: float = 0.125
    margin: float = 1.0
    min_side: int = 256

    def window(self, box: np.ndarray, image_size: tuple[int, int]) -> Window | None:
        """The crop window of ``box`` (xyxy pixels) on an ``(H, W)`` image, or None: no crop."""
        if self.max_fraction <= 0:
            return None
        x0, y0, x1, y1 = (float(v) for v in box)
        longest, image_longest = max(x1 - x0, y1 - y0), max(image_size)
        if longest >= self.max_fraction * image_longest:
            return None
        return crop_window(box, image_size, margin=self.margin, min_side=self.min_side)


def crop_schema() -> Schema:
    """The ``crops`` block of the training config (:class:`CropRule`'s fields)."""
    rule = CropRule()
    return Schema(
        # Off by default: on hazelnut_toy (5-fold, bench/results/sam_quality*.md) crops lowered the
        # small instances' IoU, zero-shot and fine-tuned; 0.125 is the value the option was measured at.
        max_fraction=Option(
            0.0,
            float,
            "zoom on boxes whose longest side < this x the image's (0: off)",
            low=0,
            high=1,
        ),
        margin=Option(rule.margin, float, "context around the box, in box sides per side", low=0),
        min_side=Option(rule.min_side, int, "smallest crop side in pixels", low=16),
    )


def _place(centre: float, side: int, size: int) -> int:
    """Start of a ``side`` window centred on ``centre`` and moved inside ``[0, size)`` where it fits."""
    if side >= size:
        return -((side - size) // 2)
    return int(min(max(round(centre - side / 2), 0), size - side))


def crop_window(
    box: np.ndarray, image_size: tuple[int, int], *, margin: float = 1.0, min_side: int = 256
) -> Window | None:
    """The square window around ``box``: ``max(min_side, (1 + 2 margin) x longest side)`` pixels.

    Args:
        box: ``(4,)`` xyxy in pixels.
        image_size: ``(H, W)``.
        margin: context on each side, in box sides.
        min_side: smallest side in pixels.

    Returns:
        The :class:`Window`, or None when it would cover the whole image (no zoom to gain).
    """
    height, width = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(int(min_side), math.ceil(max(x1 - x0, y1 - y0) * (1 + 2 * margin)))
    if side >= max(height, width):
        return None
    return Window(_place((x0 + x1) / 2, side, width), _place((y0 + y1) / 2, side, height), side)


def _overlap(start: int, side: int, size: int) -> tuple[slice, slice]:
    """Source (image) and destination (window) slices of one axis."""
    low, high = max(start, 0), min(start + side, size)
    return slice(low, high), slice(low - start, high - start)


def crop_image(image: np.ndarray, window: Window) -> np.ndarray:
    """The window's pixels, ``(side, side, ...)``; outside the image zeros.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array (an RGB image or a mask).
        window: from :func:`crop_window`.
    """
    out = np.zeros((window.side, window.side, *image.shape[2:]), dtype=image.dtype)
    rows, dst_rows = _overlap(window.y0, window.side, image.shape[0])
    cols, dst_cols = _overlap(window.x0, window.side, image.shape[1])
    out[dst_rows, dst_cols] = image[rows, cols]
    return out


def paste_mask(mask: np.ndarray, window: Window, image_size: tuple[int, int]) -> np.ndarray:
    """A ``(..., side, side)`` mask in the window's frame pasted into ``(..., H, W)``; zeros elsewhere."""
    out = np.zeros((*mask.shape[:-2], *image_size), dtype=mask.dtype)
    rows, src_rows = _overlap(window.y0, window.side, image_size[0])
    cols, src_cols = _overlap(window.x0, window.side, image_size[1])
    out[..., rows, cols] = mask[..., src_rows, src_cols]
    return out


def scale_window(window: Window, factor: float) -> Window:
    """The window on the image resized by ``factor`` (e.g. a preview), corners and side rounded.

    >>> scale_window(Window(100, -20, 300), 0.5)
    Window(x0=50, y0=-10, side=150)
    """
    return Window(round(window.x0 * factor), round(window.y0 * factor), max(1, round(window.side * factor)))


def box_to_window(box: np.ndarray, window: Window) -> np.ndarray:
    """``(..., 4)`` xyxy image pixels in the window's frame."""
    return np.asarray(box, dtype=float) - np.array([window.x0, window.y0, window.x0, window.y0], dtype=float)


#: Boxes decoded on one embedding: ``(N, h, w)`` bool masks, ``(N,)`` predicted IoUs, then any further
#: per-pixel maps ``(N, h, w)``, or None where one is not kept (the cascade's probabilities).
Decoder = Callable[[object, np.ndarray], tuple]


def small_box_windows(
    rule: CropRule | None, boxes: np.ndarray, image_size: tuple[int, int]
) -> list[Window | None]:
    """The window of each box (None for a box decoded on the whole image)."""
    if rule is None:
        return [None] * len(boxes)
    return [rule.window(box, image_size) for box in boxes]


def decode_with_crops(
    decode_boxes: Decoder,
    embedding: object,
    boxes: np.ndarray,
    windows: list[Window | None],
    crop_embedding: Callable[[Window], object],
    image_size: tuple[int, int],
    *,
    decode_crop: Decoder | None = None,
) -> tuple:
    """Masks of ``boxes``: whole-image boxes in one call, each cropped box on its window's embedding.

    Evaluation and the inspection cascade (whose decoder also gives probabilities) paste a crop's
    outputs back alike, here.

    Args:
        decode_boxes: ``(embedding, (K, 4) boxes in its frame) -> ((K, h, w) bool masks, (K,) scores,
            *maps)``, each further map ``(K, h, w)`` or None (:data:`Decoder`).
        embedding: the whole image's embedding.
        boxes: ``(N, 4)`` xyxy image pixels.
        windows: per box, its :class:`Window` or None (:func:`small_box_windows`).
        crop_embedding: the embedding of a window's crop (from the cache).
        image_size: ``(H, W)``.
        decode_crop: the decoder of a crop's box; None: ``decode_boxes`` (the cascade decodes the whole
            photo with its colour parts and flips, a crop with neither).

    Returns:
        ``(N, H, W)`` bool masks and ``(N,)`` float32 scores, in box order; then each further map of the
        decoder, ``(N, H, W)`` of its dtype with zeros outside a crop's window (None where the decoder gave
        None). With no box, no decoder runs and there is no further map.
    """
    whole = [i for i, window in enumerate(windows) if window is None]
    parts = [(whole, None, decode_boxes(embedding, np.asarray(boxes)[whole]))] if whole else []
    for index, window in enumerate(windows):
        if window is not None:
            decoded = (decode_crop or decode_boxes)(
                crop_embedding(window), box_to_window(boxes[index], window)[None]
            )
            parts.append(([index], window, decoded))
    return _in_box_order(parts, len(boxes), image_size)


def _in_box_order(parts: list[tuple], n: int, image_size: tuple[int, int]) -> tuple:
    """The decoder outputs of each ``(rows, window or None, outputs)`` part of ``n`` boxes, in box order at
    ``image_size``; a crop's maps pasted back (:func:`paste_mask`)."""
    masks = np.zeros((n, *image_size), dtype=bool)
    scores = np.zeros(n, dtype=np.float32)
    maps: list[np.ndarray | None] = [None] * (len(parts[0][2]) - 2 if parts else 0)
    for rows, window, (part_masks, part_scores, *part_maps) in parts:
        masks[rows], scores[rows] = _in_image(part_masks, window, image_size), part_scores
        for k, part in enumerate(part_maps):
            if part is None:
                continue
            if maps[k] is None:
                maps[k] = np.zeros((n, *image_size), dtype=part.dtype)
            maps[k][rows] = _in_image(part, window, image_size)
    return (masks, scores, *maps)


def _in_image(frames: np.ndarray, window: Window | None, image_size: tuple[int, int]) -> np.ndarray:
    """``(K, h, w)`` outputs in the image's frame: as they are (``window`` None), or one crop's pasted."""
    return frames if window is None else paste_mask(frames[0], window, image_size)[None]
