"""The cascade end to end on real photos: each detector of detect_bench x zero-shot / fine-tuned SAM.

    PYTHONPATH=. python bench/detect_bench.py --datasets hazelnut_toy --splits 3 \\
        --models yolo11n yoloe11n yolo11n_world --epochs 60 --imgsz 256 --work W --out bench/results
    PYTHONPATH=. python bench/inspect_quality.py --detect-work W --out bench/results

What a user of ``inspection.evaluate`` gets on ``hazelnut_toy``, per seeded split of
``detect_bench`` (its converted data folders and trained detectors are reused from its
``--work``, so the two reports score the same models on the same test images): MobileSAM's
decoder is fine-tuned on the split's train images with the shipped config
(``python -m segmentation.train``), then every detector runs the cascade on the test split
with zero-shot and with fine-tuned SAM (``python -m inspection.evaluate --conf-from val``: the
threshold picked on the val split), and once more at the fixed ``--fixed-conf`` with the
fine-tuned SAM. Every step is the user's command line in a subprocess; the figures are read
from each evaluation's ``metrics.json``. The report gives mean +- std over the splits: defect-type
accuracy, image AUROC, box AP50, mask AP end to end against SAM from the ground-truth boxes
(the oracle), per-image IoU of defect and good images, pixel AUROC and AUPRO.

``--colour-head``: the decoders are fine-tuned with ``colour_head=true`` and the fine-tuned rows
run with ``--no-colour-head``, beside one more row per detector with the head (conf picked on val):
the same decoder with and without it.

``--colour-prompt``: the decoders are fine-tuned with ``colour_head=true colour_prompt=true`` (the
recipe of ``configs/segmentation/sam_colour.yaml``), and each runs three ways: ``fine-tuned`` with
``--no-colour-head --no-colour-prompt``, ``+ colour head`` with ``--no-colour-prompt``, and ``+ colour
head + prompt`` as it is (conf picked on val).

``--tta``: one more row per detector and SAM with test-time flips (``inspection.evaluate
--tta``, conf picked on val): the same detector boxes, SAM's logits averaged over the photo and
its three flips, the oracle's too.

``--anomaly``: PatchCore is fit on each split's good train photos (``python -m anomaly.train --data``,
the shipped config) and evaluated on its val split (``python -m anomaly.evaluate --split val``, whose
pixel F1-max threshold becomes the run's default), and two more rows per detector run the cascade
with the fine-tuned SAM and ``--anomaly-run`` (the run's regions as more boxes): at ``--fixed-conf``
and with conf picked on val.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from report import (
    bench_parser,
    command_line,
    csv_file,
    load_average,
    machine_info,
    mean_std_text,
    note_load_after,
    run_section,
    write_report,
)

from common.io import json_float, read_coco_instances
from common.tables import markdown_table
from segmentation.finetuned import load_colour_head, load_colour_prompt

MODELS = ("yolo11n", "yoloe11n", "yolo11n_world")
SAM_CONFIG = Path("configs/segmentation/sam_decoder.yaml")
#: (column, path into metrics.json) of the report's figures.
FIGURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("accuracy", ("image_level", "accuracy")),
    ("image AUROC", ("image_level", "auroc")),
    ("box AP50", ("box", "AP50")),
    ("mask AP", ("mask", "box", "AP")),
    ("mask AP any class", ("mask_any_class", "box", "AP")),
    ("oracle mask AP", ("mask_oracle", "AP")),
    ("IoU defect images", ("per_image", "defect", "iou")),
    ("oracle IoU defect images", ("per_image", "defect", "oracle_iou")),
    ("boundary IoU defect images", ("per_image", "defect", "boundary_iou")),
    ("oracle boundary IoU defect images", ("per_image", "defect", "oracle_boundary_iou")),
    ("IoU good images", ("per_image", "good", "iou")),
    ("pixel AUROC", ("pixel", "auroc")),
    ("AUPRO", ("pixel", "aupro")),
    ("conf", ("image_level", "conf")),
)


def run(command: list[str]) -> None:
    """Runs one user command; its output goes to stderr; a failure stops the benchmark."""
    print("$ " + shlex.join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, stdout=sys.stderr)


def fine_tune(data: Path, out: Path, name: str, *overrides: str) -> Path:
    """``segmentation.train`` with the shipped config (and ``overrides``) on ``data``; its ``decoder.pt``."""
    run([sys.executable, "-m", "segmentation.train", "--config", str(SAM_CONFIG), f"data={data}",
         f"out={out}", f"name={name}", "exist_ok=true", "progress=false", *overrides])  # fmt: skip
    return out / name / "decoder.pt"


def evaluate(
    detector: Path,
    data: Path,
    out: Path,
    *,
    sam: Path | None,
    conf: float | None,
    imgsz: int,
    colour_head: bool = True,
    colour_prompt: bool = True,
    tta: bool = False,
    anomaly_run: Path | None = None,
) -> dict:
    """``inspection.evaluate`` on the test split; ``conf`` None: picked on val. Returns metrics.json.

    ``colour_head`` False: the decoder's head, if it carries one, left out (``--no-colour-head``, which
    is refused for zero-shot SAM and for a decoder without a head); ``colour_prompt`` False: its colour
    prompt likewise (``--no-colour-prompt``); ``tta``: ``--tta``; ``anomaly_run``: ``--anomaly-run``.
    """
    command = [sys.executable, "-m", "inspection.evaluate", "--detector", str(detector),
               "--imgsz", str(imgsz), "--data", str(data), "--split", "test", "--out", str(out),
               "--overwrite", "--no-progress", "--gallery", "0"]  # fmt: skip
    command += ["--sam", str(sam)] if sam is not None else []
    command += ["--conf-from", "val"] if conf is None else ["--conf", str(conf)]
    if not colour_head and sam is not None and load_colour_head(sam) is not None:
        command += ["--no-colour-head"]
    if not colour_prompt and sam is not None and load_colour_prompt(sam) is not None:
        command += ["--no-colour-prompt"]
    command += ["--tta"] if tta else []
    command += ["--anomaly-run", str(anomaly_run)] if anomaly_run is not None else []
    run(command)
    return json.loads((out / "metrics.json").read_text())


def fit_anomaly(root: Path, data: Path, out: Path) -> Path:
    """PatchCore fit on ``data``'s good train photos, evaluated on its val split; the run folder."""
    run([sys.executable, "-m", "anomaly.train", "--root", str(root), "--data", str(data), "--out", str(out),
         "--overwrite", "--no-progress"])  # fmt: skip
    run([sys.executable, "-m", "anomaly.evaluate", "--run", str(out), "--data", str(data), "--split", "val",
         "--overwrite", "--no-progress"])  # fmt: skip
    return out


class Case(NamedTuple):
    """One cascade run of a detector: which SAM (row name, decoder or None), conf (None: from val), and
    what of the decoder it uses."""

    sam_name: str
    sam: Path | None
    conf: float | None
    head: bool = False
    prompt: bool = False
    tta: bool = False
    regions: Path | None = None


def cases_of(args, decoder: Path, anomaly_run: Path | None) -> list[Case]:
    """The runs of one detector on one split that the options ask for."""
    cases = [
        Case("zero-shot", None, None),
        Case("fine-tuned", decoder, None),
        Case("fine-tuned", decoder, args.fixed_conf),
    ]
    if args.colour_head or args.colour_prompt:
        cases.append(Case("fine-tuned + colour head", decoder, None, head=True))
    if args.colour_prompt:
        cases.append(Case("fine-tuned + colour head + prompt", decoder, None, head=True, prompt=True))
    if args.tta:
        cases += [
            Case("zero-shot + flips", None, None, tta=True),
            Case("fine-tuned + flips", decoder, None, tta=True),
        ]
    if anomaly_run is not None:
        cases += [
            Case("fine-tuned + anomaly regions", decoder, None, regions=anomaly_run),
            Case("fine-tuned + anomaly regions", decoder, args.fixed_conf, regions=anomaly_run),
        ]
    return cases


def figure(metrics: dict, path: tuple[str, ...]) -> float:
    """The figure at ``path`` in a ``metrics.json``; an undefined one (``null``) as NaN."""
    value = metrics
    for key in path:
        value = value[key]
    return json_float(value)


def summary_rows(results: list[dict]) -> list[list[str]]:
    """One row per (detector, SAM, conf): each figure's mean +- std over the splits."""
    rows = []
    for key in dict.fromkeys((r["model"], r["sam"], r["conf_mode"]) for r in results):
        group = [r for r in results if (r["model"], r["sam"], r["conf_mode"]) == key]
        cells = []
        for name, _ in FIGURES:
            cells.append(mean_std_text([float(r["figures"][name]) for r in group]))
        rows.append([*key, str(len(group)), *cells])
    return rows


def markdown(results: list[dict], args, command: str, info: dict, seconds: float, images: str) -> str:
    header = ["detector", "SAM", "conf", "splits", *(name for name, _ in FIGURES)]
    lines = [
        f"# The cascade end to end on {args.dataset} (detect_bench's detectors, {args.splits} splits)",
        "",
        f"Test split of each of `detect_bench`'s seeded splits ({images}); detectors trained by "
        f"`detect_bench` ({args.imgsz} px) in `{args.detect_work}`; SAM: MobileSAM zero-shot, or its "
        f"decoder fine-tuned on the split's train images with `{SAM_CONFIG}`. conf `val`: "
        "`inspection.evaluate --conf-from val`; a number: that fixed `--conf`. Mean +- std over the splits "
        "(sample std). Mask AP: COCO AP@[.5:.95] of the cascade's masks ranked by box score, at the "
        "operating threshold; oracle: SAM prompted with the ground-truth boxes. Per-image IoU of good "
        "images: 1 when left clean."
        + (
            " Decoders fine-tuned with `colour_head=true`: the `fine-tuned` rows ran with "
            "`--no-colour-head`, the `fine-tuned + colour head` rows with the head (the same decoder)."
            if args.colour_head and not args.colour_prompt
            else ""
        )
        + (
            " Decoders fine-tuned with `colour_head=true colour_prompt=true`: the `fine-tuned` rows ran with "
            "`--no-colour-head --no-colour-prompt`, the `+ colour head` rows with `--no-colour-prompt`, the "
            "`+ colour head + prompt` rows with both (the same decoder)."
            if args.colour_prompt
            else ""
        )
        + (
            " `+ flips` rows: `inspection.evaluate --tta` (SAM's logits averaged over the photo and its "
            "three flips, the oracle's too), the same detector and threshold pick."
            if args.tta
            else ""
        )
        + (
            " `+ anomaly regions` rows: `inspection.evaluate --anomaly-run` with a PatchCore run fit on the "
            "split's good train photos (`anomaly.train --data`), its threshold the pixel F1-max on the val "
            "split (`anomaly.evaluate --split val`); box and mask AP score the detector's classes only."
            if args.anomaly
            else ""
        ),
        "",
        markdown_table(header, summary_rows(results)),
        "",
        *run_section(command, info, f"- total wall time: {seconds / 60:.1f} min"),
    ]
    return "\n".join(lines)


def split_images(data: Path) -> tuple[int, int]:
    coco = read_coco_instances(data / "annotations" / "instances_test.json")  # a BOM first, as Windows writes
    defect = {a["image_id"] for a in coco["annotations"]}
    return len(coco["images"]), len(defect)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--detect-work", type=Path, required=True, help="detect_bench's --work folder")
    parser.add_argument("--dataset", default="hazelnut_toy", help="data set name in detect_bench's folder")
    parser.add_argument("--splits", type=int, default=3, help="split seeds 0..K-1")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--imgsz", type=int, default=256, help="the detectors' training size")
    parser.add_argument(
        "--fixed-conf", type=float, default=0.25, help="also scored at this conf (fine-tuned SAM)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/mvtec-finetune-bench/inspect_quality"))
    parser.add_argument("--name", default="inspect_quality_hazelnut", help="results file stem")
    parser.add_argument(
        "--colour-head", action="store_true", help="fine-tune with colour_head=true; rows with and without it"
    )
    parser.add_argument(
        "--colour-prompt",
        action="store_true",
        help="fine-tune with colour_head=true colour_prompt=true; rows without either, with the head, both",
    )
    parser.add_argument("--tta", action="store_true", help="also rows with test-time flips (conf from val)")
    parser.add_argument(
        "--anomaly", action="store_true", help="also rows with a PatchCore run's regions (--anomaly-run)"
    )
    parser.add_argument(
        "--anomaly-root",
        type=Path,
        default=Path("../shared/data/hazelnut_toy"),
        help="the data set's MVTec category folder, for anomaly.train (default ../shared/data/hazelnut_toy)",
    )
    args = parser.parse_args(argv)
    command = command_line(__file__, argv)
    info = machine_info({"load_avg_1m_before": load_average()})
    start = time.perf_counter()
    results, counts = [], []
    for split in range(args.splits):
        data = args.detect_work / f"{args.dataset}_s{split}"
        if not (data / "annotations" / "instances_test.json").is_file():
            parser.error(
                f"no converted split at {data}: run bench/detect_bench.py --work {args.detect_work} first"
            )
        counts.append(split_images(data))
        overrides = ["colour_head=true"] if args.colour_head or args.colour_prompt else []
        overrides += ["colour_prompt=true"] if args.colour_prompt else []
        decoder = fine_tune(data, args.work / "sam", f"s{split}", *overrides)
        anomaly_run = (
            fit_anomaly(args.anomaly_root, data, args.work / "anomaly" / f"s{split}")
            if args.anomaly
            else None
        )
        for model in args.models:
            detector = args.detect_work / "runs" / f"{args.dataset}_s{split}_{model}" / "weights" / "best.pt"
            if not detector.is_file():
                parser.error(f"no detector at {detector}: run bench/detect_bench.py --models {model} first")
            for case in cases_of(args, decoder, anomaly_run):
                sam_name, sam, conf = case.sam_name, case.sam, case.conf
                mode = "val" if conf is None else f"{conf:g}"
                out = args.work / "eval" / f"s{split}_{model}_{sam_name.replace(' ', '')}_{mode}"
                metrics = evaluate(
                    detector, data, out, sam=sam, conf=conf, imgsz=args.imgsz, colour_head=case.head,
                    colour_prompt=case.prompt, tta=case.tta, anomaly_run=case.regions,
                )  # fmt: skip
                figures = {name: figure(metrics, path) for name, path in FIGURES}
                results.append(
                    {"split": split, "model": model, "sam": sam_name, "conf_mode": mode, "figures": figures}
                )
    note_load_after(info)
    images = ", ".join(f"{n} images ({d} with defects)" for n, d in counts)
    report = markdown(results, args, command, info, time.perf_counter() - start, images)
    args.out.mkdir(parents=True, exist_ok=True)
    with csv_file(args.out / f"{args.name}.csv") as writer:
        writer.writerow(["split", "detector", "sam", "conf_mode", *(name for name, _ in FIGURES)])
        for r in results:
            writer.writerow(
                [
                    r["split"],
                    r["model"],
                    r["sam"],
                    r["conf_mode"],
                    *(f"{v:.4f}" for v in r["figures"].values()),
                ]
            )
    write_report(args.out / f"{args.name}.md", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
