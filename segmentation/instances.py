"""Training samples of SAM's decoder: ground-truth instances, prompted, scored over corrective rounds.

A sample is one instance with a prompt drawn from it (a jittered box, or
positive/negative points), optionally followed by corrective clicks from the
error region, as in the SAM paper; its loss is focal + dice on the mask logits
and MSE of the predicted IoU, upsampled to the mask's size with SAM's own
``postprocess_masks`` geometry.
"""

from __future__ import annotations

import numpy as np
import torch
from segment_anything.modeling import Sam

from segmentation.data import SegmentationSplit
from segmentation.embeddings import ImageEmbedding
from segmentation.losses import sam_loss
from segmentation.predict import decode, upscale_logits
from segmentation.prompts import PromptConfig, corrective_click, sample_prompt


def trainable_parameters(sam: Sam, *, prompt_encoder: bool) -> list[torch.nn.Parameter]:
    """Freezes the image encoder (and the prompt encoder unless asked) and returns what trains."""
    for parameter in sam.parameters():
        parameter.requires_grad_(False)
    modules = [sam.mask_decoder] + ([sam.prompt_encoder] if prompt_encoder else [])
    parameters = [p for module in modules for p in module.parameters()]
    for parameter in parameters:
        parameter.requires_grad_(True)
    return parameters


class InstanceSet:
    """The training instances of a split: ``(image index, instance index)`` pairs with masks on demand."""

    def __init__(self, split: SegmentationSplit):
        self.split = split
        self.items = [(i, j) for i, image in enumerate(split.images) for j in range(len(image.annotations))]
        self._masks: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def mask(self, image_index: int, instance_index: int) -> np.ndarray:
        if image_index not in self._masks:  # decoded once: RLE/polygon rendering is not free
            self._masks[image_index] = self.split.images[image_index].instance_masks()
        return self._masks[image_index][instance_index]


def _to_tensors(prompt, device: torch.device) -> dict:
    """One :class:`~segmentation.prompts.Prompt` as batch-of-one tensors for :func:`decode`."""
    kwargs = {}
    if prompt.box is not None:
        kwargs["boxes"] = torch.as_tensor(prompt.box, dtype=torch.float32, device=device)[None]
    if prompt.points is not None:
        kwargs["point_coords"] = torch.as_tensor(prompt.points, dtype=torch.float32, device=device)[None]
        kwargs["point_labels"] = torch.as_tensor(prompt.labels, dtype=torch.int64, device=device)[None]
    return kwargs


def instance_loss(
    sam: Sam,
    embedding: ImageEmbedding,
    target: np.ndarray,
    *,
    config: dict,
    prompt_config: PromptConfig,
    rng: np.random.Generator,
    device: torch.device,
) -> tuple[torch.Tensor, dict]:
    """Loss of one instance over its prompt rounds; returns the summed loss and logging values."""
    prompt = sample_prompt(target, prompt_config, rng)
    kwargs = _to_tensors(prompt, device)
    target_t = torch.as_tensor(target, device=device)[None]
    total = torch.zeros((), device=device)
    logs: dict[str, float] = {}
    mask_input = None
    # SAM's rule: only an ambiguous prompt (one point) gets the three candidate
    # masks; boxes and several points train the single-mask output, which is the
    # one evaluation and the annotation page read for such prompts.
    ambiguous = prompt.box is None and prompt.points is not None and len(prompt.points) == 1
    for round_index in range(1 + int(config["corrective_rounds"])):
        multimask = bool(config["multimask"]) and ambiguous and round_index == 0
        low_res, iou_pred = decode(
            sam, embedding, mask_input=mask_input, multimask_output=multimask, **kwargs
        )
        logits = upscale_logits(sam, low_res, embedding)
        loss = sam_loss(logits, target_t, iou_pred, **config["loss"])
        total = total + loss.total
        if round_index == 0:
            logs = {"focal": loss.focal, "dice": loss.dice, "iou_mse": loss.iou}
        if round_index == int(config["corrective_rounds"]):
            break
        best = loss.best_index[0]
        with torch.no_grad():
            prediction = (logits[0, best] > sam.mask_threshold).cpu().numpy()
        click = corrective_click(target, prediction, rng)
        if click is None:
            break
        point, label = click
        point_t = torch.as_tensor(point, dtype=torch.float32, device=device).view(1, 1, 2)
        label_t = torch.as_tensor([[label]], dtype=torch.int64, device=device)
        if "point_coords" in kwargs:
            kwargs["point_coords"] = torch.cat([kwargs["point_coords"], point_t], dim=1)
            kwargs["point_labels"] = torch.cat([kwargs["point_labels"], label_t], dim=1)
        else:
            kwargs["point_coords"], kwargs["point_labels"] = point_t, label_t
        mask_input = low_res[:, best : best + 1].detach()  # SAM feeds the previous logits back
    return total, logs
