"""What a photo's pixels hold, as the models will read them: 16-bit photos with 14 bits or fewer used
(read nearly black once their low 8 bits are dropped), grey or colour, and which photos of a long list a
check reads when it reads only some."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from common.image_files import captured_native_stderr

#: A 16-bit photo whose values all lie below this holds camera data of at most 14 bits (10-, 12- and
#: 14-bit sensors are common): read as 8 bits it uses a quarter of the grey levels or fewer.
NARROW_LIMIT = 1 << 14


#: The first bytes of a PNG, and of a TIFF (classic or BigTIFF, either byte order): of the
#: :data:`~common.image_files.IMAGE_SUFFIXES`' formats, those that hold 16-bit pixels.
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


def photo_colour(image: np.ndarray) -> str:
    """``"grey"`` for an RGB array whose three channels are equal (a grey photo read as RGB), else
    ``"colour"``: a PatchCore run fit on one kind scores the other as far from every good patch, and a
    colour head or colour prompt reads nothing in a grey one."""
    grey = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    return "grey" if grey else "colour"
