"""Reading image files: real decoding, one-line errors, no native noise on stderr."""

from __future__ import annotations

import fnmatch
import io
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

import common.images as images_module
from common.errors import UserError
from common.images import (
    EVALUATION_MARKERS,
    EXIF_ORIENTATION,
    IMAGE_SUFFIXES,
    PREDICTIONS,
    RUN_IMAGE_FOLDERS,
    RUN_MARKERS,
    TRAINING_FIGURES,
    TRAINING_IMAGE_FOLDERS,
    TRAINING_MARKERS,
    ULTRALYTICS_FIGURES,
    check_mask_upright,
    check_no_masks,
    check_not_ground_truth,
    decode_image_file,
    displayed_size,
    exif_orientation,
    glob_base,
    has_alpha,
    header_size_and_orientation,
    image_files_below,
    image_size,
    image_size_and_orientation,
    is_image_file,
    is_narrow_16bit,
    is_rotated,
    mask_size,
    narrow_16bit_max,
    narrow_photo_warnings,
    photo_colour,
    photo_files,
    photo_root,
    tiff_orientation,
)
from tests.conftest import assert_link_loop_line


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


def test_image_files_below_walks_folders_and_skips_hidden_names(tmp_path: Path) -> None:
    kept = [write_png(tmp_path / "a.png"), write_png(tmp_path / "lot_2" / "b.JPG")]
    write_png(tmp_path / "._a.png")  # a macOS resource fork
    write_png(tmp_path / ".ipynb_checkpoints" / "c.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert image_files_below(tmp_path) == sorted(kept)


def test_files_left_out_of_a_photo_folder_or_pattern_for_their_suffix_are_noted(
    tmp_path: Path, capsys
) -> None:
    # a lot with a phone's .heic photos beside the .jpg ones was inspected without them, without a word
    lot = tmp_path / "lot"
    kept = [write_png(lot / "a.png"), write_png(lot / "b.png")]
    for name in ("c.heic", "scan.jp2", "notes.txt", "Thumbs.db"):
        (lot / "sub" / name).parent.mkdir(parents=True, exist_ok=True)
        (lot / "sub" / name).write_bytes(b"x")
    (lot / "._a.heic").write_bytes(b"x")  # hidden: skipped by design, not counted
    assert photo_files(lot) == (kept, lot)
    suffixes = ", ".join(IMAGE_SUFFIXES)
    assert capsys.readouterr().err == (
        f"note: 4 files below {lot} left out, no image suffix read here ({suffixes}): "
        "Thumbs.db, c.heic, notes.txt, ...\n"
    )
    assert photo_files(f"{lot}/*") == (kept, lot)  # a folder the pattern matched is not counted
    assert capsys.readouterr().err == ""
    (lot / "d.heic").write_bytes(b"x")
    photo_files(f"{lot}/*")
    assert capsys.readouterr().err == (
        f"note: 1 file matched by '{lot}/*' left out, no image suffix read here ({suffixes}): d.heic\n"
    )
    photo_files(f"{lot}/*.png")  # nothing else matched: no note
    assert capsys.readouterr().err == ""


def test_a_file_a_pattern_reaches_through_a_link_loop_is_noted_once(tmp_path: Path, capsys) -> None:
    lot = tmp_path / "lot"
    a = write_png(lot / "a.png")
    (lot / "notes.txt").write_text("x")
    (lot / "line_2").mkdir()
    (lot / "line_2" / "up").symlink_to(lot, target_is_directory=True)  # a link back to a folder above
    assert photo_files(f"{lot}/**/*") == ([a], lot)
    assert capsys.readouterr().err.startswith(f"note: 1 file matched by '{lot}/**/*' left out, ")


def test_a_folder_or_a_link_to_one_named_like_a_photo_is_no_image_file(tmp_path: Path) -> None:
    # "lot.png/" made by hand, or a link to it: read as a photo, decoding it would fail
    (tmp_path / "lot.png").mkdir()
    (tmp_path / "link.png").symlink_to(tmp_path / "lot.png", target_is_directory=True)
    assert not is_image_file(tmp_path / "lot.png") and not is_image_file(tmp_path / "link.png")
    assert is_image_file(write_png(tmp_path / "a.png"))


def test_image_files_below_searches_linked_folders_once(tmp_path: Path) -> None:
    camera = write_png(tmp_path / "share" / "cam_1" / "x.png")
    lot = tmp_path / "lot"
    own = write_png(lot / "a.png")
    (lot / "cam_1").symlink_to(camera.parent, target_is_directory=True)  # a camera's share, linked in
    (lot / "cam_1" / "up").symlink_to(lot, target_is_directory=True)  # a loop: searched once
    # the linked folder's photos were skipped without a word, though "lot/**/*.png" matches them
    assert image_files_below(lot) == [own, lot / "cam_1" / "x.png"]


def test_a_pattern_through_a_link_loop_gives_each_photo_once(tmp_path: Path) -> None:
    lot = tmp_path / "lot"
    a, b = write_png(lot / "a.png"), write_png(lot / "line_2" / "b.png")
    (lot / "line_2" / "up").symlink_to(lot, target_is_directory=True)  # a link back to a folder above
    # each photo came back once per round of the loop ('line_2/up/line_2/up/.../a.png')
    assert photo_files(f"{lot}/**/*.png") == ([a, b], lot)


def test_image_files_below_refuses_a_folder_without_images(tmp_path: Path) -> None:
    write_png(tmp_path / ".hidden.png")
    with pytest.raises(UserError, match=rf"no image files \(.png, .*\) in {tmp_path}$"):
        image_files_below(tmp_path)


@pytest.mark.parametrize("source", [".", "hazelnut", "hazelnut/ground_truth/crack"])
def test_an_mvtec_categorys_masks_are_not_photos(tmp_path: Path, source: str) -> None:
    write_png(tmp_path / "hazelnut" / "test" / "crack" / "000.png")
    write_png(tmp_path / "hazelnut" / "ground_truth" / "crack" / "000_mask.png")
    masks = tmp_path / "hazelnut" / "ground_truth"
    with pytest.raises(UserError, match=rf"includes {masks}, an MVTec .* \(e.g. {tmp_path}/hazelnut/test\)$"):
        image_files_below(tmp_path / source)
    assert image_files_below(tmp_path / "hazelnut" / "test")  # the photos alone pass


def test_a_ground_truth_folder_without_test_beside_it_is_photos(tmp_path: Path) -> None:
    photo = write_png(tmp_path / "ground_truth" / "a.png")  # a user's own folder name, not MVTec's layout
    assert image_files_below(tmp_path) == [photo]
    check_not_ground_truth([photo], tmp_path)


@pytest.mark.parametrize(
    ("mask", "source"),
    [
        ("lot/000_mask.png", "lot"),  # copied in beside its photo
        ("test_public/ground_truth/bad/000_mask.png", "test_public"),  # MVTec AD 2: no test/ beside it
        ("lot/000_mask.png", "lot/*.png"),  # a pattern
    ],
)
def test_masks_beside_their_photos_are_not_photos(tmp_path: Path, mask: str, source: str) -> None:
    photo = write_png(tmp_path / mask.replace("ground_truth/", "").replace("_mask", ""))
    write_png(tmp_path / mask)
    write_png(tmp_path / "lot" / "001_mask.png")  # no photo 001: a photo of its own
    message = f"{tmp_path}/{source} includes {tmp_path}/{mask}, the mask of {photo} by MVTec's naming"
    with pytest.raises(UserError, match=f"^{re.escape(message)}"):
        photo_files(f"{tmp_path}/{source}")


def test_check_no_masks_counts_them_and_passes_photos_alone(tmp_path: Path) -> None:
    files = [tmp_path / name for name in ("a.png", "a_mask.png", "b.jpg", "b_mask.png", "c_mask.png")]
    with pytest.raises(UserError, match=r"a_mask.png and 1 more, the mask of .*/a.png by"):
        check_no_masks(files, tmp_path)
    check_no_masks([tmp_path / "a.png", tmp_path / "c_mask.png", tmp_path / "_mask.png"], tmp_path)


def test_photo_files_of_a_file_a_folder_and_patterns(tmp_path: Path) -> None:
    a, b = write_png(tmp_path / "lot" / "a.png"), write_png(tmp_path / "lot" / "line_2" / "b.png")
    c = write_png(tmp_path / "lot" / "c.jpg")  # beside the .png files: not matched by "*.png"
    (tmp_path / "lot" / "d.png.txt").write_text("not an image")
    assert photo_files(a) == ([a], None)
    assert photo_files(tmp_path / "lot") == ([a, c, b], tmp_path / "lot")
    assert photo_files(f"{tmp_path}/lot/*.png") == ([a], tmp_path / "lot")
    assert photo_files(f"{tmp_path}/lot/**/*.png") == ([a, b], tmp_path / "lot")  # recursive
    assert photo_files(f"{tmp_path}/l?t/*.*") == ([a, c], tmp_path)  # the base: before the first wildcard


def test_an_inspection_output_among_the_photos_is_named_as_one(tmp_path: Path) -> None:
    # inspection.predict --source lot/a.jpg --out lot/out (one file: allowed), then --source lot
    lot = tmp_path / "lot"
    write_png(lot / "a.jpg")
    write_png(lot / "out" / "masks" / "out" / "test" / "colour" / "a.jpg")
    write_png(lot / "out" / "masks" / "out" / "ground_truth" / "colour" / "a_mask.png")
    (lot / "out" / "images.json").write_text("{}")
    # it said to inspect lot/out/masks/out/test instead: links to the photos the run inspected
    message = (
        f"{lot} includes {lot / 'out'}, an inspection's output folder (its masks tree "
        f"{lot / 'out' / 'masks' / 'out' / 'ground_truth'} holds masks, not photos): move it out of the "
        "photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(lot)
    (lot / "out" / "images.json").unlink()  # an MVTec tree kept in a folder named masks: its own message
    with pytest.raises(UserError, match="an MVTec category's defect masks, not photos"):
        photo_files(lot)


def write_run(out: Path, folder: str, marker: str) -> Path:
    """An earlier run's --out: its predictions.json, ``marker`` and an image in ``folder``."""
    image = write_png(out / folder / "sub" / "a__b.png")
    (out / "predictions.json").write_text("[]")
    (out / marker).write_text("{}")
    return image


@pytest.mark.parametrize("marker", RUN_MARKERS)
@pytest.mark.parametrize("folder", RUN_IMAGE_FOLDERS)
@pytest.mark.parametrize("source", ["lots", "lots/**/*.png", "lots/*/*/*/*.png"])
def test_an_earlier_runs_output_linked_among_the_photos_is_refused(
    tmp_path, monkeypatch, source, folder, marker
) -> None:
    # was: lots/latest (a link to runs/r1, an --out given before) had its overlays, masks and anomaly maps
    # read as photos, named lots/latest/overlays/..., by a run with any other --out, without a word
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "cam" / "x" / "a.png")
    write_run(tmp_path / "runs" / "r1", folder, marker)
    (tmp_path / "lots" / "latest").symlink_to(tmp_path / "runs" / "r1", target_is_directory=True)
    message = (
        f"{source} includes lots/latest, an earlier run's output folder (lots/latest/predictions.json): "
        f"its {folder}/ holds the images it wrote, not photos; move it out of the photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(source)


@pytest.mark.parametrize(
    ("source", "marker", "listed"),
    [
        ("runs/r1/overlays", "predict.json", "sub/a__b.png"),  # its image folder itself: asked for
        ("runs/r1/overlays/*/*.png", "predict.json", "sub/a__b.png"),
        ("runs", "notes.json", "r1/overlays/sub/a__b.png"),  # predictions.json alone: another tool's
    ],
)
def test_images_beside_no_run_output_or_asked_for_are_photos(tmp_path, monkeypatch, source, marker, listed):
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "r1", "overlays", marker)
    assert photo_files(source) == ([Path(source.split("/*")[0], listed)], Path(source.split("/*")[0]))


@pytest.mark.parametrize(
    "source",
    # its image folder itself, spelled with a '..': was refused as taken in (the second naming masks/)
    ["runs/*/../r1/overlays/*/*.png", "runs/r1/*/../overlays/*/*.png", "runs/r1/masks/../overlays/*/*.png"],
)
def test_a_run_image_folder_asked_for_through_a_parent_part_is_photos(tmp_path, monkeypatch, source) -> None:
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "r1", "overlays", "predict.json")
    (tmp_path / "runs" / "r1" / "masks").mkdir()
    [photo] = photo_files(source)[0]
    assert photo.resolve() == (tmp_path / "runs" / "r1" / "overlays" / "sub" / "a__b.png").resolve()


@pytest.mark.parametrize(
    ("source", "out"),
    [
        ("runs/r1/masks/../*/*/*.png", "runs/r1"),  # was named runs/r1/masks/..: taken as spelled
        ("runs/*/../*/*/*/*.png", "runs/r1"),
        ("lots/x/../*/*/*.png", "lots/x/.."),  # x links to runs/r1/masks: x/.. is runs/r1, not lots
        # '**' matches no folder too: lots/../runs/r1 (read in without a word), not lots/runs as normpath
        # reads '**/..'
        ("lots/**/../runs/*/*/*/*.png", "lots/../runs/r1"),
    ],
)
def test_a_run_output_taken_in_through_a_parent_part_is_refused(tmp_path, monkeypatch, source, out) -> None:
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "r1", "overlays", "predict.json")
    (tmp_path / "runs" / "r1" / "masks").mkdir()
    (tmp_path / "lots").mkdir()
    (tmp_path / "lots" / "x").symlink_to(tmp_path / "runs" / "r1" / "masks", target_is_directory=True)
    message = f"{source} includes {out}, an earlier run's output folder ({out}/predictions.json): its "
    message += "overlays/ holds"
    with pytest.raises(UserError, match=f"^{re.escape(message)}"):
        photo_files(source)


@pytest.mark.parametrize(
    ("markers", "written"),
    [
        (("metrics.json", "report.md", "scores.csv"), "anomaly_maps.png"),  # anomaly.evaluate's figure
        (("evaluation.json", "report.txt"), "PR_curve.png"),  # detection.evaluate's, ultralytics' plots
        (("metrics.json", "table.md"), "overlays/a__b.png"),  # segmentation.evaluate's overlays
        (("folds.json", "folds.md"), "folds.png"),  # segmentation.evaluate --folds' figure
    ],
)
@pytest.mark.parametrize(
    "source", ["lots", "lots/**/*.png", "lots/*/{below}*.png"]
)  # {below}: one '*/' a folder
def test_an_earlier_evaluations_images_among_the_photos_are_refused(
    tmp_path, monkeypatch, markers, written, source
) -> None:
    # was: an evaluation's --out inside the photos' folder had its figures read as photos, without a word
    monkeypatch.chdir(tmp_path)
    source = source.format(below="*/" * written.count("/"))
    write_png(tmp_path / "lots" / "l1" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "sub" / "b.png")
    write_png(tmp_path / "lots" / "eval" / written)
    for name in markers:
        (tmp_path / "lots" / "eval" / name).write_text("{}")
    what = (
        f"its {written.split('/')[0]}/ holds the images it wrote, not photos"
        if "/" in written
        else f"its {written} is a figure it wrote, not a photo"
    )
    message = (
        f"{source} includes lots/eval, an earlier evaluation's output folder (lots/eval/{markers[0]}): "
        f"{what}; move it out of the photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(source)


def test_an_evaluation_folder_given_itself_is_refused_and_its_image_folder_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "eval" / "overlays" / "a.png")
    write_png(tmp_path / "eval" / "anomaly_maps.png")
    for name in ("metrics.json", "table.md"):
        (tmp_path / "eval" / name).write_text("{}")
    with pytest.raises(UserError, match="^eval includes eval, an earlier evaluation's output folder"):
        photo_files("eval")
    assert photo_files("eval/overlays") == ([Path("eval/overlays/a.png")], Path("eval/overlays"))
    (tmp_path / "eval" / "table.md").unlink()  # metrics.json alone: another tool's, its images photos
    assert len(photo_files("eval")[0]) == 2


def test_the_evaluation_markers_are_the_files_the_commands_write() -> None:
    from anomaly.report import REPORT_NAMES
    from detection.report import REPORT_JSON, REPORT_TEXT
    from inspection.report import REPORT_FILES
    from segmentation.crossval import SUMMARY_FILES
    from segmentation.evaluate import EVALUATION_FILES

    assert {
        ("metrics.json", "report.md"),
        ("metrics.json", "table.md"),
        SUMMARY_FILES[:2],
        (REPORT_JSON, REPORT_TEXT),
    } == set(EVALUATION_MARKERS)
    assert EVALUATION_MARKERS[SUMMARY_FILES[:2]] == SUMMARY_FILES[2:] == ("folds.png",)  # --folds' figure
    assert {"metrics.json", "report.md"} <= set(REPORT_NAMES) & set(REPORT_FILES)
    assert {"metrics.json", "table.md"} <= EVALUATION_FILES
    # the figures beside the report: anomaly.evaluate's; inspection's (REPORT_FILES), segmentation's: none
    figures = tuple(name for name in REPORT_NAMES if Path(name).suffix in IMAGE_SUFFIXES)
    assert EVALUATION_MARKERS[("metrics.json", "report.md")] == figures == ("anomaly_maps.png",)
    assert not any(Path(name).suffix in IMAGE_SUFFIXES for name in (*REPORT_FILES, *EVALUATION_FILES))


def write_folds_out(out: Path, data: Path, figure: str) -> None:
    """A ``segmentation.evaluate --folds`` --out of two rounds over the data set ``data``: its summary,
    ``fold<i>/`` data folders (``images`` a link to ``data/images``), ``runs/fold<i>/`` training runs
    each with ``figure``."""
    for name in ("folds.json", "folds.md"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("{}")
    for index in range(2):
        (out / f"fold{index}" / "annotations").mkdir(parents=True)
        (out / f"fold{index}" / "annotations" / "instances_train.json").write_text("{}")
        (out / f"fold{index}" / "images").symlink_to(data / "images", target_is_directory=True)
        run = out / "runs" / f"fold{index}"
        write_png(run / figure)
        for name in TRAINING_MARKERS:
            (run / name).write_text("epoch\n")


@pytest.mark.parametrize("figure", ["curves.png", "results.png", "train_batch0.jpg"])
@pytest.mark.parametrize("source", ["lots", "lots/**/*.*g", "lots/cv/runs/*/*.*g"])
def test_a_training_runs_figures_among_the_photos_are_refused(tmp_path, monkeypatch, source, figure) -> None:
    # segmentation.train's curves.png (the rounds of --folds train in runs/fold<i>), ultralytics' plots of
    # detection.train: a --source taking in a training run read them as photos without a word
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "data" / "images" / "train" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "b.png")
    write_folds_out(tmp_path / "lots" / "cv", tmp_path / "data", figure)
    message = (
        f"{source} includes lots/cv/runs/fold0, an earlier training run's output folder "
        f"(lots/cv/runs/fold0/args.yaml): its {figure} is a figure it wrote, not a photo; move it out of "
        "the photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(source)


@pytest.mark.parametrize(
    "written",
    [
        "visualizations/a.png",  # ultralytics' plots with visualize: a val photo drawn, under its own name
        "tiles/images/train/a_x0_y0.png",  # detection.train's tile: the data set cut into tiles
    ],
)
@pytest.mark.parametrize("source", ["lots", "lots/**/*.png", "lots/*/*/{below}*.png"])
def test_a_training_runs_image_folders_among_the_photos_are_refused(tmp_path, monkeypatch, written, source):
    # were read as photos without a word: only the overlays, masks and anomaly maps folders were looked at
    monkeypatch.chdir(tmp_path)
    source = source.format(below="*/" * written.count("/"))
    write_png(tmp_path / "lots" / "l1" / "a.png")
    write_png(tmp_path / "lots" / "runs" / "train" / written)
    for name in TRAINING_MARKERS:
        (tmp_path / "lots" / "runs" / "train" / name).write_text("epoch\n")
    message = (
        f"{source} includes lots/runs/train, an earlier training run's output folder "
        f"(lots/runs/train/args.yaml): its {written.split('/')[0]}/ holds the images it wrote, not photos; "
        "move it out of the photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(source)
    (tmp_path / "lots" / "runs" / "train" / "args.yaml").unlink()  # results.csv alone: another tool's
    assert len(photo_files(source)[0]) == (1 if "*/*/*" in source else 2)  # the pattern: the run's alone


@pytest.mark.parametrize("folder", TRAINING_IMAGE_FOLDERS)
@pytest.mark.parametrize("markers", [("predictions.json", "predict.json"), ("evaluation.json", "report.txt")])
def test_a_training_runs_image_folder_names_below_other_outputs_hold_photos(
    tmp_path, monkeypatch, folder, markers
):
    # only a training run writes tiles/ and visualizations/: below a predict run or an evaluation they are
    # folders of photos put there (as they were before)
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "out" / folder / "a.png")
    for name in markers:
        (tmp_path / "lots" / "out" / name).write_text("{}")
    assert photo_files("lots")[0] == [Path("lots/out", folder, "a.png")]


@pytest.mark.parametrize("source", ["lots", "lots/**/*.png"])
def test_the_photos_of_a_folds_rounds_are_the_data_sets_read_once(tmp_path, monkeypatch, source) -> None:
    # each fold<i>/images is a link to the data set's images/: its photos, read as the data set's are,
    # once however many rounds link them; the rounds' runs hold no figure here (a killed run's first epoch)
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "data" / "images" / "train" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "b.png")
    write_folds_out(tmp_path / "lots" / "cv", tmp_path / "data", "curves.png")
    for index in range(2):
        (tmp_path / "lots" / "cv" / "runs" / f"fold{index}" / "curves.png").unlink()
    assert photo_files(source)[0] == [Path("lots/cv/fold0/images/train/a.png"), Path("lots/l1/b.png")]
    (tmp_path / "lots" / "l1" / "results.csv").write_text("")  # results.csv alone: another tool's, a photo
    assert len(photo_files(source)[0]) == 2


def test_the_training_markers_are_the_files_segmentation_train_writes() -> None:
    from segmentation.run_folder import UNSTARTED_NAMES
    from segmentation.train import CLOSING_FILES

    assert TRAINING_MARKERS == ("args.yaml", "results.csv")
    assert TRAINING_MARKERS[0] in UNSTARTED_NAMES and TRAINING_MARKERS[1] in CLOSING_FILES
    assert [name for name in CLOSING_FILES if Path(name).suffix in IMAGE_SUFFIXES] == ["curves.png"]


@pytest.mark.parametrize("markers", [TRAINING_MARKERS, ("evaluation.json", "report.txt")])
def test_photos_beside_a_runs_marker_files_of_their_own_are_read(tmp_path, monkeypatch, markers) -> None:
    # were refused as a training run's (or detection.evaluate's) figures: a lot folder holding its capture
    # settings (args.yaml) and measurements (results.csv), every image beside them taken for one
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "labels_7.jpg")
    for name in markers:
        (tmp_path / "lots" / "l1" / name).write_text("epoch\n")
    photos = [Path("lots/l1/a.png"), Path("lots/l1/labels_7.jpg")]
    assert photo_files("lots")[0] == photos == photo_files("lots/l1")[0] == photo_files("lots/*/*.*g")[0]
    kind = "training run" if markers == TRAINING_MARKERS else "evaluation"
    figures = ["results.png", "BoxPR_curve.png", "confusion_matrix_normalized.png", "val_batch0_pred.jpg"]
    for figure in ["curves.png", *figures] if kind == "training run" else figures:
        write_png(tmp_path / "lots" / "l1" / figure)
        with pytest.raises(
            UserError, match=f"earlier {kind}'s .*: its {re.escape(figure)} is a figure it wrote"
        ):
            photo_files("lots")
        (tmp_path / "lots" / "l1" / figure).unlink()


#: Images the installed ultralytics' training and validation code names that it does not draw in a run's
#: folder: defaults of functions called with a name, the tuner's and the multi-data-set trainer's figures
#: (their own folders), the class-activation maps of predict, the semantic task's IoU chart (not trained
#: here). Each is named so the test fails when ultralytics renames a figure it does draw.
_NOT_RUN_FIGURES = {
    "image.jpg", "im.jpg", "images.jpg", "pr_curve.png", "mc_curve.png", "multitrain_results.png",
    "tune_scatter_plots.png", "tune_fitness.png", "*_cam.jpg", "iou_bar_chart.png",
}  # fmt: skip


def _ultralytics_image_names() -> dict[str, str]:
    """The image file names in the string literals of the installed ultralytics' training and validation
    code (an f-string's fields as ``*``), each with the module naming it."""
    import ast

    import ultralytics

    root = Path(ultralytics.__file__).parent
    modules = [root / "engine" / "trainer.py", root / "engine" / "validator.py"]
    modules += [root / "utils" / "plotting.py", root / "utils" / "metrics.py"]
    for task in ("detect", "segment", "world", "yoloe"):
        modules += sorted((root / "models" / "yolo" / task).glob("*.py"))
    names = {}
    for module in modules:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
                text = node.value
            else:
                continue
            if Path(text).suffix in IMAGE_SUFFIXES and Path(text).stem and not re.search(r"[\s/]", text):
                names[text] = str(module.relative_to(root))
    return names


def test_the_ultralytics_figures_are_those_the_installed_version_draws() -> None:
    import ultralytics

    from detection.train import ULTRALYTICS_OUTPUTS

    names = _ultralytics_image_names()
    assert {"results.png", "labels.jpg", "train_batch*.jpg", "*PR_curve.png"} <= set(names)  # read at all
    # the confusion matrices: f"{title.lower().replace(' ', '_')}.png" of their titles
    assert names.pop("*.png") == "utils/metrics.py"
    metrics = Path(ultralytics.__file__).parent / "utils" / "metrics.py"
    assert 'title = "Confusion Matrix" + " Normalized" * normalize' in metrics.read_text(encoding="utf-8")
    drawn = {"confusion_matrix.png", "confusion_matrix_normalized.png"}
    drawn |= {name.replace("*", "Box") for name in names if name not in _NOT_RUN_FIGURES}
    for name in sorted(drawn):
        assert any(fnmatch.fnmatch(name, figure) for figure in ULTRALYTICS_FIGURES), name
    assert set(ULTRALYTICS_FIGURES) <= set(TRAINING_FIGURES) and set(ULTRALYTICS_FIGURES) <= set(
        ULTRALYTICS_OUTPUTS
    )
    assert EVALUATION_MARKERS[("evaluation.json", "report.txt")] == ULTRALYTICS_FIGURES
    assert not any(fnmatch.fnmatch(name, figure) for name in _NOT_RUN_FIGURES for figure in TRAINING_FIGURES)


@pytest.mark.parametrize("report", ["report.md", "table.md"])
def test_photos_beside_a_metrics_json_and_a_report_of_their_own_are_read(
    tmp_path, monkeypatch, report
) -> None:
    # were refused as an evaluation's figures: a lot folder holding its own QA metrics.json and report.md
    # (every image beside them was taken for one), where anomaly.evaluate writes anomaly_maps.png alone
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "b.png")
    for name in ("metrics.json", report):
        (tmp_path / "lots" / "l1" / name).write_text("{}")
    photos = [Path("lots/l1/a.png"), Path("lots/l1/b.png")]
    assert photo_files("lots")[0] == photos == photo_files("lots/l1")[0] == photo_files("lots/*/*.png")[0]
    if report == "report.md":  # the figure anomaly.evaluate writes there is still refused
        write_png(tmp_path / "lots" / "l1" / "anomaly_maps.png")
        with pytest.raises(UserError, match=r"its anomaly_maps\.png is a figure it wrote, not a photo"):
            photo_files("lots")


def test_the_run_image_folders_are_those_the_commands_write() -> None:
    from anomaly import outputs as anomaly_outputs
    from detection import predict as detection_predict
    from inspection import outputs as inspection_outputs

    written = {detection_predict.OVERLAYS_DIR, *anomaly_outputs.IMAGE_FOLDERS}
    written |= {
        inspection_outputs.OVERLAYS_DIR,
        inspection_outputs.MASKS_DIR,
        inspection_outputs.ANOMALY_MAPS_DIR,
    }
    assert written == set(RUN_IMAGE_FOLDERS)
    assert {detection_predict.PREDICTIONS_FILE, anomaly_outputs.PREDICTIONS_FILE} == {PREDICTIONS}
    assert inspection_outputs.PREDICTIONS_FILE == PREDICTIONS
    assert {
        detection_predict.SETTINGS_FILE,
        anomaly_outputs.IMAGES_FILE,
        inspection_outputs.IMAGES_FILE,
    } <= set(RUN_MARKERS)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nowhere", r"^--source not found: .*/nowhere$"),  # a plain path: no pattern
        ("lot/*.PNG", r"^the pattern '.*/lot/\*\.PNG' matches no image files \(\.png, .*\.webp\)$"),
        ("nowhere/**/*.png", r"^the pattern '.*/nowhere/\*\*/\*\.png' matches no image files"),
        ("hazelnut/*/*/*.png", r"includes .*/hazelnut/ground_truth, an MVTec category's defect masks"),
    ],
)
def test_bad_photo_sources_are_one_line_errors(tmp_path: Path, source: str, message: str) -> None:
    write_png(tmp_path / "lot" / "a.jpg")
    write_png(tmp_path / "hazelnut" / "test" / "crack" / "000.png")
    write_png(tmp_path / "hazelnut" / "ground_truth" / "crack" / "000_mask.png")
    with pytest.raises(UserError, match=message):
        photo_files(f"{tmp_path}/{source}")


@pytest.mark.parametrize("source", ["", " "])  # --source "$PHOTOS" with the variable unset
@pytest.mark.parametrize("read", [photo_files, photo_root])
def test_an_empty_source_is_refused_not_read_as_the_working_folder(tmp_path, monkeypatch, read, source):
    write_png(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)  # Path("") is ".": its photos would be read
    with pytest.raises(UserError, match=rf"^--source is empty \({re.escape(repr(source))}; an unset shell"):
        read(source)


def test_photo_roots(tmp_path: Path) -> None:
    photo = write_png(tmp_path / "one.png")
    assert glob_base("/data/lot_*/x.png") == Path("/data")
    assert glob_base("*.jpg") == Path(".")
    assert photo_root(tmp_path) == tmp_path
    assert photo_root(photo) == photo
    assert photo_root(f"{tmp_path}/*.png") == tmp_path
    assert photo_root(f"{tmp_path}/**/*.png") == tmp_path


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


def test_glob_base_stops_at_the_first_wildcard():
    assert glob_base("lot/*/line_2/*.png") == Path("lot")


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


def test_a_broken_link_to_a_photo_is_one_line_naming_it(tmp_path: Path) -> None:
    """A photo deleted from the share its link points into: skipped, it would leave the lot unsaid."""
    write_png(tmp_path / "lot" / "001.png")
    (tmp_path / "lot" / "002.png").symlink_to(tmp_path / "share" / "002.png")  # never written
    with pytest.raises(UserError, match=r"broken link: .*lot/002.png points to .*share/002.png, which does"):
        image_files_below(tmp_path / "lot")


def test_a_photo_link_that_loops_is_named_as_a_link_loop(tmp_path: Path) -> None:
    # it said "broken link: .../002.png points to 002.png, which does not exist" of a link to itself
    write_png(tmp_path / "lot" / "001.png")
    (tmp_path / "lot" / "002.png").symlink_to("002.png")
    with pytest.raises(UserError) as error:
        image_files_below(tmp_path / "lot")
    assert_link_loop_line(
        f"error: {error.value}\n", str(tmp_path / "lot" / "002.png"), tmp_path / "lot" / "002.png"
    )


def test_a_photo_link_into_a_looping_folder_names_the_folder(tmp_path: Path) -> None:
    # it named the photo link (lot/002.png is a link loop), which leads into the loop but is none of it
    write_png(tmp_path / "lot" / "001.png")
    (tmp_path / "loopdir").symlink_to("loopdir")
    (tmp_path / "lot" / "002.png").symlink_to(tmp_path / "loopdir" / "x.png")
    with pytest.raises(UserError) as error:
        image_files_below(tmp_path / "lot")
    given = tmp_path / "lot" / "002.png"
    assert_link_loop_line(f"error: {error.value}\n", f"{given}: ", tmp_path / "loopdir")


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


@pytest.mark.parametrize("source", ["~/lot_7", "~/lot_7/*.png", "~/lot_7/**/*.png"])
def test_a_quoted_tilde_in_a_source_is_the_home_folder(tmp_path: Path, monkeypatch, source: str) -> None:
    # --source '~/lot_7/*.png' (quoted, so no shell expanded it) matched nothing: no folder named '~'
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "lot_7").mkdir()
    photo = tmp_path / "lot_7" / "a.png"
    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    assert photo_files(source) == ([photo], tmp_path / "lot_7")
    assert photo_files(Path(source)) == ([photo], tmp_path / "lot_7")
