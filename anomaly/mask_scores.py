"""Instance masks from the anomaly maps scored against ground truth: per-image IoU and COCO mask AP.

The threshold that turns maps into regions is picked on other images than those scored wherever
the data allow: a converter split's ``val`` images (pixel F1-max threshold there), else a value the
user gives; on the MVTec protocol, whose only defect images are the test images, it is the
F1-max threshold of the scored images themselves, and the report says so (an optimistic figure).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from anomaly.data import read_mask, read_regions, read_rgb
from anomaly.maps import to_image_size
from anomaly.masks import Segmenter
from anomaly.outputs import CATEGORY, instance_results
from anomaly.regions import map_regions
from anomaly.run import AnomalyRun
from common.masks import mask_values
from common.metrics import mean_of_iou_dice, per_image_iou_dice
from converters.masks import DefectInstance, mask_to_instances, region_file_instances
from converters.mvtec import ImageRecord


def ground_truth_coco(masks: Sequence[np.ndarray]) -> dict:
    """A COCO data set (one class, ``anomaly``) of the masks' 8-connected components; image ids from 1."""
    truth = GroundTruth()
    for mask in masks:
        truth.add(mask)
    return truth.coco()


def truth_instances(mask: np.ndarray, region_files: Sequence[np.ndarray] = ()) -> list[DefectInstance]:
    """The ground-truth instances of one image, as the converters count them.

    Args:
        mask: ``(H, W)`` bool; one instance per 8-connected component where ``region_files`` is empty.
        region_files: ``(H, W)`` integers of each region file of the image (MVTec LOCO,
            :func:`anomaly.data.read_regions`), ``mask`` their union: one instance per file and value
            (:func:`converters.masks.region_file_instances`), as MVTec's evaluation counts them: a file in
            parts apart is one instance, two files whose regions touch are two, a file holding two values
            two.
    """
    if not region_files:
        return mask_to_instances(mask.astype(np.uint8)).instances
    by_value = [dict.fromkeys(mask_values(part).tolist(), CATEGORY) for part in region_files]
    files = [
        mask_to_instances(part, value_names=names) for part, names in zip(region_files, by_value, strict=True)
    ]
    return region_file_instances(files).instances


def read_truth(record: ImageRecord, shape: tuple[int, int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """``record``'s ground truth, ``(H, W)`` bool (:func:`anomaly.data.read_mask`), and its region files'
    (:func:`anomaly.data.read_regions`, ``[]`` without), each file read once."""
    region_files = read_regions(record, shape)
    if not region_files:
        return read_mask(record, shape), []
    return np.logical_or.reduce(region_files), region_files


class GroundTruth:
    """:func:`ground_truth_coco` one mask at a time: each ``(H, W)`` mask is kept as its instances' RLEs,
    not as itself (a 4000 x 3000 photo's mask is 12 MB, its RLEs a few KB)."""

    def __init__(self) -> None:
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, mask: np.ndarray, region_files: Sequence[np.ndarray] = ()) -> None:
        """The next image's ground truth, ``(H, W)`` bool, and its region files' where it has them
        (:func:`truth_instances`); its id is the count so far plus 1."""
        image_id = len(self.images) + 1
        self.images.append(
            {
                "id": image_id,
                "width": int(mask.shape[1]),
                "height": int(mask.shape[0]),
                "file_name": f"{image_id}.png",
            }
        )
        for instance in truth_instances(mask, region_files):
            x1, y1, x2, y2 = instance.xyxy.tolist()
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": instance.rle,
                    "area": instance.area,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "iscrowd": 0,
                }
            )

    def coco(self) -> dict:
        return {
            "images": self.images,
            "annotations": self.annotations,
            "categories": [{"id": 1, "name": CATEGORY}],
        }


def mask_ap(masks: Sequence[np.ndarray] | GroundTruth, results: list[dict]) -> tuple[float, float]:
    """COCO mask AP@[.5:.95] and AP50 of ``results`` against ``masks`` (segmentation's pycocotools call).

    NaN for both when ``masks`` hold no defect pixel (as :func:`segmentation.metrics.coco_mask_ap`): AP is
    not defined without ground truth (it read 0.000, as if every mask were wrong, on images that were
    all good).

    Args:
        masks: each image's ``(H, W)`` bool ground truth, or a :class:`GroundTruth` of them.
    """
    from converters.cocoeval import precision_table

    truth = masks.coco() if isinstance(masks, GroundTruth) else ground_truth_coco(masks)
    # scored from the dict itself: a temporary instances.json made a full or unusable temp folder a
    # traceback after every photo was scored
    table = precision_table(truth, results, iou_type="segm")
    return float(table.ap()), float(table.ap(iou=0.5))


def score_masks(
    run: AnomalyRun,
    records: Sequence[ImageRecord],
    maps: Sequence[np.ndarray],
    segmenter: Segmenter,
    threshold: float,
    threshold_from: str,
    *,
    min_area: int = 16,
    progress: bool = True,
) -> dict:
    """Masks for every record (map at the photo's size -> regions -> segmenter), scored.

    Args:
        run: checks each photo as :meth:`~anomaly.run.AnomalyRun.predict` does (its size, its colour).
        maps: each record's map as :func:`anomaly.evaluate.score_records` keeps it, ``(S, S)`` float32 on
            the model's input grid, resized bilinearly to the photo's size one photo at a time, as
            :meth:`~anomaly.patchcore.PatchCore.predict` resizes it (PatchCore ran once a photo, not again
            here, and the masks come from the very maps the pixel figures and a threshold picked on the
            scored photos were measured on).

    Returns:
        ``{"threshold", "threshold_from", "segmenter", "iou_defect", "iou_good", "iou_all",
        "dice_defect", "mask_ap", "mask_ap50", "instances"}``.
    """
    # each photo scored as it comes: its full-size predicted and true masks (2 bytes a photo pixel) were
    # held for every photo until the end, 24 MB a 4000 x 3000 photo
    scores, defect, truths, results = [], [], GroundTruth(), []
    pairs = zip(records, maps, strict=True)
    for image_id, (record, grid_map) in enumerate(
        tqdm(pairs, desc="masks", total=len(records), disable=not progress), start=1
    ):
        image = read_rgb(record.image)
        run.check_photo(image, record.image)
        anomaly_map = to_image_size(torch.from_numpy(grid_map), image.shape[:2]).numpy()
        regions = map_regions(anomaly_map, threshold, min_area=min_area)
        instances = segmenter(image, regions, min_area=min_area, path=record.image)  # its cached embedding
        predicted = instances.masks.any(0) if len(instances.masks) else np.zeros(image.shape[:2], bool)
        truth, region_files = read_truth(record, image.shape[:2])  # MVTec LOCO's files: one instance each
        scores.append(per_image_iou_dice(predicted, truth))
        defect.append(bool(np.any(truth)))
        truths.add(truth, region_files)
        results += instance_results(instances, image_id, str(record.image))
        # not held beside the next photo's
        del image, anomaly_map, regions, instances, predicted, truth, region_files
    overlap = mean_of_iou_dice(scores, defect)
    ap, ap50 = mask_ap(truths, results)
    return {
        "threshold": threshold,
        "threshold_from": threshold_from,
        "segmenter": segmenter.name,
        "iou_defect": overlap.defect_iou,
        "iou_good": overlap.good_iou,
        "iou_all": overlap.iou,
        "dice_defect": overlap.defect_dice,
        "mask_ap": ap,
        "mask_ap50": ap50,
        "instances": len(results),
    }
