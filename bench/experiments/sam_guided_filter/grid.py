"""Throw-away (issue 12): guided-filter refinement of SAM's logits, grid over dumped logits.

    cd . && OMP_NUM_THREADS=1 .venv/bin/python bench/experiments/sam_guided_filter/grid.py \
        --dumps /tmp/i12refine/dumps --out bench/experiments/sam_guided_filter/grid.json

For every dumped (data set, round, split) and model (zs, ft) and read-out (plain, tta), the
per-image IoU (union of instance masks vs union of ground truth) of every refinement setting:
p = sigmoid(logits / T) refined by a guided filter (radius r, eps, guide grey or colour in
[0, 1]), thresholded at 0.5; optionally only within `band` px of the unrefined mask's boundary.
Setting "off" is the plain threshold at 0. Selection/reporting is in pick.py (once select.py:
that name hid the standard library's select module, which torch imports, from scripts run here).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from gf import guided

TEMPS = (1.0, 4.0)
GUIDES = ("gray", "rgb")
RADII = (1, 2, 3, 4, 6, 8)
EPSS = (1e-4, 1e-3, 1e-2, 1e-1)
BANDS = (0, 2, 4)


def key(t, g, r, e, b) -> str:
    return f"T{t:g}_{g}_r{r}_e{e:g}_b{b}"


def band_mask(mask: np.ndarray, width: int) -> np.ndarray:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, disc) > 0) & ~(cv2.erode(m, disc) > 0)


def refine_instance(logit: np.ndarray, guides: dict, t: float, g: str, r: int, e: float) -> np.ndarray:
    """Refined probability (H, W) float, computed on a crop around where p is not ~0."""
    h, w = logit.shape
    p = 1.0 / (1.0 + np.exp(-np.clip(logit / t, -30, 30)))
    # Only near the unrefined mask can the threshold flip: crop to its box plus the filter's reach
    # (2r) and a margin; outside, the refined probability is taken as 0.
    ys, xs = np.nonzero(logit > 0)
    out = np.zeros((h, w))
    if len(ys) == 0:
        return out
    m = 2 * r + 10 + max(BANDS)
    y0, y1 = max(ys.min() - m, 0), min(ys.max() + m + 1, h)
    x0, x1 = max(xs.min() - m, 0), min(xs.max() + m + 1, w)
    out[y0:y1, x0:x1] = guided(guides[g][y0:y1, x0:x1], p[y0:y1, x0:x1], r, e)
    return out


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    return float((pred & gt).sum() / max((pred | gt).sum(), 1))


def score_file(path: Path) -> dict:
    d = np.load(path)
    n = int(d["n"])
    res: dict = {}
    for i in range(n):
        rgb = d[f"{i}/rgb"].astype(np.float64) / 255.0
        guides = {
            "rgb": rgb,
            "gray": cv2.cvtColor(d[f"{i}/rgb"], cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0,
        }
        gt = d[f"{i}/gt"].any(0)
        image_id = int(d[f"{i}/id"])
        for model in ("zs", "ft"):
            for readout in ("plain", "tta"):
                logits = d[f"{i}/{model}/{readout}"].astype(np.float64)
                plain = logits > 0
                bands = {b: [band_mask(m, b) for m in plain] for b in BANDS if b}  # noqa
                scores = {"off": iou(plain.any(0), gt)}
                for t, g, r, e in itertools.product(TEMPS, GUIDES, RADII, EPSS):
                    refined = np.stack([refine_instance(lg, guides, t, g, r, e) > 0.5 for lg in logits])
                    for b in BANDS:
                        masks = refined if b == 0 else np.where(np.stack(bands[b]), refined, plain)
                        scores[key(t, g, r, e, b)] = iou(masks.any(0), gt)
                res.setdefault(f"{model}/{readout}", {})[image_id] = scores
    return res


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dumps", type=Path, default=Path("/tmp/i12refine/dumps"))
    parser.add_argument("--out", type=Path, default=Path("bench/experiments/sam_guided_filter/grid.json"))
    parser.add_argument("--eps", type=float, nargs="*", help="override EPSS")
    parser.add_argument("--temps", type=float, nargs="*", help="override TEMPS")
    parser.add_argument("--bands", type=int, nargs="*", help="override BANDS")
    args = parser.parse_args()
    global EPSS, TEMPS, BANDS
    EPSS, TEMPS, BANDS = tuple(args.eps or EPSS), tuple(args.temps or TEMPS), tuple(args.bands or BANDS)
    cv2.setNumThreads(1)
    existing = json.loads(args.out.read_text()) if args.out.exists() else {}
    for path in sorted(args.dumps.glob("*.npz")):
        if path.stem in existing:
            continue
        start = time.perf_counter()
        existing[path.stem] = score_file(path)
        args.out.write_text(json.dumps(existing))
        print(f"{path.stem}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
