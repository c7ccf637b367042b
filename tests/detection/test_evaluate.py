"""detection.evaluate: ground truth through ultralytics' validator scores top marks both ways; CLI errors."""

from __future__ import annotations

import copy
import inspect
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import ops

from common.errors import UserError
from common.extras import package_versions
from detection.coco import read_coco
from detection.data import split_images
from detection.detections import ImageDetections
from detection.evaluate import MAX_DET, build_parser, evaluate, main, validator_args
from detection.image_level import GOOD, ImageLevelReport, image_labels, image_level_report, tuned_conf
from detection.predict import predict
from detection.report import EvaluationReport, format_report
from detection.validator import RecordingValidator, TiledRecordingValidator
from tests.detection.conftest import as_12_bit_data, copy_with_names, idle_gpus_found, jpeg_without_end_marker

NAMES = ["bent", "color", "flip", "scratch"]


# --- the whole evaluation, ground truth fed through ultralytics' validator -----------------------


class GroundTruthValidator(RecordingValidator):
    """Scores each image's own labels as its predictions (score 1), in the validator's pixel space."""

    def update_metrics(self, preds, batch) -> None:
        size = torch.tensor(batch["img"].shape[2:], device=self.device)[[1, 0, 1, 0]]
        truth = []
        for si in range(len(preds)):
            idx = batch["batch_idx"] == si
            boxes = ops.xywh2xyxy(batch["bboxes"][idx]) * size
            n = boxes.shape[0]
            truth.append(
                {
                    "bboxes": boxes,
                    "conf": torch.ones(n, device=self.device),
                    "cls": batch["cls"][idx].reshape(-1),
                    "extra": torch.zeros(n, 0, device=self.device),
                }
            )
        super().update_metrics(truth, batch)

    def call_detections(self, im_file, scored):
        return scored  # the image-level figures see the same truth (not the model run again)


@pytest.fixture(scope="module")
def untrained_detector() -> DetectionModel:
    """A random YOLO11n with the data set's classes: the validator needs a model; its outputs are replaced."""
    model = DetectionModel("yolo11n.yaml", nc=len(NAMES), verbose=False)
    model.names = dict(enumerate(NAMES))
    return model


def ground_truth_eval(data_yaml: Path, model, out: Path, **options):
    """``evaluate`` of ``data_yaml``'s val split at 64 px on the CPU, the model's boxes being the truth."""
    return evaluate(
        data_yaml, model, split="val", imgsz=64, device="cpu", out=out, plots=False,
        validator_class=GroundTruthValidator, **options,
    )  # fmt: skip


def test_a_model_of_other_classes_is_refused_before_the_validator_runs(tiny_dataset: Path, tmp_path) -> None:
    model = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    model.names = {0: "crack", 1: "dent"}

    class Refused(GroundTruthValidator):
        def __call__(self, *args, **kwargs):
            pytest.fail("the validator ran the split before the classes were checked")

    with pytest.raises(UserError, match=r"the model's classes \['crack', 'dent'\] are not the data set's"):
        evaluate(tiny_dataset / "data.yaml", model, split="val", imgsz=64, device="cpu",
                 out=tmp_path / "eval", plots=False, validator_class=Refused)  # fmt: skip
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize(("classes", "lacking"), [([0, 9], "9"), (7, "7"), ([-1, 5], "-1, 5")])
def test_a_detector_trained_on_classes_the_data_set_lacks_is_refused(
    tiny_dataset: Path, tmp_path, monkeypatch, classes, lacking: str
) -> None:
    # its checkpoint's classes (ultralytics' own trainer takes any index) were never read: the evaluation
    # scored every class of the data set without a word
    model = DetectionModel("yolo11n.yaml", nc=len(NAMES), verbose=False)
    model.names = dict(enumerate(NAMES))
    monkeypatch.setattr(model, "args", {"classes": classes}, raising=False)  # as best.pt records it

    class Refused(GroundTruthValidator):
        def __call__(self, *args, **kwargs):
            pytest.fail("the validator ran the split before the classes were checked")

    data = tiny_dataset / "data.yaml"
    with pytest.raises(UserError) as error:
        evaluate(data, model, split="val", imgsz=64, device="cpu", out=tmp_path / "eval", plots=False,
                 validator_class=Refused)  # fmt: skip
    wanted = classes if isinstance(classes, list) else [classes]
    assert str(error.value) == (
        f"the detector was trained with classes={wanted} (its checkpoint's training arguments): data file "
        f"{data} has no class {lacking} (its classes are 0-{len(NAMES) - 1}: {', '.join(NAMES)})"
    )
    assert not (tmp_path / "eval").exists()


def test_a_saved_run_trained_on_a_class_the_data_set_lacks_is_refused(tiny_dataset: Path, tmp_path) -> None:
    # as a best.pt keeps it: in the checkpoint's train_args (ultralytics' YOLO drops it from the network's)
    model = DetectionModel("yolo11n.yaml", nc=len(NAMES), verbose=False)
    model.names = dict(enumerate(NAMES))
    weights = tmp_path / "weights" / "best.pt"
    weights.parent.mkdir()
    train_args = {"task": "detect", "imgsz": 64, "classes": [1, 4]}
    torch.save({"model": model.half(), "train_args": train_args, "epoch": -1, "date": None}, weights)
    data = tiny_dataset / "data.yaml"
    with pytest.raises(UserError) as error:
        evaluate(data, weights, split="val", device="cpu", out=tmp_path / "eval", plots=False)
    assert str(error.value).startswith(
        "the detector was trained with classes=[1, 4] (its checkpoint's training arguments): data file "
        f"{data} has no class 4 ("
    )
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("classes", [[1], 0, None, [], [0, 1, 2, 3]])
def test_a_detector_trained_on_some_of_the_data_sets_classes_is_scored_on_all(
    tiny_dataset: Path, tmp_path, monkeypatch, untrained_detector, classes
) -> None:
    # the checkpoint's classes is not applied: every class of the data set is scored (as detection.train's
    # closing evaluate line scores it), none filtered out
    monkeypatch.setattr(untrained_detector, "args", {"classes": classes}, raising=False)
    report = ground_truth_eval(tiny_dataset / "data.yaml", untrained_detector, tmp_path / "eval")
    assert report.ultralytics["metrics/mAP50(B)"] > 0.99  # its 101-point interpolation: 0.995
    assert {row["Class"] for row in report.per_class} == set(NAMES)
    # with a note where some class was left out of training (its AP 0 pulled mAP down without a word)
    trained = [classes] if isinstance(classes, int) else classes
    if not trained or set(trained) == set(range(len(NAMES))):  # None or [] says nothing
        assert not any("trained on" in note for note in report.notes)
        return
    others = ", ".join(name for i, name in enumerate(NAMES) if i not in trained)
    assert report.notes[0] == (
        f"the detector was trained on {NAMES[trained[0]]} alone (its training's classes={trained}): {others} "
        "are scored too, though never trained on: expect AP near 0 there, pulling mAP down, and their "
        "photos' image-level calls wrong (the mAP ultralytics printed in training was of the trained "
        "classes alone)"
    )
    assert f"note: {report.notes[0]}" in format_report(report)


def test_a_saved_run_trained_on_some_classes_is_noted(
    tiny_dataset: Path, tmp_path, untrained_detector
) -> None:
    # a best.pt keeps classes= in its train_args alone (ultralytics' YOLO drops it from the network's)
    weights = tmp_path / "weights" / "best.pt"
    weights.parent.mkdir()
    train_args = {"task": "detect", "imgsz": 64, "classes": [2, 0]}
    model = copy.deepcopy(untrained_detector)
    torch.save({"model": model.half(), "train_args": train_args, "epoch": -1, "date": None}, weights)
    report = ground_truth_eval(tiny_dataset / "data.yaml", weights, tmp_path / "eval")
    assert report.notes[0].startswith(
        f"the detector was trained on {NAMES[0]}, {NAMES[2]} alone (its training's classes=[2, 0]): "
        f"{NAMES[1]}, {NAMES[3]} are scored too, though never trained on: "
    )
    assert {row["Class"] for row in report.per_class} == set(NAMES)


@pytest.mark.parametrize(("idle", "searched", "handed"), [([1], "1", "1"), ([], "", "0")])
def test_an_idle_gpu_is_scored_where_its_one_search_found_one(
    tiny_dataset: Path, untrained_detector: DetectionModel, tmp_path: Path, idle: list[int], searched: str,
    handed: str, monkeypatch,
) -> None:  # fmt: skip
    # the note named what the first search found, then ultralytics' validator searched for -1 again; with
    # none found it was handed '' (ultralytics' default) where GPU 0, its default, is what runs
    asked = idle_gpus_found(monkeypatch, idle)
    report = evaluate(
        tiny_dataset / "data.yaml", untrained_detector, split="val", imgsz=64, device="-1",
        out=tmp_path / "eval", plots=False, validator_class=GroundTruthValidator,
    )  # fmt: skip
    assert asked[0] == searched and len(asked) > 1 and set(asked[1:]) == {handed}
    assert report.device == f"cuda:{handed}"  # as the stand-in's select_device said


def test_12_bit_data_in_the_scored_split_is_one_warning_before_the_validator_runs(
    tiny_dataset: Path, tmp_path: Path, capsys
) -> None:
    data = copy_with_names(tiny_dataset, tmp_path / "copy", dict(enumerate(NAMES)))
    camera = as_12_bit_data(split_images(data, "val")[0])  # the copy's link replaced: the source stays
    model = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    model.names = {0: "crack", 1: "dent"}  # refused before the validator runs: the warning came first
    with pytest.raises(UserError, match="are not the data set's"):
        evaluate(data, model, split="val", imgsz=64, device="cpu", out=tmp_path / "eval", plots=False)
    err = capsys.readouterr().err
    assert err.startswith(
        f"warning: 1 photo is 16-bit with every value below 4096 (12-bit camera data?), e.g. {camera}"
    )
    assert err.count("\n") == 1 and "(values up to " in err


def test_a_jpeg_without_its_end_marker_is_left_as_it_is_with_a_note(
    tiny_dataset: Path, untrained_detector: DetectionModel, tmp_path: Path
) -> None:
    # ultralytics' scan of the split re-encoded it in place ('corrupt JPEG restored and saved'): the
    # evaluation wrote into the data set it scored, a link to a photo became a copy
    data = copy_with_names(tiny_dataset, tmp_path / "copy", dict(enumerate(NAMES)))
    shutil.rmtree(tmp_path / "copy" / "annotations")  # the converter's COCO file lists the PNG
    image, content = jpeg_without_end_marker(split_images(data, "val")[0])
    report = ground_truth_eval(data, untrained_detector, tmp_path / "eval")
    assert image.read_bytes() == content
    assert report.notes[-1] == (
        f"1 JPEG image does not end in its end marker (images/val/{image.name}): ultralytics re-saves it in "
        "place when it reads it (re-encoded; a link to a photo becomes a copy); the evaluation left it as it "
        "is and reads it as it decodes"
    )
    assert report.image_level.n_images == len(split_images(data, "val"))  # the JPEG scored as it decodes


def test_a_pretrained_model_is_refused_in_one_short_line_that_says_to_train_it(tmp_path) -> None:
    from detection.evaluate import _check_classes

    coco80 = {i: f"thing{i}" for i in range(80)}  # yolo11n.pt before training: COCO's 80 classes
    with pytest.raises(UserError) as caught:
        _check_classes(coco80, ["crack", "hole"], tmp_path / "my data" / "data.yaml")
    message = str(caught.value)
    assert "'thing7' and 72 more] are not the data set's ['crack', 'hole']" in message
    assert "thing8" not in message and "\n" not in message
    command = f"python -m detection.train data='{tmp_path}/my data/data.yaml'"
    assert message.endswith(f"train one on it first: {command}")
    with pytest.raises(UserError) as caught:  # classes of the data set in another order: no training hint
        _check_classes(["hole", "crack"], ["crack", "hole"], tmp_path / "data.yaml")
    assert str(caught.value).endswith("['crack', 'hole'] (" + str(tmp_path / "data.yaml") + ")")
    with pytest.raises(UserError) as caught:  # some classes shared (an older class list): no hint either
        _check_classes(["crack", "dent"], ["crack", "hole"], tmp_path / "data.yaml")
    assert "train one" not in str(caught.value)


def test_ground_truth_scores_one_in_ultralytics_and_cocoeval(
    tiny_dataset: Path, tmp_path: Path, untrained_detector, network_attempts
) -> None:
    report = ground_truth_eval(tiny_dataset / "data.yaml", untrained_detector, tmp_path / "eval")
    # ultralytics' ceiling is 0.995, not 1: its 101-point trapezoid integral drops to precision 0 at
    # recall 1.0 (the sentinel it appends), losing half of the last 0.01-wide step.
    assert report.ultralytics["metrics/mAP50(B)"] == pytest.approx(0.995)
    assert report.ultralytics["metrics/mAP50-95(B)"] == pytest.approx(0.995)
    assert report.coco is not None and report.coco["mAP50"] == pytest.approx(1.0)
    assert report.coco["mAP50-95"] == pytest.approx(1.0)  # boxes survive letterbox -> original pixels
    assert {row["Class"] for row in report.per_class} == set(NAMES)
    assert all(row["mAP50"] == pytest.approx(0.995) and row["Box-R"] == 1.0 for row in report.per_class)
    level = report.image_level
    assert level.accuracy == 1.0 and level.auroc == 1.0 and level.n_images == 6
    assert np.trace(np.array(level.matrix)) == 6
    saved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert saved["coco"]["mAP50"] == pytest.approx(1.0) and saved["image_level"]["labels"][0] == GOOD
    text = format_report(report)
    assert "pycocotools COCOeval" in text and "anomaly AUROC" in text
    assert (tmp_path / "eval" / "report.txt").read_text() == text + "\n"
    assert not list((tmp_path / "eval").glob(".*.tmp"))  # written atomically
    assert not list(tiny_dataset.rglob("*.cache"))  # ultralytics' label cache: the data set is read only
    assert network_attempts == []


def test_without_a_coco_file_the_labels_come_from_yolo(tiny_dataset, tmp_path, untrained_detector) -> None:
    yolo_only = tmp_path / "yolo_only"  # converted without --coco
    shutil.copytree(tiny_dataset, yolo_only, symlinks=True, ignore=shutil.ignore_patterns("annotations"))
    data = yaml.safe_load((yolo_only / "data.yaml").read_text())
    (yolo_only / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(yolo_only)}))
    report = ground_truth_eval(yolo_only / "data.yaml", untrained_detector, tmp_path / "eval")
    assert report.coco is None and "cross-check skipped" in report.notes[0]
    assert report.image_level.accuracy == 1.0


def test_a_data_yaml_copied_out_of_its_data_set_alone_is_cross_checked_with_the_data_sets_coco_file(
    tiny_dataset, tmp_path, untrained_detector
) -> None:
    # the note said 'no COCO file <copy's folder>/annotations/... (convert with --coco)': the data set has one
    (tmp_path / "experiments").mkdir()
    copied = shutil.copy(tiny_dataset / "data.yaml", tmp_path / "experiments" / "data.yaml")
    report = ground_truth_eval(Path(copied), untrained_detector, tmp_path / "eval")
    assert report.coco is not None and report.coco["mAP50"] == pytest.approx(1.0)
    assert not any("COCO" in note for note in report.notes)


def test_a_data_yaml_copied_out_of_a_data_set_without_coco_names_where_convert_with_coco_writes_it(
    tiny_dataset, tmp_path, untrained_detector
) -> None:
    # not the copy's folder: converting with --coco again writes the file into the data set its path: names
    yolo_only = tmp_path / "yolo_only"
    shutil.copytree(tiny_dataset, yolo_only, symlinks=True, ignore=shutil.ignore_patterns("annotations"))
    data = yaml.safe_load((yolo_only / "data.yaml").read_text())
    (tmp_path / "experiments").mkdir()
    copied = tmp_path / "experiments" / "data.yaml"
    copied.write_text(yaml.safe_dump({**data, "path": str(yolo_only)}))
    report = ground_truth_eval(copied, untrained_detector, tmp_path / "eval")
    assert report.coco is None
    assert report.notes == [
        f"no COCO file {yolo_only / 'annotations' / 'instances_val.json'} (convert with --coco): "
        "COCOeval cross-check skipped"
    ]


def test_a_users_own_data_set_without_coco_is_told_of_coco_not_of_converting(
    tiny_dataset, tmp_path, untrained_detector
) -> None:
    # a Roboflow export (no splits.json, a data.yaml of its own): "convert with --coco" it cannot
    own = tmp_path / "own"
    ignored = shutil.ignore_patterns("annotations", "splits.json")
    shutil.copytree(tiny_dataset, own, symlinks=True, ignore=ignored)
    data = yaml.safe_load((own / "data.yaml").read_text())
    (own / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(own)}))
    report = ground_truth_eval(own / "data.yaml", untrained_detector, tmp_path / "eval")
    assert report.coco is None
    assert report.notes == [
        "no COCO ground truth of the val split (--coco FILE): COCOeval cross-check skipped"
    ]


def test_the_data_sets_coco_file_of_other_images_than_a_copied_data_yaml_split_is_skipped_with_a_note(
    tiny_dataset, tmp_path, untrained_detector
) -> None:
    # a copy scoring other images as 'val': the data set's instances_val.json is not their ground truth
    (tmp_path / "experiments").mkdir()
    data = tmp_path / "experiments" / "train_as_val.yaml"
    data.write_text((tiny_dataset / "data.yaml").read_text().replace("val: images/val", "val: images/train"))
    report = ground_truth_eval(data, untrained_detector, tmp_path / "eval")
    coco_file = tiny_dataset / "annotations" / "instances_val.json"
    assert report.coco is None
    (note,) = report.notes
    assert note.startswith(f"the data set's COCO file {coco_file} does not list the 'val' split's images: ")
    assert note.endswith(": COCOeval cross-check skipped, image labels from the YOLO labels")


def test_the_data_sets_coco_file_of_other_class_names_than_a_copied_data_yaml_is_skipped_with_a_note(
    tiny_dataset, tmp_path, untrained_detector
) -> None:
    # a copy made to rename a class: the data set's COCO file names the old classes
    renamed = ["dent", *NAMES[1:]]
    (tmp_path / "experiments").mkdir()
    data = tmp_path / "experiments" / "renamed.yaml"
    data.write_text((tiny_dataset / "data.yaml").read_text().replace(": bent", ": dent"))
    model = copy.deepcopy(untrained_detector)
    model.names = dict(enumerate(renamed))
    report = ground_truth_eval(data, model, tmp_path / "eval")
    coco_file = tiny_dataset / "annotations" / "instances_val.json"
    assert report.coco is None
    assert report.notes == [
        f"the data set's COCO file {coco_file}: its categories {NAMES} (by id) are not the data set's "
        f"classes {renamed} (category id = class id + 1): COCOeval cross-check skipped, image labels from "
        "the YOLO labels"
    ]
    assert report.image_level.accuracy == 1.0  # the YOLO labels under the copy's names


def test_the_data_set_folder_is_scored_and_recorded_as_its_data_yaml(
    tiny_dataset, tmp_path, untrained_detector
) -> None:
    # --data <folder> was refused ('data file ... is a folder: pass .../data.yaml') while detection.train
    # took data=<folder>; the folder is its data.yaml, recorded as if that had been passed
    report = ground_truth_eval(tiny_dataset, untrained_detector, tmp_path / "eval")
    assert report.data == str(tiny_dataset / "data.yaml") and report.coco is not None
    assert report.image_level.accuracy == 1.0
    saved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert saved["data"] == str(tiny_dataset / "data.yaml")


def test_evaluation_json_records_paths_batch_and_device_as_the_other_records(
    tiny_dataset, tmp_path, untrained_detector, monkeypatch
) -> None:
    # data and save_dir were recorded as typed (relative, '..' kept); batch and device not at all
    (tmp_path / "linked").symlink_to(tiny_dataset)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    report = ground_truth_eval(Path("linked"), untrained_detector, Path("sub/../eval"), batch=2)
    saved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert saved["data"] == report.data == str(tmp_path / "linked" / "data.yaml")
    assert saved["save_dir"] == str(tmp_path / "eval")
    assert (saved["batch"], saved["device"]) == (2, "cpu")
    assert saved["versions"] == package_versions()  # what its figures depend on (none recorded before)


def test_a_folder_without_a_data_yaml_is_one_line_naming_it(tmp_path, capsys, monkeypatch) -> None:
    coco_only = tmp_path / "coco_only"  # converted by mvtec2coco: annotations and splits.json, no data.yaml
    (coco_only / "annotations").mkdir(parents=True)
    (coco_only / "splits.json").write_text("{}")
    monkeypatch.setattr("detection.evaluate.load_detector", lambda weights: pytest.fail("model loaded"))
    assert main(["--data", str(coco_only), "--weights", str(tmp_path / "best.pt")]) == 2
    assert capsys.readouterr().err == (
        f"error: --data {coco_only} is a folder without a data.yaml: pass a data set folder written by "
        "converters.mvtec2yolo, or a data.yaml\n"
    )


def test_a_split_ultralytics_read_only_part_of_is_refused(tiny_dataset, tmp_path, untrained_detector) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy, symlinks=False)
    data = yaml.safe_load((copy / "data.yaml").read_text())
    (copy / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(copy)}))
    broken = sorted((copy / "images" / "val").iterdir())[0]
    drop_from_loader(broken)  # ultralytics skips it with a warning
    # it was counted as a clean good image in the image-level figures; ultralytics' reason follows its name
    with pytest.raises(
        UserError,
        match=rf"could not read 1 image\(s\) of the 'val' split of .*: {broken.name} \(Label class "
        rf"{len(NAMES) + 5} ",
    ):
        ground_truth_eval(copy / "data.yaml", untrained_detector, tmp_path / "eval")


def test_a_conf_from_split_ultralytics_read_only_part_of_is_refused(
    tiny_dataset, tmp_path, untrained_detector
) -> None:
    # the scored split's was refused, the --conf-from split's images ultralytics skipped counted as good
    # images without a box in the pick, with nothing said but ultralytics' own warning among its scan lines
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy, symlinks=False)
    data = yaml.safe_load((copy / "data.yaml").read_text())
    (copy / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(copy)}))
    broken = sorted((copy / "images" / "train").iterdir())[0]
    drop_from_loader(broken)
    with pytest.raises(
        UserError, match=rf"could not read 1 image\(s\) of the 'train' split of .*: {broken.name} "
    ):
        ground_truth_eval(copy / "data.yaml", untrained_detector, tmp_path / "eval", conf_from="train")
    assert not (tmp_path / "eval").exists()


def test_images_left_out_of_the_scored_and_the_conf_from_split_are_named_in_one_run(
    tiny_dataset, tmp_path, untrained_detector
) -> None:
    # the scored split's were named alone: the --conf-from split's only on the next run, once those were fixed
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy, symlinks=False)
    data = yaml.safe_load((copy / "data.yaml").read_text())
    (copy / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(copy)}))
    broken = {split: sorted((copy / "images" / split).iterdir())[0] for split in ("val", "train")}
    for image in broken.values():
        drop_from_loader(image)
    with pytest.raises(UserError) as error:
        ground_truth_eval(copy / "data.yaml", untrained_detector, tmp_path / "eval", conf_from="train")
    # each with ultralytics' reason, as detection.train's line (it was in ultralytics' log alone)
    why = (
        f"(Label class {len(NAMES) + 5} exceeds dataset class count {len(NAMES)}. "
        f"Possible class labels are 0-{len(NAMES) - 1})"
    )
    assert str(error.value) == (
        f"ultralytics could not read 1 image(s) of the 'val' split of {copy / 'data.yaml'}: "
        f"{broken['val'].name} {why}, and 1 of the 'train' split: {broken['train'].name} {why} (python -m "
        f"converters.validate {copy} says why)"
    )
    assert not (tmp_path / "eval").exists()


def test_conf_from_picks_the_threshold_on_another_split(tiny_dataset, tmp_path, untrained_detector) -> None:
    report = ground_truth_eval(
        tiny_dataset / "data.yaml", untrained_detector, tmp_path / "eval", conf_from="train"
    )
    # Ground-truth boxes score 1 on defect images, good images have none: every threshold up to 1 is
    # right on train, and 1 / 2 is the candidate there (halfway to the lowest top score).
    assert report.image_level.conf == 0.5 and report.image_level.accuracy == 1.0
    assert report.notes == [
        # no 'pass --conf 0.5 --imgsz 64 to detection.predict': a pick on the detector's own train photos
        # is no advice for new ones, which the warning says (the hint stood beside it, telling the contrary)
        "conf 0.5 picked on the train split (accuracy 1.000 there)",
        # the detector's own train photos: it said nothing of that
        "warning: --conf-from train picks the threshold on the photos the detector was trained on, whose "
        "scores are not those of photos it has not seen: pick it on val",
    ]
    assert not (tmp_path / "eval" / "conf_train").exists()  # the picker's empty folder was left behind


class FaintValidator(GroundTruthValidator):
    """The ground truth's boxes, each scored 0.0015: a barely trained detector's top scores."""

    def call_detections(self, im_file, scored):
        return ImageDetections(scored.boxes, np.full(len(scored.scores), 0.0015), scored.classes)


def test_conf_from_never_picks_below_the_validators_floor(tiny_dataset, tmp_path, untrained_detector) -> None:
    # halfway to the lowest top score (0.00075) lies under the 0.001 the validator keeps boxes down to:
    # boxes there were never seen, so the pick is that floor (inspection.evaluate's pick_conf clamps too)
    report = evaluate(
        tiny_dataset / "data.yaml", untrained_detector, split="val", imgsz=64, device="cpu",
        out=tmp_path / "e", plots=False, validator_class=FaintValidator, conf_from="train",
    )  # fmt: skip
    assert report.image_level.conf == 0.001 and report.notes[0].startswith("conf 0.001 picked on the train")


class BlindValidator(RecordingValidator):
    """Scores no box on any image: an undertrained detector."""

    def update_metrics(self, preds, batch) -> None:
        empty = {"bboxes": torch.zeros(0, 4), "conf": torch.zeros(0), "cls": torch.zeros(0)}
        super().update_metrics([{**empty, "extra": torch.zeros(0, 0)} for _ in preds], batch)

    def call_detections(self, im_file, scored):
        return scored


# --- image-level figures: the detector as detection.predict runs it --------------------------------


@pytest.fixture(scope="module")
def scoring_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random YOLO11n of the data set's classes, saved as ultralytics saves weights, that scores boxes
    of many confidences: its batch-norm statistics set on random photos (a fresh one's features
    vanish: every box scores its class bias) and its class logits scaled down, their biases zeroed."""
    torch.manual_seed(0)
    model = DetectionModel("yolo11n.yaml", nc=len(NAMES), verbose=False)
    model.names = dict(enumerate(NAMES))
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = None  # a plain average over the batches seen
            layer.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, 64, 64))
    model.eval()
    for branch in model.model[-1].cv3:
        torch.nn.init.zeros_(branch[-1].bias)
        branch[-1].weight.data *= 0.05
    yolo = YOLO("yolo11n.yaml")
    yolo.model = model
    path = tmp_path_factory.mktemp("weights") / "best.pt"
    yolo.save(path)
    return path


class SeenValidator(RecordingValidator):
    """Keeps every validator an evaluation makes: the scored split's, then the one picking ``conf``."""

    seen: list[RecordingValidator] = []

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        type(self).seen.append(self)


def test_image_level_figures_and_the_picked_conf_are_of_the_detector_as_detection_predict_runs_it(
    tiny_dataset: Path, scoring_weights: Path, tmp_path: Path
) -> None:
    # yolo val letterboxes a 64-px photo to 96 px (its rectangular batches add half a stride) where
    # detection.predict and the cascade run it at 64: the image-level figures, and a conf picked on
    # them, are meant for the latter
    SeenValidator.seen = []
    report = evaluate(
        tiny_dataset / "data.yaml", scoring_weights, split="val", imgsz=64, device="cpu",
        out=tmp_path / "eval", plots=False, validator_class=SeenValidator, conf_from="train",
    )  # fmt: skip
    scored, picker = SeenValidator.seen
    for validator, split in ((scored, "val"), (picker, "train")):
        found = predict(scoring_weights, tiny_dataset / "images" / split, imgsz=64, conf=0.001, device="cpu")
        assert sorted(validator.calls) == sorted(found) and all(entry["scores"] for entry in found.values())
        for name, entry in found.items():
            call = validator.calls[name]
            top = int(np.argmax(call.scores))
            assert call.scores[top] == pytest.approx(max(entry["scores"]), abs=6e-5)  # predict rounds to 4
            if entry["scores"].count(max(entry["scores"])) == 1:
                assert call.classes[top] == entry["classes"][int(np.argmax(entry["scores"]))]
        # the validator's own boxes (mAP, COCOeval) are another letterbox's
        tops = {n: (max(validator.detections[n].scores), max(validator.calls[n].scores)) for n in found}
        assert any(ours != pytest.approx(predicts, abs=1e-3) for ours, predicts in tops.values())
    truth = {
        split: image_labels(read_coco(tiny_dataset / f"annotations/instances_{split}.json"))
        for split in ("val", "train")
    }
    conf, _ = tuned_conf(truth["train"], picker.calls, NAMES)
    # the two letterboxes pick apart here
    assert conf != tuned_conf(truth["train"], picker.detections, NAMES)[0]
    assert report.image_level == image_level_report(truth["val"], scored.calls, NAMES, conf)


class TiledSeenValidator(SeenValidator, TiledRecordingValidator):
    """A :class:`SeenValidator` of tiled inference."""


# the data set's photos and windows are square, where a letterbox to the square and one padded to the
# stride agree, and the boxes were never compared: a wide photo, or the window of a photo shorter than
# the tile (tile_windows), tells them apart. The windows went to the square where detection.predict
# --tile and the cascade pad them to the stride: the tiled figures were of another detector's boxes.
# And the validator's NMS keeps a box once per class above conf where the predictor keeps it once:
# the same top box, but more boxes, which the merge of tiled windows then kept or dropped otherwise.
@pytest.mark.parametrize("tile", [None, 48])
def test_a_photo_or_window_of_another_shape_is_letterboxed_and_boxed_as_detection_predict_does_it(
    tiny_dataset: Path, scoring_weights: Path, tmp_path: Path, tile: int | None
) -> None:
    SeenValidator.seen = []
    evaluate(
        tiny_dataset / "data.yaml", scoring_weights, split="val", imgsz=64, device="cpu", tile=tile,
        out=tmp_path / "eval", plots=False, validator_class=TiledSeenValidator if tile else SeenValidator,
    )  # fmt: skip
    [validator] = SeenValidator.seen
    photo = sorted((tiny_dataset / "images" / "val").iterdir())[0]
    (tmp_path / "wide").mkdir()
    wide = tmp_path / "wide" / photo.name
    cv2.imwrite(str(wide), cv2.resize(cv2.imread(str(photo)), (200, 40)))  # tiled: 5 windows of 48 x 40
    options = {"tile": tile, "tile_overlap": validator.tile_overlap} if tile else {}
    [entry] = predict(
        scoring_weights, tmp_path / "wide", imgsz=64, conf=0.001, device="cpu", **options
    ).values()
    if tile:
        found = validator.tile_detections(cv2.imread(str(wide)), str(wide))
    else:
        found = validator.call_detections(str(wide), validator.detections[photo.name])
    assert len(found.scores) == len(entry["scores"]) > 1  # every box, not the top one alone
    order, theirs = (
        np.argsort(-found.scores, kind="stable"),
        np.argsort(-np.array(entry["scores"]), kind="stable"),
    )
    assert found.scores[order] == pytest.approx(np.array(entry["scores"])[theirs], abs=6e-5)  # predict rounds
    assert sorted(found.classes.tolist()) == sorted(entry["classes"])
    ours, top = order[0], theirs[0]
    assert found.boxes[ours] == pytest.approx(entry["boxes"][top], abs=0.01)


def test_a_detector_trained_on_whole_photos_and_scored_on_tiles_has_a_note(
    tiny_dataset: Path, tmp_path: Path, untrained_detector
) -> None:
    # it was scored at another scale than it learnt without a word (a tiled one scored whole had a note)
    model = copy.deepcopy(untrained_detector)
    model.args = {"data": str(tiny_dataset / "data.yaml"), "imgsz": 64}  # as its checkpoint records them
    note = (
        f"DetectionModel was trained on whole photos ({tiny_dataset / 'data.yaml'}); it runs here on 48-px "
        "tiles, at another scale than it learnt: leave --tile out"
    )
    for tile, noted in ((48, True), (None, False), (64, False)):  # 64: the photos' size, each window whole
        report = evaluate(
            tiny_dataset / "data.yaml", model, split="val", device="cpu", tile=tile, out=tmp_path / "eval",
            plots=False,
        )  # fmt: skip
        assert (note in report.notes) is noted
        assert not any("whole photos" in line for line in report.notes if line != note)


@pytest.mark.parametrize("conf", [0.25, 0.75, 0.0005])  # below the floor: kept as given, not the floor
def test_conf_from_on_a_split_the_detector_boxes_nothing_is_a_warning(
    tiny_dataset, tmp_path, untrained_detector, conf
) -> None:
    # every threshold ties there: nothing is picked and --conf is kept, with a warning (it once came
    # with a note as if it had been chosen)
    report = evaluate(
        tiny_dataset / "data.yaml", untrained_detector, split="val", imgsz=64, device="cpu", conf=conf,
        out=tmp_path / "e", plots=False, validator_class=BlindValidator, conf_from="train",
    )  # fmt: skip
    assert report.image_level.conf == conf
    # its note read 'conf 0.25 picked on the train split' beside the warning that nothing was picked, then
    # 'conf 0.25 kept: nothing to pick it from on the train split', which the warning says again
    assert not any(line.startswith(f"conf {conf:g} ") for line in report.notes)
    warning = (
        "warning: on the train split, the detector scores no box 0.001 or more on any image: every "
        f"threshold calls them all good, so nothing was picked and --conf {conf:g} kept (an undertrained "
        "detector?)"
    )  # not '; pass --conf': no --conf changes a detector that boxes nothing
    assert report.notes[0] == warning


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--weights", "nowhere.pt"], "error: weights not found: nowhere.pt"),
        (
            ["--weights", "nowhere.pt", "--conf-from", "test"],
            "error: --conf-from test: pick the threshold on another split than the one scored",
        ),
        (["--weights", "nowhere.pt", "--data", "missing.yaml"], "error: data file not found: missing.yaml"),
    ],
)
def test_cli_errors_are_one_line(tiny_dataset: Path, capsys, args: list[str], expected: str) -> None:
    argv = ["--data", str(tiny_dataset / "data.yaml"), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--conf", "5"], "error: --conf needs a number in [0, 1], got 5.0"),  # every image was 'good'
        (["--imgsz", "0"], "error: --imgsz needs an integer in [32, 8192], got 0"),  # was scored at 32 px
        (["--imgsz", "100000"], "error: --imgsz needs an integer in [32, 8192], got 100000"),  # OpenCV OOM
        (["--batch", "0"], "error: --batch needs an integer >= 1, got 0"),  # was a torch traceback
        (  # was ultralytics' "Invalid CUDA 'device=foo' requested", though foo names no CUDA device
            ["--device", "foo"],
            "error: --device: unknown device 'foo': use cpu, cuda, cuda:N, N, N,M (several GPUs) or mps;",
        ),
        pytest.param(  # was ultralytics' "Invalid CUDA 'device=0' requested. Use 'device=cpu' ..."
            ["--device", "0"],
            "error: --device 0: no CUDA device is visible on this machine (torch sees none); pass cpu\n",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
        (["--coco", "missing.json"], "error: cannot read COCO file missing.json"),  # was skipped with a note
        (["--out", "{file}"], "error: --out {file} is a file, not a folder"),  # was a traceback
        (["--data", "{nowhere}"], "error: 'val: images/val' of {nowhere} does not exist (/nowhere/"),
        (["--conf", "x"], "error: argument --conf: invalid float value: 'x'"),  # no usage lines
        # was whole images, unlike predict; then named "tile", not the flag typed
        (
            ["--tile", "0"],
            "error: --tile needs a window side >= 32 px, got 0 (leave --tile out for whole images)",
        ),
        (["--tile", "31"], "error: --tile needs a window side >= 32 px, got 31\n"),  # YOLO's coarsest stride
    ],
)
def test_bad_values_stop_before_the_validator_runs(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, args: list[str], expected: str
) -> None:
    file, nowhere = tmp_path / "notes.txt", tmp_path / "nowhere.yaml"
    file.write_text("kept\n")
    data = yaml.safe_load((tiny_dataset / "data.yaml").read_text())
    nowhere.write_text(yaml.safe_dump({**data, "path": "/nowhere"}))  # a moved data set's data.yaml
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    monkeypatch.setattr("detection.evaluate.load_detector", lambda weights: pytest.fail("model loaded"))
    args = [a.format(file=file, nowhere=nowhere) for a in args]
    argv = ["--data", str(tiny_dataset / "data.yaml"), "--split", "val", "--weights", str(weights), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected.format(file=file, nowhere=nowhere)) and err.count("\n") == 1
    assert file.read_text() == "kept\n"


@pytest.mark.parametrize("test", ["deleted", "listed"])
def test_a_test_split_whose_images_are_not_there_is_one_line_naming_them(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, test: str
) -> None:
    monkeypatch.setattr("detection.evaluate.load_detector", lambda weights: pytest.fail("model loaded"))
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    data = copy_with_names(tiny_dataset, tmp_path / "copy", dict(enumerate(NAMES)))
    shutil.rmtree(tmp_path / "copy" / "images" / "test", ignore_errors=True)  # the user deleted the folder
    expected = (
        f"error: 'test: images/test' of {data} does not exist ({tmp_path / 'copy' / 'images' / 'test'}): "
        "--split val, without --conf-from val, scores val instead (optimistic for weights picked on val)"
    )
    if test == "listed":  # a list whose image is gone: ultralytics' 'No valid images found' traceback
        (tmp_path / "copy" / "annotations" / "instances_test.json").unlink()  # else that file is blamed
        gone = tmp_path / "copy" / "images" / "test" / "gone.png"
        (tmp_path / "copy" / "test.txt").write_text(f"{gone}\n")
        data.write_text(yaml.safe_dump({**yaml.safe_load(data.read_text()), "test": "test.txt"}))
        expected = f"error: 1 of the 1 images the 'test' split of {data} lists do not exist ({gone})"
    assert main(["--data", str(data), "--weights", str(weights), "--conf-from", "val"]) == 2
    err = capsys.readouterr().err
    assert err == expected + "\n"


def test_a_copied_data_set_or_an_out_inside_the_data_set_is_refused(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr("detection.evaluate.load_detector", lambda weights: pytest.fail("model loaded"))
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy, symlinks=True)
    # the copy's path: names the original, which was scored instead, silently
    assert main(["--data", str(copy / "data.yaml"), "--split", "val", "--weights", str(weights)]) == 2
    err = capsys.readouterr().err
    own = f"not its own folder {copy.resolve()} (moved or copied?)"
    expected = f"error: {copy / 'data.yaml'} has path: {tiny_dataset}, {own}"
    assert err.startswith(expected) and err.count("\n") == 1
    # an evaluation inside the data set was in the way of its re-conversion with --overwrite
    out = tiny_dataset / "eval"
    argv = ["--data", str(tiny_dataset / "data.yaml"), "--split", "val", "--weights", str(weights)]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    expected = f"error: output folder {out.resolve()} is inside the input tree {tiny_dataset.resolve()};"
    assert err.startswith(expected) and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # a data set converted with another --names-template: a KeyError traceback after the validator
        ("rename", "its categories ['bent', 'colour', 'flip', 'scratch'] (by id) are not the data set's"),
        # the train split's file while scoring val: every val image was missing from it
        ("train split", "does not list the 'val' split's images: 6 (synthetic_nut_test_bent_001.png, "),
        # a file listing an extra image: it counted as one without a box
        ("extra image", "does not list the 'val' split's images: 0 of them missing, 1 (extra.png) others"),
    ],
)
def test_a_coco_file_of_other_classes_or_images_is_refused_before_the_model_loads(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, edit: str, expected: str
) -> None:
    monkeypatch.setattr("detection.evaluate.load_detector", lambda weights: pytest.fail("model loaded"))
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    split = "train" if edit == "train split" else "val"
    coco = json.loads((tiny_dataset / "annotations" / f"instances_{split}.json").read_text())
    if edit == "rename":
        coco["categories"][1]["name"] = "colour"
    if edit == "extra image":
        coco["images"].append({"id": 999, "file_name": "val/extra.png", "width": 64, "height": 64})
    file = tmp_path / "instances.json"
    file.write_text(json.dumps(coco))
    argv = ["--data", str(tiny_dataset / "data.yaml"), "--split", "val", "--weights", str(weights)]
    assert main([*argv, "--coco", str(file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --coco {file}") and expected in err and err.count("\n") == 1
    assert "convert again" not in err  # the user's own file: not one written with the data set


@pytest.mark.parametrize(
    ("edit", "argv", "expected"),
    [
        # a class renamed in data.yaml by hand: a KeyError traceback once the validator had run
        (
            "rename",
            ["--split", "val"],
            "val.json: its categories ['bent', 'color', 'flip', 'scratch'] (by id) are not the data set's "
            "classes ['bent', 'colour', 'flip', 'scratch']",
        ),
        # a photo deleted from the split by hand: counted as scored, an image without a box
        (
            "delete",
            ["--split", "val"],
            "val.json does not list the 'val' split's images: 0 of them missing, 1",
        ),
        # the same in the split --conf-from reads, while another is scored
        ("delete", ["--split", "train", "--conf-from", "val"], "val.json does not list the 'val' split's"),
    ],
)
def test_the_converters_coco_file_of_an_edited_data_set_is_refused_before_the_model_loads(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, edit: str, argv: list[str], expected: str
) -> None:
    monkeypatch.setattr("detection.evaluate.load_detector", lambda weights: pytest.fail("model loaded"))
    names = dict(enumerate(NAMES))
    if edit == "rename":
        names[1] = "colour"
    copy = tmp_path / "copy"
    data = copy_with_names(tiny_dataset, copy, names)
    if edit == "delete":
        next((copy / "images" / "val").iterdir()).unlink()
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    assert main(["--data", str(data), "--weights", str(weights), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the converter's COCO file {copy / 'annotations' / 'instances_'}")
    assert expected in err and "convert again, or remove it" in err and err.count("\n") == 1


@pytest.mark.parametrize("given", [True, False], ids=["--coco", "the converter's file"])
@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # an IndexError traceback from the image-level figures, after the validator had run
        ("short bbox", "has no bbox [x, y, width, height] (4 finite numbers): correct it in the file"),
        # a ValueError traceback
        ("text in bbox", "has no bbox [x, y, width, height] (4 finite numbers): correct it in the file"),
        # a KeyError traceback
        ("unknown category", "has category_id 9, not one of the file's categories [1, 2, 3, 4]"),
        # scored as it was, without a word
        ("outside", "reaching outside its 64x64 px image (a bbox is [x, y, width, height]): correct it"),
    ],
)
def test_a_hand_edited_coco_annotation_is_refused_before_the_model_loads(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, edit: str, expected: str, given: bool
) -> None:
    monkeypatch.setattr("detection.evaluate.load_detector", lambda weights: pytest.fail("model loaded"))
    data = copy_with_names(tiny_dataset, tmp_path / "copy", dict(enumerate(NAMES)))
    file = tmp_path / "instances.json" if given else tmp_path / "copy" / "annotations" / "instances_val.json"
    coco = json.loads((tiny_dataset / "annotations" / "instances_val.json").read_text())
    annotation = coco["annotations"][0]
    annotation["bbox"] = {
        "short bbox": annotation["bbox"][:3],
        "text in bbox": [str(v) for v in annotation["bbox"]],
        "outside": [40, 40, 30, 30],
    }.get(edit, annotation["bbox"])
    if edit == "unknown category":
        annotation["category_id"] = 9
    file.write_text(json.dumps(coco))
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    argv = ["--data", str(data), "--split", "val", "--weights", str(weights)]
    assert main([*argv, "--coco", str(file)] if given else argv) == 2
    err = capsys.readouterr().err
    what = "--coco" if given else "the converter's COCO file"
    assert err.startswith(f"error: annotation {annotation['id']} in {what} {file} ")
    assert expected in err and err.count("\n") == 1
    assert "convert again, or remove it" not in err  # the file was edited, not the data set


def _refused_at_load(weights: object) -> None:
    raise UserError("every check before the model passed")


def test_a_coco_file_given_for_the_scored_split_stands_in_for_the_converters_stale_one(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # a class renamed by hand, and --coco of the new names: the converter's file of old names is not read
    monkeypatch.setattr("detection.evaluate.load_detector", _refused_at_load)
    names = {**dict(enumerate(NAMES)), 1: "colour"}
    data = copy_with_names(tiny_dataset, tmp_path / "copy", names)
    coco = json.loads((tiny_dataset / "annotations" / "instances_val.json").read_text())
    coco["categories"][1]["name"] = "colour"
    file = tmp_path / "instances.json"
    file.write_text(json.dumps(coco))
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    argv = ["--data", str(data), "--weights", str(weights), "--split", "val", "--coco", str(file)]
    assert main(argv) == 2
    assert capsys.readouterr().err == "error: every check before the model passed\n"
    # the split --conf-from picks on has no --coco of its own: its converter's file is still checked
    assert main([*argv, "--conf-from", "train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the converter's COCO file {tmp_path / 'copy' / 'annotations'}")
    assert "instances_train.json: its categories" in err


def test_a_class_named_good_is_refused_before_the_model_loads(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    # converted with --names-template good: accuracy 1.000 and AUROC nan, whatever the model did
    monkeypatch.setattr("detection.evaluate.load_detector", lambda weights: pytest.fail("model loaded"))
    copy = tmp_path / "copy"
    copy_with_names(tiny_dataset, copy, {0: "good"})
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    assert main(["--data", str(copy / "data.yaml"), "--split", "val", "--weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: data file {copy / 'data.yaml'} has a class named 'good', the call of an")
    assert err.count("\n") == 1


def test_every_cli_option_is_an_evaluate_parameter() -> None:
    options = {action.dest for action in build_parser()._actions} - {"help"}
    assert options <= set(inspect.signature(evaluate).parameters)


def test_weights_that_are_not_checkpoints_are_one_line_errors(
    tiny_dataset: Path, tmp_path: Path, capsys, bad_weights: Path
) -> None:
    out = tmp_path / "eval"
    data = str(tiny_dataset / "data.yaml")
    assert main(["--data", data, "--split", "val", "--weights", str(bad_weights), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot load model '{bad_weights}': ") and err.count("\n") == 1
    assert not out.exists()


def test_a_split_without_images_is_one_line(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    # tiny_dataset's test split is empty: ultralytics' FileNotFoundError traceback, before
    assert main(["--data", str(tiny_dataset / "data.yaml"), "--weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no images in the 'test' split of ") and err.count("\n") == 1
    # it stopped there, without a word of the split that can be scored
    assert err.endswith(": --split val scores val instead (optimistic for weights picked on val)\n")
    # a data.yaml without test: at all (a Roboflow export without a test set), as stock 'yolo val' reads it
    data = yaml.safe_load((tiny_dataset / "data.yaml").read_text())
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({k: v for k, v in data.items() if k != "test"}))
    assert main(["--data", str(tmp_path / "data.yaml"), "--weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: data file {tmp_path / 'data.yaml'} has no 'test' split: --split val scores val instead "
        "(optimistic for weights picked on val)\n"
    )
    # Roboflow writes 'test: ../test/images' into an export without a test set
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({**data, "test": "../test/images"}))
    assert main(["--data", str(tmp_path / "data.yaml"), "--weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 'test: ../test/images' of ") and err.count("\n") == 1
    assert err.endswith(": --split val scores val instead (optimistic for weights picked on val)\n")


def test_the_output_folder_is_put_in_place_whole(tiny_dataset, tmp_path, untrained_detector) -> None:
    out = tmp_path / "eval"
    report = ground_truth_eval(tiny_dataset / "data.yaml", untrained_detector, out)
    assert report.save_dir == str(out)  # not the hidden folder it was built in
    (out / "stale_plot.png").write_bytes(b"an earlier evaluation's")
    ground_truth_eval(tiny_dataset / "data.yaml", untrained_detector, out, conf_from="train")
    assert not (out / "stale_plot.png").exists() and (out / "evaluation.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]  # nothing hidden left beside it
    (out / "evaluation.json").unlink()  # now a folder of something else: never replaced
    with pytest.raises(UserError, match="holds other files than an earlier evaluation's"):
        ground_truth_eval(tiny_dataset / "data.yaml", untrained_detector, out)


def test_ultralytics_never_names_the_hidden_build_folder(tiny_dataset, tmp_path, untrained_detector) -> None:
    from ultralytics.utils import LOGGER

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # behind the logger's filters, as ultralytics' own stdout handler
    LOGGER.addHandler(handler)
    try:
        out = tmp_path / "eval"
        options = {"split": "val", "imgsz": 64, "device": "cpu", "out": out, "plots": True}
        options["validator_class"] = GroundTruthValidator
        evaluate(tiny_dataset / "data.yaml", untrained_detector, **options)
    finally:
        LOGGER.removeHandler(handler)
    printed = [record.getMessage() for record in records]
    assert any(line.startswith("Speed:") for line in printed)  # the validator's other lines come through
    assert not any(".partial-" in line or "Results saved to" in line for line in printed)
    assert any(out.glob("*.png")) and LOGGER.filters == []  # plots written; the filter gone after


def test_more_than_three_unread_images_are_counted(tiny_dataset, tmp_path, untrained_detector) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy, symlinks=False)
    data = yaml.safe_load((copy / "data.yaml").read_text())
    (copy / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(copy)}))
    images = sorted((copy / "images" / "val").iterdir())
    assert len(images) > 4
    for broken in images[:4]:
        drop_from_loader(broken)
    why = rf"\(Label class {len(NAMES) + 5} exceeds [^)]*\)"
    names = ", ".join(f"{path.name} {why}" for path in images[:3])
    with pytest.raises(UserError, match=rf"could not read 4 image\(s\) of .*: {names} and 1 more \("):
        ground_truth_eval(copy / "data.yaml", untrained_detector, tmp_path / "eval")


@pytest.mark.parametrize("conf_from", [None, "train"])
def test_photos_that_do_not_decode_are_named_in_one_line_before_the_model_loads(
    tiny_dataset, tmp_path, untrained_detector, monkeypatch, conf_from
) -> None:
    # they were found by ultralytics' loader once the model had loaded and the whole split been scored
    # (the --conf-from split's after that, or mid-run for a TIFF OpenCV cannot read)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy, symlinks=False)
    data = yaml.safe_load((copy / "data.yaml").read_text())
    (copy / "data.yaml").write_text(yaml.safe_dump({**data, "path": str(copy)}))
    broken = [sorted((copy / "images" / split).iterdir())[0] for split in ("val", conf_from) if split]
    broken[0].write_bytes(b"not an image")
    if conf_from:
        broken[1].write_bytes(b"")
    monkeypatch.setattr("detection.evaluate._model_at", lambda *args: pytest.fail("model loaded"))
    with pytest.raises(UserError) as error:
        ground_truth_eval(copy / "data.yaml", untrained_detector, tmp_path / "eval", conf_from=conf_from)
    message = str(error.value)
    assert message.count("\n") == 0 and all(str(path) in message for path in broken)
    if conf_from:
        assert message.startswith("cannot read 2 photos: ") and "(the file is empty)" in message
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("conf_from", [None, "train"])
def test_an_image_opencv_cannot_load_is_one_line(
    tiny_dataset, tmp_path, untrained_detector, monkeypatch, conf_from
) -> None:
    import ultralytics.data.base

    unreadable = sorted((tiny_dataset / "images" / ("train" if conf_from else "val")).iterdir())[0]
    imread = ultralytics.data.base.imread

    def fail_on_one(path, *args, **kwargs):  # PIL read it when the labels were checked; OpenCV cannot
        return None if Path(path) == unreadable else imread(path, *args, **kwargs)

    monkeypatch.setattr(ultralytics.data.base, "imread", fail_on_one)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # ultralytics' own numbered folder without out
    split = conf_from or "val"
    message = f"^ultralytics cannot load an image of the {split} split of .*: Image Not Found {unreadable}$"
    for out in (tmp_path / "eval", None):
        with pytest.raises(UserError, match=message):  # from the loader's workers, out or not
            ground_truth_eval(tiny_dataset / "data.yaml", untrained_detector, out, conf_from=conf_from)
    assert [p.name for p in tmp_path.iterdir()] == ["cwd"]  # nothing of out, nothing hidden beside it


def test_an_empty_existing_out_folder_is_used(tiny_dataset, tmp_path, untrained_detector) -> None:
    out = tmp_path / "eval"
    out.mkdir()
    report = ground_truth_eval(tiny_dataset / "data.yaml", untrained_detector, out)
    assert report.save_dir == str(out) and (out / "evaluation.json").is_file()


def test_the_validator_scores_as_yolo_val_does(tmp_path: Path) -> None:
    args = validator_args(tmp_path / "data.yaml", "best.pt", "test", 640, 16, None, tmp_path / "eval", False)
    assert (args["conf"], args["iou"], args["max_det"], args["rect"]) == (0.001, 0.7, 300, True)
    assert MAX_DET == 300 and args["mode"] == "val" and args["exist_ok"] is True
    assert (args["project"], args["name"]) == (str(tmp_path), "eval")
    default = validator_args(tmp_path / "data.yaml", None, "val", 64, 1, "cpu", None, True)
    assert default["exist_ok"] is False and default["name"] == "evaluate"  # numbered when taken


def test_cli_defaults_are_evaluate_defaults() -> None:
    defaults = {name: p.default for name, p in inspect.signature(evaluate).parameters.items()}
    for action in build_parser()._actions:
        if action.dest != "help" and not action.required:
            assert action.default == defaults[action.dest], action.dest


def hand_made_report(**changes) -> EvaluationReport:
    """An evaluation of two classes, one of them with a long name, with a COCO cross-check and a note."""
    level = ImageLevelReport(
        labels=[GOOD, "bent", "a_very_long_defect"],
        matrix=[[2, 0, 0], [0, 1, 0], [0, 1, 0]],
        accuracy=0.75,
        balanced_accuracy=2 / 3,
        per_label_accuracy={GOOD: 1.0, "bent": 1.0, "a_very_long_defect": 0.0},
        auroc=0.9,
        conf=0.25,
        n_images=4,
    )
    row = {"Images": 2, "Instances": 3, "Box-P": 0.7, "Box-R": 0.6, "mAP50": 0.8, "mAP50-95": 0.5}
    fields = {
        "weights": "best.pt",
        "data": "data.yaml",
        "split": "test",
        "ultralytics": {
            "metrics/mAP50(B)": 0.8,
            "metrics/mAP50-95(B)": 0.5,
            "metrics/precision(B)": 0.7,
            "metrics/recall(B)": 0.6,
        },
        "per_class": [{"Class": "bent", **row}, {"Class": "a_very_long_defect", **row}],
        "coco": {
            "mAP50": 0.9,
            "mAP50-95": 0.55,
            "n_detections": 5,
            "per_class": {"bent": {"AP50": 0.25, "AP50-95": 0.1}},
        },
        "image_level": level,
        "save_dir": "runs/detect/evaluate",
        "notes": ["no COCO file x.json"],
    }
    return EvaluationReport(**{**fields, **changes})


def test_the_printed_report_shows_every_figure() -> None:
    lines = format_report(hand_made_report()).splitlines()
    assert f"{'ultralytics validator':24s}     0.800     0.500   0.700   0.600" in lines
    assert f"{'pycocotools COCOeval':24s}     0.900     0.550" in lines
    assert "  mAP50 gap (COCO - ultralytics): +0.100" in lines
    bent = next(line for line in lines if line.startswith("bent "))
    assert bent.endswith("   0.800    0.500      0.250")  # ultralytics' AP50, AP50-95, then COCO's AP50
    long_row = next(line for line in lines if line.startswith("a_very_long_defect "))
    assert long_row.endswith("   0.500")  # no COCO figure for it
    header = next(line for line in lines if line.strip().startswith("good"))
    assert header.split() == ["good", "bent", "a_very_long_defect"]  # the long name whole
    matrix_row = next(line for line in lines if line.startswith("  a_very_long_defect"))
    assert matrix_row.split()[1:4] == ["0", "1", "0"] and matrix_row.endswith("   acc 0.000")
    assert "note: no COCO file x.json" in lines


@pytest.mark.parametrize(("coco_map50", "gap"), [(0.7996, "+0.000"), (0.8004, "+0.000"), (0.7994, "-0.001")])
def test_a_gap_that_rounds_to_nothing_is_printed_without_a_sign_of_its_own(
    coco_map50: float, gap: str
) -> None:
    # COCOeval 0.241 against ultralytics' 0.242 (rounded) printed "-0.000" on hazelnut_toy
    coco = {"mAP50": coco_map50, "mAP50-95": 0.5, "n_detections": 5, "per_class": {}}
    lines = format_report(hand_made_report(coco=coco)).splitlines()
    assert f"  mAP50 gap (COCO - ultralytics): {gap}" in lines


def test_a_split_without_a_true_box_prints_no_map_gap() -> None:
    # COCOeval's NaN beside ultralytics' 0.000: the line says why, instead of a gap of "+nan"
    coco = {"mAP50": float("nan"), "mAP50-95": float("nan"), "n_detections": 3, "per_class": {}}
    lines = format_report(hand_made_report(coco=coco)).splitlines()
    assert f"{'pycocotools COCOeval':24s}         -         -" in lines  # '-' as in the tables, not nan
    assert "  no true box in this split: no mAP is defined (ultralytics' 0.000 stands for none)" in lines
    assert not any("mAP50 gap" in line for line in lines)


def test_the_threshold_is_printed_with_the_digits_to_pass_back() -> None:
    from dataclasses import replace

    report = hand_made_report()
    report = replace(report, image_level=replace(report.image_level, conf=0.05234109876))
    assert "class = top box with score >= 0.0523411, else good" in format_report(report)  # was 0.0523


class FlagEveryGoodImageValidator(GroundTruthValidator):
    """Ground truth, plus a score-1 box of class 0 on every image without labels: no threshold tells
    the good images apart. Records the input size each run used."""

    sizes: list[int] = []

    def update_metrics(self, preds, batch) -> None:
        type(self).sizes.append(self.args.imgsz)
        for si in range(len(preds)):
            if not (batch["batch_idx"] == si).any():
                batch["bboxes"] = torch.cat([batch["bboxes"], torch.tensor([[0.1, 0.1, 0.1, 0.1]])])
                batch["cls"] = torch.cat([batch["cls"], torch.zeros(1, *batch["cls"].shape[1:])])
                batch["batch_idx"] = torch.cat([batch["batch_idx"], torch.tensor([float(si)])])
        super().update_metrics(preds, batch)


class FlagsOnlyAsPredictedValidator(FlagEveryGoodImageValidator):
    """:class:`FlagEveryGoodImageValidator`'s boxes as ``detection.predict`` finds them (:attr:`calls`); no
    box in the validator's own letterbox (:attr:`detections`)."""

    def update_metrics(self, preds, batch) -> None:
        super().update_metrics(preds, batch)
        none = ImageDetections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int))
        self.detections = dict.fromkeys(self.detections, none)


# the second: the warning reads the calls the conf was picked from; from the validator's own boxes it
# said the detector boxes nothing, or nothing at all
@pytest.mark.parametrize("validator_class", [FlagEveryGoodImageValidator, FlagsOnlyAsPredictedValidator])
def test_a_picked_conf_that_calls_every_good_image_defective_is_a_warning_note(
    tiny_dataset, tmp_path, untrained_detector, validator_class
) -> None:
    report = evaluate(
        tiny_dataset / "data.yaml", untrained_detector, split="val", conf_from="train", imgsz=64,
        device="cpu", out=tmp_path / "eval", plots=False, validator_class=validator_class,
    )  # fmt: skip
    warning = [note for note in report.notes if note.startswith("warning: on the train split, conf ")]
    assert (
        len(warning) == 1
        and "images defective, the " in warning[0]
        and warning[0].endswith(
            "; the pick is no threshold to use: leave out --conf-from (its pick replaces --conf) and give "
            "--conf yourself, or pick it on another split with both good and defective images"
        )
    )


class WrongTypeValidator(GroundTruthValidator):
    """Ground truth, each box scored as the next defect type: no box on a good image, every defect image
    called wrong whatever the threshold (its type below its box score, good above it). The box figures'
    truth is shifted alike: the image calls are what matter here, read from the split's labels."""

    def update_metrics(self, preds, batch) -> None:
        super().update_metrics(preds, {**batch, "cls": (batch["cls"] + 1) % len(NAMES)})


def test_a_conf_picked_where_every_threshold_ties_is_a_warning_note(
    tiny_dataset, tmp_path, untrained_detector
) -> None:
    # every candidate gave the same accuracy, so the pick was --conf's neighbour, not a choice: it was
    # noted 'conf 0.5 picked on the train split (accuracy 0.333 there)' without a word
    report = evaluate(
        tiny_dataset / "data.yaml", untrained_detector, split="val", conf_from="train", imgsz=64,
        device="cpu", out=tmp_path / "eval", plots=False, validator_class=WrongTypeValidator,
    )  # fmt: skip
    labels = image_labels(json.loads((tiny_dataset / "annotations" / "instances_train.json").read_text()))
    goods = sum(label == GOOD for label in labels.values()) / len(labels)  # every defect called wrong
    assert 0 < goods < 1
    conf = report.image_level.conf
    warning = [note for note in report.notes if note.startswith("warning: on the train split, ")]
    assert warning == [
        f"warning: on the train split, every threshold gives the same defect-type accuracy ({goods:.3f}): "
        f"conf {conf:.6g} is no pick, only the one nearest --conf 0.25; "
        "the pick is no threshold to use: leave out --conf-from (its pick replaces --conf) and give --conf "
        "yourself, or pick it on another split with both good and defective images"
    ]
    assert not any("pass --conf" in note for note in report.notes)
    # the note beside it said 'conf 0.5 picked on the train split', where the warning says it is no pick
    assert report.notes[0] == (
        f"conf {conf:.6g} not picked: every threshold ties on the train split (accuracy {goods:.3f} there), "
        "so the candidate nearest --conf 0.25 is used"
    )
    assert not any("picked on" in note for note in report.notes)


def test_without_imgsz_both_splits_run_at_the_size_the_model_was_trained_at(
    tiny_dataset, tmp_path, untrained_detector, monkeypatch
) -> None:
    monkeypatch.setattr(untrained_detector, "args", {"imgsz": 96}, raising=False)  # as best.pt records it
    FlagEveryGoodImageValidator.sizes = []
    evaluate(
        tiny_dataset / "data.yaml", untrained_detector, split="val", conf_from="train", device="cpu",
        out=tmp_path / "eval", plots=False, validator_class=FlagEveryGoodImageValidator,
    )  # fmt: skip
    assert FlagEveryGoodImageValidator.sizes and set(FlagEveryGoodImageValidator.sizes) == {96}


@pytest.mark.parametrize(("imgsz", "ran_at"), [(None, 96), (100, 128)])  # the trained size; off the stride
def test_evaluation_json_and_report_name_the_size_the_photos_ran_at(
    tiny_dataset, tmp_path, untrained_detector, monkeypatch, capsys, imgsz, ran_at
) -> None:
    # evaluation.json recorded no size: an evaluation at 640 and one at the trained 96 read alike
    monkeypatch.setattr(untrained_detector, "args", {"imgsz": 96}, raising=False)  # as best.pt records it
    report = evaluate(
        tiny_dataset / "data.yaml", untrained_detector, split="val", imgsz=imgsz, device="cpu",
        out=tmp_path / "eval", plots=False, validator_class=FlagEveryGoodImageValidator,
    )  # fmt: skip
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text())["imgsz"] == ran_at
    # the rounding was ultralytics' WARNING line, not the note detection.predict and detection.train give
    rounded = f"note: --imgsz {imgsz} is not a multiple of the detector's stride: it runs at {ran_at}\n"
    assert (rounded in capsys.readouterr().err) == (imgsz is not None and imgsz != ran_at)
    assert (
        format_report(report)
        .splitlines()[0]
        .endswith(f" split of {tiny_dataset / 'data.yaml'} at imgsz {ran_at}")
    )


@pytest.mark.parametrize("overlap", ["-3", "0.5"])
def test_a_tile_overlap_without_tile_is_refused(tmp_path, capsys, overlap) -> None:
    # whole images have no windows: the overlap was ignored unchecked (-3 ran silently), as in the cascade
    argv = ["--data", str(tmp_path / "data.yaml"), "--weights", str(tmp_path / "none.pt")]
    assert main([*argv, "--tile-overlap", overlap]) == 2
    assert capsys.readouterr().err == "error: --tile-overlap needs --tile\n"


def test_the_trained_photo_check_hashes_under_a_bar(tiny_dataset, tmp_path, untrained_detector, monkeypatch):
    # every byte of the split is hashed after the validator's bar, without one of its own
    from detection import evaluate as module

    seen = []
    monkeypatch.setattr(module, "trained_overlap_warning", lambda *a, **k: seen.append(k.get("progress")))
    ground_truth_eval(tiny_dataset / "data.yaml", untrained_detector, tmp_path / "eval")
    assert seen == [True]


def test_imgsz_help_is_the_same_in_evaluate_and_predict() -> None:
    # evaluate's said "model input size" only: no unit, and not that with --tile it is each window's
    from detection.evaluate import build_parser as evaluate_parser
    from detection.predict import build_parser as predict_parser

    def imgsz_help(parser):
        return next(action.help for action in parser._actions if "--imgsz" in action.option_strings)

    expected = "model input size in px, per window with --tile (default: the size it trained at)"
    assert imgsz_help(evaluate_parser()) == imgsz_help(predict_parser()) == expected


@pytest.mark.parametrize("replaced", [False, True])
def test_a_ctrl_c_says_the_out_folder_holds_an_earlier_evaluation(
    tmp_path, capsys, monkeypatch, replaced
) -> None:
    # 'interrupted' alone: the earlier evaluation.json left in --out read as this run's
    out = tmp_path / "eval"
    out.mkdir()
    (out / "evaluation.json").write_text("{}\n")

    def stop(**options):
        if replaced:  # a Ctrl-C swallowed by ultralytics' plotting: this run's evaluation was written
            (out / "evaluation.json").unlink()
            (out / "evaluation.json").write_text('{"new": 1}\n')
        raise KeyboardInterrupt

    monkeypatch.setattr("detection.evaluate.evaluate", stop)
    assert main(["--data", str(tmp_path), "--weights", str(tmp_path / "w.pt"), "--out", str(out)]) == 130
    note = f"stopped: nothing of this evaluation was kept; {out} holds an earlier one's\n"
    assert (note in capsys.readouterr().err) == (not replaced)


@pytest.mark.parametrize("emptied", [False, True])
@pytest.mark.parametrize("argv", [["--split", "val"], ["--split", "train", "--conf-from", "val"]])
def test_a_split_without_a_single_label_file_is_refused_before_the_model_loads(
    tiny_dataset: Path, tmp_path: Path, capsys, monkeypatch, argv: list[str], emptied: bool
) -> None:
    # its labels/ folder gone, every image was scored as good: mAP 0, 'no defect image in this split'.
    # Emptied (an export writing no file for an image without boxes, or the files deleted): refused too,
    # ultralytics reads it as unlabelled; the line said nothing of which of the two it was
    monkeypatch.setattr("detection.evaluate.load_detector", lambda weights: pytest.fail("model loaded"))
    weights = tmp_path / "best.pt"
    weights.write_text("never loaded")
    data = copy_with_names(tiny_dataset, tmp_path / "copy", read_data_names(tiny_dataset))
    labels = data.parent / "labels" / "val"
    shutil.rmtree(labels)
    if emptied:
        labels.mkdir()
    assert main(["--data", str(data), "--weights", str(weights), *argv]) == 2
    first = sorted((data.parent / "images" / "val").iterdir())[0]
    images = len(split_images(data, "val"))
    where, fix = (
        (f"{labels} holds none of theirs", ", in a split of good images alone too")
        if emptied
        else (f"there is no folder {labels}: moved or misspelt?", "")
    )
    assert capsys.readouterr().err == (
        f"error: none of the {images} images of the 'val' split of {data} has a label file (ultralytics "
        f"reads {first.name}'s from {labels / first.with_suffix('.txt').name}; {where}): "
        f"scoring needs them, an empty .txt for each image without defects{fix}\n"
    )


def drop_from_loader(image: Path) -> None:
    """Gives ``image`` a label line of a class id beyond the data set's names: it still decodes, and
    ultralytics' loader skips it (with a warning among its scan lines)."""
    label = image.parent.parent.parent / "labels" / image.parent.name / f"{image.stem}.txt"
    label.write_text(f"{len(NAMES) + 5} 0.5 0.5 0.2 0.2\n")


def read_data_names(dataset: Path) -> dict[int, str]:
    return yaml.safe_load((dataset / "data.yaml").read_text())["names"]


def test_a_heic_photo_in_the_scored_split_is_refused_by_its_type(tmp_path: Path) -> None:
    # ultralytics' IMG_FORMATS takes .heic into the split: the decode called a phone's photo 'corrupt'
    from detection.evaluate import check_photos_decode

    (tmp_path / "images" / "test").mkdir(parents=True)
    heic = tmp_path / "images" / "test" / "a.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    (tmp_path / "data.yaml").write_text(
        f"path: {tmp_path}\ntrain: images/test\nval: images/test\ntest: images/test\nnames: [a]\n"
    )
    with pytest.raises(UserError) as error:
        check_photos_decode(tmp_path / "data.yaml", ("test", None))
    assert str(error.value) == (
        f"cannot read image {heic}: a HEIC/HEIF photo, which this toolkit does not read (ultralytics "
        "would try to install pi-heif for it): save it as JPEG or PNG"
    )
