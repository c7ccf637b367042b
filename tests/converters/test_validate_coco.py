"""converters.validate's COCO check: each instances file read by pycocotools: entries, areas, self-AP."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from common.coco import FIX_COCO, read_coco_index
from common.errors import UserError
from converters.convert import ConvertConfig, convert
from converters.validate import main as validate_main
from converters.validation import validate, validate_coco
from converters.validation.coco import self_ap_problems
from segmentation.coco_checks import check_entries as segmentation_entries
from tests.converters.validated_sets import turn_a_labelled_val_image


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
            lambda a: a.update(segmentation={"size": [48, 64], "counts": "zz!!"}),
            "annotation {id} in {path} has no segmentation",
        ),
        (  # another tool's polygon not in a list, and one of [x, y] pairs: in segmentation's words
            "annotations",
            lambda a: a.update(segmentation=[1, 1, 9, 1, 9, 9]),
            "annotation {id} in {path} has a segmentation of one flat list of numbers: COCO's polygons are "
            "a list of them, [[x1, y1, x2, y2, ...]]: put it in another pair of brackets",
        ),
        (
            "annotations",
            lambda a: a.update(segmentation=[[[1, 1], [9, 1], [9, 9]]]),
            "annotation {id} in {path} has polygons of [x, y] pairs: COCO's polygons are flat lists",
        ),
        (
            "annotations",
            lambda a: a.update(segmentation=[[1, 1, 9, 1, 9, float("nan")]]),
            "annotation {id} in {path} has no segmentation",
        ),
        (  # in segmentation's words (test_an_area_outside_cocoeval_s_range_is_refused_as_segmentation_does)
            "annotations",
            lambda a: a.update(area="12"),
            "annotation {id} in {path} has area '12', not its mask's pixel count",
        ),
        (
            "images",
            lambda image: image.pop("height"),
            "image {id} ({name}) in {path} has no width and height",
        ),
    ],
    ids=[
        "no-bbox",
        "unlisted-category",
        "empty-segmentation",
        "corrupt-rle",
        "flat-polygon",
        "point-pairs",
        "nan-point",
        "text-area",
        "no-height",
    ],
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


def test_an_area_a_few_pixels_off_is_a_problem(dataset):
    coco_file = dataset / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    first, second = coco["annotations"][:2]
    first["area"] += 2  # within the polygons' rendering slack
    second["area"] = round(second["area"] * 1.1) + 2
    coco_file.write_text(json.dumps(coco))
    problems = validate(dataset)["coco"]["val"].problems
    assert len(problems) == 1 and problems[0].startswith(f"annotation {second['id']}: renders ")


def test_a_coco_file_without_areas_is_ok_as_segmentation_reads_it(dataset):
    # segmentation's commands take each area from its mask ('leave it out of the file'); validate refused it
    coco_file = dataset / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    for annotation in coco["annotations"]:
        del annotation["area"]
    coco_file.write_text(json.dumps(coco))
    assert validate(dataset)["coco"]["val"].problems == []


def test_a_box_of_no_size_fails_the_self_evaluation(dataset):
    coco_file = dataset / "annotations" / "instances_test.json"
    coco = json.loads(coco_file.read_text())
    coco["annotations"][0]["bbox"][2:] = [0, 0]
    coco_file.write_text(json.dumps(coco))
    problems = validate(dataset)["coco"]["test"].problems
    assert len(problems) == 1 and problems[0].startswith("bbox AP of ground truth against itself is ")


@pytest.mark.parametrize(
    "area", [0, -5, 1e11, "12", None], ids=["zero", "negative", "above-1e10", "text", "null"]
)
def test_an_area_outside_cocoeval_s_range_is_refused_as_segmentation_does(dataset, area):
    # an area of 0 or less was 'renders N px, area says 0' and a self-AP below 1.0 (or undefined) here, while
    # segmentation's commands refused the file in other words: one line, the same in both
    coco_file = dataset / "annotations" / "instances_test.json"
    coco = json.loads(coco_file.read_text())
    annotation = coco["annotations"][0]
    annotation["area"] = area
    coco_file.write_text(json.dumps(coco))
    expected = (
        f"annotation {annotation['id']} in {coco_file} has area {area!r}, not its mask's pixel count (a "
        "number above 0, and COCOeval scores up to 1e+10): leave it out of the file, and it is taken from "
        "the mask"
    )
    with pytest.raises(UserError) as validated:
        validate(dataset)
    assert str(validated.value) == expected
    image = next(image for image in coco["images"] if image["id"] == annotation["image_id"])
    categories = {category["id"]: category["name"] for category in coco["categories"]}
    with pytest.raises(UserError) as loaded:
        segmentation_entries(image, [annotation], categories, source=coco_file)
    assert str(loaded.value) == expected


def test_a_split_of_annotations_cocoeval_ignores_fails_the_self_evaluation(dataset):
    # COCOeval ignores a ground truth of an area outside its range: the self AP is undefined (NaN), which
    # passed 'AP < 0.999' without a word; the line then named crowds and unlisted categories, refused before,
    # and no next step. Such areas are refused before now (check_entries): the scoring is asked directly
    coco_file = dataset / "annotations" / "instances_test.json"
    coco = json.loads(coco_file.read_text())
    for annotation in coco["annotations"]:
        annotation["area"] = -annotation["area"]
    coco_file.write_text(json.dumps(coco))
    assert self_ap_problems(read_coco_index(coco_file)) == [
        f"{iou_type} AP of ground truth against itself is undefined, not 1.0: COCOeval ignores every "
        "annotation, each of an area outside its range (0 to 1e10 px): leave area out of the file, and it is "
        "taken from the mask"
        for iou_type in ("bbox", "segm")
    ]


def test_an_rle_of_another_size_than_its_image_is_refused_in_segmentation_s_words(dataset):
    # pycocotools decodes it at its own size: 'renders 0 px', or with no area (taken from the mask) 'ok'
    coco_file = dataset / "annotations" / "instances_test.json"
    coco = json.loads(coco_file.read_text())
    annotation = coco["annotations"][0]
    image = next(i for i in coco["images"] if i["id"] == annotation["image_id"])
    annotation["segmentation"] = {"size": [10, 10], "counts": [100]}
    del annotation["area"]
    coco_file.write_text(json.dumps(coco))
    with pytest.raises(UserError) as caught:
        validate(dataset)
    assert str(caught.value) == (
        f"annotation {annotation['id']} in {coco_file} is an RLE mask of size [10, 10] (height, width), but "
        f"its image {image['file_name']} is {[image['height'], image['width']]}: {FIX_COCO}"
    )


def test_an_rle_whose_runs_fall_short_is_refused_in_segmentation_s_words(dataset):
    # pycocotools decodes it without a word into whatever the runs cover: with no area, 'ok'
    coco_file = dataset / "annotations" / "instances_test.json"
    coco = json.loads(coco_file.read_text())
    annotation = coco["annotations"][0]
    image = next(i for i in coco["images"] if i["id"] == annotation["image_id"])
    height, width = image["height"], image["width"]
    annotation["segmentation"] = {"size": [height, width], "counts": [5, 3]}
    del annotation["area"]
    coco_file.write_text(json.dumps(coco))
    with pytest.raises(UserError) as caught:
        validate(dataset)
    assert str(caught.value) == (
        f"annotation {annotation['id']} in {coco_file} is an RLE mask whose runs cover 8 pixels, not the "
        f"{height * width} of its size {height}x{width}: {FIX_COCO}"
    )


def test_a_crowd_annotation_is_refused_in_segmentation_s_words(dataset):
    # segmentation's commands refuse one (they take every annotation for one defect); validate said ok
    coco_file = dataset / "annotations" / "instances_test.json"
    coco = json.loads(coco_file.read_text())
    coco["annotations"][0]["iscrowd"] = 1
    coco_file.write_text(json.dumps(coco))
    with pytest.raises(UserError) as caught:
        validate(dataset)
    assert str(caught.value) == (
        f"annotation {coco['annotations'][0]['id']} in {coco_file} has iscrowd 1: a crowd region, which COCO "
        "scores as one to ignore and this package cannot (it takes every annotation for one defect): set "
        "iscrowd 0 if it outlines one defect, or remove it"
    )


def test_an_image_of_over_100_instances_scores_1_against_itself(tmp_path, category_factory, mask_factory):
    # 11 x 11 specks of 2x2 px on one image: COCO's default keeps 100 detections per image
    specks = [(4 * col + 1, 4 * row + 1, 4 * col + 3, 4 * row + 3) for row in range(11) for col in range(11)]
    category_factory(tmp_path / "data", "widget", defects={"speck": [mask_factory(48, 64, specks)] * 5})
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, formats=("coco",), progress=False))
    checks = validate(out)["coco"]
    assert checks["train"].instances == 3 * 121
    assert [check.problems for check in checks.values()] == [[], [], []]


@pytest.mark.parametrize("description", ["val split written by converters from /data", "exported by CVAT"])
def test_a_labelled_coco_image_turned_by_an_exif_tag_is_told_by_who_wrote_the_set(dataset, description):
    # another tool's COCO set (no splits.json, its own info) may have labels drawn on the turned image:
    # "convert again" was said of it all the same; the YOLO side tells the two apart, and the segmentation
    # commands refuse the image either way (a problem still)
    (dataset / "splits.json").unlink()
    image = turn_a_labelled_val_image(dataset, description)
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
    turn_a_labelled_val_image(dataset, "exported by CVAT")
    (problem,) = validate_coco(dataset / "annotations")["val"].problems
    assert problem.endswith("save the photos upright, with their labels drawn on the upright images")


@pytest.mark.parametrize("kind", ["folder", "broken link", "link loop"])
def test_a_coco_file_s_place_holding_no_file_is_named_for_what_is_there(dataset, tmp_path, capsys, kind):
    # each was 'missing COCO file', sending the user after a file where something was
    path = dataset / "annotations" / "instances_val.json"
    path.unlink()
    if kind == "folder":
        path.mkdir()
        expected = f"{path} is a folder, not a COCO file: put the split's instances file there"
    elif kind == "broken link":
        path.symlink_to(tmp_path / "gone.json")
        expected = f"{path} is a broken link (to {tmp_path / 'gone.json'}): no COCO file there"
    else:
        path.symlink_to(path.name)
        expected = f"{path} is a link loop"
    assert validate_main([str(dataset), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {expected}")


@pytest.mark.parametrize(
    ("file_name", "what"),
    [
        (lambda dataset: "../../elsewhere.png", "a path with a '..' part"),
        (lambda dataset: "..\\..\\elsewhere.png", "a path with a '..' part"),
        (lambda dataset: str(dataset.parent / "elsewhere.png"), "an absolute path"),
        (lambda dataset: "\\elsewhere.png", "an absolute path"),
        (lambda dataset: "C:\\elsewhere.png", "an absolute path"),
    ],
    ids=["dot-dot", "windows dot-dot", "absolute", "windows root", "windows drive"],
)
def test_a_coco_file_name_outside_the_images_folder_is_refused_naming_it(dataset, capsys, file_name, what):
    # images/../../elsewhere.png was read, and the split called ok; segmentation's commands refuse it
    path = dataset / "annotations" / "instances_val.json"
    coco = json.loads(path.read_text())
    image = coco["images"][0]
    shutil.copy(dataset / "images" / image["file_name"], dataset.parent / "elsewhere.png")  # a photo there
    image["file_name"] = file_name(dataset)
    path.write_text(json.dumps(coco))
    (dataset / "splits.json").unlink()  # the split record would name the changed file
    assert validate_main([str(dataset), "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"error: image {image['id']} in {path} has file_name {image['file_name']!r}, {what}: photos are read "
        f"from {dataset / 'images'}, their file_name a path inside it: {FIX_COCO}\n"
    )
