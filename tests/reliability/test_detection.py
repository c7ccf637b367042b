"""The detection command lines given bad input: one ``error:`` line, exit 2, nothing written, offline.

Each case runs the real entry point in a subprocess (``python -m detection.train`` and friends,
network blocked, ``YOLO_AUTOINSTALL``/``YOLO_OFFLINE`` removed from the environment) and checks:

- a bad config value stops ``detection.train`` before any run folder exists;
- a file that is not a checkpoint (random bytes, a text file named ``best.pt``) stops train,
  evaluate and predict with one line;
- a data set whose val split is empty stops training before it starts, saying how to re-convert;
- a file that is not an image stops ``detection.predict`` with one line naming it, and
  ultralytics never tries to install ``pi-heif`` for it;
- whatever imports ultralytics, the project's defaults keep its auto-install and update checks off;
- YOLOE-11n trains from COCO-pretrained yolo11n.pt with no text model and no network, saying which
  class-name embeddings it used and how many tensors it took over.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.detection.conftest import make_tiny_dataset, write_bad_weights
from tests.reliability.conftest import REPO, assert_user_error, call_main, run_cli

pytestmark = pytest.mark.slow  # every case starts a Python process that imports torch

YOLO11_CONFIG = REPO / "configs" / "detection" / "yolo11n.yaml"
YOLOE_CONFIG = REPO / "configs" / "detection" / "yoloe11n.yaml"
#: What ultralytics prints when it reaches for pip (item 11: a non-image made it install pi-heif).
INSTALL_TRACES = ("pi-heif", "AutoUpdate", "requirements")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic data set, converted (train and val hold images)."""
    return make_tiny_dataset(tmp_path_factory.mktemp("detection-cli"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained YOLO11n with the tiny data set's four classes, saved as ultralytics saves weights."""
    from ultralytics import YOLO

    model = YOLO("yolo11n.yaml")
    model.model.names = dict(enumerate(["bent", "color", "flip", "scratch"]))
    path = tmp_path_factory.mktemp("weights") / "untrained.pt"
    model.save(path)
    return path


@pytest.fixture
def photos(tmp_path: Path, dataset: Path) -> Path:
    """A folder with two real images of the data set."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for image in sorted((dataset / "images" / "val").iterdir())[:2]:
        (folder / image.name).write_bytes(image.read_bytes())
    return folder


def train_cli(dataset: Path, project: Path, *overrides: str, runner=run_cli):
    """``detection.train`` on the tiny data set for one CPU epoch at 64 px into ``project``."""
    args = [f"data={dataset / 'data.yaml'}", f"project={project}", "epochs=1", "imgsz=64", "batch=4"]
    return runner("detection.train", "--config", YOLO11_CONFIG, *args, "workers=0", "device=cpu", *overrides)


# --- detection.train: the config, checked before anything is created -------------------------------

FIRST_BAD_CONFIG = "lr0=true"  # must not train at a learning rate of 1.0; a subprocess, the rest in-process


@pytest.mark.parametrize(
    ("override", "key"),
    [
        (FIRST_BAD_CONFIG, "lr0"),
        ("lr0=-1", "lr0"),
        ("lr0=.nan", "lr0"),
        ("lr0=[1]", "lr0"),
        ("batch=0", "batch"),
        ("batch=1.5", "batch"),
        ("epochs=-3", "epochs"),
        ("epochs=abc", "epochs"),
        ("tile=-1", "tile"),
        ("repeat_factor=nan", "repeat_factor"),
        ("tile_overlap=1.5", "tile_overlap"),
        ("download=maybe", "download"),
    ],
)
def test_bad_config_values_stop_before_any_run_folder(
    dataset: Path, tmp_path: Path, unchanged, override: str, key: str
) -> None:
    runner = run_cli if override == FIRST_BAD_CONFIG else call_main
    with unchanged(dataset):
        result = train_cli(dataset, tmp_path / "project", override, runner=runner)
    assert_user_error(result, f"config key '{key}'")
    assert not (tmp_path / "project").exists()


def test_an_empty_val_split_stops_before_training(tmp_path: Path, unchanged) -> None:
    no_val = make_tiny_dataset(tmp_path / "data", ratios=(1.0, 0.0, 0.0))  # converted with --split 1 0 0
    with unchanged(no_val):
        result = train_cli(no_val, tmp_path / "project", "model=yolo11n.yaml")
    assert_user_error(result, "no images in the 'val' split", "re-convert", "--split")
    assert not (tmp_path / "project").exists()


# --- files that are not checkpoints -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["random bytes", "text"])
@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_weights_that_are_not_checkpoints_are_one_line_errors(
    dataset: Path, photos: Path, tmp_path: Path, unchanged, command: str, kind: str
) -> None:
    weights = write_bad_weights(tmp_path / "run" / "best.pt", kind)
    out = tmp_path / "out"
    with unchanged(dataset, photos, weights.parent):
        if command == "train":
            result = train_cli(dataset, out, f"model={weights}")
        elif command == "evaluate":
            data = dataset / "data.yaml"
            args = ["--data", data, "--split", "val", "--weights", weights, "--out", out]  # test is empty
            result = run_cli("detection.evaluate", *args)
        else:
            result = run_cli("detection.predict", "--weights", weights, "--source", photos, "--out", out)
    assert_user_error(result, f"cannot load model '{weights}'")
    assert not out.exists()


# --- files that are not images: named, and nothing installed ----------------------------------------


@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_text_file_named_png_is_named_and_installs_nothing(
    checkpoint: Path, photos: Path, tmp_path: Path, unchanged, where: str
) -> None:
    fake = photos / "x.png"
    fake.write_text("this is text, not a picture\n")
    source = fake if where == "file" else photos
    out = tmp_path / "out"
    with unchanged(photos):
        result = run_cli("detection.predict", "--weights", checkpoint, "--source", source, "--out", out)
    assert_user_error(result, "cannot read image", str(fake))
    for trace in INSTALL_TRACES:
        assert trace not in result.stdout + result.stderr, trace
    assert not out.exists()


def test_good_photos_still_predict(checkpoint: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "detection.predict", "--weights", checkpoint, "--source", photos, "--out", out, "--imgsz", "64"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "predictions.json").is_file() and "2 images, whole images" in result.stdout


@pytest.mark.parametrize("command", ["predict --out", "evaluate --data", "train project="])
def test_a_folder_whose_path_is_not_utf8_is_refused(
    checkpoint: Path, photos: Path, dataset: Path, tmp_path: Path, not_utf8_folder: Path, command: str
) -> None:
    # a Latin-1 name from an old Windows share: predict ran on, evaluate and train stopped with a traceback
    if command == "predict --out":
        out = not_utf8_folder / "out"
        args = ["--weights", checkpoint, "--source", photos, "--out", out, "--imgsz", "64"]
        flag, result = "--out", run_cli("detection.predict", *args)
    elif command == "evaluate --data":
        data = shutil.copytree(dataset, not_utf8_folder / "data")
        lines = (data / "data.yaml").read_text().splitlines(keepends=True)  # path: as the converter wrote it
        text = "".join(
            f"path: {json.dumps(str(data))}\n" if line.startswith("path:") else line for line in lines
        )
        (data / "data.yaml").write_text(text)
        args = ["--data", data, "--split", "val", "--weights", checkpoint, "--out", tmp_path / "out"]
        flag, result = "--data", run_cli("detection.evaluate", *args)
    else:
        flag, result = "config key 'project'", train_cli(dataset, not_utf8_folder / "project")
    assert_user_error(result, f"{flag} has a name that is not UTF-8, b'bad\\xff' (in {tmp_path}): rename it")
    assert list(not_utf8_folder.iterdir()) == ([not_utf8_folder / "data"] if flag == "--data" else [])
    assert not (tmp_path / "out").exists()


# --- open-vocabulary training offline ------------------------------------------------------------


def test_yoloe_trains_offline_and_names_its_text_source(dataset: Path, tmp_path: Path) -> None:
    from common.weights import weights_dir

    if not (weights_dir() / "yolo11n.pt").is_file():
        pytest.skip(f"yolo11n.pt not cached in {weights_dir()} (the run would fetch it)")
    args = [f"data={dataset / 'data.yaml'}", f"project={tmp_path}", "epochs=1", "imgsz=64", "batch=4"]
    result = run_cli(
        "detection.train", "--config", YOLOE_CONFIG, *args, "workers=0", "device=cpu", "name=run"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    source = "YOLOE text embeddings: fixed seeded random unit vectors (seed 0), made because mobileclip:blt"
    assert f"{source} is not usable here" in result.stdout
    assert "pretrained yolo11n.pt: 493 of its 499 tensors transferred" in result.stdout
    assert (tmp_path / "run" / "weights" / "best.pt").is_file()
    for trace in INSTALL_TRACES:
        assert trace not in result.stdout + result.stderr, trace


# --- ultralytics' switches, as every entry point leaves them -------------------------------------

#: Runs at interpreter start-up (as ``sitecustomize``), reports at exit what ultralytics saw.
_PROBE = """
import atexit, os, sys

def _report():
    loaded = "ultralytics.utils" in sys.modules  # imported by the command itself
    import ultralytics.utils as u
    print(f"PROBE loaded={loaded} YOLO_AUTOINSTALL={os.environ.get('YOLO_AUTOINSTALL')} "
          f"YOLO_OFFLINE={os.environ.get('YOLO_OFFLINE')} AUTOINSTALL={u.AUTOINSTALL} ONLINE={u.ONLINE}")

atexit.register(_report)
"""


@pytest.mark.parametrize(
    ("module", "args", "imports_ultralytics"),
    [
        ("detection.train", ["data=missing.yaml"], True),
        ("detection.evaluate", ["--data", "missing.yaml", "--weights", "missing.pt"], True),  # at module top
        ("detection.predict", ["--weights", "missing.pt", "--source", "."], False),
        ("detection.text_embeddings", ["--names", "cut", "--out", "t.pt", "--clip-weights", "no.pt"], False),
    ],
)
def test_ultralytics_never_auto_installs_whichever_command_imports_it(
    tmp_path: Path, module: str, args: list[str], imports_ultralytics: bool
) -> None:
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "sitecustomize.py").write_text(_PROBE)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "probe"), str(REPO)])}
    result = run_cli(module, *args, cwd=tmp_path, env=env)
    assert_user_error(result)
    probe = next(line for line in result.stdout.splitlines() if line.startswith("PROBE"))
    assert "YOLO_AUTOINSTALL=false YOLO_OFFLINE=true AUTOINSTALL=False ONLINE=False" in probe, probe
    assert f"loaded={imports_ultralytics}" in probe, probe
