"""The cascade with and without ``--anomaly-run`` over 5 stratified folds of ``hazelnut_toy`` (each defect
photo tested once), every step a user's command.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/experiments/cascade_anomaly_folds/run.py \\
        --work /tmp/s21/folds --table /tmp/s21/hz60/hazelnut_toy_s0_table.pt \\
        --out bench/experiments/cascade_anomaly_folds/folds.json

The 17 defect photos are dealt to 5 folds by ``segmentation.folds.kfold`` (seed 0); round ``k`` tests on fold
``k``, validates on fold ``k + 1`` and trains on the rest. The 34 good photos are shuffled (seed 0) and dealt
the same way, two per test and val fold, the converter's background ratio (0.5) of the train defect photos to
train; the rest are PatchCore's fit set only. Per round: ``converters.mvtec2yolo --splits`` (boxes + COCO),
``detection.train`` of YOLO11n and YOLOE-11n as ``bench/detect_bench.py`` trains them (60 epochs at 256 px,
batch 8, seed 0), ``segmentation.train`` with the shipped decoder config, ``anomaly.train --data`` and
``anomaly.evaluate --split val`` (the run's default threshold), then ``inspection.evaluate`` on the test fold
with the fine-tuned decoder, at conf 0.25 and picked on val, without and with ``--anomaly-run``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from segmentation.folds import kfold

ROOT = Path("../shared/data/hazelnut_toy")
MODELS = {"yolo11n": "configs/detection/yolo11n.yaml", "yoloe11n": "configs/detection/yoloe11n.yaml"}
#: detect_bench's fixed-vector class table for YOLOE-11n (no text model offline): ``--table``.
FIGURES = {
    "iou_defect": ("per_image", "defect", "iou"),
    "iou_good": ("per_image", "good", "iou"),
    "accuracy": ("image_level", "accuracy"),
    "image_auroc": ("image_level", "auroc"),
    "pixel_auroc": ("pixel", "auroc"),
    "aupro": ("pixel", "aupro"),
    "mask_ap": ("mask", "box", "AP"),
    "mask_ap_any_class": ("mask_any_class", "box", "AP"),
}


def run(command: list[str]) -> None:
    print("$ " + shlex.join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, stdout=sys.stderr)


def fold_splits(k: int, seed: int = 0) -> list[dict]:
    """Converter ``splits.json`` contents of each round."""
    defects = sorted(f"hazelnut_toy/test/colour/{p.stem}" for p in (ROOT / "test" / "colour").glob("*.jpg"))
    goods = sorted(f"hazelnut_toy/{p.parent.parent.name}/good/{p.stem}" for p in ROOT.glob("*/good/*.jpg"))
    goods = [goods[i] for i in np.random.default_rng(seed).permutation(len(goods))]
    rounds = []
    for fold in kfold([(key, "colour") for key in defects], k, seed=seed):
        test_goods, val_goods = (
            goods[fold.index * 2 : fold.index * 2 + 2],
            goods[2 * k + fold.index * 2 :][:2],
        )
        spare = [g for g in goods if g not in test_goods + val_goods]
        train_goods = spare[: round(0.5 * len(fold.train))]
        rounds.append(
            {"version": 1, "seed": seed, "ratios": {"train": 0.6, "val": 0.2, "test": 0.2},
             "background_ratio": 0.5, "train": sorted([*fold.train, *train_goods]),
             "val": sorted([*fold.val, *val_goods]), "test": sorted([*fold.test, *test_goods])}
        )  # fmt: skip
    return rounds


def one_round(
    work: Path, index: int, splits: dict, table: Path | None, models: list[str], reuse: bool = False
) -> list[dict]:
    data, anomaly, py = work / f"fold{index}", work / f"anomaly{index}", sys.executable
    if reuse:
        check_reusable(work, index, splits, models)
    else:
        train_round(work, index, splits, table, models)
    run([py, "-m", "anomaly.evaluate", "--run", str(anomaly), "--data", str(data), "--split", "val",
         "--overwrite", "--no-progress"])  # fmt: skip
    rows = []
    for model in models:
        for conf in ("0.25", "val"):
            for regions in (False, True):
                out = work / "eval" / f"f{index}_{model}_{conf}_{'regions' if regions else 'plain'}"
                command = [py, "-m", "inspection.evaluate", "--detector",
                           str(work / "runs" / f"f{index}_{model}" / "weights" / "best.pt"), "--imgsz", "256",
                           "--sam", str(work / "sam" / f"f{index}" / "decoder.pt"), "--data", str(data),
                           "--split", "test", "--out", str(out), "--overwrite", "--no-progress",
                           "--gallery", "0"]  # fmt: skip
                command += ["--conf-from", "val"] if conf == "val" else ["--conf", conf]
                command += ["--anomaly-run", str(anomaly)] if regions else []
                run(command)
                figures = read_figures(out, FIGURES)
                rows.append({"fold": index, "model": model, "conf": conf, "regions": regions, **figures})
    return rows


def train_round(work: Path, index: int, splits: dict, table: Path | None, models: list[str]) -> None:
    """The round's conversion, detectors, decoder and PatchCore fit, each a user's command."""
    data, py = work / f"fold{index}", sys.executable
    (work / f"fold{index}.json").write_text(json.dumps(splits, indent=1))
    run([py, "-m", "converters.mvtec2yolo", "--root", str(ROOT), "--out", str(data), "--coco",
         "--task", "detect",
         "--splits", str(work / f"fold{index}.json"), "--overwrite", "--no-progress"])  # fmt: skip
    for model in models:
        run([py, "-m", "detection.train", "--config", MODELS[model], f"data={data / 'data.yaml'}",
             "epochs=60", "imgsz=256", "batch=8", "seed=0", "workers=2", "plots=false",
             f"project={work / 'runs'}", f"name=f{index}_{model}", "exist_ok=true",
             *([f"text_embeddings={table}"] if model == "yoloe11n" else [])])  # fmt: skip
    run([py, "-m", "segmentation.train", "--config", "configs/segmentation/sam_decoder.yaml", f"data={data}",
         f"out={work / 'sam'}", f"name=f{index}", "exist_ok=true", "progress=false"])  # fmt: skip
    run([py, "-m", "anomaly.train", "--root", str(ROOT), "--data", str(data),
         "--out", str(work / f"anomaly{index}"), "--overwrite", "--no-progress"])  # fmt: skip


def check_reusable(work: Path, index: int, splits: dict, models: list[str]) -> None:
    """``--reuse``: the round's split, detectors, decoder and PatchCore fit must be in ``work`` already."""
    saved = work / f"fold{index}.json"
    if not saved.is_file() or json.loads(saved.read_text()) != splits:
        sys.exit(f"--reuse: {saved} is missing or holds another split")
    needed = [
        work / f"fold{index}" / "data.yaml",
        work / "sam" / f"f{index}" / "decoder.pt",
        work / f"anomaly{index}",
    ]
    needed += [work / "runs" / f"f{index}_{model}" / "weights" / "best.pt" for model in models]
    for path in needed:
        if not path.exists():
            sys.exit(f"--reuse: {path} is missing (run without --reuse to train it)")


def read_figures(
    folder: Path, figures: dict[str, tuple[str, ...]], file: str = "metrics.json"
) -> dict[str, float]:
    """``figures`` (name -> path of keys) read from the ``file`` of an evaluation in ``folder``."""
    metrics = json.loads((folder / file).read_text())
    found = {}
    for name, path in figures.items():
        value = metrics
        for key in path:
            value = value[key]
        found[name] = float(value)
    return found


def spread(rows: list[dict], names) -> dict[str, dict[str, float]]:
    """Mean and sample std over ``rows`` of each figure in ``names``."""
    return {
        name: {
            "mean": float(np.mean([r[name] for r in rows])),
            "std": float(np.std([r[name] for r in rows], ddof=1)),
        }
        for name in names
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--table", type=Path, help="detect_bench's <data>_s0_table.pt (for yoloe11n)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="evaluate the models a previous run left in --work, training nothing",
    )
    args = parser.parse_args()
    if "yoloe11n" in args.models and args.table is None and not args.reuse:
        parser.error("--table is needed for yoloe11n (no text model offline)")
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [
        row
        for i, splits in enumerate(fold_splits(args.folds))
        for row in one_round(args.work, i, splits, args.table, args.models, args.reuse)
    ]
    summary = {}
    for model in args.models:
        for conf in ("0.25", "val"):
            for regions in (False, True):
                group = [r for r in rows if (r["model"], r["conf"], r["regions"]) == (model, conf, regions)]
                key = f"{model} conf {conf}{' + regions' if regions else ''}"
                summary[key] = spread(group, FIGURES)
                print(key, "  ".join(f"{n} {v['mean']:.3f}±{v['std']:.3f}" for n, v in summary[key].items()))
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
