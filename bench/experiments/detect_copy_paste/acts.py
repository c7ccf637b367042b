"""Checks that ultralytics' copy-paste acts on a detect task with polygon labels: boxes per training sample
over three passes of a converted split's train images, with ``copy_paste=0.5`` in each mode and without.

    PYTHONPATH=. .venv/bin/python bench/experiments/detect_copy_paste/acts.py W/fold0/data.yaml

(``W``: ``copy_paste.py``'s work folder; fold 0: 111 boxes with ``flip``, 88 with ``mixup``, 87 without.)
"""

from __future__ import annotations

import random
import sys

import numpy as np
import torch
from ultralytics.cfg import get_cfg
from ultralytics.data.build import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset


def boxes(data: dict, **overrides) -> int:
    """Boxes in three seeded passes over the train split's augmented samples."""
    cfg = get_cfg(overrides={"mosaic": 0.0, "imgsz": 256, "task": "detect", **overrides})
    dataset = build_yolo_dataset(cfg, data["train"], 8, data, mode="train")
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return sum(len(dataset[i]["cls"]) for _ in range(3) for i in range(len(dataset)))


def main() -> None:
    data = check_det_dataset(sys.argv[1])
    without = boxes(data, copy_paste=0.0)
    for mode in ("flip", "mixup"):
        print(f"{mode}: {boxes(data, copy_paste=0.5, copy_paste_mode=mode)} boxes, {without} without")


if __name__ == "__main__":
    main()
