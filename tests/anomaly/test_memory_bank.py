"""Nearest-neighbour scores against brute force, batching, and PatchCore's image-score reweighting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import anomaly.memory_bank as memory_bank
from anomaly.memory_bank import euclidean_distances, image_scores, nearest_neighbours


def test_distances_match_cdist() -> None:
    x, y = torch.randn(30, 8), torch.randn(20, 8)
    assert torch.allclose(euclidean_distances(x, y), torch.cdist(x, y), atol=1e-4)


def test_nearest_neighbours_hand_made() -> None:
    bank = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    queries = torch.tensor([[0.0, 0.0], [3.0, 0.0], [9.0, 0.0]])
    distances, indices = nearest_neighbours(queries, bank, k=2)
    assert indices.tolist() == [[0, 1], [0, 1], [2, 1]]
    assert torch.allclose(distances, torch.tensor([[0.0, 5.0], [3.0, 4.0], [1.0, 7.2111]]), atol=1e-3)


def test_batching_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    queries, bank = torch.randn(100, 16), torch.randn(50, 16).half()
    whole = nearest_neighbours(queries, bank, k=3)
    monkeypatch.setattr(memory_bank, "MAX_PAIRS", 7 * 50)  # 7 queries per chunk
    chunked = nearest_neighbours(queries, bank, k=3)
    assert torch.equal(whole[1], chunked[1]) and torch.allclose(whole[0], chunked[0])


def test_one_neighbour_score_is_the_largest_patch_distance() -> None:
    patch_scores = torch.tensor([[1.0, 4.0, 2.0], [0.5, 0.1, 0.2]])
    scores = image_scores(
        patch_scores, torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, 2), torch.zeros(1, 2), 1
    )
    assert scores.tolist() == [4.0, 0.5]


def test_reweighting_follows_the_paper() -> None:
    # bank: m* = (0, 0) and its neighbours (1, 0) and (0, 5); the worst test patch is (-3, 0), 3 from m*
    bank = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    patches = torch.tensor([[[0.0, 0.1], [-3.0, 0.0]]])
    distances, locations = nearest_neighbours(patches[0], bank, k=1)
    score = image_scores(distances[:, 0][None], locations[:, 0][None], patches, bank, num_neighbors=3)
    to_support = torch.tensor([3.0, 4.0, (9 + 25) ** 0.5])  # |m_test* - m| for m* and its neighbours
    expected = (1 - F.softmax(to_support, 0)[0]) * 3.0
    assert score.item() == pytest.approx(expected.item(), rel=1e-5)


def test_reweighting_lowers_a_patch_near_a_dense_region() -> None:
    # same distance to the nearest entry; the patch whose nearest entry sits in a dense cluster of the
    # bank is less anomalous than one near an isolated entry (the paper's motivation)
    dense = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.1, 0.1]])
    isolated = torch.tensor([[50.0, 50.0]])
    bank = torch.cat([dense, isolated, isolated + 30])
    patches = torch.tensor([[[-1.0, 0.0]], [[49.0, 50.0]]])
    d, loc = nearest_neighbours(patches.reshape(2, 2), bank, k=1)
    scores = image_scores(d[:, 0].reshape(2, 1), loc[:, 0].reshape(2, 1), patches, bank, num_neighbors=3)
    assert scores[0] < scores[1]


def anomalib_score(patch_scores, locations, embedding, memory_bank, num_neighbors):
    """anomalib 2.x ``PatchcoreModel.compute_anomaly_score`` with its helpers, transcribed."""

    def euclidean_dist(x, y):
        x_norm = x.pow(2).sum(dim=-1, keepdim=True)
        y_norm = y.pow(2).sum(dim=-1, keepdim=True)
        res = x_norm - 2 * torch.matmul(x, y.transpose(-2, -1)) + y_norm.transpose(-2, -1)
        return res.clamp_min_(0).sqrt_()

    def nearest_neighbors(embedding, n_neighbors):
        distances = euclidean_dist(embedding, memory_bank)
        return distances.topk(k=n_neighbors, largest=False, dim=1)

    batch_size, num_patches = patch_scores.shape
    max_patches = torch.argmax(patch_scores, dim=1)
    max_patches_features = embedding.reshape(batch_size, num_patches, -1)[
        torch.arange(batch_size), max_patches
    ]
    score = patch_scores[torch.arange(batch_size), max_patches]
    nn_index = locations[torch.arange(batch_size), max_patches]
    nn_sample = memory_bank[nn_index, :]
    _, support_samples = nearest_neighbors(nn_sample, n_neighbors=min(num_neighbors, memory_bank.shape[0]))
    distances = euclidean_dist(max_patches_features.unsqueeze(1), memory_bank[support_samples])
    weights = (1 - F.softmax(distances.squeeze(1), 1))[..., 0]
    return weights * score


def test_image_scores_match_anomalibs_on_random_data() -> None:
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(200, 24, generator=generator)
    patches = torch.randn(3, 49, 24, generator=generator)  # 3 images of 7 x 7 patches
    distances, locations = nearest_neighbours(patches.reshape(-1, 24), bank, k=1)
    patch_scores, locations = distances[:, 0].reshape(3, 49), locations[:, 0].reshape(3, 49)
    ours = image_scores(patch_scores, locations, patches, bank, num_neighbors=9)
    theirs = anomalib_score(patch_scores, locations, patches.reshape(-1, 24), bank, 9)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_a_bank_past_max_pairs_is_searched_a_query_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    queries, bank = torch.randn(5, 4), torch.randn(50, 4)
    whole = nearest_neighbours(queries, bank, k=2)
    monkeypatch.setattr(memory_bank, "MAX_PAIRS", 10)  # fewer pairs than bank rows: still one query a chunk
    chunked = nearest_neighbours(queries, bank, k=2)
    assert torch.equal(whole[1], chunked[1]) and torch.allclose(whole[0], chunked[0])


def test_reweighting_with_fewer_bank_entries_than_neighbours_uses_them_all() -> None:
    bank = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    patches = torch.tensor([[[-3.0, 0.0]]])
    score = image_scores(torch.tensor([[3.0]]), torch.tensor([[0]]), patches, bank, num_neighbors=9)
    expected = (1 - F.softmax(torch.tensor([3.0, 4.0]), 0)[0]) * 3.0
    assert score.item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_bank_of_one_entry_scores_the_largest_patch_distance() -> None:
    # coreset_max=1: the entry's softmax over itself is 1, so every image scored 0 (image AUROC 0.500)
    patch_scores = torch.tensor([[1.0, 4.0, 2.0], [0.5, 0.1, 0.2]])
    bank, patches = torch.zeros(1, 2), torch.ones(2, 3, 2)
    scores = image_scores(patch_scores, torch.zeros(2, 3, dtype=torch.long), patches, bank, num_neighbors=9)
    assert scores.tolist() == [4.0, 0.5]


def test_default_reweighting_uses_anomalibs_nine_neighbours() -> None:
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(40, 6, generator=generator)
    patches = torch.randn(2, 5, 6, generator=generator)
    distances, locations = nearest_neighbours(patches.reshape(-1, 6), bank, k=1)
    args = (distances[:, 0].reshape(2, 5), locations[:, 0].reshape(2, 5), patches, bank)
    assert torch.equal(image_scores(*args), image_scores(*args, num_neighbors=9))
    assert not torch.allclose(image_scores(*args, num_neighbors=3), image_scores(*args, num_neighbors=9))


def test_reweighting_on_a_float16_bank_is_that_on_its_float32_copy() -> None:
    # PatchCore keeps its bank in float16; the neighbourhood distances are taken in float32
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(30, 8, generator=generator).half()
    patches = torch.randn(2, 4, 8, generator=generator)
    distances, locations = nearest_neighbours(patches.reshape(-1, 8), bank, k=1)
    args = (distances[:, 0].reshape(2, 4), locations[:, 0].reshape(2, 4), patches)
    half = image_scores(*args, bank, num_neighbors=3)
    assert half.dtype == torch.float32
    assert torch.allclose(half, image_scores(*args, bank.float(), num_neighbors=3))
