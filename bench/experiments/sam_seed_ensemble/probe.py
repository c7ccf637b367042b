"""Decoders fine-tuned with different seeds, their logits averaged (a probe, issue #12).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/sam_quality.py --no-synthetic --step-repeats 0 \
        --name sam_quality_seeds --no-crop-buckets \
        --variant seed1=train_transformer=false,crops.max_fraction=0,seed=1 \
        --variant seed2=train_transformer=false,crops.max_fraction=0,seed=2 \
        --work /tmp/mvtec-finetune-bench/seeds_hz --out /tmp/benchout
    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_seed_ensemble/probe.py \
        --runs /tmp/mvtec-finetune-bench/heads_hz/runs/heads/hazelnut_toy \
        /tmp/mvtec-finetune-bench/seeds_hz/runs/seed1/hazelnut_toy \
        /tmp/mvtec-finetune-bench/seeds_hz/runs/seed2/hazelnut_toy \
        --out bench/experiments/sam_seed_ensemble/hazelnut.json

With ~10 train photos per round a fine-tuned decoder's test IoU moves with its seed; averaging the
full-resolution logits of decoders trained with seeds 0, 1, 2 (the heads-only default recipe, the same
k-fold rounds: the fold split has its own seed) removes that spread. Per round: the untrained model,
each seed alone, and the mean of the seeds' logits thresholded at 0, scored as ``segmentation.evaluate``
(union IoU, mean over the test photos). The runs must hold the same rounds with the same test photos.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from experiments.probe_rounds import paired
from sam_headroom import union_iou

from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache
from segmentation.finetuned import load_finetuned
from segmentation.models import load_sam
from segmentation.predict import box_logits


def test_photo_logits(
    sam, cache: EmbeddingCache, fold: Path
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """The test photos' names, per photo SAM's logits of its ground-truth boxes, and its truth."""
    images = [im for im in load_split(fold, "test").images if not im.is_background]
    embeddings = cache.embed([im.path for im in images], progress=False)
    logits = [box_logits(sam, emb, im.boxes())[0] for im, emb in zip(images, embeddings, strict=True)]
    return [Path(im.path).name for im in images], logits, [im.union_mask() for im in images]


def mean_iou(logits: list[np.ndarray], truths: list[np.ndarray]) -> float:
    return float(np.mean([union_iou((z > 0).any(0), t) for z, t in zip(logits, truths, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="one bench run folder per seed")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_sam("vit_t", device="cpu")
    rounds = {}
    for fold in sorted(p.name for p in args.runs[0].glob("fold*") if p.is_dir()):
        names, zero, truths = test_photo_logits(
            base, EmbeddingCache(args.cache_dir, base, model_name="vit_t"), args.runs[0] / fold
        )
        scores = {"zero-shot": mean_iou(zero, truths)}
        per_seed = []
        for index, run in enumerate(args.runs):
            sam = load_finetuned(run / "runs" / fold / "decoder.pt", device="cpu")[0]
            seen, logits, _ = test_photo_logits(
                sam, EmbeddingCache(args.cache_dir, sam, model_name="vit_t"), run / fold
            )
            if seen != names:
                raise SystemExit(f"{run / fold}: other test photos than {args.runs[0] / fold}")
            per_seed.append(logits)
            scores[f"seed run {index}"] = mean_iou(logits, truths)
        scores["one seed, mean over the seeds"] = float(
            np.mean([scores[f"seed run {i}"] for i in range(len(args.runs))])
        )
        ensemble = [np.mean([seed[i] for seed in per_seed], axis=0) for i in range(len(names))]
        scores["logits averaged over the seeds"] = mean_iou(ensemble, truths)
        rounds[fold] = scores
        print(fold, scores, flush=True)
    zero = [r["zero-shot"] for r in rounds.values()]
    summary = {key: paired([r[key] for r in rounds.values()], zero) for key in next(iter(rounds.values()))}
    for key, value in summary.items():
        print(key, value)
    args.out.write_text(
        json.dumps(
            {
                "summary (paired against zero-shot)": summary,
                "rounds": rounds,
                "runs": [str(r) for r in args.runs],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
