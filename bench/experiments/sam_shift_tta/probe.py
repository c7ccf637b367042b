"""Zero-shot MobileSAM averaged over sub-cell shifts of its input (a diagnostic).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench python bench/experiments/sam_shift_tta/probe.py \
        --out bench/experiments/sam_shift_tta/probe.json

SAM's logits are a 256x256 grid over the 1024-px input: one cell is 4 input pixels (2 photo
pixels on hazelnut_toy's 512-px photos, 1 on the synthetic set's 256-px images). Test-time
flips map the grid onto itself, so they never sample between cells. Here the resized input is
translated by a fraction of a cell (edge pixels repeated), encoded, prompted with the shifted
boxes, and its upsampled logits translated back before they are averaged: the average samples
the boundary at 2x (shifts of 0 and 2 input pixels per axis) the grid's resolution. Every
defect image of the synthetic default and hazelnut_toy, ground-truth boxes, union IoU per image.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sam_headroom import defect_images, probe_summary, union_iou
from sam_quality import prepare_datasets
from segment_anything.utils.transforms import ResizeLongestSide

from segmentation.augment import transform_image
from segmentation.embeddings import ImageEmbedding, load_rgb
from segmentation.models import load_sam
from segmentation.predict import decode
from segmentation.views import View

FLIPS = ("identity", "fliplr", "flipud", "rot180")


def translate(array: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``out[y, x] = array[y - dy, x - dx]`` for ``dx, dy >= 0``, the edge repeated into the gap."""
    padded = np.pad(array, ((dy, 0), (dx, 0)) + ((0, 0),) * (array.ndim - 2), mode="edge")
    return padded[: array.shape[0], : array.shape[1]]


def untranslate(logits: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """``out[..., y, x] = logits[..., y + dy, x + dx]``, the last row/column repeated."""
    padded = F.pad(logits, (0, dx, 0, dy), mode="replicate")
    return padded[..., dy : dy + logits.shape[-2], dx : dx + logits.shape[-1]]


def view_logits(sam, image: np.ndarray, boxes: np.ndarray, dx: int, dy: int, flip: str) -> np.ndarray:
    """``(N, H, W)`` logits of ``boxes`` on ``image`` flipped by ``flip`` and shifted by ``dx, dy``
    input pixels, back in the image frame."""
    size = image.shape[:2]
    viewed = transform_image(image, flip)
    framed = View(transform=flip).boxes(boxes, size)
    resize = ResizeLongestSide(sam.image_encoder.img_size)
    resized = resize.apply_image(viewed)
    h, w = resized.shape[:2]
    shifted = translate(resized, dx, dy)
    tensor = torch.as_tensor(shifted).permute(2, 0, 1).contiguous()[None].float()
    embedding = sam.image_encoder(sam.preprocess(tensor))[0]
    input_boxes = resize.apply_boxes(framed, viewed.shape[:2]) + np.array([dx, dy, dx, dy], dtype=float)
    low, _ = decode(sam, ImageEmbedding(embedding, (h, w), (h, w)), boxes=input_boxes, multimask_output=False)
    side = sam.image_encoder.img_size
    full = F.interpolate(low, (side, side), mode="bilinear", align_corners=False)
    full = untranslate(full, dx, dy)[..., :h, :w]
    out = F.interpolate(full, viewed.shape[:2], mode="bilinear", align_corners=False)[:, 0].numpy()
    return np.moveaxis(transform_image(np.moveaxis(out, 0, -1), flip), -1, 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hazelnut", type=Path, default=Path("../shared/data/hazelnut_toy"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/mvtec-finetune-bench/sam_shift"))
    parser.add_argument("--shifts", type=int, nargs="+", default=[0, 2], help="per-axis shifts, input px")
    parser.add_argument("--flips", action="store_true", help="also every flip of every shift")
    parser.add_argument("--only", default=None, help="one data set (synthetic_nut or hazelnut_toy)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sam = load_sam("vit_t", device="cpu")
    flips = FLIPS if args.flips else ("identity",)
    views = [(dx, dy, f) for f in flips for dx, dy in itertools.product(args.shifts, repeat=2)]
    table = {}
    for data_name, data in prepare_datasets(args.work, args.hazelnut).items():
        if args.only and data_name != args.only:
            continue
        rows: dict[str, list[float]] = {}
        with torch.inference_mode():
            for image in defect_images(data):
                rgb, gt, boxes = load_rgb(image.path), image.union_mask(), image.boxes()
                logits = {v: view_logits(sam, rgb, boxes, *v) for v in views}
                combos = {
                    "identity (as evaluated)": [(0, 0, "identity")],
                    f"shifts {args.shifts}^2": [v for v in views if v[2] == "identity"],
                    "diagonal shifts only": [v for v in views if v[2] == "identity" and v[0] == v[1]],
                }
                if args.flips:
                    combos["flips (as --tta)"] = [v for v in views if v[:2] == (0, 0)]
                    combos["flips x shifts"] = views
                for name, members in combos.items():
                    pred = np.mean([logits[v] for v in members], axis=0) > 0
                    rows.setdefault(name, []).append(union_iou(pred.any(0), gt))
                print(data_name, image.path.name, {k: round(v[-1], 4) for k, v in rows.items()}, flush=True)
        table[data_name] = probe_summary(data_name, rows)
    args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
