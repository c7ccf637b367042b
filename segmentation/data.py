"""Segmentation samples from a converted data set (``annotations/instances_{split}.json``).

The converters write one COCO file per split of the shared ``splits.json``;
SAM fine-tuning and evaluation read those, so the detector and the segmenter
are trained and tested on the same images. A sample is one image with its
ground-truth instances (one per connected defect region); masks are decoded
from the annotations on demand, never held for a whole split.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import numpy as np

from common.errors import UserError
from common.images import displayed_size
from common.io import read_coco_instances
from converters.splits import SPLITS


@dataclass(frozen=True)
class SegmentationImage:
    """One image of a split and its ground-truth instances.

    Attributes:
        image_id: COCO image id (unique within the split).
        path: image file (``<data>/images/<file_name>``).
        width, height: image size in pixels.
        annotations: the image's COCO annotations (``segmentation`` polygons or RLE).
    """

    image_id: int
    path: Path
    width: int
    height: int
    annotations: tuple[dict, ...] = field(default_factory=tuple)

    @property
    def is_background(self) -> bool:
        return not self.annotations

    def instance_masks(self) -> np.ndarray:
        """``(N, H, W)`` bool, one mask per annotation, in annotation order."""
        from converters.masks import segmentation_to_mask  # pycocotools, only when masks are wanted

        masks = np.zeros((len(self.annotations), self.height, self.width), dtype=bool)
        for index, annotation in enumerate(self.annotations):
            masks[index] = segmentation_to_mask(annotation["segmentation"], self.height, self.width)
        return masks

    def union_mask(self) -> np.ndarray:
        """``(H, W)`` bool: every defect pixel of the image."""
        return self.instance_masks().any(axis=0)

    def boxes(self) -> np.ndarray:
        """``(N, 4)`` float xyxy pixel edges, from the COCO ``bbox`` (x, y, w, h)."""
        boxes = np.array([a["bbox"] for a in self.annotations], dtype=float).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return boxes


@dataclass(frozen=True)
class SegmentationSplit:
    """A split's images, the category names by COCO id, and the COCO file they came from."""

    name: str
    images: list[SegmentationImage]
    categories: dict[int, str]
    annotation_file: Path

    @property
    def n_instances(self) -> int:
        return sum(len(image.annotations) for image in self.images)


def annotation_file(data: str | Path, split: str) -> Path:
    """``<data>/annotations/instances_<split>.json``, checked to exist."""
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}' (expected one of: {', '.join(SPLITS)})")
    path = Path(data) / "annotations" / f"instances_{split}.json"
    if not path.is_file():
        check_data_folder(data)
        present = annotated_splits(data)
        if present and not (Path(data) / "splits.json").is_file():  # COCO files made by hand or another tool
            raise UserError(
                f"no COCO annotations at {path}: {path.parent} holds those of {' and '.join(present)} only "
                f"(instances_<split>.json, split one of {', '.join(SPLITS)})"
            )
        raise UserError(f"no COCO annotations at {path}: {reconvert_hint(Path(data))}")
    return path


def annotated_splits(data: str | Path) -> list[str]:
    """The splits that ``<data>/annotations/instances_<split>.json`` exists for, in :data:`SPLITS` order."""
    return [split for split in SPLITS if (Path(data) / "annotations" / f"instances_{split}.json").is_file()]


def reconvert_hint(data: Path) -> str:
    """How to add the COCO files to the converted data set ``data`` without moving an image between splits.

    The command it gave, ``--out DATA --coco --overwrite`` alone, drew the split again at the default
    ``--seed`` (and boxes without ``--task segment``): a data set converted with ``--seed 3`` came back
    with another test split, holding photos a model had trained on. ``--splits`` keeps the split;
    the other flags the folder does not record.
    """
    splits = data / "splits.json"
    command = f"python -m converters.mvtec2yolo --root ... --out {shlex.quote(str(data))} --coco --overwrite"
    if not splits.is_file():
        return f"convert with `{command}` (YOLO and COCO in one folder)"
    return (
        f"convert it again, its split kept: `{command} --splits {shlex.quote(str(splits))}` with the flags "
        "that made it but --seed, --split, --background-ratio and --split-from-layout (--task segment, "
        "--names-template, ...: the folder does not record them)"
    )


def check_data_folder(data: str | Path, *, given: str | None = None) -> None:
    """Refuses a ``--data`` that is no converted data set: a file, nothing, a folder inside a data set,
    a run folder, or a raw MVTec category tree.

    Each would otherwise be told to convert into that very path with ``--overwrite`` (a raw tree
    would be replaced by its own conversion).

    Args:
        given: how the user named it, as the message begins (``data=PATH``); ``--data PATH`` by default.

    Raises:
        UserError: one line naming ``data`` and what to pass instead.
    """
    data = Path(data)
    given = given or f"--data {data}"
    enclosing = enclosing_data_set(data)
    if data.is_file():
        raise UserError(f"{given} is a file: pass the data set folder {enclosing or data.parent}")
    if not data.exists():
        raise UserError(f"{given} does not exist")
    if enclosing is not None and not (data / "annotations").is_dir():
        raise UserError(f"{given} is a folder inside the data set {enclosing}: pass {enclosing}")
    if (data / "args.yaml").is_file() and not (data / "annotations").is_dir():
        raise UserError(
            f"{given} is a training run's folder (args.yaml), not a data set: pass the data it names"
        )
    if is_mvtec_tree(data):
        raise UserError(
            f"{given} is a raw MVTec tree, not a converted data set: convert it to another folder "
            f"with `python -m converters.mvtec2yolo --root {data} --out OTHER_FOLDER --coco` and pass that"
        )


def enclosing_data_set(path: Path) -> Path | None:
    """The converted data set that ``path`` lies in, up to three levels up, or None.

    A data set's ``images/`` looks like a raw MVTec tree and its ``annotations/`` like a data set without
    annotations: both were told to convert into themselves, and ``annotations/instances_train.json`` to
    pass ``annotations/``. A data set is a folder with ``annotations/`` beside ``data.yaml`` or
    ``splits.json``.
    """
    for folder in list(path.parents)[:3]:
        marked = (folder / "data.yaml").is_file() or (folder / "splits.json").is_file()
        if marked and (folder / "annotations").is_dir():
            return folder
    return None


def is_mvtec_tree(folder: Path) -> bool:
    """Whether ``folder`` looks like an MVTec category or a folder of them (and is no converted data set).

    A category holds ``train/`` and ``test/`` image folders, or ``ground_truth/``; a converted data set's
    ``images/`` holds split folders too, so a folder with a ``data.yaml`` or ``splits.json`` is none, nor is
    one with ``annotations/`` (a data set whose COCO files were made by hand or by another tool has neither
    mark, and was told to convert itself as a raw tree).
    """
    if (
        any((folder / name).is_file() for name in ("data.yaml", "splits.json"))
        or (folder / "annotations").is_dir()
    ):
        return False
    return _is_category(folder) or any(_is_category(child) for child in folder.iterdir() if child.is_dir())


def _is_category(folder: Path) -> bool:
    return (folder / "ground_truth").is_dir() or all((folder / name).is_dir() for name in ("train", "test"))


def load_split(data: str | Path, split: str) -> SegmentationSplit:
    """Reads one split of a data set written by the converters (``mvtec2coco`` or ``mvtec2yolo --coco``).

    Raises:
        UserError: no annotations for the split, unreadable JSON, or a missing image file.
    """
    from pycocotools.coco import COCO

    path = annotation_file(data, split)
    dataset = read_coco_instances(path)
    _check_ids(dataset, source=path)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        try:
            coco.createIndex()
        except (ValueError, KeyError, TypeError) as error:
            raise UserError(f"cannot load COCO file {path}: {error}") from None
    categories = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    images = []
    listed: dict[str, int] = {}  # file name -> the first image id listing it
    for image_id in sorted(coco.getImgIds()):
        info = coco.imgs[image_id]
        if (first := listed.setdefault(str(info.get("file_name")), image_id)) != image_id:
            # a hand-edited file: scored twice, and both got one output name ('rename one of them')
            raise UserError(
                f"{path} lists {info.get('file_name')} twice (images {first} and {image_id}): {FIX_COCO}"
            )
        image_path = Path(data) / "images" / info["file_name"]
        if not image_path.exists():
            if image_path.is_symlink():  # converted with --link symlink (the default), its photo since moved
                raise UserError(
                    f"image listed in {path} is a broken link: {image_path} points to "
                    f"{os.readlink(image_path)}, which does not exist: put the photos back there, or "
                    "convert the data set again"
                )
            raise UserError(
                f"image listed in {path} is missing: {image_path}{_missing_hint(data, info['file_name'])}"
            )
        annotations = tuple(coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=None)))
        _check_entries(info, annotations, categories, source=path)
        _check_size(image_path, info, source=path)
        _check_masks(annotations, info, source=path)
        images.append(
            SegmentationImage(image_id, image_path, int(info["width"]), int(info["height"]), annotations)
        )
    return SegmentationSplit(split, images, categories, path)


#: What to do about a COCO file refused for what the converters never write, whoever wrote it: each
#: message said "convert the data set again", which a file made by hand or by another tool cannot be.
FIX_COCO = (
    "correct it in the file, or in the tool that wrote it (a data set the converters wrote and since "
    "edited: convert it again)"
)

#: The class key of the scores of every class together (``segmentation.metrics``): no category's name.
OVERALL = "all"

#: COCOeval's largest ground-truth area (its area range ``all``, 1e5^2 px): one above it is left out of AP.
MAX_COCO_AREA = 1e5**2


def _missing_hint(data: str | Path, file_name: str) -> str:
    """What to say of a missing image that another tool's layout explains, else nothing: a ``file_name`` that
    is a Windows path (``test\\a.png``) naming a photo ``/`` finds, or photos beside ``annotations/``, not in
    ``images/`` (the converters' layout, which every command reads)."""
    posix = PureWindowsPath(file_name).as_posix() if "\\" in file_name else file_name
    if posix != file_name and (Path(data) / "images" / posix).is_file():
        return f" (its file_name {file_name!r} is a Windows path: write {posix!r}, as COCO's file names are)"
    if (Path(data) / posix).is_file():
        return (
            f" (it is at {Path(data) / posix}: the photos are read from {Path(data) / 'images'}, "
            "file_name relative to it: move them there)"
        )
    return ""


#: Each part of a COCO file: what one entry is called, and the keys every entry needs.
_REQUIRED = {
    "images": ("image", ("id", "file_name")),
    "annotations": ("annotation", ("id", "image_id")),
    "categories": ("category", ("id", "name")),
}


def _check_ids(dataset: dict, *, source: Path) -> None:
    """Refuses ids a hand-edited COCO file may get wrong and the converters never write: an image,
    annotation or category id given twice or missing, or not a whole number (as COCO's ids are), an
    image without a ``file_name``, or an annotation whose ``image_id`` is no image of the file.

    pycocotools indexes them by id and annotations by ``image_id``, so each dropped data silently: the
    second image of an id, the first annotation of an id (the second read twice in its place), an
    annotation of no image, from training and from the scores, and the first category of an id (its
    instances scored under the second's name). A missing key failed as ``cannot load ...: 'id'``, a
    missing ``file_name`` and a mix of text and numbers as ids with tracebacks.

    Two categories of one name (another tool's "scratch" under two supercategories): the per-class
    scores are keyed by name, so their images were counted together under it, a class row of more
    images than the split's "all" row, without a word.
    """
    for part in _REQUIRED:
        seen: set[int] = set()
        for index, entry in enumerate(dataset[part]):
            _check_keys(part, index, entry, seen, source=source)
            seen.add(entry["id"])
    names: dict[str, object] = {}  # category name (its repr) -> its first id
    for category in dataset.get("categories", []):
        name, number = category["name"], category["id"]
        if (first := names.setdefault(repr(name), number)) != number:
            raise UserError(
                f"category name {name!r} is given to ids {first} and {number} in {source}: the scores list "
                "classes by name, so both would be counted as one: rename one of them"
            )
    images: dict[object, str] = {}
    for image in dataset.get("images", []):
        if image["id"] in images:
            raise UserError(
                f"image id {image['id']!r} is given twice in {source} ({images[image['id']]} and "
                f"{image.get('file_name')}): {FIX_COCO}"
            )
        images[image["id"]] = image.get("file_name")
    annotations: set[object] = set()
    for annotation in dataset.get("annotations", []):
        if annotation["id"] in annotations:
            raise UserError(f"annotation id {annotation['id']!r} is given twice in {source}: {FIX_COCO}")
        annotations.add(annotation["id"])
        if annotation["image_id"] not in images:
            raise UserError(
                f"annotation {annotation['id']!r} in {source} has image_id {annotation['image_id']!r}, "
                f"which no image of the file has: {FIX_COCO}"
            )


def _check_keys(part: str, index: int, entry: dict, seen: set[int], *, source: Path) -> None:
    """Refuses entry ``index`` of a COCO file's ``part`` without its :data:`_REQUIRED` keys, with an id
    that is no whole number, or a category whose id is in ``seen`` (the part's earlier ids)."""
    kind, keys = _REQUIRED[part]
    if missing := [key for key in keys if key not in entry]:
        raise UserError(f"entry {index + 1} of '{part}' in {source} has no '{missing[0]}': {FIX_COCO}")
    if not _is_id(entry["id"]):
        raise UserError(
            f"{kind} id {entry['id']!r} in {source} is not a whole number, as COCO's ids are: {FIX_COCO}"
        )
    if part == "images" and not isinstance(entry["file_name"], str):
        raise UserError(
            f"image {entry['id']} in {source} has file_name {entry['file_name']!r}, not a path: {FIX_COCO}"
        )
    if part == "categories" and (not isinstance(entry["name"], str) or entry["name"] == OVERALL):
        # a number beside text stopped the scores' table with a TypeError traceback, after the models ran;
        # a class 'all' was counted into the row of every class together
        what = "the name the scores give every class together" if entry["name"] == OVERALL else "not text"
        raise UserError(
            f"category {entry['id']} in {source} has name {entry['name']!r}, {what}: name it otherwise "
            "(text, as COCO's category names are; a data set the converters wrote: rename its defect folder "
            "and convert it again)"
        )
    if part == "categories" and entry["id"] in seen:
        raise UserError(
            f"category id {entry['id']} is given twice in {source} ({entry['name']!r} and another): "
            f"{FIX_COCO}"
        )


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_size(image_path: Path, info: dict, *, source: Path) -> None:
    """Refuses a photo whose size (its header's, as OpenCV turns it) is not its COCO entry's.

    :func:`check_image_sizes` compares the embedded sizes, which every command has only once the whole
    split was through SAM's encoder: minutes of work before the one-line error on a CPU.
    """
    width, height = displayed_size(image_path)
    if (width, height) != (int(info["width"]), int(info["height"])):
        raise UserError(
            f"{image_path} is {width}x{height} px, but {source} says "
            f"{int(info['width'])}x{int(info['height'])}: {FIX_COCO}"
        )


def _check_entries(info: dict, annotations: Sequence[dict], categories: dict, *, source: Path) -> None:
    """Refuses what a hand-edited COCO file may hold and the converters never write: an image without a
    width and height, an annotation of a category the file does not list, without a segmentation
    pycocotools can decode, or without an xywh ``bbox``. Each failed deep inside scoring or training
    (``IndexError``, ``KeyError``), after the models had run.

    An ``area`` of 0 or less, above :data:`MAX_COCO_AREA`, or not a number: COCOeval leaves a ground truth
    whose area is outside its range out of mask AP, so every instance of a negative area was dropped and
    the split's AP read 0.0 without a word (and a size bucket of ``--folds`` took it for small). Such a
    file may come from another tool, so the way on is the one that fits any: leave ``area`` out.

    A crowd (``iscrowd`` 1) too: COCOeval ignores it for mask AP, while it was prompted, trained on and
    counted in IoU, Dice and instance IoU as a defect. Every annotation here is one defect instance, and
    this package has no ignore regions to leave one out of the pixel scores and the training loss.
    """
    if not all(_is_number(info.get(key)) and info[key] >= 1 for key in ("width", "height")):  # Infinity too
        raise UserError(
            f"image {info.get('id')} ({info.get('file_name')}) in {source} has no width and height: "
            f"{FIX_COCO}"
        )
    for annotation in annotations:
        where = f"annotation {annotation.get('id')} in {source}"
        if annotation.get("category_id") not in categories:
            raise UserError(
                f"{where} has category_id {annotation.get('category_id')!r}, not one of the file's "
                f"categories {sorted(categories)}"
            )
        if _is_segmentation([annotation.get("segmentation")]):  # another tool's polygon, not in a list
            raise UserError(
                f"{where} has a segmentation of one flat list of numbers: COCO's polygons are a list of "
                "them, [[x1, y1, x2, y2, ...]]: put it in another pair of brackets"
            )
        if _is_point_pairs(annotation.get("segmentation")):
            raise UserError(
                f"{where} has polygons of [x, y] pairs: COCO's polygons are flat lists of numbers, "
                "[[x1, y1, x2, y2, ...]]: write each one's pairs one after another"
            )
        if not _is_segmentation(annotation.get("segmentation")):
            raise UserError(
                f"{where} has no segmentation pycocotools can decode (polygons of 3 points or more, or an "
                f"RLE with size and counts): {FIX_COCO}"
            )
        if annotation.get("iscrowd"):  # truthy, as pycocotools reads it
            raise UserError(
                f"{where} has iscrowd {annotation['iscrowd']!r}: a crowd region, which COCO scores as one to "
                "ignore and this package cannot (it takes every annotation for one defect): set iscrowd 0 "
                "if it outlines one defect, or remove it"
            )
        box = annotation.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise UserError(f"{where} has no bbox [x, y, width, height] (4 finite numbers): {FIX_COCO}")
        area = annotation.get("area", 1)  # missing: COCOeval is given the mask's pixels
        number = isinstance(area, int | float) and not isinstance(area, bool)
        if not (number and math.isfinite(area) and 0 < area <= MAX_COCO_AREA):
            raise UserError(
                f"{where} has area {area!r}, not its mask's pixel count (a number above 0, and COCOeval "
                f"scores up to {MAX_COCO_AREA:.0e}): leave it out of the file, and it is taken from the mask"
            )


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


def _is_segmentation(segmentation: object) -> bool:
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


def _check_masks(annotations: Sequence[dict], info: dict, *, source: Path) -> None:
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
    reported, so a positive area changes no AP (:func:`_check_entries` refuses the rest).
    """
    from pycocotools import mask as mask_utils

    height, width = int(info["height"]), int(info["width"])
    for annotation in annotations:
        where = f"annotation {annotation.get('id')} in {source}"
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, dict):
            if segmentation["size"] != [height, width]:
                raise UserError(
                    f"{where} is an RLE mask of size {segmentation['size']} (height, width), but its "
                    f"image {info['file_name']} is {[height, width]}: {FIX_COCO}"
                )
            runs = _rle_runs(segmentation["counts"], where=where)
            if sum(runs) != height * width:
                raise UserError(
                    f"{where} is an RLE mask whose runs cover {sum(runs)} pixels, not the {height * width} "
                    f"of its size {height}x{width}: {FIX_COCO}"
                )
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


def _is_number(value: object) -> bool:
    """A finite int or float: Python's ``json`` reads ``NaN`` and ``Infinity``, which COCO has not."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise UserError(f"{where} has a bbox {box} of no width or height: a bbox is [x, y, width, height]")
    width, height = image_size
    corners = _corners_box(box)
    hint = ""
    if _fits(corners, mask_box):
        hint = f"; read as [x0, y0, x1, y1] corners it is [x, y, width, height] {_rounded(corners)}"
    if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
        raise UserError(
            f"{where} has a bbox {box} reaching outside its {width}x{height} px image (a bbox is "
            f"[x, y, width, height]{hint}): {FIX_COCO}"
        )
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


def check_image_sizes(
    images: Sequence[SegmentationImage], sizes: Sequence[tuple[int, int]], *, source: Path
) -> None:
    """Refuses images whose pixels disagree with the COCO file's ``width`` and ``height``.

    The masks are decoded at the COCO size and the predictions come back at the image's, so a
    mismatch would fail deep inside scoring (or train on misplaced masks).

    Args:
        images: images of one split.
        sizes: ``(H, W)`` of each, in its order (``ImageEmbedding.original_size``).
        source: the COCO file they come from, for the message.

    Raises:
        UserError: naming the first image whose size differs and the COCO file.
    """
    for image, (height, width) in zip(images, sizes, strict=True):
        if (height, width) != (image.height, image.width):
            raise UserError(
                f"{image.path} is {width}x{height} px, but {source} says "
                f"{image.width}x{image.height}: {FIX_COCO}"
            )
