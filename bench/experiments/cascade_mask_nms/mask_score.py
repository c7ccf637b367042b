"""After the mask NMS, dropping instances whose SAM predicted IoU is low: scored offline as ``probe.py``.

    PYTHONPATH=.:bench/experiments/cascade_mask_nms .venv/bin/python \\
        bench/experiments/cascade_mask_nms/mask_score.py --work /tmp/s22/folds \\
        --out bench/experiments/cascade_mask_nms/mask_score.json

The same saved outputs as ``probe.py``; after its NMS at 0.7, every instance whose ``mask_score`` (SAM's
predicted IoU) is under T goes; mask AP and per-image IoU as there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from probe import defect_iou, fold_summary, mask_ap, print_summary, suppress  # this folder's probe.py

from common.coco import read_coco_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["yolo11n", "yoloe11n"])
    parser.add_argument("--floors", nargs="+", type=float, default=[0.6, 0.7, 0.8, 0.85])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    summary = {}
    for model in args.models:
        for conf in ("0.25", "val"):
            per: dict[float, list] = {floor: [] for floor in [0.0, *args.floors]}
            for fold in range(args.folds):
                truth = read_coco_index(args.work / f"fold{fold}" / "annotations" / "instances_test.json")
                folder = args.work / "eval" / f"f{fold}_{model}_{conf}_plain"
                base = suppress(json.loads((folder / "predictions.json").read_text()), 0.7, False)
                for floor in per:
                    kept = [entry for entry in base if entry["mask_score"] >= floor]
                    per[floor].append((mask_ap(truth, kept), defect_iou(truth, kept), len(kept)))
            for floor, figures in per.items():
                key = f"{model} conf {conf} mask_score >= {floor:g}"
                summary[key] = fold_summary(figures, per[0.0])
                print_summary(key, summary[key])
    args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
