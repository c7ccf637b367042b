"""Image embeddings for the annotation app: the shared on-disk cache, a memory LRU and a background worker.

The image encoder is the slow half of SAM (MobileSAM: seconds per image on a
CPU), so the app computes embeddings before they are needed: when the user
opens an image, its embedding is requested first ("urgent") and the next few
images are queued behind it ("prefetch"). One worker thread runs the encoder,
one image at a time, through :class:`segmentation.embeddings.EmbeddingCache`,
so every embedding lands in the cache shared with training and evaluation.

Two details make it feel instant on a 2-core CPU:

- an image already in the on-disk cache is read in the asking thread (a few
  ms), never queued behind an encoder run;
- a prefetch run pauses between encoder layers while a mask is being decoded
  (forward pre-hooks on the encoder's leaf modules), so clicks on the current
  image do not wait for the next image's encoder. The same hooks count the
  layers done, which is the progress shown for the first image.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from common.errors import one_line
from segmentation.annotate.errors import AnnotationError, ConflictError
from segmentation.embeddings import EmbeddingCache, ImageEmbedding

QUEUED, RUNNING, READY, FAILED, IDLE = "queued", "running", "ready", "failed", "idle"
#: Longest a prefetch run waits for one decode before going on anyway (seconds).
_YIELD_WAIT_S = 2.0

#: A file is the same image while its path, size and modification and change times are:
#: ``(path, mtime_ns, size, ctime_ns)``. The change time is the kernel's, which no tool sets back
#: (``cp -p`` and ``touch -d`` restore the modification time only), so a file rewritten with the same
#: size and modification time is still a new image.
FileKey = tuple[str, int, int, int]


@dataclass(frozen=True)
class EmbeddingStatus:
    """Where an image's embedding is.

    Attributes:
        state: ``ready`` (in memory), ``queued``, ``running`` (the encoder is on it),
            ``failed`` (see ``error``) or ``idle`` (never asked for).
        progress: 0-1; encoder layers done while running.
        seconds: time taken (ready, failed) or so far (running).
        cached: ready from the on-disk cache, without running the encoder.
        error: why it failed.
    """

    state: str
    progress: float = 0.0
    seconds: float | None = None
    cached: bool = False
    error: str | None = None

    def to_json(self) -> dict:
        return {
            "state": self.state,
            "progress": round(self.progress, 3),
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "cached": self.cached,
            "error": self.error,
        }


@dataclass
class _Job:
    path: Path
    urgent: bool
    state: str = QUEUED
    started: float | None = None
    seconds: float | None = None
    cached: bool = False
    error: str | None = None


class EmbeddingPrefetcher:
    """Computes image embeddings in a background thread, most urgent first (see the module docstring).

    Args:
        cache: the shared embedding cache; its SAM's encoder does the work.
        keep: embeddings held in memory (4 MB each for 256x64x64), least recently used dropped.
        device: where to run the encoder (None: where the model is).
        root: the photos' folder (``--images``): its errors name a photo by its path relative to it, as
            the page does (photos of one file name in two folders are told apart); None: by file name.

    Call :meth:`close` to stop the worker and remove the hooks from the encoder.
    """

    def __init__(
        self,
        cache: EmbeddingCache,
        *,
        keep: int = 8,
        device: str | torch.device | None = None,
        root: Path | None = None,
    ):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.cache = cache
        self.root = None if root is None else root.resolve()  # photos' paths are resolved
        self.keep = keep
        self.device = device
        self._cv = threading.Condition()
        self._memory: collections.OrderedDict[FileKey, ImageEmbedding] = collections.OrderedDict()
        self._jobs: dict[FileKey, _Job] = {}
        self._queue: list[FileKey] = []
        self._running: FileKey | None = None
        self._decoding = 0
        self._closed = False
        self._layers_done = 0
        encoder = cache.sam.image_encoder
        leaves = [module for module in encoder.modules() if not any(module.children())]
        self._layers_total = max(1, len(leaves))
        self._hooks = [module.register_forward_pre_hook(self._on_layer) for module in leaves]
        self._thread = threading.Thread(target=self._work, name="embedding-prefetch", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------------
    # Asking

    def request(self, path: Path) -> EmbeddingStatus:
        """Asks for ``path`` now: from memory, from the disk cache (read here), or first in the queue.

        A file that failed is not tried again until it changes (its size or modification time).
        """
        key = file_key(path)
        with self._cv:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._status(key)
            job = self._jobs.get(key)
            if job is not None and job.state == FAILED:
                return self._status(key)
            if job is not None and job.state in (QUEUED, RUNNING):
                job.urgent = True
                if job.state == QUEUED:
                    self._queue.remove(key)
                    self._queue.insert(0, key)
                self._cv.notify_all()  # a running prefetch of it stops yielding to decoders
                return self._status(key)
        started = time.perf_counter()
        try:
            cached = self.cache.get(path)
        except Exception as error:  # unreadable file: reported through the status, not raised here
            return self._fail(key, path, error, started)
        with self._cv:
            if cached is not None:
                self._remember(key, cached)
                self._jobs[key] = _Job(path, True, READY, started, time.perf_counter() - started, cached=True)
            elif key not in self._memory and (key not in self._jobs or self._jobs[key].state == READY):
                self._jobs[key] = _Job(path, urgent=True)
                self._queue.insert(0, key)
                self._cv.notify_all()
            return self._status(key)

    def prefetch(self, paths: Iterable[Path]) -> None:
        """Queues ``paths`` behind the urgent work, replacing earlier prefetch requests not yet started."""
        wanted = [file_key(path) for path in paths]
        with self._cv:
            for key in [k for k in self._queue if not self._jobs[k].urgent and k not in wanted]:
                self._queue.remove(key)
                del self._jobs[key]
            for key in wanted:
                if key in self._memory or (key in self._jobs and self._jobs[key].state in (QUEUED, RUNNING)):
                    continue
                self._jobs[key] = _Job(Path(key[0]), urgent=False)
                self._queue.append(key)
            self._cv.notify_all()

    def status(self, path: Path) -> EmbeddingStatus:
        """The state of ``path`` without asking for it."""
        with self._cv:
            return self._status(file_key(path))

    def get(self, path: Path, *, timeout: float = 300.0) -> ImageEmbedding:
        """The embedding of ``path``, waiting for it (asked for urgently if need be).

        Raises:
            AnnotationError: the image could not be embedded (unreadable file).
            ConflictError: not ready within ``timeout`` seconds.
        """
        key = file_key(path)
        deadline = time.monotonic() + timeout
        self.request(path)
        with self._cv:
            while True:
                if key in self._memory:
                    self._memory.move_to_end(key)
                    return self._memory[key]
                job = self._jobs.get(key)
                if job is None or job.state == FAILED:
                    error = job.error if job is not None else "dropped"
                    raise AnnotationError(f"cannot embed {self.name(path)}: {error}")
                if job.state == READY:  # evicted from memory meanwhile: ask again
                    self._cv.release()
                    try:
                        self.request(path)
                    finally:
                        self._cv.acquire()
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    name = self.name(path)
                    raise ConflictError(f"the embedding of {name} is not ready yet (still {job.state})")
                self._cv.wait(min(left, 1.0))

    def name(self, path: Path) -> str:
        """What errors call the photo at ``path``: its path relative to :attr:`root`, else its file name."""
        if self.root is not None and path.is_relative_to(self.root):
            return path.relative_to(self.root).as_posix()
        return path.name

    @contextmanager
    def decoding(self) -> Iterator[None]:
        """Marks a mask decode in progress: a running prefetch pauses between layers until it ends."""
        with self._cv:
            self._decoding += 1
        try:
            yield
        finally:
            with self._cv:
                self._decoding -= 1
                self._cv.notify_all()

    def close(self) -> None:
        """Stops the worker (after the layer it is in) and removes the encoder hooks."""
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=60)
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    # ------------------------------------------------------------------------------------------
    # Inside

    def _status(self, key: FileKey) -> EmbeddingStatus:
        job = self._jobs.get(key)
        if key in self._memory:
            seconds, cached = (job.seconds, job.cached) if job is not None else (None, True)
            return EmbeddingStatus(READY, 1.0, seconds, cached)
        if job is None:
            return EmbeddingStatus(IDLE)
        if job.state == RUNNING:
            progress = min(self._layers_done / self._layers_total, 0.99)
            return EmbeddingStatus(RUNNING, progress, time.perf_counter() - (job.started or 0.0))
        if job.state == FAILED:
            return EmbeddingStatus(FAILED, 0.0, job.seconds, error=job.error)
        if job.state == READY:  # evicted: it would be read from disk again
            return EmbeddingStatus(IDLE)
        return EmbeddingStatus(QUEUED)

    def _remember(self, key: FileKey, embedding: ImageEmbedding) -> None:
        self._memory[key] = embedding
        self._memory.move_to_end(key)
        while len(self._memory) > self.keep:
            self._memory.popitem(last=False)

    def _fail(self, key: FileKey, path: Path, error: Exception, started: float) -> EmbeddingStatus:
        with self._cv:
            seconds = time.perf_counter() - started
            job = _Job(path, True, FAILED, started, seconds, error=self._failure(path, error))
            self._jobs[key] = job
            self._cv.notify_all()
            return self._status(key)

    def _failure(self, path: Path, error: Exception) -> str:
        """Why ``path`` was not embedded, in one line naming it as :meth:`name` does (the error names the
        whole path, which the page does not show)."""
        return one_line(error).replace(str(path), self.name(path))

    def _on_layer(self, module: torch.nn.Module, args: object) -> None:
        if threading.current_thread() is not self._thread:
            return  # the encoder used elsewhere (not by this worker): neither counted nor paused
        with self._cv:
            self._layers_done += 1
            job = self._jobs.get(self._running) if self._running is not None else None
            waited = 0.0
            while self._decoding and job is not None and not job.urgent and not self._closed:
                if waited >= _YIELD_WAIT_S:
                    break
                self._cv.wait(0.05)
                waited += 0.05

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                key = self._queue.pop(0)
                job = self._jobs[key]
                job.state, job.started = RUNNING, time.perf_counter()
                self._running, self._layers_done = key, 0
            embedding, error, cached = None, None, False
            try:
                embedding = self.cache.get(job.path)
                cached = embedding is not None
                if embedding is None:
                    (embedding,) = self.cache.embed([job.path], device=self.device, progress=False)
            except Exception as failure:  # any failure is this image's, shown to the user; the worker goes on
                error = self._failure(job.path, failure)
            with self._cv:
                job.seconds = time.perf_counter() - job.started
                job.cached = cached
                if embedding is not None:
                    self._remember(key, embedding)
                    job.state = READY
                else:
                    job.state, job.error = FAILED, error
                self._running = None
                self._cv.notify_all()


def file_key(path: Path) -> FileKey:
    """The :data:`FileKey` of ``path`` (``-1`` for the times and size of a missing file)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return str(path), -1, -1, -1  # missing: the cache raises a readable error when asked
    return str(path), stat.st_mtime_ns, stat.st_size, stat.st_ctime_ns
