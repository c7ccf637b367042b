"""detection.image_level: AUROC against its pairwise definition, image calls and reports on hand-made sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.detections import ImageDetections
from detection.image_level import (
    GOOD,
    auroc,
    conf_flags_all,
    confusion_matrix,
    image_labels,
    image_level_report,
    image_prediction,
    picked_on_train_warning,
    tuned_conf,
    yolo_image_labels,
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
    assert image_prediction(dets((0.25, 1)), NAMES, conf=0.25) == (NAMES[1], 0.25)  # at the threshold: kept
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


def test_yolo_image_labels_use_the_largest_box() -> None:
    labels = [
        {  # two boxes: the larger (class 3) decides
            "im_file": "/data/images/val/a.png",
            "cls": np.array([[1.0], [3.0]]),
            "bboxes": np.array([[0.5, 0.5, 0.1, 0.1], [0.5, 0.5, 0.4, 0.3]]),
        },
        {
            "im_file": "/data/images/val/b.png",
            "cls": np.zeros((0, 1)),
            "bboxes": np.zeros((0, 4)),
        },  # background
    ]
    assert yolo_image_labels(labels, NAMES) == {"a.png": "scratch", "b.png": GOOD}


def test_image_level_report_of_no_images_is_empty() -> None:
    report = image_level_report({}, {}, NAMES, conf=0.25)
    assert report.n_images == 0 and report.accuracy == 0.0 and np.isnan(report.auroc)


def test_tuned_conf_separates_confident_defects_from_unsure_goods() -> None:
    true = {"g1": GOOD, "g2": GOOD, "f1": "flip", "f2": "flip", "s1": "scratch"}
    found = {"g1": dets((0.4, 2)), "g2": dets((0.5, 2)), "f1": dets((0.9, 2)), "f2": dets((0.7, 2))}
    conf, accuracy = tuned_conf(true, {**found, "s1": dets((0.8, 3))}, NAMES)
    assert conf == pytest.approx(0.6) and accuracy == 1.0  # between the goods' 0.5 and the defects' 0.7
    assert image_level_report(true, {**found, "s1": dets((0.8, 3))}, NAMES, conf).accuracy == 1.0
    assert image_level_report(true, {**found, "s1": dets((0.8, 3))}, NAMES, 0.25).accuracy == 0.6


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ({}, (0.25, 1.0)),  # no boxes: every threshold is right, nothing to pick; the default is kept
        ({"f": dets((1.0, 2))}, (0.5, 1.0)),  # ties between 1.0 / 2 and just above 1: the one nearest 0.25
        # a sure box on a good image, none on the defect: only "no box counts" gets the good one right
        ({"g": dets((1.0, 2))}, (float(np.nextafter(1.0, 2)), 0.5)),
    ],
)
def test_tuned_conf_edge_cases(found, expected) -> None:
    true = {"g": GOOD, "f": "flip"} if found != {} else {"g": GOOD}
    conf, accuracy = tuned_conf(true, found, NAMES)
    assert (conf, accuracy) == expected  # exactly: just above 1.0 is not 1.0


def test_image_labels_of_equal_areas_keep_the_first_instance() -> None:
    coco = {
        "images": [{"id": 1, "file_name": "a.png"}],
        "annotations": [  # two 4-pixel instances: the first listed decides, as argmax would
            {"image_id": 1, "category_id": 2, "bbox": [0, 0, 2, 2], "area": 4},
            {"image_id": 1, "category_id": 3, "bbox": [5, 5, 2, 2], "area": 4},
            {"image_id": 1, "category_id": 1, "bbox": [0, 5, 4, 1]},  # no area: the box's, 4 too
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)],
    }
    assert image_labels(coco) == {"a.png": "color"}


def test_yolo_image_labels_of_equal_boxes_keep_the_first() -> None:
    label = {
        "im_file": "a.png",
        "cls": np.array([[2.0], [0.0]]),
        "bboxes": np.array([[0.2, 0.2, 0.2, 0.1], [0.7, 0.7, 0.1, 0.2]]),  # equal areas, other shapes
    }
    assert yolo_image_labels([label], NAMES) == {"a.png": "flip"}


def test_image_prediction_of_equal_top_scores_takes_the_first_box() -> None:
    assert image_prediction(dets((0.7, 2), (0.7, 0)), NAMES, conf=0.25) == ("flip", 0.7)


@pytest.mark.parametrize(("default", "expected"), [(0.25, 0.15), (0.5, 0.55), (0.0, 0.15), (1.0, 0.55)])
def test_tuned_conf_picks_among_equally_accurate_thresholds_the_one_nearest_default(default, expected):
    # top scores good 0.1, flip 0.2, good 0.5, flip 0.6: 0.15 and 0.55 each get 3 of 4 right
    true = {"g1": GOOD, "f1": "flip", "g2": GOOD, "f2": "flip"}
    found = {"g1": dets((0.1, 2)), "f1": dets((0.2, 2)), "g2": dets((0.5, 2)), "f2": dets((0.6, 2))}
    conf, accuracy = tuned_conf(true, found, NAMES, default=default)
    assert conf == pytest.approx(expected) and accuracy == 0.75


def test_tuned_conf_never_sits_on_a_top_score_shared_by_two_images() -> None:
    # a good and a flip image both at 0.5: only the midpoints 0.4 and 0.7 are candidates, not 0.5
    # itself, though it is the default and as accurate as 0.4 (3 of 4 right)
    true = {"g1": GOOD, "g2": GOOD, "f1": "flip", "f2": "flip"}
    found = {"g1": dets((0.3, 2)), "g2": dets((0.5, 2)), "f1": dets((0.5, 2)), "f2": dets((0.9, 2))}
    conf, accuracy = tuned_conf(true, found, NAMES, default=0.5)
    assert conf == pytest.approx(0.4) and accuracy == 0.75


def test_tuned_conf_never_sits_on_a_top_score_of_1() -> None:
    # a sure flip at 1.0 and a good at 0.5: 0.75 and 1.0 itself are as accurate and 1.0 is nearer the
    # default 0.9, but 1.0 is no candidate: a box scored 1.0 on an unseen photo would sit on the threshold
    true = {"g": GOOD, "f": "flip"}
    conf, accuracy = tuned_conf(true, {"g": dets((0.5, 2)), "f": dets((1.0, 2))}, NAMES, default=0.9)
    assert conf == 0.75 and accuracy == 1.0


def test_image_labels_compare_box_areas_not_instance_areas() -> None:
    coco = {
        "images": [{"id": 1, "file_name": "a.png"}],
        "annotations": [  # a thin diagonal scratch: a large box, a small area
            {"image_id": 1, "category_id": 4, "bbox": [0, 0, 20, 20], "area": 30},
            {"image_id": 1, "category_id": 2, "bbox": [30, 30, 8, 8], "area": 60},
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)],
    }
    assert image_labels(coco) == {"a.png": "scratch"}


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_coco_and_yolo_labels_of_one_converted_mask_agree(task: str) -> None:
    # one 40 x 40 mask, two classes: a thin diagonal scratch (30 pixels, a 30 x 30 box) and a solid
    # color square (64 pixels, an 8 x 8 box). Written by the converters as COCO and as YOLO box or
    # polygon labels, both readers must call the image alike (COCO read the mask's area: 'color')
    from converters.coco import CocoImage, build_coco
    from converters.masks import mask_to_instances
    from converters.yolo import labels_text

    mask = np.zeros((40, 40), np.uint8)
    mask[np.arange(30), np.arange(30)] = 4
    mask[31:39, 31:39] = 2
    instances = mask_to_instances(mask, value_names={2: "color", 4: "scratch"}).instances
    coco = build_coco([CocoImage(1, "a.png", 40, 40, instances)], names=NAMES)
    text = labels_text(
        instances, class_ids={n: i for i, n in enumerate(NAMES)}, width=40, height=40, task=task
    )
    rows = [np.array(line.split(), dtype=float) for line in text.splitlines()]
    boxes = [row[1:] for row in rows]  # cx, cy, w, h
    if task == "segment":  # ultralytics' segments2boxes: the polygon's extent, as cx, cy, w, h
        polygons = [row[1:].reshape(-1, 2) for row in rows]
        boxes = [np.concatenate([(p.min(0) + p.max(0)) / 2, p.max(0) - p.min(0)]) for p in polygons]
    label = {"im_file": "a.png", "cls": np.array([[row[0]] for row in rows]), "bboxes": np.array(boxes)}
    assert yolo_image_labels([label], NAMES) == image_labels(coco) == {"a.png": "scratch"}


def test_yolo_image_labels_compare_box_areas() -> None:
    label = {
        "im_file": "a.png",
        "cls": np.array([[3.0], [1.0]]),
        "bboxes": np.array([[0.5, 0.5, 0.6, 0.02], [0.2, 0.2, 0.2, 0.2]]),  # long and thin, then square
    }
    assert yolo_image_labels([label], NAMES) == {"a.png": "color"}


def test_tuned_conf_takes_no_candidate_from_images_without_boxes() -> None:
    # candidates: 0.6 / 2 and (0.6 + 1) / 2; an image without boxes has no top score to split at
    conf, accuracy = tuned_conf({"g": GOOD, "f": "flip"}, {"f": dets((0.6, 2))}, NAMES)
    assert (conf, accuracy) == (0.3, 1.0)


def test_tuned_conf_below_every_top_score_is_halfway_to_the_lowest_not_0() -> None:
    # sure defects, goods without boxes: every threshold under 0.998 is right; 0 would let any box an
    # unseen good photo gets count (and the cascade would send every box down to the floor to SAM)
    true = {"g": GOOD, "f1": "flip", "f2": "flip"}
    conf, accuracy = tuned_conf(true, {"f1": dets((0.999, 2)), "f2": dets((0.998, 2))}, NAMES)
    assert conf == pytest.approx(0.499) and accuracy == 1.0
    assert tuned_conf(true, {"f1": dets((0.999, 2)), "f2": dets((0.998, 2))}, NAMES, default=0.9)[0] == 0.499


def test_tuned_conf_on_no_images_has_no_accuracy() -> None:
    assert tuned_conf({}, {}, NAMES) == (0.25, 0.0)  # the default kept; as image_level_report of no images


def test_a_conf_picked_on_no_image_or_on_good_and_defect_images_is_not_flagged() -> None:
    # the warning is for a pick made on defect images alone; no image at all gives no pick to warn of
    one = ImageDetections(np.zeros((1, 4)), np.array([0.8]), np.array([0]))
    assert conf_flags_all({}, {}, NAMES, 0.0) is None
    assert conf_flags_all({"a": "good", "b": "bent"}, {"b": one}, NAMES, 0.5) is None  # a is left good
    message = conf_flags_all({"b": "bent", "c": "flip"}, {"b": one}, NAMES, 0.25)
    assert message.startswith("conf 0.25 was picked on 2 images, none of them good: nothing there tells")


def test_a_conf_picked_on_good_images_alone_is_flagged() -> None:
    # a val split without a defect image: the pick lies above every good image's top box, whatever the
    # defects score, so it said 'accuracy 1.000 there' of a threshold that may miss every defect
    true = {"a": "good", "b": "good"}
    found = {"a": ImageDetections(np.zeros((1, 4)), np.array([0.9]), np.array([0]))}
    conf, accuracy = tuned_conf(true, found, NAMES)
    assert conf > 0.9 and accuracy == 1.0
    message = conf_flags_all(true, found, NAMES, conf)
    assert message == (
        f"conf {conf:.6g} was picked on 2 images, none of them defective: nothing there tells it how many "
        "defects it misses"
    )


@pytest.mark.parametrize("conf_from", [None, "val", "test"])
def test_only_a_pick_on_the_train_photos_is_warned_of(conf_from) -> None:
    # test is not val, but the detector never trained on it either: its scores are those of unseen photos
    assert picked_on_train_warning(conf_from) is None
    assert picked_on_train_warning("train").startswith("warning: --conf-from train picks the threshold on")
