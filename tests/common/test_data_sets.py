"""``common.data_sets``: the converters' ``data.yaml`` names its folder, the folder its ``data.yaml``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.data_sets import data_set_folder, data_yaml_of
from common.errors import UserError


def _converted(folder: Path) -> Path:
    """What the converters write at the top of a data set folder (the rest does not matter here)."""
    folder.mkdir(parents=True)
    (folder / "data.yaml").write_text(f"path: {folder}\nnames: {{0: crack}}\n")
    (folder / "splits.json").write_text("{}")
    return folder


def test_the_converters_data_yaml_is_its_folder_spelled_as_the_folder_would_be(tmp_path, monkeypatch):
    data = _converted(tmp_path / "ds")
    assert data_set_folder(data / "data.yaml") == data
    monkeypatch.chdir(tmp_path)
    assert data_set_folder("ds/data.yaml") == "ds"  # a str stays a str: a config key, recorded as typed
    assert data_set_folder(Path("ds/data.yaml")) == Path("ds")


@pytest.mark.parametrize(
    "given",
    ["ds", "ds/splits.json", "ds/images", "nowhere", "nowhere/data.yaml", "notes.txt", "folder.yaml"],
    ids=["the folder", "its splits.json", "a folder in it", "nothing", "no such yaml", "a text file",
         "a folder named .yaml"],
)  # fmt: skip
def test_anything_but_a_yaml_file_comes_back_as_given_for_the_commands_own_checks(tmp_path, given):
    _converted(tmp_path / "ds")
    (tmp_path / "ds" / "images").mkdir()
    (tmp_path / "notes.txt").write_text("not a data set")
    (tmp_path / "folder.yaml").mkdir()
    assert data_set_folder(tmp_path / given) == tmp_path / given
    assert data_set_folder(str(tmp_path / given)) == str(tmp_path / given)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("config.yaml", "--data {path} is a YAML file, not a data set folder the converters wrote"),
        ("ds/other.yml", "--data {path} is a YAML file, not a data set folder the converters wrote"),
        ("DATA.YAML", "--data {path} is a YAML file, not a data set folder the converters wrote"),
        # a hand-written one, a repeat-sampled detection run's: no splits.json beside it
        ("yolo/data.yaml", "--data {path} has no splits.json beside it: not a data set the converters wrote"),
    ],
    ids=["a config", "another yaml in a data set", "another case", "a data.yaml of no converted data set"],
)
def test_another_yaml_file_is_one_line_naming_it(tmp_path, name, message):
    _converted(tmp_path / "ds")
    (tmp_path / "yolo").mkdir()
    path = tmp_path / name
    path.write_text("names: [a]\n")
    with pytest.raises(UserError, match="^" + message.format(path=path)) as error:
        data_set_folder(path)
    assert "\n" not in str(error.value)


def test_the_message_begins_as_the_user_named_it(tmp_path):
    (tmp_path / "config.yaml").write_text("epochs: 1\n")
    with pytest.raises(UserError, match=f"^data={tmp_path}/config.yaml is a YAML file"):
        data_set_folder(tmp_path / "config.yaml", given=f"data={tmp_path}/config.yaml")


# --- data_yaml_of: the other direction, for the commands that read the data.yaml (detection) ------------


def test_a_folder_holding_a_data_yaml_is_that_data_yaml_spelled_as_the_file_would_be(tmp_path, monkeypatch):
    data = _converted(tmp_path / "ds")
    assert data_yaml_of(data) == data / "data.yaml"
    monkeypatch.chdir(tmp_path)
    assert data_yaml_of("ds") == "ds/data.yaml"  # a str stays a str: a config key, recorded as typed
    assert data_yaml_of("ds/") == "ds/data.yaml"
    assert data_yaml_of(Path("ds")) == Path("ds/data.yaml")
    monkeypatch.setenv("HOME", str(data))
    assert data_yaml_of("~") == str(data / "data.yaml")  # data=~ in a config: no shell expanded it
    (data / "splits.json").unlink()  # a tiled or repeat-sampled detection data set: no splits.json
    assert data_yaml_of(data) == data / "data.yaml"


@pytest.mark.parametrize(
    "given",
    ["ds/data.yaml", "ds/splits.json", "nowhere", "nowhere/data.yaml", "config.yaml"],
    ids=["the data.yaml", "its splits.json", "nothing", "no such yaml", "another yaml"],
)
def test_anything_but_a_folder_comes_back_as_given_for_the_commands_own_checks(tmp_path, given):
    _converted(tmp_path / "ds")
    (tmp_path / "config.yaml").write_text("epochs: 1\n")
    assert data_yaml_of(tmp_path / given) == tmp_path / given
    assert data_yaml_of(str(tmp_path / given)) == str(tmp_path / given)


@pytest.mark.parametrize("inside", ["nothing", "a folder named data.yaml", "splits.json alone"])
def test_a_folder_without_a_data_yaml_is_one_line_naming_it(tmp_path, inside):
    folder = tmp_path / "coco_only"
    folder.mkdir()
    if inside == "a folder named data.yaml":
        (folder / "data.yaml").mkdir()
    if inside == "splits.json alone":
        (folder / "splits.json").write_text("{}")
    with pytest.raises(
        UserError, match=f"^--data {folder} is a folder without a data.yaml: pass a "
    ) as error:
        data_yaml_of(folder)
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match=f"^data={folder} is a folder without a data.yaml"):
        data_yaml_of(str(folder), given=f"data={folder}")


@pytest.mark.parametrize("blocked", ["ds", "."], ids=["the data set", "the folder above"])
def test_a_data_set_that_cannot_be_searched_is_named_so_on_python_3_13(tmp_path, unsearchable, blocked):
    # 3.13's Path.is_file and is_dir are False there: the data set was refused as 'a folder without a
    # data.yaml', or its folder passed on as a file's path for the command to call missing
    _converted(tmp_path / "ds")
    unsearchable(tmp_path / blocked)
    looked_up = tmp_path / "ds" / "data.yaml" if blocked == "ds" else tmp_path / "ds"
    with pytest.raises(PermissionError) as raised:  # the commands' line: 'Permission denied: <path>'
        data_yaml_of(tmp_path / "ds")
    assert raised.value.filename == str(looked_up)


@pytest.mark.parametrize("resolve", [data_set_folder, data_yaml_of])
@pytest.mark.parametrize("given", ["", "data.yaml"], ids=["the folder", "its data.yaml"])
def test_a_data_set_whose_path_is_not_utf8_is_refused_naming_the_flag(not_utf8_folder, resolve, given):
    # the runs record it (args.yaml, run.json, metrics.json) as "\udcff", which JSON readers refuse
    data = not_utf8_folder / "ds"
    data.mkdir()
    (data / "data.yaml").write_text("path: .\nnames: {0: crack}\n")
    (data / "splits.json").write_text("{}")
    data = data / given
    message = (
        f"config key 'data' has a name that is not UTF-8, b'bad\\xff' (in {not_utf8_folder.parent}): "
        "rename it, or pass another folder"
    )
    with pytest.raises(UserError, match="^" + re.escape(message)):
        resolve(data, given=f"data={data}", flag="config key 'data'")
    with pytest.raises(UserError, match="^--data has a name that is not UTF-8"):
        resolve(str(data))


def test_a_utf8_data_set_path_with_other_characters_is_taken(tmp_path):
    data = _converted(tmp_path / "M\u00fcll" / "\u691c\u67fb")  # 'Müll' in UTF-8, a Japanese folder
    assert data_set_folder(data / "data.yaml") == data
    assert data_yaml_of(data) == data / "data.yaml"


def test_a_folder_named_tilde_and_no_users_name_is_that_folder(tmp_path, monkeypatch):
    # data=~lot_7 (no such user; a shell leaves it so) stopped with a RuntimeError traceback from
    # Path.expanduser ('Could not determine home directory.'), in check_utf8_path and data_yaml_of
    monkeypatch.chdir(tmp_path)
    (tmp_path / "~lot_7_no_such_user").mkdir()
    (tmp_path / "~lot_7_no_such_user" / "data.yaml").write_text("names: [a]\n")
    assert data_yaml_of("~lot_7_no_such_user") == "~lot_7_no_such_user/data.yaml"
    assert data_yaml_of("~no_such_user/x.yaml") == "~no_such_user/x.yaml"
