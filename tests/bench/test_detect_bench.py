"""bench/detect_bench.py: the per-epoch times it reads from ultralytics' ``results.csv`` (no model runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
HEADER = "epoch,time,train/box_loss,metrics/mAP50(B)\n"
ROWS = "1,12.5,1.9,0.01\n2,25.1,1.7,0.02\n"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # it imports bench/report.py as ``report``
    import detect_bench

    return detect_bench


def test_whole_rows_give_each_epochs_seconds(bench, tmp_path: Path, capsys) -> None:
    results = tmp_path / "results.csv"
    results.write_text(HEADER + ROWS + "3,37.9,1.6,0.03\n")
    assert bench.epoch_times(results) == pytest.approx([12.5, 12.6, 12.8])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("last", "why"),
    [
        ("3,3", "2 fields, the header has 4"),  # cut short: it was -22.1 s
        ("3", "1 field, the header has 4"),  # no time field: a TypeError
        ("3,,1.6,0.03", "time '' is no number"),
        ("3,3.7,1.6,0.03", "time 3.7 is below the previous row's 25.1"),  # time only grows
    ],
)
def test_a_broken_last_row_is_skipped_with_a_note(bench, tmp_path: Path, capsys, last: str, why: str) -> None:
    results = tmp_path / "results.csv"
    results.write_text(HEADER + ROWS + last)
    assert bench.epoch_times(results) == pytest.approx([12.5, 12.6])
    assert capsys.readouterr().err == f"note: {results}: line 4 skipped ({why})\n"


def test_the_row_after_a_skipped_one_gives_no_figure(bench, tmp_path: Path, capsys) -> None:
    # its time since the last kept row spans two epochs
    results = tmp_path / "results.csv"
    results.write_text(HEADER + ROWS + "3,3x,1.6,0.03\n4,50.5,1.5,0.04\n5,63.0,1.4,0.05\n")
    assert bench.epoch_times(results) == pytest.approx([12.5, 12.6, 12.5])
    assert capsys.readouterr().err == f"note: {results}: line 4 skipped (time '3x' is no number)\n"


def test_a_file_without_a_time_column_gives_no_figures(bench, tmp_path: Path, capsys) -> None:
    results = tmp_path / "results.csv"
    results.write_text("epoch,loss\n1,0.5\n")
    assert bench.epoch_times(results) == []
    assert capsys.readouterr().err == f"note: {results} has no time column: no per-epoch times\n"
