from __future__ import annotations

import errno
import os

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


def test_a_full_cache_disk_leaves_the_masks_and_names_the_commands_flags(
    tmp_path, monkeypatch, capsys
) -> None:
    # anomaly.predict with SAM stopped at the first photo: 'No space left on device' storing its embedding
    import segmentation.embeddings
    import segmentation.models

    photo = tmp_path / "a.png"
    image = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(photo), image[..., ::-1])
    anomaly_map = np.zeros((40, 48), np.float32)
    anomaly_map[10:20, 12:30] = 2.0
    sam = build_tiny_sam()
    monkeypatch.setattr(segmentation.models, "load_sam", lambda name, **kwargs: sam)

    def full(payload, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(segmentation.embeddings, "save_torch", full)
    segmenter = load_segmenter(None, zero_shot=True, cache_dir=tmp_path / "cache")
    for _ in range(2):
        found = segmenter(image, map_regions(anomaly_map, 1.0), path=photo)
        assert found.masks.any()
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and err.rstrip().endswith(
        "so the next run computes them again; free space on its disk or pass --cache-dir "
        "<a writable folder> or --no-cache"
    )


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
    monkeypatch.setattr(segmentation.finetuned, "load_colour_head", lambda path: None)
    (tmp_path / "decoder.pt").write_bytes(b"a decoder")  # its name is of the file: not the official weights
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
    monkeypatch.setattr(segmentation.finetuned, "load_colour_head", lambda path: None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "sam" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "sam" / "a" / "decoder.pt").write_bytes(b"a decoder")
    # the '..' too was kept ('/w/runs/../runs/sam/a/decoder.pt'), while predict.json's "sam" drops it
    segmenter = load_segmenter("runs/../runs/sam/a/decoder.pt")
    assert segmenter.name == f"vit_b fine-tuned ({tmp_path / 'runs' / 'sam' / 'a' / 'decoder.pt'})"


def test_the_official_weights_as_a_full_state_dict_are_not_named_fine_tuned(
    tmp_path, monkeypatch, official_vit_t
) -> None:
    # --sam mobile_sam.pt --sam-model vit_t named SAM's stock weights 'vit_t fine-tuned (.../mobile_sam.pt)'
    # in metrics.json, predict.json and report.md
    import segmentation.finetuned

    official, tuned = official_vit_t, tmp_path / "sam_finetuned.pth"
    tuned.write_bytes(b"weights tuned on a lot")  # of another size: not even read
    monkeypatch.setattr(segmentation.finetuned, "load_finetuned", lambda path, model, **kw: (None, model))
    monkeypatch.setattr(segmentation.finetuned, "load_colour_prompt", lambda path: None)
    monkeypatch.setattr(segmentation.finetuned, "load_colour_head", lambda path: None)
    assert load_segmenter(official, model="vit_t").name == f"vit_t (official weights, {official})"
    assert load_segmenter(tuned, model="vit_t").name == f"vit_t fine-tuned ({tuned})"
    same_size = tmp_path / "other.pth"  # the official size, other bytes: hashed, and tuned
    same_size.write_bytes(b"the official weighs!")
    assert load_segmenter(same_size, model="vit_t").name == f"vit_t fine-tuned ({same_size})"


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


def stain_photo() -> tuple[np.ndarray, list]:
    """A grey 40 x 48 photo with a red stain, and the one map region around it (its border grey)."""
    image = np.full((40, 48, 3), 120, np.uint8)
    image[12:18, 14:28] = (220, 40, 40)
    anomaly_map = np.zeros((40, 48), np.float32)
    anomaly_map[10:20, 12:30] = 2.0
    return image, map_regions(anomaly_map, 1.0)


def test_a_colour_head_refines_sams_logits_of_each_region_box() -> None:
    # a decoder.pt's head was ignored here while segmentation.evaluate and the cascade applied it
    from segmentation.colour_head import ColourHead, box_window
    from segmentation.embeddings import embed_images
    from segmentation.predict import box_logits

    image, regions = stain_photo()
    sam = build_tiny_sam()
    head = ColourHead((0.0, 10.0, -10.0))  # colour alone: in-box pixels over 20 CIE76 from the border
    got = Segmenter(sam, "tiny", colour_head=head)(image, regions, min_area=10**6)  # outlines kept whole
    plain = Segmenter(sam, "tiny")(image, regions, min_area=10**6)
    inside = np.zeros((40, 48), bool)
    inside[box_window(regions[0].box, (40, 48))] = True
    stain = np.zeros((40, 48), bool)
    stain[12:18, 14:28] = True
    assert got.masks.shape == (1, 40, 48) and np.array_equal(got.masks[0] & inside, stain)
    assert not np.array_equal(plain.masks[0] & inside, stain)  # SAM's own mask, as without a head
    assert np.array_equal(got.masks[0] & ~inside, plain.masks[0] & ~inside)  # SAM's outside the box
    [embedding] = embed_images(sam, [image])
    _, iou = box_logits(sam, embedding, np.stack([r.box for r in regions]))
    assert np.allclose(got.mask_scores, iou) and np.allclose(plain.mask_scores, iou)  # SAM's IoU kept


def test_masks_of_many_boxes_are_made_in_chunks_with_the_same_result(monkeypatch) -> None:
    # the float logits of every box at once are N * H * W * 4 bytes: a few boxes per decoder call
    import segmentation.predict
    from segmentation.colour_head import ColourHead

    image, [region] = stain_photo()
    sam = build_tiny_sam()
    regions = [region] * 5
    segmenter = Segmenter(sam, "tiny", colour_head=ColourHead((1.0, 2.0, -1.0)))
    monkeypatch.setattr(segmentation.predict, "DECODER_CHUNK", {"cpu": 16, "gpu": 16})
    whole = segmenter(image, regions, min_area=10**6)  # every outline whole: one instance a box
    monkeypatch.setattr(segmentation.predict, "DECODER_CHUNK", {"cpu": 2, "gpu": 2})
    chunked = segmenter(image, regions, min_area=10**6)
    assert len(whole.masks) == 5 and np.array_equal(whole.masks, chunked.masks)
    assert np.allclose(whole.mask_scores, chunked.mask_scores)


def test_masks_on_the_cpu_are_decoded_in_the_inspection_cascades_chunks(monkeypatch) -> None:
    # 16 boxes a call held 16 full-size float32 logit maps (768 MB on a 12 MP photo) where the cascade
    # holds 4 on CPUs: segmentation.predict.decoder_chunk is the one rule; and the masks are those of
    # one box at a time, within float tolerance
    import segmentation.predict
    from segmentation.embeddings import embed_images

    image = np.full((160, 200, 3), 120, np.uint8)
    image[40:90, 60:140] = (200, 40, 40)
    boxes = np.array([[10.0 + 4 * i, 10.0 + 2 * i, 120.0 + 3 * i, 100.0 + i] for i in range(9)])
    sam = build_tiny_sam()
    [embedding] = embed_images(sam, [image])
    segmenter = Segmenter(sam, "tiny")
    calls: list[int] = []
    sam.mask_decoder.register_forward_hook(lambda module, args, output: calls.append(len(output[0])))
    masks, ious = all_masks(segmenter, embedding, image, boxes)
    assert segmentation.predict.decoder_chunk("cpu", full_size=True) == 4 and calls == [4, 4, 1]
    calls.clear()
    monkeypatch.setattr(segmentation.predict, "DECODER_CHUNK", {"cpu": 1, "gpu": 1})
    one_by_one, one_by_one_ious = all_masks(segmenter, embedding, image, boxes)
    assert calls == [1] * 9
    assert np.array_equal(masks, one_by_one) and np.allclose(ious, one_by_one_ious, atol=1e-5)


def all_masks(segmenter: Segmenter, embedding, image: np.ndarray, boxes: np.ndarray) -> tuple:
    """``Segmenter._masks``' chunks as one ``(N, H, W)`` array of masks and one of IoUs."""
    chunks = list(segmenter._masks(embedding, image, boxes))
    assert [rows.start for rows, _, _ in chunks] == list(range(0, len(boxes), len(chunks[0][1])))
    return np.concatenate([m for _, m, _ in chunks]), np.concatenate([iou for _, _, iou in chunks])


def two_stains_a_cell(rows: int, columns: int, side: int) -> tuple[np.ndarray, list]:
    """A grey photo of ``rows x columns`` cells of ``side`` pixels, each with two red stains apart, and
    the map regions around them (one a cell)."""
    image = np.full((rows * side, columns * side, 3), 120, np.uint8)
    anomaly_map = np.zeros(image.shape[:2], np.float32)
    eighth = side // 8
    for y in range(0, rows * side, side):
        for x in range(0, columns * side, side):
            anomaly_map[y + eighth : y + 7 * eighth, x + eighth : x + 7 * eighth] = 2.0
            image[y + 2 * eighth : y + 3 * eighth, x + 2 * eighth : x + 3 * eighth] = (220, 40, 40)
            image[y + 5 * eighth : y + 6 * eighth, x + 5 * eighth : x + 6 * eighth] = (220, 40, 40)
    return image, map_regions(anomaly_map, 1.0)


def test_outlines_are_cut_into_parts_chunk_by_chunk_holding_one_array_of_masks() -> None:
    # every region's full-size SAM mask was held, then every part's in a second array: N + M masks at once
    # (12 regions in 24 parts: 1.5 times the instances' masks); now the parts' alone, the same instances
    import tracemalloc

    from segmentation.colour_head import ColourHead
    from segmentation.embeddings import embed_images
    from segmentation.predict import box_logits

    image, regions = two_stains_a_cell(3, 4, side=80)
    sam = build_tiny_sam()
    # the tiny random SAM's own logits (within +-1) stay below it, the colour head's over the red stains
    # (30) do not: each mask is its box's two stains
    sam.mask_threshold = 1.0
    head = ColourHead((0.0, 10.0, -10.0))
    segmenter = Segmenter(sam, "tiny", colour_head=head)
    segmenter(image, regions[:1], min_area=10)  # imports done before counting
    tracemalloc.start()
    try:
        got = segmenter(image, regions, min_area=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # each box on its own, its whole mask split as the instances were split before
    [embedding] = embed_images(sam, [image])
    masks, boxes, picked, ious = [], [], [], []
    for index, region in enumerate(regions):
        logits, iou = box_logits(sam, embedding, region.box[None])
        mask = head.refine(logits, image, region.box[None])[0] > sam.mask_threshold
        parts = sorted(map_regions(mask, 0.5, min_area=10), key=lambda r: -r.area)
        assert len(parts) == 2  # the two stains
        masks += [part.full_mask() for part in parts]
        boxes += [part.box for part in parts]
        picked += [index, index]
        ious += [iou[0], iou[0]]
    assert got.masks.shape == (24, 240, 320) and np.array_equal(got.masks, np.stack(masks))
    assert np.array_equal(got.boxes, np.stack(boxes)) and np.allclose(got.mask_scores, ious, atol=1e-5)
    assert np.array_equal(got.scores, np.array([r.peak for r in regions], np.float32)[picked])
    assert peak < 1.2 * got.masks.nbytes


def test_load_segmenter_applies_a_decoders_colour_head_and_prompt_unless_left_out(colour_decoders):
    decoders, head, prompt = colour_decoders
    cases = [
        ("both", {}, head, prompt, " + colour prompt + colour head"),
        ("head", {}, head, None, " + colour head"),
        (
            "both",
            {"no_colour_head": True},
            None,
            prompt,
            " + colour prompt, its colour head left out (--no-colour-head)",
        ),
        (
            "both",
            {"no_colour_head": True, "no_colour_prompt": True},
            None,
            None,
            ", its colour prompt and colour head left out (--no-colour-prompt --no-colour-head)",
        ),
        ("none", {}, None, None, ""),
    ]
    for name, flags, applied_head, applied_prompt, words in cases:
        segmenter = load_segmenter(decoders[name], **flags)
        assert segmenter.colour_head == applied_head and segmenter.colour_prompt == applied_prompt
        assert segmenter.name == f"vit_b fine-tuned ({decoders[name]}){words}"
        assert segmenter.colour_record() == {
            "colour_head": None if applied_head is None else applied_head.to_dict(),
            "colour_prompt": None if applied_prompt is None else applied_prompt.to_dict(),
        }


@pytest.mark.parametrize(
    ("part", "carrier"),
    [
        ("colour head", "a decoder.pt of a run that kept one does"),
        ("colour prompt", "a decoder.pt of a colour_prompt=true run does"),
    ],
)
@pytest.mark.parametrize("sam", ["zero-shot", "no sam", "none carried"])
def test_leaving_out_a_colour_part_that_is_not_there_is_refused_before_sam_loads(
    colour_decoders, monkeypatch, sam, part, carrier
) -> None:
    import segmentation.models

    decoders = colour_decoders[0]
    other = "head" if part == "colour prompt" else "prompt"  # carries the other part only
    monkeypatch.setattr(segmentation.models, "load_sam", lambda *a, **k: pytest.fail("SAM loaded"))
    flag = "--no-" + part.replace(" ", "-")
    keyword = {flag.removeprefix("--").replace("-", "_"): True}
    if sam == "none carried":
        given, message = decoders[other], f"carries none ({carrier}): drop {flag}"
    else:
        given, message = None, "it applies only with --sam (zero-shot SAM has none)"
    with pytest.raises(UserError) as error:
        load_segmenter(given, zero_shot=sam == "zero-shot", **keyword)
    assert str(error.value).startswith(f"{flag} leaves out a fine-tuned decoder's {part}")
    assert str(error.value).endswith(message)


def test_a_full_state_dict_beside_a_decoder_with_colour_parts_says_its_masks_go_without(
    colour_decoders, tmp_path, capsys
) -> None:
    # anomaly.predict/evaluate --sam sam_finetuned.pth said nothing, as the inspection cascade did: its masks
    # silently lacked the run's colour prompt and colour head
    from segmentation.finetuned import save_decoder, save_full

    sam = build_tiny_sam()
    _, head, prompt = colour_decoders
    run = tmp_path / "run"
    run.mkdir()
    decoder = save_decoder(sam, run / "decoder.pt", model="vit_b", colour_head=head, colour_prompt=prompt)
    full = save_full(sam, run / "sam_finetuned.pth")
    segmenter = load_segmenter(full, model="vit_b")
    assert segmenter.colour_head is None and segmenter.colour_prompt is None
    err = capsys.readouterr().err
    assert err.startswith("note: sam_finetuned.pth has no place for the colour prompt and the colour head ")
    assert err.endswith(f"pass --sam {decoder} to apply them\n")
    load_segmenter(decoder)  # the decoder.pt applies them: no note
    assert capsys.readouterr().err == ""
