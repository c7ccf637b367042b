"""MVTec-layout trees to a YOLO and/or COCO data set folder: the library call behind the CLIs.

Output layout (one folder can carry both formats)::

    out/images/{train,val,test}/<category>_<subset>_<defect>_<stem>.<ext>
    out/labels/{train,val,test}/<same stem>.txt          (YOLO)
    out/annotations/instances_{train,val,test}.json      (COCO)
    out/data.yaml                                         (YOLO)
    out/splits.json

The folder is built beside its target and renamed into place at the end, so a
failed or interrupted run leaves no half-written data set, and the input tree
is only ever read.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from common.errors import UserError
from common.images import image_size
from converters.coco import SEGMENTATION_MODES, CocoImage, build_coco
from converters.masks import DefectInstance, mask_to_instances, read_mask
from converters.mvtec import ImageRecord, category_dir, list_categories, scan
from converters.splits import SPLITS, Splits, load_splits, make_splits, save_splits
from converters.yolo import data_yaml, labels_text

FORMATS = ("yolo", "coco")
TASKS = ("detect", "segment")
LINK_MODES = ("symlink", "hardlink", "copy")
SINGLE_CLASS_NAME = "defect"
TEMPLATE_FIELDS = ("defect", "category", "defect_text", "category_text")


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


@dataclass(frozen=True)
class Sample:
    """A source image ready to write: its record, size and instances (empty for good images)."""

    record: ImageRecord
    width: int
    height: int
    instances: tuple[DefectInstance, ...] = ()


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


def class_namer(template: str, *, single_class: bool = False):
    """Returns ``name(category, defect) -> class name`` after checking the template's fields."""
    if single_class:
        return lambda category, defect: SINGLE_CLASS_NAME

    def name(category: str, defect: str) -> str:
        return template.format(
            defect=defect,
            category=category,
            defect_text=defect.replace("_", " "),
            category_text=category.replace("_", " "),
        )

    try:
        name("category", "defect")
    except (KeyError, IndexError, ValueError) as error:
        raise UserError(
            f"bad --names-template '{template}': {error!r}; fields: "
            + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
        ) from None
    return name


def load_value_map(path: str | Path) -> dict[int, str]:
    """Reads a mask-values JSON (``{"255": "contamination", "0": "good"}``) into ``{value: name}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read mask-values file {path}: {error}") from None
    if not isinstance(data, dict) or not data:
        raise UserError(f'mask-values file {path} must be a JSON object like {{"255": "scratch"}}')
    values: dict[int, str] = {}
    for key, name in data.items():
        try:
            value = int(key)
        except ValueError:
            raise UserError(
                f"mask-values file {path}: key '{key}' is not an integer pixel value"
            ) from None
        if value < 0 or not isinstance(name, str) or not name.strip():
            raise UserError(
                f"mask-values file {path}: entry '{key}': '{name}' needs a value >= 0 and a name"
            )
        values[value] = name.strip()
    values.setdefault(0, "good")
    return values


def check_config(config: ConvertConfig) -> None:
    """Rejects bad option values before any file is read."""
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
    out, root = Path(config.out).absolute(), Path(config.root).absolute()
    if out == root or root in out.parents:
        raise UserError(f"output folder {out} is inside the input tree {root}; choose another --out")
    if out.exists() and not config.overwrite:
        raise UserError(f"output folder exists: {out} (pass --overwrite to replace it)")


def read_samples(
    records: Sequence[ImageRecord],
    *,
    namer,
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
        mask = read_mask(record.mask)
        if mask.shape != (height, width):
            raise UserError(
                f"image/mask size mismatch: {record.image} is {width}x{height}, "
                f"{record.mask} is {mask.shape[1]}x{mask.shape[0]}"
            )
        names = (
            None if value_names is None else {v: namer(record.category, n) for v, n in value_names.items()}
        )
        try:
            found = mask_to_instances(
                mask,
                class_name=namer(record.category, record.defect),
                value_names=names,
                min_area=min_area,
            )
        except UserError as error:
            raise UserError(f"{record.mask}: {error}") from None
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


def class_names(
    records: Sequence[ImageRecord], *, namer, value_names: dict[int, str] | None, single_class: bool
) -> list[str]:
    """Sorted class names: the ids are their positions, stable for the same inputs."""
    if single_class:
        return [SINGLE_CLASS_NAME]
    categories = sorted({r.category for r in records})
    if value_names is not None:
        defects = {n for n in value_names.values() if n != "good"}
        return sorted({namer(c, d) for c in categories for d in defects})
    return sorted({namer(r.category, r.defect) for r in records if not r.is_good})


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
        (folder / "images" / split).mkdir(parents=True)
        if "yolo" in config.formats:
            (folder / "labels" / split).mkdir(parents=True)
        coco_images = []
        for image_id, sample in enumerate(samples_by_split[split], start=1):
            file_name = sample.record.output_stem + sample.record.image.suffix.lower()
            place_image(sample.record.image, folder / "images" / split / file_name, config.link)
            if "yolo" in config.formats:
                text = labels_text(
                    sample.instances,
                    class_ids=class_ids,
                    width=sample.width,
                    height=sample.height,
                    task=config.task,
                )
                (folder / "labels" / split / f"{sample.record.output_stem}.txt").write_text(text)
            coco_images.append(
                CocoImage(image_id, f"{split}/{file_name}", sample.width, sample.height, sample.instances)
            )
            bar.update()
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


def convert(config: ConvertConfig) -> ConversionReport:
    """Runs a whole conversion and returns its report; raises UserError on bad input."""
    check_config(config)
    namer = class_namer(config.names_template, single_class=config.single_class)
    value_names = load_value_map(config.mask_values) if config.mask_values else None
    for category in config.categories:
        category_dir(config.root, category)  # unknown category: fail before reading anything
    records = scan(
        config.root, config.categories or list_categories(config.root), exclude_defects=config.exclude_defects
    )
    samples, skipped, n_small = read_samples(
        records,
        namer=namer,
        value_names=value_names,
        min_area=config.min_area,
        strict=config.strict,
        progress=config.progress,
    )
    names = class_names(records, namer=namer, value_names=value_names, single_class=config.single_class)
    if config.splits_file:
        splits = load_splits(config.splits_file)
    else:
        splits = make_splits(
            [
                (s.record.key, f"{s.record.category}/{s.record.defect}")
                for s in samples
                if not s.record.is_good
            ],
            [s.record.key for s in samples if s.record.is_good],
            ratios=config.ratios,
            background_ratio=config.background_ratio,
            seed=config.seed,
        )
    by_split = _assign(samples, splits, skipped, config.strict)

    out = Path(config.out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        write_dataset(partial, by_split, names=names, splits=splits, final_path=out, config=config)
        _replace(partial, out, overwrite=config.overwrite)
    finally:
        if partial.exists():
            shutil.rmtree(partial)

    report = ConversionReport(
        out=out, names=list(names), formats=tuple(config.formats), skipped=skipped, n_small=n_small
    )
    for split in SPLITS:
        report.images[split] = len(by_split[split])
        report.backgrounds[split] = sum(not s.instances for s in by_split[split])
        report.instances[split] = Counter(i.class_name for s in by_split[split] for i in s.instances)
    report.unused_good = sum(s.record.is_good for s in samples) - sum(report.backgrounds.values())
    return report


def _replace(partial: Path, out: Path, *, overwrite: bool) -> None:
    """Moves the finished folder into place; an old one is removed only after the new one is there."""
    if not out.exists():
        partial.rename(out)
        return
    if not overwrite:
        raise UserError(f"output folder exists: {out} (pass --overwrite to replace it)")
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    out.rename(old)
    partial.rename(out)
    shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()


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
    if "yolo" in report.formats:
        lines.append(f"train with: yolo train data={report.out / 'data.yaml'}")
    return "\n".join(lines)
