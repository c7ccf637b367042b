"""PatchCore's fit and scoring on a stand-in extractor whose patch feature is the patch's mean colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from anomaly.features import flatten_patches
from anomaly.patchcore import PatchCore, to_tensor


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
