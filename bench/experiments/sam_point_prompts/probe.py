"""Point prompts beside the box: what clicks inside a box add to SAM's outline (a probe, issue #12).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_point_prompts/probe.py \
        --work W --cache-dir C --out bench/experiments/sam_point_prompts/probe.json

Every lever on ``hazelnut_toy`` so far fed SAM a box (and the colour prompt a dense map through its
``mask_input``). SAM's native refinement prompt is a click: a positive point on the defect, negative
points on what must stay out. Untrained MobileSAM, the ground-truth boxes, every defect image of the
converted sets (``bench/sam_headroom.py``'s conversion), identity view, logits thresholded at 0, IoU of
the union of an image's masks against the ground truth, mean over images; no selection (every row on
every image).

Two kinds of clicks:

- *oracle* clicks, read off the ground truth as a careful annotator would click: the positive point at
  the instance's innermost pixel (its distance transform's peak), negatives at the pixels of the box
  farthest from the instance. They bound what clicks can give: if they do not lift IoU, automatic clicks
  cannot.
- *colour* clicks, from the photo alone (what the cascade could do without an annotator): per box the
  colour distance to the box border's median colour (:func:`segmentation.colour_head.colour_distance`,
  blurred by a 2-px Gaussian), the positive point at its peak, negatives at the lowest-distance pixel of
  each cell of a 3x3 grid over the box whose lowest distance is under the colour prompt's centre (22:
  skin-coloured).

Each with the box alone and with the colour prompt's map as ``mask_input`` (``--colour-prompt``'s 0.845).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from sam_headroom import defect_images, union_iou
from sam_quality import prepare_datasets

from segmentation.colour_head import box_window, colour_distance
from segmentation.colour_prompt import ColourPrompt
from segmentation.embeddings import EmbeddingCache
from segmentation.models import load_sam
from segmentation.predict import decode, upscale_logits

SKIN = 22.0  # the colour prompt's centre: distances below it read as the nut's skin


def oracle_points(mask: np.ndarray, box: np.ndarray, negatives: int) -> tuple[np.ndarray, np.ndarray]:
    """The innermost pixel of ``mask`` (positive) and the ``negatives`` box pixels farthest from it."""
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(np.argmax(inside), inside.shape)
    points, labels = [(x + 0.5, y + 0.5)], [1]
    if negatives:
        rows, cols = box_window(box, mask.shape)
        outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)[rows, cols]
        for _ in range(negatives):
            j, i = np.unravel_index(np.argmax(outside), outside.shape)
            if outside[j, i] <= 1:
                break
            points.append((cols.start + i + 0.5, rows.start + j + 0.5))
            labels.append(0)
            cv2.circle(outside, (int(i), int(j)), max(3, int(min(outside.shape) / 4)), 0, -1)
    return np.array(points, dtype=float), np.array(labels)


def colour_points(rgb: np.ndarray, box: np.ndarray, negatives: bool) -> tuple[np.ndarray, np.ndarray]:
    """The colour distance's peak (positive) and skin-coloured cells' lowest pixels (negatives)."""
    window = box_window(box, rgb.shape[:2])
    distance = cv2.GaussianBlur(colour_distance(rgb, window), (0, 0), 2)
    y, x = np.unravel_index(np.argmax(distance), distance.shape)
    points, labels = [(window[1].start + x + 0.5, window[0].start + y + 0.5)], [1]
    if negatives:
        h, w = distance.shape
        for r in range(3):
            for c in range(3):
                cell = distance[r * h // 3 : (r + 1) * h // 3, c * w // 3 : (c + 1) * w // 3]
                if cell.size == 0 or cell.min() >= SKIN:
                    continue
                j, i = np.unravel_index(np.argmin(cell), cell.shape)
                x0, y0 = window[1].start + c * w // 3, window[0].start + r * h // 3
                points.append((x0 + i + 0.5, y0 + j + 0.5))
                labels.append(0)
    return np.array(points, dtype=float), np.array(labels)


def box_logits(sam, emb, box, points=None, mask_input=None) -> np.ndarray:
    """``(H, W)`` logits of one box (with optional points and ``mask_input``) in the photo's frame."""
    coords = labels = None
    if points is not None:
        coords, labels = points[0][None], points[1][None]
    low, _ = decode(
        sam,
        emb,
        boxes=box[None],
        point_coords=coords,
        point_labels=labels,
        mask_input=mask_input,
        multimask_output=False,
    )
    return upscale_logits(sam, low, emb)[0, 0].float().numpy()


def image_rows(sam, emb, image, prompt: ColourPrompt) -> dict[str, float]:
    rgb = cv2.cvtColor(cv2.imread(str(image.path)), cv2.COLOR_BGR2RGB)
    masks, boxes = image.instance_masks(), image.boxes()
    truth = masks.any(0)
    click_sets = {
        "box alone": lambda m, b: None,
        "oracle: + 1 positive": lambda m, b: oracle_points(m, b, 0),
        "oracle: + 1 positive, 2 negatives": lambda m, b: oracle_points(m, b, 2),
        "oracle: + 1 positive, 4 negatives": lambda m, b: oracle_points(m, b, 4),
        "colour: + 1 positive": lambda m, b: colour_points(rgb, b, False),
        "colour: + 1 positive, skin negatives": lambda m, b: colour_points(rgb, b, True),
    }
    rows = {}
    for colour in (False, True):
        for name, clicks in click_sets.items():
            union = np.zeros_like(truth)
            for mask, box in zip(masks, boxes, strict=True):
                mask_input = prompt.maps(sam, emb, rgb, box[None]) if colour else None
                union |= box_logits(sam, emb, box, clicks(mask, box), mask_input) > 0
            rows[f"{name}{', colour prompt' if colour else ''}"] = union_iou(union, truth)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hazelnut", type=Path, default=Path("../shared/data/hazelnut_toy"))
    parser.add_argument("--work", type=Path, required=True, help="a scratch folder for the converted sets")
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--only", choices=("hazelnut_toy", "synthetic_nut"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    datasets = prepare_datasets(args.work, args.hazelnut)
    sam = load_sam("vit_t", device="cpu")
    cache = EmbeddingCache(args.cache_dir, sam, model_name="vit_t")
    prompt = ColourPrompt()
    result = {}
    for name in ("hazelnut_toy", "synthetic_nut"):
        if args.only not in (None, name):
            continue
        images = defect_images(datasets[name])
        embeddings = cache.embed([im.path for im in images], progress=False)
        rows: dict[str, list[float]] = {}
        with torch.inference_mode():
            for image, emb in zip(images, embeddings, strict=True):
                for key, value in image_rows(sam, emb, image, prompt).items():
                    rows.setdefault(key, []).append(value)
        result[name] = {k: {"mean": round(float(np.mean(v)), 4), "per_image": v} for k, v in rows.items()}
        for key, value in result[name].items():
            print(f"{name}: {key}: {value['mean']}", flush=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
