"""SAM image embeddings: parity with ``SamPredictor.set_image`` and the on-disk cache's contract.

The cache tests count calls to the image encoder, so "hit" and "miss" are
observed, not inferred from timings or file listings.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

import common.io as common_io
import segmentation.embeddings as embeddings_module
from common.errors import UserError
from common.io import sha256_file, temporary_path
from segmentation.embeddings import (
    CACHE_FORMAT_VERSION,
    EmbeddingCache,
    ImageEmbedding,
    embed_images,
    encoder_fingerprint,
    load_rgb,
)
from segmentation.predict import decode

MODEL_NAME = "tiny"


def noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` uint8 noise; different seeds give different bytes."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


@pytest.fixture
def encoder_calls(tiny_sam: Sam, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Batch sizes of every call to ``tiny_sam``'s image encoder, in order."""
    calls: list[int] = []
    forward = tiny_sam.image_encoder.forward

    def counting_forward(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        return forward(x)

    monkeypatch.setattr(tiny_sam.image_encoder, "forward", counting_forward)
    return calls


@pytest.fixture
def image_files(tmp_path: Path, image_writer) -> list[Path]:
    """Five small PNGs of different sizes and contents (the encoder sees 256 px whatever the size)."""
    sizes = [(24, 40), (40, 24), (32, 32), (20, 36), (36, 20)]
    return [
        image_writer(tmp_path / "images" / f"{i:03d}.png", noise_image(h, w, seed=i))
        for i, (h, w) in enumerate(sizes)
    ]


def assert_same_embedding(a: ImageEmbedding, b: ImageEmbedding) -> None:
    assert torch.equal(a.embedding, b.embedding)
    assert a.original_size == b.original_size and a.input_size == b.input_size


def tmp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.tmp"))


# --- embed_images: SamPredictor parity ---------------------------------------------------------


@pytest.mark.parametrize("shape", [(120, 200), (200, 120)], ids=["landscape", "portrait"])
def test_embed_images_matches_sam_predictor_on_non_square_images(tiny_sam: Sam, shape) -> None:
    image = noise_image(*shape)
    predictor = SamPredictor(tiny_sam)
    predictor.set_image(image)

    (emb,) = embed_images(tiny_sam, [image])

    torch.testing.assert_close(emb.embedding, predictor.features[0])
    assert emb.original_size == tuple(predictor.original_size) == shape
    assert emb.input_size == tuple(predictor.input_size)
    assert max(emb.input_size) == tiny_sam.image_encoder.img_size
    assert emb.embedding.dtype == torch.float32 and emb.embedding.device.type == "cpu"
    # Training back-propagates through a decoder fed with it: no inference tensor.
    assert not emb.embedding.is_inference() and not emb.embedding.requires_grad


def test_batch_of_different_sizes_equals_one_by_one(tiny_sam: Sam) -> None:
    images = [noise_image(120, 200, 1), noise_image(200, 120, 2), noise_image(64, 64, 3)]

    batch = embed_images(tiny_sam, images)
    single = [embed_images(tiny_sam, [image])[0] for image in images]

    assert len(batch) == 3
    for b, s in zip(batch, single, strict=True):
        torch.testing.assert_close(b.embedding, s.embedding, rtol=1e-5, atol=1e-5)
        assert b.original_size == s.original_size and b.input_size == s.input_size
    # One row per image, not a view of the batch (torch.save would write the whole batch).
    assert batch[0].embedding.untyped_storage().nbytes() == batch[0].embedding.numel() * 4


def test_embed_images_of_nothing_is_empty(tiny_sam: Sam, encoder_calls: list[int]) -> None:
    assert embed_images(tiny_sam, []) == []
    assert encoder_calls == []


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((8, 8), np.uint8),  # grey, no channel axis
        np.zeros((8, 8, 4), np.uint8),  # RGBA
        np.zeros((8, 8, 3), np.float32),  # float
    ],
    ids=["grey", "rgba", "float"],
)
def test_embed_images_rejects_non_rgb_uint8(tiny_sam: Sam, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"image 1 must be \(H, W, 3\) uint8"):
        embed_images(tiny_sam, [noise_image(8, 8), image])


# --- load_rgb and file_sha256 ------------------------------------------------------------------


def test_load_rgb_reverses_opencv_bgr(tmp_path: Path, image_writer) -> None:
    bgr = noise_image(6, 10)
    path = image_writer(tmp_path / "colour.png", bgr)
    rgb = load_rgb(path)
    assert rgb.shape == (6, 10, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])


def test_load_rgb_repeats_grey_to_three_channels(tmp_path: Path, image_writer) -> None:
    grey = noise_image(6, 10)[..., 0]
    rgb = load_rgb(image_writer(tmp_path / "grey.png", grey))
    assert rgb.shape == (6, 10, 3) and rgb.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], grey)


def test_load_rgb_drops_alpha(tmp_path: Path, image_writer) -> None:
    bgra = noise_image(6, 10)
    bgra = np.dstack([bgra, np.full((6, 10), 7, np.uint8)])  # nearly transparent: still dropped, not blended
    rgb = load_rgb(image_writer(tmp_path / "rgba.png", bgra))
    assert rgb.shape == (6, 10, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, bgra[..., 2::-1])


def test_load_rgb_scales_16_bit_to_8_bit(tmp_path: Path, image_writer) -> None:
    grey16 = np.array([[0, 256, 65535]], np.uint16)
    rgb = load_rgb(image_writer(tmp_path / "deep.png", grey16))
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 1, 255])


@pytest.mark.parametrize("content", [b"", b"not an image at all", None], ids=["empty", "garbage", "missing"])
def test_load_rgb_names_the_bad_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match="bad.png"):
        load_rgb(path)


def test_load_rgb_rejects_a_truncated_png(tmp_path: Path, image_writer) -> None:
    path = image_writer(tmp_path / "cut.png", noise_image(32, 32))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(UserError, match="cut.png"):
        load_rgb(path)


# --- encoder_fingerprint -----------------------------------------------------------------------


def test_fingerprint_is_a_stable_hex_digest(tiny_sam_builder) -> None:
    a, b = tiny_sam_builder(seed=0), tiny_sam_builder(seed=0)
    fingerprint = encoder_fingerprint(a)
    assert len(fingerprint) == 64 and set(fingerprint) <= set("0123456789abcdef")
    assert fingerprint == encoder_fingerprint(b) == encoder_fingerprint(a)


def change_one_weight(sam: Sam) -> None:
    with torch.no_grad():
        sam.image_encoder.blocks[0].mlp.lin1.bias[0] += 1e-3


def change_pixel_mean(sam: Sam) -> None:
    sam.pixel_mean[0] += 1.0


def change_pixel_std(sam: Sam) -> None:
    sam.pixel_std[0] += 1.0


def change_img_size(sam: Sam) -> None:
    sam.image_encoder.img_size *= 2


def reshape_one_weight(sam: Sam) -> None:
    lin1 = sam.image_encoder.blocks[0].mlp.lin1
    lin1.bias = torch.nn.Parameter(lin1.bias.detach().reshape(2, -1))  # same bytes, another shape


@pytest.mark.parametrize(
    "change",
    [change_one_weight, change_pixel_mean, change_pixel_std, change_img_size, reshape_one_weight],
    ids=["weight", "pixel_mean", "pixel_std", "img_size", "shape"],
)
def test_fingerprint_changes_with_what_decides_the_embedding(tiny_sam: Sam, change) -> None:
    before = encoder_fingerprint(tiny_sam)
    change(tiny_sam)
    assert encoder_fingerprint(tiny_sam) != before


def test_fingerprint_differs_between_seeds(tiny_sam_builder) -> None:
    assert encoder_fingerprint(tiny_sam_builder(seed=0)) != encoder_fingerprint(tiny_sam_builder(seed=1))


def test_fingerprint_ignores_the_decoder_and_prompt_encoder(tiny_sam: Sam) -> None:
    before = encoder_fingerprint(tiny_sam)
    with torch.no_grad():
        for parameter in [*tiny_sam.mask_decoder.parameters(), *tiny_sam.prompt_encoder.parameters()]:
            parameter.add_(0.5)
    assert encoder_fingerprint(tiny_sam) == before


# --- EmbeddingCache ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a/b", "a\\b", "", ".", ".."])
def test_cache_rejects_a_model_name_that_is_not_a_plain_folder(tmp_path: Path, tiny_sam: Sam, name) -> None:
    with pytest.raises(ValueError, match="model_name"):
        EmbeddingCache(tmp_path, tiny_sam, model_name=name)


def test_a_cache_root_that_is_one_encoders_folder_is_refused(
    tmp_path: Path, tiny_sam: Sam, image_files
) -> None:
    # segmentation.embed's closing line names <root>/<model>-<hash>: passed back as --cache-dir, every
    # image was encoded again into <root>/<model>-<hash>/<model>-<hash> without a word
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    cache.embed(image_files[:1], progress=False)
    message = f"pass the cache itself, {tmp_path / 'cache'}$"
    with pytest.raises(UserError, match=f"^cache folder {cache.folder} is one encoder's folder .*{message}"):
        EmbeddingCache(cache.folder, tiny_sam, model_name=MODEL_NAME)


def test_a_file_where_the_encoders_folder_goes_is_named_for_what_it_is(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int]
) -> None:
    # the error was "File exists: <folder>", which reads as if the cache had refused an entry
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    cache.folder.parent.mkdir()
    cache.folder.write_text("not the cache's")
    message = f"^{cache.folder} is a file, where the cache keeps this encoder's entries: move it away or use"
    with pytest.raises(UserError, match=message):
        cache.embed(image_files[:1], progress=False)
    assert cache.folder.read_text() == "not the cache's" and encoder_calls == []


def test_a_folder_where_an_entry_goes_is_named_before_anything_is_encoded(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int]
) -> None:
    # it failed only once the image was encoded, as 'Is a directory: <entry> (from <its temporary>)'
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    cache.embed(image_files[:1], progress=False)
    entry = cache.path_for(image_files[2])
    entry.mkdir()
    message = (
        f"^cannot write the embedding of {image_files[2]}: {entry} is a folder, where the cache keeps that "
        "entry; move it away or delete it$"
    )
    with pytest.raises(UserError, match=message):
        cache.embed(image_files, progress=False)
    assert encoder_calls == [1] and entry.is_dir() and image_files[1] not in cache


def stored_run(root: Path, sam: Sam, image_files: list[Path]) -> list[ImageEmbedding]:
    """What a cache that stores returns for the first image, then all in batches of 2 (the tests' calls)."""
    cache = EmbeddingCache(root, sam, model_name=MODEL_NAME)
    cache.embed(image_files[:1], progress=False)
    return cache.embed(image_files, batch_size=2, progress=False)


def not_writable(cache: EmbeddingCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cache.folder`` reads as not writable, and as searchable (os.access is replaced: the tests may run as
    root)."""
    access = os.access
    monkeypatch.setattr(
        embeddings_module.os,
        "access",
        lambda path, mode: not (Path(path) == cache.folder and mode & os.W_OK) and access(path, mode),
    )


def test_an_encoders_folder_that_is_not_writable_is_used_without_storing_and_warned_once(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int], monkeypatch, capsys
) -> None:
    # a shared cache another user filled: the first batch was encoded, then 'Permission denied: <temporary>'
    # stopped the run, although every embedding it needed could be computed
    cache = EmbeddingCache(
        tmp_path / "cache", tiny_sam, model_name=MODEL_NAME, elsewhere="pass --cache-dir X"
    )
    cache.embed(image_files[:1], progress=False)
    expected = stored_run(tmp_path / "other", tiny_sam, image_files)
    capsys.readouterr()
    not_writable(cache, monkeypatch)
    entries = cache.embed(image_files, batch_size=2, progress=False)
    cache.embed(image_files[1:2], progress=False)  # a second call: no second warning
    for got, want in zip(entries, expected, strict=True):
        assert_same_embedding(got, want)  # rounded as a hit would read them
    assert len(cache) == 1 and cache.written == 1 and tmp_files(cache.folder) == []
    assert capsys.readouterr().err == (
        f"warning: cannot write the embedding cache {cache.folder} (it is not writable): embeddings are "
        "computed but not cached, so the next run computes them again; make it writable or pass "
        "--cache-dir X\n"
    )


def test_an_encoders_folder_that_is_not_writable_is_refused_where_storing_is_required(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int], monkeypatch
) -> None:
    # segmentation.embed: filling the cache is its point
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME, required=True)
    cache.embed(image_files[:1], progress=False)
    not_writable(cache, monkeypatch)
    message = f"^cannot write the embedding cache {cache.folder}: it is not writable; make it writable or use"
    with pytest.raises(UserError, match=message):
        cache.embed(image_files, progress=False)
    assert encoder_calls == [1]
    cache.embed(image_files[:1], progress=False)  # all cached: nothing to write, nothing refused


def test_an_encoders_folder_that_cannot_be_searched_is_named_so_and_used_without_storing(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int], unsearchable, capsys
) -> None:
    # Python 3.13's Path.is_file is False for its entries: all were encoded again every run, with the
    # warning 'it is not writable; make it writable', which left it as it was
    cache = EmbeddingCache(
        tmp_path / "cache", tiny_sam, model_name=MODEL_NAME, elsewhere="pass --cache-dir X"
    )
    cache.embed(image_files[:2], progress=False)
    capsys.readouterr()
    encoder_calls.clear()
    unsearchable(cache.folder)
    entries = cache.embed(image_files, batch_size=2, progress=False)
    cache.embed(image_files[:1], progress=False)  # a second call: no second warning
    assert [entry.original_size for entry in entries] == [(24, 40), (40, 24), (32, 32), (20, 36), (36, 20)]
    assert encoder_calls == [2, 2, 1, 1] and cache.written == 2  # nothing stored: none could be looked up
    assert capsys.readouterr().err == (
        f"warning: cannot write the embedding cache {cache.folder} (it cannot be searched): embeddings are "
        f"computed but not cached, so the next run computes them again; let it be searched (chmod a+x "
        f"{cache.folder}) or pass --cache-dir X\n"
    )


def test_an_encoders_folder_that_cannot_be_searched_is_refused_where_storing_is_required(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int], unsearchable
) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME, required=True)
    cache.embed(image_files[:1], progress=False)
    unsearchable(cache.folder)
    message = (
        f"^cannot use the embedding cache {cache.folder}: it cannot be searched; let it be searched "
        f"\\(chmod a\\+x {cache.folder}\\) or use another cache folder$"
    )
    with pytest.raises(UserError, match=message):
        cache.embed(image_files, progress=False)
    assert encoder_calls == [1]  # refused before anything was encoded


def refusing_writes(monkeypatch: pytest.MonkeyPatch, code: int) -> list[int]:
    """Files written atomically take 1000 bytes, then fail with ``code``; returns the bytes they took."""
    taken = [0]

    class Refusing:  # the open temporary, as the disk answers it
        def __init__(self, file) -> None:
            self._file = file

        def write(self, data: bytes) -> int:
            if taken[0] >= 1000:
                raise OSError(code, os.strerror(code))
            taken[0] += len(data)
            return self._file.write(data)

        def __getattr__(self, name: str) -> object:
            return getattr(self._file, name)

    init = common_io._Written.__init__
    monkeypatch.setattr(common_io._Written, "__init__", lambda self, file: init(self, Refusing(file)))
    return taken


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (errno.ENOSPC, "free space on its disk"),
        (errno.EROFS, "make {folder} writable"),
        # a file where a folder of the path should be: 'make it writable' could not help
        (errno.ENOTDIR, "a file stands where a folder of that path should be: move it away"),
    ],
)
def test_a_cache_that_refuses_its_entries_returns_them_unstored_and_warns_once(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int], monkeypatch, capsys, code, fix
) -> None:
    # a full disk: 'cannot embed a.png: [Errno 28] No space left on device' on the annotation page, an error
    # ending training or evaluation, after the embedding was computed
    expected = stored_run(tmp_path / "other", tiny_sam, image_files)
    capsys.readouterr()
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    cache.embed(image_files[:1], progress=False)
    written = refusing_writes(monkeypatch, code)
    encoder_calls.clear()
    entries = cache.embed(image_files, batch_size=2, progress=False)
    assert written[0] >= 1000 and encoder_calls == [2, 2]
    for got, want in zip(entries, expected, strict=True):
        assert_same_embedding(got, want)
    # no half-written entry left or read: the folder holds the first entry alone, and misses read as misses
    assert len(cache) == 1 and tmp_files(cache.folder) == [] and cache.written == 1
    assert image_files[0] in cache and image_files[1] not in cache
    err = capsys.readouterr().err
    assert err == (
        f"warning: cannot write the embedding cache {cache.folder} ({os.strerror(code)}): embeddings are "
        "computed but not cached, so the next run computes them again; "
        f"{fix.format(folder=cache.folder)} or use another cache folder\n"
    )
    monkeypatch.undo()  # space again: the next run stores them
    cache.embed(image_files, progress=False)
    assert len(cache) == len(set(map(sha256_file, image_files)))


def test_a_cache_that_must_store_names_the_image_the_disk_refused(
    tmp_path: Path, tiny_sam: Sam, image_files, monkeypatch
) -> None:
    cache = EmbeddingCache(
        tmp_path / "cache", tiny_sam, model_name=MODEL_NAME, elsewhere="pass --cache-dir X", required=True
    )
    refusing_writes(monkeypatch, errno.ENOSPC)
    message = (
        f"^cannot store the embedding of {image_files[0]} in the cache {cache.folder}: No space left on "
        "device; free space on its disk or pass --cache-dir X$"
    )
    with pytest.raises(UserError, match=message):
        cache.embed(image_files[:1], progress=False)
    assert len(cache) == 0 and tmp_files(cache.folder) == []


@pytest.mark.parametrize("batch_size", [0, -1])
def test_cache_rejects_batch_size_below_one(tmp_path: Path, tiny_sam: Sam, image_files, batch_size) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    with pytest.raises(ValueError, match="batch_size"):
        cache.embed(image_files, batch_size=batch_size)


def test_miss_then_hit(tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int]) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    assert cache.get(image_files[0]) is None and image_files[0] not in cache and len(cache) == 0

    first = cache.embed(image_files, batch_size=2, progress=False)
    assert encoder_calls == [2, 2, 1]

    second = cache.embed(image_files, batch_size=2, progress=False)
    assert encoder_calls == [2, 2, 1], "a hit must not run the encoder"
    for a, b, path in zip(first, second, image_files, strict=True):
        # Exactly equal: a miss returns the float16-rounded values a hit reads back.
        assert_same_embedding(a, b)
        assert_same_embedding(a, cache.get(path))
        assert a.original_size == load_rgb(path).shape[:2]
        assert b.embedding.dtype == torch.float32 and not b.embedding.is_inference()
    assert all(path in cache for path in image_files) and len(cache) == 5
    assert 42 not in cache


def test_cached_values_are_the_float16_rounded_embedding(tmp_path: Path, tiny_sam: Sam, image_files) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    (cached,) = cache.embed(image_files[:1], progress=False)
    (exact,) = embed_images(tiny_sam, [load_rgb(image_files[0])])
    torch.testing.assert_close(cached.embedding, exact.embedding.half().float(), rtol=0, atol=0)
    assert not torch.equal(cached.embedding, exact.embedding)  # the rounding did happen
    assert cached.original_size == exact.original_size and cached.input_size == exact.input_size


def test_float16_storage_moves_decoder_logits_little(tmp_path: Path, tiny_sam: Sam, image_writer) -> None:
    path = image_writer(tmp_path / "wide.png", noise_image(120, 200))
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    (cached,) = cache.embed([path], progress=False)
    (exact,) = embed_images(tiny_sam, [load_rgb(path)])
    prompts = {
        "boxes": np.array([[20, 10, 150, 100], [5, 5, 60, 40]]),
        "point_coords": np.array([[[80, 50], [10, 100]], [[30, 20], [180, 110]]]),
        "point_labels": np.array([[1, 0], [1, 0]]),
    }
    with torch.no_grad():
        logits_16, iou_16 = decode(tiny_sam, cached, **prompts)
        logits_32, iou_32 = decode(tiny_sam, exact, **prompts)
    # Measured 8e-5 for this tiny SAM (logits up to ~0.2); the module docstring says "at most ~1e-3".
    assert (logits_16 - logits_32).abs().max() < 1e-2
    assert (iou_16 - iou_32).abs().max() < 1e-2


def test_cache_layout(tmp_path: Path, tiny_sam: Sam, image_files) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    fingerprint = encoder_fingerprint(tiny_sam)
    assert cache.fingerprint == fingerprint
    assert cache.folder == tmp_path / "cache" / f"{MODEL_NAME}-{fingerprint[:16]}"
    assert not cache.folder.exists(), "nothing is written before the first miss"

    cache.embed(image_files[:2], progress=False)

    meta = json.loads((cache.folder / "meta.json").read_text())
    assert meta == {
        "model_name": MODEL_NAME,
        "fingerprint": fingerprint,
        "img_size": 256,
        "format_version": CACHE_FORMAT_VERSION,
        "storage_dtype": "float16",
    }
    entry = cache.path_for(image_files[0])
    assert entry == cache.folder / f"{sha256_file(image_files[0])}.pt" and entry.is_file()
    payload = torch.load(entry, weights_only=True)
    assert payload["embedding"].dtype == torch.float16 and payload["embedding"].shape == (32, 16, 16)
    assert sorted(p.name for p in cache.folder.iterdir()) == sorted(
        ["meta.json", *(f"{sha256_file(p)}.pt" for p in image_files[:2])]
    )


def test_changed_image_bytes_are_a_miss(
    tmp_path: Path, tiny_sam: Sam, image_writer, encoder_calls: list[int]
) -> None:
    path = image_writer(tmp_path / "a.png", noise_image(24, 40, seed=0))
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    (before,) = cache.embed([path], progress=False)

    image_writer(path, noise_image(24, 40, seed=1))  # same name, new pixels
    (after,) = cache.embed([path], progress=False)

    assert encoder_calls == [1, 1]
    assert not torch.equal(before.embedding, after.embedding)
    assert len(cache) == 2


def test_renamed_identical_file_is_a_hit(tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    (before,) = cache.embed(image_files[:1], progress=False)
    renamed = tmp_path / "elsewhere" / "renamed.png"
    renamed.parent.mkdir()
    image_files[0].rename(renamed)

    (after,) = cache.embed([renamed], progress=False)

    assert encoder_calls == [1]
    assert_same_embedding(before, after)


@pytest.mark.parametrize("other", ["other_seed", "one_weight_changed"])
def test_another_encoder_gets_its_own_folder_and_no_stale_hit(
    tmp_path: Path, tiny_sam_builder, image_files, other: str
) -> None:
    sam_a = tiny_sam_builder(seed=0)
    if other == "other_seed":
        sam_b = tiny_sam_builder(seed=1)
    else:
        sam_b = tiny_sam_builder(seed=0)
        change_one_weight(sam_b)
    cache_a = EmbeddingCache(tmp_path / "cache", sam_a, model_name=MODEL_NAME)
    (from_a,) = cache_a.embed(image_files[:1], progress=False)

    cache_b = EmbeddingCache(tmp_path / "cache", sam_b, model_name=MODEL_NAME)
    assert cache_b.fingerprint != cache_a.fingerprint and cache_b.folder != cache_a.folder
    assert cache_b.get(image_files[0]) is None
    (from_b,) = cache_b.embed(image_files[:1], progress=False)

    (expected_b,) = embed_images(sam_b, [load_rgb(image_files[0])])
    torch.testing.assert_close(from_b.embedding, expected_b.embedding.half().float(), rtol=0, atol=0)
    assert not torch.equal(from_a.embedding, from_b.embedding)
    assert_same_embedding(from_a, cache_a.get(image_files[0]))  # the old folder is left as it was


def test_entry_of_another_encoder_in_the_folder_is_not_used(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls, caplog: pytest.LogCaptureFixture
) -> None:
    # Folders are named by 16 hex digits only; the full fingerprint in the entry decides.
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    cache.embed(image_files[:1], progress=False)
    entry = cache.path_for(image_files[0])
    payload = torch.load(entry, weights_only=True)
    torch.save({**payload, "fingerprint": "0" * 64, "embedding": payload["embedding"] + 1}, entry)

    with caplog.at_level(logging.WARNING, logger="segmentation.embeddings"):
        (again,) = cache.embed(image_files[:1], progress=False)

    assert encoder_calls == [1, 1]
    assert "another cache version or encoder" in caplog.text
    torch.testing.assert_close(again.embedding, payload["embedding"].float(), rtol=0, atol=0)


def test_an_entry_of_another_image_under_this_images_name_is_not_used(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls, caplog: pytest.LogCaptureFixture
) -> None:
    # a cache mended by hand: one image's entry copied onto another's name, same encoder and version
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    first, second = cache.embed(image_files[:2], progress=False)
    shutil.copyfile(cache.path_for(image_files[0]), cache.path_for(image_files[1]))

    with caplog.at_level(logging.WARNING, logger="segmentation.embeddings"):
        (again,) = cache.embed(image_files[1:2], progress=False)

    assert encoder_calls == [2, 1]
    assert "holds the embedding of another image" in caplog.text
    # encoded alone, not in a batch of two: float16 steps apart at most, far from the other image's
    torch.testing.assert_close(again.embedding, second.embedding, rtol=0, atol=1e-2)
    assert (again.embedding - first.embedding).abs().max() > 0.1
    assert_same_embedding(cache.get(image_files[1]), again)  # rewritten


def test_a_photo_rewritten_while_it_is_embedded_is_named_and_not_cached_under_its_old_hash(
    tmp_path: Path, tiny_sam: Sam, image_writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a camera still writing the photo: hashed with its first bytes, then read with others
    path = image_writer(tmp_path / "a.png", noise_image(24, 40, seed=0))
    old_key = sha256_file(path)
    load = embeddings_module.load_rgb

    def rewritten_then_loaded(image: Path) -> np.ndarray:
        image_writer(image, noise_image(24, 40, seed=1))
        return load(image)

    monkeypatch.setattr(embeddings_module, "load_rgb", rewritten_then_loaded)
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)

    with pytest.raises(
        UserError, match=r"^image .*a\.png changed on disk while it was being embedded: run again"
    ):
        cache.embed([path], progress=False)
    assert not (cache.folder / f"{old_key}.pt").exists()


def test_entries_of_another_format_version_are_misses(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    cache.embed(image_files[:1], progress=False)
    monkeypatch.setattr(embeddings_module, "CACHE_FORMAT_VERSION", CACHE_FORMAT_VERSION + 1)

    assert cache.get(image_files[0]) is None
    cache.embed(image_files[:1], progress=False)

    assert encoder_calls == [1, 1]
    assert torch.load(cache.path_for(image_files[0]), weights_only=True)["format_version"] == (
        CACHE_FORMAT_VERSION + 1
    )


def test_fine_tuned_decoder_keeps_hitting(tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    first = cache.embed(image_files, progress=False)
    calls = list(encoder_calls)
    with torch.no_grad():
        for parameter in tiny_sam.mask_decoder.parameters():
            parameter.mul_(0.9).add_(0.01)  # a "training step"

    tuned = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    second = tuned.embed(image_files, progress=False)

    assert tuned.folder == cache.folder and encoder_calls == calls
    for a, b in zip(first, second, strict=True):
        assert_same_embedding(a, b)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble(path: Path) -> None:
    path.write_bytes(b"\x00garbage" * 100)


def empty(path: Path) -> None:
    path.write_bytes(b"")


def drop_a_key(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    del payload["input_size"]
    torch.save(payload, path)


def flatten_embedding(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "embedding": payload["embedding"].flatten()}, path)


def bad_size(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "original_size": [0, 40]}, path)


def flip_embedding_bytes(path: Path) -> None:
    # a bad sector in the tensor's bytes: the zip stays whole, torch.load read it without a word
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))
    raw = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length  # the local header, then the data
    raw[start : start + 8] = b"x" * 8  # four float16 values become 36608
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage", [truncate, garble, empty, drop_a_key, flatten_embedding, bad_size, flip_embedding_bytes]
)
def test_damaged_entry_is_recomputed_with_a_warning_and_rewritten(
    tmp_path: Path,
    tiny_sam: Sam,
    image_files,
    encoder_calls: list[int],
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None],
) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    (good,) = cache.embed(image_files[:1], progress=False)
    entry = cache.path_for(image_files[0])
    damage(entry)

    with caplog.at_level(logging.WARNING, logger="segmentation.embeddings"):
        (recomputed,) = cache.embed(image_files[:1], progress=False)

    assert encoder_calls == [1, 1]
    assert "recomputing unreadable embedding cache entry" in caplog.text and entry.name in caplog.text
    assert_same_embedding(good, recomputed)
    caplog.clear()
    assert_same_embedding(good, cache.get(image_files[0]))  # rewritten: a clean hit now
    assert caplog.text == ""
    assert tmp_files(cache.folder) == []


def test_a_damaged_entry_is_warned_about_once_by_a_lookup_and_the_embedding_after_it(
    tmp_path: Path, tiny_sam: Sam, image_files, caplog: pytest.LogCaptureFixture
) -> None:
    # segmentation.embed counts the cached photos ('path in cache') before embedding: two warnings each
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    cache.embed(image_files[:1], progress=False)
    garble(cache.path_for(image_files[0]))
    with caplog.at_level(logging.WARNING, logger="segmentation.embeddings"):
        assert image_files[0] not in cache
        cache.embed(image_files[:1], progress=False)
    assert caplog.text.count("recomputing unreadable embedding cache entry") == 1


def failing_encoder_on_third_call(sam: Sam, monkeypatch: pytest.MonkeyPatch, image_files) -> None:
    forward = sam.image_encoder.forward
    calls = []

    def forward_until_third(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory (simulated)")
        return forward(x)

    monkeypatch.setattr(sam.image_encoder, "forward", forward_until_third)


def corrupt_third_image(sam: Sam, monkeypatch: pytest.MonkeyPatch, image_files) -> None:
    image_files[2].write_bytes(b"half a png")


@pytest.mark.parametrize(
    ("interrupt", "error"),
    [(failing_encoder_on_third_call, RuntimeError), (corrupt_third_image, UserError)],
    ids=["encoder_raises", "image_unreadable"],
)
def test_interrupted_run_keeps_finished_batches_and_resumes(
    tmp_path: Path, tiny_sam_builder, image_files, monkeypatch: pytest.MonkeyPatch, interrupt, error
) -> None:
    sam = tiny_sam_builder()
    originals = [path.read_bytes() for path in image_files]
    cache = EmbeddingCache(tmp_path / "cache", sam, model_name=MODEL_NAME)
    with monkeypatch.context() as patch:
        interrupt(sam, patch, image_files)
        with pytest.raises(error):
            cache.embed(image_files, batch_size=1, progress=False)
    image_files[2].write_bytes(originals[2])  # repaired

    assert [cache.path_for(path).is_file() for path in image_files] == [True, True, False, False, False]
    assert len(cache) == 2 and tmp_files(tmp_path) == []

    calls: list[int] = []
    forward = sam.image_encoder.forward
    monkeypatch.setattr(sam.image_encoder, "forward", lambda x: calls.append(x.shape[0]) or forward(x))
    resumed = cache.embed(image_files, batch_size=1, progress=False)

    assert calls == [1, 1, 1], "only the three unfinished images are encoded"
    fresh = EmbeddingCache(tmp_path / "fresh", tiny_sam_builder(), model_name=MODEL_NAME)
    for a, b in zip(resumed, fresh.embed(image_files, batch_size=1, progress=False), strict=True):
        assert_same_embedding(a, b)


def test_interrupted_write_leaves_no_partial_entry(
    tmp_path: Path, tiny_sam: Sam, image_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)

    def save_half_then_interrupt(payload, file) -> None:
        file.write(b"PK\x03\x04 half an entry")
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", save_half_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            cache.embed(image_files[:1], progress=False)

    assert tmp_files(tmp_path) == [] and not cache.path_for(image_files[0]).exists() and len(cache) == 0
    (entry,) = cache.embed(image_files[:1], progress=False)
    assert_same_embedding(entry, cache.get(image_files[0]))


def test_duplicate_paths_and_identical_files_are_encoded_once(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int]
) -> None:
    copy = tmp_path / "copy.png"
    shutil.copy(image_files[0], copy)
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)

    entries = cache.embed(
        [image_files[0], image_files[1], image_files[0], copy], batch_size=4, progress=False
    )

    assert encoder_calls == [2]
    assert len(entries) == 4 and len(cache) == 2
    assert entries[0] is entries[2] is entries[3]
    assert entries[1].original_size == (40, 24) and entries[0].original_size == (24, 40)


def test_missing_image_raises_before_anything_is_encoded(
    tmp_path: Path, tiny_sam: Sam, image_files, encoder_calls: list[int]
) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    with pytest.raises(UserError, match="nowhere.png"):
        cache.embed([*image_files, tmp_path / "nowhere.png"], progress=False)
    with pytest.raises(UserError, match="nowhere.png"):
        cache.get(tmp_path / "nowhere.png")
    assert encoder_calls == [] and len(cache) == 0


def test_corrupt_image_file_raises_naming_it(tmp_path: Path, tiny_sam: Sam) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n then nothing useful")
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    with pytest.raises(UserError, match="broken.png"):
        cache.embed([bad], progress=False)
    assert len(cache) == 0


# --- a shared cache: leftovers of killed runs, permissions -----------------------------------------


def dead_pid() -> int:
    """The id of a process that has exited (a child we waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_embed_removes_temporaries_of_killed_runs_but_not_of_live_ones(
    tmp_path: Path, tiny_sam: Sam, image_files, caplog: pytest.LogCaptureFixture
) -> None:
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    entry = cache.path_for(image_files[0])
    entry.parent.mkdir(parents=True)
    live = temporary_path(entry)  # named for this process: a writer that is still running
    live.write_bytes(b"PK\x03\x04 being written")
    dead = live.with_name(live.name.replace(f"-{os.getpid()}-", f"-{dead_pid()}-"))
    dead.write_bytes(b"PK\x03\x04 half an entry")

    with caplog.at_level(logging.WARNING, logger="segmentation.embeddings"):
        cache.embed(image_files[:1], progress=False)

    assert live.exists() and not dead.exists()
    assert "removed 1 half-written entries of killed runs" in caplog.text
    assert tmp_files(cache.folder) == [live]


def test_cache_entries_are_readable_by_the_team(tmp_path: Path, tiny_sam: Sam, image_files) -> None:
    # A shared cache: under the usual umask 022 every entry is rw-r--r--, not mkstemp's rw-------.
    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    previous = os.umask(0o022)
    try:
        cache.embed(image_files[:2], progress=False)
    finally:
        os.umask(previous)
    files = [cache.path_for(path) for path in image_files[:2]] + [cache.folder / "meta.json"]
    assert [stat.S_IMODE(path.stat().st_mode) for path in files] == [0o644] * 3
    assert stat.S_IMODE(cache.folder.stat().st_mode) == 0o755


def test_the_interrupt_note_counts_views_as_embeddings_and_names_one_embedding_in_the_singular(
    tmp_path: Path, tiny_sam: Sam, image_files
) -> None:
    # one stopped: line for every command that fills the cache (segmentation.embed's, shared)
    from segmentation.embeddings import interrupt_note
    from segmentation.views import View

    cache = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    assert interrupt_note(cache) is None  # nothing encoded: nothing to say beyond 'interrupted'
    cache.embed(image_files[:1], views=[View(transform="fliplr")], progress=False)
    assert interrupt_note(cache) == (
        f"stopped: 1 embedding encoded by this run is kept in the cache {cache.folder}; the same command "
        "again reuses them"
    )
    # stopped before the first batch was stored: no count of 0 in a cache folder perhaps not made yet
    assert interrupt_note(cache, image_files[1:3]) == (
        "stopped before any of the 2 images was cached: the same command again encodes them all"
    )
    paths, views = [image_files[0]] * 2 + [image_files[1]], [View(transform="fliplr"), None, None]
    assert interrupt_note(cache, paths, views) == (
        f"stopped: 1 of 3 embeddings are in the cache {cache.folder} (1 encoded by this run, kept); the same "
        "command again encodes only the other 2"
    )


def test_the_written_count_of_a_cache_embedding_in_two_threads_loses_none(
    tmp_path: Path, tiny_sam: Sam, image_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the annotation page's prefetch thread (whole photos) and decoder thread (zoomed crops) embed
    # with one cache; its stopping line counts cache.written. The two threads are made to switch
    # between reading the count and storing it, as a free-threaded Python may at any time.
    both_read = threading.Barrier(2, timeout=1.0)  # with the lock, the other thread never comes

    class SwitchingCache(EmbeddingCache):
        @property
        def written(self) -> int:
            value = self._count
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait()
            return value

        @written.setter
        def written(self, value: int) -> None:
            self._count = value

    monkeypatch.setattr(  # the encoder is not what is tested; each thread reaches the count at once
        embeddings_module,
        "embed_images",
        lambda sam, images, device, part: [
            ImageEmbedding(torch.zeros(4, 2, 2), (8, 8), (8, 8)) for _ in images
        ],
    )
    cache = SwitchingCache(tmp_path / "cache", tiny_sam, model_name=MODEL_NAME)
    threads = [
        threading.Thread(target=cache.embed, args=([path],), kwargs={"progress": False})
        for path in image_files[:2]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.written == 2 and len(cache) == 2
