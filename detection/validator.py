"""ultralytics' ``DetectionValidator`` that also keeps every image's detections, whole-image or tiled.

:class:`RecordingValidator` scores exactly as ``yolo val`` does and records the
boxes it scored, in original pixels, so that :mod:`detection.coco` sees the
detections ultralytics' mAP saw. It also records each image's detections as
``detection.predict`` (and the inspection cascade) finds them, for
:mod:`detection.image_level`: ``yolo val`` letterboxes an image otherwise (its
rectangular batches are padded by half a stride: 288 px at ``imgsz`` 256, resized
with another interpolation), and image-level figures, and a threshold picked on
them, are meant for the detector as it runs on new photos.
:class:`TiledRecordingValidator` replaces the model's whole-image output by
tiled inference (:func:`detection.tiling.predict_tiled`) before scoring; those
detections serve both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from ultralytics.data.augment import LetterBox
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils import nms, ops
from ultralytics.utils.checks import check_imgsz

from common.image_files import decode_image_file
from detection.detections import ImageDetections
from detection.tiling import predict_tiled


class RecordingValidator(DetectionValidator):
    """ultralytics' ``DetectionValidator`` that also keeps each image's detections, in original pixels.

    Nothing about scoring changes. By image file name:

    - :attr:`detections`: the boxes the validator scored (after NMS, before any
      confidence threshold other than the validator's own ``conf``);
    - :attr:`calls`: the image's detections as ``detection.predict`` finds them
      (:meth:`call_detections`: one more forward pass per image), from which the
      image-level figures are made.
    """

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        self.detections: dict[str, ImageDetections] = {}
        self.calls: dict[str, ImageDetections] = {}
        self.run_model = model

    def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        super().update_metrics(preds, batch)
        for si, pred in enumerate(preds):
            pbatch = self._prepare_batch(si, batch)
            scaled = self.scale_preds(pred, pbatch)
            name = Path(pbatch["im_file"]).name
            self.detections[name] = ImageDetections(
                boxes=scaled["bboxes"].detach().float().cpu().numpy().reshape(-1, 4),
                scores=pred["conf"].detach().float().cpu().numpy(),
                classes=pred["cls"].detach().cpu().numpy().astype(int),
            )
            self.calls[name] = self.call_detections(pbatch["im_file"], self.detections[name])

    def call_detections(self, im_file: str, scored: ImageDetections) -> ImageDetections:
        """``im_file``'s detections as ``detection.predict`` finds them (``scored``: the validator's).

        The file is read again and run as :meth:`predicted` runs a batch.
        """
        return self.predicted([decode_image_file(im_file, cv2.IMREAD_COLOR)])[0]

    def predicted(self, images: list[np.ndarray]) -> list[ImageDetections]:
        """The model on BGR images of one shape as ultralytics' predictor runs such a batch: boxes in each
        image's pixels.

        Letterboxed to ``imgsz`` padded to the stride only (not to the square), linear interpolation;
        the predictor's NMS, one class per box, where the validator's keeps a box once per class above
        ``conf`` (tiled windows are merged from these boxes, so the two would merge differently).
        """
        size = check_imgsz(self.args.imgsz, stride=self.stride, min_dim=2)
        letterbox = LetterBox(new_shape=tuple(size), auto=True, stride=int(self.stride))
        batch = np.stack([letterbox(image=image) for image in images])[..., ::-1].transpose(0, 3, 1, 2)
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).float() / 255
        if self.args.quantize == 16:
            x = x.half()
        with torch.inference_mode():
            raw = self.run_model(x)
        a = self.args
        kept = nms.non_max_suppression(
            raw, a.conf, a.iou, None, a.agnostic_nms, max_det=a.max_det, nc=0, end2end=self.end2end
        )
        found = []
        for pred, image in zip(kept, images, strict=True):
            boxes = ops.scale_boxes(tuple(x.shape[2:]), pred[:, :4].clone().float(), image.shape[:2])
            found.append(
                ImageDetections(
                    boxes=boxes.cpu().numpy().reshape(-1, 4),
                    scores=pred[:, 4].float().cpu().numpy(),
                    classes=pred[:, 5].cpu().numpy().astype(int),
                )
            )
        return found


class TiledRecordingValidator(RecordingValidator):
    """A :class:`RecordingValidator` that scores detections from tiled inference.

    For each image of a batch the original file is read again and cut into
    overlapping ``tile``-px windows; the model runs on the windows as
    ``detection.predict --tile`` runs them (:meth:`~RecordingValidator.predicted`: the
    predictor's letterbox and NMS, the validator's ``conf``/``iou``), the boxes are
    merged back (:func:`detection.tiling.predict_tiled`) and mapped into the
    batch's letterboxed frame, where ultralytics matches them with the ground
    truth as usual. ultralytics' loop still runs the model on the whole image
    first; that output is discarded (one extra forward pass per image).

    Attributes:
        tile, tile_overlap: window side in pixels and overlap fraction.
        merge_iou: NMS threshold when merging windows.
    """

    tile: int = 640
    tile_overlap: float = 0.2
    merge_iou: float = 0.5

    def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        tiled = []
        for si in range(len(preds)):
            pbatch = self._prepare_batch(si, batch)
            image = decode_image_file(pbatch["im_file"], cv2.IMREAD_COLOR)
            tiled.append(self.letterboxed_prediction(self.tile_detections(image, pbatch["im_file"]), pbatch))
        super().update_metrics(tiled, batch)

    def letterboxed_prediction(
        self, found: ImageDetections, pbatch: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """Detections in original pixels as one of ultralytics' predictions in the batch's letterboxed frame.

        The inverse of ``ops.scale_boxes(imgsz, boxes, ori_shape, ratio_pad)``: scaled by the
        letterbox gain, then shifted by its padding.
        """
        gain, (pad_x, pad_y) = pbatch["ratio_pad"][0][0], pbatch["ratio_pad"][1]
        boxes = torch.as_tensor(found.boxes, dtype=torch.float32, device=self.device).reshape(-1, 4) * gain
        boxes += torch.tensor([pad_x, pad_y, pad_x, pad_y], dtype=torch.float32, device=self.device)
        return {
            "bboxes": boxes,
            "conf": torch.as_tensor(found.scores, dtype=torch.float32, device=self.device),
            "cls": torch.as_tensor(found.classes, dtype=torch.float32, device=self.device),
            "extra": torch.zeros((len(boxes), 0), device=self.device),
        }

    def tile_detections(self, image: np.ndarray, im_file: str) -> ImageDetections:
        """Merged detections of one ``(H, W, 3)`` BGR image in its pixels (``im_file`` names it)."""
        return predict_tiled(
            image,
            self.predict_tiles,
            tile=self.tile,
            overlap=self.tile_overlap,
            iou=self.merge_iou,
            batch=max(1, int(self.args.batch)),
            max_det=int(self.args.max_det),
        )

    def predict_tiles(self, tiles: list[np.ndarray], windows: np.ndarray) -> list[ImageDetections]:
        """The model on BGR tiles letterboxed as ``detection.predict --tile`` does (:meth:`predicted`; a photo
        shorter than the tile has windows of another shape than the square): NMS'd boxes in tile pixels."""
        return self.predicted(tiles)

    def call_detections(self, im_file: str, scored: ImageDetections) -> ImageDetections:
        """``scored``: tiled inference is what ``detection.predict --tile`` runs."""
        return scored
