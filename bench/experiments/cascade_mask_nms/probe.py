"""Mask NMS after SAM in the cascade, scored offline on saved ``inspection.evaluate`` outputs.

    PYTHONPATH=. .venv/bin/python bench/experiments/cascade_mask_nms/probe.py --work /tmp/s22/folds \\
        --out bench/experiments/cascade_mask_nms/probe.json

``--work`` is ``bench/experiments/cascade_anomaly_folds/run.py``'s work folder: 5 folds of hazelnut_toy,
and per fold, detector (YOLO11n, YOLOE-11n) and threshold (0.25, picked on val) the cascade's
``predictions.json`` on the test fold (``eval/f<k>_<model>_<conf>_plain``; ``--regions``: ``..._regions``,
PatchCore's regions added as boxes of class ``anomaly``, which no ground-truth category scores). Each
image's instances, best box score first, drop every later one of the same class whose mask overlaps a kept
one by mask IoU above T (or, with ``containment``, by more than T of its own area). Scored with COCOeval
through ``converters.cocoeval`` (segm, AP@[.50:.95]: the report's mask AP) and the per-image IoU of the
defect images (union of the masks), before and after, on the same predictions: no model runs. ``--demo
FOLDER TRUTH`` scores one more split the same way (``make demo``'s cascade run with ``--mask-iou 1
--speck-cells 0``: as it was before the change; truth
``runs/demo/synthetic_nut/annotations/instances_test.json``), into the output's ``demo``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO  # the type of ground truth the functions take

from common.coco import read_coco_index
from converters.cocoeval import precision_table
from segmentation.duplicates import distinct


def suppress(predictions: list[dict], threshold: float, containment: bool) -> list[dict]:
    """Greedy mask NMS per image and class, by ``score`` (the box score): by mask IoU the package's own
    (``segmentation.duplicates.distinct``, the cascade's ``--mask-iou``), or by the share of a mask
    inside a kept one (``containment``, tried here only)."""
    kept: list[dict] = []
    by_image: dict[int, list[dict]] = {}
    for entry in predictions:
        by_image.setdefault(entry["image_id"], []).append(entry)
    for entries in by_image.values():
        entries = sorted(entries, key=lambda e: -e["score"])
        if not containment:
            rles = [e["segmentation"] for e in entries]
            kept += [entries[i] for i in distinct(rles, [e["category_id"] for e in entries], threshold)]
            continue
        chosen: list[dict] = []
        for entry in entries:
            same = [c for c in chosen if c["category_id"] == entry["category_id"]]
            if not same or contained(entry, same) <= threshold:
                chosen.append(entry)
        kept += chosen
    return kept


def contained(entry: dict, others: list[dict]) -> float:
    """The largest share of ``entry``'s mask inside one of ``others``' (1 for an empty mask)."""
    rle = entry["segmentation"]
    area = float(mask_utils.area(rle))
    if area == 0:
        return 1.0
    shared = [mask_utils.area(mask_utils.merge([rle, o["segmentation"]], intersect=True)) for o in others]
    return float(max(shared)) / area


def mask_ap(truth: COCO, predictions: list[dict]) -> float:
    """Mask AP@[.50:.95] as the report's (``converters.cocoeval``, 300 detections per image)."""
    if not predictions:
        return 0.0
    return precision_table(truth.dataset, predictions, iou_type="segm", max_det=300).ap()


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


def fold_summary(figures: list[tuple[float, float, int]], reference: list[tuple[float, float, int]]) -> dict:
    """Mean and std over the folds of ``(mask AP, per-image IoU, instances)``, and each fold's change
    from ``reference`` (the same folds without the variant)."""
    values = np.array([f[:2] for f in figures])
    delta = values - np.array([f[:2] for f in reference])
    return {
        "mask_ap": [round(float(values[:, 0].mean()), 4), round(float(values[:, 0].std()), 4)],
        "iou_defect": [round(float(values[:, 1].mean()), 4), round(float(values[:, 1].std()), 4)],
        "delta_mask_ap_per_fold": [round(float(d), 4) for d in delta[:, 0]],
        "delta_iou_per_fold": [round(float(d), 4) for d in delta[:, 1]],
        "instances": sum(f[2] for f in figures),
    }


def print_summary(key: str, summary: dict) -> None:
    ap, iou = summary["mask_ap"], summary["iou_defect"]
    d_ap, d_iou = np.array(summary["delta_mask_ap_per_fold"]), np.array(summary["delta_iou_per_fold"])
    print(f"{key:34s} mask AP {ap[0]:.3f}±{ap[1]:.3f} (Δ {d_ap.mean():+.3f}, folds up {int((d_ap > 0).sum())}"
          f"/down {int((d_ap < 0).sum())})  IoU {iou[0]:.3f} (Δ {d_iou.mean():+.3f})  "
          f"instances {summary['instances']}", flush=True)  # fmt: skip


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
                truth = read_coco_index(args.work / f"fold{fold}" / "annotations" / "instances_test.json")
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
            for name, figures in per_variant.items():
                key = f"{model} conf {conf} {name}"
                summary[key] = fold_summary(figures, per_variant["none"])
                print_summary(key, summary[key])
    demo = {}
    if args.demo:
        truth = read_coco_index(args.demo[1])
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
