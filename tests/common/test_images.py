"""Reading image files: real decoding, one-line errors, no native noise on stderr."""

from __future__ import annotations

import io
import re
import struct
import threading
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import common.images as images_module
from common.errors import UserError
from common.images import (
    EXIF_ORIENTATION,
    check_mask_upright,
    decode_image_file,
    decode_photos,
    displayed_size,
    exif_orientation,
    has_alpha,
    header_size_and_orientation,
    image_size,
    image_size_and_orientation,
    is_narrow_16bit,
    is_rotated,
    mask_size,
    narrow_16bit_max,
    narrow_photo_warnings,
    photo_colour,
    read_photos,
    tiff_orientation,
)


def jpeg_bytes(width: int = 256, height: int = 192) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_image_size_reads_width_then_height(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(256, 192))
    assert image_size(path) == (256, 192)


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (7, 40)])
def test_a_jpeg_under_8_px_on_a_side_is_read(tmp_path: Path, size) -> None:
    # the check decodes a JPEG at 1/8 of its size: a side under 8 px asked PIL for 0 and it divided by it
    # (ZeroDivisionError: a traceback from inspection.predict on a 3x2 photo)
    path = tmp_path / "small.jpg"
    path.write_bytes(jpeg_bytes(*size))
    assert image_size(path) == size and image_size_and_orientation(path) == (*size, 1)


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    data = jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 3])  # the header survives: PIL's verify() passed this
    with pytest.raises(
        UserError, match=r"cannot read image .*cut\.jpg: corrupt or not an image \(.*truncated"
    ):
        image_size(path)


def test_decode_photos_names_every_photo_that_does_not_decode(tmp_path: Path) -> None:
    # the commands stopped at the first photo that did not decode: three bad photos took three runs to find
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes(64, 48))
    assert decode_photos([good, good]) == [(64, 48), (64, 48)]
    cut = tmp_path / "a_cut.jpg"
    cut.write_bytes(jpeg_bytes()[:2000])
    bad = [cut] + [tmp_path / f"{name}_empty.png" for name in "bcde"]
    for path in bad[1:]:
        path.write_bytes(b"")
    with pytest.raises(UserError) as error:
        decode_photos([good, *bad])
    message = str(error.value)
    assert message.startswith(f"cannot read 5 photos: {cut} (corrupt or not an image (")
    assert message.endswith(f"{bad[1]} (the file is empty), {bad[2]} (the file is empty) and 2 more"), message
    assert "\n" not in message


def test_decode_photos_names_the_photos_a_header_pass_found_with_its_own_in_order(tmp_path: Path) -> None:
    # a header pass (a run's size, a split's) stopped at the first photo, before the decode pass named all
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes(64, 48))
    cut = tmp_path / "b_cut.jpg"
    cut.write_bytes(jpeg_bytes()[:2000])
    empty, gone = tmp_path / "a_empty.png", tmp_path / "c_gone.png"
    empty.write_bytes(b"")
    unread: dict[Path, str] = {}
    photos = [good, empty, cut, gone]
    sizes = read_photos(photos, partial(image_size, decode=False), unread)  # a header pass: the cut one reads
    assert sizes == [(64, 48), None, (256, 192), None]
    assert list(unread) == [empty, gone]
    empty.unlink()  # not read again: its header pass's line stands
    given = {**unread, gone: f"image listed in x.json is missing: {gone}"}
    with pytest.raises(UserError) as error:
        decode_photos(photos, unread=given)
    message = str(error.value)
    assert message.startswith(f"cannot read 3 photos: {empty} (the file is empty), {cut} (corrupt or not an")
    assert message.endswith(f"), {gone} (image listed in x.json is missing)"), message
    assert list(given) == [empty, gone]  # left as it was
    with pytest.raises(UserError) as error:
        decode_photos([good, gone], unread={gone: "cannot read image c_gone.png: no such file"})
    assert str(error.value) == "cannot read image c_gone.png: no such file"  # one photo: its own line


def test_decode_photos_keeps_the_line_of_a_single_photo_that_does_not_decode(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes(64, 48))
    with pytest.raises(UserError) as error:
        decode_photos([good, empty])
    assert str(error.value) == f"cannot read image {empty}: the file is empty"


def test_header_only_size_skips_the_decode_but_not_the_checks(tmp_path: Path) -> None:
    data = jpeg_bytes(256, 192)
    cut, junk = tmp_path / "cut.jpg", tmp_path / "junk.png"
    cut.write_bytes(data[: len(data) // 3])
    junk.write_bytes(b"not a png")
    assert image_size(cut, decode=False) == (256, 192)  # the header is whole: only decoding finds the cut
    with pytest.raises(UserError, match=r"cannot read image .*junk\.png: corrupt or not an image"):
        image_size(junk, decode=False)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not a png", "corrupt or not an image (PIL cannot identify it)"),
        (b"", ": the file is empty"),  # was 'corrupt or not an image', as if of a wrong format
        (None, "no such file"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content, expected: str) -> None:
    path = tmp_path / "broken.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError) as error:
        image_size(path)
    assert expected in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_whole_image_pil_cannot_read_is_not_called_corrupt(tmp_path: Path) -> None:
    # OpenCV writes 3-channel float32 TIFFs that PIL cannot identify: 'corrupt or not an image' sent the
    # user looking for damage in a whole file
    path = tmp_path / "float.tif"
    cv2.imwrite(str(path), np.zeros((4, 5, 3), np.float32))
    with pytest.raises(UserError) as error:
        image_size(path)
    assert str(error.value) == (
        f"cannot read image {path}: float32, 3-channel pixels, which PIL cannot read (OpenCV can): "
        "save it with 8 or 16 bits per channel"
    )


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


def test_non_image_after_ultralytics_patched_pil_prints_nothing(tmp_path: Path, capfd) -> None:
    import ultralytics.utils.patches  # noqa: F401  (patches Image.open to try pi_heif on unknown files)

    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image .*broken.png: corrupt or not an image"):
        image_size(path)
    out, err = capfd.readouterr()
    assert "pi-heif" not in out + err and "requirement" not in out + err


def test_decompression_bomb_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)  # 90,000 px is over twice the limit
    limit = r"big.png: over PIL's decompression-bomb limit of 20000 pixels \(downscale"
    with pytest.raises(UserError, match=limit):
        image_size(path)  # PIL refuses over twice MAX_IMAGE_PIXELS: the limit said is that one


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


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [(None, 1), (1, 1), (6, 6), (3, 3), (8, 8), (0, 1), (9, 1)],  # 0, 9: invalid, upright to OpenCV
)
def test_size_and_orientation_come_from_one_read(tmp_path, orientation, expected):
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.new("RGB", (40, 30)).save(path, exif=exif)
    if orientation is not None:
        with Image.open(path) as image:
            assert image.getexif()[0x0112] == orientation  # the tag is in the file as written
    assert image_size_and_orientation(path) == (40, 30, expected)  # stored size, tag as written
    assert exif_orientation(path) == expected and is_rotated(path) == (expected != 1)


def write_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    return path


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_displayed_size_is_opencvs_from_the_header(tmp_path, suffix):
    turned, upright = tmp_path / f"turned{suffix}", tmp_path / f"upright{suffix}"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 30)).save(turned, exif=exif)
    Image.new("RGB", (40, 30)).save(upright)
    # decoded as every reader here decodes (OpenCV 5.1's imread refuses a TIFF with the tag)
    assert displayed_size(turned) == (30, 40) == decode_image_file(turned, cv2.IMREAD_COLOR).shape[1::-1]
    assert displayed_size(upright) == (40, 30)
    assert image_size_and_orientation(turned) == (40, 30, 6)  # stored size and tag, TIFF's too


@pytest.mark.parametrize("decode", [True, False])
@pytest.mark.parametrize("suffix", [".tif", ".jpg", ".png"])
def test_image_size_is_the_stored_size_of_a_turned_file_in_every_format(tmp_path, suffix, decode):
    # PIL's TIFF reader gives the turned size: image_size said 30x40 of a tagged TIFF, 40x30 of a JPEG or
    # PNG, as header_size_and_orientation says of all three
    path = tmp_path / f"turned{suffix}"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    Image.new("L", (40, 30)).save(path, exif=exif)
    assert image_size(path, decode=decode) == (40, 30) == header_size_and_orientation(path)[:2]
    assert displayed_size(path) == (30, 40)  # what OpenCV's photo readers see


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("suffix", [".tif", ".jpg", ".png", ".webp"])
def test_mask_size_is_that_of_the_array_the_mask_readers_decode(tmp_path, suffix, orientation):
    # OpenCV's TIFF decoder applies the tag even with IMREAD_UNCHANGED, its others do not: anomaly's mask
    # size check compares this with the photo's size, as read_mask will
    path = tmp_path / f"mask{suffix}"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.new("L", (40, 30)).save(path, exif=exif)
    assert mask_size(path) == decode_image_file(path, cv2.IMREAD_UNCHANGED).shape[1::-1]


@pytest.mark.parametrize("orientation", [1, 2, 3, 6, 8])
@pytest.mark.parametrize("suffix", [".tif", ".jpg", ".png", ".webp"])
def test_a_mask_is_refused_where_opencv_turns_it(tmp_path, suffix, orientation):
    # OpenCV's TIFF decoder applies the tag to a mask (mirrors it too), its others do not: a square
    # TIFF mask passed every size check and was read turned under its upright photo
    path = tmp_path / f"mask{suffix}"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    pixels = np.zeros((32, 32), np.uint8)
    pixels[:8, :4] = 255  # a corner no turn or mirror keeps
    Image.fromarray(pixels).save(path, exif=exif, quality=100, lossless=True)
    decoded = decode_image_file(path, cv2.IMREAD_UNCHANGED)
    turned = not np.array_equal((decoded if decoded.ndim == 2 else decoded[..., 0]) > 127, pixels > 0)
    assert turned == (suffix == ".tif" and orientation != 1)
    if not turned:
        check_mask_upright(path)
        return
    tag = rf"^mask {re.escape(str(path))} has an EXIF orientation tag \({orientation}\)"
    with pytest.raises(UserError, match=tag):
        check_mask_upright(path)


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


@pytest.mark.parametrize("orientation", [5, 7])  # transposes: width and height swap as for 6 and 8
def test_displayed_size_of_transposed_photos(tmp_path, orientation):
    path = tmp_path / "t.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (40, 30)).save(path, exif=exif)
    assert displayed_size(path) == (30, 40) == cv2.imread(str(path)).shape[1::-1]


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


def test_the_orientation_of_a_png_without_exif_is_read_without_decoding_it(tmp_path, monkeypatch):
    from PIL import PngImagePlugin

    path = write_png(tmp_path / "plain.png")

    def refuse(image):
        raise AssertionError("decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", refuse)
    assert exif_orientation(path) == 1 and not is_rotated(path)


def write_late_exif_png(path: Path, orientation: int) -> Path:
    """A PNG whose eXIf chunk comes after its pixels, where PIL finds it only by decoding."""
    import struct

    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (40, 30)).save(path, exif=exif)
    data, position, chunks = path.read_bytes(), 8, []
    while position < len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        chunks.append(data[position : position + 12 + length])
        position += 12 + length
    late = next(chunk for chunk in chunks if chunk[4:8] == b"eXIf")
    rest = [chunk for chunk in chunks if chunk is not late]
    path.write_bytes(data[:8] + b"".join(rest[:-1]) + late + rest[-1])  # eXIf between IDAT and IEND
    return path


def test_exif_orientation_finds_a_pngs_exif_after_its_pixels(tmp_path):
    path = write_late_exif_png(tmp_path / "late.png", 6)
    assert exif_orientation(path) == 6 and is_rotated(path)


def test_displayed_size_finds_a_pngs_exif_after_its_pixels(tmp_path):
    path = write_late_exif_png(tmp_path / "late.png", 6)
    with Image.open(path) as image:
        assert "exif" not in image.info  # PIL sees it only by decoding
    assert displayed_size(path) == (30, 40) == cv2.imread(str(path)).shape[1::-1]


def test_a_png_over_pils_pixel_limit_counts_as_upright(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "huge.png"  # a header claiming 20000 x 20000 pixels, none stored
    header = struct.pack(">IIBBBBB", 20_000, 20_000, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    assert exif_orientation(path) == 1 and not is_rotated(path)


def test_a_narrow_16bit_tiff_turned_by_an_exif_tag_is_found(tmp_path):
    # OpenCV's file-based imread (5.1) returns None for a TIFF turned a quarter (not square): 12-bit
    # camera data in one went without the warning, and was read nearly black
    path = tmp_path / "turned.tif"
    Image.fromarray(np.full((6, 8), 4000, np.uint16)).save(path, tiffinfo={EXIF_ORIENTATION: 6})
    assert exif_orientation(path) == 6
    assert narrow_16bit_max(path) == 4000


@pytest.mark.parametrize(
    ("mode", "alpha"),
    [("RGB", False), ("L", False), ("RGBA", True), ("LA", True), ("P", False), ("P+tRNS", True)],
)
def test_has_alpha_reads_the_header(tmp_path, mode, alpha):
    path = tmp_path / "photo.png"
    image = Image.new(mode.split("+")[0], (4, 4))
    image.save(path, **({"transparency": 0} if mode.endswith("tRNS") else {}))
    assert has_alpha(path) is alpha
    assert has_alpha(tmp_path / "missing.png") is False


def float_rgb_tiff(path, pixels: np.ndarray, orientation: int) -> None:
    """Writes ``pixels`` ``(H, W, 3)`` as an uncompressed little-endian float32 TIFF with an orientation tag,
    which PIL cannot open (it has no mode for it) and OpenCV reads."""
    height, width, _ = pixels.shape
    data = pixels.astype("<f4").tobytes()
    tags = [(256, width), (257, height), (258, None), (259, 1), (262, 2), (273, None), (274, orientation)]
    tags += [(277, 3), (278, height), (279, len(data)), (284, 1), (339, None)]
    extra = 8 + 2 + 12 * len(tags) + 4  # BitsPerSample's three values, then SampleFormat's, then the pixels
    out_of_line = {258: extra, 339: extra + 6, 273: extra + 12, 279: len(data)}
    entries = b""
    for tag, value in tags:
        if tag in out_of_line:
            count = 3 if tag in (258, 339) else 1
            entries += struct.pack("<HHII", tag, 4 if count == 1 else 3, count, out_of_line[tag])
        else:
            entries += struct.pack("<HHIHH", tag, 3, 1, value, 0)
    header = b"II*\x00" + struct.pack("<IH", 8, len(tags)) + entries + b"\0\0\0\0"
    Path(path).write_bytes(header + struct.pack("<6H", 32, 32, 32, 3, 3, 3) + data)


def test_a_tiff_mask_pil_cannot_open_is_refused_where_opencv_turns_it(tmp_path, monkeypatch):
    # the tag was read through PIL's Image.open: a 3-channel float32 TIFF (no PIL mode) or one over PIL's
    # decompression-bomb limit counted as untagged and passed, though OpenCV reads it turned
    float_mask = tmp_path / "float.tif"
    pixels = np.zeros((8, 8, 3), np.float32)
    pixels[:4, :2] = 1
    float_rgb_tiff(float_mask, pixels, 6)
    assert not np.array_equal(decode_image_file(float_mask, cv2.IMREAD_UNCHANGED), pixels)  # turned
    assert exif_orientation(float_mask) == 1  # through PIL's Image.open, which cannot open it
    tagged = rf"^mask {re.escape(str(float_mask))} has an EXIF orientation tag \(6\)"
    with pytest.raises(UserError, match=tagged):
        check_mask_upright(float_mask)
    float_rgb_tiff(float_mask, pixels, 1)
    check_mask_upright(float_mask)
    large = tmp_path / "large.tif"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 8
    Image.new("L", (40, 30)).save(large, exif=exif)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1200 px: over twice the limit
    with pytest.raises(UserError, match=r"has an EXIF orientation tag \(8\)"):
        check_mask_upright(large)


def bigtiff_mask(path: Path, pixels: np.ndarray, order: str, orientation: int | None) -> None:
    """An uncompressed 8-bit grey BigTIFF of ``pixels`` ((H, W) uint8), byte order ``"II"`` or ``"MM"``,
    with an orientation tag when given; by hand: no writer here makes a big-endian BigTIFF."""
    endian = "<" if order == "II" else ">"
    height, width = pixels.shape
    directory_at, entries = 16, [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
    entries += [(273, 16, None), (277, 3, 1), (278, 4, height), (279, 16, pixels.size)]  # 273: pixels at
    if orientation is not None:
        entries.append((EXIF_ORIENTATION, 3, orientation))
    pixels_at = directory_at + 8 + 20 * len(entries) + 8
    data = (b"II+\x00" if order == "II" else b"MM\x00+") + struct.pack(
        endian + "HHQQ", 8, 0, directory_at, len(entries)
    )
    for tag, kind, value in sorted(entries):
        field = struct.pack(endian + {3: "H", 4: "L", 16: "Q"}[kind], pixels_at if value is None else value)
        data += struct.pack(endian + "HHQ", tag, kind, 1) + field.ljust(8, b"\0")
    path.write_bytes(data + struct.pack(endian + "Q", 0) + pixels.tobytes())


@pytest.mark.parametrize("orientation", [None, 1, 6])
@pytest.mark.parametrize("order", ["II", "MM"])
def test_a_bigtiff_masks_tag_is_read_in_either_byte_order(tmp_path, order, orientation):
    # a big-endian BigTIFF (MM\0+) was read as a classic TIFF: "its first directory is cut short"
    mask = tmp_path / "mask.tif"
    pixels = np.zeros((8, 8), np.uint8)
    pixels[:4, :2] = 255
    bigtiff_mask(mask, pixels, order, orientation)
    if orientation is None:  # a valid file: OpenCV reads it as written
        assert np.array_equal(decode_image_file(mask, cv2.IMREAD_UNCHANGED), pixels)
    assert tiff_orientation(mask, what="mask") == (orientation or 1)
    if orientation == 6:
        with pytest.raises(
            UserError, match=rf"^mask {re.escape(str(mask))} has an EXIF orientation tag \(6\)"
        ):
            check_mask_upright(mask)
    else:
        check_mask_upright(mask)


@pytest.mark.parametrize("read", [image_size, mask_size, displayed_size])
def test_a_big_endian_bigtiff_is_named_as_what_pil_cannot_read(tmp_path, read):
    # was: "uint8, 1-channel pixels, which PIL cannot read ... save it with 8 or 16 bits per channel",
    # advice its 8-bit pixels already follow; PIL (13.0) cannot open the big-endian BigTIFF itself
    pixels = np.arange(120, dtype=np.uint8).reshape(10, 12)
    bigtiff_mask(tmp_path / "le.tif", pixels, "II", None)
    assert read(tmp_path / "le.tif") == (12, 10)  # the same file little-endian reads
    image = tmp_path / "be.tif"
    bigtiff_mask(image, pixels, "MM", None)
    assert np.array_equal(decode_image_file(image, cv2.IMREAD_UNCHANGED), pixels)  # a valid file
    with pytest.raises(UserError) as caught:
        read(image)
    assert str(caught.value) == (
        f"cannot read image {image}: a big-endian BigTIFF (MM), which PIL cannot read: save it as a "
        "little-endian (II) or classic TIFF, or as PNG"
    )


@pytest.mark.parametrize("header", [b"II*\x00", b"II*\x00\xff\x00\x00\x00", b"MM\x00*\x00\x00\x00\x08\x00"])
def test_a_tiff_mask_whose_header_does_not_read_is_refused_in_one_line(tmp_path, header):
    mask = tmp_path / "mask.tif"
    mask.write_bytes(header)
    cut = rf"^cannot read the TIFF header of mask {re.escape(str(mask))}: .*cut short$"
    with pytest.raises(UserError, match=cut):
        check_mask_upright(mask)


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


def test_a_damaged_exif_is_one_warning_line_naming_the_photo_not_a_python_warning(tmp_path, capsys):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 1
    exif[0x010E] = "x" * 200  # ImageDescription: its data lies past the directory
    path = tmp_path / "cut.jpg"
    Image.new("RGB", (12, 8)).save(path, exif=exif.tobytes()[:-150])  # and is cut short
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert image_size(path) == (12, 8)
        assert image_size_and_orientation(path) == (12, 8, 1)
        assert exif_orientation(path) == 1 and not has_alpha(path)
    assert [str(warning.message) for warning in caught] == []
    assert capsys.readouterr().err == (
        f"warning: image {path}: damaged EXIF data, read in part "
        "(PIL: Tag data larger than file. Skipping tag 270)\n"
    )


def once_per_place_warnings_around(call: Callable[[], object]) -> list[str]:
    """The messages shown of a once-per-place warning ("shown once") given after each of three ``call``s:
    ``["shown once"]`` unless ``call`` clears Python's record of the warnings shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            call()
            warnings.warn("shown once", UserWarning, stacklevel=1)
    return [str(warning.message) for warning in caught]


def test_reading_images_leaves_a_once_per_place_python_warning_once(tmp_path):
    # each read entered warnings.catch_warnings, which clears Python's record of the warnings shown: a
    # warning shown once per place (a model's, in a loop over photos) came again after every photo read
    photo = tmp_path / "plain.jpg"
    Image.new("RGB", (12, 8)).save(photo)

    def read() -> None:
        assert image_size(photo) == (12, 8) and exif_orientation(photo) == 1 and not has_alpha(photo)

    assert once_per_place_warnings_around(read) == ["shown once"]


def test_checking_tiff_masks_leaves_a_once_per_place_python_warning_once(tmp_path):
    # tiff_orientation read each TIFF mask's directory inside warnings.catch_warnings: a warning shown once
    # per place came again after every mask checked
    mask = tmp_path / "000_mask.tif"
    Image.new("L", (12, 8)).save(mask)
    assert once_per_place_warnings_around(lambda: check_mask_upright(mask)) == ["shown once"]


def test_a_damaged_exif_line_is_written_above_a_progress_bar_not_after_it(tmp_path, capsys):
    import sys

    from tqdm import tqdm

    exif = Image.Exif()
    exif[0x010E] = "x" * 200
    path = tmp_path / "cut_under_bar.jpg"
    Image.new("RGB", (12, 8)).save(path, exif=exif.tobytes()[:-150])
    with tqdm(total=2, desc="reading", file=sys.stderr, mininterval=0) as bar:
        bar.update(1)  # a converter's 'reading' bar, drawn without a newline
        image_size(path)
    err = capsys.readouterr().err
    # it read 'reading:  50%|#####     | 1/2 [00:00<...]warning: image ...'
    assert re.search(r"(^|[\r\n])warning: image \S+cut_under_bar.jpg: damaged EXIF data", err), err


@pytest.mark.parametrize(
    ("tag", "turned"),
    [
        (0x010E, False),  # ImageDescription: OpenCV parses it before the orientation and gives up there
        (0x0110, False),  # Model: the same
        (0x010D, True),  # DocumentName: a tag OpenCV does not parse, so it reaches the orientation
        (0x013B, True),  # Artist: after the orientation, which OpenCV has read by then
    ],
)
def test_a_damaged_exif_gives_the_orientation_opencv_reads(tmp_path, tag, turned):
    # PIL skips the damaged tag and reads orientation 6 after it; OpenCV (every model here) read the
    # photo as stored when the damaged tag came first: displayed_size said 8 x 12 of a 12 x 8 array
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    exif[tag] = "x" * 200
    path = tmp_path / "cut.jpg"
    Image.new("RGB", (12, 8)).save(path, exif=exif.tobytes()[:-150])  # its data cut short
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        height, width = decode_image_file(path, cv2.IMREAD_COLOR).shape[:2]
    assert (height, width) == ((12, 8) if turned else (8, 12))  # what OpenCV does, as found
    assert displayed_size(path) == (width, height)
    assert exif_orientation(path) == image_size_and_orientation(path)[2] == (6 if turned else 1)
    assert header_size_and_orientation(path) == (12, 8, 6 if turned else 1)


def test_two_threads_reading_damaged_exifs_at_once_each_record_their_own_warnings(tmp_path, monkeypatch):
    # warnings.catch_warnings swaps process-wide state: a thread that left its block first put back the
    # state from before it, so the other thread's PIL warning, met then, escaped as a raw Python warning
    # (here into the test's own recorder) and that thread's exit left the first one's recorder in place
    paths = []
    for name in ("first", "second"):
        exif = Image.Exif()
        exif[0x010E] = "x" * 200  # ImageDescription: its data lies past the directory
        paths.append(tmp_path / f"{name}.jpg")
        Image.new("RGB", (12, 8)).save(paths[-1], exif=exif.tobytes()[:-150])
    first_inside, second_inside, first_done = threading.Event(), threading.Event(), threading.Event()
    real_open = images_module._pil_open()

    def gated_open(path, *args):
        if Path(path).name == "first.jpg":
            first_inside.set()
            second_inside.wait(timeout=0.5)  # the old code: both are inside their blocks now
        else:
            second_inside.set()
            first_done.wait(timeout=5)  # opened (and warned) only once the first has left its block
        return real_open(path, *args)

    monkeypatch.setattr(images_module, "_pil_open", lambda: gated_open)

    def first() -> None:
        exif_orientation(paths[0])
        first_done.set()

    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        threads = [
            threading.Thread(target=first),
            threading.Thread(target=exif_orientation, args=(paths[1],)),
        ]
        threads[0].start()
        assert first_inside.wait(timeout=5)
        threads[1].start()
        for thread in threads:
            thread.join(timeout=10)
        warnings.warn("after the threads", stacklevel=1)  # not swallowed by a finished thread's recorder
    assert [str(warning.message) for warning in escaped] == ["after the threads"]


def test_two_threads_reading_one_damaged_exif_at_once_write_its_line_once(tmp_path, monkeypatch, capsys):
    # a file's warning line is written once: two threads both past the check of the files warned of, before
    # either recorded it, would each write it
    exif = Image.Exif()
    exif[0x010E] = "x" * 200  # ImageDescription: its data lies past the directory
    path = tmp_path / "shared.jpg"
    Image.new("RGB", (12, 8)).save(path, exif=exif.tobytes()[:-150])
    both_checking = threading.Barrier(2)

    class GatedSet(set):
        def __contains__(self, item) -> bool:
            found = super().__contains__(item)
            try:  # unguarded, both threads meet here; guarded, the first times out and the second passes
                both_checking.wait(timeout=0.5)
            except threading.BrokenBarrierError:
                pass
            return found

    monkeypatch.setattr(images_module, "_DAMAGED_DIRECTORY_WARNED", GatedSet())
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=exif_orientation, args=(path,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert [str(warning.message) for warning in escaped] == []
    assert capsys.readouterr().err.count(f"warning: image {path}: damaged EXIF data") == 1
