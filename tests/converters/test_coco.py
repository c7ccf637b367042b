from __future__ import annotations

import json

import numpy as np
import pytest

from converters.coco import CocoImage, build_coco, instance_segmentation, xyxy_to_xywh
from converters.masks import (
    DefectInstance,
    mask_to_instances,
    mask_to_polygons,
    mask_to_rle,
    mask_to_xyxy,
    polygons_to_mask,
    rle_to_mask,
)
from tests.converters.text_masks import m


def instances(rows: list[str], name: str = "cut"):
    return mask_to_instances(m(rows), class_name=name).instances


def rendered(segmentation: list, height: int, width: int) -> np.ndarray:
    """COCO polygons as pycocotools rasterises them."""
    return polygons_to_mask(
        [np.array(ring).reshape(-1, 2) for ring in segmentation], height=height, width=width
    )


def test_polygon_by_default_rle_for_holes():
    (solid,) = instances(["##", "##"])
    (ring,) = instances(["###", "#.#", "###"])
    assert isinstance(instance_segmentation(solid), list)
    assert instance_segmentation(ring) == {"size": [3, 3], "counts": ring.rle["counts"]}
    assert isinstance(instance_segmentation(solid, mode="rle")["counts"], str)
    with pytest.raises(ValueError, match="unknown COCO segmentation mode"):
        instance_segmentation(solid, mode="mesh")


def test_build_coco_ids_and_fields():
    images = [
        CocoImage(1, "train/a.png", 3, 2, instances(["#.#", "#.."], "cut")),
        CocoImage(2, "train/b.png", 3, 2, ()),  # background
        CocoImage(3, "train/c.png", 3, 2, instances(["##.", "..."], "bent")),
    ]
    coco = build_coco(images, names=["bent", "cut"])
    json.dumps(coco)  # plain JSON
    assert [c["id"] for c in coco["categories"]] == [1, 2]
    assert [a["id"] for a in coco["annotations"]] == [1, 2, 3]
    assert [(a["image_id"], a["category_id"], a["area"], a["iscrowd"]) for a in coco["annotations"]] == [
        (1, 2, 2, 0),
        (1, 2, 1, 0),
        (3, 1, 2, 0),
    ]
    assert coco["annotations"][0]["bbox"] == [0.0, 0.0, 1.0, 2.0]
    assert coco["images"][1] == {"id": 2, "file_name": "train/b.png", "width": 3, "height": 2}
    assert xyxy_to_xywh(np.array([1, 2, 4, 6])) == [1.0, 2.0, 3.0, 4.0]


def test_category_ids_follow_the_order_of_names_as_given():
    # ids are the YOLO class ids + 1, i.e. positions in names; names need not be sorted
    images = [CocoImage(1, "train/a.png", 3, 2, instances(["#..", "..."], "bent"))]
    coco = build_coco(images, names=["scratch", "bent"])
    assert [(c["id"], c["name"]) for c in coco["categories"]] == [(1, "scratch"), (2, "bent")]
    assert [a["category_id"] for a in coco["annotations"]] == [2]


def test_an_instance_without_polygons_gets_its_rle():
    (inst,) = instances(["##", "##"])
    bare = DefectInstance(inst.class_name, inst.xyxy, [], rle=inst.rle, area=inst.area)
    assert instance_segmentation(bare) == {"size": [2, 2], "counts": inst.rle["counts"]}


def test_polygon_is_x_then_y():
    rows = ["######", "######", "##....", "##...."]  # an L on a wide image: x/y swapped it would not fit
    (inst,) = instances(rows)
    segmentation = instance_segmentation(inst)
    assert np.array_equal(rendered(segmentation, 4, 6), m(rows) > 0)
    xs, ys = np.array(segmentation[0][0::2]), np.array(segmentation[0][1::2])
    assert xs.max() == 6 and ys.max() == 4


def test_each_ring_of_an_instance_is_its_own_polygon():
    mask = m(["##...", "##...", ".....", "...##", "...##"])  # two blobs held as one instance
    polygons, holes = mask_to_polygons(mask)
    inst = DefectInstance("cut", mask_to_xyxy(mask), polygons, holes, mask_to_rle(mask > 0), area=8)
    segmentation = instance_segmentation(inst)
    assert len(segmentation) == 2
    assert np.array_equal(rendered(segmentation, 5, 5), mask > 0)
    coco = build_coco([CocoImage(1, "train/a.png", 5, 5, [inst])], names=["cut"])
    assert coco["annotations"][0]["segmentation"] == segmentation


def test_polygon_segmentation_keeps_two_decimals():
    ring = np.array([[0.0, 0.0], [2.25, 0.0], [2.25, 1.125], [0.0, 1.5]])
    instance = mask_to_instances(m(["##", "##"])).instances[0]
    instance = type(instance)(instance.class_name, instance.xyxy, [ring], rle=instance.rle, area=4)
    assert instance_segmentation(instance) == [[0.0, 0.0, 2.25, 0.0, 2.25, 1.12, 0.0, 1.5]]


def test_annotation_area_is_the_pixel_count_and_rle_size_is_height_width():
    mask = m(["#....", "##...", "....."])
    image = CocoImage(1, "a.png", 5, 3, mask_to_instances(mask).instances)
    (ann,) = build_coco([image], names=["defect"], segmentation="rle")["annotations"]
    assert ann["area"] == 3
    assert ann["segmentation"]["size"] == [3, 5]
    assert np.array_equal(rle_to_mask(ann["segmentation"]), mask > 0)
