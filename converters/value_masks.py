"""Value-coded masks: one ``(H, W)`` uint8 mask per image whose pixel value names the defect class.

The convention that the annotation app and the inspection write, and that the
converters read back with ``--mask-values``:

- class ``i`` of a class list is pixel value ``255 - i`` (the first class is 255,
  as in MVTec AD's 0/255 masks), 0 is background (``good``);
- ``mask_values.json`` beside a category's ``test/`` and ``ground_truth/``
  folders maps the values back to names: ``{"255": "scratch", "254": "dent", "0": "good"}``;
- an image goes into ``test/<class>/`` when all its instances are of one class,
  ``test/combined/`` (MVTec AD's name) when they are of several, ``test/good/``
  without instances.

So a tree reads two ways with the stock converters: ``python -m
converters.mvtec2yolo --root <tree>`` ("``> 0`` is defect", the class is the
folder name), or with ``--mask-values <tree>/<category>/mask_values.json``,
where every instance keeps its own class, also on ``combined`` images.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.io import atomic_write
from converters.masks import rle_to_mask
from converters.records import GOOD

#: Defect folder of images that hold instances of more than one class (MVTec AD's name).
MIXED = "combined"
#: The value map beside a category's ``test/`` and ``ground_truth/`` folders.
MASK_VALUES_FILE = "mask_values.json"
#: Mask value of the first class; class ``i`` is ``FIRST_VALUE - i``.
FIRST_VALUE = 255
#: The annotation page's state file, beside the category folder it writes (its ``--out``):
#: ``segmentation.annotate.records.STATE_FILE``, which the converters do not import.
PAGE_STATE_FILE = "annotate_state.json"


def class_values(classes: Sequence[str]) -> dict[int, str]:
    """The value map of a class list: ``{255: classes[0], 254: classes[1], ..., 0: "good"}``.

    >>> class_values(["scratch", "dent"])
    {255: 'scratch', 254: 'dent', 0: 'good'}

    Raises:
        UserError: more classes than an 8-bit mask has values for.
    """
    if len(classes) > FIRST_VALUE:
        raise UserError(f"at most {FIRST_VALUE} classes fit an 8-bit mask, got {len(classes)}")
    return {FIRST_VALUE - index: name for index, name in enumerate(classes)} | {0: GOOD}


def compose_mask(
    instances: Iterable[tuple[str, dict | np.ndarray]], *, classes: Sequence[str], shape: tuple[int, int]
) -> np.ndarray:
    """One value-coded mask from instance masks, painted in order (a later instance wins overlaps).

    Args:
        instances: ``(class name, mask)`` per instance; the mask a COCO RLE or an ``(H, W)`` bool array.
        classes: the class list that fixes the values (:func:`class_values`).
        shape: ``(H, W)``.

    Returns:
        ``(H, W)`` uint8, 0 background, ``255 - i`` for class ``i``.

    Raises:
        UserError: an instance of a class not in ``classes``, or a mask of another shape.
    """
    values = {name: value for value, name in class_values(classes).items() if value}
    mask = np.zeros(shape, np.uint8)
    for class_name, instance in instances:
        if class_name not in values:
            raise UserError(f"instance of unknown class '{class_name}' (classes: {', '.join(classes)})")
        pixels = rle_to_mask(instance) if isinstance(instance, dict) else np.asarray(instance, dtype=bool)
        if pixels.shape != tuple(shape):
            raise UserError(f"instance mask is {pixels.shape}, image is {tuple(shape)}")
        mask[pixels] = values[class_name]
    return mask


def defect_folder(class_names: Iterable[str]) -> str:
    """``test/`` folder of an image with defects of ``class_names``: the class, or ``combined``.

    >>> defect_folder(["scratch", "scratch"]), defect_folder(["scratch", "dent"])
    ('scratch', 'combined')
    """
    names = set(class_names)
    if not names:
        raise ValueError("an image without instances has no defect folder")
    return next(iter(names)) if len(names) == 1 else MIXED


def value_map_text(classes: Sequence[str]) -> str:
    """The text of ``mask_values.json`` for a class list (``{"255": "scratch", ..., "0": "good"}``)."""
    return json.dumps({str(value): name for value, name in class_values(classes).items()}, indent=2) + "\n"


def written_by_page(root: str | Path) -> bool:
    """Whether ``root`` is a tree the annotation page wrote: its ``--out`` (``root`` holds the page's
    state file) or the category folder in it (its parent does), which the page's export converts and
    ``python -m converters.mvtec2yolo --root`` may be given by hand. Its masks are the page's own,
    so the advice for one fits the page, not a mask file. ``..`` is resolved first: the parent of
    ``out/widget/..`` is ``out``'s, not ``out/widget``.
    """
    root = Path(os.path.abspath(root))
    return any((folder / PAGE_STATE_FILE).is_file() for folder in (root, root.parent))


def write_value_map(category_dir: str | Path, classes: Sequence[str]) -> Path:
    """Writes ``<category_dir>/mask_values.json`` atomically, unless it already says the same."""
    path = Path(category_dir) / MASK_VALUES_FILE
    text = value_map_text(classes)
    if not path.is_file() or path.read_text() != text:
        atomic_write(path, text.encode())
    return path
