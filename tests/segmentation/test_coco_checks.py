"""Tests for segmentation.coco_checks: entries the converters never write, refused as a split is read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.errors import UserError
from segmentation.coco_checks import FIX_COCO
from segmentation.data import load_split


def _with_one_rle(tiny_dataset, tmp_path, size_of):
    """A copy of the test split's COCO file whose first annotation is an RLE of size ``size_of(h, w)``."""
    from pycocotools import mask as mask_utils

    image = next(im for im in load_split(tiny_dataset, "test").images if not im.is_background)
    mask = image.instance_masks()[0]
    height, width = size_of(image.height, image.width)
    canvas = np.zeros((height, width), dtype=np.uint8, order="F")
    canvas[: min(height, image.height), : min(width, image.width)] = mask[:height, :width]
    rle = mask_utils.encode(canvas)
    data = json.loads((tiny_dataset / "annotations" / "instances_test.json").read_text())
    annotation = next(a for a in data["annotations"] if a["id"] == image.annotations[0]["id"])
    annotation["segmentation"] = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_test.json").write_text(json.dumps(data))
    (tmp_path / "images").symlink_to(tiny_dataset / "images")
    return image, mask, annotation["id"]


def test_an_rle_mask_at_its_image_size_decodes_as_the_polygon_did(tiny_dataset, tmp_path):
    image, mask, _ = _with_one_rle(tiny_dataset, tmp_path, lambda h, w: (h, w))
    again = next(im for im in load_split(tmp_path, "test").images if im.image_id == image.image_id)
    assert np.array_equal(again.instance_masks()[0], mask)


def test_an_rle_mask_of_another_size_is_refused_naming_the_annotation(tiny_dataset, tmp_path):
    _, _, annotation_id = _with_one_rle(tiny_dataset, tmp_path, lambda h, w: (h // 2, w))
    # not numpy's "could not broadcast" deep inside training or scoring
    with pytest.raises(
        UserError, match=f"annotation {annotation_id} in .*instances_test.json is an RLE mask"
    ):
        load_split(tmp_path, "test")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda image, ann: ann.pop("segmentation"), "has no segmentation pycocotools can decode"),
        (lambda image, ann: ann.update(segmentation=[]), "has no segmentation pycocotools can decode"),
        (lambda image, ann: ann.update(segmentation=[[1, 2, 3, 4]]), "has no segmentation"),  # 2 points
        (  # another tool's polygon of [x, y] pairs: was "no segmentation pycocotools can decode (...)"
            lambda image, ann: ann.update(segmentation=[[[10, 10], [20, 10], [20, 20]]]),
            r"has polygons of \[x, y\] pairs: COCO's polygons are flat lists of numbers, \[\[x1, y1, x2, y2, "
            r"\.\.\.\]\]: write each one's pairs one after another$",
        ),
        (  # another tool's polygon not in a list: its message said "convert the data set again"
            lambda image, ann: ann.update(segmentation=[10, 10, 20, 10, 20, 20]),
            r"has a segmentation of one flat list of numbers: COCO's polygons are a list of them, "
            r"\[\[x1, y1, x2, y2, \.\.\.\]\]: put it in another pair of brackets$",
        ),
        (lambda image, ann: ann.update(bbox=[0, 0]), r"has no bbox \[x, y, width, height\]"),
        (
            lambda image, ann: ann.update(category_id=9),
            r"has category_id 9, not one of the file's categories",
        ),
        (lambda image, ann: image.pop("width"), r"image \d+ \(.*\) in .*instances_test.json has no width"),
        (lambda image, ann: image.pop("height"), r"image \d+ \(.*\) in .*instances_test.json has no width"),
        (
            lambda image, ann: image.update(width=0),
            r"image \d+ \(.*\) in .* has no width and height",
        ),  # empty
        (  # Python's json reads Infinity: an OverflowError traceback
            lambda image, ann: image.update(width=float("inf")),
            r"image \d+ \(.*\) in .* has no width and height",
        ),
        (lambda image, ann: ann.update(segmentation=[[1, 2, 3, 4, 5, 6, 7]]), "has no segmentation"),  # odd
        (lambda image, ann: ann.update(segmentation=[[1, 2, 3, 4, 5, None]]), "has no segmentation"),  # null
        (
            lambda image, ann: ann.update(segmentation={"size": [8, 8]}),
            "has no segmentation",
        ),  # RLE, no counts
        (lambda image, ann: ann.update(bbox=[0, 0, "4", 4]), r"has no bbox \[x, y, width, height\]"),  # text
        (  # Python's json reads NaN: the box, SAM's prompt, went through every check
            lambda image, ann: ann.update(bbox=[*ann["bbox"][:2], float("nan"), ann["bbox"][3]]),
            r"has no bbox \[x, y, width, height\] \(4 finite numbers\)",
        ),
        (  # pycocotools rasterised it with all the memory there was: the command was killed without a line
            lambda image, ann: ann.update(segmentation=[[10, 10, 20, float("nan"), 20, 20]]),
            "has a polygon point that is not a finite number",
        ),
        (  # 1e9 likewise; 1e5 is enough to be refused
            lambda image, ann: ann.update(segmentation=[[10, 10, 1e5, 10, 20, 20]]),
            r"has a polygon point \[100000.0, 10\] far outside its 64x64 px image",
        ),
        # COCOeval left a negative area out of mask AP: the split's AP read 0.0 without a word
        (lambda image, ann: ann.update(area=-5), r"annotation \d+ in .*_test.json has area -5, not its"),
        (lambda image, ann: ann.update(area=0), "has area 0, not its mask's pixel count"),
        (lambda image, ann: ann.update(area="12"), "has area '12', not its mask's pixel count"),
        (lambda image, ann: ann.update(area=None), "has area None, not its mask's pixel count"),
        (  # above COCOeval's range 'all': left out of mask AP as well; the way on fits another tool's file
            lambda image, ann: ann.update(area=1e11),
            r"has area 100000000000.0, not its mask's pixel count \(a number above 0, and COCOeval scores up "
            r"to 1e\+10\): leave it out of the file, and it is taken from the mask$",
        ),
    ],
)
def test_a_hand_edited_coco_entry_is_refused_naming_it(tiny_dataset, tmp_path, edit, fragment):
    # each was a KeyError or IndexError traceback inside training or scoring, after the models had run
    data = json.loads((tiny_dataset / "annotations" / "instances_test.json").read_text())
    annotation = data["annotations"][0]
    edit(next(im for im in data["images"] if im["id"] == annotation["image_id"]), annotation)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_test.json").write_text(json.dumps(data))
    (tmp_path / "images").symlink_to(tiny_dataset / "images")
    with pytest.raises(UserError, match=fragment) as error:
        load_split(tmp_path, "test")
    # each names the way out, but an unknown category's (its message lists the file's categories), one that
    # fits a file made by hand or by another tool too ("convert the data set again": such a file cannot)
    ways = (
        f": {FIX_COCO}",
        ": leave it out of the file, and it is taken from the mask",
        ": put it in another pair of brackets",
        ": write each one's pairs one after another",
    )
    assert "category_id" in fragment or str(error.value).endswith(ways)
    load_split(tiny_dataset, "test")  # as the converters wrote it


def _rle(mask: np.ndarray, *, uncompressed: bool = False) -> dict:
    """``mask``'s COCO RLE: compressed (``counts`` a string), or as a list of run lengths (COCO's crowds)."""
    from converters.masks import mask_to_rle, rle_counts

    rle = mask_to_rle(mask)
    return {**rle, "counts": rle_counts(rle["counts"])} if uncompressed else rle


def _edit_first_annotation(tiny_dataset, tmp_path, edit) -> tuple[dict, dict]:
    """A copy of the test split's COCO file whose first annotation ``edit(image, annotation)`` changed."""
    data = json.loads((tiny_dataset / "annotations" / "instances_test.json").read_text())
    annotation = data["annotations"][0]
    image = next(im for im in data["images"] if im["id"] == annotation["image_id"])
    edit(image, annotation)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_test.json").write_text(json.dumps(data))
    (tmp_path / "images").symlink_to(tiny_dataset / "images")
    return image, annotation


def _full(image: dict) -> np.ndarray:
    return np.ones((image["height"], image["width"]), dtype=bool)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (  # pycocotools: a bare "ValueError: Invalid RLE mask representation" inside scoring
            lambda image, ann: ann.update(segmentation={**_rle(_full(image)), "counts": "!!garbage"}),
            r"is an RLE mask whose counts do not decode \(RLE counts hold '!'",
        ),
        (  # decoded without a word into a mask of the 15 pixels the runs covered
            lambda image, ann: ann.update(segmentation={**_rle(_full(image)), "counts": [5, 10]}),
            r"is an RLE mask whose runs cover 15 pixels, not the 4096 of its size 64x64",
        ),
        (  # a string of another mask's runs, the size edited to the image's
            lambda image, ann: ann.update(segmentation={**_rle(np.ones((64, 63), bool)), "size": [64, 64]}),
            r"whose runs cover 4032 pixels, not the 4096",
        ),
        (
            lambda image, ann: ann.update(segmentation={**_rle(_full(image)), "counts": [0, 4095.5, 0.5]}),
            r"is an RLE mask whose counts are neither COCO's string nor a list of run lengths",
        ),
        (  # a polygon of one point: trained and scored as a defect under its bbox
            lambda image, ann: ann.update(segmentation=[[10, 10, 10, 10, 10, 10]]),
            r"annotation \d+ in .*test.json has an empty mask \(no pixel of its image test/.* inside",
        ),
        (  # outside the image
            lambda image, ann: ann.update(segmentation=[[100, 100, 120, 100, 120, 120]]),
            "has an empty mask",
        ),
        (
            lambda image, ann: ann.update(segmentation=_rle(np.zeros((64, 64), bool), uncompressed=True)),
            "has an empty mask",
        ),
        (  # each was SAM's prompt in training and scoring: a point, a box turned inside out
            lambda image, ann: ann.update(bbox=[*ann["bbox"][:2], 0, 0]),
            r"annotation \d+ in .*test.json has a bbox \[.*\] of no width or height: a bbox is \[x, y, width",
        ),
        (lambda image, ann: ann.update(bbox=[*ann["bbox"][:2], -5, ann["bbox"][3]]), "of no width or height"),
        (  # beside its mask: the decoder was taught (and scored on) the wrong answer to the box
            lambda image, ann: ann.update(bbox=[ann["bbox"][0] + 10, *ann["bbox"][1:]]),
            r"has a bbox \[.*\] that does not cover its mask, whose box is \[",
        ),
        (  # it covers its mask, past the image's edge: SAM was prompted with (and taught) a far larger box
            lambda image, ann: ann.update(bbox=[-100, -100, image["width"] + 200, image["height"] + 200]),
            r"annotation \d+ in .*test.json has a bbox \[-100, -100, 264, 264\] reaching outside its 64x64",
        ),
        (
            lambda image, ann: ann.update(bbox=[*ann["bbox"][:2], image["width"], ann["bbox"][3]]),
            "reaching outside",
        ),
    ],
)
def test_a_mask_that_does_not_decode_or_is_empty_is_refused_naming_it(tiny_dataset, tmp_path, edit, fragment):
    _edit_first_annotation(tiny_dataset, tmp_path, edit)
    with pytest.raises(UserError, match=fragment):
        load_split(tmp_path, "test")


def _corners(box: list[float]) -> list[float]:
    """A COCO ``bbox`` written as another tool may: [x0, y0, x1, y1] corners in its place."""
    return [box[0], box[1], box[0] + box[2], box[1] + box[3]]


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (  # corners where COCO has width and height, past the image: read as corners, it fits the mask
            lambda image, ann: ann.update(
                bbox=_corners([30, 40, 20, 20]), segmentation=[[30, 40, 50, 40, 50, 60]]
            ),
            r"has a bbox \[30, 40, 50, 60\] reaching outside its 64x64 px image \(a bbox is \[x, y, "
            r"width, height\]; read as \[x0, y0, x1, y1\] corners it is \[x, y, width, height\] "
            r"\[30, 40, 20, 20\]\): correct it in the file, or in the tool that wrote it \(a data set the "
            r"converters wrote and since edited: convert it again\)$",
        ),
        (  # corners inside the image: they covered the mask, a box 30 and 40 px too wide and tall, taken
            lambda image, ann: ann.update(
                bbox=_corners([3, 4, 20, 20]), segmentation=[[3, 4, 23, 4, 23, 24]]
            ),
            r"has a bbox \[3, 4, 23, 24\] that is its mask's \[x0, y0, x1, y1\] corners \(a bbox is \[x, y, "
            r"width, height\]; read as \[x0, y0, x1, y1\] corners it is \[x, y, width, height\] "
            r"\[3, 4, 20, 20\]\): correct it in the file",
        ),
        (  # 100 px past every edge: no corners reading fits, the rest of the line as above
            lambda image, ann: ann.update(bbox=[-100, -100, image["width"] + 200, image["height"] + 200]),
            r"reaching outside its 64x64 px image \(a bbox is \[x, y, width, height\]\): correct it in the "
            "file",
        ),
        (
            lambda image, ann: ann.update(bbox=[ann["bbox"][0] + 10, *ann["bbox"][1:]]),
            r"that does not cover its mask, whose box is \[.*\] \(a bbox is \[x, y, width, height\]\): "
            r"correct it in the file, or in the tool that wrote it",
        ),
        (  # the line ended without a next step, where detection's gave one (common.coco.NO_SIZE_FIX)
            lambda image, ann: ann.update(bbox=[*ann["bbox"][:2], 0, ann["bbox"][3]]),
            r"has a bbox \[.*\] of no width or height: a bbox is \[x, y, width, height\]; remove the "
            r"annotation, or correct it in the file, or in the tool that wrote it \(a data set the "
            r"converters wrote and since edited: convert it again\)$",
        ),
    ],
)
def test_a_bad_bbox_is_refused_with_a_way_on_for_a_hand_made_file(tiny_dataset, tmp_path, edit, fragment):
    # told to 'convert the data set again': a file made by hand or by another tool has nothing to convert
    _edit_first_annotation(tiny_dataset, tmp_path, edit)
    with pytest.raises(UserError, match=fragment) as error:
        load_split(tmp_path, "test")
    assert "convert the data set again" not in str(error.value)


def test_an_uncompressed_rle_as_coco_writes_crowds_decodes_as_the_polygon_did(tiny_dataset, tmp_path):
    # COCO's crowd form for one instance (iscrowd 0): a crowd itself is refused (below)
    image = next(im for im in load_split(tiny_dataset, "test").images if not im.is_background)
    mask = image.instance_masks()[0]
    _edit_first_annotation(
        tiny_dataset,
        tmp_path,
        lambda _, ann: ann.update(segmentation=_rle(mask, uncompressed=True), iscrowd=0),
    )
    again = next(im for im in load_split(tmp_path, "test").images if im.image_id == image.image_id)
    assert np.array_equal(again.instance_masks()[0], mask)


@pytest.mark.parametrize("iscrowd", [1, True])
def test_a_crowd_region_is_refused_naming_it_and_the_way_on(tiny_dataset, tmp_path, iscrowd):
    # COCOeval ignored it for mask AP, while it was prompted and counted in IoU, Dice and instance IoU
    _, annotation = _edit_first_annotation(tiny_dataset, tmp_path, lambda _, ann: ann.update(iscrowd=iscrowd))
    message = (
        rf"^annotation {annotation['id']} in .*instances_test.json has iscrowd {iscrowd!r}: a crowd region, "
        "which COCO scores as one to ignore and this package cannot \\(it takes every annotation for one "
        "defect\\): set iscrowd 0 if it outlines one defect, or remove it$"
    )
    with pytest.raises(UserError, match=message):
        load_split(tmp_path, "test")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (  # pycocotools kept one of the two images
            lambda data: data["images"][1].update(id=data["images"][0]["id"]),
            r"image id \d+ is given twice in .*instances_test.json \(test/.* and test/.*\)",
        ),
        (  # the first annotation was dropped and the second read twice in its place
            lambda data: data["annotations"][1].update(id=data["annotations"][0]["id"]),
            r"annotation id \d+ is given twice in .*instances_test.json",
        ),
        (  # the annotation was dropped
            lambda data: data["annotations"][0].update(image_id=999),
            r"annotation \d+ in .*instances_test.json has image_id 999, which no image of the file has",
        ),
        (  # a TypeError traceback (unhashable type: 'list')
            lambda data: data["annotations"][0].update(image_id=[data["annotations"][0]["image_id"]]),
            r"annotation \d+ \(entry 1 of 'annotations'\) in .*instances_test.json has image_id \[\d+\], "
            "not a whole number, as COCO's ids are",
        ),
        (  # a hand-written "3" for 3: dropped as well
            lambda data: data["annotations"][0].update(image_id=str(data["annotations"][0]["image_id"])),
            r"has image_id '\d+', not a whole number",
        ),
        (  # read as image 1's (1.0 == 1 == True), without a word
            lambda data: data["annotations"][1].update(image_id=float(data["images"][0]["id"])),
            r"annotation \d+ \(entry 2 of 'annotations'\) in .*instances_test.json has image_id \d+\.0, not "
            "a whole number",
        ),
        (
            lambda data: data["annotations"][1].update(image_id=True),
            r"\(entry 2 of 'annotations'\) in .* has image_id True, not a whole number",
        ),
        (  # pycocotools: "cannot load COCO file ...: unhashable type: 'list' (pycocotools)"
            lambda data: data["annotations"][0].update(category_id=[data["annotations"][0]["category_id"]]),
            r"\(entry 1 of 'annotations'\) in .*instances_test.json has category_id \[\d+\], not a whole "
            "number, as COCO's ids are",
        ),
        (  # read as category 1's
            lambda data: data["annotations"][0].update(category_id=1.0),
            r"\(entry 1 of 'annotations'\) in .* has category_id 1.0, not a whole number",
        ),
        (  # a text id beside numbers: a TypeError traceback (sorted ids)
            lambda data: data["images"][0].update(id=str(data["images"][0]["id"])),
            r"image id '\d+' in .*instances_test.json is not a whole number, as COCO's ids are",
        ),
        (
            lambda data: data["annotations"][0].update(id=1.5),
            r"annotation id 1.5 in .* is not a whole number",
        ),
        (
            lambda data: data["images"][0].pop("file_name"),
            r"entry 1 of 'images' in .*_test.json has no 'file_name'",
        ),
        (
            lambda data: data["images"][0].update(file_name=None),
            r"image \d+ in .* has file_name None, not a path",
        ),
        (  # "cannot read image <data>/images: corrupt or not an image (... Is a directory ...)"
            lambda data: data["images"][0].update(file_name=""),
            r"image \d+ in .*instances_test.json has file_name '', not a path",
        ),
        (
            lambda data: data["annotations"][2].pop("id"),
            r"entry 3 of 'annotations' in .* has no 'id'",
        ),  # "'id'"
        (
            lambda data: data["annotations"][0].pop("image_id"),
            r"entry 1 of 'annotations' in .* has no 'image_id'",
        ),
        (  # "cannot load COCO file ...: an entry lacks 'category_id' (pycocotools)", no next step
            lambda data: data["annotations"][1].pop("category_id"),
            r"entry 2 of 'annotations' in .*instances_test.json has no 'category_id'",
        ),
        (  # the first category's instances were scored under the second's name
            lambda data: data["categories"].append({"id": data["categories"][0]["id"], "name": "other"}),
            r"category id \d+ is given twice in .*instances_test.json \('other' and another\)",
        ),
        (  # the image's entry deleted, its annotations left
            lambda data: data.update(
                images=[im for im in data["images"] if im["id"] != data["annotations"][0]["image_id"]]
            ),
            r"has image_id \d+, which no image of the file has",
        ),
    ],
)
def test_coco_ids_that_would_drop_data_silently_are_refused(tiny_dataset, tmp_path, edit, fragment):
    # pycocotools indexes images and annotations by id: each of these lost data without a word
    data = json.loads((tiny_dataset / "annotations" / "instances_test.json").read_text())
    edit(data)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_test.json").write_text(json.dumps(data))
    (tmp_path / "images").symlink_to(tiny_dataset / "images")
    with pytest.raises(UserError, match=fragment) as error:
        load_split(tmp_path, "test")
    assert str(error.value).endswith(f": {FIX_COCO}")


def test_two_categories_of_one_name_are_refused_naming_both_ids(tiny_dataset, tmp_path):
    # another tool's "scratch" under two supercategories: the per-class scores, keyed by name, counted both
    # as one class, a row of more images than the split's "all" row
    def edit(data: dict) -> None:
        first = data["categories"][0]
        data["categories"].append({"id": 99, "name": first["name"], "supercategory": "other"})
        data["annotations"][0]["category_id"] = 99

    data = json.loads((tiny_dataset / "annotations" / "instances_test.json").read_text())
    edit(data)
    name, first = data["categories"][0]["name"], data["categories"][0]["id"]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_test.json").write_text(json.dumps(data))
    (tmp_path / "images").symlink_to(tiny_dataset / "images")
    with pytest.raises(UserError) as error:
        load_split(tmp_path, "test")
    source = tmp_path / "annotations" / "instances_test.json"
    assert str(error.value) == (
        f"category name {name!r} is given to ids {first} and 99 in {source}: the scores list classes by "
        "name, so both would be counted as one: rename one of them"
    )


@pytest.mark.parametrize(
    ("name", "what"),
    [
        (3, "not text"),  # beside a text name: a TypeError traceback from the table, after the models ran
        ("all", "the name the scores give every class together"),  # counted into the row of every class
        ("", "blank"),  # a table row without a name
        (" ", "blank"),
    ],
)
def test_a_category_name_the_scores_cannot_key_is_refused(tiny_dataset, tmp_path, name, what):
    data = json.loads((tiny_dataset / "annotations" / "instances_test.json").read_text())
    data["categories"].append({"id": 99, "name": name})
    data["annotations"][0]["category_id"] = 99
    (tmp_path / "annotations").mkdir()
    source = tmp_path / "annotations" / "instances_test.json"
    source.write_text(json.dumps(data))
    (tmp_path / "images").symlink_to(tiny_dataset / "images")
    with pytest.raises(UserError) as error:
        load_split(tmp_path, "test")
    assert str(error.value) == (
        f"category 99 in {source} has name {name!r}, {what}: name it otherwise (text, as COCO's category "
        "names are; a data set the converters wrote: rename its defect folder and convert it again)"
    )
