"""SAM's prompt encoder and mask decoder through ONNX Runtime: the same logits, about twice as fast on a CPU.

The annotation page runs the decoder once per click, and eager PyTorch spends
half of that time outside the matrix products (layout copies, unfused adds,
layer norms and GELUs on 4096 x 256 image tokens). SAM's own answer is to
export the decoder to ONNX (``segment_anything.utils.onnx.SamOnnxModel``, what
its web demo runs); this module does that in memory when the page starts
(about a second) and runs it with ONNX Runtime's CPU provider, whose fused
kernels take MobileSAM's decoder from ~170 to ~100 ms on one core of the
development machine, and a whole click from 154 to 79 ms on two
(``bench/annotate_latency.py`` measures it per click).

What is exported: SamOnnxModel's prompt embedding (points with labels 1/0,
box corners as labels 2/3, -1 for padding, exactly ``PromptEncoder``'s
arithmetic), an optional low-resolution mask input, and the stock
``MaskDecoder.predict_masks``; out come the low-resolution logits of all four
mask tokens and their IoU predictions. Upscaling stays in PyTorch
(``Sam.postprocess_masks``), so previews and accepted masks keep the geometry
of :mod:`segmentation.predict`. The weights are those of the model passed in,
fine-tuned decoders included; logits agree with :func:`segmentation.predict.decode`
to about 1e-4 (float summation order), far below what moves a mask pixel
except at exactly the threshold.

:func:`export_decoder` writes the same prompt encoder and mask decoder for
deployment, as the whole ``SamOnnxModel`` of segment-anything's
``scripts/export_onnx_model.py`` (upscaling to the original image size
included, the input and output names of that script, one tracing bug fixed);
``python -m segmentation.export`` runs it on a fine-tuned checkpoint. Both
graphs go through one exporter, :func:`_export`.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import torch
import torch.nn.functional as F

from common.errors import UserError
from common.io import atomic_write
from segmentation.embeddings import ImageEmbedding
from segmentation.predict import ArrayLike, check_embedding, no_mask_rows, transform_prompts

if TYPE_CHECKING:
    import onnxruntime
    from segment_anything.modeling import Sam

#: ONNX opset of the export (ONNX Runtime 1.17+ runs it); also the default of segment-anything's script.
OPSET = 17
#: Opsets the export accepts: SamOnnxModel's slicing needs 11, PyTorch's TorchScript exporter stops at 20.
OPSETS = range(11, 21)
#: Inputs and outputs of :func:`export_decoder`, named and ordered as segment-anything's
#: ``scripts/export_onnx_model.py`` writes them (what its web demo and ports of it feed).
INPUT_NAMES = (
    "image_embeddings",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
    "orig_im_size",
)
OUTPUT_NAMES = ("masks", "iou_predictions", "low_res_masks")
#: The original image size of the example the graph is traced with (segment-anything's script's).
_EXAMPLE_IMAGE_SIZE = (1500.0, 2250.0)


#: Where the decoder may run: ``auto`` picks ONNX Runtime on a CPU, torch on a GPU.
RUNTIMES = ("auto", "onnx", "torch")


def missing_packages() -> list[str]:
    """The packages the ONNX decoder needs that are not installed (``onnx`` exports, ``onnxruntime`` runs)."""
    return [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]


def choose_runtime(requested: str, device_type: str, missing: list[str]) -> tuple[str, str | None]:
    """Where the decoder runs (``onnx`` or ``torch``), and a note when ``auto`` had to fall back.

    ``auto`` is ONNX Runtime on a CPU (about twice as fast per click, four times for
    ten boxes at once) and torch elsewhere; without the ``missing`` ONNX packages it
    falls back to torch.

    >>> choose_runtime("auto", "cpu", [])
    ('onnx', None)
    >>> choose_runtime("auto", "cuda", [])
    ('torch', None)

    Raises:
        UserError: ``onnx`` asked for on a GPU, or without its packages; an unknown runtime.
    """
    if requested not in RUNTIMES:
        raise UserError(f"unknown decoder runtime {requested!r}: one of {', '.join(RUNTIMES)}")
    runtime = requested if requested != "auto" else ("onnx" if device_type == "cpu" else "torch")
    if runtime == "onnx" and device_type != "cpu":
        raise UserError(
            f"--runtime onnx runs the decoder on the CPU; the model is on {device_type}: use torch"
        )
    if runtime == "onnx" and missing:
        if requested == "onnx":
            raise UserError(f"--runtime onnx needs {' and '.join(missing)}: pip install {' '.join(missing)}")
        return (
            "torch",
            f"{' and '.join(missing)} not installed: the decoder runs in torch (about half as fast)",
        )
    return runtime, None


class _DecoderGraph(torch.nn.Module):
    """The annotation page's graph: SAM's prompt embedding and ``predict_masks``, low-resolution outputs."""

    def __init__(self, sam: Sam) -> None:
        from segment_anything.utils.onnx import SamOnnxModel  # torchvision: not at import (--help)

        super().__init__()
        self.onnx_model = SamOnnxModel(sam, return_single_mask=False)
        self.sam = sam

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        sparse = self.onnx_model._embed_points(point_coords, point_labels)
        dense = self.onnx_model._embed_masks(mask_input, has_mask_input)
        return self.sam.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=self.sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )


def _sam_onnx_graph(sam: Sam, *, return_single_mask: bool) -> torch.nn.Module:
    """SamOnnxModel whose crop of the padding follows ``orig_im_size`` in the exported graph.

    The stock ``mask_postprocessing`` crops with ``int(tensor)``, which the tracer turns into
    constants (PyTorch 2.14 here): the file then crops every image like the example it was traced
    with, and masks of other aspect ratios come out shifted and stretched (tests/segmentation/
    test_export.py measures it; segment-anything issue #753 reports such masks).
    :func:`_mask_postprocessing` slices with the tensors themselves, traced as a dynamic ``Slice``.
    The class is made here, not at import: segment_anything imports torchvision (seconds of --help).
    """
    from segment_anything.utils.onnx import SamOnnxModel

    class SamOnnxGraph(SamOnnxModel):
        def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
            return _mask_postprocessing(self, masks, orig_im_size)

    return SamOnnxGraph(sam, return_single_mask=return_single_mask)


def _mask_postprocessing(
    graph: torch.nn.Module, masks: torch.Tensor, orig_im_size: torch.Tensor
) -> torch.Tensor:
    """SamOnnxModel's ``mask_postprocessing`` with the same arithmetic, its crop kept dynamic."""
    masks = F.interpolate(masks, size=(graph.img_size, graph.img_size), mode="bilinear", align_corners=False)
    prepadded_size = graph.resize_longest_image_size(orig_im_size, graph.img_size)
    masks = masks[..., : prepadded_size[0], : prepadded_size[1]]
    h, w = orig_im_size.to(torch.int64)
    return F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)


def export_decoder(
    sam: Sam,
    path_or_buffer: str | Path | BinaryIO,
    *,
    return_single_mask: bool = False,
    opset: int = OPSET,
) -> None:
    """Writes ``sam``'s prompt encoder, mask decoder and mask upscaling as segment-anything's ONNX model.

    The graph and its interface are those of segment-anything's ``scripts/export_onnx_model.py``
    (``SamOnnxModel``, batch of one image, any number of points), with ``sam``'s current weights
    and one fix: the crop of the padding follows ``orig_im_size`` (:func:`_sam_onnx_graph`).

    Args:
        sam: the model, on the CPU; its training flag is left as it was.
        path_or_buffer: a file, written atomically (:func:`common.io.atomic_write`), or an open
            binary stream.
        return_single_mask: one mask per prompt (SamOnnxModel picks the single-mask token when
            there are more than two points, else the candidate with the best predicted IoU)
            instead of all four tokens (0: single-mask output, 1-3: the three candidates).
        opset: ONNX opset, one of :data:`OPSETS`.

    Inputs (:data:`INPUT_NAMES`; float32, points in the ``img_size`` model input frame):
        ``image_embeddings (1, C, h, w)``, ``point_coords (1, K, 2)``, ``point_labels (1, K)``
        (1/0 points, 2/3 box corners, -1 padding), ``mask_input (1, 1, 4h, 4w)``,
        ``has_mask_input (1,)``, ``orig_im_size (2,)`` as (H, W).

    Outputs (:data:`OUTPUT_NAMES`): ``masks (1, M, H, W)`` logits at the original size,
    ``iou_predictions (1, M)``, ``low_res_masks (1, M, 4h, 4w)``; M is 4, or 1 with
    ``return_single_mask``.
    """
    if opset not in OPSETS:
        raise ValueError(f"opset must be in {OPSETS.start}..{OPSETS.stop - 1}, got {opset}")
    graph = _sam_onnx_graph(sam, return_single_mask=return_single_mask)
    example = (*_example_inputs(sam), torch.tensor(_EXAMPLE_IMAGE_SIZE))
    points = {1: "num_points"}

    def write(stream: BinaryIO) -> None:
        _export(
            sam,
            graph,
            example,
            stream,
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes={"point_coords": points, "point_labels": points},
            opset=opset,
        )

    if isinstance(path_or_buffer, (str, Path)):
        atomic_write(path_or_buffer, write)
    else:
        write(path_or_buffer)


def export_low_res_decoder(sam: Sam) -> bytes:
    """The annotation page's graph of ``sam``, as bytes: all four low-resolution logits, no upscaling.

    Any number of objects and points; inputs are :data:`INPUT_NAMES` without ``orig_im_size``,
    outputs ``low_res_logits (N, 4, 4h, 4w)`` and ``iou_predictions (N, 4)``. Upscaling stays in
    PyTorch (``Sam.postprocess_masks``), so previews keep the geometry of :mod:`segmentation.predict`.
    """
    objects = {0: "objects"}
    buffer = io.BytesIO()
    _export(
        sam,
        _DecoderGraph(sam),
        _example_inputs(sam),
        buffer,
        input_names=INPUT_NAMES[:-1],
        output_names=("low_res_logits", "iou_predictions"),
        dynamic_axes={
            "point_coords": {0: "objects", 1: "points"},
            "point_labels": {0: "objects", 1: "points"},
            "mask_input": objects,
            "low_res_logits": objects,
            "iou_predictions": objects,
        },
        opset=OPSET,
    )
    return buffer.getvalue()


def _example_inputs(sam: Sam) -> tuple[torch.Tensor, ...]:
    """Inputs to trace with: a zero embedding, one point and its padding point, no mask."""
    dim, (h, w) = sam.prompt_encoder.embed_dim, sam.prompt_encoder.image_embedding_size
    mask_h, mask_w = sam.prompt_encoder.mask_input_size
    return (
        torch.zeros(1, dim, h, w),
        torch.zeros(1, 2, 2),
        torch.tensor([[1.0, -1.0]]),
        torch.zeros(1, 1, mask_h, mask_w),
        torch.zeros(1),
    )


def _export(
    sam: Sam,
    graph: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    stream: BinaryIO,
    *,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
) -> None:
    """``torch.onnx.export`` of ``graph`` (which shares ``sam``'s modules) in eval mode, to ``stream``."""
    if sam.device.type != "cpu":
        raise ValueError(f"the ONNX decoder is exported on the CPU; the model is on {sam.device}")
    training = sam.training
    graph.eval()  # shares sam's modules: their training flag is restored below
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter of the TorchScript exporter
            torch.onnx.export(
                graph,
                example,
                stream,
                dynamo=False,  # SamOnnxModel is written for the tracing exporter
                opset_version=opset,
                do_constant_folding=True,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
            )
    finally:
        sam.train(training)


def cpu_session(model: bytes, *, threads: int | None = None) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on the CPU provider, set up for one call at a time next to PyTorch.

    Args:
        model: the serialized ONNX model.
        threads: intra-op threads (default: ``torch.get_num_threads()``).

    Raises:
        ImportError: ``onnxruntime`` is not installed.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    # No busy-waiting after a run: ONNX Runtime's idle workers would otherwise spin on the
    # cores torch needs for the preview upscaling that follows (3x slower on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxDecoder:
    """:func:`segmentation.predict.decode` on ONNX Runtime's CPU provider, for one model's weights.

    Built from the model at hand; after its decoder weights change, build a new one.

    Args:
        sam: the model whose prompt encoder and mask decoder are exported.
        threads: ONNX Runtime intra-op threads (default: ``torch.get_num_threads()``).

    Raises:
        ImportError: ``onnxruntime`` is not installed.
    """

    def __init__(self, sam: Sam, *, threads: int | None = None) -> None:
        self.sam = sam
        self.session = cpu_session(export_low_res_decoder(sam), threads=threads)

    def __call__(
        self,
        emb: ImageEmbedding,
        *,
        boxes: ArrayLike | None = None,
        point_coords: ArrayLike | None = None,
        point_labels: ArrayLike | None = None,
        mask_input: ArrayLike | None = None,
        multimask_output: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Same arguments and outputs as :func:`segmentation.predict.decode` (on the CPU)."""
        if boxes is None and point_coords is None:
            raise ValueError("the ONNX decoder needs boxes or points")
        check_embedding(self.sam, emb)
        if mask_input is not None:  # rows of NaN: no mask prompt (the graph takes one has_mask_input a call)
            mask_input = torch.as_tensor(mask_input, dtype=torch.float32).cpu()
            missing = no_mask_rows(mask_input).numpy() if mask_input.ndim == 4 else np.zeros(0, bool)
            if missing.size and missing.all():
                mask_input = None
            elif missing.any():
                prompts = {"boxes": boxes, "point_coords": point_coords, "point_labels": point_labels}
                return self._by_mask_prompt(emb, prompts, mask_input, missing, multimask_output)
        inputs = decoder_inputs(
            self.sam,
            emb,
            boxes=boxes,
            point_coords=point_coords,
            point_labels=point_labels,
            mask_input=mask_input,
        )
        low_res, iou = self.session.run(None, inputs)
        # Token 0 is the single-mask output, tokens 1-3 the three candidates (MaskDecoder.forward).
        picked = slice(1, None) if multimask_output else slice(0, 1)
        return torch.from_numpy(low_res[:, picked]), torch.from_numpy(iou[:, picked])

    def _by_mask_prompt(
        self,
        emb: ImageEmbedding,
        prompts: dict[str, ArrayLike | None],
        mask_input: torch.Tensor,
        missing: np.ndarray,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`__call__` of the rows with a mask prompt, then of the ``missing`` rows without one."""
        low_res = iou = None
        for rows in (~missing, missing):
            if not rows.any():
                continue
            part_low, part_iou = self(
                emb,
                **{name: _rows(value, rows) for name, value in prompts.items()},
                mask_input=None if rows is missing else mask_input[torch.from_numpy(rows)],
                multimask_output=multimask_output,
            )
            if low_res is None:
                low_res = part_low.new_empty((len(rows), *part_low.shape[1:]))
                iou = part_iou.new_empty((len(rows), *part_iou.shape[1:]))
            low_res[torch.from_numpy(rows)], iou[torch.from_numpy(rows)] = part_low, part_iou
        return low_res, iou


def _rows(value: ArrayLike | None, rows: np.ndarray) -> ArrayLike | None:
    """The objects ``rows`` (bool) of one prompt array (tensor or array-like), None kept."""
    if value is None:
        return None
    return value[torch.from_numpy(rows)] if isinstance(value, torch.Tensor) else np.asarray(value)[rows]


def decoder_inputs(
    sam: Sam,
    emb: ImageEmbedding,
    *,
    boxes: ArrayLike | None = None,
    point_coords: ArrayLike | None = None,
    point_labels: ArrayLike | None = None,
    mask_input: ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """The exported graphs' inputs for N objects' prompts, all but ``orig_im_size``.

    Args:
        sam: the exported model (its ``img_size`` and mask input size).
        emb: the image's embedding.
        boxes, point_coords, point_labels, mask_input: as :func:`segmentation.predict.decode`
            takes them, in original-image pixels.

    Returns:
        :data:`INPUT_NAMES` but the last -> float32 arrays (``has_mask_input`` is 1 with a
        ``mask_input``, else 0 and the mask zeros).
    """
    prompts = transform_prompts(sam, emb, boxes=boxes, point_coords=point_coords, point_labels=point_labels)
    coords, labels = sparse_inputs(prompts.point_coords, prompts.point_labels, prompts.boxes)
    shape = (coords.shape[0], 1, *sam.prompt_encoder.mask_input_size)
    if mask_input is None:
        masks = np.zeros(shape, dtype=np.float32)
    else:
        masks = torch.as_tensor(mask_input, dtype=torch.float32).cpu().numpy()
        if masks.shape != shape:
            raise ValueError(f"mask_input must be {shape}, got {masks.shape}")
    return {
        "image_embeddings": emb.embedding.detach().float().cpu().numpy()[None],
        "point_coords": coords,
        "point_labels": labels,
        "mask_input": masks,
        "has_mask_input": np.array([float(mask_input is not None)], dtype=np.float32),
    }


def sparse_inputs(
    coords: torch.Tensor | None, labels: torch.Tensor | None, boxes: torch.Tensor | None
) -> tuple[np.ndarray, np.ndarray]:
    """SAM's sparse prompt as one point list: points, then box corners (labels 2, 3) or a padding point.

    The order and the padding point (label -1, added when there is no box) are
    ``PromptEncoder.forward``'s, so the embeddings match the PyTorch path.
    """
    n = len(boxes) if boxes is not None else len(coords)
    parts_xy, parts_label = [], []
    if coords is not None:
        parts_xy.append(coords.cpu().numpy().astype(np.float32))
        parts_label.append(labels.cpu().numpy().astype(np.float32))
    if boxes is not None:
        parts_xy.append(boxes.cpu().numpy().astype(np.float32).reshape(n, 2, 2))
        parts_label.append(np.tile(np.array([[2.0, 3.0]], dtype=np.float32), (n, 1)))
    else:
        parts_xy.append(np.zeros((n, 1, 2), dtype=np.float32))
        parts_label.append(-np.ones((n, 1), dtype=np.float32))
    return np.concatenate(parts_xy, axis=1), np.concatenate(parts_label, axis=1)
