"""CLIP ViT-B/32 text embeddings for YOLO-World class names, from weights already on disk.

ultralytics' ``WorldModel.get_text_pe`` downloads CLIP (and pip-installs the
``clip`` package when missing); here CLIP is used only when the package is
importable and its weights are on disk (``clip_weights=PATH``, else
``ViT-B-32.pt`` in this project's cache, ultralytics' ``weights/clip/`` or
``~/.cache/clip/``), verified by sha256. Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch

from common.errors import UserError, one_line
from common.io import expand_user, home_dir, recorded_path
from common.weights import CheckpointError, CheckpointSpec, resolve_checkpoint, weights_dir
from detection.embedding_table import TextEmbeddingError, TextEmbeddings, prompt_texts

#: The text encoder every ultralytics YOLO-World model was trained with.
CLIP_VARIANT = "ViT-B/32"
#: ultralytics' name of that text model (``build_text_model``); YOLOE names its own in its yaml.
CLIP_ENCODER = f"clip:{CLIP_VARIANT}"
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
CLIP_INSTALL = "pip install git+https://github.com/ultralytics/CLIP.git"


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

    candidates = [weights_dir() / CLIP_WEIGHTS.filename, Path(WEIGHTS_DIR) / "clip" / CLIP_WEIGHTS.filename]
    with contextlib.suppress(UserError):  # no home folder (a container's arbitrary user id): no file there
        candidates.append(home_dir() / ".cache" / "clip" / CLIP_WEIGHTS.filename)
    return candidates


def find_clip_weights(path: str | Path | None = None, *, option: str = "clip_weights=PATH") -> Path:
    """The local CLIP ViT-B/32 weights: ``path`` if given, else the first verified candidate.

    Files named ``ViT-B-32.pt`` are checked against the official sha256; an
    explicit file under another name is taken as the user's own. A candidate with another sha256
    (a partial copy) is passed over, with a note on stderr, when a later one verifies; it is
    left where it is (other tools' folders are not this project's to tidy).

    Args:
        option: how the user names the file, for the message (``--clip-weights PATH`` on a command line).

    Raises:
        TextEmbeddingError: no verified file (the message lists where it looked, and the files found
            with another sha256).
    """
    if path is not None:
        try:
            return resolve_checkpoint(CLIP_WEIGHTS, path)
        except CheckpointError as error:
            raise TextEmbeddingError(str(error)) from None
    corrupt: list[Path] = []
    for candidate in clip_weight_candidates():
        if not candidate.is_file() or any(_same_file(candidate, seen) for seen in corrupt):
            continue  # a cache folder linked to another: that copy is named once
        try:
            found = resolve_checkpoint(CLIP_WEIGHTS, candidate)
        except CheckpointError:  # the first corrupt copy stopped the search before a good one later
            corrupt.append(candidate)
            continue
        if corrupt:
            verb = "has" if len(corrupt) == 1 else "have"
            print(
                f"note: {_listed(corrupt)} {verb} another sha256 than the official "
                f"{CLIP_WEIGHTS.filename}; using {found}",
                file=sys.stderr,
                flush=True,
            )
        return found
    raise TextEmbeddingError(no_clip_weights(option, corrupt=corrupt))


def _same_file(path: Path, other: Path) -> bool:
    """Whether two paths name one file (a linked folder); False when either cannot be looked at."""
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False


def _listed(paths: Sequence[Path]) -> str:
    return ", ".join(str(path) for path in paths)


def no_clip_weights(option: str = "clip_weights=PATH", *, corrupt: Sequence[Path] = ()) -> str:
    """Where ``ViT-B-32.pt`` was looked for, where to get it and how to name it, as one line.

    ``corrupt``: the files found there whose sha256 is not the official one, named first.
    """
    looked = ", ".join(str(candidate.parent) for candidate in clip_weight_candidates())
    found = ""
    if corrupt:
        verb = "has" if len(corrupt) == 1 else "have"
        found = f" with the official sha256 {CLIP_WEIGHTS.sha256}: {_listed(corrupt)} {verb} another"
    return (
        f"no CLIP {CLIP_VARIANT} weights on disk{found} (looked for {CLIP_WEIGHTS.filename} in {looked}; "
        f"get it from {CLIP_WEIGHTS.url} or pass {option})"
    )


def check_clip_usable(path: str | Path | None = None, *, option: str = "clip_weights=PATH") -> None:
    """The ``clip`` package imports; when it does not, the error also names missing weights.

    Without the package a user installed it, ran again, and only then learnt that the weights were
    missing too: both are named at once. Only whether a file is there is looked at (no hashing).

    Raises:
        TextEmbeddingError: the package's reason, with ``, and <no weights>`` when no file is there.
    """
    try:
        clip_module()
    except TextEmbeddingError as error:
        if path is not None:
            found = expand_user(path).is_file()
            missing = f"CLIP weights not found: {path}"
        else:
            found = any(candidate.is_file() for candidate in clip_weight_candidates())
            missing = no_clip_weights(option)
        raise TextEmbeddingError(f"{error}{'' if found else ', and ' + missing}") from None


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
        source=f"CLIP {CLIP_VARIANT} ({recorded_path(weights)})",  # the table's sidecar records both
        info={"kind": "clip", "variant": CLIP_VARIANT, "weights": recorded_path(weights)},
    )
