"""The photos of an inspection: what ``--source`` names, and a unique output name for each.

``--source`` is one image file, a folder (searched recursively), or a glob
pattern (``"lot_7/**/*.png"``, quoted so that the shell leaves it alone), as for
every prediction command (:func:`common.photo_sources.photo_files`). Each photo gets:

- ``file_name``: its path relative to the source folder (to the pattern's
  folder for a glob; its own name for a single file), as ``images.json`` and
  ``predictions.json`` name it;
- ``name``: that path without its suffix, folders joined by ``__`` as the
  annotation app names its stems (``lot_2/a.png`` -> ``lot_2__a``), the stem of
  every file written for it (``overlays/<name>.jpg``, ``<name>_mask.png``...).
  Two photos whose names would be equal (``x.png`` and ``x.jpg`` in one folder,
  ``a__b/c.png`` and ``a/b__c.png``) are refused, both named, before anything
  runs; names are compared ignoring case, as a case-insensitive file system would.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from common.exif import check_upright
from common.folders import check_unique_names, output_name
from common.images import decode_photos, image_size, image_size_and_orientation
from common.photo_sources import photo_files
from common.pixels import warn_narrow_photos


@dataclass(frozen=True)
class Photo:
    """One photo to inspect and how the outputs name it.

    Attributes:
        path: the image file.
        file_name: its name in ``images.json`` / ``predictions.json`` (posix, relative to the source).
        name: unique stem of the files written for it (no folders, no suffix).
        image_id: its COCO image id (1..N for new photos; a split's ids for its images).
    """

    path: Path
    file_name: str
    name: str
    image_id: int


def find_photos(source: str | Path) -> list[Photo]:
    """The photos ``source`` names, sorted by path, ids 1..N; nothing is decoded here.

    Args:
        source: an image file, a folder (recursive, by suffix: :data:`common.image_files.IMAGE_SUFFIXES`)
            or a glob pattern (``**`` matches any number of folders).

    Raises:
        UserError: nothing at ``source``, a folder without image files, a pattern matching no
            image file, two photos that would share an output name, or a name that is not UTF-8.
    """
    files, base = photo_files(source)
    relative = [path.name if base is None else path.relative_to(base).as_posix() for path in files]
    photos = [
        Photo(path=path, file_name=name, name=output_name(name), image_id=index)
        for index, (path, name) in enumerate(zip(files, relative, strict=True), start=1)
    ]
    check_unique_names((photo.name, photo.path) for photo in photos)
    return photos


def check_photos(
    photos: Sequence[Photo],
    *,
    progress: bool = True,
    desc: str = "checking photos",
    labelled: bool = False,
    unread: Mapping[Path, str] | None = None,
) -> int:
    """Decodes every photo once (:func:`common.images.image_size`), so bad ones stop the run up front; returns
    the longest side in px of them all (0: none), which the tiling note weighs
    (:func:`detection.weights.tiling_note`: a tile that long runs each photo whole).

    Args:
        photos: anything with a ``path`` (a :class:`Photo`, a split's ``SegmentationImage``).
        labelled: ``photos`` are a split's images (``annotations``): one with annotations must be
            upright (:func:`common.exif.check_upright`, as the converters made it). A photo whose
            file gained an EXIF orientation since (the original a symlinked split points to,
            re-saved by a phone app) is read turned, its masks are not: scored on misplaced masks
            without a word when square, refused mid-run by the size check otherwise.
        unread: photos already found not to read (a split's header pass: ``load_split``'s ``keep_unread``),
            each with its one-line error: not read again, named with those that do not decode.

    12-bit camera data in 16-bit files (every value below 4096) gets a ``warning:`` line on stderr, as
    the converters and ``anomaly.train`` give it: read by dropping the low 8 bits, such photos reach
    both models nearly black (grey levels 0-15), and their verdicts and masks mean nothing.

    A TIFF is decoded by OpenCV too, as the models read every photo
    (:func:`common.images.check_opencv_decodes`).

    Raises:
        UserError: photos that are missing, not images, truncated, or TIFFs OpenCV cannot decode, or in
            ``unread``, one line naming them all (the first three and how many more:
            :func:`common.images.decode_photos`); then a labelled one turned by an EXIF tag, one line naming
            it.
    """
    annotated = {photo.path for photo in photos if labelled and photo.annotations}
    paths = [photo.path for photo in photos]
    read = decode_photos(
        tqdm(paths, desc=desc, unit="photo", disable=not progress, file=sys.stderr),
        functools.partial(_side_and_orientation, annotated=annotated),
        unread=unread,
    )
    for path, (_, turn) in zip(paths, read, strict=True):
        check_upright(path, turn)
    warn_narrow_photos(paths)
    return max((side for side, _ in read), default=0)


def _side_and_orientation(path: Path, annotated: set[Path]) -> tuple[int, int]:
    """``(longest side in px, EXIF orientation)`` of a photo: the orientation of one in ``annotated`` (which
    must be upright), 1 for any other; either decoded once (:func:`common.images.image_size_and_orientation`,
    :func:`common.images.image_size`). A turn swaps the sides, so the longest is the same either way."""
    if path in annotated:
        width, height, turn = image_size_and_orientation(path)
        return max(width, height), turn
    return max(image_size(path)), 1
