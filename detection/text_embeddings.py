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
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import torch

from common.cli import exit_code
from common.errors import UserError, one_line
from common.io import atomic_write, save_torch
from common.weights import CheckpointError, CheckpointSpec, resolve_checkpoint, weights_dir
from detection.data import data_names

#: Width of YOLO-World's text embeddings (CLIP ViT-B/32's text projection).
EMBEDDING_DIM = 512
#: The text encoder every ultralytics YOLO-World model was trained with.
CLIP_VARIANT = "ViT-B/32"
#: ultralytics' name of that text model (``build_text_model``); YOLOE names its own in its yaml.
CLIP_ENCODER = f"clip:{CLIP_VARIANT}"
#: ``text_embeddings: auto``: the model's text model when on disk, otherwise fixed seeded vectors.
AUTO = "auto"
#: OpenAI's file; the sha256 is the one in its own URL (the ``clip`` package checks it the same way).
CLIP_WEIGHTS = CheckpointSpec(
    model="clip-ViT-B/32",
    filename="ViT-B-32.pt",
    url="https://openaipublic.azureedge.net/clip/models/"
    "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    size=None,
    path_option="clip_weights=PATH",
)
DEFAULT_CONFIG = "configs/detection/yolo_world.yaml"
CLIP_INSTALL = "pip install git+https://github.com/ultralytics/CLIP.git"
CLOSED_SET_NOTE = (
    "fixed random unit vectors: the open-vocabulary model becomes a closed-set detector (class names are "
    "labels, not text prompts; no open-vocabulary transfer to names it was not trained on)"
)


class TextEmbeddingError(UserError):
    """No usable text embeddings; the message is one line naming the file or what was tried."""


@dataclass(frozen=True)
class TextEmbeddings:
    """Unit-length text embeddings of class names, and where they came from.

    Attributes:
        vectors: prompt text -> ``(D,)`` float32 tensor of L2 norm 1.
        source: one line for run logs, e.g. ``table file t.pt (CLIP ViT-B/32 ...)``.
        open_vocabulary: False for fixed random vectors (a closed-set detector).
        info: how they were made (kind, seed, CLIP weights...), written to the table's sidecar.
    """

    vectors: Mapping[str, torch.Tensor]
    source: str
    open_vocabulary: bool = True
    info: Mapping[str, object] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return next(iter(self.vectors.values())).numel()

    def matrix(self, texts: Sequence[str]) -> torch.Tensor:
        """``(1, N, D)`` embeddings of ``texts`` in order: ``WorldModel.txt_feats``' layout."""
        return torch.stack([self.vectors[t] for t in texts]).unsqueeze(0)

    def describe(self) -> str:
        note = "" if self.open_vocabulary else f" -- {CLOSED_SET_NOTE}"
        return f"text embeddings: {self.source}{note}"


def prompt_texts(names: Sequence[str]) -> list[str]:
    """The texts ultralytics embeds for class ``names``, in order, without repeats.

    A name may list synonyms separated by ``/`` (ultralytics' convention: training
    samples one of them per image; inference uses the first).

    >>> prompt_texts(["scratch", "bent lead/bent pin"])
    ['scratch', 'bent lead', 'bent pin']
    """
    texts: dict[str, None] = {}
    for name in names:
        for text in str(name).split("/"):
            texts.setdefault(text.strip(), None)
    return list(texts)


def class_texts(names: Sequence[str]) -> list[str]:
    """The one text per class that sets a model's classes: each name's first synonym."""
    return [str(name).split("/", 1)[0].strip() for name in names]


# --- fixed vectors ------------------------------------------------------------------------------


def fixed_vector(text: str, *, seed: int = 0, dim: int = EMBEDDING_DIM) -> torch.Tensor:
    """A ``(dim,)`` random unit vector that depends only on ``text`` and ``seed``.

    Seeded per name, so a class keeps its vector when classes are added or
    reordered. In 512 dimensions independent random directions are nearly
    orthogonal (|cos| ~ 0.04), so each class gets its own direction.
    """
    digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
    vector = torch.randn(dim, generator=generator, dtype=torch.float64)
    return (vector / vector.norm()).float()


def fixed_embeddings(names: Sequence[str], *, seed: int = 0, dim: int = EMBEDDING_DIM) -> TextEmbeddings:
    """Fixed seeded random unit vectors for ``names``: a closed-set stand-in for a text encoder."""
    return TextEmbeddings(
        {t: fixed_vector(t, seed=seed, dim=dim) for t in prompt_texts(names)},
        source=f"fixed seeded random unit vectors (seed {seed})",
        open_vocabulary=False,
        info={"kind": "fixed", "seed": seed, "dim": dim},
    )


# --- table files --------------------------------------------------------------------------------


def sidecar_path(table: str | Path) -> Path:
    """``table.pt`` -> ``table.json``: how the table was made."""
    return Path(table).with_suffix(".json")


def save_table(embeddings: TextEmbeddings, path: str | Path) -> Path:
    """Writes ``{text: (D,) tensor}`` with ``torch.save``, and its ``.json`` sidecar; returns ``path``."""
    path = Path(path)
    save_torch({t: v.detach().cpu().float().clone() for t, v in embeddings.vectors.items()}, path)
    sidecar = {
        **embeddings.info,
        "source": embeddings.source,
        "open_vocabulary": embeddings.open_vocabulary,
        "dim": embeddings.dim,
        "names": list(embeddings.vectors),
    }
    if not embeddings.open_vocabulary:
        sidecar["note"] = CLOSED_SET_NOTE
    atomic_write(sidecar_path(path), json.dumps(sidecar, indent=1) + "\n")
    return path


def load_table(path: str | Path, names: Sequence[str], *, dim: int = EMBEDDING_DIM) -> TextEmbeddings:
    """Reads and checks a table for class ``names``; the vectors are returned L2-normalised.

    Args:
        path: ``torch.save``'d ``{text: (D,) or (1, D) tensor}``.
        names: class names (``/`` separates synonyms, each needs a vector).
        dim: the embedding width the model takes.

    Raises:
        TextEmbeddingError: (one line naming ``path``) a missing or unreadable file,
            not a ``{str: tensor}`` dict, class names without a vector (listed),
            vectors of different sizes or of a size other than ``dim``, a zero or
            non-finite vector.
    """
    path = Path(path).expanduser()
    data = _read_table(path)
    texts = prompt_texts(names)
    missing = [t for t in texts if t not in data]
    if missing:
        have = ", ".join(repr(k) for k in list(data)[:10]) + (", ..." if len(data) > 10 else "")
        raise TextEmbeddingError(
            f"text-embedding table {path} has no vector for {len(missing)} class name(s): "
            f"{', '.join(repr(t) for t in missing)} (it has {len(data)}: {have})"
        )
    _check_width(path, data, dim)
    vectors = {text: _unit_vector(path, text, data[text]) for text in texts}
    info = _read_sidecar(path)
    kind = info.get("source", "origin not recorded: no sidecar .json")
    return TextEmbeddings(
        vectors,
        source=f"table file {path} ({kind})",
        open_vocabulary=bool(info.get("open_vocabulary", True)),
        info={**info, "table": str(path)},
    )


def _read_table(path: Path) -> dict[str, torch.Tensor]:
    """The ``{str: tensor}`` dict of a table file; :class:`TextEmbeddingError` naming it otherwise."""
    if not path.is_file():
        raise TextEmbeddingError(f"text-embedding table not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike for a bad file
        raise TextEmbeddingError(f"cannot read text-embedding table {path}: {one_line(error)}") from None
    if not isinstance(data, Mapping) or not data:
        raise TextEmbeddingError(
            f"{path} is not a text-embedding table: expected a non-empty {{class name: tensor}} dict "
            f"saved with torch.save, found {type(data).__name__}"
        )
    bad = [k for k, v in data.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise TextEmbeddingError(
            f"{path} is not a text-embedding table: entries {bad[:5]!r} are not class name -> tensor"
        )
    return dict(data)


def _check_width(path: Path, data: Mapping[str, torch.Tensor], dim: int) -> None:
    """Every vector is ``(D,)`` or ``(1, D)``, all of one width ``D == dim``."""
    shapes = {k: tuple(v.shape) for k, v in data.items()}
    flat = {k: s for k, s in shapes.items() if len(s) == 1 or (len(s) == 2 and s[0] == 1)}
    if len(flat) != len(shapes):
        odd = next(k for k in shapes if k not in flat)
        raise TextEmbeddingError(f"{path}: vector for {odd!r} has shape {shapes[odd]}, expected ({dim},)")
    sizes: dict[int, str] = {}
    for key, shape in flat.items():
        sizes.setdefault(shape[-1], key)
    if len(sizes) > 1:
        listing = ", ".join(f"{size} ({key!r})" for size, key in sizes.items())
        raise TextEmbeddingError(f"{path}: vectors have different sizes: {listing}")
    (size,) = sizes
    if size != dim:
        raise TextEmbeddingError(
            f"{path}: vectors are {size}-d, YOLO-World's text head takes {dim}-d (CLIP {CLIP_VARIANT})"
        )


def _unit_vector(path: Path, text: str, vector: torch.Tensor) -> torch.Tensor:
    """``vector`` flattened and L2-normalised (float32); an error for a zero or non-finite one."""
    vector = vector.detach().reshape(-1).double()
    norm = vector.norm()
    if not torch.isfinite(vector).all() or norm == 0:
        raise TextEmbeddingError(f"{path}: vector for {text!r} is zero or not finite")
    return (vector / norm).float()


def _read_sidecar(table: Path) -> dict:
    try:
        info = json.loads(sidecar_path(table).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


# --- CLIP ---------------------------------------------------------------------------------------


def clip_module() -> ModuleType:
    """OpenAI's ``clip`` package (ultralytics' fork or the original), imported only if installed.

    Raises:
        TextEmbeddingError: not installed, or a different package named ``clip``.
    """
    if importlib.util.find_spec("clip") is None:
        raise TextEmbeddingError(f"the 'clip' package is not installed ({CLIP_INSTALL})")
    try:
        module = importlib.import_module("clip")
    except Exception as error:  # a broken install: missing ftfy/regex, say
        raise TextEmbeddingError(f"the 'clip' package does not import: {one_line(error)}") from None
    if not all(hasattr(module, name) for name in ("load", "tokenize")):
        raise TextEmbeddingError(f"the installed 'clip' package is not OpenAI's CLIP ({CLIP_INSTALL})")
    return module


def clip_weight_candidates() -> list[Path]:
    """Where ``ViT-B-32.pt`` is looked for when no path is given, in order."""
    from ultralytics.utils import WEIGHTS_DIR  # where ultralytics' own CLIP loader keeps it

    return [
        weights_dir() / CLIP_WEIGHTS.filename,
        Path(WEIGHTS_DIR) / "clip" / CLIP_WEIGHTS.filename,
        Path.home() / ".cache" / "clip" / CLIP_WEIGHTS.filename,
    ]


def find_clip_weights(path: str | Path | None = None) -> Path:
    """The local CLIP ViT-B/32 weights: ``path`` if given, else the first verified candidate.

    Files named ``ViT-B-32.pt`` are checked against the official sha256; an
    explicit file under another name is taken as the user's own.

    Raises:
        TextEmbeddingError: no verified file (the message lists where it looked).
    """
    try:
        if path is not None:
            return resolve_checkpoint(CLIP_WEIGHTS, path)
        looked = []
        for candidate in clip_weight_candidates():
            if candidate.is_file():
                return resolve_checkpoint(CLIP_WEIGHTS, candidate)
            looked.append(str(candidate.parent))
    except CheckpointError as error:
        raise TextEmbeddingError(str(error)) from None
    raise TextEmbeddingError(
        f"no CLIP {CLIP_VARIANT} weights on disk (looked for {CLIP_WEIGHTS.filename} in {', '.join(looked)}; "
        f"get it from {CLIP_WEIGHTS.url} or pass clip_weights=PATH)"
    )


def clip_embeddings(
    names: Sequence[str], weights: str | Path, *, device: str | torch.device = "cpu"
) -> TextEmbeddings:
    """Encodes ``names`` with CLIP from a local weights file, as ultralytics' ``CLIP.encode_text`` does."""
    clip = clip_module()
    texts = prompt_texts(names)
    try:
        # A file path, not a model name: the package's loader then downloads nothing.
        model, _ = clip.load(str(weights), device=device, jit=False)
    except Exception as error:  # a truncated file or the user's own weights that do not fit
        raise TextEmbeddingError(f"CLIP could not load {weights}: {one_line(error)}") from None
    model.eval()
    with torch.no_grad():
        tokens = clip.tokenize(texts, truncate=True).to(device)
        features = model.encode_text(tokens).float().cpu()
    features = features / features.norm(dim=-1, keepdim=True)
    return TextEmbeddings(
        dict(zip(texts, features, strict=True)),
        source=f"CLIP {CLIP_VARIANT} ({weights})",
        info={"kind": "clip", "variant": CLIP_VARIANT, "weights": str(weights)},
    )


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
        clip_module()  # first: an import check is cheaper than hashing 350 MB of weights
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
    parser = argparse.ArgumentParser(
        prog="python -m detection.text_embeddings",
        description="Write a {class name: 512-d tensor} table for YOLO-World training without a text "
        "encoder (train with text_embeddings=FILE).",
    )
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument("--names", nargs="+", help="class names (text prompts)")
    names.add_argument("--data", type=Path, help="take the class names from this data.yaml")
    parser.add_argument("--out", type=Path, required=True, help="table file to write (.pt)")
    parser.add_argument(
        "--fixed",
        action="store_true",
        help="fixed seeded random unit vectors instead of CLIP: a closed-set detector, not open-vocabulary",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --fixed vectors")
    parser.add_argument("--clip-weights", type=Path, help="local CLIP ViT-B/32 weights (ViT-B-32.pt)")
    parser.add_argument(
        "--download",
        action="store_true",
        help=f"fetch {CLIP_WEIGHTS.filename} from OpenAI into {weights_dir()} if missing (sha256-checked)",
    )
    parser.add_argument("--device", default="cpu", help="device for CLIP")
    return parser


def make_table(args: argparse.Namespace) -> TextEmbeddings:
    """The library side of the command: embeddings for the requested names."""
    names = args.names if args.names else data_names(args.data)
    if args.fixed:
        return fixed_embeddings(names, seed=args.seed)
    clip_module()
    if args.download and args.clip_weights is None:
        try:
            weights = resolve_checkpoint(CLIP_WEIGHTS, download=True)
        except CheckpointError as error:
            raise TextEmbeddingError(str(error)) from None
    else:
        weights = find_clip_weights(args.clip_weights)
    return clip_embeddings(names, weights, device=args.device)


def write_table(args: argparse.Namespace) -> Path:
    """The command's work: makes the table, writes it and its sidecar, prints how to train with it."""
    embeddings = make_table(args)
    path = save_table(embeddings, args.out)
    print(f"wrote {len(embeddings.vectors)} {embeddings.dim}-d vectors to {path} ({sidecar_path(path).name})")
    print(f"source: {embeddings.source}")
    if not embeddings.open_vocabulary:
        print(f"NOTE: {CLOSED_SET_NOTE}")
    print(f"train with: python -m detection.train --config {DEFAULT_CONFIG} text_embeddings={path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detection.text_embeddings``; bad input is one ``error:`` line and exit code 2."""
    args = build_parser().parse_args(argv)
    return exit_code(lambda: write_table(args))


if __name__ == "__main__":
    raise SystemExit(main())
