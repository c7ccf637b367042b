"""Locally aware patch features: PatchCore's embedding of an image's feature maps.

Each stage's map is averaged over 3x3 neighbourhoods (stride 1, zero padding counted, as
``torch.nn.AvgPool2d(3, 1, 1)`` in the paper's code and anomalib), the coarser stage is resized
bilinearly to the finer one's grid, and the two are concatenated along channels: one feature per
position of the stride-8 grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812

#: Neighbourhood of the local average (the paper's patch size p = 3).
PATCH_SIZE = 3


def patch_embedding(stages: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenated, locally averaged stage features on the finest stage's grid.

    Args:
        stages: ``(B, C_i, h_i, w_i)`` feature maps, finest first.

    Returns:
        ``(B, sum C_i, h_0, w_0)`` float32.

    >>> patch_embedding([torch.ones(1, 2, 8, 8), torch.ones(1, 3, 4, 4)]).shape
    torch.Size([1, 5, 8, 8])
    """
    pooled = [F.avg_pool2d(stage.float(), PATCH_SIZE, stride=1, padding=PATCH_SIZE // 2) for stage in stages]
    grid = pooled[0].shape[-2:]
    resized = [pooled[0]] + [
        F.interpolate(p, size=grid, mode="bilinear", align_corners=False) for p in pooled[1:]
    ]
    return torch.cat(resized, dim=1)


def flatten_patches(embedding: torch.Tensor) -> torch.Tensor:
    """``(B, D, h, w)`` -> ``(B * h * w, D)``, row-major over images, then rows, then columns."""
    return embedding.permute(0, 2, 3, 1).reshape(-1, embedding.shape[1])
