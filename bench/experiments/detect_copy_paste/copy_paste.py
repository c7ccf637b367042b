"""ultralytics' copy-paste augmentation for the defect detectors, over the 5 folds of ``hazelnut_toy`` that
``cascade_anomaly_folds/run.py`` deals (each defect photo tested once), every step a user's command.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/experiments/detect_copy_paste/copy_paste.py \\
        --work /tmp/cp --sam-work /tmp/s22/folds --models yolo11n \\
        --out bench/experiments/detect_copy_paste/yolo11n.json

Copy-paste needs outlines, so each round's split is converted with ``--task segment`` (polygon labels, which
ultralytics' detect task reads as their boxes; ``hazelnut_toy``'s policy flips but does not rotate, so the
boxes are the same as box labels'). Per round, model and variant (:data:`VARIANTS`: none, ``copy_paste=0.5``
in ultralytics' ``flip`` mode, which pastes a mirrored copy of a photo's own stains where they do not
overlap, and in its ``mixup`` mode, which pastes another train photo's stains), ``detection.train`` as
``bench/detect_bench.py`` trains (60 epochs at 256 px, batch 8, ``--seed``, default 0), then
``detection.evaluate`` on the test fold (mAP50, mAP50-95, defect-type accuracy with the conf picked on val,
image AUROC) and ``inspection.evaluate`` with the round's fine-tuned decoder from ``--sam-work`` (a
``cascade_anomaly_folds`` work folder of the same folds) at conf 0.25 and picked on val (``_val``):
per-image IoU of the defect photos and mask AP end to end.
A finished step's output is reused, so a stopped run resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cascade_anomaly_folds"))
from run import MODELS, ROOT, fold_splits, read_figures, run, spread  # noqa: E402

#: Extra ``detection.train`` arguments of each variant.
VARIANTS = {
    "none": [],
    "copy_paste 0.5 flip": ["copy_paste=0.5", "copy_paste_mode=flip"],
    "copy_paste 0.5 mixup": ["copy_paste=0.5", "copy_paste_mode=mixup"],
}
DETECTION = {
    "mAP50": ("ultralytics", "metrics/mAP50(B)"),
    "mAP50-95": ("ultralytics", "metrics/mAP50-95(B)"),
    "accuracy": ("image_level", "accuracy"),
    "auroc": ("image_level", "auroc"),
}
CASCADE = {
    "iou_defect": ("per_image", "defect", "iou"),
    "iou_good": ("per_image", "good", "iou"),
    "mask_ap": ("mask", "box", "AP"),
    "cascade_accuracy": ("image_level", "accuracy"),
}


def slug(variant: str) -> str:
    return variant.replace(" ", "_").replace(".", "")


def one_round(
    work: Path, sam_work: Path, index: int, splits: dict, table: Path | None, models, variants, seed: int = 0
):
    data, py = work / f"fold{index}", sys.executable
    (work / f"fold{index}.json").write_text(json.dumps(splits, indent=1))
    if not (data / "data.yaml").is_file():
        run([py, "-m", "converters.mvtec2yolo", "--root", str(ROOT), "--out", str(data), "--coco",
             "--task", "segment", "--splits", str(work / f"fold{index}.json"), "--no-progress"])  # fmt: skip
    rows = []
    for model in models:
        for variant in variants:
            name = f"f{index}_{model}_{slug(variant)}" + (f"_s{seed}" if seed else "")
            weights = work / "runs" / name / "weights" / "best.pt"
            if not weights.is_file():
                run([py, "-m", "detection.train", "--config", MODELS[model], f"data={data / 'data.yaml'}",
                     "epochs=60", "imgsz=256", "batch=8", f"seed={seed}", "workers=2", "plots=false",
                     f"project={work / 'runs'}", f"name={name}", "exist_ok=true", *VARIANTS[variant],
                     *([f"text_embeddings={table}"] if model == "yoloe11n" else [])])  # fmt: skip
            detected = work / "detect" / name
            if not (detected / "evaluation.json").is_file():
                run([py, "-m", "detection.evaluate", "--data", str(data / "data.yaml"),
                     "--weights", str(weights), "--split", "test", "--conf-from", "val",
                     "--out", str(detected), "--no-plots"])  # fmt: skip
            figures = read_figures(detected, DETECTION, "evaluation.json")
            for conf in ("0.25", "val"):
                cascade = work / "cascade" / (name if conf == "0.25" else f"{name}_val")
                if not (cascade / "metrics.json").is_file():
                    run([py, "-m", "inspection.evaluate", "--detector", str(weights), "--imgsz", "256",
                         "--sam", str(sam_work / "sam" / f"f{index}" / "decoder.pt"), "--data", str(data),
                         "--split", "test", "--out", str(cascade), "--overwrite", "--no-progress",
                         "--gallery", "0", "--overlays", "0",
                         *(["--conf", conf] if conf == "0.25" else ["--conf-from", "val"])])  # fmt: skip
                suffix = "" if conf == "0.25" else "_val"
                figures.update(
                    {f"{key}{suffix}": value for key, value in read_figures(cascade, CASCADE).items()}
                )
            rows.append({"fold": index, "model": model, "variant": variant, **figures})
    return rows


def summarise(rows: list[dict], models, variants) -> dict:
    """Mean ± std per model and variant, and each variant's per-fold change against ``none``."""
    names = [*DETECTION, *CASCADE, *(f"{name}_val" for name in CASCADE)]
    summary = {}
    for model in models:
        base = sorted(
            (r for r in rows if (r["model"], r["variant"]) == (model, "none")), key=lambda r: r["fold"]
        )
        for variant in variants:
            group = sorted(
                (r for r in rows if (r["model"], r["variant"]) == (model, variant)), key=lambda r: r["fold"]
            )
            entry = spread(group, names)
            if variant != "none" and len(base) == len(group):
                for name in names:
                    entry[name]["change_per_fold"] = [
                        round(g[name] - b[name], 4) for g, b in zip(group, base, strict=True)
                    ]
            summary[f"{model} {variant}"] = entry
            print(
                f"{model} {variant}: "
                + "  ".join(f"{n} {v['mean']:.3f}±{v['std']:.3f}" for n, v in entry.items())
            )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--sam-work", type=Path, required=True, help="cascade_anomaly_folds/run.py's --work")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--table", type=Path, help="detect_bench's <data>_s0_table.pt (for yoloe11n)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["yolo11n"])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--seed", type=int, default=0, help="detection.train's seed (run names end _s<seed> if not 0)"
    )
    args = parser.parse_args()
    if "yoloe11n" in args.models and args.table is None:
        parser.error("--table is needed for yoloe11n (no text model offline)")
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [
        row
        for i, splits in enumerate(fold_splits(args.folds))
        for row in one_round(
            args.work, args.sam_work, i, splits, args.table, args.models, args.variants, args.seed
        )
    ]
    summary = summarise(rows, args.models, args.variants)
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
