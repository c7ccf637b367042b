"""The EXIF (and TIFF) directory of a photo or mask: its orientation tag as OpenCV applies it, the
refusal of a turned defect image or TIFF mask, and PIL's warnings of a damaged directory as one line naming
the file.

OpenCV (so ultralytics, SAM's readers and every mask drawn on what they show) applies the orientation
tag, while PIL's size and a mask file's pixels are the stored ones: the two disagree. Sizes read with the
tag are :mod:`common.images`'.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image, TiffImagePlugin, UnidentifiedImageError
from tqdm import tqdm

from common.errors import UserError, one_line

#: The EXIF tag of an image's orientation; 1 (or 0, unset) is upright.
EXIF_ORIENTATION = 0x0112


def pil_open():
    """PIL's own ``Image.open``, also once ultralytics has replaced it.

    ultralytics' replacement answers a file PIL cannot identify by trying to
    install ``pi-heif`` (or printing a warning that it may not) before failing.
    """
    opener = Image.open
    if opener.__module__ == Image.__name__:
        return opener
    return getattr(sys.modules.get(opener.__module__), "_image_open", opener)


#: Images whose damaged EXIF (or TIFF) directory was warned of: each once a run, however often it is read.
_DAMAGED_DIRECTORY_WARNED: set[Path] = set()

#: Held while a thread checks and records a file in ``_DAMAGED_DIRECTORY_WARNED``: two threads reading one
#: damaged photo at once (the annotation server's, for concurrent requests) each wrote its warning line.
_DAMAGED_DIRECTORY_LOCK = threading.Lock()


class _DirectoryWarnings:
    """Stands in for the ``warnings`` module in PIL's ``TiffImagePlugin``, whose every warning is of a
    damaged EXIF (or TIFF) directory: inside :meth:`kept` (in this thread) they are kept for the caller,
    elsewhere they are warned as PIL warns them.

    ``warnings.catch_warnings`` around each read reset Python's record of the warnings shown, so a warning
    shown once per place (a model's, in a loop over photos) came again after every photo read; it also
    swaps the process-wide filters and ``showwarning``, which two threads reading at once (the annotation
    server's) left swapped unless one lock held every read.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def __getattr__(self, name: str) -> object:
        return getattr(warnings, name)

    def warn(self, message: object, category: type[Warning] | None = None, stacklevel: int = 1, **kwargs):
        caught = getattr(self._local, "caught", None)
        if caught is not None:
            caught.append(str(message))
            return
        warnings.warn(message, category, stacklevel + 1, **kwargs)  # named as PIL's line, as before

    @contextlib.contextmanager
    def kept(self) -> Iterator[list[str]]:
        """The messages of the warnings PIL's TIFF code gives inside, in this thread, instead of warned."""
        outer = getattr(self._local, "caught", None)
        self._local.caught = caught = []
        try:
            yield caught
        finally:
            self._local.caught = outer


_TIFF_WARNINGS = _DirectoryWarnings()
TiffImagePlugin.warnings = _TIFF_WARNINGS  # type: ignore[attr-defined]


@contextlib.contextmanager
def directory_warnings(path: str | Path) -> Iterator[list[str]]:
    """Puts PIL's warnings of a damaged EXIF (or TIFF) directory, met while inside, into one ``warning:``
    line naming the file, once a file; other warnings pass on as they come (:class:`_DirectoryWarnings`).

    PIL skips what it cannot read of a directory (a tag whose data runs past its end, one cut short) with
    a Python ``UserWarning`` that named neither the file nor the command's concern, and the photo reads.
    Yields the messages of those met so far (:func:`opencv_orientation` reads which tags were skipped).
    """
    with _TIFF_WARNINGS.kept() as damaged:
        yield damaged
    with _DAMAGED_DIRECTORY_LOCK:
        if not damaged or Path(path) in _DAMAGED_DIRECTORY_WARNED:
            return
        _DAMAGED_DIRECTORY_WARNED.add(Path(path))
    what = "TIFF directory" if is_tiff(path) else "EXIF data"
    reason = one_line(damaged[0].replace(".  ", ". ").strip())
    # a converter reads its photos under a progress bar: tqdm.write puts the line above it, not after it
    tqdm.write(f"warning: image {path}: damaged {what}, read in part (PIL: {reason})", file=sys.stderr)


def exif_orientation(path: str | Path) -> int:
    """The file's EXIF orientation: 1 (upright) when it has none; 5 to 8 swap width and height.

    OpenCV (and so ultralytics, SAM's readers and every mask drawn on what they show) applies
    it, while PIL's size and a mask file's pixels are the stored ones: the two disagree. A file
    that cannot be read counts as upright here; reading it fails with its own error elsewhere.
    """
    try:
        with directory_warnings(path) as caught, pil_open()(path) as image:
            if image.format == "PNG" and "exif" not in image.info and not has_late_exif(Path(path)):
                return 1  # PIL's getexif() would decode the whole PNG to look for a late eXIf chunk
            return opencv_orientation(image, caught)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, TypeError):
        return 1
    except Image.DecompressionBombError:  # over PIL's limit: image_size and load_rgb refuse it themselves
        return 1


#: The EXIF tags OpenCV's reader parses ahead of the orientation (ImageDescription, Make, Model; a
#: directory lists its tags in ascending order). It stops at the first of its tags whose data it cannot
#: read, so a JPEG where PIL skipped one of these reads as stored, whatever orientation PIL finds after it.
OPENCV_EXIF_TAGS_BEFORE_ORIENTATION = frozenset({270, 271, 272})


def opencv_orientation(image: Image.Image, caught: Sequence[str] = ()) -> int:
    """The image's EXIF orientation tag as OpenCV applies it: 1 when absent or outside 1-8 (OpenCV reads
    such a file upright), and 1 for a JPEG whose EXIF OpenCV gave up on before the tag.

    Args:
        caught: the messages of the warnings PIL gave while opening ``image`` and reading its EXIF
            (:func:`directory_warnings`): ``Skipping tag 270`` names a tag it could not read.
    """
    value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    if image.format == "JPEG" and _skipped_tags(caught) & OPENCV_EXIF_TAGS_BEFORE_ORIENTATION:
        return 1
    return value if 1 <= value <= 8 else 1


def _skipped_tags(caught: Sequence[str]) -> set[int]:
    """The tags PIL's warnings say it skipped (``Tag data larger than file. Skipping tag 270``)."""
    found = (re.search(r"Skipping tag (\d+)", message) for message in caught)
    return {int(match.group(1)) for match in found if match}


def is_rotated(path: str | Path) -> bool:
    """True when the file carries an EXIF orientation other than upright (:func:`exif_orientation`)."""
    return exif_orientation(path) != 1


def is_tiff(path: str | Path) -> bool:
    """Whether the file's first bytes are a TIFF's (classic or BigTIFF, either byte order): OpenCV picks its
    decoder by them, whatever the suffix. False when it cannot be read."""
    with contextlib.suppress(OSError), open(path, "rb") as file:
        return file.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    return False


def has_late_exif(path: Path) -> bool:
    """Whether a PNG holds an eXIf chunk after its pixels (PIL finds it only by decoding; OpenCV applies it).

    Walks the chunk headers, seeking past each chunk's data: nothing is decoded.
    """
    with contextlib.suppress(OSError, struct.error), open(path, "rb") as file:
        file.seek(8)  # the PNG signature
        while header := file.read(8):
            length, kind = struct.unpack(">I4s", header)
            if kind == b"eXIf":
                return True
            if kind == b"IEND":
                return False
            file.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    return False


def check_upright(image: str | Path, orientation: int) -> None:
    """Refuses a defect image whose EXIF orientation tag (:func:`exif_orientation`) turns or mirrors it.

    OpenCV and ultralytics apply the tag (a phone photo taken sideways) and see the image turned,
    while its mask, and every label or score made from it, stay as stored: each would be misplaced.

    Raises:
        UserError: the tag is anything but 1 (upright), naming the image.
    """
    if orientation != 1:
        raise UserError(
            f"{image} has an EXIF orientation tag: OpenCV and ultralytics turn it on reading but "
            "not its mask, so its labels would be misplaced; save it upright (PIL.ImageOps.exif_transpose) "
            "with its mask drawn on the upright image"
        )


def check_mask_upright(mask: str | Path) -> None:
    """Refuses a TIFF mask whose EXIF orientation tag turns or mirrors it (anything but 1).

    OpenCV's TIFF decoder applies the tag to a mask too, even with ``IMREAD_UNCHANGED`` and
    ``IMREAD_IGNORE_ORIENTATION`` (:func:`common.images.mask_size`), while its photo is read upright (a
    tagged defect photo is refused, :func:`check_upright`): a square mask passed every size check and was
    converted and scored turned under its photo. OpenCV reads a JPEG, PNG or WebP mask as stored, tag or not.

    The tag is read from the TIFF's first directory alone (:func:`tiff_orientation`): PIL cannot open a
    3-channel float32 TIFF, or one over its decompression-bomb limit, which OpenCV reads and turns all the
    same; such a mask counted as untagged and passed.

    Raises:
        UserError: naming the mask and its tag, or its header that does not read.
    """
    if is_tiff(mask) and (turn := tiff_orientation(mask, what="mask")) != 1:
        raise UserError(
            f"mask {mask} has an EXIF orientation tag ({turn}): OpenCV turns a TIFF on "
            "reading, a mask too, so its defects would be misplaced on its photo; save it without the tag, "
            "its pixels as they lie on the photo (or as PNG, whose tag OpenCV does not apply)"
        )


def tiff_orientation(path: str | Path, *, what: str = "image") -> int:
    """The orientation tag of a TIFF's first directory (classic or BigTIFF, either byte order), 1 when absent
    or outside 1-8, read from the header with PIL's directory reader: neither its pixel format (a 3-channel
    float32 TIFF, which ``Image.open`` refuses) nor its size (PIL's decompression-bomb limit) matters.

    Raises:
        UserError: the file or its first directory does not read, naming ``what`` and the file.
    """
    try:
        with open(path, "rb") as file:
            header = file.read(8)
            order = header[:2]
            if header[:4] in (b"II+\x00", b"MM\x00+"):  # BigTIFF: an 8-byte offset follows
                # PIL (13.0) takes a big-endian one for classic by its 3rd byte (0, not 43) and reads
                # 12-byte entries: given the little-endian magic, the byte order apart, it reads both
                header = b"II+\x00" + header[4:] + file.read(8)
            directory = TiffImagePlugin.ImageFileDirectory_v2(header, prefix=order)
            file.seek(directory.next)
            with _TIFF_WARNINGS.kept() as caught:  # PIL warns of a directory cut short
                directory.load(file)
            value = directory.get(EXIF_ORIENTATION)
    except struct.error:
        raise UserError(f"cannot read the TIFF header of {what} {path}: it is cut short") from None
    except (OSError, SyntaxError, ValueError, TypeError, IndexError) as error:
        detail = error.strerror if isinstance(error, OSError) and error.strerror else one_line(error)
        raise UserError(f"cannot read the TIFF header of {what} {path}: {detail}") from None
    if value is None and any("Corrupt EXIF" in message for message in caught):
        raise UserError(f"cannot read the TIFF header of {what} {path}: its first directory is cut short")
    value = value[0] if isinstance(value, tuple) and value else value
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
