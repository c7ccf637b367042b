"""Class-name embeddings as data: the TextEmbeddings record, prompt texts, fixed vectors, table files.

A table file is a ``torch.save``'d ``{class name: (512,) tensor}`` dict (the
format of ultralytics' own ``text_embeddings_clip_ViT-B_32.pt`` cache) with a
sidecar ``<table>.json`` saying how it was made. Where no text model exists,
fixed seeded random unit vectors stand in for one: the open-vocabulary model
then becomes a closed-set detector. Which source a run uses is chosen by
:func:`detection.text_embeddings.resolve_text_embeddings`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from common.errors import UserError, one_line
from common.io import atomic_write, expand_user, sha256_file, torch_file_kind

#: Width of YOLO-World's text embeddings (CLIP ViT-B/32's text projection).
EMBEDDING_DIM = 512
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
    """Writes ``{text: (D,) tensor}`` with ``torch.save``, and its ``.json`` sidecar; returns ``path``.

    Two files cannot be replaced in one step. The sidecar goes first and records the sha256 of the table
    written after it, so a write stopped in between (a full disk, Ctrl-C) leaves the earlier table beside
    a sidecar :func:`load_table` knows is not its own: never a table described by an earlier table's
    sidecar (``--fixed`` random vectors read back as "CLIP, open vocabulary").
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save({t: v.detach().cpu().float().clone() for t, v in embeddings.vectors.items()}, buffer)
    table = buffer.getvalue()
    sidecar = {
        **embeddings.info,
        "source": embeddings.source,
        "open_vocabulary": embeddings.open_vocabulary,
        "dim": embeddings.dim,
        "names": list(embeddings.vectors),
        "table_sha256": hashlib.sha256(table).hexdigest(),
    }
    if not embeddings.open_vocabulary:
        sidecar["note"] = CLOSED_SET_NOTE
    first = not path.exists()
    atomic_write(sidecar_path(path), json.dumps(sidecar, indent=1) + "\n")
    try:
        return atomic_write(path, table)
    except BaseException:
        if first:  # no table for the sidecar to be mistaken for: none is left alone
            sidecar_path(path).unlink(missing_ok=True)
        raise


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
    path = expand_user(path)
    data = _read_table(path)
    texts = prompt_texts(names)
    missing = [t for t in texts if t not in data]
    if missing and (kind := torch_file_kind(path)):  # a SAM state dict's 439 keys were listed as its texts
        raise TextEmbeddingError(_other_file_text(path, kind))
    if missing:
        have = ", ".join(repr(k) for k in list(data)[:10]) + (", ..." if len(data) > 10 else "")
        raise TextEmbeddingError(
            f"text-embedding table {path} has no vector for {len(missing)} class name(s): "
            f"{', '.join(repr(t) for t in missing)} (it has {len(data)}: {have})"
        )
    _check_width(path, data, dim)
    vectors = {text: _unit_vector(path, text, data[text]) for text in texts}
    info, kind = _read_sidecar(path)
    return TextEmbeddings(
        vectors,
        source=f"table file {path} ({kind})",
        open_vocabulary=bool(info.get("open_vocabulary", True)),
        info={**info, "table": str(path)},
    )


def _other_file_text(path: Path, kind: str) -> str:
    """The line refusing another torch file (:func:`common.io.torch_file_kind`'s ``kind``) as a table."""
    return (
        f"{path} is not a text-embedding table: it is {kind}; pass a table file {{class name: tensor}} "
        "(python -m detection.text_embeddings --out FILE.pt, or a run's text_embeddings.pt)"
    )


def _read_table(path: Path) -> dict[str, torch.Tensor]:
    """The ``{str: tensor}`` dict of a table file; :class:`TextEmbeddingError` naming it otherwise."""
    if not path.is_file():
        raise TextEmbeddingError(f"text-embedding table not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike for a bad file
        if kind := torch_file_kind(path):  # a best.pt: torch's weights_only advice, many lines of it
            raise TextEmbeddingError(_other_file_text(path, kind)) from None
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
            f"{path}: vectors are {size}-d, YOLO-World's text head takes {dim}-d (CLIP ViT-B/32)"
        )


def _unit_vector(path: Path, text: str, vector: torch.Tensor) -> torch.Tensor:
    """``vector`` flattened and L2-normalised (float32); an error for a zero or non-finite one."""
    vector = vector.detach().reshape(-1).double()
    norm = vector.norm()
    if not torch.isfinite(vector).all() or norm == 0:
        raise TextEmbeddingError(f"{path}: vector for {text!r} is zero or not finite")
    return (vector / norm).float()


def _read_sidecar(table: Path) -> tuple[dict, str]:
    """The table's sidecar and the origin it records; ``{}`` and why not where it has none of its own.

    A sidecar whose ``table_sha256`` (written from this version on) is not the table's was written for
    a table that never replaced this one (:func:`save_table` stopped in between).
    """
    try:
        info = json.loads(sidecar_path(table).read_text())
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict):
        return {}, "origin not recorded: no sidecar .json"
    recorded = info.get("table_sha256")
    if recorded is not None and recorded != sha256_file(table, what="text-embedding table"):
        name = sidecar_path(table).name
        return {}, f"origin not recorded: {name} describes another table (a write stopped, or an edit)"
    return info, str(info.get("source", "origin not recorded: no sidecar .json"))
