"""Scores of a run on labelled images, and the files that report them (``metrics.json``, ``report.md``).

Image level: AUROC and F1-max of the image scores (defect vs good), and AUROC per defect type (that
type's images vs the good ones). Pixel level: AUROC, AUPRO (FPR <= 0.3, normalised) and F1-max of
the maps against the masks. Every figure comes from :mod:`common.metrics`, the implementation the
inspection report uses. Pixel metrics are taken on the model's input grid (masks resized to it with
nearest neighbour), as anomalib does, so memory stays at ``image_size^2`` per image.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np

from common.extras import package_versions
from common.io import atomic_write, json_text
from common.metrics import auroc, f1_max, pixel_figures
from common.tables import fmt, markdown_table

#: What an ``anomaly.evaluate`` report folder holds; ``--overwrite`` replaces no folder holding anything else.
REPORT_NAMES = ("metrics.json", "report.md", "scores.csv", "anomaly_maps.png")


def image_metrics(scores: Sequence[float], defects: Sequence[str]) -> dict:
    """Image AUROC and F1-max (``good`` vs the rest) and AUROC per defect type.

    Args:
        scores: ``(N,)`` image scores.
        defects: ``(N,)`` each image's defect type, ``good`` for good ones.
    """
    scores = np.asarray(scores, float)
    labels = np.array([d != "good" for d in defects])
    f1, threshold = f1_max(scores, labels) if labels.any() and (~labels).any() else (math.nan, math.nan)
    per_defect = {}
    good = scores[~labels]
    for defect in sorted(set(defects) - {"good"}):
        mine = scores[np.array([d == defect for d in defects])]
        per_defect[defect] = auroc(
            np.r_[good, mine], np.r_[np.zeros(len(good), bool), np.ones(len(mine), bool)]
        )
    return {
        "auroc": auroc(scores, labels),
        "f1_max": f1,
        "f1_threshold": threshold,
        "per_defect_auroc": per_defect,
        "images": int(len(scores)),
        "defect_images": int(labels.sum()),
    }


def pixel_metrics(
    maps: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    good: Sequence[bool] | None = None,
    progress: bool = False,
) -> dict:
    """Pixel AUROC, AUPRO (FPR <= 0.3) and F1-max with its threshold; NaN where no pixel is defect.

    ``good_peak`` is the largest map value on a good image (NaN without one): a threshold above it
    leaves every good image clean (``inspection --anomaly-run``'s default).

    Args:
        good: ``(N,)`` which images are good (their defect type). None: those without defect pixels;
            a defect image whose mask is empty (or too small to survive the resize to the model's
            grid) would then count as good, and its peak lift ``good_peak`` above its own defect.
        progress: a bar on stderr while the figures are computed (:func:`common.metrics.pixel_figures`).
    """
    if good is None:
        good = [not mask.any() for mask in masks]
    goods = [float(m.max()) for m, is_good in zip(maps, good, strict=True) if is_good]
    good_peak = max(goods) if goods else math.nan
    if not any(mask.any() for mask in masks):
        nan = math.nan
        return {"auroc": nan, "aupro": nan, "f1_max": nan, "f1_threshold": nan, "good_peak": good_peak}
    return {**pixel_figures(maps, masks, f1=True, progress=progress), "good_peak": good_peak}


def markdown(metrics: Mapping, settings: Mapping) -> str:
    """``report.md``: settings, the headline table, AUROC per defect type, and mask scores if any."""
    image, pixel = metrics["image"], metrics["pixel"]
    rows = [
        [
            "images (defect / good)",
            f"{image['images']} ({image['defect_images']} / {image['images'] - image['defect_images']})",
        ],
        ["image AUROC", fmt(image["auroc"])],
        ["image F1-max (threshold)", f"{fmt(image['f1_max'])} ({fmt_value(image['f1_threshold'])})"],
        ["pixel AUROC", fmt(pixel["auroc"])],
        ["AUPRO (FPR <= 0.3)", fmt(pixel["aupro"])],
        ["pixel F1-max (threshold)", f"{fmt(pixel['f1_max'])} ({fmt_value(pixel['f1_threshold'])})"],
        ["largest map value on a good image", fmt_value(pixel.get("good_peak"))],
        ["inference, s per image", fmt(metrics.get("seconds_per_image"), 3)],
    ]
    lines = [
        f"# PatchCore on {settings.get('category', '?')} ({settings.get('protocol', '?')})",
        "",
        "- " + "\n- ".join(f"{key}: `{value}`" for key, value in settings.items()),
        "",
        markdown_table(["figure", "value"], rows),
        "",
        *per_defect_lines(image["per_defect_auroc"]),
        *[f"Note: {note}." for note in undefined_notes(metrics)],
    ]
    if "masks" in metrics:
        masks = metrics["masks"]
        lines += [
            f"Masks from the map (threshold {fmt_value(masks['threshold'])}, {masks['threshold_from']}) "
            f"-> regions -> {masks['segmenter']}:",
            "",
            markdown_table(
                ["figure", "value"],
                [
                    ["per-image IoU, defect images", fmt(masks["iou_defect"])],
                    ["per-image IoU, good images (1 = left clean)", fmt(masks["iou_good"])],
                    ["mask AP (COCO, one class)", fmt(masks["mask_ap"])],
                    ["mask AP50", fmt(masks["mask_ap50"])],
                ],
            ),
            "",
        ]
    return "\n".join(lines)


def fmt_value(figure: float | None) -> str:
    """A threshold or map value of ``report.md`` that a user may pass back (``--threshold``), to six
    significant digits as the printed lines give it: ``3.60981``, ``1.234e-05`` (four decimals read
    ``0.0000``), ``-`` for missing or NaN.

    >>> fmt_value(3.6098123), fmt_value(0.00001234), fmt_value(float("nan"))
    ('3.60981', '1.234e-05', '-')
    """
    return "-" if undefined(figure) else f"{figure:.6g}"


def undefined(value: float | None) -> bool:
    """A figure that is not defined: NaN, or ``None`` as strict JSON writes it back."""
    return value is None or value != value  # NaN of any float type


def undefined_notes(metrics: Mapping) -> list[str]:
    """Why the figures that are not defined are not, and which images the pixel figures leave out, one
    sentence per cause (no trailing full stop).

    The report's ``-`` and the printed ``undefined`` say that a figure is missing, not why: a split of
    defect images only has no image AUROC, one of good images only no image or pixel AUROC at all. Defect
    images without a mask (``pixel`` ``defect_images_without_mask``) count in the image figures only.

    >>> image = {"images": 3, "defect_images": 3, "auroc": None}
    >>> undefined_notes({"image": image, "pixel": {"auroc": 0.9}})
    ['no good image was scored: image AUROC, F1-max and the AUROC per defect type are undefined']
    """
    image, pixel = metrics["image"], metrics["pixel"]
    good, defect = image["images"] - image["defect_images"], image["defect_images"]
    unmasked = pixel.get("defect_images_without_mask", 0)  # absent from reports written before it
    pixel_figures = (
        "pixel AUROC, AUPRO, pixel F1-max and the mask scores"
        if "masks" in metrics
        else "pixel AUROC, AUPRO and pixel F1-max"
    )
    notes = []
    if not good and defect:
        notes.append(
            "no good image was scored: image AUROC, F1-max and the AUROC per defect type are undefined"
        )
    if not defect:
        notes.append(
            "no defect image was scored: image AUROC, F1-max, pixel AUROC, AUPRO and pixel F1-max are "
            "undefined"
        )
    elif unmasked == defect:
        notes.append(
            f"no defect image has a mask (none of {defect}): {pixel_figures} are undefined; the image "
            "figures score them by their folder"
        )
    elif undefined(pixel["auroc"]):
        notes.append(
            "no defect pixel is left on the model's input grid (masks empty or too small): pixel AUROC, "
            "AUPRO and pixel F1-max are undefined"
        )
    if 0 < unmasked < defect:
        notes.append(
            f"{unmasked} of {defect} defect images have no mask: scored in the image figures, left out of "
            f"{pixel_figures}"
        )
    return notes


def per_defect_lines(per_defect: Mapping) -> list[str]:
    """``report.md``'s AUROC per defect type; one line when no defect image was scored (its table was
    a header with no rows)."""
    if not per_defect:
        return ["Image AUROC per defect type: no defect image was scored.", ""]
    rows = [[defect, fmt(value)] for defect, value in per_defect.items()]
    heading = "Image AUROC per defect type (its images against the good ones):"
    return [heading, "", markdown_table(["defect", "AUROC"], rows), ""]


def scores_csv(keys: Sequence[str], defects: Sequence[str], scores: Sequence[float]) -> str:
    """``key,defect,score`` per image."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["key", "defect", "score"])
    writer.writerows(
        [key, defect, f"{score:.6g}"] for key, defect, score in zip(keys, defects, scores, strict=True)
    )
    return buffer.getvalue()


def write_report(out, metrics: Mapping, settings: Mapping, rows: tuple[list, list, list]) -> None:
    """``metrics.json`` (with the package ``versions`` its figures depend on), ``report.md`` and
    ``scores.csv`` into ``out`` (each atomically)."""
    record = {"settings": settings, **metrics, "versions": package_versions()}
    atomic_write(out / "metrics.json", json_text(record, indent=1, default=str) + "\n")
    atomic_write(out / "report.md", markdown(metrics, settings))
    atomic_write(out / "scores.csv", scores_csv(*rows))


def map_figure(examples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], vmax: float) -> bytes:
    """A PNG: per example, the photo, its ground truth and the anomaly map over the photo.

    Args:
        examples: ``(title, rgb (H, W, 3) uint8, mask (H, W) bool or float in [0, 1], map (H, W) float)``.
        vmax: map value shown at full colour (the same for every example, so they compare).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(examples), 3, figsize=(7.5, 2.5 * len(examples)), squeeze=False)
    for row, (title, rgb, mask, anomaly_map) in zip(axes, examples, strict=True):
        row[0].imshow(rgb)
        row[0].set_title(title, fontsize=8)
        row[1].imshow(mask, cmap="gray", vmin=0, vmax=1)
        row[1].set_title("ground truth", fontsize=8)
        row[2].imshow(rgb)
        row[2].imshow(anomaly_map, cmap="jet", alpha=0.5, vmin=0, vmax=vmax)
        row[2].set_title("PatchCore anomaly map", fontsize=8)
        for axis in row:
            axis.axis("off")
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()
