"""MVTec AD: ``train/good``, ``test/<defect>``, ``ground_truth/<defect>/<stem>_mask.png``.

Images and masks are paired by stem, not extension (real sets mix JPEG images with
PNG masks).

Checked against open-edge-platform/anomalib (2026-08), ``src/anomalib/data/datasets/image/mvtecad.py``: the
same folders, ``good`` the only good folder, masks ``<stem>_mask.png`` (or ``<stem>.png``), a pixel ``> 0``
a defect; anomalib reads ``.png`` only. Its VisA reader's ``visa_pytorch/<object>`` (``test/bad/*.JPG``,
``ground_truth/bad/<stem>.png``) is this layout too.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from converters.layouts.base import Layout, check_orphan_masks, scan_subset, type_folders_beside
from converters.records import ImageRecord

NAME = "mvtec_ad"


def matches(folder: Path) -> bool:
    return (folder / "test").is_dir() or (folder / "train").is_dir()


def scan(folder: Path, category: str, excluded: frozenset[str]) -> list[ImageRecord]:
    """Records of an MVTec AD category folder (train/ holds only ``good``)."""
    truth = folder / "ground_truth"
    common = {"category": category, "layout": NAME, "excluded": excluded}
    records = scan_subset(folder / "train", truth, split="train", defects_allowed=False, **common)
    records += scan_subset(folder / "test", truth, split="test", **common)
    check_orphan_masks(truth, folder / "test", {r.defect for r in records}, excluded)
    return records


LAYOUT = Layout(
    name=NAME,
    title="MVTec AD",
    looks_for="train/ or test/ with <defect>/ folders, ground_truth/<defect>/<stem>_mask.png",
    matches=matches,
    scan=scan,
    reads=("train", "test", "ground_truth"),
    type_folders=partial(type_folders_beside, subsets=("train", "test")),
)
