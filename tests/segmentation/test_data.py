"""Tests for segmentation.data: splits read back from the converters' COCO files."""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import UserError
from converters.masks import read_mask
from segmentation.data import FIX_COCO, check_data_folder, enclosing_data_set, load_split
from tests.conftest import assert_link_loop_line


def test_splits_match_splits_json_and_masks_match_the_source(tiny_dataset):
    splits = json.loads((tiny_dataset / "splits.json").read_text())
    total = 0
    for name in ("train", "val", "test"):
        split = load_split(tiny_dataset, name)
        assert split.annotation_file.name == f"instances_{name}.json"
        assert sorted(im.path.stem for im in split.images) == sorted(
            k.replace("/", "_") for k in splits[name]
        )
        total += len(split.images)
        assert set(split.categories.values()) <= {"bent", "color", "flip", "scratch"}
        for image in split.images:
            assert image.path.is_file()
            masks = image.instance_masks()
            assert masks.shape == (len(image.annotations), image.height, image.width)
            boxes = image.boxes()
            for mask, box in zip(masks, boxes, strict=True):
                ys, xs = np.nonzero(mask)
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == tuple(box)
            if image.is_background:
                assert not image.union_mask().any()
    assert total > 0


def test_union_mask_equals_the_mvtec_ground_truth(tiny_dataset):
    split = load_split(tiny_dataset, "train")
    image = next(im for im in split.images if not im.is_background)
    source = image.path.resolve()  # images/ holds symlinks into the MVTec tree
    mask_path = source.parents[2] / "ground_truth" / source.parent.name / f"{source.stem}_mask.png"
    assert np.array_equal(image.union_mask(), read_mask(mask_path) > 0)


def test_errors_name_the_file(tiny_dataset, tmp_path):
    with pytest.raises(UserError, match="unknown split 'dev'"):
        load_split(tiny_dataset, "dev")
    with pytest.raises(UserError, match="no COCO annotations"):
        load_split(tmp_path, "train")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train.json").write_text("{not json")
    with pytest.raises(UserError, match="instances_train.json"):
        load_split(tmp_path, "train")
    data = json.loads((tiny_dataset / "annotations" / "instances_val.json").read_text())
    data["images"][0]["file_name"] = "val/missing.png"
    (tmp_path / "annotations" / "instances_val.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="missing.png"):
        load_split(tmp_path, "val")


def test_a_windows_file_name_is_named_with_the_one_to_write(tiny_dataset, tmp_path):
    # another tool on Windows wrote "test\\a.png": "is missing" named a path whose photo ls showed
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    coco_file = data / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    first = coco["images"][0]["file_name"]
    coco["images"][0]["file_name"] = first.replace("/", "\\")
    coco_file.write_text(json.dumps(coco))
    with pytest.raises(UserError) as error:
        load_split(data, "val")
    windows = first.replace("/", "\\")
    assert str(error.value) == (
        f"image listed in {coco_file} is missing: {data / 'images' / windows} (its file_name {windows!r} is "
        f"a Windows path: write {first!r}, as COCO's file names are)"
    )


def test_a_file_name_too_long_for_the_file_system_is_one_line_naming_it(tiny_dataset, tmp_path):
    # Path.exists raised "OSError: [Errno 36] File name too long": a traceback
    coco_file = tmp_path / "annotations" / "instances_val.json"
    coco_file.parent.mkdir()
    (tmp_path / "images").symlink_to(tiny_dataset / "images")
    coco = json.loads((tiny_dataset / "annotations" / "instances_val.json").read_text())
    coco["images"][0]["file_name"] = "val/" + "a" * 300 + ".png"
    coco_file.write_text(json.dumps(coco))
    with pytest.raises(UserError) as error:
        load_split(tmp_path, "val")
    photo = tmp_path / "images" / coco["images"][0]["file_name"]
    assert str(error.value) == (
        f"cannot read image {photo}: its file_name in {coco_file} is longer than the file system allows: "
        f"{FIX_COCO}"
    )


def _refuse_photo_lookups(monkeypatch, images):
    """``os.stat`` of a photo in ``images`` raises as it would for another user (root searches any folder)."""

    def refused(path, *args, **kwargs):
        if Path(path).parent.parent == images and Path(path).suffix == ".png":
            raise PermissionError(13, "Permission denied", str(path))
        return original(path, *args, **kwargs)

    original = os.stat
    monkeypatch.setattr(os, "stat", refused)


def test_a_photo_in_a_folder_that_cannot_be_searched_is_one_line_naming_it(tiny_dataset, monkeypatch):
    _refuse_photo_lookups(monkeypatch, tiny_dataset / "images")
    with pytest.raises(UserError) as error:
        load_split(tiny_dataset, "val")
    assert re.fullmatch(
        r"cannot read \d+ photos: (.+ \(Permission denied: make .*/images/val readable\), ){2}.*",
        str(error.value),
    ), str(error.value)


@pytest.mark.parametrize("blocked", ["images", "link target"])
def test_the_folder_that_cannot_be_searched_is_named_with_the_chmod_that_lets_it(
    tiny_dataset, monkeypatch, blocked
):
    # it said "make <the photo's folder> readable": reading it was allowed, searching its parent (x) was not
    folder = tiny_dataset / "images" if blocked == "images" else tiny_dataset.parent / "mvtec"

    access = os.access
    _refuse_photo_lookups(monkeypatch, tiny_dataset / "images")
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: Path(path) != folder and access(path, mode, **kw)
    )
    with pytest.raises(UserError) as error:
        load_split(tiny_dataset, "val")
    named = f"(Permission denied: let {folder} be searched (chmod a+x {folder}))"
    assert re.fullmatch(rf"cannot read \d+ photos: (\S+ {re.escape(named)}, ){{2}}.*", str(error.value)), str(
        error.value
    )


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root searches any folder")
def test_a_folder_without_search_permission_is_named_for_real(tiny_dataset, tmp_path):
    data = tmp_path / "data folder"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    (data / "images").chmod(0o644)  # readable, not searchable
    try:
        with pytest.raises(UserError) as error:
            load_split(data, "val")
    finally:
        (data / "images").chmod(0o755)
    named = f"(Permission denied: let {data / 'images'} be searched (chmod a+x '{data / 'images'}'))"
    assert named in str(error.value), str(error.value)


def test_photos_beside_the_annotations_are_told_to_move_into_images(tiny_dataset, tmp_path):
    # another tool's layout: data/val/a.png beside data/annotations/, no images/ folder
    data = tmp_path / "data"
    (data / "annotations").mkdir(parents=True)
    shutil.copy(tiny_dataset / "annotations" / "instances_val.json", data / "annotations")
    shutil.copytree(tiny_dataset / "images" / "val", data / "val")
    first = json.loads((data / "annotations" / "instances_val.json").read_text())["images"][0]["file_name"]
    with pytest.raises(UserError) as error:
        load_split(data, "val")
    coco_file = data / "annotations" / "instances_val.json"
    assert str(error.value) == (
        f"image listed in {coco_file} is missing: {data / 'images' / first} "
        f"(it is at {data / first}: the photos are read from {data / 'images'}, file_name relative to it: "
        "move them there)"
    )


def test_a_photo_behind_a_broken_link_is_named_with_its_target(tiny_dataset, tmp_path):
    # converted with --link symlink (the default), then the original photos moved: 'is missing' named a
    # file that ls still listed
    data = tmp_path / "moved"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    first = json.loads((data / "annotations" / "instances_val.json").read_text())["images"][0]["file_name"]
    photo = data / "images" / first
    photo.unlink()
    photo.symlink_to(tmp_path / "gone" / "000.png")
    with pytest.raises(UserError) as error:
        load_split(data, "val")
    assert str(error.value) == (
        f"image listed in {data / 'annotations' / 'instances_val.json'} is a broken link: {photo} points to "
        f"{tmp_path / 'gone' / '000.png'}, which does not exist: put the photos back there, or convert the "
        "data set again"
    )


def test_every_photo_that_is_missing_or_does_not_read_is_named_in_one_line(tiny_dataset, tmp_path):
    # the split stopped at the first: three bad photos took three runs to find (segmentation.train, .evaluate)
    data = tmp_path / "bad"
    shutil.copytree(tiny_dataset, data)
    names = [
        image["file_name"]
        for image in json.loads((data / "annotations" / "instances_val.json").read_text())["images"]
    ]
    photos = [data / "images" / name for name in names]
    photos[0].write_bytes(b"")
    photos[1].unlink()
    with pytest.raises(UserError) as error:
        load_split(data, "val")
    coco_file = data / "annotations" / "instances_val.json"
    assert str(error.value) == (
        f"cannot read 2 photos: {photos[0]} (the file is empty), {photos[1]} (image listed in {coco_file} "
        "is missing)"
    )


def _turn_by_exif(path):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees clockwise
    with Image.open(path) as photo:
        photo.load()
    photo.save(path, exif=exif)


def _resize(path):
    cv2.imwrite(str(path), np.zeros((60, 99, 3), np.uint8))


@pytest.mark.parametrize(
    ("bad_first", "later"),
    [
        ("missing", lambda first, other, photo: _resize(photo)),
        ("empty", lambda first, other, photo: _turn_by_exif(photo)),
        ("empty", lambda first, other, photo: other.update(width=-1)),
        ("missing", lambda first, other, photo: first.update(width="x")),  # the missing photo's own entry
    ],
    ids=["missing-then-resized", "empty-then-exif-turned", "empty-then-bad-entry", "missing-with-bad-entry"],
)
def test_a_photo_that_does_not_read_is_named_before_a_later_error(tiny_dataset, tmp_path, bad_first, later):
    # the split went on past it to a later error (a photo's size or EXIF tag, a COCO entry): the photo that
    # stopped the reading before was no longer named, and once that was fixed the run stopped at it
    data = tmp_path / "bad"
    shutil.copytree(tiny_dataset, data)
    coco_file = data / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    entries = sorted(coco["images"], key=lambda entry: entry["id"])
    labelled = {annotation["image_id"] for annotation in coco["annotations"]}
    other = next(entry for entry in entries[1:] if entry["id"] in labelled)
    later(entries[0], other, data / "images" / other["file_name"])
    coco_file.write_text(json.dumps(coco))
    first = data / "images" / entries[0]["file_name"]
    if bad_first == "missing":
        first.unlink()
        line = f"image listed in {coco_file} is missing: {first}"
    else:
        first.write_bytes(b"")
        line = f"cannot read image {first}: the file is empty"
    for keep_unread in (False, True):  # inspection.evaluate keeps them for its decode pass
        with pytest.raises(UserError) as error:
            load_split(data, "val", keep_unread=keep_unread)
        assert str(error.value) == line


def test_photos_that_do_not_read_are_named_together_before_a_later_error(tiny_dataset, tmp_path):
    data = tmp_path / "bad"
    shutil.copytree(tiny_dataset, data)
    coco_file = data / "annotations" / "instances_val.json"
    entries = sorted(json.loads(coco_file.read_text())["images"], key=lambda entry: entry["id"])
    photos = [data / "images" / entry["file_name"] for entry in entries]
    photos[0].write_bytes(b"")
    photos[1].unlink()
    _resize(photos[2])
    with pytest.raises(UserError) as error:
        load_split(data, "val")
    assert str(error.value) == (
        f"cannot read 2 photos: {photos[0]} (the file is empty), {photos[1]} (image listed in {coco_file} "
        "is missing)"
    )


def test_a_split_read_for_a_decode_pass_keeps_the_photos_that_do_not_read(tiny_dataset, tmp_path):
    # inspection.evaluate names them with the photos cut short that its decode pass finds
    data = tmp_path / "bad"
    shutil.copytree(tiny_dataset, data)
    photo = load_split(data, "val").images[0].path
    photo.write_bytes(b"")
    split = load_split(data, "val", keep_unread=True)
    assert split.unread == {photo: f"cannot read image {photo}: the file is empty"}
    assert [image.path.name for image in split.images] == [
        image.path.name for image in load_split(tiny_dataset, "val").images
    ]
    assert split.images[0].path == photo


@pytest.mark.parametrize("spelt", ["as it is", "with ./", "with //"])
def test_a_photo_listed_twice_is_named(tiny_dataset, tmp_path, spelt):
    # a hand-edited COCO file: inspection.evaluate read 'two photos map to one output name ... X and X
    # (rename one of them)', the same file twice; spelt 'val/./a.png' or 'val//a.png' it was read twice
    data = tmp_path / "twice"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    coco_file = data / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    first = coco["images"][0]
    again = {"as it is": "/", "with ./": "/./", "with //": "//"}[spelt].join(first["file_name"].split("/", 1))
    coco["images"].append({**first, "id": 999, "file_name": again})
    coco_file.write_text(json.dumps(coco))
    with pytest.raises(UserError) as error:
        load_split(data, "val")
    assert str(error.value) == f"{coco_file} lists {again} twice (images {first['id']} and 999): {FIX_COCO}"


def test_the_reconvert_command_for_missing_coco_files_keeps_the_split(tmp_path, category_factory):
    # it said `--out DATA --coco --overwrite` alone: pasted, it drew the split again at the default seed,
    # and a detector trained on the --seed 3 split was then scored on a test split holding its train photos
    from converters.mvtec2yolo import main as mvtec2yolo

    category_factory(tmp_path / "mvtec", "widget")
    data = tmp_path / "data"
    assert (
        mvtec2yolo(["--root", str(tmp_path / "mvtec"), "--out", str(data), "--seed", "3", "--no-progress"])
        == 0
    )
    before = json.loads((data / "splits.json").read_text())
    with pytest.raises(UserError, match="^no COCO annotations at ") as refused:
        load_split(data, "test")
    command = shlex.split(str(refused.value).split("`")[1])
    assert command[:3] == ["python", "-m", "converters.mvtec2yolo"]
    args = [str(tmp_path / "mvtec") if word == "..." else word for word in command[3:]]
    assert mvtec2yolo([*args, "--no-progress"]) == 0
    assert json.loads((data / "splits.json").read_text()) == before
    assert len(load_split(data, "test").images) == len(before["test"])


def test_a_data_argument_that_is_no_data_set_is_named_for_what_it_is(tiny_dataset, tmp_path, link_loop):
    # each was told to convert into that very path with --overwrite (a raw tree: over its own photos)
    yaml_file = tiny_dataset / "data.yaml"
    expected = f"^--data {yaml_file} is a file: pass the data set folder {tiny_dataset}$"
    with pytest.raises(UserError, match=expected):
        load_split(yaml_file, "test")
    with pytest.raises(UserError, match=f"^--data {tmp_path / 'nowhere'} does not exist$"):
        load_split(tmp_path / "nowhere", "test")
    for given in (link_loop, link_loop / "set"):  # segmentation.train data=loop: 'data=loop does not exist'
        with pytest.raises(UserError) as error:
            check_data_folder(given, given=f"data={given}")
        assert_link_loop_line(f"error: {error.value}\n", f"data={given}", link_loop)
        with pytest.raises(UserError) as error:
            load_split(given, "test")
        assert_link_loop_line(f"error: {error.value}\n", f"--data {given}", link_loop)
    category = tmp_path / "mvtec" / "nut"
    for folder in ("train/good", "test/crack", "ground_truth/crack"):
        (category / folder).mkdir(parents=True)
    for tree in (category, category.parent):  # one category, or a folder of them
        with pytest.raises(UserError, match=f"^--data {tree} is a raw MVTec tree") as error:
            load_split(tree, "test")
        assert "--out OTHER_FOLDER --coco`" in str(error.value) and "--overwrite" not in str(error.value)
    for folders in (
        ("train/good", "test/good"),
        ("ground_truth/crack", "test/crack"),
    ):  # a category either way
        tree = tmp_path / "other" / folders[0].replace("/", "_")
        for folder in folders:
            (tree / folder).mkdir(parents=True)
        with pytest.raises(UserError, match=f"^--data {tree} is a raw MVTec tree"):
            load_split(tree, "test")


def test_a_converted_data_set_lacking_a_splits_annotations_is_told_to_reconvert(tiny_dataset, tmp_path):
    # its images/ holds train/ and test/ as an MVTec category does; data.yaml or splits.json say what it is
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    (data / "annotations" / "instances_test.json").unlink()
    (data / "data.yaml").unlink()  # a COCO-only conversion writes none
    with pytest.raises(UserError, match="^no COCO annotations at .*--coco --overwrite"):
        load_split(data, "test")
    only_train = tmp_path / "only_train"
    (only_train / "train").mkdir(parents=True)  # no test/ beside it: no MVTec category
    with pytest.raises(UserError, match="^no COCO annotations at "):
        load_split(only_train, "test")


@pytest.mark.parametrize(
    ("inside", "what"),
    [
        ("images", "a folder inside the data set {data}: pass {data}"),  # was "a raw MVTec tree"
        ("images/train", "a folder inside the data set {data}: pass {data}"),
        ("annotations", "a folder inside the data set {data}: pass {data}"),  # was "convert ... --out it"
        ("annotations/instances_train.json", "a file: pass the data set folder {data}"),  # was annotations/
    ],
)
def test_a_path_inside_a_data_set_is_told_to_pass_the_data_set(tiny_dataset, inside, what):
    given = tiny_dataset / inside
    with pytest.raises(UserError) as error:
        load_split(given, "test")
    assert str(error.value) == f"--data {given} is " + what.format(data=tiny_dataset)


@pytest.mark.parametrize(
    ("marks", "enclosing"),
    [
        (["splits.json", "annotations/"], True),  # mvtec2coco's output: no data.yaml
        (["data.yaml", "annotations/"], True),
        (["data.yaml"], False),  # a YOLO-only conversion is no segmentation data set
        (["annotations/"], False),
    ],
)
def test_a_data_set_is_annotations_beside_a_data_yaml_or_a_splits_file(tmp_path, marks, enclosing):
    for mark in marks:
        if mark.endswith("/"):
            (tmp_path / "ds" / mark).mkdir(parents=True)
        else:
            (tmp_path / "ds").mkdir(exist_ok=True)
            (tmp_path / "ds" / mark).write_text("{}\n")
    inside = tmp_path / "ds" / "images" / "train"
    assert enclosing_data_set(inside) == (tmp_path / "ds" if enclosing else None)


def test_a_data_set_kept_inside_another_is_a_data_set(tmp_path):
    # its own annotations/ make it one, whatever folder it was put in
    for folder in (tmp_path / "outer", tmp_path / "outer" / "sets" / "inner"):
        (folder / "annotations").mkdir(parents=True)
        (folder / "data.yaml").write_text("names: [a]\n")
    check_data_folder(tmp_path / "outer" / "sets" / "inner")


def test_a_run_folder_as_data_is_named_for_what_it_is(tmp_path):
    # it was told to convert into the run folder with --overwrite
    (tmp_path / "args.yaml").write_text("data: somewhere\n")
    with pytest.raises(UserError, match=r"is a training run's folder \(args.yaml\), not a data set"):
        load_split(tmp_path, "test")


def test_a_coco_size_other_than_the_photo_is_refused_when_the_split_is_read(wrong_size_dataset):
    # it was refused only once the whole split had been through SAM's encoder: minutes on a CPU
    with pytest.raises(
        UserError, match=r"val.* is 64x64 px, but .*instances_val.json says 64x128: correct it"
    ):
        load_split(wrong_size_dataset, "val")
    assert load_split(wrong_size_dataset, "train").images  # the other split's entries agree


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda coco: coco.update(annotations="x"), "'annotations' must be a list of objects, got str"),
        (lambda coco: coco.update(images={"a": 1}), "'images' must be a list of objects, got dict"),
        (
            lambda coco: coco.update(categories=[1, 2]),
            "'categories' must be a list of objects, got a list holding int",
        ),
        # pycocotools' KeyError traceback
        (lambda coco: coco.pop("categories"), "is not a COCO instances file (needs images"),
    ],
)
def test_a_coco_file_of_another_shape_names_the_part(tiny_dataset, tmp_path, edit, message):
    # pycocotools' "string indices must be integers, not 'str'" said nothing of which part was wrong
    data = tmp_path / "copy"
    shutil.copytree(tiny_dataset, data)
    coco_file = data / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    edit(coco)
    coco_file.write_text(json.dumps(coco))
    with pytest.raises(UserError, match=r"instances_val\.json") as error:
        load_split(data, "val")
    assert message in str(error.value)


def test_an_annotated_photo_turned_by_an_exif_tag_is_refused(tiny_dataset, tmp_path):
    # the original a symlinked split points to, re-saved by a phone app with an orientation tag: square,
    # so the size check passed and SAM trained and scored on the turned photo under unturned masks
    from PIL import Image

    data = tmp_path / "turned"
    shutil.copytree(tiny_dataset, data, symlinks=False)
    split = load_split(data, "val")
    labelled = next(image for image in split.images if not image.is_background)
    assert labelled.width == labelled.height
    upright = labelled.path.read_bytes()

    def turn(path):
        exif = Image.Exif()
        exif[0x0112] = 6  # turned 90 degrees clockwise
        with Image.open(path) as photo:
            photo.load()
        photo.save(path, exif=exif)

    turn(labelled.path)
    with pytest.raises(UserError, match=rf"{labelled.path.name} has an EXIF orientation tag"):
        load_split(data, "val")
    labelled.path.write_bytes(upright)
    turn(next(image for image in split.images if image.is_background).path)  # no masks to misplace
    assert load_split(data, "val").images


@pytest.mark.parametrize("listed", ["as stored", "other"])
def test_a_background_photo_an_exif_tag_turns_is_named_with_the_tag(tiny_dataset, tmp_path, listed):
    # it read 'is 32x64 px, but ... says 64x32: correct it in the file': a size neither PIL nor `file` shows
    from PIL import Image

    data = tmp_path / "turned"
    shutil.copytree(tiny_dataset, data, symlinks=False)
    coco_file = data / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    labelled = {a["image_id"] for a in coco["annotations"]}
    image = next(im for im in coco["images"] if im["id"] not in labelled)
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees clockwise: read 32 wide, 64 tall
    photo = data / "images" / image["file_name"]
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(photo, format="PNG", exif=exif)
    image["width"], image["height"] = (64, 32) if listed == "as stored" else (64, 64)
    coco_file.write_text(json.dumps(coco))
    with pytest.raises(UserError) as error:
        load_split(data, "val")
    fix = (
        "save it upright (PIL.ImageOps.exif_transpose), or write 32x64, its size as read, in the file"
        if listed == "as stored"
        else FIX_COCO
    )
    assert str(error.value) == (
        f"{photo} is 32x64 px as read, turned by its EXIF orientation tag (64x32 as stored), but {coco_file} "
        f"says {image['width']}x{image['height']}: {fix}"
    )
    image["width"], image["height"] = 32, 64
    coco_file.write_text(json.dumps(coco))
    assert load_split(data, "val").images


def _share_a_val_photo_with_train(data):
    """Lists the first annotated photo of ``data``'s val COCO file in its train file too (a hand edit)."""
    folder = data / "annotations"
    train, val = (json.loads((folder / f"instances_{s}.json").read_text()) for s in ("train", "val"))
    image = next(im for im in val["images"] if any(a["image_id"] == im["id"] for a in val["annotations"]))
    new_id, next_annotation = (
        max(im["id"] for im in train["images"]) + 1,
        max(a["id"] for a in train["annotations"]),
    )
    train["images"].append({**image, "id": new_id})
    for annotation in (a for a in val["annotations"] if a["image_id"] == image["id"]):
        next_annotation += 1
        train["annotations"].append({**annotation, "id": next_annotation, "image_id": new_id})
    (folder / "instances_train.json").write_text(json.dumps(train))
    return data / "images" / image["file_name"]


@pytest.mark.parametrize("reader", ["train", "folds"])
def test_a_photo_two_splits_list_is_refused_naming_both_files(tiny_dataset, tmp_path, reader):
    # trained on and scored in val, or pooled twice by --folds (either side of a round), without a word
    from segmentation.folds import pool_defect_images
    from segmentation.run_setup import load_training_data

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    photo = _share_a_val_photo_with_train(data)
    with pytest.raises(UserError) as error:
        (load_training_data if reader == "train" else pool_defect_images)(data)
    assert str(error.value) == (
        f"photo {photo} is listed in both {data / 'annotations' / 'instances_train.json'} and "
        f"{data / 'annotations' / 'instances_val.json'}: the train and val splits must not share a photo: "
        "remove it from one of the two files (or have the tool that wrote them put it in one split; a data "
        "set the converters wrote and since edited: convert it again)"
    )


def _name_a_photo(data, split, file_name):
    """Gives the first annotated photo of ``data``'s ``split`` COCO file ``file_name`` (a hand edit)."""
    path = data / "annotations" / f"instances_{split}.json"
    coco = json.loads(path.read_text())
    image = next(im for im in coco["images"] if any(a["image_id"] == im["id"] for a in coco["annotations"]))
    image["file_name"] = file_name(data, image["file_name"])
    path.write_text(json.dumps(coco))
    return image


@pytest.mark.parametrize("command", ["train", "evaluate", "evaluate --folds"])
@pytest.mark.parametrize(
    "file_name, what, hint",
    [
        (lambda data, name: str(data.parent / "elsewhere.png"), "an absolute path", ""),
        (lambda data, name: "../../elsewhere.png", "a path with a '..' part", ""),
        (lambda data, name: "..\\..\\elsewhere.png", "a path with a '..' part", ""),
        (
            lambda data, name: "\\elsewhere.png",
            "an absolute path",
            "",
        ),  # its Windows hint said '/elsewhere.png'
        (lambda data, name: "C:\\data\\elsewhere.png", "an absolute path", ""),
        (lambda data, name: str(data / "images" / name), "an absolute path", " (write {name!r})"),
    ],
    ids=["absolute", "dot-dot", "windows dot-dot", "windows root", "windows drive", "absolute inside images"],
)
def test_a_file_name_outside_the_images_folder_is_refused(
    tiny_dataset, tmp_path, capsys, command, file_name, what, hint
):
    # "/elsewhere/a.png" or "../a.png" read a photo outside the data set without a word, as os.path.join does
    from segmentation.evaluate import main as evaluate
    from segmentation.train import main as train

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    split = "train" if command == "train" else "test"
    original = next(
        im["file_name"]
        for im in json.loads((data / "annotations" / f"instances_{split}.json").read_text())["images"]
    )
    image = _name_a_photo(data, split, file_name)
    shutil.copy(data / "images" / original, data.parent / "elsewhere.png")  # a photo there to read
    out = tmp_path / "out"
    if command == "train":
        assert train([f"data={data}", f"out={out}", "epochs=1", "device=cpu"]) == 2
    else:
        folds = ["--folds", "3"] if command.endswith("--folds") else []
        assert evaluate(["--data", str(data), "--out", str(out), "--no-progress", *folds]) == 2
    coco_file = data / "annotations" / f"instances_{split}.json"
    written = hint.format(name=original) if hint else ""
    assert capsys.readouterr().err == (
        f"error: image {image['id']} in {coco_file} has file_name {image['file_name']!r}, {what}: photos are "
        f"read from {data / 'images'}, their file_name a path inside it{written}: {FIX_COCO}\n"
    )
    assert not out.exists()


def test_photos_in_a_folder_that_cannot_be_searched_are_not_called_missing_on_python_3_13(
    tiny_dataset, unsearchable
):
    # Path.exists is False there from Python 3.13: each photo was "missing", to be put back
    folder = tiny_dataset / "images" / "val"
    unsearchable(folder)
    with pytest.raises(UserError) as error:
        load_split(tiny_dataset, "val")
    named = f"(Permission denied: let {folder} be searched (chmod a+x {folder}))"
    assert re.fullmatch(rf"cannot read \d+ photos: (\S+ {re.escape(named)}, ){{2}}.*", str(error.value)), str(
        error.value
    )


def test_annotations_in_a_folder_that_cannot_be_searched_are_not_called_missing_on_python_3_13(
    tiny_dataset, unsearchable
):
    # "no COCO annotations at ...: convert it again", which would have overwritten them
    unsearchable(tiny_dataset / "annotations")
    with pytest.raises(OSError) as error:  # the commands' line: "error: Permission denied: <the file>"
        load_split(tiny_dataset, "val")
    assert error.value.errno == errno.EACCES and error.value.filename == str(
        tiny_dataset / "annotations" / "instances_val.json"
    )


def test_a_data_set_in_a_folder_that_cannot_be_searched_is_not_called_missing_on_python_3_13(
    tiny_dataset, unsearchable
):
    # "--data ... does not exist"
    unsearchable(tiny_dataset.parent)
    with pytest.raises(PermissionError) as error:
        check_data_folder(tiny_dataset)
    assert error.value.filename == str(tiny_dataset)
