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
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from common.errors import UserError, one_line
from common.folders import path_exists
from common.io import link_loop_text

#: File suffixes read as images (lower case); ultralytics accepts all of them.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: The head of an OpenCV log line, ``[ WARN:0@0.068] global grfmt_tiff.cpp:811 readData ``: left out of
#: a message, which kept 120 characters and so lost the reason at their end.
_OPENCV_LOG_PREFIX = re.compile(
    r"^\[\s*[A-Z]+:\d+(?:@[\d.]+)?\]\s+(?:global\s+)?\S+(?::\d+| \(\d+\))\s+\w+\s+"
)

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
    for both "missing" and "corrupt" and cannot tell them apart.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise UserError(f"cannot read {kind} {path}: {error.strerror or error}") from None
    if not data.size:
        raise UserError(f"cannot decode {kind} {path}: the file is empty")
    with captured_native_stderr() as native:
        array = cv2.imdecode(data, flags)
    if array is None:
        detail = f" ({one_line(_OPENCV_LOG_PREFIX.sub('', native[-1]), limit=120)})" if native else ""
        raise UserError(f"cannot decode {kind} {path}: corrupt or not an image{detail}")
    return array


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
