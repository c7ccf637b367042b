"""Zero-shot MobileSAM on the synthetic default with zoomed crops below 256 px (a diagnostic).

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/experiments/sam_zoom_synthetic/probe.py \
        --data /tmp/mvtec-finetune-bench/sam_encoder/data/synthetic_nut \
        --out bench/experiments/sam_zoom_synthetic/probe.json

The synthetic images are 256 px, so SAM's 256x256 logits are one cell per pixel and the shipped
crop rule (min_side 256) never zooms there. A window of 64-192 px around every box gives 1.3-4
logit cells per pixel. Every defect image of every split, ground-truth boxes (as
segmentation.evaluate), union IoU per image and instance IoU, means over images / instances.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from segmentation.crops import CropRule
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache
from segmentation.evaluate import crop_views, embed_views, evaluate_model
from segmentation.models import load_sam

SETTINGS = [(None, None)] + [(m, s) for s in (64, 96, 128, 192) for m in (0.5, 1.0)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sam = load_sam("vit_t", checkpoint=args.checkpoint, device="cpu")
    cache = EmbeddingCache(args.cache_dir, sam, model_name="vit_t")
    rows = {}
    for margin, side in SETTINGS:
        start = time.perf_counter()
        crops = None if side is None else CropRule(max_fraction=1.0, margin=margin, min_side=side)
        ious, instance = [], []
        for split_name in ("train", "val", "test"):
            split = load_split(args.data, split_name)
            embeddings = cache.embed([im.path for im in split.images], progress=False)
            views = embed_views(cache, split, crop_views(split, crops))
            result = evaluate_model(
                sam, split, embeddings, name="zs", progress=False, crops=crops, view_embeddings=views
            )
            ious += [s.iou for s in result.scores]
            instance += [v for s in result.scores for v in s.instance_iou]
        key = "no crops" if side is None else f"margin {margin}, min_side {side}"
        rows[key] = {
            "iou": float(np.mean(ious)),
            "instance_iou": float(np.mean(instance)),
            "images": len(ious),
            "per_image": ious,
            "seconds": time.perf_counter() - start,
        }
        print(
            f"{key}: IoU {np.mean(ious):.4f} instance {np.mean(instance):.4f} "
            f"({len(ious)} imgs, {time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
