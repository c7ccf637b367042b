"""The markers a run keeps in its folder while it runs: a fine-tuning's (``.training.*.tmp``,
:mod:`segmentation.run_folder`) and a K-fold run's (``.folds.*.tmp``, :mod:`segmentation.folds`).

A marker is named by :func:`common.io.temporary_path` (``.<name>.<host>-<pid>-<random>.tmp``): another run
that finds one of a live process refuses the folder, and one of an ended run is removed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from common.io import is_stale, remove_stale, writer_pid, written_here


def names_this_process(marker: Path) -> bool:
    """Whether ``marker`` was named by this process: of this machine, with this process's id."""
    return written_here(marker) and writer_pid(marker) == os.getpid()


def live_marker(folder: Path, pattern: str, *, own: Path | None = None) -> Path | None:
    """The first marker (by name) in ``folder`` matching the glob ``pattern`` of another run still alive.

    When there is none, the markers of ended runs are removed (:func:`common.io.remove_stale`): a process
    of this machine that is gone, or a marker of another machine untouched for a day. ``own`` is this
    run's marker, the only one skipped: a process runs one such run in a folder at a time and removes its
    marker when that ends, so another marker of this machine naming this process is a killed run's whose
    process id this one was given since (removed, even when a live one is found); one of another machine
    naming the same id is judged as any other machine's.
    """
    for marker in sorted(folder.glob(pattern)):
        if marker == own:
            continue
        if names_this_process(marker):  # a killed run's (above)
            with contextlib.suppress(OSError):  # as remove_stale leaves one it cannot remove
                marker.unlink(missing_ok=True)
        elif not is_stale(marker):
            return marker
    remove_stale(folder, pattern)
    return None
