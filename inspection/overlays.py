"""A picture of one inspection for people: masks, boxes and labels on the photo, the verdict on top.

:func:`common.text.put_text` draws the text in DejaVu Sans (matplotlib's), so a class name
outside ASCII draws as itself and nothing reaches for the network. Pure: pixels in, pixels out.
"""

from __future__ import annotations

import cv2
import numpy as np

from common.text import put_text, text_size
from inspection.result import Inspection

#: BGR colours of classes, by class id modulo their number (well apart, readable on grey parts).
PALETTE = (
    (56, 56, 255),
    (49, 210, 207),
    (255, 149, 0),
    (151, 157, 255),
    (31, 112, 255),
    (29, 178, 255),
    (0, 194, 255),
    (199, 55, 255),
    (134, 219, 61),
    (168, 153, 44),
)
#: Title bar colours: good and defective.
GOOD_BAR, DEFECT_BAR = (60, 150, 60), (40, 40, 200)
#: Opacity of the filled masks.
MASK_ALPHA = 0.4
#: Colour of the masks' outlines (BGR): a class colour fill fades on a stain of its own colour
#: (class 0 is red), an outline in white still shows where the mask ends.
OUTLINE = (255, 255, 255)


def class_color(class_id: int) -> tuple[int, int, int]:
    """The BGR colour of a class id."""
    return PALETTE[int(class_id) % len(PALETTE)]


def draw_overlay(image: np.ndarray, inspection: Inspection) -> np.ndarray:
    """The photo with every instance drawn and a title bar with the verdict above it.

    Args:
        image: ``(H, W, 3)`` uint8 BGR, the inspected photo.
        inspection: its result (boxes and masks in the photo's pixels).

    Returns:
        ``(H + bar, W, 3)`` uint8 BGR; the bar's height grows with the photo's width.
    """
    scale = max(image.shape[1] / 640, 0.4)
    canvas = fill_masks(image, inspection)
    thickness = max(1, round(2 * scale))
    for i in range(len(inspection) - 1, -1, -1):  # best outline and box last, on top, as the masks
        color = class_color(inspection.classes[i])
        outline(canvas, inspection.masks[i], OUTLINE, max(1, round(scale)))
        x1, y1, x2, y2 = (int(round(v)) for v in inspection.boxes[i])
        cv2.rectangle(canvas, (x1, y1), (max(x2 - 1, x1), max(y2 - 1, y1)), color, thickness)
    placed: list[tuple[int, int, int, int]] = []
    for i in range(len(inspection)):  # best first: a label that would cover a better one's is left out
        label = f"{inspection.names[i]} {inspection.scores[i]:.2f}"
        corner = (int(round(inspection.boxes[i][0])), int(round(inspection.boxes[i][1])))
        rect = label_rect(label, corner, scale)
        if not any(_overlap(rect, other) for other in placed):
            placed.append(rect)
            _label(canvas, label, rect, class_color(inspection.classes[i]), scale)
    return np.vstack([title_bar(inspection, image.shape[1], scale), canvas])


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def fill_masks(image: np.ndarray, inspection: Inspection) -> np.ndarray:
    """The photo with every mask filled in its class colour at :data:`MASK_ALPHA`, the best on top.

    Each pixel is blended once, in the colour of the best instance covering it, so overlapping
    masks do not pile up into an opaque patch.
    """
    canvas = image.copy()
    if not len(inspection):
        return canvas
    # uint8 colours (a float32 canvas of them was 144 MB on a 4000 x 3000 photo), float32 where blended
    colors = np.zeros(image.shape, np.uint8)
    for i in range(len(inspection) - 1, -1, -1):  # the best instance written last keeps its pixels
        colors[inspection.masks[i]] = class_color(inspection.classes[i])
    covered = np.any(inspection.masks, axis=0)
    blended = canvas[covered] * (1 - MASK_ALPHA) + colors[covered].astype(np.float32) * MASK_ALPHA
    canvas[covered] = np.round(blended).astype(np.uint8)
    return canvas


def outline(canvas: np.ndarray, mask: np.ndarray, color: tuple[int, int, int], thickness: int) -> None:
    """Draws the outer outline of each of ``mask``'s parts onto ``canvas`` in place (not its holes: SAM's
    pinholes would speckle it; the fill shows them)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(canvas, contours, -1, color, thickness)  # crisp: masks are pixel-aligned


def title_bar(inspection: Inspection, width: int, scale: float) -> np.ndarray:
    """``(h, width, 3)`` uint8: ``GOOD 0.12`` or ``SCRATCH 0.91 - 3 instances`` on green or red."""
    font_scale = 0.6 * scale
    thickness = max(1, round(1.5 * scale))
    (_, text_h), baseline = text_size("Ag", font_scale, thickness)
    height = text_h + baseline + 2 * max(4, round(6 * scale))
    bar = np.zeros((height, width, 3), np.uint8)
    bar[:] = GOOD_BAR if inspection.is_good else DEFECT_BAR
    text = f"{inspection.verdict.upper()} {inspection.score:.2f}"
    if len(inspection):
        text += f" - {len(inspection)} instance{'s' if len(inspection) > 1 else ''}"
    origin = (max(4, round(8 * scale)), height - baseline - max(4, round(6 * scale)))
    put_text(bar, text, origin, font_scale, (255, 255, 255), thickness)
    return bar


def _font(scale: float) -> tuple[float, int]:
    return 0.45 * scale, max(1, round(scale))


def label_rect(text: str, corner: tuple[int, int], scale: float) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` of a label box above ``corner`` (inside the photo when it touches its top)."""
    font_scale, thickness = _font(scale)
    (text_w, text_h), baseline = text_size(text, font_scale, thickness)
    x, y = corner
    top = y - text_h - baseline - 2
    if top < 0:
        top = y
    return x, top, x + text_w + 2, top + text_h + baseline + 2


def _label(canvas: np.ndarray, text: str, rect: tuple[int, int, int, int], color, scale: float) -> None:
    """A filled label box at ``rect`` (:func:`label_rect`) with ``text`` in white."""
    font_scale, thickness = _font(scale)
    (_, text_h), _ = text_size(text, font_scale, thickness)
    x1, y1, x2, y2 = rect
    cv2.rectangle(canvas, (x1, y1), (x2, y2), color, cv2.FILLED)
    put_text(canvas, text, (x1 + 1, y1 + text_h + 1), font_scale, (255, 255, 255), thickness)
