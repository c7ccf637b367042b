"""``segmentation.duplicates``: mask NMS on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.duplicates import distinct_masks, mask_ious


def squares(*boxes: tuple[int, int, int, int], size: int = 20) -> np.ndarray:
    masks = np.zeros((len(boxes), size, size), bool)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes, strict=True):
        mask[y1:y2, x1:x2] = True
    return masks


def test_mask_ious_are_intersection_over_union_of_every_pair() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((5, 13, 17)) < 0.4
    masks[4] = False  # an empty mask overlaps nothing
    ious = mask_ious(masks)
    for i in range(5):
        for j in range(5):
            union = (masks[i] | masks[j]).sum()
            expected = (masks[i] & masks[j]).sum() / union if union else 0.0
            assert ious[i, j] == pytest.approx(expected)
    assert mask_ious(masks[:0]).shape == (0, 0)


def test_a_mask_overlapping_a_better_one_of_its_class_above_the_iou_is_dropped() -> None:
    masks = squares((0, 0, 10, 10), (0, 0, 10, 9), (0, 0, 10, 5), (10, 10, 20, 20))
    # IoU with the first: 0.9, 0.5; the last overlaps nothing
    assert distinct_masks(masks, np.zeros(4), 0.7).tolist() == [0, 2, 3]
    assert distinct_masks(masks, np.zeros(4), 0.4).tolist() == [0, 3]
    assert distinct_masks(masks, np.zeros(4), 0.9).tolist() == [0, 1, 2, 3]  # not above: kept
    assert distinct_masks(masks, np.zeros(4), 1.0).tolist() == [0, 1, 2, 3]


def test_masks_of_other_classes_and_dropped_masks_suppress_nothing() -> None:
    masks = squares((0, 0, 10, 10), (0, 0, 10, 10), (0, 0, 10, 8), (0, 0, 10, 6))
    # the second is another class: kept; the third overlaps the first 0.8: dropped; the fourth
    # overlaps the dropped third 0.75 but the first only 0.6: kept
    assert distinct_masks(masks, np.array([0, 1, 0, 0]), 0.7).tolist() == [0, 1, 3]
    assert distinct_masks(masks[:1], np.zeros(1), 0.0).tolist() == [0]
    assert distinct_masks(masks[:0], np.zeros(0), 0.7).tolist() == []


def test_a_mask_is_dropped_by_any_kept_mask_of_its_class_not_only_by_all_of_them() -> None:
    masks = squares((0, 0, 10, 10), (10, 0, 20, 10), (0, 0, 10, 9))
    # the first two are apart, both kept; the third overlaps the first 0.9 and the second not at all
    assert distinct_masks(masks, np.zeros(3), 0.7).tolist() == [0, 1]
