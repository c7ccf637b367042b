"""Every data set layout read into the same records: detection, forcing, counts, merged masks, errors.

Each test builds a tiny tree of one layout (:mod:`tests.converters.layout_trees`: 32x32
noise images, three defect masks holding four regions) and converts or scans it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import UserError
from converters.convert import ConvertConfig, convert, format_report
from converters.layouts import LAYOUTS, detect_layout, get_layout
from converters.layouts.visa import split_file
from converters.mvtec import list_categories, read_record_mask, scan, scan_category
from converters.splits import load_splits
from tests.converters.layout_trees import (
    CATEGORY,
    EXPECTED,
    N_DEFECT,
    N_INSTANCES,
    SIZE,
    make_layout_tree,
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
    assert report.notes == ["MVTec 3D-AD: the xyz point clouds are not read (RGB images and gt masks only)"]
    assert format_report(report).count("note: MVTec 3D-AD") == 1


def test_visa_split_file_is_honoured_with_split_from_layout(tmp_path):
    root = make_layout_tree(tmp_path, "visa")
    run(root, tmp_path / "out", split_from_layout=True)
    splits = load_splits(tmp_path / "out" / "splits.json")
    assert splits.train == [f"{CATEGORY}/normal/good/0000", f"{CATEGORY}/normal/good/0001"]
    assert splits.val == []
    assert len(splits.test) == 1 + N_DEFECT
    assert all(key.split("/")[2] == "anomaly" for key in splits.test[:N_DEFECT])


def test_split_from_layout_uses_the_validation_folder(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    report = run(root, tmp_path / "out", split_from_layout=True)
    splits = load_splits(tmp_path / "out" / "splits.json")
    assert splits.val == [f"{CATEGORY}/validation/good/002"]
    assert splits.train == [f"{CATEGORY}/train/good/000", f"{CATEGORY}/train/good/001"]
    assert report.images == {"train": 2, "val": 1, "test": N_DEFECT + 1}
    assert not any("test_private" in key for split in ("train", "val", "test") for key in splits[split])


def test_split_from_layout_needs_a_layout_that_has_one(tmp_path):
    root = make_layout_tree(tmp_path, "folder")
    with pytest.raises(
        UserError, match="--split-from-layout: the Folder layout names no split for .*000.png"
    ):
        run(root, tmp_path / "out", split_from_layout=True)
    assert not (tmp_path / "out").exists()


def test_ad2_private_images_are_unlabelled_never_good(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_ad2")
    assert not any(r.unlabelled for r in scan(root))
    private = [r for r in scan(root, include_unlabelled=True) if r.unlabelled]
    assert len(private) == 3 and not any(r.is_good for r in private)
    assert {r.subset for r in private} == {"test_private", "test_private_mixed"}
    assert "unlabelled images not converted (no ground truth): 3" in format_report(
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


def _loco_without_mask_folder(root: Path) -> None:
    shutil.rmtree(root / CATEGORY / "ground_truth" / "structural_anomalies" / "001")


def _visa_row_to_missing_file(root: Path) -> None:
    (root / CATEGORY / "Data" / "Images" / "Anomaly" / "001.JPG").unlink()


def _visa_row_listed_twice(root: Path) -> None:
    split_file = root / "split_csv" / "1cls.csv"
    rows = split_file.read_text().splitlines()
    split_file.write_text("\n".join([*rows, rows[4]]) + "\n")


def _3d_gt_of_another_size(root: Path) -> None:
    write(root / CATEGORY / "test" / "crack" / "gt" / "002.png", np.zeros((16, 32), np.uint8))


def _ad2_mask_without_image(root: Path) -> None:
    (root / CATEGORY / "test_public" / "bad" / "002.png").unlink()


def _btad_image_without_mask(root: Path) -> None:
    (root / CATEGORY / "ground_truth" / "ko" / "000.png").unlink()


def _kolektor_image_without_gt(root: Path) -> None:
    (root / CATEGORY / "train" / "0_GT.png").unlink()


def _loco_bad_config(root: Path) -> None:
    write_json(root / CATEGORY / "defects_config.json", [{"defect_name": "x", "pixel_value": "high"}])


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
            "mvtec_3d",
            _3d_gt_of_another_size,
            "image/mask size mismatch: .*rgb/002.png is 32x32, .*gt/002.png is 32x16",
        ),
        ("mvtec_ad2", _ad2_mask_without_image, "mask has no image: .*ground_truth/bad/002_mask.png"),
        ("btad", _btad_image_without_mask, "defect image has no mask: .*ko/000.bmp"),
        ("kolektor_sdd2", _kolektor_image_without_gt, "defect image has no mask: .*train/0.png .*0_GT.png"),
        (
            "mvtec_loco",
            _loco_bad_config,
            "defects_config.json: entry 0 needs a defect_name and a pixel_value",
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


def test_layout_options_that_contradict_are_refused(tmp_path):
    root = make_layout_tree(tmp_path, "folder") / CATEGORY
    with pytest.raises(UserError, match="--images reads the folder layout, not --layout btad"):
        run(root, tmp_path / "out", images=root / "images", layout="btad")
    with pytest.raises(UserError, match="--masks and --good go with --images"):
        run(root, tmp_path / "out", masks=root / "masks")
    with pytest.raises(UserError, match="--split-from-layout and --splits both"):
        run(root, tmp_path / "out", split_from_layout=True, splits_file=tmp_path / "splits.json")
    with pytest.raises(UserError, match="--images folder does not exist"):
        run(root, tmp_path / "out", images=tmp_path / "nowhere", masks=root / "masks")


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
    (tmp_path / "split_csv" / "2cls_fewshot.csv").rename(tmp_path / "candle" / "split_csv" / "1cls.csv")
    (tmp_path / "split_csv" / "2cls_highshot.csv").unlink()
    assert split_file(tmp_path / "candle") == tmp_path / "candle" / "split_csv" / "1cls.csv"
