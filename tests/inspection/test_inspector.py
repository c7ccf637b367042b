"""The cascade on one photo: boxes, one encoder pass, one decoder call for all boxes, the verdict."""

from __future__ import annotations

import os
import shutil
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.errors import UserError
from inspection.inspector import Inspector, sort_by_score
from segmentation.augment import transform_image
from segmentation.crops import CropRule
from segmentation.decoder_onnx import missing_packages
from segmentation.embeddings import EmbeddingCache, embed_images, load_rgb
from segmentation.finetuned import save_decoder
from segmentation.predict import predict_masks
from segmentation.specks import min_region_area, remove_specks
from segmentation.tta import TTA_VIEWS, flip_averaged_logits
from tests.inspection.conftest import CLASS_NAMES, DoublingDetector, StubDetector, paint_photo
from tests.segmentation.conftest import build_tiny_sam


def count_calls(module: torch.nn.Module) -> list[int]:
    """A list that grows by one at each forward call of ``module``."""
    calls: list[int] = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_all_boxes_of_a_photo_go_through_one_decoder_call(photos, stub_detector, tiny_sam):
    decoder_calls = count_calls(tiny_sam.mask_decoder)
    encoder_calls = count_calls(tiny_sam.image_encoder)
    result = Inspector(stub_detector, tiny_sam)(photos / "two.png")
    assert len(result) == 2 and len(decoder_calls) == 1 and len(encoder_calls) == 1
    assert result.masks.shape == (2, 60, 80) and result.masks.dtype == bool
    assert result.mask_scores.shape == (2,) and result.mask_probs is None
    assert result.scores.tolist() == pytest.approx([0.9, 0.6])  # highest first
    assert result.names == ["scratch", "stain"] and result.classes.tolist() == [0, 1]
    assert result.boxes.tolist() == [[5, 5, 20, 20], [40, 30, 60, 50]]  # pixel edges, x2/y2 exclusive
    assert (result.verdict, result.score) == ("scratch", pytest.approx(0.9))
    assert (result.width, result.height, result.path) == (80, 60, photos / "two.png")


def test_many_boxes_are_decoded_in_bounded_chunks(photos, stub_detector, tiny_sam, monkeypatch):
    import segmentation.predict

    monkeypatch.setattr(segmentation.predict, "DECODER_CHUNK", {"cpu": 3, "gpu": 5})
    inspector = Inspector(stub_detector, tiny_sam)  # on the CPU
    embedding = inspector.embedding(photos / "two.png")
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 40, (7, 2))
    boxes = np.hstack([corners, corners + rng.uniform(5, 30, (7, 2))])
    decoder_calls = count_calls(tiny_sam.mask_decoder)
    masks, scores, _ = inspector.segment(embedding, boxes)
    assert len(decoder_calls) == 3  # 3 + 3 + 1 boxes
    expected, expected_scores, _ = predict_masks(tiny_sam, embedding, boxes=boxes, multimask_output=False)
    assert np.array_equal(masks, expected[:, 0]) and np.allclose(scores, expected_scores[:, 0], atol=1e-5)


@pytest.mark.skipif(bool(missing_packages()), reason=f"not installed: {missing_packages()}")
def test_the_onnx_decoder_gives_the_same_masks(photos, stub_detector, tiny_sam):
    exact = Inspector(stub_detector, tiny_sam, keep_probs=True)(photos / "two.png")
    fast = Inspector(stub_detector, tiny_sam, keep_probs=True, runtime="onnx")
    assert fast.runtime == "onnx" and Inspector(stub_detector, tiny_sam, runtime="auto").runtime == "onnx"
    result = fast(photos / "two.png")
    assert np.allclose(result.mask_scores, exact.mask_scores, atol=1e-4)
    assert np.abs(result.mask_probs.astype(float) - exact.mask_probs.astype(float)).max() < 2e-3
    assert (result.masks != exact.masks).mean() < 1e-3  # at most a pixel flips at a boundary


def test_the_masks_are_sam_predictors_masks_of_the_boxes(photos, stub_detector, tiny_sam):
    inspector = Inspector(stub_detector, tiny_sam, keep_probs=True, speck_cells=0)  # SAM's masks as they are
    result = inspector(photos / "two.png")
    embedding = inspector.embedding(photos / "two.png")
    masks, scores, _ = predict_masks(tiny_sam, embedding, boxes=result.boxes, multimask_output=False)
    assert np.array_equal(result.masks, masks[:, 0])
    # with speck_cells, less their islands and holes under that many of SAM's 256 x 256 cells
    cleaned = Inspector(StubDetector(), tiny_sam, speck_cells=200)(photos / "two.png")
    area = min_region_area(200, 80, 256)  # about 20 px on this 80-px photo
    expected = np.stack([remove_specks(m, area) for m in masks[:, 0]])
    assert not np.array_equal(expected, masks[:, 0])  # the tiny SAM's masks have specks that big
    assert np.array_equal(cleaned.masks, expected)
    assert np.allclose(result.mask_scores, scores[:, 0])
    assert result.mask_probs.dtype == np.float16 and result.mask_probs.shape == result.masks.shape
    # the mask is "logit > 0", the probability its sigmoid: they agree away from 0.5 (float16 rounding)
    clear = np.abs(result.mask_probs.astype(np.float32) - 0.5) > 1e-2
    assert np.array_equal(result.masks[clear], result.mask_probs[clear] > 0.5)


def test_a_photo_without_boxes_is_good_and_costs_no_encoder_pass(photos, stub_detector, tiny_sam):
    encoder_calls = count_calls(tiny_sam.image_encoder)
    result = Inspector(stub_detector, tiny_sam, keep_probs=True)(photos / "good.png")
    assert (result.verdict, result.score, len(result)) == ("good", 0.0, 0)
    assert result.masks.shape == (0, 60, 80) and result.mask_probs.shape == (0, 60, 80)
    assert not result.defect_mask().any() and result.defect_mask().shape == (60, 80)
    assert not result.anomaly_map().any()
    assert encoder_calls == []


def test_the_anomaly_map_is_the_highest_box_score_times_probability(photos, stub_detector, tiny_sam):
    result = Inspector(stub_detector, tiny_sam, keep_probs=True)(photos / "two.png")
    probs = result.mask_probs.astype(np.float32)
    expected = np.maximum(0.9 * probs[0], 0.6 * probs[1])
    assert np.allclose(result.anomaly_map(), expected, atol=1e-6)
    assert result.anomaly_map().max() <= 0.9 + 1e-6


def test_the_inspectors_specks_are_removed_in_place_not_into_a_second_stack(stub_detector, tiny_sam):
    import tracemalloc

    masks = np.zeros((64, 128, 128), bool)
    for index in range(len(masks)):  # a square with a one-pixel island and a one-pixel hole
        masks[index, 20:60, 20:60] = True
        masks[index, 100, 100] = True
        masks[index, 40, 40] = False
    inspector = Inspector(stub_detector, tiny_sam, speck_cells=16)  # 64 px on this 128-px frame
    expected = np.stack([remove_specks(m, min_region_area(16, 128, 256)) for m in masks])
    inspector.without_specks(masks[:1].copy())  # segment-anything imported before counting
    tracemalloc.start()
    try:
        cleaned = inspector.without_specks(masks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(cleaned, expected) and not cleaned[:, 100, 100].any() and cleaned[:, 40, 40].all()
    # a few masks' worth of work, not a second (N, H, W) stack (600 MB for 50 boxes of a 4000 x 3000 photo)
    assert peak < 0.5 * masks.nbytes


def test_boxes_below_conf_are_not_kept(photos, stub_detector, tiny_sam):
    result = Inspector(stub_detector, tiny_sam, conf=0.7)(photos / "two.png")
    assert result.names == ["scratch"]  # the stain's 0.6 is under 0.7
    stain_only = Inspector(StubDetector(), build_tiny_sam(), conf=0.7)(photos / "lot_2" / "a.png")
    assert stain_only.verdict == "good" and len(stain_only) == 0


@pytest.mark.parametrize("tile", [None, 48])
def test_detect_at_another_conf_and_set_conf(photos, stub_detector, tiny_sam, tile):
    import cv2

    inspector = Inspector(stub_detector, tiny_sam, conf=0.7, tile=tile, tile_overlap=0.5, imgsz=48)
    image = cv2.imread(str(photos / "two.png"))
    assert inspector.detect(image).classes.tolist() == [0]  # the stain's 0.6 is under 0.7
    assert sorted(inspector.detect(image, conf=0.5).classes.tolist()) == [0, 1]  # this call only
    assert stub_detector.calls[-1]["conf"] == 0.5 and inspector.conf == 0.7
    inspector.set_conf(0.5)
    assert inspector(photos / "two.png").names == ["scratch", "stain"]
    with pytest.raises(UserError, match=r"--conf must be in \[0, 1\], got 1.5"):
        inspector.set_conf(1.5)
    assert inspector.conf == 0.5


def test_an_embedding_cache_hit_runs_no_encoder(photos, stub_detector, tmp_path):
    sam = build_tiny_sam()
    cache = EmbeddingCache(tmp_path / "cache", sam, model_name="tiny")
    first = Inspector(stub_detector, sam, cache=cache)(photos / "one.png")
    assert len(cache) == 1 and photos / "one.png" in cache
    again = build_tiny_sam()  # a new process: same weights, nothing in memory
    encoder_calls = count_calls(again.image_encoder)
    second = Inspector(
        StubDetector(), again, cache=EmbeddingCache(tmp_path / "cache", again, model_name="tiny")
    )(photos / "one.png")
    assert encoder_calls == []
    assert np.array_equal(first.masks, second.masks)


def test_without_a_cache_nothing_is_stored(photos, stub_detector, tiny_sam, tmp_path, monkeypatch):
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache_root"))
    Inspector(stub_detector, tiny_sam)(photos / "one.png")
    assert not (tmp_path / "cache_root").exists()


def test_tiled_detection_merges_windows_into_photo_pixels(photos, stub_detector, tiny_sam):
    # 48-px windows at x 0, 24, 32 and y 0, 12: each square lies whole inside one, and is cut by others
    result = Inspector(stub_detector, tiny_sam, tile=48, tile_overlap=0.5, imgsz=48)(photos / "two.png")
    assert len(stub_detector.calls) == 1 and stub_detector.calls[0]["imgsz"] == 48  # 6 windows, one batch
    assert result.names == ["scratch", "stain"]  # the cut-off views merged away
    assert result.boxes.tolist() == [[5, 5, 20, 20], [40, 30, 60, 50]]


def test_inspect_many_is_a_generator_in_order(photos, stub_detector, tiny_sam):
    paths = [photos / "good.png", photos / "one.png", photos / "two.png"]
    results = Inspector(stub_detector, tiny_sam).inspect_many(paths, progress=False)
    assert isinstance(results, types.GeneratorType)
    assert stub_detector.calls == []  # nothing runs until asked for
    assert [r.path for r in results] == paths


def test_segment_takes_any_boxes_an_oracle_included(photos, stub_detector, tiny_sam):
    inspector = Inspector(stub_detector, tiny_sam, keep_probs=True)
    embedding = inspector.embedding(photos / "one.png")
    masks, scores, probs = inspector.segment(embedding, np.array([[10, 10, 30, 25], [0, 0, 80, 60]]))
    assert masks.shape == probs.shape == (2, 60, 80) and scores.shape == (2,)
    empty = inspector.segment(embedding, np.zeros((0, 4)))
    assert empty[0].shape == (0, 60, 80) and empty[1].shape == (0,) and empty[2].shape == (0, 60, 80)


def test_the_real_ultralytics_path(photos, tiny_sam):
    from ultralytics import YOLO

    torch.manual_seed(0)
    detector = YOLO("yolo11n.yaml")  # random weights: the boxes are noise; the interface is what counts
    with torch.no_grad():  # every class scores 0.5 at every anchor (ultralytics' init: ~1e-4), so boxes come
        for branch in detector.model.model[-1].cv3:  # the Detect head's class logits, one branch per stride
            branch[-1].bias.zero_()
    inspector = Inspector(detector, tiny_sam, imgsz=64, conf=0.0, max_det=5)
    result = inspector(photos / "one.png")
    assert inspector.class_names == [str(detector.names[i]) for i in range(len(detector.names))]
    # highest score first: ultralytics' NMS already sorts, Inspector's own sort_by_score is checked by
    # test_a_mask_duplicating_a_better_ones_of_its_class_is_dropped_with_its_box
    assert 2 <= len(result) <= 5 and result.masks.shape == (len(result), 60, 80)
    assert result.names == [inspector.class_names[c] for c in result.classes]
    assert np.all((result.boxes >= 0) & (result.boxes <= [80, 60, 80, 60]))
    tiled = Inspector(detector, tiny_sam, imgsz=32, conf=0.0, max_det=5, tile=32)(photos / "one.png")
    assert 2 <= len(tiled) <= 5 and tiled.masks.shape == (len(tiled), 60, 80)


@pytest.mark.parametrize(("tile", "max_det"), [(None, 300), (None, 4), (32, 300), (32, 4)])
def test_one_pass_at_the_floor_keeps_the_boxes_a_pass_at_conf_keeps(photos, tiny_sam, tile, max_det) -> None:
    # inspection.evaluate runs the detector once at 0.001 for the image score (threshold-free, as
    # detection.evaluate's) and goes on with its boxes above conf: they must be a pass at conf's, box for box
    from ultralytics import YOLO

    torch.manual_seed(0)
    detector = YOLO("yolo11n.yaml")
    with torch.no_grad():  # random features reach the class logits ~1e-8 small: scaled up, every box scores
        for branch in detector.model.model[-1].cv3:  # apart (0.05-0.95 here, no two alike), classes mixed
            branch[-1].bias.fill_(-3.0)
            branch[-1].weight.normal_(0, 2e6)
    image = cv2.imread(str(photos / "two.png"))
    every = Inspector(detector, tiny_sam, imgsz=64, conf=0.001, max_det=1000, tile=tile).detect(image)
    assert len(every.scores) > 2 * max_det or max_det == 300  # max_det cuts the pass at the floor
    for conf in np.quantile(every.scores, [0.1, 0.5, 0.9, 0.99]):
        inspector = Inspector(detector, tiny_sam, imgsz=64, conf=float(conf), max_det=max_det, tile=tile)
        at_conf = inspector.detect(image)
        kept, top = inspector.detect_scored(image, 0.001)
        assert len(at_conf.scores) and np.array_equal(kept.boxes, at_conf.boxes)
        assert np.array_equal(kept.scores, at_conf.scores) and np.array_equal(kept.classes, at_conf.classes)
        floor = inspector.detect(image, conf=0.001)  # what detection.evaluate scores a photo by
        assert top == pytest.approx(float(np.max(floor.scores)), abs=0) and top >= float(np.max(kept.scores))


class AreaScoredDetector(StubDetector):
    """The stub's boxes, each scored 0.95 less its area / 2000: a window's cut-off view of a square scores
    above the whole one."""

    def _result(self, image: np.ndarray, conf: float) -> types.SimpleNamespace:
        found = super()._result(image, 0.0).boxes
        scores = 0.95 - (found.xyxy[:, 2] - found.xyxy[:, 0]) * (found.xyxy[:, 3] - found.xyxy[:, 1]) / 2000
        keep = scores > conf
        boxes = types.SimpleNamespace(xyxy=found.xyxy[keep], conf=scores[keep], cls=found.cls[keep])
        return types.SimpleNamespace(boxes=boxes)


def test_tiled_the_boxes_above_conf_are_merged_apart_from_those_below(tmp_path, photo_painter, tiny_sam):
    # 48-px windows of an 80 x 60 photo cut a 20 x 20 square at x = 48: the cut-off view (12 x 20) scores
    # 0.83, the whole one 0.75. At conf 0.8 only the cut-off one is kept; merged with the whole one of a pass
    # at 0.001, it was suppressed by it (whole boxes rank first) and the photo lost its box
    photo = photo_painter(tmp_path / "cut.png", [(0, 36, 14, 56, 34)])
    inspector = Inspector(AreaScoredDetector(), tiny_sam, conf=0.8, tile=48)
    image = cv2.imread(str(photo))
    at_conf = inspector.detect(image)
    assert at_conf.scores.tolist() == pytest.approx([0.83])
    kept, top = inspector.detect_scored(image, 0.001)
    assert np.array_equal(kept.boxes, at_conf.boxes) and np.array_equal(kept.scores, at_conf.scores)
    assert top == pytest.approx(0.75)  # every box merged, as detection.evaluate scores the photo


def test_the_image_score_is_the_top_box_whatever_conf(photos, stub_detector, tiny_sam) -> None:
    # the stain's 0.6 is below conf 0.7: no box is kept and the photo is called good, scored 0 as a clean
    # photo is; its image score still tells it apart (inspection.evaluate's image AUROC)
    inspector = Inspector(stub_detector, tiny_sam, conf=0.7)
    stain = inspector(photos / "lot_2" / "a.png", score_floor=0.001)
    assert (stain.verdict, stain.score, len(stain)) == ("good", 0.0, 0)
    assert stain.image_score == pytest.approx(0.6)
    assert inspector(photos / "good.png", score_floor=0.001).image_score == 0.0
    assert inspector(photos / "lot_2" / "a.png").image_score is None  # not asked for: one pass at conf
    assert stub_detector.calls[-1]["conf"] == 0.7 and stub_detector.calls[-2]["conf"] == 0.001


def test_class_names_can_be_given(photos, stub_detector, tiny_sam):
    result = Inspector(stub_detector, tiny_sam, class_names=["cut", "spot"])(photos / "two.png")
    assert result.verdict == "cut" and result.names == ["cut", "spot"]


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"conf": 1.5}, "--conf must be in [0, 1]"),
        ({"conf": float("nan")}, "--conf must be in [0, 1]"),
        ({"iou": -0.1}, "--iou must be in [0, 1]"),
        ({"mask_iou": 1.5}, "--mask-iou must be in [0, 1]"),
        ({"tile": 16}, "--tile needs a window side >= 32 px, got 16"),
        ({"tile": 64, "tile_overlap": 0.95}, "--tile-overlap needs a number in [0, 0.9], got 0.95"),
        ({"device": "gpu"}, "unknown device 'gpu'"),
        # the commands refused these; Inspector(...) took them: max_det 0 kept no box (every photo good)
        ({"max_det": 0}, "--max-det must be >= 1, got 0"),
        ({"imgsz": -3}, "--imgsz must be in [32, 8192] pixels, got -3"),
    ],
)
def test_bad_settings_are_user_errors(stub_detector, tiny_sam, settings, fragment):
    with pytest.raises(UserError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        Inspector(stub_detector, tiny_sam, **settings)


def test_from_checkpoints_refuses_a_bad_max_det_before_loading(tmp_path, tiny_sam):
    with pytest.raises(UserError, match="--max-det must be >= 1, got 0"):
        Inspector.from_checkpoints(tmp_path / "nope.pt", max_det=0)  # before 'weights not found'


@pytest.mark.parametrize("floor", [float("nan"), -0.1, 1.5])
def test_a_score_floor_outside_0_1_is_refused(photos, stub_detector, tiny_sam, floor):
    # NaN was passed on as the detector's conf: no box kept, every photo's image score 0, without a word
    with pytest.raises(UserError, match=f"score_floor must be in \\[0, 1\\], got {floor}"):
        Inspector(stub_detector, tiny_sam)(photos / "one.png", score_floor=floor)


def test_a_corrupt_photo_is_named(tmp_path, stub_detector, tiny_sam):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match="bad.png"):
        Inspector(stub_detector, tiny_sam)(bad)


def test_sort_by_score_is_stable():
    from detection.detections import ImageDetections

    found = sort_by_score(
        ImageDetections(np.arange(12.0).reshape(3, 4), np.array([0.5, 0.9, 0.5]), np.array([0, 1, 2]))
    )
    assert found.classes.tolist() == [1, 0, 2]


# --- from_checkpoints --------------------------------------------------------------------------


def test_from_checkpoints_with_a_decoder_on_base_weights(photos, tmp_path, tiny_registry, detector_file):
    tuned = build_tiny_sam(seed=1)
    decoder = save_decoder(tuned, tmp_path / "sam" / "decoder.pt", model="tiny")
    inspector = Inspector.from_checkpoints(
        detector_file, decoder, base_checkpoint=tiny_registry, cache_dir=tmp_path / "cache"
    )
    for name, value in tuned.mask_decoder.state_dict().items():
        assert torch.equal(inspector.sam.mask_decoder.state_dict()[name], value)
    assert inspector.cache is not None and inspector.cache.model_name == "tiny"
    assert inspector.class_names == CLASS_NAMES
    result = inspector(photos / "one.png")
    assert result.verdict == "scratch" and len(inspector.cache) == 1


def test_from_checkpoints_with_a_full_state_dict_and_no_cache(photos, tmp_path, tiny_registry, detector_file):
    inspector = Inspector.from_checkpoints(
        detector_file, tiny_registry, model="tiny", use_cache=False, conf=0.5
    )
    assert inspector.cache is None and inspector.conf == 0.5
    assert inspector(photos / "two.png").verdict == "scratch"


def test_from_checkpoints_gives_its_tiling_note_on_the_first_photo_the_tiles_would_cut(
    photos, tmp_path, tiny_registry, detector_file, monkeypatch, capsys
):
    # the note came as the inspector was built, before any photo: on photos no longer than the 320-px tiles
    # it was trained on, each run whole either way, it was a false alarm
    import json

    import inspection.inspector

    record = tmp_path / "run" / "tiles" / "tiles.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"tile": 320, "overlap": 0.2}))
    detector = StubDetector()
    detector.args = {"data": str(record.parent / "data.yaml")}  # trained by detection.train tile=320
    monkeypatch.setattr(inspection.inspector, "load_detector", lambda weights: detector)
    inspector = Inspector.from_checkpoints(detector_file, tiny_registry, model="tiny", use_cache=False)
    inspector(photos / "one.png")  # 60x80: each window of 320 would be the whole photo
    assert capsys.readouterr().err == ""
    large = paint_photo(tmp_path / "large.png", [(0, 10, 10, 30, 25)], size=(400, 500))
    for _ in range(2):
        inspector(large)
    note = f"note: {detector_file} was trained on 320-px tiles ({record}); it runs here on whole photos"
    assert capsys.readouterr().err.count(note) == 1  # once


def tiles_trained_detector(tmp_path: Path) -> tuple[StubDetector, Path]:
    """A stub detector whose checkpoint says ``detection.train tile=320`` trained it; and its tiles.json."""
    import json

    record = tmp_path / "run" / "tiles" / "tiles.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"tile": 320, "overlap": 0.2}))
    detector = StubDetector()
    detector.args = {"data": str(record.parent / "data.yaml")}
    return detector, record


def test_an_inspector_built_directly_gives_the_tiling_note_on_detect_and_on_a_photo(
    photos, tmp_path, tiny_sam, capsys
):
    # Inspector(...) from Python ran a tile-trained detector on whole photos without a word, where
    # from_checkpoints and the commands give the note: a different behaviour, silently
    detector, record = tiles_trained_detector(tmp_path)
    inspector = Inspector(detector, tiny_sam)
    inspector(photos / "one.png")  # 60x80: each 320-px window would be the whole photo
    assert capsys.readouterr().err == ""
    large = cv2.imread(str(paint_photo(tmp_path / "large.png", [(0, 10, 10, 30, 25)], size=(400, 500))))
    inspector.detect(large)
    inspector.detect(large)
    note = f"note: the detector was trained on 320-px tiles ({record}); it runs here on whole photos"
    assert capsys.readouterr().err.count(note) == 1  # once
    detector.ckpt_path = "runs/detect/tiled/weights/best.pt"  # as ultralytics' YOLO(path) records it
    Inspector(detector, tiny_sam).detect_scored(large, 0.001)
    assert "note: runs/detect/tiled/weights/best.pt was trained on 320-px tiles" in capsys.readouterr().err
    Inspector(detector, tiny_sam, tile=320).detect(large)  # the size it learnt: nothing to say
    Inspector(detector, tiny_sam, note_tiling=False).detect(large)  # the commands', said already
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing detector", "weights not found"),
        ("missing sam", "SAM checkpoint not found"),
        ("garbage sam", "cannot read SAM checkpoint"),
        ("decoder of another model", "was trained on model 'tiny', not 'vit_t'"),
        ("full state dict without model", "say which model it is for (--model)"),
        ("unknown model", "unknown SAM model 'vit_x'"),
        ("not a state dict", "neither a decoder.pt written by segmentation.train nor a SAM state dict"),
    ],
)
def test_from_checkpoints_refuses_bad_files_in_one_line(
    tmp_path, tiny_registry, detector_file, case, fragment
):
    decoder = save_decoder(build_tiny_sam(), tmp_path / "sam" / "decoder.pt", model="tiny")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00garbage" * 64)
    other = tmp_path / "other.pt"
    torch.save({"weights": [1, 2, 3]}, other)
    detector, sam, model = detector_file, decoder, None
    if case == "missing detector":
        detector = tmp_path / "nope.pt"
    elif case == "missing sam":
        sam = tmp_path / "nope_decoder.pt"
    elif case == "garbage sam":
        sam = garbage
    elif case == "decoder of another model":
        model = "vit_t"
    elif case == "full state dict without model":
        sam = tiny_registry
    elif case == "unknown model":
        model = "vit_x"
    else:
        sam = other
    with pytest.raises(UserError) as error:
        Inspector.from_checkpoints(detector, sam, model=model, use_cache=False)
    assert fragment in str(error.value) and "\n" not in str(error.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda(photos, stub_detector):
    sam = build_tiny_sam()
    result = Inspector(stub_detector, sam, device="cuda", keep_probs=True)(photos / "two.png")
    cpu = Inspector(StubDetector(), build_tiny_sam(), device="cpu")(photos / "two.png")
    assert next(sam.parameters()).device.type == "cuda"
    assert stub_detector.calls[0]["device"].startswith("cuda")
    assert result.masks.shape == cpu.masks.shape and (result.masks == cpu.masks).mean() > 0.99
    assert np.allclose(result.mask_scores, cpu.mask_scores, atol=1e-3)


def test_a_sam_run_folder_given_as_the_checkpoint_names_its_decoder_pt(tmp_path):
    from inspection.checkpoints import check_sam_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    (run / "decoder.pt").write_bytes(b"never read")
    with pytest.raises(
        UserError, match=f"^SAM checkpoint {run} is a folder, not a file: pass {run}/decoder.pt$"
    ):
        check_sam_checkpoint(run)


def test_photo_paths_may_be_strings(photos, stub_detector, tiny_sam):
    result = Inspector(stub_detector, tiny_sam)(str(photos / "one.png"))
    assert isinstance(result.path, Path) and result.verdict == "scratch"


def test_the_photo_just_inspected_keeps_its_embedding(photos, stub_detector, tiny_sam):
    inspector = Inspector(stub_detector, tiny_sam)  # no cache: only the last embedding is kept
    encoder_calls = count_calls(tiny_sam.image_encoder)
    inspector(photos / "one.png")
    embedding = inspector.embedding(photos / "one.png")  # the evaluation's oracle boxes come next
    assert len(encoder_calls) == 1 and embedding.original_size == (60, 80)
    inspector.embedding(photos / "two.png")
    assert len(encoder_calls) == 2
    with pytest.raises(UserError, match="missing.png"):
        inspector.embedding(photos / "missing.png")


def test_a_photo_rewritten_with_its_old_size_and_mtime_is_encoded_again(stub_detector, tiny_sam, tmp_path):
    # cp -p of another photo of the same size: (path, size, mtime) took it for the last one
    rng = np.random.default_rng(0)
    path, other = tmp_path / "p.bmp", tmp_path / "q.bmp"  # BMPs of one shape: one file size
    cv2.imwrite(str(path), rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    cv2.imwrite(str(other), rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    inspector = Inspector(stub_detector, tiny_sam)
    before = path.stat()
    old = inspector.embedding(path)
    assert np.array_equal(inspector.photo_rgb(path), load_rgb(path))
    time.sleep(0.05)  # past the kernel's coarse clock tick: a new change time
    shutil.copyfile(other, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert not torch.equal(inspector.embedding(path).embedding, old.embedding)
    assert np.array_equal(inspector.photo_rgb(path), load_rgb(other))


def flip_views(sam, path: Path) -> dict:
    """The photo's embeddings by :data:`TTA_VIEWS` name, each encoded alone."""
    rgb = load_rgb(path)
    return {name: embed_images(sam, [transform_image(rgb, name)])[0] for name in TTA_VIEWS}


def test_tta_masks_are_the_flip_averaged_logits(photos, stub_detector, tiny_sam):
    encoder_calls = count_calls(tiny_sam.image_encoder)
    result = Inspector(stub_detector, tiny_sam, keep_probs=True, tta=True, speck_cells=0)(photos / "two.png")
    assert len(encoder_calls) == 2  # the photo, then its three flips in one batch
    logits, scores = flip_averaged_logits(
        tiny_sam, flip_views(tiny_sam, photos / "two.png"), result.boxes, (60, 80)
    )
    assert (result.masks != (logits > 0)).mean() < 1e-3 and np.allclose(result.mask_scores, scores, atol=1e-4)
    assert np.allclose(result.mask_probs.astype(np.float32), 1 / (1 + np.exp(-logits)), atol=2e-3)
    plain = Inspector(StubDetector(), tiny_sam, keep_probs=True)(photos / "two.png")
    assert np.abs(plain.mask_probs.astype(np.float32) - result.mask_probs.astype(np.float32)).max() > 0.01


def test_tta_decodes_in_bounded_chunks_and_keeps_box_order(photos, stub_detector, tiny_sam, monkeypatch):
    import segmentation.predict

    monkeypatch.setattr(segmentation.predict, "DECODER_CHUNK", {"cpu": 3, "gpu": 5})
    inspector = Inspector(stub_detector, tiny_sam, tta=True)
    embedding = inspector.embedding(photos / "two.png")
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 40, (7, 2))
    boxes = np.hstack([corners, corners + rng.uniform(5, 30, (7, 2))])
    decoder_calls = count_calls(tiny_sam.mask_decoder)
    masks, scores, _ = inspector.segment(embedding, boxes)  # the photo just embedded: its flips are found
    assert len(decoder_calls) == 3 * 4  # 3 + 3 + 1 boxes, on each of the four views
    views = {"identity": embedding, **inspector.flip_embeddings(photos / "two.png")}
    logits, expected_scores = flip_averaged_logits(tiny_sam, views, boxes, (60, 80))
    assert np.array_equal(masks, logits > 0) and np.allclose(scores, expected_scores, atol=1e-6)


def test_tta_needs_the_photo_of_an_embedding(photos, stub_detector, tiny_sam):
    inspector = Inspector(stub_detector, tiny_sam, tta=True)
    embedding = flip_views(tiny_sam, photos / "one.png")["identity"]  # not made by the inspector
    with pytest.raises(ValueError, match="test-time flips need the photo"):
        inspector.segment(embedding, np.array([[5.0, 5, 20, 20]]))
    masks, _, _ = inspector.segment(embedding, np.array([[5.0, 5, 20, 20]]), path=photos / "one.png")
    assert masks.shape == (1, 60, 80)


@pytest.mark.skipif(bool(missing_packages()), reason=f"not installed: {missing_packages()}")
def test_tta_with_the_onnx_decoder_gives_the_same_masks(photos, stub_detector, tiny_sam):
    exact = Inspector(stub_detector, tiny_sam, keep_probs=True, tta=True)(photos / "two.png")
    result = Inspector(stub_detector, tiny_sam, keep_probs=True, tta=True, runtime="onnx")(photos / "two.png")
    assert np.allclose(result.mask_scores, exact.mask_scores, atol=1e-4)
    assert np.abs(result.mask_probs.astype(float) - exact.mask_probs.astype(float)).max() < 2e-3


def test_tta_views_are_cached_and_encoded_once(photos, stub_detector, tmp_path):
    sam = build_tiny_sam()
    cache = EmbeddingCache(tmp_path / "cache", sam, model_name="tiny")
    first = Inspector(stub_detector, sam, cache=cache, tta=True)(photos / "one.png")
    assert len(cache) == 1 and len(list((tmp_path / "cache").rglob("*.pt"))) == 4  # the photo and 3 views
    again = build_tiny_sam()
    encoder_calls = count_calls(again.image_encoder)
    cached = EmbeddingCache(tmp_path / "cache", again, model_name="tiny")
    second = Inspector(StubDetector(), again, cache=cached, tta=True)(photos / "one.png")
    assert encoder_calls == [] and np.array_equal(first.masks, second.masks)


def test_tta_with_crops_is_refused(stub_detector, tiny_sam):
    with pytest.raises(UserError, match="--tta and --crop-fraction do not combine"):
        Inspector(stub_detector, tiny_sam, tta=True, crops=CropRule(max_fraction=0.125))


@pytest.mark.parametrize(("trained", "given", "used"), [(320, None, 320), (320, 96, 96), (None, None, 640)])
def test_the_detector_runs_at_its_training_size_unless_told(
    photos, stub_detector, tiny_sam, trained, given, used
):
    # it ran at 640 whatever the size it was trained at: a 320-px detector saw defects twice their size
    if trained is not None:
        stub_detector.overrides = {"imgsz": trained, "task": "detect"}  # what YOLO(best.pt) carries
    inspector = Inspector(stub_detector, tiny_sam, imgsz=given)
    inspector(photos / "one.png")
    assert stub_detector.calls[0]["imgsz"] == used == inspector.settings["imgsz"]


def test_a_size_off_the_detectors_stride_runs_and_is_recorded_rounded_up(
    photos, stub_detector, tiny_sam, capsys
):
    # ultralytics ran --imgsz 100 at 128 with a WARNING line, and args.yaml recorded 100
    stub_detector.model = types.SimpleNamespace(stride=torch.tensor([8.0, 16.0, 32.0]))
    inspector = Inspector(stub_detector, tiny_sam, imgsz=100)
    assert (
        "note: --imgsz 100 is not a multiple of the detector's stride: it runs at 128"
        in capsys.readouterr().err
    )
    inspector(photos / "one.png")
    assert stub_detector.calls[0]["imgsz"] == 128 == inspector.settings["imgsz"]
    Inspector(stub_detector, tiny_sam, imgsz=96)
    assert capsys.readouterr().err == ""  # a multiple runs as given, without a word


def test_a_mask_duplicating_a_better_ones_of_its_class_is_dropped_with_its_box(photos, tiny_sam):
    every = Inspector(DoublingDetector(), tiny_sam, mask_iou=1.0)(photos / "two.png")
    assert len(every) == 4 and every.masks.any(axis=(1, 2)).all()
    ious = {(i, j): (every.masks[i] & every.masks[j]).sum() / (every.masks[i] | every.masks[j]).sum()
            for i in range(4) for j in range(4)}  # fmt: skip
    # scratch 0.9, stain 0.6, each with its double 0.05 lower, best first
    assert np.allclose(every.scores, [0.9, 0.85, 0.6, 0.55]) and ious[0, 1] > 0.7 and ious[2, 3] > 0.7
    inspector = Inspector(DoublingDetector(), tiny_sam, keep_probs=True)
    distinct = inspector(photos / "two.png")
    assert len(distinct) == 2 and distinct.names == ["scratch", "stain"]
    inspector(photos / "one.png")
    assert inspector.duplicates_dropped == 3  # counted over the photos
    assert np.array_equal(distinct.masks, every.masks[[0, 2]])
    assert np.array_equal(distinct.boxes, every.boxes[[0, 2]]) and distinct.mask_probs.shape[0] == 2
    assert np.array_equal(distinct.mask_scores, every.mask_scores[[0, 2]])
    assert distinct.verdict == every.verdict == "scratch"


def test_from_checkpoints_checks_the_mask_iou_before_loading(tmp_path):
    with pytest.raises(UserError, match=r"--mask-iou must be in \[0, 1\], got 1.5"):
        Inspector.from_checkpoints(tmp_path / "missing.pt", mask_iou=1.5)
