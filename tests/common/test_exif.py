"""The orientation tag as OpenCV applies it, turned masks refused, a damaged EXIF as one line."""

from __future__ import annotations

import re
import struct
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import common.exif as exif_module
from common.errors import UserError
from common.exif import (
    EXIF_ORIENTATION,
    check_mask_upright,
    exif_orientation,
    is_rotated,
    tiff_orientation,
)
from common.image_files import decode_image_file
from common.images import (
    displayed_size,
    has_alpha,
    header_size_and_orientation,
    image_size,
    image_size_and_orientation,
    mask_size,
)
from tests.common.test_images import write_png


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
    real_open = exif_module.pil_open()

    def gated_open(path, *args):
        if Path(path).name == "first.jpg":
            first_inside.set()
            second_inside.wait(timeout=0.5)  # the old code: both are inside their blocks now
        else:
            second_inside.set()
            first_done.wait(timeout=5)  # opened (and warned) only once the first has left its block
        return real_open(path, *args)

    monkeypatch.setattr(exif_module, "pil_open", lambda: gated_open)

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

    monkeypatch.setattr(exif_module, "_DAMAGED_DIRECTORY_WARNED", GatedSet())
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=exif_orientation, args=(path,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert [str(warning.message) for warning in escaped] == []
    assert capsys.readouterr().err.count(f"warning: image {path}: damaged EXIF data") == 1
