"""Other colour distances for the colour prompt and head than CIE76 to the border's median (issue #12).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/experiments/sam_colour_prompt/distances.py \
        DATA WORK cie76,blur1,mahalanobis,nearest,nearest_blur [CACHE_DIR] > OUT.txt

Per round of ``segmentation.crossval``'s 5-fold deal (seed 0), ``colour_distance`` (in
``segmentation.colour_head`` and ``segmentation.colour_prompt``) is replaced by each variant, the colour
head fit on untrained MobileSAM's box logits of the round's train photos, and untrained MobileSAM scored on
its test photos (ground-truth boxes) twice: with the colour prompt whose centre and scale come from that
fit (as ``fitted_constants.py``), and with the fitted head on its plain logits. Variants: ``cie76`` (the
package's), ``blur1`` (the photo blurred by a 1 px Gaussian first), ``mahalanobis`` (to the border pixels'
Lab mean and covariance, 2 Lab units of noise floor), ``nearest`` (to the nearest of up to 256 border
colours: a striped skin is several colours), ``nearest_blur`` (both).
"""

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

import segmentation.colour_head as ch
import segmentation.colour_prompt as cp
from common.io import embeddings_root
from segmentation.colour_head import DISTANCE_SCALE, LOGIT_SCALE, fit_colour_head, training_pixels
from segmentation.colour_prompt import ColourPrompt
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache, load_rgb
from segmentation.evaluate import evaluate_model
from segmentation.folds import deal_folds, write_fold
from segmentation.models import load_sam
from segmentation.predict import box_logits

ORIGINAL = ch.colour_distance


def _lab(rgb, window, blur=0.0):
    crop = rgb[window].astype(np.float32) / 255
    if blur:
        crop = cv2.GaussianBlur(crop, (0, 0), blur)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)


def _border(lab):
    return np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])


def blur1(rgb, window):
    lab = _lab(rgb, window, 1.0)
    return np.linalg.norm(lab - np.median(_border(lab), axis=0), axis=-1).astype(np.float32)


def mahalanobis(rgb, window):
    lab = _lab(rgb, window)
    border = _border(lab).astype(np.float64)
    mean = border.mean(0)
    cov = np.cov(border.T) + np.eye(3) * 4.0  # 2 Lab units of noise floor
    inv = np.linalg.inv(cov)
    d = lab.reshape(-1, 3) - mean
    m = np.sqrt(np.einsum("ij,jk,ik->i", d, inv, d)).reshape(lab.shape[:2])
    return (m * 10).astype(np.float32)  # ~CIE76-like range for the fit's start


def nearest(rgb, window):
    lab = _lab(rgb, window)
    border = _border(lab)
    pick = border[:: max(1, len(border) // 256)]
    flat = lab.reshape(-1, 3)
    best = np.full(len(flat), np.inf, np.float32)
    for start in range(0, len(pick), 32):
        part = pick[start : start + 32]
        dist = np.linalg.norm(flat[:, None, :] - part[None], axis=-1).min(1)
        best = np.minimum(best, dist)
    return best.reshape(lab.shape[:2]).astype(np.float32)


def nearest_blur(rgb, window):
    lab = _lab(rgb, window, 1.0)
    border = _border(lab)
    pick = border[:: max(1, len(border) // 256)]
    flat = lab.reshape(-1, 3)
    best = np.full(len(flat), np.inf, np.float32)
    for start in range(0, len(pick), 32):
        dist = np.linalg.norm(flat[:, None, :] - pick[start : start + 32][None], axis=-1).min(1)
        best = np.minimum(best, dist)
    return best.reshape(lab.shape[:2]).astype(np.float32)


VARIANTS = {
    "cie76": ORIGINAL,
    "blur1": blur1,
    "mahalanobis": mahalanobis,
    "nearest": nearest,
    "nearest_blur": nearest_blur,
}

data, work = Path(sys.argv[1]), Path(sys.argv[2])
names = sys.argv[3].split(",")
sam = load_sam("vit_t", device="cpu")
root = Path(sys.argv[4]) if len(sys.argv) > 4 else embeddings_root()
cache = EmbeddingCache(root, sam, model_name="vit_t")
pool, categories, folds = deal_folds(data, 5, seed=0)
rounds = []
for fold in folds:
    folder = write_fold(data, pool, categories, fold, work / f"fold{fold.index}")
    train, test = load_split(folder, "train"), load_split(folder, "test")
    images = [im for im in train.images if not im.is_background]
    with torch.inference_mode():
        cached = [
            (im, emb, box_logits(sam, emb, im.boxes())[0], load_rgb(im.path))
            for im, emb in zip(images, cache.embed([im.path for im in images], progress=False), strict=True)
        ]
    rounds.append((fold, cached, test, cache.embed([im.path for im in test.images], progress=False)))

for name in names:
    ch.colour_distance = cp.colour_distance = VARIANTS[name]
    prompt_ious, head_ious = [], []
    for _, cached, test, embs in rounds:
        xs, ys = [], []
        for im, _, logits, rgb in cached:
            x, y = training_pixels(logits, rgb, im.boxes(), im.union_mask())
            xs.append(x)
            ys.append(y)
        head = fit_colour_head(np.concatenate(xs), np.concatenate(ys), seed=0)
        wl, wd, b = head.weights
        prompt = ColourPrompt(
            centre=-b * DISTANCE_SCALE / wd, scale=(wl / LOGIT_SCALE) / (wd / DISTANCE_SCALE)
        )
        with torch.inference_mode():
            p = evaluate_model(sam, test, embs, name=name, progress=False, colour_prompt=prompt)
            h = evaluate_model(sam, test, embs, name=name, progress=False, colour_head=head)
        prompt_ious.append(p.summary.iou["all"])
        head_ious.append(h.summary.iou["all"])
    summary = [
        f"{what} {np.mean(v):.4f} +- {np.std(v, ddof=1):.4f} {np.round(v, 4).tolist()}"
        for what, v in (("prompt", prompt_ious), ("head", head_ious))
    ]
    print(f"{name}: " + " | ".join(summary), flush=True)
