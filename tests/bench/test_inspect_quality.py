"""bench/inspect_quality.py: the command lines it runs (no model runs)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt
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


def test_no_colour_prompt_is_passed_only_where_the_decoder_carries_one(bench, tmp_path):
    plain, prompted = tmp_path / "plain.pt", tmp_path / "prompted.pt"
    torch.save({"format": DECODER_FORMAT, "model": "vit_t"}, plain)
    torch.save(
        {"format": DECODER_FORMAT, "model": "vit_t", "colour_prompt": ColourPrompt().to_dict()}, prompted
    )
    for name, sam in (("zero-shot", None), ("plain", plain), ("prompted", prompted)):
        for prompt in (False, True):
            kwargs = {"sam": sam, "conf": None, "imgsz": 64, "colour_prompt": prompt}
            bench.evaluate(tmp_path / "best.pt", tmp_path / "data", tmp_path / f"{name}{prompt}", **kwargs)
    passed = ["--no-colour-prompt" in command for command in bench.commands]
    assert passed == [False, False, False, False, True, False]


def test_the_colour_prompt_rows_run_one_decoder_three_ways(bench, tmp_path):
    args = SimpleNamespace(colour_head=False, colour_prompt=True, tta=False, fixed_conf=0.25)
    decoder = tmp_path / "decoder.pt"
    rows = [(c.sam_name, c.conf, c.head, c.prompt) for c in bench.cases_of(args, decoder, None)]
    assert rows == [
        ("zero-shot", None, False, False),
        ("fine-tuned", None, False, False),
        ("fine-tuned", 0.25, False, False),
        ("fine-tuned + colour head", None, True, False),
        ("fine-tuned + colour head + prompt", None, True, True),
    ]


def test_a_test_split_saved_with_a_bom_is_counted(bench, tmp_path):
    # a COCO file a Windows tool saved (UTF-8 with a BOM): json.loads stopped the report
    coco = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
        "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}],
        "categories": [{"id": 1, "name": "cut"}],
    }
    path = tmp_path / "annotations" / "instances_test.json"
    path.parent.mkdir()
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(coco).encode())
    assert bench.split_images(tmp_path) == (2, 1)
