"""``python -m segmentation.embed``: bad input is one ``error:`` line before any model loads."""

from __future__ import annotations

import pytest

from segmentation.embed import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "vit_zz"], "argument --model: invalid choice: 'vit_zz'"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--cache-dir", "{garbage}"], "--cache-dir {garbage} is a file"),
        (["--cache-dir", "{garbage}/sub"], "cannot create folder {garbage}/sub: {garbage} is a file"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tiny_dataset, tmp_path, capsys, argv, message):
    garbage = tmp_path / "cache.txt"
    garbage.write_text("not a folder")
    argv = [arg.format(garbage=garbage) for arg in argv]
    before = sorted(tmp_path.rglob("*"))
    assert main(["--data", str(tiny_dataset), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message.format(garbage=garbage) in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_help_names_no_none_default() -> None:
    from segmentation.embed import build_parser

    assert "(default: None)" not in " ".join(build_parser().format_help().split())
