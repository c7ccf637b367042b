"""detection.checkpoint_files: a training stopped while it writes its weights keeps the earlier file whole."""

from __future__ import annotations

import pathlib
from pathlib import Path

import pytest
import torch

import common.io
from common.io import load_torch
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
