"""Tests for segmentation.evaluate: scoring a split, the side-by-side table, overlays."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache
from segmentation.evaluate import evaluate_model, format_table, main, predict_image, save_overlays


@pytest.fixture
def val_setup(tiny_dataset, tiny_sam, tmp_path):
    split = load_split(tiny_dataset, "val")
    embeddings = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name="tiny").embed(
        [im.path for im in split.images], progress=False
    )
    return split, embeddings


def test_scores_cover_every_defect_image_and_class(tiny_sam, val_setup):
    split, embeddings = val_setup
    with torch.inference_mode():
        result = evaluate_model(tiny_sam, split, embeddings, name="tiny", progress=False)
    defect_images = [im for im in split.images if not im.is_background]
    assert [s.image_id for s in result.scores] == [im.image_id for im in defect_images]
    present = {split.categories[a["category_id"]] for im in defect_images for a in im.annotations}
    assert set(result.summary.iou) == present | {"all"}
    assert result.summary.n_images["all"] == len(defect_images)
    for value in [*result.summary.iou.values(), *result.summary.dice.values(), result.summary.mask_ap["all"]]:
        assert 0.0 <= value <= 1.0


def test_predictions_are_one_mask_per_ground_truth_box(tiny_sam, val_setup):
    split, embeddings = val_setup
    image, embedding = next((im, e) for im, e in zip(split.images, embeddings, strict=True) if im.annotations)
    with torch.inference_mode():
        masks, scores = predict_image(tiny_sam, image, embedding)
    assert masks.shape == (len(image.annotations), image.height, image.width) and masks.dtype == bool
    assert scores.shape == (len(image.annotations),)


def test_table_has_a_column_block_per_model(tiny_sam, val_setup):
    split, embeddings = val_setup
    with torch.inference_mode():
        a = evaluate_model(tiny_sam, split, embeddings, name="zero-shot", progress=False)
        b = evaluate_model(tiny_sam, split, embeddings, name="fine-tuned", progress=False)
    table = format_table([a, b]).splitlines()
    assert "zero-shot IoU" in table[0] and "fine-tuned mask AP" in table[0]
    assert table[2].startswith("| all |")
    assert len(table) == 2 + len(a.summary.iou)
    cells = table[2].split("|")[3:-1]
    assert len(cells) == 10
    assert float(cells[0]) == pytest.approx(a.summary.iou["all"], abs=5e-4)
    assert not any(math.isnan(float(c)) for c in cells if c.strip() != "-")


def test_overlays_are_written_for_the_worst_and_best_images(tiny_sam, val_setup, tmp_path):
    split, embeddings = val_setup
    with torch.inference_mode():
        result = evaluate_model(tiny_sam, split, embeddings, name="tiny", progress=False)
        by_id = {im.image_id: e for im, e in zip(split.images, embeddings, strict=True)}
        written = save_overlays([("a", tiny_sam), ("b", tiny_sam)], result, split, by_id, tmp_path / "o", n=1)
    assert [p.name.split("_")[0] for p in written] == ["worst", "best"]
    image = cv2.imread(str(written[0]))
    assert image.shape[1] == 2 * split.images[0].width  # one panel per model
    assert np.any(image[..., 1] == 255)  # green ground-truth outline drawn


def test_cli_refuses_a_data_set_without_annotations(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no COCO annotations") and err.count("\n") == 1
