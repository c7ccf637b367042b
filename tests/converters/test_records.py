from __future__ import annotations

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
