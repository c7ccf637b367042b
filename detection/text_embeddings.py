"""Class name -> 512-d text embedding for YOLO-World and YOLOE, without ever reaching for the network.

YOLO-World and YOLOE score image regions against one text embedding per class,
so their class names are text prompts and need a text model: CLIP ViT-B/32 for
YOLO-World, MobileCLIP for YOLOE (its yaml's ``text_model``), whose ultralytics
loaders (``WorldModel.get_text_pe``, ``YOLOEModel.get_text_pe``) download the
weights and, when the ``clip`` package is missing, pip-install it from GitHub.
This module gives the embeddings from one of these sources, chosen by
:func:`resolve_text_embeddings`:

1. a table file ``{class name: (512,) tensor}`` (``torch.save``'d dict) when one
   is given (``text_embeddings=FILE``): an explicit choice is never overridden.
   ultralytics' own cache ``text_embeddings_clip_ViT-B_32.pt`` (written beside a
   data set's images by a stock online run) has this format and works as is;
2. otherwise CLIP ViT-B/32, only when the ``clip`` package is importable *and*
   its weights are on disk (``clip_weights=PATH``, else ``ViT-B-32.pt`` in this
   project's cache, ultralytics' ``weights/clip/`` or ``~/.cache/clip/``),
   verified by sha256. Nothing is downloaded;
   For YOLOE the same holds for MobileCLIP's TorchScript file
   (``mobileclip_blt.ts``, :mod:`detection.mobileclip`);
3. otherwise, with ``text_embeddings=auto``, fixed seeded unit vectors (below),
   the run output saying why the text model was not used; with
   ``text_embeddings=null`` a :class:`TextEmbeddingError` before training
   starts, saying what was tried and how to make a table.

Tables are made with this module's command, on a machine with CLIP::

    python -m detection.text_embeddings --names scratch "bent lead" --out table.pt

or, where no text encoder exists, with fixed seeded random unit vectors::

    python -m detection.text_embeddings --names scratch bent --fixed --out table.pt

Fixed vectors turn YOLO-World into a closed-set detector: names are labels, not
prompts, and nothing transfers to a name the model was not trained on. Every
table gets a sidecar ``<table>.json`` saying how it was made, so a run can say so.

The vectors reach ultralytics' trainers in one place, :mod:`detection.world`.

This module is the choice and the command; the pieces live beside it and are
importable from here too: :mod:`detection.embedding_table` (the
:class:`TextEmbeddings` record, prompt texts, fixed vectors, table files),
:mod:`detection.clip_text` (CLIP from disk), :mod:`detection.mobileclip`
(MobileCLIP from disk).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from shlex import quote

import torch

from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path
from common.data_sets import data_yaml_of
from common.errors import UserError
from common.folders import check_creatable, check_utf8_path
from common.io import write_failure
from common.weights import CheckpointError, resolve_checkpoint, weights_dir
from detection.clip_text import (
    CLIP_ENCODER,
    CLIP_INSTALL,
    CLIP_VARIANT,
    CLIP_WEIGHTS,
    check_clip_usable,
    clip_embeddings,
    clip_module,
    clip_weight_candidates,
    find_clip_weights,
)
from detection.data import data_names, dataset_root
from detection.embedding_table import (
    CLOSED_SET_NOTE,
    EMBEDDING_DIM,
    TextEmbeddingError,
    TextEmbeddings,
    class_texts,
    fixed_embeddings,
    fixed_vector,
    load_table,
    prompt_texts,
    save_table,
    sidecar_path,
)
from detection.image_level import check_class_names

__all__ = [
    "AUTO", "CLIP_ENCODER", "CLIP_INSTALL", "CLIP_VARIANT", "CLIP_WEIGHTS", "CLOSED_SET_NOTE",
    "DEFAULT_CONFIG", "EMBEDDING_DIM", "TextEmbeddingError", "TextEmbeddings", "class_texts",
    "clip_embeddings", "clip_module", "clip_weight_candidates", "encoder_embeddings", "find_clip_weights",
    "fixed_embeddings", "fixed_vector", "load_table", "main", "prompt_texts", "resolve_text_embeddings",
    "save_table", "sidecar_path",
]  # fmt: skip

#: ``text_embeddings: auto``: the model's text model when on disk, otherwise fixed seeded vectors.
AUTO = "auto"
#: What the closing line suggests training with: the YOLO-World-v2 head on COCO-pretrained YOLO11n, the
#: benchmarks' open-vocabulary pick (``yolo_world.yaml`` starts from random weights and learns little
#: on a CPU).
DEFAULT_CONFIG = "configs/detection/yolo11n_world.yaml"


# --- choosing the source ------------------------------------------------------------------------


def encoder_embeddings(
    names: Sequence[str],
    encoder: str = CLIP_ENCODER,
    weights: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
) -> TextEmbeddings:
    """``names`` encoded by the text model ``encoder`` from a file on disk; nothing is downloaded.

    Args:
        encoder: ultralytics' name of the text model: ``clip:ViT-B/32`` (YOLO-World),
            ``mobileclip:blt`` / ``mobileclip2:b`` (YOLOE, the yaml's ``text_model``).
        weights: the encoder's local file; None = the usual folders.

    Raises:
        TextEmbeddingError: the encoder is not usable here (no package, no file), one line saying why.
    """
    if encoder == CLIP_ENCODER:
        check_clip_usable(weights)  # first: an import check is cheaper than hashing 350 MB of weights
        return clip_embeddings(names, find_clip_weights(weights), device=device)
    if encoder.startswith("mobileclip"):
        from detection.mobileclip import mobileclip_embeddings

        return mobileclip_embeddings(names, encoder, weights, device=device)
    raise TextEmbeddingError(
        f"unknown text model {encoder!r} (known: {CLIP_ENCODER}, mobileclip:blt, mobileclip2:b)"
    )


def resolve_text_embeddings(
    names: Sequence[str],
    *,
    table: str | Path | None = None,
    clip_weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    encoder: str = CLIP_ENCODER,
    family: str = "YOLO-World",
) -> TextEmbeddings:
    """Class-name embeddings: the ``table`` if given, else the text model on disk, else ``auto``'s fixed.

    Args:
        table: a table file (always used when given); :data:`AUTO` (``"auto"``): the text
            model when it is on disk, otherwise fixed seeded unit vectors, the reason in
            :attr:`TextEmbeddings.source`; None: the text model or an error.
        clip_weights: the text model's local file (CLIP ``ViT-B-32.pt``, MobileCLIP ``mobileclip_blt.ts``).
        encoder: the model's text model (:func:`encoder_embeddings`).
        family: the model family, for messages (``YOLO-World``, ``YOLOE``).

    Raises:
        TextEmbeddingError: a bad table (see :func:`load_table`), or (``table`` None) the text
            model not usable; the message is one line saying why each source was not used.
    """
    if table is not None and str(table) != AUTO:
        return load_table(table, names)
    try:
        return encoder_embeddings(names, encoder, clip_weights, device=device)
    except TextEmbeddingError as error:
        reason = str(error)
    if table is not None:  # auto
        fixed = fixed_embeddings(names)
        return replace(fixed, source=f"{fixed.source}, made because {encoder} is not usable here ({reason})")
    shown = ", ".join(repr(n) for n in list(names)[:6]) + (", ..." if len(names) > 6 else "")
    raise TextEmbeddingError(
        f"{family} needs text embeddings for its class names ({shown}) and has none: "
        f"{encoder} not usable ({reason}); no table given (text_embeddings=FILE). Make a table with "
        f"'python -m detection.text_embeddings --names ... --out FILE' where CLIP is installed, "
        f"or add --fixed for fixed vectors (closed-set), or set text_embeddings=auto (fixed vectors when "
        f"no text model is on disk), or train plain YOLO (model=yolo11n.pt)"
    )


# --- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=command_name("detection.text_embeddings"),
        formatter_class=DefaultsHelpFormatter,
        description="Write a {class name: 512-d tensor} table for YOLO-World or YOLOE training without a "
        "text encoder (train with text_embeddings=FILE).",
    )
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument("--names", nargs="+", action="extend", help="class names (text prompts)")
    names.add_argument(
        "--data",
        type=user_path,
        help="take the class names from this data.yaml (or the data set folder holding it)",
    )
    parser.add_argument("--out", type=user_path, required=True, help="table file to write (.pt)")
    parser.add_argument(
        "--fixed",
        action="store_true",
        help="fixed seeded random unit vectors instead of CLIP: a closed-set detector, not open-vocabulary",
    )
    parser.add_argument("--seed", type=int, help="seed of --fixed vectors (default: 0)")
    parser.add_argument("--clip-weights", type=user_path, help="local CLIP ViT-B/32 weights (ViT-B-32.pt)")
    parser.add_argument(
        "--download",
        action="store_true",
        help=f"fetch {CLIP_WEIGHTS.filename} from OpenAI into {weights_dir()} if missing (sha256-checked)",
    )
    parser.add_argument("--device", help="device for CLIP (default: cpu)")
    return parser


def check_names(names: Sequence[str]) -> list[str]:
    """``--names`` once each is text (and so is each of its ``/`` synonyms) and none is given twice.

    An empty name would become a class called ``''``; a repeated one a single table entry.

    Raises:
        UserError: naming the first empty or repeated name.
    """
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise UserError(f"--names: {name!r} is an empty class name")
        if any(not text.strip() for text in name.split("/")):
            raise UserError(f"--names: {name!r} has an empty '/'-separated synonym")
        if name.strip() in seen:
            raise UserError(f"--names lists {name.strip()!r} twice; each class needs one name")
        seen.add(name.strip())
    return list(names)


def check_source_options(args: argparse.Namespace) -> None:
    """Refuses an option the chosen source of vectors would ignore: CLIP's with ``--fixed``, ``--seed``
    without it (each was taken without a word, ``--fixed --device cuda`` as if it ran on the GPU).

    Raises:
        UserError: naming the first such option.
    """
    if args.fixed:
        clip_options = (
            ("--clip-weights", args.clip_weights is not None),
            ("--download", args.download),
            ("--device", args.device is not None),
        )
        given = [flag for flag, on in clip_options if on]
        if given:
            raise UserError(f"{given[0]} is CLIP's: --fixed makes its vectors without CLIP")
    elif args.seed is not None:
        raise UserError("--seed is the seed of --fixed vectors: it needs --fixed (CLIP's vectors take none)")


def check_table_out(out: Path) -> Path:
    """``out`` once the table and its ``<out>.json`` sidecar may be written; before any encoder runs.

    An earlier table (a file whose sidecar says this command wrote it) is replaced; any other
    file at ``out`` or at its sidecar's name (a model's ``best.pt``, a ``data.json``) is refused.

    Raises:
        UserError: ``out`` is a folder, ends in ``.json`` (the sidecar would replace the table) or
            in any other suffix than ``.pt``, it or its sidecar's name is taken by a file that is
            not an earlier table, a file, a read-only folder or a link loop is on its path, or a name on
            it is not UTF-8 (:func:`common.folders.check_utf8_path`).
    """
    check_utf8_path(out, flag="--out")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the table's file name (names.pt)")
    if out.suffix.lower() == ".json":
        raise UserError(f"--out {out} is the name of the table's .json sidecar; give a .pt file name")
    if out.suffix.lower() != ".pt":  # as segmentation.export's --out: a mistyped name replaces no other file
        raise UserError(f"--out {out} needs the .pt suffix (e.g. names.pt)")
    sidecar = sidecar_path(out)
    if (out.exists() or sidecar.exists()) and not _is_table_sidecar(sidecar):
        taken = out if out.exists() else sidecar
        raise UserError(
            f"--out {out}: {taken} exists and is not a text-embedding table written by this command "
            "(it would be replaced); give another file name"
        )
    check_creatable(out, what="file", flag="--out")
    return out


def check_out_of_data_set(out: Path, data: Path) -> None:
    """Refuses a table ``out`` inside the data set of ``data`` (a ``data.yaml``), whose class names it reads.

    Every other command refuses an output inside the data set it reads
    (:func:`common.folders.check_not_inside`): files written there are in the way of its next conversion.
    ``--data DS --out DS/t.pt`` wrote ``t.pt`` and ``t.json`` into it.

    Raises:
        UserError: naming ``out``, the data set's folder and a place outside it.
    """
    root = dataset_root(data).resolve()
    if root in out.resolve().parents:
        raise UserError(
            f"--out {out} is inside the data set {root} whose class names it reads (files written into a "
            f"data set are in the way of its next conversion); write the table outside it, e.g. "
            f"--out {root.parent / out.name}"
        )


def _is_table_sidecar(path: Path) -> bool:
    """True when ``path`` is a JSON object with the keys :func:`save_table` writes."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and {"source", "dim", "names"} <= info.keys()


def make_table(args: argparse.Namespace) -> TextEmbeddings:
    """The library side of the command: embeddings for the requested names."""
    if args.names:
        names, source, rename_with = check_names(args.names), "--names", None
    else:
        data = data_yaml_of(args.data)
        names, source, rename_with = data_names(data), f"data file {data}", "the converters' --names-template"
    check_class_names(names, source, rename_with=rename_with)  # a table no training or evaluation would take
    if args.fixed:
        return fixed_embeddings(names, seed=0 if args.seed is None else args.seed)
    try:
        if args.download and args.clip_weights is None:  # the weights come with the download
            clip_module()
            try:
                weights = resolve_checkpoint(CLIP_WEIGHTS, download=True)
            except CheckpointError as error:
                raise TextEmbeddingError(str(error)) from None
        else:
            check_clip_usable(args.clip_weights, option="--clip-weights PATH (or --download)")
            weights = find_clip_weights(args.clip_weights, option="--clip-weights PATH (or --download)")
    except TextEmbeddingError as error:
        # docs/detection.md's command without CLIP named only the pip install, not this command's own way out
        raise TextEmbeddingError(
            f"{error}; without CLIP, --fixed writes seeded random unit vectors instead "
            "(a closed-set detector)"
        ) from None
    return clip_embeddings(names, weights, device=args.device or "cpu")


def write_table(args: argparse.Namespace) -> Path:
    """The command's work: makes the table, writes it and its sidecar, prints how to train with it."""
    check_source_options(args)
    check_table_out(Path(args.out))  # before CLIP runs
    if args.data is not None:
        check_out_of_data_set(Path(args.out), data_yaml_of(args.data))
    embeddings = make_table(args)
    try:
        path = save_table(embeddings, args.out)
    except OSError as error:
        raise UserError(f"cannot write {args.out}: {write_failure(error, args.out)}") from None
    print(f"wrote {len(embeddings.vectors)} {embeddings.dim}-d vectors to {path} ({sidecar_path(path).name})")
    print(f"source: {embeddings.source}")
    if not embeddings.open_vocabulary:
        print(f"NOTE: {CLOSED_SET_NOTE}")
    data = f" {quote(f'data={args.data}')}" if args.data else ""
    print(
        f"train with: python -m detection.train --config {DEFAULT_CONFIG}{data} "
        f"{quote(f'text_embeddings={path}')}"
    )
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detection.text_embeddings``; bad input is one ``error:`` line and exit code 2."""
    return exit_code(lambda: write_table(build_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
