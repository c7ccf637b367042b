"""Defect boxes on new images, whole or tiled, with each image's call (defect type or good).

    python -m detection.predict --weights runs/detect/RUN/weights/best.pt --source photos/
    python -m detection.predict --weights best.pt --source photos/ --tile 320 --imgsz 320   # small defects

Runs ultralytics' predictor (``YOLO(weights).predict``) on each image, or with
``--tile N`` on its overlapping ``N``-px windows, merged back by
:func:`detection.tiling.predict_tiled` (use it for a model trained with
``tile=N``). A YOLO-World checkpoint predicts with the class embeddings it was
trained with; no text encoder is needed. The image's call follows
:mod:`detection.evaluate`: the class of its top box with score >= ``--conf``,
``good`` if none.

Writes ``predictions.json`` into ``--out``: per image its size, boxes (xyxy
pixels), scores, class ids and names, and its call and anomaly score.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from common.errors import UserError
from detection.detections import ImageDetections
from detection.evaluate import image_prediction
from detection.tiling import predict_tiled


def ultralytics_detections(results: Sequence[Any]) -> list[ImageDetections]:
    """ultralytics ``Results`` -> :class:`ImageDetections` (pixels of the image each was run on)."""
    return [
        ImageDetections(
            boxes=r.boxes.xyxy.cpu().numpy().reshape(-1, 4).astype(float),
            scores=r.boxes.conf.cpu().numpy().astype(float),
            classes=r.boxes.cls.cpu().numpy().astype(int),
        )
        for r in results
    ]


def image_files(source: Path) -> list[Path]:
    """An image file, or the images in a folder (recursive), sorted."""
    from ultralytics.data.utils import IMG_FORMATS

    if source.is_file():
        return [source]
    if source.is_dir():
        return sorted(p for p in source.rglob("*.*") if p.suffix[1:].lower() in IMG_FORMATS)
    raise UserError(f"source not found: {source}")


def predict(
    weights: str | Path,
    source: str | Path,
    *,
    imgsz: int = 640,
    conf: float = 0.25,
    iou: float = 0.7,
    tile: int | None = None,
    tile_overlap: float = 0.2,
    device: str | None = None,
    max_det: int = 300,
) -> dict[str, dict]:
    """Detections and the call of every image in ``source``.

    Args:
        weights: a run's ``best.pt``.
        source: an image or a folder of images.
        imgsz: model input size (per window when tiled).
        conf: the lowest box score kept, also the image-call threshold.
        iou: NMS threshold of the model's own NMS (windows are merged at 0.5).
        tile, tile_overlap: tiled inference (None: whole images).
        device: ``cpu``, ``0``, ...; None = ultralytics' choice.
        max_det: boxes kept per image.

    Returns:
        image path -> ``{"width", "height", "boxes", "scores", "classes", "names", "call", "score"}``.
    """
    from ultralytics import YOLO

    if not Path(weights).is_file():
        raise UserError(f"weights not found: {weights}")
    if tile is not None and (tile < 32 or not 0 <= tile_overlap < 1):
        raise UserError(
            f"tiled inference needs tile >= 32 and 0 <= overlap < 1, got {tile}, {tile_overlap}"
        )
    model = YOLO(str(weights))
    names = [str(model.names[i]) for i in sorted(model.names)]
    settings = {
        "imgsz": imgsz,
        "conf": conf,
        "iou": iou,
        "device": device,
        "max_det": max_det,
        "verbose": False,
    }

    def predict_tiles(tiles: list[np.ndarray], windows: np.ndarray) -> list[ImageDetections]:
        return ultralytics_detections(model.predict(list(tiles), **settings))

    found: dict[str, dict] = {}
    for path in image_files(Path(source)):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"cannot read image {path}")
        if tile:
            detections = predict_tiled(image, predict_tiles, tile=tile, overlap=tile_overlap, max_det=max_det)
        else:
            detections = ultralytics_detections(model.predict(image, **settings))[0]
        call, score = image_prediction(detections, names, conf)
        found[str(path)] = {
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "boxes": np.round(detections.boxes, 2).tolist(),
            "scores": np.round(detections.scores, 4).tolist(),
            "classes": detections.classes.tolist(),
            "names": [names[c] for c in detections.classes],
            "call": call,
            "score": round(score, 4),
        }
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m detection.predict",
        description="Defect boxes and a per-image call (defect type or good) on new images, whole or tiled.",
    )
    parser.add_argument("--weights", type=Path, required=True, help="a run's weights/best.pt")
    parser.add_argument("--source", type=Path, required=True, help="an image or a folder of images")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/detect/predict"), help="folder for predictions.json"
    )
    parser.add_argument("--imgsz", type=int, default=640, help="model input size (per window with --tile)")
    parser.add_argument(
        "--conf", type=float, default=0.25, help="lowest box score kept; the image-call threshold"
    )
    parser.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold")
    parser.add_argument("--tile", type=int, help="tiled inference with windows of this many px")
    parser.add_argument("--tile-overlap", type=float, default=0.2, help="window overlap, fraction of --tile")
    parser.add_argument("--device", default=None, help="cpu, 0, ... (default: first GPU, else CPU)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        found = predict(
            args.weights,
            args.source,
            imgsz=args.imgsz,
            conf=args.conf,
            iou=args.iou,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
            device=args.device,
        )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predictions.json").write_text(json.dumps(found, indent=1) + "\n")
    for path, entry in found.items():
        print(f"{entry['call']:>16s}  {entry['score']:.3f}  {len(entry['scores']):3d} boxes  {path}")
    mode = f"tiled ({args.tile} px, overlap {args.tile_overlap:g})" if args.tile else "whole images"
    print(f"{len(found)} images, {mode}; results in {args.out / 'predictions.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
