"""`make setup`: a python3 that cannot make a venv with pip (Debian's without python3-venv); the disk check.

Runs the Makefile on a copy of it (with pyproject.toml, which its stamp depends on) in a temporary
folder; nothing is installed: each case stops before pip would run.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_setup(folder: Path, python: str) -> subprocess.CompletedProcess:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(REPO / name, folder / name)
    return subprocess.run(
        ["make", "--no-print-directory", "setup", f"PYTHON={python}"],
        cwd=folder, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_venv_without_pip_is_named_with_the_fix(tmp_path: Path) -> None:
    venv.EnvBuilder(with_pip=False).create(tmp_path / ".venv")  # left by a python3 without ensurepip
    done = make_setup(tmp_path, sys.executable)
    assert done.returncode != 0
    assert "error: .venv has no pip" in done.stderr and "rm -rf .venv" in done.stderr, done.stderr
    assert "No module named pip" not in done.stderr


def test_a_failed_venv_is_not_left_behind(tmp_path: Path) -> None:
    if shutil.disk_usage(tmp_path).free < 7 * 2**30:
        pytest.skip("make setup asks for 7 GiB free before it makes the venv")
    # python3 as Debian ships it without python3-venv: `-m venv` makes the folder, then fails on ensurepip.
    fake = tmp_path / "python3"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then\n'
        f'    "{sys.executable}" -m venv --without-pip "$3"\n'
        '    echo "The virtual environment was not created: ensurepip is not available." >&2\n'
        "    exit 1\n"
        "fi\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    first = make_setup(tmp_path, str(fake))
    assert first.returncode != 0 and "ensurepip is not available" in first.stderr, first.stderr
    assert not (tmp_path / ".venv").exists()
    again = make_setup(tmp_path, str(fake))  # after the user installs python3-venv this one would succeed
    assert "ensurepip is not available" in again.stderr and "No module named pip" not in again.stderr


def fake_venv(folder: Path, torch: str | None) -> None:
    """A .venv/bin/python with pip and ``torch`` (a version; None: none) that stops where pip installs."""
    site = folder / "fake-site"
    site.mkdir()
    pins = {"torch": torch, "torchvision": "0.29.1"}
    for name, version in pins.items():
        if version is not None:
            info = site / f"{name}-{version}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    python = folder / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '    "-m pip --version") exit 0 ;;\n'
        '    "-m pip install"*) echo "pip ran: $*" >&2; exit 3 ;;\n'
        "esac\n"
        f'PYTHONPATH="{site}" exec "{sys.executable}" -S "$@"\n'  # -S: this fake site only
    )
    python.chmod(python.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(
    ("torch", "refused"),
    [
        ("2.14.1", False),  # pyproject.toml changed: little to fetch
        ("2.14.1+cu128", False),  # a local build of the pinned version: pip keeps it
        ("2.0.0", True),  # the torch pin changed: pip fetches a new torch, gigabytes
        (None, True),  # no torch at all
    ],
)
def test_a_built_venv_is_asked_for_7_gib_only_when_torch_must_be_fetched(
    tmp_path: Path, torch: str | None, refused: bool
) -> None:
    fake_venv(tmp_path, torch)
    python3 = tmp_path / "python3"  # the system python3, on a disk with 5 GiB free
    python3.write_text(
        f"#!{sys.executable}\n"
        "import collections, shutil, sys\n"
        "usage = collections.namedtuple('usage', 'total used free')\n"
        "shutil.disk_usage = lambda path: usage(100 * 2**30, 95 * 2**30, 5 * 2**30)\n"
        "assert sys.argv[1] == '-c', sys.argv\n"
        "exec(sys.argv[2])\n"
    )
    python3.chmod(python3.stat().st_mode | stat.S_IXUSR)
    done = make_setup(tmp_path, str(python3))
    assert done.returncode != 0
    if refused:
        assert "error: building .venv takes about 7 GiB of disk; 5.0 GiB free here" in done.stderr, (
            done.stderr
        )
        assert "pip ran" not in done.stderr
    else:
        assert "7 GiB" not in done.stderr and "pip ran: -m pip install" in done.stderr, done.stderr
