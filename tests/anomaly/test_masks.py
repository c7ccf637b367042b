from __future__ import annotations

import cv2
import numpy as np
import pytest

from anomaly.masks import Segmenter
from anomaly.regions import map_regions
from segmentation.embeddings import EmbeddingCache
from tests.segmentation.conftest import build_tiny_sam


def test_sams_embeddings_of_photos_given_by_path_are_kept_in_the_cache(tmp_path, monkeypatch) -> None:
    photo = tmp_path / "a.png"
    image = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(photo), image[..., ::-1])  # the file is BGR, the image RGB
    anomaly_map = np.zeros((40, 48), np.float32)
    anomaly_map[10:20, 12:30] = 2.0
    regions = map_regions(anomaly_map, 1.0)
    sam = build_tiny_sam()
    cache = EmbeddingCache(tmp_path / "cache", sam, model_name="tiny")
    segmenter = Segmenter(sam, "tiny", cache)
    first = segmenter(image, regions, path=photo)
    assert len(list(cache.folder.glob("*.pt"))) == 1
    plain = Segmenter(sam, "tiny")(image, regions)  # no cache: the same masks from the uncached embedding
    assert plain.masks.shape == first.masks.shape and (plain.masks == first.masks).mean() > 0.99

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran for a cached photo")

    monkeypatch.setattr(sam.image_encoder, "forward", no_encoder)
    again = segmenter(image, regions, path=photo)
    assert np.array_equal(first.masks, again.masks) and np.allclose(first.mask_scores, again.mask_scores)
    with pytest.raises(AssertionError, match="the encoder ran"):
        segmenter(image, regions)  # no path: no cache
