"""YOLO labels (boxes and segment polygons) and ``data.yaml``.

Label files hold one line per instance, coordinates normalised by the image
size: ``class cx cy w h`` for detection, ``class x1 y1 x2 y2 ...`` for
segmentation. A background image gets an empty file.

YOLO-seg allows one polygon per line and has no holes. An instance with
holes (or touching itself at a corner) is written as one ring in which each hole is
joined to the outline by a zero-width cut, the trick ultralytics' own
``merge_multi_segment`` uses for COCO's multi-part polygons; OpenCV's
``fillPoly``, which ultralytics rasterises labels with, then leaves the holes
empty. An MVTec LOCO region file in parts apart (one instance,
:func:`converters.masks.join_instances`) is one YOLO-seg line per part, as ultralytics'
``convert_segment_masks_to_yolo_seg`` writes one per outer contour: a cut between parts far apart
is drawn by ``fillPoly`` as a line of defect pixels across the photo. Its YOLO box (detect) is one,
spanning the parts, as its COCO ``bbox``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from common.config import yaml_text
from common.errors import UserError, few
from common.io import expand_user, recorded_path
from converters.masks import DefectInstance


def xyxy_to_yolo(xyxy: np.ndarray, *, width: int, height: int) -> np.ndarray:
    """Box ``(4,)`` xyxy in pixels to normalised ``cx, cy, w, h``.

    >>> xyxy_to_yolo(np.array([0, 0, 50, 20]), width=100, height=40).tolist()
    [0.25, 0.25, 0.5, 0.5]
    """
    x1, y1, x2, y2 = np.asarray(xyxy, dtype=float)
    return np.array([(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height])


def yolo_to_xyxy(box: np.ndarray, *, width: int, height: int) -> np.ndarray:
    """Normalised ``cx, cy, w, h`` ``(4,)`` back to xyxy in pixels."""
    cx, cy, w, h = np.asarray(box, dtype=float)
    return np.array(
        [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
    )


def _bridge(ring: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Joins ``other`` into ``ring`` through their closest vertices, out and back along one cut."""
    best, i, j = np.inf, 0, 0
    for start in range(0, len(ring), 1024):  # chunks bound memory for rings of thousands of points
        distances = ((ring[start : start + 1024, None, :] - other[None, :, :]) ** 2).sum(-1)
        a, b = np.unravel_index(np.argmin(distances), distances.shape)
        if distances[a, b] < best:
            best, i, j = distances[a, b], start + a, b
    other = np.roll(other, -j, axis=0)
    return np.concatenate([ring[: i + 1], other, other[:1], ring[i:]])


def rings_to_single_polygon(polygons: Sequence[np.ndarray], holes: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Merges outer rings and holes ``(K, 2)`` into one ring for formats with one polygon per object."""
    if not polygons:
        raise ValueError("instance has no polygon")
    ring = np.asarray(polygons[0], dtype=float)
    for other in [*polygons[1:], *holes]:
        ring = _bridge(ring, np.asarray(other, dtype=float))
    return ring


def _numbers(values: np.ndarray) -> str:
    # %g with 6 significant digits, as ultralytics' own converters write; one format call per line.
    return ("%.6g " * len(values)).rstrip() % tuple(values.tolist())


def instance_to_yolo_line(
    instance: DefectInstance, *, class_id: int, width: int, height: int, task: str = "detect"
) -> str:
    """One label line for ``instance`` in an image of ``width`` x ``height`` pixels.

    Args:
        task: ``detect`` (box) or ``segment`` (polygon).
    """
    if task == "detect":  # the box clipped to the image first: clipping (cx, cy, w, h) one by one shifts it
        box = np.clip(np.asarray(instance.xyxy, dtype=float), 0.0, [width, height, width, height])
        values = xyxy_to_yolo(box, width=width, height=height)
    elif task == "segment":
        ring = rings_to_single_polygon(instance.polygons, instance.holes)
        values = (ring / np.array([width, height], dtype=float)).ravel()
    else:
        raise ValueError(f"unknown YOLO task '{task}' (expected detect or segment)")
    return f"{class_id} {_numbers(np.clip(values, 0.0, 1.0))}"


def instance_yolo_lines(
    instance: DefectInstance, *, class_id: int, width: int, height: int, task: str = "detect"
) -> list[str]:
    """The label lines of ``instance`` (:func:`instance_to_yolo_line`): one, or for ``segment`` one per part
    of a joined instance (``instance.parts``, an MVTec LOCO region file in parts apart)."""
    pieces = instance.parts if task == "segment" and instance.parts else (instance,)
    return [
        instance_to_yolo_line(piece, class_id=class_id, width=width, height=height, task=task)
        for piece in pieces
    ]


def label_rows(
    instances: Sequence[DefectInstance],
    *,
    class_ids: Mapping[str, int],
    width: int,
    height: int,
    task: str = "detect",
) -> tuple[list[str], int]:
    """The rows of one label file (:func:`instance_yolo_lines`), each once, and how many repeats it left out.

    Two instances of one class with one box (MVTec LOCO region files over one area) are one ``detect`` row
    twice. ultralytics keeps one of identical rows ("duplicate labels removed", a log line among many), so
    the second trained nothing, and a check of the set counted one instance fewer than COCO, unexplained.
    """
    rows = [
        row
        for inst in instances
        for row in instance_yolo_lines(
            inst, class_id=class_ids[inst.class_name], width=width, height=height, task=task
        )
    ]
    kept = list(dict.fromkeys(rows))
    return kept, len(rows) - len(kept)


def labels_text(
    instances: Sequence[DefectInstance],
    *,
    class_ids: Mapping[str, int],
    width: int,
    height: int,
    task: str = "detect",
) -> str:
    """Contents of one label file (empty for a background image): :func:`label_rows`, a repeat left out."""
    rows, _ = label_rows(instances, class_ids=class_ids, width=width, height=height, task=task)
    return "".join(row + "\n" for row in rows)


def repeated_rows_note(
    repeats: Sequence[tuple[str, int]], *, task: str = "detect", coco: bool = False
) -> str:
    """The conversion's note on the label rows :func:`label_rows` left out.

    Args:
        repeats: each label file's path in the data set and how many of its rows were repeats.
        task: the YOLO task (``segment``: the rows repeated an outline, not only a box).
        coco: COCO files were written too, whose annotations keep every instance.

    >>> repeated_rows_note([("labels/val/a.txt", 1)])
    "1 YOLO label row left out as the repeat of another in its file (labels/val/a.txt): two instances \
of one class with one box, which ultralytics trains on as one ('duplicate labels removed')"
    """
    count = sum(n for _, n in repeats)
    rows = "1 YOLO label row" if count == 1 else f"{count} YOLO label rows"
    shape = "outline" if task == "segment" else "box"
    return (
        f"{rows} left out as the repeat of another in its file ({few([path for path, _ in repeats])}): two "
        f"instances of one class with one {shape}, which ultralytics trains on as one ('duplicate labels "
        "removed')" + ("; the COCO annotations keep both" if coco else "")
    )


#: The first line of every ``data.yaml`` the converters write: how a reader knows its ``path:`` is theirs.
DATA_YAML_HEADER = (
    "# Written by converters (python -m converters.mvtec2yolo); class ids follow sorted names.\n"
)


def data_yaml(
    *, root: str | Path, names: Sequence[str], splits: Sequence[str] = ("train", "val", "test")
) -> str:
    """``data.yaml`` text that stock ``yolo train data=...`` reads.

    Args:
        root: the data set folder (``path`` key), written as records write a path
            (:func:`common.io.recorded_path`: absolute, without ``..``, a linked folder keeping its name;
            ultralytics resolves it itself).
        names: class names by id; YOLO-World uses them as text prompts.
    """
    data = {"path": recorded_path(root)}
    data.update({split: f"images/{split}" for split in splits})
    data["names"] = dict(enumerate(names))
    return DATA_YAML_HEADER + yaml_text(data)


def check_data_root(data_yaml: Path, root: Path, *, written: str | None = None) -> None:
    """Refuses a ``data.yaml`` whose ``path:`` is another folder than its own.

    The converters write ``path:`` absolute, so a data set that was moved or copied still
    points at the old folder, and ultralytics would check (and train on) that one instead.

    Args:
        root: the folder ``path:`` names, as ultralytics resolves it.
        written: ``path:`` as the file spells it, when that is relative: the message names both
            (``path: e2`` edited by hand was reported as ``path: /work/datasets/e2``).

    Raises:
        UserError: ``root`` is not the folder holding ``data_yaml``.
    """
    if root.resolve() != data_yaml.parent.resolve():
        shown = str(root)
        if written is not None and not expand_user(written).is_absolute():
            shown = (
                f"{written} (relative, so ultralytics reads it as {root}: from the working folder where it "
                "exists there, else from its datasets_dir)"
            )
        raise UserError(
            f"{data_yaml} has path: {shown}, not its own folder {data_yaml.parent.resolve()} (moved or "
            "copied?): ultralytics would read that data set instead; set path: to this folder"
        )


#: ultralytics drops an image with a side under this many pixels and trains on the rest (its
#: ``check_image``: "image size (9, 9) <10 pixels"), saying so only among its log lines.
MIN_IMAGE_SIDE = 10

#: What to do with a YOLO data set's image ultralytics finds too small: scaled, its label rows still fit
#: (they are fractions of the image's size); padded, they would not.
SMALL_IMAGE_STEP = f"scale it up to {MIN_IMAGE_SIDE} pixels a side or more, or remove it and its label file"


def check_image_side(image: Path, *, width: int, height: int, good: bool = False) -> None:
    """Refuses a photo of the YOLO set written, ``width`` x ``height`` pixels, with a side under
    :data:`MIN_IMAGE_SIDE`, naming it: ``yolo train`` would drop it, and train on the rest. ``good``: a
    good photo the split holds as a background (no labels, no mask).

    Raises:
        UserError: the photo is too small for ultralytics.
    """
    if min(width, height) < MIN_IMAGE_SIDE:
        kind, step = ("good photo", "scale it up") if good else ("defect photo", "scale it and its mask up")
        raise UserError(
            f"{image} is {width}x{height} pixels: ultralytics drops an image with a side under "
            f"{MIN_IMAGE_SIDE} pixels ('<10 pixels'), so yolo train would leave out this {kind} of the YOLO "
            f"set; {step} or move it out of the source tree"
        )
