"""Throw-away (issue 12, guided-filter refinement): fine-tune per fold, dump full-res logits.

    cd . && OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python \
        bench/experiments/sam_guided_filter/dump_logits.py --work /tmp/i12refine

Phase 1 of the experiment. Runs the committed protocol (segmentation.crossval with the
trainer's DEFAULTS: hazelnut_toy 5-fold, synthetic default on the converter split), then, per
round, writes for every val and test defect image: the RGB photo, the ground-truth instance
masks and each model's per-instance full-resolution logits, plain and flip-averaged (tta),
as float16 in one npz per (data set, round, split). Phase 2 (grid.py) only reads those.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sam_quality import prepare_datasets

from common.config import load_config
from common.io import cache_root
from segmentation.crossval import cross_validate, single_split, summary
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache, load_rgb
from segmentation.evaluate import embed_views, flip_views
from segmentation.finetuned import load_finetuned
from segmentation.models import load_sam
from segmentation.predict import decode, upscale_logits
from segmentation.train_config import DEFAULTS
from segmentation.tta import TTA_VIEWS, view_logits
from segmentation.views import View


def plain_logits(sam, embedding, boxes) -> np.ndarray:
    low, _ = decode(sam, embedding, boxes=boxes, multimask_output=False)
    return upscale_logits(sam, low, embedding)[:, 0].float().numpy()


def dump_split(models: dict, cache: EmbeddingCache, folder: Path, split: str, out: Path) -> None:
    data = load_split(folder, split)
    images = [im for im in data.images if not im.is_background]
    embeddings = cache.embed([im.path for im in images], progress=False)
    sub = dataclasses.replace(data, images=images)
    views = embed_views(cache, sub, flip_views(sub, True))
    record: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for i, (image, emb) in enumerate(zip(images, embeddings, strict=True)):
            boxes = image.boxes()
            size = (image.height, image.width)
            record[f"{i}/rgb"] = load_rgb(image.path)
            record[f"{i}/gt"] = image.instance_masks()
            record[f"{i}/id"] = np.array(image.image_id)
            for name, sam in models.items():
                record[f"{i}/{name}/plain"] = plain_logits(sam, emb, boxes).astype(np.float16)
                per_view = {"identity": emb, **{v: views[(i, View(transform=v))] for v in TTA_VIEWS[1:]}}
                mean = sum(view_logits(sam, per_view[v], boxes, v, size)[0] for v in TTA_VIEWS) / len(
                    TTA_VIEWS
                )
                record[f"{i}/{name}/tta"] = mean.astype(np.float16)
    record["n"] = np.array(len(images))
    np.savez_compressed(out, **record)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("/tmp/i12refine"))
    parser.add_argument("--hazelnut", type=Path, default=Path("../shared/data/hazelnut_toy"))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.work
    datasets = prepare_datasets(work / "prep", args.hazelnut)
    config = load_config(DEFAULTS, None, ["model=vit_t", "device=cpu", "progress=false"])
    base = load_sam("vit_t", device="cpu")
    cache = EmbeddingCache(cache_root() / "embeddings", base, model_name="vit_t")
    dumps = work / "dumps"
    dumps.mkdir(parents=True, exist_ok=True)
    plan = [
        (
            "hazelnut_toy",
            lambda: cross_validate(datasets["hazelnut_toy"], args.folds, config, work=work / "hazelnut_toy"),
        ),
        (
            "synthetic_nut",
            lambda: single_split(datasets["synthetic_nut"], config, work=work / "synthetic_nut"),
        ),
    ]
    for name, runner in plan:
        print(f"== {name}", file=sys.stderr)
        results = runner()
        (dumps / f"{name}_summary.json").write_text(json.dumps(summary(results), indent=1, default=str))
        for r in results:
            folder = Path(load_split_folder(r))
            tuned, _ = load_finetuned(r.run_dir / "decoder.pt", model="vit_t", device="cpu")
            for split in ("val", "test"):
                dump_split(
                    {"zs": base, "ft": tuned}, cache, folder, split, dumps / f"{name}_r{r.index}_{split}.npz"
                )
                print(f"   dumped round {r.index} {split}", file=sys.stderr)
    return 0


def load_split_folder(result) -> str:
    """The round's data folder (the trainer's args.yaml names it)."""
    import yaml

    return yaml.safe_load((result.run_dir / "args.yaml").read_text())["data"]


if __name__ == "__main__":
    raise SystemExit(main())
