"""Tests for segmentation.colour_head: windows, colour distance, refine, fit, storage in decoder.pt, and
the head in training and evaluation."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from common.errors import UserError
from segmentation.colour_head import (
    FEATURES,
    ColourHead,
    box_window,
    colour_distance,
    features,
    fit_colour_head,
    refuse_idle_no_colour_head,
    training_pixels,
)
from segmentation.evaluate import evaluate_model, main, predict_image
from segmentation.finetuned import DECODER_FORMAT, load_colour_head, save_decoder
from segmentation.predict import box_logits

ALL_IN = ColourHead((0.0, 0.0, 5.0))  # every in-box pixel a defect
ALL_OUT = ColourHead((0.0, 0.0, -5.0))  # no in-box pixel a defect


def test_box_window_rounds_outwards_and_clips_to_the_image():
    assert box_window((2.4, 3.6, 10.2, 7.0), (20, 30)) == (slice(3, 7), slice(2, 11))
    assert box_window((-5, -1, 40, 25), (20, 30)) == (slice(0, 20), slice(0, 30))
    rows, cols = box_window((35, 2, 50, 8), (20, 30))  # wholly right of the image: empty
    assert cols.stop - cols.start == 0 and rows == slice(2, 8)


def test_colour_distance_is_the_lab_distance_to_the_border_median():
    rgb = np.full((20, 20, 3), (200, 180, 150), np.uint8)
    rgb[8:12, 8:12] = (90, 40, 30)
    distance = colour_distance(rgb, (slice(2, 18), slice(2, 18)))
    assert distance.shape == (16, 16) and distance.dtype == np.float32
    assert np.allclose(distance[0], 0, atol=1e-3) and np.allclose(distance[:, -1], 0, atol=1e-3)
    lab = cv2.cvtColor(np.array([[[200, 180, 150], [90, 40, 30]]], np.float32) / 255, cv2.COLOR_RGB2LAB)
    expected = np.linalg.norm(lab[0, 1] - lab[0, 0])
    assert distance[6:10, 6:10] == pytest.approx(np.full((4, 4), expected), rel=1e-4)
    assert expected > 20  # a clearly different colour


SIDES = {
    "top": (0, slice(None)),
    "right": (slice(None), -1),
    "bottom": (-1, slice(None)),
    "left": (slice(None), 0),
}


@pytest.mark.parametrize("side", list(SIDES))
def test_colour_distance_border_holds_every_side(side):
    # a 5 x 5 box whose `side` and the next side clockwise are stained: 12 of the border's 20
    # pixels (corners count for both their sides), a majority only while `side` is counted
    names = list(SIDES)
    stained = np.zeros((5, 5), bool)
    stained[SIDES[side]] = stained[SIDES[names[(names.index(side) + 1) % 4]]] = True
    rgb = np.full((5, 5, 3), (200, 180, 150), np.uint8)
    rgb[stained] = (90, 40, 30)
    distance = colour_distance(rgb, (slice(0, 5), slice(0, 5)))
    assert np.allclose(distance[stained], 0, atol=1e-3)  # the stain's colour is the border median
    assert (distance[~stained] > 20).all()


def test_refine_replaces_logits_inside_each_box_only():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 5, (2, 16, 24)).astype(np.float32)
    rgb = rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)
    boxes = np.array([[2.0, 3.0, 8.0, 9.0], [30.0, 0.0, 40.0, 4.0]])  # the second lies outside the photo
    head = ColourHead((1.5, -2.0, 0.25))
    out = head.refine(logits, rgb, boxes)
    window = box_window(boxes[0], (16, 24))
    expected = features(logits[0][window], colour_distance(rgb, window)) @ np.array(head.weights, np.float32)
    assert np.allclose(out[0][window], expected)
    outside = np.ones((16, 24), bool)
    outside[window] = False
    assert np.array_equal(out[0][outside], logits[0][outside])
    assert np.array_equal(out[1], logits[1])  # no pixels in its box: SAM's logits kept
    assert (ALL_IN.refine(logits, rgb, boxes)[0][window] > 0).all()
    assert not np.shares_memory(out, logits)


def test_boxes_small_against_the_photo_keep_sams_logits():
    logits = np.full((2, 40, 80), -3.0, np.float32)
    rgb = np.zeros((40, 80, 3), np.uint8)
    boxes = np.array([[0.0, 0.0, 9.9, 5.0], [20.0, 10.0, 30.0, 20.0]])  # longest sides 9.9 and 10 px
    head = ColourHead((0.0, 0.0, 5.0), min_box_fraction=0.125)  # small: below 0.125 * 80 = 10 px
    out = head.refine(logits, rgb, boxes)
    assert np.array_equal(out[0], logits[0]) and (out[1][10:20, 20:30] == 5).all()
    truth = np.ones((40, 80), bool)
    x, _ = training_pixels(logits, rgb, boxes, truth, min_box_fraction=0.125)
    assert len(x) == 100  # the large box's pixels only
    assert len(training_pixels(logits, rgb, boxes, truth, min_box_fraction=0.0)[0]) == 150


def test_refine_checks_the_photo_fits_the_logits():
    with pytest.raises(ValueError, match="photo is"):
        ALL_IN.refine(np.zeros((1, 8, 8)), np.zeros((8, 9, 3), np.uint8), np.array([[0, 0, 4, 4]]))


def test_training_pixels_are_the_in_box_pixels_with_the_union_as_labels():
    logits = np.zeros((2, 10, 10), np.float32)
    rgb = np.zeros((10, 10, 3), np.uint8)
    truth = np.zeros((10, 10), bool)
    truth[2:4, 2:4] = True
    x, y = training_pixels(logits, rgb, np.array([[1, 1, 5, 5], [4, 4, 6, 7]]), truth)
    assert x.shape == (16 + 6, len(FEATURES)) and y.shape == (22,)
    assert y.sum() == 4 and not y[16:].any()


def test_fit_recovers_a_separating_rule_deterministically():
    rng = np.random.default_rng(1)
    z, d = rng.normal(0, 1, 5000), rng.uniform(0, 2, 5000)
    x = np.stack([z, d, np.ones_like(z)], 1)
    y = 2.0 * z - 1.5 * d + 0.5 + rng.logistic(0, 0.3, 5000) > 0
    head = fit_colour_head(x, y)
    w = np.array(head.weights)
    truth = np.array([2.0, -1.5, 0.5])
    assert w @ truth / np.linalg.norm(w) / np.linalg.norm(truth) > 0.99
    assert fit_colour_head(x, y).weights == head.weights
    sub = fit_colour_head(x, y, max_pixels=1000)
    assert sub.weights != head.weights and np.allclose(sub.weights, head.weights, rtol=0.5)


def test_logit_feature_is_clipped_before_scaling():
    logit = np.array([-50.0, 3.0, 50.0], np.float32)
    x = features(logit, np.array([0.0, 10.0, 40.0], np.float32))
    np.testing.assert_allclose(x, [[-2.0, 0.0, 1.0], [0.3, 0.5, 1.0], [2.0, 2.0, 1.0]], rtol=1e-6)


def test_fitted_head_decides_the_boxes_it_was_fitted_on():
    x = np.stack([np.linspace(-1, 1, 40), np.zeros(40), np.ones(40)], 1)
    y = x[:, 0] + np.tile([0.3, -0.3], 20) > 0
    assert fit_colour_head(x, y).min_box_fraction == 0.125
    assert fit_colour_head(x, y, min_box_fraction=0.2).min_box_fraction == 0.2


def test_fit_refuses_pixels_of_one_class():
    with pytest.raises(UserError, match="both defect and surface pixels"):
        fit_colour_head(np.ones((10, 3)), np.ones(10, bool))
    with pytest.raises(UserError, match="both defect and surface pixels"):
        fit_colour_head(np.zeros((0, 3)), np.zeros(0, bool))


def test_stored_head_round_trips_and_bad_entries_are_one_line():
    head = ColourHead((1.0, -2.5, 0.125), min_box_fraction=0.125, val_iou=(0.5, 0.625))
    assert ColourHead.from_dict(json.loads(json.dumps(head.to_dict()))) == head
    older = {k: v for k, v in head.to_dict().items() if k != "min_box_fraction"}
    assert ColourHead.from_dict(older).min_box_fraction == 0.0  # every box
    for bad in (
        {"features": ["logit"], "weights": [1.0]},
        {**head.to_dict(), "weights": [1.0, 2.0]},
        {**head.to_dict(), "weights": [1.0, float("nan"), 0.0]},
        {**head.to_dict(), "weights": [1.0, "2", 0.0]},
        {**head.to_dict(), "weights": [1.0, True, 0.0]},
        {**head.to_dict(), "min_box_fraction": 1.5},
        {**head.to_dict(), "min_box_fraction": True},
        {**head.to_dict(), "val_iou": "high"},
        {**head.to_dict(), "val_iou": [0.5, float("inf")]},
        "head",
    ):
        with pytest.raises(UserError, match="colour_head"):
            ColourHead.from_dict(bad, source="x/decoder.pt")


def test_decoder_pt_carries_the_head_and_older_files_have_none(tiny_sam, tmp_path):
    with_head = save_decoder(tiny_sam, tmp_path / "a.pt", model="vit_t", colour_head=ALL_OUT)
    without = save_decoder(tiny_sam, tmp_path / "b.pt", model="vit_t")
    assert load_colour_head(with_head) == ALL_OUT
    assert load_colour_head(without) is None
    older = torch.load(without, weights_only=True)
    del older["colour_head"]
    torch.save(older, tmp_path / "c.pt")
    assert load_colour_head(tmp_path / "c.pt") is None
    torch.save(tiny_sam.state_dict(), tmp_path / "full.pth")
    assert load_colour_head(tmp_path / "full.pth") is None


def test_evaluation_applies_the_head_to_each_box(tiny_sam, val_setup):
    split, embeddings = val_setup
    image, embedding = next((im, e) for im, e in zip(split.images, embeddings, strict=True) if im.annotations)
    size = (image.height, image.width)
    with torch.inference_mode():
        plain, scores = predict_image(tiny_sam, image, embedding)
        logits, _ = box_logits(tiny_sam, embedding, image.boxes())
        full, full_scores = predict_image(tiny_sam, image, embedding, colour_head=ALL_IN)
        empty, _ = predict_image(tiny_sam, image, embedding, colour_head=ALL_OUT)
    assert np.array_equal(plain, logits > 0) and np.array_equal(scores, full_scores)
    for index, box in enumerate(image.boxes()):
        window = box_window(box, size)
        inside = np.zeros(size, bool)
        inside[window] = True
        assert full[index][window].all() and not empty[index][window].any()
        assert np.array_equal(full[index][~inside], plain[index][~inside])
    with pytest.raises(ValueError, match="do not combine"):
        from segmentation.crops import CropRule

        predict_image(tiny_sam, image, embedding, crops=CropRule(0.5), colour_head=ALL_IN)
    with torch.inference_mode():
        kept = evaluate_model(tiny_sam, split, embeddings, name="t", progress=False, colour_head=ALL_IN)
        none = evaluate_model(tiny_sam, split, embeddings, name="t", progress=False)
    assert kept.summary.iou["all"] != none.summary.iou["all"]


def test_evaluate_cli_refuses_a_head_with_crops_unless_turned_off(tiny_dataset, tmp_path, capsys):
    checkpoint = tmp_path / "decoder.pt"
    torch.save({"format": DECODER_FORMAT, "model": "vit_t", "colour_head": ALL_IN.to_dict()}, checkpoint)
    argv = ["--data", str(tiny_dataset), "--checkpoint", str(checkpoint), "--crop-fraction", "0.2"]
    assert main([*argv, "--out", str(tmp_path / "eval"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "carries a colour head" in err and "--no-colour-head" in err
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("checkpoint", [None, ""])
def test_no_colour_head_without_a_checkpoint_is_refused_as_zero_shot_sam(checkpoint) -> None:
    # an empty --sam (an unset shell variable) is zero-shot SAM too: not 'carries none'
    with pytest.raises(
        UserError, match=r"^--no-colour-head .*: it applies only with --sam \(zero-shot SAM has none\)$"
    ):
        refuse_idle_no_colour_head(None, checkpoint, flag="--sam")
