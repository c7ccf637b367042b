"""common.fonts: DejaVu Sans put where ultralytics looks for its fonts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ultralytics.utils

from common.fonts import FONT_NAMES, dejavu_sans, ensure_ultralytics_fonts


@pytest.fixture
def config_folder(tmp_path: Path, monkeypatch) -> Path:
    """An empty ultralytics config folder of the test's own."""
    folder = tmp_path / "Ultralytics"
    folder.mkdir()
    monkeypatch.setattr(ultralytics.utils, "USER_CONFIG_DIR", folder)
    return folder


def test_the_fonts_are_placed_once_and_never_over_a_file(config_folder: Path) -> None:
    (config_folder / FONT_NAMES[1]).write_bytes(b"the user's own")
    assert ensure_ultralytics_fonts() == [config_folder / FONT_NAMES[0]]
    assert (config_folder / FONT_NAMES[0]).read_bytes() == dejavu_sans().read_bytes()
    assert (config_folder / FONT_NAMES[1]).read_bytes() == b"the user's own"
    assert ensure_ultralytics_fonts() == []


def test_a_config_folder_that_cannot_be_searched_is_named_with_the_font_on_python_3_13(
    config_folder: Path, unsearchable
) -> None:
    # 3.13's Path.exists is False there: the font was written anyway, and the refusal named its temporary
    unsearchable(config_folder)
    with pytest.raises(PermissionError) as raised:  # the commands' line: 'Permission denied: <path>'
        ensure_ultralytics_fonts()
    assert raised.value.filename == str(config_folder / FONT_NAMES[0])
    assert os.listdir(config_folder) == []
