"""The evaluation report: ``metrics.json``, ``report.md`` and one self-contained ``report.html``.

The HTML file carries its figures (precision-recall curves, confusion matrix,
per-class bars of oracle vs end-to-end mask AP) and a gallery of the best and
worst overlays as inline images, so it can be opened anywhere or mailed; only
its links to the full-size overlays (``overlays/`` beside it) need the folder.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.extras import package_versions
from common.io import atomic_write, json_text
from common.tables import fmt, markdown_table
from detection.image_level import TIES_WORDS

#: The file of the figures, which every evaluation writes.
METRICS_FILE = "metrics.json"
#: Files :func:`write_report` writes into the evaluation folder.
REPORT_FILES = (METRICS_FILE, "report.md", "report.html")


@dataclass(frozen=True)
class GalleryItem:
    """One overlay of the report's gallery: a JPEG, its caption, and the full-size overlay's path if any."""

    caption: str
    jpeg: bytes
    link: str | None = None
    group: str = ""  # "worst" or "best" where the gallery shows only some of the photos


def class_rows(metrics: Mapping) -> list[list[str]]:
    """Rows ``class, box AP50, box AP50-95, mask AP50 e2e, mask AP50 oracle, mask AP e2e, mask AP oracle``.

    Every class of the ground truth's categories (``image_level``'s ``true_labels`` after ``good``) has a
    row: one without an instance in the split has no AP (``-``, :data:`NO_TRUTH_NOTE`); its row was left
    out, and the class with it.
    """
    rank = metrics["rank_by"]
    box, mask, oracle = metrics["box"], metrics["mask"][rank], metrics["mask_oracle"]
    categories = list(metrics.get("image_level", {}).get("true_labels", ()))[1:]  # after good
    names = sorted(
        set(box["per_class"]) | set(mask["per_class"]) | set(oracle["per_class"]) | set(categories)
    )

    def row(label: str, pick) -> list[str]:
        return [label, *(fmt(pick(table, key)) for table, key in _COLUMNS(box, mask, oracle))]

    rows = [row(name, lambda table, key, n=name: table["per_class"].get(n, {}).get(key)) for name in names]
    rows.append(row("**all**", lambda table, key: table.get(key)))
    return rows


def _COLUMNS(box: Mapping, mask: Mapping, oracle: Mapping) -> list[tuple[Mapping, str]]:  # noqa: N802
    return [(box, "AP50"), (box, "AP"), (mask, "AP50"), (oracle, "AP50"), (mask, "AP"), (oracle, "AP")]


HEADER = ["class", "box AP50", "box AP50-95", "mask AP50", "mask AP50 oracle", "mask AP", "mask AP oracle"]


#: The summary's row of the pixel figures, which like the APs are at the operating point: the cascade keeps
#: no box below the threshold, so a photo without one has a map of 0 (they move with ``--conf``).
PIXEL_ROW = "pixel AUROC / AUPRO (FPR <= 0.3, normalised; maps of the boxes at or above the threshold)"
#: The image AUROC's row: each photo's top box score from the detector's one pass down to 0.001, as
#: ``detection.evaluate``'s (``inspection.evaluate.PICK_FLOOR``), whatever the threshold; it was the top box
#: at or above it, 0 without one, and moved with ``--conf``.
IMAGE_AUROC_ROW = "image AUROC (top box score down to 0.001, whatever the threshold)"
#: Its row with ``--anomaly-run``: a photo with an anomaly region scores at least the threshold (the region's
#: box score is ``conf``, and the regions kept depend on the boxes above it), so this AUROC moves with it.
#: PatchCore's map values and the detector's box scores share no scale: no rule combines them here.
IMAGE_AUROC_REGIONS_ROW = (
    "image AUROC (top box score down to 0.001, or the threshold on a photo with an anomaly region: "
    "moves with the threshold)"
)


def image_auroc_row(settings: Mapping | None = None) -> str:
    """The image AUROC's row name: :data:`IMAGE_AUROC_REGIONS_ROW` with ``--anomaly-run``'s regions
    (``settings['anomaly_regions']``), else :data:`IMAGE_AUROC_ROW`."""
    return IMAGE_AUROC_REGIONS_ROW if (settings or {}).get("anomaly_regions") else IMAGE_AUROC_ROW


def summary_rows(metrics: Mapping, settings: Mapping | None = None) -> list[list[str]]:
    """The headline figures as ``(name, value)`` rows; the operating point's from ``settings``."""
    per_image, pixel, level = metrics["per_image"], metrics["pixel"], metrics["image_level"]
    ranks = ", ".join(f"{rank} {fmt(metrics['mask'][rank]['AP'])}" for rank in metrics["mask"])
    any_class = metrics["mask_any_class"][metrics["rank_by"]]
    return [
        ["box threshold (operating point)", threshold(level, settings or {})],
        ["images (defect / good)", f"{metrics['images']} ({metrics['defect_images']} / "
         f"{metrics['images'] - metrics['defect_images']})"],
        ["ground-truth instances / detections", f"{metrics['instances']} / {metrics['detections']}"
         f"{dropped_note(settings or {})}{anomaly_note(settings or {})}"],
        ["mask AP by ranking score",
         f"{ranks} (--rank-by {metrics['rank_by']}, predictions.json's score, is used below; choose it "
         "on another split)"],
        ["mask AP / AP50, any defect type (class-agnostic)",
         f"{fmt(any_class['AP'])} / {fmt(any_class['AP50'])}"],
        ["per-image IoU / Dice, all images",
         f"{fmt(per_image['all']['iou'])} / {fmt(per_image['all']['dice'])}"],
        ["per-image IoU / Dice / boundary IoU, defect images",
         f"{fmt(per_image['defect']['iou'])} / {fmt(per_image['defect']['dice'])} / "
         f"{fmt(per_image['defect']['boundary_iou'])}"],
        ["per-image IoU / boundary IoU, defect images, oracle (SAM from the true boxes)",
         f"{fmt(per_image['defect']['oracle_iou'])} / {fmt(per_image['defect']['oracle_boundary_iou'])}"],
        ["per-image IoU, good images (1 = left clean)", fmt(per_image["good"]["iou"])],
        [PIXEL_ROW, f"{fmt(pixel['auroc'])} / {fmt(pixel['aupro'])}"],
        ["defect-type accuracy (balanced)", f"{fmt(level['accuracy'])} ({fmt(level['balanced_accuracy'])})"],
        [image_auroc_row(settings), fmt(level["auroc"])],
    ]  # fmt: skip


def threshold(level: Mapping, settings: Mapping) -> str:
    """The cascade's box threshold, and where it was picked with its defect-type accuracy there (the
    detector's alone with ``--anomaly-run``: the pick runs no PatchCore, whose regions then call photos
    ``anomaly`` in the scored split), or that it was kept (:func:`conf_source`)."""
    conf = level.get("conf", settings.get("conf"))
    text = "-" if conf is None else f"{conf:.6g}"  # as printed: the value to pass as --conf
    if settings.get("conf_from"):
        accuracy = settings.get("conf_picked_accuracy")
        # the pick runs the detector alone: --anomaly-run's regions call photos only in the scored split
        regions = settings.get("anomaly_regions")
        alone = ", the detector's alone, without PatchCore's regions" if regions else ""
        where = conf_source(settings)
        text += f" ({where}, defect-type accuracy there {fmt(accuracy)}{alone})"
        if warning := settings.get("conf_pick_warning"):
            text += f"; {warning.removeprefix('warning: ')}"
    return text


def dropped_note(settings: Mapping) -> str:
    """`` (N duplicate masks dropped, --mask-iou T)`` from a run's settings when the mask NMS dropped
    any (``duplicate_masks_dropped``, ``mask_iou``); else empty."""
    dropped = settings.get("duplicate_masks_dropped") or 0
    if not dropped:
        return ""
    masks = "mask" if dropped == 1 else "masks"
    return f" ({dropped} duplicate {masks} dropped, --mask-iou {settings['mask_iou']:g})"


def regions_note(count: int, threshold: float) -> str:
    """``; N of them PatchCore's regions (--anomaly-run, map threshold T)``: the count of the regions'
    instances that a bare total hides (``inspection.predict``'s summary line, ``inspection.evaluate``'s
    and its report's row of detections).

    >>> regions_note(7, 3.50921)
    "; 7 of them PatchCore's regions (--anomaly-run, map threshold 3.509)"
    """
    return f"; {count} of them PatchCore's regions (--anomaly-run, map threshold {threshold:.4g})"


def anomaly_note(settings: Mapping) -> str:
    """How many of the detections ``--anomaly-run``'s regions gave (:func:`regions_note`) from an
    evaluation's settings (``anomaly_regions``, ``anomaly_detections``), else empty."""
    regions = settings.get("anomaly_regions")
    if not regions or "anomaly_detections" not in settings:
        return ""
    return regions_note(settings["anomaly_detections"], float(regions["threshold"]))


#: What a class row of dashes means (the reports' sentence before the per-class table).
NO_TRUTH_NOTE = (
    "A class without a ground-truth instance in the split has no AP (-): COCO scores its detections in "
    "no class, so they count only in the class-agnostic AP."
)


def conf_source(settings: Mapping) -> str:
    """Where ``--conf-from`` took the threshold from: ``picked on the val split``, or ``kept: nothing to
    pick it from on the val split`` where the detector boxed nothing there (``settings['conf_picked']``
    False: ``--conf`` kept as given), or ``not picked: every threshold ties on the val split``
    (:func:`conf_ties`)."""
    picked = settings.get("conf_picked", True)  # metrics.json before it was recorded: picked
    how = "picked on" if picked else "kept: nothing to pick it from on"
    if picked and conf_ties(settings):
        how = "not picked: every threshold ties on"
    return f"{how} the {settings['conf_from']} split"


def conf_ties(settings: Mapping) -> bool:
    """Whether the recorded ``--conf-from`` pick is no pick: every threshold gave its split the same
    defect-type accuracy (:func:`~detection.image_level.conf_ties_warning`), ``conf`` only ``--conf``'s
    nearest candidate."""
    return TIES_WORDS in (settings.get("conf_pick_warning") or "")


def operating_point(settings: Mapping) -> str:
    """What the APs are measured on: the cascade keeps only boxes at or above its threshold."""
    picked = f", {conf_source(settings)}" if settings.get("conf_from") else ""
    conf = settings.get("conf")
    return (
        "Mask AP is COCO's AP@[.50:.95]. Boxes below the cascade's threshold "
        f"(conf {'-' if conf is None else f'{conf:.6g}'}{picked}) "
        "are dropped before scoring, and so are those whose mask duplicates a better one's (--mask-iou "
        f"{settings.get('mask_iou', 1)}), so these APs are at the operating point; detection.evaluate scores "
        "every box down to 0.001 and so reports a higher box AP (pass --conf 0.001 here to compare, at "
        f"the cost of a SAM mask per box). {NO_TRUTH_NOTE}"
    )


#: Columns of the report's list of photos called wrong (:func:`wrong_rows`; :func:`wrong_header` names
#: the score's column with ``--anomaly-run``).
WRONG_HEADER = ["photo", "true", "called", "top box score", "per-image IoU", "oracle IoU"]
#: The score's column with ``--anomaly-run``: a photo with an anomaly region scores at least the threshold.
REGION_SCORE = "top box or anomaly region score"


def wrong_header(settings: Mapping | None = None) -> list[str]:
    """:data:`WRONG_HEADER`, its score's column :data:`REGION_SCORE` with ``--anomaly-run``'s regions."""
    if not (settings or {}).get("anomaly_regions"):
        return list(WRONG_HEADER)
    return [REGION_SCORE if column == "top box score" else column for column in WRONG_HEADER]


def wrong_photos(metrics: Mapping) -> list[Mapping]:
    """The photos whose verdict is not their truth, highest top box score first (``metrics['photos']``'
    ``score``, the image score down to 0.001: a photo called good shows its top box below the threshold)."""
    wrong = [photo for photo in metrics.get("photos", ()) if photo["verdict"] != photo["truth"]]
    return sorted(wrong, key=lambda photo: -photo["score"])


def wrong_rows(metrics: Mapping) -> list[list[str]]:
    """The rows of :func:`wrong_photos`: name, truth, call, score, per-image IoU, the oracle's."""
    return [
        [photo["file_name"], photo["truth"], photo["verdict"], fmt(photo["score"]), fmt(photo["iou"]),
         fmt(photo["oracle_iou"]) if photo["truth"] != "good" else ""]
        for photo in wrong_photos(metrics)
    ]  # fmt: skip


def wrong_section(metrics: Mapping, settings: Mapping | None = None) -> tuple[str, list[list[str]]]:
    """The sentence before the list of photos called wrong, and its rows (none: the sentence says so);
    with ``--anomaly-run``'s regions (``settings``) it says what a photo's score is then."""
    rows = wrong_rows(metrics)
    total = len(metrics.get("photos", ()))
    if not rows:
        return f"Every one of the {total} photos was called right.", rows
    score = "top box score"
    if (settings or {}).get("anomaly_regions"):
        score = (
            "score (a photo's top box score, or the threshold where PatchCore gave it an anomaly region "
            "and its top box is below it)"
        )
    return (
        f"{len(rows)} of {total} photos called wrong, highest {score} first (the verdict is the top "
        "box's class at or above the threshold, else good, so a photo called good shows its top box below "
        "it; every photo's figures are in metrics.json's photos):",
        rows,
    )


def report_title(settings: Mapping) -> str:
    """``Inspection of <data> (<split> split) by <detector>``: the detector's last three path parts
    (``<run>/weights/best.pt``), so two reports on one split tell their detectors apart."""
    title = f"Inspection of {settings.get('data', '?')} ({settings.get('split', '?')} split)"
    if settings.get("detector"):
        title += f" by {'/'.join(Path(str(settings['detector'])).parts[-3:])}"
    return title


def confusion_rows(level: Mapping, bold: bool = False) -> list[list[str]]:
    """The confusion matrix's rows, each led by its true label: ``true_labels`` (good and the ground
    truth's classes), not ``labels``, the calls (the columns; with ``--anomaly-run`` ``anomaly`` too,
    which is no photo's truth)."""
    return [
        [f"**{label}**" if bold else label, *map(str, counts)]
        for label, counts in zip(level["true_labels"], level["matrix"], strict=True)
    ]


def confusion_table(level: Mapping) -> str:
    return markdown_table(["true / called", *level["labels"]], confusion_rows(level, bold=True))


def markdown(metrics: Mapping, settings: Mapping) -> str:
    """``report.md``: headline figures, the per-class table, the confusion matrix, the photos called
    wrong, and the settings last (as report.html)."""
    lines = [
        f"# {report_title(settings)}",
        "",
        markdown_table(["figure", "value"], summary_rows(metrics, settings)),
        "",
        "Per class: the cascade's boxes and masks (end to end) beside SAM prompted with the ground-truth "
        f"boxes (oracle). {operating_point(settings)}",
        "",
        markdown_table(HEADER, class_rows(metrics)),
        "",
        "Image calls (rows: ground truth, columns: the cascade's verdict):",
        "",
        confusion_table(metrics["image_level"]),
        "",
    ]
    sentence, rows = wrong_section(metrics, settings)
    lines += [sentence, ""] + ([markdown_table(wrong_header(settings), rows), ""] if rows else [])
    lines += [
        "## Settings",
        "",
        "- " + "\n- ".join(f"{key}: `{value}`" for key, value in settings_text(settings)),
        "",
    ]
    return "\n".join(lines)


# --- figures -----------------------------------------------------------------------------------------


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pr_figure(metrics: Mapping) -> bytes:
    """Precision-recall at IoU 0.5: the cascade's boxes; its masks beside the oracle's."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    rank = metrics["rank_by"]
    curves = [
        (left, "boxes (cascade)", metrics["box"]["pr50"], "tab:blue"),
        (right, f"masks, end to end (ranked by {rank})", metrics["mask"][rank]["pr50"], "tab:orange"),
        (right, "masks, oracle boxes", metrics["mask_oracle"]["pr50"], "tab:green"),
    ]  # fmt: skip
    for axis, label, curve, colour in curves:
        axis.plot(curve["recall"], curve["precision"], label=label, color=colour)
    for axis, title in ((left, "box PR @ IoU 0.5"), (right, "mask PR @ IoU 0.5")):
        # up to 1.05: a curve at precision 1 (the oracle's, often) would lie on the frame
        axis.set(title=title, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.05))
        axis.legend(loc="lower left", fontsize=8)
    return _png(figure)


def confusion_figure(level: Mapping) -> bytes:
    """The confusion matrix of the image calls, counts in the cells: a row per true label, a column per
    call (``anomaly``, with ``--anomaly-run``, is a column only)."""
    plt = _pyplot()
    labels, true_labels, matrix = level["labels"], level["true_labels"], level["matrix"]
    size = 1.2 + 0.55 * len(true_labels)
    figure, axis = plt.subplots(figsize=(1.2 + 0.55 * len(labels) + 1, size))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(true_labels)), true_labels)
    axis.set(xlabel="called", ylabel="true", title="image calls")
    top = max(max(row) for row in matrix) if matrix else 0
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            axis.text(
                j, i, str(count), ha="center", va="center", color="white" if count > top / 2 else "black"
            )
    figure.colorbar(image, ax=axis, fraction=0.046)
    return _png(figure)


def class_bars_figure(metrics: Mapping) -> bytes:
    """Per-class mask AP: end to end beside the oracle (the gap is what detection costs)."""
    plt = _pyplot()
    mask, oracle = metrics["mask"][metrics["rank_by"]], metrics["mask_oracle"]
    names = sorted(set(mask["per_class"]) | set(oracle["per_class"]))
    figure, axis = plt.subplots(figsize=(max(4.5, 1.1 * len(names) + 2), 3.4))
    xs = range(len(names))
    for offset, (label, table, colour) in zip(
        (-0.2, 0.2), (("end to end", mask, "tab:orange"), ("oracle boxes", oracle, "tab:green")), strict=True
    ):
        values = [table["per_class"].get(name, {}).get("AP", 0.0) for name in names]
        axis.bar([x + offset for x in xs], values, width=0.4, label=label, color=colour)
    axis.set_xticks(list(xs), names, rotation=30, ha="right")
    axis.set(ylabel="mask AP@[.50:.95]", ylim=(0, 1), title="mask AP per class")
    axis.legend(fontsize=8)
    return _png(figure)


# --- HTML --------------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.settings{font-size:.85em;color:#555}.figs img{max-width:100%;margin:6px 0}
.gallery{display:flex;flex-wrap:wrap;gap:10px}.gallery figure{margin:0;width:320px}
.gallery img{width:320px;border:1px solid #ccc}.gallery figcaption{font-size:.8em;color:#333}
"""


def _img(data: bytes, mime: str, alt: str, width: str | None = None) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    style = f' style="width:{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{encoded}"{style}>'


def _html_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], links: Sequence[str | None] = ()
) -> str:
    """A table; ``links[i]``, where given, turns row ``i``'s first cell into a link."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            _html_cell(cell, index, links[number] if index == 0 and number < len(links) else None)
            for index, cell in enumerate(row)
        )
        + "</tr>"
        for number, row in enumerate(rows)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _linked(inner: str, link: str | None) -> str:
    """``inner`` inside a link to a file beside the report, or as it is without one."""
    if not link:
        return inner
    return f'<a href="{html.escape(urllib.parse.quote(link))}" target="_blank">{inner}</a>'


#: The gallery's headings, where it shows the worst and the best photos of a larger split.
GALLERY_GROUPS = {"worst": "Worst per-image IoU, worst first", "best": "Best per-image IoU"}


def _gallery_html(gallery: Sequence[GalleryItem]) -> str:
    """The gallery's pictures, under a heading per group where it shows only the worst and best."""
    parts = []
    for group, items in itertools.groupby(gallery, key=lambda item: item.group):
        cards = "".join(
            f"<figure>{_linked(_img(item.jpeg, 'image/jpeg', item.caption), item.link)}"
            f"<figcaption>{html.escape(item.caption)}</figcaption></figure>"
            for item in items
        )
        parts.append(
            f"{f'<h3>{GALLERY_GROUPS[group]}</h3>' if group else ''}<div class='gallery'>{cards}</div>"
        )
    return "".join(parts) or "<div class='gallery'></div>"


def _gallery_note(gallery: Sequence[GalleryItem]) -> str:
    if not any(item.link for item in gallery):
        return ""
    return (
        " Click a picture for the full-size overlay (overlays/, beside this file: keep the folder "
        "together to follow the links)."
    )


def wrong_links(metrics: Mapping) -> list[str | None]:
    """The full-size overlay of each row of :func:`wrong_rows`, in its order (None: not drawn)."""
    return [photo.get("overlay") for photo in wrong_photos(metrics)]


def _html_cell(cell: str, index: int, link: str | None = None) -> str:
    bold = cell.startswith("**") and cell.endswith("**")
    text = html.escape(cell.strip("*") if bold else cell)
    text = _linked(f"<b>{text}</b>" if bold else text, link)
    return f'<td class="n">{text}</td>' if index else f"<td>{text}</td>"


def settings_text(settings: Mapping) -> list[tuple[str, str]]:
    """The report's Settings list: each key and its value as text, as ``metrics.json`` holds them.

    ``sam: None`` (no ``--sam``) read as if no SAM had made the masks: it says zero-shot SAM.
    """
    rows = [(str(key), str(value)) for key, value in settings.items()]
    return [
        (key, f"None (zero-shot SAM: the official {settings.get('model')} weights)")
        if key == "sam" and settings.get("sam") is None
        else (key, value)
        for key, value in rows
    ]


def html_report(metrics: Mapping, settings: Mapping, gallery: Sequence[GalleryItem]) -> str:
    """``report.html``: one file with every table, figure and gallery image inline."""
    settings_rows = "".join(
        f"<li>{html.escape(str(key))}: <code>{html.escape(value)}</code></li>"
        for key, value in settings_text(settings)
    )
    level = metrics["image_level"]
    figures = [
        _img(pr_figure(metrics), "image/png", "precision-recall curves"),
        _img(class_bars_figure(metrics), "image/png", "mask AP per class"),
        _img(confusion_figure(level), "image/png", "confusion matrix", width="420px"),
    ]
    title = report_title(settings)
    sentence, wrong = wrong_section(metrics, settings)
    wrong_table = _html_table(wrong_header(settings), wrong, wrong_links(metrics)) if wrong else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<h2>Summary</h2>{_html_table(['figure', 'value'], summary_rows(metrics, settings))}"
        "<h2>Per class: end to end vs oracle boxes</h2>"
        "<p>The cascade's boxes and masks beside SAM prompted with the ground-truth boxes. "
        f"{html.escape(operating_point(settings))}</p>"
        f"{_html_table(HEADER, class_rows(metrics))}"
        f"<h2>Figures</h2><div class='figs'>{''.join(figures)}</div>"
        f"<h2>Image calls</h2>{_html_table(['true / called', *level['labels']], confusion_rows(level))}"
        f"<p>{html.escape(sentence)}</p>{wrong_table}"
        "<h2>Gallery: worst and best images by per-image IoU</h2>"
        "<p>Green: the ground truth's outline; filled and outlined in white: the cascade's masks; boxes "
        f"with class and score.{_gallery_note(gallery)}</p>"
        f"{_gallery_html(gallery)}"
        f"<h2>Settings</h2><details><summary>how this report was made</summary>"
        f"<ul class='settings'>{settings_rows}</ul></details></body></html>"
    )


def write_report(
    folder: Path, metrics: Mapping, settings: Mapping, gallery: Sequence[GalleryItem] = ()
) -> dict[str, Path]:
    """Writes ``metrics.json`` (with the package ``versions`` its figures depend on), ``report.md`` and
    ``report.html`` atomically; returns their paths."""
    paths = {name: Path(folder) / name for name in REPORT_FILES}
    record = {"settings": dict(settings), **metrics, "versions": package_versions()}
    atomic_write(paths["metrics.json"], json_text(record, indent=1) + "\n")
    atomic_write(paths["report.md"], markdown(metrics, settings))
    atomic_write(paths["report.html"], html_report(metrics, settings, gallery))
    return paths
