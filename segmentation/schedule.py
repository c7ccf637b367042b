"""How many optimiser steps a fine-tuning makes and how its learning rate is shaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from segmentation.distributed import Dist


def lr_factor(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine down to ``min_ratio`` at ``total`` steps.

    >>> [round(lr_factor(s, warmup=2, total=6, min_ratio=0.0), 2) for s in range(7)]
    [0.5, 1.0, 1.0, 0.85, 0.5, 0.15, 0.0]
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class StepPlan:
    """How many optimiser steps the run makes, and how its learning rate is shaped.

    Every process takes the same number of instances (the permutation is
    wrapped around, as ``DistributedSampler`` pads), so all make the same
    number of steps and the all-reduces pair up.

    Attributes:
        per_process: instances each process trains on per epoch.
        steps_per_epoch: optimiser steps per epoch.
        total_steps: steps of the whole run (``epochs`` of them, or ``max_steps``).
        warmup: linear warm-up steps.
    """

    per_process: int
    steps_per_epoch: int
    total_steps: int
    warmup: int


def plan_steps(n_instances: int, config: dict, world: Dist) -> StepPlan:
    """The :class:`StepPlan` of ``n_instances`` training instances shared by ``world``'s processes."""
    per_process = math.ceil(n_instances / world.world)
    steps_per_epoch = math.ceil(per_process / config["batch_size"])
    total_steps = steps_per_epoch * config["epochs"]
    if config["max_steps"]:
        total_steps = min(total_steps, int(config["max_steps"]))
    # Warm-up is capped at a fifth of the run, so a short run still reaches the full rate.
    warmup = min(int(config["warmup_steps"]), max(1, total_steps // 5))
    return StepPlan(per_process, steps_per_epoch, total_steps, warmup)


def build_optimizer(
    parameters: list[torch.nn.Parameter],
    config: dict,
    plan: StepPlan,
    *,
    own_lr: Sequence[tuple[list[torch.nn.Parameter], float]] = (),
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with linear warm-up and cosine decay to ``lr * min_lr_ratio`` over the plan's steps.

    ``own_lr``: ``(parameters, peak lr)`` of parts that train at their own rate (subsets of
    ``parameters``, disjoint: a trained part of the image encoder at ``encoder_lr``, the colour
    prompt's mask downscaling at ``colour_prompt_lr``), each a group of its own on the same schedule.
    """
    apart = {id(p) for group, _ in own_lr for p in group}
    groups = [{"params": [p for p in parameters if id(p) not in apart]}]
    groups += [{"params": list(group), "lr": lr} for group, lr in own_lr if group]
    optimizer = torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(
            step, warmup=plan.warmup, total=plan.total_steps, min_ratio=config["min_lr_ratio"]
        ),
    )
    return optimizer, scheduler
