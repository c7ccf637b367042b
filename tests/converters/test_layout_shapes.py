"""Each layout read from a tree shaped as anomalib's data set readers (and the data sets' own loaders) lay
the real archive out, where :mod:`tests.converters.layout_trees` writes our own picture of it.

Sources, in open-edge-platform/anomalib (``src/anomalib/data/``): ``datasets/image/{mvtecad,mvtecad2,
mvtec_loco,visa,btech,kolektor}.py``, ``datasets/depth/mvtec_3d.py`` and ``datamodules/image/{visa,
btech}.py`` (VisA's 1cls split applied, BTAD's archive folder ``BTech_Dataset_transformed``); BTAD's
product 03 keeps ``.bmp`` masks (its reference loader, VT-ADL's, reads ``<stem>.bmp`` there). VisA's split
files as amazon-science/spot-diff publishes them: ``split_csv/{1cls,2cls_fewshot,2cls_highshot}.csv``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from common.errors import UserError
from converters.layouts import detect_layout
from converters.mvtec import list_categories, scan
from tests.converters.layout_trees import SIZE, noise, write


def _blob(value: int = 255) -> np.ndarray:
    mask = np.zeros(SIZE, np.uint8)
    mask[4:10, 4:10] = value  # one region
    return mask


def _counts(root: Path) -> Counter:
    records = scan(root, include_unlabelled=True)
    return Counter((r.layout_split, r.defect, r.mask is not None) for r in records)


def _btad(root: Path) -> Path:
    """``BTech_Dataset_transformed/{01,02,03}``: .bmp images in 01 and 03, .png in 02; .bmp masks in 03."""
    data = root / "BTech_Dataset_transformed"
    products = (("01", ".bmp", ".png"), ("02", ".png", ".png"), ("03", ".bmp", ".bmp"))
    for product, image_ext, mask_ext in products:
        for folder in ("train/ok", "test/ok"):
            write(data / product / folder / f"0000{image_ext}", noise(1))
        for index in range(2):
            write(data / product / "test" / "ko" / f"000{index}{image_ext}", noise(2 + index))
            write(data / product / "ground_truth" / "ko" / f"000{index}{mask_ext}", _blob())
    return data


def test_btad_products_01_02_03_pair_images_and_masks_whatever_their_suffix(tmp_path):
    data = _btad(tmp_path)
    assert list_categories(data) == ["01", "02", "03"]
    assert {detect_layout(data / product).name for product in ("01", "02", "03")} == {"btad"}
    assert _counts(data) == {("train", "good", False): 3, ("test", "good", False): 3, ("test", "ko", True): 6}


def test_btad_03_missing_mask_is_expected_with_the_suffix_of_its_masks(tmp_path):
    # product 03's masks are .bmp: the error asked for 0001.png, a name no mask there has
    data = _btad(tmp_path)
    (data / "03" / "ground_truth" / "ko" / "0001.bmp").unlink()
    expected = r"no mask: .*03/test/ko/0001.bmp \(expected .*ground_truth/ko/0001.bmp\)"
    with pytest.raises(UserError, match=expected):
        scan(data, ["03"])


def test_visa_after_anomalibs_1cls_split_is_read_as_mvtec_ad(tmp_path):
    # anomalib's visa_pytorch/<object>: train/good, test/{good,bad}/*.JPG, ground_truth/bad/<stem>.png (0/255)
    data = tmp_path / "visa_pytorch"
    write(data / "candle" / "train" / "good" / "0000.JPG", noise(1))
    write(data / "candle" / "test" / "good" / "0001.JPG", noise(2))
    write(data / "candle" / "test" / "bad" / "000.JPG", noise(3))
    write(data / "candle" / "ground_truth" / "bad" / "000.png", _blob())
    assert detect_layout(data / "candle").name == "mvtec_ad"
    assert _counts(data) == {
        ("train", "good", False): 1,
        ("test", "good", False): 1,
        ("test", "bad", True): 1,
    }


def test_visa_archive_with_its_own_extra_files_reads_the_1cls_split(tmp_path):
    # VisA_20220922: <object>/image_anno.csv beside Data/, split_csv/{1cls,2cls_fewshot}.csv;
    # masks hold 0 and the defect type's id
    data = tmp_path / "VisA"
    rows = ["object,split,label,image,mask"]
    for index in range(2):
        write(data / "candle" / "Data" / "Images" / "Normal" / f"{index:04d}.JPG", noise(index))
        rows.append(f"candle,train,normal,candle/Data/Images/Normal/{index:04d}.JPG,")
    write(data / "candle" / "Data" / "Images" / "Anomaly" / "000.JPG", noise(5))
    write(data / "candle" / "Data" / "Masks" / "Anomaly" / "000.png", _blob(value=1))
    rows.append("candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png")
    (data / "candle" / "image_anno.csv").write_text("image,label,mask\n")
    (data / "split_csv").mkdir()
    (data / "split_csv" / "1cls.csv").write_text("\n".join(rows) + "\n")
    (data / "split_csv" / "2cls_fewshot.csv").write_text(rows[0] + "\n")  # 1cls.csv is the one read
    assert list_categories(data) == ["candle"]
    assert _counts(data) == {("train", "good", False): 2, ("test", "anomaly", True): 1}


def test_visa_archive_without_1cls_reads_a_2cls_protocol_and_says_so(tmp_path, capsys):
    # spot-diff's split_csv/2cls_{fewshot,highshot}.csv: the same images as 1cls.csv, split train|test,
    # label normal|anomaly, but anomaly rows in train too (240 and 720 of 1,200); read unsaid before
    data = tmp_path / "VisA"
    rows = ["object,split,label,image,mask"]
    for index, split in enumerate(("train", "test")):
        write(data / "candle" / "Data" / "Images" / "Normal" / f"{index:04d}.JPG", noise(index))
        rows.append(f"candle,{split},normal,candle/Data/Images/Normal/{index:04d}.JPG,")
    for index, split in enumerate(("train", "test")):
        write(data / "candle" / "Data" / "Images" / "Anomaly" / f"{index:03d}.JPG", noise(5 + index))
        write(data / "candle" / "Data" / "Masks" / "Anomaly" / f"{index:03d}.png", _blob(value=1))
        image = f"candle/Data/Images/Anomaly/{index:03d}.JPG"
        mask = f"candle/Data/Masks/Anomaly/{index:03d}.png"
        rows.append(f"candle,{split},anomaly,{image},{mask}")
    (data / "split_csv").mkdir()
    for name in ("2cls_highshot.csv", "2cls_fewshot.csv"):
        (data / "split_csv" / name).write_text("\n".join(rows) + "\n")
    assert _counts(data) == {
        ("train", "good", False): 1,
        ("test", "good", False): 1,
        ("train", "anomaly", True): 1,  # as the file says: this protocol trains on anomaly images
        ("test", "anomaly", True): 1,
    }
    fewshot = data / "split_csv" / "2cls_fewshot.csv"
    assert capsys.readouterr().err == (
        f"note: VisA split file {fewshot} read, as there is no split_csv/1cls.csv: a two-class protocol, "
        "which lists anomaly images in train as well as test (1cls.csv keeps them in test), and "
        "--split-from-layout follows it; 2cls_highshot.csv not read\n"
    )


def test_mvtec_ad2_private_test_images_lie_flat_and_names_carry_the_lighting(tmp_path):
    data = tmp_path / "MVTec_AD_2"
    category = data / "can"
    write(category / "train" / "good" / "000_regular.png", noise(1))
    write(category / "validation" / "good" / "000_regular.png", noise(2))
    write(category / "test_public" / "good" / "000_regular.png", noise(3))
    write(category / "test_public" / "bad" / "000_regular.png", noise(4))
    write(category / "test_public" / "ground_truth" / "bad" / "000_regular_mask.png", _blob())
    write(category / "test_private" / "000_regular.png", noise(5))
    write(category / "test_private_mixed" / "000_mixed.png", noise(6))
    assert detect_layout(category).name == "mvtec_ad2"
    assert _counts(data) == {
        ("train", "good", False): 1,
        ("val", "good", False): 1,
        ("test", "good", False): 1,
        ("test", "bad", True): 1,
        (None, "unlabelled", False): 2,
    }


def test_mvtec_3d_with_gt_in_every_folder_and_a_calibration_folder(tmp_path):
    data = tmp_path / "MVTec3D"
    category = data / "bagel"
    for folder in ("train/good", "validation/good", "test/good", "test/crack"):
        write(category / folder / "rgb" / "000.png", noise(1))
        gt = _blob() if "crack" in folder else np.zeros(SIZE, np.uint8)  # good photos' gt: all zero
        write(category / folder / "gt" / "000.png", gt)
        (category / folder / "xyz").mkdir()
        (category / folder / "xyz" / "000.tiff").write_bytes(b"point cloud, not read")
    (category / "calibration").mkdir()
    (category / "calibration" / "camera_parameters.json").write_text("{}")
    assert detect_layout(category).name == "mvtec_3d"
    assert _counts(data) == {
        ("train", "good", False): 1,
        ("val", "good", False): 1,
        ("test", "good", False): 1,
        ("test", "crack", True): 1,
    }


def test_mvtec_loco_region_files_take_their_names_from_defects_config(tmp_path):
    data = tmp_path / "MVTec_LOCO"
    category = data / "breakfast_box"
    for folder in ("train/good", "validation/good", "test/good"):
        write(category / folder / "000.png", noise(1))
    write(category / "test" / "logical_anomalies" / "000.png", noise(2))
    write(category / "ground_truth" / "logical_anomalies" / "000" / "000.png", _blob(255))
    write(category / "ground_truth" / "logical_anomalies" / "000" / "001.png", _blob(254)[::-1].copy())
    config = [
        {"defect_name": name, "pixel_value": value, "saturation_threshold": 1.0, "relative_saturation": True}
        for name, value in (("missing_almonds", 255), ("box_damaged", 254))
    ]
    (category / "defects_config.json").write_text(json.dumps(config))
    (record,) = [r for r in scan(data) if not r.is_good]
    assert [path.name for path in record.masks] == ["000.png", "001.png"]
    assert dict(record.value_names) == {0: "good", 254: "box_damaged", 255: "missing_almonds"}
