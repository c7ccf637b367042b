"""Inspection of new photos: detector boxes -> fine-tuned SAM masks -> verdicts, scored end to end.

- ``inspector``: :class:`~inspection.inspector.Inspector`, the cascade, built once, called per photo.
- ``result``: :class:`~inspection.result.Inspection`, one photo's verdict, boxes and masks.
- ``outputs``, ``mask_tree``, ``overlays``: the writers (COCO results, value-coded MVTec masks, pictures).
- ``photos``: where photos come from and the names their outputs get.
- ``checkpoints``: SAM checkpoint checks before any weights load.
- ``anomaly_regions``: a PatchCore run's regions as a second source of boxes (``--anomaly-run``).
- ``options``: the options both commands share (models, detection, device, cache) and their flags.
- ``predict``: ``python -m inspection.predict``.
- ``evaluate``, ``scoring``, ``report``: ``python -m inspection.evaluate``: the cascade scored end to end on
  a converted split beside SAM from ground-truth boxes, in one self-contained ``report.html``.
"""

import common  # noqa: F401, I001  # first: keeps ultralytics from auto-installing (see common/__init__.py)
from common.extras import require_for_package

require_for_package("train", __name__)
