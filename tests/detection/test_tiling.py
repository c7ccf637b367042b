"""detection.tiling: windows, clipping, merging back (round trip, border defects once), tiled data sets,
and tiled evaluation scored by ultralytics and COCOeval with ground truth as predictions."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import YAML

import common.io
from common.cli import exit_code
from common.errors import UserError
from converters.yolo import rings_to_single_polygon
from detection.detections import ImageDetections
from detection.evaluate import evaluate
from detection.report import format_report
from detection.tiling import (
    box_area,
    check_tiling,
    clip_boxes_to_window,
    clip_polygons_to_window,
    cut_by_window,
    longest_side,
    merge_tile_detections,
    predict_tiled,
    read_yolo_boxes,
    read_yolo_labels,
    tile_dataset,
    tile_origins,
    tile_windows,
)
from detection.validator import RecordingValidator, TiledRecordingValidator
from tests.common.tiff_files import raw_tiff

NAMES = ["crack", "spot"]


def truth_predictor(boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray | None = None):
    """A perfect model: in each window, the visible part of every box (fragments included), score 1."""
    scores = np.ones(len(boxes)) if scores is None else scores

    def predict(tiles: list[np.ndarray], windows: np.ndarray) -> list[ImageDetections]:
        found = []
        for window in windows:
            local, index = clip_boxes_to_window(boxes, window, min_visible=0.0)
            found.append(ImageDetections(local, scores[index], classes[index]))
        return found

    return predict


def same_boxes(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=float).reshape(-1, 4), np.asarray(b, dtype=float).reshape(-1, 4)
    return a.shape == b.shape and np.allclose(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])])


# --- windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "expected"),
    [
        (100, 40, 0.25, [0, 30, 60]),  # stride 30, the last window ends on the edge exactly
        (100, 40, 0.2, [0, 32, 60]),  # stride 32; the last window moved back to end on the edge
        (100, 50, 0.0, [0, 50]),  # no overlap: a plain grid
        (40, 40, 0.2, [0]),  # exactly one tile
        (30, 40, 0.2, [0]),  # smaller than a tile: one smaller window
        (41, 40, 0.5, [0, 1]),  # one pixel over: a second window, almost all overlap
    ],
)
def test_tile_origins_hand_cases(length: int, tile: int, overlap: float, expected: list[int]) -> None:
    assert tile_origins(length, tile, overlap) == expected


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0.2), (32, 1.0), (32, -0.1)])
def test_tile_origins_refuse_bad_settings(tile: int, overlap: float) -> None:
    with pytest.raises(ValueError, match="need tile >= 1"):
        tile_origins(100, tile, overlap)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(8, 128), st.floats(0.0, 0.9, allow_nan=False))
def test_windows_cover_the_image_with_full_size_tiles(width, height, tile, overlap) -> None:
    windows = tile_windows(width, height, tile, overlap)
    covered = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in windows:
        assert (x2 - x1, y2 - y1) == (min(tile, width), min(tile, height))
        assert 0 <= x1 and 0 <= y1 and x2 <= width and y2 <= height
        covered[y1:y2, x1:x2] = True
    assert covered.all()


def test_tile_origins_round_the_overlap_to_whole_pixels() -> None:
    # 0.2 * 48 = 9.6 px of overlap rounds to 10: stride 38, not 39
    assert tile_origins(100, 48, 0.2) == [0, 38, 52]


def test_an_overlap_of_almost_a_whole_tile_still_advances_one_pixel() -> None:
    # 0.99 * 32 rounds to 32, a whole tile: the windows still move on, one pixel at a time
    assert tile_origins(35, 32, 0.99) == [0, 1, 2, 3]


def test_windows_go_row_by_row() -> None:
    assert tile_windows(100, 100, 60, 0.5).tolist() == [
        [x, y, x + 60, y + 60] for y in (0, 30, 40) for x in (0, 30, 40)
    ]


def test_check_tiling_takes_the_smallest_tile_and_refuses_an_overlap_near_a_whole_tile() -> None:
    check_tiling(32, 0.0)
    check_tiling(32, 0.9)
    for overlap in (0.95, 1.0, -0.1):  # 0.99 on 32-px tiles would be a 1-px stride: a million windows
        with pytest.raises(
            UserError, match=rf"^--tile-overlap needs a number in \[0, 0\.9\], got {overlap}$"
        ):
            check_tiling(48, overlap)
    # the annotation page has no --tile-overlap: its --tile 0 named an overlap too
    with pytest.raises(UserError, match=r"^--tile needs a window side >= 32 px, got 31$"):
        check_tiling(31, 0.2)


# --- clipping and fragments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("box", "min_visible", "expected"),
    [
        ((12, 2, 18, 8), 0.5, [[2, 2, 8, 8]]),  # inside: shifted only
        ((5, 5, 15, 10), 0.5, [[0, 5, 5, 10]]),  # half inside: kept at 0.5
        ((5, 5, 15, 10), 0.6, []),  # half inside: dropped at 0.6
        ((0, 0, 10, 10), 0.0, []),  # touches the window's edge only: no area inside, never kept
        ((25, 15, 45, 35), 0.0, [[15, 15, 20, 20]]),  # corner: a quarter inside
    ],
)
def test_clip_boxes_to_window(box, min_visible, expected) -> None:
    local, index = clip_boxes_to_window(np.array([box], dtype=float), (10, 0, 30, 20), min_visible)
    assert local.tolist() == expected and index.tolist() == ([0] if expected else [])


def test_only_inner_window_edges_cut_boxes() -> None:
    # boxes in window pixels of a 60x40 window; the image is 100x40
    boxes = np.array([[0, 5, 10, 15], [50, 0, 60, 10], [20, 30, 30, 40], [30, 10, 40, 20]], dtype=float)
    # window x 40..100: its left edge is inner (box 0 reaches it); top, bottom and right are the image's
    assert cut_by_window(boxes, (40, 0, 100, 40), (100, 40), tol=1.0).tolist() == [True, False, False, False]
    # window x 0..60: only its right edge is inner (box 1 reaches it)
    assert cut_by_window(boxes, (0, 0, 60, 40), (100, 40), tol=1.0).tolist() == [False, True, False, False]
    # within tol of the inner edge counts (a predicted edge is not exact)
    assert cut_by_window(np.array([[50, 0, 59.5, 10]]), (0, 0, 60, 40), (100, 40), tol=1.0).tolist() == [True]
    assert cut_by_window(np.array([[50, 0, 58.5, 10]]), (0, 0, 60, 40), (100, 40), tol=1.0).tolist() == [
        False
    ]
    # a tall window (40 x 60 of a 40 x 200 image): its bottom edge is inner, measured by its height
    tall = np.array([[5, 5, 20, 45], [5, 40, 20, 60]], dtype=float)
    assert cut_by_window(tall, (0, 0, 40, 60), (40, 200), tol=2.0).tolist() == [False, True]


def test_box_area_of_an_inverted_box_is_zero() -> None:
    boxes = np.array([[10, 10, 5, 5], [10, 10, 5, 20], [0, 0, 4, 5]], dtype=float)
    assert box_area(boxes).tolist() == [0.0, 0.0, 20.0]


def test_a_box_exactly_tol_from_an_inner_edge_counts_as_cut() -> None:
    # window x 40..100 of a 100 x 40 image: its left edge is inner
    assert cut_by_window(np.array([[1.0, 5, 10, 15]]), (40, 0, 100, 40), (100, 40), tol=1.0).tolist() == [
        True
    ]
    assert cut_by_window(np.array([[1.5, 5, 10, 15]]), (40, 0, 100, 40), (100, 40), tol=1.0).tolist() == [
        False
    ]


def test_clipping_keeps_the_holes_of_a_polygon() -> None:
    outer = np.array([[0, 0], [20, 0], [20, 20], [0, 20]], dtype=float)
    hole = np.array([[5, 5], [15, 5], [15, 15], [5, 15]], dtype=float)
    ring = rings_to_single_polygon([outer], [hole])  # one ring, the hole joined by a zero-width cut
    rings, index = clip_polygons_to_window([ring], (0, 0, 40, 40), 0.0)
    assert index.tolist() == [0] and polygon_area(rings[0]) == pytest.approx(400 - 100)
    rings, index = clip_polygons_to_window([ring], (10, 0, 50, 40), 0.0)  # the right half, hole cut in two
    assert index.tolist() == [0] and polygon_area(rings[0]) == pytest.approx(200 - 50)


def test_a_polygon_file_stays_polygons_whatever_its_last_line(tmp_path: Path) -> None:
    label = tmp_path / "mixed.txt"
    label.write_text("1 0.1 0.1 0.3 0.1 0.3 0.3\n0 0.5 0.5 0.2 0.4\n")
    labels = read_yolo_labels(label, 100, 50)
    assert labels.polygons is not None and len(labels.polygons) == 2
    assert labels.polygons[1].tolist() == [[40, 15], [60, 15], [60, 35], [40, 35]]


def test_a_label_file_a_windows_tool_saved_with_a_bom_is_read(tmp_path: Path) -> None:
    # ultralytics reads it (utf-8-sig); tiling stopped with "could not convert string to float: '\ufeff1'"
    label = tmp_path / "a.txt"
    label.write_bytes(b"\xef\xbb\xbf1 0.5 0.5 0.2 0.4\n")
    classes, boxes = read_yolo_boxes(label, 100, 50)
    assert classes.tolist() == [1] and boxes.tolist() == [[40, 15, 60, 35]]


# --- merging -------------------------------------------------------------------------------------


def test_a_defect_on_a_tile_border_is_detected_once_with_its_whole_box() -> None:
    # 100x40 image, 60-px tiles, overlap 1/3: windows x 0..60 and 40..100. The defect x 55..65 crosses
    # the first window's right edge and lies whole in the second.
    image = np.zeros((40, 100, 3), dtype=np.uint8)
    defect = np.array([[55.0, 10.0, 65.0, 20.0]])
    # the fragment (x 55..60) is found with a higher score than the whole view
    scores_by_window = iter([0.9, 0.6])

    def predictor(tiles, windows):
        found = []
        for window in windows:
            local, index = clip_boxes_to_window(defect, window, min_visible=0.0)
            found.append(
                ImageDetections(local, np.full(len(index), next(scores_by_window)), np.zeros(1, int))
            )
        return found

    merged = predict_tiled(image, predictor, tile=60, overlap=1 / 3)
    assert merged.boxes.tolist() == defect.tolist() and merged.scores.tolist() == [0.6]


def test_merge_keeps_distinct_defects_and_classes() -> None:
    boxes = np.array(
        [[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [30, 30, 40, 40], [1, 0, 10, 10]], float
    )
    scores = np.array([0.5, 0.9, 0.8, 0.7, 0.4])
    classes = np.array([0, 0, 1, 0, 0])
    fragment = np.zeros(5, dtype=bool)
    # duplicates of class 0 at the origin merge to the best (index 1); class 1 there and the far box stay
    assert merge_tile_detections(boxes, scores, classes, fragment).tolist() == [1, 2, 3]
    # a fragment inside a whole box of its class is a cut-off view of it: dropped, even at a strict iou
    fragment[4] = True
    assert merge_tile_detections(boxes, scores, classes, fragment, iou=0.95).tolist() == [1, 2, 3]
    # a fragment of a class no whole box there has is another defect: kept
    classes[4] = 2
    assert merge_tile_detections(boxes, scores, classes, fragment, iou=0.95).tolist() == [1, 2, 3, 4]
    assert merge_tile_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), np.zeros(0, bool)).size == 0


def test_fragments_without_a_whole_view_are_kept() -> None:
    # a defect larger than the overlap: both views are fragments, neither contains the other (documented)
    boxes = np.array([[20, 0, 60, 10], [40, 0, 80, 10]], float)
    kept = merge_tile_detections(boxes, np.array([0.9, 0.8]), np.zeros(2, int), np.ones(2, bool), iou=0.5)
    assert kept.tolist() == [0, 1]


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(60, 240),
    height=st.integers(60, 240),
    tile=st.integers(32, 96),
    overlap=st.sampled_from([0.25, 0.4, 0.5]),
    data=st.data(),
)
def test_boxes_round_trip_through_tiles_and_merge(width, height, tile, overlap, data) -> None:
    """Perfect per-tile predictions (every visible part, fragments included) merge back to the boxes.

    Precondition of the guarantee: each box is smaller than the overlap minus twice the edge
    tolerance, so some window holds it whole with more than ``tol`` pixels to spare on its inner
    edges (a box exactly ``tol`` from an inner edge counts as cut off).
    """
    tol = 2.0
    limit = int(round(overlap * tile) - 2 * tol) - 1
    if limit < 2:
        return
    n = data.draw(st.integers(0, 6))
    boxes = []
    for _ in range(n):
        w = data.draw(st.integers(1, min(limit, width)))
        h = data.draw(st.integers(1, min(limit, height)))
        x = data.draw(st.integers(0, width - w))
        y = data.draw(st.integers(0, height - h))
        boxes.append([x, y, x + w, y + h])
    boxes = np.array(boxes, dtype=float).reshape(-1, 4)
    classes = np.arange(n) % 2  # neighbours of different classes never suppress each other
    # boxes of one class must not overlap one another, or NMS would (rightly) merge them
    for c in (0, 1):
        same = boxes[classes == c]
        for i in range(len(same)):
            for j in range(i + 1, len(same)):
                a, b = same[i], same[j]
                if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]):
                    return
    image = np.zeros((height, width, 3), dtype=np.uint8)
    merged = predict_tiled(
        image, truth_predictor(boxes, classes), tile=tile, overlap=overlap, edge_tol=tol, iou=0.5
    )
    assert same_boxes(merged.boxes, boxes)
    assert sorted(merged.classes.tolist()) == sorted(classes.tolist())


def test_predict_tiled_hands_the_model_the_image_crops() -> None:
    image = np.arange(50 * 70 * 3, dtype=np.uint32).reshape(50, 70, 3).astype(np.uint8)
    seen = []

    def predictor(tiles, windows):
        for tile, (x1, y1, x2, y2) in zip(tiles, windows, strict=True):
            assert np.array_equal(tile, image[y1:y2, x1:x2])
            seen.append((x1, y1))
        return [ImageDetections.empty() for _ in tiles]

    merged = predict_tiled(image, predictor, tile=32, overlap=0.25, batch=3)
    assert len(seen) == len(tile_windows(70, 50, 32, 0.25)) == 6 and len(merged.scores) == 0


@pytest.mark.parametrize("progress", [True, False])
def test_predict_tiled_shows_a_bar_over_the_windows_only_when_asked(monkeypatch, capsys, progress) -> None:
    # --tile 32 --tile-overlap 0.9 ran 26k windows per 512-px photo with nothing on the screen
    monkeypatch.setattr("detection.tiling.PROGRESS_DELAY", 0)
    image = np.zeros((50, 70, 3), dtype=np.uint8)
    predictor = lambda tiles, windows: [ImageDetections.empty() for _ in tiles]  # noqa: E731
    predict_tiled(image, predictor, tile=32, overlap=0.25, batch=3, progress=progress, desc="lot_7/a.png")
    err = capsys.readouterr().err
    if progress:
        assert "lot_7/a.png:   0%" in err and "0/6 [" in err  # the photo's 6 windows
    else:
        assert err == ""


def test_predict_tiled_bar_counts_every_window_clears_itself_and_waits_its_delay(monkeypatch, capsys) -> None:
    from tqdm import tqdm

    image = np.zeros((50, 70, 3), dtype=np.uint8)
    predictor = lambda tiles, windows: [ImageDetections.empty() for _ in tiles]  # noqa: E731
    predict_tiled(image, predictor, tile=32, overlap=0.25, batch=4, progress=True, desc="a.png")
    assert capsys.readouterr().err == ""  # a photo of a few windows, done before the delay: no trace
    closed = []

    class Recording(tqdm):
        def close(self):
            closed.append((self.n, self.total))
            super().close()

    monkeypatch.setattr("detection.tiling.PROGRESS_DELAY", 0)
    monkeypatch.setattr("detection.tiling.tqdm", Recording)
    predict_tiled(image, predictor, tile=32, overlap=0.25, batch=4, progress=True, desc="a.png")
    assert set(closed) == {(6, 6)}  # batches of 4 and 2 windows (tqdm closes twice: on exit and del)
    err = capsys.readouterr().err
    assert err.startswith("\ra.png:") and err.endswith("\r") and "\n" not in err  # cleared: no line left


def test_a_fragment_exactly_containment_inside_a_whole_box_is_dropped() -> None:
    # the fragment x 4..14 has 6 of its 10 columns inside the whole box x 0..10 (IoU 0.43: NMS keeps it)
    boxes = np.array([[0, 0, 10, 10], [4, 0, 14, 10]], dtype=float)
    fragment = np.array([False, True])
    kept = merge_tile_detections(boxes, np.array([0.5, 0.9]), np.zeros(2, int), fragment, containment=0.6)
    assert kept.tolist() == [0]
    kept = merge_tile_detections(boxes, np.array([0.5, 0.9]), np.zeros(2, int), fragment, containment=0.61)
    assert kept.tolist() == [1, 0]


def test_merged_detections_come_best_first() -> None:
    # whole boxes are ranked first inside NMS only: the result is by score, a fragment's included
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], dtype=float)
    fragment = np.array([False, True, False])
    kept = merge_tile_detections(boxes, np.array([0.3, 0.9, 0.6]), np.zeros(3, int), fragment)
    assert kept.tolist() == [1, 2, 0]


def test_predict_tiled_keeps_the_max_det_best_detections() -> None:
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    boxes = np.array([[0, 0, 5, 5], [10, 10, 15, 15], [20, 20, 25, 25], [30, 30, 35, 35]], dtype=float)
    scores = np.array([0.2, 0.8, 0.5, 0.9])
    merged = predict_tiled(
        image, truth_predictor(boxes, np.zeros(4, int), scores), tile=40, overlap=0.2, max_det=2
    )
    assert merged.scores.tolist() == [0.9, 0.8] and merged.boxes.tolist() == [
        boxes[3].tolist(),
        boxes[1].tolist(),
    ]


def test_a_box_two_pixels_short_of_an_inner_edge_counts_as_cut_off_by_default() -> None:
    # 100x40 image, 60-px tiles, overlap 1/3: windows x 0..60 and 40..100. The defect x 50..65 lies whole
    # in the second window; the first sees its part up to x 60 but predicts it ending at x 58.5
    image = np.zeros((40, 100, 3), dtype=np.uint8)
    views = {0: ([[50.0, 10.0, 58.5, 20.0]], 0.9), 40: ([[10.0, 10.0, 25.0, 20.0]], 0.6)}

    def predictor(tiles, windows):
        return [
            ImageDetections(np.array(views[int(w[0])][0]), np.array([views[int(w[0])][1]]), np.zeros(1, int))
            for w in windows
        ]

    merged = predict_tiled(image, predictor, tile=60, overlap=1 / 3)
    assert merged.boxes.tolist() == [[50.0, 10.0, 65.0, 20.0]] and merged.scores.tolist() == [0.6]


# --- tiled data sets -----------------------------------------------------------------------------


def write_box_dataset(
    root: Path, images: dict[str, list[tuple[int, tuple[int, int, int, int]]]], size=(96, 96)
):
    """A YOLO data set (train = val) whose images carry the given ``(class, xyxy)`` boxes, and its COCO.

    Images are dark grey with each box drawn bright, so the pixels show where the boxes are.
    """
    width, height = size
    coco = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)],
    }
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for image_id, (stem, boxes) in enumerate(images.items(), start=1):
        pixels = np.full((height, width, 3), 40, dtype=np.uint8)
        lines = []
        for c, (x1, y1, x2, y2) in boxes:
            pixels[y1:y2, x1:x2] = 220
            cx, cy, w, h = (
                (x1 + x2) / 2 / width,
                (y1 + y2) / 2 / height,
                (x2 - x1) / width,
                (y2 - y1) / height,
            )
            lines.append(f"{c} {cx} {cy} {w} {h}\n")
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": c + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
        coco["images"].append({"id": image_id, "file_name": f"{stem}.png", "width": width, "height": height})
        for split in ("train", "val"):
            cv2.imwrite(str(root / "images" / split / f"{stem}.png"), pixels)
            (root / "labels" / split / f"{stem}.txt").write_text("".join(lines))
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / "instances_val.json").write_text(json.dumps(coco))
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(enumerate(NAMES))}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


#: 96x96 images, 48-px tiles at overlap 0.5 (windows at 0, 24, 48): defects of 6-16 px, some across
#: window edges (x 44..52 crosses 48), one good image.
SMALL_DEFECTS = {
    "a": [(0, (44, 10, 52, 18))],  # crosses the first window's right edge
    "b": [(1, (70, 70, 86, 80)), (1, (5, 60, 13, 66))],  # one defect type per image, as in MVTec
    "c": [(1, (20, 44, 30, 53))],  # crosses a horizontal edge
    "good": [],
}


def test_tiled_data_yaml_and_tiles_json_record_paths_without_dots(tmp_path: Path, monkeypatch) -> None:
    # path: kept '..' (Path.absolute), tiles.json's source was the data.yaml as given (relative here)
    write_box_dataset(tmp_path / "src", SMALL_DEFECTS)
    (tmp_path / "some").mkdir()
    monkeypatch.chdir(tmp_path)
    tiled = tile_dataset(Path("src/data.yaml"), Path("some/../tiles"), tile=48, overlap=0.5)
    assert yaml.safe_load(tiled.data.read_text())["path"] == str(tmp_path / "tiles")
    record = json.loads((tmp_path / "tiles" / "tiles.json").read_text())
    assert record["source"] == str(tmp_path / "src" / "data.yaml")


def test_the_tiled_data_yaml_writes_a_non_ascii_path_as_it_is(tmp_path: Path) -> None:
    # 'tiles_é' was written "tiles_\xE9": the file read back the same, but not as a person reads it
    data = write_box_dataset(tmp_path / "src", SMALL_DEFECTS)
    tiled = tile_dataset(data, tmp_path / "tiles_é", tile=48, overlap=0.5)
    text = tiled.data.read_text(encoding="utf-8")
    assert f"path: {tmp_path / 'tiles_é'}" in text and "\\x" not in text and "\\u" not in text
    assert YAML.load(tiled.data)["path"] == str(tmp_path / "tiles_é")  # as stock 'yolo train data=' reads it


def test_tile_dataset_writes_crops_and_clipped_labels(tmp_path: Path) -> None:
    data = write_box_dataset(tmp_path / "src", SMALL_DEFECTS)
    tiled = tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5, min_visible=0.25)
    assert tiled.images == {"train": 4, "val": 4} and tiled.tiles == {"train": 36, "val": 36}
    loaded = yaml.safe_load(tiled.data.read_text())
    assert loaded["names"] == {0: "crack", 1: "spot"} and loaded["train"] == "images/train"
    assert loaded["path"] == str((tmp_path / "tiles").absolute())  # the folder's final place, not its build's
    # image a's defect x 44..52: whole in windows x 24..72 (at 20..28) and 0..48 (half: 44..48) kept;
    # 48..96 sees x 48..52 (half) too
    folder = tmp_path / "tiles"
    crop = cv2.imread(str(folder / "images" / "val" / "a_x24_y0.png"))
    source = cv2.imread(str(tmp_path / "src" / "images" / "val" / "a.png"))
    assert np.array_equal(crop, source[0:48, 24:72])
    classes, boxes = read_yolo_boxes(folder / "labels" / "val" / "a_x24_y0.txt", 48, 48)
    assert classes.tolist() == [0] and np.allclose(boxes, [[20, 10, 28, 18]])
    classes, boxes = read_yolo_boxes(folder / "labels" / "val" / "a_x0_y0.txt", 48, 48)
    assert np.allclose(boxes, [[44, 10, 48, 18]])  # clipped at the window's edge
    assert (folder / "labels" / "val" / "good_x0_y0.txt").read_text() == ""
    assert json.loads((folder / "tiles.json").read_text())["tiles"]["val"] == 36


def test_a_second_tiling_into_the_same_folder_replaces_the_first_whole(tmp_path: Path) -> None:
    # detection.train exist_ok=True tile=64 after tile=48 into one run folder: the 48-px tiles stayed
    # beside the 64-px ones and ultralytics trained on both (the run said 16 tiles, it used 52)
    data = write_box_dataset(tmp_path / "src", SMALL_DEFECTS)
    tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5)
    tiled = tile_dataset(data, tmp_path / "tiles", tile=64, overlap=0.5)
    for split in ("train", "val"):
        written = sorted(p.name for p in (tmp_path / "tiles" / "images" / split).iterdir())
        assert len(written) == tiled.tiles[split] == 16 and "a_x24_y0.png" not in written
        assert len(list((tmp_path / "tiles" / "labels" / split).iterdir())) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "tiles"]  # no hidden build left


def test_min_visible_drops_slivers(tmp_path: Path) -> None:
    data = write_box_dataset(tmp_path / "src", {"a": [(0, (44, 10, 52, 18))]})
    tiled = tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5, min_visible=0.6)
    # x 44..48 and 48..52 are half of the box each: dropped from windows 0..48 and 48..96
    assert read_yolo_boxes(tmp_path / "tiles" / "labels" / "val" / "a_x0_y0.txt", 48, 48)[0].size == 0
    assert tiled.dropped == 2 * 2  # two windows per split, two splits


def polygon_area(ring: np.ndarray) -> float:
    x, y = np.asarray(ring, dtype=float).T
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


#: A U (three bars, 24 px wide, 20 px tall, 4-px bars) standing at x 36..60: the window x 0..48 cuts
#: it into two pieces (its left arm and the left part of its base), window x 48..96 sees the right arm.
U_SHAPE = np.array([[36, 10], [60, 10], [60, 30], [56, 30], [56, 14], [40, 14], [40, 30], [36, 30]])


def write_polygon_dataset(root: Path, rings: dict[str, list[tuple[int, np.ndarray]]], size=(96, 96)) -> Path:
    """A YOLO-seg data set (train = val) with the given ``(class, ring)`` pixel polygons."""
    width, height = size
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for stem, polygons in rings.items():
            pixels = np.full((height, width, 3), 40, dtype=np.uint8)
            lines = []
            for c, ring in polygons:
                cv2.fillPoly(pixels, [np.asarray(ring, dtype=np.int32)], (220, 220, 220))
                values = (np.asarray(ring, dtype=float) / [width, height]).ravel()
                lines.append(f"{c} " + " ".join(f"{v:.6g}" for v in values) + "\n")
            cv2.imwrite(str(root / "images" / split / f"{stem}.png"), pixels)
            (root / "labels" / split / f"{stem}.txt").write_text("".join(lines))
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(enumerate(NAMES))}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


def test_clip_polygons_keeps_a_ring_per_piece_and_measures_area() -> None:
    rings, index = clip_polygons_to_window([U_SHAPE], (0, 0, 48, 48), 0.0)
    # inside x < 48: left arm 4x20 = 80 plus the base's 8x4 between x 40 and 48 = 32 (the arm's top
    # 4 rows are part of the base): 80 + 32 = 112 of the U's 4x20 * 2 + 16x4 = 224
    assert index.tolist() == [0] and polygon_area(rings[0]) == pytest.approx(112)
    assert clip_polygons_to_window([U_SHAPE], (0, 0, 48, 48), 0.51)[1].tolist() == []
    # x 48..96 sees the right arm and the base's right part: one ring although it is one piece here
    rings, index = clip_polygons_to_window([U_SHAPE], (48, 0, 96, 48), 0.5)
    assert index.tolist() == [0] and polygon_area(rings[0]) == pytest.approx(112)
    assert rings[0][:, 0].min() == pytest.approx(0) and rings[0][:, 0].max() == pytest.approx(12)
    # a window that cuts the U through both arms (y 20..48) keeps two pieces, a ring each (one label line
    # each: a ring joining them crossed the background between the arms)
    rings, index = clip_polygons_to_window([U_SHAPE], (0, 20, 96, 68), 0.0)
    assert index.tolist() == [0, 0] and [polygon_area(r) for r in rings] == pytest.approx([40, 40])
    boxes = sorted((r.min(0).tolist(), r.max(0).tolist()) for r in rings)
    assert boxes == [([36, 0], [40, 10]), ([56, 0], [60, 10])]


def test_a_hair_of_a_polygon_in_a_tile_is_no_label_line_of_its_own() -> None:
    # U open at the top, its base below the window; the right arm's left edge at 47.99998 (pixel 48 of a
    # 700-wide image read back from %.6g) leaves a 0.00002-wide hair of that arm inside x < 48
    u = np.array([[10, 0], [20, 0], [20, 50], [47.99998, 50], [47.99998, 0], [60, 0], [60, 60], [10, 60]])
    rings, index = clip_polygons_to_window([u], (0, 0, 48, 48), 0.25)
    assert index.tolist() == [0] and [polygon_area(r) for r in rings] == pytest.approx([480])
    # min_visible still weighs every piece: 480 + 0.00096 of the U inside
    assert clip_polygons_to_window([u], (0, 0, 48, 48), 480.0005 / polygon_area(u))[1].tolist() == [0]
    # a polygon under 1 px² whole is still its own label
    speck = np.array([[5, 5], [5.5, 5], [5.5, 5.5], [5, 5.5]])
    assert clip_polygons_to_window([speck], (0, 0, 48, 48), 0.5)[1].tolist() == [0]


def test_pieces_of_a_polygon_cut_by_a_tile_render_as_themselves_in_ultralytics(tmp_path: Path) -> None:
    # the window y 20..68 cuts the U through both arms; joined into one ring, the zero-width cut between
    # the arms was drawn by ultralytics' fillPoly (polygon2mask) as a line of defect pixels across the gap
    from ultralytics.data.utils import polygon2mask

    data = write_polygon_dataset(tmp_path / "src", {"u": [(1, U_SHAPE)]}, size=(96, 68))
    tiled = tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5, min_visible=0.0)
    text = (tmp_path / "tiles" / "labels" / "val" / "u_x24_y20.txt").read_text()
    rendered = np.zeros((48, 48), bool)
    for line in text.splitlines():
        points = np.array(line.split()[1:], float).reshape(-1, 2) * 48
        rendered |= polygon2mask((48, 48), [points.ravel()], color=1).astype(bool)
    arms = np.zeros((48, 48), np.uint8)  # the U's arms below y 20, in the window x 24..72, y 20..68
    arms[0:10, 12:16] = arms[0:10, 32:36] = 1
    near = cv2.dilate(arms, np.ones((3, 3), np.uint8)).astype(bool)  # 1 px of rasterising slack
    assert rendered.any() and not (rendered & ~near).any()
    assert len(text.splitlines()) == 2 and tiled.boxes["val"][0] == 1


def test_polygon_labels_stay_polygons_in_tiles(tmp_path: Path) -> None:
    data = write_polygon_dataset(tmp_path / "src", {"u": [(1, U_SHAPE)], "good": []})
    tiled = tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5, min_visible=0.25)
    labels_dir = tmp_path / "tiles" / "labels" / "val"
    cut = read_yolo_labels(labels_dir / "u_x0_y0.txt", 48, 48)
    assert cut.classes.tolist() == [1] and cut.polygons is not None
    assert polygon_area(cut.polygons[0]) == pytest.approx(112, abs=0.01)
    assert np.allclose(cut.boxes, [[36, 10, 48, 30]], atol=1e-3)
    whole = read_yolo_labels(labels_dir / "u_x24_y0.txt", 48, 48)  # x 24..72 holds all of it
    assert polygon_area(whole.polygons[0]) == pytest.approx(224, abs=0.01)
    assert np.allclose(whole.boxes, [[12, 10, 36, 30]], atol=1e-3)
    assert (labels_dir / "good_x0_y0.txt").read_text() == ""
    assert tiled.boxes["val"] == (1, 3)
    # the windows at y 24..72 see only the arms' lowest 6 rows: 24, 48 and 24 of 224 px (< 25 %),
    # where the U's box would still show 30 % of its area: dropped, 3 windows in each of 2 splits
    assert tiled.dropped == 6
    assert read_yolo_labels(labels_dir / "u_x24_y24.txt", 48, 48).classes.size == 0


def test_a_polygon_exactly_min_visible_inside_a_tile_is_kept(tmp_path: Path) -> None:
    square = np.array([[36, 12], [60, 12], [60, 36], [36, 36]])  # eighths of 96 px: exact in the file
    data = write_polygon_dataset(tmp_path / "src", {"s": [(1, square)]})
    tiled = tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5, min_visible=0.5)
    # windows x 0..48 and 48..96 (y 0..48), x 24..72 (y 24..72) see half of it each: kept; x 0..48 and
    # 48..96 at y 24..72 see a quarter: dropped, in both splits
    labels_dir = tmp_path / "tiles" / "labels" / "val"
    for name in ("s_x0_y0.txt", "s_x48_y0.txt", "s_x24_y24.txt"):
        assert read_yolo_labels(labels_dir / name, 48, 48).classes.tolist() == [1]
    assert tiled.boxes["val"] == (1, 4) and tiled.dropped == 4


def test_a_rotated_polygon_gives_a_tighter_box_than_its_clipped_box(tmp_path: Path) -> None:
    """The point of keeping polygons: a thin diagonal scratch, cut by a window, keeps a thin box."""
    scratch = np.array([[30, 10], [34, 10], [66, 42], [62, 42]])  # 45-degree bar, 4 px wide
    data = write_polygon_dataset(tmp_path / "src", {"s": [(0, scratch)]})
    tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5, min_visible=0.25)
    cut = read_yolo_labels(tmp_path / "tiles" / "labels" / "val" / "s_x0_y0.txt", 48, 48)
    # left of x = 48 the bar's lower edge (y = x - 20) ends at y = 28; its box clipped would reach y 42
    assert np.allclose(cut.boxes, [[30, 10, 48, 28]], atol=1e-3)
    assert np.allclose(
        clip_boxes_to_window(np.array([[30, 10, 66, 42]]), (0, 0, 48, 48), 0.25)[0], [[30, 10, 48, 42]]
    )


def test_a_box_line_in_a_polygon_file_becomes_its_corners(tmp_path: Path) -> None:
    label = tmp_path / "mixed.txt"
    label.write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.3 0.1 0.3 0.3\n")
    labels = read_yolo_labels(label, 100, 50)
    assert labels.polygons is not None and labels.polygons[0].tolist() == [
        [40, 15],
        [60, 15],
        [60, 35],
        [40, 35],
    ]
    assert np.allclose(labels.boxes, [[40, 15, 60, 35], [10, 5, 30, 15]])
    assert read_yolo_labels(tmp_path / "missing.txt", 100, 50).polygons is None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"tile": 16}, "tile >= 32"),
        ({"tile": 48, "overlap": 1.0}, r"0 <= tile_overlap <= 0\.9"),
        ({"tile": 48, "overlap": 0.95}, r"0 <= tile_overlap <= 0\.9"),
    ],
)
def test_tile_dataset_refuses_bad_settings(tmp_path: Path, kwargs, expected) -> None:
    data = write_box_dataset(tmp_path / "src", {"a": []})
    with pytest.raises(UserError, match=expected):
        tile_dataset(data, tmp_path / "tiles", **kwargs)


def test_windows_narrower_than_the_tile_have_labels_in_their_own_size(tmp_path: Path) -> None:
    # a 40 x 96 image cut into 48-px tiles: the windows are 40 wide and 48 high
    data = write_box_dataset(tmp_path / "src", {"a": [(0, (10, 10, 20, 30))]}, size=(40, 96))
    tiled = tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5, min_visible=0.25)
    assert tiled.tiles == {"train": 3, "val": 3}
    label = tmp_path / "tiles" / "labels" / "val" / "a_x0_y0.txt"
    assert cv2.imread(str(tmp_path / "tiles" / "images" / "val" / "a_x0_y0.png")).shape == (48, 40, 3)
    classes, boxes = read_yolo_boxes(label, 40, 48)
    assert classes.tolist() == [0] and np.allclose(boxes, [[10, 10, 20, 30]])


def test_min_visible_zero_keeps_every_part_with_some_area(tmp_path: Path) -> None:
    data = write_box_dataset(tmp_path / "src", {"a": [(0, (44, 10, 52, 18))]})
    tiled = tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5, min_visible=0.0)
    assert tiled.dropped == 0 and tiled.boxes["val"] == (1, 3)


def test_tiles_json_records_the_parts_left_out(tmp_path: Path) -> None:
    data = write_box_dataset(tmp_path / "src", {"a": [(0, (44, 10, 52, 18))]})
    tiled = tile_dataset(data, tmp_path / "tiles", tile=48, overlap=0.5, min_visible=0.6)
    record = json.loads((tmp_path / "tiles" / "tiles.json").read_text())
    assert record["dropped_under_min_visible"] == tiled.dropped == 4
    assert record["boxes"]["val"] == {"source": 1, "tiles": 1} and record["min_visible"] == 0.6


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("name", ["a_x0_y0.png", "a_x0_y0.txt"], ids=["tile", "label"])
def test_a_tile_on_a_full_disk_is_one_line_naming_it_and_keeps_the_earlier_tiles(
    tmp_path: Path, monkeypatch, capsys, name: str
) -> None:
    # cv2.imwrite's PNG writer returns True on a full disk: the cut-short tile was counted, the folder kept
    data = write_box_dataset(tmp_path / "src", {"a": [(0, (10, 10, 20, 20))]})  # in the first tile
    out = tmp_path / "tiles"
    tile_dataset(data, out, tile=96)  # an earlier tiling, one window per image
    earlier = (out / "tiles.json").read_bytes()
    real_open = open

    def open_on_full_disk(path, mode="r", *args, **kwargs):  # this file's bytes go to a full disk
        if Path(path).name.startswith(f".{name}."):
            return real_open("/dev/full", "wb")
        return real_open(path, mode, *args, **kwargs)

    def imwrite_on_full_disk(path, image, *args):  # the old code's way: OpenCV's real answer on a full disk
        return real_imwrite("/dev/full" if Path(path).name == name else path, image, *args)

    real_imwrite = cv2.imwrite
    monkeypatch.setattr(common.io, "open", open_on_full_disk, raising=False)
    monkeypatch.setattr(cv2, "imwrite", imwrite_on_full_disk)
    assert exit_code(lambda: tile_dataset(data, out, tile=48)) == 2
    written = out / "images" / "train" / name if name.endswith(".png") else out / "labels" / "train" / name
    assert capsys.readouterr().err == f"error: cannot write {out}: No space left on device: {written}\n"
    assert (out / "tiles.json").read_bytes() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "tiles"]


# --- tiled evaluation ----------------------------------------------------------------------------


class TiledGroundTruthValidator(TiledRecordingValidator):
    """Tiled inference whose 'model' returns each window's visible ground truth (from the label file)."""

    def tile_detections(self, image: np.ndarray, im_file: str) -> ImageDetections:
        height, width = image.shape[:2]
        label = Path(im_file.replace("/images/", "/labels/")).with_suffix(".txt")
        classes, boxes = read_yolo_boxes(label, width, height)
        return predict_tiled(
            image, truth_predictor(np.round(boxes), classes), tile=self.tile, overlap=self.tile_overlap
        )


@pytest.fixture(scope="module")
def untrained_small() -> DetectionModel:
    model = DetectionModel("yolo11n.yaml", nc=len(NAMES), verbose=False)
    model.names = dict(enumerate(NAMES))
    return model


def test_tiled_ground_truth_scores_one_in_ultralytics_and_cocoeval(
    tmp_path: Path, untrained_small, network_attempts
) -> None:
    data = write_box_dataset(tmp_path / "src", SMALL_DEFECTS)
    report = evaluate(
        data,
        untrained_small,
        split="val",
        imgsz=64,  # the whole image is letterboxed to 64: the mapping back must be exact at any scale
        device="cpu",
        out=tmp_path / "eval",
        plots=False,
        tile=48,
        tile_overlap=0.5,
        validator_class=TiledGroundTruthValidator,
    )
    assert report.ultralytics["metrics/mAP50(B)"] == pytest.approx(0.995)
    assert report.ultralytics["metrics/mAP50-95(B)"] == pytest.approx(0.995)
    assert report.coco is not None and report.coco["mAP50-95"] == pytest.approx(1.0)
    assert report.coco["n_detections"] == 4  # every defect once, the border ones included
    assert report.image_level.accuracy == 1.0 and report.image_level.auroc == 1.0
    assert report.tiling == {"tile": 48, "overlap": 0.5, "imgsz": 64}
    assert "tiled inference: 48-px windows, overlap 0.5" in format_report(report)
    assert network_attempts == []


def test_conf_from_picks_the_threshold_with_the_same_tiling(tmp_path: Path, untrained_small) -> None:
    seen = set()

    class Recording(TiledGroundTruthValidator):
        def tile_detections(self, image: np.ndarray, im_file: str) -> ImageDetections:
            seen.add((Path(im_file).parent.name, self.tile, self.tile_overlap))
            return super().tile_detections(image, im_file)

    data = write_box_dataset(tmp_path / "src", SMALL_DEFECTS)
    # picked on val, not on train: a pick on the detector's own train photos is given no such advice
    report = evaluate(
        data, untrained_small, split="train", imgsz=64, device="cpu", out=tmp_path / "eval", plots=False,
        tile=48, tile_overlap=0.5, conf_from="val", validator_class=Recording,
    )  # fmt: skip
    assert seen == {("val", 48, 0.5), ("train", 48, 0.5)}
    assert report.notes[0].startswith("conf 0.5 picked on the val split")  # ground truth: tops of 1
    # detection.predict finds the same boxes with the same windows
    assert report.notes[0].endswith(
        ": pass --conf 0.5 --imgsz 64 --tile 48 --tile-overlap 0.5 to detection.predict"
    )


def test_tiled_evaluation_runs_a_real_model(tmp_path: Path, untrained_small) -> None:
    data = write_box_dataset(tmp_path / "src", SMALL_DEFECTS)
    report = evaluate(
        data,
        untrained_small,
        split="val",
        imgsz=64,
        device="cpu",
        out=tmp_path / "eval",
        plots=False,
        tile=48,
    )
    assert report.tiling is not None and report.image_level.n_images == 4
    assert 0.0 <= report.ultralytics["metrics/mAP50(B)"] <= 1.0


def test_tiled_evaluation_needs_a_tiled_validator_and_a_sane_tile(tmp_path: Path, untrained_small) -> None:
    data = write_box_dataset(tmp_path / "src", {"a": []})

    with pytest.raises(UserError, match="needs a TiledRecordingValidator"):
        evaluate(data, untrained_small, split="val", tile=48, validator_class=RecordingValidator)
    with pytest.raises(UserError, match="--tile needs a window side >= 32 px, got 16"):
        evaluate(data, untrained_small, split="val", tile=16)


def test_a_tiff_opencv_reads_wrong_rows_of_is_refused_by_evaluates_photo_check(tmp_path: Path) -> None:
    # an uncompressed TIFF whose last strip holds 1 byte of its 8 rows' 768: OpenCV decoded it without a word,
    # the rows wrong, and detection.evaluate's photo check (longest_side, as detection.predict's) took it
    from detection.evaluate import check_photos_decode

    images = tmp_path / "images" / "test"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "a.png"), np.zeros((32, 32, 3), np.uint8))
    short = images / "b.tif"
    short.write_bytes(raw_tiff(strip=8, counts=lambda sizes: [*sizes[:-1], 1]))
    (tmp_path / "data.yaml").write_text(
        f"path: {tmp_path}\ntrain: images/test\nval: images/test\ntest: images/test\nnames: [a]\n"
    )
    line = (
        f"cannot decode image {short}: OpenCV may read wrong rows of it (uncompressed strip 3 holds 1 byte "
        "where its 8 rows need 768: StripByteCounts too small)"
    )
    with pytest.raises(UserError) as error:
        longest_side([images / "a.png", short])
    assert str(error.value) == line
    with pytest.raises(UserError) as error:
        check_photos_decode(tmp_path / "data.yaml", ("test", None))
    assert str(error.value) == line
