"""Tiled training and inference for small defects: overlapping tiles, boxes clipped in and merged back.

A defect of a few pixels in a 1024-px photo all but vanishes when the whole
image is shrunk to the model's ``imgsz``. Tiling keeps full resolution: the
image is cut into ``tile x tile`` windows that overlap by ``overlap`` (a
fraction of ``tile``), the model sees each window at ``imgsz`` (``imgsz = tile``
is native resolution), and the windows' boxes are shifted back and merged.

- **Windows** (:func:`tile_windows`): origins every ``tile - round(overlap * tile)``
  pixels, the last one moved back so that it ends on the image's edge (every
  window is full-size; an image smaller than ``tile`` is one window).
- **Training** (:func:`tile_dataset`): each train/val image becomes its windows,
  as PNG files with YOLO box labels clipped to the window. A box whose visible
  part is less than ``min_visible`` of its area is dropped from that window.
  Polygon (YOLO-seg) labels stay polygons, cut by the window with shapely
  (:func:`clip_polygons_to_window`; visible fraction by polygon area; a polygon cut into pieces
  apart is a line per piece): the
  detect task reads them as tight boxes and rotates them point by point, where
  a box label would be rotated as its four corners and grow loose. Every window
  is kept, also those without a defect (backgrounds), so tiled sets are mostly
  background.
- **Inference** (:func:`predict_tiled`): the model's boxes in each window, shifted
  to image pixels, then :func:`merge_tile_detections`: per-class NMS
  (``torchvision.ops.batched_nms``) with boxes that are whole in their window
  ranked before boxes cut by an inner window edge ("fragments"), then every
  fragment mostly inside (``containment``) a kept whole box of its class is
  dropped. A defect that lies on one window's edge is whole in its neighbour
  (when it is smaller than the overlap), so it comes back once, with its whole box.

Limitation: a defect wider or taller than the overlap (``overlap * tile``
pixels, less ``2 * edge_tol``) may be whole in no window and can then come back
as two or more fragments. Pick ``tile`` and ``overlap`` so that the overlap
spans the largest defect, or use whole-image inference for large defects.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import shapely
import torch
from tqdm import tqdm

from common.config import yaml_text
from common.errors import UserError
from common.folders import build_folder
from common.image_files import decode_image_file, encode_image
from common.images import decode_photos, image_size
from common.io import atomic_write, recorded_path
from converters.yolo import rings_to_single_polygon
from detection.data import check_photo_type, data_names, label_path, split_images
from detection.detections import ImageDetections

#: The smallest tile side in pixels: YOLO's coarsest feature map has a stride of 32.
MIN_TILE = 32
#: The largest overlap of neighbouring tiles: each window advances at least a tenth of its side
#: (100x the windows of no overlap). Nearer 1 a typo would run for hours: 0.99 on 32-px tiles is a
#: 1-px stride, about a million windows on a 1024-px photo.
MAX_OVERLAP = 0.9
#: The overlap ``detection.predict`` and ``detection.evaluate`` use without ``--tile-overlap``.
DEFAULT_OVERLAP = 0.2
#: Seconds a photo's windows run before :func:`predict_tiled` shows its bar: a photo of a few windows
#: leaves no trace, one of thousands (``--tile 32 --tile-overlap 0.9``: 26k on a 512-px photo) shows
#: how far it is and how long the rest will take.
PROGRESS_DELAY = 2.0

#: ``(tiles, windows)`` -> detections per tile, in tile pixels. ``tiles``: BGR ``(h, w, 3)`` uint8 arrays;
#: ``windows``: ``(B, 4)`` int xyxy of each tile in the image (a model may ignore them).
TilePredictor = Callable[[list[np.ndarray], np.ndarray], list[ImageDetections]]


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start coordinates of overlapping windows of ``tile`` pixels along a side of ``length`` pixels.

    >>> tile_origins(100, 40, 0.25)  # stride 30
    [0, 30, 60]
    >>> tile_origins(100, 40, 0.2)  # stride 32; the last window ends on the edge
    [0, 32, 60]
    >>> tile_origins(30, 40, 0.2)  # smaller than a tile: one (smaller) window
    [0]
    """
    if tile < 1 or not 0 <= overlap < 1:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < 1, got tile={tile}, overlap={overlap}")
    if length <= tile:
        return [0]
    stride = max(1, tile - round(overlap * tile))
    origins = list(range(0, length - tile, stride))
    return [*origins, length - tile]


def tile_windows(width: int, height: int, tile: int, overlap: float) -> np.ndarray:
    """``(K, 4)`` int xyxy windows covering a ``width x height`` image, row by row.

    >>> tile_windows(100, 40, 60, 0.5).tolist()
    [[0, 0, 60, 40], [30, 0, 90, 40], [40, 0, 100, 40]]
    """
    xs, ys = tile_origins(width, tile, overlap), tile_origins(height, tile, overlap)
    return np.array(
        [[x, y, min(x + tile, width), min(y + tile, height)] for y in ys for x in xs], dtype=int
    ).reshape(-1, 4)


def longest_side(photos: Iterable[Path]) -> int:
    """The longest side in px of ``photos`` (0: none), once each has decoded, a TIFF by OpenCV too (the model
    reads with it: a float TIFF stopped the run when reached); a UserError naming every one that does not (not
    an image, truncated, unreadable: :func:`common.images.decode_photos`).

    A tile at least that long cuts none of them: each window is a whole photo (:func:`tile_windows`), which
    :func:`~detection.weights.tiling_note` tells.
    """
    return max((max(size) for size in decode_photos(photos, checked_image_size)), default=0)


def checked_image_size(path: Path) -> tuple[int, int]:
    """:func:`common.images.image_size` of a photo of a type read here (not a HEIC, which ultralytics' split
    takes in: :func:`~detection.data.check_photo_type`)."""
    check_photo_type(path)
    return image_size(path)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` areas of ``(N, 4)`` xyxy boxes (0 for empty ones)."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def clip_boxes_to_window(
    boxes: np.ndarray, window: Sequence[int], min_visible: float
) -> tuple[np.ndarray, np.ndarray]:
    """The parts of ``boxes`` inside ``window``, in window pixels, and which boxes they are.

    Args:
        boxes: ``(N, 4)`` xyxy image pixels.
        window: ``(x1, y1, x2, y2)`` image pixels.
        min_visible: a box is kept if at least this fraction of its area is inside
            (and some of it is: a box that only touches the window is never kept).

    Returns:
        ``(M, 4)`` clipped boxes shifted to the window's origin, and ``(M,)`` indices into ``boxes``.

    >>> local, index = clip_boxes_to_window(np.array([[5, 5, 15, 10]]), (10, 0, 30, 20), 0.5)
    >>> local.tolist(), index.tolist()  # half of the box is inside
    ([[0.0, 5.0, 5.0, 10.0]], [0])
    >>> clip_boxes_to_window(np.array([[5, 5, 15, 10]]), (10, 0, 30, 20), 0.6)[1].tolist()
    []
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    x1, y1, x2, y2 = (float(v) for v in window)
    clipped = np.stack(
        [
            np.clip(boxes[:, 0], x1, x2),
            np.clip(boxes[:, 1], y1, y2),
            np.clip(boxes[:, 2], x1, x2),
            np.clip(boxes[:, 3], y1, y2),
        ],
        axis=1,
    )
    area, visible = box_area(boxes), box_area(clipped)
    keep = np.flatnonzero((visible > 0) & (visible >= min_visible * area))
    return clipped[keep] - np.array([x1, y1, x1, y1]), keep


def clip_polygons_to_window(
    polygons: Sequence[np.ndarray], window: Sequence[int], min_visible: float
) -> tuple[list[np.ndarray], np.ndarray]:
    """The parts of ``polygons`` inside ``window``, in window pixels, and which polygons they are.

    The polygon version of :func:`clip_boxes_to_window`: a polygon is kept if at least
    ``min_visible`` of its area is inside (and some of it is). A polygon that the window cuts
    into several pieces apart is one ring per piece, each its own YOLO-seg line (a piece's holes
    joined to its outline by zero-width cuts, :func:`converters.yolo.rings_to_single_polygon`): one
    ring joining the pieces had cuts across the background between them, which ultralytics'
    ``fillPoly`` drew as lines of defect pixels; the converters write a region in parts apart so too.
    A piece under :data:`MIN_PIECE_AREA` beside a larger one is no line (a hair from a rounded edge).

    Args:
        polygons: ``(K, 2)`` xy rings in image pixels.
        window: ``(x1, y1, x2, y2)`` image pixels.
        min_visible: fraction of the polygon's area (all its pieces in the window together).

    Returns:
        ``(K', 2)`` rings shifted to the window's origin, and ``(M,)`` indices into ``polygons``, one per
        ring (a polygon cut into pieces is named once per piece).

    >>> square = np.array([[5, 5], [15, 5], [15, 10], [5, 10]])
    >>> rings, index = clip_polygons_to_window([square], (10, 0, 30, 20), 0.5)  # half of it is inside
    >>> sorted(map(tuple, rings[0].tolist())), index.tolist()
    ([(0.0, 5.0), (0.0, 10.0), (5.0, 5.0), (5.0, 10.0)], [0])
    """
    rings, index, visible = _polygons_in_window(polygons, window)
    keep = visible >= min_visible
    return [ring for ring, k in zip(rings, keep, strict=True) if k], index[keep]


MIN_PIECE_AREA = 1.0
"""px²: a polygon's piece in a window smaller than this is no label line of its own (unless its largest)."""


def _polygons_in_window(
    polygons: Sequence[np.ndarray], window: Sequence[int]
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The pieces inside ``window`` of every polygon with some area there: each piece's ring (window
    pixels), its polygon's index, and the fraction of that polygon's area inside the window (all its
    pieces together; :func:`clip_polygons_to_window` without the threshold)."""
    x1, y1, x2, y2 = (float(v) for v in window)
    frame = shapely.box(x1, y1, x2, y2)
    rings, index, visible = [], [], []
    for i, points in enumerate(polygons):
        shape = shapely.make_valid(shapely.Polygon(np.asarray(points, dtype=float)))
        inside = shapely.intersection(shape, frame)
        parts = [p for p in shapely.get_parts(inside) if isinstance(p, shapely.Polygon) and p.area > 0]
        if not parts:
            continue
        fraction = sum(p.area for p in parts) / shape.area
        largest = max(p.area for p in parts)
        # a hair under 1 px² (a %.6g read-back: 48/700 -> 47.99998) is no piece of its own, but the
        # largest piece stays (a small label whole); ``fraction`` above still counts every piece
        for part in (p for p in parts if p.area >= MIN_PIECE_AREA or p.area == largest):
            outer = [np.asarray(part.exterior.coords)[:-1]]
            holes = [np.asarray(h.coords)[:-1] for h in part.interiors]
            rings.append(rings_to_single_polygon(outer, holes) - np.array([x1, y1]))
            index.append(i)
            visible.append(fraction)
    return rings, np.array(index, dtype=int), np.array(visible, dtype=float)


def cut_by_window(
    boxes: np.ndarray, window: Sequence[int], image_size: tuple[int, int], tol: float
) -> np.ndarray:
    """``(N,)`` bool: the box (window pixels) reaches an edge of ``window`` that is not an edge of the image.

    Such a box may be the visible part of something the window cut off (a fragment).

    Args:
        boxes: ``(N, 4)`` xyxy in window pixels.
        window: the window's xyxy in the image.
        image_size: ``(width, height)`` of the image.
        tol: pixels from the edge that count as reaching it (predicted edges are not exact).
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    x1, y1, x2, y2 = window
    width, height = image_size
    cut = np.zeros(len(boxes), dtype=bool)
    if x1 > 0:
        cut |= boxes[:, 0] <= tol
    if y1 > 0:
        cut |= boxes[:, 1] <= tol
    if x2 < width:
        cut |= boxes[:, 2] >= (x2 - x1) - tol
    if y2 < height:
        cut |= boxes[:, 3] >= (y2 - y1) - tol
    return cut


def merge_tile_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    fragment: np.ndarray,
    *,
    iou: float = 0.5,
    containment: float = 0.6,
) -> np.ndarray:
    """Indices of the detections to keep after merging overlapping windows, best first.

    1. Per-class NMS at ``iou`` (``torchvision.ops.batched_nms``), whole boxes ranked
       before fragments and each group by score, so a whole view of a defect
       suppresses its cut-off views whatever their scores.
    2. A fragment that still remains is dropped when at least ``containment`` of its
       area lies inside a kept whole box of its class (a cut-off view overlaps the whole
       one by less than ``iou`` when little of the defect is visible).

    Args:
        boxes: ``(N, 4)`` xyxy image pixels.
        scores: ``(N,)``.
        classes: ``(N,)`` int.
        fragment: ``(N,)`` bool, from :func:`cut_by_window`.
        iou: NMS threshold.
        containment: fraction of a fragment inside a whole box that makes it a duplicate.

    Returns:
        ``(K,)`` int indices into the inputs, by descending score.
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    scores = np.asarray(scores, dtype=float)
    classes = np.asarray(classes, dtype=int)
    fragment = np.asarray(fragment, dtype=bool)
    if len(scores) == 0:
        return np.zeros(0, dtype=int)
    # scores are in [0, 1] for the models here; +2 puts every whole box ahead of every fragment
    rank = torch.as_tensor(scores + 2.0 * ~fragment, dtype=torch.float64)
    from torchvision.ops import batched_nms  # here: torchvision.ops imports torch._dynamo (seconds of --help)

    keep = batched_nms(torch.as_tensor(boxes), rank, torch.as_tensor(classes), iou).numpy()
    whole, parts = keep[~fragment[keep]], keep[fragment[keep]]
    if len(whole) and len(parts):
        a, b = boxes[parts][:, None, :], boxes[whole][None, :, :]
        inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
        inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
        inside = inter_w * inter_h / np.maximum(box_area(boxes[parts]), 1e-12)[:, None]
        same = classes[parts][:, None] == classes[whole][None, :]
        parts = parts[~((inside >= containment) & same).any(axis=1)]
    kept = np.concatenate([whole, parts])
    return kept[np.argsort(-scores[kept], kind="stable")]


def check_tiling(tile: int, overlap: float) -> None:
    """Raises :class:`UserError` unless ``tile >= MIN_TILE`` pixels and ``0 <= overlap <= MAX_OVERLAP``.

    The message names ``--tile`` and ``--tile-overlap``, the flags every caller's value comes from
    (``detection.predict``, ``detection.evaluate``, the cascade, the annotation page), as their
    ``--conf`` checks do; a train config's ``tile`` is checked as a config key
    (:func:`detection.train_config.check_own_keys`).

    >>> check_tiling(48, 0.25)
    """
    if not tile >= MIN_TILE:  # each value named alone: a command without --tile-overlap named it too
        # training's config reads tile: 0 as whole images; here that is leaving --tile out
        off = " (leave --tile out for whole images)" if tile <= 0 else ""
        raise UserError(f"--tile needs a window side >= {MIN_TILE} px, got {tile}{off}")
    if not 0 <= overlap <= MAX_OVERLAP:
        raise UserError(f"--tile-overlap needs a number in [0, {MAX_OVERLAP}], got {overlap}")


def check_overlap_has_tile(tile: int | None, overlap: float) -> None:
    """Raises :class:`UserError` for an overlap other than :data:`DEFAULT_OVERLAP` without a ``tile``.

    The command lines' check (``detection.predict``, ``detection.evaluate`` and the cascade's
    ``inspection.options.check_cascade``): whole images have no windows to overlap, and
    ``--tile-overlap -3`` ran silently, ignored unchecked.

    >>> check_overlap_has_tile(None, DEFAULT_OVERLAP), check_overlap_has_tile(48, 0.5)
    (None, None)
    """
    if tile is None and overlap != DEFAULT_OVERLAP:
        raise UserError("--tile-overlap needs --tile")


def predict_tiled(
    image: np.ndarray,
    predict_tiles: TilePredictor,
    *,
    tile: int,
    overlap: float = 0.2,
    iou: float = 0.5,
    containment: float = 0.6,
    edge_tol: float = 2.0,
    batch: int = 8,
    max_det: int = 300,
    progress: bool = False,
    desc: str = "windows",
) -> ImageDetections:
    """Detections of ``image`` from its overlapping windows, in image pixels, merged.

    Args:
        image: ``(H, W, 3)`` uint8 BGR (as ``cv2.imread`` gives it).
        predict_tiles: the model on a batch of windows (see :data:`TilePredictor`).
        tile, overlap: window side in pixels and overlap fraction (:func:`tile_windows`).
        iou, containment: merging (:func:`merge_tile_detections`).
        edge_tol: pixels from an inner window edge within which a box counts as cut off.
        batch: windows per call of ``predict_tiles``.
        max_det: detections kept per image, best first.
        progress: a bar over the windows on stderr, named ``desc``, once they have run for
            :data:`PROGRESS_DELAY` seconds; it is cleared when the photo is done.
    """
    height, width = image.shape[:2]
    windows = tile_windows(width, height, tile, overlap)
    boxes, scores, classes, fragment = [], [], [], []
    bar = tqdm(
        total=len(windows),
        desc=desc,
        unit="window",
        leave=False,
        delay=PROGRESS_DELAY,
        disable=not progress,
        file=sys.stderr,
    )
    with bar:
        for start in range(0, len(windows), batch):
            chunk = windows[start : start + batch]
            tiles = [image[y1:y2, x1:x2] for x1, y1, x2, y2 in chunk]
            found = predict_tiles(tiles, chunk)
            if len(found) != len(chunk):
                raise ValueError(f"predict_tiles returned {len(found)} results for {len(chunk)} tiles")
            for window, detections in zip(chunk, found, strict=True):
                local = np.asarray(detections.boxes, dtype=float).reshape(-1, 4)
                fragment.append(cut_by_window(local, window, (width, height), edge_tol))
                boxes.append(local + np.array([window[0], window[1], window[0], window[1]], dtype=float))
                scores.append(np.asarray(detections.scores, dtype=float).reshape(-1))
                classes.append(np.asarray(detections.classes, dtype=int).reshape(-1))
            bar.update(len(chunk))
    all_boxes, all_scores = np.concatenate(boxes), np.concatenate(scores)
    all_classes, all_fragment = np.concatenate(classes), np.concatenate(fragment)
    keep = merge_tile_detections(
        all_boxes, all_scores, all_classes, all_fragment, iou=iou, containment=containment
    )[:max_det]
    return ImageDetections(boxes=all_boxes[keep], scores=all_scores[keep], classes=all_classes[keep])


# --- tiled data sets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class YoloLabels:
    """The instances of one YOLO label file, in pixels.

    Attributes:
        classes: ``(N,)`` class ids.
        boxes: ``(N, 4)`` xyxy (a polygon's enclosing box).
        polygons: ``(K, 2)`` xy rings, one per line, when the file holds polygons (a box line
            among them becomes its four corners); ``None`` for a box file.
    """

    classes: np.ndarray
    boxes: np.ndarray
    polygons: list[np.ndarray] | None


def read_yolo_labels(path: Path, width: int, height: int) -> YoloLabels:
    """The boxes (and polygons, for YOLO-seg lines) of a label file; a missing file has none."""
    classes, boxes, rings = [], [], []
    polygonal = False
    # utf-8-sig: a BOM first (a Windows tool's file), as ultralytics reads labels; float() stopped on it
    lines = path.read_text(encoding="utf-8-sig").splitlines() if path.is_file() else []
    for line in lines:
        values = line.split()
        if not values:
            continue
        numbers = np.array([float(v) for v in values[1:]])
        if len(numbers) == 4:  # cx cy w h
            cx, cy, w, h = numbers
            box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            ring = box[[0, 1, 2, 1, 2, 3, 0, 3]].reshape(4, 2)
        elif len(numbers) >= 6 and len(numbers) % 2 == 0:  # polygon x1 y1 x2 y2 ...
            ring = numbers.reshape(-1, 2)
            box = np.concatenate([ring.min(0), ring.max(0)])
        else:
            raise UserError(f"label file {path}: cannot read line '{line}'")
        classes.append(int(float(values[0])))
        boxes.append(box * [width, height, width, height])
        rings.append(ring)
        polygonal |= len(numbers) > 4
    return YoloLabels(
        classes=np.array(classes, dtype=int),
        boxes=np.array(boxes, dtype=float).reshape(-1, 4),
        polygons=[ring * [width, height] for ring in rings] if polygonal else None,
    )


def read_yolo_boxes(path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` class ids and ``(N, 4)`` xyxy pixel boxes of a YOLO label file (polygons as their boxes)."""
    labels = read_yolo_labels(path, width, height)
    return labels.classes, labels.boxes


def yolo_box_lines(classes: np.ndarray, boxes: np.ndarray, width: int, height: int) -> str:
    """YOLO detect label text (``class cx cy w h``, normalized, ``%.6g``) of xyxy pixel boxes."""
    lines = []
    for c, (x1, y1, x2, y2) in zip(classes, boxes, strict=True):
        cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{int(c)} {cx:.6g} {cy:.6g} {w:.6g} {h:.6g}\n")
    return "".join(lines)


def yolo_polygon_lines(classes: np.ndarray, rings: Sequence[np.ndarray], width: int, height: int) -> str:
    """YOLO-seg label text (``class x1 y1 x2 y2 ...``, normalized, ``%.6g``) of pixel rings."""
    lines = []
    for c, ring in zip(classes, rings, strict=True):
        values = np.clip(np.asarray(ring, dtype=float) / [width, height], 0.0, 1.0).ravel()
        lines.append(f"{int(c)} " + " ".join(f"{v:.6g}" for v in values) + "\n")
    return "".join(lines)


@dataclass(frozen=True)
class TiledDataset:
    """What :func:`tile_dataset` wrote.

    Attributes:
        data: the tiled ``data.yaml`` (``train`` and ``val`` only; evaluate on the source's
            ``test`` split with tiled inference).
        images: source images per split.
        tiles: tiles per split.
        boxes: labels (boxes or polygons) in the source per split, and labels written over all tiles.
        dropped: boxes left out of a tile because less than ``min_visible`` of them was inside.
    """

    data: Path
    images: dict[str, int]
    tiles: dict[str, int]
    boxes: dict[str, tuple[int, int]]
    dropped: int

    def describe(self) -> str:
        counts = ", ".join(
            f"{s} {self.images[s]} images -> {self.tiles[s]} tiles "
            f"({self.boxes[s][0]} -> {self.boxes[s][1]} labels)"
            for s in self.images
        )
        return f"tiled data set {self.data}: {counts}; {self.dropped} label parts under min_visible left out"


def tile_dataset(
    data_yaml: str | Path,
    out_dir: str | Path,
    *,
    tile: int,
    overlap: float = 0.2,
    min_visible: float = 0.25,
    splits: Sequence[str] = ("train", "val"),
) -> TiledDataset:
    """Cuts the ``splits`` of a YOLO data set into overlapping tiles with clipped box labels.

    Writes ``out_dir/images/<split>/<stem>_x<X>_y<Y>.png``, the matching
    ``labels/<split>/*.txt``, ``data.yaml`` (``path: out_dir``, the source's
    ``names``) and ``tiles.json`` (parameters and counts). ``out_dir`` is built hidden beside
    itself and renamed into place (:func:`common.folders.build_folder`), replacing an earlier
    one whole: a re-run into the same run folder (``exist_ok``) with another ``tile`` trained on
    the old run's tiles as well as its own, and a Ctrl-C left part of a split.

    Raises:
        UserError: bad parameters, an unreadable image or label file, or a file that cannot be written
            (a full disk): one line naming it by its place in ``out_dir``; an earlier ``out_dir`` is kept.
    """
    if not tile >= MIN_TILE or not 0 <= overlap <= MAX_OVERLAP or not 0 <= min_visible <= 1:
        raise UserError(
            f"tiling needs tile >= {MIN_TILE}, 0 <= tile_overlap <= {MAX_OVERLAP}, "
            f"0 <= tile_min_visible <= 1; got {tile}, {overlap}, {min_visible}"
        )
    data_yaml, out_dir = Path(data_yaml), Path(out_dir)
    settings = {"tile": tile, "overlap": overlap, "min_visible": min_visible}
    return build_folder(
        out_dir, lambda folder: _write_tiles(data_yaml, folder, out_dir, splits, settings), overwrite=True
    )


def _write_tiles(
    data_yaml: Path, folder: Path, out_dir: Path, splits: Sequence[str], settings: dict
) -> TiledDataset:
    """:func:`tile_dataset`'s files written into ``folder``, which becomes ``out_dir`` once complete."""
    names = data_names(data_yaml)
    images: dict[str, int] = {}
    tiles: dict[str, int] = {}
    boxes: dict[str, tuple[int, int]] = {}
    dropped = 0
    for split in splits:
        image_dir, label_dir = folder / "images" / split, folder / "labels" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        sources = split_images(data_yaml, split)
        counts = np.zeros(4, dtype=int)
        for source in sources:
            counts += tile_image(source, image_dir, label_dir, **settings)
        n_tiles, n_in, n_out, n_dropped = (int(c) for c in counts)
        images[split], tiles[split], boxes[split] = len(sources), n_tiles, (n_in, n_out)
        dropped += n_dropped

    tile, overlap = settings["tile"], settings["overlap"]
    data = {"path": recorded_path(out_dir), **{s: f"images/{s}" for s in splits}}  # as the converters
    data["names"] = dict(enumerate(names))
    header = f"# {data_yaml} cut into {tile}-px tiles, overlap {overlap:g} (detection.tiling)\n"
    atomic_write(folder / "data.yaml", header + yaml_text(data))
    record = {
        "source": recorded_path(data_yaml),
        **settings,
        "images": images,
        "tiles": tiles,
        "boxes": {s: {"source": a, "tiles": b} for s, (a, b) in boxes.items()},
        "dropped_under_min_visible": dropped,
    }
    atomic_write(folder / "tiles.json", json.dumps(record, indent=1) + "\n")
    return TiledDataset(data=out_dir / "data.yaml", images=images, tiles=tiles, boxes=boxes, dropped=dropped)


def tile_image(
    source: Path, image_dir: Path, label_dir: Path, *, tile: int, overlap: float, min_visible: float
) -> tuple[int, int, int, int]:
    """Writes one image's windows (PNG) and their clipped YOLO labels into ``image_dir`` / ``label_dir``.

    Returns:
        ``(tiles written, labels in the image, labels written, label parts under min_visible left out)``.

    Raises:
        UserError: the image does not decode, or its label file is bad.
        OSError: a tile or its label cannot be written (a full disk), naming the file.
    """
    image = decode_image_file(source, cv2.IMREAD_COLOR)
    height, width = image.shape[:2]
    labels = read_yolo_labels(label_path(source), width, height)
    n_tiles = n_out = dropped = 0
    for window in tile_windows(width, height, tile, overlap):
        x1, y1, x2, y2 = (int(v) for v in window)
        text, kept, touched = _window_labels(labels, window, min_visible)
        dropped += touched - kept
        name = f"{source.stem}_x{x1}_y{y1}"
        # not cv2.imwrite: its PNG writer returns True on a full disk, leaving a cut-short tile counted
        atomic_write(image_dir / f"{name}.png", encode_image(".png", image[y1:y2, x1:x2]))
        atomic_write(label_dir / f"{name}.txt", text)  # a plain write's error names no file
        n_tiles += 1
        n_out += kept
    return n_tiles, len(labels.classes), n_out, dropped


def _window_labels(labels: YoloLabels, window: np.ndarray, min_visible: float) -> tuple[str, int, int]:
    """One window's label text, the labels in it, and the labels it touches at all (a polygon cut into
    pieces is one label, written as a line per piece)."""
    width, height = int(window[2] - window[0]), int(window[3] - window[1])
    if labels.polygons is None:
        local, index = clip_boxes_to_window(labels.boxes, window, min_visible)
        touched = len(clip_boxes_to_window(labels.boxes, window, 0.0)[1])
        return yolo_box_lines(labels.classes[index], local, width, height), len(index), touched
    rings, index, visible = _polygons_in_window(labels.polygons, window)  # one intersection per polygon
    keep = visible >= min_visible
    text = yolo_polygon_lines(
        labels.classes[index[keep]], [r for r, k in zip(rings, keep, strict=True) if k], width, height
    )
    return text, len(np.unique(index[keep])), len(np.unique(index))
