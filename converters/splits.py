"""One seeded train/val/test split shared by every writer and every later run.

MVTec's ``train`` folder holds only good images, so the defect images are
split here, stratified by (category, defect type); good images (from
``train/good`` and ``test/good`` alike) are added to each split as background
images, ``background_ratio`` of them per defect image. The result is written
once as ``splits.json`` and read back by the YOLO and COCO writers, so both
formats hold the same images in the same splits.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import UserError

SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Splits:
    """Record keys (``category/subset/defect/stem``) per split, and how they were drawn."""

    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    seed: int = 0
    ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)
    background_ratio: float = 0.5

    def __getitem__(self, split: str) -> list[str]:
        return getattr(self, split)

    def split_of(self) -> dict[str, str]:
        """Key -> split name."""
        return {key: split for split in SPLITS for key in self[split]}

    def to_json(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "seed": self.seed,
            "ratios": dict(zip(SPLITS, self.ratios, strict=True)),
            "background_ratio": self.background_ratio,
            **{split: sorted(self[split]) for split in SPLITS},
        }


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Validates train/val/test fractions; they are normalised to sum to 1."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0 or ratios[0] <= 0:
        raise UserError(
            "split ratios must be three non-negative numbers train val test with train > 0, "
            f"got {list(ratios)}"
        )
    total = float(sum(ratios))
    return tuple(float(r) / total for r in ratios)  # type: ignore[return-value]


def _rng(seed: int, stratum: str) -> np.random.Generator:
    # One generator per stratum, keyed by its name: adding a category or a
    # defect type leaves the split of the others unchanged.
    return np.random.default_rng([seed, zlib.crc32(stratum.encode())])


def _allocate(n: int, ratios: Sequence[float]) -> list[int]:
    """Sizes of the splits of ``n`` items: cumulative rounding, so they add up to ``n``.

    >>> _allocate(17, (0.6, 0.2, 0.2))
    [10, 4, 3]
    """
    bounds = np.floor(np.cumsum(ratios) * n + 0.5).astype(int)  # half up, not to even
    bounds[-1] = n
    sizes = np.diff(np.concatenate(([0], bounds))).tolist()
    if n and sizes[0] == 0:  # a stratum of one or two still trains
        donor = int(np.argmax(sizes))
        sizes[donor] -= 1
        sizes[0] += 1
    return sizes


def make_splits(
    defect_keys: Iterable[tuple[str, str]],
    good_keys: Iterable[str],
    *,
    ratios: Sequence[float] = (0.6, 0.2, 0.2),
    background_ratio: float = 0.5,
    seed: int = 0,
) -> Splits:
    """Draws the split.

    Args:
        defect_keys: ``(key, stratum)`` of each defect image; the stratum is
            ``category/defect``.
        good_keys: keys of the good images available as backgrounds.
        ratios: train/val/test fractions of each stratum.
        background_ratio: good images per defect image in each split, capped
            by how many good images exist (then shared in proportion).
        seed: the whole split is a function of the inputs and this seed.
    """
    ratios = check_ratios(ratios)
    if background_ratio < 0:
        raise UserError(f"background ratio must be >= 0, got {background_ratio}")
    strata: dict[str, list[str]] = defaultdict(list)
    for key, stratum in defect_keys:
        strata[stratum].append(key)
    assigned: dict[str, list[str]] = {split: [] for split in SPLITS}
    for stratum in sorted(strata):
        keys = sorted(strata[stratum])
        order = _rng(seed, stratum).permutation(len(keys))
        start = 0
        for split, size in zip(SPLITS, _allocate(len(keys), ratios), strict=True):
            assigned[split] += [keys[i] for i in order[start : start + size]]
            start += size

    goods = sorted(set(good_keys))
    goods = [goods[i] for i in _rng(seed, "good").permutation(len(goods))]
    wanted = [int(background_ratio * len(assigned[split]) + 0.5) for split in SPLITS]
    if sum(wanted) > len(goods):  # not enough good images: share them in proportion
        wanted = _allocate(len(goods), [w / sum(wanted) for w in wanted])
    start = 0
    for split, size in zip(SPLITS, wanted, strict=True):
        assigned[split] += goods[start : start + size]
        start += size
    return Splits(
        **{split: sorted(assigned[split]) for split in SPLITS},
        seed=seed,
        ratios=ratios,
        background_ratio=background_ratio,
    )


def save_splits(splits: Splits, path: str | Path) -> None:
    Path(path).write_text(json.dumps(splits.to_json(), indent=1) + "\n")


def load_splits(path: str | Path) -> Splits:
    """Reads a ``splits.json`` written by :func:`save_splits`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read splits file {path}: {error}") from None
    if not isinstance(data, dict) or any(not isinstance(data.get(s), list) for s in SPLITS):
        raise UserError(f"splits file {path} lacks the lists {', '.join(SPLITS)}")
    ratios = data.get("ratios", {})
    return Splits(
        **{split: [str(k) for k in data[split]] for split in SPLITS},
        seed=int(data.get("seed", 0)),
        ratios=tuple(float(ratios.get(s, 0)) for s in SPLITS) if ratios else (0.6, 0.2, 0.2),
        background_ratio=float(data.get("background_ratio", 0.5)),
    )
