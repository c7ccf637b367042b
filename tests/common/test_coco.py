from __future__ import annotations

import json

import pytest

from common.coco import FIX_COCO, check_category, check_ids, coco_index, read_coco_index
from common.errors import UserError

COCO_FILE = {
    "images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4}],
    "categories": [{"id": 1, "name": "cut"}],
}


def test_a_coco_file_a_windows_tool_saved_with_a_bom_is_indexed(tmp_path):
    # COCO(path) reads it with json.load: "Unexpected UTF-8 BOM (decode using utf-8-sig)"
    path = tmp_path / "instances_test.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(COCO_FILE).encode())
    coco = read_coco_index(path)
    assert coco.getImgIds() == [1] and coco.getAnnIds(imgIds=[1]) == [1] and coco.cats[1]["name"] == "cut"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # COCO(path): a KeyError, then "cannot load COCO file ...: an entry lacks 'image_id' (pycocotools)"
        (
            lambda coco: coco["annotations"][0].pop("image_id"),
            "entry 1 of 'annotations' in {path} has no 'image_id'",
        ),
        (lambda coco: coco["images"][0].pop("id"), "entry 1 of 'images' in {path} has no 'id'"),
        # "cannot load COCO file ...: unhashable type: 'list' (pycocotools)" (converters.validate)
        (
            lambda coco: coco["annotations"][0].update(category_id=[1]),
            "annotation 1 (entry 1 of 'annotations') in {path} has category_id [1], not a whole number, as "
            "COCO's ids are",
        ),
    ],
)
def test_an_entry_pycocotools_cannot_index_is_one_line_naming_the_file_and_the_entry(tmp_path, edit, message):
    broken = json.loads(json.dumps(COCO_FILE))
    edit(broken)
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(UserError) as error:
        read_coco_index(path)
    assert str(error.value) == f"{message.format(path=path)}: {FIX_COCO}"


def test_ground_truth_in_memory_is_indexed_as_it_is():
    dataset = json.loads(json.dumps(COCO_FILE))
    coco = coco_index(dataset)
    assert coco.dataset is dataset and coco.anns[1]["bbox"] == [1, 1, 2, 2]
    with pytest.raises(UserError, match="^cannot load COCO ground truth: an entry lacks 'id'"):
        coco_index({**dataset, "categories": [{"name": "cut"}]})


@pytest.mark.parametrize(
    ("categories", "listed"),
    [
        ([3, 1, 2], "[1, 2, 3]"),
        # a number beside text ids: sorted() of them was a TypeError traceback building the message
        ([2, "x", 1, None], "[1, 2, 'x', None]"),
        ({"b": "cut", 10: "dent", 9: "hole"}, "[9, 10, 'b']"),
    ],
)
def test_an_unlisted_category_id_is_refused_listing_the_files_ids(categories, listed):
    with pytest.raises(UserError) as error:
        check_category({"id": 5, "category_id": 7}, categories, where="annotation 5 in gt.json")
    assert (
        str(error.value)
        == f"annotation 5 in gt.json has category_id 7, not one of the file's categories {listed}"
    )
    check_category({"id": 5, "category_id": 1 if 1 in categories else 9}, categories, where="annotation 5")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        # pycocotools and `in` took each for image or category 1 (1.0 == 1 == True), without a word
        ("image_id", 1.0),
        ("image_id", True),
        ("category_id", 1.0),
        ("category_id", True),
        # pycocotools' index: "unhashable type: 'list'"
        ("category_id", [1]),
        ("image_id", [1]),
        ("image_id", "1"),  # matched no image: "which no image of the file has"
        ("category_id", None),
    ],
)
def test_an_annotation_s_image_or_category_id_that_is_no_whole_number_is_refused(key, value):
    dataset = json.loads(json.dumps(COCO_FILE))
    dataset["annotations"].insert(0, {**dataset["annotations"][0], "id": 7})
    dataset["annotations"][1].update({"id": 8, key: value})
    with pytest.raises(UserError) as error:
        check_ids(dataset, source="gt.json")
    assert str(error.value) == (
        f"annotation 8 (entry 2 of 'annotations') in gt.json has {key} {value!r}, not a whole number, as "
        f"COCO's ids are: {FIX_COCO}"
    )


def test_an_annotation_without_a_category_id_is_refused_naming_it():
    # pycocotools: "cannot load COCO file ...: an entry lacks 'category_id' (pycocotools)"; detection said
    # "has category_id None, not one of the file's categories [1]"
    dataset = json.loads(json.dumps(COCO_FILE))
    del dataset["annotations"][0]["category_id"]
    with pytest.raises(UserError) as error:
        check_ids(dataset, source="gt.json")
    assert str(error.value) == f"entry 1 of 'annotations' in gt.json has no 'category_id': {FIX_COCO}"
