"""Reading image files: one-line errors naming the file, and a real decode, not a header check.

PIL's ``verify()`` reads a JPEG's header only, so a JPEG cut short passed as an
image; :func:`image_size` decodes the pixels (JPEGs at 1/8 scale, which still
reads every entropy-coded byte, so a truncated file fails at a fraction of the
cost). Native decoders (libpng inside OpenCV) print their complaints straight to
the process's stderr; :func:`decode_image_file` catches that text and puts it
into its one error line instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, TiffImagePlugin, UnidentifiedImageError
from tqdm import tqdm

from common.errors import UserError, few, one_line
from common.io import link_loop_text

#: File suffixes read as images (lower case); ultralytics accepts all of them.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: The EXIF tag of an image's orientation; 1 (or 0, unset) is upright.
EXIF_ORIENTATION = 0x0112
#: A JPEG is decoded at this fraction of its size to check it: all its data is still read.
_JPEG_CHECK_SCALE = 8
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
    """``cv2.imdecode`` of a file's bytes; a one-line :class:`UserError` naming the file otherwise.

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
    if path.is_symlink() and not path.exists():
        raise UserError(
            link_loop_text(path) or f"broken link: {path} points to {os.readlink(path)}, which does not exist"
        )
    return path.is_file()


#: A 16-bit photo whose values all lie below this holds camera data of at most 14 bits (10-, 12- and
#: 14-bit sensors are common): read as 8 bits it uses a quarter of the grey levels or fewer.
NARROW_LIMIT = 1 << 14


#: The first bytes of a PNG, and of a TIFF (classic or BigTIFF, either byte order): of the
#: :data:`IMAGE_SUFFIXES`' formats, those that hold 16-bit pixels.
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: The first bytes of a JPEG and of a BMP, formats of 8 bits a channel (a WebP: ``RIFF``, then ``WEBP``).
_JPEG_OR_BMP_SIGNATURES = (b"\xff\xd8\xff", b"BM")


def is_narrow_16bit(path: str | Path) -> bool:
    """Whether ``path`` is a 16-bit PNG or TIFF whose values all lie below :data:`NARROW_LIMIT` (camera data
    of 14 bits or fewer: 10-, 12-, 14-bit sensors).

    OpenCV's ``IMREAD_COLOR`` (so ultralytics and every reader here) turns 16-bit pixels into 8
    bits by dropping the low 8: 12-bit data reads as grey levels 0-15, 10-bit data as 0-3, nearly
    black to every model. Only 16-bit files are decoded (a PNG's bit depth is in its header).
    """
    return narrow_16bit_max(path) is not None


def narrow_16bit_max(path: str | Path) -> int | None:
    """The largest value of a 16-bit PNG or TIFF whose values all lie below :data:`NARROW_LIMIT`
    (:func:`is_narrow_16bit`), an opaque alpha aside; None for any other file, or one that does not read."""
    with contextlib.suppress(OSError):
        top = _16bit_max(Path(path))
        return top if top is not None and top < NARROW_LIMIT else None
    return None


def _16bit_max(path: Path) -> int | None:
    """The largest value of a 16-bit PNG or TIFF, an opaque alpha aside; None for any other image file.

    The format is the one the file's first bytes give, as OpenCV picks its decoder (a 16-bit PNG named
    ``.jpg`` is read as one): only 16-bit PNGs (from the header) and TIFFs are decoded; a JPEG, BMP or
    WebP is read for its first bytes alone.

    Raises:
        OSError: a file that does not open, is empty or starts as no image file read here, a PNG without
            a whole header, or a 16-bit PNG or a TIFF that does not decode.
    """
    with open(path, "rb") as file:
        head = file.read(25)  # a PNG's signature, IHDR length and type, width, height, bit depth
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 25:
            raise OSError(f"{path} is too short for a PNG header")
        if head[24] != 16:
            return None
    elif not head.startswith(_TIFF_SIGNATURES):
        if head.startswith(_JPEG_OR_BMP_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            return None  # 8 bits a channel
        raise OSError(f"{path} is {'empty' if not head else 'not a PNG, TIFF, JPEG, BMP or WebP file'}")
    # from the bytes: OpenCV's file-based imread (5.1) fails on a TIFF an EXIF tag turns a quarter
    data = np.fromfile(path, dtype=np.uint8)
    with captured_native_stderr():
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise OSError(f"{path} does not decode")
    if image.dtype != np.uint16:
        return None
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]  # an opaque alpha is 65535; IMREAD_COLOR drops it
    return int(image.max())


def spread_indices(count: int, picks: int) -> list[int]:
    """Up to ``picks`` indices into a list of ``count``, evenly spread from its first to its last: the
    photos a check reads when it reads only some (a list is often sorted by lot or camera, and its first
    photos alone tell one end of it).

    >>> spread_indices(120, 3), spread_indices(2, 3), spread_indices(0, 3)
    ([0, 59, 119], [0, 1], [])
    """
    if count <= 0 or picks <= 0:
        return []
    if picks == 1:
        return [0]
    return sorted({i * (count - 1) // (picks - 1) for i in range(picks)})


#: How many photos the commands that hand a photo folder to ultralytics (``detection.train``,
#: ``.evaluate``, ``.predict``) check for 12-bit data (:func:`warn_narrow_photos`), spread over the list
#: (:func:`spread_indices`): a 16-bit photo is decoded once more to find its largest value, a second full
#: read of every photo of a large set; a camera writes all its photos alike, and the spread reaches each
#: end of a list sorted by lot or camera.
NARROW_PHOTO_SAMPLE = 16


def narrow_photo_warnings(images: Sequence[Path], *, sample: int | None = None) -> list[str]:
    """One line when photos are 16-bit with 14 bits or fewer used (:func:`is_narrow_16bit`): the converters,
    the ``anomaly``, ``inspection`` and ``detection`` commands warn with it. It names the first such photo
    and its largest value, and the bit depth the largest value of them all needs, which sets the grey
    levels they read as and the division that rescales them. A photo that does not read (missing, empty,
    no image by its first bytes, a 16-bit PNG or a TIFF that does not decode) is passed over, not counted
    among those checked (a JPEG, BMP or WebP is read for its first bytes alone): the command names it
    where it reads the photos (ultralytics' scan, a detection split's).

    Args:
        images: the photos, in the order the command reads them.
        sample: check only ``sample`` photos spread over the list (:func:`spread_indices`; the line then
            says how many of those checked); None: all.
    """
    picked = images if sample is None else [images[i] for i in spread_indices(len(images), sample)]
    checked, narrow = 0, []
    for image in picked:
        try:
            top = _16bit_max(Path(image))
        except OSError:
            continue
        checked += 1
        if top is not None and top < NARROW_LIMIT:
            narrow.append((image, top))
    if not narrow:
        return []
    count = len(narrow)
    verb = "is" if count == 1 else "are"
    photos = f"1 photo {verb}" if count == 1 else f"{count} photos {verb}"
    if len(picked) < len(images):
        looked = f"{checked} photo{'' if checked == 1 else 's'} checked across the {len(images)}"
        photos = f"the {looked} {verb}" if count == checked else f"{count} of the {looked} {verb}"
    first, top = narrow[0]
    bits = max(8, max(value for _, value in narrow).bit_length())  # 4095: 12 bits; 1000: 10
    shift = 1 << (bits - 8)
    looks = "black" if bits == 8 else "nearly black" if bits <= 12 else "dark"
    rescale = f"value // {shift}" if shift > 1 else "the values as they are"
    levels = f"grey levels 0-{shift - 1}" if shift > 1 else "grey level 0"
    return [
        f"{photos} 16-bit with every value below {1 << bits} ({bits}-bit camera data?), "
        f"e.g. {first} (values up to {top}): OpenCV and ultralytics read 16-bit photos by dropping the low "
        f"8 bits, so every model sees them {looks} ({levels}); save them as 8-bit with "
        f"their full range first ({rescale})"
    ]


def warn_narrow_photos(images: Sequence[Path], *, sample: int | None = None) -> None:
    """:func:`narrow_photo_warnings` as a ``warning:`` line on stderr (PatchCore's fit and scored images,
    the inspection commands' photos, the detection commands' with ``sample``): read by dropping their low
    8 bits, such photos reach every model nearly black (12-bit data: grey levels 0-15)."""
    for line in narrow_photo_warnings(images, sample=sample):
        print(f"warning: {line}", file=sys.stderr, flush=True)


def _pil_open():
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
def _directory_warnings(path: str | Path) -> Iterator[list[str]]:
    """Puts PIL's warnings of a damaged EXIF (or TIFF) directory, met while inside, into one ``warning:``
    line naming the file, once a file; other warnings pass on as they come (:class:`_DirectoryWarnings`).

    PIL skips what it cannot read of a directory (a tag whose data runs past its end, one cut short) with
    a Python ``UserWarning`` that named neither the file nor the command's concern, and the photo reads.
    Yields the messages of those met so far (:func:`_orientation` reads which tags were skipped).
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
        with _directory_warnings(path) as caught, _pil_open()(path) as image:
            if image.format == "PNG" and "exif" not in image.info and not _late_exif(Path(path)):
                return 1  # PIL's getexif() would decode the whole PNG to look for a late eXIf chunk
            return _orientation(image, caught)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, TypeError):
        return 1
    except Image.DecompressionBombError:  # over PIL's limit: image_size and load_rgb refuse it themselves
        return 1


#: The EXIF tags OpenCV's reader parses ahead of the orientation (ImageDescription, Make, Model; a
#: directory lists its tags in ascending order). It stops at the first of its tags whose data it cannot
#: read, so a JPEG where PIL skipped one of these reads as stored, whatever orientation PIL finds after it.
OPENCV_EXIF_TAGS_BEFORE_ORIENTATION = frozenset({270, 271, 272})


def _orientation(image: Image.Image, caught: Sequence[str] = ()) -> int:
    """The image's EXIF orientation tag as OpenCV applies it: 1 when absent or outside 1-8 (OpenCV reads
    such a file upright), and 1 for a JPEG whose EXIF OpenCV gave up on before the tag.

    Args:
        caught: the messages of the warnings PIL gave while opening ``image`` and reading its EXIF
            (:func:`_directory_warnings`): ``Skipping tag 270`` names a tag it could not read.
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


def has_alpha(path: str | Path) -> bool:
    """Whether the file holds an alpha channel or a transparent colour (PNG's ``tRNS``), from its header.

    OpenCV's ``IMREAD_COLOR`` (so every model here, ultralytics too) drops it and reads the colours beneath,
    while a browser lays the photo over the page by it: a part faded or hidden there. A file that cannot be
    read counts as opaque; reading it fails with its own error elsewhere.
    """
    try:
        with _directory_warnings(path), _pil_open()(path) as image:
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


def is_tiff(path: str | Path) -> bool:
    """Whether the file's first bytes are a TIFF's (classic or BigTIFF, either byte order): OpenCV picks its
    decoder by them, whatever the suffix. False when it cannot be read."""
    with contextlib.suppress(OSError), open(path, "rb") as file:
        return file.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    return False


def header_size_and_orientation(path: str | Path) -> tuple[int, int, int]:
    """``(width, height, EXIF orientation)`` from the header alone: the stored size, not turned (as
    :func:`displayed_size` reads them, nothing decoded).

    Raises:
        UserError: as :func:`image_size` (a file that is no image).
    """
    return _read(Path(path), decode=False, orientation=True)


def _opencv_only_pixels(path: Path) -> str | None:
    """``'<dtype>, <n>-channel'`` when OpenCV decodes a file PIL cannot identify (a 3-channel float32
    TIFF), else None: such a file was called corrupt."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    with captured_native_stderr():
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
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


def _late_exif(path: Path) -> bool:
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
    ``IMREAD_IGNORE_ORIENTATION`` (:func:`mask_size`), while its photo is read upright (a tagged defect
    photo is refused, :func:`check_upright`): a square mask passed every size check and was converted and
    scored turned under its photo. OpenCV reads a JPEG, PNG or WebP mask as stored, tag or not.

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


def image_size_and_orientation(path: str | Path) -> tuple[int, int, int]:
    """``(width, height, EXIF orientation)`` in one decode (:func:`image_size`, :func:`exif_orientation`).

    PIL finds a PNG's EXIF only by decoding the file, so asking for the two apart decodes it twice.

    Raises:
        UserError: as :func:`image_size`.
    """
    return _read(Path(path), decode=True, orientation=True)


def _read(path: Path, *, decode: bool, orientation: bool) -> tuple[int, int, int]:
    """The body of :func:`image_size`: the stored size; the orientation is 1 unless asked for (see
    :func:`displayed_size`)."""
    turn = 1
    try:
        with _directory_warnings(path) as caught, _pil_open()(path) as image:
            size = image.size
            if image.format == "TIFF":
                # PIL's TIFF reader gives the turned size at once and turns the pixels on loading
                # (dropping the tag then): the stored size and the tag, as every other format gives them
                tiff_turn = _orientation(image)
                size = size[::-1] if tiff_turn in (5, 6, 7, 8) else size
                turn = tiff_turn if orientation else 1
            if decode:
                if image.format == "JPEG":  # at least 1 px: PIL's draft divides by the size asked for
                    scaled = (max(1, size[0] // _JPEG_CHECK_SCALE), max(1, size[1] // _JPEG_CHECK_SCALE))
                    image.draft(image.mode, scaled)
                image.load()
            exif_read = decode or image.format != "PNG" or "exif" in image.info
            if orientation and image.format != "TIFF" and (exif_read or _late_exif(path)):
                turn = _orientation(image, caught)  # a PNG's getexif() decodes it unless its eXIf came first
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


def photo_colour(image: np.ndarray) -> str:
    """``"grey"`` for an RGB array whose three channels are equal (a grey photo read as RGB), else
    ``"colour"``: a PatchCore run fit on one kind scores the other as far from every good patch, and a
    colour head or colour prompt reads nothing in a grey one."""
    grey = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    return "grey" if grey else "colour"
