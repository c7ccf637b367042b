"""PatchCore (Roth et al., CVPR 2022): a memory bank of good patches, and distances to it.

    model = PatchCore(load_backbone("mobilenet_v2"), image_size=256)
    model.fit(good_images, count=len(good_images))   # RGB uint8 arrays, all of one size
    [result] = model.predict([photo])                # .anomaly_map (H, W) at the photo's size, .score

Fit: every good image is resized to ``image_size`` x ``image_size``, embedded
(:func:`anomaly.features.patch_embedding`: one ``D``-dim feature per stride-8 position) and its
patches are added to the bank (float16). The bank is then cut to a greedy k-center coreset
(:mod:`anomaly.coreset`). Scoring: each test patch's distance to its nearest bank entry is the patch
score; the map is those scores upsampled and blurred (:mod:`anomaly.maps`), the image score is the
largest patch score reweighted by its neighbourhood (:func:`anomaly.memory_bank.image_scores`).

Memory stays bounded: when a category has more than ``max_bank_patches`` patches in all, each image
contributes a seeded random subset of its patches (a departure from the paper, which keeps all
before the coreset; never triggered below ``max_bank_patches / (image_size / 8)^2`` images).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from tqdm import tqdm

from anomaly.backbones import FeatureExtractor
from anomaly.coreset import coreset_indices
from anomaly.features import flatten_patches, patch_embedding
from anomaly.maps import SIGMA, anomaly_maps, to_image_size
from anomaly.memory_bank import image_scores, nearest_neighbours
from common.errors import UserError

#: Stride of the finest stage: one patch feature per 8 x 8 input pixels.
FEATURE_STRIDE = 8


@dataclass(frozen=True)
class Prediction:
    """One image scored.

    Attributes:
        anomaly_map: ``(H, W)`` float32 at the image's own size, in distance units (not normalised).
        score: the image's anomaly score (same units).
    """

    anomaly_map: np.ndarray
    score: float


def to_tensor(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """RGB uint8 ``(H, W, 3)`` images -> ``(B, 3, size, size)`` float in [0, 1].

    Area averaging when either side shrinks (bilinear sampling would skip pixels: it chose by the
    height alone until 2026-12-05, so a wide, short photo lost thin features), bilinear otherwise.
    """
    resized = [
        cv2.resize(
            image,
            (size, size),
            interpolation=cv2.INTER_AREA if max(image.shape[:2]) > size else cv2.INTER_LINEAR,
        )
        for image in images
    ]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float().div_(255)


class PatchCore:
    """PatchCore on a frozen feature extractor.

    Args:
        extractor: from :func:`anomaly.backbones.load_backbone`.
        image_size: side of the square model input, a multiple of 16.
        coreset_ratio: fraction of the bank's patches kept by the coreset (paper: 0.01 to 0.25).
        coreset_max: cap on the coreset's size (the greedy selection costs one pass over the bank
            per entry), None for no cap.
        num_neighbors: ``b`` of the image-score reweighting (anomalib: 9).
        sigma: blur of the anomaly map in input pixels.
        max_bank_patches: patches kept before the coreset (memory bound), None for all.
        seed: seeds patch subsampling, the projection and the coreset's first point.
        batch_size: images per forward pass.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        *,
        image_size: int = 256,
        coreset_ratio: float = 0.1,
        coreset_max: int | None = 5000,
        num_neighbors: int = 9,
        sigma: float = SIGMA,
        max_bank_patches: int | None = 1_000_000,
        seed: int = 0,
        batch_size: int = 8,
    ) -> None:
        if image_size % 16:
            raise UserError(f"image_size must be a multiple of 16, got {image_size}")
        self.extractor = extractor
        self.image_size = image_size
        self.coreset_ratio = coreset_ratio
        self.coreset_max = coreset_max
        self.num_neighbors = num_neighbors
        self.sigma = sigma
        self.max_bank_patches = max_bank_patches
        self.seed = seed
        self.batch_size = batch_size
        self.bank: torch.Tensor | None = None
        self.patches_seen = 0

    @property
    def grid(self) -> tuple[int, int]:
        """``(h, w)`` of the patch grid."""
        side = self.image_size // FEATURE_STRIDE
        return side, side

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` in [0, 1] -> ``(B, D, S/8, S/8)`` patch features."""
        with torch.no_grad():
            return patch_embedding(self.extractor(batch))

    def fit(self, images: Iterable[np.ndarray], *, count: int, progress: bool = True) -> torch.Tensor:
        """Builds the memory bank from good images.

        Args:
            images: ``count`` RGB uint8 arrays (decoded lazily, one batch at a time).
            count: how many ``images`` yields (sizes the memory bound and the progress bar).
            progress: progress bars.

        Returns:
            The bank, ``(M, D)`` float16, also kept as :attr:`bank`.
        """
        per_image = self.grid[0] * self.grid[1]
        keep = per_image
        if self.max_bank_patches is not None and count * per_image > self.max_bank_patches:
            keep = max(1, self.max_bank_patches // count)
        generator = torch.Generator().manual_seed(self.seed)
        parts: list[torch.Tensor] = []
        with tqdm(total=count, desc="embedding good images", unit="img", disable=not progress) as bar:
            for batch in _batches(images, self.batch_size):
                patches = flatten_patches(self.embed(to_tensor(batch, self.image_size)))
                for image_patches in patches.split(per_image):
                    if keep < per_image:
                        image_patches = image_patches[torch.randperm(per_image, generator=generator)[:keep]]
                    parts.append(image_patches.half())
                bar.update(len(batch))
        if not parts:
            raise UserError("no good images to fit on")
        bank = torch.cat(parts)
        del parts  # the pieces and the bank would otherwise both stay in memory through the coreset
        self.patches_seen = bank.shape[0]
        size = math.ceil(self.coreset_ratio * bank.shape[0])
        if self.coreset_max is not None:
            size = min(size, self.coreset_max)
        chosen = coreset_indices(bank, size, seed=self.seed, progress=progress)
        self.bank = bank[chosen].contiguous()
        return self.bank

    def score(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Anomaly maps and image scores of a batch.

        Args:
            batch: ``(B, 3, S, S)`` in [0, 1].

        Returns:
            ``(B, S, S)`` maps on the input grid and ``(B,)`` image scores, float32.
        """
        if self.bank is None:
            raise RuntimeError("PatchCore.score before fit (or load)")
        embedding = self.embed(batch)
        b, dim, h, w = embedding.shape
        patches = flatten_patches(embedding)
        distances, locations = nearest_neighbours(patches, self.bank, k=1)
        patch_scores = distances[:, 0].reshape(b, h * w)
        scores = image_scores(
            patch_scores,
            locations[:, 0].reshape(b, h * w),
            patches.reshape(b, h * w, dim),
            self.bank,
            self.num_neighbors,
        )
        maps = anomaly_maps(patch_scores.reshape(b, h, w), (self.image_size, self.image_size), self.sigma)
        return maps, scores

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """Maps at each image's own size and scores, for RGB uint8 ``(H, W, 3)`` images."""
        maps, scores = self.score(to_tensor(images, self.image_size))
        return [
            Prediction(to_image_size(m, image.shape[:2]).numpy(), float(s))
            for m, s, image in zip(maps, scores, images, strict=True)
        ]


def _batches(items: Iterable[np.ndarray], size: int) -> Iterable[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
