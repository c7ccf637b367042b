"""common.folders.path_exists: Python 3.11's ``Path.exists`` on every version."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from common.folders import path_exists


def test_a_file_a_folder_and_a_link_to_either_exist(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "lot").mkdir()
    (tmp_path / "to_a.png").symlink_to("a.png")
    (tmp_path / "to_lot").symlink_to("lot")
    for name in ("a.png", "lot", "to_a.png", "to_lot"):
        assert path_exists(tmp_path / name), name
        assert path_exists(str(tmp_path / name)), name  # a str as given on a command line


@pytest.mark.parametrize(
    "name",
    [
        "missing.png",  # nothing there
        "a.png/b.png",  # below a file: 'Not a directory'
        "gone.png",  # a link whose target is gone
        "loop",  # a link loop (loop -> loop): named by common.io.link_loop_text, not here
        "a\0.png",  # a NUL: no file can be named so
    ],
)
def test_what_is_not_there_is_false(tmp_path: Path, name: str) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "gone.png").symlink_to("deleted.png")
    (tmp_path / "loop").symlink_to("loop")
    assert path_exists(tmp_path / name) is False


def test_a_name_too_long_for_the_file_system_is_an_error_naming_it(tmp_path: Path) -> None:
    # Python 3.13's Path.exists is False for it: a file_name typed wrong was called missing
    path = tmp_path / ("a" * 300 + ".png")
    with pytest.raises(OSError) as raised:
        path_exists(path)
    assert raised.value.errno == errno.ENAMETOOLONG and raised.value.filename == os.fspath(path)


def test_a_path_in_a_folder_that_cannot_be_searched_is_an_error_where_python_3_13_says_missing(
    tmp_path: Path, unsearchable
) -> None:
    (tmp_path / "lot").mkdir()
    photo = tmp_path / "lot" / "a.png"
    photo.write_bytes(b"x")
    unsearchable(tmp_path / "lot")
    assert photo.exists() is False  # the fixture's 3.13 lookup: the photo taken for gone
    with pytest.raises(PermissionError) as raised:
        path_exists(photo)
    assert raised.value.filename == os.fspath(photo)
    assert path_exists(tmp_path / "lot")  # the folder itself is looked up in its parent
