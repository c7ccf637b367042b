"""detection.predict: whole and tiled inference with a real (untrained) checkpoint, offline; CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from ultralytics import YOLO

from detection.predict import main, predict


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained YOLO11n saved as ultralytics saves weights (two classes)."""
    folder = tmp_path_factory.mktemp("weights")
    model = YOLO("yolo11n.yaml")
    model.model.names = {0: "crack", 1: "spot"}
    path = folder / "untrained.pt"
    model.save(path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, size in (("a.png", (96, 128)), ("b.jpg", (64, 64))):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    return folder


@pytest.mark.parametrize("tile", [None, 48])
def test_predict_whole_and_tiled(checkpoint: Path, photos: Path, tile, network_attempts) -> None:
    found = predict(checkpoint, photos, imgsz=64, conf=0.001, tile=tile, tile_overlap=0.25, device="cpu")
    assert [Path(p).name for p in found] == ["a.png", "b.jpg"]
    a = found[str(photos / "a.png")]
    assert (a["width"], a["height"]) == (128, 96)
    boxes = np.array(a["boxes"]).reshape(-1, 4)
    assert len(boxes) == len(a["scores"]) == len(a["names"]) and len(boxes) <= 300
    assert (boxes[:, [0, 2]] <= 128.01).all() and (boxes[:, [1, 3]] <= 96.01).all() and (boxes >= -0.01).all()
    assert set(a["names"]) <= {"crack", "spot"} and a["call"] in {"good", "crack", "spot"}
    assert a["scores"] == sorted(a["scores"], reverse=True)
    assert network_attempts == []


def test_cli_writes_predictions(checkpoint: Path, photos: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["--weights", str(checkpoint), "--source", str(photos), "--out", str(out), "--imgsz", "64"]
    assert main([*argv, "--tile", "48", "--device", "cpu"]) == 0
    assert set(json.loads((out / "predictions.json").read_text())) == {
        str(photos / "a.png"),
        str(photos / "b.jpg"),
    }
    assert "2 images, tiled (48 px, overlap 0.2)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--weights", "nowhere.pt", "--source", "."], "error: weights not found: nowhere.pt"),
        (["--source", "nowhere"], "error: source not found: nowhere"),
        (["--source", ".", "--tile", "16"], "error: tiled inference needs tile >= 32"),
    ],
)
def test_cli_errors_are_one_line(checkpoint: Path, capsys, args: list[str], expected: str) -> None:
    argv = args if "--weights" in args else ["--weights", str(checkpoint), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1
