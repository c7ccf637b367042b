"""Saving and loading a fine-tuned mask decoder, alone and merged into a full SAM state dict.

Two files per run, formats that other tools read (kept stable, like any contract):

- ``decoder.pt``: ``{"format": "mvtec-finetune/sam-decoder", "model": "vit_t", "mask_decoder": state_dict,
  "prompt_encoder": state_dict or None, "image_encoder": state_dict or None, "base_checkpoint_sha256": ...,
  "config": {...}}`` — small (~16 MB), applied on top of the base model's official weights.
  ``image_encoder`` holds only the encoder part a ``train_encoder`` run tuned (keys as in
  ``sam.image_encoder.state_dict()``, e.g. ``neck.0.weight``); files without the key are read
  as before. Its embeddings then come from the tuned encoder (the cache keys them apart).
  ``colour_head``: the per-pixel head fit after training (``colour_head: true``,
  :mod:`segmentation.colour_head`, :meth:`ColourHead.to_dict`), or None; files without the key
  have none. ``colour_prompt``: the colour prompt every box prompt gets (``colour_prompt: true``,
  :mod:`segmentation.colour_prompt`, :meth:`ColourPrompt.to_dict`), or None; its mask downscaling,
  when trained, is in ``prompt_encoder``. ``epoch`` and ``val_iou``: the epoch the weights are from
  (0: untuned) and its val IoU; files without them (written before) record neither.
- ``sam_finetuned.pth``: the base model's full state dict with the tuned parts replaced — stock
  ``segment_anything`` builders (``sam_model_registry["vit_b"](checkpoint=...)``) and
  ``SamPredictor`` load it for vit_b/l/h, and ``segmentation.models`` loads it for vit_t.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import torch

from common.errors import UserError, one_line
from common.folders import check_input_file
from common.image_files import decode_image_file
from common.io import load_torch, recorded_path, save_torch, sha256_file
from common.pixels import photo_colour, spread_indices
from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

DECODER_FORMAT = "mvtec-finetune/sam-decoder"
#: How the commands that take base SAM weights under a ``decoder.pt`` name the flag (error messages).
BASE_OPTION = "--base-checkpoint PATH"


def save_decoder(
    sam: Sam,
    path: str | Path,
    *,
    model: str,
    prompt_encoder: bool = False,
    image_encoder: dict[str, torch.Tensor] | None = None,
    base_checkpoint_sha256: str | None = None,
    config: dict | None = None,
    colour_head: ColourHead | None = None,
    colour_prompt: ColourPrompt | None = None,
    epoch: int | None = None,
    val_iou: float | None = None,
) -> Path:
    """Writes ``decoder.pt`` (the tuned mask decoder, the prompt encoder and encoder part when trained)."""
    path = Path(path)
    save_torch(
        {
            "format": DECODER_FORMAT,
            "model": model,
            "mask_decoder": sam.mask_decoder.state_dict(),
            "prompt_encoder": sam.prompt_encoder.state_dict() if prompt_encoder else None,
            "image_encoder": image_encoder,
            "base_checkpoint_sha256": base_checkpoint_sha256,
            "config": config or {},
            "colour_head": None if colour_head is None else colour_head.to_dict(),
            "colour_prompt": None if colour_prompt is None else colour_prompt.to_dict(),
            "epoch": epoch,
            "val_iou": val_iou,
        },
        path,
    )
    return path


def save_full(sam: Sam, path: str | Path) -> Path:
    """Writes the whole state dict (``sam_finetuned.pth``), loadable by stock segment_anything builders."""
    path = Path(path)
    save_torch({k: v.detach().cpu() for k, v in sam.state_dict().items()}, path)
    return path


def read_decoder(path: str | Path) -> dict:
    """Loads a ``decoder.pt`` and checks its format; one-line error otherwise."""
    path = Path(path)
    data = load_torch(path, what="decoder checkpoint")
    if not isinstance(data, dict) or data.get("format") != DECODER_FORMAT:
        raise UserError(
            f"{path} is not a decoder.pt written by segmentation.train (for a full SAM state dict "
            "such as sam_finetuned.pth, pass it as the base checkpoint instead)"
        )
    return data


def colour_head_of(data: dict, *, source: str | Path = "decoder.pt") -> ColourHead | None:
    """The colour head a ``decoder.pt``'s content carries, or None (a run without ``colour_head``)."""
    head = data.get("colour_head")
    return None if head is None else ColourHead.from_dict(head, source=str(source))


def colour_prompt_of(data: dict, *, source: str | Path = "decoder.pt") -> ColourPrompt | None:
    """The colour prompt a ``decoder.pt``'s content carries, or None (a run without ``colour_prompt``)."""
    prompt = data.get("colour_prompt")
    return None if prompt is None else ColourPrompt.from_dict(prompt, source=str(source))


def checkpoint_file(checkpoint: str | Path) -> Path:
    """``checkpoint`` when it is a file; a run folder given instead is an error naming its ``decoder.pt``."""
    return check_input_file(checkpoint, "checkpoint", inside=("decoder.pt",))


def load_colour_head(checkpoint: str | Path) -> ColourHead | None:
    """The colour head of a checkpoint file: a ``decoder.pt``'s, or None (none, or a full state dict).

    The file is memory-mapped, so a multi-GB full state dict is not read just to find no head.
    """
    data = load_torch(checkpoint_file(checkpoint), what="checkpoint", mmap=True)
    if isinstance(data, dict) and data.get("format") == DECODER_FORMAT:
        return colour_head_of(data, source=checkpoint)
    return None


def load_colour_prompt(checkpoint: str | Path) -> ColourPrompt | None:
    """The colour prompt of a checkpoint file: a ``decoder.pt``'s, or None (none, or a full state dict)."""
    data = load_torch(checkpoint_file(checkpoint), what="checkpoint", mmap=True)
    if isinstance(data, dict) and data.get("format") == DECODER_FORMAT:
        return colour_prompt_of(data, source=checkpoint)
    return None


#: How many photos :func:`greyscale_warning` reads, spread over the list (first, middle, last): enough
#: to tell a grey set, cheap beside one SAM pass.
GREY_LOOK = 3


def grey_photos(photos: Sequence[str | Path]) -> str | None:
    """What :func:`greyscale_warning` says of the photos (``the photo X is``, ``all N photos are``,
    ``2 of the 3 photos read from the N are``, ``the one photo read from the N (X) is``) when most of
    :data:`GREY_LOOK` photos spread over the list (:func:`common.pixels.spread_indices`; all of them when
    fewer) are grey: three equal channels, or one channel, which every reader here turns into three. None
    when most are in colour, or none decodes.

    Spread, not the first: a list is often sorted by lot or camera, and its first photos alone would
    tell a mixed list by one end. A photo that does not decode is passed over: the command names it
    where it reads the photo.
    """
    photos = list(photos)
    looked, grey = [], []
    for index in spread_indices(len(photos), GREY_LOOK):
        try:
            pixels = decode_image_file(photos[index], cv2.IMREAD_COLOR)
        except UserError:
            continue
        looked.append(Path(photos[index]))
        if photo_colour(pixels) == "grey":
            grey.append(looked[-1])
    if 2 * len(grey) <= len(looked):  # none read, or not most of them grey
        return None
    if len(photos) == 1:
        return f"the photo {looked[0]} is"
    if len(looked) == 1:  # the others looked at do not decode: it is not the list's only photo
        return f"the one photo read from the {len(photos)} ({looked[0]}) is"
    if len(looked) == len(photos):
        every = "both photos" if len(photos) == 2 else f"all {len(photos)} photos"
        return f"{every} are" if len(grey) == len(looked) else f"{len(grey)} of the {len(photos)} photos are"
    read = f"the {len(looked)} photos read from the {len(photos)}"
    return f"{read} are" if len(grey) == len(looked) else f"{len(grey)} of {read} are"


def greyscale_warning(
    photos: Sequence[str | Path], *, colour_head: ColourHead | None, colour_prompt: ColourPrompt | None
) -> str | None:
    """Why a colour head or colour prompt helps nothing on these photos, when most are grey.

    Both read colour distances from the defect's colour (:mod:`segmentation.colour_head`,
    :mod:`segmentation.colour_prompt`); on a grey photo they carry nothing but brightness, and the masks
    can be worse than the plain decoder's. Reads :data:`GREY_LOOK` photos spread over the list
    (:func:`grey_photos`); None unless most of those read are grey.
    """
    if colour_head is None and colour_prompt is None:
        return None
    if (grey := grey_photos(photos)) is None:
        return None
    used = [(name, flag) for name, flag, part in (
        ("colour head", "--no-colour-head", colour_head),
        ("colour prompt", "--no-colour-prompt", colour_prompt),
    ) if part is not None]  # fmt: skip
    parts, flags = [name for name, _ in used], [flag for _, flag in used]
    verb, pronoun = ("read", "them") if len(parts) > 1 else ("reads", "it")
    return (
        f"{grey} greyscale, and the decoder's {' and '.join(parts)} {verb} colour, which a grey photo "
        f"does not have: use a decoder trained without {pronoun}, or pass {' '.join(flags)}"
    )


def colour_left_behind(
    path: str | Path, *, flag: str = "--sam", given_prompt: ColourPrompt | None = None
) -> str | None:
    """Why a full state dict from a ``segmentation.train`` run masks without the colour parts of its run.

    A stock state dict (``sam_finetuned.pth``) has no place for the colour prompt (``colour_prompt:
    true``: the decoder was trained with each box's colour map as its mask prompt) nor for the colour
    head a run kept; the run's ``decoder.pt`` carries them. Given the full state dict, the commands'
    boxes prompt SAM without those maps and the masks are SAM's alone, unlike those
    ``segmentation.evaluate`` scored for the run: the inspection cascade, the anomaly commands,
    ``segmentation.evaluate``, the annotation page (its ``--detector`` boxes) and ``segmentation.export``
    (whose sidecar then has neither) say so in a ``note:``. None for any other file: no ``decoder.pt``
    beside it carrying either part, or a ``decoder.pt`` itself (whatever its name). Reads the
    ``decoder.pt`` memory-mapped.

    Args:
        path: the checkpoint the command was given.
        flag: the command's option for it, which the note tells to pass the ``decoder.pt`` to.
        given_prompt: the colour prompt the command gives the boxes anyway (``segmentation.evaluate
            --colour-prompt``): a run's colour prompt equal to it is not left behind (the full state dict
            holds the tuned downscaling that embeds its maps).
    """
    path = Path(path)
    decoder = path.parent / "decoder.pt"
    if path.name == decoder.name or not decoder.is_file():
        return None
    if (data := _decoder_content(decoder)) is None:
        return None
    try:
        head, prompt = colour_head_of(data, source=decoder), colour_prompt_of(data, source=decoder)
    except UserError:  # a malformed part: refused where that decoder.pt is loaded, not in an aside
        return None
    if prompt is not None and prompt == given_prompt:
        prompt = None  # the command draws the same maps
    if (head is None and prompt is None) or _decoder_content(path) is not None:
        return None  # nothing left behind, or a copy of a decoder.pt (it carries what it carries)
    parts, effects, gain = [], [], ""
    if prompt is not None:
        parts.append("colour prompt")
        effects.append("the boxes prompt SAM without the colour maps its decoder was trained with")
    if head is not None:
        parts.append("colour head")
        effects.append("the masks are SAM's alone")
        if head.val_iou is not None:
            gain = f" (val IoU {head.val_iou[0]:.3f} -> {head.val_iou[1]:.3f})"
    them = "them" if len(parts) > 1 else "it"
    return (
        f"{path.name} has no place for the {' and the '.join(parts)} of its run{gain}, which {decoder} "
        f"carries: {', and '.join(effects)}; pass {flag} {decoder} to apply {them}"
    )


def tuned_crop_fraction(checkpoint: str | Path) -> float | None:
    """The ``crops.max_fraction`` a ``decoder.pt`` was tuned with (0: no crops); None for a full state
    dict, or a ``decoder.pt`` whose config does not say."""
    data = _decoder_content(checkpoint_file(checkpoint))
    crops = (data or {}).get("config", {}).get("crops")
    fraction = crops.get("max_fraction") if isinstance(crops, dict) else None
    return float(fraction) if isinstance(fraction, int | float) else None


def _decoder_content(path: Path) -> dict | None:
    """A ``decoder.pt``'s content (memory-mapped); None for another file, or one that cannot be read."""
    try:
        data = load_torch(path, what="checkpoint", mmap=True)
    except UserError:
        return None
    return data if isinstance(data, dict) and data.get("format") == DECODER_FORMAT else None


def load_encoder_part(sam: Sam, state: dict[str, torch.Tensor]) -> None:
    """Loads a tuned part of the image encoder (keys of ``sam.image_encoder.state_dict()``) in place.

    Raises:
        RuntimeError: a key the encoder does not have, or a shape that does not fit.
    """
    unexpected = sorted(set(state) - set(sam.image_encoder.state_dict()))
    if unexpected:
        raise RuntimeError(f"unexpected image encoder keys: {', '.join(unexpected[:3])}")
    sam.image_encoder.load_state_dict(state, strict=False)


def load_tuned_parts(sam: Sam, data: dict) -> None:
    """Loads the tuned parts ``data`` holds into ``sam`` in place: mask decoder, prompt encoder, encoder part.

    ``data``: a ``decoder.pt``'s content or a training state (``last.pt``); ``prompt_encoder`` and
    ``image_encoder`` may be None or missing (not tuned).

    Raises:
        KeyError: no ``mask_decoder``.
        RuntimeError: a state dict that does not fit ``sam``.
    """
    sam.mask_decoder.load_state_dict(data["mask_decoder"])
    if data.get("prompt_encoder") is not None:
        sam.prompt_encoder.load_state_dict(data["prompt_encoder"])
    if data.get("image_encoder") is not None:
        load_encoder_part(sam, data["image_encoder"])


def apply_decoder(sam: Sam, data: dict, *, source: str | Path = "decoder.pt") -> Sam:
    """Loads the tuned decoder (and prompt encoder, image encoder part) of ``data`` into ``sam`` in place."""
    if not isinstance(data.get("mask_decoder"), Mapping):  # it was a KeyError traceback
        raise UserError(f"{source} holds no mask decoder: not a whole decoder.pt")
    try:
        load_tuned_parts(sam, data)
    except RuntimeError as error:  # torch's first line names no key: what does not fit is on the next ones
        reason = one_line(error, limit=200)
        model = data.get("model")
        raise UserError(f"{source} does not fit model '{model}' as built here: {reason}") from None
    return sam


def refuse_other_run_files(data: object, path: Path) -> None:
    """Refuses another run's file given where a SAM checkpoint is loaded, naming what it is.

    ``segmentation.train``'s ``last.pt`` (optimizer and all) loads like a state dict and would
    otherwise be called one "of another model" or "not a state dict"; a PatchCore run's
    ``memory_bank.pt`` (``{"bank": tensor}``, :mod:`anomaly.run`) one "without --model". Both
    messages send the user after the wrong fix.
    """
    if isinstance(data, dict) and "optimizer" in data and "mask_decoder" in data:
        raise UserError(
            f"{path} is a training state (last.pt, for --resume): pass the run's decoder.pt, or its "
            "sam_finetuned.pth with --model"
        )
    if isinstance(data, dict) and list(data) == ["bank"]:
        raise UserError(
            f"{path} is a PatchCore memory bank (memory_bank.pt, from anomaly.train), not a SAM checkpoint: "
            "pass a segmentation.train run's decoder.pt"
        )


def base_sha256(model: str, checkpoint: str | Path | None) -> str:
    """sha256 of the base weights a decoder is tuned on: the user's file, or the official one's."""
    from segmentation.models import sam_model

    return (
        sha256_file(checkpoint, what="checkpoint")
        if checkpoint is not None
        else sam_model(model).weights.sha256
    )


def check_base(data: dict, path: Path, base_checkpoint: str | Path | None) -> None:
    """Refuses to put a decoder on other base weights than it was tuned with (the image embeddings differ)."""
    recorded = data.get("base_checkpoint_sha256")
    if recorded is None:
        return
    actual = base_sha256(data["model"], base_checkpoint)
    if actual == recorded:
        return
    if base_checkpoint and recorded == base_sha256(data["model"], None):  # the official file's
        raise UserError(
            f"{path} was tuned on the official {data['model']} weights, not on {base_checkpoint}: "
            "drop --base-checkpoint"
        )
    where = f"the base checkpoint {base_checkpoint} has" if base_checkpoint else "the official weights have"
    raise UserError(
        f"{path} was tuned on base weights with sha256 {recorded}, but {where} {actual}: "
        "pass the base it was tuned on (--base-checkpoint)"
    )


#: The parts every SAM state dict's keys start with.
SAM_PARTS = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


def check_full_state_dict(
    data: object, path: Path, model: str | None, *, model_option: str = "--model"
) -> None:
    """Refuses what is not a whole SAM's state dict, or one given without its registry ``model``.

    ``model_option``: the calling command's flag for ``model``, which the error names.

    Raises:
        UserError: not a mapping of tensors (nor a ``decoder.pt``, checked before); tensors of
            another network (an ImageNet backbone's weights were asked for ``--model``, as if
            they were SAM's); no ``model``.
    """
    if not (isinstance(data, Mapping) and data and all(isinstance(v, torch.Tensor) for v in data.values())):
        raise UserError(f"{path} is neither a decoder.pt written by segmentation.train nor a SAM state dict")
    if not any(str(key).startswith(SAM_PARTS) for key in data):
        raise UserError(
            f"{path} is a state dict, but of no SAM (none of its keys starts with {', '.join(SAM_PARTS)}): "
            "pass a decoder.pt or SAM weights"
        )
    if model is None:
        raise UserError(f"{path} is a full state dict: say which model it is for ({model_option})")


def finetuned_name(checkpoint: str | Path, model: str) -> str:
    """How a run's records name the SAM that ``checkpoint`` (a ``decoder.pt`` or a full state dict of
    ``model``) loads: ``vit_b fine-tuned (<path>)``, or ``vit_t (official weights, <path>)`` for a file
    that is the official one (``--sam mobile_sam.pt --sam-model vit_t``: SAM's stock weights, not tuned).

    The path as :func:`common.io.recorded_path` writes it. Only a file of the official size is hashed
    (:func:`segmentation.models.is_official_weights`), once per process.
    """
    from segmentation.models import is_official_weights

    where = recorded_path(checkpoint)
    if is_official_weights(model, checkpoint):
        return f"{model} (official weights, {where})"
    return f"{model} fine-tuned ({where})"


def load_finetuned(
    checkpoint: str | Path,
    *,
    model: str | None = None,
    device: str | torch.device = "cpu",
    base_checkpoint: str | Path | None = None,
    base_option: str = BASE_OPTION,
    model_option: str = "--model",
) -> tuple[Sam, str]:
    """A SAM with fine-tuned weights from ``decoder.pt`` or from a full ``sam_finetuned.pth``.

    Args:
        checkpoint: ``decoder.pt`` (applied on the base model's official weights,
            or on ``base_checkpoint``) or a full state dict.
        model: registry name; required for a full state dict, read from ``decoder.pt`` otherwise.
        base_option: how the calling command takes the base weights, named when the official ones
            are not found (empty where it takes none).
        model_option: the calling command's flag for ``model``, named when a full state dict comes
            without it.

    Returns:
        ``(sam, model name)``, the model on ``device`` in eval mode.
    """
    from segmentation.models import load_sam

    path = checkpoint_file(checkpoint)
    data = load_torch(path, what="checkpoint")
    refuse_other_run_files(data, path)
    if isinstance(data, dict) and data.get("format") == DECODER_FORMAT:
        name = data.get("model")
        if not isinstance(name, str):  # it was a KeyError traceback (inspection's loader said this)
            raise UserError(f"{path} names no model: not a whole decoder.pt")
        if model is not None and model != name:
            raise UserError(f"{path} was trained on model '{name}', not '{model}'")
        check_base(data, path, base_checkpoint)
        sam = load_sam(name, base_checkpoint, device="cpu", path_option=base_option)
        apply_decoder(sam, data, source=path)
    else:
        check_full_state_dict(data, path, model, model_option=model_option)
        name = model
        sam = load_sam(name, path, device="cpu")
    return sam.to(device).eval(), name
