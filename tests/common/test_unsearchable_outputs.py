"""A checkpoint, an --out or a --source below a folder that cannot be searched (no ``x`` permission) is named
as such on every Python version: from Python 3.13 ``Path.exists``/``is_file``/``is_dir`` are False there (3.11
raised), so it was called missing, not writable, or taken for a glob pattern. The ``unsearchable`` fixture
(tests/common/conftest.py) gives 3.13's lookups."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from common.errors import UserError
from common.folders import check_creatable, check_input_file, check_output_folder
from common.io import load_torch
from common.out_folders import check_no_link_into, check_not_read_as_photos, check_out_of_pattern

IMAGES = {"overlays/*.png": "overlays"}


def lot_with(tmp_path: Path, unsearchable, name: str) -> tuple[Path, Path]:
    """``tmp_path/lot`` holding ``name`` (a file), made unsearchable: (the lot, the file)."""
    lot = tmp_path / "lot"
    lot.mkdir()
    (lot / name).write_bytes(b"PK")
    unsearchable(lot)
    return lot, lot / name


def search_line(what: str, path: Path, lot: Path) -> str:
    return re.escape(f"cannot read {what} {path}: Permission denied: let {lot} be searched (chmod a+x {lot})")


def test_a_checkpoint_in_a_folder_that_cannot_be_searched_is_not_called_not_found(tmp_path, unsearchable):
    # segmentation.evaluate --checkpoint lot/decoder.pt: was 'checkpoint not found: lot/decoder.pt'
    lot, checkpoint = lot_with(tmp_path, unsearchable, "decoder.pt")
    assert checkpoint.is_file() is False  # the fixture's 3.13 lookup
    with pytest.raises(UserError, match=f"^{search_line('checkpoint', checkpoint, lot)}$"):
        check_input_file(checkpoint, "checkpoint", inside=["decoder.pt"])


def test_a_missing_checkpoint_is_still_not_found(tmp_path, unsearchable):
    unsearchable(tmp_path / "elsewhere")  # another folder: this one may be searched
    with pytest.raises(UserError, match="^checkpoint not found: "):
        check_input_file(tmp_path / "decoder.pt", "checkpoint")


def test_load_torch_names_a_folder_that_cannot_be_searched(tmp_path, unsearchable):
    # was 'checkpoint not found: lot/decoder.pt'
    lot, checkpoint = lot_with(tmp_path, unsearchable, "decoder.pt")
    with pytest.raises(UserError, match=f"^{search_line('SAM checkpoint', checkpoint, lot)}$"):
        load_torch(checkpoint, what="SAM checkpoint")


@pytest.mark.parametrize("below", ["run", "runs/run"])
def test_an_out_below_a_folder_that_cannot_be_searched_says_so(tmp_path, unsearchable, below):
    # was 'cannot create folder lot/run: lot is not writable', which it is
    lot = tmp_path / "lot"
    (lot / "runs").mkdir(parents=True)
    unsearchable(lot)
    searched = f"{lot} cannot be searched; let {lot} be searched (chmod a+x {lot})"
    line = f"cannot create folder {lot / below}: {searched}"
    with pytest.raises(UserError, match=f"^{re.escape(line)}$"):
        check_creatable(lot / below)
    with pytest.raises(UserError, match=re.escape(f"{lot} cannot be searched;")):
        check_output_folder(lot / below)


def test_a_folder_that_cannot_be_written_is_still_called_not_writable(tmp_path, monkeypatch):
    # os.access says no to all (root may write anywhere), yet its lookups are answered: not a search refused
    access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: Path(path) != tmp_path and access(path, mode, **kw)
    )
    line = f"cannot create folder {tmp_path / 'run'}: {tmp_path} is not writable"
    with pytest.raises(UserError, match=f"^{re.escape(line)}$"):
        check_creatable(tmp_path / "run")


@pytest.mark.parametrize("check", [check_not_read_as_photos, check_out_of_pattern, check_no_link_into])
def test_a_photo_folder_in_a_folder_that_cannot_be_searched_is_not_taken_for_a_pattern(
    tmp_path, unsearchable, check
):
    # --source lot/photos --out lot/photos/run: was read as a pattern matching nothing, and passed; now the
    # lookup's refusal, as common.photo_sources.photo_root and photo_files give (Python 3.11's)
    lot = tmp_path / "lot"
    (lot / "photos").mkdir(parents=True)
    unsearchable(lot)
    source, out = str(lot / "photos"), lot / "photos" / "run"
    with pytest.raises(PermissionError) as raised:
        check(out, source, later="read its {}", images=IMAGES)
    assert raised.value.filename == source
