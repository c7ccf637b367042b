"""Which of SAM's three candidates the annotation page should show first after a click (a diagnostic).

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/experiments/annotate_click_pick/probe.py \
        --out bench/experiments/annotate_click_pick/probe.json

The page shows the candidate with the highest predicted IoU first (Tab cycles the others). Every
true instance of ``hazelnut_toy`` and of the synthetic default (8-connected pieces of the masks) is
prompted with zero-shot MobileSAM as ``bench/experiments/annotate_specks`` does (a click at its most
interior pixel, its tight box, both), and each rule below picks one candidate: mean IoU with the
true instance per data set, prompt and rule, and how often each rule picks the closest candidate;
the same over the instances covering at least 5 % of their photo (where a rule that prefers small
masks could lose).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from converters.synthetic import SyntheticConfig, generate
from segmentation.embeddings import EmbeddingCache
from segmentation.models import load_sam
from segmentation.predict import decode, upscale_logits


def _load(name: str, path: Path):
    """A sibling experiment's script as a module (they are all called probe.py)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_specks = _load("annotate_specks_probe", Path(__file__).resolve().parents[1] / "annotate_specks" / "probe.py")
iou, prompts, true_instances = _specks.iou, _specks.prompts, _specks.true_instances

#: True instances at least this fraction of their photo are also reported apart.
LARGE = 0.05


def picks(scores: np.ndarray, areas: np.ndarray, photo_area: int) -> dict[str, int]:
    """Each rule's candidate index."""
    by_score = sorted(range(3), key=lambda i: -scores[i])
    rules = {
        "highest predicted IoU (the page)": by_score[0],
        "first output token (SAM's smallest)": 0,
        "smallest mask": int(np.argmin(areas)),
    }
    for fraction in (0.05, 0.1, 0.25):
        small = [i for i in by_score if areas[i] < fraction * photo_area]
        rules[f"highest predicted IoU under {fraction:g} of the photo"] = (
            small[0] if small else int(np.argmin(areas))
        )
    return rules


def instances(root: Path):
    """``(photo, true instance)`` pairs of every defect photo of an MVTec category folder."""
    for folder in sorted(p for p in (root / "test").iterdir() if p.is_dir() and p.name != "good"):
        for photo in sorted(folder.iterdir()):
            mask = root / "ground_truth" / folder.name / f"{photo.stem}_mask.png"
            for truth in true_instances(mask):
                yield photo, truth


def setup() -> tuple[argparse.Namespace, object, EmbeddingCache, dict[str, Path]]:
    """The command line, zero-shot MobileSAM on one thread, its embedding cache and the two data sets."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--hazelnut", type=Path, default=Path("../shared/data/hazelnut_toy"))
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/mvtec-finetune-bench/click_pick"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sam = load_sam("vit_t", device="cpu")
    roots = {
        "hazelnut_toy": args.hazelnut,
        "synthetic default": generate(args.work, SyntheticConfig(), overwrite=True, progress=False),
    }
    return args, sam, EmbeddingCache(args.cache_dir, sam, model_name="vit_t"), roots


def candidates(sam, emb, prompt: dict) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """SAM's three candidates for ``prompt``: low-res logits, predicted IoUs, masks at the photo's size."""
    low, scores = decode(sam, emb, multimask_output=True, **prompt)
    return low, scores, (upscale_logits(sam, low, emb)[0] > sam.mask_threshold).numpy()


def main() -> None:
    args, sam, cache, roots = setup()
    table = {}
    for data, root in roots.items():
        found: dict[str, dict[str, list[float]]] = {}
        largest = 0.0
        closest: dict[str, dict[str, int]] = {}
        with torch.inference_mode():
            for photo, truth in instances(root):
                (emb,) = cache.embed([photo], progress=False)
                for name, prompt in prompts(truth).items():
                    _, scores, masks = candidates(sam, emb, prompt)
                    ious = np.array([iou(mask, truth) for mask in masks])
                    chosen = picks(scores[0].numpy(), masks.sum((1, 2)), truth.size)
                    buckets = [name] + (
                        [f"{name}, instances over {LARGE:g} of the photo"] if truth.mean() >= LARGE else []
                    )
                    for bucket in buckets:
                        for rule, index in chosen.items():
                            found.setdefault(bucket, {}).setdefault(rule, []).append(float(ious[index]))
                            closest.setdefault(bucket, {}).setdefault(rule, 0)
                            closest[bucket][rule] += int(ious[index] == ious.max())
                        found[bucket].setdefault("closest of the three (a user cycling)", []).append(
                            float(ious.max())
                        )
                    largest = max(largest, float(truth.mean()))
        table[f"{data} | largest true instance, fraction of its photo"] = round(largest, 4)
        for name, rules in found.items():
            for rule, values in rules.items():
                table[f"{data} | {name} | {rule}"] = {
                    "instances": len(values),
                    "mean_iou": round(float(np.mean(values)), 4),
                    "picks_the_closest": closest.get(name, {}).get(rule, len(values)),
                }
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    for key, value in table.items():
        print(f"{key:95s} {value}")


if __name__ == "__main__":
    main()
