"""Time of a split's pixel metrics, the wait after the per-photo bar of the evaluations.

``inspection.evaluate`` computes pixel AUROC and AUPRO over every scored photo at its own size once the
split is done (``anomaly.evaluate`` adds pixel F1-max, on its model grid). This times them on
``--photos`` synthetic maps of ``--size`` (default 100 photos of 1024 x 1024, the maps and masks of
:mod:`pixel_metrics_memory`), taking turns ``--repeats`` times: the metrics called one by one (each
gathers and sorts the pixels again) and :func:`common.metrics.pixel_figures` (the evaluations' call:
one gathering and sort for all of them) with its bar off and on, so the bar's cost shows beside the
metrics', and with F1-max. ``--baseline`` times an older copy of ``common/metrics.py`` in the same
process, taking the same turns, and checks that its figures are the same, bit for bit:

    PYTHONPATH=. python bench/pixel_metrics_time.py
    git show HEAD:common/metrics.py > /tmp/old_metrics.py
    PYTHONPATH=. python bench/pixel_metrics_time.py --baseline /tmp/old_metrics.py
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pixel_metrics_memory import plain_arrays  # noqa: E402
from report import bench_parser, command_line, machine_info, note_load_after, write_results  # noqa: E402

from common import metrics  # noqa: E402


def load_baseline(path: Path) -> ModuleType:
    """A saved copy of ``common/metrics.py`` as a module of its own (``baseline_metrics``)."""
    spec = importlib.util.spec_from_file_location("baseline_metrics", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--baseline: {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while they are made
    spec.loader.exec_module(module)
    return module


def methods(maps: list, masks: list, baseline: ModuleType | None) -> dict[str, Callable[[], object]]:
    """What is timed, by the name the report gives it."""
    timed: dict[str, Callable[[], object]] = {
        "pixel_auroc, then aupro (one by one)": lambda: (
            metrics.pixel_auroc(maps, masks),
            metrics.aupro(maps, masks),
        ),
        "pixel_figures, progress off": lambda: metrics.pixel_figures(maps, masks),
        "pixel_figures, progress on": lambda: metrics.pixel_figures(maps, masks, progress=True),
        "pixel_figures with F1-max, progress off": lambda: metrics.pixel_figures(maps, masks, f1=True),
    }
    if baseline is not None:
        timed["baseline pixel_figures, progress off"] = lambda: baseline.pixel_figures(maps, masks)
        timed["baseline pixel_figures with F1-max, progress off"] = lambda: baseline.pixel_figures(
            maps, masks, f1=True
        )
    return timed


def ratio_lines(medians: dict[str, float]) -> list[str]:
    """The baseline's median time over this code's, with and without F1-max (none without a baseline)."""
    lines = []
    for call in ("pixel_figures", "pixel_figures with F1-max"):
        baseline = medians.get(f"baseline {call}, progress off")
        if baseline is not None:
            now = medians[f"{call}, progress off"]
            lines.append(
                f"- {call}: baseline {baseline:.2f} s / now {now:.2f} s = {baseline / now:.2f} x faster"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--size", type=int, nargs=2, default=[1024, 1024], metavar=("W", "H"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="an older common/metrics.py to time beside this one")
    parser.add_argument("--note", default="", help="a sentence on the conditions (what else was running)")
    args = parser.parse_args(argv)
    width, height = args.size
    baseline = load_baseline(args.baseline) if args.baseline else None
    info = machine_info({}, ["numpy", "tqdm"])
    start = time.perf_counter()
    maps, masks = plain_arrays(args.photos, height, width)
    timed = methods(maps, masks, baseline)
    seconds: dict[str, list[float]] = {name: [] for name in timed}
    results: dict[str, object] = {}
    for _ in range(args.repeats):  # taking turns: a busy spell on the machine slows every method alike
        for name, run in timed.items():
            began = time.perf_counter()
            results[name] = run()
            seconds[name].append(time.perf_counter() - began)
            print(f"{name}: {seconds[name][-1]:.2f} s", file=sys.stderr, flush=True)
    note_load_after(info)
    rows = [{"method": name, "seconds": [round(s, 2) for s in runs]} for name, runs in seconds.items()]
    medians = {name: statistics.median(runs) for name, runs in seconds.items()}
    pixels = args.photos * width * height
    lines = [
        "# Pixel metrics' time on large photos (`inspection.evaluate`, `anomaly.evaluate`)",
        "",
        f"{args.photos} photos of {width} x {height} ({pixels / 1e6:.0f} M pixels): float16 maps and bool "
        f"masks as `inspection.evaluate`'s scorer keeps them; each method {args.repeats} times, taking "
        "turns, one thread, in one process. `pixel_figures` is the evaluations' call: the pixels gathered "
        "and sorted once, then pixel AUROC and AUPRO (`inspection.evaluate`), and pixel F1-max "
        "(`anomaly.evaluate`), with a progress bar on stderr over the steps when on. The machine is "
        "shared: other processes (tests run beside) may have run meanwhile; `load_avg_1m_after` below.",
        *([f"Conditions: {args.note}"] if args.note else []),
        "",
        "| method | median s | runs (s) |",
        "|---|---:|---|",
        *(
            f"| {r['method']} | {medians[r['method']]:.2f} | {', '.join(f'{s:.2f}' for s in r['seconds'])} |"
            for r in rows
        ),
    ]
    if baseline is not None:
        same = all(
            results[f"baseline {call}, progress off"] == results[f"{call}, progress off"]
            for call in ("pixel_figures", "pixel_figures with F1-max")
        )
        lines += [
            "",
            f"Baseline: `{args.baseline.name}`, an older `common/metrics.py` (see the command); its figures "
            f"and this code's are {'the same, bit for bit' if same else 'NOT the same'}.",
            "",
            *ratio_lines(medians),
        ]
    command = command_line(__file__, argv)
    write_results(args.out, "pixel_metrics_time", lines, rows, command=command, info=info, start=start)


if __name__ == "__main__":
    main()
