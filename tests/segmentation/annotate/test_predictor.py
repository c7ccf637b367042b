"""Clicks to masks: previews at the right size, accepted masks exactly SamPredictor's."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.annotate.errors import AnnotationError, NotFoundError
from segmentation.annotate.predictor import InteractivePredictor, check_prompt, preview_size
from segmentation.annotate.prefetch import EmbeddingPrefetcher
from segmentation.embeddings import EmbeddingCache
from segmentation.predict import predict_masks


@pytest.fixture(params=["torch", "onnx"])
def predictor(request, tmp_path, tiny_sam):
    prefetcher = EmbeddingPrefetcher(EmbeddingCache(tmp_path / "embeddings", tiny_sam, model_name="tiny"))
    predictor = InteractivePredictor(tiny_sam, prefetcher, keep=2, runtime=request.param)
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
    ],
)
def test_preview_size(size, img_size, expected):
    assert preview_size(size, img_size) == expected


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
