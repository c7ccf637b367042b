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

import importlib.util
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from shlex import quote
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from common.errors import UnreadableFileError, UserError, few, read_advice
from common.exif import check_upright
from common.extras import install_hint
from common.folders import (
    LINE_BREAKS,
    build_folder,
    check_one_line_names,
    check_outside_tree,
    earlier_run_note,
)
from common.images import image_size_and_orientation
from common.io import file_exists, link_loop_text, recorded_path, sha256_file
from common.masks import (
    faint_masks_line,
    faint_values,
    is_lossy_mask,
    is_soft_mask,
    lossy_masks_line,
    mask_values,
    soft_masks_line,
)
from common.pixels import narrow_photo_warnings
from common.weights import weights_dir
from converters.classes import Namer, class_namer, class_names, load_value_map
from converters.coco import SEGMENTATION_MODES
from converters.dataset import Sample, check_output_folder, write_dataset
from converters.layouts import LAYOUTS, Layout, empty_folder_warnings, empty_type_folders, get_layout
from converters.layouts.base import collected_notes
from converters.layouts.folder import scan_folders
from converters.masks import (
    EMPTY_MASK_REASON,
    MaskInstances,
    mask_to_instances,
    merge_masks,
    no_defect_value_reason,
    palette_reading,
    region_file_instances,
)
from converters.mvtec import (
    GOOD,
    Exclusions,
    ImageRecord,
    categories_to_convert,
    category_dir,
    category_layout,
    check_output_stems,
    named_root,
    read_record_parts,
    scan,
    settle_empty_mask,
)
from converters.splits import (
    SPLITS,
    Splits,
    check_background_ratio,
    check_ratios,
    check_seed,
    load_splits,
    make_splits,
    split_sizes,
)
from converters.value_masks import written_by_page
from converters.yolo import check_image_side

FORMATS = ("yolo", "coco")
TASKS = ("detect", "segment")
LINK_MODES = ("symlink", "hardlink", "copy")

T = TypeVar("T")


@dataclass(frozen=True)
class ConvertConfig:
    """Every option of a conversion; the CLIs map their flags onto it one to one.

    Attributes:
        root: folder of categories (of any layout of :mod:`converters.layouts`), or one
            category folder.
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
        keep_splits: an earlier ``splits.json`` of this data (a missing file: none): the images
            it names keep their split, the others are drawn as a fresh split of them alone, so
            re-exporting a growing data set moves no image (``segmentation.annotate``'s export).
            For a drawn split only (not with ``splits_file`` or ``split_from_layout``).
        link: how images are placed: ``symlink``, ``hardlink`` or ``copy``.
        overwrite: replace an existing ``out``.
        strict: warnings (e.g. an empty mask on a defect image) become errors.
        progress: show progress bars.
        on_photo: called after each photo is read (``"reading"``) and written (``"writing"``) with the
            stage, the photos done and their number: a caller's progress (the annotation page's export);
            what it raises stops the conversion between photos, and the half-written data set is
            discarded (:func:`~common.folders.build_folder`: an earlier ``out`` stays as it was).
        layout: read every category as this layout; None detects each one.
        split_from_layout: put every image in the split its layout names (its
            ``validation/`` folder, VisA's split file) instead of drawing a split.
        images: a folder of defect images (the ``folder`` layout); ``root`` is then
            only where the output may not go.
        masks: the masks of ``images``, ``<stem>.png`` or ``<stem>_mask.png``.
        good: a folder of good images beside ``images``.
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
    keep_splits: Path | None = None
    link: str = "symlink"
    overwrite: bool = False
    strict: bool = False
    progress: bool = True
    on_photo: Callable[[str, int, int], object] | None = None
    layout: str | None = None
    split_from_layout: bool = False
    images: Path | None = None
    masks: Path | None = None
    good: Path | None = None


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
    layouts: dict[str, str] = field(default_factory=dict)
    unlabelled: int = 0
    notes: list[str] = field(default_factory=list)
    task: str = "detect"


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
    for i, category in enumerate(config.categories):
        if not LINE_BREAKS.isdisjoint(category):  # with --images no folder of that name is checked
            raise UserError(
                f"--category {category!r} holds a line break: give the name on one line (it names every "
                "output file, and the data set's image lists hold one name per line: they would read it "
                "as two)"
            )
        if not category or category in {".", ".."} or "/" in category or "\\" in category:
            raise UserError(f"--category '{category}' must be a folder name under --root, not a path")
        if category in config.categories[:i]:  # else: "two images map to one output name" for each image
            raise UserError(f"--category '{category}' is listed twice")
    check_ratios(config.ratios)
    check_background_ratio(config.background_ratio)
    check_seed(config.seed)
    _check_layout_options(config)
    if config.images is None:
        return check_output_folder(config.out, config.root, overwrite=config.overwrite)
    # the folder layout's input tree is its folders, not their parent: an --out beside them is fine
    inputs = [folder for folder in (config.images, config.masks, config.good) if folder is not None]
    for folder in inputs:  # each before the folder itself: --out of the --masks folder was 'exists, pass
        check_outside_tree(config.out, folder)  # --overwrite', as --images was its input tree checked alone
    return check_output_folder(config.out, inputs[0], overwrite=config.overwrite)


def _check_layout_options(config: ConvertConfig) -> None:
    """``--layout``, ``--split-from-layout`` and the folder layout's ``--images/--masks/--good``."""
    if config.layout is not None:
        get_layout(config.layout)
    if config.split_from_layout and config.splits_file:
        raise UserError("--split-from-layout and --splits both choose the split; give one of them")
    if config.images is None:
        if config.masks is not None or config.good is not None:
            raise UserError("--masks and --good go with --images (the folder layout)")
        return
    if config.layout not in (None, "folder"):
        raise UserError(f"--images reads the folder layout, not --layout {config.layout}")
    if len(config.categories) > 1:
        raise UserError(f"--images reads one category; got --category {' '.join(config.categories)}")
    check_separate_folders(images=config.images, masks=config.masks, good=config.good)


def check_separate_folders(*, images: Path, masks: Path | None, good: Path | None) -> None:
    """Refuses a ``--masks`` folder that is, holds or lies in ``--images`` or ``--good``.

    Each photo in it would be read as its own mask (a whole-image defect), or a mask as a photo.

    A ``--good`` folder that is the ``--images`` folder is refused too: every defect photo would
    also be a good background with no labels, often in another split than its labelled copy.

    Raises:
        UserError: naming both flags and the folder; naming the flag and the link, for a folder through a
            link loop (which ``Path.resolve`` raises for: a RuntimeError on 3.11, an OSError on 3.13).
    """
    for what, folder in (("--images", images), ("--masks", masks), ("--good", good)):
        loop = link_loop_text(folder, what=what) if folder is not None else None
        if loop:
            raise UserError(loop)
    if good is not None and good.resolve() == images.resolve():
        raise UserError(
            f"--good {good} is the --images folder: each defect photo would also be read as a good one "
            "(a background with no labels); give --good a folder of good photos only"
        )
    if masks is None:
        return
    mask_folder = masks.resolve()
    for flag, folder in (("--images", images), ("--good", good)):
        if folder is None:
            continue
        other = folder.resolve()
        if mask_folder == other:
            raise UserError(f"--masks {masks} is the {flag} folder: each photo would be read as its own mask")
        if other in mask_folder.parents or mask_folder in other.parents:
            inner, outer = ("--masks", flag) if other in mask_folder.parents else (flag, "--masks")
            raise UserError(
                f"--masks {masks} and {flag} {folder} are nested ({inner} inside {outer}): photos and masks "
                "would be read as each other; keep them in separate folders"
            )


def reported(
    items: Iterable[T], stage: str, total: int, on_photo: Callable[[str, int, int], object] | None
) -> Iterator[T]:
    """``items``, with ``on_photo(stage, done, total)`` called once the loop is done with each (its body
    run, a ``continue`` too), before the next is taken: between photos, never inside one.

    >>> list(reported("ab", "reading", 2, lambda *a: print(*a)))
    reading 1 2
    reading 2 2
    ['a', 'b']
    """
    for done, item in enumerate(items, start=1):
        yield item
        if on_photo is not None:
            on_photo(stage, done, total)


def read_samples(
    records: Sequence[ImageRecord],
    *,
    namer: Namer,
    value_names: dict[int, str] | None,
    min_area: int,
    strict: bool,
    progress: bool,
    on_photo: Callable[[str, int, int], object] | None = None,
) -> tuple[list[Sample], list[tuple[str, str]], int]:
    """Reads every image's size and every mask's instances.

    Returns:
        ``(samples, skipped, n_small)``: defect images whose mask yields no
        instance are skipped, with the reason.

    Raises:
        UserError: one photo is two images of the tree (:func:`check_one_photo_once`), or a photo or
            mask does not read.
    """
    check_one_photo_once(records)
    samples, skipped, n_small = [], [], 0
    maps: dict[tuple[tuple[int, str], ...], dict[int, str]] = {}
    bar = tqdm(records, desc="reading", unit="img", disable=not progress, file=sys.stderr)
    for record in reported(bar, "reading", len(records), on_photo):
        width, height, orientation = image_size_and_orientation(record.image)
        if record.is_good:
            if orientation in (5, 6, 7, 8):  # no labels to misplace: its size as read
                width, height = height, width
            samples.append(Sample(record, width, height))
            continue
        names = value_names
        if names is None and record.value_names:  # a value map that came with the data
            names = maps.setdefault(record.value_names, dict(record.value_names))
        if not record.empty_mask_is_good:  # before the sizes: a mask drawn on the turned photo is turned too
            check_upright(record.image, orientation)
        parts = read_record_parts(record, (height, width), value_coded=names is not None)
        mask = parts[0] if len(parts) == 1 else merge_masks(parts)
        record = settle_empty_mask(record, mask)
        if record.is_good:  # KolektorSDD, SDD2: an empty mask marks a good image
            samples.append(Sample(record, width, height))
            continue
        check_upright(record.image, orientation)  # KolektorSDD, SDD2: a defect image once its mask is read
        own_map = str(record.value_map or "the layout's value map") if names is not value_names else None
        found = _mask_instances(record, parts, mask, namer, names, min_area, map_name=own_map)
        n_small += found.n_small
        if not found.instances:
            reason = skip_reason(found, mask, min_area=min_area, own_map=own_map)
            if strict:
                raise UserError(f"{reason} on a defect image: {record.mask} (--strict)")
            skipped.append((record.key, reason))
            continue
        samples.append(
            defect_sample(record, (width, height), found, parts, mask, value_coded=names is not None)
        )
    return samples, skipped, n_small


def check_yolo_image_sides(by_split: Mapping[str, Sequence[Sample]]) -> None:
    """Refuses a photo that the YOLO set holds and ultralytics would drop for its size
    (:func:`converters.yolo.check_image_side`): its defect photos and the good ones the split drew as
    backgrounds; a good photo left unused, or a defect photo skipped, is never written, so passes.

    Raises:
        UserError: naming the photo, its size and its kind.
    """
    for samples in by_split.values():
        for sample in samples:
            good = not sample.instances
            check_image_side(sample.record.image, width=sample.width, height=sample.height, good=good)


def check_one_photo_once(records: Sequence[ImageRecord]) -> None:
    """Refuses a source tree holding one photo under two names (its path resolved: a link to another photo
    of the tree, a category folder linked twice), naming both: it was converted twice, into two splits
    perhaps (a link ``test/good/003.png`` to ``train/good/003.png``), and a model scored on a photo it
    trained on, told as a copy (:func:`copied_photo_warnings`) at best. MVTec AD never holds one."""
    seen: dict[str, Path] = {}
    for record in records:
        image = Path(record.image)
        first = seen.setdefault(os.path.realpath(image), image)
        if first != image:
            raise UserError(
                f"{image} and {first} are one photo ({os.path.realpath(image)}, links followed): it would be "
                "converted twice, perhaps into two splits, a model then scored on a photo it trained on; "
                "remove the link"
            )


def skip_reason(found: MaskInstances, mask: np.ndarray, *, min_area: int, own_map: str | None) -> str:
    """Why a defect image is skipped whose mask (``mask``: (H, W), merged) yields no instance (``found``);
    ``own_map``: the value map that came with the data, if it was used."""
    if found.n_small:
        return f"all {found.n_small} regions below --min-area {min_area}"
    if mask.any():  # not empty: the value map names every value it holds good
        return no_defect_value_reason(own_map or "the --mask-values map")
    return EMPTY_MASK_REASON


def defect_sample(
    record: ImageRecord,
    size: tuple[int, int],
    found: MaskInstances,
    parts: Sequence[np.ndarray],
    mask: np.ndarray,
    *,
    value_coded: bool,
) -> Sample:
    """The sample of a defect image of ``size`` (width, height in pixels): its instances (``found``), its
    region files whose mask of ``parts`` (one per file) holds no defect pixel (:func:`empty_region_warnings`)
    and, where no value map names the values of its merged ``mask`` (``value_coded`` False), those values
    as the mask warnings read them."""
    values = None if value_coded else mask_values(mask)  # a value map names every value
    width, height = size
    empty = (
        [path for path, part in zip(record.masks, parts, strict=True) if not part.any()]
        if record.masks
        else []
    )
    return Sample(
        record,
        width,
        height,
        tuple(found.instances),
        defect_values=0 if values is None else len(values),
        faint=() if values is None else tuple(faint_values(mask)),
        largest=0 if values is None else int(values[-1]),
        empty_regions=tuple(empty),
    )


def _mask_instances(
    record: ImageRecord,
    parts: Sequence[np.ndarray],
    mask: np.ndarray,
    namer: Namer,
    value_names: dict[int, str] | None,
    min_area: int,
    *,
    map_name: str | None = None,
) -> MaskInstances:
    """The instances of a defect image: of its mask ``(H, W)``, or where its record lists region files
    (``record.masks``, MVTec LOCO) one per file and value of ``parts``, that file's ``(H, W)``
    (:func:`converters.masks.region_file_instances`); ``map_name``: the layout's map file, if used."""
    names = None
    if value_names is not None:  # a value the map calls good stays good (background), whatever the namer
        names = {v: n if n == GOOD else namer(record.category, n) for v, n in value_names.items()}
    where_map = {"map_name": map_name} if map_name else {}

    def instances(path: Path | None, array: np.ndarray) -> MaskInstances:
        try:
            return mask_to_instances(
                array,
                class_name=namer(record.category, record.defect),
                value_names=names,
                min_area=min_area,
                **where_map,
            )
        except UserError as error:
            how = palette_reading(path) if str(error).startswith("mask value ") else ""
            raise UserError(f"{path}: {error}{how}") from None

    if not record.masks:
        return instances(record.mask, mask)
    return region_file_instances(
        [instances(path, part) for path, part in zip(record.masks, parts, strict=True)]
    )


def _assign(
    samples: list[Sample],
    splits: Splits,
    skipped: list[tuple[str, str]],
    strict: bool,
    *,
    source: str | Path = "",
    excluded: Sequence[str] = (),
):
    """Samples per split, following ``splits`` (read from ``source``, named in errors); keys it names that
    were not read are errors, but for those of an ``excluded`` defect type (skipped, with the reason)."""
    by_key = {s.record.key: s for s in samples}
    skipped_keys = {key for key, _ in skipped}
    out: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for split in SPLITS:
        for key in splits[split]:
            if key in by_key:
                out[split].append(by_key.pop(key))
            elif _key_defect(key) in excluded:
                skipped.append((key, "--exclude-defect"))  # reusing a split to leave a type out, an ablation
            elif key not in skipped_keys:
                raise UserError(f"splits file {source} lists an image that is not in the data: {key}")
    leftover = [key for key, sample in by_key.items() if not sample.record.is_good]
    if leftover:  # only possible with a reused splits file; unused good images are no loss
        message = (
            f"{len(leftover)} defect images are in no split of the splits file {source} (e.g. {leftover[0]})"
        )
        if strict:
            raise UserError(message + " (--strict)")
        skipped += [(key, "not in the splits file") for key in leftover]
    return out


def _key_defect(key: str) -> str | None:
    """The defect of a ``category/subset/defect/stem`` key; None for a hand-made key of fewer parts.

    >>> _key_defect("widget/test/hole/000"), _key_defect("widget/test")
    ('hole', None)
    """
    parts = key.split("/")
    return parts[2] if len(parts) > 2 else None


def split_warnings(by_split: dict[str, list[Sample]], config: ConvertConfig | None = None) -> list[str]:
    """One line per split without images (``yolo train`` needs val images, evaluation test images), and
    one for a train split of good images only (MVTec AD's own ``train/`` with ``--split-from-layout``).

    The advice follows where the split came from: ``--split`` fractions only shape a drawn split, and the
    annotation page's export (an earlier split kept, :func:`_on_page`) has no ``--split``; an earlier split
    kept elsewhere, or ``mvtec2yolo`` run by hand on the page's tree, has the converters' advice.
    """
    if config is not None and config.split_from_layout:
        hint = "the layout names no images for it; drop --split-from-layout to draw a split, or add images"
    elif config is not None and config.splits_file:
        hint = f"the splits file {config.splits_file} lists none there"
    elif config is not None and config.keep_splits is not None and _on_page(config):  # no --split there
        hint = "annotate more photos: new ones fill the splits short of their share"
    else:
        hint = "give it a larger fraction with --split, or add images"
    warnings = [f"split '{split}' has no images ({hint})" for split in SPLITS if not by_split[split]]
    if by_split["train"] and not any(sample.instances for sample in by_split["train"]):
        source = "the layout puts" if config is not None and config.split_from_layout else "the split puts"
        warnings.append(
            f"split 'train' has no defect instance ({source} only good images there): a model trained on it "
            "learns no defect; draw a split instead, or move defect images into train"
        )
    return warnings


def unused_category_notes(
    samples: Sequence[Sample], by_split: dict[str, list[Sample]], skipped: Sequence[tuple[str, str]] = ()
) -> list[str]:
    """One line per category of which no image is in the data set: its good images alone were read (or
    its defect images all skipped: the line says so, with the commonest reason, the summary's 'skipped
    images' lines the rest), and a drawn split takes a category's backgrounds per defect image of it
    (``--background-ratio``), so none of them; the summary listed its layout as if it was converted.
    """
    held = {sample.record.category for split in by_split.values() for sample in split}
    goods = Counter(sample.record.category for sample in samples if sample.record.is_good)
    skips: dict[str, list[str]] = {}
    for key, reason in skipped:
        skips.setdefault(key.split("/")[0], []).append(reason)
    notes = []
    for category, count in sorted(goods.items()):
        if category in held:
            continue
        goods_left = f"none of its {count} good image{'' if count == 1 else 's'} is in the data set"
        reasons = Counter(skips.get(category, ()))
        if reasons:
            total = sum(reasons.values())
            reason, _ = reasons.most_common(1)[0]
            what = (
                f"has no defect image left: its {total} defect image{'' if total == 1 else 's'} "
                f"{'was' if total == 1 else 'were all'} skipped ({reason}"
                f"{'' if len(reasons) == 1 else ', and others'}: see 'skipped images')"
            )
        else:
            what = "has no defect image"
        notes.append(
            f"category '{category}' {what}, so {goods_left} (--background-ratio draws good images per "
            "defect image of their category)"
        )
    return notes


#: What a class missing from a split costs, for :func:`missing_class_notes`.
_MISSING_CLASS_COST = {
    "train": "a model trained on it never sees it",
    "val": "validation does not measure it",
    "test": "the test scores leave it out",
}


def missing_class_notes(
    by_split: dict[str, list[Sample]], names: Sequence[str], config: ConvertConfig
) -> list[str]:
    """One line per class a drawn split left out of a split, naming its image count and those splits.

    A defect type of two images cannot reach train, val and test: the summary showed a 0 in its row
    alone. A split the user left empty (``--split 1 1 0``) or without images at all (a warning says so),
    and a split the user gave (``--splits``, ``--split-from-layout``), are not noted. The annotation
    page's export (an earlier split kept, :func:`_on_page`) has no ``--split``: its lines name none.

    The split is drawn per defect folder (``category/defect``): a class of a mask-values map shares
    its folder with other classes, a class of ``--names-template '{defect}'`` spans categories, and
    either can miss a split its image count alone would reach; the note then says so, not "too few".
    """
    if config.splits_file or config.split_from_layout:
        return []
    ratios = dict(zip(SPLITS, check_ratios(config.ratios), strict=True))
    # the annotation page's export: earlier images stay where they were
    earlier = set(kept_splits(config, [s for samples in by_split.values() for s in samples]))
    images = {name: Counter() for name in names}
    folders: dict[str, set[str]] = {name: set() for name in names}
    kept: set[str] = set()  # classes with an image kept where the earlier split put it
    for split, samples in by_split.items():
        for sample in samples:
            for name in {instance.class_name for instance in sample.instances}:
                images[name][split] += 1
                folders[name].add(f"{sample.record.category}/{sample.record.defect}")
                if sample.record.key in earlier:
                    kept.add(name)
    fractions = " ".join(f"{ratio:g}" for ratio in ratios.values())
    page = config.keep_splits is not None and _on_page(config)  # the page's export: it has no --split
    at = f"at the export's split {fractions}" if page else f"at --split {fractions}"
    notes = []
    for name, counts in images.items():
        missing = [split for split in SPLITS if ratios[split] > 0 and by_split[split] and not counts[split]]
        if missing and counts:
            total = sum(counts.values())
            alone = dict(zip(SPLITS, split_sizes(total, list(ratios.values())), strict=True))
            reason = f"too few images to reach every split {at}"
            if name in kept:  # then count is not the reason (a class all new is drawn as any)
                new = "new ones fill the splits short of their share" if page else f"new ones drawn {at}"
                reason = f"its images kept where {config.keep_splits} put them, {new}"
            elif any(alone[split] for split in missing):
                drawn = few(sorted(folders[name]))
                reason = f"the split is drawn per defect folder ({drawn}), not per class, {at}"
            notes.append(
                f"class '{name}' ({total} image{'s' if total != 1 else ''}) has none in "
                f"{' or '.join(missing)}: {reason}; "
                + "; ".join(_MISSING_CLASS_COST[split] for split in missing)
            )
    return notes


def lossy_mask_warnings(masks: Sequence[Path]) -> list[str]:
    """One line when masks are JPEG files: their compression noise becomes defect pixels and specks."""
    line = lossy_masks_line(
        [mask for mask in masks if is_lossy_mask(mask)],
        effect="outlines grow and specks become extra instances",
        remedy="save the masks as PNG (or drop the specks with --min-area)",
    )
    return [line] if line else []


def soft_mask_warnings(samples: Sequence[Sample]) -> list[str]:
    """One line when masks (not JPEG files: :func:`lossy_mask_warnings` names those) hold many values.

    A 0/255 mask that was anti-aliased, or saved once as JPEG and then as PNG, has soft edges and
    faint noise; every value > 0 is defect, so outlines grow and the noise becomes instances (on
    hazelnut_toy's photos at 256 px with such masks: 139 instances instead of 31), unseen by the
    suffix check. VisA's mask values are defect-type ids (1 .. 9 per object), so many are no soft edge
    there. The rule and the wording are :mod:`common.masks`', which ``anomaly.evaluate`` shares.
    """
    soft = [
        (sample.record.mask, sample.defect_values)
        for sample in samples
        if is_soft_mask(sample.defect_values)
        and sample.record.layout != "visa"  # VisA's values are defect-type ids: many are no soft edge
        and not any(is_lossy_mask(mask) for mask in sample.record.mask_files)
    ]
    line = soft_masks_line(
        soft,
        effect="outlines grow and faint pixels become extra instances",
        remedy="save them as 0/255 (or give the values' classes with --mask-values)",
    )
    return [line] if line else []


def empty_region_warnings(samples: Sequence[Sample]) -> list[str]:
    """One line when region files (MVTec LOCO's: one file per defect region) hold no defect pixel beside
    others of their image that do, naming the first: its region was left out without a word, the image
    converted with one instance fewer (an image all of whose files are empty is skipped, and said so)."""
    empty = [path for sample in samples for path in sample.empty_regions]
    if not empty:
        return []
    if len(empty) == 1:
        files, its, it, file = "1 region file holds", "its", "it", "the file"
    else:
        files, its, it, file = f"{len(empty)} region files hold", "their", "each", "the files"
    return [
        f"{files} no defect pixel ({few(empty)}), beside other region files of {its} image: no instance is "
        f"made of {it}, the image converted with the others; draw {its} region or remove {file}"
    ]


def faint_mask_warnings(samples: Sequence[Sample]) -> list[str]:
    """One line when masks hold faint values beside their largest (:func:`common.masks.faint_values`).

    A 0/255 mask saved once as JPEG at quality 98 to 100, then as PNG, holds 3 to 7 distinct values,
    below :func:`soft_mask_warnings`' count, yet its faint ones are defect: on hazelnut_toy's masks at
    quality 100 the defects grew 1-2% and each mask gained 32-107 specks of its own (1-11% and 92-250 at 98).
    Masks named by the other warnings (JPEG files, soft masks) and VisA's are left to them.
    """
    faint = [
        (sample.record.mask, sample.faint, sample.largest)
        for sample in samples
        if sample.faint
        and not is_soft_mask(sample.defect_values)
        and sample.record.layout != "visa"  # VisA's values are defect-type ids
        and not any(is_lossy_mask(mask) for mask in sample.record.mask_files)
    ]
    line = faint_masks_line(
        faint,
        effect="outlines grow and faint pixels become extra instances",
        # JPEG's ringing, not classes: a value map would keep every speck as an instance of its own
        remedy=(
            "save them as 0/255 again, 255 above half their largest value "
            "(or drop the specks with --min-area)"
        ),
    )
    return [line] if line else []


#: Share of its image above which a mask's defect is taken for an inverted mask's background.
INVERTED_MASK_SHARE = 0.9


def inverted_mask_warnings(samples: Sequence[Sample], *, drawn: bool = False) -> list[str]:
    """One line when masks mark nearly all of their image as defect, as inverted masks do.

    A mask drawn black on white (defect 0, background 255) is read as it is stored: every value > 0 is
    defect, so the background becomes one instance around the whole photo, with the real defects as
    its holes, and nothing else says so. ``drawn``: the masks were drawn on the annotation page (its
    export, or its tree converted by hand: :func:`_on_page`), which writes them itself: no file is
    inverted, so the line asks to check the photo there.
    """
    shares = ((s, sum(i.area for i in s.instances) / (s.width * s.height)) for s in samples if s.instances)
    inverted = [(sample, share) for sample, share in shares if share > INVERTED_MASK_SHARE]
    if not inverted:
        return []
    masks = "1 mask marks" if len(inverted) == 1 else f"{len(inverted)} masks mark"
    first, share = inverted[0]
    if drawn:  # the page wrote the masks: 'save the defects non-zero on 0' fits no file here
        return [
            f"{masks} more than {INVERTED_MASK_SHARE:.0%} of the photo as defect, e.g. "
            f"{first.record.image.name} ({share:.0%}): check it on the page, a mask of the background "
            "around a defect is exported as one defect (delete it and click the defect itself)"
        ]
    return [
        f"{masks} more than {INVERTED_MASK_SHARE:.0%} of the image as defect, e.g. {first.record.mask} "
        f"({share:.0%}), as an inverted mask (defect black on white) does, and every value > 0 "
        "is defect, so the background becomes the instance; save the defects non-zero on 0"
    ]


def convert(config: ConvertConfig) -> ConversionReport:
    """Runs a whole conversion and returns its report; raises UserError on bad input."""
    out = check_config(config)
    # a Ctrl-C said 'interrupted' alone: the earlier data set left in --out (--overwrite) read as this one
    with earlier_run_note(out, until="the conversion is done"):
        return _convert(config, out)


def _convert(config: ConvertConfig, out: Path) -> ConversionReport:
    """:func:`convert`'s work once ``config`` is checked: reads, splits and writes the data set ``out``."""
    namer = class_namer(config.names_template, single_class=config.single_class)
    value_names = load_value_map(config.mask_values) if config.mask_values else None
    if config.splits_file:  # a wrong file is refused before every photo and mask is read, not after
        load_splits(config.splits_file)
    with collected_notes() as layout_notes:  # into the summary, or onto stderr before an error, not lost
        records, layouts, unlabelled = labelled_records(config)
        check_out_apart_from_inputs(out, records)
        samples, skipped, n_small = read_samples(
            records,
            namer=namer,
            value_names=value_names,
            min_area=config.min_area,
            strict=config.strict,
            progress=config.progress,
            on_photo=config.on_photo,
        )
        names = dataset_class_names(
            records, samples, skipped, namer=namer, value_names=value_names, config=config, notes=layout_notes
        )
        splits, by_split = split_samples(samples, skipped, config)
        if "yolo" in config.formats:
            check_yolo_image_sides(by_split)
        warnings = conversion_warnings(samples, by_split, config)
        if warnings and config.strict:
            raise UserError(f"{warnings[0]} (--strict)")
        # before the write: the page's keep_splits is --out's own splits.json, which the write replaces
        missing = missing_class_notes(by_split, names, config)
        # data.yaml's path: as given (a linked --out keeps its name), not ``out`` resolved through the link
        final_path = Path(recorded_path(config.out))
        write = partial(
            write_dataset,
            samples_by_split=by_split,
            names=names,
            splits=splits,
            final_path=final_path,
            config=config,
        )
        build_folder(out, write, overwrite=config.overwrite)
    report = ConversionReport(
        out=out,
        names=list(names),
        formats=tuple(config.formats),
        task=config.task,
        skipped=skipped,
        n_small=n_small,
        warnings=warnings,
        layouts={category: layout.title for category, layout in layouts.items()},
        unlabelled=unlabelled,
        notes=layout_notes + missing + unused_category_notes(samples, by_split, skipped),
    )
    _count(report, samples, by_split)
    return report


def dataset_class_names(
    records: list[ImageRecord],
    samples: list[Sample],
    skipped: list[tuple[str, str]],
    *,
    namer: Namer,
    value_names: dict[int, str] | None,
    config: ConvertConfig,
    notes: Sequence[str] = (),
) -> list[str]:
    """The data set's class names (:func:`converters.classes.class_names`), once a defect instance is left.

    ``notes``: the layouts' notes; the first is said with the error where no defect image is left (an
    MVTec AD 2 category without its test_public/ reads as MVTec AD, its other folders left out).

    Raises:
        UserError: every defect image skipped, or no class or no defect image left: an empty data set,
            which ``yolo train`` and every evaluation would fail on (exit 0 otherwise).
    """
    if skipped and not any(sample.instances for sample in samples):
        key, reason = skipped[0]
        raise UserError(
            f"no defect instance left to convert under {config.root}: every defect image was skipped "
            f"({len(skipped)}; e.g. {key}: {reason})"
        )
    named = [r for r in records if not r.empty_mask_is_good] + [s.record for s in samples]
    names = class_names(named, namer=namer, value_names=value_names, single_class=config.single_class)
    # a --mask-values map names classes even without a defect image
    if not names or not any(sample.instances for sample in samples):
        raise UserError(no_defect_text(records, config=config, notes=notes))
    return names


def no_defect_text(
    records: Sequence[ImageRecord], *, config: ConvertConfig, notes: Sequence[str] = ()
) -> str:
    """Why no defect image is left of ``records``, in one line: the empty defect-type folders named
    (:func:`converters.layouts.empty_type_folders`), else every defect type excluded or without a mask.
    ``notes``: the layouts' notes, the first said last.

    Every defect folder empty (``test/crack/`` made before its photos were copied) was guessed to be
    excluded or without a mask, and its ``empty folder`` warning never said: the error came first.
    """
    why = f"; {notes[0]}" if notes else ""
    head = f"no defect image left to convert under {config.root} ({len(records)} good images"
    empty = [
        photos
        for folder, photos, layout, _ in empty_type_folders(records)
        if folder.name != layout.good_folder
    ]
    if not empty:
        return f"{head}; every defect type excluded or without a mask?){why}"
    folders = f"{empty[0]} is an empty folder" if len(empty) == 1 else f"{few(empty)} are empty folders"
    if config.exclude_defects or any(not record.is_good for record in records):
        return f"{head}; {folders}; every other defect type excluded or without a mask?){why}"
    return f"{head}): {folders}: add their photos{why}"


def labelled_records(config: ConvertConfig) -> tuple[list[ImageRecord], dict[str, Layout], int]:
    """The records to convert, the layout of each category, and how many unlabelled images were left out.

    Raises:
        UserError: as :func:`read_records`; no labelled image; two images of one output name.
    """
    records, layouts = read_records(config)
    unlabelled = sum(r.unlabelled for r in records)
    records = [r for r in records if not r.unlabelled]
    if not records:
        raise UserError(f"no labelled images to convert under {config.root} ({unlabelled} unlabelled)")
    check_output_stems(records)
    return records, layouts, unlabelled


def check_out_apart_from_inputs(out: Path, records: Sequence[ImageRecord]) -> None:
    """Refuses an ``out`` (resolved) that is, lies in or holds a folder a photo or mask was read from, as
    :func:`converters.dataset.check_output_folder` refuses one in the input tree: a folder linked into the
    tree (``test/crack -> /data/crack``) lies outside it, and ``--out root/test/crack/out`` wrote the data set
    into the linked photo folder. A photo that is itself a link (``test/crack/000.png -> /raw/a.png``) is
    read from its link's folder, which is listed: ``/raw`` is not, so only an ``out`` that is or holds it is
    refused (``--out /raw/yolo`` beside the photos writes no input).

    Each folder is resolved once, not each file (a resolve is a look at each folder on the path).

    Raises:
        UserError: naming ``out``, the folder and one of its files.
    """
    listed: dict[Path, Path] = {}  # a folder as read -> resolved
    read_from: dict[Path, tuple[Path, bool]] = {}  # a resolved folder -> a file read from it, whether listed
    for record in records:
        for path in (Path(record.image), *map(Path, record.mask_files)):
            if (folder := listed.get(path.parent)) is None:
                folder = listed[path.parent] = path.parent.resolve()
            if folder not in read_from or not read_from[folder][1]:
                read_from[folder] = (path, True)
            if path.is_symlink():
                read_from.setdefault(path.resolve().parent, (path, False))
    out_parents = set(out.parents)
    for folder, (path, is_listed) in read_from.items():
        inside = is_listed and folder in out_parents
        if out == folder or inside or out in folder.parents:
            where = "holds" if out in folder.parents else "is inside"
            raise UserError(
                f"output folder {out} {where} {folder}, which the input files are read from (e.g. "
                f"{path}, through a link); choose another --out"
            )


def split_samples(
    samples: list[Sample], skipped: list[tuple[str, str]], config: ConvertConfig
) -> tuple[Splits, dict[str, list[Sample]]]:
    """The split (:func:`choose_splits`) as written, and the samples of each split; adds to ``skipped``
    what a reused split leaves out (see :func:`_assign`)."""
    splits = choose_splits(samples, config)
    by_split = _assign(
        samples,
        splits,
        skipped,
        config.strict,
        source=config.splits_file or "",
        excluded=Exclusions(config.exclude_defects),  # in NFC, as the layouts compare
    )
    if config.splits_file and not any(sample.instances for split in SPLITS for sample in by_split[split]):
        # a reused file listing none of them ({"train": [], ...}): an empty data set was written, exit 0
        defect = next(sample.record.key for sample in samples if sample.instances)
        raise UserError(
            f"the splits file {config.splits_file} places no defect image read under {config.root} "
            f"(e.g. {defect} is in no split); drop --splits to draw a split"
        )
    # splits.json lists what was written, as a drawn split does: a reused file's skipped keys (an empty
    # mask, --exclude-defect) left it listing images no split holds, and converters.validate failed
    return replace(splits, **{split: [s.record.key for s in by_split[split]] for split in SPLITS}), by_split


def choose_splits(samples: list[Sample], config: ConvertConfig) -> Splits:
    """The split of the samples: ``--splits``' file, the layout's own, or a fresh draw."""
    if config.splits_file:
        return load_splits(config.splits_file)
    if config.split_from_layout:
        return layout_splits(samples, config)
    return _draw_splits(samples, config)


def copied_photo_warnings(
    by_split: Mapping[str, Sequence[Sample]], digest: Callable[[Path], str] | None = None
) -> list[str]:
    """One line when a photo in one split is a byte-for-byte copy of one in another (a file copied
    under another name; one file under two names is refused, :func:`check_one_photo_once`): a model is
    then scored on a photo it trained on.
    It counts the photos that are such copies and the images they hold.

    Only photos of one size in bytes are hashed, so a data set without copies costs a ``stat`` a photo.
    ``digest``: a photo's hash (:func:`photo_digests`, shared with :func:`good_copy_warnings`).
    """
    digest = digest or photo_digests()
    by_size: dict[int, list[tuple[str, Path]]] = defaultdict(list)
    for split, samples in by_split.items():
        for sample in samples:
            by_size[Path(sample.record.image).stat().st_size].append((split, Path(sample.record.image)))
    by_hash: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for photos in by_size.values():
        if len({split for split, _ in photos}) > 1:  # copies within one split score nothing they trained on
            for split, path in photos:
                by_hash[digest(path)].append((split, path))
    copies = [photos for photos in by_hash.values() if len({split for split, _ in photos}) > 1]
    if not copies:
        return []
    split_a, a = copies[0][0]
    split_b, b = next(photo for photo in copies[0] if photo[0] != split_a)
    # every photo of a content found in two splits, and the contents: 301 copies of one photo said '1 photo'
    photos = sum(len(group) for group in copies)
    images = "1 image" if len(copies) == 1 else f"{len(copies)} images"
    return [
        f"{photos} photos are byte-for-byte copies across splits ({images}), e.g. {a} ({split_a}) and {b} "
        f"({split_b}): a model would be scored on photos it trained on; remove the copies"
    ]


def good_copy_warnings(
    by_split: Mapping[str, Sequence[Sample]], digest: Callable[[Path], str] | None = None
) -> list[str]:
    """One line when a good photo the set holds is a byte-for-byte copy of one of its defect photos (all
    photos copied into ``--good`` too), in any split: the one photo is trained on as defect-free and with
    its defects, so the model learns the defect as background. :func:`copied_photo_warnings` names copies
    across splits only. Only photos of a size in bytes that a good and a defect photo share are hashed,
    each once with :func:`copied_photo_warnings`'s ``digest``.
    """
    digest = digest or photo_digests()
    by_size: dict[int, list[tuple[str, Sample]]] = defaultdict(list)
    for split, samples in by_split.items():
        for sample in samples:
            by_size[Path(sample.record.image).stat().st_size].append((split, sample))
    by_hash: dict[str, list[tuple[str, Sample]]] = defaultdict(list)
    for photos in by_size.values():
        if len({sample.record.is_good for _, sample in photos}) > 1:
            for split, sample in photos:
                by_hash[digest(Path(sample.record.image))].append((split, sample))
    mixed = [photos for photos in by_hash.values() if len({s.record.is_good for _, s in photos}) > 1]
    if not mixed:
        return []
    goods = [(split, s) for photos in mixed for split, s in photos if s.record.is_good]
    split_g, good = goods[0]
    split_d, defect = next((split, s) for split, s in mixed[0] if not s.record.is_good)
    copies = (
        "1 good photo is a byte-for-byte copy" if len(goods) == 1 else f"{len(goods)} good photos are copies"
    )
    return [
        f"{copies} of a defect photo, e.g. {good.record.image} ({split_g}) of {defect.record.image} "
        f"({split_d}): the model is trained on that photo as defect-free too; remove the copies from the "
        "good photos"
    ]


def photo_digests() -> Callable[[Path], str]:
    """A photo's ``sha256_file``, each path read once: :mod:`common.io` remembers only files settled for
    2 s, so a set written just before (an export, ``converters.synthetic``) was read whole twice, by
    :func:`copied_photo_warnings` and :func:`good_copy_warnings`."""
    known: dict[Path, str] = {}

    def digest(path: Path) -> str:
        if path not in known:
            known[path] = sha256_file(path, what="photo")
        return known[path]

    return digest


def conversion_warnings(
    samples: list[Sample], by_split: dict[str, list[Sample]], config: ConvertConfig
) -> list[str]:
    """Every ``warning:`` of a conversion: empty or defect-free splits, empty defect folders, photos
    copied across splits, good copies of defect photos, narrow photos, JPEG masks, soft masks, faint
    masks, empty region files, inverted masks."""
    return (
        split_warnings(by_split, config)
        + empty_folder_warnings(
            [s.record for s in samples], missing="the data set holds no {photos} of category '{category}'"
        )
        + copied_photo_warnings(by_split, digest := photo_digests())
        + good_copy_warnings(by_split, digest)
        + narrow_photo_warnings([s.record.image for s in samples])
        + lossy_mask_warnings([mask for s in samples for mask in s.record.mask_files])
        + soft_mask_warnings(samples)
        + faint_mask_warnings(samples)
        + empty_region_warnings(samples)
        + inverted_mask_warnings(samples, drawn=_on_page(config))  # its export, or a run by hand on its tree
    )


def _on_page(config: ConvertConfig) -> bool:
    """Whether ``config`` converts a tree the annotation page wrote (:func:`written_by_page`): its
    export, or ``mvtec2yolo --root`` by hand; an earlier split kept (``keep_splits``) is not the page."""
    return config.images is None and written_by_page(config.root)


def read_records(config: ConvertConfig) -> tuple[list[ImageRecord], dict[str, Layout]]:
    """Every record of the conversion (unlabelled ones too) and the layout of each category.

    Raises:
        UserError: an unknown or ambiguous category, or any pairing error, before anything is written.
    """
    if config.images is not None:
        # the folder holding --images names it
        holder = named_root(config.images, flag="--images").absolute().parent
        category = config.categories[0] if config.categories else holder.name
        if not config.categories:  # it names every output file, as a category folder's name does
            check_one_line_names(holder, below=holder.parent)
        excluded = Exclusions(config.exclude_defects)
        records = scan_folders(config.images, config.masks, config.good, category=category, excluded=excluded)
        excluded.check_matched(records, config.images)
        if not records:
            raise UserError(f"no images in {config.images}" + (f" or {config.good}" if config.good else ""))
        return records, {category: LAYOUTS["folder"]}
    for category in config.categories:  # unknown category: fail before reading anything
        category_dir(config.root, category, layout=config.layout)
    names = list(config.categories) or categories_to_convert(config.root, layout=config.layout)
    records = scan(
        config.root,
        names,
        exclude_defects=config.exclude_defects,
        layout=config.layout,
        include_unlabelled=True,
        resolve_empty_masks=False,  # settled in read_samples, reading each mask once
    )
    return records, {name: category_layout(config.root, name, layout=config.layout) for name in names}


def layout_splits(samples: list[Sample], config: ConvertConfig) -> Splits:
    """The split each layout names for its images (``--split-from-layout``): all images, no draw.

    Raises:
        UserError: an image its layout places in no split (MVTec-free folders, VisA
            without its split file).
    """
    for sample in samples:
        if sample.record.layout_split is None:
            title = LAYOUTS[sample.record.layout].title
            raise UserError(
                f"--split-from-layout: the {title} layout names no split for {sample.record.image} "
                "(it has no split folders, and no split file lists it); drop --split-from-layout"
            )
    assigned = {
        split: sorted(s.record.key for s in samples if s.record.layout_split == split) for split in SPLITS
    }
    return Splits(**assigned, drawn=False)


def kept_splits(config: ConvertConfig, samples: Sequence[Sample]) -> dict[str, str]:
    """The split ``config.keep_splits`` put each of ``samples`` in, by record key (none without one).

    An image moved to another folder since (an annotated photo given a second class goes from
    ``test/scratch`` to ``test/combined``) has another key: it is found by its category and stem where
    these name one image both there and among ``samples``, so it keeps its split too (it was drawn anew,
    and a val or test photo could move into train).

    Raises:
        UserError: ``config.keep_splits`` cannot be looked for or read (it was taken for absent, from
            Python 3.13, and every image drawn anew), or does not read as a split file.
    """
    if config.keep_splits is None or not _kept_file_exists(config.keep_splits):
        return {}
    earlier = load_splits(config.keep_splits).split_of()

    def place(key: str) -> tuple[str, str]:  # category/subset/folder/stem -> (category, stem)
        return key.split("/", 1)[0], key.rsplit("/", 1)[-1]

    before, now = Counter(map(place, earlier)), Counter(place(s.record.key) for s in samples)
    moved = {place(key): split for key, split in earlier.items() if before[place(key)] == 1}
    for sample in samples:
        key = sample.record.key
        if key not in earlier and now[place(key)] == 1 and place(key) in moved:
            earlier[key] = moved[place(key)]
    return earlier


def _kept_file_exists(path: Path) -> bool:
    """Whether the earlier ``splits.json`` ``path`` is there (:func:`common.io.file_exists`).

    Raises:
        UserError: it cannot be looked for (permissions, a disk error).
    """
    try:
        return file_exists(path)
    except UnreadableFileError as error:
        raise UserError(
            f"cannot read splits file {path}: {error.strerror} (the split it records is kept, not drawn "
            f"anew); {read_advice(error, path)}"
        ) from None


def _draw_splits(samples: list[Sample], config: ConvertConfig) -> Splits:
    """A fresh split of the samples read (defect images stratified by category/defect), but for those
    ``config.keep_splits`` places, which stay where it put them; the new ones fill each split toward its
    fraction of their stratum (``make_splits``' ``kept``)."""
    earlier = kept_splits(config, samples)
    new = [s for s in samples if s.record.key not in earlier]
    kept: dict[str, list[int]] = defaultdict(lambda: [0] * len(SPLITS))
    for sample in samples:
        if sample.record.key in earlier and not sample.record.is_good:
            stratum = f"{sample.record.category}/{sample.record.defect}"
            kept[stratum][SPLITS.index(earlier[sample.record.key])] += 1
    drawn = make_splits(
        [(s.record.key, f"{s.record.category}/{s.record.defect}") for s in new if not s.record.is_good],
        [s.record.key for s in new if s.record.is_good],
        ratios=config.ratios,
        background_ratio=config.background_ratio,
        seed=config.seed,
        kept=kept,
    )
    if len(new) == len(samples):
        return drawn
    kept = {split: [s.record.key for s in samples if earlier.get(s.record.key) == split] for split in SPLITS}
    return replace(drawn, **{split: sorted(drawn[split] + kept[split]) for split in SPLITS})


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
    lines += [f"{'layout':28s}{category}: {title}" for category, title in report.layouts.items()]
    if report.unlabelled:
        lines.append(
            f"unlabelled images not converted (no ground truth or split file entry): {report.unlabelled}"
        )
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
    lines += [f"note: {note}" for note in report.notes]
    lines += [f"warning: {warning}" for warning in report.warnings]
    empty = [split for split in ("train", "val") if not report.images.get(split)]
    if "yolo" in report.formats and empty:  # ultralytics stops without them: no line that cannot run
        lines.append(f"train with: none yet, yolo train needs images in {' and '.join(empty)} (see above)")
    elif "yolo" in report.formats:
        if importlib.util.find_spec("ultralytics") is None:  # a core install has no `yolo` command
            # a line of its own: the command below stays whole to paste
            lines.append(f"note: {install_hint('train', ['ultralytics'], 'yolo train')}")
        data, model = f"data={report.out / 'data.yaml'}", f"model={stock_weights()}"
        lines.append(f"train with: yolo train {quote(data)} {quote(model)}")
        if (
            report.task == "segment"
        ):  # a detect model learns boxes from polygon labels (this project's recipe)
            # A line of its own, not a '# for masks' comment after the command: zsh (macOS's shell) reads
            # no comments when typed, so the pasted line ran on into the hint and failed.
            masks = f"model={stock_weights('yolo11n-seg.pt')}"
            lines.append(f"or, for masks: yolo train {quote(data)} {quote(masks)}")
    return "\n".join(lines)


def stock_weights(name: str = "yolo11n.pt") -> str:
    """The weights the printed ``yolo train`` starts from: this project's verified copy where it is
    cached (offline, a bare ``yolo train`` downloads ultralytics' default model and fails), else the
    name, which ultralytics downloads."""
    cached = weights_dir() / name
    return str(cached) if cached.is_file() else name
