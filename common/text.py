"""Text drawn on images (overlays' labels and titles) in DejaVu Sans, so a class name draws as itself.

OpenCV's Hershey fonts know ASCII only: ``cv2.putText`` drew ``Kratzer_ä`` as ``Kratzer_??`` (one
``?`` per UTF-8 byte; OpenCV 5 draws Latin and Cyrillic, still not Greek or CJK). These two
functions stand in for ``cv2.getTextSize`` and ``cv2.putText`` with ``FONT_HERSHEY_SIMPLEX``: the
same arguments (a font scale, a thickness, the origin at the baseline's left end) and text of about
the same size, so overlays keep their layout and look.

The font is matplotlib's DejaVu Sans (matplotlib is a dependency), which covers Latin, Greek,
Cyrillic, Arabic, Hebrew and more, but not CJK: a character it lacks is drawn in the first of the
system's fonts (matplotlib's search of the OS font folders) that has it, or else as DejaVu Sans'
missing-glyph box. Nothing reaches for the network.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.fonts import dejavu_sans

#: The font's size in pixels (its em) at font scale 1: capitals stand about as tall as
#: ``FONT_HERSHEY_SIMPLEX``'s at the same scale (19 px against 20).
EM_PER_SCALE = 26


def _size(scale: float) -> int:
    return max(1, round(EM_PER_SCALE * scale))


@lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@cache
def _characters(path: str) -> frozenset[int]:
    """The code points a font file has glyphs for (of a collection's first font, the one PIL loads)."""
    from fontTools.ttLib import TTFont

    try:
        with TTFont(path, lazy=True, fontNumber=0) as font:
            return frozenset(font.getBestCmap() or ())
    except Exception:  # any font file of the system's that fontTools cannot read: it has nothing to offer
        return frozenset()


@lru_cache(maxsize=1)
def _fallback_files() -> tuple[str, ...]:
    """The system's font files, by path: where a character DejaVu Sans lacks (CJK) is looked for."""
    from matplotlib import font_manager

    return tuple(sorted(font_manager.findSystemFonts()))


@lru_cache(maxsize=4096)
def _font_file(char: str, bold: bool) -> str:
    """The font file ``char`` is drawn in: DejaVu Sans (bold or not) when it has it, else a system font."""
    dejavu = str(dejavu_sans(bold=bold))
    if ord(char) in _characters(dejavu):
        return dejavu
    return next((path for path in _fallback_files() if ord(char) in _characters(path)), dejavu)


def _runs(text: str, scale: float, thickness: int) -> list[tuple[ImageFont.FreeTypeFont, str]]:
    """``text`` cut into pieces of one font each, in order."""
    bold = thickness >= 2  # Hershey strokes of 2 px or more read as bold: DejaVu Sans Bold stands in
    pieces: list[list[str]] = []
    for char in text:
        path = _font_file(char, bold)
        if pieces and pieces[-1][0] == path:
            pieces[-1][1] += char
        else:
            pieces.append([path, char])
    return [(_font(path, _size(scale)), chars) for path, chars in pieces]


def text_size(text: str, scale: float, thickness: int = 1) -> tuple[tuple[int, int], int]:
    """``((width, height), baseline)`` in pixels of ``text`` as :func:`put_text` draws it.

    As ``cv2.getTextSize``: ``height`` reaches from the baseline to the top of accented capitals
    and ``baseline`` below it to the lowest descender, both DejaVu Sans', whatever the text, so
    labels of one size line up.

    >>> (width, height), baseline = text_size("scratch 0.91", 0.5)
    >>> width > height > baseline > 0
    True
    """
    ascent, descent = _font(str(dejavu_sans(bold=thickness >= 2)), _size(scale)).getmetrics()
    width = sum(font.getlength(chars) for font, chars in _runs(text, scale, thickness))
    return (math.ceil(width), ascent), descent


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
    if not text:
        return
    runs = _runs(text, scale, thickness)
    (width, ascent), descent = text_size(text, scale, thickness)
    margin = _size(scale) // 2  # room for a glyph reaching past the font's box (a system font's, an accent)
    left = max(0, -runs[0][0].getbbox(runs[0][1], anchor="ls")[0]) + margin
    mask = Image.new("L", (width + left + margin, ascent + descent + 2 * margin))
    draw, x = ImageDraw.Draw(mask), float(left)
    for font, chars in runs:
        draw.text((x, margin + ascent), chars, fill=255, font=font, anchor="ls")
        x += font.getlength(chars)
    x0, y0 = origin[0] - left, origin[1] - ascent - margin
    alpha = np.asarray(mask, np.float32) / 255
    # the part of the mask inside the image
    top, bottom = max(y0, 0), min(y0 + alpha.shape[0], image.shape[0])
    first, last = max(x0, 0), min(x0 + alpha.shape[1], image.shape[1])
    if top >= bottom or first >= last:
        return
    alpha = alpha[top - y0 : bottom - y0, first - x0 : last - x0, None]
    region = image[top:bottom, first:last].astype(np.float32)
    blended = region * (1 - alpha) + np.asarray(color, np.float32) * alpha
    image[top:bottom, first:last] = np.round(blended).astype(np.uint8)
