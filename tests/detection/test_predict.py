"""detection.predict: whole and tiled inference with a real (untrained) checkpoint, offline; CLI errors,
files that are not images or not checkpoints named in one line before the model runs."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from ultralytics import YOLO

from detection.predict import build_parser, main, predict


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
    assert sorted(p.name for p in out.iterdir()) == ["predictions.json"]  # written atomically: no temporaries


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*.png", ["a.png"]),  # b.jpg beside it is left out
        ("**/*.png", ["a.png", "lot_2/c.png"]),  # ** recurses
    ],
)
def test_a_pattern_predicts_the_photos_it_matches(
    checkpoint: Path, photos: Path, tmp_path: Path, pattern: str, expected: list[str]
) -> None:
    (photos / "lot_2").mkdir()
    shutil.copy(photos / "a.png", photos / "lot_2" / "c.png")
    argv = ["--weights", str(checkpoint), "--source", f"{photos}/{pattern}", "--out", str(tmp_path / "out")]
    assert main([*argv, "--imgsz", "64", "--device", "cpu"]) == 0
    found = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert sorted(found) == [str(photos / name) for name in expected]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--weights", "nowhere.pt", "--source", "."], "error: weights not found: nowhere.pt"),
        (["--source", "nowhere"], "error: --source not found: nowhere"),
        (
            ["--source", "nowhere/*.PNG"],
            "error: the pattern 'nowhere/*.PNG' matches no image files (.png, .jpg, .jpeg, .bmp, .tif,",
        ),
        (["--source", ".", "--tile", "16"], "error: tiled inference needs tile >= 32"),
        # ultralytics: a ValueError traceback for conf/iou, imgsz 0 quietly predicted at 32 px
        (["--source", ".", "--conf", "2"], "error: --conf needs a number in [0, 1], got 2.0"),
        (["--source", ".", "--iou", "nan"], "error: --iou needs a finite number, got nan"),
        (["--source", ".", "--imgsz", "0"], "error: --imgsz needs an integer >= 32, got 0"),
        (["--source", ".", "--device", "foo"], "error: --device: Invalid CUDA 'device=foo' requested."),
        (["--source", ".", "--imgsz", "x"], "error: argument --imgsz: invalid int value: 'x'"),  # no usage
    ],
)
def test_cli_errors_are_one_line(
    checkpoint: Path, tmp_path: Path, capsys, args: list[str], expected: str
) -> None:
    argv = args if "--weights" in args else ["--weights", str(checkpoint), *args]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2  # not the default: inside the source "."
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1


@pytest.mark.parametrize("out", ["notes.txt", "notes.txt/sub"])
def test_an_out_that_is_or_sits_in_a_file_is_named_before_the_model_runs(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch, out: str
) -> None:
    (tmp_path / "notes.txt").write_text("kept\n")  # was a FileExistsError traceback after predicting
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: pytest.fail("model loaded"))
    assert main(["--weights", str(checkpoint), "--source", str(photos), "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{tmp_path / 'notes.txt'} is a file" in err and err.count("\n") == 1
    assert (tmp_path / "notes.txt").read_text() == "kept\n"


def test_every_cli_option_but_out_is_a_predict_parameter() -> None:
    options = {action.dest for action in build_parser()._actions} - {"help", "out"}
    assert options <= set(inspect.signature(predict).parameters)


@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_file_that_is_not_an_image_is_named_before_the_model_runs(
    checkpoint: Path, photos: Path, capsys, monkeypatch, where: str
) -> None:
    fake = photos / "x.png"
    fake.write_text("not a picture\n")
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: pytest.fail("model loaded"))
    source = fake if where == "file" else photos
    assert (
        main(["--weights", str(checkpoint), "--source", str(source), "--out", str(photos.parent / "out")])
        == 2
    )
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: cannot read image {fake}: corrupt or not an image") and err.count("\n") == 1
    )
    assert not (photos.parent / "out").exists()


def test_a_truncated_jpeg_is_named(checkpoint: Path, photos: Path, capsys) -> None:
    data = (photos / "b.jpg").read_bytes()
    (photos / "b.jpg").write_bytes(data[: len(data) // 2])
    assert (
        main(["--weights", str(checkpoint), "--source", str(photos), "--out", str(photos.parent / "out")])
        == 2
    )
    assert capsys.readouterr().err.startswith(f"error: cannot read image {photos / 'b.jpg'}: ")


def test_a_folder_without_images_is_an_error(checkpoint: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("no pictures here\n")
    assert main(["--weights", str(checkpoint), "--source", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: no image files (.png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp) in {tmp_path}"
    )


@pytest.mark.parametrize("source", ["{photos}", "{photos}/**/*.png"])  # a folder, a recursive pattern
@pytest.mark.parametrize("inside", ["", "sub/out"])
def test_an_out_inside_the_photo_folder_is_refused(
    checkpoint: Path, photos: Path, capsys, inside: str, source: str
) -> None:
    before = sorted(p.name for p in photos.iterdir())
    out = photos / inside if inside else photos
    argv = ["--weights", str(checkpoint), "--source", source.format(photos=photos), "--out", str(out)]
    assert main(argv) == 2
    assert (
        capsys.readouterr().err
        == f"error: --out {out} is inside the photo folder {photos}; choose another --out\n"
    )
    assert sorted(p.name for p in photos.iterdir()) == before  # was: predictions.json among the photos


def test_an_mvtec_category_root_is_refused(checkpoint: Path, photos: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "hazelnut"
    for folder in ("test/crack", "ground_truth/crack"):
        (root / folder).mkdir(parents=True)
    shutil.copy(photos / "a.png", root / "test" / "crack" / "000.png")
    shutil.copy(photos / "a.png", root / "ground_truth" / "crack" / "000_mask.png")  # predicted on, before
    assert main(["--weights", str(checkpoint), "--source", str(root), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"error: {root} includes {root / 'ground_truth'}, an MVTec category's defect masks, not photos: "
        f"name the photos' folder instead (e.g. {root / 'test'})\n"
    )
    assert not (tmp_path / "out").exists()


def test_weights_that_are_not_checkpoints_are_one_line_errors(
    bad_weights: Path, photos: Path, capsys
) -> None:
    assert (
        main(["--weights", str(bad_weights), "--source", str(photos), "--out", str(photos.parent / "out")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot load model '{bad_weights}': ") and err.count("\n") == 1
    assert not (photos.parent / "out").exists()


def test_an_out_below_a_flat_patterns_folder_is_allowed(checkpoint: Path, photos: Path) -> None:
    argv = [
        "--weights",
        str(checkpoint),
        "--source",
        f"{photos}/*.png",
        "--out",
        str(photos / "pred"),
        "--imgsz",
        "64",
    ]
    assert main(argv) == 0 and (photos / "pred" / "predictions.json").is_file()
