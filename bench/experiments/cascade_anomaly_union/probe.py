"""PatchCore's regions as a fallback for the stains the cascade's detector misses (a probe).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/cascade_anomaly_union/probe.py \
        --detect-work /tmp/s19/hz60 --sam-work /tmp/s19/iq --work /tmp/s21/union \
        --out bench/experiments/cascade_anomaly_union/probe.json

On ``hazelnut_toy`` most of what the cascade loses against SAM from the true boxes is defect instances no
detector box touches (``bench/experiments/cascade_box_refine/``). PatchCore, fit on good photos alone,
flags every defect photo of these splits and leaves the good ones clean at a threshold picked on val
(``bench/results/anomaly_split_masks.md``). This asks whether its regions fill the detector's gaps:
per split (``--detect-work``: ``bench/detect_bench.py``'s folder, its converted splits and detectors;
``--sam-work``: ``bench/inspect_quality.py``'s folder, each split's fine-tuned decoder), PatchCore is fit
on the split's good train photos (``anomaly.run.fit_run``, the shipped config) and its threshold picked
on the val split (``anomaly.evaluate --masks``' pixel F1-max); then on each test photo

- ``cascade``: the detector (conf 0.25) and the fine-tuned SAM, as ``inspection.evaluate`` runs it;
- ``anomaly``: SAM (the same decoder, the same embedding) prompted with every PatchCore region's box;
- ``cascade + untouched regions``: the cascade's masks and SAM's masks of the regions whose box
  overlaps no detector box (a region the detector already covers adds nothing new);
- ``cascade + all regions``: the union of the two;
- ``regions where the cascade has no box``: the cascade, and SAM's masks of every region only on a photo
  the detector left without a box (a fallback).

Per-image IoU of the union of masks against the truth on the defect photos; on the good ones the
fraction left clean (no mask at all). Mean per split, then mean +- std over splits, and per image
the change against the cascade.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sam_headroom import union_iou

from anomaly.data import read_rgb
from anomaly.evaluate import evaluate_run
from anomaly.regions import map_regions
from anomaly.run import fit_run
from inspection.evaluate import true_instances
from inspection.inspector import Inspector
from segmentation.data import load_split

MODELS = ("yolo11n", "yoloe11n")
MIN_AREA = 16  # anomaly.predict's default
VARIANTS = (
    "cascade",
    "anomaly",
    "cascade + untouched regions",
    "cascade + all regions",
    "regions where the cascade has no box",
)


def overlaps(box: np.ndarray, boxes: np.ndarray) -> bool:
    """Whether xyxy ``box`` shares any area with one of ``boxes``."""
    if not len(boxes):
        return False
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return bool(((width > 0) & (height > 0)).any())


def photo_masks(inspector: Inspector, run, threshold: float, path: Path) -> dict[str, np.ndarray]:
    """Every variant's union mask on one photo."""
    inspection = inspector(path)
    shape = (inspection.height, inspection.width)
    [prediction] = run.predict([read_rgb(path)], [path])
    regions = map_regions(prediction.anomaly_map, threshold, min_area=MIN_AREA)
    boxes = inspection.boxes.astype(float).reshape(-1, 4)

    def union_of(region_boxes: list[np.ndarray]) -> np.ndarray:
        if not region_boxes:
            return np.zeros(shape, bool)
        embedding = inspector.embedding(path)
        return inspector.segment(embedding, np.stack(region_boxes), path=path)[0].any(axis=0)

    cascade = inspection.defect_mask()
    untouched = union_of([r.box for r in regions if not overlaps(r.box, boxes)])
    every = union_of([r.box for r in regions])
    return {
        "cascade": cascade,
        "anomaly": every,
        "cascade + untouched regions": cascade | untouched,
        "cascade + all regions": cascade | every,
        "regions where the cascade has no box": cascade if len(boxes) else every,
    }


def split_rows(data: Path, detector: Path, decoder: Path, run, threshold: float) -> dict:
    inspector = Inspector.from_checkpoints(detector, decoder, imgsz=256, conf=0.25, use_colour_head=False)
    ious = {v: [] for v in VARIANTS}
    clean = {v: [] for v in VARIANTS}
    for image in load_split(data, "test").images:
        masks = photo_masks(inspector, run, threshold, image.path)
        for variant, mask in masks.items():
            if image.is_background:
                clean[variant].append(float(not mask.any()))
            else:
                truth = true_instances(image).union(*mask.shape)
                ious[variant].append(union_iou(mask, truth))
    return {"iou": ious, "clean": clean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detect-work", type=Path, required=True)
    parser.add_argument("--sam-work", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="PatchCore runs and evaluations")
    parser.add_argument("--root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    results: dict = {m: [] for m in MODELS}
    thresholds = []
    for split in range(args.splits):
        data = args.detect_work / f"hazelnut_toy_s{split}"
        out = args.work / f"patchcore_s{split}"
        run = fit_run(args.root, "hazelnut_toy", out, data=data, progress=False, overwrite=True)
        metrics = evaluate_run(
            out,
            data=data,
            split="test",
            masks=True,
            sam_zero_shot=True,
            figure=False,
            progress=False,
            out=args.work / f"eval_s{split}",
            overwrite=True,
        )
        threshold = metrics["masks"]["threshold"]
        thresholds.append(threshold)
        for model in MODELS:
            detector = args.detect_work / "runs" / f"hazelnut_toy_s{split}_{model}" / "weights" / "best.pt"
            decoder = args.sam_work / "sam" / f"s{split}" / "decoder.pt"
            rows = split_rows(data, detector, decoder, run, threshold)
            results[model].append(rows)
            print(split, model, {v: round(float(np.mean(rows["iou"][v])), 3) for v in VARIANTS}, flush=True)
    summary = {}
    for model, splits in results.items():
        summary[model] = {}
        for variant in VARIANTS:
            means = [float(np.mean(s["iou"][variant])) for s in splits]
            change = np.concatenate([np.subtract(s["iou"][variant], s["iou"]["cascade"]) for s in splits])
            summary[model][variant] = {
                "iou_defect_mean": float(np.mean(means)),
                "iou_defect_std": float(np.std(means, ddof=1)),
                "iou_defect_splits": means,
                "good_clean": float(np.mean(np.concatenate([s["clean"][variant] for s in splits]))),
                "images_better_worse": [int((change > 0.005).sum()), int((change < -0.005).sum())],
                "per_image_change": [round(float(c), 3) for c in change],
            }
    args.out.write_text(json.dumps({"thresholds": thresholds, "summary": summary}, indent=1) + "\n")
    for model, rows in summary.items():
        for variant, r in rows.items():
            print(
                f"{model:9s} {variant:28s} defect IoU {r['iou_defect_mean']:.3f} ± {r['iou_defect_std']:.3f}"
                f"  good clean {r['good_clean']:.2f}  better/worse {r['images_better_worse']}"
            )


if __name__ == "__main__":
    main()
