from __future__ import annotations

import importlib
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.config import read_yaml
from common.errors import UserError
from converters.convert import ConvertConfig, convert
from converters.validate import (
    SplitCheck,
    copied_images,
    format_checks,
    note_backgrounds_only,
    on_one_line,
    validate,
    validate_coco,
)
from converters.validate import main as validate_main
from converters.yolo import DATA_YAML_HEADER
from tests.conftest import assert_link_loop_line
from tests.converters.layout_trees import CATEGORY, make_layout_tree, write


@pytest.fixture
def dataset(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    convert(
        ConvertConfig(root=tmp_path / "data", out=tmp_path / "out", formats=("yolo", "coco"), progress=False)
    )
    return tmp_path / "out"


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


def test_validate_finds_broken_labels(dataset, capsys):
    labels = sorted((dataset / "labels" / "train").glob("*.txt"))
    labels[0].write_text("0 1.5 0.5 0.2 0.2\n")  # centre outside the image: ultralytics drops the file
    coco_file = dataset / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    coco["annotations"][0]["area"] *= 3
    coco_file.write_text(json.dumps(coco))
    results = validate(dataset)
    image = next((dataset / "images" / "train").glob(f"{labels[0].stem}.*")).name
    dropped = results["yolo"]["train"].problems[0]
    # ultralytics' own reason, naming the label file (it was "corrupt label" alone)
    # its padding kept (ultralytics prints floats as {:11.5g}): runs of spaces in a message stay as written
    reason = f"label labels/train/{labels[0].name}: non-normalized or out of bounds coordinates [{1.5:11.5g}]"
    assert dropped == f"ultralytics dropped 1 of 9 images: {image} ({reason})"
    assert "renders" in results["coco"]["val"].problems[0]
    assert validate_main([str(dataset), "--no-progress"]) == 1
    assert capsys.readouterr().err == f"error: 2 check(s) failed for {dataset}: see the status column\n"


def test_a_dropped_label_is_told_why_in_ultralytics_words(dataset):
    # a label of a class the data set lacks (another tool's ids): ultralytics drops its image with a
    # reason among its log lines; the check said "corrupt label" of a file it had not looked at
    label = next(p for p in sorted((dataset / "labels" / "val").glob("*.txt")) if p.read_text())
    label.write_text("7 0.5 0.5 0.2 0.2\n")
    image = next((dataset / "images" / "val").glob(f"{label.stem}.*")).name
    names = len(read_yaml(dataset / "data.yaml", what="data file")["names"])
    problems = validate(dataset)["yolo"]["val"].problems
    assert problems[0] == (
        f"ultralytics dropped 1 of 3 images: {image} (label labels/val/{label.name}: Label class 7 exceeds "
        f"dataset class count {names}. Possible class labels are 0-{names - 1})"
    )


def test_an_image_ultralytics_finds_too_small_is_told_so(dataset):
    # OpenCV decodes it, so it was called a "corrupt label"; ultralytics refuses images under 10 px
    image = sorted((dataset / "images" / "train").iterdir())[0]
    image.unlink()
    cv2.imwrite(str(image), np.zeros((5, 5, 3), np.uint8))
    problems = validate(dataset)["yolo"]["train"].problems
    reason = "image: image size (5, 5) <10 pixels"
    assert problems[0] == f"ultralytics dropped 1 of 9 images: {image.name} ({reason})"


def test_a_roboflow_export_s_label_files_are_named_where_they_are(dataset, tmp_path):
    # Roboflow's layout (valid/labels/x.txt beside valid/images/x.jpg): named 'labels/valid/x.txt', no file
    export = tmp_path / "export"
    _as_roboflow_export(dataset, export)
    labels = sorted((export / "valid" / "labels").glob("*.txt"))
    labels[0].unlink()
    labels[1].write_text("9 0.5 0.5 0.2 0.2\n")
    check = validate(export)["yolo"]["val"]
    image = next((export / "valid" / "images").glob(f"{labels[1].stem}.*")).name
    [problem] = check.problems
    assert problem.startswith(
        f"ultralytics dropped 1 of 3 images: {image} (label valid/labels/{labels[1].name}: "
    )
    # how another tool may give a background (ultralytics reads one so): a note; in a converted set a problem
    assert check.notes == [f"1 label file missing (valid/labels/{labels[0].name}): read as backgrounds"]


def test_a_missing_label_file_is_a_problem(dataset):
    # ultralytics reads an image without a label file as a background: the check said "ok", with
    # fewer instances than COCO counts in the same split
    label = next(p for p in sorted((dataset / "labels" / "train").glob("*.txt")) if p.read_text())
    label.unlink()
    problems = validate(dataset)["yolo"]["train"].problems
    assert problems == [f"1 label file missing (labels/train/{label.name}): read as backgrounds"]


def test_validate_names_an_unreadable_image(dataset):
    image = sorted((dataset / "images" / "train").iterdir())[0]
    image.unlink()  # a link into the source tree, maybe: replaced, not written through
    image.write_bytes(b"not an image")
    problems = validate(dataset)["yolo"]["train"].problems
    assert problems == [
        f"ultralytics dropped 1 of 9 images: {image.name} (unreadable image)",
        "yolo has 8 images, splits.json lists 9",
    ]


def test_a_jpeg_without_its_end_marker_is_left_as_it_is_with_a_note(dataset):
    # ultralytics' scan re-saves such a JPEG in place ("corrupt JPEG restored and saved", among the log lines
    # the check hides): the check re-encoded the user's image, a link to a photo became a copy, ok said
    png = sorted((dataset / "images" / "val").iterdir())[0]
    image = png.with_suffix(".jpg")
    data = cv2.imencode(".jpg", cv2.imread(str(png)))[1].tobytes() + b"\0\0"  # bytes after the end marker
    png.unlink()
    image.write_bytes(data)
    check = validate(dataset)["yolo"]["val"]
    assert image.read_bytes() == data
    assert check.problems == [] and check.images == 3
    assert check.notes == [
        f"1 JPEG image does not end in its end marker (images/val/{image.name}): ultralytics re-saves it in "
        "place when it reads it (re-encoded; a link to a photo becomes a copy); the check left it as it is"
    ]


def test_an_image_pil_cannot_identify_is_named_without_ultralytics_plugin_warning(dataset, capfd):
    # ultralytics' scan, failing to identify the file, asked for its HEIF plugin: "requirement ['pi-heif']
    # not found" on stderr, above a table naming the image unreadable, sent the user after a plugin
    image = sorted((dataset / "images" / "val").iterdir())[0]
    image.unlink()
    image.write_bytes(b"")
    capfd.readouterr()
    assert validate_main([str(dataset), "--no-progress"]) == 1
    out, err = capfd.readouterr()
    assert f"ultralytics dropped 1 of 3 images: {image.name} (unreadable image)" in out
    assert "pi-heif" not in out + err


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: b"", "the file is empty"),  # a copy cut short before its first byte
        (lambda data: data[: len(data) // 2], "corrupt or not an image"),  # truncated
    ],
    ids=["empty", "truncated"],
)
def test_a_coco_image_that_does_not_decode_is_a_problem_naming_it(dataset, damage, reason):
    # the COCO rows called such an image ok where the YOLO rows named it (ultralytics dropped it)
    image = sorted((dataset / "images" / "train").iterdir())[0]
    data = image.read_bytes()
    image.unlink()  # a link into the source tree, maybe: replaced, not written through
    image.write_bytes(damage(data))
    [problem] = validate(dataset)["coco"]["train"].problems
    assert problem.startswith(f"1 image file unreadable (e.g. cannot read image images/train/{image.name}: ")
    assert reason in problem


def test_validate_finds_missing_image_files_in_both_formats(dataset):
    image = next((dataset / "images" / "val").iterdir())
    image.unlink()
    results = validate(dataset)
    assert results["yolo"]["val"].problems  # ultralytics lists the folder: one image fewer
    assert results["coco"]["val"].problems == [f"1 image file missing (e.g. images/val/{image.name})"]


def test_images_linked_to_photos_moved_since_are_named_as_broken_links(dataset, tmp_path):
    # --link symlink (the default): a photo deleted since was 'yolo has 2 images, splits.json lists 3',
    # and a photo tree moved away stopped ultralytics with a traceback (it read no image of the split)
    image = sorted((dataset / "images" / "val").iterdir())[0]
    target = image.readlink()
    target.unlink()
    broken = (
        f"1 image is a broken link (e.g. images/val/{image.name} -> {target}): the photos moved or were "
        "deleted since the conversion; convert again (--link copy keeps copies)"
    )
    results = validate(dataset)
    assert results["yolo"]["val"].problems == [broken, "yolo has 2 images, splits.json lists 3"]
    assert results["coco"]["val"].problems == [broken]
    (tmp_path / "data").rename(tmp_path / "moved")
    results = validate(dataset)
    for fmt in ("yolo", "coco"):
        assert [check.problems[0].split(" (e.g.")[0] for check in results[fmt].values()] == [
            "9 images are broken links",
            "3 images are broken links",
            "3 images are broken links",
        ]


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


def test_a_train_split_of_backgrounds_only_is_a_note_not_ultralytics_warning(
    tmp_path, category_factory, capfd
):
    # MVTec AD's own train/ holds good images only; ultralytics' raw warning named a labels/train.cache,
    # never written
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, formats=("yolo", "coco"), split_from_layout=True))
    capfd.readouterr()
    results = validate(out)
    captured = capfd.readouterr()  # ultralytics' handler holds the stream it found at import: fd level
    assert "Labels are missing or empty" not in captured.out + captured.err
    note = "no defect instance (backgrounds only): a model trained on it learns no defect"
    for fmt in ("yolo", "coco"):
        train = results[fmt]["train"]
        assert (train.instances, train.problems, train.notes) == (0, [], [note])
        assert results[fmt]["test"].notes == []  # it holds defects
    assert f"  ok; {note}" in format_checks(results).splitlines()[1]


@pytest.mark.parametrize(
    ("split", "images", "instances", "notes"),
    [
        ("train", 4, 0, ["no defect instance (backgrounds only): a model trained on it learns no defect"]),
        ("val", 4, 0, ["no defect instance (backgrounds only)"]),  # scored, not learnt from
        ("test", 0, 0, []),  # an empty split (--split 0.8,0.2,0) holds no backgrounds either
        ("train", 4, 3, []),
    ],
    ids=["train", "val", "empty", "defects"],
)
def test_only_a_split_of_backgrounds_only_gets_the_note_and_only_train_is_said_to_learn_nothing(
    split, images, instances, notes
):
    check = SplitCheck(images=images, instances=instances, backgrounds=images - min(images, instances))
    note_backgrounds_only(check, split)
    assert check.notes == notes


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
        _as_another_tools(dataset)
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
    _as_another_tools(dataset)
    (dataset / "splits.json").write_text(text)
    results = validate(dataset)
    assert [check.problems for checks in results.values() for check in checks.values()] == [[]] * 6
    assert validate_main([str(dataset), "--no-progress"]) == 0
    assert capsys.readouterr().err == (
        f"note: {dataset / 'splits.json'} is not the converters' split record (another tool's file of that "
        "name): the splits' images are not checked against it\n"
    )


def _as_another_tools(dataset):
    """``dataset`` without the marks the converters leave (data.yaml's header line, COCO's description)."""
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().removeprefix(DATA_YAML_HEADER))
    for path in (dataset / "annotations").glob("*.json"):
        coco = json.loads(path.read_text())
        coco["info"] = {"description": "exported by another tool"}
        path.write_text(json.dumps(coco))


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
    _as_another_tools(dataset)
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


def test_a_coco_only_data_set_is_validated(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, formats=("coco",), progress=False))
    results = validate(out)
    assert list(results) == ["coco"]
    assert [c.problems for c in results["coco"].values()] == [[], [], []]


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("annotations", "is not a COCO instances file (needs images, annotations, categories)"),  # a KeyError
        ("categories", "is not a COCO instances file"),
    ],
)
def test_a_coco_file_without_a_part_is_one_line(tmp_path, category_factory, drop, message):
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, formats=("coco",), progress=False))
    path = out / "annotations" / "instances_val.json"
    coco = json.loads(path.read_text())
    del coco[drop]
    path.write_text(json.dumps(coco))
    with pytest.raises(UserError, match=re.escape(f"instances_val.json {message}")):
        validate(out)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda image: image.pop("file_name"), "entry 1 of 'images' in {path} has no 'file_name'"),
        (lambda image: image.update(file_name=7), "image 1 in {path} has file_name 7, not a path"),
    ],
    ids=["no-file-name", "number"],
)
def test_a_coco_image_without_a_file_name_path_is_one_line(tmp_path, category_factory, edit, message):
    # another tool's file: a traceback from the split's counts (KeyError, TypeError)
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, formats=("coco",), progress=False))
    path = out / "annotations" / "instances_val.json"
    coco = json.loads(path.read_text())
    edit(coco["images"][0])
    path.write_text(json.dumps(coco))
    with pytest.raises(UserError, match="^" + re.escape(message.format(path=path))):
        validate(out)


@pytest.mark.parametrize(
    ("part", "edit", "message"),
    [
        (
            "annotations",
            lambda a: a.pop("bbox"),
            "annotation {id} in {path} has no bbox [x, y, width, height]",
        ),
        (
            "annotations",
            lambda a: a.update(category_id=7),
            "annotation {id} in {path} has category_id 7, not one",
        ),
        ("annotations", lambda a: a.update(segmentation=[]), "annotation {id} in {path} has no segmentation"),
        (
            "annotations",
            lambda a: a.update(segmentation={"size": [64, 64], "counts": "zz!!"}),
            "annotation {id} in {path} has no segmentation",
        ),
        (
            "annotations",
            lambda a: a.update(area="12"),
            "annotation {id} in {path} has area '12', not a number",
        ),
        (
            "images",
            lambda image: image.pop("height"),
            "image {id} ({name}) in {path} has no width and height",
        ),
    ],
    ids=["no-bbox", "unlisted-category", "empty-segmentation", "corrupt-rle", "text-area", "no-height"],
)
def test_a_coco_entry_the_checks_cannot_read_is_one_line(dataset, part, edit, message):
    # another tool's file: a traceback (KeyError, IndexError, TypeError); an annotation of a category the
    # file does not list was left out of the self-evaluation by COCOeval, and the split called ok
    path = dataset / "annotations" / "instances_val.json"
    coco = json.loads(path.read_text())
    image = next(i for i in coco["images"] if any(a["image_id"] == i["id"] for a in coco["annotations"]))
    entry = (
        image if part == "images" else next(a for a in coco["annotations"] if a["image_id"] == image["id"])
    )
    edit(entry)
    path.write_text(json.dumps(coco))
    expected = message.format(id=entry["id"], name=image["file_name"], path=path)
    with pytest.raises(UserError, match="^" + re.escape(expected)):
        validate(dataset)


def test_a_split_whose_images_are_all_gone_is_one_problem_for_yolo(dataset):
    for image in (dataset / "images" / "val").iterdir():
        image.unlink()
    results = validate(dataset)
    assert results["yolo"]["val"].problems == ["no images, splits.json lists 3"]
    assert results["coco"]["val"].problems[0].startswith("3 image files missing")


def test_a_coco_split_emptied_of_the_images_splits_json_lists_is_a_problem(dataset):
    # instances_val.json with no images while splits.json lists 3 (and YOLO has them) passed as "ok"
    coco_file = dataset / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    coco["images"], coco["annotations"] = [], []
    coco_file.write_text(json.dumps(coco))
    results = validate(dataset)
    assert results["coco"]["val"].problems == ["no images, splits.json lists 3"]
    assert results["yolo"]["val"].problems == []


def test_images_swapped_between_two_coco_splits_are_a_problem(dataset):
    # every count stays right, so it passed as "ok" (helper-93's finding)
    files = {split: dataset / "annotations" / f"instances_{split}.json" for split in ("val", "test")}
    cocos = {split: json.loads(path.read_text()) for split, path in files.items()}
    val, test = cocos["val"]["images"][0], cocos["test"]["images"][0]
    val["file_name"], test["file_name"] = test["file_name"], val["file_name"]
    for split, path in files.items():
        path.write_text(json.dumps(cocos[split]))
    results = validate(dataset)
    stem = val["file_name"].rsplit("/", 1)[-1].rsplit(".", 1)[0]  # the test image val holds now
    assert results["coco"]["val"].problems == [
        f"coco holds 1 val image(s) splits.json lists elsewhere or not at all (e.g. {stem})"
    ]
    assert len(results["coco"]["test"].problems) == 1 and results["yolo"]["val"].problems == []


def test_images_swapped_between_two_yolo_splits_are_a_problem(dataset):
    # the YOLO images moved, with their labels, between val and test: every count stays right
    moved = {}
    for split, other in (("val", "test"), ("test", "val")):
        image = sorted((dataset / "images" / split).iterdir())[0]
        label = dataset / "labels" / split / f"{image.stem}.txt"
        moved[split] = (
            image,
            label,
            dataset / "images" / other / image.name,
            dataset / "labels" / other / label.name,
        )
    for image, label, image_to, label_to in moved.values():
        image.rename(image_to)
        label.rename(label_to)
    results = validate(dataset)
    stem = moved["test"][0].stem  # the test image val holds now
    assert results["yolo"]["val"].problems == [
        f"yolo holds 1 val image(s) splits.json lists elsewhere or not at all (e.g. {stem})"
    ]


LEAK = "one file in two splits, so {later} scores a model on images {seen}"


def test_a_train_list_naming_a_val_image_fails_val_naming_both_splits(dataset):
    # a CVAT-style train.txt naming an image of the val folder: the same file in two splits (test leakage)
    # passed as "ok"; the converters write each split to its own folder, and their set has none such
    results = validate(dataset)
    assert not [text for checks in results.values() for c in checks.values() for text in c.problems + c.notes]
    val = sorted((dataset / "images" / "val").iterdir())
    train = sorted((dataset / "images" / "train").iterdir())
    names = [f"./images/train/{image.name}" for image in train] + [f"./images/val/{val[0].name}"]
    (dataset / "train.txt").write_text("".join(f"{name}\n" for name in names))
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().replace("train: images/train", "train: train.txt"))
    results = validate(dataset)["yolo"]
    assert results["val"].problems == [
        f"1 image is in both train and val (images/val/{val[0].name}): "
        + LEAK.format(later="val", seen="it trained on")
    ]
    assert results["test"].problems == []


def test_two_splits_of_one_folder_fail_the_later_naming_a_few_images(dataset):
    _as_another_tools(dataset)
    (dataset / "splits.json").unlink()  # its check names the images of val elsewhere too
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().replace("val: images/val", "val: images/train"))
    results = validate(dataset)["yolo"]
    train = sorted(image.name for image in (dataset / "images" / "train").iterdir())
    shown = ", ".join(f"images/train/{name}" for name in train[:3])
    assert results["val"].problems == [
        f"9 images are in both train and val ({shown} and 6 more): "
        + LEAK.format(later="val", seen="it trained on")
    ]
    assert results["train"].problems == [] and results["test"].problems == []


def test_a_test_split_of_the_val_folder_is_a_note(dataset, capsys):
    # some exports point test: at the val folder on purpose: no training image leaks, so it failed wrongly
    _as_another_tools(dataset)
    (dataset / "splits.json").unlink()  # its check names the images of test elsewhere too
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().replace("test: images/test", "test: images/val"))
    results = validate(dataset)["yolo"]
    val = sorted(image.name for image in (dataset / "images" / "val").iterdir())
    assert [check.problems for check in results.values()] == [[], [], []]
    assert results["test"].notes == [
        f"3 images are in both val and test (images/val/{val[0]}, images/val/{val[1]}, images/val/{val[2]}): "
        "one file in two splits, so test then scores the images val picked best.pt on"
    ]
    assert validate_main([str(data_yaml), "--no-progress"]) == 0
    assert "ok; 3 images are in both val and test" in capsys.readouterr().out


def test_a_link_to_a_train_photo_in_val_is_the_same_file(dataset):
    # the same file under another name (its path resolved): --link symlink's images are links to the photos
    _as_another_tools(dataset)
    (dataset / "splits.json").unlink()
    image = sorted((dataset / "images" / "train").iterdir())[0]
    alias = dataset / "images" / "val" / "alias.png"
    alias.symlink_to(image.resolve())
    shutil.copy(dataset / "labels" / "train" / f"{image.stem}.txt", dataset / "labels" / "val" / "alias.txt")
    problems = validate(dataset)["yolo"]["val"].problems
    assert problems == [
        f"1 image is in both train and val (images/val/alias.png = images/train/{image.name}): "
        + LEAK.format(later="val", seen="it trained on")
    ]


def test_a_coco_split_listing_a_train_image_fails(dataset):
    files = {split: dataset / "annotations" / f"instances_{split}.json" for split in ("train", "test")}
    train, test = (json.loads(path.read_text()) for path in files.values())
    name = train["images"][0]["file_name"]
    test["images"][0]["file_name"] = name
    files["test"].write_text(json.dumps(test))
    problems = validate(dataset)["coco"]["test"].problems
    assert problems[0] == (
        f"1 image is in both train and test (images/{name}): "
        + LEAK.format(later="test", seen="it trained on")
    )


def test_a_byte_identical_copy_in_another_split_is_a_note(dataset):
    # a copy is not the same file: a note (one photo saved twice, or two captures that are byte for byte one)
    _as_another_tools(dataset)
    (dataset / "splits.json").unlink()
    image = sorted((dataset / "images" / "train").iterdir())[0]
    shutil.copy(image, dataset / "images" / "test" / "copy.png")
    shutil.copy(dataset / "labels" / "train" / f"{image.stem}.txt", dataset / "labels" / "test" / "copy.txt")
    check = validate(dataset)["yolo"]["test"]
    assert check.problems == []
    assert check.notes == [
        f"1 test image is byte-identical to train images (images/test/copy.png = images/train/{image.name}): "
        "if one photo saved twice, test scores a model on images it trained on"
    ]


def test_a_file_in_two_splits_is_not_read_to_look_for_copies(tmp_path, monkeypatch):
    # test: pointing at val's folder listed every val image twice, and each was read in full and hashed
    shared = [tmp_path / "a.png", tmp_path / "b.png"]
    for index, path in enumerate(shared):
        path.write_bytes(bytes(10 + index))
    copy = tmp_path / "copy.png"
    copy.write_bytes(shared[0].read_bytes())
    read = []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda path: read.append(path.name) or read_bytes(path))
    copied = copied_images({"val": shared, "test": [*shared, copy]})
    assert copied == {("val", "test"): [(copy, shared[0])]}
    assert sorted(read) == ["a.png", "copy.png"]  # b.png: of no other file's size


def test_a_count_that_differs_from_splits_json_is_the_one_problem_named(dataset):
    # the count says it: the image splits.json no longer lists is not named a second time
    splits_file = dataset / "splits.json"
    splits = json.loads(splits_file.read_text())
    del splits["val"][0]
    splits_file.write_text(json.dumps(splits))
    results = validate(dataset)
    assert results["yolo"]["val"].problems == ["yolo has 3 images, splits.json lists 2"]
    assert results["coco"]["val"].problems == ["coco has 3 images, splits.json lists 2"]


def test_dropped_images_are_named_three_at_most(dataset):
    labels = sorted((dataset / "labels" / "train").glob("*.txt"))
    for label in labels[:4]:
        label.write_text("0 1.5 0.5 0.2 0.2\n")
    problem = validate(dataset)["yolo"]["train"].problems[0]
    assert problem.startswith("ultralytics dropped 4 of 9 images: ") and problem.endswith(" and 1 more")
    assert problem.count(f": non-normalized or out of bounds coordinates [{1.5:11.5g}])") == 3


def test_an_area_a_few_pixels_off_is_a_problem(dataset):
    coco_file = dataset / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    first, second = coco["annotations"][:2]
    first["area"] += 2  # within the polygons' rendering slack
    second["area"] = round(second["area"] * 1.1) + 2
    coco_file.write_text(json.dumps(coco))
    problems = validate(dataset)["coco"]["val"].problems
    assert len(problems) == 1 and problems[0].startswith(f"annotation {second['id']}: renders ")


def test_a_box_of_no_size_fails_the_self_evaluation(dataset):
    coco_file = dataset / "annotations" / "instances_test.json"
    coco = json.loads(coco_file.read_text())
    coco["annotations"][0]["bbox"][2:] = [0, 0]
    coco_file.write_text(json.dumps(coco))
    problems = validate(dataset)["coco"]["test"].problems
    assert len(problems) == 1 and problems[0].startswith("bbox AP of ground truth against itself is ")


@pytest.mark.parametrize(
    ("task", "row"),
    [("detect", "0 0.5 0.5 0 0.2"), ("segment", "0 0.5 0.5")],  # no width; a one-point polygon
    ids=["box", "polygon"],
)
def test_a_yolo_row_of_no_size_is_a_problem_naming_its_file_and_row(tmp_path, category_factory, task, row):
    # ultralytics keeps it as an instance no prediction can overlap: the split passed as ok
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task=task, progress=False))
    label = next(path for path in sorted((out / "labels" / "val").glob("*.txt")) if path.read_text())
    rows = label.read_text().splitlines()
    label.write_text("\n".join([*rows, row, ""]))
    assert validate(out)["yolo"]["val"].problems == [
        f"1 label row of no size (width or height 0): labels/val/{label.name} row {len(rows) + 1}"
    ]


@pytest.mark.parametrize(
    "row",
    ["0 0.1 0.1 0.5 0.5 0.1 0.1", "0 0.1 0.1 0.3 0.3 0.5 0.5"],  # two distinct points; three on one line
    ids=["two-points", "collinear"],
)
def test_a_yolo_seg_polygon_of_no_area_is_a_problem_naming_its_file_and_row(tmp_path, category_factory, row):
    # its box has a size, its fillPoly mask is a line at most: it passed as ok, a row of no size did not
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task="segment", progress=False))
    assert not any(check.problems for check in validate(out)["yolo"].values())  # the converters' rows
    label = next(path for path in sorted((out / "labels" / "val").glob("*.txt")) if path.read_text())
    rows = label.read_text().splitlines()
    label.write_text("\n".join([*rows, row, ""]))
    where = f"labels/val/{label.name} row {len(rows) + 1}"
    assert validate(out)["yolo"]["val"].problems == [
        f"1 label row of no area (a polygon's points on one line): {where}"
    ]


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_label_rows_ultralytics_reads_once_are_a_note_naming_their_file(tmp_path, category_factory, task):
    # its "duplicate labels removed" was hidden with its log lines: YOLO counted fewer instances, unexplained
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task=task, progress=False))
    label = next(path for path in sorted((out / "labels" / "val").glob("*.txt")) if path.read_text())
    rows = label.read_text().splitlines()
    before = validate(out)["yolo"]["val"]
    label.write_text("\n".join([*rows, rows[0], rows[0], ""]))
    check = validate(out)["yolo"]["val"]
    assert not check.problems and check.instances == before.instances
    assert check.notes == [
        "ultralytics keeps one of identical label rows ('duplicate labels removed'), so 2 repeated rows are "
        f"not counted as instances: labels/val/{label.name}"
    ]


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_a_yolo_detect_row_for_two_coco_annotations_of_one_box_is_a_note(tmp_path, task):
    # two MVTec LOCO region files of one class over one area: one YOLO detect row, two COCO annotations, and
    # the table counted one YOLO instance fewer, unexplained; YOLO-seg keeps both outlines, as many as COCO
    root = make_layout_tree(tmp_path, "mvtec_loco")
    folder = root / CATEGORY / "ground_truth" / "logical_anomalies" / "000"
    region = cv2.imread(str(folder / "000.png"), cv2.IMREAD_UNCHANGED)
    region[5, 5] = 0  # a second region file over the first one's area: one box
    write(folder / "001.png", region)
    out = tmp_path / "out"
    convert(ConvertConfig(root=root, out=out, progress=False, formats=("yolo", "coco"), task=task))
    [image] = (out / "images").rglob("*logical_anomalies_000.png")
    split = image.parent.name
    results = validate(out)
    fewer = 1 if task == "detect" else 0
    assert results["coco"][split].instances - results["yolo"][split].instances == fewer
    notes = [note for note in results["yolo"][split].notes if "coco" in note]
    said = (
        "1 instance fewer than coco: 1 COCO annotation repeats the class and box of another in its image "
        f"(images/{split}/{image.name}), one YOLO detect row for both (ultralytics trains on one of "
        "identical rows)"
    )
    assert notes == ([said] if task == "detect" else [])


@pytest.mark.parametrize("first", [True, False], ids=["first-file", "another-file"])
def test_a_yolo_seg_label_file_of_boxes_is_a_problem_naming_it(tmp_path, category_factory, first):
    # ultralytics refuses such a split for segment training: the first file decided the task (detect: ok),
    # another one raised ultralytics' ValueError as a traceback
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task="segment", progress=False))
    labelled = [path for path in sorted((out / "labels").glob("*/*.txt")) if path.read_text()]
    label = labelled[0 if first else -1]
    label.write_text("0 0.5 0.5 0.2 0.2\n")
    split = label.parent.name
    polygon = next(path for path in labelled if path.parent.name == split and path != label)  # the split's
    assert validate(out)["yolo"][split].problems[0] == (
        f"1 label file holds boxes (class cx cy w h), not polygons (labels/{split}/{label.name}), as "
        f"labels/{split}/{polygon.name}'s are: " + REFUSED
    )


def test_a_split_refused_for_its_box_files_names_a_polygon_file_of_its_own(tmp_path, category_factory):
    # it named the set's first polygon file (train's) where the split held polygon files too
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task="segment", progress=False))
    for split in ("train", "val"):
        labelled = [path for path in sorted((out / "labels" / split).glob("*.txt")) if path.read_text()]
        box, polygon = labelled[:2]
        box.write_text("0 0.5 0.5 0.2 0.2\n")
        assert validate(out)["yolo"][split].problems[0] == (
            f"1 label file holds boxes (class cx cy w h), not polygons (labels/{split}/{box.name}), as "
            f"labels/{split}/{polygon.name}'s are: " + REFUSED
        )


def test_a_polygon_file_starting_with_a_blank_line_makes_the_set_yolo_seg(tmp_path, category_factory):
    # ultralytics strips a label file before reading its rows: the raw first line alone was looked at,
    # so a YOLO-seg set whose files started with a blank line was checked as a detect one, ok
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task="segment", progress=False))
    labelled = [path for path in sorted((out / "labels").glob("*/*.txt")) if path.read_text()]
    for path in labelled:
        path.write_text("\n \n" + path.read_text())
    box, polygon = [path for path in labelled if path.parent.name == "val"][:2]
    box.write_text("0 0.5 0.5 0.2 0.2\n")
    assert validate(out)["yolo"]["val"].problems[0] == (
        f"1 label file holds boxes (class cx cy w h), not polygons (labels/val/{box.name}), as "
        f"labels/val/{polygon.name}'s are: " + REFUSED
    )


REFUSED = (
    "ultralytics refuses such a split for segment training; a detect training reads the polygons as boxes "
    "(--task detect checks it so)"
)


def test_one_polygon_file_in_a_detect_set_is_named_and_task_detect_passes_it(
    tmp_path, category_factory, capsys
):
    # one train label file of rectangle polygons made the set YOLO-seg: every split failed, val and test
    # (box files alone) told "ultralytics refuses a YOLO-seg split of both", no polygon file named, no way out
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task="detect", progress=False))
    polygon = next(path for path in sorted((out / "labels" / "train").glob("*.txt")) if path.read_text())
    rows = [list(map(float, line.split())) for line in polygon.read_text().splitlines()]
    polygon.write_text(
        "".join(
            f"{c:g} {x - w / 2:g} {y - h / 2:g} {x + w / 2:g} {y - h / 2:g} {x + w / 2:g} {y + h / 2:g} "
            f"{x - w / 2:g} {y + h / 2:g}\n"
            for c, x, y, w, h in rows
        )
    )
    results = validate(out)["yolo"]
    for split in ("val", "test"):
        boxes = [f"labels/{split}/{path.name}" for path in sorted((out / "labels" / split).glob("*.txt"))]
        boxes = [name for name in boxes if (out / name).read_text()]
        assert results[split].problems == [
            f"{len(boxes)} label files hold boxes (class cx cy w h), not polygons ({', '.join(boxes)}), as "
            f"labels/train/{polygon.name}'s are: " + REFUSED
        ]
    assert ", as labels/train/" in results["train"].problems[0]
    checks = validate(out, task="detect")["yolo"]
    assert [(check.problems, check.images) for check in checks.values()] == [([], 9), ([], 3), ([], 3)]
    assert validate_main([str(out), "--no-progress", "--task", "detect"]) == 0
    assert validate_main([str(out), "--no-progress", "--task", "segment"]) == 1
    assert validate_main([str(out), "--no-progress"]) == 1
    capsys.readouterr()


@pytest.mark.parametrize(
    "rows, reason",
    [
        ("0 0.5 0.5 0.2 0.2 0.9\n", "labels require 5 columns, 6 columns detected"),
        ("0 0.4 0.4 0.6 0.4 0.6 0.6\n0 0.5 0.5 0.2 0.2\n", "labels mix segment and detection rows"),
        ("0 0.5 0.5 0.2 0.2\n0 0.4 0.4 0.6 0.4 0.6 0.6\n", "labels mix segment and detection rows"),
    ],
    ids=["box-and-score", "polygon-then-box", "box-then-polygon"],
)
def test_a_label_file_ultralytics_refuses_in_any_task_leaves_a_detect_set_detect(dataset, rows, reason):
    # ultralytics reads a file as polygons where a row has over 6 values, and drops one that mixes box rows
    # in: a first row of over 5 values made the set YOLO-seg, so a box with a score (a predictions export)
    # or a polygon before a box failed val and test for box files "as labels/train/x.txt's are" (polygons)
    label = next(path for path in sorted((dataset / "labels" / "train").glob("*.txt")) if path.read_text())
    label.write_text(rows)
    image = next((dataset / "images" / "train").glob(f"{label.stem}.*")).name
    results = validate(dataset)["yolo"]
    assert [results[split].problems for split in ("val", "test")] == [[], []]
    assert results["train"].problems[0] == (
        f"ultralytics dropped 1 of 9 images: {image} (label labels/train/{label.name}: {reason})"
    )


def test_a_set_of_boxes_with_keypoints_is_checked_as_a_detect_set(dataset):
    # with kpt_shape ultralytics reads a row of 5 + keypoint values as a box in a detect training: its 7
    # values (one x y keypoint) made the set YOLO-seg, each labelled split failed in ultralytics' words
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(data_yaml.read_text() + "kpt_shape: [1, 2]\n")
    for label in (dataset / "labels").glob("*/*.txt"):
        rows = [line.split() for line in label.read_text().splitlines()]
        label.write_text("".join(" ".join([*row, row[1], row[2]]) + "\n" for row in rows))
    checks = validate(dataset)["yolo"]
    assert [(check.problems, check.images) for check in checks.values()] == [([], 9), ([], 3), ([], 3)]


def test_task_segment_of_a_set_of_boxes_fails_each_labelled_split(dataset):
    # no polygon file to name: the split is refused for what the user said they train
    results = validate(dataset, task="segment")["yolo"]
    label = sorted(path for path in (dataset / "labels" / "val").glob("*.txt") if path.read_text())[0]
    assert (
        results["val"]
        .problems[0]
        .startswith(f"2 label files hold boxes (class cx cy w h), not polygons (labels/val/{label.name}, ")
    )
    assert results["val"].problems[0].endswith(": ultralytics refuses such a split for segment training")


def test_on_one_line_leaves_a_row_of_no_size_and_a_thin_sliver_alone():
    # the row of no size is rows_of_no_size's; a thin real sliver is not flat
    assert on_one_line(np.array([[10.0, 10.0], [50.0, 50.0], [10.0, 10.0]]))
    assert not on_one_line(np.array([[10.0, 10.0], [10.0, 50.0], [10.0, 10.0]]))  # no width
    assert not on_one_line(np.array([[10.0, 10.0], [50.0, 50.0], [50.0, 51.0]]))


def test_a_split_of_crowd_annotations_only_fails_the_self_evaluation(dataset):
    # COCOeval ignores a crowd: the self AP is undefined (NaN), which passed 'AP < 0.999' without a word
    coco_file = dataset / "annotations" / "instances_test.json"
    coco = json.loads(coco_file.read_text())
    for annotation in coco["annotations"]:
        annotation["iscrowd"] = 1
    coco_file.write_text(json.dumps(coco))
    assert validate(dataset)["coco"]["test"].problems == [
        f"{iou_type} AP of ground truth against itself is undefined, not 1.0: COCOeval ignores every "
        "annotation (iscrowd 1, a category the file does not list, or an area outside its range)"
        for iou_type in ("bbox", "segm")
    ]


def test_the_status_column_shows_three_problems_at_most():
    check = SplitCheck(images=1, problems=["a", "b", "c", "d"])
    assert format_checks({"coco": {"val": check}}).splitlines()[1].endswith("  a; b; c")


def test_a_data_yaml_without_a_test_split_has_no_test_images(dataset):
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(
        "".join(line for line in data_yaml.read_text().splitlines(True) if line != "test: images/test\n")
    )
    # an empty test split passes with a note, but not where splits.json lists test images; the problem
    # says the key is missing (it read 'yolo has 0 images', as if the folder were empty)
    check = validate(dataset)["yolo"]["test"]
    assert check.problems == ["data.yaml names no test split, splits.json lists 3"]
    assert check.notes == ["data.yaml names no test split: nothing to score on in test"]


def test_an_image_of_over_100_instances_scores_1_against_itself(tmp_path, category_factory, mask_factory):
    # 11 x 11 specks of 2x2 px on one image: COCO's default keeps 100 detections per image
    specks = [(4 * col + 1, 4 * row + 1, 4 * col + 3, 4 * row + 3) for row in range(11) for col in range(11)]
    category_factory(tmp_path / "data", "widget", defects={"speck": [mask_factory(48, 64, specks)] * 5})
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, formats=("coco",), progress=False))
    checks = validate(out)["coco"]
    assert checks["train"].instances == 3 * 121
    assert [check.problems for check in checks.values()] == [[], [], []]


def test_a_labelled_image_turned_by_an_exif_tag_is_a_problem_in_both_formats(dataset, tmp_path):
    # the photo a symlinked image points to, re-saved since with an orientation tag: both readers turn it,
    # the labels made from its mask as stored stay: the check said ok (square, so nothing else noticed)
    from PIL import Image

    label = next(p for p in sorted((dataset / "labels" / "val").glob("*.txt")) if p.read_text())
    image = next((dataset / "images" / "val").glob(f"{label.stem}.*"))
    with Image.open(image) as photo:
        photo.load()
    image.unlink()  # a link into the source tree: replaced, not written through
    exif = Image.Exif()
    exif[0x0112] = 8  # turned 90 degrees counter-clockwise
    photo.save(image, format="PNG", exif=exif)
    results = validate(dataset)
    tagged = f"1 labelled image has an EXIF orientation tag (images/val/{image.name}): "
    again = "the labels, made from masks as stored, not; save the photos upright and convert again"
    assert results["yolo"]["val"].problems == [f"{tagged}ultralytics reads it turned, {again}"]
    assert results["coco"]["val"].problems == [f"{tagged}OpenCV (SAM's reader) reads it turned, {again}"]
    background = next(p for p in sorted((dataset / "labels" / "train").glob("*.txt")) if not p.read_text())
    turned = next((dataset / "images" / "train").glob(f"{background.stem}.*"))
    with Image.open(turned) as photo:
        photo.load()
    turned.unlink()
    photo.save(turned, format="PNG", exif=exif)
    assert validate(dataset)["yolo"]["train"].problems == []  # no labels to misplace


def _turn_a_labelled_val_image(dataset, description: str):
    """A labelled image of ``dataset``'s COCO val split saved again with an EXIF tag turning it 90 degrees,
    the split's ``info.description`` set to ``description``; the image's path."""
    from PIL import Image

    coco_file = dataset / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    coco["info"]["description"] = description
    coco_file.write_text(json.dumps(coco))
    labelled = {annotation["image_id"] for annotation in coco["annotations"]}
    image = dataset / "images" / next(i["file_name"] for i in coco["images"] if i["id"] in labelled)
    with Image.open(image) as photo:
        photo.load()
    image.unlink()  # a link into the source tree: replaced, not written through
    exif = Image.Exif()
    exif[0x0112] = 8
    photo.save(image, format="PNG", exif=exif)
    return image


@pytest.mark.parametrize("description", ["val split written by converters from /data", "exported by CVAT"])
def test_a_labelled_coco_image_turned_by_an_exif_tag_is_told_by_who_wrote_the_set(dataset, description):
    # another tool's COCO set (no splits.json, its own info) may have labels drawn on the turned image:
    # "convert again" was said of it all the same; the YOLO side tells the two apart, and the segmentation
    # commands refuse the image either way (a problem still)
    (dataset / "splits.json").unlink()
    image = _turn_a_labelled_val_image(dataset, description)
    tagged = (
        f"1 labelled image has an EXIF orientation tag (images/{image.parent.name}/{image.name}): "
        "OpenCV (SAM's reader) reads it turned, "
    )
    if description.startswith("val split written by converters"):
        again = "the labels, made from masks as stored, not; save the photos upright and convert again"
    else:
        again = (
            "and the segmentation commands refuse it whichever way the labels were drawn; save the photos "
            "upright, with their labels drawn on the upright images"
        )
    assert validate(dataset)["coco"]["val"].problems == [tagged + again]


def test_another_tools_splits_json_does_not_make_a_coco_set_the_converters(dataset):
    # any file named splits.json beside annotations/ made the set the converters': "convert again" was said
    # of another tool's set, whose labels may have been drawn on the turned image
    (dataset / "splits.json").write_text(json.dumps({"splits": {"train": "train.txt", "val": "val.txt"}}))
    _turn_a_labelled_val_image(dataset, "exported by CVAT")
    (problem,) = validate_coco(dataset / "annotations")["val"].problems
    assert problem.endswith("save the photos upright, with their labels drawn on the upright images")


def test_a_turned_tiff_dropped_for_its_label_is_told_why(dataset):
    # OpenCV's file-based imread (5.1) returns None for a TIFF that an EXIF tag turns a quarter (not square):
    # the image, dropped for a label of a class the data set lacks, was called "unreadable image"
    from PIL import Image

    label = next(p for p in sorted((dataset / "labels" / "val").glob("*.txt")) if not p.read_text())
    image = next((dataset / "images" / "val").glob(f"{label.stem}.*"))
    with Image.open(image) as photo:
        photo = photo.convert("RGB").crop((0, 0, photo.width, photo.height - 4))  # not square
    image.unlink()
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees clockwise
    photo.save(image.with_suffix(".tif"), exif=exif)
    label.write_text("7 0.5 0.5 0.2 0.2\n")
    problems = validate(dataset)["yolo"]["val"].problems
    assert problems[0].startswith(
        f"ultralytics dropped 1 of 3 images: {image.stem}.tif (label labels/val/{label.name}: Label class 7 "
    )


def test_a_split_whose_images_ultralytics_drops_all_of_is_that_one_problem(dataset):
    # it read none of them, and "no images, splits.json lists 3" followed: the images are there
    for label in (dataset / "labels" / "val").glob("*.txt"):
        label.write_text("0 1.5 0.5 0.2 0.2\n")
    [problem] = validate(dataset)["yolo"]["val"].problems
    assert problem.startswith("ultralytics dropped 3 of 3 images: ")


def test_a_yolo_seg_split_refused_for_its_box_files_is_that_one_problem(tmp_path, category_factory):
    # ultralytics reads no image of it, and "no images, splits.json lists 3" followed: the images are there
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task="segment", progress=False))
    label = next(path for path in sorted((out / "labels" / "val").glob("*.txt")) if path.read_text())
    label.write_text("0 0.5 0.5 0.2 0.2\n")
    [problem] = validate(out)["yolo"]["val"].problems
    assert problem.startswith(
        f"1 label file holds boxes (class cx cy w h), not polygons (labels/val/{label.name})"
    )


def _as_roboflow_export(out, export):
    """``out`` (a converted set) as Roboflow lays one out: ``valid/images/``, ``valid/labels/``."""
    for split, folder in (("train", "train"), ("val", "valid"), ("test", "test")):
        for kind in ("images", "labels"):
            shutil.copytree(out / kind / split, export / folder / kind)
    names = read_yaml(out / "data.yaml", what="data file")["names"]
    (export / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n"
        f"nc: {len(names)}\nnames: {json.dumps([names[i] for i in sorted(names)])}\n"
    )


@pytest.mark.parametrize("converted", [True, False], ids=["converted", "roboflow-export"])
def test_a_label_file_whose_image_is_gone_is_named(dataset, tmp_path, converted):
    # ultralytics reads a split's images and never a label file without one: the YOLO row named no file
    # ("yolo has 2 images, splits.json lists 3"), and of another tool's export said nothing at all
    folder, images, labels = dataset, "images/val", "labels/val"
    if not converted:
        folder, images, labels = tmp_path / "export", "valid/images", "valid/labels"
        _as_roboflow_export(dataset, folder)
    label = next(path for path in sorted((folder / labels).glob("*.txt")) if path.read_text())
    next((folder / images).glob(f"{label.stem}.*")).unlink()
    said = f"1 label file has no image ({labels}/{label.name}): ultralytics reads a split's images, not it"
    check = validate(folder)["yolo"]["val"]
    assert (check.problems[:1], check.notes) == (([said], []) if converted else ([], [said]))


def test_a_roboflow_yolo_seg_export_is_checked_as_segment(tmp_path, category_factory):
    # its label files are in valid/labels/, not labels/: it was checked as detect, a box file passed as ok
    category_factory(tmp_path / "data", "widget")
    out, export = tmp_path / "out", tmp_path / "export"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task="segment", progress=False))
    _as_roboflow_export(out, export)
    label = next(path for path in sorted((export / "valid" / "labels").glob("*.txt")) if path.read_text())
    label.write_text("0 0.5 0.5 0.2 0.2\n")
    [problem] = validate(export)["yolo"]["val"].problems
    assert problem.startswith(
        f"1 label file holds boxes (class cx cy w h), not polygons (valid/labels/{label.name})"
    )


def test_splits_given_as_list_files_or_lists_are_read_as_ultralytics_reads_them(dataset):
    # a CVAT export's train: train.txt (lines of image paths) read as "no images"; a list was a traceback
    for split in ("val", "test"):
        images = sorted((dataset / "images" / split).iterdir())
        (dataset / f"{split}.txt").write_text("".join(f"./images/{split}/{image.name}\n" for image in images))
    data_yaml = dataset / "data.yaml"
    text = data_yaml.read_text().replace("val: images/val", "val: val.txt").replace("test: images/test", "")
    data_yaml.write_text(text.replace("train: images/train", "train: [images/train, test.txt]"))
    results = validate(dataset)["yolo"]
    assert [(check.images, check.problems) for check in results.values()] == [
        (12, ["yolo has 12 images, splits.json lists 9"]),
        (3, []),
        (0, ["data.yaml names no test split, splits.json lists 3"]),
    ]


def test_a_file_ultralytics_reads_as_no_image_is_not_said_to_be_dropped(dataset):
    # a README or a .DS_Store among the images: ultralytics never reads it, and it was "dropped (unreadable)"
    (dataset / "images" / "val" / "README.txt").write_text("exported by hand\n")
    (dataset / "images" / "val" / ".DS_Store").write_bytes(b"\0")
    assert validate(dataset)["yolo"]["val"].problems == []


def test_images_of_a_type_ultralytics_does_not_read_are_a_note_naming_them(dataset):
    # ultralytics leaves a .gif (among its video formats) or a .ppm out of a split unsaid, as it does a README
    from PIL import Image

    photo = np.zeros((8, 8, 3), np.uint8)  # any picture: left out for its suffix, not its content
    for name in ("a.gif", "b.GIF"):
        Image.fromarray(photo).save(dataset / "images" / "train" / name, format="GIF")
    cv2.imwrite(str(dataset / "images" / "val" / "c.ppm"), photo)
    (dataset / "images" / "val" / "README.txt").write_text("exported by hand\n")
    checks = validate(dataset)["yolo"]
    assert checks["train"].notes == [
        "2 image files of a type ultralytics does not read (.gif) left out: images/train/a.gif, "
        "images/train/b.GIF; save them as PNG or JPEG to train on them"
    ]
    assert checks["val"].notes == [
        "1 image file of a type ultralytics does not read (.ppm) left out: images/val/c.ppm; save it as PNG "
        "or JPEG to train on it"
    ]
    assert [check.problems for check in checks.values()] == [[], [], []]
    assert checks["test"].notes == []


def test_a_val_folder_gone_is_one_line_without_a_blank_line_or_a_download_note(dataset, capsys):
    # ultralytics printed a blank line first and added where it downloads data sets to, and how to change
    # it: of a data set whose path: is absolute and that has nothing to download, a lead to follow in vain
    shutil.rmtree(dataset / "images" / "val")
    importlib.import_module("ultralytics.data.utils")  # its first import says where its settings were made
    capsys.readouterr()
    assert validate_main([str(dataset), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    data_yaml = dataset / "data.yaml"
    assert (out, err) == (
        "",
        f"error: ultralytics rejects {data_yaml}: Dataset '{data_yaml}' images not found, missing path "
        f"'{(dataset / 'images' / 'val').resolve()}'\n",
    )


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("images/trainx", "images/trainx does not exist, splits.json lists 9"),
        (
            "[images/train, images/trainx]",
            "data.yaml's train: names what does not exist (images/trainx): ultralytics stops on it, reading "
            "none of the split",
        ),
    ],
    ids=["alone", "in-a-list"],
)
def test_a_split_folder_that_does_not_exist_is_named(dataset, entry, problem):
    # a typo in data.yaml: alone it was "no images", in a list ultralytics' FileNotFoundError, a traceback
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().replace("train: images/train", f"train: {entry}"))
    checks = validate(dataset)["yolo"]
    assert (checks["train"].problems, checks["train"].images) == ([problem], 0)
    assert not checks["val"].problems


def test_a_relative_path_that_ultralytics_reads_from_the_working_folder_is_named(
    dataset, tmp_path, monkeypatch, capsys
):
    # a CVAT export's path: . checked from another folder: ultralytics' 'images not found' named a folder
    # there alone; one that exists there was 'has path: <the path as written>'
    export = tmp_path / "export"
    _as_roboflow_export(dataset, export)
    data_yaml = export / "data.yaml"
    data_yaml.write_text("path: .\n" + data_yaml.read_text().replace("../", ""))
    monkeypatch.chdir(tmp_path)
    assert validate_main([str(export), "--no-progress"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "(its path: . is relative: ultralytics reads it from the working folder where it exists there, "
            "else from its datasets_dir; set path: to the data set's folder)"
        )
    )
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "valid" / "images").mkdir(parents=True)
    with pytest.raises(
        UserError, match=re.escape(f"has path: . (relative, so ultralytics reads it as {tmp_path}:")
    ):
        validate(export)
    monkeypatch.chdir(export)
    assert validate_main([".", "--no-progress"]) == 0


def test_a_broken_link_in_another_tools_export_is_named_where_it_is(dataset, tmp_path):
    # it was 'images/images/x.jpg' of valid/images/x.jpg, with the advice to convert again
    export = tmp_path / "export"
    _as_roboflow_export(dataset, export)
    image = sorted((export / "valid" / "images").iterdir())[0]
    image.unlink()
    image.symlink_to(tmp_path / "gone.png")
    assert validate(export)["yolo"]["val"].problems == [
        f"1 image is a broken link (e.g. valid/images/{image.name} -> {tmp_path / 'gone.png'}): the files "
        "they point to were moved or deleted"
    ]


def test_a_split_without_its_label_folder_is_said_once_not_in_ultralytics_warning(dataset, tmp_path, capfd):
    # a Roboflow export's test/ of images alone: ultralytics' raw 'No labels found in .../labels.cache'
    # (never written) came before the table that says it
    export = tmp_path / "export"
    _as_roboflow_export(dataset, export)
    shutil.rmtree(export / "test" / "labels")
    capfd.readouterr()
    check = validate(export)["yolo"]["test"]
    captured = capfd.readouterr()  # ultralytics' handler holds the stream it found at import: fd level
    assert "No labels found" not in captured.out + captured.err
    assert check.notes[0].startswith("3 label files missing (test/labels/")
