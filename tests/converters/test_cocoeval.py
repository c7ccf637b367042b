"""COCOeval's precision table: AP overall, per class, at one IoU, and the PR curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from converters.cocoeval import one_class, precision_table
from converters.masks import mask_to_rle


def ground_truth() -> dict:
    """Two 20x20 images: a 'cut' square on the first, a 'dent' square on the second."""
    masks = {1: (2, 2, 8, 8), 2: (10, 10, 16, 16)}
    annotations = []
    for image_id, (x1, y1, x2, y2) in masks.items():
        mask = np.zeros((20, 20), np.uint8)
        mask[y1:y2, x1:x2] = 1
        annotations.append(
            {
                "id": image_id,
                "image_id": image_id,
                "category_id": image_id,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
                "segmentation": mask_to_rle(mask),
            }
        )
    return {
        "images": [{"id": i, "width": 20, "height": 20, "file_name": f"{i}.png"} for i in (1, 2)],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "cut"}, {"id": 2, "name": "dent"}, {"id": 3, "name": "hole"}],
    }


def results_from(gt: dict, *, shift: int = 0) -> list[dict]:
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": [a["bbox"][0] + shift, *a["bbox"][1:]],
            "segmentation": a["segmentation"],
            "score": 0.9,
        }
        for a in gt["annotations"]
    ]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_ground_truth_scored_against_itself_is_perfect(iou_type: str) -> None:
    gt = ground_truth()
    table = precision_table(gt, results_from(gt), iou_type=iou_type)
    summary = table.summary()
    assert summary["AP"] == pytest.approx(1.0) and summary["AP50"] == pytest.approx(1.0)
    assert set(summary["per_class"]) == {"cut", "dent"}  # 'hole' has no ground truth
    recall, precision = table.pr_curve()
    assert recall.shape == precision.shape == (101,) and np.allclose(precision, 1.0)


def test_a_box_moved_by_half_its_width_misses_at_iou_50() -> None:
    gt = ground_truth()
    results = results_from(gt)
    results[1] = {**results[1], "bbox": [13, 10, 6, 6]}  # dent moved 3 px: IoU 3/9 = 0.33
    table = precision_table(gt, results, iou_type="bbox")
    assert table.ap(category=1, iou=0.5) == pytest.approx(1.0)
    assert table.ap(category=2, iou=0.5) == 0.0
    assert table.ap(iou=0.5) == pytest.approx(0.5)


def test_no_results_score_zero_and_inputs_are_not_modified() -> None:
    gt = ground_truth()
    results = results_from(gt)
    before = repr(gt), repr(results)
    precision_table(gt, results, iou_type="segm")
    assert (repr(gt), repr(results)) == before  # loadRes writes into what it is given
    assert precision_table(gt, [], iou_type="bbox").summary()["AP"] == 0.0


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("left_out", [("iscrowd",), ("area",), ("iscrowd", "area")])
def test_ground_truth_without_iscrowd_or_area_scores_as_with_them(iou_type: str, left_out: tuple) -> None:
    # COCO's own files always hold both; one written by hand or by another tool may not: COCOeval's
    # KeyError traceback
    gt = ground_truth()
    results = results_from(gt, shift=2)
    expected = precision_table(gt, results, iou_type=iou_type)
    for annotation in gt["annotations"]:
        for key in left_out:
            del annotation[key]
    table = precision_table(gt, results, iou_type=iou_type)
    assert np.array_equal(table.precision, expected.precision)
    assert table.ap() > 0  # a filled table, not the zeros of one without matches
    assert all(key not in annotation for annotation in gt["annotations"] for key in left_out)  # not filled in


def test_unknown_iou_type_is_refused() -> None:
    with pytest.raises(ValueError, match="iou_type"):
        precision_table(ground_truth(), [], iou_type="keypoints")


@pytest.mark.parametrize(
    "images",
    [[], [{"id": 1, "width": 20, "height": 20, "file_name": "1.png"}]],
    ids=["no image", "good images only"],
)
def test_a_split_without_ground_truth_has_no_ap_rather_than_zero(images) -> None:
    # it read 0.0, as if the model had missed every instance of a split that had none
    gt = {**ground_truth(), "images": images, "annotations": []}
    table = precision_table(gt, [], iou_type="segm")
    summary = table.summary()
    assert math.isnan(summary["AP"]) and math.isnan(summary["AP50"]) and summary["per_class"] == {}
    assert math.isnan(table.ap(category=1, iou=0.75))


def test_ap_at_an_iou_coco_does_not_score_is_refused() -> None:
    # it averaged nothing and said 0.0
    gt = ground_truth()
    with pytest.raises(ValueError, match="iou=0.42 is not one of COCOeval's thresholds"):
        precision_table(gt, results_from(gt), iou_type="segm").ap(iou=0.42)


def test_one_class_matches_a_mask_whatever_class_it_names() -> None:
    # The two masks are right but their classes swapped, a third duplicate names a class the ground
    # truth lacks (the cascade's 'anomaly'): per class nothing matches; merged, both defects are found
    # first and the duplicate is a false positive after them.
    gt = ground_truth()
    results = results_from(gt)
    results[0], results[1] = {**results[0], "category_id": 2}, {**results[1], "category_id": 1}
    results.append({**results[0], "category_id": 9, "score": 0.5})
    before = repr(gt), repr(results)
    assert precision_table(gt, results, iou_type="segm").ap() == 0.0
    truth, merged = one_class(gt, results, name="any")
    assert (repr(gt), repr(results)) == before
    assert truth["categories"] == [{"id": 1, "name": "any"}] and truth["images"] == gt["images"]
    assert {a["category_id"] for a in truth["annotations"]} == {r["category_id"] for r in merged} == {1}
    summary = precision_table(truth, merged, iou_type="segm").summary()
    assert summary["AP"] == pytest.approx(1.0) and list(summary["per_class"]) == ["any"]


def test_one_class_counts_results_of_a_category_the_ground_truth_lacks() -> None:
    # The cascade's 'anomaly' regions name no category of the ground truth: merged, they find both defects.
    gt = ground_truth()
    results = [{**r, "category_id": 9} for r in results_from(gt)]
    truth, merged = one_class(gt, results)
    assert truth["categories"] == [{"id": 1, "name": "defect"}]
    assert precision_table(truth, merged, iou_type="segm").ap() == pytest.approx(1.0)


def test_ap_at_one_iou_threshold_and_ap50_read_that_threshold() -> None:
    # the cut box moved 1 px: IoU 30/42 = 0.71, a match at thresholds 0.50 to 0.70, a miss from 0.75
    gt = ground_truth()
    results = results_from(gt)
    results[0] = {**results[0], "bbox": [3, 2, 6, 6]}
    table = precision_table(gt, results, iou_type="bbox")
    assert table.ap(category=1, iou=0.5) == pytest.approx(1.0)
    assert table.ap(category=1, iou=0.75) == 0.0
    assert table.ap(category=1) == pytest.approx(0.5)  # 5 of the 10 thresholds
    summary = table.summary()
    assert summary["AP50"] == pytest.approx(1.0) and summary["AP"] == pytest.approx(0.75)


def test_a_class_with_ground_truth_but_no_match_is_in_the_summary_at_zero() -> None:
    gt = ground_truth()
    results = results_from(gt)
    results[0] = {**results[0], "bbox": [12, 12, 6, 6]}  # the cut box far from the cut: missed
    summary = precision_table(gt, results, iou_type="bbox").summary()
    assert set(summary["per_class"]) == {"cut", "dent"}
    assert summary["per_class"]["cut"] == {"AP": 0.0, "AP50": 0.0}
    assert summary["AP"] == pytest.approx(0.5)


def test_max_det_caps_the_detections_per_image() -> None:
    # ten false cuts outscore the true one: kept (100 a image) the true one is found at precision 1/11;
    # with max_det 10 or 1 it is cut off
    gt = ground_truth()
    results = results_from(gt)
    results[0] = {**results[0], "score": 0.5}
    results += [{**results[0], "bbox": [12, 12, 6, 6], "score": 0.9} for _ in range(10)]
    assert precision_table(gt, results, iou_type="bbox").ap(category=1) == pytest.approx(1 / 11)
    assert precision_table(gt, results, iou_type="bbox", max_det=10).ap(category=1) == 0.0
    assert precision_table(gt, results, iou_type="bbox", max_det=1).ap(category=1) == 0.0


def test_image_ids_restrict_the_images_scored() -> None:
    # the cut (image 1) is missed; scoring image 2 alone leaves only the dent, found
    gt = ground_truth()
    results = results_from(gt)
    results[0] = {**results[0], "bbox": [12, 12, 6, 6]}
    assert precision_table(gt, results, iou_type="bbox").ap() == pytest.approx(0.5)
    table = precision_table(gt, results, iou_type="bbox", image_ids=[2])
    assert table.ap() == pytest.approx(1.0) and list(table.summary()["per_class"]) == ["dent"]


def test_empty_image_ids_score_no_image() -> None:
    # an empty subset is no image, not every image (it read as the default, all of them): no ground
    # truth is scored, so the table is all -1 and no curve is defined
    gt = ground_truth()
    table = precision_table(gt, results_from(gt), iou_type="bbox", image_ids=[])
    assert (table.precision == -1).all()
    assert table.summary()["per_class"] == {}
    assert np.isnan(table.pr_curve()[1]).all()


def test_pr_curve_of_one_class() -> None:
    gt = ground_truth()
    results = results_from(gt)
    results[0] = {**results[0], "bbox": [12, 12, 6, 6]}  # the cut missed, the dent found
    table = precision_table(gt, results, iou_type="bbox")
    assert np.allclose(table.pr_curve(category=1)[1], 0.0)
    assert np.allclose(table.pr_curve(category=2)[1], 1.0)
    assert np.allclose(table.pr_curve()[1], 0.5)  # averaged over both classes


def test_pr_curve_without_ground_truth_is_nan() -> None:
    # the 'hole' class has no true instance, and a split of good images none at all: no curve is
    # defined there (it read precision 0 at every recall point, drawn as a flat line in the report)
    gt = ground_truth()
    table = precision_table(gt, results_from(gt), iou_type="bbox")
    assert np.isnan(table.pr_curve(category=3)[1]).all()
    good_only = {**gt, "annotations": []}
    recall, precision = precision_table(good_only, results_from(gt), iou_type="bbox").pr_curve()
    assert len(recall) == len(precision) == 101 and np.isnan(precision).all()
