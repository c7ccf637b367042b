"""What anomaly.predict writes for one photo: COCO results and the 16-bit map."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from anomaly.masks import Segmenter
from anomaly.outputs import PredictionWriter, instance_results, map_png
from anomaly.regions import map_regions


def test_instance_results_give_xywh_boxes_and_the_regions_scores() -> None:
    anomaly_map = np.zeros((8, 10), np.float32)
    anomaly_map[1:3, 4:7] = 2.0
    anomaly_map[6, 0] = 3.0
    instances = Segmenter()(np.zeros((8, 10, 3), np.uint8), map_regions(anomaly_map, 1.0))
    results = instance_results(instances, 7, "a/b.png")
    assert [r["bbox"] for r in results] == [[0.0, 6.0, 1.0, 1.0], [4.0, 1.0, 3.0, 2.0]]
    assert [(r["score"], r["area"], r["image_id"]) for r in results] == [(3.0, 1, 7), (2.0, 6, 7)]


def test_map_png_spans_low_to_high() -> None:
    anomaly_map = np.array([[1.0, 2.0, 3.0, 5.0]], np.float32)
    data = map_png(anomaly_map, 1.0, 3.0)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16
    assert decoded.tolist() == [[0, 32767, 65535, 65535]]


def test_map_png_takes_a_range_past_float32s_without_an_overflow_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # --threshold 1e300: the range 0..2e300 overflowed a float32 map
        data = map_png(np.array([[1.0, 3.0]], np.float32), 0.0, 2e300)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).tolist() == [[0, 0]]


def test_the_written_mask_is_the_union_of_the_instances(tmp_path: Path) -> None:
    anomaly_map = np.zeros((8, 10), np.float32)
    anomaly_map[1:3, 4:7] = 2.0
    anomaly_map[6, 0] = 3.0
    instances = Segmenter()(np.zeros((8, 10, 3), np.uint8), map_regions(anomaly_map, 1.0))
    writer = PredictionWriter(tmp_path)
    writer.add("a/b.png", (8, 10), 3.0, instances)
    mask = cv2.imread(str(tmp_path / "masks" / "anomaly" / "a__b_mask.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask > 0, anomaly_map > 1.0) and set(np.unique(mask)) == {0, 255}
