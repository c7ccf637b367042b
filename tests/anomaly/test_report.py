"""Metric values on hand-made maps, through the one implementation in common.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anomaly.report import image_metrics, markdown, pixel_metrics


def square_mask() -> np.ndarray:
    mask = np.zeros((8, 8), bool)
    mask[2:4, 2:4] = True  # one 2 x 2 defect region
    return mask


def test_perfect_map_scores_one() -> None:
    mask = square_mask()
    metrics = pixel_metrics([mask.astype(float), np.zeros((8, 8))], [mask, np.zeros((8, 8), bool)])
    assert metrics["auroc"] == 1.0 and metrics["aupro"] == pytest.approx(1.0) and metrics["f1_max"] == 1.0


def test_good_peak_is_the_largest_map_value_on_a_good_image() -> None:
    mask, good = square_mask(), np.zeros((8, 8))
    good[5, 5] = 0.7
    defect = mask * 0.9 + 0.8  # its own values do not count, however high
    metrics = pixel_metrics([defect, good, good / 2], [mask, np.zeros((8, 8), bool), np.zeros((8, 8), bool)])
    assert metrics["good_peak"] == pytest.approx(0.7)
    assert math.isnan(pixel_metrics([defect], [mask])["good_peak"])  # no good image
    assert pixel_metrics([good], [np.zeros((8, 8), bool)])["good_peak"] == pytest.approx(0.7)  # goods only


def test_inverted_map_scores_zero() -> None:
    mask = square_mask()
    metrics = pixel_metrics([1.0 - mask], [mask])
    assert metrics["auroc"] == 0.0 and metrics["aupro"] == 0.0


def test_half_the_region_found() -> None:
    # 2 of the 4 defect pixels score above every normal pixel, the other 2 with the normal ones
    mask = square_mask()
    anomaly_map = np.zeros((8, 8))
    anomaly_map[2, 2:4] = 1.0
    metrics = pixel_metrics([anomaly_map], [mask])
    # AUROC: 2 defect pixels win against all 60 normals, 2 tie with them (half each) -> 0.75
    assert metrics["auroc"] == pytest.approx(0.75)
    # PRO curve: (FPR 0, overlap 0.5), then (1, 1); cut at FPR 0.3 (overlap 0.65 there) and
    # normalised: (0.5 + 0.65) / 2 = 0.575
    assert metrics["aupro"] == pytest.approx(0.575, abs=1e-6)


def test_no_defect_pixels_gives_nan() -> None:
    metrics = pixel_metrics([np.zeros((4, 4))], [np.zeros((4, 4), bool)])
    assert all(math.isnan(v) for k, v in metrics.items() if k != "good_peak") and metrics["good_peak"] == 0.0


def test_image_metrics_per_defect() -> None:
    scores = [0.1, 0.2, 0.9, 0.15, 0.8]
    defects = ["good", "good", "scratch", "hole", "scratch"]
    metrics = image_metrics(scores, defects)
    # hole 0.15 beats one good (0.1) of two -> 0.5; scratch beats both -> 1.0; pooled: 5 of 6 pairs
    assert metrics["per_defect_auroc"] == {"hole": 0.5, "scratch": 1.0}
    assert metrics["auroc"] == pytest.approx(5 / 6)
    # best cut at 0.15: 3 defects and one good flagged -> F1 = 6 / 7
    assert metrics["f1_max"] == pytest.approx(6 / 7) and metrics["f1_threshold"] == pytest.approx(0.15)
    text = markdown(
        {"image": metrics, "pixel": pixel_metrics([np.zeros((2, 2))], [np.zeros((2, 2), bool)])}, {}
    )
    assert "| image AUROC | 0.833 |" in text and "| hole | 0.500 |" in text
    # what each per-defect AUROC compares: that defect's images against the good ones, not all the rest
    assert "Image AUROC per defect type (its images against the good ones):\n\n| defect | AUROC |" in text


def test_the_report_gives_the_good_images_peak_beside_the_pixel_threshold() -> None:
    good, defect, mask = np.full((2, 2), 0.25), np.full((2, 2), 0.5), np.ones((2, 2), bool)
    pixel = pixel_metrics([good, defect], [np.zeros((2, 2), bool), mask])
    text = markdown({"image": image_metrics([0.1, 0.9], ["good", "scratch"]), "pixel": pixel}, {})
    assert "| largest map value on a good image | 0.25 |" in text


def test_the_reports_thresholds_and_good_peak_keep_six_significant_digits() -> None:
    # four decimals read 0.0000 for a map of tiny values: no value a user could pass back as --threshold
    good, defect, mask = np.full((2, 2), 0.00001234), np.full((2, 2), 0.00005678), np.ones((2, 2), bool)
    pixel = pixel_metrics([good, defect], [np.zeros((2, 2), bool), mask])
    image = image_metrics([0.0000123456789, 3.6098123], ["good", "scratch"])
    masks = {"threshold": 0.00004321, "threshold_from": "given", "segmenter": "boxes"}
    masks |= dict.fromkeys(("iou_defect", "iou_good", "mask_ap", "mask_ap50"), 1.0)
    text = markdown({"image": image, "pixel": pixel, "masks": masks}, {})
    assert "| largest map value on a good image | 1.234e-05 |" in text
    assert "| pixel F1-max (threshold) | 1.000 (5.678e-05) |" in text
    assert "| image F1-max (threshold) | 1.000 (3.60981) |" in text
    assert "Masks from the map (threshold 4.321e-05, given) -> regions -> boxes:" in text
    assert "| image AUROC | 1.000 |" in text  # scores keep their three decimals


def test_a_report_of_good_images_only_says_no_defect_image_was_scored() -> None:
    # a category without test defects: the AUROC-per-defect table was a header with no rows
    pixel = pixel_metrics([np.zeros((2, 2))], [np.zeros((2, 2), bool)])
    text = markdown({"image": image_metrics([0.1, 0.2], ["good", "good"]), "pixel": pixel}, {})
    assert "Image AUROC per defect type: no defect image was scored.\n" in text
    assert "| defect | AUROC |" not in text
