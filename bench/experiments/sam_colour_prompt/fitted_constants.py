"""Are the colour prompt's constants a leak? Refit them on each round's train photos only (issue #12).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/experiments/sam_colour_prompt/fitted_constants.py \
        DATA WORK [CACHE_DIR] > OUT.txt

``segmentation.colour_prompt``'s defaults (centre 22, scale 2) were read off colour-head fits on
``hazelnut_toy`` whose photos are test photos in other rounds. Here, per round of the 5-fold deal
``segmentation.crossval`` uses (seed 0), the colour head is fit on untrained MobileSAM's box logits of
that round's train photos alone, and its weights turned into the map's constants: the head's logit
``w_l * l / 10 + w_d * d / 20 + b`` in SAM-logit units is ``l + (d - centre) / scale`` with
``centre = -20 b / w_d`` and ``scale = 2 w_l / w_d``. Untrained MobileSAM is then scored on the round's
test photos with no prompt, the default prompt and the refit one (``evaluate_model``, ground-truth
boxes). DATA: a converted data set; WORK: where the round folders go (``WORK/rows.json`` the rows).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from common.io import embeddings_root
from segmentation.colour_head import DISTANCE_SCALE, LOGIT_SCALE, fit_colour_head, training_pixels
from segmentation.colour_prompt import ColourPrompt
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache, load_rgb
from segmentation.evaluate import evaluate_model
from segmentation.folds import deal_folds, write_fold
from segmentation.models import load_sam
from segmentation.predict import box_logits

data, work = Path(sys.argv[1]), Path(sys.argv[2])
sam = load_sam("vit_t", device="cpu")
root = Path(sys.argv[3]) if len(sys.argv) > 3 else embeddings_root()
cache = EmbeddingCache(root, sam, model_name="vit_t")
pool, categories, folds = deal_folds(data, 5, seed=0)
rows = []
for fold in folds:
    folder = write_fold(data, pool, categories, fold, work / f"fold{fold.index}")
    train = load_split(folder, "train")
    images = [im for im in train.images if not im.is_background]
    xs, ys = [], []
    with torch.inference_mode():
        for im, emb in zip(images, cache.embed([im.path for im in images], progress=False), strict=True):
            logits, _ = box_logits(sam, emb, im.boxes())
            x, y = training_pixels(logits, load_rgb(im.path), im.boxes(), im.union_mask())
            xs.append(x)
            ys.append(y)
    wl, wd, b = fit_colour_head(np.concatenate(xs), np.concatenate(ys), seed=0).weights
    fitted = ColourPrompt(centre=-b * DISTANCE_SCALE / wd, scale=(wl / LOGIT_SCALE) / (wd / DISTANCE_SCALE))
    test = load_split(folder, "test")
    embs = cache.embed([im.path for im in test.images], progress=False)
    row = {"fold": fold.index, "centre": round(fitted.centre, 2), "scale": round(fitted.scale, 3)}
    with torch.inference_mode():
        for name, prompt in (("none", None), ("default", ColourPrompt()), ("fitted", fitted)):
            result = evaluate_model(sam, test, embs, name=name, progress=False, colour_prompt=prompt)
            row[name] = round(result.summary.iou["all"], 4)
    rows.append(row)
    print(row, flush=True)
for key in ("none", "default", "fitted"):
    values = [r[key] for r in rows]
    print(f"{key}: {np.mean(values):.4f} +- {np.std(values, ddof=1):.4f}")
diff = [r["fitted"] - r["default"] for r in rows]
better = sum(d > 0 for d in diff)
print(f"fitted - default: {np.mean(diff):+.4f} +- {np.std(diff, ddof=1):.4f}, better in {better} of 5")
json.dump(rows, open(work / "rows.json", "w"), indent=1)
