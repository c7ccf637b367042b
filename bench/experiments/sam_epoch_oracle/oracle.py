"""How much can epoch selection cost? Test IoU after every epoch of the bench's k-fold rounds.

A diagnostic for issue #12, not a protocol: each round of ``bench/sam_quality.py``'s k-fold
(same folds, same seed, same training settings) is trained with its *test* images as the val
split, so the trainer's per-epoch "val IoU" (``results.csv``) is the test IoU after every epoch.
Early stopping is off (``patience`` above ``epochs``). From the curves:

- epoch 0 is the untuned model (it must equal the bench's zero-shot figure);
- the best epoch per round is what a perfect epoch picker could reach (an upper bound, since the
  pick looks at the test images);
- the same epoch for every round is what a fixed-length recipe gets without any val split.

``--train-on-val`` adds each round's real val images to its train images (what a fixed-length
recipe without val selection could train on).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_epoch_oracle/oracle.py \
        --data /tmp/mvtec-finetune-bench/sam_encoder_hz/data/hazelnut_toy --epochs 20 --out /tmp/oracle/heads
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sam_quality import DEFAULT_CACHE, train_config, val_curve

from segmentation.folds import kfold, pool_defect_images, write_fold
from segmentation.train import train

HEADS = ("train_transformer=false", "crops.max_fraction=0")


def peek_fold(fold, train_on_val: bool):
    """The round with its test images as val (and its val images added to train when asked)."""
    train_keys = fold.train + fold.val if train_on_val else fold.train
    return dataclasses.replace(fold, train=train_keys, val=fold.test)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="converted data set (hazelnut_toy)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train-on-val", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], help="extra trainer overrides")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # The bench's own config (its settings on the trainer's DEFAULTS), early stopping off.
    config = train_config(
        argparse.Namespace(model="vit_t", cache_dir=DEFAULT_CACHE),
        [*HEADS, f"epochs={args.epochs}", f"patience={args.epochs + 1}", *args.set],
    )
    pool, categories = pool_defect_images(args.data)
    folds = kfold([(image.key, image.stratum) for image in pool], args.folds, seed=0)
    curves = []
    for fold in folds:
        folder = write_fold(
            args.data, pool, categories, peek_fold(fold, args.train_on_val), args.out / f"fold{fold.index}"
        )
        run = {
            **config,
            "data": str(folder),
            "out": str(args.out / "runs"),
            "name": f"fold{fold.index}",
            "exist_ok": True,
        }
        print(f"round {fold.index + 1}/{args.folds} ...", file=sys.stderr)
        with contextlib.redirect_stdout(sys.stderr):
            curves.append(val_curve(train(run)))
    curves_ = np.array(curves)
    zero = curves_[:, 0]
    best = curves_.max(axis=1)
    mean_curve = curves_.mean(axis=0)
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "curves": curves,
        "zero_shot": [float(zero.mean()), float(zero.std(ddof=1))],
        "oracle_best_epoch": [float(best.mean()), float(best.std(ddof=1))],
        "oracle_gain_per_round": (best - zero).tolist(),
        "best_fixed_epoch": int(mean_curve.argmax()),
        "best_fixed_epoch_iou": float(mean_curve.max()),
        "last_epoch": [float(curves_[:, -1].mean()), float(curves_[:, -1].std(ddof=1))],
        "mean_curve": mean_curve.tolist(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "oracle.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "curves"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
