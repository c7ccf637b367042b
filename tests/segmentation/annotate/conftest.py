"""Fixtures of the annotation app tests: photos with known defects, a deterministic SAM, app factories."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam

with warnings.catch_warnings():
    # starlette >= 1.x asks for the httpx2 fork and warns once on import when it finds httpx;
    # imported here so the warning is neither repeated nor shown in every test's summary.
    warnings.simplefilter("ignore")
    import fastapi.testclient  # noqa: F401

#: Input size and embedding grid of the colour SAM: 4 input pixels per embedding cell.
COLOUR_IMG_SIZE = 256
COLOUR_GRID = 64
COLOUR_CHANNELS = 8


class ColourEncoder(torch.nn.Module):
    """Image encoder stand-in: the normalised image averaged onto a 64x64 grid (channels 0-2)."""

    def __init__(self) -> None:
        super().__init__()
        self.img_size = COLOUR_IMG_SIZE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, COLOUR_GRID)
        pad = torch.zeros(x.shape[0], COLOUR_CHANNELS - 3, COLOUR_GRID, COLOUR_GRID, device=x.device)
        return torch.cat([pooled, pad], dim=1)


class RawPromptEncoder(torch.nn.Module):
    """Prompt encoder stand-in: passes points (x, y, label) and box corners (label 2, 3) on as they are."""

    def __init__(self) -> None:
        super().__init__()
        self.embed_dim = COLOUR_CHANNELS
        self.image_embedding_size = (COLOUR_GRID, COLOUR_GRID)
        self.input_image_size = (COLOUR_IMG_SIZE, COLOUR_IMG_SIZE)

    def get_dense_pe(self) -> torch.Tensor:
        return torch.zeros(1, COLOUR_CHANNELS, COLOUR_GRID, COLOUR_GRID)

    def forward(self, points, boxes, masks):
        parts = []
        if points is not None:
            coords, labels = points
            parts.append(torch.cat([coords, labels[..., None].float()], dim=-1))
        if boxes is not None:
            corners = boxes.reshape(-1, 2, 2)
            tags = torch.tensor([[2.0], [3.0]]).expand(len(corners), 2, 1)
            parts.append(torch.cat([corners, tags], dim=-1))
        sparse = torch.cat(parts, dim=1)
        dense = torch.zeros(len(sparse), COLOUR_CHANNELS, COLOUR_GRID, COLOUR_GRID)
        return sparse, dense


class ColourRegionDecoder(torch.nn.Module):
    """Mask decoder stand-in: the cells whose colour is near the positive points' colour.

    Candidate k keeps cells within colour distance ``THRESHOLDS[k]`` of the nearest
    positive point's cell (and nearer to it than to any negative point's cell),
    inside the box if one is given, connected to a positive point (or the box
    centre); predicted IoUs prefer the middle one.
    """

    THRESHOLDS = (0.4, 0.8, 1.6)
    num_multimask_outputs = 3

    def forward(
        self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, multimask_output
    ):
        grid = image_embeddings[0, :3]  # (3, g, g) colours in the padded input frame
        cell = COLOUR_IMG_SIZE / COLOUR_GRID
        out = []
        for prompt in sparse_prompt_embeddings:
            xy, label = prompt[:, :2], prompt[:, 2]
            inside = torch.ones(COLOUR_GRID, COLOUR_GRID, dtype=torch.bool)
            if (label >= 2).any():
                (x1, y1), (x2, y2) = xy[label == 2][0] / cell, xy[label == 3][0] / cell
                ys, xs = torch.meshgrid(torch.arange(COLOUR_GRID), torch.arange(COLOUR_GRID), indexing="ij")
                inside = (xs + 0.5 >= x1) & (xs + 0.5 <= x2) & (ys + 0.5 >= y1) & (ys + 0.5 <= y2)
            seeds = self._colours(grid, xy[label == 1], cell)
            if not len(seeds):  # a box alone: the colour of its centre
                seeds = self._colours(grid, xy[label >= 2].mean(0, keepdim=True), cell)
            away = self._colours(grid, xy[label == 0], cell)
            near = (
                torch.cdist(grid.reshape(3, -1).T, seeds).min(dim=1).values.reshape(COLOUR_GRID, COLOUR_GRID)
            )
            if len(away):
                nearer_away = torch.cdist(grid.reshape(3, -1).T, away).min(dim=1).values
                inside &= (near.reshape(-1) < nearer_away).reshape(COLOUR_GRID, COLOUR_GRID)
            seed_cells = self._cells(
                xy[label == 1] if (label == 1).any() else xy[label >= 2].mean(0, keepdim=True), cell
            )
            masks = [self._connected((near <= t) & inside, seed_cells) for t in self.THRESHOLDS]
            out.append(torch.stack(masks).float() * 20 - 10)
        logits = F.interpolate(torch.stack(out), scale_factor=4, mode="nearest")
        iou = torch.tensor([[0.6, 0.9, 0.5]]).expand(len(out), 3)
        if not multimask_output:
            return logits[:, 1:2], iou[:, 1:2]
        return logits, iou

    @staticmethod
    def _cells(xy: torch.Tensor, cell: float) -> torch.Tensor:
        return (xy / cell).long().clamp(0, COLOUR_GRID - 1)  # (n, 2) column, row

    @classmethod
    def _colours(cls, grid: torch.Tensor, xy: torch.Tensor, cell: float) -> torch.Tensor:
        cols = cls._cells(xy, cell)
        return grid[:, cols[:, 1], cols[:, 0]].T  # (n, 3)

    @staticmethod
    def _connected(mask: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """The 8-connected regions of ``mask`` holding a seed cell: SAM outlines an object, not a colour."""
        _, labels = cv2.connectedComponents(mask.numpy().astype(np.uint8), connectivity=8)
        keep = {int(labels[row, col]) for col, row in seeds.tolist()} - {0}
        return torch.from_numpy(np.isin(labels, list(keep)))


def build_colour_sam() -> Sam:
    """A deterministic SAM that segments by colour: stock ``Sam`` with stand-in modules.

    It goes through ``segmentation.predict`` unchanged (prompt scaling, padding,
    ``postprocess_masks``), so a click on a uniformly coloured defect gives that
    defect's mask at the original resolution, as a trained SAM would.
    """
    sam = Sam(
        image_encoder=ColourEncoder(),
        prompt_encoder=RawPromptEncoder(),
        mask_decoder=ColourRegionDecoder(),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


@pytest.fixture
def colour_sam() -> Sam:
    return build_colour_sam()


def draw_photo(
    path: Path, size: tuple[int, int], defects: list[tuple[int, int, int, int]], seed: int = 0
) -> np.ndarray:
    """A grey, slightly noisy photo with dark-red elliptic defects; returns the ``(H, W)`` bool truth.

    Args:
        size: ``(H, W)``.
        defects: ellipses ``(cx, cy, rx, ry)`` in pixels.
    """
    height, width = size
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 150, np.int16) + rng.integers(-6, 7, (height, width, 1))
    truth = np.zeros((height, width), np.uint8)
    for cx, cy, rx, ry in defects:
        cv2.ellipse(truth, (cx, cy), (rx, ry), 0, 0, 360, 1, -1)
    image[truth > 0] = (40, 40, 170)  # BGR: dark red
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8)), path
    return truth > 0


@pytest.fixture
def photos(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """A folder of 4 photos (one in a subfolder, one larger than the colour SAM's input) and their truths."""
    folder = tmp_path / "photos"
    specs = {
        "a.png": ((120, 160), [(50, 60, 14, 10)]),
        "b.jpg": ((150, 100), [(60, 90, 12, 16)]),
        "lot_2/c.png": ((96, 128), [(30, 30, 10, 8), (95, 65, 12, 9)]),
        "wide.png": ((300, 640), [(400, 150, 40, 30)]),
    }
    truths = {
        key: draw_photo(folder / key, size, defects, seed=index)
        for index, (key, (size, defects)) in enumerate(specs.items())
    }
    return folder, truths


@pytest.fixture
def make_app(tmp_path):
    """``make_app(images, out, sam, **session_options) -> (session, app)`` with a cache under tmp_path."""
    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession
    from segmentation.embeddings import EmbeddingCache

    def make(images: Path | None, out: Path, sam: Sam, **options):
        session = AnnotationSession.open(out, images, **options)
        cache = EmbeddingCache(tmp_path / "embeddings", sam, model_name="test")
        return session, create_app(session, sam, cache=cache, model_name="test", prefetch=2)

    return make


def centre_of(truth: np.ndarray) -> list[float]:
    """``[x, y]`` of a pixel well inside the (first) defect of a truth mask."""
    distance = cv2.distanceTransform(truth.astype(np.uint8), cv2.DIST_L2, 3)
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return [float(x) + 0.5, float(y) + 0.5]


@pytest.fixture
def defect_centre():
    """``centre_of`` as a fixture (tests import no helpers under importlib mode)."""
    return centre_of


@pytest.fixture
def photo_writer():
    """``draw_photo`` as a fixture."""
    return draw_photo


def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Polls ``condition()`` every 10 ms until it is true; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def wait_for():
    """``wait_until`` as a fixture (background threads: embeddings, the decoder, the detector)."""
    return wait_until


def hold_exports_at_the_first_photo_written(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """``(held, release)``: from now, each export waits once its first photo is written, ``held`` set, until
    ``release`` is (30 s at most)."""
    from segmentation.annotate import export

    export_dataset, held, release = export.export_dataset, threading.Event(), threading.Event()

    def held_at_the_first_photo_written(*args, on_photo, **kwargs):
        def hook(stage, done, total):
            on_photo(stage, done, total)
            if (stage, done) == ("writing", 1):
                held.set()
                assert release.wait(30)

        return export_dataset(*args, on_photo=hook, **kwargs)

    monkeypatch.setattr(export, "export_dataset", held_at_the_first_photo_written)
    return held, release


@pytest.fixture
def hold_exports(monkeypatch) -> Callable[[], tuple[threading.Event, threading.Event]]:
    """:func:`hold_exports_at_the_first_photo_written` as a fixture: called, it holds the exports from then on
    (an export the test runs before is not held)."""
    return lambda: hold_exports_at_the_first_photo_written(monkeypatch)


class RedDefectDetector:
    """A deterministic detector (the :class:`~segmentation.annotate.detector.BoxDetector` interface).

    Boxes each dark-red blob of :func:`draw_photo` 3 px wider than the blob, class ``dent`` (id 1),
    scores 0.9, 0.8, ... by size; records the threads it ran on.
    """

    names = ["scratch", "dent"]
    source = "red.pt sha256:0123456789abcdef"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, image: np.ndarray):
        import threading

        from detection.detections import ImageDetections

        self.calls.append(threading.current_thread().name)
        red = cv2.inRange(image, (20, 20, 150), (60, 60, 190))
        count, _, stats, _ = cv2.connectedComponentsWithStats(red, connectivity=8)
        blobs = sorted(stats[1:count].tolist(), key=lambda s: -s[4])
        boxes = [[x - 3, y - 3, x + w + 3, y + h + 3] for x, y, w, h, _ in blobs]
        return ImageDetections(
            boxes=np.asarray(boxes, dtype=float).reshape(-1, 4),
            scores=np.array([0.9 - 0.1 * i for i in range(len(boxes))]),
            classes=np.ones(len(boxes), dtype=int),
        )


@pytest.fixture
def red_detector() -> RedDefectDetector:
    return RedDefectDetector()


@pytest.fixture
def unsearchable(monkeypatch):
    """``unsearchable(path)``: ``os.stat`` of ``path`` refused as in a folder without execute permission
    (the tests may run as root, whom permissions do not stop), and ``Path.is_file`` made Python 3.13's
    (``os.path.isfile``: False on any error, where 3.10-3.12 raise this one)."""
    import os

    stat = os.stat

    def refused(target, *args, **kwargs):
        if isinstance(target, (str, os.PathLike)) and Path(target) == refused.path:
            raise PermissionError(13, "Permission denied", str(target))
        return stat(target, *args, **kwargs)

    def refuse(path: Path) -> None:
        refused.path = path
        monkeypatch.setattr(os, "stat", refused)
        monkeypatch.setattr(Path, "is_file", lambda self: os.path.isfile(self))

    return refuse
