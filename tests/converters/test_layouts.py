"""Every data set layout read into the same records: detection, forcing, counts, merged masks, errors.

Each test builds a tiny tree of one layout (:mod:`tests.converters.layout_trees`: 32x32
noise images, three defect masks holding four regions) and converts or scans it.
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import UserError
from common.folders import check_one_line_names
from converters.convert import ConvertConfig, convert, format_report
from converters.layouts import LAYOUTS, detect_layout, get_layout, matching_layouts
from converters.layouts.folder import scan_folders
from converters.layouts.mvtec_3d import XYZ_NOTE
from converters.layouts.mvtec_loco import defect_values
from converters.layouts.visa import split_file
from converters.mvtec import list_categories, read_record_mask, scan, scan_category
from converters.mvtec2yolo import main as mvtec2yolo
from converters.splits import load_splits
from tests.conftest import assert_link_loop_line
from tests.converters.layout_trees import (
    CATEGORY,
    DEFECT_MASKS,
    EXPECTED,
    N_DEFECT,
    N_INSTANCES,
    SIZE,
    make_layout_tree,
    noise,
    write,
    write_json,
)


def run(root: Path, out: Path, **options) -> object:
    """Converts with every good image used, so the counts are exact."""
    options.setdefault("background_ratio", 100.0)
    return convert(ConvertConfig(root=root, out=out, progress=False, formats=("yolo", "coco"), **options))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_layout_converts_with_exact_counts(tmp_path, layout):
    root = make_layout_tree(tmp_path, layout)
    expected = EXPECTED[layout]
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + expected.good
    assert sum(report.backgrounds.values()) == expected.good
    assert sum(sum(c.values()) for c in report.instances.values()) == N_INSTANCES
    assert report.unlabelled == expected.unlabelled
    assert report.layouts == {CATEGORY: LAYOUTS[layout].title}
    assert f"layout                      {CATEGORY}: {LAYOUTS[layout].title}" in format_report(report)
    written = sorted(p.name for p in (tmp_path / "out" / "images").rglob("*.*"))
    assert len(written) == len(set(written)) == N_DEFECT + expected.good
    splits = load_splits(tmp_path / "out" / "splits.json")
    keys = [key for split in ("train", "val", "test") for key in splits[split]]
    assert all(len(key.split("/")) == 4 and key.startswith(f"{CATEGORY}/") for key in keys)


@pytest.mark.parametrize(
    ("layout", "folder"),
    [
        ("kolektor_sdd2", "train"),
        ("mvtec_loco", "ground_truth/logical_anomalies/000"),  # a region folder of one image
        ("mvtec_ad2", "test_private"),
    ],
)
def test_a_resource_fork_among_a_layouts_files_is_no_image(tmp_path, layout, folder):
    # macOS's AppleDouble "._x.png": an image suffix, not an image (and not a region file of LOCO's)
    root = make_layout_tree(tmp_path, layout)
    before = [(r.key, r.mask_files) for r in scan(root, include_unlabelled=True)]
    (root / CATEGORY / folder / "._000.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    assert [(r.key, r.mask_files) for r in scan(root, include_unlabelled=True)] == before


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_detection_finds_each_layout_and_the_category(tmp_path, layout):
    root = make_layout_tree(tmp_path, layout)
    assert detect_layout(root / CATEGORY).name == layout
    assert list_categories(root) == [CATEGORY]
    assert list_categories(root / CATEGORY) == [CATEGORY]


def test_keys_are_stable_when_the_layout_is_forced(tmp_path):
    root = make_layout_tree(tmp_path, "btad")
    detected = [r.key for r in scan(root)]
    assert detected == [r.key for r in scan(root, layout="btad")]
    assert f"{CATEGORY}/train/good/000" in detected and f"{CATEGORY}/test/ko/000" in detected


def test_ambiguous_folder_is_refused_until_a_layout_is_forced(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_loco")
    write(root / CATEGORY / "test_public" / "good" / "900.png", np.zeros((*SIZE, 3), np.uint8))  # AD 2 too
    with pytest.raises(UserError, match="matches several layouts: mvtec_ad2 .* and mvtec_loco .*--layout"):
        scan(root)
    records = scan(root, layout="mvtec_loco")
    assert {r.layout for r in records} == {"mvtec_loco"} and len(records) == N_DEFECT + 4


def test_forcing_a_layout_that_does_not_fit_names_it(tmp_path):
    root = make_layout_tree(tmp_path, "visa")
    with pytest.raises(UserError, match="no category folders under .*looked for train/ok/"):
        scan(root, layout="btad")
    with pytest.raises(UserError, match="unknown BTAD category 'widget'"):
        scan(root, [CATEGORY], layout="btad")
    with pytest.raises(UserError, match="unknown layout 'mvtec' .*mvtec_ad, mvtec_ad2"):
        get_layout("mvtec")


def test_a_folder_of_no_layout_says_what_was_looked_for(tmp_path):
    (tmp_path / "photos" / "misc").mkdir(parents=True)
    with pytest.raises(UserError, match="no category folders under .*MVTec AD: .*VisA: Data/Images"):
        scan(tmp_path / "photos")
    with pytest.raises(UserError, match="no known data set layout in .*misc; looked for MVTec AD"):
        detect_layout(tmp_path / "photos" / "misc")


def test_loco_region_files_merge_into_one_value_coded_mask(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_loco")
    folder = root / CATEGORY / "ground_truth" / "structural_anomalies" / "001"
    assert sorted(p.name for p in folder.iterdir()) == ["000.png", "001.png"]  # two blobs, two files
    second = cv2.imread(str(folder / "001.png"), cv2.IMREAD_UNCHANGED)
    write(folder / "001.png", np.where(second > 0, 254, 0).astype(np.uint8))  # another defect type
    write_json(
        root / CATEGORY / "defects_config.json",
        [
            {
                "defect_name": "missing_part",
                "pixel_value": 255,
                "saturation_threshold": 1.0,
                "relative_saturation": True,
            },
            {
                "defect_name": "extra_part",
                "pixel_value": 254,
                "saturation_threshold": 50,
                "relative_saturation": False,
            },
        ],
    )
    record = next(r for r in scan(root) if r.image.stem == "001" and not r.is_good)
    assert len(record.mask_files) == 2
    merged = read_record_mask(record, SIZE)
    assert sorted(np.unique(merged).tolist()) == [0, 254, 255]
    report = run(root, tmp_path / "out")
    assert report.names == ["extra_part", "missing_part"]
    counted = {name: sum(report.instances[s][name] for s in report.instances) for name in report.names}
    assert counted == {"extra_part": 1, "missing_part": N_INSTANCES - 1}
    assert not any("overlap" in warning for warning in report.warnings)  # the two regions do not


def test_a_loco_class_of_defects_config_cannot_be_excluded_and_the_error_says_which_can(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_loco")
    write_json(root / CATEGORY / "defects_config.json", [{"defect_name": "missing_part", "pixel_value": 255}])
    # the message listed the folders only, without a word why the class name shown in data.yaml is refused
    message = (
        r"--exclude-defect missing_part: no such defect type .*excludable: logical_anomalies, "
        r"structural_anomalies\); missing_part: a class of the masks' pixel values \(defects_config.json"
    )
    with pytest.raises(UserError, match=message):
        scan(root, exclude_defects=("missing_part",))
    with pytest.raises(UserError) as error:  # a plain typo gets no such hint
        scan(root, exclude_defects=("missing_partt",))
    assert "pixel values" not in str(error.value)


def test_loco_region_files_that_overlap_with_other_values_stay_one_instance_each(tmp_path):
    # a third file over the first region, another defect's value: merged, the later value won the pixels
    # and the first instance vanished (with a warning); each file is its own instance now
    root = make_layout_tree(tmp_path, "mvtec_loco")
    folder = root / CATEGORY / "ground_truth" / "structural_anomalies" / "001"
    first = cv2.imread(str(folder / "000.png"), cv2.IMREAD_UNCHANGED)
    write(folder / "002.png", np.where(first > 0, 254, 0).astype(np.uint8))
    write_json(
        root / CATEGORY / "defects_config.json",
        [
            {"defect_name": "missing_part", "pixel_value": 255},
            {"defect_name": "extra_part", "pixel_value": 254},
        ],
    )
    report = run(root, tmp_path / "out")
    counted = {name: sum(report.instances[s][name] for s in report.instances) for name in report.names}
    assert counted == {"extra_part": 1, "missing_part": N_INSTANCES}
    assert not any("overlap" in warning for warning in report.warnings)


def test_a_loco_region_file_without_a_defect_pixel_beside_others_is_a_warning(tmp_path):
    # its region was left out without a word: the image converted with one instance fewer
    root = make_layout_tree(tmp_path, "mvtec_loco")
    empty = write(
        root / CATEGORY / "ground_truth" / "structural_anomalies" / "001" / "000.png",
        np.zeros(SIZE, np.uint8),
    )
    line = (
        f"1 region file holds no defect pixel ({empty}), beside other region files of its image: no instance "
        "is made of it, the image converted with the others; draw its region or remove the file"
    )
    report = run(root, tmp_path / "out")
    assert line in report.warnings
    assert sum(sum(counts.values()) for counts in report.instances.values()) == N_INSTANCES - 1


def _loco_annotations(out: Path, stem: str) -> list[dict]:
    """The COCO annotations of the LOCO image ``stem`` (``widget_test_<type>_<stem>``), whatever its split."""
    found = []
    for path in sorted((out / "annotations").glob("instances_*.json")):
        coco = json.loads(path.read_text())
        ids = {im["id"] for im in coco["images"] if Path(im["file_name"]).stem.endswith(f"anomalies_{stem}")}
        found += [a for a in coco["annotations"] if a["image_id"] in ids]
    return found


def _yolo_lines(out: Path, stem: str) -> list[str]:
    [labels] = (out / "labels").rglob(f"*anomalies_{stem}.txt")
    return labels.read_text().splitlines()


def test_a_loco_region_file_in_parts_apart_is_one_instance(tmp_path):
    # MVTec's evaluation counts one region per file: the two blobs of image 001 in one file were two
    root = make_layout_tree(tmp_path, "mvtec_loco")
    folder = root / CATEGORY / "ground_truth" / "structural_anomalies" / "001"
    both = DEFECT_MASKS[1]
    (folder / "001.png").unlink()
    write(folder / "000.png", both)
    report = run(root, tmp_path / "out", task="segment")
    assert sum(sum(c.values()) for c in report.instances.values()) == N_INSTANCES - 1
    [annotation] = _loco_annotations(tmp_path / "out", "001")
    assert annotation["bbox"] == [2.0, 2.0, 26.0, 24.0]  # spanning both parts
    assert annotation["area"] == int((both > 0).sum()) and len(annotation["segmentation"]) == 2
    # YOLO-seg: a line per part (one ring joining them drew its cut as defect pixels across the photo)
    lines = _yolo_lines(tmp_path / "out", "001")
    rendered = np.zeros(SIZE, np.uint8)
    for line in lines:
        points = np.array(line.split()[1:], float).reshape(-1, 2) * SIZE[::-1]
        cv2.fillPoly(rendered, [points.astype(np.int32)], 1)  # as ultralytics' polygon2mask
    near = cv2.dilate((both > 0).astype(np.uint8), np.ones((3, 3), np.uint8))  # fillPoly fills edges
    assert len(lines) == 2 and rendered[both > 0].all() and not (rendered & ~near.astype(bool)).any()


def test_loco_region_files_that_touch_stay_two_instances(tmp_path):
    # two files of one value side by side: merged into one mask they were one component, one instance
    root = make_layout_tree(tmp_path, "mvtec_loco")
    folder = root / CATEGORY / "ground_truth" / "logical_anomalies" / "000"
    beside = np.zeros(SIZE, np.uint8)
    beside[4:10, 10:14] = 255  # touches the blob at x 4..10 of 000.png
    write(folder / "001.png", beside)
    report = run(root, tmp_path / "out")
    assert sum(sum(c.values()) for c in report.instances.values()) == N_INSTANCES + 1
    assert sorted(a["bbox"] for a in _loco_annotations(tmp_path / "out", "000")) == [
        [4.0, 4.0, 6.0, 6.0],
        [10.0, 4.0, 4.0, 6.0],
    ]


def test_an_image_file_not_png_in_a_loco_region_folder_is_left_out_with_a_note(tmp_path):
    # MVTec's evaluation reads <stem>/*.png: a stray .jpg preview there was read as one more region
    root = make_layout_tree(tmp_path, "mvtec_loco")
    truth = root / CATEGORY / "ground_truth" / "logical_anomalies"
    write(truth / "000" / "preview.jpg", noise(7))
    report = run(root, tmp_path / "out")
    assert sum(sum(c.values()) for c in report.instances.values()) == N_INSTANCES
    stray = truth / "000" / "preview.jpg"
    assert (
        f"1 image file not .png in the region folders of {truth} left out, e.g. {stray}: "
        "MVTec LOCO's region files are .png, the only ones its evaluation reads"
    ) in report.notes
    for path in (truth / "000").glob("*.png"):
        path.unlink()
    with pytest.raises(
        UserError, match=r"no \.png region files: .*logical_anomalies/000 \(found preview\.jpg"
    ):
        scan(root)


@pytest.mark.parametrize(
    ("layout", "map_file", "where"),
    [
        # LOCO: the image's second region file (the error named its folder, as the files were merged)
        ("mvtec_loco", f"{CATEGORY}/defects_config.json", "ground_truth/structural_anomalies/001/001.png"),
        ("mvtec_3d", f"{CATEGORY}/class_ids.json", "test/crack/gt/001.png"),
        # beside the categories: the error said 'class_ids.json', not which of the two files it read
        ("mvtec_3d", "class_ids.json", "test/crack/gt/001.png"),
    ],
)
def test_a_mask_value_missing_from_the_layouts_map_names_that_file(tmp_path, layout, map_file, where):
    # the error named '--mask-values' ('the mask-values map'), an option the user never gave
    root = make_layout_tree(tmp_path, layout)
    if layout == "mvtec_loco":
        write_json(root / map_file, [{"defect_name": "missing_part", "pixel_value": 255}])
    else:
        write_json(root / map_file, {"255": "crack"})
    path = root / CATEGORY / where
    write(path, np.where(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0, 200, 0).astype(np.uint8))
    message = f"{path}: mask value 200 is not in {root / map_file} (known: 0, 255)"
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        run(root, tmp_path / "out")
    # --mask-values replaces the layout's map, and its own name stays
    values = write_json(tmp_path / "values.json", {"255": "crack", "0": "good"})
    with pytest.raises(UserError, match="mask value 200 is not in the mask-values map"):
        run(root, tmp_path / "out", mask_values=values)


@pytest.mark.parametrize(
    ("layout", "folder", "warned"),
    [
        ("mvtec_3d", "test/dent/rgb", True),  # not warned: the type's photos lie in its rgb/
        ("mvtec_3d", "test/good/xyz", False),  # warned "'xyz' is no class of the data set"
        ("mvtec_ad2", "test_private_mixed", False),  # unlabelled photos beside it: no defect type
        ("mvtec_ad", "test/dent", True),
        ("visa", "Data/Images/Extra", False),  # warned "'Extra' is no class": not a VisA type
    ],
)
def test_a_conversion_warns_of_an_empty_folder_only_where_it_is_a_layouts_defect_type(
    tmp_path, layout, folder, warned
):
    category = make_layout_tree(tmp_path, layout) / CATEGORY
    shutil.rmtree(category / folder, ignore_errors=True)
    (category / folder).mkdir(parents=True)
    if layout == "mvtec_3d" and warned:
        (category / "test" / "dent" / "gt").mkdir()
    warnings = [line for line in run(category.parent, tmp_path / "out").warnings if "empty folder" in line]
    type_name = Path(folder).parent.name if layout == "mvtec_3d" else Path(folder).name
    line = f"empty folder {category / folder}: no photos, so the data set holds no '{type_name}' photos of"
    assert warnings == ([f"{line} category '{CATEGORY}' (add them or remove it)"] if warned else [])


@pytest.mark.parametrize("layout", ["visa", "btad"])
def test_an_empty_good_folder_says_the_data_set_holds_no_good_photos(tmp_path, layout):
    # VisA's empty Data/Images/Normal/ was "'good' is no class of the data set (add them)", BTAD's test/ok/
    # "'ok' is no class ...": good photos are never a class. VisA's asked to add them only, though its
    # category converts without the folder (test_an_empty_visa_normal_folder_may_be_removed)
    category = make_layout_tree(tmp_path, layout) / CATEGORY
    if layout == "visa":
        (category.parent / "split_csv" / "1cls.csv").unlink()
        shown = category / "Data" / "Images" / "Normal"
        emptied = [shown]
    else:  # train/ok/ emptied too, or the category's good photos come from there
        shown = category / "test" / "ok"
        emptied = [shown, category / "train" / "ok"]
    for folder in emptied:
        for photo in folder.iterdir():
            photo.unlink()
    warnings = [line for line in run(category.parent, tmp_path / "out").warnings if "empty folder" in line]
    line = f"empty folder {shown}: no photos, so the data set holds no good photos of category '{CATEGORY}'"
    assert warnings == [f"{line} (add them or remove it)"]


def test_an_empty_visa_normal_folder_may_be_removed(tmp_path):
    # the remedy the warning above offers: without a split file, a VisA object converts without Normal/
    category = make_layout_tree(tmp_path, "visa") / CATEGORY
    (category.parent / "split_csv" / "1cls.csv").unlink()
    shutil.rmtree(category / "Data" / "Images" / "Normal")
    report = run(category.parent, tmp_path / "out")
    assert sum(report.images.values()) == 3
    assert not [line for line in report.warnings if "empty folder" in line]


@pytest.mark.parametrize("split_file", [True, False])
def test_a_visa_folder_beside_normal_and_anomaly_holding_photos_is_named_as_not_read(tmp_path, split_file):
    # Data/Images/Extra/ was read as a defect type when empty, and its photos were left out without a word
    root = make_layout_tree(tmp_path, "visa")
    if not split_file:
        (root / "split_csv" / "1cls.csv").unlink()
    data = root / CATEGORY / "Data"
    write(data / "Images" / "Extra" / "a.JPG", noise(7))
    write(data / "Images" / "Extra" / "b.JPG", noise(8))
    write(data / "Masks" / "Extra" / "a.png", np.zeros((8, 8), np.uint8))
    notes = [note for note in run(root, tmp_path / "out").notes if note.startswith("folder not read")]
    assert notes == [
        f"folder not read: {data / 'Images' / 'Extra'} (2 image files left out; the VisA layout reads "
        "Normal/, Anomaly/ here)",
        f"folder not read: {data / 'Masks' / 'Extra'} (1 image file left out; the VisA layout reads "
        "Anomaly/ here)",
    ]


@pytest.mark.parametrize("name", ["Extra", "batch[1]"])
def test_a_visa_folder_the_split_file_lists_photos_of_is_read_and_not_named(tmp_path, name):
    # batch[1]/ was matched as a shell pattern, which it does not match: named as not read, though read
    root = make_layout_tree(tmp_path, "visa")
    extra = root / CATEGORY / "Data" / "Images" / name
    extra.mkdir()
    (root / CATEGORY / "Data" / "Images" / "Normal" / "0002.JPG").rename(extra / "0002.JPG")
    csv_file = root / "split_csv" / "1cls.csv"
    csv_file.write_text(csv_file.read_text().replace("Normal/0002.JPG", f"{name}/0002.JPG"))
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == 6
    assert sum(report.backgrounds.values()) == 3
    assert not [note for note in report.notes if note.startswith("folder not read")]


def test_a_visa_folder_the_split_file_lists_is_no_pattern_for_an_unlisted_folder(tmp_path):
    # a listed set?/ matched the unlisted set1/ as a shell pattern: its photo was left out without a word
    root = make_layout_tree(tmp_path, "visa")
    images = root / CATEGORY / "Data" / "Images"
    (images / "set?").mkdir()
    (images / "Normal" / "0002.JPG").rename(images / "set?" / "0002.JPG")
    csv_file = root / "split_csv" / "1cls.csv"
    csv_file.write_text(csv_file.read_text().replace("Normal/0002.JPG", "set?/0002.JPG"))
    write(images / "set1" / "a.JPG", noise(7))
    notes = [note for note in run(root, tmp_path / "out").notes if note.startswith("folder not read")]
    assert notes == [
        f"folder not read: {images / 'set1'} (1 image file left out; the VisA layout reads "
        "Normal/, Anomaly/, set?/ here)"
    ]


def test_3d_ad_class_ids_json_names_the_mask_values(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_3d")
    gt = root / CATEGORY / "test" / "crack" / "gt" / "001.png"
    mask = cv2.imread(str(gt), cv2.IMREAD_UNCHANGED)
    mask[20:, 20:] = np.where(mask[20:, 20:] > 0, 128, 0)  # the second blob is another class
    write(gt, mask)
    write_json(root / CATEGORY / "class_ids.json", {"255": "crack", "128": "dent", "0": "good"})
    report = run(root, tmp_path / "out")
    assert report.names == ["crack", "dent"]
    assert sum(report.instances[s]["dent"] for s in report.instances) == 1
    assert report.notes == [
        "MVTec 3D-AD: the xyz point clouds are not read (RGB images and gt masks only)",
        # the one image holding a 'dent' went to train
        "class 'dent' (1 image) has none in test: too few images to reach every split at --split "
        "0.6 0.2 0.2; the test scores leave it out",
    ]
    assert format_report(report).count("note: MVTec 3D-AD") == 1


@pytest.mark.parametrize(
    "options",
    [{}, {"single_class": True}, {"names_template": "{category}_{defect}"}, {"names_template": "x{defect}"}],
)
def test_a_value_class_ids_json_names_good_is_background_whatever_the_class_names(tmp_path, options):
    # the namer made the map's 'good' a class name before the instances were read: --single-class counted
    # the good blob as a 'defect' instance, '{category}_{defect}' failed with a KeyError traceback
    root = make_layout_tree(tmp_path, "mvtec_3d")
    gt = root / CATEGORY / "test" / "crack" / "gt" / "001.png"
    mask = cv2.imread(str(gt), cv2.IMREAD_UNCHANGED)
    mask[20:, 20:] = np.where(mask[20:, 20:] > 0, 128, 0)  # the second blob: a value named good
    write(gt, mask)
    write_json(root / CATEGORY / "class_ids.json", {"255": "crack", "128": "good"})
    report = run(root, tmp_path / "out", **options)
    assert sum(sum(counts.values()) for counts in report.instances.values()) == N_INSTANCES - 1


def test_visa_split_file_is_honoured_with_split_from_layout(tmp_path):
    root = make_layout_tree(tmp_path, "visa")
    report = run(root, tmp_path / "out", split_from_layout=True)
    # the empty val is the layout's, which --split cannot change: the warning says what can
    assert report.warnings == [
        "split 'val' has no images (the layout names no images for it; "
        "drop --split-from-layout to draw a split, or add images)",
        "split 'train' has no defect instance (the layout puts only good images there): a model trained "
        "on it learns no defect; draw a split instead, or move defect images into train",
    ]
    splits = load_splits(tmp_path / "out" / "splits.json")
    assert splits.train == [f"{CATEGORY}/normal/good/0000", f"{CATEGORY}/normal/good/0001"]
    assert splits.val == []
    assert len(splits.test) == 1 + N_DEFECT
    assert all(key.split("/")[2] == "anomaly" for key in splits.test[:N_DEFECT])


def test_visa_split_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    # 1cls.csv saved by a spreadsheet as "CSV UTF-8" starts with a BOM: it was refused as lacking 'object'
    root = make_layout_tree(tmp_path, "visa")
    csv = root / "split_csv" / "1cls.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())
    report = run(root, tmp_path / "out", split_from_layout=True)
    assert report.unlabelled == 0 and sum(report.images.values()) == N_DEFECT + EXPECTED["visa"].good
    assert load_splits(tmp_path / "out" / "splits.json").train == [
        f"{CATEGORY}/normal/good/0000",
        f"{CATEGORY}/normal/good/0001",
    ]


def test_visa_masks_holding_nine_defect_type_ids_are_no_soft_masks(tmp_path):
    # VisA's values are defect-type ids 1 .. 9: a photo with nine was a soft-mask warning (with --strict,
    # an error), which told to save the mask as 0/255 or to give --mask-values
    root = make_layout_tree(tmp_path, "visa")
    mask = np.zeros(SIZE, np.uint8)
    for region in range(9):
        row, column = divmod(region, 3)
        mask[1 + 10 * row : 4 + 10 * row, 1 + 10 * column : 4 + 10 * column] = region + 1
    write(root / CATEGORY / "Data" / "Masks" / "Anomaly" / "000.png", mask)
    report = run(root, tmp_path / "out")
    assert not any("distinct defect values" in warning for warning in report.warnings)
    assert sum(sum(counts.values()) for counts in report.instances.values()) == N_INSTANCES - 1 + 9


def test_visa_defect_type_ids_become_classes_with_mask_values(tmp_path):
    # docs/converters.md's claim: one object's part of spot-diff's id2class.json as --mask-values names
    # each type
    root = make_layout_tree(tmp_path, "visa")  # mask i holds the id i + 1
    values = write_json(tmp_path / "candle_ids.json", {"1": "wax_missing", "2": "wick", "3": "spot"})
    report = run(root, tmp_path / "out", mask_values=values)
    assert report.names == ["spot", "wax_missing", "wick"]
    assert {name: sum(c.get(name, 0) for c in report.instances.values()) for name in report.names} == {
        "wax_missing": 1,
        "wick": 2,
        "spot": 1,
    }


def test_visa_files_that_are_no_masks_beside_the_masks_are_no_orphan_masks(tmp_path):
    # only an image file in Masks/Anomaly is a mask that needs its photo
    root = make_layout_tree(tmp_path, "visa")
    (root / CATEGORY / "Data" / "Masks" / "Anomaly" / "Thumbs.db").write_bytes(b"a viewer's cache")
    report = run(root, tmp_path / "out")
    assert sum(sum(counts.values()) for counts in report.instances.values()) == N_INSTANCES


def test_split_from_layout_uses_the_validation_folder(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    report = run(root, tmp_path / "out", split_from_layout=True)
    splits = load_splits(tmp_path / "out" / "splits.json")
    assert splits.val == [f"{CATEGORY}/validation/good/002"]
    # nothing was drawn: the file recorded the default seed, ratios and background ratio as if applied
    written = json.loads((tmp_path / "out" / "splits.json").read_text())
    assert set(written) == {"version", "train", "val", "test"} and not splits.drawn
    assert splits.train == [f"{CATEGORY}/train/good/000", f"{CATEGORY}/train/good/001"]
    assert report.images == {"train": 2, "val": 1, "test": N_DEFECT + 1}
    assert not any("test_private" in key for split in ("train", "val", "test") for key in splits[split])


def test_split_from_layout_on_a_visa_split_file_without_the_object_says_so(tmp_path):
    # the error said 'it has no split folders or split file' beside split_csv/1cls.csv: the file is
    # there, it lists no row of this object
    root = make_layout_tree(tmp_path, "visa")
    split_csv = root / "split_csv" / "1cls.csv"
    split_csv.write_text(split_csv.read_text().splitlines()[0] + "\n")
    with pytest.raises(
        UserError, match=r"names no split for .*\(it has no split folders, and no split file lists"
    ):
        run(root, tmp_path / "out", split_from_layout=True)


def test_split_from_layout_needs_a_layout_that_has_one(tmp_path):
    root = make_layout_tree(tmp_path, "folder")
    with pytest.raises(
        UserError, match="--split-from-layout: the Folder layout names no split for .*000.png"
    ):
        run(root, tmp_path / "out", split_from_layout=True)
    assert not (tmp_path / "out").exists()


def test_visa_images_the_split_file_leaves_out_are_counted_not_dropped(tmp_path):
    # an anomaly photo (with its mask) added beside the others but not to 1cls.csv vanished unsaid
    root = make_layout_tree(tmp_path, "visa")
    data = root / CATEGORY / "Data"
    shutil.copy(data / "Images" / "Anomaly" / "000.JPG", data / "Images" / "Anomaly" / "900.JPG")
    shutil.copy(data / "Masks" / "Anomaly" / "000.png", data / "Masks" / "Anomaly" / "900.png")
    [extra] = [r for r in scan(root, include_unlabelled=True) if r.unlabelled]
    assert extra.image == data / "Images" / "Anomaly" / "900.JPG" and not extra.is_good
    report = run(root, tmp_path / "out")
    assert report.unlabelled == 1 and sum(report.images.values()) == N_DEFECT + EXPECTED["visa"].good
    (data / "Images" / "Anomaly" / "notes.txt").write_text("not a photo\n")  # no image: not counted
    (tmp_path / "link").symlink_to(root)  # listed paths compare resolved: none of them is unlisted
    for where in (root, tmp_path / "link"):
        assert [r.image.name for r in scan(where, include_unlabelled=True) if r.unlabelled] == ["900.JPG"]
    csv = root / "split_csv" / "1cls.csv"  # an object without good photos: its Normal folder is absent
    csv.write_text("".join(line for line in csv.read_text().splitlines(True) if ",normal," not in line))
    shutil.rmtree(data / "Images" / "Normal")
    assert [r.image.name for r in scan(root, include_unlabelled=True) if r.unlabelled] == ["900.JPG"]


def test_ad2_private_images_are_unlabelled_never_good(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    assert not any(r.unlabelled for r in scan(root))
    private = [r for r in scan(root, include_unlabelled=True) if r.unlabelled]
    assert len(private) == 3 and not any(r.is_good for r in private)
    assert {r.subset for r in private} == {"test_private", "test_private_mixed"}
    assert "unlabelled images not converted (no ground truth or split file entry): 3" in format_report(
        run(root, tmp_path / "out")
    )


def test_output_names_do_not_collide_across_test_folders(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    write(root / CATEGORY / "test_private_mixed" / "bad" / "000.png", np.zeros((*SIZE, 3), np.uint8))
    # test_public/bad/000 and test_private_mixed/bad/000: one stem, two subsets, two output names
    records = scan(root, include_unlabelled=True)
    stems = [r.output_stem for r in records]
    assert len(stems) == len(set(stems))


def test_kolektor_empty_masks_are_good_images(tmp_path):
    root = make_layout_tree(tmp_path, "kolektor_sdd2")
    records = scan_category(root, CATEGORY)
    assert sum(r.is_good for r in records) == 3 and not any(r.empty_mask_is_good for r in records)
    lazy = scan_category(root, CATEGORY, resolve_empty_masks=False)
    assert all(r.defect == "defect" and r.empty_mask_is_good for r in lazy)
    report = run(root, tmp_path / "out")
    splits = load_splits(tmp_path / "out" / "splits.json")
    assert f"{CATEGORY}/train/good/100" in splits.split_of() and report.names == ["defect"]


def test_kolektor_sdd_v1_reads_the_kos_folders_labels(tmp_path):
    # anomalib's Kolektor: kos01/Part0.jpg with Part0_label.bmp; it was refused as no known layout
    root = make_layout_tree(tmp_path, "kolektor_sdd")
    assert detect_layout(root / CATEGORY).name == "kolektor_sdd"
    records = scan_category(root, CATEGORY)
    assert sorted(r.key for r in records if r.is_good) == [
        f"{CATEGORY}/kos01/good/Part0",
        f"{CATEGORY}/kos01/good/Part1",
        f"{CATEGORY}/kos02/good/Part2",
    ]
    assert all(r.mask.name == f"{r.image.stem}_label.bmp" for r in records if not r.is_good)
    report = run(root, tmp_path / "out")
    assert report.names == ["defect"] and report.layouts == {CATEGORY: "KolektorSDD"}
    assert sum(sum(c.values()) for c in report.instances.values()) == N_INSTANCES
    with pytest.raises(UserError, match="the KolektorSDD layout names no split for .*Part0.jpg"):
        run(root, tmp_path / "out2", split_from_layout=True)


def test_kolektor_sdd_v1_data_set_folder_is_the_category(tmp_path):
    root = make_layout_tree(tmp_path, "kolektor_sdd") / CATEGORY
    assert list_categories(root) == [CATEGORY]
    assert list_categories(root / "kos01") == []  # one commutator's folder is no category of its own


def test_folder_layout_from_images_masks_and_good(tmp_path):
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    for mask in (root / "masks").iterdir():  # <stem>_mask.png pairs as well as <stem>.png
        mask.rename(mask.with_name(f"{mask.stem}_mask.png"))
    report = run(root, tmp_path / "out", images=root / "images", masks=root / "masks", good=root / "good")
    assert sum(report.images.values()) == N_DEFECT + 2 and report.layouts == {CATEGORY: "Folder"}
    folders = {"images": root / "images", "masks": root / "masks", "good": root / "good"}
    report = run(root, tmp_path / "no_good", **folders, exclude_defects=("good",))
    assert sum(report.images.values()) == N_DEFECT
    # the folder layout knows "defect" and "good" alone: any other name left everything in, silently
    with pytest.raises(UserError, match="--exclude-defect scratch: no such defect type under .*images"):
        run(root, tmp_path / "typo", **folders, exclude_defects=("scratch",))
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("layout", ["folder", "mvtec_ad"])
def test_a_mask_put_among_the_defect_photos_is_named_as_one(tmp_path, layout):
    # 000_mask.png copied beside 000.png: the folder layout named masks/000_mask.png, which is there, as
    # the mask it expected
    root = make_layout_tree(tmp_path, layout)
    photos, masks = ("images", "masks") if layout == "folder" else ("test/crack", "ground_truth/crack")
    mask = write(root / CATEGORY / photos / "000_mask.png", DEFECT_MASKS[0])
    if layout == "folder":
        (root / CATEGORY / masks / "000.png").rename(root / CATEGORY / masks / "000_mask.png")
    message = (
        f"defect image has no mask: {mask}, whose name ends in _mask: a mask put among the images? "
        f"(masks go in {root / CATEGORY / masks})"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        scan(root)


def test_folder_layout_notes_photos_of_a_suffix_not_read(tmp_path):
    # a phone's .heic photos among a user's own were left out of the data set without a word
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    (root / "images" / "phone.heic").write_bytes(b"x")
    (root / "good" / "phone_ok.HEIC").write_bytes(b"x")
    report = run(root, tmp_path / "out", images=root / "images", masks=root / "masks", good=root / "good")
    assert [note.split(" left out, ")[0] for note in report.notes] == [
        f"1 file in {root / 'good'}",
        f"1 file in {root / 'images'}",
    ]
    assert report.notes[1].endswith("): phone.heic")


def test_folder_layout_notes_subfolders_of_photos_not_read(tmp_path):
    # --images photos/bad holding batch2/: its photos left the data set without a word
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    write(root / "images" / "batch2" / "900.png", noise(9))
    write(root / "good" / "batch2" / "901.png", noise(9))
    report = run(root, tmp_path / "out", images=root / "images", masks=root / "masks", good=root / "good")
    assert report.notes == [
        f"folder not read: {root / 'good' / 'batch2'} (1 image file left out)",
        f"folder not read: {root / 'images' / 'batch2'} (1 image file left out)",
    ]


def _loco_without_mask_folder(root: Path) -> None:
    shutil.rmtree(root / CATEGORY / "ground_truth" / "structural_anomalies" / "001")


def _visa_row_to_missing_file(root: Path) -> None:
    (root / CATEGORY / "Data" / "Images" / "Anomaly" / "001.JPG").unlink()


def _visa_row_listed_twice(root: Path) -> None:
    split_file = root / "split_csv" / "1cls.csv"
    rows = split_file.read_text().splitlines()
    split_file.write_text("\n".join([*rows, rows[4]]) + "\n")


def _visa_mask_without_image(root: Path) -> None:
    # the photo and its split file row removed, its mask left: read without a word, though the
    # same tree without split_csv/ (and every other layout) refused it
    split_file = root / "split_csv" / "1cls.csv"
    rows = split_file.read_text().splitlines()
    split_file.write_text("\n".join(row for row in rows if "Anomaly/002.JPG" not in row) + "\n")
    (root / CATEGORY / "Data" / "Images" / "Anomaly" / "002.JPG").unlink()


def _3d_gt_of_another_size(root: Path) -> None:
    write(root / CATEGORY / "test" / "crack" / "gt" / "002.png", np.zeros((16, 32), np.uint8))


def _ad2_mask_without_image(root: Path) -> None:
    (root / CATEGORY / "test_public" / "bad" / "002.png").unlink()


def _btad_image_without_mask(root: Path) -> None:
    (root / CATEGORY / "ground_truth" / "ko" / "000.png").unlink()


def _kolektor_image_without_gt(root: Path) -> None:
    (root / CATEGORY / "train" / "0_GT.png").unlink()


def _kolektor_sdd_image_without_label(root: Path) -> None:
    (root / CATEGORY / "kos02" / "Part3_label.bmp").unlink()


def _loco_bad_config(root: Path) -> None:
    write_json(root / CATEGORY / "defects_config.json", [{"defect_name": "x", "pixel_value": "high"}])


def _loco_name_not_utf8(root: Path) -> None:
    # json.dumps writes the lone surrogate as "\udcff"; it went on into data.yaml and the COCO files
    write_json(root / CATEGORY / "defects_config.json", [{"defect_name": "x\udcff", "pixel_value": 255}])


@pytest.mark.parametrize(
    ("layout", "damage", "message"),
    [
        (
            "mvtec_loco",
            _loco_without_mask_folder,
            "defect image has no mask folder: .*structural_anomalies/001.png",
        ),
        (
            "visa",
            _visa_row_to_missing_file,
            "VisA split file .*1cls.csv line 6: image .*Anomaly/001.JPG does not exist",
        ),
        ("visa", _visa_row_listed_twice, r"1cls.csv lists .*Anomaly/000.JPG twice \(lines 5 and \d+\)"),
        (
            "visa",
            _visa_mask_without_image,
            r"mask has no image: .*Masks/Anomaly/002.png \(expected .*Images/Anomaly/002.<ext>\)",
        ),
        (
            "mvtec_3d",
            _3d_gt_of_another_size,
            "image/mask size mismatch: .*rgb/002.png is 32x32, .*gt/002.png is 32x16",
        ),
        ("mvtec_ad2", _ad2_mask_without_image, "mask has no image: .*ground_truth/bad/002_mask.png"),
        (
            "btad",
            _btad_image_without_mask,
            r"defect image has no mask: .*ko/000.bmp \(expected .*ground_truth/ko/000.png\)",
        ),
        ("kolektor_sdd2", _kolektor_image_without_gt, "defect image has no mask: .*train/0.png .*0_GT.png"),
        (
            "kolektor_sdd",
            _kolektor_sdd_image_without_label,
            r"defect image has no mask: .*kos02/Part3.jpg \(expected .*kos02/Part3_label.bmp\)",
        ),
        (
            "mvtec_loco",
            _loco_bad_config,
            "defects_config.json: entry 0 needs a defect_name and a pixel_value",
        ),
        (
            "mvtec_loco",
            _loco_name_not_utf8,
            r"defects_config.json: it holds 'x\\udcff', which is not UTF-8 text",
        ),
    ],
)
def test_bad_input_of_every_layout_is_one_line(tmp_path, layout, damage, message):
    root = make_layout_tree(tmp_path, layout)
    damage(root)
    with pytest.raises(UserError, match=message) as error:
        run(root, tmp_path / "out")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_layout_options_that_contradict_are_refused(tmp_path, link_loop):
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    with pytest.raises(UserError, match="--images reads the folder layout, not --layout btad"):
        run(root, tmp_path / "out", images=root / "images", layout="btad")
    with pytest.raises(UserError, match="--masks and --good go with --images"):
        run(root, tmp_path / "out", masks=root / "masks")
    with pytest.raises(UserError, match="--masks and --good go with --images"):
        run(root, tmp_path / "out", good=root / "good")
    with pytest.raises(UserError, match="--split-from-layout and --splits both"):
        run(root, tmp_path / "out", split_from_layout=True, splits_file=tmp_path / "splits.json")
    with pytest.raises(UserError, match="--images folder does not exist"):
        run(root, tmp_path / "out", images=tmp_path / "nowhere", masks=root / "masks")
    photo = next((root / "images").iterdir())  # was: "--images folder does not exist", of a file that does
    with pytest.raises(UserError, match=f"--images {photo} is a file, not a folder of images"):
        run(root, tmp_path / "out", images=photo, masks=root / "masks")
    for option in ("images", "masks", "good"):  # a RuntimeError traceback (Path.resolve on 3.11)
        given = {"images": root / "images", "masks": root / "masks", option: link_loop / "x"}
        with pytest.raises(UserError) as error:
            run(root, tmp_path / "out", **given)
        assert_link_loop_line(f"error: {error.value}\n", f"--{option} {link_loop / 'x'}: ", link_loop)
        with pytest.raises(UserError) as error:  # the folder layout's own scan, called without convert()
            scan_folders(**given, category=CATEGORY)
        assert_link_loop_line(f"error: {error.value}\n", f"--{option} {link_loop / 'x'}: ", link_loop)


def test_folder_layout_refuses_masks_that_are_or_nest_the_photos(tmp_path):
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    images, masks, good = root / "images", root / "masks", root / "good"
    # same folder: every photo was read as its own mask, a whole-image defect each
    with pytest.raises(UserError, match="--masks .*images is the --images folder: each photo would be read"):
        run(root, tmp_path / "out", images=images, masks=images)
    with pytest.raises(UserError, match="--masks .*good is the --good folder"):
        run(root, tmp_path / "out", images=images, masks=good, good=good)
    (images / "sub").mkdir()
    with pytest.raises(UserError, match=r"nested \(--masks inside --images\)"):
        run(root, tmp_path / "out", images=images, masks=images / "sub")
    with pytest.raises(UserError, match=r"nested \(--images inside --masks\)"):
        run(root, tmp_path / "out", images=masks / "x", masks=masks)
    assert not (tmp_path / "out").exists()


def test_folder_layout_refuses_good_photos_that_are_the_defect_photos(tmp_path):
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    images, masks = root / "images", root / "masks"
    # each defect photo was also written as a good background (an empty label), split apart from its labels
    with pytest.raises(UserError, match="--good .*images is the --images folder: each defect photo"):
        run(root, tmp_path / "out", images=images, masks=masks, good=images)
    (tmp_path / "photos").symlink_to(images)
    with pytest.raises(UserError, match="is the --images folder"):
        run(root, tmp_path / "out", images=images, masks=masks, good=tmp_path / "photos")
    assert not (tmp_path / "out").exists()


def test_folder_layout_compares_its_folders_resolved(tmp_path, monkeypatch):
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    (tmp_path / "photos").symlink_to(root / "images")
    monkeypatch.chdir(root)
    with pytest.raises(UserError, match="is the --images folder"):
        run(root, tmp_path / "out", images=tmp_path / "photos", masks=Path("images"))
    with pytest.raises(UserError, match=r"nested \(--images inside --masks\)"):
        run(root, tmp_path / "out", images=Path("masks/../masks/x"), masks=root / "masks")
    assert not (tmp_path / "out").exists()


def test_folder_layout_writes_beside_its_folders_not_in_them(tmp_path):
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    folders = {"images": root / "images", "masks": root / "masks", "good": root / "good"}
    # their parent is no input: an --out beside the photo folders was refused as "inside the input tree"
    report = run(root, root / "ds", **folders)
    assert sum(report.images.values()) == N_DEFECT + 2
    for name in ("images", "masks", "good"):
        with pytest.raises(UserError, match=f"inside the input tree .*{name}"):
            run(root, root / name / "ds", **folders)
    with pytest.raises(UserError, match="contains the input tree"):
        run(root, root, **folders, overwrite=True)


@pytest.mark.parametrize("name", ["masks", "good"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_folder_layout_refuses_an_out_that_is_one_of_its_folders_as_input(tmp_path, name, overwrite):
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    folders = {"images": root / "images", "masks": root / "masks", "good": root / "good"}
    # it said 'output folder exists (pass --overwrite to replace it)', and with --overwrite 'move those
    # out' of the user's own masks: checked against --images alone before the folder itself
    with pytest.raises(UserError, match=f"^output folder .*{name} is inside the input tree .*{name}; choose"):
        run(root, root / name, **folders, overwrite=overwrite)


def test_mixed_layouts_under_one_root_each_read_their_own_way(tmp_path):
    (tmp_path / "data").mkdir()
    for layout, name in (("mvtec_ad", "alpha"), ("btad", "beta")):
        shutil.move(make_layout_tree(tmp_path / "src", layout) / CATEGORY, tmp_path / "data" / name)
    report = run(tmp_path / "data", tmp_path / "out")
    assert report.layouts == {"alpha": "MVTec AD", "beta": "BTAD"}
    assert sum(report.images.values()) == 2 * N_DEFECT + EXPECTED["mvtec_ad"].good + EXPECTED["btad"].good


def test_command_line_layout_flags(tmp_path, capsys):
    from converters.mvtec2yolo import main as mvtec2yolo

    folder = make_layout_tree(tmp_path, "folder") / CATEGORY
    argv = ["--images", folder / "images", "--masks", folder / "masks", "--good", folder / "good"]
    assert mvtec2yolo([str(a) for a in [*argv, "--out", tmp_path / "a", "--no-progress"]]) == 0
    assert f"layout                      {CATEGORY}: Folder" in capsys.readouterr().out
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    argv = [
        "--root",
        root,
        "--out",
        tmp_path / "b",
        "--layout",
        "mvtec_ad2",
        "--split-from-layout",
        "--no-progress",
    ]
    assert mvtec2yolo([str(a) for a in argv]) == 0
    assert load_splits(tmp_path / "b" / "splits.json").val == [f"{CATEGORY}/validation/good/002"]
    assert mvtec2yolo(["--out", str(tmp_path / "c")]) == 2
    assert "error: give --root (a data set folder) or --images" in capsys.readouterr().err


def test_mvtec_ad_category_with_only_train_matches(tmp_path):
    (tmp_path / "bottle" / "train" / "good").mkdir(parents=True)
    assert get_layout("mvtec_ad").matches(tmp_path / "bottle")
    assert not get_layout("mvtec_ad").matches(tmp_path)


def test_visa_split_file_is_found_beside_or_inside_the_object_folder(tmp_path):
    (tmp_path / "split_csv").mkdir()
    (tmp_path / "candle" / "split_csv").mkdir(parents=True)
    for name in ("2cls_highshot.csv", "2cls_fewshot.csv"):
        (tmp_path / "split_csv" / name).write_text("object,split,label,image,mask\n")
    assert split_file(tmp_path / "candle") == tmp_path / "split_csv" / "2cls_fewshot.csv"
    (tmp_path / "candle" / "split_csv" / "1cls.csv").write_text("object,split,label,image,mask\n")
    # a 1cls.csv in the object folder comes before another protocol's 2cls file beside it
    assert split_file(tmp_path / "candle") == tmp_path / "candle" / "split_csv" / "1cls.csv"
    (tmp_path / "candle" / "split_csv" / "1cls.csv").unlink()
    (tmp_path / "split_csv" / "2cls_fewshot.csv").rename(tmp_path / "candle" / "split_csv" / "1cls.csv")
    (tmp_path / "split_csv" / "2cls_highshot.csv").unlink()
    assert split_file(tmp_path / "candle") == tmp_path / "candle" / "split_csv" / "1cls.csv"


def test_ad2_ground_truth_inside_test_public_is_no_defect_type(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    write(root / CATEGORY / "test_public" / "ground_truth" / "overview.png", noise(7))
    assert {r.defect for r in scan(root)} == {"good", "bad"}
    with pytest.raises(UserError, match="--exclude-defect ground_truth: no such defect .*excludable: bad"):
        scan(root, exclude_defects=("ground_truth",))


@pytest.mark.parametrize("name", ["ok", "good"])
def test_btad_good_images_are_excluded_by_their_folder_name_or_as_good(tmp_path, name):
    root = make_layout_tree(tmp_path, "btad")
    records = scan(root, exclude_defects=(name,))
    assert len(records) == N_DEFECT and not any(r.is_good for r in records)


@pytest.mark.parametrize(
    ("layout", "folder", "message"),
    [
        (
            "mvtec_ad",
            "train/crack",
            r"defect folder in train/: .*train/crack \(the layout keeps only train/good\)",
        ),
        ("mvtec_ad2", "validation/bad", r"defect folder in validation/: .*validation/bad \(the layout keeps"),
        ("btad", "train/ko", r"defect folder in train/: .*train/ko \(the layout keeps only train/ok\)"),
        (
            "mvtec_3d",
            "validation/crack/rgb",
            r"defect folder in validation/: .*validation/crack \(MVTec 3D-AD",
        ),
        (
            "mvtec_loco",
            "train/logical_anomalies",
            r"defect folder in train/: .*train/logical_anomalies \(MVTec LOCO",
        ),
    ],
)
def test_a_defect_folder_where_only_good_images_belong_is_refused(tmp_path, layout, folder, message):
    root = make_layout_tree(tmp_path, layout)
    write(root / CATEGORY / folder / "900.png", noise(9))
    with pytest.raises(UserError, match=message):
        scan(root)


@pytest.mark.parametrize(
    ("clue", "layouts"),
    [
        ("test/ko", ["btad"]),
        ("test/crack/rgb", ["mvtec_3d"]),
        ("validation/good/rgb", ["mvtec_3d"]),
        ("ground_truth/logical_anomalies/000", ["mvtec_loco"]),
        ("images", []),  # the folder layout needs masks/ beside images/
    ],
)
def test_each_clue_of_a_layout_is_enough_to_detect_it(tmp_path, clue, layouts):
    (tmp_path / CATEGORY / clue).mkdir(parents=True)
    assert [layout.name for layout in matching_layouts(tmp_path / CATEGORY)] == layouts


def test_a_folder_beside_mvtec_ad_masks_does_not_make_the_category_loco(tmp_path):
    # ground_truth/crack/old/ (a backup) made it read as LOCO, which asked for ground_truth/crack/000/000.png
    root = make_layout_tree(tmp_path, "mvtec_ad")
    old = root / CATEGORY / "ground_truth" / "crack" / "old"
    write(old / "000_mask.png", DEFECT_MASKS[0])
    assert detect_layout(root / CATEGORY).name == "mvtec_ad"
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + EXPECTED["mvtec_ad"].good
    assert report.notes == [f"folder not read: {old} (1 image file left out)"]


def test_a_loco_mask_file_beside_the_region_folders_is_named_in_a_note(tmp_path):
    # ground_truth/logical_anomalies/000.png (MVTec AD's way) beside 000/ was left out without a word
    root = make_layout_tree(tmp_path, "mvtec_loco")
    truth = root / CATEGORY / "ground_truth" / "logical_anomalies"
    write(truth / "000.png", DEFECT_MASKS[0])
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + EXPECTED["mvtec_loco"].good
    assert [note for note in report.notes if "mask file" in note] == [
        f"1 mask file directly in {truth} left out, e.g. 000.png: MVTec LOCO reads the region files of "
        f"each image from {truth}/<stem>/"
    ]


def test_a_loco_image_with_a_flat_mask_file_is_refused_naming_it(tmp_path):
    # ground_truth/logical_anomalies/002_mask.png (MVTec AD's way) instead of 002/000.png
    root = make_layout_tree(tmp_path, "mvtec_loco")
    truth = root / CATEGORY / "ground_truth" / "logical_anomalies"
    shutil.rmtree(truth / "002")
    write(truth / "002_mask.png", DEFECT_MASKS[2])
    message = r"no mask folder: .*002.png \(expected .*002/000.png; found .*002_mask.png: LOCO reads one file"
    with pytest.raises(UserError, match=message):
        scan(root)


def test_a_loco_defects_config_alone_marks_the_layout(tmp_path):
    (tmp_path / CATEGORY).mkdir()
    write_json(tmp_path / CATEGORY / "defects_config.json", [])
    assert [layout.name for layout in matching_layouts(tmp_path / CATEGORY)] == ["mvtec_loco"]


@pytest.mark.parametrize(
    ("layout", "folder", "unread", "reads"),
    [
        # validation/ added to an MVTec AD tree: its photos left the data set without a word
        (
            "mvtec_ad",
            "validation/good",
            "validation",
            "; the MVTec AD layout reads train/, test/, ground_truth/",
        ),
        (
            "mvtec_ad2",
            "test/good",
            "test",
            "; the MVTec AD 2 layout reads train/, validation/, test_public/, ",
        ),
        ("btad", "validation/ok", "validation", "; the BTAD layout reads train/, test/, ground_truth/ here"),
        (
            "mvtec_loco",
            "extra/good",
            "extra",
            "; the MVTec LOCO AD layout reads train/, validation/, test/, ",
        ),
        ("kolektor_sdd2", "val", "val", "; the Kolektor SDD2 layout reads train/, test/ here"),
        ("visa", "Images/Normal", "Images", "; the VisA layout reads Data/ here"),
        (
            "mvtec_3d",
            "test/crack/depth",
            "test/crack/depth",
            "; the MVTec 3D-AD layout reads rgb/, gt/, xyz/ ",
        ),
        ("mvtec_ad", "test/crack/more", "test/crack/more", ""),  # inside a defect folder
        ("kolektor_sdd2", "train/more", "train/more", ""),
        ("kolektor_sdd", "kos02/more", "kos02/more", ""),
        ("kolektor_sdd", "extra", "extra", "; the KolektorSDD layout reads kos[0-9][0-9]/ here"),
    ],
)
def test_a_folder_of_images_the_layout_does_not_read_is_named_in_a_note(
    tmp_path, layout, folder, unread, reads
):
    root = make_layout_tree(tmp_path, layout)
    write(root / CATEGORY / folder / "900.png", noise(9))
    write(root / CATEGORY / folder / ".hidden" / "901.png", noise(9))  # hidden: not counted
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + EXPECTED[layout].good
    notes = [note for note in report.notes if note.startswith("folder not read")]
    assert len(notes) == 1
    assert notes[0].startswith(f"folder not read: {root / CATEGORY / unread} (1 image file left out{reads}")


def _3d_gt_removed(root: Path) -> None:
    (root / CATEGORY / "test" / "crack" / "gt" / "001.png").unlink()


def _loco_mask_folder_removed(root: Path) -> None:
    shutil.rmtree(root / CATEGORY / "ground_truth" / "structural_anomalies" / "001")


def _folder_mask_removed(root: Path) -> None:
    (root / CATEGORY / "masks" / "001.png").unlink()


def _visa_mask_column_emptied(root: Path) -> None:
    split_csv = root / "split_csv" / "1cls.csv"
    rows = split_csv.read_text().splitlines()
    rows[5] = rows[5].rsplit(",", 1)[0] + ","  # 001.JPG: no mask yet
    split_csv.write_text("\n".join(rows) + "\n")
    (root / CATEGORY / "Data" / "Masks" / "Anomaly" / "001.png").unlink()


def _visa_mask_file_removed(root: Path) -> None:  # no split file: the folders are read
    shutil.rmtree(root / "split_csv")
    (root / CATEGORY / "Data" / "Masks" / "Anomaly" / "001.png").unlink()


@pytest.mark.parametrize(
    ("layout", "damage", "error"),
    [
        ("mvtec_3d", _3d_gt_removed, r"defect image has no mask: .*crack/rgb/001.png"),
        (
            "visa",
            _visa_mask_column_emptied,
            r"anomaly image .*Anomaly/001.JPG has no mask file \(mask column",
        ),
        ("visa", _visa_mask_file_removed, r"defect image has no mask: .*Anomaly/001.JPG"),
        ("mvtec_loco", _loco_mask_folder_removed, r"defect image has no mask folder: .*anomalies/001.png"),
        ("folder", _folder_mask_removed, r"defect image has no mask: .*images/001.png"),
    ],
    ids=["3d-ad", "visa-split-file", "visa-folders", "loco", "folder"],
)
def test_a_defect_image_without_a_mask_is_kept_only_when_asked_in_other_layouts(
    tmp_path, layout, damage, error
):
    # anomaly.train reads with allow_missing_masks (it fits on good photos): MVTec AD kept such a photo, these
    # layouts stopped at it
    root = make_layout_tree(tmp_path, layout)
    damage(root)
    with pytest.raises(UserError, match=error):
        scan_category(root, CATEGORY)
    records = scan_category(root, CATEGORY, allow_missing_masks=True)
    missing = [r for r in records if r.mask_missing]
    assert [r.image.stem for r in missing] == ["001"]
    assert missing[0].mask_files == () and not missing[0].is_good
    assert sum(r.mask is not None for r in records) == N_DEFECT - 1


def test_a_visa_mask_named_but_not_there_is_refused_even_when_masks_are_optional(tmp_path):
    root = make_layout_tree(tmp_path, "visa")
    (
        root / CATEGORY / "Data" / "Masks" / "Anomaly" / "001.png"
    ).unlink()  # a wrong path, not an unlabelled photo
    with pytest.raises(UserError, match=r"anomaly image .*Anomaly/001.JPG has no mask file \(.*001.png\)"):
        scan_category(root, CATEGORY, allow_missing_masks=True)


def test_kolektor_sdd_reads_only_its_kos_folders(tmp_path):
    # a copy of kos02 (macOS names it 'kos02 copy') was read as one more commutator: its photos twice
    root = make_layout_tree(tmp_path, "kolektor_sdd")
    shutil.copytree(root / CATEGORY / "kos02", root / CATEGORY / "kos02 copy")
    shutil.copytree(root / CATEGORY / "kos03", root / CATEGORY / "KOS03")  # not the data set's name
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + EXPECTED["kolektor_sdd"].good
    reads = "; the KolektorSDD layout reads kos[0-9][0-9]/ here)"
    assert report.notes == [
        f"folder not read: {root / CATEGORY / 'KOS03'} (2 image files left out{reads}",
        f"folder not read: {root / CATEGORY / 'kos02 copy'} (6 image files left out{reads}",
    ]


@pytest.mark.parametrize(
    ("layout", "folder", "reads"),
    [
        # good photos put straight into train/, not train/good/: left out without a word
        ("mvtec_ad", "train", "train/<defect>/ folders, train/good/ for good images"),
        ("mvtec_ad", "ground_truth", "ground_truth/<defect>/ folders of masks"),
        ("mvtec_ad2", "validation", "validation/<defect>/ folders, validation/good/ for good images"),
        ("btad", "test", "test/<defect>/ folders, test/ok/ for good images"),
        ("mvtec_3d", "train/good", "rgb/ and gt/"),
        ("mvtec_3d", "validation", "validation/<defect>/rgb/ folders"),
        ("mvtec_loco", "validation", "validation/<type>/ folders, validation/good/ for good images"),
        ("mvtec_loco", "ground_truth", "ground_truth/<type>/<stem>/ folders of region files"),
        ("visa", "Data/Images", "Data/Images/{Normal,Anomaly}/"),
        ("kolektor_sdd2", "", "its train/, test/"),
        ("kolektor_sdd", "", "its kos[0-9][0-9]/"),
    ],
)
def test_image_files_directly_in_a_folder_read_by_its_subfolders_are_named_in_a_note(
    tmp_path, layout, folder, reads
):
    root = make_layout_tree(tmp_path, layout)
    write(root / CATEGORY / folder / "900.png", noise(9))
    write(root / CATEGORY / folder / "901.png", noise(9))
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + EXPECTED[layout].good
    assert [note for note in report.notes if "directly in" in note] == [
        f"2 image files directly in {root / CATEGORY / folder} left out, e.g. 900.png "
        f"(the layout reads {reads})"
    ]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ((), "error: mask has no image: "),  # the scan fails: test/crack/ is not there
        (("--strict", "--split", "1", "0", "0"), "error: split 'val' has no images"),  # a later failure
    ],
)
def test_layout_notes_are_said_before_the_error_of_a_failed_conversion(tmp_path, capsys, options, error):
    # defect photos put into validation/crack/ (not test/crack/): the note naming the folder not read
    # explains the failure, and was dropped with it
    root = make_layout_tree(tmp_path, "mvtec_ad")
    write(root / CATEGORY / "validation" / "good" / "900.png", noise(9))
    if not options:
        shutil.move(root / CATEGORY / "test" / "crack", root / CATEGORY / "validation" / "crack")
    count = 1 if options else 1 + N_DEFECT
    out = tmp_path / "out"
    assert mvtec2yolo(["--root", str(root), "--out", str(out), "--no-progress", *options]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (
        f"note: folder not read: {root / CATEGORY / 'validation'} ({count} image file{'s' * (count > 1)} "
        "left out; the MVTec AD layout reads train/, test/, ground_truth/ here)"
    )
    assert len(lines) == 2 and lines[1].startswith(error)
    assert not out.exists()


def test_a_category_with_no_image_read_says_what_was_left_out(tmp_path, capsys):
    # Kolektor SDD2 with _GT.bmp masks is no Kolektor tree to detection: read as MVTec AD, whose
    # train/ and test/ hold folders, it was "category 'widget' has no images" beside 16 photos and masks
    root = make_layout_tree(tmp_path, "kolektor_sdd2")
    for mask in (root / CATEGORY).rglob("*_GT.png"):
        write(mask.with_suffix(".bmp"), cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE))
        mask.unlink()
    message = (
        r"category 'widget' has no images: .*widget \(read as MVTec AD\); 8 image files directly in "
        r".*widget/train left out, e.g. 0.png \(the layout reads train/<defect>/ folders"
    )
    with pytest.raises(UserError, match=message):
        scan(root)
    # the other note is said before the error, the one it quotes not twice
    assert capsys.readouterr().err.splitlines() == [
        f"note: 4 image files directly in {root / CATEGORY / 'test'} left out, e.g. 102.png "
        "(the layout reads test/<defect>/ folders, test/good/ for good images)"
    ]


def test_a_conversion_without_a_defect_image_says_what_was_left_out(tmp_path):
    # MVTec AD 2 without test_public/ reads as MVTec AD: validation/ and test_private*/ go unread
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    shutil.rmtree(root / CATEGORY / "test_public")
    message = (
        r"no defect image left to convert under .* \(2 good images; .*\); folder not read: "
        r".*widget/test_private \(2 image files left out; the MVTec AD layout reads train/, test/"
    )
    with pytest.raises(UserError, match=message):
        run(root, tmp_path / "out")


@pytest.mark.parametrize(
    ("layout", "image", "mask"),
    [
        ("mvtec_ad", "test/crack/000.png", "ground_truth/crack/000_mask.png"),
        ("kolektor_sdd2", "train/0.png", "train/0_GT.png"),
        ("mvtec_loco", "test/logical_anomalies/000.png", "ground_truth/logical_anomalies/000"),
        ("mvtec_3d", "test/crack/rgb/000.png", "test/crack/gt/000.png"),
        ("visa", "Data/Images/Anomaly/000.JPG", "Data/Masks/Anomaly/000.png"),
    ],
)
def test_a_photo_and_its_mask_named_in_two_unicode_forms_pair(tmp_path, layout, image, mask):
    # é000.png written by macOS (e + a combining accent, NFD) beside é000_mask.png written as one
    # character (NFC): "defect image has no mask", naming two paths that looked alike
    root = make_layout_tree(tmp_path, layout)
    for name, form in ((image, "NFD"), (mask, "NFC")):
        path = root / CATEGORY / name
        renamed = path.with_name(unicodedata.normalize(form, "é") + path.name)
        path.rename(renamed)
        if layout == "visa":  # its split file names both
            split_csv = root / "split_csv" / "1cls.csv"
            split_csv.write_text(split_csv.read_text().replace(name, str(Path(name).parent / renamed.name)))
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + EXPECTED[layout].good


@pytest.mark.parametrize("kind", ["images", "masks"])
def test_two_files_of_one_name_in_two_unicode_forms_are_told_so(tmp_path, kind):
    # é0.png written by macOS (e + a combining accent, NFD) beside é0.png written as one character (NFC):
    # 'two images share the stem' named one path twice, as far as anyone could see
    root = make_layout_tree(tmp_path, "mvtec_ad")
    folder = root / CATEGORY / ("test/crack" if kind == "images" else "ground_truth/crack")
    suffix = "" if kind == "images" else "_mask"
    first, second = (folder / unicodedata.normalize(form, f"é{suffix}.png") for form in ("NFC", "NFD"))
    (folder / f"000{suffix}.png").rename(first)
    (folder / f"001{suffix}.png").rename(second)
    with pytest.raises(UserError) as error:
        scan(root)
    what = "two images share the stem" if kind == "images" else "two masks for one stem"
    stems = sorted([first, second])  # as listed: NFC's 'é' (U+00E9) after NFD's 'e' and its accent
    assert str(error.value) == (
        f"{what} 'é': {stems[0]} and {stems[1]} (one name in two encodings of its accents, composed and "
        "decomposed as macOS writes them: keep one)"
    )


def test_btad_masks_of_ok_images_are_not_called_masks_without_a_folder(tmp_path):
    # ground_truth/ok/ beside test/ok/ was refused as "mask has no image ... (no folder test/ok)"
    root = make_layout_tree(tmp_path, "btad")
    write(root / CATEGORY / "ground_truth" / "ok" / "002.png", np.zeros(SIZE, np.uint8))
    assert len(scan(root)) == N_DEFECT + EXPECTED["btad"].good


@pytest.mark.parametrize(("layout", "good"), [("mvtec_ad", "ground_truth/good"), ("btad", "ground_truth/ok")])
def test_masks_of_good_images_are_named_in_a_note(tmp_path, layout, good):
    # ground_truth/good/002_mask.png, holding a defect, was passed over without a word
    root = make_layout_tree(tmp_path, layout)
    name = "002_mask.png" if layout == "mvtec_ad" else "002.png"
    write(root / CATEGORY / good / name, DEFECT_MASKS[0])
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + EXPECTED[layout].good
    assert report.notes == [
        f"1 mask of good images in {root / CATEGORY / good} not read: a good image has no defect"
    ]


@pytest.mark.parametrize(
    ("layout", "mask", "message"),
    [
        ("btad", "ground_truth/dent/000.png", r"mask has no image: .*dent/000.png \(no folder .*test/dent\)"),
        (
            "mvtec_ad2",
            "test_public/ground_truth/dent/000_mask.png",
            r"mask has no image: .*dent/000_mask.png",
        ),
        ("mvtec_loco", "ground_truth/dent/000/000.png", r"mask folder has no image: .*dent/000 \(no folder"),
        (
            "mvtec_loco",
            "ground_truth/logical_anomalies/900/000.png",
            r"mask folder has no image: .*anomalies/900",
        ),
    ],
)
def test_a_mask_without_its_image_is_refused_in_every_layout(tmp_path, layout, mask, message):
    root = make_layout_tree(tmp_path, layout)
    write(root / CATEGORY / mask, DEFECT_MASKS[0])
    with pytest.raises(UserError, match=message):
        scan(root)


@pytest.mark.parametrize(
    ("layout", "train", "val", "n_test"),
    [
        ("mvtec_3d", ["train/good/000", "train/good/001"], ["validation/good/002"], 1 + N_DEFECT),
        ("mvtec_loco", ["train/good/000", "train/good/001"], ["validation/good/002"], 1 + N_DEFECT),
        ("kolektor_sdd2", ["train/defect/0", "train/defect/1", "train/good/100", "train/good/101"], [], 2),
    ],
)
def test_split_from_layout_follows_the_folders_of_each_layout(tmp_path, layout, train, val, n_test):
    root = make_layout_tree(tmp_path, layout)
    run(root, tmp_path / "out", split_from_layout=True)
    splits = load_splits(tmp_path / "out" / "splits.json")
    assert splits.train == [f"{CATEGORY}/{key}" for key in train]
    assert splits.val == [f"{CATEGORY}/{key}" for key in val]
    assert len(splits.test) == n_test


def test_ad2_private_images_are_found_at_any_depth_and_their_stems_are_unique(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    write(root / CATEGORY / "test_private" / "lot_1" / "900.png", noise(9))
    private = [r for r in scan(root, include_unlabelled=True) if r.unlabelled]
    assert sorted(r.image.stem for r in private) == ["000", "001", "002", "900"]
    write(root / CATEGORY / "test_private" / "lot_2" / "900.png", noise(10))
    with pytest.raises(
        UserError, match="two images share the stem '900': .*lot_1/900.png and .*lot_2/900.png"
    ):
        scan(root, include_unlabelled=True)


def test_ad2_private_stems_in_two_unicode_forms_are_one_stem(tmp_path):
    # composed and decomposed é (Linux and macOS tools) passed as two stems: one output name on macOS
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    write(root / CATEGORY / "test_private" / "lot_1" / "\u00e9.png", noise(9))
    write(root / CATEGORY / "test_private" / "lot_2" / "e\u0301.png", noise(10))
    with pytest.raises(UserError, match="two images share the stem"):
        scan(root, include_unlabelled=True)


def test_ad2_private_images_in_hidden_folders_are_not_read(tmp_path):
    # a hidden folder under test_private/ (Jupyter's checkpoints, a viewer's thumbnails) was searched
    # too: its copy of 000.png stopped the run as "two images share the stem '000'"
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    write(root / CATEGORY / "test_private" / ".ipynb_checkpoints" / "000.png", noise(9))
    private = [r for r in scan(root, include_unlabelled=True) if r.unlabelled]
    assert sorted(r.image.stem for r in private) == ["000", "001", "002"]
    assert not any(".ipynb_checkpoints" in r.image.parts for r in private)


def test_ad2_private_images_of_a_data_set_kept_under_a_hidden_folder_are_read(tmp_path):
    # only the folders below test_private/ are judged hidden: ~/.cache/mvtec_ad2 holds the data set
    root = make_layout_tree(tmp_path / ".cache", "mvtec_ad2")
    private = [r for r in scan(root, include_unlabelled=True) if r.unlabelled]
    assert sorted(r.image.stem for r in private) == ["000", "001", "002"]


def test_3d_class_ids_json_beside_the_categories_is_read(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_3d")
    write_json(root / "class_ids.json", {"255": "crack_3d"})
    assert {r.value_names for r in scan(root) if not r.is_good} == {((0, "good"), (255, "crack_3d"))}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "cannot read MVTec 3D-AD class map .*class_ids.json: not JSON"),
        ("[]", "MVTec 3D-AD class map .*class_ids.json must hold a JSON object, not list"),
        ("{}", "MVTec 3D-AD class map .*class_ids.json must be a JSON object like"),
        ('{"x": "crack"}', "MVTec 3D-AD class map .*class_ids.json: key 'x' is not an integer pixel value"),
        (
            '{"255": ""}',
            "MVTec 3D-AD class map .*class_ids.json: entry '255': '' needs a value >= 0 and a name",
        ),
        ('{"255": "a", "0255": "b"}', "class map .*class_ids.json: keys '255' and '0255' are the same"),
        ('{"0": "crack"}', "class map .*class_ids.json: value 0 is the background and can only be 'good'"),
    ],
)
def test_bad_3d_class_ids_json_is_named_as_itself(tmp_path, content, message):
    # the errors called it a 'mask-values file', an option the user never gave
    root = make_layout_tree(tmp_path, "mvtec_3d")
    (root / CATEGORY / "class_ids.json").write_text(content)
    with pytest.raises(UserError, match=message) as error:
        scan(root)
    assert "mask-values" not in str(error.value)


def test_3d_folder_without_rgb_is_refused_unless_excluded(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_3d")
    shutil.rmtree(root / CATEGORY / "test" / "crack" / "rgb")
    with pytest.raises(UserError, match=r"MVTec 3D-AD folder without rgb/: .*test/crack \(expected"):
        scan(root)
    assert len(scan(root, exclude_defects=("crack",))) == EXPECTED["mvtec_3d"].good


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "must be a JSON list of"),
        ({"defect_name": "x", "pixel_value": 255}, "must be a JSON list of"),
        (
            [{"defect_name": "x", "pixel_value": 0}],
            "entry 0 needs a defect_name and a pixel_value in 1..65535",
        ),
        ([{"defect_name": "x", "pixel_value": 65536}], "entry 0 needs a defect_name and a pixel_value"),
        ([{"defect_name": "x", "pixel_value": True}], "entry 0 needs a defect_name and a pixel_value"),
        ([{"defect_name": "x", "pixel_value": 255.0}], "entry 0 needs a defect_name and a pixel_value"),
        ([{"defect_name": " ", "pixel_value": 255}], "entry 0 needs a defect_name and a pixel_value"),
        (
            [{"defect_name": "x", "pixel_value": 255}, {"defect_name": "y", "pixel_value": 255}],
            "pixel_value 255 names both 'x' and 'y'",
        ),
        # its regions became background: every instance of the defect was dropped without a word
        ([{"defect_name": " good", "pixel_value": 255}], "entry 0: defect_name 'good' .*names a defect-free"),
    ],
)
def test_loco_defects_config_is_checked(tmp_path, entries, message):
    path = write_json(tmp_path / "defects_config.json", entries)
    with pytest.raises(UserError, match=message):
        defect_values(path)


def test_loco_defects_config_values_and_names(tmp_path):
    entries = [
        {"defect_name": " missing_part ", "pixel_value": 255},
        {"defect_name": "extra_part", "pixel_value": 65535},
        {"defect_name": "extra_part", "pixel_value": 65535},
    ]
    path = write_json(tmp_path / "defects_config.json", entries)
    assert defect_values(path) == ((0, "good"), (255, "missing_part"), (65535, "extra_part"))
    # one name with and without spaces, in either order (the second order was refused as two names)
    path = write_json(
        tmp_path / "two.json", [entries[1], {"defect_name": " extra_part", "pixel_value": 65535}]
    )
    assert defect_values(path) == ((0, "good"), (65535, "extra_part"))


def test_loco_mask_folders_empty_or_excluded(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_loco")
    truth = root / CATEGORY / "ground_truth"
    (truth / "unused_type").mkdir()
    assert len(scan(root)) == N_DEFECT + EXPECTED["mvtec_loco"].good
    shutil.rmtree(truth / "logical_anomalies" / "000")  # an excluded type is not read
    records = scan(root, exclude_defects=("logical_anomalies",))
    assert {r.defect for r in records} == {"good", "structural_anomalies"}
    (truth / "structural_anomalies" / "001" / "000.png").unlink()
    (truth / "structural_anomalies" / "001" / "001.png").unlink()
    with pytest.raises(UserError, match="mask folder holds no mask images: .*structural_anomalies/001"):
        scan(root, exclude_defects=("logical_anomalies",))


def _visa_rows(root: Path, *rows: str) -> None:
    (root / "split_csv" / "1cls.csv").write_text("\n".join(["object,split,label,image,mask", *rows]) + "\n")


def test_visa_split_file_cells_are_read_loosely(tmp_path):
    root = make_layout_tree(tmp_path, "visa")
    image, mask = f"{CATEGORY}/Data/Images/Anomaly/000.JPG", f"{CATEGORY}/Data/Masks/Anomaly/000.png"
    _visa_rows(
        root,
        f" {CATEGORY} ,Train,Normal, {CATEGORY}/Data/Images/Normal/0000.JPG ,",
        f"{CATEGORY},val,ANOMALY,{image}, {mask}",
    )
    records = scan(root)
    assert [(r.defect, r.layout_split) for r in records] == [("good", "train"), ("anomaly", "val")]
    assert records[1].mask == root / mask


def test_visa_split_file_listing_other_objects_only_falls_back_to_the_folders(tmp_path, capsys):
    # the fallback was unsaid: a file beside the objects that lists other objects only read as no file
    root = make_layout_tree(tmp_path, "visa")
    _visa_rows(root, "candle,train,normal,candle/Data/Images/Normal/0000.JPG,")
    records = scan(root)
    assert len(records) == N_DEFECT + EXPECTED["visa"].good
    assert all(r.layout_split is None for r in records)
    assert capsys.readouterr().err == (
        f"note: VisA split file {root / 'split_csv' / '1cls.csv'} lists no row of object '{CATEGORY}'; "
        "its Data/Images/{Normal,Anomaly} folders were read instead\n"
    )
    shutil.rmtree(root / "split_csv")  # no file at all: nothing to say
    assert len(scan(root)) == N_DEFECT + EXPECTED["visa"].good
    assert capsys.readouterr().err == ""


def test_visa_split_file_listing_other_objects_only_is_a_note_of_the_conversion_summary(tmp_path, capsys):
    # the note went straight to stderr, ahead of the progress bars, not among the summary's notes
    root = make_layout_tree(tmp_path, "visa")
    _visa_rows(root, "candle,train,normal,candle/Data/Images/Normal/0000.JPG,")
    report = run(root, tmp_path / "out")
    note = (
        f"VisA split file {root / 'split_csv' / '1cls.csv'} lists no row of object '{CATEGORY}'; "
        "its Data/Images/{Normal,Anomaly} folders were read instead"
    )
    assert report.notes == [note]
    assert f"\nnote: {note}\n" in format_report(report)
    assert "lists no row" not in capsys.readouterr().err


def test_visa_split_file_beside_the_objects_comes_first(tmp_path):
    root = make_layout_tree(tmp_path, "visa")
    (root / CATEGORY / "split_csv").mkdir()
    (root / CATEGORY / "split_csv" / "1cls.csv").write_text("object,split,label,image,mask\n")
    assert split_file(root / CATEGORY) == root / "split_csv" / "1cls.csv"
    (root / "split_csv" / "2cls_fewshot.csv").write_text("object,split,label,image,mask\n")
    assert split_file(root / CATEGORY) == root / "split_csv" / "1cls.csv"


def test_a_visa_split_file_written_on_windows_is_read(tmp_path):
    # widget\Data\Images\Normal\0000.JPG was "image ... does not exist"
    root = make_layout_tree(tmp_path, "visa")
    split_csv = root / "split_csv" / "1cls.csv"
    split_csv.write_text(split_csv.read_text().replace("/", "\\"))
    report = run(root, tmp_path / "out", split_from_layout=True)
    assert sum(report.images.values()) == N_DEFECT + EXPECTED["visa"].good
    assert report.images["train"] == 2  # the file's own split, read from its rows


def test_a_visa_normal_row_naming_a_mask_is_named_in_a_note(tmp_path):
    # the mask of a row labelled normal was passed over without a word
    root = make_layout_tree(tmp_path, "visa")
    split_csv = root / "split_csv" / "1cls.csv"
    split_csv.write_text(
        split_csv.read_text().replace("Normal/0001.JPG,", "Normal/0001.JPG,widget/Data/Masks/Anomaly/000.png")
    )
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + EXPECTED["visa"].good
    assert report.notes == [
        f"VisA split file {split_csv}: 1 normal row names a mask for object '{CATEGORY}', not read (a normal "
        "image has no defect), e.g. line 3"
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"object,split,label,image\n", "VisA split file .*1cls.csv lacks the columns mask"),
        # a spreadsheet's semicolons: the header named says why every column is "missing"
        (
            b"object;split;label;image;mask\n",
            r"lacks the columns object, .*, mask \(its header: object;split;label;image;mask\)",
        ),
        (b"", r"lacks the columns object, split, label, image, mask \(its header: none\)"),  # empty file
        (b"object,split,label,image,mask\nwidget,train,normal,caf\xe9.JPG,\n", "cannot read VisA split file"),
        (
            b"object,split,label,image,mask\nwidget,test,anomaly,widget/Data/Images/Anomaly/000.JPG,x.png\n",
            r"line 2: anomaly image .*Anomaly/000.JPG has no mask file \(x.png\)",
        ),
        (
            b"object,split,label,image,mask\nwidget,test,bad,widget/Data/Images/Anomaly/000.JPG,\n",
            r"line 2: label 'bad' / split 'test' \(want normal\|anomaly, train\|val\|test\)",  # VisA has val
        ),
        (  # listed in lower case, on disk in upper case: the file there is named
            b"object,split,label,image,mask\nwidget,train,normal,widget/Data/Images/Normal/0000.jpg,\n",
            r"line 2: image .*Normal/0000.jpg does not exist; found .*Normal/0000.JPG, whose name differs",
        ),
        (
            b"object,split,label,image,mask\nwidget,test,anomaly,widget/Data/Images/Anomaly/000.JPG,"
            b"widget/Data/Masks/Anomaly/000.PNG\n",
            r"no mask file \(widget/Data/Masks/Anomaly/000.PNG; found .*Anomaly/000.png, whose name",
        ),
    ],
)
def test_bad_visa_split_files_are_one_line(tmp_path, content, message):
    root = make_layout_tree(tmp_path, "visa")
    (root / "split_csv" / "1cls.csv").write_bytes(content)
    with pytest.raises(UserError, match=message) as error:
        scan(root)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("gone", ["Images/Anomaly/000.JPG", "Masks/Anomaly/000.png"])
def test_a_visa_split_file_naming_a_broken_link_says_so(tmp_path, gone):
    # it said 'image <path> does not exist; found <path>, whose name differs in case': the link itself
    root = make_layout_tree(tmp_path, "visa")
    link = root / CATEGORY / "Data" / gone
    target = tmp_path / "share" / link.name
    link.unlink()
    link.symlink_to(target)
    with pytest.raises(UserError) as error:
        scan(root)
    message = str(error.value)
    assert message.startswith(f"VisA split file {root / 'split_csv' / '1cls.csv'} line 5: ")
    assert message.endswith(f"; it is a broken link to {target}" + (")" if "Masks" in gone else ""))
    assert "differs in case" not in message


@pytest.mark.parametrize("gone", ["Images/Anomaly/000.JPG", "Masks/Anomaly/000.png"])
@pytest.mark.parametrize(
    ("kind", "what"),
    [
        ("folder", "is a folder, not a file"),
        (
            "loop",
            "is a link loop (a symbolic link that leads back to itself, to no file): point it at its file",
        ),
    ],
)
def test_a_visa_split_file_naming_a_folder_or_a_link_loop_says_so(tmp_path, gone, kind, what):
    # a link loop was 'a broken link to 000.JPG' (its own name), a folder 'does not exist' (an image) or named
    # with nothing said of it (a mask)
    root = make_layout_tree(tmp_path, "visa")
    path = root / CATEGORY / "Data" / gone
    path.unlink()
    if kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(path.name)
    with pytest.raises(UserError) as error:
        scan(root)
    where = f"VisA split file {root / 'split_csv' / '1cls.csv'} line 5: "
    image = root / CATEGORY / "Data" / "Images" / "Anomaly" / "000.JPG"
    if "Images" in gone:
        assert str(error.value) == f"{where}image {image} {what}"
    else:
        assert (
            str(error.value)
            == f"{where}anomaly image {image} has no mask file ({CATEGORY}/Data/{gone} {what})"
        )


@pytest.mark.parametrize(
    ("layout", "folder", "renamed"),
    [
        ("mvtec_ad", "test/good", "Good"),  # read as a defect type: 'defect image has no mask'
        ("mvtec_ad", "train/good", "Good"),  # 'defect folder in train/: .../train/Good'
        ("mvtec_ad2", "validation/good", "GOOD"),
        ("mvtec_3d", "test/good", "Good"),
        ("mvtec_loco", "test/good", "Good"),
        ("btad", "test/ok", "OK"),
        ("folder", "good", "Good"),  # 'folder not read', and converted without its good photos
    ],
)
def test_a_good_folder_named_in_another_case_is_named(tmp_path, layout, folder, renamed):
    # a tree copied from Windows or macOS: its good photos were a defect type asking for masks
    root = make_layout_tree(tmp_path, layout)
    good = root / CATEGORY / folder
    good.rename(good.with_name(renamed))
    with pytest.raises(UserError) as error:
        scan(root)
    assert str(error.value) == (
        f"good images' folder {good.with_name(renamed)} is named '{renamed}', not '{good.name}': rename it"
    )
    with pytest.raises(UserError, match="^good images' folder"):  # not a defect without a mask either
        scan_category(root, CATEGORY, allow_missing_masks=True)


@pytest.mark.parametrize(
    ("layout", "folder", "renamed", "given"),
    [
        ("mvtec_ad", "test", "Test", "data"),
        ("mvtec_ad", "train", "Train", "category"),
        ("folder", "images", "Images", "data"),
        ("visa", "Data", "data", "data"),
    ],
)
def test_a_layout_folder_named_in_another_case_is_named_when_no_layout_matches(
    tmp_path, layout, folder, renamed, given
):
    # a Windows or macOS copy: 'no category folders under ...; looked for <every layout>' said nothing of it
    root = make_layout_tree(tmp_path, layout)
    if layout == "mvtec_ad":  # no other folder of the layout left
        shutil.rmtree(root / CATEGORY / ("train" if folder == "test" else "test"))
    moved = root / CATEGORY / renamed
    (root / CATEGORY / folder).rename(moved)
    given_root = root if given == "data" else root / CATEGORY
    with pytest.raises(UserError) as error:
        scan(given_root)
    assert str(error.value).startswith(
        f"no category folders under {given_root}; found {moved}, whose name differs in case from {folder}/: "
        "rename it; looked for "
    )


@pytest.mark.parametrize("layout", ["mvtec_ad", "visa", "kolektor_sdd2"])
def test_the_macos_folder_of_a_zip_beside_the_categories_is_not_read(tmp_path, layout):
    # a zip made on macOS, unpacked elsewhere: __MACOSX/ mirrors the tree with ._ files; the converters
    # refused the root as 'holds categories (widget) and folders of categories (__MACOSX)', and advised
    # --root .../__MACOSX
    root = make_layout_tree(tmp_path, layout)
    for path in sorted(root.rglob("*")):
        mirror = root / "__MACOSX" / path.relative_to(root)
        if path.is_dir():
            mirror.mkdir(parents=True, exist_ok=True)
        else:
            mirror.parent.mkdir(parents=True, exist_ok=True)
            mirror.with_name(f"._{mirror.name}").write_bytes(b"\0\5\26\7")
    assert list_categories(root) == [CATEGORY]
    assert len(scan(root)) == N_DEFECT + EXPECTED[layout].good
    report = run(root, tmp_path / "out")
    assert report.notes == [] and sum(report.images.values()) == N_DEFECT + EXPECTED[layout].good
    # the folder the zip unpacked into: the data set folder is named, not __MACOSX
    shutil.move(root / "__MACOSX", tmp_path / "__MACOSX")
    with pytest.raises(UserError, match=rf"\(e\.g\. --root {re.escape(str(root))}\)$"):
        scan(tmp_path)


@pytest.mark.parametrize(("layout", "given"), [("visa", "split_csv"), ("mvtec_ad", "docs")])
def test_a_root_beside_the_categories_names_the_folder_holding_them(tmp_path, layout, given):
    # --root VisA/split_csv said 'no category folders under it; looked for <every layout>'
    root = make_layout_tree(tmp_path, layout)
    (root / given).mkdir(exist_ok=True)
    with pytest.raises(UserError) as error:
        scan(root / given)
    assert str(error.value) == (
        f"no category folders under {root / given}; its parent folder holds categories ({CATEGORY}): "
        f"pass --root {root} to convert them"
    )


@pytest.mark.parametrize(
    ("layout", "mask", "renamed", "message"),
    [
        (
            "kolektor_sdd2",
            "train/0_GT.png",
            "0-GT.png",
            "{renamed} is read as a photo, but is named like the mask of 0.png: rename it 0_GT.png",
        ),
        (
            "kolektor_sdd2",
            "train/0_GT.png",
            "0 gt.png",
            "{renamed} is read as a photo, but is named like the mask of 0.png: rename it 0_GT.png",
        ),
        (
            "kolektor_sdd2",
            "train/0_GT.png",
            "0_GT_1.png",
            "defect image has no mask: {image} (expected {mask}; found 0_GT_1.png: rename it 0_GT.png)",
        ),
        (
            "kolektor_sdd",
            "kos02/Part3_label.bmp",
            "Part3-label.bmp",
            "{renamed} is read as a photo, but is "
            "named like the mask of Part3.jpg: rename it Part3_label.bmp",
        ),
    ],
)
def test_a_kolektor_mask_named_otherwise_is_named_with_the_name_wanted(
    tmp_path, layout, mask, renamed, message
):
    # 0-GT.png lies among the photos: 'defect image has no mask: 0-GT.png (expected 0-GT_GT.png)'
    root = make_layout_tree(tmp_path, layout)
    mask = root / CATEGORY / mask
    image = next(p for p in mask.parent.iterdir() if p.stem == mask.stem.rsplit("_", 1)[0])
    mask.rename(mask.with_name(renamed))
    with pytest.raises(UserError) as error:
        scan(root)
    assert str(error.value) == message.format(renamed=mask.with_name(renamed), image=image, mask=mask)


def test_kolektor_masks_are_found_whatever_the_case_of_their_suffix(tmp_path):
    root = make_layout_tree(tmp_path, "kolektor_sdd2")
    for mask in (root / CATEGORY).glob("*/*_GT.png"):
        mask.rename(mask.with_name(mask.name.replace("_GT", "_gt")))
    records = scan(root)
    assert len(records) == N_DEFECT + EXPECTED["kolektor_sdd2"].good
    assert all(r.mask.stem == f"{r.image.stem}_gt" for r in records if not r.is_good)


@pytest.mark.parametrize(
    ("copy", "message"),
    [
        ("0.jpg", "two images share the stem '0': .*0.jpg and .*0.png"),  # one was dropped, unsaid
        ("0_GT.bmp", "two masks for one stem '0': .*0_GT.bmp and .*0_GT.png"),  # one mask chosen, unsaid
        ("0_gt.png", "two masks for one stem '0': .*0_GT.png and .*0_gt.png"),
    ],
)
def test_kolektor_two_files_of_one_stem_are_refused(tmp_path, copy, message):
    root = make_layout_tree(tmp_path, "kolektor_sdd2")
    train = root / CATEGORY / "train"
    source = train / ("0.png" if "_" not in copy else "0_GT.png")
    write(train / copy, cv2.imread(str(source), cv2.IMREAD_UNCHANGED))
    with pytest.raises(UserError, match=message):
        scan(root)


def test_kolektor_good_images_can_be_excluded(tmp_path):
    # goodness is an empty mask there: '--exclude-defect good' was 'no such defect type'
    root = make_layout_tree(tmp_path, "kolektor_sdd2")
    records = scan(root, exclude_defects=("good",))
    assert len(records) == N_DEFECT and all(r.mask is not None for r in records)


def test_folder_layout_without_good_or_masks(tmp_path):
    folder = make_layout_tree(tmp_path, "folder") / CATEGORY
    (tmp_path / "no_defects").mkdir()
    goods = scan_folders(tmp_path / "no_defects", None, folder / "good", category=CATEGORY)
    assert len(goods) == EXPECTED["folder"].good and all(r.is_good for r in goods)
    with pytest.raises(UserError, match="defect images in .*images need --masks"):
        run(folder, tmp_path / "out", images=folder / "images")
    shutil.rmtree(folder / "good")
    assert len(scan(folder)) == N_DEFECT


def test_a_forced_layout_is_the_one_reported(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_loco")
    write(root / CATEGORY / "test_public" / "good" / "900.png", noise(9))  # MVTec AD 2 too
    report = run(root, tmp_path / "out", layout="mvtec_loco")
    assert report.layouts == {CATEGORY: "MVTec LOCO AD"}


def test_a_layout_note_is_said_once_for_several_categories(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("alpha", "beta"):
        shutil.move(make_layout_tree(tmp_path / name, "mvtec_3d") / CATEGORY, tmp_path / "data" / name)
    report = run(tmp_path / "data", tmp_path / "out")
    assert report.notes == [XYZ_NOTE]


def test_the_3d_ad_point_cloud_note_is_said_only_where_there_are_point_clouds(tmp_path, capsys):
    root = make_layout_tree(tmp_path, "mvtec_3d")
    for xyz in list((root / CATEGORY).rglob("xyz")):  # an RGB-only copy of the data set
        shutil.rmtree(xyz)
    assert run(root, tmp_path / "out").notes == []
    scan_category(root, CATEGORY)  # anomaly.train --root: notes on stderr
    assert capsys.readouterr().err == ""
    shutil.copytree(root / CATEGORY / "test" / "crack" / "gt", root / CATEGORY / "test" / "crack" / "xyz")
    scan_category(root, CATEGORY)
    assert capsys.readouterr().err == f"note: {XYZ_NOTE}\n"


def test_images_folder_options(tmp_path):
    folder = make_layout_tree(tmp_path, "folder") / CATEGORY
    folders = {"images": folder / "images", "masks": folder / "masks", "good": folder / "good"}
    report = run(folder, tmp_path / "out", **folders, categories=("bolt",))
    assert report.layouts == {"bolt": "Folder"}
    assert all(key.startswith("bolt/") for key in load_splits(tmp_path / "out" / "splits.json").split_of())
    with pytest.raises(UserError, match="--images reads one category; got --category bolt nut"):
        run(folder, tmp_path / "two", **folders, categories=("bolt", "nut"))
    for name in ("masks", "good"):  # --root is only the images' folder here
        with pytest.raises(UserError, match=f"output folder .*{name}/out is inside the input tree"):
            run(folders["images"], folders[name] / "out", **folders)
    (tmp_path / "no_images").mkdir()
    (tmp_path / "no_good").mkdir()
    with pytest.raises(UserError, match="no images in .*no_images or .*no_good"):
        run(
            tmp_path / "no_images",
            tmp_path / "out2",
            images=tmp_path / "no_images",
            good=tmp_path / "no_good",
        )


def test_a_loco_mask_error_names_the_region_file(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_loco")
    write_json(root / CATEGORY / "defects_config.json", [{"defect_name": "extra_part", "pixel_value": 254}])
    with pytest.raises(
        UserError, match="ground_truth/structural_anomalies/001/000.png: mask value 255 is not in"
    ):
        run(root, tmp_path / "out", exclude_defects=("logical_anomalies",))


def test_mask_values_given_win_over_the_map_that_came_with_the_data(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_3d")
    write_json(root / CATEGORY / "class_ids.json", {"255": "crack"})
    values = write_json(tmp_path / "values.json", {"255": "dent"})
    assert run(root, tmp_path / "out", mask_values=values).names == ["dent"]


def test_ad2_category_of_unlabelled_images_alone_is_refused(tmp_path):
    category = tmp_path / "data" / CATEGORY
    (category / "test_public").mkdir(parents=True)
    write(category / "test_private" / "000.png", noise(1))
    with pytest.raises(UserError, match=r"no labelled images to convert under .*data \(1 unlabelled\)"):
        run(tmp_path / "data", tmp_path / "out")


def test_a_folder_of_data_sets_is_refused_naming_them(tmp_path):
    # --root datasets/ converted Kolektor's one category and skipped MVTec AD's, exit 0
    datasets = tmp_path / "datasets"
    make_layout_tree(datasets, "mvtec_ad")  # datasets/mvtec_ad/widget
    make_layout_tree(datasets, "visa")  # datasets/visa/widget
    shutil.copytree(make_layout_tree(tmp_path, "kolektor_sdd2") / CATEGORY, datasets / "KolektorSDD2")
    (datasets / "notes").mkdir()  # a folder of no category, holding none: nothing to say
    with pytest.raises(UserError) as error:
        run(datasets, tmp_path / "out")
    assert str(error.value) == (
        f"{datasets} holds categories (KolektorSDD2) and folders of categories (mvtec_ad, visa): pass each "
        f"data set folder as its own --root (e.g. --root {datasets / 'mvtec_ad'})"
    )
    shutil.rmtree(datasets / "KolektorSDD2")
    with pytest.raises(UserError, match=r"datasets holds folders of categories \(mvtec_ad, visa\)"):
        run(datasets, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert run(datasets / "mvtec_ad", tmp_path / "out").names  # one data set: as before


def test_a_folder_of_many_data_sets_names_three_and_a_count(tmp_path):
    datasets = tmp_path / "datasets"
    make_layout_tree(datasets, "mvtec_ad")
    for name in ("mvtec_b", "mvtec_c", "mvtec_d"):
        shutil.copytree(datasets / "mvtec_ad", datasets / name)
    with pytest.raises(
        UserError, match=r"holds folders of categories \(mvtec_ad, mvtec_b, mvtec_c and 1 more\)"
    ):
        run(datasets, tmp_path / "out")


def test_a_folder_of_data_sets_holding_one_category_of_its_own_name_is_refused_too(tmp_path):
    # its one category is [root.name], as for a --root that is the category: mvtec_ad/ was still skipped
    datasets = tmp_path / CATEGORY
    make_layout_tree(datasets, "mvtec_ad")  # widget/mvtec_ad/widget
    shutil.copytree(make_layout_tree(tmp_path, "kolektor_sdd2") / CATEGORY, datasets / CATEGORY)
    with pytest.raises(UserError, match=rf"{CATEGORY} holds categories \({CATEGORY}\) and folders of categ"):
        run(datasets, tmp_path / "out")


def test_a_folder_of_many_data_sets_names_three_and_counts_the_rest(tmp_path):
    datasets = tmp_path / "datasets"
    for layout in ("btad", "mvtec_ad", "mvtec_loco", "visa"):
        make_layout_tree(datasets, layout)
    with pytest.raises(UserError, match=r"of categories \(btad, mvtec_ad, mvtec_loco and 1 more\)"):
        run(datasets, tmp_path / "out")
    with pytest.raises(UserError, match=r"mvtec_loco and 1 more"):
        scan(datasets)  # the API's default categories too


def test_an_mvtec_ad_defect_type_named_ko_does_not_make_the_category_btad(tmp_path):
    # test/ko/ alone made it BTAD too (BTAD refines MVTec AD), which then refused ground_truth/ko/*_mask.png
    root = make_layout_tree(tmp_path, "mvtec_ad")
    write(root / CATEGORY / "test" / "ko" / "900.png", noise(9))
    write(root / CATEGORY / "ground_truth" / "ko" / "900_mask.png", DEFECT_MASKS[0])
    assert detect_layout(root / CATEGORY).name == "mvtec_ad"
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + 1 + EXPECTED["mvtec_ad"].good


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_line_break_in_a_folder_above_the_data_root_is_no_name_of_the_outputs(tmp_path, layout):
    # every file's absolute path was checked: a tree under 'odd\nparent/' was refused, in the converters
    # and in anomaly's scan, for a folder no output names (they name the category and what lies in it)
    root = make_layout_tree(tmp_path / "odd\nparent", layout)
    records = scan_category(root, CATEGORY, allow_missing_masks=True)
    assert records and all("\n" not in r.key for r in records)
    report = run(root, tmp_path / "out")
    assert sum(report.images.values()) == N_DEFECT + EXPECTED[layout].good


@pytest.mark.parametrize("which", ["category", "photo", "mask"])
@pytest.mark.parametrize(
    ("layout", "photo", "mask"),
    [
        ("kolektor_sdd2", "test/2.png", "test/2_GT.png"),
        ("kolektor_sdd", "kos03/Part5.jpg", "kos03/Part5_label.bmp"),
    ],
)
def test_a_line_break_in_a_kolektor_name_is_refused(tmp_path, layout, photo, mask, which):
    # Kolektor lists its flat folders itself (kolektor.flat_files): a photo named 'bad\n2.png' was taken
    # by anomaly's scan, and a mask named so, left alone, ran a pairing error over two lines
    root = make_layout_tree(tmp_path, layout)
    path = root / CATEGORY if which == "category" else root / CATEGORY / (photo if which == "photo" else mask)
    renamed = path.with_name(f"bad\n{path.name}")
    path.rename(renamed)
    category = renamed.name if which == "category" else CATEGORY
    for read in (
        lambda: scan_category(root, category, allow_missing_masks=True),
        lambda: run(root, tmp_path / "out"),
    ):
        with pytest.raises(UserError) as error:
            read()
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(f"{renamed.parent} holds a name with a line break, {renamed.name!r}: ")
    assert not (tmp_path / "out").exists()


def test_with_images_the_folder_naming_the_category_may_not_hold_a_line_break(tmp_path):
    # the folder holding --images names the category, and so every output file; the folders above it none
    folder = make_layout_tree(tmp_path / "odd\nparent", "folder") / CATEGORY
    folders = {"images": folder / "images", "masks": folder / "masks", "good": folder / "good"}
    assert sum(run(folder, tmp_path / "out", **folders).images.values()) == N_DEFECT + 2
    renamed = folder.rename(folder.with_name("wid\nget"))
    folders = {"images": renamed / "images", "masks": renamed / "masks", "good": renamed / "good"}
    with pytest.raises(UserError) as error:
        run(renamed, tmp_path / "refused", **folders)
    assert str(error.value).startswith(
        f"{renamed.parent} holds a name with a line break, 'wid\\nget': rename it"
    )
    assert not (tmp_path / "refused").exists()
    report = run(renamed, tmp_path / "named", **folders, categories=("widget",))  # --category names it
    assert report.layouts == {"widget": "Folder"}


@pytest.mark.parametrize("where", ["under the root", "elsewhere"])
def test_a_visa_split_file_listing_absolute_paths_is_read_from_a_relative_root(tmp_path, monkeypatch, where):
    # the line-break check took each file's path relative to the category folder's parent as spelled: a
    # split file's absolute path under a relative --root (or a photo it lists elsewhere) was a ValueError
    # traceback; a file outside the root has every name of its path checked, as before
    root = make_layout_tree(tmp_path, "visa")
    listed = root if where == "under the root" else tmp_path / "copy"
    if where == "elsewhere":
        shutil.copytree(root / CATEGORY, listed / CATEGORY)
    csv = root / "split_csv" / "1cls.csv"
    rows = [line.split(",") for line in csv.read_text().splitlines()]
    for row in rows[1:]:
        row[3:] = [str(listed / cell) if cell else cell for cell in row[3:]]
    csv.write_text("\n".join(",".join(row) for row in rows) + "\n")
    monkeypatch.chdir(tmp_path)
    records = scan_category(Path("visa"), CATEGORY, allow_missing_masks=True)
    assert sorted(r.image for r in records if not r.unlabelled) == sorted(Path(row[3]) for row in rows[1:])
    outside = tmp_path / "odd\nparent" / "0000.JPG"
    with pytest.raises(UserError, match=f"^{re.escape(str(tmp_path))} holds a name with a line break, 'odd"):
        check_one_line_names(outside, below=Path("visa"))


@pytest.mark.parametrize("damage", ["masks removed", "emptied"])
def test_a_line_break_in_the_category_folder_is_refused_before_the_scan(tmp_path, damage):
    # scan_category checked the names only after the layout's scan: a category folder 'wid\nget' whose
    # scan failed was named over two lines ('defect image has no mask: .../wid<newline>get/test/...',
    # "category 'wid<newline>get' has no images: ...")
    root = make_layout_tree(tmp_path, "mvtec_ad")
    renamed = (root / CATEGORY).rename(root / "wid\nget")
    shutil.rmtree(renamed / "ground_truth")
    if damage == "emptied":
        shutil.rmtree(renamed / "test")
        shutil.rmtree(renamed / "train" / "good")
        (renamed / "train" / "good").mkdir()
    for read in (lambda: scan_category(root, renamed.name), lambda: scan_category(renamed, renamed.name)):
        with pytest.raises(UserError) as error:
            read()
        assert str(error.value).startswith(f"{root} holds a name with a line break, 'wid\\nget': rename it")
        assert "\n" not in str(error.value)


def test_a_category_with_no_images_is_named_escaped(tmp_path):
    # "category '{category}' has no images" wrote the name as it is: a tab, a quote ran into the message
    root = make_layout_tree(tmp_path, "mvtec_ad")
    renamed = (root / CATEGORY).rename(root / "wid\tget")
    for folder in (renamed / "test", renamed / "ground_truth", renamed / "train" / "good"):
        shutil.rmtree(folder)
    (renamed / "train" / "good").mkdir()
    with pytest.raises(UserError, match=r"^category 'wid\\tget' has no images: "):
        scan_category(root, renamed.name)


@pytest.mark.parametrize(
    ("moved", "to"),
    [
        ("test/crack", "test/cr\nack"),  # its masks left in ground_truth/crack: 'defect image has no mask'
        ("ground_truth/crack", "ground_truth/cr\nack"),  # a copy: 'mask has no image'
        ("test/crack", "train/cr\nack"),  # 'defect folder in train/'
    ],
)
def test_a_line_break_in_a_defect_folder_named_by_a_layouts_error_is_refused_in_one_line(tmp_path, moved, to):
    # since f1e5e20 images_by_stem checks a file's own name only: a defect folder so named reached the
    # pairing errors, which named it over two lines, before scan_category's check
    root = make_layout_tree(tmp_path, "mvtec_ad")
    renamed = root / CATEGORY / to
    if moved.startswith("ground_truth"):
        shutil.copytree(root / CATEGORY / moved, renamed)
    else:
        (root / CATEGORY / moved).rename(renamed)
    for read in (lambda: scan_category(root, CATEGORY), lambda: run(root, tmp_path / "out")):
        with pytest.raises(UserError) as error:
            read()
        assert str(error.value).startswith(f"{renamed.parent} holds a name with a line break, 'cr\\nack': ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("layout", "moved", "to"),
    [
        ("mvtec_3d", "train/good", "train/x\ngood"),  # 'defect folder in train/'
        ("mvtec_loco", "validation/good", "validation/x\ngood"),  # 'defect folder in validation/'
        ("mvtec_loco", "test/logical_anomalies", "test/x\nlogical_anomalies"),  # 'no mask folder'
        ("mvtec_loco", "ground_truth/logical_anomalies", "ground_truth/x\nlogical_anomalies"),  # a copy
    ],
)
def test_a_line_break_in_a_3d_or_loco_type_folder_is_refused_in_one_line(tmp_path, layout, moved, to):
    # as for MVTec AD's: these layouts list their type folders themselves, and their errors named a folder
    # so named over two lines (before f1e5e20, images_by_stem's check of the whole path came first)
    root = make_layout_tree(tmp_path, layout)
    renamed = root / CATEGORY / to
    if moved.startswith("ground_truth"):
        shutil.copytree(root / CATEGORY / moved, renamed)
    else:
        (root / CATEGORY / moved).rename(renamed)
    with pytest.raises(UserError) as error:
        scan_category(root, CATEGORY)
    assert str(error.value).startswith(f"{renamed.parent} holds a name with a line break, {renamed.name!r}: ")


@pytest.mark.parametrize("through", ["images", "masks", "good"])
def test_an_images_masks_or_good_folder_through_a_link_loop_is_named_so(tmp_path, link_loop, through):
    # Python 3.13's Path.resolve passes a loop without a word (3.10 to 3.12 raise for it before the scan):
    # '--images folder does not exist: loop/x' of a path that is there
    root = make_layout_tree(tmp_path, "mvtec_ad") / CATEGORY
    folders = {
        "images": root / "test/crack",
        "masks": root / "ground_truth/crack",
        "good": root / "train/good",
    }
    folders[through] = link_loop / "x"
    with pytest.raises(UserError) as error:
        scan_folders(folders["images"], folders["masks"], folders["good"], category=CATEGORY)
    assert str(error.value).startswith(f"--{through} {link_loop}/x: {link_loop} is a link loop (")


@pytest.mark.parametrize("name", ["wid\nget", "widget\r", "wid\u2028get"])
def test_with_images_a_category_holding_a_line_break_is_refused(tmp_path, name):
    # --category named every output file unchecked: 'wid\nget_folder_defect_000.png' read as two names in
    # the image lists (only the folder naming the category, without --category, was checked)
    folder = make_layout_tree(tmp_path / "data", "folder") / CATEGORY
    folders = {"images": folder / "images", "masks": folder / "masks", "good": folder / "good"}
    with pytest.raises(UserError) as error:
        run(folder, tmp_path / "out", **folders, categories=(name,))
    assert str(error.value) == (
        f"--category {name!r} holds a line break: give the name on one line (it names every output file, "
        "and the data set's image lists hold one name per line: they would read it as two)"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("layout", "photo", "mask"),
    [
        ("mvtec_ad", "test/crack/000.png", "ground_truth/crack/000_mask.png"),
        ("mvtec_ad2", "test_public/bad/000.png", "test_public/ground_truth/bad/000_mask.png"),
        ("mvtec_3d", "test/crack/rgb/000.png", "test/crack/gt/000.png"),
        ("mvtec_loco", "test/logical_anomalies/000.png", "ground_truth/logical_anomalies/000"),
        ("visa", "Data/Images/Anomaly/000.JPG", "Data/Masks/Anomaly/000.png"),  # no split file
        ("btad", "test/ko/000.bmp", "ground_truth/ko/000.png"),
        ("kolektor_sdd2", "train/0.png", "train/0_GT.png"),
        ("kolektor_sdd", "kos02/Part3.jpg", "kos02/Part3_label.bmp"),
        ("folder", "images/000.png", "masks/000.png"),
    ],
)
def test_a_folder_in_a_defect_photo_s_place_is_named_as_one(tmp_path, layout, photo, mask):
    # it was 'mask has no image: <mask> (expected <folder>/000.<ext>)': asking for what looked to be there
    root = make_layout_tree(tmp_path, layout)
    if layout == "visa":
        shutil.rmtree(root / "split_csv")  # read from its folders (a split file names the image: VisA's own)
    category = root / CATEGORY
    (category / photo).unlink()
    (category / photo).mkdir()
    with pytest.raises(UserError) as error:
        scan(root)
    what = "mask folder" if layout == "mvtec_loco" else "mask"
    assert (
        str(error.value)
        == f"{what} has no image: {category / mask} ({category / photo} is a folder, not a photo)"
    )


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_an_empty_folder_beside_the_categories_is_a_note(tmp_path, layout):
    # a category whose photos were never copied in was left out without a word
    root = make_layout_tree(tmp_path, layout)
    (root / "gadget").mkdir()
    (root / "gadget" / ".DS_Store").write_bytes(b"")  # hidden: still empty
    report = run(root, tmp_path / "out")
    note = (
        f"{root / 'gadget'} is an empty folder: no category is read from it; copy its photos in, or remove it"
    )
    assert note in report.notes
    assert list(report.layouts) == [CATEGORY]
    assert note in format_report(report)


@pytest.mark.parametrize(
    ("layout", "photo"),
    [
        ("mvtec_ad", "train/good/000.png"),
        ("mvtec_ad2", "train/good/000.png"),
        ("mvtec_3d", "train/good/rgb/000.png"),
        ("mvtec_loco", "train/good/000.png"),
        ("btad", "train/ok/000.bmp"),
        ("folder", "good/000.png"),
        ("visa", "Data/Images/Normal/0000.JPG"),  # no split file (one names it: test_a_visa_split_file_...)
    ],
)
def test_a_folder_in_a_good_photo_s_place_is_a_note(tmp_path, layout, photo):
    # the photo was left out of the data set without a word (a defect photo's folder: its mask's error)
    root = make_layout_tree(tmp_path, layout)
    if layout == "visa":
        shutil.rmtree(root / "split_csv")
    path = root / CATEGORY / photo
    path.unlink()
    path.mkdir()
    report = run(root, tmp_path / "out")
    note = f"1 folder in {path.parent} named like a photo left out (no photo in it): {path.name}/"
    assert note in report.notes
    assert sum(report.images.values()) == N_DEFECT + EXPECTED[layout].good - 1


@pytest.mark.parametrize(
    ("layout", "folder", "photo", "mask"),
    [
        ("mvtec_ad", "ground_truth/crack", "test/crack/000.png", "ground_truth/crack/000_mask.png"),
        ("mvtec_3d", "test/crack/gt", "test/crack/rgb/000.png", "test/crack/gt/000.png"),
        ("btad", "ground_truth/ko", "test/ko/000.bmp", "ground_truth/ko/000.png"),
    ],
)
def test_a_mask_folder_that_is_a_link_loop_is_named_as_one(tmp_path, layout, folder, photo, mask):
    # it was 'found <the folder itself>, whose name differs in case: rename it'
    root = make_layout_tree(tmp_path, layout)
    category = root / CATEGORY
    shutil.rmtree(category / folder)
    (category / folder).symlink_to((category / folder).name)
    with pytest.raises(UserError) as error:
        scan(root)
    assert str(error.value) == (
        f"defect image has no mask: {category / photo} ({category / mask}: {category / folder} is a link "
        "loop (a symbolic link that leads back to itself, to no file or folder); point it elsewhere or give "
        f"another path) (and {N_DEFECT - 1} more)"
    )


def test_a_loco_mask_folder_that_is_a_link_loop_is_named_as_one(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_loco")
    folder = root / CATEGORY / "ground_truth" / "logical_anomalies" / "000"
    shutil.rmtree(folder)
    folder.symlink_to(folder.name)
    with pytest.raises(UserError) as error:
        scan(root)
    assert str(error.value) == (
        f"defect image has no mask folder: {root / CATEGORY / 'test' / 'logical_anomalies' / '000.png'} "
        f"(expected {folder}/000.png; {folder} is a link loop (a symbolic link that leads back to itself, to "
        "no file or folder); point it elsewhere or give another path)"
    )


def test_a_visa_mask_folder_that_is_a_link_loop_is_named_as_one(tmp_path):
    # the mask file itself was called the loop
    root = make_layout_tree(tmp_path, "visa")
    folder = root / CATEGORY / "Data" / "Masks" / "Anomaly"
    shutil.rmtree(folder)
    folder.symlink_to(folder.name)
    with pytest.raises(UserError) as error:
        scan(root)
    assert str(error.value).endswith(
        f"has no mask file ({CATEGORY}/Data/Masks/Anomaly/000.png goes through {folder}, a link loop (a "
        "symbolic link that leads back to itself): point it elsewhere)"
    )


@pytest.mark.parametrize(
    ("layout", "folder"),
    [
        ("mvtec_ad", "train/good"),
        ("kolektor_sdd", "kos02"),
        ("folder", "good"),
        ("btad", "train/ok"),
    ],
)
def test_a_photo_folder_that_is_a_link_loop_is_a_note(tmp_path, layout, folder):
    # its photos were left out of the data set without a word: a loop is passed over as no folder
    root = make_layout_tree(tmp_path, layout)
    category = root / CATEGORY
    shutil.rmtree(category / folder)
    (category / folder).symlink_to((category / folder).name)
    report = run(root, tmp_path / "out")
    assert (
        f"1 link loop in {category} not read ({folder}): a symbolic link that leads back to itself, to no "
        "file or folder; point it at its folder"
    ) in report.notes


@pytest.mark.parametrize("folder", ["test/crack/rgb", "train/good/rgb"])
def test_a_3d_ad_photo_folder_that_is_a_link_loop_is_named_as_one(tmp_path, folder):
    # it was 'MVTec 3D-AD folder without rgb/', sending the user to make the folder the loop stands in
    root = make_layout_tree(tmp_path, "mvtec_3d")
    rgb = root / CATEGORY / folder
    shutil.rmtree(rgb)
    rgb.symlink_to(rgb.name)
    with pytest.raises(UserError) as error:
        scan(root)
    assert str(error.value) == (
        f"MVTec 3D-AD photo folder {rgb} is a link loop (a symbolic link that leads back to itself, to no "
        "file or folder); point it elsewhere or give another path"
    )
