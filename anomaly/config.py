"""The keys of an anomaly run (``configs/anomaly/patchcore.yaml``), checked before anything runs."""

from __future__ import annotations

from anomaly.backbones import BACKBONES
from common.config import Option, Schema

SCHEMA = Schema(
    backbone=Option("mobilenet_v2", str, "feature extractor", choices=tuple(BACKBONES)),
    pretrained=Option(True, bool, "ImageNet weights (false: seeded random weights, for tests and timing)"),
    image_size=Option(256, int, "side of the square model input", low=32, high=2048, multiple=16),
    coreset_ratio=Option(
        0.1, float, "fraction of the patches kept in the memory bank", low=0, low_open=True, high=1
    ),
    coreset_max=Option(5000, int, "cap on the memory bank's rows (null: none)", low=1, nullable=True),
    num_neighbors=Option(9, int, "b of PatchCore's image-score reweighting (1: plain max)", low=1),
    sigma=Option(4.0, float, "Gaussian blur of the map, in input pixels (0: none)", low=0),
    max_bank_patches=Option(
        1_000_000, int, "patches kept before the coreset, a memory bound (null: all)", low=1, nullable=True
    ),
    batch_size=Option(8, int, "images per forward pass", low=1),
    seed=Option(0, int, "seeds patch subsampling and the coreset", low=0),
)
