"""A PatchCore run's regions as a second source of boxes for the cascade (``--anomaly-run``)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import yaml

import inspection.evaluate
import inspection.predict
from anomaly.run import fit_run
from common.errors import UserError
from converters.convert import ConvertConfig, convert
from converters.splits import Splits, save_splits
from inspection.anomaly_regions import ANOMALY, AnomalyRegions, box_union
from inspection.evaluate import evaluate_split
from inspection.inspector import Inspector
from inspection.options import CascadeOptions, load_regions
from inspection.predict import main
from segmentation.data import load_split
from segmentation.finetuned import save_decoder
from tests.inspection.conftest import CLASS_SCORES, StubDetector, paint_photo
from tests.segmentation.conftest import build_tiny_sam

#: Random MobileNetV2 weights at 64 px: a fit in well under a second (as tests/anomaly's).
TINY = {"pretrained": False, "image_size": 64, "coreset_ratio": 0.5, "num_neighbors": 3}


class FixedRegions:
    """Regions at fixed boxes, whatever the photo (what the inspector asks of :class:`AnomalyRegions`)."""

    def __init__(self, boxes: list[list[float]]) -> None:
        self._boxes = np.array(boxes, dtype=float).reshape(-1, 4)
        self.detected: list[np.ndarray] = []

    def boxes(self, rgb: np.ndarray, path, detected: np.ndarray | None = None) -> np.ndarray:
        self.detected.append(detected)
        return self._boxes


@pytest.fixture
def patchcore_run(tmp_path: Path) -> Path:
    """A PatchCore run fit on two good 60 x 80 photos (the size of the inspection tests' photos)."""
    for i in range(2):
        paint_photo(tmp_path / "mvtec" / "widget" / "train" / "good" / f"{i:03d}.png", seed=50 + i)
    fit_run(tmp_path / "mvtec", "widget", tmp_path / "patchcore", config=TINY, progress=False)
    return tmp_path / "patchcore"


def test_threshold_zero_makes_the_whole_photo_one_region_and_a_huge_one_none(patchcore_run, photos) -> None:
    rgb = np.zeros((60, 80, 3), np.uint8)
    everything = AnomalyRegions.from_run(patchcore_run, threshold="0")
    assert everything.boxes(rgb, photos / "one.png").tolist() == [[0.0, 0.0, 80.0, 60.0]]
    assert everything.threshold_from == "given" and everything.image_shape == (60, 80)
    nothing = AnomalyRegions.from_run(patchcore_run, threshold="1e9")
    assert nothing.boxes(rgb, photos / "one.png").shape == (0, 4)


def test_photos_of_another_product_are_warned_about_once_naming_the_runs_category(
    patchcore_run, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # an --anomaly-run fit on another product added a box over nearly every photo without a word (the
    # photos' size and colour alike): anomaly.predict's warning, once per run
    from anomaly.data import read_rgb

    good = read_rgb(paint_photo(tmp_path / "good.png", seed=60))  # a new photo of the fit product
    other = np.zeros((60, 80, 3), np.uint8)
    other[:] = (30, 60, 200)
    other[20:40, 30:50] = (240, 220, 20)  # a yellow part on blue
    [prediction] = AnomalyRegions.from_run(patchcore_run, threshold="1").run.predict([good])
    regions = AnomalyRegions.from_run(patchcore_run, threshold=repr(float(prediction.anomaly_map.max())))
    capsys.readouterr()
    regions.boxes(good, tmp_path / "good.png")
    assert capsys.readouterr().err == ""
    regions.boxes(other, tmp_path / "a.png")
    regions.boxes(other, tmp_path / "b.png")
    err = capsys.readouterr().err
    assert err.startswith(f"warning: 100% of {tmp_path / 'a.png'} is over the threshold ")
    assert f": {patchcore_run} was fit on 'widget' photos, and a photo of another product" in err
    assert err.count("\n") == 1


def test_a_region_mostly_inside_the_detectors_boxes_is_left_out(patchcore_run, photos) -> None:
    # Threshold 0: the whole 60 x 80 photo is one region; boxes covering 3/8 and 5/8 of it.
    rgb, path = np.zeros((60, 80, 3), np.uint8), photos / "one.png"
    three_eighths, five_eighths = [[0, 0, 30, 60]], [[0, 0, 50, 60]]
    half = AnomalyRegions.from_run(patchcore_run, threshold="0", max_covered=0.5)
    assert half.boxes(rgb, path, np.array(three_eighths, float)).tolist() == [[0.0, 0.0, 80.0, 60.0]]
    assert half.boxes(rgb, path, np.array(five_eighths, float)).shape == (0, 4)
    assert half.boxes(rgb, path, np.zeros((0, 4))).shape == (1, 4) and half.record()["max_covered"] == 0.5
    every = AnomalyRegions.from_run(patchcore_run, threshold="0", max_covered=1.0)
    assert every.boxes(rgb, path, np.array([[0, 0, 80, 60]], float)).shape == (1, 4)
    exactly = AnomalyRegions.from_run(patchcore_run, threshold="0", max_covered=0.375)
    assert exactly.boxes(rgb, path, np.array(three_eighths, float)).shape == (1, 4)  # at the bound: kept
    # the detector's boxes are fractional: its last partial column counts (31 of 80 columns: dropped)
    assert exactly.boxes(rgb, path, np.array([[0, 0, 30.2, 60]])).shape == (0, 4)
    with pytest.raises(UserError, match=r"--anomaly-max-covered must be in \[0, 1\], got 1.5"):
        AnomalyRegions.from_run(patchcore_run, threshold="0", max_covered=1.5)


def test_by_default_every_region_is_kept_and_at_0_any_covered_pixel_drops_it(patchcore_run, photos) -> None:
    rgb, path, whole = np.zeros((60, 80, 3), np.uint8), photos / "one.png", np.array([[0, 0, 80, 60]], float)
    default = AnomalyRegions.from_run(patchcore_run, threshold="0")
    assert default.max_covered == default.record()["max_covered"] == 1.0
    assert default.boxes(rgb, path, whole).shape == (1, 4)  # the region lies wholly in the detector's box
    assert AnomalyRegions(default.run, 0.0, "given").boxes(rgb, path, whole).shape == (1, 4)
    none = AnomalyRegions.from_run(patchcore_run, threshold="0", max_covered=0)
    assert none.boxes(rgb, path, np.array([[0, 0, 1, 1]], float)).shape == (0, 4)  # one pixel of 4800
    assert none.boxes(rgb, path, np.zeros((0, 4))).shape == (1, 4)


def test_a_split_holding_a_photo_the_run_was_fit_on_is_not_scored(patchcore_run, tmp_path) -> None:
    regions = AnomalyRegions.from_run(patchcore_run, threshold="1")
    assert sorted(regions.run.fit_keys) == ["widget/train/good/000", "widget/train/good/001"]
    data = tmp_path / "data"
    data.mkdir()
    splits = Splits(train=["widget/train/good/000"], test=["widget/test/scratch/000"])
    save_splits(splits, data / "splits.json")
    regions.check_not_fit_on(data, "test")  # the fit photo is in train: fine
    with pytest.raises(UserError, match="refusing to score widget/train/good/000 of the train split: the "):
        regions.check_not_fit_on(data, "train")
    save_splits(Splits(test=["widget/train/good/000", "widget/train/good/001"]), data / "splits.json")
    with pytest.raises(UserError, match=r"good/000 of the test split: .* fit on it \(and 1 more\)"):
        regions.check_not_fit_on(data, "test")
    spaced = tmp_path / "my data"
    spaced.mkdir()
    save_splits(Splits(test=["widget/train/good/000"]), spaced / "splits.json")
    root, category = regions.run.info["root"], regions.run.info["category"]
    command = f"python -m anomaly.train --root {shlex.quote(root)} --category {category} --data '{spaced}'"
    hint = f"; fit one on the good photos outside val/test ({command} --out NEW_RUN)"  # was --data ... only
    with pytest.raises(UserError, match=f"the --anomaly-run was fit on it{re.escape(hint)}$"):
        regions.check_not_fit_on(spaced, "test")


def test_a_scored_photo_with_the_bytes_of_a_fit_photo_is_not_scored(patchcore_run, tmp_path) -> None:
    regions = AnomalyRegions.from_run(patchcore_run, threshold="1")
    data = tmp_path / "data"
    (data / "images" / "test").mkdir(parents=True)
    save_splits(Splits(test=["lot/test/good/007"]), data / "splits.json")  # another key: a renamed copy
    fit = tmp_path / "mvtec" / "widget" / "train" / "good" / "001.png"
    copy, other = data / "images" / "test" / "lot_007.png", data / "images" / "test" / "lot_008.png"
    shutil.copyfile(fit, copy)
    paint_photo(other, seed=99)
    regions.check_not_fit_on(data, "test", [other])
    message = f"^refusing to score {copy}: its bytes are those of widget/train/good/001, which the model"
    with pytest.raises(UserError, match=message):
        regions.check_not_fit_on(data, "test", [other, copy])
    del regions.run.info["fit_sha256"]  # a run fit before the hashes were recorded: by key alone, as then
    regions.check_not_fit_on(data, "test", [other, copy])


def test_a_run_fit_on_the_data_sets_own_train_split_is_not_told_to_refit_that_way(
    patchcore_run, tmp_path
) -> None:
    regions = AnomalyRegions.from_run(patchcore_run, threshold="1")
    data = tmp_path / "data"
    data.mkdir()
    save_splits(Splits(train=["widget/train/good/000"]), data / "splits.json")
    regions.run.info["protocol"] = {"mode": "split", "data": str(data.resolve())}  # anomaly.train --data
    # it said to refit with the very command that made this run, which fits on the train split again
    with pytest.raises(UserError) as error:
        regions.check_not_fit_on(data, "train")
    assert str(error.value).endswith(
        "fit on it; anomaly.train --data fits on the train split's good photos: score val or test with it"
    )
    assert "NEW_RUN" not in str(error.value)


def test_the_train_split_is_never_told_to_refit_with_data(patchcore_run, tmp_path) -> None:
    # anomaly.train --data fits on the train split's good photos: a refit would be refused on train again.
    # Seen with a run fit with --data on a data set moved since (run.json names the old folder), and so
    # for a run fit on train/good (MVTec protocol) whose photos the train split holds.
    regions = AnomalyRegions.from_run(patchcore_run, threshold="1")
    moved = tmp_path / "moved"
    moved.mkdir()
    save_splits(Splits(train=["widget/train/good/000"]), moved / "splits.json")
    for protocol in ({"mode": "split", "data": str(tmp_path / "before the move")}, {"mode": "mvtec"}):
        regions.run.info["protocol"] = protocol
        with pytest.raises(UserError) as error:
            regions.check_not_fit_on(moved, "train")
        assert str(error.value).endswith("fits on the train split's good photos: score val or test with it")
        assert "NEW_RUN" not in str(error.value)


def test_box_union_rounds_fractional_edges_outwards_and_clips_at_the_border() -> None:
    inside = box_union(np.array([[1.5, 0.2, 3.0, 1.0], [-2.0, 3.0, 1.0, 9.0]]), (4, 5))
    expected = np.zeros((4, 5), bool)
    expected[0:1, 1:3] = True
    expected[3:4, 0:1] = True
    np.testing.assert_array_equal(inside, expected)
    assert not box_union(np.zeros((0, 4)), (2, 3)).any()
    np.testing.assert_array_equal(  # fractional far edges round up: a box's last partial pixel is in it
        box_union(np.array([[0.0, 0.0, 1.5, 2.2]]), (4, 4)), np.pad(np.ones((3, 2), bool), ((0, 1), (0, 2)))
    )


def test_a_metrics_files_threshold_is_raised_above_its_good_images(patchcore_run, tmp_path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"pixel": {"f1_threshold": 0.1, "good_peak": 5.0}}))
    regions = AnomalyRegions.from_run(patchcore_run, threshold=str(metrics))
    assert 5.0 < regions.threshold < 5.001 and regions.threshold_from.endswith("above its good images")
    assert regions.record()["threshold"] == regions.threshold


def test_regions_need_a_threshold_a_sane_min_area_and_the_runs_photo_size(patchcore_run, tmp_path) -> None:
    with pytest.raises(UserError, match="no threshold: pass --anomaly-threshold VALUE"):
        AnomalyRegions.from_run(patchcore_run)
    with pytest.raises(UserError, match="--anomaly-min-area must be >= 1 pixel, got 0"):
        AnomalyRegions.from_run(patchcore_run, threshold="1", min_area=0)
    # more pixels than a whole 80 x 60 photo: every region was dropped without a word
    with pytest.raises(
        UserError, match=r"^--anomaly-min-area 4801 is more pixels than a whole photo \(80x60 = 4800\)"
    ):
        AnomalyRegions.from_run(patchcore_run, threshold="1", min_area=4801)
    assert AnomalyRegions.from_run(patchcore_run, threshold="1", min_area=4800).min_area == 4800
    regions = AnomalyRegions.from_run(patchcore_run, threshold="1")
    with pytest.raises(UserError, match="big.png"):
        regions.boxes(np.zeros((64, 64, 3), np.uint8), tmp_path / "big.png")


def test_regions_are_anomaly_instances_scored_at_conf_after_the_detectors_boxes(photos, tiny_sam) -> None:
    regions = FixedRegions([[50, 10, 70, 40]])
    inspector = Inspector(StubDetector(), tiny_sam, regions=regions)
    assert inspector.class_names == ["scratch", "stain", ANOMALY]
    assert inspector.detector_class_names == ["scratch", "stain"]
    result = inspector(photos / "two.png")  # a scratch (0.9) and a stain (0.6)
    assert result.names == ["scratch", "stain", ANOMALY] and result.classes.tolist() == [0, 1, 2]
    assert result.scores.tolist() == pytest.approx([0.9, 0.6, 0.25])
    assert result.boxes[2].tolist() == [50, 10, 70, 40] and result.masks.shape == (3, 60, 80)
    assert result.verdict == "scratch"  # the detector's class where it has a box
    assert regions.detected[0].tolist() == result.boxes[:2].tolist()  # the detector's boxes, to cover
    inspector.set_conf(0.5)
    assert inspector(photos / "two.png").scores[2] == pytest.approx(0.5)


def test_a_photo_only_the_regions_flag_is_called_anomaly(photos, tiny_sam) -> None:
    inspector = Inspector(StubDetector(), tiny_sam, regions=FixedRegions([[5, 5, 25, 25]]))
    result = inspector(photos / "good.png")  # no box of the detector's
    assert result.verdict == ANOMALY and result.score == pytest.approx(0.25) and len(result) == 1
    assert (
        Inspector(StubDetector(), tiny_sam, regions=FixedRegions([]))(photos / "good.png").verdict == "good"
    )


def test_a_detector_with_an_anomaly_class_is_refused(tiny_sam) -> None:
    with pytest.raises(UserError, match="the detector has a class named 'anomaly'"):
        Inspector(StubDetector(["scratch", "anomaly"]), tiny_sam, regions=FixedRegions([]))
    assert Inspector(StubDetector(["scratch", "anomaly"]), tiny_sam).class_names == ["scratch", "anomaly"]


def _scratch_data(tmp_path: Path) -> Path:
    """A converted set of 60 x 80 photos: four with one scratch, four good (half of each for test)."""
    category = tmp_path / "mvtec" / "widget"
    mask = np.zeros((60, 80), np.uint8)
    mask[10:25, 10:30] = 255
    (category / "ground_truth" / "scratch").mkdir(parents=True)
    for i in range(4):
        paint_photo(category / "train" / "good" / f"{10 + i:03d}.png", seed=1 + i)  # not patchcore_run's
        paint_photo(category / "test" / "scratch" / f"{i:03d}.png", [(0, 10, 10, 30, 25)], seed=10 + i)
        assert cv2.imwrite(str(category / "ground_truth" / "scratch" / f"{i:03d}_mask.png"), mask)
    data = tmp_path / "data"
    config = ConvertConfig(root=category, out=data, formats=("yolo", "coco"), ratios=(0.5, 0.0, 0.5))
    convert(replace(config, progress=False))
    return data


def test_an_evaluation_scores_the_detectors_classes_and_calls_anomaly(tmp_path: Path) -> None:
    split = load_split(_scratch_data(tmp_path), "test")
    good = sum(not image.annotations for image in split.images)
    assert good and good < len(split.images)
    inspector = Inspector(
        StubDetector(["scratch"]), build_tiny_sam(), keep_probs=True, regions=FixedRegions([[60, 40, 75, 55]])
    )
    figures, _ = evaluate_split(inspector, split, progress=False)
    level = figures["image_level"]
    assert level["labels"] == ["good", "scratch", ANOMALY]  # the calls: the columns
    assert level["true_labels"] == ["good", "scratch"] and len(level["matrix"]) == 2  # no anomaly row
    assert level["matrix"][0] == [0, 0, good]  # good photos: only the region flags them
    assert level["matrix"][1] == [0, len(split.images) - good, 0]  # the detector's class wins
    assert figures["detections"] == len(split.images) + (len(split.images) - good)
    assert figures["per_image"]["good"]["iou"] == 0.0
    assert set(figures["box"]["per_class"]) == {"scratch"}  # AP: the data set's classes only


def test_predict_with_an_anomaly_run(
    patchcore_run, photos, detector_file, tiny_registry, tmp_path, capsys
) -> None:
    decoder = save_decoder(build_tiny_sam(seed=1), tmp_path / "sam" / "decoder.pt", model="tiny")
    base = ["--detector", detector_file, "--sam", decoder, "--base-checkpoint", tiny_registry]
    base += ["--no-cache", "--no-progress", "--source", photos, "--anomaly-run", patchcore_run]
    out = tmp_path / "out"
    assert main([str(a) for a in (*base, "--out", out, "--anomaly-threshold", "0")]) == 0
    # the summary counted every instance alike: how many were PatchCore's regions was nowhere but
    # predictions.json
    images = json.loads((out / "images.json").read_text())
    anomaly_id = next(c["id"] for c in images["categories"] if c["name"] == ANOMALY)
    predictions = json.loads((out / "predictions.json").read_text())
    regions = sum(p["category_id"] == anomaly_id for p in predictions)
    assert regions and f"; {regions} of them PatchCore's regions (--anomaly-run, map threshold 0)" in (
        capsys.readouterr().out
    )
    assert images["categories"][-1]["name"] == ANOMALY
    verdicts = {i["file_name"]: i["verdict"] for i in images["images"]}
    assert verdicts["good.png"] == ANOMALY and verdicts["one.png"] == "scratch"
    mask_values = json.loads(next((out / "masks").rglob("mask_values.json")).read_text())
    assert mask_values["253"] == ANOMALY
    recorded = yaml.safe_load((out / "args.yaml").read_text())["anomaly_regions"]
    assert recorded["threshold"] == 0.0 and recorded["threshold_from"] == "given"
    assert recorded["run"] == str(patchcore_run) and recorded["image_shape"] == [60, 80]
    bank = json.loads((Path(patchcore_run) / "run.json").read_text())["bank"]["sha256"]
    assert recorded["memory_bank_sha256"] == bank


def test_evaluate_says_how_many_detections_the_anomaly_run_gave(
    patchcore_run, tiny_registry, tmp_path, capsys, monkeypatch
) -> None:
    # the summary counted the regions with the detector's boxes ('N detections'), as inspection.predict's
    # did until it said how many were PatchCore's
    monkeypatch.setattr(inspection.evaluate, "load_detector", lambda weights: StubDetector(["scratch"]))
    detector = tmp_path / "best.pt"
    detector.write_bytes(b"stub")
    decoder = save_decoder(build_tiny_sam(seed=1), tmp_path / "sam" / "decoder.pt", model="tiny")
    out = tmp_path / "report"
    args = ["--detector", detector, "--sam", decoder, "--base-checkpoint", tiny_registry, "--no-progress"]
    args += ["--data", _scratch_data(tmp_path / "labelled"), "--cache-dir", tmp_path / "cache", "--out", out]
    args += ["--anomaly-run", patchcore_run, "--anomaly-threshold", "0"]
    assert inspection.evaluate.main([str(a) for a in args]) == 0
    predictions = json.loads((out / "predictions.json").read_text())
    anomaly_id = next(c["id"] for c in json.loads((out / "images.json").read_text())["categories"]
                      if c["name"] == ANOMALY)  # fmt: skip
    regions = sum(p["category_id"] == anomaly_id for p in predictions)
    detections = json.loads((out / "metrics.json").read_text())["detections"]
    assert 0 < regions < detections
    assert (
        f"{detections} detections; {regions} of them PatchCore's regions (--anomaly-run, map threshold 0)"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--anomaly-threshold", "1"], "--anomaly-threshold needs --anomaly-run"),
        (["--anomaly-min-area", "4"], "--anomaly-min-area needs --anomaly-run"),  # was ignored
        (["--anomaly-max-covered", "0.5"], "--anomaly-max-covered needs --anomaly-run"),
        (["--anomaly-run", "RUN", "--anomaly-min-area", "0"], "--anomaly-min-area must be >= 1 pixel"),
        (
            ["--anomaly-run", "RUN", "--anomaly-max-covered", "-0.1"],
            "--anomaly-max-covered must be in [0, 1]",
        ),
        (["--anomaly-run", "RUN"], "no threshold: pass --anomaly-threshold VALUE"),  # not --threshold
        (["--anomaly-run", "RUN", "--anomaly-threshold", "nan"], "--anomaly-threshold must be a finite"),
    ],
)
def test_bad_anomaly_options_are_one_line(
    args, fragment, patchcore_run, photos, detector_file, tmp_path, capsys
) -> None:
    args = [str(patchcore_run) if a == "RUN" else a for a in args]
    base = ["--detector", detector_file, "--source", photos, "--out", tmp_path / "out", "--no-progress"]
    assert main([str(a) for a in (*base, *args)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and not (tmp_path / "out").exists()


def test_photos_of_another_size_than_the_runs_are_refused_up_front(
    patchcore_run, tmp_path, detector_file, capsys, monkeypatch
) -> None:
    def no_sam(*args, **kwargs):
        raise AssertionError("SAM loaded before the photos' sizes were checked")

    monkeypatch.setattr(inspection.predict, "load_sam_checkpoint", no_sam)
    paint_photo(tmp_path / "big" / "wide.png", size=(60, 90))
    base = ["--detector", detector_file, "--source", tmp_path / "big", "--out", tmp_path / "out"]
    base += ["--anomaly-run", patchcore_run, "--anomaly-threshold", "1", "--no-progress"]
    assert main([str(a) for a in base]) == 2
    err = capsys.readouterr().err
    assert "wide.png" in err and not (tmp_path / "out").exists()


class MapRun:
    """A run whose every photo gets one fixed anomaly map (what :class:`AnomalyRegions` asks of a run)."""

    def __init__(self, anomaly_map: np.ndarray) -> None:
        self.anomaly_map, self.image_shape, self.path = anomaly_map, anomaly_map.shape, Path("run")

    def predict(self, images, paths) -> list[SimpleNamespace]:
        return [SimpleNamespace(anomaly_map=self.anomaly_map) for _ in images]

    def warn_flagged_throughout(self, anomaly_map, threshold, name) -> None:
        """A stand-in fit on no category: nothing to warn of (AnomalyRun's warns)."""


def test_every_region_of_min_area_becomes_a_box_peak_first() -> None:
    anomaly_map = np.zeros((12, 12), np.float32)
    anomaly_map[1:6, 1:6] = 2.0  # 25 px
    anomaly_map[1:5, 8:12] = 1.5  # 16 px: exactly the default smallest region
    anomaly_map[8:11, 8:11] = 3.0  # 9 px, the highest peak: a speck below the default
    rgb = np.zeros((12, 12, 3), np.uint8)
    regions = AnomalyRegions(MapRun(anomaly_map), threshold=1.0, threshold_from="given")
    assert regions.boxes(rgb, "a.png").tolist() == [[1, 1, 6, 6], [8, 1, 12, 5]]
    every = AnomalyRegions(MapRun(anomaly_map), threshold=1.0, threshold_from="given", min_area=1)
    assert every.boxes(rgb, "a.png").tolist() == [[8, 8, 11, 11], [1, 1, 6, 6], [8, 1, 12, 5]]


def test_from_run_keeps_its_min_area_and_records_the_run_absolute(patchcore_run, monkeypatch) -> None:
    assert AnomalyRegions.from_run(patchcore_run, threshold="1").min_area == 16
    monkeypatch.chdir(patchcore_run.parent)
    regions = AnomalyRegions.from_run(patchcore_run.name, threshold="1", min_area=1)  # 1 px: the smallest
    record = regions.record()
    assert regions.min_area == 1 and record["min_area"] == 1 and record["run"] == str(patchcore_run)


def test_the_regions_see_the_photo_in_rgb(photos, tiny_sam) -> None:
    seen = []

    class RecordingRegions(FixedRegions):
        def boxes(self, rgb: np.ndarray, path, detected: np.ndarray | None = None) -> np.ndarray:
            seen.append(rgb.copy())
            return super().boxes(rgb, path, detected)

    Inspector(StubDetector(), tiny_sam, regions=RecordingRegions([]))(photos / "two.png")
    bgr = cv2.imread(str(photos / "two.png"), cv2.IMREAD_COLOR)
    assert len(seen) == 1 and np.array_equal(seen[0], cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_boxes_are_ranked_by_score_whatever_order_the_detector_gives(photos, tiny_sam) -> None:
    class ReversedDetector(StubDetector):  # tiled or third-party detectors need not sort their boxes
        def predict(self, source, **settings):
            results = super().predict(source, **settings)
            for result in results:
                found = result.boxes
                found.xyxy, found.conf, found.cls = found.xyxy.flip(0), found.conf.flip(0), found.cls.flip(0)
            return results

    result = Inspector(ReversedDetector(), tiny_sam, regions=FixedRegions([[50, 10, 70, 40]]))(
        photos / "two.png"
    )
    assert result.scores.tolist() == pytest.approx([0.9, 0.6, 0.25]) and result.classes.tolist() == [0, 1, 2]


def test_load_regions_passes_the_min_area(patchcore_run, photos) -> None:
    options = CascadeOptions(
        detector=Path("best.pt"), anomaly_run=patchcore_run, anomaly_threshold="1", anomaly_min_area=3
    )
    assert load_regions(options, [photos / "one.png"]).min_area == 3
    covered = replace(options, anomaly_max_covered=0.25)
    assert load_regions(covered, [photos / "one.png"]).max_covered == 0.25
    assert load_regions(replace(options, anomaly_run=None, anomaly_threshold=None), []) is None


def test_a_detector_box_at_conf_outranks_a_region_and_keeps_the_verdict(
    photos, tiny_sam, monkeypatch
) -> None:
    monkeypatch.setitem(CLASS_SCORES, 1, 0.5)  # a stain scored exactly at conf (0.5 is exact in float32)
    inspector = Inspector(StubDetector(), tiny_sam, conf=0.5, regions=FixedRegions([[5, 5, 25, 25]]))
    result = inspector(photos / "lot_2" / "a.png")  # one stain at 0.5: the region ties it
    assert result.classes.tolist() == [1, 2] and result.verdict == "stain"


def test_without_a_threshold_the_runs_own_evaluation_gives_it_above_its_good_images(patchcore_run) -> None:
    metrics = patchcore_run / "eval-val" / "metrics.json"
    metrics.parent.mkdir()
    metrics.write_text(json.dumps({"pixel": {"f1_threshold": 0.5, "good_peak": 0.75}}))
    regions = AnomalyRegions.from_run(patchcore_run)
    assert (
        0.75 < regions.threshold < 0.7501
        and regions.threshold_from == f"from {metrics}, above its good images"
    )
