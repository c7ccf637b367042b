"""Checks a converted data set with the tools that will consume it.

YOLO (:mod:`~converters.validation.yolo`): ultralytics' own ``check_det_dataset`` and label parser (the code
``yolo train`` runs), and no label row is a box of no size or a YOLO-seg polygon of no area
(:mod:`~converters.validation.label_rows`). COCO (:mod:`~converters.validation.coco`):
``pycocotools.coco.COCO`` loads each split, every image file it lists decodes, every annotation's
rendered mask has its stated ``area``, and COCOeval of the ground truth against itself gives AP 1.0.

One rule for a split without images, in both formats: an empty ``train`` or ``val`` is a
problem (``yolo train`` stops without them, and a COCO trainer has nothing to learn from or
validate on); an empty ``test`` passes with a note (``--split 0.8 0.2 0``: nothing to score on,
which may be the user's choice), unless ``splits.json`` lists test images
(:mod:`~converters.validation.split_record`).

The command line is ``python -m converters.validate datasets/metal_nut_yolo`` (:mod:`converters.validate`).
"""

from __future__ import annotations

from converters.validation.coco import validate_coco
from converters.validation.data_set import format_checks, validate
from converters.validation.split_check import SplitCheck
from converters.validation.split_record import split_record_note
from converters.validation.yolo import validate_yolo

__all__ = ["SplitCheck", "format_checks", "split_record_note", "validate", "validate_coco", "validate_yolo"]
