"""How much of each ``bent`` mask lies on visible material (a diagnostic).

    PYTHONPATH=. .venv/bin/python bench/experiments/sam_per_class/visible.py \
        --data W/data/synthetic_nut --out bench/experiments/sam_per_class/visible.json

The generator's ``bent`` mask is the old silhouette XOR the new one plus a re-shaded band: a tab
bent inwards leaves background (dark, no nut) inside the mask, where the image shows nothing but
the missing tab. The nut's silhouette here is the photo's Otsu threshold (bright metal on a dark
background); ``|mask & silhouette| / |mask|`` is the IoU that a perfect segmenter of the visible
defect would score on the instance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from segmentation.data import load_split
from segmentation.embeddings import load_rgb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--category", default="bent")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    fractions = {}
    for split_name in ("train", "val", "test"):
        split = load_split(args.data, split_name)
        for image in split.images:
            names = {split.categories[a["category_id"]] for a in image.annotations}
            if image.is_background or args.category not in names:
                continue
            grey = cv2.cvtColor(load_rgb(image.path), cv2.COLOR_RGB2GRAY)
            threshold, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            mask = image.union_mask()
            fractions[Path(image.path).name] = float((mask & (grey > threshold)).sum() / mask.sum())
    values = np.array(list(fractions.values()))
    print(
        f"{args.category}: {len(values)} images, visible fraction mean {values.mean():.4f}, "
        f"min {values.min():.3f}, max {values.max():.3f}"
    )
    args.out.write_text(json.dumps({"mean": float(values.mean()), "per_image": fractions}, indent=1))


if __name__ == "__main__":
    main()
