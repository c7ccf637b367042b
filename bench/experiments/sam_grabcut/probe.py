"""GrabCut seeded by SAM's logits, per instance, on a k-fold bench run's rounds (an experiment, issue #12).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_grabcut/probe.py \
        --runs W/runs/VARIANT/hazelnut_toy [--box-scale S] [--colour-head] --out OUT.json

The colour head (``segmentation/colour_head.py``) fits ONE colour rule on the train photos. GrabCut
(OpenCV's ``cv2.grabCut``: colour GMMs for object and background plus a contrast-sensitive graph cut)
fits one per instance: each box's own stain against its own skin. Seeds per box, in a window of the
box grown by ``margin`` of its side (at least 8 px): outside the box definite background, inside it
SAM's logit > t definite object, < -t definite background, the rest probable object/background by
the logit's sign; ``loose`` settings mark outside the box only probable background, as a detector's
looser box would need. Every setting (t, iterations, margin, outside) is scored on all photos; per round the
setting with the best IoU on the round's train + val photos is applied to its test photos (nothing
is fit beyond that choice), for the untrained and the round's fine-tuned model. Beside it: SAM's mask
cut off at its box (what the definite background outside a tight box does alone).

``--colour-head``: the seeds come from the shipped colour head's logits instead (fit on the round's
train photos as ``segmentation.train`` does, small boxes left to SAM; not gated on val), so the
rows say what GrabCut adds on top of the head.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
from experiments.probe_rounds import paired, probe_parser, score_rounds
from sam_headroom import grown_boxes, union_iou

from segmentation.colour_head import box_window, fit_colour_head, training_pixels
from segmentation.data import load_split
from segmentation.embeddings import load_rgb
from segmentation.tta import TTA_VIEWS, view_logits
from segmentation.views import View

THRESHOLDS = (0.5, 1.0, 2.0)  # 5, 10 and inf (no logit seeds) lost to 2 in a first grid
ITERATIONS = (1, 3)
MARGINS = (0.5, 1.0)
OUTSIDE = (cv2.GC_BGD, cv2.GC_PR_BGD)  # beyond the box: definite (a tight box) or probable (a detector's)


def grabcut_box(rgb, logit, box, t: float, iters: int, margin: float, outside: int):
    """The object mask inside one box's window after GrabCut, and the window's slices."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    pad = max(8.0, margin * max(x1 - x0, y1 - y0))
    wx0, wy0 = max(int(np.floor(x0 - pad)), 0), max(int(np.floor(y0 - pad)), 0)
    wx1, wy1 = min(int(np.ceil(x1 + pad)), w), min(int(np.ceil(y1 + pad)), h)
    window = (slice(wy0, wy1), slice(wx0, wx1))
    z = logit[window]
    seeds = np.where(z > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    seeds[z > t] = cv2.GC_FGD
    seeds[z < -t] = cv2.GC_BGD
    rows, cols = box_window(box, (h, w))
    inside = np.zeros(z.shape, bool)
    inside[rows.start - wy0 : rows.stop - wy0, cols.start - wx0 : cols.stop - wx0] = True
    seeds[~inside] = np.minimum(seeds[~inside], outside)  # GC_BGD 0 < GC_PR_BGD 2; never object
    seeds[~inside & (seeds == cv2.GC_FGD)] = outside
    if not ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).any() or (seeds == cv2.GC_BGD).all():
        return z > 0, window
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means start: the same for a box whatever ran before it
    try:
        cv2.grabCut(
            np.ascontiguousarray(rgb[window][..., ::-1]), seeds, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK
        )
    except cv2.error:  # a GMM without enough samples of one side: keep SAM's mask
        return z > 0, window
    return (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD), window


def photo_masks(rgb, logits, boxes, shape) -> dict:
    """Per setting, the photo's union mask (SAM's mask beyond the windows kept)."""
    sam = (logits > 0).any(0)
    clipped = np.zeros(shape, bool)
    for logit, box in zip(logits, boxes, strict=True):
        window = box_window(box, shape)
        clipped[window] |= logit[window] > 0
    out = {"plain": sam, "SAM's mask clipped to its box": clipped}
    for t, iters, margin, outside in itertools.product(THRESHOLDS, ITERATIONS, MARGINS, OUTSIDE):
        mask = np.zeros(shape, bool)
        covered = np.zeros(shape, bool)
        for logit, box in zip(logits, boxes, strict=True):
            m, window = grabcut_box(rgb, logit, box, t, iters, margin, outside)
            mask[window] |= m
            covered[window] = True
        out[(t, iters, margin, "box" if outside == cv2.GC_BGD else "loose")] = mask | (sam & ~covered)
    return out


def split_photos(sam, cache, data: Path, split: str, box_scale: float) -> list[tuple]:
    """``(rgb, logits, boxes, truth)`` of each defect photo of ``split``: SAM's logits of its boxes."""
    images = [im for im in load_split(data, split).images if not im.is_background]
    embeddings = cache.embed(
        [im.path for im in images], views=[View(transform=TTA_VIEWS[0])] * len(images), progress=False
    )
    photos = []
    for image, embedding in zip(images, embeddings, strict=True):
        size = (image.height, image.width)
        boxes = grown_boxes(image.boxes(), box_scale, size)
        logits = view_logits(sam, embedding, boxes, TTA_VIEWS[0], size)[0]
        photos.append((load_rgb(image.path), logits, boxes, image.union_mask()))
    return photos


def with_colour_head(train: list[tuple], *splits: list[tuple]) -> list[list[tuple]]:
    """Each split's photos with the colour head's logits (fit on ``train``, as shipped, ungated)."""
    pixels = [training_pixels(logits, rgb, boxes, truth) for rgb, logits, boxes, truth in train]
    head = fit_colour_head(np.concatenate([x for x, _ in pixels]), np.concatenate([y for _, y in pixels]))
    return [[(rgb, head.refine(z, rgb, b), b, t) for rgb, z, b, t in photos] for photos in (train, *splits)]


def scores(photos: list[tuple]) -> list[dict]:
    """Per photo, the union IoU of the plain mask, the clipped one and every GrabCut setting."""
    rows = []
    for rgb, logits, boxes, truth in photos:
        masks = photo_masks(rgb, logits, boxes, truth.shape)
        rows.append({key: union_iou(m, truth) for key, m in masks.items()})
    return rows


def round_scores(sam, cache, fold: Path, box_scale: float, colour_head: bool) -> dict:
    splits = [split_photos(sam, cache, fold, s, box_scale) for s in ("train", "val", "test")]
    sam_alone = float(np.mean([union_iou((z > 0).any(0), t) for _, z, _, t in splits[2]]))
    if colour_head:
        splits = with_colour_head(*splits)
    pick_rows = scores(splits[0]) + scores(splits[1])
    test_rows = scores(splits[2])
    settings = [k for k in test_rows[0] if isinstance(k, tuple)]
    best = max(settings, key=lambda k: np.mean([r[k] for r in pick_rows]))
    loose = [k for k in settings if k[3] == "loose"]
    best_loose = max(loose, key=lambda k: np.mean([r[k] for r in pick_rows]))
    fixed = {str(k): float(np.mean([r[k] for r in test_rows])) for k in settings}
    return {
        "SAM alone": sam_alone,
        "plain": float(np.mean([r["plain"] for r in test_rows])),
        "grabcut, setting picked on train+val": float(np.mean([r[best] for r in test_rows])),
        "grabcut, outside the box only probable, setting picked on train+val": float(
            np.mean([r[best_loose] for r in test_rows])
        ),
        "SAM's mask clipped to its box": float(
            np.mean([r["SAM's mask clipped to its box"] for r in test_rows])
        ),
        "picked": str(best),
        "picked_loose": str(best_loose),
        "pick_plain": float(np.mean([r["plain"] for r in pick_rows])),
        "pick_best": float(np.mean([r[best] for r in pick_rows])),
        "fixed": fixed,
    }


def main() -> None:
    parser = probe_parser()
    parser.add_argument("--box-scale", type=float, default=1.0)
    parser.add_argument(
        "--colour-head", action="store_true", help="GrabCut seeded by the colour head's logits"
    )
    args = parser.parse_args()
    rounds = score_rounds(
        args,
        lambda sam, cache, fold: round_scores(sam, cache, fold, args.box_scale, args.colour_head),
        shown=lambda scores: {k: v for k, v in scores.items() if k != "fixed"},
    )
    summary = {}
    for model, first in next(iter(rounds.values())).items():
        plain = [r[model]["plain"] for r in rounds.values()]
        keys = [
            "plain",
            "SAM's mask clipped to its box",
            "grabcut, setting picked on train+val",
            "grabcut, outside the box only probable, setting picked on train+val",
        ]
        for key in keys + list(first["fixed"]):
            values = [r[model][key] if key in keys else r[model]["fixed"][key] for r in rounds.values()]
            summary[f"{model}: {key}"] = paired(values, plain)
    for key, value in summary.items():
        print(key, value)
    args.out.write_text(
        json.dumps(
            {
                "summary": summary,
                "rounds": rounds,
                "box_scale": args.box_scale,
                "colour_head": args.colour_head,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
