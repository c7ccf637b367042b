"""Reading image files: real decoding, sizes as stored and as OpenCV turns them, one-line errors."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from common.exif import (
    EXIF_ORIENTATION,
    exif_orientation,
    is_rotated,
)
from common.image_files import decode_image_file
from common.images import (
    decode_photos,
    displayed_size,
    has_alpha,
    header_size_and_orientation,
    image_size,
    image_size_and_orientation,
    mask_size,
    read_photos,
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


def test_a_tiff_pil_cannot_identify_wider_than_opencv_reads_is_called_corrupt(tmp_path: Path) -> None:
    # OpenCV raises for a width over its maximum, not returns None: a cv2.error traceback came out of the
    # look at whether OpenCV reads what PIL does not
    import struct

    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "TIFF")
    content = bytearray(out.getvalue())
    directory = struct.unpack_from("<I", content, 4)[0]
    for entry in range(
        directory + 2, directory + 2 + 12 * struct.unpack_from("<H", content, directory)[0], 12
    ):
        tag = struct.unpack_from("<H", content, entry)[0]
        if tag == 256:  # width: 2,000,000 pixels
            struct.pack_into("<HHII", content, entry, 256, 4, 1, 2_000_000)
        elif tag == 259:  # a compression neither PIL nor OpenCV knows
            struct.pack_into("<H", content, entry + 8, 81)
    path = tmp_path / "wide.tif"
    path.write_bytes(content)
    with pytest.raises(UserError) as error:
        image_size(path)
    assert str(error.value) == f"cannot read image {path}: corrupt or not an image (PIL cannot identify it)"


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


@pytest.mark.parametrize("orientation", [5, 7])  # transposes: width and height swap as for 6 and 8
def test_displayed_size_of_transposed_photos(tmp_path, orientation):
    path = tmp_path / "t.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (40, 30)).save(path, exif=exif)
    assert displayed_size(path) == (30, 40) == cv2.imread(str(path)).shape[1::-1]


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
