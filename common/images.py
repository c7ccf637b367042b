"""Reading image files: one-line errors naming the file, and a real decode, not a header check.

PIL's ``verify()`` reads a JPEG's header only, so a JPEG cut short passed as an
image; :func:`image_size` decodes the pixels (JPEGs at 1/8 scale, which still
reads every entropy-coded byte, so a truncated file fails at a fraction of the
cost). Native decoders (libpng inside OpenCV) print their complaints straight to
the process's stderr; :func:`decode_image_file` catches that text and puts it
into its one error line instead.

What a ``--source`` names, for ``detection.predict``, ``inspection.predict`` and
``anomaly.predict`` alike, is :func:`photo_files`: one image, a folder (searched
recursively) or a quoted glob pattern.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import itertools
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, TiffImagePlugin, UnidentifiedImageError
from tqdm import tqdm

from common.errors import UserError, one_line
from common.folders import check_utf8_names
from common.globs import GLOB_MAGIC
from common.io import link_loop_text, not_found_text

#: File suffixes read as images (lower case); ultralytics accepts all of them.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: The stem suffix of a defect image's mask in MVTec's layouts (``000_mask.png`` for ``000.png``).
MASK_SUFFIX = "_mask"
#: The EXIF tag of an image's orientation; 1 (or 0, unset) is upright.
EXIF_ORIENTATION = 0x0112
#: A JPEG is decoded at this fraction of its size to check it: all its data is still read.
_JPEG_CHECK_SCALE = 8
#: The head of an OpenCV log line, ``[ WARN:0@0.068] global grfmt_tiff.cpp:811 readData ``: left out of
#: a message, which kept 120 characters and so lost the reason at their end.
_OPENCV_LOG_PREFIX = re.compile(
    r"^\[\s*[A-Z]+:\d+(?:@[\d.]+)?\]\s+(?:global\s+)?\S+(?::\d+| \(\d+\))\s+\w+\s+"
)

_stderr_lock = threading.Lock()


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Redirects file descriptor 2 (what C libraries print to) into a list of lines while inside.

    Python-level ``sys.stderr`` writes made meanwhile are captured as well, so keep
    the block to the one native call. Falls back to doing nothing where fd 2 cannot
    be duplicated (an embedded interpreter).
    """
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield lines
        return
    with _stderr_lock, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += [line for line in sink.read().decode(errors="replace").splitlines() if line.strip()]


def decode_image_file(path: str | Path, flags: int, *, kind: str = "image") -> np.ndarray:
    """``cv2.imdecode`` of a file's bytes; a one-line :class:`UserError` naming the file otherwise.

    ``np.fromfile`` + ``imdecode`` rather than ``imread``: ``imread`` returns None
    for both "missing" and "corrupt" and cannot tell them apart.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise UserError(f"cannot read {kind} {path}: {error.strerror or error}") from None
    if not data.size:
        raise UserError(f"cannot decode {kind} {path}: the file is empty")
    with captured_native_stderr() as native:
        array = cv2.imdecode(data, flags)
    if array is None:
        detail = f" ({one_line(_OPENCV_LOG_PREFIX.sub('', native[-1]), limit=120)})" if native else ""
        raise UserError(f"cannot decode {kind} {path}: corrupt or not an image{detail}")
    return array


def encode_image(suffix: str, pixels: np.ndarray, params: Sequence[int] = ()) -> bytes:
    """``pixels`` as the bytes of an image file of type ``suffix`` (``.jpg``, ``.png``)."""
    ok, buffer = cv2.imencode(suffix, pixels, list(params))
    if not ok:  # pragma: no cover - only on a broken OpenCV build
        raise RuntimeError(f"could not encode {suffix}")
    return buffer.tobytes()


def is_image_file(path: Path) -> bool:
    """A file with an image suffix (:data:`IMAGE_SUFFIXES`) whose name is not hidden (``.x.png``,
    macOS's ``._x.png`` resource forks).

    Raises:
        UserError: ``path`` is such a name but a link whose target is gone (a photo deleted from the
            share it points into): skipped, a good photo would leave a data set or a lot unsaid. A link
            loop is named as one (:func:`common.io.link_loop_text`).
    """
    if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
        return False
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        mode = stat.S_IFLNK  # not looked at here: the checks below say what they said
    if not stat.S_ISLNK(mode):  # one lstat, not a lstat and a stat: most photos are no links
        return stat.S_ISREG(mode)
    if path.is_symlink() and not path.exists():
        raise UserError(
            link_loop_text(path) or f"broken link: {path} points to {os.readlink(path)}, which does not exist"
        )
    return path.is_file()


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


#: A 16-bit photo whose values all lie below this holds camera data of at most 14 bits (10-, 12- and
#: 14-bit sensors are common): read as 8 bits it uses a quarter of the grey levels or fewer.
NARROW_LIMIT = 1 << 14


#: The first bytes of a PNG, and of a TIFF (classic or BigTIFF, either byte order): of the
#: :data:`IMAGE_SUFFIXES`' formats, those that hold 16-bit pixels.
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: The first bytes of a JPEG and of a BMP, formats of 8 bits a channel (a WebP: ``RIFF``, then ``WEBP``).
_JPEG_OR_BMP_SIGNATURES = (b"\xff\xd8\xff", b"BM")


def is_narrow_16bit(path: str | Path) -> bool:
    """Whether ``path`` is a 16-bit PNG or TIFF whose values all lie below :data:`NARROW_LIMIT` (camera data
    of 14 bits or fewer: 10-, 12-, 14-bit sensors).

    OpenCV's ``IMREAD_COLOR`` (so ultralytics and every reader here) turns 16-bit pixels into 8
    bits by dropping the low 8: 12-bit data reads as grey levels 0-15, 10-bit data as 0-3, nearly
    black to every model. Only 16-bit files are decoded (a PNG's bit depth is in its header).
    """
    return narrow_16bit_max(path) is not None


def narrow_16bit_max(path: str | Path) -> int | None:
    """The largest value of a 16-bit PNG or TIFF whose values all lie below :data:`NARROW_LIMIT`
    (:func:`is_narrow_16bit`), an opaque alpha aside; None for any other file, or one that does not read."""
    with contextlib.suppress(OSError):
        top = _16bit_max(Path(path))
        return top if top is not None and top < NARROW_LIMIT else None
    return None


def _16bit_max(path: Path) -> int | None:
    """The largest value of a 16-bit PNG or TIFF, an opaque alpha aside; None for any other image file.

    The format is the one the file's first bytes give, as OpenCV picks its decoder (a 16-bit PNG named
    ``.jpg`` is read as one): only 16-bit PNGs (from the header) and TIFFs are decoded; a JPEG, BMP or
    WebP is read for its first bytes alone.

    Raises:
        OSError: a file that does not open, is empty or starts as no image file read here, a PNG without
            a whole header, or a 16-bit PNG or a TIFF that does not decode.
    """
    with open(path, "rb") as file:
        head = file.read(25)  # a PNG's signature, IHDR length and type, width, height, bit depth
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 25:
            raise OSError(f"{path} is too short for a PNG header")
        if head[24] != 16:
            return None
    elif not head.startswith(_TIFF_SIGNATURES):
        if head.startswith(_JPEG_OR_BMP_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            return None  # 8 bits a channel
        raise OSError(f"{path} is {'empty' if not head else 'not a PNG, TIFF, JPEG, BMP or WebP file'}")
    # from the bytes: OpenCV's file-based imread (5.1) fails on a TIFF an EXIF tag turns a quarter
    data = np.fromfile(path, dtype=np.uint8)
    with captured_native_stderr():
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise OSError(f"{path} does not decode")
    if image.dtype != np.uint16:
        return None
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]  # an opaque alpha is 65535; IMREAD_COLOR drops it
    return int(image.max())


def spread_indices(count: int, picks: int) -> list[int]:
    """Up to ``picks`` indices into a list of ``count``, evenly spread from its first to its last: the
    photos a check reads when it reads only some (a list is often sorted by lot or camera, and its first
    photos alone tell one end of it).

    >>> spread_indices(120, 3), spread_indices(2, 3), spread_indices(0, 3)
    ([0, 59, 119], [0, 1], [])
    """
    if count <= 0 or picks <= 0:
        return []
    if picks == 1:
        return [0]
    return sorted({i * (count - 1) // (picks - 1) for i in range(picks)})


#: How many photos the commands that hand a photo folder to ultralytics (``detection.train``,
#: ``.evaluate``, ``.predict``) check for 12-bit data (:func:`warn_narrow_photos`), spread over the list
#: (:func:`spread_indices`): a 16-bit photo is decoded once more to find its largest value, a second full
#: read of every photo of a large set; a camera writes all its photos alike, and the spread reaches each
#: end of a list sorted by lot or camera.
NARROW_PHOTO_SAMPLE = 16


def narrow_photo_warnings(images: Sequence[Path], *, sample: int | None = None) -> list[str]:
    """One line when photos are 16-bit with 14 bits or fewer used (:func:`is_narrow_16bit`): the converters,
    the ``anomaly``, ``inspection`` and ``detection`` commands warn with it. It names the first such photo
    and its largest value, and the bit depth the largest value of them all needs, which sets the grey
    levels they read as and the division that rescales them. A photo that does not read (missing, empty,
    no image by its first bytes, a 16-bit PNG or a TIFF that does not decode) is passed over, not counted
    among those checked (a JPEG, BMP or WebP is read for its first bytes alone): the command names it
    where it reads the photos (ultralytics' scan, a detection split's).

    Args:
        images: the photos, in the order the command reads them.
        sample: check only ``sample`` photos spread over the list (:func:`spread_indices`; the line then
            says how many of those checked); None: all.
    """
    picked = images if sample is None else [images[i] for i in spread_indices(len(images), sample)]
    checked, narrow = 0, []
    for image in picked:
        try:
            top = _16bit_max(Path(image))
        except OSError:
            continue
        checked += 1
        if top is not None and top < NARROW_LIMIT:
            narrow.append((image, top))
    if not narrow:
        return []
    count = len(narrow)
    verb = "is" if count == 1 else "are"
    photos = f"1 photo {verb}" if count == 1 else f"{count} photos {verb}"
    if len(picked) < len(images):
        looked = f"{checked} photo{'' if checked == 1 else 's'} checked across the {len(images)}"
        photos = f"the {looked} {verb}" if count == checked else f"{count} of the {looked} {verb}"
    first, top = narrow[0]
    bits = max(8, max(value for _, value in narrow).bit_length())  # 4095: 12 bits; 1000: 10
    shift = 1 << (bits - 8)
    looks = "black" if bits == 8 else "nearly black" if bits <= 12 else "dark"
    rescale = f"value // {shift}" if shift > 1 else "the values as they are"
    levels = f"grey levels 0-{shift - 1}" if shift > 1 else "grey level 0"
    return [
        f"{photos} 16-bit with every value below {1 << bits} ({bits}-bit camera data?), "
        f"e.g. {first} (values up to {top}): OpenCV and ultralytics read 16-bit photos by dropping the low "
        f"8 bits, so every model sees them {looks} ({levels}); save them as 8-bit with "
        f"their full range first ({rescale})"
    ]


def warn_narrow_photos(images: Sequence[Path], *, sample: int | None = None) -> None:
    """:func:`narrow_photo_warnings` as a ``warning:`` line on stderr (PatchCore's fit and scored images,
    the inspection commands' photos, the detection commands' with ``sample``): read by dropping their low
    8 bits, such photos reach every model nearly black (12-bit data: grey levels 0-15)."""
    for line in narrow_photo_warnings(images, sample=sample):
        print(f"warning: {line}", file=sys.stderr, flush=True)


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
        UserError: nothing at a plain path, a folder without image files, a pattern matching no
            image file, or photos that take in an MVTec category's masks (:func:`check_not_ground_truth`,
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
        return [path], None
    if path.is_dir():
        return image_files_below(path), path
    if not GLOB_MAGIC.search(text):
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
    return path if path.is_file() or path.is_dir() else glob_base(text)


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
                    raise UserError(
                        f"{source} includes {output}, an inspection's output folder (its masks tree "
                        f"{parent} holds masks, not photos): move it out of the photos' folder"
                    )
                raise UserError(
                    f"{source} includes {parent}, an MVTec category's defect masks, not photos: "
                    f"name the photos' folder instead (e.g. {parent.parent / 'test'})"
                )


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
#: version names them (its source is read by tests/common/test_images.py) and earlier ones did
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
    return UserError(
        f"{source} includes {out}, an earlier {kind}'s output folder ({marker}): {what}; move it "
        "out of the photos' folder"
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


def _pil_open():
    """PIL's own ``Image.open``, also once ultralytics has replaced it.

    ultralytics' replacement answers a file PIL cannot identify by trying to
    install ``pi-heif`` (or printing a warning that it may not) before failing.
    """
    opener = Image.open
    if opener.__module__ == Image.__name__:
        return opener
    return getattr(sys.modules.get(opener.__module__), "_image_open", opener)


#: Images whose damaged EXIF (or TIFF) directory was warned of: each once a run, however often it is read.
_DAMAGED_DIRECTORY_WARNED: set[Path] = set()

#: Held while a thread checks and records a file in ``_DAMAGED_DIRECTORY_WARNED``: two threads reading one
#: damaged photo at once (the annotation server's, for concurrent requests) each wrote its warning line.
_DAMAGED_DIRECTORY_LOCK = threading.Lock()


class _DirectoryWarnings:
    """Stands in for the ``warnings`` module in PIL's ``TiffImagePlugin``, whose every warning is of a
    damaged EXIF (or TIFF) directory: inside :meth:`kept` (in this thread) they are kept for the caller,
    elsewhere they are warned as PIL warns them.

    ``warnings.catch_warnings`` around each read reset Python's record of the warnings shown, so a warning
    shown once per place (a model's, in a loop over photos) came again after every photo read; it also
    swaps the process-wide filters and ``showwarning``, which two threads reading at once (the annotation
    server's) left swapped unless one lock held every read.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def __getattr__(self, name: str) -> object:
        return getattr(warnings, name)

    def warn(self, message: object, category: type[Warning] | None = None, stacklevel: int = 1, **kwargs):
        caught = getattr(self._local, "caught", None)
        if caught is not None:
            caught.append(str(message))
            return
        warnings.warn(message, category, stacklevel + 1, **kwargs)  # named as PIL's line, as before

    @contextlib.contextmanager
    def kept(self) -> Iterator[list[str]]:
        """The messages of the warnings PIL's TIFF code gives inside, in this thread, instead of warned."""
        outer = getattr(self._local, "caught", None)
        self._local.caught = caught = []
        try:
            yield caught
        finally:
            self._local.caught = outer


_TIFF_WARNINGS = _DirectoryWarnings()
TiffImagePlugin.warnings = _TIFF_WARNINGS  # type: ignore[attr-defined]


@contextlib.contextmanager
def _directory_warnings(path: str | Path) -> Iterator[list[str]]:
    """Puts PIL's warnings of a damaged EXIF (or TIFF) directory, met while inside, into one ``warning:``
    line naming the file, once a file; other warnings pass on as they come (:class:`_DirectoryWarnings`).

    PIL skips what it cannot read of a directory (a tag whose data runs past its end, one cut short) with
    a Python ``UserWarning`` that named neither the file nor the command's concern, and the photo reads.
    Yields the messages of those met so far (:func:`_orientation` reads which tags were skipped).
    """
    with _TIFF_WARNINGS.kept() as damaged:
        yield damaged
    with _DAMAGED_DIRECTORY_LOCK:
        if not damaged or Path(path) in _DAMAGED_DIRECTORY_WARNED:
            return
        _DAMAGED_DIRECTORY_WARNED.add(Path(path))
    what = "TIFF directory" if is_tiff(path) else "EXIF data"
    reason = one_line(damaged[0].replace(".  ", ". ").strip())
    # a converter reads its photos under a progress bar: tqdm.write puts the line above it, not after it
    tqdm.write(f"warning: image {path}: damaged {what}, read in part (PIL: {reason})", file=sys.stderr)


def exif_orientation(path: str | Path) -> int:
    """The file's EXIF orientation: 1 (upright) when it has none; 5 to 8 swap width and height.

    OpenCV (and so ultralytics, SAM's readers and every mask drawn on what they show) applies
    it, while PIL's size and a mask file's pixels are the stored ones: the two disagree. A file
    that cannot be read counts as upright here; reading it fails with its own error elsewhere.
    """
    try:
        with _directory_warnings(path) as caught, _pil_open()(path) as image:
            if image.format == "PNG" and "exif" not in image.info and not _late_exif(Path(path)):
                return 1  # PIL's getexif() would decode the whole PNG to look for a late eXIf chunk
            return _orientation(image, caught)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, TypeError):
        return 1
    except Image.DecompressionBombError:  # over PIL's limit: image_size and load_rgb refuse it themselves
        return 1


#: The EXIF tags OpenCV's reader parses ahead of the orientation (ImageDescription, Make, Model; a
#: directory lists its tags in ascending order). It stops at the first of its tags whose data it cannot
#: read, so a JPEG where PIL skipped one of these reads as stored, whatever orientation PIL finds after it.
OPENCV_EXIF_TAGS_BEFORE_ORIENTATION = frozenset({270, 271, 272})


def _orientation(image: Image.Image, caught: Sequence[str] = ()) -> int:
    """The image's EXIF orientation tag as OpenCV applies it: 1 when absent or outside 1-8 (OpenCV reads
    such a file upright), and 1 for a JPEG whose EXIF OpenCV gave up on before the tag.

    Args:
        caught: the messages of the warnings PIL gave while opening ``image`` and reading its EXIF
            (:func:`_directory_warnings`): ``Skipping tag 270`` names a tag it could not read.
    """
    value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    if image.format == "JPEG" and _skipped_tags(caught) & OPENCV_EXIF_TAGS_BEFORE_ORIENTATION:
        return 1
    return value if 1 <= value <= 8 else 1


def _skipped_tags(caught: Sequence[str]) -> set[int]:
    """The tags PIL's warnings say it skipped (``Tag data larger than file. Skipping tag 270``)."""
    found = (re.search(r"Skipping tag (\d+)", message) for message in caught)
    return {int(match.group(1)) for match in found if match}


def is_rotated(path: str | Path) -> bool:
    """True when the file carries an EXIF orientation other than upright (:func:`exif_orientation`)."""
    return exif_orientation(path) != 1


def has_alpha(path: str | Path) -> bool:
    """Whether the file holds an alpha channel or a transparent colour (PNG's ``tRNS``), from its header.

    OpenCV's ``IMREAD_COLOR`` (so every model here, ultralytics too) drops it and reads the colours beneath,
    while a browser lays the photo over the page by it: a part faded or hidden there. A file that cannot be
    read counts as opaque; reading it fails with its own error elsewhere.
    """
    try:
        with _directory_warnings(path), _pil_open()(path) as image:
            return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info
    except (
        OSError,
        UnidentifiedImageError,
        SyntaxError,
        ValueError,
        TypeError,
        Image.DecompressionBombError,
    ):
        return False


def image_size(path: str | Path, *, decode: bool = True) -> tuple[int, int]:
    """``(width, height)`` of an image file after decoding it, so truncated and corrupt files fail.

    The stored size, whatever the file's EXIF orientation tag, TIFF's too (PIL's TIFF reader gives
    the turned one): a mask's size, as ``IMREAD_UNCHANGED`` reads it. OpenCV's photo readers turn a
    tagged photo: :func:`displayed_size` is the size they see.

    Args:
        path: the image file.
        decode: False reads the header alone (fast; a truncated file then passes).

    Raises:
        UserError: missing, unreadable, not an image, truncated, or over PIL's
            decompression-bomb limit; one line naming the file.
    """
    return _read(Path(path), decode=decode, orientation=False)[:2]


#: Suffixes whose files PIL reads where OpenCV cannot (32-bit or floating-point TIFF samples).
_OPENCV_CHECKED = (".tif", ".tiff")


def check_opencv_decodes(path: str | Path) -> None:
    """Decodes a TIFF with OpenCV as well, since the models read photos with OpenCV; other files pass.

    PIL (:func:`image_size`) reads TIFFs that OpenCV cannot (32-bit or floating-point samples);
    checked by PIL alone, such a photo passed a command's up-front check and stopped the run when
    reached, after the models had loaded and the photos before it were done (``detection.predict``,
    the inspection commands).

    Raises:
        UserError: a TIFF OpenCV cannot decode; one line naming it and OpenCV's reason.
    """
    if Path(path).suffix.lower() in _OPENCV_CHECKED:
        decode_image_file(path, cv2.IMREAD_COLOR)


def displayed_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` as OpenCV decodes the file: the stored size, turned by EXIF orientations 5-8.

    Header only, nothing decoded: a JPEG's, TIFF's or WebP's tag is in its header; a PNG's eXIf
    chunk is read at opening when it comes before the pixels (where cameras and PIL put it), and
    decoded for only when the chunk headers show one after them.

    Raises:
        UserError: as :func:`image_size` (a file that is no image).
    """
    width, height, turn = header_size_and_orientation(path)
    return (height, width) if turn in (5, 6, 7, 8) else (width, height)


def mask_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of the array a mask reader's ``cv2.IMREAD_UNCHANGED`` decodes, from the header.

    The stored size (:func:`image_size`), turned for a TIFF whose EXIF orientation tag swaps its sides:
    OpenCV's TIFF decoder applies the tag even then (and with ``IMREAD_IGNORE_ORIENTATION``), its JPEG,
    PNG and WebP decoders do not.

    Raises:
        UserError: as :func:`image_size` (a file that is no image).
    """
    width, height, turn = header_size_and_orientation(path)
    return (height, width) if turn in (5, 6, 7, 8) and is_tiff(path) else (width, height)


def is_tiff(path: str | Path) -> bool:
    """Whether the file's first bytes are a TIFF's (classic or BigTIFF, either byte order): OpenCV picks its
    decoder by them, whatever the suffix. False when it cannot be read."""
    with contextlib.suppress(OSError), open(path, "rb") as file:
        return file.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    return False


def header_size_and_orientation(path: str | Path) -> tuple[int, int, int]:
    """``(width, height, EXIF orientation)`` from the header alone: the stored size, not turned (as
    :func:`displayed_size` reads them, nothing decoded).

    Raises:
        UserError: as :func:`image_size` (a file that is no image).
    """
    return _read(Path(path), decode=False, orientation=True)


def _opencv_only_pixels(path: Path) -> str | None:
    """``'<dtype>, <n>-channel'`` when OpenCV decodes a file PIL cannot identify (a 3-channel float32
    TIFF), else None: such a file was called corrupt."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    with captured_native_stderr():
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if array is None:
        return None
    channels = 1 if array.ndim == 2 else array.shape[2]
    return f"{array.dtype}, {channels}-channel"


#: The first bytes of a big-endian BigTIFF, which PIL (13.0) takes for a classic TIFF and cannot open.
_BIG_ENDIAN_BIGTIFF = b"MM\x00+"


def _first_bytes(path: Path, count: int) -> bytes:
    """The first ``count`` bytes of ``path`` (fewer, or none when it cannot be read)."""
    with contextlib.suppress(OSError), open(path, "rb") as file:
        return file.read(count)
    return b""


def _is_empty(path: Path) -> bool:
    """Whether ``path`` is a file of 0 bytes (False when it cannot be looked at)."""
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _late_exif(path: Path) -> bool:
    """Whether a PNG holds an eXIf chunk after its pixels (PIL finds it only by decoding; OpenCV applies it).

    Walks the chunk headers, seeking past each chunk's data: nothing is decoded.
    """
    with contextlib.suppress(OSError, struct.error), open(path, "rb") as file:
        file.seek(8)  # the PNG signature
        while header := file.read(8):
            length, kind = struct.unpack(">I4s", header)
            if kind == b"eXIf":
                return True
            if kind == b"IEND":
                return False
            file.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    return False


def check_upright(image: str | Path, orientation: int) -> None:
    """Refuses a defect image whose EXIF orientation tag (:func:`exif_orientation`) turns or mirrors it.

    OpenCV and ultralytics apply the tag (a phone photo taken sideways) and see the image turned,
    while its mask, and every label or score made from it, stay as stored: each would be misplaced.

    Raises:
        UserError: the tag is anything but 1 (upright), naming the image.
    """
    if orientation != 1:
        raise UserError(
            f"{image} has an EXIF orientation tag: OpenCV and ultralytics turn it on reading but "
            "not its mask, so its labels would be misplaced; save it upright (PIL.ImageOps.exif_transpose) "
            "with its mask drawn on the upright image"
        )


def check_mask_upright(mask: str | Path) -> None:
    """Refuses a TIFF mask whose EXIF orientation tag turns or mirrors it (anything but 1).

    OpenCV's TIFF decoder applies the tag to a mask too, even with ``IMREAD_UNCHANGED`` and
    ``IMREAD_IGNORE_ORIENTATION`` (:func:`mask_size`), while its photo is read upright (a tagged defect
    photo is refused, :func:`check_upright`): a square mask passed every size check and was converted and
    scored turned under its photo. OpenCV reads a JPEG, PNG or WebP mask as stored, tag or not.

    The tag is read from the TIFF's first directory alone (:func:`tiff_orientation`): PIL cannot open a
    3-channel float32 TIFF, or one over its decompression-bomb limit, which OpenCV reads and turns all the
    same; such a mask counted as untagged and passed.

    Raises:
        UserError: naming the mask and its tag, or its header that does not read.
    """
    if is_tiff(mask) and (turn := tiff_orientation(mask, what="mask")) != 1:
        raise UserError(
            f"mask {mask} has an EXIF orientation tag ({turn}): OpenCV turns a TIFF on "
            "reading, a mask too, so its defects would be misplaced on its photo; save it without the tag, "
            "its pixels as they lie on the photo (or as PNG, whose tag OpenCV does not apply)"
        )


def tiff_orientation(path: str | Path, *, what: str = "image") -> int:
    """The orientation tag of a TIFF's first directory (classic or BigTIFF, either byte order), 1 when absent
    or outside 1-8, read from the header with PIL's directory reader: neither its pixel format (a 3-channel
    float32 TIFF, which ``Image.open`` refuses) nor its size (PIL's decompression-bomb limit) matters.

    Raises:
        UserError: the file or its first directory does not read, naming ``what`` and the file.
    """
    try:
        with open(path, "rb") as file:
            header = file.read(8)
            order = header[:2]
            if header[:4] in (b"II+\x00", b"MM\x00+"):  # BigTIFF: an 8-byte offset follows
                # PIL (13.0) takes a big-endian one for classic by its 3rd byte (0, not 43) and reads
                # 12-byte entries: given the little-endian magic, the byte order apart, it reads both
                header = b"II+\x00" + header[4:] + file.read(8)
            directory = TiffImagePlugin.ImageFileDirectory_v2(header, prefix=order)
            file.seek(directory.next)
            with _TIFF_WARNINGS.kept() as caught:  # PIL warns of a directory cut short
                directory.load(file)
            value = directory.get(EXIF_ORIENTATION)
    except struct.error:
        raise UserError(f"cannot read the TIFF header of {what} {path}: it is cut short") from None
    except (OSError, SyntaxError, ValueError, TypeError, IndexError) as error:
        detail = error.strerror if isinstance(error, OSError) and error.strerror else one_line(error)
        raise UserError(f"cannot read the TIFF header of {what} {path}: {detail}") from None
    if value is None and any("Corrupt EXIF" in message for message in caught):
        raise UserError(f"cannot read the TIFF header of {what} {path}: its first directory is cut short")
    value = value[0] if isinstance(value, tuple) and value else value
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def image_size_and_orientation(path: str | Path) -> tuple[int, int, int]:
    """``(width, height, EXIF orientation)`` in one decode (:func:`image_size`, :func:`exif_orientation`).

    PIL finds a PNG's EXIF only by decoding the file, so asking for the two apart decodes it twice.

    Raises:
        UserError: as :func:`image_size`.
    """
    return _read(Path(path), decode=True, orientation=True)


def _read(path: Path, *, decode: bool, orientation: bool) -> tuple[int, int, int]:
    """The body of :func:`image_size`: the stored size; the orientation is 1 unless asked for (see
    :func:`displayed_size`)."""
    turn = 1
    try:
        with _directory_warnings(path) as caught, _pil_open()(path) as image:
            size = image.size
            if image.format == "TIFF":
                # PIL's TIFF reader gives the turned size at once and turns the pixels on loading
                # (dropping the tag then): the stored size and the tag, as every other format gives them
                tiff_turn = _orientation(image)
                size = size[::-1] if tiff_turn in (5, 6, 7, 8) else size
                turn = tiff_turn if orientation else 1
            if decode:
                if image.format == "JPEG":  # at least 1 px: PIL's draft divides by the size asked for
                    scaled = (max(1, size[0] // _JPEG_CHECK_SCALE), max(1, size[1] // _JPEG_CHECK_SCALE))
                    image.draft(image.mode, scaled)
                image.load()
            exif_read = decode or image.format != "PNG" or "exif" in image.info
            if orientation and image.format != "TIFF" and (exif_read or _late_exif(path)):
                turn = _orientation(image, caught)  # a PNG's getexif() decodes it unless its eXIf came first
    except Image.DecompressionBombError:
        raise UserError(
            f"cannot read image {path}: over PIL's decompression-bomb limit of {2 * Image.MAX_IMAGE_PIXELS} "
            "pixels (downscale the photo or cut it into tiles)"
        ) from None
    except FileNotFoundError:
        raise UserError(f"cannot read image {path}: no such file") from None
    except UnidentifiedImageError:
        if _is_empty(path):  # a copy cut short, a placeholder: 'not an image' sent users to its format
            raise UserError(f"cannot read image {path}: the file is empty") from None
        if _first_bytes(path, 4) == _BIG_ENDIAN_BIGTIFF:  # not its pixels: OpenCV reads them
            raise UserError(
                f"cannot read image {path}: a big-endian BigTIFF (MM), which PIL cannot read: save it as a "
                "little-endian (II) or classic TIFF, or as PNG"
            ) from None
        if depth := _opencv_only_pixels(path):  # a whole file, of a kind PIL lacks: not 'corrupt'
            raise UserError(
                f"cannot read image {path}: {depth} pixels, which PIL cannot read (OpenCV can): "
                "save it with 8 or 16 bits per channel"
            ) from None
        reason = "PIL cannot identify it"
        raise UserError(f"cannot read image {path}: corrupt or not an image ({reason})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        reason = one_line(error)
        raise UserError(f"cannot read image {path}: corrupt or not an image ({reason})") from None
    return (*size, turn)


def photo_colour(image: np.ndarray) -> str:
    """``"grey"`` for an RGB array whose three channels are equal (a grey photo read as RGB), else
    ``"colour"``: a PatchCore run fit on one kind scores the other as far from every good patch, and a
    colour head or colour prompt reads nothing in a grey one."""
    grey = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    return "grey" if grey else "colour"
