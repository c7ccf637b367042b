from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from common.errors import UserError
from converters.masks import (
    crop_to_rle,
    join_instances,
    mask_to_instances,
    mask_to_polygons,
    mask_to_rle,
    mask_to_xyxy,
    merge_masks,
    polygons_to_mask,
    read_mask,
    region_file_instances,
    rle_counts,
    rle_to_mask,
    rle_to_xyxy,
    segmentation_to_mask,
)
from tests.converters.text_masks import m


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize(
    ("rows", "boxes", "areas", "n_holes"),
    [
        (["#"], [[0, 0, 1, 1]], [1], 0),  # one pixel filling the image
        ([".....", "..#..", "....."], [[2, 1, 3, 2]], [1], 0),  # one pixel
        (
            ["#...", ".#..", "..#.", "...#"],
            [[0, 0, 4, 4]],
            [4],
            0,
        ),  # diagonal-only touch: one 8-connected region
        (["###", "#.#", "###"], [[0, 0, 3, 3]], [8], 1),  # hole
        (["##..#", "##..#", "....."], [[0, 0, 2, 2], [4, 0, 5, 2]], [4, 2], 0),  # two blobs
        ([".....", "....#", "....#"], [[4, 1, 5, 3]], [2], 0),  # touching border
        (["#####"], [[0, 0, 5, 1]], [5], 0),  # one-pixel-wide line
        (
            ["#####", "#...#", "#.#.#", "#...#", "#####"],
            [[0, 0, 5, 5], [2, 2, 3, 3]],
            [16, 1],
            1,
        ),  # blob in a hole
    ],
)
def test_instances_of_hand_made_masks(rows, boxes, areas, n_holes):
    mask = m(rows)
    found = mask_to_instances(mask, class_name="scratch")
    got = sorted((inst.xyxy.tolist(), inst.area) for inst in found.instances)
    assert got == sorted(zip(boxes, areas, strict=True))
    assert sum(len(inst.holes) for inst in found.instances) == n_holes
    height, width = mask.shape
    for inst in found.instances:
        assert inst.class_name == "scratch"
        pixels = rle_to_mask(inst.rle)
        assert pixels.sum() == inst.area
        # rings in pixel-edge coordinates render back exactly on these shapes
        assert np.array_equal(
            polygons_to_mask(inst.polygons, holes=inst.holes, height=height, width=width), pixels
        )
        for ring in inst.polygons + inst.holes:
            assert ring.shape[1] == 2 and len(ring) >= 3
            assert (ring >= 0).all() and (ring[:, 0] <= width).all() and (ring[:, 1] <= height).all()


def test_empty_mask_has_no_instances():
    assert mask_to_instances(np.zeros((8, 8), np.uint8)).instances == []


def test_min_area_drops_and_counts_small_regions():
    mask = m(["##...", "##..#", "....."])  # a 4-px blob and a 1-px speck
    found = mask_to_instances(mask, min_area=2)
    assert [inst.area for inst in found.instances] == [4]
    assert found.n_small == 1


def test_value_coded_mask_splits_classes():
    # two touching regions of different values are two instances of two classes
    mask = np.array([[255, 255, 254, 0], [255, 255, 254, 0], [0, 0, 0, 253]], np.uint8)
    names = {255: "contamination", 254: "cut", 253: "hole", 0: "good"}
    found = mask_to_instances(mask, value_names=names)
    assert sorted((i.class_name, i.area, i.value) for i in found.instances) == [
        ("contamination", 4, 255),
        ("cut", 2, 254),
        ("hole", 1, 253),
    ]


def test_instances_come_in_reading_order():
    # top to bottom, then left to right: column by column would put the lower-left blob first
    mask = m(["....##", "....##", "......", "##....", "##...."])
    found = mask_to_instances(mask).instances
    assert [inst.xyxy.tolist() for inst in found] == [[4, 0, 6, 2], [0, 3, 2, 5]]
    # boxes with one top-left corner: the lower value first
    coded = np.array([[253, 254], [254, 0]], np.uint8)
    found = mask_to_instances(coded, value_names={253: "cut", 254: "hole"}).instances
    assert [(inst.value, inst.xyxy.tolist()) for inst in found] == [(253, [0, 0, 1, 1]), (254, [0, 0, 2, 2])]


def test_value_missing_from_map_is_an_error():
    mask = np.array([[255, 7]], np.uint8)
    with pytest.raises(UserError, match="mask value 7 is not in the mask-values map"):
        mask_to_instances(mask, value_names={255: "cut"})


@pytest.mark.parametrize(
    ("encode", "expected_dtype"),
    [
        (lambda mask: mask, np.uint8),  # 0/255 grey
        (lambda mask: (mask > 0).astype(np.uint8), np.uint8),  # 0/1, values are not 255
        (lambda mask: mask.astype(np.uint16) * 257, np.uint16),  # 16-bit
        (lambda mask: np.dstack([mask] * 3), np.uint8),  # 3-channel grey
        (lambda mask: np.dstack([mask * 0, mask * 0, mask]), np.uint8),  # red on black (BGR)
    ],
)
def test_read_mask_accepts_depths_and_channels(tmp_path, encode, expected_dtype):
    mask = m(["....", ".##.", ".#.."])
    path = tmp_path / "x_mask.png"
    assert cv2.imwrite(str(path), encode(mask))
    read = read_mask(path)
    assert read.shape == mask.shape and read.dtype == expected_dtype
    assert np.array_equal(read > 0, mask > 0)
    assert [i.area for i in mask_to_instances(read).instances] == [3]


def test_read_mask_errors_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt_mask.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(UserError, match="cannot decode mask .*corrupt_mask.png"):
        read_mask(corrupt)
    with pytest.raises(UserError, match="cannot read mask .*missing_mask.png"):
        read_mask(tmp_path / "missing_mask.png")


def test_mask_to_xyxy_is_exclusive():
    assert mask_to_xyxy(m(["...", ".#.", "..."])).tolist() == [1, 1, 2, 2]
    with pytest.raises(ValueError):
        mask_to_xyxy(np.zeros((3, 3), bool))


def test_mask_to_xyxy_is_x_then_y():
    # a vertical two-pixel run at column 2 of a wide mask: x from the columns, y from the rows
    assert mask_to_xyxy(m(["....", "..#.", "..#."])).tolist() == [2, 1, 3, 3]


def test_rle_counts_are_json_strings():
    rle = mask_to_rle(m(["#.", ".#"]) > 0)
    assert isinstance(rle["counts"], str) and rle["size"] == [2, 2]
    assert np.array_equal(rle_to_mask(rle), m(["#.", ".#"]) > 0)


def bytes_counts(rle: dict) -> dict:
    """A JSON RLE as pycocotools' own decoder takes it."""
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


masks_strategy = arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24)))


@settings(max_examples=150, deadline=None)
@given(mask=masks_strategy)
def test_boxes_cover_every_pixel_and_are_tight(mask):
    instances = mask_to_instances(mask.astype(np.uint8)).instances
    covered = np.zeros_like(mask)
    for inst in instances:
        x1, y1, x2, y2 = inst.xyxy.astype(int)
        pixels = rle_to_mask(inst.rle)
        covered |= pixels
        # tight: each edge row/column of the box holds a pixel of the instance
        assert pixels[y1, x1:x2].any() and pixels[y2 - 1, x1:x2].any()
        assert pixels[y1:y2, x1].any() and pixels[y1:y2, x2 - 1].any()
        assert not pixels[:y1].any() and not pixels[y2:].any()
        assert not pixels[:, :x1].any() and not pixels[:, x2:].any()
    assert np.array_equal(covered, mask)  # every positive pixel lies in an instance (and so in its box)
    assert sum(inst.area for inst in instances) == mask.sum()


@given(mask=masks_strategy)
@example(mask=np.ones((1000, 1000), dtype=bool))  # a run longer than five chunks
def test_rle_counts_are_the_runs_of_the_mask_in_column_order(mask):
    runs = rle_counts(mask_to_rle(mask)["counts"])
    assert sum(runs) == mask.size and all(run >= 0 for run in runs)
    assert np.array_equal(np.repeat(np.arange(len(runs)) % 2, runs).astype(bool), mask.ravel(order="F"))
    assert rle_counts(runs) == runs  # a list (COCO's uncompressed RLE) is its own runs


@pytest.mark.parametrize(("counts", "fragment"), [("4!4", "hold '!'"), ("4P", "end inside a run")])
def test_rle_counts_refuse_what_is_no_coco_string(counts, fragment):
    with pytest.raises(ValueError, match=fragment):
        rle_counts(counts)


@settings(max_examples=150, deadline=None)
@given(mask=masks_strategy)
def test_an_rles_box_read_from_its_runs_is_its_masks(mask):
    box = rle_to_xyxy(mask_to_rle(mask)).tolist()
    assert box == (mask_to_xyxy(mask).tolist() if mask.any() else [0, 0, 0, 0])  # empty: no pixel


@given(mask=masks_strategy)
@example(mask=m(["#####", "#...#", "#.#.#", "#...#", "#####"]) > 0)  # blob in a hole: one box, two RLEs
def test_rle_round_trip_is_exact(mask):
    assert np.array_equal(mask_utils.decode(bytes_counts(mask_to_rle(mask))), mask)
    assert np.array_equal(rle_to_mask(mask_to_rle(mask)), mask)
    # each instance's RLE is its 8-connected component of the input, found here independently
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    height, width = mask.shape
    for inst in mask_to_instances(mask.astype(np.uint8)).instances:
        decoded = mask_utils.decode(bytes_counts(inst.rle)).astype(bool)
        component = labels == labels[decoded][0]  # a decoded pixel off the mask picks the background
        assert np.array_equal(decoded, component)
        x1, y1, x2, y2 = inst.xyxy.astype(int)
        crop = component[y1:y2, x1:x2]
        assert crop_to_rle(crop, x0=x1, y0=y1, height=height, width=width) == mask_to_rle(component)


def _blob_mask(size: int, ellipses: list[tuple], hole: int) -> np.ndarray:
    """A union of ellipses ``(centre, axes, angle)``, with a disc punched at the centre if ``hole``."""
    mask = np.zeros((size, size), np.uint8)
    for centre, axes, angle in ellipses:
        cv2.ellipse(mask, centre, axes, angle, 0, 360, 255, -1)
    if hole:
        cv2.circle(mask, (size // 2, size // 2), hole, 0, -1)
    return mask


def _blobby_masks():
    """Random unions of ellipses and specks: shapes like real defect masks."""

    @st.composite
    def build(draw):
        size = draw(st.integers(16, 64))
        point = st.tuples(st.integers(0, size - 1), st.integers(0, size - 1))
        axes = st.tuples(st.integers(1, size // 3), st.integers(1, size // 3))
        ellipses = draw(st.lists(st.tuples(point, axes, st.floats(0, 180)), min_size=1, max_size=4))
        hole = draw(st.integers(1, 4)) if draw(st.booleans()) else 0
        return _blob_mask(size, ellipses, hole)

    return build()


def _render_iou(mask: np.ndarray, min_area: int = 25) -> list[float]:
    """IoU of each component of >= ``min_area`` px with its polygons rendered by pycocotools."""
    height, width = mask.shape
    return [
        iou(
            polygons_to_mask(inst.polygons, holes=inst.holes, height=height, width=width),
            rle_to_mask(inst.rle),
        )
        for inst in mask_to_instances(mask).instances
        if inst.area >= min_area
    ]


@settings(max_examples=120, deadline=None)
@given(mask=_blobby_masks())
def test_polygons_render_back_to_their_component(mask):
    """Tolerance: IoU >= 0.9 for components of >= 25 px.

    The rings trace pixel edges, so axis-aligned outlines are exact; the
    mitre limit bevels one-pixel spikes, which is where an error can come
    from. Measured: IoU 1.0 for all 62,615 components of >= 25 px in 40,000
    random blob masks drawn like these; random pixel noise, all spikes, goes
    down to 0.90.
    """
    assert all(value >= 0.9 for value in _render_iou(mask))


def test_polygons_of_seeded_blobs_render_back_exactly():
    """The measurement above, on a fixed sample: 2,000 blob masks, every component of >= 25 px exact."""
    rng = np.random.default_rng(0)
    values = []
    for _ in range(2000):
        size = int(rng.integers(16, 65))
        ellipses = [
            (
                tuple(int(v) for v in rng.integers(0, size, 2)),
                tuple(int(v) for v in rng.integers(1, size // 3 + 1, 2)),
                float(rng.uniform(0, 180)),
            )
            for _ in range(int(rng.integers(1, 5)))
        ]
        values += _render_iou(_blob_mask(size, ellipses, int(rng.integers(1, 5)) * int(rng.integers(0, 2))))
    assert len(values) > 2500 and min(values) == 1.0


@pytest.mark.parametrize("shape", ["X", "V"])
def test_thin_lines_meeting_at_an_angle_render_back_exactly(shape):
    # 25 px of one-pixel-wide diagonal scratches crossing (X) or meeting (V) at the bottom: their
    # outline has no area; its convex hull filled the space between the arms (IoU 0.15 and 0.23)
    rows = np.arange(13)
    mask = np.zeros((13, 13), np.uint8)
    mask[rows, rows if shape == "X" else rows // 2] = 255
    mask[rows, 12 - (rows if shape == "X" else rows // 2)] = 255
    assert _render_iou(mask) == [1.0]


def _thin_tree(rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """One-pixel-wide branching scratches: 1-4 random 8-connected walks from points already drawn."""
    mask = np.zeros((size, size), np.uint8)
    points = [(size // 2, size // 2)]
    for _ in range(int(rng.integers(1, 5))):
        y, x = points[int(rng.integers(len(points)))]
        step = (1, 1)
        for _ in range(int(rng.integers(3, 15))):
            if rng.random() < 0.3:
                step = tuple(int(v) for v in rng.integers(-1, 2, 2))
                step = step if any(step) else (0, 1)
            y, x = min(max(y + step[0], 0), size - 1), min(max(x + step[1], 0), size - 1)
            points.append((y, x))
    for point in points:
        mask[point] = 255
    return mask


def test_random_thin_scratches_render_back_exactly():
    rng = np.random.default_rng(0)
    values = [v for _ in range(300) for v in _render_iou(_thin_tree(rng), min_area=1)]
    assert len(values) >= 300 and min(values) == 1.0  # with the convex hull: 32 of 300 below 0.9, lowest 0.16


def test_mask_to_polygons_of_whole_mask():
    polygons, holes = mask_to_polygons(m(["##..", "##..", "...#"]) > 0)
    assert len(polygons) == 2 and holes == []


def test_merge_masks_keeps_each_region_value_and_the_later_wins_overlaps():
    first = np.array([[255, 255, 0], [0, 0, 0]], np.uint8)  # region 1, top row
    second = np.array([[0, 254, 254], [0, 0, 0]], np.uint8)  # region 2 overlaps at (0, 1)
    wide = np.array([[0, 0, 0], [0, 0, 300]], np.uint16)  # a 16-bit file widens the result
    merged = merge_masks([first, second, wide])
    assert merged.dtype == np.uint16
    assert merged.tolist() == [[255, 254, 254], [0, 0, 300]]
    assert merge_masks([first]).tolist() == first.tolist()
    with pytest.raises(ValueError, match="different shapes"):
        merge_masks([first, np.zeros((3, 3), np.uint8)])
    with pytest.raises(ValueError, match="no masks to merge"):
        merge_masks([])


def test_a_region_file_in_parts_apart_is_one_instance_spanning_them():
    # MVTec LOCO: one file, one region, though its pixels lie in two blobs apart (8 px between them)
    part = np.zeros((16, 16), np.uint8)
    part[1:4, 1:4] = 255
    part[10:14, 9:15] = 255
    [instance] = region_file_instances([mask_to_instances(part)]).instances
    assert instance.xyxy.tolist() == [1.0, 1.0, 15.0, 14.0]
    assert len(instance.polygons) == 2 and instance.area == 9 + 24
    assert (rle_to_mask(instance.rle) == (part > 0)).all()
    assert (polygons_to_mask(instance.polygons, height=16, width=16) == (part > 0)).all()


def test_region_files_that_touch_stay_one_instance_each():
    # two files of one value side by side: merged, they were one 8-connected component, one instance
    first, second = np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8)
    first[2:5, 1:4] = 255
    second[2:5, 4:7] = 255
    found = region_file_instances([mask_to_instances(first), mask_to_instances(second)])
    assert [i.xyxy.tolist() for i in found.instances] == [[1.0, 2.0, 4.0, 5.0], [4.0, 2.0, 7.0, 5.0]]
    assert len(mask_to_instances(merge_masks([first, second])).instances) == 1


def test_a_region_file_of_two_values_is_one_instance_per_value_and_specks_are_counted():
    part = np.array([[255, 255, 0, 254, 0, 255], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 7]], np.uint8)
    names = {255: "a", 254: "b", 7: "c"}
    found = region_file_instances([mask_to_instances(part, value_names=names)])
    assert sorted((i.class_name, i.area) for i in found.instances) == [("a", 3), ("b", 1), ("c", 1)]
    # --min-area drops specks, parts of a region file too, before the kept parts are joined
    found = region_file_instances([mask_to_instances(part, value_names=names, min_area=2)])
    assert [(i.class_name, i.area) for i in found.instances] == [("a", 2)] and found.n_small == 3
    assert region_file_instances([]).instances == []


def test_join_instances_refuses_instances_of_two_classes():
    a, b = mask_to_instances(np.array([[255, 0, 254]], np.uint8), value_names={255: "a", 254: "b"}).instances
    with pytest.raises(ValueError, match="one class and value"):
        join_instances([a, b])
    assert join_instances([a]) is a


def test_segmentation_to_mask_reads_every_coco_form():
    mask = m(["##....", "##..#.", "....##"]) > 0  # two components, 3 x 6: not square
    polygons, holes = mask_to_polygons(mask)
    assert holes == []
    coco_polygons = [ring.ravel().tolist() for ring in polygons]
    compressed = mask_to_rle(mask)  # counts as str, as the converters write it
    uncompressed = {"size": [3, 6], "counts": [0, 2, 1, 2, 8, 2, 2, 1]}  # column-major runs
    assert rle_to_mask(uncompressed).tolist() == mask.tolist()  # the runs above are this mask
    assert len(coco_polygons) == 2  # every polygon of the instance counts, not the first
    for segmentation in (coco_polygons, compressed, uncompressed):
        assert segmentation_to_mask(segmentation, 3, 6).tolist() == mask.tolist()


def test_one_pixel_instance_polygon_is_its_square():
    (instance,) = mask_to_instances(m(["...", ".#.", "..."])).instances
    (ring,) = instance.polygons
    assert sorted(map(tuple, ring.tolist())) == [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0)]


def test_polygons_have_no_collinear_vertices():
    # a straight bar is a rectangle and an L a hexagon: the buffer's extra points on straight edges go
    (bar,) = mask_to_instances(m(["#####"])).instances
    assert sorted(map(tuple, bar.polygons[0].tolist())) == [(0.0, 0.0), (0.0, 1.0), (5.0, 0.0), (5.0, 1.0)]
    (column,) = mask_to_instances(m(["#", "#", "#"])).instances
    assert sorted(map(tuple, column.polygons[0].tolist())) == [(0.0, 0.0), (0.0, 3.0), (1.0, 0.0), (1.0, 3.0)]


def test_hole_ring_edges_lie_on_the_holes_pixel_edges():
    # a 2 x 3 hole (pixels x 1..3, y 1..2): the hole contour runs through the pixel centres around it,
    # half a pixel outside; shrunk by half a pixel its straight edges are x = 1, x = 4, y = 1, y = 3
    (inst,) = mask_to_instances(m(["#####", "#...#", "#...#", "#####"])).instances
    (hole,) = inst.holes
    assert (hole[:, 0].min(), hole[:, 0].max(), hole[:, 1].min(), hole[:, 1].max()) == (1, 4, 1, 3)


def test_value_mapped_to_good_yields_no_instance():
    mask = np.array([[255, 0, 7], [255, 0, 7]], dtype=np.uint8)
    instances = mask_to_instances(mask, value_names={255: "scratch", 7: "good", 0: "good"}).instances
    assert [(i.class_name, i.value, i.xyxy.tolist()) for i in instances] == [
        ("scratch", 255, [0.0, 0.0, 1.0, 2.0])
    ]


def test_read_mask_ignores_the_alpha_channel_of_a_colour_mask(tmp_path):
    bgra = np.zeros((3, 4, 4), np.uint8)
    bgra[..., 3] = 255
    bgra[1, 2, 2] = 200
    path = tmp_path / "mask.png"
    assert cv2.imwrite(str(path), bgra)
    assert np.argwhere(read_mask(path)).tolist() == [[1, 2]]


@pytest.mark.parametrize("colour", [255, 90, 0])
def test_read_mask_takes_a_transparent_pixel_for_background(tmp_path, colour):
    # a defect painted on a transparent layer: alpha is the mask, the colour under it anything (white
    # everywhere made every defect image one whole-frame instance)
    bgra = np.full((3, 4, 4), colour, np.uint8)
    bgra[..., 3] = 0
    bgra[1, 2] = (255, 255, 255, 255)
    bgra[2, 3] = (255, 255, 255, 128)  # half transparent: still painted
    path = tmp_path / "mask.png"
    assert cv2.imwrite(str(path), bgra)
    assert np.argwhere(read_mask(path)).tolist() == [[1, 2], [2, 3]]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_read_mask_takes_black_strokes_on_a_transparent_layer_for_defect(tmp_path, dtype):
    # painted in black (an editor's default colour) on a transparent layer: read as an empty mask
    bgra = np.zeros((3, 4, 4), dtype)
    bgra[1, 2, 3] = np.iinfo(dtype).max
    bgra[2, 3, 3] = 128  # half transparent: still painted
    path = tmp_path / "mask.png"
    assert cv2.imwrite(str(path), bgra)
    mask = read_mask(path)
    assert np.argwhere(mask).tolist() == [[1, 2], [2, 3]]
    assert mask.dtype == dtype and mask.max() == np.iinfo(dtype).max
    bgra[..., 3] = 0  # nothing painted at all: empty, not a whole-frame defect
    assert cv2.imwrite(str(path), bgra)
    assert not read_mask(path).any()


def test_read_mask_counts_fractional_float_values_as_defect(tmp_path):
    mask = np.zeros((3, 4), np.float32)
    mask[1, 2] = 0.5
    path = tmp_path / "mask.tiff"
    assert cv2.imwrite(str(path), mask)
    assert np.argwhere(read_mask(path)).tolist() == [[1, 2]]


def test_read_mask_of_a_float_file_is_integer(tmp_path):
    mask = np.zeros((3, 4), np.float32)
    mask[1, 2] = 0.5
    path = tmp_path / "mask.tiff"
    assert cv2.imwrite(str(path), mask)
    read = read_mask(path)
    assert np.issubdtype(read.dtype, np.integer) and read.tolist() == (mask > 0).astype(int).tolist()


@pytest.mark.parametrize(
    ("palette", "defect_index", "expected"),
    [
        ([0, 0, 128, 255, 0, 0], 1, [0, 1]),  # navy background, red defect: every pixel was defect
        ([255, 255, 255, 255, 0, 0], 1, [0, 1]),  # white background, red defect: every pixel was defect
        ([0, 0, 0, 128, 0, 0], 1, [0, 128]),  # VOC's: black background, read by colour as before
        ([0, 0, 0, 255, 255, 255], 1, [0, 255]),  # black and white, as before
        ([255, 255, 255, 0, 0, 0], 0, [0, 255]),  # an editor's palette, white defect first: by colour
    ],
    ids=["coloured background", "white background", "voc", "black and white", "white defect at index 0"],
)
def test_read_mask_takes_a_palette_mask_s_index_0_covering_most_of_it_for_background(
    tmp_path, palette, defect_index, expected
):
    from PIL import Image

    indices = np.full((4, 6), 1 - defect_index, np.uint8)
    indices[1:3, 2:4] = defect_index  # the defect: 4 of 24 pixels
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette)
    path = tmp_path / "mask.png"
    image.save(path)
    mask = read_mask(path)
    assert np.argwhere(mask).tolist() == [[1, 2], [1, 3], [2, 2], [2, 3]]
    assert np.unique(mask).tolist() == expected


@pytest.mark.parametrize("white_first", [True, False], ids=["white first", "black first"])
@pytest.mark.parametrize("white_share", [0.2, 0.6, 0.8])
def test_read_mask_reads_a_black_and_white_palette_mask_as_its_one_channel_twin(
    tmp_path, white_first, white_share
):
    # PIL's quantize (an editor's indexed export) puts white first: a white defect over half of the mask
    # was taken for a background shown in white and read inverted
    from PIL import Image

    grey = np.zeros((10, 20), np.uint8)
    grey[:, : int(20 * white_share)] = 255
    white, black = (0, 1) if white_first else (1, 0)
    image = Image.fromarray(np.where(grey > 0, white, black).astype(np.uint8), mode="P")
    image.putpalette([255, 255, 255, 0, 0, 0] if white_first else [0, 0, 0, 255, 255, 255])
    image.save(tmp_path / "mask.png")
    Image.fromarray(grey, mode="L").save(tmp_path / "twin.png")
    assert read_mask(tmp_path / "mask.png").tolist() == read_mask(tmp_path / "twin.png").tolist()


def test_read_mask_reads_pil_s_quantized_white_defect_over_half_of_the_mask_the_right_way_round(tmp_path):
    from PIL import Image

    grey = np.zeros((10, 20, 3), np.uint8)
    grey[:, :12] = 255  # a white defect on black, 60 % of the mask
    Image.fromarray(grey).quantize(2).save(tmp_path / "mask.png")
    assert np.array_equal(read_mask(tmp_path / "mask.png") > 0, grey[..., 0] > 0)


@pytest.mark.parametrize("value_coded", [False, True], ids=["no value map", "value map"])
@pytest.mark.parametrize("method", [0, 1, 2], ids=["median cut", "max coverage", "fast octree"])
def test_read_mask_reads_an_editor_s_palette_of_a_colour_first_and_black_by_colour(
    tmp_path, value_coded, method
):
    # PIL's quantize of a red defect on black may put red at index 0 and black at 1: read by index
    # (index 0 background), with a value map the red defect was background and the black one defect
    from PIL import Image

    colour = np.zeros((10, 20, 3), np.uint8)
    colour[:, :4] = (255, 0, 0)
    Image.fromarray(colour).quantize(2, method=method).save(tmp_path / "mask.png")
    Image.fromarray(colour).save(tmp_path / "twin.png")
    mask = read_mask(tmp_path / "mask.png", value_coded=value_coded)
    assert np.array_equal(mask > 0, colour.max(axis=2) > 0)
    # by colour, as its RGB twin reads; a black-first palette (VOC's way) is read by index with a value map
    twin = read_mask(tmp_path / "twin.png", value_coded=value_coded)
    assert np.array_equal(mask, twin) or (value_coded and np.unique(mask).tolist() == [0, 1])


def test_read_mask_reads_a_quantized_grey_value_mask_by_its_greys_with_a_value_map(tmp_path):
    # a grey palette whose order is not its values' (quantize: index 1 shown as grey 2) reads as its greys,
    # what it shows and its one-channel twin reads, never by its indices
    from PIL import Image

    grey = np.zeros((10, 40), np.uint8)
    for value in (1, 2, 3):
        grey[:, 5 * value : 5 * value + 5] = value
    for method in (0, 1):
        image = Image.fromarray(grey).quantize(4, method=method)
        assert np.array(image.getpalette()[:12:3]).tolist() != [0, 1, 2, 3]
        image.save(tmp_path / "mask.png")
        assert read_mask(tmp_path / "mask.png", value_coded=True).tolist() == grey.tolist()


@pytest.mark.parametrize("value_coded", [False, True], ids=["no value map", "value map"])
@pytest.mark.parametrize("share", [0.2, 0.6])
def test_read_mask_reads_a_hand_made_palette_of_red_at_index_0_over_less_than_half_and_black_by_colour(
    tmp_path, value_coded, share
):
    from PIL import Image

    indices = np.ones((10, 20), np.uint8)
    indices[:, : int(20 * share)] = 0  # red at index 0; black at index 1
    image = Image.fromarray(indices, mode="P")
    image.putpalette([255, 0, 0, 0, 0, 0])
    image.save(tmp_path / "mask.png")
    mask = read_mask(tmp_path / "mask.png", value_coded=value_coded)
    if share < 0.5:  # an editor's export, the red defect first: by colour
        assert np.unique(mask).tolist() == [0, 255] and np.array_equal(mask > 0, indices == 0)
    else:  # red over most of it: a label tool's background shown in a colour, black its class 1
        assert np.unique(mask).tolist() == [0, 1] and np.array_equal(mask > 0, indices == 1)


def _palette_png(path, indices, palette):
    from PIL import Image

    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(palette)
    image.save(path)
    return path


_CAMVID = [128, 128, 128, 128, 0, 0, 192, 192, 128, 128, 64, 128] + [60, 40, 222] * 7 + [0, 0, 0]


def _white_background_black_class():
    indices = np.zeros((20, 20), np.uint8)  # white background, 30 %
    indices[:, :8], indices[:, 8:14] = 1, 2  # red class 1, black class 2
    return indices, [255, 255, 255, 255, 0, 0, 0, 0, 0]


def _teal_background_void_at_255():
    indices = np.zeros((20, 20), np.uint8)  # teal background, 30 %
    indices[:, :6], indices[:, 6:10], indices[:, 10:14] = 1, 2, 255  # void 255, black by the zero padding
    return indices, [0, 128, 128, 255, 0, 0, 0, 255, 0] + [0, 0, 0] * 253


def _camvid_sky_first():
    indices = np.full((20, 20), 3, np.uint8)  # road
    indices[:6], indices[6:9], indices[9:10] = 0, 1, 11  # sky (30 %) at index 0, building, unlabelled black
    return indices, _CAMVID


@pytest.mark.parametrize(
    "make",
    [_white_background_black_class, _teal_background_void_at_255, _camvid_sky_first],
    ids=["white background, black class", "void 255 of a zero-padded palette", "camvid, sky first"],
)
def test_read_mask_reads_a_label_tool_s_palette_with_a_little_black_by_index_with_a_value_map(tmp_path, make):
    # index 0 a colour over less than half and a black index used (a class, void, CamVid's unlabelled):
    # read by colour (d98f1440 on), the classes were refused as colours sharing a value; by index again
    indices, palette = make()
    path = _palette_png(tmp_path / "mask.png", indices, palette)
    assert read_mask(path, value_coded=True).tolist() == indices.tolist()


def test_read_mask_s_refusal_of_an_editor_s_palette_read_by_colour_says_it_is_indexed(tmp_path):
    # red and green defects first, black background over half: read by colour, the two share value 255
    indices = np.full((20, 20), 2, np.uint8)
    indices[2:6, 2:6], indices[10:14, 10:14] = 0, 1
    path = _palette_png(tmp_path / "mask.png", indices, [255, 0, 0, 0, 255, 0, 0, 0, 0])
    with pytest.raises(UserError) as refusal:
        read_mask(path, value_coded=True)
    assert str(refusal.value).startswith(
        f"indexed (palette) PNG mask {path}, read by the colours it shows, not by its indices: the colours "
        "(255, 0, 0) and (0, 255, 0) are both read as value 255"
    )
