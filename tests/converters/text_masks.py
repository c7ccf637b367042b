"""Masks drawn as text in the converter tests."""

from __future__ import annotations

import numpy as np


def m(rows: list[str]) -> np.ndarray:
    """A mask from strings: '#' is defect (255), '.' background."""
    return np.array([[255 if c == "#" else 0 for c in row] for row in rows], np.uint8)
