"""Instance masks scored against ground truth, on maps made by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomaly.data import eval_records, load_records, read_mask
from anomaly.mask_scores import score_masks
from anomaly.masks import Segmenter
from anomaly.patchcore import Prediction


class HandMadeMaps:
    """A run whose map is 2 on the ground truth and 3 on a 4 x 4 false alarm in the top-left corner."""

    def __init__(self, records) -> None:
        self.records = {str(r.image): r for r in records}

    def predict(self, images, paths):
        record = self.records[str(paths[0])]
        anomaly_map = 2.0 * read_mask(record, images[0].shape[:2]).astype(np.float32)
        anomaly_map[:4, :4] = 3.0
        return [Prediction(anomaly_map, float(anomaly_map.max()))]


def test_an_images_iou_is_that_of_all_its_instances(parts: Path) -> None:
    records = [r for r in eval_records(load_records(parts.parent, "part")) if not r.is_good]
    truths = [read_mask(r, (64, 64)) for r in records]
    assert not any(t[:4, :4].any() for t in truths)
    masks = score_masks(HandMadeMaps(records), records, Segmenter(), 1.0, "given", min_area=1, progress=False)
    expected = np.mean([t.sum() / (t.sum() + 16) for t in truths])
    assert masks["iou_defect"] == pytest.approx(expected)
    assert masks["instances"] == 2 * len(records)
