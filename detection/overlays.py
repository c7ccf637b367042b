"""A photo with its predicted boxes drawn, as ``detection.predict --overlays`` writes it.

Boxes and labels (``name score``) look as ultralytics draws them (the boxes, line width, class palette
and label geometry of :class:`ultralytics.utils.plotting.Annotator`: the look of ``yolo predict``'s saved
images); above the boxes, in the top-left corner, the image's call (defect type or ``good``) and its score,
as ``predictions.json`` records them (``call: crack 0.91``). The text is :func:`common.text.put_text`'s, so
a class name outside ASCII draws as itself (OpenCV's font, which the Annotator uses, drew ``?`` for it).
"""

from __future__ import annotations

import cv2
import numpy as np

from common.text import put_text, text_size

#: The call's background (BGR): dark grey, unlike any class colour; its text is white.
CALL_COLOR = (64, 64, 64)
WHITE = (255, 255, 255)


def draw_detections(image: np.ndarray, entry: dict) -> np.ndarray:
    """``image`` (BGR, untouched) with ``entry``'s boxes and its call drawn on a copy.

    Args:
        image: the photo as decoded, ``(H, W, 3)`` uint8 BGR.
        entry: its record in ``predictions.json`` (:func:`detection.predict.image_entry`).
    """
    from ultralytics.utils.plotting import Annotator, colors  # here: a command's errors come before it loads

    annotator = Annotator(image.copy(), pil=False)  # OpenCV drawing: no font to fetch
    canvas, line_width = annotator.im, annotator.lw
    scale, thickness = line_width / 3, max(line_width - 1, 1)  # the Annotator's font scale and thickness
    for box, score, class_id, name in reversed(
        list(zip(entry["boxes"], entry["scores"], entry["classes"], entry["names"], strict=True))
    ):  # the best box last, on top
        color = colors(class_id, bgr=True)
        annotator.box_label(box, "", color=color)  # the box alone
        text_color = annotator.get_txt_color(color, WHITE)  # dark text on its light class colours
        box_label(canvas, box, f"{name} {score:.2f}", color, text_color, scale=scale, thickness=thickness)
    call = f"call: {entry['call']} {entry['score']:.2f}"
    (width, height), _ = text_size(call, scale, thickness)
    cv2.rectangle(canvas, (0, 0), (width + 2 * line_width, height + 2 * line_width), CALL_COLOR, -1)
    put_text(canvas, call, (line_width, height + line_width), scale, WHITE, thickness)
    return canvas


def box_label(
    canvas: np.ndarray,
    box: list[float],
    label: str,
    color: tuple[int, int, int],
    text_color: tuple[int, int, int],
    *,
    scale: float,
    thickness: int,
) -> None:
    """Draws ``label`` on a filled box of ``color`` at ``box``'s top-left corner, in place.

    Above the box when it fits, else inside it; moved left to stay inside the photo (the geometry of
    ``Annotator.box_label``).

    Args:
        canvas: ``(H, W, 3)`` uint8 BGR.
        box: xyxy in pixels.
        scale, thickness: of the text (:func:`common.text.put_text`).
    """
    (width, height), _ = text_size(label, scale, thickness)
    height += 3  # the Annotator's padding
    x, y = int(box[0]), int(box[1])
    outside = y >= height  # the label fits above the box
    x = min(x, canvas.shape[1] - width)
    cv2.rectangle(canvas, (x, y), (x + width, y - height if outside else y + height), color, -1, cv2.LINE_AA)
    put_text(canvas, label, (x, y - 2 if outside else y + height - 1), scale, text_color, thickness)
