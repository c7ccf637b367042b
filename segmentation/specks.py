"""Stray specks in SAM's masks: islands and holes a few logit cells small, removed.

SAM decodes a mask as 256x256 logits over its padded input square, and upscaling logits that
hover near the threshold leaves specks of a cell or two beside the outline and pinholes in it.
The annotation page saves an accepted mask into its class's MVTec mask, and the inspection
cascade writes its masks into the same kind of tree; converting either splits a mask into
8-connected components (``converters.masks.mask_to_instances``), so each speck would become an
instance of its own. Both remove them (``--speck-cells``). Measured on ``hazelnut_toy`` (54 true
instances, zero-shot MobileSAM, ``bench/experiments/annotate_specks/``): a click per defect, the
candidate a user would pick, exported 127 instances, the tight box 61-63; removing regions under 16
cells (64 px on these 512-px photos) leaves 62 and 54, and moves mean IoU by at most +0.001. On the
cascade's 5-fold outputs (``bench/experiments/cascade_specks/``) it moves mask AP by +0.000 to
+0.003 and per-image IoU by at most 0.0002.

segment-anything's own ``remove_small_regions`` does the work, holes first and then islands
(``SamAutomaticMaskGenerator``'s order); it keeps a mask's largest island even when every
island is small, so a tiny defect outlined on its own survives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from common.errors import UserError

#: Smallest island or hole kept, in SAM's low-resolution cells ((long side / 256)² photo pixels each).
DEFAULT_CELLS = 16.0
#: Cells on the side of SAM's low-resolution logits (they span the padded input square).
SAM_GRID = 256


def check_speck_cells(cells: float) -> None:
    """Refuses a ``--speck-cells`` that is no number of cells (negative, infinite, NaN)."""
    if not 0 <= cells < float("inf"):  # NaN too
        raise UserError(f"--speck-cells must be a number >= 0, got {cells}")


def min_region_area(cells: float, side: int, grid: int) -> float:
    """Photo pixels in ``cells`` logit cells, for a ``side``-px frame decoded on a ``grid``-cell side."""
    return cells * (side / grid) ** 2


def without_specks(
    masks: np.ndarray, cells: float, grid: int = SAM_GRID, *, out: np.ndarray | None = None
) -> np.ndarray:
    """``(N, H, W)`` bool masks of one frame less their islands and holes under ``cells`` logit cells.

    The frame's long side spans the ``grid`` cells of SAM's low-resolution logits (the padded input
    square's); ``cells <= 0`` or no masks: ``masks`` as they are, else ``out``.

    Args:
        out: where the cleaned masks go, ``(N, H, W)`` bool: ``masks`` itself cleans them in place
            (each mask is read before it is written), for a caller that drops the uncleaned ones;
            None: a new array.
    """
    if cells <= 0 or not len(masks):
        return masks
    area = min_region_area(cells, max(masks.shape[1:]), grid)
    # filled in place: a list of cleaned masks then np.stack held every mask twice more (300 boxes of a
    # 3000 x 2500 photo: 4.5 GB on top of the masks' 2.25)
    cleaned = np.empty(masks.shape, dtype=bool) if out is None else out
    for index, mask in enumerate(masks):
        cleaned[index] = remove_specks(mask, area)
    return cleaned


def visible_parts(masks: np.ndarray, min_area: float, classes: Sequence | None = None) -> np.ndarray:
    """What each of ``(N, H, W)`` bool masks, best first, shows once the better ones are painted over it.

    A value-coded mask (one value per class) splits into 8-connected parts when converted, and each
    part is an instance. So a mask that a better one covers in part loses the pieces the covering
    leaves of it (a rim around the better mask, a sliver between two) that would be such a part under
    ``min_area`` pixels: a piece joined to what a better mask of its class shows is kept, as it joins
    that instance. A mask no better one touches is kept as it is (its own specks are
    :func:`without_specks`' business); ``min_area`` 0 keeps every piece. ``classes``: each mask's
    class (default: every mask a class of its own). Pixels a dropped piece leaves go to the next mask
    claiming them.
    """
    parts = np.zeros(masks.shape, dtype=bool)
    for index, part in enumerate(iter_visible_parts(masks, min_area, classes)):
        parts[index] = part
    return parts


def iter_visible_parts(
    masks: np.ndarray, min_area: float, classes: Sequence | None = None
) -> Iterator[np.ndarray]:
    """:func:`visible_parts`, one ``(H, W)`` bool part at a time, in mask order: for a caller that paints
    them into one mask, without an ``(N, H, W)`` array of them beside the masks."""
    classes = range(len(masks)) if classes is None else classes
    shown = np.zeros(masks.shape[1:], dtype=bool)
    by_class: dict = {}
    for mask, label in zip(masks, classes, strict=True):
        part = mask & ~shown
        same = by_class.setdefault(label, np.zeros_like(shown))
        if min_area > 0 and (mask & shown).any():
            part = _kept_pieces(part, same, min_area)
        shown |= part
        same |= part
        yield part


def _kept_pieces(part: np.ndarray, same: np.ndarray, min_area: float) -> np.ndarray:
    """The pixels of ``part`` in 8-connected regions of ``part | same`` of ``min_area`` pixels or more
    (unlike segment-anything's ``remove_small_regions``, no largest region is kept: ``part`` is what
    a better mask left of a mask)."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats((part | same).astype(np.uint8), connectivity=8)
    kept = np.flatnonzero(stats[1:count, cv2.CC_STAT_AREA] >= min_area) + 1
    return part & np.isin(labels, kept)


def remove_specks(mask: np.ndarray, min_area: float) -> np.ndarray:
    """``mask`` (bool) without holes and islands of fewer than ``min_area`` pixels (0: unchanged).

    The same pixels as segment-anything's ``remove_small_regions`` on the whole mask (holes,
    then islands), worked out on the mask's box alone (:func:`_box_frame`): on a 4000-px photo
    its whole-image labelling took about 0.5 s per mask.
    """
    from segment_anything.utils.amg import remove_small_regions  # imports torch: not for --help

    if min_area <= 0 or not mask.any():
        return mask
    frame = _box_frame(mask, min_area)
    work = mask if frame is None else np.pad(mask[frame[0]], frame[1])
    work, _ = remove_small_regions(work, min_area, mode="holes")
    work, _ = remove_small_regions(work, min_area, mode="islands")
    if frame is None:
        return work
    (rows, cols), ((top, bottom), (left, right)) = frame
    cleaned = mask.copy()
    cleaned[rows, cols] = work[top : work.shape[0] - bottom, left : work.shape[1] - right]
    return cleaned


def _box_frame(mask: np.ndarray, min_area: float) -> tuple[tuple[slice, slice], tuple] | None:
    """Where :func:`remove_specks` can work instead of on the whole mask; None: nowhere smaller.

    The mask's box grown by one background pixel (within the photo): every island lies in it, and
    so does every hole but the background outside the box. That background is one region (the box
    spans neither the photo's width nor its height) of at least ``min_area`` pixels, so it stays
    background. Background pixels padded onto each side of the window where the photo goes on
    (rows of ``min_area`` pixels above and below, columns as many left and right) make it a region
    as large, connected to the same pixels; sides on the photo's edge get none (a region there
    ends at the edge, as in the photo).

    Returns:
        ``((row slice, column slice), np.pad widths)``.
    """
    height, width = mask.shape
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    spans = (y0 == 0 and y1 == height) or (x0 == 0 and x1 == width)
    if spans or height * width - (y1 - y0) * (x1 - x0) < min_area:
        return None
    y0, x0, y1, x1 = max(y0 - 1, 0), max(x0 - 1, 0), min(y1 + 1, height), min(x1 + 1, width)
    rows_out, cols_out = int(np.ceil(min_area / (x1 - x0))), int(np.ceil(min_area / (y1 - y0)))
    widths = ((rows_out * (y0 > 0), rows_out * (y1 < height)), (cols_out * (x0 > 0), cols_out * (x1 < width)))
    return (slice(y0, y1), slice(x0, x1)), widths
