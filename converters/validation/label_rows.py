"""YOLO label rows ultralytics keeps as instances no model can learn: boxes of no size and YOLO-seg
polygons of no area, named by file and row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from common.errors import few
from converters.validation.split_check import in_data_set


def rows_of_no_size(labels: list[dict], data: dict, task: str) -> str | None:
    """A problem naming the label rows of ``labels`` (ultralytics') whose box has no width or height; None
    if none has.

    ultralytics keeps such a row (``0 0.5 0.5 0 0``, or a one-point polygon ``0 0.5 0.5`` among a YOLO-seg
    file's polygons) as an instance no prediction can overlap: a split holding one passed as ``ok``, where
    a COCO box of no size fails the self-evaluation.
    """
    return label_rows_problem(
        labels,
        data,
        "of no size (width or height 0)",
        flagged=lambda label: bool(len(label["bboxes"])) and not label["bboxes"][:, 2:4].all(),
        rows=lambda label, label_file: zero_size_rows(label_file, pose=task == "pose"),
    )


def label_rows_problem(
    labels: list[dict],
    data: dict,
    what: str,
    *,
    flagged: Callable[[dict], bool],
    rows: Callable[[dict, Path], list[int]],
) -> str | None:
    """A problem naming the label rows of ``labels`` (ultralytics') that are ``what`` (``of no size ...``):
    those ``rows`` finds (line numbers, from 1) in the label file of each label ``flagged``, or the file
    alone where it finds none (changed since the scan); None if no label is flagged."""
    from ultralytics.data.utils import img2label_paths

    named = []
    for label in labels:
        if flagged(label):
            label_file = Path(img2label_paths([label["im_file"]])[0])
            found = rows(label, label_file)
            where = in_data_set(label_file, data)
            named += [f"{where} row {row}" for row in found] or [where]  # or: changed since the scan
    if not named:
        return None
    counted = "1 label row" if len(named) == 1 else f"{len(named)} label rows"
    return f"{counted} {what}: {few(named)}"


def zero_size_rows(label_file: Path, *, pose: bool = False) -> list[int]:
    """The line numbers (from 1) of ``label_file``'s rows whose box, as ultralytics reads it, has no width or
    height: ``w`` or ``h`` 0 in a ``class cx cy w h`` row, all points on one line in a polygon row (a file
    with a row of over 6 values is one of polygons, unless ``pose``)."""
    try:
        lines = label_file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    rows = {number: line.split() for number, line in enumerate(lines, 1) if line.strip()}
    polygons = not pose and any(len(row) > 6 for row in rows.values())
    zero = []
    for number, row in rows.items():
        try:
            values = [float(value) for value in row[1:]]
        except ValueError:
            continue
        if polygons:
            xs, ys = values[0::2], values[1::2]
            size = (max(xs, default=0) - min(xs, default=0), max(ys, default=0) - min(ys, default=0))
        else:
            size = tuple(values[2:4])
        if len(size) == 2 and not all(size):
            zero.append(number)
    return zero


#: How near one line (in pixels) a YOLO-seg polygon's points lie for it to have no area (:func:`on_one_line`).
FLAT_PX = 0.01


def on_one_line(points: np.ndarray) -> bool:
    """Whether ``points`` ``(K, 2)`` (pixels) lie on one line, within :data:`FLAT_PX`, and span a box of
    some size (one of no size is :func:`rows_of_no_size`'s): a polygon of no area, as
    ``0 0.1 0.1 0.5 0.5 0.1 0.1``."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(points) < 2 or not np.ptp(points, axis=0).all():
        return False
    centred = points - points.mean(axis=0)
    normal = np.linalg.svd(centred, full_matrices=False)[2][-1]  # across the best-fitting line
    return bool(np.abs(centred @ normal).max() < FLAT_PX)


def rows_of_no_area(labels: list[dict], data: dict, task: str) -> str | None:
    """A problem naming the YOLO-seg rows of ``labels`` (ultralytics', of a ``segment`` split) whose polygon
    has no area, its points on one line (:func:`on_one_line`), though its box has a size; None if none has.

    ultralytics keeps such a row (two distinct points, ``0 0.1 0.1 0.5 0.5 0.1 0.1``) as an instance whose
    box trains and whose mask, drawn by ``fillPoly``, is a line of pixels at most: it passed as ``ok``, as
    a row of no size did. The converters' polygons trace pixel outlines (1 px² at least), so a hand edit
    or another tool wrote it.
    """
    if task != "segment":
        return None
    return label_rows_problem(
        labels,
        data,
        "of no area (a polygon's points on one line)",
        flagged=_has_flat_polygon,
        rows=lambda label, label_file: flat_polygon_rows(
            label_file, width=label["shape"][1], height=label["shape"][0]
        ),
    )


def _has_flat_polygon(label: dict) -> bool:
    """Whether a polygon of ``label`` (ultralytics') has its points on one line (:func:`on_one_line`)."""
    height, width = label["shape"]
    return any(on_one_line(segment * [width, height]) for segment in label["segments"])


def flat_polygon_rows(label_file: Path, *, width: int, height: int) -> list[int]:
    """The line numbers (from 1) of ``label_file``'s polygon rows (a file with a row of over 6 values) whose
    points, in an image of ``width`` x ``height`` pixels, lie on one line (:func:`on_one_line`)."""
    try:
        lines = label_file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    rows = {number: line.split() for number, line in enumerate(lines, 1) if line.strip()}
    if not any(len(row) > 6 for row in rows.values()):
        return []
    flat = []
    for number, row in rows.items():
        try:
            values = np.array(row[1:], dtype=float)
        except ValueError:
            continue
        if len(values) % 2 == 0 and on_one_line(values.reshape(-1, 2) * [width, height]):
            flat.append(number)
    return flat
