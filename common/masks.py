"""Ground-truth mask files as they are stored: the checks every reader of defect masks shares.

Read without a value map, every value > 0 of a mask is defect: the converters make instances of it,
``anomaly.evaluate`` scores its pixel figures against it. A 0/255 mask saved as JPEG, or anti-aliased,
has faint values around every edge, and they become defect too. The converters warn of such masks
(``converters.convert``), and so does ``anomaly.evaluate``, with these rules and this wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

#: Mask formats whose compression changes pixel values: a 0/255 mask comes back with faint values
#: around every edge, and every value > 0 is defect.
LOSSY_MASK_SUFFIXES = frozenset({".jpg", ".jpeg"})

#: Distinct defect values above which a mask read without a value map is taken for a soft one: value-
#: coded classes are a handful of values, an anti-aliased or once JPEG-compressed edge dozens.
SOFT_MASK_VALUES = 8


#: Largest value a faint one may be, as a share of the mask's largest: a 0/255 mask saved once as JPEG
#: (even at quality 98 to 100, then as PNG) holds 1, 2, 3 ... around every edge, few enough distinct values
#: to pass :data:`SOFT_MASK_VALUES`, each faint pixel defect all the same.
FAINT_SHARE = 1 / 16

#: Smallest largest value for faint ones to count: class ids 1, 2, ... of a value-coded mask stay below it.
FAINT_TOP = 128

#: Faint pixels, as a share of the mask's solid ones (at least half its largest value), above which they are
#: taken for regions of their own (a class 1 beside a class 255), not an edge's ringing (at most 0.18 on
#: hazelnut_toy's 512 px masks through JPEG at quality 95 to 100), unless all lie within :data:`FAINT_REACH`.
FAINT_PIXELS = 0.5

#: Pixels from a solid one within which JPEG's ringing lies: it codes 8 x 8 blocks, and a block of zeros
#: comes back as zeros, so ringing stays in the blocks an edge crosses. Ringing grows with a defect's outline,
#: its solid pixels with its area: on small masks it outnumbers them (hazelnut_toy's masks at 96 px through
#: JPEG at quality 75 to 100 held up to 1.7 faint pixels to each solid one, at 48 px 6.6; 27 of 884 such
#: re-saves at 96 px went unwarned), and every faint pixel of those not soft lay within 7 px of a solid one.
FAINT_REACH = 7

#: Share of a faint value's pixels amid its own (their whole 3 x 3 neighbourhood of that value) from which
#: it is taken for a solid region of its own (a 4 x 4 class 1 region: 4 of its 16), however small: JPEG's
#: ringing leaves specks among zeros (at most 0.08 for one value on hazelnut_toy's masks at 96 to 900 px
#: through JPEG at quality 75 to 100, saved once or twice; 0.18 at quality 60).
FAINT_SOLID = 0.2


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


def faint_values(mask: np.ndarray) -> list[int]:
    """The faint non-zero values of an integer mask ``(H, W)`` beside its largest, as JPEG's ringing leaves.

    Faint: up to :data:`FAINT_SHARE` of the largest value, which is at least :data:`FAINT_TOP` (a 0/255
    mask, not class ids), scattered as specks: fewer than :data:`FAINT_SOLID` of its pixels amid pixels of
    the same value (:func:`amid`), each value judged alone; and the values so scattered together on fewer
    pixels than :data:`FAINT_PIXELS` of the solid ones, or all within :data:`FAINT_REACH` of a solid one
    (:func:`near`), as JPEG's ringing on a small mask. Empty for a clean 0/255 or 0/1 mask, class ids
    1 .. k, MVTec LOCO's 255, 254, ... and a class 1 region beside a 255 that is solid (4 x 4 px or more) or
    holds half as many pixels as the 255 or more and reaches farther from it; a thinner one, smaller or
    within :data:`FAINT_REACH` of the 255 throughout, is faint. A solid value is never
    faint, ringing of other values beside it still is.

    >>> ringing = np.zeros((8, 8), np.uint8); ringing[2:6, 2:6] = 255; ringing[1, 2:6] = [1, 2, 1, 1]
    >>> faint_values(ringing)
    [1, 2]
    >>> ringing[1, 2:6] = 0; faint_values(ringing)
    []
    """
    values = mask_values(mask)
    if not values.size or int(values[-1]) < FAINT_TOP:
        return []
    top = int(values[-1])
    faint = values[values <= top * FAINT_SHARE].tolist()
    if not faint:
        return []
    specks, speck_pixels = [], np.zeros(mask.shape, bool)
    for value in faint:  # each value alone: a solid class 1 beside ringing of 2 and 3 is a class
        pixels = mask == value
        if np.count_nonzero(amid(pixels)) < FAINT_SOLID * np.count_nonzero(pixels):
            specks.append(value)
            speck_pixels |= pixels
    if not specks:
        return []
    solid = mask >= top / 2
    if np.count_nonzero(speck_pixels) < FAINT_PIXELS * np.count_nonzero(solid):
        return specks
    # as many as the solid pixels or more: ringing still, on a small defect, if none lies beyond its reach
    return specks if not np.any(speck_pixels & ~near(solid, FAINT_REACH)) else []


def amid(mask: np.ndarray) -> np.ndarray:
    """The pixels of a boolean mask ``(H, W)`` whose 3 x 3 neighbourhood lies wholly in it (a 3 x 3 erosion,
    outside the image counting as out).

    >>> amid(np.pad(np.ones((3, 4), bool), 1)).astype(int).tolist()[2]
    [0, 0, 1, 1, 0, 0]
    """
    padded = np.pad(mask, 1)
    height, width = mask.shape
    inside = np.ones_like(mask, dtype=bool)
    for dy in range(3):
        for dx in range(3):
            inside &= padded[dy : dy + height, dx : dx + width]
    return inside


def near(mask: np.ndarray, reach: int) -> np.ndarray:
    """The pixels of an image ``(H, W)`` within ``reach`` pixels of a pixel of the boolean ``mask`` across or
    along (a dilation by a square of side ``2 * reach + 1``).

    >>> near(np.eye(1, 6, 2, dtype=bool), 1).astype(int).tolist()
    [[0, 1, 1, 1, 0, 0]]
    """
    side = 2 * reach + 1
    return cv2.dilate(mask.astype(np.uint8), np.ones((side, side), np.uint8)) > 0


def is_lossy_mask(path: Path) -> bool:
    """Whether the mask file is of a format whose compression changes values (:data:`LOSSY_MASK_SUFFIXES`)."""
    return path.suffix.lower() in LOSSY_MASK_SUFFIXES


def is_soft_mask(defect_values: int) -> bool:
    """Whether a mask of ``defect_values`` distinct non-zero values (:func:`mask_values`), read without
    a value map, is taken for an anti-aliased or once JPEG-compressed one (:data:`SOFT_MASK_VALUES`)."""
    return defect_values > SOFT_MASK_VALUES


def faint_masks_line(
    masks: Sequence[tuple[Path, Sequence[int], int]], *, effect: str, remedy: str, named: int = 1
) -> str | None:
    """The warning (without ``warning:``) for ``masks`` with faint values, naming the first ``named``; None
    for none.

    Args:
        masks: ``(mask file, its faint values, its largest value)`` of each mask :func:`faint_values` finds
            faint values in that :func:`is_soft_mask` does not take for a soft one already.
        effect: what the faint pixels do to the reader's results (``outlines grow and ...``).
        remedy: what to do about it (``save them as 0/255``).
    """
    if not masks:
        return None
    files = "1 mask holds" if len(masks) == 1 else f"{len(masks)} masks hold"

    def shown(faint: Sequence[int], top: int) -> str:
        listed = ", ".join(str(value) for value in faint[:3]) + (", ..." if len(faint) > 3 else "")
        return f"{listed} beside {top}"

    examples = ", ".join(f"{path} ({shown(faint, top)})" for path, faint, top in masks[:named])
    return (
        f"{files} faint defect values beside their largest, e.g. {examples}, as masks once saved as JPEG do "
        f"(at any quality), and every value > 0 is defect, so {effect}; {remedy}"
    )


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
