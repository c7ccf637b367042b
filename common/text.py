"""Text drawn on images (overlays' labels and titles) in DejaVu Sans, so a class name draws as itself.

OpenCV's Hershey fonts know ASCII only: ``cv2.putText`` drew ``Kratzer_ä`` as ``Kratzer_??`` (one
``?`` per UTF-8 byte). These two functions stand in for ``cv2.getTextSize`` and ``cv2.putText``
with ``FONT_HERSHEY_SIMPLEX``: the same arguments (a font scale, a thickness, the origin at the
baseline's left end) and text of about the same size, so overlays keep their layout and look. The
font is matplotlib's DejaVu Sans (matplotlib is a dependency): nothing reaches for a system font or
the network. DejaVu Sans covers Latin, Greek, Cyrillic, Arabic, Hebrew and more, not CJK: such
characters draw as its missing-glyph box.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.fonts import dejavu_sans

#: The font's size in pixels (its em) at font scale 1: capitals stand about as tall as
#: ``FONT_HERSHEY_SIMPLEX``'s at the same scale (19 px against 20).
EM_PER_SCALE = 26


@lru_cache(maxsize=32)
def _font(scale: float, thickness: int) -> ImageFont.FreeTypeFont:
    # Hershey strokes of 2 px or more read as bold: DejaVu Sans Bold stands in for them
    size = max(1, round(EM_PER_SCALE * scale))
    return ImageFont.truetype(str(dejavu_sans(bold=thickness >= 2)), size)


def text_size(text: str, scale: float, thickness: int = 1) -> tuple[tuple[int, int], int]:
    """``((width, height), baseline)`` in pixels of ``text`` as :func:`put_text` draws it.

    As ``cv2.getTextSize``: ``height`` reaches from the baseline to the top of accented capitals
    and ``baseline`` below it to the lowest descender, both the font's, whatever the text, so
    labels of one size line up.

    >>> (width, height), baseline = text_size("scratch 0.91", 0.5)
    >>> width > height > baseline > 0
    True
    """
    font = _font(scale, thickness)
    ascent, descent = font.getmetrics()
    return (math.ceil(font.getlength(text)), ascent), descent


def put_text(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int],
    scale: float,
    color: tuple[int, ...],
    thickness: int = 1,
) -> None:
    """Draws ``text`` onto ``image`` in place, anti-aliased; what falls outside the image is cut off.

    Args:
        image: ``(H, W, C)`` uint8 in any channel order, ``color`` in the same.
        text: any Unicode text (one line).
        origin: ``(x, y)`` in pixels of the baseline's left end, as ``cv2.putText``'s.
        scale: the font scale, as ``cv2.putText``'s with ``FONT_HERSHEY_SIMPLEX``.
        color: one value per channel.
        thickness: as ``cv2.putText``'s: 2 or more draws bold.
    """
    font = _font(scale, thickness)
    (width, ascent), descent = text_size(text, scale, thickness)
    left = max(0, -font.getbbox(text, anchor="ls")[0]) if text else 0  # a glyph reaching left of its origin
    mask = Image.new("L", (width + left + 2, ascent + descent + 2))
    ImageDraw.Draw(mask).text((left, ascent), text, fill=255, font=font, anchor="ls")
    x0, y0 = origin[0] - left, origin[1] - ascent
    alpha = np.asarray(mask, np.float32) / 255
    # the part of the text box inside the image
    top, bottom = max(y0, 0), min(y0 + alpha.shape[0], image.shape[0])
    first, last = max(x0, 0), min(x0 + alpha.shape[1], image.shape[1])
    if top >= bottom or first >= last:
        return
    alpha = alpha[top - y0 : bottom - y0, first - x0 : last - x0, None]
    region = image[top:bottom, first:last].astype(np.float32)
    blended = region * (1 - alpha) + np.asarray(color, np.float32) * alpha
    image[top:bottom, first:last] = np.round(blended).astype(np.uint8)
