"""The cascade's zoomed crops: small boxes decoded on a cached crop of the photo, masks pasted back."""

from __future__ import annotations

import numpy as np
import pytest

from inspection.inspector import Inspector
from segmentation.crops import CropRule, Window, box_to_window, paste_mask
from segmentation.embeddings import EmbeddingCache, embed_images, load_rgb
from segmentation.predict import predict_masks
from segmentation.views import View


def test_small_boxes_are_decoded_on_their_crop(photos, stub_detector, tiny_sam, tmp_path):
    # two.png is 60x80; boxes < 0.4 x 80 = 32 px are small; a 3-box-side window of >= 24 px.
    rule = CropRule(max_fraction=0.4, margin=1.0, min_side=24)
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name="tiny")
    inspector = Inspector(stub_detector, tiny_sam, crops=rule, cache=cache, keep_probs=True, speck_cells=0)
    result = inspector(photos / "two.png")
    assert len(cache) == 1 and len(list(cache.folder.glob("*-crop*.pt"))) == 2  # one crop per small box
    rgb = load_rgb(photos / "two.png")
    for index, box in enumerate(result.boxes):
        window = rule.window(box, (60, 80))
        assert window is not None
        crop = embed_images(tiny_sam, [View(window=window).apply(rgb)])[0]
        masks, scores, _ = predict_masks(tiny_sam, crop, boxes=box_to_window(box, window)[None])
        expected = paste_mask(masks[0, 0], window, (60, 80))
        # the cache rounds embeddings through float16: a boundary pixel may flip
        assert (result.masks[index] != expected).mean() < 1e-2
        assert result.mask_scores[index] == pytest.approx(scores[0, 0], abs=1e-2)
        assert result.masks[index].shape == (60, 80) and result.mask_probs[index].shape == (60, 80)


def test_crops_work_without_a_cache_and_at_the_border(photos, stub_detector, tiny_sam):
    rule = CropRule(max_fraction=0.4, margin=1.0, min_side=24)
    inspector = Inspector(stub_detector, tiny_sam, crops=rule)
    embedding = inspector.embedding(photos / "lot_2" / "a.png")  # a square touching the corner
    boxes = np.array([[0.0, 0.0, 12.0, 12.0], [0.0, 0.0, 70.0, 50.0]])  # small, and large
    masks, scores, _ = inspector.segment(embedding, boxes)
    window = rule.window(boxes[0], (60, 80))
    assert window == Window(0, 0, 36)
    assert masks.shape == (2, 60, 80)
    assert not masks[0, 36:].any() and not masks[0, :, 36:].any()  # nothing outside its window
    whole, _, _ = predict_masks(tiny_sam, embedding, boxes=boxes[1:], multimask_output=False)
    np.testing.assert_array_equal(masks[1], whole[0, 0])


def test_crop_masks_and_probabilities_are_the_frames_decodings_pasted_back(photos, stub_detector, tiny_sam):
    # bit for bit: the cascade pastes a crop's outputs back through segmentation.crops.decode_with_crops,
    # which evaluation uses too (it had its own copy of that loop, with the probabilities)
    rule = CropRule(max_fraction=0.4, margin=1.0, min_side=24)
    inspector = Inspector(stub_detector, tiny_sam, crops=rule, keep_probs=True, speck_cells=0)
    path = photos / "two.png"
    embedding = inspector.embedding(path)
    boxes = np.array(
        [[40.0, 30.0, 60.0, 50.0], [0.0, 0.0, 70.0, 50.0], [5.0, 5.0, 20.0, 20.0]]
    )  # small, large
    masks, scores, probs = inspector.segment(embedding, boxes, path=path)
    assert (masks.dtype, scores.dtype, probs.dtype) == (bool, np.float32, np.float16)
    whole_masks, whole_scores, whole_probs = inspector._segment_frame(embedding, boxes[1:2])
    np.testing.assert_array_equal(masks[1], whole_masks[0])
    np.testing.assert_array_equal(probs[1], whole_probs[0])
    assert scores[1] == whole_scores[0]
    for index in (0, 2):
        window = rule.window(boxes[index], (60, 80))
        crop = inspector.crop_embedding(path, window)
        crop_masks, crop_scores, crop_probs = inspector._segment_frame(
            crop, box_to_window(boxes[index], window)[None]
        )
        np.testing.assert_array_equal(masks[index], paste_mask(crop_masks[0], window, (60, 80)))
        np.testing.assert_array_equal(probs[index], paste_mask(crop_probs[0], window, (60, 80)))
        assert scores[index] == crop_scores[0]


def test_without_crops_nothing_changes(photos, stub_detector, tiny_sam):
    plain = Inspector(stub_detector, tiny_sam)(photos / "two.png")
    off = Inspector(stub_detector, tiny_sam, crops=CropRule(max_fraction=0.0))(photos / "two.png")
    np.testing.assert_array_equal(plain.masks, off.masks)


def test_without_a_cache_a_photo_is_decoded_once_and_a_window_encoded_once(
    photos, stub_detector, tiny_sam, monkeypatch
):
    # each small box's crop decoded the photo file again, and a window asked for again (the evaluation's
    # truth box beside the cascade's box of one defect) was encoded again: 5 decodes, 5 encodes here
    import common.image_files
    import inspection.inspector as inspector_module
    import segmentation.embeddings as embeddings_module

    decodes, encodes = [], []
    real_decode, real_embed = common.image_files.decode_image_file, inspector_module.embed_images

    def decode_image_file(path, *args, **kwargs):
        decodes.append(path)
        return real_decode(path, *args, **kwargs)

    def embed_images(sam, images, *args, **kwargs):
        encodes.append(len(images))
        return real_embed(sam, images, *args, **kwargs)

    for module in (inspector_module, embeddings_module):
        monkeypatch.setattr(module, "decode_image_file", decode_image_file)
    monkeypatch.setattr(inspector_module, "embed_images", embed_images)
    rule = CropRule(max_fraction=0.4, margin=1.0, min_side=24)
    inspector = Inspector(stub_detector, tiny_sam, crops=rule, speck_cells=0)
    result = inspector(photos / "two.png")  # two small boxes: the photo and each box's crop encoded
    assert len(decodes) == 1 and encodes == [1, 1, 1]
    embedding = inspector.embedding(photos / "two.png")
    masks, scores, _ = inspector.segment(embedding, result.boxes)  # as the oracle's boxes: the same windows
    assert len(decodes) == 1 and encodes == [1, 1, 1]
    np.testing.assert_array_equal(masks, result.masks)
    np.testing.assert_array_equal(scores, result.mask_scores)
    inspector(photos / "one.png")  # another photo (one small box): two.png's crops are dropped
    assert len(decodes) == 2 and len(encodes) == 5
    inspector.segment(inspector.embedding(photos / "two.png"), result.boxes[:1])
    assert len(encodes) == 7  # the photo's and its crop's
