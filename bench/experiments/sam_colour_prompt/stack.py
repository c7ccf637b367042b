"""The shipped colour head on top of ``probe.py``'s models: does the colour prompt add to it?

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_colour_prompt/stack.py \
        --work /tmp/colour_prompt --out bench/experiments/sam_colour_prompt/stack.json

Per round of a ``probe.py --work`` folder, for its heads-only decoder and its colour-prompt model (decoder,
gate and mask downscaling of the epoch kept): the package's colour head (``fit_colour_head`` on
``training_pixels`` of the round's train photos, as ``segmentation.train`` fits it with
``colour_head: true``), kept only where it raises the round's val IoU, scored on its test photos.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

import numpy as np
import torch
from experiments.probe_rounds import paired
from experiments.sam_colour_prompt import probe
from sam_quality import train_config

from segmentation.colour_head import fit_colour_head, training_pixels
from segmentation.crossval import load_round_model
from segmentation.data import load_split
from segmentation.embeddings import load_rgb
from segmentation.evaluate import embed_for_models, evaluate_model
from segmentation.models import load_sam
from segmentation.predict import box_logits


def split_inputs(folder: Path, name: str, base, cache_dir: Path):
    split = load_split(folder, name)
    [(embeddings, _)] = embed_for_models([base], split, [], model="vit_t", cache_dir=cache_dir)
    probe.register(embeddings, [image.path for image in split.images])
    return split, embeddings


def fit(sam, split, embeddings):
    xs, ys = [], []
    for image, emb in zip(split.images, embeddings, strict=True):
        if image.is_background:
            continue
        boxes = image.boxes()
        logits, _ = box_logits(sam, emb, boxes)
        x, y = training_pixels(logits, load_rgb(image.path), boxes, image.union_mask())
        xs.append(x)
        ys.append(y)
    return fit_colour_head(np.concatenate(xs), np.concatenate(ys), seed=0)


def iou(sam, split, embeddings, head=None) -> float:
    with torch.inference_mode():
        return evaluate_model(sam, split, embeddings, name="x", progress=False, colour_head=head).summary.iou[
            "all"
        ]


def model_scores(sam, inputs, *, colour: bool) -> dict:
    (train, train_emb), (val, val_emb), (test, test_emb) = inputs
    with probe.hooked() if colour else contextlib.nullcontext():
        head = fit(sam, train, train_emb)
        val_without, val_with = iou(sam, val, val_emb), iou(sam, val, val_emb, head)
        test_without, test_with = iou(sam, test, test_emb), iou(sam, test, test_emb, head)
    kept = val_with > val_without
    return {
        "test": test_without,
        "test with head (gated on val)": test_with if kept else test_without,
        "test with head (ungated)": test_with,
        "val without / with": [val_without, val_with],
        "head weights": list(head.weights),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a probe.py --work folder")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument(
        "--heads-work", type=Path, help="the probe.py --work with the heads-only runs (--reference)"
    )
    parser.add_argument("--untrained", action="store_true", help="score untrained MobileSAM, map at gate 1")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = train_config(argparse.Namespace(model="vit_t", cache_dir=args.cache_dir), probe.HEADS)
    base = load_sam("vit_t", device="cpu")
    rounds = {}
    for folder in sorted(p for p in args.work.glob("fold*") if p.is_dir()):
        runs = args.work / "runs"
        if not (runs / f"{folder.name}_colour_prompt" / probe.PROMPT_FILE).is_file():
            continue
        inputs = [split_inputs(folder, name, base, args.cache_dir) for name in ("train", "val", "test")]
        if args.untrained:  # MobileSAM as it is, without and with the map at gate 1
            untrained = load_sam("vit_t", device="cpu")
            rounds[folder.name] = {"zero-shot": model_scores(untrained, inputs, colour=False)}
            probe.install(untrained, gate=1.0)
            rounds[folder.name]["untrained, map at gate 1"] = model_scores(untrained, inputs, colour=True)
            probe.PHOTOS.clear()
            print(folder.name, json.dumps(rounds[folder.name]), flush=True)
            continue
        heads_runs = (args.heads_work or args.work) / "runs"
        heads, _ = load_round_model(heads_runs / f"{folder.name}_heads", config)
        prompted, _ = load_round_model(runs / f"{folder.name}_colour_prompt", config)
        saved = torch.load(runs / f"{folder.name}_colour_prompt" / probe.PROMPT_FILE)
        gated = probe.install(prompted)
        gated.down.load_state_dict(saved["down"])
        gated.gate.data.copy_(saved["gate"])
        rounds[folder.name] = {
            "heads": model_scores(heads, inputs, colour=False),
            "colour prompt": model_scores(prompted, inputs, colour=True),
        }
        probe.PHOTOS.clear()
        print(folder.name, json.dumps(rounds[folder.name]), flush=True)
    if args.untrained:
        pick = {
            "zero-shot": [r["zero-shot"]["test"] for r in rounds.values()],
            "zero-shot + colour head": [
                r["zero-shot"]["test with head (gated on val)"] for r in rounds.values()
            ],
            "map at gate 1": [r["untrained, map at gate 1"]["test"] for r in rounds.values()],
            "map at gate 1 + colour head": [
                r["untrained, map at gate 1"]["test with head (gated on val)"] for r in rounds.values()
            ],
        }
        summary = {name: paired(values, pick["zero-shot + colour head"]) for name, values in pick.items()}
        report = {
            "rounds": rounds,
            "per round": pick,
            "summary (paired against zero-shot + colour head)": summary,
        }
    else:
        pick = {
            name: [r[model][key] for r in rounds.values()]
            for name, model, key in (
                ("heads", "heads", "test"),
                ("heads + colour head", "heads", "test with head (gated on val)"),
                ("colour prompt", "colour prompt", "test"),
                ("colour prompt + colour head", "colour prompt", "test with head (gated on val)"),
            )
        }
        summary = {name: paired(values, pick["heads + colour head"]) for name, values in pick.items()}
        report = {
            "rounds": rounds,
            "per round": pick,
            "summary (paired against heads + colour head)": summary,
        }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
