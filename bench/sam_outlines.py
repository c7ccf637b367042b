"""What SAM's error on real photos looks like: the annotator's outline against zero-shot MobileSAM's.

    PYTHONPATH=. python bench/sam_outlines.py --out bench/results

Issue 12's ``hazelnut_toy`` target asks fine-tuning for +0.06 IoU over zero-shot.
``bench/sam_headroom.py`` says in numbers where the zero-shot error lies (mostly 2-8 px from
the annotator's outline); this draws it. Every defect photo of ``hazelnut_toy`` with
ground-truth box prompts (as ``segmentation.evaluate``), untrained MobileSAM; six of them,
picked at even steps of the photos sorted by IoU (the worst, the best and four between, so the
panel is not a choice of good cases), each cropped to its defects and enlarged 3x without
smoothing: ground truth in green, SAM in magenta, both 2 px wide at the enlarged scale, the photo's
union IoU in the title. Writes ``sam_outlines.png``, and ``sam_outlines.md``: per photo the IoU,
the IoU of SAM's mask grown by 1 and 2 px (is the annotator's line simply further out?), the
ratio of SAM's mask area to the ground truth's, and the pixels only SAM's and only the ground truth's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from report import bench_parser, command_line, write_report
from sam_headroom import defect_images, morph, union_iou
from sam_quality import convert_category

from common.io import atomic_write
from common.tables import markdown_table
from segmentation.embeddings import EmbeddingCache, load_rgb
from segmentation.models import load_sam
from segmentation.predict import box_logits

SCALE = 3
MARGIN = 12
PANELS = 6
TRUTH, SAM = (0, 200, 0), (255, 0, 255)
EXTRA = ("SAM grown 1 px", "SAM grown 2 px", "SAM area / truth", "pixels only SAM's", "only the truth's")


def cells(values) -> list[str]:
    """``[IoU, *EXTRA]`` formatted: three decimals for the IoUs and the ratio, whole pixel counts."""
    return [f"{v:.3f}" if i < 4 else f"{v:,.0f}" for i, v in enumerate(values)]


def crop_box(boxes: np.ndarray, size: tuple[int, int]) -> tuple[slice, slice]:
    """The rows and columns around every box of a photo, ``MARGIN`` px out, inside the photo."""
    x0, y0 = np.floor(boxes[:, :2].min(0) - MARGIN).astype(int)
    x1, y1 = np.ceil(boxes[:, 2:].max(0) + MARGIN).astype(int)
    return slice(max(y0, 0), min(y1, size[0])), slice(max(x0, 0), min(x1, size[1]))


def outlined(rgb: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``rgb`` enlarged ``SCALE`` times (nearest), with both masks' outlines drawn 1 px wide."""
    big = cv2.resize(rgb, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    for mask, colour in ((truth, TRUTH), (pred, SAM)):
        mask = cv2.resize(mask.astype(np.uint8), None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(big, contours, -1, colour, 2)
    return big


def panels(data: Path, cache_dir: Path) -> list[tuple[str, float, np.ndarray, list[float]]]:
    """``(name, IoU, outlined crop, extra)`` per photo, worst first; ``extra``: :data:`EXTRA`'s columns."""
    sam = load_sam("vit_t", device="cpu")
    images = defect_images(data)
    embeddings = EmbeddingCache(cache_dir, sam, model_name="vit_t").embed([im.path for im in images])
    out = []
    for image, embedding in zip(images, embeddings, strict=True):
        boxes = image.boxes()
        pred = (box_logits(sam, embedding, boxes)[0] > 0).any(0)
        truth = image.union_mask()
        window = crop_box(boxes, truth.shape)
        crop = outlined(load_rgb(image.path)[window], truth[window], pred[window])
        extra = [union_iou(morph(pred, r, grow=True), truth) for r in (1, 2)]
        extra += [pred.sum() / truth.sum(), (pred & ~truth).sum(), (truth & ~pred).sum()]
        out.append((Path(image.path).name.removeprefix("hazelnut_toy_"), union_iou(pred, truth), crop, extra))
    return sorted(out, key=lambda p: p[1])


def save_figure(path: Path, rows: list[tuple], command: str) -> None:
    """``PANELS`` panels at even steps of ``rows`` (sorted by IoU), written to ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = [rows[i] for i in np.linspace(0, len(rows) - 1, PANELS).round().astype(int)]
    mean = float(np.mean([row[1] for row in rows]))
    fig, axes = plt.subplots(2, PANELS // 2, figsize=(15, 9.5))
    for ax, (name, iou, crop, _) in zip(axes.flat, picks, strict=True):
        ax.imshow(crop)
        ax.set_title(f"{name}: IoU {iou:.3f}", fontsize=11)
        ax.axis("off")
    fig.suptitle(
        f"hazelnut_toy, zero-shot MobileSAM, ground-truth boxes ({len(rows)} photos, mean IoU {mean:.3f}): "
        "annotator green, SAM magenta; crops enlarged 3x (a photo pixel is 3 screen pixels)",
        fontsize=11,
    )
    fig.text(0.5, 0.01, command, ha="center", fontsize=8, family="monospace")
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--hazelnut", type=Path, default=Path("../shared/data/hazelnut_toy"))
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/mvtec-finetune-bench/embeddings"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/mvtec-finetune-bench/sam_outlines"))
    args = parser.parse_args(argv)
    if not args.hazelnut.is_dir():
        print(f"no hazelnut_toy at {args.hazelnut}: nothing to draw", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    data = convert_category(args.hazelnut, args.work / "data" / "hazelnut_toy")
    with torch.inference_mode():
        rows = panels(data, args.cache_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    save_figure(args.out / "sam_outlines.png", rows, command_line(__file__, argv))
    table = [[name, *cells([iou, *extra])] for name, iou, _, extra in rows]
    means = np.mean([[iou, *extra] for _, iou, _, extra in rows], axis=0)
    table.append(["**mean**", *(f"**{c}**" for c in cells(means))])
    header = ["photo (worst first)", "zero-shot IoU", *EXTRA]
    doc = (__doc__ or "").split("\n\n")
    write_report(
        args.out / "sam_outlines.md",
        f"# {doc[0]}\n\n{doc[2]}\n\n{markdown_table(header, table)}\n\n"
        f"![outlines](sam_outlines.png)\n\nMade by `{command_line(__file__, argv)}`.\n",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
