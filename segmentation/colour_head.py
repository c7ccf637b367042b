"""A colour head on SAM's box masks: inside each box, a per-pixel decision from SAM's logit and colour.

On real photos most of SAM's error lies a few pixels from the annotator's outline, on the
blurred edges of stains (``bench/results/sam_headroom.md``: on ``hazelnut_toy`` 0.830 IoU,
0.877 with every error beyond 3 px fixed). Where an annotator draws that edge depends on how
far a pixel's colour is from the part's own surface, which a box prompt does not tell SAM.
The head is a logistic regression per pixel inside each prompt box on two features:

- SAM's logit, clipped to +-:data:`LOGIT_CLIP` and divided by :data:`LOGIT_SCALE`;
- the pixel's CIE76 colour distance (Lab) to the median colour of the box's border pixels
  (the local surface colour), divided by :data:`DISTANCE_SCALE`;

and a bias. Its output is a logit again (threshold 0, as SAM's); outside the box SAM's
logit is kept. Boxes whose longest side is below :data:`MIN_BOX_FRACTION` of the photo's
longest side are left to SAM, in the fit and when applied: on ``hazelnut_toy`` the head
cost small instances IoU (a small tight box is mostly defect and outline, and its border
few pixels), and leaving them out kept most of its gain on the union IoU and all of the
instance IoU (``bench/experiments/sam_colour_head/``, docs/benchmarks.md).

:func:`fit_colour_head` fits the three weights on a data set's train instances
(``segmentation.train`` with ``colour_head: true``, which keeps it only where it raises the
val IoU and stores it in ``decoder.pt``); :meth:`ColourHead.refine` applies it to
full-resolution logits of whole-photo box prompts: ``segmentation.evaluate``, the
inspection cascade, the annotation page's box proposals and the anomaly regions' SAM masks
(:mod:`anomaly.masks`) do so when ``decoder.pt`` carries one. It works in the photo's frame,
so it does not combine with zoomed crops.

Written by hand: three weights on a few hundred thousand pixels are one LBFGS call in torch,
which the project already has (scikit-learn's LogisticRegression would add a dependency
for the same fit).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from common.errors import UserError

#: SAM's logits are clipped to this magnitude before scaling (saturated pixels stay decided).
LOGIT_CLIP = 20.0
LOGIT_SCALE = 10.0
#: CIE76 distances are divided by this (a clearly visible colour difference is ~10-20).
DISTANCE_SCALE = 20.0
#: The features' names, in the order of :attr:`ColourHead.weights`.
FEATURES: tuple[str, ...] = ("logit", "colour_distance", "bias")
#: Most pixels one fit uses (sampled, seeded); more change the three weights very little.
MAX_PIXELS = 400_000
#: Boxes with a longest side below this fraction of the photo's longest side are left to SAM
#: (the fraction below which zoomed crops call a box small, :mod:`segmentation.crops`).
MIN_BOX_FRACTION = 0.125


def box_window(box: Sequence[float], size: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns of the pixels a box ``(x0, y0, x1, y1)`` touches, clipped to an ``(H, W)`` image."""
    height, width = size
    x0, y0 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
    x1, y1 = min(math.ceil(box[2]), width), min(math.ceil(box[3]), height)
    return slice(y0, max(y1, y0)), slice(x0, max(x1, x0))


def colour_distance(rgb: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
    """``(h, w)`` float32 CIE76 distance of each pixel of ``window`` to the median colour of its border.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB photo.
        window: rows and columns (:func:`box_window`), at least one pixel each way.
    """
    lab = cv2.cvtColor(rgb[window].astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    return np.linalg.norm(lab - np.median(border, axis=0), axis=-1).astype(np.float32)


def features(logit: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """``(..., 3)`` float32 features of :data:`FEATURES` from same-shaped logits and colour distances."""
    z = np.clip(logit, -LOGIT_CLIP, LOGIT_CLIP) / LOGIT_SCALE
    return np.stack([z, distance / DISTANCE_SCALE, np.ones_like(z)], axis=-1).astype(np.float32)


def box_features(
    logits: np.ndarray, rgb: np.ndarray, boxes: np.ndarray, *, min_box_fraction: float = 0.0
) -> Iterator[tuple[int, tuple[slice, slice], np.ndarray]]:
    """Per box with pixels: its index, its window and the ``(h, w, 3)`` features of the window's pixels.

    Args:
        logits: ``(N, H, W)`` SAM's logits of ``boxes``, in the photo's frame.
        rgb: ``(H, W, 3)`` uint8 RGB photo.
        boxes: ``(N, 4)`` xyxy prompt boxes in the photo's pixels.
        min_box_fraction: boxes whose longest side is below this fraction of the photo's
            longest side are passed over.
    """
    size = logits.shape[1:]
    if rgb.shape[:2] != size:
        raise ValueError(f"photo is {rgb.shape[:2]} but the logits are {size}")
    smallest = min_box_fraction * max(size)
    for index, box in enumerate(np.asarray(boxes, dtype=float).reshape(-1, 4)):
        if max(box[2] - box[0], box[3] - box[1]) < smallest:
            continue
        window = box_window(box, size)
        if window[0].stop > window[0].start and window[1].stop > window[1].start:
            yield index, window, features(logits[index][window], colour_distance(rgb, window))


def training_pixels(
    logits: np.ndarray,
    rgb: np.ndarray,
    boxes: np.ndarray,
    truth: np.ndarray,
    *,
    min_box_fraction: float = MIN_BOX_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """``(P, 3)`` features and ``(P,)`` labels of every pixel of one photo's boxes (small ones left out).

    Args:
        logits, rgb, boxes, min_box_fraction: as :func:`box_features`.
        truth: ``(H, W)`` bool, every defect pixel of the photo (a neighbour's defect inside a
            box counts as defect too: what the union IoU scores).
    """
    xs, ys = [np.zeros((0, len(FEATURES)), np.float32)], [np.zeros(0, bool)]
    for _, window, x in box_features(logits, rgb, boxes, min_box_fraction=min_box_fraction):
        xs.append(x.reshape(-1, len(FEATURES)))
        ys.append(truth[window].reshape(-1))
    return np.concatenate(xs), np.concatenate(ys)


@dataclass(frozen=True)
class ColourHead:
    """Fitted weights of :data:`FEATURES`, the boxes it decides, and the val IoU without and with it.

    Attributes:
        weights: of :data:`FEATURES`.
        min_box_fraction: boxes whose longest side is below this fraction of the photo's longest
            side keep SAM's logits (:func:`fit_colour_head` sets :data:`MIN_BOX_FRACTION`).
        val_iou: the val IoU without and with the head, when training measured it.
    """

    weights: tuple[float, ...]
    min_box_fraction: float = 0.0
    val_iou: tuple[float, float] | None = None

    def refine(self, logits: np.ndarray, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``(N, H, W)`` float32 logits: the head's inside each box, SAM's outside them and in small boxes.

        Args:
            logits: ``(N, H, W)`` SAM's full-resolution logits of ``boxes`` (threshold 0).
            rgb: ``(H, W, 3)`` uint8 RGB photo they belong to.
            boxes: ``(N, 4)`` xyxy prompt boxes in the photo's pixels.
        """
        out = np.array(logits, dtype=np.float32, copy=True)
        weights = np.asarray(self.weights, dtype=np.float32)
        for index, window, x in box_features(out, rgb, boxes, min_box_fraction=self.min_box_fraction):
            out[index][window] = x @ weights
        return out

    def to_dict(self) -> dict:
        """What ``decoder.pt`` stores under ``colour_head``."""
        return {
            "features": list(FEATURES),
            "weights": [float(w) for w in self.weights],
            "min_box_fraction": float(self.min_box_fraction),
            "val_iou": None if self.val_iou is None else [float(v) for v in self.val_iou],
        }

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "decoder.pt") -> ColourHead:
        """The head stored by :meth:`to_dict`; one-line error for anything else."""
        if not isinstance(data, Mapping) or list(data.get("features", ())) != list(FEATURES):
            raise UserError(f"{source}: colour_head is not a colour head of features {', '.join(FEATURES)}")
        weights = data.get("weights")
        if not isinstance(weights, list | tuple) or len(weights) != len(FEATURES):
            raise UserError(f"{source}: colour_head needs {len(FEATURES)} weights, got {weights!r}")
        if not all(finite_number(w) for w in weights):
            raise UserError(f"{source}: colour_head weights must be finite numbers, got {weights!r}")
        fraction = data.get("min_box_fraction", 0.0)
        if not finite_number(fraction) or not 0 <= fraction <= 1:
            raise UserError(f"{source}: colour_head min_box_fraction must be in [0, 1], got {fraction!r}")
        val = data.get("val_iou")
        if val is not None and not (
            isinstance(val, list | tuple) and len(val) == 2 and all(map(finite_number, val))
        ):
            raise UserError(f"{source}: colour_head val_iou must be two numbers or null, got {val!r}")
        return cls(
            tuple(float(w) for w in weights),
            float(fraction),
            None if val is None else (float(val[0]), float(val[1])),
        )


def finite_number(value: object) -> bool:
    """A finite int or float; not a bool (JSON's true is no weight)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def refuse_crops(head: ColourHead | None, crop_fraction: float, source: object = None) -> None:
    """Refuses a colour head together with zoomed crops: the head works on whole-photo logits.

    Raises:
        UserError: ``head`` is given and ``crop_fraction`` is above 0; ``source`` names the checkpoint.
    """
    if head is not None and crop_fraction > 0:
        raise UserError(
            f"{source or 'the SAM checkpoint'} carries a colour head, which works on whole-photo logits: "
            "drop --crop-fraction, or pass --no-colour-head"
        )


def refuse_idle_no_colour_head(head: ColourHead | None, checkpoint: object, *, flag: str) -> None:
    """Refuses ``--no-colour-head`` where it changes nothing: zero-shot SAM, or a checkpoint without a head.

    Call it only when the flag was given. Every command with ``--no-colour-head`` shares it.

    Args:
        head: the colour head ``checkpoint`` carries; None: none (or a full state dict).
        checkpoint: the SAM checkpoint given; None (or empty): zero-shot SAM.
        flag: the option that names the checkpoint (``--checkpoint``, ``--sam``).

    Raises:
        UserError: always, unless ``checkpoint`` carries a ``head``.
    """
    refuse_idle_leave_out(
        head, checkpoint, part="colour head", flag=flag, carrier="a decoder.pt of a run that kept one does"
    )


def refuse_idle_leave_out(carried: object, checkpoint: object, *, part: str, flag: str, carrier: str) -> None:
    """Refuses ``--no-<part>`` (a flag that leaves a ``decoder.pt``'s ``part`` out) where it changes nothing.

    Args:
        carried: the ``part`` ``checkpoint`` carries; None: none.
        checkpoint: the SAM checkpoint given; None (or empty): zero-shot SAM.
        part: what the flag leaves out, in words (``colour head``, ``colour prompt``).
        flag: the option that names the checkpoint (``--checkpoint``, ``--sam``).
        carrier: which checkpoints carry one, in words.

    Raises:
        UserError: always, unless ``checkpoint`` is given and carries one (``carried`` is not None).
    """
    option = "--no-" + part.replace(" ", "-")
    if not checkpoint:
        raise UserError(
            f"{option} leaves out a fine-tuned decoder's {part}: it applies only with "
            f"{flag} (zero-shot SAM has none)"
        )
    if carried is None:
        raise UserError(
            f"{option} leaves out a fine-tuned decoder's {part}, but {checkpoint} carries "
            f"none ({carrier}): drop {option}"
        )


def fit_colour_head(
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 0,
    max_pixels: int = MAX_PIXELS,
    min_box_fraction: float = MIN_BOX_FRACTION,
) -> ColourHead:
    """Logistic regression of ``y`` on ``x`` by LBFGS (weights start at zero; deterministic).

    Args:
        x: ``(P, 3)`` features of in-box pixels (:func:`box_features`).
        y: ``(P,)`` bool: the pixel is a defect.
        seed: which ``max_pixels`` pixels are used when there are more.
        min_box_fraction: the head's (:class:`ColourHead`); ``x`` should come from the same boxes
            (:func:`training_pixels` with the same value).

    Raises:
        UserError: no pixels, or pixels of one class only (nothing to separate).
    """
    x, y = np.asarray(x, dtype=np.float32).reshape(-1, len(FEATURES)), np.asarray(y, dtype=bool).reshape(-1)
    if len(x) == 0 or y.all() or not y.any():
        raise UserError(
            "colour head: the train boxes (but the small ones) need both defect and surface pixels to fit on"
        )
    if len(x) > max_pixels:
        pick = np.random.default_rng(seed).choice(len(x), max_pixels, replace=False)
        x, y = x[pick], y[pick]
    xt, yt = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    weights = torch.zeros(len(FEATURES), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights], max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ weights, yt)
        loss.backward()
        return loss

    optimiser.step(closure)
    return ColourHead(tuple(float(w) for w in weights.detach()), min_box_fraction)
