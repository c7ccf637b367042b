"""Training samples of SAM's decoder: ground-truth instances, prompted, scored over corrective rounds.

A sample is one instance with a prompt drawn from it (a jittered box, or
positive/negative points), optionally followed by corrective clicks from the
error region, as in the SAM paper; its loss is focal + dice on the mask logits
and MSE of the predicted IoU, either on the decoder's low-resolution logits
against the ground truth mapped into their frame (:mod:`segmentation.low_res`,
the default: several times cheaper) or upsampled to the mask's size with SAM's
own ``postprocess_masks`` geometry (``loss.resolution: full``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from segmentation.crops import CropRule
from segmentation.data import SegmentationSplit
from segmentation.embeddings import ImageEmbedding
from segmentation.encoder_part import EncoderPart
from segmentation.losses import sam_loss
from segmentation.low_res import crop_valid, low_res_to_pixels, mask_to_low_res
from segmentation.predict import decode, upscale_logits
from segmentation.prompts import PromptConfig, corrective_click, sample_prompt
from segmentation.views import View

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: The mask decoder's output heads: what trains with ``train_transformer: false`` (HQ-SAM style).
OUTPUT_HEADS = ("output_upscaling", "output_hypernetworks_mlps", "iou_prediction_head")


def trainable_parameters(
    sam: Sam,
    *,
    prompt_encoder: bool,
    transformer: bool = True,
    encoder: EncoderPart | None = None,
    mask_prompt: bool = False,
) -> list[torch.nn.Parameter]:
    """Freezes SAM but the decoder (or its heads) and what is asked for; returns what trains.

    Args:
        sam: the model; its parameters' ``requires_grad`` flags are set here.
        prompt_encoder: train the prompt encoder too.
        transformer: train the whole mask decoder; False trains only its :data:`OUTPUT_HEADS`, so
            the two-way transformer (and the output tokens feeding it) runs without a graph and no
            backward pass goes through it, unless a trained prompt encoder (or ``encoder``) needs one.
        encoder: the top of the image encoder that trains too (on cached features of the rest).
        mask_prompt: train the prompt encoder's ``mask_downscaling`` (what embeds a colour prompt,
            :mod:`segmentation.colour_prompt`); the backward then goes through the transformer.
    """
    for parameter in sam.parameters():
        parameter.requires_grad_(False)
    decoder = sam.mask_decoder
    modules = [decoder] if transformer else [getattr(decoder, name) for name in OUTPUT_HEADS]
    modules += [sam.prompt_encoder] if prompt_encoder else []
    modules += [sam.prompt_encoder.mask_downscaling] if mask_prompt and not prompt_encoder else []
    parameters = [p for module in modules for p in module.parameters()]
    parameters += encoder.parameters(sam) if encoder is not None else []
    for parameter in parameters:
        parameter.requires_grad_(True)
    return parameters


@dataclass(frozen=True)
class Sample:
    """One training sample: an instance of an image, shown to the encoder as ``view``.

    Attributes:
        image_index: index of the image in the split.
        instance_index: index of the instance (annotation) in the image.
        view: the plain image, a flipped/rotated copy, and/or a zoomed crop around the instance.
    """

    image_index: int
    instance_index: int
    view: View = View()


def training_samples(
    split: SegmentationSplit, *, transforms: tuple[str, ...] = (), crops: CropRule | None = None
) -> list[Sample]:
    """Every instance of ``split`` in the plain image and each extra ``transforms`` view.

    Args:
        split: the train split.
        transforms: label-safe :data:`segmentation.augment.TRANSFORMS` besides identity
            (:func:`segmentation.augment.allowed_transforms`); each is one more sample per instance.
        crops: small instances are shown in a zoomed crop of their (transformed) image, the same
            rule evaluation uses; None: always the whole image.
    """
    samples = []
    for i, image in enumerate(split.images):
        size = (image.height, image.width)
        boxes = image.boxes()
        for name in ("identity", *transforms):
            view = View(name)
            moved = view.boxes(boxes, size)
            for j, box in enumerate(moved):
                window = None if crops is None else crops.window(box, view.size(size))
                samples.append(Sample(i, j, View(name, window)))
    return samples


class InstanceSet:
    """The training samples of a split (:class:`Sample`), with masks and low-resolution targets on demand.

    ``items`` holds ``(image index, instance index)`` per sample; without ``samples`` every
    instance is one sample on its plain image.
    """

    def __init__(self, split: SegmentationSplit, samples: list[Sample] | None = None):
        self.split = split
        if samples is None:
            samples = [
                Sample(i, j) for i, image in enumerate(split.images) for j in range(len(image.annotations))
            ]
        self.samples = samples
        self.items = [(sample.image_index, sample.instance_index) for sample in samples]
        self._masks: dict[int, np.ndarray] = {}
        self._low_res: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.items)

    def mask(self, image_index: int, instance_index: int) -> np.ndarray:
        """``(H, W)`` bool mask of an instance on its plain image."""
        if image_index not in self._masks:  # decoded once: RLE/polygon rendering is not free
            self._masks[image_index] = self.split.images[image_index].instance_masks()
        return self._masks[image_index][instance_index]

    def views(self) -> list[tuple[int, View]]:
        """The distinct ``(image index, view)`` pairs the samples need embeddings of, in first-use order."""
        return list(dict.fromkeys((sample.image_index, sample.view) for sample in self.samples))

    def target(self, index: int) -> np.ndarray:
        """``(h, w)`` bool mask of sample ``index`` in its view's frame."""
        sample = self.samples[index]
        return sample.view.apply(self.mask(sample.image_index, sample.instance_index))

    def low_res(self, index: int, sam: Sam, embedding: ImageEmbedding, target: np.ndarray) -> torch.Tensor:
        """Sample ``index``'s :func:`low_res_target` (``target`` its :meth:`target`), computed once."""
        if index not in self._low_res:
            self._low_res[index] = low_res_target(sam, embedding, target)
        return self._low_res[index]


def _to_tensors(prompt, device: torch.device) -> dict:
    """One :class:`~segmentation.prompts.Prompt` as batch-of-one tensors for :func:`decode`."""
    kwargs = {}
    if prompt.box is not None:
        kwargs["boxes"] = torch.as_tensor(prompt.box, dtype=torch.float32, device=device)[None]
    if prompt.points is not None:
        kwargs["point_coords"] = torch.as_tensor(prompt.points, dtype=torch.float32, device=device)[None]
        kwargs["point_labels"] = torch.as_tensor(prompt.labels, dtype=torch.int64, device=device)[None]
    return kwargs


#: Keys of the ``loss`` config that are weights of :func:`~segmentation.losses.sam_loss`.
LOSS_WEIGHTS = ("focal_weight", "dice_weight", "iou_weight")


def low_res_target(sam: Sam, embedding: ImageEmbedding, mask: np.ndarray) -> torch.Tensor:
    """``mask`` (original pixels) as a soft target on ``sam``'s logit grid (:mod:`segmentation.low_res`)."""
    return mask_to_low_res(
        mask,
        input_size=embedding.input_size,
        img_size=sam.image_encoder.img_size,
        low_res=4 * sam.prompt_encoder.image_embedding_size[0],
    )


def _scored_logits(sam: Sam, low_res: torch.Tensor, embedding: ImageEmbedding, *, full: bool) -> torch.Tensor:
    """The logits the loss compares: upsampled to the mask (full) or the valid low-resolution cells."""
    if full:
        return upscale_logits(sam, low_res, embedding)
    return crop_valid(low_res, embedding.input_size, sam.image_encoder.img_size)


def _correction(
    sam: Sam,
    logits: torch.Tensor,
    target: np.ndarray,
    target_t: torch.Tensor,
    embedding: ImageEmbedding,
    *,
    full: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int] | None:
    """The next corrective click, in original pixels, from the error region of the scored logits."""
    with torch.no_grad():
        prediction = (logits > sam.mask_threshold).cpu().numpy()
    if full:
        return corrective_click(target, prediction, rng)
    # On the logit grid: the click is drawn among cells, then mapped back to pixels.
    click = corrective_click(target_t[0].cpu().numpy() > 0.5, prediction, rng)
    if click is None:
        return None
    point = low_res_to_pixels(
        click[0],
        original_size=embedding.original_size,
        input_size=embedding.input_size,
        img_size=sam.image_encoder.img_size,
        low_res=4 * sam.prompt_encoder.image_embedding_size[0],
    )
    return point, click[1]


def _loss_target(
    sam: Sam,
    embedding: ImageEmbedding,
    target: np.ndarray,
    *,
    full: bool,
    low_res: torch.Tensor | None,
    device: torch.device,
) -> torch.Tensor:
    """``target`` (``(H, W)`` bool) as the loss compares logits with it, a batch of one on ``device``:
    ``(1, H, W)`` bool when ``full``, else ``(1, 4h, 4w)`` on the logit grid (``low_res``, the cached
    :func:`low_res_target`, or computed)."""
    if full:
        return torch.as_tensor(target, device=device)[None]
    return (low_res if low_res is not None else low_res_target(sam, embedding, target)).to(device)[None]


def _add_click(kwargs: dict, click: tuple[np.ndarray, int], device: torch.device) -> None:
    """Appends a corrective ``click`` (``(2,)`` xy in original pixels, its label) to the prompt tensors
    ``kwargs`` of :func:`_to_tensors`: ``point_coords`` ``(1, n, 2)`` and ``point_labels`` ``(1, n)``,
    made by the first click of a box-only prompt."""
    point, label = click
    point_t = torch.as_tensor(point, dtype=torch.float32, device=device).view(1, 1, 2)
    label_t = torch.as_tensor([[label]], dtype=torch.int64, device=device)
    if "point_coords" in kwargs:
        kwargs["point_coords"] = torch.cat([kwargs["point_coords"], point_t], dim=1)
        kwargs["point_labels"] = torch.cat([kwargs["point_labels"], label_t], dim=1)
    else:
        kwargs["point_coords"], kwargs["point_labels"] = point_t, label_t


def instance_loss(
    sam: Sam,
    embedding: ImageEmbedding,
    target: np.ndarray,
    *,
    config: dict,
    prompt_config: PromptConfig,
    rng: np.random.Generator,
    device: torch.device,
    low_res: torch.Tensor | None = None,
    mask_prompt: Callable[[np.ndarray], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict]:
    """Loss of one instance over its prompt rounds; returns the summed loss and logging values.

    Args:
        sam, embedding: the model and the (cached) embedding of the image the instance is on.
        target: ``(H, W)`` bool instance mask at ``embedding.original_size``; prompts are drawn from it.
        config: the run config; ``loss.resolution`` picks where the loss is computed: ``low`` on
            the decoder's ``(4h, 4w)`` logits against :func:`low_res_target` (default), ``full``
            on logits upsampled to ``(H, W)`` with ``postprocess_masks``.
        low_res: ``target`` already mapped by :func:`low_res_target` (a cache); None computes it.
        mask_prompt: the first round's ``mask_input`` of a box-only prompt, from its (jittered)
            ``(4,)`` xyxy box in pixels: ``(1, 1, 4h, 4w)`` (:mod:`segmentation.colour_prompt`).
    """
    full = config["loss"].get("resolution", "low") == "full"
    weights = {key: config["loss"][key] for key in LOSS_WEIGHTS}
    prompt = sample_prompt(target, prompt_config, rng)
    kwargs = _to_tensors(prompt, device)
    target_t = _loss_target(sam, embedding, target, full=full, low_res=low_res, device=device)
    total = torch.zeros((), device=device)
    logs: dict[str, float] = {}
    mask_input = None
    if mask_prompt is not None and prompt.box is not None and prompt.points is None:
        mask_input = mask_prompt(np.asarray(prompt.box, dtype=float))
    # SAM's rule: only an ambiguous prompt (one point) gets the three candidate
    # masks; boxes and several points train the single-mask output, which is the
    # one evaluation and the annotation page read for such prompts.
    ambiguous = prompt.box is None and prompt.points is not None and len(prompt.points) == 1
    for round_index in range(1 + int(config["corrective_rounds"])):
        multimask = bool(config["multimask"]) and ambiguous and round_index == 0
        low, iou_pred = decode(sam, embedding, mask_input=mask_input, multimask_output=multimask, **kwargs)
        logits = _scored_logits(sam, low, embedding, full=full)
        loss = sam_loss(logits, target_t, iou_pred, **weights)
        total = total + loss.total
        if round_index == 0:
            logs = {"focal": loss.focal, "dice": loss.dice, "iou_mse": loss.iou}
        if round_index == int(config["corrective_rounds"]):
            break
        best = loss.best_index[0]
        click = _correction(sam, logits[0, best], target, target_t, embedding, full=full, rng=rng)
        if click is None:
            break
        _add_click(kwargs, click, device)
        mask_input = low[:, best : best + 1].detach()  # SAM feeds the previous logits back
    return total, logs
