"""The data set folder: where it may go and what goes into it.

It is built hidden beside its target and renamed into place when complete, by
:func:`common.folders.build_folder` (an ``--overwrite``'s old folder is removed only then; a
killed run's leftovers are removed by the next run of the same target).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from common import folders
from common.io import atomic_write, copied_note, recorded_path
from converters.coco import WRITTEN_BY, CocoImage, build_coco
from converters.layouts.base import layout_note
from converters.masks import DefectInstance
from converters.mvtec import ImageRecord
from converters.splits import SPLITS, SPLITS_FILE, Splits, save_splits
from converters.yolo import data_yaml, label_rows, repeated_rows_note

if TYPE_CHECKING:
    from converters.convert import ConvertConfig

#: What a data set folder holds; ``--overwrite`` replaces no folder holding anything else.
DATASET_NAMES = ("data.yaml", "images", "labels", "annotations", SPLITS_FILE)


@dataclass(frozen=True)
class Sample:
    """A source image ready to write: its record, size and instances (empty for good images).

    ``defect_values``: distinct non-zero values of its mask, read without a value map (0 with one):
    many are a soft mask's (anti-aliased, or once saved as JPEG).
    ``faint``: its faint values beside its largest, ``largest`` (:func:`common.masks.faint_values`; none
    with a value map): the ringing of a mask once saved as JPEG, at any quality.
    ``empty_regions``: its region files (MVTec LOCO's, ``record.masks``) that hold no defect pixel, beside
    others that do: their regions are not among ``instances``.
    """

    record: ImageRecord
    width: int
    height: int
    instances: tuple[DefectInstance, ...] = ()
    defect_values: int = 0
    faint: tuple[int, ...] = ()
    largest: int = 0
    empty_regions: tuple[Path, ...] = ()


def check_output_folder(out: str | Path, root: str | Path, *, overwrite: bool) -> Path:
    """``out`` resolved (symlinks and ``..`` followed), once it is a place the run may write.

    Both sides are resolved, so ``--out root/x/../root/sub`` and a symlinked ``--root``
    are seen for what they are.

    Raises:
        UserError: ``out`` is inside the input tree or holds it (``--overwrite`` would delete
            the input), is a file (``--overwrite`` replaces a data set folder, never a file),
            exists without ``overwrite``, holds other files than a data set's or no ``splits.json``
            (one made otherwise), or cannot be created (a file or a read-only folder on its path).
    """
    folders.check_outside_tree(out, root)
    # a YOLO data set made by hand or by another tool holds these names too, with the user's photos
    return folders.check_output_folder(
        Path(out).resolve(),
        what="data set folder",
        overwrite=overwrite,
        holds=DATASET_NAMES,
        marker=SPLITS_FILE,
    )


def place_image(source: Path, target: Path, link: str) -> bool:
    """Puts an image into the data set as a symlink, hard link or copy; never touches ``source``.

    Returns:
        False where a hard link was asked for and a copy made instead, else True.
    """
    if link == "symlink":
        target.symlink_to(source.resolve())
        return True
    if link == "hardlink":
        try:
            os.link(source, target)
            return True
        except OSError:  # other file system or no permission: a copy is always possible
            shutil.copy2(source, target)
            return False
    shutil.copy2(source, target)
    return True


def write_dataset(
    folder: Path,
    samples_by_split: dict[str, list[Sample]],
    *,
    names: Sequence[str],
    splits: Splits,
    final_path: Path,
    config: ConvertConfig,
) -> None:
    """Writes images, labels, annotations, data.yaml and splits.json into ``folder``.

    A label row repeating another of its file is left out (:func:`converters.yolo.label_rows`), said in a
    note of the conversion's (:func:`converters.layouts.base.layout_note`)."""
    class_ids = {name: i for i, name in enumerate(names)}
    total = sum(len(s) for s in samples_by_split.values())
    bar = tqdm(total=total, desc="writing", unit="img", disable=not config.progress, file=sys.stderr)

    written = 0

    def advance() -> None:  # between photos: what config.on_photo raises stops the write there
        nonlocal written
        written += 1
        bar.update()  # a disabled bar counts nothing
        if config.on_photo is not None:
            config.on_photo("writing", written, total)

    copied: list[Path] = []  # what --link hardlink copied
    repeats: list[tuple[str, int]] = []  # label files and their rows left out as repeats
    for split in SPLITS:
        coco_images = _write_split(
            folder, split, samples_by_split[split], class_ids, config, advance, (copied, repeats)
        )
        if "coco" in config.formats:
            (folder / "annotations").mkdir(exist_ok=True)
            coco = build_coco(
                coco_images,
                names=names,
                segmentation=config.coco_segmentation,
                description=f"{split}{WRITTEN_BY}{recorded_path(config.root)}",
            )
            atomic_write(folder / "annotations" / f"instances_{split}.json", json.dumps(coco))
    bar.close()
    if copied:
        print(copied_note(len(copied), copied[0], final_path), file=sys.stderr, flush=True)
    if repeats:
        layout_note(repeated_rows_note(repeats, task=config.task, coco="coco" in config.formats))
    if "yolo" in config.formats:
        atomic_write(folder / "data.yaml", data_yaml(root=final_path, names=names))
    save_splits(splits, folder / SPLITS_FILE)


def _write_split(
    folder: Path,
    split: str,
    samples: list[Sample],
    class_ids: dict[str, int],
    config: ConvertConfig,
    advance: Callable[[], object],
    told: tuple[list[Path], list[tuple[str, int]]],
) -> list[CocoImage]:
    """Places one split's images and writes their YOLO labels; returns their COCO entries.

    ``told``: lists this adds to, of the images that ``--link hardlink`` copied (the file system refused
    the link), and of the label files written with rows left out as repeats (``labels/<split>/<stem>.txt``
    and how many)."""
    copied, repeats = told
    (folder / "images" / split).mkdir(parents=True)
    if "yolo" in config.formats:
        (folder / "labels" / split).mkdir(parents=True)
    coco_images = []
    for image_id, sample in enumerate(samples, start=1):
        stem = sample.record.output_stem
        file_name = stem + sample.record.image.suffix.lower()
        if not place_image(sample.record.image, folder / "images" / split / file_name, config.link):
            copied.append(sample.record.image)
        if "yolo" in config.formats:
            rows, repeated = label_rows(
                sample.instances,
                class_ids=class_ids,
                width=sample.width,
                height=sample.height,
                task=config.task,
            )
            atomic_write(folder / "labels" / split / f"{stem}.txt", "".join(row + "\n" for row in rows))
            if repeated:
                repeats.append((f"labels/{split}/{stem}.txt", repeated))
        coco_images.append(
            CocoImage(image_id, f"{split}/{file_name}", sample.width, sample.height, sample.instances)
        )
        advance()
    return coco_images
