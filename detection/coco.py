"""The converter's COCO ground truth, and box mAP of detections by pycocotools' COCOeval.

:func:`coco_map` is the cross-check of ultralytics' own mAP in
:mod:`detection.evaluate`: the same boxes, scored by the reference evaluator.
The two mAP50 agree closely but not exactly: ultralytics integrates the
interpolated precision-recall curve over 101 recall points with the trapezoid
rule, COCO averages the precision envelope at 101 recall points; and each
matches detections to ground truth in its own order (ultralytics by IoU, COCO
greedily by score). Perfect detections score 1.0 in COCOeval but 0.995 in
ultralytics, whose curve drops to precision 0 at recall 1 (a sentinel point).
COCO keeps the top ``max_det`` detections per image, set to ultralytics' 300
(COCO's own default is 100).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from common.coco import (
    check_box,
    check_box_in_image,
    check_category,
    check_ids,
    check_image_size,
    unknown_image,
)
from common.errors import UserError
from common.io import read_coco_instances
from converters.cocoeval import precision_table
from detection.detections import ImageDetections


def default_coco_file(data_yaml: Path, split: str) -> Path:
    """The converter's ``annotations/instances_<split>.json`` beside ``data.yaml``."""
    return data_yaml.parent / "annotations" / f"instances_{split}.json"


def read_coco(path: Path) -> dict:
    """A COCO instances file (``images``, ``annotations``, ``categories``); one-line errors naming it."""
    return read_coco_instances(path)


def check_coco_matches(
    coco: Mapping,
    path: Path,
    *,
    names: Sequence[str],
    split: str,
    images: Iterable[str],
    what: str = "--coco",
) -> None:
    """Refuses COCO ground truth of other classes or other images than the split scored against it.

    Detections are matched to the file by category id (class id + 1, the converter's ids) and by
    image file name: a file of another data set's classes scored them against the wrong names (or
    stopped with a ``KeyError`` after the validator had run), and one listing images the split lacks
    counted each of them as an image without a box. Its ids are checked first
    (:func:`common.coco.check_ids`): a category without an ``id`` or ``name``, an id not a number or an
    image without a ``file_name`` stopped here with a ``KeyError`` or ``ValueError`` traceback.

    Args:
        coco: the COCO file read from ``path``.
        names: the data set's class names in id order.
        split: the scored split's name; ``images`` its image file names (basenames).
        what: how the message names the file: the option that gave it, or where it was found.

    Raises:
        UserError: one line naming ``path`` and the first differences, or the first entry
            :func:`check_coco_entries` refuses.
    """
    check_ids(coco, source=f"{what} {path}")
    categories = sorted((int(c["id"]), str(c["name"])) for c in coco["categories"])
    if categories != [(i + 1, name) for i, name in enumerate(names)]:
        listed = [name for _, name in categories]
        raise UserError(
            f"{what} {path}: its categories {listed} (by id) are not the data set's classes {list(names)} "
            "(category id = class id + 1)"
        )
    listed, wanted = {Path(image["file_name"]).name for image in coco["images"]}, set(images)
    if listed != wanted:
        missing, other = sorted(wanted - listed), sorted(listed - wanted)
        raise UserError(
            f"{what} {path} does not list the '{split}' split's images: {_some(missing)} of them missing, "
            f"{_some(other)} others listed"
        )
    _check_annotations(coco, path, what=what)


def check_coco_entries(coco: Mapping, path: Path, *, what: str = "--coco") -> None:
    """Refuses an id of the COCO file ``coco`` (read from ``path``, named as ``what``) that
    :func:`common.coco.check_ids` refuses, or an annotation that the converters never write: one of no
    image of the file, of a ``category_id`` the file does not list, or whose ``bbox`` is not 4 finite
    numbers, has no width or height, or reaches outside its image (which then needs a width and height),
    in ``segmentation``'s words (:mod:`common.coco`).

    A short bbox stopped the image-level figures with an ``IndexError``, a string in one with a
    ``ValueError`` and an unknown category with a ``KeyError``, each after the validator had run; a box
    outside its image was scored as it was, without a word.

    Raises:
        UserError: one line naming the annotation (or its image or entry) and ``path``.
    """
    check_ids(coco, source=f"{what} {path}")
    _check_annotations(coco, path, what=what)


def _check_annotations(coco: Mapping, path: Path, *, what: str) -> None:
    """:func:`check_coco_entries` of a file whose ids :func:`common.coco.check_ids` took."""
    source = f"{what} {path}"
    categories = [category["id"] for category in coco["categories"]]
    # check_ids took whole-number ids alone (an image_id 1.0 is refused: common.coco.check_references)
    images = {image["id"]: image for image in coco["images"]}
    for annotation in coco["annotations"]:
        where = f"annotation {annotation.get('id')} in {source}"
        if (image := images.get(annotation["image_id"])) is None:
            raise unknown_image(annotation, source=source)
        check_category(annotation, categories, where=where)
        box = check_box(annotation, where=where)
        # a box of no width or height ends with common.coco.NO_SIZE_FIX, as in every package
        check_box_in_image(box, check_image_size(image, source=source), where=where)


def _some(files: Sequence[str]) -> str:
    """``0``, or a count and the first three file names: ``2 (a.png, b.png)``."""
    if not files:
        return "0"
    more = ", ..." if len(files) > 3 else ""
    return f"{len(files)} ({', '.join(files[:3])}{more})"


def coco_detections(coco: Mapping, detections: Mapping[str, ImageDetections]) -> list[dict]:
    """Detections as COCO results (``bbox`` xywh, ``category_id`` = class id + 1, the converter's ids)."""
    ids = {Path(image["file_name"]).name: image["id"] for image in coco["images"]}
    results = []
    for file_name, found in detections.items():
        if file_name not in ids:
            raise UserError(f"detections for {file_name}, which the COCO file does not list")
        for (x1, y1, x2, y2), score, cls in zip(found.boxes, found.scores, found.classes, strict=True):
            results.append(
                {
                    "image_id": ids[file_name],
                    "category_id": int(cls) + 1,
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                    "score": float(score),
                }
            )
    return results


def coco_map(coco: Mapping, detections: Mapping[str, ImageDetections], *, max_det: int = 300) -> dict:
    """pycocotools' box mAP50 and mAP50-95 of ``detections`` against the ground truth ``coco``.

    Read from COCOeval's accumulated precision table (:mod:`converters.cocoeval`) at
    ``max_det``, the numbers ``summarize()`` prints (which hard-codes 100 detections
    for its first line).

    Returns:
        ``{"mAP50", "mAP50-95", "n_detections", "per_class": {name: {"AP50", "AP50-95"}}}``; both
        mAP NaN on a split without a true box, where COCOeval defines none (they read 0.000 there,
        as if every box were wrong), as the inspection cascade's box and mask AP.
    """
    results = coco_detections(coco, detections)
    if not coco["annotations"]:
        nan = float("nan")
        return {"mAP50": nan, "mAP50-95": nan, "n_detections": len(results), "per_class": {}}
    if not results:
        return {"mAP50": 0.0, "mAP50-95": 0.0, "n_detections": 0, "per_class": {}}
    table = precision_table(coco, results, iou_type="bbox", max_det=max_det)
    summary = table.summary()
    return {
        "mAP50": summary["AP50"],
        "mAP50-95": summary["AP"],
        "n_detections": len(results),
        "per_class": {
            name: {"AP50": scores["AP50"], "AP50-95": scores["AP"]}
            for name, scores in summary["per_class"].items()
        },
    }
