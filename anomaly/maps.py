"""Patch scores -> anomaly map: nearest upsampling to the model's input size, Gaussian blur, image size.

As anomalib's ``AnomalyMapGenerator``: ``F.interpolate`` (nearest) from the patch grid to the input
size, then a Gaussian of ``sigma = 4`` input pixels, kernel ``2 * int(4 sigma + 0.5) + 1``, reflect
padding. The map is then resized bilinearly to the photo's own size, so map pixel (r, c) scores
photo pixel (r, c).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

#: The blur of the paper and anomalib, in input pixels.
SIGMA = 4.0


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian, ``(2 * int(4 sigma + 0.5) + 1,)``."""
    radius = int(4.0 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def gaussian_blur(maps: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding. ``(B, 1, H, W)`` -> same shape.

    Maps smaller than the kernel's radius pad by replication instead (reflect needs more pixels).
    """
    if sigma <= 0:
        return maps
    kernel = gaussian_kernel(sigma)
    radius = kernel.numel() // 2
    mode = "reflect" if min(maps.shape[-2:]) > radius else "replicate"
    x = F.pad(maps, (radius, radius, 0, 0), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, radius, radius), mode=mode)
    return F.conv2d(x, kernel.view(1, 1, -1, 1))


def anomaly_maps(
    patch_scores: torch.Tensor, input_size: tuple[int, int], sigma: float = SIGMA
) -> torch.Tensor:
    """Patch scores on the model's input grid, smoothed.

    Args:
        patch_scores: ``(B, h, w)`` distances of each patch to the memory bank.
        input_size: ``(H, W)`` of the model input (``h = H / 8`` for the backbones here).
        sigma: Gaussian blur in input pixels (0: none).

    Returns:
        ``(B, H, W)`` float32.
    """
    upsampled = F.interpolate(patch_scores[:, None].float(), size=input_size, mode="nearest")
    return gaussian_blur(upsampled, sigma)[:, 0]


def to_image_size(anomaly_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A ``(H, W)`` map resized bilinearly (pixel centres aligned) to ``size = (height, width)``."""
    if tuple(anomaly_map.shape[-2:]) == tuple(size):
        return anomaly_map
    return F.interpolate(anomaly_map[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def patch_centre(row: int, col: int, grid: tuple[int, int], size: tuple[int, int]) -> tuple[float, float]:
    """Centre, in pixel coordinates of a ``size`` image, of patch ``(row, col)`` of a ``grid``."""
    return (row + 0.5) * size[0] / grid[0], (col + 0.5) * size[1] / grid[1]
