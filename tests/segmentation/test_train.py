"""Tests for segmentation.train: the config schema, the loss goes down, runs write their files, resume,
early stop, torchrun."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
import yaml
from segment_anything import SamPredictor

from common.config import load_config, read_yaml, save_config
from common.errors import UserError
from common.io import sha256_file
from common.trained_images import read_trained_images
from segmentation import colour_head
from segmentation import train as train_module
from segmentation.distributed import Dist
from segmentation.embeddings import embed_images
from segmentation.finetuned import apply_decoder, load_colour_head
from segmentation.instances import instance_loss, trainable_parameters
from segmentation.prompts import PromptConfig, prompt_schema
from segmentation.run_folder import RESUME_KEYS, next_run_dir, run_name
from segmentation.schedule import StepPlan, build_optimizer, lr_factor, plan_steps
from segmentation.train import build_parser, main, train
from segmentation.train_config import DEFAULTS, SCHEMA, data_categories
from tests.conftest import assert_link_loop_line, interrupting, without_home

REPO = Path(__file__).resolve().parents[2]


def _config(data: Path, tmp_path: Path, *overrides: str) -> dict:
    return load_config(
        DEFAULTS,
        None,
        [
            f"data={data}",
            f"out={tmp_path / 'runs'}",
            f"cache_dir={tmp_path / 'cache'}",
            "device=cpu",
            "progress=false",
            "batch_size=4",
            "epochs=2",
            "lr=1e-3",
            *overrides,
        ],
    )


def _rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_lr_factor_warms_up_then_decays_to_the_floor():
    values = [lr_factor(step, warmup=4, total=20, min_ratio=0.1) for step in range(21)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(values[4:], values[5:], strict=False))
    assert values[-1] == pytest.approx(0.1)


def test_lr_factor_stays_at_the_floor_past_the_last_step():
    assert lr_factor(25, warmup=4, total=20, min_ratio=0.1) == pytest.approx(0.1)


def test_step_plan_rounds_partial_batches_up_and_shares_the_instances_between_processes():
    config = {**DEFAULTS, "batch_size": 4, "epochs": 10, "max_steps": None, "warmup_steps": 20}
    # 11 instances on 2 processes: 6 each (one wrapped around), 2 steps of up to 4 per epoch
    assert plan_steps(11, config, Dist(0, 2)) == StepPlan(6, 2, 20, 4)  # warm-up capped at a fifth
    assert plan_steps(11, {**config, "max_steps": 100}, Dist(0, 2)).total_steps == 20
    assert plan_steps(11, {**config, "max_steps": 7}, Dist(0, 2)) == StepPlan(6, 2, 7, 1)
    assert plan_steps(11, {**config, "max_steps": 3}, Dist(0, 2)).warmup == 1


def test_optimizer_takes_the_configured_weight_decay():
    parameter = torch.nn.Parameter(torch.zeros(3))
    config = {**DEFAULTS, "lr": 1e-3, "weight_decay": 0.05}
    optimizer, _ = build_optimizer([parameter], config, StepPlan(4, 1, 10, 2))
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [(1e-3 * 0.5, 0.05)]


def test_taken_run_folders_are_numbered_from_two(tmp_path):
    assert next_run_dir(tmp_path, "nut") == tmp_path / "nut"
    (tmp_path / "nut").mkdir()
    assert next_run_dir(tmp_path, "nut") == tmp_path / "nut2"
    (tmp_path / "nut2").mkdir()
    assert next_run_dir(tmp_path, "nut") == tmp_path / "nut3"


def test_run_name_defaults_to_the_model_and_the_data_folder():
    config = {"name": None, "model": "mobile_sam", "data": "runs/demo/synthetic_nut"}
    assert run_name(config) == "mobile_sam_synthetic_nut"
    assert run_name({**config, "name": "mine"}) == "mine"


def test_data_categories_come_from_every_split(tmp_path):
    assert data_categories(tmp_path) == []
    splits = {"version": 1, "train": ["nut/test/crack/000"], "val": ["screw/test/thread/001"]}
    (tmp_path / "splits.json").write_text(json.dumps({**splits, "test": ["cable/test/cut/002"]}))
    assert data_categories(tmp_path) == ["cable", "nut", "screw"]


def test_only_the_decoder_trains(tiny_sam):
    parameters = trainable_parameters(tiny_sam, prompt_encoder=False)
    assert {id(p) for p in parameters} == {id(p) for p in tiny_sam.mask_decoder.parameters()}
    assert not any(p.requires_grad for p in tiny_sam.image_encoder.parameters())
    assert not any(p.requires_grad for p in tiny_sam.prompt_encoder.parameters())
    with_prompt = trainable_parameters(tiny_sam, prompt_encoder=True)
    assert len(with_prompt) == len(parameters) + len(list(tiny_sam.prompt_encoder.parameters()))


def test_loss_decreases_on_one_image(tiny_sam):
    image = np.full((96, 160, 3), 90, np.uint8)
    target = np.zeros((96, 160), bool)
    target[30:70, 50:120] = True
    image[target] = (200, 60, 40)
    (embedding,) = embed_images(tiny_sam, [image])
    parameters = trainable_parameters(tiny_sam, prompt_encoder=False)
    optimizer = torch.optim.AdamW(parameters, lr=1e-3)
    config = {**DEFAULTS, "corrective_rounds": 1}
    prompts = PromptConfig(box_jitter=0.0, p_box=1.0)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss, _ = instance_loss(
            tiny_sam,
            embedding,
            target,
            config=config,
            prompt_config=prompts,
            rng=np.random.default_rng(0),
            device=torch.device("cpu"),
        )
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5])


def test_run_writes_its_files_and_the_full_checkpoint_loads_in_sam_predictor(
    tiny_dataset, tiny_sam, tiny_sam_builder, tmp_path
):
    run = train(_config(tiny_dataset, tmp_path, "name=tiny"), sam=tiny_sam)
    assert run == tmp_path / "runs" / "tiny"
    for name in ("args.yaml", "results.csv", "curves.png", "last.pt", "decoder.pt", "sam_finetuned.pth"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*")), "partial files left behind"
    saved = yaml.safe_load((run / "args.yaml").read_text())
    assert saved["epochs"] == 2 and saved["lr"] == 1e-3 and saved["data"] == str(tiny_dataset)
    train_photos = sorted(p.name for p in (tiny_dataset / "images" / "train").iterdir())
    assert sorted(read_trained_images(run).values()) == train_photos  # what evaluations are checked against
    rows = _rows(run / "results.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert all(0.0 <= float(r["val_iou"]) <= 1.0 for r in rows)
    assert np.isnan(float(rows[0]["train_loss"])) and float(rows[1]["train_loss"]) > 0

    # The full state dict goes through stock segment_anything loading and SamPredictor.
    fresh = tiny_sam_builder(seed=123)
    fresh.load_state_dict(torch.load(run / "sam_finetuned.pth", weights_only=True))
    best = max(rows, key=lambda r: float(r["val_iou"]))
    decoder = torch.load(run / "decoder.pt", weights_only=True)["mask_decoder"]
    for key, value in fresh.mask_decoder.state_dict().items():
        assert torch.equal(value, decoder[key]), key
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    ours, theirs = SamPredictor(tiny_sam_builder()), SamPredictor(fresh)
    ours.model.load_state_dict(fresh.state_dict())
    box = np.array([10, 12, 40, 50])
    for predictor in (ours, theirs):
        predictor.set_image(image)
    a, b = ours.predict(box=box), theirs.predict(box=box)
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])
    assert float(best["val_iou"]) >= float(rows[0]["val_iou"])


def test_resume_after_interruption_matches_an_uninterrupted_run(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    straight = train(
        _config(tiny_dataset, tmp_path, "name=straight", "corrective_rounds=0"), sam=tiny_sam_builder()
    )

    calls = {"n": 0}
    real_plot = train_module.plot_curves

    def plot_then_die(rows, path):
        real_plot(rows, path)
        calls["n"] += 1
        if calls["n"] == 1:  # after epoch 1's last.pt is written
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "plot_curves", plot_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_dataset, tmp_path, "name=cut", "corrective_rounds=0"), sam=tiny_sam_builder())
    cut = tmp_path / "runs" / "cut"
    assert [int(r["epoch"]) for r in _rows(cut / "results.csv")] == [0, 1]
    config = load_config(DEFAULTS, cut / "args.yaml")
    capsys.readouterr()
    train(config, resume=cut, sam=tiny_sam_builder())
    best = max(float(row["val_iou"]) for row in _rows(straight / "results.csv")[:2])
    assert (
        f"resuming {cut} after epoch 1: epoch 2 of {config['epochs']} next; best val IoU so far {best:.4f}"
        in (capsys.readouterr().out)
    )

    a, b = _rows(straight / "results.csv"), _rows(cut / "results.csv")
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for row_a, row_b in zip(a, b, strict=True):
        assert float(row_a["train_loss"] or "nan") == pytest.approx(
            float(row_b["train_loss"] or "nan"), nan_ok=True
        )
    final_a = torch.load(straight / "last.pt", weights_only=False)["mask_decoder"]
    final_b = torch.load(cut / "last.pt", weights_only=False)["mask_decoder"]
    for key in final_a:
        torch.testing.assert_close(final_a[key], final_b[key])


def test_a_decoder_pt_left_by_a_stop_before_last_pt_that_the_resume_does_not_replace_gets_a_note(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # epoch 1 improves and writes decoder.pt, then the run stops before its last.pt; the resumed
    # rerun of epoch 1 (and epoch 2) do not beat epoch 0, so decoder.pt keeps the orphan epoch 1
    scores = iter([0.5, 0.9, 0.1, 0.2])
    monkeypatch.setattr(
        train_module,
        "validate",
        lambda run, head=None: {"val_iou": next(scores), "val_dice": 0.0, "val_mask_ap": 0.0},
    )
    real_save = train_module.save_resume_state
    calls = {"n": 0}

    def save_then_die(run, state):
        calls["n"] += 1
        if calls["n"] == 2:  # epoch 1's last.pt: its decoder.pt is already written
            raise KeyboardInterrupt
        real_save(run, state)

    monkeypatch.setattr(train_module, "save_resume_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_dataset, tmp_path, "name=cut", "corrective_rounds=0"), sam=tiny_sam_builder())
    cut = tmp_path / "runs" / "cut"
    assert torch.load(cut / "decoder.pt", weights_only=False)["epoch"] == 1
    capsys.readouterr()
    train(load_config(DEFAULTS, cut / "args.yaml"), resume=cut, sam=tiny_sam_builder())
    out, err = capsys.readouterr()
    assert "best val IoU 0.5000 at epoch 0" in out
    assert (
        f"note: {cut / 'decoder.pt'} holds epoch 1, written before the run stopped without its last.pt, "
        "not epoch 0 named below; sam_finetuned.pth is built from it" in err
    )


def test_a_decoder_pt_that_records_no_epoch_is_still_read_when_a_done_run_is_resumed(
    tiny_dataset, tiny_sam_builder, tmp_path, capsys
):
    run = train(_config(tiny_dataset, tmp_path, "name=old", "epochs=1"), sam=tiny_sam_builder())
    data = torch.load(run / "decoder.pt", weights_only=False)
    assert data["epoch"] in (0, 1) and data["val_iou"] is not None
    del data["epoch"], data["val_iou"]  # a decoder.pt written before they were recorded
    torch.save(data, run / "decoder.pt")
    capsys.readouterr()
    train(load_config(DEFAULTS, run / "args.yaml"), resume=run, sam=tiny_sam_builder())
    out, err = capsys.readouterr()
    assert "best val IoU" in out and "note:" not in err
    assert (run / "sam_finetuned.pth").is_file()


def _train_stopped_after_epoch_1(config, sam, monkeypatch) -> None:
    """Trains ``config`` with a Ctrl-C once epoch 1's last.pt is written (as a user stopping it)."""
    real_plot = train_module.plot_curves

    def plot_then_die(rows, path):
        real_plot(rows, path)
        raise KeyboardInterrupt  # after epoch 1's last.pt is written

    monkeypatch.setattr(train_module, "plot_curves", plot_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, sam=sam)
    monkeypatch.setattr(train_module, "plot_curves", real_plot)


def test_results_log_the_rate_each_epochs_last_step_used(tiny_dataset, tiny_sam, tmp_path, monkeypatch):
    # the rows read scheduler.get_last_lr() after scheduler.step(): the next step's rate, and epoch 0, before
    # any step, the first step's (5e-05 at lr 1e-4 with warm-up)
    used = []
    real_step = train_module.train_step

    def spy(run, batch, rng):
        used.append(run.optimizer.param_groups[0]["lr"])
        return real_step(run, batch, rng)

    monkeypatch.setattr(train_module, "train_step", spy)
    run = train(
        _config(tiny_dataset, tmp_path, "corrective_rounds=0", "epochs=3", "warmup_steps=4"), sam=tiny_sam
    )
    rows = _rows(run / "results.csv")
    per_epoch = len(used) // 3
    assert len(rows) == 4 and per_epoch * 3 == len(used) and len(set(used)) > 3
    assert rows[0]["lr"] == "nan"  # the untuned model: no step taken
    for row in rows[1:]:
        assert float(row["lr"]) == pytest.approx(used[int(row["epoch"]) * per_epoch - 1], rel=1e-6)


def test_resume_trains_at_the_overridden_rates_that_args_yaml_records(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # the saved optimiser and scheduler put back the old lr and weight decay: --resume run lr=... went on
    # at 1e-3 while args.yaml said 1e-2
    base = ("corrective_rounds=0", "epochs=3", "warmup_steps=0")
    straight = train(_config(tiny_dataset, tmp_path, "name=straight", *base), sam=tiny_sam_builder())
    _train_stopped_after_epoch_1(
        _config(tiny_dataset, tmp_path, "name=cut", *base), tiny_sam_builder(), monkeypatch
    )
    cut = tmp_path / "runs" / "cut"
    config = load_config(DEFAULTS, cut / "args.yaml", ["lr=1e-2", "weight_decay=0.5"])
    seen = []
    real_step = train_module.train_step

    def spy(run, batch, rng):
        seen.append([(group["lr"], group["weight_decay"]) for group in run.optimizer.param_groups])
        return real_step(run, batch, rng)

    monkeypatch.setattr(train_module, "train_step", spy)
    train(config, resume=cut, sam=tiny_sam_builder())
    assert read_yaml(cut / "args.yaml")["lr"] == 1e-2
    a, b = _rows(straight / "results.csv"), _rows(cut / "results.csv")
    assert float(b[-1]["lr"]) == pytest.approx(10 * float(a[-1]["lr"]))
    assert seen and all(decay == 0.5 for step in seen for _, decay in step)


def test_early_stopping_when_val_iou_stops_improving(tiny_dataset, tiny_sam, tmp_path):
    # lr = 1e-30 (0 is refused): updates below float32's resolution leave every weight as it was, so
    # epoch 1 does not beat epoch 0 and patience 1 ends the run.
    run = train(_config(tiny_dataset, tmp_path, "epochs=5", "patience=1", "lr=1e-30"), sam=tiny_sam)
    assert [int(r["epoch"]) for r in _rows(run / "results.csv")] == [0, 1]


def test_an_early_stop_says_so_before_the_closing_lines(tiny_dataset, tiny_sam, tmp_path, capsys):
    # epochs=5 ended after epoch 1 without a word: only results.csv told that 4 epochs never ran
    train(_config(tiny_dataset, tmp_path, "epochs=5", "patience=1", "lr=1e-30"), sam=tiny_sam)
    out = capsys.readouterr().out
    assert re.search(
        r"^stopped early after epoch 1 of 5: val IoU has not beaten [0-9.]+ for 1 epoch \(patience=1\)$",
        out,
        re.M,
    )


def test_an_undefined_val_mask_ap_prints_as_a_dash(tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys):
    # a mask AP COCOeval leaves undefined (NaN: no ground truth it scores) printed 'mask AP nan' per epoch,
    # where table.md shows '-'
    real_validate = train_module.validate
    monkeypatch.setattr(
        train_module, "validate", lambda *args: {**real_validate(*args), "val_mask_ap": float("nan")}
    )
    train(_config(tiny_dataset, tmp_path, "epochs=1"), sam=tiny_sam)
    err = capsys.readouterr().err
    assert re.search(r"^epoch 0 \(zero-shot\): val IoU [0-9.]+  mask AP -$", err, re.M)
    assert re.search(r"^epoch 1: loss [0-9.]+  val IoU [0-9.]+  mask AP -", err, re.M)
    assert "nan" not in err


def test_a_run_stopped_by_max_steps_says_so(tiny_dataset, tiny_sam, tmp_path, capsys):
    train(_config(tiny_dataset, tmp_path, "epochs=5", "max_steps=1"), sam=tiny_sam)
    out = capsys.readouterr().out
    assert re.search(
        r"^stopped early after epoch 1 of 5: max_steps=1 reached \(optimiser steps\)$", out, re.M
    )


def test_a_run_that_trains_every_epoch_prints_no_early_stop(tiny_dataset, tiny_sam, tmp_path, capsys):
    train(_config(tiny_dataset, tmp_path, "epochs=1"), sam=tiny_sam)
    assert "stopped early" not in capsys.readouterr().out


def test_the_closing_lines_name_the_kept_epoch_and_the_evaluate_command(
    tiny_dataset, tiny_sam, tmp_path, capsys
):
    # they said 'best val IoU X' without the epoch, and gave no next step
    run = train(_config(tiny_dataset, tmp_path, "epochs=5", "patience=1", "lr=1e-30"), sam=tiny_sam)
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"best val IoU [0-9.]+ at epoch 0, the untuned model: no tuned epoch beat it \(kept\); "
        r"decoder.pt, sam_finetuned.pth, results.csv, curves.png in",
        lines[-3],
    )
    command = (
        f"python -m segmentation.evaluate --data {tiny_dataset} --checkpoint {run / 'decoder.pt'} "
        f"--cache-dir {tmp_path / 'cache'}"
    )
    assert lines[-2:] == [f"  {run}", f"evaluate with: {command}"]


def test_a_ctrl_c_before_epoch_0_is_recorded_removes_the_run_folder_it_made(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # it left a folder of args.yaml alone, read as a run with nothing to --resume, and the same command
    # again trained into <name>2
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "record_zero_shot", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_dataset, tmp_path, "name=cut"), sam=tiny_sam_builder())
    run = tmp_path / "runs" / "cut"
    err = capsys.readouterr().err
    assert err.endswith(f"stopped before epoch 0 was recorded: removed its run folder {run}\n")
    assert sorted((tmp_path / "runs").iterdir()) == []
    (run / "notes.txt").parent.mkdir(parents=True)
    (run / "notes.txt").write_text("the user's")  # exist_ok reuses a folder: never removed
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_dataset, tmp_path, "name=cut", "exist_ok=true"), sam=tiny_sam_builder())
    assert (run / "notes.txt").read_text() == "the user's" and (run / "args.yaml").is_file()


def test_the_closing_lines_name_only_the_files_that_are_there(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # a Ctrl-C while epoch 1's curves were drawn, then a resume with all its epochs done: the closing
    # lines named curves.png, which was never written
    def interrupted(rows, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "plot_curves", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(
            _config(tiny_dataset, tmp_path, "name=cut", "epochs=1", "corrective_rounds=0"),
            sam=tiny_sam_builder(),
        )
    monkeypatch.undo()
    run = tmp_path / "runs" / "cut"
    capsys.readouterr()
    train(load_config(DEFAULTS, run / "args.yaml"), resume=run, sam=tiny_sam_builder())
    lines = capsys.readouterr().out.splitlines()
    assert not (run / "curves.png").exists()
    assert lines[-3].endswith(" (kept); decoder.pt, sam_finetuned.pth, results.csv in")
    assert lines[-1].startswith(f"evaluate with: python -m segmentation.evaluate --data {tiny_dataset} ")


def test_the_kept_epoch_is_the_first_with_the_best_val_iou():
    rows = [{"epoch": 0, "val_iou": 0.5}, {"epoch": 1, "val_iou": 0.7}, {"epoch": 2, "val_iou": 0.7}]
    state = train_module.RunState(next_epoch=2, best_iou=0.7, rows=rows)
    assert train_module.kept_summary(state, None) == "best val IoU 0.7000 at epoch 1 (kept)"
    head = colour_head.ColourHead((1.0, 2.0, 3.0), colour_head.MIN_BOX_FRACTION, (0.7, 0.75))
    assert train_module.kept_summary(state, head) == (
        "best val IoU 0.7500 at epoch 1 with its colour head (0.7000 without; both kept)"
    )


def test_the_evaluate_command_repeats_the_base_weights_and_crops():
    config = {**DEFAULTS, "data": "my data", "checkpoint": "base.pt", "crops": {"max_fraction": 0.125}}
    assert train_module.evaluate_command(config, Path("runs/sam/a/decoder.pt")) == (
        "python -m segmentation.evaluate --data 'my data' --checkpoint runs/sam/a/decoder.pt "
        "--base-checkpoint base.pt --crop-fraction 0.125"
    )


def test_the_evaluate_command_repeats_the_runs_embedding_cache():
    # it left cache_dir out: the printed command encoded every photo again into the default cache
    config = {**DEFAULTS, "data": "d", "cache_dir": "/tmp/my cache"}
    assert train_module.evaluate_command(config, Path("runs/sam/a/decoder.pt")) == (
        "python -m segmentation.evaluate --data d --checkpoint runs/sam/a/decoder.pt "
        "--cache-dir '/tmp/my cache'"
    )


def test_exist_ok_with_the_data_set_as_the_run_folder_is_refused(tiny_dataset, tiny_sam, tmp_path):
    # exist_ok reused out/name even when that was the data set: args.yaml, last.pt, ... went into it
    before = sorted(path.name for path in tiny_dataset.iterdir())
    overrides = [f"out={tiny_dataset.parent}", f"name={tiny_dataset.name}", "exist_ok=true"]
    with pytest.raises(UserError, match=r"inside the input tree .*; choose another name= \(exist_ok"):
        train(_config(tiny_dataset, tmp_path, *overrides), sam=tiny_sam)
    assert sorted(path.name for path in tiny_dataset.iterdir()) == before


def test_cli_errors_are_one_line(tiny_dataset, tmp_path, capsys):
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read config" in capsys.readouterr().err
    assert main([f"data={tiny_dataset}", "epoch=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'epoch'" in err and "Traceback" not in err
    assert main(["--resume", str(tmp_path)]) == 2
    assert "no last.pt" in capsys.readouterr().err
    assert main(["epochs=1"]) == 2
    assert "no data set" in capsys.readouterr().err
    assert main([f"data={tmp_path}", "epochs=1"]) == 2
    assert "no COCO annotations" in capsys.readouterr().err
    # runs inside the data set were in the way of its re-conversion with --overwrite
    assert main([f"data={tiny_dataset}", f"out={tiny_dataset / 'runs'}", "epochs=1"]) == 2
    err = capsys.readouterr().err
    assert f"is inside the input tree {tiny_dataset.resolve()}; choose another out=" in err
    assert err.count("\n") == 1 and not (tiny_dataset / "runs").exists()


@pytest.mark.parametrize("key", ["out", "data"])
def test_an_out_or_data_whose_path_is_not_utf8_is_one_line(
    tiny_dataset, tiny_sam, tmp_path, not_utf8_folder, monkeypatch, capsys, key
):
    # a Latin-1 name from an old Windows share, which args.yaml records: both stopped with a
    # UnicodeEncodeError traceback
    from segmentation import run_setup

    monkeypatch.setattr(run_setup, "load_model", lambda config, sam, device: (tiny_sam, None))
    data = shutil.copytree(tiny_dataset, not_utf8_folder / "data") if key == "data" else tiny_dataset
    out = not_utf8_folder / "runs" if key == "out" else tmp_path / "runs"
    argv = [f"data={data}", f"out={out}", f"cache_dir={tmp_path / 'cache'}", "device=cpu", "progress=false"]
    assert main([*argv, "epochs=1", "max_steps=1"]) == 2
    flag = "config key 'data'" if key == "data" else "out"
    assert capsys.readouterr().err == (
        f"error: {flag} has a name that is not UTF-8, b'bad\\xff' (in {tmp_path}): rename it, or pass "
        "another folder (the commands' files record the path, and JSON and YAML readers refuse such names)\n"
    )
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_data_may_name_the_converters_data_yaml(tiny_dataset, tiny_sam, tmp_path):
    # data=<out>/data.yaml used to say '--data ... is a file' although the user typed data=
    run = train(_config(tiny_dataset / "data.yaml", tmp_path, "epochs=1"), sam=tiny_sam)
    assert run.name == f"vit_t_{tiny_dataset.name}"
    assert yaml.safe_load((run / "args.yaml").read_text())["data"] == str(tiny_dataset)


def test_args_yaml_records_out_as_its_other_paths(tiny_dataset, tiny_sam, tmp_path, monkeypatch):
    # out= was recorded as typed (sub/../runs) beside an absolute data and cache_dir
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    run = train(_config(tiny_dataset, tmp_path, "epochs=1", "out=sub/../runs", "name=r"), sam=tiny_sam)
    assert run == tmp_path / "runs" / "r"
    assert yaml.safe_load((run / "args.yaml").read_text())["out"] == str(tmp_path / "runs")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{tmp}/notes.txt", "data={tmp}/notes.txt is a file: pass the data set folder {tmp}"),
        ("{tmp}/nowhere", "data={tmp}/nowhere does not exist"),
        (
            "{tmp}/config.yaml",
            "data={tmp}/config.yaml is a YAML file, not a data set folder the converters wrote (or the "
            "data.yaml in one)",
        ),
        (  # it was read as its folder, then told to convert into that folder with --overwrite
            "{tmp}/yolo/data.yaml",
            "data={tmp}/yolo/data.yaml has no splits.json beside it: not a data set the converters wrote; "
            "pass a folder written by converters.mvtec2yolo / mvtec2coco",
        ),
    ],
    ids=["a file", "nothing", "another YAML file", "a data.yaml of no converted data set"],
)
def test_a_data_key_that_is_no_data_set_is_named_as_typed(tiny_sam, tmp_path, data, message):
    (tmp_path / "notes.txt").write_text("not a data set")
    (tmp_path / "config.yaml").write_text("epochs: 1\n")
    (tmp_path / "yolo").mkdir()
    (tmp_path / "yolo" / "data.yaml").write_text("path: .\nnames: [a]\n")  # written by hand
    paths = {"tmp": tmp_path}
    with pytest.raises(UserError, match="^" + re.escape(message.format(**paths)) + "$"):
        train(_config(Path(data.format(**paths)), tmp_path), sam=tiny_sam)
    assert not (tmp_path / "runs").exists()


_TORCHRUN_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from conftest import build_tiny_sam
from common.config import load_config
from segmentation.train import train
from segmentation.train_config import DEFAULTS

config = load_config(DEFAULTS, None, {overrides!r})
train(config, sam=build_tiny_sam())
"""


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tiny_dataset, tmp_path):
    overrides = [
        f"data={tiny_dataset}",
        f"out={tmp_path / 'runs'}",
        f"cache_dir={tmp_path / 'cache'}",
        "name=ddp",
        "device=cpu",
        "progress=false",
        "epochs=1",
        "batch_size=2",
    ]
    script = tmp_path / "run_ddp.py"
    script.write_text(
        textwrap.dedent(_TORCHRUN_SCRIPT.format(tests=str(Path(__file__).parent), overrides=overrides))
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "ddp"
    assert not (tmp_path / "runs" / "ddp2").exists(), "ranks must agree on one run folder"
    assert (run / "decoder.pt").is_file() and (run / "sam_finetuned.pth").is_file()
    assert [int(r["epoch"]) for r in _rows(run / "results.csv")] == [0, 1]


def test_box_prompts_train_the_single_mask_output_that_evaluation_reads(tiny_sam):
    target = np.zeros((64, 64), bool)
    target[20:40, 10:50] = True
    (embedding,) = embed_images(tiny_sam, [np.full((64, 64, 3), 100, np.uint8)])
    trainable_parameters(tiny_sam, prompt_encoder=False)
    loss, _ = instance_loss(
        tiny_sam,
        embedding,
        target,
        config={**DEFAULTS, "corrective_rounds": 0},
        prompt_config=PromptConfig(p_box=1.0),
        rng=np.random.default_rng(0),
        device=torch.device("cpu"),
    )
    loss.backward()
    heads = tiny_sam.mask_decoder.output_hypernetworks_mlps
    assert heads[0].layers[0].weight.grad.abs().sum() > 0  # multimask_output=False reads head 0
    assert all(h.layers[0].weight.grad is None or h.layers[0].weight.grad.abs().sum() == 0 for h in heads[1:])


def test_heads_only_trains_the_output_heads_and_skips_the_transformer_backward(tiny_sam):
    decoder = tiny_sam.mask_decoder
    parameters = trainable_parameters(tiny_sam, prompt_encoder=False, transformer=False)
    heads = [decoder.output_upscaling, decoder.output_hypernetworks_mlps, decoder.iou_prediction_head]
    assert {id(p) for p in parameters} == {id(p) for head in heads for p in head.parameters()}
    assert not any(p.requires_grad for p in decoder.transformer.parameters())
    assert not decoder.mask_tokens.weight.requires_grad and not decoder.iou_token.weight.requires_grad
    target = np.zeros((64, 64), bool)
    target[20:40, 10:50] = True
    (embedding,) = embed_images(tiny_sam, [np.full((64, 64, 3), 100, np.uint8)])
    loss, _ = instance_loss(
        tiny_sam,
        embedding,
        target,
        config=DEFAULTS,
        prompt_config=PromptConfig(p_box=1.0),
        rng=np.random.default_rng(0),
        device=torch.device("cpu"),
    )
    loss.backward()
    assert all(p.grad is None for p in decoder.transformer.parameters())
    assert decoder.output_upscaling[0].weight.grad.abs().sum() > 0
    assert decoder.iou_prediction_head.layers[0].weight.grad.abs().sum() > 0


def test_new_defaults_are_the_cheap_recipe():
    # Measured in bench/results/sam_step_cost.md and sam_quality_heads.md (issue #12).
    assert DEFAULTS["train_transformer"] is False and DEFAULTS["loss"]["resolution"] == "low"
    assert DEFAULTS["multimask"] is False and DEFAULTS["corrective_rounds"] == 0
    assert DEFAULTS["prompts"]["p_box"] == 1.0


# --- the config schema: every key checked before anything is written


def test_defaults_are_the_schema_and_the_shipped_config_round_trips(tmp_path):
    assert DEFAULTS == SCHEMA.defaults()
    path = REPO / "configs" / "segmentation" / "sam_decoder.yaml"
    written = read_yaml(path)
    assert set(written) == set(SCHEMA), "the shipped YAML lists every key"
    assert set(written["prompts"]) == set(SCHEMA["prompts"]) and set(written["loss"]) == set(SCHEMA["loss"])
    shipped = load_config(SCHEMA, path)
    assert shipped == {**DEFAULTS, "data": "runs/demo/synthetic_nut"}
    save_config({**shipped, "out": Path("runs/x")}, tmp_path / "args.yaml")
    assert load_config(SCHEMA, tmp_path / "args.yaml") == {**shipped, "out": "runs/x"}
    assert yaml.safe_load((tmp_path / "args.yaml").read_text())["prompts"] == shipped["prompts"]


def test_the_config_help_names_the_shipped_file_as_an_example_not_a_default():
    # it read "YAML config (configs/segmentation/sam_decoder.yaml)", as a default; without --config the
    # built-in defaults are used, data unset (the test above: the same but for data)
    (config,) = [action for action in build_parser()._actions if "--config" in action.option_strings]
    assert config.default is None
    assert config.help == (
        "YAML config, e.g. configs/segmentation/sam_decoder.yaml (without one: the built-in defaults, "
        "the same but for data)"
    )


def test_encoder_config_changes_only_the_measured_keys():
    # sam_encoder.yaml is the recipe of bench/results/sam_quality_encoder_bs2_const_folds.md.
    config = load_config(SCHEMA, REPO / "configs" / "segmentation" / "sam_encoder.yaml")
    changed = {key: value for key, value in config.items() if value != DEFAULTS[key]}
    assert changed == {"train_encoder": "last", "batch_size": 2, "warmup_steps": 0, "min_lr_ratio": 1.0}


def test_colour_config_changes_only_the_measured_keys():
    # sam_colour.yaml is the recipe of bench/results/sam_quality_colour_prompt.md.
    config = load_config(SCHEMA, REPO / "configs" / "segmentation" / "sam_colour.yaml")
    changed = {key: value for key, value in config.items() if value != DEFAULTS[key]}
    assert changed == {"colour_head": True, "colour_prompt": True}


def test_prompt_keys_take_their_ranges_from_prompt_config():
    # One declaration: the training config's prompts section differs from PromptConfig only in defaults.
    ours, theirs = SCHEMA["prompts"], prompt_schema()
    assert list(ours) == list(theirs)
    for name, option in ours.items():
        assert replace(option, default=None) == replace(theirs[name], default=None), name
    with pytest.raises(UserError, match=r"'p_box' needs a number in \[0, 1\], got 2"):
        PromptConfig(p_box=2)
    with pytest.raises(ValueError, match="no fields"):
        prompt_schema(p_bx=1.0)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr=true", "'lr' needs a number > 0, got True"),  # not a learning rate of 1.0
        ("lr=-1", "'lr' needs a number > 0, got -1"),
        ("lr=0", "'lr' needs a number > 0, got 0"),  # trained nothing, silently
        ("encoder_lr=0", "'encoder_lr' needs a number > 0, got 0"),
        ("lr=.nan", "'lr' needs a finite number"),
        ("lr=[1]", "'lr' needs a number > 0, got [1]"),
        ("batch_size=0", "'batch_size' needs an integer >= 1, got 0"),
        ("batch_size=1.5", "'batch_size' needs an integer >= 1, got 1.5"),
        ("max_steps=abc", "'max_steps' needs an integer >= 1 or null, got 'abc'"),
        ("max_steps=0", "'max_steps' needs an integer >= 1 or null, got 0"),
        ("epochs=-3", "'epochs' needs an integer >= 1, got -3"),
        ("patience=0", "'patience' needs an integer >= 1, got 0"),
        ("min_lr_ratio=2", "'min_lr_ratio' needs a number in [0, 1], got 2"),
        ("seed=-1", "'seed' needs an integer in [0, 2147483647], got -1"),
        ("corrective_rounds=-1", "'corrective_rounds' needs an integer >= 0"),
        ("multimask=yes please", "'multimask' needs true or false"),
        ("model=vit_x", "'model' must be one of vit_b, vit_h, vit_l, vit_t, got 'vit_x'"),
        ("device=gpu", "'device': unknown device 'gpu': use auto, cpu, cuda, cuda:N or mps"),
        ("device=cuda:one", "'device': unknown device 'cuda:one'"),
        ("prompts.p_box=2", "'prompts.p_box' needs a number in [0, 1], got 2"),
        ("prompts.n_positive=0", "'prompts.n_positive' needs an integer >= 1, got 0"),
        ("loss.focal_weight=-1", "'loss.focal_weight' needs a number >= 0, got -1"),
        ("loss.dice=1", "unknown config key 'loss.dice'"),
    ],
)
def test_bad_config_values_are_one_line_before_the_run_folder(override, message, tmp_path, capsys):
    assert main([f"data={tmp_path / 'data'}", f"out={tmp_path / 'runs'}", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs").exists()


def test_train_checks_a_config_built_in_python(tiny_dataset, tiny_sam, tmp_path):
    config = _config(tiny_dataset, tmp_path, "lr=true")  # merged into plain DEFAULTS: not checked yet
    with pytest.raises(UserError, match="'lr' needs a number"):
        train(config, sam=tiny_sam)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("key", "what"), [("colour_head", "whole-photo logits"), ("colour_prompt", "whole photos")]
)
def test_a_colour_head_or_prompt_on_crops_is_refused_before_the_run_folder(
    tiny_dataset, tiny_sam, tmp_path, key, what
):
    # both work in the whole photo's frame: a crop's logits or colours would be another input
    config = _config(tiny_dataset, tmp_path, f"{key}=true", "crops.max_fraction=0.2")
    with pytest.raises(
        UserError, match=rf"^config key '{key}' \(true\) works on {what}: set crops.max_fraction=0"
    ):
        train(config, sam=tiny_sam)
    assert not (tmp_path / "runs").exists()


def test_a_loss_of_weights_all_0_is_refused_before_the_run_folder(tiny_dataset, tiny_sam, tmp_path):
    # the run trained nothing (loss 0.0 every epoch) and kept the untuned decoder, without a word
    zero = ("loss.focal_weight=0", "loss.dice_weight=0", "loss.iou_weight=0")
    with pytest.raises(
        UserError, match=r"^config key 'loss': focal_weight, dice_weight and iou_weight are all 0"
    ):
        train(_config(tiny_dataset, tmp_path, *zero), sam=tiny_sam)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("file", "overrides", "source"),
    [
        # the file turned the head on, the command line the crops
        ({"colour_head": True}, ["crops.max_fraction=0.2"], "config file {own}: config key 'colour_head'"),
        (
            {"crops": {"max_fraction": 0.2}},
            ["colour_prompt=true"],
            "override 'colour_prompt=true': config key",
        ),
        ({"loss": {"focal_weight": 0}}, ["loss.dice_weight=0", "loss.iou_weight=0"], "override 'loss.iou_"),
        (
            {"loss": {"focal_weight": 0, "dice_weight": 0, "iou_weight": 0}},
            [],
            "config file {own}: config key",
        ),
    ],
)
def test_settings_that_do_not_go_together_name_where_they_were_set(tmp_path, capsys, file, overrides, source):
    # as a bad value is named (common.config.with_source): the message alone did not say which of the
    # file and the command line turned the colour head on
    own = tmp_path / "run.yaml"
    own.write_text(yaml.safe_dump(file))
    argv = ["--config", str(own), f"data={tmp_path / 'data'}", f"out={tmp_path / 'runs'}", *overrides]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {source.format(own=own)}") and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_unknown_device_is_one_line(tiny_dataset, tiny_sam, tmp_path):
    config = {**_config(tiny_dataset, tmp_path), "device": "tpu"}
    with pytest.raises(UserError, match=r"^config key 'device': unknown device 'tpu': use auto, cpu, "):
        train(config, sam=tiny_sam)


@pytest.mark.parametrize(("device", "shown"), [("foo", "'foo'"), ("CPU", "'CPU'"), ("cuda:x", "'cuda:x'")])
def test_a_device_key_that_names_no_device_reads_as_the_flag_does(device, shown, tmp_path, capsys):
    # device=foo said "needs a string matching 'auto|cpu|mps|cuda(:[0-9]+)?'" and device=0 (detection's first
    # GPU) "needs a string", where --device foo says "unknown device 'foo': use ...": one check
    # (common.devices.check_device_name) and one wording now, after where the value was set
    from segmentation.evaluate import resolve_device

    with pytest.raises(UserError) as flag:
        resolve_device(device)
    assert str(flag.value) == f"--device: unknown device '{device}': use auto, cpu, cuda, cuda:N or mps"
    key = f"config key 'device': unknown device {shown}: use auto, cpu, cuda, cuda:N or mps"
    assert main([f"data={tmp_path / 'data'}", f"out={tmp_path / 'runs'}", f"device={device}"]) == 2
    assert capsys.readouterr().err == f"error: override 'device={device}': {key}\n"
    config = tmp_path / "run.yaml"
    config.write_text(f"device: {device}\n")
    assert main(["--config", str(config), f"out={tmp_path / 'runs'}"]) == 2
    assert capsys.readouterr().err == f"error: config file {config}: {key}\n"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("device", "said"),
    [
        ("0", "takes a device name, not the number 0: write cuda:0 for that GPU, or use auto, cpu, cuda, "),
        ("-1", "takes a device name, not the number -1: use auto, cpu, cuda, cuda:N or mps"),
        ("[0, 1]", "takes one device name (auto, cpu, cuda, cuda:N or mps), got [0, 1]: a run uses one "),
        ("{a: 1, b: 2}", "takes one device name (auto, cpu, cuda, cuda:N or mps), got {'a': 1, 'b': 2}: "),
        ("[cpu]", "takes one device name (auto, cpu, cuda, cuda:N or mps), got ['cpu']: a run uses one "),
    ],
)
def test_a_device_key_of_a_number_list_or_mapping_names_the_device_names(device, said, tmp_path, capsys):
    # device=0 (detection's first GPU) said "unknown device 0", not how to write it here; device=[0, 1]
    # and a mapping were told to quote it to mean text, which then failed as an unknown device '[0, 1]'
    assert main([f"data={tmp_path / 'data'}", f"out={tmp_path / 'runs'}", f"device={device}"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: override 'device={device}': config key 'device' {said}")
        and err.count("\n") == 1
    ), err
    config = tmp_path / "run.yaml"
    config.write_text(f"device: {device}\n")
    assert main(["--config", str(config), f"out={tmp_path / 'runs'}"]) == 2
    assert capsys.readouterr().err.startswith(f"error: config file {config}: config key 'device' {said}")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("override", "file", "shown"),
    [
        (
            "device=cuda:",
            "device:\n  cuda:\n",
            "{'cuda': None}, which looks like a YAML mapping (from 'cuda:')",
        ),
        (
            "device=cuda: 1",
            "device: {cuda: 1}\n",
            "{'cuda': 1}, which looks like a YAML mapping (from 'cuda: 1')",
        ),
    ],
)
def test_a_device_that_yaml_split_at_its_colon_is_told_so(override, file, shown, tmp_path, capsys):
    # device=cuda: reads as the mapping {'cuda': None}; the error said only "needs a string or an integer"
    key = f"config key 'device' needs a string or an integer, got {shown}: drop the colon or the space after"
    assert main([f"data={tmp_path / 'data'}", f"out={tmp_path / 'runs'}", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: override '{override}': {key}") and err.count("\n") == 1, err
    config = tmp_path / "run.yaml"
    config.write_text(file)
    assert main(["--config", str(config), f"out={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: config file {config}: {key}") and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ("device={}", "{}"),
        ("device={cuda: 0, cpu: 1}", "{'cuda': 0, 'cpu': 1}"),
        ("device=cuda: x", "{'cuda': 'x'}"),
    ],
)
def test_a_device_mapping_no_colon_split_names_the_device_names(override, shown, tmp_path, capsys):
    # every mapping was told "looks like a YAML mapping: drop the colon or the space after it", also an
    # empty one, where no colon was there to drop; then "quote it to mean text", which failed as an
    # unknown device: the names taken, as for a list
    assert main([f"data={tmp_path / 'data'}", f"out={tmp_path / 'runs'}", override]) == 2
    key = f"config key 'device' takes one device name (auto, cpu, cuda, cuda:N or mps), got {shown}"
    why = "a run uses one device per process (torchrun --nproc_per_node N for several GPUs)"
    assert capsys.readouterr().err == f"error: override '{override}': {key}: {why}\n"


def test_an_augment_category_unknown_to_the_policy_and_the_data_is_refused(tiny_dataset, tiny_sam, tmp_path):
    # a typo used to get the policy's default entry silently: left-right flips, for a chiral nut too
    config = _config(tiny_dataset, tmp_path, "augment.enabled=true", "augment.category=synthetic_nutt")
    with pytest.raises(UserError, match="augment.category synthetic_nutt: neither in the policy"):
        train(config, sam=tiny_sam)
    assert not (tmp_path / "runs").exists()


def test_the_default_augmentation_policy_is_found_from_any_working_folder(
    tiny_dataset, tmp_path, monkeypatch
):
    # the policy's default path was read from the working folder: augment.enabled=true worked only from
    # the checkout's root ("cannot read augmentation policy configs/detection/augment.yaml")
    from segmentation.run_setup import augment_transforms

    monkeypatch.chdir(tmp_path)
    config = _config(tiny_dataset, tmp_path, "augment.enabled=true", "augment.category=synthetic_nut")
    assert augment_transforms(config) == ("rot90", "rot270")  # synthetic_nut: 180-degree turns, no flips


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        # flips would change metal_nut's label and it has no rotation: augment.enabled trained on the
        # photos as they are without a word
        ("metal_nut", "note: augment.enabled=true, but the augmentation policy"),
        ("synthetic_nut", "augmentation: rot90, rot270 views of every train photo"),  # turns, no flips
    ],
)
def test_augment_enabled_says_which_views_it_adds_or_that_the_policy_allows_none(
    tiny_dataset, tiny_sam, tmp_path, capsys, category, expected
):
    config = _config(
        tiny_dataset, tmp_path, "augment.enabled=true", f"augment.category={category}", "epochs=1"
    )
    train(config, sam=tiny_sam)
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.startswith(expected)]
    assert len(lines) == 1 and category in lines[0]


def test_a_val_split_without_defects_names_the_converters_split_flag(tiny_dataset, tiny_sam, tmp_path):
    data = tmp_path / "no_val_defects"
    shutil.copytree(tiny_dataset, data)
    val_file = data / "annotations" / "instances_val.json"
    val = json.loads(val_file.read_text())
    val_file.write_text(json.dumps({**val, "annotations": []}))
    with pytest.raises(UserError, match=r"--split TRAIN VAL TEST\)$") as error:
        train(_config(data, tmp_path), sam=tiny_sam)
    assert "--ratios" not in str(error.value)
    assert not (tmp_path / "runs").exists(), "the data set is checked before the run folder is made"


@pytest.mark.parametrize(
    "grey, overrides, expected",
    [
        (True, ["colour_prompt=true"], "the colour prompt reads colour, which a grey photo does not have: "
         "train without it (colour_prompt=false)"),
        (True, ["colour_head=true", "colour_prompt=true"], "the colour head and colour prompt read colour, "
         "which a grey photo does not have: train without them (colour_head=false colour_prompt=false)"),
        (False, ["colour_head=true", "colour_prompt=true"], None),  # colour photos
        (True, [], None),  # nothing that reads colour
    ],
)  # fmt: skip
def test_colour_parts_on_a_grey_data_set_are_warned_of_once_before_the_model_loads(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch, grey, overrides, expected
):
    # the run trained the colour prompt (and fit the head) on brightness alone without a word; the
    # commands that apply its decoder.pt to grey photos warn of it
    from segmentation import run_setup

    data = tmp_path / "grey_copy"
    shutil.copytree(tiny_dataset, data)
    if grey:
        for image in (data / "images").rglob("*.png"):  # one channel: read as three equal ones
            assert cv2.imwrite(str(image), cv2.imread(str(image), cv2.IMREAD_GRAYSCALE))
    said = []

    def load_model(config, sam, device):
        said.append(capsys.readouterr().err)
        raise UserError("stopped before the model")

    monkeypatch.setattr(run_setup, "load_model", load_model)
    with pytest.raises(UserError, match="stopped before the model"):
        train(_config(data, tmp_path, *overrides), sam=tiny_sam)
    warnings = [line for line in said[0].splitlines() if line.startswith("warning:")]
    if expected is None:
        assert warnings == []
    else:
        first = f"warning: the 3 photos read from the 14 are greyscale (the train split of {data}), and "
        assert warnings == [first + expected]


@pytest.mark.parametrize("renamed", [True, False], ids=["a class renamed in train alone", "the same classes"])
def test_train_and_val_listing_different_categories_is_a_note_naming_them(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch, renamed
):
    # it trained without a word, though segmentation.evaluate --folds refuses the data set
    from segmentation import run_setup

    data = tmp_path / "renamed"
    shutil.copytree(tiny_dataset, data)
    coco_file = data / "annotations" / "instances_train.json"
    coco = json.loads(coco_file.read_text())
    names = ", ".join(c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"]))
    if renamed:
        coco["categories"][0]["name"] += "_x"
        coco_file.write_text(json.dumps(coco))
    said = []

    def load_model(config, sam, device):
        said.append(capsys.readouterr().err)
        raise UserError("stopped before the model")

    monkeypatch.setattr(run_setup, "load_model", load_model)
    with pytest.raises(UserError, match="stopped before the model"):
        train(_config(data, tmp_path), sam=tiny_sam)
    notes = [line for line in said[0].splitlines() if line.startswith("note:")]
    renamed_names = ", ".join(c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"]))
    expected = (
        f"note: the train and val COCO files of {data} list different categories (train lists "
        f"{renamed_names}; val lists {names}): fine-tuning takes no class from them and goes on, but "
        "segmentation.evaluate --folds refuses such a data set, and each split's scores use its own names"
    )
    assert notes == ([expected] if renamed else [])


@pytest.mark.parametrize(
    "kinds, warned",
    [("gggccccccc", False), ("cggggggggg", True)],
    ids=["a grey lot first, colour after", "one colour photo ahead of a grey set"],
)
def test_the_grey_train_split_warning_reads_photos_spread_over_the_split(tmp_path, kinds, warned):
    # it read the first 3 train photos alone: the first list was called grey, the second colour
    from segmentation.run_setup import grey_data_warning

    images = []
    for index, kind in enumerate(kinds):
        pixels = np.full((8, 8, 3), 90, np.uint8)
        pixels[..., 2] += 100 if kind == "c" else 0
        assert cv2.imwrite(str(tmp_path / f"{index}.png"), pixels)
        images.append(SimpleNamespace(path=str(tmp_path / f"{index}.png")))
    config = {"colour_head": True, "colour_prompt": False, "data": str(tmp_path)}
    warning = grey_data_warning(
        config, [image.path for image in images], where=f"the train split of {tmp_path}"
    )
    assert warning == (
        f"2 of the 3 photos read from the 10 are greyscale (the train split of {tmp_path}), and the colour "
        "head reads colour, which a grey photo does not have: train without it (colour_head=false)"
        if warned
        else None
    )


def test_a_reused_run_folder_keeps_no_colour_head_fit_of_the_earlier_run(
    tiny_dataset, tiny_sam, tmp_path, capsys
):
    folder = tmp_path / "runs" / "again"
    (folder / "eval_test").mkdir(parents=True)  # segmentation.evaluate's default --out for the earlier run
    (folder / "colour_head.json").write_text('{"kept": true}')  # an earlier colour_head=true run
    (folder / "eval_notes.txt").write_text("the user's\n")  # a file: no evaluation folder, not named
    config = _config(tiny_dataset, tmp_path, "name=again", "exist_ok=true", "epochs=1", "max_steps=1")
    train(config, sam=tiny_sam)
    assert not (folder / "colour_head.json").exists()
    assert (folder / "eval_test").is_dir()  # the user's: kept, but named as the earlier run's
    assert f"note: {folder} keeps eval_test of the earlier run (exist_ok)" in capsys.readouterr().out


def _earlier_run(tiny_dataset, tiny_sam, tmp_path) -> tuple[Path, dict, dict[str, bytes]]:
    """A finished run in runs/again, its config for an exist_ok re-run, and its files' bytes."""
    config = _config(tiny_dataset, tmp_path, "name=again", "exist_ok=true", "epochs=1", "max_steps=1")
    folder = train(config, sam=tiny_sam)
    names = ("last.pt", "decoder.pt", "sam_finetuned.pth", "results.csv", "curves.png", "args.yaml")
    return folder, config, {name: (folder / name).read_bytes() for name in names}


@pytest.mark.parametrize("stop", ["full disk", "ctrl-c"])
def test_a_re_run_stopped_before_its_first_save_leaves_the_earlier_run_whole(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys, stop
):
    # the earlier run's last.pt, decoder.pt, ... were deleted as the re-run started: a full disk at its
    # first last.pt, or a Ctrl-C before it, had lost the earlier trained decoder
    folder, config, earlier = _earlier_run(tiny_dataset, tiny_sam, tmp_path)

    def refused(state, path):
        if stop == "ctrl-c":
            raise KeyboardInterrupt
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(train_module, "save_torch", refused)  # last.pt, after the zero-shot decoder.pt
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt if stop == "ctrl-c" else OSError):
        train({**config, "seed": 1}, sam=tiny_sam)
    assert {name: (folder / name).read_bytes() for name in earlier} == earlier
    assert not [path.name for path in folder.iterdir() if path.name.startswith(".")]  # nothing hidden left
    err = capsys.readouterr().err
    assert (
        f"note: this run stopped before its first save: {folder} holds the files it found there again\n"
        in err
    )
    assert "stopped; go on" not in err


def test_a_re_run_that_saves_its_first_epoch_leaves_nothing_of_the_earlier_run(
    tiny_dataset, tiny_sam, tmp_path
):
    folder, config, earlier = _earlier_run(tiny_dataset, tiny_sam, tmp_path)
    train({**config, "lr": 0.5}, sam=tiny_sam)
    assert (folder / "args.yaml").read_bytes() != earlier["args.yaml"]
    assert not [path.name for path in folder.iterdir() if path.name.startswith(".")]


def test_a_corrupt_image_is_one_line_and_makes_no_run_folder(tiny_dataset, tiny_sam, tmp_path):
    data = tmp_path / "corrupt_copy"
    shutil.copytree(tiny_dataset, data)
    image = sorted((data / "images" / "train").iterdir())[0]
    image.write_bytes(image.read_bytes()[:40])  # cut short: the header survives, the pixels do not
    # refused as its split is read (its size is checked from the header): "cannot decode image" once embedded
    with pytest.raises(UserError, match=f"cannot (read|decode) image .*{image.name}") as error:
        train(_config(data, tmp_path), sam=tiny_sam)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "runs").exists(), "images are decoded before the run folder is made"


@pytest.mark.parametrize("split", ["train", "val"])
def test_a_coco_size_other_than_the_images_is_one_line_and_makes_no_run_folder(
    tiny_dataset, tiny_sam, tmp_path, split
):
    data = tmp_path / "wrong_size"
    shutil.copytree(tiny_dataset, data)
    coco_file = data / "annotations" / f"instances_{split}.json"
    coco = json.loads(coco_file.read_text())
    coco["images"][0]["width"] //= 2  # the masks would be decoded at half the photo's width
    coco_file.write_text(json.dumps(coco))
    name = Path(coco["images"][0]["file_name"]).name
    with pytest.raises(UserError, match=f"{name} is 64x64 px, but .*instances_{split}.json says 32x64"):
        train(_config(data, tmp_path), sam=tiny_sam)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["out={file}"], "out {file} is a file, not a folder"),
        (["out={file}/sub"], "cannot create folder {file}/sub: {file} is a file, not a folder"),
        (["out={tmp}", "name=taken", "exist_ok=true"], "run folder {tmp}/taken is a file, not a folder"),
        (["cache_dir={file}"], "cache_dir {file} is a file, not a folder"),  # was 'Not a directory: ...'
    ],
    ids=["out is a file", "out under a file", "exist_ok run folder is a file", "cache_dir is a file"],
)
def test_an_out_blocked_by_a_file_is_one_line_before_any_work(
    tiny_dataset, tiny_sam, tmp_path, overrides, message
):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    paths = {"file": blocker, "tmp": tmp_path}
    config = _config(tiny_dataset, tmp_path, *(o.format(**paths) for o in overrides))
    with pytest.raises(UserError, match="^" + re.escape(message.format(**paths)) + "$"):
        train(config, sam=tiny_sam)
    assert not (tmp_path / "cache").exists(), "checked before the embeddings are computed"


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "."])
def test_a_name_that_is_not_one_folder_inside_out_is_refused_before_any_work(
    tiny_dataset, tiny_sam, tmp_path, name
):
    # out=<tmp>/runs, so name=../escape would write the run to <tmp>/escape (as detection.train refuses)
    config = _config(tiny_dataset, tmp_path, f"name={name}", "epochs=1", "max_steps=1")
    message = f"config key 'name' needs a plain folder name inside 'out', got {name!r}"
    with pytest.raises(UserError, match="^" + re.escape(message) + "$"):
        train(config, sam=tiny_sam)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "runs").exists()
    assert not (tmp_path / "cache").exists(), "checked before the embeddings are computed"


# --- resume: a bad last.pt or args.yaml is one line and leaves the run folder as it was


def _folder_state(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def _resumable(tiny_dataset: Path, tmp_path: Path, last: bytes | object) -> Path:
    """A run folder with a valid args.yaml and ``last`` as its last.pt (bytes as given, else torch.save)."""
    run = tmp_path / "runs" / "cut"
    save_config(_config(tiny_dataset, tmp_path, "name=cut"), run / "args.yaml")
    if isinstance(last, bytes):
        (run / "last.pt").write_bytes(last)
    else:
        torch.save(last, run / "last.pt")
    return run


@pytest.mark.parametrize(
    ("last", "message"),
    [
        (b"", "cannot read resume state"),
        (b"\x00garbage" * 10, "cannot read resume state"),
        (b"PK\x03\x04 half a zip", "cannot read resume state"),
        ([1, 2, 3], "is not a training state written by segmentation.train"),
        ({"mask_decoder": {}, "epoch": 0}, "lacks optimizer, scheduler, best_iou, stale, step, rows"),
    ],
    ids=["empty", "garbage", "truncated", "a list", "missing keys"],
)
def test_bad_resume_state_is_one_line(tiny_dataset, tmp_path, capsys, last, message):
    run = _resumable(tiny_dataset, tmp_path, last)
    before = _folder_state(run)
    assert main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err and "last.pt" in err, err
    assert _folder_state(run) == before


#: A last.pt's run state as segmentation.train writes it at epoch 0 (the weights left out: checked later).
RUN_STATE = {**dict.fromkeys(RESUME_KEYS), "epoch": 0, "best_iou": 0.5, "stale": 0, "step": 0, "rows": []}


@pytest.mark.parametrize(
    "classes", [["cut"], {"train": ["cut"], "val": {}}], ids=["a list", "a split's a list"]
)
def test_a_last_pt_whose_classes_are_not_class_names_by_split_is_one_line(
    tiny_dataset, tmp_path, capsys, classes
):
    # a foreign last.pt: an AttributeError traceback ('list' object has no attribute 'get') once the data
    # set was read (check_same_classes)
    run = _resumable(tiny_dataset, tmp_path, {**RUN_STATE, "classes": classes})
    (run / "decoder.pt").write_bytes(b"kept")  # else refused as missing first
    before = _folder_state(run)
    assert main(["--resume", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"error: {run / 'last.pt'} is not a training state written by segmentation.train: its 'classes' is "
        f"{classes!r}, not the class names of each split: start a new run without --resume\n"
    )
    assert _folder_state(run) == before


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        # int() of it: a ValueError or TypeError traceback before the data set was read
        ({"epoch": "x"}, "'epoch' is 'x', not a whole number of -1 or more"),
        ({"epoch": None}, "'epoch' is None, not a whole number of -1 or more"),
        ({"epoch": -2}, "'epoch' is -2, not a whole number of -1 or more"),  # resumed at epoch -1
        ({"step": 1.5}, "'step' is 1.5, not a whole number of 0 or more"),  # int() took it for 1
        # with decoder.pt gone: a TypeError traceback ('NoneType' object is not iterable)
        ({"rows": None}, "'rows' is None, not a list of results.csv rows"),
        ({"rows": [1]}, "row 1 of 'rows' is 1, not a results.csv row"),
        # a KeyError; the line repeated the rows whole, not naming the row nor what it lacks
        ({"rows": [{"epoch": 0}]}, "row 1 of 'rows' lacks train_loss, val_iou, val_mask_ap"),
        (
            {"rows": [{"epoch": 0, "train_loss": 1.0, "val_iou": 0.5, "val_mask_ap": 0.4}, {"epoch": 1}]},
            "row 2 of 'rows' lacks train_loss, val_iou, val_mask_ap",
        ),
        # its format spec: "Unknown format code 'f' for object of type 'str'"
        ({"best_iou": "0.5"}, "'best_iou' is '0.5', not a number"),
    ],
)
def test_a_last_pt_whose_run_state_is_of_another_kind_is_one_line(
    tiny_dataset, tmp_path, capsys, entry, what
):
    run = _resumable(tiny_dataset, tmp_path, {**RUN_STATE, **entry})
    before = _folder_state(run)
    assert main(["--resume", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"error: {run / 'last.pt'} is not a training state written by segmentation.train: its {what}: start "
        "a new run without --resume\n"
    )
    assert _folder_state(run) == before


def test_resume_checks_args_yaml_and_refuses_a_second_config(tiny_dataset, tmp_path, capsys):
    run = _resumable(tiny_dataset, tmp_path, b"")
    (run / "args.yaml").write_text((run / "args.yaml").read_text().replace("lr: 0.001", "lr: true"))
    before = _folder_state(run)
    assert main(["--resume", str(run)]) == 2
    assert "'lr' needs a number > 0, got True" in capsys.readouterr().err
    assert main(["--resume", str(run), "--config", str(run / "args.yaml")]) == 2
    assert "drop --config" in capsys.readouterr().err
    assert _folder_state(run) == before


def test_resume_refuses_fewer_epochs_than_it_has_trained(tiny_dataset, tmp_path, capsys):
    # it printed "all 2 epochs were done", wrote epochs: 2 into args.yaml (results.csv held 3) and refit
    run = _resumable(tiny_dataset, tmp_path, {**RUN_STATE, "epoch": 2})  # epochs 0-2 done
    before = _folder_state(run)
    assert main(["--resume", str(run), "epochs=2"]) == 2
    assert capsys.readouterr().err == (
        f"error: epochs=2 is fewer than the 3 epochs {run} has trained: pass epochs=3 or more "
        "(or leave epochs= out)\n"
    )
    assert _folder_state(run) == before


@pytest.mark.parametrize("override", ["name=other", "out=elsewhere", "exist_ok=true"])
def test_resume_refuses_overrides_that_choose_another_run_folder(tiny_dataset, tmp_path, capsys, override):
    # they were taken and ignored: the run went on in its folder, whose args.yaml then said name: other
    run = _resumable(tiny_dataset, tmp_path, b"")
    before = _folder_state(run)
    assert main(["--resume", str(run), "epochs=3", override]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: --resume {run} goes on in that folder: drop {override} "
        "(out, name, exist_ok choose a new run's folder)\n"
    )
    assert _folder_state(run) == before


@pytest.mark.parametrize("override", ["model=vit_h", "train_transformer=true", "train_encoder=neck"])
def test_resume_refuses_overrides_of_the_trained_set_up_before_loading_weights(
    tiny_dataset, tmp_path, capsys, monkeypatch, override
):
    # model=vit_h loaded (downloaded: 2.5 GB) its base weights first, then failed on them or on last.pt
    run = _resumable(tiny_dataset, tmp_path, b"")
    before = _folder_state(run)
    monkeypatch.setattr(train_module, "train", lambda *args, **kwargs: pytest.fail("went on to train"))
    assert main(["--resume", str(run), "epochs=3", override]) == 2
    key = override.split("=")[0]
    saved = {"model": "vit_t", "train_transformer": "false", "train_encoder": "null"}[key]
    assert capsys.readouterr().err == (
        f"error: --resume {run} goes on with the {key} it was started with ({saved}, its args.yaml): "
        f"drop {override}, or start a new run without --resume\n"
    )
    assert _folder_state(run) == before


def test_overrides_may_stand_on_both_sides_of_config(tiny_dataset, tmp_path, capsys):
    # "data=D --config C epochs=0" was "unrecognized arguments: epochs=0"
    config = tmp_path / "c.yaml"
    config.write_text("lr: 0.001\n")
    assert main([f"data={tiny_dataset}", "--config", str(config), "epochs=0", f"out={tmp_path}/r"]) == 2
    err = capsys.readouterr().err
    assert err == "error: override 'epochs=0': config key 'epochs' needs an integer >= 1, got 0\n"
    assert not (tmp_path / "r").exists()


def test_resume_state_of_another_set_up_is_one_line(tiny_dataset, tiny_sam_builder, tmp_path):
    config = _config(tiny_dataset, tmp_path, "name=short", "epochs=1", "max_steps=1")
    run = train(config, sam=tiny_sam_builder())
    before = _folder_state(run)
    changed = {**config, "train_prompt_encoder": True}  # the optimiser now has more parameters
    with pytest.raises(UserError, match="does not fit this run") as error:
        train(changed, resume=run, sam=tiny_sam_builder())
    assert "\n" not in str(error.value)
    assert _folder_state(run) == before
    changed = {**config, "train_transformer": True}  # so has this one: the hint must name it
    with pytest.raises(UserError, match="does not fit this run.*train_transformer"):
        train(changed, resume=run, sam=tiny_sam_builder())
    changed = {**config, "colour_prompt": True}  # its mask downscaling trains in a group of its own
    with pytest.raises(UserError, match="does not fit this run.*colour_prompt it was started with"):
        train(changed, resume=run, sam=tiny_sam_builder())
    assert _folder_state(run) == before


# --- train_encoder: the top of the image encoder trains too (segmentation.encoder_part) ---------


def _trained_keys(before: dict, after: dict) -> set[str]:
    return {key for key in before if not torch.equal(before[key], after[key])}


def test_a_run_trains_the_top_only_and_every_loader_gets_it(
    tiny_dataset, tiny_sam, tiny_sam_builder, tmp_path
):
    base = {k: v.clone() for k, v in tiny_sam.image_encoder.state_dict().items()}
    run = train(_config(tiny_dataset, tmp_path, "name=enc", "train_encoder=last"), sam=tiny_sam)
    decoder = torch.load(run / "decoder.pt", weights_only=True)
    part = decoder["image_encoder"]
    assert part and all(key.startswith(("blocks.1.", "neck.")) for key in part)
    assert decoder["config"]["train_encoder"] == "last"
    trained = torch.load(run / "last.pt", weights_only=False)["image_encoder"]  # the last epoch's weights
    changed = _trained_keys({k: base[k] for k in trained}, trained)
    assert changed and all(key.startswith(("blocks.1.", "neck.")) for key in changed)
    full = torch.load(run / "sam_finetuned.pth", weights_only=True)  # the best epoch's weights
    tuned = {k.removeprefix("image_encoder."): v for k, v in full.items() if k.startswith("image_encoder.")}
    for key, value in tuned.items():  # the trunk as it was, the top as decoder.pt has it
        assert torch.equal(value, part.get(key, base[key])), key
    # decoder.pt applied on the base: the encoder part comes with it (tiny models are passed in, so
    # the run records no base hash and the file is applied by hand as the loaders do)
    loaded = apply_decoder(tiny_sam_builder(), decoder)
    for key, value in loaded.image_encoder.state_dict().items():
        assert torch.equal(value, tuned[key]), key
    # the trunk features were cached once, in a folder of their own
    assert [p.name.split("-")[:2] for p in (tmp_path / "cache").iterdir()] == [["vit_t", "last"]]


def test_the_val_iou_of_epoch_zero_is_the_untuned_models(tiny_dataset, tiny_sam_builder, tmp_path):
    plain = train(_config(tiny_dataset, tmp_path, "name=plain", "epochs=1"), sam=tiny_sam_builder())
    top = train(
        _config(tiny_dataset, tmp_path, "name=top", "epochs=1", "train_encoder=neck"), sam=tiny_sam_builder()
    )
    rows = [(run / "results.csv").read_text().splitlines()[1].split(",") for run in (plain, top)]
    header = (plain / "results.csv").read_text().splitlines()[0].split(",")
    column = header.index("val_iou")
    assert float(rows[0][column]) == pytest.approx(float(rows[1][column]), abs=0.02)  # float16 rounding apart


def test_resume_of_an_encoder_run_matches_an_uninterrupted_one(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    straight = train(_config(tiny_dataset, tmp_path, "name=a", "train_encoder=last"), sam=tiny_sam_builder())
    config = _config(tiny_dataset, tmp_path, "name=b", "train_encoder=last")
    _train_stopped_after_epoch_1(config, tiny_sam_builder(), monkeypatch)
    cut = tmp_path / "runs" / "b"
    train(load_config(DEFAULTS, cut / "args.yaml"), resume=cut, sam=tiny_sam_builder())
    a = torch.load(straight / "last.pt", weights_only=False)
    b = torch.load(cut / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 1 and a["image_encoder"].keys() == b["image_encoder"].keys()
    for key in a["image_encoder"]:
        torch.testing.assert_close(a["image_encoder"][key], b["image_encoder"][key])


def test_training_fits_the_head_and_keeps_it_only_when_val_iou_rises(
    tiny_dataset, tiny_sam, tmp_path, capsys
):
    run = train(_config(tiny_dataset, tmp_path, "name=head", "epochs=1", "colour_head=true"), sam=tiny_sam)
    report = json.loads((run / "colour_head.json").read_text())
    without, with_head = report["val_iou"]
    assert report["kept"] == (with_head > without)
    assert report["features"] == list(colour_head.FEATURES) and len(report["weights"]) == 3
    stored = load_colour_head(run / "decoder.pt")
    if report["kept"]:
        expected = colour_head.ColourHead(
            tuple(report["weights"]), colour_head.MIN_BOX_FRACTION, (without, with_head)
        )
        assert stored == expected and report["min_box_fraction"] == colour_head.MIN_BOX_FRACTION
    else:
        assert stored is None
    printed = capsys.readouterr()
    assert f"colour head: val IoU {without:.4f} -> {with_head:.4f}" in printed.err
    if report["kept"]:  # the closing line gave the figure without the head as the best
        assert f"best val IoU {with_head:.4f} at epoch " in printed.out
    assert "decoder.pt, sam_finetuned.pth, colour_head.json, results.csv" in printed.out  # its report named
    # The tiny untrained model is near random, so its colour-blind logits leave room: here it is kept.
    assert report["kept"]


def test_training_refuses_the_head_with_crops_before_the_run_folder(tiny_dataset, tiny_sam, tmp_path):
    config = _config(tiny_dataset, tmp_path, "colour_head=true", "crops.max_fraction=0.2")
    with pytest.raises(UserError, match="set crops.max_fraction=0"):
        train(config, sam=tiny_sam)
    assert not (tmp_path / "runs").exists()


def test_an_undefined_val_iou_is_null_in_strict_colour_head_json(tmp_path, monkeypatch, strict_json):
    # a val split whose IoU is undefined (NaN) wrote a bare NaN, which jq and JSON.parse refuse
    rng = np.random.default_rng(0)
    x = rng.random((64, len(colour_head.FEATURES)), dtype=np.float32)
    monkeypatch.setattr(train_module, "train_pixels", lambda run: (x, x[:, 0] > 0.5))
    monkeypatch.setattr(train_module, "validate", lambda run, head=None: {"val_iou": float("nan")})
    run = SimpleNamespace(config={"seed": 0}, folder=tmp_path)  # what fit_head reads besides those two
    assert train_module.fit_head(run) is None  # NaN is no better: not kept
    report = strict_json(tmp_path / "colour_head.json")
    assert report["val_iou"] == [None, None] and report["kept"] is False


def test_a_colour_head_that_cannot_be_fit_leaves_the_run_standing(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
):
    def one_class(run):
        return np.zeros((4, 3), np.float32), np.ones(4, bool)  # masks that fill their boxes

    monkeypatch.setattr(train_module, "train_pixels", one_class)
    run = train(_config(tiny_dataset, tmp_path, "name=full", "epochs=1", "colour_head=true"), sam=tiny_sam)
    assert "colour head: not fit" in capsys.readouterr().err
    assert not (run / "colour_head.json").exists() and load_colour_head(run / "decoder.pt") is None
    assert (run / "sam_finetuned.pth").is_file()


@pytest.mark.parametrize(
    ("done", "left"),
    [(0, "epoch 1 of 3 next"), (2, "epoch 3 of 3 next"), (3, "all 3 epochs were done")],
)
def test_the_resume_line_says_which_epoch_comes_next_or_that_none_does(done, left):
    state = train_module.RunState(next_epoch=done, best_iou=0.81904)
    assert train_module.resume_line(Path("runs/sam/a"), state, 3) == (
        f"resuming runs/sam/a after epoch {done}: {left}; best val IoU so far 0.8190"
    )


def test_a_resumed_run_that_had_stopped_early_is_not_told_an_epoch_comes_next(
    tiny_dataset, tiny_sam_builder, tmp_path, capsys
):
    state = train_module.RunState(next_epoch=1, best_iou=0.5)
    assert train_module.resume_line(Path("runs/sam/a"), state, 3, stopped=True) == (
        "resuming runs/sam/a after epoch 1: it had stopped (early stopping, or its last optimiser step), "
        "nothing left to train; best val IoU so far 0.5000"
    )
    run = train(
        _config(tiny_dataset, tmp_path, "name=early", "epochs=3", "patience=1"), sam=tiny_sam_builder()
    )
    rows = _rows(run / "results.csv")
    assert len(rows) < 4, "the seeded tiny run is expected to stop early (patience 1)"
    capsys.readouterr()
    train(load_config(DEFAULTS, run / "args.yaml"), resume=run, sam=tiny_sam_builder())
    assert "it had stopped (early stopping" in capsys.readouterr().out
    assert len(_rows(run / "results.csv")) == len(rows)  # no epoch trained


def test_a_resume_of_a_run_whose_decoder_pt_was_deleted_is_refused_before_anything_is_written(
    tiny_dataset, tiny_sam_builder, tmp_path, capsys
):
    # it went on, wrote no decoder.pt (no epoch beat the lost one) and closed with "decoder.pt,
    # sam_finetuned.pth, ... in" and an evaluate command naming the missing decoder.pt
    run = train(_config(tiny_dataset, tmp_path, "name=run", "epochs=1"), sam=tiny_sam_builder())
    (run / "decoder.pt").unlink()
    rows = _rows(run / "results.csv")
    best = max(float(row["val_iou"]) for row in rows)
    kept = next(row["epoch"] for row in rows if float(row["val_iou"]) == best)
    before = _folder_state(run)
    capsys.readouterr()
    with pytest.raises(UserError) as error:
        train(load_config(DEFAULTS, run / "args.yaml", ["epochs=2"]), resume=run, sam=tiny_sam_builder())
    assert str(error.value) == (
        f"{run / 'decoder.pt'} is missing (deleted?): it held the run's best decoder (epoch {kept}, val IoU "
        f"{best:.4f}), which last.pt (the last epoch's) cannot give back: start a new run without --resume"
    )
    assert _folder_state(run) == before
    assert "decoder.pt" not in capsys.readouterr().out


def test_a_resume_keeps_the_earlier_epochs_train_photos_in_trained_images_json(
    tiny_dataset, tiny_sam_builder, tmp_path
):
    # the data set converted again with another seed before --resume: the photos the earlier epochs
    # trained on are no longer all in train, and an evaluation must still be warned of them
    run = train(_config(tiny_dataset, tmp_path, "name=run", "epochs=1"), sam=tiny_sam_builder())
    val_photo = sorted((tiny_dataset / "images" / "val").iterdir())[0]
    record = json.loads((run / "trained_images.json").read_text())
    record["images"].append({"file": val_photo.name, "sha256": sha256_file(val_photo)})
    (run / "trained_images.json").write_text(json.dumps(record))  # as if epoch 1 had trained on it
    train(load_config(DEFAULTS, run / "args.yaml", ["epochs=2"]), resume=run, sam=tiny_sam_builder())
    train_photos = sorted(p.name for p in (tiny_dataset / "images" / "train").iterdir())
    assert sorted(read_trained_images(run).values()) == sorted([*train_photos, val_photo.name])


def test_a_resume_on_a_data_set_split_again_is_refused_before_anything_is_written(
    tiny_dataset, tiny_sam_builder, tmp_path
):
    # converted again with another seed: the resume went on and results.csv compared val IoUs of two
    # val sets (its 'best' epoch picked across them)
    from converters.convert import ConvertConfig, convert

    data, mvtec = tmp_path / "nut", tiny_dataset.parent / "mvtec"
    convert(ConvertConfig(root=mvtec, out=data, formats=("coco",), progress=False))
    run = train(_config(data, tmp_path, "name=run", "epochs=1"), sam=tiny_sam_builder())
    convert(ConvertConfig(root=mvtec, out=data, formats=("coco",), seed=7, overwrite=True, progress=False))
    before = _folder_state(run)
    message = (
        f"the train/val split of {data} is not the one {run} was trained on (converted again with "
        "another seed or split?): start a new run without --resume, or convert the data again with "
        "the seed and split it was made with"
    )
    with pytest.raises(UserError, match="^" + re.escape(message) + "$"):
        train(load_config(DEFAULTS, run / "args.yaml", ["epochs=2"]), resume=run, sam=tiny_sam_builder())
    assert _folder_state(run) == before


def test_a_resume_on_photos_whose_masks_changed_is_refused_before_anything_is_written(
    tiny_dataset, tiny_sam_builder, tmp_path
):
    # the same photo names with a defect given another class (or outlined again): the resume went on and
    # results.csv compared val IoUs against two sets of masks
    data = tmp_path / "nut"
    shutil.copytree(tiny_dataset, data)
    run = train(_config(data, tmp_path, "name=run", "epochs=1"), sam=tiny_sam_builder())
    coco_file = data / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    other = next(c["id"] for c in coco["categories"] if c["id"] != coco["annotations"][0]["category_id"])
    coco["annotations"][0]["category_id"] = other
    coco_file.write_text(json.dumps(coco))
    before = _folder_state(run)
    message = f"^the train/val annotations of {re.escape(str(data))} are not the ones {re.escape(str(run))}"
    with pytest.raises(UserError, match=message):
        train(load_config(DEFAULTS, run / "args.yaml", ["epochs=2"]), resume=run, sam=tiny_sam_builder())
    assert _folder_state(run) == before


def test_a_resume_on_classes_renamed_is_refused_naming_them_before_anything_is_written(
    tiny_dataset, tiny_sam_builder, tmp_path
):
    # a class renamed in the train COCO file alone: the masks fingerprint holds category ids, not names,
    # so the resume went on, though check_same_masks and the docs said a renamed class is refused
    data = tmp_path / "nut"
    shutil.copytree(tiny_dataset, data)
    run = train(_config(data, tmp_path, "name=run", "epochs=1"), sam=tiny_sam_builder())
    coco_file = data / "annotations" / "instances_train.json"
    coco = json.loads(coco_file.read_text())
    used = next(c for c in coco["categories"] if c["id"] == coco["annotations"][0]["category_id"])
    old_name, used["name"] = used["name"], used["name"] + "_renamed"
    coco_file.write_text(json.dumps(coco))
    before = _folder_state(run)
    message = (
        f"the classes of {data} are not named as when {run} was trained ('{old_name}' is now "
        f"'{old_name}_renamed' in train): start a new run without --resume, or name them back in the "
        "COCO files"
    )
    with pytest.raises(UserError, match="^" + re.escape(message) + "$"):
        train(load_config(DEFAULTS, run / "args.yaml", ["epochs=2"]), resume=run, sam=tiny_sam_builder())
    assert _folder_state(run) == before


def test_a_last_pt_without_a_split_fingerprint_still_resumes(tiny_dataset, tiny_sam_builder, tmp_path):
    # written before the fingerprint was recorded: nothing to check it against
    run = train(_config(tiny_dataset, tmp_path, "name=run", "epochs=1"), sam=tiny_sam_builder())
    state = torch.load(run / "last.pt", weights_only=False)
    assert len(state.pop("split")) == len(state.pop("masks")) == 64
    assert set(state.pop("classes")) == {"train", "val"}  # the class names, recorded since
    torch.save(state, run / "last.pt")
    train(load_config(DEFAULTS, run / "args.yaml", ["epochs=2"]), resume=run, sam=tiny_sam_builder())
    assert [int(r["epoch"]) for r in _rows(run / "results.csv")] == [0, 1, 2]


def test_args_yaml_records_paths_absolute_so_resume_works_from_another_folder(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # data=, cache_dir= given relative: args.yaml held them as typed, and --resume from another
    # folder stopped at 'data=<relative> does not exist'
    monkeypatch.chdir(tiny_dataset.parent)
    (tiny_dataset.parent / "sam.pth").write_bytes(b"the base weights")  # recorded only: the model is given
    overrides = [f"data={tiny_dataset.name}", "cache_dir=cache", "checkpoint=sam.pth", "epochs=1"]
    run = train(_config(tiny_dataset, tmp_path, "name=rel", *overrides), sam=tiny_sam_builder())
    saved = yaml.safe_load((run / "args.yaml").read_text())
    assert (saved["data"], saved["cache_dir"]) == (str(tiny_dataset), str(tiny_dataset.parent / "cache"))
    assert saved["checkpoint"] == str(tiny_dataset.parent / "sam.pth")
    monkeypatch.chdir(tmp_path)
    train(load_config(DEFAULTS, run / "args.yaml", ["epochs=2"]), resume=run, sam=tiny_sam_builder())
    assert [int(r["epoch"]) for r in _rows(run / "results.csv")] == [0, 1, 2]


def test_a_resume_of_a_run_whose_data_set_moved_says_to_pass_data(tiny_dataset, tiny_sam_builder, tmp_path):
    data = shutil.copytree(tiny_dataset, tmp_path / "data set")
    run = train(_config(data, tmp_path, "name=my run", "epochs=1"), sam=tiny_sam_builder())
    data.rename(tmp_path / "moved")
    config = load_config(DEFAULTS, run / "args.yaml", ["epochs=2"])
    message = (
        f"data={data} ({run / 'args.yaml'}) does not exist: if the data set moved, go on with "
        f"--resume '{run}' data=<where it is now>"  # quoted for the shell: the run's name has a space
    )  # was 'data=<path> does not exist', a path the user never typed
    with pytest.raises(UserError, match="^" + re.escape(message) + "$"):
        train(config, resume=run, sam=tiny_sam_builder())
    config = load_config(DEFAULTS, run / "args.yaml", ["epochs=2", f"data={tmp_path / 'moved'}"])
    train(config, resume=run, sam=tiny_sam_builder())
    assert [int(r["epoch"]) for r in _rows(run / "results.csv")] == [0, 1, 2]


def test_a_missing_data_given_with_resume_is_not_blamed_on_args_yaml(tiny_dataset, tmp_path, capsys):
    # it said 'data=X (<run>/args.yaml) does not exist: ... go on with --resume <run> data=<where it is now>'
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"state")
    save_config(_config(tiny_dataset, tmp_path), run / "args.yaml")
    assert main(["--resume", str(run), f"data={tmp_path / 'typo'}"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: data={tmp_path / 'typo'} does not exist (given with --resume {run})\n"


def _resumable_run(tiny_dataset, tmp_path):
    """A run folder that ``--resume`` reads up to its data set: ``last.pt`` and ``args.yaml``."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"state")
    save_config(_config(tiny_dataset, tmp_path), run / "args.yaml")
    return run


@pytest.mark.parametrize("blocked", ["data given with --resume", "the run folder"])
def test_a_resume_in_a_folder_that_cannot_be_searched_names_the_refusal_on_python_3_13(
    tiny_dataset, tmp_path, capsys, unsearchable, blocked
):
    # Path.exists and is_file are False there from Python 3.13: 'data=X does not exist (given with
    # --resume run)', or 'nothing to resume in run: no last.pt' with last.pt right there
    run = _resumable_run(tiny_dataset, tmp_path)
    data = tmp_path / "locked" / "data"
    unsearchable(data.parent if blocked.startswith("data") else run)
    assert main(["--resume", str(run), f"data={data}"]) != 0
    looked_for = data if blocked.startswith("data") else run / "last.pt"
    assert capsys.readouterr().err == f"error: Permission denied: {looked_for}\n"


def test_a_resumed_run_whose_files_cannot_be_searched_is_not_called_moved_on_python_3_13(
    tiny_dataset, tmp_path, unsearchable
):
    # 'data=X (run/args.yaml) does not exist: if the data set moved, ...' and 'run/decoder.pt is missing
    # (deleted?)', to start over, where a chmod was all it took
    from segmentation.run_setup import check_config, check_kept_decoder

    run = _resumable_run(tiny_dataset, tmp_path)
    unsearchable(run)
    with pytest.raises(OSError) as error:
        check_kept_decoder({"rows": [{"epoch": 0, "val_iou": 0.5}], "best_iou": 0.5}, run)
    assert error.value.filename == str(run / "decoder.pt")
    unsearchable(tiny_dataset.parent)
    with pytest.raises(PermissionError) as error:
        check_config(_config(tiny_dataset, tmp_path), run)
    assert error.value.filename == str(tiny_dataset)


def test_a_data_link_loop_given_with_resume_is_named_as_one(tiny_dataset, tmp_path, capsys, link_loop):
    # it said 'data=<loop> does not exist (given with --resume <run>)': the loop looked like nothing there
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"state")
    save_config(_config(tiny_dataset, tmp_path), run / "args.yaml")
    assert main(["--resume", str(run), f"data={link_loop / 'set'}"]) == 2
    err = capsys.readouterr().err
    assert_link_loop_line(err, f"data={link_loop / 'set'} (given with --resume {run}): ", link_loop)


def test_a_home_folder_in_out_and_cache_dir_is_expanded(tmp_path, monkeypatch):
    # "out: ~/runs" in a config file, or out='~/runs' quoted, trained into a folder named "~" here, and
    # data=~/... was refused as missing
    from segmentation.train_config import load_train_config

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config_file = tmp_path / "c.yaml"
    config_file.write_text("out: ~/runs/sam\n", encoding="utf-8")
    config = load_train_config(config_file, ["cache_dir=~/cache", "data=~/sets/lot_7", "checkpoint=~/w.pt"])
    assert (config["out"], config["cache_dir"]) == (f"{tmp_path}/home/runs/sam", f"{tmp_path}/home/cache")
    assert (config["data"], config["checkpoint"]) == (f"{tmp_path}/home/sets/lot_7", f"{tmp_path}/home/w.pt")
    assert load_train_config(None, ["out=runs/~x"])["out"] == "runs/~x"  # only a leading ~ is the home
    # ~ and a name that is no user's is a folder of that name, as in a shell (Path.expanduser raised
    # RuntimeError: a traceback)
    assert load_train_config(None, ["out=~lot_7_no_such_user"])["out"] == "~lot_7_no_such_user"


def test_a_home_folder_in_out_with_no_home_folder_is_one_line(monkeypatch):
    # a container run with an arbitrary user id and no HOME: out=~/runs trained into a folder named '~'
    from segmentation.train_config import load_train_config

    without_home(monkeypatch)
    with pytest.raises(UserError, match="^~/runs: no home folder: HOME is not set .* set HOME"):
        load_train_config(None, ["out=~/runs"])


@pytest.mark.parametrize("name", ["last.pt", "decoder.pt"])
def test_resume_given_a_file_of_the_run_names_its_folder(tmp_path, capsys, name):
    # --resume run/last.pt read "nothing to resume in run/last.pt: no last.pt", with last.pt right there
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"state")
    (run / "decoder.pt").write_bytes(b"decoder")
    assert main(["--resume", str(run / name)]) == 2
    assert capsys.readouterr().err == (
        f"error: --resume takes a run folder, not the file {run / name}: pass --resume {run}\n"
    )
    (run / "last.pt").unlink()
    (run / "decoder.pt").rename(run / "other.pt")
    assert main(["--resume", str(run / "other.pt")]) == 2
    assert capsys.readouterr().err == (
        f"error: --resume takes a run folder, not the file {run / 'other.pt'}, the one holding its last.pt\n"
    )


def test_the_readmes_config_path_is_read_from_another_working_folder(tmp_path, monkeypatch):
    # 'cannot read config configs/segmentation/sam_decoder.yaml: [Errno 2] ...' outside the checkout
    seen = {}
    monkeypatch.setattr(train_module, "train", lambda config, resume: seen.setdefault("config", config))
    monkeypatch.chdir(tmp_path)
    assert main(["--config", "configs/segmentation/sam_decoder.yaml", "data=d", "lr=0.5"]) == 0
    assert (seen["config"]["data"], seen["config"]["lr"], seen["config"]["epochs"]) == ("d", 0.5, 10)


def test_a_run_stopped_during_epoch_1_resumes_from_epoch_0(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch
):
    # it left decoder.pt (the untuned decoder) and args.yaml but no last.pt: "nothing to resume"
    straight = train(_config(tiny_dataset, tmp_path, "name=straight"), sam=tiny_sam_builder())

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(train_module, "run_epoch", stopped)
        with pytest.raises(KeyboardInterrupt):
            train(_config(tiny_dataset, tmp_path, "name=cut"), sam=tiny_sam_builder())
    cut = tmp_path / "runs" / "cut"
    assert [int(r["epoch"]) for r in _rows(cut / "results.csv")] == [0]
    train(load_config(DEFAULTS, cut / "args.yaml"), resume=cut, sam=tiny_sam_builder())

    def scores(run: Path) -> list[tuple[str, str, str]]:
        return [(r["epoch"], r["train_loss"], r["val_iou"]) for r in _rows(run / "results.csv")]

    assert scores(cut) == scores(straight)


def test_a_ctrl_c_names_the_command_that_goes_on(tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys):
    # it printed only "interrupted": the folder and --resume were left for the user to find
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "run_epoch", interrupt)
    config = _config(tiny_dataset, tmp_path, "name=stopped", "epochs=3")
    with pytest.raises(KeyboardInterrupt):
        train(config, sam=tiny_sam)
    folder = tmp_path / "runs" / "stopped"
    assert (folder / "last.pt").is_file()  # epoch 0's: the resume point
    err = capsys.readouterr().err
    assert (
        f"stopped; go on from the last finished epoch with: python -m segmentation.train --resume {folder}\n"
        in err
    )
    with pytest.raises(KeyboardInterrupt):  # a --folds round: resumed whole by --folds --resume
        train({**config, "exist_ok": True}, sam=tiny_sam, resume_hint=False)
    assert "stopped" not in capsys.readouterr().err


def test_the_training_loop_refreshes_its_marker_between_steps_and_after_each_epoch(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch
):
    # the marker was written once: another machine's training past 24 h looked stale and was taken over
    from segmentation.run_folder import MARK_REFRESH_S

    folder, ages = tmp_path / "runs" / "marked", []
    step, finish_epoch = train_module.train_step, train_module.finish_epoch

    def marker_age() -> float:
        (marker,) = folder.glob(".training.*.tmp")
        return time.time() - marker.stat().st_mtime

    def aged(marker_of: Path) -> None:
        (marker,) = marker_of.glob(".training.*.tmp")
        then = time.time() - 2 * 24 * 3600  # as if the run had gone on for two days since
        os.utime(marker, (then, then))

    def step_then_age(run, *args):
        loss = step(run, *args)
        aged(run.folder)
        return loss

    def finish_then_look(run, state, row):
        ages.append(("before", marker_age()))  # the last step's refresh, then aged by step_then_age
        aged(run.folder)
        finish_epoch(run, state, row)
        ages.append(("after", marker_age()))

    monkeypatch.setattr(train_module, "train_step", step_then_age)
    monkeypatch.setattr(train_module, "finish_epoch", finish_then_look)
    train(_config(tiny_dataset, tmp_path, "name=marked", "epochs=2"), sam=tiny_sam)
    assert [when for when, _ in ages] == ["before", "after"] * 2
    assert all(age < MARK_REFRESH_S for _, age in ages), ages
    assert not list(folder.glob(".training.*.tmp"))  # removed at the end, as before


def test_a_ctrl_c_while_the_cache_fills_says_how_many_embeddings_are_kept(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys
):
    # it printed 'interrupted' alone, as segmentation.embed did: whether the encoded images were lost
    from segmentation import run_setup

    monkeypatch.setattr(run_setup, "load_model", lambda config, sam, device: (tiny_sam, None))
    forward = tiny_sam.image_encoder.forward
    interrupted_on_third_batch, calls = interrupting(forward, after=2)

    argv = [f"data={tiny_dataset}", f"out={tmp_path / 'runs'}", f"cache_dir={tmp_path / 'cache'}"]
    argv += ["device=cpu", "progress=false", "epochs=1", "embed_batch_size=1"]
    with monkeypatch.context() as patch:
        patch.setattr(tiny_sam.image_encoder, "forward", interrupted_on_third_batch)
        assert main(argv) == 130
    (folder,) = [path for path in (tmp_path / "cache").iterdir() if path.is_dir()]
    stopped, interrupted = capsys.readouterr().err.splitlines()[-2:]
    line = re.fullmatch(
        rf"stopped: 2 of (\d+) images are in the cache {re.escape(str(folder))} \(2 encoded by this run, "
        r"kept\); the same command again encodes only the other (\d+)",
        stopped,
    )
    assert line and interrupted == "interrupted", stopped
    n, rest = int(line[1]), int(line[2])
    assert rest == n - 2 and len(list(folder.glob("*.pt"))) == 2
    calls.clear()
    with monkeypatch.context() as patch:
        patch.setattr(tiny_sam.image_encoder, "forward", lambda x: calls.append(1) or forward(x))
        assert main(argv) == 0
    assert len(calls) == rest  # the two kept are not encoded again


def test_a_ctrl_c_before_the_first_resume_point_names_no_resume(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys
):
    # stopped while epoch 0 is scored: no last.pt, so --resume would be refused ("nothing to resume")
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "validate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_dataset, tmp_path, "name=early", "epochs=3"), sam=tiny_sam)
    assert not (tmp_path / "runs" / "early" / "last.pt").exists()
    assert "--resume" not in capsys.readouterr().err


def test_missing_official_weights_name_the_checkpoint_config_key(tmp_path, monkeypatch):
    # segmentation.train takes the base weights as the config key checkpoint=, not a --checkpoint flag
    import urllib.request

    from segmentation.run_setup import load_model

    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError) as error:
        load_model({"model": "vit_b", "checkpoint": None}, None, torch.device("cpu"))
    assert str(error.value).endswith(f"pass checkpoint=PATH or put it in {tmp_path / 'cache' / 'weights'}")


def test_the_split_fingerprint_changes_with_either_split_and_not_with_the_folder() -> None:
    # a val split converted again (the same train photos) compared val IoUs across two val sets
    from types import SimpleNamespace

    from segmentation.run_setup import split_fingerprint

    def split(name: str, *files: str) -> SimpleNamespace:
        return SimpleNamespace(name=name, images=[SimpleNamespace(path=Path(f)) for f in files])

    fingerprint = split_fingerprint(split("train", "d/a.png", "d/b.png"), split("val", "d/c.png"))
    assert fingerprint != split_fingerprint(split("train", "d/a.png", "d/b.png"), split("val", "d/b.png"))
    assert fingerprint != split_fingerprint(split("train", "d/a.png", "d/c.png"), split("val", "d/c.png"))
    # moved elsewhere, listed in another order: the same split
    assert fingerprint == split_fingerprint(split("train", "e/b.png", "e/a.png"), split("val", "e/c.png"))


def test_an_override_without_a_value_is_refused(tiny_dataset, tmp_path, capsys):
    # `cache_dir=$CACHE` with CACHE unset: YAML read the empty value as null, the default cache was used
    assert main([f"data={tiny_dataset}", f"out={tmp_path / 'runs'}", "cache_dir=", "epochs=1"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: override 'cache_dir=' has no value (an unset shell variable?): write cache_dir=null "
        "to unset 'cache_dir' explicitly\n"
    )
    assert not (tmp_path / "runs").exists()


def _defects_step(data: Path, split: str, origin: str) -> str | None:
    """What a converted data set of ``origin`` is told to do for defects in ``split``; None made elsewhere."""
    if origin == "drawn":
        return f"convert with more defect images or a larger {split} fraction (--split TRAIN VAL TEST)"
    if origin == "layout":
        return (
            "convert it again drawing a split (--split TRAIN VAL TEST, not --split-from-layout or --splits: "
            f"{data / 'splits.json'} records a split nobody drew), or with defect images in its {split} split"
        )
    return None


def _with_splits_record(data: Path, tiny_dataset: Path, origin: str) -> None:
    """``data``'s splits.json: the tiny set's drawn one, one nobody drew (--split-from-layout), another
    tool's, or none."""
    if origin == "another tool's":  # not the converters' record: its COCO files were made elsewhere too
        (data / "splits.json").write_text(json.dumps({"version": "1.0", "train": ["lot_1/0001.png"]}))
    elif origin != "made elsewhere":
        record = json.loads((tiny_dataset / "splits.json").read_text())
        if origin == "layout":  # no seed, ratios nor background_ratio
            record = {key: record[key] for key in ("version", "train", "val", "test")}
        (data / "splits.json").write_text(json.dumps(record))


ORIGINS = ["drawn", "layout", "made elsewhere", "another tool's"]


@pytest.mark.parametrize("origin", ORIGINS)
def test_a_train_split_without_defects_is_told_the_way_on(tiny_dataset, tmp_path, origin):
    # the line ended "the train split of <data> has no defect instances", without a next step; a split the
    # layout gave (MVTec AD's train/ holds good photos alone) was told of --split fractions it does not take
    from segmentation.run_setup import load_training_data

    data = tmp_path / "data"
    (data / "annotations").mkdir(parents=True)
    (data / "images").symlink_to(tiny_dataset / "images")
    for split in ("train", "val"):
        shutil.copy(tiny_dataset / "annotations" / f"instances_{split}.json", data / "annotations")
    _with_splits_record(data, tiny_dataset, origin)
    train = data / "annotations" / "instances_train.json"
    train.write_text(json.dumps({**json.loads(train.read_text()), "annotations": []}))
    with pytest.raises(UserError) as error:
        load_training_data(data)
    way = _defects_step(data, "train", origin) or f"give {train} annotated images"
    assert str(error.value) == f"the train split of {data} has no defect instances to fine-tune on: {way}"


@pytest.mark.parametrize("origin", ORIGINS)
def test_a_val_split_without_defects_is_told_the_way_on_its_origin_allows(tiny_dataset, tmp_path, origin):
    # COCO files made by hand or by another tool were told to convert with a larger val fraction
    from segmentation.run_setup import load_training_data

    data = tmp_path / "data"
    (data / "annotations").mkdir(parents=True)
    (data / "images").symlink_to(tiny_dataset / "images")
    for split in ("train", "val"):
        shutil.copy(tiny_dataset / "annotations" / f"instances_{split}.json", data / "annotations")
    _with_splits_record(data, tiny_dataset, origin)
    val = data / "annotations" / "instances_val.json"
    coco = json.loads(val.read_text())
    val.write_text(json.dumps({**coco, "annotations": []}))
    with pytest.raises(UserError) as error:
        load_training_data(data)
    way = _defects_step(data, "val", origin) or f"give {val} annotated images (from instances_train.json)"
    assert str(error.value) == (
        f"the val split of {data} has no defect instances: validation IoU picks the best epoch and stops "
        f"early, so {way}"
    )


def test_a_folds_round_prints_none_of_a_single_runs_closing_hints(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # each round of segmentation.evaluate --folds printed 'evaluate with: python -m segmentation.evaluate
    # --data .../folds/fold0 --checkpoint ...' and the 'decoder.pt, sam_finetuned.pth, ... in' line: that
    # command evaluates every round itself
    from segmentation import crossval, run_setup

    monkeypatch.setattr(run_setup, "load_model", lambda config, sam, device: (tiny_sam_builder(), None))
    monkeypatch.setattr(crossval, "load_sam", lambda *args, **kwargs: None)
    monkeypatch.setattr(crossval, "load_round_model", lambda run_dir, config: (None, None))
    monkeypatch.setattr(crossval, "load_colour_prompt", lambda path: None)
    monkeypatch.setattr(crossval, "score_round", lambda *args, **kwargs: ("zero-shot", "fine-tuned"))
    config = _config(tiny_dataset, tmp_path, "epochs=1", "max_steps=1", "corrective_rounds=0")
    crossval.cross_validate(tiny_dataset, 3, config, work=tmp_path / "work")
    out, err = capsys.readouterr()
    for round_dir in (tmp_path / "work" / "runs").iterdir():
        assert (round_dir / "decoder.pt").is_file()  # trained: the lines would have named it
    assert "evaluate with:" not in out + err
    assert "sam_finetuned.pth" not in out + err
    assert len(re.findall(r"^best val IoU [0-9.]+ at epoch [01].*\(kept\)$", err, re.M)) == 3
    # a plain run still ends with them
    run = train(_config(tiny_dataset, tmp_path, "epochs=1", "max_steps=1"), sam=tiny_sam_builder())
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3].endswith(" (kept); decoder.pt, sam_finetuned.pth, results.csv, curves.png in")
    assert lines[-2:-1] == [f"  {run}"] and lines[-1].startswith("evaluate with: python -m segmentation.")


def test_a_single_split_round_prints_none_of_a_single_runs_closing_hints(
    tiny_dataset, tiny_sam_builder, tmp_path, monkeypatch, capsys
):
    # crossval.single_split (bench/sam_quality.py's one round on the converter's split) scores its round
    # itself, yet it printed the files line and 'evaluate with: python -m segmentation.evaluate ...'
    from segmentation import crossval, run_setup

    monkeypatch.setattr(run_setup, "load_model", lambda config, sam, device: (tiny_sam_builder(), None))
    monkeypatch.setattr(crossval, "load_sam", lambda *args, **kwargs: None)
    monkeypatch.setattr(crossval, "load_round_model", lambda run_dir, config: (None, None))
    monkeypatch.setattr(crossval, "load_colour_prompt", lambda path: None)
    monkeypatch.setattr(crossval, "score_round", lambda *args, **kwargs: ("zero-shot", "fine-tuned"))
    config = _config(tiny_dataset, tmp_path, "epochs=1", "max_steps=1", "corrective_rounds=0")
    [result] = crossval.single_split(tiny_dataset, config, work=tmp_path / "work")
    out, err = capsys.readouterr()
    assert (result.run_dir / "decoder.pt").is_file()  # trained: the lines would have named it
    assert "evaluate with:" not in out + err
    assert "sam_finetuned.pth" not in out + err
    assert len(re.findall(r"^best val IoU [0-9.]+ at epoch [01].*\(kept\)$", err, re.M)) == 1
