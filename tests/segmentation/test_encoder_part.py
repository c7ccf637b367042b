"""Tests for segmentation.encoder_part: the split, the trunk cache, the optimiser group, the loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.errors import UserError
from segmentation.embeddings import EmbeddingCache, encoder_fingerprint
from segmentation.encoder_part import EncoderPart, encoder_part
from segmentation.evaluate import embed_for_models
from segmentation.export import load_weights
from segmentation.finetuned import apply_decoder
from segmentation.instances import trainable_parameters
from segmentation.models import build_sam_vit_t
from segmentation.train_config import DEFAULTS


@pytest.mark.parametrize("name", ["neck", "last"])
def test_trunk_features_through_the_top_are_the_embedding(tiny_sam, name):
    x = torch.randn(2, 3, 256, 256)
    with torch.inference_mode():
        whole = tiny_sam.image_encoder(x)
        split = EncoderPart(name).head(tiny_sam, EncoderPart(name).features(tiny_sam, x))
    torch.testing.assert_close(split, whole, rtol=0, atol=0)


@pytest.mark.slow
def test_mobile_sam_tinyvit_splits_at_its_last_layer_and_neck():
    sam = build_sam_vit_t()  # random weights: the split's geometry is what is tested
    part = EncoderPart("last")
    assert part.prefixes(sam) == ("layers.3.", "neck.")
    x = torch.randn(1, 3, 1024, 1024)
    features = part.features(sam, x)
    assert tuple(features.shape) == (1, 64 * 64, 320)
    with torch.inference_mode():
        torch.testing.assert_close(part.head(sam, features), sam.image_encoder(x), rtol=0, atol=0)


def test_unknown_part_and_encoder_are_one_line_errors(tiny_sam):
    with pytest.raises(UserError, match="train_encoder must be one of neck, last"):
        EncoderPart("all")
    tiny_sam.image_encoder.blocks = None  # an encoder with neither TinyViT layers nor ViT blocks
    with pytest.raises(UserError, match="use train_encoder=neck"):
        EncoderPart("last").modules(tiny_sam)
    assert encoder_part(None) is None


def test_the_trunk_cache_is_keyed_by_the_frozen_part_only(tiny_sam):
    part = EncoderPart("last")
    before = encoder_fingerprint(tiny_sam, exclude=part.prefixes(tiny_sam))
    whole = encoder_fingerprint(tiny_sam)
    with torch.no_grad():
        tiny_sam.image_encoder.neck[0].weight.add_(1.0)
        tiny_sam.image_encoder.blocks[1].mlp.lin1.bias.add_(1.0)
    assert encoder_fingerprint(tiny_sam, exclude=part.prefixes(tiny_sam)) == before  # the top moved: a hit
    assert encoder_fingerprint(tiny_sam) != whole  # but whole-encoder embeddings are new
    with torch.no_grad():
        tiny_sam.image_encoder.blocks[0].mlp.lin1.bias.add_(1.0)
    assert encoder_fingerprint(tiny_sam, exclude=part.prefixes(tiny_sam)) != before


def test_cache_with_a_part_stores_the_tops_input_in_its_own_folder(tiny_sam, tmp_path):
    import cv2

    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8))
    plain = EmbeddingCache(tmp_path / "c", tiny_sam, model_name="tiny")
    trunk = EmbeddingCache(tmp_path / "c", tiny_sam, model_name="tiny", part=EncoderPart("last"))
    assert trunk.folder != plain.folder and trunk.folder.name.startswith("tiny-last-")
    (features,) = trunk.embed([path], progress=False)
    assert tuple(features.embedding.shape) == (16, 16, 64)  # ViT tokens entering the last block
    assert (features.original_size, features.input_size) == ((48, 80), (154, 256))
    (again,) = EmbeddingCache(tmp_path / "c", tiny_sam, model_name="tiny", part=EncoderPart("last")).embed(
        [path], progress=False
    )
    assert torch.equal(again.embedding, features.embedding)
    (embedding,) = plain.embed([path], progress=False)
    with torch.inference_mode():
        top = EncoderPart("last").head(tiny_sam, features.embedding[None])[0]
    torch.testing.assert_close(top, embedding.embedding, atol=0.02, rtol=0.01)  # both went through float16


def test_trainable_parameters_add_the_encoder_part(tiny_sam):
    heads = trainable_parameters(tiny_sam, prompt_encoder=False, transformer=False)
    both = trainable_parameters(
        tiny_sam, prompt_encoder=False, transformer=False, encoder=EncoderPart("last")
    )
    top = {
        id(p) for m in (tiny_sam.image_encoder.blocks[1], tiny_sam.image_encoder.neck) for p in m.parameters()
    }
    assert {id(p) for p in both} == {id(p) for p in heads} | top
    assert all(p.requires_grad == (id(p) in top) for p in tiny_sam.image_encoder.parameters())


def test_models_with_another_encoder_get_their_own_embeddings(tiny_dataset, tiny_sam_builder, tmp_path):
    from segmentation.data import load_split

    split = load_split(tiny_dataset, "test")
    base, same, moved = tiny_sam_builder(), tiny_sam_builder(), tiny_sam_builder()
    with torch.no_grad():
        moved.image_encoder.neck[0].weight.mul_(1.5)
    inputs = embed_for_models([base, same, moved], split, [], model="tiny", cache_dir=tmp_path / "c")
    assert inputs[0] is inputs[1]
    assert not torch.equal(inputs[0][0][0].embedding, inputs[2][0][0].embedding)


def test_export_refuses_a_decoder_that_tuned_the_encoder(tmp_path):
    path = tmp_path / "decoder.pt"
    torch.save(
        {
            "format": "mvtec-finetune/sam-decoder",
            "model": "vit_t",
            "mask_decoder": {},
            "image_encoder": {"neck.0.weight": torch.zeros(1)},
        },
        path,
    )
    with pytest.raises(UserError, match="export the run's sam_finetuned.pth"):
        load_weights(path)


def test_apply_decoder_refuses_an_encoder_part_of_another_model(tmp_path, tiny_sam):
    data = {
        "model": "tiny",
        "mask_decoder": tiny_sam.mask_decoder.state_dict(),
        "image_encoder": {"nope": torch.zeros(1)},
    }
    with pytest.raises(UserError, match="unexpected image encoder keys: nope"):
        apply_decoder(tiny_sam, data, source=tmp_path / "decoder.pt")


def test_the_encoder_part_trains_at_its_own_learning_rate(tiny_sam):
    from segmentation.schedule import StepPlan, build_optimizer

    part = EncoderPart("neck")
    parameters = trainable_parameters(tiny_sam, prompt_encoder=False, encoder=part)
    config = {**DEFAULTS, "lr": 1e-4, "encoder_lr": 2e-5}
    plan = StepPlan(per_process=8, steps_per_epoch=2, total_steps=10, warmup=2)
    optimizer, _ = build_optimizer(parameters, config, plan, own_lr=[(part.parameters(tiny_sam), 2e-5)])
    decoder, encoder = optimizer.param_groups
    assert {id(p) for p in encoder["params"]} == {id(p) for p in tiny_sam.image_encoder.neck.parameters()}
    assert len(decoder["params"]) + len(encoder["params"]) == len(parameters)
    assert (decoder["initial_lr"], encoder["initial_lr"]) == (1e-4, 2e-5)
