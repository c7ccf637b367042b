"""The cascade with a colour prompt: each box's colour-distance map as SAM's mask_input, from decoder.pt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.errors import UserError
from inspection.checkpoints import check_sam_checkpoint
from inspection.inspector import Inspector
from segmentation.colour_prompt import ColourPrompt
from segmentation.crops import CropRule
from segmentation.decoder_onnx import missing_packages
from segmentation.embeddings import load_rgb
from segmentation.finetuned import save_decoder
from segmentation.predict import box_logits
from segmentation.tta import flip_averaged_logits
from tests.inspection.conftest import StubDetector
from tests.inspection.test_anomaly_regions import FixedRegions
from tests.inspection.test_colour_head import check_malformed_entry
from tests.segmentation.conftest import build_tiny_sam

#: A prompt whose maps reach the clip inside the boxes of the test photos (their noise is far from 10).
PROMPT = ColourPrompt(centre=10.0, scale=1.0, clip=8.0)
#: Oracle boxes on two.png (60x80): six, so they span two of the CPU's decoder calls of four.
ORACLE_BOXES = np.array(
    [[4.5, 6.0, 22.0, 21.3], [38.0, 28.0, 90.0, 55.0], [0, 0, 30, 30], [10, 20, 50, 58], [60, 5, 79, 25],
     [25, 25, 45, 45]]
)  # fmt: skip
#: Masks as SAM made them: no speck removal, no mask NMS.
RAW = {"speck_cells": 0, "mask_iou": 1.0}


def prompted_logits(sam, embedding, rgb: np.ndarray, boxes: np.ndarray, prompt=PROMPT) -> np.ndarray:
    """``(N, H, W)`` logits of ``boxes`` with their maps as ``mask_input`` (None: the boxes alone)."""
    mask_input = None if prompt is None else prompt.maps(sam, embedding, rgb, boxes)
    return box_logits(sam, embedding, boxes, mask_input=mask_input)[0]


def test_the_maps_are_every_boxs_mask_input(photos, tiny_sam):
    prompted = Inspector(StubDetector(), tiny_sam, keep_probs=True, **RAW, colour_prompt=PROMPT)
    plain = Inspector(StubDetector(), tiny_sam, keep_probs=True, **RAW)
    result, without = prompted(photos / "two.png"), plain(photos / "two.png")
    assert result.boxes.tolist() == without.boxes.tolist() and len(result) == 2
    embedding, rgb = prompted.embedding(photos / "two.png"), load_rgb(photos / "two.png")
    expected = prompted_logits(tiny_sam, embedding, rgb, result.boxes)
    np.testing.assert_array_equal(result.masks, expected > 0)
    np.testing.assert_allclose(result.mask_probs.astype(np.float32), 1 / (1 + np.exp(-expected)), atol=1e-3)
    assert not np.array_equal(result.masks, without.masks)
    # the evaluation's oracle: ground-truth boxes on the photo just inspected, in two decoder calls
    masks, _, _ = prompted.segment(embedding, ORACLE_BOXES)
    np.testing.assert_array_equal(masks, prompted_logits(tiny_sam, embedding, rgb, ORACLE_BOXES) > 0)
    assert not np.array_equal(masks, prompted_logits(tiny_sam, embedding, rgb, ORACLE_BOXES, None) > 0)


@pytest.mark.skipif(bool(missing_packages()), reason=f"not installed: {missing_packages()}")
def test_the_onnx_decoder_gets_the_maps_too(photos, tiny_sam):
    inspector = Inspector(StubDetector(), tiny_sam, keep_probs=True, runtime="onnx", colour_prompt=PROMPT)
    embedding = inspector.embedding(photos / "two.png")
    _, _, probs = inspector.segment(embedding, ORACLE_BOXES, path=photos / "two.png")
    rgb = load_rgb(photos / "two.png")
    for prompt, same in ((PROMPT, True), (None, False)):
        logits = prompted_logits(tiny_sam, embedding, rgb, ORACLE_BOXES, prompt)
        assert np.allclose(probs.astype(np.float32), 1 / (1 + np.exp(-logits)), atol=2e-3) == same


@pytest.mark.skipif(bool(missing_packages()), reason=f"not installed: {missing_packages()}")
def test_the_onnx_decoder_gets_each_flipped_views_maps(photos, tiny_sam):
    inspector = Inspector(
        StubDetector(), tiny_sam, keep_probs=True, runtime="onnx", tta=True, colour_prompt=PROMPT
    )
    embedding, rgb = inspector.embedding(photos / "two.png"), load_rgb(photos / "two.png")
    _, _, probs = inspector.segment(embedding, ORACLE_BOXES, path=photos / "two.png")
    views = {"identity": embedding, **inspector.flip_embeddings(photos / "two.png")}
    for prompt, same in ((PROMPT, True), (None, False)):
        logits, _ = flip_averaged_logits(
            tiny_sam, views, ORACLE_BOXES, (60, 80), colour_prompt=prompt, rgb=rgb
        )
        assert np.allclose(probs.astype(np.float32), 1 / (1 + np.exp(-logits)), atol=2e-3) == same


def test_the_anomaly_regions_boxes_get_their_maps(photos, tiny_sam):
    regions = FixedRegions([[50, 10, 70, 40]])
    inspector = Inspector(StubDetector(), tiny_sam, **RAW, regions=regions, colour_prompt=PROMPT)
    result = inspector(photos / "two.png")
    assert len(result) == 3 and result.names[2] == "anomaly"
    embedding = inspector.embedding(photos / "two.png")
    rgb = load_rgb(photos / "two.png")
    np.testing.assert_array_equal(result.masks, prompted_logits(tiny_sam, embedding, rgb, result.boxes) > 0)
    assert not np.array_equal(
        result.masks[2], prompted_logits(tiny_sam, embedding, rgb, result.boxes[2:], None)[0] > 0
    )


def test_a_prompt_and_a_head_stack_as_in_segmentation_evaluate(photos, tiny_sam):
    from segmentation.colour_head import ColourHead

    head = ColourHead((1.0, -3.0, 1.0))
    inspector = Inspector(StubDetector(), tiny_sam, colour_head=head, colour_prompt=PROMPT)
    embedding, rgb = inspector.embedding(photos / "one.png"), load_rgb(photos / "one.png")
    masks, _, _ = inspector.segment(embedding, ORACLE_BOXES, path=photos / "one.png")
    logits = prompted_logits(tiny_sam, embedding, rgb, ORACLE_BOXES)
    np.testing.assert_array_equal(masks, head.refine(logits, rgb, ORACLE_BOXES) > 0)


def test_an_embedding_of_unknown_origin_needs_the_photo(photos, tiny_sam):
    inspector = Inspector(StubDetector(), tiny_sam, colour_prompt=PROMPT)
    embedding = inspector.embedding(photos / "one.png")
    inspector.embedding(photos / "two.png")  # the inspector no longer knows where the first came from
    with pytest.raises(ValueError, match="the colour prompt needs the photo"):
        inspector.segment(embedding, ORACLE_BOXES)


def test_a_prompt_with_crops_is_one_line(tiny_sam):
    with pytest.raises(UserError) as error:
        Inspector(StubDetector(), tiny_sam, crops=CropRule(max_fraction=0.4), colour_prompt=PROMPT)
    assert str(error.value) == (
        "the SAM checkpoint carries a colour prompt, which works on the whole photo: "
        "drop --crop-fraction, or pass --no-colour-prompt"
    )
    assert Inspector(StubDetector(), tiny_sam, crops=CropRule(max_fraction=0.4)).colour_prompt is None


def test_with_flips_each_view_gets_the_maps_drawn_on_it(photos, tiny_sam):
    inspector = Inspector(StubDetector(), tiny_sam, tta=True, colour_prompt=PROMPT)
    embedding, rgb = inspector.embedding(photos / "two.png"), load_rgb(photos / "two.png")
    masks, scores, _ = inspector.segment(embedding, ORACLE_BOXES)  # two decoder calls of four boxes
    views = {"identity": embedding, **inspector.flip_embeddings(photos / "two.png")}
    logits, expected = flip_averaged_logits(
        tiny_sam, views, ORACLE_BOXES, (60, 80), colour_prompt=PROMPT, rgb=rgb
    )
    np.testing.assert_array_equal(masks, logits > 0)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    plain, _ = flip_averaged_logits(tiny_sam, views, ORACLE_BOXES, (60, 80))
    assert not np.array_equal(masks, plain > 0)


# --- from the checkpoint ----------------------------------------------------------------------


@pytest.fixture
def prompt_decoder(tmp_path: Path, tiny_registry: Path) -> Path:
    """A ``decoder.pt`` of the tiny SAM that carries :data:`PROMPT`."""
    return save_decoder(
        build_tiny_sam(seed=1), tmp_path / "sam" / "decoder.pt", model="tiny", colour_prompt=PROMPT
    )


def test_from_checkpoints_applies_the_decoders_prompt(photos, prompt_decoder, tiny_registry, detector_file):
    assert check_sam_checkpoint(prompt_decoder, base_checkpoint=tiny_registry).colour_prompt == PROMPT
    assert check_sam_checkpoint(tiny_registry, model="tiny").colour_prompt is None  # a full state dict
    assert check_sam_checkpoint(None, model="tiny").colour_prompt is None  # zero-shot
    inspector = Inspector.from_checkpoints(
        detector_file, prompt_decoder, base_checkpoint=tiny_registry, use_cache=False, **RAW
    )
    assert inspector.colour_prompt == PROMPT
    result = inspector(photos / "two.png")
    embedding, rgb = inspector.embedding(photos / "two.png"), load_rgb(photos / "two.png")
    np.testing.assert_array_equal(
        result.masks, prompted_logits(inspector.sam, embedding, rgb, result.boxes) > 0
    )
    plain = prompted_logits(inspector.sam, embedding, rgb, result.boxes, None) > 0
    assert not np.array_equal(result.masks, plain)
    off = Inspector.from_checkpoints(
        detector_file,
        prompt_decoder,
        base_checkpoint=tiny_registry,
        use_cache=False,
        use_colour_prompt=False,
        **RAW,
    )
    assert off.colour_prompt is None
    np.testing.assert_array_equal(off(photos / "two.png").masks, plain)


def test_from_checkpoints_without_the_prompt_takes_crops_and_flips(
    prompt_decoder, tiny_registry, detector_file
):
    # refused with the prompt; without it, the decoder is SAM's with box prompts alone
    for settings in ({"crops": CropRule(max_fraction=0.4)}, {"tta": True}):
        inspector = Inspector.from_checkpoints(
            detector_file,
            prompt_decoder,
            base_checkpoint=tiny_registry,
            use_cache=False,
            use_colour_prompt=False,
            **settings,
        )
        assert inspector.colour_prompt is None


def test_from_checkpoints_refuses_a_prompt_with_crops_before_loading(
    prompt_decoder, tiny_registry, detector_file, monkeypatch
):
    import inspection.inspector

    load = inspection.inspector.load_sam_checkpoint
    monkeypatch.setattr(
        inspection.inspector, "load_sam_checkpoint", lambda *a, **k: pytest.fail("loaded SAM")
    )
    with pytest.raises(UserError) as error:
        Inspector.from_checkpoints(
            detector_file, prompt_decoder, base_checkpoint=tiny_registry, crops=CropRule(max_fraction=0.4)
        )
    assert str(error.value) == (
        f"{prompt_decoder} carries a colour prompt, which works on the whole photo: drop --crop-fraction, "
        "or pass --no-colour-prompt"
    )
    monkeypatch.setattr(inspection.inspector, "load_sam_checkpoint", load)
    flipped = Inspector.from_checkpoints(
        detector_file, prompt_decoder, base_checkpoint=tiny_registry, tta=True
    )
    assert flipped.tta and flipped.colour_prompt is not None


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"centre": 22.0}, "colour_prompt must hold centre, scale and clip"),
        ({"centre": 22.0, "scale": float("nan"), "clip": 12.0}, "finite"),
        ({"centre": 22.0, "scale": 2.0, "clip": 0.0}, "above 0"),
    ],
)
def test_a_malformed_prompt_is_one_line_at_check_time(
    prompt_decoder, tiny_registry, detector_file, entry, fragment
):
    check_malformed_entry(prompt_decoder, "colour_prompt", entry, fragment, tiny_registry, detector_file)
