"""``common.text``: overlay text in DejaVu Sans, so class names outside ASCII draw as themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.fonts import dejavu_sans
from common.text import EM_PER_SCALE, put_text, text_size

#: OpenCV's Hershey font drew one ``?`` per character it lacks (OpenCV 5: Greek, CJK; 4: every non-ASCII
#: byte), so a name's picture is told apart from both question-mark strings.
NAMES = ["Kratzer_ä", "γρατζουνιά", "Царапина"]


def question_marks(name: str) -> list[str]:
    return ["?" * len(name), "?" * len(name.encode()), "".join(c if c.isascii() else "?" for c in name)]


def drawn(text: str, scale: float = 0.8, thickness: int = 1) -> np.ndarray:
    canvas = np.zeros((40, 260, 3), np.uint8)
    put_text(canvas, text, (4, 28), scale, (255, 255, 255), thickness)
    return canvas


@pytest.mark.parametrize("name", NAMES)
def test_a_name_outside_ascii_draws_its_own_glyphs_not_question_marks(name):
    picture = drawn(name)
    assert picture.any()
    for marks in question_marks(name):
        assert not np.array_equal(picture, drawn(marks)), marks


def test_ascii_text_draws_in_its_colour_inside_its_size_from_the_baseline():
    canvas = np.zeros((60, 200, 3), np.uint8)
    (width, height), baseline = text_size("Ag 0.91", 1.0)
    put_text(canvas, "Ag 0.91", (10, 40), 1.0, (0, 128, 255))
    ink = np.argwhere(canvas.any(axis=2))
    assert 40 - height <= ink[:, 0].min() and ink[:, 0].max() <= 40 + baseline  # 'g' below the baseline
    assert 10 <= ink[:, 1].min() and ink[:, 1].max() <= 10 + width
    assert (canvas[..., 0] == 0).all() and canvas[..., 2].max() == 255  # the colour, channels in order
    assert 20 <= height <= 30 and 4 <= baseline <= 9  # about Hershey simplex's 27 and 7 at scale 1


def test_the_size_grows_with_the_text_scale_and_thickness():
    (short, height), _ = text_size("spot", 0.5)
    (long, same_height), _ = text_size("spot 0.91", 0.5)
    assert short < long and height == same_height  # one height per font size, whatever the text
    assert text_size("spot", 1.0)[0][1] > height
    assert text_size("spot", 0.5, 2)[0][0] > short  # bold
    assert text_size("", 0.5)[0][0] == 0


def test_text_partly_or_wholly_outside_the_image_is_cut_off():
    canvas = np.zeros((20, 30, 3), np.uint8)
    put_text(canvas, "scratch 0.91", (-15, 10), 0.6, (255, 255, 255))  # left and top edges
    assert canvas.any()
    put_text(canvas, "scratch", (25, 35), 0.6, (255, 255, 255))  # bottom right
    before = canvas.copy()
    put_text(canvas, "scratch", (100, 100), 0.6, (255, 255, 255))  # outside
    put_text(canvas, "", (5, 10), 0.6, (255, 255, 255))
    assert np.array_equal(canvas, before)


# Ṏ reaches above the font's ascent, ʄ below its descent: drawn whole, not cut at the font's box
@pytest.mark.parametrize("text", ["Hj 0.91", "Ṏ ʄ"], ids=["ascii", "past-the-font-box"])
def test_text_is_pils_drawing_of_dejavu_sans_at_the_origin_blended_over_the_image(text):
    from PIL import Image, ImageDraw, ImageFont

    background = np.full((50, 120, 3), (40, 90, 200), np.uint8)  # not black: what is under the text shows
    canvas = background.copy()
    put_text(canvas, text, (7, 33), 1.0, (255, 255, 0))
    mask = Image.new("L", (120, 50))
    font = ImageFont.truetype(str(dejavu_sans()), EM_PER_SCALE)
    ImageDraw.Draw(mask).text((7, 33), text, fill=255, font=font, anchor="ls")
    alpha = np.asarray(mask, np.float32)[..., None] / 255
    expected = np.round(background * (1 - alpha) + np.array([255, 255, 0], np.float32) * alpha)
    assert np.array_equal(canvas, expected.astype(np.uint8))


@pytest.mark.parametrize(
    "origin", [(-9, 12), (30, 4), (-3, 45), (95, 47)], ids=["left", "top", "bottom", "right"]
)
def test_text_cut_off_at_an_edge_is_the_same_pixels_as_drawn_on_a_larger_image(origin):
    x, y = origin
    large = np.full((100, 160, 3), 60, np.uint8)
    put_text(large, "gjp scratch 0.91", (x + 30, y + 30), 0.6, (0, 255, 255), 2)
    canvas = np.full((50, 100, 3), 60, np.uint8)
    put_text(canvas, "gjp scratch 0.91", origin, 0.6, (0, 255, 255), 2)
    assert np.array_equal(canvas, large[30:80, 30:130])
    assert (canvas != 60).any()


@pytest.mark.parametrize("origin", [(-400, 10), (10, -100), (-400, -100), (10, 500)])
def test_text_wholly_outside_the_image_draws_nothing(origin):
    canvas = np.full((20, 30, 3), 7, np.uint8)
    put_text(canvas, "scratch", origin, 0.6, (255, 255, 255))
    assert (canvas == 7).all()


@pytest.fixture
def fallback(monkeypatch):
    """matplotlib's LastResort font as the system's only other font: it has a glyph for every character."""
    import matplotlib

    import common.text as text

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "LastResortHE-Regular.ttf"
    text._font_file.cache_clear()
    monkeypatch.setattr(text, "_fallback_files", lambda: (str(path),))
    yield
    text._font_file.cache_clear()


def test_a_character_dejavu_sans_lacks_is_drawn_in_a_system_font_that_has_it(fallback, monkeypatch):
    import common.text as text

    name = "划痕 0.91"
    with_fallback, latin = drawn(name), drawn("Kratzer_ä")
    (width, _), _ = text_size(name, 0.8)
    for marks in question_marks(name):
        assert not np.array_equal(with_fallback, drawn(marks))
    ink = np.flatnonzero(with_fallback.any(axis=(0, 2)))
    assert ink[-1] >= 4 + 0.9 * width  # each font's piece after the one before, not over it
    text._font_file.cache_clear()
    monkeypatch.setattr(text, "_fallback_files", lambda: ())  # no system font has it
    assert not np.array_equal(with_fallback, drawn(name))  # DejaVu Sans' missing-glyph boxes
    assert np.array_equal(latin, drawn("Kratzer_ä"))  # DejaVu Sans first: the other font had no say
    assert text_size(name, 0.8)[0][0] != width  # the width is the drawing font's
