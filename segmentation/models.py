"""SAM model registry: stock ``segment_anything`` models, from ViT-H down to MobileSAM.

Every builder returns a ``segment_anything.modeling.Sam`` in eval mode, so
``SamPredictor``, the embedding cache and the fine-tuning code treat all backbones
alike. Like segment-anything's ``build_sam.py``, adding a backbone is one builder
plus one :data:`sam_model_registry` entry (and its official file in
``segmentation.checkpoints.CHECKPOINTS``).

- ``vit_h``, ``vit_l``, ``vit_b``: Meta's SAM (636M / 308M / 91M parameters); for
  GPU users.
- ``vit_t``: MobileSAM (10M parameters), SAM's prompt encoder and mask decoder
  behind a TinyViT image encoder distilled from ViT-H; ~2 s per image on a CPU,
  so it is the default.

>>> sam = load_sam("vit_t")  # doctest: +SKIP
>>> SamPredictor(sam).set_image(image)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import segment_anything
import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from segmentation.checkpoints import CheckpointError, resolve_checkpoint

#: The registry model used when none is named: the one that runs on a CPU.
DEFAULT_MODEL = "vit_t"

# Shared by every SAM variant: 1024-px square input, 16-px patches -> 64x64 embeddings of width 256.
_IMAGE_SIZE = 1024
_PROMPT_EMBED_DIM = 256
_EMBEDDING_SIZE = 64
_PIXEL_MEAN = [123.675, 116.28, 103.53]
_PIXEL_STD = [58.395, 57.12, 57.375]

#: How many offending keys a state-dict mismatch error names per kind.
_KEYS_SHOWN = 3

Builder = Callable[..., Sam]


def build_sam_vit_h(checkpoint: str | Path | None = None) -> Sam:
    """SAM ViT-H (``sam_vit_h_4b8939.pth``), random weights unless ``checkpoint`` is given."""
    return _with_weights(segment_anything.build_sam_vit_h(checkpoint=None), checkpoint, model="vit_h")


def build_sam_vit_l(checkpoint: str | Path | None = None) -> Sam:
    """SAM ViT-L (``sam_vit_l_0b3195.pth``), random weights unless ``checkpoint`` is given."""
    return _with_weights(segment_anything.build_sam_vit_l(checkpoint=None), checkpoint, model="vit_l")


def build_sam_vit_b(checkpoint: str | Path | None = None) -> Sam:
    """SAM ViT-B (``sam_vit_b_01ec64.pth``), random weights unless ``checkpoint`` is given."""
    return _with_weights(segment_anything.build_sam_vit_b(checkpoint=None), checkpoint, model="vit_b")


def build_sam_vit_t(checkpoint: str | Path | None = None) -> Sam:
    """MobileSAM (``mobile_sam.pt``): TinyViT-5M encoder, SAM's prompt encoder and mask decoder.

    The encoder maps a ``(B, 3, 1024, 1024)`` normalised image to ``(B, 256, 64, 64)``
    embeddings, the same shape as the ViT encoders, so the rest of SAM is unchanged.
    """
    # ultralytics carries the only maintained TinyViT that loads MobileSAM's keys as they
    # are; imported here so that vit_b/l/h users never pay for importing it.
    from ultralytics.models.sam.modules.tiny_encoder import TinyViT

    image_encoder = TinyViT(
        img_size=_IMAGE_SIZE,
        in_chans=3,
        num_classes=1000,  # the unused classification head is part of mobile_sam.pt
        embed_dims=[64, 128, 160, 320],
        depths=[2, 2, 6, 2],
        num_heads=[2, 4, 5, 10],
        window_sizes=[7, 7, 14, 7],
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )
    sam = Sam(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=_PROMPT_EMBED_DIM,
            image_embedding_size=(_EMBEDDING_SIZE, _EMBEDDING_SIZE),
            input_image_size=(_IMAGE_SIZE, _IMAGE_SIZE),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=_PROMPT_EMBED_DIM, mlp_dim=2048, num_heads=8
            ),
            transformer_dim=_PROMPT_EMBED_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
        pixel_mean=_PIXEL_MEAN,
        pixel_std=_PIXEL_STD,
    )
    return _with_weights(sam.eval(), checkpoint, model="vit_t")


sam_model_registry: dict[str, Builder] = {
    "vit_h": build_sam_vit_h,
    "vit_l": build_sam_vit_l,
    "vit_b": build_sam_vit_b,
    "vit_t": build_sam_vit_t,
}


def load_sam(
    model: str = DEFAULT_MODEL,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    cache: Path | None = None,
    download: bool = True,
    pretrained: bool = True,
) -> Sam:
    """A registry model with its weights, on ``device`` in eval mode.

    Args:
        model: :data:`sam_model_registry` name.
        checkpoint: weights file; None: the official weights, from the cache or
            fetched (see :func:`segmentation.checkpoints.resolve_checkpoint`, which
            also says when a file is verified against the official sha256).
        device: where the model ends up; weights are always read onto the CPU first,
            so files saved from a GPU load on machines without one.
        cache: folder of official weights (default ``weights_dir()``).
        download: allow fetching the official weights when they are not cached.
        pretrained: False builds random weights (tests, or the architecture alone)
            and touches no file.

    Raises:
        CheckpointError: unknown model, no weights found, or a file whose state dict
            does not fit the architecture.
    """
    builder = sam_model_registry.get(model)
    if builder is None:
        known = ", ".join(sorted(sam_model_registry))
        raise CheckpointError(f"unknown model '{model}': known models are {known}")
    if not pretrained:
        if checkpoint is not None:
            raise CheckpointError(f"checkpoint {checkpoint} given with pretrained=False: drop one of them")
        return builder().to(device).eval()
    path = resolve_checkpoint(model, checkpoint, cache=cache, download=download)
    return builder(checkpoint=path).to(device).eval()


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict read onto the CPU, as plain tensors only (``weights_only``: no pickled code runs).

    segment_anything's own loader calls ``torch.load`` without ``map_location``,
    which fails on CPU-only machines for files saved from a GPU.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # damaged files make torch.load raise anything, IndexError to UnpicklingError
        message = " ".join(str(error).split())
        raise CheckpointError(f"cannot read checkpoint {path}: {message[:300]}") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict (a mapping of parameter names to tensors)")
    return dict(state)


def state_dict_mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """Why ``state`` does not load into ``model`` strictly, in one line; None when it fits.

    Names up to three keys of each kind: missing, unexpected, and shape mismatches
    (``key (file shape vs model shape)``).
    """
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [
        f"{key} ({tuple(state[key].shape)} vs {tuple(value.shape)})"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    kinds = {"missing keys": missing, "unexpected keys": unexpected, "wrong shapes": reshaped}
    parts = [
        f"{len(keys)} {kind} ({', '.join(keys[:_KEYS_SHOWN])}{', ...' if len(keys) > _KEYS_SHOWN else ''})"
        for kind, keys in kinds.items()
        if keys
    ]
    return "; ".join(parts) or None


def _with_weights(sam: Sam, checkpoint: str | Path | None, *, model: str) -> Sam:
    """Loads ``checkpoint`` into ``sam`` strictly; a one-line CheckpointError if it does not fit."""
    if checkpoint is None:
        return sam
    state = load_state_dict_file(checkpoint)
    mismatch = state_dict_mismatch(sam, state)
    if mismatch is not None:
        raise CheckpointError(f"{checkpoint} is not a {model} state dict: {mismatch}")
    sam.load_state_dict(state, strict=True)
    return sam.eval()
