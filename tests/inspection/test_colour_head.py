"""The cascade with a colour head: the head's decision inside each box, SAM's outside, from the checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from common.errors import UserError
from inspection.checkpoints import check_sam_checkpoint
from inspection.inspector import Inspector
from segmentation.colour_head import ColourHead, box_window
from segmentation.crops import CropRule
from segmentation.decoder_onnx import missing_packages
from segmentation.embeddings import load_rgb
from segmentation.finetuned import save_decoder
from segmentation.predict import box_logits
from tests.inspection.conftest import StubDetector
from tests.segmentation.conftest import build_tiny_sam

#: Hand-made heads: every in-box pixel foreground, or every in-box pixel background.
ALL_IN = ColourHead((0.0, 0.0, 5.0))
ALL_OUT = ColourHead((0.0, 0.0, -5.0))
#: Oracle boxes on two.png (60x80), fractional edges included, one reaching past the photo.
ORACLE_BOXES = np.array([[4.5, 6.0, 22.0, 21.3], [38.0, 28.0, 90.0, 55.0]])


def in_box(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(N, H, W)`` bool: the pixels the head decides for each box (its window)."""
    inside = np.zeros((len(boxes), *size), bool)
    for index, box in enumerate(boxes):
        inside[index][box_window(box, size)] = True
    return inside


def check_head_masks(
    masks: np.ndarray, probs: np.ndarray, plain: np.ndarray, inside: np.ndarray, value: bool
):
    """The head's constant inside each box, the no-head masks outside, the probabilities agreeing."""
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(masks[inside], value)
    np.testing.assert_array_equal(masks[~inside], plain[~inside])
    in_box_probs = probs[inside].astype(np.float32)
    assert np.all(in_box_probs > 0.99) if value else np.all(in_box_probs < 0.01)
    clear = np.abs(probs.astype(np.float32) - 0.5) > 1e-2
    np.testing.assert_array_equal(masks[clear], probs[clear] > 0.5)


@pytest.mark.parametrize(
    ("head", "value", "runtime"),
    [
        (ALL_IN, True, "torch"),
        (ALL_OUT, False, "torch"),
        pytest.param(
            ALL_IN,
            True,
            "onnx",
            marks=pytest.mark.skipif(bool(missing_packages()), reason=f"not installed: {missing_packages()}"),
        ),
    ],
)
def test_the_head_decides_inside_the_boxes_and_sam_outside(photos, tiny_sam, head, value, runtime):
    settings = {"keep_probs": True, "runtime": runtime, "speck_cells": 0}  # masks as SAM and the head made
    plain = Inspector(StubDetector(), tiny_sam, **settings)
    headed = Inspector(StubDetector(), tiny_sam, **settings, colour_head=head)
    expected, result = plain(photos / "two.png"), headed(photos / "two.png")
    assert result.boxes.tolist() == expected.boxes.tolist() and len(result) == 2
    np.testing.assert_array_equal(result.mask_scores, expected.mask_scores)  # SAM's predicted IoU
    inside = in_box(result.boxes, (60, 80))
    assert (expected.masks[inside] != value).any()  # the head changes something
    check_head_masks(result.masks, result.mask_probs, expected.masks, inside, value)
    # the evaluation's oracle: ground-truth boxes on the embedding of the photo just inspected
    embedding = headed.embedding(photos / "two.png")
    masks, _, probs = headed.segment(embedding, ORACLE_BOXES)
    plain_masks, _, _ = plain.segment(plain.embedding(photos / "two.png"), ORACLE_BOXES)
    check_head_masks(masks, probs, plain_masks, in_box(ORACLE_BOXES, (60, 80)), value)


def test_the_head_reads_the_colours_of_the_photo_being_segmented(photos, tiny_sam):
    head = ColourHead((1.0, -3.0, 1.0))  # in-box pixels far from the box's border colour go background
    inspector = Inspector(StubDetector(), tiny_sam, colour_head=head)
    inspector(photos / "two.png")
    for name in ("two.png", "one.png"):  # the photo just inspected, then one never inspected
        embedding = inspector.embedding(photos / name)
        masks, _, _ = inspector.segment(embedding, ORACLE_BOXES)
        logits, _ = box_logits(tiny_sam, embedding, ORACLE_BOXES)
        expected = head.refine(logits, load_rgb(photos / name), ORACLE_BOXES) > 0
        assert 0 < expected.sum() < expected.size
        np.testing.assert_array_equal(masks, expected)
    other_rgb = load_rgb(photos / "two.png")  # given explicitly, the pixels win over the file
    given, _, _ = inspector.segment(embedding, ORACLE_BOXES, rgb=other_rgb)
    np.testing.assert_array_equal(given, head.refine(logits, other_rgb, ORACLE_BOXES) > 0)
    assert not np.array_equal(given, masks)


def test_an_embedding_of_unknown_origin_needs_the_photo(photos, tiny_sam):
    inspector = Inspector(StubDetector(), tiny_sam, colour_head=ALL_IN)
    embedding = inspector.embedding(photos / "one.png")
    inspector.embedding(photos / "two.png")  # the inspector no longer knows where the first came from
    with pytest.raises(ValueError, match="the colour head needs the photo"):
        inspector.segment(embedding, ORACLE_BOXES)
    masks, _, _ = inspector.segment(embedding, ORACLE_BOXES, path=photos / "one.png")
    assert masks[in_box(ORACLE_BOXES, (60, 80))].all()


def test_a_head_with_crops_is_one_line(tiny_sam):
    with pytest.raises(UserError) as error:
        Inspector(StubDetector(), tiny_sam, crops=CropRule(max_fraction=0.4), colour_head=ALL_IN)
    assert "--crop-fraction" in str(error.value) and "\n" not in str(error.value)
    assert Inspector(StubDetector(), tiny_sam, crops=CropRule(max_fraction=0.4)).colour_head is None


# --- from the checkpoint ----------------------------------------------------------------------


@pytest.fixture
def head_decoder(tmp_path: Path, tiny_registry: Path) -> Path:
    """A ``decoder.pt`` of the tiny SAM that carries :data:`ALL_IN`."""
    return save_decoder(
        build_tiny_sam(seed=1), tmp_path / "sam" / "decoder.pt", model="tiny", colour_head=ALL_IN
    )


def test_from_checkpoints_applies_the_decoders_head(photos, head_decoder, tiny_registry, detector_file):
    assert check_sam_checkpoint(head_decoder, base_checkpoint=tiny_registry).colour_head == ALL_IN
    assert check_sam_checkpoint(tiny_registry, model="tiny").colour_head is None  # a full state dict
    assert check_sam_checkpoint(None, model="tiny").colour_head is None  # zero-shot
    inspector = Inspector.from_checkpoints(
        detector_file, head_decoder, base_checkpoint=tiny_registry, use_cache=False
    )
    assert inspector.colour_head == ALL_IN
    result = inspector(photos / "two.png")
    assert result.masks[in_box(result.boxes, (60, 80))].all()
    off = Inspector.from_checkpoints(
        detector_file, head_decoder, base_checkpoint=tiny_registry, use_cache=False, use_colour_head=False
    )
    assert off.colour_head is None
    assert not off(photos / "two.png").masks[in_box(result.boxes, (60, 80))].all()


def test_from_checkpoints_refuses_a_head_with_crops_before_loading(
    head_decoder, tiny_registry, detector_file, monkeypatch
):
    import inspection.inspector

    monkeypatch.setattr(
        inspection.inspector, "load_sam_checkpoint", lambda *a, **k: pytest.fail("loaded SAM")
    )
    with pytest.raises(UserError, match="--crop-fraction"):
        Inspector.from_checkpoints(
            detector_file, head_decoder, base_checkpoint=tiny_registry, crops=CropRule(max_fraction=0.4)
        )


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"features": ["logit"], "weights": [1.0]}, "colour_head is not a colour head of features"),
        ({"features": ["logit", "colour_distance", "bias"], "weights": [1.0, 2.0]}, "needs 3 weights"),
        ({"features": ["logit", "colour_distance", "bias"], "weights": [1.0, float("nan"), 0.0]}, "finite"),
        ("weights", "colour_head is not a colour head"),
    ],
)
def test_a_malformed_head_is_one_line_at_check_time(
    head_decoder, tiny_registry, detector_file, entry, fragment
):
    check_malformed_entry(head_decoder, "colour_head", entry, fragment, tiny_registry, detector_file)


def check_malformed_entry(
    decoder: Path, key: str, entry: object, fragment: str, registry: Path, detector_file: Path
) -> None:
    """``decoder``'s ``key`` replaced by ``entry`` is one line naming it and ``fragment``, at the cheap
    check and when the inspector loads (the colour head's and the colour prompt's tests)."""
    data = torch.load(decoder, weights_only=True)
    data[key] = entry
    torch.save(data, decoder)
    for call in (
        lambda: check_sam_checkpoint(decoder, base_checkpoint=registry),
        lambda: Inspector.from_checkpoints(detector_file, decoder, base_checkpoint=registry),
    ):
        with pytest.raises(UserError) as error:
            call()
        assert fragment in str(error.value) and str(decoder) in str(error.value)
        assert "\n" not in str(error.value)
