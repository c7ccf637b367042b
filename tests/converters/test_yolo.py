from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from converters.masks import mask_to_instances
from converters.yolo import (
    data_yaml,
    instance_to_yolo_line,
    labels_text,
    rings_to_single_polygon,
    xyxy_to_yolo,
    yolo_to_xyxy,
)


def test_box_round_trip():
    box = np.array([3.0, 4.0, 13.0, 24.0])
    yolo = xyxy_to_yolo(box, width=40, height=30)
    assert np.allclose(yolo, [8 / 40, 14 / 30, 10 / 40, 20 / 30])
    assert np.allclose(yolo_to_xyxy(yolo, width=40, height=30), box)


def test_detect_and_segment_lines():
    mask = np.zeros((10, 20), np.uint8)
    mask[2:6, 4:8] = 255
    (inst,) = mask_to_instances(mask, class_name="dent").instances
    assert instance_to_yolo_line(inst, class_id=2, width=20, height=10) == "2 0.3 0.4 0.2 0.4"
    seg = instance_to_yolo_line(inst, class_id=0, width=20, height=10, task="segment").split()
    points = np.array(seg[1:], float).reshape(-1, 2) * [20, 10]
    assert seg[0] == "0" and {tuple(p) for p in points} == {(4, 2), (8, 2), (8, 6), (4, 6)}
    with pytest.raises(ValueError, match="unknown YOLO task"):
        instance_to_yolo_line(inst, class_id=0, width=20, height=10, task="pose")


def test_background_labels_are_empty():
    assert labels_text([], class_ids={}, width=5, height=5) == ""


def test_segment_polygon_keeps_holes_when_ultralytics_rasterises_it():
    """A ring with a hole becomes one polygon with a zero-width cut; fillPoly leaves the hole empty."""
    from ultralytics.data.utils import polygon2mask

    mask = np.zeros((40, 40), np.uint8)
    cv2.circle(mask, (20, 20), 15, 255, -1)
    cv2.circle(mask, (20, 20), 6, 0, -1)
    (inst,) = mask_to_instances(mask).instances
    assert inst.has_holes
    scale = 8  # ultralytics rasterises at training resolution; compare there
    ring = rings_to_single_polygon(inst.polygons, inst.holes) * scale
    rendered = polygon2mask((40 * scale, 40 * scale), [ring.ravel()], color=1).astype(bool)
    truth = cv2.resize(mask, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) > 0
    # fillPoly fills its boundary pixels too, which grows any outline by about one pixel
    assert (rendered & truth).sum() / (rendered | truth).sum() > 0.95
    assert not rendered[20 * scale, 20 * scale]  # the hole stays a hole


def test_data_yaml(tmp_path):
    text = data_yaml(root=tmp_path, names=["bent", "color"])
    data = yaml.safe_load(text)
    assert data == {
        "path": str(tmp_path),
        "train": "images/train",
        "val": "images/val",
        "test": "images/test",
        "names": {0: "bent", 1: "color"},
    }
