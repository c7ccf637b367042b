"""Defect boxes on new images, whole or tiled, with each image's call (defect type or good).

    python -m detection.predict --weights runs/detect/RUN/weights/best.pt --source photos/
    python -m detection.predict --weights best.pt --source photos/ --tile 320 --imgsz 320   # small defects
    python -m detection.predict --weights best.pt --source "lot_7/**/*.png"   # a quoted glob pattern

Runs ultralytics' predictor (``YOLO(weights).predict``) on each image, or with
``--tile N`` on its overlapping ``N``-px windows, merged back by
:func:`detection.tiling.predict_tiled` (use it for a model trained with
``tile=N``). A YOLO-World checkpoint predicts with the class embeddings it was
trained with; no text encoder is needed. The image's call follows
:mod:`detection.image_level`: the class of its top box with score >= ``--conf``,
``good`` if none.

Every image is decoded once before the model loads (:func:`common.images.decode_photos`),
so files that are not images, or truncated ones, stop the run at once with one line
naming them (the first three and how many more), before ultralytics opens anything. 16-bit photos of 12-bit
data, which OpenCV reads nearly black, get a ``warning:`` line (photos spread
over the list are checked: :data:`common.pixels.NARROW_PHOTO_SAMPLE`).

Writes ``predictions.json`` into ``--out``: per image, named by its path relative
to the source folder (:func:`named_files`), its size, boxes (xyxy pixels), scores,
class ids and names, and its call and anomaly score; ``predict.json`` beside it, how it was made
(weights, source, image count, thresholds, size, tiling, device); and ``overlays/<name>.jpg``,
the first ``--overlays`` images with their boxes and call drawn
(:func:`detection.overlays.draw_detections`; ``<name>`` is the file name without
suffix, folders joined by ``__``). A rerun into the same ``--out`` replaces the
overlays folder whole, so it never mixes two runs' images (one with ``--overlays 0``
leaves it as it is, and says so); an ``overlays/`` beside no ``predictions.json`` is no run's and is
refused (:func:`check_overlays_folder`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path
from common.errors import UserError, few, one_line
from common.folders import (
    build_folder,
    check_output_folder,
    check_unique_names,
    foreign_names,
    output_name,
)
from common.image_files import decode_image_file, encode_image
from common.io import atomic_write, expand_user, json_text, recorded_path
from common.out_folders import check_holds_no_photos, check_not_read_as_photos
from common.photo_sources import photo_files
from common.pixels import NARROW_PHOTO_SAMPLE, warn_narrow_photos
from detection.detections import ImageDetections
from detection.image_level import check_class_names, image_prediction
from detection.overlays import draw_detections
from detection.tiling import (
    DEFAULT_OVERLAP,
    check_overlap_has_tile,
    check_tiling,
    longest_side,
    predict_tiled,
)
from detection.train_config import check_run_options, chosen_device
from detection.weights import load_detector, print_tiling_note, run_imgsz, trained_imgsz, weights_file

#: The file :func:`main` writes into ``--out``.
PREDICTIONS_FILE = "predictions.json"
#: How :data:`PREDICTIONS_FILE` was made (weights, source, thresholds, size, tiling), beside it.
SETTINGS_FILE = "predict.json"
#: The folder of ``--out`` that holds the drawn images (``--overlays``).
OVERLAYS_DIR = "overlays"
#: The overlays, ``*`` for a photo's output name (a later ``--source`` pattern must not match them).
OVERLAY_FILES = f"{OVERLAYS_DIR}/*.jpg"
#: Their JPEG quality.
OVERLAY_QUALITY = 90


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


def predict_settings(*, imgsz: int, conf: float, iou: float, device: str | None, max_det: int) -> dict:
    """The keywords of ultralytics' ``model.predict`` for a run: input size, box filters, quiet.

    >>> predict_settings(imgsz=640, conf=0.25, iou=0.7, device="cpu", max_det=300)["verbose"]
    False
    """
    return {"imgsz": imgsz, "conf": conf, "iou": iou, "device": device, "max_det": max_det, "verbose": False}


def named_files(source: str | Path) -> dict[str, Path]:
    """The image files ``source`` names, sorted, by their names in ``predictions.json``; none decoded.

    A file's name is its path relative to the source folder (to a pattern's folder; a single
    file's own name), with ``/`` between folders, as :mod:`inspection.photos` names photos: the
    same on every machine and from every working folder.

    Raises:
        UserError: ``source`` is missing, a folder without image files or a pattern matching none;
            a name that is not UTF-8 (``predictions.json`` names it).
    """
    files, base = photo_files(source)
    return {path.name if base is None else path.relative_to(base).as_posix(): path for path in files}


def image_files(source: str | Path) -> dict[str, Path]:
    """:func:`named_files`, each decoded once.

    Raises:
        UserError: as :func:`named_files`, or a file that does not decode: not an image,
            truncated, unreadable.
    """
    files = named_files(source)
    longest_side(files.values())
    return files


def predict(
    weights: str | Path,
    source: str | Path,
    *,
    imgsz: int | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    tile: int | None = None,
    tile_overlap: float = 0.2,
    device: str | None = None,
    max_det: int = 300,
) -> dict[str, dict]:
    """Detections and the call of every image in ``source``, by file name (:func:`image_files`).

    Args:
        weights: a run's ``best.pt``.
        source: an image, a folder of images (searched recursively) or a glob pattern.
        imgsz: model input size (per window when tiled); None: the size the checkpoint was
            trained at (:func:`~detection.weights.trained_imgsz`).
        conf: the lowest box score kept, also the image-call threshold.
        iou: NMS threshold of the model's own NMS (windows are merged at 0.5).
        tile, tile_overlap: tiled inference (None: whole images).
        device: ``cpu``, ``0``, ...; None = ultralytics' choice.
        max_det: boxes kept per image.

    Returns:
        file name -> ``{"width", "height", "boxes", "scores", "classes", "names", "call", "score"}``.

    Raises:
        UserError: missing or unloadable weights, bad tiling settings, a source without
            images or with a file that is not one; before any image is run.
    """
    # predicted_images' keywords spelled out here too: they document this public function, and
    # tests/detection/test_predict.py holds the two signatures' defaults equal
    images = predicted_images(
        weights, source, imgsz=imgsz, conf=conf, iou=iou, tile=tile, tile_overlap=tile_overlap,
        device=device, max_det=max_det,
    )  # fmt: skip
    return {name: entry for name, _, entry in images}


class PredictedImages(Iterator[tuple[str, np.ndarray, dict]]):
    """:func:`predicted_images`' images, one at a time, ``imgsz``: the size they run at (``--imgsz``
    rounded up to the model's stride, or the size it was trained at), and ``device``: the device they
    run on as torch names it (``cpu``, ``cuda:0``; ``--device`` None is ultralytics' pick), both of which
    ``predict.json`` records."""

    def __init__(self, images: Iterator[tuple[str, np.ndarray, dict]], imgsz: int, device: str) -> None:
        self.images, self.imgsz, self.device = images, imgsz, device

    def __next__(self) -> tuple[str, np.ndarray, dict]:
        return next(self.images)


def predicted_images(
    weights: str | Path,
    source: str | Path | Mapping[str, Path],
    *,
    imgsz: int | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    tile: int | None = None,
    tile_overlap: float = 0.2,
    device: str | None = None,
    max_det: int = 300,
    distinct_stems: bool = False,
) -> PredictedImages:
    """:func:`predict` one image at a time: ``(file name, the decoded BGR image, its record)``.

    Every check of :func:`predict` runs, and the model loads, at the call, before any image is run;
    with ``distinct_stems`` two files whose output stems are equal (``a.png`` and ``a.jpg``, both
    ``overlays/a.jpg``: :func:`common.folders.output_name`) are refused too. ``source`` may be its files
    listed already (:func:`named_files`), as :func:`run` lists them before it checks ``--out``.
    """
    # a -1: the idle GPUs its one search found, which the note names (ultralytics searched again)
    device = check_run_options(imgsz=imgsz, conf=conf, iou=iou, device=device)
    if tile is not None:
        check_tiling(tile, tile_overlap)
    weights = weights_file(weights)  # the cheap check first: decoding a large folder takes a while
    # once: a second search printed its notes (files left out) twice
    files = dict(source) if isinstance(source, Mapping) else named_files(source)
    if distinct_stems:
        check_unique_names((output_name(name), path) for name, path in files.items())
    largest = longest_side(files.values())
    # 12-bit data in 16-bit files reads nearly black (OpenCV drops the low 8 bits); a spread of photos tells
    warn_narrow_photos(list(files.values()), sample=NARROW_PHOTO_SAMPLE)
    model = load_detector(weights)
    print_tiling_note(model, tile, weights, largest)
    imgsz = run_imgsz(model, trained_imgsz(model) if imgsz is None else imgsz)
    names = [str(model.names[i]) for i in sorted(model.names)]
    check_class_names(names, f"weights {weights}")
    settings = predict_settings(imgsz=imgsz, conf=conf, iou=iou, device=device, max_det=max_det)

    def predict_tiles(tiles: list[np.ndarray], windows: np.ndarray) -> list[ImageDetections]:
        return ultralytics_detections(model.predict(list(tiles), **settings))

    def images() -> Iterator[tuple[str, np.ndarray, dict]]:
        for name, path in files.items():
            image = decode_image_file(path, cv2.IMREAD_COLOR)
            if tile:
                detections = predict_tiled(
                    image, predict_tiles, tile=tile, overlap=tile_overlap, max_det=max_det, progress=True,
                    desc=name,
                )  # fmt: skip
            else:
                detections = ultralytics_detections(model.predict(image, **settings))[0]
            yield name, image, image_entry(image.shape[:2], detections, names, conf)

    return PredictedImages(images(), imgsz, chosen_device(device))


def image_entry(
    shape: tuple[int, int], detections: ImageDetections, names: Sequence[str], conf: float
) -> dict:
    """One image's record in ``predictions.json``: size, rounded boxes and scores, names, call.

    Args:
        shape: ``(H, W)`` of the image in pixels.
        detections: its boxes in those pixels.
        names: class names in id order.
        conf: the image-call threshold.
    """
    call, score = image_prediction(detections, names, conf)
    return {
        "width": int(shape[1]),
        "height": int(shape[0]),
        "boxes": np.round(detections.boxes, 2).tolist(),
        "scores": np.round(detections.scores, 4).tolist(),
        "classes": detections.classes.tolist(),
        "names": [names[c] for c in detections.classes],
        "call": call,
        "score": round(score, 4),
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line; its destinations other than ``out`` are :func:`predict`'s parameters."""
    parser = OneLineParser(
        prog=command_name("detection.predict"),
        formatter_class=DefaultsHelpFormatter,
        description="Defect boxes and a per-image call (defect type or good) on new images, whole or tiled.",
    )
    parser.add_argument("--weights", type=user_path, required=True, help="a run's weights/best.pt")
    parser.add_argument(
        "--source",
        required=True,
        help='an image, a folder of images (searched recursively) or a quoted glob ("lot_7/**/*.png")',
    )
    parser.add_argument(
        "--out",
        type=user_path,
        default=Path("runs/detect/predict"),
        help=f"folder for {PREDICTIONS_FILE}, {SETTINGS_FILE} (the settings that made it) and "
        f"{OVERLAYS_DIR}/ (default: runs/detect/predict here)",
    )
    parser.add_argument(
        "--overlays",
        type=int,
        default=50,
        help=f"draw the boxes of the first N images into {OVERLAYS_DIR}/ (0 none, -1 all)",
    )
    parser.add_argument(
        "--imgsz",
        type=int,
        help="model input size in px, per window with --tile (default: the size it trained at)",
    )
    parser.add_argument(
        "--conf", type=float, default=0.25, help="lowest box score kept; the image-call threshold"
    )
    parser.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold")
    parser.add_argument("--tile", type=int, help="tiled inference with windows of this many px")
    parser.add_argument(
        "--tile-overlap", type=float, default=DEFAULT_OVERLAP, help="window overlap, fraction of --tile"
    )
    parser.add_argument("--device", default=None, help="cpu, 0, ... (default: first GPU, else CPU)")
    return parser


def run(args: argparse.Namespace) -> Path:
    """The command's work: predicts, prints one line per image, writes overlays and ``predictions.json``."""
    check_overlap_has_tile(args.tile, args.tile_overlap)
    options = vars(args).copy()
    out = check_output_folder(options.pop("out"))
    overlays = options.pop("overlays")
    if overlays < -1:
        raise UserError(f"--overlays must be -1 (all), 0 (none) or a count, got {overlays}")
    # listed before --out is checked against them: a pattern matching none was refused an --out
    options["source"] = named_files(args.source)
    # the overlays this run draws: with --overlays 0 it writes no image, inside the photo folder too
    drawn = {OVERLAY_FILES: "overlays"} if overlays else {}
    check_not_read_as_photos(out, args.source, later="read its {} as photos", images=drawn)
    check_overlays_folder(out, options["source"].values(), overlays=overlays)
    images = predicted_images(**options, distinct_stems=overlays != 0)
    written: list[Path] = []  # predictions.json once this run replaced it

    def write(found: dict[str, dict]) -> None:
        record = settings_record(args, len(found), images.imgsz, images.device)
        write_results(out, found, record, written)

    try:
        if overlays:
            found = drawn_and_written(out, images, overlays, write, written)
        else:
            if note := kept_overlays_note(out):
                print(note)
            found = predict_all(images)
            write(found)
    except KeyboardInterrupt:
        print(stopped_note(out, written, overlays=overlays != 0), file=sys.stderr, flush=True)
        raise
    path = out / PREDICTIONS_FILE
    mode = f"tiled ({args.tile} px, overlap {args.tile_overlap:g})" if args.tile else "whole images"
    summary = f"{len(found)} image{'' if len(found) == 1 else 's'}, {mode}; results in {path}"
    if overlays:
        drawn = len(found) if overlays < 0 else min(overlays, len(found))
        summary += f", {drawn} drawn in {out / OVERLAYS_DIR}"
    print(summary)
    return path


def write_results(out: Path, found: dict[str, dict], record: dict, written: list[Path]) -> None:
    """Writes ``predictions.json``, then ``predict.json``, each appended to ``written`` once in place;
    should the second fail or a Ctrl-C land between, an earlier run's ``predict.json`` is removed.

    Raises:
        UserError: one line naming ``out`` when either cannot be written (a full disk).
    """
    try:
        try:
            written.append(atomic_write(out / PREDICTIONS_FILE, json_text(found, indent=1) + "\n"))
            written.append(atomic_write(out / SETTINGS_FILE, json_text(record, indent=1) + "\n"))
        finally:
            if len(written) == 1:  # a Ctrl-C or a full disk between: an earlier run's record may not stay
                (out / SETTINGS_FILE).unlink(missing_ok=True)
    except OSError as error:  # the folder changed while the model ran
        raise UserError(f"cannot write into {out}: {one_line(error)}") from None


def drawn_and_written(
    out: Path,
    images: Iterator[tuple[str, np.ndarray, dict]],
    overlays: int,
    write: Callable[[dict[str, dict]], None],
    written: list[Path],
) -> dict[str, dict]:
    """Draws the overlays into a hidden folder, calls ``write`` with the results, then puts them in place.

    ``predictions.json`` is written before ``overlays/`` is renamed into place: written after it, a
    failed write (a full disk) or a Ctrl-C between left this run's overlays beside no ``predictions.json``
    (the next run refused them as made otherwise) or beside an earlier run's. Should the rename fail or a
    Ctrl-C land once ``predictions.json`` is this run's, the earlier run's ``overlays/`` is removed: it never
    lies beside another run's ``predictions.json``.

    Returns:
        Every image's record (:func:`predict_all`).
    """
    built: list[os.stat_result] = []  # this run's folder, to tell it from the earlier run's

    def build(folder: Path) -> dict[str, dict]:
        found = predict_all(images, folder, overlays)
        built.append(os.stat(folder))
        write(found)
        return found

    try:
        return build_folder(out / OVERLAYS_DIR, build, overwrite=True)
    except BaseException:
        folder = out / OVERLAYS_DIR
        if written and folder.is_dir() and not os.path.samestat(built[0], os.stat(folder)):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def settings_record(args: argparse.Namespace, images: int, imgsz: int, device: str) -> dict:
    """``predict.json``: what made ``predictions.json`` (which holds only per-image records, as the
    cascade's), so that an output folder can be traced back and repeated; paths absolute.

    ``imgsz`` is the size the images ran at (:attr:`PredictedImages.imgsz`): ``--imgsz 100`` ran at 128
    and was recorded as 100. ``device`` the one they ran on (:attr:`PredictedImages.device`), as the
    inspection cascade's ``args.yaml`` records its: the default ``--device`` was recorded as null.
    """
    return {
        "weights": recorded_path(args.weights),
        # a pattern too: its wildcards stay as they are; a quoted ~/photos was recorded as <cwd>/~/photos
        "source": recorded_path(expand_user(args.source)),
        "images": images,
        "imgsz": imgsz,
        "conf": args.conf,
        "iou": args.iou,
        "tile": args.tile,
        "tile_overlap": args.tile_overlap if args.tile else None,
        "device": device,
    }


def check_overlays_folder(out: Path, photos: Iterable[Path], *, overlays: int) -> None:
    """Refuses an ``out/overlays`` that this run would delete or read as photos.

    An earlier run's overlays there are replaced whole by a run that draws overlays, so none of a photo
    no longer there stays; where they are among the photos, ``--overlays 0`` leaves them to be read as
    photos (by this run as by a later one), and one drawing overlays deletes them with the folder. A
    folder of ``*.jpg`` beside no ``predictions.json`` (which every run writes) is not a run's: the user's
    own ``overlays/my_drawing.jpg`` was replaced with it. ``--overlays 0`` refuses it too: it left the
    folder, but the ``predictions.json`` it wrote beside it let the next run that drew overlays delete it.

    Raises:
        UserError: naming the folder and a photo in it, another file, or the missing ``predictions.json``.
    """
    folder = out / OVERLAYS_DIR
    check_holds_no_photos(
        folder,
        photos,
        why="a run that draws overlays replaces it whole, the photo with it"
        if overlays
        else "--overlays 0 keeps it: an earlier run's overlays there are read as photos",
    )
    replaced_by = "a run that draws overlays (--overlays other than 0)"
    if overlays:
        # named as what it is: the message named it '--out' and told to drop a '--overwrite' it has not
        check_output_folder(
            folder, flag="overlays folder", overwrite=True, holds=["*.jpg"], replaced_by=replaced_by
        )
    held = foreign_names(folder, ()) if folder.is_dir() else []
    if held and not (out / PREDICTIONS_FILE).is_file():
        # --overlays 0 leaves it, but the predictions.json it writes made it a run's to a later drawing run
        deletes = (
            f"{replaced_by} replaces the folder whole and would delete it"
            if overlays
            else f"the {PREDICTIONS_FILE} this run writes beside it would let {replaced_by} replace the "
            "folder whole and delete it"
        )
        raise UserError(
            f"overlays folder {folder} holds {few(held)} but {out} holds no {PREDICTIONS_FILE}, which every "
            f"run of this command writes beside it: it was made otherwise (by hand, another tool), and "
            f"{deletes}; choose another --out, or move it away"
        )


def kept_overlays_note(out: Path) -> str | None:
    """The note of an ``--overlays 0`` run on the earlier run's ``out/overlays`` it leaves as it is; None:
    there is none (one beside no ``predictions.json`` was refused: :func:`check_overlays_folder`)."""
    folder = out / OVERLAYS_DIR
    if not folder.is_dir() or not (out / PREDICTIONS_FILE).is_file():  # an empty one is no one's
        return None
    return f"note: {folder} is an earlier run's (--overlays 0 leaves it as it is)"


def stopped_note(out: Path, written: Sequence[Path] = (), *, overlays: bool = False) -> str:
    """The line after a Ctrl-C: nothing of this run is kept, and what ``out`` holds is an earlier run's.

    After 'interrupted' alone, an earlier run's predictions.json in ``out`` read as this run's. ``written``:
    this run's files in place (:func:`write_results`); ``overlays``: its overlays were not put in place
    (:func:`drawn_and_written`; with --overlays 0 it draws none).
    """
    if written:
        missing = ([] if out / SETTINGS_FILE in written else [SETTINGS_FILE]) + (
            ["overlays"] if overlays else []
        )
        if not missing:
            return f"stopped: {out / PREDICTIONS_FILE} and {out / SETTINGS_FILE} are this run's"
        verb = "was" if missing == [SETTINGS_FILE] else "were"
        return (
            f"stopped: {out / PREDICTIONS_FILE} is this run's, written before its {' and '.join(missing)} "
            f"{verb} put in place: {out} holds none"
        )
    note = f"stopped: {PREDICTIONS_FILE} is written once every photo is done, so nothing of this run was kept"
    earlier = [name for name in (PREDICTIONS_FILE, SETTINGS_FILE, OVERLAYS_DIR) if (out / name).exists()]
    if earlier:
        verb = "is" if len(earlier) == 1 else "are"
        paths = [str(out / name) for name in earlier]
        listed = paths[0] if len(paths) == 1 else f"{', '.join(paths[:-1])} and {paths[-1]}"
        note += f"; {listed} {verb} an earlier run's"
    return note


def predict_all(
    images: Iterator[tuple[str, np.ndarray, dict]], folder: Path | None = None, overlays: int = 0
) -> dict[str, dict]:
    """Every image's record, its line printed as it comes.

    Args:
        images: :func:`predicted_images`.
        folder: where the first ``overlays`` images (-1: all) are drawn (:func:`draw_detections`).
    """
    found: dict[str, dict] = {}
    for name, image, entry in images:
        print(image_line(name, entry), flush=True)
        if folder is not None and (overlays < 0 or len(found) < overlays):
            drawn = draw_detections(image, entry)
            jpeg = encode_image(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, OVERLAY_QUALITY])
            atomic_write(folder / f"{output_name(name)}.jpg", jpeg)
        found[name] = entry
    return found


def image_line(image: str, entry: dict) -> str:
    """One image's printed line: its call, top score, box count (``1 box``, ``3 boxes``) and file name."""
    n = len(entry["scores"])
    return f"{entry['call']:>16s}  {entry['score']:.3f}  {n:3d} {'box' if n == 1 else 'boxes':5s}  {image}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detection.predict``; bad input is one ``error:`` line and exit code 2."""
    return exit_code(lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
