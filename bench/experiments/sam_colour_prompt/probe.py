"""The colour distance as SAM's dense mask prompt, learnt in fine-tuning (issue #12, an experiment).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_colour_prompt/probe.py \
        --work /tmp/colour_prompt --out bench/experiments/sam_colour_prompt/hazelnut.json [--rounds 0 1]

The colour head (``segmentation/colour_head.py``) gains +0.016 on ``hazelnut_toy`` by telling a
post-hoc logistic regression each pixel's CIE76 distance to the median colour of its box's border
(the nut's skin). Here SAM itself is told, through the input it has for it: per box, a map on the
decoder's 256x256 low-res frame (the padded model input; the same geometry as the trainer's low-res
targets, ``segmentation.low_res.mask_to_low_res``) holding ``(d - 22) / 2`` inside the box (the
colour head's zero-shot fit puts its decision boundary at ``d`` ~ 22 and weighs one unit of ``d``
as half a SAM logit), clipped to +-12, and -12 outside it. It goes in as ``mask_input``;
``prompt_encoder.mask_downscaling`` (MobileSAM's weights) embeds it, and a scalar gate starting at
0 blends it with the "no mask" embedding SAM uses for box prompts::

    dense = no_mask + gate * (mask_downscaling(map) - no_mask)

so epoch 0 is exactly the untuned model. Trained: the decoder's output heads (the default recipe,
``lr``), ``mask_downscaling`` (``--mask-lr``) and the gate (``--gate-lr``), on the trainer's
schedule. Everything else is the package's: ``segmentation.train.train`` with
``bench/sam_quality.py``'s settings and the ``heads`` variant (``train_transformer=false
crops.max_fraction=0``), the folds of ``segmentation.crossval.cross_validate`` (5, seed 0), epoch
kept on the round's val photos, ``evaluate_model`` on its test photos. The hooks (module
attributes replaced while a variant runs): ``segmentation.run_setup.set_up_optimisation`` (adds the
gate and the downscaling to the optimiser), ``segmentation.run_setup.embed_splits`` (records which
photo each embedding is), ``segmentation.train.save_best`` (saves the gate and downscaling beside
``decoder.pt``), and ``decode`` in ``segmentation.predict`` / ``segmentation.instances`` (adds the
map as ``mask_input`` to every box-only call). Each round also trains the plain heads-only recipe
(no hook) as the paired reference (``--reference``: taken from an earlier output instead), and scores
the untuned model with the gate at 1 (the map read by MobileSAM's own mask path, nothing trained).
``--gate-init 1`` starts the gate at 1: epoch 0 (and the val pick's baseline) is then that model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from experiments.probe_rounds import paired
from sam_quality import convert_category, train_config

import segmentation.instances
import segmentation.predict
import segmentation.run_setup
import segmentation.train
from segmentation.colour_head import box_window, colour_distance
from segmentation.crossval import load_round_model
from segmentation.data import load_split
from segmentation.embeddings import ImageEmbedding, load_rgb
from segmentation.evaluate import embed_for_models, evaluate_model
from segmentation.folds import deal_folds, write_fold
from segmentation.instances import trainable_parameters
from segmentation.models import load_sam
from segmentation.schedule import lr_factor, plan_steps

HEADS = ("train_transformer=false", "crops.max_fraction=0", "colour_head=false")
#: The map: (d - CENTRE) / SCALE inside the box, clipped to +-CLIP; -CLIP outside it and in the padding.
CENTRE, SCALE, CLIP = 22.0, 2.0, 12.0
PROMPT_FILE = "colour_prompt.pt"

ORIGINAL = {
    "decode": segmentation.predict.decode,
    "set_up_optimisation": segmentation.run_setup.set_up_optimisation,
    "embed_splits": segmentation.run_setup.embed_splits,
    "save_best": segmentation.train.save_best,
}
#: id(embedding) -> (embedding, path of its photo): which photo a decode call is on.
PHOTOS: dict[int, tuple[ImageEmbedding, Path]] = {}
RGB: dict[Path, np.ndarray] = {}
SETTINGS = {"mask_lr": 1e-3, "gate_lr": 2e-2, "gate_init": 0.0}


class GatedMask(torch.nn.Module):
    """``no_mask + gate * (down(map) - no_mask)``: SAM's mask embedding, faded in from 0."""

    def __init__(self, down: torch.nn.Module, no_mask: torch.nn.Embedding, gate: float = 0.0):
        super().__init__()
        self.down = down
        self.no_mask = [no_mask]  # a list: not a submodule (stays frozen, not in this state dict)
        self.gate = torch.nn.Parameter(torch.tensor(float(gate)))

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        base = self.no_mask[0].weight.reshape(1, -1, 1, 1)
        return base + self.gate * (self.down(masks) - base)


def install(sam, gate: float = 0.0) -> GatedMask:
    """Replaces ``sam``'s mask downscaling by a :class:`GatedMask` around it (once)."""
    encoder = sam.prompt_encoder
    if not isinstance(encoder.mask_downscaling, GatedMask):
        encoder.mask_downscaling = GatedMask(encoder.mask_downscaling, encoder.no_mask_embed, gate)
    return encoder.mask_downscaling


def rgb_of(path: Path) -> np.ndarray:
    if path not in RGB:
        RGB[path] = load_rgb(path)
    return RGB[path]


def colour_map(emb: ImageEmbedding, rgb: np.ndarray, box: np.ndarray, sam) -> torch.Tensor:
    """``(256, 256)`` map of one box on the decoder's low-res frame (see the module docstring)."""
    size = emb.original_size
    full = np.full(size, -CLIP, np.float32)
    window = box_window(box, size)
    if window[0].stop > window[0].start and window[1].stop > window[1].start:
        full[window] = np.clip((colour_distance(rgb, window) - CENTRE) / SCALE, -CLIP, CLIP)
    img_size, low = sam.image_encoder.img_size, 4 * sam.prompt_encoder.image_embedding_size[0]
    h, w = emb.input_size
    out = F.interpolate(torch.from_numpy(full)[None, None], size=(h, w), mode="area")
    out = F.pad(out, (0, img_size - w, 0, img_size - h), value=-CLIP)
    return F.adaptive_avg_pool2d(out, low)[0, 0]


def decode_with_map(sam, emb, *, boxes=None, point_coords=None, point_labels=None, mask_input=None, **kw):
    """``decode`` with the boxes' colour maps as ``mask_input`` on registered photos (box-only calls)."""
    entry = PHOTOS.get(id(emb))
    if mask_input is None and boxes is not None and point_coords is None and entry and entry[0] is emb:
        b = boxes.detach().cpu().numpy() if isinstance(boxes, torch.Tensor) else np.asarray(boxes)
        b = b.reshape(-1, 4).astype(float)
        rgb = rgb_of(entry[1])
        mask_input = torch.stack([colour_map(emb, rgb, box, sam) for box in b])[:, None]
    return ORIGINAL["decode"](
        sam,
        emb,
        boxes=boxes,
        point_coords=point_coords,
        point_labels=point_labels,
        mask_input=mask_input,
        **kw,
    )


def register(embeddings, paths) -> None:
    for emb, path in zip(embeddings, paths, strict=True):
        PHOTOS[id(emb)] = (emb, Path(path))


def embed_splits_hook(sam, instances, val_split, config, world, device):
    train_embeddings, val_embeddings, val_crops = ORIGINAL["embed_splits"](
        sam, instances, val_split, config, world, device
    )
    keys = list(train_embeddings)
    register([train_embeddings[k] for k in keys], [instances.split.images[k[0]].path for k in keys])
    register(val_embeddings, [image.path for image in val_split.images])
    return train_embeddings, val_embeddings, val_crops


def set_up_optimisation_hook(config: dict, sam, n_instances: int, world) -> tuple:
    """The heads as the trainer trains them, plus the gate and mask downscaling in their own groups."""
    parameters = trainable_parameters(sam, prompt_encoder=False, transformer=False)
    gated = install(sam, gate=SETTINGS["gate_init"])
    down, gate = list(gated.down.parameters()), [gated.gate]
    for parameter in down + gate:
        parameter.requires_grad_(True)
    plan = plan_steps(n_instances, config, world)
    groups = [
        {"params": parameters},
        {"params": down, "lr": SETTINGS["mask_lr"]},
        {"params": gate, "lr": SETTINGS["gate_lr"], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config["lr"], weight_decay=config["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(
            step, warmup=plan.warmup, total=plan.total_steps, min_ratio=config["min_lr_ratio"]
        ),
    )
    return None, parameters + down + gate, plan, optimizer, scheduler


def save_best_hook(run, colour_head=None, **kw) -> None:
    ORIGINAL["save_best"](run, colour_head, **kw)
    gated = run.sam.prompt_encoder.mask_downscaling
    torch.save(
        {"gate": gated.gate.detach().clone(), "down": gated.down.state_dict()}, run.folder / PROMPT_FILE
    )
    print(f"  colour prompt saved: gate {float(gated.gate.detach()):.4f}", file=sys.stderr)


@contextlib.contextmanager
def hooked():
    segmentation.predict.decode = decode_with_map
    segmentation.instances.decode = decode_with_map
    segmentation.run_setup.set_up_optimisation = set_up_optimisation_hook
    segmentation.run_setup.embed_splits = embed_splits_hook
    segmentation.train.save_best = save_best_hook
    try:
        yield
    finally:
        segmentation.predict.decode = ORIGINAL["decode"]
        segmentation.instances.decode = ORIGINAL["decode"]
        segmentation.run_setup.set_up_optimisation = ORIGINAL["set_up_optimisation"]
        segmentation.run_setup.embed_splits = ORIGINAL["embed_splits"]
        segmentation.train.save_best = ORIGINAL["save_best"]


def train_round(config: dict, folder: Path, out: Path, name: str) -> Path:
    run = {**config, "data": str(folder), "out": str(out), "name": name, "exist_ok": True}
    with contextlib.redirect_stdout(sys.stderr):
        return segmentation.train.train(run, resume_hint=False)


def score(sam, test, embeddings, *, colour: bool) -> tuple[float, list[float]]:
    """Test IoU (union, mean over defect photos) and per-photo IoUs, with or without the colour map."""
    context = hooked() if colour else contextlib.nullcontext()
    with context, torch.inference_mode():
        evaluation = evaluate_model(sam, test, embeddings, name="test", progress=False)
    return evaluation.summary.iou["all"], [s.iou for s in evaluation.scores]


def val_curve(run_dir: Path) -> dict:
    """The run's val IoU per epoch (epoch 0: untuned) and the epoch kept (the first best)."""
    rows = (run_dir / "results.csv").read_text().splitlines()
    col = rows[0].split(",").index("val_iou")
    values = [round(float(r.split(",")[col]), 4) for r in rows[1:]]
    return {"val_iou": values, "kept": int(np.argmax(values))}


def run_round(fold, pool, categories, data: Path, config: dict, args, base) -> dict:
    folder = write_fold(data, pool, categories, fold, args.work / f"fold{fold.index}")
    test = load_split(folder, "test")
    [(embeddings, _)] = embed_for_models([base], test, [], model="vit_t", cache_dir=args.cache_dir)
    register(embeddings, [image.path for image in test.images])
    result = {"zero-shot": score(base, test, embeddings, colour=False)[0]}
    gated = install(base, gate=1.0)  # MobileSAM's own mask path reading the map, nothing trained
    result["zero-shot, colour prompt at gate 1"] = score(base, test, embeddings, colour=True)[0]
    base.prompt_encoder.mask_downscaling = gated.down
    runs = args.work / "runs"
    start = time.perf_counter()
    if args.reference is None:
        heads_dir = train_round(config, folder, runs, f"fold{fold.index}_heads")
        tuned, _ = load_round_model(heads_dir, config)
        result["heads"] = score(tuned, test, embeddings, colour=False)[0]
        result["heads_val"] = val_curve(heads_dir)
    else:  # the same round of an earlier run of this script (same folds, seed, settings)
        earlier = json.loads(args.reference.read_text())["rounds"][f"fold{fold.index}"]
        result["heads"], result["heads_val"] = earlier["heads"], earlier["heads_val"]
    with hooked():
        prompt_dir = train_round(config, folder, runs, f"fold{fold.index}_colour_prompt")
    tuned, _ = load_round_model(prompt_dir, config)
    saved = torch.load(prompt_dir / PROMPT_FILE)
    gated = install(tuned)
    gated.down.load_state_dict(saved["down"])
    gated.gate.data.copy_(saved["gate"])
    result["colour prompt"] = score(tuned, test, embeddings, colour=True)[0]
    result["colour_prompt_val"] = val_curve(prompt_dir)
    result["gate"] = float(saved["gate"])
    result["seconds"] = round(time.perf_counter() - start)
    PHOTOS.clear()  # the round's embeddings go (and no id is ever reused while registered)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hazelnut", type=Path, default=Path("/work/shared/data/hazelnut_toy"))
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--rounds", type=int, nargs="*", help="round indices (default: all 5)")
    parser.add_argument("--mask-lr", type=float, default=SETTINGS["mask_lr"])
    parser.add_argument("--gate-lr", type=float, default=SETTINGS["gate_lr"])
    parser.add_argument(
        "--gate-init", type=float, default=SETTINGS["gate_init"], help="1: epoch 0 reads the map"
    )
    parser.add_argument(
        "--reference", type=Path, help="an earlier --out: its heads-only rounds, not retrained"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    SETTINGS.update(mask_lr=args.mask_lr, gate_lr=args.gate_lr, gate_init=args.gate_init)
    torch.set_num_threads(1)
    data = convert_category(args.hazelnut, args.work / "data" / "hazelnut_toy")
    config = train_config(argparse.Namespace(model="vit_t", cache_dir=args.cache_dir), HEADS)
    pool, categories, folds = deal_folds(data, 5, seed=0)
    base = load_sam("vit_t", device="cpu")
    rounds = {}
    for fold in folds:
        if args.rounds and fold.index not in args.rounds:
            continue
        rounds[f"fold{fold.index}"] = run_round(fold, pool, categories, data, config, args, base)
        print(f"fold{fold.index}", json.dumps(rounds[f"fold{fold.index}"]), flush=True)
        write(args, rounds)
    return 0


def write(args, rounds: dict) -> None:
    models = ("zero-shot", "zero-shot, colour prompt at gate 1", "heads", "colour prompt")
    summary = {
        m: paired([r[m] for r in rounds.values()], [r["zero-shot"] for r in rounds.values()]) for m in models
    }
    summary["colour prompt vs heads"] = paired(
        [r["colour prompt"] for r in rounds.values()], [r["heads"] for r in rounds.values()]
    )
    report = {
        "settings": {**SETTINGS, "centre": CENTRE, "scale": SCALE, "clip": CLIP, "config": list(HEADS)},
        "rounds": rounds,
        "summary (paired against zero-shot unless named)": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    raise SystemExit(main())
