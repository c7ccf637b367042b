"""MVTec AD 2: ``train/good``, ``validation/good``, ``test_public/{good,bad}``, ``test_private*``.

Masks are ``test_public/ground_truth/bad/<stem>_mask.png``. The ``test_private`` and
``test_private_mixed`` folders have no ground truth: their images are recorded as
unlabelled (never good), as anomalib's reader labels them "unknown".

Checked against open-edge-platform/anomalib (2026-08), ``src/anomalib/data/datasets/image/mvtecad2.py``: the
same folders and ``<stem>_mask<ext>`` masks, ``validation`` the val split; anomalib reads
``test_private*/*.png`` flat, this layout every image under them.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from common.errors import UserError
from common.image_files import is_image_file
from converters.layouts.base import Layout, check_orphan_masks, scan_subset, type_folders_beside
from converters.records import UNLABELLED, ImageRecord, stem_key, subfolders

NAME = "mvtec_ad2"
PRIVATE_PREFIX = "test_private"


def matches(folder: Path) -> bool:
    return (folder / "test_public").is_dir()


def unlabelled_records(folder: Path, category: str) -> list[ImageRecord]:
    """The images under every ``test_private*`` folder (at any depth, hidden folders out), as unlabelled."""
    records = []
    for private in subfolders(folder):
        if not private.name.startswith(PRIVATE_PREFIX):
            continue
        seen: dict[str, Path] = {}
        for path in sorted(private.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(private).parts)
            if hidden or not is_image_file(path):  # .ipynb_checkpoints/ and the like, as in subfolders()
                continue
            if (stem := stem_key(path.stem)) in seen:  # composed and decomposed é are one stem
                raise UserError(f"two images share the stem '{path.stem}': {seen[stem]} and {path}")
            seen[stem] = path
            records.append(
                ImageRecord(path, category, private.name, UNLABELLED, layout=NAME, unlabelled=True)
            )
    return records


def scan(folder: Path, category: str, excluded: frozenset[str]) -> list[ImageRecord]:
    """Records of an MVTec AD 2 category folder."""
    public = folder / "test_public"
    truth = public / "ground_truth"
    common = {"category": category, "layout": NAME, "excluded": excluded}
    records = scan_subset(folder / "train", truth, split="train", defects_allowed=False, **common)
    records += scan_subset(folder / "validation", truth, split="val", defects_allowed=False, **common)
    records += scan_subset(public, truth, split="test", **common)
    check_orphan_masks(truth, public, {r.defect for r in records}, excluded)
    if UNLABELLED not in excluded:
        records += unlabelled_records(folder, category)
    return records


LAYOUT = Layout(
    name=NAME,
    title="MVTec AD 2",
    looks_for="test_public/ (with train/good, validation/good, test_public/ground_truth/bad/)",
    matches=matches,
    scan=scan,
    refines=("mvtec_ad",),
    reads=("train", "validation", "test_public", f"{PRIVATE_PREFIX}*"),
    # test_private*/ holds unlabelled photos, no types; test_public/ground_truth/ holds masks
    type_folders=partial(
        type_folders_beside, subsets=("train", "validation", "test_public"), not_types=("ground_truth",)
    ),
)
