"""The record of one inspected photo: what its derived maps cost and equal."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np

from inspection.result import Inspection


def inspection_of(n: int, height: int, width: int, seed: int = 0) -> Inspection:
    """``n`` boxes with random mask probabilities (float16, as the cascade keeps them), best first."""
    rng = np.random.default_rng(seed)
    probs = rng.random((n, height, width), dtype=np.float32).astype(np.float16)
    return Inspection(
        path=Path("photo.png"),
        width=width,
        height=height,
        boxes=np.tile([0.0, 0.0, width, height], (n, 1)),
        scores=np.sort(rng.random(n))[::-1],
        classes=np.zeros(n, int),
        names=["scratch"] * n,
        masks=probs > 0.5,
        mask_scores=np.ones(n, np.float32),
        verdict="scratch",
        score=1.0,
        mask_probs=probs,
    )


def test_the_anomaly_map_is_made_a_box_at_a_time_with_the_same_values():
    # 20 boxes: the (N, H, W) float32 product of every box at once would be 20 maps' worth
    inspection = inspection_of(20, 120, 160)
    weights = inspection.scores.astype(np.float32)[:, None, None]
    expected = (inspection.mask_probs.astype(np.float32) * weights).max(0)  # every box at once, as before
    one_map = 120 * 160 * 4
    tracemalloc.start()
    try:
        anomaly_map = inspection.anomaly_map()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert anomaly_map.dtype == np.float32 and anomaly_map.shape == (120, 160)
    assert np.array_equal(anomaly_map, expected)  # bit for bit: the 16-bit PNGs stay the same
    assert peak < 4 * one_map, f"{peak / one_map:.1f} maps' worth allocated for one map of 20 boxes"


def test_one_box_map_is_its_probabilities_times_its_score():
    inspection = inspection_of(1, 4, 4)
    expected = inspection.mask_probs[0].astype(np.float32) * np.float32(inspection.scores[0])
    assert np.array_equal(inspection.anomaly_map(), expected)
