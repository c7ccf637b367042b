"""The inspection's masks as an MVTec AD-layout category, value-coded like the annotation app's.

Layout under ``<out>/masks`` (one category, named after the output folder)::

    <category>/test/<defect folder>/<name><ext>          the photo (a symlink by default, or a copy)
    <category>/test/good/<name><ext>                     photos with the verdict good
    <category>/ground_truth/<defect folder>/<name>_mask.png
    <category>/mask_values.json                          pixel value -> class

The defect folder and pixel values follow :mod:`converters.value_masks`: class
``i`` of the detector is value ``255 - i``, the folder is the class when a
photo's instances are of one class (a folder name every OS holds: :func:`class_folders`)
and ``combined`` when of several. So the
tree goes back into the converters (a training set from reviewed predictions)::

    python -m converters.mvtec2yolo --root <out>/masks --out new_set \\
        --mask-values <out>/masks/<category>/mask_values.json

and into the annotation app, which reads the same convention. Overlapping
instances: the higher-scoring one keeps the pixels, and of the other the pieces
it leaves under ``speck_cells`` of SAM's cells go (a rim around a stain that a
PatchCore region and the detector's box both outline would otherwise come back
from the converters as hundreds of instances of a few pixels).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2

from common.exif import is_rotated
from common.folders import windows_safe_name
from common.image_files import IMAGE_SUFFIXES, decode_image_file, encode_image
from common.io import atomic_write, copied_note, temporary_path
from converters.mvtec import GOOD, MASK_SUFFIX
from converters.value_masks import MIXED, compose_mask, defect_folder, write_value_map
from inspection.photos import Photo
from inspection.result import Inspection
from segmentation.specks import DEFAULT_CELLS, SAM_GRID, iter_visible_parts, min_region_area

#: How a photo is placed in the tree.
LINK_MODES = ("symlink", "hardlink", "copy")
#: Folder names a category cannot have: the converters would take ``masks/`` itself for the category
#: (``test_public``: MVTec AD 2's marker). Compared case-folded, as a case-insensitive disk would.
_RESERVED = ("test", "train", "ground_truth", "test_public")
#: The category name used when the output folder's name is reserved.
DEFAULT_CATEGORY = "inspection"
#: The images of a tree, below its root, ``*`` a name that varies: the photos, under their own suffixes,
#: lower case, and the masks (a file's name is a photo's output name, hidden where a ``--source``
#: pattern names a hidden folder: :func:`common.out_folders.photo_names_hidden`).
PHOTO_FILES = tuple(f"*/test/*/*{suffix}" for suffix in IMAGE_SUFFIXES)
MASK_FILES = f"*/ground_truth/*/*{MASK_SUFFIX}.png"


class MaskTree:
    """Writes one photo at a time into ``<root>/<category>``; :meth:`close` adds ``mask_values.json``.

    Args:
        root: the tree's root (``<out>/masks``).
        category: the category folder's name (see :func:`category_name`).
        class_names: the detector's classes in id order (they fix the pixel values).
        link: ``symlink`` (default), ``hardlink`` or ``copy``; photos with an EXIF rotation
            are always written as upright PNG copies, so that masks fit them however read.
        speck_cells: where a better instance covers part of another, the pieces under this many of
            SAM's low-resolution cells that it leaves of it are left out (the cascade's
            ``--speck-cells``; :func:`segmentation.specks.visible_parts`); 0 keeps them.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        category: str,
        class_names: Sequence[str],
        link: str = "symlink",
        speck_cells: float = DEFAULT_CELLS,
    ):
        if link not in LINK_MODES:
            raise ValueError(f"link must be one of {', '.join(LINK_MODES)}, got {link!r}")
        self.category = category_name(category)
        self.folder = Path(root) / self.category
        self.class_names = list(class_names)
        #: Each class's defect folder (:func:`class_folders`).
        self.folders = class_folders(self.class_names)
        self.link = link
        self.speck_cells = speck_cells
        #: Photos that ``hardlink`` copied: the file system refused the link (another one, say).
        self.copied: list[Path] = []

    def add(self, inspection: Inspection, photo: Photo) -> Path | None:
        """Places the photo and writes its mask; returns the mask's path (None for a good photo)."""
        folder = GOOD if inspection.is_good else self.defect_folder(inspection.names)
        source = photo.path
        if is_rotated(source):
            image = decode_image_file(source, cv2.IMREAD_COLOR)  # OpenCV applies the rotation
            atomic_write(self.folder / "test" / folder / f"{photo.name}.png", _png(image))
        else:
            target = place_photo(
                source, self.folder / "test" / folder / f"{photo.name}{source.suffix.lower()}", self.link
            )
            if self.link == "hardlink" and not os.path.samefile(source, target):
                self.copied.append(source)
        if inspection.is_good:
            return None
        # The best instance wins where two overlap; what that leaves of another in specks goes.
        area = min_region_area(self.speck_cells, max(inspection.height, inspection.width), SAM_GRID)
        # a part at a time: painted in order, as the array of them was (N x H x W bool more at the peak)
        parts = iter_visible_parts(inspection.masks, area, inspection.names)
        mask = compose_mask(
            zip(inspection.names, parts, strict=True),
            classes=self.class_names,
            shape=(inspection.height, inspection.width),
        )
        return atomic_write(
            self.folder / "ground_truth" / folder / f"{photo.name}{MASK_SUFFIX}.png", _png(mask)
        )

    def defect_folder(self, names: Sequence[str]) -> str:
        """The ``test/`` folder of a photo with instances of ``names``: its class's, or ``combined``."""
        classes = set(names)
        return self.folders[classes.pop()] if len(classes) == 1 else defect_folder(names)  # none: its error

    def close(self) -> Path:
        """Writes ``mask_values.json`` and returns the category folder; a ``note:`` on stderr where
        ``hardlink`` copied photos (they take the space a link would have saved)."""
        write_value_map(self.folder, self.class_names)
        if self.copied:
            print(copied_note(len(self.copied), self.copied[0], self.folder), file=sys.stderr, flush=True)
        return self.folder


def category_name(name: str) -> str:
    """``name`` as the tree's category folder: :data:`DEFAULT_CATEGORY` for ``test``, ``train``, ...

    The converters take a root with a ``test/`` folder for a category itself, so a category
    named ``test`` would hide the others.
    """
    reserved = name.casefold() in _RESERVED
    return DEFAULT_CATEGORY if not name or reserved or name.startswith(".") else name


def class_folders(class_names: Sequence[str]) -> dict[str, str]:
    """Each class's defect folder: the class itself where every OS holds it as one, else a safe name.

    The detector's class names are anyone's: ``crack/scratch`` nested a folder the converters read as
    the class ``crack``, ``../x`` wrote outside the category folder, and ``con`` or ``scratch.`` is no
    folder Windows can hold (:func:`common.folders.windows_safe_name`). Folders are unique ignoring
    case (one folder on macOS and Windows) and are never ``good`` or ``combined``, the layout's own
    (a defect photo in ``test/good`` reads as a good one): a name already safe keeps its folder, the
    others get ``_2``, ``_3``, ... where taken. The class itself is in the mask's pixel values
    (``mask_values.json``); ``images.json`` names the folder of each class whose folder differs.

    >>> class_folders(["crack/scratch", "crack_scratch", "con", "Good"])
    {'crack/scratch': 'crack_scratch_2', 'crack_scratch': 'crack_scratch', 'con': 'con_', 'Good': 'Good_2'}
    """
    taken = {GOOD, MIXED}
    folders: dict[str, str] = {}
    for name in class_names:  # first the names that are folders as they are: their trees stay
        if windows_safe_name(name) == name and name.casefold() not in taken:
            folders[name] = name
            taken.add(name.casefold())
    for name in class_names:
        if name in folders:
            continue
        base = folder = windows_safe_name(name)
        n = 1
        while folder.casefold() in taken:
            n += 1
            folder = f"{base}_{n}"
        folders[name] = folder
        taken.add(folder.casefold())
    return {name: folders[name] for name in class_names}  # in id order


def place_photo(source: Path, target: Path, link: str) -> Path:
    """Puts ``source`` at ``target`` as a symlink (to its absolute path), hard link or copy, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if link == "copy":
        with source.open("rb") as stream:
            return atomic_write(target, lambda file: shutil.copyfileobj(stream, file, 1 << 20))
    temporary = temporary_path(target)
    try:
        if link == "symlink":
            temporary.symlink_to(source.resolve())
        else:
            try:
                os.link(source, temporary)
            except OSError:  # another file system, or not allowed: a copy always works
                return place_photo(source, target, "copy")
        os.replace(temporary, target)
    finally:
        if temporary.is_symlink() or temporary.exists():
            temporary.unlink()
    return target


def _png(array) -> bytes:
    return encode_image(".png", array)
