"""Checks a converted data set with the tools that will consume it.

YOLO: ultralytics' own ``check_det_dataset`` and label parser (the code
``yolo train`` runs), and no label row is a box of no size or a YOLO-seg polygon of no area. COCO:
``pycocotools.coco.COCO`` loads each split, every image file it lists decodes, every annotation's
rendered mask has its stated ``area``, and COCOeval of the ground truth against itself gives AP 1.0.

One rule for a split without images, in both formats: an empty ``train`` or ``val`` is a
problem (``yolo train`` stops without them, and a COCO trainer has nothing to learn from or
validate on); an empty ``test`` passes with a note (``--split 0.8 0.2 0``: nothing to score on,
which may be the user's choice), unless ``splits.json`` lists test images.

``python -m converters.validate datasets/metal_nut_yolo``
"""

from __future__ import annotations

import collections
import contextlib
import glob
import hashlib
import logging
import os
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.cli import OneLineParser, command_name, exit_code, user_path
from common.coco import (
    FIX_COCO,
    check_box,
    check_category,
    check_ids,
    check_image_size,
    is_finite_number,
    read_coco_index,
)
from common.config import read_yaml
from common.data_sets import DATA_YAML, data_set_folder
from common.errors import UserError, few, one_line
from common.exif import is_rotated
from common.extras import require
from common.fonts import ensure_ultralytics_fonts
from common.image_files import decode_image_file
from common.images import check_opencv_decodes, image_size
from common.io import expand_user, link_loop_text, read_json
from common.label_cache import no_label_cache
from converters.coco import written_here
from converters.records import output_stem
from converters.splits import SPLITS, SPLITS_FILE, Splits, is_split_record, load_splits
from converters.yolo import DATA_YAML_HEADER, check_data_root

#: The splits training needs images in; an empty one of the others (``test``) is a note, not a problem.
TRAINING_SPLITS = ("train", "val")


@dataclass
class SplitCheck:
    """Counts one format reports for one split."""

    images: int = 0
    instances: int = 0
    backgrounds: int = 0
    problems: list[str] = field(default_factory=list)
    #: What passes but deserves a word (a split of backgrounds only), shown beside ``ok``.
    notes: list[str] = field(default_factory=list)
    #: The file stems of the split's images (``category_subset_defect_stem``), to compare with splits.json.
    stems: set[str] = field(default_factory=set)
    #: What an empty split is called: ``no images``, or that ``data.yaml`` names no such split.
    empty: str = "no images"
    #: YOLO: the task the split was checked for, ``detect`` or ``segment``.
    task: str = ""
    #: COCO: an image's ``file_name`` for each annotation repeating the class and box of another of that image
    #: (:func:`repeated_boxes`): a YOLO detect file holds them as one row (:func:`note_one_row_for_repeats`).
    box_repeats: list[str] = field(default_factory=list)


def validate_yolo(
    data_yaml: str | Path, *, task: str | None = None, progress: bool = False
) -> dict[str, SplitCheck]:
    """Loads ``data.yaml`` and every split's labels through ultralytics.

    Args:
        task: ``detect`` or ``segment``, what the set is trained for; when None, ``segment`` where a label
            file is one of polygons (:func:`_guess_task`).
        progress: a bar on stderr while a split's images and label files are scanned
            (:func:`_yolo_dataset_with_bar`).

    Raises:
        UserError: ultralytics rejects the yaml, a label file is corrupt, or ultralytics
            is not installed (the core install converts without it).
    """
    require("train", what="checking YOLO labels with ultralytics")
    from ultralytics.data.utils import check_det_dataset

    ensure_ultralytics_fonts()
    data_yaml = Path(data_yaml)
    # ultralytics reads a key given twice as the last one, silently
    written = read_yaml(data_yaml, what="data file").get("path")
    written = None if written is None else str(written)
    try:
        with _quiet_ultralytics():  # its blank line before 'images not found'
            data = check_det_dataset(str(data_yaml), autodownload=False)
    except Exception as error:  # ultralytics raises bare SyntaxError/FileNotFoundError/...
        raise UserError(f"ultralytics rejects {data_yaml}: {_rejected(error, written)}") from None
    check_data_root(data_yaml, Path(data["path"]).absolute(), written=written)
    converted = _has_split_record(data_yaml.parent) or _written_here(data_yaml)
    polygon = None  # the set's first label file of polygons, named where a split of box files has none
    if task is None:
        task, polygon = _guess_task(data)
    resaved: list[Path] = []
    with _images_left_as_they_are(resaved):
        checks = {
            split: _yolo_split_check(
                split, data, task, converted=converted, progress=progress, polygon=polygon
            )
            for split in SPLITS
        }
    files = {split: split_image_files(data.get(split)) for split in SPLITS}
    check_shared_images(checks, files, lambda path: in_data_set(path, data))
    for split in SPLITS:
        checks[split].task = task
        notes = (unread_images_note(data.get(split), data), resaved_note(resaved, files[split], data))
        checks[split].notes += [note for note in notes if note]
        # of a split of no images at all, its one problem says it (no images, splits.json lists 3)
        if files[split] and (orphans := label_files_without_image(data.get(split), files[split])):
            told = checks[split].problems if converted else checks[split].notes
            told.append(orphans_line([in_data_set(path, data) for path in orphans]))
    return checks


def label_files_without_image(entry: str | list[str] | None, images: list[Path]) -> list[Path]:
    """The label files (``*.txt``) in the label folders of a split's image folders (its ``data.yaml``
    ``entry``: ``images/val`` -> ``labels/val``) that belong to none of its ``images``
    (:func:`split_image_files`) nor to an image of a type ultralytics does not read (named apart:
    :func:`unread_images_note`), sorted.

    ultralytics reads a split's images and their label files: one whose image was deleted is never read,
    and the check named no file (a converted set's split counted one image fewer than splits.json's;
    another tool's said nothing). A folder whose label folder is itself (no ``images`` in its path) is not
    searched: its ``.txt`` files are no label files.
    """
    from ultralytics.data.utils import img2label_paths

    parts = [Path(part) for part in (entry if isinstance(entry, list) else [entry] if entry else [])]
    folders = {
        Path(img2label_paths([str(part / "x.png")])[0]).parent: part for part in parts if part.is_dir()
    }
    folders = [folder for folder, part in folders.items() if folder != part and folder.is_dir()]
    if not folders:
        return []
    read = [*images, *_split_files(entry, OTHER_IMAGE_SUFFIXES)]
    known = {os.path.abspath(path) for path in img2label_paths([str(path) for path in read])}
    found = sorted({path for folder in folders for path in folder.rglob("*.txt") if path.is_file()})
    return [path for path in found if os.path.abspath(path) not in known]


def orphans_line(orphans: list[str]) -> str:
    """What the status column says of label files without an image (:func:`label_files_without_image`),
    ``orphans`` as the data set holds them."""
    files, it = (
        ("1 label file has", "it") if len(orphans) == 1 else (f"{len(orphans)} label files have", "them")
    )
    return f"{files} no image ({few(orphans)}): ultralytics reads a split's images, not {it}"


@contextlib.contextmanager
def _images_left_as_they_are(resaved: list[Path]):
    """Keeps ultralytics' scan from re-saving a JPEG that does not end in its end marker (its ``check_image``:
    "corrupt JPEG restored and saved", re-encoded in place), adding the image's path to ``resaved`` instead
    (:func:`resaved_note`).

    A check wrote into the data set it checked: the image was re-encoded, a link to a photo replaced by a
    copy, and the split called ``ok``. An ultralytics without that helper is left as it is.
    """
    from ultralytics.data import utils

    replace = getattr(utils, "_replace_image", None)
    if replace is not None:
        utils._replace_image = lambda image, write: resaved.append(Path(image))
    try:
        yield
    finally:
        if replace is not None:
            utils._replace_image = replace


def resaved_note(resaved: list[Path], files: list[Path], data: dict) -> str | None:
    """A note naming the images of a split (``files``: :func:`split_image_files`) that ultralytics would
    re-save, ``resaved`` (:func:`_images_left_as_they_are`), as the data set (``data``) holds them; None if
    none is."""
    mine = {os.path.abspath(path) for path in files}
    named = [in_data_set(path, data) for path in dict.fromkeys(resaved) if os.path.abspath(path) in mine]
    if not named:
        return None
    if len(named) == 1:
        images, its, them, are = "1 JPEG image does", "its", "it", "it is"
    else:
        images, its, them, are = f"{len(named)} JPEG images do", "their", "them", "they are"
    return (
        f"{images} not end in {its} end marker ({few(named)}): ultralytics re-saves {them} in place when it "
        f"reads {them} (re-encoded; a link to a photo becomes a copy); the check left {them} as {are}"
    )


def _rejected(error: Exception, written: str | None) -> str:
    """Why ultralytics rejects a ``data.yaml`` whose ``path:`` is ``written`` (None: not given), in one line:
    its ``error``, where that folder is relative how ultralytics reads it (:func:`_relative_root`), where it
    is absolute without ultralytics' note on the folder it downloads data sets to (no data set is downloaded
    here, and an absolute ``path:`` is read from no such folder)."""
    said = one_line(error)
    if written is not None and expand_user(written).is_absolute():
        said = said.partition(" Note dataset download directory is ")[0]
    return said + _relative_root(error, written)


def _relative_root(error: Exception, written: str | None) -> str:
    """Why ultralytics found no images (``error``) where ``data.yaml``'s ``path:`` (``written``) is relative:
    it reads one from the working folder (``path: .`` of a CVAT export checked from elsewhere), and its
    message named a folder there or in its datasets_dir alone; "" otherwise."""
    if written is None or expand_user(written).is_absolute() or "images not found" not in str(error):
        return ""
    return (
        f" (its path: {written} is relative: ultralytics reads it from the working folder where it exists "
        "there, else from its datasets_dir; set path: to the data set's folder)"
    )


def _yolo_split_check(
    split: str, data: dict, task: str, *, converted: bool, progress: bool, polygon: Path | None = None
) -> SplitCheck:
    """One split of ``data`` (``check_det_dataset``'s) read through ultralytics' ``YOLODataset``.

    Args:
        converted: a data set the converters wrote (a missing or turned label file is a problem, not a note).
        polygon: the label file of polygons that made the set YOLO-seg (:func:`_guess_task`), if known: named
            where a box file makes the split one ultralytics refuses and it holds no polygon file of its own.
    """
    images = split_image_files(data.get(split))
    if unread := _unread_split(split, data, images):
        return unread
    broken = broken_links(images, data, converted=converted)
    try:
        with _quiet_ultralytics(), no_label_cache():
            dataset = _yolo_dataset_with_bar(f"yolo {split}", progress=progress)(
                img_path=data[split], data=data, task=task, augment=False, imgsz=64
            )
    except RuntimeError as error:  # it reads no image of the split: a traceback said so
        if not str(error).startswith("No valid images found"):
            raise
        problem = broken or dropped_images(images, set(), dropped_reason(data, task)) or one_line(error)
        return SplitCheck(problems=[problem])
    except ValueError as error:  # ultralytics refuses a YOLO-seg split of box rows too: a traceback said so
        if "numbers of boxes and segments" not in str(error):
            raise
        return SplitCheck(problems=[box_files_problem(images, data, polygon) or one_line(error)])
    labels = dataset.labels
    check = SplitCheck(
        images=len(labels),
        instances=sum(len(label["cls"]) for label in labels),
        backgrounds=sum(len(label["cls"]) == 0 for label in labels),
        stems={Path(label["im_file"]).stem for label in labels},
    )
    kept = {os.path.abspath(label["im_file"]) for label in labels}
    problem = dropped_images(images, kept, dropped_reason(data, task))
    rows = (rows_of_no_size(labels, data, task), rows_of_no_area(labels, data, task))
    check.problems += [p for p in (broken, problem, *rows) if p]
    # the converters write a label file for every image, an empty one for a background: ultralytics
    # reads a missing one as a background too, so a deleted file turns its defects into "good"; in a
    # data set of another tool's (a Roboflow export) it is how backgrounds may be given: a note
    if missing := [Path(f) for f in dataset.label_files if not Path(f).is_file()]:
        shown = few([in_data_set(path, data) for path in missing])
        files = "label file" if len(missing) == 1 else "label files"
        told = check.problems if converted else check.notes
        told.append(f"{len(missing)} {files} missing ({shown}): read as backgrounds")
    if turned := turned_labelled(labels, desc=f"yolo {split} EXIF", progress=progress):
        told = check.problems if converted else check.notes
        told.append(turned_line([in_data_set(path, data) for path in turned], converted=converted))
    if repeated := repeated_rows_note(getattr(dataset, "scan_messages", []), labels, data):
        check.notes.append(repeated)
    note_backgrounds_only(check, split)
    return check


def _unread_split(split: str, data: dict, images: list[Path]) -> SplitCheck | None:
    """The check of a YOLO split (``images``: :func:`split_image_files`) that ultralytics reads no image of:
    none there, its ``data.yaml`` entry missing or naming a path that does not exist (alone: the split is
    empty, :func:`check_not_empty`; beside others: ultralytics stops on it); None for a split to load.

    A data.yaml without the key read 'yolo has 0 images, splits.json lists 3'; a folder mistyped read 'no
    images', and beside another in a list stopped the check with ultralytics' FileNotFoundError.
    """
    entry = data.get(split)
    parts = [Path(part) for part in (entry if isinstance(entry, list) else [entry] if entry else [])]
    gone = [in_data_set(part, data) for part in parts if not part.exists()]
    if images and gone:
        return SplitCheck(
            problems=[
                f"data.yaml's {split}: names what does not exist ({few(gone)}): ultralytics stops on it, "
                "reading none of the split"
            ]
        )
    if images:
        return None
    check = SplitCheck(empty=f"{gone[0]} does not exist" if gone else "no images")
    if not parts:
        check.empty = f"data.yaml names no {split} split"
    check_not_empty(check, split)
    return check


def repeated_rows_note(messages: list[str], labels: list[dict], data: dict) -> str | None:
    """A note naming the label files of ``labels`` (ultralytics') that ultralytics' scan (``messages``) read
    a row of twice and kept once ("duplicate labels removed"); None if none.

    The scan said so among its log lines, which the check hides (:func:`_quiet_ultralytics`): a YOLO set
    whose instance count fell short of COCO's said nothing of why. The converters write no such row
    (:func:`converters.yolo.label_rows`); a hand edit or another tool's export may.
    """
    from ultralytics.data.utils import img2label_paths

    repeats = [message for message in messages if message.endswith(" duplicate labels removed")]
    if not repeats:
        return None
    named, count = [], 0
    for label in labels:
        found = [message for message in repeats if f"{label['im_file']}: " in message]
        if found:
            count += int(found[0].rsplit(": ", 1)[1].split()[0])
            named.append(in_data_set(Path(img2label_paths([label["im_file"]])[0]), data))
    if not named:
        return None
    rows = "1 repeated row is" if count == 1 else f"{count} repeated rows are"
    return (
        f"ultralytics keeps one of identical label rows ('duplicate labels removed'), so {rows} not counted "
        f"as instances: {few(named)}"
    )


def _yolo_dataset_with_bar(desc: str, *, progress: bool) -> type:
    """ultralytics' ``YOLODataset`` whose scan of a split (every image and label file checked: the long part
    of a YOLO row) ticks a bar on stderr, ``desc``, with ``progress``, as the COCO images' decoding does.

    ultralytics' own bar is hidden with its log lines (:func:`_quiet_ultralytics`), so a large split was
    scanned without a word. The scan's messages, those lines, stay on the dataset as ``scan_messages``
    (:func:`repeated_rows_note`). The bar counts the scan's results as its loop reads them (its
    ``result_to_label``); a valid ``labels/<split>.cache`` read instead scans nothing, and shows none.
    """
    from ultralytics.data import YOLODataset

    class Scanned(YOLODataset):
        def cache_labels(self, path: Path = Path("./labels.cache")) -> dict:
            bar = tqdm(total=len(self.im_files), desc=desc, unit="img", disable=not progress, file=sys.stderr)
            with bar:
                self._scan_bar = bar
                return super().cache_labels(path)

        def result_to_label(self, result):
            self._scan_bar.update()
            return super().result_to_label(result)

        def _load_or_scan_cache(self, cache_path: Path, cache_hash: str) -> tuple[dict, bool]:
            cache, exists = super()._load_or_scan_cache(cache_path, cache_hash)
            self.scan_messages = list(cache.get("msgs", []))  # get_labels drops them once logged
            return cache, exists

    return Scanned


def turned_labelled(labels: list[dict], *, desc: str = "EXIF", progress: bool = False) -> list[Path]:
    """The images of ultralytics' ``labels`` that have instances and an EXIF orientation tag
    (:func:`common.exif.is_rotated`): ultralytics reads them turned, as OpenCV does. Every labelled one
    is opened for it, behind a bar on stderr (``desc``) with ``progress``, as the split's scan is."""
    labelled = [label["im_file"] for label in labels if len(label["cls"])]
    bar = tqdm(labelled, desc=desc, unit="img", disable=not progress, file=sys.stderr)
    return [Path(image) for image in bar if is_rotated(image)]


def turned_line(
    turned: list[str], *, converted: bool, reader: str = "ultralytics", refused_by: str | None = None
) -> str:
    """What the status column says of labelled images (``turned``: their paths in the data set) that an EXIF
    tag turns (:func:`turned_labelled`); ``reader`` reads them turned (``ultralytics``, OpenCV).

    The converters refuse such a photo (:func:`common.exif.check_upright`): its labels come from a mask
    drawn on the stored pixels. One that gained the tag since (the original a symlinked image points to,
    re-saved by a phone app) was called ok, and was trained on with misplaced labels. Another tool's
    labels may have been drawn on the turned image, as ``reader`` reads it, so converting again is no
    remedy there: the line says the labels must be drawn on the turned image, or, where ``refused_by`` (the
    commands reading the format) refuse such an image whichever way its labels were drawn, that it must be
    saved upright with its labels.
    """
    shown = few(turned)
    images = "1 labelled image has" if len(turned) == 1 else f"{len(turned)} labelled images have"
    them = "it" if len(turned) == 1 else "them"
    tagged = f"{images} an EXIF orientation tag ({shown}): {reader} reads {them} turned"
    if converted:
        return (
            f"{tagged}, the labels, made from masks as stored, not; save the photos upright and convert again"
        )
    if refused_by:
        return (
            f"{tagged}, and {refused_by} refuse {them} whichever way the labels were drawn; save the photos "
            "upright, with their labels drawn on the upright images"
        )
    return f"{tagged}, as must the labels be"


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


def dropped_images(files: list[Path], kept: set[str], reason: Callable[[Path], str]) -> str | None:
    """What ultralytics left out of a split, naming the first files and why; None when it kept all.

    ultralytics skips an unreadable image or a corrupt label with a warning and trains on the rest;
    here it is a failed check.

    Args:
        files: the split's images (:func:`split_image_files`).
        kept: the absolute paths of those ultralytics kept.
        reason: why ultralytics drops an image of ``files`` (:func:`dropped_reason`).
    """
    files = [path for path in files if path.exists() or not path.is_symlink()]  # a broken link: broken_links
    dropped = [path for path in files if os.path.abspath(path) not in kept]
    if not dropped:
        return None
    named = [f"{path.name} ({reason(path)})" for path in dropped[:3]]  # only these are checked again: few()
    return f"ultralytics dropped {len(dropped)} of {len(files)} images: {few(named + dropped[3:])}"


def dropped_reason(data: dict, task: str) -> Callable[[Path], str]:
    """Why ultralytics drops an image: its own check of an image and its label file, message and all.

    Its scan said so only among its log lines ("ignoring corrupt image/label: Label class 3 exceeds
    dataset class count 2 ..."); the check said "corrupt label" of a label file it never looked at.
    The label file is named where the label is at fault; an image OpenCV cannot decode is only called
    unreadable.

    Args:
        data: ultralytics' ``check_det_dataset`` dict of the data set (``names``, ``kpt_shape``).
        task: ``detect``, ``segment`` or ``pose``, as the split was loaded.
    """
    from ultralytics.data.utils import img2label_paths, verify_image_label

    nkpt, ndim = data.get("kpt_shape") or (0, 0)

    def reason(image: Path) -> str:
        # read as every command reads a photo: OpenCV's file-based imread (5.1) fails on a TIFF that an EXIF
        # tag turns a quarter, so such an image dropped for its label was called unreadable; and ultralytics'
        # check would then try to install a HEIF plugin for PIL: its words name that plugin, not the image
        try:
            decode_image_file(image, cv2.IMREAD_COLOR)
        except UserError:
            return "unreadable image"
        label = Path(img2label_paths([str(image)])[0])
        for checked in ("", label):  # the image alone first (no label file): which of the two is at fault
            args = (str(image), str(checked), "", task == "pose", len(data["names"]), nkpt, ndim, False)
            message = verify_image_label(args)[-1]
            if "ignoring corrupt image/label: " in message:
                why = one_line(message.partition("ignoring corrupt image/label: ")[2])
                where = f"label {in_data_set(label, data)}" if checked else "image"
                return f"{where}: {why.replace(str(image), image.name)}"
        return "no reason given"  # kept on a second look: changed since the scan

    return reason


def in_data_set(path: Path, data: dict) -> str:
    """``path`` as the data set's folder (ultralytics' ``data["path"]``) holds it: ``labels/val/x.txt`` of a
    converted one, ``valid/labels/x.txt`` of a Roboflow export (it was named ``labels/valid/x.txt``)."""
    root = Path(data["path"])
    for base in (root, root.resolve()):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return str(path)


def broken_links(paths: list[Path], data: dict, *, converted: bool = True) -> str | None:
    """A problem naming the images of ``paths`` that are links to a photo no longer there; None if none is.

    ``--link symlink`` (the default) links each image to its photo: once the photo tree was moved or
    deleted, ultralytics dropped the images unsaid, or stopped with a traceback where it read none.

    Args:
        data: ultralytics' ``check_det_dataset`` dict: the image is named in the data set
            (:func:`in_data_set`; ``valid/images/x.jpg`` of a Roboflow export was ``images/images/x.jpg``).
        converted: a data set the converters wrote; another tool's is not told to convert again.
    """
    broken = [path for path in paths if path.is_symlink() and not path.exists()]
    if not broken:
        return None
    first = broken[0]
    links = "1 image is a broken link" if len(broken) == 1 else f"{len(broken)} images are broken links"
    why = "the photos moved or were deleted since the conversion; convert again (--link copy keeps copies)"
    shown = f"{in_data_set(first, data)} -> {os.readlink(first)}"
    return f"{links} (e.g. {shown}): " + (
        why if converted else "the files they point to were moved or deleted"
    )


def check_shared_images(
    checks: dict[str, SplitCheck], files: dict[str, list[Path]], name: Callable[[Path], str]
) -> None:
    """Fails val or test where it holds an image file of train (its path resolved: a ``train.txt`` naming
    an image of the val folder, two ``data.yaml`` entries of one folder), naming both splits and the first
    few files (``name``: as the data set holds one); notes a test holding val's files (``test:`` naming the
    val folder, as some exports do on purpose: test then scores the images val picked ``best.pt`` on, no
    training image) and byte-identical copies across two splits (:func:`copied_images`).

    A model was scored on images it trained on: nothing said so; a set whose test was its val failed. The
    converters write each split to its own folder, each source photo to one split
    (:func:`converters.splits.load_splits` refuses a key listed twice).

    Args:
        checks: one format's checks by split, added to.
        files: the image files of each split (:func:`split_image_files`, or a COCO split's ``file_name``s
            under ``images/``).
    """
    owner: dict[str, tuple[str, Path]] = {}  # a file's resolved path: the first split holding it, as named
    shared: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for split in SPLITS:
        held = {os.path.realpath(path): path for path in files.get(split, []) if path.is_file()}
        for real, path in held.items():
            first, named = owner.setdefault(real, (split, path))
            if first != split:  # under another name there (a link to the photo): both named
                shown = name(path) if name(path) == name(named) else f"{name(path)} = {name(named)}"
                shared[(first, split)].append(shown)
    for (first, later), names in shared.items():
        images = "1 image is" if len(names) == 1 else f"{len(names)} images are"
        said = f"{images} in both {first} and {later} ({few(names)}): one file in two splits, so {later} "
        if first == "train":
            checks[later].problems.append(f"{said}scores a model on images it trained on")
        else:  # test: pointing at the val folder, as some exports do on purpose: no training image leaks
            checks[later].notes.append(f"{said}then scores the images {first} picked best.pt on")
    for (first, later), pairs in copied_images(files).items():
        images = f"1 {later} image is" if len(pairs) == 1 else f"{len(pairs)} {later} images are"
        shown = few([f"{name(copy)} = {name(original)}" for copy, original in pairs])
        checks[later].notes.append(
            f"{images} byte-identical to {first} images ({shown}): if one photo saved twice, {later} scores "
            f"a model on images {_seen_in(first)}"
        )


def _seen_in(split: str) -> str:
    """How a model saw the images of ``split``: trained on them, or chosen by them (val picks best.pt)."""
    return "it trained on" if split == "train" else f"that chose it ({split} picks best.pt)"


def copied_images(files: dict[str, list[Path]]) -> dict[tuple[str, str], list[tuple[Path, Path]]]:
    """``{(first, later): [(copy, original)]}``: the image files of split ``later`` whose bytes are those
    of another file of an earlier split ``first`` (``files``: each split's); one file under two names (its
    path resolved) is not its own copy (:func:`check_shared_images` fails it).

    Only files of one size in two splits are read, a file listed in two counting in its first (``test:``
    pointing at val's folder read every val image): the check decodes every image anyway (ultralytics'
    scan, :func:`unreadable_images`), so reading those again costs little.
    """
    sizes: dict[int, set[str]] = collections.defaultdict(set)
    paths: dict[str, list[tuple[str, Path]]] = collections.defaultdict(list)
    for split in SPLITS:
        for path in files.get(split, []):
            if path.is_file():
                real = os.path.realpath(path)
                if real not in paths:  # one file in two splits (test: val's folder) is no copy of itself
                    sizes[path.stat().st_size].add(split)
                paths[real].append((split, path))
    digests: dict[str, tuple[str, Path]] = {}
    copied: dict[tuple[str, str], list[tuple[Path, Path]]] = collections.defaultdict(list)
    for resolved, [(split, path), *_] in paths.items():
        if len(sizes[path.stat().st_size]) < 2:
            continue
        try:
            digest = hashlib.sha256(Path(resolved).read_bytes()).hexdigest()
        except OSError:  # unreadable: named as such by the decode
            continue
        first, original = digests.setdefault(digest, (split, path))
        if first != split:
            copied[(first, split)].append((path, original))
    return copied


def check_not_empty(check: SplitCheck, split: str) -> None:
    """A split without images: a problem for ``train`` and ``val`` (:data:`TRAINING_SPLITS`), a note
    for ``test``. YOLO and COCO alike: an empty COCO val passed as ``ok`` where YOLO's failed."""
    if check.images:
        return
    if split in TRAINING_SPLITS:
        check.problems.append(check.empty)
    else:
        check.notes.append(f"{check.empty}: nothing to score on in {split}")


def note_backgrounds_only(check: SplitCheck, split: str) -> None:
    """Adds a note to ``check`` when its images hold no defect instance (backgrounds only).

    Such a split loads (MVTec AD's own ``train/`` with ``--split-from-layout``: good images only);
    ultralytics said so in a raw warning naming a ``labels/<split>.cache`` that is never written here.
    """
    if check.images and not check.instances:
        learns = ": a model trained on it learns no defect" if split == "train" else ""
        check.notes.append(f"no defect instance (backgrounds only){learns}")


def _without_empty_labels_warning(record: logging.LogRecord) -> bool:
    # said by note_backgrounds_only instead, naming no .cache file; and where no label file of the split is
    # there ('No labels found in <split>/labels.cache'), by the missing label files' note or problem too;
    # its HEIF plugin asked for where PIL identifies no image (an empty file): the image is named unreadable
    message = record.getMessage()
    hidden = ("Labels are missing or empty", "No labels found in ", "['pi-heif'] not found")
    return not any(text in message for text in hidden)


@contextlib.contextmanager
def _quiet_ultralytics():
    """Silences ultralytics' per-split scanning lines, its warnings of a split without labels (a note
    of :func:`note_backgrounds_only` says it, and one of the missing label files) and its request for a HEIF
    plugin where an image does not read (named as unreadable); its other warnings still show."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    LOGGER.addFilter(_without_empty_labels_warning)
    try:
        yield
    finally:
        LOGGER.removeFilter(_without_empty_labels_warning)
        LOGGER.setLevel(level)


def _has_split_record(folder: Path) -> bool:
    """Whether ``folder`` holds the converters' own ``splits.json`` (:func:`converters.splits.load_splits`
    reads it): another tool's file of that name, or one that does not read, does not make the data set
    the converters'."""
    try:
        load_splits(folder / "splits.json")
    except UserError:
        return False
    return True


def _written_here(data_yaml: Path) -> bool:
    """Whether the converters wrote ``data_yaml`` (their header line first)."""
    with open(data_yaml, encoding="utf-8", errors="replace") as file:
        return file.read(len(DATA_YAML_HEADER)) == DATA_YAML_HEADER


def _guess_task(data: dict) -> tuple[str, Path | None]:
    """``("segment", file)`` where a label ``file`` of the splits of ``data`` (``check_det_dataset``'s)
    is one of polygons as ultralytics reads it (:func:`_is_polygon_file`), the first such; else
    ``("detect", None)``. Every file is read until one is: the first alone decided, so a YOLO-seg set whose
    first file held a box row was checked as a detect set, ``ok``, and ``yolo segment train`` refused it.
    The label files are where ultralytics looks (``train/labels/`` of a Roboflow export): ``labels/`` beside
    ``data.yaml`` alone made every such YOLO-seg export a detect set. The file is named where a box file
    makes a split one ultralytics refuses (:func:`box_files_problem`): a detect set with one file of polygons
    failed every split, naming none."""
    polygon = _first_polygon_file(data)
    return ("detect", None) if polygon is None else ("segment", polygon)


def _first_polygon_file(data: dict) -> Path | None:
    """The first label file of the splits of ``data`` that is one of polygons (:func:`_is_polygon_file`)."""
    from ultralytics.data.utils import img2label_paths

    for split in SPLITS:
        for path in map(Path, img2label_paths([str(image) for image in split_image_files(data.get(split))])):
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):  # ultralytics names it, as a corrupt label
                continue
            if _is_polygon_file(text, data):
                return path
    return None


def _is_polygon_file(text: str, data: dict) -> bool:
    """Whether ultralytics reads a label file's ``text`` as one of polygons, in a data set of ``data``
    (``check_det_dataset``'s), and keeps it in any task: a row of over 6 values, none of 5.

    Its ``verify_image_label`` takes a file with a row of over 6 values for polygons and drops one that
    mixes box rows in ("labels mix segment and detection rows"); a row of ``5 + nkpt * ndim`` values, where
    ``kpt_shape`` is set, is a box with keypoints. A first row of over 5 values decided here: a box with a
    score (6 values, which ultralytics drops: "labels require 5 columns") or a polygon before a box row made
    a detect set YOLO-seg, and its box files were failed "as" that file's polygons.
    """
    nkpt, ndim = data.get("kpt_shape") or (0, 0)
    lengths = [len(line.split()) for line in text.strip().splitlines() if line.strip()]
    lengths = [5 if nkpt and length == 5 + nkpt * ndim else length for length in lengths]
    return any(length > 6 for length in lengths) and 5 not in lengths


def split_image_files(entry: str | list[str] | None) -> list[Path]:
    """The image files of a split as ultralytics reads them (``YOLODataset``'s ``get_img_files``) from its
    ``data.yaml`` entry, resolved (``check_det_dataset``): a folder's, searched through, a list file's lines
    (``train: train.txt`` of a CVAT export), or those of a list of either; []: no entry, or none there.

    A folder alone was read (its own files): a list file read as ``no images``, a list a traceback.
    """
    from ultralytics.data.utils import IMG_FORMATS

    return _split_files(entry, IMG_FORMATS)


#: Suffixes of still images that ultralytics' ``IMG_FORMATS`` lacks (it lists ``gif`` among its video
#: formats): a split's image of one is left out of training without a word (:func:`unread_images_note`).
OTHER_IMAGE_SUFFIXES = frozenset("gif apng jfif jpe jxl pbm pgm ppm pnm pcx tga ico psd qoi exr".split())


def unread_images_note(entry: str | list[str] | None, data: dict) -> str | None:
    """A note counting the image files of a split (its ``data.yaml`` ``entry``, read as
    :func:`split_image_files` reads it) of a type ultralytics does not read (:data:`OTHER_IMAGE_SUFFIXES`),
    naming the first few as the data set holds them (``data``: ``check_det_dataset``'s); None if none is.

    ultralytics leaves such a file out of the split unsaid, as it does a README: a ``.gif`` photo among the
    ``.png`` ones was neither trained on nor named.
    """
    unread = _split_files(entry, OTHER_IMAGE_SUFFIXES)
    if not unread:
        return None
    files, them = ("1 image file", "it") if len(unread) == 1 else (f"{len(unread)} image files", "them")
    suffixes = ", ".join(sorted({f".{path.name.rpartition('.')[2].lower()}" for path in unread}))
    return (
        f"{files} of a type ultralytics does not read ({suffixes}) left out: "
        f"{few([in_data_set(path, data) for path in unread])}; save {them} as PNG or JPEG to train on {them}"
    )


def _split_files(entry: str | list[str] | None, suffixes: Collection[str]) -> list[Path]:
    """The files of a split's ``data.yaml`` ``entry`` (:func:`split_image_files`) whose suffix, lower case,
    is one of ``suffixes`` (without the dot), sorted."""
    found = []
    for part in map(Path, entry if isinstance(entry, list) else [entry] if entry else []):
        if part.is_dir():
            found += glob.glob(str(Path(glob.escape(part)) / "**" / "*.*"), recursive=True)
        elif part.is_file():
            lines = part.read_text(encoding="utf-8-sig", errors="replace").strip().splitlines()
            found += [
                line.replace("./", f"{part.parent}{os.sep}", 1) if line.startswith("./") else line
                for line in lines
            ]
    files = {Path(name) for name in found if name.rpartition(".")[2].lower() in suffixes}
    return sorted(path for path in files if not path.is_dir())


def box_files_problem(files: list[Path], data: dict, polygon: Path | None = None) -> str | None:
    """The problem of a YOLO-seg split (``files``, its images: :func:`split_image_files`) whose label files of
    box rows (``class cx cy w h``) make ultralytics refuse it for segment training ("requires equal numbers
    of boxes and segments"), naming them and a label file of polygons, which made it YOLO-seg: the split's
    first, else the set's (``polygon``, else looked for); None where none is found (changed since).

    It said "a split of both" of a split of box files alone (one polygon file elsewhere made the set
    YOLO-seg), and named no polygon file: a detect set with one reads it as boxes (``--task detect``). The
    set's first was named where the split held polygon files too: one of another split, not of the split
    refused.
    """
    from ultralytics.data.utils import img2label_paths

    boxes, own = [], None
    for label in map(Path, img2label_paths([str(path) for path in files])):
        try:
            text = label.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            continue
        if own is None and _is_polygon_file(text, data):
            own = label
        rows = [line.split() for line in text.splitlines() if line.strip()]
        if rows and all(len(row) == 5 for row in rows):
            boxes.append(in_data_set(label, data))
    if not boxes:
        return None
    files = "1 label file holds" if len(boxes) == 1 else f"{len(boxes)} label files hold"
    said = f"{files} boxes (class cx cy w h), not polygons ({few(boxes)})"
    polygon = own or polygon or _first_polygon_file(data)
    if polygon is None:  # --task segment of a set of boxes alone
        return f"{said}: ultralytics refuses such a split for segment training"
    return (
        f"{said}, as {in_data_set(polygon, data)}'s are: ultralytics refuses such a split for segment "
        "training; a detect training reads the polygons as boxes (--task detect checks it so)"
    )


def validate_coco(
    annotations_dir: str | Path, *, self_eval: bool = True, progress: bool = False
) -> dict[str, SplitCheck]:
    """Loads each ``instances_{split}.json`` with pycocotools; checks image files (there, decoding), areas and
    self-AP. ``progress``: bars on stderr while a split's images are decoded (every listed one is), its
    masks rendered (:func:`area_mismatches`) and its self-AP scored (:func:`self_ap_problems`)."""
    checks, files = {}, {}
    folder = Path(annotations_dir).parent
    for split in SPLITS:
        path = Path(annotations_dir) / f"instances_{split}.json"
        if not path.is_file():
            raise UserError(f"missing COCO file {path}")
        coco = read_coco_index(path)  # one line naming a part that is missing or no list
        check_ids(coco.dataset, source=path)  # another tool's: an image without a file_name path, an id twice
        check_entries(coco.dataset, source=path)
        check = coco_split_counts(coco)
        check.box_repeats = repeated_boxes(coco.dataset)
        check_not_empty(check, split)
        note_backgrounds_only(check, split)
        check.problems.extend(coco_image_problems(coco, folder, desc=f"coco {split}", progress=progress))
        check.problems.extend(area_mismatches(coco, desc=f"coco {split} masks", progress=progress))
        if self_eval and coco.dataset["annotations"]:
            check.problems.extend(self_ap_problems(coco, desc=f"coco {split} self-AP", progress=progress))
        checks[split] = check
        files[split] = [folder / "images" / image["file_name"] for image in coco.dataset["images"]]
    check_shared_images(checks, files, lambda path: in_data_set(path, {"path": folder}))
    return checks


def check_entries(dataset: dict, *, source: Path) -> None:
    """Refuses what the checks of a COCO split read and another tool's file (``dataset``, read from
    ``source``) may lack: an image without a width and height, an annotation of a category the file does not
    list, without an xywh ``bbox``, an ``area`` number or a segmentation pycocotools decodes.

    Each stopped the check with a traceback (``KeyError``, ``IndexError``, ``TypeError``), but the category:
    COCOeval left such an annotation out of the self-evaluation, and the split was called ``ok``.

    Raises:
        UserError: one line naming the entry and ``source``.
    """
    for image in dataset["images"]:
        check_image_size(image, source=source)
    categories = {category["id"] for category in dataset["categories"]}
    for annotation in dataset["annotations"]:
        where = f"annotation {annotation['id']} in {source}"
        check_category(annotation, categories, where=where)
        check_box(annotation, where=where)
        if not is_finite_number(area := annotation.get("area")):
            raise UserError(f"{where} has area {area!r}, not a number of pixels: {FIX_COCO}")
        if not _is_segmentation(annotation.get("segmentation")):
            raise UserError(
                f"{where} has no segmentation pycocotools can decode (polygons of 3 points or more, or an "
                f"RLE with size and counts): {FIX_COCO}"
            )


def _is_segmentation(segmentation: object) -> bool:
    """Whether ``segmentation`` is one pycocotools decodes: an RLE (``size`` and ``counts``) whose runs
    decode (:func:`_rle_decodes`), or a list of polygons, each a flat list of 3 points or more."""
    if isinstance(segmentation, dict):
        return {"size", "counts"} <= segmentation.keys() and _rle_decodes(segmentation)
    return (
        isinstance(segmentation, list)
        and len(segmentation) > 0
        and all(
            isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
            and all(is_finite_number(value) for value in polygon)
            for polygon in segmentation
        )
    )  # fmt: skip


def _rle_decodes(rle: dict) -> bool:
    """Whether pycocotools decodes ``rle`` (a COCO RLE, its ``counts`` a list or a string) to its ``size``:
    a corrupt string stopped the check of areas with a bare ``ValueError`` ("Invalid RLE mask
    representation")."""
    from pycocotools import mask as mask_utils

    try:
        height, width = rle["size"]
        compressed = mask_utils.frPyObjects(rle, height, width) if isinstance(rle["counts"], list) else rle
        mask_utils.decode(compressed)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def repeated_boxes(dataset: dict) -> list[str]:
    """The ``file_name`` of an image of a COCO ``dataset`` (its JSON) for each of its annotations that repeats
    the category and ``bbox`` of an earlier one of that image.

    Two MVTec LOCO region files of one class over one area are two annotations of one box: the converters
    write their YOLO detect row once, as ultralytics trains on one of identical rows (see
    :func:`converters.yolo.label_rows`).
    """
    names = {image["id"]: image["file_name"] for image in dataset["images"]}
    seen, repeats = set(), []
    for annotation in dataset["annotations"]:
        key = (annotation["image_id"], annotation["category_id"], tuple(annotation["bbox"]))
        if key in seen:
            repeats.append(names[annotation["image_id"]])
        seen.add(key)
    return repeats


def note_one_row_for_repeats(results: dict[str, dict[str, SplitCheck]]) -> None:
    """Notes, on a YOLO detect split that counts fewer instances than the COCO split of its images, that its
    COCO annotations repeating another's class and box (:func:`repeated_boxes`) are as many: a YOLO detect
    file holds two such as one row. Where either split has a problem, or the shortfall is another number,
    nothing is said.

    A LOCO set converted to both formats counted one YOLO instance fewer than COCO in the table, unexplained
    (the conversion's note said why, :func:`converters.yolo.repeated_rows_note`).
    """
    if "yolo" not in results or "coco" not in results:
        return
    for split, yolo in results["yolo"].items():
        coco = results["coco"][split]
        fewer = coco.instances - yolo.instances
        if yolo.task != "detect" or not fewer or fewer != len(coco.box_repeats) or yolo.stems != coco.stems:
            continue
        if yolo.problems or coco.problems:
            continue
        shown = few([f"images/{name}" for name in dict.fromkeys(coco.box_repeats)])
        said = (
            "1 instance fewer than coco: 1 COCO annotation repeats the class and box of another in its image"
            if fewer == 1
            else f"{fewer} instances fewer than coco: {fewer} COCO annotations repeat the class and box of "
            "another in their image"
        )
        yolo.notes.append(
            f"{said} ({shown}), one YOLO detect row for both (ultralytics trains on one of identical rows)"
        )


def coco_split_counts(coco) -> SplitCheck:
    """The counts of one COCO split (``coco``: its pycocotools index): images, instances, background
    images and the images' file stems; no problems yet."""
    return SplitCheck(
        images=len(coco.dataset["images"]),
        instances=len(coco.dataset["annotations"]),
        backgrounds=sum(not coco.getAnnIds(imgIds=[i]) for i in coco.getImgIds()),
        stems={Path(image["file_name"]).stem for image in coco.dataset["images"]},
    )


def coco_image_problems(coco, folder: Path, *, desc: str, progress: bool) -> list[str]:
    """The problems of the image files a COCO split (``coco``) lists in data set ``folder``: broken links,
    missing files, files that do not decode (behind a bar ``desc`` with ``progress``), labelled images an
    EXIF tag turns; in that order."""
    images_dir = folder / "images"  # file_name is relative to it
    files = [image["file_name"] for image in coco.dataset["images"]]
    problems = []
    if broken := broken_links([images_dir / name for name in files], {"path": folder}):
        problems.append(broken)
    if missing := missing_images(images_dir, files):
        problems.append(missing)
    if unreadable := unreadable_images(images_dir, files, desc=desc, progress=progress):
        problems.append(unreadable)
    if turned := turned_coco_images(coco, images_dir, desc=f"{desc} EXIF", progress=progress):
        # segmentation.data refuses them, whoever wrote the set: a problem in any case
        converted = _has_split_record(folder) or written_here(coco.dataset)
        problems.append(
            turned_line(
                turned,
                converted=converted,
                reader="OpenCV (SAM's reader)",
                refused_by="the segmentation commands",
            )
        )
    return problems


def missing_images(images_dir: Path, files: list[str]) -> str | None:
    """A problem counting the ``files`` (``file_name``s under ``images_dir``) that are not there, naming the
    first; None when all are. A broken link is not counted: :func:`broken_links` names it."""
    missing = [name for name in files if not (images_dir / name).is_file()]
    missing = [name for name in missing if not (images_dir / name).is_symlink()]  # named as broken
    if not missing:
        return None
    files = "1 image file" if len(missing) == 1 else f"{len(missing)} image files"
    return f"{files} missing (e.g. images/{missing[0]})"


def turned_coco_images(coco, images_dir: Path, *, desc: str = "EXIF", progress: bool = False) -> list[str]:
    """The labelled images of a COCO split (``coco``) under ``images_dir`` that an EXIF orientation tag
    turns, as ``images/{file_name}``; each is opened for it, behind a bar on stderr (``desc``) with
    ``progress``."""
    ids = {annotation["image_id"] for annotation in coco.dataset["annotations"]}
    labelled = [image["file_name"] for image in coco.dataset["images"] if image["id"] in ids]
    bar = tqdm(labelled, desc=desc, unit="img", disable=not progress, file=sys.stderr)
    return [
        f"images/{name}" for name in bar if (images_dir / name).is_file() and is_rotated(images_dir / name)
    ]


def area_mismatches(coco, *, desc: str = "masks", progress: bool = False) -> list[str]:
    """A problem for each annotation of a COCO split (``coco``) whose rendered mask's pixels are not its
    stated ``area``; every one is rendered, behind a bar on stderr (``desc``) with ``progress``."""
    problems = []
    annotations = coco.dataset["annotations"]
    for annotation in tqdm(annotations, desc=desc, unit="ann", disable=not progress, file=sys.stderr):
        rendered = int(coco.annToMask(annotation).sum())
        # Polygons render back to within a pixel or two of the mask (see converters.masks).
        if abs(rendered - annotation["area"]) > max(2, 0.02 * annotation["area"]):
            problems.append(
                f"annotation {annotation['id']}: renders {rendered} px, area says {annotation['area']}"
            )
    return problems


def self_ap_problems(coco, *, desc: str = "self-AP", progress: bool = False) -> list[str]:
    """The problems of a COCO split's (``coco``) ground truth scored against itself (:func:`coco_self_ap`),
    box then mask: an AP under 1.0, or none at all. With ``progress`` a bar on stderr (``desc``) counts the
    two COCOeval runs, each one step (COCOeval says nothing of its images)."""
    problems = []
    for iou_type in tqdm(("bbox", "segm"), desc=desc, unit="eval", disable=not progress, file=sys.stderr):
        ap = coco_self_ap(coco, iou_type)
        if ap != ap:  # NaN: COCOeval scored none of them (it read 0.000 until 2026-12-07)
            problems.append(
                f"{iou_type} AP of ground truth against itself is undefined, not 1.0: COCOeval "
                "ignores every annotation (iscrowd 1, a category the file does not list, or an area "
                "outside its range)"
            )
        elif ap < 0.999:
            problems.append(f"{iou_type} AP of ground truth against itself is {ap:.3f}, not 1.0")
    return problems


def unreadable_images(
    images_dir: Path, files: list[str], *, desc: str = "images", progress: bool = False
) -> str | None:
    """A problem naming the first of ``files`` (``file_name``s under ``images_dir``) that do not decode,
    and how many; None when every one there does (missing ones are named apart).

    Decoded as the commands check a photo (:func:`common.images.image_size`, and OpenCV for a TIFF): a
    truncated or empty image was called ok here, while the YOLO rows named it, ultralytics having dropped it.
    Every file is decoded, behind a bar on stderr (``desc``) with ``progress``.
    """
    reasons = []
    for name in tqdm(files, desc=desc, unit="img", disable=not progress, file=sys.stderr):
        path = images_dir / name
        if not path.is_file():
            continue
        try:
            image_size(path)
            check_opencv_decodes(path)
        except UserError as error:
            reasons.append(str(error).replace(str(path), f"images/{name}"))
    if not reasons:
        return None
    files_ = "1 image file" if len(reasons) == 1 else f"{len(reasons)} image files"
    return f"{files_} unreadable (e.g. {reasons[0]})"


def coco_self_ap(coco, iou_type: str) -> float:
    """COCO AP@[.5:.95] of the ground truth scored as detections against itself (1.0 when consistent;
    NaN when COCOeval ignores every annotation: crowds, categories the file does not list)."""
    from converters.cocoeval import COCO_MAX_DET, precision_table

    detections = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "segmentation": a["segmentation"],
            "score": 1.0,
        }
        for a in coco.dataset["annotations"]
    ]
    # COCO keeps 100 detections per image: an image of more instances (specks) would miss the rest.
    most = max(collections.Counter(a["image_id"] for a in detections).values())
    table = precision_table(coco.dataset, detections, iou_type=iou_type, max_det=max(COCO_MAX_DET, most))
    return table.ap()


def validate(
    folder: str | Path, *, task: str | None = None, progress: bool = False
) -> dict[str, dict[str, SplitCheck]]:
    """Validates whatever formats ``folder`` holds; returns ``{format: {split: check}}``; ``progress``: bars
    on stderr while each split is checked (:func:`validate_yolo`, :func:`validate_coco`); ``task``: the YOLO
    set's, ``detect`` or ``segment`` (guessed when None: :func:`validate_yolo`).

    A split without images is a problem when it is ``train`` or ``val`` (``yolo train`` stops without
    them; a COCO trainer has nothing to learn from or validate on) and a note when it is ``test``
    (nothing to score on, as ``--split 0.8 0.2 0`` chooses), in YOLO and COCO alike; a YOLO split the
    ``data.yaml`` does not name counts as empty. An empty split that ``splits.json`` lists images for
    is a problem in any case (:func:`check_listed`).

    Another tool's ``splits.json`` (not the converters' split record, :func:`is_split_record`) is not
    checked against (:func:`split_record_note`): it stopped the check of its set as a broken split file.

    Raises:
        UserError: ``folder`` does not exist or holds no converted data set, or a file of it cannot be read
            (the converters' ``splits.json`` among them).
    """
    if not Path(folder).exists():  # a mistyped data.yaml was 'no data.yaml ... in .../data.yaml'
        raise UserError(link_loop_text(folder) or f"{folder} does not exist")
    path = Path(folder)
    # any set's data.yaml is its folder here, as data_set_folder takes only the converters' (splits.json)
    if path.name == DATA_YAML and path.is_file():
        path = path.parent
    folder = data_set_folder(path, given=str(folder), flag="the data set folder")
    if folder.is_file():  # 'no data.yaml or annotations/ in <file>' of instances_val.json, a photo
        raise UserError(f"{folder} is a file, not a data set folder (or its data.yaml)")
    if not (folder / "data.yaml").is_file() and not (folder / "annotations").is_dir():
        raise UserError(f"no data.yaml or annotations/ in {folder}: not a converted data set")
    splits = _split_record(folder)
    results = {}
    if (folder / "data.yaml").is_file():
        results["yolo"] = validate_yolo(folder / "data.yaml", task=task, progress=progress)
    if (folder / "annotations").is_dir():
        results["coco"] = validate_coco(folder / "annotations", progress=progress)
    note_one_row_for_repeats(results)
    if splits is not None:
        for fmt, checks in results.items():
            for split in SPLITS:
                check_listed(checks[split], fmt, split, splits[split])
    return results


def _split_record(folder: Path) -> Splits | None:
    """The converters' split record in ``folder``: None without ``splits.json`` or with another tool's file
    of that name.

    Raises:
        UserError: the converters' ``splits.json`` does not read (:func:`converters.splits.load_splits`).
    """
    path = folder / SPLITS_FILE
    if not path.is_file():
        return None
    try:
        return load_splits(path)
    except UserError:
        if is_split_record(path) or _converted_here(folder):
            raise
        return None


def _converted_here(folder: Path) -> bool:
    """Whether the converters wrote the data set in ``folder``: its ``data.yaml`` (their header line) or one
    of the COCO files they write, ``annotations/instances_<split>.json`` (their ``info.description``). A
    ``splits.json`` there that does not read is their split record damaged (an error naming it), not
    another tool's file of that name."""
    data_yaml = folder / "data.yaml"
    if data_yaml.is_file() and _written_here(data_yaml):
        return True
    # their files alone: another JSON file beside them, sorted first, made the set another tool's
    for split in SPLITS:
        path = folder / "annotations" / f"instances_{split}.json"
        try:
            if path.is_file() and written_here(read_json(path, what="COCO file")):
                return True
        except (UserError, OSError, AttributeError):
            continue
    return False


def check_listed(check: SplitCheck, fmt: str, split: str, keys: list[str]) -> None:
    """Adds a problem to ``check`` when its images are not those ``splits.json`` lists for ``split``.

    An image's output stem is its key with ``/`` as ``_``, a long one cut (:func:`output_stem`): two images
    swapped between val and test keep every count right.
    """
    count = check.images
    if count != len(keys):
        listed = f"{check.empty}, splits.json lists {len(keys)}"
        if check.empty in check.problems:  # an empty train or val split: one problem saying both
            check.problems[check.problems.index(check.empty)] = listed
        elif not count and check.problems:  # ultralytics read none of the split's images: its problem says
            return  # why (all dropped, or box files in YOLO-seg); "no images" of images there misled
        elif not count:
            check.problems.append(listed)
        else:
            check.problems.append(f"{fmt} has {count} images, splits.json lists {len(keys)}")
        return
    others = sorted(check.stems - {output_stem(key) for key in keys})
    if others:
        check.problems.append(
            f"{fmt} holds {len(others)} {split} image(s) splits.json lists elsewhere or not at all "
            f"(e.g. {others[0]})"
        )


def split_record_note(folder: str | Path) -> str | None:
    """The note for a data set ``folder`` (or its ``data.yaml``) without the converters' ``splits.json``
    (none, or another tool's file of that name); None with theirs.

    The converters write it (the split, its seed and ratios, by source key); without it the check of
    each split's images against it (:func:`check_listed`) is skipped, which was said nowhere. Of a set they
    did not write (:func:`_converted_here`) it says no more: it was told its split "cannot be reproduced
    (--splits)", a record it never had.
    """
    folder = Path(folder)
    if folder.is_file():  # the converters' data.yaml: its folder (data_set_folder refuses one without)
        folder = folder.parent
    path = folder / SPLITS_FILE
    if path.is_file():
        if _has_split_record(folder) or is_split_record(path) or _converted_here(folder):  # broken: an error
            return None
        return (
            f"{path} is not the converters' split record (another tool's file of that name): the splits' "
            "images are not checked against it"
        )
    if not _converted_here(folder):  # another tool's export never had one: nothing to reproduce with --splits
        return (
            f"{folder} has no splits.json, the converters' split record (a set they did not write has none): "
            "there is no split record to check the splits' images against"
        )
    return (
        f"{folder} has no splits.json (the seeded split record the converters write): the splits' images "
        "are not checked against it, and the split cannot be reproduced (--splits)"
    )


def format_checks(results: dict[str, dict[str, SplitCheck]]) -> str:
    """The table of :func:`validate`'s checks: a split's first three problems, or ``ok``, then its notes.

    A failed split's notes followed its problems nowhere: a missing label file read as a background and
    a train split then of backgrounds only told the first alone.
    """
    lines = [f"{'format':8s}{'split':8s}{'images':>8s}{'instances':>11s}{'backgrounds':>13s}  status"]
    for fmt, checks in results.items():
        for split, check in checks.items():
            if check.problems:  # "note:" tells a note from the problems before it
                status = "; ".join([*check.problems[:3], *(f"note: {note}" for note in check.notes)])
            else:
                status = "; ".join(["ok", *check.notes])
            counts = f"{check.images:>8d}{check.instances:>11d}{check.backgrounds:>13d}"
            lines.append(f"{fmt:8s}{split:8s}{counts}  {status}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: 0 when every check passes, 1 when one fails, 2 for bad input."""
    parser = OneLineParser(
        prog=command_name("converters.validate"),
        description="Check a converted data set with ultralytics (YOLO) and pycocotools (COCO).",
    )
    parser.add_argument(
        "folder", type=user_path, help="data set folder written by mvtec2yolo / mvtec2coco, or its data.yaml"
    )
    parser.add_argument(
        "--task",
        choices=("detect", "segment"),
        help="what the YOLO set is trained for (default: segment where a label file is one of polygons, "
        "as ultralytics reads it)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    checked: dict[Path, dict[str, dict[str, SplitCheck]]] = {}

    def work() -> None:
        args = parser.parse_args(argv)
        checked[args.folder] = validate(args.folder, task=args.task, progress=not args.no_progress)

    code = exit_code(work)
    if code:
        return code
    [(folder, results)] = checked.items()
    print(format_checks(results))
    if note := split_record_note(folder):
        print(f"note: {note}", file=sys.stderr)
    failed = sum(bool(check.problems) for checks in results.values() for check in checks.values())
    if failed:
        print(f"error: {failed} check(s) failed for {folder}: see the status column", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
