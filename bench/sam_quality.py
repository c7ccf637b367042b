"""Segmentation quality: zero-shot vs fine-tuned MobileSAM on held-out test images.

For each data set (the synthetic default, and the real hazelnut photos of
``../shared/data/hazelnut_toy``) this script

1. converts it with the converters' defaults (``mvtec2yolo --coco``: seeded, stratified 60/20/20
   train/val/test split of the defect images, half as many good images added per split);
2. fine-tunes the mask decoder on the train split with ``segmentation.train.train`` (image encoder
   frozen, embeddings from the cache): epoch 0 scores the untuned model on val, and ``decoder.pt``
   keeps the epoch with the best val IoU (the untuned decoder when no epoch beats it);
3. scores the untuned model and the kept decoder on the *test* split with
   ``segmentation.evaluate.evaluate_model``: one tight box per ground-truth connected region,
   single-mask output; mean per-image IoU and Dice of the union of the predicted masks, mean
   per-instance IoU, and COCO mask AP (the decoder's predicted IoU as score).

The fine-tuning settings are :data:`BENCH_SETTINGS` on top of ``segmentation.train_config.DEFAULTS``
(``--set key=value`` adds or replaces overrides); the resolved config of each run is written in
the report. Test images are used for nothing but the final scores.

Writes ``<out>/sam_quality.csv`` and ``<out>/sam_quality.md`` and prints the markdown. Embeddings
go to ``--cache-dir`` (outside the user's cache, kept between runs, so a rerun skips the encoder),
converted data and run folders to ``--work`` (replaced on every run).

Usage::

    python bench/sam_quality.py --out bench/results
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from report import (
    bench_parser,
    command_line,
    csv_file,
    load_average,
    machine_line,
    note_load_after,
    write_report,
)
from report import (
    machine_info as shared_machine_info,
)

from common.config import load_config
from converters.convert import ConvertConfig, convert
from converters.synthetic import SyntheticConfig, generate
from segmentation.data import SegmentationSplit, load_split
from segmentation.embeddings import EmbeddingCache
from segmentation.evaluate import ModelEvaluation, evaluate_model
from segmentation.finetuned import load_finetuned
from segmentation.models import load_sam
from segmentation.train import train
from segmentation.train_config import DEFAULTS

BENCH_ROOT = Path(tempfile.gettempdir()) / "mvtec-finetune-bench"
#: Default embedding cache of the benchmarks: outside the user's cache, kept between runs.
DEFAULT_CACHE = BENCH_ROOT / "embeddings"
DEFAULT_WORK = BENCH_ROOT / "sam_quality"
DEFAULT_HAZELNUT = Path("../shared/data/hazelnut_toy")
#: Fine-tuning settings, as ``segmentation.train`` overrides on top of its DEFAULTS. Chosen on the val
#: splits (see bench/README.md): train what the evaluation uses, a jittered box prompt (SAM's 10% jitter)
#: and the single-mask output token (DEFAULTS' multimask training never updates that token's head),
#: without the corrective click round (half the cost per sample, no loss in val IoU).
BENCH_SETTINGS: tuple[str, ...] = (
    "epochs=10",
    "multimask=false",
    "corrective_rounds=0",
    "prompts.p_box=1.0",
)
#: Metrics of the summary, as (report name, ``Summary`` field).
METRICS: tuple[tuple[str, str], ...] = (
    ("IoU", "iou"),
    ("Dice", "dice"),
    ("instance IoU", "instance_iou"),
    ("mask AP", "mask_ap"),
    ("AP50", "mask_ap50"),
)


# --------------------------------------------------------------------------------------------
# Data


def convert_category(root: Path, out: Path) -> Path:
    """``python -m converters.mvtec2yolo --root ROOT --out OUT --coco`` with every other default."""
    convert(ConvertConfig(root=root, out=out, formats=("yolo", "coco"), overwrite=True, progress=False))
    return out


def prepare_datasets(work: Path, hazelnut: Path | None) -> dict[str, Path]:
    """The converted data sets by name: the synthetic default, and hazelnut_toy when it is given."""
    datasets = {}
    synthetic = generate(work / "mvtec", SyntheticConfig(), overwrite=True, progress=False)
    datasets["synthetic_nut"] = convert_category(synthetic.parent, work / "data" / "synthetic_nut")
    if hazelnut is not None:
        datasets["hazelnut_toy"] = convert_category(hazelnut, work / "data" / "hazelnut_toy")
    return datasets


# --------------------------------------------------------------------------------------------
# One data set


@dataclass
class DatasetResult:
    """Everything measured on one data set."""

    name: str
    data: Path
    splits: dict[str, SegmentationSplit]
    config: dict
    run_dir: Path
    val_rows: list[dict]
    zero_shot: ModelEvaluation
    tuned: ModelEvaluation
    seconds: dict[str, float]
    encoded: tuple[int, int]  # images whose embedding this run computed, of all the data set's images

    @property
    def best_epoch(self) -> int:
        """The epoch ``decoder.pt`` holds: the first with the best val IoU (0 = untuned)."""
        best = max(row["val_iou"] for row in self.val_rows)
        return next(int(row["epoch"]) for row in self.val_rows if row["val_iou"] == best)

    def per_image(self) -> tuple[int, int, int]:
        """Test images where fine-tuning raised, lowered or kept the IoU (by more than 1e-4)."""
        before = {s.image_id: s.iou for s in self.zero_shot.scores}
        after = {s.image_id: s.iou for s in self.tuned.scores}
        deltas = [after[k] - before[k] for k in before]
        return (
            sum(d > 1e-4 for d in deltas),
            sum(d < -1e-4 for d in deltas),
            sum(abs(d) <= 1e-4 for d in deltas),
        )


def read_results(path: Path) -> list[dict]:
    """``results.csv`` of a run as dicts of numbers."""
    with path.open(newline="", encoding="utf-8") as file:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(file)]


def run_dataset(
    name: str, data: Path, *, args: argparse.Namespace, overrides: Sequence[str]
) -> DatasetResult:
    """Fills the cache, fine-tunes on train (selects on val), scores both models on test."""
    seconds: dict[str, float] = {}
    splits = {split: load_split(data, split) for split in ("train", "val", "test")}
    base = load_sam(args.model, device="cpu")
    cache = EmbeddingCache(args.cache_dir, base, model_name=args.model)
    paths = [image.path for split in splits.values() for image in split.images]

    missing = sum(path not in cache for path in set(paths))
    start = time.perf_counter()
    print(f"[{name}] embeddings of {len(paths)} images into {args.cache_dir} ...", file=sys.stderr)
    cache.embed(paths, batch_size=1, progress=True)  # nothing to do when an earlier run filled it
    seconds["embed"] = time.perf_counter() - start
    encoded = (missing, len(set(paths)))

    run_dir = args.work / "runs" / name
    if run_dir.exists():  # a fresh run folder each time; train() would number a new one instead
        shutil.rmtree(run_dir)
    config = load_config(
        DEFAULTS,
        None,
        [
            f"data={data}",
            f"model={args.model}",
            f"cache_dir={args.cache_dir}",
            f"out={run_dir.parent}",
            f"name={name}",
            "device=cpu",
            "progress=false",
            *overrides,
        ],
    )
    start = time.perf_counter()
    print(f"[{name}] fine-tuning, run folder {run_dir} ...", file=sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the report
        run_dir = train(config)
    seconds["train"] = time.perf_counter() - start

    start = time.perf_counter()
    print(f"[{name}] scoring zero-shot and fine-tuned on test ...", file=sys.stderr)
    tuned, _ = load_finetuned(run_dir / "decoder.pt", model=args.model, device="cpu")
    test = splits["test"]
    embeddings = cache.embed([image.path for image in test.images], progress=False)
    with torch.inference_mode():
        zero_shot = evaluate_model(base, test, embeddings, name="zero-shot", progress=False)
        finetuned = evaluate_model(tuned, test, embeddings, name="fine-tuned", progress=False)
    seconds["evaluate"] = time.perf_counter() - start
    return DatasetResult(
        name=name,
        data=data,
        splits=splits,
        config=config,
        run_dir=run_dir,
        val_rows=read_results(run_dir / "results.csv"),
        zero_shot=zero_shot,
        tuned=finetuned,
        seconds=seconds,
        encoded=encoded,
    )


# --------------------------------------------------------------------------------------------
# Reporting


def metric(evaluation: ModelEvaluation, field: str) -> float:
    return float(getattr(evaluation.summary, field).get("all", float("nan")))


def fmt(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def machine_info(threads: int) -> dict[str, str]:
    """CPU, threads, load, interpreter and library versions."""
    return shared_machine_info(
        {
            "torch_threads": str(threads),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
            "load_avg_1m_before": load_average(),
        },
        ["torch", "segment-anything", "ultralytics", "pycocotools"],
    )


def write_csv(path: Path, results: Sequence[DatasetResult]) -> None:
    """One row per data set and model, test split: the metrics, and the gain on the fine-tuned row."""
    with csv_file(path) as writer:
        fields = [field for _, field in METRICS]
        writer.writerow(
            ["dataset", "model", "test_images", "test_instances", *fields, *(f"{f}_gain" for f in fields)]
            + ["val_iou", "best_epoch"]
        )
        for result in results:
            test = result.splits["test"]
            n_images = sum(not image.is_background for image in test.images)
            epoch0 = result.val_rows[0]["val_iou"]
            best_val = max(row["val_iou"] for row in result.val_rows)
            for name, evaluation, val, epoch in (
                ("zero-shot", result.zero_shot, epoch0, 0),
                ("fine-tuned", result.tuned, best_val, result.best_epoch),
            ):
                values = [metric(evaluation, f) for f in fields]
                gains = [
                    metric(evaluation, f) - metric(result.zero_shot, f) if evaluation is result.tuned else 0.0
                    for f in fields
                ]
                writer.writerow(
                    [result.name, name, n_images, test.n_instances]
                    + [f"{v:.4f}" for v in values]
                    + [f"{g:.4f}" for g in gains]
                    + [f"{val:.4f}", epoch]
                )


def split_line(result: DatasetResult) -> str:
    parts = []
    for split in ("train", "val", "test"):
        images = result.splits[split].images
        defect = sum(not image.is_background for image in images)
        parts.append(f"{split} {defect} defect images / {result.splits[split].n_instances} instances")
    sizes = sorted({f"{im.width}x{im.height}" for s in result.splits.values() for im in s.images})
    return "; ".join(parts) + f" (images {', '.join(sizes)} px)"


def markdown(
    results: Sequence[DatasetResult],
    *,
    command: str,
    args: argparse.Namespace,
    overrides: Sequence[str],
    info: dict[str, str],
    wall_seconds: float,
) -> str:
    """The report: test metrics per data set, val selection, targets, configs, command, machine."""
    met = {True: "met", False: "not met"}
    lines = [
        "# Segmentation quality: zero-shot vs fine-tuned MobileSAM",
        "",
        f"Model `{args.model}`. Fine-tuned on each data set's train split, the epoch kept by val IoU, scored "
        "on its test split (held out from both): one tight box per ground-truth connected region, "
        "single-mask output. IoU and Dice: mean over the test defect images of the union of the predicted "
        "masks against the whole ground-truth mask; instance IoU: mean over instances; mask AP: COCO "
        "segm AP@[.5:.95] with the predicted IoU as score.",
        "",
        "| data set | model | test images | " + " | ".join(name for name, _ in METRICS) + " |",
        "|---|---|---:|" + "---:|" * len(METRICS),
    ]
    for result in results:
        test = result.splits["test"]
        n_images = sum(not image.is_background for image in test.images)
        for name, evaluation in (("zero-shot", result.zero_shot), ("fine-tuned", result.tuned)):
            cells = [fmt(metric(evaluation, field)) for _, field in METRICS]
            lines.append(f"| {result.name} | {name} | {n_images} | " + " | ".join(cells) + " |")
        gains = [fmt(metric(result.tuned, f) - metric(result.zero_shot, f), signed=True) for _, f in METRICS]
        lines.append(f"| {result.name} | **gain** | | " + " | ".join(f"**{g}**" for g in gains) + " |")
    lines += ["", "## Per data set", ""]
    for result in results:
        up, down, same = result.per_image()
        epoch0 = result.val_rows[0]["val_iou"]
        best_val = max(row["val_iou"] for row in result.val_rows)
        curve = ", ".join(f"{int(row['epoch'])}: {row['val_iou']:.4f}" for row in result.val_rows)
        lines += [
            f"### {result.name}",
            "",
            f"- data: `{result.data}`; {split_line(result)}",
            f"- val IoU by epoch (0 = zero-shot): {curve}",
            f"- kept epoch {result.best_epoch} (val IoU {best_val:.4f} vs {epoch0:.4f} zero-shot, "
            f"{best_val - epoch0:+.4f})",
            f"- test images where fine-tuning raised / lowered / kept the IoU: {up} / {down} / {same}",
            "- time: "
            + ", ".join(f"{key} {value:.0f} s" for key, value in result.seconds.items())
            + f" ({result.encoded[0]} of {result.encoded[1]} images encoded in this run, the rest were "
            f"in the cache); run folder `{result.run_dir}`",
            "",
        ]
    lines += ["## Targets", ""]
    for result in results:
        gain = metric(result.tuned, "iou") - metric(result.zero_shot, "iou")
        lines.append(
            f"- {result.name}: fine-tuned beats zero-shot on the held-out test images (mean per-image IoU): "
            f"**{met[gain > 0]}** ({fmt(metric(result.zero_shot, 'iou'))} -> "
            f"{fmt(metric(result.tuned, 'iou'))}, gain {gain:+.4f})"
        )
    config = results[0].config
    shown = {k: v for k, v in config.items() if k not in ("data", "name", "out", "progress")}
    lines += [
        "",
        "The test splits are small ("
        + ", ".join(
            f"{r.name} {sum(not im.is_background for im in r.splits['test'].images)} defect images"
            for r in results
        )
        + "): one image's change moves the mean by its share, so read the gains together with the "
        "per-image counts above.",
        "",
        "## Run",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- fine-tuning overrides on `segmentation.train_config.DEFAULTS`: `{' '.join(overrides)}`",
        f"- resolved config (the same for every data set but `data`, `name`, `out`): `{shown}`",
        f"- embedding cache: `{args.cache_dir}`; converted data and run folders: `{args.work}`",
        f"- wall time of the whole script: {wall_seconds:.0f} s",
        machine_line(info),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--hazelnut",
        type=Path,
        default=DEFAULT_HAZELNUT,
        help=f"hazelnut_toy category folder (default {DEFAULT_HAZELNUT}); 'none' skips it",
    )
    parser.add_argument("--model", default="vit_t", help="registry name (default vit_t, MobileSAM)")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"embedding cache (default {DEFAULT_CACHE})"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=DEFAULT_WORK,
        help=f"converted data and run folders, replaced each run (default {DEFAULT_WORK})",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="more segmentation.train overrides, after BENCH_SETTINGS (e.g. lr=3e-5)",
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("need --threads >= 1")
    if str(args.hazelnut).lower() == "none":
        args.hazelnut = None
    elif not args.hazelnut.is_dir():
        parser.error(f"no hazelnut_toy category at {args.hazelnut} (pass --hazelnut PATH or none)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line(__file__, argv)
    began = time.perf_counter()
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    overrides = [*BENCH_SETTINGS, *args.set]
    datasets = prepare_datasets(args.work, args.hazelnut)
    results = [run_dataset(name, data, args=args, overrides=overrides) for name, data in datasets.items()]
    note_load_after(info)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "sam_quality.csv", results)
    report = markdown(
        results,
        command=command,
        args=args,
        overrides=overrides,
        info=info,
        wall_seconds=time.perf_counter() - began,
    )
    write_report(args.out / "sam_quality.md", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
