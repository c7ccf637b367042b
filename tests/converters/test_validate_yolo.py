"""converters.validate's YOLO check: data.yaml and each split's images and labels read by ultralytics."""

from __future__ import annotations

import importlib
import json
import re
import shutil

import cv2
import numpy as np
import pytest

from common.config import read_yaml
from common.errors import UserError
from converters.convert import ConvertConfig, convert
from converters.validate import main as validate_main
from converters.validation import SplitCheck, format_checks, validate
from converters.validation.label_rows import on_one_line
from converters.validation.split_check import note_backgrounds_only
from tests.converters.layout_trees import CATEGORY, make_layout_tree, write
from tests.converters.validated_sets import as_another_tools, as_roboflow_export


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
    # OpenCV decodes it, so it was called a "corrupt label"; ultralytics refuses images under 10 px, which
    # the line said with no next step
    image = sorted((dataset / "images" / "train").iterdir())[0]
    image.unlink()
    cv2.imwrite(str(image), np.zeros((5, 5, 3), np.uint8))
    problems = validate(dataset)["yolo"]["train"].problems
    step = "scale it up to 10 pixels a side or more, or remove it and its label file"
    reason = f"image: image size (5, 5) <10 pixels; {step}"
    assert problems[0] == f"ultralytics dropped 1 of 9 images: {image.name} ({reason})"


def test_a_roboflow_export_s_label_files_are_named_where_they_are(dataset, tmp_path):
    # Roboflow's layout (valid/labels/x.txt beside valid/images/x.jpg): named 'labels/valid/x.txt', no file
    export = tmp_path / "export"
    as_roboflow_export(dataset, export)
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


@pytest.mark.parametrize("converted", [True, False], ids=["converted", "another-tools"])
@pytest.mark.parametrize("kind", ["folder", "broken link", "link loop"])
def test_a_label_path_holding_no_file_is_named_for_what_is_there(dataset, tmp_path, kind, converted):
    # a folder, or a link to no file, where a label file belongs: ultralytics reads the image as a
    # background, as without the file, and the check called the file missing, which sent the user
    # looking for a file where something was
    if not converted:
        as_another_tools(dataset)
        (dataset / "splits.json").unlink()
    label = next(p for p in sorted((dataset / "labels" / "train").glob("*.txt")) if p.read_text())
    label.unlink()
    where = f"labels/train/{label.name}"
    if kind == "folder":
        label.mkdir()
        expected = f"1 label file's place is a folder ({where}), not a file: read as a background"
    elif kind == "broken link":
        label.symlink_to(tmp_path / "gone.txt")
        expected = f"1 label file is a broken link ({where} -> {tmp_path / 'gone.txt'}): read as a background"
    else:
        label.symlink_to(label.name)
        expected = (
            f"1 label file is a link loop ({where} -> {label.name}: a link that leads back to itself): read "
            "as a background"
        )
    check = validate(dataset)["yolo"]["train"]
    assert (check.problems if converted else check.notes) == [expected]


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


@pytest.mark.parametrize("stop", [KeyboardInterrupt, UserError], ids=["ctrl-c", "error"])
def test_the_jpeg_guard_stays_after_a_ctrl_c_while_the_scan_threads_may_run(dataset, monkeypatch, stop):
    # restored at once, a scan thread still checking a JPEG without its end marker re-saved it after all
    from ultralytics.data import utils
    from ultralytics.utils import LOGGER

    from converters.validation import yolo

    original = utils._replace_image
    monkeypatch.setattr(utils, "_replace_image", original)  # put back after the test, whatever it leaves
    monkeypatch.setattr(LOGGER, "filters", [*LOGGER.filters])  # and the filter a Ctrl-C leaves

    def scan(*args, **kwargs):
        assert utils._replace_image is not original  # held off during the scan
        raise stop("stopped")

    monkeypatch.setattr(yolo, "_yolo_split_check", scan)
    with pytest.raises(stop):
        validate(dataset)
    assert (utils._replace_image is original) == (stop is UserError)


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


def test_a_split_whose_images_are_all_gone_is_one_problem_for_yolo(dataset):
    for image in (dataset / "images" / "val").iterdir():
        image.unlink()
    results = validate(dataset)
    assert results["yolo"]["val"].problems == ["no images, splits.json lists 3"]
    assert results["coco"]["val"].problems[0].startswith("3 image files missing")


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


def test_dropped_images_are_named_three_at_most(dataset):
    labels = sorted((dataset / "labels" / "train").glob("*.txt"))
    for label in labels[:4]:
        label.write_text("0 1.5 0.5 0.2 0.2\n")
    problem = validate(dataset)["yolo"]["train"].problems[0]
    assert problem.startswith("ultralytics dropped 4 of 9 images: ") and problem.endswith(" and 1 more")
    assert problem.count(f": non-normalized or out of bounds coordinates [{1.5:11.5g}])") == 3


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


@pytest.mark.parametrize("converted", [True, False], ids=["converted", "roboflow-export"])
def test_a_label_file_whose_image_is_gone_is_named(dataset, tmp_path, converted):
    # ultralytics reads a split's images and never a label file without one: the YOLO row named no file
    # ("yolo has 2 images, splits.json lists 3"), and of another tool's export said nothing at all
    folder, images, labels = dataset, "images/val", "labels/val"
    if not converted:
        folder, images, labels = tmp_path / "export", "valid/images", "valid/labels"
        as_roboflow_export(dataset, folder)
    label = next(path for path in sorted((folder / labels).glob("*.txt")) if path.read_text())
    next((folder / images).glob(f"{label.stem}.*")).unlink()
    said = f"1 label file has no image ({labels}/{label.name}): ultralytics reads a split's images, not it"
    check = validate(folder)["yolo"]["val"]
    assert (check.problems[:1], check.notes) == (([said], []) if converted else ([], [said]))


@pytest.mark.parametrize("shape", ["[17]", "", "[a, 3]"], ids=["one-number", "empty", "text"])
def test_a_kpt_shape_of_no_two_numbers_is_one_line(dataset, shape):
    # ultralytics' scan unpacks it into keypoints and dims in any task: a ValueError traceback
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(data_yaml.read_text() + f"kpt_shape: {shape}\n")
    value = {"[17]": "[17]", "": "None", "[a, 3]": "['a', 3]"}[shape]
    with pytest.raises(UserError) as caught:
        validate(dataset)
    assert str(caught.value) == (
        f"{data_yaml} has kpt_shape {value}, not [keypoints, dims] (two whole numbers, as [17, 3]): "
        "ultralytics stops on it in any task; correct it, or delete the line (a detect or segment set needs "
        "none)"
    )


def test_hidden_files_in_a_label_folder_are_no_label_files_without_image(dataset):
    # ultralytics' glob skips them, as it skips hidden images: each was a problem failing the split
    label = next(path for path in sorted((dataset / "labels" / "val").glob("*.txt")) if path.read_text())
    (label.parent / f"._{label.name}").write_bytes(b"\x00\x05\x16\x07")  # macOS' AppleDouble copy
    (label.parent / ".ipynb_checkpoints").mkdir()
    (label.parent / ".ipynb_checkpoints" / f"{label.stem}-checkpoint.txt").write_text(label.read_text())
    check = validate(dataset)["yolo"]["val"]
    assert (check.problems, check.notes) == ([], [])


def test_a_roboflow_yolo_seg_export_is_checked_as_segment(tmp_path, category_factory):
    # its label files are in valid/labels/, not labels/: it was checked as detect, a box file passed as ok
    category_factory(tmp_path / "data", "widget")
    out, export = tmp_path / "out", tmp_path / "export"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task="segment", progress=False))
    as_roboflow_export(out, export)
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
    step = ": its files changed since the conversion; convert again"  # data.yaml, edited
    assert [(check.images, check.problems) for check in results.values()] == [
        (12, [f"yolo has 12 images, splits.json lists 9{step}"]),
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
    # it: of a data set whose path: is absolute and that has nothing to download, a lead to follow in vain;
    # then it ended on the missing folder, without a next step
    shutil.rmtree(dataset / "images" / "val")
    importlib.import_module("ultralytics.data.utils")  # its first import says where its settings were made
    capsys.readouterr()
    assert validate_main([str(dataset), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    data_yaml = dataset / "data.yaml"
    assert (out, err) == (
        "",
        f"error: ultralytics rejects {data_yaml}: Dataset '{data_yaml}' images not found, missing path "
        f"'{(dataset / 'images' / 'val').resolve()}': restore that folder, or correct the split's entry in "
        "data.yaml\n",
    )


def test_a_roboflow_export_s_val_folder_gone_is_one_line_with_its_next_step(dataset, tmp_path, capsys):
    # no path: (its own folder read, as it exists): ultralytics' note on where it downloads data sets to
    # was kept, a lead to follow in vain, and nothing said what to do
    export = tmp_path / "export"
    as_roboflow_export(dataset, export)
    shutil.rmtree(export / "valid" / "images")
    assert validate_main([str(export), "--no-progress"]) == 2
    data_yaml = export / "data.yaml"
    assert capsys.readouterr().err == (
        f"error: ultralytics rejects {data_yaml}: Dataset '{data_yaml}' images not found, missing path "
        f"'{(export / 'valid' / 'images').resolve()}': restore that folder, or correct the split's entry in "
        "data.yaml\n"
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
    as_roboflow_export(dataset, export)
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
    as_roboflow_export(dataset, export)
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
    as_roboflow_export(dataset, export)
    shutil.rmtree(export / "test" / "labels")
    capfd.readouterr()
    check = validate(export)["yolo"]["test"]
    captured = capfd.readouterr()  # ultralytics' handler holds the stream it found at import: fd level
    assert "No labels found" not in captured.out + captured.err
    assert check.notes[0].startswith("3 label files missing (test/labels/")
