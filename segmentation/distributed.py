"""Data-parallel fine-tuning under ``torchrun``: process group, gradient averaging, agreement checks.

    torchrun --nproc_per_node 2 -m segmentation.train --config configs/segmentation/sam_decoder.yaml

Every function is a no-op for a single process (rank 0 of 1), so the trainer
calls them unconditionally. NCCL joins the processes on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """Where this process stands under torchrun (rank 0 of 1 otherwise)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    """Joins the torchrun process group when ``WORLD_SIZE`` > 1 (NCCL on GPUs, gloo on CPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def local_device(device: torch.device, world: Dist) -> torch.device:
    """This process's own GPU under torchrun (``LOCAL_RANK``); ``device`` unchanged otherwise."""
    if world.world == 1 or device.type != "cuda":
        return device
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    torch.cuda.set_device(device)
    return device


def average_gradients(parameters: list[torch.nn.Parameter], world: Dist) -> None:
    """All-reduces and averages gradients across processes: what DDP's reducer does, done explicitly.

    A step here accumulates the gradients of several instances, each with a
    varying number of decoder calls (corrective rounds), on a submodule of
    ``Sam`` that the rest of the project calls directly. Wrapping that in
    ``DistributedDataParallel`` would need ``no_sync`` bookkeeping per
    instance and would rename the decoder's state-dict keys; one all-reduce
    of the accumulated gradients before ``optimizer.step`` is the same
    arithmetic. :func:`check_in_sync` verifies the ranks agree at the end.
    """
    if world.world == 1:
        return
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
        parameter.grad /= world.world


def check_in_sync(parameters: list[torch.nn.Parameter], world: Dist) -> None:
    """Raises when the processes' trained weights differ (they must be identical after every step)."""
    if world.world == 1:
        return
    checksum = torch.stack([p.detach().double().sum() for p in parameters]).sum().reshape(1).cpu()
    gathered = [torch.zeros_like(checksum) for _ in range(world.world)]
    dist.all_gather(gathered, checksum)
    values = [float(g) for g in gathered]
    if max(values) - min(values) > 1e-6 * max(1.0, abs(values[0])):
        raise RuntimeError(f"ranks diverged: decoder weight checksums {values}")


def from_main(value: object, world: Dist) -> object:
    """Rank 0's ``value`` on every process (a choice only rank 0 may make, such as a folder name)."""
    if world.world == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier(world: Dist) -> None:
    """Waits for every process (rank 0 filling the embedding cache, say)."""
    if world.world > 1:
        dist.barrier()


def leave(world: Dist) -> None:
    """Waits for every process, then leaves the process group."""
    if world.world > 1:
        dist.barrier()
        dist.destroy_process_group()
