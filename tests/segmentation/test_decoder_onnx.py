"""The ONNX Runtime decoder gives the logits and IoUs of the PyTorch one, for every kind of prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything.utils.transforms import ResizeLongestSide

from segmentation.decoder_onnx import OnnxDecoder, missing_packages
from segmentation.embeddings import ImageEmbedding
from segmentation.predict import decode

pytestmark = pytest.mark.skipif(bool(missing_packages()), reason=f"not installed: {missing_packages()}")

PROMPTS = {
    "box": dict(boxes=[[10.0, 20.0, 200.0, 150.0]]),
    "points": dict(point_coords=[[[100.0, 100.0], [50.0, 60.0]]], point_labels=[[1, 0]]),
    "box+point": dict(
        boxes=[[10.0, 20.0, 200.0, 150.0]], point_coords=[[[100.0, 100.0]]], point_labels=[[0]]
    ),
    "two objects": dict(boxes=[[10.0, 20.0, 200.0, 150.0], [0.0, 0.0, 30.0, 40.0]]),
}


def embedding_for(sam, seed: int = 0) -> ImageEmbedding:
    generator = torch.Generator().manual_seed(seed)
    shape = (sam.prompt_encoder.embed_dim, *sam.prompt_encoder.image_embedding_size)
    input_size = ResizeLongestSide.get_preprocess_shape(300, 400, sam.image_encoder.img_size)
    return ImageEmbedding(torch.randn(shape, generator=generator), (300, 400), input_size)


def assert_same(sam, onnx_decoder, emb, *, atol=1e-4, **prompt):
    with torch.inference_mode():
        expected, expected_iou = decode(sam, emb, **prompt)
    logits, iou = onnx_decoder(emb, **prompt)
    assert logits.shape == expected.shape and iou.shape == expected_iou.shape
    scale = max(1.0, float(expected.abs().max()))
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), atol=atol * scale, rtol=0)
    np.testing.assert_allclose(iou.numpy(), expected_iou.numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("name", list(PROMPTS))
def test_matches_the_torch_decoder(tiny_sam, name, multimask):
    assert_same(
        tiny_sam,
        OnnxDecoder(tiny_sam, threads=1),
        embedding_for(tiny_sam),
        multimask_output=multimask,
        **PROMPTS[name],
    )


def test_export_leaves_the_models_training_flag_alone(tiny_sam):
    tiny_sam.train()
    OnnxDecoder(tiny_sam, threads=1)
    assert tiny_sam.training and tiny_sam.mask_decoder.training


def test_mask_input_and_fine_tuned_weights_are_used(tiny_sam):
    decoder = OnnxDecoder(tiny_sam, threads=1)
    emb = embedding_for(tiny_sam, seed=1)
    with torch.inference_mode():
        first, _ = decode(tiny_sam, emb, multimask_output=False, **PROMPTS["box"])
    assert_same(tiny_sam, decoder, emb, mask_input=first, multimask_output=True, **PROMPTS["box"])
    with torch.no_grad():  # "fine-tuning": the export is of the weights at build time
        for parameter in tiny_sam.mask_decoder.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    stale, _ = decoder(emb, **PROMPTS["box"])
    assert_same(tiny_sam, OnnxDecoder(tiny_sam, threads=1), emb, **PROMPTS["box"])
    with torch.inference_mode():
        fresh, _ = decode(tiny_sam, emb, **PROMPTS["box"])
    assert not torch.allclose(stale, fresh, atol=1e-3)


def test_bad_inputs_are_refused(tiny_sam):
    decoder = OnnxDecoder(tiny_sam, threads=1)
    emb = embedding_for(tiny_sam)
    with pytest.raises(ValueError, match="boxes or points"):
        decoder(emb)
    with pytest.raises(ValueError, match="does not fit this model"):
        decoder(ImageEmbedding(torch.zeros(8, 4, 4), (300, 400), emb.input_size), **PROMPTS["box"])
    with pytest.raises(ValueError, match="mask_input must be"):
        decoder(emb, mask_input=torch.zeros(1, 1, 8, 8), **PROMPTS["box"])


@pytest.mark.realdata
def test_mobilesam_matches_the_torch_decoder():
    from common.weights import weights_dir
    from segmentation.models import load_sam, sam_model

    weights = weights_dir() / sam_model("vit_t").weights.filename
    if not weights.is_file():
        pytest.skip(f"MobileSAM weights not cached at {weights} (python -m segmentation.embed fetches them)")
    sam = load_sam("vit_t", weights)
    decoder = OnnxDecoder(sam, threads=1)
    emb = embedding_for(sam)
    for prompt in PROMPTS.values():
        assert_same(sam, decoder, emb, **prompt)
