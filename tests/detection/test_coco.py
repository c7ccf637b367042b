"""detection.coco: the ground truth scored as detections is 1.0 in COCOeval; unknown images are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.coco import FIX_COCO
from common.errors import UserError
from detection.coco import check_coco_entries, check_coco_matches, coco_map, read_coco
from detection.detections import ImageDetections

NAMES = ["bent", "color", "flip", "scratch"]


def coco_truth_as_detections(coco: dict) -> dict[str, ImageDetections]:
    by_image: dict[int, list] = {image["id"]: [] for image in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        by_image[ann["image_id"]].append(((x, y, x + w, y + h), ann["category_id"] - 1))
    return {
        Path(image["file_name"]).name: ImageDetections(
            boxes=np.array([b for b, _ in by_image[image["id"]]], dtype=float).reshape(-1, 4),
            scores=np.ones(len(by_image[image["id"]])),
            classes=np.array([c for _, c in by_image[image["id"]]], dtype=int),
        )
        for image in coco["images"]
    }


def test_coco_map_of_the_ground_truth_is_one(tiny_dataset: Path) -> None:
    coco = json.loads((tiny_dataset / "annotations" / "instances_val.json").read_text())
    detections = coco_truth_as_detections(coco)
    scores = coco_map(coco, detections)
    assert scores["mAP50"] == pytest.approx(1.0) and scores["mAP50-95"] == pytest.approx(1.0)
    assert scores["n_detections"] == len(coco["annotations"])
    assert set(scores["per_class"]) == set(NAMES)
    assert scores["per_class"]["flip"]["AP50-95"] == pytest.approx(1.0)
    shifted = {name: ImageDetections(d.boxes + 40.0, d.scores, d.classes) for name, d in detections.items()}
    assert coco_map(coco, shifted)["mAP50"] == 0.0


def test_coco_map_is_nan_on_a_split_without_a_true_box() -> None:
    # an all-good split: COCOeval defines no AP without ground truth; it read 0.000, as if every box missed
    found = {"a.png": ImageDetections(np.array([[10.0, 10.0, 20.0, 20.0]]), np.ones(1), np.zeros(1, int))}
    for detections in (found, {}):
        scores = coco_map(one_image_coco([]), detections)
        assert np.isnan(scores["mAP50"]) and np.isnan(scores["mAP50-95"]) and scores["per_class"] == {}
        assert scores["n_detections"] == len(detections)
    # with a true box, no detection is a miss: 0
    assert coco_map(one_image_coco([[10, 10, 50, 50]]), {})["mAP50"] == 0.0


def test_coco_map_refuses_images_the_file_does_not_list(tiny_dataset: Path) -> None:
    coco = json.loads((tiny_dataset / "annotations" / "instances_val.json").read_text())
    with pytest.raises(UserError, match="stranger.png"):
        coco_map(
            coco, {"stranger.png": ImageDetections(np.zeros((1, 4)), np.ones(1), np.zeros(1, dtype=int))}
        )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "cannot read COCO file"),
        ('{"images": []}', "is not a COCO instances file"),
        ("[1, 2]", "must hold a JSON object, not list"),
        # a TypeError traceback from detection.evaluate's class check
        (
            '{"images": [], "annotations": [], "categories": [1, 2]}',
            "'categories' must be a list of objects, got a list holding int",
        ),
        (
            '{"images": [], "annotations": 7, "categories": []}',
            "'annotations' must be a list of objects, got int",
        ),
    ],
)
def test_bad_coco_files_are_named(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "instances_val.json"
    path.write_text(content)
    with pytest.raises(UserError, match=expected) as error:
        read_coco(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def one_image_coco(boxes: list[list[float]]) -> dict:
    """A COCO file of one 100 x 100 image ``a.png`` with class-0 (``bent``) boxes, xywh."""
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
            for i, box in enumerate(boxes)
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)],
    }


def test_map50_95_is_stricter_than_map50() -> None:
    # the detection is shifted by a fifth of the box: IoU 0.67, a hit at 0.5, a miss from 0.7
    found = {"a.png": ImageDetections(np.array([[14.0, 10.0, 64.0, 60.0]]), np.ones(1), np.zeros(1, int))}
    scores = coco_map(one_image_coco([[10, 10, 50, 50]]), found)
    assert scores["mAP50"] == pytest.approx(1.0) and scores["mAP50-95"] < 0.9
    assert scores["per_class"]["bent"]["AP50"] == pytest.approx(1.0)
    assert scores["per_class"]["bent"]["AP50-95"] == pytest.approx(scores["mAP50-95"])


def test_coco_map_keeps_300_detections_per_image() -> None:
    # 150 misses score higher than the one hit: it is the 151st detection, still counted
    misses = np.array([[80.0, 80.0, 90.0, 90.0]] * 150) + np.arange(150)[:, None] * 0.01
    boxes = np.concatenate([misses, [[10.0, 10.0, 20.0, 20.0]]])
    scores = np.concatenate([np.linspace(0.99, 0.5, 150), [0.1]])
    found = {"a.png": ImageDetections(boxes, scores, np.zeros(151, int))}
    result = coco_map(one_image_coco([[10, 10, 10, 10]]), found)
    assert result["n_detections"] == 151 and result["mAP50"] > 0.0
    assert coco_map(one_image_coco([[10, 10, 10, 10]]), found, max_det=100)["mAP50"] == 0.0


def coco_of(names: list[str], files: list[str]) -> dict:
    """A COCO file with ``names`` as categories 1.. and one image per file name (no annotations)."""
    return {
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(names)],
        "images": [{"id": i, "file_name": f"val/{file}"} for i, file in enumerate(files)],
        "annotations": [],
    }


FILES = ["a.png", "b.png", "c.png", "d.png", "e.png"]


@pytest.mark.parametrize(
    ("coco", "message"),
    [
        # the same names under other ids: each detection would be scored as another class
        (coco_of(["b", "a"], FILES), r"its categories \['b', 'a'\] \(by id\) are not the data set's classes"),
        # a subset of the split's images, none other: the rest counted as images without a box
        (
            coco_of(["a", "b"], FILES[:1]),
            r"4 \(b\.png, c\.png, d\.png, \.\.\.\) of them missing, 0 others listed$",
        ),
        (coco_of(["a", "b"], FILES[:2]), r"3 \(c\.png, d\.png, e\.png\) of them missing, 0 others listed$"),
    ],
    ids=["ids swapped", "four missing", "three missing"],
)
def test_coco_ground_truth_of_other_ids_or_fewer_images_is_refused(coco: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_coco_matches(coco, Path("gt.json"), names=["a", "b"], split="val", images=FILES)
    check_coco_matches(
        coco_of(["a", "b"], FILES), Path("gt.json"), names=["a", "b"], split="val", images=FILES
    )


def edited(edit: str) -> dict:
    """:func:`one_image_coco` of one box, hand-edited as ``edit`` says."""
    coco = one_image_coco([[10, 20, 30, 40]])
    annotation = coco["annotations"][0]
    if edit == "short bbox":
        annotation["bbox"] = [10, 20, 30]
    elif edit == "text in bbox":
        annotation["bbox"] = [10, "20", 30, 40]
    elif edit == "NaN in bbox":
        annotation["bbox"] = [10, 20, float("nan"), 40]
    elif edit == "no bbox":
        del annotation["bbox"]
    elif edit == "no width":
        annotation["bbox"] = [10, 20, 0, 40]
    elif edit == "outside":
        annotation["bbox"] = [80, 20, 30, 40]  # to x 110 in a 100 px wide image
    elif edit == "unknown category":
        annotation["category_id"] = 9
    elif edit == "unknown image":
        annotation["image_id"] = 7
    elif edit == "image without size":
        del coco["images"][0]["width"]
    return coco


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # an IndexError traceback from the image-level figures, after the validator had run
        (
            "short bbox",
            "annotation 1 in --coco gt.json has no bbox [x, y, width, height] (4 finite numbers): ",
        ),
        # a ValueError traceback
        (
            "text in bbox",
            "annotation 1 in --coco gt.json has no bbox [x, y, width, height] (4 finite numbers): ",
        ),
        (
            "NaN in bbox",
            "annotation 1 in --coco gt.json has no bbox [x, y, width, height] (4 finite numbers): ",
        ),
        ("no bbox", "annotation 1 in --coco gt.json has no bbox [x, y, width, height] (4 finite numbers): "),
        # scored as it was, without a word
        (
            "no width",
            "annotation 1 in --coco gt.json has a bbox [10, 20, 0, 40] of no width or height: a bbox is "
            "[x, y, width, height]; remove the annotation, or ",
        ),
        (
            "outside",
            "annotation 1 in --coco gt.json has a bbox [80, 20, 30, 40] reaching outside its 100x100 px "
            "image (a bbox is [x, y, width, height]): ",
        ),
        # a KeyError traceback
        (
            "unknown category",
            "annotation 1 in --coco gt.json has category_id 9, not one of the file's categories [1, 2, 3, 4]",
        ),
        ("unknown image", "annotation 1 in --coco gt.json has image_id 7, which no image of the file has: "),
        ("image without size", "image 1 (a.png) in --coco gt.json has no width and height: "),
    ],
)
def test_a_hand_edited_annotation_is_refused_naming_it(edit: str, message: str) -> None:
    with pytest.raises(UserError) as error:
        check_coco_matches(edited(edit), Path("gt.json"), names=NAMES, split="val", images=["a.png"])
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert message.endswith((": ", ", or ")) == str(error.value).endswith(FIX_COCO)


@pytest.mark.parametrize("image_id", [1.0, True])
def test_an_image_id_of_a_whole_float_or_true_is_refused(image_id) -> None:
    # pycocotools and common.coco.check_ids took it for image 1's (1.0 == 1 == True): a hand edit's mistake
    coco = one_image_coco([[10, 20, 30, 40], [50, 20, 30, 40]])
    coco["annotations"][1]["image_id"] = image_id
    for check in (
        lambda: check_coco_entries(coco, Path("gt.json")),
        lambda: check_coco_matches(coco, Path("gt.json"), names=NAMES, split="val", images=["a.png"]),
    ):
        with pytest.raises(UserError) as error:
            check()
        assert str(error.value) == (
            f"annotation 2 (entry 2 of 'annotations') in --coco gt.json has image_id {image_id!r}, not a "
            f"whole number, as COCO's ids are: {FIX_COCO}"
        )


def test_a_box_to_within_a_pixel_of_the_image_edge_is_taken() -> None:
    # as segmentation takes it: a box rounded outwards
    coco = one_image_coco([[-1, -0.5, 101, 100.5]])
    check_coco_matches(coco, Path("gt.json"), names=NAMES, split="val", images=["a.png"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # a KeyError traceback from the categories' check
        (
            lambda coco: coco["categories"][0].pop("id"),
            "entry 1 of 'categories' in --coco gt.json has no 'id'",
        ),
        (
            lambda coco: coco["categories"][1].pop("name"),
            "entry 2 of 'categories' in --coco gt.json has no 'name'",
        ),
        # a ValueError traceback (int('x'))
        (
            lambda coco: coco["categories"][0].update(id="x"),
            "category id 'x' in --coco gt.json is not a whole number, as COCO's ids are",
        ),
        # a KeyError traceback from the images' check
        (
            lambda coco: coco["images"][0].pop("file_name"),
            "entry 1 of 'images' in --coco gt.json has no 'file_name'",
        ),
        (
            lambda coco: coco["annotations"][0].update(image_id=[1]),
            "annotation 1 (entry 1 of 'annotations') in --coco gt.json has image_id [1], not a whole number, "
            "as COCO's ids are",
        ),
        # pycocotools scored the second box of id 1 twice, the first not at all, without a word
        (
            lambda coco: coco["annotations"][1].update(id=1),
            "annotation id 1 is given twice in --coco gt.json",
        ),
    ],
    ids=[
        "category without id",
        "category without name",
        "category id not a number",
        "image without file_name",
        "image_id a list",
        "annotation id twice",
    ],
)
def test_a_hand_edited_coco_id_is_refused_naming_it(edit, message: str) -> None:
    # as segmentation refuses it (common.coco.check_ids), by both checks of detection.evaluate
    coco = one_image_coco([[10, 20, 30, 40], [50, 20, 30, 40]])
    edit(coco)
    for check in (
        lambda: check_coco_entries(coco, Path("gt.json")),
        lambda: check_coco_matches(coco, Path("gt.json"), names=NAMES, split="val", images=["a.png"]),
    ):
        with pytest.raises(UserError) as error:
            check()
        assert str(error.value) == f"{message}: {FIX_COCO}"
