"""Zero-shot MobileSAM with its own mask fed back as a mask prompt (a diagnostic).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench python bench/experiments/sam_mask_refine/probe.py \
        --out bench/experiments/sam_mask_refine/probe.json

SAM's interactive loop passes the previous round's low-res logits back as ``mask_input``; the
evaluation decodes from the box alone. Here: the box pass, then 1-2 passes of box + the previous
pass's logits (raw, or clipped to +-k as some SAM ports do), on every defect image of the synthetic
default and hazelnut_toy, ground-truth boxes, union IoU per image, mean over images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sam_headroom import probe_summary, union_iou
from sam_quality import prepare_datasets

from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache
from segmentation.models import load_sam
from segmentation.predict import decode, upscale_logits


def read_outs(sam, emb, boxes: np.ndarray) -> dict[str, np.ndarray]:
    """Union masks of each read-out on one image."""
    low, _ = decode(sam, emb, boxes=boxes, multimask_output=False)
    out = {"box only (as evaluated)": low}
    for name, clip in (("raw", None), ("clipped +-4", 4.0), ("clipped +-1", 1.0)):
        previous = low
        for rounds in (1, 2):
            prompt = previous if clip is None else previous.clamp(-clip, clip)
            previous, _ = decode(sam, emb, boxes=boxes, mask_input=prompt, multimask_output=False)
            out[f"box + mask ({name}), {rounds} pass{'es' if rounds > 1 else ''}"] = previous
    # the mask prompt averaged with the box-only logits: a refinement that cannot drift far
    refined, _ = decode(sam, emb, boxes=boxes, mask_input=low, multimask_output=False)
    out["mean of box only and box + mask (raw)"] = (low + refined) / 2
    return {k: (upscale_logits(sam, v, emb)[:, 0] > 0).any(0).numpy() for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hazelnut", type=Path, default=Path("../shared/data/hazelnut_toy"))
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/mvtec-finetune-bench/sam_refine"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sam = load_sam("vit_t", device="cpu")
    cache = EmbeddingCache(args.cache_dir, sam, model_name="vit_t")
    table = {}
    for data_name, data in prepare_datasets(args.work, args.hazelnut).items():
        images = [
            im for s in ("train", "val", "test") for im in load_split(data, s).images if not im.is_background
        ]
        embeddings = cache.embed([im.path for im in images], progress=False)
        rows: dict[str, list[float]] = {}
        with torch.inference_mode():
            for image, emb in zip(images, embeddings, strict=True):
                gt = image.union_mask()
                for name, pred in read_outs(sam, emb, image.boxes()).items():
                    rows.setdefault(name, []).append(union_iou(pred, gt))
        table[data_name] = probe_summary(data_name, rows)
    args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
