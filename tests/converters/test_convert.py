from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import unicodedata
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

import converters.dataset
from common import folders
from common.errors import UserError
from common.image_files import IMAGE_SUFFIXES
from common.io import partial_dir, temporary_path
from converters import convert as convert_module
from converters.classes import class_namer, load_value_map
from converters.cli import build_parser, config_from_args
from converters.convert import (
    ConvertConfig,
    convert,
    copied_photo_warnings,
    format_report,
    soft_mask_warnings,
)
from converters.dataset import Sample
from converters.mvtec import ImageRecord
from converters.mvtec2coco import main as mvtec2coco
from converters.mvtec2yolo import main as mvtec2yolo
from converters.splits import SPLITS, load_splits, save_splits
from converters.validation import validate
from tests.conftest import assert_link_loop_line


def tree_digest(root: Path) -> dict[str, str]:
    """Content hash of every file under ``root``: proof that the input was not modified."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def config(root: Path, out: Path, **options) -> ConvertConfig:
    return ConvertConfig(root=root, out=out, progress=False, **options)


def label_lines(out: Path) -> dict[str, list[str]]:
    return {p.stem: p.read_text().splitlines() for p in (out / "labels").glob("*/*.txt")}


def test_yolo_and_coco_share_images_and_splits(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    before = tree_digest(tmp_path / "data")
    yolo = convert(config(tmp_path / "data", tmp_path / "yolo", seed=5))
    coco = convert(config(tmp_path / "data", tmp_path / "coco", formats=("coco",), seed=5))
    assert tree_digest(tmp_path / "data") == before  # the input is only read
    assert (tmp_path / "yolo" / "splits.json").read_text() == (tmp_path / "coco" / "splits.json").read_text()
    for split in SPLITS:
        yolo_images = sorted(p.name for p in (tmp_path / "yolo" / "images" / split).iterdir())
        coco_json = json.loads((tmp_path / "coco" / "annotations" / f"instances_{split}.json").read_text())
        assert yolo_images == sorted(Path(im["file_name"]).name for im in coco_json["images"])
        assert all(im["file_name"].startswith(f"{split}/") for im in coco_json["images"])
        assert yolo.instances[split] == coco.instances[split]
    assert not (tmp_path / "coco" / "labels").exists() and not (tmp_path / "yolo" / "annotations").exists()
    assert yolo.names == ["hole", "scratch"]
    # 10 defect images, 60/20/20 per defect type; 0.5 background per defect image
    assert [yolo.images[s] - yolo.backgrounds[s] for s in SPLITS] == [6, 2, 2]
    assert [yolo.backgrounds[s] for s in SPLITS] == [3, 1, 1]
    assert sum(yolo.instances["train"].values()) == 3 * 1 + 3 * 2  # scratch: one region, hole: two


def test_labels_match_masks(tmp_path, category_factory, mask_factory):
    masks = {"dent": [mask_factory(48, 64, [(8, 4, 24, 12), (40, 30, 48, 40)])]}
    category_factory(tmp_path / "data", "widget", defects=masks, n_train_good=1, n_test_good=0)
    convert(config(tmp_path / "data", tmp_path / "out", ratios=(1, 0, 0), background_ratio=0))
    lines = label_lines(tmp_path / "out")["widget_test_dent_000"]
    boxes = sorted(tuple(float(v) for v in line.split()) for line in lines)
    expected = [(0, 16 / 64, 8 / 48, 16 / 64, 8 / 48), (0, 44 / 64, 35 / 48, 8 / 64, 10 / 48)]
    assert boxes == [pytest.approx(box, abs=1e-6) for box in expected]
    image = tmp_path / "out" / "images" / "train" / "widget_test_dent_000.png"
    assert image.is_symlink() and image.resolve() == (tmp_path / "data/widget/test/dent/000.png").resolve()


def test_segment_task_and_rle_mode(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    convert(
        config(
            tmp_path / "data",
            tmp_path / "out",
            formats=("yolo", "coco"),
            task="segment",
            coco_segmentation="rle",
        )
    )
    lines = [line for ls in label_lines(tmp_path / "out").values() for line in ls]
    assert lines and all(len(line.split()) >= 7 and len(line.split()) % 2 == 1 for line in lines)
    annotations = json.loads((tmp_path / "out/annotations/instances_train.json").read_text())["annotations"]
    assert all(isinstance(a["segmentation"]["counts"], str) for a in annotations)


@pytest.mark.parametrize("link", ["hardlink", "copy"])
def test_link_modes(tmp_path, category_factory, link):
    category_factory(tmp_path / "data", "widget")
    convert(config(tmp_path / "data", tmp_path / "out", link=link))
    images = list((tmp_path / "out" / "images").glob("*/*.png"))
    assert images and not any(p.is_symlink() for p in images)


def test_a_full_disk_while_copying_names_the_output_not_the_input(tmp_path, category_factory, monkeypatch):
    category_factory(tmp_path / "data", "widget")

    def full_disk(source, target):  # what shutil's sendfile copy raises on a full disk: source first
        raise OSError(28, "No space left on device", str(source), None, str(target))

    monkeypatch.setattr(converters.dataset.shutil, "copy2", full_disk)
    with pytest.raises(UserError) as error:
        convert(config(tmp_path / "data", tmp_path / "out", link="copy"))
    message = str(error.value)
    assert message.startswith(f"cannot write {tmp_path / 'out'}: No space left on device: ")
    assert "(from " in message  # the input image is named only as the source of the copy
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("written", ["labels/train/", "data.yaml", "annotations/instances_train.json"])
def test_a_full_disk_writing_a_text_file_names_the_file(tmp_path, category_factory, monkeypatch, written):
    # Path.write_text failed at close naming no file: the line was "cannot write OUT: No space left on device"
    category_factory(tmp_path / "data", "widget")
    out, real_open = tmp_path / "out", open
    name = written.rpartition("/")[2]

    def open_on_full_disk(path, mode="r", *args, **kwargs):  # the file, or its temporary, on a full disk
        if "w" in mode or "x" in mode:
            chosen = Path(path).name.startswith((name, f".{name}")) and "_good_" not in str(path)  # rows
            if chosen and written.rpartition("/")[0] in str(path):
                return real_open("/dev/full", "wb" if "b" in mode else "w")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", open_on_full_disk)
    monkeypatch.setattr("io.open", open_on_full_disk)
    with pytest.raises(UserError) as error:
        convert(config(tmp_path / "data", out, formats=("yolo", "coco")))
    monkeypatch.undo()
    message = str(error.value)
    assert message.startswith(f"cannot write {out}: No space left on device: {out / written}")
    assert message.endswith(".txt" if written.endswith("/") else written) and "\n" not in message
    assert not out.exists()


def test_class_naming_options(tmp_path, category_factory):
    category_factory(tmp_path / "data", "metal_nut")
    category_factory(tmp_path / "data", "screw", defects=None)
    report = convert(
        config(tmp_path / "data", tmp_path / "a", names_template="{defect_text} on {category_text}")
    )
    assert report.names == ["hole on metal nut", "hole on screw", "scratch on metal nut", "scratch on screw"]
    names = yaml.safe_load((tmp_path / "a" / "data.yaml").read_text())["names"]
    assert names == dict(enumerate(report.names))
    assert convert(config(tmp_path / "data", tmp_path / "b")).names == [
        "hole",
        "scratch",
    ]  # merged across categories
    assert convert(config(tmp_path / "data", tmp_path / "c", single_class=True)).names == ["defect"]
    report = convert(
        config(tmp_path / "data", tmp_path / "d", categories=("screw",), exclude_defects=("hole",))
    )
    assert report.names == ["scratch"] and sum(report.images.values()) == 5 + (2 + 1 + 1)
    # every defect type excluded: refused, not a data set without a class
    every = config(
        tmp_path / "data", tmp_path / "e", categories=("screw",), exclude_defects=("hole", "scratch")
    )
    with pytest.raises(UserError, match=r"no defect image left to convert under .*data \(\d+ good images"):
        convert(every)
    assert not (tmp_path / "e").exists()
    # a value map names the classes, yet there is no defect image to split (inspection.predict's masks
    # tree of a lot it called all good, converted with its printed command): refused the same way
    values = tmp_path / "values.json"
    values.write_text('{"255": "hole", "0": "good"}')
    with pytest.raises(UserError, match=r"no defect image left to convert under .*data \(\d+ good images"):
        convert(replace(every, out=tmp_path / "f", mask_values=values))
    assert not (tmp_path / "f").exists()


def test_mask_values_map(tmp_path, category_factory):
    mask = np.zeros((48, 64), np.uint8)
    mask[5:10, 5:10] = 255
    mask[5:10, 10:14] = 254  # touches the first region: still its own instance
    mask[30:40, 30:40] = 253
    category_factory(tmp_path / "data", "cable", defects={"combined": [mask] * 3})
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"255": "contamination", "254": "cut", "253": "hole", "0": "good"}))
    report = convert(config(tmp_path / "data", tmp_path / "out", mask_values=values))
    assert report.names == ["contamination", "cut", "hole"]
    assert (
        sum(report.instances["train"].values())
        == 3 * report.images["train"] - 3 * report.backgrounds["train"]
    )
    values.write_text(json.dumps({"255": "contamination"}))
    with pytest.raises(UserError, match="000_mask.png: mask value 253 is not in the mask-values map"):
        convert(config(tmp_path / "data", tmp_path / "out2", mask_values=values))


def test_a_colour_mask_whose_colours_share_a_value_is_refused_with_a_value_map(tmp_path, category_factory):
    # red and green regions both read as 255 (the channel maximum): one class for two, silently
    mask = np.zeros((48, 64, 3), np.uint8)
    mask[5:10, 5:10] = (0, 0, 255)  # BGR: red
    mask[30:40, 30:40] = (0, 255, 0)  # green
    category_factory(tmp_path / "data", "cable", defects={"combined": [mask] * 3})
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"255": "contamination"}))
    message = (
        r"colour mask .*000_mask.png: the colours \(255, 0, 0\) and \(0, 255, 0\) are both read as value 255"
    )
    with pytest.raises(UserError, match=message):
        convert(config(tmp_path / "data", tmp_path / "out", mask_values=values))
    # without a value map any coloured pixel is defect, the class is the folder: both regions kept
    report = convert(config(tmp_path / "data", tmp_path / "out2"))
    assert sum(sum(counts.values()) for counts in report.instances.values()) == 2 * 3
    # one colour (red everywhere) reads as one value: nothing to tell apart
    mask[mask.any(axis=2)] = (0, 0, 255)
    category_factory(tmp_path / "red", "cable", defects={"combined": [mask] * 3})
    assert convert(config(tmp_path / "red", tmp_path / "out3", mask_values=values)).names == ["contamination"]


def test_a_palette_mask_is_read_by_its_indices_with_a_value_map(tmp_path, category_factory):
    # VOC/CVAT/LabelMe masks: index 1 shown as (128, 0, 0), 2 as (0, 128, 0); read as colours, both
    # were value 128 and the map's "1" and "2" named nothing
    data = category_factory(
        tmp_path / "data", "cable", defects={"combined": [np.zeros((48, 64), np.uint8)] * 3}
    )
    indices = np.zeros((48, 64), np.uint8)
    indices[5:10, 5:10] = 1
    indices[30:40, 30:40] = 2
    for path in sorted((data / "ground_truth" / "combined").iterdir()):
        image = Image.fromarray(indices, mode="P")
        image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])
        image.save(path)
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"1": "scratch", "2": "dent"}))
    report = convert(config(tmp_path / "data", tmp_path / "out", mask_values=values))
    assert report.names == ["dent", "scratch"]
    totals = {name: sum(counts.get(name, 0) for counts in report.instances.values()) for name in report.names}
    assert totals == {"dent": 3, "scratch": 3}
    # a black-and-white palette reads as its greys, 0 and 255, as before
    image = Image.fromarray((indices > 0).astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 255, 255])
    for path in sorted((data / "ground_truth" / "combined").iterdir()):
        image.save(path)
    values.write_text(json.dumps({"255": "scratch"}))
    assert convert(config(tmp_path / "data", tmp_path / "out2", mask_values=values)).names == ["scratch"]


def test_an_editor_s_palette_mask_of_a_red_defect_first_and_black_reads_by_colour_with_a_value_map(
    tmp_path, category_factory
):
    # index 0 red (the defect), index 1 black (the background): read by index, the defect was background
    # and the map's "255" met a value 1 it does not name
    data = category_factory(
        tmp_path / "data", "cable", defects={"scratch": [np.zeros((48, 64), np.uint8)] * 3}
    )
    indices = np.ones((48, 64), np.uint8)
    indices[5:10, 5:15] = 0
    for path in sorted((data / "ground_truth" / "scratch").iterdir()):
        image = Image.fromarray(indices, mode="P")
        image.putpalette([255, 0, 0, 0, 0, 0])
        image.save(path)
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"255": "scratch"}))
    report = convert(config(tmp_path / "data", tmp_path / "out", mask_values=values, ratios=(1, 0, 0)))
    assert report.names == ["scratch"]
    assert sum(counts.get("scratch", 0) for counts in report.instances.values()) == 3
    assert sorted(set(label_lines(tmp_path / "out")["cable_test_scratch_000"])) == [
        "0 0.15625 0.15625 0.15625 0.104167"
    ]


@pytest.mark.parametrize(
    ("palette", "values", "refusal"),
    [
        # a grey palette, white first: read by its greys (255 the defect-free part), not by index 0 and 1
        (
            [255, 255, 255, 0, 0, 0],
            {"1": "scratch"},
            "000_mask.png: mask value 255 is not in the mask-values map (known: 0, 1); a palette PNG, "
            "read by the greys or colours it shows, not by its indices: save it with one channel, one grey "
            "value per class",
        ),
        # VOC's: read by its indices, not its colour (128)
        (
            [0, 0, 0, 128, 0, 0],
            {"128": "scratch"},
            "000_mask.png: mask value 1 is not in the mask-values map (known: 0, 128); a palette PNG, "
            "read by its indices (index 0 background), not by the colours it shows: save it with one "
            "channel, one grey value per class",
        ),
    ],
    ids=["grey palette", "coloured palette"],
)
def test_a_value_map_s_refusal_of_a_palette_mask_says_how_it_was_read(
    tmp_path, category_factory, palette, values, refusal
):
    # the label tool shows index 1, the refusal named a value the file seems not to hold
    data = category_factory(
        tmp_path / "data", "cable", defects={"scratch": [np.zeros((48, 64), np.uint8)] * 3}
    )
    indices = np.zeros((48, 64), np.uint8)
    indices[5:10, 5:15] = 1
    for path in sorted((data / "ground_truth" / "scratch").iterdir()):
        image = Image.fromarray(indices, mode="P")
        image.putpalette(palette)
        image.save(path)
    map_file = tmp_path / "values.json"
    map_file.write_text(json.dumps(values))
    with pytest.raises(UserError) as raised:
        convert(config(tmp_path / "data", tmp_path / "out", mask_values=map_file))
    assert str(raised.value).endswith(refusal) and "\n" not in str(raised.value)


def test_a_mask_of_many_values_each_in_the_value_map_is_no_soft_mask(tmp_path, category_factory):
    # nine classes coded 1..9: every value is the map's, none an anti-aliased edge
    mask = np.zeros((48, 64), np.uint8)
    for value in range(1, 10):
        mask[5 * value - 4 : 5 * value - 1, 5:10] = value
    category_factory(tmp_path / "data", "cable", defects={"combined": [mask] * 3})
    values = tmp_path / "values.json"
    values.write_text(json.dumps({str(value): f"class_{value}" for value in range(1, 10)}))
    report = convert(config(tmp_path / "data", tmp_path / "out", mask_values=values))
    assert len(report.names) == 9
    assert not any("distinct defect values" in warning for warning in report.warnings)


def test_empty_mask_is_skipped_or_strict_error(tmp_path, category_factory, mask_factory):
    masks = {"dent": [mask_factory(48, 64, [(1, 1, 5, 5)]), np.zeros((48, 64), np.uint8)]}
    category_factory(tmp_path / "data", "widget", defects=masks)
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    assert report.skipped == [("widget/test/dent/001", "empty mask")]
    assert "1 x empty mask (e.g. widget/test/dent/001)" in format_report(report)
    with pytest.raises(UserError, match="empty mask on a defect image: .*dent/001_mask.png \\(--strict\\)"):
        convert(config(tmp_path / "data", tmp_path / "strict", strict=True))


def test_a_mask_whose_values_the_map_names_good_is_not_called_empty(tmp_path, category_factory, mask_factory):
    masks = {
        "dent": [mask_factory(48, 64, [(1, 1, 5, 5)]), mask_factory(48, 64, [(9, 9, 12, 12)], value=128)]
    }
    category_factory(tmp_path / "data", "widget", defects=masks)
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"255": "dent", "128": "good"}))  # 128: a region marked not to learn
    report = convert(config(tmp_path / "data", tmp_path / "out", mask_values=values))
    reason = "no defect value in the mask (the --mask-values map names its values good)"
    assert report.skipped == [("widget/test/dent/001", reason)]  # it said 'empty mask'


def test_min_area(tmp_path, category_factory, mask_factory):
    masks = {
        "dent": [mask_factory(48, 64, [(1, 1, 9, 9), (20, 20, 21, 21)]), mask_factory(48, 64, [(3, 3, 4, 5)])]
    }
    category_factory(tmp_path / "data", "widget", defects=masks)
    report = convert(config(tmp_path / "data", tmp_path / "out", min_area=4))
    assert report.n_small == 2
    assert report.skipped == [("widget/test/dent/001", "all 1 regions below --min-area 4")]
    assert "regions dropped by --min-area: 2" in format_report(report)


def test_reused_splits_file(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    convert(config(tmp_path / "data", tmp_path / "a", seed=1))
    convert(config(tmp_path / "data", tmp_path / "b", seed=2, splits_file=tmp_path / "a" / "splits.json"))
    assert json.loads((tmp_path / "a/splits.json").read_text()) == json.loads(
        (tmp_path / "b/splits.json").read_text()
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": ["widget/test/scratch/999"], "val": [], "test": []}))
    # the error named no file: which splits file, of those a user keeps, was stale?
    with pytest.raises(
        UserError, match="splits file .*bad.json lists an image that is not in the data: .*999"
    ):
        convert(config(tmp_path / "data", tmp_path / "c", splits_file=bad))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2, 3]", "must hold a JSON object, not list"),  # another program's JSON
        ('{"train": []}', "lacks the lists val, test"),
        ("", "not JSON"),  # an empty file
    ],
)
def test_a_wrong_splits_file_is_refused_before_any_photo_is_read(
    tmp_path, category_factory, monkeypatch, content, message
):
    # it was refused only after every photo and mask was read: minutes on a whole MVTec AD
    category_factory(tmp_path / "data", "widget")
    bad = tmp_path / "bad.json"
    bad.write_text(content)

    def read_nothing(*args, **kwargs):
        raise AssertionError("photos read before the splits file was checked")

    monkeypatch.setattr(convert_module, "read_samples", read_nothing)
    with pytest.raises(UserError, match=f"splits file .*bad.json.*{message}"):
        convert(config(tmp_path / "data", tmp_path / "c", splits_file=bad))


def test_two_images_of_one_output_name_are_refused_before_anything_is_written(
    tmp_path, category_factory, mask_factory
):
    # widget_test_dent_000 and widget_test_Dent_000: one file on a case-insensitive file system
    masks = {defect: [mask_factory(48, 64, [(5, 5, 15, 9)])] for defect in ("dent", "Dent")}
    category_factory(tmp_path / "data", "widget", defects=masks)
    with pytest.raises(UserError, match="two images map to one output name 'widget_test_[dD]ent_000'"):
        convert(ConvertConfig(root=tmp_path / "data", out=tmp_path / "out", progress=False))
    assert not (tmp_path / "out").exists()


def test_an_image_name_that_is_not_utf8_is_refused_before_anything_is_written(tmp_path, category_factory):
    # it went into instances_*.json as "\udcff", which JSON readers other than Python's refuse or mangle
    category_factory(tmp_path / "data", "widget")
    good = sorted((tmp_path / "data" / "widget" / "train" / "good").iterdir())[0]
    try:
        good.rename(good.with_name(os.fsdecode(b"bad\xff.png")))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    with pytest.raises(UserError) as error:
        convert(ConvertConfig(root=tmp_path / "data", out=tmp_path / "out", progress=False))
    assert str(error.value) == (
        f"{good.parent} holds a name that is not UTF-8, b'bad\\xff.png': rename it (the JSON files "
        "written name it, and JSON readers refuse such names)"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("break_", ["\n", "\r"])
@pytest.mark.parametrize(
    "which", ["train/good/000.png", "test/hole/000.png", "ground_truth/hole/000_mask.png"]
)
def test_a_file_name_with_a_line_break_is_refused_before_anything_is_written(
    tmp_path, category_factory, which, break_
):
    # it was taken: its output files were named 'widget_train_good_bad\nname.png', one name read as two
    # lines by anything that lists them one per line (a YOLO image list, ls, a shell loop)
    category = category_factory(tmp_path / "data", "widget")
    path = category / which
    renamed = path.with_name(f"bad{break_}{path.name}")
    path.rename(renamed)
    if which.startswith("test/"):  # its mask too, so that the pair still holds (a mask alone is no pair)
        mask = category / "ground_truth/hole/000_mask.png"
        mask.rename(mask.with_name(f"bad{break_}000_mask.png"))
    with pytest.raises(UserError) as error:
        convert(ConvertConfig(root=tmp_path / "data", out=tmp_path / "out", progress=False))
    message = str(error.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{renamed.parent} holds a name with a line break, {renamed.name!r}: rename it")
    assert not (tmp_path / "out").exists()


def test_a_reused_split_with_a_defect_type_excluded_leaves_it_out(tmp_path, category_factory):
    # one split, with and without a defect type (an ablation): 'splits file lists an image that is
    # not in the data' for the excluded images, which are in the data
    category_factory(tmp_path / "data", "widget")  # scratch, hole
    convert(config(tmp_path / "data", tmp_path / "a"))
    listed = load_splits(tmp_path / "a" / "splits.json")
    report = convert(
        config(
            tmp_path / "data",
            tmp_path / "b",
            splits_file=tmp_path / "a/splits.json",
            exclude_defects=("hole",),
        )
    )
    holes = [key for split in SPLITS for key in listed[split] if "/hole/" in key]
    assert holes and sorted(report.skipped) == sorted((key, "--exclude-defect") for key in holes)
    # splits.json lists what was written, so converters.validate finds every split as it lists it
    written = load_splits(tmp_path / "b" / "splits.json")
    for split in SPLITS:
        assert written[split] == [key for key in listed[split] if "/hole/" not in key]
    assert all(
        not check.problems for checks in validate(tmp_path / "b").values() for check in checks.values()
    )


@pytest.mark.parametrize("key", ["widget/test", "widget", "widget/test/scratch/999"])
def test_a_reused_split_key_of_no_excluded_defect_is_refused_with_a_defect_excluded(
    tmp_path, category_factory, key
):
    # only a key whose third part is an excluded defect is skipped: one too short to name a defect is
    # refused as any key not in the data is, and no IndexError
    category_factory(tmp_path / "data", "widget")  # scratch, hole
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": [key, "widget/test/hole"], "val": [], "test": []}))
    with pytest.raises(
        UserError, match=f"splits file .*bad.json lists an image that is not in the data: {key}$"
    ):
        convert(config(tmp_path / "data", tmp_path / "c", splits_file=bad, exclude_defects=("hole",)))


def test_existing_output_refused_then_replaced_atomically(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    convert(config(tmp_path / "data", tmp_path / "out"))
    with pytest.raises(UserError, match="output folder exists: .*out \\(pass --overwrite"):
        convert(config(tmp_path / "data", tmp_path / "out"))
    convert(config(tmp_path / "data", tmp_path / "out", overwrite=True, formats=("coco",)))
    assert not (tmp_path / "out" / "labels").exists() and (tmp_path / "out" / "annotations").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]  # no temp folders left


def test_a_ctrl_c_of_an_overwrite_says_the_out_folder_holds_the_earlier_data_set(
    tmp_path, category_factory, monkeypatch, capsys
):
    # it printed 'interrupted' alone: the earlier data set, left whole, read as the one just asked for
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    convert(config(tmp_path / "data", out))
    before = tree_digest(out)

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_module, "write_dataset", stop)
    with pytest.raises(KeyboardInterrupt):
        convert(config(tmp_path / "data", out, overwrite=True, task="segment"))
    assert capsys.readouterr().err == (
        f"stopped: {out} is replaced only once the conversion is done, so nothing of this run was kept "
        "there; what it holds is an earlier run's\n"
    )
    assert tree_digest(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_overwrite_refuses_a_folder_holding_other_files_than_a_data_sets(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    convert(config(tmp_path / "data", tmp_path / "out"))
    (tmp_path / "out" / "thesis.txt").write_text("mine")  # --overwrite deleted it with the data set
    with pytest.raises(UserError, match=r"--out .*out holds thesis.txt, which this command does not write"):
        convert(config(tmp_path / "data", tmp_path / "out", overwrite=True))
    assert (tmp_path / "out" / "thesis.txt").read_text() == "mine" and (tmp_path / "out" / "labels").is_dir()


def test_overwrite_refuses_a_yolo_data_set_made_otherwise(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    mine = tmp_path / "mine"  # ultralytics' own layout, made by hand: its photos are files, not links
    (mine / "images" / "train").mkdir(parents=True)
    (mine / "labels" / "train").mkdir(parents=True)
    (mine / "images" / "train" / "a.png").write_bytes(b"my photo")
    (mine / "data.yaml").write_text("path: .\n")
    with pytest.raises(UserError, match=r"--out .*mine holds data.yaml, images, labels but no splits.json"):
        convert(config(tmp_path / "data", mine, overwrite=True))  # deleted the photos with the folder
    assert (mine / "images" / "train" / "a.png").read_bytes() == b"my photo"
    convert(config(tmp_path / "data", tmp_path / "out"))
    (tmp_path / "out" / ".DS_Store").write_text("")  # a converted one is replaced, as before
    convert(config(tmp_path / "data", tmp_path / "out", overwrite=True, formats=("coco",)))
    assert not (tmp_path / "out" / "labels").exists()


def test_failure_leaves_nothing_behind(tmp_path, category_factory, image_writer):
    category_factory(tmp_path / "data", "widget")
    convert(config(tmp_path / "data", tmp_path / "out"))
    before = tree_digest(tmp_path / "out")
    image_writer(tmp_path / "data/widget/ground_truth/scratch/004_mask.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(UserError, match="size mismatch: .*scratch/004.png is 64x48, .*004_mask.png is 10x10"):
        convert(config(tmp_path / "data", tmp_path / "out", overwrite=True))
    assert tree_digest(tmp_path / "out") == before  # the old output survives a failed overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda c: (c / "ground_truth/hole/001_mask.png").unlink(),
            "defect image has no mask: .*hole/001.png",
        ),
        (lambda c: (c / "test/hole/001.png").unlink(), "mask has no image: .*hole/001_mask.png"),
        (lambda c: (c / "test/hole/002.png").write_bytes(b"not a png"), "cannot read image .*hole/002.png"),
        (lambda c: (c / "train/good/000.png").write_bytes(b""), "cannot read image .*good/000.png"),
        (
            lambda c: (c / "ground_truth/hole/003_mask.png").write_bytes(b"\x89PNG garbage"),
            "cannot decode mask .*hole/003_mask.png",
        ),
        (
            lambda c: cv2.imwrite(str(c / "ground_truth/hole/000_mask.png"), np.zeros((5, 5), np.uint8)),
            "image/mask size mismatch",
        ),
    ],
)
def test_bad_input_errors_name_the_file(tmp_path, category_factory, damage, message):
    damage(category_factory(tmp_path / "data", "widget"))
    with pytest.raises(UserError, match=message):
        convert(config(tmp_path / "data", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("photo", "shape", "kind", "step"),
    [  # a defect photo; a good one, flat, drawn as a background (--background-ratio 1: every good photo)
        ("test/scratch/000.png", (9, 9), "defect photo", "scale it and its mask up"),
        ("train/good/000.png", (5, 40), "good photo", "scale it up"),
    ],
    ids=["9x9-defect", "40x5-good"],
)
@pytest.mark.parametrize(
    ("convert_main", "flags"), [(mvtec2yolo, []), (mvtec2coco, ["--yolo"])], ids=["mvtec2yolo", "mvtec2coco"]
)
def test_a_photo_ultralytics_finds_too_small_is_refused_naming_it(
    tmp_path, category_factory, photo, shape, kind, step, convert_main, flags, capsys
):
    # ultralytics drops an image with a side under 10 pixels ('image size (9, 9) <10 pixels') and trains on
    # the rest: the data set was written, and only converters.validate said that yolo train would drop it
    category = category_factory(tmp_path / "data", "widget")
    cv2.imwrite(str(category / photo), np.zeros((*shape, 3), np.uint8))
    if "scratch" in photo:
        cv2.imwrite(str(category / "ground_truth/scratch/000_mask.png"), np.full(shape, 255, np.uint8))
    argv = ["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert convert_main([*argv, *flags, "--background-ratio", "1"]) == 2
    height, width = shape
    assert capsys.readouterr().err == (
        f"error: {category / photo} is {width}x{height} pixels: ultralytics drops an image with a side under "
        f"10 pixels ('<10 pixels'), so yolo train would leave out this {kind} of the YOLO set; {step} or "
        "move it out of the source tree\n"
    )
    assert not (tmp_path / "out").exists()
    assert mvtec2coco(argv) == 0  # COCO alone: no ultralytics reads it
    capsys.readouterr()
    cv2.imwrite(str(category / photo), np.zeros((10, 10, 3), np.uint8))
    if "scratch" in photo:
        cv2.imwrite(str(category / "ground_truth/scratch/000_mask.png"), np.full((10, 10), 255, np.uint8))
    assert convert(config(tmp_path / "data", tmp_path / "out10", formats=("yolo", "coco"))).images  # 10: read


@pytest.mark.parametrize("convert_main", [mvtec2yolo, mvtec2coco], ids=["mvtec2yolo", "mvtec2coco --yolo"])
def test_a_too_small_photo_the_yolo_set_would_not_hold_is_no_error(
    tmp_path, category_factory, convert_main, capsys
):
    # the size check ran on every photo read: a good photo never written as a background (--background-ratio
    # 0) or a defect photo skipped for its empty mask stopped it, 'so yolo train would leave it out'
    category = category_factory(tmp_path / "data", "widget")
    cv2.imwrite(str(category / "train/good/tiny.png"), np.zeros((9, 40, 3), np.uint8))
    cv2.imwrite(str(category / "test/scratch/tiny.png"), np.zeros((9, 40, 3), np.uint8))
    cv2.imwrite(str(category / "ground_truth/scratch/tiny_mask.png"), np.zeros((9, 40), np.uint8))
    flags = ["--yolo"] if convert_main is mvtec2coco else []
    argv = ["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert convert_main([*argv, *flags, "--background-ratio", "0"]) == 0, capsys.readouterr().err
    written = [p.name for p in (tmp_path / "out" / "images").rglob("*.png")]
    assert written and not any("tiny" in name for name in written)
    capsys.readouterr()
    cv2.imwrite(str(category / "test/scratch/tiny.png"), np.zeros((9, 40, 3), np.uint8))
    cv2.imwrite(str(category / "ground_truth/scratch/tiny_mask.png"), np.full((9, 40), 255, np.uint8))
    argv[3] = str(tmp_path / "out2")  # the defect photo now has an instance: written, so refused
    assert convert_main([*argv, *flags, "--background-ratio", "0"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {category / 'test/scratch/tiny.png'} is 40x9 pixels:")
    assert not (tmp_path / "out2").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"categories": ("gadget",)}, "unknown category 'gadget'"),
        ({"task": "pose"}, "unknown task 'pose'"),
        ({"link": "move"}, "unknown link mode 'move'"),
        ({"formats": ("voc",)}, "formats must be among"),
        ({"formats": ()}, r"formats must be among yolo, coco, got \[\]"),
        ({"min_area": 0}, "--min-area must be >= 1"),
        ({"names_template": "{kind}"}, "bad --names-template '{kind}'"),
        ({"ratios": (0.5, 0.5)}, "--split TRAIN VAL TEST must be three"),
        ({"ratios": (math.nan, 0.5, 0.5)}, r"--split TRAIN VAL TEST .*got \[nan"),  # wrote an empty set
        ({"background_ratio": math.inf}, "--background-ratio must be a finite number >= 0, got inf"),
        ({"seed": -1}, "--seed must be an integer >= 0, got -1"),
        ({"categories": ("../widget",)}, "--category '../widget' must be a folder name under --root"),
        ({"categories": ("a\\b",)}, r"--category 'a\\b' must be a folder name under --root"),
        ({"categories": ("widget", "widget")}, "--category 'widget' is listed twice"),
        ({"mask_values": Path("/nonexistent/values.json")}, "cannot read mask-values file"),
    ],
)
def test_bad_options(tmp_path, category_factory, options, message):
    category_factory(tmp_path / "data", "widget")
    with pytest.raises(UserError, match=message):
        convert(config(tmp_path / "data", tmp_path / "out", **options))


@pytest.mark.parametrize("ext", [".jpg", ".tif"])  # PIL turns a TIFF itself on loading and drops the tag
@pytest.mark.parametrize(("orientation", "refused"), [(1, False), (6, True), (2, True)])
def test_a_defect_image_turned_by_its_exif_tag_is_refused(
    tmp_path, category_factory, orientation, refused, ext
):
    category = category_factory(tmp_path / "data", "widget", image_ext=ext)
    image = category / "test" / "scratch" / f"001{ext}"
    with Image.open(image) as opened:
        pixels = opened.copy()
    exif = pixels.getexif()
    exif[0x0112] = orientation  # 6: a phone photo taken sideways; OpenCV and ultralytics turn it
    pixels.save(image, exif=exif)
    if not refused:
        convert(config(tmp_path / "data", tmp_path / "out"))
        return
    with pytest.raises(UserError, match=f"{image} has an EXIF orientation tag: .* misplaced"):
        convert(config(tmp_path / "data", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_turned_defect_image_whose_mask_was_drawn_upright_is_named_for_its_tag(tmp_path, category_factory):
    # the mask matches the photo as a viewer shows it (48 wide, 64 high), not as stored: the sizes
    # differ, and the tag, not the size, is what to fix
    category = category_factory(tmp_path / "data", "widget", image_ext=".jpg")
    image = category / "test" / "scratch" / "001.jpg"
    with Image.open(image) as opened:
        pixels = opened.copy()
    exif = pixels.getexif()
    exif[0x0112] = 6
    pixels.save(image, exif=exif)
    mask = category / "ground_truth" / "scratch" / "001_mask.png"
    Image.fromarray(np.asarray(Image.open(mask)).T.copy()).save(mask)
    with pytest.raises(UserError, match=f"{image} has an EXIF orientation tag: .* misplaced"):
        convert(config(tmp_path / "data", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("orientation", "refused"), [(1, False), (6, True), (3, True)])
def test_a_tiff_mask_turned_by_its_exif_tag_is_refused(tmp_path, category_factory, orientation, refused):
    # OpenCV's TIFF decoder turns a mask by its tag, even with IMREAD_IGNORE_ORIENTATION: a square one passed
    # every size check and was converted turned under its upright photo
    category = category_factory(tmp_path / "data", "widget", size=(48, 48))
    png = category / "ground_truth" / "scratch" / "001_mask.png"
    mask = png.with_suffix(".tif")
    exif = Image.Exif()
    exif[0x0112] = orientation
    with Image.open(png) as pixels:
        pixels.save(mask, exif=exif)
    png.unlink()
    if not refused:
        convert(config(tmp_path / "data", tmp_path / "out"))
        return
    with pytest.raises(UserError, match=f"^mask {re.escape(str(mask))} has an EXIF orientation tag"):
        convert(config(tmp_path / "data", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
@pytest.mark.parametrize(
    ("orientation", "size"), [(1, (64, 48)), (6, (48, 64)), (3, (64, 48)), (5, (48, 64))]
)
def test_a_good_image_turned_by_its_exif_tag_gets_its_size_as_read(
    tmp_path, category_factory, orientation, size, ext
):
    # OpenCV, ultralytics and SAM's readers turn it: COCO's width and height must be those it is read
    # with (segmentation refuses an image whose pixels disagree with them); it has no labels to misplace
    category = category_factory(tmp_path / "data", "widget", image_ext=ext)
    image = category / "train" / "good" / f"000{ext}"
    with Image.open(image) as opened:
        pixels = opened.copy()
    exif = pixels.getexif()
    exif[0x0112] = orientation
    pixels.save(image, exif=exif)
    convert(config(tmp_path / "data", tmp_path / "out", background_ratio=100.0, formats=("yolo", "coco")))
    entries = []
    for split in SPLITS:
        coco = json.loads((tmp_path / "out" / "annotations" / f"instances_{split}.json").read_text())
        entries += [i for i in coco["images"] if i["file_name"].endswith(f"train_good_000{ext}")]
    assert [(entry["width"], entry["height"]) for entry in entries] == [size]


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_that_is_a_file_is_refused_and_kept(tmp_path, category_factory, overwrite):
    category_factory(tmp_path / "data", "widget")
    (tmp_path / "notes.txt").write_text("not a data set")  # a mistyped --out: --overwrite deleted it
    with pytest.raises(UserError, match="--out .*notes.txt is a file, not a data set folder"):
        convert(config(tmp_path / "data", tmp_path / "notes.txt", overwrite=overwrite))
    assert (tmp_path / "notes.txt").read_text() == "not a data set"


def test_output_inside_input_is_refused(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    with pytest.raises(UserError, match="is inside the input tree"):
        convert(config(tmp_path / "data", tmp_path / "data" / "yolo"))


def test_output_paths_are_resolved_before_the_inside_check(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    (tmp_path / "link").symlink_to(tmp_path / "data", target_is_directory=True)
    for root, out in [
        (tmp_path / "data", tmp_path / "nowhere" / ".." / "data" / "yolo"),  # absolute() kept the ".."
        (tmp_path / "link", tmp_path / "data" / "yolo"),  # a symlinked --root
    ]:
        with pytest.raises(UserError, match="output folder .*data/yolo is inside the input tree .*data;"):
            convert(config(root, out))
    with pytest.raises(UserError, match="contains the input tree"):  # --overwrite would delete the input
        convert(config(tmp_path / "data", tmp_path, overwrite=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link"]


@pytest.mark.parametrize("convert_main", [mvtec2yolo, mvtec2coco])
@pytest.mark.parametrize("through", ["--out", "--root", "--images"])
def test_an_out_or_root_through_a_link_loop_is_one_line(
    tmp_path, category_factory, link_loop, convert_main, through, capsys
):
    # --out loop/r1 was Path.resolve's 'RuntimeError: Symlink loop from ...' traceback
    category_factory(tmp_path / "data", "widget")
    paths = {"--root": tmp_path / "data", "--out": tmp_path / "out", through: link_loop / "x"}
    given = "--images" if through == "--images" else "--root"
    argv = [given, paths.get(given), "--out", paths["--out"], "--no-progress"]
    assert convert_main([str(arg) for arg in argv]) == 2
    assert_link_loop_line(capsys.readouterr().err, f"{link_loop}/x: ", link_loop)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "loop"]


@pytest.mark.parametrize("convert_main", [mvtec2yolo, mvtec2coco])
@pytest.mark.parametrize("through", ["--out", "--root"])
def test_an_out_or_root_through_a_link_loop_is_one_line_where_resolve_passes_it(
    tmp_path, category_factory, link_loop, convert_main, through, monkeypatch, capsys
):
    # Python 3.13's Path.resolve raises for a loop only in strict mode: --out loop/x went on to the
    # conversion and gave 'cannot write <abs>/loop/x: File exists: <abs>/loop' (build_folder's mkdir)
    monkeypatch.setattr(
        Path, "resolve", lambda self, strict=False: type(self)(os.path.realpath(self, strict=strict))
    )
    category_factory(tmp_path / "data", "widget")
    paths = {"--root": tmp_path / "data", "--out": tmp_path / "out", through: link_loop / "x"}
    argv = ["--root", paths["--root"], "--out", paths["--out"], "--no-progress"]
    assert convert_main([str(arg) for arg in argv]) == 2
    assert_link_loop_line(capsys.readouterr().err, f"{link_loop}/x: ", link_loop)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "loop"]


def test_unwritable_output_is_one_line(tmp_path, category_factory, monkeypatch):
    category_factory(tmp_path / "data", "widget")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot create folder .*file/out: .*file is a file, not a folder"):
        convert(config(tmp_path / "data", tmp_path / "file" / "out"))
    with monkeypatch.context() as patch:
        patch.setattr(folders.os, "access", lambda *args, **kwargs: False)  # read-only, even for root
        with pytest.raises(UserError, match=f"cannot create folder .*out: {tmp_path} is not writable"):
            convert(config(tmp_path / "data", tmp_path / "out"))

    def refuse(out: Path) -> Path:
        raise PermissionError(13, "Permission denied", str(out))

    monkeypatch.setattr(folders, "partial_dir", refuse)  # made read-only after the check
    with pytest.raises(UserError, match="cannot write .*out: Permission denied: .*out"):
        convert(config(tmp_path / "data", tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "file"]


def _as_if_killed(folder: Path) -> Path:
    """``folder``, named by this process, renamed as if its writer had died."""
    dead = folder.with_name(folder.name.replace(f"-{os.getpid()}-", "-999999999-"))
    folder.rename(dead)
    return dead


def test_leftovers_of_killed_runs_are_removed_with_a_note(tmp_path, category_factory, capsys):
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    build = _as_if_killed(partial_dir(out))
    old = temporary_path(out.with_name("out.old"))
    old.mkdir()
    old = _as_if_killed(old)
    legacy = tmp_path / ".out.old-1a2b3c4d"  # an older version's name, without a writer id
    legacy.mkdir()
    live = partial_dir(out)  # a concurrent run of this process: kept
    other = _as_if_killed(partial_dir(tmp_path / "out2"))  # another --out's: not ours to judge
    out.mkdir()  # the output those old copies were replaced by
    convert(config(tmp_path / "data", out, overwrite=True))
    assert not build.exists() and not old.exists() and not legacy.exists()
    assert live.is_dir() and other.is_dir()
    assert capsys.readouterr().err.splitlines() == [
        f"note: removed 1 unfinished build of {out} left by a killed run",
        f"note: removed 2 old copies of {out} left by a killed run",
    ]


def test_an_output_a_killed_run_left_only_as_its_old_copy_is_put_back_before_anything_runs(
    tmp_path, category_factory, capsys
):
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    old = temporary_path(out.with_name("out.old"))
    old.mkdir()
    (old / "data.yaml").write_text("the user's earlier data set")
    _as_if_killed(old)  # killed after moving `out` aside, before the new one was in place
    with pytest.raises(UserError, match="output folder exists"):  # as it would without the kill
        convert(config(tmp_path / "data", out))
    assert (out / "data.yaml").read_text() == "the user's earlier data set"
    assert "note: restored" in capsys.readouterr().err


def test_a_split_without_images_is_a_warning_or_a_strict_error(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    report = convert(config(tmp_path / "data", tmp_path / "out", ratios=(1, 0, 0.2)))
    assert report.images["val"] == 0 and report.images["test"] > 0
    assert report.warnings == [
        "split 'val' has no images (give it a larger fraction with --split, or add images)"
    ]
    assert "\nwarning: split 'val' has no images" in format_report(report)
    # ultralytics stops on an empty val split: the line that would start it said nothing of that
    last = format_report(report).splitlines()[-1]
    assert last == "train with: none yet, yolo train needs images in val (see above)"
    with pytest.raises(UserError, match="split 'val' has no images .*\\(--strict\\)"):
        convert(config(tmp_path / "data", tmp_path / "strict", ratios=(1, 0, 0.2), strict=True))
    assert not (tmp_path / "strict").exists()


def test_files_of_a_suffix_not_read_in_a_photo_folder_are_noted(tmp_path, category_factory):
    # a defect photo saved as .heic (its mask a .png) and a good one left out of the data set without a word
    folder = category_factory(tmp_path / "data", "widget")
    for name in (
        "test/scratch/005.heic",
        "test/scratch/Thumbs.db",
        "train/good/004.heic",
        "test/good/._x.heic",
    ):
        (folder / name).write_bytes(b"x")
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    suffixes = ", ".join(IMAGE_SUFFIXES)
    assert report.notes == [
        f"1 file in {folder / 'train' / 'good'} left out, no image suffix read here ({suffixes}): 004.heic",
        f"2 files in {folder / 'test' / 'scratch'} left out, no image suffix read here ({suffixes}): "
        "005.heic, Thumbs.db",
    ]
    assert f"\nnote: {report.notes[0]}\n" in format_report(report)


def test_a_class_too_small_for_every_split_is_noted_by_name(tmp_path, category_factory, mask_factory):
    # 'hole' has 2 images, 1 train and 1 val at 0.6/0.2/0.2: the summary showed a 0 in its test column alone
    blob = mask_factory(48, 64, [(5, 5, 15, 9)])
    category_factory(tmp_path / "data", "widget", defects={"scratch": [blob] * 5, "hole": [blob] * 2})
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    assert report.instances["test"]["hole"] == 0 and report.instances["test"]["scratch"] == 1
    note = (
        "class 'hole' (2 images) has none in test: too few images to reach every split at --split "
        "0.6 0.2 0.2; the test scores leave it out"
    )
    assert report.notes == [note]
    assert f"\nnote: {note}\n" in format_report(report)
    # the page's first export: its splits.json does not exist yet, so nothing was kept anywhere
    missing = tmp_path / "missing.json"
    assert convert(config(tmp_path / "data", tmp_path / "first", keep_splits=missing)).notes == [note]


def test_a_class_an_earlier_split_kept_out_of_a_split_is_noted_for_that(
    tmp_path, category_factory, mask_factory
):
    # the annotation page's export keeps earlier images where they were: 'hole' has 4 images, all kept in
    # train, and the note said 'too few images to reach every split'
    blob = mask_factory(48, 64, [(5, 5, 15, 9)])
    category_factory(tmp_path / "data", "widget", defects={"scratch": [blob] * 5, "hole": [blob] * 4})
    convert(config(tmp_path / "data", tmp_path / "one"))
    earlier = load_splits(tmp_path / "one" / "splits.json")
    holes = [key for key in earlier.split_of() if "/hole/" in key]
    for split in SPLITS:
        earlier[split][:] = [key for key in earlier[split] if key not in holes]
    earlier.train.extend(holes)
    keep = tmp_path / "kept.json"
    save_splits(earlier, keep)
    report = convert(config(tmp_path / "data", tmp_path / "two", keep_splits=keep))
    assert report.notes == [
        f"class 'hole' (4 images) has none in val or test: its images kept where {keep} put them, new ones "
        "drawn at --split 0.6 0.2 0.2; validation does not measure it; the test scores leave it out"
    ]
    # the same placement given as --splits: the user's own split, not a draw, so no note
    assert convert(config(tmp_path / "data", tmp_path / "three", splits_file=keep)).notes == []


def test_the_annotation_pages_export_notes_a_missing_class_without_split_option(
    tmp_path, category_factory, mask_factory
):
    # the page's export (its tree, an earlier split kept) has no --split: the note said 'new ones drawn at
    # --split 0.6 0.2 0.2' and 'too few images to reach every split at --split ...' there too
    blob = mask_factory(48, 64, [(5, 5, 15, 9)])
    page = tmp_path / "out"
    category_factory(page, "widget", defects={"scratch": [blob] * 5, "hole": [blob] * 4})
    (page / "annotate_state.json").write_text("{}")
    convert(config(page / "widget", tmp_path / "one"))
    category_factory(page, "widget", defects={"dent": [blob]})  # new since: drawn
    for folder, suffix in (("test", ""), ("ground_truth", "_mask")):  # a stem of its own, found by no other
        [file] = (page / "widget" / folder / "dent").iterdir()
        file.rename(file.with_name(f"new{suffix}{file.suffix}"))
    earlier = load_splits(tmp_path / "one" / "splits.json")
    holes = [key for key in earlier.split_of() if "/hole/" in key]
    for split in SPLITS:
        earlier[split][:] = [key for key in earlier[split] if key not in holes]
    earlier.train.extend(holes)
    keep = tmp_path / "export" / "splits.json"
    keep.parent.mkdir()
    save_splits(earlier, keep)
    report = convert(config(page / "widget", tmp_path / "export", keep_splits=keep, overwrite=True))
    assert report.notes == [
        "class 'dent' (1 image) has none in val or test: too few images to reach every split at the export's "
        "split 0.6 0.2 0.2; validation does not measure it; the test scores leave it out",
        f"class 'hole' (4 images) has none in val or test: its images kept where {keep} put them, new ones "
        "fill the splits short of their share; validation does not measure it; the test scores leave it out",
    ]
    assert not any("--split" in note for note in report.notes)


def test_a_new_class_of_a_kept_split_is_noted_as_drawn_not_as_kept(tmp_path, category_factory, mask_factory):
    # the page's second export: 'dent' is new, its one image drawn like any; the note said it was kept
    blob = mask_factory(48, 64, [(5, 5, 15, 9)])
    category_factory(tmp_path / "data", "widget", defects={"scratch": [blob] * 5})
    convert(config(tmp_path / "data", tmp_path / "one"))
    category_factory(tmp_path / "data", "widget", defects={"dent": [blob]})
    report = convert(
        config(tmp_path / "data", tmp_path / "two", keep_splits=tmp_path / "one" / "splits.json")
    )
    assert report.notes == [
        "class 'dent' (1 image) has none in val or test: too few images to reach every split at --split "
        "0.6 0.2 0.2; validation does not measure it; the test scores leave it out"
    ]


def test_a_split_left_empty_by_its_fraction_is_not_noted_for_a_class(
    tmp_path, category_factory, mask_factory
):
    # --split 1 1 0: no test split by choice; 'hole' (1 image) misses val only, which it was meant to reach
    blob = mask_factory(48, 64, [(5, 5, 15, 9)])
    category_factory(tmp_path / "data", "widget", defects={"scratch": [blob] * 4, "hole": [blob]})
    report = convert(config(tmp_path / "data", tmp_path / "out", ratios=(1, 1, 0)))
    assert report.notes == [
        "class 'hole' (1 image) has none in val: too few images to reach every split at --split 0.5 0.5 0; "
        "validation does not measure it"
    ]
    report = convert(config(tmp_path / "data", tmp_path / "all", ratios=(1, 0, 0)))
    assert report.notes == []  # train alone, by choice
    # a split the user gave: the layout's own (MVTec AD keeps its defects in test) is not a draw
    report = convert(config(tmp_path / "data", tmp_path / "layout", split_from_layout=True))
    assert report.notes == []


def test_a_class_of_the_mask_values_map_without_an_image_is_not_noted_for_every_split(
    tmp_path, category_factory, mask_factory
):
    # the map names 'crack' though no mask holds its value: no image to place, so no split missed it
    category_factory(
        tmp_path / "data", "widget", defects={"combined": [mask_factory(48, 64, [(5, 5, 15, 9)])] * 5}
    )
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"255": "scratch", "200": "crack"}))
    report = convert(config(tmp_path / "data", tmp_path / "out", mask_values=values))
    assert report.names == ["crack", "scratch"] and report.notes == []


def test_a_class_that_misses_a_split_by_its_folders_draw_is_not_noted_as_too_few(
    tmp_path, category_factory, mask_factory
):
    # the split is drawn per defect folder: 'crack' shares 'combined' with 'scratch' in 5 of its 10 images
    # (3/1/1 on its own), and seed 0 draws none of those 5 into val; the note said "too few images"
    masks = [mask_factory(48, 64, [(5, 5, 15, 9)]) for _ in range(10)]
    for mask in masks[:5]:
        mask[30:40, 30:40] = 200  # a crack beside the scratch
    category_factory(tmp_path / "data", "widget", defects={"combined": masks})
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"255": "scratch", "200": "crack"}))
    report = convert(config(tmp_path / "data", tmp_path / "out", mask_values=values))
    assert report.instances["val"]["crack"] == 0 and report.instances["val"]["scratch"] == 2
    assert report.notes == [
        "class 'crack' (5 images) has none in val: the split is drawn per defect folder (widget/combined), "
        "not per class, at --split 0.6 0.2 0.2; validation does not measure it"
    ]
    # one class over two categories ('{defect}' names both cracks alike): each folder of 2 gives test none
    crack = [mask_factory(48, 64, [(5, 5, 15, 9)])] * 2
    for category in ("gadget", "widget"):
        category_factory(tmp_path / "two", category, defects={"crack": crack, "scratch": crack * 3})
    report = convert(config(tmp_path / "two", tmp_path / "out_two"))
    assert report.notes == [
        "class 'crack' (4 images) has none in test: the split is drawn per defect folder (gadget/crack, "
        "widget/crack), not per class, at --split 0.6 0.2 0.2; the test scores leave it out"
    ]


def test_a_split_the_draw_left_without_images_is_not_noted_for_a_class(
    tmp_path, category_factory, mask_factory
):
    # 2 images at 0.6 0.2 0.2: one split gets none, which a warning names; every class missing it is no news
    category_factory(
        tmp_path / "data", "widget", defects={"scratch": [mask_factory(48, 64, [(5, 5, 15, 9)])] * 2}
    )
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    assert any(f"split '{s}' has no images" in w for s in ("val", "test") for w in report.warnings)
    assert report.notes == []


def test_an_empty_split_of_a_reused_splits_file_is_warned_of_as_the_files(tmp_path, category_factory):
    # --split cannot fill a split that a --splits file leaves empty; an empty train is not also "no defect"
    category_factory(tmp_path / "data", "widget")
    convert(config(tmp_path / "data", tmp_path / "a"))
    listed = json.loads((tmp_path / "a" / "splits.json").read_text())
    listed["val"] = sorted(listed["train"] + listed["val"] + listed["test"])
    listed["train"], listed["test"] = [], []
    (tmp_path / "reused.json").write_text(json.dumps(listed))
    report = convert(config(tmp_path / "data", tmp_path / "b", splits_file=tmp_path / "reused.json"))
    assert report.warnings == [
        f"split '{split}' has no images (the splits file {tmp_path / 'reused.json'} lists none there)"
        for split in ("train", "test")
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"255": "cut", "0255": "dent"}, "keys '255' and '0255' are the same pixel value 255"),
        ({"255": "cut", "+255": "cut"}, "keys '255' and '\\+255' are the same pixel value 255"),
        ({"255": "cut", "0": "scratch"}, "value 0 is the background and can only be 'good', not 'scratch'"),
        ({"255": " "}, "entry '255': ' ' needs a value >= 0 and a name"),
        ({"x": "cut"}, "key 'x' is not an integer pixel value"),
        (["cut"], "must hold a JSON object, not list"),
    ],
)
def test_mask_values_file_errors(tmp_path, values, message):
    path = tmp_path / "values.json"
    path.write_text(json.dumps(values))
    with pytest.raises(UserError, match=f"mask-values file .*values.json.*{message}"):
        load_value_map(path)


def test_mask_values_map_background_to_good(tmp_path):
    path = tmp_path / "values.json"
    path.write_text(json.dumps({"255": "cut", "0": "good"}))
    assert load_value_map(path) == {255: "cut", 0: "good"}
    path.write_text(json.dumps({"255": "cut"}))
    assert load_value_map(path) == {255: "cut", 0: "good"}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{defect.__class__}", r"\{defect.__class__\} is not one of \{defect\}"),  # reached into str
        ("{defect[0]}", r"\{defect\[0\]\} is not one of"),
        ("{}", r"\{\} is not one of"),
        ("{defect:{category}}", r"\{defect:\{category\}\} is not one of"),
        ("", "--names-template is empty"),
        ("  ", "--names-template is empty"),
        ("{defect", "bad --names-template '{defect'"),
        ("{defect:d}", "bad --names-template '{defect:d}'"),
    ],
)
def test_names_template_takes_only_the_plain_fields(template, message):
    with pytest.raises(UserError, match=message):
        class_namer(template)


def test_names_template_giving_a_blank_name_is_an_error():
    namer = class_namer("{defect_text}")
    assert namer("metal_nut", "bent_wire") == "bent wire"
    with pytest.raises(UserError, match="gives an empty class name for category 'widget', defect '__'"):
        namer("widget", "__")
    assert class_namer("{defect!r} on {category_text:>4}")("a", "b") == "'b' on    a"  # specs are fine
    assert class_namer("{defect.__class__}", single_class=True)("a", "b") == "defect"  # template unused
    # "good" is the call of an image without defects: detection refused such a data set, only later
    with pytest.raises(UserError, match="category 'hazelnut', defect 'crack' 'good', the call of an image"):
        class_namer("good")("hazelnut", "crack")
    assert class_namer("{defect}")("hazelnut", "good_bad") == "good_bad"


def test_cli_prints_table_and_one_line_errors(tmp_path, category_factory, capsys):
    category_factory(tmp_path / "data", "widget")
    args = ["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert mvtec2yolo([*args, "--coco", "--category", "widget"]) == 0
    printed = capsys.readouterr().out
    assert "Wrote yolo, coco data set" in printed and "scratch" in printed and "yolo train data=" in printed
    assert mvtec2coco(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output folder exists") and err.count("\n") == 1
    assert mvtec2coco([*args, "--overwrite", "--yolo", "--split", "0.8", "0.1", "0.1"]) == 0
    assert (tmp_path / "out" / "data.yaml").is_file() and (tmp_path / "out" / "annotations").is_dir()
    # mvtec2yolo's --coco, typed to mvtec2coco, was taken as an abbreviation of --coco-segmentation
    assert mvtec2coco([*args, "--overwrite", "--coco"]) == 2
    assert "unrecognized arguments: --coco " in capsys.readouterr().err


@pytest.mark.realdata
def test_real_hazelnut_instances_are_the_mask_components(tmp_path, hazelnut_root):
    report = convert(config(hazelnut_root, tmp_path / "out", formats=("yolo", "coco"), background_ratio=1.0))
    expected = 0
    for mask_path in sorted((hazelnut_root / "ground_truth" / "colour").glob("*_mask.png")):
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        expected += cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)[0] - 1
    assert sum(sum(c.values()) for c in report.instances.values()) == expected
    assert sum(report.images.values()) - sum(report.backgrounds.values()) == 17
    assert sum(report.backgrounds.values()) == 17  # one good image per defect image
    sizes = {
        (im["width"], im["height"])
        for split in SPLITS
        for im in json.loads((tmp_path / f"out/annotations/instances_{split}.json").read_text())["images"]
    }
    assert (512, 512) in sizes


def test_photos_of_12_bit_camera_data_are_a_warning_or_a_strict_error(tmp_path, category_factory):
    # OpenCV (and ultralytics) read 16-bit pixels as value >> 8: 12-bit data becomes grey levels 0-15
    category = category_factory(tmp_path / "data", "widget")
    photos = sorted((category / "test").rglob("*.png"))
    for photo in photos[:2]:
        cv2.imwrite(str(photo), cv2.imread(str(photo)).astype(np.uint16) * 16)  # 0..4080
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    [warning] = report.warnings
    assert warning.startswith("2 photos are 16-bit with every value below 4096 (12-bit camera data?), e.g. ")
    assert "save them as 8-bit with their full range first (value // 16)" in warning
    with pytest.raises(UserError, match=r"2 photos are 16-bit .*\(--strict\)"):
        convert(config(tmp_path / "data", tmp_path / "strict", strict=True))
    assert not (tmp_path / "strict").exists()


def test_the_train_with_line_can_be_pasted_into_a_shell_when_the_path_has_a_space(
    tmp_path, category_factory, monkeypatch
) -> None:
    category_factory(tmp_path / "data", "widget")
    report = convert(config(tmp_path / "data", tmp_path / "my sets" / "out é"))
    monkeypatch.setattr(convert_module, "weights_dir", lambda: tmp_path / "weights cache")
    [line] = [line for line in format_report(report).splitlines() if line.startswith("train with: ")]
    words = shlex.split(line.removeprefix("train with: "))
    data = f"data={tmp_path / 'my sets' / 'out é' / 'data.yaml'}"
    assert words == ["yolo", "train", data, "model=yolo11n.pt"]  # not cached: ultralytics downloads it
    # cached: the verified copy, so that the line runs offline (a bare `yolo train` fetches yolo26n.pt)
    (tmp_path / "weights cache").mkdir()
    (tmp_path / "weights cache" / "yolo11n.pt").write_bytes(b"weights")
    [line] = [line for line in format_report(report).splitlines() if line.startswith("train with: ")]
    assert shlex.split(line)[-1] == f"model={tmp_path / 'weights cache' / 'yolo11n.pt'}"


def test_the_train_with_line_of_polygon_labels_says_it_trains_boxes(tmp_path, category_factory, monkeypatch):
    # a segment export printed the same line as a detect one: a user wanting masks got a box model
    category_factory(tmp_path / "data", "widget")
    monkeypatch.setattr(convert_module, "weights_dir", lambda: tmp_path / "weights")
    report = convert(config(tmp_path / "data", tmp_path / "out", task="segment"))
    *_, boxes, masks = format_report(report).splitlines()
    assert boxes.startswith("train with: yolo train data=") and boxes.endswith(" model=yolo11n.pt")
    # a line of its own: zsh, typed or pasted, reads no '# for masks' comment after a command
    assert masks == f"or, for masks: yolo train data={tmp_path / 'out' / 'data.yaml'} model=yolo11n-seg.pt"


def test_the_masks_hint_names_a_cached_segment_model_pasteably(tmp_path, category_factory, monkeypatch):
    # like the command's own model: the cached copy where there is one (its folder may hold a space), which
    # the hint left unquoted, so "model=/my cache/yolo11n-seg.pt" pasted into a shell was two words
    category_factory(tmp_path / "data", "widget")
    cache = tmp_path / "weights cache"
    cache.mkdir()
    (cache / "yolo11n-seg.pt").write_bytes(b"weights")
    monkeypatch.setattr(convert_module, "weights_dir", lambda: cache)
    report = convert(config(tmp_path / "data", tmp_path / "out", task="segment"))
    *_, command, hint = format_report(report).splitlines()
    assert shlex.split(command)[-1] == "model=yolo11n.pt"  # not cached: the name, which ultralytics downloads
    assert shlex.split(hint.removeprefix("or, for masks: "))[-1] == f"model={cache / 'yolo11n-seg.pt'}"


def test_jpeg_masks_are_a_warning_or_a_strict_error(tmp_path, category_factory):
    # JPEG noise around a 0/255 mask is > 0, so it was read as defect: on hazelnut_toy's masks saved
    # as JPEG (quality 75) the 54 instances became 445, 376 of them specks of 1-5 px, without a word
    category = category_factory(tmp_path / "data", "widget")
    masks = sorted((category / "ground_truth").rglob("*_mask.png"))
    for mask in masks[:3]:
        cv2.imwrite(str(mask.with_suffix(".jpg")), cv2.imread(str(mask)), [cv2.IMWRITE_JPEG_QUALITY, 75])
        mask.unlink()
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    [warning] = report.warnings
    assert warning.startswith("3 masks are JPEG files, e.g. ") and "save the masks as PNG" in warning
    with pytest.raises(UserError, match=r"3 masks are JPEG files, .*\(--strict\)$"):
        convert(config(tmp_path / "data", tmp_path / "strict", strict=True))
    assert not (tmp_path / "strict").exists()


@pytest.mark.parametrize("soften", ["jpeg then png", "anti-aliased"])
def test_soft_png_masks_are_a_warning_or_a_strict_error(tmp_path, category_factory, soften):
    # a mask once saved as JPEG and then as PNG, or blurred edges, passed the suffix check: every
    # faint pixel is defect (hazelnut_toy at 256 px, masks through JPEG q75: 139 instances, not 31)
    category = category_factory(tmp_path / "data", "widget")
    masks = sorted((category / "ground_truth").rglob("*_mask.png"))
    for mask in masks[:2]:
        pixels = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
        if soften == "jpeg then png":
            pixels = cv2.imdecode(cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 75])[1], 0)
        else:
            pixels = cv2.GaussianBlur(pixels, (5, 5), 1.5)
        cv2.imwrite(str(mask), pixels)
    [warning] = convert(config(tmp_path / "data", tmp_path / "out")).warnings
    assert warning.startswith("2 masks hold more than 8 distinct defect values, e.g. ") and "0/255" in warning
    with pytest.raises(UserError, match=r"2 masks hold more than 8 distinct defect values, .*\(--strict\)$"):
        convert(config(tmp_path / "data", tmp_path / "strict", strict=True))
    assert not (tmp_path / "strict").exists()


@pytest.mark.parametrize("quality", [100, 98])
def test_masks_once_saved_as_fine_jpeg_are_a_warning_or_a_strict_error(tmp_path, category_factory, quality):
    # JPEG at quality 98 to 100, then PNG: 3 to 7 distinct values, under the soft-mask count, passed without a
    # word, yet each faint pixel is defect (hazelnut_toy at q100: 32-107 specks more per mask)
    category = category_factory(tmp_path / "data", "widget")
    masks = sorted((category / "ground_truth").rglob("*_mask.png"))
    for mask in masks[:2]:
        pixels = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
        jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        cv2.imwrite(str(mask), cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE))
        assert 1 < len(np.unique(cv2.imread(str(mask), cv2.IMREAD_UNCHANGED))) <= 9  # 8 defect values at most
    [warning] = convert(config(tmp_path / "data", tmp_path / "out")).warnings
    assert warning.startswith(f"2 masks hold faint defect values beside their largest, e.g. {masks[0]} (1")
    assert "beside 255), as masks once saved as JPEG do (at any quality)" in warning
    # ringing, not classes: naming its values with --mask-values would keep the specks
    assert warning.endswith(
        "save them as 0/255 again, 255 above half their largest value (or drop the specks with --min-area)"
    )
    with pytest.raises(
        UserError, match=r"2 masks hold faint defect values beside their largest, .*\(--strict\)$"
    ):
        convert(config(tmp_path / "data", tmp_path / "strict", strict=True))
    assert not (tmp_path / "strict").exists()


def test_inverted_masks_are_a_warning_or_a_strict_error(tmp_path, category_factory):
    # defect black on white: the background became one instance around the photo, without a word
    category = category_factory(tmp_path / "data", "widget")
    masks = sorted((category / "ground_truth").rglob("*_mask.png"))
    for mask in masks[:2]:
        cv2.imwrite(str(mask), 255 - cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE))
    [warning] = convert(config(tmp_path / "data", tmp_path / "out")).warnings
    assert warning.startswith(f"2 masks mark more than 90% of the image as defect, e.g. {masks[0]} (")
    assert "inverted mask" in warning
    with pytest.raises(UserError, match=r"2 masks mark more than 90% of the image .*\(--strict\)$"):
        convert(config(tmp_path / "data", tmp_path / "strict", strict=True))
    assert not (tmp_path / "strict").exists()


@pytest.mark.parametrize("given", ["out", "category", "export"])
def test_the_annotation_pages_tree_gets_the_pages_advice_whoever_converts_it(
    tmp_path, category_factory, mask_factory, given
):
    # masks the page wrote, converted by hand (mvtec2yolo --root <page out>, or its category folder), got
    # 'save the defects non-zero on 0', which fits no file of the page; an earlier split kept (the
    # converters' keep_splits, not the page) got the page's, and its 'annotate more photos'
    page = tmp_path / "out"
    background = mask_factory(48, 64, [(0, 0, 64, 46)])  # 96%: the background around a defect, clicked
    category_factory(page, "widget", defects={"scratch": [background] * 5})
    (page / "annotate_state.json").write_text("{}")
    root = page / "widget" if given != "out" else page
    keep = tmp_path / "export" / "splits.json" if given == "export" else None
    warnings = convert(config(root, tmp_path / "export", ratios=(1, 0, 1), keep_splits=keep)).warnings
    hint = "annotate more photos: new ones fill" if keep else "give it a larger fraction with --split"
    assert warnings[0].startswith(f"split 'val' has no images ({hint}")
    assert warnings[1].startswith("5 masks mark more than 90% of the photo as defect, e.g. ")
    assert "check it on the page" in warnings[1]
    (page / "annotate_state.json").unlink()  # not the page's tree: the converters' advice, kept split or not
    warnings = convert(
        config(root, tmp_path / "other", ratios=(1, 0, 1), keep_splits=tmp_path / "none.json")
    ).warnings
    assert warnings[0] == "split 'val' has no images (give it a larger fraction with --split, or add images)"
    assert "as an inverted mask (defect black on white) does" in warnings[1]


def test_a_large_defect_is_no_inverted_mask(tmp_path, mask_factory, category_factory):
    large = mask_factory(48, 64, [(0, 0, 64, 43)])  # 90% of the photo: a large defect, not a background
    category_factory(tmp_path / "data", "widget", defects={"stain": [large] * 5})
    assert convert(config(tmp_path / "data", tmp_path / "out")).warnings == []


def test_masks_of_a_few_values_give_no_soft_mask_warning(tmp_path, category_factory):
    category = category_factory(tmp_path / "data", "widget")
    mask = sorted((category / "ground_truth").rglob("*_mask.png"))[0]
    pixels = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    pixels[pixels > 0] = np.arange(1, 9, dtype=np.uint8).repeat(-(-int((pixels > 0).sum()) // 8))[
        : int((pixels > 0).sum())
    ]  # 8 values: a value-coded mask, not a soft one
    cv2.imwrite(str(mask), pixels)
    assert convert(config(tmp_path / "data", tmp_path / "out")).warnings == []


def test_a_photo_copied_into_another_split_is_a_warning_or_a_strict_error(tmp_path, category_factory):
    # a photo copied under another name was converted without a word, and every model was then scored on
    # a photo it trained on
    category = category_factory(tmp_path / "data", "widget")
    first = convert(config(tmp_path / "data", tmp_path / "first")).out  # the split drawn from the keys
    splits = json.loads((first / "splits.json").read_text())
    train, test = (category.parent / f"{splits[split][0]}.png" for split in ("train", "test"))
    shutil.copyfile(train, test)
    warning, *others = convert(config(tmp_path / "data", tmp_path / "out")).warnings
    # a good photo copied over a defect one (or the other way round) is said so too
    assert all(line.startswith("1 good photo is a byte-for-byte copy of a defect photo") for line in others)
    assert warning == (
        f"2 photos are byte-for-byte copies across splits (1 image), e.g. {train} (train) and {test} (test): "
        "a model would be scored on photos it trained on; remove the copies"
    )
    with pytest.raises(
        UserError, match=r"^2 photos are byte-for-byte copies across splits \(1 image\), .*--strict"
    ):
        convert(config(tmp_path / "data", tmp_path / "strict", strict=True))


def test_one_photo_under_two_names_in_the_tree_is_refused_naming_both(tmp_path, category_factory):
    # a link test/good/003.png -> train/good/003.png: the photo was converted twice, into two splits perhaps
    category = category_factory(tmp_path / "data", "widget")
    photo = sorted((category / "train" / "good").glob("*.png"))[0]
    link = category / "test" / "good" / "alias.png"
    link.symlink_to(photo)
    with pytest.raises(UserError) as error:
        convert(config(tmp_path / "data", tmp_path / "out"))
    assert str(error.value) == (
        f"{link} and {photo} are one photo ({photo.resolve()}, links followed): it would be converted twice, "
        "perhaps into two splits, a model then scored on a photo it trained on; remove the link"
    )
    assert not (tmp_path / "out").exists()


def _photo(path: Path, content: bytes, *, mask_suffix: str = ".png", values: int = 0) -> Sample:
    """A sample of photo ``path`` holding ``content`` (bytes: only hashed), its mask holding ``values``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    record = ImageRecord(
        path, "widget", "test", "hole", mask=path.with_name(f"{path.stem}_mask{mask_suffix}")
    )
    return Sample(record, 4, 4, defect_values=values)


def test_copies_in_two_splits_are_named_with_a_photo_of_each_and_counted(tmp_path):
    # sizes in bytes shared by two splits only; a copy within one split (a2) is no leak of its own
    a, a2, a3 = (_photo(tmp_path / f"{name}.png", b"aaaa") for name in ("a", "a2", "a3"))
    b, b2 = _photo(tmp_path / "b.png", b"bbbbbb"), _photo(tmp_path / "b2.png", b"bbbbbb")
    [warning] = copied_photo_warnings({"train": [a, a2], "test": [a3]})
    assert warning.startswith(
        f"3 photos are byte-for-byte copies across splits (1 image), e.g. {a.record.image} (train) and "
        f"{a3.record.image} (test): "
    )
    [warning] = copied_photo_warnings({"train": [a, b], "val": [b2], "test": [a3]})
    assert warning.startswith("4 photos are byte-for-byte copies across splits (2 images), e.g. ")
    # one photo copied into every split 100 times: it said '1 photo has a byte-for-byte copy in another split'
    many = {split: [_photo(tmp_path / split / f"{i}.png", b"aaaa") for i in range(100)] for split in SPLITS}
    [warning] = copied_photo_warnings({**many, "train": [a, *many["train"]]})
    assert warning.startswith("301 photos are byte-for-byte copies across splits (1 image), e.g. ")


def test_copies_within_one_split_and_photos_of_one_size_are_no_warning(tmp_path):
    a, a2 = _photo(tmp_path / "a.png", b"aaaa"), _photo(tmp_path / "a2.png", b"aaaa")
    other = _photo(tmp_path / "c.png", b"cccc")  # the size of a, other bytes
    assert copied_photo_warnings({"train": [a, a2], "test": [other]}) == []


def test_one_soft_mask_is_named_in_the_singular_and_jpeg_masks_are_left_to_their_own_warning(tmp_path):
    soft = _photo(tmp_path / "a.png", b"a", values=9)
    [warning] = soft_mask_warnings([soft, _photo(tmp_path / "b.png", b"b", values=8)])
    assert warning.startswith(
        f"1 mask holds more than 8 distinct defect values, e.g. {soft.record.mask} (9), as anti-aliased "
    )
    assert soft_mask_warnings([_photo(tmp_path / "c.png", b"c", mask_suffix=".JPG", values=200)]) == []


def test_the_closing_line_names_every_empty_split_yolo_needs_and_none_for_coco_alone(
    tmp_path, category_factory
):
    category_factory(tmp_path / "data", "widget")
    report = convert(config(tmp_path / "data", tmp_path / "out", ratios=(1, 0, 0.2)))
    both = replace(report, images={**report.images, "train": 0})  # train and val empty
    assert format_report(both).splitlines()[-1] == (
        "train with: none yet, yolo train needs images in train and val (see above)"
    )
    no_test = replace(report, images={"train": 3, "val": 2, "test": 0})  # yolo train reads no test split
    assert format_report(no_test).splitlines()[-1].startswith("train with: yolo train data=")
    coco = replace(report, formats=("coco",))  # no yolo train to start: no closing line
    assert not any(line.startswith("train with:") for line in format_report(coco).splitlines())


def test_png_masks_give_no_lossy_mask_warning(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    assert convert(config(tmp_path / "data", tmp_path / "out")).warnings == []


def test_one_narrow_photo_is_a_warning(tmp_path, category_factory):
    category = category_factory(tmp_path / "data", "widget")
    photo = sorted((category / "test").rglob("*.png"))[0]
    cv2.imwrite(str(photo), cv2.imread(str(photo)).astype(np.uint16) * 16)
    [warning] = convert(config(tmp_path / "data", tmp_path / "out")).warnings
    assert warning.startswith("1 photo")


def test_a_min_area_that_drops_every_instance_is_refused(tmp_path, category_factory):
    # it wrote a data set of 0 images and exited 0, with a 'train with:' line
    category_factory(tmp_path / "data", "widget")
    with pytest.raises(
        UserError, match=r"no defect instance left .*every defect image was skipped \(\d+; e.g. "
    ):
        convert(config(tmp_path / "data", tmp_path / "out", min_area=10**8))
    assert not (tmp_path / "out").exists()


def test_each_link_mode_places_the_source_image(tmp_path, category_factory, monkeypatch):
    category_factory(tmp_path / "data", "widget", image_ext=".PNG")
    source = tmp_path / "data" / "widget" / "test" / "hole" / "000.PNG"
    monkeypatch.chdir(tmp_path)  # a relative --root and --out
    placed = {}
    for link in ("symlink", "hardlink", "copy"):
        report = convert(config(Path("data"), Path(link), link=link))
        assert report.out == tmp_path / link
        [placed[link]] = (tmp_path / link / "images").glob("*/widget_test_hole_000.png")
    assert placed["symlink"].is_symlink() and placed["symlink"].resolve() == source
    assert not placed["hardlink"].is_symlink() and os.path.samefile(placed["hardlink"], source)
    assert not placed["copy"].is_symlink() and not os.path.samefile(placed["copy"], source)
    assert placed["copy"].read_bytes() == source.read_bytes()


def test_images_that_hardlink_copied_are_noted_once(tmp_path, category_factory, monkeypatch, capsys):
    # another file system: os.link fails, the images were copied, and nothing said so
    category_factory(tmp_path / "data", "widget")
    convert(config(tmp_path / "data", tmp_path / "linked", link="hardlink"))
    assert "note:" not in capsys.readouterr().err
    monkeypatch.setattr(os, "link", lambda source, target: (_ for _ in ()).throw(OSError(errno.EXDEV, "x")))
    convert(config(tmp_path / "data", tmp_path / "copied", link="hardlink"))
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    images = len(list((tmp_path / "copied" / "images").glob("*/*")))
    assert len(notes) == 1 and notes[0].startswith(
        f"note: {images} images were copied into {tmp_path / 'copied'}, "
    )


def test_coco_image_ids_run_from_1_in_each_split(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    convert(config(tmp_path / "data", tmp_path / "out", formats=("coco",)))
    for split in SPLITS:
        coco = json.loads((tmp_path / "out" / "annotations" / f"instances_{split}.json").read_text())
        assert [image["id"] for image in coco["images"]] == list(range(1, len(coco["images"]) + 1))
        assert coco["info"]["description"] == f"{split} split written by converters from {tmp_path / 'data'}"


def test_data_yaml_and_coco_record_out_and_root_without_dots(tmp_path, category_factory, monkeypatch):
    # data.yaml named a linked --out by the folder it links to; COCO's description kept '..' of --root
    category_factory(tmp_path / "data", "widget")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "some").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    for out in ("some/../out", "link/out"):
        assert mvtec2yolo(["--root", "elsewhere/../data", "--out", out, "--coco", "--no-progress"]) == 0
        data = yaml.safe_load((tmp_path / out / "data.yaml").read_text())
        assert data["path"] == os.path.abspath(out)  # link/out's path stays under the link's name
        coco = json.loads((tmp_path / out / "annotations" / "instances_train.json").read_text())
        assert coco["info"]["description"] == f"train split written by converters from {tmp_path / 'data'}"
        checks = validate(tmp_path / out).values()  # ultralytics reads the linked path: the same images
        assert all(not check.problems for split_checks in checks for check in split_checks.values())
    assert (tmp_path / "elsewhere" / "out" / "data.yaml").is_file()


def test_an_overwrite_run_from_inside_out_is_refused_before_any_work(
    tmp_path, category_factory, monkeypatch, capsys
):
    # `cd out && mvtec2yolo --out . --overwrite` renamed out aside and deleted it: the shell was left in a
    # deleted folder, where `ls` showed nothing; an empty working folder was renamed over as well
    category_factory(tmp_path / "data", "widget")
    args = ["--root", str(tmp_path / "data"), "--no-progress"]
    (tmp_path / "new").mkdir()
    monkeypatch.chdir(tmp_path / "new")
    assert mvtec2yolo([*args, "--out", "."]) == 2
    assert capsys.readouterr().err == (
        f"error: --out {tmp_path / 'new'} is the working folder: the results are renamed into its place, "
        "which would leave your shell in a deleted folder; run the command from outside it\n"
    )
    assert mvtec2yolo([*args, "--out", str(tmp_path / "out")]) == 0
    monkeypatch.chdir(tmp_path / "out" / "labels")  # inside the folder to replace
    written = sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*"))
    assert mvtec2yolo([*args, "--out", "..", "--overwrite"]) == 2
    assert "holds the working folder" in capsys.readouterr().err
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*")) == written
    assert Path.cwd() == tmp_path / "out" / "labels" and not list((tmp_path / "new").iterdir())
    monkeypatch.chdir(tmp_path)
    assert mvtec2yolo([*args, "--out", "new"]) == 0 and (tmp_path / "new" / "data.yaml").is_file()


def test_every_command_line_flag_reaches_the_conversion(tmp_path):
    parser = build_parser("mvtec2yolo", primary="yolo")
    flags = "--root data --out out --layout btad --category a b --coco --overwrite --link copy --task segment"
    flags += " --coco-segmentation rle --single-class --names-template {category} --exclude-defect x y"
    flags += " --mask-values values.json --min-area 5 --strict --split 3 1 1 --background-ratio 2 --seed 7"
    flags += " --splits splits.json --split-from-layout --no-progress"
    assert config_from_args(parser.parse_args(flags.split()), primary="yolo") == ConvertConfig(
        root=Path("data"),
        out=Path("out"),
        categories=("a", "b"),
        formats=("yolo", "coco"),
        task="segment",
        coco_segmentation="rle",
        min_area=5,
        mask_values=Path("values.json"),
        single_class=True,
        names_template="{category}",
        exclude_defects=("x", "y"),
        ratios=(3.0, 1.0, 1.0),
        background_ratio=2.0,
        seed=7,
        splits_file=Path("splits.json"),
        link="copy",
        overwrite=True,
        strict=True,
        progress=False,
        layout="btad",
        split_from_layout=True,
    )
    images = tmp_path / "widget" / "images"
    args = parser.parse_args(["--images", str(images), "--masks", "m", "--good", "g", "--out", "o"])
    folder = config_from_args(args, primary="yolo")
    assert (folder.root, folder.images, folder.masks, folder.good) == (
        images.parent,
        images,
        Path("m"),
        Path("g"),
    )


def test_command_line_defaults_are_the_library_s():
    coco = build_parser("mvtec2coco", primary="coco")
    args = coco.parse_args(["--root", "data", "--out", "out"])
    assert config_from_args(args, primary="coco") == ConvertConfig(
        root=Path("data"), out=Path("out"), formats=("coco",)
    )
    args = coco.parse_args(["--root", "data", "--out", "out", "--yolo"])
    assert config_from_args(args, primary="coco").formats == ("coco", "yolo")


def test_mask_values_names_follow_the_names_template(tmp_path, category_factory, mask_factory):
    category_factory(
        tmp_path / "data", "cable", defects={"combined": [mask_factory(48, 64, [(5, 5, 9, 9)])] * 3}
    )
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"255": "cut"}))
    report = convert(
        config(
            tmp_path / "data", tmp_path / "out", mask_values=values, names_template="{defect} on {category}"
        )
    )
    assert report.names == ["cut on cable"]
    assert sum(report.instances[split]["cut on cable"] for split in SPLITS) == 3


def test_a_reused_splits_file_may_list_skipped_images_but_must_list_every_defect_image(
    tmp_path, category_factory, mask_factory
):
    masks = {"dent": [mask_factory(48, 64, [(1, 1, 5, 5)])] * 5 + [np.zeros((48, 64), np.uint8)]}
    category_factory(tmp_path / "data", "widget", defects=masks)
    convert(config(tmp_path / "data", tmp_path / "a"))
    listed = json.loads((tmp_path / "a" / "splits.json").read_text())
    listed["test"].append("widget/test/dent/005")  # its mask is empty: skipped, not missing
    (tmp_path / "reused.json").write_text(json.dumps(listed))
    report = convert(config(tmp_path / "data", tmp_path / "b", splits_file=tmp_path / "reused.json"))
    assert report.skipped == [("widget/test/dent/005", "empty mask")]
    dropped = next(key for key in listed["train"] if "/dent/" in key)
    listed["train"].remove(dropped)
    (tmp_path / "reused.json").write_text(json.dumps(listed))
    report = convert(config(tmp_path / "data", tmp_path / "c", splits_file=tmp_path / "reused.json"))
    assert (dropped, "not in the splits file") in report.skipped
    mask = mask_factory(48, 64, [(1, 1, 5, 5)])
    assert cv2.imwrite(str(tmp_path / "data" / "widget" / "ground_truth" / "dent" / "005_mask.png"), mask)
    with pytest.raises(
        UserError,
        match=f"1 defect images are in no split of the splits file .*reused.json \\(e.g. {dropped}\\)",
    ):
        convert(config(tmp_path / "data", tmp_path / "d", splits_file=tmp_path / "reused.json", strict=True))
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("kept", [(), ("widget/train/good/000",)])
def test_a_reused_splits_file_that_places_no_defect_image_is_refused(tmp_path, category_factory, kept):
    # an empty data set (or one of good images) was written, with exit 0 and "17 x not in the splits file"
    category_factory(tmp_path / "data", "widget")
    (tmp_path / "reused.json").write_text(json.dumps({"train": list(kept), "val": [], "test": []}))
    message = (
        f"the splits file {tmp_path / 'reused.json'} places no defect image read under {tmp_path / 'data'} "
        "(e.g. widget/test/hole/000 is in no split); drop --splits to draw a split"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        convert(config(tmp_path / "data", tmp_path / "out", splits_file=tmp_path / "reused.json"))
    assert not (tmp_path / "out").exists()


def test_class_names_keep_a_defect_type_whose_masks_are_all_empty(tmp_path, category_factory, mask_factory):
    empty = np.zeros((48, 64), np.uint8)
    masks = {"dent": [mask_factory(48, 64, [(1, 1, 5, 5)])] * 3, "stain": [empty, empty]}
    category_factory(tmp_path / "data", "widget", defects=masks)
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    assert report.names == ["dent", "stain"]
    assert [reason for _, reason in report.skipped] == ["empty mask", "empty mask"]


def test_the_summary_counts_the_good_images_left_unused(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    report = convert(config(tmp_path / "data", tmp_path / "out", background_ratio=0.1))
    assert report.unused_good == 6 - sum(report.backgrounds.values()) > 0
    assert f"good images not used (--background-ratio): {report.unused_good}" in format_report(report)


def test_an_output_that_appears_during_the_run_is_not_replaced(tmp_path, category_factory, monkeypatch):
    category_factory(tmp_path / "data", "widget")
    out = tmp_path / "out"
    write_dataset = convert_module.write_dataset

    def concurrent_run_finishes_first(folder, *args, **kwargs):
        out.mkdir()
        (out / "data.yaml").write_text("the other run's data set")
        return write_dataset(folder, *args, **kwargs)

    monkeypatch.setattr(convert_module, "write_dataset", concurrent_run_finishes_first)
    with pytest.raises(UserError, match="output folder exists: .*out \\(pass --overwrite"):
        convert(config(tmp_path / "data", out))
    assert (out / "data.yaml").read_text() == "the other run's data set"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


@pytest.mark.parametrize(
    ("names", "start"),
    [
        (["a_mask.png", "b_mask.JPG"], "1 mask is a JPEG file, e.g. "),
        (["a_mask.jpeg", "b_mask.jpg"], "2 masks are JPEG files, e.g. "),
    ],
)
def test_lossy_mask_warnings_count_any_case_of_either_suffix(names, start):
    masks = [Path("gt") / name for name in names]
    [warning] = convert_module.lossy_mask_warnings(masks)
    first = next(mask for mask in masks if mask.suffix.lower() != ".png")
    assert warning.startswith(f"{start}{first}:")
    assert convert_module.lossy_mask_warnings([Path("a_mask.png"), Path("b_mask.bmp")]) == []


@pytest.mark.parametrize("primary", ["yolo", "coco"])
def test_help_says_what_category_means_with_images(primary):
    # --help said 'categories to convert; empty = all under --root', while with --images it names the one
    # category (output names, {category}), defaulting to the folder above --images
    text = " ".join(build_parser(f"mvtec2{primary}", primary=primary).format_help().split())
    assert "With --images: the one category's name (default: the name of the folder holding --images)" in text
    # --exclude-defect said 'defect types', and a LOCO class of defects_config.json is one to a user
    assert "defect types (folders) to leave out, e.g. combined; not the classes a layout names" in text


@pytest.mark.parametrize("primary", ["yolo", "coco"])
def test_help_names_no_none_default(primary):
    assert "(default: None)" not in " ".join(
        build_parser(f"mvtec2{primary}", primary=primary).format_help().split()
    )


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        # each was accepted, ignored, and --seed/--split/--background-ratio recorded in splits.json
        (mvtec2yolo, ["--split-from-layout", "--seed", "5"], "--seed does nothing with --split-from-layout"),
        (mvtec2yolo, ["--split-from-layout", "--split", "1", "1", "1"], "--split does nothing with"),
        (
            mvtec2yolo,
            ["--splits", "s.json", "--background-ratio=0.1"],
            "--background-ratio does nothing with --splits (the split is s.json's)",
        ),
        (
            mvtec2coco,
            ["--task", "segment"],
            "--task shapes the YOLO output, which is not written: add --yolo",
        ),
        (mvtec2yolo, ["--coco-segmentation", "rle"], "--coco-segmentation shapes the COCO output"),
        # --root went unread, and 'no defect image left to convert under <--root>' named it
        (mvtec2yolo, ["--images", "photos"], "--root does nothing with --images (the folder layout reads"),
        # the template was ignored without a word: every class was 'defect'
        (
            mvtec2yolo,
            ["--single-class", "--names-template", "{defect} on {category}"],
            "--names-template does nothing with --single-class",
        ),
    ],
)
def test_a_flag_that_would_change_nothing_is_refused(tmp_path, capsys, command, flags, message):
    assert command(["--root", str(tmp_path), "--out", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_flag_that_would_change_nothing_is_refused_from_the_command_line_too(tmp_path, capsys, monkeypatch):
    # main() without argv reads sys.argv: the flags typed there are the ones checked
    argv = ["--root", str(tmp_path), "--out", str(tmp_path / "out"), "--split-from-layout", "--seed=5"]
    monkeypatch.setattr("sys.argv", ["mvtec2yolo", *argv])
    assert mvtec2yolo() == 2
    assert capsys.readouterr().err.startswith("error: --seed does nothing with --split-from-layout")


def test_the_same_flags_where_they_act_are_accepted(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    root = ["--root", str(tmp_path / "data"), "--no-progress"]
    assert mvtec2coco([*root, "--out", str(tmp_path / "a"), "--yolo", "--task", "segment"]) == 0
    assert mvtec2yolo([*root, "--out", str(tmp_path / "b"), "--coco", "--coco-segmentation", "rle"]) == 0
    assert mvtec2yolo([*root, "--out", str(tmp_path / "d"), "--task", "segment"]) == 0  # its own output
    assert mvtec2coco([*root, "--out", str(tmp_path / "e"), "--coco-segmentation", "rle"]) == 0
    assert mvtec2yolo([*root, "--out", str(tmp_path / "c"), "--seed", "5", "--split", "3", "1", "1"]) == 0
    assert json.loads((tmp_path / "c" / "splits.json").read_text())["seed"] == 5


def test_keep_splits_leaves_every_image_an_earlier_split_placed_where_it_was(tmp_path, category_factory):
    # each export of a growing annotation redrew the split: a val photo moved to train when another went
    blob = np.zeros((48, 64), np.uint8)
    blob[5:15, 5:20] = 255
    category_factory(tmp_path / "data", "widget", defects={"scratch": [blob] * 12}, n_train_good=8)
    convert(config(tmp_path / "data", tmp_path / "one", background_ratio=1.0))
    earlier = load_splits(tmp_path / "one" / "splits.json").split_of()
    scratch = tmp_path / "data" / "widget" / "test" / "scratch"
    for name in ("003.png", "007.png"):  # two photos gone, two new
        (scratch / name).unlink()
        (
            tmp_path / "data" / "widget" / "ground_truth" / "scratch" / name.replace(".png", "_mask.png")
        ).unlink()
    for name in ("100", "101"):
        shutil.copy(scratch / "000.png", scratch / f"{name}.png")
        shutil.copy(scratch.parent.parent / "ground_truth" / "scratch" / "000_mask.png",
                    scratch.parent.parent / "ground_truth" / "scratch" / f"{name}_mask.png")  # fmt: skip
    keep = tmp_path / "one" / "splits.json"
    convert(config(tmp_path / "data", tmp_path / "two", background_ratio=1.0, keep_splits=keep))
    now = load_splits(tmp_path / "two" / "splits.json").split_of()
    assert {k: s for k, s in now.items() if k in earlier} == {k: s for k, s in earlier.items() if k in now}
    assert {"widget/test/scratch/100", "widget/test/scratch/101"} <= set(now)  # drawn
    gone = {"widget/test/scratch/003", "widget/test/scratch/007"}
    assert set(earlier) - gone <= set(now)  # none of the kept images left out
    fresh = tmp_path / "three" / "splits.json"
    convert(config(tmp_path / "data", tmp_path / "three", background_ratio=1.0))
    assert load_splits(fresh).split_of() != now  # drawn afresh, images would move
    none = tmp_path / "none.json"
    convert(config(tmp_path / "data", tmp_path / "four", background_ratio=1.0, keep_splits=none))
    assert load_splits(tmp_path / "four" / "splits.json").split_of() == load_splits(fresh).split_of()


def test_a_kept_split_file_that_cannot_be_looked_for_is_refused_not_drawn_anew(
    tmp_path, category_factory, monkeypatch
):
    # from Python 3.13 Path.is_file is False where the folder cannot be searched: the split was drawn anew
    category_factory(tmp_path / "data", "widget")
    convert(config(tmp_path / "data", tmp_path / "one"))
    keep = tmp_path / "one" / "splits.json"
    stat = os.stat

    def unsearchable(path, *args, **kwargs):  # run as root, chmod would not refuse
        if Path(path) == keep:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", unsearchable)
    with pytest.raises(UserError) as refused:
        convert(config(tmp_path / "data", tmp_path / "two", keep_splits=keep))
    assert str(refused.value) == (
        f"cannot read splits file {keep}: Permission denied (the split it records is kept, not drawn anew); "
        f"make {keep} readable"
    )
    assert not (tmp_path / "two").exists()


def test_a_repeated_category_or_exclude_defect_flag_adds_to_the_list() -> None:
    # `--category a --category b` converted b alone, silently (argparse kept the last flag)
    from converters.cli import build_parser

    argv = ["--out", "o", "--category", "a", "--category", "b", "c"]
    args = build_parser("mvtec2yolo", primary="yolo").parse_args(
        [*argv, "--exclude-defect", "x", "--exclude-defect", "y"]
    )
    assert args.category == ["a", "b", "c"] and args.exclude_defect == ["x", "y"]


def test_an_empty_defect_folder_is_a_warning_or_a_strict_error(tmp_path, category_factory):
    # test/crack/ made before its photos were copied left 'crack' out of the classes without a word
    category = category_factory(tmp_path / "data", "widget")
    (category / "test" / "crack").mkdir()
    (category / "test" / "crack" / ".DS_Store").write_bytes(b"")
    (category / "test" / "notes").mkdir()
    (category / "test" / "notes" / "todo.txt").write_text("not empty")
    [warning] = convert(config(tmp_path / "data", tmp_path / "out")).warnings
    assert warning == (
        f"empty folder {category / 'test' / 'crack'}: no photos, so the data set holds no 'crack' photos of "
        "category 'widget' (add them or remove it)"
    )
    with pytest.raises(UserError, match=r"^empty folder .*crack: no photos, .*--strict\)$"):
        convert(config(tmp_path / "data", tmp_path / "strict", strict=True))


def test_each_of_several_empty_defect_folders_is_a_warning_claiming_what_its_own_type_lacks(
    tmp_path, category_factory
):
    # one line, '3 empty folders, e.g. .../test/crack: ... no 'crack' photos ...', claimed the first folder's
    # type alone: 'pit' went unsaid (and had the first's type photos elsewhere, 'no photos', every type's)
    category = category_factory(tmp_path / "data", "widget", n_test_good=0)
    for name in ("crack", "good", "pit"):
        (category / "test" / name).mkdir()
    lacks = "no photos, so the data set holds no '{}' photos of category 'widget' (add them or remove it)"
    assert convert(config(tmp_path / "data", tmp_path / "out")).warnings == [
        f"empty folder {category / 'test' / 'crack'}: {lacks.format('crack')}",
        f"empty folder {category / 'test' / 'good'}: no photos (add them or remove it)",
        f"empty folder {category / 'test' / 'pit'}: {lacks.format('pit')}",
    ]


def test_an_empty_defect_folder_is_warned_of_for_its_own_category(tmp_path, category_factory, mask_factory):
    # "'crack' is no class of the data set" was false: gadget's crack photos make 'crack' a class
    widget = category_factory(tmp_path / "data", "widget")
    (widget / "test" / "crack").mkdir()
    category_factory(
        tmp_path / "data", "gadget", defects={"crack": [mask_factory(48, 64, [(5, 5, 15, 9)])] * 3}
    )
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    assert sum(counts["crack"] for counts in report.instances.values()) == 3  # a class of the data set
    assert [line for line in report.warnings if "empty folder" in line] == [
        f"empty folder {widget / 'test' / 'crack'}: no photos, so the data set holds no 'crack' photos of "
        "category 'widget' (add them or remove it)"
    ]


def test_an_empty_good_folder_is_no_class_and_claims_nothing_where_the_category_has_good_photos(
    tmp_path, category_factory
):
    # an empty test/good/ was "'good' is no class of the data set": good photos are no class, and
    # train/good/ gives the category good photos all the same
    category = category_factory(tmp_path / "data", "widget", n_test_good=0)
    (category / "test" / "good").mkdir()
    [warning] = convert(config(tmp_path / "data", tmp_path / "out")).warnings
    assert warning == f"empty folder {category / 'test' / 'good'}: no photos (add them or remove it)"


def test_a_core_install_is_told_which_extra_brings_yolo_train(tmp_path, category_factory, monkeypatch):
    # the core (no ultralytics) was told `train with: yolo train ...`, a command it does not have
    category_factory(tmp_path / "data", "widget")
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ultralytics" else real(name, *a)
    )
    *_, note, train = format_report(report).splitlines()
    assert note == (
        "note: yolo train needs the 'train' extra (ultralytics not installed): "
        "pip install '.[train]' in the mvtec-finetune checkout"
    )
    assert shlex.split(train.removeprefix("train with: "))[:2] == ["yolo", "train"]  # still whole to paste
    monkeypatch.setattr(importlib.util, "find_spec", real)
    assert not any(line.startswith("note: yolo train") for line in format_report(report).splitlines())


def test_a_quoted_tilde_in_a_path_option_is_the_home_folder(tmp_path, monkeypatch) -> None:
    # --out '~/yolo' wrote a data set into a folder named '~' in the working folder
    monkeypatch.setenv("HOME", str(tmp_path))
    argv = ["--root", "~/mvtec", "--out", "~/yolo", "--splits", "~/s.json", "--mask-values", "~/v.json"]
    args = build_parser("mvtec2yolo", primary="yolo").parse_args(argv)
    assert (args.root, args.out) == (tmp_path / "mvtec", tmp_path / "yolo")
    assert (args.splits, args.mask_values) == (tmp_path / "s.json", tmp_path / "v.json")


@pytest.mark.parametrize("excluded", [False, True], ids=["every defect folder empty", "the other excluded"])
def test_no_defect_image_left_names_the_empty_defect_folders(tmp_path, capsys, category_factory, excluded):
    # the error guessed 'every defect type excluded or without a mask?', and came before the 'empty
    # folder' warnings that would have named them (test/crack/ made before its photos were copied)
    defects = {"scratch": [np.full((48, 64), 255, np.uint8)]} if excluded else {}
    category = category_factory(tmp_path / "data", "widget", defects=defects)
    for defect in ("crack", "hole"):
        (category / "test" / defect).mkdir()
    flags = ["--exclude-defect", "scratch"] if excluded else []
    args = ["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress", *flags]
    assert mvtec2yolo(args) == 2
    head = f"error: no defect image left to convert under {tmp_path / 'data'} (6 good images"
    folders = f"{category / 'test' / 'crack'}, {category / 'test' / 'hole'} are empty folders"
    said = (
        f"{head}; {folders}; every other defect type excluded or without a mask?)"
        if excluded
        else f"{head}): {folders}: add their photos"
    )
    assert capsys.readouterr().err.splitlines()[-1] == said
    assert not (tmp_path / "out").exists()


def test_a_category_of_good_images_only_is_noted_as_left_out_of_the_data_set(tmp_path, category_factory):
    # its layout was listed as converted and its good images counted among those not used: nothing said
    # that no image of it was in the data set
    category_factory(tmp_path / "data", "widget")
    category_factory(tmp_path / "data", "plain", defects={})
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    assert "plain" in report.layouts
    assert [note for note in report.notes if "plain" in note] == [
        "category 'plain' has no defect image, so none of its 6 good images is in the data set "
        "(--background-ratio draws good images per defect image of their category)"
    ]
    assert not any(path.name.startswith("plain") for path in (tmp_path / "out" / "images").rglob("*"))
    # with the layout's split every good image is used: nothing to note
    layout = convert(config(tmp_path / "data", tmp_path / "out2", split_from_layout=True))
    assert not any("plain" in note for note in layout.notes)


def test_a_category_whose_defect_images_were_all_skipped_is_noted_as_skipped(tmp_path, category_factory):
    # its defect masks all empty: the note said it 'has no defect image', which it has, all skipped
    category_factory(tmp_path / "data", "widget")
    category_factory(tmp_path / "data", "plain", defects={"scratch": [np.zeros((48, 64), np.uint8)] * 2})
    report = convert(config(tmp_path / "data", tmp_path / "out"))
    reason = next(reason for key, reason in report.skipped if key.startswith("plain/"))
    assert [note for note in report.notes if "plain" in note] == [
        f"category 'plain' has no defect image left: its 2 defect images were all skipped ({reason}: see "
        "'skipped images'), so none of its 6 good images is in the data set (--background-ratio draws good "
        "images per defect image of their category)"
    ]
    summary = format_report(report).splitlines()
    assert summary.index("skipped images: 2") < next(
        i for i, line in enumerate(summary) if line.startswith("note: category 'plain'")
    )


def test_exclude_defect_typed_in_another_unicode_form_leaves_the_folder_out(tmp_path, category_factory):
    # a defect folder named on macOS ('a' and a combining diaeresis), the name typed with one 'ä': refused
    # as "no such defect type ... (found, and excludable: fläck, scratch)", a name that looked the same
    on_disk, typed = unicodedata.normalize("NFD", "fläck"), unicodedata.normalize("NFC", "fläck")
    mask = np.zeros((48, 64), np.uint8)
    mask[5:15, 5:15] = 255
    category_factory(tmp_path / "data", "widget", defects={on_disk: [mask] * 3, "scratch": [mask] * 5})
    report = convert(config(tmp_path / "data", tmp_path / "a", exclude_defects=(typed,)))
    assert report.names == ["scratch"]
    # a reused split that lists the folder's photos leaves them out too (skipped), as the typed name says
    convert(config(tmp_path / "data", tmp_path / "b"))
    reused = config(tmp_path / "data", tmp_path / "c", splits_file=tmp_path / "b" / "splits.json")
    report = convert(replace(reused, exclude_defects=(typed,)))
    assert report.names == ["scratch"] and sum(why == "--exclude-defect" for _, why in report.skipped) == 3


def test_an_out_inside_a_photo_folder_linked_into_the_tree_is_refused(tmp_path, category_factory):
    # test/scratch a link to a folder elsewhere: '--out root/widget/test/scratch/out' lies outside the
    # input tree as resolved, and the data set was written into the linked photo folder
    category_factory(tmp_path / "store", "widget")
    root = tmp_path / "data" / "widget"
    shutil.copytree(tmp_path / "store" / "widget", root, ignore=shutil.ignore_patterns("scratch"))
    (root / "test" / "scratch").symlink_to(tmp_path / "store" / "widget" / "test" / "scratch")
    (root / "ground_truth" / "scratch").symlink_to(tmp_path / "store" / "widget" / "ground_truth" / "scratch")
    before = tree_digest(tmp_path / "store")
    out = root / "test" / "scratch" / "out"
    with pytest.raises(UserError) as refused:
        convert(config(tmp_path / "data", out))
    linked = (tmp_path / "store" / "widget" / "test" / "scratch").resolve()
    assert str(refused.value).startswith(
        f"output folder {linked / 'out'} is inside {linked}, which the input files are read from (e.g. "
    )
    assert str(refused.value).endswith(", through a link); choose another --out")
    assert tree_digest(tmp_path / "store") == before and not out.exists()
    assert convert(config(tmp_path / "data", tmp_path / "elsewhere")).names == ["hole", "scratch"]


def test_a_good_copy_of_a_defect_photo_is_a_warning_in_any_split(tmp_path):
    # every photo copied into --good too: the copy of a defect photo, drawn as a background into the same
    # split, was written without a word (copied_photo_warnings names copies across splits only)
    defect = _photo(tmp_path / "bad" / "00.png", b"aaaa", values=255)
    other = _photo(tmp_path / "bad" / "01.png", b"bbbb", values=255)
    good_record = ImageRecord(tmp_path / "good" / "dup.png", "widget", "test", "good")
    (tmp_path / "good").mkdir()
    good_record.image.write_bytes(b"aaaa")
    good = Sample(good_record, 4, 4)
    [warning] = convert_module.good_copy_warnings({"train": [defect, other, good], "val": [], "test": []})
    assert warning == (
        f"1 good photo is a byte-for-byte copy of a defect photo, e.g. {good_record.image} (train) of "
        f"{defect.record.image} (train): the model is trained on that photo as defect-free too; remove the "
        "copies from the good photos"
    )
    # two defect photos alike, or a good one of another content: no such line
    twin = _photo(tmp_path / "bad" / "02.png", b"aaaa", values=255)
    assert convert_module.good_copy_warnings({"train": [defect, twin, other], "val": [], "test": []}) == []


def _good_copy_of_a_defect_photo(root: Path, photos: int) -> ConvertConfig:
    """``photos`` defect photos in ``root/bad`` (masks in ``root/masks``), the first copied into
    ``root/good``; the conversion of them into ``root/out``."""
    rng = np.random.default_rng(0)
    for folder in ("bad", "masks", "good"):
        (root / folder).mkdir()
    mask = np.zeros((32, 32), np.uint8)
    mask[4:12, 4:12] = 255
    for i in range(photos):
        cv2.imwrite(str(root / "bad" / f"{i}.png"), rng.integers(0, 255, (32, 32, 3), np.uint8))
        cv2.imwrite(str(root / "masks" / f"{i}.png"), mask)
    shutil.copyfile(root / "bad" / "0.png", root / "good" / "copy.png")
    return ConvertConfig(
        root=root,
        out=root / "out",
        images=root / "bad",
        masks=root / "masks",
        good=root / "good",
        background_ratio=10,
        progress=False,
    )


def test_a_defect_photo_copied_into_good_gets_the_warning_in_a_conversion(tmp_path):
    config = _good_copy_of_a_defect_photo(tmp_path, 5)
    report = convert(config)
    assert any(
        w.startswith("1 good photo is a byte-for-byte copy of a defect photo, e.g. ") for w in report.warnings
    )
    with pytest.raises(UserError, match=r"byte-for-byte cop.* \(--strict\)$"):  # it, or the across-splits one
        convert(replace(config, out=tmp_path / "out2", strict=True))
    assert not (tmp_path / "out2").exists()


def test_the_out_check_resolves_each_photo_folder_once_not_each_file(tmp_path, monkeypatch):
    # a resolve looks at every folder on the path: one per photo and mask was seconds for a large set
    (tmp_path / "bad").mkdir()
    (tmp_path / "store").mkdir()
    records = []
    for i in range(20):
        (tmp_path / "bad" / f"{i}.png").write_bytes(b"x")
        records.append(ImageRecord(tmp_path / "bad" / f"{i}.png", "widget", "test", "good"))
    (tmp_path / "store" / "a.png").write_bytes(b"x")
    (tmp_path / "bad" / "linked.png").symlink_to(tmp_path / "store" / "a.png")
    records.append(ImageRecord(tmp_path / "bad" / "linked.png", "widget", "test", "good"))
    resolve, resolved = Path.resolve, []

    def counted(self: Path, *args, **kwargs) -> Path:
        resolved.append(self)
        return resolve(self, *args, **kwargs)

    monkeypatch.setattr(Path, "resolve", counted)
    convert_module.check_out_apart_from_inputs(resolve(tmp_path / "out"), records)
    assert sorted(resolved) == [tmp_path / "bad", tmp_path / "bad" / "linked.png"]
    # a photo linked alone from a folder: that folder is never listed, so only an out that is it is refused
    convert_module.check_out_apart_from_inputs(resolve(tmp_path / "store" / "out"), records)
    with pytest.raises(UserError, match=r"^output folder .*/store is inside .*/store, which the input"):
        convert_module.check_out_apart_from_inputs(resolve(tmp_path / "store"), records)


def test_a_conversion_hashes_each_photo_once(tmp_path, monkeypatch):
    # photos written just before (an export, the synthetic set) are not remembered by common.io: both copy
    # checks read each photo of a size that spans splits and good and defect photos whole, twice
    config = _good_copy_of_a_defect_photo(tmp_path, 6)
    hashed, sha256_file = [], convert_module.sha256_file
    monkeypatch.setattr(
        convert_module, "sha256_file", lambda path, **kw: hashed.append(Path(path)) or sha256_file(path, **kw)
    )
    report = convert(config)
    assert any(w.startswith("1 good photo is a byte-for-byte copy") for w in report.warnings)
    assert hashed and sorted(hashed) == sorted(set(hashed))


def _linked_photos(folder: Path, raw: Path) -> None:
    """Moves ``folder``'s files into ``raw`` (flat), each left as a link in ``folder``: a tree of links."""
    raw.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        target = raw / f"{folder.name}_{path.name}"
        path.rename(target)
        path.symlink_to(target)


def test_an_out_inside_a_linked_photo_folder_of_links_is_refused(tmp_path, category_factory):
    # test/scratch a link to a folder whose photos are links themselves: the check looked at the photos'
    # own folder only, and --out root/widget/test/scratch/out wrote into the linked photo folder
    category_factory(tmp_path / "store", "widget")
    linked = tmp_path / "store" / "widget" / "test" / "scratch"
    _linked_photos(linked, tmp_path / "raw")
    root = tmp_path / "data" / "widget"
    shutil.copytree(
        tmp_path / "store" / "widget", root, symlinks=True, ignore=shutil.ignore_patterns("scratch")
    )
    (root / "test" / "scratch").symlink_to(linked)
    (root / "ground_truth" / "scratch").symlink_to(tmp_path / "store" / "widget" / "ground_truth" / "scratch")
    out = root / "test" / "scratch" / "out"
    with pytest.raises(
        UserError, match=f"^output folder {re.escape(str(linked.resolve() / 'out'))} is inside"
    ):
        convert(config(tmp_path / "data", out))
    assert not out.exists()


def test_an_out_beside_the_photos_a_tree_of_links_points_to_is_written(tmp_path, category_factory):
    # every photo a link into one flat folder: that folder is never listed, so an --out inside it writes
    # no input (it was refused as 'inside ... which the input files are read from')
    root = category_factory(tmp_path / "data", "widget")
    for folder in sorted((root / "test").iterdir()):
        _linked_photos(folder, tmp_path / "raw")
    assert convert(config(tmp_path / "data", tmp_path / "raw" / "yolo")).names == ["hole", "scratch"]
