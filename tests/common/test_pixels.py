"""What a photo's pixels hold: 16-bit photos of 14 bits or fewer found and named, grey or colour."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from common.exif import (
    EXIF_ORIENTATION,
    exif_orientation,
)
from common.image_files import decode_image_file
from common.pixels import is_narrow_16bit, narrow_16bit_max, narrow_photo_warnings, photo_colour


@pytest.mark.parametrize(
    ("name", "pixels", "narrow"),
    [
        ("grey12.png", np.full((8, 8), 4095, np.uint16), True),  # a 12-bit camera's brightest
        ("colour12.png", np.full((8, 8, 3), 1000, np.uint16), True),
        ("grey12.tif", np.full((8, 8), 4095, np.uint16), True),
        ("grey13.png", np.full((8, 8), 4096, np.uint16), True),  # 13-bit data: grey levels 0-31
        ("grey14.png", np.full((8, 8), 16383, np.uint16), True),  # a 14-bit camera's brightest
        ("grey15.png", np.full((8, 8), 16384, np.uint16), False),  # uses the 15th bit: left alone
        ("grey8.png", np.full((8, 8), 255, np.uint8), False),
        ("grey8.jpg", np.full((8, 8), 255, np.uint8), False),
    ],
)
def test_narrow_16_bit_photos_are_found(tmp_path, name, pixels, narrow):
    path = tmp_path / name
    cv2.imwrite(str(path), pixels)
    assert is_narrow_16bit(path) is narrow
    if narrow:  # what every reader here sees
        assert decode_image_file(path, cv2.IMREAD_COLOR).max() <= 63


@pytest.mark.parametrize(
    ("name", "pixels", "narrow"),
    [
        ("grey12.TIF", np.full((8, 8), 4095, np.uint16), True),  # camera software writes upper case
        ("grey12.PNG", np.full((8, 8), 4095, np.uint16), True),
        ("grey12.tiff", np.full((8, 8), 4095, np.uint16), True),
        ("grey8.tif", np.full((8, 8), 255, np.uint8), False),  # 8-bit: read as stored
        (
            "rgba12.png",
            np.dstack([np.full((8, 8, 3), 1000, np.uint16), np.full((8, 8), 65535, np.uint16)]),
            True,
        ),
    ],
)
def test_narrow_16bit_suffixes_and_depths(tmp_path, name, pixels, narrow):
    path = tmp_path / name
    cv2.imwrite(str(path), pixels)
    assert is_narrow_16bit(path) is narrow


def test_the_narrow_photo_warning_names_the_first_photo_and_its_largest_value(tmp_path):
    photos = [tmp_path / f"{name}.png" for name in ("a", "b", "c")]
    cv2.imwrite(str(photos[0]), np.full((8, 8, 3), 200, np.uint8))
    cv2.imwrite(str(photos[1]), np.full((8, 8, 3), 4000, np.uint16))  # 12-bit data: grey level 15
    cv2.imwrite(str(photos[2]), np.full((8, 8), 1000, np.uint16))  # 10-bit data
    [line] = narrow_photo_warnings(photos)
    assert line.startswith(
        f"2 photos are 16-bit with every value below 4096 (12-bit camera data?), e.g. {photos[1]}"
    )
    assert f"e.g. {photos[1]} (values up to 4000): OpenCV and ultralytics read 16-bit photos" in line
    # only some photos are checked (the detection commands), spread over the list: the line says how many
    [line] = narrow_photo_warnings(photos, sample=2)  # a and c
    assert line.startswith("1 of the 2 photos checked across the 3 is 16-bit with every value below 1024")
    [line] = narrow_photo_warnings([*photos, photos[1]], sample=3)  # a, b and b: 'are'
    assert line.startswith("2 of the 3 photos checked across the 4 are 16-bit with every value below 4096")
    [line] = narrow_photo_warnings([photos[1], photos[0], photos[2]], sample=2)  # b and c: all of them
    assert line.startswith("the 2 photos checked across the 3 are 16-bit with every value below 4096")
    assert narrow_photo_warnings(photos[:1] + photos[2:], sample=1) == []  # the narrow one is not sampled


def _lots(folder: Path, *lots: tuple[int, int]) -> list[Path]:
    """Photos ``00.png``, ``01.png``, ... in lots of ``(count, value)``: 16-bit when value > 255."""
    photos, values = [], [value for count, value in lots for _ in range(count)]
    for index, value in enumerate(values):
        photos.append(folder / f"{index:02d}.png")
        cv2.imwrite(str(photos[-1]), np.full((4, 4), value, np.uint16 if value > 255 else np.uint8))
    return photos


def test_the_narrow_photo_check_reads_photos_spread_over_the_list(tmp_path):
    # it read the first 16: a list sorted by lot whose 12-bit lot came after 16 8-bit photos went unwarned
    photos = _lots(tmp_path, (16, 200), (4, 4000))
    [line] = narrow_photo_warnings(photos, sample=16)  # 0, 1, 2, 3, 5, ..., 15, 16, 17, 19
    assert line.startswith(
        f"3 of the 16 photos checked across the 20 are 16-bit with every value below 4096 (12-bit camera "
        f"data?), e.g. {photos[16]} "
    )
    # and a 12-bit lot first was 'all 16 of the first 16': the 8-bit lot after it is read too
    (tmp_path / "other").mkdir()
    photos = _lots(tmp_path / "other", (16, 4000), (4, 200))
    [line] = narrow_photo_warnings(photos, sample=16)
    assert line.startswith("13 of the 16 photos checked across the 20 are 16-bit")


def test_the_narrow_photo_check_passes_over_a_photo_that_does_not_read(tmp_path):
    # counted as checked, an undecodable photo made '1 of the first 3' of 2 read; the command names it
    photos = _lots(tmp_path, (5, 200))
    cv2.imwrite(str(photos[2]), np.full((4, 4), 4000, np.uint16))
    whole = cv2.imencode(".png", np.full((64, 64), 4000, np.uint16))[1].tobytes()
    photos[0].write_bytes(whole[:60])  # a 16-bit header, its pixels cut off
    [line] = narrow_photo_warnings(photos, sample=3)  # 0, 2 and 4
    assert line.startswith("1 of the 2 photos checked across the 5 is 16-bit with every value below 4096")
    photos[0].unlink()  # gone, and a PNG too short for its header: neither is counted
    (tmp_path / "short.png").write_bytes(whole[:20])
    [line] = narrow_photo_warnings([tmp_path / "short.png", *photos[1:]], sample=3)
    assert line.startswith("1 of the 2 photos checked across the 5 is")
    [line] = narrow_photo_warnings(photos, sample=3)
    assert line.startswith("1 of the 2 photos checked across the 5 is")
    assert narrow_photo_warnings(photos[:1], sample=3) == [] and not is_narrow_16bit(tmp_path / "short.png")


@pytest.mark.parametrize("name", ["gone.jpg", "empty.jpg", "text.bmp"])
def test_the_narrow_photo_check_counts_a_jpeg_it_could_not_read_as_unchecked(tmp_path, name):
    # a JPEG or BMP was counted as checked without being opened: a missing one made '2 of the 3 checked'
    photos = _lots(tmp_path, (5, 4000))
    photos[2] = tmp_path / name
    if name != "gone.jpg":
        photos[2].write_bytes(b"" if name == "empty.jpg" else b"not an image")
    [line] = narrow_photo_warnings(photos, sample=3)  # 0, 2 and 4
    assert line.startswith("the 2 photos checked across the 5 are 16-bit with every value below 4096")
    cv2.imwrite(str(tmp_path / "real.jpg"), np.full((4, 4, 3), 200, np.uint8))
    photos[2] = tmp_path / "real.jpg"  # read: 8 bits a channel, checked
    [line] = narrow_photo_warnings(photos, sample=3)
    assert line.startswith("2 of the 3 photos checked across the 5 are 16-bit")


@pytest.mark.parametrize("suffix", [".jpg", ".bmp", ".webp"])
def test_a_16bit_png_named_as_another_format_is_read_as_opencv_reads_it(tmp_path, suffix):
    # OpenCV picks its decoder by the first bytes: 12-bit data in a PNG named .jpg read nearly black,
    # unwarned, as the check went by the suffix
    path = tmp_path / f"camera{suffix}"
    path.write_bytes(cv2.imencode(".png", np.full((4, 4), 4000, np.uint16))[1].tobytes())
    assert decode_image_file(path, cv2.IMREAD_COLOR).max() <= 15
    assert narrow_16bit_max(path) == 4000


@pytest.mark.parametrize(
    ("top", "depth", "seen", "rescale"),
    [
        (1000, "below 1024 (10-bit camera data?)", "nearly black (grey levels 0-3)", "value // 4"),
        (4095, "below 4096 (12-bit camera data?)", "nearly black (grey levels 0-15)", "value // 16"),
        (16000, "below 16384 (14-bit camera data?)", "dark (grey levels 0-63)", "value // 64"),
        (200, "below 256 (8-bit camera data?)", "black (grey level 0)", "the values as they are"),
    ],
)
def test_the_narrow_photo_warning_gives_the_data_s_bit_depth_and_rescale(tmp_path, top, depth, seen, rescale):
    # it said 'below 4096 ... value // 16' for all: 10-bit data divided by 16 still read at grey levels 0-63
    photo = tmp_path / "camera.png"
    cv2.imwrite(str(photo), np.full((8, 8), top, np.uint16))
    assert narrow_photo_warnings([photo]) == [
        f"1 photo is 16-bit with every value {depth}, e.g. {photo} (values up to {top}): OpenCV and "
        f"ultralytics read 16-bit photos by dropping the low 8 bits, so every model sees them {seen}; save "
        f"them as 8-bit with their full range first ({rescale})"
    ]


def test_a_narrow_16bit_tiff_turned_by_an_exif_tag_is_found(tmp_path):
    # OpenCV's file-based imread (5.1) returns None for a TIFF turned a quarter (not square): 12-bit
    # camera data in one went without the warning, and was read nearly black
    path = tmp_path / "turned.tif"
    Image.fromarray(np.full((6, 8), 4000, np.uint16)).save(path, tiffinfo={EXIF_ORIENTATION: 6})
    assert exif_orientation(path) == 6
    assert narrow_16bit_max(path) == 4000


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        ((7, 7, 7), "grey"),  # a grey photo read as RGB
        ((7, 7, 9), "colour"),  # red and green equal, blue not: still colour
        ((7, 9, 7), "colour"),
        ((9, 7, 7), "colour"),
    ],
)
def test_photo_colour_is_grey_only_when_all_three_channels_agree(channels, expected) -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image[1, 2] = channels  # one pixel decides
    assert photo_colour(image) == expected
