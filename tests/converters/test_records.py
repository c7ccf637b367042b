from __future__ import annotations

import pytest

from common.errors import UserError
from converters.layouts import detect_layout
from converters.mvtec import scan_category
from converters.records import images_by_stem, masks_by_stem, subfolders


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
