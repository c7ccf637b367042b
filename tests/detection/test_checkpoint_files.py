"""detection.checkpoint_files: a training stopped while it writes its weights keeps the earlier file whole."""

from __future__ import annotations

import os
import pathlib
from pathlib import Path

import pytest
import torch

import common.io
from common.cli import exit_code
from common.io import load_torch
from detection import checkpoint_files
from detection.train import train
from detection.train_config import build_config
from tests.detection.test_train import YOLO11_CONFIG, tiny_run


def stop_halfway(data: bytes, file) -> None:
    """Writes the first half of ``data`` to ``file`` and raises KeyboardInterrupt: a Ctrl-C mid-write."""
    file.write(data[: len(data) // 2])
    file.flush()
    raise KeyboardInterrupt


def interrupt_writes_of(monkeypatch: pytest.MonkeyPatch, name: str, *, skip: int = 0) -> None:
    """The ``skip + 1``-th write of a file named ``name`` (or of its temporary) stops half-way.

    Both ways the bytes of a ``last.pt`` can reach the disk are covered: ultralytics' own
    ``Path.write_bytes`` and :func:`common.io.atomic_write`'s ``open``.
    """
    seen = []

    def is_target(path: object) -> bool:
        if Path(path).name != name and not Path(path).name.startswith(f".{name}."):
            return False
        seen.append(path)
        return len(seen) == skip + 1

    write_bytes = pathlib.Path.write_bytes

    def cut_write_bytes(self: Path, data: bytes) -> int:
        if not is_target(self):
            return write_bytes(self, data)
        with open(self, "wb") as file:
            stop_halfway(bytes(data), file)

    class CutFile:
        def __init__(self, file) -> None:
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            stop_halfway(bytes(data), self.file)

    def cut_open(path, mode="r", *args, **kwargs):
        file = open(path, mode, *args, **kwargs)
        writes = "b" in mode and ("w" in mode or "x" in mode)
        return CutFile(file) if writes and is_target(path) else file

    monkeypatch.setattr(pathlib.Path, "write_bytes", cut_write_bytes)
    monkeypatch.setattr(common.io, "open", cut_open, raising=False)


def test_a_ctrl_c_while_last_pt_is_written_keeps_the_previous_epochs(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # ultralytics wrote last.pt in place: stopped in epoch 2's save, it was cut short, and the Ctrl-C line
    # named it as the last finished epoch to train on from
    interrupt_writes_of(monkeypatch, "last.pt", skip=1)
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "epochs=2", "name=cut")
    with pytest.raises(KeyboardInterrupt):
        train(build_config(YOLO11_CONFIG, overrides))
    weights = tmp_path / "runs" / "cut" / "weights"
    assert load_torch(weights / "last.pt", weights_only=False)["epoch"] == 0  # epoch 1's, whole
    assert sorted(path.name for path in weights.iterdir()) == ["best.pt", "last.pt"]  # no temporary left
    assert "holds the last finished epoch" in capsys.readouterr().err


def test_a_ctrl_c_while_an_epoch_file_is_written_leaves_none_cut_short(
    tiny_dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    # save_period's weights/epoch<N>.pt were written in place (save_model: (self.wdir / ...).write_bytes):
    # stopped mid-write, epoch1.pt was left cut short beside the whole ones
    interrupt_writes_of(monkeypatch, "epoch1.pt")
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "epochs=2", "save_period=1", "name=ep")
    with pytest.raises(KeyboardInterrupt):
        train(build_config(YOLO11_CONFIG, overrides))
    weights = tmp_path / "runs" / "ep" / "weights"
    assert sorted(path.name for path in weights.iterdir()) == ["best.pt", "epoch0.pt", "last.pt"]
    assert load_torch(weights / "epoch0.pt", weights_only=False)["epoch"] == 0  # whole
    assert load_torch(weights / "last.pt", weights_only=False)["epoch"] == 1  # written before epoch1.pt


def test_a_ctrl_c_while_the_optimizer_is_stripped_keeps_best_pt(
    tiny_dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    # at the end ultralytics rewrote best.pt without its optimizer, in place: a Ctrl-C then lost the weights
    # of the whole training
    save = torch.save

    def cut_save(obj: object, f: object, *args, **kwargs) -> None:
        if isinstance(f, str | Path) and Path(f).name.lstrip(".").startswith("best.pt"):
            with open(f, "wb") as file:
                save(obj, file, *args, **kwargs)
                file.truncate(file.tell() // 2)
            raise KeyboardInterrupt
        save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", cut_save)
    overrides = tiny_run(tiny_dataset, tmp_path, "model=yolo11n.yaml", "name=strip", "exist_ok=true")
    with pytest.raises(KeyboardInterrupt):
        train(build_config(YOLO11_CONFIG, overrides))
    weights = tmp_path / "runs" / "strip" / "weights"
    assert load_torch(weights / "best.pt", weights_only=False)["optimizer"] is not None  # the epoch's, whole
    assert load_torch(weights / "last.pt", weights_only=False)["optimizer"] is None  # stripped before it
    assert sorted(path.name for path in weights.iterdir()) == ["best.pt", "last.pt"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_while_the_optimizer_is_stripped_is_one_line_and_keeps_best_pt(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    # torch's file writer raised 'RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos
    # 704 vs 598' on a full disk, which detection.train showed as a traceback
    from ultralytics.utils import torch_utils

    best = tmp_path / "best.pt"
    torch.save({"model": torch.nn.Linear(2, 2), "optimizer": {"lr": 0.1}, "epoch": 4}, best)
    on_full_disk = tmp_path / ".best.pt.on-a-full-disk.tmp"
    on_full_disk.symlink_to("/dev/full")
    monkeypatch.setattr(checkpoint_files, "temporary_path", lambda path: on_full_disk)
    strip_optimizer = checkpoint_files._atomic_strip(torch_utils.strip_optimizer)
    assert exit_code(lambda: strip_optimizer(best)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {best} without its optimizer: ") and err.count("\n") == 1
    assert err.endswith(" MB free on its disk; best.pt is kept as it was, optimizer included\n")
    assert load_torch(best, weights_only=False)["optimizer"] == {"lr": 0.1}  # whole
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.pt"]  # no temporary left


DDP_WORKER = """
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path = {path!r}  # as ultralytics' DDP file sets it
import torch

from ultralytics.utils.patches import torch_load

state = torch_load({state!r}, map_location="cpu")  # the DDP file's load of the pickled trainer state
weights = Path({weights!r})
trainer = SimpleNamespace(last=weights / "last.pt", best=weights / "best.pt", wdir=weights)
for callback in state["callbacks"]["on_pretrain_routine_end"]:  # run by the worker's _setup_train
    callback(trainer)
save = torch.save


def cut_save(obj, f, *args, **kwargs):  # a Ctrl-C half-way through writing best.pt (or its temporary)
    if Path(f).name.lstrip(".").startswith("best.pt"):
        with open(f, "wb") as file:
            save(obj, file, *args, **kwargs)
            file.truncate(file.tell() // 2)
        raise KeyboardInterrupt
    save(obj, f, *args, **kwargs)


torch.save = cut_save
from ultralytics.engine import trainer as engine

try:
    engine.strip_optimizer(trainer.best)  # final_eval's, on rank 0
except KeyboardInterrupt:
    print("stopped")
"""


def test_a_ddp_worker_strips_the_optimizer_atomically_too(tmp_path: Path) -> None:
    # multi-GPU training runs in torch.distributed workers started from a file ultralytics writes
    # (ultralytics.utils.dist.generate_ddp_file): they load the trainer's callbacks from a pickled state but
    # never enter atomic_checkpoints, so the worker's final strip_optimizer rewrote best.pt in place and a
    # Ctrl-C there lost it. The state is pickled with cloudpickle, as ultralytics does (a dependency: its
    # DDP launch would pip-install it, which fails offline).
    import subprocess
    import sys

    import cloudpickle

    from detection.checkpoint_files import atomic_weights

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save({"model": torch.nn.Linear(2, 2), "optimizer": {"lr": 0.1}, "epoch": 4}, weights / "best.pt")
    state = tmp_path / "_temp_ddp.pt"
    torch.save({"callbacks": {"on_pretrain_routine_end": [atomic_weights]}}, state, pickle_module=cloudpickle)
    worker = DDP_WORKER.format(path=sys.path, state=str(state), weights=str(weights))
    # as torch.distributed.run sets them for the first of two workers (ultralytics reads RANK only then)
    env = {**os.environ, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2"}
    done = subprocess.run(
        [sys.executable, "-c", worker], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("stopped"), done.stderr
    assert load_torch(weights / "best.pt", weights_only=False)["optimizer"] == {"lr": 0.1}  # whole
    assert sorted(path.name for path in weights.iterdir()) == ["best.pt"]  # no temporary left


def test_a_multi_gpu_launch_finds_cloudpickle_installed() -> None:
    # ultralytics' DDP launch (generate_ddp_file) pip-installs cloudpickle when it is missing: offline,
    # a multi-GPU training failed at its start; it is a dependency of the train extra
    from ultralytics.utils.checks import check_requirements

    assert check_requirements("cloudpickle>=3.1.1", install=False)
