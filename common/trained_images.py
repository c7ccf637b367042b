"""Which photos a model was trained on, by their bytes: a split scored later is checked against them.

A data set converted again (another ``--seed``, other ratios, photos added) deals its photos to other
splits under the same ``data.yaml``: a model trained before scores some of its own training photos as
test photos, and every figure overstates it without a word. ``detection.train`` and
``segmentation.train`` write :data:`TRAINED_IMAGES` into their run folder (the sha256 of each train
photo); ``detection.evaluate``, ``segmentation.evaluate`` and ``inspection.evaluate`` warn
(:func:`trained_overlap_warning`) when the scored split holds any of them. By bytes, not by name:
a converter names a photo by its split-independent key, and a renamed copy is the same photo.

Pure record in, one line out; nothing is refused, since scoring the train split (or a data set
that really holds one photo twice) is a fair thing to want to see.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm import tqdm

from common.io import atomic_write, sha256_file

#: The record a training run writes into its folder.
TRAINED_IMAGES = "trained_images.json"


def record_trained_images(folder: str | Path, images: Iterable[str | Path], *, keep: bool = False) -> Path:
    """Writes ``folder/trained_images.json``: each train photo's file name and sha256, sorted by name.

    Args:
        keep: also keep the photos of the record already there (a resumed run: its earlier epochs
            trained on them, even where the data set was converted again since).

    Raises:
        UserError: a photo that cannot be read (:func:`common.io.sha256_file` names it).
    """
    rows = {(Path(p).name, sha256_file(p, what="image")) for p in images}
    earlier = read_trained_images(folder) if keep else None
    rows = sorted(rows | {(name, digest) for digest, name in (earlier or {}).items()})
    record = {"images": [{"file": name, "sha256": digest} for name, digest in rows]}
    return atomic_write(Path(folder) / TRAINED_IMAGES, json.dumps(record, indent=1) + "\n")


def read_trained_images(folder: str | Path) -> dict[str, str] | None:
    """sha256 -> file name of ``folder``'s record; None without one (a run older than the record,
    a folder that is not a run) or with an unreadable one: then nothing can be said."""
    try:
        record = json.loads((Path(folder) / TRAINED_IMAGES).read_text())
        return {str(row["sha256"]): str(row["file"]) for row in record["images"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def trained_overlap_warning(
    folder: str | Path | None,
    scored: Sequence[str | Path],
    split: str,
    *,
    model: str = "the model",
    progress: bool = False,
) -> str | None:
    """A ``warning:`` line when photos of ``split`` are photos ``folder``'s run was trained on.

    Args:
        folder: the training run's folder (None: unknown, nothing said).
        scored: the split's image files.
        split: its name; ``train`` is never warned of (that is what it was trained on).
        model: what was trained, as the line names it.
        progress: a bar on stderr while the photos are hashed (every byte of the split is read: on a
            large one, minutes without a word otherwise).
    """
    trained = read_trained_images(folder) if folder is not None and split != "train" else None
    if not trained:
        return None
    desc = f"hashing {split} photos (vs {model}'s train photos)"
    photos = tqdm(scored, desc=desc, unit="photo", disable=not progress, file=sys.stderr)
    repeats = [(Path(p), trained[d]) for p in photos if (d := sha256_file(p, what="image")) in trained]
    if not repeats:
        return None
    (first, name), count = repeats[0], len(repeats)
    example = first.name if first.name == name else f"{first.name}, its train photo {name}"
    are = "is a photo" if count == 1 else "are photos"
    return (
        f"warning: {count} of the {len(scored)} {split} photos ({example}{', ...' if count > 1 else ''}) "
        f"{are} {model} was trained on, byte for byte ({Path(folder) / TRAINED_IMAGES}): the data "
        "set was converted again since it was trained? Its figures here overstate it"
    )
