"""The value-mask convention: class i is pixel value 255 - i, read back by the converters' --mask-values."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError
from converters.classes import load_value_map
from converters.masks import mask_to_rle
from converters.value_masks import (
    MASK_VALUES_FILE,
    MIXED,
    PAGE_STATE_FILE,
    class_values,
    compose_mask,
    defect_folder,
    write_value_map,
    written_by_page,
)


def blob(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = True
    return mask


def test_class_values_and_their_limit():
    assert class_values(["scratch", "dent", "stain"]) == {
        255: "scratch",
        254: "dent",
        253: "stain",
        0: "good",
    }
    assert len(class_values([f"c{i}" for i in range(255)])) == 256  # 255 classes + background: full
    with pytest.raises(UserError, match="at most 255"):
        class_values([f"c{i}" for i in range(256)])


@pytest.mark.parametrize("as_rle", [True, False], ids=["rle", "array"])
def test_compose_mask_paints_in_order(as_rle):
    first = blob((4, 4), (0, 0, 3, 3))
    second = blob((4, 4), (2, 2, 4, 4))  # overlaps the corner pixel (2, 2): the later one wins it
    instances = [("scratch", first), ("dent", second)]
    if as_rle:
        instances = [(name, mask_to_rle(mask)) for name, mask in instances]
    assert compose_mask(instances, classes=["scratch", "dent"], shape=(4, 4)).tolist() == [
        [255, 255, 255, 0],
        [255, 255, 255, 0],
        [255, 255, 254, 254],
        [0, 0, 254, 254],
    ]


@pytest.mark.parametrize(
    ("classes", "shape", "fragment"),
    [
        (["scratch"], (4, 4), "unknown class 'dent'"),
        (["scratch", "dent"], (5, 4), "image is (5, 4)"),
    ],
)
def test_compose_mask_checks_its_input(classes, shape, fragment):
    instances = [("scratch", blob((4, 4), (0, 0, 1, 1))), ("dent", blob((4, 4), (1, 1, 2, 2)))]
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        compose_mask(instances, classes=classes, shape=shape)


def test_compose_mask_refuses_an_instance_of_the_background_class():
    # "good" is value 0 in the value map, but no instance is of it: painting one would erase defects
    instances = [("scratch", blob((4, 4), (0, 0, 2, 2))), ("good", blob((4, 4), (0, 0, 1, 1)))]
    with pytest.raises(UserError, match="unknown class 'good'"):
        compose_mask(instances, classes=["scratch"], shape=(4, 4))


def test_compose_mask_reads_a_0_1_integer_instance_array_as_bool():
    # an integer array indexes rows when used as is: it must be read as pixels, as a bool array is
    instance = blob((4, 4), (1, 1, 3, 2))
    expected = compose_mask([("scratch", instance)], classes=["scratch"], shape=(4, 4))
    assert expected.tolist() == [[0, 0, 0, 0], [0, 255, 255, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    got = compose_mask([("scratch", instance.astype(np.uint8))], classes=["scratch"], shape=(4, 4))
    assert got.tolist() == expected.tolist()


def test_defect_folder():
    assert defect_folder(["dent"]) == "dent"
    assert defect_folder(["dent", "dent"]) == "dent"
    assert defect_folder(["dent", "scratch"]) == MIXED == "combined"
    with pytest.raises(ValueError, match="no defect folder"):
        defect_folder([])


def test_the_value_map_file_reads_back_with_the_converters(tmp_path):
    path = write_value_map(tmp_path / "widget", ["scratch", "dent"])
    assert path == tmp_path / "widget" / MASK_VALUES_FILE
    assert load_value_map(path) == {255: "scratch", 254: "dent", 0: "good"}
    modified = path.stat().st_mtime_ns
    write_value_map(tmp_path / "widget", ["scratch", "dent"])  # unchanged: not rewritten
    assert path.stat().st_mtime_ns == modified
    write_value_map(tmp_path / "widget", ["dent"])
    assert load_value_map(path) == {255: "dent", 0: "good"}


def test_compose_mask_refuses_a_transposed_instance_mask():
    with pytest.raises(UserError, match=r"instance mask is \(3, 2\), image is \(2, 3\)"):
        compose_mask([("scratch", np.ones((3, 2), bool))], classes=["scratch"], shape=(2, 3))


def test_the_pages_tree_is_known_by_its_state_file(tmp_path):
    # the converters name the page's state file themselves: they do not import the page
    from segmentation.annotate.records import STATE_FILE

    assert PAGE_STATE_FILE == STATE_FILE
    (tmp_path / "out" / "widget").mkdir(parents=True)
    assert not written_by_page(tmp_path / "out")
    (tmp_path / "out" / STATE_FILE).write_text("{}")
    assert written_by_page(tmp_path / "out") and written_by_page(tmp_path / "out" / "widget")
    assert not written_by_page(tmp_path)


def test_the_pages_tree_is_known_from_inside_its_category_by_dot_dot(tmp_path, monkeypatch):
    # --root .. from <out>/widget/test: the parent of <out>/widget/test/.. was taken for <out>/widget/test
    (tmp_path / "out" / "widget" / "test").mkdir(parents=True)
    (tmp_path / "out" / PAGE_STATE_FILE).write_text("{}")
    monkeypatch.chdir(tmp_path / "out" / "widget" / "test")
    assert written_by_page("..") and written_by_page("../..")
    assert not written_by_page("../../..")
