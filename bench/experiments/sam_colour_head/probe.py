"""A per-pixel colour head on SAM's logits, fit on each round's train photos (an experiment).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_colour_head/probe.py \
        --runs W/runs/VARIANT/hazelnut_toy [--tta] [--box-scale S] \
        --out bench/experiments/sam_colour_head/NAME.json

On ``hazelnut_toy`` most of SAM's error lies 2-8 px from the annotator's outline, on the fuzzy
edges of paint stains (``bench/results/sam_headroom.md``). Where an annotator puts that edge
depends on how different the colour is from the nut's skin, which SAM's box prompt does not
say. The head: logistic regression per pixel inside each box on SAM's logit ``l`` (clipped
to +-20, /10) and ``d``, the CIE76 colour distance (Lab) of the pixel to the median colour of
the box's border pixels (/20, the local skin colour): features ``[l, d, 1]`` (``linear``) or
``[l, d, d^2, l*d, 1]`` (``quadratic``). Fit on the round's train photos (in-box pixels against
the ground-truth union, up to 400k sampled), kept only where it raises the round's val IoU
(``gated``), scored on its test photos like ``segmentation.evaluate`` (IoU of the union of
the instance masks, mean over images), for the untrained and the round's fine-tuned model.

``--box-scale``: every prompt box (and the head's window) grown about its centre by this factor,
for the looser boxes a detector gives the inspection cascade. ``--runs``: a k-fold data set
folder of ``bench/sam_quality.py``'s ``--work`` (``fold*/`` data, ``runs/fold*/decoder.pt``).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from experiments.probe_rounds import paired, probe_parser, score_rounds
from sam_headroom import grown_boxes, union_iou

from segmentation.data import SegmentationImage, load_split
from segmentation.embeddings import EmbeddingCache, load_rgb
from segmentation.tta import TTA_VIEWS, view_logits
from segmentation.views import View

FEATURES = ("linear", "quadratic", "Lab channels", "linear + blurred distance")
WIDTH = {"linear": 3, "quadratic": 5, "Lab channels": 6, "linear + blurred distance": 4}
MAX_PIXELS = 400_000


def box_colour_difference(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """``(h, w, 3)`` Lab difference of each pixel in ``box`` to the median colour of its border pixels."""
    h, w = image.shape[:2]
    x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x1, y1 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    lab = cv2.cvtColor(image[y0:y1, x0:x1].astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    ring = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    return lab - np.median(ring, axis=0), (slice(y0, y1), slice(x0, x1))


def features(logit: np.ndarray, difference: np.ndarray, kind: str) -> np.ndarray:
    z, d, one = np.clip(logit, -20, 20) / 10, np.linalg.norm(difference, axis=-1) / 20, np.ones_like(logit)
    cols = {
        "linear": lambda: [z, d, one],
        "quadratic": lambda: [z, d, d**2, z * d, one],
        "Lab channels": lambda: [z, d, *np.moveaxis(difference / 20, -1, 0), one],
        "linear + blurred distance": lambda: [z, d, cv2.GaussianBlur(d, (0, 0), 2), one],
    }[kind]()
    return np.stack(cols, -1).astype(np.float32)


class Sample:
    """One photo: its ground-truth union, SAM's mask, and per box the in-box logits and colour distances."""

    def __init__(self, image: SegmentationImage, logits: np.ndarray, boxes: np.ndarray):
        rgb = load_rgb(image.path)
        self.gt = image.union_mask()
        self.sam = (logits > 0).any(0)
        self.boxes = []
        for box, logit in zip(boxes, logits, strict=True):
            distance, window = box_colour_difference(rgb, box)
            self.boxes.append((window, logit[window], distance))

    def mask(self, weights: np.ndarray | None, kind: str, outside: bool = True) -> np.ndarray:
        """SAM's mask with the head's decision inside the boxes (``outside``: SAM's mask kept beyond them)."""
        out = np.zeros_like(self.gt)
        inside = np.zeros_like(self.gt)
        for window, logit, distance in self.boxes:
            z = logit if weights is None else features(logit, distance, kind) @ weights
            out[window] |= z > 0
            inside[window] = True
        return out | (self.sam & ~inside) if outside else out

    def iou(self, weights: np.ndarray | None, kind: str, outside: bool = True) -> float:
        pred = self.sam if weights is None and outside else self.mask(weights, kind, outside)
        return union_iou(pred, self.gt)


def fit(samples: list[Sample], kind: str) -> np.ndarray:
    rows = [features(z, d, kind).reshape(-1, WIDTH[kind]) for s in samples for _, z, d in s.boxes]
    labels = [s.gt[w].reshape(-1) for s in samples for w, _, _ in s.boxes]
    return fit_rows(np.concatenate(rows), np.concatenate(labels).astype(np.float32))


def fit_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Logistic-regression weights of rows ``x`` against 0/1 ``y`` (LBFGS, up to 400k rows sampled)."""
    if len(x) > MAX_PIXELS:
        pick = np.random.default_rng(0).choice(len(x), MAX_PIXELS, replace=False)
        x, y = x[pick], y[pick]
    weights = torch.zeros(x.shape[1], requires_grad=True)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimiser = torch.optim.LBFGS([weights], max_iter=300)

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ weights, yt)
        loss.backward()
        return loss

    optimiser.step(closure)
    return weights.detach().numpy()


def split_samples(
    sam, cache: EmbeddingCache, data: Path, split: str, tta: bool, box_scale: float
) -> list[Sample]:
    images = [im for im in load_split(data, split).images if not im.is_background]
    paths = [im.path for im in images]
    views = TTA_VIEWS if tta else TTA_VIEWS[:1]
    embeddings = {
        v: cache.embed(paths, views=[View(transform=v)] * len(paths), progress=False) for v in views
    }
    samples = []
    for i, image in enumerate(images):
        size = (image.height, image.width)
        boxes = grown_boxes(image.boxes(), box_scale, size)
        logits = sum(view_logits(sam, embeddings[v][i], boxes, v, size)[0] for v in views) / len(views)
        samples.append(Sample(image, logits, boxes))
    return samples


def round_scores(sam, cache: EmbeddingCache, fold: Path, tta: bool, box_scale: float) -> dict[str, float]:
    train, val, test = (split_samples(sam, cache, fold, s, tta, box_scale) for s in ("train", "val", "test"))
    scores = {
        "plain": float(np.mean([s.iou(None, "") for s in test])),
        "SAM's mask clipped to its box": float(np.mean([s.iou(None, "", outside=False) for s in test])),
    }
    val_plain = np.mean([s.iou(None, "") for s in val])
    for kind in FEATURES:
        weights = fit(train, kind)
        head = float(np.mean([s.iou(weights, kind) for s in test]))
        val_head = np.mean([s.iou(weights, kind) for s in val])
        scores[kind] = head
        scores[f"{kind}, gated on val"] = head if val_head > val_plain else scores["plain"]
        scores[f"{kind} weights"] = [round(float(w), 4) for w in weights]
    return scores


def main() -> None:
    parser = probe_parser()
    parser.add_argument("--tta", action="store_true", help="logits averaged over the flips first")
    parser.add_argument(
        "--box-scale", type=float, default=1.0, help="prompt boxes grown about their centres (default 1)"
    )
    args = parser.parse_args()
    rounds = score_rounds(
        args, lambda sam, cache, fold: round_scores(sam, cache, fold, args.tta, args.box_scale)
    )
    summary = {}
    for model in next(iter(rounds.values())):
        keys = [k for k in next(iter(rounds.values()))[model] if "weights" not in k]
        plain = [r[model]["plain"] for r in rounds.values()]
        for key in keys:
            summary[f"{model}: {key}"] = paired([r[model][key] for r in rounds.values()], plain)
    for key, value in summary.items():
        print(key, value)
    args.out.write_text(
        json.dumps(
            {"summary": summary, "rounds": rounds, "tta": args.tta, "box_scale": args.box_scale}, indent=1
        )
    )


if __name__ == "__main__":
    main()
