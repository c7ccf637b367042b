"""Decoding image files with OpenCV: one-line errors naming the file, no native noise on stderr."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from common.image_files import decode_image_file
from tests.common.tiff_files import raw_tiff


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


def test_a_tiff_pil_reads_and_opencv_does_not_is_said_so_in_a_phrase(tmp_path: Path) -> None:
    # an RGB with 2 extra samples was called 'corrupt or not an image (>     'channels' is 5)': the last line
    # of OpenCV's check, which the photo's own viewer opens
    path = tmp_path / "five.tif"
    path.write_bytes(raw_tiff(5, width=4, height=4, extra=((338, 3, [0, 0]),)))
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
    path.write_bytes(raw_tiff(1, width=1_100_000, height=4))
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


#: what an uncompressed TIFF whose strip 3 (of 8 rows) holds 1 byte is refused with, after its path
_SHORT_STRIP = (
    "OpenCV may read wrong rows of it (uncompressed strip 3 holds 1 byte where its 8 rows need {}: "
)


@pytest.mark.parametrize("pages", [1, 2])
@pytest.mark.parametrize("kind", ["image", "mask"])
def test_a_tiff_whose_strip_holds_too_few_bytes_is_refused(
    tmp_path: Path, capfd, pages: int, kind: str
) -> None:
    # OpenCV decoded it without a word, the last strip's rows wrong: detection.evaluate's and predict's photo
    # checks, and every reader (inspection, segmentation, anomaly) took the photo; of a TIFF of two pages, the
    # first page's (the one OpenCV reads)
    path = tmp_path / "short.tif"
    path.write_bytes(raw_tiff(strip=8, pages=pages, counts=lambda sizes: [*sizes[:-1], 1]))
    with pytest.raises(UserError) as error:
        decode_image_file(path, cv2.IMREAD_UNCHANGED if kind == "mask" else cv2.IMREAD_COLOR, kind=kind)
    assert (
        str(error.value)
        == f"cannot decode {kind} {path}: {_SHORT_STRIP.format(768)}StripByteCounts too small)"
    )
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(("blocks", "needed"), [((), 384), ((1, 1), 768), ((4, 2), 320)])
def test_a_ycbcr_tiff_whose_strip_holds_too_few_bytes_of_its_blocks_is_refused(
    tmp_path: Path, blocks: tuple, needed: int
) -> None:
    # a strip holds its rows' subsampled blocks (2x2 luma samples and two chroma ones by default): OpenCV read
    # one short of them without a word, its rows wrong
    path = tmp_path / "short.tif"
    extra = ((530, 3, list(blocks)),) if blocks else ()
    path.write_bytes(raw_tiff(strip=8, colour=6, extra=extra, counts=lambda sizes: [needed] * 3 + [1]))
    assert cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR).shape == (32, 32, 3)
    with pytest.raises(UserError) as error:
        decode_image_file(path, cv2.IMREAD_COLOR)
    assert (
        str(error.value)
        == f"cannot decode image {path}: {_SHORT_STRIP.format(needed)}StripByteCounts too small)"
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: raw_tiff(strip=12),  # a last strip of 8 rows
        lambda: raw_tiff(strip=8, pages=2, counts=lambda sizes: sizes),
        lambda: raw_tiff(strip=8, colour=6, counts=lambda sizes: [size // 2 for size in sizes]),  # YCbCr 2x2
        lambda: raw_tiff(strip=8, colour=6, extra=((530, 3, [4, 2]),), counts=lambda sizes: [320] * 4),
    ],
    ids=["last-strip-of-fewer-rows", "two-pages", "ycbcr-subsampled", "ycbcr-subsampled-4x2"],
)
def test_a_tiff_whose_strips_hold_their_rows_decodes(tmp_path: Path, make) -> None:
    path = tmp_path / "whole.tif"
    path.write_bytes(make())
    assert decode_image_file(path, cv2.IMREAD_COLOR).shape == (32, 32, 3)


def test_a_tiff_with_a_strip_of_no_bytes_is_left_to_opencv_which_names_it(tmp_path: Path) -> None:
    path = tmp_path / "empty-strip.tif"
    path.write_bytes(raw_tiff(strip=8, counts=lambda sizes: [*sizes[:-1], 0]))
    with pytest.raises(UserError) as error:
        decode_image_file(path, cv2.IMREAD_COLOR)
    assert str(error.value) == (
        f"cannot decode image {path}: OpenCV cannot read it (TIFFFillStrip: Invalid strip byte count 0, "
        "strip 3)"
    )
