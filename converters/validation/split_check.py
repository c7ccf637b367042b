"""What one format's check of one split reports (:class:`SplitCheck`), and the checks YOLO and COCO
share: a split without images or of backgrounds only, images that are broken links, image files shared or
copied across splits, and the words for labelled images an EXIF tag turns.
"""

from __future__ import annotations

import collections
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import few
from common.io import link_loop
from converters.splits import SPLITS

#: The splits training needs images in; an empty one of the others (``test``) is a note, not a problem.
TRAINING_SPLITS = ("train", "val")


@dataclass
class SplitCheck:
    """Counts one format reports for one split."""

    images: int = 0
    instances: int = 0
    backgrounds: int = 0
    problems: list[str] = field(default_factory=list)
    #: What passes but deserves a word (a split of backgrounds only), shown beside ``ok``.
    notes: list[str] = field(default_factory=list)
    #: The file stems of the split's images (``category_subset_defect_stem``), to compare with splits.json.
    stems: set[str] = field(default_factory=set)
    #: What an empty split is called: ``no images``, or that ``data.yaml`` names no such split.
    empty: str = "no images"
    #: YOLO: the task the split was checked for, ``detect`` or ``segment``.
    task: str = ""
    #: COCO: an image's ``file_name`` for each annotation repeating the class and box of another of that image
    #: (:func:`repeated_boxes`): a YOLO detect file holds them as one row (:func:`note_one_row_for_repeats`).
    box_repeats: list[str] = field(default_factory=list)


def turned_line(
    turned: list[str], *, converted: bool, reader: str = "ultralytics", refused_by: str | None = None
) -> str:
    """What the status column says of labelled images (``turned``: their paths in the data set) that an EXIF
    tag turns (:func:`turned_labelled`); ``reader`` reads them turned (``ultralytics``, OpenCV).

    The converters refuse such a photo (:func:`common.exif.check_upright`): its labels come from a mask
    drawn on the stored pixels. One that gained the tag since (the original a symlinked image points to,
    re-saved by a phone app) was called ok, and was trained on with misplaced labels. Another tool's
    labels may have been drawn on the turned image, as ``reader`` reads it, so converting again is no
    remedy there: the line says the labels must be drawn on the turned image, or, where ``refused_by`` (the
    commands reading the format) refuse such an image whichever way its labels were drawn, that it must be
    saved upright with its labels.
    """
    shown = few(turned)
    images = "1 labelled image has" if len(turned) == 1 else f"{len(turned)} labelled images have"
    them = "it" if len(turned) == 1 else "them"
    tagged = f"{images} an EXIF orientation tag ({shown}): {reader} reads {them} turned"
    if converted:
        return (
            f"{tagged}, the labels, made from masks as stored, not; save the photos upright and convert again"
        )
    if refused_by:
        return (
            f"{tagged}, and {refused_by} refuse {them} whichever way the labels were drawn; save the photos "
            "upright, with their labels drawn on the upright images"
        )
    return f"{tagged}, as must the labels be"


def in_data_set(path: Path, data: dict) -> str:
    """``path`` as the data set's folder (ultralytics' ``data["path"]``) holds it: ``labels/val/x.txt`` of a
    converted one, ``valid/labels/x.txt`` of a Roboflow export (it was named ``labels/valid/x.txt``)."""
    root = Path(data["path"])
    for base in (root, root.resolve()):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return str(path)


def broken_links(paths: list[Path], data: dict, *, converted: bool = True) -> str | None:
    """A problem naming the images of ``paths`` that are links to a photo no longer there, and those that are
    link loops (:func:`link_loops_line`); None if none is.

    ``--link symlink`` (the default) links each image to its photo: once the photo tree was moved or
    deleted, ultralytics dropped the images unsaid, or stopped with a traceback where it read none.

    Args:
        data: ultralytics' ``check_det_dataset`` dict: the image is named in the data set
            (:func:`in_data_set`; ``valid/images/x.jpg`` of a Roboflow export was ``images/images/x.jpg``).
        converted: a data set the converters wrote; another tool's is not told to convert again.
    """
    links = [path for path in paths if path.is_symlink() and not path.exists()]
    loops = [path for path in links if link_loop(path) is not None]
    broken = [path for path in links if path not in loops]
    said = []
    if broken:
        first = broken[0]
        images = "1 image is a broken link" if len(broken) == 1 else f"{len(broken)} images are broken links"
        why = (
            "the photos moved or were deleted since the conversion; convert again (--link copy keeps copies)"
            if converted
            else "the files they point to were moved or deleted"
        )
        said.append(f"{images} (e.g. {in_data_set(first, data)} -> {os.readlink(first)}): {why}")
    if loops:
        said.append(link_loops_line(loops, data))
    return "; ".join(said) or None


def image_folders_line(folders: list[Path], data: dict) -> str | None:
    """A problem naming the ``folders`` in a split's images' places (``images/val/x.png/``), as ``data``'s
    folder holds them (:func:`in_data_set`); None if there is none.

    ultralytics lists such a folder among a YOLO split's images and drops it, unsaid (the check then called
    its label file one without an image); the COCO check called the image missing.
    """
    if not folders:
        return None
    shown = few([in_data_set(path, data) for path in folders])
    if len(folders) == 1:
        return f"1 image file's place is a folder ({shown}), not a file"
    return f"{len(folders)} image files' places are folders ({shown}), not files"


def link_loops_line(loops: list[Path], data: dict) -> str:
    """What the status column says of images (``loops``, named as ``data``'s folder holds them:
    :func:`in_data_set`) that are link loops (:func:`common.io.link_loop`): links that lead back to
    themselves, to no file.

    Such a link (``ln -sf x.png x.png``) was called a broken link whose photo moved or was deleted since the
    conversion, converting again the remedy: no photo was ever there to move.
    """
    first = loops[0]
    shown = f"{in_data_set(first, data)} -> {os.readlink(first)}"
    if len(loops) == 1:
        return (
            f"1 image is a link loop (e.g. {shown}): a symbolic link that leads back to itself, to no file; "
            "point it at its image"
        )
    return (
        f"{len(loops)} images are link loops (e.g. {shown}): symbolic links that lead back to themselves, "
        "to no file; point them at their images"
    )


def check_shared_images(
    checks: dict[str, SplitCheck], files: dict[str, list[Path]], name: Callable[[Path], str]
) -> None:
    """Fails val or test where it holds an image file of train (its path resolved: a ``train.txt`` naming
    an image of the val folder, two ``data.yaml`` entries of one folder), naming both splits and the first
    few files (``name``: as the data set holds one); notes a test holding val's files (``test:`` naming the
    val folder, as some exports do on purpose: test then scores the images val picked ``best.pt`` on, no
    training image) and byte-identical copies across two splits (:func:`copied_images`).

    A model was scored on images it trained on: nothing said so; a set whose test was its val failed. The
    converters write each split to its own folder, each source photo to one split
    (:func:`converters.splits.load_splits` refuses a key listed twice).

    Args:
        checks: one format's checks by split, added to.
        files: the image files of each split (:func:`split_image_files`, or a COCO split's ``file_name``s
            under ``images/``).
    """
    owner: dict[str, tuple[str, Path]] = {}  # a file's resolved path: the first split holding it, as named
    shared: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for split in SPLITS:
        held = {os.path.realpath(path): path for path in files.get(split, []) if path.is_file()}
        for real, path in held.items():
            first, named = owner.setdefault(real, (split, path))
            if first != split:  # under another name there (a link to the photo): both named
                shown = name(path) if name(path) == name(named) else f"{name(path)} = {name(named)}"
                shared[(first, split)].append(shown)
    for (first, later), names in shared.items():
        images = "1 image is" if len(names) == 1 else f"{len(names)} images are"
        said = f"{images} in both {first} and {later} ({few(names)}): one file in two splits, so {later} "
        if first == "train":  # the next step: each photo in one split
            it = "it" if len(names) == 1 else "them"
            checks[later].problems.append(
                f"{said}scores a model on images it trained on: remove {it} from {first} or {later}"
            )
        else:  # test: pointing at the val folder, as some exports do on purpose: no training image leaks
            checks[later].notes.append(f"{said}then scores the images {first} picked best.pt on")
    for (first, later), pairs in copied_images(files).items():
        images = f"1 {later} image is" if len(pairs) == 1 else f"{len(pairs)} {later} images are"
        shown = few([f"{name(copy)} = {name(original)}" for copy, original in pairs])
        checks[later].notes.append(
            f"{images} byte-identical to {first} images ({shown}): if one photo saved twice, {later} scores "
            f"a model on images {_seen_in(first)}"
        )


def _seen_in(split: str) -> str:
    """How a model saw the images of ``split``: trained on them, or chosen by them (val picks best.pt)."""
    return "it trained on" if split == "train" else f"that chose it ({split} picks best.pt)"


def copied_images(files: dict[str, list[Path]]) -> dict[tuple[str, str], list[tuple[Path, Path]]]:
    """``{(first, later): [(copy, original)]}``: the image files of split ``later`` whose bytes are those
    of another file of an earlier split ``first`` (``files``: each split's); one file under two names (its
    path resolved) is not its own copy (:func:`check_shared_images` fails it).

    Only files of one size in two splits are read, a file listed in two counting in its first (``test:``
    pointing at val's folder read every val image): the check decodes every image anyway (ultralytics'
    scan, :func:`unreadable_images`), so reading those again costs little.
    """
    sizes: dict[int, set[str]] = collections.defaultdict(set)
    paths: dict[str, list[tuple[str, Path]]] = collections.defaultdict(list)
    for split in SPLITS:
        for path in files.get(split, []):
            if path.is_file():
                real = os.path.realpath(path)
                if real not in paths:  # one file in two splits (test: val's folder) is no copy of itself
                    sizes[path.stat().st_size].add(split)
                paths[real].append((split, path))
    digests: dict[str, tuple[str, Path]] = {}
    copied: dict[tuple[str, str], list[tuple[Path, Path]]] = collections.defaultdict(list)
    for resolved, [(split, path), *_] in paths.items():
        if len(sizes[path.stat().st_size]) < 2:
            continue
        try:
            digest = hashlib.sha256(Path(resolved).read_bytes()).hexdigest()
        except OSError:  # unreadable: named as such by the decode
            continue
        first, original = digests.setdefault(digest, (split, path))
        if first != split:
            copied[(first, split)].append((path, original))
    return copied


def check_not_empty(check: SplitCheck, split: str) -> None:
    """A split without images: a problem for ``train`` and ``val`` (:data:`TRAINING_SPLITS`), a note
    for ``test``. YOLO and COCO alike: an empty COCO val passed as ``ok`` where YOLO's failed."""
    if check.images:
        return
    if split in TRAINING_SPLITS:
        check.problems.append(check.empty)
    else:
        check.notes.append(f"{check.empty}: nothing to score on in {split}")


def note_backgrounds_only(check: SplitCheck, split: str) -> None:
    """Adds a note to ``check`` when its images hold no defect instance (backgrounds only).

    Such a split loads (MVTec AD's own ``train/`` with ``--split-from-layout``: good images only);
    ultralytics said so in a raw warning naming a ``labels/<split>.cache`` that is never written here.
    """
    if check.images and not check.instances:
        learns = ": a model trained on it learns no defect" if split == "train" else ""
        check.notes.append(f"no defect instance (backgrounds only){learns}")
