"""Background embeddings: through the shared cache, urgent first, paused while masks are decoded."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time

import cv2
import numpy as np
import pytest
import torch

import segmentation.embeddings as embeddings_module
from segmentation.annotate.errors import AnnotationError
from segmentation.annotate.prefetch import EmbeddingPrefetcher
from segmentation.embeddings import EmbeddingCache


@pytest.fixture
def cache(tmp_path, tiny_sam):
    return EmbeddingCache(tmp_path / "embeddings", tiny_sam, model_name="tiny")


@pytest.fixture
def prefetcher(cache):
    worker = EmbeddingPrefetcher(cache, keep=2)
    yield worker
    worker.close()


def test_an_embedding_is_computed_once_into_the_shared_cache(prefetcher, cache, photos):
    folder, _ = photos
    path = folder / "a.png"
    assert prefetcher.status(path).state == "idle"
    embedding = prefetcher.get(path)
    status = prefetcher.status(path)
    assert status.state == "ready" and status.progress == 1.0 and not status.cached
    assert embedding.original_size == (120, 160)
    assert torch.equal(cache.get(path).embedding, embedding.embedding)  # it is in the cache on disk
    fresh = EmbeddingPrefetcher(cache)  # another run: read from disk in the asking thread
    try:
        status = fresh.request(path)
        assert status.state == "ready" and status.cached
    finally:
        fresh.close()


def test_prefetched_images_are_ready_before_they_are_opened(prefetcher, photos, wait_for):
    folder, _ = photos
    paths = [folder / "b.jpg", folder / "lot_2" / "c.png"]
    prefetcher.prefetch(paths)
    wait_for(lambda: all(prefetcher.status(p).state == "ready" for p in paths))
    assert prefetcher.request(paths[0]).state == "ready"


def test_memory_keeps_the_most_recent_and_evicted_ones_come_back_from_disk(prefetcher, photos):
    folder, _ = photos
    paths = [folder / "a.png", folder / "b.jpg", folder / "wide.png"]  # keep=2
    for path in paths:
        prefetcher.get(path)
    assert prefetcher.status(paths[0]).state == "idle"  # dropped from memory
    assert prefetcher.request(paths[0]).state == "ready"  # a disk hit, read at once


def test_a_prefetch_pauses_while_a_mask_is_decoded(prefetcher, photos, wait_for):
    folder, _ = photos
    path = folder / "wide.png"
    with prefetcher.decoding():
        prefetcher.prefetch([path])
        wait_for(lambda: prefetcher.status(path).state == "running")
        time.sleep(0.5)  # the tiny encoder needs ~20 ms: had it not paused, it would be done
        held = prefetcher.status(path)
        assert held.state == "running" and held.progress < 0.5
    wait_for(lambda: prefetcher.status(path).state == "ready")


def test_an_urgent_request_does_not_pause_for_decoding(prefetcher, photos):
    folder, _ = photos
    path = folder / "b.jpg"
    done = threading.Event()
    with prefetcher.decoding():
        threading.Thread(target=lambda: (prefetcher.get(path), done.set()), daemon=True).start()
        assert done.wait(30)  # the user's own image is never held back


def test_an_unreadable_image_fails_with_a_reason(prefetcher, tmp_path, wait_for):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    status = prefetcher.request(broken)
    wait_for(lambda: prefetcher.status(broken).state == "failed")
    assert status.state in ("queued", "failed")
    assert "cannot decode" in prefetcher.status(broken).error
    with pytest.raises(AnnotationError, match="cannot embed broken.png"):
        prefetcher.get(broken)


def test_a_photo_is_embedded_on_a_full_disk_with_one_warning_in_the_log(
    prefetcher, cache, photos, wait_for, monkeypatch, capsys
):
    # the page answered 400 'cannot embed a.png: [Errno 28] No space left on device' for an embedding
    # it had computed
    folder, _ = photos

    def full(payload, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(embeddings_module, "save_torch", full)
    paths = [folder / "a.png", folder / "b.jpg"]
    assert prefetcher.get(paths[0]).original_size == (120, 160)
    prefetcher.prefetch(paths[1:])
    wait_for(lambda: prefetcher.status(paths[1]).state == "ready")
    assert paths[0] not in cache and paths[1] not in cache and cache.written == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and err.startswith(
        f"warning: cannot write the embedding cache {cache.folder} (No space left on device): embeddings "
        "are computed but not cached"
    )


def test_close_stops_the_worker_and_unhooks_the_encoder(cache, photos):
    worker = EmbeddingPrefetcher(cache)
    hooked = [m for m in cache.sam.image_encoder.modules() if m._forward_pre_hooks]
    assert hooked
    worker.close()
    assert not any(m._forward_pre_hooks for m in cache.sam.image_encoder.modules())
    assert not worker._thread.is_alive()
    # The encoder still works for everyone else.
    (embedding,) = cache.embed([photos[0] / "a.png"], progress=False)
    assert np.isfinite(embedding.embedding.numpy()).all()


def test_a_failed_image_is_not_retried_until_the_file_changes(prefetcher, tmp_path, photos, wait_for):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    prefetcher.request(broken)
    wait_for(lambda: prefetcher.status(broken).state == "failed")
    assert prefetcher.request(broken).state == "failed"  # the page polls: no endless retries
    broken.write_bytes((photos[0] / "a.png").read_bytes())  # fixed on disk: a new size and mtime
    prefetcher.request(broken)
    wait_for(lambda: prefetcher.status(broken).state == "ready")


def test_a_photo_rewritten_with_its_old_size_and_mtime_is_a_new_image(prefetcher, tmp_path):
    # cp -p of another photo of the same size: the key (path, mtime, size) served the old embedding
    rng = np.random.default_rng(0)
    path, other = tmp_path / "p.bmp", tmp_path / "q.bmp"  # BMPs of one shape: one file size
    cv2.imwrite(str(path), rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    cv2.imwrite(str(other), rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    before = path.stat()
    old = prefetcher.get(path)
    time.sleep(0.05)  # past the kernel's coarse clock tick: a new change time
    shutil.copyfile(other, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert prefetcher.status(path).state == "idle"  # not the old one's
    assert not torch.equal(prefetcher.get(path).embedding, old.embedding)
