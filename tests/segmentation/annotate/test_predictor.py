"""Clicks to masks: previews at the right size, accepted masks exactly SamPredictor's."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segmentation.annotate.errors import AnnotationError, ConflictError, NotFoundError
from segmentation.annotate.predictor import (
    CLICK_MAX_FRACTION,
    InteractivePredictor,
    check_prompt,
    preselect,
    preview_size,
)
from segmentation.annotate.prefetch import EmbeddingPrefetcher
from segmentation.colour_head import ColourHead, box_window
from segmentation.colour_prompt import ColourPrompt
from segmentation.crops import (
    CropRule,
    Window,
    box_to_window,
    decode_with_crops,
    paste_mask,
    scale_window,
    small_box_windows,
)
from segmentation.embeddings import EmbeddingCache, load_rgb
from segmentation.predict import box_logits, predict_masks
from segmentation.specks import DEFAULT_CELLS, remove_specks
from segmentation.views import View


@pytest.fixture(params=["torch", "onnx"])
def predictor(request, tmp_path, tiny_sam):
    prefetcher = EmbeddingPrefetcher(EmbeddingCache(tmp_path / "embeddings", tiny_sam, model_name="tiny"))
    # speck_cells=0: SAM's masks exactly, so the geometry is compared bit for bit (specks: below)
    predictor = InteractivePredictor(tiny_sam, prefetcher, keep=2, runtime=request.param, speck_cells=0)
    yield predictor
    predictor.close()
    prefetcher.close()


@pytest.mark.parametrize(
    "size, img_size, expected",
    [
        ((512, 512), 1024, (512, 512)),  # small: the image's own size, the exact mask
        ((1024, 700), 1024, (1024, 700)),
        ((3000, 4000), 1024, (768, 1024)),  # large: SAM's input size
        ((4000, 3000), 1024, (1024, 768)),
        ((300, 640), 256, (120, 256)),
        # strips: SAM's input size made a 6000x8 one's preview 1x1024, a band where every pixel was an outline
        ((8, 6000), 1024, (5, 4096)),  # its own short side, but at most 4096 px long
        ((8, 3000), 1024, (8, 3000)),  # its own size
        ((100, 6000), 1024, (64, 3840)),  # shrunk to 64 px, no further
        ((6000, 100), 1024, (3840, 64)),
        ((200, 6000), 1024, (64, 1920)),
        ((600, 6000), 1024, (102, 1024)),  # SAM's input size keeps 64 px or more: as before
    ],
)
def test_preview_size(size, img_size, expected):
    assert preview_size(size, img_size) == expected


def test_a_strip_photo_gets_a_preview_of_its_own_size_not_one_row(predictor, tmp_path):
    # was: SAM's input size, 2x256 for this 8x1200 strip; the page drew each mask as one band over it
    path = tmp_path / "strip.png"
    pixels = np.zeros((8, 1200, 3), np.uint8)
    pixels[2:6, 500:700] = (255, 0, 0)
    cv2.imwrite(str(path), pixels)
    prediction = predictor.predict("strip.png", path, points=[[600, 4]], labels=[1])
    assert predictor.preview_size((8, 1200)) == (8, 1200)
    assert prediction.masks.shape == (3, 8, 1200)
    if predictor.runtime == "torch":  # the preview is the photo's own size: the accepted mask itself
        for candidate in range(3):
            assert np.array_equal(prediction.masks[candidate], predictor.full_mask(prediction, candidate))


@pytest.mark.parametrize(
    "points, labels, box, error",
    [
        ([], [], None, "empty prompt"),
        ([[1, 1]], [], None, "1 points but 0 labels"),
        ([[1, 1]], [2], None, "must be 1"),
        ([[-1, 5]], [1], None, "outside"),
        ([[5, 121]], [1], None, "outside"),
        ([[float("nan"), 5]], [1], None, "finite"),
        ([], [], [10, 10, 10.5, 40], "at least one pixel"),
        ([], [], [10, 10, 200, 40], "outside"),
        ([[1, 1]] * 65, [1] * 65, None, "at most 64"),
    ],
    ids=["empty", "labels", "label-value", "left", "below", "nan", "thin-box", "box-outside", "too-many"],
)
def test_bad_prompts_are_refused(points, labels, box, error):
    with pytest.raises(AnnotationError, match=error):
        check_prompt(points, labels, box, size=(120, 160))


def test_boxes_are_ordered_and_edges_are_inside():
    coords, labels, boxes = check_prompt([[160, 120]], [1], [100, 80, 20, 10], size=(120, 160))
    assert coords.shape == (1, 1, 2) and labels.tolist() == [[1]]
    assert boxes.tolist() == [[20, 10, 100, 80]]


@pytest.mark.parametrize("key", ["a.png", "wide.png"], ids=["small", "larger-than-sam-input"])
def test_accepted_masks_are_exactly_predict_masks(predictor, photos, key):
    folder, truths = photos
    path = folder / key
    height, width = truths[key].shape
    points, labels, box = (
        [[width * 0.3, height * 0.6], [width * 0.7, height * 0.2]],
        [1, 0],
        [5, 4, width - 9, height - 3],
    )
    prediction = predictor.predict(key, path, points=points, labels=labels, box=box)
    emb = predictor.prefetcher.get(path)
    expected, scores, _ = predict_masks(
        predictor.sam,
        emb,
        point_coords=[points],
        point_labels=[labels],
        boxes=[box],
        multimask_output=True,
    )
    # torch: bit for bit; ONNX Runtime sums in another order (logits within ~1e-4), which can
    # flip a pixel whose logit sits at the threshold, so at most a few per thousand differ.
    exact = predictor.runtime == "torch"
    np.testing.assert_allclose(
        prediction.scores, scores[0], rtol=1e-6 if exact else 1e-4, atol=0 if exact else 1e-5
    )
    assert prediction.masks.shape == (3, *predictor.preview_size((height, width)))
    for candidate in range(3):
        full = predictor.full_mask(prediction, candidate)
        assert full.shape == (height, width)
        if exact:
            assert np.array_equal(full, expected[0, candidate])
        else:
            assert np.mean(full != expected[0, candidate]) < 1e-3
        if prediction.masks.shape[1:] == (height, width):
            assert np.array_equal(prediction.masks[candidate], full)  # small images: the preview is the mask


def test_unknown_or_misplaced_runtimes_are_refused(tmp_path, tiny_sam):
    prefetcher = EmbeddingPrefetcher(EmbeddingCache(tmp_path / "embeddings", tiny_sam, model_name="tiny"))
    try:
        with pytest.raises(AnnotationError, match="unknown decoder runtime 'tensorrt'"):
            InteractivePredictor(tiny_sam, prefetcher, runtime="tensorrt")
    finally:
        prefetcher.close()


def test_predictions_are_remembered_per_image_and_expire(predictor, photos):
    folder, _ = photos
    first = predictor.predict("a.png", folder / "a.png", points=[[10, 10]], labels=[1])
    assert predictor.prediction(first.id, "a.png") is first
    with pytest.raises(NotFoundError, match="expired"):
        predictor.prediction(first.id, "b.jpg")  # another image's handle
    for _ in range(2):  # keep=2
        predictor.predict("a.png", folder / "a.png", points=[[10, 10]], labels=[1])
    with pytest.raises(NotFoundError):
        predictor.prediction(first.id, "a.png")
    with pytest.raises(AnnotationError, match="candidate"):
        last = predictor.predict("a.png", folder / "a.png", points=[[10, 10]], labels=[1])
        predictor.full_mask(last, 3)


def crop_predictor(tmp_path, sam, rule, runtime="torch"):
    prefetcher = EmbeddingPrefetcher(EmbeddingCache(tmp_path / "embeddings", sam, model_name="tiny"))
    return InteractivePredictor(sam, prefetcher, runtime=runtime, crops=rule, speck_cells=0)


def crop_frame_masks(sam, path, window, points, labels, box, multimask=True):
    """The expected answer, computed apart: a fresh cache's crop embedding, SAM on it, the crop's masks."""
    other = EmbeddingCache(Path(path).parent.parent / "other_embeddings", sam, model_name="tiny")
    (emb,) = other.embed([path], views=[View(window=window)], progress=False)
    offset = np.array([window.x0, window.y0], float)
    masks, scores, _ = predict_masks(
        sam,
        emb,
        point_coords=[np.asarray(points, float) - offset] if points else None,
        point_labels=[labels] if points else None,
        boxes=box_to_window(np.asarray(box, float), window)[None],
        multimask_output=multimask,
    )
    return masks[0], scores[0]


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
@pytest.mark.parametrize(
    "key, box, points, window",
    [
        # top-left corner of a 120x160 photo: the window moved inside; the preview is the photo itself
        ("a.png", [2, 3, 20, 18], [[10, 10]], Window(0, 0, 54)),
        # a 300x640 photo: the window is taller than the photo (zero rows above and below, centred)
        # and moved in from the right edge; the preview is SAM's input size (120x256)
        ("wide.png", [500, 100, 610, 190], [[560, 150]], Window(310, -15, 330)),
    ],
    ids=["corner", "non-square"],
)
def test_a_small_box_is_decoded_on_its_crop_and_pasted_back(
    tmp_path, tiny_sam, photos, runtime, key, box, points, window
):
    folder, truths = photos
    path, size = folder / key, truths[key].shape
    rule = CropRule(max_fraction=0.5 if key == "a.png" else 0.25, margin=1.0, min_side=48)
    predictor = crop_predictor(tmp_path, tiny_sam, rule, runtime)
    try:
        prediction = predictor.predict(key, path, points=points, labels=[1], box=box)
        assert prediction.window == window
        expected, scores = crop_frame_masks(tiny_sam, path, window, points, [1], box)
        exact = runtime == "torch"
        np.testing.assert_allclose(prediction.scores, scores, rtol=1e-6 if exact else 1e-4, atol=1e-5)
        for candidate in range(3):
            full = predictor.full_mask(prediction, candidate)
            pasted = paste_mask(expected[candidate], window, size)
            assert full.shape == size
            if exact:
                assert np.array_equal(full, pasted)
            else:
                assert np.mean(full != pasted) < 1e-3
            assert not full[:, : max(window.x0, 0)].any() and not full[:, window.x0 + window.side :].any()
            preview = prediction.masks[candidate]
            assert preview.shape == predictor.preview_size(size)
            if preview.shape == size:
                assert np.array_equal(preview, full)  # small photos: the preview is the mask
            else:  # the crop resized into its place in the preview: it follows the mask's outline
                pixels = full.view(np.uint8) * np.uint8(255)
                covered = cv2.resize(pixels, preview.shape[::-1], interpolation=cv2.INTER_AREA)
                assert np.mean(preview & (covered == 0)) < 2e-3  # no preview pixel the mask misses
                assert np.mean(~preview & (covered == 255)) < 2e-3  # none the mask fills left out
    finally:
        predictor.close()
        predictor.prefetcher.close()


def test_points_outside_the_crop_and_points_alone_use_the_whole_photo(tmp_path, tiny_sam, photos):
    folder, _ = photos
    predictor = crop_predictor(tmp_path, tiny_sam, CropRule(max_fraction=0.5, min_side=48))
    try:
        path, box = folder / "a.png", [2, 3, 20, 18]
        for points, labels in (([[10, 10], [150, 100]], [1, 0]), ([[10, 10]], [1])):
            with_box = box if len(points) == 2 else None
            prediction = predictor.predict("a.png", path, points=points, labels=labels, box=with_box)
            assert prediction.window is None
            expected, _, _ = predict_masks(
                tiny_sam,
                predictor.prefetcher.get(path),
                point_coords=[points],
                point_labels=[labels],
                boxes=None if with_box is None else [with_box],
                multimask_output=True,
            )
            assert np.array_equal(predictor.full_mask(prediction, 1), expected[0, 1])
    finally:
        predictor.close()
        predictor.prefetcher.close()


@pytest.mark.parametrize("rule", [None, CropRule(max_fraction=0.0, min_side=48)], ids=["none", "zero"])
def test_without_crops_a_small_box_is_decoded_on_the_whole_photo_as_before(tmp_path, tiny_sam, photos, rule):
    folder, _ = photos
    predictor = crop_predictor(tmp_path, tiny_sam, rule)
    try:
        path, box = folder / "a.png", [2, 3, 20, 18]
        prediction = predictor.predict("a.png", path, points=[[10, 10]], labels=[1], box=box)
        assert predictor.crops is None and prediction.window is None and prediction.crop_s == 0
        emb = predictor.prefetcher.get(path)
        expected, _, _ = predict_masks(
            tiny_sam, emb, point_coords=[[[10, 10]]], point_labels=[[1]], boxes=[box], multimask_output=True
        )
        for candidate in range(3):
            assert np.array_equal(predictor.full_mask(prediction, candidate), expected[0, candidate])
        assert np.array_equal(prediction.masks, expected[0])
        [entry] = predictor.prefetcher.cache.folder.glob("*.pt")  # the photo's embedding, no crop
        assert "-" not in entry.stem
    finally:
        predictor.close()
        predictor.prefetcher.close()


def test_a_second_box_in_the_same_crop_runs_no_encoder(tmp_path, tiny_sam, photos):
    folder, _ = photos
    path = folder / "wide.png"
    calls = []
    hook = tiny_sam.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    predictor = crop_predictor(tmp_path, tiny_sam, CropRule(max_fraction=0.25, min_side=96))
    try:
        predictor.prefetcher.get(path)
        assert len(calls) == 1  # the photo
        first = predictor.predict("wide.png", path, box=[300, 100, 320, 118])
        assert first.window is not None and len(calls) == 2  # its crop: one encoder run
        again = predictor.predict("wide.png", path, points=[[310, 110]], labels=[1], box=[300, 100, 320, 118])
        redrawn = predictor.predict("wide.png", path, box=[303, 98, 324, 120])
        assert again.window == redrawn.window == first.window and len(calls) == 2
        elsewhere = predictor.predict("wide.png", path, box=[100, 200, 120, 220])
        assert elsewhere.window != first.window and len(calls) == 3
    finally:
        hook.remove()
        predictor.close()
        predictor.prefetcher.close()


def test_detector_boxes_use_the_rule_as_evaluation_does(tmp_path, tiny_sam, photos):
    """``box_masks`` with crops gives the masks of evaluation's path, ``crops.decode_with_crops``."""
    folder, truths = photos
    path = folder / "wide.png"
    rule = CropRule(max_fraction=0.25, min_side=96)
    predictor = crop_predictor(tmp_path, tiny_sam, rule)
    try:
        emb = predictor.prefetcher.get(path)
        boxes = np.array([[300, 100, 320, 118], [10, 10, 400, 290], [600, 270, 640, 300]], float)
        found = predictor.worker.run(lambda: predictor.box_masks(emb, boxes, path=path))
        windows = small_box_windows(rule, boxes, emb.original_size)
        assert [w is None for w in windows] == [False, True, False]

        def decode_boxes(embedding, frame_boxes):
            masks, scores, _ = predict_masks(tiny_sam, embedding, boxes=frame_boxes, multimask_output=False)
            return masks[:, 0], scores[:, 0]

        def crop_embedding(window):
            return predictor.prefetcher.cache.embed([path], views=[View(window=window)], progress=False)[0]

        masks, scores = decode_with_crops(
            decode_boxes, emb, boxes, windows, crop_embedding, emb.original_size
        )
        for (mask, iou), want, score in zip(found, masks, scores, strict=True):
            assert np.array_equal(mask, want) and iou == pytest.approx(float(score), abs=1e-6)
    finally:
        predictor.close()
        predictor.prefetcher.close()


def head_predictor(tmp_path, sam, head, crops=None, *, prompt=None, runtime="torch"):
    """A predictor with ``head`` and ``prompt`` (None: without), on a cache shared by every call."""
    prefetcher = EmbeddingPrefetcher(EmbeddingCache(tmp_path / "embeddings", sam, model_name="tiny"))
    return InteractivePredictor(
        sam, prefetcher, colour_head=head, colour_prompt=prompt, crops=crops, speck_cells=0, runtime=runtime
    )


def box_masks_with(tmp_path, sam, head, path, boxes, crops=None, **options):
    """``box_masks`` of ``boxes`` on ``path`` by a fresh predictor with ``head``, ``options``; masks only."""
    predictor = head_predictor(tmp_path, sam, head, crops, **options)
    try:
        emb = predictor.prefetcher.get(path)
        return [mask for mask, _ in predictor.worker.run(lambda: predictor.box_masks(emb, boxes, path=path))]
    finally:
        predictor.close()
        predictor.prefetcher.close()


@pytest.mark.parametrize("bias, inside", [(5.0, True), (-5.0, False)], ids=["foreground", "background"])
def test_a_colour_head_decides_box_masks_inside_the_box_window(tmp_path, tiny_sam, photos, bias, inside):
    """A head of bias alone decides every in-window pixel its way; outside the window SAM's mask stays."""
    path = photos[0] / "a.png"
    boxes = np.array([[20.3, 30.7, 90.2, 80.5], [100, 10, 150, 60]])
    plain = box_masks_with(tmp_path, tiny_sam, None, path, boxes)
    headed = box_masks_with(tmp_path, tiny_sam, ColourHead((0.0, 0.0, bias)), path, boxes)
    for box, want, got in zip(boxes, plain, headed, strict=True):
        window = box_window(box, want.shape)
        in_window = np.zeros(want.shape, bool)
        in_window[window] = True
        assert not np.all(want[window] == inside)  # SAM's own mask differs there
        assert want[~in_window].any()  # SAM's mask reaches outside the window: what must stay
        assert got[window].all() if inside else not got[window].any()
        assert np.array_equal(got[~in_window], want[~in_window])


@pytest.mark.parametrize("colour", ["head", "prompt"])
def test_clicks_and_drawn_boxes_are_not_refined_by_a_colour_head(tmp_path, tiny_sam, photos, colour):
    """The head was fit on detector boxes' single masks (the prompt given to box prompts alone):
    ``predict``'s candidates stay SAM's."""
    path = photos[0] / "a.png"
    prompt = {"points": [[40.5, 60.5]], "labels": [1], "box": [20, 30, 90, 80]}
    answers = []
    for used in (False, True):
        head = ColourHead((0.0, 0.0, 5.0)) if used and colour == "head" else None
        predictor = head_predictor(tmp_path, tiny_sam, head, prompt=ColourPrompt() if used else None)
        try:
            prediction = predictor.predict("a.png", path, **prompt)
            answers.append((prediction.masks, [predictor.full_mask(prediction, k) for k in range(3)]))
        finally:
            predictor.close()
            predictor.prefetcher.close()
    (plain_previews, plain_full), (head_previews, head_full) = answers
    assert not plain_full[0][30:80, 20:90].all()  # a head that reached clicks would show
    assert np.array_equal(head_previews, plain_previews)
    assert all(np.array_equal(a, b) for a, b in zip(head_full, plain_full, strict=True))


@pytest.mark.parametrize("colour", ["head", "prompt"])
def test_box_masks_with_a_colour_head_need_the_photo(tmp_path, tiny_sam, photos, colour):
    path = photos[0] / "a.png"
    if colour == "head":
        predictor = head_predictor(tmp_path, tiny_sam, ColourHead((0.0, 0.0, 5.0)))
    else:
        predictor = head_predictor(tmp_path, tiny_sam, None, prompt=ColourPrompt())
    try:
        emb = predictor.prefetcher.get(path)
        with pytest.raises(ValueError, match="needs the photo's path"):
            predictor.worker.run(lambda: predictor.box_masks(emb, np.array([[20, 30, 90, 80]])))
    finally:
        predictor.close()
        predictor.prefetcher.close()


def test_boxes_decoded_on_crops_are_not_refined_by_a_colour_head(tmp_path, tiny_sam, photos):
    """The head works in the photo's frame: a small box on its zoomed crop keeps SAM's mask."""
    path = photos[0] / "wide.png"
    rule = CropRule(max_fraction=0.25, min_side=96)
    boxes = np.array([[300, 100, 320, 118], [10, 10, 400, 290]])  # on a crop; on the photo
    plain = box_masks_with(tmp_path, tiny_sam, None, path, boxes, crops=rule)
    headed = box_masks_with(tmp_path, tiny_sam, ColourHead((0.0, 0.0, 5.0)), path, boxes, crops=rule)
    assert not plain[0][100:118, 300:320].all() and not plain[1][10:290, 10:400].all()
    assert np.array_equal(headed[0], plain[0])
    assert headed[1][10:290, 10:400].all()


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_box_masks_take_a_colour_prompts_maps_as_mask_input(tmp_path, tiny_sam, photos, runtime):
    """A colour prompt: each box's mask is SAM's with its map as ``mask_input``, as evaluation's."""
    path = photos[0] / "a.png"
    boxes = np.array([[20.3, 30.7, 90.2, 80.5], [100, 10, 150, 60]])
    prompt = ColourPrompt()
    prompted = box_masks_with(tmp_path, tiny_sam, None, path, boxes, prompt=prompt, runtime=runtime)
    cache = EmbeddingCache(tmp_path / "embeddings", tiny_sam, model_name="tiny")
    emb = cache.embed([path], progress=False)[0]
    maps = prompt.maps(tiny_sam, emb, load_rgb(path), boxes)
    with_maps, _ = box_logits(tiny_sam, emb, boxes, mask_input=maps)
    without, _ = box_logits(tiny_sam, emb, boxes)
    threshold = tiny_sam.mask_threshold
    for got, want, plain in zip(prompted, with_maps > threshold, without > threshold, strict=True):
        assert np.mean(want != plain) > 0.01  # the maps change SAM's mask
        assert np.array_equal(got, want) if runtime == "torch" else np.mean(got != want) < 1e-3


def test_boxes_decoded_on_crops_get_no_colour_prompt(tmp_path, tiny_sam, photos):
    """The maps are in the photo's frame: a small box on its zoomed crop keeps SAM's mask."""
    path = photos[0] / "wide.png"
    rule = CropRule(max_fraction=0.25, min_side=96)
    boxes = np.array([[300, 100, 320, 118], [10, 10, 400, 290]])  # on a crop; on the photo
    plain = box_masks_with(tmp_path, tiny_sam, None, path, boxes, crops=rule)
    prompted = box_masks_with(tmp_path, tiny_sam, None, path, boxes, crops=rule, prompt=ColourPrompt())
    whole = box_masks_with(tmp_path, tiny_sam, None, path, boxes[1:], prompt=ColourPrompt())
    assert np.array_equal(prompted[0], plain[0])
    assert np.array_equal(prompted[1], whole[0]) and not np.array_equal(prompted[1], plain[1])


@pytest.mark.parametrize("key", ["a.png", "wide.png"], ids=["small", "larger-than-sam-input"])
def test_specks_are_removed_from_accepted_masks_previews_and_box_masks(tmp_path, tiny_sam, photos, key):
    """The default predictor's masks are SAM's with ``remove_specks`` at 16 cells of the frame's logits."""
    folder, truths = photos
    path, (height, width) = folder / key, truths[key].shape
    prefetcher = EmbeddingPrefetcher(EmbeddingCache(tmp_path / "embeddings", tiny_sam, model_name="tiny"))
    exact = InteractivePredictor(tiny_sam, prefetcher, speck_cells=0)
    cleaned = InteractivePredictor(tiny_sam, prefetcher)
    assert cleaned.speck_cells == DEFAULT_CELLS
    try:
        prompt = {"points": [[width * 0.3, height * 0.6], [width * 0.7, height * 0.2]], "labels": [1, 0]}
        sam_masks, ours = exact.predict(key, path, **prompt), cleaned.predict(key, path, **prompt)
        grid = sam_masks.low_res.shape[-1]
        changed = 0
        for candidate in range(3):
            want = remove_specks(
                exact.full_mask(sam_masks, candidate), DEFAULT_CELLS * (max(height, width) / grid) ** 2
            )
            assert np.array_equal(cleaned.full_mask(ours, candidate), want)
            changed += int(not np.array_equal(want, exact.full_mask(sam_masks, candidate)))
            preview = sam_masks.masks[candidate]
            area = DEFAULT_CELLS * (max(preview.shape) / grid) ** 2
            assert np.array_equal(ours.masks[candidate], remove_specks(preview, area))
        assert changed  # the tiny model's masks have specks: the test sees them go
        emb, box = prefetcher.get(path), np.array([[5, 4, width - 9, height - 3]], float)
        (plain, _), (box_mask, _) = (
            predictor.worker.run(lambda p=predictor: p.box_masks(emb, box, path=path))[0]
            for predictor in (exact, cleaned)
        )
        assert np.array_equal(
            box_mask, remove_specks(plain, DEFAULT_CELLS * (max(height, width) / grid) ** 2)
        )
    finally:
        exact.close(), cleaned.close(), prefetcher.close()


def test_specks_of_a_crop_are_removed_in_the_crop_frame(tmp_path, tiny_sam, photos):
    folder, truths = photos
    path, size, window = folder / "wide.png", truths["wide.png"].shape, Window(310, -15, 330)
    prefetcher = EmbeddingPrefetcher(EmbeddingCache(tmp_path / "embeddings", tiny_sam, model_name="tiny"))
    predictor = InteractivePredictor(
        tiny_sam, prefetcher, crops=CropRule(max_fraction=0.25, margin=1.0, min_side=48)
    )
    try:
        prediction = predictor.predict(
            "wide.png", path, points=[[560, 150]], labels=[1], box=[500, 100, 610, 190]
        )
        assert prediction.window == window
        expected, _ = crop_frame_masks(tiny_sam, path, window, [[560, 150]], [1], [500, 100, 610, 190])
        area = DEFAULT_CELLS * (window.side / prediction.low_res.shape[-1]) ** 2
        changed = 0
        for candidate in range(3):
            want = paste_mask(remove_specks(expected[candidate], area), window, size)
            assert np.array_equal(predictor.full_mask(prediction, candidate), want)
            changed += int(not np.array_equal(want, paste_mask(expected[candidate], window, size)))
        assert changed
    finally:
        predictor.close(), prefetcher.close()


def candidate_masks(*fractions: float, side: int = 100) -> np.ndarray:
    """``(M, side, side)`` masks covering the given fractions of the photo (top rows first)."""
    masks = np.zeros((len(fractions), side, side), bool)
    for mask, fraction in zip(masks, fractions, strict=True):
        mask.reshape(-1)[: round(fraction * side * side)] = True
    return masks


@pytest.mark.parametrize(
    "scores, fractions, box, expected",
    [
        (
            [0.7, 0.8, 0.95],
            [0.02, 0.08, 0.6],
            False,
            1,
        ),  # a click: the whole part scored highest is passed over
        ([0.7, 0.8, 0.95], [0.02, 0.08, 0.6], True, 2),  # a box: SAM's pick
        ([0.9, 0.8, 0.95], [0.02, 0.08, 0.6], False, 0),
        ([0.9, 0.8, 0.95], [0.3, 0.2, 0.6], False, 1),  # none under a tenth: the smallest
        ([0.9, 0.8, 0.95], [0.1, 0.2, 0.6], False, 0),  # a tenth exactly is not under it: the smallest
        ([0.9, 0.9, 0.5], [0.05, 0.01, 0.6], False, 0),  # a tie in score: the first
    ],
)
def test_a_click_shows_first_the_best_scored_mask_under_a_tenth_of_the_photo(
    scores, fractions, box, expected
):
    assert CLICK_MAX_FRACTION == 0.1
    assert preselect(np.array(scores), candidate_masks(*fractions), box=box) == expected


def test_a_tenth_of_the_photo_exactly_is_not_under_it_when_a_smaller_one_is():
    # scored higher than the smaller one, the candidate of exactly a tenth is still passed over
    assert preselect(np.array([0.8, 0.9, 0.95]), candidate_masks(0.05, 0.1, 0.6), box=False) == 0


def test_specks_of_a_crop_are_removed_from_its_previews_in_the_preview_frame(tmp_path, tiny_sam, photos):
    folder, truths = photos
    path, size = folder / "wide.png", truths["wide.png"].shape
    prefetcher = EmbeddingPrefetcher(EmbeddingCache(tmp_path / "embeddings", tiny_sam, model_name="tiny"))
    predictor = InteractivePredictor(
        tiny_sam, prefetcher, crops=CropRule(max_fraction=0.25, margin=1.0, min_side=48)
    )
    try:
        prediction = predictor.predict(
            "wide.png", path, points=[[560, 150]], labels=[1], box=[500, 100, 610, 190]
        )
        preview = predictor.preview_size(size)
        scaled = scale_window(prediction.window, max(preview) / max(size))
        square = (tiny_sam.image_encoder.img_size,) * 2
        with torch.inference_mode():
            logits = tiny_sam.postprocess_masks(prediction.low_res, square, (scaled.side, scaled.side))
        masks = (logits[0] > tiny_sam.mask_threshold).numpy()
        area = DEFAULT_CELLS * (scaled.side / prediction.low_res.shape[-1]) ** 2
        changed = 0
        for candidate, mask in enumerate(masks):
            want = paste_mask(remove_specks(mask, area), scaled, preview)
            assert np.array_equal(prediction.masks[candidate], want)
            changed += int(not np.array_equal(want, paste_mask(mask, scaled, preview)))
        assert changed
    finally:
        predictor.close(), prefetcher.close()


def test_a_photo_replaced_while_its_embedding_is_computed_is_refused_at_accept(tmp_path, tiny_sam, photos):
    # the file is looked at before the embedding is asked for: the embedding may be of the old photo
    folder, _ = photos
    path = folder / "a.png"
    prefetcher = EmbeddingPrefetcher(EmbeddingCache(tmp_path / "embeddings", tiny_sam, model_name="tiny"))
    predictor = InteractivePredictor(tiny_sam, prefetcher, speck_cells=0)
    get, replaced = prefetcher.get, []

    def get_then_replace(asked: Path):
        embedding = get(asked)
        if not replaced:
            asked.write_bytes(asked.read_bytes() + b"\0")  # another photo of the same size lands
            replaced.append(asked)
        return embedding

    prefetcher.get = get_then_replace
    try:
        prediction = predictor.predict("a.png", path, points=[[60, 50]], labels=[1])
        assert replaced
        with pytest.raises(ConflictError, match="changed on disk since prediction"):
            predictor.full_mask(prediction, 0)
    finally:
        predictor.close(), prefetcher.close()
