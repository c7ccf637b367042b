"""Bad input through the real command lines: one ``error:`` line, exit 2, nothing written, input untouched.

Each test module here walks one package's entry points in subprocesses (the way a
user meets them, with the network blocked) and checks the promise of the README:

    result = run_cli("converters.mvtec2yolo", "--root", root, "--out", out)
    assert_user_error(result, "two masks for one stem")

A parametrized check with many bad values runs its first case that way and the others
through :func:`call_main`: the same ``main()`` in the test's process, without a torch
import each.

:func:`tree_state` snapshots a folder (paths, sizes, mtimes and hashes) so a test
can assert that a failed run left the input untouched and wrote nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[2]

# Executed first in every subprocess: any socket use fails, as on a machine without network.
_BLOCK_NETWORK = """
import socket
def _refuse(*args, **kwargs):
    raise OSError("network blocked by the reliability tests")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.getaddrinfo = _refuse
socket.create_connection = _refuse
"""


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(module: str, *args: object, cwd: Path | None = None, timeout: float = 300, env=None) -> CliResult:
    """``python -m module args...`` in a subprocess with the network blocked; never raises on failure.

    The child gets a sitecustomize-free interpreter whose sockets refuse to connect, the
    repository on ``PYTHONPATH``, and ultralytics' settings in a throw-away folder. The
    ultralytics switches (``YOLO_AUTOINSTALL``, ``YOLO_OFFLINE``) are *removed* from the
    environment, so the project's own defaults are what is tested.
    """
    child_env = dict(os.environ)
    child_env.pop("YOLO_AUTOINSTALL", None)
    child_env.pop("YOLO_OFFLINE", None)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), child_env.get("PYTHONPATH")]))
    child_env.setdefault(
        "YOLO_CONFIG_DIR", os.environ.get("YOLO_CONFIG_DIR", str(REPO / "runs" / "yolo-config"))
    )
    child_env["PYTHONWARNINGS"] = "ignore"
    child_env.update(env or {})
    code = _BLOCK_NETWORK + f"import runpy, sys\nsys.argv = [{module!r}] + sys.argv[1:]\n"
    code += f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=cwd or REPO,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def call_main(module: str, *args: object, env=None) -> CliResult:
    """``module.main(args)`` in this process, stdout and stderr captured, the network blocked.

    For the further cases of a parametrized test whose first case :func:`run_cli` runs end to end: the
    same ``main()`` and checks, without an interpreter start and a torch import (about 5 s a case).
    What only a fresh process shows (import-time switches, a library's own logging on stderr, the
    ``python -m`` wiring) is the subprocess case's to check.
    """
    imported = importlib.import_module(module)
    if not hasattr(imported, "main"):  # a package run by ``python -m``: its __main__ holds main()
        imported = importlib.import_module(f"{module}.__main__")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, env or {}))
        for name in ("connect", "connect_ex"):
            stack.enter_context(mock.patch.object(socket.socket, name, _refuse_network))
        for name in ("getaddrinfo", "create_connection"):
            stack.enter_context(mock.patch.object(socket, name, _refuse_network))
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        stack.enter_context(_torch_threads_kept())
        try:
            code = imported.main([str(arg) for arg in args])
        except SystemExit as stop:  # argparse's own refusals
            code = stop.code if isinstance(stop.code, int) else 1
    return CliResult(code, stdout.getvalue(), stderr.getvalue())


@contextlib.contextmanager
def _torch_threads_kept():
    """torch's thread count as it was before (``--threads`` sets it for the process)."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _refuse_network(*args, **kwargs):
    raise OSError("network blocked by the reliability tests")


def assert_user_error(result: CliResult, *fragments: str) -> str:
    """Exit code 2 and exactly one non-empty stderr line ``error: ...`` containing every fragment.

    stdout may carry progress or notes printed before the error was found, and stderr the layouts'
    ``note:`` lines before it, but no traceback anywhere. Returns the error line.
    """
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    context = f"exit {result.returncode}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 2, context
    assert "Traceback" not in result.stderr + result.stdout, context
    assert all(line.startswith("note: ") for line in lines[:-1]), context
    lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("error: "), context
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry below ``root`` (hidden ones too) -> (kind, size, mtime_ns, sha256 of files)."""
    state: dict[str, tuple] = {}
    if not root.exists():
        return state
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            state[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            state[relative] = ("dir",)
        else:
            stat = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            state[relative] = ("file", stat.st_size, stat.st_mtime_ns, digest)
    return state


@pytest.fixture
def unchanged():
    """``with unchanged(input_dir, out_parent): run...``: asserts both trees are the same afterwards."""
    from contextlib import contextmanager

    @contextmanager
    def watch(*folders: Path):
        before = [tree_state(folder) for folder in folders]
        yield
        after = [tree_state(folder) for folder in folders]
        for folder, old, new in zip(folders, before, after, strict=True):
            assert new == old, f"{folder} changed: {sorted(set(new.items()) ^ set(old.items()))[:5]}"

    return watch
