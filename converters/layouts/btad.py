"""BTAD (BeanTech): ``train/ok``, ``test/{ok,ko}``, ``ground_truth/ko/<stem>.png|bmp``.

``ok`` images are recorded as ``good``; masks are named like their images. The archive
(``BTech_Dataset_transformed/``) holds ``.bmp`` images in products 01 and 03, ``.png`` in 02, and
``.bmp`` masks in 03: images and masks pair by stem, whatever their suffix.

Checked against open-edge-platform/anomalib (2026-08), ``src/anomalib/data/datasets/image/btech.py`` and
``datamodules/image/btech.py`` (which turns every ``.bmp`` into ``.png`` on download).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from converters.layouts.base import Layout, check_orphan_masks, scan_subset, type_folders_beside
from converters.records import ImageRecord

NAME = "btad"
GOOD_FOLDER = "ok"


def matches(folder: Path) -> bool:
    """An ``ok`` folder, or ``test/ko`` in a tree without MVTec AD's ``good`` folders: an MVTec AD category
    with a defect type named ``ko`` was read as BTAD, then refused for its ``_mask`` masks."""
    if any((folder / subset / GOOD_FOLDER).is_dir() for subset in ("train", "test")):
        return True
    mvtec_good = any((folder / subset / "good").is_dir() for subset in ("train", "test"))
    return (folder / "test" / "ko").is_dir() and not mvtec_good


def scan(folder: Path, category: str, excluded: frozenset[str]) -> list[ImageRecord]:
    """Records of a BTAD product folder (``01``, ``02``, ``03``)."""
    truth = folder / "ground_truth"
    common = {
        "category": category,
        "layout": NAME,
        "excluded": excluded,
        "good": GOOD_FOLDER,
        "mask_suffix": "",
    }
    records = scan_subset(folder / "train", truth, split="train", defects_allowed=False, **common)
    records += scan_subset(folder / "test", truth, split="test", **common)
    # the masks of test/ok are ground_truth/ok/, and its records say "good"
    folders = {GOOD_FOLDER if r.is_good else r.defect for r in records}
    check_orphan_masks(truth, folder / "test", folders, excluded, mask_suffix="", good=GOOD_FOLDER)
    return records


LAYOUT = Layout(
    name=NAME,
    title="BTAD",
    looks_for="train/ok/ or test/{ok,ko}/ with ground_truth/ko/",
    matches=matches,
    scan=scan,
    refines=("mvtec_ad",),
    reads=("train", "test", "ground_truth"),
    type_folders=partial(type_folders_beside, subsets=("train", "test")),
    good_folder=GOOD_FOLDER,
)
