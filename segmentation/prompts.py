"""Prompts for SAM mask-decoder training, simulated from a ground-truth instance as in the SAM paper.

A training sample is one ground-truth instance: an ``(H, W)`` bool mask in the
pixels of the original image. From it we draw what a user (or a detector) would
have given SAM: a jittered box, a few clicks, or both; during interactive
training, further clicks come from the error of the previous prediction
(:func:`corrective_click`).

Coordinates are continuous image coordinates in original-image pixels, the
convention of ``converters.masks`` and of detector boxes: pixel ``(row r, col
c)`` covers ``[c, c+1) x [r, r+1)``, so

- a box is ``xyxy`` on pixel *edges* (``x2``, ``y2`` exclusive): a one-pixel
  mask at row 2, col 3 has box ``[3, 2, 4, 3]``;
- a point is ``xy`` at a pixel *centre*, ``(c + 0.5, r + 0.5)``: ``floor`` of a
  point gives back the ``(col, row)`` it was drawn from.

SAM's ``SamPredictor`` takes boxes and points in these original-image pixels
(scaled to the 1024-px input by ``ResizeLongestSide.apply_boxes`` /
``apply_coords``). Its ``PromptEncoder`` then adds 0.5 to every coordinate it
receives; that is one constant offset, the same for boxes and points at
training and at inference, so what matters is that every caller (trainer,
box-prompted prediction, annotation clicks) uses this one convention.

All functions are pure: randomness comes from the ``np.random.Generator``
passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from common.config import Option, Schema
from converters.masks import mask_to_xyxy

#: Label of a padding point in a stacked batch: SAM's ``PromptEncoder`` embeds
#: label -1 as "not a point", the same padding it adds itself.
PAD_LABEL = -1


@dataclass(frozen=True)
class PromptConfig:
    """How prompts are drawn from a ground-truth mask (defaults follow the SAM paper).

    Attributes:
        box_jitter: std of the noise added to each box coordinate, as a
            fraction of the box side (width for x, height for y). SAM: 10 %.
        max_jitter_px: the noise on a coordinate is clipped to this many
            pixels. SAM: 20 px.
        p_box: probability that a sample gets a box prompt rather than points.
        n_positive: most positive points; a sample draws 1..n_positive.
        n_negative: most negative points; a sample draws 1..n_negative
            (none when 0).
        negative_margin: negatives are drawn outside the mask but inside its
            box grown by this fraction of its side on every edge, where the
            model must learn the boundary; anywhere outside the mask when that
            ring is empty.
        box_and_points: probability that a sample gets a box *and* points;
            ``p_box`` decides among the other samples.
    """

    box_jitter: float = 0.1
    max_jitter_px: float = 20.0
    p_box: float = 0.5
    n_positive: int = 1
    n_negative: int = 0
    negative_margin: float = 0.1
    box_and_points: float = 0.0

    def __post_init__(self) -> None:
        # The ranges are declared once, in PROMPT_OPTIONS, for this class and for the
        # ``prompts`` section of a training config alike.
        prompt_schema().check(asdict(self))


#: What each :class:`PromptConfig` field accepts (the keyword arguments of its
#: :class:`~common.config.Option`, less the default, which is the field's).
PROMPT_OPTIONS: dict[str, dict] = {
    "box_jitter": dict(kind=float, low=0.0, help="std of box-corner noise, fraction of the box side"),
    "max_jitter_px": dict(kind=float, low=0.0, help="box-corner noise clipped to this many pixels"),
    "p_box": dict(kind=float, low=0.0, high=1.0, help="probability of a box prompt, else points"),
    "n_positive": dict(kind=int, low=1, help="most positive points (a point prompt needs one)"),
    "n_negative": dict(kind=int, low=0, help="most negative points (0: none)"),
    "negative_margin": dict(kind=float, low=0.0, help="negatives within the box grown by this fraction"),
    "box_and_points": dict(kind=float, low=0.0, high=1.0, help="probability of a box and points"),
}


def prompt_schema(**defaults: object) -> Schema:
    """:class:`PromptConfig`'s fields as a config section, with its defaults unless ``defaults`` names others.

    >>> prompt_schema(n_positive=3).defaults()["n_positive"]
    3
    """
    unknown = sorted(set(defaults) - set(PROMPT_OPTIONS))
    if unknown:
        raise ValueError(f"PromptConfig has no fields {unknown}")
    values = {field.name: field.default for field in fields(PromptConfig)} | defaults
    return Schema({name: Option(values[name], **option) for name, option in PROMPT_OPTIONS.items()})


@dataclass(frozen=True, eq=False)  # eq=False: a generated __eq__ on arrays raises; compare fields instead
class Prompt:
    """The prompt of one sample, in original-image pixels (see the module docstring).

    Attributes:
        box: ``(4,)`` float xyxy on pixel edges, or None.
        points: ``(K, 2)`` float xy at pixel centres (``col + 0.5, row + 0.5``), or None.
        labels: ``(K,)`` int, 1 positive / 0 negative, or None (None exactly when ``points`` is).
    """

    box: np.ndarray | None = None
    points: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.box is None and self.points is None:
            raise ValueError("a prompt needs a box, points, or both")
        if (self.points is None) != (self.labels is None):
            raise ValueError("points and labels go together")
        if self.box is not None and np.shape(self.box) != (4,):
            raise ValueError(f"box must be (4,) xyxy, got shape {np.shape(self.box)}")
        if self.points is not None:
            k = len(self.points)
            if np.shape(self.points) != (k, 2) or np.shape(self.labels) != (k,):
                raise ValueError(
                    f"points must be (K, 2) and labels (K,), "
                    f"got {np.shape(self.points)} and {np.shape(self.labels)}"
                )

    @property
    def kind(self) -> str:
        """``"box"``, ``"points"`` or ``"box+points"``."""
        if self.points is None:
            return "box"
        return "points" if self.box is None else "box+points"


@dataclass(frozen=True, eq=False)
class PromptBatch:
    """Prompts of a batch stacked for ``PromptEncoder`` (still numpy, original-image pixels).

    Attributes:
        boxes: ``(B, 4)`` float xyxy, or None.
        points: ``(B, K, 2)`` float xy, or None; ``K`` is the most points of any sample.
        labels: ``(B, K)`` int, ``PAD_LABEL`` (-1) where a sample had fewer than ``K`` points.
    """

    boxes: np.ndarray | None
    points: np.ndarray | None
    labels: np.ndarray | None


def stack_prompts(prompts: Sequence[Prompt]) -> PromptBatch:
    """Stacks the prompts of a batch; all must be of the same :attr:`Prompt.kind`.

    ``PromptEncoder`` takes one tensor of boxes and one of points for the whole
    batch, so a batch cannot mix box-only and point prompts: group samples by
    kind before batching. Samples with fewer points are padded with points at
    ``(0, 0)`` labelled ``PAD_LABEL`` (-1), which SAM embeds as "not a point".

    Raises:
        ValueError: empty list or mixed kinds.
    """
    if not prompts:
        raise ValueError("no prompts to stack")
    kinds = {prompt.kind for prompt in prompts}
    if len(kinds) > 1:
        raise ValueError(
            f"cannot stack prompts of different kinds {sorted(kinds)}; batch each kind separately"
        )
    boxes = None if prompts[0].box is None else np.stack([p.box for p in prompts]).astype(float)
    if prompts[0].points is None:
        return PromptBatch(boxes, None, None)
    k = max(len(p.points) for p in prompts)
    points = np.zeros((len(prompts), k, 2), dtype=float)
    labels = np.full((len(prompts), k), PAD_LABEL, dtype=np.int64)
    for index, prompt in enumerate(prompts):
        points[index, : len(prompt.points)] = prompt.points
        labels[index, : len(prompt.labels)] = prompt.labels
    return PromptBatch(boxes, points, labels)


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight box of ``mask`` ``(H, W)`` bool as ``(4,)`` float xyxy on pixel edges (max exclusive).

    The same geometry as the converters' boxes (it is ``converters.masks.mask_to_xyxy``).

    >>> mask = np.zeros((4, 5), bool); mask[2, 3] = True
    >>> mask_to_box(mask).tolist()
    [3.0, 2.0, 4.0, 3.0]

    Raises:
        ValueError: the mask is empty.
    """
    return mask_to_xyxy(mask)


def _fit_interval(low: float, high: float, size: int) -> tuple[float, float]:
    """``[low, high]`` ordered, clipped to ``[0, size]`` and at least 1 px wide (``size >= 1``)."""
    low, high = sorted((float(np.clip(low, 0, size)), float(np.clip(high, 0, size))))
    if high - low < 1.0:
        # Jitter collapsed the side: a 1-px side around the same centre, moved back inside the image.
        low = float(np.clip((low + high) / 2 - 0.5, 0, size - 1))
        high = low + 1.0
    return low, high


def jitter_box(
    box: np.ndarray,
    *,
    image_size: tuple[int, int],
    rng: np.random.Generator,
    fraction: float = 0.1,
    max_px: float = 20.0,
) -> np.ndarray:
    """A box with SAM's training noise: each coordinate moved by ``N(0, fraction * side)``, up to ``max_px``.

    Args:
        box: ``(4,)`` xyxy on pixel edges.
        image_size: ``(H, W)`` of the image, in pixels.
        rng: source of the noise.
        fraction: noise std as a fraction of the box side (width for x, height for y).
        max_px: the noise on each coordinate is clipped to ``[-max_px, max_px]`` pixels.

    Returns:
        ``(4,)`` float xyxy inside ``[0, W] x [0, H]`` with ``x2 - x1 >= 1`` and
        ``y2 - y1 >= 1``.
    """
    height, width = image_size
    box = np.asarray(box, dtype=float)
    side = np.tile(box[2:] - box[:2], 2)  # (w, h, w, h)
    noise = np.clip(rng.normal(0.0, 1.0, size=4) * fraction * side, -max_px, max_px)
    x1, y1, x2, y2 = box + noise
    x1, x2 = _fit_interval(x1, x2, width)
    y1, y2 = _fit_interval(y1, y2, height)
    return np.array([x1, y1, x2, y2])


def _pixel_centres(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``(K, 2)`` float xy at the centres of the pixels ``(rows[i], cols[i])``."""
    return np.stack([cols + 0.5, rows + 0.5], axis=-1).astype(float).reshape(-1, 2)


def _sample_pixels(region: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` distinct pixels of ``region`` ``(H, W)`` bool, uniformly, as ``(K, 2)`` pixel centres."""
    rows, cols = np.nonzero(region)
    chosen = rng.choice(rows.size, size=min(max(n, 0), rows.size), replace=False)
    return _pixel_centres(rows[chosen], cols[chosen])


def sample_positive_points(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` distinct pixels of ``mask``, uniformly, as pixel centres.

    Args:
        mask: ``(H, W)`` bool.
        n: how many points; fewer come back when the mask has fewer pixels.
        rng: source of the draw.

    Returns:
        ``(K, 2)`` float xy, ``K = min(n, mask.sum())`` (``(0, 2)`` for an empty mask).
    """
    return _sample_pixels(np.asarray(mask, dtype=bool), n, rng)


def _near_region(mask: np.ndarray, margin: float) -> np.ndarray:
    """``(H, W)`` bool: pixels overlapping the mask's box grown by ``margin`` of its side on each edge."""
    height, width = mask.shape
    x1, y1, x2, y2 = mask_to_box(mask)
    grow_x, grow_y = margin * (x2 - x1), margin * (y2 - y1)
    # A pixel [c, c+1) overlaps [x1 - g, x2 + g) when c + 1 > x1 - g and c < x2 + g.
    col_lo, col_hi = max(int(np.floor(x1 - grow_x)), 0), min(int(np.ceil(x2 + grow_x)), width)
    row_lo, row_hi = max(int(np.floor(y1 - grow_y)), 0), min(int(np.ceil(y2 + grow_y)), height)
    near = np.zeros_like(mask, dtype=bool)
    near[row_lo:row_hi, col_lo:col_hi] = True
    return near


def sample_negative_points(
    mask: np.ndarray, n: int, rng: np.random.Generator, *, margin: float = 0.1
) -> np.ndarray:
    """Up to ``n`` distinct background pixels near ``mask``, as pixel centres.

    Negatives are drawn uniformly from the pixels outside the mask that overlap
    its box grown by ``margin`` of the side on every edge: there the model has
    to learn where the defect stops. When that ring holds fewer than ``n``
    pixels (a mask filling its box with ``margin`` 0, or touching the image
    border), the rest are drawn uniformly from anywhere else outside the mask.

    Args:
        mask: ``(H, W)`` bool.
        n: how many points.
        rng: source of the draw.
        margin: growth of the box on each edge, as a fraction of its side.

    Returns:
        ``(K, 2)`` float xy, ``K = min(n, (~mask).sum())``: fewer only when the
        mask covers (nearly) the whole image.
    """
    mask = np.asarray(mask, dtype=bool)
    background = ~mask
    near = _near_region(mask, margin) & background if mask.any() else background
    points = _sample_pixels(near, n, rng)
    if len(points) < n:
        points = np.concatenate([points, _sample_pixels(background & ~near, n - len(points), rng)])
    return points


def sample_prompt(mask: np.ndarray, config: PromptConfig, rng: np.random.Generator) -> Prompt:
    """One training prompt for a ground-truth instance, drawn as in the SAM paper.

    With probability ``config.box_and_points`` the sample gets a jittered box
    and points; otherwise a jittered box with probability ``config.p_box``,
    else points only. Points are 1..``n_positive`` positives on the mask and
    1..``n_negative`` negatives near it (none when ``n_negative`` is 0).

    Args:
        mask: ``(H, W)`` bool, one non-empty instance in original-image pixels.
        config: how to draw.
        rng: source of every random choice (a seeded generator gives the same prompt).

    Raises:
        ValueError: the mask is empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("cannot prompt for an empty mask")
    both = rng.random() < config.box_and_points
    use_box = both or rng.random() < config.p_box
    use_points = both or not use_box
    box = None
    if use_box:
        box = jitter_box(
            mask_to_box(mask),
            image_size=mask.shape,
            rng=rng,
            fraction=config.box_jitter,
            max_px=config.max_jitter_px,
        )
    if not use_points:
        return Prompt(box=box)
    positives = sample_positive_points(mask, int(rng.integers(1, config.n_positive + 1)), rng)
    n_negative = int(rng.integers(1, config.n_negative + 1)) if config.n_negative > 0 else 0
    negatives = sample_negative_points(mask, n_negative, rng, margin=config.negative_margin)
    points = np.concatenate([positives, negatives])
    labels = np.concatenate([np.ones(len(positives), np.int64), np.zeros(len(negatives), np.int64)])
    return Prompt(box=box, points=points, labels=labels)


def _depth(region: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32: Euclidean distance of each pixel of ``region`` to the nearest pixel outside it.

    The region is padded with background first so that the image border counts
    as a boundary: a click should sit inside the error, not on the image edge.
    """
    padded = np.pad(region.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def corrective_click(
    gt: np.ndarray, pred: np.ndarray, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, int] | None:
    """The next simulated click after a prediction, as in SAM's interactive training (RITM's clicker).

    The error type is the one whose region is larger in the sense that
    matters for a click, its depth: the false-negative region (``gt & ~pred``)
    when its deepest pixel is farther from its boundary than the
    false-positive region's (``pred & ~gt``), else the false-positive region;
    equal depths go to the larger area, then to the false negatives. The click
    is the pixel of that region farthest from its boundary (the image border
    counts as boundary), so it sits deep inside the error and not on an edge
    the model cannot resolve.

    Args:
        gt: ``(H, W)`` bool ground truth.
        pred: ``(H, W)`` bool prediction (binarised mask).
        rng: breaks ties between equally deep pixels uniformly; without it the
            first in row-major order is taken.

    Returns:
        ``(point, label)``: ``point`` ``(2,)`` float xy at the pixel centre,
        ``label`` 1 for a click on a false negative (add this), 0 on a false
        positive (remove this); None when ``pred`` equals ``gt``.

    Raises:
        ValueError: ``gt`` and ``pred`` differ in shape.
    """
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"gt {gt.shape} and pred {pred.shape} differ in shape")
    false_negative, false_positive = gt & ~pred, pred & ~gt
    if not (false_negative.any() or false_positive.any()):
        return None
    fn_depth, fp_depth = _depth(false_negative), _depth(false_positive)
    fn_key = (float(fn_depth.max()), int(false_negative.sum()))
    fp_key = (float(fp_depth.max()), int(false_positive.sum()))
    positive = fn_key >= fp_key
    depth = fn_depth if positive else fp_depth
    rows, cols = np.nonzero(depth == depth.max())
    index = 0 if rng is None else int(rng.integers(rows.size))
    return _pixel_centres(rows[index : index + 1], cols[index : index + 1])[0], int(positive)
