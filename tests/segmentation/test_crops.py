"""Zoomed crops: window geometry at image borders and on non-square images, paste-back, cache keys."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from segmentation.crops import (
    CropRule,
    Window,
    box_to_window,
    crop_image,
    crop_window,
    decode_with_crops,
    paste_mask,
    scale_window,
    small_box_windows,
)
from segmentation.embeddings import EmbeddingCache
from segmentation.views import View


@pytest.mark.parametrize(
    ("box", "size", "expected", "case"),
    [
        ((300, 300, 320, 310), (1024, 1024), Window(182, 177, 256), "inside: centred, min side"),
        ((0, 0, 20, 20), (1024, 1024), Window(0, 0, 256), "top-left corner: moved inside"),
        ((1000, 1010, 1024, 1024), (1024, 1024), Window(768, 768, 256), "bottom-right corner"),
        ((500, 100, 600, 130), (1024, 1024), Window(400, 0, 300), "3 box sides, moved down inside"),
        ((390, 90, 410, 110), (200, 800), Window(272, -28, 256), "taller than the image: centred, padded"),
        # 55 px too tall or wide: the odd pixel of padding goes below or right, as SAM pads
        ((390, 90, 410, 110), (201, 800), Window(272, -27, 256), "taller by an odd overhang"),
        ((90, 390, 110, 410), (800, 201), Window(-27, 272, 256), "wider by an odd overhang"),
    ],
)
def test_crop_window(box, size, expected, case):
    window = crop_window(np.array(box, float), size, margin=1.0, min_side=256)
    assert window == expected, case


def test_window_side_rounds_a_fractional_box_up():
    window = crop_window(np.array([100, 100, 120.1, 110]), (1024, 1024), margin=1.0, min_side=16)
    assert window.side == 61  # 3 x 20.1 = 60.3 px: the whole box side and its margins fit


def test_scaled_window_rounds_corners_to_the_nearest_pixel():
    assert scale_window(Window(7, -7, 11), 0.5) == Window(4, -4, 6)
    assert scale_window(Window(3, 3, 1), 0.1) == Window(0, 0, 1)


def test_view_keys_name_the_transform_and_the_window():
    assert View().key == ""  # the plain image keeps its bare content hash
    assert View(transform="fliplr").key == "fliplr"
    assert View(window=Window(10, -4, 256)).key == "crop10_-4_256"
    assert View(transform="rot90", window=Window(10, -4, 256)).key == "rot90-crop10_-4_256"


def test_a_cropped_view_is_its_window_square_whatever_the_transform():
    assert View(transform="rot90").size((40, 64)) == (64, 40)
    assert View(transform="rot90", window=Window(3, -2, 32)).size((40, 64)) == (32, 32)


def test_unknown_view_transform_is_an_error():
    with pytest.raises(ValueError, match="unknown transform 'spin'"):
        View(transform="spin")


def test_window_as_large_as_the_image_is_no_crop():
    assert crop_window(np.array([10, 10, 20, 20.0]), (256, 256), min_side=256) is None


def test_rule_picks_small_boxes_only():
    rule = CropRule(max_fraction=0.125, margin=1.0, min_side=64)
    size = (512, 768)  # non-square: the fraction is of the longest side (96 px)
    assert rule.window(np.array([10, 10, 100, 50.0]), size) is not None  # 90 < 96
    assert rule.window(np.array([10, 10, 110, 50.0]), size) is None  # 100 >= 96
    assert rule.window(np.array([10, 10, 106, 50.0]), size) is None  # exactly 96: not small
    assert rule.window(np.array([10, 10, 105, 50.0]), size) is not None  # 95
    assert CropRule(max_fraction=0.0).window(np.array([10, 10, 12, 12.0]), size) is None
    assert small_box_windows(None, np.zeros((2, 4)), size) == [None, None]


@pytest.mark.parametrize(
    ("window", "size"),
    [
        (Window(0, 0, 64), (100, 150)),  # top-left, inside
        (Window(86, 36, 64), (100, 150)),  # bottom-right edge exactly
        (Window(120, 70, 64), (100, 150)),  # past the bottom-right border
        (Window(-20, -10, 64), (100, 150)),  # past the top-left border
        (Window(30, -30, 160), (100, 150)),  # larger than the image along both axes
    ],
)
def test_crop_then_paste_gives_back_the_window_part(window, size):
    rng = np.random.default_rng(0)
    mask = rng.random(size) < 0.5
    crop = crop_image(mask, window)
    assert crop.shape == (window.side, window.side)
    inside = np.zeros(size, bool)
    inside[max(window.y0, 0) : window.y0 + window.side, max(window.x0, 0) : window.x0 + window.side] = True
    np.testing.assert_array_equal(paste_mask(crop, window, size), mask & inside)
    # outside the image the crop is zero padding
    assert crop.sum() == (mask & inside).sum()


def test_crop_image_keeps_channels_and_box_moves_into_the_window():
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    window = Window(-5, 4, 16)
    crop = crop_image(image, window)
    np.testing.assert_array_equal(crop[0, 5], image[4, 0])
    np.testing.assert_array_equal(crop[:, :5], 0)
    np.testing.assert_allclose(box_to_window(np.array([3, 6, 8, 9]), window), [8, 2, 13, 5])


def test_decode_with_crops_pastes_each_crop_mask_where_its_box_was():
    size = (100, 200)
    boxes = np.array([[10, 10, 190, 90], [150, 80, 160, 90]], float)
    windows = [None, Window(130, 60, 50)]

    def decode_boxes(embedding, boxes_in_frame):
        # a fake decoder: the box itself as the mask, in the embedding's frame
        h, w = (100, 200) if embedding == "whole" else (50, 50)
        masks = np.zeros((len(boxes_in_frame), h, w), bool)
        for k, (x0, y0, x1, y1) in enumerate(boxes_in_frame.astype(int)):
            masks[k, y0:y1, x0:x1] = True
        return masks, np.full(len(boxes_in_frame), 0.5 if embedding == "whole" else 0.9, np.float32)

    masks, scores = decode_with_crops(decode_boxes, "whole", boxes, windows, lambda w: ("crop", w), size)
    expected = np.zeros((2, *size), bool)
    expected[0, 10:90, 10:190] = True
    expected[1, 80:90, 150:160] = True
    np.testing.assert_array_equal(masks, expected)
    np.testing.assert_allclose(scores, [0.5, 0.9])


def test_decode_with_crops_keeps_the_box_order_when_a_crop_comes_first():
    size = (100, 200)
    boxes = np.array([[150, 80, 160, 90], [10, 10, 190, 90], [20, 20, 40, 40]], float)
    windows = [Window(130, 60, 50), None, None]

    def decode_boxes(embedding, boxes_in_frame):
        side = 50 if embedding == "crop" else None
        masks = np.zeros((len(boxes_in_frame), *((side, side) if side else size)), bool)
        for k, (x0, y0, x1, y1) in enumerate(boxes_in_frame.astype(int)):
            masks[k, y0:y1, x0:x1] = True
        return masks, boxes_in_frame[:, 0].astype(np.float32)  # a score that tells the boxes apart

    masks, scores = decode_with_crops(decode_boxes, "whole", boxes, windows, lambda w: "crop", size)
    assert [int(m.sum()) for m in masks] == [100, 180 * 80, 400]
    np.testing.assert_allclose(scores, [20.0, 10.0, 20.0])  # the crop's box starts at x 20 in its window


def test_decode_with_crops_pastes_further_maps_and_decodes_crops_with_decode_crop():
    # the cascade's probabilities were pasted back by a second copy of this loop (inspection.inspector);
    # a map comes back in the image's frame with its dtype, zeros outside a crop's window, and None stays None
    size = (100, 200)
    boxes = np.array([[150, 80, 160, 90], [10, 10, 190, 90]], float)
    windows = [Window(130, 60, 50), None]
    seen = []

    def decode(name):
        def decode_boxes(embedding, boxes_in_frame):
            seen.append((name, embedding))
            shape = (len(boxes_in_frame), *((50, 50) if embedding == "crop" else size))
            masks, probs = np.zeros(shape, bool), np.full(shape, 0.25, np.float16)
            for k, (x0, y0, x1, y1) in enumerate(boxes_in_frame.astype(int)):
                masks[k, y0:y1, x0:x1], probs[k, y0:y1, x0:x1] = True, 0.75
            return masks, np.full(len(boxes_in_frame), 0.5, np.float32), probs, None

        return decode_boxes

    masks, scores, probs, nothing = decode_with_crops(
        decode("whole"), "whole", boxes, windows, lambda w: "crop", size, decode_crop=decode("crop")
    )
    assert seen == [("whole", "whole"), ("crop", "crop")] and nothing is None
    assert probs.dtype == np.float16 and probs.shape == (2, *size)
    expected = np.zeros((2, *size), np.float16)
    expected[0, 60:100, 130:180] = 0.25  # the window, cut at the image's bottom edge
    expected[0, 80:90, 150:160] = 0.75
    expected[1] = 0.25
    expected[1, 10:90, 10:190] = 0.75
    np.testing.assert_array_equal(probs, expected)
    np.testing.assert_array_equal(masks, expected == np.float16(0.75))
    np.testing.assert_array_equal(scores, [0.5, 0.5])


def test_crop_embeddings_are_cached_per_window(tiny_sam, tmp_path):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name="tiny")
    here, moved = View(window=Window(10, 20, 128)), View(window=Window(11, 20, 128))
    first = cache.embed([path, path], views=[here, None], progress=False)
    assert len(list(cache.folder.glob("*.pt"))) == 2  # the crop and the whole image
    again = cache.embed([path], views=[here], progress=False)
    assert len(list(cache.folder.glob("*.pt"))) == 2  # a hit
    torch.testing.assert_close(again[0].embedding, first[0].embedding)
    assert first[0].original_size == (128, 128) and first[1].original_size == (300, 400)
    cache.embed([path], views=[moved], progress=False)
    names = sorted(p.name for p in cache.folder.glob("*.pt"))
    assert len(names) == 3  # a moved crop is a new entry
    assert any(name.endswith("-crop10_20_128.pt") for name in names)
    assert any(name.endswith("-crop11_20_128.pt") for name in names)
    assert len(cache) == 1  # len() counts whole images only
