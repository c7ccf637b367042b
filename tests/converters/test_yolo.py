from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from converters.convert import ConvertConfig, convert
from converters.masks import DefectInstance, join_instances, mask_to_instances
from converters.yolo import (
    DATA_YAML_HEADER,
    data_yaml,
    instance_to_yolo_line,
    label_rows,
    labels_text,
    repeated_rows_note,
    rings_to_single_polygon,
    xyxy_to_yolo,
    yolo_to_xyxy,
)
from tests.converters.layout_trees import CATEGORY, N_INSTANCES, make_layout_tree, write


def test_box_round_trip():
    box = np.array([3.0, 4.0, 13.0, 24.0])
    yolo = xyxy_to_yolo(box, width=40, height=30)
    assert np.allclose(yolo, [8 / 40, 14 / 30, 10 / 40, 20 / 30])
    assert np.allclose(yolo_to_xyxy(yolo, width=40, height=30), box)


def test_detect_and_segment_lines():
    mask = np.zeros((10, 20), np.uint8)
    mask[2:6, 4:8] = 255
    (inst,) = mask_to_instances(mask, class_name="dent").instances
    assert instance_to_yolo_line(inst, class_id=2, width=20, height=10) == "2 0.3 0.4 0.2 0.4"
    seg = instance_to_yolo_line(inst, class_id=0, width=20, height=10, task="segment").split()
    points = np.array(seg[1:], float).reshape(-1, 2) * [20, 10]
    assert seg[0] == "0" and {tuple(p) for p in points} == {(4, 2), (8, 2), (8, 6), (4, 6)}
    with pytest.raises(ValueError, match="unknown YOLO task"):
        instance_to_yolo_line(inst, class_id=0, width=20, height=10, task="pose")


def test_background_labels_are_empty():
    assert labels_text([], class_ids={}, width=5, height=5) == ""


def rendered_labels(text: str, *, width: int, height: int) -> np.ndarray:
    """``(height, width)`` bool: the YOLO-seg lines of ``text`` drawn as ultralytics draws training masks."""
    from ultralytics.data.utils import polygon2mask

    rendered = np.zeros((height, width), bool)
    for line in text.splitlines():
        points = np.array(line.split()[1:], float).reshape(-1, 2) * [width, height]
        rendered |= polygon2mask((height, width), [points.ravel()], color=1).astype(bool)
    return rendered


def test_a_joined_instance_is_one_yolo_seg_line_per_part_and_one_box():
    # a region file in parts apart (MVTec LOCO) was one ring whose zero-width cut between the parts
    # ultralytics' fillPoly drew as a line of defect pixels across the photo
    mask = np.zeros((200, 200), np.uint8)
    mask[10:30, 10:30] = 255
    mask[170:190, 170:190] = 255
    parts = mask_to_instances(mask).instances
    joined = join_instances(parts)
    text = labels_text([joined], class_ids={"defect": 0}, width=200, height=200, task="segment")
    assert text == labels_text(parts, class_ids={"defect": 0}, width=200, height=200, task="segment")
    rendered = rendered_labels(text, width=200, height=200)
    near = cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0  # fillPoly fills the boundary pixels too
    assert rendered[mask > 0].all() and not (rendered & ~near).any()
    # YOLO detect: one box spanning the parts, as COCO's bbox
    assert labels_text([joined], class_ids={"defect": 0}, width=200, height=200) == "0 0.5 0.5 0.9 0.9\n"


def test_segment_polygon_keeps_holes_when_ultralytics_rasterises_it():
    """A ring with a hole becomes one polygon with a zero-width cut; fillPoly leaves the hole empty."""
    from ultralytics.data.utils import polygon2mask

    mask = np.zeros((40, 40), np.uint8)
    cv2.circle(mask, (20, 20), 15, 255, -1)
    cv2.circle(mask, (20, 20), 6, 0, -1)
    (inst,) = mask_to_instances(mask).instances
    assert inst.has_holes
    scale = 8  # ultralytics rasterises at training resolution; compare there
    ring = rings_to_single_polygon(inst.polygons, inst.holes) * scale
    rendered = polygon2mask((40 * scale, 40 * scale), [ring.ravel()], color=1).astype(bool)
    truth = cv2.resize(mask, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) > 0
    # fillPoly fills its boundary pixels too, which grows any outline by about one pixel
    assert (rendered & truth).sum() / (rendered | truth).sum() > 0.95
    assert not rendered[20 * scale, 20 * scale]  # the hole stays a hole


def test_data_yaml(tmp_path):
    text = data_yaml(root=tmp_path, names=["bent", "color"])
    data = yaml.safe_load(text)
    assert data == {
        "path": str(tmp_path),
        "train": "images/train",
        "val": "images/val",
        "test": "images/test",
        "names": {0: "bent", 1: "color"},
    }


def test_data_yaml_lists_the_splits_asked_for_under_its_header():
    text = data_yaml(root=Path("out").absolute(), names=["bent"], splits=("train", "val"))
    assert text.startswith(DATA_YAML_HEADER)  # the converters' mark on the first line
    assert [key for key in yaml.safe_load(text) if key not in ("path", "names")] == ["train", "val"]


def test_coordinates_are_clipped_to_the_image():
    # a box and ring running past every edge of a 20 x 10 image (a writer gets no promise they fit)
    ring = np.array([[-2.0, -1.0], [22.0, -1.0], [22.0, 12.0], [-2.0, 12.0]])
    inst = DefectInstance(class_name="dent", xyxy=np.array([-2.0, -1.0, 22.0, 12.0]), polygons=[ring])
    # the box clipped to the image, then converted (clipping cx, cy, w, h one by one gave
    # "0 0.5 0.55 1 1": a box reaching 0.05 past the bottom edge)
    assert instance_to_yolo_line(inst, class_id=0, width=20, height=10) == "0 0.5 0.5 1 1"
    corner = DefectInstance(class_name="dent", xyxy=np.array([-4.0, 2.0, 6.0, 14.0]), polygons=[ring])
    assert instance_to_yolo_line(corner, class_id=0, width=20, height=10) == "0 0.15 0.6 0.3 0.8"
    line = instance_to_yolo_line(inst, class_id=0, width=20, height=10, task="segment")
    assert line == "0 0 0 1 0 1 1 0 1"


def test_hole_is_joined_out_and_back_through_its_closest_vertex():
    outer = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    hole = np.array([[6.0, 6.0], [8.0, 6.0], [8.0, 8.0], [6.0, 8.0]])  # off centre: (8, 8) is closest
    ring = rings_to_single_polygon([outer], [hole])
    # the cut (10, 10) -> (8, 8) is walked out and back: the hole's first vertex closes it
    expected = [[0, 0], [10, 0], [10, 10], [8, 8], [6, 8], [6, 6], [8, 6], [8, 8], [10, 10], [0, 10]]
    assert ring.tolist() == expected


def test_hole_is_walked_from_its_closest_vertex_whatever_its_index():
    # the closest vertex (8, 8) is the hole's second: the hole is rolled to start there, not rolled the
    # other way (on a 4-vertex hole that only shows for an odd index)
    outer = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    hole = np.array([[6.0, 8.0], [8.0, 8.0], [8.0, 6.0], [6.0, 6.0]])
    ring = rings_to_single_polygon([outer], [hole])
    expected = [[0, 0], [10, 0], [10, 10], [8, 8], [8, 6], [6, 6], [6, 8], [8, 8], [10, 10], [0, 10]]
    assert ring.tolist() == expected


def test_bridge_over_long_rings_finds_the_closest_pair_of_any_chunk():
    # 3000 vertices: the search runs in chunks of 1024; the closest vertex lies in the middle chunk
    angles = np.linspace(0, 2 * np.pi, 3000, endpoint=False)
    outer = 100 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    hole = np.array([[-80.0, -3.0], [-80.0, 7.0], [-90.0, 7.0], [-90.0, -3.0]])
    distances = ((outer[:, None, :] - hole[None, :, :]) ** 2).sum(-1)  # brute force, all pairs
    i, j = np.unravel_index(np.argmin(distances), distances.shape)
    assert 1024 <= i < 2048 and j != 0 and (distances == distances[i, j]).sum() == 1
    ring = rings_to_single_polygon([outer], [hole])
    assert len(ring) == len(outer) + len(hole) + 2
    np.testing.assert_array_equal(ring[: i + 1], outer[: i + 1])
    np.testing.assert_array_equal(ring[i + 1 : i + 6], np.roll(hole, -j, axis=0)[[0, 1, 2, 3, 0]])
    np.testing.assert_array_equal(ring[i + 6 :], outer[i:])


def test_bridge_searches_the_last_vertex_of_each_chunk():
    # the closest outer vertex is the last of the first chunk of 1024
    angles = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    outer = 100 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    hole = np.array([0.9 * outer[1023], 0.8 * outer[1023], 0.8 * outer[1026], 0.85 * outer[1026]])
    distances = ((outer[:, None, :] - hole[None, :, :]) ** 2).sum(-1)  # brute force, all pairs
    assert np.unravel_index(np.argmin(distances), distances.shape) == (1023, 0)
    ring = rings_to_single_polygon([outer], [hole])
    np.testing.assert_array_equal(ring[:1024], outer[:1024])
    np.testing.assert_array_equal(ring[1024:1029], hole[[0, 1, 2, 3, 0]])
    np.testing.assert_array_equal(ring[1029:], outer[1023:])


def test_an_instance_without_polygons_is_refused():
    with pytest.raises(ValueError, match="no polygon"):
        rings_to_single_polygon([], [])


def test_every_part_of_a_multi_part_instance_is_written():
    def square(x: float, y: float) -> np.ndarray:
        return np.array([[x, y], [x + 2, y], [x + 2, y + 2], [x, y + 2]])

    parts = [square(0, 0), square(4, 4), square(8, 0)]  # three parts of one instance
    inst = DefectInstance(class_name="dent", xyxy=np.array([0.0, 0.0, 10.0, 6.0]), polygons=parts)
    line = labels_text([inst], class_ids={"dent": 0}, width=10, height=8, task="segment")
    points = np.array(line.split()[1:], float).reshape(-1, 2) * [10, 8]
    assert {tuple(p) for p in points} == {tuple(p) for part in parts for p in part}
    assert len(points) == 12 + 2 * 2  # each extra part adds its closing vertex and the way back


def test_labels_text_ends_every_line_with_a_newline():
    one = DefectInstance("a", np.array([0.0, 0.0, 2.0, 2.0]), [np.array([[0, 0], [2, 0], [2, 2]], float)])
    other = DefectInstance("b", one.xyxy, one.polygons)
    text = labels_text([one, other], class_ids={"a": 0, "b": 1}, width=4, height=4)
    assert text == "0 0.25 0.25 0.5 0.5\n1 0.25 0.25 0.5 0.5\n"


def _square_instance(class_name: str, mask: np.ndarray) -> DefectInstance:
    (inst,) = mask_to_instances(mask, class_name=class_name).instances
    return inst


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_a_row_repeating_another_of_its_file_is_written_once(task):
    # two MVTec LOCO region files of one class over one area: one detect row twice, which ultralytics
    # reads as one ("duplicate labels removed", hidden among its log lines); the check counted one fewer
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 255
    dotted = mask.copy()
    dotted[3, 3] = 0  # another region, one box: "hole"
    a, b = _square_instance("a", mask), _square_instance("a", dotted)
    other_class = _square_instance("b", mask)
    rows, repeated = label_rows([a, b, other_class], class_ids={"a": 0, "b": 1}, width=8, height=8, task=task)
    assert repeated == (1 if task == "detect" else 0)  # the outlines differ: ultralytics keeps both rows
    assert len(rows) == 3 - repeated and rows[-1].startswith("1 ")
    rows, repeated = label_rows([a, a], class_ids={"a": 0}, width=8, height=8, task=task)
    assert repeated == 1 and len(rows) == 1
    assert labels_text([a, a], class_ids={"a": 0}, width=8, height=8, task=task) == rows[0] + "\n"


def test_a_loco_conversion_says_which_label_rows_were_left_out_as_repeats(tmp_path):
    root = make_layout_tree(tmp_path, "mvtec_loco")
    folder = root / CATEGORY / "ground_truth" / "logical_anomalies" / "000"
    region = cv2.imread(str(folder / "000.png"), cv2.IMREAD_UNCHANGED)
    region[5, 5] = 0  # a second region file over the first one's area: one box
    write(folder / "001.png", region)
    config = ConvertConfig(root=root, out=tmp_path / "out", progress=False, formats=("yolo", "coco"))
    report = convert(config)
    [label_file] = (tmp_path / "out" / "labels").rglob("*logical_anomalies_000.txt")
    assert len(label_file.read_text().splitlines()) == 1
    shown = label_file.relative_to(tmp_path / "out").as_posix()
    [note] = [note for note in report.notes if "repeat" in note]
    assert note.startswith(f"1 YOLO label row left out as the repeat of another in its file ({shown}): ")
    assert note.endswith("; the COCO annotations keep both")
    assert sum(sum(counts.values()) for counts in report.instances.values()) == N_INSTANCES + 1  # COCO's


def test_the_note_on_repeated_rows_names_the_files_and_the_task_s_shape():
    note = repeated_rows_note([("labels/val/a.txt", 2), ("labels/val/b.txt", 1)], task="segment")
    assert note.startswith("3 YOLO label rows left out as the repeat of another in its file (")
    assert "(labels/val/a.txt, labels/val/b.txt)" in note and "one class with one outline" in note
    assert "COCO" not in note


def test_data_yaml_path_is_absolute_and_names_stay_readable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = data_yaml(root="out", names=["rayure légère", "éclat"])
    assert yaml.safe_load(text)["path"] == str(tmp_path / "out")
    assert "0: rayure légère\n  1: éclat\n" in text


def test_data_yaml_text_is_pinned_byte_for_byte(tmp_path):
    # written through common.config.yaml_text: key order, the header, names unquoted and unescaped
    # (a name YAML would read as a bool or number is quoted)
    text = data_yaml(root=tmp_path / "é", names=["éclat", "yes"], splits=("train", "val"))
    assert text == (
        f"{DATA_YAML_HEADER}path: {tmp_path / 'é'}\ntrain: images/train\nval: images/val\n"
        "names:\n  0: éclat\n  1: 'yes'\n"
    )


def test_data_yaml_path_is_written_as_records_write_it(tmp_path, monkeypatch):
    # Path.absolute() kept '..': path: /w/some/../out (common.io.recorded_path is the records' way)
    monkeypatch.chdir(tmp_path)
    text = data_yaml(root="some/../out", names=["dent"])
    assert yaml.safe_load(text)["path"] == str(tmp_path / "out")


def test_a_data_yaml_naming_its_own_folder_another_way_is_accepted(tmp_path, monkeypatch):
    from common.errors import UserError
    from converters.yolo import check_data_root

    (tmp_path / "ds").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "ds")
    monkeypatch.chdir(tmp_path)
    # relative, through a symlink or with '..': the same folder, compared resolved
    check_data_root(Path("ds/data.yaml"), tmp_path / "ds")
    check_data_root(tmp_path / "link" / "data.yaml", tmp_path / "ds")
    check_data_root(tmp_path / "ds" / "data.yaml", tmp_path / "ds" / ".." / "ds")
    with pytest.raises(UserError, match="has path: .*other, not its own folder"):
        check_data_root(Path("ds/data.yaml"), tmp_path / "other")
    # "~/other" is absolute once expanded, as ultralytics reads it: named as such, not as relative
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(UserError, match=f"has path: {home / 'other'}, not its own folder"):
        check_data_root(Path("ds/data.yaml"), home / "other", written="~/other")


@pytest.mark.parametrize("shape", ["diagonal", "speck", "l-shape"])
def test_a_one_pixel_wide_defect_s_yolo_seg_row_has_an_area(shape):
    # pixel outlines, not pixel-centre contours: converters.validate names a row of no area
    from converters.validation.label_rows import on_one_line

    mask = np.zeros((16, 16), np.uint8)
    if shape == "diagonal":
        np.fill_diagonal(mask[2:14, 2:14], 255)
    elif shape == "speck":
        mask[15, 0] = 255  # touching the border
    else:
        mask[3, 3:12] = mask[3:12, 3] = 255
    text = labels_text(
        mask_to_instances(mask).instances, class_ids={"defect": 0}, width=16, height=16, task="segment"
    )
    [row] = text.splitlines()
    assert not on_one_line(np.array(row.split()[1:], float).reshape(-1, 2) * 16)
