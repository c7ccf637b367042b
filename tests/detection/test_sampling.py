"""detection.sampling: LVIS repeat factors by hand, stochastic rounding, and a repeated train list that
ultralytics reads with its repeats."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from ultralytics.cfg import get_cfg
from ultralytics.data.build import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.utils import YAML

from common.errors import UserError
from common.fonts import ensure_ultralytics_fonts
from detection.data import split_images
from detection.sampling import (
    category_repeat_factors,
    image_repeat_factors,
    repeat_counts,
    write_repeated_train_list,
)


def test_category_factors_by_hand() -> None:
    images = [{0}] * 7 + [{0, 1}, {1}, {2}]  # f(0) = 0.8, f(1) = 0.2, f(2) = 0.1
    factors = category_repeat_factors(images, threshold=0.4)
    assert factors[0] == 1.0  # sqrt(0.4 / 0.8) = 0.71 < 1: a common class is not repeated
    assert factors[1] == pytest.approx(math.sqrt(2))  # sqrt(0.4 / 0.2)
    assert factors[2] == pytest.approx(2.0)  # sqrt(0.4 / 0.1)
    # the image with classes 0 and 1 takes the larger factor
    per_image = image_repeat_factors(images, factors)
    assert per_image.tolist() == pytest.approx([1.0] * 7 + [math.sqrt(2), math.sqrt(2), 2.0])


def test_backgrounds_count_in_the_frequency_and_are_not_repeated() -> None:
    images = [{0}, set(), set(), set()]  # f(0) = 1/4 because three backgrounds share the denominator
    factors = category_repeat_factors(images, threshold=1.0)
    assert factors == {0: pytest.approx(2.0)}
    assert image_repeat_factors(images, factors).tolist() == [2.0, 1.0, 1.0, 1.0]


def test_repeats_within_one_image_count_once() -> None:
    assert category_repeat_factors([[0, 0, 0], [1]], threshold=0.5) == {0: 1.0, 1: 1.0}  # f = 0.5 each


def test_threshold_zero_repeats_nothing_and_negative_is_refused() -> None:
    assert set(category_repeat_factors([{0}, {1}, {1}], threshold=0.0).values()) == {1.0}
    with pytest.raises(ValueError, match=">= 0"):
        category_repeat_factors([{0}], threshold=-0.1)


def test_stochastic_rounding_is_unbiased_and_stays_between_floor_and_ceil() -> None:
    factors = np.array([1.0, 1.25, 2.0, 2.5, 3.9])
    draws = np.stack([repeat_counts(factors, np.random.default_rng(seed)) for seed in range(4000)])
    assert (draws >= np.floor(factors)).all() and (draws <= np.ceil(factors)).all()
    assert (draws[:, [0, 2]] == [1, 2]).all()  # whole factors are exact
    assert draws.mean(axis=0) == pytest.approx(factors, abs=0.03)
    same = repeat_counts(factors, np.random.default_rng(7)), repeat_counts(factors, np.random.default_rng(7))
    assert np.array_equal(*same)  # seeded


def write_labelled_images(root: Path, classes_per_image: list[set[int]]) -> Path:
    """16x16 images (ultralytics skips those under 10 px), a box per listed class; train = val."""
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i, classes in enumerate(classes_per_image):
            cv2.imwrite(str(root / "images" / split / f"{i:02d}.png"), np.zeros((16, 16, 3), np.uint8))
            lines = "".join(f"{c} 0.5 0.5 0.25 0.25\n" for c in sorted(classes))
            (root / "labels" / split / f"{i:02d}.txt").write_text(lines)
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": ["a", "b", "c"]}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


def test_repeated_list_by_hand(tmp_path: Path) -> None:
    images = [{0}] * 7 + [{0, 1}, {1}, {2}]
    data = write_labelled_images(tmp_path / "set", images)
    result = write_repeated_train_list(data, tmp_path / "run", threshold=0.4, seed=0)
    lines = result.list_file.read_text().splitlines()
    counts = {Path(p).stem: lines.count(p) for p in set(lines)}
    assert [counts[f"{i:02d}"] for i in range(7)] == [1] * 7  # common class: once
    assert counts["09"] == 2  # r = 2 exactly
    assert counts["07"] in (1, 2) and counts["08"] in (1, 2)  # r = 1.41: stochastic
    assert result.lines == len(lines) == sum(counts.values()) and result.images == 10
    assert result.class_factor == {"a": 1.0, "b": pytest.approx(math.sqrt(2)), "c": pytest.approx(2.0)}
    assert result.class_frequency == {"a": 0.8, "b": 0.2, "c": 0.1}
    assert "t=0.4: 10 train images -> " in result.describe()
    record = json.loads((tmp_path / "run" / "repeat_factors.json").read_text())
    assert record["seed"] == 0 and sum(record["copies"].values()) == result.lines

    # the run's data.yaml: train is the list, the rest is the source's
    run_data = yaml.safe_load(result.data.read_text())
    assert run_data["train"] == str(result.list_file) and run_data["val"] == "images/val"
    assert run_data["path"] == str(tmp_path / "set") and run_data["names"] == ["a", "b", "c"]


def test_the_run_data_yaml_writes_a_non_ascii_path_as_it_is(tmp_path: Path) -> None:
    # 'lot_é' was written "lot_\xE9": the file read back the same, but not as a person reads it
    data = write_labelled_images(tmp_path / "lot_é", [{0}, {1}, {2}])
    result = write_repeated_train_list(data, tmp_path / "run_é", threshold=0.5, seed=0)
    text = result.data.read_text(encoding="utf-8")
    assert f"path: {tmp_path / 'lot_é'}" in text and "\\x" not in text and "\\u" not in text
    loaded = YAML.load(result.data)  # stock 'yolo train data=' reads it back as written
    assert loaded["path"] == str(tmp_path / "lot_é") and loaded["train"] == str(result.list_file)


def test_ultralytics_trains_on_every_repeated_line(tmp_path: Path, network_attempts) -> None:
    """The claim the design rests on: a .txt split keeps its repeated lines in ultralytics' dataset."""
    data = write_labelled_images(tmp_path / "set", [{0}] * 7 + [{0, 1}, {1}, {2}])
    result = write_repeated_train_list(data, tmp_path / "run", threshold=0.4, seed=0)
    ensure_ultralytics_fonts()  # as detection.train does: check_det_dataset fetches a missing font
    checked = check_det_dataset(str(result.data))
    assert checked["train"] == str(result.list_file)
    cfg = get_cfg(overrides={"imgsz": 32, "mode": "train", "data": str(result.data)})
    dataset = build_yolo_dataset(cfg, checked["train"], batch=2, data=checked, mode="train")
    assert len(dataset) == result.lines > 10
    assert sorted(dataset.im_files) == sorted(result.list_file.read_text().splitlines())
    assert split_images(result.data, "train") == sorted(Path(p) for p in dataset.im_files)
    assert network_attempts == []


def test_repeated_list_of_the_converted_set(tiny_dataset: Path, tmp_path: Path) -> None:
    train = split_images(tiny_dataset / "data.yaml", "train")
    result = write_repeated_train_list(tiny_dataset / "data.yaml", tmp_path / "run", threshold=0.9)
    listed = result.list_file.read_text().splitlines()
    assert set(listed) == {str(p) for p in train}  # every image at least once
    assert result.lines >= len(train) and result.images == len(train)


@pytest.mark.parametrize("threshold", [0.0, -1.0])
def test_repeated_list_needs_a_positive_threshold(tiny_dataset: Path, tmp_path: Path, threshold) -> None:
    with pytest.raises(UserError, match="repeat_factor must be > 0"):
        write_repeated_train_list(tiny_dataset / "data.yaml", tmp_path, threshold)


def test_labels_with_unknown_classes_are_refused(tmp_path: Path) -> None:
    data = write_labelled_images(tmp_path / "set", [{0}, {5}])
    with pytest.raises(UserError, match=r"class ids \[5\] beyond its 3 names"):
        write_repeated_train_list(data, tmp_path / "run", 0.5)


def test_image_factors_follow_the_order_of_the_images() -> None:
    images = [set(), {1}, set(), {0, 1}]
    assert image_repeat_factors(images, {0: 1.0, 1: 3.0}).tolist() == [1.0, 3.0, 1.0, 3.0]


def test_class_frequency_counts_backgrounds_in_the_denominator(tmp_path: Path) -> None:
    data = write_labelled_images(tmp_path / "set", [{0}, {1}, set(), set()])
    result = write_repeated_train_list(data, tmp_path / "run", threshold=0.5, seed=0)
    assert result.class_frequency == {"a": 0.25, "b": 0.25}
    assert result.class_factor == {"a": pytest.approx(math.sqrt(2)), "b": pytest.approx(math.sqrt(2))}


def test_the_run_data_yaml_finds_the_source_splits_without_a_path_key(tmp_path: Path) -> None:
    data = write_labelled_images(tmp_path / "set", [{0}, {1}, {2}])
    source = yaml.safe_load(data.read_text())
    del source["path"]  # split paths relative to the data.yaml's folder
    data.write_text(yaml.safe_dump(source))
    result = write_repeated_train_list(data, tmp_path / "run", threshold=0.5, seed=0)
    assert result.data.parent != data.parent
    assert split_images(result.data, "val") == split_images(data, "val")


def test_the_seed_decides_the_rounding_and_is_recorded(tmp_path: Path) -> None:
    images = [{0}] * 10 + [{1}] * 10  # r = sqrt(0.8 / 0.5) = 1.26 for every image: 20 coin flips
    data = write_labelled_images(tmp_path / "set", images)
    lists = {}
    for seed in (1, 2):
        result = write_repeated_train_list(data, tmp_path / f"run{seed}", threshold=0.8, seed=seed)
        lists[seed] = result.list_file.read_text()
        assert json.loads((tmp_path / f"run{seed}" / "repeat_factors.json").read_text())["seed"] == seed
    again = write_repeated_train_list(data, tmp_path / "again", threshold=0.8, seed=2)
    assert lists[1] != lists[2] and again.list_file.read_text() == lists[2]


def test_a_train_split_of_backgrounds_only_repeats_nothing_and_says_so(tmp_path: Path) -> None:
    data = write_labelled_images(tmp_path / "set", [set(), set()])
    result = write_repeated_train_list(data, tmp_path / "run", threshold=0.5)
    assert result.lines == 2 and result.class_factor == {}
    assert result.describe().endswith(
        "2 train images -> 2 per epoch; class factors none (no labelled images)"
    )
