"""Checks of a COCO instances file for what the converters never write: a file edited by hand, made by
hand or written by another tool.

:func:`segmentation.data.load_split` runs them on every split it reads, before any model: each refusal
is one line naming the file and the entry, and says what to do whoever wrote the file
(:data:`FIX_COCO`). pycocotools and the scorers otherwise dropped such data without a word, or failed
deep inside training or scoring with a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from common.coco import (
    FIX_COCO,
    check_area,
    check_box,
    check_box_in_image,
    check_category,
    check_image_size,
    check_keys,
    check_not_crowd,
    check_rle_covers,
    check_rle_size,
    check_segmentation,
    check_unique_ids,
)
from common.coco import check_file_name as check_file_name  # segmentation.data's check, now common
from common.coco import is_finite_number as _is_number
from common.errors import UserError

#: The class key of the scores of every class together (``segmentation.metrics``): no category's name.
OVERALL = "all"


def check_ids(dataset: dict, *, source: Path) -> None:
    """Refuses ids a hand-edited COCO file may get wrong and the converters never write: an image,
    annotation or category id given twice or missing, or not a whole number (as COCO's ids are), an
    image without a ``file_name``, or an annotation whose ``image_id`` is no image of the file
    (:func:`common.coco.check_keys`, :func:`common.coco.check_unique_ids`).

    pycocotools indexes them by id and annotations by ``image_id``, so each dropped data silently: the
    second image of an id, the first annotation of an id (the second read twice in its place), an
    annotation of no image, from training and from the scores, and the first category of an id (its
    instances scored under the second's name). A missing key failed as ``cannot load ...: 'id'``, a
    missing ``file_name`` and a mix of text and numbers as ids with tracebacks.

    Two categories of one name (another tool's "scratch" under two supercategories): the per-class
    scores are keyed by name, so their images were counted together under it, a class row of more
    images than the split's "all" row, without a word.
    """
    check_keys(dataset, source=source, category_check=lambda category: _check_name(category, source=source))
    names: dict[str, object] = {}  # category name (its repr) -> its first id
    for category in dataset.get("categories", []):
        name, number = category["name"], category["id"]
        if (first := names.setdefault(repr(name), number)) != number:
            raise UserError(
                f"category name {name!r} is given to ids {first} and {number} in {source}: the scores list "
                "classes by name, so both would be counted as one: rename one of them"
            )
    check_unique_ids(dataset, source=source)


def _check_name(category: Mapping, *, source: Path) -> None:
    """Refuses a category whose name is not text, is blank, or is :data:`OVERALL`: a number beside text
    stopped the scores' table with a ``TypeError`` traceback, after the models ran; a blank one was a table
    row without a name; a class 'all' was counted into the row of every class together."""
    name = category["name"]
    if not isinstance(name, str):
        what = "not text"
    elif not name.strip():
        what = "blank"
    elif name == OVERALL:
        what = "the name the scores give every class together"
    else:
        return
    raise UserError(
        f"category {category['id']} in {source} has name {name!r}, {what}: name it otherwise (text, as "
        "COCO's category names are; a data set the converters wrote: rename its defect folder and convert it "
        "again)"
    )


def check_entries(info: dict, annotations: Sequence[dict], categories: dict, *, source: Path) -> None:
    """Refuses what a hand-edited COCO file may hold and the converters never write: an image without a
    width and height, an annotation of a category the file does not list, without a segmentation
    pycocotools can decode, or without an xywh ``bbox``. Each failed deep inside scoring or training
    (``IndexError``, ``KeyError``), after the models had run.

    An ``area`` of 0 or less, above :data:`common.coco.MAX_COCO_AREA`, or not a number, refused in
    converters.validate's words too (:func:`common.coco.check_area`): COCOeval leaves a ground truth whose
    area is outside its range out of mask AP, so every instance of a negative area was dropped and
    the split's AP read 0.0 without a word (and a size bucket of ``--folds`` took it for small). Such a
    file may come from another tool, so the way on is the one that fits any: leave ``area`` out.

    A crowd (``iscrowd`` 1) too: COCOeval ignores it for mask AP, while it was prompted, trained on and
    counted in IoU, Dice and instance IoU as a defect. Every annotation here is one defect instance, and
    this package has no ignore regions to leave one out of the pixel scores and the training loss.
    """
    check_image_size(info, source=source)  # Infinity too
    for annotation in annotations:
        where = f"annotation {annotation.get('id')} in {source}"
        check_category(annotation, categories, where=where)
        check_segmentation(annotation, where=where)
        check_not_crowd(annotation, where=where)
        check_box(annotation, where=where)
        check_area(annotation, where=where)  # in converters.validate's words too


def check_masks(annotations: Sequence[dict], info: dict, *, source: Path) -> None:
    """Refuses a mask a hand-edited COCO file may hold: an RLE whose ``size`` is not its image's
    ``[height, width]`` in the file, an RLE whose runs do not decode or cover another number of pixels,
    a mask without a single pixel inside the image (a polygon of one point repeated, or outside it),
    and a ``bbox`` of no width or height or one that does not cover its mask (a box typed by hand, a
    mask drawn again and its box not).

    pycocotools decodes an RLE at its own size, so another size failed deep inside training or scoring
    (``could not broadcast``); a corrupt string stopped there with a bare ``ValueError``, and runs
    that fall short decoded without a word into a mask of whatever they covered. An empty mask was
    trained and scored as a defect under its ``bbox`` (the decoder taught to answer the box with
    nothing, an instance IoU of 0); the ``bbox`` is SAM's prompt in training and scoring, so a box
    beside its mask taught and scored the wrong answer to it.

    Every annotation's ``area`` is its mask's pixel count here, whatever the file gives (COCO's
    definition; a file without one, or another tool's polygon or box area, holds another number):
    ``--folds`` sorts instances into size buckets by it (:func:`segmentation.crossval.bucket_ious`),
    and stopped with ``KeyError: 'area'`` after every round had trained on a file without areas, or put
    an instance of a wrong positive area into the wrong bucket without a word. The file itself is left
    as it is: COCOeval reads its ``area`` only against the range ``all`` (0 to 1e10 px) for the mask AP
    reported, so a positive area changes no AP (:func:`check_entries` refuses the rest).
    """
    from pycocotools import mask as mask_utils

    height, width = int(info["height"]), int(info["width"])
    for annotation in annotations:
        where = f"annotation {annotation.get('id')} in {source}"
        segmentation = annotation["segmentation"]
        check_rle_size(segmentation, info, where=where)
        if isinstance(segmentation, dict):
            runs = _rle_runs(segmentation["counts"], where=where)
            check_rle_covers(runs, (height, width), where=where)
            rle = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
        else:
            _check_polygons(segmentation, (width, height), where=where)
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        if mask_utils.area(rle) == 0:
            raise UserError(
                f"{where} has an empty mask (no pixel of its image {info['file_name']} inside it): delete "
                "the annotation or draw its outline again"
            )
        annotation["area"] = float(mask_utils.area(rle))  # COCO's definition, for the size buckets
        _check_box(annotation["bbox"], mask_utils.toBbox(rle).tolist(), (width, height), where=where)


def _check_polygons(polygons: list[list[float]], image_size: tuple[int, int], *, where: str) -> None:
    """Refuses a polygon point that is no finite number or lies farther outside its ``(width, height)``
    image than the image is wide or tall.

    pycocotools rasterises a polygon by walking its outline at 5 steps a pixel, points outside the
    image included: a ``NaN`` (which Python's ``json`` reads) or a coordinate of 1e9 took every byte
    of memory, and the command was killed without a line.
    """
    width, height = image_size
    for polygon in polygons:
        points = list(zip(polygon[0::2], polygon[1::2], strict=True))
        if not all(_is_number(x) and _is_number(y) for x, y in points):
            raise UserError(f"{where} has a polygon point that is not a finite number: {FIX_COCO}")
        far = [(x, y) for x, y in points if not (-width <= x <= 2 * width and -height <= y <= 2 * height)]
        if far:
            raise UserError(
                f"{where} has a polygon point {list(far[0])} far outside its {width}x{height} px image: "
                f"{FIX_COCO}"
            )


def _check_box(box: list[float], mask_box: list[float], image_size: tuple[int, int], *, where: str) -> None:
    """Refuses a COCO ``bbox`` (x, y, width, height) of no size, reaching outside its ``(width, height)``
    image, not covering ``mask_box`` (the mask's tight box, same format), or that is the mask's
    ``[x0, y0, x1, y1]`` corners, each to within a pixel (polygons are rasterised a pixel either way).

    The box is SAM's prompt: one typed past the image's edge (it still covers its mask) prompted, taught
    and scored a box around far more than the defect (hazelnut_toy's test IoU 0.818 -> 0.055, no word, its
    boxes each 600 px wider on every side). It is refused, not clipped to the image: the converters never
    write one, so it comes from a file made by hand or by another tool, most often one that wrote
    [x0, y0, x1, y1] corners where COCO has [x, y, width, height] (clipped, such boxes trained and scored as
    far larger prompts without a word). Such corners inside the image covered the mask as well, a box
    ``x0`` and ``y0`` px too wide and tall, and were taken without a word. The message fits a file of
    either origin: what the box reads as, and the box as COCO writes it where the corners reading fits.
    """
    corners = _corners_box(box)
    hint = ""
    if _fits(corners, mask_box):
        hint = f"; read as [x0, y0, x1, y1] corners it is [x, y, width, height] {_rounded(corners)}"
    check_box_in_image(box, image_size, where=where, hint=hint)  # of no size first
    if not _covers(box, mask_box):
        raise UserError(
            f"{where} has a bbox {box} that does not cover its mask, whose box is {_rounded(mask_box)} "
            f"(a bbox is [x, y, width, height]): {FIX_COCO}"
        )
    if hint and not _fits(box, mask_box):
        raise UserError(
            f"{where} has a bbox {box} that is its mask's [x0, y0, x1, y1] corners (a bbox is [x, y, width, "
            f"height]{hint}): {FIX_COCO}"
        )


def _covers(box: Sequence[float], mask_box: Sequence[float]) -> bool:
    """Whether xywh ``box`` covers xywh ``mask_box`` to within a pixel."""
    x, y, w, h = box
    mx, my, mw, mh = mask_box
    return not (x > mx + 1 or y > my + 1 or x + w < mx + mw - 1 or y + h < my + mh - 1)


def _fits(box: Sequence[float], mask_box: Sequence[float]) -> bool:
    """Whether xywh ``box`` is xywh ``mask_box`` to within a pixel each way."""
    return all(abs(a - b) <= 1 for a, b in zip(box, mask_box, strict=True))


def _corners_box(box: Sequence[float]) -> list[float]:
    """``box`` read as ``[x0, y0, x1, y1]`` corners, as xywh."""
    x0, y0, x1, y1 = box
    return [x0, y0, x1 - x0, y1 - y0]


def _rounded(box: Sequence[float]) -> list[float]:
    return [round(v, 2) for v in box]


def _rle_runs(counts: object, *, where: str) -> list[int]:
    """The run lengths of an RLE's ``counts`` (:func:`converters.masks.rle_counts`), checked."""
    from converters.masks import rle_counts

    try:
        runs = rle_counts(counts) if isinstance(counts, str | list) else None
    except ValueError as error:
        raise UserError(f"{where} is an RLE mask whose counts do not decode ({error}): {FIX_COCO}") from None
    if runs is None or not all(
        isinstance(run, int) and not isinstance(run, bool) and run >= 0 for run in runs
    ):
        raise UserError(
            f"{where} is an RLE mask whose counts are neither COCO's string nor a list of run lengths "
            f"(whole numbers >= 0): {FIX_COCO}"
        )
    return runs
