"""Does an exported SAM decoder compute what PyTorch computes? A parity check before anything is written.

ONNX Runtime runs the exported model on random prompts (a click, clicks, a box, a
box with clicks, a box with an earlier mask), each on a random embedding at its own
image size, and its outputs are compared with PyTorch's
(:func:`segmentation.predict.decode`, SamPredictor's arithmetic, and
:func:`segmentation.predict.upscale_logits`). ``segmentation.export`` refuses a file
that disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from common.errors import UserError
from segmentation.decoder_onnx import OUTPUT_NAMES, cpu_session, decoder_inputs
from segmentation.embeddings import ImageEmbedding, resized_size
from segmentation.predict import decode, upscale_logits

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Largest ONNX Runtime vs PyTorch difference accepted: logits relative to the largest logit
#: magnitude (at least 1), IoU predictions absolute. Float summation order gives about 1e-5.
TOLERANCE = 1e-3


class CheckPrompt(NamedTuple):
    """One kind of prompt of the check after export, at random places.

    Attributes:
        original_size: (H, W) of the image in pixels (``orig_im_size`` is an input too).
        points: how many clicks (labels 1, 0, 1, ...).
        box: whether there is a box.
        mask: whether an earlier prediction's logits go in as ``mask_input``.
    """

    original_size: tuple[int, int]
    points: int = 0
    box: bool = False
    mask: bool = False


#: What the check runs, by name: clicks alone get a padding point, a box none, so both paths are run.
CHECK_PROMPTS: dict[str, CheckPrompt] = {
    "point": CheckPrompt((480, 640), points=1),
    "points": CheckPrompt((600, 450), points=3),
    "box": CheckPrompt((480, 640), box=True),
    "box+points": CheckPrompt((1000, 1000), points=2, box=True),
    "mask input": CheckPrompt((300, 400), box=True, mask=True),
}


@dataclass(frozen=True)
class Agreement:
    """How far ONNX Runtime's outputs are from PyTorch's on one prompt.

    Attributes:
        logit_diff: max |difference| of the mask logits (``masks`` and ``low_res_masks``).
        iou_diff: max |difference| of ``iou_predictions``.
        logit_scale: max |logit| of PyTorch's outputs (at least 1), what ``logit_diff`` is judged against.
    """

    logit_diff: float
    iou_diff: float
    logit_scale: float

    @property
    def ok(self) -> bool:
        return self.logit_diff <= TOLERANCE * self.logit_scale and self.iou_diff <= TOLERANCE


def check_against_torch(
    sam: Sam, model: bytes, *, return_single_mask: bool = False, seed: int = 0
) -> dict[str, Agreement]:
    """Runs ``model`` with ONNX Runtime and ``sam`` with PyTorch on random :data:`CHECK_PROMPTS`.

    Each prompt gets a random embedding and its own image size (``orig_im_size`` is an
    input). PyTorch's side is :func:`segmentation.predict.decode` (all four mask tokens),
    SamOnnxModel's own token choice with ``return_single_mask``, and
    :func:`segmentation.predict.upscale_logits`.

    Returns:
        Prompt kind -> :class:`Agreement`.
    """
    session = cpu_session(model)
    rng = np.random.default_rng(seed)
    result = {}
    for kind, case in CHECK_PROMPTS.items():
        emb = _random_embedding(sam, case.original_size, rng)
        prompt = _random_prompt(sam, emb, case, rng)
        feeds = {
            **decoder_inputs(sam, emb, **prompt),
            "orig_im_size": np.array(emb.original_size, np.float32),
        }
        actual = session.run(list(OUTPUT_NAMES), feeds)
        num_points = feeds["point_coords"].shape[1]
        expected = _torch_outputs(
            sam, emb, prompt, return_single_mask=return_single_mask, num_points=num_points
        )
        result[kind] = _agreement(expected, actual)
    return result


def _random_embedding(sam: Sam, original_size: tuple[int, int], rng: np.random.Generator) -> ImageEmbedding:
    shape = (sam.prompt_encoder.embed_dim, *sam.prompt_encoder.image_embedding_size)
    input_size = resized_size(original_size, sam.image_encoder.img_size)
    embedding = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    return ImageEmbedding(embedding, original_size, input_size)


def _random_prompt(sam: Sam, emb: ImageEmbedding, case: CheckPrompt, rng: np.random.Generator) -> dict:
    """One object's prompt in original-image pixels, as :func:`segmentation.predict.decode` takes it."""
    h, w = emb.original_size
    prompt = {}
    if case.box:
        (x0, x1), (y0, y1) = np.sort(rng.uniform(0, w, 2)), np.sort(rng.uniform(0, h, 2))
        prompt["boxes"] = np.array([[x0, y0, x1, y1]])
    if case.points:
        prompt["point_coords"] = rng.uniform(0, 1, (1, case.points, 2)) * [w, h]
        prompt["point_labels"] = (np.arange(case.points)[None] % 2 == 0).astype(np.int64)
    if case.mask:  # a second pass over the logits of a first, as the annotation page does
        with torch.inference_mode():
            prompt["mask_input"], _ = decode(sam, emb, multimask_output=False, **prompt)
    return prompt


def _torch_outputs(
    sam: Sam, emb: ImageEmbedding, prompt: dict, *, return_single_mask: bool, num_points: int
) -> list[np.ndarray]:
    """``masks``, ``iou_predictions``, ``low_res_masks`` as the exported graph defines them, from PyTorch."""
    from segment_anything.utils.onnx import SamOnnxModel  # torchvision: not at import (--help)

    with torch.inference_mode():
        single, single_iou = decode(sam, emb, multimask_output=False, **prompt)
        multi, multi_iou = decode(sam, emb, multimask_output=True, **prompt)
        low_res, iou = torch.cat([single, multi], dim=1), torch.cat([single_iou, multi_iou], dim=1)
        if return_single_mask:
            low_res, iou = SamOnnxModel(sam, return_single_mask=True).select_masks(low_res, iou, num_points)
        masks = upscale_logits(sam, low_res, emb)
    return [masks.numpy(), iou.numpy(), low_res.numpy()]


def _agreement(expected: list[np.ndarray], actual: list[np.ndarray]) -> Agreement:
    for want, got, name in zip(expected, actual, OUTPUT_NAMES, strict=True):
        if want.shape != got.shape:  # a broken export, not a numerical difference
            raise RuntimeError(f"ONNX output {name} is {got.shape}, PyTorch's {want.shape}")
    (masks, iou, low_res), (onnx_masks, onnx_iou, onnx_low_res) = expected, actual
    return Agreement(
        logit_diff=float(max(np.abs(masks - onnx_masks).max(), np.abs(low_res - onnx_low_res).max())),
        iou_diff=float(np.abs(iou - onnx_iou).max()),
        logit_scale=float(max(1.0, np.abs(masks).max(), np.abs(low_res).max())),
    )


def refuse_disagreement(agreement: dict[str, Agreement]) -> None:
    bad = {kind: result for kind, result in agreement.items() if not result.ok}
    if bad:
        kind, worst = max(bad.items(), key=lambda item: item[1].logit_diff / item[1].logit_scale)
        raise UserError(
            f"ONNX Runtime's output differs from PyTorch's on a {kind} prompt (max |logit diff| "
            f"{worst.logit_diff:.2g} absolute, {worst.logit_diff / worst.logit_scale:.2g} relative to the "
            f"largest logit {worst.logit_scale:.3g}, relative limit {TOLERANCE:g}; max |IoU diff| "
            f"{worst.iou_diff:.2g}, limit {TOLERANCE:g}): nothing written; check the torch and onnxruntime "
            "versions"
        )
