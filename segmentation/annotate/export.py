"""The annotation app's output: an MVTec AD-layout category, and YOLO + COCO through the converters.

Layout under ``--out`` (``<category>`` defaults to the name of the ``--out`` folder)::

    <out>/annotate_state.json                          the app's state (source of truth, resumable)
    <out>/<category>/test/<class>/<stem>.<ext>         images with defects of one class
    <out>/<category>/test/combined/<stem>.<ext>        images with defects of several classes
    <out>/<category>/test/good/<stem>.<ext>            images marked good
    <out>/<category>/ground_truth/<folder>/<stem>_mask.png
    <out>/<category>/mask_values.json                  pixel value -> class, for --mask-values
    <out>/export/                                      YOLO + COCO from :func:`export_dataset`
    <out>/replaced/<stem>-<time>/                      labels of a photo replaced by one of another size

Masks are value-coded with one map for the whole category: class ``i`` of the
class list is pixel value ``255 - i`` (the first class is 255, as in MVTec's
0/255 masks), 0 is background. So the tree reads two ways with the stock
converters:

- ``python -m converters.mvtec2yolo --root <out> ...``: a mask is "``> 0`` is
  defect" and the class is the folder name: exact for single-class images,
  ``combined`` for images with several classes (MVTec's own name for them);
- with ``--mask-values <out>/<category>/mask_values.json``: every instance gets
  its own class, also on ``combined`` images. :func:`export_dataset` reads it so.

Instances are regions of one mask per image, as in MVTec: where two instances
overlap, the later one wins the pixels, and touching instances of one class
read back as one region.
"""

from __future__ import annotations

import filecmp
import fnmatch
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from common.errors import UnreadableFileError, UserError, few, read_advice
from common.exif import is_rotated
from common.folders import foreign_names
from common.image_files import IMAGE_SUFFIXES
from common.images import displayed_size
from common.io import atomic_write, file_exists
from converters.convert import ConversionReport, ConvertConfig, convert
from converters.dataset import DATASET_NAMES
from converters.mvtec import MASK_SUFFIX
from converters.splits import SPLITS, SPLITS_FILE, load_splits, save_splits
from converters.value_masks import (  # noqa: F401  # the value-mask convention, re-exported for the app
    FIRST_VALUE,
    MASK_VALUES_FILE,
    MIXED,
    class_values,
    compose_mask,
    defect_folder,
    write_value_map,
)
from segmentation.annotate.errors import AnnotationError, ExportCancelledError
from segmentation.embeddings import load_rgb

#: Folder under ``--out`` that :func:`export_dataset` writes YOLO + COCO to.
EXPORT_DIR = "export"
#: Folder under ``--out`` where the labels of a photo replaced by one of another size are set aside.
REPLACED_DIR = "replaced"


def needs_upright_copy(source: Path) -> bool:
    """True when the file carries an EXIF orientation other than "upright".

    SAM, OpenCV and browsers show such a photo rotated as the tag says, while
    PIL (which the converters read image sizes with) reports the stored pixels:
    the copy in the tree is then written upright as PNG so that the mask fits
    it whichever way it is read. An unreadable file is not rotated here: load_rgb decides what is
    readable, and an unreadable file never gets this far.
    """
    return is_rotated(source)


def upright_size(source: Path, name: str | None = None) -> tuple[int, int]:
    """``(H, W)`` of an image as SAM and browsers show it (EXIF orientation applied), from its header
    (:func:`common.images.displayed_size`).

    ``name``: what its error calls the photo, its key (the path relative to ``--images``: photos of one
    file name in two folders are told apart); None: its file name.

    Raises:
        AnnotationError: not a readable image.
    """
    try:
        width, height = displayed_size(source)
    except UserError as error:  # it names the whole path; the page knows photos by their key
        raise AnnotationError(str(error).replace(str(source), name or source.name, 1)) from None
    return height, width


def copy_suffix(source: Path) -> str:
    """Suffix of the image copy in the tree: the source's (lower case), ``.png`` for re-encoded ones."""
    return ".png" if needs_upright_copy(source) else source.suffix.lower()


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a ``(H, W)`` uint8 mask or ``(H, W, 3)`` uint8 RGB image."""
    data = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    ok, buffer = cv2.imencode(".png", data)
    if not ok:  # pragma: no cover - only on a broken OpenCV build
        raise AnnotationError("could not encode a PNG")
    return buffer.tobytes()


def tree_files(category_dir: Path) -> dict[str, list[Path]]:
    """Image copies and masks in the tree by image stem, read in one pass over the folders."""
    found: dict[str, list[Path]] = {}
    for part, is_mask in (("test", False), ("ground_truth", True)):
        root = category_dir / part
        if not root.is_dir():
            continue
        for folder in root.iterdir():
            if not folder.is_dir() or not is_tree_folder(folder.name):
                continue
            for path in folder.iterdir():
                stem = _tree_stem(path, is_mask)
                if stem is not None:
                    found.setdefault(stem, []).append(path)
    return found


def is_tree_folder(name: str) -> bool:
    """Whether a folder under the tree's ``test/`` or ``ground_truth/`` named ``name`` holds the app's files:
    a class folder, or the hidden folder of a case-only rename cut short (:data:`CASE_FOLDER`), whose files
    :func:`sync_image` moves out. Any other hidden folder (``.backup``) is the user's: its images were moved
    or deleted as stale copies of the app's.
    """
    return not name.startswith(".") or fnmatch.fnmatchcase(name, CASE_FOLDER.format(name="*", token="*"))


def _tree_stem(path: Path, is_mask: bool) -> str | None:
    if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    if not is_mask:
        return path.stem
    return path.stem[: -len(MASK_SUFFIX)] if path.stem.endswith(MASK_SUFFIX) else None


def stem_files(category_dir: Path, stem: str) -> list[Path]:
    """The image copies and masks of one stem in the tree (:func:`tree_files` of one image)."""
    return [
        path
        for pattern, is_mask in (
            (f"test/*/{stem}.*", False),
            (f"ground_truth/*/{stem}{MASK_SUFFIX}.*", True),
        )
        for path in category_dir.glob(pattern)
        if _tree_stem(path, is_mask) == stem and is_tree_folder(path.parent.name)
    ]


def move_stem_files(category_dir: Path, stem: str, target: Path) -> list[Path]:
    """Moves one stem's copies and masks out of the tree into the folder ``target``; their new paths.

    Flat, under their own names (``<stem>.png``, ``<stem>_mask.png``): ``target`` must not read as
    an MVTec category, or converters given ``--root <out>`` would take it for a second data set.
    """
    moved = []
    for path in stem_files(category_dir, stem):
        destination = target / path.name
        if destination.exists():  # a stale copy in a second folder: named by that folder too
            destination = target / f"{path.parent.name}_{path.name}"
        os.replace(path, destination)
        _remove_if_empty(path.parent)
        moved.append(destination)
    return moved


def rename_class_folders(category_dir: Path, renames: Mapping[str, str]) -> None:
    """Renames the tree's ``test/<old>`` and ``ground_truth/<old>`` folders to the new class names, each
    in one ``os.rename``.

    A folder whose new name is taken (two classes swapping names; a rename cut short, then undone) is
    left where it is: :func:`sync_image` moves its photos' files one by one, as on any start after a
    change of class. On a file system blind to case, ``scratch`` to ``Scratch`` is one folder renamed.
    """
    for part in ("test", "ground_truth"):
        for old, new in renames.items():
            source, target = category_dir / part / old, category_dir / part / new
            if not source.is_dir() or source.is_symlink():
                continue
            if not (target.exists() or target.is_symlink()) or os.path.samefile(source, target):
                os.rename(source, target)


#: The hidden name :func:`match_class_folder_case` passes a class folder through: the folder's stored name,
#: a token new each time.
CASE_FOLDER = ".{name}.case-{token}.tmp"


def match_class_folder_case(category_dir: Path, classes: Sequence[str]) -> None:
    """Gives the tree's ``test/`` and ``ground_truth/`` folder of a class whose name as stored differs
    from the class's only in case (``scratch`` of the class ``Scratch``) the class's spelling.

    A ``--rename-class scratch=Scratch`` cut short after the state was written left the folder
    ``scratch``; on a file system blind to case (macOS, Windows) ``test/Scratch`` is that folder, so
    :func:`sync_image` found every file in place and the folder kept the old spelling for good. The
    stored name is read from the folder's listing. POSIX lets a rename between two names of one file
    do nothing, which two spellings of a name are there, so the folder goes through a hidden name, new
    each time (:data:`CASE_FOLDER`: one named by the process id, left by a run cut short, refused the next
    rename where ids come round again, as in containers). A folder spelled as another class, or one of
    several spellings, is left to :func:`sync_image`.
    """
    for part in ("test", "ground_truth"):
        root = category_dir / part
        try:
            stored = os.listdir(root)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in classes:
            if name in stored:
                continue
            spelled = [n for n in stored if n.lower() == name.lower() and n not in classes]
            if len(spelled) != 1 or (root / spelled[0]).is_symlink() or not (root / spelled[0]).is_dir():
                continue
            # cut short between the two, the hidden folder's files are moved out one by one by sync_image,
            # and the folder then removed by remove_case_leftovers
            hidden = root / CASE_FOLDER.format(name=spelled[0], token=uuid.uuid4().hex)
            os.rename(root / spelled[0], hidden)
            os.rename(hidden, root / name)


def remove_case_leftovers(category_dir: Path) -> None:
    """Removes the tree's hidden folders of case-only renames cut short (:func:`match_class_folder_case`)
    that hold nothing but a file browser's own files (``.DS_Store``: :func:`common.folders.foreign_names`),
    once :func:`sync_image` has moved their photos' files out: such a file kept one for good. A folder
    holding anything else is left as it is.
    """
    for part in ("test", "ground_truth"):
        for folder in sorted((category_dir / part).glob(CASE_FOLDER.format(name="*", token="*"))):
            if not folder.is_symlink() and folder.is_dir():
                _remove_if_empty(folder)


def rename_split_category(out: Path, old: str, new: str) -> None:
    """Gives the keys of category ``old`` in ``out/splits.json`` (``old/test/<folder>/<stem>``) the
    category ``new``: a re-export finds each photo by its key, else by its category and stem
    (:func:`converters.convert.kept_splits`), so with the keys as they were it drew every photo anew.

    No file, one that reads wrong (not JSON, a bad field: the next export refuses it, saying so), or no
    key of ``old`` (renamed already): nothing written.

    Raises:
        UnreadableFileError: naming the file, which cannot be read (permissions, a disk error) or looked for
            (:func:`common.io.file_exists`): its keys, perhaps of ``old``, are not passed over as renamed,
            which left the next export to draw every photo anew.
        OSError: the file cannot be written.
    """
    path = out / SPLITS_FILE
    if not file_exists(path):
        return
    try:
        splits = load_splits(path)
    except UserError:
        try:  # load_splits says 'cannot read' of both: a file that does not read is not one that reads wrong
            path.read_bytes()
        except OSError as error:
            raise UnreadableFileError(error.errno, error.strerror, str(path)) from error
        return
    prefix = f"{old}/"
    if not any(key.startswith(prefix) for split in SPLITS for key in splits[split]):
        return
    renamed = {
        split: [f"{new}/{key[len(prefix) :]}" if key.startswith(prefix) else key for key in splits[split]]
        for split in SPLITS
    }
    save_splits(replace(splits, **renamed), path)


def sync_image(
    category_dir: Path,
    *,
    source: Path,
    stem: str,
    folder: str | None,
    mask: np.ndarray | None,
    existing: Sequence[Path] | None = None,
) -> None:
    """Makes one image's files in the tree what its state says, touching nothing else.

    Writes ``test/<folder>/<stem><ext>`` (renamed from another folder if a copy is
    there, else copied from ``source``; copied again when ``source`` was replaced since,
    :func:`copy_is_current`) and ``ground_truth/<folder>/<stem>_mask.png``
    when ``mask`` is given, then removes this stem's files from every other
    folder (but a kept file named in another case, :func:`_is_kept`). Each file is
    written atomically; an interruption between files
    leaves this one image out of step with the state (saved before), which the
    next start of the app repairs (:meth:`AnnotationSession.open`).

    Args:
        category_dir: ``<out>/<category>``.
        source: the original image in ``--images``; it may be gone (an export with the photo folder
            gone) while the tree holds a copy, whose suffix is then kept.
        stem: the image's stem in the tree (unique in the category).
        folder: ``test/`` folder (a class, ``combined`` or ``good``); None: the
            image has no files (unlabelled).
        mask: ``(H, W)`` uint8 value-coded mask, or None (good or unlabelled images).
        existing: this stem's current files if already known (see :func:`tree_files`).
    """
    if existing is None:
        existing = stem_files(category_dir, stem)
    keep: set[Path] = set()
    if folder is not None:
        keep.add(_sync_copy(category_dir, source, stem, folder, mask, existing))
    if mask is not None:
        if folder is None:
            raise ValueError("a mask needs a folder")
        mask_target = category_dir / "ground_truth" / folder / f"{stem}{MASK_SUFFIX}.png"
        keep.add(mask_target)
        data = encode_png(mask)
        if not mask_target.is_file() or mask_target.read_bytes() != data:
            atomic_write(mask_target, data)
    for path in existing:
        if path not in keep and path.exists() and not _is_kept(path, keep):
            path.unlink()
            _remove_if_empty(path.parent)


def _sync_copy(
    category_dir: Path,
    source: Path,
    stem: str,
    folder: str,
    mask: np.ndarray | None,
    existing: Sequence[Path],
) -> Path:
    """:func:`sync_image`'s copy of the photo, ``test/<folder>/<stem><ext>``: renamed from another folder if
    a copy is there, else copied from ``source``, and copied again when ``source`` was replaced since.
    Returns its path."""
    copies = [p for p in existing if p.parent.parent.name == "test" and p.is_file()]
    moved = copies[0] if copies else None
    suffix = copy_suffix(source)
    if copies and not source.exists():  # no EXIF to say if it was re-encoded as PNG: the copy's suffix
        suffix = next((p for p in copies if p.parent.name == folder), copies[0]).suffix
    image_target = category_dir / "test" / folder / f"{stem}{suffix}"
    if not image_target.is_file():
        if moved is not None and moved.suffix == image_target.suffix:
            image_target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(moved, image_target)
            _remove_if_empty(moved.parent)
        else:
            _write_copy(source, image_target, mask)
    if not copy_is_current(source, image_target) and _fits(source, mask):  # replaced since copied
        _write_copy(source, image_target, mask)
    return image_target


def _is_kept(path: Path, keep: set[Path]) -> bool:
    """Whether ``path`` names one of ``keep`` spelled otherwise: the same file in the same folder.

    On a file system blind to case (macOS, Windows), ``test/scratch/a.png`` is ``test/Scratch/a.png``
    (a state renamed to ``Scratch`` beside a tree whose folder rename was cut short): unlinked, it took
    the copy or mask just kept. A hard link in another folder is another name of its own, removed.
    """
    for target in keep:
        try:
            if os.path.samefile(path, target) and os.path.samefile(path.parent, target.parent):
                return True
        except OSError:  # a target removed meanwhile: nothing there to keep
            continue
    return False


def copy_is_current(source: Path, copy: Path) -> bool:
    """Whether the tree's ``copy`` is of the photo now at ``source`` (True when the photo is gone).

    Copies carry their photo's modification time (:func:`_write_copy`), so an unchanged photo costs
    two stats. A byte-for-byte copy of another time (made before copies carried it) is compared
    once and then given it; a photo replaced on disk by another of its size keeps its outlines,
    and its copy, paired with them in every export, must be the photo the page shows.
    """
    try:
        photo, held = source.stat(), copy.stat()
    except FileNotFoundError:
        return True  # nothing to compare with: the copy stands in for a photo that is gone
    if photo.st_mtime_ns == held.st_mtime_ns:
        return photo.st_size == held.st_size or needs_upright_copy(source)  # upright: re-encoded as PNG
    if needs_upright_copy(source):
        return False  # a re-encoded copy compares with no photo's bytes: written again, with its time
    if filecmp.cmp(source, copy, shallow=False):
        os.utime(copy, ns=(held.st_atime_ns, photo.st_mtime_ns))
        return True
    return False


def _fits(source: Path, mask: np.ndarray | None) -> bool:
    """Whether the photo at ``source`` is an image of ``mask``'s ``(H, W)`` (any size without a mask).

    A photo replaced by one of another size, or by a file that is no image, keeps its old copy beside
    its old mask until its labels are set aside (:meth:`AnnotationSession.refresh_size`), so the tree
    never pairs a mask with a photo it does not fit.
    """
    try:
        size = upright_size(source)
    except AnnotationError:
        return False
    return mask is None or size == mask.shape


def _write_copy(source: Path, target: Path, mask: np.ndarray | None) -> None:
    """Writes ``source`` (upright, as PNG, when EXIF-rotated) to ``target``, with its modification time."""
    if not source.is_file():
        raise AnnotationError(
            f"the tree has no copy of {source.name} ({target} is missing) and its photo {source} is gone: "
            "give the photos' folder as --images"
        )
    modified = source.stat().st_mtime_ns  # before reading: a photo rewritten meanwhile is copied again
    if target.suffix == ".png" and needs_upright_copy(source):
        image = load_rgb(source)  # OpenCV applies the EXIF orientation, as SAM saw the image
        if mask is not None and mask.shape != image.shape[:2]:
            raise AnnotationError(f"mask {mask.shape} does not fit {source} ({image.shape[:2]})")
        atomic_write(target, encode_png(image))
    else:
        atomic_write(target, lambda file: _copy_into(source, file))
    os.utime(target, ns=(time.time_ns(), modified))  # copy_is_current then needs no read


def _copy_into(source: Path, file) -> None:
    with source.open("rb") as stream:
        shutil.copyfileobj(stream, file, 1 << 20)


def _remove_if_empty(folder: Path) -> None:
    """Removes ``folder`` when it holds nothing, or nothing but a file browser's own files (``.DS_Store``:
    :func:`common.folders.foreign_names`), those with it: such a file kept a class folder emptied by
    :func:`sync_image` for good, which the converters then read as a class without photos. A folder holding
    anything else, or a link to one, stays.
    """
    try:
        if folder.is_symlink() or foreign_names(folder, ()):
            return
        for path in folder.iterdir():
            if path.is_file() or path.is_symlink():  # a folder named .DS_Store stays, and this one with it
                path.unlink()
        folder.rmdir()
    except OSError:
        pass  # not empty (or already gone): only empty class folders are tidied away


def export_dataset(
    category_dir: Path,
    out: Path,
    *,
    task: str = "detect",
    on_photo: Callable[[str, int, int], object] | None = None,
    bars: bool = False,
) -> ConversionReport:
    """YOLO + COCO of the annotated category through :func:`converters.convert.convert`.

    The same call as ``python -m converters.mvtec2yolo --root <out>/<category>
    --out <out>/export --coco --mask-values <out>/<category>/mask_values.json
    --link hardlink --overwrite``: one seeded split, ``data.yaml``,
    ``labels/``, ``annotations/instances_*.json``. Class ids are the converters'
    (class names sorted). A photo the previous export's ``splits.json`` placed keeps its split
    (``keep_splits``): only photos new to the export are drawn, each split filled toward its share of
    the defect folder, so models trained on two exports are scored on the same photos, and none of an
    earlier val or test photo moves into train.

    ``on_photo``: the converters' progress hook (:class:`~converters.convert.ConvertConfig`), called between
    photos; what it raises stops the export, and ``out`` stays as it was. ``bars``: the converters' tqdm
    bars (``reading``, ``writing``) on stderr, as ``--export`` shows them; the page has its own progress.

    Raises:
        AnnotationError: ``out`` cannot take the export (:func:`check_export_folder`).
        UserError: from the converters, e.g. nothing labelled yet.
    """
    check_export_folder(out)
    return convert(
        ConvertConfig(
            root=category_dir,
            out=out,
            formats=("yolo", "coco"),
            task=task,
            mask_values=category_dir / MASK_VALUES_FILE,
            link="hardlink",
            overwrite=True,
            progress=bars,
            on_photo=on_photo,
            keep_splits=out / SPLITS_FILE,
        )
    )


@dataclass
class ExportProgress:
    """Where a running export is, for the page that polls it, and the page's request that it stop.

    Called by the converters between photos (:func:`export_dataset`'s ``on_photo``): it records the
    stage (``reading`` the tree, ``writing`` the data set) and the photos done, and once :attr:`cancel` is
    set it raises, so the export stops before its next photo and the half-written folder is discarded
    (:func:`~common.folders.build_folder` writes a hidden folder beside ``out`` and renames it at the
    end). A stop asked after the last photo is written comes too late: that export finishes. :attr:`id`
    (random, for each export; the page draws its own before it asks for the export) is what a cancel
    names, so a cancel sent late stops no later export.
    """

    out: Path
    stage: str = "preparing"
    done: int = 0
    total: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    #: When it began (``time.monotonic``): the status says how long it has run, as no limit stops it.
    started: float = field(default_factory=time.monotonic)

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Records ``done`` photos of ``total`` at ``stage``.

        Raises:
            ExportCancelledError: :attr:`cancel` is set (the export stops here, ``out`` as it was).
        """
        self.stage, self.done, self.total = stage, done, total
        self.check()

    def check(self) -> None:
        """Raises where :attr:`cancel` is set: before the first photo, or after the one last recorded.

        Raises:
            ExportCancelledError: :attr:`cancel` is set (the export stops here, ``out`` as it was).
        """
        if self.cancel.is_set():
            kept = "holds the last export, as it was" if self.out.is_dir() else "was not written"
            where = (
                f"after {self.stage} photo {self.done} of {self.total}"
                if self.done
                else "before its first photo"
            )
            raise ExportCancelledError(f"export cancelled {where}: nothing exported, {self.out} {kept}")

    def status(self) -> dict:
        """``{running, id, stage, done, total, elapsed_s, cancelling}`` for the page (``elapsed_s``: the
        seconds it has run, to a tenth)."""
        return {
            "running": True,
            "id": self.id,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "cancelling": self.cancel.is_set(),
        }


def check_export_folder(out: Path) -> None:
    """Refuses, in the words of the page and of ``--export``, an ``out`` the converters would refuse in
    theirs (naming ``--out`` and ``--overwrite``, options neither has, or no way out).

    Each export replaces ``out`` whole and keeps the split its ``splits.json`` records.

    Raises:
        AnnotationError: a file at ``out``, a name in it that no export writes (the user's file, which
            replacing the folder would delete), a ``splits.json`` that does not read.
    """
    if out.exists() and not out.is_dir():
        raise AnnotationError(
            f"{out} is a file, where the export writes its folder: move it away, then export"
        )
    if not out.is_dir():
        return
    others = foreign_names(out, DATASET_NAMES)
    if others:
        raise AnnotationError(
            f"{out} holds {few(others)}, which no export writes: each export replaces the folder whole and "
            "would delete it; move those out, then export"
        )
    try:
        if not file_exists(out / SPLITS_FILE):
            check_made_by_an_export(out)
            return
    except UnreadableFileError as error:
        raise AnnotationError(
            f"cannot read splits file {error.filename}: {error.strerror}: each export keeps the split of the "
            f"last one it records; {read_advice(error, error.filename)}, then export"
        ) from None
    try:
        load_splits(out / SPLITS_FILE)
    except UserError as error:
        raise AnnotationError(
            f"{error}: each export keeps the split of the last one it records; delete the export folder to "
            "draw the split anew (photos may then change split), then export"
        ) from None


def check_made_by_an_export(out: Path) -> None:
    """Refuses an ``out`` holding a data set's names but no ``splits.json``, which every export writes: a
    data set made by hand (the user's photos) or an export whose ``splits.json`` was deleted; the converters
    refuse it naming ``--overwrite``.

    Raises:
        AnnotationError: naming what it holds and the way out.
    """
    held = foreign_names(out, ())
    if held:
        raise AnnotationError(
            f"{out} holds {few(held)} but no {SPLITS_FILE}, which every export writes: it was made otherwise "
            f"(by hand, another tool) or its {SPLITS_FILE} was deleted, and each export replaces the folder "
            "whole; move the folder away (delete it if it is an earlier export: its split is then drawn "
            "anew), then export"
        )
