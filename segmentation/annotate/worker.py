"""The one thread that runs SAM's decoder for every request, and the short queue in front of it.

The server answers requests on a pool of up to 40 threads (FastAPI runs plain
``def`` routes in anyio's thread pool). When each of them ran the decoder and
the mask upscaling itself, memory grew with the number of threads that ever
did, and stayed: concurrent ONNX Runtime runs grow its memory arena to their
summed peak and never shrink it, and every thread that runs PyTorch operators
gets its own OpenMP team and its own glibc malloc arena, which keeps the freed
mask buffers of that thread. Even serialised by a lock, 40 threads taking turns
kept hundreds of MB more than one thread does. So all decoder work runs on one
thread (:class:`DecoderWorker`): its buffers exist once, whatever the load.
``bench/annotate_latency.py --load`` measures it (RSS under 50 concurrent clicks).

One thread also decodes no slower: ONNX Runtime and PyTorch already spread one
decode over all cores, so two at once only share them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import TypeVar

from segmentation.annotate.errors import BusyError

T = TypeVar("T")

#: Requests that may wait while the decoder works on another: one page sends one at a time,
#: so this serves five tabs at once; more means a script, refused until there is room.
DEFAULT_WAITING = 4


class DecoderWorker:
    """Runs calls one at a time on one dedicated thread; at most ``waiting`` more wait their turn.

    A call beyond that is refused at once with :class:`BusyError` (HTTP 503 with
    ``Retry-After``) rather than queued: an unbounded queue would hold a thread and
    a request per waiting click, and make every click wait behind all earlier ones.
    Clicks are not coalesced here: the page already sends one prediction at a
    time and keeps only its latest prompt pending (``static/app.js``), so a second
    request for the same image comes from another tab or client, whose click is
    not obsolete to it. The page retries a 503 after ``Retry-After``.

    Args:
        waiting: calls admitted to wait while one runs (>= 0).
        name: name of the thread (seen in ``py-spy`` and ``top -H``).

    Thread-safe. :meth:`close` refuses new calls and cancels the waiting ones.
    """

    def __init__(self, *, waiting: int = DEFAULT_WAITING, name: str = "sam-decoder") -> None:
        if waiting < 0:
            raise ValueError(f"waiting must be >= 0, got {waiting}")
        self.capacity = waiting + 1
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._admitted = 0
        self._closed = False

    @property
    def admitted(self) -> int:
        """Calls running or waiting now."""
        with self._lock:
            return self._admitted

    def run(self, work: Callable[[], T]) -> T:
        """``work()`` on the worker thread once the calls before it are done: its result or exception.

        Raises:
            BusyError: ``capacity`` calls are running or waiting already, or the worker
                is closed (also when it closes while this call waits).
        """
        future = self._submit(work)
        try:
            return future.result()
        except CancelledError:
            raise BusyError("the server is stopping: try again when it is back") from None

    def close(self) -> None:
        """Refuses new calls, cancels the waiting ones and waits for the running one."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, work: Callable[[], T]) -> Future[T]:
        with self._lock:
            if self._closed:
                raise BusyError("the server is stopping: try again when it is back")
            if self._admitted >= self.capacity:
                raise BusyError(
                    f"the mask decoder is busy ({self._admitted} requests running or waiting): "
                    "try again in a moment"
                )
            # Submitted under the lock, so close() cannot slip in between the check and the queue.
            future = self._executor.submit(work)
            self._admitted += 1
        # Released when the work ends, not when the caller returns: the count is what the thread has.
        future.add_done_callback(self._release)
        return future

    def _release(self, future: Future) -> None:
        with self._lock:
            self._admitted -= 1
