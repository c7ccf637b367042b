"""Ground truth in the decoder's own frame: the inverse of ``Sam.postprocess_masks``.

SAM's mask decoder outputs ``(4h, 4w)`` logits (256x256 for 1024-px SAM) over
the *padded* model input square. ``postprocess_masks`` turns them into
original-image logits in three steps: bilinear upsampling to ``img_size``,
cropping the padding away (to ``input_size``), bilinear resizing to the
original ``(H, W)``. Training at full resolution pays for those steps and for
a loss over ``H * W`` pixels, forward and backward, for every mask of every
prompt round. Here the ground truth takes the inverse path once per instance
(area resize to ``input_size``, zero padding to ``img_size``, area pooling to
the low-resolution grid), so the loss compares ``(4h, 4w)`` logits with a soft
target whose cells hold the fraction of their area that is foreground: exactly
where the photo is a whole multiple of ``input_size``, approximately otherwise
(torch's area mode averages whole input pixels per output pixel; a 600 x 800
photo's edge cell can read 0.0625 where the exact fraction is 0.08).

Only the cells over the image (not its padding) are scored: their count is
:func:`valid_cells`, and :func:`crop_valid` cuts logits and targets to them.

>>> target = mask_to_low_res(mask, input_size=(1024, 768), img_size=1024, low_res=256)  # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def valid_cells(input_size: tuple[int, int], img_size: int, low_res: int) -> tuple[int, int]:
    """Rows and columns of the low-resolution grid that cover the image rather than its padding.

    Args:
        input_size: ``(h, w)`` of the resized image before padding (long side ``img_size``).
        img_size: side of the padded model input (1024 for SAM).
        low_res: side of the decoder's logit grid (256 for SAM).

    Returns:
        ``(rows, cols)``: ``ceil(h * low_res / img_size)``, ``ceil(w * low_res / img_size)``.
    """
    return (
        math.ceil(input_size[0] * low_res / img_size),
        math.ceil(input_size[1] * low_res / img_size),
    )


def mask_to_low_res(
    mask: np.ndarray | torch.Tensor, *, input_size: tuple[int, int], img_size: int, low_res: int
) -> torch.Tensor:
    """A mask at the original image size as a soft target on the decoder's logit grid.

    The inverse of ``postprocess_masks``: the mask is area-resized to
    ``input_size`` (``ResizeLongestSide``'s frame), zero-padded at the bottom
    and right to ``img_size`` squared (``Sam.preprocess``), then area-pooled to
    ``low_res`` squared; then cut to :func:`valid_cells`.

    Args:
        mask: ``(H, W)`` bool or 0/1, original image pixels.
        input_size: ``(h, w)`` (:attr:`ImageEmbedding.input_size`).
        img_size: the model input side (``sam.image_encoder.img_size``).
        low_res: the logit grid side (``4 * sam.prompt_encoder.image_embedding_size[0]``).

    Returns:
        ``(rows, cols)`` float32 in ``[0, 1]``: the foreground fraction of each valid cell
        (approximate where the photo is no whole multiple of ``input_size``; see the module).
    """
    target = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    target = to_low_res_grid(
        target.to(torch.float32)[None, None], input_size=input_size, img_size=img_size, low_res=low_res
    )
    rows, cols = valid_cells(input_size, img_size, low_res)
    return target[0, 0, :rows, :cols].clamp_(0.0, 1.0)


def to_low_res_grid(
    values: torch.Tensor,
    *,
    input_size: tuple[int, int],
    img_size: int,
    low_res: int,
    pad_value: float = 0.0,
) -> torch.Tensor:
    """``(N, C, H, W)`` float values at the original image size on the whole ``low_res`` square grid.

    :func:`mask_to_low_res`'s path (area resize to ``input_size``, padding at the bottom and right
    to ``img_size``, area pooling to ``low_res``), with the padding filled with ``pad_value`` and
    not cut away: the frame of the decoder's ``mask_input`` (:mod:`segmentation.colour_prompt`).

    Returns:
        ``(N, C, low_res, low_res)`` float32.
    """
    out = F.interpolate(values.to(torch.float32), size=tuple(input_size), mode="area")
    out = F.pad(out, (0, img_size - input_size[1], 0, img_size - input_size[0]), value=pad_value)
    return F.adaptive_avg_pool2d(out, low_res)


def crop_valid(logits: torch.Tensor, input_size: tuple[int, int], img_size: int) -> torch.Tensor:
    """``(..., 4h, 4w)`` logits cut to the cells over the image (:func:`valid_cells`)."""
    rows, cols = valid_cells(input_size, img_size, logits.shape[-1])
    return logits[..., :rows, :cols]


def low_res_to_pixels(
    point: np.ndarray,
    *,
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    img_size: int,
    low_res: int,
) -> np.ndarray:
    """A cell position ``(x, y)`` on the logit grid (cell centres at ``i + 0.5``) in original-image pixels.

    Args:
        point: ``(2,)`` xy in logit-grid units.
        original_size: ``(H, W)`` of the image.
        input_size, img_size, low_res: as in :func:`mask_to_low_res`.

    Returns:
        ``(2,)`` float xy in original-image pixels.
    """
    cell = img_size / low_res
    scale = np.array([original_size[1] / input_size[1], original_size[0] / input_size[0]])
    return np.asarray(point, dtype=float) * cell * scale
