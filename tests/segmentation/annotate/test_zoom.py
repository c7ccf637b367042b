"""Zoomed crops on the page: which crop a prompt gets, reuse of encoded crops, one encoder run per crop."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.annotate.zoom import CropEmbeddings, holds_box, prompt_window
from segmentation.crops import CropRule, Window
from segmentation.embeddings import EmbeddingCache

RULE = CropRule(max_fraction=0.25, margin=1.0, min_side=64)
SIZE = (300, 640)  # (H, W): non-square


@pytest.mark.parametrize(
    "box, points, expected",
    [
        (None, [[100, 100]], None),  # points alone: no size to zoom to
        ([10, 10, 300, 200], None, None),  # a large box: the whole photo
        ([100, 100, 120, 116], None, Window(78, 76, 64)),  # the rule's window
        ([100, 100, 120, 116], [[110, 108], [140, 139]], Window(78, 76, 64)),  # points inside it
        ([100, 100, 120, 116], [[110, 108], [300, 20]], None),  # a point outside: the whole photo
        ([0, 284, 16, 300], None, Window(0, 236, 64)),  # bottom-left corner: moved inside
    ],
    ids=["points-only", "large-box", "small-box", "points-inside", "point-outside", "corner"],
)
def test_the_crop_of_a_prompt(box, points, expected):
    points = None if points is None else np.asarray(points, float)[None]
    assert prompt_window(RULE, None if box is None else np.asarray(box, float), points, SIZE) == expected


def test_an_encoded_crop_serves_a_box_redrawn_around_the_same_defect():
    first = prompt_window(RULE, np.array([100, 100, 110, 108.0]), None, SIZE)
    assert first == Window(73, 72, 64)
    moved = np.array([104, 98, 116, 109.0])  # the same defect, drawn again a little off
    assert RULE.window(moved, SIZE) != first  # the rule alone would encode a new crop
    assert prompt_window(RULE, moved, None, SIZE, [first]) == first
    far = np.array([150, 100, 160, 108.0])  # its margin is not inside the first crop
    assert not holds_box(first, far, SIZE, margin=1.0)
    assert prompt_window(RULE, far, None, SIZE, [first]) == RULE.window(far, SIZE)
    big = Window(40, 40, 200)  # holds the box but zooms far less than the rule asks: not reused
    assert prompt_window(RULE, moved, None, SIZE, [big]) == RULE.window(moved, SIZE)
    # Of two that fit, the one nearer the rule's zoom; a point outside it picks the other.
    wider = Window(70, 70, 80)
    assert prompt_window(RULE, moved, None, SIZE, [wider, first]) == first
    point = np.array([[[146.0, 120.0]]])
    assert prompt_window(RULE, moved, point, SIZE, [first, wider]) == wider


def test_a_larger_box_redrawn_a_few_pixels_off_reuses_its_crop():
    """Over a third of ``min_side`` the rule's window is exactly the box and its margin: no slack."""
    first = RULE.window(np.array([200, 100, 240, 130.0]), SIZE)
    assert first == Window(160, 55, 120)
    redrawn = np.array([203, 97, 245, 127.0])
    assert RULE.window(redrawn, SIZE) != first and not holds_box(first, redrawn, SIZE, margin=1.0)
    assert prompt_window(RULE, redrawn, None, SIZE, [first]) == first
    elsewhere = np.array([230, 100, 270, 130.0])  # 30 px off: less than half the margin is left
    assert prompt_window(RULE, elsewhere, None, SIZE, [first]) == RULE.window(elsewhere, SIZE)


def test_the_rules_margin_is_cut_at_the_photos_edges():
    corner = Window(0, 236, 64)  # the rule's window of the box below
    box = np.array([0, 284, 16, 300.0])
    assert holds_box(corner, box, SIZE, margin=1.0)  # no context asked for beyond the edges
    assert not holds_box(Window(0, 235, 64), box, SIZE, margin=1.0)  # the photo's last row cut off
    assert not holds_box(corner, box, SIZE, margin=4.0)  # 64 px of context on the right do not fit


def test_a_crop_is_encoded_once_then_read_from_memory_or_the_disk_cache(tmp_path, tiny_sam, photos):
    folder, _ = photos
    path = folder / "wide.png"
    calls = []
    hook = tiny_sam.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        cache = EmbeddingCache(tmp_path / "emb", tiny_sam, model_name="tiny")
        crops = CropEmbeddings(RULE, cache, keep=1)
        window = crops.window(path, np.array([100, 100, 110, 108.0]), None, SIZE)
        first = crops.embedding(path, window)
        assert len(calls) == 1 and first.original_size == (64, 64)
        assert crops.embedding(path, window) is first and len(calls) == 1  # memory
        assert crops.window(path, np.array([104, 98, 116, 109.0]), None, SIZE) == window  # reused
        other = Window(300, 100, 64)
        crops.embedding(path, other)  # evicts the first from memory (keep=1)
        assert len(calls) == 2
        again = crops.embedding(path, window)  # from the disk cache: no encoder run
        assert len(calls) == 2 and np.array_equal(again.embedding, first.embedding)
        fresh = CropEmbeddings(RULE, cache)  # a restarted page: the disk cache still has it
        fresh.embedding(path, window)
        assert len(calls) == 2
        assert sorted(p.name.split("-", 1)[1] for p in cache.folder.glob("*-crop*.pt")) == [
            "crop300_100_64.pt",
            "crop73_72_64.pt",
        ]
    finally:
        hook.remove()


@pytest.mark.parametrize(
    "points, expected",
    [([[142, 100]], Window(78, 76, 64)), ([[110, 140]], Window(78, 76, 64)), ([[110, 200]], None)],
    ids=["right-edge", "bottom-edge", "below"],
)
def test_points_on_the_crops_edges_are_inside_and_below_it_outside(points, expected):
    box = np.array([100, 100, 120, 116.0])
    assert prompt_window(RULE, box, np.asarray(points, float)[None], SIZE) == expected


def test_a_crop_much_smaller_than_the_rules_is_not_reused():
    box = np.array([100, 100, 110, 108.0])
    assert holds_box(Window(90, 90, 30), box, SIZE, margin=0.5)
    assert prompt_window(RULE, box, None, SIZE, [Window(90, 90, 30)]) == Window(73, 72, 64)


def test_of_two_crops_as_near_the_rules_zoom_the_latest_is_reused():
    box = np.array([100, 100, 110, 108.0])
    older, newer = Window(70, 70, 64), Window(80, 80, 64)
    assert prompt_window(RULE, box, None, SIZE, [older, newer]) == newer
    assert prompt_window(RULE, box, None, SIZE, [newer, older]) == older


def test_only_keep_crop_embeddings_stay_in_memory(tmp_path, tiny_sam, photos):
    path = photos[0] / "wide.png"
    crops = CropEmbeddings(RULE, EmbeddingCache(tmp_path / "emb", tiny_sam, model_name="tiny"), keep=1)
    first = crops.embedding(path, Window(0, 0, 64))
    crops.embedding(path, Window(300, 100, 64))
    again = crops.embedding(path, Window(0, 0, 64))
    assert again is not first and np.array_equal(again.embedding, first.embedding)
