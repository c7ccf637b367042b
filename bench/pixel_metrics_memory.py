"""Memory of the cascade's pixel metrics on large photos: bytes per photo pixel, held and at the peak.

``inspection.evaluate`` keeps each scored photo's anomaly map (float16; one value for a photo without
boxes) and true defect pixels (as bits) at the photo's own size until the split is done, then computes
pixel AUROC and AUPRO over all of them (``common.metrics``). This measures what that costs on
``--photos`` synthetic maps of ``--size`` (default 20 photos of 2448 x 2048, 5 MP: smooth random maps,
two defect regions each), each phase in a fresh subprocess, as peak resident memory above the same
process with nothing built:

- ``held``: the maps and masks as the scorer keeps them;
- ``pixel_auroc`` / ``aupro``: the same, then that metric computed;
- ``pixel_figures``: the same, then both from one gathering and sort (``inspection.evaluate``'s call).

    PYTHONPATH=. python bench/pixel_metrics_memory.py
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import bench_parser, command_line, machine_info, write_results  # noqa: E402

from common import metrics  # noqa: E402
from inspection.scoring import PackedMasks, held_map  # noqa: E402

PHASES = ("nothing", "held", "pixel_auroc", "aupro", "pixel_figures")


def synthetic_photos(photos: int, height: int, width: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``photos`` pairs of a float16 ``(H, W)`` smooth random map and its bool mask (two defect regions),
    one at a time, seeded."""
    rng = np.random.default_rng(0)
    for _ in range(photos):
        coarse = cv2.GaussianBlur(rng.random((height // 8, width // 8), dtype=np.float32), (5, 5), 0)
        mask = np.zeros((height, width), bool)
        mask[height // 4 : height // 4 + 200, width // 4 : width // 4 + 300] = True
        mask[height // 2 : height // 2 + 30, 100 : width - 100] = True
        yield cv2.resize(coarse, (width, height)).astype(np.float16), mask


def plain_arrays(photos: int, height: int, width: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """:func:`synthetic_photos` as lists of arrays (``pixel_metrics_time.py`` times the metrics on them)."""
    maps, masks = [], []
    for anomaly_map, mask in synthetic_photos(photos, height, width):
        maps.append(anomaly_map)
        masks.append(mask)
    return maps, masks


def scorer_arrays(photos: int, height: int, width: int) -> tuple[list[np.ndarray], PackedMasks]:
    """:func:`synthetic_photos` as :class:`inspection.scoring.SplitScorer` holds them, through its own
    :func:`~inspection.scoring.held_map` (float16; none all 0 here: every photo has boxes) and
    :class:`~inspection.scoring.PackedMasks` (bits)."""
    maps, masks = [], PackedMasks()
    for anomaly_map, mask in synthetic_photos(photos, height, width):
        maps.append(held_map(anomaly_map))
        masks.append(mask)
    return maps, masks


def phase(name: str, photos: int, height: int, width: int) -> None:
    """Runs one phase and prints its peak resident memory in KiB (the child side)."""
    if name != "nothing":
        maps, masks = scorer_arrays(photos, height, width)
        if name != "held":
            getattr(metrics, name)(maps, masks)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_kib(name: str, photos: int, height: int, width: int) -> int:
    command = [sys.executable, __file__, "--phase", name, "--photos", str(photos)]
    command += ["--size", str(width), str(height)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(done.stdout.split()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--size", type=int, nargs=2, default=[2448, 2048], metavar=("W", "H"))
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    width, height = args.size
    if args.phase:
        phase(args.phase, args.photos, height, width)
        return
    start = time.perf_counter()
    pixels = args.photos * width * height
    base = peak_kib("nothing", args.photos, height, width)
    rows = []
    for name in PHASES[1:]:
        extra = peak_kib(name, args.photos, height, width) - base
        rows.append({"phase": name, "peak_mb": extra / 1024, "bytes_per_pixel": extra * 1024 / pixels})
        print(rows[-1], flush=True)
    info = machine_info({}, ["numpy"])
    lines = [
        "# Pixel metrics' memory on large photos (`inspection.evaluate`)",
        "",
        f"{args.photos} photos of {width} x {height} ({pixels / 1e6:.0f} M pixels): float16 maps and the "
        "masks as bits, as the scorer keeps them (every photo with boxes: no all-0 map), then each metric, "
        "each phase in a fresh process. Peak resident memory above an empty process.",
        "",
        "| phase | peak MB | bytes per photo pixel |",
        "|---|---:|---:|",
        *(f"| {r['phase']} | {r['peak_mb']:.0f} | {r['bytes_per_pixel']:.1f} |" for r in rows),
    ]
    command = command_line(__file__, argv)
    write_results(args.out, "pixel_metrics_memory", lines, rows, command=command, info=info, start=start)


if __name__ == "__main__":
    main()
