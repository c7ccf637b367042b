"""The colour prompt: each box's colour-distance map as SAM's mask prompt (segmentation.colour_prompt)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from common.config import load_config
from common.errors import UserError
from segmentation.colour_head import colour_distance
from segmentation.colour_prompt import CLIP, ColourPrompt, refuse_idle_no_colour_prompt
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache, ImageEmbedding, load_rgb
from segmentation.evaluate import main as evaluate_main
from segmentation.evaluate import predict_image
from segmentation.finetuned import DECODER_FORMAT, load_colour_prompt, read_decoder, save_decoder
from segmentation.instances import instance_loss
from segmentation.predict import box_logits
from segmentation.prompts import PromptConfig
from segmentation.train import train
from segmentation.train_config import DEFAULTS
from segmentation.views import View


def _photo() -> np.ndarray:
    """A grey 40 x 60 photo with a red 6 x 8 stain at rows 10-15, columns 20-27."""
    rgb = np.full((40, 60, 3), 128, np.uint8)
    rgb[10:16, 20:28] = (200, 30, 30)
    return rgb


def test_the_map_is_the_scaled_colour_distance_inside_the_box_and_minus_clip_outside():
    prompt = ColourPrompt(centre=5.0, scale=2.0, clip=12.0)
    rgb = _photo()
    out = prompt.box_map(rgb, (15, 5, 35, 20))
    distance = colour_distance(rgb, (slice(5, 20), slice(15, 35)))
    np.testing.assert_allclose(out[5:20, 15:35], np.clip((distance - 5.0) / 2.0, -12, 12))
    assert out[10, 22] == 12.0  # the stain: far from the grey border, clipped
    assert out[6, 16] == -2.5  # the grey surface: distance 0
    outside = np.ones(out.shape, bool)
    outside[5:20, 15:35] = False
    assert (out[outside] == -12.0).all()


def test_a_box_outside_the_photo_maps_to_minus_clip_everywhere():
    out = ColourPrompt().box_map(_photo(), (70, 50, 90, 60))
    assert (out == -CLIP).all()


def test_maps_lie_on_the_decoders_padded_grid(tiny_sam):
    # 40 x 60 photo: input_size (171, 256) in a 256 square, logit grid 64 (4 model pixels a cell)
    rgb = np.full((40, 60, 3), 90, np.uint8)  # one colour: the whole-photo box maps to -centre / scale
    emb = ImageEmbedding(torch.zeros(32, 16, 16), (40, 60), (171, 256))
    prompt = ColourPrompt(centre=6.0, scale=2.0, clip=12.0)
    maps = prompt.maps(tiny_sam, emb, rgb, np.array([[0, 0, 60, 40], [0, 0, 30, 40]]))
    assert maps.shape == (2, 1, 64, 64) and maps.dtype == torch.float32
    whole = maps[0, 0]
    assert torch.all(whole[:42] == -3.0)  # the 42 full cells over the photo's 171 rows
    assert torch.all(whole[43:] == -12.0)  # the padding below it
    assert -12.0 < float(whole[42, 0]) < -3.0  # the cell the photo's edge cuts
    left = maps[1, 0, :42]
    assert torch.all(left[:, :32] == -3.0) and torch.all(left[:, 32:] == -12.0)


def _speck_photo() -> tuple[np.ndarray, np.ndarray]:
    """:func:`_photo` with a red speck of one pixel at row 32, column 50; its box and the stain's (xyxy)."""
    rgb = _photo()
    rgb[32, 50] = (200, 30, 30)
    return rgb, np.array([[50, 32, 51, 33], [18, 8, 30, 18]], dtype=float)


def test_a_box_too_small_for_its_map_gets_no_mask_prompt(tiny_sam):
    # a 1-px speck's box is all border: its map read the speck as surface (-11) and the grid cell it
    # shares with the -12 around it said "nothing here", so SAM was told to erase the speck
    rgb, boxes = _speck_photo()
    assert ColourPrompt().box_map(rgb, boxes[0])[32, 50] < 0
    emb = ImageEmbedding(torch.zeros(32, 16, 16), (40, 60), (171, 256))
    maps = ColourPrompt().maps(tiny_sam, emb, rgb, boxes)
    assert maps.shape == (2, 1, 64, 64)
    assert maps[0].isnan().all()  # the speck: no mask prompt (see decode)
    assert maps[1].isfinite().all() and maps[1].max() > 0  # the stain: its map as before


def test_decode_gives_a_nan_row_sams_no_mask_prompt_and_the_others_their_maps(tiny_sam):
    from segmentation.decoder_onnx import OnnxDecoder
    from segmentation.predict import decode

    torch.manual_seed(0)
    rgb, boxes = _speck_photo()
    emb = ImageEmbedding(torch.randn(32, 16, 16), (40, 60), (171, 256))
    maps = ColourPrompt().maps(tiny_sam, emb, rgb, boxes)
    speck, _ = box_logits(tiny_sam, emb, boxes[:1])  # no colour prompt
    stain, _ = box_logits(tiny_sam, emb, boxes[1:], mask_input=maps[1:])
    both, _ = box_logits(tiny_sam, emb, boxes, mask_input=maps)
    np.testing.assert_allclose(both, np.concatenate([speck, stain]), atol=1e-4)
    with torch.inference_mode():  # the ONNX decoder of the annotation page and the cascade likewise
        low, _ = OnnxDecoder(tiny_sam, threads=1)(emb, boxes=boxes, mask_input=maps, multimask_output=False)
        alone, _ = decode(tiny_sam, emb, boxes=boxes[:1], multimask_output=False)
    np.testing.assert_allclose(low[:1].numpy(), alone.numpy(), atol=1e-3)
    # training: the NaN row reaches no gradient of the mask downscaling
    tiny_sam.train()
    low, _ = decode(tiny_sam, emb, boxes=boxes, mask_input=maps, multimask_output=False)
    low.sum().backward()
    grads = [p.grad for p in tiny_sam.prompt_encoder.mask_downscaling.parameters()]
    assert all(g is not None and g.isfinite().all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_maps_refuse_a_photo_of_another_size(tiny_sam):
    emb = ImageEmbedding(torch.zeros(32, 16, 16), (40, 60), (171, 256))
    with pytest.raises(ValueError, match=r"photo is \(40, 61\) but its embedding is of \(40, 60\)"):
        ColourPrompt().maps(tiny_sam, emb, np.zeros((40, 61, 3), np.uint8), np.array([[0, 0, 5, 5]]))


def test_no_boxes_give_no_maps(tiny_sam):
    emb = ImageEmbedding(torch.zeros(32, 16, 16), (40, 60), (171, 256))
    assert ColourPrompt().maps(tiny_sam, emb, _photo(), np.zeros((0, 4))).shape == (0, 1, 64, 64)


def test_decoder_pt_keeps_the_colour_prompt(tiny_sam, tmp_path):
    prompt = ColourPrompt(centre=20.0, scale=3.0, clip=10.0)
    save_decoder(tiny_sam, tmp_path / "decoder.pt", model="vit_t", colour_prompt=prompt)
    assert load_colour_prompt(tmp_path / "decoder.pt") == prompt
    save_decoder(tiny_sam, tmp_path / "plain.pt", model="vit_t")
    assert load_colour_prompt(tmp_path / "plain.pt") is None
    assert read_decoder(tmp_path / "plain.pt")["colour_prompt"] is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"centre": 22.0, "scale": 2.0}, "must hold centre, scale and clip"),
        ({"centre": 22.0, "scale": 2.0, "clip": 12.0, "gate": 1.0}, "must hold centre, scale and clip"),
        ({"centre": "22", "scale": 2.0, "clip": 12.0}, "values must be finite numbers"),
        ({"centre": 22.0, "scale": float("nan"), "clip": 12.0}, "values must be finite numbers"),
        ({"centre": 22.0, "scale": 2.0, "clip": True}, "values must be finite numbers"),
        ({"centre": 22.0, "scale": 0.0, "clip": 12.0}, "scale and clip must be above 0"),
        ([22.0, 2.0, 12.0], "must hold centre, scale and clip"),
    ],
)
def test_a_bad_stored_colour_prompt_is_one_line(data, message):
    with pytest.raises(UserError, match=f"^run/decoder.pt: colour_prompt {message}"):
        ColourPrompt.from_dict(data, source="run/decoder.pt")


def test_predict_image_gives_each_box_its_map_as_mask_input(tiny_dataset, tiny_sam, tmp_path):
    split = load_split(tiny_dataset, "val")
    image = next(im for im in split.images if not im.is_background)
    [emb] = EmbeddingCache(tmp_path, tiny_sam, model_name="tiny").embed([image.path], progress=False)
    prompt = ColourPrompt()
    masks, scores = predict_image(tiny_sam, image, emb, colour_prompt=prompt)
    boxes = image.boxes()
    expected, expected_scores = box_logits(
        tiny_sam, emb, boxes, mask_input=prompt.maps(tiny_sam, emb, load_rgb(image.path), boxes)
    )
    np.testing.assert_array_equal(masks, expected > tiny_sam.mask_threshold)
    np.testing.assert_array_equal(scores, expected_scores)
    plain, _ = box_logits(tiny_sam, emb, boxes)
    assert not np.array_equal(plain, expected)  # the map reached the decoder


def test_predict_image_gives_the_prompt_to_every_flipped_view(tiny_dataset, tiny_sam):
    from segmentation.augment import transform_image
    from segmentation.embeddings import embed_images
    from segmentation.tta import TTA_VIEWS, flip_averaged_logits

    split = load_split(tiny_dataset, "val")
    image = next(im for im in split.images if not im.is_background)
    rgb, size, prompt = load_rgb(image.path), (image.height, image.width), ColourPrompt(10.0, 1.0, 8.0)
    views = {view: embed_images(tiny_sam, [transform_image(rgb, view)])[0] for view in TTA_VIEWS}
    flips = {view: emb for view, emb in views.items() if view != "identity"}
    masks, scores = predict_image(
        tiny_sam, image, views["identity"], flip_embeddings=flips, colour_prompt=prompt
    )
    logits, expected = flip_averaged_logits(
        tiny_sam, views, image.boxes(), size, colour_prompt=prompt, rgb=rgb
    )
    np.testing.assert_array_equal(masks, logits > tiny_sam.mask_threshold)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    plain, _ = flip_averaged_logits(tiny_sam, views, image.boxes(), size)
    assert not np.array_equal(logits, plain)


def _instance_loss(tiny_sam, p_box: float, mask_prompt) -> None:
    target = np.zeros((64, 64), bool)
    target[20:30, 24:40] = True
    emb = ImageEmbedding(torch.randn(32, 16, 16), (64, 64), (256, 256))
    config = {**DEFAULTS, "loss": {**DEFAULTS["loss"]}}
    prompts = PromptConfig(**{**DEFAULTS["prompts"], "p_box": p_box})
    rng = np.random.default_rng(0)
    instance_loss(
        tiny_sam,
        emb,
        target,
        config=config,
        prompt_config=prompts,
        rng=rng,
        device="cpu",
        mask_prompt=mask_prompt,
    )


def test_training_gives_a_box_prompt_the_map_of_its_jittered_box(tiny_sam):
    seen = []

    def mask_prompt(box):
        seen.append(box)
        return torch.zeros(1, 1, 64, 64)

    _instance_loss(tiny_sam, 1.0, mask_prompt)
    [box] = seen
    assert box.shape == (4,) and not np.array_equal(box, [24, 20, 40, 30])  # jittered
    np.testing.assert_allclose(box, [24, 20, 40, 30], atol=3)


def test_training_gives_a_points_prompt_no_map(tiny_sam):
    seen = []
    _instance_loss(tiny_sam, 0.0, lambda box: seen.append(box))
    assert seen == []


def _config(data, tmp_path, *overrides: str) -> dict:
    base = [f"data={data}", f"out={tmp_path / 'runs'}", f"cache_dir={tmp_path / 'cache'}", "device=cpu"]
    base += ["progress=false", "batch_size=4", "epochs=1", "lr=1e-3"]
    return load_config(DEFAULTS, None, [*base, *overrides])


def test_a_colour_prompt_run_trains_the_mask_downscaling_and_keeps_both_in_decoder_pt(
    tiny_dataset, tiny_sam_builder, tmp_path
):
    sam = tiny_sam_builder()
    before = {k: v.clone() for k, v in sam.prompt_encoder.state_dict().items()}
    run = train(_config(tiny_dataset, tmp_path, "name=prompt", "colour_prompt=true"), sam=sam)
    data = read_decoder(run / "decoder.pt")
    assert data["colour_prompt"] == ColourPrompt().to_dict()
    assert data["config"]["colour_prompt"] is True
    stored = data["prompt_encoder"]
    changed = {k for k in before if not torch.equal(before[k], stored[k])}
    assert changed <= {k for k in before if k.startswith("mask_downscaling.")}  # none if epoch 0 was kept
    last = torch.load(run / "last.pt", weights_only=False)
    assert {k for k in before if not torch.equal(before[k], last["prompt_encoder"][k])} == {
        k for k in before if k.startswith("mask_downscaling.")
    }


def test_a_frozen_colour_prompt_stores_no_prompt_encoder(tiny_dataset, tiny_sam, tmp_path):
    run = train(
        _config(tiny_dataset, tmp_path, "name=frozen", "colour_prompt=true", "colour_prompt_lr=0"),
        sam=tiny_sam,
    )
    data = read_decoder(run / "decoder.pt")
    assert data["prompt_encoder"] is None and data["colour_prompt"] == ColourPrompt().to_dict()


def test_a_flipped_training_view_gets_its_flipped_photo(tiny_dataset, tiny_sam, tmp_path):
    from segmentation.run_setup import set_up

    config = _config(tiny_dataset, tmp_path, "colour_prompt=true")
    run, _ = set_up(config, resume=None, sam=tiny_sam)
    photo = load_rgb(run.instances.split.images[0].path)
    np.testing.assert_array_equal(run.photo(0, View("fliplr")), photo[:, ::-1])
    np.testing.assert_array_equal(run.photo(0, View()), photo)


def test_evaluate_records_and_notes_the_colour_prompt(tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys):
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("zero-shot", tiny_sam)], "tiny")
    )
    argv = ["--data", str(tiny_dataset), "--split", "val", "--device", "cpu", "--no-progress"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--n-overlays", "1", "--out", str(tmp_path / "eval")]
    assert evaluate_main([*argv, "--colour-prompt"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["colour_prompts"] == {"zero-shot": ColourPrompt().to_dict()}
    assert (
        "- zero-shot: each box's colour map is SAM's mask prompt (colour prompt)" in capsys.readouterr().out
    )
    with_prompt = metrics["results"]["zero-shot"]["iou"]["all"]
    assert evaluate_main(argv) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["colour_prompts"] == {} and metrics["results"]["zero-shot"]["iou"]["all"] != with_prompt
    # with test-time flips: each view's boxes get their maps, the run records both
    assert evaluate_main([*argv, "--colour-prompt", "--tta"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["tta"] and metrics["colour_prompts"] == {"zero-shot": ColourPrompt().to_dict()}
    flipped_with_prompt = metrics["results"]["zero-shot"]["iou"]["all"]
    assert evaluate_main([*argv, "--tta"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["results"]["zero-shot"]["iou"]["all"] not in (flipped_with_prompt, with_prompt)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--colour-prompt", "--crop-fraction", "0.2"],
            "^--colour-prompt works on the whole photo: drop --crop-fraction$",
        ),
        (
            ["--colour-prompt", "--folds", "3"],
            "^--folds trains a colour prompt with --set colour_prompt=true",
        ),
    ],
)
def test_evaluate_refuses_the_colour_prompt_where_it_cannot_apply(
    tiny_dataset, tmp_path, capsys, extra, message
):
    argv = ["--data", str(tiny_dataset), "--device", "cpu", "--no-progress", "--out", str(tmp_path / "eval")]
    assert evaluate_main([*argv, "--cache-dir", str(tmp_path / "cache"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and re.search(message.replace("^", "^error: "), err), err


def test_folds_with_flips_train_and_score_the_colour_prompt(tiny_dataset, tmp_path, monkeypatch):
    # --folds --tta with colour_prompt=true was refused while the prompt did not work on flipped views
    from segmentation import crossval

    seen = {}

    class Started(Exception):
        pass

    def rounds(data, k, config, *, work, seed, tta, resume, finish):
        seen.update(tta=tta, colour_prompt=config["colour_prompt"])
        raise Started

    monkeypatch.setattr(crossval, "cross_validate", rounds)
    argv = ["--data", str(tiny_dataset), "--folds", "3", "--tta", "--out", str(tmp_path / "folds")]
    with pytest.raises(Started):
        evaluate_main([*argv, "--no-progress", "--set", "colour_prompt=true", "epochs=1"])
    assert seen == {"tta": True, "colour_prompt": True}


def test_evaluate_scores_a_decoders_prompt_unless_left_out(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys
):
    # a prompt-carrying decoder.pt could not be scored without its prompt, nor with crops at all
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("fine-tuned", tiny_sam)], "tiny")
    )
    checkpoint = tmp_path / "run" / "decoder.pt"
    checkpoint.parent.mkdir()
    torch.save(
        {"format": DECODER_FORMAT, "model": "vit_t", "colour_prompt": ColourPrompt().to_dict()}, checkpoint
    )
    argv = ["--data", str(tiny_dataset), "--split", "val", "--checkpoint", str(checkpoint), "--device", "cpu"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--n-overlays", "1", "--no-progress"]
    ious = {}
    for name, flags in (("on", []), ("off", ["--no-colour-prompt"])):
        assert evaluate_main([*argv, *flags, "--out", str(tmp_path / name)]) == 0
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["colour_prompts"] == ({} if flags else {"fine-tuned": ColourPrompt().to_dict()})
        # an empty record read like a decoder trained without a prompt: the flag is recorded, and noted
        assert metrics["no_colour_prompt"] == bool(flags) and metrics["no_colour_head"] is False
        table = (tmp_path / name / "table.md").read_text()
        assert ("mask prompt (colour prompt)" in table) != bool(flags)
        left_out = (
            "- fine-tuned: scored without the colour prompt its decoder.pt carries (--no-colour-prompt)"
        )
        assert (left_out in table) == bool(flags)
        ious[name] = metrics["results"]["fine-tuned"]["iou"]["all"]
    assert ious["on"] != ious["off"]
    capsys.readouterr()
    crops = ["--crop-fraction", "0.2"]
    assert evaluate_main([*argv, *crops, "--out", str(tmp_path / "refused")]) == 2
    assert capsys.readouterr().err == (
        f"error: {checkpoint} carries a colour prompt, which works on the whole photo: drop --crop-fraction, "
        "or pass --no-colour-prompt\n"
    )
    assert evaluate_main([*argv, *crops, "--no-colour-prompt", "--out", str(tmp_path / "crops")]) == 0
    metrics = json.loads((tmp_path / "crops" / "metrics.json").read_text())
    assert metrics["colour_prompts"] == {} and metrics["crop_fraction"] > 0
    for flags, recorded in (([], {"fine-tuned": ColourPrompt().to_dict()}), (["--no-colour-prompt"], {})):
        assert evaluate_main([*argv, "--tta", *flags, "--out", str(tmp_path / "tta")]) == 0
        metrics = json.loads((tmp_path / "tta" / "metrics.json").read_text())
        assert metrics["tta"] and metrics["colour_prompts"] == recorded


def test_evaluate_refuses_crops_for_a_head_and_a_prompt_in_one_line_naming_both(
    tiny_dataset, tmp_path, capsys
):
    # the head was refused first, and with --no-colour-head the prompt: the user came back twice
    checkpoint = tmp_path / "run" / "decoder.pt"
    checkpoint.parent.mkdir()
    head = {"features": ["logit", "colour_distance", "bias"], "weights": [1.0, 0.1, 0.0]}
    decoder = {"format": DECODER_FORMAT, "model": "vit_t", "colour_head": head}
    torch.save({**decoder, "colour_prompt": ColourPrompt().to_dict()}, checkpoint)
    argv = ["--data", str(tiny_dataset), "--checkpoint", str(checkpoint), "--device", "cpu", "--no-progress"]
    argv += [
        "--out",
        str(tmp_path / "eval"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--crop-fraction",
        "0.2",
    ]
    assert evaluate_main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: {checkpoint} carries a colour head and a colour prompt, which work on the whole photo: "
        "drop --crop-fraction, or pass --no-colour-head --no-colour-prompt\n"
    )
    assert evaluate_main([*argv, "--no-colour-prompt"]) == 2  # the head alone: its own words
    assert "carries a colour head, which works on whole-photo logits" in capsys.readouterr().err
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("checkpoint", [None, ""])
def test_no_colour_prompt_without_a_checkpoint_is_refused_as_zero_shot_sam(checkpoint) -> None:
    # an empty --sam (an unset shell variable) is zero-shot SAM too: not 'carries none'
    with pytest.raises(
        UserError, match=r"^--no-colour-prompt .*: it applies only with --sam \(zero-shot SAM has none\)$"
    ):
        refuse_idle_no_colour_prompt(None, checkpoint, flag="--sam")


def test_a_colour_prompt_run_resumes_with_its_tuned_downscaling(tiny_dataset, tiny_sam_builder, tmp_path):
    from segmentation.run_setup import set_up

    config = _config(tiny_dataset, tmp_path, "name=resumed", "colour_prompt=true")
    run = train(config, sam=tiny_sam_builder())
    tuned = torch.load(run / "last.pt", weights_only=False)["prompt_encoder"]
    base = tiny_sam_builder().prompt_encoder.state_dict()
    down = [key for key in tuned if key.startswith("mask_downscaling.")]
    assert any(not torch.equal(tuned[key], base[key]) for key in down)
    resumed, state = set_up({**config, "epochs": 2}, resume=run, sam=tiny_sam_builder())
    assert state.next_epoch == 1 and resumed.colour_prompt == ColourPrompt()
    for key, value in resumed.sam.prompt_encoder.state_dict().items():
        torch.testing.assert_close(value, tuned[key])
