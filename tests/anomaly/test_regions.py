"""Anomaly map -> regions -> instance masks, with and without SAM."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from anomaly.masks import Instances, Segmenter, fill_parts, mask_parts
from anomaly.regions import check_threshold, map_regions
from common.errors import UserError
from tests.segmentation.conftest import build_tiny_sam


def two_blobs() -> np.ndarray:
    anomaly_map = np.zeros((10, 12))
    anomaly_map[1:4, 1:4] = 2.0  # 3 x 3 blob, peak 2
    anomaly_map[6:8, 8:12] = 3.0  # 2 x 4 blob touching the right border, peak 3
    anomaly_map[0, 11] = 5.0  # a one-pixel speck
    return anomaly_map


def test_regions_are_components_with_edge_boxes_highest_peak_first() -> None:
    regions = map_regions(two_blobs(), 1.5)
    assert [(r.box.tolist(), r.area, r.peak) for r in regions] == [
        ([11.0, 0.0, 12.0, 1.0], 1, 5.0),
        ([8.0, 6.0, 12.0, 8.0], 8, 3.0),
        ([1.0, 1.0, 4.0, 4.0], 9, 2.0),
    ]
    assert regions[2].full_mask().sum() == 9 and regions[2].full_mask()[1:4, 1:4].all()


def labelled(anomaly_map: np.ndarray, threshold: float) -> np.ndarray:
    """The map's 8-connected components, labelled 1, 2, ... (0: below ``threshold``)."""
    return cv2.connectedComponents((anomaly_map >= threshold).astype(np.uint8), connectivity=8)[1]


def ring_around_a_dot() -> np.ndarray:
    """A 7 x 7 ring around a one-pixel dot: the dot lies inside the ring's box, not 8-connected to it."""
    anomaly_map = np.zeros((9, 9))
    anomaly_map[1:8, 1:8] = 2.0
    anomaly_map[2:7, 2:7] = 0.0
    anomaly_map[4, 4] = 3.0
    return anomaly_map


def test_a_region_holds_its_boxs_pixels_alone() -> None:
    # a map-sized mask per region: 100 regions of a 12 MP map held 1.2 GB, each made from the whole map
    for region in map_regions(two_blobs(), 1.5):
        x1, y1, x2, y2 = region.box.astype(int)
        assert region.crop.shape == (y2 - y1, x2 - x1) and region.image_shape == (10, 12)
        assert region.crop.sum() == region.area


@pytest.mark.parametrize(
    ("anomaly_map", "threshold", "min_area", "expected"),
    [
        # touching the borders: corners and a full-width bottom row
        (np.pad(np.ones((1, 1)), ((0, 4), (0, 4))), 0.5, 1, [([0.0, 0.0, 1.0, 1.0], 1, 1.0)]),
        (two_blobs(), 1.5, 1, [([11, 0, 12, 1], 1, 5.0), ([8, 6, 12, 8], 8, 3.0), ([1, 1, 4, 4], 9, 2.0)]),
        (np.vstack([np.zeros((3, 5)), np.full((1, 5), 2.0)]), 1.0, 1, [([0, 3, 5, 4], 5, 2.0)]),
        # a ring around a dot: the ring's box holds the dot, which is not the ring's
        (ring_around_a_dot(), 1.0, 1, [([4, 4, 5, 5], 1, 3.0), ([1, 1, 8, 8], 24, 2.0)]),
        (ring_around_a_dot(), 1.0, 2, [([1, 1, 8, 8], 24, 2.0)]),
        # two L shapes whose boxes overlap, 4-apart (8-connected: apart by a pixel)
        (np.array([[2, 2, 2, 0, 0], [2, 0, 0, 0, 3], [0, 0, 3, 3, 3.0]]), 1.0, 1,
         [([2, 1, 5, 3], 4, 3.0), ([0, 0, 3, 2], 4, 2.0)]),
        # diagonal neighbours: one region
        (np.fliplr(np.eye(4)) * 2, 1.0, 4, [([0, 0, 4, 4], 4, 2.0)]),
        (np.fliplr(np.eye(4)) * 2, 1.0, 5, []),
    ],
)  # fmt: skip
def test_regions_on_hand_made_maps_are_the_maps_components(
    anomaly_map: np.ndarray, threshold: float, min_area: int, expected: list
) -> None:
    regions = map_regions(anomaly_map, threshold, min_area=min_area)
    assert [(r.box.tolist(), r.area, r.peak) for r in regions] == expected
    labels = labelled(anomaly_map, threshold)
    for region in regions:
        [label] = np.unique(labels[region.full_mask()])
        assert np.array_equal(region.full_mask(), labels == label)  # its pixels, and only its
        assert np.array_equal(region.crop, (labels == label)[region.window])


def test_regions_of_random_maps_are_the_maps_components() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        anomaly_map = rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 30))))
        regions = map_regions(anomaly_map, 0.7, min_area=2)
        labels = labelled(anomaly_map, 0.7)
        kept = [label for label in range(1, labels.max() + 1) if (labels == label).sum() >= 2]
        assert sorted(r.full_mask().tobytes() for r in regions) == sorted(
            (labels == label).tobytes() for label in kept
        )
        for region in regions:
            assert region.peak == anomaly_map[region.full_mask()].max()


def test_min_area_drops_specks_and_threshold_is_inclusive() -> None:
    assert [r.area for r in map_regions(two_blobs(), 2.0, min_area=2)] == [8, 9]
    assert map_regions(two_blobs(), 5.0001) == []


def test_a_threshold_past_float32s_range_flags_nothing_without_an_overflow_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy cast 1e300 to the float32 map's inf, with a RuntimeWarning
        assert map_regions(two_blobs().astype(np.float32), 1e300) == []
    assert len(map_regions(two_blobs().astype(np.float32), 1.5)) == 3


def test_diagonal_neighbours_are_one_region() -> None:
    anomaly_map = np.eye(4)  # 8-connected: one diagonal line
    [region] = map_regions(anomaly_map, 0.5)
    assert region.area == 4 and region.box.tolist() == [0.0, 0.0, 4.0, 4.0]


def test_without_sam_the_regions_are_the_masks() -> None:
    image = np.zeros((10, 12, 3), np.uint8)
    regions = map_regions(two_blobs(), 1.5, min_area=2)
    instances = Segmenter()(image, regions)
    assert instances.masks.shape == (2, 10, 12) and instances.scores.tolist() == [3.0, 2.0]
    assert np.array_equal(instances.masks[1], regions[1].full_mask()) and instances.mask_scores.tolist() == [
        1.0,
        1.0,
    ]
    empty = Segmenter()(image, [])
    assert empty.masks.shape == (0, 10, 12) and empty.boxes.shape == (0, 4)


def test_sam_outlines_each_box_and_never_loses_a_region() -> None:
    # a random tiny SAM: its masks mean nothing (specks everywhere: none reaches min_area, so none is
    # split), but each box gets one full-size mask, and a box where SAM finds nothing keeps the map's
    # own region
    image = np.random.default_rng(0).integers(0, 255, (40, 48, 3), np.uint8)
    anomaly_map = np.zeros((40, 48))
    anomaly_map[5:15, 5:20] = 1.0
    anomaly_map[25:35, 30:45] = 2.0
    regions = map_regions(anomaly_map, 0.5)
    instances = Segmenter(build_tiny_sam(), "tiny")(image, regions, min_area=40 * 48)
    assert instances.masks.shape == (2, 40, 48) and instances.mask_scores.shape == (2,)
    assert all(mask.any() for mask in instances.masks)
    assert instances.boxes.tolist() == [[30.0, 25.0, 45.0, 35.0], [5.0, 5.0, 20.0, 15.0]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, None),  # every pixel, on purpose: maps are distances, >= 0
        (2.5, None),
        (-5.0, "--threshold must be >= 0 .*got -5.0"),  # was accepted: every pixel flagged
        (-0.5, "--threshold must be >= 0 .*got -0.5"),
        (float("nan"), "--threshold must be a finite number, got nan"),  # no pixel flagged
        (float("inf"), "--threshold must be a finite number, got inf"),
    ],
)
def test_check_threshold(value: float, expected: str | None) -> None:
    if expected is None:
        assert check_threshold(value, "--threshold") == value
    else:
        with pytest.raises(UserError, match=expected):
            check_threshold(value, "--threshold")


def test_a_regions_peak_is_its_highest_value_not_its_mean() -> None:
    anomaly_map = np.zeros((6, 6), np.float32)
    anomaly_map[1:4, 1:4] = 2.0
    anomaly_map[2, 2] = 9.0
    (region,) = map_regions(anomaly_map, 1.0)
    assert region.peak == 9.0 and region.area == 9


def outline_in_pieces() -> np.ndarray:
    """One 12 x 16 mask: a 3 x 4 part, a 2 x 5 part, and a one-pixel speck."""
    mask = np.zeros((12, 16), bool)
    mask[1:4, 1:5] = True  # 12 pixels
    mask[8:10, 10:15] = True  # 10 pixels
    mask[6, 0] = True
    return mask


def split_parts(instances: Instances, min_area: int) -> Instances:
    """Each of ``instances``' masks as its parts (:func:`anomaly.masks.mask_parts`), filled in."""
    parts = [
        part
        for index, (mask, box) in enumerate(zip(instances.masks, instances.boxes, strict=True))
        for part in mask_parts(mask, box, index=index, min_area=min_area)
    ]
    return fill_parts(parts, instances.masks.shape[1:], instances.scores, instances.mask_scores)


def test_an_outline_in_pieces_becomes_one_instance_per_part_with_its_own_box() -> None:
    lone = np.zeros((12, 16), bool)
    lone[5:7, 5:7] = True
    masks = np.stack([outline_in_pieces(), lone])
    instances = Instances(
        masks, np.array([[0.0, 0, 16, 12], [4, 4, 8, 8]]), np.array([3.0, 2.0]), np.array([0.9, 0.8])
    )
    parts = split_parts(instances, min_area=2)
    assert parts.boxes.tolist() == [[1.0, 1.0, 5.0, 4.0], [10.0, 8.0, 15.0, 10.0], [4.0, 4.0, 8.0, 8.0]]
    assert [int(m.sum()) for m in parts.masks] == [12, 10, 4]  # the speck dropped, largest part first
    assert parts.scores.tolist() == [3.0, 3.0, 2.0] and parts.mask_scores.tolist() == pytest.approx(
        [0.9, 0.9, 0.8]
    )
    assert np.array_equal(parts.masks[2], lone)
    assert split_parts(instances, min_area=1).masks.shape[0] == 4  # the speck is a part of its own


def test_an_outline_with_one_part_over_min_area_stays_whole_with_its_box() -> None:
    mask = outline_in_pieces()
    instances = Instances(mask[None], np.array([[0.0, 0, 16, 12]]), np.ones(1), np.ones(1))
    whole = split_parts(instances, min_area=11)
    assert whole.boxes.tolist() == [[0.0, 0.0, 16.0, 12.0]] and np.array_equal(whole.masks[0], mask)
    assert np.array_equal(split_parts(instances, min_area=13).masks[0], mask)  # no part: whole too
    empty = np.zeros((1, 12, 16), bool)
    assert not split_parts(Instances(empty, instances.boxes, np.ones(1), np.ones(1)), 1).masks.any()


def test_a_whole_outline_keeps_the_pixels_it_spans_and_is_cut_as_bool(monkeypatch) -> None:
    # a float32 copy of each mask was made to cut it into parts; a whole outline is held as the rows and
    # columns its pixels span until the instances' masks are filled in, not as a photo-sized mask
    import anomaly.masks

    cut = []

    def recorded(anomaly_map, threshold, *, min_area=1):  # noqa: ANN001, ANN202
        cut.append(anomaly_map.dtype)
        return map_regions(anomaly_map, threshold, min_area=min_area)

    monkeypatch.setattr(anomaly.masks, "map_regions", recorded)
    [whole] = mask_parts(outline_in_pieces(), np.array([0.0, 0, 16, 12]), index=0, min_area=11)
    assert whole.window == (slice(1, 10), slice(0, 15)) and whole.crop.shape == (9, 15)
    assert len(mask_parts(outline_in_pieces(), np.array([0.0, 0, 16, 12]), index=0, min_area=2)) == 2
    assert cut == [np.dtype(bool), np.dtype(bool)]


def test_sam_outlines_in_pieces_are_split_at_the_segmenters_min_area(monkeypatch) -> None:
    import segmentation.embeddings
    import segmentation.predict

    def outline(sam, embedding, boxes, mask_input=None):  # logits: +1 on the outline, -1 elsewhere
        return np.where(outline_in_pieces(), 1.0, -1.0)[None].astype(np.float32), np.array([0.7], np.float32)

    monkeypatch.setattr(segmentation.embeddings, "embed_images", lambda sam, images: [None])
    monkeypatch.setattr(segmentation.predict, "box_logits", outline)
    anomaly_map = np.zeros((12, 16))
    anomaly_map[2:9, 2:12] = 1.0
    image = np.zeros((12, 16, 3), np.uint8)
    sam = SimpleNamespace(mask_threshold=0.0, device="cpu")
    instances = Segmenter(sam, "fake")(image, map_regions(anomaly_map, 0.5), min_area=2)
    assert [int(m.sum()) for m in instances.masks] == [12, 10]
    assert Segmenter(sam, "fake")(image, map_regions(anomaly_map, 0.5)).masks.shape[0] == 3


def test_region_boxes_are_float() -> None:
    [region] = map_regions(np.eye(3), 0.5)
    assert region.box.dtype == np.float64 and region.box.tolist() == [0.0, 0.0, 3.0, 3.0]


def test_the_parts_masks_are_held_once() -> None:
    import tracemalloc

    # two outlines of 20 dots each (40 parts) and one whole outline: 41 masks of 300 x 400
    masks = np.zeros((3, 300, 400), bool)
    for dot in range(20):
        masks[0, 10 + dot * 14, 10:20] = masks[1, 10:20, 10 + dot * 19] = True
    masks[2, 100:200, 100:200] = True
    instances = Instances(masks, np.zeros((3, 4)), np.arange(3.0), np.ones(3))
    tracemalloc.start()
    parts = split_parts(instances, min_area=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert parts.masks.shape == (41, 300, 400) and parts.scores.tolist() == [0.0] * 20 + [1.0] * 20 + [2.0]
    assert [int(m.sum()) for m in parts.masks] == [10] * 40 + [10_000]
    assert np.array_equal(parts.masks[40], masks[2]) and parts.boxes[40].tolist() == [0.0, 0.0, 0.0, 0.0]
    # a list of the part masks, then stacked: the parts twice (9.8 MB); now once (4.9 MB) and their boxes
    assert peak < 1.25 * parts.masks.nbytes
