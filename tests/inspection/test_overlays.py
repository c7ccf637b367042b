"""``inspection.overlays``: how masks are filled and outlined, on hand-made inspections."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from common.text import text_size
from inspection.overlays import (
    MASK_ALPHA,
    OUTLINE,
    class_color,
    draw_overlay,
    fill_masks,
    label_rect,
    title_bar,
)
from inspection.result import Inspection


def inspection_of(masks: np.ndarray, classes: list[int]) -> Inspection:
    n, height, width = masks.shape
    return Inspection(
        path=Path("photo.png"),
        width=width,
        height=height,
        boxes=np.array([[0, 0, 1, 1]] * n, np.float32),
        scores=np.linspace(0.9, 0.5, n).astype(np.float32),  # highest first
        classes=np.array(classes),
        names=[f"class{c}" for c in classes],
        masks=masks,
        mask_scores=np.full(n, 0.9, np.float32),
        verdict="class0" if n else "good",
        score=0.9 if n else 0.0,
    )


def test_overlapping_masks_are_blended_once_in_the_best_instances_colour() -> None:
    image = np.full((20, 30, 3), 100, np.uint8)
    masks = np.zeros((3, 20, 30), bool)
    masks[0, 5:15, 5:15] = True  # the best
    masks[1, 5:15, 10:25] = True  # overlaps it and is overlapped by the third
    masks[2, 5:15, 10:25] = True
    filled = fill_masks(image, inspection_of(masks, [0, 1, 1]))
    expected = np.round(100 * (1 - MASK_ALPHA) + np.array(class_color(0)) * MASK_ALPHA).astype(np.uint8)
    assert np.array_equal(filled[10, 12], expected)  # not darker for three masks on it
    twice_blended = np.round(100 * (1 - MASK_ALPHA) + np.array(class_color(1)) * MASK_ALPHA).astype(np.uint8)
    assert np.array_equal(filled[10, 20], twice_blended)  # two masks of one class: one blend
    assert np.array_equal(filled[0, 0], [100, 100, 100])  # outside every mask: the photo
    assert np.array_equal(fill_masks(image, inspection_of(masks[:0], [])), image)


def test_the_fill_blends_like_float32_colours_without_a_float32_canvas_of_them() -> None:
    import tracemalloc

    image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8)
    masks = np.zeros((2, 300, 400), bool)
    masks[0, 10:20, 10:20] = masks[1, 15:30, 15:30] = True  # small: the blended pixels cost little
    inspection = inspection_of(masks, [0, 1])
    colors = np.zeros(image.shape, np.float32)  # the colours as a float32 canvas, as before
    colors[masks[1]], colors[masks[0]] = class_color(1), class_color(0)
    covered = masks.any(0)
    expected = image.copy()
    expected[covered] = np.round(image[covered] * (1 - MASK_ALPHA) + colors[covered] * MASK_ALPHA)
    tracemalloc.start()
    try:
        filled = fill_masks(image, inspection)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(filled, expected)  # the same pixels to the last bit
    # the canvas, uint8 colours and the covered mask; float32 colours were 4 bytes a channel more
    assert peak < 3 * image.nbytes


def test_a_mask_is_outlined_in_white_so_it_shows_on_a_stain_of_its_own_colour() -> None:
    image = np.zeros((40, 40, 3), np.uint8)
    image[:] = class_color(0)  # a red stain the size of the photo, class 0's colour
    masks = np.zeros((1, 40, 40), bool)
    masks[0, 10:30, 10:30] = True
    picture = draw_overlay(image, inspection_of(masks, [0]))
    photo = picture[picture.shape[0] - 40 :]
    assert tuple(photo[20, 10]) == OUTLINE and tuple(photo[10, 20]) == OUTLINE  # the mask's edge
    assert tuple(photo[20, 20]) == class_color(0)  # inside: the fill over the same colour
    assert tuple(photo[20, 3]) == class_color(0)  # outside: the photo


def test_holes_are_not_outlined() -> None:
    image = np.full((40, 40, 3), 90, np.uint8)
    masks = np.zeros((1, 40, 40), bool)
    masks[0, 10:30, 10:30] = True
    masks[0, 18:22, 18:22] = False  # a pinhole
    picture = draw_overlay(image, inspection_of(masks, [0]))
    photo = picture[picture.shape[0] - 40 :]
    assert tuple(photo[20, 10]) == OUTLINE  # the outer edge
    assert tuple(photo[20, 17]) != OUTLINE and tuple(photo[17, 20]) != OUTLINE  # around the hole: fill


def test_a_label_that_would_cover_a_better_ones_is_left_out(monkeypatch) -> None:
    import inspection.overlays as overlays

    drawn = []
    real = overlays._label
    monkeypatch.setattr(
        overlays, "_label", lambda canvas, text, *rest: (drawn.append(text), real(canvas, text, *rest))
    )
    masks = np.zeros((3, 200, 300), bool)
    found = inspection_of(masks, [0, 1, 0])  # scores 0.9, 0.7, 0.5
    boxes = np.array([[10, 50, 100, 150], [12, 52, 60, 90], [200, 50, 290, 150]], np.float32)
    draw_overlay(np.zeros((200, 300, 3), np.uint8), replace(found, boxes=boxes))
    assert drawn == ["class0 0.90", "class0 0.50"]  # the 0.7 box's label would sit on the 0.9 one's


def test_the_overlay_fills_the_masks_and_outlines_them_one_pixel_wide_on_a_small_photo() -> None:
    image = np.full((40, 40, 3), 90, np.uint8)
    masks = np.zeros((1, 40, 40), bool)
    masks[0, 10:30, 10:30] = True
    inspection = inspection_of(masks, [0])
    picture = draw_overlay(image, inspection)
    photo = picture[picture.shape[0] - 40 :]
    assert np.array_equal(photo[20, 20], fill_masks(image, inspection)[20, 20])  # inside: filled
    assert tuple(photo[20, 10]) == OUTLINE and tuple(photo[20, 11]) != OUTLINE  # 40 px wide: 1 px edge


def test_a_class_name_outside_ascii_is_drawn_as_itself_not_as_question_marks() -> None:
    # OpenCV's Hershey font drew 'γρατζουνιά 0.90' as '?????????? 0.90' (OpenCV 4: every non-ASCII byte)
    masks = np.zeros((1, 200, 300), bool)
    masks[0, 60:150, 20:200] = True
    found = replace(inspection_of(masks, [0]), boxes=np.array([[20, 60, 200, 150]], np.float32))

    def picture(name: str) -> np.ndarray:
        return draw_overlay(np.zeros((200, 300, 3), np.uint8), replace(found, names=[name]))

    name = "γρατζουνιά"
    for marks in ("?" * len(name), "?" * len(name.encode())):
        assert not np.array_equal(picture(name), picture(marks))


def test_a_label_sits_above_its_box_or_inside_it_at_the_photos_top_with_its_text_inside() -> None:
    x1, y1, x2, y2 = label_rect("class0 0.90", (20, 60), 1.0)
    assert (x1, y2) == (20, 60) and y1 < 60 and x2 > 20  # above the corner
    assert label_rect("class0 0.90", (20, 3), 1.0)[1::2] == (3, 3 + y2 - y1)  # no room above: below it
    for top in (60, 3):
        masks = np.zeros((1, 200, 300), bool)  # no mask: no white outline, the label's text is the only white
        found = replace(inspection_of(masks, [0]), boxes=np.array([[20, top, 200, 150]], np.float32))
        drawn = draw_overlay(np.zeros((200, 300, 3), np.uint8), found)
        photo = drawn[drawn.shape[0] - 200 :]
        rx1, ry1, rx2, ry2 = label_rect("class0 0.90", (20, top), 300 / 640)  # draw_overlay's scale
        white = np.argwhere((photo > 200).all(axis=2))
        assert len(white) and rx1 <= white[:, 1].min() and white[:, 1].max() <= rx2
        assert ry1 <= white[:, 0].min() and white[:, 0].max() <= ry2


@pytest.mark.parametrize(("n", "text"), [(1, "CLASS0 0.90 - 1 instance"), (2, "CLASS0 0.90 - 2 instances")])
def test_the_title_counts_its_instances_in_the_singular_and_plural(n, text) -> None:
    found = inspection_of(np.zeros((n, 50, 400), bool), [0] * n)
    bar = title_bar(found, 400, 1.0)
    ink = np.flatnonzero((bar > 200).all(axis=2).any(axis=0))
    (width, _), _ = text_size(text, 0.6, 2)
    assert abs((ink[-1] + 1 - ink[0]) - width) <= 3  # the text as long as the words drawn
