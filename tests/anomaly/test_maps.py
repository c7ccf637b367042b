"""Anomaly-map geometry: where a patch lands on the image, the blur, and the resize to the photo."""

from __future__ import annotations

import pytest
import torch

from anomaly.features import flatten_patches, patch_embedding
from anomaly.maps import anomaly_maps, gaussian_blur, gaussian_kernel, patch_centre, to_image_size


def test_kernel_is_anomalibs() -> None:
    kernel = gaussian_kernel(4.0)
    assert kernel.numel() == 33  # 2 * int(4 * 4 + 0.5) + 1
    assert kernel.sum().item() == pytest.approx(1.0)
    assert kernel.argmax().item() == 16


@pytest.mark.parametrize(("row", "col"), [(1, 1), (3, 5), (6, 2)])
def test_one_hot_patch_peaks_at_its_centre(row: int, col: int) -> None:
    # an 8 x 8 grid on a 64 x 64 input: patch (r, c) covers rows 8r..8r+7; its blurred peak is there
    scores = torch.zeros(1, 8, 8)
    scores[0, row, col] = 1.0
    out = anomaly_maps(scores, (64, 64), sigma=2.0)[0]
    peak = (out == out.max()).nonzero().float().mean(0)
    centre = patch_centre(row, col, (8, 8), (64, 64))
    assert abs(peak[0].item() + 0.5 - centre[0]) <= 1.0 and abs(peak[1].item() + 0.5 - centre[1]) <= 1.0


def test_hot_border_patch_peaks_inside_its_block() -> None:
    # reflect padding: a corner patch's mass is not pulled inwards, its peak stays in its 8 x 8 block
    scores = torch.zeros(1, 8, 8)
    scores[0, 7, 0] = 1.0
    out = anomaly_maps(scores, (64, 64), sigma=4.0)[0]
    row, col = divmod(int(out.argmax()), 64)
    assert 56 <= row < 64 and 0 <= col < 8


def test_unblurred_map_is_blocks_of_patch_scores() -> None:
    scores = torch.arange(4.0).reshape(1, 2, 2)
    out = anomaly_maps(scores, (4, 6), sigma=0)[0]
    assert out.tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [2, 2, 2, 3, 3, 3], [2, 2, 2, 3, 3, 3]]


def test_blur_keeps_a_constant_map_and_the_mass_of_a_centred_spot() -> None:
    assert torch.allclose(gaussian_blur(torch.full((1, 1, 40, 40), 3.0), 4.0), torch.tensor(3.0))
    spot = torch.zeros(1, 1, 81, 81)
    spot[0, 0, 40, 40] = 1.0
    blurred = gaussian_blur(spot, 4.0)
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert blurred[0, 0, 40, 40] == blurred.max()


def test_resize_to_photo_size_keeps_the_spot_in_place() -> None:
    # a spot in the right half of a 16 x 16 map stays in the right half of a 30 x 50 photo
    small = torch.zeros(16, 16)
    small[4:8, 10:14] = 1.0
    big = to_image_size(small, (30, 50))
    assert big.shape == (30, 50)
    rows, cols = (big > 0.5).nonzero(as_tuple=True)
    assert 7 <= rows.min() and rows.max() <= 15 and 31 <= cols.min() and cols.max() <= 44
    assert to_image_size(small, (16, 16)) is small


def test_patch_embedding_averages_3x3_and_aligns_stages() -> None:
    fine = torch.zeros(1, 1, 4, 4)
    fine[0, 0, 1, 1] = 9.0
    coarse = torch.ones(1, 2, 2, 2)
    embedding = patch_embedding([fine, coarse])
    assert embedding.shape == (1, 3, 4, 4)
    assert embedding[0, 0, :3, :3].tolist() == [[1.0] * 3] * 3  # 9 spread over the 3 x 3 neighbourhood
    assert embedding[0, 0, 3, 3].item() == 0.0
    assert torch.allclose(embedding[0, 1:, 1:3, 1:3], torch.tensor(4 / 9))  # zero padding counts (anomalib)


def test_flatten_patches_is_row_major() -> None:
    embedding = torch.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)
    flat = flatten_patches(embedding)
    assert flat.shape == (8, 3)
    assert flat[1].tolist() == embedding[0, :, 0, 1].tolist()
    assert flat[4].tolist() == embedding[1, :, 0, 0].tolist()


def test_blur_matches_a_2d_gaussian_with_reflect_padding() -> None:
    # anomalib's GaussianBlur2d: one 2-D kernel (outer product of the 1-D one), reflect padding
    maps = torch.rand(2, 1, 50, 60, generator=torch.Generator().manual_seed(0))
    kernel = gaussian_kernel(4.0)
    radius = kernel.numel() // 2
    padded = torch.nn.functional.pad(maps, (radius,) * 4, mode="reflect")
    expected = torch.nn.functional.conv2d(padded, torch.outer(kernel, kernel)[None, None])
    assert torch.allclose(gaussian_blur(maps, 4.0), expected, atol=1e-5)


def test_kernel_radius_rounds_and_values_are_the_gaussian() -> None:
    assert gaussian_kernel(2.2).numel() == 19  # 2 * int(4 * 2.2 + 0.5) + 1
    kernel = gaussian_kernel(3.0)
    centre = kernel.numel() // 2
    ratios = kernel[centre : centre + 3] / kernel[centre]
    assert torch.allclose(ratios, torch.exp(-torch.tensor([0.0, 1.0, 4.0]) / (2 * 3.0**2)))


@pytest.mark.parametrize("side", [8, 16, 17])
def test_blur_of_a_map_no_larger_than_the_kernel_radius(side: int) -> None:
    # radius 16 at sigma 4: reflect padding needs more pixels than the radius, replication does not
    maps = torch.full((1, 1, side, side), 2.0)
    maps[0, 0, 0, 0] = 5.0
    blurred = gaussian_blur(maps, 4.0)
    assert blurred.shape == maps.shape
    kernel = gaussian_kernel(4.0)
    mode = "reflect" if side > 16 else "replicate"
    padded = torch.nn.functional.pad(maps, (16,) * 4, mode=mode)
    expected = torch.nn.functional.conv2d(padded, torch.outer(kernel, kernel)[None, None])
    assert torch.allclose(blurred, expected, atol=1e-5)


def test_resize_aligns_pixel_centres_and_keeps_orientation() -> None:
    assert to_image_size(torch.tensor([[0.0, 1.0]]), (1, 4))[0].tolist() == [0.0, 0.25, 0.75, 1.0]
    wide = torch.arange(6.0).reshape(2, 3)
    assert to_image_size(wide, (3, 2)).shape == (3, 2)


def test_patch_centre_of_a_wide_grid() -> None:
    assert patch_centre(1, 2, (4, 8), (40, 160)) == (15.0, 50.0)


@pytest.mark.parametrize("shape", [(10, 40), (40, 10)])
def test_blur_of_a_map_thinner_than_the_kernel_radius_in_one_direction(shape: tuple[int, int]) -> None:
    # the padding mode follows the map's shorter side: 10 < radius 16, so both directions replicate
    maps = torch.rand(1, 1, *shape, generator=torch.Generator().manual_seed(0))
    kernel = gaussian_kernel(4.0)
    padded = torch.nn.functional.pad(maps, (16,) * 4, mode="replicate")
    expected = torch.nn.functional.conv2d(padded, torch.outer(kernel, kernel)[None, None])
    assert torch.allclose(gaussian_blur(maps, 4.0), expected, atol=1e-5)


def test_default_blur_is_anomalibs_sigma_4() -> None:
    maps = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    assert torch.equal(gaussian_blur(maps), gaussian_blur(maps, 4.0))
    scores = torch.rand(1, 5, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(anomaly_maps(scores, (40, 40)), anomaly_maps(scores, (40, 40), sigma=4.0))


def test_a_batch_of_maps_is_each_map_on_its_own() -> None:
    scores = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    batch = anomaly_maps(scores, (32, 32), sigma=2.0)
    assert batch.shape == (3, 32, 32)
    for i in range(3):
        assert torch.allclose(batch[i], anomaly_maps(scores[i : i + 1], (32, 32), sigma=2.0)[0])
