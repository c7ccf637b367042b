"""Which images are fit on and scored: the two protocols and the guard between them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from anomaly.data import (
    check_disjoint,
    check_mask_sizes,
    check_size,
    check_sizes,
    data_category,
    eval_records,
    file_hashes,
    fit_records,
    load_records,
    mask_warnings,
    note_skipped,
    read_mask,
    read_masks,
    read_regions,
    read_rgb,
    read_splits,
    refuse_copies,
    refuse_fit_copies,
    root_of_data,
    single_category,
    warn_empty_folders,
)
from common.errors import UserError
from converters.layouts.folder import scan_folders
from converters.mvtec import ImageRecord
from converters.mvtec2yolo import main as convert_main
from converters.splits import Splits, save_splits
from tests.anomaly.conftest import make_parts
from tests.converters.layout_trees import CATEGORY, SIZE, make_layout_tree


def test_mvtec_protocol_fits_on_train_good_and_scores_test(parts: Path) -> None:
    records = load_records(parts.parent, "part")
    fit = fit_records(records)
    scored = eval_records(records)
    assert {r.key for r in fit} == {"part/train/good/000", "part/train/good/001"}
    assert {(r.subset, r.defect) for r in scored} == {("test", "good"), ("test", "spot")}
    check_disjoint([r.key for r in fit], scored)  # disjoint: no error


def test_guard_refuses_a_test_image_in_the_fit_set(parts: Path) -> None:
    records = load_records(parts.parent, "part")
    scored = eval_records(records)
    leaked = [r.key for r in fit_records(records)] + [scored[0].key]
    with pytest.raises(UserError, match=r"refusing to score .*000\.png: the model was fit on it"):
        check_disjoint(leaked, scored)


@pytest.mark.parametrize(
    ("copied", "more"),
    [
        pytest.param(["001"], "", id="one copy"),
        pytest.param(["001", "002"], " (and 1 more)", id="two copies"),
        pytest.param(["000", "001", "002"], " (and 2 more)", id="three copies"),
    ],
)
def test_copies_of_a_fit_photo_are_refused_naming_the_first_and_counting_the_rest(
    parts: Path, copied: list[str], more: str
) -> None:
    # defect photos copied over with a fit photo's bytes: the first scored copy is named, the rest counted
    fit_photo = (parts / "train" / "good" / "001.png").read_bytes()
    for stem in copied:
        (parts / "test" / "spot" / f"{stem}.png").write_bytes(fit_photo)
    records = load_records(parts.parent, "part")
    scored = eval_records(records)
    first = next(r for r in scored if r.defect == "spot" and r.image.stem in copied)
    message = f"refusing to score {first.image}: its bytes are those of part/train/good/001, which the model "
    with pytest.raises(UserError) as error:
        refuse_copies(file_hashes(fit_records(records)), scored)
    assert str(error.value) == f"{message}was fit on{more}; remove the copy from the fit images"


@pytest.mark.parametrize(("copied", "more"), [(["001"], ""), (["001", "002"], " (and 1 more)")])
def test_before_a_fit_copies_are_refused_naming_both_files(parts: Path, copied: list[str], more: str) -> None:
    # anomaly.train: nothing is fit yet, so the fit photo is named by its file, not as one fit on
    fit_photo = parts / "train" / "good" / "001.png"
    for stem in copied:
        (parts / "test" / "spot" / f"{stem}.png").write_bytes(fit_photo.read_bytes())
    records = load_records(parts.parent, "part")
    fit, scored = fit_records(records), eval_records(records)
    refuse_fit_copies(
        fit, [r for r in scored if r.image.stem not in copied or r.defect != "spot"], file_hashes(fit)
    )
    with pytest.raises(UserError) as error:
        refuse_fit_copies(fit, scored, file_hashes(fit))
    first = parts / "test" / "spot" / f"{copied[0]}.png"
    assert str(error.value) == (
        f"refusing to fit on {fit_photo}: its bytes are those of {first}, which evaluation scores{more}; "
        "remove the copy from the fit images"
    )


def test_split_protocol_fits_outside_val_and_test(parts: Path, tmp_path: Path) -> None:
    records = load_records(parts.parent, "part")
    splits = Splits(
        train=["part/test/spot/000", "part/train/good/000"],
        val=["part/test/spot/001"],
        test=["part/test/spot/002", "part/test/good/000"],
    )
    save_splits(splits, tmp_path / "conv" / "splits.json")
    loaded = read_splits(tmp_path / "conv")
    fit = {r.key for r in fit_records(records, loaded)}
    # good images anywhere (train/good and test/good) unless the split holds them out
    assert fit == {"part/train/good/000", "part/train/good/001", "part/test/good/001"}
    assert [r.key for r in eval_records(records, loaded, "test")] == [
        "part/test/good/000",
        "part/test/spot/002",
    ]


def test_split_naming_an_image_that_is_not_there(parts: Path) -> None:
    records = load_records(parts.parent, "part")
    with pytest.raises(UserError, match="lists part/test/spot/999"):
        eval_records(records, Splits(test=["part/test/spot/999"]), "test")


def test_category_without_good_training_images(parts: Path, tmp_path: Path) -> None:
    for path in (parts / "train" / "good").iterdir():
        path.unlink()
    with pytest.raises(UserError, match="has no good images to fit on"):
        fit_records(load_records(parts.parent, "part"))


def test_missing_splits_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no splits.json"):
        read_splits(tmp_path)


def test_a_file_not_named_splits_json_is_refused_naming_it(tmp_path: Path) -> None:
    # it was read as the split record: 'splits file notes.txt: ...' of a file that never was one
    (tmp_path / "notes.txt").write_text("notes\n")
    with pytest.raises(UserError, match=r"notes\.txt is a file, not a data set the converters wrote"):
        read_splits(tmp_path / "notes.txt")


def test_a_splits_file_without_the_category_is_refused(tmp_path: Path) -> None:
    # another data set's split: it held nothing out, so the fit took test/good too, silently
    splits = Splits(train=["screw/train/good/000"], test=["screw/test/spot/000"])
    save_splits(splits, tmp_path / "splits.json")
    assert read_splits(tmp_path, "screw").test == ["screw/test/spot/000"]
    with pytest.raises(
        UserError, match=r"splits\.json lists no image of category 'part' in any split \(it holds screw\)"
    ):
        read_splits(tmp_path, "part")


@pytest.mark.parametrize("given", ["", "data.yaml", "splits.json"])
def test_the_category_of_a_data_set_is_the_one_its_splits_list(
    parts: Path, tmp_path: Path, given: str
) -> None:
    converted = tmp_path / "conv"
    assert convert_main(["--root", str(parts), "--out", str(converted), "--no-progress"]) == 0
    assert data_category(converted / given) == "part" == data_category(converted / given, "part")


def test_a_data_set_listing_no_image_has_no_category(tmp_path: Path) -> None:
    save_splits(Splits(), tmp_path / "splits.json")
    with pytest.raises(UserError, match=r"splits\.json lists no image in any split: --data must be the"):
        data_category(tmp_path)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda root: None, "no category in MVTec layout under"),  # empty: "holds 0 categories"
        (lambda root: (root / "photos").mkdir(), "no category in MVTec layout under"),  # wrong layout
        (lambda root: (make_parts(root), make_parts(root, name="nut")), r"pass --category: .* 2 categories"),
    ],
)
def test_single_category_says_why_there_is_none(tmp_path: Path, make, fragment: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    make(root)
    with pytest.raises(UserError, match=fragment):
        single_category(root)


def test_a_link_loop_beside_the_category_is_passed_over(tmp_path: Path) -> None:
    # --root data/part with a stray data/loop -> loop: the parent, scanned for a category the part is
    # inside of, stopped at "data/loop: Too many levels of symbolic links" and nothing was fit
    parts = make_parts(tmp_path / "data")
    (tmp_path / "data" / "loop").symlink_to("loop")
    assert single_category(parts) == single_category(tmp_path / "data") == parts.name


@pytest.mark.parametrize("inside", ["train/good", "train", "test/spot", "ground_truth/spot"])
def test_a_folder_inside_a_category_names_the_category_folder(tmp_path: Path, inside: str) -> None:
    # --root part/train/good (the good photos to fit on): 'no category in MVTec layout under
    # part/train/good: expected part/train/good/<category>/train/good/ ...', as if nothing were there
    parts = make_parts(tmp_path / "data")
    with pytest.raises(UserError) as error:
        single_category(parts / inside)
    expected = f"{parts / inside} is a folder inside the category {parts}: pass --root {parts}"
    assert str(error.value) == expected


@pytest.mark.parametrize(
    ("shape", "ok"),
    [((512, 512), True), ((522, 512), True), ((512, 470), True), ((600, 512), False), ((256, 256), False)],
)
def test_size_tolerance(shape: tuple[int, int], ok: bool) -> None:
    image = np.zeros((*shape, 3), np.uint8)
    if ok:
        assert check_size(image, (512, 512), "x.png") == (512, 512)
    else:
        with pytest.raises(UserError, match=r"x\.png is .* fit on 512x512"):
            check_size(image, (512, 512), "x.png")


def test_sizes_are_checked_from_headers_before_any_work(tmp_path: Path) -> None:
    good, odd, broken = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    cv2.imwrite(str(good), np.zeros((40, 50, 3), np.uint8))
    cv2.imwrite(str(odd), np.zeros((40, 80, 3), np.uint8))
    broken.write_bytes(b"not a png")
    assert check_sizes([good, good]) == (40, 50)
    # fitting: nothing is fit yet, so both images are named (the first may be the odd one)
    with pytest.raises(
        UserError, match=r"^the images to fit on differ in size: .*b\.png is 80x40, .*a\.png is 50x40 "
    ):
        check_sizes([good, odd])
    with pytest.raises(
        UserError, match=r"^the images to fit on differ in size: .*a\.png is 50x40, .*b\.png is 80x40 "
    ):
        check_sizes([odd, good])
    # scoring: the run's size
    with pytest.raises(UserError, match=r"b\.png is 80x40 but the model was fit on 50x40"):
        check_sizes([good, odd], (40, 50))
    with pytest.raises(UserError, match=r"cannot read image .*c\.png"):
        check_sizes([good, broken])


def test_every_image_whose_header_does_not_read_is_named_in_one_line(tmp_path: Path) -> None:
    # check_sizes stopped at the first: a user with three broken photos learnt of them one run at a time
    good, odd = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(good), np.zeros((40, 50, 3), np.uint8))
    cv2.imwrite(str(odd), np.zeros((40, 80, 3), np.uint8))
    broken = [tmp_path / f"c{index}.png" for index in range(4)]
    for path in broken:
        path.write_bytes(b"not a png")
    reason = "corrupt or not an image (PIL cannot identify it)"
    named = ", ".join(f"{path} ({reason})" for path in broken[:3])
    for expected in (None, (40, 50)):  # fitting and scoring; the odd one among them is named once they read
        with pytest.raises(UserError) as error:
            check_sizes([good, broken[0], odd, *broken[1:]], expected)
        assert str(error.value) == f"cannot read 4 photos: {named} and 1 more"
    with pytest.raises(UserError) as error:  # one alone: its own line, as before
        check_sizes([good, broken[0]])
    assert str(error.value) == f"cannot read image {broken[0]}: {reason}"


def turned_jpeg(path: Path, height: int, width: int) -> Path:
    """A JPEG stored ``height x width`` whose EXIF orientation 6 turns it to ``width x height`` on reading."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (width, height)).save(path, exif=exif)
    return path


def test_header_sizes_are_the_sizes_photos_are_read_at(tmp_path: Path) -> None:
    # a phone photo taken sideways: stored 40 x 50, read (OpenCV) 50 x 40, like its upright neighbour
    upright, turned = tmp_path / "a.png", turned_jpeg(tmp_path / "b.jpg", 40, 50)
    cv2.imwrite(str(upright), np.zeros((50, 40, 3), np.uint8))
    assert cv2.imread(str(turned)).shape[:2] == (50, 40)
    assert check_sizes([upright, turned]) == (50, 40)
    assert check_sizes([turned, upright]) == (50, 40)


def test_a_turned_defect_image_with_a_mask_is_refused(parts: Path) -> None:
    record = next(r for r in load_records(parts.parent, "part") if r.mask_files)
    height, width = cv2.imread(str(record.image)).shape[:2]
    turned_jpeg(record.image, width, height)  # a mask drawn on the stored pixels would be read crosswise
    with pytest.raises(UserError, match=f"{record.image.name} has an EXIF orientation tag"):
        read_mask(record, (height, width))


def tagged_tiff_mask(record_mask: Path, orientation: int) -> Path:
    """``record_mask`` (a PNG) saved in its place as a TIFF with EXIF orientation ``orientation``."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    tiff = record_mask.with_suffix(".tif")
    with Image.open(record_mask) as mask:
        mask.save(tiff, exif=exif)
    record_mask.unlink()
    return tiff


@pytest.mark.parametrize("orientation", [6, 3, 2])
def test_a_tiff_mask_turned_by_its_exif_tag_is_refused(parts: Path, orientation: int) -> None:
    # OpenCV's TIFF decoder turns a tagged mask even with IMREAD_IGNORE_ORIENTATION: a square one passed
    # the size check and was scored turned under its upright photo
    first = next(r for r in load_records(parts.parent, "part") if r.mask_files)
    tiff = tagged_tiff_mask(first.mask_files[0], orientation)
    record = next(r for r in load_records(parts.parent, "part") if r.image == first.image)
    assert list(record.mask_files) == [tiff]
    message = f"^mask {re.escape(str(tiff))} has an EXIF orientation tag \\({orientation}\\): OpenCV turns"
    with pytest.raises(UserError, match=message):
        check_mask_sizes([record])
    with pytest.raises(UserError, match=message):
        read_mask(record, (64, 64))


def test_a_tiff_mask_tagged_upright_is_read(parts: Path) -> None:
    first = next(r for r in load_records(parts.parent, "part") if r.mask_files)
    expected = read_mask(first, (64, 64))
    tagged_tiff_mask(first.mask_files[0], 1)
    record = next(r for r in load_records(parts.parent, "part") if r.image == first.image)
    check_mask_sizes([record])
    np.testing.assert_array_equal(read_mask(record, (64, 64)), expected)


@pytest.mark.parametrize(
    "layout", ["mvtec_ad", "mvtec_ad2", "mvtec_3d", "mvtec_loco", "visa", "btad", "kolektor_sdd2"]
)
def test_mvtec_protocol_reads_every_layout_the_converters_read(tmp_path: Path, layout: str) -> None:
    records = load_records(make_layout_tree(tmp_path, layout), CATEGORY)
    fit, scored = fit_records(records), eval_records(records)
    assert fit and all(r.is_good and r.layout_split == "train" for r in fit)
    assert {r.layout_split for r in scored} == {"test"}
    assert any(not r.is_good for r in scored)  # AD 2's test_public/bad, VisA's Anomaly/ ...
    check_disjoint([r.key for r in fit], scored)
    for record in (r for r in scored if not r.is_good):
        # every region file counts: LOCO keeps one per region
        expected = np.zeros(SIZE, bool)
        for path in record.mask_files:
            expected |= cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0
        np.testing.assert_array_equal(read_mask(record, SIZE), expected)
        # each region file apart (one ground-truth instance each), their union the mask
        regions = read_regions(record, SIZE)
        assert len(regions) == len(record.masks) == (len(record.mask_files) if layout == "mvtec_loco" else 0)
        if regions:
            np.testing.assert_array_equal(np.logical_or.reduce(regions), expected)


def _empty_3d_gt(category: Path) -> str:
    for mask in (category / "test" / "crack" / "gt").iterdir():
        mask.unlink()
    return ""


def _empty_3d_type(category: Path) -> str:
    for folder in ("rgb", "gt"):
        (category / "test" / "dent" / folder).mkdir(parents=True)
    return f"empty folder {category / 'test' / 'dent' / 'rgb'}: no photos, so no 'dent' photos are scored"


def _empty_folder_masks(category: Path) -> str:
    for mask in (category / "masks").iterdir():
        mask.unlink()
    return ""


def _empty_folder_good(category: Path) -> str:
    for photo in (category / "good").iterdir():
        photo.unlink()
    return f"empty folder {category / 'good'}: no photos, so no good photos are scored"


def _empty_ad_type(category: Path) -> str:
    (category / "test" / "dent").mkdir()
    return f"empty folder {category / 'test' / 'dent'}: no photos, so no 'dent' photos are scored"


def _empty_folder_images(category: Path) -> str:
    # warned "'images' is not scored (add them or remove it)": the type is 'defect', and without images/
    # the folder is no data set of the layout
    for folder in ("images", "masks"):
        for path in (category / folder).iterdir():
            path.unlink()
    return f"empty folder {category / 'images'}: no photos, so no 'defect' photos are scored (add them)"


def _empty_visa_anomaly(category: Path) -> str:
    (category.parent / "split_csv" / "1cls.csv").unlink()
    for folder in ("Images", "Masks"):
        for path in (category / "Data" / folder / "Anomaly").iterdir():
            path.unlink()
    anomaly = category / "Data" / "Images" / "Anomaly"
    return f"empty folder {anomaly}: no photos, so no 'anomaly' photos are scored"


@pytest.mark.parametrize(
    ("layout", "empty"),
    [
        ("mvtec_3d", _empty_3d_gt),  # warned "'gt' is not scored": no defect type
        ("mvtec_3d", _empty_3d_type),  # not warned: the type's photos lie in its rgb/
        ("folder", _empty_folder_masks),  # warned "'masks' is not scored"
        ("folder", _empty_folder_good),
        ("mvtec_ad", _empty_ad_type),
        ("folder", _empty_folder_images),
        ("visa", _empty_visa_anomaly),  # warned "'Anomaly' is not scored"
    ],
)
def test_an_empty_folder_is_warned_of_only_where_it_is_a_layouts_defect_type_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture, layout: str, empty
) -> None:
    # the warning looked for empty folders beside each photo's folder: one level too low for MVTec 3D-AD
    # (photos in <type>/rgb/), and beside the folder layout's images/ its masks/ too
    category = make_layout_tree(tmp_path, layout) / CATEGORY
    expected = empty(category)
    capsys.readouterr()
    warn_empty_folders(load_records(category.parent, CATEGORY))
    remedy = "" if expected.endswith("(add them)") else " (add them or remove it)"
    lines = [f"warning: {expected}{remedy}"] if expected else []
    assert [line for line in capsys.readouterr().err.splitlines() if "empty folder" in line] == lines


def test_each_of_several_empty_folders_claims_only_what_its_own_type_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # one line named the first of several ('2 empty folders, e.g. ...') and claimed of its type alone: here
    # the first, test/good/, claimed nothing (train/good/ holds good photos) and 'scratch' went unsaid
    category = make_layout_tree(tmp_path, "mvtec_ad") / CATEGORY
    for photo in (category / "test" / "good").iterdir():
        photo.unlink()
    (category / "test" / "scratch").mkdir()
    capsys.readouterr()
    warn_empty_folders(load_records(category.parent, CATEGORY))
    assert [line for line in capsys.readouterr().err.splitlines() if "empty folder" in line] == [
        f"warning: empty folder {category / 'test' / 'good'}: no photos (add them or remove it)",
        f"warning: empty folder {category / 'test' / 'scratch'}: no photos, so no 'scratch' photos are "
        "scored (add them or remove it)",
    ]


def test_an_empty_folder_beside_folders_given_as_images_and_masks_is_no_defect_type(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # --images / --masks / --good name folders anywhere: the folders beside them are no part of the data set
    category = make_layout_tree(tmp_path, "folder") / CATEGORY
    (tmp_path / "lot" / "old").mkdir(parents=True)
    shutil.move(category / "images", tmp_path / "lot" / "photos")
    warn_empty_folders(scan_folders(tmp_path / "lot" / "photos", category / "masks", category="lot"))
    assert "empty folder" not in capsys.readouterr().err


def test_mvtec_protocol_refuses_a_layout_without_train_and_test(tmp_path: Path) -> None:
    records = load_records(make_layout_tree(tmp_path, "folder"), CATEGORY)
    with pytest.raises(UserError, match=r"folder layout does not say which images are train or test"):
        fit_records(records)


@pytest.mark.parametrize(("layout", "marker"), [("folder", "images"), ("mvtec_ad", "splits.json")])
def test_an_image_tree_with_one_mark_of_a_converter_output_is_read(
    tmp_path: Path, layout: str, marker: str
) -> None:
    # a converter output has both splits.json and images/; the folder layout keeps its defect photos in
    # images/, and a splits.json alone (the --splits file kept beside the tree) makes no output
    category = make_layout_tree(tmp_path, layout) / CATEGORY
    if marker == "splits.json":
        (category / "splits.json").write_text("{}")
    assert (category / marker).exists() and single_category(category) == CATEGORY
    assert any(r.is_good for r in load_records(category, CATEGORY))


CONVERT = r"convert it first \(python -m converters\.mvtec2yolo --root \.\.\. --out DIR\) and "


@pytest.mark.parametrize(
    ("read", "then"),
    [
        # anomaly.train has no --split: the fit's message sent users to "--data DIR --split test",
        # which it refused as an unrecognized argument
        (fit_records, "pass it to anomaly.train as --data DIR"),
        (eval_records, "pass --data DIR --split test"),
    ],
)
def test_a_layout_without_train_and_test_names_the_readers_options(tmp_path: Path, read, then: str) -> None:
    records = load_records(make_layout_tree(tmp_path, "folder"), CATEGORY)
    with pytest.raises(UserError, match=CONVERT + then + "$"):
        read(records)


def test_a_turned_good_image_is_not_refused(parts: Path) -> None:
    record = next(r for r in load_records(parts.parent, "part") if not r.mask_files)
    height, width = cv2.imread(str(record.image)).shape[:2]
    turned_jpeg(record.image, height, width)
    assert not read_mask(record, (height, width)).any()


def test_photos_are_read_as_rgb(tmp_path: Path) -> None:
    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[:, :, 2] = 200  # red, in OpenCV's channel order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    image = read_rgb(tmp_path / "red.png")
    assert image.shape == (4, 6, 3) and image.dtype == np.uint8
    assert (image[:, :, 0] == 200).all() and (image[:, :, 2] == 0).all()


def test_a_side_exactly_the_tolerance_away_is_accepted() -> None:
    assert check_size(np.zeros((550, 450, 3), np.uint8), (500, 500), "x.png") == (500, 500)


@pytest.mark.parametrize(
    ("value_names", "warned"),
    [
        pytest.param((), "1 beside 255", id="no value map: faint"),
        pytest.param(((1, "crack"), (255, "hole")), None, id="a 3D-AD class_ids.json: a class"),
    ],
)
def test_the_values_a_value_map_names_are_classes_not_faint_ones(
    tmp_path: Path, value_names: tuple, warned: str | None
) -> None:
    # as the converters take them: a small class 1 region beside a 255 one read as JPEG's ringing warned
    # "as masks once saved as JPEG do ... save them as 0/255" of masks whose layout names both values
    image, mask = tmp_path / "000.png", tmp_path / "000_mask.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    pixels = np.zeros((32, 32), np.uint8)
    pixels[4:20, 4:20] = 255  # hole: 256 px
    pixels[26:28, 4:12] = 1  # 16 px, fewer than half the hole's
    cv2.imwrite(str(mask), pixels)
    record = ImageRecord(image, "part", "test", "hole", mask, layout="mvtec_3d", value_names=value_names)
    faint = f"1 mask holds faint defect values beside their largest, e.g. {mask} ({warned})"
    assert [line.startswith(faint) for line in mask_warnings([record])] == ([True] if warned else [])


def test_ringing_beside_a_value_maps_classes_is_refused_as_a_conversion_refuses_it(tmp_path: Path) -> None:
    # a value the 3D-AD class_ids.json does not name (JPEG's ringing of 2 beside its classes 1 and 255) was
    # warned of as faint and scored as defect pixels, where a conversion refuses the mask
    image, mask = tmp_path / "000.png", tmp_path / "000_mask.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    pixels = np.zeros((32, 32), np.uint8)
    pixels[4:20, 4:20] = 255  # hole: 256 px
    pixels[22:24], pixels[26:28], pixels[30:32] = 1, 1, 1  # crack: 192 px, 2 px thin
    pixels[2, 4:20:4] = 2  # ringing
    cv2.imwrite(str(mask), pixels)
    names = ((1, "crack"), (255, "hole"))
    record = ImageRecord(image, "part", "test", "hole", mask, layout="mvtec_3d", value_names=names)
    refused = re.escape(f"{mask}: mask value 2 is not in the layout's value map (known: 1, 255)")
    with pytest.raises(UserError, match=f"^{refused}$"):
        mask_warnings([record])


@pytest.mark.parametrize(
    ("class_ids", "refused"),
    [
        pytest.param({"255": "crack", "128": "good"}, None, id="a value named good: background"),
        pytest.param({"255": "crack"}, "mask value 128 is not in {map} (known: 0, 255)", id="unnamed"),
    ],
)
def test_a_3d_ad_mask_is_read_by_its_class_ids_json_as_a_conversion_reads_it(
    tmp_path: Path, capsys, class_ids: dict, refused: str | None
) -> None:
    # every value > 0 was defect here: a value class_ids.json names good (background in a conversion) was
    # scored as defect pixels, and one it does not name (refused by a conversion) as well
    root = make_layout_tree(tmp_path, "mvtec_3d")
    class_map = root / CATEGORY / "class_ids.json"
    class_map.write_text(json.dumps(class_ids))
    gt = root / CATEGORY / "test" / "crack" / "gt" / "001.png"
    pixels = cv2.imread(str(gt), cv2.IMREAD_GRAYSCALE)
    pixels[20:, 20:] = np.where(pixels[20:, 20:] > 0, 128, 0)  # the second blob: value 128
    cv2.imwrite(str(gt), pixels)
    converted = convert_main(["--root", str(root), "--out", str(tmp_path / "conv"), "--no-progress"])
    record = next(r for r in load_records(root, CATEGORY) if r.mask == gt)
    if refused is None:
        assert converted == 0
        np.testing.assert_array_equal(read_mask(record, SIZE), pixels == 255)
        assert mask_warnings([record]) == []
        return
    message = f"{gt}: " + refused.format(map=class_map)
    assert converted != 0 and message in capsys.readouterr().err
    for read in (lambda: read_mask(record, SIZE), lambda: mask_warnings([record])):
        with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
            read()


def test_a_jpeg_mask_whose_values_its_class_ids_json_lacks_is_refused_before_scoring(tmp_path: Path) -> None:
    # was only named as a JPEG file ('every value > 0 is defect'): its ringing values, which the value map
    # lacks, were refused by read_mask once the scoring reached the photo, every photo before it scored
    root = make_layout_tree(tmp_path, "mvtec_3d")
    class_map = root / CATEGORY / "class_ids.json"
    class_map.write_text(json.dumps({"255": "crack"}))
    gt = root / CATEGORY / "test" / "crack" / "gt" / "001.png"
    jpeg = gt.with_suffix(".jpg")
    cv2.imwrite(str(jpeg), cv2.imread(str(gt), cv2.IMREAD_GRAYSCALE), [cv2.IMWRITE_JPEG_QUALITY, 90])
    gt.unlink()
    record = next(r for r in load_records(root, CATEGORY) if r.mask == jpeg)
    refused = (
        f"^{re.escape(str(jpeg))}: mask value \\d+ is not in {re.escape(str(class_map))} \\(known: 0, 255\\)$"
    )
    for read in (lambda: read_mask(record, SIZE), lambda: mask_warnings([record])):  # before any is scored
        with pytest.raises(UserError, match=refused):
            read()


@pytest.mark.parametrize("progress", [True, False])
def test_the_masks_read_for_the_warnings_are_read_behind_a_progress_bar(
    tmp_path: Path, capsys, progress
) -> None:
    # every defect mask is decoded before the scoring decodes it again: minutes on a large split, silently
    records = []
    for name in ("000", "001"):
        image, mask = tmp_path / f"{name}.png", tmp_path / f"{name}_mask.png"
        cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(mask), np.full((8, 8), 255, np.uint8))
        records.append(ImageRecord(image, "part", "test", "hole", mask))
    good = ImageRecord(tmp_path / "000.png", "part", "test", "good")  # no mask: nothing to read
    assert mask_warnings([*records, good], progress=progress) == []
    assert ("reading masks: 100%" in (err := capsys.readouterr().err) and "2/2" in err) == progress


@pytest.mark.parametrize("given", ["", "data.yaml", "splits.json"])
def test_the_recorded_root_is_read_whichever_spelling_of_the_data_set_is_given(
    parts: Path, tmp_path: Path, given: str
) -> None:
    # --data conv/splits.json (docs/anomaly.md: 'DIR or its data.yaml or splits.json') was told 'pass --root:
    # conv/splits.json records no MVTec root', though conv's COCO files record it
    converted = tmp_path / "conv"
    assert convert_main(["--root", str(parts), "--out", str(converted), "--coco", "--no-progress"]) == 0
    assert root_of_data(converted / given) == parts


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        pytest.param((128,), "no defect value in the mask", id="one file, its value named good"),
        pytest.param((128, 128), "no defect value in the mask", id="two region files, each named good"),
        pytest.param((128, 255), None, id="a region file holding a defect"),
        pytest.param((0,), "empty mask", id="an empty mask"),
        pytest.param((0, 0), "empty mask", id="two region files, both empty"),
        pytest.param((0, 255), None, id="an empty region file beside one holding a defect"),
    ],
)
def test_a_defect_photo_is_left_out_where_its_mask_holds_no_defect_value(
    tmp_path: Path, capsys, values: tuple[int, ...], reason: str | None
) -> None:
    # it was scored as a defect photo with an empty mask, where a conversion skips it
    image = tmp_path / "000.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    masks = []
    for index, value in enumerate(values):  # MVTec LOCO: one file per region
        masks.append(tmp_path / f"{index:03d}.png")
        cv2.imwrite(str(masks[-1]), np.pad(np.full((2, 2), value, np.uint8), 3))
    names = ((128, "good"), (255, "crack"))
    record = ImageRecord(
        image, "part", "test", "crack", masks=tuple(masks), layout="mvtec_loco", value_names=names
    )
    good = ImageRecord(image, "part", "test", "good", layout="mvtec_loco", value_names=names)
    assert note_skipped(read_masks([good, record])) == ([good, record] if reason is None else [good])
    note = f"note: 1 defect photo not scored, as a conversion skips it: {reason}"
    assert capsys.readouterr().err.startswith(note) == (reason is not None)


def test_a_defect_photo_whose_mask_is_all_zero_is_left_out_without_a_value_map(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # MVTec AD: a ground_truth mask saved all black; a conversion skips its photo ('empty mask'), anomaly
    # scored it as a defect photo without a defect pixel. Two such photos: one note, counting both
    image = tmp_path / "000.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    empty, spot = tmp_path / "empty.png", tmp_path / "spot.png"
    cv2.imwrite(str(empty), np.zeros((8, 8), np.uint8))
    cv2.imwrite(str(spot), np.pad(np.full((2, 2), 255, np.uint8), 3))
    records = [
        ImageRecord(image, "part", "test", "spot", mask=empty),
        ImageRecord(image, "part", "test", "spot", mask=spot),
        ImageRecord(image, "part", "test", "spot", mask=empty),
        ImageRecord(image, "part", "test", "spot", mask=None, mask_missing=True),  # not labelled yet: scored
    ]
    assert note_skipped(read_masks(records), left_out="of split 'val' not used") == records[1::2]
    assert capsys.readouterr().err.splitlines() == [
        f"note: 2 defect photos of split 'val' not used, as a conversion skips them: empty mask "
        f"(e.g. {empty})"
    ]
