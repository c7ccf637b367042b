"""K-fold rounds: disjoint splits, every defect image a test image exactly once, stratified, seeded."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from segmentation.crossval import RoundResult, bucket_ious, format_summary, size_bucket, summary
from segmentation.data import SegmentationImage, SegmentationSplit, load_split
from segmentation.evaluate import ModelEvaluation
from segmentation.folds import deal_folds, kfold, pool_defect_images, write_fold
from segmentation.metrics import ImageScore, Summary
from tests.segmentation.renames import refuse_rename, refuse_touch


def items(n_per_stratum: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{s}/{i}", s) for s, n in n_per_stratum.items() for i in range(n)]


@pytest.mark.parametrize(
    ("strata", "k"), [({"a": 7, "b": 5, "c": 5}, 5), ({"x": 3}, 3), ({"a": 10, "b": 1}, 4)]
)
def test_rounds_are_disjoint_and_test_every_image_once(strata, k):
    keys = items(strata)
    rounds = kfold(keys, k, seed=0)
    assert len(rounds) == k
    tested = Counter(key for fold in rounds for key in fold.test)
    assert set(tested) == {key for key, _ in keys} and set(tested.values()) == {1}
    for fold in rounds:
        train, val, test = set(fold.train), set(fold.val), set(fold.test)
        assert not (train & val or train & test or val & test)
        assert train | val | test == {key for key, _ in keys}
        assert fold.val == rounds[(fold.index + 1) % k].test


def test_dealing_goes_on_across_strata_so_folds_stay_balanced():
    rounds = kfold(items({"a": 3, "b": 3, "c": 3}), 5, seed=0)
    assert sorted(len(fold.test) for fold in rounds) == [1, 2, 2, 2, 2]  # not 3, 3, 3, 0, 0


def test_folds_are_stratified_balanced_and_seeded():
    keys = items({"a": 10, "b": 10})
    rounds = kfold(keys, 5, seed=3)
    for fold in rounds:
        assert Counter(key.split("/")[0] for key in fold.test) == {"a": 2, "b": 2}
    assert [f.test for f in kfold(keys, 5, seed=3)] == [f.test for f in rounds]
    assert [f.test for f in kfold(keys, 5, seed=4)] != [f.test for f in rounds]


def test_folds_do_not_depend_on_the_order_of_the_keys():
    keys = items({"a": 4, "b": 3, "c": 5})
    assert kfold(keys[::-1], 4, seed=1) == kfold(keys, 4, seed=1)


def test_each_stratum_is_shuffled_by_its_own_generator():
    # two strata of 5 in 5 folds: fold i tests the i-th key of each stratum's shuffle
    rounds = kfold(items({"a": 5, "b": 5}), 5, seed=0)
    pairs = [sorted(fold.test) for fold in rounds]
    assert all(len(pair) == 2 for pair in pairs)
    assert any(a.split("/")[1] != b.split("/")[1] for a, b in pairs)  # not one shuffle for both
    # the shuffle of b is its own, whatever strata come before it (a fills whole rounds of dealing)
    alone = kfold(items({"b": 5}), 5, seed=0)
    assert [[key for key in fold.test if key.startswith("b/")] for fold in rounds] == [
        list(fold.test) for fold in alone
    ]


@pytest.mark.parametrize(("k", "n", "message"), [(2, 10, "at least 3"), (6, 5, "more folds than")])
def test_bad_fold_counts(k, n, message):
    with pytest.raises(UserError, match=message):
        kfold(items({"a": n}), k)


def test_pooled_rounds_are_data_folders(tiny_dataset, tmp_path):
    pool, categories = pool_defect_images(tiny_dataset)
    originals = sum(
        1 for s in ("train", "val", "test") for im in load_split(tiny_dataset, s).images if im.annotations
    )
    assert len(pool) == originals and len({p.image["id"] for p in pool}) == len(pool)
    rounds = kfold([(p.key, p.stratum) for p in pool], 3)
    folder = write_fold(tiny_dataset, pool, categories, rounds[0], tmp_path / "fold0")
    for split in ("train", "val", "test"):
        loaded = load_split(folder, split)
        assert len(loaded.images) == len(rounds[0][split])
        assert all(image.path.is_file() for image in loaded.images)
    coco = json.loads((folder / "annotations" / "instances_test.json").read_text())
    ids = [a["id"] for a in coco["annotations"]]
    assert len(ids) == len(set(ids))


def coco_folder(root: Path, categories: dict[str, list[dict]] | None = None) -> Path:
    """A data folder of three COCO splits, one black 4x4 defect image each (two annotations in train),
    each annotation the top-left pixel."""
    from converters.masks import mask_to_rle

    names = [{"id": 1, "name": "crack", "supercategory": "defect"}, {"id": 2, "name": "dent"}]
    pixel = np.zeros((4, 4), dtype=bool)
    pixel[0, 0] = True
    for split, category_ids in (("train", [2, 1]), ("val", [1]), ("test", [2])):
        annotations = [
            {"id": i + 1, "image_id": 7, "category_id": c, "bbox": [0, 0, 1, 1], "area": 1,
             "segmentation": mask_to_rle(pixel)}
            for i, c in enumerate(category_ids)
        ]  # fmt: skip
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(root / "images" / split / "x.png")
        coco = {
            "images": [{"id": 7, "file_name": f"{split}/x.png", "width": 4, "height": 4}],
            "annotations": annotations,
            "categories": (categories or {}).get(split, names),
        }
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    return root


def test_pool_stratum_is_the_first_annotations_category_name(tmp_path):
    pool, categories = pool_defect_images(coco_folder(tmp_path))
    assert [(p.key, p.stratum) for p in pool] == [
        ("train/train/x.png", "dent"),
        ("val/val/x.png", "crack"),
        ("test/test/x.png", "dent"),
    ]
    assert [c["name"] for c in categories] == ["crack", "dent"]


def test_pool_reads_each_coco_file_once(tmp_path, monkeypatch):
    # it read and parsed each file twice (load_split, then again raw), and a file rewritten in between
    # was checked in one state and pooled in another
    reads = Counter()
    read_text = Path.read_text

    def counted(path, *args, **kwargs):
        reads[path.name] += path.name.startswith("instances_")
        return read_text(path, *args, **kwargs)

    data = coco_folder(tmp_path)
    path = data / "annotations" / "instances_val.json"
    coco = json.loads(path.read_text())
    coco["annotations"][0]["area"] = 2  # another tool's area: its mask is 1 px
    path.write_text(json.dumps(coco))
    monkeypatch.setattr(Path, "read_text", counted)
    pool, _ = pool_defect_images(data)
    assert +reads == {f"instances_{split}.json": 1 for split in ("train", "val", "test")}
    # the entries as the file writes them, not as load_split scores them: a round's COCO files unchanged
    assert [[a["area"] for a in image.annotations] for image in pool] == [[1, 1], [2], [1]]


CRACK = {"id": 1, "name": "crack", "supercategory": "defect"}  # coco_folder's categories
DENT = {"id": 2, "name": "dent"}


@pytest.mark.parametrize(
    ("categories", "listed"),
    [
        # a class renamed in one file: it said 'list different categories' without which or how
        (
            {"test": [CRACK, {"id": 2, "name": "scratch"}]},
            "train and val list crack, dent; test lists crack, scratch",
        ),
        (
            {"train": [CRACK, DENT, {"id": 3, "name": "hole"}]},
            "train lists crack, dent, hole; val and test list crack, dent",
        ),
        # the same names under another id: each name with its id
        (
            {"val": [CRACK, {"id": 3, "name": "dent"}]},
            "train and test list crack (id 1), dent (id 2); val lists crack (id 1), dent (id 3)",
        ),
    ],
)
def test_pool_refuses_splits_with_different_categories_naming_them(tmp_path, categories, listed):
    data = coco_folder(tmp_path, categories)
    message = (
        f"the COCO splits of {data} list different categories ({listed}): the pooled folds take one list, "
        "so give every split's COCO file the same categories"
    )
    with pytest.raises(UserError, match="^" + re.escape(message) + "$"):
        pool_defect_images(data)


@pytest.mark.parametrize("empty", ["train", "test"])
@pytest.mark.parametrize("listed", [[], [{"id": 5, "name": "other"}]], ids=["none", "others"])
def test_a_split_without_annotations_pools_whatever_categories_it_lists(tmp_path, empty, listed):
    # another tool's file of good photos lists no categories: refused as 'test lists none', though it
    # gives the pool nothing
    data = coco_folder(tmp_path, {empty: listed})
    path = data / "annotations" / f"instances_{empty}.json"
    coco = json.loads(path.read_text())
    coco["annotations"] = []
    path.write_text(json.dumps(coco))
    pool, categories = pool_defect_images(data)
    assert [(p.key.split("/")[0], p.stratum) for p in pool] == [
        (split, stratum)
        for split, stratum in (("train", "dent"), ("val", "crack"), ("test", "dent"))
        if split != empty
    ]
    assert categories == [CRACK, DENT]


@pytest.mark.parametrize(
    "categories",
    [
        {"val": [CRACK, {**DENT, "supercategory": "x"}]},  # another supercategory
        {"test": [DENT, CRACK]},  # another order
    ],
    ids=["supercategory", "order"],
)
def test_pool_takes_splits_that_differ_only_beyond_name_by_id(tmp_path, categories):
    # pooling reads each split's name by id alone: these were refused as 'different categories'
    pool, listed = pool_defect_images(coco_folder(tmp_path, categories))
    assert [p.stratum for p in pool] == ["dent", "crack", "dent"]
    assert listed == [CRACK, DENT]  # train's entries, written into every fold's COCO files


def test_fold_folder_carries_the_data_splits_file(tmp_path):
    data = coco_folder(tmp_path / "data")
    pool, categories = pool_defect_images(data)
    fold = kfold([(p.key, p.stratum) for p in pool], 3)[0]
    assert not (write_fold(data, pool, categories, fold, tmp_path / "bare") / "splits.json").exists()
    text = '{"version": 1, "train": ["nut/test/crack/000"], "val": [], "test": []}\n'
    (data / "splits.json").write_text(text)
    folder = write_fold(data, pool, categories, fold, tmp_path / "fold0")
    assert (folder / "splits.json").read_text() == text


def test_size_buckets():
    assert size_bucket(1000, (640, 480)) == "small"  # < 32^2 at COCO's scale
    assert size_bucket(1000, (320, 320)) == "medium"  # the threshold scales with the image: 256
    assert size_bucket(10000, (640, 640)) == "large"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (  # sorted by id: a TypeError traceback
            lambda coco: coco["images"][0].update(id=str(coco["images"][0]["id"])),
            "is not a whole number",
        ),
        (  # refused inside round 0's training, naming the round's copy, the earlier run already removed
            lambda coco: coco["annotations"][0].update(bbox=[-100, -100, 300, 300]),
            "reaching outside its 64x64 px image",
        ),
    ],
)
def test_a_hand_edited_coco_file_is_refused_naming_it_before_any_round(tiny_dataset, tmp_path, edit, message):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    path = data / "annotations" / "instances_val.json"
    coco = json.loads(path.read_text())
    edit(coco)
    path.write_text(json.dumps(coco))
    with pytest.raises(UserError, match=rf"{re.escape(str(path))}.* {message}"):
        pool_defect_images(data)


def test_a_coco_file_without_areas_gets_size_buckets_by_its_masks_pixels(tiny_dataset, tmp_path):
    # COCO lets `area` out (the mask's pixels); --folds stopped with KeyError: 'area' after every round
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    path = data / "annotations" / "instances_test.json"
    coco = json.loads(path.read_text())
    for annotation in coco["annotations"]:
        annotation.pop("area")
    path.write_text(json.dumps(coco))
    split = load_split(data, "test")
    pixels = [int(mask.sum()) for image in split.images for mask in image.instance_masks()]
    assert [a["area"] for image in split.images for a in image.annotations] == pixels
    scores = [ImageScore(i.image_id, 1.0, 1.0, instance_iou=[1.0] * len(i.annotations)) for i in split.images]
    buckets = bucket_ious(split, ModelEvaluation("fine-tuned", None, scores))
    assert sum(len(ious) for ious in buckets.values()) == len(pixels)


@pytest.mark.parametrize("area", [1e6, 0.5])  # another tool's number: every instance large, or small
def test_a_wrong_positive_area_does_not_move_an_instance_to_another_size_bucket(tiny_dataset, tmp_path, area):
    # the bucket followed the file's `area`, not the mask whose instance IoU it held
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    path = data / "annotations" / "instances_test.json"
    coco = json.loads(path.read_text())
    for annotation in coco["annotations"]:
        annotation["area"] = area
    path.write_text(json.dumps(coco))
    split = load_split(data, "test")
    ious, expected = [], {name: [] for name in ("small", "medium", "large")}
    for image in split.images:
        image_ious = [0.1 * (len(ious) + i) for i in range(len(image.annotations))]
        for mask, iou in zip(image.instance_masks(), image_ious, strict=True):
            expected[size_bucket(float(mask.sum()), (image.height, image.width))].append(iou)
        ious.append(image_ious)
    scores = [
        ImageScore(i.image_id, 1.0, 1.0, instance_iou=v) for i, v in zip(split.images, ious, strict=True)
    ]
    assert bucket_ious(split, ModelEvaluation("fine-tuned", None, scores)) == expected
    assert sum(len(v) > 0 for v in expected.values()) >= 2  # the masks fall in more than one bucket
    assert json.loads(path.read_text()) == coco  # the file is left as it was


def _evaluation(name, ious, instance_ious):
    scores = [
        ImageScore(i + 1, iou, iou, instance_iou=inst)
        for i, (iou, inst) in enumerate(zip(ious, instance_ious, strict=True))
    ]
    mean = {"all": sum(ious) / len(ious)}
    return ModelEvaluation(name, Summary(mean, mean, mean, mean, mean, mean, {"all": len(ious)}), scores)


def _round(index, areas, zero_shot, tuned):
    images = [
        SegmentationImage(i + 1, Path(f"{index}_{i}.png"), 640, 480, tuple({"area": a} for a in image_areas))
        for i, image_areas in enumerate(areas)
    ]
    test = SegmentationSplit("test", images, {1: "cut"}, Path("instances_test.json"))
    return RoundResult(
        index, test, _evaluation("zero-shot", *zero_shot), _evaluation("fine-tuned", *tuned), Path("run")
    )


def test_summary_pools_rounds_per_image_and_per_size_bucket():
    results = [
        _round(0, [[500, 5000], []], ([0.5, 0.3], [[0.4, 0.6], []]), ([0.7, 0.6], [[0.6, 0.8], []])),
        # 32^2 and 96^2 px exactly are medium and large; a change of 5e-5 IoU counts as the same
        _round(
            1,
            [[1024, 9216], [20000]],
            ([0.8, 0.9], [[0.5, 0.9], [0.9]]),
            ([0.80005, 0.6], [[0.7, 0.9], [0.6]]),
        ),
    ]
    out = summary(results)
    assert out["folds"] == 2
    assert out["metrics"]["IoU"]["zero-shot"]["per_fold"] == [pytest.approx(0.4), pytest.approx(0.85)]
    assert out["metrics"]["IoU"]["fine-tuned"]["mean"] == pytest.approx((0.65 + 0.700025) / 2)
    assert out["per_image"] == [
        {"round": 0, "image": "0_0.png", "zero-shot": 0.5, "fine-tuned": 0.7},
        {"round": 0, "image": "0_1.png", "zero-shot": 0.3, "fine-tuned": 0.6},
        {"round": 1, "image": "1_0.png", "zero-shot": 0.8, "fine-tuned": 0.80005},
        {"round": 1, "image": "1_1.png", "zero-shot": 0.9, "fine-tuned": 0.6},
    ]
    assert out["images"] == {"better": 2, "worse": 1, "same": 1}
    assert out["buckets"]["zero-shot"] == {
        "small": {"n": 1, "instance_iou": 0.4},
        "medium": {"n": 2, "instance_iou": pytest.approx(0.55)},
        "large": {"n": 2, "instance_iou": pytest.approx(0.9)},
    }
    assert out["buckets"]["fine-tuned"]["large"] == {"n": 2, "instance_iou": pytest.approx(0.75)}
    table = format_summary(out).splitlines()
    assert table[2] == "| IoU | 0.6250 +- 0.3182 | 0.6750 +- 0.0354 | +0.0500 |"  # each its own mean and std
    assert "| small | 1 | 0.4000 | 0.6000 |" in table


def test_folds_json_is_strict_and_reads_back_to_the_same_table(tmp_path, strict_json):
    from segmentation.crossval import write_folds

    # small instances only: the medium and large buckets have no instance IoU
    results = [
        _round(i, [[500], [600]], ([0.5, 0.3], [[0.4], [0.2]]), ([0.7, 0.6], [[0.6], [0.5]])) for i in (0, 1)
    ]
    for r in results:  # mask AP undefined in every round
        r.zero_shot.summary.mask_ap = r.tuned.summary.mask_ap = {}
    written = {"data": "/data", "config": {"out": tmp_path}, "tta": False, **summary(results)}
    table = write_folds(tmp_path, written)
    # undefined: '-' as in table.md (common.tables.fmt); folds.md printed nan, and +nan for the gain
    assert "| large | 0 | - | - |" in table and "| mask AP | - +- - | - +- - | - |" in table
    folds = strict_json(tmp_path / "folds.json")  # it held bare NaNs, which jq and JSON.parse refuse
    assert folds["buckets"]["zero-shot"]["large"] == {"n": 0, "instance_iou": None}
    assert folds["metrics"]["mask AP"]["fine-tuned"] == {"mean": None, "std": None, "per_fold": [None, None]}
    assert format_summary(folds) == table == (tmp_path / "folds.md").read_text().rstrip("\n")
    assert (tmp_path / "folds.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--folds", "2"], "at least 3 folds"),
        (["--folds", "5", "--checkpoint", "x/decoder.pt"], "drop --checkpoint"),
        (["--folds", "50"], "more folds than"),
        # was silently dropped: the rounds tuned and scored without crops
        (["--folds", "3", "--crop-fraction", "0.125"], "pass --set crops.max_fraction=0.125 instead"),
        # were ignored: a whole run on --data, in --out, while the user asked for another data set or folder
        (["--folds", "3", "--set", "data=d"], "--folds takes its data from --data: drop --set data=d"),
        (["--folds", "3", "--set", "out=o"], "--folds takes its out from --out (the rounds train in its"),
        (["--folds", "3", "--set", "epochs=1", "name=n"], "drop --set name=n"),
        (["--folds", "3", "--set", "exist_ok=true"], "--folds takes its exist_ok from --out (the rounds"),
        # the flips and the crops meet only when the first round is scored: refused before training
        (
            ["--folds", "3", "--tta", "--set", "crops.max_fraction=0.2", "epochs=1", "max_steps=1"],
            "error: override 'crops.max_fraction=0.2': config key 'crops.max_fraction' (0.2) and --tta "
            "do not combine",
        ),
    ],
)
def test_evaluate_folds_refuses_bad_requests(tiny_dataset, tmp_path, capsys, extra, message):
    from segmentation.evaluate import main

    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--cache-dir", str(cache), "--no-progress"]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists() and not cache.exists()


@pytest.mark.parametrize("k", ["2", "-2"])
@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_a_k_below_3_is_named_before_the_out_folder_is_judged(tiny_dataset, tmp_path, capsys, k, resume):
    # an --out holding an evaluation (or a --folds run of 3): it was told to choose another --out (or that
    # the run holds 3 folds), and with one it was told the K after all
    from segmentation.evaluate import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "table.md").write_text("an earlier evaluation")
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", k, "--no-progress", *resume]
    assert main(argv) == 2
    assert (
        capsys.readouterr().err == f"error: --folds needs at least 3 folds (test, val and train), got {k}\n"
    )
    assert [p.name for p in out.iterdir()] == ["table.md"]


class _Started(Exception):
    """Raised by a stand-in for the rounds: the checks passed and the rounds would start."""


def _earlier_folds_run(out: Path) -> None:
    # what a --folds run leaves (a killed one lacks folds.json/md/png)
    for index in range(3):
        (out / f"fold{index}" / "annotations").mkdir(parents=True)
        (out / "runs" / f"fold{index}").mkdir(parents=True)
        (out / "runs" / f"fold{index}" / "decoder.pt").write_bytes(b"old")
    for name in ("folds.json", "folds.md", "folds.png"):
        (out / name).write_text("old")
    photos = out.parent / "photos"  # each round links the data's images/
    photos.mkdir(exist_ok=True)
    (photos / "a.png").write_text("photo")
    (out / "fold0" / "images").symlink_to(photos, target_is_directory=True)


@pytest.mark.parametrize("killed", [False, True, "linked runs"], ids=["finished", "killed", "linked runs"])
def test_a_folds_run_into_an_earlier_folds_runs_out_replaces_it(
    tiny_dataset, tmp_path, monkeypatch, capsys, killed
):
    # The same command twice (its default --out is runs/sam/folds_<data>) was refused the second time:
    # "holds other files than an earlier evaluation's"
    from segmentation import crossval
    from segmentation.evaluate import main

    out = tmp_path / "out"
    _earlier_folds_run(out)
    if killed is True:
        for name in ("folds.json", "folds.md", "folds.png"):
            (out / name).unlink()
    if killed == "linked runs":  # runs/ a link to another disk: the link goes, not what it points to
        (tmp_path / "disk").mkdir()
        (tmp_path / "disk" / "decoder.pt").write_bytes(b"kept")
        shutil.rmtree(out / "runs")
        (out / "runs").symlink_to(tmp_path / "disk", target_is_directory=True)
    seen = {}

    def train(run_config, **options):  # the first round's training: what is left of the earlier run
        seen["left"] = sorted(path.name for path in out.iterdir())
        seen["old"] = (out / "fold0" / "annotations" / "old").exists()
        raise _Started

    monkeypatch.setattr(crossval, "load_sam", lambda *args, **kwargs: None)
    monkeypatch.setattr(crossval, "train", train)
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    with pytest.raises(_Started):
        main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1"])
    # the earlier rounds' data links and runs are not reused: only this run's plan and first round (and
    # its marker, removed as it stopped: check_no_live_folds_run)
    assert [name for name in seen["left"] if not name.startswith(".folds.")] == ["fold0", "folds_plan.json"]
    assert not list(out.glob(".folds.*.tmp"))
    assert not seen["old"]
    assert f"note: replacing the earlier --folds run in {out}" in capsys.readouterr().err
    assert (tmp_path / "photos" / "a.png").read_text() == "photo", "a round's images link is not followed"
    if killed == "linked runs":
        assert (tmp_path / "disk" / "decoder.pt").read_bytes() == b"kept"


@pytest.mark.parametrize("resume", [False, True], ids=["again", "resume"])
def test_a_folds_run_into_the_out_of_one_still_going_is_refused(
    tiny_dataset, tmp_path, monkeypatch, capsys, resume
):
    # A second --folds run into the same --out removed the first one's rounds as it trained ("note:
    # replacing the earlier --folds run"), and the first stopped on a missing instances_val.json.
    import os
    import socket
    import zlib

    from segmentation import crossval
    from segmentation.evaluate import main

    out = tmp_path / "out"
    _earlier_folds_run(out)
    (out / "folds_plan.json").write_text(json.dumps({"folds": 3, "fold_seed": 0}))
    host = f"{zlib.crc32(socket.gethostname().encode()):08x}"
    marker = out / f".folds.{host}-{os.getppid()}-0123abcd.tmp"  # a live process of this machine
    marker.write_text("")
    monkeypatch.setattr(crossval, "load_sam", lambda *args, **kwargs: None)
    monkeypatch.setattr(crossval, "train", lambda *args, **kwargs: pytest.fail("trained"))
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1", *["--resume"] * resume])
    err = capsys.readouterr().err
    assert code == 2 and "replacing" not in err
    assert err == (
        f"error: --out {out} is being written by another --folds run (process {os.getppid()}): wait for it "
        f"to end or stop it, then run this again, or choose another --out; if that run is known to have "
        f"ended, delete its marker {marker}\n"
    )
    assert (out / "runs" / "fold1" / "decoder.pt").read_bytes() == b"old" and marker.is_file()
    # the marker of a killed run is removed, and the run goes on as before
    marker.rename(out / f".folds.{host}-999999999-0123abcd.tmp")
    monkeypatch.setattr(crossval, "train", lambda *args, **kwargs: (_ for _ in ()).throw(_Started()))
    with pytest.raises(_Started):
        main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1", *["--resume"] * resume])
    assert [path.name for path in out.glob(".folds.*.tmp")] == []


def test_of_two_folds_runs_marking_at_one_instant_one_is_refused(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # the check for a live run and this run's marker were two steps: a second run that checked at the
    # same instant (no marker yet) and marked beside this one went on too, and each replaced the other's
    # rounds; marked first and checked after, the later of two marks sees the other's: one or both are
    # refused (here the other run's mark came first), and the error says to run again once it has ended
    import os
    import socket
    import zlib

    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work = tmp_path / "work"
    host = f"{zlib.crc32(socket.gethostname().encode()):08x}"
    other = work / f".folds.{host}-{os.getppid()}-0123abcd.tmp"  # a live process of this machine
    mark = crossval.mark_folds_run

    def mark_beside_another(folder):
        folder.mkdir(parents=True, exist_ok=True)
        other.write_text("")  # the other run marks as this one does
        return mark(folder)

    monkeypatch.setattr(crossval, "mark_folds_run", mark_beside_another)
    with pytest.raises(UserError, match=rf"^--out {work} is being written by another --folds run \(process"):
        crossval.cross_validate(tiny_dataset, 3, dict(DEFAULTS), work=work)
    assert trained == [] and [path.name for path in work.glob(".folds.*.tmp")] == [other.name]
    other.unlink()  # the other run ended: this one, run again, goes on
    monkeypatch.setattr(crossval, "mark_folds_run", mark)
    crossval.cross_validate(tiny_dataset, 3, dict(DEFAULTS), work=work)
    assert trained == ["fold0", "fold1", "fold2"]


def test_a_killed_runs_marker_naming_this_process_is_removed(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # a run killed (SIGKILL) leaves its marker; a later run given the same process id skipped it as its
    # own and never removed it (one process runs one --folds run: only this run's marker is its own)
    import os
    import socket
    import zlib

    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work = tmp_path / "work"
    work.mkdir()
    host = f"{zlib.crc32(socket.gethostname().encode()):08x}"
    killed = work / f".folds.{host}-{os.getpid()}-0123abcd.tmp"
    killed.write_text("")
    crossval.cross_validate(tiny_dataset, 3, dict(DEFAULTS), work=work)
    assert trained == ["fold0", "fold1", "fold2"] and list(work.glob(".folds.*.tmp")) == []
    # left after the run's own check (as while the base model loaded): removed by the check after marking
    mark = crossval.mark_folds_run

    def mark_beside_killed(folder):
        killed.write_text("")
        return mark(folder)

    monkeypatch.setattr(crossval, "mark_folds_run", mark_beside_killed)
    crossval.cross_validate(tiny_dataset, 3, dict(DEFAULTS), work=work, resume=True)
    assert list(work.glob(".folds.*.tmp")) == []


def test_a_marker_of_another_machine_with_this_processs_id_is_a_live_run(tmp_path):
    # it was skipped as this process's own: the process ids of two machines are unrelated
    import os

    from segmentation.folds import check_no_live_folds_run

    other = tmp_path / f".folds.0badc0de-{os.getpid()}-0123abcd.tmp"  # written just now
    other.write_text("")
    with pytest.raises(UserError, match=rf"^--out {tmp_path} is being written by another --folds run"):
        check_no_live_folds_run(tmp_path)
    assert other.is_file()


def test_a_folds_run_into_an_empty_out_made_by_hand_starts(tiny_dataset, tmp_path, monkeypatch, capsys):
    from segmentation import crossval
    from segmentation.evaluate import main

    out = tmp_path / "out"
    out.mkdir()

    def rounds(data, k, config, *, work, seed, tta, resume, finish):
        raise _Started

    monkeypatch.setattr(crossval, "cross_validate", rounds)
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    with pytest.raises(_Started):
        main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1"])
    assert "replacing" not in capsys.readouterr().err


def test_folds_reads_the_readmes_config_path_from_another_working_folder(tiny_dataset, tmp_path, monkeypatch):
    from segmentation import crossval
    from segmentation.evaluate import main

    seen = {}

    def rounds(data, k, config, *, work, seed, tta, resume, finish):
        seen["config"] = config
        raise _Started

    monkeypatch.setattr(crossval, "cross_validate", rounds)
    monkeypatch.chdir(tmp_path)  # it said 'cannot read config configs/segmentation/sam_encoder.yaml'
    argv = ["--data", str(tiny_dataset), "--out", "out", "--folds", "3", "--no-progress"]
    with pytest.raises(_Started):
        main([*argv, "--config", "configs/segmentation/sam_encoder.yaml", "--set", "epochs=1"])
    assert (seen["config"]["batch_size"], seen["config"]["epochs"]) == (2, 1)


@pytest.mark.parametrize(
    "other",
    ["notes.txt", None, "fold0-old", "rounds never started"],
    ids=["another file", "runs alone", "a folder named like a round", "rounds never started"],
)
def test_a_folds_out_holding_anything_else_is_refused_and_left_alone(tiny_dataset, tmp_path, capsys, other):
    from segmentation.evaluate import main

    out = tmp_path / "out"
    if other is None:  # a folder of someone's runs: no fold<i>/annotations, so not an earlier --folds run
        (out / "runs" / "mine").mkdir(parents=True)
    elif other == "rounds never started":  # fold<i> folders without annotations/: not a --folds run's
        for index in range(2):
            (out / f"fold{index}" / "notes").mkdir(parents=True)
    elif other == "fold0-old":  # a folder of the user's, no round of a --folds run
        _earlier_folds_run(out)
        (out / other).mkdir()
        (out / other / "mine.txt").write_text("mine")
    else:
        _earlier_folds_run(out)
        (out / other).write_text("mine")
    before = sorted(str(path.relative_to(out)) for path in out.rglob("*"))
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: --out {out} holds other files than an earlier --folds run's")
        and err.count("\n") == 1
    )
    assert sorted(str(path.relative_to(out)) for path in out.rglob("*")) == before


def test_plot_folds_draws_every_image_and_round(tmp_path):
    from PIL import Image

    from segmentation.crossval import plot_folds

    rows = [
        {"round": r, "image": f"{r}_{i}.png", "zero-shot": 0.7 + 0.05 * i, "fine-tuned": 0.72 + 0.04 * i}
        for r in range(3)
        for i in range(4)
    ]
    per_fold = {"zero-shot": [0.775, 0.775, 0.775], "fine-tuned": [0.78, 0.78, 0.78]}
    summary_ = {
        "folds": 3,
        "per_image": rows,
        "images": {"better": 6, "worse": 6, "same": 0},
        "metrics": {"IoU": {m: {"mean": v[0], "std": 0.0, "per_fold": v} for m, v in per_fold.items()}},
    }
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()  # another test's, in the same process
    plot_folds(summary_, tmp_path / "folds.png")
    with Image.open(tmp_path / "folds.png") as image:
        assert image.format == "PNG" and image.size == (1000, 420)
    assert [p.name for p in tmp_path.iterdir()] == ["folds.png"]  # written atomically
    assert plt.get_fignums() == open_before  # closed: a notebook that runs the rounds keeps no figure open


def test_the_plots_legend_names_each_round_as_its_folders_are():
    # it said 'round 1'-'round 3' beside the folders fold0-fold2 and the printed 'fold0 (1 of 3)'
    import matplotlib.colors
    import matplotlib.pyplot as plt

    from segmentation.crossval import folds_figure

    rows = [{"round": r, "image": f"{r}.png", "zero-shot": 0.7, "fine-tuned": 0.8} for r in range(3)]
    per_fold = {"zero-shot": [0.7] * 3, "fine-tuned": [0.8] * 3}
    summary_ = {
        "folds": 3,
        "per_image": rows,
        "images": {"better": 3, "worse": 0, "same": 0},
        "metrics": {"IoU": {m: {"mean": v[0], "std": 0.0, "per_fold": v} for m, v in per_fold.items()}},
    }
    fig = folds_figure(summary_)
    assert [text.get_text() for text in fig.axes[0].get_legend().get_texts()] == ["fold0", "fold1", "fold2"]
    right = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]  # its lines were unnamed
    assert right == ["fold0", "fold1", "fold2", "mean ± std"]
    dots = [tuple(c.get_facecolor()[0]) for c in fig.axes[0].collections]  # each round's colour, left
    assert [matplotlib.colors.to_rgba(line.get_color()) for line in fig.axes[1].lines[:3]] == dots
    plt.close(fig)


def test_a_round_is_announced_by_the_name_of_its_folders(tiny_dataset, tmp_path, monkeypatch, capsys):
    # 'fold 1/3' was printed while the round was written to fold0 and runs/fold0
    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    def train(run_config, **options):
        assert run_config["name"] == "fold0" and Path(run_config["data"]).name == "fold0"
        raise _Started

    monkeypatch.setattr(crossval, "load_sam", lambda *args, **kwargs: None)
    monkeypatch.setattr(crossval, "train", train)
    with pytest.raises(_Started):
        crossval.cross_validate(tiny_dataset, 3, dict(DEFAULTS), work=tmp_path / "work")
    assert capsys.readouterr().err.startswith("fold0 (1 of 3): fine-tuning on ")


def test_a_folds_run_says_once_what_every_rounds_training_said_of_its_data(
    tiny_dataset, tmp_path, monkeypatch, capsys
):
    # grey photos with colour_head=true and augment.enabled: each round's training printed the warning
    # (on its own share of the photos, naming its fold folder) and the augmentation line, K times; the
    # warning advised segmentation.train's 'colour_head=false', which this command takes after --set
    import cv2

    from common.config import load_config
    from segmentation import crossval, run_setup
    from segmentation.train_config import DEFAULTS

    data = tmp_path / "grey"
    shutil.copytree(tiny_dataset, data)
    for image in (data / "images").rglob("*.png"):  # one channel: read as three equal ones
        assert cv2.imwrite(str(image), cv2.imread(str(image), cv2.IMREAD_GRAYSCALE))
    overrides = ["colour_head=true", "augment.enabled=true", "augment.category=synthetic_nut"]
    config = load_config(DEFAULTS, None, [f"data={data}", "device=cpu", "progress=false", *overrides])
    real_train = crossval.train

    def train(run_config, **options):  # each round's set-up, up to the model
        with pytest.raises(_Started):
            real_train(run_config, **options)
        return Path(run_config["out"]) / run_config["name"]

    def load_model(*args):
        raise _Started

    monkeypatch.setattr(run_setup, "load_model", load_model)
    monkeypatch.setattr(crossval, "train", train)
    monkeypatch.setattr(crossval, "load_sam", lambda *args, **kwargs: None)
    monkeypatch.setattr(crossval, "load_round_model", lambda run_dir, config: (None, None))
    monkeypatch.setattr(crossval, "load_colour_prompt", lambda path: None)
    monkeypatch.setattr(crossval, "score_round", lambda *args, **kwargs: ("zero-shot", "fine-tuned"))
    crossval.cross_validate(data, 3, config, work=tmp_path / "work")
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if line.startswith(("warning:", "augmentation:"))] == [
        f"warning: the 3 photos read from the 20 are greyscale (the defect photos of {data}, which the "
        "rounds train on), and the colour head reads colour, which a grey photo does not have: train "
        "without it (--set colour_head=false)",
        "augmentation: rot90, rot270 views of every train photo (configs/detection/augment.yaml for "
        "synthetic_nut), each encoded once into the embedding cache",
    ]
    assert lines[2].startswith("fold0 (1 of 3): fine-tuning on ")  # before the rounds


def test_a_round_tuned_on_the_users_base_weights_is_scored_on_them(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # --set checkpoint=BASE: the round trained on BASE, then its decoder.pt was put on the official
    # weights and refused ("was tuned on base weights with sha256 ...") once the first round had trained
    import segmentation.models
    from common.io import sha256_file
    from segmentation import crossval
    from segmentation.finetuned import save_decoder
    from segmentation.train_config import DEFAULTS

    base = tmp_path / "base.pth"
    base.write_bytes(b"the user's own base weights")
    loaded = []

    def load_sam(name, checkpoint=None, device="cpu", path_option=None):
        loaded.append(None if checkpoint is None else Path(checkpoint))
        return tiny_sam_builder()

    def train(run_config, **options):
        run_dir = Path(run_config["out"]) / run_config["name"]
        run_dir.mkdir(parents=True)
        save_decoder(
            tiny_sam_builder(),
            run_dir / "decoder.pt",
            model="vit_t",
            base_checkpoint_sha256=sha256_file(base),
        )
        return run_dir

    def score_round(base_sam, tuned, *args, **kwargs):
        raise _Started

    monkeypatch.setattr(segmentation.models, "load_sam", load_sam)
    monkeypatch.setattr(crossval, "load_sam", load_sam)
    monkeypatch.setattr(crossval, "train", train)
    monkeypatch.setattr(crossval, "score_round", score_round)
    config = {**DEFAULTS, "checkpoint": str(base)}
    with pytest.raises(_Started):
        crossval.cross_validate(tiny_dataset, 3, config, work=tmp_path / "work")
    assert loaded == [base, base], "the zero-shot and the tuned model both stand on the user's base"


def _rounds_config(tiny_dataset, tmp_path, monkeypatch, *args: str) -> dict:
    """The training config ``segmentation.evaluate --folds 3 *args`` hands its rounds."""
    from segmentation import crossval
    from segmentation.evaluate import main

    seen = {}

    def rounds(data, k, config, *, work, seed, tta, resume, finish):
        seen.update(config)
        raise _Started

    monkeypatch.setattr(crossval, "cross_validate", rounds)
    argv = ["--data", str(tiny_dataset), "--out", str(tmp_path / "out"), "--folds", "3", "--no-progress"]
    with pytest.raises(_Started):
        main([*argv, *args])
    return seen


def test_evaluate_folds_hands_its_base_checkpoint_to_the_rounds(tiny_dataset, tmp_path, monkeypatch):
    # --folds --base-checkpoint BASE tuned and scored the official weights without a word
    base = tmp_path / "base.pth"
    base.write_bytes(b"weights")
    args = ("--base-checkpoint", str(base), "--set", "epochs=1")
    config = _rounds_config(tiny_dataset, tmp_path, monkeypatch, *args)
    assert config["checkpoint"] == str(base)


def test_evaluate_folds_records_a_relative_base_checkpoint_absolute(tiny_dataset, tmp_path, monkeypatch):
    # folds.json recorded it as typed: relative to a folder nobody could tell afterwards
    (tmp_path / "base.pth").write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    config = _rounds_config(tiny_dataset, tmp_path, monkeypatch, "--base-checkpoint", "base.pth")
    assert config["checkpoint"] == str(tmp_path / "base.pth")


def _fake_rounds(monkeypatch, tiny_sam_builder) -> list[str]:
    """``cross_validate``'s training and scoring stubbed; returns the names of the rounds trained."""
    from segmentation import crossval
    from segmentation.finetuned import save_decoder

    trained = []

    def train(run_config, **options):
        run_dir = Path(run_config["out"]) / run_config["name"]
        run_dir.mkdir(parents=True, exist_ok=True)
        save_decoder(tiny_sam_builder(), run_dir / "decoder.pt", model="vit_t")
        # segmentation.train --resume is not how a round goes on; what its set-up says is said once
        assert options == {"resume_hint": False, "announce": False}
        trained.append(run_config["name"])
        return run_dir

    monkeypatch.setattr(crossval, "load_sam", lambda *args, **kwargs: tiny_sam_builder())
    monkeypatch.setattr(crossval, "train", train)
    monkeypatch.setattr(crossval, "load_round_model", lambda run_dir, config: (None, None))
    monkeypatch.setattr(crossval, "score_round", lambda *args, **kwargs: ("zero-shot", "fine-tuned"))
    return trained


def test_a_folds_run_keeps_its_marker_until_its_summary_is_written(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # the marker went with the last round, before folds.json/md/png: a second --folds run into the same
    # --out, started then, was not refused and replaced the rounds the summary was being written from
    from segmentation import crossval
    from segmentation.evaluate import main

    _fake_rounds(monkeypatch, tiny_sam_builder)
    monkeypatch.setattr(crossval, "summary", lambda results: {"folds": len(results)})
    out, markers = tmp_path / "out", []

    def write_folds(work, metrics):
        markers.extend(path.name for path in work.glob(".folds.*.tmp"))
        return "table"

    monkeypatch.setattr(crossval, "write_folds", write_folds)
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1"]) == 0
    assert len(markers) == 1, "the summary is written while the run's marker is there"
    assert list(out.glob(".folds.*.tmp")) == [], "and the marker is removed after it"


def test_resume_keeps_the_rounds_trained_with_the_same_settings(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # a --folds run stopped in round 2 of 3 lost rounds 0 and 1 (tens of minutes on real photos)
    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", dict(DEFAULTS)
    results = crossval.cross_validate(tiny_dataset, 3, config, work=work)
    assert trained == ["fold0", "fold1", "fold2"] and [r.index for r in results] == [0, 1, 2]
    assert all((work / "runs" / f"fold{i}" / crossval.ROUND_FILE).is_file() for i in range(3))
    trained.clear()
    (work / "runs" / "fold1" / crossval.ROUND_FILE).unlink()  # stopped while round 1 was training
    capsys.readouterr()
    resumed = crossval.cross_validate(tiny_dataset, 3, config, work=work, resume=True)
    assert trained == ["fold1"] and [r.index for r in resumed] == [0, 1, 2]
    assert resumed[0].seconds["train"] == results[0].seconds["train"]  # the earlier training's time
    err = capsys.readouterr().err
    assert "fold0 (1 of 3): trained by the earlier run, kept" in err and "fold1 (2 of 3): fine-tuning" in err
    trained.clear()
    for name in crossval.SUMMARY_FILES:  # as write_folds leaves them at the end of a run
        (work / name).write_text("the summary of the rounds")
    crossval.cross_validate(tiny_dataset, 3, config, work=work, resume=True)
    assert trained == [] and all((work / name).is_file() for name in crossval.SUMMARY_FILES)
    (work / "runs" / "fold2" / "decoder.pt").unlink()
    capsys.readouterr()
    crossval.cross_validate(tiny_dataset, 3, config, work=work, resume=True)
    assert trained == ["fold2"], "a record without its decoder is not a finished round"
    decoder = work / "runs" / "fold2" / "decoder.pt"
    assert f"note: fold2 (3 of 3): its {decoder} is gone: training it again" in capsys.readouterr().err
    # a round trained again: the summary of the earlier rounds goes (a resume killed here left it)
    assert not any((work / name).exists() for name in crossval.SUMMARY_FILES)
    trained.clear()
    crossval.cross_validate(tiny_dataset, 3, config, work=work, seed=1)
    assert trained == ["fold0", "fold1", "fold2"], "without resume every round trains"


def test_resume_with_other_settings_or_fold_seed_is_refused_naming_them(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # every round was trained again without a word (hours on real photos), where segmentation.train
    # --resume refuses another model or trained parts in one line
    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", dict(DEFAULTS)
    crossval.cross_validate(tiny_dataset, 3, config, work=work)
    trained.clear()
    records = sorted((path, path.read_bytes()) for path in work.rglob("*.json"))
    other = {**config, "epochs": 11, "loss": {**config["loss"], "resolution": "full"}}
    how = (
        "pass the same to go on from them, drop --resume to train every round again, or choose another --out"
    )
    with pytest.raises(UserError) as refused:
        crossval.cross_validate(tiny_dataset, 3, other, work=work, resume=True)
    assert str(refused.value) == (
        f"--resume: the rounds in {work} were trained with epochs=10 (given 11), "
        f"loss.resolution=low (given full): {how}"
    )
    with pytest.raises(UserError, match=r"were trained with --fold-seed 0 \(given 1\): pass the same"):
        crossval.cross_validate(tiny_dataset, 3, config, work=work, seed=1, resume=True)
    assert trained == [] and sorted((path, path.read_bytes()) for path in work.rglob("*.json")) == records
    quiet = {**config, "progress": False}  # --no-progress trains no other decoder
    crossval.cross_validate(tiny_dataset, 3, quiet, work=work, resume=True)
    assert trained == [] and "note:" not in capsys.readouterr().err


def test_resume_with_the_base_checkpoint_spelt_otherwise_keeps_the_rounds(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # --base-checkpoint ../base.pth from work/a is recorded .../a/../base.pth; base.pth given from tmp_path on
    # --resume names the same file and was refused as checkpoint=... (given ...), other settings
    from segmentation import crossval
    from segmentation.folds import FOLDS_PLAN
    from segmentation.train_config import DEFAULTS

    (tmp_path / "base.pth").write_bytes(b"weights")
    (tmp_path / "a").mkdir()
    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", dict(DEFAULTS)
    earlier = {**config, "checkpoint": str(tmp_path / "a" / ".." / "base.pth")}
    crossval.cross_validate(tiny_dataset, 3, earlier, work=work)
    plan = (work / FOLDS_PLAN).read_text()
    trained.clear()
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    for spelling in (str(tmp_path / "base.pth"), "base.pth", "a/../base.pth"):
        crossval.cross_validate(tiny_dataset, 3, {**config, "checkpoint": spelling}, work=work, resume=True)
    assert trained == [] and "note:" not in capsys.readouterr().err  # every round kept
    assert (work / FOLDS_PLAN).read_text() == plan  # the spelling the rounds' fingerprints hash
    (tmp_path / "other.pth").write_bytes(b"weights")
    other = {**config, "checkpoint": "other.pth"}
    with pytest.raises(UserError, match=r"were trained with checkpoint=.*base\.pth \(given other\.pth\)"):
        crossval.cross_validate(tiny_dataset, 3, other, work=work, resume=True)


def test_a_recorded_checkpoint_spelling_that_no_longer_opens_is_not_taken_for_the_given_one(tmp_path):
    # a/../base.pth recorded, a removed since: Path.resolve still gave base.pth, so the resume swapped the
    # spelling given, which opens, for one the base model's load then named missing
    from segmentation.folds import recorded_checkpoint

    (tmp_path / "base.pth").write_bytes(b"weights")
    (tmp_path / "a").mkdir()
    given = {"checkpoint": str(tmp_path / "base.pth"), "lr": 1}
    earlier = {"checkpoint": str(tmp_path / "a" / ".." / "base.pth")}
    assert recorded_checkpoint(given, earlier) == {**given, "checkpoint": earlier["checkpoint"]}
    (tmp_path / "a").rmdir()
    assert recorded_checkpoint(given, earlier) == given  # refused by check_resumable, naming both
    (tmp_path / "base.pth").unlink()  # neither opens: the earlier spelling, named missing as recorded
    assert recorded_checkpoint(given, earlier) == {**given, "checkpoint": earlier["checkpoint"]}


def test_resume_trains_again_the_rounds_whose_masks_changed(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # converted again with a defect outlined anew (same file names): the rounds trained on the old masks
    # were kept and scored against the new ones without a word
    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", dict(DEFAULTS)
    crossval.cross_validate(data, 3, config, work=work)
    trained.clear()
    path = data / "annotations" / "instances_test.json"
    coco = json.loads(path.read_text())
    coco["annotations"][0]["area"] += 1  # another outline, its mask as it was: the smallest change
    path.write_text(json.dumps(coco))
    image = next(im for im in coco["images"] if im["id"] == coco["annotations"][0]["image_id"])
    key, folds = f"test/{image['file_name']}", deal_folds(data, 3)[2]
    changed = [f"fold{fold.index}" for fold in folds if key in fold.train or key in fold.val]
    capsys.readouterr()
    crossval.cross_validate(data, 3, config, work=work, resume=True)
    assert trained == changed and len(changed) == 2  # the round testing on it trained without it
    err = capsys.readouterr().err  # it trained them again without a word of why
    for name in changed:
        index = int(name.removeprefix("fold"))
        assert (
            f"note: {name} ({index + 1} of 3): its train or val annotations changed since the earlier run "
            "trained it: training it again"
        ) in err


def test_resume_keeps_a_round_recorded_before_round_json_named_its_parts(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # round.json held one fingerprint of the whole config, --no-progress too: such a round is kept as it was,
    # whatever its --no-progress (the round recorded with another one was trained again)
    from segmentation import crossval
    from segmentation.folds import FOLDS_PLAN
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", dict(DEFAULTS)
    crossval.cross_validate(tiny_dataset, 3, config, work=work)
    folds = deal_folds(tiny_dataset, 3)[2]
    for fold, progress in zip(folds[:2], (True, False), strict=True):
        run_config = {
            **config,
            "progress": progress,
            "data": str(work / f"fold{fold.index}"),
            "out": str(work / "runs"),
            "name": f"fold{fold.index}",
            "exist_ok": True,
        }
        inputs = crossval.round_inputs(run_config, fold)
        record = {"fingerprint": crossval.earlier_fingerprint(run_config, inputs), "train_seconds": 5.0}
        (work / "runs" / f"fold{fold.index}" / crossval.ROUND_FILE).write_text(json.dumps(record))
    (work / FOLDS_PLAN).write_text(json.dumps({"folds": 3, "fold_seed": 0}))  # no settings recorded
    trained.clear()
    capsys.readouterr()
    crossval.cross_validate(tiny_dataset, 3, config, work=work, resume=True)
    assert trained == [], "all kept, fold1 recorded with another progress than given too"
    err = capsys.readouterr().err
    assert "fold0 (1 of 3): trained by the earlier run, kept" in err
    assert "fold1 (2 of 3): trained by the earlier run, kept" in err  # recorded with another progress
    record = {"fingerprint": "0" * 64, "train_seconds": 5.0}  # other settings or data, of that version
    (work / "runs" / "fold1" / crossval.ROUND_FILE).write_text(json.dumps(record))
    trained.clear()
    crossval.cross_validate(tiny_dataset, 3, config, work=work, resume=True)
    assert trained == ["fold1"]
    assert (
        "note: fold1 (2 of 3): its round.json, of an earlier version, is of other settings or data and "
        "does not say which: training it again"
    ) in capsys.readouterr().err


def test_resume_on_another_device_keeps_the_rounds(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # a run stopped on the CPU and resumed on a GPU (or auto) was refused, device=cpu (given cuda), where
    # segmentation.train --resume device=cuda goes on: the device trains no other decoder
    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", {**DEFAULTS, "device": "cpu"}
    crossval.cross_validate(tiny_dataset, 3, config, work=work)
    trained.clear()
    capsys.readouterr()
    for device in ("cuda", "auto"):
        crossval.cross_validate(tiny_dataset, 3, {**config, "device": device}, work=work, resume=True)
    assert trained == [] and "note:" not in capsys.readouterr().err


def test_resume_keeps_the_rounds_recorded_while_the_device_was_a_setting(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # folds_plan.json and each round.json recorded the device among the training settings until
    # 2026-12-07: such a run goes on on another device, its rounds kept, a round of other data says which
    from segmentation import crossval
    from segmentation.folds import write_plan
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", {**DEFAULTS, "device": "cpu"}
    crossval.cross_validate(tiny_dataset, 3, config, work=work)
    settings = {**crossval.training_settings(config), "device": "cpu"}
    for fold in deal_folds(tiny_dataset, 3)[2]:
        run_config = {
            **config,
            "data": str(work / f"fold{fold.index}"),
            "out": str(work / "runs"),
            "name": f"fold{fold.index}",
            "exist_ok": True,
        }
        parts = crossval.round_parts({**crossval.round_inputs(run_config, fold), "settings": settings})
        if fold.index == 1:
            parts["splits"] = "0" * 64  # dealt otherwise
        record = {"fingerprint": crossval.round_fingerprint(parts), "parts": parts, "train_seconds": 5.0}
        (work / "runs" / f"fold{fold.index}" / crossval.ROUND_FILE).write_text(json.dumps(record))
    write_plan(work, 3, 0, settings)
    trained.clear()
    capsys.readouterr()
    crossval.cross_validate(tiny_dataset, 3, {**config, "device": "cuda"}, work=work, resume=True)
    assert trained == ["fold1"]
    err = capsys.readouterr().err
    assert "fold0 (1 of 3): trained by the earlier run, kept" in err
    assert (
        "note: fold1 (2 of 3): its train/val/test images changed since the earlier run trained it: "
        "training it again"
    ) in err


def test_a_folds_resume_into_an_out_that_cannot_be_searched_is_not_told_to_start_over_on_python_3_13(
    tiny_dataset, tmp_path, capsys, unsearchable
):
    # Path.is_dir is False there from Python 3.13: '--resume: no earlier --folds run in out to go on from
    # (drop --resume to start)', and the rounds the earlier run trained would have been trained again
    from segmentation.evaluate import main

    out = tmp_path / "locked" / "out"
    unsearchable(out.parent)
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress", "--resume"]
    assert main(argv) != 0
    assert capsys.readouterr().err == f"error: Permission denied: {out}\n"


def test_evaluate_folds_resume_goes_on_in_the_earlier_runs_out(tiny_dataset, tmp_path, monkeypatch, capsys):
    from segmentation import crossval
    from segmentation.evaluate import main

    out = tmp_path / "out"
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress", "--resume"]
    assert main(argv) == 2
    assert f"error: --resume: no earlier --folds run in {out} to go on from" in capsys.readouterr().err
    assert main([a for a in argv if a != "--folds" and a != "3"]) == 2
    err = capsys.readouterr().err
    assert "--resume goes on from a stopped --folds run: it applies only with --folds K" in err
    _earlier_folds_run(out)
    for name in ("folds.json", "folds.md", "folds.png"):  # killed: no summary yet
        (out / name).unlink()
    seen = {}

    def rounds(data, k, config, *, work, seed, tta, resume, finish):
        seen["resume"], seen["left"] = resume, sorted(path.name for path in work.iterdir())
        raise KeyboardInterrupt

    monkeypatch.setattr(crossval, "cross_validate", rounds)
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1"]) == 130
    assert seen == {"resume": True, "left": ["fold0", "fold1", "fold2", "runs"]}, "nothing removed"
    err = capsys.readouterr().err
    # stopped outside a round's training: no round to train again (test_a_ctrl_c_names_a_round_...)
    assert "stopped; go on from the rounds it trained with the same command and --resume\n" in err
    assert "replacing" not in err


@pytest.mark.parametrize("where", ["training", "scoring"])
def test_a_ctrl_c_names_a_round_trained_again_only_when_it_stopped_a_training(
    where, tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # every Ctrl-C said "(the round it stopped in trains again from epoch 0)", also one while a round
    # was scored, whose training --resume keeps
    from segmentation import crossval
    from segmentation.evaluate import main

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(crossval, "train" if where == "training" else "score_round", stop)
    out = tmp_path / "out"
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1"]) == 130
    line = "stopped; go on from the rounds it trained with the same command and --resume"
    again = " (the round it stopped in trains again from epoch 0)"
    assert f"{line}{again if where == 'training' else ''}\n" in capsys.readouterr().err
    assert trained == ([] if where == "training" else ["fold0"])


def test_evaluate_folds_model_flag_wins_over_set(tiny_dataset, tmp_path, monkeypatch):
    # --set carries any training key; --model, as this command's own flag, is applied after it
    config = _rounds_config(tiny_dataset, tmp_path, monkeypatch, "--model", "vit_b", "--set", "model=vit_t")
    assert config["model"] == "vit_b"


def test_resume_with_another_k_is_refused_and_leaves_the_earlier_run_whole(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # --folds 4 then --folds 3 --resume trained every round again (another K deals other keys) and
    # left fold3 and runs/fold3 beside a folds.json of 3 rounds
    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", dict(DEFAULTS)
    crossval.cross_validate(tiny_dataset, 4, config, work=work)
    plan = json.loads((work / "folds_plan.json").read_text())
    assert (plan["folds"], plan["fold_seed"]) == (4, 0)
    before = sorted(str(path.relative_to(work)) for path in work.rglob("*"))
    trained.clear()
    for k in (3, 5):
        with pytest.raises(
            UserError, match=f"^--resume: {work} holds a run of --folds 4, not {k}: pass --folds 4"
        ):
            crossval.cross_validate(tiny_dataset, k, config, work=work, resume=True)
    assert trained == [] and sorted(str(path.relative_to(work)) for path in work.rglob("*")) == before
    crossval.cross_validate(tiny_dataset, 4, config, work=work, resume=True)
    assert trained == [], "the same K goes on: every round kept"


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ({"folds": 5, "fold_seed": 0}, "error: --resume: {out} holds a run of --folds 5, not 3: pass --folds "
         "5 to go on from it, drop --resume to replace it, or choose another --out\n"),
        (None, "error: --resume: {out} holds fold3, fold4, rounds of a run of more than --folds 3: pass its "
         "--folds to go on from it, drop --resume to replace it, or choose another --out\n"),
    ],
    ids=["its plan says", "a run from before the plan"],
)  # fmt: skip
def test_evaluate_folds_resume_with_another_k_is_one_line_and_removes_nothing(
    tiny_dataset, tmp_path, monkeypatch, capsys, plan, expected
):
    from segmentation import crossval
    from segmentation.evaluate import main

    out = tmp_path / "out"
    _earlier_folds_run(out)  # fold0..2 and their runs
    for index in (3, 4):
        (out / f"fold{index}" / "annotations").mkdir(parents=True)
        (out / "runs" / f"fold{index}").mkdir(parents=True)
    if plan is not None:
        (out / "folds_plan.json").write_text(json.dumps(plan))
    before = sorted(out.rglob("*"))
    monkeypatch.setattr(crossval, "cross_validate", lambda *args, **kwargs: pytest.fail("rounds started"))
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress", "--resume"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert capsys.readouterr().err == expected.format(out=out)
    assert sorted(out.rglob("*")) == before


def test_a_folds_run_of_a_k_the_data_cannot_be_dealt_keeps_the_earlier_run(tiny_dataset, tmp_path, capsys):
    # --folds 50 into an earlier run's --out removed that run, then said the data has 20 defect images
    from segmentation.evaluate import main

    out = tmp_path / "out"
    _earlier_folds_run(out)
    before = sorted(out.rglob("*"))
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "50", "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert capsys.readouterr().err == "error: --folds 50 is more folds than the 20 defect images\n"
    assert sorted(out.rglob("*")) == before and (out / "runs" / "fold0" / "decoder.pt").read_bytes() == b"old"


def test_a_folds_out_holding_only_the_plan_of_a_run_killed_at_once_is_an_earlier_run(tmp_path):
    from segmentation.folds import is_folds_run, write_plan

    write_plan(tmp_path, 3, 0)
    assert is_folds_run(tmp_path)


def test_a_folds_run_whose_base_weights_do_not_load_keeps_the_earlier_run(
    tiny_dataset, tmp_path, monkeypatch, capsys
):
    # the earlier run was removed before the base SAM loaded: a bad --base-checkpoint cost a finished run
    from common.errors import UserError
    from segmentation import crossval
    from segmentation.evaluate import main

    def load_sam(*args, **kwargs):
        raise UserError("checkpoint=PATH base.pth: not a SAM checkpoint")

    out = tmp_path / "out"
    _earlier_folds_run(out)
    before = sorted(out.rglob("*"))
    monkeypatch.setattr(crossval, "load_sam", load_sam)
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert capsys.readouterr().err == "error: checkpoint=PATH base.pth: not a SAM checkpoint\n"
    assert sorted(out.rglob("*")) == before and (out / "runs" / "fold0" / "decoder.pt").read_bytes() == b"old"


def test_a_round_stopped_while_trained_again_is_not_kept_by_a_resume_with_the_first_settings(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # --resume with other settings trains round 0 again and is stopped in it: its decoder.pt is the
    # stopped training's, so its record of the first settings must go with it, or going back to them
    # would keep that decoder as their finished round (other settings are refused where the plan records
    # the settings: here a plan from before it did)
    from segmentation import crossval
    from segmentation.folds import FOLDS_PLAN
    from segmentation.train_config import DEFAULTS

    def plan_without_settings():
        (work / FOLDS_PLAN).write_text(json.dumps({"folds": 3, "fold_seed": 0}))

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", dict(DEFAULTS)
    crossval.cross_validate(tiny_dataset, 3, config, work=work)
    train = crossval.train

    def stopped(run_config, **options):  # the decoder is written, the round's record is not
        train(run_config, **options)
        raise KeyboardInterrupt

    monkeypatch.setattr(crossval, "train", stopped)
    plan_without_settings()
    with pytest.raises(KeyboardInterrupt):
        crossval.cross_validate(
            tiny_dataset, 3, {**config, "epochs": config["epochs"] + 1}, work=work, resume=True
        )
    monkeypatch.setattr(crossval, "train", train)
    trained.clear()
    plan_without_settings()
    crossval.cross_validate(tiny_dataset, 3, config, work=work, resume=True)
    assert trained == ["fold0"], "the round stopped in is trained again; the others are kept"


def test_resume_says_the_round_stopped_in_trains_again_from_epoch_0(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # a round stopped mid-training (its last.pt written, no round.json) trained again from epoch 0 under
    # --resume with only "fine-tuning on ..." said: it read as if the round went on from its last epoch
    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    work, config = tmp_path / "work", dict(DEFAULTS)
    crossval.cross_validate(tiny_dataset, 3, config, work=work)
    (work / "runs" / "fold1" / crossval.ROUND_FILE).unlink()  # stopped in round 1, after an epoch
    (work / "runs" / "fold1" / "last.pt").write_bytes(b"an epoch's state")
    (work / "runs" / "fold2" / crossval.ROUND_FILE).unlink()  # stopped before round 2 trained an epoch
    trained.clear()
    capsys.readouterr()
    crossval.cross_validate(tiny_dataset, 3, config, work=work, resume=True)
    assert trained == ["fold1", "fold2"]
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: fold1 (2 of 3): the earlier run stopped in its training, which --resume does not go on from: "
        "training it again from epoch 0"
    ]


@pytest.mark.parametrize("other", ["notes.txt", "fold0-old"])
def test_clear_folds_run_leaves_a_folder_holding_anything_else_alone(tmp_path, capsys, other):
    # cross_validate without resume clears its work folder; the command refuses such an --out first,
    # the library function must not remove the user's files either
    from segmentation.folds import clear_folds_run

    out = tmp_path / "out"
    _earlier_folds_run(out)
    (out / other).write_text("mine")
    before = sorted(out.rglob("*"))
    clear_folds_run(out)
    assert sorted(out.rglob("*")) == before and capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "plan",
    ['{"folds": 5', "{}", "[5]", "5", '{"folds": "3"}', '{"folds": true}', '{"folds": 3.0}'],
    ids=["cut short", "no K", "a list", "a number", "K a string", "K a bool", "K a float"],
)
def test_an_unreadable_plan_is_as_none_and_the_extra_rounds_decide(tmp_path, plan):
    # a plan cut short or edited by hand was a traceback (KeyError, TypeError) instead of a one-line refusal
    from segmentation.folds import FOLDS_PLAN, check_resumable

    out = tmp_path / "out"
    _earlier_folds_run(out)
    (out / FOLDS_PLAN).write_text(plan)
    check_resumable(out, 3)  # fold0..2: nothing to refuse
    (out / "fold3" / "annotations").mkdir(parents=True)
    with pytest.raises(
        UserError, match=f"^--resume: {out} holds fold3, rounds of a run of more than --folds 3"
    ):
        check_resumable(out, 3)


def test_evaluate_folds_resume_in_an_out_of_other_files_says_there_is_no_run_to_go_on_from(
    tiny_dataset, tmp_path, capsys
):
    from segmentation.evaluate import main

    out = tmp_path / "out"
    (out / "runs" / "mine").mkdir(parents=True)  # someone's runs: not a --folds run
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress", "--resume"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert capsys.readouterr().err == (
        f"error: --resume: no earlier --folds run in {out} to go on from (drop --resume to start)\n"
    )
    assert sorted(path.name for path in out.rglob("*")) == ["mine", "runs"]


def test_resume_into_a_work_folder_not_made_yet_trains_every_round(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # nothing to go on from: cross_validate(resume=True) trains the rounds as without it, no traceback
    from segmentation import crossval
    from segmentation.train_config import DEFAULTS

    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    crossval.cross_validate(tiny_dataset, 3, dict(DEFAULTS), work=tmp_path / "work", resume=True)
    assert trained == ["fold0", "fold1", "fold2"]


def test_the_extra_rounds_of_a_run_from_before_the_plan_are_named_in_round_order(tmp_path):
    # not in the order the folder lists them, nor as strings sort (fold12 before fold3)
    from segmentation.folds import check_resumable

    for index in (4, 12, 3, 0):
        (tmp_path / f"fold{index}" / "annotations").mkdir(parents=True)
    with pytest.raises(
        UserError, match=f"^--resume: {tmp_path} holds fold3, fold4, fold12, rounds of a run "
    ):
        check_resumable(tmp_path, 3)


def test_the_fold_seed_reaches_the_rounds_and_is_recorded_in_the_plan(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # the seed the folds were dealt with: in the plan, and in folds.json (which had K but not the seed)
    from segmentation import crossval
    from segmentation.evaluate import main
    from segmentation.train_config import DEFAULTS

    seen = {}

    def rounds(data, k, config, *, work, seed, tta, resume, finish):
        seen["seed"] = seed
        raise _Started

    monkeypatch.setattr(crossval, "cross_validate", rounds)
    argv = ["--data", str(tiny_dataset), "--out", str(tmp_path / "out"), "--folds", "3", "--fold-seed", "7"]
    with pytest.raises(_Started):
        main([*argv, "--no-progress", "--cache-dir", str(tmp_path / "cache")])
    assert seen == {"seed": 7}
    written = {}
    monkeypatch.setattr(crossval, "cross_validate", lambda *args, finish, **kwargs: finish([]) or [])
    monkeypatch.setattr(crossval, "summary", lambda results: {"folds": 3})
    monkeypatch.setattr(crossval, "write_folds", lambda out, metrics: written.update(metrics) or "table")
    main([*argv, "--no-progress", "--cache-dir", str(tmp_path / "cache")])
    assert written["fold_seed"] == 7 and written["folds"] == 3
    monkeypatch.undo()
    _fake_rounds(monkeypatch, tiny_sam_builder)
    crossval.cross_validate(tiny_dataset, 3, dict(DEFAULTS), work=tmp_path / "work", seed=7)
    plan = json.loads((tmp_path / "work" / "folds_plan.json").read_text())
    assert (plan["folds"], plan["fold_seed"], plan["settings"]["epochs"]) == (3, 7, DEFAULTS["epochs"])


def test_a_plan_of_the_same_k_is_gone_on_from_whatever_other_fold_folders_lie_there(tmp_path):
    # the plan names the K; only a run from before it is judged by its fold<i> folders
    from segmentation.folds import FOLDS_PLAN, check_resumable, write_plan

    write_plan(tmp_path, 3, 0)
    for index in range(4):
        (tmp_path / f"fold{index}" / "annotations").mkdir(parents=True)
    check_resumable(tmp_path, 3)
    assert json.loads((tmp_path / FOLDS_PLAN).read_text()) == {"folds": 3, "fold_seed": 0}


def test_round_folders_are_the_fold_folders_named_by_index_alone(tmp_path):
    from segmentation.folds import round_folders

    for name in ("fold0", "fold12", "fold3_old", "fold", "runs"):
        (tmp_path / name).mkdir()
    (tmp_path / "fold4").write_text("a file, not a round")
    assert round_folders(tmp_path) == {0: tmp_path / "fold0", 12: tmp_path / "fold12"}
    assert round_folders(tmp_path / "nowhere") == {}


# a comment, an octal number, a base-60 one, a quote, YAML's null
@pytest.mark.parametrize("folder", ["x #7", "010", "12:30", "it's", "null"])
def test_folds_hands_the_rounds_its_flags_paths_as_typed(tmp_path, folder) -> None:
    # the flags became overrides read as YAML: --data 'x #7' was refused as the override data=x #7 (a
    # comment), a folder named 010 as an octal number; one named null was no folder: the default cache
    from segmentation.evaluate import _folds_overrides, build_parser
    from segmentation.train_config import load_train_config

    base = tmp_path / folder / "base.pth"
    argv = ["--data", folder, "--folds", "3", "--base-checkpoint", str(base), "--cache-dir", folder]
    overrides, flags = _folds_overrides(build_parser().parse_args([*argv, "--model", "vit_t"]))
    config = load_train_config(None, overrides, flags=flags)
    assert (config["data"], config["checkpoint"], config["cache_dir"]) == (folder, str(base), folder)
    assert config["model"] == "vit_t"
    assert sorted(flags.values())[:2] == [f"--base-checkpoint {base}", f"--cache-dir {folder}"]


def _files(folder: Path) -> dict[str, bytes | str]:
    """What ``folder`` holds: each file's bytes, each link's target, by path inside it."""
    return {
        str(path.relative_to(folder)): str(path.readlink()) if path.is_symlink() else path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_symlink() or path.is_file()
    }


@pytest.mark.parametrize("stop", ["ctrl-c", "full disk", "refused"])
def test_a_folds_run_stopped_before_its_first_rounds_training_is_recorded_puts_the_earlier_run_back(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys, stop
):
    # the earlier run's rounds were deleted as the re-run started: a Ctrl-C in round 0, a full disk or a
    # setting refused by round 0's training had lost every trained round of the earlier run
    from common.errors import UserError
    from segmentation import crossval
    from segmentation.evaluate import main

    out = tmp_path / "out"
    _earlier_folds_run(out)
    before = _files(out)
    _fake_rounds(monkeypatch, tiny_sam_builder)
    seen = {}

    def train(run_config, **options):
        seen["aside"] = [path.name for path in tmp_path.glob(".out.earlier.*")]
        (Path(run_config["out"]) / run_config["name"]).mkdir(parents=True)
        (Path(run_config["out"]) / run_config["name"] / "args.yaml").write_text("this run's")
        if stop == "ctrl-c":
            raise KeyboardInterrupt
        if stop == "full disk":
            raise OSError(28, "No space left on device", "last.pt")
        raise UserError("config key 'lr' is refused")

    monkeypatch.setattr(crossval, "train", train)
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1"])
    assert code == {"ctrl-c": 130, "full disk": 1, "refused": 2}[stop]
    assert len(seen["aside"]) == 1  # it waited beside out while round 0 trained
    assert _files(out) == before
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # nothing hidden left
    err = capsys.readouterr().err
    aside = tmp_path / seen["aside"][0]
    assert (
        f"note: replacing the earlier --folds run in {out}: it is kept in {aside} until this run's first "
        "round's training is recorded, and put back if this run stops before\n" in err
    )
    assert (
        f"note: this run stopped before its first round's training was recorded: {out} holds the earlier "
        "--folds run again\n" in err
    )
    assert "stopped; go on from the rounds" not in err  # none of this run's rounds are left to go on from


def test_the_earlier_folds_run_is_deleted_once_the_first_round_has_finished(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # a stop in round 1 leaves this run's round 0 for --resume, not the earlier run's rounds
    from segmentation import crossval
    from segmentation.evaluate import main

    out = tmp_path / "out"
    _earlier_folds_run(out)
    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    fake_train = crossval.train

    def train(run_config, **options):
        if run_config["name"] == "fold1":
            assert not list(tmp_path.glob(".out.earlier.*"))  # gone at round 0's end
            raise KeyboardInterrupt
        return fake_train(run_config, **options)

    monkeypatch.setattr(crossval, "train", train)
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1"]) == 130
    assert trained == ["fold0"]
    assert (out / "runs" / "fold0" / "decoder.pt").read_bytes() != b"old"
    assert not (out / "folds.json").exists() and not (out / "runs" / "fold2").exists()
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    err = capsys.readouterr().err
    assert "holds the earlier --folds run again" not in err
    assert "stopped; go on from the rounds it trained with the same command and --resume" in err


def test_a_folds_run_whose_earlier_run_cannot_be_moved_aside_replaces_it_as_before(
    tmp_path, monkeypatch, capsys
):
    # a parent folder this user cannot write: the earlier run is removed, with the note of before
    from segmentation import folds

    out = tmp_path / "out"
    _earlier_folds_run(out)

    def refused(source, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(folds.os, "replace", refused)
    earlier = []
    folds.set_folds_run_aside(out, earlier)
    assert earlier == []
    assert list(out.iterdir()) == []
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert capsys.readouterr().err == f"note: replacing the earlier --folds run in {out}\n"


def test_a_ctrl_c_while_an_earlier_run_that_cannot_be_moved_aside_is_deleted_stops_it_and_says_no_resume(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # its delete was held with the moves: a Ctrl-C on seeing 'replacing the earlier --folds run' waited
    # until the whole earlier run was gone, and the Ctrl-C line then told to --resume a run that had
    # trained nothing (its plan deleted)
    import errno
    import signal

    out = tmp_path / "out"
    _earlier_folds_run(out)
    _fake_rounds(monkeypatch, tiny_sam_builder)

    def other_disk():
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    _on_moves(monkeypatch, _nth_move(out, False, 1, other_disk))
    real, deletes = shutil.rmtree, []

    def rmtree(path, *args, **kwargs):
        if Path(path).parent == out:
            deletes.append(Path(path).name)
            if len(deletes) == 1:
                signal.raise_signal(signal.SIGINT)  # the user's Ctrl-C during the first delete
        return real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    assert _run_folds(tiny_dataset, out, tmp_path) == 130
    assert len(deletes) == 1  # stopped at once, not after the whole earlier run
    err = capsys.readouterr().err
    assert f"note: replacing the earlier --folds run in {out}\n" in err
    assert "--resume" not in err


def test_a_ctrl_c_while_round_0_is_scored_keeps_its_recorded_training_for_resume(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # the earlier run was dropped only once round 0 was scored: a Ctrl-C while it was scored put the
    # earlier run back over round 0's recorded training (hours of it), with no --resume line
    from segmentation import crossval

    out = tmp_path / "out"
    _earlier_folds_run(out)
    trained = _fake_rounds(monkeypatch, tiny_sam_builder)

    def score_round(*args, **kwargs):
        assert not list(tmp_path.glob(".out.earlier.*"))  # gone once its training was recorded
        raise KeyboardInterrupt

    monkeypatch.setattr(crossval, "score_round", score_round)
    assert _run_folds(tiny_dataset, out, tmp_path) == 130
    assert trained == ["fold0"]
    assert (out / "runs" / "fold0" / "decoder.pt").read_bytes() != b"old"
    assert (out / "runs" / "fold0" / crossval.ROUND_FILE).is_file()  # --resume keeps it
    assert not (out / "runs" / "fold1").exists() and not (out / "folds.json").exists()
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    err = capsys.readouterr().err
    assert "holds the earlier --folds run again" not in err
    assert "stopped; go on from the rounds it trained with the same command and --resume\n" in err


def test_an_earlier_run_a_killed_folds_run_set_aside_is_shown_by_the_next_run(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # a run killed before its first round's training was recorded left the earlier run hidden beside --out,
    # where no later run looked
    from common.io import temporary_path
    from segmentation import crossval
    from segmentation.evaluate import main

    out = tmp_path / "out"
    ours = temporary_path(tmp_path / "out.earlier").with_suffix("")
    _earlier_folds_run(_dead_token(ours))
    live = ours  # this process's name: a live run's
    live.mkdir()
    _earlier_folds_run(out)  # what the killed run left in out: its plan and first round
    _fake_rounds(monkeypatch, tiny_sam_builder)
    monkeypatch.setattr(crossval, "score_round", _stop)
    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1"]) == 130
    (shown,) = tmp_path.glob("out.earlier-*")
    assert re.fullmatch(r"out\.earlier-\d{8}-\d{6}", shown.name)
    assert (shown / "runs" / "fold0" / "decoder.pt").read_bytes() == b"old"
    assert live.is_dir()  # a live process's is left alone
    err = capsys.readouterr().err
    assert (
        f"note: {shown} holds an earlier --folds run of {out}: a run killed before its first round's "
        "training was recorded left it there\n" in err
    )


def test_an_earlier_run_a_failed_deletion_left_hidden_is_not_said_to_be_a_killed_runs(
    tmp_path, monkeypatch, capsys
):
    # the next run said "a run killed before its first round's training was recorded left it there" of a
    # hidden folder that a run which had recorded its first round's training could not delete
    import os

    from segmentation import folds

    out, hidden = _dead_runs_hidden_folder(tmp_path)
    real = refuse_rename(monkeypatch, hidden)
    folds.drop_earlier_folds_run([hidden])  # that run's first round's training recorded: it went on
    monkeypatch.setattr(Path, "rename", real)
    assert f"could not be deleted (Permission denied: {hidden}): delete {hidden} by hand" in (
        capsys.readouterr().err
    )
    (shown,) = folds.show_killed_asides(out)  # the next run
    assert capsys.readouterr().err == (
        f"note: {shown} holds an earlier --folds run of {out}: a run that recorded its first round's "
        "training could not delete it and left it there\n"
    )
    assert not os.path.lexists(shown / folds.FOLDS_DROPPED)
    assert (shown / "runs" / "fold0" / "decoder.pt").read_bytes() == b"old"


def _stop(*args, **kwargs):
    raise KeyboardInterrupt


def test_a_killed_runs_hidden_folder_beside_an_out_named_with_brackets_is_shown(tmp_path, capsys):
    # the name was read as a glob pattern: --out 'nut[1]' looked for .nut1.earlier.*
    from common.io import temporary_path
    from segmentation.folds import show_killed_asides

    out = tmp_path / "nut[1]"
    _earlier_folds_run(_dead_token(temporary_path(tmp_path / "nut[1].earlier").with_suffix("")))
    (shown,) = show_killed_asides(out)
    assert shown.name.startswith("nut[1].earlier-") and (shown / "runs" / "fold0" / "decoder.pt").is_file()
    assert f"note: {shown} holds an earlier --folds run of {out}" in capsys.readouterr().err


def _run_folds(tiny_dataset, out: Path, tmp_path: Path, *more: str) -> int:
    from segmentation.evaluate import main

    argv = ["--data", str(tiny_dataset), "--out", str(out), "--folds", "3", "--no-progress", *more]
    return main([*argv, "--cache-dir", str(tmp_path / "cache"), "--set", "epochs=1"])


def _summary_stubbed(monkeypatch) -> None:
    """The summary of :func:`_fake_rounds`' rounds stubbed: a run of them ends."""
    from segmentation import crossval

    monkeypatch.setattr(crossval, "summary", lambda results: {"folds": len(results)})
    monkeypatch.setattr(crossval, "write_folds", lambda work, metrics: "table")


def _dead_token(path: Path) -> Path:
    """``path`` (named by this process, :func:`common.io.temporary_path`) named by a process that is gone."""
    import os
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return path.with_name(path.name.replace(f"-{os.getpid()}-", f"-{process.pid}-"))


def _dead_runs_hidden_folder(tmp_path: Path) -> tuple[Path, Path]:
    """``tmp_path / "out"`` (made, empty) and an earlier --folds run hidden beside it by a run that ended."""
    from common.io import temporary_path

    out = tmp_path / "out"
    out.mkdir()
    hidden = _dead_token(temporary_path(tmp_path / "out.earlier").with_suffix(""))  # its run ended
    _earlier_folds_run(hidden)
    return out, hidden


def test_an_earlier_run_of_an_out_with_a_long_name_is_deleted_after_round_0_and_the_run_goes_on(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # its temporary, ..<out>.earlier.<token>.<token>.tmp, was too long a name (ENAMETOOLONG) for an --out
    # named with 200 characters: the run stopped after round 0 had trained
    out = tmp_path / ("n" * 200)
    _earlier_folds_run(out)
    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    _summary_stubbed(monkeypatch)
    assert _run_folds(tiny_dataset, out, tmp_path) == 0
    assert trained == ["fold0", "fold1", "fold2"]
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert "could not be deleted" not in capsys.readouterr().err


def test_an_earlier_run_that_cannot_be_deleted_after_round_0_is_named_and_the_run_goes_on(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # a file of it this user cannot delete (another user's, in a shared folder): the run stopped there
    out = tmp_path / "out"
    _earlier_folds_run(out)
    trained = _fake_rounds(monkeypatch, tiny_sam_builder)
    real = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if ".earlier." in str(path):
            raise PermissionError(13, "Permission denied", str(Path(path) / "runs"))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    _summary_stubbed(monkeypatch)
    assert _run_folds(tiny_dataset, out, tmp_path) == 0
    assert trained == ["fold0", "fold1", "fold2"]
    (left,) = tmp_path.glob(".out.earlier.*.tmp")
    assert (
        f"note: the earlier --folds run this run replaces could not be deleted (Permission denied: "
        f"{left / 'runs'}): delete {left} by hand\n" in capsys.readouterr().err
    )


def _stopped_in_round_0(monkeypatch) -> None:
    from segmentation import crossval

    def train(run_config, **options):
        (Path(run_config["out"]) / run_config["name"]).mkdir(parents=True)
        raise KeyboardInterrupt  # the first Ctrl-C, in round 0

    monkeypatch.setattr(crossval, "train", train)


def _on_moves(monkeypatch, act) -> None:
    """``os.replace`` calling ``act(source, target)`` before each move of an earlier run's file, to or from
    its hidden folder."""
    import os

    real = os.replace

    def replace(source, target, *args, **kwargs):
        if ".earlier." in str(source) + str(target):
            act(Path(source), Path(target))
        return real(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def _nth_move(out: Path, back: bool, n: int, action) -> object:
    """An ``act`` for :func:`_on_moves`: ``action()`` before the ``n``-th move (``back``: into ``out``)."""
    moves = []

    def act(source: Path, target: Path) -> None:
        if (target.parent == out) == back:
            moves.append(source)
            if len(moves) == n:
                action()

    return act


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_second_stop_while_the_earlier_run_is_put_back_waits_until_it_is_whole(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys, signum
):
    # a second Ctrl-C (or a kill) amid the moves left part of the earlier run in out and the rest hidden,
    # with no note of where, and the Ctrl-C line told to --resume a run that had trained nothing
    import signal

    out = tmp_path / "out"
    _earlier_folds_run(out)
    before = _files(out)
    _fake_rounds(monkeypatch, tiny_sam_builder)
    _stopped_in_round_0(monkeypatch)
    _on_moves(monkeypatch, _nth_move(out, True, 3, lambda: signal.raise_signal(getattr(signal, signum))))
    assert _run_folds(tiny_dataset, out, tmp_path) == {"SIGINT": 130, "SIGTERM": 143}[signum]
    assert _files(out) == before
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    err = capsys.readouterr().err
    assert (
        f"note: this run stopped before its first round's training was recorded: {out} holds the earlier "
        "--folds run again"
    ) in err
    assert "--resume" not in err


def test_a_second_ctrl_c_while_a_stopped_set_aside_moves_the_earlier_run_back_waits_until_it_is_whole(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    import signal

    out = tmp_path / "out"
    _earlier_folds_run(out)
    before = _files(out)
    _fake_rounds(monkeypatch, tiny_sam_builder)
    stop = lambda: signal.raise_signal(signal.SIGINT)  # noqa: E731
    aside, back = _nth_move(out, False, 2, stop), _nth_move(out, True, 1, stop)  # amid the moves, then back
    _on_moves(monkeypatch, lambda source, target: (aside(source, target), back(source, target)))
    assert _run_folds(tiny_dataset, out, tmp_path) == 130
    assert _files(out) == before
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert "--resume" not in capsys.readouterr().err


def test_a_put_back_failing_partway_says_which_parts_are_where_and_no_resume(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # it said the whole earlier run was in the hidden folder, part of it back in out, with the errno shown
    # raw, and the Ctrl-C line told to --resume a run that had trained nothing
    out = tmp_path / "out"
    _earlier_folds_run(out)
    _fake_rounds(monkeypatch, tiny_sam_builder)
    _stopped_in_round_0(monkeypatch)

    def refused():
        raise PermissionError(1, "Operation not permitted", "fold2")

    _on_moves(monkeypatch, _nth_move(out, True, 3, refused))
    assert _run_folds(tiny_dataset, out, tmp_path) == 130
    (aside,) = tmp_path.glob(".out.earlier.*")
    assert sorted(path.name for path in out.iterdir() if not path.name.startswith(".")) == ["fold0", "fold1"]
    err = capsys.readouterr().err
    assert (
        "note: this run stopped before its first round's training was recorded; the earlier --folds run "
        f"could not be put back whole into {out} (Operation not permitted: fold2): its fold0, fold1 are back "
        f"there, its fold2, folds.json, folds.md, folds.png, runs still in {aside}; move those into {out} by "
        "hand\n"
    ) in err
    assert "--resume" not in err


def test_a_ctrl_c_between_the_set_aside_and_its_record_puts_the_earlier_run_back(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # set_folds_run_aside had returned the hidden folder, the caller had not recorded it: never put back
    from segmentation import crossval

    out = tmp_path / "out"
    _earlier_folds_run(out)
    before = _files(out)
    _fake_rounds(monkeypatch, tiny_sam_builder)
    real = crossval.set_folds_run_aside

    def set_aside(*args):
        real(*args)
        raise KeyboardInterrupt  # where the caller records it

    monkeypatch.setattr(crossval, "set_folds_run_aside", set_aside)
    assert _run_folds(tiny_dataset, out, tmp_path) == 130
    assert _files(out) == before
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert "--resume" not in capsys.readouterr().err


def test_what_a_run_killed_while_deleting_the_earlier_run_left_is_removed_by_the_next(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # a kill while round 0's end deleted it left its hidden temporary for ever: no run looked at it
    out = tmp_path / "out"
    _earlier_folds_run(out)
    _fake_rounds(monkeypatch, tiny_sam_builder)
    real = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if ".earlier." in str(path):
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    assert _run_folds(tiny_dataset, out, tmp_path) == 130
    monkeypatch.setattr(shutil, "rmtree", real)
    (doomed,) = tmp_path.glob(".out.earlier.*.tmp")
    assert doomed.name == f"{doomed.name.removesuffix('.tmp')}.tmp"  # <hidden folder>.tmp: short
    live = doomed.with_name(doomed.name.replace(".tmp", "-x.tmp"))  # no token: not a temporary of this out
    dead = _dead_token(doomed)
    doomed.rename(dead)
    shutil.copytree(dead, live, symlinks=True)
    from segmentation.folds import show_killed_asides

    assert show_killed_asides(out) == []
    assert not dead.exists() and live.is_dir()
    assert (tmp_path / "photos" / "a.png").is_file()  # the link in it removed, not followed
    assert str(dead) not in capsys.readouterr().err


def test_the_hidden_folder_of_an_out_that_is_a_link_is_made_beside_the_folder_it_points_to(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # made beside the link, it was on another disk where --out links to one: os.replace failed and the
    # earlier run was deleted at once; and a killed run's was looked for beside the link alone
    from segmentation.folds import show_killed_asides

    real = tmp_path / "disk" / "out"
    _earlier_folds_run(real)
    before = _files(real)
    out = tmp_path / "out"
    out.symlink_to(real, target_is_directory=True)
    _fake_rounds(monkeypatch, tiny_sam_builder)
    seen = []

    def train(run_config, **options):
        seen.extend(path.name for path in (tmp_path / "disk").glob(".out.earlier.*"))
        raise KeyboardInterrupt

    monkeypatch.setattr("segmentation.crossval.train", train)
    assert _run_folds(tiny_dataset, out, tmp_path) == 130
    assert len(seen) == 1 and _files(real) == before
    killed = _dead_token(tmp_path / "disk" / seen[0])
    killed.mkdir()
    (shown,) = show_killed_asides(out)
    assert shown.parent == tmp_path / "disk" and shown.name.startswith("out.earlier-")
    assert f"note: {shown} holds an earlier --folds run of {out}" in capsys.readouterr().err


def test_the_hidden_folder_of_an_out_named_like_another_outs_earlier_is_not_taken_for_that_outs(
    tmp_path, capsys
):
    # --out a and --out a.earlier.b: .a.earlier.* took the second one's hidden folder for the first one's
    from common.io import temporary_path
    from segmentation.folds import show_killed_asides

    other = _dead_token(temporary_path(tmp_path / "a.earlier.b.earlier").with_suffix(""))
    other.mkdir()
    (tmp_path / "a").mkdir()
    assert show_killed_asides(tmp_path / "a") == []
    assert other.is_dir() and capsys.readouterr().err == ""
    assert show_killed_asides(tmp_path / "a.earlier.b") != []


def test_a_killed_runs_hidden_folder_is_shown_before_a_refusal_of_the_data(tiny_dataset, tmp_path, capsys):
    # shown only once the data was dealt and the base model loaded: --folds 50 said nothing of it
    from common.io import temporary_path

    out = tmp_path / "out"
    _earlier_folds_run(_dead_token(temporary_path(tmp_path / "out.earlier").with_suffix("")))
    assert _run_folds(tiny_dataset, out, tmp_path, "--folds", "50") == 2
    (shown,) = tmp_path.glob("out.earlier-*")
    err = capsys.readouterr().err
    assert f"note: {shown} holds an earlier --folds run of {out}" in err and "more folds than" in err


def test_a_stop_amid_the_deletion_of_the_earlier_run_keeps_the_recorded_round_and_puts_nothing_back(
    tmp_path, monkeypatch, capsys
):
    # the earlier run's folder stayed in 'earlier' until its deletion ended: a Ctrl-C after it was marked
    # (.dropped) and before its rename put it back over the round whose training was recorded, saying this
    # run had stopped before that, and took the mark into --out: the next run into it was refused ('holds
    # other files than an earlier --folds run's'), --resume too
    import os

    from segmentation import crossval, folds

    out = tmp_path / "out"
    _earlier_folds_run(out)
    real = Path.rename

    def stopped(self, target):
        if self.name.startswith(".out.earlier.") and os.path.lexists(self / folds.FOLDS_DROPPED):
            raise KeyboardInterrupt
        return real(self, target)

    with pytest.raises(KeyboardInterrupt) as stop:
        with crossval._folds_run_marked(out, resume=False) as earlier:
            (out / "folds_plan.json").write_text("this run's")  # as its round 0's training is recorded
            (aside,) = earlier
            monkeypatch.setattr(Path, "rename", stopped)
            folds.drop_earlier_folds_run(earlier)
    monkeypatch.setattr(Path, "rename", real)
    assert not crossval.earlier_run_back(stop.value)  # the Ctrl-C line tells to --resume
    assert (out / "folds_plan.json").read_text() == "this run's"
    assert not os.path.lexists(out / folds.FOLDS_DROPPED)
    assert capsys.readouterr().err.endswith(
        "note: the earlier --folds run this run replaces was not deleted (stopped first): delete "
        f"{aside} by hand\n"
    )
    assert (aside / "runs" / "fold0" / "decoder.pt").read_bytes() == b"old"


def test_a_killed_runs_hidden_earlier_run_that_cannot_be_shown_is_named_once_and_the_run_goes_on(
    tmp_path, monkeypatch, capsys
):
    # the rename's OSError went out of 'evaluate --folds' as a traceback, with no word of whose run the
    # hidden folder holds (segmentation.run_folder's show_earlier names such a folder and goes on)

    from segmentation import folds

    out, hidden = _dead_runs_hidden_folder(tmp_path)
    refuse_rename(monkeypatch, hidden)
    assert folds.show_killed_asides(out) == []
    assert folds.show_killed_asides(out) == []  # evaluate --folds, then cross_validate: said once
    assert capsys.readouterr().err == (
        f"note: {hidden} holds an earlier --folds run of {out} and could not be renamed to a visible folder "
        f"(Permission denied: {hidden}): rename or move it by hand to keep it, or delete it; a run killed "
        "before its first round's training was recorded left it there\n"
    )
    assert (hidden / "runs" / "fold0" / "decoder.pt").read_bytes() == b"old"


def test_a_stop_right_after_a_killed_runs_earlier_run_is_shown_waits_for_its_note(
    tmp_path, monkeypatch, capsys
):
    # the rename was not held: a Ctrl-C right after it left a visible <out>.earlier-<time> with no note
    import signal

    from segmentation import folds

    out, hidden = _dead_runs_hidden_folder(tmp_path)
    real = Path.rename

    def rename_then_stop(self, target):
        moved = real(self, target)
        if self == hidden:
            signal.raise_signal(signal.SIGINT)
        return moved

    monkeypatch.setattr(Path, "rename", rename_then_stop)
    with pytest.raises(KeyboardInterrupt):
        folds.show_killed_asides(out)
    (shown,) = tmp_path.glob("out.earlier-*")
    assert capsys.readouterr().err == (
        f"note: {shown} holds an earlier --folds run of {out}: a run killed before its first round's "
        "training was recorded left it there\n"
    )


def test_an_earlier_run_a_drop_could_neither_mark_nor_delete_is_said_to_be_misnamed_next(
    tmp_path, monkeypatch, capsys
):
    # the mark's error was suppressed: the note said only to delete it by hand, and the next run said, with
    # no word of warning, that a run killed before its first round's training was recorded had left it
    from common.io import temporary_path
    from segmentation import folds

    hidden = temporary_path(tmp_path / "out.earlier").with_suffix("")
    _earlier_folds_run(hidden)
    refuse_touch(monkeypatch, folds.FOLDS_DROPPED)
    refuse_rename(monkeypatch, hidden)
    folds.drop_earlier_folds_run([hidden])  # this run's first round's training recorded: it goes on
    assert capsys.readouterr().err == (
        "note: the earlier --folds run this run replaces could not be deleted (Permission denied: "
        f"{hidden}): delete {hidden} by hand; it could not be marked as this run's, so the next --folds run "
        "here will say a run killed before its first round's training was recorded left it\n"
    )
