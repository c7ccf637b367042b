"""A second source of boxes for the cascade: the regions of a PatchCore run's anomaly map.

A detector trained on a handful of photos misses stains, or boxes a part of a large one. PatchCore,
fit on good photos alone (:mod:`anomaly`), marks where a photo departs from them; each connected
region of its map cut at the run's threshold (:func:`anomaly.regions.map_regions`) becomes one more
box for SAM, under the class :data:`ANOMALY` (PatchCore does not know the defect type). On
``hazelnut_toy`` (5 seeded splits, ``bench/experiments/cascade_anomaly_union/``) the cascade's
per-image IoU of the defect photos rose from 0.517 to 0.578 (YOLO11n) and 0.605 to 0.675 (YOLOE-11n),
no good photo masked; beside a detector that already finds every defect (the synthetic demo) the regions
only cost (0.886 -> 0.740): an option, to be checked on a labelled split.

>>> regions = AnomalyRegions.from_run("runs/anomaly/hazelnut")    # doctest: +SKIP
>>> regions.boxes(rgb, "photo.png")                                 # doctest: +SKIP
array([[212., 238., 320., 328.]])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly.predict import resolve_threshold
from anomaly.regions import map_regions
from anomaly.run import AnomalyRun, load_run
from common.errors import UserError

#: The class name of the regions' instances (after the detector's classes).
ANOMALY = "anomaly"


def check_min_area(min_area: int) -> None:
    """Refuses a smallest region of fewer than one pixel (``--anomaly-min-area``)."""
    if min_area < 1:
        raise UserError(f"--anomaly-min-area must be >= 1 pixel, got {min_area}")


@dataclass(frozen=True)
class AnomalyRegions:
    """A loaded PatchCore run and the cut that turns its maps into boxes.

    Attributes:
        run: the run (:func:`anomaly.run.load_run`).
        threshold: map value at and above which a pixel is anomalous.
        threshold_from: where the threshold came from (``given`` or ``from <metrics.json>``).
        min_area: smaller regions are dropped (pixels).
    """

    run: AnomalyRun
    threshold: float
    threshold_from: str
    min_area: int = 16

    @classmethod
    def from_run(
        cls, path: str | Path, *, threshold: str | None = None, min_area: int = 16
    ) -> AnomalyRegions:
        """Loads ``path`` (an ``anomaly.train`` run folder) and its threshold.

        Args:
            path: the run folder.
            threshold: a number, or an ``anomaly.evaluate`` ``metrics.json``; None: the run's own
                evaluation (``eval-val``, ``eval-test``, ``eval-mvtec``), as ``anomaly.predict``. A
                metrics file's threshold is raised just above the largest map value of the good
                images it scored, if lower: a region on a good photo costs the cascade its verdict.
            min_area: smallest region kept, pixels.

        Raises:
            UserError: ``min_area`` < 1, a corrupt run, no threshold or a bad one.
        """
        check_min_area(min_area)
        run = load_run(path)
        value, origin = resolve_threshold(threshold, Path(path), clean_goods=True)
        return cls(run, value, origin, min_area)

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the photos the run was fit on; the cascade's photos must match."""
        return self.run.image_shape

    def boxes(self, rgb: np.ndarray, path: str | Path) -> np.ndarray:
        """``(K, 4)`` float xyxy boxes of the regions of ``rgb`` (``(H, W, 3)`` uint8 RGB), peak first.

        Raises:
            UserError: the photo's size is not the run's, naming ``path``.
        """
        [prediction] = self.run.predict([rgb], [path])
        regions = map_regions(prediction.anomaly_map, self.threshold, min_area=self.min_area)
        return np.array([r.box for r in regions], dtype=float).reshape(-1, 4)

    def record(self) -> dict:
        """What a run's settings say of it."""
        return {
            "run": str(Path(self.run.path).absolute()),
            "threshold": self.threshold,
            "threshold_from": self.threshold_from,
            "min_area": self.min_area,
            "image_shape": list(self.image_shape),
        }
