"""Image files as OpenCV reads and writes them: which file names are photos, and their bytes decoded with
one-line errors naming the file.

Native decoders (libpng inside OpenCV) print their complaints straight to the process's stderr;
:func:`decode_image_file` catches that text (:func:`captured_native_stderr`) and puts it into its one
error line instead. Sizes, decode checks and the photo readers' PIL side are :mod:`common.images`'.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from common.errors import UserError, one_line
from common.exif import directory_warnings, is_tiff, pil_open
from common.folders import path_exists
from common.io import link_loop_text

#: File suffixes read as images (lower case); ultralytics accepts all of them.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: The head of an OpenCV log line, ``[ WARN:0@0.068] global grfmt_tiff.cpp:811 readData ``: left out of
#: a message, which kept 120 characters and so lost the reason at their end.
_OPENCV_LOG_PREFIX = re.compile(
    r"^\[\s*[A-Z]+:\d+(?:@[\d.]+)?\]\s+(?:global\s+)?\S+(?::\d+| \(\d+\))\s+\w+\s+"
)
#: An OpenCV exception's text after its version and source file: ``error: (-215:Assertion failed) <what> in
#: function 'validateInputImageSize'`` (``<what>`` empty for a check, whose words follow on ``> `` lines).
_OPENCV_ERROR = re.compile(r"error: \(-?\d+:[^)]*\)\s*(?P<what>.*?)\s*(?:in function '[^']*')?\s*$")
#: OpenCV's limits on the size a header gives (its ``validateInputImageSize``): what a file over each is,
#: the environment variable that sets it and its default.
_OPENCV_SIZE_LIMITS = {
    "CV_IO_MAX_IMAGE_WIDTH": ("wider than", "OPENCV_IO_MAX_IMAGE_WIDTH", 1 << 20),
    "CV_IO_MAX_IMAGE_HEIGHT": ("taller than", "OPENCV_IO_MAX_IMAGE_HEIGHT", 1 << 20),
    "CV_IO_MAX_IMAGE_PIXELS": ("of more pixels than", "OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30),
}

_stderr_lock = threading.Lock()


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Redirects file descriptor 2 (what C libraries print to) into a list of lines while inside.

    Python-level ``sys.stderr`` writes made meanwhile are captured as well, so keep
    the block to the one native call. Falls back to doing nothing where fd 2 cannot
    be duplicated (an embedded interpreter).
    """
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield lines
        return
    with _stderr_lock, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += [line for line in sink.read().decode(errors="replace").splitlines() if line.strip()]


def decode_image_file(path: str | Path, flags: int, *, kind: str = "image") -> np.ndarray:
    """``cv2.imdecode`` of a file's bytes; otherwise a one-line :class:`~common.errors.UserError` naming the
    file.

    ``np.fromfile`` + ``imdecode`` rather than ``imread``: ``imread`` returns None
    for both "missing" and "corrupt" and cannot tell them apart. A file that PIL reads whole and OpenCV does
    not (a TIFF of 32-bit samples, of 5 samples a pixel, of uncompressed tiles) is said to be one OpenCV
    cannot read, not a corrupt one, as is one over OpenCV's size limits (``cv2.imdecode`` raised a
    ``cv2.error`` for a TIFF wider than its maximum: a traceback). A TIFF OpenCV decodes whose first page (the
    one it reads) has an uncompressed strip of too few bytes for its rows is refused
    (:func:`check_tiff_strips`): OpenCV read it without a word, rows of it wrong.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise UserError(f"cannot read {kind} {path}: {error.strerror or error}") from None
    if not data.size:
        raise UserError(f"cannot decode {kind} {path}: the file is empty")
    raised = None
    with captured_native_stderr() as native:
        try:
            array = cv2.imdecode(data, flags)
        except cv2.error as error:  # a header over OpenCV's limits, not None: its reason is in the error
            array, raised = None, error
    if array is None:
        if raised is not None:
            failure, reason = "OpenCV cannot read it", opencv_error_reason(str(raised))
        else:
            failure = "OpenCV cannot read it" if _pil_reads(path) else "corrupt or not an image"
            reason = _native_reason(native)
        detail = f" ({one_line(reason, limit=120)})" if reason else ""
        raise UserError(f"cannot decode {kind} {path}: {failure}{detail}")
    if is_tiff(path):
        _check_first_page_strips(path, kind)
    return array


def _check_first_page_strips(path: Path, kind: str) -> None:
    """:func:`check_tiff_strips` of the first page of a TIFF OpenCV has decoded, from its header (PIL's);
    nothing where PIL does not read that page's directory whole (OpenCV's decode has spoken)."""
    try:  # PIL's TIFF reader reads the header in Python, nothing decoded (a damaged one warned of once)
        with directory_warnings(path) as damaged, pil_open()(path) as image:
            tags = dict(image.tag_v2) if image.format == "TIFF" else {}
    except Exception:  # OSError, TypeError, KeyError, struct.error...: PIL does not read its directory
        return
    if tags and not damaged:
        check_tiff_strips(path, tags, kind=kind)


def check_tiff_strips(path: Path, tags: Mapping[int, object], *, kind: str = "image") -> bool:
    """Whether a TIFF page's header (its directory's ``tags``, PIL's ``tag_v2``) shows OpenCV reads its
    strips: compressed ones (their byte counts say nothing of their rows), or uncompressed strips each holding
    its rows' bytes (width, bits per sample; rows per strip, the last strip the rows left). False where the
    header cannot tell, for OpenCV's decode to decide: tiles, no strip table (or offsets and byte counts of
    other lengths), a strip of 0 bytes (which that decode names), fewer strips than the rows, separate planes.
    A YCbCr one's strips hold its subsampled blocks (2x2 luma samples by default), fewer bytes than its
    pixels.

    Raises:
        UserError: an uncompressed strip that holds some bytes but fewer than its rows need (StripByteCounts
            too small), one line naming the file: OpenCV decoded such a TIFF without a word, rows of it wrong
            (every row where every strip was short, the last strip's where it was).
    """
    offsets, counts = tags.get(273), tags.get(279)
    if not offsets or not counts or len(offsets) != len(counts) or 324 in tags:
        return False
    short = _short_strip(tags)
    if short is False:
        return False
    if short:
        index, count, rows, needed = short
        held = f"{count} byte{'' if count == 1 else 's'} where its {rows} row{'' if rows == 1 else 's'}"
        raise UserError(
            f"cannot decode {kind} {path}: OpenCV may read wrong rows of it (uncompressed strip {index} "
            f"holds {held} need {needed}: StripByteCounts too small)"
        )
    return True


def _short_strip(tags: Mapping[int, object]) -> tuple[int, int, int, int] | bool | None:
    """The first strip of an uncompressed TIFF whose byte count (tag 279) is under the bytes of its rows
    (:func:`_strip_bytes`): ``(index, count, rows, bytes needed)``; False where a strip holds 0 bytes, the
    strips are fewer than its rows need, or the header does not say what its rows hold; None where every
    strip holds its rows, or the TIFF is compressed."""
    if tags.get(259, 1) != 1:
        return None
    if (needs := _strip_bytes(tags)) is None:
        return False
    height, counts, per_strip = int(tags.get(257, 0)), tags[279], tags.get(278)
    per_strip = per_strip if isinstance(per_strip, int) and 0 < per_strip < height else height
    if 0 in counts or len(counts) * per_strip < height:
        return False
    for index, count in enumerate(counts):
        rows = max(0, min(per_strip, height - index * per_strip))
        if count < needs(rows):
            return index, int(count), rows, needs(rows)
    return None


def _strip_bytes(tags: Mapping[int, object]) -> Callable[[int], int] | None:
    """The bytes an uncompressed strip of so many rows holds: its samples' bits, each row to whole bytes; a
    YCbCr one's blocks of luma samples (its subsampling, 2x2 by default) and their two chroma samples, 8 bits
    each. None where its header does not tell (separate planes, YCbCr of other samples)."""
    if tags.get(284, 1) != 1:
        return None
    width, bits = int(tags.get(256, 0)), tags.get(258, 1)
    bits = bits if isinstance(bits, tuple) else (bits,)
    if tags.get(262) == 6:  # OpenCV reads a subsampled YCbCr TIFF: its strips hold fewer bytes than pixels
        blocks = tags.get(530) or (2, 2)
        if set(bits) != {8} or not isinstance(blocks, tuple) or len(blocks) != 2 or min(blocks) < 1:
            return None
        across, down = blocks
        return lambda rows: -(-rows // down) * -(-width // across) * (across * down + 2)
    row = -(-width * sum(bits) // 8)
    return lambda rows: rows * row


def _pil_reads(path: Path) -> bool:
    """Whether PIL decodes ``path`` whole, its directory undamaged: a file OpenCV does not read is then no
    corrupt one. Over PIL's decompression-bomb limit it cannot tell: False."""
    try:  # PIL's libtiff prints its complaints as OpenCV's does
        with captured_native_stderr(), directory_warnings(path) as damaged, pil_open()(path) as image:
            image.load()
    except Exception:  # OSError, SyntaxError, ValueError, TypeError, struct.error...: PIL does not read it
        return False
    return not damaged


def _native_reason(lines: Sequence[str]) -> str:
    """The reason among what a decoder printed (:func:`captured_native_stderr`'s lines), "" for none: the
    last message, or libtiff's last error where that is OpenCV's 'failed TIFFReadRGBATile(...)' of it (not
    any libtiff error: one of a next page's offset comes with a first page OpenCV reads); an OpenCV
    exception's text, and the lines of its check (``> ...``) after it, as :func:`opencv_error_reason` words
    them, and the head of an OpenCV log line left out (:data:`_OPENCV_LOG_PREFIX`)."""
    messages: list[str] = []
    for line in lines:
        if line.startswith(">") and messages:  # a check's lines, under the exception they belong to
            messages[-1] += "\n" + line
        else:
            messages.append(line)
    if not messages:
        return ""
    libtiff = [message for message in messages if " TIFF_Error " in message.partition("\n")[0]]
    message = messages[-1]
    if libtiff and re.search(r"failed TIFFRead\w+\(", message):
        message = libtiff[-1]
    message = _OPENCV_LOG_PREFIX.sub("", message)
    return opencv_error_reason(message) if _OPENCV_ERROR.search(message.partition("\n")[0]) else message


def opencv_error_reason(text: str) -> str:
    """An OpenCV exception's text (``OpenCV(5.1.0) /io/.../loadsave.cpp:76: error: (-215:Assertion failed)
    static_cast<size_t>(size.width) <= CV_IO_MAX_IMAGE_WIDTH in function 'validateInputImageSize'``) as a
    phrase: a size limit of OpenCV's (:data:`_OPENCV_SIZE_LIMITS`) as the side over it and the environment
    variable that raises it; a check's lines (``> Unsupported number of channels:``, ``>     'channels >= 1
    && channels <= 4'``, ``> where``, ``>     'channels' is 5``) as ``Unsupported number of channels:
    channels is 5; OpenCV needs channels >= 1 && channels <= 4``; OpenCV's words otherwise, without the
    version, source file and function."""
    head, *rest = text.strip().splitlines() or [""]
    match = _OPENCV_ERROR.search(head)
    what = match["what"] if match else head
    checks = [line.lstrip(">").strip() for line in rest if line.lstrip(">").strip()]
    if len(checks) >= 2:  # CV_Check: its message, the condition, then 'where' and each value
        values = [re.sub(r"^'([^']*)' is ", r"\1 is ", line) for line in checks[2:] if " is " in line]
        found = f": {', '.join(values)}" if values else ""
        return f"{checks[0].rstrip(':')}{found}; OpenCV needs {checks[1].strip(chr(39))}"
    for name, (over, variable, default) in _OPENCV_SIZE_LIMITS.items():
        if re.search(rf"<=\s*{name}\b", what):
            limit = os.environ.get(variable) or default
            return f"{over} its limit of {limit} pixels; the environment variable {variable} raises it"
    what = re.sub(r"static_cast<[^<>]*>\(([^()]*)\)", r"\1", what)
    return f"OpenCV's check {what} failed" if match and "Assertion failed" in head else what


def encode_image(suffix: str, pixels: np.ndarray, params: Sequence[int] = ()) -> bytes:
    """``pixels`` as the bytes of an image file of type ``suffix`` (``.jpg``, ``.png``)."""
    ok, buffer = cv2.imencode(suffix, pixels, list(params))
    if not ok:  # pragma: no cover - only on a broken OpenCV build
        raise RuntimeError(f"could not encode {suffix}")
    return buffer.tobytes()


def is_image_file(path: Path) -> bool:
    """A file with an image suffix (:data:`IMAGE_SUFFIXES`) whose name is not hidden (``.x.png``,
    macOS's ``._x.png`` resource forks).

    Raises:
        UserError: ``path`` is such a name but a link whose target is gone (a photo deleted from the
            share it points into): skipped, a good photo would leave a data set or a lot unsaid. A link
            loop is named as one (:func:`common.io.link_loop_text`).
    """
    if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
        return False
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        mode = stat.S_IFLNK  # not looked at here: the checks below say what they said
    if not stat.S_ISLNK(mode):  # one lstat, not a lstat and a stat: most photos are no links
        return stat.S_ISREG(mode)
    # path_exists: a link into, or a photo in, a folder that cannot be searched is named as such, not as a
    # broken link or as no photo (Python 3.13's Path.exists and is_symlink are False there)
    if not path_exists(path) and path.is_symlink():
        raise UserError(
            link_loop_text(path) or f"broken link: {path} points to {os.readlink(path)}, which does not exist"
        )
    return path.is_file()
