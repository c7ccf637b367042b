"""``inspection.report``: the tables of the report from a hand-made ``metrics.json``."""

from __future__ import annotations

import html

import pytest

from inspection.report import HEADER, _html_table, class_rows, operating_point, summary_rows


def table(ap: float, ap50: float, **per_class: tuple[float, float]) -> dict:
    return {"AP": ap, "AP50": ap50, "per_class": {n: {"AP": a, "AP50": b} for n, (a, b) in per_class.items()}}


def figures() -> dict:
    group = {"iou": 0.5, "dice": 0.6, "boundary_iou": 0.4, "oracle_iou": 0.7, "oracle_boundary_iou": 0.65}
    whole = {key: value for key, value in group.items() if not key.startswith("oracle_")}
    return {
        "images": 5,
        "defect_images": 2,
        "instances": 3,
        "detections": 4,
        "rank_by": "mask",
        "box": table(0.5, 0.6, scratch=(0.4, 0.5)),
        "mask": {
            "box": table(0.1, 0.2, scratch=(0.11, 0.21)),
            "mask": table(0.3, 0.7, scratch=(0.25, 0.65)),
            "product": table(0.2, 0.3, scratch=(0.12, 0.22)),
        },
        "mask_any_class": {"box": {"AP": 0.15, "AP50": 0.25}, "mask": {"AP": 0.35, "AP50": 0.75}},
        "mask_oracle": table(0.8, 0.9, scratch=(0.75, 0.85), stain=(0.81, 0.91)),
        # the oracle's figures over the defect images alone (inspection.scoring.ORACLE_FIGURES)
        "per_image": {"all": whole, "defect": group, "good": {**whole, "iou": 1.0}},
        "pixel": {"auroc": 0.95, "aupro": 0.8},
        "image_level": {"accuracy": 0.8, "balanced_accuracy": 0.75, "auroc": 0.9},
    }


@pytest.fixture
def no_figures(monkeypatch) -> None:
    """report.html without its matplotlib figures (they need more metrics than these tests make)."""
    import inspection.report as report

    for figure in ("pr_figure", "class_bars_figure", "confusion_figure"):
        monkeypatch.setattr(report, figure, lambda *args: b"")


def page_figures(matrix: list[list[int]], **extra) -> dict:
    """:func:`figures` with a good/scratch confusion ``matrix`` (what report.html draws) and ``extra``."""
    labels = ["good", "scratch"]
    level = {**figures()["image_level"], "labels": labels, "true_labels": labels, "matrix": matrix}
    return {**figures(), "image_level": level, **extra}


#: --anomaly-run's image calls: 'anomaly' is a verdict (a column), no photo's truth (no row).
ANOMALY_LEVEL = {
    "labels": ["good", "scratch", "anomaly"],
    "true_labels": ["good", "scratch"],
    "matrix": [[1, 0, 2], [0, 3, 1]],
}


def test_both_reports_show_anomaly_as_a_call_never_as_a_true_row(no_figures) -> None:
    from inspection.report import html_report, markdown

    metrics = {**figures(), "image_level": {**figures()["image_level"], **ANOMALY_LEVEL}}
    page = markdown(metrics, {})
    assert "| true / called | good | scratch | anomaly |" in page
    assert "| **scratch** | 0 | 3 | 1 |" in page and "| **anomaly** |" not in page
    html = html_report(metrics, {}, [])
    assert '<tr><td>scratch</td><td class="n">0</td><td class="n">3</td><td class="n">1</td></tr>' in html
    assert "<tr><td>anomaly</td>" not in html


def test_the_confusion_figure_shows_anomaly_as_a_call_never_as_a_true_row(monkeypatch) -> None:
    import inspection.report as report

    drawn = []
    monkeypatch.setattr(report, "_png", lambda figure: drawn.append(figure) or b"")
    report.confusion_figure(ANOMALY_LEVEL)
    axis = drawn[0].axes[0]
    assert [t.get_text() for t in axis.get_xticklabels()] == ANOMALY_LEVEL["labels"]
    assert [t.get_text() for t in axis.get_yticklabels()] == ["good", "scratch"]
    drawn[0].clf()


def test_class_rows_take_the_reported_ranking_and_end_with_all_classes() -> None:
    assert class_rows(figures()) == [
        ["scratch", "0.500", "0.400", "0.650", "0.850", "0.250", "0.750"],
        ["stain", "-", "-", "-", "0.910", "-", "0.810"],
        ["**all**", "0.600", "0.500", "0.700", "0.900", "0.300", "0.800"],
    ]
    assert len(HEADER) == 7


def test_summary_rows_split_the_images_and_name_the_ranking_used() -> None:
    rows = dict(summary_rows(figures()))
    assert rows["images (defect / good)"] == "5 (2 / 3)"
    assert rows["ground-truth instances / detections"] == "3 / 4"
    assert rows["mask AP by ranking score"] == (
        "box 0.100, mask 0.300, product 0.200 (--rank-by mask, predictions.json's score, is used below; "
        "choose it on another split)"
    )
    assert rows["mask AP / AP50, any defect type (class-agnostic)"] == "0.350 / 0.750"


def test_the_detections_row_says_how_many_are_patchcores_regions(no_figures) -> None:
    # --anomaly-run: the row counted the regions with the detector's boxes, as the printed summary did
    # before f1f3e33 (metrics.json's settings hold the count as anomaly_detections)
    from inspection.report import html_report, markdown

    settings = {"anomaly_regions": {"threshold": 3.50921}, "anomaly_detections": 3}
    row = "3 / 4; 3 of them PatchCore's regions (--anomaly-run, map threshold 3.509)"
    assert dict(summary_rows(figures(), settings))["ground-truth instances / detections"] == row
    metrics = page_figures([[1, 0], [0, 1]])
    assert f"| ground-truth instances / detections | {row} |" in markdown(metrics, settings)
    assert row.replace("'", "&#x27;") in html_report(metrics, settings, [])
    plain = dict(summary_rows(figures(), {"anomaly_regions": None}))  # no --anomaly-run
    assert plain["ground-truth instances / detections"] == "3 / 4"


def test_html_tables_escape_cells_and_align_figures_right() -> None:
    html = _html_table(["class", "AP"], [["a<b", "0.500"], ["**all**", "1.000"]])
    assert html == (
        "<table><tr><th>class</th><th>AP</th></tr>"
        '<tr><td>a&lt;b</td><td class="n">0.500</td></tr>'
        '<tr><td><b>all</b></td><td class="n">1.000</td></tr></table>'
    )


def test_the_operating_point_names_the_split_the_threshold_was_picked_on() -> None:
    assert "(conf 0.25) are dropped" in operating_point({"conf": 0.25})
    assert "(conf 0.4, picked on the val split) are" in operating_point({"conf": 0.4, "conf_from": "val"})
    # The digits the summary row and the console give (6 significant), not the float's repr.
    assert "(conf 0.0523411, picked" in operating_point({"conf": 0.05234109876, "conf_from": "val"})
    assert "(conf -) are dropped" in operating_point({})  # no threshold recorded: a dash, not 'None'


def test_the_printed_summary_gives_the_merged_mask_ap_of_the_ranking_used() -> None:
    from pathlib import Path

    from inspection.evaluate import summary

    metrics = figures()
    metrics["image_level"]["conf"] = 0.25
    text = summary(metrics, Path("out"))
    assert "mask AP end to end 0.300 (ranked by mask; any defect type 0.350) vs oracle 0.800" in text


def photo(name: str, truth: str, verdict: str, score: float, iou: float) -> dict:
    counts = {"instances": int(truth != "good"), "detections": int(verdict != "good")}
    calls = {"file_name": name, "truth": truth, "verdict": verdict, "score": score}
    return {**calls, "iou": iou, "oracle_iou": 0.9, **counts}


def test_the_photos_called_wrong_are_listed_highest_top_box_score_first() -> None:
    from inspection.report import WRONG_HEADER, wrong_section

    metrics = {
        "photos": [
            photo("a.png", "scratch", "scratch", 0.9, 0.8),  # right: not listed
            photo("b.png", "good", "scratch", 0.6, 0.0),  # a false alarm
            photo("c.png", "stain", "good", 0.1, 0.0),  # a miss
            photo("d.png", "stain", "scratch", 0.95, 0.4),  # the wrong type, the highest top box
        ]
    }
    sentence, rows = wrong_section(metrics)
    # the order was "most confident call first", but a miss shows its real top box, below the threshold
    # (0.1 here; it was 0.00 until 2026-12-07): the sentence says what the order is
    assert sentence.startswith("3 of 4 photos called wrong, highest top box score first (")
    assert "a photo called good shows its top box below it;" in sentence
    assert [row[:3] for row in rows] == [
        ["d.png", "stain", "scratch"],
        ["b.png", "good", "scratch"],
        ["c.png", "stain", "good"],
    ]
    assert rows[0][3:] == ["0.950", "0.400", "0.900"] and rows[1][5] == ""  # no oracle on a good photo
    assert len(WRONG_HEADER) == len(rows[0])
    assert wrong_section({"photos": [metrics["photos"][0]]}) == (
        "Every one of the 1 photos was called right.",
        [],
    )


def test_both_reports_carry_the_list_of_photos_called_wrong(no_figures) -> None:
    from inspection.report import html_report, markdown

    metrics = page_figures(
        [[1, 1], [0, 1]],
        photos=[
            photo("b<1>.png", "good", "scratch", 0.6, 0.0),
            photo("a.png", "scratch", "scratch", 0.9, 0.8),
        ],
    )
    assert "1 of 2 photos called wrong" in markdown(
        metrics, {}
    ) and "| b<1>.png | good | scratch |" in markdown(metrics, {})
    page = html_report(metrics, {}, [])
    assert "1 of 2 photos called wrong" in page and "<td>b&lt;1&gt;.png</td>" in page


def test_with_anomaly_regions_the_photos_called_wrong_say_a_score_may_be_a_regions(no_figures) -> None:
    from inspection.report import html_report, markdown

    # --anomaly-run: a photo with an anomaly region scores the threshold even when its top box is lower, so
    # 'top box score' alone (until 2026-12-07) was wrong for it; without regions the header keeps it
    metrics = page_figures(
        [[1, 1], [0, 1]],
        photos=[photo("b.png", "good", "anomaly", 0.25, 0.0), photo("a.png", "scratch", "scratch", 0.9, 0.8)],
    )
    settings = {"anomaly_regions": {"run": "runs/anomaly/nut", "threshold": 3.5}, "conf": 0.25}
    header = "| photo | true | called | top box or anomaly region score | per-image IoU | oracle IoU |"
    sentence = (
        "1 of 2 photos called wrong, highest score (a photo's top box score, or the threshold where "
        "PatchCore gave it an anomaly region and its top box is below it) first ("
    )
    page = markdown(metrics, settings)
    assert header in page and sentence in page
    report = html_report(metrics, settings, [])
    assert "<th>top box or anomaly region score</th>" in report and html.escape(sentence) in report
    plain = markdown(metrics, {"conf": 0.25})
    assert "| called | top box score |" in plain and "highest top box score first (" in plain


def test_the_summary_starts_with_the_operating_point_and_where_it_was_picked() -> None:
    metrics = figures()
    metrics["image_level"]["conf"] = 0.0523411
    rows = summary_rows(metrics, {"conf": 0.0523411, "conf_from": "val", "conf_picked_accuracy": 0.9167})
    assert rows[0] == [
        "box threshold (operating point)",
        "0.0523411 (picked on the val split, defect-type accuracy there 0.917)",
    ]
    metrics["image_level"]["conf"] = 0.25
    assert summary_rows(metrics, {"conf": 0.25})[0][1] == "0.25"
    assert summary_rows(metrics)[0][1] == "0.25"  # the metrics' own, without settings


def test_gallery_pictures_and_photos_called_wrong_link_to_their_full_size_overlays(no_figures) -> None:
    from inspection.report import GalleryItem, html_report

    wrong = [photo("a b.png", "good", "scratch", 0.6, 0.0), photo("c.png", "stain", "good", 0.1, 0.0)]
    wrong[0]["overlay"] = "overlays/a b.jpg"
    wrong[1]["overlay"] = None  # not drawn (--overlays 1): no link
    metrics = page_figures([[1, 1], [0, 1]], photos=wrong)
    gallery = [GalleryItem("x", b"\xff\xd8", "overlays/x#1.jpg"), GalleryItem("y", b"\xff\xd8")]
    page = html_report(metrics, {}, gallery)
    assert '<td><a href="overlays/a%20b.jpg" target="_blank">a b.png</a></td>' in page
    assert "<td>c.png</td>" in page
    assert page.count('<a href="overlays/x%231.jpg" target="_blank"><img') == 1
    assert page.count("<a href") == 2 and "Click a picture for the full-size overlay" in page
    unlinked = html_report(metrics, {}, [GalleryItem("y", b"\xff\xd8")])
    assert "Click a picture" not in unlinked


def test_a_gallery_of_the_worst_and_best_photos_says_where_each_group_starts(no_figures) -> None:
    from inspection.report import GalleryItem, html_report

    metrics = page_figures([[1, 0], [0, 1]])
    items = [GalleryItem(name, b"\xff\xd8", None, group) for name, group in
             [("w1", "worst"), ("w2", "worst"), ("b1", "best"), ("b2", "best")]]  # fmt: skip
    page = html_report(metrics, {}, items)
    worst, best = (
        page.index("<h3>Worst per-image IoU, worst first</h3>"),
        page.index("<h3>Best per-image IoU</h3>"),
    )
    assert worst < page.index("w1") < page.index("w2") < best < page.index("b1") < page.index("b2")
    assert page.count("<h3>") == 2 and page.count("<div class='gallery'>") == 2
    every = html_report(metrics, {}, [GalleryItem("w1", b"\xff\xd8")])  # the whole split shown: no heading
    assert "<h3>" not in every and page.count("<figure>") == 4 and every.count("<figure>") == 1
    empty = html_report(metrics, {}, [])  # --gallery 0: the section keeps its (empty) gallery
    assert "<h3>" not in empty and empty.count("<div class='gallery'></div>") == 1


def test_the_masks_dropped_as_duplicates_are_counted_where_the_detections_are() -> None:
    from pathlib import Path

    from inspection.evaluate import summary

    settings = {"duplicate_masks_dropped": 3, "mask_iou": 0.7}
    rows = dict(summary_rows(figures(), settings))
    assert rows["ground-truth instances / detections"] == "3 / 4 (3 duplicate masks dropped, --mask-iou 0.7)"
    assert dict(summary_rows(figures(), {"duplicate_masks_dropped": 0}))[
        "ground-truth instances / detections"
    ] == ("3 / 4")
    metrics = {**figures(), "settings": settings}
    metrics["image_level"]["conf"] = 0.25
    assert "3 ground-truth instances, 4 detections (3 duplicate masks dropped, --mask-iou 0.7)" in summary(
        metrics, Path("out")
    )
    assert "whose mask duplicates a better one's (--mask-iou 0.7)" in operating_point(
        {"conf": 0.25, "mask_iou": 0.7}
    )


def test_both_reports_give_the_threshold_where_it_was_picked(no_figures) -> None:
    from inspection.report import html_report, markdown

    metrics = page_figures([[1, 0], [0, 1]])
    settings = {"conf": 0.25, "conf_from": "val", "conf_picked_accuracy": 0.9167}
    picked = "(picked on the val split, defect-type accuracy there 0.917)"
    assert picked in markdown(metrics, settings) and picked in html_report(metrics, settings, [])


def test_a_threshold_picked_with_anomaly_regions_says_its_accuracy_is_the_detectors_alone(no_figures) -> None:
    # --conf-from runs the detector alone; with --anomaly-run the report's 'defect-type accuracy there'
    # read as the cascade's with PatchCore's regions, which call photos only in the scored split
    from inspection.report import html_report, markdown

    metrics = page_figures([[1, 0], [0, 1]])
    settings = {"conf": 0.25, "conf_from": "val", "conf_picked_accuracy": 0.9167}
    settings["anomaly_regions"] = {"run": "runs/anomaly/nut", "threshold": 3.5}
    picked = (
        "(picked on the val split, defect-type accuracy there 0.917, the detector's alone, "
        "without PatchCore's regions)"
    )
    assert picked in markdown(metrics, settings)
    assert html.escape(picked) in html_report(metrics, settings, [])


def test_report_md_opens_with_its_figures_and_ends_with_the_settings(no_figures) -> None:
    from inspection.report import markdown

    page = markdown(page_figures([[1, 0], [0, 1]]), {"detector": "best.pt", "conf": 0.25})
    lines = page.splitlines()
    assert lines[0].startswith("# Inspection") and lines[2] == "| figure | value |"
    assert page.endswith("\n\n## Settings\n\n- detector: `best.pt`\n- conf: `0.25`\n")
    assert page.index("Image calls") < page.index("## Settings") and page.count("- detector:") == 1


def test_both_reports_say_a_sam_of_none_is_zero_shot_sam(no_figures) -> None:
    # "sam: None" beside "model: vit_t" read as if no SAM had made the masks
    from inspection.report import html_report, markdown

    metrics = page_figures([[1, 0], [0, 1]])
    zero_shot = {"sam": None, "model": "vit_t"}
    said = "None (zero-shot SAM: the official vit_t weights)"
    assert f"- sam: `{said}`" in markdown(metrics, zero_shot)
    assert f"<li>sam: <code>{said}</code></li>" in html_report(metrics, zero_shot, [])
    assert "- sam: `runs/sam/decoder.pt`" in markdown(
        metrics, {"sam": "runs/sam/decoder.pt", "model": "vit_t"}
    )


def test_the_links_of_the_photos_called_wrong_follow_their_rows() -> None:
    from inspection.report import wrong_links, wrong_rows

    right, low, high = (
        photo("r.png", "scratch", "scratch", 0.9, 0.8),
        photo("l.png", "stain", "good", 0.1, 0.0),
        photo("h.png", "good", "scratch", 0.7, 0.0),
    )
    right["overlay"], low["overlay"], high["overlay"] = "overlays/r.jpg", "overlays/l.jpg", None
    metrics = {"photos": [right, low, high]}
    assert [row[0] for row in wrong_rows(metrics)] == ["h.png", "l.png"]
    assert wrong_links(metrics) == [None, "overlays/l.jpg"]  # not the right photo's, highest score first


def test_an_empty_link_links_nowhere(no_figures) -> None:
    from inspection.report import GalleryItem, html_report

    metrics = page_figures([[1, 0], [0, 1]])
    page = html_report(metrics, {}, [GalleryItem("x<1>.png: IoU 0.5", b"\xff\xd8", "")])
    assert "<a href" not in page and "Click a picture" not in page
    assert "<figcaption>x&lt;1&gt;.png: IoU 0.5</figcaption>" in page


def test_the_threshold_comes_from_the_settings_when_the_metrics_lack_it() -> None:
    metrics = figures()
    metrics["image_level"].pop("conf", None)
    assert summary_rows(metrics, {"conf": 0.3})[0][1] == "0.3"
    assert summary_rows(metrics)[0][1] == "-"


def test_the_title_names_the_split_and_the_detectors_run() -> None:
    from inspection.report import report_title

    settings = {"data": "datasets/nut", "split": "test", "detector": "/x/runs/detect/f0/weights/best.pt"}
    assert report_title(settings) == "Inspection of datasets/nut (test split) by f0/weights/best.pt"
    assert report_title({"data": "d", "split": "val"}) == "Inspection of d (val split)"


def test_the_pixel_rows_say_they_are_at_the_threshold_and_the_image_auroc_row_that_it_is_not() -> None:
    # The cascade keeps no box below --conf: a photo whose top box lies below it has a map of 0, as a clean
    # one. The row read "pixel AUROC / AUPRO (FPR <= 0.3)", as if threshold-free. The image AUROC is (each
    # photo's top box from the detector's pass at 0.001, as detection.evaluate's): its row says so.
    rows = dict(summary_rows(figures()))
    assert rows["image AUROC (top box score down to 0.001, whatever the threshold)"] == "0.900"
    pixel = "pixel AUROC / AUPRO (FPR <= 0.3, normalised; maps of the boxes at or above the threshold)"
    assert rows[pixel] == "0.950 / 0.800"


def test_a_class_without_ground_truth_in_the_split_keeps_its_row_of_dashes() -> None:
    # A small split may hold no instance of a class (dent here): COCOeval gives it no AP and the
    # per-class table left its row out, so the class and the detections of it vanished from the table.
    metrics = figures()
    metrics["image_level"] = {**metrics["image_level"], "true_labels": ["good", "dent", "scratch", "stain"]}
    rows = class_rows(metrics)
    assert rows[0] == ["dent", "-", "-", "-", "-", "-", "-"]
    assert [row[0] for row in rows] == ["dent", "scratch", "stain", "**all**"]
    assert "has no AP (-)" in operating_point({"conf": 0.25}) and "class-agnostic AP" in operating_point({})


def test_with_anomaly_regions_the_image_auroc_row_says_it_moves_with_the_threshold() -> None:
    # A photo with an anomaly region scores at least the threshold (the region's box score): the row said
    # "whatever the threshold" all the same.
    settings = {"anomaly_regions": {"threshold": 3.5}, "anomaly_detections": 1}
    rows = dict(summary_rows(figures(), settings))
    row = (
        "image AUROC (top box score down to 0.001, or the threshold on a photo with an anomaly region: "
        "moves with the threshold)"
    )
    assert rows[row] == "0.900"
    assert not any("whatever the threshold" in name for name in rows)
