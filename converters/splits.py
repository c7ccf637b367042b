"""One seeded train/val/test split shared by every writer and every later run.

MVTec's ``train`` folder holds only good images, so the defect images are
split here, stratified by (category, defect type); good images (from
``train/good`` and ``test/good`` alike) are added to each split as background
images, ``background_ratio`` of them per defect image of their own category. The result is written
once as ``splits.json`` and read back by the YOLO and COCO writers, so both
formats hold the same images in the same splits.
"""

from __future__ import annotations

import codecs
import json
import math
import numbers
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.image_files import IMAGE_SUFFIXES
from common.io import atomic_write, read_json_object

SPLITS = ("train", "val", "test")
#: The file a converter output holds its split in.
SPLITS_FILE = "splits.json"
FORMAT_VERSION = 1
DEFAULT_RATIOS = (0.6, 0.2, 0.2)
DEFAULT_BACKGROUND_RATIO = 0.5
_DRAW_FIELDS = ("seed", "ratios", "background_ratio")
_FIELDS = ("version", *_DRAW_FIELDS, *SPLITS)
#: How a file :func:`save_splits` writes begins: ``"version"`` and its integer (:func:`is_split_record`).
_RECORD_START = re.compile(rb'\s*\{\s*"version"\s*:\s*(\d|\Z)')
#: The bytes :func:`is_split_record` reads first: a file that cannot be a record is not read further.
_HEAD = 1 << 16
#: A record key as :attr:`converters.records.ImageRecord.key` makes it: ``category/subset/defect/stem``.
_RECORD_KEY = re.compile(r"[^/]+/[^/]+/[^/]+/[^/]+")


@dataclass(frozen=True)
class Splits:
    """Record keys (``category/subset/defect/stem``) per split, and how they were drawn.

    ``drawn`` is False for a split nobody drew (the layout's own, ``--split-from-layout``, or a file
    without the draw's settings): its file then records no seed, ratios nor background ratio.
    """

    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    seed: int = 0
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    background_ratio: float = DEFAULT_BACKGROUND_RATIO
    drawn: bool = True

    def __getitem__(self, split: str) -> list[str]:
        return getattr(self, split)

    def split_of(self) -> dict[str, str]:
        """Key -> split name."""
        return {key: split for split in SPLITS for key in self[split]}

    def to_json(self) -> dict:
        draw = {
            "seed": self.seed,
            "ratios": dict(zip(SPLITS, self.ratios, strict=True)),
            "background_ratio": self.background_ratio,
        }
        return {
            "version": FORMAT_VERSION,
            **(draw if self.drawn else {}),
            **{split: sorted(self[split]) for split in SPLITS},
        }


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_ratios(
    ratios: Sequence[float], *, what: str = "--split TRAIN VAL TEST"
) -> tuple[float, float, float]:
    """Validates train/val/test fractions; they are normalised to sum to 1.

    Raises:
        UserError: not three finite numbers >= 0 with train > 0 (a NaN drew an empty split), or
            numbers so large that their sum is infinite (every fraction would be 0).
    """
    values = list(ratios)
    finite = all(_is_number(r) and math.isfinite(r) and r >= 0 for r in values)
    if len(values) != 3 or not finite or values[0] <= 0 or not math.isfinite(float(sum(values))):
        raise UserError(f"{what} must be three finite numbers >= 0 with train > 0, got {values}")
    total = float(sum(values))
    return tuple(float(r) / total for r in values)  # type: ignore[return-value]


def check_background_ratio(value: object, *, what: str = "--background-ratio") -> float:
    """Validates the good images per defect image: a finite number >= 0."""
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise UserError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_seed(value: object, *, what: str = "--seed") -> int:
    """Validates a split seed: an integer >= 0 (numpy's generators take no negative seeds)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise UserError(f"{what} must be an integer >= 0, got {value!r}")
    return int(value)


def _background_count(ratio: float, n_defect: int) -> int:
    """``ratio * n_defect`` rounded half up; exact where the float product overflows (``1e308``)."""
    wanted = ratio * n_defect + 0.5
    if math.isfinite(wanted):
        return int(wanted)
    return int(Fraction(ratio) * n_defect + Fraction(1, 2))


def _rng(seed: int, stratum: str) -> np.random.Generator:
    # One generator per stratum, keyed by its name: adding a category or a
    # defect type leaves the split of the others unchanged.
    return np.random.default_rng([seed, zlib.crc32(stratum.encode())])


def split_sizes(n: int, ratios: Sequence[float]) -> list[int]:
    """Sizes of the splits of ``n`` items: cumulative rounding, so they add up to ``n``.

    >>> split_sizes(17, (0.6, 0.2, 0.2))
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


def fill_sizes(n: int, kept: Sequence[int], ratios: Sequence[float]) -> list[int]:
    """Sizes of the splits of ``n`` new items joining ``kept`` items already in each split: the new
    ones fill each split toward :func:`split_sizes` of all of them; a split over its share takes none.

    >>> fill_sizes(1, (1, 0, 0), (0.7, 0.15, 0.15)), fill_sizes(2, (0, 0, 0), (0.7, 0.15, 0.15))
    ([0, 1, 0], [1, 1, 0])
    >>> fill_sizes(1, (0, 2, 0), (0.7, 0.15, 0.15))  # val over its share: the new one goes to train
    [1, 0, 0]
    """
    if not any(kept):
        return split_sizes(n, ratios)
    wanted = [
        max(0, size - held) for size, held in zip(split_sizes(n + sum(kept), ratios), kept, strict=True)
    ]
    for split in reversed(range(len(wanted))):  # more short than new ones: train is filled first
        cut = min(wanted[split], sum(wanted) - n)
        wanted[split] -= cut
    return wanted


def make_splits(
    defect_keys: Iterable[tuple[str, str]],
    good_keys: Iterable[str],
    *,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    background_ratio: float = DEFAULT_BACKGROUND_RATIO,
    seed: int = 0,
    kept: Mapping[str, Sequence[int]] | None = None,
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
        kept: per stratum, its images an earlier split placed (not among ``defect_keys``) in train,
            val and test: its new images fill each split toward its fraction of the whole stratum
            (:func:`fill_sizes`), as drawing them alone put one or two new images in train at every
            export. A stratum with none kept is drawn as without.
    """
    ratios = check_ratios(ratios)
    background_ratio = check_background_ratio(background_ratio)
    seed = check_seed(seed)
    strata: dict[str, list[str]] = defaultdict(list)
    for key, stratum in defect_keys:
        strata[stratum].append(key)
    assigned: dict[str, list[str]] = {split: [] for split in SPLITS}
    defects: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SPLITS, 0))  # per category
    for stratum in sorted(strata):
        keys = sorted(strata[stratum])
        order = _rng(seed, stratum).permutation(len(keys))
        start = 0
        sizes = fill_sizes(len(keys), (kept or {}).get(stratum, (0, 0, 0)), ratios)
        for split, size in zip(SPLITS, sizes, strict=True):
            assigned[split] += [keys[i] for i in order[start : start + size]]
            defects[_category(stratum)][split] += size
            start += size
    goods: dict[str, list[str]] = defaultdict(list)
    for key in sorted(set(good_keys)):
        goods[_category(key)].append(key)
    for category in sorted(goods):
        backgrounds = _backgrounds(goods[category], defects[category], background_ratio, seed)
        for split in SPLITS:
            assigned[split] += backgrounds[split]
    return Splits(
        **{split: sorted(assigned[split]) for split in SPLITS},
        seed=seed,
        ratios=ratios,
        background_ratio=background_ratio,
    )


def _category(key: str) -> str:
    """The category of a record key or a stratum: its first part (``hazelnut/test/crack/000``)."""
    return key.split("/", 1)[0]


def _backgrounds(
    goods: list[str], defects: dict[str, int], background_ratio: float, seed: int
) -> dict[str, list[str]]:
    """One category's good images per split: ``background_ratio`` per defect image of the category there.

    Drawn per category, so adding a category leaves every image of the others where it was and each
    category gets its own share of backgrounds. Every category shuffles with the same ``good`` stream:
    with one category the draw is the one this module made before it drew per category.

    Args:
        goods: the category's good image keys, sorted.
        defects: its defect images per split.
    """
    goods = [goods[i] for i in _rng(seed, "good").permutation(len(goods))]
    wanted = [_background_count(background_ratio, defects[split]) for split in SPLITS]
    if sum(wanted) > len(goods):  # not enough good images: share them in proportion
        wanted = split_sizes(len(goods), [w / sum(wanted) for w in wanted])
    drawn, start = {}, 0
    for split, size in zip(SPLITS, wanted, strict=True):
        drawn[split] = goods[start : start + size]
        start += size
    return drawn


def save_splits(splits: Splits, path: str | Path) -> None:
    """Writes ``splits.json`` atomically as strict JSON (a NaN is a bug here, not a file to write)."""
    atomic_write(path, json.dumps(splits.to_json(), indent=1, allow_nan=False) + "\n")


def load_splits(path: str | Path) -> Splits:
    """Reads a ``splits.json`` written by :func:`save_splits`, checking every field.

    Raises:
        UserError: unreadable or not JSON, a missing or unknown field, a field of the
            wrong type or range, or a key listed twice; one line naming the file and field.
    """
    path = Path(path)
    data = read_json_object(path, what="splits file")
    try:
        _check_fields(data)
        return Splits(
            **_split_lists(data),
            seed=check_seed(data.get("seed", 0), what='"seed"'),
            ratios=_file_ratios(data.get("ratios", dict(zip(SPLITS, DEFAULT_RATIOS, strict=True)))),
            background_ratio=check_background_ratio(
                data.get("background_ratio", DEFAULT_BACKGROUND_RATIO), what='"background_ratio"'
            ),
            drawn=any(name in data for name in _DRAW_FIELDS),
        )
    except UserError as error:
        raise UserError(f"splits file {path}: {error}") from None


def is_split_record(path: str | Path) -> bool:
    """Whether the file ``path`` is a split record as :func:`save_splits` writes it, whether it reads or not.

    Every such file has been a JSON object of the fields of :data:`_FIELDS` alone, among them ``"version"``,
    the integer 1 (written first), and the lists of keys ``train``, ``val``, ``test`` (``seed``, ``ratios``
    and ``background_ratio`` left out of a split nobody drew): one so made is ours, whatever its values,
    and :func:`load_splits` naming what is wrong with it is the answer; so is one with an integer
    ``"version"`` and a field of its own or a split not a list where the rest is ours
    (:func:`_has_record_shape`: a list of keys ``category/subset/defect/stem``, our ``"ratios"``).
    Another tool's ``splits.json`` (not JSON, fields of its own, a ``"version"`` string like ``"1.0"``, or
    its splits as file names, not lists) is not; it was taken for ours as soon as it held a ``"version"``.
    A file that is no JSON counts as ours where it begins as ours does (one cut short; after a UTF-8 BOM
    too, which :func:`common.io.read_json` reads past), and one that does not read at all cannot be told
    and counts as ours, so the error says why.
    """
    try:
        with open(path, "rb") as stream:
            text = stream.read(_HEAD)
            if _begins_otherwise(text):  # an archive or a model passed as --data: not read whole
                return False
            text += stream.read()
    except OSError:
        return True
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return bool(_RECORD_START.match(text.removeprefix(codecs.BOM_UTF8)))  # as read_json reads it
    if not isinstance(data, dict):
        return False
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):  # absent (None) too
        return False
    if set(data) <= set(_FIELDS) and all(_is_key_list(data[split]) for split in SPLITS if split in data):
        return True
    return _has_record_shape(data)


def _begins_otherwise(head: bytes) -> bool:
    """Whether a file beginning with ``head`` cannot be a split record, whatever follows: UTF-8 (as
    :func:`json.loads` tells it from its first bytes) whose first character past a BOM and white space
    is not ``{``. A record in UTF-16 or -32, or past more white space than ``head`` holds, cannot be told
    from its beginning: False."""
    if json.detect_encoding(head) not in ("utf-8", "utf-8-sig"):
        return False
    start = head.removeprefix(codecs.BOM_UTF8).lstrip()
    return bool(start) and not start.startswith(b"{")


def _has_record_shape(data: dict) -> bool:
    """Whether ``data`` carries what only :func:`save_splits` writes beside its ``"version"``: a split's
    list of keys ``category/subset/defect/stem``, or ``"ratios"`` as an object of the three splits.
    A key's stem carries no image suffix: another tool's ``data/images/lot_1/0001.png`` is a file path.

    A hand edit of the record (a field added, a list turned into a string) keeps the rest: it is ours
    damaged, an error naming the field, where it read as another tool's file, a note, in a set whose
    ``data.yaml`` and COCO files carry no mark of the converters.
    """
    ratios = data.get("ratios")
    if isinstance(ratios, dict) and sorted(ratios) == sorted(SPLITS):
        return True
    return any(
        _is_key_list(data.get(split))
        and data[split]
        and all(
            _RECORD_KEY.fullmatch(key) and Path(key).suffix.lower() not in IMAGE_SUFFIXES
            for key in data[split]
        )
        for split in SPLITS
    )


def _is_key_list(value: object) -> bool:
    """Whether ``value`` is a split's list of keys as saved: a list of strings."""
    return isinstance(value, list) and all(isinstance(key, str) for key in value)


def _check_fields(data: dict) -> None:
    """Every split list present, no unknown field, a version this code reads."""
    missing = [split for split in SPLITS if split not in data]
    if missing:
        raise UserError(f"lacks the lists {', '.join(missing)}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise UserError(f'unknown field "{unknown[0]}" (known: {", ".join(_FIELDS)})')
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise UserError(f'"version" is {version!r}; this version of the converters reads {FORMAT_VERSION}')


def _split_lists(data: dict) -> dict[str, list[str]]:
    """The key lists of the three splits; a key listed twice (in one split or two) is an error."""
    seen: dict[str, str] = {}
    for split in SPLITS:
        keys = data[split]
        if not _is_key_list(keys):
            raise UserError(
                f'"{split}" must be a list of keys "category/subset/defect/stem", got {keys!r:.80}'
            )
        for key in keys:
            if key in seen:
                where = f"in {split}" if seen[key] == split else f"in {seen[key]} and {split}"
                raise UserError(f"key {key!r} is listed twice, {where}")
            seen[key] = split
    return {split: list(data[split]) for split in SPLITS}


def _file_ratios(value: object) -> tuple[float, float, float]:
    """``"ratios": {"train": 0.6, "val": 0.2, "test": 0.2}`` as saved: checked, not renormalised."""
    if not isinstance(value, dict) or sorted(value) != sorted(SPLITS):
        raise UserError(f'"ratios" must be an object with the numbers {", ".join(SPLITS)}, got {value!r:.80}')
    ratios = tuple(value[split] for split in SPLITS)
    check_ratios(ratios, what='"ratios"')
    return tuple(float(r) for r in ratios)  # type: ignore[return-value]
