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
output only the best of the three masks gets the gradient. The loss is taken on
the decoder's 256x256 logits against the mask mapped into their frame
(``loss.resolution: low``, :mod:`segmentation.low_res`), or on logits upsampled
to the mask with SAM's ``postprocess_masks`` (``full``). Optional: small
instances shown in zoomed crops (``crops``, :mod:`segmentation.crops`) and
label-safe flips added as samples (``augment``, :mod:`segmentation.augment`),
each view encoded once into the cache.

Every key of the config is declared once, in :data:`segmentation.train_config.SCHEMA`; a wrong type or
a value out of range is one error line before anything is written. A run
folder holds ``args.yaml`` (the resolved config), ``results.csv`` and
``curves.png`` (per epoch), ``last.pt`` (resumable state), ``decoder.pt`` (the
best decoder, small) and ``sam_finetuned.pth`` (a full state dict that stock
segment_anything builders load).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from segment_anything.modeling import Sam
from tqdm import tqdm

from common.augment_policy import geometry_settings, load_policy
from common.cli import exit_code
from common.config import load_config, save_config
from common.errors import UserError, one_line
from common.io import atomic_write, cache_root, load_torch, save_torch
from segmentation.augment import allowed_transforms
from segmentation.crops import CropRule
from segmentation.data import SegmentationSplit, load_split
from segmentation.distributed import (
    Dist,
    average_gradients,
    barrier,
    check_in_sync,
    from_main,
    init_distributed,
    leave,
    local_device,
)
from segmentation.embeddings import EmbeddingCache, ImageEmbedding
from segmentation.evaluate import crop_views, evaluate_model, resolve_device
from segmentation.finetuned import apply_decoder, base_sha256, read_decoder, save_decoder, save_full
from segmentation.instances import InstanceSet, instance_loss, trainable_parameters, training_samples
from segmentation.models import load_sam
from segmentation.prompts import PromptConfig
from segmentation.schedule import StepPlan, build_optimizer, plan_steps
from segmentation.train_config import SCHEMA, data_categories
from segmentation.views import View

#: What ``last.pt`` must hold to resume (``prompt_encoder`` is optional: None unless trained).
RESUME_KEYS = ("mask_decoder", "optimizer", "scheduler", "epoch", "best_iou", "stale", "step", "rows")


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class RunState:
    """Where a run stands; saved in ``last.pt`` after every epoch, beside the weights and optimiser.

    Attributes:
        next_epoch: 0-based index of the next epoch to train (``last.pt`` stores the last finished one).
        best_iou: best val IoU so far (epoch 0, the untuned model, included).
        stale: epochs since the best one, for early stopping.
        step: optimiser steps made.
        rows: one ``results.csv`` row per finished epoch, epoch 0 first.
    """

    next_epoch: int = 0
    best_iou: float = -1.0
    stale: int = 0
    step: int = 0
    rows: list[dict] = field(default_factory=list)


@dataclass
class Run:
    """What a fine-tuning works with once set up: process, model, data, optimiser, run folder."""

    config: dict
    world: Dist
    device: torch.device
    sam: Sam
    base_sha256: str | None
    parameters: list[torch.nn.Parameter]
    instances: InstanceSet
    val_split: SegmentationSplit
    prompt_config: PromptConfig
    plan: StepPlan
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    folder: Path
    train_embeddings: dict[tuple[int, View], ImageEmbedding]
    val_embeddings: list[ImageEmbedding]
    crops: CropRule | None = None
    val_crop_embeddings: dict[tuple[int, View], ImageEmbedding] = field(default_factory=dict)

    @property
    def progress(self) -> bool:
        """Progress bars: asked for, and only from rank 0."""
        return bool(self.config["progress"]) and self.world.main


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


def write_results(rows: list[dict], path: Path) -> None:
    """``results.csv``: one row per epoch, columns in the rows' key order."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, text.getvalue())


# --- set-up: everything that can fail on bad input runs before the run folder is written ------


def set_up_process(config: dict) -> tuple[torch.device, Dist]:
    """Picks the device, joins torchrun's process group if any, and seeds this process."""
    device = resolve_device(config["device"])
    world = init_distributed(device)
    device = local_device(device, world)
    seed_everything(config["seed"] + world.rank)
    return device, world


def load_training_data(data: str | Path) -> tuple[SegmentationSplit, SegmentationSplit]:
    """The train and val splits of a converted data set, both checked to have defects."""
    train_split, val_split = load_split(data, "train"), load_split(data, "val")
    if train_split.n_instances == 0:
        raise UserError(f"the train split of {data} has no defect instances")
    if val_split.n_instances == 0:
        raise UserError(
            f"the val split of {data} has no defect instances: validation IoU picks the best epoch "
            "and stops early, so convert with more defect images or a larger val fraction "
            "(--split TRAIN VAL TEST)"
        )
    return train_split, val_split


def crop_rule(config: dict) -> CropRule | None:
    """The config's zoomed-crop rule, or None when ``crops.max_fraction`` is 0."""
    rule = CropRule(**config["crops"])
    return rule if rule.max_fraction > 0 else None


def augment_transforms(config: dict) -> tuple[str, ...]:
    """The cached flips/rotations the data set's categories allow (empty unless ``augment.enabled``)."""
    settings = config["augment"]
    if not settings["enabled"]:
        return ()
    categories = [settings["category"]] if settings["category"] else data_categories(config["data"])
    return allowed_transforms(geometry_settings(load_policy(settings["policy"]), categories))


def build_instances(split: SegmentationSplit, config: dict) -> InstanceSet:
    """The training samples: every instance, in each allowed view, small ones in zoomed crops."""
    return InstanceSet(
        split, training_samples(split, transforms=augment_transforms(config), crops=crop_rule(config))
    )


def load_model(config: dict, sam: Sam | None, device: torch.device) -> tuple[Sam, str | None]:
    """The model to tune on ``device`` and the sha256 of its base weights (None for a given ``sam``)."""
    if sam is not None:
        return sam.to(device), None
    sam = load_sam(config["model"], config["checkpoint"], device=device)
    return sam, base_sha256(config["model"], config["checkpoint"])


def read_resume_state(folder: Path) -> dict:
    """``folder/last.pt``, checked to hold a whole training state.

    Raises:
        UserError: missing, unreadable (a run killed by a full disk, a foreign file) or incomplete.
    """
    path = folder / "last.pt"
    # Our own file with the optimiser state in it: loading it runs pickled code (weights_only=False).
    state = load_torch(path, what="resume state", weights_only=False)
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a training state written by segmentation.train")
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing:
        raise UserError(f"{path} is not a whole training state: it lacks {', '.join(missing)}")
    return state


def restore(
    state: dict,
    *,
    sam: Sam,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    source: Path,
) -> RunState:
    """Loads a :func:`read_resume_state` into the model, optimiser and scheduler; returns where it stood."""
    try:
        sam.mask_decoder.load_state_dict(state["mask_decoder"])
        if state.get("prompt_encoder") is not None:
            sam.prompt_encoder.load_state_dict(state["prompt_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        return RunState(
            next_epoch=int(state["epoch"]) + 1,
            best_iou=float(state["best_iou"]),
            stale=int(state["stale"]),
            step=int(state["step"]),
            rows=list(state["rows"]),
        )
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise UserError(
            f"{source} does not fit this run ({one_line(error, limit=160)}); "
            "resume with the model and train_prompt_encoder it was started with"
        ) from None


def prepare_run_dir(config: dict, world: Dist, resume: Path | None) -> Path:
    """The run folder, created by rank 0 with the resolved config in ``args.yaml``."""
    if resume is not None:
        folder = resume
    else:
        name = config["name"] or f"{config['model']}_{Path(config['data']).name}"
        if config["exist_ok"]:
            folder = Path(config["out"]) / name
        else:
            # Only rank 0 looks for a free name; the others must use the same folder.
            chosen = str(next_run_dir(Path(config["out"]), name)) if world.main else None
            folder = Path(from_main(chosen, world))
    if world.main:
        folder.mkdir(parents=True, exist_ok=True)
        if resume is None:  # a reused folder's old state must not be resumed into this run
            (folder / "last.pt").unlink(missing_ok=True)
        save_config(config, folder / "args.yaml")
    return folder


def embed_splits(
    sam: Sam,
    instances: InstanceSet,
    val_split: SegmentationSplit,
    config: dict,
    world: Dist,
    device: torch.device,
) -> tuple[
    dict[tuple[int, View], ImageEmbedding], list[ImageEmbedding], dict[tuple[int, View], ImageEmbedding]
]:
    """Through the shared cache: the train samples' views, the val images and the val crops."""
    cache = EmbeddingCache(
        config["cache_dir"] or cache_root() / "embeddings", sam, model_name=config["model"]
    )
    train_views = instances.views()
    val_views = [(index, View()) for index in range(len(val_split.images))]
    val_crops = crop_views(val_split, crop_rule(config))
    pairs = [(instances.split, pair) for pair in train_views] + [
        (val_split, p) for p in val_views + val_crops
    ]
    paths = [split.images[index].path for split, (index, _) in pairs]
    views = [view for _, (_, view) in pairs]
    # Rank 0 fills the cache; the others wait and then read it (no duplicated encoder work).
    if world.main:
        progress = bool(config["progress"])
        embeddings = cache.embed(
            paths, views=views, batch_size=config["embed_batch_size"], device=device, progress=progress
        )
    barrier(world)
    if not world.main:
        embeddings = cache.embed(paths, views=views, device=device, progress=False)
    n_train, n_val = len(train_views), len(val_views)
    train = dict(zip(train_views, embeddings[:n_train], strict=True))
    val = embeddings[n_train : n_train + n_val]
    crops = dict(zip(val_crops, embeddings[n_train + n_val :], strict=True))
    return train, val, crops


def set_up(config: dict, *, resume: Path | None, sam: Sam | None) -> tuple[Run, RunState]:
    """Checks the config and data, loads the model and any resume state, then makes the run folder."""
    SCHEMA.check(config)
    if not config.get("data"):
        raise UserError("no data set: pass data=<folder written by the converters> (or set it in the config)")
    device, world = set_up_process(config)
    saved = read_resume_state(resume) if resume is not None else None
    train_split, val_split = load_training_data(config["data"])
    instances = build_instances(train_split, config)
    sam, base = load_model(config, sam, device)
    parameters = trainable_parameters(sam, prompt_encoder=bool(config["train_prompt_encoder"]))
    plan = plan_steps(len(instances), config, world)
    optimizer, scheduler = build_optimizer(parameters, config, plan)
    state = RunState()
    if saved is not None:
        state = restore(saved, sam=sam, optimizer=optimizer, scheduler=scheduler, source=resume / "last.pt")
    folder = prepare_run_dir(config, world, resume)
    train_embeddings, val_embeddings, val_crops = embed_splits(
        sam, instances, val_split, config, world, device
    )
    run = Run(
        config=config,
        world=world,
        device=device,
        sam=sam,
        base_sha256=base,
        parameters=parameters,
        instances=instances,
        val_split=val_split,
        prompt_config=PromptConfig(**config["prompts"]),
        plan=plan,
        optimizer=optimizer,
        scheduler=scheduler,
        folder=folder,
        train_embeddings=train_embeddings,
        val_embeddings=val_embeddings,
        crops=crop_rule(config),
        val_crop_embeddings=val_crops,
    )
    return run, state


# --- the epochs ---------------------------------------------------------------------------------


def validate(run: Run) -> dict:
    """Val IoU, Dice and mask AP of the current decoder (the row's ``val_*`` columns)."""
    run.sam.mask_decoder.eval()
    with torch.inference_mode():
        val = evaluate_model(
            run.sam,
            run.val_split,
            run.val_embeddings,
            name="val",
            progress=False,
            crops=run.crops,
            crop_embeddings=run.val_crop_embeddings,
        )
    return {
        "val_iou": val.summary.iou.get("all", float("nan")),
        "val_dice": val.summary.dice.get("all", float("nan")),
        "val_mask_ap": val.summary.mask_ap.get("all", float("nan")),
    }


def save_best(run: Run) -> None:
    """Writes the current decoder as ``decoder.pt`` (rank 0 only)."""
    save_decoder(
        run.sam,
        run.folder / "decoder.pt",
        model=run.config["model"],
        prompt_encoder=bool(run.config["train_prompt_encoder"]),
        base_checkpoint_sha256=run.base_sha256,
        config=run.config,
    )


def save_resume_state(run: Run, state: RunState) -> None:
    """Writes ``last.pt``: weights, optimiser, scheduler and :class:`RunState` (rank 0 only)."""
    train_prompt_encoder = run.config["train_prompt_encoder"]
    save_torch(
        {
            "mask_decoder": run.sam.mask_decoder.state_dict(),
            "prompt_encoder": run.sam.prompt_encoder.state_dict() if train_prompt_encoder else None,
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "epoch": state.next_epoch - 1,
            "best_iou": state.best_iou,
            "stale": state.stale,
            "step": state.step,
            "rows": state.rows,
        },
        run.folder / "last.pt",
    )


def record_zero_shot(run: Run, state: RunState) -> None:
    """Epoch 0 is the untuned model: the baseline every later epoch must beat to be kept."""
    row = {
        "epoch": 0,
        "step": 0,
        "train_loss": float("nan"),
        **validate(run),
        "lr": run.scheduler.get_last_lr()[0],
        "seconds": 0.0,
    }
    state.rows.append(row)
    state.best_iou = row["val_iou"]
    if run.world.main:
        save_best(run)
        print(
            f"epoch 0 (zero-shot): val IoU {state.best_iou:.4f}  mask AP {row['val_mask_ap']:.4f}",
            file=sys.stderr,
        )


def train_step(run: Run, batch: np.ndarray, rng: np.random.Generator) -> float:
    """One optimiser step on a batch of instance indices (gradients averaged over processes).

    Returns:
        The batch's mean loss.
    """
    run.optimizer.zero_grad(set_to_none=True)
    batch_loss = 0.0
    for index in batch:
        sample = run.instances.samples[index]
        embedding = run.train_embeddings[(sample.image_index, sample.view)]
        target = run.instances.target(index)
        low_res = None
        if run.config["loss"]["resolution"] == "low":
            low_res = run.instances.low_res(index, run.sam, embedding, target)
        loss, _ = instance_loss(
            run.sam,
            embedding,
            target,
            config=run.config,
            prompt_config=run.prompt_config,
            rng=rng,
            device=run.device,
            low_res=low_res,
        )
        (loss / len(batch)).backward()
        batch_loss += float(loss.detach()) / len(batch)
    average_gradients(run.parameters, run.world)
    run.optimizer.step()
    run.scheduler.step()
    return batch_loss


def train_one_epoch(run: Run, state: RunState, epoch: int) -> list[float]:
    """One pass over this process's share of the train instances; returns each step's loss."""
    config, world = run.config, run.world
    run.sam.mask_decoder.train()
    order = np.random.default_rng([config["seed"], epoch]).permutation(len(run.instances))
    shard = np.resize(order, run.plan.per_process * world.world)[world.rank :: world.world]
    rng = np.random.default_rng([config["seed"], epoch, world.rank, 1])
    size = config["batch_size"]
    batches = [shard[i : i + size] for i in range(0, len(shard), size)]
    losses: list[float] = []
    bar = tqdm(
        batches, desc=f"epoch {epoch + 1}/{config['epochs']}", disable=not run.progress, file=sys.stderr
    )
    for batch in bar:
        if state.step >= run.plan.total_steps:
            break
        losses.append(train_step(run, batch, rng))
        state.step += 1
        bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{run.scheduler.get_last_lr()[0]:.2e}")
    return losses


def finish_epoch(run: Run, state: RunState, row: dict) -> None:
    """Records an epoch's row; rank 0 keeps the best decoder and writes last.pt, results and curves."""
    state.rows.append(row)
    state.next_epoch = row["epoch"]
    improved = row["val_iou"] > state.best_iou
    state.best_iou, state.stale = (row["val_iou"], 0) if improved else (state.best_iou, state.stale + 1)
    if not run.world.main:
        return
    if improved:
        save_best(run)
    save_resume_state(run, state)
    write_results(state.rows, run.folder / "results.csv")
    plot_curves(state.rows, run.folder / "curves.png")
    print(
        f"epoch {row['epoch']}: loss {row['train_loss']:.4f}  val IoU {row['val_iou']:.4f}  "
        f"mask AP {row['val_mask_ap']:.4f}{'  (best)' if improved else ''}",
        file=sys.stderr,
    )


def run_epoch(run: Run, state: RunState, epoch: int) -> None:
    """Trains epoch ``epoch`` (0-based), validates, and records it as row ``epoch + 1``."""
    started = time.perf_counter()
    losses = train_one_epoch(run, state, epoch)
    row = {
        "epoch": epoch + 1,
        "step": state.step,
        "train_loss": float(np.mean(losses)) if losses else float("nan"),
        **validate(run),
        "lr": run.scheduler.get_last_lr()[0],
        "seconds": round(time.perf_counter() - started, 2),
    }
    finish_epoch(run, state, row)


def finish(run: Run, state: RunState) -> None:
    """Checks the processes agree, then rank 0 writes the best decoder into ``sam_finetuned.pth``."""
    check_in_sync(run.parameters, run.world)
    if run.world.main:
        best = run.folder / "decoder.pt"
        if best.is_file():
            apply_decoder(run.sam, read_decoder(best), source=best)
            save_full(run.sam, run.folder / "sam_finetuned.pth")
        print(f"best val IoU {state.best_iou:.4f}; decoder.pt, sam_finetuned.pth, results.csv, curves.png in")
        print(f"  {run.folder}")
    leave(run.world)


def train(config: dict, *, resume: Path | None = None, sam: Sam | None = None) -> Path:
    """Runs a whole fine-tuning; returns the run folder.

    Args:
        config: a config of :data:`SCHEMA` (:func:`common.config.load_config`); checked again here.
        resume: a run folder to continue from its ``last.pt``.
        sam: an already built model to tune instead of loading ``config["model"]``
            with ``config["checkpoint"]`` (a custom architecture, or tests); its weights
            are then not tied to a base file (``decoder.pt`` records no base hash).

    Raises:
        UserError: a bad config value, data set or resume state; raised before the run
            folder is created or changed.
    """
    run, state = set_up(config, resume=resume, sam=sam)
    if resume is None:
        record_zero_shot(run, state)
    for epoch in range(state.next_epoch, config["epochs"]):
        if state.step >= run.plan.total_steps or state.stale >= config["patience"]:
            break
        run_epoch(run, state, epoch)
    finish(run, state)
    return run.folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m segmentation.train",
        description="Fine-tune SAM's mask decoder on cached embeddings. Overrides: key=value (dots nest).",
    )
    parser.add_argument("--config", type=Path, help="YAML config (configs/segmentation/sam_decoder.yaml)")
    parser.add_argument("--resume", type=Path, help="run folder to continue from its last.pt and args.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. epochs=5 prompts.p_box=1.0")
    return parser


def load_run_config(args: argparse.Namespace) -> dict:
    """The checked config of a new run (``--config`` + overrides) or of a resumed one (its args.yaml)."""
    if args.resume is None:
        return load_config(SCHEMA, args.config, args.overrides)
    if args.config is not None:
        raise UserError("--resume takes the run's own args.yaml: drop --config (overrides still apply)")
    if not (args.resume / "last.pt").is_file():
        raise UserError(f"nothing to resume in {args.resume}: no last.pt")
    return load_config(SCHEMA, args.resume / "args.yaml", args.overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code(lambda: train(load_run_config(args), resume=args.resume))


if __name__ == "__main__":
    raise SystemExit(main())
