"""Instance IoU per defect type: zero-shot against a bench run's fine-tuned rounds (a diagnostic).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/experiments/sam_per_class/per_class.py \
        --runs W/runs/VARIANT/synthetic_nut --out bench/experiments/sam_per_class/NAME.json

``--runs``: a k-fold data set folder of ``bench/sam_quality.py``'s ``--work`` (``fold*/`` data,
``runs/fold*/sam_finetuned.pth``). Every round's test images, ground-truth boxes, the instance IoU
of each model per category, pooled over the rounds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache
from segmentation.evaluate import evaluate_model
from segmentation.models import load_sam


def instance_ious(sam, cache: EmbeddingCache, data: Path) -> dict[str, list[float]]:
    split = load_split(data, "test")
    names = split.categories  # id -> name
    embeddings = cache.embed([im.path for im in split.images], progress=False)
    result = evaluate_model(sam, split, embeddings, name="m", progress=False)
    images = [im for im in split.images if not im.is_background]
    out: dict[str, list[float]] = {}
    for image, score in zip(images, result.scores, strict=True):
        for annotation, iou in zip(image.annotations, score.instance_iou, strict=True):
            out.setdefault(names[annotation["category_id"]], []).append(iou)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pooled: dict[str, dict[str, list[float]]] = {"zero-shot": {}, "fine-tuned": {}}
    base = load_sam("vit_t", device="cpu")
    base_cache = EmbeddingCache(args.cache_dir, base, model_name="vit_t")
    for fold in sorted(p for p in args.runs.glob("fold*") if p.is_dir()):
        tuned = load_sam(
            "vit_t", checkpoint=args.runs / "runs" / fold.name / "sam_finetuned.pth", device="cpu"
        )
        tuned_cache = EmbeddingCache(args.cache_dir, tuned, model_name="vit_t")
        for model, sam, cache in (("zero-shot", base, base_cache), ("fine-tuned", tuned, tuned_cache)):
            with torch.inference_mode():
                for name, values in instance_ious(sam, cache, fold).items():
                    pooled[model].setdefault(name, []).extend(values)
    table = {
        model: {name: {"n": len(v), "instance_iou": float(np.mean(v))} for name, v in sorted(rows.items())}
        for model, rows in pooled.items()
    }
    for model, rows in table.items():
        print(model, {k: (v["n"], round(v["instance_iou"], 4)) for k, v in rows.items()})
    args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
