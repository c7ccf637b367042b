"""Zoomed crops on the page (``--crop-fraction``): which crop a prompt is decoded on, and its embedding.

The rule is segmentation's, the one evaluation and the inspection cascade use
(:class:`segmentation.crops.CropRule`): a box whose longest side is below
``max_fraction`` of the photo's longest side is decoded on a square crop around
it, encoded on its own, and the mask is pasted back. The page adds:

- **Which prompts.** A prompt with a box uses the box's crop when all its points
  lie inside that crop. Points alone, or a point outside the crop, are decoded on
  the whole photo: a click gives no size to zoom to, and SAM sees nothing outside
  the crop.
- **Reuse.** A crop already encoded for the photo serves a new box when its side
  is within :data:`REUSE_SLACK` of the side the rule asks for (about the same
  zoom) and it holds the box with at least :data:`REUSE_MARGIN` of the rule's
  margin around it (clipped to the photo): a box redrawn around the same defect
  does not run the encoder again. Adding points to a box keeps the box's crop
  too. Detector boxes take the rule's own window (the cascade's masks).

Crop embeddings come from the shared embedding cache (key: the image bytes and
the window, :class:`segmentation.views.View`), so a crop that evaluation or the
cascade encoded is a hit here too; the last ``keep`` are also held in memory.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from segmentation.annotate.prefetch import FileKey, file_key
from segmentation.crops import CropRule, Window
from segmentation.embeddings import EmbeddingCache, ImageEmbedding
from segmentation.views import View

#: A crop encoded earlier serves a new box when its side is within this factor of the rule's side ...
REUSE_SLACK = 1.25
#: ... and it holds the box with this fraction of the rule's margin: the rule's own window is
#: exactly the box and its margin once the box is over a third of ``min_side``, so a box redrawn
#: a few pixels off would otherwise never fit the earlier crop.
REUSE_MARGIN = 0.5
#: Windows remembered per photo for reuse (their embeddings stay in the disk cache).
_WINDOWS_PER_IMAGE = 64


def holds_box(window: Window, box: np.ndarray, image_size: tuple[int, int], *, margin: float) -> bool:
    """Whether ``window`` holds ``box`` (xyxy pixels) with ``margin`` box sides around it, within the image.

    The context is the rule's (:func:`segmentation.crops.crop_window`): ``margin`` times the
    box's longest side on each side, cut at the image's edges, where no window has more.
    """
    height, width = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    pad = margin * max(x1 - x0, y1 - y0)
    need = (max(x0 - pad, 0.0), max(y0 - pad, 0.0), min(x1 + pad, width), min(y1 + pad, height))
    return (
        window.x0 <= need[0]
        and window.y0 <= need[1]
        and need[2] <= window.x0 + window.side
        and need[3] <= window.y0 + window.side
    )


def holds_points(window: Window, points: np.ndarray | None) -> bool:
    """Whether every ``(..., 2)`` xy point (pixels) lies in ``window`` (edges included); True for none."""
    if points is None:
        return True
    xy = np.asarray(points, dtype=float).reshape(-1, 2)
    return bool(
        ((xy[:, 0] >= window.x0) & (xy[:, 0] <= window.x0 + window.side)).all()
        and ((xy[:, 1] >= window.y0) & (xy[:, 1] <= window.y0 + window.side)).all()
    )


def prompt_window(
    rule: CropRule,
    box: np.ndarray | None,
    points: np.ndarray | None,
    image_size: tuple[int, int],
    encoded: Iterable[Window] = (),
) -> Window | None:
    """The crop a prompt is decoded on, or None for the whole photo (see the module docstring).

    Args:
        rule: which boxes are small and their windows.
        box: ``(4,)`` xyxy pixels, or None.
        points: ``(..., 2)`` xy pixels, or None.
        image_size: ``(H, W)``.
        encoded: windows of this photo encoded already, most recent last.

    Returns:
        Of the encoded windows that may be reused (see the module docstring) and hold the
        points, the one whose side is nearest the rule's (the most recent among equals), else
        the rule's window when it holds the points, else None.
    """
    if box is None:
        return None
    wanted = rule.window(np.asarray(box, dtype=float).reshape(4), image_size)
    if wanted is None:
        return None
    reusable = [
        window
        for window in reversed(list(encoded))
        if wanted.side / REUSE_SLACK <= window.side <= wanted.side * REUSE_SLACK
        and holds_box(window, box, image_size, margin=rule.margin * REUSE_MARGIN)
    ]
    for window in [*sorted(reusable, key=lambda w: abs(w.side - wanted.side)), wanted]:
        if holds_points(window, points):
            return window
    return None


class CropEmbeddings:
    """The page's crop embeddings: the shared disk cache, the last ``keep`` in memory, windows for reuse.

    Thread-safe; called on the decoder thread (:class:`~segmentation.annotate.worker.DecoderWorker`),
    so a crop's encoder run waits for no other request and delays the clicks queued behind it.

    Args:
        rule: the crop rule (``--crop-fraction``).
        cache: the app's embedding cache; its SAM's encoder encodes the crops.
        keep: crop embeddings held in memory (4 MB each for 1024-px SAM).
        device: where the encoder runs (None: where the model is).
    """

    def __init__(
        self,
        rule: CropRule,
        cache: EmbeddingCache,
        *,
        keep: int = 8,
        device: str | torch.device | None = None,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.rule = rule
        self.cache = cache
        self.keep = keep
        self.device = device
        self._memory: collections.OrderedDict[tuple[FileKey, Window], ImageEmbedding] = (
            collections.OrderedDict()
        )
        self._windows: dict[FileKey, list[Window]] = {}
        self._lock = threading.Lock()

    def window(
        self,
        path: Path,
        box: np.ndarray | None,
        points: np.ndarray | None,
        image_size: tuple[int, int],
    ) -> Window | None:
        """:func:`prompt_window` for a prompt on the photo at ``path``, reusing its encoded crops."""
        with self._lock:
            encoded = list(self._windows.get(file_key(path), ()))
        return prompt_window(self.rule, box, points, image_size, encoded)

    def embedding(self, path: Path, window: Window) -> ImageEmbedding:
        """The embedding of ``window`` of the photo at ``path``: from memory, the disk cache, or the encoder.

        Raises:
            UserError: the photo cannot be read.
        """
        key = (file_key(path), window)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        view = View(window=window)
        (embedding,) = self.cache.embed([path], views=[view], device=self.device, progress=False)
        with self._lock:
            self._memory[key] = embedding
            while len(self._memory) > self.keep:
                self._memory.popitem(last=False)
            windows = self._windows.setdefault(key[0], [])
            if window in windows:
                windows.remove(window)
            windows.append(window)
            del windows[:-_WINDOWS_PER_IMAGE]
        return embedding
