"""A training's ``weights/last.pt``, ``best.pt`` and ``epoch<N>.pt`` written whole or not at all.

ultralytics writes them in place (``BaseTrainer.save_model``: ``self.last.write_bytes(...)``, then
``best.pt`` the same way in an epoch that scores best, and with ``save_period`` ``epoch<N>.pt``) and
strips their optimizer at the end in place too (``strip_optimizer``: ``torch.save(x, f)``). A Ctrl-C, a
``kill -9`` or a full disk while one was written left it cut short: the last finished epoch's ``last.pt``
(the file the Ctrl-C line says to train on from) or the best epoch's ``best.pt`` of the epochs before,
lost. Inside :func:`atomic_checkpoints`, all go through a temporary beside them and a rename
(:func:`common.io.atomic_write`): a stopped write leaves the previous file as it was.

A multi-GPU (DDP) training runs in worker processes started from a file ultralytics writes
(``ultralytics.utils.dist.generate_ddp_file``): it pickles the trainer's callbacks for them, but the
workers never enter :func:`atomic_checkpoints`. Its :func:`atomic_weights` callback, which they run,
therefore makes a worker's ``strip_optimizer`` atomic itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from common.errors import UserError, one_line
from common.io import atomic_write, remove_stale, temporary_path


class _AtomicPath(type(Path())):  # type: ignore[misc]  # Path() is PosixPath or WindowsPath
    """A path whose ``write_bytes`` is :func:`~common.io.atomic_write` (what ``save_model`` calls)."""

    def write_bytes(self, data: bytes) -> int:  # type: ignore[override]
        atomic_write(self, bytes(data))
        return len(data)


def atomic_weights(trainer: object) -> None:
    """An ``on_pretrain_routine_end`` callback: the ``trainer``'s ``last.pt``, ``best.pt`` and
    ``save_period``'s ``epoch<N>.pt`` are written whole from its first epoch on; temporaries of a killed
    earlier run in its weights folder are removed.

    ``save_model`` names an epoch's file ``self.wdir / f"epoch{N}.pt"``: pathlib's ``/`` keeps the subclass.
    In a DDP worker (ultralytics' ``RANK`` set), which runs this callback but not the
    :func:`atomic_checkpoints` block of the process that started it, the worker's ``strip_optimizer`` is
    made atomic too, for the rest of the worker's life (it ends with the training).
    """
    from ultralytics.engine import trainer as engine
    from ultralytics.utils import RANK

    trainer.last, trainer.best = _AtomicPath(trainer.last), _AtomicPath(trainer.best)
    trainer.wdir = _AtomicPath(trainer.wdir)
    remove_stale(Path(trainer.last).parent, ".*.pt.*.tmp")
    if RANK != -1 and not getattr(engine.strip_optimizer, "atomic", False):
        engine.strip_optimizer = _atomic_strip(engine.strip_optimizer)


@contextlib.contextmanager
def atomic_checkpoints() -> Iterator[None]:
    """Within the block, ultralytics' trainer strips the optimizer from its checkpoints atomically.

    With :func:`atomic_weights` as a callback, the files a training writes are then never left cut short.
    """
    from ultralytics.engine import trainer as engine

    original = engine.strip_optimizer
    engine.strip_optimizer = _atomic_strip(original)
    try:
        yield
    finally:
        engine.strip_optimizer = original


def _atomic_strip(original: Callable[..., dict]) -> Callable[..., dict]:
    """ultralytics' ``strip_optimizer`` (``original``) writing through a temporary and a rename.

    The returned function raises :class:`UserError` where the write fails (a full disk): one line naming
    the file, which is kept as it was.
    """

    def strip_optimizer(f: str | Path = "best.pt", s: str = "", updates: dict | None = None) -> dict:
        target = Path(s or f)
        temporary = temporary_path(target)
        try:
            with _log_naming(temporary, s):
                stripped = original(f, str(temporary), updates)
            if temporary.exists():  # not when ultralytics skipped a file it could not read
                os.replace(temporary, target)
        except (RuntimeError, OSError) as error:  # ultralytics reads f in a try of its own: a write failed
            raise _strip_failure(target, error) from None
        finally:
            temporary.unlink(missing_ok=True)
        return stripped

    strip_optimizer.atomic = True  # type: ignore[attr-defined]  # a DDP worker's callback patches once
    return strip_optimizer


def _strip_failure(target: Path, error: RuntimeError | OSError) -> UserError:
    """A failed write of ``target`` without its optimizer as one line naming it; ``target`` is kept whole.

    On a full disk torch's file writer raises ``RuntimeError: [enforce fail at inline_container.cc:672] .
    unexpected pos 704 vs 598``, naming neither the file nor the cause (a traceback): the free space on the
    disk is said beside it.
    """
    reason = error.strerror if isinstance(error, OSError) and error.strerror else one_line(error)
    with contextlib.suppress(OSError):
        reason += f"; {shutil.disk_usage(target.parent).free / 1e6:.1f} MB free on its disk"
    return UserError(
        f"cannot write {target} without its optimizer: {reason}; {target.name} is kept as it was, "
        "optimizer included"
    )


@contextlib.contextmanager
def _log_naming(temporary: Path, saved_as: str) -> Iterator[None]:
    """ultralytics' ``Optimizer stripped from F, saved as <temporary>, 5.4MB`` as it reads without one."""

    def rename(record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            shown = f" saved as {saved_as}," if saved_as else ""
            record.msg = record.msg.replace(f" saved as {temporary},", shown)
        return True

    logger = logging.getLogger("ultralytics")
    logger.addFilter(rename)
    try:
        yield
    finally:
        logger.removeFilter(rename)
