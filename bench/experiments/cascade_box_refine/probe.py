"""What the detector's boxes cost SAM in the cascade, and whether re-prompting wins it back (a probe).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/cascade_box_refine/probe.py \
        --detect-work /tmp/s15/hz60 --sam-work /tmp/s15/iq2 \
        --out bench/experiments/cascade_box_refine/probe.json

On ``hazelnut_toy`` the cascade's per-image IoU of the defect images is 0.52-0.71 against 0.817 with
SAM prompted by the true boxes (``bench/results/inspect_quality_hazelnut_rerun.md``). This splits the
loss: each of ``bench/inspect_quality.py``'s detectors (``--detect-work``: ``detect_bench``'s folder)
at conf 0.25 with its split's fine-tuned decoder (``--sam-work``: ``inspect_quality``'s folder), on
the test split, as ``inspection.evaluate`` runs it; then, on the same embedding, SAM re-prompted with

- ``refine pad P``: each mask's own bounding box grown by P px (a second pass; an empty mask keeps
  its box), as ``bench/experiments/sam_box_refine/`` tried with ground-truth boxes made loose;
- ``scale S``: the detector's boxes scaled by S about their centres;
- ``oracle``: the true boxes (the report's oracle);
- ``oracle boxes of found defects``: the true boxes of the instances the detector's boxes touch
  (IoU > 0), so what is left to the oracle is what detection missed entirely.

Per-image IoU of the union against the truth on the defect images (good images: left clean or not,
the same for every row but the oracle's), mean per split, then mean +- std over splits.

And, since most of the loss turned out to be instances no box touches, the cascade itself at lower
box thresholds (``conf C``: per-image IoU of the defect images; ``clean at C``: the fraction of the
split's good test images left without a box).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from experiments.sam_box_refine.probe import mask_boxes
from sam_headroom import grown_boxes, union_iou
from torchvision.ops import box_iou

from inspection.evaluate import true_instances
from inspection.inspector import Inspector
from segmentation.data import load_split

MODELS = ("yolo11n", "yoloe11n", "yolo11n_world")
PADS = (0, 4)
SCALES = (0.9, 1.1)
CONFS = (0.1, 0.05)


def union(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return masks.any(axis=0) if len(masks) else np.zeros(shape, bool)


def image_rows(inspector: Inspector, image) -> dict[str, float]:
    """Every variant's per-image IoU on one defect image."""
    inspection = inspector(image.path)
    truth = true_instances(image)
    shape, gt = (inspection.height, inspection.width), truth.union(inspection.height, inspection.width)
    embedding = inspector.embedding(image.path)

    def masks_of(boxes: np.ndarray) -> np.ndarray:
        if not len(boxes):
            return np.zeros((0, *shape), bool)
        return inspector.segment(embedding, boxes, path=image.path)[0]

    boxes = inspection.boxes.astype(float).reshape(-1, 4)  # (0, 4) without detections
    rows = {"cascade": union_iou(inspection.defect_mask(), gt)}
    for pad in PADS:
        rows[f"refine pad {pad}"] = union_iou(
            union(masks_of(mask_boxes(inspection.masks, boxes, pad)), shape), gt
        )
    for scale in SCALES:
        rows[f"scale {scale}"] = union_iou(union(masks_of(grown_boxes(boxes, scale, shape)), shape), gt)
    rows["oracle"] = union_iou(union(masks_of(truth.boxes), shape), gt)
    pair = torch.as_tensor(truth.boxes, dtype=torch.float64), torch.as_tensor(boxes, dtype=torch.float64)
    touched = (box_iou(*pair) > 0).any(dim=1).numpy()
    rows["oracle boxes of found defects"] = union_iou(union(masks_of(truth.boxes[touched]), shape), gt)
    rows["missed entirely"] = float(not touched.any())
    return rows


def conf_sweep(inspector: Inspector, images: list) -> dict[str, float]:
    """The cascade at each of :data:`CONFS`: defect images' per-image IoU, good images left clean."""
    out = {}
    for conf in CONFS:
        inspector.set_conf(conf)
        ious, clean = [], []
        for image in images:
            inspection = inspector(image.path)
            if image.is_background:
                clean.append(float(len(inspection) == 0))
            else:
                truth = true_instances(image).union(inspection.height, inspection.width)
                ious.append(union_iou(inspection.defect_mask(), truth))
        out[f"conf {conf}"], out[f"clean at {conf}"] = float(np.mean(ious)), float(np.mean(clean))
    inspector.set_conf(0.25)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detect-work", type=Path, required=True)
    parser.add_argument("--sam-work", type=Path, required=True)
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    per_split: dict[str, dict[str, list[float]]] = {m: {} for m in MODELS}
    for split in range(args.splits):
        data = args.detect_work / f"hazelnut_toy_s{split}"
        images = [im for im in load_split(data, "test").images if not im.is_background]
        for model in MODELS:
            detector = args.detect_work / "runs" / f"hazelnut_toy_s{split}_{model}" / "weights" / "best.pt"
            decoder = args.sam_work / "sam" / f"s{split}" / "decoder.pt"
            inspector = Inspector.from_checkpoints(
                detector, decoder, imgsz=256, conf=0.25, use_colour_head=False
            )
            rows = [image_rows(inspector, image) for image in images]
            figures = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
            figures.update(conf_sweep(inspector, load_split(data, "test").images))
            for key, value in figures.items():
                per_split[model].setdefault(key, []).append(value)
            print(split, model, {k: round(v[-1], 3) for k, v in per_split[model].items()}, flush=True)
    summary = {
        model: {
            k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)), "splits": v}
            for k, v in rows.items()
        }
        for model, rows in per_split.items()
    }
    args.out.write_text(
        json.dumps({"command": "see the module docstring", "summary": summary}, indent=1) + "\n"
    )
    for model, rows in summary.items():
        print(model, "  ".join(f"{k} {v['mean']:.3f}±{v['std']:.3f}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
