"""Detection tests run with the network blocked, on a tiny synthetic data set made once per module."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from converters.convert import ConvertConfig, convert
from converters.synthetic import SyntheticConfig, generate


@pytest.fixture(autouse=True)
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every detection test runs offline: name lookups and connections fail and are recorded here.

    Unix-domain sockets stay usable (local IPC is not the network).
    """
    attempts: list[str] = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse_lookup(host, *args, **kwargs):
        attempts.append(f"getaddrinfo {host}")
        raise socket.gaierror(socket.EAI_NONAME, "network blocked in tests")

    def refuse_create(address, *args, **kwargs):
        attempts.append(f"create_connection {address}")
        raise OSError("network blocked in tests")

    def guard(original):
        def refuse_connect(self, address, *args, **kwargs):
            if self.family == getattr(socket, "AF_UNIX", None):
                return original(self, address, *args, **kwargs)
            attempts.append(f"connect {address}")
            raise OSError("network blocked in tests")

        return refuse_connect

    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket, "create_connection", refuse_create)
    monkeypatch.setattr(socket.socket, "connect", guard(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(connect_ex))
    return attempts


#: 64-px synthetic nuts: 2 images per defect type (1 train, 1 val), 4 good ones as backgrounds.
TINY_SYNTHETIC = SyntheticConfig(size=64, n_train_good=2, n_test_good=2, n_per_defect=2)


def make_tiny_dataset(folder: Path, ratios: tuple[float, float, float] = (0.5, 0.5, 0.0)) -> Path:
    """Draws the tiny synthetic category and converts it to YOLO + COCO; returns the data set folder.

    ``ratios``: the converter's ``--split`` (train, val, test); ``(1, 0, 0)`` leaves val empty.
    """
    root = generate(folder / "mvtec", TINY_SYNTHETIC, progress=False)
    out = folder / "synthetic_nut"
    convert(ConvertConfig(root, out, formats=("yolo", "coco"), ratios=ratios, progress=False))
    return out


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A converted tiny synthetic_nut data set (data.yaml, splits.json, COCO); shared by a module's tests."""
    return make_tiny_dataset(tmp_path_factory.mktemp("detection-data"))


#: Files named like weights that are not ultralytics checkpoints (each fails inside torch or ultralytics).
BAD_WEIGHTS = ("random bytes", "text", "zip without torch records", "torch dict without a model", "empty")


def as_12_bit_data(photo: Path) -> Path:
    """Rewrites ``photo`` (a copy's link is replaced, its target kept) as a 16-bit PNG of 12-bit camera data:
    values ``x16``, up to 4080, which OpenCV (so ultralytics) reads as grey levels 0-15."""
    pixels = cv2.imread(str(photo)).astype(np.uint16) * 16
    photo.unlink()
    cv2.imwrite(str(photo), pixels)
    return photo


def jpeg_without_end_marker(photo: Path) -> tuple[Path, bytes]:
    """Replaces ``photo`` (a copy's link: its target kept) by a JPEG of it with two bytes after its end
    marker, which ultralytics' scan re-saves in place ("corrupt JPEG restored and saved"); the JPEG and its
    bytes."""
    content = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes() + b"\0\0"
    photo.unlink()
    image = photo.with_suffix(".jpg")
    image.write_bytes(content)
    return image, content


def copy_with_names(dataset: Path, copy: Path, names: dict[int, str]) -> Path:
    """A copy of ``dataset`` (images linked) whose data.yaml gives ``names``; returns its data.yaml."""
    shutil.copytree(dataset, copy, symlinks=True)
    data = yaml.safe_load((copy / "data.yaml").read_text())
    (copy / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(copy), "names": names}))
    return copy / "data.yaml"


def write_bad_weights(path: Path, kind: str) -> Path:
    """Writes a file of one :data:`BAD_WEIGHTS` kind at ``path`` (``best.pt``, say) and returns it."""
    import zipfile

    import numpy as np
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "text":
        path.write_text("these are not the weights you are looking for\n")
    elif kind == "zip without torch records":  # torch's format is a zip: this one lacks its records
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("best/data.pkl", b"not a pickle")
    elif kind == "torch dict without a model":  # a valid torch file of another program
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return path


@pytest.fixture(params=BAD_WEIGHTS)
def bad_weights(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A ``best.pt`` that is not a checkpoint, one test per :data:`BAD_WEIGHTS` kind."""
    return write_bad_weights(tmp_path / "bad" / "best.pt", request.param)


def cuda_machine_device(device: object, **kwargs: object):
    """ultralytics' ``select_device`` on a CUDA machine, without asking CUDA: ``''`` (its default) is torch's
    current CUDA device, ``cuda:0`` in a new process; ``1`` or ``1,0`` is ``cuda:1``."""
    import torch

    return torch.device("cuda", int(str(device).split(",")[0] or 0))


def idle_gpus_found(monkeypatch: pytest.MonkeyPatch, idle: list[int]) -> list[str]:
    """Two CUDA devices seen, ultralytics' search for idle GPUs finding ``idle`` (no NVML asked), and every
    ``select_device`` (ours, its predictor's, its validator's) recorded into the list returned: ours is
    :func:`cuda_machine_device`, its predictor's and validator's the CPU, to run here."""
    import torch
    from ultralytics.engine import predictor, validator
    from ultralytics.utils import autodevice, torch_utils

    monkeypatch.setattr("common.devices.cuda_devices_visible", lambda: 2)
    monkeypatch.setattr(autodevice.GPUInfo, "__init__", lambda self: None)
    monkeypatch.setattr(autodevice.GPUInfo, "__del__", lambda self: None)
    monkeypatch.setattr(autodevice.GPUInfo, "select_idle_gpu", lambda self, count, **kwargs: list(idle))
    asked: list[str] = []

    def ours(device: object, **kwargs: object) -> torch.device:
        asked.append(str(device))
        return cuda_machine_device(device)

    def theirs(device: object, **kwargs: object) -> torch.device:
        asked.append(str(device))
        return torch.device("cpu")

    monkeypatch.setattr(torch_utils, "select_device", ours)
    for module in (predictor, validator):
        monkeypatch.setattr(module, "select_device", theirs)
    return asked
