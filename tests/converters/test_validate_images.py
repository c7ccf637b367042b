"""converters.validate's checks of image files in both formats: missing, broken, in two splits, turned."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from converters.validate import main as validate_main
from converters.validation import validate
from converters.validation.split_check import copied_images
from tests.converters.validated_sets import as_another_tools


def test_a_folder_in_an_image_s_place_is_named_in_both_formats(dataset):
    # ultralytics lists such a folder among the split's images and drops it: the YOLO row called its label
    # file one without an image, and the COCO row called the image missing, where a folder was
    image = sorted((dataset / "images" / "val").iterdir())[0]
    image.unlink()
    image.mkdir()
    folder = f"1 image file's place is a folder (images/val/{image.name}), not a file"
    results = validate(dataset)
    assert results["yolo"]["val"].problems == [folder, "yolo has 2 images, splits.json lists 3"]
    assert results["coco"]["val"].problems == [folder]


def test_validate_finds_missing_image_files_in_both_formats(dataset):
    image = next((dataset / "images" / "val").iterdir())
    image.unlink()
    results = validate(dataset)
    assert results["yolo"]["val"].problems  # ultralytics lists the folder: one image fewer
    assert results["coco"]["val"].problems == [f"1 image file missing (e.g. images/val/{image.name})"]


@pytest.mark.parametrize("converted", [True, False], ids=["converted", "another-tools"])
def test_an_image_linked_to_itself_is_a_link_loop_not_a_photo_moved_since(dataset, converted):
    # a link that leads back to itself (ln -sf x.png x.png) was called a broken link whose photo "moved or
    # was deleted since the conversion", and converting again the remedy: no photo was ever linked
    if not converted:
        as_another_tools(dataset)
        (dataset / "splits.json").unlink()
    image = sorted((dataset / "images" / "val").iterdir())[0]
    image.unlink()
    image.symlink_to(image.name)
    loop = (
        f"1 image is a link loop (e.g. images/val/{image.name} -> {image.name}): a symbolic link that leads "
        "back to itself, to no file; point it at its image"
    )
    results = validate(dataset)
    assert results["yolo"]["val"].problems[0] == loop
    assert results["coco"]["val"].problems == [loop]


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


LEAK = "one file in two splits, so {later} scores a model on images {seen}: remove {it} from train or {later}"


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
        + LEAK.format(later="val", seen="it trained on", it="it")
    ]
    assert results["test"].problems == []


def test_two_splits_of_one_folder_fail_the_later_naming_a_few_images(dataset):
    as_another_tools(dataset)
    (dataset / "splits.json").unlink()  # its check names the images of val elsewhere too
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().replace("val: images/val", "val: images/train"))
    results = validate(dataset)["yolo"]
    train = sorted(image.name for image in (dataset / "images" / "train").iterdir())
    shown = ", ".join(f"images/train/{name}" for name in train[:3])
    assert results["val"].problems == [
        f"9 images are in both train and val ({shown} and 6 more): "
        + LEAK.format(later="val", seen="it trained on", it="them")
    ]
    assert results["train"].problems == [] and results["test"].problems == []


def test_a_test_split_of_the_val_folder_is_a_note(dataset, capsys):
    # some exports point test: at the val folder on purpose: no training image leaks, so it failed wrongly
    as_another_tools(dataset)
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
    as_another_tools(dataset)
    (dataset / "splits.json").unlink()
    image = sorted((dataset / "images" / "train").iterdir())[0]
    alias = dataset / "images" / "val" / "alias.png"
    alias.symlink_to(image.resolve())
    shutil.copy(dataset / "labels" / "train" / f"{image.stem}.txt", dataset / "labels" / "val" / "alias.txt")
    problems = validate(dataset)["yolo"]["val"].problems
    assert problems == [
        f"1 image is in both train and val (images/val/alias.png = images/train/{image.name}): "
        + LEAK.format(later="val", seen="it trained on", it="it")
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
        + LEAK.format(later="test", seen="it trained on", it="it")
    )


def test_a_byte_identical_copy_in_another_split_is_a_note(dataset):
    # a copy is not the same file: a note (one photo saved twice, or two captures that are byte for byte one)
    as_another_tools(dataset)
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
