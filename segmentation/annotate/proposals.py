"""Proposals: defect instances a model suggests, for the user to accept, correct or delete on the page.

A :class:`Proposal` is an instance not yet accepted: class, exact mask, box,
the model's scores. They come from a file the inspection cascade wrote
(``--proposals``, :mod:`segmentation.annotate.proposal_file`) or from a
detector the app runs itself (``--detector``,
:mod:`segmentation.annotate.detector`), and the session
(:mod:`segmentation.annotate.session`) keeps the undecided ones per image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from pycocotools import mask as mask_utils

from common.errors import few
from converters.masks import mask_to_rle, mask_to_xyxy, rle_counts, rle_to_mask

#: A new proposal that overlaps an instance or an undecided proposal this much (mask IoU) is a duplicate.
DUPLICATE_IOU = 0.5


@dataclass(frozen=True)
class Proposal:
    """One suggested defect of one image: its class, exact mask and the model's confidence.

    Attributes:
        id: unique within its image, never reused (0 until the session places it).
        class_name: its class: one of the session's, or a proposals file's name that is not (such
            as ``anomaly.predict``'s ``anomaly``), accepted only as one of the session's.
        rle: COCO RLE of the ``(H, W)`` mask at the image's own size, ``counts`` as ``str``.
        area: mask pixels.
        box: xyxy in pixels: the detector's box where known, else the mask's.
        score: the detector's (or the cascade's) confidence, None when the source gave none.
        mask_score: SAM's predicted IoU of the mask, when known.
        source: where it came from, for the page (``predictions.json``, ``best.pt``).
    """

    id: int
    class_name: str
    rle: dict
    area: int
    box: tuple[float, float, float, float]
    score: float | None = None
    mask_score: float | None = None
    source: str = ""

    def mask(self) -> np.ndarray:
        """``(H, W)`` bool."""
        return rle_to_mask(self.rle)

    def to_json(self) -> dict:
        return {**masked_json(self), "mask_score": self.mask_score, "source": self.source}

    @classmethod
    def from_json(cls, data: dict) -> Proposal:
        return cls(
            **masked_fields(data),
            mask_score=_optional_float(data.get("mask_score")),
            source=str(data.get("source", "")),
        )


def dropped_text(dropped: int, photo: str = "the old photo") -> str:
    """``its N undecided proposals of the old photo were dropped``: a replaced photo's notice."""
    what = f"{dropped} undecided proposal{'s' if dropped != 1 else ''}"
    return f"its {what} of {photo} {'were' if dropped != 1 else 'was'} dropped"


def not_a_class_text(proposals: Sequence[Proposal], classes: Sequence[str]) -> str:
    """Why ``proposals`` (of names not among ``classes``) are not accepted as they are, and what to do.

    >>> region = replace(make_proposal(np.ones((2, 2), bool), class_name="anomaly"), id=3)
    >>> what, how = not_a_class_text([region], ["stain", "crack"]).split(": ")
    >>> what
    'anomaly is not a class here'
    >>> how
    'press R to accept proposal #3 as the selected class (one of stain, crack), or E to correct it'
    """
    names = list(dict.fromkeys(p.class_name for p in proposals))
    what = f"{names[0]} is not a class" if len(names) == 1 else f"{', '.join(names)} are not classes"
    ids = [f"#{p.id}" for p in proposals]
    which = f"proposal {ids[0]}" if len(ids) == 1 else f"each of proposals {few(ids, 5)}"
    return (
        f"{what} here: press R to accept {which} as the selected class (one of {', '.join(classes)}), "
        "or E to correct it"
    )


def masked_json(record: Proposal) -> dict:
    """The state-file fields a proposal and an accepted instance (same attributes) share."""
    return {
        "id": record.id,
        "class": record.class_name,
        "area": record.area,
        "box": list(record.box),
        "score": record.score,
        "rle": record.rle,
    }


def masked_fields(data: dict) -> dict:
    """The shared fields read back from :func:`masked_json`'s form, as constructor keywords.

    Raises:
        ValueError: a field missing or of the wrong type, or an RLE whose runs do not cover its
            size (pycocotools stops on it with a bare "Invalid RLE mask representation").
    """
    return {
        "id": int(data["id"]),
        "class_name": str(data["class"]),
        "rle": _checked_rle(data["rle"]),
        "area": int(data["area"]),
        "box": tuple(float(v) for v in data["box"]),
        "score": _optional_float(data.get("score")),
    }


def make_proposal(
    mask: np.ndarray,
    *,
    class_name: str,
    box: Sequence[float] | None = None,
    score: float | None = None,
    mask_score: float | None = None,
    source: str = "",
) -> Proposal | None:
    """A proposal (id 0) of ``mask`` ``(H, W)`` bool; None for an empty mask (nothing to accept).

    ``box`` (xyxy pixels, default the mask's) is clipped to the image: it may become a prompt.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    height, width = mask.shape
    box = mask_to_xyxy(mask) if box is None else np.clip(np.asarray(box, float), 0, [width, height] * 2)
    x1, y1, x2, y2 = (float(v) for v in box)
    return Proposal(
        id=0,
        class_name=class_name,
        rle=mask_to_rle(mask),
        area=int(np.count_nonzero(mask)),
        box=(round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)),
        score=None if score is None else round(float(score), 4),
        mask_score=None if mask_score is None else round(float(mask_score), 4),
        source=source,
    )


def duplicate_rles(
    new: Sequence[dict], existing: Sequence[dict], *, iou: float = DUPLICATE_IOU
) -> np.ndarray:
    """``(len(new),)`` bool: which ``new`` RLEs overlap one of ``existing`` with mask IoU >= ``iou``."""
    if not new or not existing:
        return np.zeros(len(new), dtype=bool)
    a, b = (
        [{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in rles] for rles in (new, existing)
    )
    overlaps = np.asarray(mask_utils.iou(a, b, [0] * len(existing)))
    return overlaps.reshape(len(new), len(existing)).max(axis=1) >= iou


def with_ids(proposals: Iterable[Proposal], first: int) -> list[Proposal]:
    """``proposals`` numbered ``first, first + 1, ...``."""
    return [replace(p, id=first + n) for n, p in enumerate(proposals)]


def _checked_rle(rle: dict) -> dict:
    """A state file's COCO RLE ``{"size": [h, w], "counts": str}``, its runs checked without decoding."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if not isinstance(counts, str):
        raise ValueError(f"an RLE's counts must be COCO's compressed string, got {type(counts).__name__}")
    runs = rle_counts(counts)
    if height < 1 or width < 1 or any(run < 0 for run in runs) or sum(runs) != height * width:
        raise ValueError(f"an RLE whose runs do not cover its {width}x{height} mask")
    return {"size": [height, width], "counts": counts}


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
