"""Tests for segmentation.tta: flipped views' logits come back to the image frame; averaging."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import segmentation.tta as tta
from segmentation.augment import transform_image
from segmentation.colour_prompt import ColourPrompt
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache, embed_images
from segmentation.evaluate import embed_views, evaluate_model, flip_views, predict_image
from segmentation.predict import predict_masks
from segmentation.views import View


def box_painter(monkeypatch: pytest.MonkeyPatch) -> None:
    """``decode`` and ``upscale_logits`` replaced: +1 inside each prompt box (view frame), -1 outside."""

    def decode(sam, embedding, *, boxes, mask_input, multimask_output):
        return torch.as_tensor(np.asarray(boxes, dtype=np.float32)), torch.full((len(boxes), 1), 0.5)

    def upscale_logits(sam, boxes, embedding):
        height, width = embedding.original_size
        logits = -torch.ones((len(boxes), 1, height, width))
        for i, (x0, y0, x1, y1) in enumerate(boxes.round().int().tolist()):
            logits[i, 0, y0:y1, x0:x1] = 1.0
        return logits

    monkeypatch.setattr(tta, "decode", decode)
    monkeypatch.setattr(tta, "upscale_logits", upscale_logits)


@pytest.mark.parametrize("view", tta.TTA_VIEWS)
@pytest.mark.parametrize("size", [(40, 64), (64, 40)])
def test_a_views_logits_come_back_to_the_image_frame(monkeypatch, view, size):
    box_painter(monkeypatch)
    boxes = np.array([[3.0, 5.0, 20.0, 11.0], [0.0, 30.0, 9.0, 40.0]])
    view_size = View(transform=view).size(size)
    logits, scores = tta.view_logits(None, SimpleNamespace(original_size=view_size), boxes, view, size)
    assert logits.shape == (2, *size) and scores.tolist() == [0.5, 0.5]
    expected = -np.ones((2, *size), dtype=np.float32)
    for i, (x0, y0, x1, y1) in enumerate(boxes.astype(int)):
        expected[i, y0:y1, x0:x1] = 1.0
    np.testing.assert_array_equal(logits, expected)


def test_averaging_every_view_of_painted_boxes_gives_the_boxes(monkeypatch):
    box_painter(monkeypatch)
    size = (30, 50)
    embeddings = {v: SimpleNamespace(original_size=View(transform=v).size(size)) for v in tta.TTA_VIEWS}
    sam = SimpleNamespace(mask_threshold=0.0)
    logits, scores = tta.flip_averaged_logits(sam, embeddings, np.array([[10.0, 4.0, 33.0, 20.0]]), size)
    masks = logits > sam.mask_threshold
    assert masks.sum() == 23 * 16 and masks[0, 4:20, 10:33].all() and scores.tolist() == [0.5]
    with pytest.raises(ValueError, match="at least one view"):
        tta.flip_averaged_logits(sam, {}, np.zeros((1, 4)), size)


def test_a_subset_of_views_averages_the_logits_and_the_predicted_ious_over_those_views(monkeypatch):
    box_painter(monkeypatch)

    def decode(sam, embedding, *, boxes, mask_input, multimask_output):
        return torch.as_tensor(np.asarray(boxes, dtype=np.float32)), torch.full(
            (len(boxes), 1), embedding.iou
        )

    monkeypatch.setattr(tta, "decode", decode)
    size = (30, 50)
    embeddings = {
        view: SimpleNamespace(original_size=View(transform=view).size(size), iou=iou)
        for view, iou in (("identity", 0.2), ("fliplr", 0.6))
    }
    logits, scores = tta.flip_averaged_logits(None, embeddings, np.array([[10.0, 4.0, 33.0, 20.0]]), size)
    assert set(np.unique(logits).tolist()) == {-1.0, 1.0} and (logits[0, 4:20, 10:33] == 1.0).all()
    assert scores.tolist() == [pytest.approx(0.4)]


def test_a_colour_prompt_gives_each_view_the_maps_drawn_on_that_view(monkeypatch, tiny_sam):
    # a non-square photo: a dark stain on a light surface, off the centre so that every view differs
    rgb = np.full((40, 64, 3), 200, np.uint8)
    rgb[8:20, 10:30] = (60, 40, 30)
    boxes = np.array([[6.0, 5.0, 34.0, 24.0], [40.0, 20.0, 60.0, 38.0]])
    prompt = ColourPrompt(centre=10.0, scale=1.0, clip=8.0)
    views = {v: embed_images(tiny_sam, [transform_image(rgb, v)])[0] for v in tta.TTA_VIEWS}
    given = {}

    def decode(embedding, *, boxes, mask_input, multimask_output):
        given[next(v for v, e in views.items() if e is embedding)] = mask_input
        return tta.decode(tiny_sam, embedding, boxes=boxes, mask_input=mask_input, multimask_output=False)

    logits, _ = tta.flip_averaged_logits(
        tiny_sam, views, boxes, (40, 64), decode, colour_prompt=prompt, rgb=rgb
    )
    assert sorted(given) == sorted(tta.TTA_VIEWS)
    for view, embedding in views.items():
        framed = tta.View(transform=view).boxes(boxes, (40, 64))
        expected = prompt.maps(tiny_sam, embedding, transform_image(rgb, view), framed)
        assert torch.equal(given[view], expected), view
    assert not torch.equal(given["fliplr"], given["identity"])
    plain, _ = tta.flip_averaged_logits(tiny_sam, views, boxes, (40, 64))
    assert np.abs(plain - logits).max() > 1e-3  # the tiny model's untrained downscaling: a small change


@pytest.fixture
def val_setup(tiny_dataset, tiny_sam, tmp_path):
    split = load_split(tiny_dataset, "val")
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name="tiny")
    return split, cache, cache.embed([im.path for im in split.images], progress=False)


def test_the_identity_view_alone_is_sams_single_mask(tiny_sam, val_setup):
    split, _, embeddings = val_setup
    image, embedding = next((im, e) for im, e in zip(split.images, embeddings, strict=True) if im.annotations)
    logits, scores = tta.flip_averaged_logits(
        tiny_sam, {"identity": embedding}, image.boxes(), (image.height, image.width)
    )
    masks = logits > tiny_sam.mask_threshold
    expected, expected_scores, _ = predict_masks(tiny_sam, embedding, boxes=image.boxes())
    np.testing.assert_array_equal(masks, expected[:, 0])
    np.testing.assert_allclose(scores, expected_scores[:, 0], rtol=1e-6)


def test_evaluation_with_flips_encodes_each_view_once_and_scores_every_image(tiny_sam, val_setup):
    split, cache, embeddings = val_setup
    pairs = flip_views(split, True)
    defect = [i for i, im in enumerate(split.images) if not im.is_background]
    assert sorted({i for i, _ in pairs}) == defect and len(pairs) == 3 * len(defect)
    views = embed_views(cache, split, pairs)
    with torch.inference_mode():
        result = evaluate_model(
            tiny_sam, split, embeddings, name="tta", progress=False, view_embeddings=views, tta=True
        )
    assert [s.image_id for s in result.scores] == [split.images[i].image_id for i in defect]
    assert flip_views(split, False) == []
    with pytest.raises(ValueError, match="do not combine"):
        image = split.images[defect[0]]
        predict_image(
            tiny_sam, image, embeddings[defect[0]], crops=object(), flip_embeddings={"fliplr": None}
        )
