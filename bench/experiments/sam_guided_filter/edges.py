"""Throw-away (issue 12): do the annotators' outlines follow image edges? Do SAM's?

    cd . && OMP_NUM_THREADS=1 .venv/bin/python bench/experiments/sam_guided_filter/edges.py

Every defect image once (the test dumps of the rounds). Per data set and model (plain
read-out): IoU of the mask as predicted, grown and shrunk by 1 px; and the mean colour-gradient
magnitude (Sobel on the Gaussian-smoothed photo, sigma 1, in [0, 1] units per px) on the
ground-truth boundary, on the predicted boundary, and on every pixel within 6 px of either
(the local background level). An edge-snapping refinement can only win where the ground-truth
boundary sits on stronger edges than the predicted one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

DUMPS = Path("/tmp/i12refine/dumps")


def boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (m > 0) & ~(cv2.erode(m, np.ones((3, 3), np.uint8)) > 0)


def morph(mask: np.ndarray, grow: bool) -> np.ndarray:
    op = cv2.dilate if grow else cv2.erode
    return op(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))) > 0


def gradient(rgb: np.ndarray) -> np.ndarray:
    img = cv2.GaussianBlur(rgb.astype(np.float32) / 255.0, (0, 0), 1.0)
    gx, gy = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3) / 8, cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3) / 8
    return np.sqrt((gx**2 + gy**2).sum(-1))


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def main() -> None:
    for data in ("hazelnut_toy", "synthetic_nut"):
        rows = {m: [] for m in ("zs", "ft")}
        for path in sorted(DUMPS.glob(f"{data}_r*_test.npz")):
            d = np.load(path)
            for i in range(int(d["n"])):
                g = gradient(d[f"{i}/rgb"])
                gt = d[f"{i}/gt"].any(0)
                for m in rows:
                    pred = (d[f"{i}/{m}/plain"].astype(np.float32) > 0).any(0)
                    near = (
                        cv2.dilate(
                            (boundary(gt) | boundary(pred)).astype(np.uint8), np.ones((13, 13), np.uint8)
                        )
                        > 0
                    )
                    rows[m].append(
                        (
                            iou(pred, gt),
                            iou(morph(pred, True), gt),
                            iou(morph(pred, False), gt),
                            g[boundary(gt)].mean(),
                            g[boundary(pred)].mean(),
                            g[near].mean(),
                            pred.sum() / gt.sum(),
                        )
                    )
        for m, r in rows.items():
            a = np.array(r)
            print(
                f"{data} {m} ({len(a)} images): IoU {a[:, 0].mean():.4f}, "
                f"pred grown 1 px {a[:, 1].mean():.4f}, "
                f"shrunk 1 px {a[:, 2].mean():.4f}; gradient on GT boundary {a[:, 3].mean():.4f}, "
                f"on predicted boundary {a[:, 4].mean():.4f}, near both {a[:, 5].mean():.4f}; "
                f"area pred/GT {a[:, 6].mean():.3f}"
            )


if __name__ == "__main__":
    main()
