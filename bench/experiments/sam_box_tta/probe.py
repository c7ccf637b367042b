"""Test-time box perturbation: SAM's logits averaged over several nearby box prompts (a probe).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_box_tta/probe.py \
        --data /tmp/mvtec-finetune-bench/sam_headroom/data --out bench/experiments/sam_box_tta/probe.json

Test-time flips lift untrained MobileSAM on ``hazelnut_toy`` by +0.013 (bench/README.md, the headroom table):
four views' logits averaged smooth where SAM's outline wanders. Perturbing the *prompt* instead of
the photo costs no extra encoder run (the decoder alone, milliseconds per box), so if it averaged out
as much it would be the cheaper lever. Untrained MobileSAM; every defect image of
``bench/sam_headroom.py``'s converted data sets; per instance the logits of the ground-truth box and
of perturbed copies averaged, then thresholded at 0; IoU of the union against the ground truth, mean
over images; no selection (every row on all images). Perturbations: boxes scaled about their centres,
one side at a time moved in or out by a few pixels, and seeded random jitter of up
to 5 % or 10 % of the box's side; each alone and on top of the flips (the views' logits averaged over
views and boxes).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from sam_headroom import defect_images, grown_boxes, union_iou

from segmentation.augment import transform_image
from segmentation.embeddings import EmbeddingCache
from segmentation.models import load_sam
from segmentation.predict import decode, upscale_logits
from segmentation.tta import TTA_VIEWS
from segmentation.views import View

#: Boxes per decoder call: the decoder repeats the image embedding once per box.
CHUNK = 16


def side_moves(boxes: np.ndarray, d: float, size: tuple[int, int]) -> list[np.ndarray]:
    """The box and 8 copies, each with one side moved out or in by ``d`` pixels, clipped."""
    limit = np.array([size[1], size[0], size[1], size[0]], dtype=float)
    moved = [boxes]
    for side, sign in itertools.product(range(4), (-1.0, 1.0)):
        step = np.zeros(4)
        step[side] = sign * d
        moved.append(np.clip(boxes + step, 0, limit))
    return moved


def jitters(boxes: np.ndarray, frac: float, n: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """``n`` seeded copies with each side moved by up to ``frac`` of the box's side, plus the box itself."""
    rng = np.random.default_rng(seed)
    side = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    limit = np.array([size[1], size[0], size[1], size[0]], dtype=float)
    return [boxes] + [
        np.clip(boxes + rng.uniform(-frac, frac, boxes.shape) * side, 0, limit) for _ in range(n)
    ]


def prompt_sets(boxes: np.ndarray, size: tuple[int, int]) -> dict[str, list[np.ndarray]]:
    sets = {"the box alone": [boxes]}
    sets["scales 0.95, 1, 1.05"] = [grown_boxes(boxes, s, size) for s in (0.95, 1.0, 1.05)]
    sets["scales 0.9, 1, 1.1"] = [grown_boxes(boxes, s, size) for s in (0.9, 1.0, 1.1)]
    for d in (2.0, 4.0):
        sets[f"box + each side alone moved -{d:g} or +{d:g} px (9 boxes)"] = side_moves(boxes, d, size)
    for frac in (0.05, 0.1):
        sets[f"box + 8 jittered by up to {frac:.0%} of a side"] = jitters(boxes, frac, 8, size, seed=0)
    return sets


def averaged_view_logits(sam, embedding, prompts: list[np.ndarray], view: str, size) -> np.ndarray:
    """``(N, H, W)`` logits of ``view`` averaged over the prompt sets, back in the image frame.

    All sets are decoded in one batch and averaged at the 256x256 low resolution: upscaling and the
    view's transform are linear, so this equals averaging the full-size logits.
    """
    n = len(prompts[0])
    framed = np.concatenate([View(transform=view).boxes(np.asarray(b, dtype=float), size) for b in prompts])
    low_res = torch.cat(
        [
            decode(sam, embedding, boxes=framed[i : i + CHUNK], multimask_output=False)[0]
            for i in range(0, len(framed), CHUNK)
        ]
    )
    low_res = low_res.reshape(len(prompts), n, *low_res.shape[1:]).mean(0)
    logits = upscale_logits(sam, low_res, embedding)[:, 0].float().cpu().numpy()
    return np.moveaxis(transform_image(np.moveaxis(logits, 0, -1), view), -1, 0)


def photo_rows(sam, per_view: dict, image) -> dict[str, float]:
    truth = image.union_mask()
    size = truth.shape
    rows = {}
    for name, prompts in prompt_sets(image.boxes(), size).items():
        by_view = {v: averaged_view_logits(sam, per_view[v], prompts, v, size) for v in TTA_VIEWS}
        rows[name] = union_iou((by_view["identity"] > 0).any(0), truth)
        rows[f"{name}, with flips"] = union_iou((sum(by_view.values()) > 0).any(0), truth)
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
        paths = [im.path for im in images]
        embeddings = {
            v: cache.embed(paths, views=[View(transform=v)] * len(paths), progress=False) for v in TTA_VIEWS
        }
        rows: dict[str, list[float]] = {}
        with torch.inference_mode():
            for i, image in enumerate(images):
                per_view = {v: embeddings[v][i] for v in TTA_VIEWS}
                for key, value in photo_rows(sam, per_view, image).items():
                    rows.setdefault(key, []).append(value)
        result[name] = {k: {"mean": round(float(np.mean(v)), 4), "per_image": v} for k, v in rows.items()}
        for key, value in result[name].items():
            print(name, key, value["mean"], flush=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
