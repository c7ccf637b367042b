"""A photo with its predicted boxes drawn, as ``detection.predict --overlays`` writes it.

Boxes and labels (``name score``) are ultralytics' own drawing (:class:`ultralytics.utils.plotting.Annotator`
with its class palette, the look of ``yolo predict``'s saved images); above the boxes, in the top-left
corner, the image's call (defect type or ``good``) and its score, as ``predictions.json`` records them
(``call: crack 0.91``).
"""

from __future__ import annotations

import cv2
import numpy as np

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

    annotator = Annotator(image.copy(), pil=False)  # OpenCV text: no font to fetch
    for box, score, class_id, name in reversed(
        list(zip(entry["boxes"], entry["scores"], entry["classes"], entry["names"], strict=True))
    ):  # the best box last, on top
        annotator.box_label(box, f"{name} {score:.2f}", color=colors(class_id, bgr=True))
    canvas = annotator.result()
    call = f"call: {entry['call']} {entry['score']:.2f}"
    (width, height), _ = cv2.getTextSize(call, 0, annotator.sf, annotator.tf)
    pad = annotator.lw
    cv2.rectangle(canvas, (0, 0), (width + 2 * pad, height + 2 * pad), CALL_COLOR, -1)
    cv2.putText(canvas, call, (pad, height + pad), 0, annotator.sf, WHITE, annotator.tf, cv2.LINE_AA)
    return canvas
