"""A second SAM pass prompted with the first mask's own box, for a detector's looser boxes (a probe).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_box_refine/probe.py \
        --data /tmp/mvtec-finetune-bench/sam_headroom/data --out bench/experiments/sam_box_refine/probe.json

In the inspection cascade SAM is prompted with the detector's box, which is rarely the tight box the
evaluation's ground truth gives; on ``hazelnut_toy`` boxes grown 1.2x about their centres cost SAM
0.05-0.06 IoU (bench/README.md, the colour-head table). If SAM's mask from a loose box is roughly right, its
bounding box is closer to the tight box than the prompt was, and prompting again with it could win
that back. Untrained MobileSAM; every defect image of ``bench/sam_headroom.py``'s converted data sets
(its ``--work`` folder's ``data/``); the ground-truth boxes grown by each scale about their centres
(clipped to the photo), or moved by a seeded random shift and scale (``jitter``: each side moved by up
to 10 % of the box's side, a detector's error); then 1 or 2 more passes, each prompted per instance
with the previous mask's bounding box (pixel edges, grown by ``pad`` px; an empty mask keeps its
box). IoU of the union against the ground truth, mean over images; no selection (every row on all
images).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sam_headroom import defect_images, grown_boxes, union_iou

from segmentation.embeddings import EmbeddingCache
from segmentation.models import load_sam
from segmentation.predict import box_logits

SCALES = (1.0, 1.1, 1.2, 1.3)
PADS = (0, 2, 4)
PASSES = 2


def jittered(boxes: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Each side of each box moved by up to 10 % of the box's width or height, clipped to the photo."""
    side = np.tile(boxes[:, 2:] - boxes[:, :2], 2)  # w, h, w, h
    moved = boxes + rng.uniform(-0.1, 0.1, boxes.shape) * side
    limit = np.array([size[1], size[0], size[1], size[0]], dtype=float)
    return np.clip(moved, 0, limit)


def mask_boxes(masks: np.ndarray, previous: np.ndarray, pad: int) -> np.ndarray:
    """Per instance the bounding box (pixel edges) of its mask grown by ``pad``; ``previous`` if empty."""
    h, w = masks.shape[1:]
    out = previous.copy()
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows):
            out[i] = [
                max(cols[0] - pad, 0),
                max(rows[0] - pad, 0),
                min(cols[-1] + 1 + pad, w),
                min(rows[-1] + 1 + pad, h),
            ]
    return out


def photo_rows(sam, embedding, image, rng: np.random.Generator) -> dict[str, float]:
    truth = image.union_mask()
    size = truth.shape
    prompts = {f"boxes x{s}": grown_boxes(image.boxes(), s, size) for s in SCALES}
    prompts["boxes jittered +-10 %"] = jittered(image.boxes(), size, rng)
    rows = {}
    for name, boxes in prompts.items():
        first = box_logits(sam, embedding, boxes)[0] > 0
        rows[f"{name}: one pass"] = union_iou(first.any(0), truth)
        for pad in PADS:
            masks, prompt = first, boxes
            for extra in range(1, PASSES + 1):
                prompt = mask_boxes(masks, prompt, pad)
                masks = box_logits(sam, embedding, prompt)[0] > 0
                rows[f"{name}: +{extra} pass(es) on the mask's box, pad {pad}"] = union_iou(
                    masks.any(0), truth
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="bench/sam_headroom.py's --work/data")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sam = load_sam("vit_t", device="cpu")
    cache = EmbeddingCache(args.cache_dir, sam, model_name="vit_t")
    result = {}
    for name in ("hazelnut_toy", "synthetic_nut"):
        images = defect_images(args.data / name)
        embeddings = cache.embed([im.path for im in images], progress=False)
        rng = np.random.default_rng(0)
        rows: dict[str, list[float]] = {}
        for image, embedding in zip(images, embeddings, strict=True):
            for key, value in photo_rows(sam, embedding, image, rng).items():
                rows.setdefault(key, []).append(value)
        result[name] = {k: {"mean": round(float(np.mean(v)), 4), "images": len(v)} for k, v in rows.items()}
        for key, value in result[name].items():
            print(name, key, value["mean"], flush=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
