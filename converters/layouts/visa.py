"""VisA: ``<object>/Data/Images/{Normal,Anomaly}/*.JPG``, ``<object>/Data/Masks/Anomaly/*.png``.

The split files ``split_csv/1cls.csv`` (or ``2cls_*.csv``) beside the objects list
``object,split,label,image,mask`` per image, paths relative to the folder that holds
``split_csv/``. Where one is present it says which images belong to the set and, for
``--split-from-layout``, their split (``1cls.csv`` is preferred, then the first
``2cls_*.csv`` by name, said in a note; images it leaves out are counted as unlabelled, not converted);
without one, or where it lists no row of the object, the ``Normal``/``Anomaly`` folders are
read (the latter said in a note naming the file and the object: in the conversion's summary, or
on stderr where no report is made).

The three files amazon-science/spot-diff publishes (``split_csv/{1cls,2cls_fewshot,2cls_highshot}.csv``)
list the same 10,821 images with ``split`` train or test and ``label`` normal or anomaly; they are three
protocols. ``1cls.csv`` (one-class) keeps every anomaly image in test; the two-class files put some in
train (240 of 1,200 in ``2cls_fewshot``, 720 in ``2cls_highshot``) and move normal images to test, so
``--split-from-layout`` from a ``2cls`` file gives other splits: the note names the file read.

Mask values > 0 are defect (each is the region's defect-type id, named in spot-diff's ``id2class.json``,
which the archive does not carry); the class is ``anomaly`` unless ``--mask-values`` names the ids.

Checked against open-edge-platform/anomalib (2026-08),
``src/anomalib/data/datamodules/image/visa.py`` (``apply_cls1_split``):
``split_csv/1cls.csv`` beside the objects, its five columns in this order, paths from that folder,
``normal``/``anomaly`` labels, masks made binary by ``!= 0``. The ``visa_pytorch`` tree it writes is
read by the MVTec AD layout.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from common.errors import UserError, one_line
from common.image_files import is_image_file
from common.io import link_loop
from converters.layouts.base import (
    Layout,
    layout_note,
    masks_are_optional,
    note_folders_left_out,
    note_loose_images,
    note_photo_named_folders,
)
from converters.records import (
    GOOD,
    UNLABELLED,
    ImageRecord,
    case_twin,
    images_by_stem,
    masks_by_stem,
    pair_by_stem,
    photo_folder_text,
    stem_key,
    twin_difference,
)

NAME = "visa"
TITLE = "VisA"
DEFECT = "anomaly"
COLUMNS = ("object", "split", "label", "image", "mask")
LABELS = {"normal": GOOD, "anomaly": DEFECT}
CSV_SPLITS = {"train": "train", "val": "val", "test": "test"}
ONE_CLASS = "1cls.csv"  # the one-class protocol: anomaly images in test only
ANOMALY = "Anomaly"
SUBSETS = ("Normal", ANOMALY)  # the folders of Data/Images/: good photos, defect photos


def matches(folder: Path) -> bool:
    return (folder / "Data" / "Images").is_dir()


def split_file(folder: Path) -> Path | None:
    """``split_csv/1cls.csv`` (else the first ``2cls_*.csv``) beside the object folder or in it.

    A ``1cls.csv`` in either place comes before any ``2cls`` file: one inside the object folder lost to
    a ``2cls_fewshot.csv`` beside it, another protocol's splits.
    """
    csv_dirs = [base / "split_csv" for base in (folder.parent, folder)]
    for csv_dir in csv_dirs:
        if (csv_dir / ONE_CLASS).is_file():
            return csv_dir / ONE_CLASS
    for csv_dir in csv_dirs:
        if others := two_class_files(csv_dir):
            return others[0]
    return None


def two_class_files(csv_dir: Path) -> list[Path]:
    """The ``2cls_*.csv`` files of ``csv_dir`` by name (spot-diff's ``2cls_fewshot``, ``2cls_highshot``)."""
    return sorted(p for p in csv_dir.glob("2cls*.csv") if p.is_file()) if csv_dir.is_dir() else []


def two_class_note(path: Path) -> str:
    """The note of a ``2cls_*.csv`` read for want of ``1cls.csv``: another protocol's splits, and which
    other ``2cls`` files were passed over."""
    others = [p.name for p in two_class_files(path.parent) if p != path]
    passed = f"; {', '.join(others)} not read" if others else ""
    return (
        f"VisA split file {path} read, as there is no split_csv/{ONE_CLASS}: a two-class protocol, "
        "which lists anomaly images in train as well as test (1cls.csv keeps them in test), and "
        f"--split-from-layout follows it{passed}"
    )


def listed_file(root: Path, text: str) -> Path:
    """``root / text``; a Windows path (``candle\\Data\\Images\\...``, a split file written there) is read
    with ``/`` where only that names a file."""
    path = root / text
    if "\\" in text and not path.exists() and (converted := root / text.replace("\\", "/")).exists():
        return converted
    return path


def _case_hint(path: Path) -> str:
    """Where ``path`` is missing but a file of its name in another case is there (``001.jpg`` listed,
    ``001.JPG`` on disk: a split file edited on Windows or macOS), a hint naming it; where ``path`` is
    a link whose target is gone (a photo deleted from the share it points into), that target."""
    if path.is_symlink():  # case_twin found the link itself: 'found <path>, whose name differs in case'
        return f"; it is a broken link to {os.readlink(path)}"
    twin = case_twin(path)
    return f"; found {twin}, whose name {twin_difference(twin, path)}" if twin else ""


def _not_a_file(path: Path) -> str | None:
    """What stands at ``path``, a file a split file names, where it is none that a name would explain: "is a
    link loop ..." (or "goes through" one, its folder), or "is a folder, not a file"; None otherwise
    (missing: :func:`_case_hint`). A link loop was "a broken link to" its own name, and a folder "does not
    exist"."""
    if (loop := link_loop(path)) is not None:
        if loop != path.absolute():  # its folder: the file itself was called the loop
            loops = "a link loop (a symbolic link that leads back to itself)"
            return f"goes through {loop}, {loops}: point it elsewhere"
        return "is a link loop (a symbolic link that leads back to itself, to no file): point it at its file"
    if path.is_dir():
        return "is a folder, not a file"
    return None


def _record(row: dict, line: int, path: Path, category: str) -> ImageRecord:
    """One CSV row as a record; the files it names must exist."""
    where = f"VisA split file {path} line {line}"
    cell = {column: (row.get(column) or "").strip() for column in COLUMNS}  # short rows read as None
    label, split = LABELS.get(cell["label"].lower()), CSV_SPLITS.get(cell["split"].lower())
    if label is None or split is None:
        raise UserError(
            f"{where}: label '{cell['label']}' / split '{cell['split']}' "
            "(want normal|anomaly, train|val|test)"
        )
    root = path.parent.parent
    image = listed_file(root, cell["image"])
    if not cell["image"] or not image.is_file():
        what = cell["image"] and _not_a_file(image) or f"does not exist{_case_hint(image)}"
        raise UserError(f"{where}: image {image} {what}")
    subset = image.parent.name.lower()
    if label == GOOD:
        return ImageRecord(image, category, subset, GOOD, layout=NAME, layout_split=split)
    if not cell["mask"] and masks_are_optional():  # a mask named but not there stays an error: a wrong path
        return ImageRecord(
            image, category, subset, DEFECT, layout=NAME, layout_split=split, mask_missing=True
        )
    mask = listed_file(root, cell["mask"])
    if not cell["mask"] or not mask.is_file():
        named = f"{cell['mask']}{_case_hint(mask)}" if cell["mask"] else "mask column empty"
        if cell["mask"] and (what := _not_a_file(mask)):
            named = f"{cell['mask']} {what}"
        raise UserError(f"{where}: anomaly image {image} has no mask file ({named})")
    return ImageRecord(image, category, subset, DEFECT, mask, layout=NAME, layout_split=split)


def csv_records(path: Path, folder: Path, category: str) -> list[ImageRecord]:
    """The rows of ``path`` for the object ``folder.name``; [] when the file lists none."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:  # a BOM (spreadsheets) is no text
            reader = csv.DictReader(file)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:  # the header says why: "Object,Split,...", or "object;split;..." from a spreadsheet
                header = ",".join(reader.fieldnames or []) or "none"
                columns = ", ".join(missing)
                raise UserError(
                    f"VisA split file {path} lacks the columns {columns} (its header: {header:.120})"
                )
            rows = [(reader.line_num, row) for row in reader if (row["object"] or "").strip() == folder.name]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"cannot read VisA split file {path}: {one_line(error)}") from None
    records, seen, masked = [], {}, []
    for line, row in rows:
        record = _record(row, line, path, category)
        if record.image in seen:
            raise UserError(
                f"VisA split file {path} lists {record.image} twice (lines {seen[record.image]} and {line})"
            )
        seen[record.image] = line
        records.append(record)
        if record.is_good and (row.get("mask") or "").strip():
            masked.append(line)
    if masked:  # a mask holding a defect on an image labelled normal was passed over unsaid
        rows_named = f"{len(masked)} normal rows name" if len(masked) > 1 else "1 normal row names"
        layout_note(
            f"VisA split file {path}: {rows_named} a mask for object '{folder.name}', not read (a normal "
            f"image has no defect), e.g. line {masked[0]}"
        )
    return records


def folder_records(folder: Path, category: str) -> list[ImageRecord]:
    """Without a split file: ``Images/Normal`` good, ``Images/Anomaly`` paired with ``Masks/Anomaly``."""
    data = folder / "Data"
    normal = data / "Images" / "Normal"
    records = [ImageRecord(p, category, "normal", GOOD, layout=NAME) for p in images_by_stem(normal).values()]
    if normal.is_dir():
        note_photo_named_folders(normal)
    anomaly, mask_dir = data / "Images" / "Anomaly", data / "Masks" / "Anomaly"
    pairs = pair_by_stem(
        images_by_stem(anomaly),
        masks_by_stem(mask_dir, ""),
        mask_dir=mask_dir,
        image_dir=anomaly,
        suffix="",
        masks_optional=masks_are_optional(),
    )
    return records + [
        ImageRecord(i, category, "anomaly", DEFECT, m, layout=NAME, mask_missing=m is None) for i, m in pairs
    ]


def scan(folder: Path, category: str, excluded: frozenset[str]) -> list[ImageRecord]:
    """Records of a VisA object folder, from its split file where there is one.

    Images under ``Data/Images/{Normal,Anomaly}`` that the split file leaves out are recorded as
    unlabelled, so the summary counts them instead of dropping them unsaid.
    """
    note_loose_images(folder / "Data" / "Images", "Data/Images/{Normal,Anomaly}/")
    note_loose_images(folder / "Data" / "Masks", "Data/Masks/Anomaly/")
    path = split_file(folder)
    records = csv_records(path, folder, category) if path else []
    if records:  # read without the folders' pairing: a mask left behind by its photo is still refused
        check_orphan_masks(folder)
        if path.name != ONE_CLASS:  # another protocol, taken for want of 1cls.csv: said, not assumed
            layout_note(two_class_note(path))
    if records and UNLABELLED not in excluded:
        records += unlisted_records(folder, category, {r.image.resolve() for r in records})
    if not records:
        if path:  # a file that lists other objects only: reading the folders is a guess, said once
            layout_note(
                f"VisA split file {path} lists no row of object '{folder.name}'; "
                "its Data/Images/{Normal,Anomaly} folders were read instead"
            )
        records = folder_records(folder, category)
    note_extra_folders(folder, records)
    return [r for r in records if r.defect not in excluded]


def note_extra_folders(folder: Path, records: list[ImageRecord]) -> None:
    """A ``folder not read`` note per subfolder of ``Data/Images`` or ``Data/Masks`` that holds images and
    is neither VisA's own (``Normal``, ``Anomaly``) nor one the split file lists a file of: its photos were
    left out without a word (:func:`converters.layouts.base.note_folders_left_out`)."""
    images = {r.image.parent.name for r in records}
    masks = {mask.parent.name for r in records for mask in r.mask_files}
    for sub, own, listed in (("Images", SUBSETS, images), ("Masks", (ANOMALY,), masks)):
        named = tuple(sorted(listed - set(own)))
        note_folders_left_out(folder / "Data" / sub, own, layout=TITLE, named=named)


def type_folders(photo_folder: Path) -> list[Path]:
    """:attr:`Layout.type_folders`: ``Data/Images/{Normal,Anomaly}`` of the object a photo folder of
    ``Data/Images/`` lies in; another subfolder there (a user's ``Extra/``) is no defect type."""
    images = photo_folder.parent
    if images.name != "Images" or images.parent.name != "Data":
        return []
    return [images / name for name in SUBSETS if (images / name).is_dir()]


def check_orphan_masks(folder: Path) -> None:
    """A mask of ``Data/Masks/Anomaly`` whose stem names no photo of ``Data/Images/Anomaly`` is an error."""
    anomaly, mask_dir = folder / "Data" / "Images" / "Anomaly", folder / "Data" / "Masks" / "Anomaly"
    stems = {stem_key(p.stem) for p in anomaly.iterdir() if is_image_file(p)} if anomaly.is_dir() else set()
    for mask in sorted(mask_dir.iterdir()) if mask_dir.is_dir() else []:
        if is_image_file(mask) and stem_key(mask.stem) not in stems:
            why = photo_folder_text(anomaly, stem_key(mask.stem)) or f"expected {anomaly / mask.stem}.<ext>"
            raise UserError(f"mask has no image: {mask} ({why})")


def unlisted_records(folder: Path, category: str, listed: set[Path]) -> list[ImageRecord]:
    """The images of ``Data/Images/{Normal,Anomaly}`` not in ``listed`` (resolved paths), as unlabelled."""
    records = []
    for subset in SUBSETS:
        images = folder / "Data" / "Images" / subset
        if not images.is_dir():
            continue
        for path in sorted(images.iterdir()):
            if is_image_file(path) and path.resolve() not in listed:
                records.append(
                    ImageRecord(path, category, subset.lower(), UNLABELLED, layout=NAME, unlabelled=True)
                )
    return records


LAYOUT = Layout(
    name=NAME,
    title=TITLE,
    looks_for="Data/Images/{Normal,Anomaly}/ (split_csv/1cls.csv beside the objects)",
    matches=matches,
    scan=scan,
    reads=("Data",),
    type_folders=type_folders,
    type_names={"Normal": GOOD, ANOMALY: DEFECT},
)
