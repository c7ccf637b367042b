"""PatchCore's fit and scoring on a stand-in extractor whose patch feature is the patch's mean colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from anomaly.features import flatten_patches
from anomaly.patchcore import PatchCore, to_tensor
from common.errors import UserError


def mean_colour(batch: torch.Tensor) -> list[torch.Tensor]:
    return [F.avg_pool2d(batch, 8)]


def model(**options) -> PatchCore:
    settings = {"image_size": 32, "coreset_ratio": 1.0, "num_neighbors": 1, "sigma": 0.0, "batch_size": 2}
    return PatchCore(mean_colour, **{**settings, **options})


def black(count: int, size: int = 32) -> list[np.ndarray]:
    return [np.zeros((size, size, 3), np.uint8) for _ in range(count)]


def test_every_patch_of_every_batch_is_fit_on() -> None:
    patchcore = model(coreset_ratio=0.5)
    bank = patchcore.fit(iter(black(3)), count=3, progress=False)
    assert patchcore.patches_seen == 3 * 16
    assert bank.shape == (24, 3) and bank.dtype == torch.float16


def test_images_are_subsampled_beyond_max_bank_patches() -> None:
    patchcore = model(max_bank_patches=20)
    patchcore.fit(iter(black(4)), count=4, progress=False)
    assert patchcore.patches_seen == 20  # 5 of each image's 16 patches


def test_coreset_max_caps_the_bank() -> None:
    patchcore = model(coreset_max=10)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    assert patchcore.fit(iter(images), count=2, progress=False).shape == (10, 3)


def test_a_white_patch_scores_in_unit_colour_distance_where_it_is() -> None:
    # a white block of 3 x 3 patches of the 4 x 4 grid, (0..2, 1..3): only patch (1, 2) is white over
    # its whole 3 x 3 neighbourhood, at distance sqrt(3) from the black bank; its neighbours reach 6/9 of that
    patchcore = model()
    patchcore.fit(iter(black(2)), count=2, progress=False)
    photo = np.zeros((64, 64, 3), np.uint8)  # scored at 32 x 32
    photo[0:48, 16:64] = 255
    [prediction] = patchcore.predict([photo])
    assert prediction.score == pytest.approx(3**0.5, rel=1e-3)
    assert prediction.anomaly_map.shape == (64, 64)
    rows, cols = (prediction.anomaly_map > 1.5).nonzero()
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 31, 32, 47)


def test_to_tensor_averages_when_shrinking_and_keeps_rows_and_columns() -> None:
    stripes = np.zeros((64, 32, 3), np.uint8)
    stripes[:, 1::2] = 255
    stripes[:32, :, 0] = 0
    batch = to_tensor([stripes], 16)
    assert batch.shape == (1, 3, 16, 16)
    assert torch.allclose(batch[0, 1], torch.tensor(0.5), atol=0.01)
    assert torch.allclose(batch[0, 0, :8], torch.tensor(0.0))
    assert torch.allclose(batch[0, 0, 8:], torch.tensor(0.5), atol=0.01)


def test_the_coreset_size_rounds_up() -> None:
    assert model(coreset_ratio=0.1).fit(iter(black(3)), count=3, progress=False).shape == (5, 3)  # 4.8


def test_subsampled_patches_come_from_the_whole_image() -> None:
    rows = np.repeat(np.arange(1, 5, dtype=np.uint8) * 60, 8)  # one grey level per patch row
    image = np.broadcast_to(rows[:, None, None], (32, 32, 3)).copy()
    patchcore = model(max_bank_patches=20)
    bank = patchcore.fit(iter([image] * 4), count=4, progress=False)
    every = flatten_patches(patchcore.embed(to_tensor([image], 32))).half()
    positions = {int((every == row).all(1).nonzero()[0, 0]) for row in bank}
    assert max(positions) >= 8  # not only the first rows of the grid


def test_the_map_of_a_wide_photo_has_the_photos_size() -> None:
    patchcore = model()
    patchcore.fit(iter(black(2)), count=2, progress=False)
    photo = np.zeros((48, 80, 3), np.uint8)
    photo[:, 60:] = 255
    [prediction] = patchcore.predict([photo])
    assert prediction.anomaly_map.shape == (48, 80)
    assert prediction.anomaly_map[:, :40].max() < prediction.anomaly_map[:, 70:].min()


def blocks(offset: int = 0) -> np.ndarray:
    """A 32 x 32 photo whose 16 patches of 8 x 8 each have their own grey level."""
    levels = (offset + 10 * np.arange(1, 17, dtype=np.uint8)).reshape(4, 4)
    return np.repeat(np.repeat(levels, 8, 0), 8, 1)[:, :, None].repeat(3, 2)


def test_image_size_must_be_a_multiple_of_16() -> None:
    with pytest.raises(UserError, match="image_size must be a multiple of 16, got 40"):
        model(image_size=40)


def test_score_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        model().predict(black(1))


def test_fit_on_no_image_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no good images to fit on"):
        model().fit(iter([]), count=0, progress=False)


def test_to_tensor_shrinks_by_area_averaging_past_a_factor_of_two() -> None:
    # one white pixel in each 4 x 4 block, at its corner: the average is 1/16, a two-tap sample 0
    dots = np.zeros((64, 64, 3), np.uint8)
    dots[::4, ::4] = 255
    assert torch.allclose(to_tensor([dots], 16), torch.tensor(1 / 16), atol=1e-3)


def test_to_tensor_enlarges_by_linear_interpolation() -> None:
    halves = np.zeros((16, 16, 3), np.uint8)
    halves[:, 8:] = 255
    row = to_tensor([halves], 32)[0, 0, 0]
    assert row[:15].eq(0).all() and row[17:].eq(1).all()
    assert row[15].item() == pytest.approx(0.25, abs=0.01) and row[16].item() == pytest.approx(0.75, abs=0.01)


def test_unsubsampled_bank_keeps_every_patch_in_order() -> None:
    images = [blocks(0), blocks(3)]
    patchcore = model()
    bank = patchcore.fit(iter(images), count=2, progress=False)
    every = flatten_patches(patchcore.embed(to_tensor(images, 32))).half()
    assert torch.equal(bank, every)


def test_unbounded_bank_keeps_every_patch() -> None:
    patchcore = model(max_bank_patches=None)
    patchcore.fit(iter(black(3)), count=3, progress=False)
    assert patchcore.patches_seen == 3 * 16


def test_a_bound_below_one_patch_an_image_still_keeps_one_patch_of_each() -> None:
    patchcore = model(max_bank_patches=2)
    patchcore.fit(iter(black(4)), count=4, progress=False)
    assert patchcore.patches_seen == 4


def test_the_seed_picks_the_subsampled_patches() -> None:
    images = [blocks()] * 2
    firsts = {
        tuple(model(max_bank_patches=8, seed=seed).fit(iter(images), count=2, progress=False)[0].tolist())
        for seed in range(4)
    }
    assert len(firsts) > 1


def test_the_coreset_is_seeded_by_the_models_seed() -> None:
    from anomaly.coreset import coreset_indices

    images = [blocks(0), blocks(5), blocks(2)]
    full = model().fit(iter(images), count=3, progress=False)
    for seed in (3, 5):
        bank = model(coreset_ratio=0.25, seed=seed).fit(iter(images), count=3, progress=False)
        assert torch.equal(bank, full[coreset_indices(full, 12, seed=seed)])


def test_the_score_is_reweighted_by_num_neighbors() -> None:
    # a bank of identical black entries: the worst patch is sqrt(3) from each of its 3 neighbours,
    # softmax 1/3 each, weight 2/3
    patchcore = model(num_neighbors=3)
    patchcore.fit(iter(black(2)), count=2, progress=False)
    photo = np.zeros((32, 32, 3), np.uint8)
    photo[:24, 8:] = 255
    [prediction] = patchcore.predict([photo])
    assert prediction.score == pytest.approx(2 / 3 * 3**0.5, rel=1e-3)


def test_images_go_through_the_extractor_batch_size_at_a_time() -> None:
    sizes = []

    def counting(batch: torch.Tensor) -> list[torch.Tensor]:
        sizes.append(batch.shape[0])
        return mean_colour(batch)

    PatchCore(counting, image_size=32, coreset_ratio=1.0, batch_size=2).fit(
        iter(black(5)), count=5, progress=False
    )
    assert sizes == [2, 2, 1]


def test_embedding_keeps_no_gradient() -> None:
    weight = torch.nn.Parameter(torch.ones(1))
    patchcore = PatchCore(lambda batch: [F.avg_pool2d(batch, 8) * weight], image_size=32)
    assert not patchcore.embed(torch.zeros(1, 3, 32, 32)).requires_grad


def test_the_bound_on_bank_patches_is_never_exceeded() -> None:
    patchcore = model(max_bank_patches=20)
    patchcore.fit(iter(black(3)), count=3, progress=False)
    assert patchcore.patches_seen == 18  # 6 of each image's 16: 7 would make 21


def test_to_tensor_shrinks_a_wide_photo_by_area_averaging_too() -> None:
    # height 32 grows to 64, width 256 shrinks to 64: one white column in 8 averages to 1/8, whichever
    # side is the longer (the choice of resampling looked at the height only: the wide photo came out black)
    wide = np.zeros((32, 256, 3), np.uint8)
    wide[:, ::8] = 255
    for photo in (wide, wide.transpose(1, 0, 2)):
        assert to_tensor([photo], 64).mean().item() == pytest.approx(1 / 8, abs=0.01)


def test_to_tensor_enlarges_linearly_when_one_side_already_has_the_size() -> None:
    halves = np.zeros((32, 16, 3), np.uint8)
    halves[:, 8:] = 255
    row = to_tensor([halves], 32)[0, 0, 5]
    assert row[15].item() == pytest.approx(0.25, abs=0.01) and row[16].item() == pytest.approx(0.75, abs=0.01)


def test_to_tensor_makes_square_images_of_an_odd_size_too() -> None:
    images = [np.zeros((40, 25, 3), np.uint8), np.full((10, 90, 3), 255, np.uint8)]
    batch = to_tensor(images, 33)
    assert batch.shape == (2, 3, 33, 33) and float(batch[1].min()) == 1.0
