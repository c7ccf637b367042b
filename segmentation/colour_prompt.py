"""A colour prompt: each box's colour-distance map given to SAM as its dense mask prompt.

A box tells SAM where a defect is, not what colour the part's own surface has; on real photos
most of its error lies on the blurred edges of stains, where an annotator's outline follows how
far a pixel's colour is from the surface (``segmentation/colour_head.py``). SAM has an input
for a per-pixel hint: the low-resolution ``mask_input`` it otherwise takes back from an earlier
prediction, embedded by the prompt encoder's ``mask_downscaling``. Here each box gets a map on
that ``(4h, 4w)`` grid (the padded model input, :func:`segmentation.low_res.to_low_res_grid`):

- inside the box, ``(d - centre) / scale`` clipped to ``+-clip``, with ``d`` the pixel's CIE76
  distance to the median colour of the box's border (:func:`segmentation.colour_head.colour_distance`);
- ``-clip`` outside the box and in the padding.

A box too small for its map to say anything gets none: a map row of NaN, which
:func:`segmentation.predict.decode` reads as no mask prompt for that box (SAM's ``no_mask_embed``, as
without a colour prompt). That is a box without one cell of the grid wholly inside the pixels off its
border (:func:`readable_box`): in a box of 1 or 2 px every pixel is its border, so the distance was the
defect's to itself and the map read "surface" all over; and a map narrower than a cell was averaged
into the ``-clip`` around it. Either way the map told SAM there was nothing in the box, and a speck's
mask was lost.

The defaults come from the colour head's zero-shot fit on ``hazelnut_toy`` (its decision boundary
at ``d`` ~ 22, one unit of ``d`` worth half a SAM logit). Only box-only prompts get the map:
prompts with points, and SAM's own corrective rounds (which feed back its logits), are left as
they are.

Untrained, MobileSAM's own ``mask_downscaling`` reading the map raised ``hazelnut_toy``'s 5-fold
test IoU from 0.830 to 0.845; trained with it (``colour_prompt: true`` in
``segmentation.train``, the downscaling tuned at ``colour_prompt_lr``) and the colour head on top,
0.862 (``bench/experiments/sam_colour_prompt/``, bench/README.md). A ``decoder.pt`` of such a run
carries the prompt (:meth:`ColourPrompt.to_dict`); evaluation, the cascade, the annotation
page's box proposals and the anomaly regions' SAM masks then give it to every box
(``--no-colour-prompt``, in each of them, leaves it out). With test-time flips each view's boxes get
the map drawn on that view (:mod:`segmentation.tta`).
It works in the whole photo's frame: not with crops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from common.errors import UserError
from segmentation.colour_head import (
    ColourHead,
    box_window,
    colour_distance,
    finite_number,
    refuse_crops,
    refuse_idle_leave_out,
)
from segmentation.embeddings import ImageEmbedding
from segmentation.low_res import to_low_res_grid

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: The map's defaults: ``(d - CENTRE) / SCALE`` inside the box, clipped to ``+-CLIP``; ``-CLIP`` elsewhere.
CENTRE, SCALE, CLIP = 22.0, 2.0, 12.0


@dataclass(frozen=True)
class ColourPrompt:
    """How a box's colour-distance map is made (see the module).

    Attributes:
        centre: the CIE76 distance that maps to logit 0.
        scale: distance units per logit.
        clip: the map's magnitude limit; outside the box it is ``-clip``.
    """

    centre: float = CENTRE
    scale: float = SCALE
    clip: float = CLIP

    def box_map(self, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """``(H, W)`` float32 map of one xyxy box at the photo's size (``-clip`` outside it).

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB photo.
            box: ``(x0, y0, x1, y1)`` in its pixels.
        """
        out = np.full(rgb.shape[:2], -self.clip, np.float32)
        window = box_window(box, rgb.shape[:2])
        if window[0].stop > window[0].start and window[1].stop > window[1].start:
            distance = colour_distance(rgb, window)
            out[window] = np.clip((distance - self.centre) / self.scale, -self.clip, self.clip)
        return out

    def maps(self, sam: Sam, emb: ImageEmbedding, rgb: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
        """``(N, 1, 4h, 4w)`` float32 ``mask_input`` of N boxes on ``sam.device``; NaN all over the row of
        a box too small for a map (:func:`readable_box`: no mask prompt for it, see the module).

        Args:
            sam: the model (its input size and logit grid).
            emb: the photo's embedding (its original and input size).
            rgb: ``(H, W, 3)`` uint8 RGB photo, ``(H, W) = emb.original_size``.
            boxes: ``(N, 4)`` xyxy prompt boxes in the photo's pixels.

        Raises:
            ValueError: ``rgb`` is not the embedding's photo size.
        """
        if tuple(rgb.shape[:2]) != tuple(emb.original_size):
            raise ValueError(f"photo is {rgb.shape[:2]} but its embedding is of {tuple(emb.original_size)}")
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        full = np.stack([self.box_map(rgb, box) for box in boxes]) if len(boxes) else None
        low = 4 * sam.prompt_encoder.image_embedding_size[0]
        if full is None:
            return torch.zeros((0, 1, low, low), device=sam.device)
        grid = to_low_res_grid(
            torch.from_numpy(full)[:, None],
            input_size=emb.input_size,
            img_size=sam.image_encoder.img_size,
            low_res=low,
            pad_value=-self.clip,
        )
        cell = sam.image_encoder.img_size / low  # model pixels a grid cell
        cell_hw = (
            cell * emb.original_size[0] / emb.input_size[0],
            cell * emb.original_size[1] / emb.input_size[1],
        )
        readable = torch.tensor([readable_box(box, rgb.shape[:2], cell_hw) for box in boxes])
        return grid.masked_fill(~readable[:, None, None, None], float("nan")).to(sam.device)

    def to_dict(self) -> dict:
        """What ``decoder.pt`` stores under ``colour_prompt``."""
        return {"centre": float(self.centre), "scale": float(self.scale), "clip": float(self.clip)}

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "decoder.pt") -> ColourPrompt:
        """The prompt stored by :meth:`to_dict`; one-line error for anything else."""
        if not isinstance(data, Mapping) or sorted(data) != ["centre", "clip", "scale"]:
            raise UserError(f"{source}: colour_prompt must hold centre, scale and clip, got {data!r}")
        values = [data["centre"], data["scale"], data["clip"]]
        if not all(map(finite_number, values)):
            raise UserError(f"{source}: colour_prompt values must be finite numbers, got {data!r}")
        if data["scale"] <= 0 or data["clip"] <= 0:
            raise UserError(f"{source}: colour_prompt scale and clip must be above 0, got {data!r}")
        return cls(float(data["centre"]), float(data["scale"]), float(data["clip"]))


def readable_box(box: Sequence[float], size: tuple[int, int], cell: tuple[float, float]) -> bool:
    """Whether xyxy ``box`` on an ``(H, W)`` photo holds a whole cell of the mask grid off its border.

    Args:
        box: ``(x0, y0, x1, y1)`` in the photo's pixels.
        size: the photo's ``(H, W)``.
        cell: a grid cell's ``(height, width)`` in the photo's pixels.

    A speck of one pixel has none; a box of 3 px, one pixel off its border (cells of one pixel):

    >>> readable_box((9, 9, 10, 10), (64, 64), (1, 1)), readable_box((9, 9, 12, 12), (64, 64), (1, 1))
    (False, True)
    """
    rows, cols = box_window(box, size)
    spans = ((rows.start + 1, rows.stop - 1, cell[0]), (cols.start + 1, cols.stop - 1, cell[1]))
    return all(math.ceil(start / side - 1e-6) * side + side <= stop + 1e-6 for start, stop, side in spans)


def mask_input_of(
    prompt: ColourPrompt | None, sam: Sam, emb: ImageEmbedding, rgb: np.ndarray | None, boxes: np.ndarray
) -> torch.Tensor | None:
    """Box prompts' ``mask_input``: ``prompt``'s maps (:meth:`ColourPrompt.maps`), or None (no prompt)."""
    return None if prompt is None else prompt.maps(sam, emb, rgb, boxes)


def refuse_idle_no_colour_prompt(prompt: ColourPrompt | None, checkpoint: object, *, flag: str) -> None:
    """Refuses ``--no-colour-prompt`` where it changes nothing: zero-shot SAM, or a checkpoint without one.

    Call it only when the flag was given. Every command with ``--no-colour-prompt`` shares it.

    Args:
        prompt: the colour prompt ``checkpoint`` carries; None: none (or a full state dict).
        checkpoint: the SAM checkpoint given; None (or empty): zero-shot SAM.
        flag: the option that names the checkpoint (``--checkpoint``, ``--sam``).

    Raises:
        UserError: always, unless ``checkpoint`` carries a ``prompt``.
    """
    refuse_idle_leave_out(
        prompt,
        checkpoint,
        part="colour prompt",
        flag=flag,
        carrier="a decoder.pt of a colour_prompt=true run does",
    )


def refuse_colour_with_crops(
    head: ColourHead | None, prompt: ColourPrompt | None, crop_fraction: float, source: object = None
) -> None:
    """Refuses zoomed crops for a checkpoint whose colour head or colour prompt applies (both work on the
    whole photo), in one line naming the flag that leaves out each that applies.

    Every command with ``--crop-fraction`` shares it (with both, each refused alone in turn sent the user
    back twice).

    Args:
        head, prompt: what the checkpoint carries and the command applies (None: none, or left out).
        crop_fraction: ``--crop-fraction``; 0: off.
        source: the checkpoint, named in the message.

    Raises:
        UserError: ``crop_fraction`` above 0 with a head or a prompt.
    """
    if crop_fraction <= 0 or (head is None and prompt is None):
        return
    refuse_crops(head if prompt is None else None, crop_fraction, source)  # a head alone: in its own words
    name = source or "the SAM checkpoint"
    if head is None:
        raise UserError(
            f"{name} carries a colour prompt, which works on the whole photo: drop --crop-fraction, "
            "or pass --no-colour-prompt"
        )
    raise UserError(
        f"{name} carries a colour head and a colour prompt, which work on the whole photo: "
        "drop --crop-fraction, or pass --no-colour-head --no-colour-prompt"
    )
