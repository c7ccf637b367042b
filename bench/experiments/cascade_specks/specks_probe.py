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

from probe import (  # cascade_mask_nms/probe.py, on PYTHONPATH
    defect_iou,
    fold_summary,
    mask_ap,
    print_summary,
    suppress,
)

from common.coco import read_coco_index
from converters.masks import mask_to_rle, rle_to_mask
from segmentation.specks import without_specks


def cleaned(predictions: list[dict], cells: float) -> list[dict]:
    """Each prediction's mask less its specks (``segmentation.specks.without_specks``, the cascade's)."""
    return [
        {**e, "segmentation": mask_to_rle(without_specks(rle_to_mask(e["segmentation"])[None], cells)[0])}
        for e in predictions
    ]


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
                truth = read_coco_index(args.work / f"fold{fold}" / "annotations" / "instances_test.json")
                folder = args.work / "eval" / f"f{fold}_{model}_{conf}_plain"
                base = suppress(json.loads((folder / "predictions.json").read_text()), 0.7, False)
                for cells in per:
                    kept = base if cells == 0 else cleaned(base, cells)
                    per[cells].append((mask_ap(truth, kept), defect_iou(truth, kept), len(kept)))
            for cells, figures in per.items():
                key = f"{model} conf {conf} cells {cells:g}"
                summary[key] = fold_summary(figures, per[0.0])
                print_summary(key, summary[key])
    args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
