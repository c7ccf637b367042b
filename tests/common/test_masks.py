"""The mask checks the converters and anomaly.evaluate share: one rule, one wording."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from common.masks import (
    SOFT_MASK_VALUES,
    faint_values,
    is_lossy_mask,
    is_soft_mask,
    lossy_masks_line,
    mask_values,
    soft_masks_line,
)


@pytest.mark.parametrize(
    ("mask", "values"),
    [
        (np.array([[0, 255], [255, 0]], np.uint8), [255]),  # MVTec's 0/255
        (np.array([[0, 1], [1, 0]], np.uint8), [1]),  # 0/1
        (np.array([[0, 3], [65535, 3]], np.uint16), [3, 65535]),  # 16-bit
        (np.array([[0, 2], [7, 0]], np.int32), [2, 7]),  # not bincounted
    ],
)
def test_mask_values_are_the_distinct_non_zero_ones(mask, values):
    assert mask_values(mask).tolist() == values


def test_more_than_eight_defect_values_make_a_soft_mask():
    assert not is_soft_mask(SOFT_MASK_VALUES) and is_soft_mask(SOFT_MASK_VALUES + 1)


@pytest.mark.parametrize(
    ("name", "lossy"), [("a.jpg", True), ("a.JPEG", True), ("a.png", False), ("a.tif", False)]
)
def test_jpeg_files_of_either_suffix_and_case_are_lossy(name, lossy):
    assert is_lossy_mask(Path(name)) is lossy


def test_the_lines_count_every_mask_and_name_the_first_few():
    soft = [(Path(f"{i}_mask.png"), 10 + i) for i in range(5)]
    line = soft_masks_line(soft, effect="E", remedy="R", named=3)
    assert line == (
        "5 masks hold more than 8 distinct defect values, e.g. 0_mask.png (10), 1_mask.png (11), "
        "2_mask.png (12), as anti-aliased or once JPEG-compressed masks do, and every value > 0 is defect, "
        "so E; R"
    )
    assert lossy_masks_line([Path("a.jpg")], effect="E", remedy="R") == (
        "1 mask is a JPEG file, e.g. a.jpg: JPEG compression leaves faint non-zero pixels around every "
        "defect, and every value > 0 is defect, so E; R"
    )
    assert (
        soft_masks_line([], effect="E", remedy="R") is None
        and lossy_masks_line([], effect="E", remedy="R") is None
    )


def square(top: int = 255, dtype=np.uint8) -> np.ndarray:
    """A 32 x 32 mask with a 12 x 12 defect of value ``top``."""
    mask = np.zeros((32, 32), dtype)
    mask[10:22, 10:22] = top
    return mask


def through_jpeg(mask: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(
        cv2.imencode(".jpg", mask, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_GRAYSCALE
    )


@pytest.mark.parametrize("quality", [100, 98, 95])
def test_a_mask_once_saved_as_fine_jpeg_has_faint_values(quality):
    ringing = through_jpeg(square(), quality)
    # under the soft-mask count: found by this rule alone
    assert len(mask_values(ringing)) <= SOFT_MASK_VALUES
    assert faint_values(ringing) and faint_values(ringing)[0] == 1


@pytest.mark.parametrize("quality", [98, 97, 95])
def test_a_small_defect_once_saved_as_fine_jpeg_has_faint_values(quality):
    # 8 x 8 px: its ringing outnumbers half its solid pixels, all within JPEG's 8 x 8 blocks of it
    small = np.zeros((32, 32), np.uint8)
    small[10:18, 10:18] = 255
    ringing = through_jpeg(small, quality)
    assert len(mask_values(ringing)) <= SOFT_MASK_VALUES
    assert faint_values(ringing)[0] == 1


@pytest.mark.parametrize("quality", [98, 97])
@pytest.mark.parametrize("times", [1, 2])
def test_real_masks_made_small_and_saved_as_fine_jpeg_are_all_warned_of(hazelnut_root, quality, times):
    # hazelnut_toy's masks at 96 px: 27 of these 68 passed as clean, more faint pixels than half the solid
    for path in sorted((hazelnut_root / "ground_truth").glob("*/*_mask.png")):
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        mask = cv2.resize(mask, (96, 96), interpolation=cv2.INTER_NEAREST)
        for _ in range(times):
            mask = through_jpeg(mask, quality)
        assert is_soft_mask(len(mask_values(mask))) or faint_values(mask), path


def thin_class_one_far_from_255() -> np.ndarray:
    mask = np.zeros((32, 32), np.uint8)
    mask[4:12, 4:12] = 255
    mask[26:28, 2:30] = 1  # a 2 px line of its own, 56 px beside 64 of 255, 14 px off: beyond JPEG's ringing
    return mask


def class_one_beside_255() -> np.ndarray:
    mask = square()
    mask[24:30, 2:30] = 1  # a class of its own, 168 px beside 144 of 255: no edge's ringing
    return mask


def small_class_one_beside_255() -> np.ndarray:
    mask = np.zeros((32, 32), np.uint8)
    mask[4:20, 4:20] = 255
    mask[20:24, 8:12] = 1  # a solid class of its own, 16 px touching 256 of 255: no edge's ringing either
    return mask


@pytest.mark.parametrize(
    "mask",
    [
        square(),  # MVTec's 0/255
        square(1),  # 0/1
        square(65535, np.uint16),  # 16-bit 0/65535
        np.where(square() > 0, np.arange(32)[None, :] // 8 + 1, 0).astype(np.uint8),  # class ids 1 .. 4
        np.where(square() > 0, 255 - np.arange(32)[None, :] // 8, 0).astype(np.uint8),  # LOCO's 255, 254, ...
        class_one_beside_255(),
        small_class_one_beside_255(),
        thin_class_one_far_from_255(),
        np.zeros((32, 32), np.uint8),  # empty
    ],
    ids=[
        "0-255",
        "0-1",
        "16-bit",
        "class-ids",
        "loco",
        "class-1-beside-255",
        "small-class-1-beside-255",
        "thin-class-1-far-from-255",
        "empty",
    ],
)
def test_clean_and_value_coded_masks_have_no_faint_values(mask):
    assert faint_values(mask) == []


@pytest.mark.parametrize("specks", [2, 5])
def test_ringing_beside_a_solid_class_one_region_is_faint_and_the_region_is_not(specks):
    # the specks' share amid faint ones was taken over all faint values together: with 2 specks the solid
    # 4 x 4 region of 1 hid the ringing of 2 and 3 (4 of 18 amid), with 5 it was called faint with them
    mask = small_class_one_beside_255()
    for index in range(specks):
        mask[2, 4 + 3 * index] = 2 + index % 2
    assert faint_values(mask) == [2, 3]


def test_a_thin_small_class_one_region_beside_255_is_taken_for_faint():
    mask = small_class_one_beside_255()
    mask[20:24, 8:12] = 0
    mask[20:22, 8:16] = 1  # 16 px again, but 2 px thin: nothing tells it from an edge's specks
    assert faint_values(mask) == [1]
