"""MobileCLIP text embeddings for YOLOE class names, from a TorchScript file already on disk.

YOLOE scores regions against text embeddings of MobileCLIP (``mobileclip:blt``
for YOLOE-11/v8, ``mobileclip2:b`` for YOLOE-26: the model yaml's ``text_model``).
ultralytics' ``YOLOEModel.get_text_pe`` builds that encoder on the spot, which
downloads ``mobileclip_blt.ts`` from its GitHub assets (and pip-installs ``clip``
for the tokenizer when it is missing). Here the same TorchScript text encoder is
used only when it is already on disk (``clip_weights=PATH``, else the file name
in this project's cache, ultralytics' weights folder or the working folder) and
the ``clip`` package (its tokenizer) is installed; nothing is downloaded. No
sha256 of the official file is known to this project, so the file is taken as
it is and its path is named in the run output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from common.errors import one_line
from common.io import expand_user, recorded_path
from common.weights import weights_dir
from detection.clip_text import clip_module
from detection.embedding_table import TextEmbeddingError, TextEmbeddings, prompt_texts

#: YOLOE's text encoders (``text_model`` of its yaml) -> ultralytics' TorchScript file.
MOBILECLIP_FILES = {"mobileclip:blt": "mobileclip_blt.ts", "mobileclip2:b": "mobileclip2_b.ts"}
MOBILECLIP_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0/"


def mobileclip_candidates(filename: str) -> list[Path]:
    """Where a MobileCLIP file is looked for when no path is given, in order."""
    from ultralytics.utils import WEIGHTS_DIR

    return [weights_dir() / filename, Path(WEIGHTS_DIR) / filename, Path.cwd() / filename]


def find_mobileclip_weights(encoder: str, path: str | Path | None = None) -> Path:
    """The local TorchScript file of ``encoder`` (``mobileclip:blt``): ``path`` if given, else a candidate.

    Raises:
        TextEmbeddingError: an unknown encoder, a missing ``path``, or no candidate on disk.
    """
    if encoder not in MOBILECLIP_FILES:
        raise TextEmbeddingError(
            f"unknown MobileCLIP text model {encoder!r} (known: {', '.join(MOBILECLIP_FILES)})"
        )
    if path is not None:
        path = expand_user(path)
        if not path.is_file():
            raise TextEmbeddingError(f"MobileCLIP weights not found: {path}")
        return path
    filename = MOBILECLIP_FILES[encoder]
    candidates = mobileclip_candidates(filename)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TextEmbeddingError(
        f"no MobileCLIP {encoder} weights on disk (looked for {filename} in "
        f"{', '.join(str(c.parent) for c in candidates)}; get it from {MOBILECLIP_URL}{filename} "
        "or pass clip_weights=PATH)"
    )


def mobileclip_embeddings(
    names: Sequence[str], encoder: str, path: str | Path | None = None, *, device: str | torch.device = "cpu"
) -> TextEmbeddings:
    """Encodes ``names`` as ultralytics' ``MobileCLIPTS.encode_text`` does, from a local file.

    Raises:
        TextEmbeddingError: no ``clip`` tokenizer, no file, or a file that is not the TorchScript encoder.
    """
    try:
        clip = clip_module()  # ultralytics' MobileCLIP uses CLIP's tokenizer
    except TextEmbeddingError as error:
        try:  # the weights missing too: both named at once, not one after the other's fix
            find_mobileclip_weights(encoder, path)
        except TextEmbeddingError as missing:
            raise TextEmbeddingError(f"{error}, and {missing}") from None
        raise
    weights = find_mobileclip_weights(encoder, path)
    texts = prompt_texts(names)
    try:
        model = torch.jit.load(str(weights), map_location=device)
        with torch.no_grad():
            features = model(clip.tokenize(texts, truncate=True).to(device)).float().cpu()
    except Exception as error:  # not TorchScript, or another model's file
        raise TextEmbeddingError(f"MobileCLIP could not encode with {weights}: {one_line(error)}") from None
    features = features / features.norm(dim=-1, keepdim=True)
    return TextEmbeddings(
        dict(zip(texts, features, strict=True)),
        source=f"MobileCLIP {encoder} ({recorded_path(weights)})",  # the table's sidecar records both
        info={"kind": "mobileclip", "variant": encoder, "weights": recorded_path(weights)},
    )
