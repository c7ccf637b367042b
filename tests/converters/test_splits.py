from __future__ import annotations

import pytest

from common.errors import UserError
from converters.splits import SPLITS, _allocate, load_splits, make_splits, save_splits


def keys(stratum: str, n: int) -> list[tuple[str, str]]:
    return [(f"{stratum}/{i:03d}", stratum) for i in range(n)]


def test_split_is_stratified_seeded_and_complete():
    defects = keys("nut/bent", 20) + keys("nut/color", 10) + keys("nut/flip", 3)
    goods = [f"nut/train/good/{i:03d}" for i in range(40)]
    splits = make_splits(defects, goods, seed=3, background_ratio=0.5)
    assigned = [k for s in SPLITS for k in splits[s]]
    assert len(assigned) == len(set(assigned))  # disjoint
    assert {k for k, _ in defects} <= set(assigned)
    for stratum, n in (("nut/bent", 20), ("nut/color", 10)):
        sizes = [sum(k.startswith(stratum) for k in splits[s]) for s in SPLITS]
        assert sizes == _allocate(n, (0.6, 0.2, 0.2))
    for split in SPLITS:
        n_defect = sum(not k.startswith("nut/train/good") for k in splits[split])
        n_good = sum(k.startswith("nut/train/good") for k in splits[split])
        assert n_good == int(0.5 * n_defect + 0.5)
    assert make_splits(defects, goods, seed=3) == make_splits(list(reversed(defects)), goods, seed=3)
    assert make_splits(defects, goods, seed=3).train != make_splits(defects, goods, seed=4).train


def test_adding_a_stratum_leaves_the_others_alone():
    base = make_splits(keys("a/x", 15), [], seed=0)
    more = make_splits(keys("a/x", 15) + keys("b/y", 7), [], seed=0)
    for split in SPLITS:
        assert [k for k in more[split] if k.startswith("a/x")] == base[split]


def test_backgrounds_are_capped_and_shared_in_proportion():
    splits = make_splits(keys("a/x", 10), ["g1", "g2", "g3"], background_ratio=2.0)
    n_good = [sum(k.startswith("g") for k in splits[s]) for s in SPLITS]
    assert sum(n_good) == 3 and n_good[0] >= n_good[1]


@pytest.mark.parametrize(("n", "sizes"), [(0, [0, 0, 0]), (1, [1, 0, 0]), (2, [1, 1, 0]), (17, [10, 4, 3])])
def test_allocate_small_strata_still_train(n, sizes):
    assert _allocate(n, (0.6, 0.2, 0.2)) == sizes


@pytest.mark.parametrize(
    ("ratios", "background", "message"),
    [
        ((0.5, 0.5), 0.5, "three non-negative numbers"),
        ((0.0, 0.5, 0.5), 0.5, "train > 0"),
        ((0.6, -0.2, 0.2), 0.5, "non-negative"),
        ((0.6, 0.2, 0.2), -1.0, "background ratio must be >= 0"),
    ],
)
def test_bad_split_options(ratios, background, message):
    with pytest.raises(UserError, match=message):
        make_splits(keys("a/x", 5), [], ratios=ratios, background_ratio=background)


def test_round_trip_and_bad_file(tmp_path):
    splits = make_splits(keys("a/x", 9), ["g"], seed=7, ratios=(0.5, 0.25, 0.25))
    save_splits(splits, tmp_path / "splits.json")
    assert load_splits(tmp_path / "splits.json") == splits
    (tmp_path / "bad.json").write_text('{"train": []}')
    with pytest.raises(UserError, match="bad.json lacks the lists"):
        load_splits(tmp_path / "bad.json")
    with pytest.raises(UserError, match="cannot read splits file"):
        load_splits(tmp_path / "absent.json")
