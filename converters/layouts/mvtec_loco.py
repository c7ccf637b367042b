"""MVTec LOCO AD: several mask files per defect image, one per defect region.

Layout of a category::

    train/good/<stem>.png   validation/good/<stem>.png   test/good/<stem>.png
    test/{logical_anomalies,structural_anomalies}/<stem>.png
    ground_truth/<type>/<stem>/000.png, 001.png, ...   one file per defect region
    defects_config.json                               pixel value -> defect name (and sPRO thresholds)

Each region file holds its defect's ``pixel_value`` (LOCO's convention); each file is one
instance (:func:`converters.masks.region_file_instances`) and, where ``defects_config.json`` is
present, each value becomes its own class. The saturation thresholds are for the sPRO metric and
are not read.

Checked against open-edge-platform/anomalib (2026-08),
``src/anomalib/data/datasets/image/mvtec_loco.py``: the same folders,
``validation`` the val split, the region files of ``ground_truth/<type>/<stem>/`` one image's masks;
anomalib merges them into one binary mask (``> 0``).

The value names are confirmed by MVTec's own evaluation code (mvtec_loco_ad_evaluation 2.0, as copied in
cinout/ReContrast ``mvtec_loco_ad_evaluation/src/image.py`` and cinout/EfficientAD
``mvtec_loco_ad_evaluation/evaluate_experiment.py``): it reads ``<category>/defects_config.json`` (a list
of ``defect_name``, ``pixel_value`` 1..255, ``saturation_threshold``, ``relative_saturation``), then
``GroundTruthMap.read_from_png_dir`` takes the sorted ``*.png`` of ``ground_truth/<type>/<stem>/`` one
channel (one defect region) each; a file holds 0 and exactly one positive value, looked up as a
``pixel_value`` of the config. Like it, the converters keep one instance per file (per value), and
read its ``*.png`` files only (any other image file there is left out, named in a note). Where this
layout differs: a file with several values is read as several classes, not refused; the anomaly package
merges the files into one mask per image for its pixel figures (:func:`converters.masks.merge_masks`, the
later file's value kept where two overlap) and keeps one instance per file (per value) for its mask AP.
"""

from __future__ import annotations

import json
import numbers
from functools import partial
from pathlib import Path

from common.errors import UserError, one_line
from common.folders import check_one_line_names
from common.image_files import is_image_file
from common.io import check_utf8_text, link_loop_text
from converters.layouts.base import (
    Layout,
    check_good_name,
    layout_note,
    masks_are_optional,
    note_loose_images,
    note_photo_named_folders,
    type_folders_beside,
)
from converters.records import (
    GOOD,
    MASK_SUFFIX,
    ImageRecord,
    has_subfolder,
    images_by_stem,
    masks_by_stem,
    photo_folder_text,
    stem_key,
    subfolders,
)

NAME = "mvtec_loco"
SUBSETS = {"train": "train", "validation": "val", "test": "test"}
CONFIG_FILE = "defects_config.json"
ANOMALY_TYPES = ("logical_anomalies", "structural_anomalies")
#: The suffix of a region file (any case), the only one MVTec's evaluation reads (``*.png``).
REGION_SUFFIX = ".png"


def matches(folder: Path) -> bool:
    if any((folder / "test" / kind).is_dir() for kind in ANOMALY_TYPES) or (folder / CONFIG_FILE).is_file():
        return True
    return any(is_region_folder_set(kind) for kind in subfolders(folder / "ground_truth"))


def is_region_folder_set(folder: Path) -> bool:
    """``ground_truth/<type>/`` holds LOCO's ``<stem>/`` folders, and no mask file of its own.

    MVTec AD's ``ground_truth/<defect>/`` holds ``<stem>_mask.png`` files: a folder put beside them
    (``old/``, a backup) made the whole category read as LOCO, which then asked for ``<stem>/000.png``.
    """
    return has_subfolder(folder) and not any(is_image_file(path) for path in folder.iterdir())


def defect_values(path: Path) -> tuple[tuple[int, str], ...]:
    """``(pixel_value, defect_name)`` pairs of a ``defects_config.json``, 0 as ``good``.

    Raises:
        UserError: unreadable, not a list of ``{"defect_name", "pixel_value"}`` objects, a
            value outside 1..65535, one value named twice, or a defect named ``good``; one line
            naming the file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {path}: {one_line(error)}") from None
    check_utf8_text(data, str(path))
    if not isinstance(data, list) or not data:
        raise UserError(f'{path} must be a JSON list of {{"defect_name": ..., "pixel_value": ...}} objects')
    values: dict[int, str] = {}
    for index, entry in enumerate(data):
        name = entry.get("defect_name") if isinstance(entry, dict) else None
        value = entry.get("pixel_value") if isinstance(entry, dict) else None
        valid = isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 < value < 65536
        if not (isinstance(name, str) and name.strip() and valid):
            raise UserError(
                f"{path}: entry {index} needs a defect_name and a pixel_value in 1..65535, got {entry!r:.80}"
            )
        name = name.strip()  # ' a ' and 'a' are one name, in whichever order they come
        if name == GOOD:  # the class of a defect-free image: its regions would be read as background
            raise UserError(
                f"{path}: entry {index}: defect_name '{GOOD}' (pixel_value {value}) names a defect-free "
                "image; its regions would be read as background"
            )
        if value in values and values[value] != name:
            raise UserError(f"{path}: pixel_value {value} names both '{values[value]}' and '{name}'")
        values[int(value)] = name
    return ((0, GOOD), *sorted(values.items()))


def mask_folders(truth: Path) -> dict[str, tuple[Path, ...]]:
    """``ground_truth/<type>/<stem>/*.png`` by stem: the region files of each image, sorted.

    A mask file beside the ``<stem>/`` folders (an MVTec AD style ``000.png`` added to the tree) is
    not read; a note names it, since it was left out without a word. So is an image file of another
    suffix in a ``<stem>/`` folder (a ``.jpg`` preview): MVTec's evaluation reads ``*.png`` only, and it
    was read as one more region.
    """
    if flat := sorted(p for p in truth.iterdir() if is_image_file(p)) if truth.is_dir() else []:
        files = f"{len(flat)} mask file{'s' if len(flat) > 1 else ''}"
        layout_note(
            f"{files} directly in {truth} left out, e.g. {flat[0].name}: MVTec LOCO reads the region "
            f"files of each image from {truth}/<stem>/"
        )
    found: dict[str, tuple[Path, ...]] = {}
    others: list[Path] = []
    for folder in subfolders(truth):
        images = sorted(p for p in folder.iterdir() if is_image_file(p))
        files = tuple(p for p in images if p.suffix.lower() == REGION_SUFFIX)
        others += [p for p in images if p.suffix.lower() != REGION_SUFFIX]
        if not images:
            raise UserError(f"mask folder holds no mask images: {folder}")
        if not files:
            raise UserError(
                f"mask folder holds no {REGION_SUFFIX} region files: {folder} (found {images[0].name}: "
                f"MVTec LOCO's region files are {REGION_SUFFIX})"
            )
        found[stem_key(folder.name)] = files
    if others:
        files = f"{len(others)} image file{'s' if len(others) > 1 else ''}"
        layout_note(
            f"{files} not {REGION_SUFFIX} in the region folders of {truth} left out, e.g. {others[0]}: "
            f"MVTec LOCO's region files are {REGION_SUFFIX}, the only ones its evaluation reads"
        )
    return found


def defect_records(
    defect_dir: Path,
    truth: Path,
    *,
    category: str,
    values: tuple[tuple[int, str], ...],
    value_map: Path | None = None,
) -> list[ImageRecord]:
    """The images of ``test/<type>`` with their region files from ``ground_truth/<type>/<stem>/``;
    ``values`` read from ``value_map`` (the category's ``defects_config.json``)."""
    masks = mask_folders(truth)
    records = []
    for stem, image in images_by_stem(defect_dir).items():
        files = masks.pop(stem, None)
        if files is None and not masks_are_optional():  # optional: test/<type>/ says it is a defect
            flat = masks_by_stem(truth, MASK_SUFFIX).get(stem)  # an MVTec AD style 000.png or 000_mask.png
            hint = f"; found {flat}: LOCO reads one file per region from the <stem>/ folder" if flat else ""
            if loop := link_loop_text(truth / stem):  # its folder or ground_truth/<type>/ a link loop
                hint = f"; {loop}"
            raise UserError(
                f"defect image has no mask folder: {image} (expected {truth / stem}/000.png{hint})"
            )
        records.append(
            ImageRecord(
                image,
                category,
                "test",
                defect_dir.name,
                files[0] if files else None,
                layout=NAME,
                masks=files or (),
                value_names=values,
                value_map=value_map,
                layout_split="test",
                mask_missing=files is None,
            )
        )
    if masks:
        stem, files = next(iter(masks.items()))
        why = photo_folder_text(defect_dir, stem) or f"expected {defect_dir / stem}.png"
        raise UserError(f"mask folder has no image: {files[0].parent} ({why})")
    return records


def scan(folder: Path, category: str, excluded: frozenset[str]) -> list[ImageRecord]:
    """Records of an MVTec LOCO AD category folder."""
    config = folder / CONFIG_FILE if (folder / CONFIG_FILE).is_file() else None
    values = defect_values(config) if config else ()
    records: list[ImageRecord] = []
    for subset, split in SUBSETS.items():
        note_loose_images(folder / subset, f"{subset}/<type>/ folders, {subset}/good/ for good images")
        for defect_dir in subfolders(folder / subset):
            defect = defect_dir.name
            if defect in excluded:
                continue
            check_good_name(defect_dir)
            check_one_line_names(defect_dir, below=folder / subset)  # before an error here names it
            if defect == GOOD:
                note_photo_named_folders(defect_dir)
                images = images_by_stem(defect_dir).values()
                records += [
                    ImageRecord(p, category, subset, GOOD, layout=NAME, layout_split=split) for p in images
                ]
            elif subset != "test":
                raise UserError(
                    f"defect folder in {subset}/: {defect_dir} (MVTec LOCO keeps only {subset}/good)"
                )
            else:
                truth = folder / "ground_truth" / defect
                records += defect_records(
                    defect_dir, truth, category=category, values=values, value_map=config
                )
    note_loose_images(folder / "ground_truth", "ground_truth/<type>/<stem>/ folders of region files")
    seen = {r.defect for r in records}
    for truth in subfolders(folder / "ground_truth"):
        if truth.name not in seen and truth.name not in excluded and subfolders(truth):
            check_one_line_names(truth, below=folder / "ground_truth")  # before the error names it
            raise UserError(
                f"mask folder has no image: {subfolders(truth)[0]} (no folder {folder / 'test' / truth.name})"
            )
    return records


LAYOUT = Layout(
    name=NAME,
    title="MVTec LOCO AD",
    looks_for="test/logical_anomalies/ or test/structural_anomalies/ or ground_truth/<type>/<stem>/000.png",
    matches=matches,
    scan=scan,
    refines=("mvtec_ad",),
    reads=(*SUBSETS, "ground_truth"),
    type_folders=partial(type_folders_beside, subsets=tuple(SUBSETS)),
)
