from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common.errors import UserError
from converters.yolo import DATA_YAML_HEADER
from detection.data import (
    check_own_root,
    data_names,
    dataset_root,
    label_classes,
    read_data_yaml,
    split_images,
)
from tests.conftest import assert_link_loop_line


@pytest.mark.parametrize(
    "content, message",
    [
        (b"names: [a]\npath: \xff\n", "cannot read data file .*data.yaml: 'utf-8' codec can't decode"),
        (b"names: [a\n", "cannot read data file .*data.yaml: "),
        (b"- a\n- b\n", "data file .*data.yaml must be a YAML mapping"),
    ],
    ids=["not-utf8", "not-yaml", "a-list"],
)
def test_a_data_yaml_that_is_no_mapping_is_one_error_line(tmp_path, content, message):
    # a byte that is not UTF-8 used to escape as a UnicodeDecodeError traceback (detection.evaluate)
    path = tmp_path / "data.yaml"
    path.write_bytes(content)
    for read in (read_data_yaml, data_names):
        with pytest.raises(UserError, match=message) as error:
            read(path)
        assert "\n" not in str(error.value)


def test_a_missing_data_yaml_says_where_one_comes_from(tmp_path):
    with pytest.raises(UserError, match="data file not found: .*written by converters.mvtec2yolo"):
        read_data_yaml(tmp_path / "data.yaml")


@pytest.mark.parametrize("through", ["", "data.yaml"])
def test_a_data_file_through_a_link_loop_is_named(link_loop, through):
    # detection.evaluate --data loop said 'data file not found: loop', as if nothing were there
    given = link_loop / through if through else link_loop
    with pytest.raises(UserError) as error:
        read_data_yaml(given)
    assert_link_loop_line(f"error: {error.value}\n", f"data file {given}", link_loop)


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ("loop", "({loop}) is"),
        ("loop/images", "({loop}/images): {loop} is"),
        ("[loop/x]", "({loop}/x): {loop} is"),
    ],
)
def test_a_split_through_a_link_loop_is_named(tmp_path, link_loop, entry, where):
    # a split entry through a loop said "'val: loop/images' of <data.yaml> does not exist (...)"
    data = tmp_path / "data.yaml"
    data.write_text(f"path: {tmp_path}\ntrain: {entry}\nval: {entry}\nnames: {{0: a}}\n")
    with pytest.raises(UserError) as error:
        split_images(data, "val")
    assert str(error.value) == (
        f"'val: {entry.strip('[]')}' of {data} {where.format(loop=link_loop)} a link loop (a symbolic link "
        "that leads back to itself, to no file or folder); point it elsewhere or give another path"
    )


def test_a_folder_given_as_data_file_names_the_file_to_pass(tmp_path):
    with pytest.raises(UserError, match="data file .* is a folder: it holds no data.yaml"):
        read_data_yaml(tmp_path)
    (tmp_path / "data.yaml").write_text("names: [a]\n")
    with pytest.raises(UserError, match=f"data file {tmp_path} is a folder: pass {tmp_path / 'data.yaml'}"):
        read_data_yaml(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        (
            "annotations/instances_train.json",
            '{"images": [], "annotations": [], "categories": []}',
            "a COCO annotation file",
        ),
        ("splits.json", '{"records": {}}', "a JSON file"),
    ],
    ids=["coco", "splits"],
)
def test_a_json_file_given_as_data_file_names_the_data_yaml(tmp_path, name, content, kind):
    # data=annotations/instances_train.json (or --data) said 'has no class names ('names:')': as if names:
    # were missing from a data.yaml
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(content)
    advice = "pass the data.yaml written by converters.mvtec2yolo"
    for _ in range(2):
        for read in (read_data_yaml, data_names):
            with pytest.raises(UserError) as error:
                read(path)
            assert str(error.value) == f"data file {path} is {kind}, not a YOLO data.yaml: {advice}"
        (tmp_path / "data.yaml").write_text("names: [a]\n")
        advice = f"pass {tmp_path / 'data.yaml'}"  # the converters' folder: beside it or one up
    (tmp_path / name).write_text('{"names": ["a"]}')  # a JSON data file with classes is read as ever
    assert data_names(path) == ["a"]


def test_an_empty_data_yaml_has_no_class_names(tmp_path):
    (tmp_path / "data.yaml").write_text("")
    assert read_data_yaml(tmp_path / "data.yaml") == {}
    with pytest.raises(UserError, match="has no class names"):
        data_names(tmp_path / "data.yaml")


@pytest.mark.parametrize("nc", ["2", "'2'", "2.0"])
def test_a_class_count_without_names_is_named_as_ultralytics_names_it(tmp_path, nc):
    from ultralytics.data.utils import check_det_dataset

    # 'nc: 2' and no names: (stock 'yolo train' trains class_0, class_1): refused as having no class names
    (tmp_path / "images").mkdir()
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images\nval: images\nnc: {nc}\n")
    ultralytics_names = list(check_det_dataset(str(tmp_path / "data.yaml"))["names"].values())
    assert data_names(tmp_path / "data.yaml") == ["class_0", "class_1"] == ultralytics_names


@pytest.mark.parametrize("nc", ["0", "1.5", "two", ".inf", "-1"])
def test_a_class_count_that_is_none_is_one_line(tmp_path, nc):
    (tmp_path / "data.yaml").write_text(f"train: images\nval: images\nnc: {nc}\n")
    with pytest.raises(
        UserError, match=r"has no class names \('names:'\) and nc: .*, which is no class count$"
    ):
        data_names(tmp_path / "data.yaml")


def test_a_relative_path_is_resolved_as_ultralytics_resolves_it(tmp_path, monkeypatch):
    from ultralytics.data.utils import check_det_dataset

    # a hand-edited "path: ." was read from the data.yaml's folder here, from the working folder by
    # ultralytics: run from another data set's folder, that one was trained on
    for name in ("ds", "elsewhere"):
        (tmp_path / name / "images" / "val").mkdir(parents=True)
    (tmp_path / "elsewhere" / "images" / "val" / "x.png").write_bytes(b"")
    data = tmp_path / "ds" / "data.yaml"
    data.write_text("path: .\ntrain: images/val\nval: images/val\nnames: {0: a}\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    ultralytics_root = Path(check_det_dataset(str(data))["path"]).resolve()
    assert dataset_root(data) == tmp_path / "elsewhere" == ultralytics_root
    assert split_images(data, "val") == [tmp_path / "elsewhere" / "images" / "val" / "x.png"]


def test_a_relative_path_missing_from_the_working_folder_is_taken_from_the_datasets_dir(
    tmp_path, monkeypatch
):
    from ultralytics.utils import DATASETS_DIR

    # ultralytics looks for it under its datasets_dir, never beside the data.yaml: neither may this check
    (tmp_path / "ds" / "sub" / "images" / "val").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    data = tmp_path / "ds" / "data.yaml"
    data.write_text("path: sub\ntrain: images/val\nval: images/val\nnames: {0: a}\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert dataset_root(data) == (Path(DATASETS_DIR) / "sub").absolute()


def test_a_relative_path_that_is_not_its_own_folder_is_named_as_written(tmp_path, monkeypatch):
    from ultralytics.utils import DATASETS_DIR

    # a converted data set whose path: was edited to "ds" by hand, run from another folder: the error
    # said "has path: <datasets_dir>/ds", a path the file never held
    (tmp_path / "ds" / "images" / "val").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    data = tmp_path / "ds" / "data.yaml"
    data.write_text(DATA_YAML_HEADER + "path: ds\ntrain: images/val\nval: images/val\nnames: {0: a}\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(UserError) as error:
        check_own_root(data)
    read_as = (Path(DATASETS_DIR) / "ds").absolute()
    assert str(error.value).startswith(
        f"{data} has path: ds (relative, so ultralytics reads it as {read_as}: "
        "from the working folder where it exists there, else from its datasets_dir), not its own folder "
    )
    monkeypatch.chdir(tmp_path)  # from the folder above it, "ds" is its own folder
    assert check_own_root(data) == tmp_path / "ds"


def test_a_converters_data_yaml_copied_out_of_its_data_set_alone_reads_the_data_set(tmp_path):
    # copied to rename a class: refused as a "moved or copied" data set, with the advice to point path:
    # at its own folder, which holds no images; ultralytics reads the data set its path: names
    (tmp_path / "ds" / "images" / "val").mkdir(parents=True)
    (tmp_path / "experiments").mkdir()
    text = (
        DATA_YAML_HEADER + f"path: {tmp_path / 'ds'}\ntrain: images/val\nval: images/val\nnames: {{0: a}}\n"
    )
    (tmp_path / "ds" / "data.yaml").write_text(text)
    (tmp_path / "experiments" / "renamed.yaml").write_text(text.replace("0: a", "0: b"))
    assert check_own_root(tmp_path / "experiments" / "renamed.yaml") == tmp_path / "ds"
    # the data set itself copied whole (images and all) still is refused
    shutil.copytree(tmp_path / "ds", tmp_path / "copy")
    with pytest.raises(UserError, match=f"has path: {tmp_path / 'ds'}, not its own folder"):
        check_own_root(tmp_path / "copy" / "data.yaml")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        # ultralytics refused it once its trainer or validator read the file: a traceback, the run folder made
        ("names: [a]\nnc: 2\n", r"has nc: 2 but 1 class name\(s\) in 'names:', which ultralytics refuses"),
        ("names: [a]\nnc: two\n", r"has nc: two but 1 class name\(s\)"),
        # nc: left without a value: ultralytics 8.4 refuses it too ("'nc: None' must be an integer")
        ("names: [a]\nnc:\n", r"has nc: None but 1 class name\(s\) in 'names:', which ultralytics refuses"),
        # a mapping written the wrong way round: a ValueError traceback
        ("names: {a: 0}\n", r"the keys of 'names:' must be class ids \(0: name, 1: name, ...\), got \['a'\]"),
        # a key left empty: int(None), a TypeError traceback
        ("names: {~: a}\n", r"the keys of 'names:' must be class ids \(0: name, .*got \[None\]"),
        # an id skipped: read here as classes 0 and 1, a RuntimeError traceback from ultralytics' trainer
        ("names: {0: a, 2: b}\n", r"the class ids of 'names:' must be 0 to 1, one each, got 0, 2"),
        ("names: {0: a, '0': b}\n", r"the class ids of 'names:' must be 0 to 1, one each"),
        # trained without a word; every report tells classes apart by name
        ("names: [a, a]\n", r"'names:' gives classes 0 and 1 the one name 'a'; each class needs its own"),
        ("names: {0: a, 1: b, 2: 'b'}\n", r"gives classes 1 and 2 the one name 'b'"),
        ("names: {0: a, 1: ''}\n", r"class 1 in 'names:' has no name \(''\)"),
        ("names: [a, ~]\n", r"class 1 in 'names:' has no name \(None\)"),
    ],
)
def test_names_that_ultralytics_or_the_id_order_cannot_take_are_one_error_line(tmp_path, names, expected):
    (tmp_path / "data.yaml").write_text(f"train: images/train\nval: images/val\n{names}")
    with pytest.raises(UserError, match=expected):
        data_names(tmp_path / "data.yaml")


def test_an_nc_that_agrees_with_the_names_is_read(tmp_path):
    (tmp_path / "data.yaml").write_text("names: {0: a, 1: b}\nnc: 2\n")
    assert data_names(tmp_path / "data.yaml") == ["a", "b"]


def test_a_roboflow_export_s_parent_relative_splits_are_read_as_ultralytics_reads_them(tmp_path):
    # Roboflow's data.yaml sits beside train/ valid/ and names them '../train/images' with no path:;
    # ultralytics then takes them from the yaml's folder, stock 'yolo train' trains: here they "did not exist"
    export = tmp_path / "export"
    for folder in ("train", "valid"):
        (export / folder / "images").mkdir(parents=True)
        (export / folder / "images" / f"{folder}.jpg").write_bytes(b"")
    (export / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['cut']\n")
    assert split_images(export / "data.yaml", "train") == [export / "train" / "images" / "train.jpg"]
    assert split_images(export / "data.yaml", "val") == [export / "valid" / "images" / "valid.jpg"]
    # a folder that is there one level up is read from there, as ultralytics does
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "images" / "up.jpg").write_bytes(b"")
    found = split_images(export / "data.yaml", "train")
    assert [path.resolve() for path in found] == [tmp_path / "train" / "images" / "up.jpg"]


def test_label_classes_read_a_bom_and_name_a_file_without_class_ids(tmp_path):
    # a Windows tool's label file (BOM first), which ultralytics reads: repeat_factor sampling stopped
    # with a ValueError traceback; a first column that is no number, likewise
    (tmp_path / "labels").mkdir()
    label = tmp_path / "labels" / "a.txt"
    label.write_bytes(b"\xef\xbb\xbf2 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n")
    assert label_classes(tmp_path / "images" / "a.png") == [2, 0]
    label.write_text("scratch 0.5 0.5 0.2 0.2\n")
    with pytest.raises(UserError, match=f"^label file {label}: a class id that is no number "):
        label_classes(tmp_path / "images" / "a.png")


@pytest.mark.parametrize(("value", "shown"), [("abc", "'abc'"), ("7", "7"), ("true", "True")])
def test_names_that_are_no_list_are_named_as_given(tmp_path, value, shown):
    # 'names: abc' was refused as 'has no class names': as if the line were missing
    (tmp_path / "data.yaml").write_text(f"train: images\nval: images\nnames: {value}\n")
    with pytest.raises(UserError) as error:
        data_names(tmp_path / "data.yaml")
    assert str(error.value) == (
        f"data file {tmp_path / 'data.yaml'}: 'names:' must list the class names (- name, or 0: name per "
        f"line), got {shown}"
    )
