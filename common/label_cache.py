"""ultralytics' label cache, kept out of the data sets this project only reads.

ultralytics' ``YOLODataset`` scans a split's label files and saves what it found as
``labels/<split>.cache`` beside them (``ultralytics.data.utils.save_dataset_cache_file``),
so ``converters.validate``, ``detection.train`` and ``detection.evaluate`` each left a new
file in the data set they were given. Inside :func:`no_label_cache` the scan runs as
before and is not saved; a cache already there (a stock ``yolo train``'s) is still read
where ultralytics finds it valid. Rescanning costs about a second per few thousand label
files, the only price. Written here because ultralytics has no setting for it. It holds in
this process: the workers of ultralytics' multi-GPU (DDP) training start afresh, and
``detection.train``'s hold it from their unpickling of its ``RunNotes``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def no_label_cache() -> Iterator[None]:
    """Within the block, ultralytics' datasets do not write ``*.cache`` files.

    An ultralytics without the function (a later release that moved it) is left alone.
    """
    from ultralytics.data import dataset

    saved = getattr(dataset, "save_dataset_cache_file", None)
    if saved is None:
        yield
        return
    dataset.save_dataset_cache_file = _not_saved
    try:
        yield
    finally:
        dataset.save_dataset_cache_file = saved


def _not_saved(prefix: str, path, x: dict, version: str) -> None:
    """Stands in for ``save_dataset_cache_file``: the scan's result stays in memory.

    Like the original it stamps ``x`` with the version, which ``YOLODataset.get_labels`` pops.
    """
    x["version"] = version
