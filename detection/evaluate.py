"""Scores detection weights on a converted split: ultralytics' mAP, COCOeval cross-check, image-level figures.

    python -m detection.evaluate --data datasets/metal_nut --weights runs/detect/RUN/weights/best.pt

Three views of the same detections:

1. **Box mAP from ultralytics' own validator** (``DetectionValidator``: mAP50,
   mAP50-95, per-class AP, precision, recall), exactly what ``yolo val`` prints.
2. **The same boxes scored by pycocotools' COCOeval** against the converter's
   ``annotations/instances_<split>.json`` (:mod:`detection.coco`, which says why
   the two mAP50 differ slightly). The validator's detections are recorded per
   image in original pixels (:class:`detection.validator.RecordingValidator`),
   so both evaluators see identical boxes.
3. **Image-level figures** (:mod:`detection.image_level`), which classification
   and anomaly-detection baselines report: the image's class is the class of
   its top box with score >= ``conf``, ``good`` if there is none; defect-type
   accuracy with its confusion matrix; anomaly AUROC with the top box score as
   the image's anomaly score. ``--conf-from val`` picks ``conf`` on the val
   split (:func:`detection.image_level.tuned_conf`: the threshold with the best
   defect-type accuracy there) instead of the fixed ``--conf``; never on the
   split being scored. These come from each image run as ``detection.predict``
   and the cascade run it (one more forward pass per image), not from the
   validator's letterbox, so a picked ``conf`` holds for them.

With ``--tile N`` the detections come from tiled inference
(:func:`detection.tiling.predict_tiled`: overlapping ``N``-px windows of the
original image, each letterboxed to ``imgsz``, boxes merged back) for a model
trained with ``tile=N``; they are scored by the same validator, COCOeval and
image-level code (:class:`detection.validator.TiledRecordingValidator`).

Results: printed tables, ``evaluation.json`` and ``report.txt`` in the output
folder (:mod:`detection.report`), with ultralytics' PR-curve and
confusion-matrix plots.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from shlex import quote
from typing import Any

import torch
from tqdm import tqdm

from common.cli import (
    DefaultsHelpFormatter,
    OneLineParser,
    command_name,
    exit_code,
    keep_interrupts,
    user_path,
)
from common.data_sets import data_yaml_of
from common.errors import UserError, few
from common.folders import build_folder, check_not_inside, check_output_folder
from common.fonts import ensure_ultralytics_fonts
from common.io import recorded_path
from common.label_cache import no_label_cache
from common.pixels import NARROW_PHOTO_SAMPLE, warn_narrow_photos
from common.trained_images import trained_overlap_warning
from common.ultralytics_scan import images_left_as_they_are, resaved_images_note
from detection.coco import check_coco_entries, check_coco_matches, coco_map, default_coco_file, read_coco
from detection.data import (
    check_nothing_dropped,
    check_own_root,
    check_split_labelled,
    check_splits_read,
    data_names,
    dataset_root,
    dropped_reasons,
    present_split_images,
    read_data_yaml,
    split_images,
    splits_file,
    unloadable_image,
    written_by_converters,
)
from detection.image_level import (
    PICK_WARNING_ADVICE,
    TIES_WORDS,
    check_class_names,
    conf_flags_all,
    conf_ties_warning,
    image_labels,
    image_level_report,
    picked_on_train_warning,
    predict_hint,
    tuned_conf,
    yolo_image_labels,
)
from detection.report import REPORT_JSON, EvaluationReport, format_report, write_report
from detection.tiling import DEFAULT_OVERLAP, check_overlap_has_tile, check_tiling, longest_side
from detection.train_config import check_run_options, chosen_device
from detection.validator import RecordingValidator, TiledRecordingValidator
from detection.weights import (
    load_detector,
    stride_imgsz,
    tiling_note,
    trained_arg,
    trained_imgsz,
    training_run,
    weights_file,
)

#: Default output folder, numbered (``evaluate-2``, ...) when taken.
DEFAULT_OUT = Path("runs/detect/evaluate")
#: Detections kept per image, by the validator and by COCOeval (ultralytics' default).
MAX_DET = 300


def evaluate(
    data: str | Path,
    weights: str | Path | torch.nn.Module,
    *,
    split: str = "test",
    conf: float = 0.25,
    conf_from: str | None = None,
    coco_file: str | Path | None = None,
    imgsz: int | None = None,
    batch: int = 16,
    device: str | None = None,
    out: str | Path | None = None,
    plots: bool = True,
    tile: int | None = None,
    tile_overlap: float = 0.2,
    validator_class: type[RecordingValidator] | None = None,
) -> EvaluationReport:
    """Runs ultralytics' validator on ``split`` and derives the COCOeval and image-level figures.

    Args:
        data: the converter's ``data.yaml``, or the data set folder holding it
            (:func:`common.data_sets.data_yaml_of`; ``evaluation.json`` records the ``data.yaml``).
        weights: ``best.pt`` of a run (YOLO-World or plain YOLO), or a loaded ``torch.nn.Module``.
        split: ``train``, ``val`` or ``test``.
        conf: box score from which an image is called defective (image-level figures only;
            mAP uses the validator's own 0.001 like ``yolo val``).
        conf_from: a split (``val``) on which to pick ``conf`` instead: the threshold with
            the best defect-type accuracy there (:func:`detection.image_level.tuned_conf`,
            ties nearest ``conf``); must differ from ``split``.
        coco_file: ground truth for the cross-check; default the converter's
            ``annotations/instances_<split>.json`` beside ``data``, else in the data set its ``path:``
            names (:func:`_ground_truth_file`; skipped with a note when absent).
        imgsz, batch, device: as in ``yolo val`` (``imgsz`` None: the size the model was trained at).
        out: output folder, built hidden beside it and renamed into place when complete (a re-run
            replaces an earlier evaluation there whole); default ``runs/detect/evaluate`` (numbered
            when taken, written by ultralytics as it goes).
        plots: ultralytics' PR curves and confusion matrix.
        tile: tiled inference with windows of this many pixels (a model trained with ``tile``);
            None: whole images. ``imgsz`` is then the size each window is letterboxed to.
        tile_overlap: overlap of the windows, a fraction of ``tile``.
        validator_class: the validator to run (tests feed ground truth through a subclass);
            default :class:`RecordingValidator`, :class:`TiledRecordingValidator` with ``tile``.

    Returns:
        The figures, also written to ``evaluation.json`` and ``report.txt`` in the output folder.

    Raises:
        UserError: bad input, before the validator runs (:func:`_prepared`); or as :func:`_score` raises.
    """
    run = _prepared(
        data, weights, split=split, conf=conf, conf_from=conf_from, coco_file=coco_file, imgsz=imgsz,
        batch=batch, device=device, out=out, plots=plots, tile=tile, tile_overlap=tile_overlap,
        validator_class=validator_class,
    )  # fmt: skip
    with no_label_cache():  # the data set is read, never written
        if out is None:
            return _score(run, None)  # ultralytics' own numbered folder: always a new one
        # built hidden and renamed into place: a re-run or a Ctrl-C never mixes two evaluations' files
        return build_folder(Path(out), functools.partial(_score, run), overwrite=True)


@dataclass(frozen=True)
class _Scoring:
    """What :func:`evaluate` scores with, checked and loaded by :func:`_prepared`: its arguments (``data``
    the ``data.yaml``, ``device`` as :func:`~detection.train_config.check_run_options` answered, ``imgsz``
    the size the model runs at), the data set's class ``names``, the ``model`` with its training run
    (``trained_in``), the validator class to run, the ``tiling`` the report records (None: whole images) and
    the training's ``classes=`` (:func:`_model_at`; a note when it left some of ``names`` out).
    """

    data: Path
    names: list[str]
    weights: str | Path | torch.nn.Module
    model: torch.nn.Module
    trained_in: Path | None
    validator_class: type[RecordingValidator]
    split: str
    conf: float
    conf_from: str | None
    coco_file: str | Path | None
    imgsz: int
    batch: int
    device: str | None
    out: str | Path | None
    plots: bool
    tiling: dict | None
    largest_side: int
    trained_classes: object = None


def _prepared(
    data: str | Path,
    weights: str | Path | torch.nn.Module,
    *,
    split: str,
    conf: float,
    conf_from: str | None,
    coco_file: str | Path | None,
    imgsz: int | None,
    batch: int,
    device: str | None,
    out: str | Path | None,
    plots: bool,
    tile: int | None,
    tile_overlap: float,
    validator_class: type[RecordingValidator] | None,
) -> _Scoring:
    """:func:`evaluate`'s checks, the cheap ones first, then the model loaded: what it scores with.

    Raises:
        UserError: a bad data file or split (or ``conf_from`` equal to ``split``), a split
            folder that is not there, a bad ``imgsz``, ``batch``, ``conf`` or ``device``, a
            ``coco_file`` given but missing or not of the split's images and the data set's classes,
            an ``out`` that is a file or holds other files than an earlier evaluation's, missing or
            unloadable weights, bad tiling settings, photos of either split that do not decode
            (:func:`check_photos_decode`), weights of other classes than the data set's.
    """
    data, names = _checked_data(data, (split, conf_from), weights=weights, coco_file=coco_file, out=out)
    # a -1: the idle GPUs its one search found, which the note names (ultralytics searched again)
    device = check_run_options(imgsz=imgsz, batch=batch, conf=conf, device=device)
    validator_class = _validator_class(validator_class, tile, tile_overlap)
    largest_side = check_photos_decode(data, (split, conf_from))
    # 12-bit data in 16-bit files reads nearly black (OpenCV drops the low 8 bits); a spread of photos tells
    warn_narrow_photos(split_images(data, split), sample=NARROW_PHOTO_SAMPLE)
    model, trained_in, imgsz, trained_classes = _model_at(weights, imgsz)
    if getattr(model, "names", None) is not None:
        _check_classes(model.names, names, data)  # before the validator runs the whole split
    _check_trained_classes(trained_classes, names, data)
    ensure_ultralytics_fonts()
    return _Scoring(
        data=data, names=names, weights=weights, model=model, trained_in=trained_in,
        validator_class=validator_class, split=split, conf=conf, conf_from=conf_from, coco_file=coco_file,
        imgsz=imgsz, batch=batch, device=device, out=out, plots=plots,
        tiling={"tile": int(tile), "overlap": float(tile_overlap), "imgsz": imgsz} if tile else None,
        largest_side=largest_side, trained_classes=trained_classes,
    )  # fmt: skip


def _score(run: _Scoring, folder: Path | None) -> EvaluationReport:
    """One validator run of ``run`` writing into ``folder`` (None: ultralytics' own numbered one), its
    report written there too; the figures. A JPEG that ultralytics' scan would re-save in place
    (:func:`common.ultralytics_scan.images_left_as_they_are`) is left as it is, named in a note of the report.

    Raises:
        UserError: a photo the validator's loader cannot load, or left out (without ``conf_from``: with it,
            once the pick has read that split too); weights whose classes are not the data set's.
    """
    args = validator_args(
        run.data, run.weights, run.split, run.imgsz, run.batch, run.device, folder, run.plots
    )
    validator = run.validator_class(args=args)
    if run.tiling:
        validator.tile, validator.tile_overlap = run.tiling["tile"], run.tiling["overlap"]
    resaved: list[Path] = []
    reasons: dict[str, str] = {}  # why ultralytics' scans left an image out: the refusal names it
    # the data set is read, never written; the --conf-from split too
    with images_left_as_they_are(resaved), dropped_reasons(reasons):
        stats = _validate(validator, run.model, run.data, run.split)
        _check_classes(validator.names, run.names, run.data)
        if run.conf_from is None:  # else with the --conf-from split's, once the pick has read that split
            check_nothing_dropped(validator.dataloader.dataset.im_files, run.data, run.split, reasons)
        report = _report(
            validator, stats, run.model, data=run.data, names=run.names, split=run.split, conf=run.conf,
            conf_from=run.conf_from, coco_file=run.coco_file, weights=run.weights, tiling=run.tiling,
            save_dir=Path(run.out) if run.out is not None else validator.save_dir,
            trained_in=run.trained_in, imgsz=run.imgsz, batch=run.batch, device=chosen_device(run.device),
            largest_side=run.largest_side, reasons=reasons,
        )  # fmt: skip
    if note := resaved_images_note(resaved, dataset_root(run.data), by="the evaluation"):
        report.notes.append(note)
    if note := _trained_classes_note(run.trained_classes, run.names):  # first: it is about every figure
        report.notes.insert(0, note)
    write_report(report, validator.save_dir)
    return report


def _report(
    validator: RecordingValidator,
    stats: dict,
    model: torch.nn.Module,
    *,
    data: Path,
    names: list[str],
    split: str,
    conf: float,
    conf_from: str | None,
    coco_file: str | Path | None,
    weights: str | Path | torch.nn.Module,
    tiling: dict | None,
    save_dir: Path,
    trained_in: Path | None = None,
    imgsz: int | None = None,
    batch: int | None = None,
    device: str | None = None,
    largest_side: int | None = None,
    reasons: Mapping[str, str] | None = None,
) -> EvaluationReport:
    """The figures of one validator run: ultralytics', COCOeval's and the image-level ones.

    ``trained_in``: the training run (:func:`detection.weights.training_run`) whose ``trained_images.json``
    the scored photos are checked against. ``batch``, ``device``: as it ran (``rect`` pads each batch to its
    own shape: the figures depend on ``batch``). ``largest_side``: the scored photos' longest side in px
    (None: not known). ``reasons``: why ultralytics' scans left an image out, for the pick's refusal."""
    notes: list[str] = []
    named = weights if isinstance(weights, str | Path) else type(weights).__name__  # as the report names it
    tile_note = tiling_note(model, tiling["tile"] if tiling else None, named, largest_side)
    if tile_note:
        notes.append(tile_note.removeprefix("note: "))
    scored = validator.dataloader.dataset.im_files
    # a bar as the validator's own: every byte of the split is read (minutes on a large one)
    if overlap := trained_overlap_warning(trained_in, scored, split, model="the detector", progress=True):
        notes.append(overlap)
    if conf_from is not None:
        conf, picked_notes = _conf_picked_on(
            validator, model, conf_from, conf, data, names, imgsz=imgsz, tiling=tiling, reasons=reasons
        )
        notes += picked_notes
    truth_file = _ground_truth_file(data, split, coco_file, names, notes)
    truth = _truth(truth_file, validator, names)
    coco = coco_map(read_coco(truth_file), validator.detections, max_det=MAX_DET) if truth_file else None
    return EvaluationReport(
        weights=recorded_path(weights) if isinstance(weights, str | Path) else named,
        data=recorded_path(data),  # as every record writes a path: it was as typed (relative)
        split=split,
        ultralytics={k: float(v) for k, v in stats.items()},
        per_class=[{k: _plain(v) for k, v in row.items()} for row in validator.metrics.summary()],
        coco=coco,
        image_level=image_level_report(truth, validator.calls, names, conf),
        save_dir=recorded_path(save_dir),
        notes=notes,
        tiling=tiling,
        imgsz=imgsz,
        batch=batch,
        device=device,
    )


def _checked_data(
    data: str | Path,
    splits: tuple[str, str | None],
    *,
    weights: str | Path | torch.nn.Module,
    coco_file: str | Path | None,
    out: str | Path | None,
) -> tuple[Path, list[str]]:
    """``(the data.yaml, its class names)``, once they and the files of :func:`check_inputs` pass.

    ``data`` as :func:`evaluate` takes it, the ``data.yaml`` or the folder holding it; the ``data.yaml``
    is returned (and recorded) whichever the user passed.

    Raises:
        UserError: a data file without usable class names (:func:`detection.data.data_names`) or with
            one named ``good`` (:func:`detection.image_level.check_class_names`), then as
            :func:`check_inputs`.
    """
    data = Path(data_yaml_of(data))
    names = data_names(data)
    check_class_names(names, f"data file {data}")
    check_inputs(data, splits, weights=weights, coco_file=coco_file, out=out)
    return data, names


def check_inputs(
    data: Path,
    splits: tuple[str, str | None],
    *,
    weights: str | Path | torch.nn.Module,
    coco_file: str | Path | None,
    out: str | Path | None,
) -> None:
    """The files :func:`evaluate` reads and writes, checked before any model loads (cheap ones first).

    Args:
        splits: the scored split and ``conf_from`` (or None).

    Raises:
        UserError: a split the data file lacks, or whose images are not there (a moved data set,
            an empty split); ``conf_from`` equal to the scored split; missing weights; a
            ``coco_file`` given but missing (the default one may be) or not of the split's images and
            the data set's classes, nor may the converter's file of either split be; an ``out`` that is
            a file.
    """
    split, conf_from = splits
    root = check_own_root(data)
    for needed in filter(None, splits):
        if needed not in read_data_yaml(data):
            raise UserError(f"data file {data} has no '{needed}' split{_instead(needed, data, conf_from)}")
    if conf_from == split:
        raise UserError(f"--conf-from {conf_from}: pick the threshold on another split than the one scored")
    if isinstance(weights, str | Path):
        weights_file(weights)
    for needed in filter(None, splits):
        try:
            split_images(data, needed)  # else ultralytics' traceback
        except UserError as error:  # empty, or not there (a Roboflow export's test: without a test set)
            raise type(error)(f"{error}{_instead(needed, data, conf_from)}") from None
        present_split_images(data, needed)  # images listed that are gone: to be restored
        check_split_labelled(data, needed, needs="scoring")  # else every image scored as good
    if coco_file is not None:
        _check_coco_file(Path(coco_file), data, split)
    for needed in filter(None, splits):
        converters = default_coco_file(data, needed)
        if (coco_file is None or needed != split) and converters.is_file():
            _check_coco_file(converters, data, needed, converters_file=True)
    if out is not None:
        check_output_folder(out)
        check_not_inside(out, root)
        out = Path(out)
        if out.is_dir() and any(out.iterdir()) and not (out / REPORT_JSON).is_file():
            raise UserError(
                f"--out {out} holds other files than an earlier evaluation's (no {REPORT_JSON}), "
                "which a re-run replaces whole: choose another --out"
            )


def check_photos_decode(data: Path, splits: tuple[str, str | None]) -> int:
    """Every photo of the scored split and the ``--conf-from`` one (None: none) decoded once, a TIFF by
    OpenCV too, as the validator reads them (:func:`common.images.decode_photos`, as ``detection.predict``
    checks its photos), before any model loads.

    ultralytics' loader skipped a photo that does not decode, which was refused once the whole split had
    been scored (:func:`~detection.data.check_nothing_dropped`), or stopped on one mid-run (a TIFF OpenCV
    cannot read); the ``--conf-from`` split's were named only after that.

    Raises:
        UserError: one line naming every photo of either split that does not decode (the first three and
            how many more).
    """
    photos = [path for needed in filter(None, splits) for path in split_images(data, needed)]
    # a bar only where the pass takes a while (a large split): every photo is decoded
    bar = tqdm(
        dict.fromkeys(photos), desc="checking photos", unit="photo", delay=2.0, leave=False, file=sys.stderr
    )
    return longest_side(bar)


def _instead(split: str, data: Path, conf_from: str | None) -> str:
    """The end of the line refusing an empty or missing ``split``: for ``test`` (the default, which a data
    set without held-out images lacks), how to score val instead; nothing for another split, or where val
    cannot be scored either (a moved data set)."""
    if split != "test":
        return ""
    try:
        present_split_images(data, "val")
    except UserError:
        return ""
    alone = ", without --conf-from val," if conf_from == "val" else ""
    return f": --split val{alone} scores val instead (optimistic for weights picked on val)"


def _check_coco_file(coco_file: Path, data: Path, split: str, *, converters_file: bool = False) -> None:
    """A ``--coco`` file must hold the scored split's images and the data set's classes, and no entry
    :func:`~detection.coco.check_coco_entries` refuses.

    So must the converter's own ``annotations/instances_<split>.json`` (``converters_file``), read when
    no ``--coco`` is given: after a class renamed in ``data.yaml`` by hand the image-level figures
    stopped with a ``KeyError`` traceback once the validator had run, and a photo deleted from the
    split was counted as scored, an image without a box.
    """
    images = [path.name for path in split_images(data, split)]
    what = "the converter's COCO file" if converters_file else "--coco"
    coco = read_coco(coco_file)
    check_coco_entries(coco, coco_file, what=what)  # an edit of the file itself: its line says what to do
    try:
        check_coco_matches(coco, coco_file, names=data_names(data), split=split, images=images, what=what)
    except UserError as error:
        if not converters_file:
            raise
        raise UserError(
            f"{error}; it was written with the data set, whose data.yaml or photos changed since: convert "
            "again, or remove it (the YOLO labels are then the ground truth)"
        ) from None


def validator_args(
    data: Path,
    weights: object,
    split: str,
    imgsz: int,
    batch: int,
    device: str | None,
    out: str | Path | None,
    plots: bool,
) -> dict[str, Any]:
    """ultralytics' validation arguments: ``yolo val``'s scoring settings, our output folder.

    An ``out`` given is used as is; the default folder is numbered when taken.
    """
    exact = out is not None
    out = Path(out) if exact else DEFAULT_OUT
    return {
        "model": str(weights) if isinstance(weights, str | Path) else None,
        "data": str(data.resolve()),
        "split": split,
        "imgsz": imgsz,
        "batch": batch,
        "device": device,
        "conf": 0.001,
        "iou": 0.7,
        "max_det": MAX_DET,
        "rect": True,
        "plots": plots,
        "save_json": False,  # ultralytics' own COCO path would pip-install faster-coco-eval
        "project": str(out.absolute().parent),
        "name": out.name,
        "exist_ok": exact,
        "mode": "val",
    }


def _validate(validator: RecordingValidator, model: Any, data: Path, split: str) -> dict:
    """``validator(model=model)``; an image its loader cannot decode is one line naming it.

    (:func:`detection.data.unloadable_image`: it went out as "cannot write <out>" or a traceback.)
    """
    from ultralytics.utils import LOGGER

    hide = _NoResultsLine()  # it named the hidden folder the report is built in; the report names out
    LOGGER.addFilter(hide)
    try:
        return validator(model=model)
    except FileNotFoundError as error:
        raise unloadable_image(error, f"the {split} split of {data}") from None
    finally:
        LOGGER.removeFilter(hide)


class _NoResultsLine(logging.Filter):
    """Drops ultralytics' ``Results saved to <folder>`` line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Results saved to")


def _model_at(
    weights: str | Path | torch.nn.Module, imgsz: int | None
) -> tuple[torch.nn.Module, Path | None, int, object]:
    """The detector's model (``weights`` loaded, or the module itself), its training run
    (:func:`detection.weights.training_run`), the size it runs at: ``imgsz`` (None: the size it was
    trained at) rounded to a multiple of its stride, with a ``note:`` on stderr when that changed it, and
    its training's ``classes`` (the checkpoint's ``train_args``: ultralytics' ``YOLO`` keeps four of them
    on the network, not that one; a module's own ``args``), None when not recorded.

    Raises:
        UserError: weights missing or unloadable.
    """
    detector = load_detector(weights) if isinstance(weights, str | Path) else weights
    model = detector.model if isinstance(weights, str | Path) else weights
    trained_in = training_run(detector, weights)
    imgsz = trained_imgsz(model) if imgsz is None else imgsz
    if (ran_at := stride_imgsz(imgsz, model)) != imgsz:  # as detection.predict says it: it was ultralytics'
        # WARNING line (the report's size was already the rounded one)
        print(
            f"note: --imgsz {imgsz} is not a multiple of the detector's stride: it runs at {ran_at}",
            file=sys.stderr,
        )
    ckpt = getattr(detector, "ckpt", None)
    train_args = ckpt.get("train_args") if isinstance(ckpt, dict) else None
    classes = train_args.get("classes") if isinstance(train_args, dict) else trained_arg(model, "classes")
    return model, trained_in, ran_at, classes


def _validator_class(
    chosen: type[RecordingValidator] | None, tile: int | None, tile_overlap: float
) -> type[RecordingValidator]:
    """The validator to run: ``chosen``, else the tiled or the plain recording one; checks the tiling.

    ``tile`` None is whole images; 0 is refused, as by ``detection.predict`` and the cascade.
    """
    if tile is None:
        return chosen or RecordingValidator
    chosen = chosen or TiledRecordingValidator
    if not issubclass(chosen, TiledRecordingValidator):
        raise UserError(f"tile={tile} needs a TiledRecordingValidator, got {chosen.__name__}")
    check_tiling(tile, tile_overlap)
    return chosen


def _predict_flags(model: torch.nn.Module, imgsz: int | None, tiling: dict | None) -> str:
    """The ``detection.predict`` flags away from its defaults that find the boxes scored here (its
    ``--imgsz`` default is the size the detector trained at, as here), for a picked ``--conf``."""
    flags = f" --imgsz {imgsz}" if imgsz is not None and imgsz != trained_imgsz(model) else ""
    if tiling:
        flags += f" --tile {tiling['tile']}"
        if tiling["overlap"] != DEFAULT_OVERLAP:
            flags += f" --tile-overlap {tiling['overlap']:g}"
    return flags


def _conf_picked_on(
    validator: RecordingValidator,
    model: torch.nn.Module,
    conf_from: str,
    default: float,
    data: Path,
    names: list[str],
    *,
    imgsz: int | None,
    tiling: dict | None,
    reasons: Mapping[str, str] | None = None,
) -> tuple[float, list[str]]:
    """The ``conf`` picked on the split ``conf_from`` (:func:`_picked_conf`), and the report's notes on it:
    where it was picked, with its ``detection.predict`` hint (:func:`_predict_flags` of ``imgsz`` and
    ``tiling``) when nothing warns against it, then any warnings; with nothing picked, the warning alone.
    Where every threshold ties there (:func:`~detection.image_level.conf_ties_warning`), the note says the
    ``conf`` scored with was not picked: it is the candidate nearest ``default``, no choice.
    """
    picked_conf = _picked_conf(validator, model, conf_from, default, data, names, reasons)
    conf, picked_accuracy, warning, picked = picked_conf
    note = f"conf {conf:.6g} picked on the {conf_from} split (accuracy {picked_accuracy:.3f} there)"
    if warning and warning.startswith(TIES_WORDS):  # 'picked' beside the warning that it is no pick
        note = (
            f"conf {conf:.6g} not picked: every threshold ties on the {conf_from} split (accuracy "
            f"{picked_accuracy:.3f} there), so the candidate nearest --conf {default:g} is used"
        )
    on_train = picked_on_train_warning(conf_from)
    # detection.predict's own 0.25 boxed up to 16 spots a photo on a real set; a pick on train is no
    # advice for new photos (the warning below says pick it on val), as none warned of
    if picked and not warning and not on_train:
        note += f": {predict_hint(conf, 'detection.predict', _predict_flags(model, imgsz, tiling))}"
    # nothing picked: the warning alone says --conf was kept (a note 'kept: nothing to pick it from' said
    # it a second time)
    notes = [note] if picked else []
    if warning:
        # nothing picked (--conf kept, the detector boxes nothing): a --conf would change nothing either
        advice = f"; {PICK_WARNING_ADVICE}" if picked else ""
        notes.append(f"warning: on the {conf_from} split, {warning}{advice}")
    if on_train:
        notes.append(on_train)
    return conf, notes


def _picked_conf(
    scored: RecordingValidator,
    model: torch.nn.Module,
    split: str,
    default: float,
    data: Path,
    names: list[str],
    reasons: Mapping[str, str] | None = None,
) -> tuple[float, float, str | None, bool]:
    """``(conf, accuracy there, warning, picked)`` picked on ``split`` by :func:`tuned_conf`, with
    ``scored``'s settings; the warning (:func:`conf_flags_all`) when it calls every one of the split's
    images defective, when every threshold ties there (:func:`conf_ties_warning`: the pick is ``default``'s
    neighbour, not a choice), or when the detector boxes nothing there at all (nothing to pick from:
    ``default`` is kept, ``picked`` False). A pick below the validator's ``conf`` (0.001) is that floor, as
    :func:`inspection.evaluate.pick_conf`'s.

    The split's detections (its :attr:`~RecordingValidator.calls`) come from a second validator of the
    same class and settings (tiling included), writing nothing; the folder ``conf_<split>`` that
    ultralytics makes for it inside ``scored``'s is removed when it stays empty.

    Raises:
        UserError: images ultralytics' loader left out of ``split`` or of the scored one, named in one line
            (:func:`~detection.data.check_splits_read`).
    """
    a = scored.args
    out = Path(scored.save_dir) / f"conf_{split}"
    picker = type(scored)(args=validator_args(data, a.model, split, a.imgsz, a.batch, a.device, out, False))
    if hasattr(scored, "tile"):
        picker.tile, picker.tile_overlap = scored.tile, scored.tile_overlap
    _validate(picker, model, data, split)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    # ultralytics skips an image it cannot read: the pick counted it as a good image without a box; the
    # scored split's are named with them (each alone took a run to find)
    kept = {scored.args.split: scored.dataloader.dataset.im_files, split: picker.dataloader.dataset.im_files}
    check_splits_read(kept, data, reasons)
    truth = _truth(_ground_truth_file(data, split, None, names, []), picker, names)
    conf, accuracy = tuned_conf(truth, picker.calls, names, default=default)
    if not any(len(found.scores) for found in picker.calls.values()):  # every threshold ties: --conf kept
        nothing = (
            f"the detector scores no box {a.conf:g} or more on any image: every threshold calls them all "
            f"good, so nothing was picked and --conf {conf:.6g} kept (an undertrained detector?)"
        )
        return conf, accuracy, nothing, False
    conf = max(conf, a.conf)  # below the validator's floor: the floor (boxes under it were never seen)
    warning = conf_flags_all(truth, picker.calls, names, conf) or conf_ties_warning(
        truth, picker.calls, names, conf, default
    )
    return conf, accuracy, warning, True


def _ground_truth_file(
    data: Path, split: str, coco_file: str | Path | None, names: list[str], notes: list[str]
) -> Path | None:
    """The COCO ground truth of ``split``: ``--coco``, else the converter's file; None (with a note) if none.

    The converter's file is the one beside ``data``, else the one of the data set its ``path:`` names
    (a ``data.yaml`` copied out of its data set alone, as :func:`detection.data.splits_file` finds
    ``splits.json``): the cross-check was skipped for it, with a note to convert with ``--coco`` again;
    a data set the converters did not write (a Roboflow export) is told of ``--coco`` instead.
    That one is used only when it holds ``data``'s classes and the split's images (a copy made to
    rename a class holds other names); else a note says why it was not.
    """
    if coco_file is not None:
        return Path(coco_file)  # checked by check_inputs
    beside = default_coco_file(data, split)
    if beside.is_file():
        return beside  # checked by check_inputs
    found = dataset_root(data) / beside.relative_to(data.parent)
    if not found.is_file():
        if splits_file(data) is None and not written_by_converters(data):  # a Roboflow export, say
            notes.append(
                f"no COCO ground truth of the {split} split (--coco FILE): COCOeval cross-check skipped"
            )
            return None
        shown = beside if found.resolve() == beside.resolve() else found  # where --coco would write it
        notes.append(f"no COCO file {shown} (convert with --coco): COCOeval cross-check skipped")
        return None
    images = [path.name for path in split_images(data, split)]
    try:
        check_coco_matches(
            read_coco(found), found, names=names, split=split, images=images, what="the data set's COCO file"
        )
    except UserError as error:
        notes.append(f"{error}: COCOeval cross-check skipped, image labels from the YOLO labels")
        return None
    return found


def _truth(coco_file: Path | None, validator: RecordingValidator, names: list[str]) -> dict[str, str]:
    """Image-level ground truth of the validator's split: from its COCO file, else its YOLO labels."""
    if coco_file is not None:
        return image_labels(read_coco(coco_file))
    return yolo_image_labels(validator.dataloader.dataset.labels, names)


def _check_classes(model_names: dict | list, names: list[str], data: Path) -> None:
    """The model must have been trained on the data set's classes, in its order."""
    model_names = [str(n) for n in (model_names.values() if isinstance(model_names, dict) else model_names)]
    if model_names != names:
        shown = f"[{few([repr(n) for n in model_names], 8)}]"  # COCO's 80 would fill the screen
        hint = ""
        if not set(names) & set(model_names):  # a pretrained model (COCO's 80) or another data set's
            hint = f"; train one on it first: python -m detection.train data={quote(str(data))}"
        raise UserError(f"the model's classes {shown} are not the data set's {names} ({data}){hint}")


def _check_trained_classes(classes: object, names: list[str], data: Path) -> None:
    """Refuses a detector whose checkpoint's ``classes`` (the training run's ``classes=``, the class
    indices it trained on) names an index ``data`` has no class for. The evaluation scores every class of
    ``data`` (the setting is not applied); detection.train refuses such indices, ultralytics' own trainer
    does not (no label matches them: it trained on the others alone). Another shape: not checked.

    Raises:
        UserError: one line naming the indices and ``data``.
    """
    wanted = _class_indices(classes)
    lacking = sorted({i for i in wanted if isinstance(i, int) and not 0 <= i < len(names)})
    if lacking:
        shown = ", ".join(map(str, lacking))
        raise UserError(
            f"the detector was trained with classes={list(wanted)} (its checkpoint's training arguments): "
            f"data file {data} has no class {shown} (its classes are 0-{len(names) - 1}: {', '.join(names)})"
        )


def _class_indices(classes: object) -> list:
    """A training's ``classes=`` as a list: an int as one index, a list or tuple as it is, else empty."""
    if isinstance(classes, int):
        return [classes]
    return list(classes) if isinstance(classes, list | tuple) else []


def _trained_classes_note(classes: object, names: list[str]) -> str | None:
    """A note when the training's ``classes=`` (:func:`_model_at`) left some of ``names`` out: they are
    scored all the same, at an AP near 0 that pulls mAP down, and their photos' image-level calls are wrong
    (ultralytics' validation in training left their labels out, so its mAP was of the trained ones alone).
    None when every class was trained on, or nothing says which (None, an empty list)."""
    trained = sorted({i for i in _class_indices(classes) if isinstance(i, int) and 0 <= i < len(names)})
    others = [name for i, name in enumerate(names) if i not in trained]
    if not trained or not others:
        return None
    return (
        f"the detector was trained on {', '.join(names[i] for i in trained)} alone (its training's classes="
        f"{_class_indices(classes)}): {', '.join(others)} {'is' if len(others) == 1 else 'are'} scored too, "
        "though never trained on: expect AP near 0 there, pulling mAP down, and their photos' image-level "
        "calls wrong (the mAP ultralytics printed in training was of the trained classes alone)"
    )


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number JSON takes."""
    return value.item() if hasattr(value, "item") else value


def build_parser() -> argparse.ArgumentParser:
    """The command line; its destinations are :func:`evaluate`'s parameters."""
    parser = OneLineParser(
        prog=command_name("detection.evaluate"),
        formatter_class=DefaultsHelpFormatter,
        description="Box mAP (ultralytics + COCOeval cross-check) and image-level defect-type accuracy and "
        "anomaly AUROC of detection weights on a converted data set split.",
    )
    parser.add_argument(
        "--data",
        type=user_path,
        required=True,
        help="data set folder written by the converters, or its data.yaml",
    )
    parser.add_argument("--weights", type=user_path, required=True, help="weights to score (a run's best.pt)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to score")
    parser.add_argument("--conf", type=float, default=0.25, help="box score that makes an image defective")
    parser.add_argument(
        "--conf-from",
        choices=("train", "val", "test"),
        help="pick --conf on this split instead (best defect-type accuracy there; e.g. val)",
    )
    parser.add_argument(
        "--coco",
        dest="coco_file",
        type=user_path,
        help="COCO ground truth (annotations/instances_SPLIT.json)",
    )
    parser.add_argument(
        "--imgsz",
        type=int,
        help="model input size in px, per window with --tile (default: the size it trained at)",
    )
    parser.add_argument("--batch", type=int, default=16, help="images per validator batch")
    parser.add_argument("--device", default=None, help="cpu, 0, ... (default: first GPU, else CPU)")
    parser.add_argument(
        "--out", type=user_path, help="output folder, used as is (default: runs/detect/evaluate, numbered)"
    )
    parser.add_argument(
        "--no-plots", dest="plots", action="store_false", help="skip ultralytics' curves and matrices"
    )
    parser.add_argument(
        "--tile", type=int, help="tiled inference with windows of this many px (a model trained with tile=N)"
    )
    parser.add_argument(
        "--tile-overlap", type=float, default=DEFAULT_OVERLAP, help="window overlap, fraction of --tile"
    )
    return parser


def _report_stamp(out: Path | None) -> tuple[int, int] | None:
    """``(inode, mtime)`` of ``out``'s :data:`REPORT_JSON`, None without one: whether a run replaced it."""
    try:
        stat = (Path(out) / REPORT_JSON).stat() if out is not None else None
    except OSError:
        return None
    return None if stat is None else (stat.st_ino, stat.st_mtime_ns)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detection.evaluate``: prints the report; bad input is one ``error:`` line, exit 2."""

    def work() -> None:
        options = vars(build_parser().parse_args(argv))
        check_overlap_has_tile(options["tile"], options["tile_overlap"])
        earlier = _report_stamp(options["out"])
        try:
            with keep_interrupts():  # ultralytics' plotting swallows Ctrl-C: it exited 0 with a plot warning
                print(format_report(evaluate(**options)))
        except KeyboardInterrupt:  # 'interrupted' alone: the earlier evaluation in --out read as this one
            if earlier is not None and _report_stamp(options["out"]) == earlier:
                print(
                    f"stopped: nothing of this evaluation was kept; {options['out']} holds an earlier one's",
                    file=sys.stderr,
                    flush=True,
                )
            raise

    return exit_code(work)


if __name__ == "__main__":
    raise SystemExit(main())
