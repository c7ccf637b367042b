"""A user's own photos (anomalib's generic ``Folder``): defect images, their masks, good images.

``images/<stem>.<ext>`` are defect images, each paired with ``masks/<stem>.png`` or
``masks/<stem>_mask.png``; ``good/`` (optional) holds defect-free images. The folders are
found inside a category folder, or given on the command line (``--images --masks --good``).

Compared with open-edge-platform/anomalib (2026-08),
``src/anomalib/data/datasets/image/folder.py``, which pairs a
defect image with the mask whose stem holds its own (``000.png``, ``000_mask.png``) and has no fixed
folder names.
"""

from __future__ import annotations

from pathlib import Path

from common.errors import UserError
from common.io import link_loop_text
from converters.layouts.base import (
    Layout,
    check_good_name,
    masks_are_optional,
    note_files_left_out,
    note_folders_left_out,
)
from converters.records import (
    GOOD,
    MASK_SUFFIX,
    ImageRecord,
    images_by_stem,
    masks_by_stem,
    pair_by_stem,
    subfolders,
)

NAME = "folder"
DEFECT = "defect"
SUBSET = "folder"


def matches(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def scan_folders(
    images: Path,
    masks: Path | None,
    good: Path | None = None,
    *,
    category: str,
    excluded: frozenset[str] = frozenset(),
) -> list[ImageRecord]:
    """Records of a defect-image folder, its mask folder and an optional good-image folder.

    Raises:
        UserError: a folder that does not exist, or an image/mask pairing error.
    """
    for what, folder in (("--images", images), ("--masks", masks), ("--good", good)):
        if folder is not None and Path(folder).is_file():
            raise UserError(f"{what} {folder} is a file, not a folder of images")
        if folder is not None and not Path(folder).is_dir():  # or a link loop, which 3.13's resolve passes
            raise UserError(link_loop_text(folder, what=what) or f"{what} folder does not exist: {folder}")
    records: list[ImageRecord] = []
    if good is not None and GOOD not in excluded:
        records += [
            ImageRecord(p, category, SUBSET, GOOD, layout=NAME) for p in images_by_stem(Path(good)).values()
        ]
        note_files_left_out(Path(good))
        note_folders_left_out(Path(good), photo_named=True)
    found = images_by_stem(Path(images))
    note_files_left_out(Path(images))
    note_folders_left_out(Path(images))
    if found and DEFECT not in excluded:
        if masks is None:
            raise UserError(f"defect images in {images} need --masks (a folder of <stem>.png masks)")
        pairs = pair_by_stem(
            found,
            masks_by_stem(Path(masks), MASK_SUFFIX),
            mask_dir=Path(masks),
            image_dir=Path(images),
            suffix="",
            masks_optional=masks_are_optional(),
        )
        records += [
            ImageRecord(i, category, SUBSET, DEFECT, m, layout=NAME, mask_missing=m is None) for i, m in pairs
        ]
    return records


def scan(folder: Path, category: str, excluded: frozenset[str]) -> list[ImageRecord]:
    if GOOD not in excluded:
        for sub in subfolders(folder):
            check_good_name(sub)  # Good/ beside images/ was a 'folder not read' note, its photos left out
    good = folder / "good"
    return scan_folders(
        folder / "images",
        folder / "masks",
        good if good.is_dir() else None,
        category=category,
        excluded=excluded,
    )


def type_folders(photo_folder: Path) -> list[Path]:
    """:attr:`Layout.type_folders`: a category folder's ``images/`` and ``good/`` (not ``masks/``); none for
    folders given as ``--images`` / ``--good`` elsewhere, whose neighbours are no part of the data set."""
    category = photo_folder.parent
    if photo_folder.name not in ("images", GOOD) or not matches(category):
        return []
    return [category / name for name in ("images", GOOD) if (category / name).is_dir()]


LAYOUT = Layout(
    name=NAME,
    title="Folder",
    looks_for="images/ and masks/ (and good/), or --images/--masks/--good",
    matches=matches,
    scan=scan,
    reads=("images", "masks", "good"),
    type_folders=type_folders,
    type_names={"images": DEFECT},
    needed=("images",),
)
