"""Detection fine-tuning on CPU: YOLO11n, two open-vocabulary models started from it, YOLO-World-S.

Data sets, converted with the project's documented commands into a work folder, once per split seed
(``--splits K``: the converter's ``--seed 0..K-1``, repeated stratified random splits, because the test
splits hold fewer than 20 images):

- ``synthetic``: ``python -m converters.synthetic --out W/mvtec`` then
  ``python -m converters.mvtec2yolo --root W/mvtec --out W/synthetic_nut_sK --coco --seed K`` (256-px
  nuts, 4 defect types);
- ``hazelnut_toy``: ``python -m converters.mvtec2yolo --root ../shared/data/hazelnut_toy --out
  W/hazelnut_toy_sK --coco --seed K`` (512-px photos, one defect type).

Models, each trained with ``detection.train`` from its shipped config (the recipe) for a fixed
``--epochs`` at ``--imgsz``, then scored on the test split with ``detection.evaluate`` (mAP50 and
mAP50-95 from ultralytics' validator, COCOeval's mAP50 as the cross-check, image-level defect-type
accuracy with the threshold picked on the val split (``--conf-from val``) and at the fixed 0.25, and
anomaly AUROC), mean +- std over the splits:

- ``yolo11n``: COCO-pretrained ``yolo11n.pt`` (resolved offline by ``detection.weights``);
- ``yoloe11n``: YOLOE-11n (``yoloe-11.yaml``) with ``pretrained: yolo11n.pt`` (493 tensors transferred);
- ``yolo11n_world``: YOLO-World-v2's head on YOLO11n (``configs/detection/models/yolo11n-worldv2.yaml``),
  ``pretrained: yolo11n.pt``;
- ``yolo_world_s``: ``yolov8s-worldv2.yaml``, random init (the reference; ``--one-split-models`` runs it
  on split 0 only).

The open-vocabulary models get the same table of fixed seeded unit vectors as class embeddings.

A ``--work`` folder given again is reused: its converted splits are kept (same seeds, same data), so
later lever runs score on exactly the data of an earlier report. ``--reuse-runs R_runs.json ...`` keeps an
earlier report's scored and lever runs of the same model, lever, split, epochs and imgsz instead of
retraining them (a scored run stands for the ``baseline`` lever too): training here is deterministic
(seeded, CPU; reruns reproduced every metric exactly), so a report grows by more splits at the cost of the
new ones only, as long as the configs have not changed since.

``--levers NAME ...`` trains ``--lever-models`` (default YOLO11n) once per recipe lever (:data:`LEVERS`: one
change on top of the scored settings, on ``--lever-splits`` splits) and reports each lever's mAP50 and
accuracy against the baseline: the ``baseline`` lever's runs, else (``--baseline-from``) the scored runs of
an earlier report's ``_runs.json`` with the same model, split, epochs and imgsz (YOLO11n's kept too). An
open-vocabulary model's lever is also set against YOLO11n's baseline on the same splits (the target ratio:
a per-model recipe for it, YOLO11n on its own shipped config).

Wrapper cost (``--ratio-models``): images/s of ``detection.train.train(config)`` against bare
ultralytics (``YOLO(weights).train(**args)``) with the very arguments the wrapper hands to ultralytics,
in one process, alternating ``wrapper, bare, bare, wrapper, ...``. Bare YOLO-World cannot run offline
(ultralytics' ``WorldModel.get_text_pe`` loads CLIP); its bare run is the stock ``WorldTrainer`` with
``get_text_pe`` answered from the same table. Target: wrapper / bare images/s >= 0.95.

Writes ``<out>/<name>.csv``, ``<out>/<name>.md`` and ``<out>/<name>_runs.json`` (``--name``,
default ``detect_bench``) and prints the markdown. ``--models`` with no names skips the scored runs.

Usage::

    python bench/detect_bench.py --splits 3 --one-split-models yolo_world_s --epochs 10 --out bench/results
    python bench/detect_bench.py --models --levers baseline "freeze 10" "mosaic 0" --lever-splits 2 \
        --epochs 10 --name detect_levers --out bench/results
    python bench/detect_bench.py --datasets synthetic --models --ratio-models yolo11n --ratio-rounds 4 \
        --name detect_bench_ratio --out bench/results
    python bench/detect_bench.py --datasets synthetic --models --levers "degrees 180" \
        --lever-models yoloe11n --lever-splits 3 --epochs 60 \
        --baseline-from bench/results/detect_bench_synthetic_60ep_runs.json \
        --work W --name detect_levers_degrees --out bench/results   # W: the work folder of that report
    python bench/detect_bench.py --datasets synthetic --models yolo11n --splits 7 --levers baseline \
        "nbs = batch" --lever-models yoloe11n --lever-splits 7 --epochs 60 --reuse-runs R1_runs.json \
        R2_runs.json --work W --name detect_levers_7splits --out bench/results   # trains splits 5-6 only
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from itertools import product
from pathlib import Path

from report import (
    bench_parser,
    command_line,
    csv_file,
    machine_line,
    mean_std_text,
    write_report,
)
from report import (
    machine_info as shared_machine_info,
)

from common.io import atomic_write, json_float, json_text

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {  # model name -> (run config, model= override or None: the config's own)
    "yolo11n": (ROOT / "configs" / "detection" / "yolo11n.yaml", None),
    "yoloe11n": (ROOT / "configs" / "detection" / "yoloe11n.yaml", None),
    "yolo11n_world": (ROOT / "configs" / "detection" / "yolo11n_world.yaml", None),
    "yolo_world_s": (ROOT / "configs" / "detection" / "yolo_world.yaml", "yolov8s-worldv2.yaml"),
}
#: Models with a text head: they train with the same fixed-vector table (no text model offline).
OPEN_VOCABULARY = ("yoloe11n", "yolo11n_world", "yolo_world_s")
RATIO_TARGET = 0.95
#: The open-vocabulary target: best open-vocabulary mean mAP50 >= this x YOLO11n's, same budget.
OPEN_VOCAB_TARGET = 0.95
ACCURACY_TARGET = 0.9  # defect-type accuracy on the synthetic default
#: YOLO11n's mAP50 in the report committed before the recipe (10 epochs, imgsz 256, split seed 0).
COMMITTED_MAP50 = {"synthetic": 0.546, "hazelnut_toy": 0.165}
#: Recipe levers: each is one change on top of the scored runs' settings, trained with YOLO11n.
LEVERS: dict[str, dict] = {
    "baseline": {},
    "imgsz+64": {"imgsz": "+64"},
    "epochs x1.5": {"epochs": "x1.5"},
    "mosaic 0": {"mosaic": 0.0},
    "close_mosaic half": {"close_mosaic": "half"},
    "freeze 10": {"freeze": 10},
    "warmup 1": {"warmup_epochs": 1.0},
    "AdamW lr0 0.004": {"optimizer": "AdamW", "lr0": 0.004},
    "repeat_factor 0.5": {"repeat_factor": 0.5},
    "tile 256": {"tile": 256, "imgsz": 256},
    # ultralytics accumulates gradients up to a nominal batch of 64 images: on 15-40 train images that is
    # one optimizer step every few epochs. nbs = batch steps after every batch.
    "nbs = batch": {"nbs": "batch"},
    "freeze 10 + nbs = batch": {"freeze": 10, "nbs": "batch"},
    "freeze 10 + close_mosaic half": {"freeze": 10, "close_mosaic": "half"},
    # Levers on top of the shipped recipe (freeze 10, mosaic 0), tried at 60 epochs:
    "freeze 0": {"freeze": 0},
    # Rotation keeps a part's handedness (unlike flips), so it is safe for the mirrored-nut `flip` class.
    "degrees 180": {"degrees": 180.0},
    "nbs = batch + degrees 180": {"nbs": "batch", "degrees": 180.0},
    # ultralytics' optimizer "auto" picks AdamW at lr0 0.002 * 5 / (4 + nc) (0.00125 for 4 classes) on short
    # runs; these set the optimizer explicitly (lr0 is ignored under "auto").
    "AdamW lr0 0.0025": {"optimizer": "AdamW", "lr0": 0.0025},
    "warmup 0": {"warmup_epochs": 0.0},
    # ultralytics rotates a box label as its four corners and keeps their bounding box (up to 2x too large at
    # 45 degrees); a polygon label is rotated point by point and its box stays tight. This lever trains on a
    # twin of the split converted with --task segment (same seed, same images; ultralytics' detect task
    # reads the polygons as boxes) and scores on the box-labelled data as every other run.
    "polygon labels": {"labels": "polygons"},
    "polygon labels + nbs = batch": {"labels": "polygons", "nbs": "batch"},
    "polygon labels + degrees 180": {"labels": "polygons", "degrees": 180.0},
}


@dataclass
class Run:
    """One training run (and, for the scored runs, its evaluation on the test split)."""

    dataset: str
    model: str
    kind: str  # "scored", "lever" or "ratio"
    runner: str  # "wrapper" or "bare"
    epochs: int
    imgsz: int
    train_images: int
    wall_s: float
    epoch_s: list[float] = field(default_factory=list)  # ultralytics' results.csv, per epoch (train + val)
    outside_s: float = float("nan")  # of wall_s, the time outside ultralytics' Model.train
    load_1m: float = float("nan")
    metrics: dict[str, float] = field(default_factory=dict)
    split_seed: int = 0  # the converter's --seed: which seeded split of the data set
    lever: str = ""  # the recipe lever of a "lever" run

    @classmethod
    def from_json(cls, row: dict) -> Run:
        """A run of a ``_runs.json``, whose undefined figures (``null``) are NaN again, as when it ran."""
        figures = {"outside_s": json_float(row.get("outside_s")), "load_1m": json_float(row.get("load_1m"))}
        metrics = {key: math.nan if value is None else value for key, value in row.get("metrics", {}).items()}
        return cls(**{**row, **figures, "metrics": metrics})

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


def convert(root: Path, out: Path, seed: int, task: str = "detect") -> Path:
    if (out / "data.yaml").is_file():  # a reused --work folder: the same seeded split, converted before
        print(f"reusing {out}", file=sys.stderr, flush=True)
        return out / "data.yaml"
    python = sys.executable
    command = [python, "-m", "converters.mvtec2yolo", "--root", str(root), "--out", str(out), "--coco"]
    run_command(command + ["--seed", str(seed), "--task", task, "--no-progress"])
    return out / "data.yaml"


def polygon_twin(data: Path, root: Path, seed: int) -> Path:
    """The ``data.yaml`` of ``data``'s split with polygon labels (``--task segment``), converted once.

    Same source ``root``, same ``seed``, hence the same images in every split (checked: a lever must not
    change the data).
    """
    from detection.data import split_images

    twin = convert(root, data.parent.with_name(data.parent.name + "_polygons"), seed, task="segment")
    for split in ("train", "val", "test"):
        if [p.name for p in split_images(data, split)] != [p.name for p in split_images(twin, split)]:
            raise SystemExit(f"error: {twin} does not hold the images of {data}'s {split} split")
    return twin


def source_root(dataset: str, work: Path, hazelnut: Path) -> Path:
    """The MVTec-layout folder a data set is converted from: the drawn synthetic one, or ``--hazelnut``."""
    return work / "mvtec" if dataset == "synthetic" else hazelnut


def prepare_data(
    work: Path, hazelnut: Path, datasets: Sequence[str], seeds: Sequence[int]
) -> dict[tuple[str, int], Path]:
    """Converts the data sets with the documented commands, once per split seed; returns the data.yaml."""
    found = {}
    if "synthetic" in datasets and not (work / "mvtec").is_dir():  # kept in a reused --work folder
        command = [sys.executable, "-m", "converters.synthetic", "--out", str(work / "mvtec")]
        run_command(command + ["--no-progress"])
    if "synthetic" in datasets:
        for seed in seeds:
            found["synthetic", seed] = convert(
                source_root("synthetic", work, hazelnut), work / f"synthetic_nut_s{seed}", seed
            )
    if "hazelnut_toy" in datasets:
        if not hazelnut.is_dir():
            raise SystemExit(
                f"hazelnut_toy not found at {hazelnut} (pass --hazelnut PATH or --datasets synthetic)"
            )
        for seed in seeds:
            found["hazelnut_toy", seed] = convert(
                source_root("hazelnut_toy", work, hazelnut), work / f"hazelnut_toy_s{seed}", seed
            )
    return found


# --------------------------------------------------------------------------------------------
# Runs


def epoch_times(results_csv: Path) -> list[float]:
    """Seconds per epoch from ultralytics' ``results.csv`` (its ``time`` column: seconds since training
    started, written after each epoch).

    A row is kept only when it has the header's field count and a ``time`` that is a number not below the
    previous kept row's (a last row cut short gave a wrong figure, one without ``time`` a TypeError); each
    row skipped is a ``note:`` on stderr naming the file and its line, and the row after it gives no figure
    (its time since the last kept row spans more than one epoch).
    """
    if not results_csv.is_file():
        return []
    with results_csv.open(newline="") as file:
        rows = [(number, row) for number, row in enumerate(csv.reader(file), 1) if row]
    if not rows or "time" not in (header := [name.strip() for name in rows[0][1]]):
        print(f"note: {results_csv} has no time column: no per-epoch times", file=sys.stderr)
        return []
    column, seconds, previous, after_skip = header.index("time"), [], 0.0, False
    for number, row in rows[1:]:
        if (why := _skipped_because(row, len(header), column, previous)) is not None:
            print(f"note: {results_csv}: line {number} skipped ({why})", file=sys.stderr)
            after_skip = True
            continue
        if not after_skip:
            seconds.append(float(row[column]) - previous)
        previous, after_skip = float(row[column]), False
    return seconds


def _skipped_because(row: list[str], fields: int, column: int, previous: float) -> str | None:
    """Why :func:`epoch_times` skips a ``results.csv`` row (None: kept): ``fields`` the header's count,
    ``column`` the ``time`` one, ``previous`` the last kept row's time."""
    if len(row) != fields:
        return f"{len(row)} field{'' if len(row) == 1 else 's'}, the header has {fields}"
    try:
        seconds = float(row[column])
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        return f"time {row[column]!r} is no number"
    if seconds < previous:
        return f"time {row[column]} is below the previous row's {previous:g}"
    return None


def wrapper_config(model: str, data: Path, table: Path, overrides: dict) -> dict:
    from detection.train_config import build_config

    config_file, model_name = CONFIGS[model]
    items = [f"data={data}", *(f"{k}={v}" for k, v in overrides.items())]
    if model_name:
        items.append(f"model={model_name}")
    if model in OPEN_VOCABULARY:
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


def evaluate_run(data: Path, save_dir: Path, imgsz: int, tile: int = 0) -> dict[str, float]:
    """The run's best.pt on the test split (tiled inference for a tiled run)."""
    from detection.evaluate import evaluate

    weights = save_dir / "weights" / "best.pt"
    if not weights.is_file():
        weights = save_dir / "weights" / "last.pt"
    fixed = evaluate(
        data, weights, split="test", imgsz=imgsz, device="cpu", out=save_dir / "test_conf025", plots=False,
        tile=tile or None,
    )  # fmt: skip
    report = evaluate(
        data, weights, split="test", conf_from="val", imgsz=imgsz, device="cpu", out=save_dir / "test",
        plots=False, tile=tile or None,
    )  # fmt: skip
    u = report.ultralytics
    return {
        "mAP50": u.get("metrics/mAP50(B)", float("nan")),
        "mAP50-95": u.get("metrics/mAP50-95(B)", float("nan")),
        "coco_mAP50": report.coco["mAP50"] if report.coco else float("nan"),
        "accuracy": report.image_level.accuracy,
        "conf": report.image_level.conf,
        "accuracy_conf025": fixed.image_level.accuracy,
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
    split_seed: int = 0,
    lever: str = "",
) -> tuple[Run, Path]:
    from detection.data import split_images

    config = wrapper_config(model, data, table, {**overrides, "name": name})
    load = load_1m()
    label = f"{dataset} s{split_seed} {model} {kind} {lever} {runner}"
    print(f"--- {label} (load {load:.2f})", file=sys.stderr, flush=True)
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
        split_seed=split_seed,
        lever=lever,
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
    metric_keys = ["mAP50", "mAP50-95", "coco_mAP50", "accuracy", "conf", "accuracy_conf025"]
    metric_keys += ["balanced_accuracy", "auroc", "test_images"]
    with csv_file(path) as writer:
        writer.writerow(
            ["dataset", "split_seed", "model", "kind", "lever", "runner", "epochs", "imgsz", "train_images"]
            + ["wall_s", "outside_s"]
            + ["s_per_epoch", "images_per_s", "steady_images_per_s", "load_1m", *metric_keys]
        )
        for r in runs:
            writer.writerow(
                [
                    r.dataset,
                    r.split_seed,
                    r.model,
                    r.kind,
                    r.lever,
                    r.runner,
                    r.epochs,
                    r.imgsz,
                    r.train_images,
                ]
                + [f"{r.wall_s:.2f}"]
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


def group_means(scored: Sequence[Run]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (data set, model): mean of each metric over its split seeds, and the number of splits."""
    out = {}
    for key in dict.fromkeys((r.dataset, r.model) for r in scored):
        group = [r for r in scored if (r.dataset, r.model) == key]
        means = {k: statistics.mean(r.metrics[k] for r in group) for k in ("mAP50", "mAP50-95", "accuracy")}
        out[key] = {
            **means,
            "splits": len(group),
            "s_per_epoch": statistics.mean(r.s_per_epoch for r in group),
        }
    return out


def scored_section(scored: Sequence[Run], args: argparse.Namespace) -> list[str]:
    """The scored runs' table (mean +- std over the seeded splits) and its notes."""
    lines = [
        f"Each model trained with `detection.train` from its shipped config (`configs/detection/`: the "
        f"recipe) with {args.epochs} epochs at imgsz {args.imgsz}, batch {args.batch}, seed {args.seed}, "
        f"workers {args.workers}, plots off, on {args.splits} seeded split(s) of each data set (the "
        "converter's `--seed 0..K-1`: repeated stratified random splits, as the test splits hold fewer than "
        "20 images), each scored on its test split with `detection.evaluate` (best.pt). mAP from "
        "ultralytics' validator; accuracy = image-level defect type (good + each defect: the class of the "
        "top box with score >= conf, `good` without one), conf picked on the val split "
        "(`detection.evaluate --conf-from val`: the best val accuracy, ties nearest 0.25; never on test), "
        "the picked conf and the accuracy at the fixed conf 0.25 beside it; AUROC = anomaly AUROC from the "
        "top box score. Mean +- std over the splits.",
        "",
        "| data set | model | splits | train imgs | test imgs | s/epoch | mAP50 | mAP50-95 | accuracy "
        "| conf (val) | accuracy @0.25 | AUROC |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for dataset, model in dict.fromkeys((r.dataset, r.model) for r in scored):
        group = [r for r in scored if (r.dataset, r.model) == (dataset, model)]

        def column(key: str, group=group) -> str:
            return mean_std_text([r.metrics[key] for r in group])

        lines.append(
            f"| {dataset} | {model} | {len(group)} | {group[0].train_images} "
            f"| {int(group[0].metrics['test_images'])} | {statistics.mean(r.s_per_epoch for r in group):.1f} "
            f"| {column('mAP50')} | {column('mAP50-95')} | {column('accuracy')} | {column('conf')} "
            f"| {column('accuracy_conf025')} | {column('auroc')} |"
        )
    return lines + [
        "",
        "- `yolo11n`: COCO-pretrained `yolo11n.pt` (`detection.weights`, sha256-checked).",
        "- `yoloe11n`: ultralytics' `yoloe-11.yaml` (scale n) with `pretrained: yolo11n.pt`: 493 of "
        "yolo11n.pt's 499 tensors transferred (all but its 80-class outputs); text head untrained.",
        "- `yolo11n_world`: YOLO-World-v2's `WorldDetect` head on YOLO11n's backbone and neck "
        "(`configs/detection/models/yolo11n-worldv2.yaml`), `pretrained: yolo11n.pt`: 493 of 499 tensors.",
        "- `yolo_world_s`: `yolov8s-worldv2.yaml` from scratch (no YOLO-World weights offline): reference.",
        "- The three open-vocabulary models train with the same table of fixed seeded unit vectors as class "
        "embeddings (no CLIP / MobileCLIP offline): closed-set detectors here.",
        "- s/epoch: ultralytics' own per-epoch time (training + its per-epoch validation), mean over epochs "
        "and splits. Test splits are tiny: one image moves accuracy by 1/test imgs.",
        "",
    ]


def resolve_lever(lever: dict, base: dict) -> dict:
    """A lever's overrides, relative values made absolute (``+64``, ``x1.5``, ``half``, ``batch``)."""
    out = {}
    for key, value in lever.items():
        if value == "+64":
            value = int(base[key]) + 64
        elif value == "x1.5":
            value = int(round(int(base[key]) * 1.5))
        elif value == "half":
            value = int(base["epochs"]) // 2
        elif value == "batch":
            value = int(base["batch"])
        out[key] = value
    return out


def load_baseline(path: Path, epochs: int, imgsz: int) -> list[Run]:
    """An earlier report's scored runs with these epochs and imgsz, relabelled as ``baseline`` levers.

    They are the baseline by definition (the scored settings, no lever); the caller keeps the ones of the
    lever runs' data sets, models and splits.
    """
    if not path.is_file():
        raise SystemExit(f"error: --baseline-from {path}: no such file")
    runs = [Run.from_json(row) for row in json.loads(path.read_text())]
    kept = [r for r in runs if r.kind == "scored" and (r.epochs, r.imgsz) == (epochs, imgsz)]
    for r in kept:
        r.kind, r.lever = "lever", "baseline"
    return kept


def load_reusable(paths: Sequence[Path]) -> dict[tuple, Run]:
    """Earlier reports' runs by (data set, model, lever, split seed, epochs, imgsz); scored runs: lever "".

    A scored run is also filed as the ``baseline`` lever (the scored settings, no lever).
    """
    found = {}
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"error: --reuse-runs {path}: no such file")
        for run in (Run.from_json(row) for row in json.loads(path.read_text())):
            key = (run.dataset, run.model, run.split_seed, run.epochs, run.imgsz)
            if run.kind == "scored":
                found[(*key[:2], "", *key[2:])] = run
                found[(*key[:2], "baseline", *key[2:])] = replace(run, kind="lever", lever="baseline")
            elif run.kind == "lever":
                found[(*key[:2], run.lever, *key[2:])] = run
    return found


def lever_section(levers: Sequence[Run]) -> list[str]:
    """Each recipe lever's effect, per model, against the baseline on the same split(s)."""
    lines = [
        "## Recipe levers",
        "",
        "One change at a time on top of the scored runs' settings, same split(s), scored on test. "
        "delta = lever - baseline (mean over the splits); accuracy with the conf picked on val.",
        "",
        "| data set | model | lever | splits | s/epoch | wall s | mAP50 | delta mAP50 | mAP50-95 | accuracy "
        "| delta accuracy | accuracy @0.25 | AUROC |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for dataset, model in dict.fromkeys((r.dataset, r.model) for r in levers):
        mine = [r for r in levers if (r.dataset, r.model) == (dataset, model)]
        base = [r for r in mine if r.lever == "baseline"]

        def base_mean(key: str, base=base) -> float:
            return statistics.mean(r.metrics[key] for r in base) if base else float("nan")

        for lever in dict.fromkeys(r.lever for r in mine):
            group = [r for r in mine if r.lever == lever]
            delta = statistics.mean(r.metrics["mAP50"] for r in group) - base_mean("mAP50")
            delta_acc = statistics.mean(r.metrics["accuracy"] for r in group) - base_mean("accuracy")
            lines.append(
                f"| {dataset} | {model} | {lever} | {len(group)} "
                f"| {statistics.mean(r.s_per_epoch for r in group):.1f} "
                f"| {statistics.mean(r.wall_s for r in group):.0f} "
                f"| {mean_std_text([r.metrics['mAP50'] for r in group])} | {delta:+.3f} "
                f"| {mean_std_text([r.metrics['mAP50-95'] for r in group])} "
                f"| {mean_std_text([r.metrics['accuracy'] for r in group])} | {delta_acc:+.3f} "
                f"| {mean_std_text([r.metrics.get('accuracy_conf025', float('nan')) for r in group])} "
                f"| {mean_std_text([r.metrics['auroc'] for r in group])} |"
            )
    return lines + [""]


def open_vocab_lever_lines(runs: Sequence[Run]) -> list[str]:
    """Each open-vocabulary lever's mean mAP50 against YOLO11n's baseline on the same split seeds.

    The per-model recipe question: does a lever bring an open-vocabulary model to the target ratio of
    YOLO11n's mAP50 (its shipped config, same epochs and imgsz: a scored run or the ``baseline`` lever)?
    Only where YOLO11n's baseline covers every split of the lever's runs; where YOLO11n ran the same lever
    on the same splits, the ratio to that too (a lever that helps every model, such as polygon labels).
    """
    met = {True: "met", False: "not met"}
    reference = {
        (r.dataset, r.split_seed): r
        for r in runs
        if r.model == "yolo11n" and (r.kind == "scored" or r.lever == "baseline")
    }
    levers = [r for r in runs if r.kind == "lever"]
    same_lever = {(r.dataset, r.split_seed, r.lever): r for r in levers if r.model == "yolo11n"}
    lines = []
    for dataset, model, lever in dict.fromkeys((r.dataset, r.model, r.lever) for r in levers):
        group = [r for r in levers if (r.dataset, r.model, r.lever) == (dataset, model, lever)]
        base = [reference.get((dataset, r.split_seed)) for r in group]
        if model not in OPEN_VOCABULARY or None in base:
            continue
        mine = statistics.mean(r.metrics["mAP50"] for r in group)
        theirs = statistics.mean(r.metrics["mAP50"] for r in base)
        ratio = mine / theirs if theirs else float("nan")
        accuracy = statistics.mean(r.metrics["accuracy"] for r in group)
        target = (
            f", >= {ACCURACY_TARGET} **{met[accuracy >= ACCURACY_TARGET]}**" if dataset == "synthetic" else ""
        )
        lines.append(
            f"- {model}, {lever}, on {dataset}: mAP50 {mine:.3f} vs yolo11n {theirs:.3f} ({len(group)} "
            f"split(s)): {ratio:.3f}x, >= {OPEN_VOCAB_TARGET}x **{met[ratio >= OPEN_VOCAB_TARGET]}**; "
            f"accuracy {accuracy:.3f}{target}"
        )
        same = [same_lever.get((dataset, r.split_seed, lever)) for r in group]
        if lever != "baseline" and None not in same:  # a recipe for both: YOLO11n with the same lever
            theirs = statistics.mean(r.metrics["mAP50"] for r in same)
            ratio = mine / theirs if theirs else float("nan")
            lines.append(
                f"  - against yolo11n with the same lever: {theirs:.3f}: {ratio:.3f}x, "
                f">= {OPEN_VOCAB_TARGET}x **{met[ratio >= OPEN_VOCAB_TARGET]}**"
            )
    if not lines:
        return []
    header = "Open-vocabulary levers against YOLO11n's baseline (mean mAP50 over the same split seeds):"
    return [header, "", *lines, ""]


def lever_target_lines(levers: Sequence[Run]) -> list[str]:
    """The targets again for each lever that YOLO11n and an open-vocabulary model both ran, same splits.

    A lever that changes the recipe for every model (polygon labels) is judged as a recipe: the best
    open-vocabulary model against YOLO11n with that lever, defect-type accuracy per model.
    """
    met = {True: "met", False: "not met"}
    lines = []
    for dataset, lever in dict.fromkeys((r.dataset, r.lever) for r in levers):
        group = [r for r in levers if (r.dataset, r.lever) == (dataset, lever)]
        models = {m: [r for r in group if r.model == m] for m in dict.fromkeys(r.model for r in group)}
        splits = {m: sorted(r.split_seed for r in mine) for m, mine in models.items()}
        opens = [m for m in models if m in OPEN_VOCABULARY and splits[m] == splits.get("yolo11n")]
        if not opens:
            continue
        mean = {m: statistics.mean(r.metrics["mAP50"] for r in models[m]) for m in ["yolo11n", *opens]}
        best = max(opens, key=mean.get)
        ratio = mean[best] / mean["yolo11n"] if mean["yolo11n"] else float("nan")
        lines.append(
            f"- `{lever}` on {dataset} ({len(splits['yolo11n'])} splits): best open-vocabulary mAP50 >= "
            f"{OPEN_VOCAB_TARGET} x YOLO11n's with the same lever: **{met[ratio >= OPEN_VOCAB_TARGET]}** "
            f"({best} {mean[best]:.3f} vs yolo11n {mean['yolo11n']:.3f}: {ratio:.3f}x)"
        )
        if dataset == "synthetic":
            for m in ["yolo11n", *opens]:
                accuracy = statistics.mean(r.metrics["accuracy"] for r in models[m])
                lines.append(
                    f"  - defect-type accuracy >= {ACCURACY_TARGET}, {m}: "
                    f"**{met[accuracy >= ACCURACY_TARGET]}** (mean {accuracy:.3f})"
                )
    return lines


def target_lines(scored: Sequence[Run]) -> list[str]:
    """The issue's targets, met / not met, from the scored runs' means."""
    met = {True: "met", False: "not met"}
    means = group_means(scored)
    lines = []
    for dataset in dict.fromkeys(r.dataset for r in scored):
        base = means.get((dataset, "yolo11n"))
        opens = {m: v for (d, m), v in means.items() if d == dataset and m in OPEN_VOCABULARY}
        if base and opens:
            best, value = max(opens.items(), key=lambda kv: kv[1]["mAP50"])
            ratio = value["mAP50"] / base["mAP50"] if base["mAP50"] else float("nan")
            lines.append(
                f"- best open-vocabulary mAP50 >= {OPEN_VOCAB_TARGET} x YOLO11n's on {dataset}: "
                f"**{met[ratio >= OPEN_VOCAB_TARGET]}** ({best} {value['mAP50']:.3f} vs yolo11n "
                f"{base['mAP50']:.3f}: {ratio:.2f}x, means over {value['splits']} split(s))"
            )
        if base and dataset in COMMITTED_MAP50:
            seed0 = [
                r.metrics["mAP50"]
                for r in scored
                if (r.dataset, r.model, r.split_seed) == (dataset, "yolo11n", 0)
            ]
            shown = f"split seed 0 {seed0[0]:.3f}, " if seed0 else ""
            lines.append(
                f"- YOLO11n mAP50 on {dataset} above the committed {COMMITTED_MAP50[dataset]:.3f}: "
                f"**{met[base['mAP50'] > COMMITTED_MAP50[dataset]]}** ({shown}mean {base['mAP50']:.3f})"
            )
        if dataset == "synthetic":
            for model, value in means.items():
                if model[0] == dataset:
                    lines.append(
                        f"- defect-type accuracy >= {ACCURACY_TARGET} on synthetic, {model[1]}: "
                        f"**{met[value['accuracy'] >= ACCURACY_TARGET]}** (mean {value['accuracy']:.3f})"
                    )
    return lines


def markdown(
    runs: Sequence[Run],
    *,
    command: str,
    args: argparse.Namespace,
    info: dict[str, str],
    total_s: float,
    reused: Sequence[Run] = (),
) -> str:
    met = {True: "met", False: "not met"}
    scored = [r for r in runs if r.kind == "scored"]
    levers = [r for r in runs if r.kind == "lever"]
    lines = ["# Detection fine-tuning on CPU", ""]
    if scored:
        lines += scored_section(scored, args)
    else:
        lines += ["No scored runs in this report (`--models` empty).", ""]
    if levers:
        lines += lever_section(levers)
        lines += open_vocab_lever_lines(runs)
    targets = (target_lines(scored) if scored else []) + lever_target_lines(levers)
    if targets:
        lines += ["## Targets", "", *targets, ""]
    table = ratios(runs)
    if table:
        lines += ratio_section(runs, table, args, met)
    return "\n".join(lines + run_section(runs, command=command, info=info, total_s=total_s, reused=reused))


def ratio_section(runs: Sequence[Run], table: dict, args: argparse.Namespace, met: dict) -> list[str]:
    """Wrapper vs bare ultralytics: images/s of the same training, and the wrapper's own cost."""
    lines = [
        "## Wrapper vs bare ultralytics",
        "",
        f"Same arguments, {args.ratio_epochs} epochs, order wrapper, bare, bare, wrapper, ... "
        f"({args.ratio_rounds} of each), median images/s.",
        "",
        "| data set | model | wrapper img/s | bare img/s | ratio | steady wrapper | steady bare "
        "| steady ratio | outside train(), wrapper / bare (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
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
        "## Wrapper targets",
        "",
    ]
    for (dataset, model), v in table.items():
        lines.append(
            f"- wrapper images/s >= {RATIO_TARGET} x bare ultralytics, {model} on {dataset}: "
            f"**{met[v['ratio'] >= RATIO_TARGET]}** (ratio {v['ratio']:.3f}; steady {v['ratio_steady']:.3f}; "
            f"the wrapper's own cost {v['wrapper_outside'] - v['bare_outside']:+.2f} s = "
            f"{100 * (v['wrapper_outside'] - v['bare_outside']) / v['bare_wall']:+.1f}% of a bare run)"
        )
    return lines


def run_label(run: Run) -> str:
    return f"{run.dataset}/s{run.split_seed}/{run.model}/{run.kind}{run.lever and '/' + run.lever}"


def run_section(
    runs: Sequence[Run], *, command: str, info: dict[str, str], total_s: float, reused: Sequence[Run] = ()
) -> list[str]:
    """How the report was made: command, date, time, load, machine, the runs kept from earlier reports."""
    kept = (
        [f"- kept from `--reuse-runs` (not retrained): {', '.join(map(run_label, reused))}"] if reused else []
    )
    return [
        "",
        "## Run",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- total wall time: {total_s / 60:.1f} min",
        *kept,
        "- 1-minute load average at the start of each run: "
        + ", ".join(f"{run_label(r)} {r.load_1m:.2f}" for r in runs),
        machine_line(info),
        "- The CPU is shared: other processes' load slows every run, and ultralytics trains on CPU with "
        f"{info.get('torch_threads_in_training', '?')} torch thread(s) (its `NUM_THREADS` = cpu_count - 1), "
        "the data loader workers using the rest. Compare timings within one report only.",
        "",
    ]


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
        "--ratio-models", nargs="*", default=[], choices=["yolo11n", "yolo_world_s"],
        help="models timed wrapper vs bare, on the first data set (default none)",
    )  # fmt: skip
    parser.add_argument("--splits", type=int, default=1, help="seeded splits per data set (seeds 0..K-1)")
    parser.add_argument(
        "--one-split-models", nargs="*", default=[], choices=sorted(CONFIGS),
        help="scored on split seed 0 only (a slow reference, e.g. yolo_world_s)",
    )  # fmt: skip
    parser.add_argument(
        "--levers", nargs="*", default=[], choices=sorted(LEVERS),
        help="recipe levers trained with --lever-models, each one change on top of the scored settings",
    )  # fmt: skip
    parser.add_argument("--lever-splits", type=int, default=1, help="split seeds of the lever runs (0..K-1)")
    parser.add_argument(
        "--lever-models", nargs="+", default=["yolo11n"], choices=sorted(CONFIGS),
        help="models trained with each lever (default yolo11n)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline-from", type=Path,
        help="an earlier report's _runs.json: its scored runs (same epochs, imgsz) are the levers' baseline",
    )  # fmt: skip
    parser.add_argument(
        "--reuse-runs", nargs="+", type=Path, default=[],
        help="earlier reports' _runs.json: their runs (same model, lever, split, epochs, imgsz) are kept",
    )  # fmt: skip
    parser.add_argument(
        "--datasets", nargs="+", default=["synthetic", "hazelnut_toy"], choices=["synthetic", "hazelnut_toy"]
    )
    parser.add_argument(
        "--models",
        nargs="*",
        default=["yolo11n", "yoloe11n", "yolo11n_world", "yolo_world_s"],
        choices=sorted(CONFIGS),
        help="scored",
    )
    parser.add_argument(
        "--hazelnut", type=Path, default=ROOT.parent / "shared" / "data" / "hazelnut_toy", help="MVTec-layout"
    )
    parser.add_argument("--name", default="detect_bench", help="results file stem (default detect_bench)")
    parser.add_argument("--work", type=Path, help="work folder kept afterwards (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.ratio_epochs < 2 or args.ratio_rounds < 1 or args.splits < 1:
        parser.error(
            "need --epochs >= 1, --ratio-epochs >= 2 (steady rate), --ratio-rounds >= 1, --splits >= 1"
        )
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
        seeds = range(max(args.splits, args.lever_splits if args.levers else 1))
        datasets = prepare_data(work, args.hazelnut, args.datasets, list(seeds))

        from common.fonts import ensure_ultralytics_fonts
        from detection.data import data_names
        from detection.text_embeddings import fixed_embeddings, save_table

        ensure_ultralytics_fonts()  # once, untimed: both runners find the fonts in place
        info = machine_info()
        info["load_avg_1m_before"] = f"{load_1m():.2f}"
        tables = {
            key: save_table(fixed_embeddings(data_names(data)), work / f"{key[0]}_s{key[1]}_table.pt")
            for key, data in datasets.items()
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
        reusable, reused = load_reusable(args.reuse_runs), []
        for (dataset, seed), data in datasets.items():
            for model in args.models:
                if seed >= args.splits or (seed and model in args.one_split_models):
                    continue
                if kept := reusable.get((dataset, model, "", seed, args.epochs, args.imgsz)):
                    runs.append(kept)
                    reused.append(kept)
                    continue
                run, save_dir = one_run(
                    dataset=dataset, data=data, model=model, kind="scored", runner="wrapper",
                    table=tables[dataset, seed], overrides={**base, "epochs": args.epochs},
                    name=f"{dataset}_s{seed}_{model}", split_seed=seed,
                )  # fmt: skip
                run.metrics = evaluate_run(data, save_dir, args.imgsz)
                runs.append(run)
        if args.baseline_from and args.levers:
            models = {*args.lever_models, "yolo11n"}  # YOLO11n: the open-vocabulary levers' reference
            wanted = {(d, m, s) for d, s in datasets if s < args.lever_splits for m in models}
            runs += [
                r
                for r in load_baseline(args.baseline_from, args.epochs, args.imgsz)
                if (r.dataset, r.model, r.split_seed) in wanted
            ]
        for (dataset, seed), data in datasets.items():
            for model, lever in product(args.lever_models, args.levers if seed < args.lever_splits else ()):
                overrides = {**base, "epochs": args.epochs}
                overrides.update(resolve_lever(LEVERS[lever], overrides))
                labels = overrides.pop("labels", "boxes")
                key = (dataset, model, lever, seed, int(overrides["epochs"]), int(overrides["imgsz"]))
                if kept := reusable.get(key):
                    runs.append(kept)
                    reused.append(kept)
                    continue
                prefix = f"lever_{dataset}_s{seed}" + ("" if model == "yolo11n" else f"_{model}")
                train_data = data
                if labels == "polygons":
                    train_data = polygon_twin(data, source_root(dataset, work, args.hazelnut), seed)
                run, save_dir = one_run(
                    dataset=dataset, data=train_data, model=model, kind="lever", runner="wrapper",
                    table=tables[dataset, seed], overrides=overrides, split_seed=seed, lever=lever,
                    name=f"{prefix}_{lever.replace(' ', '_')}",
                )  # fmt: skip
                run.metrics = evaluate_run(
                    data, save_dir, int(overrides["imgsz"]), int(overrides.get("tile", 0))
                )
                runs.append(run)

        datasets = {dataset: data for (dataset, seed), data in datasets.items() if seed == 0}
        tables = {dataset: table for (dataset, seed), table in tables.items() if seed == 0}
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
        report = markdown(runs, command=command, args=args, info=info, total_s=total, reused=reused)
        write_report(args.out / f"{args.name}.md", report)
        atomic_write(
            args.out / f"{args.name}_runs.json", json_text([asdict(r) for r in runs], indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
