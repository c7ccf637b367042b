"""Reading MVTec-family category trees into :class:`ImageRecord` s, whatever their layout.

A category folder is read by its layout (:mod:`converters.layouts`: MVTec AD, MVTec AD 2,
MVTec 3D-AD, MVTec LOCO AD, VisA, BTAD, KolektorSDD (v1 and 2), a plain folder), detected per
category or forced with ``layout=``. The MVTec AD tree, for example::

    train/good/<stem>.<ext>
    test/good/<stem>.<ext>
    test/<defect>/<stem>.<ext>
    ground_truth/<defect>/<stem>_mask.png

``root`` is either a folder of categories or one category folder itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from common.errors import UserError, close_match, few
from common.folders import check_one_line_names, check_utf8_names, check_utf8_path
from common.io import link_loop, link_loop_text
from converters.layouts import LAYOUTS, Layout, detect_layout, get_layout, looked_for, matching_layouts
from converters.layouts.base import (
    collected_notes,
    layout_note,
    note_folders_left_out,
    note_loose_images,
    optional_masks,
)
from converters.masks import merge_masks, read_mask
from converters.records import (
    GOOD,
    MASK_SUFFIX,
    UNLABELLED,
    ImageRecord,
    is_skipped_folder,
    stem_key,
    subfolders,
    unicode_form,
)
from converters.splits import SPLITS_FILE

__all__ = [
    "GOOD",
    "MASK_SUFFIX",
    "UNLABELLED",
    "ImageRecord",
    "category_dir",
    "category_layout",
    "check_output_stems",
    "is_category",
    "list_categories",
    "named_root",
    "read_record_mask",
    "scan",
    "scan_category",
    "settle_empty_mask",
    "settle_empty_masks",
]


def named_root(root: str | Path, *, flag: str = "--root") -> Path:
    """``root`` as given, or resolved where its path names no folder (``.``, ``..``, ``photos/..``).

    A category is named by its folder's name: ``--root .`` inside one named it ``''`` and ``--root ..``
    named it ``'..'``, in every output file name and key (``_test_crack_000.png``, ``../test/crack/000``).

    Raises:
        UserError: a path that is not UTF-8 (:func:`common.folders.check_utf8_path`, naming ``flag``):
            the converters' COCO files and ``anomaly.train``'s ``run.json`` record it.
    """
    check_utf8_path(root, flag=flag)
    root = Path(root)
    return root.resolve() if root.name in ("", "..") else root


def is_category(folder: Path, layout: str | None = None) -> bool:
    """``folder`` looks like a category of ``layout`` (of any layout when None)."""
    if layout is not None:
        return get_layout(layout).matches(folder)
    return any(candidate.matches(folder) for candidate in LAYOUTS.values())


#: The suffixes of the archives data sets are downloaded as (``mvtec_anomaly_detection.tar.xz``).
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".7z", ".rar")


def not_a_folder(root: Path) -> UserError:
    """The error for a data root that is no folder; one that is a downloaded archive is told to be
    extracted (``--root mvtec_anomaly_detection.tar.xz`` was 'does not exist or is not a folder'); one
    through a link loop is named (:func:`common.io.link_loop_text`)."""
    if loop := link_loop_text(root, what="data root"):
        return UserError(loop)
    if root.is_file() and root.name.lower().endswith(ARCHIVE_SUFFIXES):
        return UserError(f"data root {root} is an archive file: extract it, then pass the folder it unpacks")
    return UserError(f"data root does not exist or is not a folder: {root}")


def list_categories(root: str | Path, *, layout: str | None = None) -> list[str]:
    """Category names under ``root``; ``[root.name]`` when ``root`` is a category itself."""
    root = named_root(root)
    if not root.is_dir():
        raise not_a_folder(root)
    if is_category(root, layout):
        return [root.name]
    return sorted(p.name for p in subfolders(root) if is_category(p, layout))


def categories_to_convert(root: str | Path, *, layout: str | None = None) -> list[str]:
    """:func:`list_categories`, once none of ``root``'s other folders is a data set of categories.

    ``--root datasets/`` holding ``mvtec_ad/`` and ``KolektorSDD2/`` would convert Kolektor's one
    category and skip MVTec AD's fifteen without a word: such a folder is refused, naming them.
    A converted data set beside the categories (the annotation page's ``<out>/export``: its
    ``images/`` and ``labels/`` hold ``train/`` and ``test/``) is not one: it holds ``splits.json``.

    Raises:
        UserError: ``root`` missing, or a folder under it that is no category but holds some.
    """
    names = list_categories(root, layout=layout)
    root = named_root(root)
    if names == [root.name] and is_category(root, layout):
        return names
    nested = sorted(
        p.name
        for p in subfolders(root)  # not macOS's __MACOSX/ of ._ files beside the categories
        if p.name not in names and not (p / SPLITS_FILE).is_file() and list_categories(p, layout=layout)
    )
    if nested:
        shown = few(nested)
        held = f"categories ({', '.join(names)}) and " if names else ""
        raise UserError(
            f"{root} holds {held}folders of categories ({shown}): pass each data set folder as its own "
            f"--root (e.g. --root {root / nested[0]})"
        )
    note_empty_folders(root, names)
    return names


def note_empty_folders(root: Path, names: Sequence[str]) -> None:
    """A note naming the empty folders beside the categories ``names`` of ``root`` (hidden files aside):
    a category whose photos were never copied in (a download cut short) was left out without a word."""
    empty = [str(p) for p in subfolders(root) if p.name not in names and not _holds_anything(p)]
    if names and empty:
        folders = f"{empty[0]} is an empty folder" if len(empty) == 1 else f"{few(empty)} are empty folders"
        layout_note(f"{folders}: no category is read from it; copy its photos in, or remove it")


def _holds_anything(folder: Path) -> bool:
    """Whether ``folder`` holds an entry that is not hidden (``.DS_Store`` aside); True where it cannot be
    listed: not taken for empty."""
    try:
        return any(not name.startswith(".") for name in os.listdir(folder))
    except OSError:
        return True


def category_dir(root: str | Path, category: str, *, layout: str | None = None) -> Path:
    """Folder of ``category``: ``root/category``, or ``root`` itself when it is that category."""
    root = named_root(root)
    if not root.is_dir():  # not "unknown category ...; it holds no category folders" of a folder not there
        raise not_a_folder(root)
    if root.name == category and is_category(root, layout):
        return root
    folder = root / category
    if not (folder.is_dir() and is_category(folder, layout)):
        known = list_categories(root, layout=layout)
        hint = f"; categories under it: {', '.join(known)}" if known else "; it holds no category folders"
        if is_category(root, layout):  # a category folder renamed (moved, copied): not "under it"
            hint = f"; it is itself the category '{root.name}' (pass --category {root.name})"
        elif folder.is_dir():  # an empty or half-copied category: "it holds no category folders" misled
            others = f"; categories in {root}: {', '.join(known)}" if known else ""
            hint = f"; {folder} is there but is no category folder ({_holds(folder, layout)}){others}"
        elif twin := _unicode_twin(category, known):  # looks alike: "did you mean 'häzel'?" of 'häzel'
            hint = (
                f"; the folder {root / twin} has this name with its letters coded in another Unicode form "
                f"({unicode_form(twin)}, as macOS and some archives write accents; {unicode_form(category)} "
                "typed): type the name by tab completion, or rename the folder"
            )
        elif close := _close_category(category, known):  # a typo, or MVTec's name in another case
            hint = f"; did you mean '{close}'?{hint}"
        kind = f" {get_layout(layout).title}" if layout else ""
        raise UserError(f"unknown{kind} category '{category}' in {root}{hint}")
    return folder


def _case_hint(root: Path) -> str:
    """Where ``root`` or a folder in it holds a layout's folder named in another case (``Train/``,
    ``Images/``, VisA's ``data/``: a tree copied from Windows or macOS), a hint naming the first.

    No layout matched: its long list of what was looked for did not say that ``Train/`` was read as
    no ``train/``.
    """
    wanted = {
        name.casefold(): name for layout in LAYOUTS.values() for name in layout.reads if name.isidentifier()
    }
    try:
        for folder in (root, *subfolders(root)):
            for sub in subfolders(folder):
                name = wanted.get(sub.name.casefold())
                if name is not None and name != sub.name:
                    return f"; found {sub}, whose name differs in case from {name}/: rename it"
    except OSError:  # a folder that cannot be listed: the error without the hint
        pass
    return ""


def _unicode_twin(category: str, known: Sequence[str]) -> str | None:
    """The one of ``known`` that is ``category`` in another Unicode normal form (``ä`` as one code point, or
    ``a`` and a combining mark), else None: both print alike, so "did you mean" named what was typed."""
    same = [
        name for name in known if unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", category)
    ]
    return same[0] if len(same) == 1 else None


def _close_category(category: str, known: Sequence[str]) -> str | None:
    """The one of ``known`` that ``category`` names but for case, else the one it is a likely typo of."""
    same = [name for name in known if name.casefold() == category.casefold()]
    return same[0] if len(same) == 1 else close_match(category, known)


def _holds(folder: Path, layout: str | None = None) -> str:
    """What ``folder`` holds, for the message that says it is no category (of ``layout``, where forced):
    ``it is empty``, or a few names (hidden ones and ``__MACOSX``, never read, left out), and the layouts
    it is a category of.

    An MVTec AD category given ``--layout kolektor_sdd`` was said to hold "not train/good/ and
    test/<defect>/", which it holds: what the forced layout looks for was not said.
    """
    names = sorted(entry.name for entry in folder.iterdir() if not is_skipped_folder(entry.name))
    if not names:
        return "it is empty"
    if layout is None:
        return f"it holds {few(names, 5)}, not train/good/ and test/<defect>/"
    found = " or ".join(f"{other.title} (--layout {other.name})" for other in matching_layouts(folder))
    kind = f": a category of {found}" if found else ""
    return f"it holds {few(names, 5)}{kind}, not {get_layout(layout).looks_for}"


def category_layout(root: str | Path, category: str, *, layout: str | None = None) -> Layout:
    """The layout ``category`` is read with: ``layout`` when given, else the detected one."""
    if layout is not None:
        return get_layout(layout)
    return detect_layout(category_dir(root, category))


def settle_empty_mask(record: ImageRecord, mask: np.ndarray) -> ImageRecord:
    """A record whose layout marks good images by an all-zero mask, once ``mask`` is read."""
    if not record.empty_mask_is_good:
        return record
    if not mask.any():
        return dataclasses.replace(record, defect=GOOD, mask=None, empty_mask_is_good=False)
    return dataclasses.replace(record, empty_mask_is_good=False)


def settle_empty_masks(records: Iterable[ImageRecord]) -> list[ImageRecord]:
    """Reads the masks of records with ``empty_mask_is_good`` (KolektorSDD, SDD2) and settles them."""
    return [settle_empty_mask(r, read_mask(r.mask)) if r.empty_mask_is_good else r for r in records]


def read_record_mask(record: ImageRecord, shape: tuple[int, int]) -> np.ndarray:
    """A defect image's mask, its several region files merged (MVTec LOCO), as ``(H, W)`` integers, each
    file read as :func:`read_record_parts` reads it by default (value-coded where the layout brought a map).

    Args:
        record: a defect image's record (``mask_files`` not empty).
        shape: ``(H, W)`` of its image; every mask file must have it.

    Raises:
        UserError: a mask file unreadable or not of the image's ``(H, W)`` ``shape``.
    """
    parts = read_record_parts(record, shape)
    return parts[0] if len(parts) == 1 else merge_masks(parts)


def read_record_parts(
    record: ImageRecord, shape: tuple[int, int], *, value_coded: bool | None = None
) -> list[np.ndarray]:
    """A defect image's mask files as ``(H, W)`` integers, one per file (:func:`read_record_mask`).

    ``value_coded``: a value map names the masks' values (:func:`converters.masks.read_mask`: a palette PNG
    is read as its indices); None, where the record's layout brought one (``record.value_names``: LOCO's
    ``defects_config.json``, a 3D-AD ``class_ids.json``), as a conversion without ``--mask-values`` reads
    it, so every reader of a record (the converters, :mod:`anomaly.data`) reads the same pixels.

    Raises:
        UserError: a mask file unreadable or not of the image's ``(H, W)`` ``shape``, or (``value_coded``)
            a colour mask two of whose colours read as one value.
    """
    if value_coded is None:
        value_coded = bool(record.value_names)
    parts = []
    for path in record.mask_files:
        part = read_mask(path, value_coded=value_coded)
        if part.shape != shape:
            raise UserError(
                f"image/mask size mismatch: {record.image} is {shape[1]}x{shape[0]}, "
                f"{path} is {part.shape[1]}x{part.shape[0]}"
            )
        parts.append(part)
    return parts


class Exclusions(frozenset):
    """The ``--exclude-defect`` names; remembers those a layout found in the data (:attr:`matched`).

    Layouts test ``name in excluded`` for each defect folder or class they meet, so a name
    never found is one that left nothing out: a typo (``scratchh``) would convert everything.
    Names compare in Unicode's NFC form: ``fläck`` typed with one ``ä`` is the folder macOS named with
    ``a`` and a combining mark (it was "no such defect type", listing a name that looked the same).
    """

    matched: set[str]

    def __new__(cls, names: Iterable[str] = ()) -> Exclusions:
        exclusions = super().__new__(cls, (unicodedata.normalize("NFC", name) for name in names))
        exclusions.matched = set()
        return exclusions

    def __contains__(self, name: object) -> bool:
        key = unicodedata.normalize("NFC", name) if isinstance(name, str) else name
        found = super().__contains__(key)
        if found:
            self.matched.add(str(key))
        return found

    def check_matched(self, records: Sequence[ImageRecord], root: str | Path) -> None:
        """Refuses names no layout met while scanning ``root`` into ``records``.

        Raises:
            UserError: naming them and the defect types that were found.
        """
        if unmatched := sorted(self - self.matched):
            found = sorted({r.defect for r in records if not r.is_good} | self.matched)
            # a class a layout names by pixel value is one region kind among others in an image:
            # leaving it out would leave those regions unlabelled, so only whole defect types go
            classes = sorted(set(unmatched) & {n for r in records for _, n in r.value_names if n != GOOD})
            hint = (
                f"; {', '.join(classes)}: a class of the masks' pixel values (defects_config.json, "
                "class_ids.json), which cannot be left out"
                if classes
                else ""
            )
            raise UserError(
                f"--exclude-defect {' '.join(unmatched)}: no such defect type under {root} "
                f"(found, and excludable: {', '.join(found) or 'none'}){hint}; nothing would be left out"
            )


def scan_category(
    root: str | Path,
    category: str,
    *,
    exclude_defects: Iterable[str] = (),
    layout: str | None = None,
    include_unlabelled: bool = False,
    resolve_empty_masks: bool = True,
    allow_missing_masks: bool = False,
) -> list[ImageRecord]:
    """Lists and pairs the images and masks of one category.

    Args:
        root: folder of categories, or the category folder itself.
        category: category name.
        exclude_defects: defect types to leave out (e.g. ``combined``).
        layout: read the category as this layout (:data:`converters.layouts.LAYOUTS`);
            None detects it.
        include_unlabelled: also list images without ground truth (MVTec AD 2's
            ``test_private*``), as records with ``unlabelled`` set.
        resolve_empty_masks: read the masks of layouts that mark good images by an
            empty mask (KolektorSDD, SDD2) now; False leaves that to the caller
            (:func:`settle_empty_mask`), so a converter reads each mask once.
        allow_missing_masks: record a defect image without a mask (``test/<defect>/`` of MVTec AD,
            AD 2, 3D-AD, LOCO, BTAD; VisA's ``Anomaly``; the folder layout's ``images/``) with
            ``mask_missing`` instead of refusing it: for the anomaly package, which fits on good images
            alone and leaves such images out of the pixel figures (KolektorSDD and SDD2, whose mask says
            whether a photo is a defect at all, still refuse it). The converters never pass it: a
            converted data set needs every defect's mask.

    Returns:
        Records in the layout's order (subset, defect, stem for the MVTec trees).

    Raises:
        UserError: unknown, ambiguous or empty category, a defect image without a
            mask (unless ``allow_missing_masks``), or a mask without an image; one line naming the file.
            A name from the category's folder down that holds a line break
            (:func:`common.folders.check_one_line_names`): the outputs name the photos by it.
    """
    folder = category_dir(root, category, layout=layout)
    # its own name first: a layout's errors and the one below name it (as do the files' names, checked after)
    check_one_line_names(folder, below=folder.parent)
    chosen = get_layout(layout) if layout else detect_layout(folder)
    records = layout_records(
        folder, category, chosen, exclude_defects, unlabelled=include_unlabelled, optional=allow_missing_masks
    )
    for record in records:  # every layout's files, however it listed them; not the folders above the category
        for path in (record.image, *record.mask_files):
            check_one_line_names(path, below=folder.parent)
    note_link_loops(folder)
    if resolve_empty_masks:
        records = settle_empty_masks(records)
    return records


def note_link_loops(folder: Path) -> None:
    """A note naming the link loops in a category ``folder`` (hidden folders aside) that its layout read
    nothing through: a ``train/good -> good`` or KolektorSDD's ``kos02 -> kos02`` left its photos out of the
    data set without a word, passed over as a stray loop is (:func:`converters.records.subfolders`)."""
    loops = sorted(_link_loops(folder))
    if loops:
        what = "1 link loop" if len(loops) == 1 else f"{len(loops)} link loops"
        layout_note(
            f"{what} in {folder} not read ({few([str(loop.relative_to(folder)) for loop in loops])}): a "
            "symbolic link that leads back to itself, to no file or folder; point it at its folder"
        )


def _link_loops(folder: Path) -> Iterable[Path]:
    """The link loops below ``folder``, links not followed, hidden entries passed over."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            if not os.path.exists(entry.path) and link_loop(entry.path) == Path(entry.path).absolute():
                yield Path(entry.path)
        elif entry.is_dir():
            yield from _link_loops(Path(entry.path))


def layout_records(
    folder: Path,
    category: str,
    chosen: Layout,
    exclude_defects: Iterable[str],
    *,
    unlabelled: bool,
    optional: bool,
) -> list[ImageRecord]:
    """The records the ``chosen`` layout scans in a category ``folder`` (:func:`scan_category`), less the
    ``exclude_defects`` and (unless ``unlabelled``) the unlabelled images; ``optional``: a defect image's
    mask may be missing (:func:`converters.layouts.base.optional_masks`). The layout's notes are said after
    the scan.

    Raises:
        UserError: the layout's, or no record left: one line naming the folder, the layout and the first
            note (where nothing was read).
    """
    excluded = exclude_defects if isinstance(exclude_defects, Exclusions) else Exclusions(exclude_defects)
    # the first note said in the error where nothing was read, the others before it (collected_notes)
    with collected_notes() as notes, optional_masks(optional):
        # said before the scan, which may fail for what they name (defect photos in a folder not read)
        if chosen.reads:
            note_folders_left_out(folder, chosen.reads, layout=chosen.title)
        if chosen.name != "folder":  # the folder layout's --root may be the photos' own folder
            note_loose_images(folder, f"its {', '.join(f'{r}/' for r in chosen.reads) or 'subfolders'}")
        records = [r for r in chosen.scan(folder, category, excluded) if r.defect not in excluded]
        if not unlabelled:
            records = [r for r in records if not r.unlabelled]
        if not records:
            # Kolektor SDD2 with _GT.bmp masks reads as MVTec AD: its photos lie directly in train/ and test/
            why = f"; {notes[0]}" if notes else ""
            raise UserError(f"category {category!r} has no images: {folder} (read as {chosen.title}){why}")
    for note in notes:
        layout_note(note)
    return records


def check_output_stems(records: Iterable[ImageRecord]) -> None:
    """Refuses two records that would be written under one file name in the data set.

    ``test/a_b/c.png`` and ``test/a/b_c.png`` both become ``<category>_test_a_b_c``: one
    image would silently replace the other. Names are compared ignoring case and Unicode form
    (:func:`~converters.records.stem_key`), as a case-insensitive file system (macOS, Windows) would.

    Raises:
        UserError: naming both source images; a name that is not UTF-8 (:func:`check_utf8_names`:
            the COCO file names every image).
    """
    seen: dict[str, ImageRecord] = {}
    for record in records:
        check_utf8_names(record.image)
        name = stem_key(record.output_stem).casefold()
        if name in seen:
            raise UserError(
                f"two images map to one output name '{record.output_stem}': {seen[name].image} and "
                f"{record.image} (rename one of them)"
            )
        seen[name] = record


def enclosing_category(folder: str | Path, *, layout: str | None = None) -> Path | None:
    """The category folder ``folder`` lies in, up to 3 levels up (``test/crack``, VisA's
    ``Data/Images/Anomaly``), or None: a ``--root`` given one folder too deep."""
    for parent in list(Path(folder).resolve().parents)[:3]:
        with contextlib.suppress(OSError):  # a parent that cannot be listed is not taken for it
            if is_category(parent, layout):
                return parent
    return None


def scan(
    root: str | Path,
    categories: Sequence[str] | None = None,
    *,
    exclude_defects: Iterable[str] = (),
    layout: str | None = None,
    include_unlabelled: bool = False,
    resolve_empty_masks: bool = True,
) -> list[ImageRecord]:
    """Records of several categories (all under ``root`` when ``categories`` is None or empty).

    Each category is read with its own layout (detected) unless ``layout`` forces one;
    the keywords are those of :func:`scan_category`.

    Raises:
        UserError: as :func:`scan_category`, or an ``exclude_defects`` name found in no category.
    """
    if layout is not None:
        get_layout(layout)
    names = list(categories) if categories else categories_to_convert(root, layout=layout)
    if not names:
        if enclosing := enclosing_category(root, layout=layout):
            raise UserError(
                f"no category folders under {root}: it is inside the category folder {enclosing}; "
                f"pass --root {enclosing}"
            )
        parent = named_root(root).resolve().parent
        try:  # a parent that cannot be listed (Permission denied) names none
            known = list_categories(parent, layout=layout)
        except OSError:
            known = []
        if known:  # VisA's split_csv/, a folder beside them given
            raise UserError(
                f"no category folders under {root}; its parent folder holds categories ({few(known)}): "
                f"pass --root {parent} to convert them"
            )
        what = get_layout(layout).looks_for if layout else looked_for()
        raise UserError(f"no category folders under {root}{_case_hint(Path(root))}; looked for {what}")
    excluded = Exclusions(exclude_defects)
    records: list[ImageRecord] = []
    for name in names:
        records += scan_category(
            root,
            name,
            exclude_defects=excluded,
            layout=layout,
            include_unlabelled=include_unlabelled,
            resolve_empty_masks=resolve_empty_masks,
        )
    excluded.check_matched(records, root)
    return records
