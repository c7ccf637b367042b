"""The SAM an inspection runs: its checkpoint checked cheaply first, loaded later.

Three ways to name it, as the rest of the project writes them:

- a ``decoder.pt`` from ``segmentation.train``: the tuned mask decoder (and prompt
  encoder), applied on the official weights of the model it records, or on
  ``base_checkpoint``;
- a full state dict (``sam_finetuned.pth``), with the registry ``model`` it is for;
- nothing: zero-shot SAM, ``model`` (default :data:`segmentation.models.DEFAULT_MODEL`)
  with its official weights, or ``base_checkpoint``.

:func:`check_sam_checkpoint` reads only the checkpoint file (a ``decoder.pt`` is
~16 MB), so a missing file, garbage, or a decoder of another model than
``model`` is one line before the detector, the photos or SAM's weights are touched;
so is a malformed colour head (:mod:`segmentation.colour_head`) or colour prompt
(:mod:`segmentation.colour_prompt`) in a ``decoder.pt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from common.errors import UserError
from common.folders import check_input_file
from common.io import load_torch
from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt
from segmentation.finetuned import (
    BASE_OPTION,
    DECODER_FORMAT,
    apply_decoder,
    check_base,
    check_full_state_dict,
    colour_head_of,
    colour_prompt_of,
    refuse_other_run_files,
)
from segmentation.models import DEFAULT_MODEL, load_sam, sam_model

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


@dataclass(frozen=True)
class SamCheckpoint:
    """A SAM checkpoint, checked but not loaded.

    Attributes:
        model: the registry name (``vit_t``...).
        path: the ``decoder.pt`` or full state dict; None for zero-shot SAM.
        base_checkpoint: base weights under a ``decoder.pt`` or for zero-shot SAM; None: the official ones.
        decoder: the content of ``decoder.pt``; None for the other two kinds.
    """

    model: str
    path: Path | None = None
    base_checkpoint: Path | None = None
    decoder: dict | None = None

    @property
    def kind(self) -> str:
        """``decoder``, ``full`` or ``zero-shot``."""
        if self.path is None:
            return "zero-shot"
        return "decoder" if self.decoder is not None else "full"

    @property
    def colour_head(self) -> ColourHead | None:
        """The colour head a ``decoder.pt`` carries; None without one, and for the other two kinds."""
        return None if self.decoder is None else colour_head_of(self.decoder, source=self.path)

    @property
    def colour_prompt(self) -> ColourPrompt | None:
        """The colour prompt a ``decoder.pt`` carries; None without one, and for the other two kinds."""
        return None if self.decoder is None else colour_prompt_of(self.decoder, source=self.path)


def check_sam_checkpoint(
    checkpoint: str | Path | None,
    *,
    model: str | None = None,
    base_checkpoint: str | Path | None = None,
) -> SamCheckpoint:
    """Which SAM ``checkpoint`` is, from the file alone; see the module docstring.

    Raises:
        UserError: an unknown ``model``; a missing or unreadable file; a ``decoder.pt`` of
            another model than ``model`` or tuned on other base weights; a file that is
            neither a ``decoder.pt`` nor a state dict; a full state dict without ``model``,
            or with ``base_checkpoint``; a ``decoder.pt`` whose colour head or colour prompt is
            malformed.
    """
    if model is not None:
        sam_model(model)  # an unknown name lists the known ones
    base = None if base_checkpoint is None else Path(base_checkpoint)
    if base is not None and not base.is_file():
        raise UserError(f"base checkpoint not found: {base}")
    if checkpoint is None:
        return SamCheckpoint(model or DEFAULT_MODEL, None, base)
    path = check_input_file(checkpoint, "SAM checkpoint", inside=("decoder.pt",))
    data = load_torch(path, what="SAM checkpoint")
    refuse_other_run_files(data, path)
    if isinstance(data, dict) and data.get("format") == DECODER_FORMAT:
        return _decoder_checkpoint(data, path, model=model, base=base)
    check_full_state_dict(data, path, model)
    if base is not None:
        raise UserError(f"{path} is a full state dict: it takes no --base-checkpoint")
    return SamCheckpoint(model, path)


def _decoder_checkpoint(data: dict, path: Path, *, model: str | None, base: Path | None) -> SamCheckpoint:
    name = data.get("model")
    if not isinstance(name, str):
        raise UserError(f"{path} names no model: not a whole decoder.pt")
    sam_model(name)
    if model is not None and model != name:
        raise UserError(f"{path} was trained on model '{name}', not '{model}'")
    check_base(data, path, base)
    colour_head_of(data, source=path)  # a malformed head is one line here, before anything loads
    colour_prompt_of(data, source=path)  # so is a malformed prompt
    return SamCheckpoint(name, path, base, data)


def load_sam_checkpoint(checkpoint: SamCheckpoint, *, device: str | torch.device = "cpu") -> Sam:
    """The SAM of a checked checkpoint, on ``device`` in eval mode.

    Raises:
        CheckpointError: official weights that no source could provide (offline, not cached),
            or a state dict that does not fit the model.
        UserError: a ``decoder.pt`` that does not fit the model as built here.
    """
    if checkpoint.decoder is not None:
        sam = load_sam(checkpoint.model, checkpoint.base_checkpoint, path_option=BASE_OPTION)
        apply_decoder(sam, checkpoint.decoder, source=checkpoint.path)
    else:
        weights = checkpoint.path or checkpoint.base_checkpoint
        sam = load_sam(checkpoint.model, weights, path_option=BASE_OPTION)
    return sam.to(device).eval()
