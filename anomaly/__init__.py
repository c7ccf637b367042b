"""Good-only anomaly detection: PatchCore on frozen ImageNet backbones that exist offline.

    from anomaly.run import fit_run, load_run
    run = fit_run("datasets/mvtec_ad", "hazelnut", "runs/anomaly/hazelnut")   # train/good only
    [prediction] = load_run("runs/anomaly/hazelnut").predict([rgb])        # .anomaly_map, .score

- ``backbones``, ``efficientnet_lite``: the feature extractors and their weights (MobileNetV2,
  EfficientNet-Lite0, WideResNet-50-2), declared as :class:`~common.weights.CheckpointSpec`.
- ``features``, ``coreset``, ``memory_bank``, ``maps``: PatchCore's parts, pure tensor functions.
- ``patchcore``: :class:`~anomaly.patchcore.PatchCore`, fit and score.
- ``data``: the MVTec and converter-split protocols over the converters' scanner, and their guard.
- ``run``: the run folder (memory bank in float16) and the Python calls.
- ``regions``, ``masks``, ``outputs``: anomaly map -> regions -> boxes -> SAM masks -> COCO results,
  MVTec-layout masks and annotation-page proposals; ``mask_scores``: those masks' IoU and mask AP.
- ``train``, ``evaluate``, ``predict``: the commands; ``report``: metrics and ``report.md``.
"""

import common  # noqa: F401, I001  # first: keeps ultralytics from auto-installing (see common/__init__.py)
from common.extras import require_for_package

require_for_package("train", __name__)
