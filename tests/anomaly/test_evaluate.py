"""anomaly.evaluate's checks: option values it would ignore or that score nothing, a report folder it
cannot write; each one line before any image is scored, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

import anomaly.evaluate as evaluate_module
from anomaly.evaluate import evaluate_run
from anomaly.run import fit_run
from common.errors import UserError


@pytest.fixture
def run(parts: Path, tmp_path: Path, tiny_config: dict) -> Path:
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        # the MVTec protocol scores test/: a split without --data used to be ignored, test/ reported
        ({"split": "val"}, "--split val needs --data"),
        ({"split": "bogus"}, "--split bogus needs --data"),
        # a map cut at NaN flags no pixel: every mask empty, IoU 0 on defect images, no error
        ({"masks": True, "threshold": float("nan")}, "--threshold must be a finite number, got nan"),
        ({"masks": True, "min_area": 0}, "--min-area must be at least 1, got 0"),
    ],
)
def test_bad_options_are_refused_before_scoring(
    run: Path, monkeypatch: pytest.MonkeyPatch, options: dict, fragment: str
) -> None:
    monkeypatch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
    with pytest.raises(UserError, match=fragment):
        evaluate_run(run, progress=False, figure=False, **options)
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "memory_bank.pt", "run.json"]


def test_a_report_folder_that_is_a_file_is_refused_before_scoring(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # used to score every image, then end in FileExistsError's traceback
    (tmp_path / "report").write_text("a file")
    monkeypatch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
    with pytest.raises(UserError, match="--out .*report is a file, not a report folder"):
        evaluate_run(run, out=tmp_path / "report", progress=False)


def test_an_evaluation_without_figure_leaves_no_earlier_figure_behind(run: Path) -> None:
    # re-run with --no-figure into the same eval folder: the old anomaly_maps.png passed for this one's
    out = Path(evaluate_run(run, progress=False)["out"])
    assert (out / "anomaly_maps.png").is_file()
    evaluate_run(run, progress=False, figure=False)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.md", "scores.csv"]
