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
from inspection.scoring import SplitScorer, TrueInstances, _iou_summary

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
    assert summary["good"] == {"images": 1, "iou": 1.0, "dice": 1.0, "boundary_iou": 1.0, **oracle}
    assert summary["all"]["boundary_iou"] == 0.5 and summary["all"]["images"] == 2


def test_image_label_is_the_largest_instances_class():
    from inspection.scoring import image_label

    assert image_label([0, 1], [5.0, 20.0], ["a", "b"]) == "b"
    assert image_label([], [], ["a", "b"]) == GOOD


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


def ranking_split() -> SplitScorer:
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
        scores=np.array([0.1, 0.9]),
        mask_scores=np.array([0.9, 0.2]),
    )
    scorer = SplitScorer(ground_truth=ground_truth, names=["scratch"], conf=0.25)
    scorer.add(Photo(Path("p.png"), "p.png", "p", 1), found, truth_of([truth]), inspection_of([truth]))
    return scorer


def test_the_ranking_with_the_best_mask_ap_is_the_one_reported() -> None:
    figures = ranking_split().finish()
    mask_ap = {rank: figures["mask"][rank]["AP"] for rank in RANK_BY}
    assert mask_ap == pytest.approx({"box": 0.5, "mask": 1.0, "product": 0.5})
    assert figures["rank_by"] == "mask"


def test_a_tie_in_mask_ap_keeps_the_first_ranking(monkeypatch) -> None:
    import inspection.scoring as scoring

    scorer = ranking_split()
    tables = scoring.mask_tables(scorer)
    even = {rank: tables[0]["mask"] for rank in RANK_BY}  # every ranking as good as the best
    monkeypatch.setattr(scoring, "mask_tables", lambda _: (even, tables[1], tables[2]))
    assert scorer.finish()["rank_by"] == "box"
