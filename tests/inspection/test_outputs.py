"""The inspection's files read back with the tools they are for: pycocotools, the converters, OpenCV."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from common.errors import UserError
from converters.convert import ConvertConfig, convert
from converters.masks import rle_to_mask
from converters.mvtec import list_categories
from converters.value_masks import MASK_VALUES_FILE
from inspection.inspector import Inspector
from inspection.mask_tree import MaskTree, category_name, place_photo
from inspection.outputs import JsonListFile, PredictionWriter, anomaly_map_png, ranking_scores
from inspection.photos import Photo, find_photos
from inspection.result import Inspection
from segmentation.specks import visible_parts


@pytest.fixture
def inspected(photos, stub_detector, tiny_sam):
    """Every photo of the folder inspected (with probabilities), with its Photo record."""
    inspector = Inspector(stub_detector, tiny_sam, keep_probs=True)
    found = find_photos(photos)
    return inspector, [(photo, inspector(photo.path)) for photo in found]


def write(out: Path, inspector, inspected, **options) -> PredictionWriter:
    with PredictionWriter(out, class_names=inspector.class_names, **options) as writer:
        for photo, inspection in inspected:
            writer.add(inspection, photo)
    return writer


def test_predictions_load_with_coco_load_res_against_images_json(tmp_path, inspected):
    inspector, results = inspected
    writer = write(tmp_path / "out", inspector, results)
    assert (writer.photos, writer.instances, dict(writer.verdicts)) == (
        4,
        4,
        {"good": 1, "stain": 1, "scratch": 2},
    )
    gt = COCO(str(tmp_path / "out" / "images.json"))  # COCO image info: images + categories
    detections = gt.loadRes(str(tmp_path / "out" / "predictions.json"))
    assert len(detections.getAnnIds()) == 4
    assert [c["name"] for c in gt.loadCats(gt.getCatIds())] == ["scratch", "stain"]
    by_name = {image["file_name"]: image for image in gt.dataset["images"]}
    assert list(by_name) == ["good.png", "lot_2/a.png", "one.png", "two.png"]
    assert by_name["two.png"] == {
        "id": 4,
        "file_name": "two.png",
        "width": 80,
        "height": 60,
        "verdict": "scratch",
        "score": pytest.approx(0.9),
        "instances": 2,
        "name": "two",
        # the photo's bytes: a proposals file was placed on another photo set of the same names by name alone
        "sha256": hashlib.sha256(results[3][0].path.read_bytes()).hexdigest(),
    }
    assert (
        by_name["good.png"]["verdict"],
        by_name["good.png"]["score"],
        by_name["good.png"]["instances"],
    ) == (
        "good",
        0.0,
        0,
    )


def test_each_prediction_is_the_instance_exactly(tmp_path, inspected):
    inspector, results = inspected
    write(tmp_path / "out", inspector, results)
    entries = json.loads((tmp_path / "out" / "predictions.json").read_text())
    photo, two = results[3]
    mine = [e for e in entries if e["image_id"] == photo.image_id]
    assert [e["category_id"] for e in mine] == [1, 2]  # class id + 1, best box first
    assert mine[0]["bbox"] == [5.0, 5.0, 15.0, 15.0]  # xywh of the box (5, 5, 20, 20)
    assert mine[1]["bbox"] == [40.0, 30.0, 20.0, 20.0]
    for entry, mask, box_score, mask_score in zip(mine, two.masks, two.scores, two.mask_scores, strict=True):
        assert entry["segmentation"]["size"] == [60, 80] and isinstance(entry["segmentation"]["counts"], str)
        assert np.array_equal(rle_to_mask(entry["segmentation"]), mask)
        assert entry["score"] == entry["box_score"] == pytest.approx(box_score)
        assert entry["mask_score"] == pytest.approx(mask_score, abs=1e-6)
        assert entry["file_name"] == "two.png"


@pytest.mark.parametrize("rank_by", ["box", "mask", "product"])
def test_the_ranking_score_is_a_parameter(tmp_path, inspected, rank_by):
    inspector, results = inspected
    write(tmp_path / "out", inspector, results, rank_by=rank_by)
    entries = json.loads((tmp_path / "out" / "predictions.json").read_text())
    expected = {"box": lambda e: e["box_score"], "mask": lambda e: e["mask_score"]}
    expected["product"] = lambda e: e["box_score"] * e["mask_score"]
    assert all(e["score"] == pytest.approx(expected[rank_by](e), abs=1e-5) for e in entries)
    assert json.loads((tmp_path / "out" / "images.json").read_text())["info"]["rank_by"] == rank_by
    with pytest.raises(ValueError, match="rank_by"):
        ranking_scores(results[0][1], "iou")


def test_the_caller_may_give_image_ids_and_file_names(tmp_path, inspected):
    inspector, results = inspected
    renamed = [
        (Photo(photo.path, f"test/{photo.name}.png", photo.name, 100 + i), inspection)
        for i, (photo, inspection) in enumerate(results)
    ]
    write(tmp_path / "out", inspector, renamed)
    images = json.loads((tmp_path / "out" / "images.json").read_text())["images"]
    assert [(i["id"], i["file_name"]) for i in images][:2] == [
        (100, "test/good.png"),
        (101, "test/lot_2__a.png"),
    ]
    entries = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert {e["image_id"] for e in entries} == {101, 102, 103}


def test_without_photo_records_ids_count_from_one(tmp_path, inspected):
    inspector, results = inspected
    write(tmp_path / "out", inspector, [(None, inspection) for _, inspection in results])
    images = json.loads((tmp_path / "out" / "images.json").read_text())["images"]
    assert [(i["id"], i["file_name"]) for i in images] == [
        (1, "good.png"),
        (2, "a.png"),
        (3, "one.png"),
        (4, "two.png"),
    ]


def test_two_photos_under_one_output_name_are_refused(tmp_path, inspected):
    inspector, results = inspected
    first, second = results[0][1], results[1][1]
    twin = replace(second, path=tmp_path / "lot_2" / first.path.name.upper())  # A.PNG beside a.png
    with pytest.raises(UserError, match=rf"two photos map to one output name .*{first.path} and {twin.path}"):
        write(tmp_path / "out", inspector, [(None, first), (None, twin)])
    assert not (tmp_path / "out" / "images.json").exists()  # the first photo's files were not replaced


def test_the_masks_tree_is_value_coded_mvtec_layout(tmp_path, inspected):
    inspector, results = inspected
    write(tmp_path / "lot_7", inspector, results)
    category = tmp_path / "lot_7" / "masks" / "lot_7"
    files = sorted(p.relative_to(category).as_posix() for p in category.rglob("*") if not p.is_dir())
    assert files == [
        "ground_truth/combined/two_mask.png",  # two classes: MVTec's "combined"
        "ground_truth/scratch/one_mask.png",
        "ground_truth/stain/lot_2__a_mask.png",
        MASK_VALUES_FILE,
        "test/combined/two.png",
        "test/good/good.png",
        "test/scratch/one.png",
        "test/stain/lot_2__a.png",
    ]
    assert json.loads((category / MASK_VALUES_FILE).read_text()) == {
        "255": "scratch",
        "254": "stain",
        "0": "good",
    }
    assert (category / "test/good/good.png").is_symlink()
    assert (category / "test/good/good.png").resolve() == results[0][0].path.resolve()
    two = results[3][1]
    mask = cv2.imread(str(category / "ground_truth/combined/two_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 254, 255}
    assert np.array_equal(mask == 255, two.masks[0])  # the best instance keeps overlapping pixels
    # of the other, what the best leaves less its pieces under 16 cells ((80 / 256)^2 px each)
    assert np.array_equal(mask == 254, visible_parts(two.masks, 16 * (80 / 256) ** 2, two.names)[1])
    assert (mask == 254).sum() < (two.masks[1] & ~two.masks[0]).sum()  # (random masks: pieces of 1 px)
    write(tmp_path / "raw", inspector, results, speck_cells=0)  # every piece
    mask = cv2.imread(
        str(tmp_path / "raw/masks/raw/ground_truth/combined/two_mask.png"), cv2.IMREAD_UNCHANGED
    )
    assert np.array_equal(mask == 254, two.masks[1] & ~two.masks[0])


def test_the_masks_tree_reconverts_with_the_converters(tmp_path, inspected):
    inspector, results = inspected
    write(tmp_path / "lot_7", inspector, results, link="copy")
    masks = tmp_path / "lot_7" / "masks"
    assert not any(p.is_symlink() for p in masks.rglob("*"))
    report = convert(
        ConvertConfig(
            root=masks,
            out=tmp_path / "dataset",
            formats=("yolo", "coco"),
            mask_values=masks / "lot_7" / MASK_VALUES_FILE,
            ratios=(1.0, 0.0, 0.0),
            background_ratio=1.0,
            progress=False,
        )
    )
    assert report.names == ["scratch", "stain"]
    coco = COCO(str(tmp_path / "dataset" / "annotations" / "instances_train.json"))
    by_stem = {Path(i["file_name"]).stem: i for i in coco.dataset["images"]}
    skipped = {key for key, _ in report.skipped}  # a tiny random SAM may give an empty mask
    for photo, inspection in results[1:]:
        key = next((k for k in by_stem if k.endswith(f"_{photo.name}")), None)
        if key is None:
            assert any(k.endswith(f"/{photo.name}") for k in skipped), photo.name
            assert not inspection.defect_mask().any()
            continue
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=by_stem[key]["id"]))
        union = {name: np.zeros((60, 80), bool) for name in ("scratch", "stain")}
        for annotation in annotations:
            union[coco.loadCats(annotation["category_id"])[0]["name"]] |= coco.annToMask(annotation) > 0
        painted = {name: np.zeros((60, 80), bool) for name in ("scratch", "stain")}
        # the best instance's pixels, and what it leaves of the others in pieces of 16 cells or more
        for name, part in zip(
            inspection.names,
            visible_parts(inspection.masks, 16 * (80 / 256) ** 2, inspection.names),
            strict=True,
        ):
            painted[name] |= part
        for name in union:
            assert np.array_equal(union[name], painted[name]), (photo.name, name)
    assert any(k.endswith("_good") for k in by_stem)  # the good photo is a background image


def test_anomaly_maps_are_16_bit_pngs_of_the_map(tmp_path, inspected):
    inspector, results = inspected
    write(tmp_path / "out", inspector, results, anomaly_maps=True)
    for photo, inspection in results:
        stored = cv2.imread(
            str(tmp_path / "out" / "anomaly_maps" / f"{photo.name}.png"), cv2.IMREAD_UNCHANGED
        )
        assert stored.dtype == np.uint16 and stored.shape == (60, 80)
        assert np.allclose(stored / 65535, inspection.anomaly_map(), atol=1 / 65535)
    assert cv2.imdecode(np.frombuffer(anomaly_map_png(np.full((2, 2), 2.0)), np.uint8), -1).max() == 65535


def test_anomaly_maps_need_the_probabilities(tmp_path, photos, stub_detector, tiny_sam):
    result = Inspector(stub_detector, tiny_sam)(photos / "one.png")
    with pytest.raises(ValueError, match="keep_probs"):
        with PredictionWriter(
            tmp_path / "out", class_names=["scratch", "stain"], anomaly_maps=True
        ) as writer:
            writer.add(result)
    assert not (tmp_path / "out" / "predictions.json").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("overlays", "expected"), [(0, []), (2, ["good", "lot_2__a"]), (-1, ["good", "lot_2__a", "one", "two"])]
)
def test_overlays_are_bounded(tmp_path, inspected, overlays, expected):
    inspector, results = inspected
    write(tmp_path / "out", inspector, results, overlays=overlays)
    folder = tmp_path / "out" / "overlays"
    assert sorted(p.stem for p in folder.glob("*.jpg")) == expected  # the first N photos, in order
    for name in expected:
        picture = cv2.imread(str(folder / f"{name}.jpg"))
        assert picture.shape[1] == 80 and picture.shape[0] > 60  # the photo under a title bar


def test_an_overlay_shows_boxes_masks_and_the_verdict(inspected):
    from inspection.overlays import DEFECT_BAR, GOOD_BAR, draw_overlay

    inspector, results = inspected
    (good_photo, good), (_, _), (_, _), (two_photo, two) = results
    image = cv2.imread(str(two_photo.path))
    picture = draw_overlay(image, two)
    bar = picture.shape[0] - image.shape[0]
    assert tuple(picture[1, 1]) == DEFECT_BAR and bar > 0
    assert not np.array_equal(picture[bar:], image)  # boxes and masks drawn
    good_picture = draw_overlay(cv2.imread(str(good_photo.path)), good)
    assert tuple(good_picture[1, 1]) == GOOD_BAR
    assert np.array_equal(good_picture[good_picture.shape[0] - 60 :], cv2.imread(str(good_photo.path)))


def test_json_list_file_is_atomic(tmp_path):
    target = tmp_path / "list.json"
    target.write_text("[1]\n")
    stream = JsonListFile(target)
    stream.add({"a": 1})
    assert json.loads(target.read_text()) == [1]  # the old file until close
    stream.abort()
    assert json.loads(target.read_text()) == [1] and os.listdir(tmp_path) == ["list.json"]
    stream = JsonListFile(target, head='{"x": 1, "items": [', tail="]}")
    stream.add(2)
    stream.add(3)
    stream.close()
    assert json.loads(target.read_text()) == {"x": 1, "items": [2, 3]}


def test_closing_a_json_list_file_twice_keeps_the_document(tmp_path):
    stream = JsonListFile(tmp_path / "list.json")
    stream.add({"a": 1})
    assert stream.close() == stream.close() == tmp_path / "list.json"
    assert json.loads((tmp_path / "list.json").read_text()) == [{"a": 1}]


@pytest.mark.parametrize("link", ["symlink", "hardlink", "copy"])
def test_place_photo(tmp_path, photos, link):
    target = place_photo(photos / "one.png", tmp_path / "tree" / "one.png", link)
    assert target.read_bytes() == (photos / "one.png").read_bytes()
    assert target.is_symlink() == (link == "symlink")
    place_photo(photos / "two.png", target, link)  # replaced, not refused
    assert target.read_bytes() == (photos / "two.png").read_bytes()
    assert sorted(os.listdir(tmp_path / "tree")) == ["one.png"]


def test_an_exif_rotated_photo_goes_in_upright(tmp_path, stub_detector, tiny_sam):
    from PIL import Image

    image = np.zeros((40, 60, 3), np.uint8)
    image[5:15, 10:30] = 255  # a scratch, in the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(image).save(tmp_path / "rotated.jpg", exif=exif, quality=100, subsampling=0)
    inspection = Inspector(stub_detector, tiny_sam)(tmp_path / "rotated.jpg")
    assert (inspection.height, inspection.width) == (60, 40)  # as OpenCV shows it
    write(tmp_path / "out", inspector=Inspector(stub_detector, tiny_sam), inspected=[(None, inspection)])
    copies = list((tmp_path / "out" / "masks" / "out" / "test").rglob("rotated.*"))
    assert [p.suffix for p in copies] == [".png"] and not copies[0].is_symlink()
    with Image.open(copies[0]) as upright:
        assert upright.size == (40, 60)  # what the converters read: the mask's size


def test_the_annotation_page_reads_what_the_cascade_writes(tmp_path, inspected):
    from segmentation.annotate.proposal_file import read_proposal_file

    inspector, results = inspected
    write(tmp_path / "out", inspector, results)
    proposals = read_proposal_file(tmp_path / "out" / "predictions.json")
    written = json.loads((tmp_path / "out" / "predictions.json").read_text())
    images = json.loads((tmp_path / "out" / "images.json").read_text())["images"]
    assert len(proposals.results) == len(written) > 0
    for result, entry in zip(proposals.results, written, strict=True):
        # named by images.json's categories: the detector's class of the cascade's category id
        assert result.category_name == inspector.class_names[entry["category_id"] - 1]
    assert proposals.verdicts == {image["file_name"]: image["verdict"] for image in images}


def test_an_unknown_ranking_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="rank_by must be one of box, mask, product"):
        PredictionWriter(tmp_path / "out", class_names=["scratch"], rank_by="area")
    assert not (tmp_path / "out").exists()


def test_a_folder_holding_an_earlier_runs_outputs_is_refused(tmp_path, inspected):
    # the command refused it without --overwrite, the Python writer mixed both runs' masks and overlays
    inspector, results = inspected
    write(tmp_path / "out", inspector, results, overlays=1)
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    held = r"out already holds predictions\.json, images\.json, masks, overlays of an earlier run"
    with pytest.raises(UserError, match=held):
        write(tmp_path / "out", inspector, results[:1])
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "args.yaml").write_text("conf: 0.25\n")  # the command's own file goes in first
    assert write(tmp_path / "other", inspector, results[:1]).photos == 1


@pytest.mark.parametrize("left", ["predictions.json", "overlays", "anomaly_maps"])
def test_any_one_output_of_an_earlier_run_is_refused(tmp_path, inspected, left):
    # a run stopped after its first file, or outputs cleaned by hand but for one: still two runs mixed
    inspector, results = inspected
    (tmp_path / "out").mkdir()
    if left.endswith(".json"):
        (tmp_path / "out" / left).write_text("[]\n")
    else:
        (tmp_path / "out" / left).mkdir()
    with pytest.raises(UserError, match=rf"out already holds {left} of an earlier run"):
        write(tmp_path / "out", inspector, results[:1])


def test_a_rerun_after_an_exception_is_told_the_folder_holds_a_run_that_stopped_part_way(tmp_path, inspected):
    # refused as 'an earlier run' alone, which read as a finished one: the writer had kept its photos' files
    inspector, results = inspected
    writer = PredictionWriter(tmp_path / "out", class_names=inspector.class_names)
    with pytest.raises(RuntimeError), writer:
        writer.add(results[0][1], results[0][0])
        raise RuntimeError("photo 2 failed")
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert left == ["masks", "overlays"]  # its photo's files, no JSON half-written
    stopped = r"out already holds masks, overlays of an earlier run that stopped part-way \(no predictions"
    with pytest.raises(UserError, match=stopped) as refusal:
        write(tmp_path / "out", inspector, results)
    assert str(refusal.value).endswith(
        "a PredictionWriter left by an exception keeps the files of the photos it wrote): give a new folder, "
        "or remove them first (outputs of two runs would mix)"
    )


def test_the_masks_tree_category_may_be_named_apart_from_the_folder(tmp_path, inspected):
    inspector, results = inspected
    write(tmp_path / "out", inspector, results, category="lot_7")
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == ["lot_7"]


def test_instances_count_every_instance_of_a_photo(tmp_path, inspected):
    inspector, results = inspected
    two = [(photo, inspection) for photo, inspection in results if photo.file_name == "two.png"]
    writer = write(tmp_path / "out", inspector, two)
    assert (writer.photos, writer.instances) == (1, 2)


@pytest.mark.parametrize(
    ("name", "category"),
    [("lot_7", "lot_7"), ("_lot", "_lot"), ("test", "inspection"), ("train", "inspection"),
     ("ground_truth", "inspection"), ("test_public", "inspection"), ("Test", "inspection"),
     ("TRAIN", "inspection"), (".hidden", "inspection"), ("", "inspection")],
)  # fmt: skip
def test_a_category_the_converters_would_misread_gets_the_default_name(name, category):
    assert category_name(name) == category


@pytest.mark.parametrize("name", ["lot_7", "test", "train", "ground_truth", "test_public", "Data"])
def test_the_converters_find_the_trees_category_under_its_masks_folder(tmp_path, name):
    root = tmp_path / "masks"
    (root / category_name(name) / "test" / "good").mkdir(parents=True)
    assert list_categories(root) == [category_name(name)]


def test_the_tree_names_a_photo_with_a_lower_case_suffix(tmp_path, inspected):
    _, results = inspected
    photo, inspection = next((p, i) for p, i in results if i.is_good)
    upper = tmp_path / "GOOD.PNG"
    upper.write_bytes(photo.path.read_bytes())
    tree = MaskTree(tmp_path / "masks", category="lot", class_names=["scratch", "stain"])
    tree.add(replace(inspection, path=upper), Photo(upper, "GOOD.PNG", "GOOD", 1))
    assert [p.name for p in (tmp_path / "masks" / "lot" / "test" / "good").iterdir()] == ["GOOD.png"]


def test_an_unknown_link_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="link must be one of symlink, hardlink, copy"):
        MaskTree(tmp_path, category="lot", class_names=["scratch"], link="move")


def test_a_symlink_to_a_relative_source_points_at_the_photo(tmp_path, photos, monkeypatch):
    monkeypatch.chdir(photos.parent)
    target = place_photo(Path(photos.name) / "one.png", Path("tree") / "one.png", "symlink")
    assert target.is_symlink() and target.read_bytes() == (photos / "one.png").read_bytes()


def test_a_hard_link_that_fails_falls_back_to_a_copy(tmp_path, photos, monkeypatch):
    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    target = place_photo(photos / "one.png", tmp_path / "tree" / "one.png", "hardlink")
    assert not target.is_symlink() and target.read_bytes() == (photos / "one.png").read_bytes()
    assert os.listdir(tmp_path / "tree") == ["one.png"]


def test_photos_that_hardlink_copied_are_noted_once(tmp_path, inspected, monkeypatch, capsys):
    # --link hardlink fell back to copies without a word, and args.yaml said hardlink
    _, results = inspected
    for folder in ("linked", "copied"):
        if folder == "copied":  # another file system
            monkeypatch.setattr(os, "link", lambda *args: (_ for _ in ()).throw(OSError(errno.EXDEV, "x")))
        tree = MaskTree(tmp_path / folder, category="lot", class_names=["scratch", "stain"], link="hardlink")
        for photo, inspection in results:
            tree.add(inspection, photo)
        tree.close()
    [first, *_] = [photo.path for photo, _ in results]
    assert capsys.readouterr().err == (
        f"note: {len(results)} images were copied into {tmp_path / 'copied' / 'lot'}, not hard-linked (e.g. "
        f"{first}): the file system refused the link (another file system than the images', or one without "
        "hard links); --link symlink saves the space\n"
    )  # and none from the linked tree


def test_a_hardlinked_photos_sha256_is_not_read_again_after_its_link(tmp_path, inspected, monkeypatch):
    """--link hardlink: images.json's sha256 was taken after the photo's hard link into the masks tree,
    which changes the photo's ctime (part of sha256_file's identity), so each photo was read whole again
    though the cascade had hashed it."""
    import time

    from common import io as common_io

    inspector, results = inspected
    later = time.time_ns() + 60 * 10**9  # every photo settled (its ctime cannot be set back)
    monkeypatch.setattr(time, "time_ns", lambda: later)
    for photo, _ in results:
        common_io.sha256_file(photo.path)  # the cascade's (the embedding cache's) digest, remembered
    reads = []

    def counted_open(file, *args, **kwargs):  # noqa: ANN001, ANN202
        reads.append(str(file))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(common_io, "open", counted_open, raising=False)  # sha256_file's whole-file read
    write(tmp_path / "out", inspector, results, link="hardlink", overlays=0)
    assert [photo.path.stat().st_nlink for photo, _ in results] == [2] * len(results)  # hard-linked
    assert [path for path in reads if path in {str(photo.path) for photo, _ in results}] == []


def test_the_top_boxs_label_is_drawn_over_lower_ones_at_the_same_corner():
    """Boxes sharing a corner (whole-photo ones are common): the top box's label is the one seen."""
    from inspection.overlays import class_color, draw_overlay
    from inspection.result import Inspection

    image = np.full((60, 80, 3), 128, np.uint8)
    masks = np.zeros((2, 60, 80), bool)
    inspection = Inspection(
        path=Path("photo.png"),
        width=80,
        height=60,
        boxes=np.array([[0, 0, 80, 60], [0, 0, 40, 30]], np.float32),
        scores=np.array([0.99, 0.3], np.float32),  # highest first
        classes=np.array([0, 1]),
        names=["scratch", "stain"],
        masks=masks,
        mask_scores=np.array([0.9, 0.9], np.float32),
        verdict="scratch",
        score=0.99,
    )
    picture = draw_overlay(image, inspection)
    bar = picture.shape[0] - image.shape[0]
    assert tuple(picture[bar, 0]) == class_color(0)  # the top box's label, not the 0.3 box's


def test_the_rim_a_better_instance_of_the_same_class_leaves_is_kept_as_part_of_it(tmp_path, inspected):
    inspector, results = inspected
    photo, inspection = results[3]  # two instances
    best, other = np.zeros((2, 60, 80), bool)
    best[20:40, 20:40] = True
    other[30:40, 18:40] = True  # what it leaves: a 20-px rim, under 250 cells (24.4 px on 80 x 60)
    tree = MaskTree(tmp_path / "same", category="lot", class_names=inspector.class_names, speck_cells=250)
    same = replace(inspection, names=["stain", "stain"], masks=np.stack([best, other]))
    mask = cv2.imread(str(tree.add(same, photo)), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask == 254, best | other)  # one stain when converted: the rim stays
    tree = MaskTree(tmp_path / "apart", category="lot", class_names=inspector.class_names, speck_cells=250)
    apart = replace(inspection, names=["scratch", "stain"], masks=np.stack([best, other]))
    mask = cv2.imread(str(tree.add(apart, photo)), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask == 255, best) and not (mask == 254).any()  # a stain of 20 px of its own


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("crack/scratch", "crack_scratch"),
        ("../../escape", "___.._escape"),
        (".dent", "_dent"),
        # folders Windows cannot hold: 'scratch.' is 'scratch' there, 'con' a device
        ("scratch.", "scratch_"),
        ("CON", "CON_"),
        ("lpt1.deep", "lpt1_.deep"),
        ("a: b?", "a_ b_"),
        ("combined", "combined_2"),  # the folder of photos with several classes
        ("big scratch", "big scratch"),  # safe names stay as they were
        ("傷", "傷"),
    ],
)
def test_a_class_name_that_is_no_folder_name_stays_one_folder_of_the_tree(tmp_path, name, folder):
    # "crack/scratch" nested ground_truth/crack/scratch/; "../../escape" wrote outside the category
    photo_path = tmp_path / "in" / "a.png"
    photo_path.parent.mkdir()
    cv2.imwrite(str(photo_path), np.zeros((8, 8, 3), np.uint8))
    mask = np.zeros((1, 8, 8), bool)
    mask[0, 2:5, 2:5] = True
    inspection = Inspection(
        path=photo_path, width=8, height=8, boxes=np.array([[2.0, 2, 5, 5]]), scores=np.array([0.9]),
        classes=np.array([0]), names=[name], masks=mask, mask_scores=np.array([0.9]), verdict=name, score=0.9,
    )  # fmt: skip
    tree = MaskTree(tmp_path / "masks", category="lot", class_names=[name], speck_cells=0)
    written = tree.add(inspection, Photo(photo_path, "a.png", "a", 1))
    assert written == tmp_path / "masks" / "lot" / "ground_truth" / folder / "a_mask.png"
    assert (tmp_path / "masks" / "lot" / "test" / folder / "a.png").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "masks"]  # nothing written beside


def test_classes_of_one_folder_name_get_folders_of_their_own_named_in_images_json(tmp_path):
    # 'crack/scratch' and 'crack_scratch', 'Dent' and 'dent' (one folder on macOS and Windows) shared
    # folders; which folder is which class is in images.json where it is not the class's name
    names = ["crack/scratch", "crack_scratch", "Dent", "dent", "con", "Good"]
    tree = MaskTree(tmp_path / "masks", category="lot", class_names=names)
    assert tree.folders == {
        "crack/scratch": "crack_scratch_2",
        "crack_scratch": "crack_scratch",
        "Dent": "Dent",
        "dent": "dent_2",
        "con": "con_",
        "Good": "Good_2",  # a defect photo in test/good read as a good one
    }
    with PredictionWriter(tmp_path / "out", class_names=names):
        pass
    categories = json.loads((tmp_path / "out" / "images.json").read_text())["categories"]
    assert [c.get("folder") for c in categories] == [
        "crack_scratch_2",
        None,
        None,
        "dent_2",
        "con_",
        "Good_2",
    ]


def test_the_masks_tree_paints_the_visible_parts_without_an_array_of_them(tmp_path, photo_painter):
    import tracemalloc

    path = photo_painter(tmp_path / "p.png", size=(128, 128))
    masks = np.zeros((64, 128, 128), bool)
    for index in range(len(masks)):  # overlapping squares, each shifted a pixel: rims a better one leaves
        masks[index, 10 + index : 60 + index, 10 : 60 + index] = True
    inspection = Inspection(
        path=path,
        width=128,
        height=128,
        boxes=np.tile([10.0, 10.0, 100.0, 100.0], (64, 1)),
        scores=np.linspace(0.9, 0.5, 64),
        classes=np.arange(64) % 2,
        names=[("scratch", "stain")[i % 2] for i in range(64)],
        masks=masks,
        mask_scores=np.ones(64, np.float32),
        verdict="scratch",
        score=0.9,
    )
    photo = Photo(path, "p.png", "p", 1)
    tree = MaskTree(tmp_path / "masks", category="lot", class_names=["scratch", "stain"])
    MaskTree(tmp_path / "warm", category="lot", class_names=["scratch", "stain"]).add(inspection, photo)
    tracemalloc.start()
    try:
        written = tree.add(inspection, photo)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    mask = cv2.imread(str(written), cv2.IMREAD_UNCHANGED)
    parts = visible_parts(masks, 16 * (128 / 256) ** 2, inspection.names)
    assert np.array_equal(mask == 255, parts[0::2].any(0)) and np.array_equal(mask == 254, parts[1::2].any(0))
    assert peak < 0.5 * masks.nbytes  # a few (H, W) masks' worth; the (N, H, W) parts were all of it
