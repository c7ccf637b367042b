"""Reading photos and masks with PIL: their sizes (stored, or as OpenCV turns them), a real decode, not a
header check, and one-line errors naming the file; the commands' check of every photo before a model loads.

PIL's ``verify()`` reads a JPEG's header only, so a JPEG cut short passed as an image; :func:`image_size`
decodes the pixels (JPEGs at 1/8 scale, which still reads every entropy-coded byte, so a truncated file
fails at a fraction of the cost). A TIFF is decoded by OpenCV too (:func:`check_opencv_decodes`):
OpenCV's own reading is :mod:`common.image_files`', the orientation tag :mod:`common.exif`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from common.errors import UserError, few, one_line
from common.exif import directory_warnings, has_late_exif, is_tiff, opencv_orientation, pil_open
from common.image_files import captured_native_stderr, decode_image_file

#: A JPEG is decoded at this fraction of its size to check it: all its data is still read.
_JPEG_CHECK_SCALE = 8


def image_size(path: str | Path, *, decode: bool = True) -> tuple[int, int]:
    """``(width, height)`` of an image file after decoding it, so truncated and corrupt files fail.

    The stored size, whatever the file's EXIF orientation tag, TIFF's too (PIL's TIFF reader gives
    the turned one): a mask's size, as ``IMREAD_UNCHANGED`` reads it. OpenCV's photo readers turn a
    tagged photo: :func:`displayed_size` is the size they see.

    Args:
        path: the image file.
        decode: False reads the header alone (fast; a truncated file then passes).

    Raises:
        UserError: missing, unreadable, not an image, truncated, or over PIL's
            decompression-bomb limit; one line naming the file.
    """
    return _read(Path(path), decode=decode, orientation=False)[:2]


def image_size_and_orientation(path: str | Path) -> tuple[int, int, int]:
    """``(width, height, EXIF orientation)`` in one decode (:func:`image_size`,
    :func:`~common.exif.exif_orientation`).

    PIL finds a PNG's EXIF only by decoding the file, so asking for the two apart decodes it twice.

    Raises:
        UserError: as :func:`image_size`.
    """
    return _read(Path(path), decode=True, orientation=True)


def displayed_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` as OpenCV decodes the file: the stored size, turned by EXIF orientations 5-8.

    Header only, nothing decoded: a JPEG's, TIFF's or WebP's tag is in its header; a PNG's eXIf
    chunk is read at opening when it comes before the pixels (where cameras and PIL put it), and
    decoded for only when the chunk headers show one after them.

    Raises:
        UserError: as :func:`image_size` (a file that is no image).
    """
    width, height, turn = header_size_and_orientation(path)
    return (height, width) if turn in (5, 6, 7, 8) else (width, height)


def mask_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of the array a mask reader's ``cv2.IMREAD_UNCHANGED`` decodes, from the header.

    The stored size (:func:`image_size`), turned for a TIFF whose EXIF orientation tag swaps its sides:
    OpenCV's TIFF decoder applies the tag even then (and with ``IMREAD_IGNORE_ORIENTATION``), its JPEG,
    PNG and WebP decoders do not.

    Raises:
        UserError: as :func:`image_size` (a file that is no image).
    """
    width, height, turn = header_size_and_orientation(path)
    return (height, width) if turn in (5, 6, 7, 8) and is_tiff(path) else (width, height)


def header_size_and_orientation(path: str | Path) -> tuple[int, int, int]:
    """``(width, height, EXIF orientation)`` from the header alone: the stored size, not turned (as
    :func:`displayed_size` reads them, nothing decoded).

    Raises:
        UserError: as :func:`image_size` (a file that is no image).
    """
    return _read(Path(path), decode=False, orientation=True)


def has_alpha(path: str | Path) -> bool:
    """Whether the file holds an alpha channel or a transparent colour (PNG's ``tRNS``), from its header.

    OpenCV's ``IMREAD_COLOR`` (so every model here, ultralytics too) drops it and reads the colours beneath,
    while a browser lays the photo over the page by it: a part faded or hidden there. A file that cannot be
    read counts as opaque; reading it fails with its own error elsewhere.
    """
    try:
        with directory_warnings(path), pil_open()(path) as image:
            return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info
    except (
        OSError,
        UnidentifiedImageError,
        SyntaxError,
        ValueError,
        TypeError,
        Image.DecompressionBombError,
    ):
        return False


#: Suffixes whose files PIL reads where OpenCV cannot (32-bit or floating-point TIFF samples).
_OPENCV_CHECKED = (".tif", ".tiff")


def check_opencv_decodes(path: str | Path) -> None:
    """Decodes a TIFF with OpenCV as well, since the models read photos with OpenCV; other files pass.

    PIL (:func:`image_size`) reads TIFFs that OpenCV cannot (32-bit or floating-point samples);
    checked by PIL alone, such a photo passed a command's up-front check and stopped the run when
    reached, after the models had loaded and the photos before it were done (``detection.predict``,
    the inspection commands).

    Raises:
        UserError: a TIFF OpenCV cannot decode; one line naming it and OpenCV's reason.
    """
    if Path(path).suffix.lower() in _OPENCV_CHECKED:
        decode_image_file(path, cv2.IMREAD_COLOR)


_Read = TypeVar("_Read")


def decode_photos(
    photos: Iterable[Path],
    read: Callable[[Path], _Read] = image_size,
    *,
    unread: Mapping[Path, str] | None = None,
) -> list[_Read]:
    """``read`` of every photo, a TIFF decoded by OpenCV too (:func:`check_opencv_decodes`): the check the
    commands make before a model loads (``detection.predict``, the inspection commands, ``anomaly.predict``).

    Every photo is read before any failure is raised: stopping at the first, three bad photos took three
    runs to find.

    Args:
        photos: the photo files, in order (a ``tqdm`` over them shows progress).
        read: decodes one photo, a UserError naming it when it does not (:func:`image_size`,
            :func:`image_size_and_orientation`).
        unread: photos already found not to read, each with its one-line error (a header pass's,
            :func:`read_photos`): not read again, named with the others in their place among ``photos``.

    Returns:
        ``read``'s answer for each photo, in order.

    Raises:
        UserError: one photo that does not decode: its own line; more: one line with how many and the first
            three, each with its reason (``cannot read 3 photos: a.jpg (the file is empty), ...``).
    """
    failed = dict(unread or {})
    order: list[Path] = []
    answers = read_photos(photos, read, failed, opencv=True, order=order)
    raise_unread([(path, failed.pop(path)) for path in order if path in failed] + list(failed.items()))
    return answers


def read_photos(
    photos: Iterable[Path],
    read: Callable[[Path], _Read],
    unread: dict[Path, str],
    *,
    opencv: bool = False,
    order: list[Path] | None = None,
) -> list[_Read | None]:
    """``read`` of every photo not in ``unread``, which gains each photo whose ``read`` fails (a UserError
    naming it), with its line: a header pass (``read`` a header reader, :func:`image_size` with
    ``decode=False``) that names every bad photo with :func:`decode_photos`' own, each read once.

    Args:
        opencv: decode a TIFF by OpenCV too (:func:`check_opencv_decodes`).
        order: gains every photo's path, in order.

    Returns:
        ``read``'s answer for each photo, in order; None for one in ``unread``.
    """
    answers: list[_Read | None] = []
    for photo in photos:
        path = Path(photo)
        if order is not None:
            order.append(path)
        if path in unread:
            answers.append(None)
            continue
        try:
            answer = read(photo)
            if opencv:
                check_opencv_decodes(photo)
        except UserError as error:
            unread[path], answer = str(error), None
        answers.append(answer)
    return answers


def raise_unread(failures: Sequence[tuple[Path, str]]) -> None:
    """Nothing when ``failures`` (photos that do not read, each with its one-line error) is empty; else a
    UserError: one photo's own line; more: ``cannot read N photos: <path> (<reason>), ...``, the first three
    and how many more (:func:`common.errors.few`).
    """
    if len(failures) == 1:
        raise UserError(failures[0][1])
    if failures:
        named = [f"{path} ({_reason(path, message)})" for path, message in failures]
        raise UserError(f"cannot read {len(failures)} photos: {few(named)}")


def _reason(path: Path, message: str) -> str:
    """What a one-line error naming ``path`` says after it (``cannot read image a.jpg: the file is empty``:
    ``the file is empty``), or before it when it ends the line (``image listed in x.json is missing:
    a.jpg``: ``image listed in x.json is missing``); the whole line when it does not name it so."""
    _, named, reason = message.partition(f"{path}: ")
    if not named and message.endswith(f": {path}"):
        return message.removesuffix(f": {path}")
    return reason if named else message


def _read(path: Path, *, decode: bool, orientation: bool) -> tuple[int, int, int]:
    """The body of :func:`image_size`: the stored size; the orientation is 1 unless asked for (see
    :func:`displayed_size`)."""
    turn = 1
    try:
        with directory_warnings(path) as caught, pil_open()(path) as image:
            size = image.size
            if image.format == "TIFF":
                # PIL's TIFF reader gives the turned size at once and turns the pixels on loading
                # (dropping the tag then): the stored size and the tag, as every other format gives them
                tiff_turn = opencv_orientation(image)
                size = size[::-1] if tiff_turn in (5, 6, 7, 8) else size
                turn = tiff_turn if orientation else 1
            if decode:
                if image.format == "JPEG":  # at least 1 px: PIL's draft divides by the size asked for
                    scaled = (max(1, size[0] // _JPEG_CHECK_SCALE), max(1, size[1] // _JPEG_CHECK_SCALE))
                    image.draft(image.mode, scaled)
                image.load()
            exif_read = decode or image.format != "PNG" or "exif" in image.info
            if orientation and image.format != "TIFF" and (exif_read or has_late_exif(path)):
                # a PNG's getexif() decodes it unless its eXIf came first
                turn = opencv_orientation(image, caught)
    except Image.DecompressionBombError:
        raise UserError(
            f"cannot read image {path}: over PIL's decompression-bomb limit of {2 * Image.MAX_IMAGE_PIXELS} "
            "pixels (downscale the photo or cut it into tiles)"
        ) from None
    except FileNotFoundError:
        raise UserError(f"cannot read image {path}: no such file") from None
    except UnidentifiedImageError:
        if _is_empty(path):  # a copy cut short, a placeholder: 'not an image' sent users to its format
            raise UserError(f"cannot read image {path}: the file is empty") from None
        if _first_bytes(path, 4) == _BIG_ENDIAN_BIGTIFF:  # not its pixels: OpenCV reads them
            raise UserError(
                f"cannot read image {path}: a big-endian BigTIFF (MM), which PIL cannot read: save it as a "
                "little-endian (II) or classic TIFF, or as PNG"
            ) from None
        if depth := _opencv_only_pixels(path):  # a whole file, of a kind PIL lacks: not 'corrupt'
            raise UserError(
                f"cannot read image {path}: {depth} pixels, which PIL cannot read (OpenCV can): "
                "save it with 8 or 16 bits per channel"
            ) from None
        reason = "PIL cannot identify it"
        raise UserError(f"cannot read image {path}: corrupt or not an image ({reason})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        reason = one_line(error)
        raise UserError(f"cannot read image {path}: corrupt or not an image ({reason})") from None
    return (*size, turn)


def _opencv_only_pixels(path: Path) -> str | None:
    """``'<dtype>, <n>-channel'`` when OpenCV decodes a file PIL cannot identify (a 3-channel float32
    TIFF), else None: such a file was called corrupt. OpenCV raises, not returns None, for a header over its
    size limits (a TIFF wider than its maximum): a ``cv2.error`` traceback."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    with captured_native_stderr():
        try:
            array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        except cv2.error:
            return None
    if array is None:
        return None
    channels = 1 if array.ndim == 2 else array.shape[2]
    return f"{array.dtype}, {channels}-channel"


#: The first bytes of a big-endian BigTIFF, which PIL (13.0) takes for a classic TIFF and cannot open.
_BIG_ENDIAN_BIGTIFF = b"MM\x00+"


def _first_bytes(path: Path, count: int) -> bytes:
    """The first ``count`` bytes of ``path`` (fewer, or none when it cannot be read)."""
    with contextlib.suppress(OSError), open(path, "rb") as file:
        return file.read(count)
    return b""


def _is_empty(path: Path) -> bool:
    """Whether ``path`` is a file of 0 bytes (False when it cannot be looked at)."""
    try:
        return path.stat().st_size == 0
    except OSError:
        return False
