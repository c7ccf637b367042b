"""Ground-truth mask files as they are stored: the checks every reader of defect masks shares.

Read without a value map, every value > 0 of a mask is defect: the converters make instances of it,
``anomaly.evaluate`` scores its pixel figures against it. A 0/255 mask saved as JPEG, or anti-aliased,
has faint values around every edge, and they become defect too. The converters warn of such masks
(``converters.convert``), and so does ``anomaly.evaluate``, with these rules and this wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Mask formats whose compression changes pixel values: a 0/255 mask comes back with faint values
#: around every edge, and every value > 0 is defect.
LOSSY_MASK_SUFFIXES = frozenset({".jpg", ".jpeg"})

#: Distinct defect values above which a mask read without a value map is taken for a soft one: value-
#: coded classes are a handful of values, an anti-aliased or once JPEG-compressed edge dozens.
SOFT_MASK_VALUES = 8


def mask_values(mask: np.ndarray) -> np.ndarray:
    """Sorted distinct non-zero values of an integer mask ``(H, W)``.

    >>> mask_values(np.array([[0, 255], [3, 255]], np.uint8)).tolist()
    [3, 255]
    """
    if mask.dtype in (np.uint8, np.uint16):
        counts = np.bincount(mask.ravel(), minlength=1)  # far faster than np.unique's sort
        values = np.flatnonzero(counts)
    else:
        values = np.unique(mask)
    return values[values != 0]


def is_lossy_mask(path: Path) -> bool:
    """Whether the mask file is of a format whose compression changes values (:data:`LOSSY_MASK_SUFFIXES`)."""
    return path.suffix.lower() in LOSSY_MASK_SUFFIXES


def is_soft_mask(defect_values: int) -> bool:
    """Whether a mask of ``defect_values`` distinct non-zero values (:func:`mask_values`), read without
    a value map, is taken for an anti-aliased or once JPEG-compressed one (:data:`SOFT_MASK_VALUES`)."""
    return defect_values > SOFT_MASK_VALUES


def lossy_masks_line(masks: Sequence[Path], *, effect: str, remedy: str, named: int = 1) -> str | None:
    """The warning (without ``warning:``) for JPEG ``masks``, naming the first ``named``; None for none.

    Args:
        masks: the JPEG mask files (:func:`is_lossy_mask`).
        effect: what the faint pixels do to the reader's results (``outlines grow and ...``).
        remedy: what to do about it (``save the masks as PNG``).
    """
    if not masks:
        return None
    files = "1 mask is a JPEG file" if len(masks) == 1 else f"{len(masks)} masks are JPEG files"
    shown = ", ".join(str(mask) for mask in masks[:named])
    return (
        f"{files}, e.g. {shown}: JPEG compression leaves faint non-zero pixels around every defect, "
        f"and every value > 0 is defect, so {effect}; {remedy}"
    )


def soft_masks_line(
    masks: Sequence[tuple[Path, int]], *, effect: str, remedy: str, named: int = 1
) -> str | None:
    """The warning (without ``warning:``) for soft ``masks``, naming the first ``named``; None for none.

    Args:
        masks: ``(mask file, its distinct defect values)`` of each mask :func:`is_soft_mask` takes for
            a soft one (JPEG files left to :func:`lossy_masks_line`).
        effect: what the faint pixels do to the reader's results (``outlines grow and ...``).
        remedy: what to do about it (``save them as 0/255``).
    """
    if not masks:
        return None
    files = "1 mask holds" if len(masks) == 1 else f"{len(masks)} masks hold"
    shown = ", ".join(f"{path} ({values})" for path, values in masks[:named])
    return (
        f"{files} more than {SOFT_MASK_VALUES} distinct defect values, e.g. {shown}, as anti-aliased or "
        f"once JPEG-compressed masks do, and every value > 0 is defect, so {effect}; {remedy}"
    )
