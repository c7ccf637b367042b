"""ultralytics' scan of a split's images, kept from re-saving a JPEG in the data set it reads."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from ultralytics.data import utils
from ultralytics.data.utils import check_image
from ultralytics.utils import LOGGER

from common.ultralytics_scan import images_left_as_they_are, resaved_images_note


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _jpeg_without_its_end_marker(tmp_path: Path) -> tuple[Path, bytes]:
    image = tmp_path / "images" / "a.jpg"
    image.parent.mkdir()
    grey = np.full((16, 16, 3), 128, np.uint8)
    content = cv2.imencode(".jpg", grey)[1].tobytes() + b"\0\0"  # two bytes after the end marker
    image.write_bytes(content)
    return image, content


def test_the_scan_leaves_the_jpeg_and_drops_its_line_saying_it_was_restored(tmp_path: Path) -> None:
    # the scan's line said 'corrupt JPEG restored and saved' of an image left as it was; its other lines stay
    image, content = _jpeg_without_its_end_marker(tmp_path)
    kept, level = _Kept(), LOGGER.level
    LOGGER.addHandler(kept)
    LOGGER.setLevel(logging.INFO)
    try:
        resaved: list[Path] = []
        with images_left_as_they_are(resaved):
            message = check_image(str(image))[0]
            LOGGER.info(f"train: {message}\ntrain: b.jpg: 1 duplicate labels removed")
            LOGGER.info(f"val: {message}")
    finally:
        LOGGER.removeHandler(kept)
        LOGGER.setLevel(level)
    assert image.read_bytes() == content and resaved == [image]
    assert kept.messages == ["train: b.jpg: 1 duplicate labels removed"]


def test_the_note_names_each_image_once_below_the_data_sets_folder(tmp_path: Path) -> None:
    images = [tmp_path / "images" / "val" / "a.jpg", Path("/elsewhere/b.jpg")]
    assert resaved_images_note([], tmp_path, by="training") is None
    assert resaved_images_note([*images, images[0]], tmp_path, by="the evaluation") == (
        "2 JPEG images do not end in their end marker (images/val/a.jpg, /elsewhere/b.jpg): ultralytics "
        "re-saves them in place when it reads them (re-encoded; a link to a photo becomes a copy); the "
        "evaluation left them as they are and reads them as they decode"
    )
    assert resaved_images_note(["val/a.jpg", "b.jpg"], by="the check", decodes=False) == (  # names as given
        "2 JPEG images do not end in their end marker (val/a.jpg, b.jpg): ultralytics re-saves them in place "
        "when it reads them (re-encoded; a link to a photo becomes a copy); the check left them as they are"
    )


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch):
    """ultralytics' log lines, as a handler of its LOGGER takes them (no filter left by another test's
    Ctrl-C)."""
    kept, level = _Kept(), LOGGER.level
    monkeypatch.setattr(LOGGER, "filters", [])
    monkeypatch.setattr(LOGGER, "handlers", [kept])
    LOGGER.setLevel(logging.INFO)
    yield kept
    LOGGER.setLevel(level)


def test_an_ultralytics_without_the_helper_says_it_resaved_the_jpeg(tmp_path, monkeypatch, logged) -> None:
    # such an ultralytics re-saves the JPEG in place: its line saying so was dropped, and no note said it
    monkeypatch.delattr(utils, "_replace_image")
    line, resaved = f"train: {tmp_path / 'a.jpg'}: corrupt JPEG restored and saved", []
    with images_left_as_they_are(resaved):
        LOGGER.info(line)
    assert logged.messages == [line] and resaved == []


def test_after_a_ctrl_c_a_later_scan_leaves_the_jpeg_silently_in_no_old_list(tmp_path, monkeypatch, logged):
    # the helper stays held off after a Ctrl-C (a scan thread may still run), but the line's filter went: a
    # notebook's next scan said 'corrupt JPEG restored and saved' of a JPEG it left, and added it to the
    # stopped run's list
    image, content = _jpeg_without_its_end_marker(tmp_path)
    monkeypatch.setattr(utils, "_replace_image", utils._replace_image)  # put back after the test
    stopped: list[Path] = []
    with pytest.raises(KeyboardInterrupt), images_left_as_they_are(stopped):
        raise KeyboardInterrupt
    LOGGER.info(f"train: {check_image(str(image))[0]}")
    later: list[Path] = []
    with images_left_as_they_are(later):
        check_image(str(image))
    assert image.read_bytes() == content and logged.messages == [] and stopped == [] and later == [image]
