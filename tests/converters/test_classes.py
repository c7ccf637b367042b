from __future__ import annotations

from pathlib import Path

from converters.classes import class_namer, class_names
from converters.records import UNLABELLED, ImageRecord


def test_class_names_skip_unlabelled_and_good_images():
    records = [
        ImageRecord(Path("a.png"), "nut", "test", "scratch", Path("a_mask.png")),
        ImageRecord(Path("b.png"), "nut", "test", UNLABELLED, unlabelled=True),
        ImageRecord(Path("c.png"), "nut", "train", "good"),
    ]
    names = class_names(
        records, namer=class_namer("{category}_{defect}"), value_names=None, single_class=False
    )
    assert names == ["nut_scratch"]
