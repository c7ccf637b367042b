"""TIFF files written byte by byte, for the tests of what OpenCV and PIL make of their headers."""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np


def raw_tiff(
    samples: int = 3,
    *,
    width: int = 32,
    height: int = 32,
    tile: int = 0,
    extra: tuple = (),
    next_page: int = 0,
    strip: int = 0,
    counts: Callable[[list[int]], list[int]] | None = None,
    pages: int = 1,
    colour: int = 0,
) -> bytes:
    """An uncompressed little-endian 8-bit TIFF of ``samples`` per pixel, ``width x height`` (random
    pixels), in one strip (in ``strip``-row strips), or in ``tile``-square tiles, with ``extra`` tags
    ((tag, type, values), type 3 or 4), a next page's offset, and ``counts`` (of the strips' byte counts)
    the byte counts the first page's directory gives, ``colour`` its photometric interpretation (0: RGB,
    or grey for 1 or 2 samples). ``pages`` > 1: that many pages of those pixels, only the first (the one
    OpenCV decodes) with ``counts``."""
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, samples), dtype=np.uint8)
    out, directories = bytearray(b"II*\0\0\0\0\0"), []
    for page in range(pages):
        first = counts if page == 0 else None
        entries = sorted([*_page(out, pixels, tile=tile, strip=strip, counts=first, colour=colour), *extra])
        directories.append((entries, [_placed(out, kind, values) for _, kind, values in entries]))
    link = 4  # where the offset of the next directory goes
    for entries, places in directories:
        struct.pack_into("<I", out, link, len(out))
        out += struct.pack("<H", len(entries))
        for (tag, kind, values), place in zip(entries, places, strict=True):
            out += struct.pack("<HHI", tag, kind, len(values)) + place
        link = len(out)
        out += b"\0\0\0\0"
    struct.pack_into("<I", out, link, next_page)
    return bytes(out)


def _page(out: bytearray, pixels: np.ndarray, *, tile: int, strip: int, counts, colour: int) -> list[tuple]:
    """A page's pixels added to ``out``, and its directory's entries (tag, type, values)."""
    height, width, samples = pixels.shape
    step, across = tile or strip or height, tile or width
    chunks = [
        pixels[y : y + step, x : x + across].tobytes()
        for y in range(0, height, step)
        for x in range(0, width, across)
    ]
    offsets = []
    for chunk in chunks:
        offsets.append(len(out))
        out += chunk
    sizes = [len(chunk) for chunk in chunks]
    layout = [(322, 4, [tile]), (323, 4, [tile]), (324, 4, offsets), (325, 4, sizes)]
    if not tile:
        layout = [(273, 4, offsets), (278, 4, [step]), (279, 4, counts(sizes) if counts else sizes)]
    colour = colour or (2 if samples > 2 else 1)
    common = [
        (256, 4, [width]),
        (257, 4, [height]),
        (258, 3, [8] * samples),
        (259, 3, [1]),
        (262, 3, [colour]),
    ]
    return [*common, (277, 3, [samples]), (284, 3, [1]), *layout]


def _placed(out: bytearray, kind: int, values: list[int]) -> bytes:
    """An entry's value field: the values themselves where they fit in 4 bytes, else the offset of them,
    added to ``out``."""
    data = struct.pack(f"<{len(values)}{'H' if kind == 3 else 'I'}", *values)
    if len(data) <= 4:
        return data.ljust(4, b"\0")
    place = struct.pack("<I", len(out))
    out += data
    return place
