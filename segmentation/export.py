"""``python -m segmentation.export``: a fine-tuned SAM decoder as segment-anything's ONNX model.

    python -m segmentation.export --checkpoint runs/sam/nut/decoder.pt --out decoder.onnx

writes ``decoder.onnx``, the prompt encoder and mask decoder (with the mask
upscaling) in the format of segment-anything's ``scripts/export_onnx_model.py``
(:func:`segmentation.decoder_onnx.export_decoder`), and ``decoder.onnx.json``, which
says what the model expects. The image encoder is not in the file: a deployment
runs it itself, and embeddings from any other encoder or weights give wrong masks
without an error, so the sidecar (and the ONNX file's metadata) names the model,
the sha256 of the base weights and the embedding cache's encoder fingerprint.
A ``decoder.pt`` that carries a colour head (:mod:`segmentation.colour_head`) exports
as before: the head runs after the decoder, on the ``masks`` logits of a box prompt,
so it is not in the graph; the sidecar's ``colour_head`` holds its weights and how to
apply them (None without one). One that carries a colour prompt (:mod:`segmentation.colour_prompt`)
exports its mask downscaling (tuned with it) in the graph, whose ``mask_input`` takes each box's
colour map; the map is made from the photo outside the graph, so the sidecar's ``colour_prompt``
holds its constants and how to build it (None without one). A full state dict
(``sam_finetuned.pth``) has no place for either: given one whose run's ``decoder.pt`` carries
them, a ``note:`` names that ``decoder.pt``
(:func:`segmentation.finetuned.colour_left_behind`).

Before anything is written, ONNX Runtime runs the file on random prompts (a click,
clicks, a box, a box with clicks, a box with an earlier mask) and its logits are
compared with PyTorch's (:func:`segmentation.predict.decode`, SamPredictor's
arithmetic; :mod:`segmentation.onnx_check`); a file that disagrees is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path
from common.errors import UserError, one_line
from common.extras import install_hint
from common.folders import check_creatable, check_utf8_path
from common.io import atomic_write, load_torch, recorded_path, sha256_file
from segmentation.colour_head import DISTANCE_SCALE, LOGIT_CLIP, LOGIT_SCALE, ColourHead
from segmentation.colour_prompt import ColourPrompt
from segmentation.decoder_onnx import (
    INPUT_NAMES,
    OPSET,
    OPSETS,
    OUTPUT_NAMES,
    export_decoder,
    missing_packages,
)
from segmentation.embeddings import encoder_fingerprint
from segmentation.finetuned import (
    BASE_OPTION,
    DECODER_FORMAT,
    base_sha256,
    checkpoint_file,
    colour_head_of,
    colour_left_behind,
    colour_prompt_of,
    load_finetuned,
    refuse_other_run_files,
)
from segmentation.models import DEFAULT_MODEL, SAM_MODELS, load_sam
from segmentation.onnx_check import (
    TOLERANCE,
    Agreement,
    check_against_torch,
    refuse_disagreement,
)

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: ``format`` of the sidecar JSON.
SIDECAR_FORMAT = "mvtec-finetune/sam-decoder-onnx"
#: The sidecar's description of each input and output; M masks per prompt (4, or 1 with
#: ``--return-single-mask``), mask 0 being the single-mask output and 1-3 the three candidates.
MEANINGS = {
    "image_embeddings": "the image encoder's output for the image (same model and base weights only)",
    "point_coords": "x, y in pixels of the image resized so its long side is img_size; a box is two corners",
    "point_labels": "1 foreground, 0 background, 2 box top-left, 3 box bottom-right, -1 padding "
    "(without a box, append the point (0, 0) with label -1)",
    "mask_input": "one mask of low_res_masks from an earlier call, or zeros",
    "has_mask_input": "1 when mask_input holds logits, else 0",
    "orig_im_size": "(H, W) of the image in pixels",
    "masks": "mask logits at the image size; the mask is where they are > mask_threshold",
    "iou_predictions": "the predicted IoU of each mask",
    "low_res_masks": "mask logits over the padded img_size square",
}
#: What the colour head's and the colour prompt's rules say of a box's pixels and their colour distance ``d``.
BOX_PIXELS = "the box's pixels (edges rounded outwards, clipped to the image)"
DISTANCE = (
    "d the CIE76 distance of the pixel's Lab colour (OpenCV, RGB in [0, 1]) to the per-channel median "
    "Lab of the box's border pixels"
)


@dataclass(frozen=True)
class Weights:
    """A SAM to export and where its weights come from.

    Attributes:
        sam: the model on the CPU, in eval mode.
        model: its registry name.
        base_checkpoint_sha256: sha256 of the file its image encoder comes from (the base
            weights of a ``decoder.pt``, or a full state dict itself).
        checkpoint: the fine-tuned file, None for the zero-shot decoder.
        colour_head: the head a ``decoder.pt`` carries, applied after the decoder; None: none.
        colour_prompt: the colour prompt a ``decoder.pt`` carries, each box's ``mask_input``; None: none.
    """

    sam: Sam
    model: str
    base_checkpoint_sha256: str
    checkpoint: Path | None = None
    colour_head: ColourHead | None = None
    colour_prompt: ColourPrompt | None = None

    @cached_property
    def identity(self) -> dict[str, str]:
        """Which image encoder's embeddings the decoder takes: model name, base weights, fingerprint.

        The fingerprint is :func:`segmentation.embeddings.encoder_fingerprint`, the key of the
        embedding cache (hashing ViT-H's encoder takes seconds, hence computed once).
        """
        return {
            "model": self.model,
            "base_checkpoint_sha256": self.base_checkpoint_sha256,
            "encoder_fingerprint": encoder_fingerprint(self.sam),
        }


@dataclass(frozen=True)
class Export:
    """What :func:`export_onnx` wrote: the model, its sidecar, and the check against PyTorch per prompt."""

    onnx: Path
    sidecar: Path
    agreement: dict[str, Agreement]

    @property
    def max_logit_diff(self) -> float:
        return max(result.logit_diff for result in self.agreement.values())

    @property
    def max_relative_diff(self) -> float:
        """The largest logit difference relative to its prompt's largest logit: what is held to the limit."""
        return max(result.logit_diff / result.logit_scale for result in self.agreement.values())

    @property
    def max_iou_diff(self) -> float:
        """The largest difference of the predicted IoUs, held to the limit as it is."""
        return max(result.iou_diff for result in self.agreement.values())


def sidecar_path(out: str | Path) -> Path:
    """``decoder.onnx`` -> ``decoder.onnx.json``."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def require_onnx(what: str = "python -m segmentation.export") -> None:
    """Raises :class:`UserError` naming the ``annotate`` extra when onnx or onnxruntime is missing."""
    absent = missing_packages()
    if absent:
        raise UserError(install_hint("annotate", absent, what))


def check_out(out: str | Path, *, inputs: Iterable[str | Path | None] = ()) -> Path:
    """``out`` once it is a file the export may write, with its sidecar beside it.

    Raises:
        UserError: ``out`` or its sidecar is a folder, it is one of the ``inputs``, it lacks the ``.onnx``
            suffix, its path holds a name that is not UTF-8 (:func:`common.folders.check_utf8_path`), or it
            cannot be created (:func:`common.folders.check_creatable`: a link loop on its path, a file or a
            read-only folder where its folder should be), or it or its sidecar is a file no export wrote
            (:func:`check_replaceable`).
    """
    check_utf8_path(out, flag="--out")
    out = Path(out)
    for path in (out, sidecar_path(out)):
        if path.is_dir():  # False through a link loop: check_creatable names that
            raise UserError(f"cannot write {path}: it is a folder (give a file name such as decoder.onnx)")
    check_creatable(out, what="file", flag="--out")  # before loading: the model is exported, then not written
    for source in filter(None, inputs):
        if Path(source).resolve() in (out.resolve(), sidecar_path(out).resolve()):
            raise UserError(f"--out {out} would overwrite the input {source}")
    if out.suffix.lower() != ".onnx":  # so that a mistyped --out never replaces some other file
        raise UserError(f"--out {out} needs the .onnx suffix (e.g. decoder.onnx)")
    check_replaceable(out)
    return out


def check_replaceable(out: Path) -> None:
    """Refuses an ``out`` or sidecar name taken by a file that no earlier export wrote: it would be replaced.

    An earlier export is replaced as before: an ONNX file whose metadata names its image encoder (as
    :func:`_onnx_bytes` writes it, kept by a run stopped before its sidecar) and a sidecar of
    :data:`SIDECAR_FORMAT`. Another ONNX model (a detector's ``yolo11n.onnx``) or JSON file was replaced
    without a word.

    Raises:
        UserError: naming the file taken and asking for another name.
    """
    for path, ours, what in (
        (out, _is_exported_model, "an ONNX decoder"),
        (sidecar_path(out), _is_sidecar, "the sidecar of an ONNX decoder"),
    ):
        if path.is_file() and not ours(path):
            raise UserError(
                f"--out {out}: {path} exists and is not {what} written by this command (it would be "
                "replaced); give another file name"
            )


def _is_exported_model(path: Path) -> bool:
    """True when ``path`` is an ONNX model whose metadata holds the keys of :attr:`Weights.identity`."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (OSError, ValueError, DecodeError):
        return False
    keys = {prop.key for prop in proto.metadata_props}
    return {"model", "base_checkpoint_sha256", "encoder_fingerprint"} <= keys


def _is_sidecar(path: Path) -> bool:
    """True when ``path`` is a JSON object of :data:`SIDECAR_FORMAT`."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("format") == SIDECAR_FORMAT


def load_weights(
    checkpoint: str | Path | None = None,
    *,
    model: str | None = None,
    base_checkpoint: str | Path | None = None,
) -> Weights:
    """The SAM to export: fine-tuned (:func:`segmentation.finetuned.load_finetuned`) or zero-shot.

    Args:
        checkpoint: ``decoder.pt`` or a full state dict; None: the zero-shot decoder of ``model``.
        model: registry name; read from a ``decoder.pt``, needed for a full state dict,
            :data:`~segmentation.models.DEFAULT_MODEL` for zero-shot.
        base_checkpoint: base weights of a ``decoder.pt`` or of the zero-shot model
            (default: the official ones, fetched if not cached).
    """
    if checkpoint is None:
        name = model or DEFAULT_MODEL
        sam = load_sam(name, base_checkpoint, path_option=BASE_OPTION)
        return Weights(sam, name, base_sha256(name, base_checkpoint))
    checkpoint = checkpoint_file(checkpoint)  # a run folder: its decoder.pt named (it said 'not found')
    data = load_torch(checkpoint, what="checkpoint")
    refuse_other_run_files(data, checkpoint)
    is_decoder = isinstance(data, dict) and data.get("format") == DECODER_FORMAT
    recorded = data.get("base_checkpoint_sha256") if is_decoder else None
    if is_decoder and data.get("image_encoder") is not None:
        # decoder.onnx takes embeddings from a deployment's own encoder, which would be the base one
        raise UserError(
            f"{checkpoint} also tunes the image encoder (train_encoder): export the run's "
            "sam_finetuned.pth instead (with --model), whose encoder the deployment must then run"
        )
    head = colour_head_of(data, source=checkpoint) if is_decoder else None
    prompt = colour_prompt_of(data, source=checkpoint) if is_decoder else None
    del data  # a full state dict is read again by the loader; no need to hold two copies
    if not is_decoder and base_checkpoint is not None:
        raise UserError(
            f"{checkpoint} is a full state dict, which holds its own base weights: drop --base-checkpoint"
        )
    sam, name = load_finetuned(checkpoint, model=model, base_checkpoint=base_checkpoint)
    if is_decoder:
        sha256 = recorded or base_sha256(name, base_checkpoint)
    else:
        sha256 = sha256_file(checkpoint, what="checkpoint")
    return Weights(sam, name, sha256, checkpoint, head, prompt)


def export_onnx(
    weights: Weights,
    out: str | Path,
    *,
    return_single_mask: bool = False,
    opset: int = OPSET,
    seed: int = 0,
) -> Export:
    """Exports, checks against PyTorch, then writes ``out`` and its sidecar (each atomically).

    Args:
        weights: the model and where its weights come from.
        out: the ONNX file; the sidecar is ``<out>.json``.
        return_single_mask: one mask per prompt instead of four (segment-anything's option).
        opset: ONNX opset, one of :data:`~segmentation.decoder_onnx.OPSETS`.
        seed: of the random prompts and embeddings of the check.

    Raises:
        UserError: ONNX Runtime disagrees with PyTorch (nothing is written), a colour prompt for a graph
            without ``mask_input``, or a file cannot be written.
    """
    model = _onnx_bytes(weights, return_single_mask=return_single_mask, opset=opset)
    agreement = check_against_torch(weights.sam, model, return_single_mask=return_single_mask, seed=seed)
    refuse_disagreement(agreement)
    record = sidecar(weights, model, agreement, return_single_mask=return_single_mask, opset=opset)
    out = Path(out)
    try:
        # Two files cannot be replaced in one step: the old sidecar goes first, so that a run stopped
        # in between leaves a model without a sidecar, never one beside another model's sidecar.
        sidecar_path(out).unlink(missing_ok=True)
        atomic_write(out, model)
        atomic_write(sidecar_path(out), json.dumps(record, indent=2) + "\n")
    except OSError as error:
        raise UserError(f"cannot write {out}: {one_line(error.strerror or error)}") from None
    return Export(out, sidecar_path(out), agreement)


def _onnx_bytes(weights: Weights, *, return_single_mask: bool, opset: int) -> bytes:
    """The exported model with what identifies its image encoder in the ONNX metadata."""
    import onnx

    buffer = io.BytesIO()
    export_decoder(weights.sam, buffer, return_single_mask=return_single_mask, opset=opset)
    proto = onnx.load_from_string(buffer.getvalue())
    check_mask_input([graph_input.name for graph_input in proto.graph.input], weights)
    onnx.helper.set_model_props(proto, weights.identity)
    return proto.SerializeToString()


def check_mask_input(inputs: list[str], weights: Weights) -> None:
    """Refuses a colour prompt where the graph's ``inputs`` lack ``mask_input``: it could not be applied.

    Raises:
        UserError: ``weights`` carry a colour prompt and ``inputs`` miss ``mask_input`` or ``has_mask_input``.
    """
    missing = [name for name in ("mask_input", "has_mask_input") if name not in inputs]
    if weights.colour_prompt is not None and missing:
        raise UserError(
            f"{weights.checkpoint} carries a colour prompt, which SAM takes as mask_input, but the exported "
            f"graph has no {' or '.join(missing)} input (it has {', '.join(inputs)}): nothing written"
        )


def sidecar(
    weights: Weights, model: bytes, agreement: dict[str, Agreement], *, return_single_mask: bool, opset: int
) -> dict:
    """The JSON written beside the ONNX file: which embeddings it takes, its inputs and outputs, the check."""
    import onnxruntime

    sam = weights.sam
    return {
        "format": SIDECAR_FORMAT,
        "onnx_sha256": hashlib.sha256(model).hexdigest(),
        "graph": "SamOnnxModel of segment-anything's scripts/export_onnx_model.py (crop fixed)",
        **weights.identity,
        "checkpoint": None if weights.checkpoint is None else recorded_path(weights.checkpoint),
        "img_size": int(sam.image_encoder.img_size),
        "pixel_mean": [round(value, 4) for value in sam.pixel_mean.flatten().tolist()],
        "pixel_std": [round(value, 4) for value in sam.pixel_std.flatten().tolist()],
        "mask_threshold": float(sam.mask_threshold),
        "opset": opset,
        "return_single_mask": return_single_mask,
        **interface(sam, return_single_mask=return_single_mask),
        "colour_head": colour_head_record(weights.colour_head),
        "colour_prompt": colour_prompt_record(weights.colour_prompt),
        "check": {
            # logits are held to tolerance x logit_scale (the prompt's largest |logit|), IoUs to tolerance
            "tolerance": TOLERANCE,
            "prompts": {
                kind: {
                    "max_abs_logit_diff": result.logit_diff,
                    "logit_scale": result.logit_scale,
                    "max_abs_iou_diff": result.iou_diff,
                }
                for kind, result in agreement.items()
            },
            "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        },
    }


def colour_head_record(head: ColourHead | None) -> dict | None:
    """The sidecar's ``colour_head``: the weights and how a deployment applies them, or None."""
    if head is None:
        return None
    return {
        **head.to_dict(),
        "applies_to": "the single-mask 'masks' logits of a box prompt, after the decoder",
        "rule": (
            f"inside {BOX_PIXELS}: logit' = w[0] * clip(logit, -{LOGIT_CLIP:g}, {LOGIT_CLIP:g}) / "
            f"{LOGIT_SCALE:g} + w[1] * d / {DISTANCE_SCALE:g} + w[2], {DISTANCE}; outside the box, and in "
            "boxes whose longest side is below min_box_fraction x the image's longest side, the logit "
            "is kept; mask where logit' > 0 (segmentation/colour_head.py)"
        ),
    }


def colour_prompt_record(prompt: ColourPrompt | None) -> dict | None:
    """The sidecar's ``colour_prompt``: its constants and how a deployment builds ``mask_input``, or None."""
    if prompt is None:
        return None
    return {
        **prompt.to_dict(),
        "applies_to": "the mask_input of a prompt of one box and no points (has_mask_input = 1)",
        "rule": (
            f"a map at the image's size: inside {BOX_PIXELS} clip((d - centre) / scale, -clip, clip), "
            f"{DISTANCE}; -clip outside the box; resized (area) to the image's size in the img_size input, "
            "padded at the bottom and right to the img_size square with -clip, then average-pooled to "
            "mask_input's grid; has_mask_input = 1; but a box without one whole grid cell inside its pixels "
            "less its border row and column gets no map: has_mask_input = 0 and mask_input zeros, as "
            "without a colour prompt (segmentation/colour_prompt.py, readable_box)"
        ),
    }


def interface(sam: Sam, *, return_single_mask: bool) -> dict[str, dict]:
    """``{"inputs": {name: {"shape", "dtype", "meaning"}}, "outputs": ...}`` of the exported model.

    Shapes hold names where a size is dynamic (``num_points``, the image's ``H`` and ``W``).
    """
    dim, (h, w) = sam.prompt_encoder.embed_dim, sam.prompt_encoder.image_embedding_size
    mask = list(sam.prompt_encoder.mask_input_size)
    m = 1 if return_single_mask else 4
    shapes = {
        "image_embeddings": [1, dim, h, w],
        "point_coords": [1, "num_points", 2],
        "point_labels": [1, "num_points"],
        "mask_input": [1, 1, *mask],
        "has_mask_input": [1],
        "orig_im_size": [2],
        "masks": [1, m, "H", "W"],
        "iou_predictions": [1, m],
        "low_res_masks": [1, m, *mask],
    }
    entry = {
        name: {"shape": shape, "dtype": "float32", "meaning": MEANINGS[name]}
        for name, shape in shapes.items()
    }
    return {
        "inputs": {name: entry[name] for name in INPUT_NAMES},
        "outputs": {name: entry[name] for name in OUTPUT_NAMES},
    }


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=command_name("segmentation.export"),
        description="Write SAM's (fine-tuned) prompt encoder and mask decoder as an ONNX model.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        type=user_path,
        help="decoder.pt or a full state dict (default: the zero-shot decoder)",
    )
    parser.add_argument(
        "--out", type=user_path, required=True, help="the ONNX file; <out>.json is written beside it"
    )
    parser.add_argument(
        "--model",
        choices=sorted(SAM_MODELS),
        help=f"registry model: from decoder.pt, needed for a full state dict (zero-shot: {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--base-checkpoint",
        type=user_path,
        help="base weights under decoder.pt or zero-shot (default: official)",
    )
    parser.add_argument(
        "--return-single-mask", action="store_true", help="one mask per prompt instead of four"
    )
    parser.add_argument("--opset", type=int, default=OPSET, help="ONNX opset")
    return parser


def run(args: argparse.Namespace) -> Export:
    """Checks the options, loads the weights, exports and reports; inputs are checked before loading."""
    require_onnx()
    if args.opset not in OPSETS:
        raise UserError(f"--opset must be in {OPSETS.start}..{OPSETS.stop - 1}, got {args.opset}")
    out = check_out(args.out, inputs=(args.checkpoint, args.base_checkpoint))
    weights = load_weights(args.checkpoint, model=args.model, base_checkpoint=args.base_checkpoint)
    if args.checkpoint is not None and (note := colour_left_behind(args.checkpoint, flag="--checkpoint")):
        print(f"note: {note}; the sidecar written here records no colour part", file=sys.stderr, flush=True)
    done = export_onnx(weights, out, return_single_mask=args.return_single_mask, opset=args.opset)
    source = weights.checkpoint or f"the zero-shot {weights.model} weights"
    print(
        f"wrote {done.onnx} ({done.onnx.stat().st_size / 1e6:.1f} MB, opset {args.opset}) and its sidecar "
        f"{done.sidecar} from {source}; ONNX Runtime vs PyTorch on {len(done.agreement)} prompts: "
        f"max |logit diff| {done.max_logit_diff:.1e} absolute, {done.max_relative_diff:.1e} relative to the "
        f"largest logit (relative limit {TOLERANCE:g}), max |IoU diff| {done.max_iou_diff:.1e} "
        f"(limit {TOLERANCE:g})"
    )
    if weights.colour_head is not None:
        print(
            f"note: {weights.checkpoint} carries a colour head, which runs after the decoder on a box "
            "prompt's logits: not in the ONNX graph; its weights and rule are in the sidecar's colour_head"
        )
    if weights.colour_prompt is not None:
        print(
            f"note: {weights.checkpoint} carries a colour prompt: give each box prompt its colour map as "
            "mask_input (has_mask_input 1), built from the photo outside the graph; its constants and rule "
            "are in the sidecar's colour_prompt"
        )
    return done


def main(argv: list[str] | None = None) -> int:
    return exit_code(lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
