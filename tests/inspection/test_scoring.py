"""``inspection.scoring``: the per-image figures of the cascade and of the oracle, by hand."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from converters.masks import mask_to_rle
from inspection.outputs import RANK_BY
from inspection.photos import Photo
from inspection.result import GOOD, Inspection
from inspection.scoring import PER_IMAGE_FIGURES, SplitScorer, TrueInstances, _iou_summary, photo_figures

SIZE = 40  # a 40 x 40 image: the boundary band is d = round(0.02 x 56.6) = 1 pixel wide


def square(y1: int, y2: int, x1: int = 10, x2: int = 20) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def inspection_of(masks: list[np.ndarray]) -> Inspection:
    """A photo with one box per mask (class 0, score 0.9), or none."""
    n = len(masks)
    return Inspection(
        path=Path("p.png"),
        width=SIZE,
        height=SIZE,
        boxes=np.tile(np.array([[10.0, 10.0, 20.0, 20.0]]), (n, 1)),
        scores=np.full(n, 0.9),
        classes=np.zeros(n, int),
        names=["scratch"] * n,
        masks=np.array(masks, bool).reshape(n, SIZE, SIZE),
        mask_scores=np.full(n, 0.8),
        verdict="scratch" if n else GOOD,
        score=0.9 if n else 0.0,
        mask_probs=np.array(masks, np.float16).reshape(n, SIZE, SIZE),
    )


def truth_of(masks: list[np.ndarray]) -> TrueInstances:
    n = len(masks)
    boxes = np.tile(np.array([[10.0, 10.0, 20.0, 20.0]]), (n, 1)).reshape(n, 4)
    return TrueInstances(np.array(masks, bool).reshape(n, SIZE, SIZE), boxes, np.zeros(n, int))


@pytest.fixture
def scorer() -> SplitScorer:
    return SplitScorer(ground_truth={}, names=["scratch"], conf=0.25)


def test_a_half_outline_from_the_oracle_is_scored_by_hand(scorer) -> None:
    # Truth: the 10 x 10 square at rows/cols 10..19; its 1-px band is a 36-pixel ring. The cascade
    # finds it exactly; the oracle's mask is the top half (rows 10..14): a 26-pixel ring, 18 pixels
    # of it on the truth's ring (row 10, both sides down to row 14), so boundary IoU 18 / 44.
    truth = square(10, 20)
    record = scorer.add(
        Photo(Path("p.png"), "p.png", "p", 1),
        inspection_of([truth]),
        truth_of([truth]),
        inspection_of([square(10, 15)]),
    )
    assert (record.iou, record.dice, record.boundary_iou) == (1.0, 1.0, 1.0)
    assert record.oracle_iou == pytest.approx(0.5)
    assert record.oracle_boundary_iou == pytest.approx(18 / 44)


def test_a_missed_defect_and_a_clean_good_image_average_per_group(scorer) -> None:
    truth = square(10, 20)
    scorer.add(
        Photo(Path("a.png"), "a.png", "a", 1), inspection_of([]), truth_of([truth]), inspection_of([truth])
    )
    scorer.add(Photo(Path("b.png"), "b.png", "b", 2), inspection_of([]), truth_of([]), inspection_of([]))
    summary = _iou_summary(scorer.images)
    oracle = {"oracle_iou": 1.0, "oracle_boundary_iou": 1.0}
    assert summary["defect"] == {"images": 1, "iou": 0.0, "dice": 0.0, "boundary_iou": 0.0, **oracle}
    assert summary["good"] == {"images": 1, "iou": 1.0, "dice": 1.0, "boundary_iou": 1.0}
    assert summary["all"] == {"images": 2, "iou": 0.5, "dice": 0.5, "boundary_iou": 0.5}


def test_the_oracle_figures_are_over_defect_images_only(scorer) -> None:
    # the oracle has no true box on a good photo: its empty mask scored 1 there by construction, so
    # per_image.all.oracle_iou read 0.75 for an oracle that outlined its one defect at 0.5
    truth, half = square(10, 20), square(10, 15, 10, 20)
    scorer.add(
        Photo(Path("a.png"), "a.png", "a", 1), inspection_of([]), truth_of([truth]), inspection_of([half])
    )
    scorer.add(Photo(Path("b.png"), "b.png", "b", 2), inspection_of([]), truth_of([]), inspection_of([]))
    summary = _iou_summary(scorer.images)
    assert summary["defect"]["oracle_iou"] == pytest.approx(0.5)
    assert not set(summary["all"]) & {"oracle_iou", "oracle_boundary_iou"}
    assert not set(summary["good"]) & {"oracle_iou", "oracle_boundary_iou"}
    assert [photo_figures(record)["oracle_iou"] for record in scorer.images] == [0.5, None]


def test_image_label_is_the_largest_instances_class():
    from inspection.scoring import image_label

    assert image_label([0, 1], [5.0, 20.0], ["a", "b"]) == "b"
    assert image_label([], [], ["a", "b"]) == GOOD


def test_image_truth_is_the_class_of_the_largest_box_not_the_largest_mask():
    # a thin diagonal scratch (class 1: 30 pixels, a 30 x 30 box) beside a solid dent (class 0: 64
    # pixels, an 8 x 8 box): the box decides, as detection.image_level.image_labels and the labels
    # --conf-from picks on (it read the mask's pixel count here, so the call was 'dent')
    scratch = np.eye(SIZE, dtype=bool)
    scratch[30:] = False
    dent = square(31, 39, 31, 39)
    boxes = np.array([[31.0, 31.0, 39.0, 39.0], [0.0, 0.0, 30.0, 30.0]])
    truth = TrueInstances(np.stack([dent, scratch]), boxes, np.array([0, 1]))
    scorer = SplitScorer(ground_truth={}, names=["dent", "scratch"], conf=0.25)
    record = scorer.add(Photo(Path("a.png"), "a.png", "a", 1), inspection_of([]), truth, inspection_of([]))
    assert record.truth == "scratch"


@pytest.mark.parametrize(("rank_by", "score"), [("box", 0.5), ("mask", 0.4), ("product", 0.2)])
def test_ranked_scores(rank_by, score):
    from inspection.scoring import ranked

    (result,) = ranked([{"box_score": 0.5, "mask_score": 0.4}], rank_by)
    assert result["score"] == pytest.approx(score)


def test_image_level_accuracy_per_true_label():
    from dataclasses import fields

    from inspection.scoring import ImageRecord, image_level

    def record(truth: str, verdict: str, score: float) -> ImageRecord:
        values = {f.name: 0.0 for f in fields(ImageRecord)}
        named = {"image_id": 1, "file_name": "x.png", "truth": truth, "verdict": verdict, "score": score}
        return ImageRecord(**{**values, **named})

    level = image_level([record(GOOD, "a", 0.9), record("a", "a", 0.8), record("a", "a", 0.7)], ["a"])
    assert level["per_label_accuracy"] == {GOOD: 0.0, "a": 1.0}  # of each true label's images (rows)
    assert level["accuracy"] == pytest.approx(2 / 3) and level["balanced_accuracy"] == pytest.approx(0.5)
    assert level["matrix"] == [[0, 1], [0, 2]]


def test_a_call_that_is_no_photos_truth_is_a_column_of_the_matrix_not_a_row() -> None:
    from dataclasses import fields

    from inspection.scoring import ImageRecord, image_level

    def record(truth: str, verdict: str) -> ImageRecord:
        values = {f.name: 0.0 for f in fields(ImageRecord)}
        named = {"image_id": 1, "file_name": "x.png", "truth": truth, "verdict": verdict, "score": 0.5}
        return ImageRecord(**{**values, **named})

    # --anomaly-run: 'anomaly' (the regions' class) is a call the cascade makes, never a photo's truth
    calls = [record(GOOD, "anomaly"), record(GOOD, GOOD), record("a", "a"), record("a", "anomaly")]
    level = image_level(calls, ["a", "anomaly"], truth_names=["a"])
    assert level["labels"] == [GOOD, "a", "anomaly"] and level["true_labels"] == [GOOD, "a"]
    assert level["matrix"] == [[1, 0, 1], [0, 1, 1]]
    assert level["accuracy"] == 0.5 and level["per_label_accuracy"] == {GOOD: 0.5, "a": 0.5}


def test_a_label_without_images_is_left_out_of_the_balanced_accuracy():
    from dataclasses import fields

    from inspection.scoring import ImageRecord, image_level

    values = {f.name: 0.0 for f in fields(ImageRecord)}
    named = {"image_id": 1, "file_name": "x.png", "truth": "a", "verdict": "a", "score": 0.8}
    level = image_level([ImageRecord(**{**values, **named})], ["a", "b"])
    assert level["per_label_accuracy"] == {"a": 1.0} and level["balanced_accuracy"] == 1.0


def ranking_split(box_scores=(0.1, 0.9), mask_scores=(0.9, 0.2)) -> SplitScorer:
    """One true square and two detections that each ranking orders differently.

    The right mask has a low box score (0.1) but a high mask score (0.9); the wrong one (beside
    the truth) the reverse (0.9, 0.2). Box and product (0.09 < 0.18) rank the wrong one first
    (AP 0.5); the mask score ranks the right one first (AP 1).
    """
    truth, wrong = square(10, 20), square(25, 35)
    ground_truth = {
        "images": [{"id": 1, "file_name": "p.png", "width": SIZE, "height": SIZE}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [10, 10, 10, 10],
                "area": 100,
                "iscrowd": 0,
                "segmentation": mask_to_rle(truth),
            }
        ],
        "categories": [{"id": 1, "name": "scratch"}],
    }
    found = replace(
        inspection_of([truth, wrong]),
        boxes=np.array([[10.0, 10.0, 20.0, 20.0], [10.0, 25.0, 20.0, 35.0]]),
        scores=np.array(box_scores),
        mask_scores=np.array(mask_scores),
    )
    scorer = SplitScorer(ground_truth=ground_truth, names=["scratch"], conf=0.25)
    scorer.add(Photo(Path("p.png"), "p.png", "p", 1), found, truth_of([truth]), inspection_of([truth]))
    return scorer


def test_the_ranking_asked_for_is_the_headline_and_every_ranking_is_scored() -> None:
    figures = ranking_split().finish()
    mask_ap = {rank: figures["mask"][rank]["AP"] for rank in RANK_BY}
    assert mask_ap == pytest.approx({"box": 0.5, "mask": 1.0, "product": 0.5})
    assert figures["rank_by"] == "box"  # the default: predictions.json's score, not the best of three
    scorer = ranking_split()
    scorer.rank_by = "mask"
    assert scorer.finish()["rank_by"] == "mask"


def coco_truth(truths: list[list[np.ndarray]]) -> dict:
    """A COCO instances dict of class ``scratch``: image ``i + 1`` holds the masks ``truths[i]``."""
    annotations = [
        {
            "id": image_id * 10 + j + 1,
            "image_id": image_id,
            "category_id": 1,
            "bbox": [10, 10, 10, 10],
            "area": int(mask.sum()),
            "iscrowd": 0,
            "segmentation": mask_to_rle(mask),
        }
        for image_id, masks in enumerate(truths, start=1)
        for j, mask in enumerate(masks)
    ]
    images = [
        {"id": i, "file_name": f"{i}.png", "width": SIZE, "height": SIZE} for i in range(1, len(truths) + 1)
    ]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "scratch"}]}


def test_split_figures_count_defects_by_the_truth_and_score_the_anomaly_maps() -> None:
    # Image 1: a defect missed (called good, score 0); image 2: a defect found with IoU 0.6 (a match at
    # IoU 0.5, not at 0.75); image 3: a good image left clean.
    truth, found = square(10, 20), square(10, 16)
    scorer = SplitScorer(ground_truth=coco_truth([[truth], [truth], []]), names=["scratch"], conf=0.25)
    cases = [([truth], []), ([truth], [found]), ([], [])]
    records = [
        scorer.add(
            Photo(Path(f"{i}.png"), f"{i}.png", str(i), i),
            inspection_of(masks),
            truth_of(true_masks),
            inspection_of(true_masks),
        )
        for i, (true_masks, masks) in enumerate(cases, start=1)
    ]
    assert [(r.truth, r.verdict, r.n_true, r.n_found) for r in records] == [
        ("scratch", GOOD, 1, 0),
        ("scratch", "scratch", 1, 1),
        (GOOD, GOOD, 0, 0),
    ]
    figures = scorer.finish()
    assert (figures["images"], figures["defect_images"], figures["instances"], figures["detections"]) == (
        3,
        2,
        2,
        1,
    )
    # Image scores 0 and 0.9 on the defect images, 0 on the good one: the missed defect ties.
    assert figures["image_level"]["auroc"] == pytest.approx(0.75)
    # 60 defect pixels score 0.9 on the maps; the other 140 score 0, tied with every normal pixel.
    assert figures["pixel"]["auroc"] == pytest.approx(130 / 200)
    recall, precision = (np.array(figures["mask"]["box"]["pr50"][key]) for key in ("recall", "precision"))
    assert precision[recall <= 0.5] == pytest.approx(1.0) and not precision[recall > 0.5].any()


def test_a_group_without_images_averages_to_nan(scorer) -> None:
    scorer.add(Photo(Path("g.png"), "g.png", "g", 1), inspection_of([]), truth_of([]), inspection_of([]))
    summary = _iou_summary(scorer.images)
    assert summary["good"]["iou"] == 1.0 and summary["defect"]["images"] == 0
    assert all(np.isnan(summary["defect"][figure]) for figure in PER_IMAGE_FIGURES)


def test_the_union_of_true_instances_holds_every_defect_pixel() -> None:
    first, second = square(10, 20), square(25, 35)
    assert np.array_equal(truth_of([first, second]).union(SIZE, SIZE), first | second)
    assert truth_of([]).union(20, 30).shape == (20, 30)


def test_the_oracle_masks_are_ranked_by_samples_predicted_iou() -> None:
    # Two true squares; the oracle's first mask (predicted IoU 0.2) misses its square, the second (0.9)
    # is exact. Ranked by predicted IoU the hit comes first: precision 1 up to recall 0.5 (AP 51 / 101).
    first, second = square(10, 20), square(25, 35)
    ground_truth = coco_truth([[first, second]])
    oracle = replace(inspection_of([square(0, 5, 0, 5), second]), mask_scores=np.array([0.2, 0.9]))
    scorer = SplitScorer(ground_truth=ground_truth, names=["scratch"], conf=0.25)
    photo = Photo(Path("1.png"), "1.png", "1", 1)
    scorer.add(photo, inspection_of([]), truth_of([first, second]), oracle)
    assert scorer.finish()["mask_oracle"]["AP50"] == pytest.approx(51 / 101)


def test_box_ap_ranks_the_boxes_by_the_detectors_score() -> None:
    # The wrong box has the higher box score (0.6 > 0.5) but the lower product (0.12 < 0.45).
    figures = ranking_split(box_scores=(0.5, 0.6), mask_scores=(0.9, 0.2)).finish()
    assert figures["box"]["AP50"] == pytest.approx(0.5)
    assert figures["mask"]["product"]["AP50"] == pytest.approx(1.0)


def test_the_anomaly_map_keeps_each_pixels_highest_weighted_probability() -> None:
    probs = np.zeros((2, 3, 4), np.float16)
    probs[0, 0, :2], probs[1, 0, 1:3] = 1.0, 0.5
    found = Inspection(
        path=Path("p.png"),
        width=4,
        height=3,
        boxes=np.zeros((2, 4)),
        scores=np.array([0.8, 0.4]),
        classes=np.zeros(2, int),
        names=["scratch"] * 2,
        masks=probs > 0,
        mask_scores=np.ones(2),
        verdict="scratch",
        score=0.8,
        mask_probs=probs,
    )
    expected = np.zeros((3, 4), np.float32)
    expected[0] = [0.8, 0.8, 0.2, 0.0]
    np.testing.assert_allclose(found.anomaly_map(), expected)
    empty = ("boxes", "scores", "classes", "masks")
    clean = replace(found, **{key: getattr(found, key)[:0] for key in empty})
    assert clean.defect_mask().shape == clean.anomaly_map().shape == (3, 4)


def test_detections_past_the_hundredth_of_an_image_still_count() -> None:
    # 100 wrong boxes score above the one right box, the 101st: it is matched, at precision 1 / 101.
    truth, wrong = square(10, 20), square(25, 35)
    found = replace(
        inspection_of([wrong] * 100 + [truth]),
        boxes=np.array([[10.0, 25.0, 20.0, 35.0]] * 100 + [[10.0, 10.0, 20.0, 20.0]]),
        scores=np.r_[np.full(100, 0.9), 0.1],
    )
    scorer = SplitScorer(ground_truth=coco_truth([[truth]]), names=["scratch"], conf=0.25)
    scorer.add(Photo(Path("1.png"), "1.png", "1", 1), found, truth_of([truth]), inspection_of([truth]))
    figures = scorer.finish()
    assert figures["box"]["AP50"] == pytest.approx(1 / 101)
    assert figures["mask"]["box"]["AP50"] == pytest.approx(1 / 101)
    assert figures["mask_any_class"]["box"]["AP50"] == pytest.approx(1 / 101)


def test_a_mask_of_the_wrong_class_counts_only_when_classes_are_merged() -> None:
    # The truth is a 'stain'; the cascade outlines it exactly but calls it a 'scratch', and adds a
    # region of a class the ground truth lacks (id 2: the 'anomaly' regions') on the same defect.
    truth = square(10, 20)
    ground_truth = coco_truth([[truth]])
    ground_truth["annotations"][0]["category_id"] = 2
    ground_truth["categories"] = [{"id": 1, "name": "scratch"}, {"id": 2, "name": "stain"}]
    found = replace(inspection_of([truth, truth]), classes=np.array([0, 2]), scores=np.array([0.9, 0.25]))
    scorer = SplitScorer(ground_truth=ground_truth, names=["scratch", "stain"], conf=0.25)
    scorer.add(Photo(Path("1.png"), "1.png", "1", 1), found, truth_of([truth]), inspection_of([truth]))
    figures = scorer.finish()
    assert all(figures["mask"][rank]["AP"] == 0.0 for rank in RANK_BY)
    merged = figures["mask_any_class"]
    assert merged["box"]["AP"] == pytest.approx(1.0)
    assert set(merged) == set(RANK_BY) and "per_class" not in merged["box"]


def test_the_merged_figures_match_the_cascades_masks_under_each_ranking() -> None:
    # A 'stain' the cascade calls a 'scratch' twice, both boxed exactly: a wrong outline (its top 3 rows,
    # IoU 0.3) ranked first by box score, the exact one ranked first by mask score and by their product.
    # Matched by mask, not box, and the cascade's masks, not the oracle's (exact): AP 0.5 by box, 1 else.
    truth = square(10, 20)
    ground_truth = coco_truth([[truth]])
    ground_truth["annotations"][0]["category_id"] = 2
    ground_truth["categories"] = [{"id": 1, "name": "scratch"}, {"id": 2, "name": "stain"}]
    found = replace(
        inspection_of([square(10, 13), truth]), scores=np.array([0.9, 0.3]), mask_scores=np.array([0.2, 0.95])
    )
    scorer = SplitScorer(ground_truth=ground_truth, names=["scratch", "stain"], conf=0.25)
    scorer.add(Photo(Path("1.png"), "1.png", "1", 1), found, truth_of([truth]), inspection_of([truth]))
    merged = scorer.finish()["mask_any_class"]
    assert merged["box"]["AP50"] == pytest.approx(0.5, abs=0.01)
    assert merged["mask"]["AP50"] == merged["product"]["AP50"] == pytest.approx(1.0)


def photo_with_map(rng: np.random.Generator, height: int, width: int, *, boxes: int) -> Inspection:
    """A ``height x width`` photo with ``boxes`` boxes of random mask probabilities (none: a good call)."""
    probs = rng.random((boxes, height, width)).astype(np.float16)
    masks = np.zeros((boxes, height, width), bool)
    masks[:, 10:30, 10:40] = True  # a box's mask: a short RLE, as a real outline's (noise's is long)
    return Inspection(
        path=Path("p.png"),
        width=width,
        height=height,
        boxes=np.tile(np.array([[10.0, 10.0, 40.0, 30.0]]), (boxes, 1)),
        scores=np.linspace(0.9, 0.3, boxes),
        classes=np.zeros(boxes, int),
        names=["scratch"] * boxes,
        masks=masks,
        mask_scores=np.full(boxes, 0.8),
        verdict="scratch" if boxes else GOOD,
        score=0.9 if boxes else 0.0,
        mask_probs=probs,
    )


def test_the_scorer_holds_truths_as_bits_and_a_map_without_boxes_as_one_value_for_the_same_figures() -> None:
    # every photo's float16 map and bool truth were held until the split was scored: 3 bytes a photo
    # pixel, 2 of them for the all-0 map of a photo without boxes; bits and one value are enough, and the
    # pixel figures read from them are the full arrays' to the bit
    import tracemalloc

    from common import metrics

    rng = np.random.default_rng(0)
    height, width, photos = 160, 200, 8
    truth = np.zeros((height, width), bool)
    truth[20:60, 30:90], truth[100:103, 10:190] = True, True  # a stain and a scratch
    defect = TrueInstances(truth[None], np.array([[10.0, 20.0, 190.0, 103.0]]), np.zeros(1, int))
    good = TrueInstances(np.zeros((0, height, width), bool), np.zeros((0, 4)), np.zeros(0, int))
    cases = [
        (photo_with_map(rng, height, width, boxes=2 if i % 2 else 0), defect if i % 2 else good)
        for i in range(photos)
    ]
    cases[2] = (photo_with_map(rng, height, width, boxes=0), defect)  # a defect missed
    scorer = SplitScorer(ground_truth={}, names=["scratch"], conf=0.25)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, (inspection, true) in enumerate(cases):
            scorer.add(Photo(Path(f"{i}.png"), f"{i}.png", str(i), i), inspection, true, inspection)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    pixels = height * width
    with_boxes = sum(len(inspection) > 0 for inspection, _ in cases)
    # the float16 maps of the photos with boxes, every truth in bits, and the COCO results' small RLEs
    assert held < with_boxes * 2 * pixels + photos * pixels / 8 + 20_000
    assert all(
        np.array_equal(kept, true.union(height, width))
        for kept, (_, true) in zip(scorer.truths, cases, strict=True)
    )
    full_maps = [inspection.anomaly_map().astype(np.float16) for inspection, _ in cases]
    assert all(np.array_equal(kept, full) for kept, full in zip(scorer.maps, full_maps, strict=True))
    full_truths = [true.union(height, width) for _, true in cases]
    figures = metrics.pixel_figures(scorer.maps, scorer.truths)
    assert figures == metrics.pixel_figures(full_maps, full_truths)
    assert 0.5 < figures["auroc"] < 1 and 0 < figures["aupro"] < 1
