"""The decoder half on cached embeddings reproduces ``SamPredictor`` on non-square images.

Every comparison runs SamPredictor and our functions on the same random tiny
SAM and the same image; the prompts are asymmetric (boxes wider than tall,
points off the diagonal), so swapping x and y or the two scale factors of a
non-square image shows up as different masks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from segmentation.embeddings import ImageEmbedding, embed_images
from segmentation.predict import Prompts, decode, predict_masks, transform_prompts, upscale_logits

SHAPES = {"landscape": (120, 200), "portrait": (200, 120)}


def noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def boxes_for(shape: tuple[int, int]) -> np.ndarray:
    """Three xyxy boxes in pixels of an ``(H, W)`` image: wide, tall, and touching the far corner."""
    h, w = shape
    fractions = np.array([[0.1, 0.2, 0.8, 0.5], [0.55, 0.05, 0.7, 0.9], [0.4, 0.6, 1.0, 1.0]])
    return fractions * [w - 1, h - 1, w - 1, h - 1]


def points_for(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(3, 2, 2)`` xy points and ``(3, 2)`` labels: a foreground and a background point per object."""
    h, w = shape
    fractions = np.array([[[0.3, 0.35], [0.9, 0.1]], [[0.62, 0.5], [0.2, 0.8]], [[0.75, 0.85], [0.05, 0.05]]])
    return fractions * [w - 1, h - 1], np.array([[1, 0], [1, 0], [1, 0]], np.int64)


@pytest.fixture(params=list(SHAPES))
def scene(request, tiny_sam: Sam) -> tuple[Sam, ImageEmbedding, SamPredictor]:
    """The tiny SAM, an embedded non-square image (both orientations) and a SamPredictor set to it."""
    image = noise_image(*SHAPES[request.param])
    predictor = SamPredictor(tiny_sam)
    predictor.set_image(image)
    (emb,) = embed_images(tiny_sam, [image])
    return tiny_sam, emb, predictor


def assert_nontrivial(masks: np.ndarray) -> None:
    """Guards the comparisons: all-False or all-True masks would match whatever the geometry."""
    assert 0.02 < masks.mean() < 0.98


# --- transform_prompts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "as_input", [np.asarray, torch.as_tensor, np.ndarray.tolist], ids=["numpy", "torch", "list"]
)
def test_transform_prompts_matches_resize_longest_side_bit_for_bit(scene, as_input) -> None:
    sam, emb, predictor = scene
    boxes = boxes_for(emb.original_size)
    coords, labels = points_for(emb.original_size)

    prompts = transform_prompts(
        sam, emb, boxes=as_input(boxes), point_coords=as_input(coords), point_labels=as_input(labels)
    )

    assert isinstance(prompts, Prompts)
    expected_boxes = torch.as_tensor(
        predictor.transform.apply_boxes(boxes, emb.original_size), dtype=torch.float
    )
    expected_coords = torch.as_tensor(
        predictor.transform.apply_coords(coords, emb.original_size), dtype=torch.float
    )
    assert torch.equal(prompts.boxes, expected_boxes)
    assert torch.equal(prompts.point_coords, expected_coords)
    assert torch.equal(prompts.point_labels, torch.as_tensor(labels, dtype=torch.int))
    assert prompts.boxes.dtype == prompts.point_coords.dtype == torch.float32
    assert prompts.point_labels.dtype == torch.int32
    # The long side maps onto img_size: the far corner of the image lands at 256 in x or y.
    h, w = emb.original_size
    far = transform_prompts(sam, emb, boxes=[0, 0, w, h]).boxes
    torch.testing.assert_close(far, torch.tensor([[0.0, 0.0, emb.input_size[1], emb.input_size[0]]]))


def test_transform_prompts_keeps_absent_fields_none(scene) -> None:
    sam, emb, _ = scene
    box = boxes_for(emb.original_size)[0]
    prompts = transform_prompts(sam, emb, boxes=box)  # one (4,) box
    assert prompts.boxes.shape == (1, 4)
    assert prompts.point_coords is None and prompts.point_labels is None
    assert transform_prompts(sam, emb) == Prompts(None, None, None)


# --- predict_masks against SamPredictor.predict ------------------------------------------------


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("prompt", ["box", "points", "box_and_points"])
def test_predict_masks_matches_sam_predictor(scene, prompt: str, multimask: bool) -> None:
    sam, emb, predictor = scene
    boxes = boxes_for(emb.original_size)
    coords, labels = points_for(emb.original_size)
    for i in range(len(boxes)):
        theirs = {}
        if "box" in prompt:
            theirs["box"] = boxes[i]
        if "points" in prompt:
            theirs.update(point_coords=coords[i], point_labels=labels[i])
        ours = {
            "boxes": boxes[i] if "box" in prompt else None,  # one (4,) box: one object
            "point_coords": coords[i : i + 1] if "points" in prompt else None,
            "point_labels": labels[i : i + 1] if "points" in prompt else None,
        }

        masks, scores, low_res = predict_masks(sam, emb, **ours, multimask_output=multimask)
        expected_masks, expected_scores, expected_low_res = predictor.predict(
            **theirs, multimask_output=multimask
        )

        m = 3 if multimask else 1
        h, w = emb.original_size
        assert masks.shape == (1, m, h, w) and masks.dtype == bool
        assert scores.shape == (1, m) and scores.dtype == np.float32
        assert low_res.shape == (1, m, 64, 64) and low_res.dtype == np.float32
        assert_nontrivial(masks)
        np.testing.assert_array_equal(masks[0], expected_masks)
        np.testing.assert_allclose(scores[0], expected_scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(low_res[0], expected_low_res, rtol=1e-5, atol=1e-5)


def test_batched_boxes_equal_single_calls_and_predict_torch(scene) -> None:
    sam, emb, predictor = scene
    boxes = boxes_for(emb.original_size)

    masks, scores, low_res = predict_masks(sam, emb, boxes=boxes, multimask_output=True)

    assert masks.shape == (3, 3, *emb.original_size) and scores.shape == (3, 3)
    assert_nontrivial(masks)
    # SamPredictor's own batched path, fed the boxes as SamPredictor.predict transforms them.
    boxes_torch = torch.as_tensor(
        predictor.transform.apply_boxes(boxes, emb.original_size), dtype=torch.float
    )
    logits_torch, scores_torch, low_res_torch = predictor.predict_torch(
        None, None, boxes_torch, multimask_output=True, return_logits=True
    )
    np.testing.assert_array_equal(masks, (logits_torch > sam.mask_threshold).numpy())
    np.testing.assert_allclose(scores, scores_torch.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(low_res, low_res_torch.numpy(), rtol=1e-5, atol=1e-5)
    # One object at a time: the batch only repeats the image embedding, up to float rounding.
    logits = logits_torch.numpy()
    for i, box in enumerate(boxes):
        single_masks, single_scores, single_low_res = predict_masks(
            sam, emb, boxes=box, multimask_output=True
        )
        np.testing.assert_allclose(single_scores[0], scores[i], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(single_low_res[0], low_res[i], rtol=1e-4, atol=1e-5)
        decided = np.abs(logits[i] - sam.mask_threshold) > 1e-4  # away from the threshold
        np.testing.assert_array_equal(single_masks[0][decided], masks[i][decided])


@pytest.mark.parametrize("with_box", [False, True], ids=["points", "points_and_box"])
def test_mask_input_round_trip_matches_sam_predictor(scene, with_box: bool) -> None:
    sam, emb, predictor = scene
    coords, labels = points_for(emb.original_size)
    box = boxes_for(emb.original_size)[:2] if with_box else None
    _, scores, low_res = predict_masks(
        sam, emb, boxes=box, point_coords=coords[:2], point_labels=labels[:2], multimask_output=True
    )
    best = scores.argmax(axis=1)
    mask_input = low_res[np.arange(2), best, None]  # (N, 1, 64, 64)
    assert mask_input.shape == (2, 1, 64, 64)

    masks, refined_scores, refined = predict_masks(
        sam, emb, boxes=box, point_coords=coords[:2], point_labels=labels[:2], mask_input=mask_input
    )

    for i in range(2):
        theirs = dict(point_coords=coords[i], point_labels=labels[i], box=None if box is None else box[i])
        _, their_scores, their_low_res = predictor.predict(**theirs, multimask_output=True)
        assert their_scores.argmax() == best[i]
        expected_masks, expected_scores, expected_low_res = predictor.predict(
            **theirs, mask_input=their_low_res[best[i]][None], multimask_output=False
        )
        np.testing.assert_array_equal(masks[i], expected_masks)
        np.testing.assert_allclose(refined_scores[i], expected_scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(refined[i], expected_low_res, rtol=1e-5, atol=1e-5)
    # The mask input was used, not dropped: without it the logits differ.
    _, _, unrefined = predict_masks(sam, emb, boxes=box, point_coords=coords[:2], point_labels=labels[:2])
    assert np.abs(unrefined - refined).max() > 1e-3


def test_mask_input_alone_is_a_prompt(scene) -> None:
    sam, emb, _ = scene
    mask_input = np.random.default_rng(0).normal(size=(2, 1, 64, 64)).astype(np.float32)
    masks, scores, low_res = predict_masks(sam, emb, mask_input=mask_input)
    assert (
        masks.shape == (2, 1, *emb.original_size)
        and scores.shape == (2, 1)
        and low_res.shape == (2, 1, 64, 64)
    )


# --- upscale_logits and decode -----------------------------------------------------------------


def test_upscale_logits_is_postprocess_masks_at_the_original_size(scene) -> None:
    sam, emb, predictor = scene
    boxes = boxes_for(emb.original_size)
    with torch.no_grad():
        low_res, _ = decode(sam, emb, boxes=boxes, multimask_output=True)
        logits = upscale_logits(sam, low_res, emb)

    assert logits.shape == (3, 3, *emb.original_size)
    torch.testing.assert_close(
        logits, sam.postprocess_masks(low_res, emb.input_size, emb.original_size), rtol=0, atol=0
    )
    their_logits, _, _ = predictor.predict(box=boxes[0], multimask_output=True, return_logits=True)
    torch.testing.assert_close(logits[0], torch.as_tensor(their_logits), rtol=1e-5, atol=1e-5)
    # Cropping before resizing matters on a non-square image: resizing the padded square is different.
    uncropped = sam.postprocess_masks(low_res, (256, 256), emb.original_size)
    assert (uncropped - logits).abs().max() > 1e-2


def test_decode_is_differentiable(scene) -> None:
    sam, emb, _ = scene
    coords, labels = points_for(emb.original_size)
    sam.zero_grad()

    low_res, iou = decode(
        sam,
        emb,
        boxes=boxes_for(emb.original_size),
        point_coords=coords,
        point_labels=labels,
        multimask_output=False,
    )
    logits = upscale_logits(sam, low_res, emb)
    target = torch.zeros_like(logits)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target) + iou.square().mean()
    loss.backward()

    assert low_res.requires_grad and iou.requires_grad
    decoder = sam.mask_decoder
    for parameter in [
        decoder.output_upscaling[0].weight,  # the mask path
        decoder.iou_prediction_head.layers[-1].weight,  # the score path
        decoder.transformer.layers[0].self_attn.q_proj.weight,
        sam.prompt_encoder.point_embeddings[1].weight,  # foreground point prompts
    ]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    assert all(p.grad is None for p in sam.image_encoder.parameters()), "the encoder is not in the graph"


# --- empty and invalid input -------------------------------------------------------------------


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize(
    "prompts",
    [
        {"boxes": np.zeros((0, 4))},
        {"boxes": []},
        {"boxes": torch.zeros(0, 4)},
        {"point_coords": np.zeros((0, 2, 2)), "point_labels": np.zeros((0, 2))},
        {"boxes": np.zeros((0, 4)), "point_coords": np.zeros((0, 1, 2)), "point_labels": np.zeros((0, 1))},
    ],
    ids=["boxes", "empty_list", "tensor", "points", "boxes_and_points"],
)
def test_no_objects_give_empty_arrays_shaped_like_a_real_call(scene, prompts, multimask: bool) -> None:
    sam, emb, _ = scene
    masks, scores, low_res = predict_masks(sam, emb, **prompts, multimask_output=multimask)
    real = predict_masks(sam, emb, boxes=boxes_for(emb.original_size)[:1], multimask_output=multimask)

    for empty, one in zip((masks, scores, low_res), real, strict=True):
        assert empty.shape == (0, *one.shape[1:]) and empty.dtype == one.dtype


@pytest.mark.parametrize(
    ("prompts", "match"),
    [
        ({"boxes": np.zeros((2, 3))}, r"boxes must be \(N, 4\)"),
        ({"boxes": np.zeros((1, 1, 4))}, r"boxes must be \(N, 4\)"),
        ({"point_coords": np.zeros((2, 2)), "point_labels": np.ones(2)}, r"point_coords must be \(N, K, 2\)"),
        ({"point_coords": np.zeros((1, 2, 3)), "point_labels": np.ones((1, 2))}, r"point_coords must be"),
        ({"point_coords": np.zeros((1, 2, 2)), "point_labels": np.ones((1, 3))}, r"point_labels \(N, K\)"),
        ({"point_coords": np.zeros((1, 2, 2))}, "go together"),
        ({"boxes": np.zeros((1, 4)), "point_labels": np.ones((1, 2))}, "go together"),
        (
            {"boxes": np.zeros((2, 4)), "point_coords": np.zeros((3, 1, 2)), "point_labels": np.ones((3, 1))},
            "2 boxes but points for 3 objects",
        ),
        ({"boxes": np.zeros((2, 4)), "mask_input": np.zeros((3, 1, 64, 64))}, r"mask_input must be \(N, 1"),
        ({"boxes": np.zeros((2, 4)), "mask_input": np.zeros((2, 64, 64))}, r"mask_input must be \(N, 1"),
        ({}, "needs boxes, points or a mask_input"),
    ],
    ids=[
        "boxes_3_columns",
        "boxes_3d",
        "points_without_object_axis",
        "points_3d_coords",
        "labels_mismatch",
        "points_without_labels",
        "labels_without_points",
        "boxes_points_count",
        "mask_input_count",
        "mask_input_without_channel",
        "nothing",
    ],
)
def test_bad_prompts_raise_value_error(tiny_sam: Sam, prompts, match: str) -> None:
    emb = ImageEmbedding(torch.zeros(32, 16, 16), original_size=(120, 200), input_size=(154, 256))
    with pytest.raises(ValueError, match=match):
        predict_masks(tiny_sam, emb, **prompts)
    with pytest.raises(ValueError, match=match):
        decode(tiny_sam, emb, **prompts)


@pytest.mark.parametrize(
    "other", [{"img_size": 128}, {"embed_dim": 16}], ids=["other_input_size", "other_width"]
)
def test_embedding_from_another_model_is_refused(tiny_sam: Sam, tiny_sam_builder, other) -> None:
    image = noise_image(40, 60)
    (foreign,) = embed_images(tiny_sam_builder(**other), [image])
    with pytest.raises(ValueError, match="does not fit this model.*another encoder"):
        predict_masks(tiny_sam, foreign, boxes=[5, 5, 30, 20])
