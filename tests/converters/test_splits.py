from __future__ import annotations

import codecs
import json
import math
import tracemalloc

import pytest

from common.errors import UserError
from converters.splits import (
    SPLITS,
    Splits,
    fill_sizes,
    is_split_record,
    load_splits,
    make_splits,
    save_splits,
    split_sizes,
)


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
        assert sizes == split_sizes(n, (0.6, 0.2, 0.2))
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


def test_adding_a_category_moves_no_image_of_the_others_good_ones_included():
    # good images were drawn from one pool of all categories: adding one moved the others' backgrounds
    nuts = keys("nut/bent", 12) + keys("nut/color", 5)
    nut_goods = [f"nut/train/good/{i:02d}" for i in range(30)]
    alone = make_splits(nuts, nut_goods, background_ratio=0.5, seed=2)
    screws = keys("screw/scratch", 12)
    both = make_splits(nuts + screws, nut_goods + [f"screw/train/good/{i:02d}" for i in range(30)],
                       background_ratio=0.5, seed=2)  # fmt: skip
    for split in SPLITS:
        assert [k for k in both[split] if k.startswith("nut/")] == alone[split]
        n_screw = sum(k.startswith("screw/") and "/good/" not in k for k in both[split])
        # each category's own backgrounds, background_ratio per defect image of it
        assert sum(k.startswith("screw/train/good/") for k in both[split]) == int(0.5 * n_screw + 0.5)


def test_one_category_draws_its_backgrounds_as_before_the_per_category_draw():
    # the split every earlier conversion of one category made (seed 0): its splits.json stays valid
    splits = make_splits(
        keys("nut/bent", 5), [f"nut/train/good/{i:02d}" for i in range(8)], background_ratio=0.5
    )
    assert [splits[s] for s in SPLITS] == [
        ["nut/bent/000", "nut/bent/003", "nut/bent/004", "nut/train/good/00", "nut/train/good/04"],
        ["nut/bent/001", "nut/train/good/03"],
        ["nut/bent/002", "nut/train/good/06"],
    ]


def test_backgrounds_are_capped_and_shared_in_proportion():
    splits = make_splits(keys("a/x", 10), ["a/g1", "a/g2", "a/g3"], background_ratio=2.0)
    n_good = [sum(k.startswith("a/g") for k in splits[s]) for s in SPLITS]
    assert n_good == [2, 0, 1]  # 3 of the 12 wanted, shared 0.6 : 0.2 : 0.2 (the tie to the last split)


def test_a_finite_background_ratio_whose_product_overflows_is_shared_like_any_large_one():
    # 1e308 * 6 defect images is inf as a float: int() of it raised OverflowError (a traceback)
    huge = make_splits(keys("a/x", 10), ["a/g1", "a/g2", "a/g3"], background_ratio=1e308)
    two = make_splits(keys("a/x", 10), ["a/g1", "a/g2", "a/g3"], background_ratio=2.0)
    assert [huge[split] for split in SPLITS] == [two[split] for split in SPLITS]


def test_good_images_are_shuffled_by_the_seed():
    goods = [f"a/g{i:02d}" for i in range(20)]

    def backgrounds(seed: int, good_keys: list[str]) -> list[list[str]]:
        splits = make_splits(keys("a/x", 10), good_keys, background_ratio=1.0, seed=seed)
        return [[k for k in splits[s] if k.startswith("a/g")] for s in SPLITS]

    first = backgrounds(0, goods)
    assert [len(b) for b in first] == [6, 2, 2]  # 10 of the 20 drawn
    assert first == backgrounds(0, list(reversed(goods)))  # the seed decides, not the input order
    assert first != backgrounds(1, goods)
    assert sorted(first[0]) != goods[:6]  # not simply the first names


@pytest.mark.parametrize(("n", "sizes"), [(0, [0, 0, 0]), (1, [1, 0, 0]), (2, [1, 1, 0]), (17, [10, 4, 3])])
def test_allocate_small_strata_still_train(n, sizes):
    assert split_sizes(n, (0.6, 0.2, 0.2)) == sizes


@pytest.mark.parametrize(
    "n, kept, sizes",
    [
        (3, (0, 0, 0), [2, 1, 0]),  # none kept: as split_sizes
        (1, (1, 0, 0), [0, 1, 0]),  # one photo per export: the second fills val
        (1, (1, 1, 0), [1, 0, 0]),
        (1, (0, 2, 0), [1, 0, 0]),  # val over its share: train first among the short
        (4, (1, 1, 0), [3, 0, 1]),
        (2, (0, 0, 5), [2, 0, 0]),
    ],
)
def test_new_items_fill_each_split_toward_its_share_of_all(n, kept, sizes):
    # drawn alone, one or two new images went to train at every export of a growing annotation: val and
    # test stayed empty however many were added one at a time
    assert fill_sizes(n, kept, (0.7, 0.15, 0.15)) == sizes and sum(sizes) == n


def test_kept_images_steer_their_stratum_only():
    kept = {"a/scratch": (1, 0, 0)}
    splits = make_splits([("a/test/scratch/1", "a/scratch"), ("a/test/dent/0", "a/dent")], [], kept=kept)
    assert (splits.train, splits.val) == (["a/test/dent/0"], ["a/test/scratch/1"])


def test_allocate_gives_train_one_from_a_donor_and_rounds_half_up():
    assert split_sizes(2, (0.1, 0.45, 0.45)) == [1, 0, 1]  # train would get none: one comes from another
    assert split_sizes(6, (0.25, 0.5, 0.25)) == [2, 3, 1]  # 1.5 rounds up, not to even
    assert split_sizes(5, (0.5, 0.25, 0.25)) == [3, 1, 1]  # 2.5 too
    assert split_sizes(1, (0.2, 0.4, 0.4)) == [1, 0, 0]


def test_backgrounds_under_the_cap_follow_the_ratio():
    splits = make_splits(keys("a/x", 10), ["a/g1", "a/g2", "a/g3", "a/g4"], background_ratio=0.5)
    assert [sum(k.startswith("a/g") for k in splits[s]) for s in SPLITS] == [2, 1, 1]  # 5 wanted, 4 there


def test_backgrounds_exactly_as_many_as_wanted_follow_the_ratio():
    # defect images 1 / 2 / 2 at 0.4 backgrounds each want 0 / 1 / 1 (half up): the 2 good images are
    # just enough, so none is reshared (sharing them in proportion would move one to train)
    splits = make_splits(keys("a/x", 5), ["a/g1", "a/g2"], ratios=(0.2, 0.4, 0.4), background_ratio=0.4)
    assert [sum(not k.startswith("a/g") for k in splits[s]) for s in SPLITS] == [1, 2, 2]
    assert [sum(k.startswith("a/g") for k in splits[s]) for s in SPLITS] == [0, 1, 1]


@pytest.mark.parametrize(
    ("ratios", "background", "seed", "message"),
    [
        ((0.5, 0.5), 0.5, 0, "three finite numbers"),
        ((0.0, 0.5, 0.5), 0.5, 0, "train > 0"),
        ((0.6, -0.2, 0.2), 0.5, 0, ">= 0"),
        ((math.nan, 0.5, 0.5), 0.5, 0, r"--split TRAIN VAL TEST.*got \[nan, 0.5, 0.5\]"),  # drew nothing
        ((0.6, math.inf, 0.2), 0.5, 0, "finite"),
        ((1e308, 1e308, 0.0), 0.5, 0, "finite"),  # each finite, their sum not: every fraction was 0
        ((0.6, 0.2, 0.2), -1.0, 0, "--background-ratio must be a finite number >= 0"),
        ((0.6, 0.2, 0.2), math.nan, 0, "--background-ratio.*nan"),  # int(nan) raised ValueError
        ((0.6, 0.2, 0.2), math.inf, 0, "--background-ratio.*inf"),  # int(inf) raised OverflowError
        ((0.6, 0.2, 0.2), 0.5, -1, "--seed.*-1"),  # numpy refused it with a bare ValueError
        ((True, 0.5, 0.5), 0.5, 0, "three finite numbers"),  # a bool is not a number here
        ((0.6, 0.2, 0.2), True, 0, "--background-ratio.*True"),
    ],
)
def test_bad_split_options(ratios, background, seed, message):
    with pytest.raises(UserError, match=message):
        make_splits(keys("a/x", 5), [], ratios=ratios, background_ratio=background, seed=seed)


def test_saved_splits_are_strict_json(tmp_path):
    bad = Splits(train=["a"], ratios=(math.nan, 0.5, 0.5))
    with pytest.raises(ValueError, match="JSON compliant"):
        save_splits(bad, tmp_path / "splits.json")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


GOOD_FILE = {
    "version": 1,
    "seed": 3,
    "ratios": {"train": 0.6, "val": 0.2, "test": 0.2},
    "background_ratio": 0.5,
    "train": ["a/test/x/000"],
    "val": ["a/test/x/001"],
    "test": [],
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": "abc"}, "\"seed\" must be an integer >= 0, got 'abc'"),  # int("abc") raised
        ({"seed": True}, '"seed"'),
        ({"seed": 1.5}, '"seed"'),
        ({"ratios": [0.6, 0.2, 0.2]}, '"ratios" must be an object'),  # list.get raised
        ({"ratios": {"train": 0.6, "val": 0.4}}, '"ratios" must be an object'),
        ({"ratios": {"train": "0.6", "val": 0.2, "test": 0.2}}, '"ratios" must be three finite'),
        ({"ratios": {"train": 0.6, "val": None, "test": 0.2}}, '"ratios"'),
        ({"background_ratio": None}, '"background_ratio" must be a finite number'),  # float(None)
        ({"background_ratio": "0.5"}, '"background_ratio"'),
        ({"train": "a/test/x/000"}, '"train" must be a list of keys'),
        ({"val": [1, 2]}, '"val" must be a list of keys'),
        ({"test": ["a/test/x/000"]}, "key 'a/test/x/000' is listed twice, in train and test"),
        ({"train": ["a/test/x/000", "a/test/x/000"]}, "key .* is listed twice, in train$"),
        ({"version": 2}, '"version" is 2'),
        ({"version": True}, '"version" is True'),  # True == 1 in Python
        ({"seeed": 1}, 'unknown field "seeed"'),
    ],
)
def test_every_field_of_a_splits_file_is_checked(tmp_path, changes, message):
    path = tmp_path / "splits.json"
    path.write_text(json.dumps(GOOD_FILE | changes))
    with pytest.raises(UserError, match=f"splits file .*splits.json: {message}") as error:
        load_splits(path)
    assert "\n" not in str(error.value)


def test_fields_other_than_the_lists_are_optional(tmp_path):
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"train": ["k"], "val": [], "test": []}))
    assert load_splits(path) == Splits(train=["k"], drawn=False)  # no draw recorded: none claimed
    path.write_text(json.dumps(GOOD_FILE))
    assert load_splits(path).seed == 3


def test_file_ratios_are_checked_but_not_renormalised(tmp_path):
    path = tmp_path / "splits.json"
    path.write_text(
        json.dumps({"train": [], "val": [], "test": [], "ratios": {"train": 3, "val": 1, "test": 1}})
    )
    assert load_splits(path).ratios == (3.0, 1.0, 1.0)
    assert load_splits(path).drawn  # one of the draw's settings recorded: a drawn split, saved with them


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD_FILE, indent=1),
        json.dumps({"version": 1, "train": ["k"], "val": [], "test": []}),  # --split-from-layout: no draw
        json.dumps(GOOD_FILE, indent=1)[:20],  # cut short
        '{"version": ',  # cut before its number
        json.dumps(GOOD_FILE | {"seed": -1, "ratios": [3, 1, 1]}, sort_keys=True),  # bad values, any order
        json.dumps(GOOD_FILE | {"version": 2}),  # a later converters'
        json.dumps({"version": 1, "train": ["k"]}),  # lists missing
        # edited by hand: a field added, a list turned into a string; the rest is still ours
        json.dumps(GOOD_FILE | {"note": "lot 7"}),
        json.dumps(GOOD_FILE | {"train": "a/test/x/000"}),
        json.dumps({"version": 1, "train": "a/test/x/000", "val": ["a/test/x/001"], "test": []}),  # no draw
        json.dumps({"version": 1, "train": ["a/test/x/000"], "val": [], "test": [], "by": "me"}),
    ],
)
def test_a_split_record_of_ours_is_known_damaged_or_not(tmp_path, text):
    path = tmp_path / "splits.json"
    path.write_text(text)
    assert is_split_record(path)


@pytest.mark.parametrize(
    "text",
    [
        '{"version": "1.0", "splits": {"train": "train.txt", "val": "val.txt"}}',  # was ours: "version" first
        '{"version": 1, "train": "train.txt", "val": "val.txt"}',  # splits as list files
        '{"version": 1, "train": [0, 1], "val": [2], "test": []}',  # image indices
        '{"version": 1, "train": ["a.jpg"], "val": [], "test": [], "tags": ["x"]}',  # its own field
        '{"version": 1, "ratios": [0.8, 0.2], "train": "train.txt", "val": "val.txt"}',
        # file paths four parts deep, not keys: a key's stem carries no image suffix
        '{"version": 1, "created": "2026", "train": ["data/images/lot_1/0001.png"], "val": ["d/i/l/2.JPG"]}',
        json.dumps(GOOD_FILE | {"version": "1"}),
        json.dumps(GOOD_FILE | {"version": True}),
        '{"train": ["a.jpg"], "val": [], "test": []}',  # no version: ours always wrote one
        '["train", "val"]',
        "train: a.jpg\n",
        '{"version": "1.0", "train": ',  # not JSON, cut short
    ],
)
def test_another_tools_splits_json_is_not_a_split_record(tmp_path, text):
    path = tmp_path / "splits.json"
    path.write_text(text)
    assert not is_split_record(path)


@pytest.mark.parametrize("cut", [None, 20])
def test_a_split_record_after_a_utf8_bom_is_known(tmp_path, cut):
    # a Windows editor's BOM first: read_json reads past it, but one cut short was not known as ours
    path = tmp_path / "splits.json"
    path.write_bytes(codecs.BOM_UTF8 + json.dumps(GOOD_FILE, indent=1)[:cut].encode())
    assert is_split_record(path)


def test_a_large_file_that_is_no_record_is_told_by_its_beginning_not_read_whole(tmp_path):
    # anomaly's --data takes a split record of any name by its contents: the downloaded archive passed
    # as --data (an xz header, then 64 MiB, sparse here) was read whole into memory (three times its
    # size at the peak) only to be refused
    archive = tmp_path / "mvtec_anomaly_detection.tar.xz"
    with open(archive, "wb") as stream:
        stream.write(b"\xfd7zXZ\x00")
        stream.truncate(64 * 2**20)
    tracemalloc.start()
    try:
        assert not is_split_record(archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


@pytest.mark.parametrize(
    "data",
    [
        b" " * 70_000 + json.dumps(GOOD_FILE).encode(),  # past more white space than is read first
        json.dumps(GOOD_FILE).encode("utf-16"),  # JSON as json.loads reads it, whose first bytes are not '{'
        b"\n" + json.dumps(GOOD_FILE, indent=1).encode()[:20],  # cut short, after a line break
    ],
    ids=["white-space", "utf-16", "cut-short"],
)
def test_a_record_not_told_by_its_first_bytes_is_still_known(tmp_path, data):
    path = tmp_path / "splits_v2.json"
    path.write_bytes(data)
    assert is_split_record(path)


def test_every_split_record_saved_is_known(tmp_path):
    drawn = make_splits(keys("a/x", 5), ["a/good/0"], seed=2)
    for splits in (drawn, Splits(train=["a/x/1"], drawn=False), Splits()):
        save_splits(splits, tmp_path / "splits.json")
        assert is_split_record(tmp_path / "splits.json")


def test_round_trip_and_bad_file(tmp_path):
    splits = make_splits(keys("a/x", 9), ["g"], seed=7, ratios=(0.5, 0.25, 0.25))
    save_splits(splits, tmp_path / "splits.json")
    assert load_splits(tmp_path / "splits.json") == splits
    by_hand = Splits(train=["a/x/1"], val=[], test=["a/x/2"], drawn=False)  # the layout's own split
    save_splits(by_hand, tmp_path / "layout.json")
    assert "seed" not in (tmp_path / "layout.json").read_text()
    assert load_splits(tmp_path / "layout.json") == by_hand
    (tmp_path / "bad.json").write_text('{"train": []}')
    with pytest.raises(UserError, match="bad.json: lacks the lists val, test"):
        load_splits(tmp_path / "bad.json")
    with pytest.raises(UserError, match="cannot read splits file"):
        load_splits(tmp_path / "absent.json")
    (tmp_path / "nan.json").write_text('{"train": [], "val": NaN')
    with pytest.raises(UserError, match="nan.json: not JSON"):
        load_splits(tmp_path / "nan.json")


def test_allocate_gives_train_its_item_from_the_largest_split():
    assert split_sizes(2, (0.1, 0.1, 0.8)) == [1, 0, 1]
    assert split_sizes(1, (0.1, 0.8, 0.1)) == [1, 0, 0]


def test_split_of_names_the_split_of_every_key():
    splits = Splits(train=["a", "b"], val=["c"], test=["d"])
    assert splits.split_of() == {"a": "train", "b": "train", "c": "val", "d": "test"}


def test_ratios_are_normalised_to_fractions():
    splits = make_splits(keys("a/x", 10), [], ratios=(3, 1, 1))
    assert splits.ratios == (0.6, 0.2, 0.2)
    assert [len(splits[s]) for s in SPLITS] == [6, 2, 2]


def test_strata_of_equal_size_are_shuffled_independently():
    splits = make_splits(keys("a/x", 20) + keys("b/y", 20), [], seed=0)
    stems = {
        stratum: {k.rsplit("/", 1)[1] for k in splits.train if k.startswith(stratum)}
        for stratum in ("a", "b")
    }
    assert stems["a"] != stems["b"]
