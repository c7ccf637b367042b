"""MVTec-family readers (eight data set layouts, :mod:`converters.layouts`) and YOLO/COCO writers.

``python -m converters.mvtec2yolo --root <any of them> --out ...``.
"""

import common  # noqa: F401  # first: keeps ultralytics from auto-installing (see common/__init__.py)
