"""Decoding image files with OpenCV: one-line errors naming the file, no native noise on stderr."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from common.image_files import decode_image_file


def test_opencvs_reason_for_not_decoding_is_kept_whole(tmp_path: Path) -> None:
    # the message kept 120 characters of OpenCV's log line, whose head ('[ WARN:0@0.068] global
    # grfmt_tiff.cpp:811 readData ') took most of them: 'can not handle images with 32...'
    path = tmp_path / "float.tif"
    Image.fromarray(np.zeros((4, 4), np.float32)).save(path)
    with pytest.raises(UserError) as error:
        decode_image_file(path, cv2.IMREAD_COLOR)
    assert str(error.value) == (
        f"cannot decode image {path}: corrupt or not an image "
        "(OpenCV TIFF: TIFFRGBAImageOK: Sorry, can not handle images with 32-bit samples)"
    )


def test_corrupt_png_is_one_line_and_libpng_prints_nothing(tmp_path: Path, capfd) -> None:
    mask = np.zeros((64, 64), np.uint8)
    mask[10:20, 10:20] = 255
    data = bytearray(cv2.imencode(".png", mask)[1].tobytes())
    data[60] ^= 0xFF  # inside the compressed pixel data (IDAT)
    data[70] ^= 0xFF
    path = tmp_path / "000_mask.png"
    path.write_bytes(bytes(data))
    with pytest.raises(UserError) as error:
        decode_image_file(path, cv2.IMREAD_UNCHANGED, kind="mask")
    message = str(error.value)
    assert message.startswith(f"cannot decode mask {path}: corrupt or not an image") and "\n" not in message
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_empty_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(UserError, match="the file is empty"):
        decode_image_file(path, cv2.IMREAD_COLOR)
