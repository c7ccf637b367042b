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
    assert str(error.value) == (  # PIL reads it: not called 'corrupt or not an image'
        f"cannot decode image {path}: OpenCV cannot read it "
        "(OpenCV TIFF: TIFFRGBAImageOK: Sorry, can not handle images with 32-bit samples)"
    )


def _tiff(samples: int, *, width: int = 4, extra: tuple = ()) -> bytes:
    """An uncompressed little-endian TIFF, 4 rows of ``width`` pixels of ``samples`` 8-bit samples in one
    strip, with ``extra`` tags ((tag, values), short)."""
    import struct

    pixels = bytes(4 * width * samples)
    size = [(256, 4, [width]), (257, 4, [4]), (273, 4, [8]), (278, 4, [4]), (279, 4, [len(pixels)])]
    colour = 2 if samples > 2 else 1
    shorts = [(258, [8] * samples), (259, [1]), (262, [colour]), (277, [samples]), (284, [1])]
    entries = sorted(size + [(tag, 3, values) for tag, values in [*shorts, *extra]])
    out, places = bytearray(b"II*\0\0\0\0\0") + pixels, []
    for _, kind, values in entries:  # over 4 bytes: after the pixels, the entry says where
        data = struct.pack(f"<{len(values)}{'H' if kind == 3 else 'I'}", *values)
        places.append(struct.pack("<I", len(out)) if len(data) > 4 else data.ljust(4, b"\0"))
        out += data if len(data) > 4 else b""
    struct.pack_into("<I", out, 4, len(out))
    out += struct.pack("<H", len(entries))
    for (tag, kind, values), place in zip(entries, places, strict=True):
        out += struct.pack("<HHI", tag, kind, len(values)) + place
    return bytes(out + b"\0\0\0\0")


def test_a_tiff_pil_reads_and_opencv_does_not_is_said_so_in_a_phrase(tmp_path: Path) -> None:
    # an RGB with 2 extra samples was called 'corrupt or not an image (>     'channels' is 5)': the last line
    # of OpenCV's check, which the photo's own viewer opens
    path = tmp_path / "five.tif"
    path.write_bytes(_tiff(5, extra=((338, [0, 0]),)))
    assert Image.open(path).size == (4, 4)
    with pytest.raises(UserError) as error:
        decode_image_file(path, cv2.IMREAD_COLOR)
    assert str(error.value) == (
        f"cannot decode image {path}: OpenCV cannot read it (Unsupported number of channels: channels is 5; "
        "OpenCV needs channels >= 1 && channels <= 4)"
    )


def test_an_image_wider_than_opencv_reads_is_one_line_naming_its_limit(tmp_path: Path, capfd) -> None:
    # cv2.imdecode raises for a width over its maximum, not returns None: a cv2.error traceback
    path = tmp_path / "wide.tif"
    path.write_bytes(_tiff(1, width=1_100_000))
    with pytest.raises(UserError) as error:
        decode_image_file(path, cv2.IMREAD_COLOR)
    message = str(error.value)
    assert message.startswith(f"cannot decode image {path}: OpenCV cannot read it (wider than its limit of ")
    assert message.endswith(" pixels; the environment variable OPENCV_IO_MAX_IMAGE_WIDTH raises it)")
    assert capfd.readouterr().err == ""


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
