"""Nearest-neighbour distances to the memory bank, in batches, and PatchCore's image score.

Distances use ``|x|^2 - 2 x.y + |y|^2`` (a matrix product, as anomalib), computed for at most
:data:`MAX_PAIRS` query-bank pairs at a time so memory stays bounded for any bank size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

#: Query x bank distances held at once (64 M floats = 256 MB).
MAX_PAIRS = 1 << 26


def euclidean_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(n, D)`` x ``(m, D)`` -> ``(n, m)`` Euclidean distances (float32)."""
    x, y = x.float(), y.float()
    squared = (x * x).sum(-1, keepdim=True) - 2 * x @ y.T + (y * y).sum(-1)
    return squared.clamp_min_(0).sqrt_()


def nearest_neighbours(
    queries: torch.Tensor, bank: torch.Tensor, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices of the ``k`` nearest bank rows of each query, ascending.

    Args:
        queries: ``(n, D)``.
        bank: ``(m, D)``, any float dtype (float16 banks are computed in float32).
        k: neighbours per query, ``<= m``.

    Returns:
        ``(n, k)`` float32 distances and ``(n, k)`` int64 bank indices.
    """
    bank = bank.float()
    rows = max(1, MAX_PAIRS // max(bank.shape[0], 1))
    distances, indices = [], []
    for chunk in queries.split(rows):
        found = euclidean_distances(chunk, bank).topk(k, dim=1, largest=False)
        distances.append(found.values)
        indices.append(found.indices)
    return torch.cat(distances), torch.cat(indices)


def image_scores(
    patch_scores: torch.Tensor,
    locations: torch.Tensor,
    patches: torch.Tensor,
    bank: torch.Tensor,
    num_neighbors: int = 9,
) -> torch.Tensor:
    """PatchCore's image score: the largest patch distance, reweighted by its neighbourhood (eq. 7).

    As anomalib, the weight is ``1 - softmax(d(m_test*, N_b(m*)))[0]``
    where ``m*`` is the bank's nearest neighbour of the most anomalous test patch ``m_test*`` and
    ``N_b(m*)`` are ``m*``'s ``num_neighbors`` nearest bank entries (``m*`` itself first).

    Args:
        patch_scores: ``(B, P)`` each patch's distance to its nearest bank entry.
        locations: ``(B, P)`` that entry's index.
        patches: ``(B, P, D)`` the patch features.
        bank: ``(M, D)`` the memory bank.
        num_neighbors: ``b``; 1 (or a bank of one entry) returns the largest patch distance unweighted.

    Returns:
        ``(B,)`` float32 image scores.
    """
    worst = patch_scores.argmax(1)
    rows = torch.arange(patch_scores.shape[0])
    score = patch_scores[rows, worst]
    if num_neighbors == 1 or bank.shape[0] == 1:
        # a one-entry bank (coreset_max=1) is its own only neighbour: the softmax over it is 1 and every
        # image scored 0 (image AUROC 0.500 without a word), where with b = 1 it scores its largest distance
        return score
    nearest = bank[locations[rows, worst]].float()
    _, support = nearest_neighbours(nearest, bank, k=min(num_neighbors, bank.shape[0]))
    worst_features = patches[rows, worst].float()
    distances = torch.stack(
        [euclidean_distances(worst_features[i : i + 1], bank[support[i]])[0] for i in range(len(rows))]
    )
    weights = 1 - F.softmax(distances, dim=1)[:, 0]
    return weights * score
