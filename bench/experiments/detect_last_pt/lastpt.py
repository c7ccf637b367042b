"""Throw-away: last.pt instead of best.pt for the 7-split runs of detect_levers60rot_yoloe11n_nbs_7splits.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/experiments/detect_last_pt/lastpt.py           # box labels
    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/experiments/detect_last_pt/lastpt.py polygons  # polygons

Needs that report's --work folder (/tmp/t13d/bench60). "yoloe11n" here covers its scored runs only
(splits 0-4); splits 5-6 of YOLOE-11n are lever baseline runs, not read. ``polygons``: the `polygon labels`
lever runs of bench/results/detect_levers60rot_polygons*.md (same splits, scored on the box-labelled data).
"""

import json
import statistics
import sys
from pathlib import Path

from detection.evaluate import evaluate

W = Path("/tmp/t13d/bench60")
LABELS = sys.argv[1] if len(sys.argv) > 1 else "boxes"
runs = {
    "boxes": {
        "yolo11n": "synthetic_s{s}_yolo11n",
        "yoloe11n": "synthetic_s{s}_yoloe11n",
        "yoloe11n_nbs": "lever_synthetic_s{s}_yoloe11n_nbs_=_batch",
    },
    "polygons": {
        "yolo11n": "lever_synthetic_s{s}_polygon_labels",
        "yoloe11n": "lever_synthetic_s{s}_yoloe11n_polygon_labels",
        "yolo11n_world": "lever_synthetic_s{s}_yolo11n_world_polygon_labels",
    },
}[LABELS]
SUFFIX = "" if LABELS == "boxes" else f"_{LABELS}"
out = {}
for name, pattern in runs.items():
    for s in range(7):
        d = W / "runs" / pattern.format(s=s)
        if not d.is_dir():
            print("missing", d, file=sys.stderr)
            continue
        data = W / f"synthetic_nut_s{s}" / "data.yaml"
        for which in ("best", "last"):
            r = evaluate(
                data,
                d / "weights" / f"{which}.pt",
                split="test",
                conf_from="val",
                imgsz=256,
                device="cpu",
                out=Path("/tmp/lastpt") / f"{name}{SUFFIX}_s{s}_{which}",
                plots=False,
            )
            out[f"{name}/{s}/{which}"] = (r.ultralytics["metrics/mAP50(B)"], r.image_level.accuracy)
            print(name, s, which, out[f"{name}/{s}/{which}"], flush=True)
json.dump(out, open(Path(__file__).with_name(f"lastpt{SUFFIX}.json"), "w"), indent=1)
for which in ("best", "last"):
    m = {
        n: statistics.mean(out[f"{n}/{s}/{which}"][0] for s in range(7) if f"{n}/{s}/{which}" in out)
        for n in runs
    }
    a = {
        n: statistics.mean(out[f"{n}/{s}/{which}"][1] for s in range(7) if f"{n}/{s}/{which}" in out)
        for n in runs
    }
    print(
        which,
        {n: round(v, 3) for n, v in m.items()},
        "ratios",
        {n: round(m[n] / m["yolo11n"], 3) for n in runs},
        "acc",
        {n: round(v, 3) for n, v in a.items()},
    )
