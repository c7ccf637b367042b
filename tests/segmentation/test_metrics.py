"""Tests for segmentation.metrics: IoU, Dice, per-class summaries and COCO mask AP."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from converters.masks import mask_to_rle
from segmentation.metrics import coco_mask_ap, score_image, summarise


def _box_mask(shape, y0, y1, x0, x1):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_score_image_unions_instances_and_splits_by_class():
    gt = np.stack([_box_mask((20, 20), 0, 5, 0, 5), _box_mask((20, 20), 10, 20, 10, 20)])
    pred = np.stack([_box_mask((20, 20), 0, 5, 0, 5), _box_mask((20, 20), 10, 20, 10, 15)])
    score = score_image(7, gt, pred, [1, 2])
    assert score.image_id == 7
    assert score.iou == pytest.approx((25 + 50) / (25 + 100))
    assert score.class_iou == {1: 1.0, 2: pytest.approx(0.5)}
    assert score.instance_iou == [1.0, pytest.approx(0.5)]
    assert score.class_dice[2] == pytest.approx(2 * 50 / 150)
    # Boundary IoU, d = 1 px on a 20 x 20 image (the image's edge counts as outline): the 10 x 10 square's
    # band is 36 px, the 10 x 5 prediction's 26, 18 shared; the two 5 x 5 corners agree on 16
    assert score.class_boundary_iou == {1: 1.0, 2: pytest.approx(18 / 44)}
    assert score.boundary_iou == pytest.approx((16 + 18) / (16 + 44))


def test_summarise_means_per_class_and_overall():
    gt = np.stack([_box_mask((10, 10), 0, 5, 0, 5)])
    perfect = score_image(1, gt, gt, [1])
    half = score_image(2, gt, np.stack([_box_mask((10, 10), 0, 5, 0, 2)]) | False, [2])
    summary = summarise(
        [perfect, half], {1: "cut", 2: "hole"}, [[1], [2]], {"all": (0.5, 0.9), 1: (1.0, 1.0)}
    )
    assert summary.iou["all"] == pytest.approx((1.0 + 0.4) / 2)
    assert summary.iou["cut"] == 1.0 and summary.iou["hole"] == pytest.approx(0.4)
    assert summary.boundary_iou["hole"] == pytest.approx(7 / 19)  # bands of 16 and 10 px, 7 shared
    assert summary.boundary_iou["all"] == pytest.approx((1.0 + 7 / 19) / 2)
    assert summary.n_images == {"all": 2, "cut": 1, "hole": 1}
    assert summary.mask_ap == {"all": 0.5, "cut": 1.0} and summary.mask_ap50["all"] == 0.9


def test_summarise_averages_dice_per_class_and_instance_iou_over_instances():
    gt = np.stack([_box_mask((10, 10), 0, 5, 0, 5), _box_mask((10, 10), 5, 10, 5, 10)])
    pred = np.stack([_box_mask((10, 10), 0, 5, 0, 5), _box_mask((10, 10), 5, 10, 5, 7)])
    two = score_image(1, gt, pred, [1, 2])  # instance IoU 1.0 (cut) and 0.4 (hole)
    one = score_image(2, gt[:1], gt[:1], [2])  # instance IoU 1.0 (hole)
    summary = summarise([two, one], {1: "cut", 2: "hole"}, [[1, 2], [2]])
    assert summary.dice["hole"] == pytest.approx((2 * 10 / 35 + 1.0) / 2)
    assert summary.instance_iou["all"] == pytest.approx((1.0 + 0.4 + 1.0) / 3)
    assert summary.instance_iou["cut"] == 1.0
    assert summary.instance_iou["hole"] == pytest.approx((0.4 + 1.0) / 2)


def _coco_file(tmp_path, masks_by_image):
    images, annotations = [], []
    for image_id, masks in masks_by_image.items():
        images.append({"id": image_id, "file_name": f"{image_id}.png", "height": 32, "width": 32})
        for mask, category in masks:
            ys, xs = np.nonzero(mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "segmentation": mask_to_rle(mask),
                    "area": int(mask.sum()),
                    "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)],
                    "iscrowd": 0,
                }
            )
    path = tmp_path / "instances.json"
    categories = [{"id": 1, "name": "cut"}, {"id": 2, "name": "hole"}]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def test_mask_ap_is_one_for_ground_truth_and_lower_for_bad_masks(tmp_path):
    cut, hole = _box_mask((32, 32), 2, 12, 2, 12), _box_mask((32, 32), 20, 30, 18, 30)
    path = _coco_file(tmp_path, {1: [(cut, 1)], 2: [(hole, 2)]})
    perfect = [
        {"image_id": 1, "category_id": 1, "segmentation": mask_to_rle(cut), "score": 0.9},
        {"image_id": 2, "category_id": 2, "segmentation": mask_to_rle(hole), "score": 0.8},
    ]
    ap = coco_mask_ap(path, perfect)
    assert ap["all"] == pytest.approx((1.0, 1.0)) and ap[1] == pytest.approx((1.0, 1.0))
    shifted = _box_mask((32, 32), 6, 16, 6, 16)  # IoU with cut = 36 / 164 < 0.5
    ap = coco_mask_ap(path, [{**perfect[0], "segmentation": mask_to_rle(shifted)}, perfect[1]])
    assert ap[1] == (0.0, 0.0) and ap[2] == pytest.approx((1.0, 1.0))
    assert coco_mask_ap(path, []) == {"all": (0.0, 0.0), 1: (0.0, 0.0), 2: (0.0, 0.0)}


def test_mask_ap_keys_and_values_are_plain_python_numbers(tmp_path):
    # the category ids were numpy integers: json.dumps of the result refused them as keys
    cut = _box_mask((32, 32), 2, 12, 2, 12)
    path = _coco_file(tmp_path, {1: [(cut, 1)]})
    found = {"image_id": 1, "category_id": 1, "segmentation": mask_to_rle(cut), "score": 0.9}
    ap = coco_mask_ap(path, [found])
    assert [type(key) for key in ap] == [str, int, int]
    assert all(type(value) is float for pair in ap.values() for value in pair)
    read = json.loads(json.dumps(ap))  # NaN for class 2, without ground truth
    assert list(read) == ["all", "1", "2"] and read["1"] == pytest.approx([1.0, 1.0])


def test_mask_ap_of_a_split_without_instances_is_nan_not_zero(tmp_path):
    # 0.0 in metrics.json and table.md read as a model that missed everything: null and "-" instead
    path = _coco_file(tmp_path, {1: []})
    cut = _box_mask((32, 32), 2, 12, 2, 12)
    for detections in (
        [],
        [{"image_id": 1, "category_id": 1, "segmentation": mask_to_rle(cut), "score": 1.0}],
    ):
        ap = coco_mask_ap(path, detections)
        assert list(ap) == ["all", 1, 2] and all(math.isnan(v) for pair in ap.values() for v in pair)


def test_mask_ap_of_a_class_without_ground_truth_is_nan(tmp_path):
    cut = _box_mask((32, 32), 2, 12, 2, 12)
    path = _coco_file(tmp_path, {1: [(cut, 1)]})
    ap = coco_mask_ap(
        path, [{"image_id": 1, "category_id": 1, "segmentation": mask_to_rle(cut), "score": 1.0}]
    )
    assert all(math.isnan(v) for v in ap[2])
