"""How much IoU is there to win? Zero-shot MobileSAM against the masks' own boundary tolerance.

    PYTHONPATH=. python bench/sam_headroom.py --out bench/results

Issue 12 asks fine-tuning for +0.06 IoU over zero-shot on ``hazelnut_toy``. This
script puts that number next to how the masks themselves move IoU: the ground truth
against itself grown or shrunk by 1 and 2 pixels (an annotator drawing one pixel
wider scores this), and next to what untrained changes of the decoder's read-out
give: the mask threshold, the other mask tokens, and test-time flips (logits of
the identity, left-right, up-down and 180-degree views averaged, each view's
embedding cached once), and where the zero-shot error lies: the IoU left when every
wrong pixel more than d px from the ground truth's outline is made right (what remains
is disagreement within d px of the annotator). Every defect image of each data set, ground-truth box
prompts (one per instance, pixel edges, as ``segmentation.evaluate``), IoU of the
union of the predicted masks against the union of the ground truth, mean over images.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from report import (
    bench_parser,
    command_line,
    load_average,
    machine_info,
    note_load_after,
    run_section,
    write_report,
)
from sam_quality import prepare_datasets

from common.tables import markdown_table
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache
from segmentation.models import load_sam
from segmentation.predict import decode, upscale_logits
from segmentation.tta import TTA_VIEWS, view_logits
from segmentation.views import View

THRESHOLDS = (-1.0, -0.5, 0.5, 1.0)
BANDS = (1, 2, 3, 4, 8)


def union_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    return float((pred & gt).sum() / max((pred | gt).sum(), 1))


def probe_summary(data_name: str, rows: dict[str, list[float]]) -> dict:
    """Per-image IoUs by read-out as ``{name: {"iou": mean, "per_image": [...]}}``; prints the means."""
    for name, values in rows.items():
        print(f"{data_name}: {name}: {np.mean(values):.4f} ({len(values)} imgs)", flush=True)
    return {name: {"iou": float(np.mean(values)), "per_image": values} for name, values in rows.items()}


def defect_images(data: Path) -> list:
    """Every defect image of a converted data set (train, val and test; good images left out)."""
    return [im for s in ("train", "val", "test") for im in load_split(data, s).images if not im.is_background]


def grown_boxes(boxes: np.ndarray, scale: float, size: tuple[int, int]) -> np.ndarray:
    """``boxes`` scaled by ``scale`` about their centres, clipped to the ``(h, w)`` image (a looser box)."""
    centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    limit = np.array([size[1], size[0]], dtype=float)
    return np.concatenate([np.clip(centre - half, 0, limit), np.clip(centre + half, 0, limit)], axis=1)


def morph(mask: np.ndarray, radius: int, grow: bool) -> np.ndarray:
    """``mask`` dilated (``grow``) or eroded by a disc of ``radius`` pixels."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    op = cv2.dilate if grow else cv2.erode
    return op(mask.astype(np.uint8), disc) > 0


def boundary_distance(gt: np.ndarray) -> np.ndarray:
    """Each pixel's distance to the ground truth's boundary: to the nearest pixel of the other side."""
    inside = cv2.distanceTransform(gt.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform((~gt).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(gt, inside, outside)


def band_rows(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Where the error lies: IoU with every wrong pixel farther than ``d`` px from the boundary made right.

    What is left of the error at each ``d`` is disagreement within ``d`` px of the annotator's
    outline; the rest is gross error (a missed part, a leak) that a better model could remove.
    """
    distance = boundary_distance(gt)
    rows = {}
    for d in BANDS:
        fixed = np.where(distance > d, gt, pred)
        name = f"zero-shot, errors beyond {d} px of the ground truth's boundary corrected"
        rows[name] = union_iou(fixed, gt)
    return rows


def multimask_logits(sam, embedding, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3, H, W)`` logits of the three candidates and their ``(N, 3)`` predicted IoUs."""
    low, iou = decode(sam, embedding, boxes=boxes, multimask_output=True)
    return upscale_logits(sam, low, embedding).numpy(), iou.numpy()


def image_rows(sam, embeddings: dict[str, object], gt: np.ndarray, boxes: np.ndarray) -> dict[str, float]:
    """Every row's IoU on one image (``embeddings`` by view name)."""
    size = gt.shape
    single = {v: view_logits(sam, embeddings[v], boxes, v, size)[0] for v in TTA_VIEWS}
    multi, scores = multimask_logits(sam, embeddings["identity"], boxes)
    zero_shot = (single["identity"] > 0).any(0)
    rows = {"zero-shot (threshold 0, as evaluated)": union_iou(zero_shot, gt)}
    for t in THRESHOLDS:
        rows[f"mask threshold {t:+g}"] = union_iou((single["identity"] > t).any(0), gt)
    for k in range(multi.shape[1]):
        rows[f"multimask candidate {k + 1}"] = union_iou((multi[:, k] > 0).any(0), gt)
    best = multi[np.arange(len(boxes)), scores.argmax(1)]
    rows["multimask, best predicted IoU"] = union_iou((best > 0).any(0), gt)
    rows["flips averaged (fliplr)"] = union_iou(((single["identity"] + single["fliplr"]) > 0).any(0), gt)
    mean = sum(single.values()) / len(single)
    rows["flips averaged (fliplr, flipud, rot180)"] = union_iou((mean > 0).any(0), gt)
    for r in (1, 2):
        rows[f"ground truth grown {r} px (vs itself)"] = union_iou(morph(gt, r, True), gt)
        rows[f"ground truth shrunk {r} px (vs itself)"] = union_iou(morph(gt, r, False), gt)
    return rows | band_rows(zero_shot, gt)


def data_set_rows(sam, cache: EmbeddingCache, data: Path) -> tuple[dict[str, list[float]], int]:
    images = defect_images(data)
    paths = [im.path for im in images]
    embeddings = {
        v: cache.embed(paths, views=[View(transform=v)] * len(paths), progress=False) for v in TTA_VIEWS
    }
    rows: dict[str, list[float]] = {}
    with torch.inference_mode():
        for i, image in enumerate(images):
            gt = image.union_mask()
            per_view = {v: embeddings[v][i] for v in TTA_VIEWS}
            for name, value in image_rows(sam, per_view, gt, image.boxes()).items():
                rows.setdefault(name, []).append(value)
    return rows, len(images)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--hazelnut", type=Path, default=Path("../shared/data/hazelnut_toy"))
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/mvtec-finetune-bench/sam_headroom"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    machine = machine_info(
        {"torch_threads": "1", "load_avg_1m_before": load_average()}, packages=("torch", "segment-anything")
    )
    hazelnut = args.hazelnut if args.hazelnut.is_dir() else None
    if hazelnut is None:
        print(f"note: {args.hazelnut} not found; synthetic only", file=sys.stderr)
    datasets = prepare_datasets(args.work, hazelnut)
    sam = load_sam("vit_t", device="cpu")
    cache = EmbeddingCache(args.cache_dir, sam, model_name="vit_t")
    results = {name: data_set_rows(sam, cache, path) for name, path in datasets.items()}
    names = list(next(iter(results.values()))[0])
    header = ["read-out (MobileSAM, untrained)"] + [
        f"{n} ({count} imgs)" for n, (_, count) in results.items()
    ]
    table = [[name] + [f"{np.mean(rows[name]):.4f}" for rows, _ in results.values()] for name in names]
    note_load_after(machine)
    text = "\n".join(
        [
            "# Headroom of SAM's masks: zero-shot read-outs against the masks' own tolerance",
            "",
            __doc__.split("\n\n", 2)[2].strip(),
            "",
            markdown_table(header, table),
            "",
            *run_section(
                command_line(__file__, argv), machine, f"- wall time: {time.perf_counter() - start:.0f} s"
            ),
        ]
    )
    write_report(args.out / "sam_headroom.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
