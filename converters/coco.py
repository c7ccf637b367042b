"""COCO instance annotations (``instances_{split}.json``).

Category ids are the YOLO class ids + 1 (COCO reserves 0). ``bbox`` is
``[x, y, w, h]`` in pixels, ``area`` the mask's pixel count, ``iscrowd`` 0.
``segmentation`` is a polygon list by default; an instance with holes gets
an RLE instead (COCO polygons are unioned, they cannot cut holes), with
``counts`` as a string so the file is plain JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from converters.masks import DefectInstance

SEGMENTATION_MODES = ("polygon", "rle")


@dataclass(frozen=True)
class CocoImage:
    """An image entry: ``file_name`` is relative to the data set's ``images/`` folder."""

    id: int
    file_name: str
    width: int
    height: int
    instances: Sequence[DefectInstance] = ()


def xyxy_to_xywh(xyxy: np.ndarray) -> list[float]:
    """``(4,)`` xyxy to COCO ``[x, y, w, h]``.

    >>> xyxy_to_xywh(np.array([2, 3, 5, 7]))
    [2.0, 3.0, 3.0, 4.0]
    """
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return [x1, y1, x2 - x1, y2 - y1]


def instance_segmentation(instance: DefectInstance, *, mode: str = "polygon") -> list | dict:
    """``segmentation`` value: polygon list, or RLE where polygons cannot hold the mask."""
    if mode not in SEGMENTATION_MODES:
        raise ValueError(f"unknown COCO segmentation mode '{mode}' (expected polygon or rle)")
    if mode == "rle" or instance.has_holes or not instance.polygons:
        return {"size": list(instance.rle["size"]), "counts": instance.rle["counts"]}
    return [[round(float(v), 2) for v in ring.ravel()] for ring in instance.polygons]


#: What follows the split's name in the ``info.description`` of every COCO file the converters write
#: (``val split written by converters from /data/mvtec``): how a reader knows the file is theirs.
WRITTEN_BY = " split written by converters from "


def written_here(coco: dict) -> bool:
    """Whether the converters wrote the COCO dict ``coco`` (its ``info.description``, :data:`WRITTEN_BY`)."""
    info = coco.get("info")
    description = info.get("description") if isinstance(info, dict) else None
    return isinstance(description, str) and WRITTEN_BY in description


def recorded_root(coco: dict) -> str | None:
    """The data set root the converters read, as the COCO dict's ``info.description`` records it; None
    for a file they did not write (:func:`written_here`).

    >>> recorded_root({"info": {"description": "val split written by converters from /data/mvtec"}})
    '/data/mvtec'
    """
    if not written_here(coco):
        return None
    return coco["info"]["description"].split(WRITTEN_BY, 1)[1] or None


def build_coco(
    images: Sequence[CocoImage],
    *,
    names: Sequence[str],
    segmentation: str = "polygon",
    description: str = "",
) -> dict:
    """The COCO dict of one split; annotation ids run from 1 in image order."""
    class_ids = {name: i for i, name in enumerate(names)}
    annotations = []
    for image in images:
        for instance in image.instances:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image.id,
                    "category_id": class_ids[instance.class_name] + 1,
                    "bbox": xyxy_to_xywh(instance.xyxy),
                    "area": int(instance.area),
                    "segmentation": instance_segmentation(instance, mode=segmentation),
                    "iscrowd": 0,
                }
            )
    return {
        "info": {"description": description, "version": "1.0"},
        "images": [
            {"id": im.id, "file_name": im.file_name, "width": im.width, "height": im.height} for im in images
        ],
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "defect"} for i, name in enumerate(names)
        ],
    }
