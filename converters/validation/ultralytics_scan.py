"""ultralytics' scan of a YOLO split, as the check runs it: kept from re-saving images in the data
set, its log lines hidden and its bar on stderr, and what it dropped or read once told in its own words.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
from tqdm import tqdm

from common.errors import UserError, few, one_line
from common.exif import is_rotated
from common.image_files import decode_image_file
from common.ultralytics_scan import (
    images_left_as_they_are,  # noqa: F401 (converters.validation.yolo)
    resaved_images_note,
)
from converters.validation.split_check import in_data_set
from converters.yolo import SMALL_IMAGE_STEP


def resaved_note(resaved: list[Path], files: list[Path], data: dict) -> str | None:
    """A note naming the images of a split (``files``: :func:`split_image_files`) that ultralytics would
    re-save, ``resaved`` (:func:`images_left_as_they_are`), as the data set (``data``) holds them; None if
    none is."""
    mine = {os.path.abspath(path) for path in files}
    named = [in_data_set(path, data) for path in dict.fromkeys(resaved) if os.path.abspath(path) in mine]
    return resaved_images_note(named, by="the check", decodes=False)


def repeated_rows_note(messages: list[str], labels: list[dict], data: dict) -> str | None:
    """A note naming the label files of ``labels`` (ultralytics') that ultralytics' scan (``messages``) read
    a row of twice and kept once ("duplicate labels removed"); None if none.

    The scan said so among its log lines, which the check hides (:func:`quiet_ultralytics`): a YOLO set
    whose instance count fell short of COCO's said nothing of why. The converters write no such row
    (:func:`converters.yolo.label_rows`); a hand edit or another tool's export may.
    """
    from ultralytics.data.utils import img2label_paths

    repeats = [message for message in messages if message.endswith(" duplicate labels removed")]
    if not repeats:
        return None
    named, count = [], 0
    for label in labels:
        found = [message for message in repeats if f"{label['im_file']}: " in message]
        if found:
            count += int(found[0].rsplit(": ", 1)[1].split()[0])
            named.append(in_data_set(Path(img2label_paths([label["im_file"]])[0]), data))
    if not named:
        return None
    rows = "1 repeated row is" if count == 1 else f"{count} repeated rows are"
    return (
        f"ultralytics keeps one of identical label rows ('duplicate labels removed'), so {rows} not counted "
        f"as instances: {few(named)}"
    )


def yolo_dataset_with_bar(desc: str, *, progress: bool) -> type:
    """ultralytics' ``YOLODataset`` whose scan of a split (every image and label file checked: the long part
    of a YOLO row) ticks a bar on stderr, ``desc``, with ``progress``, as the COCO images' decoding does.

    ultralytics' own bar is hidden with its log lines (:func:`quiet_ultralytics`), so a large split was
    scanned without a word. The scan's messages, those lines, stay on the dataset as ``scan_messages``
    (:func:`repeated_rows_note`). The bar counts the scan's results as its loop reads them (its
    ``result_to_label``); a valid ``labels/<split>.cache`` read instead scans nothing, and shows none.
    """
    from ultralytics.data import YOLODataset

    class Scanned(YOLODataset):
        def cache_labels(self, path: Path = Path("./labels.cache")) -> dict:
            bar = tqdm(total=len(self.im_files), desc=desc, unit="img", disable=not progress, file=sys.stderr)
            with bar:
                self._scan_bar = bar
                return super().cache_labels(path)

        def result_to_label(self, result):
            self._scan_bar.update()
            return super().result_to_label(result)

        def _load_or_scan_cache(self, cache_path: Path, cache_hash: str) -> tuple[dict, bool]:
            cache, exists = super()._load_or_scan_cache(cache_path, cache_hash)
            self.scan_messages = list(cache.get("msgs", []))  # get_labels drops them once logged
            return cache, exists

    return Scanned


def turned_labelled(labels: list[dict], *, desc: str = "EXIF", progress: bool = False) -> list[Path]:
    """The images of ultralytics' ``labels`` that have instances and an EXIF orientation tag
    (:func:`common.exif.is_rotated`): ultralytics reads them turned, as OpenCV does. Every labelled one
    is opened for it, behind a bar on stderr (``desc``) with ``progress``, as the split's scan is."""
    labelled = [label["im_file"] for label in labels if len(label["cls"])]
    bar = tqdm(labelled, desc=desc, unit="img", disable=not progress, file=sys.stderr)
    return [Path(image) for image in bar if is_rotated(image)]


def dropped_images(files: list[Path], kept: set[str], reason: Callable[[Path], str]) -> str | None:
    """What ultralytics left out of a split, naming the first files and why; None when it kept all.

    ultralytics skips an unreadable image or a corrupt label with a warning and trains on the rest;
    here it is a failed check.

    Args:
        files: the split's images (:func:`split_image_files`).
        kept: the absolute paths of those ultralytics kept.
        reason: why ultralytics drops an image of ``files`` (:func:`dropped_reason`).
    """
    files = [path for path in files if path.exists() or not path.is_symlink()]  # a broken link: broken_links
    dropped = [path for path in files if os.path.abspath(path) not in kept]
    if not dropped:
        return None
    named = [f"{path.name} ({reason(path)})" for path in dropped[:3]]  # only these are checked again: few()
    return f"ultralytics dropped {len(dropped)} of {len(files)} images: {few(named + dropped[3:])}"


def dropped_reason(data: dict, task: str) -> Callable[[Path], str]:
    """Why ultralytics drops an image: its own check of an image and its label file, message and all.

    Its scan said so only among its log lines ("ignoring corrupt image/label: Label class 3 exceeds
    dataset class count 2 ..."); the check said "corrupt label" of a label file it never looked at.
    The label file is named where the label is at fault; an image OpenCV cannot decode is only called
    unreadable.

    Args:
        data: ultralytics' ``check_det_dataset`` dict of the data set (``names``, ``kpt_shape``).
        task: ``detect``, ``segment`` or ``pose``, as the split was loaded.
    """
    from ultralytics.data.utils import img2label_paths, verify_image_label

    nkpt, ndim = data.get("kpt_shape") or (0, 0)

    def reason(image: Path) -> str:
        # read as every command reads a photo: OpenCV's file-based imread (5.1) fails on a TIFF that an EXIF
        # tag turns a quarter, so such an image dropped for its label was called unreadable; and ultralytics'
        # check would then try to install a HEIF plugin for PIL: its words name that plugin, not the image
        try:
            decode_image_file(image, cv2.IMREAD_COLOR)
        except UserError:
            return "unreadable image"
        label = Path(img2label_paths([str(image)])[0])
        for checked in ("", label):  # the image alone first (no label file): which of the two is at fault
            args = (str(image), str(checked), "", task == "pose", len(data["names"]), nkpt, ndim, False)
            message = verify_image_label(args)[-1]
            if "ignoring corrupt image/label: " in message:
                why = one_line(message.partition("ignoring corrupt image/label: ")[2])
                where = f"label {in_data_set(label, data)}" if checked else "image"
                step = f"; {SMALL_IMAGE_STEP}" if not checked and "<10 pixels" in why else ""
                return f"{where}: {why.replace(str(image), image.name)}{step}"
        return "no reason given"  # kept on a second look: changed since the scan

    return reason


def _without_empty_labels_warning(record: logging.LogRecord) -> bool:
    # said by note_backgrounds_only instead, naming no .cache file; and where no label file of the split is
    # there ('No labels found in <split>/labels.cache'), by the missing label files' note or problem too;
    # its HEIF plugin asked for where PIL identifies no image (an empty file): the image is named unreadable
    message = record.getMessage()
    hidden = ("Labels are missing or empty", "No labels found in ", "['pi-heif'] not found")
    return not any(text in message for text in hidden)


@contextlib.contextmanager
def quiet_ultralytics():
    """Silences ultralytics' per-split scanning lines, its warnings of a split without labels (a note
    of :func:`note_backgrounds_only` says it, and one of the missing label files) and its request for a HEIF
    plugin where an image does not read (named as unreadable); its other warnings still show."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    LOGGER.addFilter(_without_empty_labels_warning)
    try:
        yield
    finally:
        LOGGER.removeFilter(_without_empty_labels_warning)
        LOGGER.setLevel(level)
