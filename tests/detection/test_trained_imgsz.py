from __future__ import annotations

from types import SimpleNamespace

import pytest

from detection.weights import DEFAULT_IMGSZ, trained_imgsz


@pytest.mark.parametrize(
    ("model", "size"),
    [
        (SimpleNamespace(overrides={"imgsz": 320}), 320),  # ultralytics' YOLO(best.pt)
        (SimpleNamespace(args={"imgsz": 256}), 256),  # its nn.Module (detection.evaluate's model)
        (SimpleNamespace(args=SimpleNamespace(imgsz=288)), 288),  # args as a namespace
        (SimpleNamespace(overrides={"imgsz": [320, 480]}), 480),  # a rectangular size: its long side
        (SimpleNamespace(overrides={"task": "detect"}), DEFAULT_IMGSZ),  # none recorded
        (SimpleNamespace(overrides={"imgsz": 0}), DEFAULT_IMGSZ),
        (object(), DEFAULT_IMGSZ),  # neither attribute (a stub)
    ],
)
def test_the_training_size_comes_from_the_checkpoints_own_arguments(model, size):
    assert DEFAULT_IMGSZ == 640 and trained_imgsz(model) == size


def test_an_official_checkpoint_gives_its_size(tmp_path):
    from common.weights import weights_dir

    path = weights_dir() / "yolo11n.pt"
    if not path.is_file():
        pytest.skip(f"YOLO11n weights not cached at {path}")
    from detection.weights import load_detector

    model = load_detector(path)
    assert trained_imgsz(model) == trained_imgsz(model.model) == 640  # COCO-trained at 640
