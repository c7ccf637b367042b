"""The cost of the cascade's mask NMS (``segmentation.duplicates.distinct_masks``) per photo.

The inspection cascade drops duplicate masks after SAM (``--mask-iou``); this times
``distinct_masks`` on ``N`` seeded masks of a ``S x S`` photo (rectangles of 120 x 150 px at random
places, one class, so every pair is compared), median of ``--repeats`` runs; the report records
``OMP_NUM_THREADS``. For scale: SAM's decoder took 0.04-0.06 s per box for 200 boxes on a 1024-px
photo on this machine (``bench/results/decoder_chunk.md``: 8.0 s with ONNX Runtime, 12.7 s with torch).

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/mask_nms_speed.py --out bench/results
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence

import numpy as np
from report import bench_parser, command_line, machine_info, note_load_after, run_section, write_report

from segmentation.duplicates import distinct_masks

CASES = ((10, 1024), (100, 1024), (300, 1024), (10, 2448), (50, 2448))


def masks_of(count: int, side: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, side, side), bool)
    for mask in masks:
        x, y = rng.integers(0, side - 200, 2)
        mask[y : y + 150, x : x + 120] = True
    return masks


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    threads = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset")}
    info = machine_info(threads, ("numpy", "pycocotools"))
    rows = []
    for count, side in CASES:
        masks = masks_of(count, side)
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            distinct_masks(masks, np.zeros(count, int), 0.7)
            seconds.append(time.perf_counter() - start)
        rows.append(f"| {count} | {side} x {side} | {statistics.median(seconds) * 1000:.1f} |")
    note_load_after(info)
    lines = [
        "# Mask NMS cost per photo",
        "",
        "`segmentation.duplicates.distinct_masks` on seeded masks, median of "
        f"{args.repeats} runs (milliseconds).",
        "",
        "| masks | photo | ms |",
        "|---:|---|---:|",
        *rows,
        "",
        *run_section(command_line(__file__, argv), info),
    ]
    write_report(args.out / "mask_nms_speed.md", "\n".join(lines))


if __name__ == "__main__":
    main()
