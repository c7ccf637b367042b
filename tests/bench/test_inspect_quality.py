"""bench/inspect_quality.py: the command lines it runs (no model runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from segmentation.colour_head import ColourHead
from segmentation.finetuned import DECODER_FORMAT

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch):
    """The module, its ``run`` recording each command and writing the metrics.json it reads back."""
    monkeypatch.syspath_prepend(str(BENCH))  # it imports bench/report.py as ``report``
    import inspect_quality

    commands: list[list[str]] = []

    def run(command: list[str]) -> None:
        commands.append(command)
        out = Path(command[command.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({}))

    monkeypatch.setattr(inspect_quality, "run", run)
    inspect_quality.commands = commands
    return inspect_quality


@pytest.mark.parametrize(
    ("sam", "passed"),
    [(None, False), ("none", False), ("kept", True)],
    ids=["zero-shot", "decoder without a head", "decoder with a head"],
)
def test_no_colour_head_is_passed_only_where_the_decoder_carries_a_head(bench, tmp_path, sam, passed):
    # it was passed for every row without the head: inspection.evaluate refuses it where it changes nothing
    decoder = None
    if sam is not None:
        decoder = tmp_path / "decoder.pt"
        head = ColourHead((0.5, 1.0, -0.2)).to_dict() if sam == "kept" else None
        torch.save({"format": DECODER_FORMAT, "model": "vit_t", "colour_head": head}, decoder)
    kwargs = {"sam": decoder, "conf": None, "imgsz": 64, "colour_head": False}
    bench.evaluate(tmp_path / "best.pt", tmp_path / "data", tmp_path / "eval", **kwargs)
    kwargs_with = {**kwargs, "colour_head": True}
    bench.evaluate(tmp_path / "best.pt", tmp_path / "data", tmp_path / "with", **kwargs_with)
    without, with_head = bench.commands
    assert ("--no-colour-head" in without) is passed and "--no-colour-head" not in with_head
