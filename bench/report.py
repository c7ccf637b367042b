"""What every benchmark shares: its command line, the machine it ran on, and how results are written.

Timings are only comparable on one machine under the same load, so each
report states the CPU, how many cores the process may use, the load average
(before and after) and the library versions, and the exact command that made
it. Results are written atomically (``common.io.atomic_write``): a benchmark
killed half-way leaves the committed results as they were. Imported by the
scripts in this folder (``python bench/<script>.py`` puts ``bench/`` on
``sys.path``; the repository root must be on it too, as with
``PYTHONPATH=.``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from common.io import atomic_write, json_text
from common.metrics import mean_std

#: Where results go unless ``--out`` says otherwise (committed next to the scripts).
RESULTS = Path("bench/results")


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo``, else what ``platform`` says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def package_version(package: str) -> str:
    """Installed version of a distribution, ``?`` when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def load_average() -> str:
    """The 1-minute load average, ``?`` where the OS has none."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"


def machine_info(extra: Mapping[str, str] = {}, packages: Sequence[str] = ()) -> dict[str, str]:  # noqa: B006
    """CPU, cores, the script's ``extra`` entries (threads, load), interpreter, ``packages``' versions."""
    affinity = str(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "?"
    return {
        "cpu": cpu_name(),
        "cpu_count": str(os.cpu_count()),
        "affinity": affinity,
        **extra,
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{package: package_version(package) for package in packages},
    }


def machine_line(info: Mapping[str, str]) -> str:
    """The report's ``- machine: cpu ..., python ...`` line."""
    return "- machine: " + ", ".join(f"{key} {value}" for key, value in info.items())


def run_section(command: str, info: Mapping[str, str], *extra: str) -> list[str]:
    """The report's closing ``## Run`` lines: the command, ``extra`` lines, the date, the machine."""
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ["## Run", "", f"- command: `{command}`", *extra, f"- date: {date}", machine_line(info), ""]


def note_load_after(info: dict[str, str]) -> None:
    """Adds the 1-minute load average after the run: another busy process slows every method alike."""
    if hasattr(os, "getloadavg"):
        info["load_avg_1m_after"] = f"{os.getloadavg()[0]:.2f}"


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """How the run was started, for the report: ``python bench/<script>.py <args>``."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", f"bench/{Path(script).name}", *arguments])


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser described by the script's first docstring paragraph, with ``--out``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    return parser


@contextlib.contextmanager
def csv_file(path: Path) -> Iterator[csv.writer]:
    """``with csv_file(path) as writer: writer.writerow(...)``; the file appears whole at the end."""
    text = io.StringIO(newline="")
    yield csv.writer(text)
    atomic_write(path, text.getvalue())


def write_report(path: Path, markdown: str) -> None:
    """Writes the markdown report atomically and prints it."""
    atomic_write(path, markdown)
    print(markdown)


def write_results(
    out: Path,
    name: str,
    lines: Sequence[str],
    rows: object,
    *,
    command: str,
    info: Mapping[str, str],
    start: float,
) -> None:
    """``out/<name>.md`` (printed): ``lines`` and the ``## Run`` section with the wall time since ``start``
    (``time.perf_counter()``); ``out/<name>.json``: ``rows``."""
    minutes = (time.perf_counter() - start) / 60
    markdown = [*lines, "", *run_section(command, info, f"- total wall time: {minutes:.1f} min")]
    out.mkdir(parents=True, exist_ok=True)
    write_report(out / f"{name}.md", "\n".join(markdown))
    atomic_write(out / f"{name}.json", json_text(rows, indent=1) + "\n")


def mean_std_text(values: Sequence[float]) -> str:
    """``0.512 +- 0.034`` over splits or seeds (sample std, NaNs left out), one value alone, or ``n/a``."""
    mean, std = mean_std(values)
    if mean != mean:
        return "n/a"
    return f"{mean:.3f}" if sum(v == v for v in values) == 1 else f"{mean:.3f} +- {std:.3f}"
