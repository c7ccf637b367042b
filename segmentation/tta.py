"""Test-time flips: boxes decoded on flipped views of an image, logits averaged back in its frame.

Each view is an embedding-cache entry (:class:`segmentation.views.View`, key
``<sha256>-fliplr`` ...), so a view is encoded once and an evaluation rerun reads
it from disk; a photo costs ``len(TTA_VIEWS)`` encoder runs the first time instead
of one. The views are their own inverses, so a view's logits go back to the
image frame with the same transform. Averaging logits (not masks) keeps SAM's
threshold at 0; the predicted IoU is the views' mean.

With a colour prompt (:mod:`segmentation.colour_prompt`), each view's boxes get the maps drawn on
that view of the photo, as training draws them on its flipped samples.

Measured on untrained MobileSAM (``bench/results/sam_headroom.md``, every defect
image, ground-truth boxes): IoU 0.8299 -> 0.8425 on ``hazelnut_toy``, 0.8532 ->
0.8560 on the synthetic default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch

from segmentation.augment import transform_image
from segmentation.colour_prompt import ColourPrompt, mask_input_of
from segmentation.embeddings import ImageEmbedding
from segmentation.predict import decode, upscale_logits
from segmentation.views import View

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: A mask decoder: :func:`segmentation.predict.decode` with the model bound, or an
#: :class:`~segmentation.decoder_onnx.OnnxDecoder`; ``(embedding, boxes=..., multimask_output=...)``
#: to ``(low_res_logits, iou_predictions)``.
Decoder = Callable[..., tuple[torch.Tensor, torch.Tensor]]

#: The views averaged: each is its own inverse (rotations by 90 degrees are not, and would
#: swap the sides of non-square photos).
TTA_VIEWS: tuple[str, ...] = ("identity", "fliplr", "flipud", "rot180")


def view_logits(
    sam: Sam,
    embedding: ImageEmbedding,
    boxes: np.ndarray,
    view: str,
    image_size: tuple[int, int],
    decoder: Decoder | None = None,
    *,
    colour_prompt: ColourPrompt | None = None,
    rgb: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Single-mask logits of ``boxes`` decoded on ``view``, back in the image frame.

    Args:
        sam: the model.
        embedding: the embedding of ``view`` of the image.
        boxes: ``(N, 4)`` xyxy pixel edges in the image frame.
        view: a :data:`TTA_VIEWS` name.
        image_size: ``(H, W)`` of the image.
        decoder: runs SAM's mask decoder; None: ``sam``'s own in torch.
        colour_prompt: give each box its colour map, drawn on ``view`` of ``rgb``, as its mask prompt.
        rgb: ``(H, W, 3)`` uint8 photo in the image frame; needed with ``colour_prompt``.

    Returns:
        ``(N, H, W)`` float32 logits and ``(N,)`` predicted IoUs.
    """
    framed = View(transform=view).boxes(np.asarray(boxes, dtype=float), image_size)
    decoder = partial(decode, sam) if decoder is None else decoder
    view_rgb = None if colour_prompt is None else transform_image(rgb, view)
    with torch.inference_mode():
        mask_input = mask_input_of(colour_prompt, sam, embedding, view_rgb, framed)
        low_res, iou = decoder(embedding, boxes=framed, mask_input=mask_input, multimask_output=False)
        logits = upscale_logits(sam, low_res, embedding)[:, 0].float().cpu().numpy()
    back = transform_image(np.moveaxis(logits, 0, -1), view)  # (H, W, N): the transform's axes
    return np.moveaxis(back, -1, 0), iou[:, 0].float().cpu().numpy()


def flip_averaged_logits(
    sam: Sam,
    embeddings: Mapping[str, ImageEmbedding],
    boxes: np.ndarray,
    image_size: tuple[int, int],
    decoder: Decoder | None = None,
    *,
    colour_prompt: ColourPrompt | None = None,
    rgb: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, H, W)`` logits averaged over ``embeddings``' views, and ``(N,)`` mean predicted IoUs.

    Args:
        embeddings: by view name (:data:`TTA_VIEWS`, any subset), the embedding of that view.
        decoder, colour_prompt, rgb: see :func:`view_logits`.
    """
    if not embeddings:
        raise ValueError("test-time flips need at least one view")
    total, scores = None, []
    for view, embedding in embeddings.items():
        logits, iou = view_logits(
            sam, embedding, boxes, view, image_size, decoder, colour_prompt=colour_prompt, rgb=rgb
        )
        total = logits if total is None else total + logits
        scores.append(iou)
    return total / len(embeddings), np.mean(scores, axis=0).astype(np.float32)
