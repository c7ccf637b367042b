"""Kolektor SDD2: flat ``train/`` and ``test/`` folders of ``<stem>.png`` + ``<stem>_GT.png``.

Every image has a mask; an all-zero mask marks a good image (the data set has no other
label), so a record stays ``defect`` with ``empty_mask_is_good`` until its mask is read.

anomalib (open-edge-platform/anomalib, 2026-08) has no reader for Kolektor SDD2: the layout follows the
archive's own naming, unchecked against an independent reader.
"""

from __future__ import annotations

from pathlib import Path

from common.errors import UserError
from common.folders import check_one_line_names
from common.image_files import is_image_file
from converters.layouts.base import Layout, note_folders_left_out
from converters.masks import read_mask
from converters.records import GOOD, ImageRecord, has_file_ending, pair_by_stem, stem_key

NAME = "kolektor_sdd2"
MASK_SUFFIX = "_GT"
DEFECT = "defect"
SUBSETS = ("train", "test")


def matches(folder: Path) -> bool:
    return any(has_file_ending(folder / subset, f"{MASK_SUFFIX}.png") for subset in SUBSETS)


def flat_files(folder: Path, suffix: str = MASK_SUFFIX) -> tuple[dict[str, Path], dict[str, Path]]:
    """``(images, masks)`` of a flat folder by stem; masks are the files whose stem ends with ``suffix``
    (in any case: ``_GT``, ``_label``).

    Raises:
        UserError: two images of one stem (``0.png``, ``0.jpg``) or two masks (``0_GT.png``,
            ``0_GT.bmp``): the later one silently replaced the other.
    """
    images: dict[str, Path] = {}
    masks: dict[str, Path] = {}
    if not folder.is_dir():
        return images, masks
    for path in sorted(folder.iterdir()):
        if not is_image_file(path):
            continue
        check_one_line_names(path, below=folder)  # before a pairing error names it
        if path.stem.lower().endswith(suffix.lower()):
            stem = stem_key(path.stem[: -len(suffix)])
            if stem in masks:
                raise UserError(f"two masks for one stem '{stem}': {masks[stem]} and {path}")
            masks[stem] = path
        elif (stem := stem_key(path.stem)) in images:
            raise UserError(f"two images share the stem '{stem}': {images[stem]} and {path}")
        else:
            images[stem] = path
    return images, masks


def flat_records(
    folder: Path,
    *,
    category: str,
    layout: str,
    split: str | None,
    suffix: str = MASK_SUFFIX,
    mask_ext: str = ".png",
) -> list[ImageRecord]:
    """The images of a flat folder, each with its ``<stem><suffix>`` mask, as ``defect`` records whose
    goodness is settled when the mask is read (an all-zero mask marks a good image).

    ``mask_ext``: the masks' usual suffix, for the expected name where one is missing.
    """
    images, masks = flat_files(folder, suffix)
    note_folders_left_out(folder)
    pairs = pair_by_stem(images, masks, mask_dir=folder, image_dir=folder, suffix=suffix, mask_ext=mask_ext)
    return [
        ImageRecord(
            i, category, folder.name, DEFECT, m, layout=layout, layout_split=split, empty_mask_is_good=True
        )
        for i, m in pairs
    ]


def without_empty_masks(records: list[ImageRecord]) -> list[ImageRecord]:
    """``records`` less those whose mask is all zero (``--exclude-defect good``): reads every mask."""
    return [r for r in records if read_mask(r.mask).any()]


def scan(folder: Path, category: str, excluded: frozenset[str]) -> list[ImageRecord]:
    """Records of a Kolektor SDD2 folder; goodness is settled when each mask is read.

    ``--exclude-defect good`` reads every mask here, to leave out the images whose mask is empty.
    """
    if DEFECT in excluded:
        return []
    records = []
    for subset in SUBSETS:
        records += flat_records(folder / subset, category=category, layout=NAME, split=subset)
    if GOOD in excluded:  # good images are the empty masks: read them only when asked to leave those out
        records = without_empty_masks(records)
    return records


LAYOUT = Layout(
    name=NAME,
    title="Kolektor SDD2",
    looks_for="train/ or test/ with <stem>.png and <stem>_GT.png side by side",
    matches=matches,
    scan=scan,
    refines=("mvtec_ad",),
    reads=SUBSETS,
)
