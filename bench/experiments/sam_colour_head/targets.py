"""Which labels should the shipped colour head learn: the defect union in each box, or the box's own instance?

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_colour_head/targets.py \
        --runs W/runs/VARIANT/hazelnut_toy --out bench/experiments/sam_colour_head/targets_hazelnut.json

``segmentation.train`` (``colour_head: true``) fits the head on every in-box pixel labelled by the
union of the photo's defects (what the union IoU scores). On ``hazelnut_toy`` that raised the union
IoU by +0.016 but lowered the instance IoU and mask AP (``bench/results/sam_quality_colour_head.md``):
a neighbour's defect inside a box is a positive for that box. This rescoring fits the head both ways
on each round's fine-tuned decoder (train photos, :func:`segmentation.colour_head.fit_colour_head`),
gates each on val IoU as training does, and scores the round's test photos with
``segmentation.evaluate.evaluate_model``: union IoU, instance IoU and mask AP, the head used or not.

``--ring-outside M``: the surface colour taken as the median of a ring of pixels up to ``M`` px
*outside* the box (where the image has them) instead of the box's own border pixels, which a
tight box shares with its defect at its extreme points (the package's rule is ``0``).
``--min-side F``: boxes whose longest side is below ``F`` x the image's longest side are left to SAM
(neither fit on nor refined): the head's ``min_box_fraction``, which the package now sets to 0.125;
0 (the default here) decides every box, as the package did first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

import segmentation.colour_head as colour_head_module
from common.metrics import mean_std
from segmentation.colour_head import ColourHead, box_features, fit_colour_head
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache, load_rgb
from segmentation.evaluate import evaluate_model
from segmentation.finetuned import load_finetuned
from segmentation.predict import box_logits

METRICS = ("iou", "instance_iou", "mask_ap")


def outside_ring_distance(margin: int):
    """A ``colour_distance`` whose reference is the median Lab colour of a ring ``margin`` px outside."""
    inside_rule = colour_head_module.colour_distance

    def distance(rgb: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
        h, w = rgb.shape[:2]
        rows, cols = window
        y0, y1 = max(rows.start - margin, 0), min(rows.stop + margin, h)
        x0, x1 = max(cols.start - margin, 0), min(cols.stop + margin, w)
        lab = cv2.cvtColor(rgb[y0:y1, x0:x1].astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
        ring = np.ones(lab.shape[:2], bool)
        ring[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0] = False
        if not ring.any():  # the box is the whole image: its own border, as the package does
            return inside_rule(rgb, window)
        inner = lab[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0]
        return np.linalg.norm(inner - np.median(lab[ring], axis=0), axis=-1).astype(np.float32)

    return distance


def pixels(sam, split, embeddings, target: str, min_side: float) -> tuple[np.ndarray, np.ndarray]:
    """In-box features and labels of a split's defect photos: ``union`` or the box's ``instance``."""
    xs, ys = [], []
    for image, embedding in zip(split.images, embeddings, strict=True):
        if image.is_background:
            continue
        boxes = image.boxes()
        logits, _ = box_logits(sam, embedding, boxes)
        masks = image.instance_masks()
        union = masks.any(0)
        rgb = load_rgb(image.path)
        for index, window, x in box_features(logits, rgb, boxes, min_box_fraction=min_side):
            truth = union if target == "union" else masks[index]
            xs.append(x.reshape(-1, x.shape[-1]))
            ys.append(truth[window].reshape(-1))
    return np.concatenate(xs), np.concatenate(ys)


def scores(sam, split, embeddings, head: ColourHead | None) -> dict[str, float]:
    with torch.inference_mode():
        summary = evaluate_model(sam, split, embeddings, name="x", progress=False, colour_head=head).summary
    return {metric: float(getattr(summary, metric)["all"]) for metric in METRICS}


def round_scores(sam, cache: EmbeddingCache, fold: Path, min_side: float) -> dict:
    splits = {name: load_split(fold, name) for name in ("train", "val", "test")}
    embeddings = {
        name: cache.embed([im.path for im in split.images], progress=False) for name, split in splits.items()
    }
    result = {"none": scores(sam, splits["test"], embeddings["test"], None)}
    val_plain = scores(sam, splits["val"], embeddings["val"], None)["iou"]
    for target in ("union", "instance"):
        x, y = pixels(sam, splits["train"], embeddings["train"], target, min_side)
        head = fit_colour_head(x, y, min_box_fraction=min_side)
        val = scores(sam, splits["val"], embeddings["val"], head)["iou"]
        test = scores(sam, splits["test"], embeddings["test"], head)
        result[target] = {**test, "weights": list(head.weights), "kept": val > val_plain}
        result[f"{target}, gated"] = test if val > val_plain else result["none"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--ring-outside", type=int, default=0, help="surface colour from outside the box")
    parser.add_argument("--min-side", type=float, default=0.0, help="leave smaller boxes to SAM")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.ring_outside:
        colour_head_module.colour_distance = outside_ring_distance(args.ring_outside)
    rounds = {}
    for fold in sorted(p for p in args.runs.glob("fold*") if p.is_dir()):
        sam = load_finetuned(args.runs / "runs" / fold.name / "decoder.pt")[0]
        cache = EmbeddingCache(args.cache_dir, sam, model_name="vit_t")
        rounds[fold.name] = round_scores(sam, cache, fold, args.min_side)
        print(fold.name, json.dumps(rounds[fold.name]))
    summary = {}
    for key in ("none", "union", "union, gated", "instance", "instance, gated"):
        for metric in METRICS:
            mean, std = mean_std(np.array([r[key][metric] for r in rounds.values()]))
            summary[f"{key}: {metric}"] = {"mean": round(mean, 4), "std": round(std, 4)}
    for key, value in summary.items():
        print(key, value)
    record = {
        "summary": summary,
        "ring_outside": args.ring_outside,
        "min_side": args.min_side,
        "rounds": rounds,
    }
    args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
