"""A command's ``--help`` (and any bad option, refused while parsing) comes back without the heavy imports.

torchvision imports ``torch._dynamo`` (its ops register with the compiler), and segment_anything
imports torchvision: at the top of a module they cost every command seconds on 2 cores before it
could print its help or name a bad option. They are imported where a model is built or run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (
    "detection.train", "detection.predict", "detection.evaluate",
    "segmentation.train", "segmentation.evaluate", "segmentation.predict", "segmentation.export",
    "inspection.predict", "inspection.evaluate",
    "anomaly.train", "anomaly.predict", "anomaly.evaluate",
)  # fmt: skip
HEAVY = ("torchvision", "torch._dynamo", "segment_anything")


def test_no_commands_help_imports_torchvision_or_segment_anything() -> None:
    script = (
        "import contextlib, io, runpy, sys\n"
        f"for module in {COMMANDS!r}:\n"
        "    sys.argv = [module, '--help']\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        runpy.run_module(module, run_name='__main__')\n"
        f"    print(module, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [f"{module} []" for module in COMMANDS]
