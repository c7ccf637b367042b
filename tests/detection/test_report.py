"""``detection.report``: what an evaluation writes (``evaluation.json``, ``report.txt``)."""

from __future__ import annotations

import math
from dataclasses import asdict

from detection.image_level import ImageLevelReport
from detection.report import REPORT_JSON, REPORT_TEXT, EvaluationReport, format_report, write_report


def test_an_undefined_auroc_is_null_in_strict_evaluation_json(tmp_path, strict_json) -> None:
    nan = math.nan  # a split without good images: no anomaly AUROC, no accuracy on good ones
    level = ImageLevelReport(
        labels=["good", "scratch"], matrix=[[0, 0], [1, 3]], accuracy=0.75, balanced_accuracy=0.75,
        per_label_accuracy={"good": nan, "scratch": 0.75}, auroc=nan, conf=0.25, n_images=4,
    )  # fmt: skip
    report = EvaluationReport(
        weights="best.pt", data="data.yaml", split="test", ultralytics={"metrics/mAP50(B)": 0.5},
        per_class=[], coco=None, image_level=level, save_dir=str(tmp_path),
    )  # fmt: skip
    assert write_report(report, tmp_path) == tmp_path / REPORT_JSON
    saved = strict_json(tmp_path / REPORT_JSON)  # it held bare NaNs, which jq and JSON.parse refuse
    assert (
        saved["image_level"]["auroc"] is None and saved["image_level"]["per_label_accuracy"]["good"] is None
    )
    written = {**asdict(level), "auroc": None, "per_label_accuracy": {"good": None, "scratch": 0.75}}
    assert saved == {**asdict(report), "image_level": written}
    assert math.isnan(report.image_level.auroc)  # in memory it stays NaN
    assert (tmp_path / REPORT_TEXT).read_text() == format_report(report) + "\n"
    assert "anomaly AUROC (top box score) nan" in format_report(report)
