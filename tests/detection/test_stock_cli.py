"""The converter's data.yaml trains with the stock ``yolo`` command, no project code in the loop.

Runs in a subprocess, so the socket guard of ``conftest.py`` does not reach it. YOLO-World is
the one model that cannot train offline this way: ultralytics' ``WorldTrainer`` embeds the class
names with CLIP ViT-B/32 at the start of training, and stock ultralytics reads those weights only
from ``<weights_dir>/clip/ViT-B-32.pt`` (downloading them when absent). That case runs where the
file and the ``clip`` package are present and is skipped, naming the file, where they are not;
``python -m detection.train`` is the offline route (``tests/detection/test_train.py``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ultralytics.utils import WEIGHTS_DIR

#: Where ultralytics' CLIP wrapper (``ultralytics.nn.text_model.CLIP``) loads ViT-B/32 from.
STOCK_CLIP_WEIGHTS = Path(WEIGHTS_DIR) / "clip" / "ViT-B-32.pt"


def _stock_clip_missing() -> str | None:
    if importlib.util.find_spec("clip") is None:
        return "the 'clip' package is not installed (ultralytics would pip-install it from GitHub)"
    if not STOCK_CLIP_WEIGHTS.is_file():
        return f"CLIP ViT-B/32 weights not at {STOCK_CLIP_WEIGHTS} (ultralytics would download them)"
    return None


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    [
        "yolo11n.yaml",
        pytest.param(
            "yolov8n-worldv2.yaml",
            marks=pytest.mark.skipif(_stock_clip_missing() is not None, reason=str(_stock_clip_missing())),
        ),
    ],
)
def test_stock_yolo_train_one_epoch(tiny_dataset: Path, tmp_path: Path, yolo_train, model: str) -> None:
    run = yolo_train(tiny_dataset / "data.yaml", model, tmp_path / "runs")
    assert (run / "results.csv").is_file()
