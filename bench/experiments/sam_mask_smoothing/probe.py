"""Smoother outlines? Blurred logits and morphological closing/opening of SAM's masks (a probe).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_mask_smoothing/probe.py \
        --data /tmp/mvtec-finetune-bench/sam_headroom/data > bench/experiments/sam_mask_smoothing/probe.txt

Hand-drawn outlines are smoother than SAM's; if that is where the two disagree, smoothing SAM's
full-resolution logits (Gaussian, sigma in px) or its masks (closing, opening: a disc of radius
r px) per instance should move IoU towards the annotation. Untrained MobileSAM, ground-truth
boxes, every defect image of ``bench/sam_headroom.py``'s converted data sets (its ``--work``
folder's ``data/``); IoU of the union against the ground truth, mean over images, and how many
images each read-out beats the plain one on. Every setting is scored on all images (no
selection), so the best row is an upper bound.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from sam_headroom import union_iou

from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache
from segmentation.models import load_sam
from segmentation.tta import view_logits


def disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def read_outs(logits: np.ndarray) -> dict[str, np.ndarray]:
    """Every read-out's union mask from ``(N, H, W)`` logits."""
    masks = (logits > 0).astype(np.uint8)
    out = {"plain": masks.any(0)}
    for sigma in (1, 2, 3, 4, 6):
        out[f"logits blurred, sigma {sigma}"] = (
            np.stack([cv2.GaussianBlur(z, (0, 0), sigma) for z in logits]).max(0) > 0
        )
    for radius in (1, 2, 3, 5):
        for name, op in (("closing", cv2.MORPH_CLOSE), ("opening", cv2.MORPH_OPEN)):
            out[f"{name}, r {radius}"] = np.stack([cv2.morphologyEx(m, op, disc(radius)) for m in masks]).any(
                0
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="bench/sam_headroom.py's --work/data")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    sam = load_sam("vit_t", device="cpu")
    cache = EmbeddingCache(args.cache_dir, sam, model_name="vit_t")
    for name in ("hazelnut_toy", "synthetic_nut"):
        splits = [load_split(args.data / name, s) for s in ("train", "val", "test")]
        images = [im for split in splits for im in split.images if not im.is_background]
        embeddings = cache.embed([im.path for im in images], progress=False)
        rows: dict[str, list[float]] = {}
        for image, embedding in zip(images, embeddings, strict=True):
            gt = image.union_mask()
            logits = view_logits(sam, embedding, image.boxes(), "identity", gt.shape)[0]
            for key, mask in read_outs(logits.astype(np.float32)).items():
                rows.setdefault(key, []).append(union_iou(mask, gt))
        for key, values in rows.items():
            better = sum(a > b + 1e-4 for a, b in zip(values, rows["plain"], strict=True))
            print(f"{name} ({len(values)} images) | {key} | IoU {np.mean(values):.4f} | better on {better}")


if __name__ == "__main__":
    main()
