"""`make setup` on a python3 that cannot make a venv with pip (Debian's without python3-venv).

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
