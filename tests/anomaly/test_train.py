"""anomaly.train in-process: what it prints when a run is fit."""

from __future__ import annotations

import json
from pathlib import Path

from anomaly.train import main
from tests.anomaly.conftest import TINY

OVERRIDES = [f"{key}={value}" for key, value in TINY.items()]


def test_a_fit_ends_with_the_evaluate_command_that_gives_the_run_its_threshold(
    parts: Path, tmp_path: Path, capsys
) -> None:
    # it printed no next step, and anomaly.predict then refused the run for want of a threshold
    run = tmp_path / "my run"
    argv = ["--root", str(parts.parent), "--category", "part", "--out", str(run), "--no-progress"]
    assert main([*argv, *OVERRIDES]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"evaluate with: python -m anomaly.evaluate --run '{run}'"
    assert json.loads((run / "run.json").read_text())["protocol"]["data"] is None
