"""Throw-away prototype (#12): adapt MobileSAM's image encoder, not only its decoder, on cached features.

Decoder tuning barely moves the real photos, so this asks whether the image features are what
limits them. TinyViT's first three stages stay frozen and their output (64x64x320 tokens) is
cached once per image; trained, with the decoder's transformer and prompt encoder frozen:

- ``neck``: the neck only (1x1 conv 320->256, LayerNorm, 3x3 conv, LayerNorm; 0.67 M parameters),
  on the cached output of the last stage;
- ``last``: the last stage (two TinyViT blocks, 2.5 M parameters) and the neck;
- ``lora``: rank-r low-rank updates of the last stage's attention qkv/proj and MLP layers (neck frozen);

optionally together with the decoder's output heads (``--heads``: the trainer's default recipe).
Step 0 is exactly zero-shot SAM. Box prompts with the trainer's 10 % jitter, all instances of an
image in one decoder call, low-resolution focal + dice loss (as the trainer), AdamW, epoch kept on
val IoU. Scored as bench/sam_quality.py: per test defect image, IoU of the union of the predicted
masks (ground-truth boxes) with the union of the ground truth; mean over images, then folds.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/experiments/sam_encoder_tuning/enc_proto.py \\
        --data D --folds 5 --train neck --lr 1e-4 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from segment_anything.utils.transforms import ResizeLongestSide

from common.metrics import mean_std
from segmentation.data import load_split
from segmentation.embeddings import ImageEmbedding, load_rgb
from segmentation.folds import kfold, pool_defect_images, write_fold
from segmentation.instances import low_res_target
from segmentation.losses import dice_loss, sigmoid_focal_loss
from segmentation.low_res import crop_valid
from segmentation.models import load_sam
from segmentation.predict import transform_prompts, upscale_logits

HEADS = ("output_upscaling", "output_hypernetworks_mlps", "iou_prediction_head")


class LoRALinear(nn.Module):
    """``base(x) + scale * B(A(x))`` with B zero-initialised (Hu et al. 2021)."""

    def __init__(self, base: nn.Linear, rank: int) -> None:
        super().__init__()
        self.base = base
        self.a = nn.Linear(base.in_features, rank, bias=False)
        self.b = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.a.weight, a=5**0.5)
        nn.init.zeros_(self.b.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.b(self.a(x))


def add_lora(stage: nn.Module, rank: int) -> list[nn.Parameter]:
    params = []
    for block in stage.blocks:
        for owner, name in (
            (block.attn, "qkv"),
            (block.attn, "proj"),
            (block.mlp, "fc1"),
            (block.mlp, "fc2"),
        ):
            lora = LoRALinear(getattr(owner, name), rank)
            setattr(owner, name, lora)
            params += [lora.a.weight, lora.b.weight]
    return params


class RotatedView:
    """A train image turned by ``k`` x 90 degrees (``np.rot90``), its masks and boxes turned with it.

    Label-safe only where the category's policy allows rotation (synthetic_nut: ``degrees: 180``).
    """

    def __init__(self, image, k: int) -> None:
        self.image, self.k = image, k
        self.annotations = image.annotations
        self.path = image.path.with_name(f"{image.path.name}@rot{90 * k}")

    def rgb(self) -> np.ndarray:
        return np.ascontiguousarray(np.rot90(load_rgb(self.image.path), self.k))

    def instance_masks(self) -> np.ndarray:
        return np.ascontiguousarray(np.rot90(self.image.instance_masks(), self.k, axes=(1, 2)))

    def boxes(self) -> np.ndarray:
        """Pixel edges of each turned mask, as ``SegmentationImage.boxes``."""
        boxes = []
        for mask in self.instance_masks():
            ys, xs = np.nonzero(mask)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        return np.array(boxes, dtype=float).reshape(-1, 4)


def encode(sam, images) -> dict:
    """key -> (ImageEmbedding, stage-3 input tokens (1, 4096, 320), stage-3 output tokens)."""
    grabbed = {}
    stage = sam.image_encoder.layers[3]
    hook = stage.register_forward_hook(lambda m, i, o: grabbed.update(x=i[0], y=o))
    resize = ResizeLongestSide(sam.image_encoder.img_size)
    out = {}
    for image in images:
        rgb = image.rgb() if isinstance(image, RotatedView) else load_rgb(image.path)
        x = torch.as_tensor(resize.apply_image(rgb)).permute(2, 0, 1).float()
        with torch.inference_mode():
            embedding = sam.image_encoder(sam.preprocess(x[None]))[0]
        emb = ImageEmbedding(embedding.clone(), rgb.shape[:2], tuple(x.shape[1:]))
        out[image.path.name] = (emb, grabbed["x"].clone(), grabbed["y"].clone())
    hook.remove()
    return out


def embed(sam, entry, mode: str) -> torch.Tensor:
    """(1, 256, 64, 64) image embedding from the cached tokens through the trainable part."""
    _, x, y = entry
    enc = sam.image_encoder
    tokens = y if mode == "neck" else enc.layers[3](x)
    side = int(round(tokens.shape[1] ** 0.5))
    return enc.neck(tokens.view(1, side, side, -1).permute(0, 3, 1, 2))


def decode(sam, emb: ImageEmbedding, embedding: torch.Tensor, boxes: np.ndarray) -> torch.Tensor:
    p = transform_prompts(sam, emb, boxes=boxes)
    sparse, dense = sam.prompt_encoder(points=None, boxes=p.boxes, masks=None)
    low, _ = sam.mask_decoder(
        image_embeddings=embedding, image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False,
    )  # fmt: skip
    return low


def image_iou(sam, cache, image, mode: str | None) -> float:
    entry = cache[image.path.name]
    emb = entry[0]
    truth = image.instance_masks().any(0)
    with torch.no_grad():
        embedding = emb.embedding[None] if mode is None else embed(sam, entry, mode)
        low = decode(sam, emb, embedding, image.boxes())
        pred = (upscale_logits(sam, low, emb)[:, 0] > 0).any(0).numpy()
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def per_image(sam, cache, images, mode) -> dict[str, float]:
    return {im.path.name: image_iou(sam, cache, im, mode) for im in images if im.annotations}


def snapshot(params: list[nn.Parameter]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def restore(params: list[nn.Parameter], values: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(params, values, strict=True):
            p.copy_(v)


def setup(sam, mode: str, heads: bool, rank: int) -> tuple[list[dict], list[nn.Parameter]]:
    """Freeze SAM, add/unfreeze the trainable part; (optimiser groups, all trainable parameters)."""
    for p in sam.parameters():
        p.requires_grad_(False)
    enc = sam.image_encoder
    if mode == "lora":  # added once; each round restores B = 0
        if not hasattr(enc.layers[3], "lora_params"):
            enc.layers[3].lora_params = add_lora(enc.layers[3], rank)
        encoder_params = enc.layers[3].lora_params
    elif mode == "last":
        encoder_params = list(enc.layers[3].parameters()) + list(enc.neck.parameters())
    else:
        encoder_params = list(enc.neck.parameters())
    head_params = [p for name in HEADS for p in getattr(sam.mask_decoder, name).parameters()] if heads else []
    for p in encoder_params + head_params:
        p.requires_grad_(True)
    return [{"params": encoder_params, "group": "encoder"}, {"params": head_params, "group": "heads"}], (
        encoder_params + head_params
    )


def train_fold(sam, cache, train, val, args, seed: int):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    groups, params = setup(sam, args.train, args.heads, args.rank)
    initial = snapshot(params)
    groups[0]["lr"], groups[1]["lr"] = args.lr, args.heads_lr
    opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=1e-4)
    images = [im for im in train if im.annotations]
    best = (np.mean(list(per_image(sam, cache, val, args.train).values())), 0, snapshot(params))
    print(f"    epoch 0: val IoU {best[0]:.4f}", flush=True)
    for epoch in range(1, args.epochs + 1):
        for index in rng.permutation(len(images)):
            image = images[index]
            entry = cache[image.path.name]
            boxes = image.boxes().astype(np.float32)
            sides = np.repeat(boxes[:, 2:] - boxes[:, :2], 2, 0).reshape(-1, 4)
            boxes = boxes + np.clip(rng.normal(0, 0.1, boxes.shape) * sides, -20, 20).astype(np.float32)
            low = decode(sam, entry[0], embed(sam, entry, args.train), boxes)
            logits = crop_valid(low, entry[0].input_size, sam.image_encoder.img_size)
            target = torch.stack([low_res_target(sam, entry[0], m) for m in image.instance_masks()])[:, None]
            loss = (
                20 * sigmoid_focal_loss(logits, target.float()).mean()
                + dice_loss(logits, target.float()).mean()
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = float(np.mean(list(per_image(sam, cache, val, args.train).values())))
        print(f"    epoch {epoch}: val IoU {score:.4f}", flush=True)
        if score > best[0]:
            best = (score, epoch, snapshot(params))
    restore(params, best[2])
    return initial, params, best[1], best[0]


def rounds_of(args) -> list[dict]:
    if not args.folds:
        return [{s: load_split(args.data, s).images for s in ("train", "val", "test")}]
    pool, categories = pool_defect_images(args.data)
    rounds = []
    for fold in kfold([(p.key, p.stratum) for p in pool], args.folds, seed=0):
        folder = write_fold(args.data, pool, categories, fold, args.work / f"round{fold.index}")
        rounds.append({s: load_split(folder, s).images for s in ("train", "val", "test")})
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=0, help="0: the converter's split")
    parser.add_argument("--train", choices=("neck", "last", "lora"), default="neck")
    parser.add_argument("--heads", action="store_true", help="also the decoder's output heads")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--rot90", action="store_true", help="add 90/270-degree views of the train images")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--heads-lr", type=float, default=1e-4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/enc/work"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sam = load_sam("vit_t")
    sam.eval()  # throughout: TinyViT's BatchNorms keep their statistics (one image per step)
    rounds = rounds_of(args)
    if args.rot90:  # cached 90- and 270-degree views of the train images as extra samples
        for split in rounds:
            split["train"] = split["train"] + [RotatedView(im, k) for im in split["train"] for k in (1, 3)]
    everything = {im.path.name: im for r in rounds for s in r.values() for im in s if im.annotations}
    start = time.time()
    cache = encode(sam, list(everything.values()))
    print(f"encoded {len(cache)} images in {time.time() - start:.0f} s", flush=True)
    results = []
    for index, split in enumerate(rounds):
        t0 = time.time()
        zero = per_image(sam, cache, split["test"], None)
        initial, params, epoch, val = train_fold(sam, cache, split["train"], split["val"], args, index)
        tuned = per_image(sam, cache, split["test"], args.train)
        restore(params, initial)  # next round starts from SAM again (LoRA B = 0, neck/heads as loaded)
        z, t = float(np.mean(list(zero.values()))), float(np.mean(list(tuned.values())))
        print(
            f"round {index}: zero-shot {z:.4f}  tuned {t:.4f}  (epoch {epoch}, val {val:.4f}, "
            f"{time.time() - t0:.0f} s)",
            flush=True,
        )
        results.append(
            {
                "zero_shot": z,
                "tuned": t,
                "epoch": epoch,
                "val": val,
                "zero_images": zero,
                "tuned_images": tuned,
            }
        )
    z = mean_std([r["zero_shot"] for r in results])
    t = mean_std([r["tuned"] for r in results])
    better = sum(r["tuned_images"][k] > r["zero_images"][k] + 1e-9 for r in results for k in r["zero_images"])
    worse = sum(r["tuned_images"][k] < r["zero_images"][k] - 1e-9 for r in results for k in r["zero_images"])
    line = (
        f"zero-shot {z[0]:.4f} +- {z[1]:.4f}   tuned {t[0]:.4f} +- {t[1]:.4f}   gain {t[0] - z[0]:+.4f}"
        f"   images better/worse {better}/{worse}"
    )
    print(line)
    if args.out:
        args.out.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "rounds": results, "summary": line},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
