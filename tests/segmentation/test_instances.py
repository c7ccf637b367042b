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


def scripted_decoder(monkeypatch, replies):
    """``decode`` replaced: answers each call with the next ``(1, M, 64, 64)`` logits; records the calls."""
    calls = []

    def decode(sam, embedding, *, mask_input=None, multimask_output, **prompts):
        calls.append(
            {
                "multimask": multimask_output,
                "labels": prompts["point_labels"].tolist() if "point_labels" in prompts else None,
                "mask_input": None if mask_input is None else mask_input.clone(),
            }
        )
        low = replies[len(calls) - 1]
        return low, torch.full(low.shape[:2], 0.5)

    monkeypatch.setattr(instances, "decode", decode)
    return calls


def test_corrective_rounds_click_in_the_best_candidates_error_and_feed_it_back(tiny_sam, monkeypatch):
    size = (192, 256)  # one logit cell is 4 x 4 px; the mask's edges cut cells by 1/4 and 1/2
    embedding = ImageEmbedding(torch.randn(32, 16, 16), size, size)
    mask = np.zeros(size, bool)
    mask[43:90, 102:181] = True
    cells = torch.zeros(64, 64, dtype=torch.bool)
    cells[:48] = instances.low_res_target(tiny_sam, embedding, mask) > 0.5
    extra = cells.clone()
    extra[30:35, 5:10] = True  # a small false positive far from the instance

    def logits(cells_in):
        return torch.where(cells_in, 10.0, -10.0)

    candidates = torch.stack(
        [logits(torch.zeros_like(cells)), logits(extra), logits(torch.ones_like(cells))]
    )[None]
    config = copy.deepcopy(DEFAULTS) | {"multimask": True, "corrective_rounds": 2}
    prompts = PromptConfig(p_box=0.0, n_positive=1, n_negative=0)  # one point: ambiguous

    def run(rounds, replies):
        calls = scripted_decoder(monkeypatch, replies)
        _, logs = instances.instance_loss(
            tiny_sam,
            embedding,
            mask,
            config={**config, "corrective_rounds": rounds},
            prompt_config=prompts,
            rng=np.random.default_rng(0),
            device=torch.device("cpu"),
        )
        return calls, logs

    calls, logs = run(2, [candidates, logits(cells)[None, None]])
    # the candidate with the false positive is best: a negative click on it, its logits fed back;
    # the second answer is the target itself, so there is no third round
    assert [call["multimask"] for call in calls] == [True, False]
    assert [call["labels"] for call in calls] == [[[1]], [[1, 0]]]
    torch.testing.assert_close(calls[1]["mask_input"], candidates[:, 1:2])
    assert logs == run(0, [candidates])[1]  # logged: the first round's terms
    two_points = PromptConfig(p_box=0.0, n_positive=1, n_negative=1)
    calls = scripted_decoder(monkeypatch, [logits(cells)[None, None]])
    instances.instance_loss(
        tiny_sam,
        embedding,
        mask,
        config={**config, "corrective_rounds": 0},
        prompt_config=two_points,
        rng=np.random.default_rng(0),
        device=torch.device("cpu"),
    )
    assert calls[0]["multimask"] is False  # two points are not ambiguous: the single-mask output
