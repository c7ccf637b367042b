"""SAM's decoder half on cached image embeddings: prompts in, mask logits and masks out.

Training, evaluation and the annotation app all run the prompt encoder and
mask decoder on an :class:`~segmentation.embeddings.ImageEmbedding` instead of
an image, so the slow image encoder runs once per image (see
``segmentation/embeddings.py``). Every function here reproduces the matching
step of ``SamPredictor`` exactly; the geometry is the part that silently
breaks IoU when it is off:

- prompts are given in original-image pixels (boxes xyxy, points xy) and are
  scaled into the model input frame, the image resized so its long side is
  ``img_size`` (:func:`transform_prompts`);
- the decoder's low-resolution logits cover the *padded* ``img_size`` square,
  so they are upsampled to it, cropped to ``input_size`` and only then resized
  to the original ``(H, W)`` (:func:`upscale_logits`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from segmentation.embeddings import ImageEmbedding, resized_size

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Anything ``torch.as_tensor`` takes: numpy arrays, tensors, nested lists.
ArrayLike = np.ndarray | torch.Tensor | list

#: Masks upscaled to the photo's size per step: bounds their float32 logits to ``chunk * H * W * 4``
#: bytes (768 MB for 16 at 4000 x 3000).
UPSCALE_CHUNK = 16
#: Boxes per decoder call, on CPUs and on a GPU. SAM's mask decoder repeats the image embedding
#: once per prompt (4 MB each at 256x64x64 float32, plus its activations), so a photo with hundreds
#: of boxes (``--conf 0.001``) would need gigabytes in one call. On CPUs small calls are also the
#: faster (bench/results/decoder_chunk.md, 200 boxes on a 1024 px photo in calls of 4 against 64:
#: peak memory growth 0.3 / 3.7 GB and 8.0 / 10.1 s with ONNX Runtime, 0.2 / 1.9 GB and 12.7 /
#: 18.4 s with torch); a GPU is kept busy by the larger batch.
DECODER_CHUNK = {"cpu": 4, "gpu": 64}


def decoder_chunk(device: torch.device | str, *, full_size: bool = False) -> int:
    """Boxes per decoder call on ``device``: :data:`DECODER_CHUNK`'s, and with ``full_size`` (every
    box's logits upscaled to the photo's size at once, as :func:`box_logits` gives them) at most
    :data:`UPSCALE_CHUNK`.

    The rule of the inspection cascade and of ``anomaly.masks``: 4 boxes a call on CPUs, 16 (full
    size) or 64 on a GPU.

    >>> decoder_chunk("cpu"), decoder_chunk("cuda", full_size=True), decoder_chunk("cuda")
    (4, 16, 64)
    """
    step = DECODER_CHUNK["cpu" if torch.device(device).type == "cpu" else "gpu"]
    return min(step, UPSCALE_CHUNK) if full_size else step


class Prompts(NamedTuple):
    """Prompts of N objects on one image in the model input frame, as ``PromptEncoder`` takes them.

    Attributes:
        point_coords: ``(N, K, 2)`` float32 xy, or None.
        point_labels: ``(N, K)`` int32: 1 foreground, 0 background, -1 padding; or None.
        boxes: ``(N, 4)`` float32 xyxy, or None.
    """

    point_coords: torch.Tensor | None
    point_labels: torch.Tensor | None
    boxes: torch.Tensor | None


def transform_prompts(
    sam: Sam,
    emb: ImageEmbedding,
    *,
    boxes: ArrayLike | None = None,
    point_coords: ArrayLike | None = None,
    point_labels: ArrayLike | None = None,
) -> Prompts:
    """Maps prompts from original-image pixels to the model input frame.

    The same scaling as ``ResizeLongestSide.apply_boxes/apply_coords`` with
    ``emb.original_size``. It is computed in float64 and then rounded to
    float32, as ``SamPredictor.predict`` does, so the results match it bit for
    bit (``apply_coords_torch`` rounds to float32 first and can differ by an ulp).

    Args:
        sam: the model (its ``img_size`` and device).
        emb: the image the prompts belong to (its ``original_size``).
        boxes: ``(N, 4)`` xyxy in pixels, or ``(4,)`` for one box.
        point_coords: ``(N, K, 2)`` xy in pixels: K points for each of N objects.
        point_labels: ``(N, K)``: 1 foreground, 0 background, -1 ignored.

    Returns:
        :class:`Prompts` on ``sam.device``; a field is None where its input was.

    Raises:
        ValueError: bad shapes, points without labels (or the reverse), or
            boxes and points for different numbers of objects.
    """
    if (point_coords is None) != (point_labels is None):
        raise ValueError("point_coords and point_labels go together")
    old_h, old_w = emb.original_size
    new_h, new_w = resized_size((old_h, old_w), sam.image_encoder.img_size)
    scale = torch.tensor([new_w / old_w, new_h / old_h], dtype=torch.float64)
    device = sam.device

    boxes_t = None
    if boxes is not None:
        boxes_t = _as_cpu(boxes, torch.float64)
        if boxes_t.shape == (4,):
            boxes_t = boxes_t[None]
        if boxes_t.ndim != 2 or boxes_t.shape[1] != 4:
            raise ValueError(f"boxes must be (N, 4) xyxy, got {tuple(boxes_t.shape)}")
        boxes_t = (boxes_t.reshape(-1, 2, 2) * scale).reshape(-1, 4).to(device, torch.float32)

    coords_t = labels_t = None
    if point_coords is not None:
        coords_t = _as_cpu(point_coords, torch.float64)
        labels_t = _as_cpu(point_labels, torch.int32)
        if coords_t.ndim != 3 or coords_t.shape[2] != 2 or labels_t.shape != coords_t.shape[:2]:
            raise ValueError(
                f"point_coords must be (N, K, 2) and point_labels (N, K), "
                f"got {tuple(coords_t.shape)} and {tuple(labels_t.shape)}"
            )
        coords_t = (coords_t * scale).to(device, torch.float32)
        labels_t = labels_t.to(device)

    if boxes_t is not None and coords_t is not None and len(boxes_t) != len(coords_t):
        raise ValueError(f"{len(boxes_t)} boxes but points for {len(coords_t)} objects")
    return Prompts(coords_t, labels_t, boxes_t)


def decode(
    sam: Sam,
    emb: ImageEmbedding,
    *,
    boxes: ArrayLike | None = None,
    point_coords: ArrayLike | None = None,
    point_labels: ArrayLike | None = None,
    mask_input: ArrayLike | None = None,
    multimask_output: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs the prompt encoder and mask decoder for N objects on one cached image.

    Differentiable: no ``no_grad``/``inference_mode`` here, so training can
    back-propagate into the decoder (and prompt encoder); callers that only
    predict wrap it themselves (as :func:`predict_masks` does).

    Args:
        sam: the model; runs on ``sam.device``.
        emb: the image's cached embedding (moved to ``sam.device``).
        boxes, point_coords, point_labels: prompts in original-image pixels,
            see :func:`transform_prompts`; boxes, points or both.
        mask_input: ``(N, 1, 4h, 4w)`` low-resolution logits from an earlier
            call (``(N, 1, 256, 256)`` for 1024-px SAM), model input frame. A row of
            NaN gives its object no mask prompt (SAM's ``no_mask_embed``, as ``None`` does):
            a box too small for its colour prompt (:mod:`segmentation.colour_prompt`).
        multimask_output: three masks per object (M = 3) instead of one.

    Returns:
        ``low_res_logits``: ``(N, M, 4h, 4w)`` mask logits over the padded
        ``img_size`` square (``(N, M, 256, 256)`` for 1024-px SAM; see
        :func:`upscale_logits`), and ``iou_predictions``: ``(N, M)``.

    Raises:
        ValueError: no prompt at all, an embedding from another model
            (its channels or spatial size differ from the prompt encoder's), or
            prompts and ``mask_input`` for different numbers of objects.
    """
    if boxes is None and point_coords is None and mask_input is None:
        raise ValueError("decode needs boxes, points or a mask_input")
    check_embedding(sam, emb)
    prompts = transform_prompts(sam, emb, boxes=boxes, point_coords=point_coords, point_labels=point_labels)
    masks = None if mask_input is None else _checked_mask_input(sam, mask_input, _num_objects(prompts))
    sparse, dense = _encode_prompts(sam, prompts, masks)
    return sam.mask_decoder(
        image_embeddings=emb.embedding.to(sam.device)[None],
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask_output,
    )


def _checked_mask_input(sam: Sam, mask_input: ArrayLike, n: int | None) -> torch.Tensor:
    """``mask_input`` as float32 on ``sam.device``; ValueError unless it is ``(N, 1, 4h, 4w)`` with N = ``n``
    (any N when ``n`` is None: no box or point prompts)."""
    masks = torch.as_tensor(mask_input, dtype=torch.float32, device=sam.device)
    if masks.ndim != 4 or masks.shape[1] != 1 or (n is not None and masks.shape[0] != n):
        raise ValueError(f"mask_input must be (N, 1, 4h, 4w) for N = {n} objects, got {tuple(masks.shape)}")
    return masks


def _encode_prompts(
    sam: Sam, prompts: Prompts, masks: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's prompt encoder: the sparse and dense embeddings of ``prompts`` and ``masks``
    (``(N, 1, 4h, 4w)`` or None); a ``masks`` row of NaN (:func:`no_mask_rows`) gets ``no_mask_embed``,
    as an object without a mask prompt does."""
    points = None if prompts.point_coords is None else (prompts.point_coords, prompts.point_labels)
    missing = None if masks is None else no_mask_rows(masks)[:, None, None, None]
    if missing is not None and not missing.any():
        missing = None
    if missing is not None:  # zeros in their place: a NaN in the input poisons gradients
        masks = masks.masked_fill(missing, 0.0)
    sparse, dense = sam.prompt_encoder(points=points, boxes=prompts.boxes, masks=masks)
    if missing is not None:
        no_mask = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand_as(dense)
        dense = torch.where(missing, no_mask, dense)
    return sparse, dense


def no_mask_rows(mask_input: torch.Tensor) -> torch.Tensor:
    """``(N,)`` bool: the rows of an ``(N, 1, 4h, 4w)`` ``mask_input`` NaN all over (no mask prompt)."""
    return mask_input.flatten(1).isnan().all(dim=1)


def check_embedding(sam: Sam, emb: ImageEmbedding) -> None:
    """Raises ValueError when ``emb`` does not fit ``sam``'s decoder (another model's cached embedding)."""
    expected = (sam.prompt_encoder.embed_dim, *sam.prompt_encoder.image_embedding_size)
    if tuple(emb.embedding.shape) != expected:
        raise ValueError(
            f"embedding {tuple(emb.embedding.shape)} does not fit this model (expects {expected}): "
            "was it cached with another encoder?"
        )


def upscale_logits(sam: Sam, low_res_logits: torch.Tensor, emb: ImageEmbedding) -> torch.Tensor:
    """Decoder logits at the original image size, exactly as ``SamPredictor`` makes them.

    ``sam.postprocess_masks``: bilinear upsampling to the padded
    ``img_size`` square, cropping the padding away (``emb.input_size``), then
    bilinear resizing to ``emb.original_size``. Differentiable.

    Args:
        sam: the model (its ``img_size``).
        low_res_logits: ``(N, M, 4h, 4w)`` from :func:`decode`.
        emb: the image the logits belong to.

    Returns:
        ``(N, M, H, W)`` logits, ``(H, W) = emb.original_size``; a pixel is
        foreground where its logit is ``> sam.mask_threshold``.
    """
    return sam.postprocess_masks(low_res_logits, emb.input_size, emb.original_size)


def predict_masks(
    sam: Sam,
    emb: ImageEmbedding,
    *,
    boxes: ArrayLike | None = None,
    point_coords: ArrayLike | None = None,
    point_labels: ArrayLike | None = None,
    mask_input: ArrayLike | None = None,
    multimask_output: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks for N objects on one cached image: ``SamPredictor.predict``, batched over objects.

    Runs under ``torch.inference_mode``. Arguments as in :func:`decode`; zero
    objects (``boxes`` of shape ``(0, 4)``, ``point_coords`` of shape
    ``(0, K, 2)``) give empty results.

    Returns:
        ``masks``: ``(N, M, H, W)`` bool at the original size; ``scores``:
        ``(N, M)`` float32 predicted IoUs; ``low_res_logits``: ``(N, M, 4h, 4w)``
        float32, to pass back as ``mask_input`` (one of the M per object,
        ``[:, best, None]``). Memory: the float logits at full size are
        ``N * M * H * W * 4`` bytes before thresholding.
    """
    with torch.inference_mode():
        if _no_objects(boxes, point_coords, mask_input):
            return _empty_prediction(sam, emb, multimask_output)
        low_res, iou = decode(
            sam,
            emb,
            boxes=boxes,
            point_coords=point_coords,
            point_labels=point_labels,
            mask_input=mask_input,
            multimask_output=multimask_output,
        )
        masks = upscale_logits(sam, low_res, emb) > sam.mask_threshold
        return masks.cpu().numpy(), iou.float().cpu().numpy(), low_res.float().cpu().numpy()


def box_logits(
    sam: Sam, emb: ImageEmbedding, boxes: ArrayLike, *, mask_input: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Single-mask logits of box prompts at the original size: ``(N, H, W)`` float32 and ``(N,)`` IoUs.

    The logits :func:`predict_masks` thresholds for ``multimask_output=False`` (for heads that
    work on them, :mod:`segmentation.colour_head`); ``mask_input`` as in :func:`decode` (e.g. the
    boxes' :mod:`segmentation.colour_prompt` maps). Zero boxes give empty arrays.
    """
    with torch.inference_mode():
        if _no_objects(boxes):
            return np.zeros((0, *emb.original_size), np.float32), np.zeros(0, np.float32)
        low_res, iou = decode(sam, emb, boxes=boxes, mask_input=mask_input, multimask_output=False)
        logits = upscale_logits(sam, low_res, emb)[:, 0]
        return logits.float().cpu().numpy(), iou[:, 0].float().cpu().numpy()


def _as_cpu(value: ArrayLike, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", dtype)
    return torch.as_tensor(np.asarray(value), dtype=dtype)


def _num_objects(prompts: Prompts) -> int | None:
    if prompts.point_coords is not None:
        return len(prompts.point_coords)
    if prompts.boxes is not None:
        return len(prompts.boxes)
    return None


def _no_objects(*prompts: ArrayLike | None) -> bool:
    # Prompts for zero objects, e.g. an image without clicks: the first axis of
    # every prompt given is empty. (The decoder cannot run on zero prompts.)
    shapes = [np.shape(prompt) for prompt in prompts if prompt is not None]
    return bool(shapes) and all(len(shape) > 0 and shape[0] == 0 for shape in shapes)


def _empty_prediction(
    sam: Sam, emb: ImageEmbedding, multimask_output: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # The decoder cannot run on a batch of zero prompts; shapes as a real call.
    m = sam.mask_decoder.num_multimask_outputs if multimask_output else 1
    low_h, low_w = (4 * size for size in sam.prompt_encoder.image_embedding_size)
    return (
        np.zeros((0, m, *emb.original_size), bool),
        np.zeros((0, m), np.float32),
        np.zeros((0, m, low_h, low_w), np.float32),
    )
