"""Stray specks in the annotation page's SAM masks, and what removing small regions costs (a diagnostic).

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/experiments/annotate_specks/probe.py \
        --out bench/experiments/annotate_specks/probe.json

The page saves an accepted mask into the class's MVTec mask, and every export splits masks into
8-connected components (``converters.masks.mask_to_instances``), so a mask with stray specks
exports as one instance per speck. Here every true instance of ``hazelnut_toy`` (8-connected
components of its masks) is prompted as a user would on the page, with zero-shot MobileSAM:
one click at its most interior pixel, its tight box, or both; SAM's three candidates are read
out as the page does (at the photo's size) and either the preselected one (highest predicted IoU)
or the one a user looking at them would pick (highest IoU with the truth) is kept. Each kept mask
is then cleaned with the page's ``segmentation.specks.remove_specks`` (segment-anything's
``remove_small_regions``, holes then islands) at several areas in photo pixels. Reported per
prompt, pick and area: mean IoU with the true instance, and how many instances it would export.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from segmentation.embeddings import EmbeddingCache
from segmentation.models import load_sam
from segmentation.predict import decode, upscale_logits
from segmentation.specks import remove_specks

AREAS = (0, 16, 32, 64, 128, 256)
#: True instances under this many pixels count as small (25 of hazelnut_toy's 54).
SMALL = 1024


def true_instances(mask_path: Path) -> list[np.ndarray]:
    """The 8-connected components of one ground-truth mask, as boolean masks."""
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 0
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return [labels == i for i in range(1, n)]


def prompts(instance: np.ndarray) -> dict[str, dict]:
    """One click at the most interior pixel, the tight box, and both."""
    inside = cv2.distanceTransform(np.pad(instance, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
    ys, xs = np.nonzero(instance)
    click = {"point_coords": np.array([[[x + 0.5, y + 0.5]]]), "point_labels": np.array([[1]])}
    box = {"boxes": np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=float)}
    return {"click": click, "box": box, "click + box": {**click, **box}}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))


def pieces(mask: np.ndarray) -> int:
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hazelnut", type=Path, default=Path("../shared/data/hazelnut_toy"))
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sam = load_sam("vit_t", device="cpu")
    cache = EmbeddingCache(args.cache_dir, sam, model_name="vit_t")
    photos = sorted((args.hazelnut / "test" / "colour").glob("*.jpg"))
    rows = []  # (prompt, pick, area, iou, pieces, instance area)
    with torch.inference_mode():
        for photo, emb in zip(photos, cache.embed(photos, progress=False), strict=True):
            for truth in true_instances(args.hazelnut / "ground_truth" / "colour" / f"{photo.stem}_mask.png"):
                for name, prompt in prompts(truth).items():
                    low, scores = decode(sam, emb, multimask_output=True, **prompt)
                    masks = (upscale_logits(sam, low, emb)[0] > sam.mask_threshold).numpy()
                    picks = {
                        "preselected": int(torch.argmax(scores[0])),
                        "best of three": int(np.argmax([iou(m, truth) for m in masks])),
                    }
                    for pick, index in picks.items():
                        for area in AREAS:
                            kept = remove_specks(masks[index], area)
                            rows.append((name, pick, area, iou(kept, truth), pieces(kept), int(truth.sum())))
    table = {}
    for name in ("click", "box", "click + box"):
        for pick in ("preselected", "best of three"):
            for area in AREAS:
                got = [r for r in rows if r[:3] == (name, pick, area)]
                n_pieces = np.array([r[4] for r in got])
                table[f"{name} | {pick} | {area}"] = {
                    "instances": len(got),
                    "mean_iou": round(float(np.mean([r[3] for r in got])), 4),
                    "small_instance_mean_iou": round(float(np.mean([r[3] for r in got if r[5] < SMALL])), 4),
                    "exported_instances": int(n_pieces.sum()),
                    "masks_in_pieces": int((n_pieces > 1).sum()),
                    "most_pieces": int(n_pieces.max()),
                    "empty_masks": int((n_pieces == 0).sum()),
                }
    small = sum(1 for r in rows if r[:3] == ("click", "preselected", 0) and r[5] < SMALL)
    result = {"photos": len(photos), "instances_under_1024_px": small, "table": table}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for key, value in table.items():
        print(f"{key:40s} {value}")


if __name__ == "__main__":
    main()
