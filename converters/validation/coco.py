"""The COCO check of a data set: each ``annotations/instances_{split}.json`` loaded with pycocotools, its
entries, image files and areas checked and its ground truth scored against itself (:func:`validate_coco`).
"""

from __future__ import annotations

import collections
import os
import sys
from pathlib import Path

from tqdm import tqdm

from common.coco import (
    FIX_COCO,
    check_area,
    check_box,
    check_category,
    check_file_name,
    check_ids,
    check_image_size,
    check_not_crowd,
    check_rle_covers,
    check_rle_size,
    check_segmentation,
    is_finite_number,
    read_coco_index,
)
from common.errors import UserError, few
from common.exif import is_rotated
from common.images import check_opencv_decodes, image_size
from common.io import link_loop_text
from converters.coco import written_here
from converters.masks import rle_counts
from converters.splits import SPLITS
from converters.validation.split_check import (
    SplitCheck,
    broken_links,
    check_not_empty,
    check_shared_images,
    image_folders_line,
    in_data_set,
    note_backgrounds_only,
    turned_line,
)
from converters.validation.split_record import has_split_record


def validate_coco(
    annotations_dir: str | Path, *, self_eval: bool = True, progress: bool = False
) -> dict[str, SplitCheck]:
    """Loads each ``instances_{split}.json`` with pycocotools; checks image files (there, decoding), areas and
    self-AP. ``progress``: bars on stderr while a split's images are decoded (every listed one is), its
    masks rendered (:func:`area_mismatches`) and its self-AP scored (:func:`self_ap_problems`)."""
    checks, files = {}, {}
    folder = Path(annotations_dir).parent
    for split in SPLITS:
        path = Path(annotations_dir) / f"instances_{split}.json"
        if not path.is_file():
            raise UserError(absent_coco_file_text(path))
        coco = read_coco_index(path)  # one line naming a part that is missing or no list
        check_ids(coco.dataset, source=path)  # another tool's: an image without a file_name path, an id twice
        for image in coco.dataset["images"]:  # one outside images/ was read and called ok
            check_file_name(image, images=folder / "images", source=path)
        check_entries(coco.dataset, source=path)
        check = coco_split_counts(coco)
        check.box_repeats = repeated_boxes(coco.dataset)
        check_not_empty(check, split)
        note_backgrounds_only(check, split)
        check.problems.extend(coco_image_problems(coco, folder, desc=f"coco {split}", progress=progress))
        check.problems.extend(area_mismatches(coco, desc=f"coco {split} masks", progress=progress))
        if self_eval and coco.dataset["annotations"]:
            check.problems.extend(self_ap_problems(coco, desc=f"coco {split} self-AP", progress=progress))
        checks[split] = check
        files[split] = [folder / "images" / image["file_name"] for image in coco.dataset["images"]]
    check_shared_images(checks, files, lambda path: in_data_set(path, {"path": folder}))
    return checks


def absent_coco_file_text(path: Path) -> str:
    """Why a split's COCO file ``path`` is not read, in one line: missing, a folder in its place, a broken
    link (naming its target) or a link loop (:func:`common.io.link_loop_text`). Each but the first was
    called missing."""
    if path.is_dir():
        return f"{path} is a folder, not a COCO file: put the split's instances file there"
    if path.is_symlink():
        return link_loop_text(path) or f"{path} is a broken link (to {os.readlink(path)}): no COCO file there"
    return f"missing COCO file {path}"


def check_entries(dataset: dict, *, source: Path) -> None:
    """Refuses what the checks of a COCO split read and another tool's file (``dataset``, read from
    ``source``) may lack: an image without a width and height, an annotation of a category the file does not
    list, without an xywh ``bbox`` or a segmentation pycocotools decodes, or with an ``area`` that is no
    number, 0 or less or above COCOeval's range, in segmentation's words (:func:`common.coco.check_area`:
    it was an area mismatch and a self-AP below 1.0; one left out is taken from the mask, as segmentation's
    commands take it: it was refused).

    Each stopped the check with a traceback (``KeyError``, ``IndexError``, ``TypeError``), but the category:
    COCOeval left such an annotation out of the self-evaluation, and the split was called ``ok``. A crowd
    (``iscrowd`` 1) too, in segmentation's words (:func:`common.coco.check_not_crowd`): its commands refuse
    one, and a split of some was called ``ok``. An RLE of another size than its image's, in their words
    (:func:`common.coco.check_rle_size`), or whose runs do not cover that size
    (:func:`common.coco.check_rle_covers`): each was an area mismatch, or nothing without an ``area``.

    Raises:
        UserError: one line naming the entry and ``source``.
    """
    for image in dataset["images"]:
        check_image_size(image, source=source)
    categories = {category["id"] for category in dataset["categories"]}
    images = {image["id"]: image for image in dataset["images"]}  # each annotation's: check_ids
    for annotation in dataset["annotations"]:
        where = f"annotation {annotation['id']} in {source}"
        check_category(annotation, categories, where=where)
        check_box(annotation, where=where)
        # none: COCOeval is given the mask's pixels (converters.cocoeval), as segmentation's commands are
        check_area(annotation, where=where)  # in segmentation's words
        check_segmentation(annotation, where=where)  # its shape, in segmentation's words
        check_not_crowd(annotation, where=where)  # segmentation's commands refuse it: 'ok' here misled
        check_rle_size(annotation["segmentation"], images[annotation["image_id"]], where=where)
        if not _decodes(annotation["segmentation"]):
            raise UserError(
                f"{where} has no segmentation pycocotools can decode (polygons of 3 points or more, or an "
                f"RLE with size and counts): {FIX_COCO}"
            )
        if isinstance(rle := annotation["segmentation"], dict):  # runs short: 'ok' without an area
            check_rle_covers(rle_counts(rle["counts"]), rle["size"], where=where)


def _decodes(segmentation: dict | list) -> bool:
    """Whether pycocotools decodes ``segmentation``, of a shape it reads
    (:func:`common.coco.is_segmentation`): an RLE whose runs decode (:func:`_rle_decodes`), or polygons
    of finite numbers only."""
    if isinstance(segmentation, dict):
        return _rle_decodes(segmentation)
    return all(is_finite_number(value) for polygon in segmentation for value in polygon)


def _rle_decodes(rle: dict) -> bool:
    """Whether pycocotools decodes ``rle`` (a COCO RLE, its ``counts`` a list or a string) to its ``size``:
    a corrupt string stopped the check of areas with a bare ``ValueError`` ("Invalid RLE mask
    representation")."""
    from pycocotools import mask as mask_utils

    try:
        height, width = rle["size"]
        compressed = mask_utils.frPyObjects(rle, height, width) if isinstance(rle["counts"], list) else rle
        mask_utils.decode(compressed)
        rle_counts(rle["counts"])  # its runs, as check_entries counts them
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def repeated_boxes(dataset: dict) -> list[str]:
    """The ``file_name`` of an image of a COCO ``dataset`` (its JSON) for each of its annotations that repeats
    the category and ``bbox`` of an earlier one of that image.

    Two MVTec LOCO region files of one class over one area are two annotations of one box: the converters
    write their YOLO detect row once, as ultralytics trains on one of identical rows (see
    :func:`converters.yolo.label_rows`).
    """
    names = {image["id"]: image["file_name"] for image in dataset["images"]}
    seen, repeats = set(), []
    for annotation in dataset["annotations"]:
        key = (annotation["image_id"], annotation["category_id"], tuple(annotation["bbox"]))
        if key in seen:
            repeats.append(names[annotation["image_id"]])
        seen.add(key)
    return repeats


def note_one_row_for_repeats(results: dict[str, dict[str, SplitCheck]]) -> None:
    """Notes, on a YOLO detect split that counts fewer instances than the COCO split of its images, that its
    COCO annotations repeating another's class and box (:func:`repeated_boxes`) are as many: a YOLO detect
    file holds two such as one row. Where either split has a problem, or the shortfall is another number,
    nothing is said.

    A LOCO set converted to both formats counted one YOLO instance fewer than COCO in the table, unexplained
    (the conversion's note said why, :func:`converters.yolo.repeated_rows_note`).
    """
    if "yolo" not in results or "coco" not in results:
        return
    for split, yolo in results["yolo"].items():
        coco = results["coco"][split]
        fewer = coco.instances - yolo.instances
        if yolo.task != "detect" or not fewer or fewer != len(coco.box_repeats) or yolo.stems != coco.stems:
            continue
        if yolo.problems or coco.problems:
            continue
        shown = few([f"images/{name}" for name in dict.fromkeys(coco.box_repeats)])
        said = (
            "1 instance fewer than coco: 1 COCO annotation repeats the class and box of another in its image"
            if fewer == 1
            else f"{fewer} instances fewer than coco: {fewer} COCO annotations repeat the class and box of "
            "another in their image"
        )
        yolo.notes.append(
            f"{said} ({shown}), one YOLO detect row for both (ultralytics trains on one of identical rows)"
        )


def coco_split_counts(coco) -> SplitCheck:
    """The counts of one COCO split (``coco``: its pycocotools index): images, instances, background
    images and the images' file stems; no problems yet."""
    return SplitCheck(
        images=len(coco.dataset["images"]),
        instances=len(coco.dataset["annotations"]),
        backgrounds=sum(not coco.getAnnIds(imgIds=[i]) for i in coco.getImgIds()),
        stems={Path(image["file_name"]).stem for image in coco.dataset["images"]},
    )


def coco_image_problems(coco, folder: Path, *, desc: str, progress: bool) -> list[str]:
    """The problems of the image files a COCO split (``coco``) lists in data set ``folder``: broken links,
    missing files, files that do not decode (behind a bar ``desc`` with ``progress``), labelled images an
    EXIF tag turns; in that order (folders in images' places after the broken links)."""
    images_dir = folder / "images"  # file_name is relative to it
    files = [image["file_name"] for image in coco.dataset["images"]]
    problems = []
    if broken := broken_links([images_dir / name for name in files], {"path": folder}):
        problems.append(broken)
    if folders := image_folders_line(
        [images_dir / name for name in files if (images_dir / name).is_dir()], {"path": folder}
    ):
        problems.append(folders)
    if missing := missing_images(images_dir, files):
        problems.append(missing)
    if unreadable := unreadable_images(images_dir, files, desc=desc, progress=progress):
        problems.append(unreadable)
    if turned := turned_coco_images(coco, images_dir, desc=f"{desc} EXIF", progress=progress):
        # segmentation.data refuses them, whoever wrote the set: a problem in any case
        converted = has_split_record(folder) or written_here(coco.dataset)
        problems.append(
            turned_line(
                turned,
                converted=converted,
                reader="OpenCV (SAM's reader)",
                refused_by="the segmentation commands",
            )
        )
    return problems


def missing_images(images_dir: Path, files: list[str]) -> str | None:
    """A problem counting the ``files`` (``file_name``s under ``images_dir``) that are not there, naming the
    first; None when all are. A broken link or a folder in an image's place is not counted:
    :func:`broken_links` and :func:`image_folders_line` name them."""
    missing = [
        name
        for name in files
        if not (path := images_dir / name).is_file() and not path.is_symlink() and not path.is_dir()
    ]
    if not missing:
        return None
    files = "1 image file" if len(missing) == 1 else f"{len(missing)} image files"
    return f"{files} missing (e.g. images/{missing[0]})"


def turned_coco_images(coco, images_dir: Path, *, desc: str = "EXIF", progress: bool = False) -> list[str]:
    """The labelled images of a COCO split (``coco``) under ``images_dir`` that an EXIF orientation tag
    turns, as ``images/{file_name}``; each is opened for it, behind a bar on stderr (``desc``) with
    ``progress``."""
    ids = {annotation["image_id"] for annotation in coco.dataset["annotations"]}
    labelled = [image["file_name"] for image in coco.dataset["images"] if image["id"] in ids]
    bar = tqdm(labelled, desc=desc, unit="img", disable=not progress, file=sys.stderr)
    return [
        f"images/{name}" for name in bar if (images_dir / name).is_file() and is_rotated(images_dir / name)
    ]


def area_mismatches(coco, *, desc: str = "masks", progress: bool = False) -> list[str]:
    """A problem for each annotation of a COCO split (``coco``) whose rendered mask's pixels are not its
    stated ``area`` (one without is taken from its mask); every one stating it is rendered, behind a bar on
    stderr (``desc``) with ``progress``."""
    problems = []
    annotations = [annotation for annotation in coco.dataset["annotations"] if "area" in annotation]
    for annotation in tqdm(annotations, desc=desc, unit="ann", disable=not progress, file=sys.stderr):
        rendered = int(coco.annToMask(annotation).sum())
        # Polygons render back to within a pixel or two of the mask (see converters.masks).
        if abs(rendered - annotation["area"]) > max(2, 0.02 * annotation["area"]):
            problems.append(
                f"annotation {annotation['id']}: renders {rendered} px, area says {annotation['area']}"
            )
    return problems


def self_ap_problems(coco, *, desc: str = "self-AP", progress: bool = False) -> list[str]:
    """The problems of a COCO split's (``coco``) ground truth scored against itself (:func:`coco_self_ap`),
    box then mask: an AP under 1.0, or none at all. With ``progress`` a bar on stderr (``desc``) counts the
    two COCOeval runs, each one step (COCOeval says nothing of its images)."""
    problems = []
    for iou_type in tqdm(("bbox", "segm"), desc=desc, unit="eval", disable=not progress, file=sys.stderr):
        ap = coco_self_ap(coco, iou_type)
        if ap != ap:  # NaN: COCOeval scored none of them (it read 0.000 until 2026-12-07)
            # a crowd and a category the file does not list are refused before (check_entries)
            problems.append(
                f"{iou_type} AP of ground truth against itself is undefined, not 1.0: COCOeval ignores every "
                "annotation, each of an area outside its range (0 to 1e10 px): leave area out of the file, "
                "and it is taken from the mask"
            )
        elif ap < 0.999:
            problems.append(f"{iou_type} AP of ground truth against itself is {ap:.3f}, not 1.0")
    return problems


def unreadable_images(
    images_dir: Path, files: list[str], *, desc: str = "images", progress: bool = False
) -> str | None:
    """A problem naming the first of ``files`` (``file_name``s under ``images_dir``) that do not decode,
    and how many; None when every one there does (missing ones are named apart).

    Decoded as the commands check a photo (:func:`common.images.image_size`, and OpenCV for a TIFF): a
    truncated or empty image was called ok here, while the YOLO rows named it, ultralytics having dropped it.
    Every file is decoded, behind a bar on stderr (``desc``) with ``progress``.
    """
    reasons = []
    for name in tqdm(files, desc=desc, unit="img", disable=not progress, file=sys.stderr):
        path = images_dir / name
        if not path.is_file():
            continue
        try:
            image_size(path)
            check_opencv_decodes(path)
        except UserError as error:
            reasons.append(str(error).replace(str(path), f"images/{name}"))
    if not reasons:
        return None
    files_ = "1 image file" if len(reasons) == 1 else f"{len(reasons)} image files"
    return f"{files_} unreadable (e.g. {reasons[0]})"


def coco_self_ap(coco, iou_type: str) -> float:
    """COCO AP@[.5:.95] of the ground truth scored as detections against itself (1.0 when consistent;
    NaN when COCOeval ignores every annotation: crowds, categories the file does not list)."""
    from converters.cocoeval import COCO_MAX_DET, precision_table

    detections = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "segmentation": a["segmentation"],
            "score": 1.0,
        }
        for a in coco.dataset["annotations"]
    ]
    # COCO keeps 100 detections per image: an image of more instances (specks) would miss the rest.
    most = max(collections.Counter(a["image_id"] for a in detections).values())
    table = precision_table(coco.dataset, detections, iou_type=iou_type, max_det=max(COCO_MAX_DET, most))
    return table.ap()
