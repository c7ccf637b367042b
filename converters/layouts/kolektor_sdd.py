"""KolektorSDD (v1, anomalib's ``Kolektor``): ``kos01/Part0.jpg`` with ``kos01/Part0_label.bmp``.

The data set folder is the category; its ``kos01`` .. ``kos50`` folders (one commutator each, eight
photos of its surface) are read as subsets, and no other (a folder of images beside them is named in a
note). Every photo has a label; an all-zero one marks a good photo, as in Kolektor SDD2. The data set
names no split (anomalib draws one), so ``--split-from-layout`` has none to follow.

Checked against open-edge-platform/anomalib (2026-08),
``src/anomalib/data/datasets/image/kolektor.py``: ``.jpg`` photos,
``_label.bmp`` labels, an all-zero label a good photo.
"""

from __future__ import annotations

from pathlib import Path

from converters.layouts.base import Layout, is_read
from converters.layouts.kolektor import DEFECT, flat_records, without_empty_masks
from converters.records import GOOD, ImageRecord, has_file_ending, subfolders

NAME = "kolektor_sdd"
MASK_SUFFIX = "_label"
MASK_EXT = ".bmp"
#: The folders read, as the data set names them (``kos01`` .. ``kos50``).
ITEMS = "kos[0-9][0-9]"


def matches(folder: Path) -> bool:
    return any(has_file_ending(item, f"{MASK_SUFFIX}{MASK_EXT}") for item in subfolders(folder))


def scan(folder: Path, category: str, excluded: frozenset[str]) -> list[ImageRecord]:
    """Records of a KolektorSDD folder (its ``kosNN`` folders); goodness is settled when each mask is read.

    ``--exclude-defect good`` reads every mask here, to leave out the photos whose label is empty.
    """
    if DEFECT in excluded:
        return []
    records = []
    for item in subfolders(folder):
        if not is_read(item.name, (ITEMS,)):  # named in a note (Layout.reads)
            continue
        records += flat_records(
            item, category=category, layout=NAME, split=None, suffix=MASK_SUFFIX, mask_ext=MASK_EXT
        )
    if GOOD in excluded:
        records = without_empty_masks(records)
    return records


LAYOUT = Layout(
    name=NAME,
    title="KolektorSDD",
    looks_for="kosNN/ folders of <stem>.jpg and <stem>_label.bmp",
    matches=matches,
    scan=scan,
    reads=(ITEMS,),
)
