"""The low-resolution loss frame: ground truth mapped by the inverse of ``Sam.postprocess_masks``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segmentation.low_res import crop_valid, low_res_to_pixels, mask_to_low_res, valid_cells
from segmentation.train_config import DEFAULTS

IMG, LOW = 256, 64  # the tiny test SAM: 256-px input, 64x64 logits (SAM: 1024 and 256)


def block_mask(size: tuple[int, int], block: int, seed: int = 0) -> np.ndarray:
    """Random foreground blocks of ``block`` px, aligned to ``block``: one logit cell each."""
    rng = np.random.default_rng(seed)
    cells = rng.random((size[0] // block, size[1] // block)) < 0.3
    return np.kron(cells, np.ones((block, block), dtype=bool)).astype(bool)


SIZES = [
    ((256, 256), (256, 256)),  # the model's own size: a cell is 4x4 px
    ((192, 256), (192, 256)),  # non-square: 16 rows of padding cells
    ((256, 192), (256, 192)),  # non-square the other way: padding on the right
    ((128, 128), (256, 256)),  # upscaled 2x: a cell is 2x2 px of the original
]
# Not listed: photos larger than the model input. postprocess_masks then upsamples twice
# (to img_size, then to the photo), a lone cell blurs to half its area, and no exact
# round trip exists; the target is still each cell's foreground fraction.


@pytest.mark.parametrize(("original", "input_size"), SIZES)
def test_decoder_masks_map_back_to_their_own_cells(tiny_sam, original, input_size):
    # Any mask the decoder can express (binary logits through postprocess_masks) maps back
    # cell for cell: the low-res target is the exact inverse on the decoder's own outputs.
    rows, cols = valid_cells(input_size, IMG, LOW)
    cells = torch.from_numpy(np.random.default_rng(1).random((rows, cols)) < 0.3)
    logits = torch.full((1, 1, LOW, LOW), -10.0)
    logits[0, 0, :rows, :cols] = torch.where(cells, 10.0, -10.0)
    mask = tiny_sam.postprocess_masks(logits, input_size, original)[0, 0] > 0
    target = mask_to_low_res(mask.numpy(), input_size=input_size, img_size=IMG, low_res=LOW)
    assert target.shape == (rows, cols)
    torch.testing.assert_close(target > 0.5, cells)


@pytest.mark.parametrize(("original", "input_size"), SIZES)
def test_cell_aligned_masks_round_trip_to_the_pixel_but_for_cell_corners(tiny_sam, original, input_size):
    # Ground truth made of whole cells: its target is exactly 0/1, and postprocess_masks of
    # that target gives the mask back pixel for pixel except where bilinear upsampling rounds
    # a corner (at most the 4 corner pixels of a cell's 4x4 block, in the input frame).
    block = 4 * original[0] // input_size[0]
    mask = block_mask(original, block)
    target = mask_to_low_res(mask, input_size=input_size, img_size=IMG, low_res=LOW)
    assert set(torch.unique(target).tolist()) <= {0.0, 1.0}
    logits = torch.full((1, 1, LOW, LOW), -10.0)
    logits[0, 0, : target.shape[0], : target.shape[1]] = 20.0 * target - 10.0
    back = (tiny_sam.postprocess_masks(logits, input_size, original)[0, 0] > 0).numpy()
    wrong = back != mask
    corners = np.zeros_like(mask)
    for offset in (0, block - 1):  # the first and last pixel row/column of every cell
        corners[offset::block, 0::block] = corners[offset::block, block - 1 :: block] = True
    assert not (wrong & ~corners).any()
    assert mask_to_low_res(back, input_size=input_size, img_size=IMG, low_res=LOW).gt(0.5).equal(target > 0.5)


def test_target_is_the_foreground_fraction_of_each_cell():
    mask = np.zeros((256, 256), bool)
    mask[0, 0] = True  # one pixel of a 4x4 cell
    mask[8:12, 8:10] = True  # half a cell
    target = mask_to_low_res(mask, input_size=(256, 256), img_size=IMG, low_res=LOW)
    assert target[0, 0] == pytest.approx(1 / 16)
    assert target[2, 2] == pytest.approx(0.5)
    assert float(target.sum()) == pytest.approx(mask.sum() / 16)


def test_downscaled_photo_averages_areas_along_each_axis_on_its_own():
    # 576 x 768 photo, 3x down to 192 x 256: an input pixel is 3x3 photo pixels, a cell 12x12.
    # Foreground ends one photo pixel into cell row 8 and cell column 32: 1/12 of those cells.
    mask = np.zeros((576, 768), bool)
    mask[:97, :385] = True
    target = mask_to_low_res(mask, input_size=(192, 256), img_size=IMG, low_res=LOW)
    expected = torch.zeros(48, 64)
    expected[:8, :32] = 1.0
    expected[:8, 32] = expected[8, :32] = 1 / 12
    expected[8, 32] = 1 / 144
    torch.testing.assert_close(target, expected)


def test_photo_of_no_whole_scale_gets_soft_edges_and_keeps_its_area():
    # 600 x 800 photo, 3.125x down: the edges fall inside cells, which hold a fraction strictly
    # between 0 and 1; the foreground area comes back to within a photo pixel per edge
    mask = np.zeros((600, 800), bool)
    mask[:301, :401] = True
    target = mask_to_low_res(mask, input_size=(192, 256), img_size=IMG, low_res=LOW)
    assert target.shape == (48, 64)
    assert (target[:24, :32] == 1).all() and (target[25:] == 0).all() and (target[:, 33:] == 0).all()
    assert 0 < target[10, 32] < 1 and 0 < target[24, 10] < 1 and 0 < target[24, 32] < target[24, 10]
    cell_area = (4 * 3.125) ** 2  # photo pixels per cell
    assert abs(float(target.sum()) * cell_area - mask.sum()) < 301 + 401


def test_upscaled_photo_maps_whole_cells():
    # 120 x 160 photo, 1.6x up to 192 x 256 (the target grid is finer than the photo's pixels):
    # a 30 x 40 px block is 48 x 64 input pixels, 12 x 16 cells exactly
    mask = np.zeros((120, 160), bool)
    mask[:30, :40] = True
    target = mask_to_low_res(mask, input_size=(192, 256), img_size=IMG, low_res=LOW)
    expected = torch.zeros(48, 64)
    expected[:12, :16] = 1.0
    torch.testing.assert_close(target, expected)


def test_valid_cells_and_crop_cut_the_padding():
    assert valid_cells((192, 256), IMG, LOW) == (48, 64)
    assert valid_cells((255, 100), IMG, LOW) == (64, 25)  # a partly covered cell counts
    assert valid_cells((100, 255), IMG, LOW) == (25, 64)
    logits = torch.zeros(2, 3, LOW, LOW)
    assert crop_valid(logits, (192, 256), IMG).shape == (2, 3, 48, 64)


def test_cell_centres_map_back_to_pixels():
    # Cell (x=10, y=3) centre on a 512x384 image resized to 256x192: 4 px cells, 2x scale.
    point = low_res_to_pixels(
        np.array([10.5, 3.5]), original_size=(384, 512), input_size=(192, 256), img_size=IMG, low_res=LOW
    )
    np.testing.assert_allclose(point, [84.0, 28.0])


@pytest.mark.parametrize(
    ("original", "input_size", "low_res", "expected"),
    [
        ((600, 800), (192, 256), LOW, [10.5 * 4 * 3.125, 3.5 * 4 * 3.125]),  # 3.125x, not 2x
        ((333, 500), (170, 256), LOW, [10.5 * 4 * 500 / 256, 3.5 * 4 * 333 / 170]),  # x and y scales differ
        ((600, 800), (192, 256), 32, [10.5 * 8 * 3.125, 3.5 * 8 * 3.125]),  # 8-px cells
    ],
)
def test_cell_centres_map_back_by_each_axis_scale(original, input_size, low_res, expected):
    from segment_anything.utils.transforms import ResizeLongestSide

    assert ResizeLongestSide.get_preprocess_shape(*original, IMG) == input_size  # SAM's own resize
    point = low_res_to_pixels(
        np.array([10.5, 3.5]), original_size=original, input_size=input_size, img_size=IMG, low_res=low_res
    )
    np.testing.assert_allclose(point, expected)


def test_default_loss_is_low_resolution():
    assert DEFAULTS["loss"]["resolution"] == "low"
