"""Regions of the anomaly map -> instance masks: SAM prompted with each region's box, or the region itself.

SAM outlines what the coarse, blurred map only locates. An outline that falls apart (a stain the map
saw as one blob, in several patches) becomes one instance per 8-connected part, the grain of the
ground truth and of the converters' instances. The segmenter is segmentation's own
(:func:`segmentation.models.load_sam` for zero-shot MobileSAM, :func:`segmentation.finetuned.load_finetuned`
for a ``decoder.pt`` from ``segmentation.train``), run through its public calls
(:func:`segmentation.embeddings.embed_images`, :func:`segmentation.predict.predict_masks`): one encoder
run per photo, one decoder run for all its boxes.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from anomaly.regions import Region, map_regions
from common.errors import UserError
from common.folders import check_output_folder
from common.io import embeddings_root

if TYPE_CHECKING:
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.embeddings import EmbeddingCache


@dataclass(frozen=True)
class Instances:
    """A photo's instance masks.

    Attributes:
        masks: ``(N, H, W)`` bool.
        boxes: ``(N, 4)`` float xyxy: the region's box (SAM's prompt), or a split part's own
            (:func:`split_parts`).
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
        cache: where SAM's image embeddings are kept between runs (the inspection cascade's
            :class:`~segmentation.embeddings.EmbeddingCache`), for photos given with their ``path``.
        colour_prompt: each region box's colour map as SAM's mask prompt (a ``decoder.pt`` of a
            ``colour_prompt: true`` run carries it, :mod:`segmentation.colour_prompt`); None: none.
    """

    def __init__(
        self,
        sam=None,
        name: str = "map threshold",
        cache: EmbeddingCache | None = None,
        colour_prompt: ColourPrompt | None = None,
    ) -> None:
        self.sam = sam
        self.name = name
        self.cache = cache
        self.colour_prompt = colour_prompt

    def __call__(
        self, image: np.ndarray, regions: Sequence[Region], *, min_area: int = 1, path: Path | None = None
    ) -> Instances:
        """The regions' masks, each SAM outline split into its parts (:func:`split_parts`).

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            regions: from :func:`anomaly.regions.map_regions`.
            min_area: an outline with two or more parts of this many pixels is split into them,
                its smaller specks dropped; any other outline stays whole.
            path: the photo's file (``image`` as read from it): its embedding comes from the cache.
        """
        height, width = image.shape[:2]
        if not regions:
            empty = np.zeros(0, np.float32)
            return Instances(np.zeros((0, height, width), bool), np.zeros((0, 4)), empty, empty)
        boxes = np.stack([r.box for r in regions])
        scores = np.array([r.peak for r in regions], np.float32)
        if self.sam is None:
            masks = np.stack([r.mask for r in regions])
            return Instances(masks, boxes, scores, np.ones(len(regions), np.float32))
        from segmentation.colour_prompt import mask_input_of
        from segmentation.embeddings import embed_images
        from segmentation.predict import predict_masks

        if self.cache is not None and path is not None:
            [embedding] = self.cache.embed([path], progress=False)
        else:
            [embedding] = embed_images(self.sam, [image])
        prompt = mask_input_of(self.colour_prompt, self.sam, embedding, image, boxes)
        masks, iou, _ = predict_masks(
            self.sam, embedding, boxes=boxes, mask_input=prompt, multimask_output=False
        )
        masks = masks[:, 0]
        # SAM found nothing inside a box: keep the map's own region rather than lose the defect
        for index, region in enumerate(regions):
            if not masks[index].any():
                masks[index] = region.mask
        return split_parts(Instances(masks, boxes, scores, iou[:, 0]), min_area)

    def noting_interrupts(self) -> contextlib.AbstractContextManager[None]:
        """On a Ctrl-C inside, a ``stopped:`` line saying how many embeddings its cache keeps for a rerun.

        :func:`segmentation.embeddings.noting_interrupts`, as the inspection cascade's (the photos are
        encoded as they come, those with a region alone); nothing without a cache (no SAM, ``--no-cache``).
        """
        if self.cache is None:
            return contextlib.nullcontext()
        from segmentation.embeddings import noting_interrupts

        return noting_interrupts(self.cache)


def split_parts(instances: Instances, min_area: int = 1) -> Instances:
    """Each mask of two or more parts of ``min_area`` pixels or more as one instance per such part.

    A part gets its own tight box and its mask's scores; smaller specks of a split mask are dropped.
    A mask with fewer such parts stays whole, with its box. In mask order, a mask's parts largest first.

    >>> m = np.zeros((1, 4, 9), bool); m[0, 1:3, 0:2] = m[0, 0:2, 5:9] = True
    >>> parts = split_parts(Instances(m, np.array([[0.0, 0, 9, 3]]), np.ones(1), np.ones(1)))
    >>> parts.boxes.tolist()
    [[5.0, 0.0, 9.0, 2.0], [0.0, 1.0, 2.0, 3.0]]
    """
    masks, boxes, picked = [], [], []
    for index, mask in enumerate(instances.masks):
        # a mask is a map of ones: its regions are its parts, with the regions' boxes
        parts = sorted(map_regions(mask.astype(np.float32), 0.5, min_area=min_area), key=lambda r: -r.area)
        if len(parts) < 2:
            masks.append(mask)
            boxes.append(instances.boxes[index])
            picked.append(index)
            continue
        for part in parts:
            masks.append(part.mask)
            boxes.append(part.box)
            picked.append(index)
    if not masks:
        return instances
    return Instances(
        np.stack(masks), np.stack(boxes), instances.scores[picked], instances.mask_scores[picked]
    )


def check_sam_flags(sam: str | Path | None, zero_shot: bool, model: str | None) -> None:
    """Refuses ``--sam`` with ``--sam-zero-shot``, and ``--sam-model`` without either (each ignored before).

    Raises:
        UserError: naming the flags.
    """
    if sam is not None and zero_shot:
        raise UserError(
            "--sam and --sam-zero-shot do not combine: --sam is a fine-tuned decoder.pt, --sam-zero-shot "
            "SAM's own weights; pass one"
        )
    if model is not None and sam is None and not zero_shot:
        raise UserError(f"--sam-model {model} needs --sam or --sam-zero-shot (without either, no SAM runs)")


def load_segmenter(
    sam: str | Path | None,
    *,
    zero_shot: bool = False,
    model: str | None = None,
    cache_dir: str | Path | None = None,
) -> Segmenter:
    """The segmenter the commands' ``--sam`` names.

    Args:
        sam: a ``decoder.pt`` (or full SAM state dict) from ``segmentation.train``; None for none.
        zero_shot: with ``sam=None``, use SAM ``model`` with its official weights (MobileSAM's
            ``vit_t`` resolves offline); False: the map's regions are the masks.
        model: the SAM registry model: for zero-shot (default ``vit_t``, MobileSAM) or a full
            state dict (a ``decoder.pt`` records its own).
        cache_dir: an embedding cache root (``<cache root>/embeddings``, shared with the inspection
            cascade); None: embeddings are computed and not kept.

    Raises:
        UserError: an unreadable checkpoint, SAM weights that cannot be resolved, or flags that do not
            combine (:func:`check_sam_flags`).
    """
    check_sam_flags(sam, zero_shot, model)
    if sam is not None:
        from segmentation.finetuned import load_colour_prompt, load_finetuned

        # the commands take no base file, and name the model --sam-model
        loaded, name = load_finetuned(sam, model=model, base_option="", model_option="--sam-model")
        # the whole path: every segmentation.train run names its decoder decoder.pt
        named = f"{name} fine-tuned ({Path(sam).absolute()})"
        return Segmenter(loaded, named, _cache(cache_dir, loaded, name), load_colour_prompt(sam))
    if zero_shot:
        from segmentation.models import load_sam

        name = model or "vit_t"
        loaded = load_sam(name, path_option="")  # the official weights, from the cache only
        return Segmenter(loaded, f"{name} zero-shot", _cache(cache_dir, loaded, name))
    return Segmenter(None)


def _cache(root: str | Path | None, sam, model: str) -> EmbeddingCache | None:
    from segmentation.embeddings import EmbeddingCache

    return None if root is None else EmbeddingCache(root, sam, model_name=model)


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir`` and ``--no-cache``: where SAM's embeddings of the photos are kept."""
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="SAM embedding cache, shared with inspection (default: <cache root>/embeddings)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="compute every SAM embedding, read and store none"
    )


def embedding_cache_dir(args: argparse.Namespace) -> Path | None:
    """The embedding cache :func:`add_cache_options`' flags name (None: none), checked before any photo.

    ``--no-cache`` wins over ``--cache-dir`` (no folder is made then).

    Raises:
        UserError: either flag without a SAM to embed for (``--sam``, ``--sam-zero-shot``): it was
            ignored; a ``--cache-dir`` that cannot be written.
    """
    given = [
        flag
        for flag, on in (("--cache-dir", args.cache_dir is not None), ("--no-cache", args.no_cache))
        if on
    ]
    if given and not (args.sam or args.sam_zero_shot):
        # '--no-cache keeps SAM's embeddings' said the opposite of what the flag does
        raise UserError(f"{given[0]} is about SAM's embedding cache: it needs --sam or --sam-zero-shot")
    if args.no_cache:
        return None
    if args.cache_dir is not None:
        check_output_folder(args.cache_dir, flag="--cache-dir")  # "not a embedding cache": as inspection
    return args.cache_dir or embeddings_root()
