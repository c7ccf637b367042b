from __future__ import annotations

import json

import numpy as np
import pytest

from converters.coco import CocoImage, build_coco, instance_segmentation, xyxy_to_xywh
from converters.masks import mask_to_instances


def instances(rows: list[str], name: str = "cut"):
    mask = np.array([[255 if c == "#" else 0 for c in row] for row in rows], np.uint8)
    return mask_to_instances(mask, class_name=name).instances


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
