"""pycocotools' ``COCO`` of a COCO instances file, read once the project's way.

``COCO(path)`` opens the file itself with ``json.load``: a file saved by a Windows tool (a UTF-8
BOM first) stopped it with ``Unexpected UTF-8 BOM``, and a hand-edited one with a bare
``KeyError`` from its index. Every COCO file the project reads goes through
:func:`common.io.read_coco_instances` (BOM read, one-line errors naming the file), and every
``COCO`` it builds through :func:`coco_index`, so the packages accept and refuse the same files.

:func:`predicted_image` is a photo's entry of the ``images.json`` that ``inspection.predict`` and
``anomaly.predict`` write beside their ``predictions.json`` (COCO image info).

:func:`check_image_size`, :func:`check_category`, :func:`check_area`, :func:`check_segmentation`,
:func:`check_not_crowd`, :func:`check_rle_size`,
:func:`check_rle_covers`, :func:`check_box` and :func:`check_box_in_image` refuse,
one line each, what a COCO file edited by hand or written by another tool may hold and the converters never
write, as does :func:`unknown_image`'s error, in the words of every package that reads one
(``segmentation.coco_checks``, ``detection.coco``); :func:`check_ids` (:func:`check_keys` and
:func:`check_unique_ids`) so refuses its ids, and :func:`check_file_name` an image's ``file_name`` outside
its ``images`` folder.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Container, Mapping, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from common.errors import UserError, one_line
from common.io import read_coco_instances, sha256_file

#: What to do about a COCO file refused for what the converters never write, whoever wrote it: each
#: message said "convert the data set again", which a file made by hand or by another tool cannot be.
FIX_COCO = (
    "correct it in the file, or in the tool that wrote it (a data set the converters wrote and since "
    "edited: convert it again)"
)

#: The next step of a box of no width or height (COCO's own train2017 holds two), in every package's words.
NO_SIZE_FIX = f"remove the annotation, or {FIX_COCO}"


#: COCOeval's largest ground-truth area (its area range ``all``, 1e5^2 px): one above it is left out of AP.
MAX_COCO_AREA = 1e5**2

#: Each part of a COCO file: what one entry is called, and the keys every entry needs.
COCO_KEYS = {
    "images": ("image", ("id", "file_name")),
    "annotations": ("annotation", ("id", "image_id", "category_id")),  # pycocotools indexes by each
    "categories": ("category", ("id", "name")),
}


def coco_index(dataset: dict, *, path: str | Path | None = None):
    """pycocotools' ``COCO`` of ``dataset`` (a COCO instances dict, used as it is, not copied), indexed.

    Args:
        dataset: ``images``, ``annotations``, ``categories``, as :func:`~common.io.read_coco_instances`
            reads them.
        path: the file ``dataset`` was read from, for the message; None for ground truth built in memory.

    Raises:
        UserError: pycocotools cannot index it (an annotation without an ``image_id`` or ``id``, ...),
            one line naming ``path``.
    """
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        try:
            coco.createIndex()
        except (ValueError, KeyError, TypeError) as error:
            where = f"COCO file {path}" if path is not None else "COCO ground truth"
            why = f"an entry lacks {error}" if isinstance(error, KeyError) else one_line(error)
            raise UserError(f"cannot load {where}: {why} (pycocotools)") from None
    return coco


def read_coco_index(path: str | Path):
    """pycocotools' ``COCO`` of the instances file ``path``: ``COCO(path)`` with the project's reading.

    >>> read_coco_index("data/annotations/instances_test.json").getImgIds()  # doctest: +SKIP

    Raises:
        UserError: unreadable, not a COCO instances file, or one pycocotools cannot index; one line. An entry
            :func:`check_keys` refuses is refused in its words first: pycocotools' own line (``an entry lacks
            'image_id'``, ``unhashable type: 'list'``) named neither the entry nor a next step.
    """
    dataset = read_coco_instances(path)
    check_keys(dataset, source=path)
    return coco_index(dataset, path=path)


def predicted_image(
    *,
    image_id: int,
    file_name: str,
    path: str | Path,
    size: tuple[int, int],
    verdict: str,
    score: float,
    instances: int,
    name: str,
) -> dict:
    """A photo's entry of a predictions folder's ``images.json`` (``inspection.predict``,
    ``anomaly.predict``): COCO image info, and what the run made of it.

    Args:
        file_name: the photo's path as ``predictions.json`` names it.
        path: the photo's file: ``sha256`` is its bytes' digest, by which ``segmentation.annotate
            --proposals`` tells the photo from another of its name without reading every photo first.
        size: ``(H, W)``.
        name: its output name (its mask's and map's file stem).

    Raises:
        UserError: ``path`` cannot be read, one line naming it.
    """
    return {
        "id": int(image_id),
        "file_name": file_name,
        "width": int(size[1]),
        "height": int(size[0]),
        "verdict": verdict,
        "score": round(float(score), 6),
        "instances": int(instances),
        "name": name,
        "sha256": sha256_file(path, what="photo"),
    }


def is_finite_number(value: object) -> bool:
    """A finite int or float: Python's ``json`` reads ``NaN`` and ``Infinity``, which COCO has not."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_whole_number(value: object) -> bool:
    """An int, not a bool: COCO's ids (``json`` reads ``1.0`` as a float, and ``true`` as a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_image_size(info: Mapping, *, source: str | Path) -> tuple[float, float]:
    """``(width, height)`` of a COCO image entry ``info`` of the file ``source``.

    Raises:
        UserError: no width and height of 1 or more (finite numbers), one line naming the image.
    """
    if not all(is_finite_number(info.get(key)) and info[key] >= 1 for key in ("width", "height")):
        raise UserError(
            f"image {info.get('id')} ({info.get('file_name')}) in {source} has no width and height: "
            f"{FIX_COCO}"
        )
    return info["width"], info["height"]


def unknown_image(annotation: Mapping, *, source: str | Path) -> UserError:
    """The error for an ``annotation`` of the COCO file ``source`` whose ``image_id`` no image of the file
    has: pycocotools leaves it out of the scores without a word."""
    return UserError(
        f"annotation {annotation.get('id')!r} in {source} has image_id {annotation.get('image_id')!r}, "
        f"which no image of the file has: {FIX_COCO}"
    )


def check_ids(dataset: Mapping, *, source: str | Path) -> None:
    """Refuses ids a hand-edited COCO file may get wrong and the converters never write: an entry without
    its :data:`COCO_KEYS`, an id that is no whole number or is given twice (an annotation's ``image_id`` and
    ``category_id`` too), an image without a ``file_name`` path, an annotation of no image of the file
    (:func:`check_keys`, then :func:`check_unique_ids`).

    Raises:
        UserError: one line naming the entry and ``source`` (the file, as the message names it).
    """
    check_keys(dataset, source=source)
    check_unique_ids(dataset, source=source)


def check_keys(
    dataset: Mapping, *, source: str | Path, category_check: Callable[[Mapping], None] | None = None
) -> None:
    """Refuses an entry of the COCO file ``dataset`` (read from ``source``) without its :data:`COCO_KEYS`
    (a bare ``KeyError`` in pycocotools and the scorers), with an id that is no whole number (a text id
    beside numbers failed with a ``TypeError``; ``"3"`` for 3 matched nothing), an annotation whose
    ``image_id`` or ``category_id`` is none (:func:`check_references`), an image whose ``file_name`` is not
    a path (an empty one read the images folder itself), or a category id given twice (its first
    category's instances were scored under the second's name).

    Args:
        category_check: the caller's own check of a category entry, after its keys and id, before its
            id is looked up among the earlier ones.
    """
    for part, (kind, keys) in COCO_KEYS.items():
        seen: set[int] = set()
        for index, entry in enumerate(dataset[part]):
            if missing := [key for key in keys if key not in entry]:
                raise UserError(
                    f"entry {index + 1} of '{part}' in {source} has no '{missing[0]}': {FIX_COCO}"
                )
            if not is_whole_number(entry["id"]):
                raise UserError(
                    f"{kind} id {entry['id']!r} in {source} is not a whole number, as COCO's ids are: "
                    f"{FIX_COCO}"
                )
            if part == "annotations":
                check_references(entry, index=index, source=source)
            if part == "images" and not (isinstance(entry["file_name"], str) and entry["file_name"]):
                raise UserError(
                    f"image {entry['id']} in {source} has file_name {entry['file_name']!r}, not a path: "
                    f"{FIX_COCO}"
                )
            if part == "categories" and category_check is not None:
                category_check(entry)
            if part == "categories" and entry["id"] in seen:
                raise UserError(
                    f"category id {entry['id']} is given twice in {source} ({entry['name']!r} and another): "
                    f"{FIX_COCO}"
                )
            seen.add(entry["id"])


def check_references(annotation: Mapping, *, index: int, source: str | Path) -> None:
    """Refuses an ``annotation`` (entry ``index``, from 0, of the COCO file ``source``; its keys checked)
    whose ``image_id`` or ``category_id`` is no whole number.

    pycocotools and Python's ``in`` take ``1.0`` and ``true`` for 1 (``1.0 == 1 == True``), so a hand-edited
    id of either was read as image or category 1's without a word; a list stopped pycocotools' index with
    ``unhashable type: 'list'``.
    """
    for key in ("image_id", "category_id"):
        if not is_whole_number(value := annotation[key]):
            raise UserError(
                f"annotation {annotation['id']!r} (entry {index + 1} of 'annotations') in {source} has {key} "
                f"{value!r}, not a whole number, as COCO's ids are: {FIX_COCO}"
            )


def check_unique_ids(dataset: Mapping, *, source: str | Path) -> None:
    """Refuses an image or annotation id given twice in the COCO file ``dataset`` (read from ``source``;
    :func:`check_keys` passed), or an annotation whose ``image_id`` is no image of the file.

    pycocotools indexes them by id and annotations by ``image_id``, so each dropped data without a word:
    the second image of an id, the first annotation of an id (the second read twice in its place), an
    annotation of no image.
    """
    images: dict[object, str] = {}
    for image in dataset["images"]:
        if image["id"] in images:
            raise UserError(
                f"image id {image['id']!r} is given twice in {source} ({images[image['id']]} and "
                f"{image.get('file_name')}): {FIX_COCO}"
            )
        images[image["id"]] = image.get("file_name")
    annotations: set[object] = set()
    for annotation in dataset["annotations"]:
        if annotation["id"] in annotations:
            raise UserError(f"annotation id {annotation['id']!r} is given twice in {source}: {FIX_COCO}")
        annotations.add(annotation["id"])
        if annotation["image_id"] not in images:
            raise unknown_image(annotation, source=source)


def check_file_name(info: Mapping, *, images: Path, source: str | Path) -> None:
    """Refuses an image whose ``file_name`` is an absolute path (``/data/a.png``, ``C:\\data\\a.png``) or
    holds a ``..`` part: photos are read from the data set's ``images`` folder, a file name relative to
    it (COCO's layout: detectron2's ``load_coco_json`` joins it to its image root; the converters write no
    other). Such a name read a photo outside ``images`` without a word: another data set's photo trained
    on or scored, or one photo two splits' files reach by names that differ; converters.validate called
    such a split ``ok``.

    Args:
        info: the image's entry (its ``file_name`` a non-empty string: :func:`check_ids`).
        images: the folder the photos are read from, for the message.

    Raises:
        UserError: one line naming the ``file_name``, the image and ``source``.
    """
    name = info["file_name"]
    absolute = PurePosixPath(name).is_absolute() or bool(PureWindowsPath(name).root)  # a Windows root too
    climbs = ".." in PureWindowsPath(name).parts  # Windows' parts: split at both separators
    if not (absolute or climbs):
        return
    what = "a path with a '..' part" if climbs else "an absolute path"
    hint = ""
    if not climbs and PurePosixPath(name).is_relative_to(images.absolute()):  # images/'s photo, from the root
        hint = f" (write {str(PurePosixPath(name).relative_to(images.absolute()))!r})"
    raise UserError(
        f"image {info['id']} in {source} has file_name {name!r}, {what}: photos are read from {images}, "
        f"their file_name a path inside it{hint}: {FIX_COCO}"
    )


def check_category(annotation: Mapping, categories: Container, *, where: str) -> None:
    """Refuses an ``annotation`` (``where``: "annotation <id> in <file>") whose ``category_id`` is not
    one of ``categories``, the file's category ids: pycocotools and the scorers failed on it with a
    ``KeyError``, or left it out of every class's AP.

    The message lists the ids numbers first, in order, then any others by their ``repr``: ``sorted`` of
    numbers beside text failed with a ``TypeError``.
    """
    if annotation.get("category_id") not in categories:
        listed = sorted(categories, key=lambda c: (0, c, "") if is_finite_number(c) else (1, 0, repr(c)))
        raise UserError(
            f"{where} has category_id {annotation.get('category_id')!r}, not one of the file's "
            f"categories {listed}"
        )


def check_box(annotation: Mapping, *, where: str) -> list[float]:
    """The ``bbox`` of ``annotation`` (``where``: "annotation <id> in <file>"): an xywh list of 4 finite
    numbers (a short one failed with an ``IndexError``, a string in it with a ``ValueError``).

    Raises:
        UserError: one line naming the annotation.
    """
    box = annotation.get("bbox")
    if not (isinstance(box, list) and len(box) == 4 and all(is_finite_number(v) for v in box)):
        raise UserError(f"{where} has no bbox [x, y, width, height] (4 finite numbers): {FIX_COCO}")
    return box


def check_area(annotation: Mapping, *, where: str) -> None:
    """Refuses an ``annotation``'s ``area`` (``where``: "annotation <id> in <file>") of 0 or less, above
    :data:`MAX_COCO_AREA`, or not a number; one left out passes (taken from the mask: COCOeval is given its
    pixels). COCOeval leaves a ground truth whose area is outside its range out of AP without a word. The
    file may come from another tool, so the way on is the one that fits any: leave ``area`` out.

    Raises:
        UserError: one line naming the annotation.
    """
    if "area" not in annotation:
        return
    area = annotation["area"]
    if not (is_finite_number(area) and 0 < area <= MAX_COCO_AREA):
        raise UserError(
            f"{where} has area {area!r}, not its mask's pixel count (a number above 0, and COCOeval "
            f"scores up to {MAX_COCO_AREA:.0e}): leave it out of the file, and it is taken from the mask"
        )


def check_segmentation(annotation: Mapping, *, where: str) -> None:
    """Refuses an ``annotation`` (``where``: "annotation <id> in <file>") whose ``segmentation`` is not of a
    shape pycocotools reads: an RLE (a dict of ``size`` and ``counts``) or a list of polygons, each a flat
    list of 3 points or more. Another tool's one polygon not in a list, or polygons of ``[x, y]`` pairs, are
    named as such, with the brackets that make them COCO's. Whether the numbers and runs decode is the
    caller's to check, each in its own words.

    Raises:
        UserError: one line naming the annotation.
    """
    segmentation = annotation.get("segmentation")
    if is_segmentation([segmentation]):  # another tool's polygon, not in a list
        raise UserError(
            f"{where} has a segmentation of one flat list of numbers: COCO's polygons are a list of "
            "them, [[x1, y1, x2, y2, ...]]: put it in another pair of brackets"
        )
    if _is_point_pairs(segmentation):
        raise UserError(
            f"{where} has polygons of [x, y] pairs: COCO's polygons are flat lists of numbers, "
            "[[x1, y1, x2, y2, ...]]: write each one's pairs one after another"
        )
    if not is_segmentation(segmentation):
        raise UserError(
            f"{where} has no segmentation pycocotools can decode (polygons of 3 points or more, or an "
            f"RLE with size and counts): {FIX_COCO}"
        )


def check_not_crowd(annotation: Mapping, *, where: str) -> None:
    """Refuses a crowd ``annotation`` (``iscrowd`` truthy, as pycocotools reads it; ``where``: "annotation
    <id> in <file>"): COCOeval scores it as a region to ignore, while the segmentation commands, which take
    every annotation for one defect instance and have no ignore regions, prompted, trained on and scored it.

    Raises:
        UserError: one line naming the annotation.
    """
    if annotation.get("iscrowd"):
        raise UserError(
            f"{where} has iscrowd {annotation['iscrowd']!r}: a crowd region, which COCO scores as one to "
            "ignore and this package cannot (it takes every annotation for one defect): set iscrowd 0 "
            "if it outlines one defect, or remove it"
        )


def check_rle_size(segmentation: object, info: Mapping, *, where: str) -> None:
    """Refuses an RLE ``segmentation`` (``where``: "annotation <id> in <file>") whose ``size`` is not its
    image's (``info``) ``[height, width]``: pycocotools decodes an RLE at its own size, so its mask did not
    fit its photo (segmentation's commands: ``could not broadcast``; converters.validate: an area mismatch and
    a self-AP below 1.0, or nothing at all without an ``area``). A polygon passes.

    Raises:
        UserError: one line naming the annotation, both sizes and the image.
    """
    height, width = int(info["height"]), int(info["width"])
    if isinstance(segmentation, dict) and segmentation["size"] != [height, width]:
        raise UserError(
            f"{where} is an RLE mask of size {segmentation['size']} (height, width), but its "
            f"image {info['file_name']} is {[height, width]}: {FIX_COCO}"
        )


def check_rle_covers(runs: Sequence[float], size: Sequence[int], *, where: str) -> None:
    """Refuses an RLE (``where``: "annotation <id> in <file>") whose ``runs`` do not cover its ``size``
    (height, width): pycocotools decodes runs that fall short without a word into a mask of whatever they
    cover.

    Raises:
        UserError: one line naming the annotation and both pixel counts.
    """
    height, width = size
    if sum(runs) != height * width:
        raise UserError(
            f"{where} is an RLE mask whose runs cover {sum(runs)} pixels, not the {height * width} "
            f"of its size {height}x{width}: {FIX_COCO}"
        )


def is_segmentation(segmentation: object) -> bool:
    """Whether ``segmentation`` has a shape pycocotools reads: a dict of ``size`` and ``counts`` (an RLE), or
    a list of polygons, each a flat list of 3 points or more (numbers: ``True`` too, NaN too)."""
    if isinstance(segmentation, dict):
        return {"size", "counts"} <= segmentation.keys()
    return (
        isinstance(segmentation, list)
        and len(segmentation) > 0
        and all(
            isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
            and all(isinstance(v, int | float) for v in polygon)
            for polygon in segmentation
        )
    )  # fmt: skip


def _is_point_pairs(segmentation: object) -> bool:
    """Whether ``segmentation`` holds polygons as lists of ``[x, y]`` pairs (another tool's), not COCO's."""
    return (
        isinstance(segmentation, list)
        and len(segmentation) > 0
        and all(
            isinstance(polygon, list) and len(polygon) > 0
            and all(isinstance(point, list) and len(point) == 2 for point in polygon)
            for polygon in segmentation
        )
    )  # fmt: skip


def check_box_in_image(
    box: Sequence[float],
    image_size: tuple[float, float],
    *,
    where: str,
    hint: str = "",
    no_size_fix: str = NO_SIZE_FIX,
) -> None:
    """Refuses an xywh ``box`` (:func:`check_box`'s) of no width or height, or reaching more than a pixel
    outside its ``(width, height)`` image; ``hint`` ends the latter's parenthesis (what else the box may
    read as), ``no_size_fix`` ends the former's line (the next step, after ``; ``; by default
    :data:`NO_SIZE_FIX`, the words of every package)."""
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise UserError(
            f"{where} has a bbox {box} of no width or height: a bbox is [x, y, width, height]; {no_size_fix}"
        )
    width, height = image_size
    if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
        raise UserError(
            f"{where} has a bbox {box} reaching outside its {width}x{height} px image (a bbox is "
            f"[x, y, width, height]{hint}): {FIX_COCO}"
        )
