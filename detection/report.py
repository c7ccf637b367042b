"""What an evaluation measured: one record, its printed summary, and the files it is saved as."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.extras import package_versions
from common.io import atomic_write, json_text
from common.tables import fmt
from detection.image_level import GOOD, ImageLevelReport

#: The files :func:`write_report` puts into an evaluation's folder.
REPORT_JSON = "evaluation.json"
REPORT_TEXT = "report.txt"
#: The line that stands for the mAP50 gap on a split without a true box (ultralytics prints 0 there); its
#: COCOeval mAP is printed ``-``, as an undefined figure in the tables (:func:`common.tables.fmt`).
NO_TRUE_BOX = "  no true box in this split: no mAP is defined (ultralytics' 0.000 stands for none)"


@dataclass
class EvaluationReport:
    """Everything :func:`detection.evaluate.evaluate` measured (also written as ``evaluation.json``).

    Attributes:
        weights, data, split: what was scored on what.
        ultralytics: the validator's figures (``metrics/mAP50(B)``, ...).
        per_class: the validator's per-class rows (``Class``, ``Images``, ``Instances``, ``Box-P``, ...).
        coco: :func:`detection.coco.coco_map`'s figures, None without a COCO file.
        image_level: accuracy, confusion matrix and AUROC of the images' calls.
        save_dir: the output folder.
        notes: what was skipped and why.
        tiling: ``{"tile", "overlap", "imgsz"}`` of tiled inference, None for whole images.
        imgsz: the size the photos (or windows) were letterboxed to, rounded up to the model's stride
            as ultralytics runs it; None where unknown.
        batch, device: the validator's batch size and the device it ran on, as torch names it
            (``cuda:0``, as ``detection.predict``'s ``predict.json``); None where unknown.
        versions: the packages the figures depend on (:func:`common.extras.package_versions`).
    """

    weights: str
    data: str
    split: str
    ultralytics: dict[str, float]
    per_class: list[dict[str, Any]]
    coco: dict[str, Any] | None
    image_level: ImageLevelReport
    save_dir: str
    notes: list[str] = field(default_factory=list)
    tiling: dict[str, float] | None = None
    imgsz: int | None = None
    batch: int | None = None
    device: str | None = None
    versions: dict[str, str | None] = field(default_factory=package_versions)


def write_report(report: EvaluationReport, folder: str | Path) -> Path:
    """Writes ``evaluation.json`` and ``report.txt`` (:func:`format_report`) into ``folder``, atomically.

    ``evaluation.json`` is strict JSON: an undefined figure (the AUROC of a split without good images)
    is ``null``.

    Returns:
        The path of ``evaluation.json``.
    """
    folder = Path(folder)
    atomic_write(folder / REPORT_TEXT, format_report(report) + "\n")
    return atomic_write(folder / REPORT_JSON, json_text(asdict(report), indent=1) + "\n")


def format_report(report: EvaluationReport) -> str:
    """The printed summary: box mAP both ways, per-class AP, image-level accuracy, confusion matrix, AUROC."""
    lines = [f"Evaluation of {report.weights} on the {report.split} split of {report.data}"]
    if report.imgsz is not None and not report.tiling:
        lines[0] += f" at imgsz {report.imgsz}"
    if report.tiling:
        t = report.tiling
        lines.append(
            f"tiled inference: {t['tile']}-px windows, overlap {t['overlap']:g}, each at imgsz {t['imgsz']}"
        )
    lines += ["", *box_lines(report), "", *class_lines(report), "", *image_level_lines(report.image_level)]
    notes = [n if n.startswith("warning: ") else f"note: {n}" for n in report.notes]  # not "note: warning:"
    lines += [*notes, "", f"Results in {report.save_dir} ({REPORT_JSON})"]
    return "\n".join(lines)


def box_lines(report: EvaluationReport) -> list[str]:
    """Box mAP50, mAP50-95, precision and recall from ultralytics, then COCOeval's mAP and the gap."""
    u = report.ultralytics
    map50, map50_95, precision, recall = (
        u.get(f"metrics/{k}(B)", 0.0) for k in ("mAP50", "mAP50-95", "precision", "recall")
    )
    lines = [
        f"{'box metrics':24s}{'mAP50':>10s}{'mAP50-95':>10s}{'P':>8s}{'R':>8s}",
        f"{'ultralytics validator':24s}{map50:10.3f}{map50_95:10.3f}{precision:8.3f}{recall:8.3f}",
    ]
    if report.coco is not None:
        coco = report.coco
        lines.append(f"{'pycocotools COCOeval':24s}{fmt(coco['mAP50']):>10s}{fmt(coco['mAP50-95']):>10s}")
        if math.isnan(coco["mAP50"]):
            lines.append(NO_TRUE_BOX)
            return lines
        gap = (
            round(coco["mAP50"] - map50, 3) + 0.0
        )  # + 0.0: a gap that rounds to nothing is +0.000, not -0.000
        lines.append(f"  mAP50 gap (COCO - ultralytics): {gap:+.3f}")
    return lines


def class_lines(report: EvaluationReport) -> list[str]:
    """One row per class: ultralytics' images, boxes, P, R, AP50, AP50-95, and COCOeval's AP50."""
    coco_classes = report.coco["per_class"] if report.coco is not None else {}
    header = f"{'class':24s}{'images':>8s}{'boxes':>8s}{'P':>8s}{'R':>8s}{'AP50':>8s}{'AP50-95':>9s}"
    lines = [header + (f"{'COCO AP50':>11s}" if coco_classes else "")]
    for row in report.per_class:
        coco_ap = coco_classes.get(str(row["Class"]), {}).get("AP50")
        lines.append(
            f"{str(row['Class'])[:24]:24s}{row['Images']:8d}{row['Instances']:8d}{row['Box-P']:8.3f}"
            f"{row['Box-R']:8.3f}{row['mAP50']:8.3f}{row['mAP50-95']:9.3f}"
            + (f"{fmt(coco_ap):>11s}" if coco_ap is not None else "")
        )
    return lines


def image_level_lines(level: ImageLevelReport) -> list[str]:
    """Defect-type accuracy, balanced accuracy, AUROC, and the confusion matrix with per-row accuracy.

    An undefined figure is ``-``, as in the tables (:func:`common.tables.fmt`); an undefined AUROC with a
    line saying why.
    """
    lines = [
        f"image level ({level.n_images} images; class = top box with score >= {level.conf:.6g}, else good):",
        f"  defect-type accuracy {fmt(level.accuracy)}   balanced {fmt(level.balanced_accuracy)}   "
        f"anomaly AUROC (top box score) {fmt(level.auroc)}",
    ]
    if math.isnan(level.auroc):
        lines.append(no_auroc_line(level))
    lines.append("  confusion matrix (rows: true, columns: predicted)")
    width = max(8, *(len(label) + 2 for label in level.labels))
    lines.append("  " + " " * width + "".join(f"{label[: width - 1]:>{width}s}" for label in level.labels))
    for label, row in zip(level.labels, level.matrix, strict=True):
        accuracy = level.per_label_accuracy.get(label)
        tail = f"   acc {fmt(accuracy)}" if accuracy is not None else ""
        lines.append(f"  {label[:width]:{width}s}" + "".join(f"{n:{width}d}" for n in row) + tail)
    return lines


def no_auroc_line(level: ImageLevelReport) -> str:
    """Why the anomaly AUROC is undefined: the split lacks good images or defect images."""
    good = sum(sum(row) for label, row in zip(level.labels, level.matrix, strict=True) if label == GOOD)
    lacking = "good image" if good == 0 else "defect image"
    return f"  no {lacking} in this split: no anomaly AUROC is defined"
