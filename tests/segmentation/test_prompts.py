from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segmentation.prompts import (
    PAD_LABEL,
    Prompt,
    PromptConfig,
    corrective_click,
    jitter_box,
    mask_to_box,
    sample_negative_points,
    sample_positive_points,
    sample_prompt,
    stack_prompts,
)


def m(rows: list[str]) -> np.ndarray:
    """A bool mask from strings: '#' is mask, '.' background."""
    return np.array([[c == "#" for c in row] for row in rows])


def pixels_at(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pixels under xy points: floor of the coordinates."""
    cols, rows = np.floor(points).astype(int).T
    return rows, cols


@st.composite
def masks(draw, min_side: int = 1, max_side: int = 24) -> np.ndarray:
    """Non-empty random bool masks of random, often non-square, shapes."""
    shape = (draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side)))
    mask = draw(arrays(bool, shape, elements=st.booleans()))
    if not mask.any():
        mask[draw(st.integers(0, shape[0] - 1)), draw(st.integers(0, shape[1] - 1))] = True
    return mask


seeds = st.integers(0, 2**32 - 1)
fast = settings(max_examples=60, deadline=None)


# -- boxes


@pytest.mark.parametrize(
    ("rows", "box"),
    [
        (["....", "....", "...#", "...."], [3, 2, 4, 3]),  # one pixel
        (["#"], [0, 0, 1, 1]),  # one pixel filling the image
        (["......", "....##", "....##"], [4, 1, 6, 3]),  # touching the right and bottom border
        (["#.....", "......", ".....#"], [0, 0, 6, 3]),  # two corners of a non-square image
    ],
)
def test_mask_to_box_is_tight_with_exclusive_max(rows, box):
    np.testing.assert_array_equal(mask_to_box(m(rows)), box)


def test_mask_to_box_of_empty_mask_is_an_error():
    with pytest.raises(ValueError):
        mask_to_box(np.zeros((3, 4), bool))


@fast
@given(mask=masks())
def test_box_contains_every_mask_pixel_and_is_tight(mask):
    x1, y1, x2, y2 = mask_to_box(mask)
    rows, cols = np.nonzero(mask)
    assert (cols >= x1).all() and (cols + 1 <= x2).all() and (rows >= y1).all() and (rows + 1 <= y2).all()
    # tight: every edge of the box touches a mask pixel
    assert cols.min() == x1 and cols.max() + 1 == x2 and rows.min() == y1 and rows.max() + 1 == y2


@fast
@given(
    mask=masks(),
    seed=seeds,
    fraction=st.floats(0.0, 3.0),
    max_px=st.floats(0.0, 50.0),
)
def test_jittered_box_stays_inside_the_image_and_valid(mask, seed, fraction, max_px):
    height, width = mask.shape
    box = jitter_box(
        mask_to_box(mask),
        image_size=mask.shape,
        rng=np.random.default_rng(seed),
        fraction=fraction,
        max_px=max_px,
    )
    x1, y1, x2, y2 = box
    assert box.shape == (4,) and box.dtype == float
    assert 0 <= x1 and x2 <= width and 0 <= y1 and y2 <= height
    assert x2 - x1 >= 1 - 1e-9 and y2 - y1 >= 1 - 1e-9


def test_jitter_noise_is_a_fraction_of_the_side_and_capped():
    rng = np.random.default_rng(0)
    box = np.array([100.0, 100.0, 200.0, 150.0])  # 100 wide, 50 high, far from the border
    shifts = np.array([jitter_box(box, image_size=(400, 400), rng=rng) for _ in range(4000)]) - box
    np.testing.assert_allclose(shifts.std(axis=0), [10, 5, 10, 5], rtol=0.1)  # 10 % of the side
    big = np.array([0.0, 0.0, 1000.0, 1000.0])
    shifts = np.array([jitter_box(big, image_size=(1000, 1000), rng=rng) for _ in range(500)]) - big
    assert np.abs(shifts).max() <= 20.0  # std 100 px, capped at 20 px
    assert np.abs(shifts).max() > 19.0


@pytest.mark.parametrize("kwargs", [{"fraction": 0.0}, {"max_px": 0.0}])
def test_jitter_without_noise_keeps_the_box(kwargs):
    box = np.array([3.0, 2.0, 7.0, 5.0])
    np.testing.assert_array_equal(
        jitter_box(box, image_size=(6, 9), rng=np.random.default_rng(0), **kwargs), box
    )


# -- points


@fast
@given(mask=masks(), seed=seeds, n=st.integers(0, 6))
def test_positive_points_lie_on_distinct_mask_pixels(mask, seed, n):
    points = sample_positive_points(mask, n, np.random.default_rng(seed))
    assert points.shape == (min(n, mask.sum()), 2)
    rows, cols = pixels_at(points)
    assert mask[rows, cols].all()
    np.testing.assert_array_equal(points % 1, 0.5)  # pixel centres
    assert len({(r, c) for r, c in zip(rows, cols, strict=True)}) == len(points)


@fast
@given(mask=masks(), seed=seeds, n=st.integers(0, 6), margin=st.floats(0.0, 1.0))
def test_negative_points_lie_on_distinct_background_pixels(mask, seed, n, margin):
    points = sample_negative_points(mask, n, np.random.default_rng(seed), margin=margin)
    assert points.shape == (min(n, (~mask).sum()), 2)
    rows, cols = pixels_at(points)
    assert (
        (rows >= 0).all()
        and (rows < mask.shape[0]).all()
        and (cols >= 0).all()
        and (cols < mask.shape[1]).all()
    )
    assert not mask[rows, cols].any()
    assert len({(r, c) for r, c in zip(rows, cols, strict=True)}) == len(points)


def test_negatives_stay_near_the_mask_then_top_up_from_anywhere():
    mask = np.zeros((60, 80), bool)
    mask[20:30, 30:50] = True  # 20 wide, 10 high: grown by 10 % -> cols 28..51, rows 19..30
    ring = 24 * 12 - 20 * 10
    points = sample_negative_points(mask, ring, np.random.default_rng(0), margin=0.1)
    rows, cols = pixels_at(points)
    assert len(points) == ring  # every pixel of the ring, none beyond it
    assert cols.min() == 28 and cols.max() == 51 and rows.min() == 19 and rows.max() == 30
    points = sample_negative_points(mask, ring + 12, np.random.default_rng(0), margin=0.1)
    rows, cols = pixels_at(points[ring:])
    assert len(points) == ring + 12
    assert ((cols < 28) | (cols > 51) | (rows < 19) | (rows > 30)).all()


def test_near_ring_takes_every_pixel_the_grown_box_partly_covers():
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True  # grown by 1.5 px: [8.5, 21.5) touches cols and rows 8..21
    ring = np.zeros_like(mask)
    ring[8:22, 8:22] = True
    ring &= ~mask
    points = sample_negative_points(mask, int(ring.sum()), np.random.default_rng(0), margin=0.15)
    drawn = np.zeros_like(mask)
    drawn[pixels_at(points)] = True
    np.testing.assert_array_equal(drawn, ring)


def test_negatives_fall_back_to_anywhere_outside_the_mask():
    mask = m(["###.", "###.", "###."])  # fills its box, touches three borders: with margin 0 no ring
    points = sample_negative_points(mask, 5, np.random.default_rng(0), margin=0.0)
    rows, cols = pixels_at(points)
    assert len(points) == 3 and (cols == 3).all()
    assert sample_negative_points(np.ones((2, 3), bool), 4, np.random.default_rng(0)).shape == (0, 2)


def test_empty_mask_has_no_positives():
    assert sample_positive_points(np.zeros((3, 5), bool), 3, np.random.default_rng(0)).shape == (0, 2)


# -- sample_prompt

configs = st.builds(
    PromptConfig,
    p_box=st.floats(0.0, 1.0),
    n_positive=st.integers(1, 4),
    n_negative=st.integers(0, 4),
    negative_margin=st.floats(0.0, 0.5),
    box_and_points=st.floats(0.0, 1.0),
)


@fast
@given(mask=masks(), config=configs, seed=seeds)
def test_sampled_prompts_are_valid(mask, config, seed):
    prompt = sample_prompt(mask, config, np.random.default_rng(seed))
    height, width = mask.shape
    if prompt.box is not None:
        x1, y1, x2, y2 = prompt.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    if prompt.points is not None:
        positives, negatives = prompt.points[prompt.labels == 1], prompt.points[prompt.labels == 0]
        assert len(positives) + len(negatives) == len(prompt.points)
        assert 1 <= len(positives) <= config.n_positive
        assert len(negatives) <= config.n_negative
        if config.n_negative and (~mask).any():
            assert len(negatives) >= 1
        assert mask[pixels_at(positives)].all()
        assert not mask[pixels_at(negatives)].any()


@fast
@given(mask=masks(), config=configs, seed=seeds)
def test_sampling_is_deterministic_for_a_seed(mask, config, seed):
    a = sample_prompt(mask, config, np.random.default_rng(seed))
    b = sample_prompt(mask, config, np.random.default_rng(seed))
    assert a.kind == b.kind
    for field in ("box", "points", "labels"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_point_counts_range_from_one_to_the_configured_most():
    mask = square((20, 20), 5, 5, 8)
    config = PromptConfig(p_box=0.0, n_positive=3, n_negative=3)
    rng = np.random.default_rng(0)
    prompts = [sample_prompt(mask, config, rng) for _ in range(200)]
    assert {int((p.labels == 1).sum()) for p in prompts} == {1, 2, 3}
    assert {int((p.labels == 0).sum()) for p in prompts} == {1, 2, 3}


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        (PromptConfig(p_box=1.0), "box"),
        (PromptConfig(p_box=0.0), "points"),
        (PromptConfig(p_box=0.0, box_and_points=1.0), "box+points"),
    ],
)
def test_prompt_kind_follows_the_config(config, kind):
    mask = m(["....", ".##.", "...."])
    assert sample_prompt(mask, config, np.random.default_rng(0)).kind == kind


def test_kind_frequencies_follow_the_probabilities():
    mask = m(["....", ".##.", "...."])
    rng = np.random.default_rng(0)
    config = PromptConfig(p_box=0.5, box_and_points=0.2)
    kinds = [sample_prompt(mask, config, rng).kind for _ in range(3000)]
    assert kinds.count("box+points") / 3000 == pytest.approx(0.2, abs=0.03)
    assert kinds.count("box") / 3000 == pytest.approx(0.8 * 0.5, abs=0.03)


@pytest.mark.parametrize(
    "rows",
    [
        ["#"],  # one pixel filling the image
        [".....", "..#..", "....."],  # one pixel
        ["##########"],  # one row, mask touching every border
        ["........#", "........#"],  # touching the right border, non-square
        ["#..", "...", "...", "...", "..."],  # tall image, corner pixel
    ],
)
def test_edge_case_masks_give_valid_prompts(rows):
    mask = m(rows)
    rng = np.random.default_rng(0)
    config = PromptConfig(n_positive=3, n_negative=3, box_and_points=1.0, box_jitter=0.5)
    for _ in range(20):
        prompt = sample_prompt(mask, config, rng)
        x1, y1, x2, y2 = prompt.box
        assert 0 <= x1 < x2 <= mask.shape[1] and 0 <= y1 < y2 <= mask.shape[0]
        assert (mask[pixels_at(prompt.points)] == (prompt.labels == 1)).all()


def test_empty_mask_cannot_be_prompted():
    with pytest.raises(ValueError, match="cannot prompt for an empty mask"):
        sample_prompt(np.zeros((4, 4), bool), PromptConfig(), np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p_box": 1.5},
        {"box_and_points": -0.1},
        {"n_positive": 0},
        {"n_negative": -1},
        {"box_jitter": -1},
        {"max_jitter_px": float("nan")},
        {"n_positive": 1.5},  # a count, not a number
        {"p_box": True},  # a YAML boolean is not a probability
    ],
)
def test_bad_config_is_an_error_naming_the_field(kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=f"'{name}'"):
        PromptConfig(**kwargs)


# -- stacking


def test_stack_pads_points_with_not_a_point_labels():
    a = Prompt(points=np.array([[1.5, 2.5]]), labels=np.array([1]))
    b = Prompt(points=np.array([[0.5, 0.5], [3.5, 1.5]]), labels=np.array([1, 0]))
    batch = stack_prompts([a, b])
    assert batch.boxes is None and batch.points.shape == (2, 2, 2)
    np.testing.assert_array_equal(batch.labels, [[1, PAD_LABEL], [1, 0]])
    np.testing.assert_array_equal(batch.points[1], b.points)


def test_stack_boxes():
    boxes = [np.array([0.0, 0.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0, 4.0])]
    batch = stack_prompts([Prompt(box=box) for box in boxes])
    np.testing.assert_array_equal(batch.boxes, boxes)
    assert batch.points is None and batch.labels is None


def test_stack_refuses_mixed_kinds():
    with pytest.raises(ValueError, match="kinds"):
        stack_prompts(
            [Prompt(box=np.zeros(4) + [0, 0, 1, 1]), Prompt(points=np.zeros((1, 2)), labels=np.ones(1))]
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # nothing
        {"points": np.zeros((2, 2))},  # points without labels
        {"points": np.zeros((2, 2)), "labels": np.ones(3)},  # counts differ
        {"box": np.zeros(3)},  # not xyxy
    ],
)
def test_malformed_prompt_is_an_error(kwargs):
    with pytest.raises(ValueError):
        Prompt(**kwargs)


# -- corrective clicks


def square(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_click_on_missed_region_is_positive_and_deep_inside_it():
    gt = square((20, 30), 2, 2, 15)
    pred = gt & ~square((20, 30), 4, 4, 7)  # a 7x7 hole missed, centre (row 7, col 7)
    point, label = corrective_click(gt, pred)
    assert label == 1
    np.testing.assert_array_equal(point, [7.5, 7.5])


def test_click_on_extra_region_is_negative_and_deep_inside_it():
    gt = square((20, 30), 2, 2, 5)
    extra = square((20, 30), 8, 18, 9)  # a 9x9 false positive, centre (row 12, col 22)
    point, label = corrective_click(gt, gt | extra)
    assert label == 0
    np.testing.assert_array_equal(point, [22.5, 12.5])


def test_perfect_prediction_needs_no_click():
    gt = square((5, 7), 1, 1, 3)
    assert corrective_click(gt, gt.copy()) is None
    assert corrective_click(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) is None


def test_deeper_error_wins_over_a_thin_wide_one():
    gt = square((40, 40), 5, 5, 30)
    pred = gt.copy()
    pred[5, 5:35] = False  # 30-px one-pixel sliver missed along the top edge
    pred[36:39, 2:5] = True  # 3x3 false-positive blob: smaller in area, deeper
    point, label = corrective_click(gt, pred)
    assert label == 0
    np.testing.assert_array_equal(point, [3.5, 37.5])


def test_equally_deep_errors_go_to_the_larger_area_then_to_the_miss():
    gt = square((20, 40), 2, 2, 3)
    gt[10:13, 2:12] = True  # a 3x10 strip missed, as deep as the 3x3 false positive
    pred = square((20, 40), 2, 2, 3) | square((20, 40), 2, 30, 3)
    assert corrective_click(gt, pred)[1] == 1
    assert corrective_click(pred, gt)[1] == 0
    gt = square((20, 40), 2, 2, 3)  # a 3x3 miss and a 3x3 false positive: a tie goes to the miss
    pred = square((20, 40), 2, 30, 3)
    assert corrective_click(gt, pred)[1] == 1
    assert corrective_click(pred, gt)[1] == 1


def test_click_avoids_the_image_border():
    gt = np.ones((5, 9), bool)  # the whole image, missed entirely
    point, label = corrective_click(gt, np.zeros_like(gt))
    assert label == 1
    # the middle row, 3 px from every edge: cols 2..6 (first of them without an rng)
    np.testing.assert_array_equal(point, [2.5, 2.5])


def test_one_pixel_miss():
    gt = m(["...", ".#.", "..."])
    point, label = corrective_click(gt, np.zeros_like(gt))
    np.testing.assert_array_equal(point, [1.5, 1.5])
    assert label == 1


def test_click_tie_break_uses_the_rng():
    gt = np.ones((1, 8), bool)  # every pixel is equally deep (1 px from the padded border)
    pred = np.zeros_like(gt)
    seen = {float(corrective_click(gt, pred, np.random.default_rng(seed))[0][0]) for seed in range(40)}
    assert len(seen) > 1
    assert corrective_click(gt, pred)[0][0] == 0.5  # no rng: first in row-major order


@fast
@given(gt=masks(max_side=16), seed=seeds, data=st.data())
def test_click_lies_in_the_error_region_it_labels(gt, seed, data):
    pred = data.draw(arrays(bool, gt.shape, elements=st.booleans()))
    click = corrective_click(gt, pred, np.random.default_rng(seed))
    if (gt == pred).all():
        assert click is None
        return
    point, label = click
    (row,), (col,) = pixels_at(point[None])
    if label == 1:
        assert gt[row, col] and not pred[row, col]
    else:
        assert pred[row, col] and not gt[row, col]


def test_click_shapes_must_match():
    with pytest.raises(ValueError, match=r"gt \(3, 4\) and pred \(4, 3\) differ in shape"):
        corrective_click(np.zeros((3, 4), bool), np.zeros((4, 3), bool))
