from __future__ import annotations

import pytest
import torch

from segmentation.losses import dice_loss, mask_iou, sam_loss, sigmoid_focal_loss


def blob_target(batch: int = 2, height: int = 12, width: int = 20) -> torch.Tensor:
    """(B, H, W) bool: a different rectangle per sample, on a non-square image."""
    target = torch.zeros(batch, height, width, dtype=torch.bool)
    for index in range(batch):
        target[index, 2 + index : 8 + index, 3 : 10 + 2 * index] = True
    return target


def logits_for(target: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """Confident logits for a mask: +scale inside, -scale outside."""
    return torch.where(target, scale, -scale).float()


def test_perfect_logits_have_no_loss_and_full_iou():
    target = blob_target()[:, None]  # (B, 1, H, W)
    logits = logits_for(target)
    assert sigmoid_focal_loss(logits, target).shape == (2, 1)
    assert sigmoid_focal_loss(logits, target).max() < 1e-6
    assert dice_loss(logits, target).max() < 1e-6
    torch.testing.assert_close(mask_iou(logits, target), torch.ones(2, 1))


def test_inverted_logits_have_large_loss_and_no_iou():
    target = blob_target()[:, None]
    logits = logits_for(~target)
    assert (sigmoid_focal_loss(logits, target) > 1.0).all()
    assert (dice_loss(logits, target) > 0.95).all()
    torch.testing.assert_close(mask_iou(logits, target), torch.zeros(2, 1))


def test_focal_matches_torchvision_mean_over_pixels():
    import torchvision

    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 5, 7), torch.rand(2, 3, 5, 7) > 0.5
    expected = torchvision.ops.sigmoid_focal_loss(logits, target.float(), reduction="none").mean(dim=(-2, -1))
    torch.testing.assert_close(sigmoid_focal_loss(logits, target), expected)


def test_mask_iou_counts_pixels_and_treats_two_empty_masks_as_equal():
    target = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    target[..., :2, :2] = True  # 4 pixels
    logits = torch.full((1, 1, 4, 4), -1.0)
    logits[..., :2, :3] = 1.0  # 6 pixels, 4 of them right
    assert mask_iou(logits, target).item() == pytest.approx(4 / 6)
    assert mask_iou(torch.full((1, 1, 3, 3), -5.0), torch.zeros(1, 1, 3, 3)).item() == 1.0


def test_mask_iou_has_no_gradient():
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    assert not mask_iou(logits, torch.ones(1, 1, 4, 4)).requires_grad


def candidates(target: torch.Tensor, good: int) -> torch.Tensor:
    """(B, 3, H, W) logits: the mask at index ``good`` matches, the other two are wrong."""
    stack = [logits_for(~target), logits_for(torch.zeros_like(target)), logits_for(~target, scale=3.0)]
    stack[good] = logits_for(target, scale=4.0)
    return torch.stack(stack, dim=1)


@pytest.mark.parametrize("good", [0, 1, 2])
def test_sam_loss_back_propagates_only_the_best_of_three(good):
    target = blob_target()
    logits = candidates(target, good).requires_grad_(True)
    iou_predictions = torch.full((2, 3), 0.5, requires_grad=True)
    loss = sam_loss(logits, target, iou_predictions)
    assert loss.best_index.tolist() == [good, good]
    loss.total.backward()
    others = [index for index in range(3) if index != good]
    assert logits.grad[:, others].abs().max() == 0
    assert logits.grad[:, good].abs().max() > 0
    assert iou_predictions.grad[:, others].abs().max() == 0
    assert iou_predictions.grad[:, good].abs().min() > 0  # pushed from 0.5 towards the actual IoU 1


def test_sam_loss_picks_per_sample():
    target = blob_target()
    logits = torch.stack([candidates(target[:1], 2)[0], candidates(target[1:], 0)[0]])
    assert sam_loss(logits, target, torch.zeros(2, 3)).best_index.tolist() == [2, 0]


def test_single_mask_output_uses_that_mask():
    target = blob_target()
    logits = logits_for(~target)[:, None].requires_grad_(True)
    loss = sam_loss(logits, target, torch.zeros(2, 1))
    assert loss.best_index.tolist() == [0, 0]
    loss.total.backward()
    assert logits.grad.abs().sum() > 0


def test_iou_term_vanishes_when_the_prediction_is_the_actual_iou():
    torch.manual_seed(0)
    target = blob_target()
    logits = torch.randn(2, 3, *target.shape[1:])
    actual = mask_iou(logits, target[:, None])
    loss = sam_loss(logits, target, actual.clone())
    assert loss.iou == 0.0
    assert 0.0 < loss.actual_iou < 1.0
    weighted = 20.0 * loss.focal + loss.dice
    assert loss.total.item() == pytest.approx(weighted, rel=1e-5)


@pytest.mark.parametrize(("dice_weight", "iou_weight"), [(0.0, 2.0), (3.0, 0.0)])
def test_weights_scale_their_own_terms(dice_weight, iou_weight):
    torch.manual_seed(0)
    target = blob_target()
    logits, iou_predictions = torch.randn(2, 1, *target.shape[1:]), torch.zeros(2, 1)
    loss = sam_loss(
        logits, target, iou_predictions, focal_weight=0.0, dice_weight=dice_weight, iou_weight=iou_weight
    )
    assert loss.total.item() == pytest.approx(dice_weight * loss.dice + iou_weight * loss.iou, rel=1e-5)


def test_a_few_steps_on_a_learnable_logit_map_decrease_the_loss():
    torch.manual_seed(0)
    target = blob_target(batch=1)
    logits = torch.zeros(1, 1, *target.shape[1:], requires_grad=True)
    iou_prediction = torch.zeros(1, 1, requires_grad=True)
    optimizer = torch.optim.Adam([logits, iou_prediction], lr=0.5)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = sam_loss(logits, target, iou_prediction)
        loss.total.backward()
        optimizer.step()
        losses.append(loss.total.item())
    assert losses[-1] < 0.2 * losses[0]
    assert loss.actual_iou == 1.0


@pytest.mark.parametrize(
    ("logit_shape", "target_shape", "iou_shape", "message"),
    [
        ((2, 3, 6, 10), (2, 12, 20), (2, 3), "expected mask_logits"),  # logits not upsampled to the mask
        ((2, 3, 12, 20), (2, 1, 12, 20), (2, 3), "expected mask_logits"),  # target with a channel axis
        ((2, 3, 12, 20), (2, 12, 20), (2, 1), r"iou_predictions \(2, 1\) must be"),  # one IoU, three masks
    ],
)
def test_sam_loss_rejects_mismatched_shapes(logit_shape, target_shape, iou_shape, message):
    with pytest.raises(ValueError, match=message):
        sam_loss(torch.zeros(logit_shape), torch.zeros(target_shape), torch.zeros(iou_shape))


def test_losses_reject_unbroadcastable_targets():
    with pytest.raises(ValueError, match="upsample"):
        dice_loss(torch.zeros(1, 1, 6, 10), torch.zeros(1, 1, 12, 20))


def test_half_precision_logits_give_a_float32_loss():
    target = blob_target()
    logits = logits_for(target)[:, None].to(torch.bfloat16).requires_grad_(True)
    loss = sam_loss(logits, target, torch.ones(2, 1, dtype=torch.bfloat16))
    assert loss.total.dtype == torch.float32
    loss.total.backward()
    assert logits.grad.dtype == torch.bfloat16


def test_mask_iou_binarises_soft_targets_at_one_half_and_logits_above_the_threshold():
    target = torch.tensor([[[[0.3, 0.7, 0.5, 1.0]]]])  # foreground fractions of low-resolution cells
    logits = torch.tensor([[[[1.0, 1.0, -1.0, 0.0]]]])  # a logit of exactly 0 is background
    assert mask_iou(logits, target).item() == pytest.approx(1 / 3)


def test_dice_is_smoothed_by_one_pixel():
    target = torch.zeros(1, 1, 2, 2)
    target[..., 0, 0] = 1.0
    # probabilities 0.5 everywhere: 1 - (2 * 0.5 + 1) / (2 + 1 + 1)
    assert dice_loss(torch.zeros(1, 1, 2, 2), target).item() == pytest.approx(0.5)


def test_iou_term_is_the_squared_error_of_the_chosen_masks():
    target = blob_target()
    loss = sam_loss(candidates(target, 1), target, torch.full((2, 3), 0.25))
    assert loss.actual_iou == 1.0  # the chosen masks match; the other two miss entirely
    assert loss.iou == pytest.approx(0.75**2)
