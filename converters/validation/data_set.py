"""The check of a data set folder in whichever formats it holds (:func:`validate`), and its table
(:func:`format_checks`).
"""

from __future__ import annotations

from pathlib import Path

from common.data_sets import DATA_YAML, data_set_folder
from common.errors import UserError
from common.io import link_loop_text
from converters.splits import SPLITS
from converters.validation.coco import note_one_row_for_repeats, validate_coco
from converters.validation.split_check import SplitCheck
from converters.validation.split_record import check_listed, read_split_record
from converters.validation.yolo import validate_yolo


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
    splits = read_split_record(folder)
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
