"""MVTec-layout readers and YOLO/COCO writers (``python -m converters.mvtec2yolo``)."""

import common  # noqa: F401  # first: keeps ultralytics from auto-installing (see common/__init__.py)
