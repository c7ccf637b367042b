"""anomaly.predict's outputs: COCO results the annotation page takes as proposals, MVTec-layout masks."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from anomaly.data import read_rgb
from anomaly.evaluate import evaluate_run
from anomaly.predict import check_default_out, predict_photos, resolve_threshold
from anomaly.predict import main as predict_main
from anomaly.run import fit_run, load_run
from common.errors import UserError
from common.io import sha256_file
from common.photo_sources import photo_files
from segmentation.annotate.proposal_file import class_names, read_proposal_file
from tests.anomaly.conftest import make_parts, repaint_as_another_product
from tests.conftest import assert_link_loop_line, without_home


@pytest.fixture
def run(parts: Path, tmp_path: Path, tiny_config: dict) -> Path:
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    return tmp_path / "run"


def test_a_min_area_above_the_photos_pixel_count_is_refused_before_any_photo_is_read(
    run: Path, parts: Path, tmp_path: Path
) -> None:
    # 64 x 64 photos: a region of 4097 pixels cannot be, every one was dropped without a word
    with pytest.raises(
        UserError, match=r"--min-area 4097 is more pixels than a whole photo \(64x64 = 4096\)"
    ):
        predict_photos(run, parts / "test", tmp_path / "pred", threshold="0", min_area=4097, progress=False)
    assert not (tmp_path / "pred").exists()
    # the photo's whole area is a region it can hold (threshold 0 flags every pixel)
    result = predict_photos(
        run, parts / "test", tmp_path / "pred", threshold="0", min_area=4096, progress=False
    )
    assert result["instances"] == 5


def test_predictions_load_as_annotation_proposals(run: Path, parts: Path, tmp_path: Path) -> None:
    # threshold 0 (maps are distances, >= 0) flags every photo: one whole-photo region each
    result = predict_photos(run, parts / "test", tmp_path / "pred", threshold="0", progress=False)
    assert result["photos"] == 5 and result["flagged"] == 5 and result["instances"] == 5
    proposals = read_proposal_file(tmp_path / "pred" / "predictions.json")
    assert {r.file_name for r in proposals.results} == {f"spot/00{i}.png" for i in range(3)} | {
        "good/000.png",
        "good/001.png",
    }
    assert class_names(proposals, ["anomaly"], keys_of={}) == ["anomaly"] * 5
    assert set(proposals.verdicts.values()) == {"anomaly"}
    mask = cv2.imread(
        str(tmp_path / "pred" / "masks" / "anomaly" / "spot__000_mask.png"), cv2.IMREAD_UNCHANGED
    )
    assert mask.shape == (64, 64) and set(np.unique(mask)) == {255}
    assert cv2.imread(str(tmp_path / "pred" / "anomaly_maps" / "good__000.png"), -1).dtype == np.uint16


def test_photos_over_the_threshold_nearly_throughout_are_warned_about_once(
    run: Path, parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # a run fit on another product flagged every photo as one defect without a word where the photos'
    # size and colour agree with its own (the only checks): 74% of each photo here, a tenth at most of
    # the run's own defect photos
    evaluate_run(run, progress=False, figure=False)
    other = repaint_as_another_product(make_parts(tmp_path / "elsewhere", name="disc"))
    capsys.readouterr()
    predict_photos(run, parts / "test", tmp_path / "own", progress=False)
    assert "warning:" not in capsys.readouterr().err
    result = predict_photos(run, other / "test", tmp_path / "disc", progress=False)
    err = capsys.readouterr().err
    assert result["flagged"] == 5 and err.count("\n") == 1  # once, not for each photo
    assert re.match(
        rf"warning: \d+% of {re.escape(str(other))}/test/\S+\.png is over the threshold \S+: "
        rf"{re.escape(str(run))} was fit on 'part' photos, and a photo of another product reads as one "
        r"defect throughout; are these of 'part'\? \(or is the threshold below a good photo's map "
        r"values\?\)\n$",
        err,
    )
    predict_photos(run, other / "test", tmp_path / "zero", threshold="0", progress=False)
    assert "warning:" not in capsys.readouterr().err  # threshold 0 flags every pixel on purpose


def test_a_threshold_picked_on_another_runs_maps_is_warned_about(
    run: Path, parts: Path, tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture
) -> None:
    # --threshold <another run of the same model>/eval-mvtec passed the backbone and size check and was
    # taken without a word, though picked on another product's maps
    other = repaint_as_another_product(make_parts(tmp_path / "elsewhere", name="disc"))
    fit_run(other.parent, "disc", tmp_path / "disc_run", config=tiny_config, progress=False)
    evaluate_run(tmp_path / "disc_run", progress=False, figure=False)
    evaluate_run(run, progress=False, figure=False)
    capsys.readouterr()
    resolve_threshold(None, run)  # its own evaluation: nothing to say
    assert capsys.readouterr().err == ""
    metrics = tmp_path / "disc_run" / "eval-mvtec" / "metrics.json"
    resolve_threshold(str(metrics), run)
    assert capsys.readouterr().err == (
        f"warning: --threshold {metrics} is a threshold picked on the maps of another memory bank (run "
        f"{tmp_path / 'disc_run'}, category 'disc'), not of {run}'s (fit on 'part'); evaluate this run for "
        f"its own (python -m anomaly.evaluate --run {run})\n"
    )


def test_high_threshold_leaves_photos_clean(run: Path, parts: Path, tmp_path: Path) -> None:
    result = predict_photos(
        run, parts / "test", tmp_path / "pred", threshold="1e9", maps=False, progress=False
    )
    assert result["flagged"] == 0 and json.loads((tmp_path / "pred" / "predictions.json").read_text()) == []
    images = json.loads((tmp_path / "pred" / "images.json").read_text())
    assert {i["verdict"] for i in images} == {"good"} and not (tmp_path / "pred" / "masks").exists()


def test_anomaly_map_pngs_span_zero_to_twice_the_threshold(run: Path, parts: Path, tmp_path: Path) -> None:
    photo = parts / "test" / "spot" / "000.png"
    [prediction] = load_run(run).predict([read_rgb(photo)])
    threshold = float(prediction.anomaly_map.max())
    predict_photos(run, photo, tmp_path / "pred", threshold=repr(threshold), progress=False)
    png = cv2.imread(str(tmp_path / "pred" / "anomaly_maps" / "000.png"), cv2.IMREAD_UNCHANGED)
    expected = prediction.anomaly_map / (2 * threshold) * 65535
    assert png.shape == expected.shape and np.abs(png - expected).max() <= 1.5


def test_threshold_from_the_runs_evaluation(run: Path) -> None:
    with pytest.raises(UserError, match="no threshold: pass --threshold"):
        resolve_threshold(None, run)
    metrics = evaluate_run(run, progress=False, figure=False)
    value, origin = resolve_threshold(None, run)
    assert value == metrics["pixel"]["f1_threshold"] and "eval-mvtec/metrics.json" in origin
    # the evaluation's folder given for its metrics.json: it said 'cannot read ...: Is a directory'
    assert resolve_threshold(str(run / "eval-mvtec"), run) == (value, origin)
    # the run folder itself (what --anomaly-run takes) names the evaluation inside to pass
    with pytest.raises(
        UserError, match=rf"^--threshold {run} is a folder without metrics.json: pass {run}/eval"
    ):
        resolve_threshold(str(run), run)


def test_without_a_threshold_a_run_fit_on_a_converter_split_is_told_to_evaluate_its_val_split(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "my data").mkdir()  # the data set is where the run says (a moved one is asked for)
    (run / "run.json").write_text(
        json.dumps({"protocol": {"mode": "split", "data": str(tmp_path / "my data")}})
    )
    # the bare command would score test/ of the category, whose good images this run was fit on: refused
    expected = f"(python -m anomaly.evaluate --run {run} --data '{tmp_path / 'my data'}' --split val)"
    with pytest.raises(UserError, match=re.escape(expected)):
        resolve_threshold(None, run)
    (run / "run.json").write_text(json.dumps({"protocol": {"mode": "mvtec", "data": None}}))
    with pytest.raises(UserError, match=re.escape(f"(python -m anomaly.evaluate --run {run}) so that")):
        resolve_threshold(None, run)


def test_a_metrics_files_mask_threshold_comes_before_its_pixel_one(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"pixel": {"f1_threshold": 1.0}, "masks": {"threshold": 2.5}}))
    assert resolve_threshold(str(path), tmp_path) == (2.5, f"from {path}")


@pytest.mark.parametrize("value", [-0.5, True])
def test_a_metrics_threshold_that_is_no_distance_is_refused_naming_the_file(tmp_path: Path, value) -> None:
    # was taken as it was: a hand-edited -0.5 flagged every pixel of every photo, true read as 1.0
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"masks": {"threshold": value}}))
    with pytest.raises(UserError, match=re.escape(f"{path}")):
        resolve_threshold(str(path), tmp_path)


@pytest.mark.parametrize("sections", [{"pixel": [1.0]}, {"masks": "x", "pixel": {"f1_threshold": 1.5}}])
def test_a_metrics_section_that_is_no_mapping_is_read_as_absent(tmp_path: Path, sections: dict) -> None:
    # "pixel": [1.0] in a hand-edited file stopped anomaly.predict with an AttributeError traceback
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(sections))
    if "masks" in sections:
        assert resolve_threshold(str(path), tmp_path) == (1.5, f"from {path}")
        return
    with pytest.raises(UserError, match=re.escape(f"{path} holds no pixel threshold")):
        resolve_threshold(str(path), tmp_path)


def test_a_relative_metrics_file_is_named_absolute_in_the_origin(tmp_path: Path, monkeypatch) -> None:
    # the origin is recorded with the predictions (threshold_from): as typed, it named no file elsewhere
    (tmp_path / "eval-val").mkdir()
    (tmp_path / "eval-val" / "metrics.json").write_text(json.dumps({"pixel": {"f1_threshold": 1.0}}))
    monkeypatch.chdir(tmp_path)
    assert resolve_threshold("eval-val/metrics.json", tmp_path) == (
        1.0,
        f"from {tmp_path / 'eval-val' / 'metrics.json'}",
    )


@pytest.mark.parametrize("peak, shown", [(2.43737, "2.43737"), (0.00001234, "1.234e-05")])
def test_a_metrics_file_of_good_images_only_names_the_threshold_to_pass(
    tmp_path: Path, peak: float, shown: str
) -> None:
    # a category without test defects: evaluation picks no threshold, and the refusal said only that;
    # a peak of 0.00001234 was named as 0.0000 (four decimals)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"pixel": {"f1_threshold": None, "good_peak": peak}}))
    with pytest.raises(UserError) as error:
        resolve_threshold(str(path), tmp_path)
    assert str(error.value) == (
        f"{path} holds no pixel threshold (masks.threshold or pixel.f1_threshold); pass --threshold VALUE "
        f"above its largest map value on a good image, {shown}"
    )
    for peak in ("null", "NaN"):  # no good image scored, or a file written with a bare NaN: no value to name
        path.write_text('{"pixel": {"f1_threshold": null, "good_peak": ' + peak + "}}")
        with pytest.raises(UserError, match=r"\(masks.threshold or pixel.f1_threshold\)$"):
            resolve_threshold(str(path), tmp_path)


@pytest.mark.parametrize("given", [True, False])
def test_a_metrics_file_reached_through_dot_dot_is_named_without_it(
    tmp_path: Path, monkeypatch, given
) -> None:
    # --run ../runs/x (or --threshold ../runs/x/eval-mvtec): the error named /w/cwd/../runs/x/eval-mvtec/...
    run = tmp_path / "runs" / "x"
    (run / "eval-mvtec").mkdir(parents=True)
    (run / "eval-mvtec" / "metrics.json").write_text(json.dumps({"pixel": {"f1_threshold": None}}))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    value = "../runs/x/eval-mvtec" if given else None
    with pytest.raises(UserError) as refused:
        resolve_threshold(value, Path("../runs/x"))
    assert str(refused.value).startswith(f"{run / 'eval-mvtec' / 'metrics.json'} holds no pixel threshold")


def test_a_metrics_file_without_a_threshold_for_want_of_masks_says_so(tmp_path: Path) -> None:
    # an evaluation whose defect photos had no mask picks no threshold: the refusal read as if the split
    # held no defect at all
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"pixel": {"f1_threshold": None, "defect_images_without_mask": 6}}))
    with pytest.raises(UserError) as error:
        resolve_threshold(str(path), tmp_path)
    assert str(error.value) == (
        f"{path} holds no pixel threshold (masks.threshold or pixel.f1_threshold): its 6 defect images had "
        "no mask to pick one on"
    )


def test_clean_goods_raises_a_metrics_threshold_above_its_good_images(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"pixel": {"f1_threshold": 1.0, "good_peak": 1.5}}))
    assert resolve_threshold(str(path), tmp_path) == (1.0, f"from {path}")  # anomaly.predict's rule
    value, origin = resolve_threshold(str(path), tmp_path, clean_goods=True)
    assert 1.5 < value < 1.5001 and np.float32(1.5) < np.float32(value) and "above its good images" in origin
    path.write_text(json.dumps({"pixel": {"f1_threshold": 1.0, "good_peak": 0.5}}))  # already clean
    assert resolve_threshold(str(path), tmp_path, clean_goods=True) == (1.0, f"from {path}")
    assert resolve_threshold("0.2", tmp_path, clean_goods=True) == (0.2, "given")  # a number is a number


@pytest.mark.parametrize(
    ("value", "named"),
    [("abc", "abc"), ("3,5", "3,5"), ("eval-val/metrics.json", "eval-val/metrics.json"), ("", "''")],
)
def test_a_threshold_neither_a_number_nor_a_file_says_so(tmp_path: Path, value: str, named: str) -> None:
    # it read "cannot read metrics file 3,5: No such file or directory" for a mistyped number, and
    # "cannot read metrics file <cwd>: Is a directory" for an empty one (a shell variable not set)
    with pytest.raises(UserError, match=rf"^--anomaly-threshold {named}: neither a number nor an existing"):
        resolve_threshold(value, tmp_path, flag="--anomaly-threshold")


def test_a_threshold_under_a_quoted_tilde_is_in_the_home_folder(tmp_path: Path, monkeypatch) -> None:
    # --threshold '~/eval' (quoted, so no shell expanded it) was looked for in a folder named '~'
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps({"pixel": {"f1_threshold": 1.0}}))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path / "eval")
    metrics = f"from {tmp_path / 'eval' / 'metrics.json'}"
    assert resolve_threshold("~/eval", tmp_path) == (1.0, metrics)
    assert resolve_threshold("~/eval/metrics.json", tmp_path) == (1.0, metrics)
    without_home(monkeypatch)  # a container's arbitrary user id: one line, not a look into a folder '~'
    with pytest.raises(UserError, match=r"^--threshold ~/eval: no home folder: HOME is not set"):
        resolve_threshold("~/eval", tmp_path)


def test_a_threshold_folder_without_metrics_is_named_with_the_way_out(run: Path) -> None:
    # the run folder itself, any folder without metrics.json: 'cannot read metrics file ...: Is a directory'
    for folder in (run, run.parent):
        with pytest.raises(UserError, match=rf"^--threshold {re.escape(str(folder))} is a folder without "):
            resolve_threshold(str(folder), run)
    # a folder holding no evaluation names what to pass, and both say that leaving it out works too
    with pytest.raises(UserError) as error:
        resolve_threshold(str(run.parent), run)
    assert str(error.value) == (
        f"--threshold {run.parent} is a folder without metrics.json: pass an anomaly.evaluate folder "
        "(a run's eval-val, eval-test, eval-mvtec) or its metrics.json; without --threshold the run's own "
        "evaluation gives it"
    )


def test_the_val_evaluation_gives_the_default_threshold_first(tmp_path: Path) -> None:
    for folder, value in (("eval-mvtec", 1.0), ("eval-test", 2.0), ("eval-val", 3.0)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "metrics.json").write_text(json.dumps({"pixel": {"f1_threshold": value}}))
    assert resolve_threshold(None, tmp_path)[0] == 3.0
    shutil.rmtree(tmp_path / "eval-val")
    assert resolve_threshold(None, tmp_path)[0] == 2.0


def test_evaluate_scores_masks(run: Path) -> None:
    metrics = evaluate_run(run, progress=False, figure=False, masks=True, threshold=0.0)
    masks = metrics["masks"]
    # threshold 0 (maps are distances, >= 0): every photo flagged whole; good photos score IoU 0,
    # defect photos their defect's share of the photo
    assert masks["iou_good"] == 0.0 and 0.0 < masks["iou_defect"] < 0.1
    assert masks["instances"] == 5 and masks["threshold_from"] == "given"
    assert 0.0 <= masks["mask_ap"] <= masks["mask_ap50"] <= 1.0


def test_existing_output_needs_overwrite_and_drops_old_masks(run: Path, parts: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred"
    predict_photos(run, parts / "test", out, threshold="0", progress=False)
    with pytest.raises(UserError, match="output folder exists"):
        predict_photos(run, parts / "test", out, threshold="1e9", progress=False)
    predict_photos(run, parts / "test", out, threshold="1e9", overwrite=True, progress=False)
    assert not (out / "masks").exists()  # no photo flagged now: last run's masks are gone


def test_overwrite_refuses_a_folder_of_the_outputs_names_without_predict_json(
    run: Path, parts: Path, tmp_path: Path
) -> None:
    # a folder of the user's that merely holds masks/ (no predict.json: no run of this command made it)
    # was replaced whole, their file deleted with it
    mine = tmp_path / "mine"
    (mine / "masks").mkdir(parents=True)
    (mine / "masks" / "notes.txt").write_text("mine")
    message = f"--out {mine} holds masks but no predict.json, which every run of this command writes"
    with pytest.raises(UserError, match=re.escape(message)):
        predict_photos(run, parts / "test", mine, threshold="0.5", overwrite=True, progress=False)
    assert (mine / "masks" / "notes.txt").read_text() == "mine"


def test_a_photo_failing_midway_leaves_no_output_and_the_old_one_whole(
    run: Path, parts: Path, tmp_path: Path
) -> None:
    # a PNG cut short passes the header check and fails on decoding, after the photos sorted before it
    source = tmp_path / "photos"
    shutil.copytree(parts / "test", source)
    (source / "zz.png").write_bytes((source / "good" / "000.png").read_bytes()[:200])
    out = tmp_path / "pred"
    with pytest.raises(UserError, match="zz.png"):
        predict_photos(run, source, out, threshold="0", progress=False)
    assert not out.exists() and not list(tmp_path.glob(".pred*"))  # used to hold anomaly_maps/, masks/
    predict_photos(run, parts / "test", out, threshold="0", progress=False)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(UserError, match="zz.png"):
        predict_photos(run, source, out, threshold="1e9", overwrite=True, progress=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # masks/ used to be deleted


@pytest.mark.parametrize("kind", ["cut short", "float tiff"])
def test_a_photo_that_does_not_decode_is_named_before_sam_loads(
    run: Path, parts: Path, tmp_path: Path, monkeypatch, kind: str
) -> None:
    # the size check reads headers alone: such a photo stopped the run when reached, the photos before it
    # scored for nothing; now every photo is decoded first, as detection.predict and inspection do
    source = tmp_path / "photos"
    shutil.copytree(parts / "test", source)
    good = source / "good" / "000.png"
    if kind == "cut short":
        bad = source / "zz.png"
        bad.write_bytes(good.read_bytes()[: good.stat().st_size - 100])
    else:
        bad = source / "zz.tif"  # PIL reads 32-bit float samples, OpenCV (which the models read with) not
        height, width = np.asarray(Image.open(good)).shape[:2]
        Image.fromarray(np.zeros((height, width), np.float32)).save(bad)
    monkeypatch.setattr("anomaly.predict.load_segmenter", lambda *a, **k: pytest.fail("SAM loaded"))
    with pytest.raises(UserError, match=f"image {bad}: "):
        predict_photos(run, source, tmp_path / "pred", threshold="0", progress=False)
    assert not (tmp_path / "pred").exists()


def test_every_photo_that_does_not_decode_is_named_before_sam_loads(
    run: Path, parts: Path, tmp_path: Path, monkeypatch
) -> None:
    # it stopped at the first: three bad photos took three runs to find
    source = tmp_path / "photos"
    shutil.copytree(parts / "test", source)
    good = source / "good" / "000.png"
    bad = [source / "zz_a.png", source / "zz_b.png"]
    for path in bad:
        path.write_bytes(good.read_bytes()[: good.stat().st_size - 100])
    monkeypatch.setattr("anomaly.predict.load_segmenter", lambda *a, **k: pytest.fail("SAM loaded"))
    with pytest.raises(UserError) as error:
        predict_photos(run, source, tmp_path / "pred", threshold="0", progress=False)
    message = str(error.value)
    assert message.startswith(f"cannot read 2 photos: {bad[0]} (corrupt or not an image (")
    assert f"), {bad[1]} (corrupt or not an image (" in message and "\n" not in message
    assert not (tmp_path / "pred").exists()


def test_photos_whose_header_does_not_read_are_named_with_those_cut_short(
    run: Path, parts: Path, tmp_path: Path, monkeypatch
) -> None:
    # the header pass (the run's size) stopped at the first empty or non-image photo, before the decode
    # pass that names every photo cut short
    source = tmp_path / "photos"
    shutil.copytree(parts / "test", source)
    good = source / "good" / "000.png"
    empty, text, cut = source / "zz_a.png", source / "zz_b.png", source / "zz_c.png"
    empty.write_bytes(b"")
    text.write_text("not a picture\n")
    cut.write_bytes(good.read_bytes()[: good.stat().st_size - 100])
    monkeypatch.setattr("anomaly.predict.load_segmenter", lambda *a, **k: pytest.fail("SAM loaded"))
    with pytest.raises(UserError) as error:
        predict_photos(run, source, tmp_path / "pred", threshold="0", progress=False)
    message = str(error.value)
    assert message.startswith(f"cannot read 3 photos: {empty} (the file is empty), {text} (corrupt or not an")
    assert f"), {cut} (corrupt or not an image (" in message and "\n" not in message
    assert not (tmp_path / "pred").exists()


def test_a_photo_whose_header_does_not_read_keeps_its_own_line(
    run: Path, parts: Path, tmp_path: Path, monkeypatch
) -> None:
    source = tmp_path / "photos"
    shutil.copytree(parts / "test", source)
    (source / "zz_a.png").write_bytes(b"")
    monkeypatch.setattr("anomaly.predict.load_segmenter", lambda *a, **k: pytest.fail("SAM loaded"))
    with pytest.raises(UserError) as error:
        predict_photos(run, source, tmp_path / "pred", threshold="0", progress=False)
    assert str(error.value) == f"cannot read image {source / 'zz_a.png'}: the file is empty"


@pytest.mark.parametrize("unread", [1, 2])
def test_a_photo_whose_header_does_not_read_is_named_before_a_later_photo_of_another_size(
    run: Path, parts: Path, tmp_path: Path, monkeypatch, unread: int
) -> None:
    # the header pass went on past it and the later photo's size error was raised instead: the photo that
    # stopped the run before was no longer named
    source = tmp_path / "photos"
    shutil.copytree(parts / "test", source)
    bad = [source / f"zz_{n}.png" for n in range(unread)]
    for photo in bad:
        photo.write_bytes(b"")
    cv2.imwrite(str(source / "zz_z.png"), np.zeros((60, 199, 3), np.uint8))  # read after them
    monkeypatch.setattr("anomaly.predict.load_segmenter", lambda *a, **k: pytest.fail("SAM loaded"))
    with pytest.raises(UserError) as error:
        predict_photos(run, source, tmp_path / "pred", threshold="0", progress=False)
    if unread == 1:
        assert str(error.value) == f"cannot read image {bad[0]}: the file is empty"
    else:
        assert (
            str(error.value)
            == f"cannot read 2 photos: {bad[0]} (the file is empty), {bad[1]} (the file is empty)"
        )


def test_every_photo_whose_header_does_not_read_is_named_before_a_photo_of_another_size_between_them(
    run: Path, parts: Path, tmp_path: Path, monkeypatch
) -> None:
    # the header pass stopped at the photo of another size: the unreadable photo after it went unnamed
    # ('cannot read image .../zz_a.png: the file is empty' alone), to stop the next run
    source = tmp_path / "photos"
    shutil.copytree(parts / "test", source)
    bad = [source / "zz_a.png", source / "zz_z.png"]
    for photo in bad:
        photo.write_bytes(b"")
    cv2.imwrite(str(source / "zz_m.png"), np.zeros((60, 199, 3), np.uint8))  # read between them
    monkeypatch.setattr("anomaly.predict.load_segmenter", lambda *a, **k: pytest.fail("SAM loaded"))
    with pytest.raises(UserError) as error:
        predict_photos(run, source, tmp_path / "pred", threshold="0", progress=False)
    assert (
        str(error.value)
        == f"cannot read 2 photos: {bad[0]} (the file is empty), {bad[1]} (the file is empty)"
    )
    for photo in bad:
        photo.unlink()
    with pytest.raises(UserError, match=r"^image .*zz_m\.png is 199x60 but the model was fit on "):
        predict_photos(run, source, tmp_path / "pred", threshold="0", progress=False)


def test_a_ctrl_c_says_that_the_out_folder_is_an_earlier_runs(
    run: Path, parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # it printed 'interrupted' alone, and the earlier run's predictions.json in --out read as this run's
    import anomaly.predict

    out = tmp_path / "pred"
    predict_photos(run, parts / "test", out, threshold="0", progress=False)
    before = (out / "predictions.json").read_text()
    capsys.readouterr()

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(anomaly.predict, "read_rgb", interrupted)
    argv = ["--run", str(run), "--source", str(parts / "test"), "--out", str(out), "--overwrite"]
    assert anomaly.predict.main([*argv, "--threshold", "1e9", "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"stopped: {out.resolve()} is replaced only once every photo is done, so nothing")
    assert err.endswith("what it holds is an earlier run's\ninterrupted\n")
    assert (out / "predictions.json").read_text() == before
    (tmp_path / "empty").mkdir()  # made by hand: it is written into, and holds no earlier run's files
    for fresh in ("new", "empty"):  # no earlier run there: 'interrupted' says it all
        flags = ["--out", str(tmp_path / fresh), "--threshold", "0", "--no-progress"]
        assert anomaly.predict.main([*argv[:4], *flags]) == 130
        assert capsys.readouterr().err == "interrupted\n"


def test_a_ctrl_c_while_sam_loads_says_so_too(
    run: Path, parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # before the first photo (SAM loading, the photos' sizes checked) it printed 'interrupted' alone
    import anomaly.predict

    out = tmp_path / "pred"
    predict_photos(run, parts / "test", out, threshold="0", progress=False)
    capsys.readouterr()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(anomaly.predict, "load_segmenter", interrupted)
    argv = ["--run", str(run), "--source", str(parts / "test"), "--out", str(out), "--overwrite"]
    assert anomaly.predict.main([*argv, "--threshold", "0", "--no-progress"]) == 130
    assert capsys.readouterr().err == (
        f"stopped: {out.resolve()} is replaced only once every photo is done, so nothing of this run was "
        "kept there; what it holds is an earlier run's\ninterrupted\n"
    )


def test_a_ctrl_c_says_how_many_of_sams_embeddings_the_cache_kept(
    run: Path, parts: Path, tmp_path: Path, interrupted_sam, capsys
) -> None:
    # it printed 'interrupted' alone, as segmentation.embed did: whether the encoded photos were lost
    import anomaly.predict

    out, cache = tmp_path / "pred", tmp_path / "cache"
    argv = ["--run", str(run), "--source", str(parts / "test"), "--out", str(out), "--threshold", "0"]
    argv += ["--sam-zero-shot", "--cache-dir", str(cache), "--no-progress"]  # threshold 0: every photo
    interrupted_sam(after=2)
    assert anomaly.predict.main(argv) == 130
    (folder,) = [path for path in cache.iterdir() if path.is_dir()]
    assert capsys.readouterr().err == (
        f"stopped: 2 embeddings encoded by this run are kept in the cache {folder}; the same command again "
        "reuses them\ninterrupted\n"
    )
    assert len(list(folder.glob("*.pt"))) == 2 and not out.exists()
    calls = interrupted_sam(after=100)
    assert anomaly.predict.main(argv) == 0
    assert len(calls) == 3  # 5 photos, the two kept not encoded again
    shutil.rmtree(folder)
    interrupted_sam(after=2)
    assert anomaly.predict.main([*argv, "--overwrite"]) == 130  # out holds the earlier run: said after
    assert capsys.readouterr().err.splitlines() == [
        f"stopped: 2 embeddings encoded by this run are kept in the cache {folder}; the same command again "
        "reuses them",
        f"stopped: {out.resolve()} is replaced only once every photo is done, so nothing of this run was "
        "kept there; what it holds is an earlier run's",
        "interrupted",
    ]


@pytest.mark.parametrize("threshold", ["nan", "inf"])
def test_a_threshold_that_flags_nothing_is_refused(run: Path, parts: Path, tmp_path: Path, threshold) -> None:
    with pytest.raises(UserError, match=f"--threshold must be a finite number, got {threshold}"):
        predict_photos(run, parts / "test", tmp_path / "pred", threshold=threshold, progress=False)
    assert not (tmp_path / "pred").exists()


@pytest.mark.parametrize("typed", ["1e400", "-1e400", " 1e400"])
def test_a_threshold_beyond_any_float_is_named_as_typed(
    run: Path, parts: Path, tmp_path: Path, typed
) -> None:
    # float('1e400') is inf: it was refused as 'got inf', a value nobody typed
    with pytest.raises(UserError) as error:
        predict_photos(run, parts / "test", tmp_path / "pred", threshold=typed, progress=False)
    shown = typed.strip()
    assert str(error.value) == f"--threshold must be a finite number, got {shown}, beyond any float"
    assert not (tmp_path / "pred").exists()


@pytest.mark.parametrize("typed", ["-5", "-0.50", " -5"])
def test_a_negative_threshold_is_refused(run: Path, parts: Path, tmp_path: Path, typed: str) -> None:
    # was accepted: a map of distances cut below 0 flags every pixel of every photo; named as typed
    # ('got -5'), where it was the float read ('got -5.0', 'got -0.5')
    with pytest.raises(UserError) as error:
        predict_photos(run, parts / "test", tmp_path / "pred", threshold=typed, progress=False)
    assert str(error.value) == (
        "--threshold must be >= 0 (anomaly maps are distances, never negative: it would flag every "
        f"pixel), got {typed.strip()}"
    )
    assert not (tmp_path / "pred").exists()


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("run", "holds the run"),  # --overwrite would replace the model with predictions
        ("above run", "holds the run"),
        ("photos", "holds the photos"),
        ("inside photos", "inside the photo folder"),  # a later run would score the masks and maps as photos
        ("file", "notes.txt is a file, not a folder"),  # used to be NotADirectoryError's traceback
    ],
)
def test_an_out_that_would_clobber_inputs_is_refused(
    run: Path, parts: Path, tmp_path: Path, where: str, fragment: str
) -> None:
    (tmp_path / "notes.txt").write_text("not a folder")
    out = {
        "run": run,
        "above run": tmp_path,
        "photos": parts / "test",
        "inside photos": parts / "test" / "pred",
        "file": tmp_path / "notes.txt",
    }[where]
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UserError, match=fragment):
        predict_photos(run, parts / "test", out, threshold="1", overwrite=True, progress=False)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("through", ["out", "source"])
def test_an_out_or_source_through_a_link_loop_is_one_line(
    run: Path, parts: Path, tmp_path: Path, link_loop: Path, through: str, capsys
) -> None:
    # --out loop/r1 was Path.resolve's 'RuntimeError: Symlink loop from ...' traceback; --source loop/x
    # was 'not found', of a path that is there
    paths = {"source": parts / "test", "out": tmp_path / "pred", through: link_loop / "x"}
    argv = ["--run", run, "--source", paths["source"], "--out", paths["out"], "--threshold", "1"]
    assert predict_main([str(arg) for arg in (*argv, "--no-progress")]) == 2
    assert_link_loop_line(capsys.readouterr().err, f"{link_loop}/x: ", link_loop)
    assert not (tmp_path / "pred").exists()


def test_two_photos_sharing_an_output_name_are_refused(run: Path, parts: Path, tmp_path: Path) -> None:
    # a.png and a.jpg both wrote anomaly_maps/a.png (and masks/anomaly/a_mask.png): the second won, silently
    source = tmp_path / "photos"
    source.mkdir()
    shutil.copy(parts / "test" / "good" / "000.png", source / "a.png")
    cv2.imwrite(str(source / "a.jpg"), cv2.imread(str(parts / "test" / "spot" / "000.png")))
    with pytest.raises(UserError, match="two photos map to one output name 'a': a.jpg and a.png"):
        predict_photos(run, source, tmp_path / "pred", threshold="1", progress=False)
    assert not (tmp_path / "pred").exists()


def test_a_photo_name_that_is_not_utf8_is_refused(run: Path, parts: Path, tmp_path: Path) -> None:
    # predictions.json and images.json carried it as "\udcff", which JSON readers refuse or mangle
    source = tmp_path / "photos"
    source.mkdir()
    try:
        shutil.copy(parts / "test" / "good" / "000.png", source / os.fsdecode(b"bad\xff.png"))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    with pytest.raises(UserError, match=r"photos holds a name that is not UTF-8, b'bad\\xff.png': rename it"):
        predict_photos(run, source, tmp_path / "pred", threshold="1", progress=False)
    assert not (tmp_path / "pred").exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nowhere", "--source not found: .*nowhere$"),
        ("nowhere/*.PNG", r"^the pattern '.*nowhere/\*\.PNG' matches no image files \(\.png, "),
    ],
)
def test_a_missing_source_or_a_pattern_matching_nothing_is_named(run: Path, tmp_path: Path, source, message):
    with pytest.raises(UserError, match=message):
        predict_photos(run, tmp_path / source, tmp_path / "pred", threshold="1", progress=False)
    assert not (tmp_path / "pred").exists()


@pytest.fixture
def lot(parts: Path, tmp_path: Path) -> Path:
    """``lot/a.png``, ``lot/b.jpg`` beside it, ``lot/line_2/c.png`` below: photos of the fit size."""
    (tmp_path / "lot" / "line_2").mkdir(parents=True)
    shutil.copy(parts / "test" / "good" / "000.png", tmp_path / "lot" / "a.png")
    cv2.imwrite(str(tmp_path / "lot" / "b.jpg"), cv2.imread(str(parts / "test" / "good" / "001.png")))
    shutil.copy(parts / "test" / "spot" / "000.png", tmp_path / "lot" / "line_2" / "c.png")
    return tmp_path / "lot"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*.png", ["a.png"]),  # b.jpg beside it is left out
        ("**/*.png", ["a.png", "line_2/c.png"]),  # ** recurses; names relative to the pattern's folder
    ],
)
def test_a_pattern_predicts_the_photos_it_matches(run: Path, lot: Path, pattern: str, expected) -> None:
    result = predict_photos(run, f"{lot}/{pattern}", threshold="1e9", maps=False, progress=False)
    assert result["out"] == str(run / "predict-lot")  # named after the pattern's folder, not "*.png"
    images = json.loads((run / "predict-lot" / "images.json").read_text())
    assert sorted(image["file_name"] for image in images) == expected
    # each photo file's sha256, by which the annotation page tells it from another of its name
    assert all(image["sha256"] == sha256_file(lot / image["file_name"]) for image in images)


@pytest.mark.parametrize(
    ("pattern", "out", "fragment"),
    [
        ("**/*.png", "lot/pred", "inside the photo folder"),  # a later run would score its images as photos
        ("*/*.png", "lot", "holds the photos"),  # --overwrite would replace them
        # pred/anomaly_maps/x.png; its masks lie a folder deeper (pred/masks/anomaly/x_mask.png)
        ("../*/*/*.png", "pred", r"would hold images \(.*/pred/anomaly_maps/\*\.png\) that the pattern"),
    ],
)
def test_an_out_that_would_clobber_a_patterns_photos_is_refused(
    run: Path, lot: Path, tmp_path: Path, pattern: str, out: str, fragment: str
) -> None:
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UserError, match=fragment):
        predict_photos(run, f"{lot}/{pattern}", tmp_path / out, threshold="1", overwrite=True, progress=False)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("pattern", "out", "maps", "said"),
    [
        (
            "**/*.png",
            "lot/pred",
            True,
            "photo folder .* a later run would score its masks and anomaly maps as photos;",
        ),
        ("**/*.png", "lot/pred", False, "photo folder .* a later run would score its masks as photos;"),
        # pred/masks/anomaly/x_mask.png, with --no-maps too: was 'score its anomaly maps as photos'
        ("../*/*/*/*.png", "pred", False, r"\(.*/pred/masks/anomaly/\*_mask\.png\) .*score its masks as "),
        ("../*/*/*.png", "pred", True, r"\(.*/pred/anomaly_maps/\*\.png\) .*score its anomaly maps as "),
    ],
)
def test_an_out_refused_for_a_pattern_names_the_images_a_later_run_would_score(
    run: Path, lot: Path, tmp_path: Path, pattern: str, out: str, maps: bool, said: str
) -> None:
    (lot / "line_2" / "cam").mkdir()
    shutil.copy(lot / "a.png", lot / "line_2" / "cam" / "d.png")  # four folders below tmp_path
    with pytest.raises(UserError, match=said):
        predict_photos(run, f"{lot}/{pattern}", tmp_path / out, threshold="1", maps=maps, progress=False)
    assert not (tmp_path / out).exists()


def test_an_out_whose_anomaly_maps_a_pattern_would_match_is_allowed_without_maps(
    run: Path, lot: Path, tmp_path: Path
) -> None:
    # was refused: 'would hold images (.../pred/anomaly_maps/*.png)', which --no-maps does not write
    pattern = f"{lot}/../*/*/*.png"
    result = predict_photos(run, pattern, tmp_path / "pred", threshold="1e9", maps=False, progress=False)
    assert result["photos"] == 1 and not (tmp_path / "pred" / "anomaly_maps").exists()
    assert photo_files(pattern)[0] == [lot / ".." / "lot" / "line_2" / "c.png"]  # no file of the run


def test_an_out_below_a_flat_patterns_folder_is_allowed(run: Path, lot: Path) -> None:
    # "lot/*.png" never reads lot/pred/anomaly_maps/*.png
    result = predict_photos(run, f"{lot}/*.png", lot / "pred", threshold="1e9", progress=False)
    assert result["photos"] == 1 and (lot / "pred" / "predictions.json").is_file()


def test_one_photo_is_named_by_its_file_name(run: Path, lot: Path, tmp_path: Path) -> None:
    predict_photos(run, lot / "a.png", tmp_path / "pred", threshold="1e9", maps=False, progress=False)
    images = json.loads((tmp_path / "pred" / "images.json").read_text())
    assert [image["file_name"] for image in images] == ["a.png"]


def test_an_out_holding_photos_a_pattern_matched_is_refused(run: Path, lot: Path, tmp_path: Path) -> None:
    # "lot/*/*.png" searches lot/ flat but matches lot/line_2/c.png: --overwrite would delete it
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UserError, match=f"{lot / 'line_2'} holds c.png, which this command does not write"):
        predict_photos(run, f"{lot}/*/*.png", lot / "line_2", threshold="1", overwrite=True, progress=False)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--sam", "decoder.pt", "--sam-zero-shot"], "--sam and --sam-zero-shot do not combine"),
        (["--sam-model", "vit_b"], "--sam-model vit_b needs --sam or --sam-zero-shot"),  # was ignored
    ],
)
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_sam_flags_that_would_be_ignored_are_refused(
    run: Path, parts: Path, tmp_path, capsys, command, flags, fragment
):
    import anomaly.evaluate
    import anomaly.predict

    if command == "predict":
        argv = ["--run", run, "--source", parts / "test", "--out", tmp_path / "out", "--threshold", "1"]
        assert anomaly.predict.main([str(a) for a in (*argv, *flags)]) == 2
    else:
        argv = ["--run", run, "--out", tmp_path / "out"]  # no --masks: --sam-model alone loads nothing
        assert anomaly.evaluate.main([str(a) for a in (*argv, *flags)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_sam_flags_that_combine_pass_and_the_library_refuses_the_others_before_any_file(tmp_path) -> None:
    from anomaly.masks import check_sam_flags, load_segmenter

    for sam, zero_shot, model in [
        (None, False, None),
        ("decoder.pt", False, None),
        ("decoder.pt", False, "vit_b"),  # a full state dict's model
        (None, True, None),
        (None, True, "vit_b"),
    ]:
        check_sam_flags(sam, zero_shot, model)
    with pytest.raises(UserError, match="^--sam and --sam-zero-shot do not combine"):
        load_segmenter(tmp_path / "nowhere.pt", zero_shot=True)  # refused before the file is looked at
    with pytest.raises(UserError, match="^--sam-model vit_b needs --sam or --sam-zero-shot"):
        load_segmenter(None, model="vit_b")


def test_the_predict_command_refuses_sam_flags_before_reading_the_run(tmp_path, capsys) -> None:
    import anomaly.predict

    argv = [
        "--run",
        tmp_path / "nowhere",
        "--source",
        tmp_path,
        "--out",
        tmp_path / "out",
        "--threshold",
        "1",
    ]
    assert anomaly.predict.main([str(a) for a in (*argv, "--sam-model", "vit_b")]) == 2
    assert "--sam-model vit_b needs --sam or --sam-zero-shot" in capsys.readouterr().err


def test_the_predict_command_keeps_sams_embeddings_in_the_shared_cache_unless_told_not_to(
    run: Path, parts: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import anomaly.predict
    from common.io import cache_root

    asked = []
    real = anomaly.predict.load_segmenter
    monkeypatch.setattr(
        anomaly.predict, "load_segmenter", lambda *a, **k: asked.append(k["cache_dir"]) or real(None)
    )
    argv = ["--run", str(run), "--source", str(parts / "test"), "--threshold", "1", "--no-progress"]
    argv.append("--sam-zero-shot")  # the segmenter loaded is none all the same (patched above)
    for flags, expected in (
        ([], cache_root() / "embeddings"),  # inspection's cache, shared
        (["--cache-dir", str(tmp_path / "c")], tmp_path / "c"),
        (["--cache-dir", str(tmp_path / "c"), "--no-cache"], None),
    ):
        out = tmp_path / f"out{len(asked)}"
        assert anomaly.predict.main([*argv, "--out", str(out), *flags]) == 0, capsys.readouterr().err
        assert asked[-1] == expected
    (tmp_path / "file").write_text("x")
    assert (
        anomaly.predict.main([*argv, "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "file")])
        == 2
    )
    assert "--cache-dir" in capsys.readouterr().err and len(asked) == 3  # refused before any photo
    # --no-cache: no folder is made, so an unusable --cache-dir beside it is not refused
    flags = ["--cache-dir", str(tmp_path / "file"), "--no-cache"]
    assert anomaly.predict.main([*argv, "--out", str(tmp_path / "o"), *flags]) == 0, capsys.readouterr().err
    assert asked[-1] is None


def test_a_cache_dir_inside_out_is_refused_before_sam_loads(
    run: Path, parts: Path, tmp_path: Path, monkeypatch, capsys
):
    # SAM's first photo made out/cache: every photo was segmented, then the run was refused as "output
    # folder exists", and with --overwrite that out "holds cache, which this command does not write"
    import anomaly.predict

    monkeypatch.setattr(anomaly.predict, "load_segmenter", lambda *a, **k: pytest.fail("SAM loaded"))
    out = tmp_path / "out"
    argv = ["--run", str(run), "--source", str(parts / "test"), "--threshold", "1", "--no-progress"]
    argv += ["--sam-zero-shot", "--out", str(out), "--cache-dir", str(out / "cache")]
    assert anomaly.predict.main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: --cache-dir {(out / 'cache').resolve()} is inside --out {out.resolve()}, which holds this "
        "run's results alone (--overwrite replaces it whole): choose a cache folder outside it\n"
    )
    assert not out.exists()


def test_each_photo_is_segmented_with_its_file_so_that_its_embedding_can_be_cached(
    run: Path, parts: Path, tmp_path: Path, monkeypatch
) -> None:
    import anomaly.predict
    from anomaly.masks import Segmenter

    paths = []

    class Recording(Segmenter):
        def __call__(self, image, regions, *, min_area=1, path=None):
            paths.append(path)
            return super().__call__(image, regions, min_area=min_area, path=path)

    monkeypatch.setattr(anomaly.predict, "load_segmenter", lambda *a, **k: Recording(None))
    argv = ["--run", run, "--source", parts / "test", "--threshold", "1", "--no-progress"]
    assert anomaly.predict.main([str(a) for a in (*argv, "--out", tmp_path / "o")]) == 0
    assert sorted(paths) == sorted(p for p in (parts / "test").rglob("*") if p.is_file())


def test_a_good_peak_at_the_threshold_raises_it_and_a_non_finite_one_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"pixel": {"f1_threshold": 1.0, "good_peak": 1.0}}))  # a pixel at it is cut
    value, origin = resolve_threshold(str(path), tmp_path, clean_goods=True)
    assert 1.0 < value < 1.0001 and "above its good images" in origin
    for peak in (math.inf, math.nan):  # NaN: no good image scored
        path.write_text(json.dumps({"pixel": {"f1_threshold": 1.0, "good_peak": peak}}))
        assert resolve_threshold(str(path), tmp_path, clean_goods=True) == (1.0, f"from {path}")


def test_clean_goods_takes_a_metrics_file_without_pixel_figures(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"masks": {"threshold": 2.5}}))  # no good_peak to raise it above
    assert resolve_threshold(str(path), tmp_path, clean_goods=True) == (2.5, f"from {path}")


def test_the_evaluate_command_it_suggests_can_be_pasted_when_the_run_has_a_space(tmp_path: Path) -> None:
    run = tmp_path / "my run"
    with pytest.raises(UserError) as error:
        resolve_threshold(None, run)
    assert f"(python -m anomaly.evaluate --run {shlex.quote(str(run))})" in str(error.value)


@pytest.mark.parametrize("given, shown", [("12.345678", "12.3457"), ("0.00001", "1e-05")])
def test_the_closing_line_gives_the_threshold_to_six_significant_digits(
    run: Path, parts: Path, tmp_path: Path, capsys, given: str, shown: str
) -> None:
    # not 12.35; and 0.00001 read 'threshold 0.0000 given' (four decimals), a value that was not given
    import anomaly.predict

    argv = ["--run", run, "--source", parts / "test", "--threshold", given, "--no-progress"]
    assert anomaly.predict.main([str(a) for a in (*argv, "--out", tmp_path / "o")]) == 0
    assert f"(threshold {shown} given; masks: map threshold)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        # another backbone's distances: EfficientNet-Lite0's hazelnut_toy threshold (38.4) on a
        # MobileNetV2 run (maps peak near 4) flagged none of 23 photos, without a word
        ({"backbone": "efficientnet_lite0", "image_size": 64}, "scored backbone efficientnet_lite0 at 64 px"),
        ({"backbone": "mobilenet_v2", "image_size": 128}, "scored backbone mobilenet_v2 at 128 px"),
        ({"backbone": "mobilenet_v2", "image_size": 64}, None),  # this run's model, or a refit of it
        ({}, None),  # a file that does not say is taken as it is
    ],
)
def test_a_metrics_file_of_another_model_is_refused(run: Path, tmp_path: Path, settings, refused) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"settings": settings, "pixel": {"f1_threshold": 38.4}}))
    if refused is None:
        assert resolve_threshold(str(path), run) == (38.4, f"from {path}")
        return
    expected = f"--threshold {path} {refused}, but {run} is mobilenet_v2 at 64 px: its threshold is on"
    with pytest.raises(UserError, match="^" + re.escape(expected)):
        resolve_threshold(str(path), run)


@pytest.mark.parametrize("flags", [["--cache-dir", "c"], ["--no-cache"]])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_cache_flags_without_a_sam_are_refused(
    run: Path, parts: Path, tmp_path: Path, capsys, command, flags
):
    # without --sam or --sam-zero-shot no embedding is made: the flags were silently ignored
    import anomaly.evaluate
    import anomaly.predict

    if command == "predict":
        argv = ["--run", str(run), "--source", str(parts / "test"), "--out", str(tmp_path / "o")]
        assert anomaly.predict.main([*argv, *flags]) == 2
    else:
        assert anomaly.evaluate.main(["--run", str(run), "--masks", *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {flags[0]} is about SAM's embedding cache: it needs --sam or --sam-zero-shot\n"
    assert not (tmp_path / "o").exists() and not (run / "eval-mvtec").exists()


def test_the_closing_line_counts_one_photo_in_the_singular(run: Path, parts: Path, tmp_path: Path, capsys):
    import anomaly.predict

    photo = parts / "test" / "good" / "000.png"
    argv = ["--run", str(run), "--source", str(photo), "--threshold", "1e9", "--out", str(tmp_path / "o")]
    assert anomaly.predict.main([*argv, "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("1 photo, 0 flagged, 0 instances (threshold")  # was "1 photos"


def test_photos_of_12_bit_data_in_16_bit_files_get_a_warning(run: Path, parts: Path, tmp_path: Path, capsys):
    # OpenCV reads 16-bit photos by dropping the low 8 bits: values below 4096 reach PatchCore as grey
    # levels 0-15, nearly black; anomaly.train and inspection.predict warned, anomaly.predict did not
    lot = tmp_path / "lot"
    lot.mkdir()
    for name in ("000", "001"):
        photo = cv2.imread(str(parts / "test" / "good" / f"{name}.png"))
        cv2.imwrite(str(lot / f"{name}.png"), photo)
    predict_photos(run, lot, tmp_path / "eight", threshold="1e9", progress=False)
    assert "warning:" not in capsys.readouterr().err
    cv2.imwrite(str(lot / "001.png"), cv2.imread(str(lot / "001.png")).astype(np.uint16) * 16)
    predict_photos(run, lot, tmp_path / "twelve", threshold="1e9", progress=False)
    err = capsys.readouterr().err
    assert err.startswith("warning: 1 photo is 16-bit with every value below 4096") and err.count("\n") == 1
    assert str(lot / "001.png") in err


def test_the_help_names_the_default_output_folder_of_one_photo(capsys) -> None:
    import anomaly.predict

    with pytest.raises(SystemExit):
        anomaly.predict.main(["--help"])
    # one photo's predictions go to <run>/predict-<its file name> (predict-a.png), which --help left out
    text = " ".join(capsys.readouterr().out.split())
    assert "one photo's file name" in text
    # --threshold's help named no default, so an omitted one looked required (or taken as 0)
    assert "(default: the run's own evaluation, <run>/eval-val, eval-test or eval-mvtec" in text
    assert "a number, or an anomaly.evaluate metrics.json or its folder" in text  # eval-val/ is taken


def test_predict_json_traces_the_output_back_from_any_folder(
    run: Path, parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run, source and the default threshold's metrics.json were recorded as typed (here relative), so a
    # predict.json read from elsewhere named no run; a --sam decoder was named by its file name alone
    evaluate_run(run, progress=False, figure=False)
    monkeypatch.chdir(tmp_path)
    predict_photos("run", "data/part/test", "pred", progress=False)
    info = json.loads((tmp_path / "pred" / "predict.json").read_text())
    assert info["run"] == str(run.absolute()) and info["source"] == str((parts / "test").absolute())
    assert info["threshold_from"] == f"from {run.absolute() / 'eval-mvtec' / 'metrics.json'}"
    assert info["photos"] == 5 and info["sam"] is None
    bank = json.loads((run / "run.json").read_text())["bank"]["sha256"]  # a run refit in place differs here
    assert info["memory_bank_sha256"] == bank == sha256_file(run / "memory_bank.pt")
    import anomaly.predict
    from anomaly.masks import Segmenter

    monkeypatch.setattr(anomaly.predict, "load_segmenter", lambda *a, **k: Segmenter(None, "decoder.pt"))
    predict_photos("run", "data/part/test", "sam", sam="sam_run/decoder.pt", threshold="1", progress=False)
    info = json.loads((tmp_path / "sam" / "predict.json").read_text())
    assert info["sam"] == str(tmp_path / "sam_run" / "decoder.pt") and info["threshold_from"] == "given"


def test_a_cache_dir_that_is_a_file_is_named_as_inspection_names_it(
    run: Path, parts: Path, tmp_path: Path, capsys
) -> None:
    # it read '--cache-dir <file> is a file, not a embedding cache'
    import anomaly.predict

    (tmp_path / "file").write_text("x")
    argv = [
        "--run",
        str(run),
        "--source",
        str(parts / "test"),
        "--out",
        str(tmp_path / "o"),
        "--sam-zero-shot",
    ]
    assert anomaly.predict.main([*argv, "--cache-dir", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err == f"error: --cache-dir {tmp_path / 'file'} is a file, not a folder\n"


def test_a_decoders_colour_head_shapes_the_masks_and_is_recorded(
    run: Path, parts: Path, tmp_path: Path, colour_decoders, capsys
) -> None:
    # anomaly.predict --sam X ignored X's colour head: its masks were not those inspection --anomaly-run
    # made with the same decoder for the same boxes
    import anomaly.predict

    decoders, head, _ = colour_decoders
    argv = ["--run", run, "--source", parts / "test", "--threshold", "0", "--no-cache", "--no-progress"]
    recorded = {}
    for name, sam, flags in (
        ("on", decoders["head"], ()),
        ("left-out", decoders["head"], ("--no-colour-head",)),
        ("none", decoders["none"], ()),  # the same weights without a head: SAM's own masks
        ("both", decoders["both"], ("--no-colour-prompt",)),
    ):
        out = tmp_path / name
        assert anomaly.predict.main([str(a) for a in (*argv, "--sam", sam, "--out", out, *flags)]) == 0
        assert f"masks: vit_b fine-tuned ({sam})" in capsys.readouterr().out
        recorded[name] = json.loads((out / "predict.json").read_text())
        recorded[name]["results"] = [
            r["segmentation"] for r in json.loads((out / "predictions.json").read_text())
        ]
    on, left_out, none = recorded["on"], recorded["left-out"], recorded["none"]
    assert on["segmenter"] == f"vit_b fine-tuned ({decoders['head']}) + colour head"
    assert on["colour_head"] == head.to_dict() and on["no_colour_head"] is False
    assert on["colour_prompt"] is None and on["no_colour_prompt"] is False
    # a whole-photo box (threshold 0): the head keeps the red square alone, the ground truth
    truth = cv2.imread(str(parts / "ground_truth" / "spot" / "000_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
    mask = cv2.imread(str(tmp_path / "on" / "masks" / "anomaly" / "spot__000_mask.png"), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(mask > 0, truth)
    assert left_out["segmenter"].endswith(", its colour head left out (--no-colour-head)")
    assert left_out["colour_head"] is None and left_out["no_colour_head"] is True
    assert none["colour_head"] is None and none["no_colour_head"] is False
    assert left_out["results"] == none["results"] != on["results"]
    both = recorded["both"]
    assert both["colour_head"] == head.to_dict() and both["colour_prompt"] is None
    assert both["no_colour_prompt"] is True and both["no_colour_head"] is False
    assert both["segmenter"].endswith(" + colour head, its colour prompt left out (--no-colour-prompt)")
    assert both["results"] == on["results"]  # the same weights and head, no prompt


def test_a_colour_decoder_on_grey_photos_is_warned_about(
    run: Path, parts: Path, tmp_path: Path, colour_decoders, capsys
) -> None:
    # anomaly.predict --sam X masked grey photos with X's colour head without a word, though the colour
    # distances it reads carry nothing there
    import anomaly.predict

    decoders, _, _ = colour_decoders
    grey = tmp_path / "grey"
    for photo in (parts / "test").rglob("*.png"):
        target = grey / photo.relative_to(parts / "test")
        target.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(target), cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2GRAY))
    assert len(list(grey.rglob("*.png"))) >= 3
    argv = ["--run", run, "--threshold", "0", "--no-cache", "--no-progress"]
    for i, (source, sam, warned) in enumerate(
        (
            (grey, decoders["head"], True),
            (parts / "test", decoders["head"], False),
            (grey, decoders["none"], False),
        )
    ):
        out = tmp_path / f"out{i}"
        assert (
            anomaly.predict.main([str(a) for a in (*argv, "--source", source, "--sam", sam, "--out", out)])
            == 0
        )
        lines = [line for line in capsys.readouterr().err.splitlines() if "greyscale" in line]
        assert lines == (
            ["warning: the 3 photos read from the 5 are greyscale, and the decoder's colour head reads "
             "colour, which a grey photo does not have: use a decoder trained without it, or pass "
             "--no-colour-head"]
            if warned else []
        )  # fmt: skip


@pytest.mark.parametrize(
    ("part", "carrier"),
    [
        ("colour head", "a decoder.pt of a run that kept one does"),
        ("colour prompt", "a decoder.pt of a colour_prompt=true run does"),
    ],
)
@pytest.mark.parametrize("sam", ["zero-shot", "no sam", "none carried"])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_leaving_out_a_colour_part_that_is_not_there_is_one_line_before_the_run_is_read(
    tmp_path, colour_decoders, capsys, command, sam, part, carrier
) -> None:
    # the flags are inspection's and segmentation.evaluate's, refused in their words where they change nothing
    import anomaly.evaluate
    import anomaly.predict

    decoders = colour_decoders[0]
    flag = "--no-" + part.replace(" ", "-")
    other = "head" if part == "colour prompt" else "prompt"  # carries the other part only
    given = {"zero-shot": ["--sam-zero-shot"], "no sam": [], "none carried": ["--sam", decoders[other]]}[sam]
    argv = ["--run", tmp_path / "nowhere", "--out", tmp_path / "out", *given, flag]  # no run to read
    if command == "predict":
        assert anomaly.predict.main([str(a) for a in (*argv, "--source", tmp_path)]) == 2
    else:
        assert anomaly.evaluate.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag} leaves out a fine-tuned decoder's {part}") and err.count("\n") == 1
    if sam == "none carried":
        assert err.endswith(f"carries none ({carrier}): drop {flag}\n")
    else:
        assert err.endswith("it applies only with --sam (zero-shot SAM has none)\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_the_colour_flags_help_reads_as_the_inspection_commands(command, capsys) -> None:
    import anomaly.evaluate
    import anomaly.predict

    module = anomaly.predict if command == "predict" else anomaly.evaluate
    text = " ".join(module.parser().format_help().split())
    head = "SAM's own masks even when decoder.pt carries a colour head (colour_head: true in training)"
    prompt = "box prompts without their colour maps even when decoder.pt carries a colour prompt"
    assert f"--no-colour-head {head}" in text
    assert f"--no-colour-prompt {prompt} (colour_prompt: true in training)" in text


@pytest.mark.parametrize("command", ["predict", "evaluate --masks"])
def test_a_photos_masks_are_freed_before_the_next_photo_is_segmented(
    run: Path, parts: Path, tmp_path: Path, monkeypatch, command: str
) -> None:
    # its (N, H, W) masks, map and pixels: held beside the next photo's, two photos' worth at the peak
    import weakref

    from anomaly.masks import Segmenter

    segment, done, alive = Segmenter.__call__, [], []

    def tracked(self, image, regions, **kwargs):  # noqa: ANN001, ANN003, ANN202
        alive.append(sum(ref() is not None for ref in done))
        instances = segment(self, image, regions, **kwargs)
        done.append(weakref.ref(instances))
        return instances

    monkeypatch.setattr(Segmenter, "__call__", tracked)
    if command == "predict":
        predict_photos(run, parts / "test", tmp_path / "pred", threshold="0", progress=False)
    else:
        evaluate_run(run, progress=False, figure=False, masks=True, threshold=0.0)
    assert alive == [0] * 5


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_the_sam_help_names_a_full_state_dict_too(command) -> None:
    import anomaly.evaluate
    import anomaly.predict

    # --sam takes a sam_finetuned.pth with --sam-model as well; its help named decoder.pt alone
    module = anomaly.predict if command == "predict" else anomaly.evaluate
    text = " ".join(module.parser().format_help().split())
    assert "decoder.pt from segmentation.train, or a full sam_finetuned.pth (with --sam-model)" in text


def test_a_default_out_holding_another_folders_predictions_names_it(
    run: Path, parts: Path, tmp_path: Path
) -> None:
    # lot_7/photos and lot_8/photos share the default <run>/predict-photos: the second lot was told only
    # to pass --overwrite, which deletes the first lot's predictions
    lot_7, lot_8 = tmp_path / "lot_7" / "photos", tmp_path / "lot_8" / "photos"
    shutil.copytree(parts / "test" / "good", lot_7)
    shutil.copytree(parts / "test" / "good", lot_8)
    predict_photos(run, lot_7, threshold="0", progress=False)
    with pytest.raises(UserError) as error:
        predict_photos(run, lot_8, threshold="0", progress=False)
    assert str(error.value) == (
        f"output folder exists: {run / 'predict-photos'}, holding the predictions of {lot_7} (the default "
        f"--out is named after the photo folder alone): pass --out for those of {lot_8}, or --overwrite to "
        "replace the earlier ones"
    )
    with pytest.raises(UserError, match=r"^output folder exists: .* \(pass --overwrite to replace it\)$"):
        predict_photos(run, lot_7, threshold="0", progress=False)  # its own folder again: as ever
    predict_photos(run, lot_8, threshold="0", overwrite=True, progress=False)
    assert json.loads((run / "predict-photos" / "predict.json").read_text())["source"] == str(lot_8)


def test_a_quoted_tilde_source_is_recorded_as_the_home_folders(
    run: Path, parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --source '~/lot_7' (quoted: no shell expanded it) read the home folder's photos and was recorded as
    # <working folder>/~/lot_7; the same command again is its own folder's predictions, not another's
    shutil.copytree(parts / "test" / "good", tmp_path / "lot_7")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(parts)
    predict_photos(run, "~/lot_7", threshold="0", progress=False)
    info = json.loads((run / "predict-lot_7" / "predict.json").read_text())
    assert info["source"] == str(tmp_path / "lot_7")
    with pytest.raises(UserError, match=r"^output folder exists: .* \(pass --overwrite to replace it\)$"):
        predict_photos(run, "~/lot_7", threshold="0", progress=False)


@pytest.mark.parametrize(
    "earlier", ["lot_7/photos", "link/photos", "lot_7/photos/*.png", "link/photos/*.png"]
)
def test_a_default_out_of_the_same_folder_through_a_link_is_that_folder(tmp_path: Path, earlier: str) -> None:
    # the source is recorded as spelled: lot_7/photos, then the same folder through a link, was taken for
    # another folder's predictions and refused naming it, as lot_8/photos is
    (tmp_path / "lot_7" / "photos").mkdir(parents=True)
    (tmp_path / "lot_8" / "photos").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "lot_7", target_is_directory=True)
    out = tmp_path / "predict-photos"
    out.mkdir()
    (out / "predict.json").write_text(json.dumps({"source": str(tmp_path / earlier)}))
    pattern = "/*.png" if earlier.endswith("*.png") else ""
    for again in ("lot_7/photos", "link/photos"):
        check_default_out(out, tmp_path / f"{again}{pattern}", overwrite=False)  # check_out's own message
    with pytest.raises(UserError, match=f"holding the predictions of {re.escape(str(tmp_path / earlier))} "):
        check_default_out(out, tmp_path / f"lot_8/photos{pattern}", overwrite=False)


@pytest.mark.parametrize("command", ["anomaly.predict", "anomaly.evaluate"])
def test_a_quoted_tilde_in_cache_dir_is_the_home_folder(command, tmp_path, monkeypatch) -> None:
    # --cache-dir '~/c' cached SAM's embeddings into a folder named '~' in the working folder
    import importlib

    monkeypatch.setenv("HOME", str(tmp_path))
    argv = ["--run", "r", "--cache-dir", "~/c"] + (["--source", "p"] if command == "anomaly.predict" else [])
    args = importlib.import_module(command).parser().parse_args(argv)
    assert args.cache_dir == tmp_path / "c"


@pytest.mark.parametrize(
    ("command", "option"),
    [("anomaly.train", option) for option in ("--root", "--out", "--config", "--data")]
    + [("anomaly.evaluate", option) for option in ("--run", "--root", "--data", "--out", "--sam")]
    + [("anomaly.predict", option) for option in ("--run", "--out", "--sam")],
)
def test_a_quoted_tilde_in_a_path_option_is_the_home_folder(command, option, tmp_path, monkeypatch) -> None:
    # --out '~/runs' wrote into a folder named '~' in the working folder; the value stays a str
    import importlib

    monkeypatch.setenv("HOME", str(tmp_path))
    required = {"anomaly.train": ["--out", "o"], "anomaly.evaluate": ["--run", "r"]}
    argv = required.get(command, ["--run", "r", "--source", "p"]) + [option, "~/lot_7"]
    args = importlib.import_module(command).parser().parse_args(argv)
    assert getattr(args, option[2:]) == str(tmp_path / "lot_7")
    # only a leading ~, and ~name with no such user stays that name, as in a shell
    args = importlib.import_module(command).parser().parse_args([*argv[:-1], "~no_user_lot_7/a~"])
    assert getattr(args, option[2:]) == "~no_user_lot_7/a~"
