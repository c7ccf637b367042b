"""Regions of the anomaly map -> instance masks: SAM prompted with each region's box, or the region itself.

SAM outlines what the coarse, blurred map only locates. An outline that falls apart (a stain the map
saw as one blob, in several patches) becomes one instance per 8-connected part, the grain of the
ground truth and of the converters' instances. The segmenter is segmentation's own
(:func:`segmentation.models.load_sam` for zero-shot MobileSAM, :func:`segmentation.finetuned.load_finetuned`
for a ``decoder.pt`` from ``segmentation.train``), run through its public calls
(:func:`segmentation.embeddings.embed_images`, :func:`segmentation.predict.box_logits`): one encoder
run per photo, one decoder run per :func:`segmentation.predict.decoder_chunk` of its boxes (the inspection
cascade's rule: 4 on CPUs, 16 on a GPU, each box's logits at the photo's size). A ``decoder.pt``'s colour
prompt (:mod:`segmentation.colour_prompt`) is every box's mask prompt and its colour head
(:mod:`segmentation.colour_head`) refines the full-resolution logits, as ``segmentation.evaluate``, the
inspection cascade and the annotation page apply them (``--no-colour-prompt``, ``--no-colour-head``:
left out).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from anomaly.regions import Region, map_regions
from common.cli import user_path
from common.errors import UserError
from common.folders import check_output_folder
from common.io import embeddings_root

if TYPE_CHECKING:
    from segmentation.colour_head import ColourHead
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.embeddings import EmbeddingCache, ImageEmbedding


@dataclass(frozen=True)
class Instances:
    """A photo's instance masks.

    Attributes:
        masks: ``(N, H, W)`` bool.
        boxes: ``(N, 4)`` float xyxy: the region's box (SAM's prompt), or a split part's own
            (:func:`mask_parts`).
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
        colour_head: refines SAM's full-resolution logits of each box on the photo's colours (a
            ``decoder.pt`` of a run that kept one carries it, :mod:`segmentation.colour_head`); None: none.
    """

    def __init__(
        self,
        sam=None,
        name: str = "map threshold",
        cache: EmbeddingCache | None = None,
        colour_prompt: ColourPrompt | None = None,
        colour_head: ColourHead | None = None,
    ) -> None:
        self.sam = sam
        self.name = name
        self.cache = cache
        self.colour_prompt = colour_prompt
        self.colour_head = colour_head

    def __call__(
        self, image: np.ndarray, regions: Sequence[Region], *, min_area: int = 1, path: Path | None = None
    ) -> Instances:
        """The regions' masks, each SAM outline split into its parts (:func:`mask_parts`).

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
            masks = np.zeros((len(regions), height, width), bool)
            for index, region in enumerate(regions):
                masks[index][region.window] = region.crop
            return Instances(masks, boxes, scores, np.ones(len(regions), np.float32))
        from segmentation.embeddings import embed_images

        if self.cache is not None and path is not None:
            [embedding] = self.cache.embed([path], progress=False)
        else:
            [embedding] = embed_images(self.sam, [image])
        parts, ious = self._parts(embedding, image, regions, min_area)
        return fill_parts(parts, (height, width), scores, ious)

    def _parts(
        self, embedding: ImageEmbedding, image: np.ndarray, regions: Sequence[Region], min_area: int
    ) -> tuple[list[Part], np.ndarray]:
        """The regions' SAM masks as their parts (:func:`mask_parts`), and the ``(N,)`` predicted IoUs.

        Each chunk's masks are cut to their parts' pixels before the next chunk's are made: the one
        photo-sized array is the instances' (the regions' masks and then their parts were held at once).
        """
        parts: list[Part] = []
        ious = np.empty(len(regions), np.float32)
        boxes = np.stack([r.box for r in regions])
        for rows, masks, iou in self._masks(embedding, image, boxes):
            ious[rows] = iou
            for index, mask in zip(range(len(regions))[rows], masks, strict=True):
                # SAM found nothing inside a box: keep the map's own region rather than lose the defect
                if not mask.any():
                    mask[regions[index].window] = regions[index].crop
                parts += mask_parts(mask, boxes[index], index=index, min_area=min_area)
        return parts, ious

    def _masks(
        self, embedding: ImageEmbedding, image: np.ndarray, boxes: np.ndarray
    ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """The boxes' ``(k, H, W)`` bool masks and ``(k,)`` predicted IoUs, a
        :func:`~segmentation.predict.decoder_chunk` of ``k`` boxes at a time with the ``boxes`` rows they are
        (``k * H * W * 4`` bytes of float logits a chunk).

        As ``segmentation.evaluate`` scores a ``decoder.pt``: SAM's logits at the photo's size
        (:func:`segmentation.predict.box_logits`, the colour prompt's maps as ``mask_input``), through
        the colour head, thresholded at ``sam.mask_threshold``.
        """
        from segmentation.colour_prompt import mask_input_of
        from segmentation.predict import box_logits, decoder_chunk

        step = decoder_chunk(self.sam.device, full_size=True)
        for first in range(0, len(boxes), step):
            chunk = boxes[first : first + step]
            prompt = mask_input_of(self.colour_prompt, self.sam, embedding, image, chunk)
            logits, iou = box_logits(self.sam, embedding, chunk, mask_input=prompt)
            if self.colour_head is not None:
                logits = self.colour_head.refine(logits, image, chunk)
            masks = logits > self.sam.mask_threshold
            del logits  # (k, H, W) float32: not held while the caller reads the masks
            yield slice(first, first + len(chunk)), masks, iou

    def colour_record(self) -> dict:
        """The colour head and colour prompt applied (each None without), as the inspection cascade records
        them (``colour_head``, ``colour_prompt``)."""
        head, prompt = self.colour_head, self.colour_prompt
        return {
            "colour_head": None if head is None else head.to_dict(),
            "colour_prompt": None if prompt is None else prompt.to_dict(),
        }

    def noting_interrupts(self) -> contextlib.AbstractContextManager[None]:
        """On a Ctrl-C inside, a ``stopped:`` line saying how many embeddings its cache keeps for a rerun.

        :func:`segmentation.embeddings.noting_interrupts`, as the inspection cascade's (the photos are
        encoded as they come, those with a region alone); nothing without a cache (no SAM, ``--no-cache``).
        """
        if self.cache is None:
            return contextlib.nullcontext()
        from segmentation.embeddings import noting_interrupts

        return noting_interrupts(self.cache)


@dataclass(frozen=True)
class Part:
    """One instance's pixels inside a window of the photo, until the instances' masks are filled in.

    Attributes:
        window: the rows and columns of the photo that hold its pixels.
        crop: ``(rows, columns)`` bool, its pixels inside ``window``.
        box: ``(4,)`` float xyxy: the instance's box.
        index: the region (SAM's prompt box) it comes from.
    """

    window: tuple[slice, slice]
    crop: np.ndarray
    box: np.ndarray
    index: int


def mask_parts(mask: np.ndarray, box: np.ndarray, *, index: int, min_area: int = 1) -> list[Part]:
    """A region's mask as its instances: one per part when it has two or more parts of ``min_area``
    pixels or more, largest first, each with its own tight box (smaller specks dropped); else the whole mask
    with ``box``.

    Args:
        mask: ``(H, W)`` bool, the region's mask.
        box: ``(4,)`` float xyxy, the region's box (SAM's prompt).
        index: the region's, kept with each part.
        min_area: pixels a part needs to be one.

    >>> m = np.zeros((4, 9), bool); m[1:3, 0:2] = m[0:2, 5:9] = True
    >>> [p.box.tolist() for p in mask_parts(m, np.array([0.0, 0, 9, 3]), index=0)]
    [[5.0, 0.0, 9.0, 2.0], [0.0, 1.0, 2.0, 3.0]]
    """
    # a mask is a map of ones (bool: a float32 copy of it was 4 bytes a pixel): its regions are its parts,
    # with the regions' boxes and their pixels inside them
    parts = sorted(map_regions(mask, 0.5, min_area=min_area), key=lambda r: -r.area)
    if len(parts) >= 2:
        return [Part(part.window, part.crop, part.box, index) for part in parts]
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):  # an empty mask: no pixel to keep
        return [Part((slice(0, 0), slice(0, 0)), np.zeros((0, 0), bool), box, index)]
    window = slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)
    return [Part(window, mask[window].copy(), box, index)]  # the pixels it spans, not the photo's


def fill_parts(
    parts: Sequence[Part], shape: tuple[int, int], scores: np.ndarray, mask_scores: np.ndarray
) -> Instances:
    """The parts as a photo's instances, each with its region's scores.

    Args:
        parts: from :func:`mask_parts`, in instance order.
        shape: ``(H, W)``, the photo's.
        scores, mask_scores: ``(N,)`` the regions', by :attr:`Part.index`.
    """
    # one array filled part by part: a list of map-sized part masks, then stacked, held every part twice
    masks = np.zeros((len(parts), *shape), bool)
    for row, part in enumerate(parts):
        masks[row][part.window] = part.crop
    picked = [part.index for part in parts]
    boxes = np.stack([part.box for part in parts]) if parts else np.zeros((0, 4))
    return Instances(masks, boxes, scores[picked], mask_scores[picked])


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
    no_colour_head: bool = False,
    no_colour_prompt: bool = False,
) -> Segmenter:
    """The segmenter the commands' ``--sam`` names.

    Args:
        sam: a ``decoder.pt`` (or full SAM state dict) from ``segmentation.train``; None for none.
            A ``decoder.pt``'s colour prompt and colour head are applied (:func:`colour_parts`); a full
            state dict beside a ``decoder.pt`` that carries either gets a ``note:`` that it has no place
            for them (:func:`segmentation.finetuned.colour_left_behind`).
        zero_shot: with ``sam=None``, use SAM ``model`` with its official weights (MobileSAM's
            ``vit_t`` resolves offline); False: the map's regions are the masks.
        model: the SAM registry model: for zero-shot (default ``vit_t``, MobileSAM) or a full
            state dict (a ``decoder.pt`` records its own).
        cache_dir: an embedding cache root (``<cache root>/embeddings``, shared with the inspection
            cascade); None: embeddings are computed and not kept.
        no_colour_head, no_colour_prompt: leave out the ``decoder.pt``'s colour head, colour prompt
            (``--no-colour-head``, ``--no-colour-prompt``).

    Raises:
        UserError: an unreadable checkpoint, SAM weights that cannot be resolved, or flags that do not
            combine (:func:`check_sam_flags`) or change nothing (:func:`colour_parts`).
    """
    check_sam_flags(sam, zero_shot, model)
    head, prompt = colour_parts(sam, no_colour_head=no_colour_head, no_colour_prompt=no_colour_prompt)
    if sam is not None:
        from segmentation.finetuned import colour_left_behind, finetuned_name, load_finetuned

        # the commands take no base file, and name the model --sam-model
        loaded, name = load_finetuned(sam, model=model, base_option="", model_option="--sam-model")
        if head is None and prompt is None and (note := colour_left_behind(sam)):  # a sam_finetuned.pth
            print(f"note: {note}", file=sys.stderr, flush=True)  # as the inspection cascade says it
        # the whole path (every segmentation.train run names its decoder decoder.pt), as records write it
        named = finetuned_name(sam, name) + colour_words(
            head, prompt, no_colour_head=no_colour_head, no_colour_prompt=no_colour_prompt
        )
        return Segmenter(loaded, named, _cache(cache_dir, loaded, name), prompt, head)
    if zero_shot:
        from segmentation.models import load_sam

        name = model or "vit_t"
        loaded = load_sam(name, path_option="")  # official weights: cached, else fetched
        return Segmenter(loaded, f"{name} zero-shot", _cache(cache_dir, loaded, name))
    return Segmenter(None)


def warn_grey_photos(photos: Sequence[Path], segmenter: Segmenter) -> None:
    """The ``warning:`` line of :func:`segmentation.finetuned.greyscale_warning`, where the segmenter's
    ``decoder.pt`` parts read colour and most photos are grey (a few spread over them are read)."""
    if segmenter.colour_head is None and segmenter.colour_prompt is None:
        return
    from segmentation.finetuned import greyscale_warning

    warning = greyscale_warning(
        photos, colour_head=segmenter.colour_head, colour_prompt=segmenter.colour_prompt
    )
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def colour_parts(
    sam: str | Path | None, *, no_colour_head: bool = False, no_colour_prompt: bool = False
) -> tuple[ColourHead | None, ColourPrompt | None]:
    """The colour head and colour prompt of a ``--sam`` ``decoder.pt`` that its masks apply.

    Reads the checkpoint file alone (memory-mapped): the commands call it before any photo is read.

    Args:
        sam: the ``--sam`` checkpoint; None: zero-shot SAM or none (neither part).
        no_colour_head, no_colour_prompt: ``--no-colour-head``, ``--no-colour-prompt``: that part left out.

    Returns:
        ``(head, prompt)``, each None where the checkpoint carries none (a full state dict: neither)
        or it is left out.

    Raises:
        UserError: a malformed head or prompt; ``--no-colour-head`` or ``--no-colour-prompt`` where it
            changes nothing: without ``--sam``, or with one that carries no such part (the words of
            inspection and ``segmentation.evaluate``).
    """
    if sam is None and not (no_colour_head or no_colour_prompt):
        return None, None
    from segmentation.colour_head import refuse_idle_no_colour_head
    from segmentation.colour_prompt import refuse_idle_no_colour_prompt
    from segmentation.finetuned import load_colour_head, load_colour_prompt

    head = load_colour_head(sam) if sam is not None else None
    prompt = load_colour_prompt(sam) if sam is not None else None
    if no_colour_head:
        refuse_idle_no_colour_head(head, sam, flag="--sam")
    if no_colour_prompt:
        refuse_idle_no_colour_prompt(prompt, sam, flag="--sam")
    return (None if no_colour_head else head), (None if no_colour_prompt else prompt)


def colour_words(
    head: ColourHead | None,
    prompt: ColourPrompt | None,
    *,
    no_colour_head: bool = False,
    no_colour_prompt: bool = False,
) -> str:
    """What a segmenter's name adds for the colour parts: those applied, as the annotation page's header
    says them, then those left out, with their flags.

    >>> from segmentation.colour_head import ColourHead
    >>> colour_words(ColourHead((1.0, 0.0, 0.0)), None, no_colour_prompt=True)
    ' + colour head, its colour prompt left out (--no-colour-prompt)'
    """
    words = " + colour prompt" * (prompt is not None) + " + colour head" * (head is not None)
    left_out = [
        (part, flag)
        for part, flag, given in (
            ("colour prompt", "--no-colour-prompt", no_colour_prompt),
            ("colour head", "--no-colour-head", no_colour_head),
        )
        if given
    ]
    if left_out:
        parts = " and ".join(part for part, _ in left_out)
        flags = " ".join(flag for _, flag in left_out)
        words += f", its {parts} left out ({flags})"
    return words


def _cache(root: str | Path | None, sam, model: str) -> EmbeddingCache | None:
    from segmentation.embeddings import EmbeddingCache

    if root is None:
        return None
    return EmbeddingCache(
        root, sam, model_name=model, elsewhere="pass --cache-dir <a writable folder> or --no-cache"
    )


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir`` and ``--no-cache``: where SAM's embeddings of the photos are kept."""
    parser.add_argument(
        "--cache-dir",
        type=user_path,
        help="SAM embedding cache, shared with inspection (default: <cache root>/embeddings)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="compute every SAM embedding, read and store none"
    )


def add_colour_options(parser: argparse.ArgumentParser) -> None:
    """``--no-colour-head`` and ``--no-colour-prompt``: leave out a ``--sam`` decoder.pt's colour parts.

    In the inspection commands' words (their ``--crop-fraction`` aside: these commands have no crops).
    """
    parser.add_argument(
        "--no-colour-head",
        action="store_true",
        help="SAM's own masks even when decoder.pt carries a colour head (colour_head: true in training)",
    )
    parser.add_argument(
        "--no-colour-prompt",
        action="store_true",
        help="box prompts without their colour maps even when decoder.pt carries a colour prompt "
        "(colour_prompt: true in training)",
    )


def check_colour_options(args: argparse.Namespace) -> None:
    """Refuses :func:`add_colour_options`' flags where they change nothing (:func:`colour_parts`), before
    any photo is read; reads the ``--sam`` file only when either flag is given.

    Raises:
        UserError: one line, in the words of the inspection commands and ``segmentation.evaluate``.
    """
    if args.no_colour_head or args.no_colour_prompt:
        colour_parts(args.sam, no_colour_head=args.no_colour_head, no_colour_prompt=args.no_colour_prompt)


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
