"""Greedy k-center coreset: hand-made point sets, and anomalib's own loop transcribed as the reference."""

from __future__ import annotations

import math

import pytest
import torch

from anomaly.coreset import (
    coreset_indices,
    johnson_lindenstrauss_dim,
    k_center_greedy,
    project,
    sparse_random_projection,
)


def anomalib_select(features: torch.Tensor, k: int, start: int) -> list[int]:
    """anomalib 2.x ``KCenterGreedy.select_coreset_idxs`` after the projection, line for line."""
    min_distances = None
    idx = torch.tensor(start)
    selected = torch.empty(k, dtype=torch.long)
    selected[0] = idx
    for i in range(1, k):
        center = features[idx].squeeze()
        distances = torch.linalg.norm(features - center, ord=2, dim=1, keepdim=True)
        min_distances = distances if min_distances is None else torch.minimum(min_distances, distances)
        _, idx = torch.max(min_distances.squeeze(1), dim=0)
        min_distances.scatter_(0, idx.unsqueeze(0).unsqueeze(1), 0.0)
        selected[i] = idx
    return selected.tolist()


def test_points_on_a_line_pick_the_far_ends_first() -> None:
    # 0 1 2 .......... 10 11 ......... 20: from 0, the farthest is 20, then 10 (distance 10 to both)
    points = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [20.0]])
    assert k_center_greedy(points, 3, start=0).tolist() == [0, 5, 3]
    assert k_center_greedy(points, 6, start=0).tolist()[:4] == [0, 5, 3, 2]


def test_square_corners_before_its_centre() -> None:
    # centre and corners of the unit square, from corner (0, 0): the opposite corner (1.41 away), then
    # the two other corners (1 from both picks; the tie goes to the lower index), the centre last
    points = torch.tensor([[0.5, 0.5], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert k_center_greedy(points, 5, start=1).tolist() == [1, 4, 2, 3, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_anomalibs_loop_on_random_points(seed: int) -> None:
    points = torch.randn(300, 16, generator=torch.Generator().manual_seed(seed))
    assert k_center_greedy(points, 40, start=7).tolist() == anomalib_select(points, 40, 7)


@pytest.mark.parametrize("offset", [1000.0, -3000.0])
def test_points_far_from_the_origin_match_anomalibs_loop(offset: float) -> None:
    # a spread of 0.01 around 1000: |x|^2 - 2x.c + |c|^2 cancels to float32 noise unless centred first
    points = offset + 0.01 * torch.randn(300, 16, generator=torch.Generator().manual_seed(3))
    picked = k_center_greedy(points, 40, start=7).tolist()
    assert picked == anomalib_select(points, 40, 7)
    assert len(set(picked)) == 40


def test_greedy_selection_leaves_its_input_unchanged() -> None:
    points = 5.0 + torch.randn(50, 1, generator=torch.Generator().manual_seed(0))
    before = points.clone()
    k_center_greedy(points, 10, start=0)
    assert torch.equal(points, before)


def test_coreset_of_a_bank_far_from_the_origin_is_anomalibs_pick_on_the_projection() -> None:
    bank = 1000.0 + 0.01 * torch.randn(400, 512, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(4)
    projected = project(bank, generator)
    start = int(torch.randint(400, (1,), generator=generator))
    assert coreset_indices(bank, 30, seed=4).tolist() == anomalib_select(projected, 30, start)


def test_coreset_covers_clusters() -> None:
    # three tight clusters far apart: a 3-point coreset takes one point of each
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2, generator=generator) for c in centres])
    chosen = coreset_indices(points, 3, seed=0)
    assert sorted(int(i) // 50 for i in chosen) == [0, 1, 2]


def test_coreset_keeps_everything_when_asked_for_more() -> None:
    assert coreset_indices(torch.zeros(5, 3), 10).tolist() == [0, 1, 2, 3, 4]


def test_johnson_lindenstrauss_dim_is_scikit_learns_formula() -> None:
    # sklearn.random_projection.johnson_lindenstrauss_min_dim(1000, eps=0.9) == 170
    assert johnson_lindenstrauss_dim(1000) == 170
    assert johnson_lindenstrauss_dim(10**6) == int(4 * math.log(10**6) / (0.9**2 / 2 - 0.9**3 / 3))


def test_sparse_projection_density_and_scale() -> None:
    matrix = sparse_random_projection(400, 200, torch.Generator().manual_seed(0))
    nonzero = matrix[matrix != 0]
    assert abs((matrix != 0).float().mean().item() - 1 / 20) < 0.01  # density 1 / sqrt(400)
    assert torch.allclose(nonzero.abs(), torch.tensor(math.sqrt(20 / 200)))


def test_projection_preserves_distances_roughly() -> None:
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(200, 2000, generator=generator)
    projected = project(points, generator)
    assert projected.shape == (200, johnson_lindenstrauss_dim(200))
    ratio = torch.pdist(projected) / torch.pdist(points)
    assert 0.8 < ratio.mean().item() < 1.2


def test_projection_skipped_when_it_would_not_shrink() -> None:
    points = torch.randn(100, 8)
    assert torch.equal(project(points, torch.Generator()), points)


def test_projection_skipped_when_it_would_keep_the_dimension() -> None:
    points = torch.randn(7, 48)  # johnson_lindenstrauss_dim(7) == 48
    assert johnson_lindenstrauss_dim(7) == 48
    assert torch.equal(project(points, torch.Generator()), points)


def test_projection_of_a_bank_longer_than_one_chunk_is_one_product() -> None:
    points = torch.randn(65537, 280, generator=torch.Generator().manual_seed(0))
    projected = project(points, torch.Generator().manual_seed(1))
    matrix = sparse_random_projection(280, johnson_lindenstrauss_dim(65537), torch.Generator().manual_seed(1))
    assert torch.allclose(projected, points @ matrix.T, atol=1e-4)


def test_coreset_of_every_row_keeps_the_bank_order() -> None:
    assert coreset_indices(torch.randn(5, 3), 5, seed=3).tolist() == [0, 1, 2, 3, 4]


def test_first_point_depends_on_the_seed() -> None:
    points = torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
    assert len({int(coreset_indices(points, 3, seed=seed)[0]) for seed in range(5)}) > 1


def test_points_farther_apart_than_any_finite_start_value() -> None:
    # squared distances of 25e6 and more: the first step must take them as they are
    points = torch.tensor([[0.0], [3000.0], [1000.0], [5000.0]])
    assert k_center_greedy(points, 3, start=0).tolist() == [0, 3, 1]


def test_a_coreset_of_size_zero_still_keeps_one_row() -> None:
    chosen = coreset_indices(torch.randn(10, 4, generator=torch.Generator().manual_seed(0)), 0, seed=0)
    assert chosen.shape == (1,) and 0 <= int(chosen[0]) < 10


def test_projection_of_a_single_point_keeps_it() -> None:
    point = torch.randn(1, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(project(point, torch.Generator()), point)


def test_coreset_of_a_float16_bank_is_that_of_its_float32_copy() -> None:
    # PatchCore's bank is float16; 300 features is more than the JL dimension of 50 rows (96): projected
    bank = torch.randn(50, 300, generator=torch.Generator().manual_seed(0)).half()
    assert coreset_indices(bank, 5, seed=1).tolist() == coreset_indices(bank.float(), 5, seed=1).tolist()
