"""What every benchmark report records about the machine it ran on.

Timings are only comparable on one machine under the same load, so each
report states the CPU, how many cores the process may use, the load average
and the library versions. Imported by the scripts in this folder
(``python bench/<script>.py`` puts ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path


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
