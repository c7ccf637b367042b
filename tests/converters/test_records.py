from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import UserError
from converters.convert import ConvertConfig, convert
from converters.layouts import detect_layout
from converters.mvtec import list_categories, scan_category
from converters.records import (
    MAX_STEM_BYTES,
    ImageRecord,
    has_subfolder,
    images_by_stem,
    masks_by_stem,
    output_stem,
    subfolders,
)
from converters.validation import validate


def test_hidden_files_and_folders_are_not_part_of_the_data_set(tmp_path, category_factory):
    category = category_factory(tmp_path, "widget")
    hole = category / "test" / "hole"
    # macOS's AppleDouble resource forks: an image suffix, not an image
    (hole / "._001.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (category / "ground_truth" / "hole" / "._001_mask.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    # Jupyter's checkpoint copies: a hidden folder beside the defect types, a photo without a mask in it
    checkpoints = category / "test" / ".ipynb_checkpoints"
    checkpoints.mkdir()
    (checkpoints / "001-checkpoint.png").write_bytes((hole / "001.png").read_bytes())
    assert "._001" not in images_by_stem(hole)
    assert "._001" not in masks_by_stem(category / "ground_truth" / "hole")
    assert checkpoints not in subfolders(category / "test")
    records = scan_category(tmp_path, "widget")
    assert len(records) == 4 + 2 + 10
    assert not any(part.startswith(".") for r in records for part in r.image.parts[-3:])


def test_a_link_loop_in_a_scanned_folder_is_passed_over(tmp_path, category_factory, link_loop):
    """A link loop (``loop -> loop``) leads to no folder, as a broken link does: passed over as the photo
    listing passes it. Each scan of a folder holding one (the data root, a category's test/) stopped at
    'Too many levels of symbolic links': a stray one beside a category stopped anomaly.train and the
    converters given the category, whose parent is scanned for the layouts."""
    category = category_factory(tmp_path, "widget")  # link_loop is tmp_path/loop, beside it
    (category / "test" / "loop").symlink_to("loop")
    assert subfolders(tmp_path) == [category]
    assert has_subfolder(tmp_path)
    assert list_categories(tmp_path) == list_categories(category) == ["widget"]
    assert detect_layout(tmp_path / "widget").name == "mvtec_ad"
    assert len(scan_category(tmp_path, "widget")) == 4 + 2 + 10


def test_a_hidden_folder_in_a_mask_folder_does_not_make_the_category_mvtec_loco(tmp_path, category_factory):
    # Jupyter's .ipynb_checkpoints in ground_truth/hole/ passed for LOCO's ground_truth/<type>/<stem>/:
    # the MVTec AD category was read as MVTec LOCO AD and refused ("defect image has no mask folder")
    category = category_factory(tmp_path, "widget")
    (category / "ground_truth" / "hole" / ".ipynb_checkpoints").mkdir()
    assert detect_layout(category).name == "mvtec_ad"
    assert len(scan_category(tmp_path, "widget")) == 4 + 2 + 10


def test_a_broken_link_to_a_photo_or_mask_is_one_line_naming_it(tmp_path, category_factory):
    """A good photo behind a dead link left the data set without a word; a defect photo's
    was reported as its mask having no image."""
    category = category_factory(tmp_path, "widget")
    gone = tmp_path / "share" / "gone.png"  # never written
    for link in ("train/good/011.png", "test/hole/011.png", "ground_truth/hole/000_mask.png"):
        path = category / link
        saved = path.read_bytes() if path.exists() else None
        path.unlink(missing_ok=True)
        path.symlink_to(gone)
        with pytest.raises(UserError, match=rf"broken link: .*{link} points to .*share/gone.png"):
            scan_category(tmp_path, "widget")
        path.unlink()
        if saved is not None:
            path.write_bytes(saved)
    assert len(scan_category(tmp_path, "widget")) == 4 + 2 + 10


@pytest.mark.parametrize(
    ("gone", "folder", "told"),
    [
        # a folder of the mask's name: "expected .../000_mask.png" asked for what was there
        (["000"], True, "{hole}/000.png ({masks}/000_mask.png is a folder, not a mask file)"),
        (
            ["000", "001"],
            True,
            "{hole}/000.png ({masks}/000_mask.png is a folder, not a mask file) (and 1 more)",
        ),
        # the other images without a mask counted, as the masks without an image are
        (["001", "002"], False, "{hole}/001.png (expected {masks}/001_mask.png) (and 1 more)"),
    ],
    ids=["folder", "folder and one more", "two missing"],
)
def test_a_defect_image_without_its_mask_file_says_what_is_there_and_how_many_more(
    tmp_path, category_factory, gone, folder, told
):
    category = category_factory(tmp_path, "widget")
    masks = category / "ground_truth" / "hole"
    for stem in gone:
        (masks / f"{stem}_mask.png").unlink()
    if folder:
        (masks / "000_mask.png").mkdir()
    told = told.format(hole=category / "test" / "hole", masks=masks)
    with pytest.raises(UserError, match=f"^{re.escape(f'defect image has no mask: {told}')}$"):
        scan_category(tmp_path, "widget")


def test_a_short_output_stem_is_the_key_with_underscores():
    assert output_stem("widget/test/hole/000") == "widget_test_hole_000"
    assert (
        ImageRecord(Path("d/test/hole/000.png"), "widget", "test", "hole").output_stem
        == "widget_test_hole_000"
    )


@pytest.mark.parametrize("letter", ["x", "傷"], ids=["ascii", "three_byte_letters"])
def test_a_long_output_stem_is_cut_to_fit_a_file_name_and_kept_apart_by_a_hash(letter):
    # 'File name too long' at the annotation page's export: a category, a class and a 180-byte photo stem
    long = "widget/test/" + "scratch" * 10 + "/" + letter * 180
    first, second = output_stem(long + "_001"), output_stem(long + "_002")  # differ only at their end
    middle = output_stem(long.replace("scratch" * 10, "scratcH" * 10) + "_001")  # only in the middle
    assert len({first, second, middle}) == 3
    for stem in (first, second, middle):
        assert len(stem.encode()) <= MAX_STEM_BYTES and len((stem + ".jpeg").encode()) <= 255
        assert re.fullmatch(r"widget_test_scratc[hH]+.*-[0-9a-f]{12}-.*" + letter + "_00[12]", stem)
        assert set(stem) <= set(long + "_0123456789abcdef-scratcH")  # no character cut in two, none made up
    assert output_stem(long + "_001") == first  # the same name again, as in another run


def test_a_data_set_with_long_names_converts_within_255_bytes_per_file(tmp_path, category_factory):
    category = category_factory(tmp_path / "data", "w" * 60, defects={})
    defect = "d" * 60
    source = category / "test" / "good" / "000.png"
    for end in ("a", "b"):
        photo = category / "test" / defect / f"{'p' * 150}_{end}.png"
        photo.parent.mkdir(parents=True, exist_ok=True)
        photo.write_bytes(source.read_bytes())
        mask = category / "ground_truth" / defect / f"{photo.stem}_mask.png"
        mask.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(mask), np.pad(np.full((8, 8), 255, np.uint8), ((4, 36), (4, 52))))
    names = []
    for out in ("out", "again"):
        convert(
            ConvertConfig(
                root=tmp_path / "data", out=tmp_path / out, formats=("yolo", "coco"), progress=False
            )
        )
        names.append(sorted(path.name for path in (tmp_path / out).rglob("*") if path.is_file()))
        assert all(len(name.encode()) <= 255 for name in names[-1])
        results = validate(tmp_path / out)
        assert [c.problems for fmt in results.values() for c in fmt.values()] == [[]] * 6
    long_images = [name for name in names[0] if name.endswith(".png") and len(name) > 150]
    assert len(long_images) == 2 and names[0] == names[1]
