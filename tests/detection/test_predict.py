"""detection.predict: whole and tiled inference with a real (untrained) checkpoint, offline; CLI errors,
files that are not images or not checkpoints named in one line before the model runs."""

from __future__ import annotations

import inspect
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from ultralytics import YOLO
from ultralytics.utils.plotting import colors

from common.errors import UserError
from common.io import atomic_write
from common.photo_sources import photo_files
from detection.detections import ImageDetections
from detection.overlays import CALL_COLOR, WHITE, box_label, draw_detections
from detection.predict import (
    PredictedImages,
    build_parser,
    image_entry,
    image_line,
    main,
    predict,
    predicted_images,
)
from tests.conftest import assert_link_loop_line
from tests.detection.conftest import as_12_bit_data, idle_gpus_found


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
    assert list(found) == ["a.png", "b.jpg"]  # named relative to the folder
    a = found["a.png"]
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
    assert set(json.loads((out / "predictions.json").read_text())) == {"a.png", "b.jpg"}
    assert f"2 images, tiled (48 px, overlap 0.2); results in {out / 'predictions.json'}, 2 drawn in " in (
        capsys.readouterr().out
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "overlays",
        "predict.json",
        "predictions.json",
    ]  # no .tmp
    recorded = json.loads((out / "predict.json").read_text())
    assert (recorded["tile"], recorded["tile_overlap"], recorded["images"]) == (48, 0.2, 2)
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["a.jpg", "b.jpg"]


def test_a_file_left_out_is_noted_once(checkpoint: Path, photos: Path, tmp_path: Path, capsys) -> None:
    (photos / "notes.txt").write_text("lot 7")
    argv = [
        "--weights",
        str(checkpoint),
        "--source",
        str(photos),
        "--out",
        str(tmp_path / "out"),
        "--imgsz",
        "64",
    ]
    assert main([*argv, "--device", "cpu"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "left out" in line]
    assert notes == [
        f"note: 1 file below {photos} left out, no image suffix read here "
        + ("(.png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp): notes.txt")
    ]  # the folder was searched twice (once for --overlays' distinct stems) and the note printed twice


def test_predict_json_records_the_device_the_default_ran_on(
    checkpoint: Path, photos: Path, tmp_path: Path
) -> None:
    # the default --device (ultralytics' pick) was recorded as null, not the device the photos ran on
    out = tmp_path / "out"
    argv = ["--weights", str(checkpoint), "--source", str(photos / "a.png"), "--out", str(out)]
    assert main([*argv, "--imgsz", "64", "--overlays", "0"]) == 0
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert json.loads((out / "predict.json").read_text())["device"] == expected


@pytest.mark.parametrize(("idle", "searched", "handed"), [([1], "1", "1"), ([], "", "0")])
def test_an_idle_gpu_runs_where_its_one_search_found_one(
    checkpoint: Path, photos: Path, idle: list[int], searched: str, handed: str, monkeypatch
) -> None:
    # the note named what the first search found, then ultralytics' predictor searched for -1 again; with
    # none found it was handed '' (ultralytics' default) where GPU 0, its default, is what runs
    asked = idle_gpus_found(monkeypatch, idle)
    images = predicted_images(checkpoint, photos / "a.png", imgsz=64, device="-1")
    list(images)
    assert asked[0] == searched and len(asked) > 1 and set(asked[1:]) == {handed}
    assert images.device == f"cuda:{handed}"  # as the stand-in's select_device said


def test_predict_json_records_paths_without_dots(checkpoint: Path, photos: Path, tmp_path: Path) -> None:
    # Path.absolute() kept '..': '/tmp/x/h/../photos' was recorded for --source ../photos
    (tmp_path / "h").mkdir()
    out = tmp_path / "out"
    source, weights = tmp_path / "h" / ".." / "photos", checkpoint.parent / "." / checkpoint.name
    argv = ["--weights", str(weights), "--source", str(source), "--out", str(out), "--imgsz", "64"]
    assert main([*argv, "--overlays", "0", "--device", "cpu"]) == 0
    recorded = json.loads((out / "predict.json").read_text())
    assert (recorded["source"], recorded["weights"]) == (str(photos), str(checkpoint))


def test_printed_counts_are_singular_for_one(photos: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    # '1 boxes' and '1 images' were printed
    entry = {"call": "crack", "score": 0.5, "scores": [0.5]}
    monkeypatch.setattr(
        "detection.predict.predicted_images",
        lambda **_: PredictedImages(iter([("a.png", None, entry)]), 64, "cpu"),
    )
    argv = ["--weights", "w.pt", "--source", str(photos), "--out", str(tmp_path / "out"), "--overlays", "0"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "           crack  0.500    1 box    a.png"
    assert lines[1].startswith("1 image, whole images; results in ")
    assert "  2 boxes  " in image_line("b.jpg", {**entry, "scores": [0.5, 0.2]})
    assert "  0 boxes  " in image_line("c.jpg", {**entry, "scores": []})


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
    assert sorted(found) == expected  # named relative to the pattern's folder


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--weights", "nowhere.pt", "--source", "."], "error: weights not found: nowhere.pt"),
        (["--source", "nowhere"], "error: --source not found: nowhere"),
        (
            ["--source", "nowhere/*.PNG"],
            "error: the pattern 'nowhere/*.PNG' matches no image files (.png, .jpg, .jpeg, .bmp, .tif,",
        ),
        (["--source", ".", "--tile", "16"], "error: --tile needs a window side >= 32 px, got 16\n"),
        (
            ["--source", ".", "--tile", "0"],
            "error: --tile needs a window side >= 32 px, got 0 (leave --tile out",
        ),
        (
            ["--source", ".", "--tile", "64", "--tile-overlap", "1"],
            "error: --tile-overlap needs a number in [0, 0.9], got 1.0",
        ),
        # ultralytics: a ValueError traceback for conf/iou, imgsz 0 quietly predicted at 32 px
        (["--source", ".", "--conf", "2"], "error: --conf needs a number in [0, 1], got 2.0"),
        (["--source", ".", "--iou", "nan"], "error: --iou needs a finite number, got nan"),
        (["--source", ".", "--imgsz", "0"], "error: --imgsz needs an integer in [32, 8192], got 0"),
        (["--source", ".", "--imgsz", "100000"], "error: --imgsz needs an integer in [32, 8192], got 100000"),
        (  # was ultralytics' "Invalid CUDA 'device=foo' requested", though foo names no CUDA device
            ["--source", ".", "--device", "gpu"],
            "error: --device: unknown device 'gpu': use cpu, cuda, cuda:N, N, N,M (several GPUs) or mps; "
            "left out, the first GPU, else the CPU\n",
        ),
        pytest.param(  # was ultralytics' "Invalid CUDA 'device=0' requested. Use 'device=cpu' ..."
            ["--source", ".", "--device", "cuda"],
            "error: --device cuda: no CUDA device is visible on this machine (torch sees none); pass cpu\n",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
        pytest.param(  # ultralytics ran on the CPU without a word
            ["--source", ".", "--device", "mps"],
            "error: --device mps: Apple's MPS backend is not available on this machine",
            marks=pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS"),
        ),
        (["--source", ".", "--imgsz", "x"], "error: argument --imgsz: invalid int value: 'x'"),  # no usage
    ],
)
def test_cli_errors_are_one_line(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, args: list[str], expected: str
) -> None:
    argv = args if "--weights" in args else ["--weights", str(checkpoint), *args]
    argv = [str(photos) if arg == "." else arg for arg in argv]  # a check moved after decoding stays fast
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1


@pytest.mark.parametrize("source", ["", " "])
def test_an_empty_source_is_refused(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch, source: str
) -> None:
    # --source "$PHOTOS" with the variable unset: every photo below the working folder was predicted
    monkeypatch.chdir(photos)
    argv = ["--weights", str(checkpoint), "--source", source, "--out", str(tmp_path / "out")]
    assert main([*argv, "--imgsz", "64", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == (
        f"error: --source is empty ({source!r}; an unset shell variable?): "
        "pass an image, a folder or a glob\n"
    )
    assert not (tmp_path / "out").exists()


def test_an_empty_out_is_refused(checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    # --out "$OUT" with the variable unset: predictions.json and overlays/ went into the working folder
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    argv = ["--weights", str(checkpoint), "--source", str(photos), "--out", ""]
    assert main([*argv, "--imgsz", "64", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == (
        "error: argument --out: is empty (''; an unset shell variable?) "
        "(see python -m detection.predict --help)\n"
    )
    assert not list((tmp_path / "here").iterdir())


def test_the_out_help_names_every_file_a_run_writes(checkpoint: Path, photos: Path, tmp_path: Path) -> None:
    # it named predictions.json and overlays/ alone: predict.json, written beside them, was left out
    out = tmp_path / "out"
    argv = ["--weights", str(checkpoint), "--source", str(photos), "--out", str(out)]
    assert main([*argv, "--imgsz", "64", "--device", "cpu"]) == 0
    written = sorted(path.name + ("/" if path.is_dir() else "") for path in out.iterdir())
    assert written == ["overlays/", "predict.json", "predictions.json"]
    [help_text] = [action.help for action in build_parser()._actions if action.dest == "out"]
    assert [name for name in written if name not in help_text] == []


def test_a_ctrl_c_says_the_out_folder_holds_an_earlier_runs_results(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # 'interrupted' alone: the earlier run's predictions.json left in --out read as this run's
    import detection.predict as predict_module

    out = tmp_path / "out"
    argv = ["--weights", str(checkpoint), "--source", str(photos), "--out", str(out), "--imgsz", "64"]
    assert main([*argv, "--device", "cpu"]) == 0
    earlier = (out / "predictions.json").read_text()
    capsys.readouterr()
    # how they were made, beside them: predictions.json holds only per-image records
    assert json.loads((out / "predict.json").read_text()) == {
        "weights": str(checkpoint),
        "source": str(photos),
        "images": len(json.loads(earlier)),
        "imgsz": 64,
        "conf": 0.25,
        "iou": 0.7,
        "tile": None,
        "tile_overlap": None,
        "device": "cpu",
    }

    def stop(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the photos are predicted

    monkeypatch.setattr(predict_module, "predict_all", stop)
    assert main([*argv, "--device", "cpu"]) == 130
    assert capsys.readouterr().err.endswith(
        "stopped: predictions.json is written once every photo is done, so nothing of this run was kept; "
        f"{out / 'predictions.json'}, {out / 'predict.json'} and {out / 'overlays'} are an earlier run's\n"
        "interrupted\n"
    )
    assert (out / "predictions.json").read_text() == earlier


def test_predict_json_records_relative_paths_absolute(
    checkpoint: Path, photos: Path, tmp_path: Path, monkeypatch
) -> None:
    # --weights w.pt --source photos, as typed in the folder: predict.json is read from anywhere later
    shutil.copy(checkpoint, tmp_path / "w.pt")
    monkeypatch.chdir(tmp_path)
    assert (
        main(["--weights", "w.pt", "--source", "photos", "--out", "out", "--imgsz", "64", "--device", "cpu"])
        == 0
    )
    recorded = json.loads((tmp_path / "out" / "predict.json").read_text())
    assert (recorded["weights"], recorded["source"]) == (str(tmp_path / "w.pt"), str(photos))


def test_predict_json_records_a_quoted_tilde_source_as_the_home_folder(
    checkpoint: Path, photos: Path, tmp_path: Path, monkeypatch
) -> None:
    # --source '~/photos' (quoted: no shell expanded it) read the home folder's photos and was recorded
    # as <working folder>/~/photos
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path / "photos")
    argv = ["--weights", str(checkpoint), "--source", "~/photos", "--out", str(tmp_path / "out")]
    assert main([*argv, "--imgsz", "64", "--overlays", "0", "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "out" / "predict.json").read_text())["source"] == str(photos)


@pytest.mark.parametrize(("asked", "ran"), [(["--imgsz", "100"], 128), ([], 640)])
def test_predict_json_records_the_size_the_images_ran_at(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, asked: list[str], ran: int
) -> None:
    # --imgsz 100 ran at 128 (with a note) and predict.json recorded 100; without --imgsz it recorded
    # null, the size the weights were trained at (an untrained checkpoint records none: 640)
    out = tmp_path / "out"
    argv = ["--weights", str(checkpoint), "--source", str(photos / "b.jpg"), "--out", str(out)]
    assert main([*argv, *asked, "--overlays", "0", "--device", "cpu"]) == 0
    assert json.loads((out / "predict.json").read_text())["imgsz"] == ran


def test_the_ctrl_c_note_names_each_earlier_file_once(tmp_path: Path) -> None:
    from detection.predict import stopped_note

    kept = "stopped: predictions.json is written once every photo is done, so nothing of this run was kept"
    assert stopped_note(tmp_path) == kept  # an empty --out: nothing earlier to name
    (tmp_path / "predictions.json").write_text("{}")
    assert stopped_note(tmp_path) == f"{kept}; {tmp_path / 'predictions.json'} is an earlier run's"
    (tmp_path / "overlays").mkdir()
    assert stopped_note(tmp_path) == (
        f"{kept}; {tmp_path / 'predictions.json'} and {tmp_path / 'overlays'} are an earlier run's"
    )


def test_a_write_that_fails_names_the_out_folder(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # the folder changed while the model ran: either file may be the one that failed
    import detection.predict as predict_module

    def full(path, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(predict_module, "atomic_write", full)
    out = tmp_path / "out"
    argv = ["--weights", str(checkpoint), "--source", str(photos), "--out", str(out), "--imgsz", "64"]
    assert main([*argv, "--overlays", "0", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == f"error: cannot write into {out}: [Errno 28] No space left on device\n"


def fail_at_predictions_json(monkeypatch, error: BaseException) -> None:
    """``predictions.json``'s write raises ``error`` (a full disk, a Ctrl-C); the overlays are written."""
    import detection.predict as predict_module

    def write(path, *args, **kwargs):
        if Path(path).name == "predictions.json":
            raise error
        return atomic_write(path, *args, **kwargs)

    monkeypatch.setattr(predict_module, "atomic_write", write)


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (
            OSError(28, "No space left on device"),
            2,
            "error: cannot write into {out}: [Errno 28] No space left on device\n",
        ),
        (
            KeyboardInterrupt(),
            130,
            "stopped: predictions.json is written once every photo is done, so nothing of this run was kept; "
            "{out}/predictions.json, {out}/predict.json and {out}/overlays are an earlier run's\n"
            "interrupted\n",
        ),
    ],
)
def test_a_failed_predictions_json_keeps_the_earlier_run_whole(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch, error, code: int, said: str
) -> None:
    # overlays/ was put in place before predictions.json was written: a full disk or a Ctrl-C there left
    # this run's overlays beside the earlier run's predictions.json, or beside none (refused next time)
    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        fail_at_predictions_json(patched, error)
        assert cli(checkpoint, photos, out) == code
    assert not (out / "overlays").exists()
    assert cli(checkpoint, photos, out) == 0  # it was refused as made otherwise
    earlier = (out / "predictions.json").read_text()
    (photos / "a.png").unlink()
    capsys.readouterr()
    fail_at_predictions_json(monkeypatch, error)
    assert cli(checkpoint, photos, out) == code
    assert capsys.readouterr().err.endswith(said.format(out=out))
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["a.jpg", "b.jpg"]
    assert (out / "predictions.json").read_text() == earlier


def test_a_ctrl_c_once_predictions_json_is_written_removes_the_earlier_overlays(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # this run's predictions.json is in place, its overlays not: the earlier run's may not stay beside it
    out = tmp_path / "out"
    assert cli(checkpoint, photos, out) == 0
    (photos / "a.png").unlink()

    def stop(*args, **kwargs):
        raise KeyboardInterrupt  # as the overlays are renamed into place

    monkeypatch.setattr("common.folders._replace", stop)
    capsys.readouterr()
    assert cli(checkpoint, photos, out) == 130
    assert capsys.readouterr().err.endswith(
        f"stopped: {out / 'predictions.json'} is this run's, written before its overlays were put in place: "
        f"{out} holds none\ninterrupted\n"
    )
    assert not (out / "overlays").exists()
    assert set(json.loads((out / "predictions.json").read_text())) == {"b.jpg"}


@pytest.mark.parametrize(
    ("fault", "code", "line"),
    [
        (
            KeyboardInterrupt,
            130,
            "stopped: {predictions} is this run's, written before its predict.json was put in place: "
            "{out} holds none\n",
        ),
        (
            OSError(28, "No space left on device"),
            2,
            "error: cannot write into {out}: ",
        ),
    ],
)
def test_a_ctrl_c_or_full_disk_between_predictions_json_and_predict_json_leaves_no_earlier_record(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch, fault, code: int, line: str
) -> None:
    # --overlays 0: it left this run's predictions.json beside the earlier run's predict.json, and a Ctrl-C's
    # note said nothing of this run was kept, both files an earlier run's
    out = tmp_path / "out"
    assert cli(checkpoint, photos, out, "--overlays", "0") == 0
    (photos / "a.png").unlink()
    write = atomic_write

    def stop(path, data):
        if Path(path).name == "predict.json":
            raise fault
        return write(path, data)

    monkeypatch.setattr("detection.predict.atomic_write", stop)
    capsys.readouterr()
    assert cli(checkpoint, photos, out, "--overlays", "0") == code
    err = capsys.readouterr().err
    assert line.format(predictions=out / "predictions.json", out=out) in err
    assert not (out / "predict.json").exists()
    assert set(json.loads((out / "predictions.json").read_text())) == {"b.jpg"}


def test_weights_with_a_class_named_good_are_refused(photos: Path, tmp_path: Path, capsys) -> None:
    model = YOLO("yolo11n.yaml")
    model.model.names = {0: "crack", 1: "good"}  # every 'good' box called its image good
    weights = tmp_path / "good.pt"
    model.save(weights)
    assert cli(weights, photos, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: weights {weights} has a class named 'good'") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


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
    options = {action.dest for action in build_parser()._actions} - {"help", "out", "overlays"}
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


def test_a_tiff_opencv_cannot_read_is_named_before_the_model_runs(
    checkpoint: Path, photos: Path, capsys, monkeypatch
) -> None:
    # 32-bit float samples: PIL reads them, OpenCV (which the model reads photos with) does not
    path = photos / "float.tif"
    Image.fromarray(np.linspace(0, 1, 60 * 80, dtype=np.float32).reshape(60, 80)).save(path)
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: pytest.fail("model loaded"))
    assert (
        main(["--weights", str(checkpoint), "--source", str(photos), "--out", str(photos.parent / "out")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot decode image {path}: OpenCV cannot read it (")
    assert err.count("\n") == 1 and not (photos.parent / "out").exists()


def stderr_until_the_model_loads(checkpoint: Path, source: Path, capsys, monkeypatch) -> str:
    """The stderr of :func:`predicted_images` of ``source`` up to loading the model (stopped there)."""

    class Loaded(Exception):
        pass

    def load(weights):
        raise Loaded

    monkeypatch.setattr("detection.predict.load_detector", load)
    with pytest.raises(Loaded):
        predicted_images(checkpoint, source)
    return capsys.readouterr().err


def test_12_bit_data_in_a_16_bit_photo_is_one_warning_before_the_model_runs(
    checkpoint: Path, photos: Path, capsys, monkeypatch
) -> None:
    # OpenCV reads 16-bit pixels as value >> 8: 12-bit data reached the model nearly black, silently
    camera = as_12_bit_data(photos / "a.png")
    shutil.copy(camera, photos / "c.png")  # a second one: still one line
    err = stderr_until_the_model_loads(checkpoint, photos, capsys, monkeypatch)
    assert err.startswith(
        f"warning: 2 photos are 16-bit with every value below 4096 (12-bit camera data?), e.g. {camera} "
        "(values up to "
    )
    assert err.count("\n") == 1


def test_12_bit_data_after_16_other_photos_is_warned_of(
    checkpoint: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # only the first 16 photos were checked: a 12-bit lot sorted after an 8-bit one reached the model unwarned
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(20):
        cv2.imwrite(str(folder / f"{index:02d}.png"), np.full((8, 8, 3), 200, np.uint8))
    camera = as_12_bit_data(folder / "19.png")
    err = stderr_until_the_model_loads(checkpoint, folder, capsys, monkeypatch)
    assert err.startswith(
        "warning: 1 of the 16 photos checked across the 20 is 16-bit with every value below 4096 (12-bit "
        f"camera data?), e.g. {camera} "
    )


def test_every_photo_that_does_not_decode_is_named_in_one_line(
    checkpoint: Path, photos: Path, capsys, monkeypatch
) -> None:
    # it stopped at the first: three bad photos took three runs to find
    data = (photos / "b.jpg").read_bytes()
    (photos / "b.jpg").write_bytes(data[: len(data) // 2])
    (photos / "c.png").write_bytes(b"")
    (photos / "d.png").write_text("not a picture\n")
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: pytest.fail("model loaded"))
    out = photos.parent / "out"
    assert main(["--weights", str(checkpoint), "--source", str(photos), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read 3 photos: {photos / 'b.jpg'} (corrupt or not an image (")
    assert f", {photos / 'c.png'} (the file is empty), {photos / 'd.png'} (corrupt or not an image (" in err
    assert err.count("\n") == 1 and not out.exists()


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


@pytest.mark.parametrize("source", ["{photos}", "{photos}/**/*.jpg"])  # a folder, a pattern reading overlays
@pytest.mark.parametrize("inside", ["", "sub/out"])
def test_an_out_inside_the_photo_folder_is_refused(
    checkpoint: Path, photos: Path, capsys, inside: str, source: str
) -> None:
    before = sorted(p.name for p in photos.iterdir())
    out = photos / inside if inside else photos
    argv = ["--weights", str(checkpoint), "--source", source.format(photos=photos), "--out", str(out)]
    assert main(argv) == 2
    # was '--out ... is inside the photo folder ...; choose another --out': no reason, as with --overlays 0
    where = f"is inside the photo folder {photos}" if inside else "is the photo folder"
    assert capsys.readouterr().err == (
        f"error: output folder {out} {where}, where a later run would read its overlays as photos; "
        "choose another --out\n"
    )
    assert sorted(p.name for p in photos.iterdir()) == before  # was: predictions.json among the photos


@pytest.mark.parametrize("source", ["{photos}", "{photos}/**/*.png"])
@pytest.mark.parametrize("inside", ["", "sub/out"])
def test_an_out_inside_the_photo_folder_passes_with_no_overlays(
    checkpoint: Path, photos: Path, inside: str, source: str
) -> None:
    # was refused though the run writes no image there: a later run reads no file of it
    source = source.format(photos=photos)
    before = photo_files(source)[0]
    out = photos / inside if inside else photos
    argv = ["--weights", str(checkpoint), "--source", source, "--out", str(out), "--imgsz", "64"]
    assert main([*argv, "--overlays", "0"]) == 0
    assert {"predict.json", "predictions.json"} <= {path.name for path in out.iterdir()}
    assert not (out / "overlays").exists()
    assert photo_files(source)[0] == before


@pytest.mark.parametrize("resolve", ["this Python's", "3.13's"])
@pytest.mark.parametrize("through", ["out", "source"])
def test_an_out_or_source_through_a_link_loop_is_one_line(
    checkpoint: Path,
    photos: Path,
    tmp_path: Path,
    link_loop: Path,
    through: str,
    resolve: str,
    monkeypatch,
    capsys,
) -> None:
    # --out loop/r1 was Path.resolve's 'RuntimeError: Symlink loop from ...' traceback; --source loop/x
    # was 'not found', of a path that is there. Python 3.13's resolve raises for a loop only in strict mode:
    # there --out loop/x passed check_output_folder: the model was loaded, then the line named the overlays
    # folder ('output folder loop/x/overlays: ...'), not --out
    if resolve == "3.13's":
        monkeypatch.setattr(
            Path, "resolve", lambda self, strict=False: type(self)(os.path.realpath(self, strict=strict))
        )
    paths = {"source": str(photos), "out": str(tmp_path / "r1"), through: f"{link_loop}/x"}
    argv = ["--weights", str(checkpoint), "--source", paths["source"], "--out", paths["out"]]
    assert main(argv) == 2
    assert_link_loop_line(capsys.readouterr().err, f"{link_loop}/x: ", link_loop)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["loop", "photos"]


def test_an_out_linked_into_the_photo_folder_is_refused(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys
) -> None:
    # was: held against the folder resolved (elsewhere/), it passed, and the next run over photos/ read
    # its overlays as photos: the folder search follows the link
    (tmp_path / "elsewhere").mkdir()
    link = photos / "latest"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert main(["--weights", str(checkpoint), "--source", str(photos), "--out", str(link)]) == 2
    assert capsys.readouterr().err == (
        f"error: output folder {link} is inside the photo folder {photos}, where a later run would read "
        "its overlays as photos; choose another --out\n"
    )
    assert not any((tmp_path / "elsewhere").iterdir())


def test_an_out_whose_overlays_the_pattern_matches_is_refused(
    checkpoint: Path, tmp_path: Path, capsys
) -> None:
    # was: only a ** pattern's leading folder was checked; a later run read lots/run/overlays/a.jpg
    photo = tmp_path / "lots" / "line_1" / "cam" / "a.jpg"
    photo.parent.mkdir(parents=True)
    cv2.imwrite(str(photo), np.zeros((32, 32, 3), np.uint8))
    source, out = f"{tmp_path}/lots/*/*/*.jpg", tmp_path / "lots" / "run"
    assert main(["--weights", str(checkpoint), "--source", source, "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: output folder {out} would hold images ({out / 'overlays' / '*.jpg'}) that the pattern "
        f"'{source}' "
        "matches, where a later run would read its overlays as photos; choose another --out\n"
    )
    assert not out.exists()


def test_an_out_whose_overlays_a_run_does_not_draw_passes(checkpoint: Path, tmp_path: Path) -> None:
    # was refused with --overlays 0 too: 'would hold images (.../run/overlays/*.jpg)', of overlays never drawn
    photo = tmp_path / "lots" / "line_1" / "cam" / "a.jpg"
    photo.parent.mkdir(parents=True)
    cv2.imwrite(str(photo), np.zeros((32, 32, 3), np.uint8))
    source, out = f"{tmp_path}/lots/*/*/*.jpg", tmp_path / "lots" / "run"
    argv = ["--weights", str(checkpoint), "--source", source, "--out", str(out), "--imgsz", "64"]
    assert main([*argv, "--overlays", "0"]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["predict.json", "predictions.json"]
    assert photo_files(source)[0] == [photo]  # a later run reads no file of the run


#: Why an --out whose overlays/ holds a photo is refused, by --overlays.
DRAWN_OVER = "a run that draws overlays replaces it whole, the photo with it"
KEPT = "--overlays 0 keeps it: an earlier run's overlays there are read as photos"


@pytest.mark.parametrize(
    ("source", "overlays", "why"),
    [
        # was taken: the photo was deleted with the overlays it replaced
        ("{out}/overlays/a.jpg", "50", DRAWN_OVER),
        ("{lots}/*/*/*.jpg", "0", KEPT),  # an earlier run's overlays, which --overlays 0 leaves
        ("{lots}", "0", KEPT),  # inside the photo folder: refused for them alone, with no overlays drawn
    ],
)
def test_an_out_whose_overlays_are_among_the_photos_is_refused(
    checkpoint: Path, tmp_path: Path, capsys, source: str, overlays: str, why: str
) -> None:
    # was 'holds the photo ...' with no reason, or with a folder --source 'is inside the photo folder'
    lots = tmp_path / "lots"
    out = lots / "run"
    earlier = out / "overlays" / "a.jpg"
    earlier.parent.mkdir(parents=True)
    cv2.imwrite(str(earlier), np.zeros((32, 32, 3), np.uint8))
    source = source.format(out=out, lots=lots)
    argv = ["--weights", str(checkpoint), "--source", source, "--out", str(out), "--overlays", overlays]
    assert main([*argv, "--imgsz", "64"]) == 2
    assert capsys.readouterr().err == (
        f"error: output folder {out / 'overlays'} holds the photo {earlier} ({why}); choose another --out\n"
    )
    assert earlier.is_file() and sorted(out.iterdir()) == [out / "overlays"]


def test_a_pattern_matching_no_photo_says_so_before_the_out_is_checked(
    checkpoint: Path, tmp_path: Path, capsys
) -> None:
    # the --out was checked first: 'would hold images ... that the pattern matches', of one matching none
    (tmp_path / "lots" / "line_1" / "cam").mkdir(parents=True)
    source, out = f"{tmp_path}/lots/*/*/*.jpg", tmp_path / "lots" / "run"
    assert main(["--weights", str(checkpoint), "--source", source, "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: the pattern '{source}' matches no image files (.png,")
    assert not out.exists()


@pytest.mark.parametrize(
    ("pattern", "out"),
    [
        ("*/*/*.png", "run"),  # was refused: its overlays are .jpg, which '*.png' never matches
        ("*/*/*.jpg", ".run"),  # was refused: glob's '*' leaves the hidden .run out
    ],
)
def test_an_out_whose_overlays_the_pattern_cannot_match_passes(
    checkpoint: Path, tmp_path: Path, pattern: str, out: str
) -> None:
    lots = tmp_path / "lots"
    photo = lots / "line_1" / "cam" / "a.png"
    photo.parent.mkdir(parents=True)
    cv2.imwrite(str(photo), np.zeros((32, 32, 3), np.uint8))
    cv2.imwrite(str(photo.with_suffix(".jpg")), np.zeros((32, 32, 3), np.uint8))
    source = f"{lots}/{pattern}"
    argv = ["--weights", str(checkpoint), "--source", source, "--out", str(lots / out), "--imgsz", "64"]
    assert main(argv) == 0
    assert [path.name for path in (lots / out / "overlays").iterdir()] == ["line_1__cam__a.jpg"]
    assert photo_files(source)[0] == [photo.with_suffix(pattern[-4:])]  # a later run reads no overlay


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


def test_cli_defaults_are_predict_defaults() -> None:
    defaults = {name: p.default for name, p in inspect.signature(predict).parameters.items()}
    for action in build_parser()._actions:
        if action.dest not in {"help", "out", "overlays"} and not action.required:
            assert action.default == defaults[action.dest], action.dest
    one_at_a_time = {name: p.default for name, p in inspect.signature(predicted_images).parameters.items()}
    assert one_at_a_time == {**defaults, "distinct_stems": False}


class FakeDetector:
    """Stands in for the loaded model: four boxes on every image or tile, filtered as ultralytics does."""

    names = {0: "crack", 1: "spot"}
    boxes = torch.tensor([[1.0, 1, 5, 5], [10, 10, 14, 14], [20, 20, 24, 24], [30, 30, 34, 34]])
    scores = torch.tensor([0.9, 0.5, 0.05, 0.002])

    def predict(self, source, *, conf: float = 0.25, max_det: int = 300, **settings) -> list[SimpleNamespace]:
        keep = (self.scores >= conf).nonzero().flatten()[:max_det]
        boxes = SimpleNamespace(xyxy=self.boxes[keep], conf=self.scores[keep], cls=torch.ones(len(keep)))
        return [SimpleNamespace(boxes=boxes) for _ in (source if isinstance(source, list) else [source])]


@pytest.mark.parametrize("tile", [None, 48])
def test_no_box_under_conf_is_kept(checkpoint: Path, photos: Path, monkeypatch, tile) -> None:
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: FakeDetector())
    found = predict(checkpoint, photos / "b.jpg", imgsz=64, conf=0.04, tile=tile, device="cpu")
    assert set(found["b.jpg"]["scores"]) == {0.9, 0.5, 0.05}  # not 0.002


def test_max_det_counts_the_boxes_of_all_windows(checkpoint: Path, photos: Path, monkeypatch) -> None:
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: FakeDetector())
    found = predict(checkpoint, photos / "a.png", imgsz=64, conf=0.001, tile=48, device="cpu", max_det=3)
    assert found["a.png"]["scores"] == [0.9, 0.9, 0.9]  # each window's best box
    whole = predict(checkpoint, photos / "a.png", imgsz=64, conf=0.001, device="cpu", max_det=3)
    assert whole["a.png"]["scores"] == [0.9, 0.5, 0.05]


def test_tiled_predictions_use_the_given_overlap(checkpoint: Path, photos: Path, monkeypatch) -> None:
    import detection.predict

    windows = []

    def model_on_tiles(tiles, predict_tiles, **options):
        seen = []

        def counting(tiles, boxes):
            seen.extend(boxes.tolist())
            return predict_tiles(tiles, boxes)

        merged = predict_tiled(tiles, counting, **options)
        windows.append(seen)
        return merged

    predict_tiled = detection.predict.predict_tiled
    monkeypatch.setattr(detection.predict, "predict_tiled", model_on_tiles)
    predict(checkpoint, photos / "a.png", imgsz=64, tile=48, tile_overlap=0.5, device="cpu")
    # 128 x 96 at 48-px windows and 24-px overlap: x 0, 24, 48, 72, 80 and y 0, 24, 48
    assert windows == [[[x, y, x + 48, y + 48] for y in (0, 24, 48) for x in (0, 24, 48, 72, 80)]]


def test_tiled_predictions_show_each_photos_windows_as_they_run(
    checkpoint: Path, photos: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: FakeDetector())
    monkeypatch.setattr("detection.tiling.PROGRESS_DELAY", 0)  # shown at once, not after 2 s
    predict(checkpoint, photos, imgsz=64, tile=48, device="cpu")
    err = capsys.readouterr().err
    # 128 x 96 at 48-px windows and the default overlap 0.2: 4 x 3; 64 x 64: 2 x 2
    assert "a.png:   0%" in err and "0/12 [" in err and "b.jpg:   0%" in err and "0/4 [" in err
    predict(checkpoint, photos, imgsz=64, device="cpu")
    assert "window" not in capsys.readouterr().err  # whole photos: one model call each, no bar


def test_an_image_entry_rounds_boxes_and_scores() -> None:
    detections = ImageDetections(
        np.array([[1.23456, 2.5, 30.0049, 40.9999]]), np.array([0.123456]), np.array([1])
    )
    assert image_entry((50, 60), detections, ["crack", "spot"], conf=0.1) == {
        "width": 60,
        "height": 50,
        "boxes": [[1.23, 2.5, 30.0, 41.0]],
        "scores": [0.1235],
        "classes": [1],
        "names": ["spot"],
        "call": "spot",
        "score": 0.1235,
    }


@pytest.mark.parametrize(("given", "used"), [(None, 96), (64, 64)])
def test_the_model_runs_at_its_training_size_unless_told(
    checkpoint: Path, photos: Path, monkeypatch, given, used
):
    # it ran at 640 whatever the size the checkpoint was trained at
    sizes = []

    class TrainedAt96(FakeDetector):
        overrides = {"imgsz": 96, "task": "detect"}

        def predict(self, source, **settings):
            sizes.append(settings["imgsz"])
            return super().predict(source, **settings)

    monkeypatch.setattr("detection.predict.load_detector", lambda weights: TrainedAt96())
    predict(checkpoint, photos / "a.png", imgsz=given, device="cpu")
    assert sizes == [used]


def test_a_size_off_the_stride_runs_rounded_up_with_a_note(checkpoint: Path, photos: Path, capsys) -> None:
    # --imgsz 100 ran at 128 with ultralytics' WARNING line; the note and the size it ran at say so now
    found = predicted_images(checkpoint, photos / "a.png", imgsz=100, conf=0.001, device="cpu")
    err = capsys.readouterr().err
    assert "note: --imgsz 100 is not a multiple of the detector's stride: it runs at 128" in err
    assert "WARNING" not in err
    [(name, _, record)] = list(found)
    assert name == "a.png" and (record["width"], record["height"]) == (128, 96)
    assert "WARNING" not in capsys.readouterr().err


# --- keys and overlays ----------------------------------------------------------------------------


def test_keys_do_not_depend_on_the_working_folder(
    checkpoint: Path, photos: Path, tmp_path: Path, monkeypatch
) -> None:
    # keys were the paths as typed: "photos/a.png" from one folder, "../photos/a.png" from another
    (tmp_path / "elsewhere").mkdir()
    keys = []
    for cwd, source in ((tmp_path, "photos"), (tmp_path / "elsewhere", "../photos/*.png")):
        monkeypatch.chdir(cwd)
        keys.append(list(predict(checkpoint, source, imgsz=64, device="cpu", conf=0.001)))
    assert keys == [["a.png", "b.jpg"], ["a.png"]]


def cli(checkpoint: Path, source: Path | str, out: Path, *extra: str) -> int:
    return main(
        ["--weights", str(checkpoint), "--source", str(source), "--out", str(out), "--imgsz", "64", *extra]
    )


@pytest.mark.parametrize(
    ("overlays", "drawn"), [("1", ["a.jpg"]), ("-1", ["a.jpg", "lot_2__c.jpg"]), ("0", None)]
)
def test_overlays_draws_the_first_n(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, overlays: str, drawn
) -> None:
    (photos / "lot_2").mkdir()
    shutil.copy(photos / "a.png", photos / "lot_2" / "c.png")
    assert (
        cli(checkpoint, f"{photos}/**/*.png", tmp_path / "out", "--overlays", overlays, "--conf", "0.001")
        == 0
    )
    folder = tmp_path / "out" / "overlays"
    printed = capsys.readouterr().out.splitlines()[-1]
    if drawn is None:
        assert not folder.exists() and "drawn" not in printed
        return
    assert sorted(p.name for p in folder.iterdir()) == drawn
    assert printed.endswith(f", {len(drawn)} drawn in {folder}")
    image = cv2.imread(str(folder / "a.jpg"))
    assert image.shape == (96, 128, 3)  # the photo's own size


def test_a_rerun_replaces_the_overlays_whole(checkpoint: Path, photos: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert cli(checkpoint, photos, out) == 0
    (photos / "a.png").unlink()
    assert cli(checkpoint, photos, out) == 0
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["b.jpg"]  # a.jpg of the first run: gone
    assert set(json.loads((out / "predictions.json").read_text())) == {"b.jpg"}
    capsys.readouterr()
    assert cli(checkpoint, photos, out, "--overlays", "0") == 0
    assert (
        f"note: {out / 'overlays'} is an earlier run's (--overlays 0 leaves it as it is)"
        in capsys.readouterr().out
    )
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["b.jpg"]


def test_overlays_holding_other_files_are_refused_before_the_model_runs(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    (tmp_path / "out" / "overlays").mkdir(parents=True)
    (tmp_path / "out" / "overlays" / "notes.txt").write_text("mine\n")
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: pytest.fail("model loaded"))
    assert cli(checkpoint, photos, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err == (  # it named the folder '--out' and told to drop an '--overwrite' this command has not
        f"error: overlays folder {tmp_path / 'out' / 'overlays'} holds notes.txt, which this command does "
        "not write: a run that draws overlays (--overlays other than 0) replaces the folder whole and would "
        "delete it; choose another folder, or move those out\n"
    )
    assert (tmp_path / "out" / "overlays" / "notes.txt").read_text() == "mine\n"


def test_overlays_beside_no_predictions_are_the_users_and_refused(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # lot/overlays/my_drawing.jpg, in a folder no run wrote, was deleted with the overlays it "replaced"
    out = tmp_path / "lot"
    (out / "overlays").mkdir(parents=True)
    (out / "overlays" / "my_drawing.jpg").write_bytes(b"mine")
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: pytest.fail("model loaded"))
    assert cli(checkpoint, photos, out) == 2
    assert capsys.readouterr().err == (
        f"error: overlays folder {out / 'overlays'} holds my_drawing.jpg but {out} holds no "
        "predictions.json, which every run of this command writes beside it: it was made otherwise (by hand, "
        "another tool), and a run that draws overlays (--overlays other than 0) replaces the folder whole "
        "and would delete it; choose another --out, or move it away\n"
    )
    assert (out / "overlays" / "my_drawing.jpg").read_bytes() == b"mine"


def test_overlays_0_refuses_overlays_beside_no_predictions_too(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # --overlays 0 left the user's own lot/overlays but wrote lot/predictions.json beside it: the next run
    # that drew overlays took the folder for an earlier run's and deleted my_drawing.jpg with it
    out = tmp_path / "lot"
    (out / "overlays").mkdir(parents=True)
    (out / "overlays" / "my_drawing.jpg").write_bytes(b"mine")
    monkeypatch.setattr("detection.predict.load_detector", lambda weights: pytest.fail("model loaded"))
    assert cli(checkpoint, photos, out, "--overlays", "0") == 2
    assert capsys.readouterr().err == (
        f"error: overlays folder {out / 'overlays'} holds my_drawing.jpg but {out} holds no "
        "predictions.json, which every run of this command writes beside it: it was made otherwise (by hand, "
        "another tool), and the predictions.json this run writes beside it would let a run that draws "
        "overlays (--overlays other than 0) replace the folder whole and delete it; choose another --out, "
        "or move it away\n"
    )
    assert not (out / "predictions.json").exists()
    assert (out / "overlays" / "my_drawing.jpg").read_bytes() == b"mine"


def test_overlays_0_keeps_an_empty_overlays_folder_without_a_note(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "lot"
    (out / "overlays").mkdir(parents=True)
    assert cli(checkpoint, photos, out, "--overlays", "0") == 0
    assert "note:" not in capsys.readouterr().out
    assert (out / "overlays").is_dir()


def test_photos_sharing_an_overlay_name_are_refused_only_when_drawn(
    checkpoint: Path, photos: Path, tmp_path: Path, capsys
) -> None:
    shutil.copy(photos / "b.jpg", photos / "a.jpg")  # a.png and a.jpg: both overlays/a.jpg
    assert cli(checkpoint, photos, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "a.jpg" in err and "a.png" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    assert cli(checkpoint, photos, tmp_path / "out", "--overlays", "0") == 0
    assert set(json.loads((tmp_path / "out" / "predictions.json").read_text())) == {"a.jpg", "a.png", "b.jpg"}


def test_a_negative_overlays_count_is_refused(checkpoint: Path, photos: Path, tmp_path: Path, capsys) -> None:
    assert cli(checkpoint, photos, tmp_path / "out", "--overlays", "-2") == 2
    assert capsys.readouterr().err == "error: --overlays must be -1 (all), 0 (none) or a count, got -2\n"


def test_draw_detections_draws_boxes_and_the_call_on_a_copy() -> None:
    image = np.full((120, 160, 3), 200, np.uint8)
    entry = {
        "boxes": [[60.0, 50.0, 100.0, 90.0]],
        "scores": [0.9],
        "classes": [1],
        "names": ["spot"],
        "call": "spot",
        "score": 0.9,
    }
    drawn = draw_detections(image, entry)
    assert (image == 200).all()  # untouched
    changed = (drawn != 200).any(axis=2)
    assert changed[50:90, 60].all() and changed[89, 60:100].all()  # the box's left and bottom sides
    assert not changed[60:85, 65:95].any()  # not its inside
    assert changed[:10, :40].any()  # the call, top left
    empty = draw_detections(
        image, {**entry, "boxes": [], "scores": [], "classes": [], "names": [], "call": "good"}
    )
    assert not (empty != 200).any(axis=2)[30:, :].any()  # only the call


def test_draw_detections_draws_a_class_name_outside_ascii_as_itself() -> None:
    # the label and the call went through OpenCV's Hershey font, which drew 'γρατζουνιά' as '??????????'
    image = np.full((120, 200, 3), 200, np.uint8)
    entry = {"boxes": [[60.0, 50.0, 100.0, 90.0]], "scores": [0.9], "classes": [1], "score": 0.9}
    name = "γρατζουνιά"
    drawn = draw_detections(image, {**entry, "names": [name], "call": name})
    for marks in ("?" * len(name), "?" * len(name.encode())):
        assert not np.array_equal(drawn, draw_detections(image, {**entry, "names": [marks], "call": marks}))
    label = draw_detections(image, {**entry, "names": [name], "call": "good"})  # the box's label alone
    assert not np.array_equal(label, draw_detections(image, {**entry, "names": ["?" * 10], "call": "good"}))


@pytest.mark.parametrize(
    ("box", "place"),
    [
        ([60, 50, 100, 90], "above"),
        ([60, 5, 100, 40], "inside"),  # no room above: inside the box, from its top
        ([150, 50, 200, 90], "left"),  # moved left to stay inside the photo
        ([60, None, 100, 90], "fits"),  # the box's top exactly the label's height down: above it
    ],
)
def test_a_box_label_is_placed_as_ultralytics_places_it(box, place) -> None:
    from common.text import text_size

    scale, thickness = 2 / 3, 1  # the Annotator's at its line width of 2
    (width, height), _ = text_size("spot 0.90", scale, thickness)
    height += 3  # the Annotator's padding
    box = [box[0], height if place == "fits" else box[1], *box[2:]]
    x, y = (200 - width if place == "left" else box[0]), box[1]
    rows = (y, y + height) if place == "inside" else (y - height, y)
    cols = (x, min(x + width, 199))
    canvas = np.full((120, 200, 3), 200, np.uint8)
    box_label(canvas, box, "spot 0.90", (255, 255, 0), (104, 31, 17), scale=scale, thickness=thickness)
    filled = np.argwhere((canvas == (255, 255, 0)).all(axis=2))
    assert (filled[:, 0].min(), filled[:, 0].max()) == rows and (
        filled[:, 1].min(),
        filled[:, 1].max(),
    ) == cols
    text = np.argwhere((canvas == (104, 31, 17)).all(axis=2))
    assert rows[0] <= text[:, 0].min() <= rows[0] + 7  # the text at the label's top, under its padding
    assert cols[0] <= text[:, 1].min() and text[:, 1].max() <= cols[1]


def test_draw_detections_writes_dark_text_on_a_light_class_colour() -> None:
    image = np.full((120, 160, 3), 200, np.uint8)
    entry = {"boxes": [[60.0, 50.0, 100.0, 90.0]], "scores": [0.9], "classes": [1], "names": ["spot"]}
    drawn = draw_detections(image, {**entry, "call": "spot", "score": 0.9})
    label = drawn[30:50, 60:110]  # class 1's light yellow: ultralytics writes on it in dark blue
    assert (label == colors(1, bgr=True)).all(axis=2).any() and (label == (104, 31, 17)).all(axis=2).any()
    assert not (label == WHITE).all(axis=2).any()


def test_an_overlay_is_the_photo_itself_under_its_call(
    checkpoint: Path, photos: Path, tmp_path: Path
) -> None:
    # the drawn file was only checked for its name and size: an undrawn, flipped or coarse copy passed
    y, x = np.mgrid[0:96, 0:128]
    photo = np.dstack([2 * x, 2 * y, np.full_like(x, 128)]).astype(np.uint8)  # smooth: JPEG keeps it close
    cv2.imwrite(str(photos / "a.png"), photo)
    out = tmp_path / "out"
    assert cli(checkpoint, photos, out, "--conf", "0.99") == 0
    assert json.loads((out / "predictions.json").read_text())["a.png"]["boxes"] == []  # the call alone
    overlay = cv2.imread(str(out / "overlays" / "a.jpg")).astype(int)
    assert (abs(overlay[:2, :2] - CALL_COLOR) <= 16).all()  # the call's dark background, top left
    assert abs(overlay[40:] - photo[40:]).max() <= 8  # below it, the photo as it was (JPEG at quality 90)


def test_the_weights_are_checked_before_any_photo_is_decoded(
    photos: Path, tmp_path: Path, monkeypatch
) -> None:
    # decoding a large folder takes a while: a missing checkpoint is named first
    monkeypatch.setattr("detection.predict.longest_side", lambda paths: pytest.fail(f"{list(paths)} decoded"))
    with pytest.raises(UserError, match="missing.pt"):
        next(predicted_images(tmp_path / "missing.pt", photos))


def test_draw_detections_colours_each_class_and_draws_the_best_box_on_top() -> None:
    image = np.full((120, 160, 3), 200, np.uint8)
    entry = {
        "boxes": [[20.0, 50.0, 60.0, 90.0], [100.0, 50.0, 140.0, 90.0]],
        "scores": [0.9, 0.5],
        "classes": [0, 1],
        "names": ["crack", "spot"],
        "call": "crack",
        "score": 0.9,
    }
    drawn = draw_detections(image, entry)
    assert tuple(drawn[70, 20]) == colors(0, bgr=True) and tuple(drawn[70, 100]) == colors(1, bgr=True)
    same_place = {**entry, "boxes": [entry["boxes"][0]] * 2}
    assert tuple(draw_detections(image, same_place)[70, 20]) == colors(0, bgr=True)  # the best one's colour
    assert (drawn[:2, :2] == CALL_COLOR).all() and (drawn[:20, :80] == WHITE).all(axis=2).any()  # the call
    assert (draw_detections(image, {**entry, "scores": [0.9, 0.3]}) != drawn).any()  # "spot 0.30": the score
    assert (draw_detections(image, {**entry, "score": 0.4}) != drawn).any()  # "call: crack 0.40"


@pytest.mark.parametrize("overlap", ["-3", "0.5"])
def test_a_tile_overlap_without_tile_is_refused(tmp_path, capsys, overlap) -> None:
    # whole images have no windows: the overlap was ignored unchecked (-3 ran silently), as in the cascade
    argv = ["--weights", str(tmp_path / "none.pt"), "--source", str(tmp_path), "--out", str(tmp_path / "out")]
    assert main([*argv, "--tile-overlap", overlap]) == 2
    assert capsys.readouterr().err == "error: --tile-overlap needs --tile\n"


def test_an_image_name_that_is_not_utf8_is_refused_naming_its_folder(tmp_path: Path) -> None:
    # predictions.json carried it as "\udcff", which JSON readers other than Python's refuse or mangle
    from detection.predict import named_files

    (tmp_path / "lot").mkdir()
    try:
        (tmp_path / "lot" / os.fsdecode(b"bad\xff.png")).write_bytes(b"")
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    with pytest.raises(UserError, match=r"lot holds a name that is not UTF-8, b'bad\\xff.png': rename it"):
        named_files(tmp_path)


@pytest.mark.parametrize(
    ("command", "argv", "wanted"),
    [
        ("detection.predict", ["--weights", "~/w.pt", "--source", "p", "--out", "~/o"], ("weights", "out")),
        ("detection.evaluate", ["--data", "~/d", "--weights", "~/w.pt", "--out", "~/o"], ("data", "out")),
        ("detection.text_embeddings", ["--data", "~/d", "--out", "~/t.pt"], ("data", "out")),
        ("detection.train", ["--config", "~/c.yaml"], ("config",)),
    ],
)
def test_a_quoted_tilde_in_a_path_option_is_the_home_folder(command, argv, wanted, tmp_path, monkeypatch):
    # --out '~/o' wrote into a folder named '~' in the working folder
    import importlib

    monkeypatch.setenv("HOME", str(tmp_path))
    args = importlib.import_module(command).build_parser().parse_args(argv)
    for name in wanted:
        assert getattr(args, name).parent == tmp_path, (name, getattr(args, name))
