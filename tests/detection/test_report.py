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
    # undefined: '-' as in the tables (common.tables.fmt) and inspection's report, with why; it printed nan
    lines = format_report(report).splitlines()
    assert "  defect-type accuracy 0.750   balanced 0.750   anomaly AUROC (top box score) -" in lines
    assert "  no good image in this split: no anomaly AUROC is defined" in lines
    assert "  good             0        0   acc -" in lines and "nan" not in format_report(report)


def test_a_split_of_good_images_only_says_it_has_no_defect_image(tmp_path) -> None:
    level = ImageLevelReport(
        labels=["good", "scratch"], matrix=[[2, 0], [0, 0]], accuracy=1.0, balanced_accuracy=1.0,
        per_label_accuracy={"good": 1.0, "scratch": math.nan}, auroc=math.nan, conf=0.25, n_images=2,
    )  # fmt: skip
    per_class = {"scratch": {"AP50": math.nan}}  # no scratch in the split
    coco = {"mAP50": math.nan, "mAP50-95": math.nan, "n_detections": 0, "per_class": per_class}
    row = {"Class": "scratch", "Images": 2, "Instances": 0, "Box-P": 0.0, "Box-R": 0.0, "mAP50": 0.0}
    report = EvaluationReport(
        weights="best.pt", data="data.yaml", split="test", ultralytics={},
        per_class=[{**row, "mAP50-95": 0.0}], coco=coco, image_level=level, save_dir=str(tmp_path),
    )  # fmt: skip
    text = format_report(report)
    assert "  no defect image in this split: no anomaly AUROC is defined" in text.splitlines()
    assert f"{'scratch':24s}       2       0   0.000   0.000   0.000    0.000          -" in text.splitlines()
    assert "nan" not in text


def two_right_calls(conf: float) -> ImageLevelReport:
    """The image-level record of one good and one scratch photo, both called right at ``conf``."""
    return ImageLevelReport(
        labels=["good", "scratch"], matrix=[[1, 0], [0, 1]], accuracy=1.0, balanced_accuracy=1.0,
        per_label_accuracy={"good": 1.0, "scratch": 1.0}, auroc=1.0, conf=conf, n_images=2,
    )  # fmt: skip


def test_a_warning_among_the_notes_is_printed_as_a_warning_alone(tmp_path) -> None:
    # it came out as "note: warning: on the val split, ..."
    level = two_right_calls(conf=0.0)
    report = EvaluationReport(
        weights="best.pt", data="data.yaml", split="test", ultralytics={"metrics/mAP50(B)": 0.5},
        per_class=[], coco=None, image_level=level, save_dir=str(tmp_path),
        notes=["conf 0 picked on the val split (accuracy 1.000 there)", "warning: on the val split, it"],
    )  # fmt: skip
    lines = format_report(report).splitlines()
    assert "note: conf 0 picked on the val split (accuracy 1.000 there)" in lines
    assert "warning: on the val split, it" in lines


def test_the_first_line_names_imgsz_only_when_known_and_not_tiled(tmp_path) -> None:
    # a tiled run names its window size on the tiling line; an unknown size is not printed as "None"
    level = two_right_calls(conf=0.25)
    fields = dict(
        weights="best.pt", data="data.yaml", split="test", ultralytics={"metrics/mAP50(B)": 0.5},
        per_class=[], coco=None, image_level=level, save_dir=str(tmp_path),
    )  # fmt: skip
    first = "Evaluation of best.pt on the test split of data.yaml"

    def first_line(**changes) -> str:
        return format_report(EvaluationReport(**fields, **changes)).splitlines()[0]

    assert first_line(imgsz=128) == f"{first} at imgsz 128"
    assert first_line() == first  # imgsz None: an evaluation.json from before it was recorded
    assert first_line(imgsz=128, tiling={"tile": 256, "overlap": 0.2, "imgsz": 128}) == first
