"""MVTec 3D-AD: ``<subset>/<defect>/{rgb,gt,xyz}/<stem>.png|tiff``.

The RGB image is read with its ``gt`` mask (named like the image); ``xyz`` point clouds
are not read (a note says so where a category has them). Subsets are ``train`` and ``validation``
(good only) and ``test``. Where a ``class_ids.json`` (pixel value -> class name, the ``--mask-values``
format) lies in the category folder or beside it, the masks are read as value-coded with it.

Checked against open-edge-platform/anomalib (2026-08),
``src/anomalib/data/datasets/depth/mvtec_3d.py``: ``rgb/<stem>.png``,
``gt/<stem>.png`` (an all-zero one under ``test/good``, not read here), ``xyz/<stem>.tiff``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from common.errors import UserError
from common.folders import check_one_line_names
from common.io import link_loop_text
from converters.classes import load_value_map
from converters.layouts.base import (
    Layout,
    check_good_name,
    layout_note,
    masks_are_optional,
    note_folders_left_out,
    note_loose_images,
    note_photo_named_folders,
    type_folders_beside,
)
from converters.records import GOOD, ImageRecord, images_by_stem, masks_by_stem, pair_by_stem, subfolders

NAME = "mvtec_3d"
LAYOUT_TITLE = "MVTec 3D-AD"
SUBSETS = {"train": "train", "validation": "val", "test": "test"}
CLASS_IDS_FILE = "class_ids.json"
#: How errors name it: it is in the ``--mask-values`` format, but no ``--mask-values`` file.
CLASS_IDS_WHAT = "MVTec 3D-AD class map"
#: Said once where a category holds ``xyz/`` folders (an RGB-only copy of the data set has none).
XYZ_NOTE = "MVTec 3D-AD: the xyz point clouds are not read (RGB images and gt masks only)"


def matches(folder: Path) -> bool:
    if any((folder / subset / GOOD / "rgb").is_dir() for subset in SUBSETS):
        return True
    return any((defect / "rgb").is_dir() for defect in subfolders(folder / "test"))


def class_ids_file(folder: Path) -> Path | None:
    """``class_ids.json`` in ``folder``, else in its parent; None if neither has one."""
    for candidate in (folder / CLASS_IDS_FILE, folder.parent / CLASS_IDS_FILE):
        if candidate.is_file():
            return candidate
    return None


def class_ids(path: Path | None) -> tuple[tuple[int, str], ...]:
    """The value map of a ``class_ids.json`` as record pairs; () for None."""
    return () if path is None else tuple(sorted(load_value_map(path, what=CLASS_IDS_WHAT).items()))


def scan(folder: Path, category: str, excluded: frozenset[str]) -> list[ImageRecord]:
    """Records of an MVTec 3D-AD category folder: RGB images, ``gt`` masks for defects."""
    value_map = class_ids_file(folder)
    values = class_ids(value_map)
    records: list[ImageRecord] = []
    point_clouds = False
    for subset, split in SUBSETS.items():
        note_loose_images(folder / subset, f"{subset}/<defect>/rgb/ folders")
        for defect_dir in subfolders(folder / subset):
            defect = defect_dir.name
            if defect in excluded:
                continue
            check_good_name(defect_dir)
            check_one_line_names(defect_dir, below=folder / subset)  # before an error here names it
            rgb = defect_dir / "rgb"
            if not rgb.is_dir():  # a link loop there was called missing, sending the user to make it
                raise UserError(
                    link_loop_text(rgb, what="MVTec 3D-AD photo folder")
                    or f"MVTec 3D-AD folder without rgb/: {defect_dir} (expected {rgb}/<stem>.png)"
                )
            images = images_by_stem(rgb)
            point_clouds |= (defect_dir / "xyz").is_dir()
            note_loose_images(defect_dir, "rgb/ and gt/")
            note_folders_left_out(defect_dir, ("rgb", "gt", "xyz"), layout=LAYOUT_TITLE)
            if defect == GOOD:
                note_photo_named_folders(rgb)
                records += [
                    ImageRecord(p, category, subset, GOOD, layout=NAME, layout_split=split)
                    for p in images.values()
                ]
                continue
            if subset != "test":
                raise UserError(
                    f"defect folder in {subset}/: {defect_dir} (MVTec 3D-AD keeps only {subset}/good)"
                )
            gt = defect_dir / "gt"
            masks = masks_by_stem(gt, "")
            optional = masks_are_optional()  # the folder says the photo is a defect, mask or not
            pairs = pair_by_stem(
                images, masks, mask_dir=gt, image_dir=rgb, suffix="", masks_optional=optional
            )
            records += [
                ImageRecord(
                    i,
                    category,
                    subset,
                    defect,
                    m,
                    layout=NAME,
                    value_names=values,
                    value_map=value_map,
                    layout_split=split,
                    mask_missing=m is None,
                )
                for i, m in pairs
            ]
    if point_clouds:
        layout_note(XYZ_NOTE)
    return records


LAYOUT = Layout(
    name=NAME,
    title=LAYOUT_TITLE,
    looks_for="train/good/rgb/ or test/<defect>/rgb/ with test/<defect>/gt/",
    matches=matches,
    scan=scan,
    refines=("mvtec_ad",),
    reads=tuple(SUBSETS),
    type_folders=partial(type_folders_beside, depth=2, subsets=tuple(SUBSETS)),  # <type>/rgb/
    photos_in="rgb",
)
