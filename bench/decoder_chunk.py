"""Boxes per SAM decoder call in the inspection cascade: time and peak memory of one photo's many boxes.

A weak detector or a low ``--conf`` gives a photo hundreds of boxes; ``Inspector.segment`` decodes
them ``segmentation.predict.DECODER_CHUNK`` boxes per call. SAM's mask decoder repeats the image
embedding once per prompt, so memory grows with the call's size, and on CPUs large calls are not
faster either. This script times ``Inspector.segment`` (zero-shot SAM, ``--model``) on one photo
of ``hazelnut_toy`` resized to ``--size`` px with ``--boxes`` seeded random boxes, for each decoder
runtime and each chunk size, each measurement in a fresh process (its peak RSS is its own), the
configurations taking turns over ``--repeats`` rounds (the machine's load hits all alike).

Reported per configuration: the mean seconds for the photo and the growth of the process's peak
RSS during ``segment`` (the model loaded and the embedding computed before it).

Usage::

    PYTHONPATH=. python bench/decoder_chunk.py --threads 2 --repeats 3 --out bench/results
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from report import (
    bench_parser,
    command_line,
    csv_file,
    machine_info,
    note_load_after,
    run_section,
    write_report,
)

PHOTO = Path("../shared/data/hazelnut_toy/test/colour/00.jpg")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(args) -> dict[str, float]:
    """One configuration in this process: seconds and peak-RSS growth of one ``segment`` call."""
    import cv2
    import numpy as np
    import torch

    import segmentation.predict
    from inspection.inspector import Inspector
    from segmentation.embeddings import embed_images
    from segmentation.models import load_sam

    torch.set_num_threads(args.threads)
    segmentation.predict.DECODER_CHUNK = {"cpu": args.chunk, "gpu": args.chunk}
    inspector = Inspector(None, load_sam(args.model), class_names=["defect"], runtime=args.runtime)
    rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(args.photo)), (args.size, args.size)), cv2.COLOR_BGR2RGB)
    embedding = embed_images(inspector.sam, [rgb], inspector.device)[0]
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, args.size * 0.8, (args.boxes, 2))
    boxes = np.hstack([corners, np.minimum(corners + rng.uniform(20, 200, (args.boxes, 2)), args.size)])
    inspector.segment(embedding, boxes[:2])  # warm-up: first-call allocations and (ONNX) the session
    before = peak_rss_mb()
    start = time.perf_counter()
    masks, _, _ = inspector.segment(embedding, boxes)
    seconds = time.perf_counter() - start
    assert masks.shape == (args.boxes, args.size, args.size)
    return {"seconds": seconds, "peak_growth_mb": peak_rss_mb() - before}


def run_one(args, runtime: str, chunk: int) -> dict[str, float]:
    """:func:`measure` in a fresh interpreter."""
    argv = [sys.executable, __file__, "--worker", "--runtime", runtime, "--chunk", str(chunk)]
    argv += ["--photo", str(args.photo), "--size", str(args.size), "--boxes", str(args.boxes)]
    argv += ["--model", args.model, "--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict], *, command: str, info: dict, args) -> str:
    lines = [
        "# SAM decoder: boxes per call (inspection cascade)",
        "",
        f"One photo ({args.photo.name} resized to {args.size} px), {args.boxes} seeded random boxes, "
        f"SAM `{args.model}` zero-shot, {args.repeats} rounds taking turns; mean over the rounds "
        "(every round in decoder_chunk.csv).",
        "",
        "| runtime | boxes per call | seconds for the photo | peak memory growth (MB) |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['runtime']} | {row['chunk']} | {row['seconds']:.1f} | {row['peak_growth_mb']:.0f} |"
        )
    return "\n".join([*lines, "", *run_section(command, info)])


def parse_args(argv: Sequence[str] | None = None):
    parser = bench_parser(__doc__)
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--size", type=int, default=1024, help="photo side in px")
    parser.add_argument("--boxes", type=int, default=200)
    parser.add_argument("--chunks", default="1,4,16,64", help="boxes per decoder call, comma-separated")
    parser.add_argument("--runtimes", default="torch,onnx")
    parser.add_argument("--model", default="vit_t")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runtime", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=4, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args)))
        return 0
    info = machine_info({"threads": str(args.threads)}, packages=("torch", "onnxruntime"))
    configs = [(r, int(c)) for r in args.runtimes.split(",") for c in args.chunks.split(",")]
    results: dict[tuple[str, int], list[dict]] = {config: [] for config in configs}
    for round_ in range(args.repeats):
        for runtime, chunk in configs:
            result = run_one(args, runtime, chunk)
            results[(runtime, chunk)].append(result)
            print(f"round {round_ + 1}: {runtime} {chunk}: {result}", file=sys.stderr, flush=True)
    note_load_after(info)
    rows = [
        {
            "runtime": runtime,
            "chunk": chunk,
            **{key: sum(r[key] for r in found) / len(found) for key in ("seconds", "peak_growth_mb")},
        }
        for (runtime, chunk), found in results.items()
    ]
    with csv_file(args.out / "decoder_chunk.csv") as writer:
        writer.writerow(["runtime", "chunk", "round", "seconds", "peak_growth_mb"])
        for (runtime, chunk), found in results.items():
            for index, r in enumerate(found):
                writer.writerow(
                    [runtime, chunk, index + 1, f"{r['seconds']:.3f}", f"{r['peak_growth_mb']:.1f}"]
                )
    write_report(
        args.out / "decoder_chunk.md",
        markdown(rows, command=command_line(__file__, argv), info=info, args=args),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
