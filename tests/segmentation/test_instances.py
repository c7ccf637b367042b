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
    embedding = ImageEmbedding(torch.randn(32, 16, 16), (300, 400), (192, 256))  # photo 300 x 400
    mask = np.zeros((300, 400), bool)
    mask[60:150, 120:300] = True
    loss, _ = instances.instance_loss(
        tiny_sam,
        embedding,
        mask,
        config=config,
        prompt_config=PromptConfig(**config["prompts"]),
        rng=np.random.default_rng(0),
        device=torch.device("cpu"),
    )
    assert torch.isfinite(loss)
    assert seen == [(frame, frame)]
