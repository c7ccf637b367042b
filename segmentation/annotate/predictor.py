"""Clicks to masks for the annotation app: SAM's decoder on a cached embedding, previews and exact masks.

Every prompt runs the prompt encoder and mask decoder once
(:func:`segmentation.predict.decode`, SamPredictor's geometry; on a CPU through
ONNX Runtime, :class:`segmentation.decoder_onnx.OnnxDecoder`, about twice as
fast) and yields SAM's three candidate masks. What goes back to the browser is a *preview*: the
masks at the image's own size when its long side is at most SAM's input size
(1024 px), otherwise at the model-input size (1024 px long side), so a
4000x3000 photo costs no more per click than a 1024x768 one. When the user
accepts a candidate, its mask is computed from the same low-resolution logits
at the original resolution with :func:`segmentation.predict.upscale_logits`:
exactly the mask ``SamPredictor.predict`` gives for that prompt (with the ONNX
decoder, up to float rounding: logits within ~1e-4, so only pixels whose logit
sits at the threshold can differ), less its specks: islands and holes under
``speck_cells`` of the logits' cells are removed from previews and accepted
masks alike (:mod:`segmentation.specks`; ``speck_cells=0`` keeps SAM's
masks exactly).

The decoder and both upscalings run on one thread with a short queue
(:class:`segmentation.annotate.worker.DecoderWorker`), whatever thread asks:
memory stays flat under many concurrent clicks, and a full queue is refused
with a :class:`~segmentation.annotate.errors.BusyError`.

With a crop rule (``--crop-fraction``, :mod:`segmentation.annotate.zoom`) a
small box is decoded on a zoomed crop around it: the crop's embedding (the
encoder once per crop, then the cache), the prompt moved into the crop's frame,
and the masks (previews and the accepted one) pasted back into the photo's.

With a colour head (a ``decoder.pt`` that carries one, :mod:`segmentation.colour_head`) the
single masks of box proposals (:meth:`InteractivePredictor.box_masks`) decoded on the whole
photo are refined by it, as evaluation and the inspection cascade do; clicks are not (the head
was fit on box prompts alone). With a colour prompt (a ``decoder.pt`` of a ``colour_prompt: true``
run, :mod:`segmentation.colour_prompt`) those boxes are decoded with their colour map as SAM's
``mask_input`` (on either runtime: the ONNX graph takes ``mask_input`` too), before any colour head.
"""

from __future__ import annotations

import collections
import itertools
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from segmentation.annotate.errors import AnnotationError, ConflictError, NotFoundError
from segmentation.annotate.prefetch import EmbeddingPrefetcher, FileKey, file_key
from segmentation.annotate.worker import DEFAULT_WAITING, DecoderWorker
from segmentation.annotate.zoom import CropEmbeddings
from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt, mask_input_of
from segmentation.crops import CropRule, Window, box_to_window, paste_mask, scale_window
from segmentation.decoder_onnx import OnnxDecoder
from segmentation.embeddings import ImageEmbedding, load_rgb, resized_size
from segmentation.predict import decode, upscale_logits
from segmentation.specks import DEFAULT_CELLS, without_specks

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Points alone (no box) show first the best-scored candidate under this fraction of the photo.
CLICK_MAX_FRACTION = 0.1
#: Most points in one prompt; SAM itself was trained with far fewer.
MAX_POINTS = 64
#: Where the decoder runs per click.
RUNTIMES = ("onnx", "torch")


@dataclass(frozen=True)
class Prediction:
    """SAM's candidates for one prompt on one image.

    Attributes:
        id: handle the browser sends back to accept one candidate.
        key: the image.
        path: its file.
        low_res: ``(1, M, 4h, 4w)`` decoder logits (M = 3 candidates), kept for the exact mask.
        scores: ``(M,)`` SAM's predicted IoUs.
        masks: ``(M, h', w')`` bool previews at :func:`preview_size`.
        prompt: ``{"points": [[x, y], ...], "labels": [1, 0, ...], "box": [x1, y1, x2, y2] | None}``,
            in pixels of the image, and ``"crop": [x0, y0, side]`` when decoded on a zoomed crop.
        decode_s: seconds in the prompt encoder and mask decoder.
        total_s: seconds for the whole prediction, previews included.
        decode_cpu_s, total_cpu_s: the same as CPU time of the decoder thread: with one torch
            thread, what they would take on an otherwise idle core, whatever else runs.
        queue_s: seconds the prompt waited for the decoder thread (other requests before it).
        window: the zoomed crop the prompt was decoded on (``low_res`` is in its frame), None:
            the whole image.
        crop_s: seconds to get the crop's embedding (memory, disk cache or an encoder run),
            included in ``total_s``.
        original_size: ``(H, W)`` of the photo it was decoded on; an accept on a photo since
            replaced by one of another size is refused (None: not checked).
        file: the photo's file as it was when its embedding was asked for (path, mtime_ns, bytes:
            what the prefetcher keys embeddings by); an accept on a file since changed, even to
            another photo of the same size, is refused (None: not checked).
    """

    id: str
    key: str
    path: Path
    low_res: torch.Tensor
    scores: np.ndarray
    masks: np.ndarray
    prompt: dict
    decode_s: float
    total_s: float
    decode_cpu_s: float = 0.0
    total_cpu_s: float = 0.0
    queue_s: float = 0.0
    window: Window | None = None
    crop_s: float = 0.0
    original_size: tuple[int, int] | None = None
    file: FileKey | None = None

    @property
    def best(self) -> int:
        """The candidate the page shows first: :func:`preselect`."""
        return preselect(self.scores, self.masks, box=self.prompt.get("box") is not None)


def preselect(scores: np.ndarray, masks: np.ndarray, *, box: bool) -> int:
    """Which of SAM's candidates the page shows first (Tab cycles the others).

    With a box, the highest predicted IoU (SAM's own pick). For points alone, the highest among the
    masks under :data:`CLICK_MAX_FRACTION` of the photo (the smallest mask when none is): a click on
    a defect is most often scored highest as the whole part it lies on. Measured on every true
    instance of ``hazelnut_toy`` and the synthetic default, one click each, zero-shot MobileSAM
    (``bench/experiments/annotate_click_pick/``): mean IoU 0.339 -> 0.628 and 0.703 -> 0.781;
    on the synthetic set's 12 instances over 5 % of the photo 0.901 -> 0.696 (Tab, or a box).

    Args:
        scores: ``(M,)`` predicted IoUs.
        masks: ``(M, h, w)`` bool candidates over the whole photo (previews will do).
        box: whether the prompt had a box.
    """
    if box:
        return int(np.argmax(scores))
    fractions = masks.reshape(len(masks), -1).mean(1)
    small = [
        int(i) for i in np.argsort(-np.asarray(scores), kind="stable") if fractions[i] < CLICK_MAX_FRACTION
    ]
    return small[0] if small else int(np.argmin(fractions))


#: Short side below which a preview is not shrunk (a photo's own, where it is shorter): SAM's input size
#: made a 6000x8 strip's preview 1x1024, every mask on it one band and every pixel of it an outline.
PREVIEW_MIN_SIDE = 64
#: Long side a preview kept at :data:`PREVIEW_MIN_SIDE` stays under (browsers refuse far wider canvases).
PREVIEW_MAX_SIDE = 4096


def preview_size(original_size: tuple[int, int], img_size: int) -> tuple[int, int]:
    """``(h, w)`` of the preview masks: the image's own size up to ``img_size``, else SAM's input size,
    but for a strip, whose short side is then shrunk no further than :data:`PREVIEW_MIN_SIDE` (its own
    size where shorter; the long side at most :data:`PREVIEW_MAX_SIDE`). One scale on both sides: the page
    draws the preview over the whole photo, and crops are pasted into it at that scale.

    >>> preview_size((3000, 4000), 1024)
    (768, 1024)
    >>> preview_size((512, 512), 1024)
    (512, 512)
    >>> preview_size((8, 3000), 1024)
    (8, 3000)
    """
    height, width = original_size
    if max(height, width) <= img_size:
        return height, width
    size = resized_size((height, width), img_size)
    if min(size) >= PREVIEW_MIN_SIDE:
        return size
    factor = min(1.0, PREVIEW_MIN_SIDE / min(height, width), PREVIEW_MAX_SIDE / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def check_prompt(
    points: Sequence[Sequence[float]],
    labels: Sequence[int],
    box: Sequence[float] | None,
    *,
    size: tuple[int, int],
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Validates a prompt in pixels of an ``(H, W)`` image.

    Returns:
        ``point_coords`` ``(1, K, 2)``, ``point_labels`` ``(1, K)``, ``boxes`` ``(1, 4)``
        (xyxy, corners ordered), None where not given.

    Raises:
        AnnotationError: no prompt, points and labels of different lengths, labels
            other than 0/1, too many points, non-finite values, coordinates
            outside ``[0, W] x [0, H]``, or a box without area.
    """
    height, width = size
    if len(points) != len(labels):
        raise AnnotationError(f"{len(points)} points but {len(labels)} labels")
    if not points and box is None:
        raise AnnotationError("empty prompt: give points or a box")
    if len(points) > MAX_POINTS:
        raise AnnotationError(f"at most {MAX_POINTS} points per prompt, got {len(points)}")
    coords = labels_arr = boxes = None
    if points:
        coords = np.asarray(points, dtype=np.float64).reshape(1, -1, 2)
        labels_arr = np.asarray(labels, dtype=np.int64).reshape(1, -1)
        if not set(labels_arr.ravel().tolist()) <= {0, 1}:
            raise AnnotationError("point labels must be 1 (defect) or 0 (background)")
        _check_inside(coords.reshape(-1, 2), width, height, "point")
    if box is not None:
        values = np.asarray(box, dtype=np.float64).reshape(2, 2)
        _check_inside(values, width, height, "box corner")
        (x1, y1), (x2, y2) = values.min(axis=0), values.max(axis=0)
        if x2 - x1 < 1 or y2 - y1 < 1:
            raise AnnotationError("the box must be at least one pixel wide and high")
        boxes = np.array([[x1, y1, x2, y2]])
    return coords, labels_arr, boxes


def _check_inside(xy: np.ndarray, width: int, height: int, what: str) -> None:
    if not np.isfinite(xy).all():
        raise AnnotationError(f"{what} coordinates must be finite numbers")
    outside = (xy[:, 0] < 0) | (xy[:, 0] > width) | (xy[:, 1] < 0) | (xy[:, 1] > height)
    if outside.any():
        x, y = xy[np.flatnonzero(outside)[0]]
        raise AnnotationError(f"{what} ({x:g}, {y:g}) lies outside the {width}x{height} image")


def check_unchanged(prediction: Prediction) -> None:
    """Refuses a prediction whose photo file changed since the click (a stat, no read).

    Raises:
        ConflictError: its modification time or byte size differs (a touched but identical
            file is refused too: a click again costs less than a mask on the wrong photo).
    """
    if prediction.file is not None and file_key(prediction.path) != prediction.file:
        raise ConflictError(
            f"{prediction.key} changed on disk since prediction {prediction.id} (replaced or edited): "
            "click again"
        )


@dataclass(frozen=True)
class _Candidates:
    """What the decoder thread hands back for one prompt: logits, IoUs, previews and its times."""

    low_res: torch.Tensor
    iou: torch.Tensor
    masks: np.ndarray
    window: Window | None
    crop_s: float
    started: float
    decode_s: float
    total_s: float
    decode_cpu_s: float
    total_cpu_s: float


class InteractivePredictor:
    """SAM for clicks: candidate previews per prompt, the exact mask of an accepted candidate.

    Thread-safe; the decoder work of every caller runs on one worker thread (see the
    module docstring). Recent predictions are kept (``keep``) so that "accept" needs
    only their id; an older id is answered with a NotFoundError.

    Args:
        sam: the model (eval mode); a fine-tuned decoder works the same.
        prefetcher: where embeddings come from.
        keep: predictions remembered (about 0.8 MB each for 1024-px SAM).
        runtime: ``"onnx"`` runs the decoder on ONNX Runtime (CPU models only, else
            ValueError; the export takes about a second here), ``"torch"`` in PyTorch.
        waiting: requests that may wait for the decoder thread while it works on
            another; more are refused with :class:`~segmentation.annotate.errors.BusyError`.
        crops: decode small boxes on zoomed crops (:mod:`segmentation.annotate.zoom`); None: never.
        keep_crops: crop embeddings held in memory.
        colour_head: refines :meth:`box_masks`' whole-photo masks (not clicks, not boxes on
            crops); None: SAM's masks as they are.
        colour_prompt: gives those boxes their colour map as ``mask_input``; None: box prompts alone.
        speck_cells: islands and holes smaller than this many of SAM's low-resolution cells
            are removed from every mask, previews included (:mod:`segmentation.specks`);
            0: SAM's masks exactly.

    Call :meth:`close` to stop the decoder thread.
    """

    def __init__(
        self,
        sam: Sam,
        prefetcher: EmbeddingPrefetcher,
        *,
        keep: int = 16,
        runtime: str = "torch",
        waiting: int = DEFAULT_WAITING,
        crops: CropRule | None = None,
        keep_crops: int = 8,
        colour_head: ColourHead | None = None,
        colour_prompt: ColourPrompt | None = None,
        speck_cells: float = DEFAULT_CELLS,
    ) -> None:
        if runtime not in RUNTIMES:
            raise AnnotationError(f"unknown decoder runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
        self.sam = sam
        self.prefetcher = prefetcher
        self.keep = keep
        self.runtime = runtime
        self._decode = OnnxDecoder(sam) if runtime == "onnx" else partial(decode, sam)
        self.worker = DecoderWorker(waiting=waiting)
        self.crops = (
            None
            if crops is None or crops.max_fraction <= 0
            else CropEmbeddings(crops, prefetcher.cache, keep=keep_crops, device=prefetcher.device)
        )
        self.colour_head = colour_head
        self.colour_prompt = colour_prompt
        self.speck_cells = speck_cells
        self._predictions: collections.OrderedDict[str, Prediction] = collections.OrderedDict()
        self._ids = itertools.count(1)
        # in every id: a page left open over a restart sends the old server's ids, which must not
        # name this one's predictions (counted from 1 again: another tab's click would be saved)
        self._run = secrets.token_hex(4)
        self._lock = threading.Lock()

    @property
    def img_size(self) -> int:
        return int(self.sam.image_encoder.img_size)

    def preview_size(self, original_size: tuple[int, int]) -> tuple[int, int]:
        return preview_size(original_size, self.img_size)

    def predict(
        self,
        key: str,
        path: Path,
        *,
        points: Sequence[Sequence[float]] = (),
        labels: Sequence[int] = (),
        box: Sequence[float] | None = None,
    ) -> Prediction:
        """SAM's three candidates for a prompt in image pixels (waits for the embedding if need be).

        Raises:
            AnnotationError: a bad prompt (:func:`check_prompt`), an image that cannot be embedded.
            BusyError: the decoder's queue is full.
        """
        # The embedding is awaited here, outside the queue: a click on an image still being
        # embedded must not hold up clicks on ready ones. The file is looked at first: if it is
        # replaced meanwhile, the accept is refused rather than the new photo taken for the old one.
        seen = file_key(path)
        emb = self.prefetcher.get(path)
        coords, point_labels, boxes = check_prompt(points, labels, box, size=emb.original_size)
        asked = time.perf_counter()
        result = self.worker.run(partial(self._candidates, path, emb, coords, point_labels, boxes))
        prompt = {
            "points": [] if coords is None else coords[0].tolist(),
            "labels": [] if point_labels is None else point_labels[0].tolist(),
            "box": None if boxes is None else boxes[0].tolist(),
        }
        if result.window is not None:  # saved with an accepted mask: how it was made
            prompt["crop"] = [result.window.x0, result.window.y0, result.window.side]
        with self._lock:
            prediction = Prediction(
                id=f"p{next(self._ids)}-{self._run}",
                key=key,
                path=path,
                low_res=result.low_res,
                scores=result.iou[0].float().cpu().numpy(),
                masks=result.masks,
                prompt=prompt,
                decode_s=result.decode_s,
                total_s=result.total_s,
                decode_cpu_s=result.decode_cpu_s,
                total_cpu_s=result.total_cpu_s,
                queue_s=result.started - asked,
                window=result.window,
                crop_s=result.crop_s,
                original_size=tuple(emb.original_size),
                file=seen,
            )
            self._predictions[prediction.id] = prediction
            while len(self._predictions) > self.keep:
                self._predictions.popitem(last=False)
        return prediction

    def prediction(self, prediction_id: str, key: str) -> Prediction:
        """A remembered prediction of image ``key``; NotFoundError if unknown, expired or of another image."""
        with self._lock:
            prediction = self._predictions.get(prediction_id)
        if prediction is None or prediction.key != key:
            raise NotFoundError(f"no prediction {prediction_id!r} for this image (expired?): click again")
        return prediction

    def full_mask(self, prediction: Prediction, candidate: int) -> np.ndarray:
        """Candidate ``candidate`` of ``prediction`` at the original resolution: ``(H, W)`` bool.

        The same numbers as ``predict_masks(...)[0][0, candidate]`` for the same prompt.

        Raises:
            AnnotationError: no such candidate.
            ConflictError: the photo's file changed since the click (replaced on disk, even by
                another photo of the same size, or edited).
            BusyError: the decoder's queue is full.
        """
        if not 0 <= candidate < prediction.low_res.shape[1]:
            raise AnnotationError(f"candidate must be 0-{prediction.low_res.shape[1] - 1}, got {candidate}")
        check_unchanged(prediction)
        emb: ImageEmbedding = self.prefetcher.get(prediction.path)
        if prediction.original_size is not None and tuple(emb.original_size) != prediction.original_size:
            (h0, w0), (h1, w1) = prediction.original_size, emb.original_size
            raise ConflictError(
                f"{prediction.key} changed from {w0}x{h0} to {w1}x{h1} since prediction "
                f"{prediction.id}: click again"
            )
        low_res = prediction.low_res[:, candidate : candidate + 1]
        return self.worker.run(partial(self._full_mask, low_res, emb, prediction.window))

    def box_masks(
        self, emb: ImageEmbedding, boxes: np.ndarray, *, path: Path | None = None
    ) -> list[tuple[np.ndarray, float]]:
        """SAM's single mask for each box, at the original resolution, with its predicted IoU.

        A box prompt alone, ``multimask_output=False``: what ``SamPredictor.predict(box=...)``
        gives, and what the inspection cascade does with a detector's boxes (with crops, a
        small box on the rule's own window, as the cascade does; a box decoded on the whole photo
        gets a colour prompt's map as ``mask_input``, and a colour head refines its logits). Decoder
        work: call it on the
        decoder thread (inside ``self.worker.run``), as
        :class:`~segmentation.annotate.detector.DetectorProposals` does.

        Args:
            emb: the image's embedding.
            boxes: ``(N, 4)`` xyxy in pixels of the image.
            path: the image's file, for crops and the colour head's and prompt's pixels (None: no
                crops; required with a colour head or prompt).

        Returns:
            ``N`` pairs ``((H, W) bool mask, IoU)``; one box at a time, so a large photo
            holds one full-size logit map, not N.

        Raises:
            ValueError: a colour head or prompt without ``path``.
            AnnotationError: with either, a photo no longer the embedding's size.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        rgb = self._colour_pixels(path, emb.original_size, boxes=len(boxes))
        found = []
        with self.prefetcher.decoding():
            for box in boxes:
                window = None
                if self.crops is not None and path is not None:
                    window = self.crops.rule.window(box, emb.original_size)
                frame = emb if window is None else self.crops.embedding(path, window)
                whole = rgb if window is None else None  # colours apply in the photo's frame only
                with torch.inference_mode():
                    framed = box if window is None else box_to_window(box, window)
                    prompt = self._mask_input(emb, whole, box)
                    low_res, iou = self._decode(
                        frame, boxes=framed[None], mask_input=prompt, multimask_output=False
                    )
                    logits = upscale_logits(self.sam, low_res.to(self.sam.device), frame)
                    mask = self._box_mask(logits, box, whole)
                mask = self._without_specks(mask[None], low_res)[0]
                if window is not None:
                    mask = paste_mask(mask, window, emb.original_size)
                found.append((mask, float(iou[0, 0])))
        return found

    def close(self) -> None:
        """Stops the decoder thread (after the call it is in); waiting calls get a BusyError."""
        self.worker.close()

    def _candidates(
        self,
        path: Path,
        emb: ImageEmbedding,
        coords: np.ndarray | None,
        point_labels: np.ndarray | None,
        boxes: np.ndarray | None,
    ) -> _Candidates:
        """Decoder and previews of one checked prompt (on its crop, if any); runs on the decoder thread."""
        started, started_cpu = time.perf_counter(), time.thread_time()
        with self.prefetcher.decoding():
            window = None
            if self.crops is not None:
                box = None if boxes is None else boxes[0]
                window = self.crops.window(path, box, coords, emb.original_size)
            frame = emb
            if window is not None:  # a new crop runs the encoder here, outside inference mode (cached)
                frame = self.crops.embedding(path, window)
                boxes = None if boxes is None else box_to_window(boxes, window)
                coords = None if coords is None else coords - np.array([window.x0, window.y0], dtype=float)
            cropped, cropped_cpu = time.perf_counter(), time.thread_time()
            with torch.inference_mode():
                low_res, iou = self._decode(
                    frame,
                    boxes=boxes,
                    point_coords=coords,
                    point_labels=point_labels,
                    multimask_output=True,
                )
                decoded, decoded_cpu = time.perf_counter(), time.thread_time()
                masks = self._previews(low_res, frame, window, emb.original_size)
        return _Candidates(
            low_res=low_res.float().cpu(),
            iou=iou,
            masks=masks,
            window=window,
            crop_s=0.0 if window is None else cropped - started,
            started=started,
            decode_s=decoded - cropped,
            total_s=time.perf_counter() - started,
            decode_cpu_s=decoded_cpu - cropped_cpu,
            total_cpu_s=time.thread_time() - started_cpu,
        )

    def _previews(
        self,
        low_res: torch.Tensor,
        frame: ImageEmbedding,
        window: Window | None,
        original_size: tuple[int, int],
    ) -> np.ndarray:
        """``(M, h', w')`` bool previews of ``(1, M, 4h, 4w)`` logits on ``frame`` (a crop: ``window``)."""
        size = self.preview_size(original_size)
        if window is None:
            # sam.postprocess_masks is what upscale_logits runs; with the preview size as the
            # target it stops at the model-input frame (an identity resize) for large images.
            logits = self.sam.postprocess_masks(low_res, frame.input_size, size)
            return self._without_specks((logits[0] > self.sam.mask_threshold).cpu().numpy(), low_res)
        # The crop resized straight to its place in the preview: exact where the preview is the
        # image itself, otherwise within a preview pixel of the accepted mask's resized outline.
        scaled = scale_window(window, max(size) / max(original_size))
        logits = self.sam.postprocess_masks(low_res, frame.input_size, (scaled.side, scaled.side))
        return paste_mask(
            self._without_specks((logits[0] > self.sam.mask_threshold).cpu().numpy(), low_res), scaled, size
        )

    def _full_mask(self, low_res: torch.Tensor, emb: ImageEmbedding, window: Window | None) -> np.ndarray:
        """``(H, W)`` bool mask of one candidate's ``(1, 1, 4h, 4w)`` logits; runs on the decoder thread.

        ``window``: the crop the logits were decoded on (pasted back into the image), None: the image.
        """
        with torch.inference_mode():
            if window is None:
                logits = upscale_logits(self.sam, low_res.to(self.sam.device), emb)
                return self._without_specks((logits[0] > self.sam.mask_threshold).cpu().numpy(), low_res)[0]
            # The crop's geometry as embed_images made it: a square resized to the input size.
            side = (window.side, window.side)
            input_size = resized_size(side, self.img_size)
            logits = self.sam.postprocess_masks(low_res.to(self.sam.device), input_size, side)
            mask = self._without_specks((logits[0] > self.sam.mask_threshold).cpu().numpy(), low_res)[0]
            return paste_mask(mask, window, emb.original_size)

    def _without_specks(self, masks: np.ndarray, low_res: torch.Tensor) -> np.ndarray:
        """``(M, h, w)`` bool masks of one frame without specks under :attr:`speck_cells` of ``low_res``'s.

        The frame's long side spans the low-resolution logits' side (the padded input square's).
        """
        return without_specks(masks, self.speck_cells, low_res.shape[-1])

    def _colour_pixels(self, path: Path | None, size: tuple[int, int], *, boxes: int) -> np.ndarray | None:
        """The ``(H, W, 3)`` uint8 RGB photo a colour head or prompt needs for ``boxes`` boxes; None without.

        Raises:
            ValueError: a head or prompt but no ``path``.
            AnnotationError: the photo is not ``size`` (it changed since its embedding).
        """
        if self.colour_head is None and self.colour_prompt is None:
            return None
        if path is None:
            raise ValueError(
                "box_masks with a colour head or prompt needs the photo's path: they read colours"
            )
        if not boxes:
            return None
        rgb = load_rgb(path)
        if rgb.shape[:2] != tuple(size):
            name = self.prefetcher.name(path)
            raise AnnotationError(f"{name} changed size since its embedding; open it again")
        return rgb

    def _mask_input(
        self, emb: ImageEmbedding, rgb: np.ndarray | None, box: np.ndarray
    ) -> torch.Tensor | None:
        """A whole-photo box's ``(1, 1, 4h, 4w)`` colour map on ``rgb``; None without a prompt or rgb."""
        return None if rgb is None else mask_input_of(self.colour_prompt, self.sam, emb, rgb, box[None])

    def _box_mask(self, logits: torch.Tensor, box: np.ndarray, rgb: np.ndarray | None) -> np.ndarray:
        """``(h, w)`` bool mask of one box's ``(1, 1, h, w)`` logits, through the colour head with ``rgb``."""
        if rgb is None or self.colour_head is None:
            return (logits[0, 0] > self.sam.mask_threshold).cpu().numpy()
        refined = self.colour_head.refine(logits[:, 0].float().cpu().numpy(), rgb, box[None])
        return refined[0] > self.sam.mask_threshold
