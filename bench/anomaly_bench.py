"""PatchCore (anomaly.*) on the synthetic default and hazelnut_toy: quality, fit time, inference time.

Three parts, each optional:

- ``quality``: per data set and backbone, fit on ``train/good`` and score every ``test/`` image
  (the MVTec protocol, ``anomaly.run.fit_run`` + ``anomaly.evaluate.evaluate_run``): image AUROC,
  pixel AUROC, AUPRO (FPR <= 0.3), F1-max, fit time, inference seconds per image (one photo at a
  time: decode, predict, map resized to the photo).
- ``split``: the converter split the detector is scored on (``python -m converters.mvtec2yolo
  --seed S``, as ``bench/detect_bench.py``): fit outside its val/test, score its test images; image
  AUROC mean +- std over the split seeds, beside the detector's AUROC on the seed-0 test images read
  from ``bench/results/detect_bench.csv`` (not re-run here). With ``--masks``, the maps also become
  masks as ``anomaly.evaluate --masks --sam-zero-shot`` makes them (threshold: pixel F1-max on the
  split's val images; regions outlined by zero-shot MobileSAM): per-image IoU of the defect images and
  mask AP per seed, to set beside the cascade's on the same test images (``inspect_quality``).
- ``sweep``: one setting changed at a time from the default config (MobileNetV2), quality only,
  written to ``anomaly_sweep.md`` / ``.csv``: what each part of the method is worth here.
- ``scale``: 200 good 1024-px images (``converters.synthetic --size 1024``), fit through the CLI in
  a subprocess: wall time and peak memory; then inference on its 1024-px test images.

    PYTHONPATH=. python bench/anomaly_bench.py                       # everything (~10 min on 2 cores)
    PYTHONPATH=. python bench/anomaly_bench.py --parts quality --backbones mobilenet_v2
    PYTHONPATH=. python bench/anomaly_bench.py --parts split --masks --name anomaly_split_masks
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import (  # noqa: E402
    RESULTS,
    bench_parser,
    command_line,
    csv_file,
    load_average,
    machine_info,
    machine_line,
    mean_std_text,
    note_load_after,
    write_report,
)

from anomaly.data import read_rgb  # noqa: E402
from anomaly.evaluate import evaluate_run, scored_records  # noqa: E402
from anomaly.run import fit_run, load_run  # noqa: E402
from common.io import atomic_write, json_text  # noqa: E402
from common.tables import fmt  # noqa: E402
from converters.records import ImageRecord  # noqa: E402

HAZELNUT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hazelnut_toy"
BACKBONES = ("mobilenet_v2", "efficientnet_lite0")
TARGETS = {"hazelnut_auroc": 0.92, "fit_200_1024_s": 120.0, "inference_s": 0.5}
#: The seeds' SSIM autoencoder on MVTec hazelnut (the issue's anchor), image AUROC.
SSIM_AE_HAZELNUT = 0.92
#: The ``--masks`` figures averaged over the split seeds, in the table's order.
MASK_FIGURES = ("iou_defect", "iou_good", "mask_ap", "mask_ap50")


def run_command(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")


def datasets(work: Path, names: Sequence[str]) -> dict[str, tuple[Path, str]]:
    """``name -> (root, category)``, the synthetic default drawn with its documented command."""
    found = {}
    if "synthetic" in names:
        run_command(
            [sys.executable, "-m", "converters.synthetic", "--out", str(work / "mvtec"), "--no-progress"]
        )
        found["synthetic"] = (work / "mvtec", "synthetic_nut")
    if "hazelnut_toy" in names and HAZELNUT.is_dir():
        found["hazelnut_toy"] = (HAZELNUT, "hazelnut_toy")
    return found


def scored_photos(run_path: Path, root: Path, category: str) -> list[ImageRecord]:
    """The photos ``anomaly.evaluate`` scores (:func:`anomaly.evaluate.scored_records`: a defect photo whose
    mask holds no defect value is not scored, as a conversion skips it), read after its
    :func:`anomaly.evaluate.evaluate_run`: the ``note:`` and ``warning:`` lines it printed of them are kept
    off stderr this time, not said twice more."""
    with contextlib.redirect_stderr(io.StringIO()):
        records, _, _ = scored_records(load_run(run_path), root=root, category=category)
    return records


def inference_seconds(run_path: Path, records: Sequence[ImageRecord], threads: int) -> float:
    """Median seconds per photo of ``records`` (:func:`scored_photos`), one at a time: decode, PatchCore,
    map resized to the photo's size.

    Run with ``threads`` torch threads (restored after): on a shared machine one thread is often
    faster than two, whose OpenMP synchronisation stalls when another process holds a core.
    """
    run = load_run(run_path)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    times = []
    try:
        run.predict([read_rgb(records[0].image)])  # warm-up
        for record in records:
            start = time.perf_counter()
            run.predict([read_rgb(record.image)], [record.image])
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return float(np.median(times))


def quality(work: Path, data: dict, backbones: Sequence[str]) -> list[dict]:
    rows = []
    for name, (root, category) in data.items():
        for backbone in backbones:
            out = work / "runs" / f"{name}_{backbone}"
            load = load_average()
            run = fit_run(root, category, out, config={"backbone": backbone}, progress=False)
            metrics = evaluate_run(out, progress=False, out=work / "eval" / f"{name}_{backbone}")
            scored = scored_photos(out, root, category)
            rows.append(
                {
                    "dataset": name,
                    "backbone": backbone,
                    "fit_images": len(run.fit_keys),
                    "test_images": metrics["image"]["images"],
                    "bank": run.info["bank"]["rows"],
                    "fit_s": run.info["fit_seconds"],
                    "infer_s": inference_seconds(out, scored, 2),
                    "infer_s_1t": inference_seconds(out, scored, 1),
                    "image_auroc": metrics["image"]["auroc"],
                    "image_f1": metrics["image"]["f1_max"],
                    "pixel_auroc": metrics["pixel"]["auroc"],
                    "aupro": metrics["pixel"]["aupro"],
                    "pixel_f1": metrics["pixel"]["f1_max"],
                    "load_1m": load,
                    "eval": metrics["out"],
                }
            )
            print(rows[-1], flush=True)
    return rows


#: The sweep's settings: one config change each from the defaults.
SWEEP = {
    "default (256 px, coreset 10%, b = 9, sigma 4)": {},
    "num_neighbors=1 (image score = plain max)": {"num_neighbors": 1},
    "coreset_ratio=0.01": {"coreset_ratio": 0.01},
    "coreset_ratio=1 (no coreset)": {"coreset_ratio": 1.0, "coreset_max": None},
    "image_size=320": {"image_size": 320},
    "sigma=0 (no blur)": {"sigma": 0.0},
}


def sweep_part(work: Path, data: dict) -> list[dict]:
    rows = []
    for name, (root, category) in data.items():
        for index, (label, config) in enumerate(SWEEP.items()):
            out = work / "runs" / f"{name}_sweep{index}"
            run = fit_run(root, category, out, config=config, progress=False)
            metrics = evaluate_run(
                out, progress=False, figure=False, out=work / "eval" / f"{name}_sweep{index}"
            )
            rows.append(
                {
                    "dataset": name,
                    "setting": label,
                    "bank": run.info["bank"]["rows"],
                    "image_auroc": metrics["image"]["auroc"],
                    "pixel_auroc": metrics["pixel"]["auroc"],
                    "aupro": metrics["pixel"]["aupro"],
                    "pixel_f1": metrics["pixel"]["f1_max"],
                }
            )
            print(rows[-1], flush=True)
    return rows


def sweep_markdown(rows: list[dict], info: dict, command: str) -> str:
    lines = [
        "# PatchCore settings, one at a time",
        "",
        "MVTec protocol, MobileNetV2, each row changes one setting of the default config. Quality only.",
        "",
        "| data set | setting | bank | image AUROC | pixel AUROC | AUPRO | pixel F1 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['setting']} | {r['bank']} | {fmt(r['image_auroc'])} | "
            f"{fmt(r['pixel_auroc'])} | {fmt(r['aupro'])} | {fmt(r['pixel_f1'])} |"
        )
    lines += ["", f"- command: `{command}`", f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]
    return "\n".join([*lines, machine_line(info), ""])


def detector_auroc() -> dict[str, tuple[float, int]]:
    """YOLO11n's image AUROC and test-image count per data set from the committed detect_bench.csv."""
    path = RESULTS / "detect_bench.csv"
    if not path.is_file():
        return {}
    with path.open() as stream:
        return {
            row["dataset"]: (float(row["auroc"]), int(float(row["test_images"])))
            for row in csv.DictReader(stream)
            if row["model"] == "yolo11n" and row["kind"] == "scored"
        }


def split_part(work: Path, data: dict, seeds: Sequence[int], *, masks: bool = False) -> list[dict]:
    rows = []
    for name, (root, category) in data.items():
        for seed in seeds:
            converted = work / "converted" / f"{name}_s{seed}"
            run_command(
                [
                    sys.executable,
                    "-m",
                    "converters.mvtec2yolo",
                    "--root",
                    str(root),
                    "--out",
                    str(converted),
                    "--seed",
                    str(seed),
                    "--no-progress",
                ]
            )
            out = work / "runs" / f"{name}_split_s{seed}"
            run = fit_run(root, category, out, data=converted, progress=False)
            metrics = evaluate_run(
                out,
                data=converted,
                split="test",
                progress=False,
                figure=False,
                out=work / "eval" / f"{name}_split_s{seed}",
                masks=masks,
                sam_zero_shot=masks,
            )
            rows.append(
                {
                    "dataset": name,
                    "seed": seed,
                    "fit_images": len(run.fit_keys),
                    "test_images": metrics["image"]["images"],
                    "defect_images": metrics["image"]["defect_images"],
                    "image_auroc": metrics["image"]["auroc"],
                    "pixel_auroc": metrics["pixel"]["auroc"],
                    "aupro": metrics["pixel"]["aupro"],
                    **({"masks": metrics["masks"]} if masks else {}),
                }
            )
            print(rows[-1], flush=True)
    return rows


def split_masks_markdown(split_rows: Sequence[dict]) -> list[str]:
    """The maps made masks on each split's test images (``--masks``): per seed, then mean +- std."""
    lines = [
        "### Its maps as masks (zero-shot MobileSAM on the regions)",
        "",
        "`anomaly.evaluate --data <split> --split test --masks --sam-zero-shot`: the map cut at the pixel "
        "F1-max threshold of the split's val images, each 8-connected region of >= 16 pixels a box, "
        "MobileSAM outlines it. Per-image IoU on the defect images (good images: 1 when left clean); "
        "COCO mask AP against the 8-connected components of the ground truth (one class).",
        "",
        "| data set | seed | test imgs (defect) | threshold | instances | IoU defect images "
        "| IoU good images | mask AP | mask AP50 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in dict.fromkeys(r["dataset"] for r in split_rows):
        mine = [r for r in split_rows if r["dataset"] == name and "masks" in r]
        for r in mine:
            m = r["masks"]
            lines.append(
                f"| {name} | {r['seed']} | {r['test_images']} ({r['defect_images']}) | "
                f"{fmt(m['threshold'], 4)} | {m['instances']} | {fmt(m['iou_defect'])} | "
                f"{fmt(m['iou_good'])} | {fmt(m['mask_ap'])} | {fmt(m['mask_ap50'])} |"
            )
        if len(mine) > 1:
            mean = [mean_std_text([r["masks"][key] for r in mine]) for key in MASK_FIGURES]
            lines.append(f"| {name} | mean +- std | | | | {' | '.join(mean)} |")
    return [*lines, ""]


def peak_rss_mb(command: list[str]) -> float:
    """Runs ``python -m <module> args`` (``command[2:]``) in a child that reports its own peak RSS."""
    module, args = command[2], command[3:]
    code = (
        "import resource, runpy, sys\n"
        f"sys.argv = [{module!r}, *{args!r}]\n"
        "try:\n"
        f"    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code\n"
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return round(int(done.stdout.split("PEAK_RSS_KB")[-1]) / 1024)


def scale_part(work: Path, n_good: int) -> dict:
    root = work / "scale"
    start = time.perf_counter()
    run_command(
        [
            sys.executable,
            "-m",
            "converters.synthetic",
            "--out",
            str(root),
            "--size",
            "1024",
            "--n-train-good",
            str(n_good),
            "--n-test-good",
            "4",
            "--n-per-defect",
            "2",
            "--no-progress",
        ]
    )
    made = time.perf_counter() - start
    load = load_average()
    start = time.perf_counter()
    peak = peak_rss_mb(
        [
            sys.executable,
            "-m",
            "anomaly.train",
            "--root",
            str(root),
            "--category",
            "synthetic_nut",
            "--out",
            str(work / "runs" / "scale"),
            "--no-progress",
        ]
    )
    wall = time.perf_counter() - start
    info = json.loads((work / "runs" / "scale" / "run.json").read_text())
    return {
        "good_images": n_good,
        "image_px": 1024,
        "make_data_s": round(made, 1),
        "cli_wall_s": round(wall, 1),
        "fit_s": info["fit_seconds"],
        "bank": info["bank"]["rows"],
        "patches": info["patches_seen"],
        "peak_rss_mb": peak,
        "infer_s": inference_seconds(work / "runs" / "scale", root, "synthetic_nut", 2),
        "infer_s_1t": inference_seconds(work / "runs" / "scale", root, "synthetic_nut", 1),
        "load_1m": load,
    }


def markdown(quality_rows, split_rows, scale, info, command, wall) -> str:
    lines = ["# PatchCore anomaly detection on CPU", ""]
    if quality_rows:
        lines += [
            "MVTec protocol: fit on `train/good` only, score every `test/` image (`anomaly.train` + "
            "`anomaly.evaluate`, default config: 256-px input, coreset 10% capped at 5,000, 9 neighbours). "
            "Pixel metrics on the 256 x 256 model grid (anomalib's convention).",
            "",
            "| data set | backbone | fit imgs | test imgs | bank | fit s | infer s/img 2t / 1t | image AUROC "
            "| image F1 "
            "| pixel AUROC | AUPRO | pixel F1 |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in quality_rows:
            lines.append(
                f"| {r['dataset']} | {r['backbone']} | {r['fit_images']} | {r['test_images']} | "
                f"{r['bank']} | "
                f"{r['fit_s']:.1f} | {r['infer_s']:.3f} / {r['infer_s_1t']:.3f} | {fmt(r['image_auroc'])} | "
                f"{fmt(r['image_f1'])} | "
                f"{fmt(r['pixel_auroc'])} | {fmt(r['aupro'])} | {fmt(r['pixel_f1'])} |"
            )
        lines += [
            "",
            "- infer s/img: median over the test photos, one at a time (decode + PatchCore + map "
            "resized to the photo), with 2 and with 1 torch thread (2t / 1t).",
            "",
        ]
    if split_rows:
        detector = detector_auroc()
        lines += [
            "## Same test images as the detector",
            "",
            "Converter split (`converters.mvtec2yolo --seed S`, ratios 0.6/0.2/0.2): PatchCore fit on the "
            "good "
            "images outside the split's val/test lists (the guard refuses any overlap), scored on its test "
            "list. The detector's AUROC (YOLO11n, top box score, seed-0 split) is read from "
            "`bench/results/detect_bench.csv`, not re-run.",
            "",
            "| data set | seeds | test imgs | PatchCore image AUROC (mean +- std) | seed 0 "
            "| YOLO11n AUROC, seed 0 |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for name in dict.fromkeys(r["dataset"] for r in split_rows):
            mine = [r for r in split_rows if r["dataset"] == name]
            seed0 = next((r for r in mine if r["seed"] == 0), None)
            det = detector.get(name)
            det_text = f"{det[0]:.3f} ({det[1]} imgs)" if det else "-"
            lines.append(
                f"| {name} | {','.join(str(r['seed']) for r in mine)} | {mine[0]['test_images']} | "
                f"{mean_std_text([r['image_auroc'] for r in mine])} | "
                f"{fmt(seed0['image_auroc']) if seed0 else '-'} | "
                f"{det_text} |"
            )
        lines += [""]
        if any("masks" in r for r in split_rows):
            lines += split_masks_markdown(split_rows)
    if scale:
        lines += [
            "## Scale",
            "",
            f"{scale['good_images']} good {scale['image_px']}-px images "
            "(`converters.synthetic --size 1024`), "
            "`python -m anomaly.train` in a subprocess, default config.",
            "",
            "| fit s (embedding + coreset) | CLI wall s | patches | bank | peak RSS MB "
            "| infer s/img (1024 px) 2t / 1t |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {scale['fit_s']:.1f} | {scale['cli_wall_s']:.1f} | {scale['patches']} | {scale['bank']} | "
            f"{scale['peak_rss_mb']:.0f} | {scale['infer_s']:.3f} / {scale['infer_s_1t']:.3f} |",
            "",
        ]
    lines += ["## Targets", ""] if quality_rows or scale else []
    hazel = [r for r in quality_rows if r["dataset"] == "hazelnut_toy"]
    for r in hazel:
        met = "met" if r["image_auroc"] > TARGETS["hazelnut_auroc"] else "NOT met"
        lines.append(
            f"- hazelnut_toy image AUROC > {SSIM_AE_HAZELNUT} (SSIM autoencoder), {r['backbone']}: "
            f"**{met}** ({fmt(r['image_auroc'])} on {r['test_images']} test images)"
        )
    if scale:
        met = "met" if scale["fit_s"] < TARGETS["fit_200_1024_s"] else "NOT met"
        lines.append(
            f"- fit < 2 min for {scale['good_images']} good 1024-px images: **{met}** "
            f"({scale['fit_s']:.1f} s)"
        )
    for label, r in [(f"{r['dataset']} {r['backbone']}", r) for r in quality_rows] + (
        [("1024-px photos", scale)] if scale else []
    ):
        best = min(r["infer_s"], r["infer_s_1t"])
        met = "met" if best < TARGETS["inference_s"] else "NOT met"
        lines.append(
            f"- inference < 0.5 s/image on 2 cores, {label}: **{met}** ({r['infer_s']:.3f} s with 2 torch "
            f"threads, {r['infer_s_1t']:.3f} s with 1)"
        )
    loads = [f"{r['dataset']}/{r['backbone']} {r['load_1m']}" for r in quality_rows]
    if scale:
        loads.append(f"scale {scale['load_1m']}")
    lines += [
        "",
        "## Run",
        "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- total wall time: {wall / 60:.1f} min",
        *([f"- 1-minute load average at the start of each timed run: {', '.join(loads)}"] if loads else []),
        machine_line(info),
        "- The CPU is shared with other processes: timings under load are upper bounds; rerun the command on "
        "a quiet machine for absolute figures.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--parts", nargs="+", default=["quality", "split", "scale"], help="and/or sweep")
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "hazelnut_toy"])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--scale-images", type=int, default=200)
    parser.add_argument(
        "--figure", type=Path, help="copy hazelnut_toy's anomaly_maps.png here (docs/anomaly_map.png)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the targets are for 2 cores)")
    parser.add_argument(
        "--masks", action="store_true", help="split part: also score the maps as zero-shot SAM masks"
    )
    parser.add_argument(
        "--name", default="anomaly_bench", help="report file stem: <out>/<name>.md, .csv, _runs.json"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    info = machine_info({"torch_threads": str(args.threads), "load_avg_1m_before": load_average()}, ["torch"])
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="anomaly-bench-") as scratch:
        work = Path(scratch)
        data = datasets(work, args.datasets)
        quality_rows = quality(work, data, args.backbones) if "quality" in args.parts else []
        split_rows = split_part(work, data, args.seeds, masks=args.masks) if "split" in args.parts else []
        scale = scale_part(work, args.scale_images) if "scale" in args.parts else None
        sweep_rows = sweep_part(work, data) if "sweep" in args.parts else []
        figure = next(
            (
                Path(r["eval"]) / "anomaly_maps.png"
                for r in quality_rows
                if r["dataset"] == "hazelnut_toy" and r["backbone"] == "mobilenet_v2"
            ),
            None,
        )
        if args.figure is not None and figure is not None and figure.is_file():
            atomic_write(args.figure, figure.read_bytes())
    note_load_after(info)
    command = command_line(__file__, argv)
    if sweep_rows:
        write_report(args.out / "anomaly_sweep.md", sweep_markdown(sweep_rows, info, command))
    if not (quality_rows or split_rows or scale):
        return
    if quality_rows:
        with csv_file(args.out / f"{args.name}.csv") as writer:
            keys = [
                "dataset",
                "backbone",
                "fit_images",
                "test_images",
                "bank",
                "fit_s",
                "infer_s",
                "infer_s_1t",
                "image_auroc",
                "image_f1",
                "pixel_auroc",
                "aupro",
                "pixel_f1",
                "load_1m",
            ]
            writer.writerow(keys)
            writer.writerows([r[k] for k in keys] for r in quality_rows)
    results = {"quality": quality_rows, "split": split_rows, "scale": scale, "machine": info}
    atomic_write(args.out / f"{args.name}_runs.json", json_text(results, indent=1, default=str) + "\n")
    write_report(
        args.out / f"{args.name}.md",
        markdown(quality_rows, split_rows, scale, info, command, time.perf_counter() - start),
    )


if __name__ == "__main__":
    main()
