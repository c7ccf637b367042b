"""detection.train: config resolution with the augmentation policy, early failures, 1-epoch runs offline."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from ultralytics.nn.tasks import WorldModel

from common.config import PROJECT_ROOT, yaml_text
from common.errors import UserError
from common.trained_images import read_trained_images, record_trained_images
from converters.convert import ConvertConfig, convert
from detection.augmentation import AugmentPolicy, load_policy, policy_settings
from detection.data import has_polygon_labels, split_images
from detection.evaluate import evaluate
from detection.predict import main as predict_main
from detection.text_embeddings import fixed_embeddings, save_table
from detection.train import (
    accumulation_note,
    check_freeze_layers,
    check_training_splits,
    checkpoint_pretrained,
    class_names_note,
    fit,
    main,
    optimizer_note,
    prepare_training_data,
    recorded_config,
    remove_stale_files,
    resolve_pretrained,
    rotation_note,
    run_dir,
    stopped_note,
    train,
)
from detection.train_config import (
    OWN_DEFAULTS,
    build_config,
    check_batch,
    check_config,
    check_device,
    check_freeze,
    config_categories,
    default_config,
    describe_augmentation,
)
from detection.weights import stride_imgsz
from tests.common.tiff_files import raw_tiff
from tests.conftest import assert_link_loop_line, without_home
from tests.detection.conftest import (
    BAD_WEIGHTS,
    as_12_bit_data,
    copy_with_names,
    idle_gpus_found,
    jpeg_without_end_marker,
    make_tiny_dataset,
    write_bad_weights,
)

WORLD_CONFIG = PROJECT_ROOT / "configs" / "detection" / "yolo_world.yaml"
YOLO11_CONFIG = PROJECT_ROOT / "configs" / "detection" / "yolo11n.yaml"
NAMES = ["bent", "color", "flip", "scratch"]
MVTEC_CATEGORIES = {
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
}  # fmt: skip


@pytest.fixture
def no_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    """``clip`` is not importable, whatever this machine has installed."""
    monkeypatch.setitem(sys.modules, "clip", None)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    return save_table(fixed_embeddings(NAMES), tmp_path / "table.pt")


def tiny_run(tiny_dataset: Path, tmp_path: Path, *extra: str) -> list[str]:
    """Overrides for a 1-epoch CPU run at 64 px into tmp_path/runs."""
    return [
        f"data={tiny_dataset / 'data.yaml'}",
        f"project={tmp_path / 'runs'}",
        "epochs=1",
        "imgsz=64",
        "batch=4",
        "workers=0",
        "device=cpu",
        "plots=false",
        *extra,
    ]


# --- config --------------------------------------------------------------------------------------


def test_shipped_configs_load_and_know_every_key(tiny_dataset: Path) -> None:
    data = f"data={tiny_dataset / 'data.yaml'}"
    world = build_config(WORLD_CONFIG, [data])
    assert world["model"] == "yolov8s-worldv2.yaml" and world["project"] == "runs/detect"
    assert build_config(YOLO11_CONFIG, [data])["model"] == "yolo11n.pt"
    policy = load_policy(PROJECT_ROOT / world["augment_policy"])
    assert policy.categories["metal_nut"]["fliplr"] == 0.0 and policy.default == {}
    assert set(policy.categories) <= MVTEC_CATEGORIES | {"synthetic_nut", "hazelnut_toy"}  # no typos


def test_category_from_splits_json_picks_its_policy(tiny_dataset: Path) -> None:
    config = build_config(WORLD_CONFIG, [f"data={tiny_dataset / 'data.yaml'}"])
    assert config["category"] == "synthetic_nut"  # recorded, so the saved config.yaml repeats the run
    assert (config["fliplr"], config["flipud"]) == (0.0, 0.0)  # a mirrored nut is the `flip` defect
    assert config["degrees"] == 180.0  # a rotated nut keeps its handedness
    assert config["hsv_h"] == 0.015  # ultralytics' default where the policy says nothing
    described = describe_augmentation(config)
    assert "synthetic_nut (its own entry): degrees=180.0 fliplr=0.0 flipud=0.0" in described


def test_a_bad_value_names_the_config_file_or_the_override_that_set_it(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    own = tmp_path / "run.yaml"
    own.write_text(yaml.safe_dump({"data": str(tiny_dataset / "data.yaml"), "fliplr": 2.0, "freeze": -3}))
    with pytest.raises(
        UserError,
        match=rf"^config file {re.escape(str(own))}: config key 'fliplr': 'fliplr=2.0' is an invalid",
    ):
        build_config(own)
    with pytest.raises(UserError, match=r"^override 'freeze=-1': config key 'freeze' needs a layer count"):
        build_config(own, ["fliplr=0.5", "freeze=-1"])


def test_an_empty_config_file_is_noted_once(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    # build_config reads the file twice (before and after the augmentation policy)
    empty = tmp_path / "run.yaml"
    empty.write_text("# nothing yet\n")
    assert build_config(empty, [f"data={tiny_dataset / 'data.yaml'}"])["epochs"] == default_config()["epochs"]
    assert capsys.readouterr().err.count(f"note: config file {empty} sets no keys") == 1


@pytest.mark.parametrize("category", [None, "", []])
def test_no_category_given_takes_the_data_sets_own(tiny_dataset: Path, category) -> None:
    config = {"data": str(tiny_dataset / "data.yaml"), "category": category}
    assert config_categories(config) == ["synthetic_nut"]


def test_precedence_policy_then_config_file_then_command_line(tiny_dataset: Path, tmp_path: Path) -> None:
    own = tmp_path / "run.yaml"
    own.write_text(yaml.safe_dump({"data": str(tiny_dataset / "data.yaml"), "fliplr": 0.25, "epochs": 3}))
    assert build_config(own)["fliplr"] == 0.25  # the config file beats the policy
    config = build_config(own, ["fliplr=0.75", "category=wood", "mosaic=0.5"])
    assert (config["fliplr"], config["flipud"], config["mosaic"], config["epochs"]) == (0.75, 0.5, 0.5, 3)
    off = build_config(own, ["augment_policy=null"])
    assert (off["fliplr"], off["flipud"]) == (0.25, 0.0)
    assert "ultralytics' defaults" in describe_augmentation(off)


def test_a_category_known_to_neither_the_policy_nor_the_data_is_refused(tiny_dataset: Path) -> None:
    data = f"data={tiny_dataset / 'data.yaml'}"
    with pytest.raises(UserError, match="category synthetic_nutt: neither in the policy .* nor a category"):
        build_config(WORLD_CONFIG, [data, "category=synthetic_nutt"])  # the default entry would mirror it
    assert build_config(WORLD_CONFIG, [data, "category=synthetic_nutt", "augment_policy=null"])["category"]


def test_several_categories_take_the_safest_value() -> None:
    nut, wood = {"fliplr": 0.0, "flipud": 0.0}, {"hsv_h": 0.1}
    policy = AugmentPolicy(default={"flipud": 0.5}, categories={"metal_nut": nut, "wood": wood})
    base = {"fliplr": 0.5, "flipud": 0.0, "hsv_h": 0.015}
    # wood's unset flips come from the default entry (flipud 0.5), metal_nut's unset hsv_h from ultralytics
    expected = {"fliplr": 0.0, "flipud": 0.0, "hsv_h": 0.015}
    assert policy_settings(policy, ["metal_nut", "wood"], base) == expected
    assert policy_settings(policy, [], base) == {"flipud": 0.5}  # unknown category: the default entry


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["epoch=1"], "unknown config key 'epoch'"),  # a typo never trains with the default
        (["data=null"], "no data set: pass data=PATH/data.yaml"),
        # `model=$WEIGHTS` with WEIGHTS unset: YAML's null, and the config's model trained without a word
        (["model="], "override 'model=' has no value (an unset shell variable?): write model=null to unset"),
        (["augment_policy=nowhere.yaml"], "cannot read augmentation policy nowhere.yaml"),
        # ultralytics went on in the checkpoint's run folder; the command reported a new, empty one
        (["resume=a/last.pt"], "config key 'resume' (a/last.pt) is not supported by detection.train"),
        (["resume=true"], "config key 'resume' (True) is not supported by detection.train"),
    ],
)
def test_bad_configs_are_one_line_errors(tiny_dataset: Path, overrides: list[str], expected: str) -> None:
    with pytest.raises(UserError) as error:
        build_config(WORLD_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", *overrides])
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_data_may_name_the_converters_folder(tiny_dataset: Path) -> None:
    # data=<folder> used to say 'data file not found: <folder>' although the folder holds data.yaml
    config = build_config(WORLD_CONFIG, [f"data={tiny_dataset}"])
    assert config["data"] == str(tiny_dataset / "data.yaml")
    assert config["category"] == "synthetic_nut"  # splits.json beside it was read


def test_a_data_folder_without_a_data_yaml_is_one_line_naming_it(tmp_path: Path) -> None:
    # was passed on as given, for read_data_yaml to say 'data file ... is a folder', unlike the --data of
    # detection.evaluate (common.data_sets.data_yaml_of, one rule for both)
    with pytest.raises(UserError, match=f"^data={tmp_path} is a folder without a data.yaml: pass a "):
        build_config(WORLD_CONFIG, [f"data={tmp_path}"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"categories": {"wood": {"flip": 0.5}}}, "unknown config key 'categories.wood.flip'"),
        ({"default": {"fliplr": -1}}, "'default.fliplr' must be a number >= 0"),
        ({"policies": {}}, "unknown config key 'policies' (known here: categories, default)"),
    ],
)
def test_bad_policy_files_are_named(tmp_path: Path, content: dict, expected: str) -> None:
    path = tmp_path / "augment.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(UserError) as error:
        load_policy(path)
    assert expected in str(error.value) and str(path) in str(error.value)


# --- every key checked, from one declaration -----------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("lr0=true", "lr0", "needs a number > 0 and <= 1, got True"),  # not a learning rate of 1.0
        ("lr0=-1", "lr0", "between 0.0 and 1.0"),  # ultralytics' own check
        ("lr0=.nan", "lr0", "between 0.0 and 1.0"),
        ("lr0=0", "lr0", "needs a number > 0"),  # ultralytics takes 0: nothing would be learnt
        ("lr0=[1]", "lr0", "invalid type list"),
        ("lr0=null", "lr0", "must not be None"),
        ("batch=0", "batch", "needs an integer >= 1 (images per batch), -1 (AutoBatch)"),
        ("batch=1.5", "batch", "or a fraction in (0, 1)"),
        ("batch=-2", "batch", "got -2"),
        ("batch=true", "batch", "got True"),
        ("epochs=-3", "epochs", "must be >= 1"),
        ("epochs=abc", "epochs", "needs an integer >= 1, got 'abc'"),  # was 'needs a number'
        ("batch=abc", "batch", "needs an integer >= 1 (images per batch), -1 (AutoBatch) or a fraction"),
        ("lr0=abc", "lr0", "needs a number > 0 and <= 1, got 'abc'"),
        ("epochs=2.5", "epochs", "must be an int"),
        ("epochs=true", "epochs", "needs an integer >= 1, got True"),
        ("imgsz=0", "imgsz", "needs an integer in [32, 8192]"),
        ("imgsz=[64, 64]", "imgsz", "needs an integer in [32, 8192]"),
        ("imgsz=7", "imgsz", "needs an integer in [32, 8192], got 7"),  # ultralytics quietly trained at 32
        ("imgsz=100000", "imgsz", "got 100000"),  # an OpenCV out-of-memory traceback, a partial run folder
        ("freeze=-3", "freeze", "needs a layer count >= 0 or a list of layer indices >= 0, got -3"),
        ("freeze=[0, -1]", "freeze", "got [0, -1]"),
        ("workers=-1", "workers", "needs an integer >= 0"),
        ("box=.inf", "box", "needs a finite number"),
        ("time=0", "time", "needs a number > 0 or null"),
        ("hsv_h=2", "hsv_h", "between 0.0 and 1.0"),
        ("fliplr=true", "fliplr", "needs a number in [0, 1], got True"),
        ("plots=maybe", "plots", "must be a bool"),
        ("amp=maybe", "amp", "Valid 'amp' values"),
        ("tile=-1", "tile", "needs an integer >= 0"),
        ("tile=16", "tile", "needs 0 (off) or a tile size >= 32 px"),
        ("tile=64.0", "tile", "needs an integer >= 0"),
        ("tile_overlap=1.5", "tile_overlap", "needs a number in [0, 0.9], got 1.5"),
        ("tile_overlap=0.95", "tile_overlap", "needs a number in [0, 0.9], got 0.95"),
        ("tile_min_visible=-0.5", "tile_min_visible", "needs a number in [0, 1]"),
        ("repeat_factor=nan", "repeat_factor", "needs a finite number"),
        ("repeat_factor=true", "repeat_factor", "got True"),
        ("download=maybe", "download", "needs true or false, got 'maybe'"),
        ("model=5", "model", "needs a string"),
        ("category=5", "category", "needs a string or a list or null"),
        ("name=../../escape", "name", "needs a plain folder name inside 'project'"),  # ran outside it
        ("name=..", "name", "got '..'"),
        # ultralytics refused it only when building the optimizer: a traceback after the run folder
        ("optimizer=Foo", "optimizer", "Optimizer 'Foo' not found"),
        ("optimizer=Adamw2", "optimizer", "Optimizer 'Adamw2' not found"),
        # ultralytics wrote images/<split>/*.npy into the data set
        ("cache=disk", "cache", "disk saves a .npy beside every train and val image, inside the data set"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(
    tiny_dataset: Path, override: str, key: str, expected: str
) -> None:
    with pytest.raises(UserError) as error:
        build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", override])
    message = str(error.value)
    assert f"config key '{key}'" in message and expected in message and "\n" not in message


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ("batch=-1", "batch", -1),  # AutoBatch
        ("batch=0.7", "batch", 0.7),  # AutoBatch filling 70% of GPU memory
        ("batch=8.0", "batch", 8),
        ("epochs=1e2", "epochs", 100),  # ultralytics' own conversion of integral floats
        ("lr0=1e-3", "lr0", 0.001),  # YAML 1.1 reads this as a string; taken as the number
        ("time=0.5", "time", 0.5),
        ("amp=BF16", "amp", "bf16"),
        ("tile=32", "tile", 32),
        ("repeat_factor=0", "repeat_factor", 0),
        ("category=[wood, tile]", "category", ["wood", "tile"]),
    ],
)
def test_good_values_pass_as_ultralytics_reads_them(tiny_dataset: Path, override, key, value) -> None:
    config = build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", override])
    assert config[key] == value and type(config[key]) is type(value)


def test_a_batch_of_one_image_is_taken() -> None:
    assert check_batch(1) == 1 and check_batch(1.0) == 1


def test_fraction_takes_an_image_count(tiny_dataset: Path) -> None:
    config = build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", "fraction=100"])
    assert config["fraction"] == 100


@pytest.mark.parametrize("name", ["auto", "AdamW", "adamw", "SGD", "MuSGD", "RMSprop"])
def test_the_optimizers_ultralytics_knows_are_taken_in_any_case(name) -> None:
    assert check_config({**default_config(), "optimizer": name})["optimizer"] == name


@pytest.mark.parametrize("name", ["a\\b", "..\\escape"])
def test_a_run_name_with_a_backslash_is_refused(name: str) -> None:
    with pytest.raises(UserError, match="config key 'name' needs a plain folder name inside 'project'"):
        check_config({**default_config(), "name": name})


def test_a_run_name_or_project_that_reads_as_a_number_is_a_folder_name(
    tiny_dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    # name=2024 (YAML: the int 2024) stopped with a TypeError traceback as the run folder was made
    # ('PosixPath' / 'int'), project=2024 with one in check_output_folder; ultralytics names them '2024'
    from detection.train import run_dir

    monkeypatch.chdir(tmp_path)
    data = tiny_dataset / "data.yaml"
    config = build_config(YOLO11_CONFIG, [f"data={data}", "name=2024", "project=7"])
    assert (config["name"], config["project"]) == ("2024", "7")
    assert run_dir(check_config(config), "yolo11n.pt", data) == tmp_path / "7" / "2024"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("name", ["a", "b"], "config key 'name' needs a string or null, got ['a', 'b']"),
        ("name", {"a": 1}, "config key 'name' needs a string or null, got {'a': 1}"),
        ("name", " ", "config key 'name' needs a string or null, got a blank string ' '"),
        ("project", ["a"], "config key 'project' needs a string, got ['a']"),
        ("project", None, "config key 'project' needs a string, got null"),
        ("project", "", "config key 'project' needs a string, got an empty string"),
    ],
)
def test_a_run_folder_key_of_no_text_is_refused_naming_it(key: str, value: object, message: str) -> None:
    # only a boolean was checked against RUN_FOLDER_KEYS: name=[a, b] and project=null stopped with a
    # TypeError traceback once the data set was checked ('PosixPath' / 'list'), name=' ' made a folder ' '
    with pytest.raises(UserError, match=f"^{re.escape(message)}"):
        check_config({**default_config(), key: value})


def test_a_run_folder_key_of_no_text_is_named_with_its_override(tiny_dataset: Path) -> None:
    with pytest.raises(UserError, match=r"^override 'name=\[a, b\]': config key 'name' needs a string"):
        build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", "name=[a, b]"])
    assert build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", "name=''"])["name"] == ""


def test_a_project_of_a_tilde_and_no_users_name_is_that_folder(tiny_dataset: Path) -> None:
    # project=~lot_7 (no such user) stopped with a RuntimeError traceback from Path.expanduser; a shell
    # leaves it as the folder '~lot_7'
    data = tiny_dataset / "data.yaml"
    config = build_config(YOLO11_CONFIG, [f"data={data}", "project=~lot_7_no_such_user"])
    assert check_config(config)["project"] == "~lot_7_no_such_user"


def test_a_project_in_the_home_folder_with_no_home_folder_is_one_line(
    tiny_dataset: Path, monkeypatch
) -> None:
    # a container run with an arbitrary user id and no HOME: project=~/runs trained into a folder named '~'
    without_home(monkeypatch)
    with pytest.raises(UserError, match="^~/runs: no home folder: HOME is not set .* set HOME"):
        check_config(build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", "project=~/runs"]))


def test_a_data_path_of_a_tilde_and_no_users_name_is_that_file() -> None:
    # data=~lot_7/data.yaml (no such user) stopped with a RuntimeError traceback from Path.expanduser
    # before the missing file was named
    from detection.train_config import data_path

    assert data_path({"data": "~lot_7_no_such_user/data.yaml"}) == Path("~lot_7_no_such_user/data.yaml")


@pytest.mark.parametrize("value", [False, None, "", "False", "false"])
def test_resume_off_in_any_spelling_is_taken(value) -> None:
    assert check_config({**default_config(), "resume": value})["resume"] == value


@pytest.mark.parametrize("value", [None, 0, 10, [0], [0, 2], (1,)])
def test_freeze_counts_and_indices_from_0_are_taken(value) -> None:
    check_freeze(value)


@pytest.mark.parametrize("value", [-1.5, [0, -0.5], -1])
def test_a_negative_freeze_integer_or_float_is_refused(value) -> None:
    with pytest.raises(
        UserError, match=f"config key 'freeze' needs a layer count >= 0 .*got {re.escape(repr(value))}$"
    ):
        check_freeze(value)


def test_the_largest_imgsz_is_taken() -> None:
    assert check_config({**default_config(), "imgsz": 8192})["imgsz"] == 8192


def test_the_evaluate_line_can_be_pasted_into_a_shell_when_paths_have_spaces(tmp_path: Path) -> None:
    import shlex

    from detection.train import TrainResult, format_summary

    data, weights = tmp_path / "my sets" / "data.yaml", tmp_path / "run é" / "weights" / "best.pt"
    text = format_summary(TrainResult(save_dir=weights.parent.parent, weights=weights, imgsz=128), data)
    [line] = [line for line in text.splitlines() if line.startswith("evaluate with: ")]
    assert "  trained_images.json   the train photos' sha256: an evaluation warns when it scores one" in text
    words = shlex.split(line.removeprefix("evaluate with: "))
    assert words[3:7] == ["--data", str(data), "--weights", str(weights)]


def test_the_summary_names_plots_only_where_the_run_drew_them(tmp_path: Path) -> None:
    # plots=false: the row said 'results.csv, *.png ... curves, label plots' of a folder without a picture
    from detection.train import TrainResult, format_summary

    weights = tmp_path / "run" / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    result = TrainResult(save_dir=weights.parent.parent, weights=weights, imgsz=64)
    text = format_summary(result, tmp_path / "data.yaml")
    assert "*.png" not in text
    assert (
        "  results.csv           per-epoch losses and metrics (no curves or label plots: plots=false)" in text
    )
    (result.save_dir / "results.png").write_bytes(b"")
    text = format_summary(result, tmp_path / "data.yaml")
    assert "  results.csv, *.png    per-epoch losses and metrics, curves, label plots" in text


@pytest.mark.parametrize(
    ("test", "expected", "note"),
    [
        (None, " --split val", "  NOTE: the test split is empty"),
        ("images/val", " --conf-from val", None),
        # a test folder deleted (or named wrong): the line named a split evaluate refuses
        ("images/nowhere", " --split val", "  NOTE: 'test: images/nowhere' of {data} does not exist"),
        (
            "{gone_list}",
            " --split val",
            "  NOTE: 1 of the 1 images the 'test' split of {data} lists do not exist",
        ),
    ],
)
def test_without_test_images_the_evaluate_line_scores_val(
    tiny_dataset: Path, tmp_path: Path, test: str | None, expected: str, note: str | None
) -> None:
    from detection.train import TrainResult, format_summary

    # tiny_dataset has no test images (--split 0.5 0.5 0): the line named a split evaluate refuses
    data = tiny_dataset / "data.yaml"
    if test is not None:
        gone_list = tmp_path / "test.txt"
        gone_list.write_text(f"{tmp_path / 'gone.png'}\n")
        data = tmp_path / "data.yaml"
        test = test.format(gone_list=gone_list)
        data.write_text(
            yaml.safe_dump({**yaml.safe_load((tiny_dataset / "data.yaml").read_text()), "test": test})
        )
    weights = tmp_path / "run" / "weights" / "best.pt"
    lines = format_summary(TrainResult(save_dir=weights.parent.parent, weights=weights, imgsz=64), data)
    *_, told, line = lines.splitlines()
    assert line.startswith("evaluate with: ") and line.endswith(f" --imgsz 64{expected}")
    if note is None:
        assert not told.startswith("  NOTE:")
    else:
        assert told.startswith(note.format(data=data)) and "the command below scores val" in told


def test_a_users_own_data_set_without_test_split_is_not_told_to_re_convert(
    tiny_dataset: Path, tmp_path: Path
):
    from detection.train import TrainResult, format_summary

    # a Roboflow export or a data.yaml written by hand, without test: (stock 'yolo train' takes it): the
    # note said "the test split is empty ... re-convert with a test fraction", which it cannot
    data = tmp_path / "data.yaml"
    own = yaml.safe_load((tiny_dataset / "data.yaml").read_text())
    data.write_text(yaml.safe_dump({key: value for key, value in own.items() if key != "test"}))
    weights = tmp_path / "run" / "weights" / "best.pt"
    *_, told, line = format_summary(
        TrainResult(save_dir=weights.parent, weights=weights, imgsz=64), data
    ).splitlines()
    assert told == (
        "  NOTE: the data file has no test split: the command below scores val, on which best.pt was chosen "
        "(an optimistic figure); give it a 'test:' of images held out of train and val for an unbiased one"
    )
    assert line.endswith(" --split val")


def test_runs_go_to_runs_detect_by_default() -> None:
    assert default_config()["project"] == "runs/detect"


def test_the_defaults_pass_their_own_checks() -> None:
    assert check_config(default_config()) == default_config()
    assert set(OWN_DEFAULTS) < set(default_config())


def test_check_config_refuses_keys_nobody_declared() -> None:
    with pytest.raises(UserError, match="unknown config key 'epoch'"):
        check_config({**default_config(), "epoch": 3})


@pytest.mark.parametrize("value", [0, -2, 1.5, 16.5, True, float("nan"), float("inf"), "16", None])
def test_batch_refuses_what_ultralytics_does_not_document(value) -> None:
    with pytest.raises(UserError, match="config key 'batch' needs an integer >= 1"):
        check_batch(value)


def test_a_bad_value_stops_the_cli_before_any_folder(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "lr0=true")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: override 'lr0=true': config key 'lr0' needs a number > 0")
        and err.count("\n") == 1
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (  # was a traceback; checked after the config, named as the config's own checks are
            "project={file}",
            "error: override 'project={file}': config key 'project': {file} is a file, not a folder",
        ),
        (  # in the trainer; then ultralytics' "Invalid CUDA 'device=foo' requested"
            "device=foo",
            "error: override 'device=foo': config key 'device': unknown device 'foo': use cpu, cuda, cuda:N,",
        ),
        pytest.param(  # was ultralytics' "Invalid CUDA 'device=0' requested. Use 'device=cpu' ..."
            "device=cuda",
            "error: override 'device=cuda': config key 'device' (cuda): no CUDA device is visible on this "
            "machine (torch sees none); pass cpu\n",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
        pytest.param(  # ultralytics found no idle GPU and trained on the CPU, after NVML warnings
            "device=-1",
            "error: override 'device=-1': config key 'device' (-1): no CUDA device is visible on this "
            "machine (torch sees none); pass cpu\n",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
        pytest.param(  # trained on the CPU without a word
            "device=mps",
            "error: override 'device=mps': config key 'device' (mps): Apple's MPS backend is not available "
            "on this machine",
            marks=pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS"),
        ),
    ],
)
def test_a_bad_project_or_device_stops_before_any_model(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, override: str, expected: str
) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("kept\n")
    monkeypatch.setattr("detection.train.start_model", lambda config: pytest.fail("model built"))
    overrides = [*tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml"), override.format(file=file)]
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected.format(file=file)) and err.count("\n") == 1
    assert file.read_text() == "kept\n"


@pytest.mark.parametrize(
    "device",
    # as typed on the command line, and as a config file's YAML gives them (an int, a list of GPUs)
    # none and empty parts (0,) too: ultralytics drops them; they were refused as unknown devices
    ["cpu", "CPU", "cuda", "cuda:0", "0", "0,1", "cuda:0,1", "[0, 1]", 0, [0, 1], "-1", "mps", "0,", "0,,1"],
)
def test_every_device_spelling_ultralytics_takes_passes_the_name_check(device: object) -> None:
    # the name check refuses only words that name no device; a CUDA device or MPS this machine lacks is
    # still refused, but for that, not as an unknown name
    try:
        check_device(device, what="--device")
    except UserError as error:
        assert "unknown device" not in str(error)
        assert any(reason in str(error) for reason in ("no CUDA device", "CUDA device 1 asked for", "MPS"))


@pytest.mark.parametrize("device", [None, "", "none", "None", " NONE "])
def test_none_is_ultralytics_own_pick(device: object) -> None:
    # device=none (ultralytics drops the word: its default, the first GPU, else the CPU) was 'unknown device'
    check_device(device)
    check_device(device, what="--device")


@pytest.mark.parametrize(
    ("device", "idle", "runs"),
    [
        ("-1", [], "on its default, torch's current CUDA device, GPU 0, and is recorded as 0"),
        ("cuda:-1", [], "on its default, torch's current CUDA device, GPU 0, and is recorded as 0"),
        ("0,-1", [], "on GPU 0 alone"),
        ("-1,-1", [1], "on GPU 1 alone"),
        ("-1", [1], None),  # found one: nothing to say
    ],
)
def test_an_idle_gpu_that_ultralytics_does_not_find_is_named_in_a_note(
    device: str, idle: list[int], runs: str | None, monkeypatch, capsys
) -> None:
    # with CUDA but no idle GPU ultralytics dropped the -1 and ran on its default, after a warning that
    # said nothing of it
    asked = idle_gpus_found(monkeypatch, idle)
    check_device(device, what="--device")
    expected = ",".join(["0"] * device.startswith("0,") + [str(index) for index in idle])
    assert asked == [expected]  # the indices found, not a second search
    err = capsys.readouterr().err
    if runs is None:
        assert err == ""
    else:
        assert err == (
            f"note: --device {device}: ultralytics' search found no idle GPU for -1 now (none with 20% of "
            f"its memory free, or NVML unavailable); a -1 with none found is dropped: it runs {runs}\n"
        )


@pytest.mark.parametrize(
    ("device", "idle", "handed"), [("-1", [], "0"), ("-1,-1", [1], "1"), ("0", [1], "0")]
)
def test_training_is_handed_the_idle_gpus_found_not_the_minus_one(
    device: str, idle: list[int], handed: str, monkeypatch, capsys
) -> None:
    # the note named where the first search's GPUs were, then ultralytics' trainer searched for -1 again;
    # with none found config.yaml recorded device: '' (ultralytics' default), which a --config rerun on a
    # machine without CUDA took for the CPU, where the GPU 0 that trained is refused
    idle_gpus_found(monkeypatch, idle)
    checked = check_config({**default_config(), "device": device})
    assert checked["device"] == handed
    assert f"\ndevice: '{handed}'\n" in yaml_text(recorded_config(checked))


@pytest.mark.parametrize(
    ("what", "seen", "expected"),
    [
        (  # NVML sees every GPU, torch only those CUDA_VISIBLE_DEVICES shows
            "--device",
            1,
            "--device -1 (made 3 by ultralytics' search for idle GPUs): CUDA device 3 asked for, but torch "
            "sees 1 here (0); pass one of those, or cpu",
        ),
        (
            "config key 'device'",
            4,
            "config key 'device' (-1, made 3 by ultralytics' search for idle GPUs): Invalid CUDA 'device=3' "
            "requested.",
        ),
    ],
)
def test_a_refusal_after_the_search_for_idle_gpus_names_the_device_as_typed(
    what: str, seen: int, expected: str, monkeypatch, capsys
) -> None:
    # was '--device 3: ...' and 'Invalid CUDA 'device=3' requested.', a 3 the user never typed
    from ultralytics.utils import autodevice, torch_utils

    def refused(device: object, **kwargs: object) -> torch.device:
        raise ValueError(f"Invalid CUDA 'device={device}' requested.\nUse 'device=cpu' or pass valid CUDA")

    monkeypatch.setattr("common.devices.cuda_devices_visible", lambda: seen)
    monkeypatch.setattr(autodevice.GPUInfo, "__init__", lambda self: None)  # no NVML asked
    monkeypatch.setattr(autodevice.GPUInfo, "__del__", lambda self: None)
    monkeypatch.setattr(autodevice.GPUInfo, "select_idle_gpu", lambda self, count, **kwargs: [3])
    monkeypatch.setattr(torch_utils, "select_device", refused)
    with pytest.raises(UserError) as caught:
        check_device("-1", what=what)
    assert str(caught.value) == expected


@pytest.mark.parametrize("device", ["-1", -1, "cuda:-1", "0,-1", "-1,-1", [0, -1]])
def test_an_idle_gpu_is_refused_without_cuda(device: object, monkeypatch, capsys) -> None:
    # ultralytics looked for one through NVML, found none and ran on the CPU, with NVML warnings
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        UserError,
        match=r"^--device .*: no CUDA device is visible on this machine \(torch sees none\); pass cpu$",
    ):
        check_device(device, what="--device")
    assert "NVML" not in capsys.readouterr().err


@pytest.mark.parametrize("device", ["foo", "gpu", "auto", "tpu", "0.0", "cuda:x", True])
def test_a_word_that_names_no_device_is_refused_as_such(device: object) -> None:
    # was ultralytics' "Invalid CUDA 'device=foo' requested"; 'tpu' passed its select_device unchecked
    with pytest.raises(UserError, match=r"^config key 'device': unknown device .*: use cpu, cuda, cuda:N,"):
        check_device(device)


def test_a_project_file_set_in_the_config_file_names_that_file(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("kept\n")
    own = tmp_path / "run.yaml"
    own.write_text(yaml.safe_dump({"model": "yolo11n.yaml", "project": str(file)}))
    monkeypatch.setattr("detection.train.start_model", lambda config: pytest.fail("model built"))
    overrides = [o for o in tiny_run(tiny_dataset, tmp_path) if not o.startswith("project=")]
    assert main(["--config", str(own), *overrides]) == 2
    err = capsys.readouterr().err
    assert err == f"error: config file {own}: config key 'project': {file} is a file, not a folder\n"
    assert file.read_text() == "kept\n"


def test_a_class_named_good_stops_before_any_model(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "copy"
    names = {**yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"], 1: "good"}
    copy_with_names(tiny_dataset, copy, names)  # --names-template good: the detector called defects good
    assert main(["--config", str(YOLO11_CONFIG), *tiny_run(copy, tmp_path, "model=yolo11n.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: data file {copy / 'data.yaml'} has a class named 'good'")
    assert err.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_a_copied_data_set_or_a_project_inside_the_data_set_is_refused(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr("detection.train.start_model", lambda config: pytest.fail("model built"))
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy, symlinks=True)
    # the copy's path: names the original, which ultralytics trained on instead, silently
    overrides = [*tiny_run(copy, tmp_path, "model=yolo11n.yaml")]
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    own = f"not its own folder {copy.resolve()} (moved or copied?)"
    expected = f"error: {copy / 'data.yaml'} has path: {tiny_dataset}, {own}"
    assert err.startswith(expected) and err.count("\n") == 1
    # runs inside the data set were in the way of its re-conversion with --overwrite
    overrides = [*tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml"), f"project={tiny_dataset / 'runs'}"]
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    inside = (
        f"output folder {(tiny_dataset / 'runs').resolve()} is inside the input tree "
        f"{tiny_dataset.resolve()}; choose another value for config key 'project'\n"
    )
    assert err == f"error: override '{overrides[-1]}': {inside}"  # named where it was set, as other keys
    own = tmp_path / "run.yaml"  # set in the --config file
    own.write_text(yaml.safe_dump({"model": "yolo11n.yaml", "project": str(tiny_dataset / "runs")}))
    overrides = [o for o in tiny_run(tiny_dataset, tmp_path) if not o.startswith("project=")]
    assert main(["--config", str(own), *overrides]) == 2
    assert capsys.readouterr().err == f"error: config file {own}: {inside}"
    assert not (tmp_path / "runs").exists() and not (tiny_dataset / "runs").exists()


def test_an_error_after_the_config_file_changed_is_named_as_the_file_was_read(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # train() can download weights before a check fails: the --config file may be edited or broken by then,
    # and its read error stood in for the real one
    own = tmp_path / "run.yaml"
    own.write_text(yaml.safe_dump({"model": "yolo11n.yaml"}))

    def start_model(config):
        own.write_text("model: [\n")
        raise UserError("config key 'model': cannot load the weights")

    monkeypatch.setattr("detection.train.start_model", start_model)
    overrides = [o for o in tiny_run(tiny_dataset, tmp_path) if not o.startswith("model=")]
    assert main(["--config", str(own), *overrides]) == 2
    err = capsys.readouterr().err
    assert err == f"error: config file {own}: config key 'model': cannot load the weights\n"


def test_cli_usage_errors_are_one_line(capsys) -> None:
    assert main(["--config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --config: expected one argument") and err.count("\n") == 1


def test_overrides_may_stand_on_both_sides_of_config(tmp_path: Path, capsys) -> None:
    # "epochs=1 --config C imgsz=0" was "unrecognized arguments: imgsz=0"
    code = main(["epochs=1", "--config", str(YOLO11_CONFIG), "imgsz=0", f"project={tmp_path}/runs"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == "error: override 'imgsz=0': config key 'imgsz' needs an integer in [32, 8192], got 0\n"
    assert not (tmp_path / "runs").exists()


def test_train_checks_a_config_it_is_handed(tiny_dataset: Path, tmp_path: Path) -> None:
    config = build_config(YOLO11_CONFIG, tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml"))
    with pytest.raises(UserError, match="config key 'batch'"):
        train({**config, "batch": 0})
    assert not (tmp_path / "runs").exists()


# --- failing before training ---------------------------------------------------------------------


def test_no_encoder_and_no_table_fails_early_with_one_line(
    tiny_dataset: Path, tmp_path: Path, capsys, no_clip, network_attempts
) -> None:
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolov8n-worldv2.yaml")
    code = main(["--config", str(WORLD_CONFIG), *overrides])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: YOLO-World needs text embeddings for its class names ('bent', 'color'")
    assert "'clip' package is not installed" in err and "no table given (text_embeddings=FILE)" in err
    assert not (tmp_path / "runs").exists()  # nothing started
    assert network_attempts == []


def test_a_runs_open_vocabulary_checkpoint_without_a_table_names_the_runs_table(
    tiny_dataset: Path, tmp_path: Path, capsys, no_clip
) -> None:
    # a YOLO-World best.pt given to the plain YOLO11n config stopped for want of a table; its run has one
    from ultralytics import YOLOWorld

    run = tmp_path / "world_run"
    (run / "weights").mkdir(parents=True)
    YOLOWorld("yolov8n-worldv2.yaml").save(run / "weights" / "best.pt")
    save_table(fixed_embeddings(["bent", "color", "flip", "scratch"]), run / "text_embeddings.pt")
    overrides = tiny_run(tiny_dataset, tmp_path, f"model={run / 'weights' / 'best.pt'}")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: YOLO-World needs text embeddings")
    assert err.endswith(f"; the checkpoint's run trained with text_embeddings={run / 'text_embeddings.pt'}\n")
    missing = tmp_path / "missing.pt"  # a table given that fails: its own error, no hint of another
    assert main(["--config", str(YOLO11_CONFIG), *overrides, f"text_embeddings={missing}"]) == 2
    assert capsys.readouterr().err == f"error: text-embedding table not found: {missing}\n"
    (run / "weights").rename(run / "saved")  # not a run's weights/ folder: its parent is no run
    moved = tiny_run(tiny_dataset, tmp_path, f"model={run / 'saved' / 'best.pt'}")
    assert main(["--config", str(YOLO11_CONFIG), *moved]) == 2
    assert "the checkpoint's run trained with" not in capsys.readouterr().err
    (run / "saved").rename(run / "weights")
    (run / "text_embeddings.pt").unlink()  # a checkpoint without its run's table: no hint
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    assert "the checkpoint's run trained with" not in capsys.readouterr().err


def test_the_ctrl_c_command_of_an_open_vocabulary_run_names_its_table(tmp_path: Path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "last.pt").write_bytes(b"")
    assert stopped_note(tmp_path).endswith(" exist_ok=false")  # plain YOLO: no table
    (tmp_path / "text_embeddings.pt").write_bytes(b"")
    table = tmp_path / "text_embeddings.pt"
    assert stopped_note(tmp_path).endswith(f" exist_ok=false text_embeddings={table}")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("yolov8s-worldv2.pt", "cannot load model 'yolov8s-worldv2.pt'"),  # ultralytics' download, offline
        ("no-such-model.yaml", "cannot load model 'no-such-model.yaml'"),
    ],
)
def test_unloadable_models_are_one_line_errors(tiny_dataset, tmp_path, capsys, model, expected) -> None:
    assert main(["--config", str(WORLD_CONFIG), *tiny_run(tiny_dataset, tmp_path, f"model={model}")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {expected}") and err.count("\n") == 1
    if model.endswith(".pt"):  # offline: it named the URL, not where the file is looked for
        from ultralytics.utils import SETTINGS

        assert err.endswith(
            f"Environment may be offline. Download it where there is internet and put it in "
            f"{SETTINGS['weights_dir']} (ultralytics' weights folder) or the working folder, "
            "or give its path\n"
        )


@pytest.mark.parametrize(
    ("pretrained", "expected"),
    [
        # ultralytics read pretrained= only once training started: a traceback, a run folder without weights
        ("yolov8s-worldv2.pt", "cannot get yolov8s-worldv2.pt: Download failure for https://"),  # offline
        ("no-such-weights.pt", "no weights file no-such-weights.pt (not on disk, nor one of ultralytics'"),
        ("yolo11n.yaml", "yolo11n.yaml is not weights (.pt): it names the weights a yaml model starts from"),
        ("text", "cannot load model '{file}': "),  # a text file named .pt: ultralytics' TypeError
    ],
)
def test_unusable_pretrained_weights_are_one_line_errors_before_the_run_folder(
    tiny_dataset, tmp_path, capsys, pretrained, expected
) -> None:
    if pretrained == "text":
        pretrained = tmp_path / "notes.pt"
        pretrained.write_text("not weights")
        expected = expected.format(file=pretrained)
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", f"pretrained={pretrained}")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    source = f"override 'pretrained={pretrained}': "  # checked once the config is built, named as its checks
    assert err.startswith(f"error: {source}config key 'pretrained': {expected}") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kind", BAD_WEIGHTS)
def test_weights_that_are_not_checkpoints_are_one_line_errors(tiny_dataset, tmp_path, capsys, kind) -> None:
    weights = write_bad_weights(tmp_path / "old_run" / "best.pt", kind)
    assert main(["--config", str(YOLO11_CONFIG), *tiny_run(tiny_dataset, tmp_path, f"model={weights}")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot load model '{weights}': ") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("freeze", "expected"),
    [
        # every layer frozen: ultralytics' RuntimeError traceback, after the run folder was made
        ("99", "config key 'freeze' (99) freezes all 24 layers of yolo11n.yaml: nothing would train"),
        ("24", "config key 'freeze' (24) freezes all 24 layers of yolo11n.yaml: nothing would train"),
        # a layer the model lacks: nothing frozen, silently
        ("[0, 30]", "config key 'freeze' names layer(s) [30] that yolo11n.yaml lacks (its layers are 0-23)"),
    ],
)
def test_a_freeze_beyond_the_models_layers_is_refused_before_the_run_folder(
    tiny_dataset, tmp_path, capsys, freeze: str, expected: str
) -> None:
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", f"freeze={freeze}")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: override 'freeze={freeze}': {expected}") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("freeze", ["23", "[0, 22]"])
def test_a_freeze_that_leaves_the_head_trainable_passes(freeze: str) -> None:
    check_freeze_layers(yaml.safe_load(freeze), layers=24, model="yolo11n.yaml")


@pytest.mark.parametrize("freeze", [[24], [0, 24, 25]])
def test_a_listed_layer_one_past_the_last_is_refused(freeze: list[int]) -> None:
    # layers 0-23: index 24 is the first the model lacks, not its last
    with pytest.raises(UserError, match=r"names layer\(s\) \[24(, 25)?\] that yolo11n\.yaml lacks"):
        check_freeze_layers(freeze, layers=24, model="yolo11n.yaml")


@pytest.mark.parametrize(("model", "task"), [("yolo11n-seg", "segment"), ("yolo11n-cls", "classify")])
def test_a_model_of_another_task_is_refused_before_the_run_folder(
    tiny_dataset, tmp_path, capsys, model: str, task: str
) -> None:
    from ultralytics import YOLO

    weights = tmp_path / f"{model}.pt"
    YOLO(f"{model}.yaml").save(weights)  # ultralytics' ValueError traceback, after the run folder was made
    for given in (weights, f"{model}.yaml"):
        overrides = tiny_run(tiny_dataset, tmp_path, f"model={given}")
        assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
        err = capsys.readouterr().err
        source = f"override 'model={given}': config key 'model'"
        assert err.startswith(f"error: {source}: {given} holds a '{task}' model, not a detection")
        assert err.count("\n") == 1 and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("model", "task"), [("yolo11n-obb", "obb"), ("yolo11n-pose", "pose")])
def test_pretrained_weights_of_another_task_are_refused_as_model_is(
    tiny_dataset, tmp_path, capsys, model: str, task: str
) -> None:
    from ultralytics import YOLO

    weights = tmp_path / f"{model}.pt"
    YOLO(f"{model}.yaml").save(weights)  # ultralytics loaded what fitted into the detector, without a word
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", f"pretrained={weights}")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: override 'pretrained={weights}': config key 'pretrained': {weights} holds a '{task}' "
        "model, not a detection model "
        "(detection.train fine-tunes detectors: yolo11n.pt, a YOLO-World or YOLOE config, a best.pt)\n"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("model", ["yolo11n-seg", "yolo11n-cls"])
def test_pretrained_segmentation_and_classifier_weights_pass_the_task_check(tmp_path, model: str) -> None:
    from ultralytics import YOLO

    weights = tmp_path / f"{model}.pt"
    # a detector with a mask branch: its detection head transfers; a classifier: its ImageNet backbone
    YOLO(f"{model}.yaml").save(weights)
    assert resolve_pretrained(str(weights), download=False) == str(weights)


@pytest.mark.parametrize(
    ("trained", "by_name", "expected"),
    [
        # one class renamed: ultralytics maps the others by name, the renamed one starts untrained
        (["bent", "colour", "flip", "scratch"], True, "by name, so 'color' starts untrained (what it learnt "
         "as 'colour' is dropped); give the data set the checkpoint's names to keep it"),
        # no name in common: by position, each class starts as what it learnt under the old name
        (["a", "b", "flip2", "scratch2"], True, "by position, so it starts 'bent' as what it learnt as 'a', "
         "'color' as what it learnt as 'b', 'flip' as what it learnt as 'flip2', 'scratch' as what it learnt "
         "as 'scratch2', and saves the trained model with the data set's names"),
        # cls_remap=false: by position, so a new order swaps what classes learnt
        (["color", "bent", "flip", "scratch"], False, "by position, so it starts 'bent' as what it learnt as "
         "'color', 'color' as what it learnt as 'bent', and saves"),
        # two renamed: the verb agrees, and both old names are dropped
        (["bent", "colour", "flip", "scratches"], True, "by name, so 'color', 'scratch' start untrained "
         "(what it learnt as 'colour', 'scratches' is dropped)"),
        (["color", "bent", "flip", "scratch"], True, None),  # the same classes reordered: mapped by name
        ([" Bent", "COLOR", "flip", "scratch"], True, None),  # as ultralytics matches names
        (NAMES, False, None),
        (["bent", "colour", "flip"], True, None),  # another count: the class rows are rebuilt
    ],
)  # fmt: skip
def test_weights_trained_on_other_class_names_get_a_note(trained, by_name, expected) -> None:
    note = class_names_note(trained, NAMES, weights="model=last.pt", by_name=by_name)
    if expected is None:
        assert note is None
    else:
        assert note.startswith(
            f"note: model=last.pt was trained on classes {trained} and the data set's are "
        )
        assert f"ultralytics carries the head's classes over {expected}" in note


@pytest.mark.parametrize(("key", "remap"), [("model", True), ("pretrained", True), ("model", False)])
def test_training_on_from_weights_with_a_renamed_class_prints_the_note_before_the_run(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, key: str, remap: bool
) -> None:
    from ultralytics import YOLO

    yolo = YOLO("yolo11n.yaml")
    yolo.model.names = dict(enumerate(["bent", "colour", "flip", "scratch"]))  # 'color' since renamed
    yolo.save(tmp_path / "last.pt")

    def stop(*args: object) -> None:
        raise KeyboardInterrupt  # the note is printed before the run folder is made

    monkeypatch.setattr("detection.train.start_run", stop)
    model = "model=yolo11n.yaml" if key == "pretrained" else f"model={tmp_path / 'last.pt'}"
    extra = [f"pretrained={tmp_path / 'last.pt'}"] if key == "pretrained" else []
    extra += [] if remap else ["cls_remap=false"]  # the note follows the run's own cls_remap
    with pytest.raises(KeyboardInterrupt):
        train(build_config(YOLO11_CONFIG, tiny_run(tiny_dataset, tmp_path, model, *extra)))
    out = capsys.readouterr().out
    assert (
        f"note: {key}=last.pt was trained on classes ['bent', 'colour', 'flip', 'scratch'] and the data "
        in out
    )
    if remap:
        assert "so 'color' starts untrained" in out
    else:
        assert "by position, so it starts 'color' as what it learnt as 'colour', and saves" in out


def test_an_open_vocabulary_checkpoint_of_other_class_names_gets_no_class_names_note(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, no_clip
) -> None:
    # YOLO-World scores a class by its name's vector: a renamed class is a new name, not a moved row
    from ultralytics import YOLOWorld

    world = YOLOWorld("yolov8n-worldv2.yaml")
    world.model.names = dict(enumerate(["bent", "colour", "flip", "scratch"]))
    world.save(tmp_path / "last.pt")
    table = save_table(fixed_embeddings(NAMES), tmp_path / "text_embeddings.pt")

    def stop(*args: object) -> None:
        raise KeyboardInterrupt  # the note, if any, comes before the run

    monkeypatch.setattr("detection.train.start_run", stop)
    overrides = tiny_run(tiny_dataset, tmp_path, f"model={tmp_path / 'last.pt'}", f"text_embeddings={table}")
    with pytest.raises(KeyboardInterrupt):
        train(build_config(YOLO11_CONFIG, overrides))
    assert "was trained on classes" not in capsys.readouterr().out


def test_the_weights_a_run_starts_from_are_named_by_their_file_whatever_its_suffix_case() -> None:
    from types import SimpleNamespace

    from detection.train import trained_names

    yolo = SimpleNamespace(names={0: "dent"})  # a checkpoint copied from another system: BEST.PT
    assert trained_names("runs/BEST.PT", None, yolo) == ("model=BEST.PT", ["dent"])
    assert trained_names("yolo11n.yaml", None, yolo) is None  # from scratch: no trained names


def test_12_bit_data_in_the_train_split_is_one_warning_before_the_run(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    data = copy_with_names(tiny_dataset, tmp_path / "copy", dict(enumerate(NAMES)))
    camera = as_12_bit_data(split_images(data, "train")[0])  # the copy's link replaced: the source stays

    def stop(*args: object) -> None:
        raise KeyboardInterrupt  # ultralytics never saw it: the warning came before the run folder

    monkeypatch.setattr("detection.train.start_run", stop)
    overrides = [*tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml"), f"data={data}"]
    with pytest.raises(KeyboardInterrupt):
        train(build_config(YOLO11_CONFIG, overrides))
    err = capsys.readouterr().err
    assert err.startswith(
        f"warning: 1 photo is 16-bit with every value below 4096 (12-bit camera data?), e.g. {camera}"
    )
    assert err.count("\n") == 1 and "(values up to " in err


@pytest.mark.parametrize(("name", "kind"), [("notes.txt", "a .txt file"), ("weights", "a folder")])
def test_a_model_path_that_is_neither_weights_nor_config_is_refused(
    tiny_dataset, tmp_path, capsys, name, kind
) -> None:
    model = tmp_path / name
    model.mkdir() if kind == "a folder" else model.write_text("not a model")
    assert main(["--config", str(YOLO11_CONFIG), *tiny_run(tiny_dataset, tmp_path, f"model={model}")]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: override 'model={model}': config key 'model': {model} is {kind}, not weights (.pt) "
        "or a model config (.yaml)\n"
    )
    assert not (tmp_path / "runs").exists()  # ultralytics' TypeError came after the run folder was made


@pytest.fixture(scope="module")
def no_val_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny data set converted with ``--split 1 0 0``: its val folder is empty."""
    return make_tiny_dataset(tmp_path_factory.mktemp("no-val"), ratios=(1.0, 0.0, 0.0))


def test_an_empty_val_split_stops_before_training(no_val_dataset: Path, tmp_path: Path, capsys) -> None:
    overrides = tiny_run(no_val_dataset, tmp_path, "model=yolo11n.yaml")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no images in the 'val' split of ") and err.count("\n") == 1
    assert "re-convert the data set with --split ratios" in err
    assert not (tmp_path / "runs").exists()


def test_a_users_own_data_set_without_val_is_not_told_to_re_convert(tiny_dataset: Path, tmp_path) -> None:
    # a Roboflow export without a valid/ set: "re-convert the data set with --split ratios", it cannot
    folder = tmp_path / "own"
    shutil.copytree(tiny_dataset, folder, symlinks=True, ignore=shutil.ignore_patterns("splits.json"))
    data = yaml.safe_load((tiny_dataset / "data.yaml").read_text())
    own = folder / "data.yaml"
    own.write_text(yaml.safe_dump({**{k: v for k, v in data.items() if k != "val"}, "path": str(folder)}))
    with pytest.raises(UserError) as error:
        check_training_splits(own)
    assert str(error.value) == (
        f"data file {own} has no 'val' split: training needs images in both train and val; give the data "
        "file a 'val:' folder or list of images (val: held out of train)"
    )


def test_a_train_split_without_any_label_file_is_one_line(tiny_dataset: Path, tmp_path) -> None:
    # labels kept elsewhere than images/ -> labels/: ultralytics' "No labels found" ValueError traceback
    folder = tmp_path / "own"
    shutil.copytree(tiny_dataset, folder, symlinks=True, ignore=shutil.ignore_patterns("labels"))
    data = yaml.safe_load((tiny_dataset / "data.yaml").read_text())
    (folder / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(folder)}))
    first = split_images(folder / "data.yaml", "train")[0]
    with pytest.raises(UserError) as error:
        check_training_splits(folder / "data.yaml")
    count = len(list((folder / "images" / "train").iterdir()))
    label = folder / "labels" / "train" / first.with_suffix(".txt").name
    assert str(error.value) == (
        f"none of the {count} images of the 'train' split of {folder / 'data.yaml'} has a label file "
        f"(ultralytics reads {first.name}'s from {label}; there is no folder {label.parent}: moved or "
        "misspelt?): training needs them, an empty .txt for each image without defects"
    )


def test_a_data_yaml_pointing_nowhere_is_not_blamed_on_split_ratios(tiny_dataset: Path, tmp_path) -> None:
    data = yaml.safe_load((tiny_dataset / "data.yaml").read_text())
    moved = tmp_path / "data.yaml"
    moved.write_text(yaml.safe_dump({**data, "path": str(tmp_path / "nowhere")}))  # the data set was moved
    with pytest.raises(UserError) as error:
        check_training_splits(moved)
    message = str(error.value)
    assert message.startswith(f"'train: images/train' of {moved} does not exist ({tmp_path / 'nowhere'}")
    assert "--split" not in message  # re-converting with other ratios would not help


def test_training_splits_of_a_good_data_set_pass(tiny_dataset: Path) -> None:
    check_training_splits(tiny_dataset / "data.yaml")


def test_a_training_list_naming_an_image_that_is_gone_is_refused(tiny_dataset: Path, tmp_path) -> None:
    # ultralytics dropped the missing image with a warning and trained on the rest
    data = yaml.safe_load((tiny_dataset / "data.yaml").read_text())
    images = sorted((tiny_dataset / "images" / "train").iterdir())
    listed = tmp_path / "train.txt"
    listed.write_text("".join(f"{p}\n" for p in [*images, tmp_path / "gone.png"]))
    edited = tmp_path / "data.yaml"
    edited.write_text(yaml.safe_dump({**data, "path": str(tiny_dataset), "train": str(listed)}))
    with pytest.raises(UserError) as error:
        check_training_splits(edited)
    assert str(error.value).startswith(
        f"1 of the {len(images) + 1} images the 'train' split of {edited} lists do not exist "
        f"({tmp_path / 'gone.png'})"
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # ultralytics' auto optimizer trained at its own AdamW lr 0.002; config.yaml said lr0 0.0001
        (["lr0=0.0001"], "note: lr0=0.0001 will not be used: optimizer=auto picks its own learning rate"),
        (["lr0=0.001", "momentum=0.8"], "note: lr0=0.001 and momentum=0.8 will not be used"),
        # ultralytics reads the name in any case: Auto is auto
        (["lr0=0.0001", "optimizer=Auto"], "note: lr0=0.0001 will not be used: optimizer=auto picks"),
        (["lr0=0.0001", "optimizer=AdamW"], None),
        (["optimizer=auto"], None),  # the defaults: nothing given that auto ignores
    ],
)
def test_a_learning_rate_that_optimizer_auto_ignores_gets_a_note(
    tiny_dataset: Path, overrides: list[str], expected: str | None
) -> None:
    note = optimizer_note(build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", *overrides]))
    assert note == expected if expected is None else note.startswith(expected)


def test_rotating_box_labels_gets_a_note_and_polygon_labels_do_not(tiny_dataset: Path, tmp_path) -> None:
    data = tiny_dataset / "data.yaml"

    def note(data: Path, *overrides: str) -> str | None:
        return rotation_note(build_config(YOLO11_CONFIG, [f"data={data}", *overrides]), data)

    assert not has_polygon_labels(data)
    assert "degrees=180.0 turns box labels" in note(data)  # synthetic_nut's policy: degrees 180
    assert "--task segment" in note(data)
    assert note(data, "degrees=0") is None
    assert "NOTE: shear=2 turns" in note(data, "degrees=0", "shear=2")
    assert "turns box labels" in note(data, "tile=128")  # tiles of box labels are box labels

    polygons = tmp_path / "polygons"
    ratios = (0.5, 0.5, 0.0)
    convert(
        ConvertConfig(tiny_dataset.parent / "mvtec", polygons, task="segment", ratios=ratios, progress=False)
    )
    assert has_polygon_labels(polygons / "data.yaml")
    assert note(polygons / "data.yaml") is None
    assert note(polygons / "data.yaml", "tile=128") is None  # and tiles of polygons are polygons


# --- 1-epoch runs, network blocked ---------------------------------------------------------------


@pytest.mark.slow
def test_yolo_world_trains_offline_with_a_table(
    tiny_dataset: Path, tmp_path: Path, table: Path, capsys, monkeypatch, network_attempts
) -> None:
    def clip_loader(*args, **kwargs):
        raise AssertionError("WorldModel.get_text_pe (CLIP) was called")

    monkeypatch.setattr(WorldModel, "get_text_pe", clip_loader)
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolov8n-worldv2.yaml", f"text_embeddings={table}")
    assert main(["--config", str(WORLD_CONFIG), *overrides]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "yolov8n-worldv2_synthetic_nut"
    assert f"Results in {run}" in out and "closed-set detector" in out
    for name in ("weights/best.pt", "weights/last.pt", "args.yaml", "config.yaml", "text_embeddings.pt"):
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "config.yaml").read_text())["text_embeddings"] == str(table)
    assert json.loads((run / "text_embeddings.json").read_text())["open_vocabulary"] is False

    # The saved model is a stock WorldModel whose class embeddings are the table's (saved in fp16).
    model = torch.load(run / "weights" / "best.pt", weights_only=False)["model"]
    assert type(model) is WorldModel and model.model[-1].nc == len(NAMES)
    expected = torch.stack([torch.load(table)[n] for n in NAMES]).unsqueeze(0)
    assert torch.allclose(model.txt_feats.float(), expected, atol=1e-3)
    assert not list((tiny_dataset / "images").glob("text_embeddings*"))  # no stock CLIP cache written

    # The checkpoint evaluates with its stored class vectors: no text encoder, no network.
    data, best = tiny_dataset / "data.yaml", run / "weights" / "best.pt"
    report = evaluate(data, best, split="val", imgsz=64, device="cpu", out=tmp_path / "eval", plots=False)
    assert [row["Class"] for row in report.per_class] == NAMES and report.coco is not None
    assert report.image_level.n_images == 6
    assert not list(tiny_dataset.rglob("*.cache"))  # ultralytics' label cache: the data set is read only
    assert network_attempts == []


@pytest.mark.slow
def test_plain_yolo_trains_offline_through_the_same_entry_point(
    tiny_dataset: Path, tmp_path: Path, capsys, no_clip, network_attempts
) -> None:
    result = train(build_config(YOLO11_CONFIG, tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml")))
    assert result.weights == tmp_path / "runs" / "yolo11n_synthetic_nut" / "weights" / "best.pt"
    assert result.weights.is_file() and result.embeddings is None
    assert "metrics/mAP50(B)" in result.metrics
    assert "text embeddings" not in capsys.readouterr().out
    data, run = tiny_dataset / "data.yaml", result.save_dir
    train_photos = split_images(data, "train")
    assert sorted(read_trained_images(run).values()) == sorted(p.name for p in train_photos)

    def notes(weights: Path, name: str) -> list[str]:
        options = {"split": "val", "imgsz": 64, "device": "cpu", "out": tmp_path / name, "plots": False}
        return evaluate(data, weights, **options).notes

    assert not any("trained on" in note for note in notes(result.weights, "eval"))
    val_photo = split_images(data, "val")[0]
    record_trained_images(run, [*train_photos, val_photo])  # as if val held a train photo: converted again
    warning = f"warning: 1 of the 6 val photos ({val_photo.name}) is a photo the detector was trained on"
    assert any(note.startswith(warning) for note in notes(result.weights, "eval-2"))
    copied = Path(shutil.copy(result.weights, tmp_path / "best.pt"))  # away from its run: found by its args
    assert any(note.startswith(warning) for note in notes(copied, "eval-3"))
    assert network_attempts == []


@pytest.mark.parametrize(
    ("imgsz", "strides", "expected"),
    [
        (100, [8, 16, 32], 128),
        (64, [8, 16, 32], 64),
        (100, [8, 16, 32, 64], 128),
        (40, [8, 16], 64),
        (96, None, 96),  # a model that records no stride: 32, as ultralytics assumes
        (0, [8, 16, 32], 32),  # never below one stride
    ],
)
def test_imgsz_is_rounded_up_as_ultralytics_trains(
    imgsz: int, strides: list[int] | None, expected: int
) -> None:
    from types import SimpleNamespace

    model = SimpleNamespace() if strides is None else SimpleNamespace(stride=torch.tensor(strides).float())
    assert stride_imgsz(imgsz, model) == expected  # at least 32, as ultralytics' check_imgsz floors it


@pytest.mark.slow
def test_train_prints_its_augmentation_and_one_line_for_the_frozen_layers(
    tiny_dataset: Path, tmp_path: Path, capsys, no_clip
) -> None:
    # ultralytics' 'Freezing layer' line per tensor is dropped (FreezeLog): its one summary line says it
    train(build_config(YOLO11_CONFIG, tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "freeze=2")))
    out = capsys.readouterr().out
    assert re.search(r"^frozen: \d+ tensors of layers 0, 1, 23 \(freeze, and \.dfl\)$", out, re.MULTILINE)
    assert "Freezing layer" not in out
    # and, before the epochs, the augmentation it trains with (print_training_notes)
    assert re.search(r"^augmentation(: ultralytics' defaults| policy .* for )", out, re.MULTILINE)


@pytest.mark.slow
def test_an_imgsz_off_the_stride_is_recorded_and_printed_as_trained(
    tiny_dataset: Path, tmp_path: Path, capsys, no_clip
) -> None:
    # imgsz=100 trained at 128 (the checkpoint's train_args); args.yaml, config.yaml, the evaluate line: 100
    result = train(
        build_config(YOLO11_CONFIG, tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "imgsz=48"))
    )
    out = capsys.readouterr().out
    assert "note: imgsz=48 is not a multiple of the model's stride: ultralytics trains at imgsz=64" in out
    assert result.imgsz == 64 and out.rstrip().splitlines()[-1].endswith(" --imgsz 64 --split val")
    run = result.save_dir
    assert yaml.safe_load((run / "config.yaml").read_text())["imgsz"] == 64
    assert yaml.safe_load((run / "args.yaml").read_text())["imgsz"] == 64
    assert torch.load(result.weights, weights_only=False)["train_args"]["imgsz"] == 64


@pytest.mark.slow
def test_a_train_image_opencv_cannot_load_is_one_line(tiny_dataset, tmp_path, no_clip, monkeypatch) -> None:
    import ultralytics.data.base

    unreadable = split_images(tiny_dataset / "data.yaml", "train")[0]
    imread = ultralytics.data.base.imread

    def fail_on_one(path, *args, **kwargs):  # PIL read it when the labels were checked; OpenCV cannot
        return None if Path(path) == unreadable else imread(path, *args, **kwargs)

    monkeypatch.setattr(ultralytics.data.base, "imread", fail_on_one)
    config = build_config(YOLO11_CONFIG, tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml"))
    with pytest.raises(UserError, match=rf"^ultralytics cannot load an image of the training data .*: "
                       rf"Image Not Found {unreadable}$"):  # fmt: skip
        train(config)


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "val"])
def test_a_corrupt_label_stops_the_run_before_the_first_epoch(
    tiny_dataset: Path, tmp_path: Path, split: str
) -> None:
    # ultralytics left the image of a label with a class id the data set lacks out of training (or of
    # the validation that picks best.pt) with a warning among its scan lines, and the run went on
    copy = tmp_path / "copy"
    data = copy_with_names(
        tiny_dataset, copy, yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    )
    image = next(
        p for p in split_images(data, split) if (copy / "labels" / split / f"{p.stem}.txt").stat().st_size
    )
    label = copy / "labels" / split / f"{image.stem}.txt"
    label.write_text("9" + label.read_text()[1:])  # class 9 of a 4-class data set
    config = build_config(YOLO11_CONFIG, tiny_run(copy, tmp_path, "model=yolo11n.yaml"))
    expected = rf"^ultralytics could not read 1 image\(s\) of the '{split}' split of {re.escape(str(data))}: "
    reason = re.escape("(Label class 9 exceeds dataset class count 4. Possible class labels are 0-3)")
    with pytest.raises(UserError, match=rf"{expected}{image.name} {reason} \(python -m converters.validate "):
        train(config)
    # stopped before any epoch; its folder (config.yaml, no weights) read as a run, and the next made <name>2
    assert not list((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_images_left_out_of_both_splits_are_named_in_one_run(tiny_dataset: Path, tmp_path: Path) -> None:
    # the train split's were named alone: the val split's only on the next run, once those were fixed
    copy = tmp_path / "copy"
    data = copy_with_names(
        tiny_dataset, copy, yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    )
    broken = {split: sorted(split_images(data, split))[0] for split in ("train", "val")}
    for split, image in broken.items():  # a class id beyond names: it decodes, ultralytics skips it
        (copy / "labels" / split / f"{image.stem}.txt").write_text("9 0.5 0.5 0.2 0.2\n")
    config = build_config(YOLO11_CONFIG, tiny_run(copy, tmp_path, "model=yolo11n.yaml"))
    with pytest.raises(UserError) as error:
        train(config)
    why = "(Label class 9 exceeds dataset class count 4. Possible class labels are 0-3)"  # ultralytics' own
    train_image, val_image = broken["train"].name, broken["val"].name
    assert str(error.value) == (
        f"ultralytics could not read 1 image(s) of the 'train' split of {data}: {train_image} {why}, "
        f"and 1 of the 'val' split: {val_image} {why} (python -m converters.validate {copy} says why)"
    )


def test_photos_that_do_not_read_are_named_in_one_line_before_the_model_is_built(
    tiny_dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    # they were named once the model was built and ultralytics' loaders had scanned both splits
    copy = tmp_path / "copy"
    copy_with_names(tiny_dataset, copy, yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"])
    junk, empty = copy / "images" / "train" / "x.png", copy / "images" / "val" / "y.png"
    junk.write_text("junk\n")
    empty.write_bytes(b"")
    monkeypatch.setattr("detection.train.start_model", lambda config: pytest.fail("the model was built"))
    config = build_config(YOLO11_CONFIG, tiny_run(copy, tmp_path, "model=yolo11n.yaml"))
    with pytest.raises(UserError) as error:
        train(config)
    assert str(error.value) == (
        f"cannot read 2 photos: {junk} (corrupt or not an image (PIL cannot identify it)), {empty} (the file "
        "is empty)"
    )
    assert not (tmp_path / "runs").exists()


# --- tiles and repeat factors --------------------------------------------------------------------


def test_training_data_is_tiled_then_repeat_sampled(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    config = build_config(
        YOLO11_CONFIG,
        [
            f"data={tiny_dataset / 'data.yaml'}",
            "tile=32",
            "tile_overlap=0.5",
            "repeat_factor=0.5",
            "imgsz=32",
        ],
    )
    train_data = prepare_training_data(config, tiny_dataset / "data.yaml", tmp_path)
    assert train_data == tmp_path / "data.yaml"
    loaded = yaml.safe_load(train_data.read_text())
    assert loaded["path"] == str(tmp_path / "tiles") and loaded["train"] == str(tmp_path / "train_repeat.txt")
    listed = (tmp_path / "train_repeat.txt").read_text().splitlines()
    tiles = sorted((tmp_path / "tiles" / "images" / "train").glob("*.png"))
    assert len(tiles) == 9 * len(split_images(tiny_dataset / "data.yaml", "train"))  # 64 px: 3 x 3 windows
    assert set(listed) == {str(t) for t in tiles} and len(listed) > len(tiles)  # rare-defect tiles repeated
    out = capsys.readouterr().out
    assert "tiled data set" in out and "repeat-factor sampling t=0.5" in out


def test_without_tiles_or_repeats_the_source_is_trained_on(tiny_dataset: Path, tmp_path: Path) -> None:
    config = build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}"])
    assert (config["tile"], config["repeat_factor"]) == (0, 0.0)  # off by default
    assert prepare_training_data(config, tiny_dataset / "data.yaml", tmp_path) == tiny_dataset / "data.yaml"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["tile=-32"], "config key 'tile' needs an integer >= 0"),
        (["repeat_factor=-0.1"], "config key 'repeat_factor' needs a number in [0, 1]"),
        (["tile=16"], "config key 'tile' needs 0 (off) or a tile size >= 32 px, got 16"),
    ],
)
def test_bad_tile_and_repeat_settings_fail_in_the_config(tiny_dataset: Path, overrides, expected) -> None:
    with pytest.raises(UserError) as error:
        build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", *overrides])
    assert expected in str(error.value)


@pytest.mark.slow
def test_args_yaml_records_project_and_data_as_config_yaml_does(
    tiny_dataset: Path, tmp_path: Path, no_clip, monkeypatch
) -> None:
    # args.yaml's project kept '..' (Path.absolute) and its data followed the link, unlike config.yaml's
    (tmp_path / "sub").mkdir()
    (tmp_path / "linked").symlink_to(tiny_dataset)
    monkeypatch.chdir(tmp_path)
    overrides = [*tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml"), "data=linked"]
    overrides.append("project=sub/../runs")
    result = train(build_config(YOLO11_CONFIG, overrides))
    assert result.save_dir.parent == tmp_path / "runs"
    args = yaml.safe_load((result.save_dir / "args.yaml").read_text())
    config = yaml.safe_load((result.save_dir / "config.yaml").read_text())
    assert args["project"] == config["project"] == str(tmp_path / "runs")
    assert args["data"] == config["data"] == str(tmp_path / "linked" / "data.yaml")


@pytest.mark.slow
def test_tiled_repeat_sampled_run_trains_and_evaluates_tiled(
    tiny_dataset: Path, tmp_path: Path, capsys, no_clip, network_attempts
) -> None:
    # 32-px tiles seen at 64 px (ultralytics refuses to train below 64 px with a batch of one left over)
    extra = ("model=yolo11n.yaml", "tile=32", "tile_overlap=0.5", "repeat_factor=0.5", "imgsz=64")
    result = train(build_config(YOLO11_CONFIG, tiny_run(tiny_dataset, tmp_path, *extra)))
    run = result.save_dir
    assert result.train_data == run / "data.yaml" and result.weights.is_file()
    assert yaml.safe_load((run / "args.yaml").read_text())["data"] == str(run / "data.yaml")
    out = capsys.readouterr().out
    assert "--tile 32 --tile-overlap 0.5 --imgsz 64" in out and "val (tiles)" in out
    assert "note: tiles of 32 px are resized to imgsz=64" in out
    report = evaluate(
        tiny_dataset / "data.yaml", result.weights, split="val", imgsz=64, device="cpu",
        out=tmp_path / "eval", plots=False, tile=32, tile_overlap=0.5,
    )  # fmt: skip
    assert report.tiling == {"tile": 32, "overlap": 0.5, "imgsz": 64} and report.image_level.n_images == 6
    assert not any("tiles" in note for note in report.notes)
    whole = evaluate(
        tiny_dataset / "data.yaml", result.weights, split="val", imgsz=64, device="cpu",
        out=tmp_path / "eval-whole", plots=False,
    )  # fmt: skip
    told = f"{result.weights} was trained on 32-px tiles ({run / 'tiles' / 'tiles.json'})"
    assert told in whole.notes[0]
    images, pred = tiny_dataset / "images" / "val", ["--out", str(tmp_path / "pred"), "--device", "cpu"]
    assert predict_main(["--weights", str(result.weights), "--source", str(images), *pred]) == 0
    assert f"note: {told}; it runs here on whole photos" in capsys.readouterr().err
    tiled = ["--tile", "32", "--imgsz", "64"]
    assert predict_main(["--weights", str(result.weights), "--source", str(images), *pred, *tiled]) == 0
    assert "trained on 32-px tiles" not in capsys.readouterr().err
    assert network_attempts == []


@pytest.mark.parametrize("name", ["AUTO", "SGD", "Foo"])
def test_asking_ultralytics_about_an_optimizer_leaves_its_logger_as_it_was(name) -> None:
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.DEBUG)  # a level of the user's, not the WARNING the question is asked at
    try:
        try:
            check_config({**default_config(), "optimizer": name})
        except UserError:
            assert name == "Foo"
        assert LOGGER.level == logging.DEBUG
    finally:
        LOGGER.setLevel(level)


@pytest.mark.parametrize("config", [None, YOLO11_CONFIG])
def test_a_run_without_config_says_what_it_starts_from(tmp_path: Path, capsys, config: Path | None) -> None:
    # it trained yolov8s-worldv2.yaml from random weights (offline: stopped for want of CLIP) without a word
    argv = ([] if config is None else ["--config", str(config)]) + [f"data={tmp_path / 'missing.yaml'}"]
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert ("note: no --config: built-in defaults" in out) == (config is None)
    if config is None:
        assert "model yolov8s-worldv2.yaml from random weights" in out and "configs/detection/*.yaml" in out


def test_a_run_prints_every_note_before_its_folder_is_made(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
):
    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr("detection.train.start_run", stop)
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "lr0=0.0001")
    with pytest.raises(Stop):
        train(build_config(YOLO11_CONFIG, overrides))
    out = capsys.readouterr().out
    assert "note: lr0=0.0001 will not be used: optimizer=auto" in out  # the optimizer's note
    assert "batches an epoch, and with nbs=64 ultralytics steps the optimizer" in out  # accumulation's


def test_accumulation_below_one_step_an_epoch_gets_a_note():
    # hazelnut_toy: 15 train images at batch 8 and nbs 64 stepped once every 4 epochs, without a word
    note = accumulation_note({"batch": 8, "nbs": 64}, 15)
    assert note == (
        "note: 15 train images at batch=8 make 2 batches an epoch, and with nbs=64 ultralytics steps the "
        "optimizer once every 8 batches after warmup: once every 4 epochs; "
        "set nbs=8 to step after every batch"
    )
    # 64 / 24 = 2.67: ultralytics rounds it to 3 batches a step, as here
    assert "steps the optimizer once every 3 batches" in accumulation_note({"batch": 24, "nbs": 64}, 20)
    # 15 images at batch 16: it said '1 batches an epoch'
    assert "15 train images at batch=16 make 1 batch an epoch, " in accumulation_note(
        {"batch": 16, "nbs": 64}, 15
    )
    assert accumulation_note({"batch": 8, "nbs": 64}, 64) is None  # 8 batches an epoch: a step each epoch
    assert accumulation_note({"batch": 8, "nbs": 8}, 15) is None
    assert accumulation_note({"batch": -1, "nbs": 64}, 15) is None  # auto batch: size unknown here
    assert accumulation_note({"batch": 8, "nbs": 64, "tile": 256}, 15) is None  # tiles: another count


def test_an_exist_ok_rerun_removes_this_commands_files_it_does_not_rewrite(tmp_path):
    # a plain YOLO re-run into a YOLO-World run's folder kept its text_embeddings.pt (and .json)
    for name in (
        "text_embeddings.pt",
        "text_embeddings.json",
        "data.yaml",
        "train_repeat.txt",
        "results.csv",
    ):
        (tmp_path / name).write_text("earlier run\n")
    (tmp_path / "tiles" / "images").mkdir(parents=True)
    removed = remove_stale_files(tmp_path, {"tile": 0, "repeat_factor": 0}, None)
    assert removed == ["text_embeddings.pt", "text_embeddings.json", "tiles", "data.yaml", "train_repeat.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]  # ultralytics' own: written over
    (tmp_path / "text_embeddings.pt").write_text("earlier run\n")
    assert remove_stale_files(tmp_path, {"tile": 256, "repeat_factor": 0.1}, object()) == []  # all rewritten


def test_an_exist_ok_rerun_removes_ultralytics_plots_but_not_the_weights(tmp_path):
    # plots=false (or fewer val batches) kept the earlier run's confusion matrices and val_batch*.jpg
    plots = ["BoxPR_curve.png", "confusion_matrix.png", "labels.jpg", "results.png", "val_batch2_pred.jpg"]
    kept = ["args.yaml", "config.yaml", "notes.txt", "results.csv", "weights", "x_curve.png"]  # not plots
    for name in [*plots, *kept[:4]]:
        (tmp_path / name).write_text("earlier run\n")
    (tmp_path / "weights").mkdir()
    (tmp_path / "x_curve.png").mkdir()  # a folder of the user's: ultralytics writes files
    (tmp_path / "weights" / "last.pt").write_text("model= of the new run\n")
    assert remove_stale_files(tmp_path, {"tile": 0, "repeat_factor": 0}, None) == sorted(plots)
    assert sorted(p.name for p in tmp_path.iterdir()) == kept and (tmp_path / "weights" / "last.pt").is_file()


def test_an_exist_ok_rerun_removes_the_earlier_runs_visualizations(tmp_path):
    # a run with visualize=true drew each val photo in visualizations/; a re-run without it kept them
    (tmp_path / "visualizations").mkdir()
    (tmp_path / "visualizations" / "000.png").write_text("earlier run\n")
    (tmp_path / "results.csv").write_text("earlier run\n")
    assert remove_stale_files(tmp_path, {"tile": 0, "repeat_factor": 0}, None) == ["visualizations"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_an_exist_ok_rerun_removes_the_earlier_runs_epoch_checkpoints_but_not_its_input(tmp_path):
    # save_period>0 left the earlier run's weights/epoch*.pt beside the new run's: two runs' checkpoints
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("last.pt", "best.pt", "epoch2.pt", "epoch10.pt", "epoch4.pt", "notes.pt"):
        (weights / name).write_text("earlier run\n")
    config = {"tile": 0, "repeat_factor": 0, "model": str(weights / "epoch4.pt"), "pretrained": True}
    removed = remove_stale_files(tmp_path, config, None)
    assert removed == ["weights/epoch2.pt", "weights/epoch10.pt"]
    # ultralytics writes last.pt and best.pt over; epoch4.pt is the model= this run starts from
    assert sorted(p.name for p in weights.iterdir()) == ["best.pt", "epoch4.pt", "last.pt", "notes.pt"]
    # pretrained=<a checkpoint of the folder> is this run's input as well
    (weights / "epoch6.pt").write_text("earlier run\n")
    config = {**config, "model": "yolo11n.yaml", "pretrained": str(weights / "epoch6.pt")}
    assert remove_stale_files(tmp_path, config, None) == ["weights/epoch4.pt"]


def test_many_removed_epoch_checkpoints_are_counted_in_the_note():
    # at save_period=1 the note named every epoch's file: one line of hundreds of names
    from detection.train import stale_names

    few = ["results.png", "weights/epoch0.pt", "weights/epoch1.pt", "weights/epoch2.pt"]
    assert stale_names(few) == ", ".join(few)
    four = [*few, "weights/epoch3.pt"]  # one more than three: counted
    assert (
        stale_names(four) == "results.png, 4 save_period checkpoints (weights/epoch0.pt to weights/epoch3.pt)"
    )
    many = ["results.png", *(f"weights/epoch{i}.pt" for i in range(100))]
    assert stale_names(many) == (
        "results.png, 100 save_period checkpoints (weights/epoch0.pt to weights/epoch99.pt)"
    )


@pytest.mark.slow
def test_an_exist_ok_rerun_from_its_own_last_pt_leaves_no_earlier_plots(
    tiny_dataset: Path, tmp_path: Path, capsys, no_clip
) -> None:
    plotted = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "name=r", "plots=true", "save_period=1")
    run = train(build_config(YOLO11_CONFIG, plotted)).save_dir
    last = run / "weights" / "last.pt"
    assert (run / "confusion_matrix.png").is_file() and list(run.glob("val_batch*.jpg"))
    [epoch] = [p.name for p in (run / "weights").glob("epoch*.pt")]  # save_period=1: this run's one epoch
    capsys.readouterr()
    again = tiny_run(tiny_dataset, tmp_path, "name=r", "exist_ok=true", f"model={last}")  # plots=false
    assert train(build_config(YOLO11_CONFIG, again)).save_dir == run
    out = capsys.readouterr().out
    assert "note: removed the earlier run's BoxF1_curve.png, BoxPR_curve.png, BoxP_curve.png, " in out
    assert f"val_batch0_pred.jpg, weights/{epoch} from {run} (exist_ok)" in out
    assert not list(run.glob("*.png")) and not list(run.glob("*.jpg"))  # plots=false: none of this run's
    assert last.is_file() and (run / "results.csv").is_file()
    assert sorted(p.name for p in (run / "weights").iterdir()) == ["best.pt", "last.pt"]  # no save_period


def ctrl_c_after(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """Makes ultralytics' ``BaseTrainer.<method>`` (``save_model``, ``save_metrics``) do its work, then raise
    ``KeyboardInterrupt``, as a Ctrl-C just after it would."""
    from ultralytics.engine.trainer import BaseTrainer

    original = getattr(BaseTrainer, method)

    def then_stop(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(BaseTrainer, method, then_stop)


def train_until_ctrl_c(tiny_dataset: Path, tmp_path: Path, *extra: str) -> None:
    """Trains a tiny ``yolo11n.yaml`` run with the ``extra`` overrides, which a Ctrl-C stops."""
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", *extra)
    with pytest.raises(KeyboardInterrupt):
        train(build_config(YOLO11_CONFIG, overrides))


def test_a_ctrl_c_after_an_epoch_names_the_weights_and_a_command_that_trains_on(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
):
    # it said only "interrupted": the way on (model= the run's last.pt) was for the user to know
    ctrl_c_after(monkeypatch, "save_model")  # Ctrl-C once the first epoch's weights are written
    train_until_ctrl_c(tiny_dataset, tmp_path, "epochs=3", "name=stopped", "exist_ok=true")
    run = (tmp_path / "runs" / "stopped").absolute()
    assert capsys.readouterr().err.endswith(
        f"stopped; {run / 'weights' / 'last.pt'} holds the last finished epoch; train on from it (a new "
        f"schedule) with: python -m detection.train --config {run / 'config.yaml'} "
        f"model={run / 'weights' / 'last.pt'} exist_ok=false\n"
    )


@pytest.mark.parametrize("exist_ok", [False, True])
def test_a_ctrl_c_before_the_first_weights_removes_the_run_folder_it_made(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, exist_ok: bool
):
    # it said 'interrupted' alone and left config.yaml and trained_images.json in a folder that read as a run,
    # with no weights to train on from; the same command again trained into <name>2
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("detection.train.fit", stop)
    train_until_ctrl_c(tiny_dataset, tmp_path, "name=cut", f"exist_ok={exist_ok}")
    run = (tmp_path / "runs" / "cut").absolute()
    err = capsys.readouterr().err
    if exist_ok:  # a folder it may share with an earlier run: left
        assert (run / "config.yaml").is_file() and "removed" not in err
    else:
        assert err.endswith(
            f"stopped before the first epoch's weights were saved: removed its run folder {run}\n"
        )
        assert list((tmp_path / "runs").iterdir()) == []


def test_a_closed_stdout_before_the_first_weights_removes_the_run_folder_it_made(
    tiny_dataset: Path, tmp_path: Path
):
    # '... 2>/dev/null | head -n 3': it exited 141 and left config.yaml, trained_images.json and tiles in a
    # folder with no weights, and the same command again trained into <name>-2
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "name=cut")
    command = [sys.executable, "-m", "detection.train", "--config", str(YOLO11_CONFIG), *overrides]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    run = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT, env=env
    )
    try:
        for line in run.stdout:  # the notes come before the run folder is made, ultralytics' lines after
            if line.startswith(b"Ultralytics "):
                break
        run.stdout.close()  # the reader gone, as 'head' once it has its lines
        assert run.wait(timeout=300) == 141
    finally:
        run.kill()
        run.wait()
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize(
    ("save", "why"), [("false", "(save=false saves them after the last epoch alone)"), ("true", "yet")]
)
def test_a_ctrl_c_after_an_epoch_of_a_save_false_run_keeps_its_run_folder(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, save: str, why: str
):
    # save=false saves no weights before the last epoch: a Ctrl-C in the second epoch removed the run folder,
    # the first epoch's results.csv with it, saying it stopped 'before the first epoch's weights were saved'
    # save=true: stopped between the first epoch's metrics and its weights, it was put on save=false
    ctrl_c_after(monkeypatch, "save_metrics")  # Ctrl-C once the first epoch's results are written
    train_until_ctrl_c(tiny_dataset, tmp_path, "epochs=3", "name=nosave", f"save={save}")
    run = tmp_path / "runs" / "nosave"
    assert (run / "results.csv").is_file() and (run / "config.yaml").is_file()
    err = capsys.readouterr().err
    assert "removed" not in err
    # it said nothing of where the finished epochs' metrics are
    assert err.endswith(
        f"stopped; no weights were saved {why}; the finished epochs' metrics are in "
        f"{run.absolute() / 'results.csv'}\n"
    )


def test_the_recorded_config_makes_every_existing_path_absolute(tmp_path: Path, monkeypatch) -> None:
    # model=runs/x/weights/last.pt (or a pretrained=, a text_embeddings= table ...) recorded relative: the
    # Ctrl-C line's --config <run>/config.yaml, pasted in another folder, named files that were not there
    from detection.train import recorded_config

    monkeypatch.chdir(tmp_path)
    keys = ("data", "model", "pretrained", "text_embeddings", "clip_weights", "augment_policy")
    config = {key: f"{key}/file" for key in keys}
    for value in config.values():
        (tmp_path / value).parent.mkdir()
        (tmp_path / value).write_text("")
    recorded = recorded_config({**config, "project": "runs", "tile": 0})
    assert recorded == {
        **{key: str(tmp_path / value) for key, value in config.items()},
        "project": str(tmp_path / "runs"),  # not made yet: where the run goes all the same
        "tile": 0,
    }
    # a name found only in the weights cache or the project's configs stays as written
    assert recorded_config({"model": "yolo11n.pt", "augment_policy": "configs/x.yaml"}) == {
        "model": "yolo11n.pt",
        "augment_policy": "configs/x.yaml",
    }
    assert recorded_config({"text_embeddings": ""}) == {
        "text_embeddings": ""
    }  # blank: not the working folder
    monkeypatch.setenv("HOME", str(tmp_path))  # ~ is expanded: the folder a reader means
    assert recorded_config({"data": "~/data/file"}) == {"data": str(tmp_path / "data" / "file")}


def test_config_yaml_and_the_evaluate_line_name_the_data_from_any_folder(
    tiny_dataset: Path, tmp_path: Path, monkeypatch
):
    # data=<a relative folder> was recorded as given: the Ctrl-C line's --config <run>/config.yaml, pasted in
    # another folder, stopped at "data file not found"; the evaluate line named it relative too
    from detection.train import TrainResult, format_summary, start_run

    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    relative = os.path.relpath(tiny_dataset, tmp_path / "work")
    config = build_config(YOLO11_CONFIG, [f"data={relative}", "project=runs", "name=rel", "workers=0"])
    run = start_run(config, "yolo11n.pt", Path(config["data"]), None)
    text = format_summary(
        TrainResult(save_dir=run, weights=run / "weights" / "best.pt", imgsz=64), Path(config["data"])
    )
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = build_config(run / "config.yaml", [])
    assert again["data"] == str(tiny_dataset / "data.yaml")
    assert again["project"] == str(tmp_path / "work" / "runs")  # a repeat lands beside this run
    assert f"evaluate with: python -m detection.evaluate --data {tiny_dataset / 'data.yaml'} " in text


def test_a_ctrl_c_before_the_first_epoch_of_an_exist_ok_rerun_names_no_earlier_weights(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
):
    # the earlier run's weights/last.pt was named as "the last finished epoch" of the new run
    from ultralytics.engine.model import Model

    def stop(self, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C before any epoch ended

    monkeypatch.setattr(Model, "train", stop)
    earlier = tmp_path / "runs" / "again" / "weights" / "last.pt"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"")
    os.utime(earlier, (1000.0, 1000.0))
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "name=again", "exist_ok=true")
    with pytest.raises(KeyboardInterrupt):
        train(build_config(YOLO11_CONFIG, overrides))
    assert "stopped;" not in capsys.readouterr().err and earlier.is_file()


@pytest.mark.parametrize(
    ("model", "pretrained", "expected", "note"),
    [
        ("runs/a/weights/last.pt", "yolo11n.pt", True, True),  # the checkpoint's own weights, said
        ("runs/a/weights/LAST.PT", "yolo11n.pt", True, True),
        ("yolov8s-worldv2.pt", "yolov8s-worldv2.pt", True, False),  # the same file: nothing to say
        ("runs/a/weights/last.pt", True, True, False),
        ("runs/a/weights/last.pt", False, False, False),  # no pretrained weights asked for: kept
        ("yolo11n-worldv2.yaml", "yolo11n.pt", "yolo11n.pt", False),  # a yaml model takes the file
    ],
)
def test_a_checkpoint_model_is_never_given_another_files_weights(
    capsys, model: str, pretrained: object, expected: object, note: bool
) -> None:
    assert checkpoint_pretrained(model, pretrained) == expected
    out = capsys.readouterr().out
    said = f"note: model={Path(model).name} is a checkpoint: it starts from its own weights, not from "
    assert out.startswith(f"{said}pretrained: yolo11n.pt (weights for a yaml model") if note else out == ""


@pytest.mark.parametrize("inside", ["tiles", "tiles/images/train"])
def test_an_earlier_runs_tiles_holding_the_working_folder_are_not_removed(
    tmp_path: Path, monkeypatch, inside: str
) -> None:
    # cd <run>/tiles, then an exist_ok re-run there without tile: its tiles/ was removed, leaving the shell
    # in a deleted folder
    (tmp_path / "tiles" / "images" / "train").mkdir(parents=True)
    (tmp_path / "results.png").write_bytes(b"")
    monkeypatch.chdir(tmp_path / inside)
    here = "is the working folder" if inside == "tiles" else f"holds the working folder {tmp_path / inside}"
    with pytest.raises(UserError) as error:
        remove_stale_files(tmp_path, {"tile": 0, "repeat_factor": 0}, object())
    assert str(error.value) == (
        f"{tmp_path / 'tiles'}, an earlier run's that this run removes from its folder (exist_ok), {here}: "
        "removing it would leave your shell in a deleted folder; run the command from outside it"
    )
    assert (tmp_path / "tiles" / "images" / "train").is_dir() and (tmp_path / "results.png").is_file()


def test_an_earlier_runs_tiles_link_is_removed_not_the_folder_it_names(tmp_path: Path) -> None:
    # tiles/ a link to a folder elsewhere (a bigger disk): shutil.rmtree refused it with a traceback
    (tmp_path / "elsewhere" / "images").mkdir(parents=True)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tiles").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert remove_stale_files(tmp_path / "run", {"tile": 0, "repeat_factor": 0}, object()) == ["tiles"]
    assert not (tmp_path / "run" / "tiles").is_symlink() and (tmp_path / "elsewhere" / "images").is_dir()


def test_a_ctrl_c_before_the_first_epoch_ends_gives_no_command(tmp_path: Path):
    assert stopped_note(tmp_path) is None  # no weights/last.pt yet
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "last.pt").write_bytes(b"")  # an earlier run's, in the folder (exist_ok)
    os.utime(tmp_path / "weights" / "last.pt", (1000.0, 1000.0))
    assert stopped_note(tmp_path, since=2000.0) is None  # it was named as this run's last finished epoch
    assert stopped_note(tmp_path, since=500.0).startswith(f"stopped; {tmp_path / 'weights' / 'last.pt'} ")


def test_a_ctrl_c_of_a_save_false_run_names_its_results_csv(tmp_path: Path):
    # save=false: no weights before the last epoch; the line after the Ctrl-C said nothing of its metrics
    (tmp_path / "results.csv").write_text("epoch\n1\n")
    os.utime(tmp_path / "results.csv", (1000.0, 1000.0))
    assert stopped_note(tmp_path, since=2000.0, save=False) is None  # an earlier run's (exist_ok)
    assert stopped_note(tmp_path, since=500.0, save=False) == (
        "stopped; no weights were saved (save=false saves them after the last epoch alone); the finished "
        f"epochs' metrics are in {tmp_path / 'results.csv'}"
    )


def test_a_ctrl_c_between_an_epochs_metrics_and_its_weights_is_not_put_on_save_false(tmp_path: Path):
    # save=true, stopped after results.csv got the first epoch, before weights/last.pt: it blamed save=false
    (tmp_path / "results.csv").write_text("epoch\n1\n")
    assert stopped_note(tmp_path) == (
        f"stopped; no weights were saved yet; the finished epochs' metrics are in {tmp_path / 'results.csv'}"
    )


def test_help_names_every_family_it_trains(capsys) -> None:
    # it said 'Fine-tune YOLO-World (or plain YOLO)': configs/detection/yoloe11n.yaml trains YOLOE
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Fine-tune YOLOE, YOLO-World or plain YOLO" in " ".join(capsys.readouterr().out.split())


def test_the_default_run_name_is_the_data_folder_as_spelt_not_a_links_target(tmp_path: Path) -> None:
    # followed the link (data.resolve()): data=sets/nut/data.yaml, nut -> synthetic_nut, trained into
    # runs/yolo11n_synthetic_nut, where segmentation.train's run of the same data=sets/nut is vit_t_nut
    target = tmp_path / "synthetic_nut"
    target.mkdir()
    (target / "data.yaml").write_text("names: {0: a}\n")
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets" / "nut").symlink_to(target)
    config = {"project": str(tmp_path / "runs"), "name": None}
    assert run_dir(config, "yolo11n.pt", tmp_path / "sets" / "nut" / "data.yaml").name == "yolo11n_nut"
    assert run_dir(config, "yolo11n.pt", tmp_path / "sets" / "nut" / ".." / "nut" / "data.yaml").name == (
        "yolo11n_nut"
    )


def test_the_default_run_name_of_a_data_yaml_in_the_working_folder_is_that_folders_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lot_7").mkdir()
    monkeypatch.chdir(tmp_path / "lot_7")
    config = {"project": str(tmp_path / "runs"), "name": None}
    folder = run_dir(config, "configs/m/yolo11n-worldv2.yaml", Path("data.yaml"))
    assert folder.name == "yolo11n-worldv2_lot_7"


@pytest.mark.parametrize("name", ["a?b", None])
def test_a_run_folder_with_a_question_mark_is_refused_before_it_is_made(tmp_path: Path, name) -> None:
    # ultralytics cuts a path at '?' (a URL's query): its final validation could not reload weights/best.pt
    # and the run ended in an AssertionError traceback after all its epochs
    config = {"project": str(tmp_path / "runs"), "name": name}
    with pytest.raises(UserError, match=r"^run folder .*\(project/name\) has a '\?', where ultralytics cuts"):
        run_dir(config, "yolo11n.pt", tmp_path / "lot?7" / "data.yaml")
    assert not (tmp_path / "runs").exists()


def test_freezing_layers_of_a_model_that_starts_untrained_is_said(tiny_dataset: Path, tmp_path: Path, capsys):
    # the config's freeze: 10 (for a pretrained backbone) kept yolo11n.yaml's random layers 0-9 all run
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "note: freeze=10 keeps those layers at their random initial weights all run (yolo11n.yaml is a model "
        "config: random weights without pretrained=<weights>); set freeze=0, or start from trained weights"
    ) in out
    from detection.train import random_freeze_note

    assert "pretrained=false starts the model" in random_freeze_note([0, 1], model="w.pt", pretrained=False)
    assert random_freeze_note(10, model="yolo11n-worldv2.yaml", pretrained="/cache/yolo11n.pt") is None
    assert random_freeze_note(0, model="yolo11n.yaml", pretrained=True) is None
    assert random_freeze_note(10, model="/cache/yolo11n.pt", pretrained=True) is None


def test_a_project_under_the_home_folder_is_expanded(tiny_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    # a config file's project: ~/runs (no shell expands it) trained into a folder named '~' in the working
    # folder, while config.yaml recorded the expanded path
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    overrides = [
        *tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "freeze=0"),
        "project=~/runs",
        "name=r",
    ]
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 0
    assert (tmp_path / "home" / "runs" / "r" / "weights" / "best.pt").is_file()
    assert not (tmp_path / "work" / "~").exists()
    recorded = yaml.safe_load((tmp_path / "home" / "runs" / "r" / "config.yaml").read_text())
    assert recorded["project"] == str(tmp_path / "home" / "runs")


def test_a_ctrl_c_that_ultralytics_plotting_swallowed_stops_the_run_before_its_first_epoch(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
):
    # a Ctrl-C while ultralytics plotted the labels (its TryExcept: an empty WARNING line) let the run train
    # every epoch before keep_interrupts raised it again: 'interrupted' after a finished run
    import signal

    from common.cli import keep_interrupts

    def swallowing_plot(*args, **kwargs):  # ultralytics' TryExcept around plot_labels
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            pass

    monkeypatch.setattr("ultralytics.models.yolo.detect.train.plot_labels", swallowing_plot)
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "epochs=2", "name=cut", "plots=true")
    with pytest.raises(KeyboardInterrupt), keep_interrupts():
        train(build_config(YOLO11_CONFIG, overrides))
    run = (tmp_path / "runs" / "cut").absolute()
    assert capsys.readouterr().err.endswith(
        f"stopped before the first epoch's weights were saved: removed its run folder {run}\n"
    )
    assert not run.exists()


def test_a_swallowed_ctrl_c_before_a_dropped_image_refusal_is_said_as_a_ctrl_c(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
):
    # the loaders' check ran first at the same callback: its refusal removed the run folder without a word
    # (say=False) and keep_interrupts then said 'interrupted' alone
    import signal

    from common.cli import keep_interrupts

    def swallowing_plot(*args, **kwargs):  # ultralytics' TryExcept around plot_labels
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            pass

    def dropped(kept, data):
        raise UserError(f"ultralytics could not read 1 image(s) of the 'train' split of {data}")

    monkeypatch.setattr("ultralytics.models.yolo.detect.train.plot_labels", swallowing_plot)
    monkeypatch.setattr("detection.train.check_splits_read", dropped)
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "epochs=2", "name=cut", "plots=true")
    with pytest.raises(KeyboardInterrupt), keep_interrupts():
        train(build_config(YOLO11_CONFIG, overrides))
    run = (tmp_path / "runs" / "cut").absolute()
    assert capsys.readouterr().err.endswith(
        f"stopped before the first epoch's weights were saved: removed its run folder {run}\n"
    )
    assert not run.exists()


@pytest.mark.parametrize("name", ["taken", None])
def test_a_run_folder_that_is_taken_is_said_before_training_into_a_numbered_one(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, name: str | None
):
    # name=taken trained into taken-2 and said so only in its closing 'Results in' line
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("detection.train.fit", stop)
    extra = [f"name={name}"] if name else []
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", *extra)
    wanted = name or f"yolo11n_{tiny_dataset.name}"
    (tmp_path / "runs" / wanted).mkdir(parents=True)
    with pytest.raises(KeyboardInterrupt):
        train(build_config(YOLO11_CONFIG, overrides))
    assert (
        f"note: run folder {tmp_path / 'runs' / wanted} is taken (exist_ok=false): this run goes to "
        f"{wanted}-2\n"
    ) in capsys.readouterr().out


def test_a_missing_data_file_is_named_with_the_config_file_or_override_that_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 'data file not found: runs/demo/synthetic_nut/data.yaml' alone: the shipped config's data: (make demo's
    # set) when data= was left out, with nothing saying where that path came from
    monkeypatch.chdir(tmp_path)  # no make demo run here
    with pytest.raises(UserError) as error:
        build_config(YOLO11_CONFIG, ["epochs=1"])
    assert str(error.value) == (
        f"config file {YOLO11_CONFIG}: config key 'data': data file not found: runs/demo/synthetic_nut/"
        "data.yaml (a data.yaml written by converters.mvtec2yolo)"
    )
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UserError) as error:
        build_config(YOLO11_CONFIG, [f"data={missing}"])
    assert str(error.value).startswith(f"override 'data={missing}': config key 'data': data file not found")


def test_a_data_file_through_a_link_loop_is_named_with_the_override(link_loop: Path) -> None:
    # detection.train data=loop said 'config key 'data': data file not found: loop', as if nothing were there
    with pytest.raises(UserError) as error:
        build_config(YOLO11_CONFIG, [f"data={link_loop}"])
    assert_link_loop_line(
        f"error: {error.value}\n", f"override 'data={link_loop}': config key 'data': data file ", link_loop
    )


def test_a_data_file_through_a_link_loop_is_named_as_typed(
    tmp_path: Path, link_loop: Path, monkeypatch
) -> None:
    # data=~/loop/data.yaml was named expanded in the loop line ('data file <home>/loop/data.yaml: ...'), as
    # typed in the not-found line ('data file not found: ~/nope.yaml')
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UserError) as error:
        build_config(YOLO11_CONFIG, ["data=~/loop/data.yaml"])
    given = "override 'data=~/loop/data.yaml': config key 'data': data file ~/loop/data.yaml: "
    assert_link_loop_line(f"error: {error.value}\n", given, link_loop)


def swallowed_ctrl_c_in_confusion_matrix(monkeypatch: pytest.MonkeyPatch, *, call: int) -> list[str]:
    """Makes ultralytics' ``ConfusionMatrix.plot`` (``TryExcept``-wrapped: it swallows a Ctrl-C, which the
    command's handler notes) take a Ctrl-C in its ``call``-th drawing (two a validation: counts, normalised;
    the last epoch's validation draws the first two, the final validation the next). Returns the steps
    taken, ``'cm-plot'`` or ``'final_eval'``, in order."""
    import signal

    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.utils.metrics import ConfusionMatrix

    steps: list[str] = []
    original_plot, original_final_eval = ConfusionMatrix.plot, BaseTrainer.final_eval

    def plot(self, *args, **kwargs):
        steps.append("cm-plot")
        if steps.count("cm-plot") == call:
            try:  # as its TryExcept does
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass
        return original_plot(self, *args, **kwargs)

    def final_eval(self):
        steps.append("final_eval")
        return original_final_eval(self)

    monkeypatch.setattr(ConfusionMatrix, "plot", plot)
    monkeypatch.setattr(BaseTrainer, "final_eval", final_eval)
    return steps


def test_a_ctrl_c_in_the_final_validations_plot_says_the_run_was_saved_after_the_summary(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
):
    # a Ctrl-C while ultralytics drew the final validation's confusion matrix was swallowed by its plotting
    # and re-raised once the whole summary was printed: 'interrupted' alone, as if the run had been cut short
    steps = swallowed_ctrl_c_in_confusion_matrix(monkeypatch, call=3)
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "name=late", "plots=true")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 130
    assert steps == ["cm-plot", "cm-plot", "final_eval", "cm-plot", "cm-plot"]
    run = (tmp_path / "runs" / "late").absolute()
    captured = capsys.readouterr()
    assert f"Results in {run}" in captured.out and "evaluate with:" in captured.out
    assert captured.err.endswith(
        f"stopped after training ended: the run in {run} is complete (a plot ultralytics was drawing then "
        "may be missing)\ninterrupted\n"
    )
    assert (run / "weights" / "best.pt").is_file() and (run / "results.png").is_file()


def test_a_ctrl_c_in_the_last_epochs_validation_plot_stops_before_the_final_validation(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
):
    # swallowed while the last epoch's validation drew its confusion matrix, it surfaced only after
    # ultralytics' whole final validation and the summary, which said the run was complete
    steps = swallowed_ctrl_c_in_confusion_matrix(monkeypatch, call=1)
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "name=swallowed", "plots=true")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 130
    assert steps == ["cm-plot", "cm-plot"]  # no final_eval
    run = (tmp_path / "runs" / "swallowed").absolute()
    assert capsys.readouterr().err.endswith(
        f"stopped after training ended: the run's weights are in {run / 'weights'} (ultralytics' final "
        "validation, results.png and the summary may be missing)\ninterrupted\n"
    )
    assert (run / "weights" / "best.pt").is_file()


def test_a_ctrl_c_as_the_summary_is_made_says_the_run_was_saved(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
):
    # the run's weights, results and config were all written: 'interrupted' alone read as a run cut short
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("detection.train.format_summary", stop)
    train_until_ctrl_c(tiny_dataset, tmp_path, "model=yolo11n.yaml", "name=done")
    run = (tmp_path / "runs" / "done").absolute()
    assert capsys.readouterr().err.endswith(f"stopped after training ended: the run in {run} is complete\n")
    assert (run / "weights" / "best.pt").is_file() and (run / "config.yaml").is_file()


@pytest.mark.parametrize(
    ("method", "plots", "missing"),
    [
        ("final_eval", "false", "ultralytics' final validation and the summary"),
        ("final_eval", "true", "ultralytics' final validation, results.png and the summary"),
        ("plot_metrics", "true", "ultralytics' final validation, results.png and the summary"),
    ],
)
def test_a_ctrl_c_after_the_last_save_says_the_training_ended(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, method: str, plots: str, missing: str
):
    # it said last.pt held 'the last finished epoch' and how to train on from it, as if the run were cut
    # short; then, for any Ctrl-C after the last save, that it came in ultralytics' final validation: also one
    # while results.png was drawn (plot_metrics lets it through), after that validation had finished
    ctrl_c_after(monkeypatch, method)
    train_until_ctrl_c(tiny_dataset, tmp_path, "epochs=2", "name=validated", f"plots={plots}")
    run = (tmp_path / "runs" / "validated").absolute()
    assert capsys.readouterr().err.endswith(
        f"stopped after training ended: the run's weights are in {run / 'weights'} ({missing} may be "
        "missing)\n"
    )
    assert (run / "weights" / "best.pt").is_file()
    assert (run / "results.png").is_file() == (method == "plot_metrics")


def test_a_ctrl_c_in_the_last_epochs_save_still_names_the_epoch_before(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
):
    # the last epoch's weights were not written yet: the run did not end
    from ultralytics.engine.trainer import BaseTrainer

    original = BaseTrainer.save_model

    def stop_in_the_last(self):
        if self.epoch == self.epochs - 1:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(BaseTrainer, "save_model", stop_in_the_last)
    train_until_ctrl_c(tiny_dataset, tmp_path, "epochs=2", "name=cut_late")
    assert "holds the last finished epoch; train on from it" in capsys.readouterr().err


#: A multi-GPU (DDP) worker's part in :class:`DdpYolo`: it loads the pickled callbacks and runs those of one
#: ``event`` on a stand-in ``trainer`` (a Python expression), after writing ``files``, as rank 0 does.
DDP_WORKER = """
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path = {path!r}  # as ultralytics' DDP file sets it
import cloudpickle

with open({state!r}, "rb") as file:
    callbacks = cloudpickle.load(file)
for name, content in {files!r}.items():
    Path(name).write_bytes(content)
trainer = {trainer}
for callback in callbacks[{event!r}]:
    callback(trainer)
"""


class DdpYolo:
    """What :func:`detection.train.fit` uses of a ``YOLO`` model, trained as ultralytics' multi-GPU (DDP)
    launch does: the callbacks are pickled with cloudpickle (``ultralytics.utils.dist.generate_ddp_file``)
    and run in a worker process (:data:`DDP_WORKER`, its ``worker`` settings), which the launch waits for
    with ``subprocess.run(..., check=True)``; then a Ctrl-C reaches the parent as it waits."""

    def __init__(self, state: Path, **worker: object) -> None:
        self.callbacks: dict[str, list] = {}
        self.state, self.worker = state, worker

    def add_callback(self, event: str, callback) -> None:
        self.callbacks.setdefault(event, []).append(callback)

    def train(self, **args) -> None:
        import subprocess

        import cloudpickle

        self.state.write_bytes(cloudpickle.dumps(self.callbacks))
        worker = DDP_WORKER.format(path=sys.path, state=str(self.state), **self.worker)
        # torchrun sets each worker's RANK; ultralytics captures none of their output
        subprocess.run(
            [sys.executable, "-c", worker], check=True, timeout=300, env={**os.environ, "RANK": "0"}
        )
        raise KeyboardInterrupt  # the parent's subprocess.run, waiting on the workers


def test_a_ctrl_c_after_the_last_save_of_a_multi_gpu_run_says_the_training_ended(tmp_path: Path, capsys):
    # the last save's callback ran on the workers' pickled copy of it, whose note the parent never saw: the
    # parent said last.pt held 'the last finished epoch' and how to train on from it, as if cut short
    weights = tmp_path / "run" / "weights"
    weights.mkdir(parents=True)
    files = {str(weights / "last.pt"): b"the last epoch's weights"}
    # ultralytics sets trainer.stop before the last epoch's save
    yolo = DdpYolo(
        tmp_path / "_temp_ddp.pt", files=files, event="on_model_save", trainer="SimpleNamespace(stop=True)"
    )
    with pytest.raises(KeyboardInterrupt):
        fit(yolo, None, {"plots": False}, save_dir=weights.parent, data=tmp_path / "data.yaml")
    assert capsys.readouterr().err == (
        f"stopped after training ended: the run's weights are in {weights} (ultralytics' final validation "
        "and the summary may be missing)\n"
    )


def test_an_empty_refusal_of_a_multi_gpu_run_is_no_blank_error(tmp_path: Path) -> None:
    # a rank killed between write_text's truncating and its writing: the command said 'error: ' alone
    notes = "callbacks['on_model_save'][0].__self__.folder"
    failed = f"({notes} / 'refusal').write_text('') or sys.exit(1)"
    yolo = DdpYolo(tmp_path / "_temp_ddp.pt", files={}, event="on_model_save", trainer=failed)
    with pytest.raises(UserError) as error:
        fit(yolo, None, {}, save_dir=tmp_path / "run", data=tmp_path / "data.yaml")
    assert str(error.value) == (
        "the multi-GPU training's worker processes stopped (exit status 1); their output above says why"
    )


class StoppedWorkersYolo:
    """A ``YOLO`` model whose multi-GPU launch's workers stopped: ultralytics' ``subprocess.run(cmd,
    check=True)`` raised, as after a worker's traceback (a note it could not write, a full disk)."""

    def add_callback(self, event: str, callback) -> None:
        pass

    def train(self, **args) -> None:
        raise subprocess.CalledProcessError(1, ["python", "-m", "torch.distributed.run", "_temp_ddp.py"])


def test_a_multi_gpu_run_whose_workers_stopped_is_one_line(tmp_path: Path) -> None:
    # the launch's CalledProcessError traceback followed the workers' output: a bug's look for a full disk
    with pytest.raises(UserError) as error:
        fit(StoppedWorkersYolo(), None, {}, save_dir=tmp_path / "run", data=tmp_path / "data.yaml")
    assert str(error.value) == (
        "the multi-GPU training's worker processes stopped (exit status 1); their output above says why"
    )


def _full_disk_in(folder: Path, monkeypatch) -> None:
    """Every file written in ``folder`` is on a full disk."""
    import builtins
    import io

    real_open = io.open

    def full_disk(file, mode="r", *args, **kwargs):
        if Path(os.fspath(file)).parent == folder and set(mode) & set("wax"):
            return real_open("/dev/full", mode.replace("x", "w"), *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", full_disk)
    monkeypatch.setattr(builtins, "open", full_disk)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("last-save", "a multi-GPU worker could not write its note: [Errno 28] No space left on device: "),
        ("refusal", "x (a multi-GPU worker could not write its note: [Errno 28] No space left on device: "),
    ],
)
def test_a_multi_gpu_workers_note_on_a_full_disk_is_one_line_and_status_2(
    tmp_path: Path, monkeypatch, capsys, name: str, said: str
) -> None:
    # the worker's OSError traceback, then the launch's CalledProcessError traceback, were all it said
    from detection.train import RunNotes

    _full_disk_in(tmp_path, monkeypatch)
    monkeypatch.setenv("RANK", "0")  # torchrun's worker
    notes = RunNotes()
    notes.folder = tmp_path
    with pytest.raises(SystemExit) as stopped:
        notes._write(name, "x")
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    closing = ")" if name == "refusal" else ""
    assert err.startswith(f"error: {said}") and err.endswith(f"{tmp_path / name}'{closing}\n")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


#: A multi-GPU (DDP) run's rank 0 as far as layers are frozen: the pickled callbacks of the routine's start,
#: ultralytics' 'Freezing layer' line per tensor (``BaseTrainer._setup_train``), those of its end.
FREEZING_WORKER = """
import sys
from types import SimpleNamespace

sys.path = {path!r}
import cloudpickle
from ultralytics.utils import LOGGER, RANK

assert RANK == 0, RANK
with open({state!r}, "rb") as file:
    callbacks = cloudpickle.load(file)
trainer = {trainer}
for callback in callbacks.get("on_pretrain_routine_start", []):
    callback(trainer)
for name in ("model.0.conv.weight", "model.0.bn.weight", "model.23.dfl.conv.weight"):
    LOGGER.info(f"Freezing layer '{{name}}'")
for callback in callbacks["on_pretrain_routine_end"]:
    callback(trainer)
"""


class DdpFreezingYolo(DdpYolo):
    """:class:`DdpYolo` whose worker is :data:`FREEZING_WORKER`, rank 0 of two as torchrun starts it, and
    whose training then ends."""

    def train(self, **args) -> dict:
        import cloudpickle

        self.state.write_bytes(cloudpickle.dumps(self.callbacks))
        worker = FREEZING_WORKER.format(path=sys.path, state=str(self.state), **self.worker)
        ranks = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2"}
        subprocess.run([sys.executable, "-c", worker], check=True, timeout=300, env={**os.environ, **ranks})
        return {"trained": 1}


def test_a_multi_gpu_runs_frozen_layers_are_one_summary_line(
    tiny_dataset: Path, tmp_path: Path, capfd
) -> None:
    # rank 0 printed ultralytics' 'Freezing layer' line per tensor, and the command's 'frozen:' line was
    # missing: its FreezeLog, in the command, saw none of them
    data = tiny_dataset / "data.yaml"
    images = {split: [str(path) for path in split_images(data, split)] for split in ("train", "val")}
    loaders = ", ".join(  # every image kept: the loaders' check passes
        f"{loader}=SimpleNamespace(dataset=SimpleNamespace(im_files={images[split]!r}))"
        for loader, split in (("train_loader", "train"), ("test_loader", "val"))
    )
    weights = tmp_path / "run" / "weights"
    weights.mkdir(parents=True)
    paths = f"last={str(weights / 'last.pt')!r}, best={str(weights / 'best.pt')!r}, wdir={str(weights)!r}"
    yolo = DdpFreezingYolo(tmp_path / "_temp_ddp.pt", trainer=f"SimpleNamespace({loaders}, {paths})")
    assert fit(yolo, None, {}, save_dir=weights.parent, data=data) == {"trained": 1}
    out, err = capfd.readouterr()
    assert "Freezing layer" not in out + err
    assert out.splitlines()[-1] == "frozen: 3 tensors of layers 0, 23 (freeze, and .dfl)"


#: A multi-GPU (DDP) run's worker as far as ultralytics' scan goes: the pickled callbacks loaded, part of the
#: scan each rank's loaders run (``scan``: a statement), then the callbacks of the routine's end (a rank other
#: than 0 runs none of its start).
SCANNING_WORKER = """
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path = {path!r}
import cloudpickle
from ultralytics.data import dataset
from ultralytics.data.utils import check_image

with open({state!r}, "rb") as file:
    callbacks = cloudpickle.load(file)
{scan}
trainer = {trainer}
for callback in callbacks["on_pretrain_routine_end"]:
    callback(trainer)
"""


class DdpScanningYolo(DdpYolo):
    """:class:`DdpYolo` whose worker is :data:`SCANNING_WORKER`, rank ``rank`` of two, and whose training then
    ends."""

    def train(self, **args) -> dict:
        import cloudpickle

        self.state.write_bytes(cloudpickle.dumps(self.callbacks))
        rank = str(self.worker.pop("rank"))
        worker = SCANNING_WORKER.format(path=sys.path, state=str(self.state), **self.worker)
        ranks = {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": "2"}
        subprocess.run([sys.executable, "-c", worker], check=True, timeout=300, env={**os.environ, **ranks})
        return {"trained": 1}


def scanned_trainer(data: Path, tmp_path: Path) -> tuple[Path, str]:
    """A run's ``weights`` folder in ``tmp_path`` and a stand-in trainer (a Python expression) of ``data``
    whose loaders kept every image, for the callbacks of the routine's end."""
    images = {split: [str(path) for path in split_images(data, split)] for split in ("train", "val")}
    loaders = ", ".join(  # every image kept: the loaders' check passes
        f"{loader}=SimpleNamespace(dataset=SimpleNamespace(im_files={images[split]!r}))"
        for loader, split in (("train_loader", "train"), ("test_loader", "val"))
    )
    weights = tmp_path / "run" / "weights"
    weights.mkdir(parents=True)
    paths = f"last={str(weights / 'last.pt')!r}, best={str(weights / 'best.pt')!r}, wdir={str(weights)!r}"
    return weights, f"SimpleNamespace({loaders}, {paths})"


@pytest.mark.parametrize("rank", [0, 1])
def test_a_multi_gpu_runs_workers_save_no_label_cache_in_the_data_set(
    tiny_dataset: Path, tmp_path: Path, rank: int
) -> None:
    # the command's no_label_cache holds in the command alone: each worker's scan saved labels/train.cache
    copy = tmp_path / "copy"
    data = copy_with_names(
        tiny_dataset, copy, yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    )
    cache = copy / "labels" / "train.cache"
    weights, trainer = scanned_trainer(data, tmp_path)
    scan = f"dataset.save_dataset_cache_file('train: ', Path({str(cache)!r}), {{'labels': []}}, '1.0.3')"
    yolo = DdpScanningYolo(tmp_path / "_temp_ddp.pt", trainer=trainer, scan=scan, rank=rank)
    assert fit(yolo, None, {}, save_dir=weights.parent, data=data) == {"trained": 1}
    assert not cache.exists()


@pytest.mark.parametrize("rank", [0, 1])
def test_a_multi_gpu_runs_workers_leave_a_jpeg_without_its_end_marker_as_it_is(
    tiny_dataset: Path, tmp_path: Path, capfd, rank: int
) -> None:
    # each worker's scan re-encoded it in place: the command's guard holds in the command alone; rank 0
    # names it, as a single-process run does, and no other rank says it again
    copy = tmp_path / "copy"
    data = copy_with_names(
        tiny_dataset, copy, yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    )
    image, content = jpeg_without_end_marker(split_images(data, "train")[0])
    weights, trainer = scanned_trainer(data, tmp_path)
    scan = f"check_image({str(image)!r})"  # as each rank's loaders check every image of a split
    yolo = DdpScanningYolo(tmp_path / "_temp_ddp.pt", trainer=trainer, scan=scan, rank=rank)
    assert fit(yolo, None, {}, save_dir=weights.parent, data=data) == {"trained": 1}
    assert image.read_bytes() == content
    note = f"1 JPEG image does not end in its end marker (images/train/{image.name}): ultralytics re-saves it"
    assert (note in capfd.readouterr().out) == (rank == 0)


@pytest.mark.slow
def test_a_jpeg_without_its_end_marker_is_left_as_it_is_with_a_note(
    tiny_dataset: Path, tmp_path: Path, capfd
) -> None:
    # ultralytics' scan of the train split re-encoded it in place ('corrupt JPEG restored and saved', among
    # its lines): training wrote into the data set it was given, a link to a photo became a copy
    copy = tmp_path / "copy"
    data = copy_with_names(
        tiny_dataset, copy, yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    )
    image, content = jpeg_without_end_marker(split_images(data, "train")[0])
    train(build_config(YOLO11_CONFIG, tiny_run(copy, tmp_path, "model=yolo11n.yaml")))
    assert image.read_bytes() == content
    out, err = capfd.readouterr()
    assert (
        f"note: 1 JPEG image does not end in its end marker (images/train/{image.name}): ultralytics "
        "re-saves it in place when it reads it (re-encoded; a link to a photo becomes a copy); training left "
        "it as it is and reads it as it decodes\n"
    ) in out
    assert "corrupt JPEG restored and saved" not in out + err  # it was not


class PlainYolo:
    """What :func:`detection.train.fit` uses of a ``YOLO`` model, trained in this process: nothing happens."""

    def add_callback(self, event: str, callback) -> None:
        pass

    def train(self, **args) -> dict:
        return {"trained": 1}


def test_a_single_process_run_needs_no_temporary_folder(tmp_path: Path, monkeypatch) -> None:
    # the multi-GPU run's notes folder was made for every run: with no usable temporary folder (TMPDIR
    # naming a removed one) a plain training stopped before ultralytics started, a FileNotFoundError
    # traceback naming no file
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "removed"))
    metrics = fit(PlainYolo(), None, {}, save_dir=tmp_path / "run", data=tmp_path / "data.yaml")
    assert metrics == {"trained": 1}


def test_a_multi_gpu_run_without_a_temporary_folder_is_one_line(tmp_path: Path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "removed"))
    yolo = DdpYolo(tmp_path / "_temp_ddp.pt", files={}, event="on_model_save", trainer="None")
    with pytest.raises(UserError) as error:
        fit(yolo, None, {}, save_dir=tmp_path / "run", data=tmp_path / "data.yaml")
    assert str(error.value).startswith(
        "a multi-GPU run passes its workers' notes through a temporary folder, and none is usable ([Errno 2] "
        f"No such file or directory: '{tmp_path / 'removed'}"
    )
    assert str(error.value).endswith("): set TMPDIR to a writable folder")


def test_images_a_multi_gpu_runs_loader_left_out_are_one_line(
    tiny_dataset: Path, tmp_path: Path, capfd
) -> None:
    # the worker's check raised there: its traceback, then the launch's CalledProcessError traceback in the
    # command, were all it said; then the worker's traceback still printed before the line
    data = tiny_dataset / "data.yaml"
    images = {split: [str(path) for path in split_images(data, split)] for split in ("train", "val")}
    loaders = ", ".join(
        f"{loader}=SimpleNamespace(dataset=SimpleNamespace(im_files={files[1:]!r}))"  # the first left out
        for loader, files in (("train_loader", images["train"]), ("test_loader", images["val"]))
    )
    yolo = DdpYolo(
        tmp_path / "_temp_ddp.pt",
        files={},
        event="on_pretrain_routine_end",
        trainer=f"SimpleNamespace({loaders})",
    )
    with pytest.raises(UserError) as error:
        fit(yolo, None, {}, save_dir=tmp_path / "run", data=data)
    first = {split: Path(files[0]).name for split, files in images.items()}
    assert str(error.value).startswith(
        f"ultralytics could not read 1 image(s) of the 'train' split of {data}: {first['train']}, and 1 of "
        f"the 'val' split: {first['val']} (python -m converters.validate "
    )
    assert "Traceback" not in capfd.readouterr().err


_AS_FALSE = "got False (YAML reads no, off and false as False: quote the word to mean text)"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("name=no", f"config key 'name' needs a string or null, {_AS_FALSE}"),
        ("project=off", f"config key 'project' needs a string, {_AS_FALSE}"),
        (
            "name=true",
            "config key 'name' needs a string or null, "
            "got True (YAML reads yes, on and true as True: quote the word to mean text)",
        ),
    ],
)
def test_a_run_name_or_project_that_reads_as_a_boolean_is_refused(
    tiny_dataset: Path, override: str, expected: str
) -> None:
    # name=no (YAML's False) trained into the folder 'False', project=off into 'False/<name>'
    with pytest.raises(UserError) as error:
        build_config(YOLO11_CONFIG, [f"data={tiny_dataset / 'data.yaml'}", override])
    key, _, word = override.partition("=")
    shell = f": \"{key}='{word}'\" in a shell)"
    assert str(error.value) == f"override '{override}': {expected[:-1]}{shell}"


def test_a_run_name_of_an_exponent_stays_its_text_and_no_name_is_the_default(
    tiny_dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    # name=1e3 trained into the folder '1000.0': name, null by default, had no kind to read it by
    monkeypatch.chdir(tmp_path)
    data = tiny_dataset / "data.yaml"
    config = check_config(build_config(YOLO11_CONFIG, [f"data={data}", "name=1e3", "project=runs"]))
    assert config["name"] == "1e3"
    assert run_dir(config, "yolo11n.pt", data) == tmp_path / "runs" / "1e3"
    for unset in ([], ["name=null"]):  # no name: the default, <model>_<data set folder>
        config = check_config(build_config(YOLO11_CONFIG, [f"data={data}", "project=runs", *unset]))
        assert config["name"] is None
        assert run_dir(config, "yolo11n.pt", data) == tmp_path / "runs" / f"yolo11n_{data.parent.name}"


class FullDiskYolo(PlainYolo):
    """:class:`PlainYolo` whose training appends a row to the run's ``results.csv`` with ultralytics' own
    ``BaseTrainer.save_metrics`` on a full disk: the file is a link to ``/dev/full``."""

    def __init__(self, save_dir: Path) -> None:
        self.save_dir = save_dir

    def train(self, **args) -> dict:
        import time
        from types import SimpleNamespace

        from ultralytics.engine.trainer import BaseTrainer

        trainer = SimpleNamespace(csv=self.save_dir / "results.csv", epoch=0, train_time_start=time.time())
        BaseTrainer.save_metrics(trainer, {"metrics/mAP50(B)": 0.5})
        return {"trained": 1}


def test_a_full_disk_under_ultralytics_results_csv_is_one_line_naming_it(tmp_path: Path, capsys) -> None:
    # ultralytics appends results.csv in place: a full disk refused the row at close, an OSError naming no
    # file, which exit_code took for a bug (a traceback)
    from common.cli import exit_code

    run = tmp_path / "run"
    run.mkdir()
    (run / "results.csv").symlink_to("/dev/full")
    code = exit_code(lambda: fit(FullDiskYolo(run), None, {}, save_dir=run, data=tmp_path / "data.yaml"))
    assert code == 1
    assert capsys.readouterr().err == f"error: No space left on device: {run / 'results.csv'}\n"


def test_a_multi_gpu_runs_note_on_a_full_disk_names_it_and_leaves_nothing(
    tmp_path: Path, monkeypatch
) -> None:
    # write_text then rename: the full temporary folder's OSError named no file (a traceback), and the part
    # was left beside the notes
    import builtins
    import io

    from detection.train import RunNotes

    real_open = io.open

    def full_disk(file, mode="r", *args, **kwargs):  # every file written in tmp_path is on a full disk
        if Path(os.fspath(file)).parent == tmp_path and set(mode) & set("wax"):
            return real_open("/dev/full", mode.replace("x", "w"), *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", full_disk)
    monkeypatch.setattr(builtins, "open", full_disk)
    notes = RunNotes()
    notes.folder = tmp_path
    with pytest.raises(OSError) as error:
        notes._write("refusal", "x" * 100)
    assert error.value.filename == str(tmp_path / "refusal")
    assert list(tmp_path.iterdir()) == []


class ScanningYolo(PlainYolo):
    """:class:`PlainYolo` whose training scans ``data``'s train and val images with ultralytics' own
    ``verify_image_label`` and logs what it says as ``YOLODataset.cache_labels`` does, then runs the callbacks
    of the routine's end with loaders that kept the images the scan passed (in ``weights``' run)."""

    def __init__(self, data: Path, weights: Path) -> None:
        self.callbacks: dict[str, list] = {}
        self.data, self.weights = data, weights

    def add_callback(self, event: str, callback) -> None:
        self.callbacks.setdefault(event, []).append(callback)

    def train(self, **args) -> dict:
        from types import SimpleNamespace

        from ultralytics.data.utils import verify_image_label
        from ultralytics.utils import LOGGER

        loaders = {}
        for split, loader in (("train", "train_loader"), ("val", "test_loader")):
            scanned = [
                verify_image_label((str(path), "", f"{split}: ", False, 1, 0, 0, False))
                for path in split_images(self.data, split)
            ]
            LOGGER.info("\n".join(result[-1] for result in scanned if result[-1]))
            kept = [result[0] for result in scanned if result[0] is not None]
            loaders[loader] = SimpleNamespace(dataset=SimpleNamespace(im_files=kept))
        paths = {"last": self.weights / "last.pt", "best": self.weights / "best.pt", "wdir": self.weights}
        trainer = SimpleNamespace(**loaders, **paths)
        for callback in self.callbacks["on_pretrain_routine_end"]:
            callback(trainer)
        return {"trained": 1}


def test_an_image_the_scan_leaves_out_is_named_with_ultralytics_reason(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    # a PNG cut short passes the header check; ultralytics' scan left it out, and the refusal named it
    # without the reason, which was in ultralytics' log alone
    copy = tmp_path / "copy"
    data = copy_with_names(
        tiny_dataset, copy, yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    )
    image = split_images(data, "train")[0]
    content = image.read_bytes()
    image.unlink()  # a copy of its own, not the shared data set's photo through a link
    image.write_bytes(content[: len(content) // 2])
    weights = tmp_path / "run" / "weights"
    weights.mkdir(parents=True)
    with pytest.raises(UserError) as error:
        fit(ScanningYolo(data, weights), None, {}, save_dir=weights.parent, data=data)
    assert str(error.value).startswith(
        f"ultralytics could not read 1 image(s) of the 'train' split of {data}: {image.name} (Truncated File "
        "Read) (python -m converters.validate "
    )


def test_a_jpeg_cut_short_that_opencv_cannot_decode_is_refused_before_the_model_is_built(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    # the header passed and the scan kept it (no end marker: left as it is); ultralytics' loader then stopped
    # the run in its first epoch, after the model was built: 'Image Not Found', with no reason
    import cv2

    from detection.train import check_training_photos

    copy = tmp_path / "copy"
    data = copy_with_names(
        tiny_dataset, copy, yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    )
    photo = split_images(data, "train")[0]
    content = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()
    photo.unlink()
    image = photo.with_suffix(".jpg")
    image.write_bytes(content[: len(content) * 2 // 3])
    with pytest.raises(UserError) as error:
        check_training_photos(data)
    assert f"cannot decode image {image}: corrupt or not an image" in str(error.value)


def _tiff_dataset(tiny_dataset: Path, copy: Path, **save: object) -> tuple[Path, list[Path]]:
    """A copy of ``tiny_dataset`` whose train and val photos are TIFFs (PIL's ``save`` options); its data.yaml
    and the TIFFs."""
    from PIL import Image

    data = copy_with_names(
        tiny_dataset, copy, yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    )
    tiffs = []
    for split in ("train", "val"):
        for photo in split_images(data, split):
            tiff = photo.with_suffix(".tif")
            with Image.open(photo) as image:
                image.convert("RGB").save(tiff, **save)
            photo.unlink()
            tiffs.append(tiff)
    return data, tiffs


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_a_tiff_only_data_sets_photos_are_checked_from_their_headers(
    tiny_dataset: Path, tmp_path: Path, monkeypatch, compression: str | None
) -> None:
    # every TIFF was decoded whole by OpenCV before training: slow and memory-heavy on large TIFFs
    import cv2
    from PIL import ImageFile

    from detection.train import check_training_photos

    data, _ = _tiff_dataset(tiny_dataset, tmp_path / "copy", compression=compression)

    def decoded(*args, **kwargs):
        raise AssertionError("a photo was decoded")

    monkeypatch.setattr(cv2, "imdecode", decoded)
    monkeypatch.setattr(cv2, "imread", decoded)
    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)
    check_training_photos(data)


def test_a_tiff_cut_short_or_of_float_samples_is_still_refused_before_the_model_is_built(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    # where every TIFF's OpenCV decode named them, the header check names bytes past the end (then decoded)
    import numpy as np
    from PIL import Image

    from detection.train import check_training_photos

    data, tiffs = _tiff_dataset(tiny_dataset, tmp_path / "copy")
    cut, floats = tiffs[0], tiffs[1]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    Image.fromarray(np.zeros((40, 30), np.float32)).save(floats)
    with pytest.raises(UserError) as error:
        check_training_photos(data)
    message = str(error.value)
    assert message.startswith("cannot read 2 photos: ")
    assert f"{cut} (corrupt or not an image" in message and f"{floats} (OpenCV cannot read it (" in message


def _pil_jpeg_tiff() -> bytes:
    """A JPEG-compressed TIFF as PIL writes it (its JPEG tables after the pixels)."""
    import io

    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    pixels = np.random.default_rng(2).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, "TIFF", compression="jpeg")
    return out.getvalue()


def _opencv_tiff(pages: int = 1) -> bytes:
    """A TIFF of one or more pages as OpenCV writes it."""
    import cv2
    import numpy as np

    pixels = np.random.default_rng(1).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    return cv2.imencodemulti(".tif", [pixels] * pages)[1].tobytes()


@pytest.mark.parametrize(
    "make",
    [lambda: raw_tiff(next_page=10**6), lambda: _opencv_tiff(pages=2)[:-200]],
    ids=["next-page-past-the-end", "two-pages-cut-short"],
)
def test_a_tiff_whose_directory_pil_fails_on_is_left_to_opencvs_decode(
    tiny_dataset: Path, tmp_path: Path, make
) -> None:
    # PIL's TIFF reader raised a TypeError ('Missing dimensions') out of the header check: a traceback for a
    # photo OpenCV (so ultralytics) reads
    from detection.train import check_training_photos

    data, tiffs = _tiff_dataset(tiny_dataset, tmp_path / "copy")
    tiffs[-1].write_bytes(make())
    check_training_photos(data)


#: what a TIFF OpenCV cannot read is said to be: a corrupt one, or one PIL reads whole
_CORRUPT, _OPENCV_ONLY = "corrupt or not an image (", "OpenCV cannot read it ("


@pytest.mark.parametrize(
    ("make", "failure"),
    [
        (lambda: _opencv_tiff()[:-3], _CORRUPT),
        (lambda: _pil_jpeg_tiff()[:-200], _CORRUPT),
        (
            lambda: raw_tiff(5, extra=((338, 3, [0, 0]),)),
            f"{_OPENCV_ONLY}Unsupported number of channels: channels is 5; OpenCV needs channels >= 1 && ",
        ),
        (lambda: raw_tiff(tile=16), f"{_OPENCV_ONLY}Invalid tile byte count for tile 0"),
        (
            lambda: raw_tiff(strip=8, counts=lambda sizes: [*sizes[:-1], 0]),
            f"{_OPENCV_ONLY}TIFFFillStrip: Invalid strip byte count 0, strip 3)",
        ),
    ],
    ids=[
        "tag-data-cut-off",
        "jpeg-tables-cut-off",
        "five-samples-per-pixel",
        "uncompressed-tiles",
        "a-strip-of-no-bytes",
    ],
)
def test_a_tiff_opencv_cannot_decode_is_refused_though_its_header_reads(
    tiny_dataset: Path, tmp_path: Path, make, failure: str, recwarn
) -> None:
    # the header check passed them (PIL skipped the tag cut off; the samples, the tiles and a strip's byte
    # count of 0 looked read), and ultralytics' loader stopped the run in its first epoch ('Image Not Found');
    # a TIFF that PIL reads whole was said to be corrupt, its reason the last line of OpenCV's log
    # ("(>     'channels' is 5)"), and a strip's 0 bytes passed the header check (counts under the rows)
    from detection.train import check_training_photos

    data, tiffs = _tiff_dataset(tiny_dataset, tmp_path / "copy")
    tiffs[-1].write_bytes(make())
    with pytest.raises(UserError) as error:
        check_training_photos(data)
    assert str(error.value).startswith(f"cannot decode image {tiffs[-1]}: {failure}")
    assert not [w for w in recwarn if "PIL" in w.filename]  # its damage is one line naming the photo


@pytest.mark.parametrize(
    ("counts", "strip", "held"),
    [
        (lambda sizes: [size - 10 for size in sizes], 0, "758 bytes where its 8 rows need 768"),
        (lambda sizes: [*sizes[:-1], 1], 3, "1 byte where its 8 rows need 768"),
        (
            lambda sizes: [sizes[0] - 10, *sizes[1:-1], sizes[-1] + 10],
            0,
            "758 bytes where its 8 rows need 768",
        ),
    ],
    ids=["every-strip-short", "last-strip-of-one-byte", "short-strip-made-up-by-the-last"],
)
def test_an_uncompressed_tiff_whose_strips_hold_too_few_bytes_is_refused(
    tiny_dataset: Path, tmp_path: Path, counts, strip: int, held: str
) -> None:
    # strips of some bytes, fewer than their rows need: OpenCV (so ultralytics' loader) decoded the first two
    # without a word, every row wrong or the last strip's; the header check left them to that decode, and
    # passed the third by the counts' sum (libtiff makes up counts for it, but not for the others)
    from detection.train import check_training_photos

    data, tiffs = _tiff_dataset(tiny_dataset, tmp_path / "copy")
    tiffs[-1].write_bytes(raw_tiff(strip=8, counts=counts))
    with pytest.raises(UserError) as error:
        check_training_photos(data)
    assert str(error.value) == (
        f"cannot decode image {tiffs[-1]}: OpenCV may read wrong rows of it (uncompressed strip {strip} "
        f"holds {held}: StripByteCounts too small)"
    )


def test_a_tiff_of_two_pages_whose_first_page_has_short_strips_is_refused(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    # a TIFF of more pages than one skipped the strip check (left to OpenCV's decode), which read its first
    # page without a word, the last strip's rows wrong
    from detection.train import check_training_photos

    data, tiffs = _tiff_dataset(tiny_dataset, tmp_path / "copy")
    tiffs[-1].write_bytes(raw_tiff(strip=8, pages=2, counts=lambda sizes: [*sizes[:-1], 1]))
    with pytest.raises(UserError) as error:
        check_training_photos(data)
    assert str(error.value) == (
        f"cannot decode image {tiffs[-1]}: OpenCV may read wrong rows of it (uncompressed strip 3 holds 1 "
        "byte where its 8 rows need 768: StripByteCounts too small)"
    )


def test_an_uncompressed_ycbcr_tiff_is_read_from_its_header_by_its_subsampled_strips(
    tiny_dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    # its strips hold half the bytes of its rows' pixels (chroma subsampled 2x2, the TIFF default), which
    # OpenCV reads: the strip check refused it ('strip 0 holds 384 bytes where its 8 rows need 768')
    import cv2

    from detection.train import check_training_photos

    data, tiffs = _tiff_dataset(tiny_dataset, tmp_path / "copy")
    tiffs[-1].write_bytes(raw_tiff(strip=8, colour=6, counts=lambda sizes: [size // 2 for size in sizes]))

    def decoded(*args, **kwargs):
        raise AssertionError("a photo was decoded")

    monkeypatch.setattr(cv2, "imdecode", decoded)
    check_training_photos(data)


@pytest.mark.parametrize("rows", [12, 32, 40])  # a last strip of 8 rows; one strip; rows per strip past them
def test_an_uncompressed_tiff_whose_strips_hold_their_rows_is_read_from_its_header(
    tiny_dataset: Path, tmp_path: Path, monkeypatch, rows: int
) -> None:
    import struct

    import cv2

    from detection.train import check_training_photos

    data, tiffs = _tiff_dataset(tiny_dataset, tmp_path / "copy")
    tiff = raw_tiff(strip=min(rows, 32))
    if rows > 32:  # the strip's rows per strip past the photo's 32 rows (libtiff's default is 2**32 - 1)
        entry = struct.pack("<HHII", 278, 4, 1, 32)
        assert tiff.count(entry) == 1
        tiff = tiff.replace(entry, struct.pack("<HHII", 278, 4, 1, rows))
    tiffs[-1].write_bytes(tiff)

    def decoded(*args, **kwargs):
        raise AssertionError("a photo was decoded")

    monkeypatch.setattr(cv2, "imdecode", decoded)
    check_training_photos(data)


@pytest.mark.parametrize("suffix", [".heic", ".HEIF"])
def test_a_heic_photo_in_a_data_set_is_refused_by_its_type(
    tiny_dataset: Path, tmp_path: Path, suffix
) -> None:
    # ultralytics' IMG_FORMATS takes .heic in: the check called a phone's photo 'corrupt or not an image'
    from detection.train import check_training_photos

    data = copy_with_names(
        tiny_dataset, tmp_path / "copy", yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    )
    photo = split_images(data, "train")[0]
    heic = photo.with_suffix(suffix)
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    with pytest.raises(UserError) as error:
        check_training_photos(data)
    assert str(error.value) == (
        f"cannot read image {heic}: a HEIC/HEIF photo, which this toolkit does not read (ultralytics "
        "would try to install pi-heif for it): save it as JPEG or PNG"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        # ultralytics keeps the labels of the listed classes alone: these kept none (or, for [[0]], class 0
        # by numpy's reshape), and check_config took them all
        ("classes", [[0]]),
        ("classes", [[[]]]),
        ("classes", []),
        ("classes", [0.5]),
        ("classes", "0,1"),
        ("classes", False),
        ("classes", [True]),
        ("classes", [-1]),
        ("embed", [[0]]),
        ("embed", "x"),
        # ultralytics froze nothing for these, silently
        ("freeze", [[0]]),
        ("freeze", "x"),
        ("freeze", 2.5),
        ("freeze", True),
    ],
)
def test_an_index_key_of_another_shape_is_refused(key: str, value: object) -> None:
    with pytest.raises(UserError, match=rf"^config key '{key}' needs .*, got {re.escape(repr(value))}$"):
        check_config({**default_config(), key: value})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("classes", None, None),
        ("classes", 1, 1),
        ("classes", [0, 2.0], [0, 2]),
        ("embed", [], []),
        ("freeze", 10.0, 10),  # ultralytics froze nothing for a float count
        ("freeze", (1, 2), [1, 2]),  # nor for a tuple
        ("freeze", False, False),
    ],
)
def test_an_index_key_is_taken_as_ultralytics_reads_it(key: str, value: object, expected: object) -> None:
    taken = check_config({**default_config(), key: value})[key]
    assert taken == expected and type(taken) is type(expected)


def test_classes_the_data_set_lacks_are_refused_before_the_run_folder(tiny_dataset, tmp_path, capsys) -> None:
    # their labels were all dropped from train and val: the run trained on photos without a box
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "classes=[0, 9]")
    assert main(["--config", str(YOLO11_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    names = yaml.safe_load((tiny_dataset / "data.yaml").read_text())["names"]
    names = list(names.values()) if isinstance(names, dict) else names
    data = tiny_dataset / "data.yaml"
    head = "error: override 'classes=[0, 9]': config key 'classes' names class(es) [9] that data file"
    assert err.startswith(f"{head} {data} lacks ") and err.count("\n") == 1
    assert err.endswith(f"(its classes are 0-{len(names) - 1}: {', '.join(names)})\n")
    assert not (tmp_path / "runs").exists()
