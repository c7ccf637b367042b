"""Inspection tests: a tiny SAM, a stub detector that finds painted squares, and photos to inspect.

The stub has the interface of ultralytics' model that the inspector uses
(``predict(source, **settings)`` returning results with ``boxes.xyxy/conf/cls``,
and ``names``), so every test knows exactly which boxes a photo has; the real
ultralytics path is tested once with a randomly initialised YOLO11n.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from common.weights import CheckpointSpec
from converters.masks import rle_to_mask
from segmentation.colour_head import box_window
from segmentation.models import SAM_MODELS, SamModel
from tests.segmentation.conftest import build_tiny_sam

#: BGR colour painted for each class of the stub detector, and the box score it reports.
CLASS_COLORS = {0: (255, 255, 255), 1: (0, 0, 255)}
CLASS_SCORES = {0: 0.9, 1: 0.6}
CLASS_NAMES = ["scratch", "stain"]


class StubDetector:
    """Finds solid squares of :data:`CLASS_COLORS` (one box per connected region); counts its calls."""

    def __init__(self, names: list[str] | None = None) -> None:
        self.names = dict(enumerate(names or CLASS_NAMES))
        self.calls: list[dict] = []

    def predict(self, source, **settings):
        self.calls.append(settings)
        images = source if isinstance(source, list) else [source]
        return [self._result(image, settings.get("conf", 0.25)) for image in images]

    def _result(self, image: np.ndarray, conf: float) -> SimpleNamespace:
        boxes, scores, classes = [], [], []
        for class_id, color in CLASS_COLORS.items():
            painted = np.all(image == np.array(color, np.uint8), axis=2).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(painted, connectivity=8)
            for x, y, w, h, _area in stats[1:count]:
                if CLASS_SCORES[class_id] >= conf:
                    boxes.append([x, y, x + w, y + h])
                    scores.append(CLASS_SCORES[class_id])
                    classes.append(class_id)
        found = SimpleNamespace(
            xyxy=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            conf=torch.tensor(scores, dtype=torch.float32),
            cls=torch.tensor(classes, dtype=torch.float32),
        )
        return SimpleNamespace(boxes=found)


class DoublingDetector(StubDetector):
    """Each box of the stub twice: the second a pixel smaller on the right, scored 0.05 lower."""

    def predict(self, source, **settings):
        results = super().predict(source, **settings)
        for result in results:
            boxes = result.boxes
            smaller = boxes.xyxy.clone()
            smaller[:, 2] -= 1
            boxes.xyxy = torch.cat([boxes.xyxy, smaller])
            boxes.conf = torch.cat([boxes.conf, boxes.conf - 0.05])
            boxes.cls = torch.cat([boxes.cls, boxes.cls])
        return results


def in_box_pixels(predictions: list[dict]) -> np.ndarray:
    """The mask pixels of ``predictions.json`` inside each instance's box, concatenated (colour heads)."""
    pixels = []
    for entry in predictions:
        x, y, w, h = entry["bbox"]
        mask = rle_to_mask(entry["segmentation"])
        pixels.append(mask[box_window((x, y, x + w, y + h), mask.shape)].ravel())
    return np.concatenate(pixels)


def paint_photo(
    path: Path,
    squares: list[tuple[int, int, int, int, int]] = (),
    size: tuple[int, int] = (60, 80),
    seed: int = 0,
) -> Path:
    """A dark noise photo ``(H, W) = size`` with solid squares ``(class, x1, y1, x2, y2)``; PNG (lossless)."""
    image = np.random.default_rng(seed).integers(0, 200, (*size, 3), np.uint8)
    for class_id, x1, y1, x2, y2 in squares:
        image[y1:y2, x1:x2] = CLASS_COLORS[class_id]
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image), path
    return path


@pytest.fixture
def photo_painter():
    """``paint_photo`` as a fixture (tests import no helpers under importlib mode)."""
    return paint_photo


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder: one square, two classes, a good photo, and one in a subfolder."""
    folder = tmp_path / "photos"
    paint_photo(folder / "one.png", [(0, 10, 10, 30, 25)], seed=1)  # one scratch
    paint_photo(folder / "two.png", [(0, 5, 5, 20, 20), (1, 40, 30, 60, 50)], seed=2)  # scratch + stain
    paint_photo(folder / "good.png", [], seed=3)  # nothing to find
    paint_photo(folder / "lot_2" / "a.png", [(1, 0, 0, 12, 12)], seed=4)  # touching the corner
    return folder


@pytest.fixture
def stub_detector() -> StubDetector:
    return StubDetector()


@pytest.fixture
def tiny_sam():
    return build_tiny_sam()


@pytest.fixture
def tiny_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Registers the tiny SAM as model ``tiny``; returns its base weights file (a full state dict)."""
    spec = CheckpointSpec(
        model="tiny",
        filename="tiny_official.pth",
        url="https://invalid.example/tiny.pth",
        sha256="0" * 64,
        size=None,
    )
    monkeypatch.setitem(
        SAM_MODELS, "tiny", SamModel("tiny", lambda checkpoint=None: _tiny(checkpoint), spec, "tiny")
    )
    path = tmp_path / "weights" / "tiny_base.pth"
    path.parent.mkdir()
    torch.save(build_tiny_sam().state_dict(), path)
    return path


def _tiny(checkpoint):
    sam = build_tiny_sam()
    if checkpoint is not None:
        sam.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return sam


@pytest.fixture
def detector_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``best.pt`` that loads as the stub detector (``load_detector`` patched where it is used)."""
    import inspection.inspector
    import inspection.predict

    path = tmp_path / "detect" / "best.pt"
    path.parent.mkdir()
    path.write_bytes(b"stub")
    for module in (inspection.inspector, inspection.predict):
        monkeypatch.setattr(module, "load_detector", lambda weights: StubDetector())
    return path
