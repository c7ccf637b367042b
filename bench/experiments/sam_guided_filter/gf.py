"""Throw-away guided filter (He, Sun, Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013).

Hand-written with cv2.boxFilter: the project depends on opencv-python-headless, whose
wheels lack cv2.ximgproc (opencv-contrib has it, but the two packages conflict).
"""

from __future__ import annotations

import cv2
import numpy as np


def box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_gray(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    mi, mp = box(guide, r), box(p, r)
    var = box(guide * guide, r) - mi * mi
    cov = box(guide * p, r) - mi * mp
    a = cov / (var + eps)
    b = mp - a * mi
    return box(a, r) * guide + box(b, r)


def guided_colour(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """``guide`` (H, W, 3) float64 in [0, 1], ``p`` (H, W) float64."""
    mi = box(guide, r)  # (H, W, 3)
    mp = box(p, r)
    cov_ip = box(guide * p[..., None], r) - mi * mp[..., None]  # (H, W, 3)
    sigma = np.empty(guide.shape[:2] + (3, 3))
    for i in range(3):
        for j in range(i, 3):
            v = box(guide[..., i] * guide[..., j], r) - mi[..., i] * mi[..., j]
            sigma[..., i, j] = v
            sigma[..., j, i] = v
    sigma += eps * np.eye(3)
    a = solve3(sigma, cov_ip)  # (H, W, 3)
    b = mp - (a * mi).sum(-1)
    return (box(a, r) * guide).sum(-1) + box(b, r)


def guided(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    return guided_colour(guide, p, r, eps) if guide.ndim == 3 else guided_gray(guide, p, r, eps)


def solve3(s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-pixel solve of symmetric 3x3 systems by cofactors (np.linalg.solve is ~10x slower)."""
    a, b, c = s[..., 0, 0], s[..., 0, 1], s[..., 0, 2]
    d, e, f = s[..., 1, 1], s[..., 1, 2], s[..., 2, 2]
    i00, i01, i02 = d * f - e * e, c * e - b * f, b * e - c * d
    i11, i12, i22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * i00 + b * i01 + c * i02
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return (
        np.stack([i00 * x + i01 * y + i02 * z, i01 * x + i11 * y + i12 * z, i02 * x + i12 * y + i22 * z], -1)
        / det[..., None]
    )
