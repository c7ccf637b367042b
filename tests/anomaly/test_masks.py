from __future__ import annotations

import cv2
import numpy as np
import pytest

from anomaly.masks import Segmenter, load_segmenter
from anomaly.regions import map_regions
from common.errors import UserError
from segmentation.embeddings import EmbeddingCache
from tests.segmentation.conftest import build_tiny_sam


def test_sams_embeddings_of_photos_given_by_path_are_kept_in_the_cache(tmp_path, monkeypatch) -> None:
    photo = tmp_path / "a.png"
    image = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(photo), image[..., ::-1])  # the file is BGR, the image RGB
    anomaly_map = np.zeros((40, 48), np.float32)
    anomaly_map[10:20, 12:30] = 2.0
    regions = map_regions(anomaly_map, 1.0)
    sam = build_tiny_sam()
    cache = EmbeddingCache(tmp_path / "cache", sam, model_name="tiny")
    segmenter = Segmenter(sam, "tiny", cache)
    first = segmenter(image, regions, path=photo)
    assert len(list(cache.folder.glob("*.pt"))) == 1
    plain = Segmenter(sam, "tiny")(image, regions)  # no cache: the same masks from the uncached embedding
    assert plain.masks.shape == first.masks.shape and (plain.masks == first.masks).mean() > 0.99

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran for a cached photo")

    monkeypatch.setattr(sam.image_encoder, "forward", no_encoder)
    again = segmenter(image, regions, path=photo)
    assert np.array_equal(first.masks, again.masks) and np.allclose(first.mask_scores, again.mask_scores)
    with pytest.raises(AssertionError, match="the encoder ran"):
        segmenter(image, regions)  # no path: no cache


def test_load_segmenter_keeps_the_embeddings_of_either_sam_under_cache_dir(tmp_path, monkeypatch) -> None:
    import segmentation.finetuned
    import segmentation.models
    from anomaly.masks import load_segmenter

    sam = build_tiny_sam()
    monkeypatch.setattr(segmentation.models, "load_sam", lambda name, **kwargs: sam)
    monkeypatch.setattr(
        segmentation.finetuned, "load_finetuned", lambda path, model, **kwargs: (sam, "vit_b")
    )
    monkeypatch.setattr(segmentation.finetuned, "load_colour_prompt", lambda path: None)
    for kwargs, name in [
        ({"sam": None, "zero_shot": True}, "vit_t"),
        ({"sam": tmp_path / "decoder.pt"}, "vit_b"),
    ]:
        segmenter = load_segmenter(**kwargs, cache_dir=tmp_path / "cache")
        assert segmenter.sam is sam and segmenter.cache.root == tmp_path / "cache"
        assert segmenter.cache.model_name == name
        assert load_segmenter(**kwargs).cache is None  # no cache_dir: nothing kept
    assert load_segmenter(None, cache_dir=tmp_path / "cache").cache is None  # no SAM, no embeddings


def test_a_fine_tuned_decoder_is_named_by_its_whole_path(tmp_path, monkeypatch) -> None:
    # it was named 'vit_b fine-tuned (decoder.pt)' in metrics.json and predict.json, the name every
    # segmentation.train run gives its decoder: which run's it was could not be told
    import segmentation.finetuned

    monkeypatch.setattr(segmentation.finetuned, "load_finetuned", lambda path, model, **kw: (None, "vit_b"))
    monkeypatch.setattr(segmentation.finetuned, "load_colour_prompt", lambda path: None)
    monkeypatch.chdir(tmp_path)
    segmenter = load_segmenter("runs/sam/a/decoder.pt")
    assert segmenter.name == f"vit_b fine-tuned ({tmp_path / 'runs' / 'sam' / 'a' / 'decoder.pt'})"


def test_a_full_sam_state_dict_without_a_model_names_the_flag_the_commands_have(tmp_path) -> None:
    # anomaly.predict/evaluate --sam sam_finetuned.pth said "say which model it is for (--model)",
    # a flag they do not have (theirs is --sam-model)
    import torch

    path = tmp_path / "sam_finetuned.pth"
    torch.save({"mask_decoder.iou_token.weight": torch.zeros(1, 256)}, path)
    with pytest.raises(UserError, match=r"full state dict: say which model it is for \(--sam-model\)$"):
        load_segmenter(path)


def test_missing_zero_shot_weights_name_the_cache_not_a_flag_the_commands_lack(tmp_path, monkeypatch):
    import urllib.request

    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError) as error:  # CheckpointError, printed on one line by the commands
        load_segmenter(None, zero_shot=True, model="vit_b")
    message = str(error.value)
    assert "no verified sam_vit_b_01ec64.pth" in message and "--checkpoint" not in message
    assert message.endswith(f"and put it in {tmp_path / 'cache' / 'weights'}")


def test_missing_base_weights_of_a_decoder_name_the_cache_not_a_flag_the_commands_lack(tmp_path, monkeypatch):
    # --sam decoder.pt puts the decoder on the official weights: anomaly.evaluate and anomaly.predict take
    # no --base-checkpoint, so the message must not send users to it
    import urllib.request

    from segmentation.finetuned import save_decoder

    decoder = save_decoder(build_tiny_sam(), tmp_path / "decoder.pt", model="vit_b")
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError) as error:
        load_segmenter(decoder)
    message = str(error.value)
    assert "no verified sam_vit_b_01ec64.pth" in message and "--base-checkpoint" not in message
    assert message.endswith(f"and put it in {tmp_path / 'cache' / 'weights'}")


def test_a_colour_prompt_gives_each_region_box_its_map() -> None:
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.embeddings import embed_images
    from segmentation.predict import predict_masks

    image = np.full((40, 48, 3), 120, np.uint8)
    image[12:18, 14:28] = (220, 40, 40)
    anomaly_map = np.zeros((40, 48), np.float32)
    anomaly_map[10:20, 12:30] = 2.0
    regions = map_regions(anomaly_map, 1.0)
    sam = build_tiny_sam()
    got = Segmenter(sam, "tiny", colour_prompt=ColourPrompt())(image, regions)
    [embedding] = embed_images(sam, [image])
    boxes = np.stack([r.box for r in regions])
    maps = ColourPrompt().maps(sam, embedding, image, boxes)
    expected, iou, _ = predict_masks(sam, embedding, boxes=boxes, mask_input=maps, multimask_output=False)
    plain, plain_iou, _ = predict_masks(sam, embedding, boxes=boxes, multimask_output=False)
    assert not np.allclose(plain_iou, iou)  # the tiny model reads the map
    assert np.allclose(got.mask_scores, iou[0, 0])  # every part of the outline: the prompted IoU


def test_load_segmenter_takes_a_decoders_colour_prompt(tmp_path, monkeypatch) -> None:
    import segmentation.finetuned
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.finetuned import save_decoder

    sam = build_tiny_sam()
    monkeypatch.setattr(segmentation.finetuned, "load_finetuned", lambda path, model, **kw: (sam, "vit_b"))
    prompt = ColourPrompt(centre=18.0)
    with_prompt = save_decoder(sam, tmp_path / "a.pt", model="vit_b", colour_prompt=prompt)
    without = save_decoder(sam, tmp_path / "b.pt", model="vit_b")
    assert load_segmenter(with_prompt).colour_prompt == prompt
    assert load_segmenter(without).colour_prompt is None
