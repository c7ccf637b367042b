"""SAM on defect masks: model registry, embedding cache, decoder fine-tuning, evaluation, annotation page.

- ``models``: the SAM registry (builder + published weights per model; MobileSAM by default on CPUs).
- ``embeddings``: the image-embedding cache; ``python -m segmentation.embed`` fills it.
- ``train``: ``python -m segmentation.train``: mask-decoder fine-tuning on cached embeddings.
  Set-up in ``run_setup``, run-folder files in ``run_folder``; training samples and loss in ``instances``.
- ``evaluate``: ``python -m segmentation.evaluate``: IoU, Dice and mask AP, zero-shot vs fine-tuned.
- ``colour_head``: the optional per-pixel head on SAM's box logits and the photo's colours
  (``colour_head: true`` in training; applied by evaluation, the cascade and the annotation page).
- ``colour_prompt``: the optional colour-distance map given to SAM as each box's mask prompt
  (``colour_prompt: true`` in training, ``segmentation.evaluate --colour-prompt``).
- ``export``: ``python -m segmentation.export``: the tuned prompt encoder + mask decoder as ONNX.
- ``annotate``: ``python -m segmentation.annotate``: the SAM-assisted annotation page.
"""

import common  # noqa: F401, I001  # first: keeps ultralytics from auto-installing (see common/__init__.py)
from common.extras import require_for_package

require_for_package("train", __name__)
