"""converters.validate: the data set folder, the command line, the table, the split record."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from common.errors import UserError
from converters.convert import ConvertConfig, convert
from converters.validate import main as validate_main
from converters.validation import SplitCheck, format_checks, validate
from converters.validation.split_check import note_backgrounds_only
from tests.conftest import assert_link_loop_line
from tests.converters.validated_sets import as_another_tools


def test_ultralytics_and_pycocotools_accept_the_output(dataset, capsys):
    results = validate(dataset)
    assert set(results) == {"yolo", "coco"}
    for fmt in ("yolo", "coco"):
        checks = results[fmt]
        assert [c.problems for c in checks.values()] == [[], [], []]
        assert [(c.images, c.backgrounds) for c in checks.values()] == [(9, 3), (3, 1), (3, 1)]
        assert checks["train"].instances == 9
    assert validate_main([str(dataset), "--no-progress"]) == 0
    assert "ok" in capsys.readouterr().out
    assert not list(dataset.rglob("*.cache"))  # ultralytics' labels/<split>.cache: the input is read only


@pytest.mark.parametrize("flags", [[], ["--no-progress"]])
def test_each_split_is_checked_behind_progress_bars_unless_told_not_to(dataset, capsys, flags):
    # every listed image is decoded: a large set's COCO rows took long without a word; so did the YOLO
    # rows (ultralytics' scan of every image and label file) and the COCO masks rendered and self-AP, and
    # the look at every labelled image's EXIF tag in both
    assert validate_main([str(dataset), *flags]) == 0
    err = capsys.readouterr().err
    bars = [
        "yolo train: 100%|██████████| 9/9 ",  # 9 images
        "yolo train EXIF: 100%|██████████| 6/6 ",  # 6 of them labelled
        "coco train: 100%|██████████| 9/9 ",
        "coco train EXIF: 100%|██████████| 6/6 ",
        "coco val EXIF: 100%|██████████| 2/2 ",
        "coco train masks: 100%|██████████| 9/9 ",  # 9 instances
        "coco train self-AP: 100%|██████████| 2/2 ",  # box and mask
        "coco test self-AP: 100%",
    ]
    if flags:
        assert err == ""  # no bar, and nothing else to say of this set
    else:
        assert [bar in err for bar in bars] == [True] * len(bars)


def test_a_file_of_the_data_set_given_for_it_is_named_as_a_file(dataset):
    # instances_val.json given for its folder: "no data.yaml or annotations/ in .../instances_val.json"
    path = dataset / "annotations" / "instances_val.json"
    with pytest.raises(UserError, match=f"^{re.escape(str(path))} is a file, not a data set folder"):
        validate(path)


def test_validate_rejects_a_folder_that_is_no_dataset(tmp_path, capsys):
    with pytest.raises(UserError, match="not a converted data set"):
        validate(tmp_path)
    assert validate_main([str(tmp_path), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("error: no data.yaml")


def test_the_data_yaml_names_its_folder_and_another_yaml_file_is_one_line(dataset, tmp_path, capsys):
    # it said "no data.yaml or annotations/ in .../data.yaml: not a converted data set"
    assert validate_main([str(dataset / "data.yaml"), "--no-progress"]) == 0
    assert "ok" in capsys.readouterr().out
    (tmp_path / "config.yaml").write_text("epochs: 1\n")
    assert validate_main([str(tmp_path / "config.yaml"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'config.yaml'} is a YAML file, not a data set folder")
    assert err.count("\n") == 1


@pytest.mark.parametrize("through", ["", "data.yaml"])
def test_a_path_through_a_link_loop_is_named(link_loop, capsys, through):
    # it said "loop does not exist" of a link that is there (Path.exists is False through a loop)
    given = str(link_loop / through) if through else str(link_loop)
    assert validate_main([given, "--no-progress"]) == 2
    assert_link_loop_line(capsys.readouterr().err, given, link_loop)


@pytest.mark.parametrize("given", ["gone", "gone/data.yaml"])
def test_a_path_that_does_not_exist_is_named_as_missing(tmp_path, capsys, given):
    # a mistyped data.yaml said "no data.yaml or annotations/ in .../data.yaml: not a converted data set"
    assert validate_main([str(tmp_path / given), "--no-progress"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / given} does not exist\n"


def test_validate_refuses_a_broken_splits_file(dataset, capsys):
    splits_file = dataset / "splits.json"
    splits_file.write_text(splits_file.read_text()[:40])  # the converters' own, cut short
    with pytest.raises(UserError, match="splits.json: not JSON"):
        validate(dataset)
    assert validate_main([str(dataset), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read splits file") and err.count("\n") == 1


def test_validate_refuses_a_copy_whose_data_yaml_points_at_the_original(dataset, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy, symlinks=True)
    (copy / "labels" / "train" / next((copy / "labels" / "train").iterdir()).name).write_text("0 0.5\n")
    # path: still names the original, which ultralytics checked instead: all "ok" before
    with pytest.raises(UserError, match=f"data.yaml has path: {dataset}, not its own folder {copy}"):
        validate(copy)
    assert validate_main([str(copy), "--no-progress"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_data_yaml_ultralytics_rejects_is_one_line(dataset, capsys):
    (dataset / "data.yaml").write_text(f"path: {dataset}\nnames: {{0: scratch}}\n")  # no train/val keys
    assert validate_main([str(dataset), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ultralytics rejects ") and "'train:' key missing" in err
    assert err.count("\n") == 1  # ultralytics' message has two lines


def test_a_data_yaml_giving_a_class_id_twice_is_refused(dataset, capsys):
    # ultralytics reads the last 0: and trains 'widget_crack' labels as 'scratch', silently
    data = dataset / "data.yaml"
    data.write_text(data.read_text() + "  0: scratch\n")
    assert validate_main([str(dataset), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: data file {data}: key '0' is given twice, on lines ")
    assert err.count("\n") == 1


def test_a_split_with_a_problem_shows_its_notes_beside_the_problem():
    # the notes were hidden while the split failed: "backgrounds only" said nothing of why
    check = SplitCheck(images=4, problems=["2 label files missing (...): read as backgrounds"])
    note_backgrounds_only(check, "train")
    row = format_checks({"yolo": {"train": check}}).splitlines()[1]
    assert row.endswith(
        "  2 label files missing (...): read as backgrounds; "
        "note: no defect instance (backgrounds only): a model trained on it learns no defect"
    )


@pytest.mark.parametrize("converted", [True, False])
@pytest.mark.parametrize("given", ["", "data.yaml"])
def test_a_data_set_without_splits_json_is_said_to_have_no_split_record(dataset, capsys, given, converted):
    # it passed without a word that the splits were not checked against the converter's record; given as
    # its data.yaml it was refused: "has no splits.json beside it: not a data set the converters wrote"
    if not converted:
        as_another_tools(dataset)
    assert validate_main([str(dataset / given), "--no-progress"]) == 0
    assert "splits.json" not in capsys.readouterr().err
    (dataset / "splits.json").unlink()
    assert validate_main([str(dataset / given), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "ok" in captured.out
    if converted:
        assert captured.err == (
            f"note: {dataset} has no splits.json (the seeded split record the converters write): the splits' "
            "images are not checked against it, and the split cannot be reproduced (--splits)\n"
        )
    else:  # another tool's export was told its split "cannot be reproduced (--splits)": it never had a record
        assert captured.err == (
            f"note: {dataset} has no splits.json, the converters' split record (a set they did not write has "
            "none): there is no split record to check the splits' images against\n"
        )


@pytest.mark.parametrize(
    "text",
    [
        '{"splits": {"train": "train.txt", "val": "val.txt"}}',
        '{"train": "train.txt"}',
        "train: a.jpg\n",
        # a "version" of its own: the field the converters write first made it theirs, an error
        '{"version": "1.0", "splits": {"train": "train.txt", "val": "val.txt"}}',
        '{"version": 1, "train": "train.txt", "val": "val.txt", "test": "test.txt"}',
    ],
)
def test_another_tools_splits_json_is_noted_and_the_formats_validated(dataset, capsys, text):
    # another tool's splits.json (its own fields, or not JSON) stopped the check of its set: "error: splits
    # file .../splits.json: lacks the lists ..."; it is not checked against, and the formats are validated
    as_another_tools(dataset)
    (dataset / "splits.json").write_text(text)
    results = validate(dataset)
    assert [check.problems for checks in results.values() for check in checks.values()] == [[]] * 6
    assert validate_main([str(dataset), "--no-progress"]) == 0
    assert capsys.readouterr().err == (
        f"note: {dataset / 'splits.json'} is not the converters' split record (another tool's file of that "
        "name): the splits' images are not checked against it\n"
    )


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"note": "lot 7"}, 'unknown field "note"'),
        ({"val": "a"}, '"val" must be a list of keys'),  # a list turned into a string
    ],
)
def test_a_hand_damaged_split_record_of_ours_is_an_error_in_a_set_without_the_converters_marks(
    dataset, capsys, edit, field
):
    # the set's data.yaml and COCO files carry no mark of the converters (edited, or written by hand): a
    # field added to their splits.json, or a list of it made a string, read as another tool's file, a note
    as_another_tools(dataset)
    splits_file = dataset / "splits.json"
    splits_file.write_text(json.dumps(json.loads(splits_file.read_text()) | edit, indent=1))
    with pytest.raises(UserError, match=f"^splits file {re.escape(str(splits_file))}: {field}"):
        validate(dataset)
    assert validate_main([str(dataset), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: splits file {splits_file}: {field}") and err.count("\n") == 1


@pytest.mark.parametrize("text", ['{"train": [], "val": NaN', "train: a.jpg\n"])
def test_a_splits_json_in_a_set_the_converters_wrote_is_theirs_and_an_error_when_it_does_not_read(
    dataset, capsys, text
):
    # the set's data.yaml and COCO files are the converters': its splits.json is their record, damaged
    (dataset / "splits.json").write_text(text)
    with pytest.raises(UserError, match="splits file"):
        validate(dataset)
    assert validate_main([str(dataset), "--no-progress"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_another_json_file_in_annotations_does_not_make_a_converted_coco_set_another_tools(dataset, capsys):
    # the first *.json of annotations/ alone was read for the converters' mark: a file sorted before their
    # instances_<split>.json (classes.json) made their damaged splits.json another tool's, the set passed
    (dataset / "data.yaml").unlink()  # COCO alone: the converters' mark is in their COCO files
    (dataset / "annotations" / "classes.json").write_text('{"names": ["scratch"]}')
    (dataset / "splits.json").write_text("")  # their record, emptied
    with pytest.raises(UserError, match="splits file"):
        validate(dataset)
    assert validate_main([str(dataset), "--no-progress"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("edit", ["cut", "bad seed", "sorted keys"])
def test_the_converters_splits_json_that_does_not_read_is_still_an_error(dataset, capsys, edit):
    splits_file = dataset / "splits.json"
    data = json.loads(splits_file.read_text())
    if edit == "cut":
        splits_file.write_text(splits_file.read_text()[:20])
    else:  # "version", the field the converters write first, read anywhere in the object
        data["seed"] = -1 if edit == "bad seed" else "x"
        splits_file.write_text(json.dumps(data, sort_keys=edit == "sorted keys"))
    with pytest.raises(UserError, match=f"splits file {splits_file}"):
        validate(dataset)
    assert validate_main([str(dataset), "--no-progress"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_usage_errors_are_one_line(capsys):
    assert validate_main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the following arguments are required: folder") and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("task", ["detect", "segment"])
def test_stock_yolo_cli_trains_on_the_data_yaml(tmp_path, category_factory, yolo_train, task):
    """The converter's data.yaml goes straight into `yolo train` (1 epoch, tiny model and images)."""
    category_factory(tmp_path / "data", "widget", size=(64, 64))
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task=task, progress=False))
    model = "yolov8n.yaml" if task == "detect" else "yolov8n-seg.yaml"
    yolo_train(out / "data.yaml", model, tmp_path / "runs", plots="False")


@pytest.mark.parametrize(
    ("ratios", "split", "problems", "notes", "code"),
    [
        ((1, 0, 0.2), "val", ["no images"], [], 1),  # yolo train stops without val images
        ((0.8, 0.2, 0), "test", [], ["no images: nothing to score on in test"], 0),  # the user's choice
    ],
    ids=["val", "test"],
)
def test_an_empty_split_is_one_rule_for_yolo_and_coco(
    tmp_path, category_factory, capsys, ratios, split, problems, notes, code
):
    # an empty val was a problem in YOLO and "ok" in COCO
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(
        ConvertConfig(
            root=tmp_path / "data", out=out, formats=("yolo", "coco"), ratios=ratios, progress=False
        )
    )
    results = validate(out)
    for fmt in ("yolo", "coco"):
        check = results[fmt][split]
        assert (check.images, check.problems, check.notes) == (0, problems, notes), fmt
        assert all(not c.problems for s, c in results[fmt].items() if s != split)
    capsys.readouterr()
    assert validate_main([str(out), "--no-progress"]) == code
    rows = [row for row in capsys.readouterr().out.splitlines() if f" {split} " in row]
    status = "; ".join([*problems, *(f"note: {note}" for note in notes)] if problems else ["ok", *notes])
    assert len(rows) == 2 and all(row.endswith(status) for row in rows)


def test_a_count_that_differs_from_splits_json_is_the_one_problem_named(dataset):
    # the count says it: the image splits.json no longer lists is not named a second time
    splits_file = dataset / "splits.json"
    splits = json.loads(splits_file.read_text())
    del splits["val"][0]
    splits_file.write_text(json.dumps(splits))
    results = validate(dataset)
    step = ": its files changed since the conversion; convert again"
    assert results["yolo"]["val"].problems == [f"yolo has 3 images, splits.json lists 2{step}"]
    assert results["coco"]["val"].problems == [f"coco has 3 images, splits.json lists 2{step}"]


def test_the_status_column_shows_three_problems_at_most():
    check = SplitCheck(images=1, problems=["a", "b", "c", "d"])
    assert format_checks({"coco": {"val": check}}).splitlines()[1].endswith("  a; b; c")
