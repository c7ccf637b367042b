"""The anomaly command lines given bad input: one ``error:`` line, exit 2, nothing written.

Subprocesses with the network blocked (tests/reliability's helpers); a tiny config with random
weights, so no weights file is needed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.anomaly.conftest import make_parts
from tests.reliability.conftest import assert_user_error, run_cli, tree_state

pytestmark = pytest.mark.slow

TINY = ["pretrained=false", "image_size=64", "coreset_ratio=0.5"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    """A category and a run fit on it through the CLI."""
    base = tmp_path_factory.mktemp("cli")
    category = make_parts(base / "data")
    result = run_cli("anomaly.train", "--root", category.parent, "--category", "part", "--out", base / "run",
                     "--no-progress", *TINY)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "fit mobilenet_v2 PatchCore on 2 good images" in result.stdout
    return category, base / "run"


def test_train_evaluate_predict_happy_path(fitted, tmp_path: Path) -> None:
    category, run = fitted
    result = run_cli("anomaly.evaluate", "--run", run, "--out", tmp_path / "eval", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "5 images (3 defect)" in result.stdout
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["image"]["images"] == 5
    result = run_cli(
        "anomaly.predict",
        "--run",
        run,
        "--source",
        category / "test",
        "--out",
        tmp_path / "pred",
        "--threshold",
        tmp_path / "eval" / "metrics.json",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert "5 photos" in result.stdout and (tmp_path / "pred" / "predictions.json").is_file()
    # the threshold as report.md gives it, six significant digits (it printed 3.61 beside report.md's 3.6098)
    printed = re.search(r"\(threshold (\S+) ", result.stdout)[1]
    pixel = json.loads((tmp_path / "eval" / "metrics.json").read_text())["pixel"]
    assert printed == f"{pixel['f1_threshold']:.6g}"
    assert f" ({printed}) |" in (tmp_path / "eval" / "report.md").read_text()


def test_predict_on_a_category_root_is_refused(fitted, tmp_path: Path) -> None:
    category, run = fitted
    assert (category / "ground_truth").is_dir()
    result = run_cli("anomaly.predict", "--run", run, "--source", category, "--out", tmp_path / "pred",
                     "--threshold", "1")  # fmt: skip
    masks = category / "ground_truth"
    assert_user_error(result, f"{category} includes {masks}, an MVTec category's defect masks")
    assert not (tmp_path / "pred").exists()


def test_predict_photo_of_another_size(fitted, tmp_path: Path) -> None:
    _, run = fitted
    photo = tmp_path / "photos" / "big.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.zeros((200, 300, 3), np.uint8))
    result = run_cli(
        "anomaly.predict",
        "--run",
        run,
        "--source",
        photo.parent,
        "--out",
        tmp_path / "pred",
        "--threshold",
        "1",
    )
    assert_user_error(result, str(photo), "300x200")
    assert not (tmp_path / "pred").exists()


def test_category_without_good_images(tmp_path: Path) -> None:
    category = make_parts(tmp_path / "data", n_train=0)
    result = run_cli(
        "anomaly.train", "--root", category.parent, "--category", "part", "--out", tmp_path / "run", *TINY
    )
    assert_user_error(result, "category 'part' has no good images to fit on")
    assert not (tmp_path / "run").exists()


def test_training_image_of_another_size(tmp_path: Path) -> None:
    category = make_parts(tmp_path / "data")
    odd = category / "train" / "good" / "001.png"
    cv2.imwrite(str(odd), np.zeros((100, 64, 3), np.uint8))
    result = run_cli(
        "anomaly.train", "--root", category.parent, "--category", "part", "--out", tmp_path / "run", *TINY
    )
    # both named: nothing is fit yet, and the first image (000.png) set the size
    assert_user_error(result, "the images to fit on differ in size", str(odd), "64x100", "000.png is 64x64")
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.partial-*"))


@pytest.mark.parametrize("flag", ["--out", "--root"])
def test_a_folder_whose_path_is_not_utf8_is_refused(tmp_path: Path, not_utf8_folder: Path, flag: str) -> None:
    # a Latin-1 name from an old Windows share: run.json recorded --root as "\udcff" (a run fit, exit 0),
    # and an --out there stopped with a UnicodeEncodeError traceback after the run folder was written
    category = make_parts(tmp_path / "data")  # cv2.imwrite crashes on a path that is not UTF-8: moved there
    if flag == "--root":
        category = (tmp_path / "data").rename(not_utf8_folder / "data") / category.name
    out = (not_utf8_folder if flag == "--out" else tmp_path) / "run"
    before = tree_state(tmp_path)
    result = run_cli("anomaly.train", "--root", category.parent, "--category", "part", "--out", out, *TINY)
    assert_user_error(result, f"{flag} has a name that is not UTF-8, b'bad\\xff' (in {tmp_path}): rename it")
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("command", ["anomaly.predict", "anomaly.evaluate"])
def test_a_run_folder_whose_path_is_not_utf8_is_refused(
    fitted, tmp_path: Path, not_utf8_folder: Path, command: str
) -> None:
    # moved there (or fit by an older version): predict.json and metrics.json recorded it as "\udcff"
    category, run = fitted
    run = shutil.copytree(run, not_utf8_folder / "run")
    before = tree_state(tmp_path)
    args = ["--source", category / "test", "--threshold", "1"] if command == "anomaly.predict" else []
    result = run_cli(command, "--run", run, "--out", tmp_path / "out", "--no-progress", *args)
    assert_user_error(result, f"--run has a name that is not UTF-8, b'bad\\xff' (in {tmp_path}): rename it")
    assert tree_state(tmp_path) == before


def test_test_image_of_another_size(fitted, tmp_path: Path) -> None:
    category, run = fitted
    copy = tmp_path / "data" / "part"  # --out may not lie inside --root
    shutil.copytree(category, copy)
    odd = copy / "test" / "good" / "000.png"
    cv2.imwrite(str(odd), np.zeros((32, 32, 3), np.uint8))
    before = tree_state(tmp_path), tree_state(run)
    result = run_cli("anomaly.evaluate", "--run", run, "--root", copy.parent, "--out", tmp_path / "eval")
    assert_user_error(result, str(odd), "32x32")
    assert (tree_state(tmp_path), tree_state(run)) == before  # nothing written, input and run untouched


def test_corrupt_run_folder(fitted, tmp_path: Path) -> None:
    _, run = fitted
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    (broken / "memory_bank.pt").write_bytes(b"\0" * 64)
    assert_user_error(run_cli("anomaly.evaluate", "--run", broken), "corrupt run folder", "memory_bank.pt")
    (broken / "run.json").write_text("[]")
    assert_user_error(run_cli("anomaly.evaluate", "--run", broken), "corrupt run folder", "run.json lacks")


def test_scoring_a_split_whose_test_images_were_fit_on(fitted, tmp_path: Path) -> None:
    # the split puts a train/good image (which the run was fit on) into its test list: refused
    _, run = fitted
    splits = {"version": 1, "seed": 0, "ratios": {"train": 0.6, "val": 0.2, "test": 0.2},
              "background_ratio": 0.5, "train": [], "val": [],
              "test": ["part/test/spot/000", "part/train/good/001"]}  # fmt: skip
    (tmp_path / "conv").mkdir()
    (tmp_path / "conv" / "splits.json").write_text(json.dumps(splits))
    result = run_cli(
        "anomaly.evaluate", "--run", run, "--data", tmp_path / "conv", "--out", tmp_path / "eval"
    )
    assert_user_error(result, "refusing to score", "train/good/001.png", "fit on it")
    assert not (tmp_path / "eval").exists()


def test_bad_config_value(tmp_path: Path) -> None:
    category = make_parts(tmp_path / "data")
    result = run_cli("anomaly.train", "--root", category.parent, "--out", tmp_path / "run", "image_size=0")
    assert_user_error(result, "image_size")
