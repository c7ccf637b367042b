"""``--anomaly-max-covered`` over the same 5 folds: regions mostly inside the detector's boxes left out.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/experiments/cascade_anomaly_folds/max_covered.py \\
        --work /tmp/s22/folds --models yolo11n yoloe11n \\
        --out bench/experiments/cascade_anomaly_folds/max_covered.json

``--work`` is a finished ``run.py`` work folder (its converted folds, detectors, decoders, PatchCore runs and
evaluations, which give the rows without regions and with every region, ``--anomaly-max-covered 1``). For
each fold, detector, conf (0.25 and picked on val) and value F, ``inspection.evaluate`` scores the test fold
again with ``--anomaly-max-covered F`` into ``<work>/max_covered/<model>_f<k>_<conf>_mc<F>``; an existing
``metrics.json`` there is taken as it is (the command is the same), so a stopped run resumes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from run import read_figures, spread  # run.py beside this script (its folder is sys.path[0])

FIGURES = {
    "iou_defect": ("per_image", "defect", "iou"),
    "iou_good": ("per_image", "good", "iou"),
    "mask_ap_any_class": ("mask_any_class", "box", "AP"),
    "pixel_auroc": ("pixel", "auroc"),
    "image_auroc": ("image_level", "auroc"),
    "detections": ("detections",),
}


def evaluate(work: Path, model: str, fold: int, conf: str, max_covered: str) -> Path:
    out = work / "max_covered" / f"{model}_f{fold}_{conf}_mc{max_covered}"
    if (out / "metrics.json").is_file():
        return out
    command = [sys.executable, "-m", "inspection.evaluate", "--detector",
               str(work / "runs" / f"f{fold}_{model}" / "weights" / "best.pt"), "--imgsz", "256",
               "--sam", str(work / "sam" / f"f{fold}" / "decoder.pt"), "--data", str(work / f"fold{fold}"),
               "--split", "test", "--out", str(out), "--overwrite", "--no-progress", "--gallery", "0",
               *(["--conf-from", "val"] if conf == "val" else ["--conf", conf]),
               "--anomaly-run", str(work / f"anomaly{fold}"),
               "--anomaly-max-covered", max_covered]  # fmt: skip
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, stdout=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="run.py's --work, finished")
    parser.add_argument("--models", nargs="+", default=["yolo11n", "yoloe11n"])
    parser.add_argument("--values", nargs="+", default=["0.75", "0.5", "0.25"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    summary, rows = {}, []
    for model in args.models:
        for conf in ("0.25", "val"):
            variants = {"plain": "plain", "every region (1)": "regions"}
            variants.update({f"max_covered {v}": v for v in args.values})
            for name, value in variants.items():
                per_fold = []
                for fold in range(args.folds):
                    if value in ("plain", "regions"):
                        folder = args.work / "eval" / f"f{fold}_{model}_{conf}_{value}"
                    else:
                        folder = evaluate(args.work, model, fold, conf, value)
                    per_fold.append(read_figures(folder, FIGURES))
                    rows.append({"model": model, "conf": conf, "variant": name, "fold": fold, **per_fold[-1]})
                key = f"{model} conf {conf} {name}"
                summary[key] = spread(per_fold, FIGURES)
                for figure, values in summary[key].items():
                    values["per_fold"] = [round(f[figure], 4) for f in per_fold]
                print(key, "  ".join(f"{n} {v['mean']:.3f}±{v['std']:.3f}" for n, v in summary[key].items()))
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
