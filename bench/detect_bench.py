"""Detection fine-tuning on CPU: YOLO-World-S and YOLO11n scored on two data sets, and the wrapper's cost.

Data sets, converted with the project's documented commands into a work folder:

- ``synthetic``: ``python -m converters.synthetic --out W/mvtec`` then
  ``python -m converters.mvtec2yolo --root W/mvtec --out W/synthetic_nut --coco`` (256-px nuts,
  4 defect types);
- ``hazelnut_toy``: ``python -m converters.mvtec2yolo --root ../shared/data/hazelnut_toy --out
  W/hazelnut_toy --coco`` (512-px photos, one defect type).

Models, each trained with ``detection.train`` for a fixed ``--epochs`` at ``--imgsz``, then scored
on the test split with ``detection.evaluate`` (mAP50 and mAP50-95 from ultralytics' validator,
COCOeval's mAP50 as the cross-check, image-level defect-type accuracy and anomaly AUROC):

- ``yolo_world_s``: ``yolov8s-worldv2.yaml``, random init (no YOLO-World weights offline) with a
  table of fixed seeded unit vectors as class embeddings: a closed-set detector;
- ``yolo11n``: COCO-pretrained ``yolo11n.pt`` (resolved offline by ``detection.weights``).

Wrapper cost: images/s of ``detection.train.train(config)`` against bare ultralytics
(``YOLO(weights).train(**args)``) with the very arguments the wrapper hands to ultralytics (same
data, epochs, imgsz, seed, augmentation), in one process, alternating ``wrapper, bare, bare,
wrapper, ...`` so that drifting machine load hits both alike. Bare YOLO-World cannot run offline
(ultralytics' ``WorldModel.get_text_pe`` loads CLIP); its bare run is the stock ``WorldTrainer``
with ``get_text_pe`` answered from the same table, the minimum needed to run it at all. Target:
wrapper / bare images/s >= 0.95 (end to end: the whole train call, set-up included).

Writes ``<out>/<name>.csv``, ``<out>/<name>.md`` and ``<out>/<name>_runs.json`` (``--name``,
default ``detect_bench``) and prints the markdown. ``--models`` with no names skips the scored runs
(a wrapper-vs-bare measurement alone, e.g. with more ``--ratio-rounds``).

Usage::

    python bench/detect_bench.py --epochs 10 --ratio-epochs 3 --ratio-rounds 2 --out bench/results
    python bench/detect_bench.py --datasets synthetic --models --ratio-models yolo11n --ratio-rounds 4 \
        --name detect_bench_ratio --out bench/results
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from report import (
    bench_parser,
    command_line,
    csv_file,
    machine_line,
    write_report,
)
from report import (
    machine_info as shared_machine_info,
)

from common.io import atomic_write

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "yolo_world_s": (ROOT / "configs" / "detection" / "yolo_world.yaml", "yolov8s-worldv2.yaml"),
    "yolo11n": (ROOT / "configs" / "detection" / "yolo11n.yaml", "yolo11n.pt"),
}
RATIO_TARGET = 0.95


@dataclass
class Run:
    """One training run (and, for the scored runs, its evaluation on the test split)."""

    dataset: str
    model: str
    kind: str  # "scored" or "ratio"
    runner: str  # "wrapper" or "bare"
    epochs: int
    imgsz: int
    train_images: int
    wall_s: float
    epoch_s: list[float] = field(default_factory=list)  # ultralytics' results.csv, per epoch (train + val)
    outside_s: float = float("nan")  # of wall_s, the time outside ultralytics' Model.train
    load_1m: float = float("nan")
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def s_per_epoch(self) -> float:
        return sum(self.epoch_s) / len(self.epoch_s) if self.epoch_s else self.wall_s / self.epochs

    @property
    def images_per_s(self) -> float:
        """End to end: training images x epochs over the whole train call (set-up and final val included)."""
        return self.train_images * self.epochs / self.wall_s

    @property
    def steady_images_per_s(self) -> float:
        """Epochs 2..E only (ultralytics' per-epoch times): without set-up and the first, slower epoch."""
        later = self.epoch_s[1:]
        return self.train_images * len(later) / sum(later) if later else float("nan")


# --------------------------------------------------------------------------------------------
# Data


def run_command(command: list[str]) -> None:
    print("$ " + shlex.join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def prepare_data(work: Path, hazelnut: Path, datasets: Sequence[str]) -> dict[str, Path]:
    """Converts the data sets with the documented commands; returns their data.yaml files."""
    python = sys.executable
    found = {}
    if "synthetic" in datasets:
        run_command([python, "-m", "converters.synthetic", "--out", str(work / "mvtec"), "--no-progress"])
        out = work / "synthetic_nut"
        run_command(
            [
                python,
                "-m",
                "converters.mvtec2yolo",
                "--root",
                str(work / "mvtec"),
                "--out",
                str(out),
                "--coco",
            ]
            + ["--no-progress"]
        )
        found["synthetic"] = out / "data.yaml"
    if "hazelnut_toy" in datasets:
        if not hazelnut.is_dir():
            raise SystemExit(
                f"hazelnut_toy not found at {hazelnut} (pass --hazelnut PATH or --datasets synthetic)"
            )
        out = work / "hazelnut_toy"
        run_command(
            [python, "-m", "converters.mvtec2yolo", "--root", str(hazelnut), "--out", str(out), "--coco"]
            + ["--no-progress"]
        )
        found["hazelnut_toy"] = out / "data.yaml"
    return found


# --------------------------------------------------------------------------------------------
# Runs


def epoch_times(results_csv: Path) -> list[float]:
    """Seconds per epoch from ultralytics' ``results.csv`` (its ``time`` column is cumulative)."""
    if not results_csv.is_file():
        return []
    with results_csv.open() as file:
        cumulative = [float(row["time"]) for row in csv.DictReader(file)]
    return [b - a for a, b in zip([0.0, *cumulative[:-1]], cumulative, strict=True)]


def wrapper_config(model: str, data: Path, table: Path, overrides: dict) -> dict:
    from detection.train_config import build_config

    config_file, model_name = CONFIGS[model]
    items = [f"data={data}", f"model={model_name}", *(f"{k}={v}" for k, v in overrides.items())]
    if model == "yolo_world_s":
        items.append(f"text_embeddings={table}")
    return build_config(config_file, items)


@contextmanager
def time_in_model_train() -> Iterator[list[float]]:
    """Records the seconds spent inside ultralytics' ``Model.train`` while the block runs.

    Wall time minus this is what a runner spends around ultralytics' training: for the wrapper its
    config, weights, text-table and data preparation plus building the model; for bare ultralytics
    building the model. Unlike images/s it hardly moves with the machine's load.
    """
    from ultralytics.engine.model import Model

    original, spent = Model.train, []

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    Model.train = timed
    try:
        yield spent
    finally:
        Model.train = original


def train_wrapper(config: dict) -> tuple[float, Path]:
    """``detection.train.train(config)``; returns (wall seconds, run folder)."""
    from detection.train import train

    start = time.perf_counter()
    result = train(config)
    return time.perf_counter() - start, result.save_dir


def train_bare(config: dict, table: Path | None) -> tuple[float, Path]:
    """Bare ultralytics with the arguments the wrapper would hand it; returns (wall seconds, run folder).

    Timed from the weights name: ``yolo11n.pt`` is resolved to its cached file first (untimed),
    as a user with internet would have it in the working folder.
    """
    from ultralytics import YOLO, YOLOWorld
    from ultralytics.nn.tasks import WorldModel

    from detection.data import data_names
    from detection.text_embeddings import load_table
    from detection.train import run_dir
    from detection.train_config import ultralytics_keys
    from detection.weights import resolve_model

    model = resolve_model(config["model"], download=True)
    data = Path(config["data"])
    save_dir = run_dir(config, model, data)
    args = {k: config[k] for k in ultralytics_keys()}
    args.update(data=str(data.resolve()), project=str(save_dir.parent), name=save_dir.name, exist_ok=True)
    if table is None:
        start = time.perf_counter()
        YOLO(model).train(**args)
        return time.perf_counter() - start, save_dir

    embeddings = load_table(table, data_names(data))
    original = WorldModel.get_text_pe

    def table_text_pe(self, text, batch=80, cache_clip_model=False):  # CLIP's place, offline
        device = next(self.parameters()).device
        return embeddings.matrix(list(text)).to(device)

    WorldModel.get_text_pe = table_text_pe
    try:
        start = time.perf_counter()
        YOLOWorld(model).train(**args)
        wall = time.perf_counter() - start
    finally:
        WorldModel.get_text_pe = original
        for cache in (data.parent / "images").glob("text_embeddings_*.pt"):  # stock trainer's cache file
            cache.unlink()
    return wall, save_dir


def evaluate_run(data: Path, save_dir: Path, imgsz: int) -> dict[str, float]:
    from detection.evaluate import evaluate

    weights = save_dir / "weights" / "best.pt"
    if not weights.is_file():
        weights = save_dir / "weights" / "last.pt"
    report = evaluate(
        data, weights, split="test", imgsz=imgsz, device="cpu", out=save_dir / "test", plots=False
    )
    u = report.ultralytics
    return {
        "mAP50": u.get("metrics/mAP50(B)", float("nan")),
        "mAP50-95": u.get("metrics/mAP50-95(B)", float("nan")),
        "coco_mAP50": report.coco["mAP50"] if report.coco else float("nan"),
        "accuracy": report.image_level.accuracy,
        "balanced_accuracy": report.image_level.balanced_accuracy,
        "auroc": report.image_level.auroc,
        "test_images": report.image_level.n_images,
    }


def load_1m() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def one_run(
    *,
    dataset: str,
    data: Path,
    model: str,
    kind: str,
    runner: str,
    table: Path,
    overrides: dict,
    name: str,
) -> tuple[Run, Path]:
    from detection.data import split_images

    config = wrapper_config(model, data, table, {**overrides, "name": name})
    load = load_1m()
    print(f"--- {dataset} {model} {kind} {runner} (load {load:.2f})", file=sys.stderr, flush=True)
    with time_in_model_train() as inside:
        if runner == "wrapper":
            wall, save_dir = train_wrapper(config)
        else:
            wall, save_dir = train_bare(config, table if model == "yolo_world_s" else None)
    run = Run(
        dataset=dataset,
        model=model,
        kind=kind,
        runner=runner,
        epochs=int(config["epochs"]),
        imgsz=int(config["imgsz"]),
        train_images=len(split_images(data, "train")),
        wall_s=wall,
        epoch_s=epoch_times(save_dir / "results.csv"),
        outside_s=wall - sum(inside),
        load_1m=load,
    )
    return run, save_dir


# --------------------------------------------------------------------------------------------
# Reporting


def machine_info() -> dict[str, str]:
    import cv2
    from ultralytics.utils import NUM_THREADS

    return shared_machine_info(
        {
            "torch_threads_in_training": str(NUM_THREADS),  # ultralytics' select_device sets it on CPU
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
            "opencv_threads": str(cv2.getNumThreads()),
        },
        ["torch", "ultralytics", "pycocotools"],
    )


def write_csv(path: Path, runs: Sequence[Run]) -> None:
    metric_keys = ["mAP50", "mAP50-95", "coco_mAP50", "accuracy", "balanced_accuracy", "auroc", "test_images"]
    with csv_file(path) as writer:
        writer.writerow(
            ["dataset", "model", "kind", "runner", "epochs", "imgsz", "train_images", "wall_s", "outside_s"]
            + ["s_per_epoch", "images_per_s", "steady_images_per_s", "load_1m", *metric_keys]
        )
        for r in runs:
            writer.writerow(
                [r.dataset, r.model, r.kind, r.runner, r.epochs, r.imgsz, r.train_images, f"{r.wall_s:.2f}"]
                + [
                    f"{r.outside_s:.3f}",
                    f"{r.s_per_epoch:.2f}",
                    f"{r.images_per_s:.3f}",
                    f"{r.steady_images_per_s:.3f}",
                ]
                + [f"{r.load_1m:.2f}"]
                + [f"{r.metrics[k]:.4f}" if k in r.metrics else "" for k in metric_keys]
            )


def ratios(runs: Sequence[Run]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (dataset, model) of the ratio runs: median images/s of each runner and wrapper / bare."""
    out = {}
    keys = sorted({(r.dataset, r.model) for r in runs if r.kind == "ratio"})
    for key in keys:
        group = [r for r in runs if r.kind == "ratio" and (r.dataset, r.model) == key]
        wrap = [r for r in group if r.runner == "wrapper"]
        bare = [r for r in group if r.runner == "bare"]
        if not wrap or not bare:
            continue
        w, b = (
            statistics.median(r.images_per_s for r in wrap),
            statistics.median(r.images_per_s for r in bare),
        )
        ws = statistics.median(r.steady_images_per_s for r in wrap)
        bs = statistics.median(r.steady_images_per_s for r in bare)
        out[key] = {"wrapper": w, "bare": b, "ratio": w / b, "wrapper_steady": ws, "bare_steady": bs}
        out[key]["ratio_steady"] = ws / bs
        out[key]["pairs"] = len(wrap)
        out[key]["wrapper_outside"] = statistics.median(r.outside_s for r in wrap)
        out[key]["bare_outside"] = statistics.median(r.outside_s for r in bare)
        out[key]["bare_wall"] = statistics.median(r.wall_s for r in bare)
    return out


def scored_section(scored: Sequence[Run], args: argparse.Namespace) -> list[str]:
    """The scored runs' table and its notes."""
    lines = [
        f"Each model trained {args.epochs} epochs at imgsz {args.imgsz} (batch {args.batch}, "
        f"seed {args.seed}, workers {args.workers}, plots off) with `detection.train`, scored on the "
        "test split with `detection.evaluate` (best.pt). mAP from ultralytics' validator; "
        "COCO mAP50 = pycocotools on the same boxes; accuracy = image-level defect type "
        "(good + each defect, top box >= 0.25); AUROC = anomaly AUROC from the top box score.",
        "",
        "| data set | model | train imgs | test imgs | s/epoch | mAP50 | mAP50-95 | COCO mAP50 "
        "| accuracy | bal. acc. | AUROC |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in scored:
        m = r.metrics
        lines.append(
            f"| {r.dataset} | {r.model} | {r.train_images} | {int(m['test_images'])} | {r.s_per_epoch:.1f} "
            f"| {m['mAP50']:.3f} | {m['mAP50-95']:.3f} | {m['coco_mAP50']:.3f} | {m['accuracy']:.3f} "
            f"| {m['balanced_accuracy']:.3f} | {m['auroc']:.3f} |"
        )
    return lines + [
        "",
        "- `yolo_world_s`: `yolov8s-worldv2.yaml`, **random init** (no YOLO-World weights offline), "
        "class embeddings = fixed seeded unit vectors (`python -m detection.text_embeddings --fixed`): "
        "a closed-set detector trained from scratch, so a short budget leaves it far behind the "
        "pretrained YOLO11n.",
        "- `yolo11n`: COCO-pretrained `yolo11n.pt` from `detection.weights` (sha256-checked).",
        "- s/epoch: ultralytics' own per-epoch time (training + its per-epoch validation), mean over epochs.",
        "- Test splits are tiny (see test imgs): one image moves accuracy by 1/test imgs. Compare runs, "
        "not decimals.",
        "",
    ]


def markdown(
    runs: Sequence[Run], *, command: str, args: argparse.Namespace, info: dict[str, str], total_s: float
) -> str:
    met = {True: "met", False: "not met"}
    scored = [r for r in runs if r.kind == "scored"]
    lines = ["# Detection fine-tuning on CPU", ""]
    if scored:
        lines += scored_section(scored, args)
    else:
        lines += ["No scored runs in this report (`--models` empty): wrapper vs bare ultralytics only.", ""]
    lines += [
        "## Wrapper vs bare ultralytics",
        "",
        f"Same arguments, {args.ratio_epochs} epochs, order wrapper, bare, bare, wrapper, ... "
        f"({args.ratio_rounds} of each), median images/s.",
        "",
        "| data set | model | wrapper img/s | bare img/s | ratio | steady wrapper | steady bare "
        "| steady ratio | outside train(), wrapper / bare (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table = ratios(runs)
    for (dataset, model), v in table.items():
        lines.append(
            f"| {dataset} | {model} | {v['wrapper']:.2f} | {v['bare']:.2f} | **{v['ratio']:.3f}** "
            f"| {v['wrapper_steady']:.2f} | {v['bare_steady']:.2f} | {v['ratio_steady']:.3f} "
            f"| {v['wrapper_outside']:.2f} / {v['bare_outside']:.2f} |"
        )
    spread = {
        runner: [r.images_per_s for r in runs if r.kind == "ratio" and r.runner == runner]
        for runner in ("wrapper", "bare")
    }
    lines += [
        "",
        "- img/s: training images x epochs / wall time of the whole train call (set-up, per-epoch validation "
        "and final validation included). steady: epochs 2..E from ultralytics' per-epoch times.",
        "- bare `yolo_world_s` is the stock `WorldTrainer` with `WorldModel.get_text_pe` (CLIP) answered "
        "from the same table: stock ultralytics cannot train YOLO-World offline at all.",
        "- outside train(): median seconds of the call spent outside ultralytics' `Model.train` (the "
        "wrapper: config, weights check, text table, data preparation, building the model; bare: building"
        " the model). Inside, both run ultralytics' trainer with the same arguments (for YOLO-World the "
        "wrapper's `TableWorldTrainer` differs from the stock `WorldTrainer` only in where the class "
        "vectors come from, once per run, not per batch), so the difference outside is the wrapper's "
        "cost; it hardly moves with the machine's load, unlike images/s.",
        "- single runs' img/s: wrapper "
        + ", ".join(f"{x:.2f}" for x in spread["wrapper"])
        + "; bare "
        + ", ".join(f"{x:.2f}" for x in spread["bare"])
        + " (in run order, by model).",
        "",
        "## Targets",
        "",
    ]
    for (dataset, model), v in table.items():
        lines.append(
            f"- wrapper images/s >= {RATIO_TARGET} x bare ultralytics, {model} on {dataset}: "
            f"**{met[v['ratio'] >= RATIO_TARGET]}** (ratio {v['ratio']:.3f}; steady {v['ratio_steady']:.3f}; "
            f"the wrapper's own cost {v['wrapper_outside'] - v['bare_outside']:+.2f} s = "
            f"{100 * (v['wrapper_outside'] - v['bare_outside']) / v['bare_wall']:+.1f}% of a bare run)"
        )
    lines += [
        "",
        "## Run",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- total wall time: {total_s / 60:.1f} min",
        "- 1-minute load average at the start of each run: "
        + ", ".join(f"{r.dataset}/{r.model}/{r.kind}/{r.runner} {r.load_1m:.2f}" for r in runs),
        machine_line(info),
        "- The CPU is shared: other processes' load slows every run, and ultralytics trains on CPU with "
        f"{info.get('torch_threads_in_training', '?')} torch thread(s) (its `NUM_THREADS` = cpu_count - 1), "
        "the data loader workers using the rest. Compare timings within one report only.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=15, help="epochs of each scored run (default 15)")
    parser.add_argument("--imgsz", type=int, default=256, help="training and evaluation size (default 256)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="data loader workers (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, split, training (default 0)")
    parser.add_argument("--ratio-epochs", type=int, default=3, help="epochs of each wrapper/bare run (3)")
    parser.add_argument("--ratio-rounds", type=int, default=2, help="wrapper and bare runs each (default 2)")
    parser.add_argument(
        "--ratio-models", nargs="*", default=["yolo11n", "yolo_world_s"], choices=sorted(CONFIGS),
        help="models timed wrapper vs bare, on the first data set",
    )  # fmt: skip
    parser.add_argument(
        "--datasets", nargs="+", default=["synthetic", "hazelnut_toy"], choices=["synthetic", "hazelnut_toy"]
    )
    parser.add_argument(
        "--models", nargs="*", default=["yolo_world_s", "yolo11n"], choices=sorted(CONFIGS), help="scored"
    )
    parser.add_argument(
        "--hazelnut", type=Path, default=ROOT.parent / "shared" / "data" / "hazelnut_toy", help="MVTec-layout"
    )
    parser.add_argument("--name", default="detect_bench", help="results file stem (default detect_bench)")
    parser.add_argument("--work", type=Path, help="work folder kept afterwards (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.ratio_epochs < 2 or args.ratio_rounds < 1:
        parser.error("need --epochs >= 1, --ratio-epochs >= 2 (steady rate), --ratio-rounds >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line(__file__, argv)
    with tempfile.TemporaryDirectory(prefix="detect_bench_") as tmp:
        work = (args.work or Path(tmp)).absolute()
        work.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "yolo_config"))
        os.environ.setdefault("YOLO_OFFLINE", "1")
        start = time.perf_counter()
        datasets = prepare_data(work, args.hazelnut, args.datasets)

        from common.fonts import ensure_ultralytics_fonts
        from detection.data import data_names
        from detection.text_embeddings import fixed_embeddings, save_table

        ensure_ultralytics_fonts()  # once, untimed: both runners find the fonts in place
        info = machine_info()
        info["load_avg_1m_before"] = f"{load_1m():.2f}"
        tables = {
            name: save_table(fixed_embeddings(data_names(data)), work / f"{name}_table.pt")
            for name, data in datasets.items()
        }
        base = {
            "imgsz": args.imgsz,
            "batch": args.batch,
            "workers": args.workers,
            "seed": args.seed,
            "device": "cpu",
            "plots": False,
            "project": str(work / "runs"),
            "exist_ok": True,
        }
        runs: list[Run] = []
        for dataset, data in datasets.items():
            for model in args.models:
                run, save_dir = one_run(
                    dataset=dataset, data=data, model=model, kind="scored", runner="wrapper",
                    table=tables[dataset], overrides={**base, "epochs": args.epochs},
                    name=f"{dataset}_{model}",
                )  # fmt: skip
                run.metrics = evaluate_run(data, save_dir, args.imgsz)
                runs.append(run)

        first = next(iter(datasets))
        order = ["wrapper", "bare", "bare", "wrapper"] * ((args.ratio_rounds + 1) // 2)
        for model in args.ratio_models:
            counts = {"wrapper": 0, "bare": 0}
            for runner in order:
                if counts[runner] == args.ratio_rounds:
                    continue
                counts[runner] += 1
                run, _ = one_run(
                    dataset=first, data=datasets[first], model=model, kind="ratio", runner=runner,
                    table=tables[first], overrides={**base, "epochs": args.ratio_epochs},
                    name=f"ratio_{first}_{model}_{runner}{counts[runner]}",
                )  # fmt: skip
                runs.append(run)
        total = time.perf_counter() - start
        info["load_avg_1m_after"] = f"{load_1m():.2f}"

        args.out.mkdir(parents=True, exist_ok=True)
        write_csv(args.out / f"{args.name}.csv", runs)
        report = markdown(runs, command=command, args=args, info=info, total_s=total)
        write_report(args.out / f"{args.name}.md", report)
        atomic_write(
            args.out / f"{args.name}_runs.json", json.dumps([asdict(r) for r in runs], indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
