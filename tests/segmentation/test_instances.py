"""Training samples' loss: ``loss.resolution`` picks the frame the loss compares logits and targets in."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from segmentation import instances
from segmentation.embeddings import ImageEmbedding
from segmentation.losses import sam_loss
from segmentation.prompts import PromptConfig
from segmentation.train_config import DEFAULTS


def photo_loss(tiny_sam, config: dict, size: tuple[int, int], box: tuple[slice, slice], **options):
    """``instance_loss`` of one rectangle ``box`` on a random embedding of a ``size`` photo."""
    embedding = ImageEmbedding(torch.randn(32, 16, 16), size, (192, 256))
    mask = np.zeros(size, bool)
    mask[box] = True
    return instances.instance_loss(
        tiny_sam,
        embedding,
        mask,
        config=config,
        prompt_config=PromptConfig(**config["prompts"]),
        rng=np.random.default_rng(0),
        device=torch.device("cpu"),
        **options,
    )


@pytest.mark.parametrize(
    ("resolution", "frame"),
    [
        ("low", (48, 64)),  # the valid cells of the tiny SAM's 64 x 64 logits over a 192 x 256 input
        ("full", (300, 400)),  # upsampled to the photo
        (None, (48, 64)),  # a config without the key: low
    ],
)
def test_loss_resolution_picks_the_frame_the_loss_is_computed_in(tiny_sam, monkeypatch, resolution, frame):
    config = copy.deepcopy(DEFAULTS)
    config["loss"].pop("resolution")
    if resolution is not None:
        config["loss"]["resolution"] = resolution
    seen = []

    def spy(logits, targets, iou_predictions, **weights):
        seen.append((tuple(logits.shape[-2:]), tuple(targets.shape[-2:])))
        return sam_loss(logits, targets, iou_predictions, **weights)

    monkeypatch.setattr(instances, "sam_loss", spy)
    loss, _ = photo_loss(tiny_sam, config, (300, 400), np.s_[60:150, 120:300])  # photo 300 x 400
    assert torch.isfinite(loss)
    assert seen == [(frame, frame)]


@pytest.mark.parametrize("resolution", ["low", "full"])
def test_instance_loss_trains_at_either_resolution(tiny_sam, resolution):
    config = copy.deepcopy(DEFAULTS)
    config["loss"]["resolution"] = resolution
    box = np.s_[40:90, 100:180]
    cached = None
    if resolution == "low":  # the cached target training passes in, from the same mask
        mask = np.zeros((192, 256), bool)
        mask[box] = True
        embedding = ImageEmbedding(torch.randn(32, 16, 16), (192, 256), (192, 256))
        cached = instances.low_res_target(tiny_sam, embedding, mask)
    for parameter in tiny_sam.mask_decoder.parameters():
        parameter.grad = None
    loss, logs = photo_loss(tiny_sam, config, (192, 256), box, low_res=cached)
    loss.backward()
    assert torch.isfinite(loss) and logs["focal"] >= 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tiny_sam.mask_decoder.parameters())
