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
"""

from __future__ import annotations

import importlib.util
import io
import warnings

import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.onnx import SamOnnxModel

from segmentation.embeddings import ImageEmbedding
from segmentation.predict import ArrayLike, check_embedding, transform_prompts

#: ONNX opset of the export (ONNX Runtime 1.17+ runs it).
OPSET = 17


def missing_packages() -> list[str]:
    """The packages the ONNX decoder needs that are not installed (``onnx`` exports, ``onnxruntime`` runs)."""
    return [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]


class _DecoderGraph(torch.nn.Module):
    """What is exported: SAM's prompt embedding and ``predict_masks``, low-resolution outputs only."""

    def __init__(self, sam: Sam) -> None:
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


def export_decoder(sam: Sam) -> bytes:
    """The ONNX graph of ``sam``'s prompt encoder and mask decoder, with its current weights, as bytes."""
    if sam.device.type != "cpu":
        raise ValueError(f"the ONNX decoder is for CPUs; the model is on {sam.device}")
    training = sam.training
    graph = _DecoderGraph(sam).eval()  # shares sam's modules: its training flag is restored below
    dim, (h, w) = sam.prompt_encoder.embed_dim, sam.prompt_encoder.image_embedding_size
    mask_h, mask_w = sam.prompt_encoder.mask_input_size
    example = (
        torch.zeros(1, dim, h, w),
        torch.zeros(1, 2, 2),
        torch.tensor([[1.0, -1.0]]),
        torch.zeros(1, 1, mask_h, mask_w),
        torch.zeros(1),
    )
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter of the TorchScript exporter
        torch.onnx.export(
            graph,
            example,
            buffer,
            dynamo=False,  # SamOnnxModel is written for the tracing exporter
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"],
            output_names=["low_res_logits", "iou_predictions"],
            dynamic_axes={
                "point_coords": {0: "objects", 1: "points"},
                "point_labels": {0: "objects", 1: "points"},
                "mask_input": {0: "objects"},
                "low_res_logits": {0: "objects"},
                "iou_predictions": {0: "objects"},
            },
        )
    sam.train(training)
    return buffer.getvalue()


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
        import onnxruntime

        self.sam = sam
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        # No busy-waiting after a run: ONNX Runtime's idle workers would otherwise spin on the
        # cores torch needs for the preview upscaling that follows (3x slower on 2 cores).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            export_decoder(sam), options, providers=["CPUExecutionProvider"]
        )
        self.mask_input_size = tuple(sam.prompt_encoder.mask_input_size)

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
        prompts = transform_prompts(
            self.sam, emb, boxes=boxes, point_coords=point_coords, point_labels=point_labels
        )
        coords, labels = _sparse_inputs(prompts.point_coords, prompts.point_labels, prompts.boxes)
        n = coords.shape[0]
        if mask_input is None:
            masks = np.zeros((n, 1, *self.mask_input_size), dtype=np.float32)
            has_mask = np.zeros(1, dtype=np.float32)
        else:
            masks = torch.as_tensor(mask_input, dtype=torch.float32).cpu().numpy()
            if masks.shape != (n, 1, *self.mask_input_size):
                raise ValueError(f"mask_input must be {(n, 1, *self.mask_input_size)}, got {masks.shape}")
            has_mask = np.ones(1, dtype=np.float32)
        low_res, iou = self.session.run(
            None,
            {
                "image_embeddings": emb.embedding.detach().float().cpu().numpy()[None],
                "point_coords": coords,
                "point_labels": labels,
                "mask_input": masks,
                "has_mask_input": has_mask,
            },
        )
        # Token 0 is the single-mask output, tokens 1-3 the three candidates (MaskDecoder.forward).
        picked = slice(1, None) if multimask_output else slice(0, 1)
        return torch.from_numpy(low_res[:, picked]), torch.from_numpy(iou[:, picked])


def _sparse_inputs(
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
