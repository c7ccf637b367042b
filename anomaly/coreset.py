"""Greedy k-center coreset of the memory bank (PatchCore, Algorithm 1), as anomalib selects it.

The selection runs on a sparse random projection of the features (Johnson-Lindenstrauss, anomalib's
``SparseRandomProjection(eps=0.9)``: Li et al.'s very sparse matrix of density ``1/sqrt(D)``) and
picks, from a random first point, each next point as the one farthest from all points picked so far.
The first point belongs to the coreset (anomalib >= 2.2, gh-3459).

>>> points = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [20.0]])
>>> k_center_greedy(points, 3, start=0).tolist()
[0, 5, 3]
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

#: anomalib's distortion for the projection's dimension.
PROJECTION_EPS = 0.9


def johnson_lindenstrauss_dim(n_samples: int, eps: float = PROJECTION_EPS) -> int:
    """The "safe" projected dimension ``4 ln(n) / (eps^2/2 - eps^3/3)`` (scikit-learn's and anomalib's)."""
    return int(4 * math.log(n_samples) / (eps**2 / 2 - eps**3 / 3))


def sparse_random_projection(n_features: int, n_components: int, generator: torch.Generator) -> torch.Tensor:
    """A very sparse random matrix ``(n_components, n_features)``: entries ``0`` or ``+-sqrt(s / k)``.

    ``s = sqrt(n_features)`` (density ``1/s``), ``k = n_components``: distances are kept in expectation.
    """
    density = 1 / math.sqrt(n_features)
    keep = torch.rand(n_components, n_features, generator=generator) < density
    signs = torch.randint(0, 2, (n_components, n_features), generator=generator).float() * 2 - 1
    return keep * signs * math.sqrt(1 / density) / math.sqrt(n_components)


def project_columns(features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``(N, D)`` features projected to the JL dimension ``d`` (or kept, ``d = D``, where that would not
    be smaller), returned transposed: ``(d, N)`` float32, the one copy the greedy selection reads."""
    n, dim = features.shape
    components = johnson_lindenstrauss_dim(max(n, 2))
    if components >= dim:
        columns = torch.empty(dim, n)
        columns.copy_(features.T)
        return columns
    matrix = sparse_random_projection(dim, components, generator)
    columns = torch.empty(components, n)
    for first in range(0, n, 65536):
        columns[:, first : first + 65536] = matrix @ features[first : first + 65536].float().T
    return columns


def project(features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``(N, D)`` features projected to the JL dimension, or unchanged where that would not be smaller."""
    return project_columns(features, generator).T


def k_center_greedy(features: torch.Tensor, k: int, *, start: int, progress: bool = False) -> torch.Tensor:
    """Indices of ``k`` points chosen greedily to minimise the largest distance to the nearest one.

    Args:
        features: ``(N, d)`` float points.
        k: how many to pick, ``1 <= k <= N``.
        start: index of the first point.
        progress: show a progress bar.

    Returns:
        ``(k,)`` int64 indices, in the order picked (``start`` first). Ties go to the lowest index.
    """
    columns = torch.empty(features.shape[1], features.shape[0])
    columns.copy_(features.T)
    return greedy_on_columns(columns, k, start=start, progress=progress)


def greedy_on_columns(columns: torch.Tensor, k: int, *, start: int, progress: bool = False) -> torch.Tensor:
    """:func:`k_center_greedy` on points stored as the columns of a ``(d, N)`` float32 tensor.

    ``columns`` is centred in place (distances do not change): the steps expand ``|x - c|^2`` as
    ``|x|^2 - 2 c.x + |c|^2``, which in float32 cancels to noise for points far from the origin
    relative to their spread (features near 1000 spread by 0.01 all came out equidistant).
    """
    columns.sub_(columns.mean(1, keepdim=True))
    squared = (columns * columns).sum(0)
    chosen = torch.empty(k, dtype=torch.long)
    chosen[0] = start
    nearest = torch.full((columns.shape[1],), math.inf)
    threads = torch.get_num_threads()
    # Each step is a few memory-bound passes over N floats; OpenMP threads only add synchronisation
    # (measured, 204,800 x 128 on 2 shared cores at load 6.5: 10.7 ms a step on 1 thread, 69.5 on 2).
    torch.set_num_threads(1)
    try:
        _greedy_steps(columns, squared, nearest, chosen, start, progress)
    finally:
        torch.set_num_threads(threads)
    return chosen


def _greedy_steps(
    columns: torch.Tensor,
    squared: torch.Tensor,
    nearest: torch.Tensor,
    chosen: torch.Tensor,
    index: int,
    progress: bool,
) -> None:
    """Fills ``chosen[1:]`` in place: each step adds the point farthest from all chosen so far."""
    k = chosen.numel()
    for step in tqdm(range(1, k), desc="coreset", disable=not progress, leave=False):
        # |x - c|^2 = |x|^2 - 2 c.x + |c|^2: one vector-matrix product and in-place updates per step
        distance = columns[:, index] @ columns
        distance.mul_(-2).add_(squared).add_(squared[index]).clamp_min_(0)
        torch.minimum(nearest, distance, out=nearest)
        index = int(torch.argmax(nearest))
        nearest[index] = 0
        chosen[step] = index


def coreset_indices(bank: torch.Tensor, size: int, *, seed: int = 0, progress: bool = False) -> torch.Tensor:
    """The greedy coreset of ``size`` rows of ``bank``, selected on its random projection.

    Args:
        bank: ``(N, D)`` patch features.
        size: coreset size; ``>= N`` keeps every row.
        seed: seeds the projection and the first point.

    Returns:
        ``(min(max(size, 1), N),)`` int64 row indices: at least one row.
    """
    n = bank.shape[0]
    if size >= n:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    columns = project_columns(bank, generator)
    start = int(torch.randint(n, (1,), generator=generator))
    return greedy_on_columns(columns, max(size, 1), start=start, progress=progress)
