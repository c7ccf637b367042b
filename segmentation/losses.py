"""The SAM paper's training loss for the mask decoder, batched.

SAM supervises masks with a linear combination of focal and dice loss (20:1)
and its IoU head with the mean-square error between the predicted IoU and the
IoU the mask actually has. With several masks per prompt (multimask output,
for ambiguous prompts) only the mask with the lowest mask loss is
back-propagated, so each output may specialise on one reading of the prompt.

Every function here compares logits and targets *at the same resolution*: the
caller upsamples the decoder's low-resolution logits to the ground-truth mask
first (``Sam.postprocess_masks``: pad removal and resize to the original image,
the geometry the predictor applies at inference), and nothing here resizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _check_shapes(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``targets`` as float broadcast to ``logits``, or a ValueError naming the resolution contract."""
    try:
        return targets.to(logits.dtype).expand_as(logits)
    except RuntimeError:
        raise ValueError(
            f"targets {tuple(targets.shape)} do not match logits {tuple(logits.shape)}: upsample the logits "
            "to the mask size (Sam.postprocess_masks) before computing the loss"
        ) from None


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss of each mask, averaged over its pixels.

    Args:
        logits: ``(..., H, W)`` mask logits, e.g. ``(B, M, H, W)``.
        targets: ``(..., H, W)`` 0/1 (bool or float), broadcastable to ``logits``
            (``(B, 1, H, W)`` for one target shared by M masks).
        alpha: weight of the positive pixels (``-1`` for none), as in torchvision.
        gamma: focusing exponent.

    Returns:
        ``(...)``, e.g. ``(B, M)``: mean over ``H, W`` of the per-pixel focal loss.
    """
    targets = _check_shapes(logits, targets)
    import torchvision.ops  # here: it imports torch._dynamo (seconds of every --help)

    per_pixel = torchvision.ops.sigmoid_focal_loss(
        logits, targets, alpha=alpha, gamma=gamma, reduction="none"
    )
    return per_pixel.mean(dim=(-2, -1))


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft dice loss of each mask, ``1 - (2 |P T| + eps) / (|P| + |T| + eps)`` on sigmoid probabilities.

    Args:
        logits: ``(..., H, W)`` mask logits.
        targets: ``(..., H, W)`` 0/1, broadcastable to ``logits``.
        eps: smoothing; keeps the loss defined (0) when prediction and target are both empty.

    Returns:
        ``(...)``, e.g. ``(B, M)``, in ``[0, 1)``.
    """
    targets = _check_shapes(logits, targets)
    probabilities = logits.sigmoid()
    intersection = (probabilities * targets).sum(dim=(-2, -1))
    total = probabilities.sum(dim=(-2, -1)) + targets.sum(dim=(-2, -1))
    return 1.0 - (2.0 * intersection + eps) / (total + eps)


@torch.no_grad()
def mask_iou(logits: torch.Tensor, targets: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """IoU of the binarised masks ``logits > threshold`` with the targets (no gradient).

    Args:
        logits: ``(..., H, W)`` mask logits (threshold 0 is probability 0.5,
            ``SamPredictor``'s ``mask_threshold``).
        targets: ``(..., H, W)`` 0/1, broadcastable to ``logits``.
        threshold: logit above which a pixel is predicted as mask.

    Returns:
        ``(...)`` float in ``[0, 1]``; 1 where prediction and target are both empty.
    """
    targets = _check_shapes(logits, targets) > 0.5
    predictions = logits > threshold
    intersection = (predictions & targets).sum(dim=(-2, -1))
    union = (predictions | targets).sum(dim=(-2, -1))
    iou = intersection / union.clamp(min=1)
    return torch.where(union == 0, torch.ones_like(iou), iou).to(logits.dtype)


@dataclass(frozen=True, eq=False)
class SamLoss:
    """The loss of a batch and its parts.

    Attributes:
        total: scalar tensor to back-propagate.
        focal: mean focal loss of the chosen masks (unweighted), for logging.
        dice: mean dice loss of the chosen masks (unweighted), for logging.
        iou: mean square error of the IoU prediction of the chosen masks, for logging.
        actual_iou: mean IoU of the chosen masks with their targets, for logging.
        best_index: ``(B,)`` long, the mask of each sample that was back-propagated.
    """

    total: torch.Tensor
    focal: float
    dice: float
    iou: float
    actual_iou: float
    best_index: torch.Tensor


def sam_loss(
    mask_logits: torch.Tensor,
    targets: torch.Tensor,
    iou_predictions: torch.Tensor,
    *,
    focal_weight: float = 20.0,
    dice_weight: float = 1.0,
    iou_weight: float = 1.0,
) -> SamLoss:
    """SAM's loss: focal and dice on the best of M masks per sample, plus MSE on its predicted IoU.

    For each sample the mask loss ``focal_weight * focal + dice_weight * dice``
    is computed for each of its M masks and only the lowest is
    back-propagated (SAM's rule for ambiguous prompts; with M == 1 it is that
    mask). The IoU head of that mask is trained towards the IoU the mask
    actually has, a detached target.

    Args:
        mask_logits: ``(B, M, H, W)`` logits already upsampled to the target
            resolution (see the module docstring).
        targets: ``(B, H, W)`` bool or 0/1 float, one ground-truth instance per sample.
        iou_predictions: ``(B, M)`` the decoder's IoU predictions.
        focal_weight, dice_weight, iou_weight: weights of the terms (SAM: 20, 1, 1).

    Returns:
        :class:`SamLoss`; ``total`` is the mean over the batch.

    Raises:
        ValueError: shapes that do not fit together (e.g. logits not upsampled).
    """
    if mask_logits.dim() != 4 or targets.shape != (mask_logits.shape[0], *mask_logits.shape[2:]):
        raise ValueError(
            f"expected mask_logits (B, M, H, W) and targets (B, H, W), got {tuple(mask_logits.shape)} and "
            f"{tuple(targets.shape)}: upsample the logits to the mask size (Sam.postprocess_masks) first"
        )
    if iou_predictions.shape != mask_logits.shape[:2]:
        raise ValueError(
            f"iou_predictions {tuple(iou_predictions.shape)} must be (B, M) = {tuple(mask_logits.shape[:2])}"
        )
    # float32 whatever the autocast dtype: dice and focal sum or average ~1e6 pixels, beyond 16-bit precision.
    logits = mask_logits.float()
    target = targets[:, None].float()
    focal = sigmoid_focal_loss(logits, target)
    dice = dice_loss(logits, target)
    per_mask = focal_weight * focal + dice_weight * dice
    best = per_mask.detach().argmin(dim=1)
    chosen = best[:, None]
    mask_term = per_mask.gather(1, chosen).mean()
    actual_iou = mask_iou(logits, target).gather(1, chosen)
    iou_term = F.mse_loss(iou_predictions.float().gather(1, chosen), actual_iou)
    return SamLoss(
        total=mask_term + iou_weight * iou_term,
        focal=float(focal.detach().gather(1, chosen).mean()),
        dice=float(dice.detach().gather(1, chosen).mean()),
        iou=float(iou_term.detach()),
        actual_iou=float(actual_iou.mean()),
        best_index=best,
    )
