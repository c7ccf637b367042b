"""Which images a model is fit on and scored on, read through the converters' scanner.

Two protocols:

- ``mvtec`` (default): fit on the good images the layout places in training (``train/good``);
  score every image the layout places in its test set (``test/``, AD 2's ``test_public/``, VisA's
  split file). Layouts that place nothing (the folder layout) need the ``split`` protocol.
- ``split``: a converter output's ``splits.json`` (``--data DIR``) names the images of each split;
  fit on the good images of the category that are in none of its ``val``/``test`` lists, score the
  images of one split (``--split test``), so the anomaly model and the supervised detector are
  scored on the same images.

Either way no scored image may have been fit on: :func:`check_disjoint` refuses it by record key, and
a byte-for-byte copy of a fit image under another name by its sha256 (recorded in ``run.json``).
Images are decoded as RGB ``uint8``; masks as bool, all-False for good images.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.data_sets import DATA_YAML, data_set_folder
from common.errors import UserError
from common.exif import check_mask_upright, check_upright, exif_orientation
from common.image_files import decode_image_file
from common.images import displayed_size, mask_size, raise_unread, read_photos
from common.io import read_json_object, sha256_file
from common.masks import (
    faint_masks_line,
    faint_values,
    is_lossy_mask,
    is_soft_mask,
    lossy_masks_line,
    mask_values,
    soft_masks_line,
)
from converters.coco import recorded_root
from converters.layouts import empty_folder_warnings
from converters.masks import EMPTY_MASK_REASON, defect_values, no_defect_value_reason
from converters.mvtec import GOOD, ImageRecord, read_record_parts, scan_category
from converters.splits import SPLITS, SPLITS_FILE, Splits, is_split_record, load_splits

PROTOCOLS = ("mvtec", "split")

#: Largest relative difference of a side from the fit images' size that is still accepted.
SIZE_TOLERANCE = 0.1


def splits_path(data: str | Path) -> Path:
    """``data/splits.json`` for a converter output folder, ``data`` itself for the file (or a missing path,
    for the caller's own message).

    A file is taken by its contents, whatever its name: the converters' split record
    (:func:`converters.splits.is_split_record`; ``splits_v2.json``, a copy kept aside, was refused).

    Raises:
        UserError: ``data`` is another file (a README, a COCO file): read as the set's split record, it was
            told to lack a category or a recorded MVTec root; the message names it and what ``--data`` takes.
    """
    path = Path(data)
    if path.is_dir():
        return path / SPLITS_FILE
    if path.exists() and path.name != SPLITS_FILE and not is_split_record(path):
        raise UserError(
            f"--data {data} is a file, not a data set the converters wrote: --data takes its folder, "
            f"the {DATA_YAML} in it or its {SPLITS_FILE}"
        )
    return path


def root_of_data(data: str | Path) -> Path:
    """The MVTec root a converter output folder (or its ``data.yaml`` or ``splits.json``) was made from, as
    its COCO files record it (the ``--root`` that ``anomaly.train --data`` would otherwise need).

    Raises:
        UserError: ``data`` is no converter output (no ``splits.json``: a folder that is not there, say,
            was asked for ``--root``; a file of another name); no COCO file the converters wrote (a
            YOLO-only folder records no root), or a recorded root that is no longer a folder; each names
            the file and asks for ``--root``.
    """
    folder = data_set_folder(Path(data))
    if not splits_path(folder).is_file():
        read_splits(folder)  # its error: no splits.json in the folder named, written by the converters
    if folder.is_file():  # its splits.json, as --data may name it: 'records no MVTec root' named the file
        folder = folder.parent
    files = [folder / "annotations" / f"instances_{split}.json" for split in SPLITS]
    for path in (path for path in files if path.is_file()):
        root = recorded_root(read_json_object(path, what="COCO file"))
        if root is None:
            continue
        if not Path(root).is_dir():
            raise UserError(f"{path} records the MVTec root {root}, which is not a folder now: pass --root")
        return Path(root)
    raise UserError(
        f"pass --root: {folder} records no MVTec root (the converters write it in annotations/"
        "instances_<split>.json, with COCO output)"
    )


def read_splits(data: str | Path, category: str | None = None) -> Splits:
    """The ``splits.json`` of a converter output folder (or the file itself).

    Args:
        data: the folder or the file.
        category: when given, the file must list at least one image of it in some split; one
            that lists none splits another data set, and would hold nothing out of the fit.

    Raises:
        UserError: no such file, a file of another name, a corrupt one, or one without any image of
            ``category``.
    """
    path = splits_path(data)
    if not path.is_file():
        raise UserError(
            f"no {SPLITS_FILE} in {data} (pass a folder written by converters.mvtec2yolo/mvtec2coco)"
        )
    splits = load_splits(path)
    held = split_categories(splits)
    if category is not None and category not in held:
        holds = f" (it holds {', '.join(held)})" if held else ""
        raise UserError(
            f"{path} lists no image of category '{category}' in any split{holds}: --data must be the "
            f"converter output made from this category"
        )
    return splits


def split_categories(splits: Splits) -> list[str]:
    """The categories ``splits`` lists images of (its keys' first part), sorted.

    >>> split_categories(Splits(train=["part/train/good/000"], test=["nut/test/spot/001"]))
    ['nut', 'part']
    """
    return sorted({key.split("/", 1)[0] for key in splits.split_of()})


def data_category(data: str | Path, category: str | None = None) -> str:
    """The category ``anomaly.train --data`` fits: ``category``, else the only one ``data``'s
    ``splits.json`` lists (the converter output folder, its ``data.yaml`` or the file).

    The set's own, not its MVTec root's: a set converted with ``--category hazelnut`` from a root of
    fifteen categories holds hazelnut alone, and the root's fifteen asked for ``--category``.

    Raises:
        UserError: no converter output; ``category`` not among the set's; no ``category`` and the set
            holds several (naming them) or none.
    """
    folder = data_set_folder(data)
    splits = read_splits(folder, category)  # a category given that the set does not hold: named here
    return splits_category(splits, splits_path(folder), category)


def splits_category(splits: Splits, path: Path, category: str | None = None) -> str:
    """:func:`data_category` of a ``splits.json`` already read (``splits``, from ``path``, checked to hold
    ``category`` where given: :func:`read_splits`): ``anomaly.train`` reads the file once.

    Raises:
        UserError: no ``category`` and ``splits`` holds several (naming them) or none.
    """
    if category is not None:
        return category
    held = split_categories(splits)
    if not held:
        raise UserError(
            f"{path} lists no image in any split: --data must be the converter output made from the "
            "category to fit"
        )
    if len(held) > 1:
        raise UserError(f"pass --category: {path} lists images of {len(held)} categories ({', '.join(held)})")
    return held[0]


def fit_records(records: Sequence[ImageRecord], splits: Splits | None = None) -> list[ImageRecord]:
    """The good images to fit on: ``train/good`` (``mvtec``), or good images outside val/test (``split``).

    Raises:
        UserError: there are none.
    """
    if splits is None:
        check_layout_split(records, then="pass it to anomaly.train as --data DIR")
        chosen = [r for r in records if r.is_good and r.layout_split == "train"]
        where = "train/good"
    else:
        held_out = set(splits.val) | set(splits.test)
        chosen = [r for r in records if r.is_good and r.key not in held_out]
        where = "good images outside the split's val and test lists"
    if not chosen:
        category = records[0].category if records else "?"
        raise UserError(f"category '{category}' has no good images to fit on ({where})")
    return chosen


def eval_records(
    records: Sequence[ImageRecord], splits: Splits | None = None, split: str = "test"
) -> list[ImageRecord]:
    """The images to score: all of ``test*/`` (``mvtec``), or those of one split (``split``).

    Raises:
        UserError: an unknown split, a split key with no image in the tree, or nothing to score.
    """
    if splits is None:
        # the layout's own test set: MVTec AD's test/, AD 2's test_public/, VisA's split file
        check_layout_split(records)
        chosen = [r for r in records if r.layout_split == "test"]
    else:
        if split not in SPLITS:
            raise UserError(f"unknown split '{split}' (one of {', '.join(SPLITS)})")
        category = {r.category for r in records}
        by_key = {r.key: r for r in records}
        keys = [key for key in splits[split] if key.split("/", 1)[0] in category]
        missing = [key for key in keys if key not in by_key]
        if missing:
            raise UserError(f"split '{split}' lists {missing[0]}, which is not in the image tree")
        chosen = [by_key[key] for key in keys]
    if not chosen and splits is None:  # good photos alone: evaluation, then anomaly.predict, led nowhere
        category = records[0].category if records else "?"
        raise UserError(
            f"no images to score in test/: category '{category}' has none; with good photos alone, put some "
            "that the run was not fit on in test/good/ (defect photos, if any, in test/<defect>/ with their "
            "masks in ground_truth/<defect>/) and evaluate again: anomaly.predict takes its threshold from "
            "that evaluation, or from --threshold VALUE"
        )
    if not chosen:
        raise UserError(f"no images to score in split '{split}'")
    return chosen


def check_layout_split(records: Sequence[ImageRecord], *, then: str = "pass --data DIR --split test") -> None:
    """Refuses the ``mvtec`` protocol on a layout that says nothing of train and test.

    Args:
        then: what to do with the converted folder ``DIR``, in the command that reads ``records``
            (``anomaly.train`` has ``--data`` but no ``--split``).

    Raises:
        UserError: naming the first image without a layout split.
    """
    unplaced = [r for r in records if r.layout_split is None]
    if unplaced:
        raise UserError(
            f"the {unplaced[0].layout} layout does not say which images are train or test "
            f"({unplaced[0].image}): convert it first (python -m converters.mvtec2yolo --root ... "
            f"--out DIR) and {then}"
        )


def check_disjoint(
    fit_keys: Iterable[str],
    scored: Sequence[ImageRecord],
    fit_hashes: Mapping[str, str] | None = None,
    *,
    hint: str = "",
    progress: bool = False,
) -> None:
    """Refuses to score an image the model was fit on (the protocol's one rule), by key and, given the
    fit images' sha256 (``fit_hashes``, key -> hex), also a byte-for-byte copy of one under another name.

    ``hint``: appended to the message when an image was fit on by key (what to do instead).
    ``progress``: a bar on stderr while the scored files are hashed.

    Raises:
        UserError: naming the first such image (and the fit image it copies).
    """
    refuse_fitted(fit_keys, [(r.key, str(r.image)) for r in scored], hint=hint)
    if fit_hashes:
        refuse_copies(fit_hashes, scored, progress=progress)


def file_hashes(records: Sequence[ImageRecord], *, progress: bool = False) -> dict[str, str]:
    """Record key -> sha256 of its image file (what :func:`check_disjoint` compares copies by).

    ``progress``: a bar on stderr (every byte is read: minutes on a large category).
    """
    bar = _hashing(records, "hashing fit photos", progress)
    return {r.key: sha256_file(r.image, what="image") for r in bar}


def _hashing(items: Sequence, desc: str, progress: bool) -> Iterable:
    """``items`` behind a progress bar on stderr while their files are hashed (none unless ``progress``)."""
    return tqdm(items, desc=desc, unit="photo", disable=not progress, file=sys.stderr)


def refuse_copies(
    fit_hashes: Mapping[str, str], scored: Sequence[ImageRecord], *, progress: bool = False
) -> None:
    """Refuses to score a record whose image file's bytes are those of a fit image under another name.

    A defect photo copied into ``train/good`` (or a test photo duplicated there) is fit on as
    normal and scored as itself: image AUROC on hazelnut_toy fell from 1.000 to 0.824 with three
    such copies, and the key check alone let them through (:func:`refuse_copied_files`).
    """
    refuse_copied_files(fit_hashes, [r.image for r in scored], progress=progress)


def refuse_copied_files(
    fit_hashes: Mapping[str, str], files: Sequence[str | Path], *, progress: bool = False
) -> None:
    """Refuses to score a file whose bytes are those of a fit image (``fit_hashes``: key -> sha256).

    Nothing is read when ``fit_hashes`` is empty (a run fit before they were recorded). ``progress``: a
    bar on stderr while the files are hashed (every byte is read: minutes on a large split).

    Raises:
        UserError: naming the first copy, the fit image it repeats, and how many more.
    """
    if not fit_hashes:
        return
    fitted = {digest: key for key, digest in fit_hashes.items()}
    bar = _hashing(files, "hashing photos (vs PatchCore's fit photos)", progress)
    digests = [(path, sha256_file(path, what="image")) for path in bar]
    copies = [(path, fitted[digest]) for path, digest in digests if digest in fitted]
    if copies:
        (path, key), more = copies[0], f" (and {len(copies) - 1} more)" if len(copies) > 1 else ""
        raise UserError(
            f"refusing to score {path}: its bytes are those of {key}, which the model was fit on"
            f"{more}; remove the copy from the fit images"
        )


def refuse_fit_copies(
    fit: Sequence[ImageRecord],
    held_out: Sequence[ImageRecord],
    fit_hashes: Mapping[str, str],
    *,
    progress: bool = False,
) -> None:
    """Refuses, before a fit, a fit image whose bytes are those of an image evaluation will score.

    :func:`refuse_copies` at fit time: nothing is fit yet, so the message names the two files
    (``fit_hashes``: record key -> sha256, as :func:`file_hashes`).

    Raises:
        UserError: naming the first fit image, the scored image it copies, and how many more.
    """
    fitted = {fit_hashes[r.key]: r.image for r in fit if r.key in fit_hashes}
    copies = [
        (fitted[digest], r.image)
        for r in _hashing(held_out, "hashing test photos (vs the fit photos)", progress)
        if (digest := sha256_file(r.image, what="image")) in fitted
    ]
    if copies:
        (copy, scored), more = copies[0], f" (and {len(copies) - 1} more)" if len(copies) > 1 else ""
        raise UserError(
            f"refusing to fit on {copy}: its bytes are those of {scored}, which evaluation scores{more}; "
            "remove the copy from the fit images"
        )


def refuse_fitted(
    fit_keys: Iterable[str], scored: Sequence[tuple[str, str]], *, model: str = "the model", hint: str = ""
) -> None:
    """Refuses to score any of ``scored`` (``(record key, name in the message)`` pairs) fit on.

    Args:
        model: what was fit, as the message names it.
        hint: appended to the message (what to do instead).

    Raises:
        UserError: naming the first such image and how many more.
    """
    fitted = set(fit_keys)
    leaked = [name for key, name in scored if key in fitted]
    if leaked:
        more = f" (and {len(leaked) - 1} more)" if len(leaked) > 1 else ""
        raise UserError(f"refusing to score {leaked[0]}: {model} was fit on it{more}{hint}")


def load_records(root: str | Path, category: str) -> list[ImageRecord]:
    """The scanner's records of one category (every layout the converters read).

    A defect photo without a mask (a defect type nobody has labelled yet) is kept, with ``mask_missing``
    (:func:`converters.mvtec.scan_category`'s ``allow_missing_masks``): the fit needs only good photos, and
    evaluation scores it in the image figures and leaves it out of the pixel ones (:func:`masked`).
    """
    check_not_converter_output(root)
    return scan_category(root, category, allow_missing_masks=True)


def masked(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """``records`` less the defect photos without a mask (``mask_missing``): those pixel figures can score."""
    return [r for r in records if not r.mask_missing]


def check_not_converter_output(root: str | Path) -> None:
    """Refuses a converter output (``splits.json`` beside ``images/``) given as the image tree.

    Its ``images/`` holds ``train/`` and ``test/``, so the scanner read it as an MVTec category
    named ``images`` (with ``labels`` a second one) and the error named those as categories.

    Raises:
        UserError: naming the folder and where it goes instead (``--data``).
    """
    root = Path(root)
    if (root / SPLITS_FILE).is_file() and (root / "images").is_dir():
        raise UserError(
            f"{root} is a converter output ({SPLITS_FILE}, images/), not an image tree: pass the MVTec "
            f"tree it was converted from as --root, and {root} as --data"
        )


def read_rgb(path: str | Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB; grey and 16-bit files are converted. One-line error if unreadable."""
    image = decode_image_file(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(record: ImageRecord, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool ground truth of ``record``, checked against ``shape``: all False for a good image, and
    for a defect photo without a mask (``mask_missing``), which pixel figures leave out (:func:`masked`)."""
    if not record.mask_files:
        return np.zeros(shape, bool)
    check_upright(record.image, exif_orientation(record.image))  # the photo is read turned, its mask not
    # every region file of the image (MVTec LOCO keeps one per region), merged
    return np.logical_or.reduce([part > 0 for part in read_record_values(record, tuple(shape))])


def read_record_values(record: ImageRecord, shape: tuple[int, int]) -> list[np.ndarray]:
    """``record``'s mask files as ``(H, W)`` integers, read as the converters read them
    (:func:`converters.mvtec.read_record_parts`); where the layout brought a value map
    (``record.value_names``: LOCO's ``defects_config.json``, a 3D-AD ``class_ids.json``), each file checked
    against it and the values it names ``good`` set to 0, as a conversion takes them
    (:func:`converters.masks.defect_values`).

    A value the map lacks was a defect of its own here (an instance in the mask AP, defect pixels in the
    pixel figures) where a conversion refuses the file; a value it names ``good`` was defect pixels here
    where a conversion takes it as background.

    Raises:
        UserError: as the converters' (:func:`converters.masks.check_mask_values`), after the file's path;
            or :func:`converters.mvtec.read_record_parts`'s.
    """
    return record_values(record, read_record_parts(record, shape))


def record_values(record: ImageRecord, parts: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`read_record_values` of ``record``'s mask files already decoded as ``parts``
    (:func:`converters.mvtec.read_record_parts`'s list), so a caller holding them decodes none again."""
    if not record.value_names:
        return parts
    names = dict(record.value_names)
    map_name = str(record.value_map or "the layout's value map")
    files = zip(record.mask_files, parts, strict=True)
    return [_defect_part(path, part, names, map_name) for path, part in files]


def _defect_part(path: Path, part: np.ndarray, names: Mapping[int, str], map_name: str) -> np.ndarray:
    """``part`` ``(H, W)``, the mask file ``path`` as read, with the values ``names`` (its layout's value map)
    calls ``good`` set to 0; refused, naming ``path``, where it holds a value the map lacks."""
    defects = _defect_values(path, part, names, map_name)
    if not _names_good(names):
        return part
    return np.where(np.isin(part, defects), part, 0).astype(part.dtype, copy=False)


def _defect_values(path: Path, part: np.ndarray, names: Mapping[int, str], map_name: str) -> list[int]:
    """:func:`converters.masks.defect_values` of the mask file ``path`` read as ``part``; its error names
    ``path``."""
    try:
        return defect_values(part, names, map_name=map_name)
    except UserError as error:
        raise UserError(f"{path}: {error}") from None


def _names_good(names: Mapping[int, str]) -> bool:
    """Whether the value map ``names`` calls a value > 0 ``good`` (0 is good in every map)."""
    return any(name == GOOD for value, name in names.items() if value)


def skip_reason(record: ImageRecord, parts: list[np.ndarray]) -> str | None:
    """Why a conversion skips the defect photo ``record``, whose mask files, decoded as ``parts``
    (:func:`converters.mvtec.read_record_parts`), hold no defect value; None where it does. All zero:
    :data:`converters.masks.EMPTY_MASK_REASON`; each value they hold named ``good`` by its layout's value
    map (``record.value_names``): :func:`converters.masks.no_defect_value_reason`, the rule being
    :func:`converters.masks.defect_values`.

    Raises:
        UserError: a mask value the map lacks, naming the file.
    """
    if not any(part.any() for part in parts):
        return EMPTY_MASK_REASON
    names = dict(record.value_names)
    if not _names_good(names):
        return None
    map_name = str(record.value_map or "the layout's value map")
    files = zip(record.mask_files, parts, strict=True)
    if any(_defect_values(path, part, names, map_name) for path, part in files):
        return None
    return no_defect_value_reason(map_name)


@dataclass(frozen=True)
class MaskReading:
    """What :func:`read_masks` found in the records' masks, each decoded once.

    Attributes:
        kept: the records, in order, less the defect photos a conversion skips.
        skipped: those photos by their reason (:func:`skip_reason`).
        warnings: :func:`mask_warnings`' lines (without ``warning:``) for the kept records' masks.
    """

    kept: list[ImageRecord]
    skipped: dict[str, list[ImageRecord]]
    warnings: list[str]


def read_masks(records: Sequence[ImageRecord], *, progress: bool = False) -> MaskReading:
    """Every mask of ``records`` decoded once (``progress``: a bar on stderr meanwhile), for the defect photos
    whose masks hold no defect value (:func:`skip_reason`: all zero, or only values their value map names
    ``good``), which a conversion skips: scored, they were defect photos with an empty mask; and for
    :func:`mask_warnings`' lines on the others. The scoring decodes the kept ones once more; this read
    decoded each twice before (once for the skip, once for the warnings). Read as :func:`read_mask` reads
    them, so call it after :func:`check_mask_sizes`.

    Raises:
        UserError: a mask value a value map lacks, naming the file (a JPEG file's too); or
            :func:`converters.mvtec.read_record_parts`'s.
    """
    skipped: dict[str, list[ImageRecord]] = {}
    left_out: set[int] = set()
    findings = _MaskFindings()
    read = [(index, record) for index, record in enumerate(records) if record.mask_files]
    for index, record in tqdm(
        read, desc="reading masks", unit="photo", disable=not progress, file=sys.stderr
    ):
        parts = None if record.is_good else read_record_parts(record, header_size(record.image))
        reason = None if parts is None else skip_reason(record, parts)
        if reason is None:
            findings.add(record, parts)
        else:
            skipped.setdefault(reason, []).append(record)
            left_out.add(index)
    kept = [record for index, record in enumerate(records) if index not in left_out]
    return MaskReading(kept, skipped, findings.lines())


def note_skipped(reading: MaskReading, *, left_out: str = "not scored") -> list[ImageRecord]:
    """``reading.kept``, after a ``note:`` line on stderr for each reason ``reading`` skipped defect photos
    for, counting them, with the converters' reason; ``left_out``: what they are not, in it."""
    for reason, dropped in reading.skipped.items():
        count = len(dropped)
        photos = f"{count} defect photo{'s' if count > 1 else ''}"
        print(
            f"note: {photos} {left_out}, as a conversion skips {'them' if count > 1 else 'it'}: {reason} "
            f"(e.g. {dropped[0].mask_files[0]})",
            file=sys.stderr,
            flush=True,
        )
    return reading.kept


def read_regions(record: ImageRecord, shape: tuple[int, int]) -> list[np.ndarray]:
    """``(H, W)`` integers of each region file of ``record`` (``record.masks``: MVTec LOCO keeps one file per
    defect region), checked against ``shape`` as :func:`read_mask` checks them; ``[]`` for a record with
    one mask file or none. Their union (``> 0``) is :func:`read_mask`.

    A file keeps its values where the layout names them (``record.value_names``: LOCO's
    ``defects_config.json``), so a file holding two is two instances, as the converters count it
    (one per file and value); without a value map every defect pixel is 1, one instance per file.
    Read as the converters read them (:func:`converters.mvtec.read_record_parts`): with a value map a
    palette PNG is its indices, not its colours.
    """
    if not record.masks:
        return []
    check_upright(record.image, exif_orientation(record.image))  # the photo is read turned, its masks not
    parts = read_record_values(record, tuple(shape))
    return parts if record.value_names else [(part > 0).astype(np.uint8) for part in parts]


def check_mask_sizes(records: Sequence[ImageRecord]) -> None:
    """Refuses a defect image whose mask is of another size, from the files' headers, before any is scored.

    :func:`read_mask` refused it only when the scoring reached that image: after SAM had loaded and
    every image before it had been scored (MVTec's masks are at their photo's size; a set whose masks
    were saved at another size fails on its first defect image, wherever that is in the order).

    Raises:
        UserError: naming the image, the mask file and both sizes (as :func:`read_mask`); a defect image,
            or a TIFF mask, turned by an EXIF orientation tag is refused as :func:`read_mask` refuses it.
    """
    for record in records:
        if not record.mask_files:
            continue
        check_upright(record.image, exif_orientation(record.image))  # else named as a size mismatch
        height, width = header_size(record.image)
        for path in record.mask_files:
            check_mask_upright(path)  # a square one passed the sizes, read turned
            mask_width, mask_height = mask_size(path)  # as read_mask decodes it: a tagged TIFF turned
            if (mask_height, mask_width) != (height, width):
                raise UserError(
                    f"image/mask size mismatch: {record.image} is {width}x{height}, "
                    f"{path} is {mask_width}x{mask_height}"
                )


#: Mask files a warning of :func:`mask_warnings` names: with the count, enough to find the rest.
NAMED_MASKS = 3


def mask_warnings(records: Sequence[ImageRecord], *, progress: bool = False) -> list[str]:
    """Lines (without ``warning:``) for the defect images' masks that are JPEG files, soft or faint, less
    those of the defect photos a conversion skips (:func:`read_masks`, which reads them).

    Every value > 0 is defect (:func:`read_mask`): the faint pixels a JPEG file, a mask once saved as
    JPEG or an anti-aliased edge leaves around a defect grow it, and the pixel AUROC, AUPRO and F1 were
    measured against the grown masks without a word. The converters' rules and words (:mod:`common.masks`),
    once for all the masks: a count and the first :data:`NAMED_MASKS` files. A mask whose layout brought a
    value map (LOCO's, a 3D-AD ``class_ids.json``) holds its classes, never counted as soft or faint, as the
    converters count none there; one holding a value the map lacks is refused (:func:`read_record_values`),
    a JPEG file's too, here and not when the scoring reaches it. ``progress``: a bar on stderr while the
    masks are read.
    """
    return read_masks(records, progress=progress).warnings


class _MaskFindings:
    """The masks :func:`mask_warnings` names, gathered a record at a time (:meth:`add`)."""

    def __init__(self) -> None:
        self.lossy: list[Path] = []
        self.soft: list[tuple[Path, int]] = []
        self.faint: list[tuple[Path, list[int], int]] = []

    def add(self, record: ImageRecord, parts: list[np.ndarray] | None) -> None:
        """``record``'s mask files, decoded as ``parts`` (:func:`converters.mvtec.read_record_parts`); None:
        not yet, and decoded here where they are looked into."""
        self.lossy += [path for path in record.mask_files if is_lossy_mask(path)]
        if record.layout == "visa":
            return  # VisA's values are defect-type ids
        lossy = any(is_lossy_mask(path) for path in record.mask_files)
        if lossy and not record.value_names:
            return  # a JPEG file is named as one
        if parts is None:
            parts = read_record_parts(record, header_size(record.image))
        values = record_values(record, parts)  # a value a value map lacks refused, a JPEG file's too
        if record.value_names:  # a value map names every value (LOCO's, a 3D-AD class_ids.json's): classes
            return
        for path, part in zip(record.mask_files, values, strict=True):
            found = mask_values(part)
            if is_soft_mask(len(found)):
                self.soft.append((path, len(found)))
            elif faint := faint_values(part):  # once saved as JPEG
                self.faint.append((path, faint, int(found[-1])))

    def lines(self) -> list[str]:
        """The warnings' lines, one a kind of mask found."""
        effect = "defects grow and the pixel figures (AUROC, AUPRO, F1) are measured against the grown masks"
        lines = [
            lossy_masks_line(self.lossy, effect=effect, remedy="save the masks as PNG", named=NAMED_MASKS),
            soft_masks_line(self.soft, effect=effect, remedy="save them as 0/255", named=NAMED_MASKS),
            faint_masks_line(self.faint, effect=effect, remedy="save them as 0/255", named=NAMED_MASKS),
        ]
        return [line for line in lines if line]


def warn_lines(lines: Iterable[str]) -> None:
    """Each of ``lines`` as a ``warning:`` line on stderr (:attr:`MaskReading.warnings`)."""
    for line in lines:
        print(f"warning: {line}", file=sys.stderr, flush=True)


def warn_empty_folders(records: Sequence[ImageRecord], *, held: Sequence[ImageRecord] | None = None) -> None:
    """A ``warning:`` line on stderr for each defect-type folder beside the category's own that is empty
    (``test/crack/`` made before its photos were copied): the converters' warnings
    (:func:`converters.layouts.empty_folder_warnings`), which a tree read here never gave. ``held``: the
    records that may be scored (default: all; the MVTec protocol's ``test/`` ones), whose photos of a
    folder's type, if any, make its line claim nothing of what is scored."""
    warn_lines(empty_folder_warnings(records, missing="no {photos} are scored", held=held))


def check_rgb(image: object, name: str | Path) -> None:
    """Refuses anything but an ``(H, W, 3)`` uint8 RGB array, which is what the model scales to [0, 1].

    A grey or RGBA array failed deep in torch with a traceback; a float image in [0, 1] or a 16-bit
    one was scaled by 1/255 all the same and scored silently, as a near-black or overexposed photo.

    Raises:
        UserError: naming ``name`` and the array's shape and dtype.
    """
    shape = getattr(image, "shape", None)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or shape[2] != 3:
        what = f"a {shape} {image.dtype} array" if isinstance(image, np.ndarray) else type(image).__name__
        raise UserError(
            f"image {name} is {what}: PatchCore takes (H, W, 3) uint8 RGB "
            "(anomaly.data.read_rgb reads any image file so)"
        )


def check_size(
    image: np.ndarray, expected: tuple[int, int] | None, path: str | Path, *, model: str = "the model"
) -> tuple[int, int]:
    """``expected`` (or the image's ``(H, W)`` when None); refuses an image of another size.

    Every image is resized to the model's square input, so a photo much larger or smaller, or of
    another aspect ratio, than those fit on would be compared at another scale: each side may differ
    by at most :data:`SIZE_TOLERANCE` (real sets hold the odd 512 x 522 photo among 512 x 512 ones).
    ``model``: how the error names the PatchCore run (``--anomaly-run R`` beside the cascade's models).
    """
    shape = tuple(image.shape[:2])
    if expected is None:
        return shape  # type: ignore[return-value]
    if any(abs(side - want) > SIZE_TOLERANCE * want for side, want in zip(shape, expected, strict=True)):
        raise UserError(
            f"image {path} is {shape[1]}x{shape[0]} but {model} was fit on {expected[1]}x{expected[0]} "
            f"images (PatchCore compares patches at one scale; sides may differ by "
            f"{SIZE_TOLERANCE:.0%}): resize the photos, or fit on images of this size"
        )
    return tuple(expected)  # type: ignore[return-value]


def header_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` as the photo will be read (EXIF-turned), from its header; one-line error if no image."""
    width, height = displayed_size(path)
    return height, width


def check_sizes(
    paths: Sequence[str | Path], expected: tuple[int, int] | None = None, *, model: str = "the model"
) -> tuple[int, int]:
    """Checks every image's header size against ``expected`` (default: the first's) before any work.

    ``model``: as :func:`check_size` names it.

    Returns:
        The reference ``(H, W)``.

    Raises:
        UserError: every image whose header does not read, in one line (its own line for one; else the first
            three and how many more: :func:`common.images.raise_unread`, as ``anomaly.predict`` names them;
            the first stopped the run, three bad photos took three runs); else the first of another size
            (:func:`check_header_sizes`).
    """
    unread: dict[Path, str] = {}
    expected = check_header_sizes(paths, expected, unread, model=model)
    raise_unread(list(unread.items()))
    if expected is None:
        raise UserError("no images")
    return expected


def check_header_sizes(
    paths: Sequence[str | Path],
    expected: tuple[int, int] | None,
    unread: dict[Path, str],
    *,
    model: str = "the model",
) -> tuple[int, int] | None:
    """Reads every image's header, ``unread`` gaining each that does not read with its one-line error
    (:func:`common.images.read_photos`), and checks the others' sizes against ``expected`` (None: the first
    one's) before any image is decoded. Photos that do not read are left to the caller to name
    (``anomaly.predict`` names them with those whose pixels do not) unless a size is refused.

    Returns:
        The reference ``(H, W)``; None when no header reads.

    Raises:
        UserError: where one read image is of another size (:func:`check_size`; with no ``expected``, two
            images to fit on that differ): first every image whose header does not read, in one line
            (:func:`common.images.raise_unread`), then that size (``anomaly.predict`` stopped at the first of
            another size: a photo after it whose header did not read stopped the next run).
    """
    shapes = read_photos(paths, header_size, unread)
    fitting, first = expected is None, None
    for path, shape in zip(paths, shapes, strict=True):
        if shape is None:
            continue
        first = first or (path, shape)
        try:
            expected = check_size(np.empty((*shape, 0)), expected, path, model=model)
        except UserError as error:
            refusal = _fit_sizes_differ(path, shape, *first) if fitting else error
            break
    else:
        return expected
    raise_unread(list(unread.items()))
    raise refusal


def _fit_sizes_differ(
    path: str | Path, shape: tuple[int, int], first_path: str | Path, first_shape: tuple[int, int]
) -> UserError:
    """The error for two images to fit on of other sizes: nothing is fit yet, the first image set the size,
    and either of the two may be the odd one."""
    (height, width) = first_shape
    return UserError(
        f"the images to fit on differ in size: {path} is {shape[1]}x{shape[0]}, {first_path} is "
        f"{width}x{height} (PatchCore compares patches at one scale; sides may differ by "
        f"{SIZE_TOLERANCE:.0%}): resize them to one size"
    )


def sized_images(
    paths: Sequence[str | Path], expected: tuple[int, int] | None = None
) -> Iterator[np.ndarray]:
    """Decodes ``paths`` one at a time, all of one size (``expected``, else the first one's)."""
    for path in paths:
        image = read_rgb(path)
        expected = check_size(image, expected, path)
        yield image


def root_only_category(root: str | Path) -> str | None:
    """The category ``root`` holds when it holds exactly one (a category folder itself, or a folder of
    one), else None: several, none, or no folder (which the fit refuses later, naming it).

    ``anomaly.train --root datasets/mvtec_ad/hazelnut --data <set of several>`` fits hazelnut: the root
    names the category, as it did before the set's own categories were asked for.
    """
    from converters.mvtec import list_categories

    if not Path(root).is_dir():
        return None
    names = list_categories(root)
    return names[0] if len(names) == 1 else None


def single_category(root: str | Path) -> str:
    """The category under ``root`` when there is exactly one; a one-line error otherwise."""
    from converters.mvtec import list_categories

    check_not_converter_output(root)
    from converters.mvtec import is_category

    names = list_categories(root)
    # a category's train/good (or test/<defect>) given for the category: its folder is a level or two up
    ups = (Path(os.path.normpath(Path(root, *[".."] * levels))) for levels in (1, 2))  # as given: relative
    inside = next((up for up in ups if up.is_dir() and is_category(up)), None)
    if not names and inside is not None:
        raise UserError(f"{root} is a folder inside the category {inside}: pass --root {inside}")
    if not names:
        raise UserError(
            f"no category in MVTec layout under {root}: expected {root}/<category>/train/good/ and "
            "test/<defect>/ with ground_truth/<defect>/<stem>_mask.png, or --root naming one category "
            "folder (the other layouts the converters read work too)"
        )
    if len(names) > 1:
        raise UserError(f"pass --category: {root} holds {len(names)} categories ({', '.join(names)})")
    return names[0]
