"""The k-fold round loop and paired summary shared by the post-processing probes (issue #12 experiments).

Imported as ``experiments.probe_rounds`` (run the probes with ``PYTHONPATH=.:bench``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from common.metrics import mean_std
from segmentation.embeddings import EmbeddingCache
from segmentation.finetuned import load_finetuned
from segmentation.models import load_sam


def probe_parser() -> argparse.ArgumentParser:
    """``--runs`` (a bench run's k-fold data set folder), ``--cache-dir``, ``--zero-shot-only``, ``--out``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--zero-shot-only", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def score_rounds(args: argparse.Namespace, score: Callable, shown: Callable[[dict], object] = dict) -> dict:
    """``{foldK: {model: score(sam, cache, fold)}}`` over a bench run's rounds, each round printed.

    The models: the untrained MobileSAM always; the round's fine-tuned decoder
    (``runs/foldK/decoder.pt``) unless ``args.zero_shot_only``. One torch thread. ``shown``
    picks what of a model's scores the printed line holds.
    """
    torch.set_num_threads(1)
    base = load_sam("vit_t", device="cpu")
    rounds = {}
    for fold in sorted(p for p in args.runs.glob("fold*") if p.is_dir()):
        models = {"zero-shot": base}
        if not args.zero_shot_only:
            models["fine-tuned"] = load_finetuned(
                args.runs / "runs" / fold.name / "decoder.pt", device="cpu"
            )[0]
        rounds[fold.name] = {
            name: score(sam, EmbeddingCache(args.cache_dir, sam, model_name="vit_t"), fold)
            for name, sam in models.items()
        }
        print(fold.name, {name: shown(scores) for name, scores in rounds[fold.name].items()}, flush=True)
    return rounds


def paired(values: list[float], reference: list[float]) -> dict:
    """Mean and sample std over the rounds, and the gain over ``reference`` paired round by round."""
    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    mean, std = mean_std(values)
    gain, gain_std = mean_std(values - reference)
    return {
        "mean": round(mean, 4),
        "std": round(std, 4),
        "paired_gain": round(gain, 4),
        "paired_gain_std": round(gain_std, 4),
        "rounds_better": int((values > reference + 1e-9).sum()),
    }
