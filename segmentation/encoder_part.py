"""The top of SAM's image encoder, trained on cached features of the frozen rest (``train_encoder``).

Decoder tuning leaves the image features as SAM made them. Adapting the encoder's last
part as well gave the largest gain measured on the synthetic set (bench/README,
"Adapting the image encoder"), at the price of running that part in every step. The
image encoder splits into a frozen trunk and a trained top:

- ``neck``: the neck only (two convolutions and LayerNorms mapping the last stage to the
  256-channel embedding; 0.7 M parameters in MobileSAM);
- ``last``: the last stage (TinyViT's ``layers[-1]``, ViT's ``blocks[-1]``) and the neck
  (3.2 M parameters in MobileSAM).

The trunk's output (the input of the top) is computed once per image and view and cached
like an embedding (:class:`segmentation.embeddings.EmbeddingCache` with ``part=``), keyed by
the trunk's weights only, so training never runs the trunk twice and a resumed run, whose
top has moved, still hits its entries. Each step runs the top on the cached features, with
a graph, so the loss reaches it through the decoder's (frozen) transformer. The encoder stays
in eval mode, as in the prototype that measured it (bench/experiments/sam_encoder_tuning): TinyViT's
BatchNorms keep their statistics, and its attention biases, which eval mode reads from a cache,
keep their values.

>>> part = EncoderPart("last")                                     # doctest: +SKIP
>>> features = part.features(sam, images)  # frozen trunk, once (cached)  # doctest: +SKIP
>>> embedding = part.head(sam, features)   # trained top, every step      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from common.errors import UserError

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: What ``train_encoder`` can name, smallest first.
ENCODER_PARTS = ("neck", "last")


def _last_stage(encoder: nn.Module) -> tuple[str, nn.Module]:
    """``(state-dict prefix, module)`` of the last stage: TinyViT's last layer or ViT's last block."""
    for attribute in ("layers", "blocks"):  # TinyViT (MobileSAM), ImageEncoderViT (SAM)
        stages = getattr(encoder, attribute, None)
        if isinstance(stages, nn.ModuleList) and len(stages):
            return f"{attribute}.{len(stages) - 1}", stages[-1]
    raise UserError(
        f"train_encoder=last knows TinyViT and ViT image encoders, not {type(encoder).__name__}: "
        "use train_encoder=neck"
    )


def _to_channels_first(tokens: torch.Tensor) -> torch.Tensor:
    """The last stage's output as the neck takes it: ``(B, C, h, w)``.

    ViT blocks give ``(B, h, w, C)``; TinyViT's layers give ``(B, h * w, C)`` on a square grid
    (what ``TinyViT.forward_features`` reshapes before its neck).
    """
    if tokens.ndim == 3:
        side = int(round(tokens.shape[1] ** 0.5))
        if side * side != tokens.shape[1]:
            raise ValueError(f"cannot lay {tokens.shape[1]} tokens on a square grid")
        tokens = tokens.reshape(tokens.shape[0], side, side, tokens.shape[2])
    return tokens.permute(0, 3, 1, 2)


@dataclass(frozen=True)
class EncoderPart:
    """The trained top of an image encoder (see the module docstring).

    Attributes:
        name: one of :data:`ENCODER_PARTS`.
    """

    name: str

    def __post_init__(self) -> None:
        if self.name not in ENCODER_PARTS:
            raise UserError(
                f"train_encoder must be one of {', '.join(ENCODER_PARTS)} or null, got {self.name!r}"
            )

    def modules(self, sam: Sam) -> dict[str, nn.Module]:
        """The trained modules by their state-dict prefix inside ``sam.image_encoder``, in forward order."""
        encoder = sam.image_encoder
        top = {} if self.name == "neck" else dict([_last_stage(encoder)])
        return {**top, "neck": encoder.neck}

    def parameters(self, sam: Sam) -> list[nn.Parameter]:
        """The trained parameters (their ``requires_grad`` is left to the caller)."""
        return [p for module in self.modules(sam).values() for p in module.parameters()]

    def prefixes(self, sam: Sam) -> tuple[str, ...]:
        """State-dict prefixes (with the dot) of the trained modules inside ``sam.image_encoder``."""
        return tuple(f"{prefix}." for prefix in self.modules(sam))

    def state_dict(self, sam: Sam) -> dict[str, torch.Tensor]:
        """The trained modules' weights, keyed as in ``sam.image_encoder.state_dict()``, on the CPU."""
        prefixes = self.prefixes(sam)
        return {
            key: value.detach().cpu().clone()
            for key, value in sam.image_encoder.state_dict().items()
            if key.startswith(prefixes)
        }

    def features(self, sam: Sam, images: torch.Tensor) -> torch.Tensor:
        """The frozen trunk's output for preprocessed ``(B, 3, S, S)`` images: the top's input.

        Runs the whole encoder once and keeps what enters the top's first module (a forward
        pre-hook), so no trunk code is copied here.
        """
        first = next(iter(self.modules(sam).values()))
        grabbed: list[torch.Tensor] = []
        handle = first.register_forward_pre_hook(lambda _module, inputs: grabbed.append(inputs[0]))
        try:
            with torch.inference_mode():
                sam.image_encoder(images)
        finally:
            handle.remove()
        return grabbed[0]

    def head(self, sam: Sam, features: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` image embeddings from :meth:`features` through the trained top."""
        encoder = sam.image_encoder
        if self.name == "last":
            _, stage = _last_stage(encoder)
            features = _to_channels_first(stage(features))
        return encoder.neck(features)


def encoder_part(name: str | None) -> EncoderPart | None:
    """The config's ``train_encoder`` value as an :class:`EncoderPart` (None: the encoder stays frozen)."""
    return None if name is None else EncoderPart(name)
