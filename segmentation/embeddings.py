"""SAM image embeddings: computed once per image and encoder, cached on disk.

SAM's image encoder is frozen while the mask decoder is fine-tuned, and it is
by far the slow half (MobileSAM: ~2 s per image on a 2-core CPU against ~50 ms
for the decoder). Training, evaluation and the annotation app therefore read
one shared cache:

    <root>/<model_name>-<fingerprint[:16]>/meta.json
    <root>/<model_name>-<fingerprint[:16]>/<sha256 of the image file>.pt

Views of an image (a flipped copy, a zoomed crop: :mod:`segmentation.views`) are entries
``<sha256>-<view key>.pt`` beside it, so each is encoded once too.

A cache with ``part=`` (:class:`segmentation.encoder_part.EncoderPart`, for runs that train
the top of the encoder) stores what enters that top instead of the embedding, in
``<model_name>-<part>-<fingerprint of the frozen rest>/``.

The folder is keyed by :func:`encoder_fingerprint` (encoder weights and input
normalisation only), so new encoder weights start a new folder while a
fine-tuned mask decoder keeps hitting the old one. Entries are keyed by the
image bytes, not the path, so a renamed file is a hit and an edited one a miss.

Each entry stores the embedding as float16 (2 MB instead of 4 MB for a
256x64x64 embedding) with the geometry SAM needs to map prompts and masks
between the original image and the model input. The rounding moves the tiny
test SAM's decoder logits by at most ~1e-3 (measured in
``tests/segmentation/test_embeddings.py``); :class:`EmbeddingCache` returns the
rounded values on a miss as well as on a hit, so a first run and a rerun see
the same numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shlex
import sys
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import torch
from tqdm import tqdm

from common.errors import UserError, one_line, write_advice
from common.image_files import decode_image_file
from common.io import atomic_write, load_torch, remove_stale, save_torch, sha256_file
from segmentation.encoder_part import EncoderPart

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

logger = logging.getLogger(__name__)

#: Bumped when the entry layout or the image preprocessing changes; entries of
#: another version read as misses and are recomputed.
CACHE_FORMAT_VERSION = 1
#: On-disk dtype of the embeddings; they are always returned as float32.
STORAGE_DTYPE = torch.float16

_ENTRY_SUFFIX = ".pt"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, eq=False)
class ImageEmbedding:
    """One image as SAM's mask decoder sees it: what ``SamPredictor.set_image`` keeps.

    ``eq=False``: comparing tensors field-wise has no single truth value, so
    equality and hashing are by identity.

    Attributes:
        embedding: ``(C, h, w)`` float32 encoder output, e.g. ``(256, 64, 64)``
            (``SamPredictor.features`` without its batch axis), on the CPU.
        original_size: ``(H, W)`` of the image in pixels.
        input_size: ``(h, w)`` after ``ResizeLongestSide(img_size)`` and before
            the padding to ``img_size`` squared; the long side equals ``img_size``.
    """

    embedding: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]


def resized_size(original_size: tuple[int, int], img_size: int) -> tuple[int, int]:
    """``(h, w)`` of a photo of ``original_size`` once SAM resizes its longest side to ``img_size``.

    >>> resized_size((600, 800), 1024)
    (768, 1024)
    """
    # segment_anything imports torchvision, which imports torch._dynamo: seconds of every --help
    from segment_anything.utils.transforms import ResizeLongestSide

    return ResizeLongestSide.get_preprocess_shape(*original_size, img_size)


def encoder_fingerprint(sam: Sam, *, exclude: tuple[str, ...] = ()) -> str:
    """sha256 hex digest of everything that decides an image embedding.

    Covers the image encoder's state dict (names in sorted order, dtypes,
    shapes and raw bytes), its ``img_size`` and SAM's ``pixel_mean`` and
    ``pixel_std``. The prompt encoder and mask decoder are left out on purpose:
    fine-tuning them must not invalidate cached embeddings.

    Args:
        sam: any ``segment_anything`` SAM (ViT or MobileSAM's TinyViT encoder).
        exclude: state-dict key prefixes left out (the trained top of
            :class:`~segmentation.encoder_part.EncoderPart`, whose input does not depend on it).

    Returns:
        64 lowercase hex characters; equal for equal encoders on any device.
    """
    digest = hashlib.sha256()
    digest.update(f"img_size={int(sam.image_encoder.img_size)}\n".encode())
    _hash_tensor(digest, "pixel_mean", sam.pixel_mean)
    _hash_tensor(digest, "pixel_std", sam.pixel_std)
    if exclude:
        digest.update(f"exclude={','.join(exclude)}\n".encode())
    for name, tensor in sorted(sam.image_encoder.state_dict().items()):
        if not name.startswith(exclude):  # startswith(()) is False: nothing excluded
            _hash_tensor(digest, name, tensor)
    return digest.hexdigest()


def _hash_tensor(digest: hashlib._Hash, name: str, tensor: torch.Tensor) -> None:
    # The header fixes the byte count that follows, so names and data cannot
    # run into each other and collide.
    tensor = tensor.detach().to("cpu").contiguous()
    digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
    # Viewed as bytes rather than via numpy, which has no bfloat16.
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def load_rgb(path: str | Path) -> np.ndarray:
    """Reads an image file as SAM expects it: ``(H, W, 3)`` uint8 RGB.

    Grey images are repeated to three channels, an alpha channel is dropped and
    16-bit images are scaled to 8 bits (OpenCV's ``IMREAD_COLOR``).

    Raises:
        UserError: the file is missing, unreadable or not an image; the
            one-line message names the file.
    """
    return cv2.cvtColor(decode_image_file(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def embed_images(
    sam: Sam,
    images: Sequence[np.ndarray],
    device: str | torch.device | None = None,
    *,
    part: EncoderPart | None = None,
) -> list[ImageEmbedding]:
    """Runs SAM's image encoder on a batch of images, preprocessed as ``SamPredictor.set_image``.

    Each image is resized with ``ResizeLongestSide(img_size).apply_image``,
    normalised and padded by ``sam.preprocess``; the padded inputs are stacked
    into one encoder call.

    Args:
        sam: the model; moved to ``device`` when one is given (``sam.to``), as
            the encoder and its inputs must share a device.
        images: each ``(H, W, 3)`` uint8 RGB; sizes may differ.
        device: where to run the encoder; ``None`` runs it where ``sam`` is.
        part: keep what enters this trained top of the encoder (:meth:`EncoderPart.features`)
            instead of the embedding, in the ``embedding`` field.

    Returns:
        One :class:`ImageEmbedding` per image, in order, float32 on the CPU.
        They are ordinary tensors (not inference tensors), so training can
        back-propagate through a decoder that consumes them.

    Raises:
        ValueError: an image is not ``(H, W, 3)`` uint8.
    """
    if not images:
        return []
    for index, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image {index} must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    if device is not None:
        sam.to(device)
    from segment_anything.utils.transforms import ResizeLongestSide  # torchvision: not at import (--help)

    transform = ResizeLongestSide(sam.image_encoder.img_size)
    inputs, geometry = [], []
    for image in images:
        resized = transform.apply_image(image)
        tensor = torch.as_tensor(resized, device=sam.device).permute(2, 0, 1).contiguous()
        inputs.append(sam.preprocess(tensor[None]))
        geometry.append(((image.shape[0], image.shape[1]), (resized.shape[0], resized.shape[1])))
    if part is not None:
        features = part.features(sam, torch.cat(inputs))
    else:
        with torch.inference_mode():
            features = sam.image_encoder(torch.cat(inputs))
    # Cloned outside inference mode: inference tensors cannot be saved for
    # backward, and one clone per image keeps torch.save from writing the
    # whole batch's storage with each entry.
    return [
        ImageEmbedding(
            embedding=row.to("cpu", torch.float32).clone(), original_size=original, input_size=resized
        )
        for row, (original, resized) in zip(features, geometry, strict=True)
    ]


def check_stored_bytes(path: Path) -> None:
    """Checks every member of a torch zip file against the CRC-32 its writer stored.

    ``torch.load`` does not: an entry with bytes changed on disk (a bad sector, a copy cut short and
    padded, a shared cache on a flaky mount) loaded without an error, and its image was scored with a
    broken embedding (train IoU 0.839 -> 0.756 on ``hazelnut_toy`` for 100 bytes in one entry). About
    5 ms for a 2 MB entry.

    Raises:
        ValueError: a member fails its check.
        zipfile.BadZipFile: not a zip file at all (truncated, garbage).
    """
    with zipfile.ZipFile(path) as archive:
        broken = archive.testzip()
    if broken is not None:
        raise ValueError(f"{broken} does not match its stored CRC-32: changed on disk")


class EmbeddingCache:
    """On-disk cache of SAM image embeddings for one encoder (see the module docstring).

    Safe to share between processes and to interrupt: every entry is written
    to a temporary file in its folder and renamed into place, so a reader sees
    a whole entry or none, and two writers of one entry both write the same
    values. An unreadable entry (truncated, corrupt, another format version)
    reads as a miss and is recomputed.

    One object may be used from several threads at once: the annotation page's prefetch thread
    encodes whole photos with it while its decoder thread encodes zoomed crops (a prefetch run
    pauses inside the encoder for a decode), and request threads look entries up. Entries are
    written as above (each temporary named apart); :attr:`written` is counted under a lock.

    >>> cache = EmbeddingCache("runs/embeddings", sam, model_name="mobile_sam")  # doctest: +SKIP
    >>> entries = cache.embed(image_paths, batch_size=4)                         # doctest: +SKIP

    A folder the cache cannot write (read-only, a full disk) does not stop the work: an entry that
    cannot be stored is returned all the same, and one ``warning:`` line on stderr (the first time,
    per cache object) names the folder, says the embeddings are not being cached and how to fix it.

    Args:
        root: the cache root; one folder per encoder below it.
        sam: the model whose image encoder makes the embeddings.
        model_name: a readable prefix for the folder (e.g. ``"mobile_sam"``),
            a plain name without path separators.
        part: store the input of this trained top of the encoder instead of the embedding
            (see the module docstring); the folder is keyed by the frozen rest only.
        elsewhere: the warning's way round, after what frees the folder ("free space on its disk",
            "make <folder> writable"), in the command's words
            (``"pass --cache-dir <a writable folder> or --no-cache"``).
        required: storing is the point (``segmentation.embed``): an entry that cannot be stored is
            a :class:`UserError` instead of a warning.

    Raises:
        ValueError: ``model_name`` is empty or contains a path separator.
    """

    def __init__(
        self,
        root: str | Path,
        sam: Sam,
        *,
        model_name: str,
        part: EncoderPart | None = None,
        elsewhere: str = "use another cache folder",
        required: bool = False,
    ) -> None:
        if not model_name or model_name in {".", ".."} or any(sep in model_name for sep in "/\\"):
            raise ValueError(f"model_name must be a plain folder name, got {model_name!r}")
        if (Path(root) / "meta.json").is_file():  # the folder embed's closing line names, pasted as the root
            raise UserError(
                f"cache folder {root} is one encoder's folder inside an embedding cache (it holds "
                f"meta.json): pass the cache itself, {Path(root).parent}"
            )
        self.root = Path(root)
        self.sam = sam
        self.model_name = model_name
        self.part = part
        self.fingerprint = encoder_fingerprint(sam, exclude=part.prefixes(sam) if part else ())
        #: Folder of this encoder's entries; created on the first write.
        name = model_name if part is None else f"{model_name}-{part.name}"
        self.folder = self.root / f"{name}-{self.fingerprint[:16]}"
        # Leftovers of killed runs are looked for once per cache object, not per embed() call:
        # the inspection cascade calls embed() once per photo, and the folder can hold thousands.
        self._swept = False
        # Unreadable entries warned about: a ``path in cache`` before ``embed()`` warned twice for each.
        self._warned: set[Path] = set()
        #: Entries this object encoded and wrote (each one kept: :func:`noting_interrupts`).
        self.written = 0
        self._written_lock = threading.Lock()  # a read-modify-write, from any thread embedding
        self.elsewhere = elsewhere
        self.required = required
        #: Why entries are not being stored (the first failure's reason); None while they are.
        self.not_storing: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r})"

    def path_for(self, image_path: str | Path, view: ImageView | None = None) -> Path:
        """Where the entry of the image at ``image_path`` (or of its ``view``) lives, there or not."""
        return self._entry_path(_view_key(sha256_file(image_path, what="image"), view))

    def get(self, image_path: str | Path) -> ImageEmbedding | None:
        """The cached embedding of the image at ``image_path``, or ``None`` on a miss.

        Raises:
            UserError: the image file itself is missing or unreadable.
        """
        return self._read(sha256_file(image_path, what="image"))

    def __contains__(self, image_path: object) -> bool:
        if not isinstance(image_path, str | os.PathLike):
            return False
        return self.get(image_path) is not None

    def __len__(self) -> int:
        """Number of entry files in the folder (not validated; a corrupt one counts)."""
        if not self.folder.is_dir():
            return 0
        return sum(1 for path in self.folder.glob(f"*{_ENTRY_SUFFIX}") if _SHA256_HEX.fullmatch(path.stem))

    def embed(
        self,
        image_paths: Iterable[str | Path],
        *,
        batch_size: int = 4,
        device: str | torch.device | None = None,
        progress: bool = True,
        views: Sequence[ImageView | None] | None = None,
    ) -> list[ImageEmbedding]:
        """Embeddings of all ``image_paths``, computing and storing only the missing ones.

        Missing images are encoded ``batch_size`` at a time and each batch is
        written before the next starts, so an interrupted run keeps its
        finished batches and a rerun computes only the rest. Identical files
        are encoded once.

        Args:
            image_paths: image files (anything :func:`load_rgb` reads).
            batch_size: images per encoder call; memory grows with it (a
                1024-px input is 12 MB float32 before the encoder's own
                activations).
            device: where to run the encoder (see :func:`embed_images`);
                ``None`` runs it where the model is.
            progress: show a tqdm bar ``"embedding"`` over the missing images.
            views: per path, a view of the image to encode instead of the image itself (a
                flip, a crop: :class:`segmentation.views.View`), or None for the image; its
                ``key`` joins the image hash in the cache key, so each view is its own entry.

        Returns:
            One entry per path, in input order, float32 on the CPU, with the
            values a later :meth:`get` returns (rounded through float16). All
            are held in memory (4 MB each at 256x64x64): call this in chunks
            to fill a cache larger than RAM.

        Raises:
            UserError: an image is missing or unreadable; batches
                finished before it stay cached. Before anything is encoded: a folder
                where an entry goes. With ``required``: an encoder's folder that is not writable or searchable
                (before anything is encoded) or an entry that cannot be written (a full disk).
            ValueError: ``batch_size`` < 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._check_folder()
        searchable = self._check_searchable()
        if searchable:
            self._remove_stale_temporaries()
        paths = [Path(path) for path in image_paths]
        views = list(views) if views is not None else [None] * len(paths)
        keys = _cache_keys(paths, views)
        entries, missing = self._cached(keys, paths, read=searchable)
        if missing:
            view_of = dict(zip(keys, views, strict=True))
            self._encode_missing(
                missing, view_of, entries, batch_size=batch_size, device=device, progress=progress
            )
        return [entries[key] for key in keys]

    def _cached(
        self, keys: Sequence[str], paths: Sequence[Path], *, read: bool = True
    ) -> tuple[dict[str, ImageEmbedding], dict[str, Path]]:
        """The entries of ``keys`` the cache holds, and the image of each key it does not; each key once
        (identical files, the same view, are encoded once). Not ``read``: every key is missing."""
        entries: dict[str, ImageEmbedding] = {}
        missing: dict[str, Path] = {}
        for key, path in zip(keys, paths, strict=True):
            if key in entries or key in missing:
                continue
            entry = self._read(key) if read else None
            if entry is None:
                missing[key] = path
            else:
                entries[key] = entry
        return entries, missing

    def _encode_missing(
        self,
        missing: dict[str, Path],
        view_of: dict[str, ImageView | None],
        entries: dict[str, ImageEmbedding],
        *,
        batch_size: int,
        device: str | torch.device | None,
        progress: bool,
    ) -> None:
        """Encodes the image of each ``missing`` key (its view, ``view_of[key]``) ``batch_size`` at a time,
        stores each batch before the next starts and adds its entries to ``entries`` (as :meth:`embed`).

        Raises:
            UserError: as :meth:`embed`: before anything is encoded (:meth:`_check_writable`), or an image
                that cannot be read or an entry that cannot be written, the batches before it stored.
        """
        self._check_writable(missing)
        todo = list(missing.items())
        with tqdm(total=len(todo), desc="embedding", unit="img", disable=not progress) as bar:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                images = [_apply(view_of[key], _load_hashed(path, key)) for key, path in batch]
                encoded = embed_images(self.sam, images, device, part=self.part)
                for (key, path), entry in zip(batch, encoded, strict=True):
                    entries[key] = self._store(key, path, entry)
                bar.update(len(batch))

    def _entry_path(self, key: str) -> Path:
        return self.folder / f"{key}{_ENTRY_SUFFIX}"

    def _read(self, key: str) -> ImageEmbedding | None:
        path = self._entry_path(key)
        if not path.is_file():
            return None
        try:
            check_stored_bytes(path)
            payload = load_torch(path, what="embedding cache entry")
            if (
                payload["format_version"] != CACHE_FORMAT_VERSION
                or payload["fingerprint"] != self.fingerprint
            ):
                raise ValueError("written by another cache version or encoder")
            # an entry copied or renamed onto another's name (a cache mended by hand) held another image's
            # embedding, and was used for this one
            if payload["image_sha256"] != key:
                raise ValueError(f"it holds the embedding of another image ({payload['image_sha256']})")
            embedding = payload["embedding"]
            # (C, h, w) embeddings; an encoder part's input may be (h * w, C) tokens
            if not isinstance(embedding, torch.Tensor) or embedding.ndim not in (2, 3):
                raise ValueError("embedding is not a (C, h, w) tensor")
            original_size = _size_pair(payload["original_size"])
            input_size = _size_pair(payload["input_size"])
        # Anything unreadable (truncated zip, garbage, missing keys) is a miss
        # to recompute: the entry is derived data and cheap to rebuild.
        except Exception as error:
            if path not in self._warned:
                self._warned.add(path)
                logger.warning("recomputing unreadable embedding cache entry %s: %s", path, error)
            return None
        return ImageEmbedding(embedding.float(), original_size, input_size)

    def _check_folder(self) -> None:
        """Raises UserError when a file is where this encoder's entries go (the error was
        ``File exists: <it>``, as the first entry was written)."""
        if self.folder.exists() and not self.folder.is_dir():
            raise UserError(
                f"{self.folder} is a file, where the cache keeps this encoder's entries: move it away or "
                "use another cache folder"
            )

    def _check_searchable(self) -> bool:
        """Whether this encoder's entries can be looked up: not in a folder this user may not search (no
        ``x`` permission), where they can be neither read nor written. That one is the ``warning:`` of a
        folder that is not storing, or with ``required`` a UserError, naming it and ``chmod a+x``.

        From Python 3.13 ``Path.is_file`` is False for each entry there (3.11 raised): all were encoded
        again every run, with a warning that the folder "is not writable", which it may well be.
        """
        if not self.folder.is_dir() or os.access(self.folder, os.X_OK):
            return True
        reason = "it cannot be searched"
        fix = f"let it be searched (chmod a+x {shlex.quote(str(self.folder))})"
        if self.required:
            raise UserError(
                f"cannot use the embedding cache {self.folder}: {reason}; {fix} or {self.elsewhere}"
            )
        self._not_storing(reason, fix)
        return False

    def _check_writable(self, missing: dict[str, Path]) -> None:
        """Refuses, before anything is encoded, entries that could not be written.

        A folder (or a pipe) where an entry goes, or an encoder's folder this user cannot write, failed
        only once the image was encoded, as ``Is a directory: <entry> (from <its temporary>)``. The
        latter is the ``warning:`` of a folder that is not storing, unless storing is ``required``.

        Args:
            missing: the image of each entry to be written, by its key.

        Raises:
            UserError: naming the entry (or, ``required``, the folder), and the way on.
        """
        if self.folder.is_dir() and not os.access(self.folder, os.X_OK):
            return  # no entry there can be looked at: _check_searchable said so
        if self.folder.is_dir() and not os.access(self.folder, os.W_OK | os.X_OK):
            if self.required:
                raise UserError(
                    f"cannot write the embedding cache {self.folder}: it is not writable; make it writable "
                    f"or {self.elsewhere}"
                )
            self._not_storing("it is not writable", "make it writable")
        for key, image in missing.items():
            entry = self._entry_path(key)
            if entry.exists() and not entry.is_file():
                what = "a folder" if entry.is_dir() else "not a file"
                raise UserError(
                    f"cannot write the embedding of {image}: {entry} is {what}, where the cache keeps that "
                    "entry; move it away or delete it"
                )

    def _remove_stale_temporaries(self) -> None:
        """Deletes the half-written entries of runs that were killed (never those of a live run)."""
        if self._swept:
            return
        self._swept = True
        removed = remove_stale(self.folder, ".*.tmp")
        if removed:
            logger.warning("removed %d half-written entries of killed runs in %s", len(removed), self.folder)

    def _store(self, key: str, image: Path, entry: ImageEmbedding) -> ImageEmbedding:
        """:meth:`_write`, or ``entry`` rounded as a hit would read it when the folder refuses it.

        Raises:
            UserError: with ``required``, the folder refuses the entry (full, read-only).
        """
        rounded = ImageEmbedding(
            entry.embedding.to(STORAGE_DTYPE).float(), entry.original_size, entry.input_size
        )
        if self.not_storing is not None and not os.access(self.folder, os.W_OK | os.X_OK):
            return rounded  # read-only: every entry would fail the same way (a full disk is tried again)
        try:
            self._write_meta()
            written = self._write(key, entry)
        except OSError as error:  # atomic_write removed its temporary: no half entry is left
            reason = error.strerror or one_line(error)
            if self.required:
                raise UserError(
                    f"cannot store the embedding of {image} in the cache {self.folder}: {reason}; "
                    f"{write_advice(error, self.folder)} or {self.elsewhere}"
                ) from None
            self._not_storing(reason, write_advice(error, self.folder))
            return rounded
        with self._written_lock:
            self.written += 1
        return written

    def _not_storing(self, reason: str, fix: str) -> None:
        """The ``warning:`` line that entries are not being stored, once per cache object.

        Args:
            reason: why the folder refused an entry (``No space left on device``).
            fix: what frees it (:func:`~common.errors.write_advice`), before :attr:`elsewhere`.
        """
        with self._written_lock:
            if self.not_storing is not None:
                return
            self.not_storing = reason
        print(
            f"warning: cannot write the embedding cache {self.folder} ({reason}): embeddings are computed "
            f"but not cached, so the next run computes them again; {fix} or {self.elsewhere}",
            file=sys.stderr,
            flush=True,
        )

    def _write(self, key: str, entry: ImageEmbedding) -> ImageEmbedding:
        stored = entry.embedding.to(STORAGE_DTYPE).contiguous()
        payload = {
            "format_version": CACHE_FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "image_sha256": key,
            "embedding": stored,
            "original_size": list(entry.original_size),
            "input_size": list(entry.input_size),
        }
        save_torch(payload, self._entry_path(key))
        self._warned.discard(self._entry_path(key))  # rewritten: damaged again later, it is told again
        # Rounded like a later hit, so a first run and a rerun see the same values.
        return ImageEmbedding(stored.float(), entry.original_size, entry.input_size)

    def _write_meta(self) -> None:
        path = self.folder / "meta.json"
        if path.is_file():
            return
        meta = {
            "model_name": self.model_name,
            "fingerprint": self.fingerprint,
            "img_size": int(self.sam.image_encoder.img_size),
            "format_version": CACHE_FORMAT_VERSION,
            "storage_dtype": str(STORAGE_DTYPE).removeprefix("torch."),
        }
        if self.part is not None:
            meta["stores"] = f"input of the image encoder's '{self.part.name}' (train_encoder)"
        atomic_write(path, json.dumps(meta, indent=2) + "\n")


@contextlib.contextmanager
def noting_interrupts(
    cache: EmbeddingCache | None,
    paths: Sequence[str | Path] | None = None,
    views: Sequence[ImageView | None] | None = None,
) -> Iterator[None]:
    """On a Ctrl-C inside, prints :func:`interrupt_note` on stderr, then lets the interrupt go on.

    For every command that fills the cache (``segmentation.embed``, ``.train``, ``.evaluate``, the
    inspection cascade, ``anomaly.predict`` and ``.evaluate`` with SAM masks): their Ctrl-C said
    ``interrupted`` alone, not that the embeddings encoded so far are kept and that running the command
    again skips them.

    Args:
        cache: the cache being filled; None (a run without cache) notes nothing.
        paths, views: what is asked of it inside, as given to :meth:`EmbeddingCache.embed`; None when
            it is not known in advance (the cascade encodes each photo as it comes).
    """
    try:
        yield
    except KeyboardInterrupt:
        if cache is not None and (note := interrupt_note(cache, paths, views)):
            print(note, file=sys.stderr, flush=True)
        raise


def interrupt_note(
    cache: EmbeddingCache,
    paths: Sequence[str | Path] | None = None,
    views: Sequence[ImageView | None] | None = None,
) -> str | None:
    """The ``stopped:`` line of a Ctrl-C: how many embeddings the cache keeps, and what a rerun encodes.

    Every finished batch is in the cache (:meth:`EmbeddingCache.embed`); the images were hashed
    before they were encoded, so counting them again costs a ``stat`` each.

    Args:
        cache: the cache being filled.
        paths: every image of the run, in order (a path named twice counts twice); None: the line
            names what this run encoded alone (None when that is nothing).
        views: per path, its view (as :meth:`EmbeddingCache.embed` takes them); None: the images.
    """
    if paths is None:
        kept = kept_note(cache)
        return None if kept is None else f"stopped: {kept}; the same command again reuses them"
    views = list(views) if views is not None else [None] * len(paths)
    kept = 0
    for path, view in zip(paths, views, strict=True):
        with contextlib.suppress(UserError):  # an image deleted meanwhile: a re-run names it
            kept += cache.path_for(path, view).is_file()
    unit = "embeddings" if any(view is not None and view.key for view in views) else "images"
    if kept == 0:  # it said "0 of 16 images are in the cache <a folder not made> (0 encoded ..., kept)"
        n = len(paths)
        return f"stopped before any of the {n} {unit} was cached: the same command again encodes them all"
    return (
        f"stopped: {kept} of {len(paths)} {unit} are in the cache {cache.folder} ({cache.written} encoded "
        f"by this run, kept); the same command again encodes only the other {len(paths) - kept}"
    )


def kept_note(cache: EmbeddingCache) -> str | None:
    """``N embeddings encoded by this run are kept in the cache <folder>``; None when it encoded none.

    :func:`interrupt_note`'s words for a run whose images are not known in advance, and the annotation
    page's on stopping (its server takes the Ctrl-C itself).
    """
    if not cache.written:
        return None
    written = f"{cache.written} embeddings encoded by this run are"
    if cache.written == 1:
        written = "1 embedding encoded by this run is"
    return f"{written} kept in the cache {cache.folder}"


class ImageView(Protocol):
    """What :meth:`EmbeddingCache.embed` needs of a view (:class:`segmentation.views.View`)."""

    @property
    def key(self) -> str: ...

    def apply(self, image: np.ndarray) -> np.ndarray: ...


def _cache_keys(paths: Sequence[Path], views: Sequence[ImageView | None]) -> list[str]:
    """The cache key of each path's view (:func:`_view_key` of the file's sha256): identical files, the
    same view, get the same key.

    Raises:
        UserError: an image is missing or unreadable.
        ValueError: not one view per path.
    """
    if len(views) != len(paths):
        raise ValueError(f"{len(views)} views for {len(paths)} images")
    return [_view_key(sha256_file(path, what="image"), view) for path, view in zip(paths, views, strict=True)]


def _view_key(image_key: str, view: ImageView | None) -> str:
    """The cache key of a view: the image's sha256, then ``-`` and the view's key (none for the image)."""
    suffix = "" if view is None else view.key
    return f"{image_key}-{suffix}" if suffix else image_key


def _load_hashed(path: Path, key: str) -> np.ndarray:
    """:func:`load_rgb` of the image whose bytes were hashed to ``key`` (a view's key too).

    The images are hashed before the first is encoded: a photo rewritten meanwhile (a camera still
    writing it, a folder being synced) was encoded from its new bytes and stored under its old hash,
    where a later run of the old photo read it. The file is hashed again after it was read
    (:func:`~common.io.sha256_file` remembers an unchanged file: no second read).

    Raises:
        UserError: the file changed since it was hashed, or cannot be read.
    """
    image = load_rgb(path)
    if sha256_file(path, what="image") != key.split("-", 1)[0]:
        raise UserError(
            f"image {path} changed on disk while it was being embedded: run again once nothing writes to it"
        )
    return image


def _apply(view: ImageView | None, image: np.ndarray) -> np.ndarray:
    return image if view is None else np.ascontiguousarray(view.apply(image))


def _size_pair(value: object) -> tuple[int, int]:
    height, width = value  # type: ignore[misc]
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise ValueError(f"bad size {value!r}")
    return height, width
