"""Mask NMS after SAM in the cascade, scored offline on saved ``inspection.evaluate`` outputs.

    PYTHONPATH=. .venv/bin/python bench/experiments/cascade_mask_nms/probe.py --work /tmp/s22/folds \\
        --out bench/experiments/cascade_mask_nms/probe.json

``--work`` is ``bench/experiments/cascade_anomaly_folds/run.py``'s work folder: 5 folds of hazelnut_toy,
and per fold, detector (YOLO11n, YOLOE-11n) and threshold (0.25, picked on val) the cascade's
``predictions.json`` on the test fold (``eval/f<k>_<model>_<conf>_plain``; ``--regions``: ``..._regions``,
PatchCore's regions added as boxes of class ``anomaly``, which no ground-truth category scores). Each
image's instances, best box score first, drop every later one of the same class whose mask overlaps a kept
one by mask IoU above T (or, with ``containment``, by more than T of its own area). Scored with
pycocotools' COCOeval (segm, per class, AP@[.50:.95] as the report's mask AP) and the per-image IoU of the
defect images (union of the masks), before and after, on the same predictions: no model runs. ``--demo
FOLDER TRUTH`` scores one more split the same way (``make demo``'s ``runs/demo/inspect/test`` against its
``runs/demo/synthetic_nut/annotations/instances_test.json``), into the output's ``demo``.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def suppress(predictions: list[dict], threshold: float, containment: bool) -> list[dict]:
    """Greedy mask NMS per image and class, by ``score`` (the box score)."""
    kept: list[dict] = []
    by_image: dict[int, list[dict]] = {}
    for entry in predictions:
        by_image.setdefault(entry["image_id"], []).append(entry)
    for entries in by_image.values():
        chosen: list[dict] = []
        for entry in sorted(entries, key=lambda e: -e["score"]):
            same = [c for c in chosen if c["category_id"] == entry["category_id"]]
            if same and overlap(entry, same, containment) > threshold:
                continue
            chosen.append(entry)
        kept += chosen
    return kept


def overlap(entry: dict, others: list[dict], containment: bool) -> float:
    rle = entry["segmentation"]
    if not containment:
        return float(np.max(mask_utils.iou([rle], [o["segmentation"] for o in others], [0] * len(others))))
    area = float(mask_utils.area(rle))
    if area == 0:
        return 1.0
    shared = [mask_utils.area(mask_utils.merge([rle, o["segmentation"]], intersect=True)) for o in others]
    return float(max(shared)) / area


def mask_ap(truth: COCO, predictions: list[dict]) -> float:
    if not predictions:
        return 0.0
    results = truth.loadRes(copy.deepcopy(predictions))
    evaluation = COCOeval(truth, results, "segm")
    evaluation.params.maxDets = [1, 10, 300]
    evaluation.evaluate()
    evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # T, R, K at area all, maxDets 300
    per_class = [precision[:, :, k] for k in range(precision.shape[2])]
    aps = [float(np.mean(p[p > -1])) for p in per_class if (p > -1).any()]
    return float(np.mean(aps)) if aps else 0.0


def defect_iou(truth: COCO, predictions: list[dict]) -> float:
    scores = []
    for image_id in truth.getImgIds():
        annotations = truth.loadAnns(truth.getAnnIds(imgIds=image_id))
        if not annotations:
            continue
        info = truth.loadImgs(image_id)[0]
        true = np.zeros((info["height"], info["width"]), bool)
        for a in annotations:
            true |= truth.annToMask(a).astype(bool)
        found = np.zeros_like(true)
        for p in predictions:
            if p["image_id"] == image_id:
                found |= mask_utils.decode(p["segmentation"]).astype(bool)
        union = (true | found).sum()
        scores.append((true & found).sum() / union if union else 1.0)
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["yolo11n", "yoloe11n"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--demo", nargs=2, type=Path, metavar=("FOLDER", "TRUTH"))
    parser.add_argument(
        "--regions", action="store_true", help="the runs with PatchCore's regions (eval/..._regions) instead"
    )
    args = parser.parse_args()
    variants = {"none": None, "iou 0.7": (0.7, False), "iou 0.5": (0.5, False), "iou 0.3": (0.3, False),
                "contained 0.8": (0.8, True), "contained 0.5": (0.5, True)}  # fmt: skip
    rows, summary = [], {}
    for model in args.models:
        for conf in ("0.25", "val"):
            per_variant: dict[str, list[tuple[float, float, int]]] = {v: [] for v in variants}
            for fold in range(args.folds):
                truth = COCO(str(args.work / f"fold{fold}" / "annotations" / "instances_test.json"))
                variant = "regions" if args.regions else "plain"
                folder = args.work / "eval" / f"f{fold}_{model}_{conf}_{variant}"
                predictions = json.loads((folder / "predictions.json").read_text())
                for name, rule in variants.items():
                    kept = predictions if rule is None else suppress(predictions, *rule)
                    figures = (mask_ap(truth, kept), defect_iou(truth, kept), len(kept))
                    per_variant[name].append(figures)
                    rows.append({"model": model, "conf": conf, "fold": fold, "variant": name,
                                 "mask_ap": round(figures[0], 4), "iou_defect": round(figures[1], 4),
                                 "instances": figures[2]})  # fmt: skip
            base = np.array([f[:2] for f in per_variant["none"]])
            for name, figures in per_variant.items():
                values = np.array([f[:2] for f in figures])
                delta = values - base
                key = f"{model} conf {conf} {name}"
                summary[key] = {
                    "mask_ap": [round(float(values[:, 0].mean()), 4), round(float(values[:, 0].std()), 4)],
                    "iou_defect": [round(float(values[:, 1].mean()), 4), round(float(values[:, 1].std()), 4)],
                    "delta_mask_ap_per_fold": [round(float(d), 4) for d in delta[:, 0]],
                    "delta_iou_per_fold": [round(float(d), 4) for d in delta[:, 1]],
                    "instances": sum(f[2] for f in figures),
                }
                print(f"{key:32s} mask AP {values[:, 0].mean():.3f}±{values[:, 0].std():.3f} "
                      f"(Δ {delta[:, 0].mean():+.3f}, folds up {int((delta[:, 0] > 0).sum())}/down "
                      f"{int((delta[:, 0] < 0).sum())})  IoU {values[:, 1].mean():.3f} "
                      f"(Δ {delta[:, 1].mean():+.3f})"
                      f"  instances {summary[key]['instances']}", flush=True)  # fmt: skip
    demo = {}
    if args.demo:
        truth = COCO(str(args.demo[1]))
        predictions = json.loads((args.demo[0] / "predictions.json").read_text())
        for name, rule in variants.items():
            kept = predictions if rule is None else suppress(predictions, *rule)
            demo[name] = {
                "mask_ap": round(mask_ap(truth, kept), 4),
                "iou_defect": round(defect_iou(truth, kept), 4),
                "instances": len(kept),
            }
            print(f"demo {name:16s} {demo[name]}", flush=True)
    args.out.write_text(json.dumps({"summary": summary, "rows": rows, "demo": demo}, indent=1) + "\n")


if __name__ == "__main__":
    main()
