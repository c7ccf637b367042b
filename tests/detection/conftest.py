"""Detection tests run with the network blocked, on a tiny synthetic data set made once per module."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

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


def make_tiny_dataset(folder: Path) -> Path:
    """Draws the tiny synthetic category and converts it to YOLO + COCO; returns the data set folder."""
    root = generate(folder / "mvtec", TINY_SYNTHETIC, progress=False)
    out = folder / "synthetic_nut"
    convert(ConvertConfig(root, out, formats=("yolo", "coco"), ratios=(0.5, 0.5, 0.0), progress=False))
    return out


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A converted tiny synthetic_nut data set (data.yaml, splits.json, COCO); shared by a module's tests."""
    return make_tiny_dataset(tmp_path_factory.mktemp("detection-data"))
