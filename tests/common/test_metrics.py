"""Tests for common.metrics: pixel AUROC, AUPRO, F1max, per-image IoU and Dice."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from common.metrics import (
    FPR_LIMIT,
    MeanIouDice,
    _defect_regions,
    _pixel_scores,
    _pro_curve,
    _stable_order,
    _trapezoid,
    aupro,
    auroc,
    boundary_iou,
    f1_max,
    mask_boundary,
    mean_iou_dice,
    mean_std,
    per_image_iou_dice,
    pixel_auroc,
    pixel_f1_max,
    pixel_figures,
    pixel_roc_curve,
    pro_curve,
)


def m(rows: list[str]) -> np.ndarray:
    """A mask from strings: '#' is defect, '.' background."""
    return np.array([[c == "#" for c in row] for row in rows], bool)


def two_images() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two images of different sizes: a 4-pixel region scored 0.9/0.5, a 1-pixel region scored 0.1.

    Normal pixels: 0.7 once, 0.5 once (a tie with defect pixels), 0.1 seven times (a tie with the
    1-pixel region).
    """
    map_a = np.array([[0.9, 0.9, 0.1, 0.1], [0.5, 0.5, 0.1, 0.7]])
    mask_a = m(["##..", "##.."])
    map_b = np.array([[0.1, 0.1, 0.1], [0.1, 0.1, 0.5]])
    mask_b = m(["#..", "..."])
    return [map_a, map_b], [mask_a, mask_b]


def area(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2)


def pairwise_auroc(maps, masks) -> float:
    """AUROC by its definition: over all (defect, normal) pixel pairs, wins plus half the ties."""
    scores = np.concatenate([np.asarray(a, np.float32).ravel() for a in maps])
    truth = np.concatenate([np.asarray(k).ravel() for k in masks])
    pos, neg = scores[truth][:, None], scores[~truth][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def reference_aupro(maps, masks, fpr_limit: float) -> float:
    """anomalib's ``_AUPRO.compute_pro`` + ``compute``, one threshold at a time.

    Every distinct score is a threshold (pixels >= it flagged); FPR over all normal pixels; overlap
    averaged over the 8-connected regions of all masks; curve from (0, 0), cut at the last point with
    FPR <= limit plus one interpolated at the limit; trapezoid area / last FPR.
    """
    maps = [np.asarray(a, np.float32) for a in maps]
    regions = []
    for i, mask in enumerate(masks):
        count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        regions += [(i, labels == r) for r in range(1, count)]
    n_normal = sum(int((~k).sum()) for k in masks)
    fpr, pro = [0.0], [0.0]
    for t in np.unique(np.concatenate([a.ravel() for a in maps]))[::-1]:
        flagged = [a >= t for a in maps]
        fpr.append(sum(int((f & ~k).sum()) for f, k in zip(flagged, masks, strict=True)) / n_normal)
        pro.append(float(np.mean([(flagged[i] & r).sum() / r.sum() for i, r in regions])))
    fpr, pro = np.array(fpr), np.array(pro)
    i = np.flatnonzero(fpr <= fpr_limit)[-1]
    if fpr[i] < fpr_limit and i + 1 < len(fpr):
        p = pro[i] + (pro[i + 1] - pro[i]) * (fpr_limit - fpr[i]) / (fpr[i + 1] - fpr[i])
        fpr, pro = np.r_[fpr[: i + 1], fpr_limit], np.r_[pro[: i + 1], p]
    else:
        fpr, pro = fpr[: i + 1], pro[: i + 1]
    return area(fpr, pro) / fpr[-1]


@st.composite
def maps_and_masks(draw, max_images: int = 3, max_side: int = 6):
    """1-3 images of 1x1 to 6x6, integer scores 0..5 (many ties), random masks with both classes."""
    maps, masks = [], []
    for _ in range(draw(st.integers(1, max_images))):
        shape = (draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
        maps.append(draw(arrays(np.float64, shape, elements=st.integers(0, 5).map(float))))
        masks.append(draw(arrays(np.bool_, shape)))
    assume(any(k.any() for k in masks) and any((~k).any() for k in masks))
    return maps, masks


# ---- pixel AUROC


def test_pixel_auroc_by_hand():
    maps, masks = two_images()
    # defect 0.9, 0.9: above all 9 normal; 0.5, 0.5: above the seven 0.1, tie with one 0.5 -> 7.5;
    # 0.1: ties with seven -> 3.5. (18 + 15 + 3.5) / (5 * 9)
    assert pixel_auroc(maps, masks) == pytest.approx(36.5 / 45)
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False]) == 0.75


def test_pixel_auroc_all_equal_scores_is_one_half():
    # every pair ties
    masks = [m(["#..", "..."])]
    assert pixel_auroc([np.full((2, 3), 0.4)], masks) == 0.5


@pytest.mark.parametrize(
    "masks",
    [
        [m(["...", "..."]), m([".."])],  # no defect pixel
        [m(["###", "###"]), m(["##"])],  # no normal pixel
    ],
)
def test_pixel_auroc_degenerate_is_nan(masks):
    maps = [np.random.default_rng(0).random(k.shape) for k in masks]
    assert math.isnan(pixel_auroc(maps, masks))
    assert math.isnan(aupro(maps, masks))


@settings(max_examples=60, deadline=None)
@given(maps_and_masks())
def test_pixel_auroc_is_the_pairwise_definition(data):
    maps, masks = data
    assert pixel_auroc(maps, masks) == pytest.approx(pairwise_auroc(maps, masks), abs=1e-12)
    fpr, tpr, _ = pixel_roc_curve(maps, masks)
    assert area(fpr, tpr) == pytest.approx(pixel_auroc(maps, masks), abs=1e-12)


def test_pixel_auroc_equals_sklearn():
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is not installed (reference only)")
    rng = np.random.default_rng(1)
    maps = [np.round(rng.random((12, 9)), 1), np.round(rng.random((5, 7)), 1)]  # rounded: many ties
    masks = [rng.random((12, 9)) > 0.7, rng.random((5, 7)) > 0.5]
    scores = np.concatenate([a.astype(np.float32).ravel() for a in maps])
    truth = np.concatenate([k.ravel() for k in masks])
    assert pixel_auroc(maps, masks) == pytest.approx(metrics.roc_auc_score(truth, scores), abs=1e-12)
    fpr, tpr, thresholds = pixel_roc_curve(maps, masks)
    ref_fpr, ref_tpr, ref_thresholds = metrics.roc_curve(truth, scores)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_allclose(thresholds[1:], ref_thresholds[1:])


def test_pixel_roc_curve_by_hand():
    maps, masks = two_images()
    # thresholds 0.9, 0.7, 0.5, 0.1 flag (defect, normal) pixels: (2, 0), (2, 1), (4, 2), (5, 9);
    # every point is a corner, so none is dropped
    fpr, tpr, thresholds = pixel_roc_curve(maps, masks)
    np.testing.assert_allclose(fpr, [0, 0, 1 / 9, 2 / 9, 1])
    np.testing.assert_allclose(tpr, [0, 0.4, 0.4, 0.8, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.7, 0.5, 0.1], rtol=1e-6)


def test_pixel_roc_curve_drops_only_collinear_points():
    # normal pixels 3, 2, 1 between the defect pixels 4 and 0: thresholds 3 and 2 lie on the straight
    # run from (0, 1/2) to (1, 1/2) and are dropped
    maps, masks = [np.array([[4.0, 3.0, 2.0, 1.0, 0.0]])], [m(["#...#"])]
    full = pixel_roc_curve(maps, masks, drop_intermediate=False)
    kept = pixel_roc_curve(maps, masks)
    assert len(kept[0]) < len(full[0])
    assert area(*kept[:2]) == area(*full[:2]) == pixel_auroc(maps, masks)


def test_pixel_roc_curve_drops_the_collinear_middle_of_three_thresholds():
    # thresholds 0.9, 0.5, 0.1 each flag one more defect and one more normal pixel: three points on the
    # diagonal, of which the middle one is dropped (scikit-learn drops it too: the rule needs no 4th point)
    maps, masks = [np.array([[0.9, 0.9, 0.5, 0.5, 0.1, 0.1]])], [m(["#.#.#."])]
    fpr, tpr, thresholds = pixel_roc_curve(maps, masks)
    np.testing.assert_allclose(fpr, [0, 1 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.1], rtol=1e-6)
    assert len(pixel_roc_curve(maps, masks, drop_intermediate=False)[0]) == 4


@pytest.mark.parametrize("mask", [np.zeros((2, 2), bool), np.ones((2, 2), bool)])
def test_pixel_roc_curve_degenerate_raises(mask):
    with pytest.raises(ValueError, match="both defect and normal"):
        pixel_roc_curve([np.zeros((2, 2))], [mask])


@pytest.mark.parametrize(
    ("maps", "masks", "message"),
    [
        ([np.zeros((2, 2))], [np.zeros((2, 3), bool)], "must be one"),  # shape mismatch
        ([np.zeros(4)], [np.zeros(4, bool)], "must be one"),  # a 1-D map
        ([np.zeros((2, 2))], [], "1 maps but 0 masks"),  # lengths differ
        ([np.full((2, 2), np.nan)], [np.eye(2, dtype=bool)], "NaN"),  # NaN scores
    ],
)
def test_pixel_metrics_reject_bad_input(maps, masks, message):
    for metric in (pixel_auroc, aupro, pixel_f1_max):
        with pytest.raises(ValueError, match=message):
            metric(maps, masks)


def test_pixel_metrics_reject_nan_in_any_image():
    maps, masks = two_images()
    maps = [maps[0], np.where(masks[1], np.nan, maps[1])]  # the second image's defect pixel is NaN
    for metric in (pixel_auroc, aupro, pixel_f1_max, pixel_roc_curve, pro_curve):
        with pytest.raises(ValueError, match="image 1: the anomaly map has NaN"):
            metric(maps, masks)


def test_pixel_metrics_read_0_255_masks_as_bool_ones():
    maps, masks = two_images()
    coded = [k.astype(np.uint8) * 255 for k in masks]
    assert pixel_auroc(maps, coded) == pixel_auroc(maps, masks)
    assert aupro(maps, coded) == aupro(maps, masks)
    assert pixel_f1_max(maps, coded) == pixel_f1_max(maps, masks)
    for got, expected in zip(pro_curve(maps, coded), pro_curve(maps, masks), strict=True):
        np.testing.assert_array_equal(got, expected)


# ---- AUPRO


def test_aupro_by_hand():
    maps, masks = two_images()
    # regions: R1 the 2x2 block (4 px), R2 one pixel (scored 0.1); 9 normal pixels.
    # threshold : FPR, overlap = mean(R1 recall, R2 recall)
    #   0.9     : 0,   (2/4 + 0) / 2 = 0.25
    #   0.7     : 1/9, 0.25
    #   0.5     : 2/9, (4/4 + 0) / 2 = 0.5
    #   0.1     : 1,   1
    # cut at 0.3: between (2/9, 0.5) and (1, 1): 0.5 + 0.5 * (0.3 - 2/9) / (1 - 2/9) = 0.55
    # area: 1/9 * 0.25 + 1/9 * (0.25 + 0.5) / 2 + (0.3 - 2/9) * (0.5 + 0.55) / 2 = 397/3600
    fpr, overlap = pro_curve(maps, masks)
    np.testing.assert_allclose(fpr, [0, 0, 1 / 9, 2 / 9, 0.3])
    np.testing.assert_allclose(overlap, [0, 0.25, 0.25, 0.5, 0.55])
    assert aupro(maps, masks) == pytest.approx(397 / 3600 / 0.3)
    # weighted by pixels rather than regions the 0.5 point would be 4/5, not 0.5
    assert aupro(maps, masks) == pytest.approx(reference_aupro(maps, masks, 0.3))


def test_aupro_regions_are_8_connected():
    # two diagonal pixels are one region (8-connectivity, as anomalib), the corner pixel another;
    # only (0, 0) scores above the normal pixels: overlap (1/2 + 0) / 2 = 0.25 up to the limit
    # (with 4-connectivity it would be 1/3)
    mask = m(["#...", ".#..", "....", "...#"])
    scores = np.where(mask, 0.0, 1.0)
    scores[0, 0] = 2.0
    assert aupro([scores], [mask]) == pytest.approx(0.25)


def test_aupro_of_a_perfect_map_is_one():
    _, masks = two_images()
    maps = [k.astype(np.float32) for k in masks]
    assert aupro(maps, masks) == 1.0
    assert pixel_auroc(maps, masks) == 1.0


def test_aupro_of_a_random_map_is_about_half_the_limit():
    # random scores: each region's recall ~ the FPR, so the curve ~ the diagonal, area / 0.3 ~ 0.15
    rng = np.random.default_rng(0)
    masks = [np.zeros((64, 64), bool) for _ in range(4)]
    for i, mask in enumerate(masks):
        mask[8 : 20 + 4 * i, 10:30] = True
    maps = [rng.random((64, 64)) for _ in masks]
    assert aupro(maps, masks) == pytest.approx(0.15, abs=0.03)


def test_aupro_accepts_a_stacked_array_and_ignores_good_images_regions():
    maps, masks = two_images()
    # a good image adds normal pixels only; a (B, H, W) array is a sequence of maps
    good = np.zeros((3, 3))
    stacked_maps, stacked_masks = np.stack([good, good]), np.zeros((2, 3, 3), bool)
    stacked_masks[0, 1, 1] = True
    assert aupro(stacked_maps, stacked_masks) == aupro(list(stacked_maps), list(stacked_masks))
    with_good = aupro([*maps, good], [*masks, np.zeros((3, 3), bool)])
    assert with_good == pytest.approx(reference_aupro([*maps, good], [*masks, np.zeros((3, 3), bool)], 0.3))


def test_aupro_counts_an_image_defect_all_over_as_a_region():
    # anomalib 2.7's connected_components_cpu skips the first label of np.unique, so a mask without
    # background loses its region; here it is a region, fully found at FPR 0 -> a perfect map
    maps = [np.ones((2, 2)), np.array([[1.0, 0.0], [0.0, 0.0]])]
    masks = [m(["##", "##"]), m(["#.", ".."])]
    assert aupro(maps, masks) == 1.0


@settings(max_examples=80, deadline=None)
@given(maps_and_masks(), st.sampled_from([0.05, 0.3, 0.5, 1.0]))
def test_aupro_matches_anomalibs_algorithm(data, fpr_limit):
    maps, masks = data
    assert aupro(maps, masks, fpr_limit=fpr_limit) == pytest.approx(
        reference_aupro(maps, masks, fpr_limit), abs=1e-9
    )
    fpr, overlap = pro_curve(maps, masks, fpr_limit=fpr_limit)
    assert fpr[0] == overlap[0] == 0 and fpr[-1] == pytest.approx(fpr_limit)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(overlap) >= -1e-12)


@settings(max_examples=40, deadline=None)
@given(
    maps_and_masks(),
    st.sampled_from([np.exp, np.arctan, lambda s: s**3 + 10, lambda s: 0.25 * s - 3]),
)
def test_aupro_is_invariant_to_monotone_transforms(data, increasing):
    maps, masks = data
    transformed = [increasing(a) for a in maps]
    assert aupro(transformed, masks) == pytest.approx(aupro(maps, masks), abs=1e-12)
    assert pixel_auroc(transformed, masks) == pytest.approx(pixel_auroc(maps, masks), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, (5, 6), elements=st.integers(0, 5).map(float)),
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 2), st.integers(1, 3)),
)
def test_aupro_to_fpr_one_of_one_region_is_the_auroc(scores, box):
    # one region: the overlap is the TPR, so the whole PRO curve is the ROC curve
    y, x, h, w = box
    mask = np.zeros((5, 6), bool)
    mask[y : y + h, x : x + w] = True
    assert aupro([scores], [mask], fpr_limit=1.0) == pytest.approx(pixel_auroc([scores], [mask]), abs=1e-12)


@pytest.mark.parametrize("fpr_limit", [0.0, -0.1, 1.5])
def test_aupro_rejects_a_limit_outside_0_1(fpr_limit):
    maps, masks = two_images()
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(maps, masks, fpr_limit=fpr_limit)


@pytest.mark.parametrize("fpr_limit", [0.0, -0.1, 1.5])
def test_pro_curve_rejects_a_limit_outside_0_1(fpr_limit):
    maps, masks = two_images()
    with pytest.raises(ValueError, match="fpr_limit"):
        pro_curve(maps, masks, fpr_limit=fpr_limit)


@pytest.mark.parametrize("defect", [False, True], ids=["no defect pixel", "no normal pixel"])
def test_pro_curve_degenerate_raises(defect):
    with pytest.raises(ValueError, match="both defect and normal"):
        pro_curve([np.zeros((2, 2))], [np.full((2, 2), defect)])


def test_pro_curve_cut_where_a_threshold_reaches_the_limit_keeps_its_vertical_run():
    # normal 0.8, 0.6, 0.2, 0.1; one region of two pixels scored 0.7 and 0.3. Threshold 0.6 reaches
    # FPR 0.5 = the limit with overlap 1/2, and every threshold in (0.2, 0.6) still has FPR 0.5 but
    # overlap 1: the curve ends at (0.5, 1), as anomalib's (its last point with FPR <= limit)
    maps, masks = [np.array([[0.8, 0.7, 0.3, 0.6, 0.2, 0.1]])], [m([".##..."])]
    fpr, overlap = pro_curve(maps, masks, fpr_limit=0.5)
    np.testing.assert_allclose(fpr, [0, 0.25, 0.25, 0.5, 0.5])
    np.testing.assert_allclose(overlap, [0, 0, 0.5, 0.5, 1])
    assert aupro(maps, masks, fpr_limit=0.5) == pytest.approx(reference_aupro(maps, masks, 0.5)) == 0.25


def test_pro_curve_to_fpr_one_ends_with_every_defect_pixel_flagged():
    # the region scores below every normal pixel: the overlap stays 0 up to FPR 1, where the lowest
    # thresholds flag the region too and the curve rises to (1, 1)
    maps, masks = [np.array([[0.6, 0.5, 0.1, 0.1]])], [m(["..##"])]
    fpr, overlap = pro_curve(maps, masks, fpr_limit=1.0)
    np.testing.assert_allclose(fpr, [0, 0.5, 1, 1])
    np.testing.assert_allclose(overlap, [0, 0, 0, 1])
    assert aupro(maps, masks, fpr_limit=1.0) == 0.0


def test_pro_curve_and_aupro_never_pass_one():
    # three regions of three pixels weigh 1/9 a pixel: summed in float they pass 1 by one ulp
    mask = m(["###..", ".....", "###..", ".....", "###.."])
    maps = [mask.astype(np.float64)]
    _, overlap = pro_curve(maps, [mask])
    assert overlap.max() == 1.0
    assert aupro(maps, [mask]) == 1.0


# ---- F1max


def test_f1_max_by_hand():
    # anomalib's F1Max docstring example: threshold 0.35 flags 0.35, 0.4, 0.8: P = 2/3, R = 1
    assert f1_max([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == (pytest.approx(0.8), 0.35)


def test_f1_max_tie_takes_the_lowest_threshold():
    # threshold 4: TP 1, FN 1 -> 2/3; threshold 1: TP 2, FP 2 -> 4/6; anomalib's argmax picks 1
    assert f1_max([4, 3, 2, 1], [True, False, False, True]) == (pytest.approx(2 / 3), 1.0)


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        ([0.2, 0.7, 0.5], [False, False, False], (0.0, 0.2)),  # no positive: 0, the lowest threshold
        ([0.2, 0.7], [True, True], (1.0, 0.2)),  # no negative: flag everything
        ([0.3, 0.3, 0.3], [True, False, True], (0.8, 0.3)),  # all equal: one threshold
    ],
)
def test_f1_max_edge_cases(scores, labels, expected):
    assert f1_max(scores, labels) == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(maps_and_masks())
def test_pixel_f1_max_is_the_best_threshold(data):
    maps, masks = data
    scores = np.concatenate([np.asarray(a, np.float32).ravel() for a in maps])
    truth = np.concatenate([k.ravel() for k in masks])
    best = max(
        (2 * np.sum(truth & (scores >= t)) / (np.sum(truth) + np.sum(scores >= t)), -t)
        for t in np.unique(scores)
    )
    assert pixel_f1_max(maps, masks) == pytest.approx((best[0], -best[1]))
    assert f1_max(scores, truth) == pytest.approx((best[0], -best[1]))


def test_f1_max_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        f1_max([], [])
    with pytest.raises(ValueError, match="differ in shape"):
        f1_max([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="NaN"):
        f1_max([0.1, float("nan")], [True, False])


def test_pixel_f1_max_of_no_pixel_raises():
    with pytest.raises(ValueError, match="at least one pixel"):
        pixel_f1_max([], [])
    with pytest.raises(ValueError, match="at least one pixel"):
        pixel_f1_max([np.zeros((0, 3))], [np.zeros((0, 3), bool)])


@pytest.mark.parametrize("f1", [False, True])
def test_pixel_figures_are_the_metrics_one_by_one_behind_a_bar_on_stderr(capsys, f1):
    # the metrics ran without a word after the per-photo bar: 27 s on 100 photos of 1 MP (7 s then)
    maps, masks = two_images()
    expected = {"auroc": pixel_auroc(maps, masks), "aupro": aupro(maps, masks)}
    if f1:
        expected["f1_max"], expected["f1_threshold"] = pixel_f1_max(maps, masks)
    assert pixel_figures(maps, masks, f1=f1) == expected
    assert capsys.readouterr() == ("", "")  # no bar unless asked for
    assert pixel_figures(maps, masks, f1=f1, progress=True) == expected
    out, err = capsys.readouterr()
    steps = 2 + 2 + f1  # gathering, sorting, then one step per metric (F1-max's two figures one)
    assert out == "" and "pixel metrics of 2 photos (0.0 M pixels)" in err and f"{steps}/{steps}" in err
    assert "gathering pixels" in err and "sorting pixels" in err
    assert "pixel AUROC" in err and "AUPRO" in err and ("pixel F1-max" in err) == f1
    pixel_figures(maps[:1], masks[:1], progress=True)
    assert "pixel metrics of 1 photo (" in capsys.readouterr().err


def searchsorted_auroc(maps, masks) -> float:
    """The Mann-Whitney sums with a binary search per defect pixel, as pixel_auroc computed them before."""
    scores = np.concatenate([np.asarray(a, np.float32).ravel() for a in maps])
    truth = np.concatenate([np.asarray(k).ravel() for k in masks])
    normal, defect = np.sort(scores[~truth]), np.sort(scores[truth])
    below = int(np.searchsorted(normal, defect, side="left").sum())
    not_above = int(np.searchsorted(normal, defect, side="right").sum())
    return (below + not_above) / (2 * normal.size * defect.size)


@settings(max_examples=60, deadline=None)
@given(maps_and_masks())
def test_pixel_figures_sharing_one_sort_are_the_formulas_results(data):
    # one gathering and one sort shared by every metric: the figures of the metrics called one by one,
    # exactly, and the definitions' (integer scores 0..5: ties within and across the classes)
    maps, masks = data
    figures = pixel_figures(maps, masks, f1=True)
    assert figures == {
        "auroc": pixel_auroc(maps, masks),
        "aupro": aupro(maps, masks),
        **dict(zip(["f1_max", "f1_threshold"], pixel_f1_max(maps, masks), strict=True)),
    }
    assert figures["auroc"] == searchsorted_auroc(maps, masks)  # bit for bit
    assert figures["auroc"] == pytest.approx(pairwise_auroc(maps, masks), abs=1e-12)
    assert figures["aupro"] == pytest.approx(reference_aupro(maps, masks, 0.3), abs=1e-9)
    scores = np.concatenate([np.asarray(a, np.float32).ravel() for a in maps])
    truth = np.concatenate([k.ravel() for k in masks])
    assert (figures["f1_max"], figures["f1_threshold"]) == f1_max(scores, truth)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pixel_figures_of_float16_maps_are_the_formulas_results(seed):
    # float16 maps, as inspection.evaluate's scorer keeps them: a few thousand distinct scores over
    # tens of thousands of pixels, so the shared sort and the per-score lookups meet many ties
    rng = np.random.default_rng(seed)
    maps = [rng.random((60, 80)).astype(np.float16) for _ in range(4)]
    masks = [rng.random((60, 80)) > 0.8 for _ in range(4)]
    masks[1][:] = False  # a good image
    masks[2][10:30, 20:50] = True  # a large region beside the speckle
    figures = pixel_figures(maps, masks, f1=True)
    assert figures["auroc"] == searchsorted_auroc(maps, masks)
    assert figures["aupro"] == aupro(maps, masks)
    assert (figures["f1_max"], figures["f1_threshold"]) == pixel_f1_max(maps, masks)
    scores = np.concatenate([a.astype(np.float32).ravel() for a in maps])
    assert (figures["f1_max"], figures["f1_threshold"]) == f1_max(
        scores, np.concatenate([k.ravel() for k in masks])
    )


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        np.float32,
        st.integers(0, 300),
        elements=st.floats(width=32, allow_nan=False) | st.sampled_from([0.0, -0.0, 1.0, -1.0]),
    )
)
def test_stable_order_is_numpys_stable_argsort(scores):
    # the defect pixels' order, in which the PRO curve sums its weights: ties (0.0 and -0.0 among
    # them) keep the order of their indices, infinities and subnormals sort where the floats do
    np.testing.assert_array_equal(_stable_order(scores), np.argsort(scores, kind="stable"))


@pytest.mark.parametrize("seed", [0, 1])
def test_aupro_sums_the_weights_of_tied_defect_scores_in_the_order_they_were_gathered(seed):
    # the PRO curve adds each defect pixel's region weight in score order; among tied scores (float16
    # maps: thousands of pixels a score) the gathering order, as np.argsort(kind="stable") put them
    # before the shared sort: the same AUPRO bit for bit, not the same figure rounded another way
    rng = np.random.default_rng(seed)
    maps = [rng.random((60, 80)).astype(np.float16) for _ in range(3)]
    masks = [rng.random((60, 80)) > 0.7 for _ in range(3)]  # speckle: many regions of unequal sizes
    normal, defect = _pixel_scores(maps, masks)
    region = _defect_regions(masks)
    order = np.argsort(defect, kind="stable")
    fpr, overlap = _pro_curve(np.sort(normal), defect[order], region[order], FPR_LIMIT)
    expected = _trapezoid(fpr, overlap) / float(fpr[-1])
    assert pixel_figures(maps, masks)["aupro"] == expected
    assert aupro(maps, masks) == expected


def test_pixel_figures_without_defect_pixels_or_any_pixel():
    # as the metrics one by one: AUROC and AUPRO NaN; F1-max 0 at the lowest score, or refused
    maps, masks = [np.array([[0.4, 0.2]])], [m([".."])]
    figures = pixel_figures(maps, masks, f1=True)
    assert math.isnan(figures["auroc"]) and math.isnan(figures["aupro"])
    assert (figures["f1_max"], figures["f1_threshold"]) == pytest.approx((0.0, 0.2))
    assert all(math.isnan(v) for v in pixel_figures([], []).values())
    with pytest.raises(ValueError, match="at least one pixel"):
        pixel_figures([], [], f1=True)


# ---- IoU and Dice


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        (["##.", "..."], [".##", "..."], (1 / 3, 1 / 2)),  # overlap of one pixel
        (["##.", "##."], ["##.", "##."], (1.0, 1.0)),  # exact
        (["...", "..."], ["...", "..."], (1.0, 1.0)),  # good image left clean
        (["..#", "..."], ["...", "..."], (0.0, 0.0)),  # one false pixel on a good image
        (["...", "..."], ["#..", "..."], (0.0, 0.0)),  # defect missed
        (["#"], ["#"], (1.0, 1.0)),  # single pixel
    ],
)
def test_per_image_iou_dice(pred, gt, expected):
    assert per_image_iou_dice(m(pred), m(gt)) == pytest.approx(expected)


def test_per_image_iou_dice_reads_0_255_masks_and_rejects_shape_mismatch():
    assert per_image_iou_dice(m(["#."]).astype(np.uint8) * 255, m(["##"])) == pytest.approx((0.5, 2 / 3))
    with pytest.raises(ValueError, match="differ in shape"):
        per_image_iou_dice(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


def test_per_image_iou_dice_counts_any_nonzero_value_as_defect():
    # value-coded masks: 1 and 2 share no bit, but both are defect on the same pixels
    pred, gt = m(["##.", "..."]).astype(np.uint8), m(["##.", "..."]).astype(np.uint8) * 2
    assert per_image_iou_dice(pred, gt) == (1.0, 1.0)
    assert boundary_iou(pred, gt) == 1.0


def test_mask_boundary_is_the_band_inside_the_outline():
    square = np.pad(np.ones((5, 5), bool), 2)  # 9 x 9 image, diagonal 12.7
    assert mask_boundary(square, 0.01).sum() == 16  # d rounds to 0, at least 1: the 5 x 5 less its 3 x 3 core
    assert np.array_equal(mask_boundary(square, 0.15), square & ~np.pad(np.ones((1, 1), bool), 4))  # d = 2
    full = np.ones((5, 5), bool)  # touching every edge: the image's edge is outline
    assert np.array_equal(mask_boundary(full, 0.01), ~np.pad(np.ones((3, 3), bool), 1))
    assert not mask_boundary(np.zeros((5, 5), bool)).any()


def test_mask_boundary_erodes_by_a_square_so_a_hole_marks_all_eight_neighbours():
    # chessboard distance (3 x 3 square, as the reference): every pixel around a one-pixel hole is within
    # d = 1 of the outline, its diagonal neighbours too (a 3 x 3 cross would keep those 4 in the core)
    mask = np.ones((7, 7), bool)
    mask[3, 3] = False
    core = np.pad(np.ones((5, 5), bool), 1)
    core[2:5, 2:5] = False
    assert np.array_equal(mask_boundary(mask, 0.01), mask & ~core)
    assert mask_boundary(mask, 0.01).sum() == 24 + 8


def test_mask_boundary_reads_any_nonzero_value_as_mask():
    square = np.pad(np.ones((5, 5), bool), 2)
    for coded in (square.astype(np.uint8) * 2, square.astype(np.uint8) * 255):
        band = mask_boundary(coded, 0.01)
        assert band.dtype == bool and np.array_equal(band, mask_boundary(square, 0.01))


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        (["##.", "##."], ["##.", "##."], 1.0),
        (["...", "..."], ["...", "..."], 1.0),  # good image left clean, as per_image_iou_dice
        (["..#", "..."], ["...", "..."], 0.0),
        (["#..", "..."], ["..#", "..."], 0.0),
    ],
)
def test_boundary_iou_edge_cases(pred, gt, expected):
    assert boundary_iou(m(pred), m(gt)) == expected


def test_boundary_iou_weighs_the_outline_not_the_interior():
    gt = np.zeros((100, 100), bool)
    gt[10:90, 10:90] = True
    shifted = np.roll(gt, 2, axis=0)  # d = 3 px band on this image
    iou = per_image_iou_dice(shifted, gt)[0]
    assert iou == pytest.approx(78 / 82)
    # bands of 80*80 - 74*74 = 924 px each; shared: one full row at the top and one at the bottom
    # (80 each) and the side strips over the 76 rows between (6 px a row): 616, i.e. 616 / 1232
    assert boundary_iou(shifted, gt) == pytest.approx(0.5)
    assert boundary_iou(shifted, gt) < iou
    with pytest.raises(ValueError, match="differ in shape"):
        boundary_iou(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


@given(arrays(np.bool_, (12, 16)), arrays(np.bool_, (12, 16)))
@settings(max_examples=40, deadline=None)
def test_boundary_iou_with_a_band_wider_than_the_image_is_the_iou(pred, gt):
    assert boundary_iou(pred, gt, dilation_ratio=1.0) == pytest.approx(per_image_iou_dice(pred, gt)[0])


def test_mean_iou_dice_splits_defect_and_good_images():
    preds = [m(["##", ".."]), m(["..", ".."]), m(["#.", ".."]), m(["...", "..."])]
    gts = [m(["#.", ".."]), m(["..", ".."]), m(["..", ".."]), m(["...", "..."])]
    # defect image: IoU 1/2, Dice 2/3; good images: clean 1, false pixel 0, clean 1 (sizes differ)
    assert mean_iou_dice(preds, gts) == MeanIouDice(
        iou=pytest.approx((0.5 + 1 + 0 + 1) / 4),
        dice=pytest.approx((2 / 3 + 1 + 0 + 1) / 4),
        defect_iou=0.5,
        defect_dice=pytest.approx(2 / 3),
        good_iou=pytest.approx(2 / 3),
        good_dice=pytest.approx(2 / 3),
        n_defect=1,
        n_good=3,
    )


def test_mean_iou_dice_without_good_images_is_nan_there():
    summary = mean_iou_dice([m(["#"])], [m(["#"])])
    assert (summary.iou, summary.defect_iou, summary.n_good) == (1.0, 1.0, 0)
    assert math.isnan(summary.good_iou) and math.isnan(summary.good_dice)
    empty = mean_iou_dice([], [])
    assert math.isnan(empty.iou) and empty.n_defect == empty.n_good == 0
    with pytest.raises(ValueError, match="1 predictions but 0"):
        mean_iou_dice([m(["#"])], [])


def test_mean_std_is_the_sample_std_without_nans():
    assert mean_std([1.0, 3.0, float("nan")]) == (2.0, pytest.approx(2**0.5))
    assert mean_std([0.5]) == (0.5, 0.0)
    assert all(math.isnan(v) for v in mean_std([float("nan")]))
