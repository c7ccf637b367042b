"""MVTec-layout trees to a YOLO and/or COCO data set folder: the library call behind the CLIs.

Output layout (one folder can carry both formats)::

    out/images/{train,val,test}/<category>_<subset>_<defect>_<stem>.<ext>
    out/labels/{train,val,test}/<same stem>.txt          (YOLO)
    out/annotations/instances_{train,val,test}.json      (COCO)
    out/data.yaml                                         (YOLO)
    out/splits.json

The folder is built beside its target and renamed into place at the end, so a
failed or interrupted run leaves no half-written data set (and the next run
removes what a killed one left, see :mod:`converters.dataset`); the input tree
is only ever read.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tqdm import tqdm

from common.errors import UserError
from common.images import image_size
from converters.classes import Namer, class_namer, class_names, load_value_map
from converters.coco import SEGMENTATION_MODES
from converters.dataset import Sample, build_folder, check_output_folder, write_dataset
from converters.masks import MaskInstances, mask_to_instances, read_mask
from converters.mvtec import ImageRecord, category_dir, check_output_stems, list_categories, scan
from converters.splits import (
    SPLITS,
    Splits,
    check_background_ratio,
    check_ratios,
    check_seed,
    load_splits,
    make_splits,
)

FORMATS = ("yolo", "coco")
TASKS = ("detect", "segment")
LINK_MODES = ("symlink", "hardlink", "copy")


@dataclass(frozen=True)
class ConvertConfig:
    """Every option of a conversion; the CLIs map their flags onto it one to one.

    Attributes:
        root: folder of MVTec-layout categories, or one category folder.
        out: data set folder to write.
        categories: categories to convert; empty means all under ``root``.
        formats: any of ``yolo``, ``coco``.
        task: YOLO labels as ``detect`` boxes or ``segment`` polygons.
        coco_segmentation: ``polygon`` (RLE only for masks with holes) or ``rle``.
        min_area: connected regions with fewer pixels are dropped.
        mask_values: JSON file mapping mask pixel values to class names.
        single_class: one class named ``defect`` for every instance.
        names_template: class name from ``{defect}``, ``{category}``,
            ``{defect_text}``, ``{category_text}`` (the ``_text`` forms
            have spaces for underscores, for text prompts).
        exclude_defects: defect types left out entirely (e.g. ``combined``).
        ratios: train/val/test fractions of the defect images.
        background_ratio: good images added per defect image in each split.
        seed: seed of the split.
        splits_file: reuse this ``splits.json`` instead of drawing a split.
        link: how images are placed: ``symlink``, ``hardlink`` or ``copy``.
        overwrite: replace an existing ``out``.
        strict: warnings (e.g. an empty mask on a defect image) become errors.
        progress: show progress bars.
    """

    root: Path
    out: Path
    categories: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("yolo",)
    task: str = "detect"
    coco_segmentation: str = "polygon"
    min_area: int = 1
    mask_values: Path | None = None
    single_class: bool = False
    names_template: str = "{defect}"
    exclude_defects: tuple[str, ...] = ()
    ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)
    background_ratio: float = 0.5
    seed: int = 0
    splits_file: Path | None = None
    link: str = "symlink"
    overwrite: bool = False
    strict: bool = False
    progress: bool = True


@dataclass
class ConversionReport:
    """What a conversion wrote, for the summary table and for tests."""

    out: Path
    names: list[str]
    formats: tuple[str, ...]
    images: dict[str, int] = field(default_factory=dict)
    backgrounds: dict[str, int] = field(default_factory=dict)
    instances: dict[str, Counter] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_small: int = 0
    unused_good: int = 0
    warnings: list[str] = field(default_factory=list)


def check_config(config: ConvertConfig) -> Path:
    """Rejects bad option values before any file is read; returns ``out`` resolved."""
    for value, allowed, what in (
        (config.task, TASKS, "task"),
        (config.coco_segmentation, SEGMENTATION_MODES, "COCO segmentation"),
        (config.link, LINK_MODES, "link mode"),
    ):
        if value not in allowed:
            raise UserError(f"unknown {what} '{value}' (expected one of: {', '.join(allowed)})")
    unknown = set(config.formats) - set(FORMATS)
    if unknown or not config.formats:
        raise UserError(f"formats must be among {', '.join(FORMATS)}, got {list(config.formats)}")
    if config.min_area < 1:
        raise UserError(f"--min-area must be >= 1 pixel, got {config.min_area}")
    for category in config.categories:
        if not category or category in {".", ".."} or "/" in category or "\\" in category:
            raise UserError(f"--category '{category}' must be a folder name under --root, not a path")
    check_ratios(config.ratios)
    check_background_ratio(config.background_ratio)
    check_seed(config.seed)
    return check_output_folder(config.out, config.root, overwrite=config.overwrite)


def read_samples(
    records: Sequence[ImageRecord],
    *,
    namer: Namer,
    value_names: dict[int, str] | None,
    min_area: int,
    strict: bool,
    progress: bool,
) -> tuple[list[Sample], list[tuple[str, str]], int]:
    """Reads every image's size and every mask's instances.

    Returns:
        ``(samples, skipped, n_small)``: defect images whose mask yields no
        instance are skipped, with the reason.
    """
    samples, skipped, n_small = [], [], 0
    for record in tqdm(records, desc="reading", unit="img", disable=not progress, file=sys.stderr):
        width, height = image_size(record.image)
        if record.is_good:
            samples.append(Sample(record, width, height))
            continue
        found = _mask_instances(record, (height, width), namer, value_names, min_area)
        n_small += found.n_small
        if not found.instances:
            reason = (
                f"all {found.n_small} regions below --min-area {min_area}" if found.n_small else "empty mask"
            )
            if strict:
                raise UserError(f"{reason} on a defect image: {record.mask} (--strict)")
            skipped.append((record.key, reason))
            continue
        samples.append(Sample(record, width, height, tuple(found.instances)))
    return samples, skipped, n_small


def _mask_instances(
    record: ImageRecord,
    shape: tuple[int, int],
    namer: Namer,
    value_names: dict[int, str] | None,
    min_area: int,
) -> MaskInstances:
    """The instances of a defect image's mask, which must have the image's ``(H, W)`` ``shape``."""
    mask = read_mask(record.mask)
    if mask.shape != shape:
        raise UserError(
            f"image/mask size mismatch: {record.image} is {shape[1]}x{shape[0]}, "
            f"{record.mask} is {mask.shape[1]}x{mask.shape[0]}"
        )
    names = None if value_names is None else {v: namer(record.category, n) for v, n in value_names.items()}
    try:
        return mask_to_instances(
            mask, class_name=namer(record.category, record.defect), value_names=names, min_area=min_area
        )
    except UserError as error:
        raise UserError(f"{record.mask}: {error}") from None


def _assign(samples: list[Sample], splits: Splits, skipped: list[tuple[str, str]], strict: bool):
    """Samples per split, following ``splits``; keys it names that were not read are errors."""
    by_key = {s.record.key: s for s in samples}
    skipped_keys = {key for key, _ in skipped}
    out: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for split in SPLITS:
        for key in splits[split]:
            if key in by_key:
                out[split].append(by_key.pop(key))
            elif key not in skipped_keys:
                raise UserError(f"splits file lists an image that is not in the data: {key}")
    leftover = [key for key, sample in by_key.items() if not sample.record.is_good]
    if leftover:  # only possible with a reused splits file; unused good images are no loss
        message = f"{len(leftover)} defect images are in no split of the splits file (e.g. {leftover[0]})"
        if strict:
            raise UserError(message + " (--strict)")
        skipped += [(key, "not in the splits file") for key in leftover]
    return out


def split_warnings(by_split: dict[str, list[Sample]]) -> list[str]:
    """One line per split without images: ``yolo train`` needs val images, evaluation test images."""
    return [
        f"split '{split}' has no images (give it a larger fraction with --split, or add images)"
        for split in SPLITS
        if not by_split[split]
    ]


def convert(config: ConvertConfig) -> ConversionReport:
    """Runs a whole conversion and returns its report; raises UserError on bad input."""
    out = check_config(config)
    namer = class_namer(config.names_template, single_class=config.single_class)
    value_names = load_value_map(config.mask_values) if config.mask_values else None
    for category in config.categories:
        category_dir(config.root, category)  # unknown category: fail before reading anything
    records = scan(
        config.root, config.categories or list_categories(config.root), exclude_defects=config.exclude_defects
    )
    check_output_stems(records)
    names = class_names(records, namer=namer, value_names=value_names, single_class=config.single_class)
    samples, skipped, n_small = read_samples(
        records,
        namer=namer,
        value_names=value_names,
        min_area=config.min_area,
        strict=config.strict,
        progress=config.progress,
    )
    splits = load_splits(config.splits_file) if config.splits_file else _draw_splits(samples, config)
    by_split = _assign(samples, splits, skipped, config.strict)
    warnings = split_warnings(by_split)
    if warnings and config.strict:
        raise UserError(f"{warnings[0]} (--strict)")
    write = partial(
        write_dataset, samples_by_split=by_split, names=names, splits=splits, final_path=out, config=config
    )
    build_folder(out, write, overwrite=config.overwrite)
    report = ConversionReport(
        out=out,
        names=list(names),
        formats=tuple(config.formats),
        skipped=skipped,
        n_small=n_small,
        warnings=warnings,
    )
    _count(report, samples, by_split)
    return report


def _draw_splits(samples: list[Sample], config: ConvertConfig) -> Splits:
    """A fresh split of the samples read: defect images stratified by category/defect."""
    return make_splits(
        [(s.record.key, f"{s.record.category}/{s.record.defect}") for s in samples if not s.record.is_good],
        [s.record.key for s in samples if s.record.is_good],
        ratios=config.ratios,
        background_ratio=config.background_ratio,
        seed=config.seed,
    )


def _count(report: ConversionReport, samples: list[Sample], by_split: dict[str, list[Sample]]) -> None:
    """Fills the report's images, backgrounds and instances per split, and the unused good images."""
    for split in SPLITS:
        report.images[split] = len(by_split[split])
        report.backgrounds[split] = sum(not s.instances for s in by_split[split])
        report.instances[split] = Counter(i.class_name for s in by_split[split] for i in s.instances)
    report.unused_good = sum(s.record.is_good for s in samples) - sum(report.backgrounds.values())


def format_report(report: ConversionReport) -> str:
    """The summary table printed after a conversion."""
    header = f"{'':28s}" + "".join(f"{s:>8s}" for s in SPLITS) + f"{'total':>8s}"
    lines = [f"Wrote {', '.join(report.formats)} data set to {report.out}", header]

    def row(label: str, values: list[int]) -> str:
        return f"{label[:28]:28s}" + "".join(f"{v:>8d}" for v in values) + f"{sum(values):>8d}"

    lines.append(row("images", [report.images[s] for s in SPLITS]))
    lines.append(row("  backgrounds (good)", [report.backgrounds[s] for s in SPLITS]))
    lines.append(row("instances", [sum(report.instances[s].values()) for s in SPLITS]))
    for name in report.names:
        lines.append(row(f"  {name}", [report.instances[s][name] for s in SPLITS]))
    if report.n_small:
        lines.append(f"regions dropped by --min-area: {report.n_small}")
    if report.unused_good:
        lines.append(f"good images not used (--background-ratio): {report.unused_good}")
    if report.skipped:
        reasons = Counter(reason for _, reason in report.skipped)
        lines.append(f"skipped images: {len(report.skipped)}")
        for reason, count in reasons.most_common():
            example = next(key for key, r in report.skipped if r == reason)
            lines.append(f"  {count} x {reason} (e.g. {example})")
    lines += [f"warning: {warning}" for warning in report.warnings]
    if "yolo" in report.formats:
        lines.append(f"train with: yolo train data={report.out / 'data.yaml'}")
    return "\n".join(lines)
