"""Throw-away prototype (#12): HQ-SAM-style high-resolution branch on MobileSAM, on cached features.

SAM frozen; trained: an HQ output token, its hypernetwork MLP, and the fusion of early TinyViT
features (layers[0]: 128x128x128, or layers[1]: 64x64x160) with the image embedding and SAM's
upscaled mask features (HQ-SAM, Ke et al. 2023). Mask = SAM's mask 0 + HQ mask (HQ-SAM's
default read-out); the HQ MLP's last layer starts at zero. With ``--no-token`` SAM's own mask token
feeds the HQ MLP (no extra token in the transformer), so step 0 is exactly zero-shot SAM; with the
HQ token (HQ-SAM's design) the extra token changes SAM's own outputs from the start.

Scored as bench/sam_quality.py does: per test defect image, IoU of the union of predicted masks
(box prompts: ground-truth boxes) with the union of the ground truth; mean over images, then
folds.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/experiments/sam_hq_branch/hq_proto.py \\
        --data D --folds 5 --layer 0 --no-token --lr 3e-4 --epochs 10
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
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.mask_decoder import MLP
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

TOKEN = True


class HQBranch(nn.Module):
    def __init__(self, early_channels: int, early_side: int) -> None:
        super().__init__()
        self.hq_token = nn.Embedding(1, 256)
        self.hq_mlp = MLP(256, 256, 32, 3)
        nn.init.zeros_(self.hq_mlp.layers[-1].weight)
        nn.init.zeros_(self.hq_mlp.layers[-1].bias)
        if early_side == 64:  # HQ-SAM's compress_vit_feat
            self.compress = nn.Sequential(
                nn.ConvTranspose2d(early_channels, 256, 2, 2), LayerNorm2d(256), nn.GELU(),
                nn.ConvTranspose2d(256, 32, 2, 2),
            )  # fmt: skip
        else:  # 128x128: one upsampling step
            self.compress = nn.Sequential(
                nn.Conv2d(early_channels, 64, 1), LayerNorm2d(64), nn.GELU(), nn.ConvTranspose2d(64, 32, 2, 2)
            )
        self.embedding_encoder = nn.Sequential(
            nn.ConvTranspose2d(256, 64, 2, 2), LayerNorm2d(64), nn.GELU(), nn.ConvTranspose2d(64, 32, 2, 2)
        )
        self.embedding_maskfeature = nn.Sequential(
            nn.Conv2d(32, 64, 3, 1, 1), LayerNorm2d(64), nn.GELU(), nn.Conv2d(64, 32, 3, 1, 1)
        )


def hq_decode(sam, hq: HQBranch, emb: torch.Tensor, early: torch.Tensor, sparse, dense) -> torch.Tensor:
    """(N, 1, 256, 256) logits: SAM's single-mask output + the HQ mask."""
    dec = sam.mask_decoder
    extra = [hq.hq_token.weight] if TOKEN else []  # without it SAM's own tokens feed the HQ head
    tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight, *extra], dim=0)
    tokens = torch.cat([tokens[None].expand(sparse.size(0), -1, -1), sparse], dim=1)
    src = emb[None].expand(tokens.shape[0], -1, -1, -1) + dense
    pos = sam.prompt_encoder.get_dense_pe().expand(tokens.shape[0], -1, -1, -1)
    b, c, h, w = src.shape
    hs, src = dec.transformer(src, pos, tokens)
    mask_out = hs[:, 1 : 1 + dec.num_mask_tokens + int(TOKEN)]
    src = src.transpose(1, 2).view(b, c, h, w)
    up_sam = dec.output_upscaling(src)
    hq_features = hq.embedding_encoder(emb[None]) + hq.compress(early[None])
    up_hq = hq.embedding_maskfeature(up_sam) + hq_features
    sam_mask = (dec.output_hypernetworks_mlps[0](mask_out[:, 0])[:, None] @ up_sam.flatten(2)).view(
        b, 1, 4 * h, 4 * w
    )
    hq_mask = (hq.hq_mlp(mask_out[:, dec.num_mask_tokens if TOKEN else 0])[:, None] @ up_hq.flatten(2)).view(
        b, 1, 4 * h, 4 * w
    )
    return sam_mask + hq_mask


def encode(sam, images, layer: int) -> dict:
    """key -> (ImageEmbedding, early features (C, s, s) float32)."""
    grabbed = {}
    handle = sam.image_encoder.layers[layer].register_forward_hook(
        lambda m, i, o: grabbed.__setitem__("x", o)
    )
    resize = ResizeLongestSide(sam.image_encoder.img_size)
    out = {}
    for image in images:
        rgb = load_rgb(image.path)
        x = torch.as_tensor(resize.apply_image(rgb)).permute(2, 0, 1).float()
        input_size = tuple(x.shape[1:])
        with torch.inference_mode():
            embedding = sam.image_encoder(sam.preprocess(x[None]))[0]
        tokens = grabbed["x"][0]
        side = int(round(tokens.shape[0] ** 0.5))
        early = tokens.view(side, side, -1).permute(2, 0, 1).clone()
        out[image.path.name] = (ImageEmbedding(embedding.clone(), rgb.shape[:2], input_size), early)
    handle.remove()
    return out


def prompts(sam, emb: ImageEmbedding, boxes: np.ndarray):
    p = transform_prompts(sam, emb, boxes=boxes)
    return sam.prompt_encoder(points=None, boxes=p.boxes, masks=None)


def image_iou(sam, hq, cache, image, use_hq: bool) -> float:
    emb, early = cache[image.path.name]
    truth = image.instance_masks().any(0)
    boxes = image.boxes()
    with torch.no_grad():
        sparse, dense = prompts(sam, emb, boxes)
        if use_hq:
            low = hq_decode(sam, hq, emb.embedding, early, sparse, dense)
        else:
            low, _ = sam.mask_decoder(
                image_embeddings=emb.embedding[None], image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False,
            )  # fmt: skip
        pred = (upscale_logits(sam, low, emb)[:, 0] > 0).any(0).numpy()
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def mean_iou(sam, hq, cache, images, use_hq) -> float:
    return float(np.mean([image_iou(sam, hq, cache, im, use_hq) for im in images if im.annotations]))


def train_fold(sam, cache, train, val, early_shape, epochs: int, lr: float, seed: int):
    torch.manual_seed(seed)
    hq = HQBranch(early_shape[0], early_shape[1])
    opt = torch.optim.AdamW(hq.parameters(), lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    samples = [(im, k) for im in train for k in range(len(im.annotations))]
    best = (mean_iou(sam, hq, cache, val, True), 0, {k: v.clone() for k, v in hq.state_dict().items()})
    for epoch in range(1, epochs + 1):
        hq.train()
        for index in rng.permutation(len(samples)):
            image, k = samples[index]
            emb, early = cache[image.path.name]
            box = image.boxes()[k : k + 1].astype(np.float32)
            box = box + rng.normal(0, 0.05, 4).astype(np.float32) * np.repeat(
                box[:, 2:] - box[:, :2], 2, 0
            ).reshape(1, 4)
            with torch.no_grad():
                sparse, dense = prompts(sam, emb, box)
            logits = hq_decode(sam, hq, emb.embedding, early, sparse, dense)
            target = low_res_target(sam, emb, image.instance_masks()[k])
            logits = crop_valid(logits, emb.input_size, sam.image_encoder.img_size)
            target = target[None, None].float() if target.dim() == 2 else target[None].float()
            loss = 20 * sigmoid_focal_loss(logits, target).mean() + dice_loss(logits, target).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        hq.eval()
        score = mean_iou(sam, hq, cache, val, True)
        print(f"    epoch {epoch}: val IoU {score:.4f}", flush=True)
        if score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in hq.state_dict().items()})
    hq.load_state_dict(best[2])
    return hq, best[1], best[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=0, help="0: the converter's split")
    parser.add_argument("--layer", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/hq/work"))
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--no-token", action="store_true", help="no HQ token: SAM's mask token feeds the HQ MLP"
    )
    args = parser.parse_args()
    global TOKEN
    TOKEN = not args.no_token
    torch.set_num_threads(1)
    sam = load_sam("vit_t")
    for p in sam.parameters():
        p.requires_grad_(False)
    if args.folds:
        pool, categories = pool_defect_images(args.data)
        rounds = []
        for fold in kfold([(p.key, p.stratum) for p in pool], args.folds, seed=0):
            folder = write_fold(args.data, pool, categories, fold, args.work / f"round{fold.index}")
            rounds.append({s: load_split(folder, s).images for s in ("train", "val", "test")})
    else:
        rounds = [{s: load_split(args.data, s).images for s in ("train", "val", "test")}]
    all_images = {im.path.name: im for r in rounds for s in r.values() for im in s}
    start = time.time()
    cache = encode(sam, [im for im in all_images.values() if im.annotations], args.layer)
    print(f"encoded {len(cache)} images in {time.time() - start:.0f} s", flush=True)
    early_shape = next(iter(cache.values()))[1].shape
    results = []
    for index, split in enumerate(rounds):
        zero = mean_iou(sam, None, cache, split["test"], False)
        hq, epoch, val = train_fold(
            sam, cache, split["train"], split["val"], early_shape, args.epochs, args.lr, index
        )
        tuned = mean_iou(sam, hq, cache, split["test"], True)
        print(
            f"round {index}: zero-shot {zero:.4f}  hq {tuned:.4f}  (epoch {epoch}, val {val:.4f})", flush=True
        )
        results.append({"zero_shot": zero, "hq": tuned, "epoch": epoch, "val": val})
    z = mean_std([r["zero_shot"] for r in results])
    h = mean_std([r["hq"] for r in results])
    line = f"zero-shot {z[0]:.4f} +- {z[1]:.4f}   hq {h[0]:.4f} +- {h[1]:.4f}   gain {h[0] - z[0]:+.4f}"
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
