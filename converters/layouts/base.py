"""What a data set layout is: how to recognise one of its category folders, and how to read it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from common.errors import UserError
from common.folders import check_one_line_names
from common.image_files import IMAGE_SUFFIXES, is_image_file
from common.photo_sources import files_left_out, left_out_line
from converters.records import (
    GOOD,
    MASK_SUFFIX,
    ImageRecord,
    images_by_stem,
    masks_by_stem,
    pair_by_stem,
    subfolders,
)

#: ``scan(category folder, category name, excluded defect names) -> records``.
Scanner = Callable[[Path, str, frozenset[str]], list[ImageRecord]]

#: Where :func:`layout_note` puts a note: the list a :func:`collected_notes` block gathers, else stderr.
_NOTES: ContextVar[list[str] | None] = ContextVar("layout_notes", default=None)
#: Whether :func:`scan_subset` keeps a defect image without a mask (:func:`optional_masks`).
_MASKS_OPTIONAL: ContextVar[bool] = ContextVar("masks_optional", default=False)


def layout_note(note: str) -> None:
    """A note of the conversion's, for the user to read: a scanner's on how it read a category (a guess
    it made, a folder it left out), or the writer's on what it wrote (the label rows
    :func:`converters.dataset.write_dataset` writes once). Gathered for the conversion's report inside
    :func:`collected_notes` (once: several categories say the same), else said in a ``note:`` line on
    stderr (``anomaly.train --root``). Named for the layouts' scans, its first use."""
    notes = _NOTES.get()
    if notes is None:
        print(f"note: {note}", file=sys.stderr, flush=True)
    elif note not in notes:
        notes.append(note)


@contextmanager
def collected_notes() -> Iterator[list[str]]:
    """Gathers the :func:`layout_note` s said inside the block (the scans', the writer's), each once, in
    their order.

    Where the block fails with a :class:`UserError`, they are passed on as :func:`layout_note` s (onto
    stderr before the ``error:`` line, or into an enclosing block), less one the error quotes: a
    ``folder not read`` note may explain the failure, and was lost with it.
    """
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    except UserError as error:
        _NOTES.reset(token)
        token = None
        for note in notes:
            if note not in str(error):
                layout_note(note)
        raise
    finally:
        if token is not None:
            _NOTES.reset(token)


@contextmanager
def optional_masks(optional: bool = True) -> Iterator[None]:
    """Inside the block (``optional``), a defect image without a mask is recorded as ``mask_missing``
    instead of refused (:func:`masks_are_optional`): MVTec AD, AD 2, 3D-AD, LOCO, VisA, BTAD and the folder
    layout, whose defect folder (VisA's ``Anomaly``, or its split file's label) says the photo is a defect.

    The other layouts still refuse it (KolektorSDD's mask says whether a photo is good at all). Only
    ``scan_category(..., allow_missing_masks=True)`` asks for it; a converted data set needs every mask.
    """
    token = _MASKS_OPTIONAL.set(optional)
    try:
        yield
    finally:
        _MASKS_OPTIONAL.reset(token)


def masks_are_optional() -> bool:
    """Whether a scanner keeps a defect image without a mask (inside :func:`optional_masks`)."""
    return _MASKS_OPTIONAL.get()


def no_type_folders(photo_folder: Path) -> list[Path]:
    """:attr:`Layout.type_folders` of a layout without defect-type folders: none."""
    return []


def type_folders_beside(
    photo_folder: Path, *, depth: int = 1, subsets: Collection[str] = (), not_types: Collection[str] = ()
) -> list[Path]:
    """The defect-type folders of the subset a folder of read photos lies in, its own among them
    (:attr:`Layout.type_folders`): the subfolders of the folder ``depth`` levels above it (1: MVTec AD's
    ``test/<type>/``; 2: MVTec 3D-AD's ``test/<type>/rgb/``), less ``not_types`` (MVTec AD 2's
    ``test_public/ground_truth/``); none where that folder's name is not one of ``subsets`` (when given:
    AD 2's ``test_private/`` photos, a VisA split file's photos from elsewhere)."""
    subset = photo_folder.parents[depth - 1]
    if subsets and subset.name not in subsets:
        return []
    return [folder for folder in subfolders(subset) if folder.name not in not_types]


@dataclass(frozen=True)
class Layout:
    """One data set layout of the registry (:data:`converters.layouts.LAYOUTS`).

    Attributes:
        name: the ``--layout`` value (``mvtec_ad``).
        title: the data set's own name (``MVTec AD``), for the summary.
        looks_for: what :attr:`matches` checks, for the error when nothing matches.
        matches: ``matches(folder)``: ``folder`` looks like a category of this layout.
        scan: reads a category folder into records (:data:`Scanner`).
        refines: layouts this one is a special case of (MVTec 3D-AD has MVTec AD's
            ``train/`` and ``test/``): a folder both match is this one, not ambiguous.
        reads: the category's folders the layout reads, as shell patterns of one case (``test_private*``:
            every name with that start; ``kos[0-9][0-9]``); a folder beside them that holds images is
            named in a note (:func:`note_folders_left_out`). Empty: every folder is read.
        type_folders: ``type_folders(folder)``: given a folder that read photos lie in, the defect-type
            folders of its subset, its own type's among them (MVTec AD's ``test/<type>/``, the folder
            layout's ``images/`` and ``good/``), where an empty one is a warning
            (:func:`converters.layouts.empty_folder_warnings`); none where the layout has no such folders
            (KolektorSDD's items, Kolektor SDD2's flat subsets).
        photos_in: the subfolder of a type folder that holds its photos (MVTec 3D-AD's ``rgb``); empty:
            the type folder itself.
        type_names: the type of a type folder's photos by the folder's name, where it is not that name (the
            folder layout's ``images/``: ``defect``; VisA's ``Anomaly/``: ``anomaly``).
        needed: the type folders the layout cannot do without (the folder layout's ``images/``: a category
            without it is no folder-layout category), which an empty one's warning asks to fill, not to
            remove; another (VisA's ``Normal/``, read without a split file) may be removed.
        good_folder: the name of a type folder that holds good photos (BTAD's ``ok``), which an empty one's
            warning calls ``good photos``.
    """

    name: str
    title: str
    looks_for: str
    matches: Callable[[Path], bool]
    scan: Scanner
    refines: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    type_folders: Callable[[Path], list[Path]] = no_type_folders
    photos_in: str = ""
    type_names: Mapping[str, str] = field(default_factory=dict)
    good_folder: str = GOOD
    needed: tuple[str, ...] = ()


def note_files_left_out(folder: Path) -> None:
    """A :func:`layout_note` naming the files of a photo folder that no image suffix read here takes in.

    A photo saved as ``.heic`` (a phone's), good or defect, left the data set without a word.
    """
    if left := files_left_out(folder.iterdir()):
        layout_note(left_out_line(left, f"in {folder}"))


def note_photo_named_folders(folder: Path) -> None:
    """A :func:`layout_note` naming the folders of a good photos' folder that are named like photos
    (``000.png/``) and hold no image: such a photo's place taken by a folder left the data set without a
    word (a defect photo's is named by its mask's error; a folder holding images, by
    :func:`note_folders_left_out`)."""
    named = [
        path
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_dir()
    ]
    if named := [path for path in named if not _image_count(path)]:
        folders = "1 folder" if len(named) == 1 else f"{len(named)} folders"
        shown = ", ".join(f"{path.name}/" for path in named[:3]) + (", ..." if len(named) > 3 else "")
        layout_note(f"{folders} in {folder} named like a photo left out (no photo in it): {shown}")


def is_read(name: str, reads: tuple[str, ...]) -> bool:
    """``name`` is a folder of ``reads`` (:attr:`Layout.reads`: shell patterns, case counts)."""
    return any(fnmatchcase(name, read) for read in reads)


def _image_count(folder: Path) -> int:
    """Image files anywhere under ``folder``, hidden files and folders out."""
    return sum(
        1
        for path in folder.rglob("*")
        if is_image_file(path) and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def note_folders_left_out(
    folder: Path,
    reads: tuple[str, ...] = (),
    *,
    layout: str = "",
    named: tuple[str, ...] = (),
    photo_named: bool = False,
) -> None:
    """A :func:`layout_note` per subfolder of ``folder`` that is neither in ``reads`` (shell patterns) nor
    one of ``named`` (folder names, as a split file spells them: ``batch[1]`` is no pattern) and holds images;
    with ``photo_named`` (a good photos' folder), one naming those named like photos that hold none
    (:func:`note_photo_named_folders`).

    A ``validation/`` added to an MVTec AD tree, or ``test/crack/more/``, was left out of the data set
    without a word: the layout reads only the folders it knows.
    """
    for sub in subfolders(folder):
        if sub.name in named or is_read(sub.name, reads) or not (count := _image_count(sub)):
            continue
        images = f"{count} image file{'s' if count > 1 else ''}"
        shown = ", ".join(f"{r}/" for r in (*reads, *named))
        known = f"; the {layout} layout reads {shown} here" if shown else ""
        layout_note(f"folder not read: {sub} ({images} left out{known})")
    if photo_named:
        note_photo_named_folders(folder)


def note_loose_images(folder: Path, reads: str) -> None:
    """A :func:`layout_note` naming the image files directly in ``folder``, which the layout reads
    only from ``folder``'s subfolders (``reads`` says which).

    Good photos put straight into ``train/`` (not ``train/good/``) left the data set without a word.
    """
    loose = sorted(p for p in folder.iterdir() if is_image_file(p)) if folder.is_dir() else []
    if loose:
        files = f"{len(loose)} image file{'s' if len(loose) > 1 else ''}"
        layout_note(f"{files} directly in {folder} left out, e.g. {loose[0].name} (the layout reads {reads})")


def check_good_name(folder: Path, good: str = GOOD) -> None:
    """Refuses a subset's folder named like its good folder but for letter case (``test/Good/``, BTAD's
    ``OK/``: a tree copied from Windows or macOS), naming it: it was read as a defect type, and its good
    photos were refused for want of masks ('defect image has no mask'), or taken as defects without one.

    Raises:
        UserError: ``folder`` is such a folder.
    """
    if folder.name != good and folder.name.casefold() == good.casefold():
        raise UserError(f"good images' folder {folder} is named '{folder.name}', not '{good}': rename it")


def scan_subset(
    subset_dir: Path,
    truth_dir: Path,
    *,
    category: str,
    layout: str,
    split: str,
    excluded: frozenset[str],
    good: str = GOOD,
    mask_suffix: str = MASK_SUFFIX,
    defects_allowed: bool = True,
) -> list[ImageRecord]:
    """Records of an MVTec-style subset folder: ``<subset>/<defect>/<stem>.<ext>``.

    Masks of ``<defect>`` are ``<truth_dir>/<defect>/<stem><mask_suffix>.<ext>``; the
    folder named ``good`` holds the good images (recorded as ``good`` whatever its name). Inside
    :func:`optional_masks`, a defect image without a mask is recorded with ``mask_missing``.

    Args:
        subset_dir: ``train/``, ``test/``, ``test_public/``, ...; absent means no records.
        truth_dir: the ground-truth folder of its defect folders (skipped when it sits inside).
        category, layout: recorded as given.
        split: the record's ``layout_split``.
        excluded: defect names to leave out.
        good: the name of the good folder (``ok`` in BTAD).
        mask_suffix: ``_mask`` (MVTec AD), or ``""`` where masks are named like images.
        defects_allowed: False for a subset that may hold only good images.

    Raises:
        UserError: a defect folder where none may be, or an image/mask pairing error.
    """
    records: list[ImageRecord] = []
    subset = subset_dir.name
    note_loose_images(subset_dir, f"{subset}/<defect>/ folders, {subset}/{good}/ for good images")
    for defect_dir in subfolders(subset_dir):
        if defect_dir == truth_dir:
            continue
        defect = GOOD if defect_dir.name == good else defect_dir.name
        if defect in excluded or defect_dir.name in excluded:
            continue
        records += _scan_type_folder(
            defect_dir,
            truth_dir,
            category=category,
            layout=layout,
            split=split,
            good=good,
            mask_suffix=mask_suffix,
            defects_allowed=defects_allowed,
        )
    return records


def _scan_type_folder(
    defect_dir: Path,
    truth_dir: Path,
    *,
    category: str,
    layout: str,
    split: str,
    good: str,
    mask_suffix: str,
    defects_allowed: bool,
) -> list[ImageRecord]:
    """Records of one folder of a subset (:func:`scan_subset`): its good images, or its defect images
    paired with their masks in ``truth_dir / <folder name>``.

    Raises:
        UserError: a good folder named but for letter case, a defect folder where ``defects_allowed`` is
            False, or an image/mask pairing error.
    """
    subset_dir = defect_dir.parent
    subset = subset_dir.name
    defect = GOOD if defect_dir.name == good else defect_dir.name
    check_good_name(defect_dir, good)
    images = images_by_stem(defect_dir)
    note_files_left_out(defect_dir)
    note_folders_left_out(defect_dir, photo_named=defect == GOOD)
    if defect == GOOD:
        return [
            ImageRecord(p, category, subset, GOOD, layout=layout, layout_split=split) for p in images.values()
        ]
    if not defects_allowed:
        check_one_line_names(defect_dir, below=subset_dir)  # before the error names it
        raise UserError(f"defect folder in {subset}/: {defect_dir} (the layout keeps only {subset}/{good})")
    pairs = defect_pairs(images, defect_dir, truth_dir / defect_dir.name, mask_suffix=mask_suffix)
    return [
        ImageRecord(
            image,
            category,
            subset,
            defect,
            mask,
            layout=layout,
            layout_split=split,
            mask_missing=mask is None,
        )
        for image, mask in pairs
    ]


def defect_pairs(
    images: dict[str, Path], defect_dir: Path, mask_dir: Path, *, mask_suffix: str
) -> list[tuple[Path, Path | None]]:
    """:func:`paired_masks` of a defect folder of a subset (:func:`scan_subset`); its error, which names the
    folder, comes after :func:`common.folders.check_one_line_names`'s where that name holds a line break."""
    try:
        return paired_masks(images, image_dir=defect_dir, mask_dir=mask_dir, suffix=mask_suffix)
    except UserError:  # it names the folder: over two lines where its name holds a line break
        check_one_line_names(defect_dir, below=defect_dir.parent)
        raise


def paired_masks(
    images: dict[str, Path], *, image_dir: Path, mask_dir: Path, suffix: str
) -> list[tuple[Path, Path | None]]:
    """``(image, mask)`` pairs of a defect folder's ``images`` (from ``image_dir``, by stem) and the masks
    in ``mask_dir`` named with ``suffix``; a mask None inside :func:`optional_masks`. A note names
    the subfolders of ``mask_dir`` left out.

    Raises:
        UserError: an image without a mask (outside :func:`optional_masks`) or a mask without an image
            (:func:`converters.records.pair_by_stem`).
    """
    masks = masks_by_stem(mask_dir, suffix)
    note_folders_left_out(mask_dir)
    return pair_by_stem(
        images,
        masks,
        mask_dir=mask_dir,
        image_dir=image_dir,
        suffix=suffix,
        masks_optional=masks_are_optional(),
    )


def check_orphan_masks(
    truth_dir: Path,
    test_dir: Path,
    defects: set[str],
    excluded: frozenset[str],
    *,
    mask_suffix: str = MASK_SUFFIX,
    good: str = GOOD,
) -> None:
    """A ground-truth folder with masks but no ``<test_dir>/<defect>`` folder is an error.

    Masks of the good folder (``ground_truth/good/``) are not read, good images having no defect:
    a note names them, where one holding a defect would otherwise be passed over unsaid.
    """
    note_loose_images(truth_dir, f"{truth_dir.name}/<defect>/ folders of masks")
    for defect_dir in subfolders(truth_dir):
        if defect_dir.name == good and (masks := masks_by_stem(defect_dir, mask_suffix)):
            count = f"{len(masks)} mask{'s' if len(masks) > 1 else ''}"
            layout_note(f"{count} of good images in {defect_dir} not read: a good image has no defect")
            continue
        if defect_dir.name in defects or defect_dir.name in excluded:
            continue
        masks = masks_by_stem(defect_dir, mask_suffix)
        if masks:
            check_one_line_names(defect_dir, below=truth_dir)  # before the error names it
            orphan = next(iter(masks.values()))
            raise UserError(f"mask has no image: {orphan} (no folder {test_dir / defect_dir.name})")
