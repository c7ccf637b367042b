"""The converters' split record, ``splits.json``: whether the converters wrote a data set, and each
split's images checked against the record (:func:`check_listed`).
"""

from __future__ import annotations

from pathlib import Path

from common.errors import UserError
from common.io import read_json
from converters.coco import written_here
from converters.records import output_stem
from converters.splits import SPLITS, SPLITS_FILE, Splits, is_split_record, load_splits
from converters.validation.split_check import SplitCheck
from converters.yolo import DATA_YAML_HEADER


def has_split_record(folder: Path) -> bool:
    """Whether ``folder`` holds the converters' own ``splits.json`` (:func:`converters.splits.load_splits`
    reads it): another tool's file of that name, or one that does not read, does not make the data set
    the converters'."""
    try:
        load_splits(folder / "splits.json")
    except UserError:
        return False
    return True


def data_yaml_written_here(data_yaml: Path) -> bool:
    """Whether the converters wrote ``data_yaml`` (their header line first)."""
    with open(data_yaml, encoding="utf-8", errors="replace") as file:
        return file.read(len(DATA_YAML_HEADER)) == DATA_YAML_HEADER


def read_split_record(folder: Path) -> Splits | None:
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
    if data_yaml.is_file() and data_yaml_written_here(data_yaml):
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
    swapped between val and test keep every count right. A count that differs with no other problem of the
    split to say why (an image ultralytics drops, a broken link) says the next step: converting again.
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
        else:  # with no other problem to say why, the set's files were changed since the converters wrote it
            step = "" if check.problems else ": its files changed since the conversion; convert again"
            check.problems.append(f"{fmt} has {count} images, splits.json lists {len(keys)}{step}")
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
        if has_split_record(folder) or is_split_record(path) or _converted_here(folder):  # broken: an error
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
