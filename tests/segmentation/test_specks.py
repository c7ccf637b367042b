from __future__ import annotations

import cv2
import numpy as np
import pytest

from segmentation.specks import _box_frame, min_region_area, remove_specks, visible_parts, without_specks


def test_small_islands_and_holes_go_and_large_ones_stay():
    mask = np.zeros((40, 40), bool)
    mask[2:22, 2:22] = True
    mask[10:12, 10:12] = False  # a 4-px hole: filled
    mask[5:9, 15:19] = False  # a 16-px hole: kept
    mask[30, 30] = True  # a 1-px island: dropped
    mask[30:35, 33:38] = True  # a 25-px island: kept
    cleaned = remove_specks(mask, 10)
    assert cleaned.dtype == bool and cleaned[10:12, 10:12].all() and not cleaned[5:9, 15:19].any()
    assert not cleaned[30, 30] and cleaned[30:35, 33:38].all()
    assert cleaned.sum() == mask.sum() + 4 - 1
    assert not mask[10:12, 10:12].any()  # the input is left as it was


def test_a_mask_of_small_islands_keeps_its_largest():
    mask = np.zeros((20, 20), bool)
    mask[1, 1] = True
    mask[10:12, 10:12] = True
    assert np.array_equal(np.argwhere(remove_specks(mask, 100)), np.argwhere(mask[10:12, 10:12]) + 10)


@pytest.mark.parametrize("area", [0, -1])
def test_no_area_leaves_the_mask_alone(area):
    mask = np.random.default_rng(0).random((16, 16)) > 0.5
    assert remove_specks(mask, area) is mask


def test_no_area_returns_the_mask_itself_without_looking_for_regions():
    mask = np.zeros((30, 30), bool)  # a mask away from the photo's edges: a box to work on
    mask[10:12, 10:12] = True
    assert remove_specks(mask, 0) is mask


def test_without_specks_holds_the_masks_once_more_not_twice():
    import tracemalloc

    masks = np.zeros((64, 128, 128), bool)
    for index in range(len(masks)):  # a square with a one-pixel island beside it
        masks[index, 20:60, 20:60] = True
        masks[index, 100, 100] = True
    without_specks(masks[:1], 1, grid=16)  # segment-anything imported before counting
    tracemalloc.start()
    try:
        cleaned = without_specks(masks, 1, grid=16)  # 64 px: the island goes
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cleaned.dtype == bool and cleaned.shape == masks.shape
    assert not cleaned[:, 100, 100].any() and cleaned[:, 20:60, 20:60].all() and masks[:, 100, 100].all()
    # the result plus a mask's worth of work; a list of cleaned masks stacked was twice the masks
    assert peak < 1.5 * masks.nbytes


def test_without_specks_into_out_cleans_in_place_and_gives_the_same_masks():
    masks = np.zeros((3, 40, 40), bool)
    masks[:, 5:30, 5:30] = True
    masks[:, 35, 35] = True  # an island
    masks[1, 15, 15] = False  # a hole in the second
    masks[2] = False  # an empty mask
    expected = without_specks(masks, 1, grid=16)
    assert masks[:, 35, 35][:2].all()  # left as it was without out
    assert without_specks(masks, 1, grid=16, out=masks) is masks
    assert np.array_equal(masks, expected)


def test_min_region_area_is_in_cells_of_the_frames_logits():
    assert min_region_area(16, 512, 256) == 64  # 2 px cells: hazelnut_toy's 512-px photos
    assert min_region_area(16, 1024, 256) == 256
    assert min_region_area(4, 330, 16) == pytest.approx(4 * (330 / 16) ** 2)


def sam_remove_specks(mask: np.ndarray, min_area: float) -> np.ndarray:
    """segment-anything's way on the whole mask: holes, then islands."""
    from segment_anything.utils.amg import remove_small_regions

    mask, _ = remove_small_regions(mask, min_area, mode="holes")
    return remove_small_regions(mask, min_area, mode="islands")[0]


def tied_small_islands(mask: np.ndarray, min_area: float) -> bool:
    """Every island small and two of them the largest: which one stays is the labelling's order."""
    from segment_anything.utils.amg import remove_small_regions

    filled, _ = remove_small_regions(mask, min_area, mode="holes")
    sizes = cv2.connectedComponentsWithStats(filled.view(np.uint8), connectivity=8)[2][1:, cv2.CC_STAT_AREA]
    return len(sizes) > 1 and sizes.max() < min_area and (sizes == sizes.max()).sum() > 1


def test_the_mask_box_gives_segment_anythings_pixels_on_random_masks():
    # rectangles toggled on small photos, some pixels knocked out: islands and holes everywhere,
    # at the photo's edges too, masks spanning the photo, areas from one pixel to the whole photo
    rng = np.random.default_rng(2)
    compared = 0
    for _ in range(3000):
        height, width = rng.integers(2, 40, 2)
        mask = np.zeros((height, width), bool)
        for _ in range(rng.integers(1, 5)):
            y, x = rng.integers(0, height), rng.integers(0, width)
            mask[y : y + rng.integers(1, height + 1), x : x + rng.integers(1, width + 1)] ^= True
        mask &= rng.random((height, width)) > rng.choice([0, 0.05, 0.3])
        area = float(rng.choice([1, 2, 2.5, 4, 9, 16, 30, 100, 1000]))
        if not mask.any() or tied_small_islands(mask, area):
            continue  # segment-anything fills an empty mask on a photo under min_area: ours stays empty
        assert np.array_equal(remove_specks(mask, area), sam_remove_specks(mask, area)), (mask, area)
        compared += 1
    assert compared > 2800


def test_an_empty_mask_stays_empty():
    assert not remove_specks(np.zeros((4, 4), bool), 100).any()


def test_the_photo_below_the_mask_box_counts_in_the_background_around_it():
    # 10 background pixels, most of them below the mask: one region of at least 9, not a hole
    mask = np.zeros((6, 2), bool)
    mask[1:3, 1] = True
    assert np.array_equal(remove_specks(mask, 9), mask)
    assert np.array_equal(sam_remove_specks(mask, 9), mask)


def test_a_small_mask_on_a_large_photo_is_worked_on_in_its_box(monkeypatch):
    # the whole-photo labelling took about 0.5 s per mask on a 4000-px photo
    from segment_anything.utils import amg

    shapes, label = [], amg.remove_small_regions

    def recorded(work, *args, **kwargs):
        shapes.append(work.shape)
        return label(work, *args, **kwargs)

    monkeypatch.setattr(amg, "remove_small_regions", recorded)
    mask = np.zeros((3000, 4000), bool)
    mask[1000:1010, 2000:2030] = True
    (rows, cols), widths = _box_frame(mask, 64)
    assert (rows, cols) == (slice(999, 1011), slice(1999, 2031))
    assert widths == ((2, 2), (6, 6))  # 64 px of background on each side: 2 rows of 32, 6 columns of 12
    assert np.array_equal(remove_specks(mask, 64), mask)
    assert shapes == [(12 + 2 + 2, 32 + 6 + 6)] * 2  # holes, then islands, on the padded box alone


def test_visible_parts_drop_the_rims_a_better_mask_leaves_of_another():
    # a PatchCore region (worst) a little larger than the detector's stain mask (best): a 44-px ring
    stain, region, dot = np.zeros((3, 32, 32), bool)
    stain[10:20, 10:20] = True
    region[9:21, 9:21] = True
    region[22:30, 22:30] = True  # and a 64-px piece of its own, away from the stain
    dot[2, 2] = True  # a tiny mask nothing covers: kept, however small
    parts = visible_parts(np.stack([stain, region, dot]), 50)
    assert np.array_equal(parts[0], stain) and np.array_equal(parts[2], dot)
    assert np.argwhere(parts[1]).min(0).tolist() == [22, 22] and parts[1].sum() == 64  # the ring went
    assert np.array_equal(visible_parts(np.stack([stain, region, dot]), 44)[1], region & ~stain)  # kept
    every = visible_parts(np.stack([stain, region, dot]), 0)  # 0: every piece, the painter's order
    assert np.array_equal(every[1], region & ~stain) and np.array_equal(every[0], stain)


def test_pixels_of_a_better_masks_dropped_piece_go_to_the_next_mask():
    best, middle, worst = np.zeros((3, 20, 20), bool)
    best[0:10, 0:10] = True
    middle[0:10, 0:11] = True  # leaves a 10-px column beside the best: dropped at 12
    worst[0:10, 10:12] = True  # claims that column (and one more) once the middle lets it go
    parts = visible_parts(np.stack([best, middle, worst]), 12)
    assert not parts[1].any()
    assert np.array_equal(parts[2], worst)  # touched by nothing that is shown: whole
    assert parts.sum(0).max() == 1  # every pixel shows one mask at most


def test_a_piece_joined_to_a_better_mask_of_its_class_is_kept_as_it_joins_that_instance():
    best, other = np.zeros((2, 20, 20), bool)
    best[5:15, 5:15] = True
    other[5:15, 4:15] = True  # a 10-px column left of the best one
    same = visible_parts(np.stack([best, other]), 50, classes=["stain", "stain"])
    assert np.array_equal(same[1], other & ~best)  # one stain instance when converted: kept
    apart = visible_parts(np.stack([best, other]), 50, classes=["stain", "scratch"])
    assert not apart[1].any()  # a 10-px scratch instance of its own: dropped


def test_the_pieces_left_are_measured_8_connected_as_the_converters_split_them():
    best, other = np.zeros((2, 24, 24), bool)
    best[0:10, 0:10] = True
    other[0:10, 0:10] = True  # covered by the best one
    for i in range(10):
        other[10 + i, 10 + i] = True  # a diagonal line: one 10-px instance when converted, not ten
    parts = visible_parts(np.stack([best, other]), 10)
    assert np.array_equal(parts[1], other & ~best)
    assert not visible_parts(np.stack([best, other]), 11)[1].any()


def test_visible_parts_refuse_a_class_list_of_another_length():
    with pytest.raises(ValueError):
        visible_parts(np.zeros((2, 4, 4), bool), 4, classes=["stain"])
