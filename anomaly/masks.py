"""Regions of the anomaly map -> instance masks: SAM prompted with each region's box, or the region itself.

SAM outlines what the coarse, blurred map only locates. The segmenter is segmentation's own
(:func:`segmentation.models.load_sam` for zero-shot MobileSAM, :func:`segmentation.finetuned.load_finetuned`
for a ``decoder.pt`` from ``segmentation.train``), run through its public calls
(:func:`segmentation.embeddings.embed_images`, :func:`segmentation.predict.predict_masks`): one encoder
run per photo, one decoder run for all its boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly.regions import Region


@dataclass(frozen=True)
class Instances:
    """A photo's instance masks.

    Attributes:
        masks: ``(N, H, W)`` bool.
        boxes: ``(N, 4)`` float xyxy (the regions' boxes, SAM's prompts).
        scores: ``(N,)`` the regions' peak map values (ranking).
        mask_scores: ``(N,)`` SAM's predicted IoU, or 1.0 for region masks.
    """

    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    mask_scores: np.ndarray


class Segmenter:
    """Masks for a photo's regions. ``sam=None``: the thresholded regions are the masks.

    Args:
        sam: a ``segment_anything`` SAM, or None.
        name: how reports name it (``mobile_sam zero-shot``, ``decoder.pt``, ``map threshold``).
    """

    def __init__(self, sam=None, name: str = "map threshold") -> None:
        self.sam = sam
        self.name = name

    def __call__(self, image: np.ndarray, regions: Sequence[Region]) -> Instances:
        """Args: image ``(H, W, 3)`` uint8 RGB; regions from :func:`anomaly.regions.map_regions`."""
        height, width = image.shape[:2]
        if not regions:
            empty = np.zeros(0, np.float32)
            return Instances(np.zeros((0, height, width), bool), np.zeros((0, 4)), empty, empty)
        boxes = np.stack([r.box for r in regions])
        scores = np.array([r.peak for r in regions], np.float32)
        if self.sam is None:
            masks = np.stack([r.mask for r in regions])
            return Instances(masks, boxes, scores, np.ones(len(regions), np.float32))
        from segmentation.embeddings import embed_images
        from segmentation.predict import predict_masks

        [embedding] = embed_images(self.sam, [image])
        masks, iou, _ = predict_masks(self.sam, embedding, boxes=boxes, multimask_output=False)
        masks = masks[:, 0]
        # SAM found nothing inside a box: keep the map's own region rather than lose the defect
        for index, region in enumerate(regions):
            if not masks[index].any():
                masks[index] = region.mask
        return Instances(masks, boxes, scores, iou[:, 0])


def load_segmenter(sam: str | Path | None, *, zero_shot: bool = False, model: str | None = None) -> Segmenter:
    """The segmenter the commands' ``--sam`` names.

    Args:
        sam: a ``decoder.pt`` (or full SAM state dict) from ``segmentation.train``; None for none.
        zero_shot: with ``sam=None``, use SAM ``model`` with its official weights (MobileSAM's
            ``vit_t`` resolves offline); False: the map's regions are the masks.
        model: the SAM registry model: for zero-shot (default ``vit_t``, MobileSAM) or a full
            state dict (a ``decoder.pt`` records its own).

    Raises:
        UserError: an unreadable checkpoint, or SAM weights that cannot be resolved.
    """
    if sam is not None:
        from segmentation.finetuned import load_finetuned

        loaded, name = load_finetuned(sam, model=model)
        return Segmenter(loaded, f"{name} fine-tuned ({Path(sam).name})")
    if zero_shot:
        from segmentation.models import load_sam

        name = model or "vit_t"
        return Segmenter(load_sam(name), f"{name} zero-shot")
    return Segmenter(None)
