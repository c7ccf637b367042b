"""Records of an annotation session: the naming rules of classes (here: renaming them)."""

from __future__ import annotations

import pytest

from segmentation.annotate.errors import AnnotationError
from segmentation.annotate.records import renamed_classes


@pytest.mark.parametrize(
    "renames, expected",
    [
        ({"scrach": "scratch"}, ["scratch", "dent", "stain"]),  # a typo fixed, in its place: value 255 stays
        ({"dent": "Dent"}, ["scrach", "Dent", "stain"]),  # its own name but for case
        ({"dent": "stain", "stain": "dent"}, ["scrach", "stain", "dent"]),  # a swap: together, not in turn
        ({"stain": "big stain"}, ["scrach", "dent", "big stain"]),  # a space between words, as --classes
        ({"dent": "dent"}, ["scrach", "dent", "stain"]),  # the same name: nothing changes
    ],
)
def test_renamed_classes_keep_their_places(renames, expected):
    assert renamed_classes(["scrach", "dent", "stain"], renames) == expected


@pytest.mark.parametrize(
    "renames, message",
    [
        ({"scratch": "x"}, "no class 'scratch' to rename: the classes are scrach dent 'big stain'"),
        (
            {"dent": "nul"},
            "bad class name 'nul': Windows keeps the name 'nul'",
        ),  # as --classes: the whole rule
        ({"dent": "a/b"}, "bad class name 'a/b': use letters and digits"),
        ({"dent": "Good"}, "class name 'Good' is reserved by the MVTec layout"),
        ({"dent": "combined"}, "class name 'combined' is reserved"),
        (
            {"dent": "Scrach"},
            "cannot rename class 'dent' to 'Scrach': the class 'scrach' has it (class names",
        ),
        (
            {"dent": "x", "big stain": "X"},
            "cannot rename class 'dent' to 'x': 'big stain' is renamed to it too",
        ),
    ],
)
def test_renamed_classes_refuse_what_classes_refuse(renames, message):
    with pytest.raises(AnnotationError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        renamed_classes(["scrach", "dent", "big stain"], renames)


def test_a_saved_name_windows_cannot_hold_is_kept_beside_a_rename_and_may_be_renamed():
    # saved before the Windows rule ('dent.'): it resumes, so a rename of another class keeps it
    assert renamed_classes(["scrach", "dent."], {"scrach": "scratch"}) == ["scratch", "dent."]
    assert renamed_classes(["scrach", "dent."], {"dent.": "dent"}) == ["scrach", "dent"]
