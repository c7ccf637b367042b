"""Specks in the cascade's masks: islands and holes of a few SAM logit cells, removed, scored offline.

    PYTHONPATH=.:bench/experiments/cascade_mask_nms .venv/bin/python \\
        bench/experiments/cascade_specks/specks_probe.py --work /tmp/s22/folds \\
        --out bench/experiments/cascade_specks/specks_probe.json

The same saved outputs as ``cascade_mask_nms/probe.py`` (its ``--work``), after its mask NMS at 0.7 (the
cascade's default since): each mask loses its holes and islands under N of SAM's 256x256 logit cells
(``segmentation.specks.remove_specks``, segment-anything's ``remove_small_regions``, the
annotation page's ``--speck-cells``), and is scored as there (mask AP, per-image IoU on defect photos).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from probe import defect_iou, mask_ap, suppress  # cascade_mask_nms/probe.py, on PYTHONPATH
from pycocotools.coco import COCO

from converters.masks import mask_to_rle, rle_to_mask
from segmentation.specks import min_region_area, remove_specks


def without_specks(predictions: list[dict], cells: float) -> list[dict]:
    cleaned = []
    for entry in predictions:
        mask = rle_to_mask(entry["segmentation"])
        area = min_region_area(cells, max(mask.shape), 256)
        cleaned.append({**entry, "segmentation": mask_to_rle(remove_specks(mask, area))})
    return cleaned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["yolo11n", "yoloe11n"])
    parser.add_argument("--cells", nargs="+", type=float, default=[4, 16, 64])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    summary = {}
    for model in args.models:
        for conf in ("0.25", "val"):
            per = {cells: [] for cells in [0.0, *args.cells]}
            for fold in range(args.folds):
                truth = COCO(str(args.work / f"fold{fold}" / "annotations" / "instances_test.json"))
                folder = args.work / "eval" / f"f{fold}_{model}_{conf}_plain"
                base = suppress(json.loads((folder / "predictions.json").read_text()), 0.7, False)
                for cells in per:
                    kept = base if cells == 0 else without_specks(base, cells)
                    per[cells].append((mask_ap(truth, kept), defect_iou(truth, kept)))
            ref = np.array(per[0.0])
            for cells, figures in per.items():
                values = np.array(figures)
                delta = values - ref
                key = f"{model} conf {conf} cells {cells:g}"
                summary[key] = {
                    "mask_ap": round(float(values[:, 0].mean()), 4),
                    "iou_defect": round(float(values[:, 1].mean()), 4),
                    "delta_mask_ap_per_fold": [round(float(d), 4) for d in delta[:, 0]],
                    "delta_iou_per_fold": [round(float(d), 4) for d in delta[:, 1]],
                }
                print(f"{key:28s} mask AP {values[:, 0].mean():.4f} (Δ {delta[:, 0].mean():+.4f})  "
                      f"IoU {values[:, 1].mean():.4f} (Δ {delta[:, 1].mean():+.4f})", flush=True)  # fmt: skip
    args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
