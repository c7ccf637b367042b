"""Time of a split's pixel metrics, the wait after the per-photo bar of the evaluations.

``inspection.evaluate`` computes pixel AUROC and AUPRO over every scored photo at its own size once the
split is done (``anomaly.evaluate`` adds pixel F1-max, on its model grid). This times them on
``--photos`` synthetic maps of ``--size`` (default 100 photos of 1024 x 1024, the maps and masks of
:mod:`pixel_metrics_memory`), taking turns ``--repeats`` times: the two metrics called one after the
other as the evaluations did before they had a progress bar, and :func:`common.metrics.pixel_figures`
(their call now) with its bar off and on, so the bar's cost shows beside the metrics'.

    PYTHONPATH=. python bench/pixel_metrics_time.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pixel_metrics_memory import scorer_arrays  # noqa: E402
from report import bench_parser, command_line, machine_info, note_load_after, write_results  # noqa: E402

from common import metrics  # noqa: E402


def methods(maps: list, masks: list) -> dict[str, Callable[[], object]]:
    """What is timed, by the name the report gives it."""
    return {
        "pixel_auroc, then aupro (no bar)": lambda: (
            metrics.pixel_auroc(maps, masks),
            metrics.aupro(maps, masks),
        ),
        "pixel_figures, progress off": lambda: metrics.pixel_figures(maps, masks),
        "pixel_figures, progress on": lambda: metrics.pixel_figures(maps, masks, progress=True),
    }


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--size", type=int, nargs=2, default=[1024, 1024], metavar=("W", "H"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    width, height = args.size
    info = machine_info({}, ["numpy", "tqdm"])
    start = time.perf_counter()
    maps, masks = scorer_arrays(args.photos, height, width)
    timed = methods(maps, masks)
    seconds: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(args.repeats):  # taking turns: a busy spell on the machine slows every method alike
        for name, run in timed.items():
            began = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - began)
            print(f"{name}: {seconds[name][-1]:.2f} s", file=sys.stderr, flush=True)
    note_load_after(info)
    rows = [{"method": name, "seconds": [round(s, 2) for s in runs]} for name, runs in seconds.items()]
    pixels = args.photos * width * height
    lines = [
        "# Pixel metrics' time on large photos (`inspection.evaluate`, `anomaly.evaluate`)",
        "",
        f"{args.photos} photos of {width} x {height} ({pixels / 1e6:.0f} M pixels): float16 maps and bool "
        f"masks as `inspection.evaluate`'s scorer keeps them; each method {args.repeats} times, taking "
        "turns, one thread. `pixel_figures` is the evaluations' call: pixel AUROC, then AUPRO, with a "
        "progress bar on stderr over them when on.",
        "",
        "| method | median s | runs (s) |",
        "|---|---:|---|",
        *(
            f"| {r['method']} | {statistics.median(r['seconds']):.2f} | "
            f"{', '.join(f'{s:.2f}' for s in r['seconds'])} |"
            for r in rows
        ),
    ]
    command = command_line(__file__, argv)
    write_results(args.out, "pixel_metrics_time", lines, rows, command=command, info=info, start=start)


if __name__ == "__main__":
    main()
