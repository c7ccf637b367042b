"""The decoder thread: one call at a time on one thread, a short queue, refusals that come at once."""

from __future__ import annotations

import threading
import time

import pytest

from segmentation.annotate.errors import AnnotationError, BusyError
from segmentation.annotate.worker import DecoderWorker


def in_threads(target, count: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


@pytest.fixture
def worker():
    worker = DecoderWorker(waiting=2)
    yield worker
    worker.close()


def test_calls_from_many_threads_run_one_at_a_time_on_one_thread():
    worker = DecoderWorker(waiting=8)  # room for all: nothing refused
    lock = threading.Lock()
    running, peak, ran_on, callers = [0], [0], set(), set()

    def work() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            ran_on.add(threading.get_ident())
        time.sleep(0.01)
        with lock:
            running[0] -= 1

    def call() -> None:
        callers.add(threading.get_ident())
        worker.run(work)

    for thread in in_threads(call, 8):
        thread.join(timeout=10)
    worker.close()
    assert peak[0] == 1
    assert len(ran_on) == 1 and not ran_on & callers  # its own thread, whoever called


def test_calls_beyond_the_queue_are_refused_at_once_and_room_comes_back(worker, wait_for):
    release = threading.Event()
    results: list[str] = []
    threads = in_threads(lambda: results.append(worker.run(lambda: release.wait(10) and "done")), 3)
    wait_for(lambda: worker.admitted == 3)  # one running, two waiting: full
    started = time.perf_counter()
    with pytest.raises(BusyError, match="busy \\(3 requests running or waiting\\)") as refused:
        worker.run(lambda: "never")
    assert time.perf_counter() - started < 1.0
    assert refused.value.status_code == 503 and refused.value.retry_after_s == 1
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert results == ["done"] * 3
    wait_for(lambda: worker.admitted == 0)
    assert worker.run(lambda: 7) == 7


def test_the_error_of_a_call_reaches_its_caller_and_the_worker_goes_on(worker):
    def bad() -> None:
        raise AnnotationError("point (500, 5) lies outside the image")

    with pytest.raises(AnnotationError, match="outside"):
        worker.run(bad)
    assert worker.run(lambda: "next") == "next" and worker.admitted == 0


def test_closing_cancels_waiting_calls_and_refuses_new_ones(worker, wait_for):
    release = threading.Event()
    outcomes: list[str] = []

    def call() -> None:
        try:
            outcomes.append(worker.run(lambda: release.wait(10) and "done"))
        except BusyError as error:
            outcomes.append(str(error))

    running = in_threads(call, 1)
    wait_for(lambda: worker.admitted == 1)
    waiting = in_threads(call, 1)
    wait_for(lambda: worker.admitted == 2)
    closer = in_threads(worker.close, 1)[0]
    wait_for(lambda: len(outcomes) == 1)  # the waiting call, cancelled while the running one goes on
    assert "stopping" in outcomes[0]
    release.set()
    for thread in (*running, *waiting, closer):
        thread.join(timeout=10)
    assert outcomes[1] == "done"
    with pytest.raises(BusyError, match="stopping"):
        worker.run(lambda: None)


def test_a_negative_queue_is_refused():
    with pytest.raises(ValueError, match="waiting"):
        DecoderWorker(waiting=-1)
