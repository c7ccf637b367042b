"""detection.evaluate: ground truth as predictions scores top marks both ways; image-level hand-made cases."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import ops

from common.errors import UserError
from detection.evaluate import (
    GOOD,
    ImageDetections,
    RecordingValidator,
    auroc,
    coco_map,
    confusion_matrix,
    evaluate,
    format_report,
    image_labels,
    image_level_report,
    image_prediction,
    main,
)

NAMES = ["bent", "color", "flip", "scratch"]


def dets(*rows: tuple[float, int], box=(0.0, 0.0, 4.0, 4.0)) -> ImageDetections:
    """Detections with the given ``(score, class)`` rows, all on one box."""
    return ImageDetections(
        boxes=np.array([box] * len(rows), dtype=float).reshape(-1, 4),
        scores=np.array([s for s, _ in rows], dtype=float),
        classes=np.array([c for _, c in rows], dtype=int),
    )


# --- AUROC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "positive", "expected"),
    [
        ([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0], 1.0),  # perfect ranking
        ([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], 0.0),  # inverted
        ([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 0.5),  # all tied: a coin flip
        ([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0], 0.75),  # 3 of 4 positive-negative pairs ordered
        ([0.7, 0.0, 0.0, 0.0], [1, 1, 0, 0], 0.75),  # a missed defect ties with the goods at 0: half credit
    ],
)
def test_auroc_hand_cases(scores, positive, expected) -> None:
    assert auroc(scores, [bool(p) for p in positive]) == pytest.approx(expected)


def test_auroc_without_both_classes_is_nan() -> None:
    assert np.isnan(auroc([0.1, 0.2], [True, True])) and np.isnan(auroc([], []))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=2, max_size=30))
def test_auroc_equals_the_pairwise_definition(pairs) -> None:
    scores = [s / 4 for s, _ in pairs]  # few distinct values: many ties
    positive = [p for _, p in pairs]
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = [s for s, p in zip(scores, positive, strict=True) if not p]
    if not pos or not neg:
        return
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    assert auroc(scores, positive) == pytest.approx(wins / (len(pos) * len(neg)))


# --- image-level classification ------------------------------------------------------------------


def test_image_prediction_takes_the_top_box_above_the_threshold() -> None:
    assert image_prediction(dets((0.3, 1), (0.9, 3)), NAMES, conf=0.25) == (NAMES[3], 0.9)
    assert image_prediction(dets((0.2, 1)), NAMES, conf=0.25) == (GOOD, 0.2)  # below: good, score kept
    assert image_prediction(dets(), NAMES, conf=0.25) == (GOOD, 0.0)
    assert image_prediction(None, NAMES, conf=0.25) == (GOOD, 0.0)


def test_confusion_matrix_rows_are_truth() -> None:
    true, predicted = ["good", "cut", "cut", "hole"], ["good", "good", "cut", "cut"]
    matrix = confusion_matrix(true, predicted, ["good", "cut", "hole"])
    assert matrix.tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 0]]


def test_image_level_report_on_a_hand_made_set() -> None:
    truth = {"g1.png": GOOD, "g2.png": GOOD, "b1.png": "bent", "b2.png": "bent", "f1.png": "flip"}
    detections = {
        "g1.png": dets(),  # good, nothing found
        "g2.png": dets((0.3, 3)),  # false alarm: called scratch
        "b1.png": dets((0.8, 0), (0.4, 2)),  # right
        "b2.png": dets((0.1, 0)),  # found but below the threshold: called good
        # f1.png: the validator saw no box at all
    }
    report = image_level_report(truth, detections, NAMES, conf=0.25)
    assert report.labels == [GOOD, *NAMES] and report.n_images == 5
    assert report.matrix == [
        [1, 0, 0, 0, 1],
        [1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    assert report.accuracy == pytest.approx(2 / 5)
    assert report.per_label_accuracy == {GOOD: 0.5, "bent": 0.5, "flip": 0.0}  # labels with images only
    assert report.balanced_accuracy == pytest.approx(1 / 3)
    # anomaly scores: goods 0.0, 0.3; defects 0.8, 0.1, 0.0 -> pairs won: 2 + 0.5 + 0 of 6... computed:
    # (0.8 > both) 2, (0.1 vs 0.0 win, vs 0.3 lose) 1, (0.0 vs 0.0 tie, vs 0.3 lose) 0.5 -> 3.5 / 6
    assert report.auroc == pytest.approx(3.5 / 6)


def test_image_labels_use_the_largest_instance() -> None:
    coco = {
        "images": [{"id": 1, "file_name": "val/a.png"}, {"id": 2, "file_name": "val/b.png"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4},
            {"image_id": 1, "category_id": 4, "bbox": [0, 0, 5, 5], "area": 20},
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)],
    }
    assert image_labels(coco) == {"a.png": "scratch", "b.png": GOOD}


# --- COCOeval --------------------------------------------------------------------------------------


def coco_truth_as_detections(coco: dict) -> dict[str, ImageDetections]:
    by_image: dict[int, list] = {image["id"]: [] for image in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        by_image[ann["image_id"]].append(((x, y, x + w, y + h), ann["category_id"] - 1))
    return {
        Path(image["file_name"]).name: ImageDetections(
            boxes=np.array([b for b, _ in by_image[image["id"]]], dtype=float).reshape(-1, 4),
            scores=np.ones(len(by_image[image["id"]])),
            classes=np.array([c for _, c in by_image[image["id"]]], dtype=int),
        )
        for image in coco["images"]
    }


def test_coco_map_of_the_ground_truth_is_one(tiny_dataset: Path) -> None:
    coco = json.loads((tiny_dataset / "annotations" / "instances_val.json").read_text())
    detections = coco_truth_as_detections(coco)
    scores = coco_map(coco, detections)
    assert scores["mAP50"] == pytest.approx(1.0) and scores["mAP50-95"] == pytest.approx(1.0)
    assert scores["n_detections"] == len(coco["annotations"])
    assert set(scores["per_class"]) == set(NAMES)
    assert scores["per_class"]["flip"]["AP50-95"] == pytest.approx(1.0)
    shifted = {name: ImageDetections(d.boxes + 40.0, d.scores, d.classes) for name, d in detections.items()}
    assert coco_map(coco, shifted)["mAP50"] == 0.0


def test_coco_map_refuses_images_the_file_does_not_list(tiny_dataset: Path) -> None:
    coco = json.loads((tiny_dataset / "annotations" / "instances_val.json").read_text())
    with pytest.raises(UserError, match="stranger.png"):
        coco_map(coco, {"stranger.png": dets((0.9, 0))})


# --- the whole evaluation, ground truth fed through ultralytics' validator -----------------------


class GroundTruthValidator(RecordingValidator):
    """Scores each image's own labels as its predictions (score 1), in the validator's pixel space."""

    def update_metrics(self, preds, batch) -> None:
        size = torch.tensor(batch["img"].shape[2:], device=self.device)[[1, 0, 1, 0]]
        truth = []
        for si in range(len(preds)):
            idx = batch["batch_idx"] == si
            boxes = ops.xywh2xyxy(batch["bboxes"][idx]) * size
            n = boxes.shape[0]
            truth.append(
                {
                    "bboxes": boxes,
                    "conf": torch.ones(n, device=self.device),
                    "cls": batch["cls"][idx].reshape(-1),
                    "extra": torch.zeros(n, 0, device=self.device),
                }
            )
        super().update_metrics(truth, batch)


@pytest.fixture(scope="module")
def untrained_detector() -> DetectionModel:
    """A random YOLO11n with the data set's classes: the validator needs a model; its outputs are replaced."""
    model = DetectionModel("yolo11n.yaml", nc=len(NAMES), verbose=False)
    model.names = dict(enumerate(NAMES))
    return model


def test_ground_truth_scores_one_in_ultralytics_and_cocoeval(
    tiny_dataset: Path, tmp_path: Path, untrained_detector, network_attempts
) -> None:
    report = evaluate(
        tiny_dataset / "data.yaml",
        untrained_detector,
        split="val",
        imgsz=64,
        device="cpu",
        out=tmp_path / "eval",
        plots=False,
        validator_class=GroundTruthValidator,
    )
    # ultralytics' ceiling is 0.995, not 1: its 101-point trapezoid integral drops to precision 0 at
    # recall 1.0 (the sentinel it appends), losing half of the last 0.01-wide step.
    assert report.ultralytics["metrics/mAP50(B)"] == pytest.approx(0.995)
    assert report.ultralytics["metrics/mAP50-95(B)"] == pytest.approx(0.995)
    assert report.coco is not None and report.coco["mAP50"] == pytest.approx(1.0)
    assert report.coco["mAP50-95"] == pytest.approx(1.0)  # boxes survive letterbox -> original pixels
    assert {row["Class"] for row in report.per_class} == set(NAMES)
    assert all(row["mAP50"] == pytest.approx(0.995) and row["Box-R"] == 1.0 for row in report.per_class)
    level = report.image_level
    assert level.accuracy == 1.0 and level.auroc == 1.0 and level.n_images == 6
    assert np.trace(np.array(level.matrix)) == 6
    saved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert saved["coco"]["mAP50"] == pytest.approx(1.0) and saved["image_level"]["labels"][0] == GOOD
    text = format_report(report)
    assert "pycocotools COCOeval" in text and "anomaly AUROC" in text
    assert network_attempts == []


def test_without_a_coco_file_the_labels_come_from_yolo(tiny_dataset, tmp_path, untrained_detector) -> None:
    report = evaluate(
        tiny_dataset / "data.yaml",
        untrained_detector,
        split="val",
        coco_file=tmp_path / "none.json",
        imgsz=64,
        device="cpu",
        out=tmp_path / "eval",
        plots=False,
        validator_class=GroundTruthValidator,
    )
    assert report.coco is None and "cross-check skipped" in report.notes[0]
    assert report.image_level.accuracy == 1.0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--weights", "nowhere.pt"], "error: weights not found: nowhere.pt"),
        (["--weights", "nowhere.pt", "--data", "missing.yaml"], "error: data file not found: missing.yaml"),
    ],
)
def test_cli_errors_are_one_line(tiny_dataset: Path, capsys, args: list[str], expected: str) -> None:
    argv = ["--data", str(tiny_dataset / "data.yaml"), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1
