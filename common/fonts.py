"""A local font for ultralytics, so nothing it does reaches for the network.

ultralytics draws labels with Arial and downloads ``Arial.ttf`` into its
config folder the first time (``ultralytics.utils.checks.check_font``, also
called by ``check_det_dataset``). Offline that download stalls for seconds
per call and fails. DejaVu Sans, which matplotlib (an ultralytics dependency)
ships, is put there under the names ultralytics looks for; it is never
placed over an existing file. :func:`dejavu_sans` is also the font of :mod:`common.text`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from common.folders import path_exists
from common.io import atomic_write

FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def dejavu_sans(bold: bool = False) -> Path:
    """The path of matplotlib's DejaVu Sans (``DejaVuSans-Bold.ttf`` with ``bold``); it may be missing."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / f"DejaVuSans{'-Bold' if bold else ''}.ttf"


def ensure_ultralytics_fonts() -> list[Path]:
    """Places DejaVu Sans as ultralytics' fonts where missing; returns the paths placed."""
    from ultralytics.utils import USER_CONFIG_DIR

    source = dejavu_sans()
    placed = []
    for name in FONT_NAMES:
        target = Path(USER_CONFIG_DIR) / name
        # path_exists: a config folder that cannot be searched is named with the font (as on Python 3.11), not
        # with a temporary the write made of a font 3.13's Path.exists took for missing
        if path_exists(target) or not source.is_file():
            continue
        with open(source, "rb") as font:  # atomic: a concurrent reader never sees half a font
            atomic_write(target, lambda out, font=font: shutil.copyfileobj(font, out))
        placed.append(target)
    return placed
