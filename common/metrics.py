"""Scores of anomaly maps and defect masks: pixel AUROC, AUPRO, F1max, per-image IoU and Dice.

The one implementation the inspection report and the anomaly-detection package use; definitions
follow anomalib 2.x so that figures compare with published ones:

- :func:`pixel_auroc`: ROC AUC over every pixel of every image; ties count half (the trapezoid over
  distinct thresholds, as scikit-learn's ``roc_auc_score`` and anomalib's ``AUROC``).
- :func:`aupro`: the per-region overlap curve of Bergmann et al. (MVTec AD), as anomalib's
  ``AUPRO`` defines it: ground-truth regions are 8-connected components of each mask; at each threshold
  the overlap is the recall of each region averaged over all regions of all images, the FPR is over all
  normal pixels; the curve is cut at ``fpr_limit`` (interpolated there) and its area divided by it.
  Computed exactly, as the MVTec AD evaluation code's ``compute_pro`` does (equal to it within 1e-13);
  anomalib's ``AUPRO`` approximates the curve (it resamples each region's ROC curve by index before
  averaging them) and can differ in the second or third decimal where regions differ in size.
- :func:`f1_max` / :func:`pixel_f1_max`: the best F1 over thresholds and its threshold, as anomalib's
  ``F1Max`` (a pixel is flagged when its score is ``>=`` the threshold).
- :func:`per_image_iou_dice`, :func:`mean_iou_dice`: overlap of predicted and true defect pixels.
- :func:`boundary_iou`: the same overlap on the band along each mask's outline (Cheng et al., "Boundary
  IoU", CVPR 2021; the mask-quality figure HQ-SAM reports beside IoU).
- :func:`pixel_roc_curve`, :func:`pro_curve`: the curves themselves, as arrays, for plots.
- :func:`pixel_figures`: a split's pixel AUROC and AUPRO (and F1max) from one sort, behind a progress bar.
- :func:`mean_std`: a figure's mean and sample std over folds, splits or seeds.

Maps are ``(H, W)`` float, masks ``(H, W)`` bool (any nonzero value is defect); the images of one
call may differ in size, and a ``(B, H, W)`` array is a sequence of ``B`` of them.

Memory and time: the maps are gathered once into float32 arrays of their normal and their defect
pixels, 4 bytes a pixel (0.4 GB for 100 maps of 1024 x 1024; float64 scores closer than float32
resolves become ties). Peaks measured on 21 M pixels of all-distinct scores, in bytes per pixel:
:func:`pixel_auroc` and :func:`pixel_f1_max` 4.5, :func:`aupro` 15 (36 bytes per distinct normal
score within ``fpr_limit``), :func:`pixel_roc_curve` 25 (a point per distinct score); each defect
pixel adds about 40 bytes. Nothing loops per threshold: the normal scores are sorted once and every
threshold's counts come from binary search, about 1 s per 20 M pixels. :func:`pixel_figures` gathers
and sorts once for all its metrics, where each metric alone gathers and sorts again.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
from tqdm import tqdm

T = TypeVar("T")

#: The FPR up to which the PRO curve is integrated (anomalib's and the MVTec AD paper's default).
FPR_LIMIT = 0.3
#: Boundary IoU's band: this fraction of the image diagonal (the paper's and HQ-SAM's 0.02).
BOUNDARY_DILATION_RATIO = 0.02


def auroc(scores: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[bool]) -> float:
    """Area under the ROC curve: the chance that a positive outscores a negative, ties counting half.

    Equal to scikit-learn's ``roc_auc_score``; use it for image-level scores.

    Args:
        scores: ``(N,)`` float, higher is more anomalous.
        labels: ``(N,)`` bool, True for positives (defect images).

    Returns:
        The AUROC in ``[0, 1]``; NaN when there is no positive or no negative.

    Raises:
        ValueError: ``scores`` and ``labels`` differ in shape, or a score is NaN.

    >>> auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
    0.75
    """
    negative, positive = _split_scores(scores, labels)
    return _auroc(negative, positive)


def pixel_auroc(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> float:
    """ROC AUC over all pixels of all images, ties counting half.

    Args:
        maps: ``B`` anomaly maps, each ``(H, W)`` float (sizes may differ between images).
        masks: ``B`` ground truths, each ``(H, W)`` bool, the size of its map.

    Returns:
        The AUROC in ``[0, 1]``; NaN when no pixel is defect or no pixel is normal.

    Raises:
        ValueError: the sequences differ in length, a map is not 2-D or not its mask's shape, or a
            score is NaN.
    """
    normal, defect = _pixel_scores(maps, masks)
    return _auroc(normal, defect)


def pixel_roc_curve(
    maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], *, drop_intermediate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixel ROC curve, one point per distinct score, as scikit-learn's ``roc_curve``.

    Args:
        maps: ``B`` anomaly maps, each ``(H, W)`` float.
        masks: ``B`` ground truths, each ``(H, W)`` bool.
        drop_intermediate: drop the points on straight runs of the curve (its area is unchanged).

    Returns:
        ``(K,)`` FPR and ``(K,)`` TPR, both nondecreasing from 0 to 1, and ``(K,)`` thresholds,
        decreasing from ``inf``: a pixel is flagged when its score is ``>=`` the threshold.

    Raises:
        ValueError: no pixel is defect or none is normal, or as :func:`pixel_auroc`.
    """
    normal, defect = _pixel_scores(maps, masks)
    if not normal.size or not defect.size:
        raise ValueError("a ROC curve needs both defect and normal pixels")
    normal.sort()
    defect.sort()
    thresholds, false_pos, true_pos = _threshold_counts(normal, defect)
    if drop_intermediate and thresholds.size > 2:
        # keep the corners: points where the slope changes (scikit-learn's rule)
        corner = np.r_[True, (np.diff(false_pos, 2) != 0) | (np.diff(true_pos, 2) != 0), True]
        thresholds, false_pos, true_pos = thresholds[corner], false_pos[corner], true_pos[corner]
    fpr = np.r_[0, false_pos] / normal.size
    tpr = np.r_[0, true_pos] / defect.size
    return fpr, tpr, np.r_[np.inf, thresholds]


def aupro(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], *, fpr_limit: float = FPR_LIMIT) -> float:
    """Area under the per-region overlap curve up to ``fpr_limit``, divided by ``fpr_limit``.

    The figure of the MVTec AD evaluation code (anomalib's ``AUPRO`` approximates it: see the module
    docstring); see :func:`pro_curve` for the curve.

    Args:
        maps: ``B`` anomaly maps, each ``(H, W)`` float (sizes may differ between images).
        masks: ``B`` ground truths, each ``(H, W)`` bool, the size of its map.
        fpr_limit: the FPR in ``(0, 1]`` where the curve is cut.

    Returns:
        AUPRO in ``[0, 1]``: 1 for a map that scores every defect pixel above every normal one, about
        ``fpr_limit / 2`` for random scores. NaN when no pixel is defect or none is normal (anomalib
        returns 0 there).

    Raises:
        ValueError: ``fpr_limit`` is outside ``(0, 1]``, or as :func:`pixel_auroc`.
    """
    _check_fpr_limit(fpr_limit)
    return _ranked_aupro(_ranked(*_gathered(maps, masks)), fpr_limit)


def pro_curve(
    maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], *, fpr_limit: float = FPR_LIMIT
) -> tuple[np.ndarray, np.ndarray]:
    """The per-region overlap curve, cut at ``fpr_limit``, exactly (anomalib's ``AUPRO`` resamples it).

    Each threshold flags the pixels scoring ``>=`` it; its point is the FPR over all normal pixels of
    all images against the overlap: the fraction of each ground-truth region flagged, averaged over
    all regions of all images (a 1-pixel scratch weighs as much as a large stain). Regions are the
    8-connected components of each mask (OpenCV's default, which anomalib uses). The last point is
    interpolated linearly at ``fpr_limit``. Points inside vertical runs are merged, which changes
    neither the curve's shape nor its area. An image that is defect all over is one region (anomalib's
    labelling loses it, counting its pixels as normal).

    Args:
        maps: ``B`` anomaly maps, each ``(H, W)`` float.
        masks: ``B`` ground truths, each ``(H, W)`` bool.
        fpr_limit: the FPR in ``(0, 1]`` where the curve is cut.

    Returns:
        ``(K,)`` FPR, nondecreasing from 0 to ``fpr_limit``, and ``(K,)`` overlap in ``[0, 1]``.

    Raises:
        ValueError: no pixel is defect or none is normal, ``fpr_limit`` is outside ``(0, 1]``, or as
            :func:`pixel_auroc`.
    """
    _check_fpr_limit(fpr_limit)
    pixels = _ranked(*_gathered(maps, masks))
    if not pixels.normal.size or not pixels.defect.size:
        raise ValueError("a PRO curve needs both defect and normal pixels")
    fpr, overlap = _pro_curve(pixels.normal, pixels.defect, pixels.region, fpr_limit)
    keep = np.r_[True, (np.diff(fpr) != 0) | (np.diff(overlap) != 0)]
    return fpr[keep], overlap[keep]


def f1_max(scores: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[bool]) -> tuple[float, float]:
    """The best F1 over thresholds, and the threshold that reaches it, as anomalib's ``F1Max``.

    Over every distinct score as threshold (flagged: score ``>=`` threshold); of equally good
    thresholds the lowest wins, as in anomalib. F1 is ``2 TP / (2 TP + FP + FN)`` from integer counts,
    so ties are exact; anomalib's float32 ``2PR / (P + R + 1e-10)`` is lower by about 1e-7 and can
    break an exact tie the other way.

    Args:
        scores: ``(N,)`` float image scores (or any shape: flattened), higher is more anomalous.
        labels: ``(N,)`` bool, True for defects, the shape of ``scores``.

    Returns:
        ``(f1, threshold)``; f1 is 0 when there is no positive (every threshold flags a negative).

    Raises:
        ValueError: no score, ``scores`` and ``labels`` differ in shape, or a score is NaN.

    >>> f1_max([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    (0.8, 0.35)
    """
    negative, positive = _split_scores(scores, labels)
    if not negative.size and not positive.size:
        raise ValueError("F1max needs at least one score")
    negative.sort()
    positive.sort()
    return _f1_max(negative, positive)


def pixel_f1_max(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> tuple[float, float]:
    """:func:`f1_max` over all pixels of all images (anomalib's pixel ``F1Max``).

    Args:
        maps: ``B`` anomaly maps, each ``(H, W)`` float.
        masks: ``B`` ground truths, each ``(H, W)`` bool.

    Returns:
        ``(f1, threshold)``; the threshold is a float32 score of the maps.

    Raises:
        ValueError: no pixel at all, or as :func:`pixel_auroc`.
    """
    normal, defect = _pixel_scores(maps, masks)
    normal.sort()
    defect.sort()
    return _pixel_f1_max(normal, defect)


def pixel_figures(
    maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], *, f1: bool = False, progress: bool = False
) -> dict[str, float]:
    """A split's :func:`pixel_auroc` and :func:`aupro` (and :func:`pixel_f1_max`), sharing one sort.

    The pixels are gathered and sorted once for all the metrics, where each metric alone gathers and
    sorts them again: about 4 s for 100 M pixels on a busy 2-core machine, half the time or less of
    this function when it called the metrics one by one (``bench/results/pixel_metrics_time.md``),
    after the per-photo bar has ended and growing with the split, so ``progress`` shows a bar on
    stderr over the steps (gathering the pixels, sorting them, then each metric), naming the one
    running, with the time they took at its end.

    Args:
        maps: ``B`` anomaly maps, each ``(H, W)`` float.
        masks: ``B`` ground truths, each ``(H, W)`` bool.
        f1: also ``f1_max`` and its ``f1_threshold``.
        progress: the bar.

    Returns:
        ``auroc`` and ``aupro``; with ``f1``, ``f1_max`` and ``f1_threshold``: the figures of the
        metrics called one by one.

    Raises:
        ValueError: as :func:`pixel_auroc`, or as :func:`pixel_f1_max` with ``f1``.
    """
    metrics: list[tuple[str, Callable[[_RankedPixels], dict[str, float]]]] = [
        ("pixel AUROC", _auroc_figure),
        ("AUPRO", _aupro_figure),
    ]
    if f1:
        metrics.append(("pixel F1-max", _f1_max_figures))
    pixels = sum(np.asarray(anomaly_map).size for anomaly_map in maps)
    photos = f"{len(maps)} photo{'' if len(maps) == 1 else 's'}"
    desc = f"pixel metrics of {photos} ({pixels / 1e6:.1f} M pixels)"
    figures: dict[str, float] = {}
    with tqdm(total=2 + len(metrics), desc=desc, unit="step", disable=not progress, file=sys.stderr) as bar:
        # nested: the unsorted defect scores are dropped once sorted, not held while the metrics run
        ranked = _step(
            bar, "sorting pixels", _ranked, *_step(bar, "gathering pixels", _gathered, maps, masks)
        )
        for name, metric in metrics:
            figures.update(_step(bar, name, metric, ranked))
        bar.set_postfix_str("", refresh=False)  # the closing line: the count and the time, no step named
    return figures


def per_image_iou_dice(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """IoU and Dice of one image's predicted defect pixels against its ground truth.

    A good image left clean (both empty) scores 1; any predicted pixel on a good image scores 0.

    Args:
        pred: ``(H, W)`` bool predicted defect pixels.
        gt: ``(H, W)`` bool ground truth.

    Returns:
        ``(iou, dice)``: ``|P & G| / |P | G|`` and ``2 |P & G| / (|P| + |G|)``.

    Raises:
        ValueError: the masks differ in shape.

    >>> per_image_iou_dice(np.array([[1, 1, 0]], bool), np.array([[0, 1, 1]], bool))
    (0.3333333333333333, 0.5)
    """
    pred, gt = _mask_pair(pred, gt)
    both = int(np.count_nonzero(pred & gt))
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(gt))
    if total == 0:
        return 1.0, 1.0
    return both / (total - both), 2 * both / total


def mask_boundary(mask: np.ndarray, dilation_ratio: float = BOUNDARY_DILATION_RATIO) -> np.ndarray:
    """The pixels of ``mask`` within ``d`` pixels of its outline; the image's edge counts as outline.

    ``d = round(dilation_ratio x image diagonal)``, at least 1; distance is the chessboard distance
    (``d`` erosions by a 3 x 3 square), as in the reference implementation of Boundary IoU.

    >>> int(mask_boundary(np.pad(np.ones((5, 5), bool), 2), 0.01).sum())  # 9 x 9 image: d = 1
    16
    """
    # Written out because the reference (github.com/bowenc0221/boundary-iou-api, its mask_to_boundary)
    # is not packaged on PyPI; this follows it step for step.
    mask = np.asarray(mask).astype(bool, copy=False)
    h, w = mask.shape
    d = max(1, int(round(dilation_ratio * float(np.hypot(h, w)))))
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1 : h + 1, 1 : w + 1]
    return mask & ~eroded.astype(bool)


def boundary_iou(pred: np.ndarray, gt: np.ndarray, dilation_ratio: float = BOUNDARY_DILATION_RATIO) -> float:
    """Boundary IoU of one predicted mask against its ground truth (Cheng et al., CVPR 2021).

    IoU of the two masks' :func:`mask_boundary` bands, so it weighs how well the outline sits
    rather than how much interior a large region has. Both masks empty score 1 (as in
    :func:`per_image_iou_dice`); one empty and the other not, 0.

    Raises:
        ValueError: the masks differ in shape.
    """
    pred, gt = _mask_pair(pred, gt)
    p, g = mask_boundary(pred, dilation_ratio), mask_boundary(gt, dilation_ratio)
    union = int(np.count_nonzero(p | g))
    return 1.0 if union == 0 else int(np.count_nonzero(p & g)) / union


@dataclass(frozen=True)
class MeanIouDice:
    """Mean per-image IoU and Dice: over all images, over defect images and over good images.

    On a good image IoU and Dice are both 1 (left clean) or 0 (any predicted pixel), so ``good_iou``
    and ``good_dice`` are equal: the fraction of good images left clean. A mean over no image is NaN.

    Attributes:
        iou, dice: means over all images.
        defect_iou, defect_dice: means over images whose ground truth has a defect pixel.
        good_iou, good_dice: means over images whose ground truth is empty.
        n_defect, n_good: the number of defect and good images.
    """

    iou: float
    dice: float
    defect_iou: float
    defect_dice: float
    good_iou: float
    good_dice: float
    n_defect: int
    n_good: int


def mean_iou_dice(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> MeanIouDice:
    """:func:`per_image_iou_dice` of each image, averaged over all, defect and good images.

    Args:
        preds: ``B`` predicted defect masks, each ``(H, W)`` bool.
        gts: ``B`` ground truths, each ``(H, W)`` bool, the size of its prediction.

    Raises:
        ValueError: the sequences differ in length, or a prediction and its ground truth in shape.
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions but {len(gts)} ground truths")
    scores = [per_image_iou_dice(p, g) for p, g in zip(preds, gts, strict=True)]
    return mean_of_iou_dice(scores, [bool(np.any(g)) for g in gts])


def mean_of_iou_dice(scores: Sequence[tuple[float, float]], defect: Sequence[bool]) -> MeanIouDice:
    """:func:`mean_iou_dice` of images already scored: ``B`` ``(IoU, Dice)`` pairs
    (:func:`per_image_iou_dice`) and whether each ground truth has a defect pixel; for a caller that
    scores each image as it comes instead of holding every mask to the end."""
    scores = np.array(scores, dtype=float).reshape(-1, 2)
    defect = np.array(defect, dtype=bool).reshape(-1)

    def mean(rows: np.ndarray, column: int) -> float:
        return float(rows[:, column].mean()) if len(rows) else float("nan")

    return MeanIouDice(
        iou=mean(scores, 0),
        dice=mean(scores, 1),
        defect_iou=mean(scores[defect], 0),
        defect_dice=mean(scores[defect], 1),
        good_iou=mean(scores[~defect], 0),
        good_dice=mean(scores[~defect], 1),
        n_defect=int(defect.sum()),
        n_good=int((~defect).sum()),
    )


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for one value), NaNs left out."""
    finite = [float(v) for v in values if not np.isnan(v)]
    if not finite:
        return float("nan"), float("nan")
    return float(np.mean(finite)), float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0


def _mask_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A prediction and its ground truth as bool arrays (any nonzero value is defect), checked to match."""
    pred, gt = np.asarray(pred).astype(bool, copy=False), np.asarray(gt).astype(bool, copy=False)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    return pred, gt


def _auroc(negative: np.ndarray, positive: np.ndarray) -> float:
    """:func:`_auroc_sorted` of unsorted scores; sorts both arrays in place."""
    negative.sort()
    positive.sort()
    return _auroc_sorted(negative, positive)


def _auroc_sorted(negative: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney form of the AUROC: per positive, the negatives below it plus half the ties.

    Each distinct positive score is looked up once in the negatives and its count multiplied by the
    answer: integer sums, so the figure is that of a lookup per positive, but a few thousand binary
    searches instead of one per defect pixel where scores repeat (float16 maps). Ascending positives
    keep the searches fast where they do not (numpy's binary search of ascending keys starts from the
    last one found: on 100 maps of 1024 x 1024 a search per positive took 13 s unsorted, 1 s sorted).

    Args:
        negative, positive: ``(N0,)`` and ``(N1,)`` scores, sorted ascending.
    """
    if not negative.size or not positive.size:
        return float("nan")
    values, counts = _distinct_counts(positive)
    below = int((counts * np.searchsorted(negative, values, side="left")).sum())
    not_above = int((counts * np.searchsorted(negative, values, side="right")).sum())
    return (below + not_above) / (2 * negative.size * positive.size)


def _pixel_f1_max(normal: np.ndarray, defect: np.ndarray) -> tuple[float, float]:
    """:func:`_f1_max` of ascending-sorted pixel scores, refusing a split without a pixel."""
    if not normal.size and not defect.size:
        raise ValueError("F1max needs at least one pixel")
    return _f1_max(normal, defect)


def _f1_max(negative: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """F1max of ascending-sorted negative and positive scores.

    Only positive scores are tried: lowering a threshold onto a negative score adds a false positive
    and no true one, so F1 drops. No other threshold ties with the best, so taking the lowest of the
    best positive scores is anomalib's choice (its argmax over all thresholds, ascending).
    """
    if not positive.size:
        # every threshold flags a negative and no positive: F1 is 0 everywhere; anomalib takes the lowest
        return 0.0, float(negative[0])
    thresholds = _distinct(positive)[::-1]
    true_pos = positive.size - np.searchsorted(positive, thresholds, side="left")
    false_pos = negative.size - np.searchsorted(negative, thresholds, side="left")
    # 2 TP / (2 TP + FP + FN), with FN = positives - TP
    f1 = 2 * true_pos / (true_pos + false_pos + positive.size)
    best = f1.size - 1 - int(np.argmax(f1[::-1]))  # thresholds decrease: the last maximum is the lowest
    return float(f1[best]), float(thresholds[best])


def _threshold_counts(
    negative: np.ndarray, positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each distinct score (decreasing) and the negatives and positives scoring ``>=`` it.

    Args:
        negative, positive: ``(N0,)`` and ``(N1,)`` scores, sorted ascending.

    Returns:
        ``(K,)`` thresholds, ``(K,)`` int false positives and ``(K,)`` int true positives.
    """
    thresholds = np.concatenate([_distinct(negative), _distinct(positive)])
    thresholds.sort()
    thresholds = _distinct(thresholds)[::-1]
    false_pos = negative.size - np.searchsorted(negative, thresholds, side="left")
    true_pos = positive.size - np.searchsorted(positive, thresholds, side="left")
    return thresholds, false_pos, true_pos


def _pro_curve(
    normal: np.ndarray, defect: np.ndarray, region: np.ndarray, fpr_limit: float
) -> tuple[np.ndarray, np.ndarray]:
    """The PRO curve of sorted scores (:class:`_RankedPixels`).

    Only normal scores move the FPR, so the curve is walked along them: at each distinct normal
    score ``t`` (decreasing) it first rises, at the previous FPR, to the overlap of the defect pixels
    scoring ``> t``, then moves to ``t``'s FPR and the overlap of those scoring ``>= t``. This is
    the polyline over all distinct scores of the MVTec AD evaluation code's ``compute_pro``, without
    the points inside vertical runs (and with repeated points where no defect pixel scores between two
    normal ones).

    Args:
        normal: ``(N0,)`` float32 scores of the normal pixels, ascending.
        defect: ``(N1,)`` float32 scores of the defect pixels, ascending.
        region: ``(N1,)`` int region of each of ``defect``'s pixels, numbered from 0 over all images.
        fpr_limit: where the curve is cut.
    """
    sizes = np.bincount(region)
    weight = 1.0 / (sizes[region] * float(sizes.size))
    # overlap[i]: averaged recall of the regions when defect[i:] are flagged; overlap[N1] = 0
    overlap = np.minimum(np.r_[np.cumsum(weight[::-1])[::-1], 0.0], 1.0)
    thresholds, false_pos = _top_thresholds(normal, fpr_limit)
    # points: the origin, two per threshold (rise at the previous FPR, then step right), and the
    # defect pixels below every normal score joining at FPR 1 (cut off unless fpr_limit = 1)
    x, y = np.zeros(2 * thresholds.size + 2), np.zeros(2 * thresholds.size + 2)
    x[2:-1:2] = false_pos / normal.size
    x[3:-1:2] = x[2:-3:2]
    x[-1] = 1.0
    y[1:-1:2] = overlap[np.searchsorted(defect, thresholds, side="right")]
    y[2:-1:2] = overlap[np.searchsorted(defect, thresholds, side="left")]
    y[-1] = overlap[0]
    return _cut_at(x, y, fpr_limit)


def _top_thresholds(normal: np.ndarray, fpr_limit: float) -> tuple[np.ndarray, np.ndarray]:
    """The distinct normal scores from the highest down to the first whose FPR passes ``fpr_limit``.

    Args:
        normal: ``(N0,)`` normal scores, sorted ascending.
        fpr_limit: in ``(0, 1]``.

    Returns:
        ``(K,)`` decreasing thresholds and ``(K,)`` int count of normal scores ``>=`` each.
    """
    n = normal.size
    # the lowest of the top floor(limit * n) + 1 scores is flagged with more than limit * n; one more
    # against rounding in limit * n
    top = normal[n - min(n, int(fpr_limit * n) + 2) :][::-1]
    thresholds = _distinct(top)
    return thresholds, n - np.searchsorted(normal, thresholds, side="left")


def _cut_at(x: np.ndarray, y: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """The curve up to ``x = limit``, ending with a point interpolated there (anomalib's ``compute_pro``).

    Args:
        x: ``(K,)`` nondecreasing, ``x[0] <= limit``; overwritten past the cut.
        y: ``(K,)``; overwritten past the cut.

    Returns:
        Views of ``x`` and ``y``.
    """
    last = int(np.searchsorted(x, limit, side="right")) - 1
    if x[last] < limit and last + 1 < x.size:
        step = (limit - x[last]) / (x[last + 1] - x[last])
        x[last + 1], y[last + 1] = limit, y[last] + step * (y[last + 1] - y[last])
        last += 1
    return x[: last + 1], y[: last + 1]


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    """Area under the polyline through ``(x, y)`` (``np.trapezoid`` needs numpy 2)."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2)


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array, in its order."""
    if not ordered.size:
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def _distinct_counts(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array, in its order, and how often each occurs (int64)."""
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if ordered.size else np.zeros(0, int)
    return ordered[starts], np.diff(np.r_[starts, ordered.size])


def _check_fpr_limit(fpr_limit: float) -> None:
    if not 0 < fpr_limit <= 1:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")


def _split_scores(
    scores: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """``(N0,)`` float64 scores of the negatives and ``(N1,)`` of the positives (new arrays)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool, copy=False)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    if np.isnan(scores).any():
        raise ValueError("a score is NaN")
    return scores[~labels], scores[labels]


def _checked_pair(anomaly_map: np.ndarray, mask: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One image's map as an array and its mask as bool, both ``(H, W)``."""
    anomaly_map, mask = np.asarray(anomaly_map), np.asarray(mask).astype(bool, copy=False)
    if anomaly_map.ndim != 2 or anomaly_map.shape != mask.shape:
        raise ValueError(f"image {index}: map {anomaly_map.shape} and mask {mask.shape} must be one (H, W)")
    return anomaly_map, mask


def _pixel_scores(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The scores of all normal pixels and of all defect pixels, each gathered once as float32.

    Returns:
        ``(N0,)`` float32 normal scores and ``(N1,)`` float32 defect scores, image after image,
        row-major within an image (the order of :func:`_defect_regions`).
    """
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} maps but {len(masks)} masks")
    # count first, so the pixels are copied once into arrays of their final size
    n_defect = n_pixels = 0
    for i, (anomaly_map, mask) in enumerate(zip(maps, masks, strict=True)):
        anomaly_map, mask = _checked_pair(anomaly_map, mask, i)
        n_defect += int(np.count_nonzero(mask))
        n_pixels += mask.size
    normal = np.empty(n_pixels - n_defect, np.float32)
    defect = np.empty(n_defect, np.float32)
    at_normal = at_defect = 0
    for i, (anomaly_map, mask) in enumerate(zip(maps, masks, strict=True)):
        anomaly_map, mask = _checked_pair(anomaly_map, mask, i)
        if np.isnan(anomaly_map).any():
            raise ValueError(f"image {i}: the anomaly map has NaN scores")
        n = int(np.count_nonzero(mask))
        defect[at_defect : at_defect + n] = anomaly_map[mask]
        normal[at_normal : at_normal + mask.size - n] = anomaly_map[~mask]
        at_defect, at_normal = at_defect + n, at_normal + mask.size - n
    return normal, defect


def _defect_regions(masks: Sequence[np.ndarray]) -> np.ndarray:
    """``(N1,)`` int32 region of each defect pixel: 8-connected components numbered over all images.

    Pixels come image after image, row-major, as in :func:`_pixel_scores`.
    """
    regions, offset = [], 0
    for mask in masks:
        mask = np.asarray(mask).astype(bool, copy=False)
        # 8-connectivity: OpenCV's default, which anomalib's connected_components_cpu uses
        count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        regions.append(labels[mask] - 1 + offset)
        offset += count - 1
    return np.concatenate(regions).astype(np.int32, copy=False) if regions else np.zeros(0, np.int32)


@dataclass(frozen=True)
class _RankedPixels:
    """A split's pixel scores gathered and sorted once, for the pixel metrics to share.

    Attributes:
        normal: ``(N0,)`` float32 scores of the normal pixels, ascending.
        defect: ``(N1,)`` float32 scores of the defect pixels, ascending, equal scores in the order
            :func:`_pixel_scores` gathers them (the PRO curve sums its weights in this order).
        region: ``(N1,)`` int32 region of each of ``defect``'s pixels (:func:`_defect_regions`).
    """

    normal: np.ndarray
    defect: np.ndarray
    region: np.ndarray


def _gathered(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """:func:`_pixel_scores` and :func:`_defect_regions`: normal scores, defect scores, their regions."""
    normal, defect = _pixel_scores(maps, masks)
    return normal, defect, _defect_regions(masks)


def _ranked(normal: np.ndarray, defect: np.ndarray, region: np.ndarray) -> _RankedPixels:
    """Gathered scores sorted: ``normal`` in place, ``defect`` (and ``region`` with it) by a stable sort."""
    normal.sort()
    order = _stable_order(defect)
    return _RankedPixels(normal=normal, defect=defect[order], region=region[order])


def _stable_order(scores: np.ndarray) -> np.ndarray:
    """``np.argsort(scores, kind="stable")`` of float32 scores without NaN, about twice as fast.

    Each score's bits, flipped to sort as unsigned integers in the order of the floats (``-0.0`` made
    ``0.0`` first: they are equal), above its index in one uint64, sorted by numpy's integer sort: equal
    scores keep their indices' order, as a stable sort's.

    Args:
        scores: ``(N,)`` float32; over 2**32 scores fall back to ``np.argsort``.

    Returns:
        ``(N,)`` int64 indices that sort ``scores``.
    """
    if scores.size >= 2**32:
        return np.argsort(scores, kind="stable")
    keys = (scores + np.float32(0)).view(np.uint32).astype(np.uint64)  # -0.0 + 0.0 is 0.0
    negative = keys >= 2**31
    keys[negative] ^= 0xFFFFFFFF  # negative floats: all bits flipped, the larger magnitude first
    keys[~negative] |= 2**31  # the rest: above every negative
    keys <<= np.uint64(32)  # in place: 8 bytes a score, and the indices' 8 while they are added
    keys |= np.arange(scores.size, dtype=np.uint64)
    keys.sort()
    keys &= np.uint64(0xFFFFFFFF)
    return keys.view(np.int64)


def _ranked_aupro(pixels: _RankedPixels, fpr_limit: float) -> float:
    """:func:`aupro` of sorted pixels; NaN without a defect or a normal pixel."""
    if not pixels.normal.size or not pixels.defect.size:
        return float("nan")
    fpr, overlap = _pro_curve(pixels.normal, pixels.defect, pixels.region, fpr_limit)
    return _trapezoid(fpr, overlap) / float(fpr[-1])


def _auroc_figure(pixels: _RankedPixels) -> dict[str, float]:
    return {"auroc": _auroc_sorted(pixels.normal, pixels.defect)}


def _aupro_figure(pixels: _RankedPixels) -> dict[str, float]:
    return {"aupro": _ranked_aupro(pixels, FPR_LIMIT)}


def _f1_max_figures(pixels: _RankedPixels) -> dict[str, float]:
    f1, threshold = _pixel_f1_max(pixels.normal, pixels.defect)
    return {"f1_max": f1, "f1_threshold": threshold}


def _step(bar: tqdm, name: str, work: Callable[..., T], *args: object) -> T:
    """``work(*args)`` as one step of ``bar``, named while it runs."""
    bar.set_postfix_str(name)
    result = work(*args)
    bar.update()
    return result
