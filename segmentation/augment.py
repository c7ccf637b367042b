"""Cached image-level augmentation: label-safe flips and 90-degree rotations, each encoded once.

SAM's image encoder is frozen and its embeddings are cached, so augmenting the
embedding per step is impossible; augmenting the *image* is not, when each
augmented image is encoded once and kept. The transforms are the dihedral ones
that map pixels to pixels exactly (no interpolation, masks stay exact), and a
category gets only those its augmentation policy calls label-safe
(``configs/detection/augment.yaml``, read by :mod:`common.augment_policy`): a
horizontal flip when ``fliplr > 0``, a vertical flip when ``flipud > 0``, the
180-degree rotation when both are, the 90-degree ones when ``degrees >= 90``.

Every function here maps one frame to another: images and masks with numpy,
boxes as xyxy pixel edges (``x`` in ``[0, W]``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: Transform name -> ``np.rot90`` quarter turns (counter-clockwise) after an optional left-right flip.
TRANSFORMS: dict[str, tuple[bool, bool, int]] = {
    "identity": (False, False, 0),
    "fliplr": (True, False, 0),
    "flipud": (False, True, 0),
    "rot180": (False, False, 2),
    "rot90": (False, False, 1),
    "rot270": (False, False, 3),
}


def check_transform(name: str) -> tuple[bool, bool, int]:
    """The ``(fliplr, flipud, quarter turns)`` of ``name``, or ValueError naming the known ones."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r} (known: {', '.join(TRANSFORMS)})")
    return TRANSFORMS[name]


def transform_image(image: np.ndarray, name: str) -> np.ndarray:
    """``(H, W, ...)`` image or mask transformed (a contiguous copy; rotations swap H and W)."""
    lr, ud, turns = check_transform(name)
    out = image
    if lr:
        out = out[:, ::-1]
    if ud:
        out = out[::-1]
    if turns:
        out = np.rot90(out, k=turns, axes=(0, 1))
    return np.ascontiguousarray(out)


def transformed_size(image_size: tuple[int, int], name: str) -> tuple[int, int]:
    """``(H, W)`` of the transformed image."""
    turns = check_transform(name)[2]
    return (image_size[1], image_size[0]) if turns % 2 else tuple(image_size)


def transform_boxes(boxes: np.ndarray, name: str, image_size: tuple[int, int]) -> np.ndarray:
    """``(..., 4)`` xyxy pixel-edge boxes of an ``(H, W)`` image in the transformed image's frame."""
    lr, ud, turns = check_transform(name)
    height, width = image_size
    b = np.asarray(boxes, dtype=float)
    x0, y0, x1, y1 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if lr:
        x0, x1 = width - x1, width - x0
    if ud:
        y0, y1 = height - y1, height - y0
    if turns == 1:  # counter-clockwise: new x = y, new y = W - x
        x0, y0, x1, y1 = y0, width - x1, y1, width - x0
    elif turns == 2:
        x0, y0, x1, y1 = width - x1, height - y1, width - x0, height - y0
    elif turns == 3:  # clockwise: new x = H - y, new y = x
        x0, y0, x1, y1 = height - y1, x0, height - y0, x1
    return np.stack([x0, y0, x1, y1], axis=-1)


def allowed_transforms(settings: Mapping[str, float]) -> tuple[str, ...]:
    """The label-safe transforms (besides identity) of a category's policy settings.

    Args:
        settings: ``fliplr``, ``flipud``, ``degrees`` (:func:`common.augment_policy.geometry_settings`).

    >>> allowed_transforms({"fliplr": 0.5, "flipud": 0.5, "degrees": 0.0})
    ('fliplr', 'flipud', 'rot180')
    >>> allowed_transforms({"fliplr": 0.0, "flipud": 0.0, "degrees": 0.0})
    ()
    """
    lr, ud = settings.get("fliplr", 0.0) > 0, settings.get("flipud", 0.0) > 0
    names = [name for name, ok in (("fliplr", lr), ("flipud", ud), ("rot180", lr and ud)) if ok]
    if settings.get("degrees", 0.0) >= 90:
        names += ["rot90", "rot270"]
    return tuple(names)
