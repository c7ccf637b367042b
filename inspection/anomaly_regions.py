"""A second source of boxes for the cascade: the regions of a PatchCore run's anomaly map.

A detector trained on a handful of photos misses stains, or boxes a part of a large one. PatchCore,
fit on good photos alone (:mod:`anomaly`), marks where a photo departs from them; each connected
region of its map cut at the run's threshold (:func:`anomaly.regions.map_regions`) becomes one more
box for SAM, under the class :data:`ANOMALY` (PatchCore does not know the defect type). On
``hazelnut_toy`` (5 folds, each defect photo tested once, ``bench/experiments/cascade_anomaly_folds/``)
the cascade's per-image IoU of the defect photos rose from 0.718 to 0.741 (YOLO11n, conf 0.25) and
0.690 to 0.734 (YOLOE-11n), no good photo masked, though one fold of five lost 0.04; beside a detector
that already finds every defect (the synthetic demo) the regions only cost (0.886 -> 0.740): an
option, to be checked on a labelled split.

>>> regions = AnomalyRegions.from_run("runs/anomaly/hazelnut")    # doctest: +SKIP
>>> regions.boxes(rgb, "photo.png")                                 # doctest: +SKIP
array([[212., 238., 320., 328.]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

import numpy as np

from anomaly.data import read_splits, refuse_copied_files, refuse_fitted
from anomaly.predict import resolve_threshold
from anomaly.regions import check_min_area as check_area_fits
from anomaly.regions import map_regions
from anomaly.run import AnomalyRun, load_run
from common.errors import UserError
from common.io import recorded_path

#: The class name of the regions' instances (after the detector's classes).
ANOMALY = "anomaly"


def check_min_area(min_area: int) -> None:
    """Refuses a smallest region of fewer than one pixel (``--anomaly-min-area``)."""
    if min_area < 1:
        raise UserError(f"--anomaly-min-area must be >= 1 pixel, got {min_area}")


def check_max_covered(max_covered: float) -> None:
    """Refuses a covered fraction outside [0, 1] (``--anomaly-max-covered``)."""
    if not 0 <= max_covered <= 1:
        raise UserError(f"--anomaly-max-covered must be in [0, 1], got {max_covered}")


@dataclass(frozen=True)
class AnomalyRegions:
    """A loaded PatchCore run and the cut that turns its maps into boxes.

    Attributes:
        run: the run (:func:`anomaly.run.load_run`).
        threshold: map value at and above which a pixel is anomalous.
        threshold_from: where the threshold came from (``given`` or ``from <metrics.json>``).
        min_area: smaller regions are dropped (pixels).
        max_covered: a region with more than this fraction of its pixels inside the detector's boxes
            is dropped (1: none is); see :meth:`boxes`.
    """

    run: AnomalyRun
    threshold: float
    threshold_from: str
    min_area: int = 16
    max_covered: float = 1.0

    @classmethod
    def from_run(
        cls, path: str | Path, *, threshold: str | None = None, min_area: int = 16, max_covered: float = 1.0
    ) -> AnomalyRegions:
        """Loads ``path`` (an ``anomaly.train`` run folder) and its threshold.

        Args:
            path: the run folder.
            threshold: a number, or an ``anomaly.evaluate`` ``metrics.json``; None: the run's own
                evaluation (``eval-val``, ``eval-test``, ``eval-mvtec``), as ``anomaly.predict``. A
                metrics file's threshold is raised just above the largest map value of the good
                images it scored, if lower: a region on a good photo costs the cascade its verdict.
            min_area: smallest region kept, pixels.
            max_covered: largest fraction of a kept region inside the detector's boxes, in [0, 1].

        Raises:
            UserError: ``min_area`` < 1 or above the run's photos' pixel count, ``max_covered`` outside
                [0, 1], a corrupt run, no threshold or a bad one.
        """
        check_min_area(min_area)
        check_max_covered(max_covered)
        run = load_run(path, flag="--anomaly-run")
        # more pixels than the run's photos: every region dropped, no box added, without a word
        check_area_fits(min_area, run.image_shape, flag="--anomaly-min-area")
        value, origin = resolve_threshold(threshold, Path(path), clean_goods=True, flag="--anomaly-threshold")
        return cls(run, value, origin, min_area, max_covered)

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the photos the run was fit on; the cascade's photos must match."""
        return self.run.image_shape

    def boxes(self, rgb: np.ndarray, path: str | Path, detected: np.ndarray | None = None) -> np.ndarray:
        """``(K, 4)`` float xyxy boxes of the regions of ``rgb`` (``(H, W, 3)`` uint8 RGB), peak first.

        Args:
            detected: ``(N, 4)`` xyxy boxes the detector found; a region with more than
                ``max_covered`` of its pixels inside them is left out (the detector has it).

        Raises:
            UserError: the photo's size is not the run's, naming ``path``.
        """
        [prediction] = self.run.predict([rgb], [path])
        self.run.warn_flagged_throughout(prediction.anomaly_map, self.threshold, path)
        regions = map_regions(prediction.anomaly_map, self.threshold, min_area=self.min_area)
        if detected is not None and len(detected) and self.max_covered < 1:
            inside = box_union(np.asarray(detected, dtype=float), prediction.anomaly_map.shape)
            regions = [r for r in regions if inside[r.window][r.crop].mean() <= self.max_covered]
        return np.array([r.box for r in regions], dtype=float).reshape(-1, 4)

    def check_not_fit_on(
        self, data: str | Path, split: str, photos: Sequence[str | Path] = (), *, progress: bool = False
    ) -> None:
        """Refuses to score ``split`` of the converted data set ``data`` if the run was fit on any of it.

        PatchCore maps the photos it was fit on as normal, so such a split's figures would be too good
        (``anomaly.evaluate`` holds the same rule). Compared by ``splits.json`` key, and ``photos`` (the
        split's files) by their bytes against the fit images' sha256 where the run records them: a fit
        photo under another name (another conversion's, a copy in the fit folder) has another key.
        ``progress``: a bar while they are hashed.

        Raises:
            UserError: naming the first such image, or ``data`` without a ``splits.json``.
        """
        keys = sorted(key for key, s in read_splits(data).split_of().items() if s == split)
        hint = f"; fit one on the good photos outside val/test ({self.refit_command(data)})"
        if split == "train" or self.fit_on_split_of(data):  # a refit with --data fits on them again
            hint = "; anomaly.train --data fits on the train split's good photos: score val or test with it"
        refuse_fitted(
            self.run.fit_keys,
            [(key, f"{key} of the {split} split") for key in keys],
            model="the --anomaly-run",
            hint=hint,
        )
        refuse_copied_files(self.run.fit_hashes, photos, progress=progress)

    def fit_on_split_of(self, data: str | Path) -> bool:
        """Whether the run was fit with ``anomaly.train --data`` on the converted data set ``data``."""
        protocol = self.run.info.get("protocol") or {}
        fit_data = protocol.get("data") if protocol.get("mode") == "split" else None
        return isinstance(fit_data, str) and Path(fit_data).resolve() == Path(data).resolve()

    def refit_command(self, data: str | Path) -> str:
        """``anomaly.train`` on the run's own photos, fit outside ``data``'s val and test (needs --root)."""
        info = self.run.info
        where = f"--root {quote(str(info['root']))} " if info.get("root") else "--root ROOT "
        if info.get("category"):
            where += f"--category {quote(str(info['category']))} "
        return f"python -m anomaly.train {where}--data {quote(str(data))} --out NEW_RUN"

    def record(self) -> dict:
        """What a run's settings say of it."""
        return {
            "run": recorded_path(self.run.path),
            "memory_bank_sha256": self.run.info["bank"]["sha256"],  # a run refit in place differs here
            "threshold": self.threshold,
            "threshold_from": self.threshold_from,
            "min_area": self.min_area,
            "max_covered": self.max_covered,
            "image_shape": list(self.image_shape),
        }


def box_union(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``shape`` bool, True inside any of ``boxes`` (``(N, 4)`` xyxy in pixel edges, rounded outwards)."""
    inside = np.zeros(shape, bool)
    for x1, y1, x2, y2 in boxes:
        top, left = max(0, int(np.floor(y1))), max(0, int(np.floor(x1)))
        inside[top : int(np.ceil(y2)), left : int(np.ceil(x2))] = True
    return inside
