"""A YOLO split's files as ultralytics reads them: its images (and those of a type it does not read),
the label files left without an image, and the label files of polygons that make a set YOLO-seg.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Collection
from pathlib import Path

from common.errors import few
from common.io import link_loop
from converters.splits import SPLITS
from converters.validation.split_check import in_data_set


def label_files_without_image(entry: str | list[str] | None, images: list[Path]) -> list[Path]:
    """The label files (``*.txt``) in the label folders of a split's image folders (its ``data.yaml``
    ``entry``: ``images/val`` -> ``labels/val``) that belong to none of its ``images``
    (:func:`split_image_files`) nor to an image of a type ultralytics does not read (named apart:
    :func:`unread_images_note`), sorted.

    ultralytics reads a split's images and their label files: one whose image was deleted is never read,
    and the check named no file (a converted set's split counted one image fewer than splits.json's;
    another tool's said nothing). A folder whose label folder is itself (no ``images`` in its path) is not
    searched: its ``.txt`` files are no label files; nor are hidden ones, ultralytics' glob skipping them
    (macOS' ``._x.txt``, Jupyter's ``.ipynb_checkpoints/``: each was named as a label file without image).
    """
    from ultralytics.data.utils import img2label_paths

    parts = [Path(part) for part in (entry if isinstance(entry, list) else [entry] if entry else [])]
    folders = {
        Path(img2label_paths([str(part / "x.png")])[0]).parent: part for part in parts if part.is_dir()
    }
    folders = [folder for folder, part in folders.items() if folder != part and folder.is_dir()]
    if not folders:
        return []
    read = [*images, *_split_files(entry, OTHER_IMAGE_SUFFIXES), *split_image_folders(entry)]
    known = {os.path.abspath(path) for path in img2label_paths([str(path) for path in read])}
    # as ultralytics globs a split's images: no hidden file or folder (macOS' ._x.txt, .ipynb_checkpoints/)
    found = {
        Path(name) for folder in folders for name in glob.glob(str(_under(folder, "*.txt")), recursive=True)
    }
    found = sorted(path for path in found if path.is_file())
    return [path for path in found if os.path.abspath(path) not in known]


def absent_label_lines(label_files: list[str], data: dict) -> list[str]:
    """What the status column says of a split's label files (``label_files``: ultralytics' paths of them)
    that are no file, each of whose images ultralytics reads as a background: one line for those missing,
    for folders in their place, for broken links and for link loops, naming them as the data set (``data``:
    ``check_det_dataset``'s) holds them.

    A folder or a link to no file was called a missing label file, sending the user after a file where
    something was.
    """
    absent = [Path(file) for file in label_files if not Path(file).is_file()]
    folders = [path for path in absent if path.is_dir()]
    links = [path for path in absent if path.is_symlink() and path not in folders]
    loops = [path for path in links if link_loop(path) is not None]
    kinds = (  # (paths, said of one, said of more), {shown} the paths, {n} how many
        (
            [path for path in absent if path not in folders and path not in links],
            "1 label file missing ({shown}): read as backgrounds",
            "{n} label files missing ({shown}): read as backgrounds",
        ),
        (
            folders,
            "1 label file's place is a folder ({shown}), not a file: read as a background",
            "{n} label files' places are folders ({shown}), not files: read as backgrounds",
        ),
        (
            [path for path in links if path not in loops],
            "1 label file is a broken link ({shown}): read as a background",
            "{n} label files are broken links ({shown}): read as backgrounds",
        ),
        (
            loops,
            "1 label file is a link loop ({shown}: a link that leads back to itself): read as a background",
            "{n} label files are link loops ({shown}: links leading back to themselves): read as backgrounds",
        ),
    )
    return [
        (one if len(paths) == 1 else more).format(
            n=len(paths), shown=few([_named_label(p, data) for p in paths])
        )
        for paths, one, more in kinds
        if paths
    ]


def _named_label(path: Path, data: dict) -> str:
    """A label file's ``path`` as the data set (``data``) holds it, with the target of a link."""
    named = in_data_set(path, data)
    return f"{named} -> {os.readlink(path)}" if path.is_symlink() else named


def orphans_line(orphans: list[str]) -> str:
    """What the status column says of label files without an image (:func:`label_files_without_image`),
    ``orphans`` as the data set holds them."""
    files, it = (
        ("1 label file has", "it") if len(orphans) == 1 else (f"{len(orphans)} label files have", "them")
    )
    return f"{files} no image ({few(orphans)}): ultralytics reads a split's images, not {it}"


def guess_task(data: dict) -> tuple[str, Path | None]:
    """``("segment", file)`` where a label ``file`` of the splits of ``data`` (``check_det_dataset``'s)
    is one of polygons as ultralytics reads it (:func:`_is_polygon_file`), the first such; else
    ``("detect", None)``. Every file is read until one is: the first alone decided, so a YOLO-seg set whose
    first file held a box row was checked as a detect set, ``ok``, and ``yolo segment train`` refused it.
    The label files are where ultralytics looks (``train/labels/`` of a Roboflow export): ``labels/`` beside
    ``data.yaml`` alone made every such YOLO-seg export a detect set. The file is named where a box file
    makes a split one ultralytics refuses (:func:`box_files_problem`): a detect set with one file of polygons
    failed every split, naming none."""
    polygon = _first_polygon_file(data)
    return ("detect", None) if polygon is None else ("segment", polygon)


def _first_polygon_file(data: dict) -> Path | None:
    """The first label file of the splits of ``data`` that is one of polygons (:func:`_is_polygon_file`)."""
    from ultralytics.data.utils import img2label_paths

    for split in SPLITS:
        for path in map(Path, img2label_paths([str(image) for image in split_image_files(data.get(split))])):
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):  # ultralytics names it, as a corrupt label
                continue
            if _is_polygon_file(text, data):
                return path
    return None


def _is_polygon_file(text: str, data: dict) -> bool:
    """Whether ultralytics reads a label file's ``text`` as one of polygons, in a data set of ``data``
    (``check_det_dataset``'s), and keeps it in any task: a row of over 6 values, none of 5.

    Its ``verify_image_label`` takes a file with a row of over 6 values for polygons and drops one that
    mixes box rows in ("labels mix segment and detection rows"); a row of ``5 + nkpt * ndim`` values, where
    ``kpt_shape`` is set, is a box with keypoints. A first row of over 5 values decided here: a box with a
    score (6 values, which ultralytics drops: "labels require 5 columns") or a polygon before a box row made
    a detect set YOLO-seg, and its box files were failed "as" that file's polygons.
    """
    nkpt, ndim = data.get("kpt_shape") or (0, 0)
    lengths = [len(line.split()) for line in text.strip().splitlines() if line.strip()]
    lengths = [5 if nkpt and length == 5 + nkpt * ndim else length for length in lengths]
    return any(length > 6 for length in lengths) and 5 not in lengths


def split_image_files(entry: str | list[str] | None) -> list[Path]:
    """The image files of a split as ultralytics reads them (``YOLODataset``'s ``get_img_files``) from its
    ``data.yaml`` entry, resolved (``check_det_dataset``): a folder's, searched through, a list file's lines
    (``train: train.txt`` of a CVAT export), or those of a list of either; []: no entry, or none there.

    A folder alone was read (its own files): a list file read as ``no images``, a list a traceback.
    """
    from ultralytics.data.utils import IMG_FORMATS

    return _split_files(entry, IMG_FORMATS)


def split_image_folders(entry: str | list[str] | None) -> list[Path]:
    """The folders of a split (its ``data.yaml`` ``entry``, read as :func:`split_image_files` reads it) named
    as images are (``images/val/x.png/``): ultralytics lists each among the split's images and drops it
    (:func:`converters.validation.split_check.image_folders_line`)."""
    from ultralytics.data.utils import IMG_FORMATS

    return _split_files(entry, IMG_FORMATS, folders=True)


#: Suffixes of still images that ultralytics' ``IMG_FORMATS`` lacks (it lists ``gif`` among its video
#: formats): a split's image of one is left out of training without a word (:func:`unread_images_note`).
OTHER_IMAGE_SUFFIXES = frozenset("gif apng jfif jpe jxl pbm pgm ppm pnm pcx tga ico psd qoi exr".split())


def unread_images_note(entry: str | list[str] | None, data: dict) -> str | None:
    """A note counting the image files of a split (its ``data.yaml`` ``entry``, read as
    :func:`split_image_files` reads it) of a type ultralytics does not read (:data:`OTHER_IMAGE_SUFFIXES`),
    naming the first few as the data set holds them (``data``: ``check_det_dataset``'s); None if none is.

    ultralytics leaves such a file out of the split unsaid, as it does a README: a ``.gif`` photo among the
    ``.png`` ones was neither trained on nor named.
    """
    unread = _split_files(entry, OTHER_IMAGE_SUFFIXES)
    if not unread:
        return None
    files, them = ("1 image file", "it") if len(unread) == 1 else (f"{len(unread)} image files", "them")
    suffixes = ", ".join(sorted({f".{path.name.rpartition('.')[2].lower()}" for path in unread}))
    return (
        f"{files} of a type ultralytics does not read ({suffixes}) left out: "
        f"{few([in_data_set(path, data) for path in unread])}; save {them} as PNG or JPEG to train on {them}"
    )


def _under(folder: Path, pattern: str) -> Path:
    """The recursive glob of ``pattern`` in ``folder`` as ultralytics' ``img2label_paths`` callers build it
    (``**/*.*``): ``glob`` matches no name starting with a dot, nor looks into such a folder."""
    return Path(glob.escape(folder)) / "**" / pattern


def _split_files(
    entry: str | list[str] | None, suffixes: Collection[str], *, folders: bool = False
) -> list[Path]:
    """The files of a split's ``data.yaml`` ``entry`` (:func:`split_image_files`) whose suffix, lower case,
    is one of ``suffixes`` (without the dot), sorted; with ``folders``, the folders so named instead."""
    found = []
    for part in map(Path, entry if isinstance(entry, list) else [entry] if entry else []):
        if part.is_dir():
            found += glob.glob(str(_under(part, "*.*")), recursive=True)
        elif part.is_file():
            lines = part.read_text(encoding="utf-8-sig", errors="replace").strip().splitlines()
            found += [
                line.replace("./", f"{part.parent}{os.sep}", 1) if line.startswith("./") else line
                for line in lines
            ]
    files = {Path(name) for name in found if name.rpartition(".")[2].lower() in suffixes}
    return sorted(path for path in files if path.is_dir() == folders)


def box_files_problem(files: list[Path], data: dict, polygon: Path | None = None) -> str | None:
    """The problem of a YOLO-seg split (``files``, its images: :func:`split_image_files`) whose label files of
    box rows (``class cx cy w h``) make ultralytics refuse it for segment training ("requires equal numbers
    of boxes and segments"), naming them and a label file of polygons, which made it YOLO-seg: the split's
    first, else the set's (``polygon``, else looked for); None where none is found (changed since).

    It said "a split of both" of a split of box files alone (one polygon file elsewhere made the set
    YOLO-seg), and named no polygon file: a detect set with one reads it as boxes (``--task detect``). The
    set's first was named where the split held polygon files too: one of another split, not of the split
    refused.
    """
    from ultralytics.data.utils import img2label_paths

    boxes, own = [], None
    for label in map(Path, img2label_paths([str(path) for path in files])):
        try:
            text = label.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            continue
        if own is None and _is_polygon_file(text, data):
            own = label
        rows = [line.split() for line in text.splitlines() if line.strip()]
        if rows and all(len(row) == 5 for row in rows):
            boxes.append(in_data_set(label, data))
    if not boxes:
        return None
    files = "1 label file holds" if len(boxes) == 1 else f"{len(boxes)} label files hold"
    said = f"{files} boxes (class cx cy w h), not polygons ({few(boxes)})"
    polygon = own or polygon or _first_polygon_file(data)
    if polygon is None:  # --task segment of a set of boxes alone
        return f"{said}: ultralytics refuses such a split for segment training"
    return (
        f"{said}, as {in_data_set(polygon, data)}'s are: ultralytics refuses such a split for segment "
        "training; a detect training reads the polygons as boxes (--task detect checks it so)"
    )
