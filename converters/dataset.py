"""The data set folder: where it may go, what goes into it, and how it is put in place.

A folder is built in a hidden ``.<out>.partial-<host>-<pid>-<random>`` beside its target
(:func:`common.io.partial_dir`) and renamed into place when complete, so a failed or
interrupted run leaves no half-written data set. An old folder replaced with ``--overwrite``
is first moved aside to ``.<out>.old.<host>-<pid>-<random>.tmp`` and removed only once the
new one is in place. A run killed half-way leaves those hidden folders behind: the next run of
the same target removes them once their writer is gone (:func:`common.io.remove_stale`; a
concurrent run's build is left alone) and says so in one ``note:`` line on stderr.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from common.errors import UserError, one_line
from common.io import partial_dir, remove_stale, temporary_path
from converters.coco import CocoImage, build_coco
from converters.masks import DefectInstance
from converters.mvtec import ImageRecord
from converters.splits import SPLITS, Splits, save_splits
from converters.yolo import data_yaml, labels_text

if TYPE_CHECKING:
    from converters.convert import ConvertConfig


@dataclass(frozen=True)
class Sample:
    """A source image ready to write: its record, size and instances (empty for good images)."""

    record: ImageRecord
    width: int
    height: int
    instances: tuple[DefectInstance, ...] = ()


def check_output_folder(out: str | Path, root: str | Path, *, overwrite: bool) -> Path:
    """``out`` resolved (symlinks and ``..`` followed), once it is a place the run may write.

    Both sides are resolved, so ``--out root/x/../root/sub`` and a symlinked ``--root``
    are seen for what they are.

    Raises:
        UserError: ``out`` is inside the input tree or holds it (``--overwrite`` would delete
            the input), exists without ``overwrite``, or cannot be created (a file or a
            read-only folder on its path).
    """
    out, root = Path(out).resolve(), Path(root).resolve()
    if out == root or root in out.parents:
        raise UserError(f"output folder {out} is inside the input tree {root}; choose another --out")
    if out in root.parents:
        raise UserError(f"output folder {out} contains the input tree {root}; choose another --out")
    if out.exists() and not overwrite:
        raise UserError(f"output folder exists: {out} (pass --overwrite to replace it)")
    check_creatable(out)
    return out


def check_creatable(folder: Path) -> None:
    """Refuses ``folder`` when its nearest existing ancestor is a file or a folder we cannot write."""
    ancestor = next(parent for parent in folder.parents if parent.exists())
    if not ancestor.is_dir():
        raise UserError(f"cannot create folder {folder}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"cannot create folder {folder}: {ancestor} is not writable")


def place_image(source: Path, target: Path, link: str) -> None:
    """Puts an image into the data set as a symlink, hard link or copy; never touches ``source``."""
    if link == "symlink":
        target.symlink_to(source.resolve())
    elif link == "hardlink":
        try:
            os.link(source, target)
        except OSError:  # other file system or no permission: a copy is always possible
            shutil.copy2(source, target)
    else:
        shutil.copy2(source, target)


def write_dataset(
    folder: Path,
    samples_by_split: dict[str, list[Sample]],
    *,
    names: Sequence[str],
    splits: Splits,
    final_path: Path,
    config: ConvertConfig,
) -> None:
    """Writes images, labels, annotations, data.yaml and splits.json into ``folder``."""
    class_ids = {name: i for i, name in enumerate(names)}
    total = sum(len(s) for s in samples_by_split.values())
    bar = tqdm(total=total, desc="writing", unit="img", disable=not config.progress, file=sys.stderr)
    for split in SPLITS:
        coco_images = _write_split(folder, split, samples_by_split[split], class_ids, config, bar.update)
        if "coco" in config.formats:
            (folder / "annotations").mkdir(exist_ok=True)
            coco = build_coco(
                coco_images,
                names=names,
                segmentation=config.coco_segmentation,
                description=f"{split} split written by converters from {Path(config.root).absolute()}",
            )
            (folder / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    bar.close()
    if "yolo" in config.formats:
        (folder / "data.yaml").write_text(data_yaml(root=final_path, names=names))
    save_splits(splits, folder / "splits.json")


def _write_split(
    folder: Path,
    split: str,
    samples: list[Sample],
    class_ids: dict[str, int],
    config: ConvertConfig,
    advance: Callable[[], object],
) -> list[CocoImage]:
    """Places one split's images and writes their YOLO labels; returns their COCO entries."""
    (folder / "images" / split).mkdir(parents=True)
    if "yolo" in config.formats:
        (folder / "labels" / split).mkdir(parents=True)
    coco_images = []
    for image_id, sample in enumerate(samples, start=1):
        stem = sample.record.output_stem
        file_name = stem + sample.record.image.suffix.lower()
        place_image(sample.record.image, folder / "images" / split / file_name, config.link)
        if "yolo" in config.formats:
            text = labels_text(
                sample.instances,
                class_ids=class_ids,
                width=sample.width,
                height=sample.height,
                task=config.task,
            )
            (folder / "labels" / split / f"{stem}.txt").write_text(text)
        coco_images.append(
            CocoImage(image_id, f"{split}/{file_name}", sample.width, sample.height, sample.instances)
        )
        advance()
    return coco_images


def build_folder(out: Path, write: Callable[[Path], object], *, overwrite: bool) -> None:
    """Runs ``write(folder)`` on a hidden folder beside ``out``, then renames it into place.

    Leftovers of killed runs of the same ``out`` are removed first (see the module docstring).

    Raises:
        UserError: ``out`` exists without ``overwrite``, or a file system error while
            writing (a read-only folder, a full disk); one line naming ``out``.
    """
    remove_leftovers(out)
    partial = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_dir(out)
        write(partial)
        _replace(partial, out, overwrite=overwrite)
    except OSError as error:
        raise UserError(f"cannot write {out}: {_reason(error)}") from None
    finally:
        if partial is not None and partial.exists():
            shutil.rmtree(partial, ignore_errors=True)


def remove_leftovers(out: Path) -> list[Path]:
    """Removes the hidden folders of ``out`` whose writer is gone; one ``note:`` line per kind."""
    name = glob.escape(out.name)
    builds = remove_stale(out.parent, f".{name}.partial-*")
    replaced = remove_stale(out.parent, f".{name}.old.*.tmp") + remove_stale(out.parent, f".{name}.old-*")
    kinds = ((builds, "unfinished build", "unfinished builds"), (replaced, "old copy", "old copies"))
    for found, one, many in kinds:
        if found:
            what = f"{len(found)} {one if len(found) == 1 else many}"
            print(f"note: removed {what} of {out} left by a killed run", file=sys.stderr, flush=True)
    return builds + replaced


def _replace(partial: Path, out: Path, *, overwrite: bool) -> None:
    """Moves the finished folder into place; an old one is removed only after the new one is there."""
    if not out.exists() and not out.is_symlink():
        partial.rename(out)
        return
    if not overwrite:
        raise UserError(f"output folder exists: {out} (pass --overwrite to replace it)")
    old = temporary_path(out.with_name(f"{out.name}.old"))
    out.rename(old)
    try:
        partial.rename(out)
    except BaseException:
        old.rename(out)  # put the old one back
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)  # a leftover is removed by the next run
    else:
        old.unlink()


def _reason(error: OSError) -> str:
    """``strerror: filename`` of a file system error, or its text."""
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return one_line(error.strerror or error)
