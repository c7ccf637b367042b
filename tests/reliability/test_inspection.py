"""``python -m inspection.predict`` / ``evaluate`` given bad input: one ``error:`` line, exit 2, nothing
written, offline.

Each case runs the real entry point in a subprocess (network blocked) with an empty
weight cache (``MVTEC_FINETUNE_CACHE``): every error here must be found before SAM's
weights are loaded, so a check that slipped behind loading would fail with "no verified
mobile_sam.pt" instead of its own message. ``unchanged`` watches the photos, the
checkpoints and the folder ``--out`` would go into.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.reliability.conftest import assert_user_error, call_main, run_cli

pytestmark = pytest.mark.slow  # every case starts a Python process that imports torch and ultralytics

PREDICT = "inspection.predict"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """``best.pt`` (an untrained YOLO11n as ultralytics saves it) and a vit_t ``decoder.pt`` record."""
    from ultralytics import YOLO

    from segmentation.finetuned import DECODER_FORMAT

    folder = tmp_path_factory.mktemp("checkpoints")
    YOLO("yolo11n.yaml").save(folder / "best.pt")
    torch.save({"format": DECODER_FORMAT, "model": "vit_t", "mask_decoder": {}}, folder / "decoder.pt")
    (folder / "garbage.pt").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    return folder


@pytest.fixture
def photos(tmp_path: Path, image_writer) -> Path:
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name in ("a.png", "lot_2/b.png"):
        image_writer(folder / name, rng.integers(0, 255, (48, 64, 3), np.uint8))
    return folder


@pytest.fixture
def empty_cache(tmp_path_factory) -> dict[str, str]:
    return {"MVTEC_FINETUNE_CACHE": str(tmp_path_factory.mktemp("empty_cache"))}


def inspect_cli(checkpoints: Path, source: object, out: Path, *args: object, env: dict, **files: Path):
    detector = files.get("detector", checkpoints / "best.pt")
    sam = files.get("sam", checkpoints / "decoder.pt")
    common = ["--detector", detector, "--sam", sam, "--source", source, "--out", out, "--no-progress"]
    return run_cli(PREDICT, *common, *args, env=env)


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing detector", ["weights not found", "nope.pt"]),
        ("garbage detector", ["cannot load model", "garbage.pt"]),
        ("missing sam", ["SAM checkpoint not found", "nope_decoder.pt"]),
        ("garbage sam", ["cannot read SAM checkpoint", "garbage.pt"]),
        ("decoder of another model", ["was trained on model 'vit_t', not 'vit_b'"]),
        ("corrupt photo", ["cannot read image", "broken.png"]),
        ("empty folder", ["no image files"]),
        ("glob matching nothing", ["matches no image files"]),
        ("mvtec category root", ["category's defect masks, not photos", "ground_truth"]),
        ("glob over a category", ["category's defect masks, not photos", "ground_truth"]),
        ("tile under 32", ["--tile needs a window side >= 32 px"]),
        ("conf over 1", ["--conf must be in [0, 1], got 1.5"]),
        ("mask iou over 1", ["--mask-iou must be in [0, 1], got 1.5"]),
        ("unknown option", ["unrecognized arguments: --tiles", "--help"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    checkpoints, photos, tmp_path, unchanged, empty_cache, case, fragments
):
    source, args, files = photos, [], {}
    if case == "missing detector":
        files["detector"] = tmp_path / "nope.pt"
    elif case == "garbage detector":
        files["detector"] = checkpoints / "garbage.pt"
    elif case == "missing sam":
        files["sam"] = tmp_path / "nope_decoder.pt"
    elif case == "garbage sam":
        files["sam"] = checkpoints / "garbage.pt"
    elif case == "decoder of another model":
        args = ["--model", "vit_b"]
    elif case == "corrupt photo":
        (photos / "lot_2" / "broken.png").write_bytes((photos / "a.png").read_bytes()[:100])  # cut short
    elif case == "empty folder":
        source = tmp_path / "empty"
        source.mkdir()
    elif case == "glob matching nothing":
        source = f"{photos}/*.jpg"
    elif case in ("mvtec category root", "glob over a category"):
        source = tmp_path / "hazelnut"
        for folder in ("test/crack", "ground_truth/crack"):
            (source / folder).mkdir(parents=True)
        shutil.copy(photos / "a.png", source / "test" / "crack" / "000.png")
        shutil.copy(photos / "a.png", source / "ground_truth" / "crack" / "000_mask.png")
        source = source if case == "mvtec category root" else f"{source}/**/*.png"
    elif case == "tile under 32":
        args = ["--tile", "16"]
    elif case == "conf over 1":
        args = ["--conf", "1.5"]
    elif case == "mask iou over 1":
        args = ["--mask-iou", "1.5"]
    else:
        args = ["--tiles", "64"]
    out = tmp_path / "runs" / "inspect"
    with unchanged(photos, checkpoints, tmp_path / "runs"):
        result = inspect_cli(checkpoints, source, out, *args, env=empty_cache, **files)
    line = assert_user_error(result, *fragments)
    if case == "corrupt photo":
        assert str(photos / "lot_2" / "broken.png") in line
    assert not out.exists() and not (tmp_path / "runs").exists()
    assert not any(Path(empty_cache["MVTEC_FINETUNE_CACHE"]).iterdir())  # no weights, no embeddings


def test_real_models_end_to_end(checkpoints, photos, tmp_path):
    """An untrained YOLO11n and a random full MobileSAM state dict: the real loaders and the real files."""
    from segmentation.models import build_sam_vit_t

    sam = tmp_path / "sam_finetuned.pth"
    torch.save(build_sam_vit_t().state_dict(), sam)
    out = tmp_path / "runs" / "lot_7"
    env = {"MVTEC_FINETUNE_CACHE": str(tmp_path / "cache")}
    args = ["--model", "vit_t", "--imgsz", "64", "--conf", "0", "--max-det", "2", "--device", "cpu"]
    result = inspect_cli(checkpoints, photos / "a.png", out, *args, env=env, sam=sam)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "inspected 1 photo in" in result.stdout
    (image,) = json.loads((out / "images.json").read_text())["images"]
    assert (image["file_name"], image["width"], image["height"]) == ("a.png", 64, 48)
    predictions = json.loads((out / "predictions.json").read_text())
    assert len(predictions) == image["instances"] <= 2
    assert len(list((tmp_path / "cache" / "embeddings").rglob("*.pt"))) == (1 if predictions else 0)


EVALUATE = "inspection.evaluate"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--data", "{tmp}/nowhere"], ["--data", "nowhere does not exist"]),
        (["--mask-iou", "1.5"], ["--mask-iou must be in [0, 1], got 1.5"]),
        (["--overlays", "-2"], ["--overlays must be -1 (all), 0 (none) or a count, got -2"]),
        (["--gallery", "-1"], ["--gallery must be >= 0, got -1"]),
        (["--conf-from", "test"], ["--conf-from test: pick the threshold on another split"]),
    ],
)
def test_evaluate_bad_input_is_one_line_and_writes_nothing(
    checkpoints, tmp_path, unchanged, empty_cache, args, fragments
):
    # the first case end to end in a subprocess; the others call the same main() in this process
    runner = run_cli if "--data" in args else call_main
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "runs" / "report"
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    base = ["--detector", checkpoints / "best.pt", "--sam", checkpoints / "decoder.pt", "--out", out]
    if "--data" not in args:
        base += ["--data", data]
    with unchanged(data, checkpoints, tmp_path / "runs"):
        result = runner(EVALUATE, *base, *args, "--no-progress", env=empty_cache)
    assert_user_error(result, *fragments)
    assert not (tmp_path / "runs").exists()
    assert not any(Path(empty_cache["MVTEC_FINETUNE_CACHE"]).iterdir())
