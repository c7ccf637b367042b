"""The proposals file of ``--proposals``: the inspection cascade's COCO results, placed on the photos.

The file is COCO *results*::

    [{"image_id": 3, "category_id": 1, "bbox": [x, y, w, h], "score": 0.91,
      "segmentation": {"size": [H, W], "counts": "..."}, "box_score": 0.93,
      "mask_score": 0.88, "file_name": "lot_2/0007.png", "category_name": "scratch"}, ...]

with ``images.json`` beside it (``[{"id", "file_name", "width", "height",
"verdict", ...}]``, or inspection.predict's ``{"info", "categories", "images"}``,
whose category names then name the classes). Liberal in what it takes: entries without ``file_name``
are placed through ``image_id`` and ``images.json``; a whole COCO data set
(``{"images", "annotations", "categories"}``) works too; masks may be RLE
(string or list counts) or polygons; ``score`` falls back to ``box_score``.
Strict in what it refuses: every problem is one :class:`UserError` line
naming the file, the entry and what is wrong.

A ``file_name`` is the photo's path relative to the folder the cascade ran on,
or its bare name: it matches the photo whose key (path relative to
``--images``) it ends with, or that ends with it, when exactly one does; a file made on a folder
below ``--images`` (the ``source`` its run records beside it) names photos below that folder, and
one made on another folder still holding other photos of its names is refused (:func:`check_made_on`).
Classes are ``category_name`` where given, else ``category_id`` 1..N mapped in
order onto the session's N classes (refused when an id does not fit, or when
an image's verdict in ``images.json`` contradicts the mapping). A ``category_name``
that is not one of the session's classes (``anomaly.predict``'s ``anomaly``) is
kept: such a proposal is accepted only as one of them.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np
import yaml

from common.errors import UserError
from common.folders import check_input_file
from common.image_files import IMAGE_SUFFIXES
from common.io import expand_user, read_json
from common.photo_sources import glob_base
from converters.masks import segmentation_to_mask
from segmentation.annotate.errors import AnnotationError
from segmentation.annotate.proposals import Proposal, make_proposal
from segmentation.annotate.records import check_classes

#: The cascade's per-image file, next to its predictions.
IMAGES_FILE = "images.json"
#: The proposals file the cascade and ``anomaly.predict`` write.
PREDICTIONS_FILE = "predictions.json"
#: What ``anomaly.predict`` and ``inspection.predict`` record beside it, the photo folder among it.
RUN_RECORDS = ("predict.json", "args.yaml")
#: A sha256 as ``images.json`` records it (``hashlib``'s ``hexdigest``; uppercase taken too).
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Result:
    """One entry of a proposals file, checked for shape but not yet placed on a photo.

    Attributes:
        index: its position in the file (for messages).
        file_name: the photo, as the file names it (resolved through ``images.json`` if need be).
        image_id: the file's id of the photo, if given.
        category_id, category_name: its class as given (at least one of them).
        bbox: xyxy in pixels, if given.
        score, mask_score: confidences, if given.
        segmentation: a COCO RLE ``{"size", "counts"}`` or a list of polygons.
    """

    index: int
    file_name: str
    image_id: int | None
    category_id: int | None
    category_name: str | None
    bbox: tuple[float, float, float, float] | None
    score: float | None
    mask_score: float | None
    segmentation: dict | list


@dataclass(frozen=True)
class ProposalFile:
    """A read proposals file: its entries, and the verdicts of ``images.json`` by file name."""

    path: Path
    results: list[Result]
    verdicts: dict[str, str]
    digest: str
    #: The folder its file names are relative to, as the run that wrote it recorded (:func:`made_on`).
    folder: Path | None = None
    #: The sha256 of each photo's file that ``images.json`` records (``inspection.predict`` writes it), by
    #: file name; files written before, or by other tools, record none.
    photo_digests: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """What identifies this file's proposals: an image gets them once (its name and content hash)."""
        return f"{self.path.name} sha256:{self.digest[:16]}"

    def class_names(self) -> list[str]:
        """The ``category_name`` values, by category id then first appearance (the classes of a first run)."""
        named = [(r.category_id or 0, r.index, r.category_name) for r in self.results if r.category_name]
        return list(dict.fromkeys(name for _, _, name in sorted(named)))


def check_first_classes(names: Sequence[str], path: Path) -> None:
    """The file's class names, the classes of a first run without ``--classes``, must be classes of the
    page (:func:`records.check_classes`).

    The user typed none of them, so "bad class name ...; remove it" named no way out: the error names
    the file and ``--classes``, with which a proposal of another name is accepted as one of them.

    Raises:
        UserError: naming the file, the class, and ``--classes``.
    """
    try:
        check_classes(names)
    except AnnotationError as error:
        raise UserError(
            f"proposals file {path}: {error}; the class names are the file's own: name the classes with "
            "--classes (a proposal of another name is then accepted as one of them)"
        ) from None


def read_proposal_file(path: str | Path) -> ProposalFile:
    """Reads and checks a proposals file (and the ``images.json`` beside it); no photo is looked at.

    Raises:
        UserError: unreadable or not JSON, not a list of results, an entry without a mask, a
            class, a score or a photo (``file_name``, or ``image_id`` found in ``images.json``).
    """
    path = expand_user(path)
    if path.is_dir():  # their output folder: "Is a directory" named no way out
        check_input_file(path, "--proposals", inside=(PREDICTIONS_FILE,))
    beside = path.parent / PREDICTIONS_FILE
    if path.name == IMAGES_FILE and beside.is_file():  # its entries have no masks: "no category_id" misled
        raise UserError(
            f"proposals file {path} is the list of photos written beside the proposals: pass {beside}"
        )
    data = read_json(path, what="proposals file")
    images: object = []
    names: dict[int, str] = {}
    images_file = path.parent / IMAGES_FILE
    if images_file.is_file() and path.name != IMAGES_FILE:
        images = read_json(images_file, what="proposals' image list")
        if isinstance(images, dict) and "images" in images:  # inspection.predict's COCO image info
            images, names = images["images"], _category_names(images)
    if isinstance(data, dict) and "annotations" in data:  # a whole COCO data set
        if data.get("images"):
            images, images_file = data["images"], path
        names = _category_names(data) or names
        data = data["annotations"]
    if not isinstance(data, list):
        way_out = f" (pass {beside})" if beside.is_file() and beside != path else ""  # e.g. predict.json
        raise UserError(
            f"proposals file {path} must hold a JSON list of COCO results, not {type(data).__name__}{way_out}"
        )
    by_id = _images_by_id(images, images_file)
    results = [_result(entry, index, by_id, names, path) for index, entry in enumerate(data)]
    verdicts = {
        str(image["file_name"]): str(image["verdict"])
        for image in by_id.values()
        if isinstance(image.get("verdict"), str)
    }
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ProposalFile(
        path,
        results,
        verdicts,
        digest,
        folder=made_on(path.parent),
        photo_digests=_photo_digests(by_id, images_file),
    )


def made_on(folder: Path) -> Path | None:
    """The photo folder the predictions in ``folder`` were made on: ``source`` as ``anomaly.predict``'s
    ``predict.json`` or ``inspection.predict``'s ``args.yaml`` records it (a pattern's leading folder, a
    photo's own folder); None when neither is there or readable (a file written otherwise)."""
    source = None
    for name, load in ((RUN_RECORDS[0], json.loads), (RUN_RECORDS[1], yaml.safe_load)):
        try:
            record = load((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if isinstance(record, dict) and isinstance(record.get("source"), str) and record["source"]:
            source = record["source"]
            break
    if source is None:
        return None
    if any(char in source for char in "*?["):
        return glob_base(source)
    path = Path(source)
    return path.parent if path.suffix.lower() in IMAGE_SUFFIXES else path


def _category_names(coco: dict) -> dict[int, str]:
    """``{id: name}`` of a COCO dict's ``categories`` (entries without both are skipped)."""
    categories = coco.get("categories")
    if not isinstance(categories, list):
        return {}
    return {
        int(c["id"]): str(c["name"])
        for c in categories
        if isinstance(c, dict) and isinstance(c.get("id"), int) and "name" in c
    }


def _images_by_id(images: object, path: Path) -> dict[int, dict]:
    if not isinstance(images, list) or not all(
        isinstance(i, dict) and isinstance(i.get("id"), int) and isinstance(i.get("file_name"), str)
        for i in images
    ):
        raise UserError(f"{path} must be a JSON list of {{'id': int, 'file_name': str, ...}}")
    return {image["id"]: image for image in images}


def _photo_digests(images: dict[int, dict], path: Path) -> dict[str, str]:
    """The sha256 each photo's entry of ``path`` records, by file name, lowercased (``hexdigest`` case).

    A malformed one would never equal the photo's: every proposal on it would be dropped at its first
    opening, as if the photo had been replaced, so it is refused here.

    Raises:
        UserError: a ``sha256`` (other than null) that is not 64 hexadecimal digits, naming the file and
            the photo.
    """
    digests = {}
    for image in images.values():
        value = image.get("sha256")
        if value is None:  # none recorded (a file written otherwise)
            continue
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            raise UserError(
                f"{path}: the sha256 of photo {image['file_name']!r} must be 64 hexadecimal digits, not "
                f"{json.dumps(value)[:80]}"
            )
        digests[str(image["file_name"])] = value.lower()
    return digests


def _result(entry: object, index: int, images: dict[int, dict], names: dict[int, str], path: Path) -> Result:
    """One entry checked; a UserError ``<file>: entry <i>: <problem>`` otherwise."""

    def refuse(problem: str) -> UserError:
        return UserError(f"proposals file {path}: entry {index}: {problem}")

    if not isinstance(entry, dict):
        raise refuse(f"expected an object, got {type(entry).__name__}")
    image_id = entry.get("image_id")
    file_name = entry.get("file_name")
    if file_name is None and isinstance(image_id, int) and image_id in images:
        file_name = images[image_id]["file_name"]
    if not isinstance(file_name, str) or not file_name.strip():
        where = "is not in images.json" if images else f"has no {IMAGES_FILE} beside the file to look it up"
        raise refuse(f"no file_name, and image_id {image_id!r} {where}")
    category_id, category_name = entry.get("category_id"), entry.get("category_name")
    if category_name is None and isinstance(category_id, int):
        category_name = names.get(category_id)
    if category_id is not None and (not isinstance(category_id, int) or isinstance(category_id, bool)):
        raise refuse(f"category_id must be an integer, got {category_id!r}")
    if category_name is not None and not isinstance(category_name, str):
        raise refuse(f"category_name must be a string, got {category_name!r}")
    if category_id is None and category_name is None:
        raise refuse("no category_id or category_name")
    segmentation = entry.get("segmentation")
    if not _is_rle(segmentation) and not _is_polygons(segmentation):
        raise refuse("'segmentation' must be a COCO RLE {'size': [H, W], 'counts': ...} or polygons")
    score = entry.get("score", entry.get("box_score"))
    return Result(
        index=index,
        file_name=file_name,
        image_id=image_id if isinstance(image_id, int) else None,
        category_id=category_id,
        category_name=category_name,
        bbox=_xyxy(entry.get("bbox"), refuse),
        score=_number(score, "score", refuse),
        mask_score=_number(entry.get("mask_score"), "mask_score", refuse),
        segmentation=segmentation,
    )


def _is_rle(value: object) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("counts"), str | list):
        return False
    size = value.get("size")
    return isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)


def _is_polygons(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(p, list) and len(p) >= 6 and all(_is_real(v) for v in p) for p in value)
    )


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _number(value: object, name: str, refuse: Callable[[str], UserError]) -> float | None:
    if value is None:
        return None
    if not _is_real(value):
        raise refuse(f"{name} must be a number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _xyxy(bbox: object, refuse: Callable[[str], UserError]) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    if (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(_is_real(v) for v in bbox)
        or min(bbox[2:]) < 0
    ):
        raise refuse(f"bbox must be [x, y, w, h] with w, h >= 0, got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    return x, y, x + w, y + h


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Placing the entries on the session's photos


def match_photo(file_name: str, keys: Iterable[str]) -> str | None:
    """The key ``file_name`` names: the same path, else the one photo whose path and it end alike.

    Returns None when no photo matches.

    >>> match_photo("run/lot_2/c.png", ["lot_1/c.png", "lot_2/c.png"])
    'lot_2/c.png'
    >>> match_photo("c.png", ["lot_2/c.png", "a.png"])
    'lot_2/c.png'

    Raises:
        UserError: more than one photo matches (a bare name found in two folders).
    """
    wanted = PurePosixPath(file_name.replace("\\", "/").removeprefix("./"))
    keys = list(keys)
    if wanted.as_posix() in keys:
        return wanted.as_posix()
    found = [key for key in keys if _ends_alike(PurePosixPath(key).parts, wanted.parts)]
    if len(found) > 1:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise UserError(
            f"'{file_name}' matches {len(found)} photos ({shown}): write file_name relative to --images"
        )
    return found[0] if found else None


def _ends_alike(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    n = min(len(a), len(b))
    return n > 0 and a[-n:] == b[-n:]


def relative_to_images(proposals: ProposalFile, images: Path) -> tuple[ProposalFile, list[str]]:
    """The file with its names relative to ``images`` where it was made on a folder below or above it.

    ``anomaly.predict --source photos/lot_a`` names ``00.jpg``; beside ``photos/lot_b/00.jpg`` under
    ``--images photos`` that name matched two photos, and the way out it named was to edit the file.
    Made on ``photos`` (two lots, or two categories) for ``--images photos/lot_a``, its ``lot_b/00.jpg``
    matched ``00.jpg`` by its end: such entries, of photos outside ``images``, are left out.

    Returns:
        The file, and the names of the photos outside ``images`` whose entries were left out.
    """
    folder = proposals.folder
    if folder is None:
        return proposals, []
    folder, images = folder.resolve(), images.resolve()
    if folder != images and folder.is_relative_to(images):
        prefix = folder.relative_to(images).as_posix()
        return _renamed(proposals, lambda name: f"{prefix}/{name}"), []
    if folder == images or not images.is_relative_to(folder):
        return proposals, []
    prefix = images.relative_to(folder).as_posix() + "/"
    inside = [r for r in proposals.results if _posix(r.file_name).startswith(prefix)]
    outside = [r.file_name for r in proposals.results if not _posix(r.file_name).startswith(prefix)]
    kept = replace(proposals, results=inside)
    return _renamed(kept, lambda name: _posix(name).removeprefix(prefix)), list(dict.fromkeys(outside))


def _posix(name: str) -> str:
    return name.replace("\\", "/").removeprefix("./")


def _renamed(proposals: ProposalFile, rename: Callable[[str], str]) -> ProposalFile:
    """``proposals`` with every entry's ``file_name`` (and the verdicts' keys) renamed."""
    return replace(
        proposals,
        results=[replace(r, file_name=rename(r.file_name)) for r in proposals.results],
        verdicts={rename(name): verdict for name, verdict in proposals.verdicts.items()},
        photo_digests={rename(name): digest for name, digest in proposals.photo_digests.items()},
    )


#: How many of a file's photos :func:`check_made_on` compares with those of ``--images``.
COMPARED = 8


def check_made_on(proposals: ProposalFile, *, images: Path, keys: Sequence[str]) -> None:
    """Refuses a file made on other photos of the same names: its run's folder still holds them.

    The photos of the folder the file records (:func:`made_on`), where that is not ``images`` (or a
    folder below it) and still there, are compared with the photos of ``images`` their names match (the first
    :data:`COMPARED`: another lot differs in every photo, and a copied lot is not read whole at each
    start): the proposals of ``lot_8/00.jpg`` were drawn on ``lot_7/00.jpg`` without a word. A photo
    the folder no longer holds (moved, another machine) is not compared.

    Raises:
        UserError: naming the file, the photo, the folder it was made on, and what to pass instead.
    """
    folder = proposals.folder
    if folder is None or not folder.is_dir():
        return
    folder_at, images_at = folder.resolve(), images.resolve()
    if folder_at.is_relative_to(images_at) or images_at.is_relative_to(folder_at):
        return  # made on --images, or a folder below or above it (relative_to_images)
    names = list(dict.fromkeys(result.file_name for result in proposals.results))
    for name in names[:COMPARED]:
        made, key = folder / name, _matched(name, keys)
        if key is None or not made.is_file() or filecmp.cmp(made, images / key):  # same size and time: same
            continue
        raise UserError(
            f"proposals file {proposals.path} was made on the photos of {folder}, whose {name} "
            f"differs from {images / key}: pass --images {folder}, or predict on {images} for proposals of "
            "its photos"
        )


def recorded_digests(proposals: ProposalFile, keys: Sequence[str]) -> dict[str, str]:
    """The sha256 the file records of each photo of ``keys`` it names (:attr:`ProposalFile.photo_digests`,
    its names made relative to ``--images`` first: :func:`relative_to_images`), by key; only the photos
    of its entries (those of photos outside ``--images`` were left out)."""
    named = {result.file_name for result in proposals.results}
    return {
        key: digest
        for name, digest in proposals.photo_digests.items()
        if name in named and (key := _matched(name, keys)) is not None
    }


def _matched(file_name: str, keys: Sequence[str]) -> str | None:
    """The key ``file_name`` names (:func:`match_photo`), None for none or several (refused later)."""
    try:
        return match_photo(file_name, keys)
    except UserError:
        return None


def left_to_place(
    proposals: ProposalFile,
    *,
    keys: Sequence[str],
    had: Collection[str],
    image_size: Callable[[str], tuple[int, int]],
) -> tuple[ProposalFile, list[str]]:
    """A resumed session's file, less the entries it no longer needs or can no longer place.

    ``had``: the photos (on disk, or gone from ``--images`` since) that have had the file's proposals:
    their entries are dropped unchecked, since a photo takes a file's proposals once. When ``had`` is not
    empty (the ``--out`` took this very file before: a restart), an entry of a photo deleted from
    ``--images`` since, or replaced by one of another size, is left out too: the same command stopped at
    it with an error, where :func:`place_proposals` refuses it (a first run: the file is of other photos).

    Returns:
        The file with the entries left to place, and the photos left out, each with why.

    Raises:
        UserError: a bare name that matches two photos (as :func:`place_proposals`).
    """
    by_name: dict[str, list[str]] = {}
    for key in dict.fromkeys([*keys, *had]):  # a photo that had them is among keys too: listed once
        by_name.setdefault(PurePosixPath(key).name, []).append(key)
    # looked up once per entry: lists scanned each time took a restart on a big folder quadratic time
    had, present = set(had), set(keys)
    kept: list[Result] = []
    left_out: dict[str, str] = {}
    for result in proposals.results:
        name = PurePosixPath(result.file_name.replace("\\", "/")).name
        try:
            key = match_photo(result.file_name, by_name.get(name, []))
        except UserError as error:
            raise UserError(f"proposals file {proposals.path}: entry {result.index}: {error}") from None
        if key in had:
            continue
        why = None if not had else _why_not_placed(result, key, present, image_size)
        if why is None:
            kept.append(result)
        else:
            left_out.setdefault(key or result.file_name, why)
    return replace(proposals, results=kept), [f"{key} ({why})" for key, why in left_out.items()]


def _why_not_placed(
    result: Result, key: str | None, keys: Collection[str], image_size: Callable[[str], tuple[int, int]]
) -> str | None:
    """Why a resumed file's entry no longer fits its photo: gone from ``--images``, or of another size."""
    if key is None or key not in keys:
        return "not among --images now"
    if not _is_rle(result.segmentation):  # polygons fit a photo of any size
        return None
    height, width = image_size(key)
    mask_h, mask_w = result.segmentation["size"]  # type: ignore[index]
    if (mask_h, mask_w) == (height, width):
        return None
    return f"{width}x{height} now, its masks {mask_w}x{mask_h}"


def _placed_keys(proposals: ProposalFile, keys: Sequence[str]) -> dict[str, str]:
    """The photo (key) of each ``file_name`` of the file (:func:`match_photo`).

    Raises:
        UserError: a name that matches no photo or two, or two names of one photo: ``lot_a/00.jpg`` and
            ``lot_b/00.jpg`` of a file made on two lots both matched ``00.jpg`` of ``--images lot_a``
            by their ends, and the other lot's proposals went onto that photo unsaid.
    """
    path = proposals.path
    by_name: dict[str, list[str]] = {}
    for key in keys:  # a photo that matches ends with the same name: only those are compared
        by_name.setdefault(PurePosixPath(key).name, []).append(key)
    placed: dict[str, str] = {}
    named: dict[str, tuple[str, int]] = {}  # key -> the first file_name placed on it, and its entry
    for result in proposals.results:
        if result.file_name in placed:
            continue
        name = PurePosixPath(_posix(result.file_name)).name
        try:
            key = match_photo(result.file_name, by_name.get(name, []))
        except UserError as error:
            raise UserError(f"proposals file {path}: entry {result.index}: {error}") from None
        if key is None:
            raise UserError(
                f"proposals file {path}: entry {result.index}: no photo '{result.file_name}' "
                "among the images of --images"
            )
        first, index = named.setdefault(key, (result.file_name, result.index))
        if _posix(first) != _posix(result.file_name):
            raise UserError(
                f"proposals file {path}: entries {index} and {result.index} name '{first}' and "
                f"'{result.file_name}', two photos, and both match {key} of --images: pass --images the "
                "folder the file was made on"
            )
        placed[result.file_name] = key
    return placed


def place_proposals(
    proposals: ProposalFile,
    *,
    keys: Sequence[str],
    classes: Sequence[str],
    image_size: Callable[[str], tuple[int, int]],
) -> dict[str, list[Proposal]]:
    """The file's proposals by image key, best score first; empty masks are left out.

    Args:
        proposals: :func:`read_proposal_file`'s result.
        keys: the session's photos.
        classes: the session's classes.
        image_size: ``(H, W)`` of a photo by key (read once per photo).

    Raises:
        UserError: a photo not among ``keys`` or matching two, a category id that does not fit
            ``classes``, a verdict that contradicts them, or a mask whose size is not its photo's.
            (A ``category_name`` not among ``classes`` is kept: see :func:`class_names`.)
    """
    path = proposals.path
    placed = _placed_keys(proposals, keys)
    names = class_names(proposals, classes, keys_of=placed)
    sizes: dict[str, tuple[int, int]] = {}
    found: dict[str, list[Proposal]] = {}
    for result, name in zip(proposals.results, names, strict=True):
        key = placed[result.file_name]
        if key not in sizes:
            sizes[key] = image_size(key)
        mask = _mask(result, sizes[key], key, path)
        proposal = make_proposal(
            mask,
            class_name=name,
            box=result.bbox,
            score=result.score,
            mask_score=result.mask_score,
            source=path.name,
        )
        if proposal is not None:
            found.setdefault(key, []).append(proposal)
    return {key: sorted(items, key=lambda p: -(p.score or 0.0)) for key, items in found.items()}


def class_names(proposals: ProposalFile, classes: Sequence[str], *, keys_of: Mapping[str, str]) -> list[str]:
    """The class of every entry: its ``category_name``, else ``classes[category_id - 1]``.

    A name not among ``classes`` is kept (``anomaly.predict``'s placeholder ``anomaly``): the page
    shows such a proposal under its own name and accepts it only as one of ``classes``.

    Raises:
        UserError: ids outside ``1..len(classes)``; an image whose ``images.json`` verdict is a class
            none of its id-mapped proposals has.
    """
    path = proposals.path
    by_id = [r for r in proposals.results if r.category_name is None]
    bad = next((r for r in by_id if not 1 <= r.category_id <= len(classes)), None)  # type: ignore[operator]
    if bad is not None:
        raise UserError(
            f"proposals file {path}: entry {bad.index}: category_id {bad.category_id} does not fit the "
            f"{len(classes)} classes ({' '.join(classes)}): give the cascade's classes in its order with "
            "--classes, or write category_name into the file"
        )
    names = [r.category_name or classes[r.category_id - 1] for r in proposals.results]  # type: ignore[operator]
    _check_verdicts(proposals, names, keys_of)
    return names


def _check_verdicts(proposals: ProposalFile, names: Sequence[str], keys_of: Mapping[str, str]) -> None:
    """Ids mapped onto the wrong class list show as an image whose verdict none of its proposals has."""
    mapped: dict[str, set[str]] = {}
    for result, name in zip(proposals.results, names, strict=True):
        if result.category_name is None:
            mapped.setdefault(result.file_name, set()).add(name)
    for file_name, got in mapped.items():
        verdict = proposals.verdicts.get(file_name)
        if verdict is not None and verdict != "good" and verdict not in got:
            raise UserError(
                f"proposals file {proposals.path}: {keys_of.get(file_name, file_name)} has verdict "
                f"'{verdict}' in {IMAGES_FILE} but its category ids map to {', '.join(sorted(got))}: "
                "give the cascade's classes in its order with --classes"
            )


def _mask(result: Result, size: tuple[int, int], key: str, path: Path) -> np.ndarray:
    """The entry's ``(H, W)`` bool mask, checked against its photo's ``size``."""
    height, width = size
    segmentation = result.segmentation
    if isinstance(segmentation, list):
        return segmentation_to_mask(segmentation, height, width)
    mask_h, mask_w = segmentation["size"]
    if (mask_h, mask_w) != (height, width):
        raise UserError(
            f"proposals file {path}: entry {result.index}: its mask is {mask_w}x{mask_h} but photo "
            f"{key} is {width}x{height}"
        )
    counts = segmentation["counts"]
    pixels = sum(counts) if isinstance(counts, list) else rle_pixels(counts)
    if pixels != height * width:  # pycocotools decodes such counts into garbage without a word
        raise UserError(
            f"proposals file {path}: entry {result.index}: unreadable RLE counts "
            f"(they cover {pixels} pixels, the mask {height}x{width} has {height * width})"
        )
    return segmentation_to_mask(segmentation, height, width)


def rle_pixels(counts: str) -> int:
    """The pixels a compressed COCO RLE string covers: the sum of its runs (pycocotools' ``rleFrString``).

    >>> rle_pixels("52")  # runs 5 and 2
    7
    """
    runs: list[int] = []
    p = 0
    while p < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if p >= len(counts):
                return -1  # cut short
            c = ord(counts[p]) - 48
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            p, shift = p + 1, shift + 5
            if not more and c & 0x10:
                value |= -1 << shift
        runs.append(value + runs[-2] if len(runs) > 2 else value)
    return sum(runs)
