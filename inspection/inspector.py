"""The cascade on one photo: detector boxes -> SAM masks of those boxes -> the photo's verdict.

>>> inspector = Inspector.from_checkpoints("best.pt", "decoder.pt")  # doctest: +SKIP
>>> result = inspector("photo.png")                                  # doctest: +SKIP
>>> result.verdict, result.masks.shape                               # doctest: +SKIP
('scratch', (2, 1024, 1024))

Per photo: the file is decoded once (with an embedding cache, a photo not yet
in it is read once more by the cache, which keys entries by the file's bytes);
the detector runs on it whole or on its
overlapping windows, exactly as ``python -m detection.predict`` does
(:func:`detection.tiling.predict_tiled`); then, only when there is a box, SAM's
image encoder makes the photo's one embedding (read from the embedding cache
when the photo is in it) and the decoder turns *all* boxes into masks in one
call. A photo without boxes costs one detector pass and no encoder pass: most
photos of a line are good. Of two masks of one class that overlap by more than
``mask_iou``, the lower-scored one is dropped with its box (mask NMS,
:mod:`segmentation.duplicates`). The verdict and score follow
:func:`detection.image_level.image_prediction`. When the SAM checkpoint carries a
colour head (:mod:`segmentation.colour_head`), each mask is the head's decision
on SAM's full-resolution logits and the photo's colours inside its box; when it
carries a colour prompt (:mod:`segmentation.colour_prompt`), each box's colour-distance map
is SAM's mask prompt (``mask_input``), drawn on the whole photo. With
test-time flips (``tta``) a photo with boxes is encoded four times (as itself and
flipped, :mod:`segmentation.tta`; each view cached like the photo) and every box's
logits are the views' average (with a colour prompt, each view's maps drawn on that
view). With a PatchCore run's ``regions`` (:mod:`inspection.anomaly_regions`), each
region of the photo's anomaly map is one more box, of class ``anomaly`` and score ``conf``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from common.errors import UserError
from common.image_files import decode_image_file
from common.io import embeddings_root
from detection.detections import ImageDetections
from detection.image_level import image_prediction
from detection.predict import predict_settings, ultralytics_detections
from detection.tiling import check_tiling, predict_tiled
from detection.train_config import MAX_IMGSZ, MIN_IMGSZ
from detection.weights import load_detector, run_imgsz, tiling_note, trained_imgsz, weights_file
from inspection.anomaly_regions import ANOMALY, AnomalyRegions
from inspection.checkpoints import check_sam_checkpoint, load_sam_checkpoint
from inspection.result import Inspection
from segmentation.augment import transform_image
from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt, mask_input_of, refuse_colour_with_crops
from segmentation.crops import CropRule, Window, decode_with_crops, small_box_windows
from segmentation.decoder_onnx import OnnxDecoder, choose_runtime, missing_packages
from segmentation.duplicates import MASK_IOU, distinct_masks
from segmentation.embeddings import EmbeddingCache, ImageEmbedding, embed_images, load_rgb
from segmentation.evaluate import resolve_device
from segmentation.predict import UPSCALE_CHUNK, decode, decoder_chunk, upscale_logits
from segmentation.specks import DEFAULT_CELLS, check_speck_cells, without_specks
from segmentation.tta import TTA_VIEWS, flip_averaged_logits
from segmentation.views import View

if TYPE_CHECKING:
    from segment_anything.modeling import Sam
    from ultralytics.engine.model import Model

#: The keywords of :func:`check_settings`.
SETTINGS_CHECKED = {"conf", "iou", "mask_iou", "tile", "tile_overlap", "imgsz", "max_det"}

#: Crop embeddings of the last photo kept in memory (:meth:`Inspector.crop_embedding`), at most: each is
#: SAM's ``(256, 64, 64)`` float32 map, 4 MiB, and a photo may have up to ``max_det`` small boxes.
CROPS_KEPT = 32


class Inspector:
    """A detector and a SAM, run together on photos; see the module docstring.

    Args:
        detector: an ultralytics detection model (``YOLO(best.pt)``), or anything with its
            ``predict(source, **settings)`` and ``names``.
        sam: a ``segment_anything`` SAM (fine-tuned or not).
        class_names: the detector's class names in id order; None: ``detector.names``.
        conf: lowest box score kept, also the verdict threshold.
        iou: the detector's NMS IoU.
        mask_iou: after SAM, a mask whose IoU with a better-scored mask of its class is above this
            is dropped with its box (:mod:`segmentation.duplicates`); 1 keeps every box's mask.
        speck_cells: then islands and holes under this many of SAM's low-resolution cells
            ((long side / 256)² photo pixels each) are removed from every mask
            (:mod:`segmentation.specks`, as the annotation page does); 0 keeps SAM's masks. The
            mask probabilities (the anomaly map) are SAM's either way.
        imgsz: the detector's input size (per window when tiled); None: the size it was trained at
            (:func:`detection.weights.trained_imgsz`).
        tile, tile_overlap: tiled detection with ``tile``-px windows (None: whole photos).
        max_det: boxes kept per photo.
        device: ``cpu``, ``cuda``, ``cuda:1``, ``mps`` or ``auto``; None is ``auto``
            (CUDA when present). SAM is moved there.
        cache: SAM embeddings read from and stored into this cache; None computes each.
        keep_probs: keep each mask's float16 probabilities, for :meth:`Inspection.anomaly_map`.
        runtime: where SAM's decoder runs: ``torch`` (the default here: exactly
            ``SamPredictor``'s masks), ``onnx`` (ONNX Runtime on the CPU, logits within ~1e-4,
            4x faster for ten boxes on 2 cores) or ``auto`` (onnx on a CPU, torch on a GPU;
            what the commands use). A ``colour_head`` runs after the logits are upscaled, in
            numpy, so it works the same with either.
        crops: decode boxes small relative to the photo on a zoomed crop around them (the rule
            fine-tuning and ``segmentation.evaluate`` use; one more encoder run per small box,
            cached); None: every box on the whole photo.
        colour_head: refine SAM's logits of each box with this head (a ``decoder.pt``'s,
            :attr:`SamCheckpoint.colour_head <inspection.checkpoints.SamCheckpoint.colour_head>`);
            masks and probabilities are then the head's. None: SAM's own.
        colour_prompt: give every box its colour-distance map as SAM's mask prompt (a
            ``decoder.pt``'s, :attr:`SamCheckpoint.colour_prompt
            <inspection.checkpoints.SamCheckpoint.colour_prompt>`); the ``colour_head``, if any,
            then refines the logits. None: box prompts alone.
        tta: average every box's logits over the photo and its flips (:data:`TTA_VIEWS`,
            ``segmentation.evaluate --tta``'s views): three more encoder runs per photo with
            boxes (cached), a decoder call per view; a colour head refines the averaged logits.
        regions: a PatchCore run's regions (:mod:`inspection.anomaly_regions`) as more boxes for
            SAM, of class ``anomaly`` (one more id after the detector's) and score ``conf``: above
            every box the detector drops, below its confident ones. None: the detector's alone.
        note_tiling: print the ``note:`` of :func:`detection.weights.tiling_note` to stderr, once, on the
            first photo the tiles would cut, when the detector was trained on tiles and ``tile`` is not
            that size, or on whole photos and ``tile`` is given (its weights named by their
            ``ckpt_path``, else ``the detector``); the commands pass False, having given it already.

    Raises:
        UserError: bad tiling settings, ``conf`` outside [0, 1], a device this machine lacks,
            or a ``colour_head`` or ``tta`` with ``crops`` (both work on whole-photo logits), a
            ``colour_prompt`` with ``crops`` (its maps are drawn on the whole photo),
            or ``regions`` with a detector that has a class named ``anomaly``.
    """

    def __init__(
        self,
        detector: Model | Any,
        sam: Sam,
        *,
        class_names: Sequence[str] | None = None,
        conf: float = 0.25,
        iou: float = 0.7,
        mask_iou: float = MASK_IOU,
        speck_cells: float = DEFAULT_CELLS,
        imgsz: int | None = None,
        tile: int | None = None,
        tile_overlap: float = 0.2,
        max_det: int = 300,
        device: str | torch.device | None = "cpu",
        cache: EmbeddingCache | None = None,
        keep_probs: bool = False,
        runtime: str = "torch",
        crops: CropRule | None = None,
        colour_head: ColourHead | None = None,
        colour_prompt: ColourPrompt | None = None,
        tta: bool = False,
        regions: AnomalyRegions | None = None,
        note_tiling: bool = True,
    ) -> None:
        ranges = {"conf": conf, "iou": iou, "mask_iou": mask_iou, "imgsz": imgsz, "max_det": max_det}
        check_settings(**ranges, tile=tile, tile_overlap=tile_overlap)
        check_colour(colour_head, colour_prompt, crops)
        check_tta(tta, crops)
        self.device = resolve_device("auto" if device is None else str(device), what="argument 'device'")
        self.detector = detector
        self.sam = sam.to(self.device).eval()
        self.detector_class_names = detector_class_names(detector, class_names)
        self.class_names = class_names_with_regions(self.detector_class_names, regions=regions is not None)
        self.regions = regions
        self.conf, self.tile, self.tile_overlap, self.max_det = conf, tile, tile_overlap, max_det
        self.mask_iou = mask_iou
        check_speck_cells(speck_cells)
        self.speck_cells = speck_cells
        self.duplicates_dropped = 0  # masks dropped by mask NMS, over every photo inspected
        self.cache, self.keep_probs = cache, keep_probs
        self.runtime, self._decode = sam_decoder(self.sam, runtime, self.device)
        self._last: tuple[tuple, ImageEmbedding] | None = None  # (photo key, its embedding)
        self._last_path: Path | None = None
        self._last_rgb: tuple[tuple | None, np.ndarray] | None = None  # (photo key, its RGB pixels)
        self._last_flips: tuple[tuple, dict[str, ImageEmbedding]] | None = None  # (photo key, its flips)
        self._last_crops: tuple[tuple, dict[Window, ImageEmbedding]] | None = None  # (photo key, its crops)
        # its note waits for the first photo the tiles would cut (from_checkpoints names the weights' file)
        self._tiling_weights: str | Path | None = (
            _detector_name(detector) if note_tiling and tiling_note(detector, tile, "") else None
        )
        self.crops, self.colour_head, self.colour_prompt, self.tta = crops, colour_head, colour_prompt, tta
        self.settings = predict_settings(
            imgsz=run_imgsz(detector, trained_imgsz(detector) if imgsz is None else imgsz),
            conf=conf,
            iou=iou,
            device=str(self.device),
            max_det=max_det,
        )

    def _tiling_note(self, largest_side: int) -> None:
        """The tiling note (:func:`detection.weights.tiling_note`, ``note_tiling``), once, on the first photo
        longer than the smaller tile size: on photos no longer, every window is the whole photo."""
        if self._tiling_weights is None:
            return
        note = tiling_note(self.detector, self.tile, self._tiling_weights, largest_side)
        if note:
            print(note, file=sys.stderr, flush=True)
            self._tiling_weights = None

    @classmethod
    def from_checkpoints(
        cls,
        detector_weights: str | Path,
        sam_checkpoint: str | Path | None = None,
        *,
        model: str | None = None,
        base_checkpoint: str | Path | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        use_colour_head: bool = True,
        use_colour_prompt: bool = True,
        device: str | torch.device | None = "cpu",
        **settings: Any,
    ) -> Inspector:
        """Loads both models from files; the cheap checks run before anything is loaded.

        Args:
            detector_weights: a detection run's ``weights/best.pt``.
            sam_checkpoint: a ``decoder.pt`` from ``segmentation.train``, a full state dict
                (``sam_finetuned.pth``, with ``model``), or None for zero-shot SAM ``model``.
            model: the SAM registry name; read from a ``decoder.pt`` (which must agree).
            base_checkpoint: base weights under a ``decoder.pt`` (default: the official ones).
            cache_dir: root of the embedding cache; None: ``common.io.embeddings_root()``.
            use_cache: False: no cache, every embedding is computed and none is stored.
            use_colour_head: False: SAM's own masks even when the ``decoder.pt`` carries a
                colour head (by default its head refines them).
            use_colour_prompt: False: box prompts without their colour maps even when the
                ``decoder.pt`` carries a colour prompt (by default every box gets its map).
            device: see :class:`Inspector`.
            settings: the other keywords of :class:`Inspector`.

        Raises:
            UserError: a missing file, weights that are not a detection checkpoint, a SAM
                checkpoint of an unknown model or of another model than ``model``, a malformed
                colour head or one with ``crops``, a malformed colour prompt or one with ``crops``,
                or official SAM weights that are neither cached nor downloadable.
        """
        check_settings(**{k: v for k, v in settings.items() if k in SETTINGS_CHECKED})
        weights = weights_file(detector_weights)
        checkpoint = check_sam_checkpoint(sam_checkpoint, model=model, base_checkpoint=base_checkpoint)
        head = checkpoint.colour_head if use_colour_head else None
        prompt = checkpoint.colour_prompt if use_colour_prompt else None
        crops = settings.get("crops")
        check_colour(head, prompt, crops, checkpoint.path)
        check_tta(settings.get("tta", False), crops)
        resolved = resolve_device("auto" if device is None else str(device), what="argument 'device'")
        detector = load_detector(weights)
        sam = load_sam_checkpoint(checkpoint, device=resolved)
        cache = _embedding_cache(sam, checkpoint.model, cache_dir) if use_cache else None
        inspector = cls(
            detector, sam, device=resolved, cache=cache, colour_head=head, colour_prompt=prompt, **settings
        )
        if inspector._tiling_weights is not None:  # given on the first photo it is true of, naming the file
            inspector._tiling_weights = weights
        return inspector

    def __call__(self, path: str | Path, *, score_floor: float | None = None) -> Inspection:
        """Inspects one photo (see the module docstring).

        Args:
            score_floor: also give the photo's ``image_score``, its top box score whatever ``conf``, the
                detector's boxes kept down to this score, from the same one detector pass
                (:meth:`detect_scored`; ``inspection.evaluate``'s image AUROC); None: not given.

        Raises:
            UserError: the file is missing or not an image, one line naming it; ``score_floor`` outside
                [0, 1].
        """
        path = Path(path)
        image = decode_image_file(path, cv2.IMREAD_COLOR)
        height, width = image.shape[:2]
        scored = score_floor is not None
        detections, top = self.detect_scored(image, score_floor) if scored else (self.detect(image), None)
        if self.regions is not None:
            boxes = self.regions.boxes(self.photo_rgb(path, image), path, detections.boxes)
            detections = with_boxes(detections, boxes, len(self.detector_class_names), self.conf)
        detections = sort_by_score(detections)
        if len(detections.scores):
            embedding = self.embedding(path, image)
            # kept for the colour head and prompt, and for the encoder of the flips or crops without a cache
            # (no 2nd decode)
            rgb = (
                self.photo_rgb(path, image)
                if self.reads_colours or self.tta or self._crops_read_photo
                else None
            )
            masks, mask_scores, probs = self.segment(embedding, detections.boxes, rgb=rgb)
            keep = distinct_masks(masks, detections.classes, self.mask_iou)
            if len(keep) < len(masks):
                self.duplicates_dropped += len(masks) - len(keep)
                detections, masks, mask_scores = select(detections, keep), masks[keep], mask_scores[keep]
                probs = None if probs is None else probs[keep]
            masks = self.without_specks(masks)
        else:
            masks, mask_scores = np.zeros((0, height, width), bool), np.zeros(0, np.float32)
            probs = np.zeros((0, height, width), np.float16) if self.keep_probs else None
        verdict, score = image_prediction(detections, self.class_names, self.conf)
        return Inspection(
            path=path,
            width=width,
            height=height,
            boxes=detections.boxes,
            scores=detections.scores,
            classes=detections.classes,
            names=[self.class_names[c] for c in detections.classes],
            masks=masks,
            mask_scores=mask_scores,
            verdict=verdict,
            score=score,
            mask_probs=probs,
            image_score=None if top is None else max(top, score),  # score: an anomaly region's, at conf
        )

    def without_specks(self, masks: np.ndarray) -> np.ndarray:
        """``(N, H, W)`` masks less their islands and holes under ``speck_cells`` cells, cleaned in place
        (:meth:`segment`'s own arrays: a second ``N x H x W`` array was 600 MB for 50 boxes of a
        4000 x 3000 photo); returns ``masks``."""
        return without_specks(masks, self.speck_cells, out=masks)

    def inspect_many(self, paths: Iterable[str | Path], *, progress: bool = True) -> Iterator[Inspection]:
        """One :class:`Inspection` per path, in order, made as they are asked for (nothing is kept)."""
        total = len(paths) if isinstance(paths, Sequence) else None
        bar = tqdm(paths, total=total, desc="inspecting", unit="photo", disable=not progress, file=sys.stderr)
        for path in bar:
            yield self(path)

    def set_conf(self, conf: float) -> None:
        """Makes ``conf`` the lowest box score kept and the verdict threshold from now on.

        Raises:
            UserError: ``conf`` outside [0, 1].
        """
        check_settings(conf=conf)
        self.conf = self.settings["conf"] = float(conf)

    def detect(self, image: np.ndarray, *, conf: float | None = None) -> ImageDetections:
        """The detector's boxes on ``image`` ``(H, W, 3)`` uint8 BGR, whole or tiled, in its pixels.

        Args:
            image: the photo.
            conf: the lowest box score kept for this call; None: the inspector's ``conf``.
        """
        self._tiling_note(max(image.shape[:2]))
        settings = self.settings if conf is None else {**self.settings, "conf": conf}
        if self.tile:
            return predict_tiled(
                image,
                partial(self._predict_tiles, settings=settings),
                tile=self.tile,
                overlap=self.tile_overlap,
                max_det=self.max_det,
            )
        return ultralytics_detections(self.detector.predict(image, **settings))[0]

    def detect_scored(self, image: np.ndarray, floor: float) -> tuple[ImageDetections, float]:
        """``(boxes, top score)``: :meth:`detect`'s boxes on ``image``, and the top score of the detector's
        boxes kept down to ``floor`` (0 without one; ``conf`` where that is lower), from one pass at
        ``floor``.

        ultralytics' NMS keeps the boxes above its ``conf``, each suppressed only by a higher-scored box of
        its class, and then the first ``max_det`` by score, so a pass's boxes above ``conf`` are the same
        at any lower threshold (compared in float32, as it compares them). Tiled, each window's are; the
        windows' boxes above ``conf`` are merged apart from the rest
        (:func:`~detection.tiling.predict_tiled`), as a whole box below ``conf`` may suppress a cut-off
        one above it, and the top score is that of every box merged, as ``detection.evaluate`` scores a
        photo.
        """
        self._tiling_note(max(image.shape[:2]))
        if not 0 <= floor <= 1:  # NaN too: ultralytics kept no box below it, and every top score was 0
            raise UserError(f"score_floor must be in [0, 1], got {floor}")
        settings = {**self.settings, "conf": min(floor, self.conf)}
        if not self.tile:
            found = ultralytics_detections(self.detector.predict(image, **settings))[0]
            return above(found, self.conf), top_score(found)
        passes: list[list[ImageDetections]] = []

        def kept(tiles: list[np.ndarray], windows: np.ndarray) -> list[ImageDetections]:
            passes.append(self._predict_tiles(tiles, windows, settings=settings))
            return [above(found, self.conf) for found in passes[-1]]

        tiling = {"tile": self.tile, "overlap": self.tile_overlap, "max_det": self.max_det}
        boxes = predict_tiled(image, kept, **tiling)
        replay = iter(passes)  # the same windows in the same order: no second detector pass
        every = predict_tiled(image, lambda tiles, windows: next(replay), **tiling)
        return boxes, top_score(every)

    def _predict_tiles(
        self, tiles: list[np.ndarray], windows: np.ndarray, *, settings: dict
    ) -> list[ImageDetections]:
        return ultralytics_detections(self.detector.predict(list(tiles), **settings))

    def embedding(self, path: str | Path, image: np.ndarray | None = None) -> ImageEmbedding:
        """SAM's embedding of the photo at ``path``: from the cache (stored there on a miss), or computed.

        The last photo's embedding is also kept in memory, so asking again for the photo just
        inspected (the evaluation's oracle boxes) never reruns the encoder, cache or not.

        Args:
            path: the photo's file (the cache is keyed by its bytes).
            image: its ``(H, W, 3)`` uint8 BGR pixels when already decoded; used without a cache
                (the cache reads a photo it lacks from the file itself).
        """
        key = _file_key(path)
        if key is not None and self._last is not None and self._last[0] == key:
            return self._last[1]
        if self.cache is not None:
            embedding = self.cache.embed([path], device=self.device, progress=False)[0]
        else:
            if image is None:
                image = decode_image_file(path, cv2.IMREAD_COLOR)
            embedding = embed_images(self.sam, [cv2.cvtColor(image, cv2.COLOR_BGR2RGB)], self.device)[0]
        self._last, self._last_path = (key, embedding), Path(path)
        return embedding

    @property
    def reads_colours(self) -> bool:
        """Whether the masks depend on the photo's colours: a colour head or a colour prompt."""
        return self.colour_head is not None or self.colour_prompt is not None

    def photo_rgb(self, path: str | Path, image: np.ndarray | None = None) -> np.ndarray:
        """The photo's ``(H, W, 3)`` uint8 RGB pixels, for the colour head and the colour prompt.

        The last photo's are kept, so asking again for the photo just inspected (the
        evaluation's oracle boxes) decodes nothing.

        Args:
            path: the photo's file.
            image: its ``(H, W, 3)`` uint8 BGR pixels when already decoded.

        Raises:
            UserError: the file is missing or not an image (when ``image`` is not given).
        """
        key = _file_key(path)
        if key is not None and self._last_rgb is not None and self._last_rgb[0] == key:
            return self._last_rgb[1]
        rgb = load_rgb(path) if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        self._last_rgb = (key, rgb)
        return rgb

    def segment(
        self,
        embedding: ImageEmbedding,
        boxes: np.ndarray,
        *,
        path: str | Path | None = None,
        rgb: np.ndarray | None = None,
        keep_probs: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """SAM's mask of every box of one photo, in one decoder call (per
        :data:`~segmentation.predict.DECODER_CHUNK` boxes).

        With ``crops``, a small box is decoded on a zoomed crop of the photo around it (its
        embedding cached like the photo's, :mod:`segmentation.crops`) and its mask pasted back.
        With a ``colour_prompt``, every box's colour map is SAM's ``mask_input``; with a
        ``colour_head``, the head refines every box's logits on the photo's colours. With ``tta``,
        the logits are averaged over the photo and its flips first.

        Args:
            embedding: the photo's embedding (:meth:`embedding`).
            boxes: ``(N, 4)`` xyxy in the photo's pixels (the detector's, or ground-truth
                boxes as an oracle).
            path: the photo's file, for crops, the colour head and prompt and ``tta``; None: the photo
                :meth:`embedding` returned ``embedding`` for (crops are skipped for an
                embedding of unknown origin).
            rgb: the photo's ``(H, W, 3)`` uint8 RGB pixels for the colour head and prompt;
                None: read from ``path`` (:meth:`photo_rgb`).
            keep_probs: whether ``probs`` are made; None: the inspector's ``keep_probs`` (the
                evaluation's oracle needs none: its masks and scores are the same either way).

        Returns:
            ``masks`` ``(N, H, W)`` bool, ``mask_scores`` ``(N,)`` float32 SAM's predicted IoU,
            and ``probs`` ``(N, H, W)`` float16 sigmoid of the logits when ``keep_probs``
            (None otherwise); ``(H, W)`` is ``embedding.original_size``.

        Raises:
            ValueError: a colour head or prompt, and neither ``rgb`` nor the photo's file known; or
                ``tta`` and the photo's file not known.
        """
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        if path is None and self._last is not None and self._last[1] is embedding:
            path = self._last_path
        if self.reads_colours and rgb is None and len(boxes):
            if path is None:
                what = "colour head" if self.colour_head is not None else "colour prompt"
                raise ValueError(f"the {what} needs the photo: pass path or rgb with this embedding")
            rgb = self.photo_rgb(path)
        flips = None
        if self.tta and len(boxes):
            if path is None:
                raise ValueError("test-time flips need the photo: pass path with this embedding")
            flips = self.flip_embeddings(path)
        windows = small_box_windows(self.crops if path is not None else None, boxes, embedding.original_size)
        keep = self.keep_probs if keep_probs is None else keep_probs
        if all(window is None for window in windows):
            return self._segment_frame(embedding, boxes, rgb, flips, keep_probs=keep)
        return self._segment_with_crops(
            embedding, boxes, windows, path=path, rgb=rgb, flips=flips, keep_probs=keep
        )

    def _segment_with_crops(
        self,
        embedding: ImageEmbedding,
        boxes: np.ndarray,
        windows: Sequence[Window | None],
        *,
        path: str | Path | None,
        rgb: np.ndarray | None,
        flips: dict[str, ImageEmbedding] | None,
        keep_probs: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`segment` of ``boxes`` some of which have a crop ``window`` (None: decoded on the whole
        photo, with ``rgb`` and ``flips``): each of those is decoded on its crop's embedding (of the photo
        ``path``) and its mask, and probabilities, pasted back at ``embedding.original_size``
        (:func:`segmentation.crops.decode_with_crops`)."""
        return decode_with_crops(
            partial(self._segment_frame, rgb=rgb, flips=flips, keep_probs=keep_probs),
            embedding,
            boxes,
            list(windows),
            partial(self.crop_embedding, path),
            embedding.original_size,
            decode_crop=partial(self._segment_frame, keep_probs=keep_probs),
        )

    def crop_embedding(self, path: str | Path, window: Window) -> ImageEmbedding:
        """SAM's embedding of a square crop of the photo at ``path`` (cached like the photo's).

        The last photo's crops (:data:`CROPS_KEPT` of them) are also kept in memory by window, so a
        window asked for again (the evaluation's truth box beside the cascade's box of one defect)
        reruns no encoder; without a cache, the photo is decoded once for all its crops
        (:meth:`photo_rgb`), not once per crop.
        """
        key = _file_key(path)
        if key is None:  # a file gone: reading it says why
            kept: dict[Window, ImageEmbedding] = {}
        else:
            if self._last_crops is None or self._last_crops[0] != key:
                self._last_crops = (key, {})  # another photo: the last one's crops are dropped
            kept = self._last_crops[1]
        if window in kept:
            return kept[window]
        view = View(window=window)
        if self.cache is not None:
            crop = self.cache.embed([path], views=[view], device=self.device, progress=False)[0]
        else:
            crop = embed_images(self.sam, [view.apply(self.photo_rgb(path))], self.device)[0]
        if len(kept) < CROPS_KEPT:
            kept[window] = crop
        return crop

    @property
    def _crops_read_photo(self) -> bool:
        """Whether a small box's crop is cut from the photo's pixels here (crops on, no cache: the cache
        reads the file itself)."""
        return self.crops is not None and self.crops.max_fraction > 0 and self.cache is None

    def flip_embeddings(self, path: str | Path) -> dict[str, ImageEmbedding]:
        """SAM's embeddings of the photo at ``path`` flipped, by view name (:data:`TTA_VIEWS` but
        the identity), cached like the photo's; the last photo's are also kept in memory."""
        key = _file_key(path)
        if key is not None and self._last_flips is not None and self._last_flips[0] == key:
            return self._last_flips[1]
        names = [name for name in TTA_VIEWS if name != "identity"]
        if self.cache is not None:
            views = [View(transform=name) for name in names]
            embedded = self.cache.embed([path] * len(names), views=views, device=self.device, progress=False)
        else:
            rgb = self.photo_rgb(path)
            embedded = embed_images(self.sam, [transform_image(rgb, name) for name in names], self.device)
        flips = dict(zip(names, embedded, strict=True))
        if key is not None:
            self._last_flips = (key, flips)
        return flips

    def _segment_frame(
        self,
        embedding: ImageEmbedding,
        boxes: np.ndarray,
        rgb: np.ndarray | None = None,
        flips: dict[str, ImageEmbedding] | None = None,
        *,
        keep_probs: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`segment` on one embedding's own frame, no crops.

        Args:
            embedding, boxes: as :meth:`segment`.
            rgb: the photo's RGB pixels when ``embedding`` is the whole photo's: each box's
                colour prompt (if any) is its ``mask_input`` and the colour head (if any) refines
                the logits; None: SAM's logits of the boxes alone, as they are (a crop).
            flips: the photo's flipped embeddings (:meth:`flip_embeddings`): logits averaged
                over them and ``embedding``; None: ``embedding``'s alone.
            keep_probs: as :meth:`segment`'s.
        """
        height, width = embedding.original_size
        n = len(boxes)
        masks = np.zeros((n, height, width), bool)
        keep = self.keep_probs if keep_probs is None else keep_probs
        probs = np.zeros((n, height, width), np.float16) if keep else None
        if n == 0:
            return masks, np.zeros(0, np.float32), probs
        scores = np.zeros(n, np.float32)
        with torch.inference_mode():
            for rows, logits, iou in self._logits(embedding, boxes, flips, rgb):
                scores[rows] = iou
                logits = self._refine(logits, boxes[rows], rgb)
                masks[rows] = (logits > self.sam.mask_threshold).cpu().numpy()
                if probs is not None:
                    probs[rows] = torch.sigmoid(logits).half().cpu().numpy()
        return masks, scores, probs

    def _logits(
        self,
        embedding: ImageEmbedding,
        boxes: np.ndarray,
        flips: dict[str, ImageEmbedding] | None,
        rgb: np.ndarray | None = None,
    ) -> Iterator[tuple[slice, torch.Tensor, np.ndarray]]:
        """``(rows, (n, H, W) full-resolution logits, (n,) predicted IoUs)`` of ``boxes``, in order,
        :func:`~segmentation.predict.decoder_chunk` boxes per decoder call and at most
        :data:`~segmentation.predict.UPSCALE_CHUNK` rows at a time;
        with ``rgb`` (the whole photo's) and a ``colour_prompt``, each box's map is its ``mask_input``."""
        prompt = self.colour_prompt if rgb is not None else None
        step = decoder_chunk(self.device, full_size=flips is not None)  # flips: 4 views' logits at full size
        for first in range(0, len(boxes), step):
            chunk = boxes[first : first + step]
            if flips is not None:
                views = {"identity": embedding, **flips}
                logits, iou = flip_averaged_logits(
                    self.sam,
                    views,
                    chunk,
                    embedding.original_size,
                    decoder=self._decode,
                    colour_prompt=prompt,
                    rgb=rgb,
                )
                yield slice(first, first + len(chunk)), torch.from_numpy(logits), iou
                continue
            mask_input = mask_input_of(prompt, self.sam, embedding, rgb, chunk)
            low_res, iou = self._decode(embedding, boxes=chunk, mask_input=mask_input, multimask_output=False)
            iou = iou[:, 0].float().cpu().numpy()
            for start in range(0, len(chunk), UPSCALE_CHUNK):
                part = slice(start, start + UPSCALE_CHUNK)
                logits = upscale_logits(self.sam, low_res[part], embedding)[:, 0]
                yield slice(first + start, first + start + len(logits)), logits, iou[part]

    def _refine(self, logits: torch.Tensor, boxes: np.ndarray, rgb: np.ndarray | None) -> torch.Tensor:
        """``(n, H, W)`` full-resolution ``logits`` of ``boxes`` through the colour head, if there is one."""
        if self.colour_head is None or rgb is None:
            return logits
        return torch.from_numpy(self.colour_head.refine(logits.float().cpu().numpy(), rgb, boxes))


def check_colour(
    colour_head: ColourHead | None,
    colour_prompt: ColourPrompt | None,
    crops: CropRule | None,
    source: object = None,
) -> None:
    """Refuses a colour head or colour prompt together with zoomed crops: both work on the whole photo.

    Raises:
        UserError: crops with either; one line naming ``source``, the checkpoint, and the flags that
            leave each out (:func:`segmentation.colour_prompt.refuse_colour_with_crops`).
    """
    refuse_colour_with_crops(colour_head, colour_prompt, 0.0 if crops is None else crops.max_fraction, source)


def _detector_name(detector: object) -> str:
    """How the tiling note names a detector built elsewhere: its weights' file where ultralytics recorded it
    (``YOLO(path).ckpt_path``), else ``the detector``."""
    path = getattr(detector, "ckpt_path", None)
    return str(path) if isinstance(path, str | Path) and str(path) else "the detector"


def _embedding_cache(sam: Sam, model_name: str, cache_dir: str | Path | None) -> EmbeddingCache:
    """``sam``'s embedding cache under ``cache_dir`` (None: ``common.io.embeddings_root()``), in a folder
    named after the registry's ``model_name``; a folder it cannot write says to pass another ``cache_dir`` or
    ``use_cache=False``, :meth:`Inspector.from_checkpoints`' keywords."""
    root = embeddings_root() if cache_dir is None else Path(cache_dir)
    return EmbeddingCache(
        root, sam, model_name=model_name, elsewhere="pass cache_dir=<a writable folder> or use_cache=False"
    )


def detector_class_names(detector: Model | Any, class_names: Sequence[str] | None) -> list[str]:
    """The detector's class names in id order: ``class_names`` when given, else ``detector.names``."""
    names = detector.names if class_names is None else dict(enumerate(class_names))
    return [str(names[i]) for i in sorted(names)]


def sam_decoder(sam: Sam, runtime: str, device: torch.device) -> tuple[str, Any]:
    """``(runtime, decode)``: SAM's mask decoder on the ``runtime`` chosen for ``device``.

    ``runtime`` as :class:`Inspector` takes it (``torch``, ``onnx`` or ``auto``), chosen by
    :func:`segmentation.decoder_onnx.choose_runtime`, whose note (``auto`` falling back to torch) is
    printed on stderr. ``decode(embedding, *, boxes, ...)`` is :func:`segmentation.predict.decode`
    bound to ``sam``, or an :class:`~segmentation.decoder_onnx.OnnxDecoder` exported from its weights
    as they are now (about a second).

    Raises:
        UserError: an unknown ``runtime``, or ``onnx`` on a GPU or without its packages.
    """
    runtime, note = choose_runtime(runtime, device.type, missing_packages())
    if note:
        print(f"note: {note}", file=sys.stderr)
    return runtime, partial(decode, sam) if runtime == "torch" else OnnxDecoder(sam)


def class_names_with_regions(detector_class_names: Sequence[str], *, regions: bool) -> list[str]:
    """The classes an inspector calls: the detector's, then ``anomaly`` with ``regions`` (a PatchCore run's).

    Raises:
        UserError: ``regions`` and a detector class named ``anomaly``.
    """
    names = list(detector_class_names)
    if regions:
        if ANOMALY in names:
            raise UserError(
                f"the detector has a class named '{ANOMALY}', the class of the anomaly regions; "
                "inspect without --anomaly-run"
            )
        names.append(ANOMALY)
    return names


def check_tta(tta: bool, crops: CropRule | None) -> None:
    """Refuses test-time flips together with zoomed crops, as ``segmentation.evaluate`` does.

    Raises:
        UserError: both are given.
    """
    if tta and crops is not None and crops.max_fraction > 0:
        raise UserError("--tta and --crop-fraction do not combine: drop one of them")


def check_settings(
    *,
    conf: float = 0.25,
    iou: float = 0.7,
    mask_iou: float = MASK_IOU,
    tile: int | None = None,
    tile_overlap: float = 0.2,
    imgsz: int | None = None,
    max_det: int = 300,
) -> None:
    """Raises :class:`~common.errors.UserError` for ``conf``, ``iou`` or ``mask_iou`` outside [0, 1], bad
    tiling, an ``imgsz`` outside [:data:`~detection.train_config.MIN_IMGSZ`,
    :data:`~detection.train_config.MAX_IMGSZ`] or a ``max_det`` under 1 (ultralytics keeps no box: every
    photo would be called good)."""
    for name, value in (("conf", conf), ("iou", iou), ("mask-iou", mask_iou)):
        if not 0 <= value <= 1:  # NaN fails too
            raise UserError(f"--{name} must be in [0, 1], got {value}")
    if imgsz is not None and not MIN_IMGSZ <= imgsz <= MAX_IMGSZ:
        raise UserError(f"--imgsz must be in [{MIN_IMGSZ}, {MAX_IMGSZ}] pixels, got {imgsz}")
    if max_det < 1:
        raise UserError(f"--max-det must be >= 1, got {max_det}")
    if tile is not None:
        check_tiling(tile, tile_overlap)


def _file_key(path: str | Path) -> tuple | None:
    """What identifies a file's current content cheaply; None if missing.

    Path, size, modification time and the kernel's change time, which no tool sets back (``cp -p``
    restores the modification time only): a photo rewritten in place is never taken for the old one.
    """
    try:
        stat = Path(path).stat()
    except OSError:
        return None  # decoding it will say why, in one line
    return Path(path).resolve(), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def with_boxes(
    detections: ImageDetections, boxes: np.ndarray, class_id: int, score: float
) -> ImageDetections:
    """``detections`` and ``boxes`` ``(K, 4)`` xyxy after them, each of ``class_id`` and ``score``."""
    return ImageDetections(
        boxes=np.concatenate([np.asarray(detections.boxes, dtype=float).reshape(-1, 4), boxes]),
        scores=np.concatenate([np.asarray(detections.scores, dtype=float), np.full(len(boxes), score)]),
        classes=np.concatenate([np.asarray(detections.classes, dtype=int), np.full(len(boxes), class_id)]),
    )


def above(detections: ImageDetections, conf: float) -> ImageDetections:
    """The detections scored above ``conf``, in their order, compared in float32 as ultralytics' NMS keeps
    its boxes (``score > conf``)."""
    keep = np.asarray(detections.scores).astype(np.float32) > np.float32(conf)
    return select(detections, np.flatnonzero(keep))


def top_score(detections: ImageDetections) -> float:
    """The highest score of ``detections``; 0 without any."""
    return float(np.max(detections.scores)) if len(detections.scores) else 0.0


def sort_by_score(detections: ImageDetections) -> ImageDetections:
    """The same detections, highest score first (ties keep their order)."""
    return select(detections, np.argsort(-np.asarray(detections.scores, dtype=float), kind="stable"))


def select(detections: ImageDetections, order: np.ndarray) -> ImageDetections:
    """The detections at the indices ``order``, in that order."""
    return ImageDetections(
        boxes=np.asarray(detections.boxes, dtype=float).reshape(-1, 4)[order],
        scores=np.asarray(detections.scores, dtype=float)[order],
        classes=np.asarray(detections.classes, dtype=int)[order],
    )
