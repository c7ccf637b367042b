"""``inspection.evaluate``: the cascade scored against a converted split, beside the oracle, in one report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import inspection.evaluate as evaluate_module
from anomaly.run import fit_run
from common.errors import UserError
from common.extras import package_versions
from common.trained_images import record_trained_images
from converters.convert import ConvertConfig, convert
from inspection.evaluate import caption, check_classes, evaluate_split, main
from inspection.inspector import Inspector
from inspection.outputs import RANK_BY
from inspection.scoring import ImageRecord
from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt
from segmentation.data import SegmentationImage, SegmentationSplit, load_split
from segmentation.finetuned import save_decoder
from tests.anomaly.conftest import TINY
from tests.conftest import interrupting
from tests.inspection.conftest import CLASS_COLORS, StubDetector, in_box_pixels, paint_photo
from tests.segmentation.conftest import build_tiny_sam

#: Squares ``(class, x1, y1, x2, y2)`` painted on each defect photo of the category.
DEFECTS = {
    "scratch": [[(0, 10, 10, 30, 25)], [(0, 40, 5, 60, 20)], [(0, 5, 30, 25, 50)], [(0, 50, 35, 70, 55)]],
    "stain": [[(1, 10, 10, 30, 30)], [(1, 45, 20, 65, 40)], [(1, 20, 30, 40, 50)], [(1, 5, 5, 25, 25)]],
}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A converted data set (YOLO + COCO) of painted squares: the stub detector's boxes are exact."""
    category = tmp_path / "mvtec" / "widget"
    for i in range(6):
        paint_photo(category / "train" / "good" / f"{i:03d}.png", seed=100 + i)
        paint_photo(category / "test" / "good" / f"{i:03d}.png", seed=200 + i)
    for defect, photos in DEFECTS.items():
        for i, squares in enumerate(photos):
            paint_photo(category / "test" / defect / f"{i:03d}.png", squares, seed=300 + i)
            mask = np.zeros((60, 80), np.uint8)
            for _, x1, y1, x2, y2 in squares:
                mask[y1:y2, x1:x2] = 255
            (category / "ground_truth" / defect).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(category / "ground_truth" / defect / f"{i:03d}_mask.png"), mask)
    out = tmp_path / "data"
    convert(
        ConvertConfig(
            root=category,
            out=out,
            formats=("yolo", "coco"),
            ratios=(0.5, 0.0, 0.5),
            progress=False,
            link="copy",
        )
    )
    return out


@pytest.fixture
def inspector() -> Inspector:
    return Inspector(StubDetector(), build_tiny_sam(), keep_probs=True)


def test_ground_truth_boxes_as_detections_score_as_the_oracle(dataset, inspector) -> None:
    split = load_split(dataset, "test")
    figures, gallery = evaluate_split(inspector, split, progress=False)
    # The stub's boxes are the ground-truth boxes, so the cascade's masks are the oracle's.
    assert figures["mask"]["mask"]["AP"] == pytest.approx(figures["mask_oracle"]["AP"])
    assert figures["mask"]["mask"]["AP50"] == pytest.approx(figures["mask_oracle"]["AP50"])
    assert figures["box"]["AP50"] == pytest.approx(1.0) and figures["box"]["AP"] == pytest.approx(1.0)
    assert figures["detections"] == figures["instances"] == 4
    level = figures["image_level"]
    assert (
        level["accuracy"] == 1.0 and level["auroc"] == 1.0 and level["labels"] == ["good", "scratch", "stain"]
    )
    assert figures["per_image"]["good"]["iou"] == 1.0  # good photos left clean
    defect = figures["per_image"]["defect"]
    assert defect["oracle_iou"] == pytest.approx(defect["iou"])  # the same masks, scored twice
    assert defect["oracle_boundary_iou"] == pytest.approx(defect["boundary_iou"])
    # Every ranking is scored; the headline is the one asked for (default box, predictions.json's score).
    assert figures["rank_by"] == "box" and set(figures["mask"]) == set(RANK_BY)
    assert 0.0 <= figures["pixel"]["auroc"] <= 1.0 and 0.0 <= figures["pixel"]["aupro"] <= 1.0
    assert len(gallery) == figures["images"] and all(item.jpeg[:2] == b"\xff\xd8" for item in gallery)


def test_the_image_auroc_does_not_move_with_conf(dataset) -> None:
    # the stub scores scratches 0.9 and stains 0.6: at conf 0.7 no stain box is kept and the stain photos
    # were scored 0 as the clean ones are, so the image AUROC fell with --conf (detection.evaluate's does not)
    split = load_split(dataset, "test")
    loose, strict = (
        evaluate_split(Inspector(StubDetector(), build_tiny_sam(), keep_probs=True, conf=conf), split,
                       progress=False)[0]
        for conf in (0.25, 0.7)
    )  # fmt: skip
    assert loose["image_level"]["auroc"] == strict["image_level"]["auroc"] == 1.0
    assert strict["image_level"]["accuracy"] < loose["image_level"]["accuracy"] == 1.0  # the verdicts move
    assert strict["detections"] < loose["detections"]  # and only boxes above conf go to SAM
    scores = {photo["truth"]: photo["score"] for photo in strict["photos"]}
    assert scores == {"good": 0.0, "scratch": pytest.approx(0.9), "stain": pytest.approx(0.6)}


def test_the_pixel_metrics_have_a_bar_of_their_own(dataset, inspector, capsys) -> None:
    # after the per-photo bar they ran without a word: 27 s on 100 photos of 1024 x 1024 at the time
    split = load_split(dataset, "test")
    evaluate_split(inspector, split, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and f"pixel metrics of {len(split.images)} photos" in err and "AUPRO" in err
    evaluate_split(inspector, split, progress=False)  # --no-progress
    assert capsys.readouterr() == ("", "")


def test_false_positives_on_good_photos_cost_per_image_iou(dataset, inspector, tmp_path) -> None:
    split = load_split(dataset, "test")
    good = next(image for image in split.images if not image.annotations)
    photo = cv2.imread(str(good.path))
    photo[0:10, 0:10] = CLASS_COLORS[0]  # something the stub calls a scratch, on a good photo
    cv2.imwrite(str(good.path), photo)
    figures, _ = evaluate_split(inspector, split, progress=False)
    assert figures["per_image"]["good"]["iou"] < 1.0
    assert figures["image_level"]["accuracy"] < 1.0


def test_gallery_captions_give_the_oracle_iou_on_defect_images_only() -> None:
    record = ImageRecord(1, "d.png", "stain", "good", 0.1, 0.0, 0.0, 0.0, 0.91, 0.8, n_true=2, n_found=0)
    assert caption(record) == (
        "d.png: true stain, called good (top box 0.10); IoU 0.00 (from the true boxes 0.91); 0 found, 2 true"
    )
    good = ImageRecord(2, "g.png", "good", "good", 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, n_true=0, n_found=0)
    assert caption(good) == "g.png: true good, called good (top box 0.00); IoU 1.00; 0 found, 0 true"


def test_a_gallery_caption_says_whose_score_it_gives() -> None:
    # 'called good (0.04)' read as confidence in 'good' (until 2026-12-07): it is the top box's, below the
    # threshold; a photo called anomaly (--anomaly-run) scores its region's, not a box's
    missed = ImageRecord(1, "d.png", "stain", "good", 0.04, 0.0, 0.0, 0.0, 0.9, 0.8, n_true=1, n_found=0)
    assert "called good (top box 0.04);" in caption(missed)
    found = ImageRecord(2, "s.png", "stain", "stain", 0.87, 0.7, 0.7, 0.7, 0.9, 0.8, n_true=1, n_found=1)
    assert "called stain (top box 0.87);" in caption(found)
    region = ImageRecord(3, "a.png", "stain", "anomaly", 0.25, 0.5, 0.5, 0.5, 0.9, 0.8, n_true=1, n_found=1)
    assert "called anomaly (anomaly region 0.25);" in caption(region)


def test_a_photo_of_another_size_than_its_coco_entry_is_refused(dataset, inspector) -> None:
    split = load_split(dataset, "test")
    image = next(image for image in split.images if image.annotations)
    photo = cv2.imread(str(image.path))
    cv2.imwrite(str(image.path), cv2.resize(photo, (photo.shape[1] * 2, photo.shape[0] * 2)))
    # not numpy's "could not broadcast" while scoring
    with pytest.raises(
        UserError, match=rf"{image.path.name} is 160x120 px, but .*instances_test.json says 80x60"
    ):
        evaluate_split(inspector, split, progress=False)


def test_a_detector_of_other_classes_is_refused(dataset) -> None:
    inspector = Inspector(StubDetector(["dent", "cut"]), build_tiny_sam(), keep_probs=True)
    with pytest.raises(UserError, match=r"the detector's classes \['dent', 'cut'\] are not the categories"):
        evaluate_split(inspector, load_split(dataset, "test"), progress=False)
    coco80 = [f"thing{i}" for i in range(80)]  # a detector before training: eight named, not eighty
    with pytest.raises(UserError, match=r"classes \['thing0', .*, 'thing7' and 72 more\] are not the"):
        check_classes(load_split(dataset, "test"), coco80)


def test_the_detector_classes_are_checked_in_category_id_order(tmp_path: Path) -> None:
    # class i is category id i + 1 whatever order the COCO file lists its categories in; the same
    # names in another order would score every box as the other class
    split = SegmentationSplit("test", [], {2: "cut", 1: "dent"}, tmp_path / "instances_test.json")
    check_classes(split, ["dent", "cut"])
    expected = r"classes \['cut', 'dent'\] are not the categories \['dent', 'cut'\] of .*instances_test\.json"
    with pytest.raises(UserError, match=expected):
        check_classes(split, ["cut", "dent"])


def test_a_detector_of_other_classes_is_refused_before_sam_loads(cli, tmp_path, capsys, monkeypatch) -> None:
    # SAM ViT-H takes a minute and 2.5 GB to load on a CPU: a wrong detector is found before
    monkeypatch.setattr(evaluate_module, "load_detector", lambda weights: StubDetector(["dent", "cut"]))
    monkeypatch.setattr(evaluate_module, "load_sam_checkpoint", lambda *a, **k: pytest.fail("SAM loaded"))
    assert cli("--out", tmp_path / "report") == 2
    assert capsys.readouterr().err.startswith("error: the detector's classes ['dent', 'cut'] are not the")
    assert not (tmp_path / "report").exists()


def renumber_second_category(coco: dict) -> None:
    for entry in [*coco["categories"], *coco["annotations"]]:
        key = "id" if "name" in entry else "category_id"
        entry[key] = 3 if entry[key] == 2 else entry[key]


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda coco: coco["annotations"][0].update(category_id=7), "has category_id 7, not one of the"),
        # class id = category id - 1
        (
            renumber_second_category,
            r"are numbered \[1, 3\], not 1..N .*: convert the data set with converters",
        ),
    ],
)
def test_a_hand_edited_coco_file_is_one_line_before_the_models_run(
    cli, dataset, tmp_path, capsys, monkeypatch, edit, fragment
) -> None:
    # both failed with an IndexError traceback inside scoring, after every photo had been inspected
    path = dataset / "annotations" / "instances_test.json"
    coco = json.loads(path.read_text())
    edit(coco)
    path.write_text(json.dumps(coco))
    monkeypatch.setattr(evaluate_module, "load_sam_checkpoint", lambda *a, **k: pytest.fail("SAM loaded"))
    assert cli("--out", tmp_path / "report") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and re.search(fragment, err)
    assert str(path) in err and not (tmp_path / "report").exists()


@pytest.fixture
def cli(dataset, tiny_registry, tmp_path, monkeypatch):
    """``main`` with the stub detector and the tiny decoder on its base weights."""
    detector = tmp_path / "best.pt"
    detector.write_bytes(b"stub")
    monkeypatch.setattr(evaluate_module, "load_detector", lambda weights: StubDetector())
    decoder = save_decoder(build_tiny_sam(seed=1), tmp_path / "sam" / "decoder.pt", model="tiny")

    def run(*args: object, progress: bool = False) -> int:
        base = [
            "--detector",
            detector,
            "--sam",
            decoder,
            "--base-checkpoint",
            tiny_registry,
            "--data",
            dataset,
        ]
        base += ["--cache-dir", tmp_path / "cache", *([] if progress else ["--no-progress"])]
        return main([str(a) for a in (*base, *args)])

    return run


def test_a_detector_trained_on_whole_photos_gets_no_note_where_each_tile_is_a_whole_photo(
    cli, tmp_path, monkeypatch, capsys
) -> None:
    # --tile 80 on the split's 80 x 60 photos scores each whole, as the detector learnt them: the note was a
    # false alarm
    data = tmp_path / "set" / "data.yaml"  # the whole photos it was trained on
    data.parent.mkdir()
    data.write_text("names: {0: scratch, 1: stain}\n")
    monkeypatch.setattr(StubDetector, "overrides", {"data": str(data)}, raising=False)
    assert cli("--out", tmp_path / "whole", "--tile", "80") == 0
    assert "was trained on" not in capsys.readouterr().err
    assert cli("--out", tmp_path / "cut", "--tile", "64") == 0
    err = capsys.readouterr().err
    assert f"was trained on whole photos ({data}); it runs here on 64-px tiles" in err
    assert err.count("was trained on") == 1  # the command's; its Inspector, told so, gives none of its own


def test_the_longest_side_weighs_the_conf_from_split_too(tmp_path) -> None:
    # the detector runs on the --conf-from split's photos as well
    def split(name: str, *sizes: tuple[int, int]) -> SegmentationSplit:
        images = [SegmentationImage(i, tmp_path / f"{i}.png", w, h) for i, (w, h) in enumerate(sizes, 1)]
        return SegmentationSplit(name, images, {1: "scratch"}, tmp_path / f"instances_{name}.json")

    assert evaluate_module.longest_side(split("test", (80, 60), (40, 90)), None) == 90
    assert evaluate_module.longest_side(split("test", (80, 60)), split("val", (120, 100))) == 120


def test_a_ctrl_c_says_how_many_embeddings_the_cache_kept(cli, tmp_path, capsys, monkeypatch) -> None:
    # it printed 'interrupted' alone, as segmentation.embed did: whether the encoded photos were lost
    import segmentation.embeddings

    interrupted_on_third, _ = interrupting(segmentation.embeddings.embed_images, after=2)
    with monkeypatch.context() as patch:
        patch.setattr(segmentation.embeddings, "embed_images", interrupted_on_third)
        assert cli("--out", tmp_path / "report") == 130
    (folder,) = [path for path in (tmp_path / "cache").iterdir() if path.is_dir()]
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"stopped: 2 embeddings encoded by this run are kept in the cache {folder}; the same command again "
        "reuses them",
        "interrupted",
    ]
    assert len(list(folder.glob("*.pt"))) == 2 and not (tmp_path / "report").exists()


def test_a_ctrl_c_of_an_overwrite_says_the_out_folder_holds_the_earlier_evaluation(
    cli, tmp_path, capsys, monkeypatch
) -> None:
    # it printed 'interrupted' alone: the earlier report, left whole, read as this run's
    report = tmp_path / "report"
    assert cli("--out", report) == 0
    capsys.readouterr()

    def stop(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_module, "evaluate_split", stop)
    assert cli("--out", report, "--overwrite") == 130
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"stopped: {report} is replaced only once the report is complete, so nothing of this run was kept "
        "there; what it holds is an earlier run's",
        "interrupted",
    ]


def test_a_detector_of_other_classes_is_refused_before_conf_is_picked(
    cli, tmp_path, capsys, monkeypatch
) -> None:
    # --conf-from runs the detector over a whole split: a wrong detector is refused before that
    monkeypatch.setattr(evaluate_module, "load_detector", lambda weights: StubDetector(["dent", "cut"]))

    def pick_conf(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("conf picked with a detector of other classes")

    monkeypatch.setattr(evaluate_module, "pick_conf", pick_conf)
    assert cli("--out", tmp_path / "report", "--conf-from", "train") == 2
    assert "error: the detector's classes ['dent', 'cut'] are not the categories" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_a_defect_photo_turned_by_an_exif_tag_is_refused_before_the_models_run(
    cli, dataset, tmp_path, capsys, monkeypatch
) -> None:
    # OpenCV reads it turned, its masks stay as stored: at orientation 3 (180 degrees) the size check
    # passes and it was scored on misplaced masks without a word. A good photo turned is harmless.
    from PIL import Image

    split = load_split(dataset, "test")
    defect = next(image for image in split.images if image.annotations)
    good = next(image for image in split.images if not image.annotations)
    for image in (defect, good):
        photo = Image.open(image.path)
        exif = photo.getexif()
        exif[0x0112] = 3
        photo.save(image.path, exif=exif)
    monkeypatch.setattr(evaluate_module, "load_sam_checkpoint", lambda *a, **k: pytest.fail("SAM loaded"))
    assert cli("--out", tmp_path / "report") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {defect.path} has an EXIF orientation tag: OpenCV and ultralytics turn it")
    assert err.count("\n") == 1 and not (tmp_path / "report").exists()


def test_the_command_writes_one_report(cli, tmp_path, capsys) -> None:
    from pycocotools.coco import COCO

    out = tmp_path / "report"
    assert cli("--out", out, "--gallery", "2") == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.html'}" in printed and "mask AP end to end" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["model"] == "tiny" and metrics["images"] == 6  # 4 defect + 2 good
    assert metrics["settings"]["mask_iou"] == 0.7 and metrics["settings"]["duplicate_masks_dropped"] == 0
    assert metrics["versions"] == package_versions()  # what its figures depend on (none recorded before)
    photos = metrics["photos"]  # every photo's call and IoUs, as the list of photos called wrong uses them
    assert len(photos) == 6 and {p["truth"] for p in photos} == {"good", "scratch", "stain"}
    assert all(set(p) >= {"file_name", "verdict", "score", "iou", "oracle_iou"} for p in photos)
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and page.count("data:image/jpeg;base64,") == 4
    assert 'src="http' not in page and "<link" not in page  # self-contained
    report = (out / "report.md").read_text()
    assert "| **all** |" in report and "| per-image IoU / Dice / boundary IoU, defect images |" in report
    truth = COCO(str(tmp_path / "data" / "annotations" / "instances_test.json"))
    assert len(truth.loadRes(str(out / "predictions.json")).getAnnIds()) == 4
    info = json.loads((out / "images.json").read_text())["info"]
    assert info["description"] == "inspection.evaluate" and info["settings"]["model"] == "tiny"


def test_bad_input_is_one_line(cli, tmp_path, capsys) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "report.md").write_text("an earlier run")
    assert cli("--out", tmp_path / "taken") == 2
    assert "output folder exists" in capsys.readouterr().err
    assert cli("--out", tmp_path / "r", "--split", "val") == 2  # converted with no val images
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_data_may_name_the_converters_data_yaml_and_is_recorded_as_its_folder(
    cli, dataset, tmp_path, capsys
) -> None:
    # it was refused ('is a file: pass the data set folder'): users copy the path they trained with
    quick = ("--gallery", "0", "--overlays", "0")
    assert cli("--data", dataset / "data.yaml", "--out", tmp_path / "yaml", *quick) == 0
    assert cli("--out", tmp_path / "folder", *quick) == 0
    yaml_run, folder_run = (
        json.loads((tmp_path / n / "metrics.json").read_text())["settings"] for n in ("yaml", "folder")
    )
    assert yaml_run["data"] == folder_run["data"] == str(dataset)
    (tmp_path / "config.yaml").write_text("epochs: 1\n")
    capsys.readouterr()
    assert cli("--data", tmp_path / "config.yaml", "--out", tmp_path / "other") == 2
    err = capsys.readouterr().err
    assert err == f"error: --data {tmp_path / 'config.yaml'} is a YAML file, not a data set folder the " + (
        "converters wrote (or the data.yaml in one)\n"
    )
    assert not (tmp_path / "other").exists()


def test_conf_from_val_picks_the_threshold_that_calls_every_defect(cli, dataset, tmp_path, capsys) -> None:
    # The stub scores stains 0.6: at --conf 0.7 they are called good; picked on val, they are found.
    data = tmp_path / "with_val"
    convert(
        ConvertConfig(
            root=tmp_path / "mvtec" / "widget",
            out=data,
            formats=("yolo", "coco"),
            ratios=(0.4, 0.3, 0.3),
            progress=False,
            link="copy",
        )
    )
    assert cli("--data", data, "--out", tmp_path / "fixed", "--conf", "0.7") == 0
    fixed = json.loads((tmp_path / "fixed" / "metrics.json").read_text())
    printed = capsys.readouterr().out
    assert "at conf 0.700\n" in printed and "picked" not in printed  # given, not picked: no note
    assert cli("--data", data, "--out", tmp_path / "picked", "--conf", "0.7", "--conf-from", "val") == 0
    printed, err = capsys.readouterr()
    assert "warning: --conf-from" not in err
    picked = json.loads((tmp_path / "picked" / "metrics.json").read_text())
    assert fixed["image_level"]["accuracy"] < 1.0 and fixed["image_level"]["conf"] == 0.7
    assert picked["image_level"]["accuracy"] == 1.0
    assert evaluate_module.PICK_FLOOR <= picked["image_level"]["conf"] < 0.6
    assert picked["settings"]["conf_from"] == "val" and picked["settings"]["conf_picked_accuracy"] == 1.0
    conf = picked["image_level"]["conf"]
    # the accuracy the pick was made on was in the report alone
    assert f"(picked on val, accuracy 1.000 there: pass --conf {conf:.6g} to inspection.predict)" in printed
    assert "picked on the val split" in (tmp_path / "picked" / "report.md").read_text()
    # picked on the detector's own train photos: it said nothing of that
    assert cli("--data", data, "--out", tmp_path / "on_train", "--conf-from", "train") == 0
    printed, err = capsys.readouterr()
    assert err.startswith(
        "warning: --conf-from train picks the threshold on the photos the detector was trained on"
    )
    # the summary told them to pass that threshold to inspection.predict, beside the warning's 'pick on val'
    assert re.search(r"\(picked on train, accuracy [\d.]+ there, warned of above: pick it on val\)", printed)
    assert "pass --conf" not in printed


def conf_figures() -> dict:
    """:func:`inspection.evaluate.summary`'s figures of one photo, at image-level conf 0.4811."""
    return {
        "rank_by": "box", "images": 1, "defect_images": 1, "instances": 1, "detections": 1,
        "box": {"AP50": 0.5}, "mask": {"box": {"AP": 0.4}}, "mask_any_class": {"box": {"AP": 0.4}},
        "mask_oracle": {"AP": 0.6}, "pixel": {"auroc": 0.9, "aupro": 0.8},
        "per_image": {"all": {"iou": 0.7}, "defect": {"iou": 0.6, "oracle_iou": 0.8, "boundary_iou": 0.5}},
        "image_level": {"conf": 0.4811, "accuracy": 1.0, "auroc": 1.0},
    }  # fmt: skip


def test_a_picked_conf_is_printed_with_the_detection_flags_it_needs(tmp_path) -> None:
    from inspection.evaluate import EvaluateOptions, detection_flags, summary

    # a conf picked on tiles told the user to pass only --conf: the whole-photo scores differ
    options = EvaluateOptions(detector=tmp_path / "best.pt", data=tmp_path, out=tmp_path / "out", tile=256)
    assert detection_flags(options) == " --tile 256"
    assert detection_flags(EvaluateOptions(detector=Path("d"), data=tmp_path, out=tmp_path)) == ""
    given = EvaluateOptions(detector=Path("d"), data=tmp_path, out=tmp_path, imgsz=512, tile=128,
                            tile_overlap=0.3, iou=0.5, max_det=50)  # fmt: skip
    assert detection_flags(given) == " --imgsz 512 --tile 128 --tile-overlap 0.3 --iou 0.5 --max-det 50"
    figures = conf_figures()
    text = summary(figures, tmp_path, "val", flags=detection_flags(options))
    assert "(picked on val: pass --conf 0.4811 --tile 256 to inspection.predict)" in text


def test_a_picked_conf_is_printed_with_its_accuracy_there_the_detectors_alone_with_regions(tmp_path) -> None:
    from inspection.evaluate import summary

    # the summary gave the picked conf without the accuracy it was picked on (the report alone had it);
    # with --anomaly-run that accuracy is the detector's alone: the pick runs no PatchCore
    figures = {**conf_figures(), "settings": {"conf_picked_accuracy": 0.9167}}
    plain = "(picked on val, accuracy 0.917 there: pass --conf 0.4811 to inspection.predict)"
    assert plain in summary(figures, tmp_path, "val")
    figures["settings"]["anomaly_regions"] = {"run": "runs/anomaly/widget", "threshold": 0.5}
    alone = "(picked on val, accuracy 0.917 there, the detector's alone: pass --conf 0.4811 to "
    assert alone in summary(figures, tmp_path, "val")
    assert "picked" not in summary(figures, Path("out"))  # given, not picked


def test_the_printed_summary_gives_a_dash_where_the_report_does(tmp_path) -> None:
    from inspection.evaluate import summary

    nan = float("nan")  # a split without good photos: no image AUROC, no good-image IoU
    figures = {
        "rank_by": "box", "images": 3, "defect_images": 3, "instances": 3, "detections": 3,
        "box": {"AP50": 0.5}, "mask": {"box": {"AP": 0.4}}, "mask_any_class": {"box": {"AP": 0.4}},
        "mask_oracle": {"AP": 0.6}, "pixel": {"auroc": 0.9, "aupro": 0.8},
        "per_image": {"all": {"iou": 0.7}, "defect": {"iou": 0.7, "oracle_iou": 0.8, "boundary_iou": 0.5}},
        "image_level": {"conf": 0.25, "accuracy": 1.0, "auroc": nan},
    }  # fmt: skip
    text = summary(figures, tmp_path)
    assert "image AUROC - (top box" in text and "nan" not in text  # it printed "image AUROC nan"


def test_the_printed_conf_goes_with_the_accuracy_alone_not_the_image_auroc(tmp_path) -> None:
    from inspection.evaluate import summary

    # the line read "defect-type accuracy 1.000  image AUROC 1.000  at conf 0.481", as if the image AUROC were
    # taken at that conf; it is each photo's top box down to 0.001, whatever --conf (a line of its own)
    lines = summary(conf_figures(), tmp_path, "val").splitlines()
    assert "  defect-type accuracy 1.000 at conf 0.481 (picked on val: pass --conf 0.4811 " in lines[4]
    assert lines[5] == "  image AUROC 1.000 (top box score down to 0.001, whatever the conf)"
    assert "conf 0.481\n  image AUROC 1.000 (top box" in summary(conf_figures(), tmp_path)


def test_a_split_without_good_photos_writes_strict_json_that_reads_back_to_the_same_report(
    cli, tmp_path, capsys, strict_json
) -> None:
    from inspection.evaluate import summary
    from inspection.report import markdown

    data = tmp_path / "no_good"  # no good photo: image AUROC and good-photo IoU are undefined
    root = tmp_path / "mvtec" / "widget"
    convert(ConvertConfig(root=root, out=data, formats=("yolo", "coco"), ratios=(0.5, 0.0, 0.5),
                          background_ratio=0.0, progress=False, link="copy"))  # fmt: skip
    out = tmp_path / "report"
    assert cli("--data", data, "--out", out) == 0
    printed = capsys.readouterr().out
    metrics = strict_json(out / "metrics.json")  # it held a bare NaN, which jq and JSON.parse refuse
    assert metrics["image_level"]["auroc"] is None and metrics["defect_images"] == metrics["images"]
    strict_json(out / "images.json"), strict_json(out / "predictions.json")
    settings = metrics.pop("settings")
    assert markdown(metrics, settings) == (out / "report.md").read_text()  # null reads as NaN did: "-"
    assert "image AUROC - (top box" in printed and summary(metrics, out) in printed


def test_a_split_of_good_photos_only_leaves_every_ap_undefined_not_zero(
    cli, dataset, tmp_path, capsys, strict_json
) -> None:
    path = dataset / "annotations" / "instances_test.json"
    coco = json.loads(path.read_text())
    defective = {a["image_id"] for a in coco["annotations"]}
    coco.update(images=[i for i in coco["images"] if i["id"] not in defective], annotations=[])
    path.write_text(json.dumps(coco))
    assert cli("--out", tmp_path / "report") == 0
    metrics = strict_json(tmp_path / "report" / "metrics.json")
    assert metrics["instances"] == 0 and metrics["images"] == len(coco["images"]) > 0
    tables = [
        metrics["box"],
        metrics["mask_oracle"],
        *metrics["mask"].values(),
        *metrics["mask_any_class"].values(),
    ]
    assert all(t["AP"] is None and t["AP50"] is None for t in tables)  # each read 0.000
    assert (
        "box AP50 -  mask AP end to end - (ranked by box; any defect type -) vs oracle -"
        in capsys.readouterr().out
    )


def test_a_picked_conf_is_recorded_with_the_digits_printed(
    cli, dataset, tmp_path, monkeypatch, capsys
) -> None:
    data = tmp_path / "with_val"
    convert(ConvertConfig(root=tmp_path / "mvtec" / "widget", out=data, formats=("yolo", "coco"),
                          ratios=(0.4, 0.3, 0.3), progress=False, link="copy"))  # fmt: skip
    picked = (0.05234109876, 1.0, None, True)
    monkeypatch.setattr(evaluate_module, "pick_conf", lambda *args, **kwargs: picked)
    assert cli("--data", data, "--out", tmp_path / "picked", "--conf-from", "val") == 0
    assert "pass --conf 0.0523411 to inspection.predict" in capsys.readouterr().out
    settings = json.loads((tmp_path / "picked" / "metrics.json").read_text())["settings"]
    report = (tmp_path / "picked" / "report.md").read_text()
    assert settings["conf"] == 0.0523411 and "- conf: `0.0523411`" in report
    assert "| box threshold (operating point) | 0.0523411 (picked" in report
    assert "(conf 0.0523411, picked on the val split) are dropped" in report
    # a pick warned of (it calls every photo defective): the summary recommended it all the same
    warned = (0.3217, 0.5, "warning: on the val split, conf 0.3217 calls all 4 images defective, ...", True)
    monkeypatch.setattr(evaluate_module, "pick_conf", lambda *args, **kwargs: warned)
    assert cli("--data", data, "--out", tmp_path / "warned", "--conf-from", "val") == 0
    out = capsys.readouterr().out
    assert (
        "(picked on val, accuracy 0.500 there, warned of above: choose inspection.predict's --conf yourself)"
        in out
    )
    assert "pass --conf" not in out
    settings = json.loads((tmp_path / "warned" / "metrics.json").read_text())["settings"]
    assert settings["conf_pick_warning"] == warned[2]
    report = (tmp_path / "warned" / "report.md").read_text()
    assert "there 0.500); on the val split, conf 0.3217 calls all 4 images defective, ... |" in report


def test_conf_from_the_scored_split_is_refused(cli, tmp_path, capsys) -> None:
    assert cli("--out", tmp_path / "r", "--conf-from", "test") == 2
    err = capsys.readouterr().err
    assert err == "error: --conf-from test: pick the threshold on another split than the one scored\n"
    assert not (tmp_path / "r").exists()


def test_a_conf_from_split_without_images_is_refused_before_the_models_load(
    cli, dataset, tmp_path, capsys, monkeypatch
) -> None:
    # it was refused by the pick itself, once both models had loaded
    monkeypatch.setattr(evaluate_module, "load_inspector", lambda *a: pytest.fail("models loaded"))
    assert cli("--out", tmp_path / "r", "--conf-from", "val") == 2  # converted with no val images
    annotations = dataset / "annotations" / "instances_val.json"
    assert capsys.readouterr().err == f"error: --conf-from val: {annotations} has no images to pick it on\n"
    assert not (tmp_path / "r").exists()


def test_a_conf_from_split_without_images_is_named_once_after_the_scored_splits_error(
    cli, dataset, tmp_path, capsys, monkeypatch
) -> None:
    # joined to the scored split's error the line said '--conf-from val' twice:
    # '...; the --conf-from val split: --conf-from val: ... has no images to pick it on'
    monkeypatch.setattr(evaluate_module, "load_inspector", lambda *a: pytest.fail("models loaded"))
    empty = sorted((dataset / "images" / "test").iterdir())[0]
    empty.write_bytes(b"")
    assert cli("--out", tmp_path / "r", "--conf-from", "val") == 2  # converted with no val images
    annotations = dataset / "annotations" / "instances_val.json"
    assert capsys.readouterr().err == (
        f"error: cannot read image {empty}: the file is empty; "
        f"the --conf-from val split: {annotations} has no images to pick it on\n"
    )
    assert not (tmp_path / "r").exists()


def test_a_decoders_colour_head_is_applied_and_recorded(cli, tmp_path) -> None:
    head = ColourHead((0.0, 0.0, 5.0))  # every in-box pixel foreground
    decoder = save_decoder(build_tiny_sam(seed=1), tmp_path / "head.pt", model="tiny", colour_head=head)
    for flags, recorded in (((), head.to_dict()), (("--no-colour-head",), None)):
        out = tmp_path / ("off" if flags else "on")
        assert cli("--sam", decoder, "--out", out, "--gallery", "0", *flags) == 0  # the last --sam wins
        metrics = json.loads((out / "metrics.json").read_text())
        assert (
            metrics["settings"]["colour_head"] == recorded
            and f"colour_head: `{recorded}`" in (out / "report.md").read_text()
        )
        predictions = json.loads((out / "predictions.json").read_text())
        assert len(predictions) == 4 and in_box_pixels(predictions).all() == (not flags)


def test_a_decoders_colour_prompt_is_applied_and_recorded(cli, tmp_path) -> None:
    prompt = ColourPrompt(centre=10.0, scale=1.0, clip=8.0)
    prompted = save_decoder(
        build_tiny_sam(seed=1), tmp_path / "prompt.pt", model="tiny", colour_prompt=prompt
    )
    masks = []
    for name, sam, flags, recorded in (
        ("on", prompted, (), prompt.to_dict()),
        ("off", tmp_path / "sam" / "decoder.pt", (), None),  # same weights
        ("left-out", prompted, ("--no-colour-prompt",), None),
    ):
        out = tmp_path / name
        assert cli("--sam", sam, "--out", out, "--gallery", "0", *flags) == 0  # the last --sam wins
        settings = json.loads((out / "metrics.json").read_text())["settings"]
        assert settings["colour_prompt"] == recorded and settings["no_colour_prompt"] == bool(flags)
        report = (out / "report.md").read_text()
        assert f"colour_prompt: `{recorded}`" in report and f"no_colour_prompt: `{bool(flags)}`" in report
        masks.append([entry["segmentation"] for entry in json.loads((out / "predictions.json").read_text())])
    assert len(masks[0]) == len(masks[1]) == 4 and masks[0] != masks[1] and masks[2] == masks[1]


@pytest.mark.parametrize(
    ("part", "carrier"),
    [
        ("colour head", "a decoder.pt of a run that kept one does"),
        ("colour prompt", "a decoder.pt of a colour_prompt=true run does"),
    ],
)
@pytest.mark.parametrize("sam", ["zero-shot", "none carried"])
def test_no_colour_head_or_prompt_where_there_is_none_is_one_line(
    cli, dataset, tmp_path, capsys, sam, part, carrier
) -> None:
    # the flag was accepted and changed nothing; segmentation.evaluate refuses it in the same words
    out = tmp_path / "r"
    flag = "--no-" + part.replace(" ", "-")
    if sam == "zero-shot":
        argv = ["--detector", tmp_path / "best.pt", "--data", dataset, "--out", out, flag]
        assert main([str(a) for a in [*argv, "--no-progress"]]) == 2
        message = "it applies only with --sam (zero-shot SAM has none)"
    else:  # the fixture's decoder.pt keeps no head and no prompt
        assert cli("--out", out, flag) == 2
        message = f"carries none ({carrier}): drop {flag}"
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag} leaves out a fine-tuned decoder's {part}")
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_tta_applies_to_the_cascade_and_the_oracle(cli, tmp_path) -> None:
    assert cli("--out", tmp_path / "plain", "--gallery", "0") == 0
    assert cli("--out", tmp_path / "flips", "--gallery", "0", "--tta") == 0
    plain, flips = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("plain", "flips"))
    assert flips["settings"]["tta"] is True and plain["settings"]["tta"] is False
    assert flips["per_image"]["defect"]["iou"] != plain["per_image"]["defect"]["iou"]
    assert flips["per_image"]["defect"]["oracle_iou"] != plain["per_image"]["defect"]["oracle_iou"]


def test_a_corrupt_photo_is_named_before_the_models_load(cli, dataset, tmp_path, capsys, monkeypatch) -> None:
    # it used to surface mid-run, after both models had loaded and earlier photos were scored
    photo = sorted((dataset / "images" / "test").iterdir())[-1]
    photo.write_bytes(photo.read_bytes()[:200])  # a PNG cut short: its header still reads
    monkeypatch.setattr(evaluate_module, "load_inspector", lambda *a: pytest.fail("models loaded"))
    assert cli("--out", tmp_path / "report") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read image {photo}") and err.count("\n") == 1
    assert not (tmp_path / "report").exists()


def test_every_photo_that_does_not_read_is_named_in_one_line_before_the_models_load(
    cli, dataset, tmp_path, capsys, monkeypatch
) -> None:
    # the split's header pass stopped at the first empty or missing photo, before the decode pass that
    # names every photo cut short: three bad photos took three runs to find
    photos = sorted((dataset / "images" / "test").iterdir())
    photos[0].write_bytes(b"")  # its header does not read
    photos[1].unlink()
    photos[-1].write_bytes(photos[-1].read_bytes()[:200])  # a PNG cut short: its header still reads
    monkeypatch.setattr(evaluate_module, "load_inspector", lambda *a: pytest.fail("models loaded"))
    assert cli("--out", tmp_path / "report") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read 3 photos: {photos[0]} (the file is empty), {photos[1]} (")
    assert f", {photos[-1]} (corrupt or not an image (" in err and err.count("\n") == 1
    assert not (tmp_path / "report").exists()


@pytest.fixture
def with_val(tmp_path: Path, dataset: Path) -> Path:
    """The ``dataset`` fixture's photos converted again with a val split (for ``--conf-from val``)."""
    data = tmp_path / "with_val"
    convert(
        ConvertConfig(
            root=tmp_path / "mvtec" / "widget",
            out=data,
            formats=("yolo", "coco"),
            ratios=(0.4, 0.3, 0.3),
            progress=False,
            link="copy",
        )
    )
    return data


def test_a_scored_photo_that_does_not_read_is_named_with_the_conf_from_splits_errors(
    cli, with_val, tmp_path, capsys, monkeypatch
) -> None:
    # the scored split keeps its unread photos for the decode pass, so the --conf-from split was read
    # next and its photo of another size was named instead: the empty photo that stopped the run before
    # was not; then the empty photo alone was named, and the other size only on the next run
    empty = sorted((with_val / "images" / "test").iterdir())[0]
    empty.write_bytes(b"")
    resized = sorted((with_val / "images" / "val").iterdir())[0]
    cv2.imwrite(str(resized), np.zeros((60, 99, 3), np.uint8))
    monkeypatch.setattr(evaluate_module, "load_inspector", lambda *a: pytest.fail("models loaded"))
    assert cli("--data", with_val, "--out", tmp_path / "report", "--conf-from", "val") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read image {empty}: the file is empty; the --conf-from val split: ")
    assert str(resized) in err and err.count("\n") == 1
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("damaged", [("test",), ("val",), ("test", "val")])
def test_the_photos_that_do_not_read_in_both_splits_are_named_in_one_run(
    cli, with_val, tmp_path, capsys, monkeypatch, damaged
) -> None:
    # with --conf-from the scored split's unreadable photos were named alone: the user fixed them, ran
    # again, and only then learned of the --conf-from split's
    bad = {}
    for split in damaged:
        photos = sorted((with_val / "images" / split).iterdir())
        photos[0].write_bytes(photos[0].read_bytes()[:200])  # cut short: its header reads, its pixels not
        photos[1].write_bytes(b"")  # its header does not read either
        bad[split] = photos[:2]
    monkeypatch.setattr(evaluate_module, "load_inspector", lambda *a: pytest.fail("models loaded"))
    assert cli("--data", with_val, "--out", tmp_path / "report", "--conf-from", "val") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read 2 photos: ") and err.count("\n") == 1
    for photos in bad.values():
        assert f"{photos[0]} (corrupt or not an image (" in err and f"{photos[1]} (the file is empty)" in err
    joint = "; the --conf-from val split: cannot read 2 photos: "
    if len(damaged) == 2:  # the scored split's first
        assert err.index(str(bad["test"][1])) < err.index(joint) < err.index(str(bad["val"][0]))
    else:
        assert "--conf-from" not in err  # one split's photos: its own line, as before
    assert not (tmp_path / "report").exists()


def test_an_out_that_is_a_file_is_refused_even_with_overwrite(cli, tmp_path, capsys) -> None:
    # --overwrite used to replace the file with the report folder
    (tmp_path / "notes.txt").write_text("not a folder")
    assert cli("--out", tmp_path / "notes.txt", "--overwrite") == 2
    assert "notes.txt is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "not a folder"


def test_an_anomaly_run_fit_on_photos_of_the_scored_split_is_refused(cli, dataset, tmp_path, capsys) -> None:
    # Fit on the category's train/good (the MVTec protocol); the converter dealt some of them to test.
    fit_run(tmp_path / "mvtec", "widget", tmp_path / "patchcore", config=TINY, progress=False)
    capsys.readouterr()  # the fit's own lines (a few-photos warning)
    test_keys = json.loads((dataset / "splits.json").read_text())["test"]
    assert any("/train/good/" in key for key in test_keys)
    out = tmp_path / "r"
    assert cli("--out", out, "--anomaly-run", tmp_path / "patchcore", "--anomaly-threshold", "1") == 2
    err = capsys.readouterr().err
    assert "of the test split: the --anomaly-run was fit on it" in err and err.count("\n") == 1
    assert not out.exists()


def test_an_anomaly_run_fit_on_copies_of_the_scored_photos_is_refused(cli, dataset, tmp_path, capsys) -> None:
    # The same good photos under another category's name: no key of the run is in the scored split.
    shutil.copytree(tmp_path / "mvtec" / "widget" / "train", tmp_path / "copy" / "gadget" / "train")
    fit_run(tmp_path / "copy", "gadget", tmp_path / "patchcore", config=TINY, progress=False)
    capsys.readouterr()  # the fit's own lines (a few-photos warning)
    out = tmp_path / "r"
    assert cli("--out", out, "--anomaly-run", tmp_path / "patchcore", "--anomaly-threshold", "1") == 2
    err = capsys.readouterr().err
    assert re.search(r"refusing to score .*/images/test/.*: its bytes are those of gadget/train/good/", err)
    assert err.count("\n") == 1 and not out.exists()


def test_a_split_holding_photos_either_model_was_trained_on_is_warned_of(
    cli, dataset, tmp_path, capsys, monkeypatch
) -> None:
    test_photos = sorted((dataset / "images" / "test").iterdir())
    record_trained_images(tmp_path / "sam", test_photos[:1])  # beside the decoder: its run folder
    record_trained_images(tmp_path / "detect_run", test_photos[1:3])
    monkeypatch.setattr(evaluate_module, "training_run", lambda detector, weights: tmp_path / "detect_run")
    assert cli("--out", tmp_path / "r", "--gallery", "0") == 0
    err = capsys.readouterr().err
    first, second, n = test_photos[0].name, test_photos[1].name, len(test_photos)
    assert f"warning: 2 of the {n} test photos ({second}, ...) are photos the detector was trained on" in err
    assert f"warning: 1 of the {n} test photos ({first}) is a photo SAM's decoder was trained on" in err


def test_the_photos_are_hashed_under_a_progress_bar(cli, dataset, tmp_path, capsys, monkeypatch) -> None:
    # every byte of the split is read for each record (both models' train photos, PatchCore's fit photos):
    # on a large split minutes without a word between "checking test photos" and the first model's bar
    test_photos = sorted((dataset / "images" / "test").iterdir())
    record_trained_images(tmp_path / "sam", test_photos[:1])
    record_trained_images(tmp_path / "detect_run", test_photos[1:3])
    monkeypatch.setattr(evaluate_module, "training_run", lambda detector, weights: tmp_path / "detect_run")
    fit_run(tmp_path / "mvtec", "widget", tmp_path / "patchcore", config=TINY, data=dataset, progress=False)
    capsys.readouterr()  # the fit's own lines
    args = ("--anomaly-run", tmp_path / "patchcore", "--anomaly-threshold", "1", "--gallery", "0")
    assert cli("--out", tmp_path / "r", *args, progress=True) == 0
    err = capsys.readouterr().err
    n = len(test_photos)
    for desc in ("hashing test photos (vs the detector's train photos)",
                 "hashing test photos (vs SAM's decoder's train photos)",
                 "hashing photos (vs PatchCore's fit photos)"):  # fmt: skip
        assert re.search(rf"{re.escape(desc)}: 100%.* {n}/{n} ", err), desc
    assert cli("--out", tmp_path / "quiet", *args) == 0  # --no-progress
    assert "hashing" not in capsys.readouterr().err


def test_overwrite_replaces_an_earlier_report_and_no_other_folder(cli, tmp_path, capsys) -> None:
    out = tmp_path / "report"
    assert cli("--out", out, "--gallery", "1") == 0
    assert "masks" in {p.name for p in out.iterdir()}
    assert cli("--out", out, "--overwrite") == 0  # every name the first run wrote is the command's
    (out / "keep.txt").write_text("mine")
    assert cli("--out", out, "--overwrite") == 2
    assert f"--out {out} holds keep.txt, which this command does not write" in capsys.readouterr().err
    assert (out / "keep.txt").is_file()


def test_overwrite_refuses_a_folder_holding_only_output_folders_names(cli, tmp_path, capsys) -> None:
    # a user's folder of masks/ and overlays/ held only names the command writes: --overwrite deleted it
    out = tmp_path / "mine"
    for held in ("masks", "overlays"):
        (out / held).mkdir(parents=True)
        (out / held / "some.png").write_bytes(b"mine")
    assert cli("--out", out, "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"--out {out} holds masks, overlays but no metrics.json, which every run of this command" in err
    assert (out / "masks" / "some.png").is_file() and (out / "overlays" / "some.png").is_file()


def test_an_anomaly_run_adds_its_regions_to_the_evaluation(cli, dataset, tmp_path) -> None:
    # fit on the good photos outside the scored split (a run fit on any of them is refused)
    fit_run(tmp_path / "mvtec", "widget", tmp_path / "patchcore", config=TINY, data=dataset, progress=False)
    args = ("--anomaly-run", tmp_path / "patchcore", "--anomaly-threshold", "0")
    assert cli("--out", tmp_path / "report", *args) == 0  # threshold 0: each photo is one region
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["settings"]["anomaly_regions"]["threshold"] == 0.0
    assert metrics["image_level"]["labels"][-1] == "anomaly"  # a call (a column), no photo's truth (a row)
    assert metrics["image_level"]["true_labels"] == ["good", "scratch", "stain"]


def test_an_anomaly_run_of_another_photo_size_is_refused_before_sam_loads(
    cli, tmp_path, capsys, monkeypatch
) -> None:
    for i in range(2):
        paint_photo(tmp_path / "wide" / "widget" / "train" / "good" / f"{i:03d}.png", size=(60, 90), seed=i)
    fit_run(tmp_path / "wide", "widget", tmp_path / "patchcore", config=TINY, progress=False)
    capsys.readouterr()  # the fit's own lines (a few-photos warning)
    monkeypatch.setattr(evaluate_module, "load_sam_checkpoint", lambda *a, **k: pytest.fail("SAM loaded"))
    args = ("--anomaly-run", tmp_path / "patchcore", "--anomaly-threshold", "1")
    assert cli("--out", tmp_path / "report", *args) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: image ")
        and f"but --anomaly-run {tmp_path / 'patchcore'} was fit on 90x60" in err
    )
    assert not (tmp_path / "report").exists()


def test_an_out_inside_the_data_set_is_refused(cli, dataset, tmp_path, capsys) -> None:
    # it was in the way of the data set's re-conversion with --overwrite
    assert cli("--out", dataset / "report") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: output folder {(dataset / 'report').resolve()} is inside the input tree ")
    assert err.count("\n") == 1 and not (dataset / "report").exists()


@pytest.mark.parametrize("inside", ["images", "annotations"])
def test_a_folder_of_the_data_set_as_out_is_named_inside_it_not_told_to_move_its_files(
    cli, dataset, inside, capsys
) -> None:
    # it said "--out .../images holds test, train, val, which this command does not write: ... choose
    # another folder, or move those out": the data set's own photos
    before = sorted(p.relative_to(dataset) for p in (dataset / inside).rglob("*"))
    assert cli("--out", dataset / inside, "--overwrite") == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: output folder {(dataset / inside).resolve()} is inside the input tree {dataset.resolve()}; "
        "choose another --out\n"
    )
    assert sorted(p.relative_to(dataset) for p in (dataset / inside).rglob("*")) == before


def test_a_cache_dir_inside_out_is_refused_before_either_is_made(cli, tmp_path, capsys) -> None:
    # the cache's check made report/cache, then the report folder was refused as existing
    report = tmp_path / "report"
    assert cli("--out", report, "--cache-dir", report / "cache") == 2
    assert capsys.readouterr().err.startswith(
        f"error: --cache-dir {(report / 'cache').resolve()} is inside --out "
    )
    assert not report.exists()


def test_a_conf_picked_on_good_photos_alone_is_warned_of(dataset, tmp_path, capsys) -> None:
    # a split without a defect photo: the pick lies above every box on the good photos and says nothing
    # of the defects it misses; it was taken without a word (accuracy 1.000 there)
    split = load_split(dataset, "test")
    coco = json.loads(split.annotation_file.read_text())
    used = {a["image_id"] for a in coco["annotations"]}
    coco["images"] = [image for image in coco["images"] if image["id"] not in used]
    coco["annotations"] = []
    (tmp_path / "good.json").write_text(json.dumps(coco))
    goods = SegmentationSplit(
        "val",
        [image for image in split.images if not image.annotations],
        split.categories,
        tmp_path / "good.json",
    )
    assert len(goods.images) == len(coco["images"]) >= 2
    conf, accuracy, warning, picked = evaluate_module.pick_conf(
        Inspector(BoxEverywhere(), build_tiny_sam()), goods, default=0.25, progress=False
    )
    assert picked
    assert conf > 0.9 and accuracy == 1.0
    assert capsys.readouterr().err == warning + "\n"
    n = len(goods.images)
    assert warning == (
        f"warning: on the val split, conf {conf:.6g} was picked on {n} images, none of them defective: "
        "nothing there tells it how many defects it misses; the pick is no threshold to use: leave out "
        "--conf-from (its pick replaces --conf) and give --conf yourself, or pick it on another split with "
        "both good and defective images"
    )


class BoxEverywhere(StubDetector):
    """The stub's boxes, and on every photo one more whole-photo box scored 0.9: good photos too."""

    def _result(self, image, conf):
        found = super()._result(image, conf)
        boxes = found.boxes
        height, width = image.shape[:2]
        boxes.xyxy = torch.cat([torch.tensor([[0.0, 0, width, height]]), boxes.xyxy])
        boxes.conf = torch.cat([torch.tensor([0.9]), boxes.conf])
        boxes.cls = torch.cat([torch.tensor([0.0]), boxes.cls])
        return found


def test_a_picked_conf_that_calls_every_photo_defective_is_warned_of(dataset, capsys) -> None:
    # the detector boxes the good photos as high as the defects: the best threshold calls all defective
    split = load_split(dataset, "test")  # 2 of its 6+ photos good
    conf, accuracy, warning, picked = evaluate_module.pick_conf(
        Inspector(BoxEverywhere(), build_tiny_sam()), split, default=0.25, progress=False
    )
    assert picked
    assert conf < 0.9 and accuracy < 1.0
    err = capsys.readouterr().err
    assert err == warning + "\n"  # recorded in metrics.json's settings too
    assert err.startswith(f"warning: on the test split, conf {conf:.6g} calls all ") and err.count("\n") == 1
    assert "good ones too" in err and err.rstrip().endswith(
        "every box down to it goes to SAM; the pick is no threshold to use: leave out --conf-from (its pick "
        "replaces --conf) and give --conf yourself, or pick it on another split with both good and defective "
        "images"
    )
    capsys.readouterr()
    stub = Inspector(StubDetector(), build_tiny_sam())
    assert evaluate_module.pick_conf(stub, split, default=0.25, progress=False)[2] is None
    assert capsys.readouterr().err == ""  # a threshold that leaves the good photos good: no warning


class BoxNothing(StubDetector):
    """No box on any photo, whatever the threshold: a detector trained for two epochs."""

    def _result(self, image, conf):
        return super()._result(np.zeros_like(image), conf)


@pytest.mark.parametrize("default", [0.25, 0.4, 0.0005])  # below the floor: kept as given, not the floor
def test_a_pick_on_a_split_the_detector_finds_nothing_in_is_warned_of(dataset, capsys, default) -> None:
    split = load_split(dataset, "test")
    conf, accuracy, warning, picked = evaluate_module.pick_conf(
        Inspector(BoxNothing(), build_tiny_sam()), split, default=default, progress=False
    )
    assert capsys.readouterr().err == warning + "\n"
    assert conf == default and accuracy < 1.0 and not picked  # --conf kept: no box, every photo called good
    assert warning == (
        "warning: on the test split the detector scores no box 0.001 or more on any photo: no threshold "
        f"to pick, --conf {default:g} kept (an undertrained detector?)"
    )


@pytest.mark.parametrize("keep", ["good", "defect"])
def test_a_split_of_one_kind_the_detector_finds_nothing_in_is_warned_of_as_nothing_picked(
    dataset, tmp_path, capsys, keep
) -> None:
    # the conf-flags-all warning replaced the 'no box' one: "conf 0.25 was picked on 6 images, none of them
    # defective", of a --conf kept as given, nothing picked
    split = load_split(dataset, "test")
    coco = json.loads(split.annotation_file.read_text())
    used = {a["image_id"] for a in coco["annotations"]}
    coco["images"] = [image for image in coco["images"] if (image["id"] in used) == (keep == "defect")]
    (tmp_path / "one_kind.json").write_text(json.dumps(coco))
    images = [image for image in split.images if bool(image.annotations) == (keep == "defect")]
    one_kind = SegmentationSplit("val", images, split.categories, tmp_path / "one_kind.json")
    pick = evaluate_module.pick_conf(
        Inspector(BoxNothing(), build_tiny_sam()), one_kind, default=0.25, progress=False
    )
    assert capsys.readouterr().err == pick[2] + "\n"
    assert pick[2] == (
        "warning: on the val split the detector scores no box 0.001 or more on any photo: no threshold "
        "to pick, --conf 0.25 kept (an undertrained detector?)"
    )
    conf, accuracy, _, picked = pick
    assert (conf, picked) == (0.25, False) and accuracy == (1.0 if keep == "good" else 0.0)


def test_a_conf_kept_for_want_of_boxes_is_not_called_picked_in_the_summary_or_the_reports(
    cli, tmp_path, monkeypatch, capsys
) -> None:
    # the warning said "--conf 0.25 kept", then the summary "at conf 0.250 (picked on val, ...)" and both
    # reports' threshold row "0.25 (picked on the val split, ...); ... --conf 0.25 kept"
    data = tmp_path / "with_val"
    convert(ConvertConfig(root=tmp_path / "mvtec" / "widget", out=data, formats=("yolo", "coco"),
                          ratios=(0.4, 0.3, 0.3), progress=False, link="copy"))  # fmt: skip
    monkeypatch.setattr(evaluate_module, "load_detector", lambda weights: BoxNothing())
    out = tmp_path / "kept"
    assert cli("--data", data, "--out", out, "--conf-from", "val") == 0
    printed, err = capsys.readouterr()
    assert "no threshold to pick, --conf 0.25 kept" in err
    assert "picked" not in printed
    assert re.search(r"at conf 0\.250 \(kept: nothing to pick it from on val, accuracy [\d.]+ there, "
                     r"warned of above\)\n", printed)  # fmt: skip
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["conf_picked"] is False and settings["conf"] == 0.25
    report = (out / "report.md").read_text()
    kept = "| box threshold (operating point) | 0.25 (kept: nothing to pick it from on the val split, "
    assert kept in report
    assert "(conf 0.25, kept: nothing to pick it from on the val split) are dropped" in report
    assert "picked on the val split" not in report
    page = (out / "report.html").read_text()
    assert "kept: nothing to pick it from on the val split" in page and "picked on the val split" not in page


class WrongType(StubDetector):
    """The stub's boxes, each of the other class: every defect photo called wrong whatever the threshold
    (the other type below its box score, good above it), no box on a good photo."""

    def _result(self, image, conf):
        found = super()._result(image, conf)
        found.boxes.cls = 1 - found.boxes.cls
        return found


def test_a_pick_where_every_threshold_ties_is_warned_of(dataset, capsys) -> None:
    # every candidate called the split equally well, so the pick was --conf's neighbour, not a choice:
    # it was printed 'picked on test' with 'pass --conf ... to inspection.predict', without a word
    split = load_split(dataset, "test")
    conf, accuracy, warning, picked = evaluate_module.pick_conf(
        Inspector(WrongType(), build_tiny_sam()), split, default=0.25, progress=False
    )
    goods = sum(not image.annotations for image in split.images) / len(split.images)
    assert picked and 0 < accuracy == goods < 1
    assert capsys.readouterr().err == warning + "\n"
    assert warning == (
        f"warning: on the test split, every threshold gives the same defect-type accuracy ({goods:.3f}): "
        f"conf {conf:.6g} is no pick, only the one nearest --conf 0.25; the pick is no threshold to use: "
        "leave out --conf-from (its pick replaces --conf) and give --conf yourself, or pick it on another "
        "split with both good and defective images"
    )


def test_a_pick_where_every_threshold_ties_is_recorded_and_not_advised(
    cli, tmp_path, monkeypatch, capsys
) -> None:
    data = tmp_path / "with_val"
    convert(ConvertConfig(root=tmp_path / "mvtec" / "widget", out=data, formats=("yolo", "coco"),
                          ratios=(0.4, 0.3, 0.3), progress=False, link="copy"))  # fmt: skip
    monkeypatch.setattr(evaluate_module, "load_detector", lambda weights: WrongType())
    out = tmp_path / "tied"
    assert cli("--data", data, "--out", out, "--conf-from", "val") == 0
    printed, err = capsys.readouterr()
    assert "warning: on the val split, every threshold gives the same defect-type accuracy (" in err
    assert "pass --conf" not in printed
    assert "warned of above: choose inspection.predict's --conf yourself)" in printed
    # and the summary and the report called it 'picked on val', which the warning says it is not
    assert "(not picked: every threshold ties on val, accuracy " in printed
    assert "picked on" not in printed.replace("not picked", "")
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["conf_pick_warning"].startswith("warning: on the val split, every threshold gives ")
    report = (out / "report.md").read_text()
    assert "; on the val split, every threshold gives the same" in report
    assert " (not picked: every threshold ties on the val split, defect-type accuracy there " in report
    assert "picked on the val split" not in report.replace("not picked", "")


class FaintBoxes(StubDetector):
    """The stub's boxes, each scored 0.0015: just above the pick's floor, on the defect photos alone."""

    def _result(self, image, conf):
        found = super()._result(image, conf)
        found.boxes.conf = torch.full_like(found.boxes.conf, 0.0015)
        return found


def test_a_pick_below_the_floor_is_the_floor(dataset, capsys) -> None:
    # every top box should count: the candidate halfway to the lowest top score, 0.00075, is under the
    # floor the detector ran at; boxes under it were never seen, so the floor is the pick
    split = load_split(dataset, "test")
    conf, accuracy, _, picked = evaluate_module.pick_conf(
        Inspector(FaintBoxes(), build_tiny_sam()), split, default=0.25, progress=False
    )
    assert picked
    assert conf == evaluate_module.PICK_FLOOR and accuracy == 1.0


def test_every_photo_gets_a_full_size_overlay_that_the_report_links_to(cli, tmp_path, capsys) -> None:
    out = tmp_path / "report"
    assert cli("--out", out, "--gallery", "1") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    overlays = {photo["file_name"]: photo["overlay"] for photo in metrics["photos"]}
    assert len(overlays) == 6 and all(overlays.values())
    for name, overlay in overlays.items():
        picture = cv2.imread(str(out / overlay))
        photo = cv2.imread(str(tmp_path / "data" / "images" / name))
        assert picture.shape[1] == photo.shape[1] and picture.shape[0] > photo.shape[0]  # under the bar
    defect = next(p for p in metrics["photos"] if p["truth"] != "good")
    picture = cv2.imread(str(out / defect["overlay"]))
    greens = np.all(np.abs(picture.astype(int) - evaluate_module.TRUTH_COLOR) < 40, axis=2)
    assert greens.any()  # the ground truth outlined
    page = (out / "report.html").read_text()
    assert page.count('<a href="overlays/') == 2  # the gallery's worst and best
    assert f"overlays: {out / 'overlays'} (6 of 6 photos" in capsys.readouterr().out


def test_overlays_n_draws_the_first_n_photos_and_those_the_report_shows_and_0_none(
    cli, tmp_path, capsys, monkeypatch
) -> None:
    assert cli("--out", tmp_path / "two", "--overlays", "2", "--gallery", "0") == 0
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert [bool(photo["overlay"]) for photo in metrics["photos"]] == [True, True] + [False] * 4
    assert len(list((tmp_path / "two" / "overlays").iterdir())) == 2
    assert "(2 of 6 photos" in capsys.readouterr().out
    # the gallery's worst and best photo keep theirs too, so every picture of the report links
    written = []
    real_write = evaluate_module.atomic_write
    monkeypatch.setattr(
        evaluate_module,
        "atomic_write",
        lambda path, data: written.append(path.name) or real_write(path, data),
    )
    assert cli("--out", tmp_path / "shown", "--overlays", "1", "--gallery", "1") == 0
    metrics = json.loads((tmp_path / "shown" / "metrics.json").read_text())
    by_iou = sorted(metrics["photos"], key=lambda photo: (photo["iou"], photo["file_name"]))
    expected = {metrics["photos"][0]["file_name"], by_iou[0]["file_name"], by_iou[-1]["file_name"]}
    assert {photo["file_name"] for photo in metrics["photos"] if photo["overlay"]} == expected
    assert len(list((tmp_path / "shown" / "overlays").iterdir())) == len(expected) == len(written)
    page = (tmp_path / "shown" / "report.html").read_text()
    assert page.count('<a href="overlays/') == 2 and "Click a picture" in page
    capsys.readouterr()
    assert cli("--out", tmp_path / "none", "--overlays", "0") == 0
    assert not (tmp_path / "none" / "overlays").exists()
    assert "overlays:" not in capsys.readouterr().out
    assert cli("--out", tmp_path / "bad", "--overlays", "-2") == 2
    assert "--overlays must be -1 (all), 0 (none) or a count, got -2" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_the_gallery_groups_its_worst_and_best_only_when_it_leaves_photos_out(dataset, inspector) -> None:
    split = load_split(dataset, "test")
    _, some = evaluate_split(inspector, split, gallery=1, progress=False)
    _, every = evaluate_split(inspector, split, gallery=len(split.images), progress=False)
    assert len(split.images) > 2 and [item.group for item in some] == ["worst", "best"]
    assert [item.group for item in every] == [""] * len(split.images)


def test_the_headline_mask_ap_is_the_ranking_asked_for(dataset, inspector) -> None:
    figures, _ = evaluate_split(inspector, load_split(dataset, "test"), rank_by="product", progress=False)
    assert figures["rank_by"] == "product"


def test_a_gallery_of_zero_shows_no_photo() -> None:
    from inspection.evaluate import gallery_items

    records = [
        ImageRecord(i, f"{i}.png", "good", "good", 0.0, i / 10, 0, 0, 1, 1, n_true=0, n_found=0)
        for i in range(5)
    ]
    items = [(record, b"") for record in records]
    assert gallery_items(items, 0) == []  # it showed every photo (items[-0:] is all of them)
    assert [record.image_id for record, _ in gallery_items(items, 1)] == [0, 4]
    assert len(gallery_items(items, 3)) == 5


def record(name: str, iou: float) -> ImageRecord:
    return ImageRecord(1, name, "stain", "stain", 0.9, iou, iou, iou, 0.9, 0.9, n_true=1, n_found=1)


def test_the_gallery_is_the_worst_then_the_best_images() -> None:
    from inspection.evaluate import gallery_items

    items = [(record(name, iou), name.encode()) for name, iou in
             [("c.png", 0.5), ("a.png", 0.9), ("e.png", 0.1), ("b.png", 0.7), ("d.png", 0.3)]]  # fmt: skip
    chosen = gallery_items(items, 2)
    assert [jpeg for _, jpeg in chosen] == [b"e.png", b"d.png", b"b.png", b"a.png"]  # worst first
    assert [jpeg for _, jpeg in gallery_items(items[:4], 2)] == [b"e.png", b"c.png", b"b.png", b"a.png"]
    ties = [(record(name, 0.5), name.encode()) for name in ("z.png", "m.png", "a.png")]
    assert [jpeg for _, jpeg in gallery_items(ties, 1)] == [b"a.png", b"z.png"]  # ties: by name


def test_the_truth_is_outlined_outside_its_holes_thicker_on_a_wide_photo() -> None:
    from inspection.evaluate import TRUTH_COLOR, truth_overlay
    from inspection.result import Inspection

    photo = np.full((100, 640, 3), 90, np.uint8)
    nothing = Inspection(
        path=Path("p.png"), width=640, height=100, boxes=np.zeros((0, 4)), scores=np.zeros(0),
        classes=np.zeros(0, int), names=[], masks=np.zeros((0, 100, 640), bool), mask_scores=np.zeros(0),
        verdict="good", score=0.0,
    )  # fmt: skip
    truth = np.zeros((100, 640), bool)
    truth[20:80, 100:300] = True
    truth[40:60, 180:220] = False  # a hole
    drawn = truth_overlay(photo, nothing, truth)
    bar = drawn.shape[0] - 100
    green = np.all(drawn[bar:] == TRUTH_COLOR, axis=2)
    assert green[50, 100] and green[50, 101]  # 640 px wide: 2 px
    assert not green[50, 179] and not green[50, 180] and not green[39, 200]  # the hole's edge


def test_the_gallerys_thumbnails_are_the_overlays_320_px_wide(dataset, inspector) -> None:
    from inspection.evaluate import thumbnail

    small = cv2.imdecode(np.frombuffer(thumbnail(np.zeros((151, 400, 3), np.uint8)), np.uint8), 1)
    assert small.shape == (121, 320, 3)  # 120.8 rounded
    _, gallery = evaluate_split(inspector, load_split(dataset, "test"), progress=False)
    picture = cv2.imdecode(np.frombuffer(gallery[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[1] == 320 and picture.shape[0] > 60 * 320 / 80  # the verdict bar above the photo


def test_the_report_counts_the_duplicate_masks_dropped(cli, tmp_path, monkeypatch) -> None:
    from tests.inspection.conftest import DoublingDetector

    monkeypatch.setattr(evaluate_module, "load_detector", lambda weights: DoublingDetector())
    out = tmp_path / "report"
    assert cli("--out", out, "--overlays", "0") == 0
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["duplicate_masks_dropped"] == 4  # each defect's one box, doubled


def test_by_default_every_photo_gets_an_overlay() -> None:
    from inspection.evaluate import EvaluateOptions, build_parser

    parsed = build_parser().parse_args(["--detector", "d.pt", "--sam", "s.pt", "--data", "x", "--out", "o"])
    assert parsed.overlays == EvaluateOptions.overlays == -1


def test_overlay_files_keep_the_first_the_wrong_and_the_gallerys_photos_writing_nothing_else(
    tmp_path, monkeypatch
) -> None:
    from inspection.evaluate import OverlayFiles, gallery_items

    written = []
    monkeypatch.setattr(evaluate_module, "atomic_write", lambda path, data: written.append(path.name))
    rng = np.random.default_rng(0)
    drawn = np.zeros((4, 4, 3), np.uint8)
    for trial in range(20):
        n, count, gallery = int(rng.integers(1, 12)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        items = [
            (ImageRecord(i, f"{i}.png", "stain", str(rng.choice(["stain", "good"], p=[0.8, 0.2])), 0.9,
                         float(rng.choice([0.1, 0.5, 0.9])), 0, 0, 1, 1, n_true=1, n_found=1), b"")
            for i in range(n)
        ]  # fmt: skip
        written.clear()
        files = OverlayFiles(tmp_path / "overlays", count, gallery)
        for i, item in enumerate(items):
            files.add(str(i), item, drawn)
            assert len(files.held) <= 2 * gallery, trial  # only the gallery's photos so far are held
        links = files.finish(gallery_items(items, gallery))
        first = {record.file_name for record, _ in items[:count]}
        wrong = {record.file_name for record, _ in items if record.verdict != record.truth}
        shown = {record.file_name for record, _ in gallery_items(items, gallery)}
        assert set(links) == first | wrong | shown, trial
        assert sorted(written) == sorted(f"{name.split('.')[0]}.jpg" for name in links), trial  # once each
        assert links["0.png"] == "overlays/0.jpg"
    files = OverlayFiles(None, 0, 1)  # --overlays 0, or no folder: nothing written, nothing linked
    files.add("0", items[0], drawn)
    assert files.finish(items) == {}


def test_the_masks_tree_drops_the_specks_the_cascade_was_told_to(cli, tmp_path, monkeypatch) -> None:
    # the masks tree leaves out the pieces a better mask leaves under the cascade's --speck-cells
    real, asked = evaluate_module.PredictionWriter, []
    monkeypatch.setattr(
        evaluate_module,
        "PredictionWriter",
        lambda *a, **k: asked.append(k.get("speck_cells")) or real(*a, **k),
    )
    assert cli("--out", tmp_path / "out", "--speck-cells", "5", "--gallery", "0", "--overlays", "0") == 0
    assert asked == [5]


def test_an_images_inspection_is_freed_before_the_next_image_is_inspected(dataset, monkeypatch) -> None:
    # its (N, H, W) masks and probabilities, and its oracle's: held beside the next image's
    import weakref

    inspect, done, alive = evaluate_module.inspect_image, [], []

    def tracked(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        alive.append(sum(ref() is not None for ref in done))
        inspection, truth, oracle = inspect(*args, **kwargs)
        done.extend((weakref.ref(inspection), weakref.ref(oracle)))
        return inspection, truth, oracle

    monkeypatch.setattr(evaluate_module, "inspect_image", tracked)
    inspector = Inspector(StubDetector(), build_tiny_sam(), keep_probs=True)
    evaluate_split(inspector, load_split(dataset, "test"), progress=False)
    assert len(alive) > 2 and not any(alive)


def test_a_colour_decoder_on_grey_photos_is_warned_about_before_the_detector_loads(
    cli, dataset, tmp_path, capsys, monkeypatch
) -> None:
    # a decoder.pt with a colour prompt scored grey photos without a word: its maps read nothing there
    def stop(weights):
        raise UserError("stopped before the detector")

    monkeypatch.setattr(evaluate_module, "load_detector", stop)
    grey = Path(shutil.copytree(dataset, tmp_path / "grey", symlinks=False))
    for photo in (grey / "images").rglob("*.png"):
        assert cv2.imwrite(str(photo), cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2GRAY))
    prompted = save_decoder(
        build_tiny_sam(seed=1), tmp_path / "prompt.pt", model="tiny", colour_prompt=ColourPrompt()
    )
    for data, warned in ((grey, True), (dataset, False)):
        assert cli("--sam", prompted, "--data", data, "--out", tmp_path / "out") == 2
        warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
        assert warnings == (
            ["warning: the 3 photos read from the 6 are greyscale, and the decoder's colour prompt reads "
             "colour, which a grey photo does not have: use a decoder trained without it, or pass "
             "--no-colour-prompt"]
            if warned else []
        )  # fmt: skip


@pytest.mark.parametrize("crops", [False, True], ids=["whole photo", "crops"])
def test_the_oracle_makes_no_mask_probabilities_and_keeps_its_masks_and_scores(dataset, crops, monkeypatch):
    # the oracle's truth boxes were decoded with an (N, H, W) float16 sigmoid each, as the cascade's, and
    # thrown away: only the cascade's anomaly map is scored; its masks and scores are the same without
    from segmentation.crops import CropRule

    rule = CropRule(max_fraction=0.4, margin=1.0, min_side=24) if crops else None
    inspector = Inspector(StubDetector(), build_tiny_sam(), keep_probs=True, crops=rule)
    segment, calls = inspector.segment, []

    def recorded(embedding, boxes, **kwargs):  # noqa: ANN001, ANN003, ANN202
        out = segment(embedding, boxes, **kwargs)
        with_probs = segment(embedding, boxes, keep_probs=True)
        calls.append(((out[0].copy(), *out[1:]), with_probs))  # the masks lose their specks in place
        return out

    monkeypatch.setattr(inspector, "segment", recorded)
    image = next(image for image in load_split(dataset, "test").images if image.annotations)
    evaluate_module.inspect_image(inspector, image, source=dataset)
    assert len(calls) == 2  # the cascade's, then the oracle's
    (masks, scores, probs), (full_masks, full_scores, full_probs) = calls[-1]
    assert probs is None and full_probs is not None and len(masks) == len(image.annotations)
    np.testing.assert_array_equal(masks, full_masks)
    np.testing.assert_array_equal(scores, full_scores)


def test_with_anomaly_regions_the_printed_image_auroc_says_it_moves_with_the_conf(tmp_path) -> None:
    from inspection.evaluate import summary

    # With --anomaly-run a photo with a region scores at least the conf (the region's box score; which
    # regions are kept also depends on the boxes above it), so its AUROC moves with --conf. The line said
    # "whatever the conf" all the same.
    figures = {**conf_figures(), "settings": {"anomaly_regions": {"threshold": 3.5}}}
    lines = summary(figures, tmp_path).splitlines()
    assert lines[5] == (
        "  image AUROC 1.000 (top box score down to 0.001, or the conf on a photo with an anomaly region: "
        "moves with --conf)"
    )
    assert "whatever the conf" not in "\n".join(lines)
