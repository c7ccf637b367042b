"""Tests for segmentation.finetuned: decoder.pt and sam_finetuned.pth round trips, base-weight checks."""

from __future__ import annotations

import re

import pytest
import torch

from common.errors import UserError
from segmentation.finetuned import (
    DECODER_FORMAT,
    apply_decoder,
    load_finetuned,
    read_decoder,
    save_decoder,
    save_full,
)
from segmentation.models import sam_model


def _perturb(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))


def test_decoder_round_trip_leaves_the_encoder_alone(tiny_sam, tiny_sam_builder, tmp_path):
    _perturb(tiny_sam.mask_decoder)
    path = save_decoder(tiny_sam, tmp_path / "decoder.pt", model="vit_t", config={"lr": 1e-4})
    data = read_decoder(path)
    assert data["model"] == "vit_t" and data["prompt_encoder"] is None and data["config"] == {"lr": 1e-4}
    other = tiny_sam_builder(seed=5)
    encoder_before = {k: v.clone() for k, v in other.image_encoder.state_dict().items()}
    apply_decoder(other, data)
    for key, value in tiny_sam.mask_decoder.state_dict().items():
        assert torch.equal(other.mask_decoder.state_dict()[key], value)
    for key, value in other.image_encoder.state_dict().items():
        assert torch.equal(encoder_before[key], value)


def test_prompt_encoder_saved_only_when_trained(tiny_sam, tiny_sam_builder, tmp_path):
    _perturb(tiny_sam.prompt_encoder)
    data = read_decoder(save_decoder(tiny_sam, tmp_path / "d.pt", model="vit_t", prompt_encoder=True))
    other = apply_decoder(tiny_sam_builder(seed=5), data)
    for key, value in tiny_sam.prompt_encoder.state_dict().items():
        assert torch.equal(other.prompt_encoder.state_dict()[key], value)


def test_full_state_dict_loads_into_a_stock_model(tiny_sam, tiny_sam_builder, tmp_path):
    _perturb(tiny_sam.mask_decoder)
    path = save_full(tiny_sam, tmp_path / "sam_finetuned.pth")
    other = tiny_sam_builder(seed=5)
    other.load_state_dict(torch.load(path, weights_only=True))
    for key, value in tiny_sam.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)


def test_decoder_of_another_architecture_is_refused(tiny_sam, tiny_sam_builder, tmp_path):
    data = read_decoder(save_decoder(tiny_sam, tmp_path / "d.pt", model="vit_t"))
    wider = tiny_sam_builder(embed_dim=48)
    with pytest.raises(UserError, match="does not fit model 'vit_t'") as error:
        apply_decoder(wider, data, source="d.pt")
    # it ended at torch's first line, 'Error(s) in loading state_dict for MaskDecoder:', naming nothing
    assert re.search(r"MaskDecoder: (size mismatch|Missing key|Unexpected key)", str(error.value))


def test_bad_files_get_one_line_errors(tiny_sam, tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_finetuned(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        read_decoder(tmp_path / "junk.pt")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_finetuned(tmp_path / "junk.pt")
    full = save_full(tiny_sam, tmp_path / "full.pth")
    with pytest.raises(UserError, match="not a decoder.pt"):
        read_decoder(full)
    with pytest.raises(UserError, match=r"full state dict: say which model it is for \(--model\)$"):
        load_finetuned(full)  # the flag of segmentation's commands, by default


@pytest.mark.parametrize("model", [None, ["vit_t"]], ids=["no-model", "a-list"])
def test_a_decoder_file_that_names_no_model_is_a_one_line_error(tmp_path, model):
    # a file with decoder.pt's format tag and no model name: it was a KeyError traceback
    path = tmp_path / "decoder.pt"
    torch.save({"format": DECODER_FORMAT, **({} if model is None else {"model": model})}, path)
    with pytest.raises(UserError) as error:
        load_finetuned(path)
    assert str(error.value) == f"{path} names no model: not a whole decoder.pt"


def test_a_decoder_file_without_its_mask_decoder_is_a_one_line_error(tiny_sam):
    # it was a KeyError traceback
    with pytest.raises(UserError) as error:
        apply_decoder(tiny_sam, {"format": DECODER_FORMAT, "model": "vit_t"}, source="d.pt")
    assert str(error.value) == "d.pt holds no mask decoder: not a whole decoder.pt"


def test_decoder_on_other_base_weights_is_refused(tiny_sam, tmp_path):
    decoder = save_decoder(tiny_sam, tmp_path / "d.pt", model="vit_t", base_checkpoint_sha256="0" * 64)
    with pytest.raises(UserError, match="tuned on base weights with sha256 0000"):
        load_finetuned(decoder)  # the official vit_t hash differs: refused before any weights load
    base = tmp_path / "base.pth"
    base.write_bytes(b"some other weights")
    with pytest.raises(
        UserError, match=r"but the base checkpoint .*base\.pth has [0-9a-f]{64}: pass the base"
    ):
        load_finetuned(decoder, base_checkpoint=base)
    # tuned on the official weights, given another base: it said "... but base checkpoint X have ..."
    official = save_decoder(
        tiny_sam, tmp_path / "o.pt", model="vit_t", base_checkpoint_sha256=sam_model("vit_t").weights.sha256
    )
    with pytest.raises(
        UserError, match=r"o\.pt was tuned on the official vit_t weights, not on .*base\.pth: drop --base"
    ):
        load_finetuned(official, base_checkpoint=base)
    with pytest.raises(UserError, match="trained on model 'vit_t', not 'vit_b'"):
        load_finetuned(decoder, model="vit_b")


def test_unreadable_file_message_is_one_line(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError) as error:
        read_decoder(tmp_path / "junk.pt")
    assert "\n" not in str(error.value) and "junk.pt" in str(error.value)


@pytest.mark.parametrize("model", [None, "vit_t"])
def test_a_training_state_given_as_checkpoint_says_what_it_is(tiny_sam, tmp_path, model):
    # segmentation.train's last.pt: it used to be "a full state dict: say which model" and, with
    # --model, "not a state dict", both sending the user after the wrong fix
    from inspection.checkpoints import check_sam_checkpoint
    from segmentation.export import load_weights

    optimizer = torch.optim.AdamW(tiny_sam.mask_decoder.parameters()).state_dict()
    state = {"mask_decoder": tiny_sam.mask_decoder.state_dict(), "optimizer": optimizer, "epoch": 3}
    last = tmp_path / "last.pt"
    torch.save(state, last)
    message = f"{last} is a training state (last.pt, for --resume): pass the run's decoder.pt"
    for load in (load_finetuned, check_sam_checkpoint, load_weights):
        with pytest.raises(UserError, match=re.escape(message)):
            load(last, model=model)


@pytest.mark.parametrize("model", [None, "vit_t"])
def test_a_patchcore_memory_bank_given_as_checkpoint_says_what_it_is(tmp_path, model):
    # anomaly.run's memory_bank.pt: it used to be "a full state dict: say which model" without
    # --model and "not a vit_t state dict: ... unexpected keys (bank)" with it
    from inspection.checkpoints import check_sam_checkpoint
    from segmentation.export import load_weights

    bank = tmp_path / "memory_bank.pt"
    torch.save({"bank": torch.zeros(4, 8, dtype=torch.float16)}, bank)
    message = f"{bank} is a PatchCore memory bank (memory_bank.pt, from anomaly.train), not a SAM checkpoint"
    for load in (load_finetuned, check_sam_checkpoint, load_weights):
        with pytest.raises(UserError, match=re.escape(message)):
            load(bank, model=model)


def test_only_a_bank_alone_is_called_a_patchcore_memory_bank(tmp_path):
    # anomaly.run writes {"bank": tensor}; anything else is left to the loader to name
    from segmentation.finetuned import refuse_other_run_files

    for data in ({"bank": torch.zeros(2), "mask_decoder.weight": torch.zeros(2)}, ["bank"], 3):
        refuse_other_run_files(data, tmp_path / "other.pt")


def test_a_state_dict_of_another_network_is_named_as_such(tmp_path):
    # an ImageNet backbone's weights were told "say which model it is for (--model)", as if they were SAM's
    path = tmp_path / "mobilenet_v2.pth"
    torch.save({"features.0.0.weight": torch.zeros(2, 3, 3, 3)}, path)
    with pytest.raises(
        UserError, match=r"is a state dict, but of no SAM \(none of its keys starts with image_enc"
    ):
        load_finetuned(path)
    with pytest.raises(UserError, match="but of no SAM"):
        load_finetuned(path, model="vit_t")  # before any weights are resolved


def test_a_sam_state_dict_with_a_key_of_its_own_is_left_to_the_loader(tmp_path):
    # "none of its keys starts with ..." is the check: one SAM key makes it SAM's, extras and all
    from segmentation.finetuned import check_full_state_dict

    data = {"mask_decoder.iou_token.weight": torch.zeros(1, 2), "ema_steps": torch.zeros(1)}
    check_full_state_dict(data, tmp_path / "sam_ema.pth", "vit_t")


@pytest.mark.parametrize(
    ("kwargs", "advice"),
    [
        ({}, "pass --base-checkpoint PATH or put it in"),  # the commands that take the base weights
        ({"base_option": ""}, "sam_vit_b_01ec64.pth and put it in"),  # those that take none
    ],
)
def test_a_decoders_missing_base_weights_name_the_callers_flag(
    tiny_sam, tmp_path, monkeypatch, kwargs, advice
):
    import urllib.request

    decoder = save_decoder(tiny_sam, tmp_path / "decoder.pt", model="vit_b")
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError) as error:
        load_finetuned(decoder, **kwargs)
    assert str(error.value).endswith(f"{advice} {tmp_path / 'cache' / 'weights'}")


@pytest.mark.parametrize(
    ("carried", "expected"),
    [
        (
            "head",
            "sam_finetuned.pth has no place for the colour head of its run (val IoU 0.820 -> 0.840), which "
            "{decoder} carries: the masks are SAM's alone; pass --sam {decoder} to apply it",
        ),
        (
            "prompt",  # the prompt case said nothing: its decoder ran on boxes without the maps it learnt
            "sam_finetuned.pth has no place for the colour prompt of its run, which {decoder} carries: the "
            "boxes prompt SAM without the colour maps its decoder was trained with; pass --sam {decoder} "
            "to apply it",
        ),
        (
            "both",
            "sam_finetuned.pth has no place for the colour prompt and the colour head of its run (val IoU "
            "0.820 -> 0.840), which {decoder} carries: the boxes prompt SAM without the colour maps its "
            "decoder was trained with, and the masks are SAM's alone; pass --sam {decoder} to apply them",
        ),
    ],
)
def test_a_full_state_dict_beside_a_decoder_with_colour_parts_says_what_it_lacks(
    tiny_sam, tmp_path, carried, expected
) -> None:
    from segmentation.colour_head import ColourHead
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.finetuned import colour_left_behind

    head = ColourHead((2.5, 2.6, -2.7), val_iou=(0.8204, 0.8396)) if carried != "prompt" else None
    prompt = ColourPrompt() if carried != "head" else None
    decoder = save_decoder(
        tiny_sam, tmp_path / "decoder.pt", model="vit_t", colour_head=head, colour_prompt=prompt
    )
    full = save_full(tiny_sam, tmp_path / "sam_finetuned.pth")
    assert colour_left_behind(full) == expected.format(decoder=decoder)
    assert colour_left_behind(decoder) is None  # it carries them
    copy = tmp_path / "best.pt"  # a decoder.pt under another name carries what it carries
    copy.write_bytes(decoder.read_bytes())
    assert colour_left_behind(copy) is None


def test_a_full_state_dict_beside_a_plain_or_damaged_decoder_or_none_has_no_note(tiny_sam, tmp_path) -> None:
    from segmentation.finetuned import colour_left_behind

    full = save_full(tiny_sam, tmp_path / "sam_finetuned.pth")
    assert colour_left_behind(full) is None  # no decoder.pt beside it
    save_decoder(tiny_sam, tmp_path / "decoder.pt", model="vit_t")
    assert colour_left_behind(full) is None  # a run without either part
    (tmp_path / "decoder.pt").write_bytes(b"garbage")
    assert colour_left_behind(full) is None  # an aside: loading that decoder.pt is where it is refused


def test_the_note_names_the_commands_flag_and_leaves_out_a_colour_prompt_the_command_gives(
    tiny_sam, tmp_path
) -> None:
    # it named --sam in every command; segmentation.evaluate --colour-prompt draws the run's maps itself
    from segmentation.colour_head import ColourHead
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.finetuned import colour_left_behind

    decoder = save_decoder(
        tiny_sam,
        tmp_path / "decoder.pt",
        model="vit_t",
        colour_head=ColourHead((1.0, 0.0, 0.0)),
        colour_prompt=ColourPrompt(),
    )
    full = save_full(tiny_sam, tmp_path / "sam_finetuned.pth")
    note = colour_left_behind(full, flag="--checkpoint")
    assert note.endswith(f"pass --checkpoint {decoder} to apply them") and "--sam" not in note
    given = colour_left_behind(full, flag="--checkpoint", given_prompt=ColourPrompt())
    assert given == (
        f"sam_finetuned.pth has no place for the colour head of its run, which {decoder} carries: the masks "
        f"are SAM's alone; pass --checkpoint {decoder} to apply it"
    )
    other = colour_left_behind(full, given_prompt=ColourPrompt(centre=1.0))  # other maps than the run's
    assert other.startswith("sam_finetuned.pth has no place for the colour prompt and the colour head")
    save_decoder(tiny_sam, tmp_path / "decoder.pt", model="vit_t", colour_prompt=ColourPrompt())
    assert colour_left_behind(full, given_prompt=ColourPrompt()) is None  # nothing else left behind


def _photo_list(folder, kinds: str) -> list:
    """One 4x4 PNG per letter: g grey (three equal channels), c colour, x a file that does not decode."""
    import cv2
    import numpy as np

    paths = []
    for index, kind in enumerate(kinds):
        path = folder / f"{index:03d}.png"
        if kind == "x":
            path.write_bytes(b"not an image")  # cut short or mislabelled: passed over, not an error
        else:
            pixels = np.full((4, 4, 3), 90, np.uint8)
            if kind == "c":
                pixels[..., 2] = 200  # a reddish photo
            assert cv2.imwrite(str(path), pixels)
        paths.append(path)
    return paths


@pytest.mark.parametrize(
    "kinds, expected",
    [
        ("gggccccccc", None),  # a grey lot first, colour after: only its first end was read
        ("cggggggggg", "2 of the 3 photos read from the 10 are"),  # one colour photo ahead of a grey set
        ("cccccccggg", None),
        ("gggggggggg", "the 3 photos read from the 10 are"),
        ("xgggggcggg", "the 2 photos read from the 10 are"),  # the first does not decode: no abort
        ("xggggggggx", "the one photo read from the 10 ({0}/004.png) is"),  # only the middle one decodes:
        # it said 'the photo .../004.png is', as of a list of one
        ("xccccggggx", None),
        ("xxx", None),  # none decodes: nothing to say
        ("ggg", "all 3 photos are"),
        ("gcg", "2 of the 3 photos are"),
        ("gc", None),  # one of two is no majority
        ("gg", "both photos are"),
        ("xg", "the one photo read from the 2 ({0}/001.png) is"),
        ("g", "the photo {0}/000.png is"),
        ("", None),
    ],
)
def test_grey_photos_reads_a_few_spread_over_the_list_and_passes_over_undecodable_ones(
    tmp_path, kinds, expected
) -> None:
    # it read the first 3 photos alone: a grey lot first warned of a colour list, a colour photo first hid
    # a grey one, and a first photo that did not decode raised (the annotation page then said nothing)
    from segmentation.finetuned import grey_photos

    said = grey_photos(_photo_list(tmp_path, kinds))
    assert said == (None if expected is None else expected.format(tmp_path))


def test_greyscale_warning_words_what_was_read(tmp_path) -> None:
    from segmentation.colour_head import ColourHead
    from segmentation.finetuned import greyscale_warning

    photos = _photo_list(tmp_path, "c" + "g" * 9)
    assert greyscale_warning(photos, colour_head=ColourHead((1.0, 0.0, 0.0)), colour_prompt=None) == (
        "2 of the 3 photos read from the 10 are greyscale, and the decoder's colour head reads colour, "
        "which a grey photo does not have: use a decoder trained without it, or pass --no-colour-head"
    )
    assert greyscale_warning(photos, colour_head=None, colour_prompt=None) is None
