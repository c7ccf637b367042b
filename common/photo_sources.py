"""What a ``--source`` names: the photo files a folder or a glob pattern lists, and the checks of that list.

What a ``--source`` names, for ``detection.predict``, ``inspection.predict`` and
``anomaly.predict`` alike, is :func:`photo_files`: one image, a folder (searched
recursively) or a quoted glob pattern. The list is refused where it takes in what
is no photo: an MVTec category's masks, an earlier run's output folder, masks
beside their photos. Reading the photos themselves is :mod:`common.images`'s part.
"""

from __future__ import annotations

import fnmatch
import glob
import itertools
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from common.errors import UserError
from common.folders import check_utf8_names, path_exists
from common.globs import GLOB_MAGIC
from common.image_files import IMAGE_SUFFIXES, is_image_file
from common.io import not_found_text

#: The stem suffix of a defect image's mask in MVTec's layouts (``000_mask.png`` for ``000.png``).
MASK_SUFFIX = "_mask"


def check_source_given(source: str | Path) -> None:
    """Refuses an empty ``--source``: ``Path("")`` is the working folder, so ``--source "$PHOTOS"`` with the
    variable unset searched everything below it, or was refused as ``--out ... is inside the photo folder .``.
    """
    if isinstance(source, str) and not source.strip():
        raise UserError(
            f"--source is empty ({source!r}; an unset shell variable?): pass an image, a folder or a glob"
        )


def photo_files(source: str | Path) -> tuple[list[Path], Path | None]:
    """``(image files, folder their names are relative to)``: what a ``--source`` names, sorted.

    Args:
        source: one image file (no folder: None), a folder searched recursively
            (:func:`image_files_below`; the folder itself) or a glob pattern, quoted so that the
            shell leaves it alone, ``**`` matching any number of folders (its fixed leading folder,
            :func:`glob_base`); a leading ``~`` is the home folder, quoted too (``~name`` with no
            such user stays that name, as in a shell).

    Raises:
        UserError: nothing at a plain path, a file without an image suffix (a folder or a pattern
            leaves it out with a note), a folder without image files, a pattern matching no image file,
            or photos that take in an MVTec category's masks (:func:`check_not_ground_truth`,
            :func:`check_no_masks`); a name on a photo's path that is not UTF-8 (the JSON outputs name
            every photo and the source folder: :func:`common.folders.check_utf8_names`).
    """
    files, base = _photo_files(source)
    for path in files:  # the whole path: predict.json records the folder too
        check_utf8_names(path)
    return files, base


def _photo_files(source: str | Path) -> tuple[list[Path], Path | None]:
    """:func:`photo_files` before its names are checked."""
    check_source_given(source)
    text = os.path.expanduser(source)  # a quoted '~/photos/*.png' too, which no shell expanded
    path = Path(text)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:  # a folder's or a pattern's note says so of it too
            raise UserError(f"--source {text} has no image suffix read here ({', '.join(IMAGE_SUFFIXES)})")
        return [path], None
    if path.is_dir():
        return image_files_below(path), path
    if not GLOB_MAGIC.search(text):
        # path_exists: one in a folder that cannot be searched is named as such, not as missing (Python 3.13)
        if path_exists(path):  # a pipe, a device: there, but neither a photo nor a folder
            raise UserError(f"--source {text} is neither a file nor a folder")
        raise UserError(not_found_text(text, "--source"))
    matched = [Path(p) for p in glob.glob(text, recursive=True)]
    files = _once_each(path for path in matched if is_image_file(path))
    if not files:
        raise UserError(f"the pattern '{text}' matches no image files ({', '.join(IMAGE_SUFFIXES)})")
    check_not_ground_truth(files, text)
    for listed, base in _parents_taken_out(files, text):
        check_not_run_output(listed, base, text)
    check_no_masks(files, text)
    note_left_out(matched, f"matched by '{text}'")
    return files, glob_base(text)


def photo_root(source: str | Path) -> Path:
    """Where the photos of a ``--source`` are: a file is its own, a folder itself, a pattern its leading
    folder (:func:`glob_base`). What a later run would read below it is
    :func:`common.out_folders.check_not_read_as_photos`'s to say.
    """
    check_source_given(source)
    text = os.path.expanduser(source)  # as photo_files reads it: '~/photos' is the home folder's
    path = Path(text)
    # path_exists: a photo or folder in one that cannot be searched is not a pattern's (Python 3.13)
    return path if path_exists(path) and (path.is_file() or path.is_dir()) else glob_base(text)


def _once_each(files: Iterable[Path]) -> list[Path]:
    """``files`` sorted, each real file once under its shortest path.

    ``**`` follows linked folders, a link back to a folder above too: each photo came back once per
    round of the loop (8 photos matched 321 times), every copy inspected under another name.
    """
    shortest: dict[Path, Path] = {}
    for path in sorted(files, key=lambda path: (len(path.parts), path)):
        shortest.setdefault(path.resolve(), path)
    return sorted(shortest.values())


def glob_base(pattern: str) -> Path:
    """The folder a glob pattern searches in: its leading parts without wildcards.

    >>> glob_base("photos/lot_*/*.png").as_posix(), glob_base("*.jpg").as_posix()
    ('photos', '.')
    """
    parts = Path(pattern).parts
    fixed = list(itertools.takewhile(lambda part: not GLOB_MAGIC.search(part), parts[:-1]))
    return Path(*fixed) if fixed else Path(".")


def check_not_ground_truth(files: list[Path], source: str | Path) -> None:
    """Refuses photos that include an MVTec category's defect masks.

    A category folder (``hazelnut/``) or a whole MVTec tree holds ``ground_truth/<defect>/*_mask.png``
    beside ``test/``: read as photos, every mask would be inspected as a part.

    Raises:
        UserError: a file below a ``ground_truth`` folder that has a ``test`` folder beside it;
            the message names that folder and the photos' folder to pass instead, or, for the masks
            tree of an ``inspection.predict``/``evaluate`` output (``<out>/masks/<category>``, beside
            ``<out>/images.json``: one run into the folder of the photo it inspected), that output folder.
    """
    folders: dict[tuple[str, ...], Path] = {}  # each folder once, as its first photo names it
    for path in files:
        folders.setdefault(path.parts[:-1], path)
    for parts, path in folders.items():
        if "ground_truth" not in parts:  # no folder of path.parents is named so
            continue
        for parent in path.parents:
            output = parent.parent.parent.parent
            if parent.name == "ground_truth" and (parent.parent / "test").is_dir():
                if parent.parent.parent.name == "masks" and (output / "images.json").is_file():
                    # its test/ holds links to the photos inspected: no folder of photos to name
                    step = _next_step(source, output, "name the folder of the photos it inspected instead")
                    raise UserError(
                        f"{_taking_in(source, output)} an inspection's output folder (its masks tree "
                        f"{parent} holds masks, not photos): {step}"
                    )
                raise UserError(
                    f"{_taking_in(source, parent)} an MVTec category's defect masks, not photos: "
                    f"name the photos' folder instead (e.g. {parent.parent / 'test'})"
                )


def _is_source(source: str | Path, folder: Path) -> bool:
    """``source`` (a ``--source``: a folder, a file or a pattern) is ``folder`` itself."""
    try:
        return os.path.samefile(source, folder)
    except (OSError, ValueError):  # a pattern, or a name no file has
        return False


def _taking_in(source: str | Path, folder: Path) -> str:
    """How a refusal begins: ``<source> includes <folder>,``, or ``<source> is`` where ``source`` is the
    folder itself (it read ``out includes out, an inspection's output folder``)."""
    return f"{source} is" if _is_source(source, folder) else f"{source} includes {folder},"


def _next_step(source: str | Path, folder: Path, given: str) -> str:
    """The next step of a refusal of the output ``folder``: ``given`` where ``source`` is the folder itself,
    else to move it out of the photos' folder."""
    return given if _is_source(source, folder) else "move it out of the photos' folder"


#: The folders of images a predict or evaluate command writes in its ``--out`` (``detection.predict``'s
#: overlays, ``inspection``'s and ``anomaly.predict``'s masks and anomaly maps).
RUN_IMAGE_FOLDERS = ("overlays", "masks", "anomaly_maps")
#: The file of a photo's predictions every such command writes in its ``--out``.
PREDICTIONS = "predictions.json"
#: What marks such an ``--out``: its ``predictions.json`` and one of these beside it (``predict.json`` of
#: ``detection.predict`` and ``anomaly.predict``, ``images.json`` of the ``inspection`` commands and
#: ``anomaly.predict``).
RUN_MARKERS = ("predict.json", "images.json")
#: The figures ultralytics draws in a training run's or a validation's folder (glob names), as the installed
#: version names them (its source is read by tests/common/test_photo_sources.py) and earlier ones did
#: (``labels_correlogram.jpg``; curves without the ``Box``/``Mask`` prefix): ``results.png``, the label
#: plots, the batch mosaics, the curves and the confusion matrices.
ULTRALYTICS_FIGURES = (
    "results.png",
    "labels.jpg",
    "labels_correlogram.jpg",
    "train_batch*.jpg",
    "val_batch*_labels.jpg",
    "val_batch*_pred.jpg",
    "*PR_curve.png",
    "*F1_curve.png",
    "*P_curve.png",
    "*R_curve.png",
    "confusion_matrix.png",
    "confusion_matrix_normalized.png",
)
#: What marks an evaluation's ``--out``, the files of one of these: ``anomaly.evaluate``'s and
#: ``inspection.evaluate``'s report, ``segmentation.evaluate``'s (``--folds``: its summary),
#: ``detection.evaluate``'s; each with the names (glob) of the figures it writes beside them:
#: ``anomaly.evaluate``'s ``anomaly_maps.png``, none of ``inspection.evaluate`` nor ``segmentation.evaluate``
#: (their images are in ``overlays/``), ``folds.png`` of ``--folds``, ultralytics' plots of
#: ``detection.evaluate`` (:data:`ULTRALYTICS_FIGURES`). Other images there are photos.
EVALUATION_MARKERS = {
    ("metrics.json", "report.md"): ("anomaly_maps.png",),
    ("metrics.json", "table.md"): (),
    ("folds.json", "folds.md"): ("folds.png",),
    ("evaluation.json", "report.txt"): ULTRALYTICS_FIGURES,
}
#: What marks a training run's folder: ``args.yaml`` with ``results.csv``, as ``segmentation.train`` writes
#: them (so do the rounds of ``segmentation.evaluate --folds``, in ``runs/fold<i>``) and ultralytics'
#: ``detection.train``.
TRAINING_MARKERS = ("args.yaml", "results.csv")
#: The figures a training run draws beside :data:`TRAINING_MARKERS` (glob names): ``segmentation.train``'s
#: ``curves.png``, ultralytics' plots (:data:`ULTRALYTICS_FIGURES`). Other images there are photos.
TRAINING_FIGURES = ("curves.png", *ULTRALYTICS_FIGURES)
#: The folders of images a training run writes beside :data:`TRAINING_MARKERS`, besides
#: :data:`RUN_IMAGE_FOLDERS`: ultralytics' ``visualizations/`` (``plots`` with ``visualize``: each val photo
#: drawn with its matches, under the photo's own name) and ``detection.train``'s ``tiles/`` (``tile``: the
#: data set cut into tiles, ``tiles/images/<split>/*.png``).
TRAINING_IMAGE_FOLDERS = ("visualizations", "tiles")


def _parents_taken_out(files: list[Path], pattern: str) -> list[tuple[list[Path], Path]]:
    """``(files, base)`` pairs for :func:`check_not_run_output`: the ``files`` a glob ``pattern`` matched, and
    its leading folder, with each ``..`` taken out as glob's path resolves it (``a/../b`` is ``b``).

    Spelled, ``runs/*/../r1/overlays/*.jpg`` lists ``runs/x/../r1/overlays/a.jpg`` below ``runs``, and
    ``runs/r1/*/../overlays/*.jpg`` ``runs/r1/masks/../overlays/a.jpg``: an image folder given itself was
    refused as one the pattern took in (naming ``masks/`` for the second), as ``runs/r1/overlays/*.jpg``
    is not. A file whose folder is not the one its spelling without ``..`` names (a linked folder before
    the ``..``: the link's target's parent), or that lies outside the leading folder of the pattern
    without ``..`` (``lots/**/../runs/*/*/*.jpg``: ``**`` matches no folder too, ``lots/../runs/r1/...``,
    where that pattern is ``lots/runs/...``), is held, as spelled, against the pattern's leading folder.
    """
    if ".." not in Path(pattern).parts:
        return [(files, glob_base(pattern))]
    base = glob_base(os.path.normpath(pattern))
    plain: list[Path] = []
    spelled: list[Path] = []
    same: dict[Path, bool] = {}  # a folder's spellings, each looked up once
    for path in files:
        normal = Path(os.path.normpath(path))
        if path.parent not in same:
            same[path.parent] = normal.parent.exists() and os.path.samefile(normal.parent, path.parent)
        if same[path.parent] and normal.parts[: len(base.parts)] == base.parts:
            plain.append(normal)
        else:
            spelled.append(path)
    return [(plain, base), (spelled, glob_base(pattern))]


def check_not_run_output(files: list[Path], base: Path, source: str | Path) -> None:
    """Refuses photos that lie in the image folders of a command's output folder (:data:`RUN_IMAGE_FOLDERS`
    beside ``predictions.json`` and one of :data:`RUN_MARKERS`, or in an evaluation's folder:
    :data:`EVALUATION_MARKERS`), or are the figures an evaluation wrote beside its report
    (``anomaly.evaluate``'s ``anomaly_maps.png``, ultralytics' ``PR_curve.png`` in ``detection.evaluate``'s)
    or a training run beside its ``args.yaml`` and ``results.csv`` (:data:`TRAINING_MARKERS`; its figures
    :data:`TRAINING_FIGURES`: ``curves.png``, ``results.png``; its image folders also
    :data:`TRAINING_IMAGE_FOLDERS`: ``visualizations/``, ``tiles/``), that folder at or below ``base``.

    An ``--out`` a later run's photos take in, through a link in ``--source`` (``lots/latest`` to
    ``runs/r1``) or made with another ``--source``, had its overlays, masks and anomaly maps read as photos
    without a word, an evaluation's figures too. An image folder given itself (``--source runs/r1/overlays``)
    lies above ``base`` and passes. Only the folders named so and the photos' own are looked at (a ``stat``
    or a few each, once).

    Args:
        files: the photos, as listed below ``base``.
        base: the folder they were searched in (a pattern's leading folder).
        source: the ``--source``, for the message.

    Raises:
        UserError: naming ``source``, the output folder, the file that marks it and its image folder or
            figure.
    """
    checked: dict[Path, _Marked | None] = {}
    folders: dict[tuple[str, ...], tuple[Path, _Marked] | None] = {}  # the same for every photo in one
    for path in files:
        if path.parts[: len(base.parts)] != base.parts:  # not below base as spelled
            continue
        folder = path.parts[:-1]
        if folder not in folders:
            folders[folder] = _marked_folder(path, base, source, checked)
        found = folders[folder]
        # beside its report files only the figures it writes: a predict run none, others are photos
        if found is not None and any(fnmatch.fnmatch(path.name, figure) for figure in found[1][2]):
            raise _run_output_error(source, *found, f"its {path.name} is a figure it wrote, not a photo")


def _marked_folder(
    path: Path, base: Path, source: str | Path, checked: dict[Path, _Marked | None]
) -> tuple[Path, _Marked] | None:
    """:func:`check_not_run_output` for the folders of ``path`` (below ``base`` as spelled): refuses one that
    is an output folder's image folder (a training run's ``tiles/``, not an evaluation's); returns the
    output folder ``path`` lies in, with what marks it, or None where its folder is none. ``checked``: the
    folders looked at, each once."""
    parts = path.parts[len(base.parts) : -1]
    for depth, name in enumerate(parts):
        if name in RUN_IMAGE_FOLDERS or name in TRAINING_IMAGE_FOLDERS:
            out = base.joinpath(*parts[:depth])
            if out not in checked:
                checked[out] = _output_marker(out)
            marked = checked[out]
            if marked is not None and name in marked[3]:
                what = f"its {name}/ holds the images it wrote, not photos"
                raise _run_output_error(source, out, marked, what)
    out = base.joinpath(*parts)
    if out not in checked:
        checked[out] = _output_marker(out)
    marked = checked[out]
    return None if marked is None else (out, marked)


def _run_output_error(source: str | Path, out: Path, marked: _Marked, what: str) -> UserError:
    """The line refusing photos that take in the output folder ``out`` (:func:`check_not_run_output`)."""
    kind, marker = marked[:2]
    step = _next_step(source, out, "name the photos' own folder instead")
    return UserError(
        f"{_taking_in(source, out)} an earlier {kind}'s output folder ({marker}): {what}; {step}"
    )


#: An output folder's kind, the file that marks it, the figures (glob names) and the image folders it writes.
_Marked = tuple[str, Path, tuple[str, ...], tuple[str, ...]]


def _output_marker(folder: Path) -> _Marked | None:
    """``("run", its predictions.json, (), RUN_IMAGE_FOLDERS)`` where ``folder`` holds a
    ``predictions.json`` and one of :data:`RUN_MARKERS`, ``("evaluation", its first file, the figures it
    writes, RUN_IMAGE_FOLDERS)`` where it holds the files of one of :data:`EVALUATION_MARKERS`,
    ``("training run", its args.yaml, TRAINING_FIGURES, RUN_IMAGE_FOLDERS + TRAINING_IMAGE_FOLDERS)`` where
    it holds :data:`TRAINING_MARKERS`; None elsewhere."""
    if (folder / PREDICTIONS).is_file() and any((folder / name).is_file() for name in RUN_MARKERS):
        return "run", folder / PREDICTIONS, (), RUN_IMAGE_FOLDERS
    for names, figures in EVALUATION_MARKERS.items():
        if all((folder / name).is_file() for name in names):
            return "evaluation", folder / names[0], figures, RUN_IMAGE_FOLDERS
    if all((folder / name).is_file() for name in TRAINING_MARKERS):
        folders = (*RUN_IMAGE_FOLDERS, *TRAINING_IMAGE_FOLDERS)
        return "training run", folder / TRAINING_MARKERS[0], TRAINING_FIGURES, folders
    return None


def check_no_masks(files: list[Path], source: str | Path) -> None:
    """Refuses photos that include the masks of others: ``<stem>_mask.<ext>`` beside a photo ``<stem>``.

    MVTec's naming for a defect image's mask, wherever it lies: a folder of photos with their masks
    copied in, MVTec AD 2's ``test_public/`` (its ``ground_truth/`` has no ``test/`` beside it for
    :func:`check_not_ground_truth`), the folder layout's ``images/`` and ``masks/`` under one parent.
    Read as photos, every mask was inspected and scored as a part of its own.

    Raises:
        UserError: one line naming the first such mask, its photo and how many there are.
    """
    photos = {path.stem: path for path in files}
    masks = [
        (path, photos[path.stem[: -len(MASK_SUFFIX)]])
        for path in files
        if path.stem.endswith(MASK_SUFFIX) and path.stem[: -len(MASK_SUFFIX)] in photos
    ]
    if masks:
        (mask, photo), more = masks[0], len(masks) - 1
        others = f" and {more} more" if more else ""
        raise UserError(
            f"{source} includes {mask}{others}, the mask of {photo} by MVTec's naming, not a photo: "
            "pass a folder or pattern of the photos alone"
        )


def image_files_below(folder: Path) -> list[Path]:
    """The image files anywhere below ``folder``, sorted; what a ``--source`` folder names.

    Files and folders whose names start with a dot are skipped (``.ipynb_checkpoints/``,
    ``._x.png``). Linked folders are searched too, as a ``**`` pattern searches them (``lot_7/cam_1``
    a link to a camera's share), each folder once: a link back to a folder above ends there.

    Raises:
        UserError: no image file below ``folder``, an MVTec category's ``ground_truth/``
            below it (:func:`check_not_ground_truth`), or masks beside their photos (:func:`check_no_masks`).
    """
    found = list(_files_below(folder))
    files = sorted(path for path in found if is_image_file(path))
    if not files:
        raise UserError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    check_not_ground_truth(files, folder)
    check_not_run_output(files, folder, folder)
    check_no_masks(files, folder)
    note_left_out(found, f"below {folder}")
    return files


def files_left_out(found: Iterable[Path]) -> list[Path]:
    """The files of ``found`` not read as images for their suffix, sorted, each once (a ``**`` pattern
    reaches a file again through a linked folder's loop): hidden names (skipped by design) and folders
    aside."""
    left = (
        path
        for path in found
        if path.suffix.lower() not in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )
    return sorted({os.path.realpath(path): path for path in sorted(left)}.values())


def left_out_line(left: Sequence[Path], where: str) -> str:
    """What :func:`note_left_out` says of ``left`` (``where``: ``below FOLDER``, ``in FOLDER``,
    ``matched by 'PATTERN'``): their count and the first three names."""
    names = ", ".join(path.name for path in left[:3]) + (", ..." if len(left) > 3 else "")
    files = "1 file" if len(left) == 1 else f"{len(left)} files"
    return f"{files} {where} left out, no image suffix read here ({', '.join(IMAGE_SUFFIXES)}): {names}"


def note_left_out(found: Iterable[Path], where: str) -> None:
    """One ``note:`` line on stderr naming the files of ``found`` left out for their suffix
    (:func:`files_left_out`, :func:`left_out_line`).

    A lot holding photos of a type not read here (a phone's ``.heic``, a ``.jp2``) was inspected without
    them and without a word, as if the lot held only the others.
    """
    left = files_left_out(found)
    if left:
        print(f"note: {left_out_line(left, where)}", file=sys.stderr, flush=True)


def _files_below(folder: Path) -> Iterator[Path]:
    """Every file below ``folder`` outside hidden folders, through linked folders, each folder once."""
    seen: set[tuple[int, int]] = set()
    for root, folders, names in os.walk(folder, followlinks=True):
        info = os.stat(root)
        if (info.st_dev, info.st_ino) in seen:  # a link to a folder already searched (or above)
            folders[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        folders[:] = [name for name in folders if not name.startswith(".")]
        yield from (Path(root, name) for name in names)
