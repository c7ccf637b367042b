"""The YOLO check of a data set: its ``data.yaml`` and each split read through ultralytics'
``check_det_dataset`` and ``YOLODataset`` (:func:`validate_yolo`), the code ``yolo train`` runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from common.coco import is_whole_number
from common.config import read_yaml
from common.errors import UserError, few, one_line
from common.extras import require
from common.fonts import ensure_ultralytics_fonts
from common.io import expand_user
from common.label_cache import no_label_cache
from converters.splits import SPLITS
from converters.validation.label_rows import rows_of_no_area, rows_of_no_size
from converters.validation.split_check import (
    SplitCheck,
    broken_links,
    check_not_empty,
    check_shared_images,
    image_folders_line,
    in_data_set,
    note_backgrounds_only,
    turned_line,
)
from converters.validation.split_record import data_yaml_written_here, has_split_record
from converters.validation.ultralytics_scan import (
    dropped_images,
    dropped_reason,
    images_left_as_they_are,
    quiet_ultralytics,
    repeated_rows_note,
    resaved_note,
    turned_labelled,
    yolo_dataset_with_bar,
)
from converters.validation.yolo_files import (
    absent_label_lines,
    box_files_problem,
    guess_task,
    label_files_without_image,
    orphans_line,
    split_image_files,
    split_image_folders,
    unread_images_note,
)
from converters.yolo import check_data_root


def validate_yolo(
    data_yaml: str | Path, *, task: str | None = None, progress: bool = False
) -> dict[str, SplitCheck]:
    """Loads ``data.yaml`` and every split's labels through ultralytics.

    Args:
        task: ``detect`` or ``segment``, what the set is trained for; when None, ``segment`` where a label
            file is one of polygons (:func:`guess_task`).
        progress: a bar on stderr while a split's images and label files are scanned
            (:func:`yolo_dataset_with_bar`).

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
        with quiet_ultralytics():  # its blank line before 'images not found'
            data = check_det_dataset(str(data_yaml), autodownload=False)
    except Exception as error:  # ultralytics raises bare SyntaxError/FileNotFoundError/...
        raise UserError(f"ultralytics rejects {data_yaml}: {_rejected(error, written)}") from None
    check_data_root(data_yaml, Path(data["path"]).absolute(), written=written)
    check_kpt_shape(data, data_yaml)
    converted = has_split_record(data_yaml.parent) or data_yaml_written_here(data_yaml)
    polygon = None  # the set's first label file of polygons, named where a split of box files has none
    if task is None:
        task, polygon = guess_task(data)
    resaved: list[Path] = []
    with images_left_as_they_are(resaved):
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


def check_kpt_shape(data: dict, data_yaml: Path) -> None:
    """Refuses a ``kpt_shape`` in ``data`` (``data_yaml``'s, read by ultralytics) that is not two whole
    numbers (``[17, 3]``): its scan unpacks it into keypoints and dims in every task, and the check stopped
    with a traceback (``ValueError: not enough values to unpack``), as ``yolo train`` does.

    Raises:
        UserError: one line naming the file and the value.
    """
    if "kpt_shape" not in data:
        return
    shape = data["kpt_shape"]
    numbers = isinstance(shape, list) and all(is_whole_number(n) and n >= 0 for n in shape)
    if not (numbers and len(shape) == 2):
        raise UserError(
            f"{data_yaml} has kpt_shape {shape!r}, not [keypoints, dims] (two whole numbers, as [17, 3]): "
            "ultralytics stops on it in any task; correct it, or delete the line (a detect or segment set "
            "needs none)"
        )


def _rejected(error: Exception, written: str | None) -> str:
    """Why ultralytics rejects a ``data.yaml`` whose ``path:`` is ``written`` (None: not given, its own folder
    read, which exists), in one line: its ``error``, where that folder is relative how ultralytics reads it
    (:func:`_relative_root`), where it is absolute or not given without ultralytics' note on the folder it
    downloads data sets to (no data set is downloaded here, and such a folder is read from no other; a
    Roboflow export has no ``path:``), and a missing split folder's next step."""
    said = one_line(error)
    if written is None or expand_user(written).is_absolute():  # without path:, data_yaml's folder, there
        said = said.partition(" Note dataset download directory is ")[0]
    if relative := _relative_root(error, written):
        return said + relative
    if "images not found" in str(error):  # the next step, where the folder is read where it is written
        said = f"{said.rstrip('.')}: restore that folder, or correct the split's entry in data.yaml"
    return said


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
        polygon: the label file of polygons that made the set YOLO-seg (:func:`guess_task`), if known: named
            where a box file makes the split one ultralytics refuses and it holds no polygon file of its own.
    """
    images = split_image_files(data.get(split))
    if unread := _unread_split(split, data, images):
        return unread
    broken = broken_links(images, data, converted=converted)
    folders = image_folders_line(split_image_folders(data.get(split)), data)
    try:
        with quiet_ultralytics(), no_label_cache():
            dataset = yolo_dataset_with_bar(f"yolo {split}", progress=progress)(
                img_path=data[split], data=data, task=task, augment=False, imgsz=64
            )
    except RuntimeError as error:  # it reads no image of the split: a traceback said so
        if not str(error).startswith("No valid images found"):
            raise
        problem = (
            broken or folders or dropped_images(images, set(), dropped_reason(data, task)) or one_line(error)
        )
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
    check.problems += [p for p in (broken, folders, problem, *rows) if p]
    # the converters write a label file for every image, an empty one for a background: ultralytics
    # reads a missing one as a background too, so a deleted file turns its defects into "good"; in a
    # data set of another tool's (a Roboflow export) it is how backgrounds may be given: a note
    (check.problems if converted else check.notes).extend(absent_label_lines(dataset.label_files, data))
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
