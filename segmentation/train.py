"""Fine-tunes SAM's mask decoder on a converted data set's pixel masks, on cached image embeddings.

    python -m segmentation.train --config configs/segmentation/sam_decoder.yaml data=runs/demo/synthetic_nut
    python -m segmentation.train --resume runs/sam/<name>
    torchrun --nproc_per_node 2 -m segmentation.train --config ...        # data parallel

The image encoder is frozen, so every image is encoded once into the shared
embedding cache and each step runs only the prompt encoder and mask decoder.
With ``train_encoder`` the top of the encoder trains too, on the cached output of
its frozen rest (:mod:`segmentation.encoder_part`).
A training sample is one ground-truth instance with a prompt drawn from it
(a jittered box, or positive/negative points), optionally followed by a
corrective click from the error region, as in the SAM paper. Loss: focal +
dice on the mask logits (20:1) and MSE of the predicted IoU; with multimask
output only the best of the three masks gets the gradient. The loss is taken on
the decoder's 256x256 logits against the mask mapped into their frame
(``loss.resolution: low``, :mod:`segmentation.low_res`), or on logits upsampled
to the mask with SAM's ``postprocess_masks`` (``full``). By default only the
decoder's output heads train (``train_transformer: false``): its two-way
transformer runs without a graph, so no backward pass goes through it. Optional: small
instances shown in zoomed crops (``crops``, :mod:`segmentation.crops`) and
label-safe flips added as samples (``augment``, :mod:`segmentation.augment`),
each view encoded once into the cache.

Set-up lives in :mod:`segmentation.run_setup`, the run folder's files in
:mod:`segmentation.run_folder`; their public names are importable from here too.

Every key of the config is declared once, in :data:`segmentation.train_config.SCHEMA`; a wrong type or
a value out of range is one error line before anything is written. A run
folder holds ``args.yaml`` (the resolved config), ``results.csv`` and
``curves.png`` (per epoch), ``last.pt`` (resumable state), ``decoder.pt`` (the
best decoder, small) and ``sam_finetuned.pth`` (a full state dict that stock
segment_anything builders load); with ``colour_head``, ``colour_head.json`` (the
head's fit, :func:`fit_head`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from common.cli import OneLineParser, command_name, exit_code, user_path
from common.config import load_config, override_keys
from common.errors import UserError
from common.folders import path_exists
from common.io import atomic_write, file_exists, json_text, link_loop_text, save_torch
from common.tables import fmt
from segmentation.colour_head import ColourHead, fit_colour_head, training_pixels
from segmentation.colour_prompt import mask_input_of
from segmentation.distributed import average_gradients, check_in_sync, leave
from segmentation.embeddings import ImageEmbedding, load_rgb
from segmentation.evaluate import evaluate_model
from segmentation.finetuned import apply_decoder, read_decoder, save_decoder, save_full
from segmentation.instances import Sample, instance_loss
from segmentation.predict import box_logits
from segmentation.run_folder import (
    RESUME_KEYS,
    discard_unstarted,
    drop_earlier,
    earlier_files_note,
    next_run_dir,
    plot_curves,
    prepare_run_dir,
    put_back_earlier,
    read_resume_state,
    refresh_training_mark,
    unmark_training,
    write_results,
)
from segmentation.run_setup import (
    Run,
    RunState,
    augment_transforms,
    build_instances,
    crop_rule,
    embed_splits,
    load_training_data,
    restore,
    seed_everything,
    set_up,
    tunes_prompt_encoder,
)
from segmentation.train_config import SCHEMA, load_train_config
from segmentation.views import View

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Set-up and run-folder names, importable from here as before the split into modules.
__all__ = [
    "RESUME_KEYS",
    "Run",
    "RunState",
    "augment_transforms",
    "build_instances",
    "crop_rule",
    "embed_splits",
    "load_training_data",
    "main",
    "next_run_dir",
    "plot_curves",
    "prepare_run_dir",
    "read_resume_state",
    "restore",
    "seed_everything",
    "set_up",
    "train",
    "write_results",
]


def validate(run: Run, colour_head: ColourHead | None = None) -> dict:
    """Val IoU, Dice and mask AP of the current decoder (the row's ``val_*`` columns)."""
    run.sam.mask_decoder.eval()
    with torch.inference_mode():
        embeddings, crops = run.val_inputs()
        val = evaluate_model(
            run.sam,
            run.val_split,
            embeddings,
            name="val",
            progress=False,
            crops=run.crops,
            view_embeddings=crops,
            colour_head=colour_head,
            colour_prompt=run.colour_prompt,
        )
    return {
        "val_iou": val.summary.iou.get("all", float("nan")),
        "val_dice": val.summary.dice.get("all", float("nan")),
        "val_mask_ap": val.summary.mask_ap.get("all", float("nan")),
    }


def save_best(
    run: Run, colour_head: ColourHead | None = None, *, epoch: int | None = None, val_iou: float | None = None
) -> None:
    """Writes the current decoder (and ``colour_head``) as ``decoder.pt`` with its epoch (rank 0 only)."""
    save_decoder(
        run.sam,
        run.folder / "decoder.pt",
        model=run.config["model"],
        prompt_encoder=tunes_prompt_encoder(run.config),
        image_encoder=run.encoder.state_dict(run.sam) if run.encoder else None,
        base_checkpoint_sha256=run.base_sha256,
        config=run.config,
        colour_head=colour_head,
        colour_prompt=run.colour_prompt,
        epoch=epoch,
        val_iou=val_iou,
    )


def prompt_encoder_state(run: Run) -> dict | None:
    """The prompt encoder's weights when the run changes them (:func:`tunes_prompt_encoder`), else None."""
    return run.sam.prompt_encoder.state_dict() if tunes_prompt_encoder(run.config) else None


def save_resume_state(run: Run, state: RunState) -> None:
    """Writes ``last.pt``: weights, optimiser, scheduler and :class:`RunState` (rank 0 only)."""
    save_torch(
        {
            "mask_decoder": run.sam.mask_decoder.state_dict(),
            "prompt_encoder": prompt_encoder_state(run),
            "image_encoder": run.encoder.state_dict(run.sam) if run.encoder else None,
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "epoch": state.next_epoch - 1,
            "best_iou": state.best_iou,
            "stale": state.stale,
            "step": state.step,
            "rows": state.rows,
            "split": run.split,  # a resume on another train/val split is refused (check_same_split)
            "masks": run.masks,  # and one on other annotations of its photos (check_same_masks)
            "classes": run.classes,  # or on classes renamed (check_same_classes)
        },
        run.folder / "last.pt",
    )


def record_zero_shot(run: Run, state: RunState) -> None:
    """Epoch 0 is the untuned model: the baseline every later epoch must beat to be kept.

    Its ``last.pt`` and ``results.csv`` are written at once: a run stopped during epoch 1 left
    ``decoder.pt`` (the untuned decoder) without a ``last.pt``, which ``--resume`` refused.
    """
    row = {
        "epoch": 0,
        "step": 0,
        "train_loss": float("nan"),
        **validate(run),
        "lr": float("nan"),  # no step taken yet (as train_loss)
        "seconds": 0.0,
    }
    state.rows.append(row)
    state.best_iou = row["val_iou"]
    if run.world.main:
        save_best(run, epoch=0, val_iou=state.best_iou)
        save_resume_state(run, state)
        write_results(state.rows, run.folder / "results.csv")
        drop_earlier(run.folder)  # this run's first save is whole: the earlier run's files, set aside, go
        print(
            f"epoch 0 (zero-shot): val IoU {state.best_iou:.4f}  mask AP {fmt(row['val_mask_ap'], 4)}",
            file=sys.stderr,
        )


def view_groups(run: Run, batch: np.ndarray) -> list[list[int]]:
    """Groups of the batch's instances that share one pass of the trained encoder top.

    By image view when the encoder trains (its top then runs once per view). Otherwise one group
    per instance: the default path keeps one backward per instance, so its gradients sum in the
    same order as before ``train_encoder`` existed and committed figures reproduce bit for bit.
    """
    if run.encoder is None:
        return [[int(index)] for index in batch]
    groups: dict[tuple, list[int]] = {}
    for index in batch:
        sample = run.instances.samples[index]
        groups.setdefault((sample.image_index, sample.view), []).append(int(index))
    return list(groups.values())


def train_step(run: Run, batch: np.ndarray, rng: np.random.Generator) -> float:
    """One optimiser step on a batch of instance indices (gradients averaged over processes).

    Returns:
        The batch's mean loss.
    """
    run.optimizer.zero_grad(set_to_none=True)
    batch_loss = 0.0
    for group in view_groups(run, batch):
        first = run.instances.samples[group[0]]
        cached = run.train_embeddings[(first.image_index, first.view)]
        embedding = run.embedding(cached)
        group_loss = torch.zeros((), device=run.device)
        for index in group:
            target = run.instances.target(index)
            low_res = None
            if run.config["loss"]["resolution"] == "low":
                low_res = run.instances.low_res(index, run.sam, cached, target)
            loss, _ = instance_loss(
                run.sam,
                embedding,
                target,
                config=run.config,
                prompt_config=run.prompt_config,
                rng=rng,
                device=run.device,
                low_res=low_res,
                mask_prompt=sample_mask_prompt(run, run.instances.samples[index], embedding),
            )
            group_loss = group_loss + loss
        (group_loss / len(batch)).backward()
        batch_loss += float(group_loss.detach()) / len(batch)
    average_gradients(run.parameters, run.world)
    run.optimizer.step()
    run.scheduler.step()
    return batch_loss


def sample_mask_prompt(run: Run, sample: Sample, embedding: ImageEmbedding) -> Callable | None:
    """What gives a sample's box prompt its colour map (``colour_prompt: true``), or None."""
    if run.colour_prompt is None:
        return None
    rgb = run.photo(sample.image_index, sample.view)
    return lambda box: run.colour_prompt.maps(run.sam, embedding, rgb, box[None])


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
        if world.main:  # a live run's marker never ages into a stale one (another machine's, after 24 h)
            refresh_training_mark(run.folder)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{used_lr(run, state.step):.2e}")
    return losses


def used_lr(run: Run, steps: int) -> float:
    """The main group's learning rate of the last of ``steps`` optimiser steps (NaN before the first).

    ``scheduler.get_last_lr()`` after ``scheduler.step()`` is the next step's rate: the epoch-0 row,
    before any step, read the first step's and every row the rate of a step its epoch did not take.
    ultralytics logs ``lr/pg0`` as its epoch's last batch used it, as this does.
    """
    if steps <= 0:
        return float("nan")
    return run.scheduler.base_lrs[0] * run.scheduler.lr_lambdas[0](steps - 1)


def finish_epoch(run: Run, state: RunState, row: dict) -> None:
    """Records an epoch's row; rank 0 keeps the best decoder and writes last.pt, results and curves."""
    state.rows.append(row)
    state.next_epoch = row["epoch"]
    improved = row["val_iou"] > state.best_iou
    state.best_iou, state.stale = (row["val_iou"], 0) if improved else (state.best_iou, state.stale + 1)
    if not run.world.main:
        return
    refresh_training_mark(run.folder)  # validation may have been long
    if improved:
        save_best(run, epoch=row["epoch"], val_iou=row["val_iou"])
    save_resume_state(run, state)
    write_results(state.rows, run.folder / "results.csv")
    plot_curves(state.rows, run.folder / "curves.png")
    print(
        f"epoch {row['epoch']}: loss {row['train_loss']:.4f}  val IoU {row['val_iou']:.4f}  "
        f"mask AP {fmt(row['val_mask_ap'], 4)}{'  (best)' if improved else ''}",
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
        "lr": used_lr(run, state.step) if losses else float("nan"),
        "seconds": round(time.perf_counter() - started, 2),
    }
    finish_epoch(run, state, row)


def train_pixels(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The colour head's features and labels: every in-box pixel of the train images, current decoder."""
    split = run.instances.split
    xs, ys = [], []
    with torch.inference_mode():
        for index, image in enumerate(split.images):
            cached = run.train_embeddings.get((index, View()))
            if cached is None or image.is_background:
                continue
            boxes, rgb, embedding = image.boxes(), load_rgb(image.path), run.embedding(cached)
            prompt = mask_input_of(run.colour_prompt, run.sam, embedding, rgb, boxes)
            logits, _ = box_logits(run.sam, embedding, boxes, mask_input=prompt)
            x, y = training_pixels(logits, rgb, boxes, image.union_mask())
            xs.append(x)
            ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def fit_head(run: Run) -> ColourHead | None:
    """Fits the colour head on the best decoder; returns it when it raises val IoU, else None.

    Writes ``colour_head.json`` (weights, val IoU without and with, kept or not) when it could be
    fit; train boxes without both defect and surface pixels leave nothing to fit (a note, no file).
    """
    try:
        head = fit_colour_head(*train_pixels(run), seed=run.config["seed"])
    except UserError as error:  # e.g. masks that fill their boxes: nothing to separate, the run stands
        print(f"colour head: not fit ({error})", file=sys.stderr)
        return None
    without, with_head = validate(run)["val_iou"], validate(run, head)["val_iou"]
    head = replace(head, val_iou=(without, with_head))
    kept = with_head > without
    report = {**head.to_dict(), "kept": kept}
    atomic_write(run.folder / "colour_head.json", json_text(report, indent=1) + "\n")
    verdict = "kept in decoder.pt" if kept else "not kept (no better on val)"
    print(f"colour head: val IoU {without:.4f} -> {with_head:.4f}, {verdict}", file=sys.stderr)
    return head if kept else None


#: The run's results the closing lines name, those that are there: a run resumed once all its epochs were
#: done, after a kill before the first ``curves.png`` was drawn, has none.
CLOSING_FILES = ("decoder.pt", "sam_finetuned.pth", "colour_head.json", "results.csv", "curves.png")


def finish(run: Run, state: RunState, *, hints: bool = True) -> None:
    """Checks the processes agree, then rank 0 writes the best decoder into ``sam_finetuned.pth``.

    With ``colour_head``, rank 0 then fits the head on the best decoder (:func:`fit_head`) and
    writes ``decoder.pt`` again with it when it is kept. It closes with the kept epoch, then with
    ``hints`` the files written, the run folder and the ``segmentation.evaluate`` command: a ``--folds``
    round, which that command evaluates itself, prints the kept epoch alone.
    """
    check_in_sync(run.parameters, run.world)
    if run.world.main:
        best, head = run.folder / "decoder.pt", None
        if best.is_file():
            data = read_decoder(best)
            apply_decoder(run.sam, data, source=best)
            save_full(run.sam, run.folder / "sam_finetuned.pth")
            orphan_note(best, data.get("epoch"), kept_epoch(state))
            head = fit_head(run) if run.config["colour_head"] else None
            if head is not None:
                save_best(run, head, epoch=data.get("epoch"), val_iou=data.get("val_iou"))
        if hints:
            written = [name for name in CLOSING_FILES if (run.folder / name).is_file()]
            print(f"{kept_summary(state, head)}; {', '.join(written) or 'nothing'} in")
            print(f"  {run.folder}")
            if best.is_file():
                print(f"evaluate with: {evaluate_command(run.config, best)}")
        else:
            print(kept_summary(state, head))
    leave(run.world)


def orphan_note(best: Path, recorded: int | None, kept: int) -> None:
    """A ``note:`` when ``decoder.pt`` holds another epoch than the kept one: a run stopped between
    writing it and ``last.pt``, resumed, whose rerun of that epoch did not beat the best it recorded.
    Files that record no epoch (written before) get none."""
    if recorded is not None and recorded != kept:
        print(
            f"note: {best} holds epoch {recorded}, written before the run stopped without its last.pt, "
            f"not epoch {kept} named below; sam_finetuned.pth is built from it",
            file=sys.stderr,
        )


def kept_epoch(state: RunState) -> int:
    """The first epoch with the best val IoU (a later one must beat it); 0: the untuned model."""
    return next((row["epoch"] for row in state.rows if row["val_iou"] == state.best_iou), 0)


def kept_summary(state: RunState, head: ColourHead | None) -> str:
    """Which epoch ``decoder.pt`` holds and its val IoU (with its colour head when one was kept).

    The kept epoch is the first with the best val IoU (a later one must beat it); epoch 0 is the untuned
    model.
    """
    epoch = kept_epoch(state)
    kept = f"epoch {epoch}" + (", the untuned model: no tuned epoch beat it" if epoch == 0 else "")
    if head is None:
        return f"best val IoU {state.best_iou:.4f} at {kept} (kept)"
    without, with_head = head.val_iou
    return f"best val IoU {with_head:.4f} at {kept} with its colour head ({without:.4f} without; both kept)"


def evaluate_command(config: dict, decoder: Path) -> str:
    """The ``segmentation.evaluate`` command scoring ``decoder`` on the run's data set (its test split)."""
    data = quote(str(config["data"]))
    command = f"python -m segmentation.evaluate --data {data} --checkpoint {quote(str(decoder))}"
    if config["checkpoint"]:  # decoder.pt records the base weights' hash: evaluation needs the same base
        command += f" --base-checkpoint {quote(str(config['checkpoint']))}"
    if config["crops"]["max_fraction"] > 0:  # scored as it was tuned
        command += f" --crop-fraction {config['crops']['max_fraction']:g}"
    if config["cache_dir"]:  # the run's embeddings are there: without it every photo is encoded again
        command += f" --cache-dir {quote(str(config['cache_dir']))}"
    return command


def train(
    config: dict,
    *,
    resume: Path | None = None,
    sam: Sam | None = None,
    resume_hint: bool = True,
    announce: bool = True,
) -> Path:
    """Runs a whole fine-tuning; returns the run folder.


    Args:
        config: a config of :data:`SCHEMA` (:func:`common.config.load_config`); checked again here.
        resume: a run folder to continue from its ``last.pt``.
        sam: an already built model to tune instead of loading ``config["model"]``
            with ``config["checkpoint"]`` (a custom architecture, or tests); its weights
            are then not tied to a base file (``decoder.pt`` records no base hash).
        resume_hint: print a single run's next commands: on Ctrl-C the ``--resume`` command that goes on
            from the last finished epoch, at the end the files written and the ``segmentation.evaluate``
            command (off inside ``--folds``, whose rounds are resumed whole and evaluated by it).
        announce: print the warning on grey train photos and the augmentation line (off inside
            ``--folds``, which says them once for all rounds).


    Raises:
        UserError: a bad config value, data set or resume state; raised before the run
            folder is created or changed.
    """
    run, state = set_up(config, resume=resume, sam=sam, announce=announce)
    try:
        if resume is None:
            record_zero_shot(run, state)
        else:
            print(resume_line(run.folder, state, config["epochs"], stopped=stopped(run, state)), flush=True)
        first = state.next_epoch
        for epoch in range(first, config["epochs"]):
            if stopped(run, state):
                if epoch > first and run.world.main:  # a resume that found it stopped has said so
                    print(early_stop_line(state, config, epoch), flush=True)
                break
            run_epoch(run, state, epoch)
        finish(run, state, hints=resume_hint)
    except BaseException as error:
        if run.world.main and (where := put_back_earlier(run.folder)):  # stopped before its first save
            print(earlier_files_note(run.folder, where), file=sys.stderr, flush=True)
        elif isinstance(error, KeyboardInterrupt):
            stopped_note(run, resume=resume, resume_hint=resume_hint)
        raise
    finally:
        if run.world.main:  # the folder is free for a --resume or an exist_ok run again
            unmark_training(run.folder)
    return run.folder


def stopped_note(run: Run, *, resume: Path | None, resume_hint: bool) -> None:
    """On a Ctrl-C (rank 0): says how to go on from the last finished epoch, or removes the folder of a run
    stopped before its epoch 0 was recorded (:func:`discard_unstarted`)."""
    if not run.world.main:
        return
    if resume_hint and (run.folder / "last.pt").is_file():
        command = f"python -m segmentation.train --resume {quote(str(run.folder))}"
        print(f"stopped; go on from the last finished epoch with: {command}", file=sys.stderr, flush=True)
    elif resume is None and not run.config["exist_ok"]:  # a folder it made for itself
        discard_unstarted(run.folder)


def stopped(run: Run, state: RunState) -> bool:
    """Whether training ends before another epoch: its steps are all made, or early stopping struck."""
    return state.step >= run.plan.total_steps or state.stale >= run.config["patience"]


def early_stop_line(state: RunState, config: dict, done: int) -> str:
    """Why a run ends after epoch ``done`` of fewer than ``config["epochs"]``: patience or ``max_steps``.

    The run used to end there without a word: ``epochs=20`` closed after epoch 19 and only
    ``results.csv`` told.
    """
    epochs = config["epochs"]
    if state.stale >= config["patience"]:
        patience = config["patience"]
        stale = f"{state.stale} epoch" + ("" if state.stale == 1 else "s")
        why = f"val IoU has not beaten {state.best_iou:.4f} for {stale} (patience={patience})"
    else:
        why = f"max_steps={config['max_steps']} reached (optimiser steps)"
    return f"stopped early after epoch {done} of {epochs}: {why}"


def resume_line(folder: Path, state: RunState, epochs: int, *, stopped: bool = False) -> str:
    """Where a resumed run goes on from: the epochs done, the best val IoU so far."""
    done = state.next_epoch
    if done >= epochs:
        left = f"all {epochs} epochs were done"
    elif stopped:
        left = "it had stopped (early stopping, or its last optimiser step), nothing left to train"
    else:
        left = f"epoch {done + 1} of {epochs} next"
    return f"resuming {folder} after epoch {done}: {left}; best val IoU so far {state.best_iou:.4f}"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=command_name("segmentation.train"),
        description="Fine-tune SAM's mask decoder on cached embeddings. Overrides: key=value (dots nest).",
    )
    parser.add_argument(
        "--config",
        type=user_path,
        help="YAML config, e.g. configs/segmentation/sam_decoder.yaml (without one: the built-in defaults, "
        "the same but for data)",
    )
    parser.add_argument(
        "--resume", type=user_path, help="run folder to continue from its last.pt and args.yaml"
    )
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. epochs=5 prompts.p_box=1.0")
    return parser


def load_run_config(args: argparse.Namespace) -> dict:
    """The checked config of a new run (``--config`` + overrides) or of a resumed one (its args.yaml)."""
    if args.resume is None:
        return load_train_config(args.config, args.overrides)
    if args.config is not None:
        raise UserError("--resume takes the run's own args.yaml: drop --config (overrides still apply)")
    if args.resume.is_file():  # its last.pt or decoder.pt: "nothing to resume in .../last.pt: no last.pt"
        folder = args.resume.parent
        hint = ", the one holding its last.pt"
        if (folder / "last.pt").is_file():
            hint = f": pass --resume {folder}"
        raise UserError(f"--resume takes a run folder, not the file {args.resume}{hint}")
    if not path_exists(args.resume):  # "nothing to resume in runs/sam/tpyo: no last.pt" hid the typo
        loop = link_loop_text(args.resume, given=f"--resume {args.resume}")
        raise UserError(loop or f"--resume {args.resume} does not exist: pass the run folder holding last.pt")
    if not file_exists(args.resume / "last.pt"):
        raise UserError(f"nothing to resume in {args.resume}: no last.pt")
    refuse_folder_overrides(args.resume, args.overrides)
    config = load_train_config(args.resume / "args.yaml", args.overrides)
    saved = load_config(SCHEMA, args.resume / "args.yaml", note_empty=False)  # noted once, just above
    refuse_set_up_changes(args.resume, saved, config)
    given, data = "data" in override_keys(args.overrides), config["data"]
    if given and data and not path_exists(data):  # not args.yaml's, as set_up says
        resumed = f"given with --resume {args.resume}"
        loop = link_loop_text(data, given=f"data={data} ({resumed})")  # which exists() takes for nothing
        raise UserError(loop or f"data={data} does not exist ({resumed})")
    return config


#: Keys that choose a new run's folder; a resumed run stays in its own.
RUN_FOLDER_KEYS = ("out", "name", "exist_ok")


def refuse_folder_overrides(resume: Path, overrides: list[str]) -> None:
    """Refuses ``out=``, ``name=`` or ``exist_ok=`` with ``--resume``.

    They were accepted and ignored (the run went on in ``resume``), and its ``args.yaml`` then recorded
    them: a run folder that no longer said where it was made.
    """
    for override in overrides:
        key = next(iter(override_keys([override])))
        if key in RUN_FOLDER_KEYS:
            raise UserError(
                f"--resume {resume} goes on in that folder: drop {override} "
                f"({', '.join(RUN_FOLDER_KEYS)} choose a new run's folder)"
            )


#: Keys that decide which weights train: last.pt only fits a run with the values it was started with.
SET_UP_KEYS = ("model", "train_prompt_encoder", "train_transformer", "train_encoder", "colour_prompt")


def refuse_set_up_changes(resume: Path, saved: dict, config: dict) -> None:
    """Refuses an override of a :data:`SET_UP_KEYS` key with ``--resume``, before any weights are loaded.

    ``model=vit_h`` was found not to fit ``last.pt`` only after the base weights were read (a 2.5 GB
    download when not cached), or failed on that download with no word of the resume.
    """

    def typed(value) -> str:  # as in args.yaml and on the command line
        return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    for key in SET_UP_KEYS:
        if config[key] != saved[key]:
            raise UserError(
                f"--resume {resume} goes on with the {key} it was started with ({typed(saved[key])}, its "
                f"args.yaml): drop {key}={typed(config[key])}, or start a new run without --resume"
            )


def main(argv: list[str] | None = None) -> int:
    def work() -> None:
        # intermixed: overrides on both sides of --config were "unrecognized arguments"
        args = build_parser().parse_intermixed_args(argv)
        train(load_run_config(args), resume=args.resume)

    return exit_code(work)


if __name__ == "__main__":
    raise SystemExit(main())
