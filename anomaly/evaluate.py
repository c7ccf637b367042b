"""``python -m anomaly.evaluate``: score a run on labelled images (MVTec protocol or a converter split).

    python -m anomaly.evaluate --run runs/anomaly/hazelnut                       # test/ of its category
    python -m anomaly.evaluate --run runs/anomaly/hazelnut --data datasets/hazelnut_yolo --split test

A run fit with ``anomaly.train --data D`` is scored on D's splits (``--split test`` by default)
unless ``--data`` names another converter output: the MVTec protocol would score ``test/good``
images it was fit on.

Writes ``metrics.json``, ``report.md``, ``scores.csv`` and ``anomaly_maps.png`` into ``--out``
(default ``<run>/eval-<protocol>``, replaced by each re-run, with a ``note:``; an existing ``--out`` only with
``--overwrite``), built hidden beside it and renamed into place when complete. An image the run
was fit on is refused (one line, exit 2): the protocol's rule, checked by record key against the
run's ``fit_keys``.

With ``--masks``, a ``--sam`` ``decoder.pt``'s colour prompt and colour head shape the masks scored, as in the
inspection cascade, unless ``--no-colour-prompt`` / ``--no-colour-head``; ``metrics.json``'s ``masks``
records them (``colour_head``, ``colour_prompt``, ``no_colour_head``, ``no_colour_prompt``) and its
``segmenter`` names them (``+ colour prompt + colour head``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from anomaly.data import (
    check_disjoint,
    check_mask_sizes,
    check_sizes,
    eval_records,
    load_records,
    masked,
    note_skipped,
    read_mask,
    read_masks,
    read_rgb,
    read_splits,
    splits_path,
    warn_empty_folders,
    warn_lines,
)
from anomaly.maps import to_image_size
from anomaly.mask_scores import score_masks
from anomaly.masks import (
    Segmenter,
    add_cache_options,
    add_colour_options,
    check_colour_options,
    check_sam_flags,
    embedding_cache_dir,
    load_segmenter,
    warn_grey_photos,
)
from anomaly.patchcore import to_tensor
from anomaly.regions import check_min_area, check_threshold
from anomaly.report import (
    REPORT_NAMES,
    image_metrics,
    map_figure,
    pixel_metrics,
    undefined,
    undefined_notes,
    write_report,
)
from anomaly.run import AnomalyRun, load_run, protocol_data
from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path_text
from common.data_sets import data_set_folder
from common.errors import UserError
from common.folders import (
    build_folder,
    check_cache_outside,
    check_output_folder,
    check_outside_tree,
    earlier_run_note,
)
from common.io import atomic_write, read_json, recorded_path, sha256_file
from common.metrics import pixel_f1_max
from common.pixels import warn_narrow_photos
from converters.mvtec import ImageRecord, category_dir
from converters.splits import SPLITS

#: Examples in ``anomaly_maps.png``: the highest-scoring defect images and the highest-scoring good one.
FIGURE_DEFECTS = 3
#: the longest side of a figure row's photo, mask and map: a panel is drawn about 225 px wide (7.5 in at
#: 90 dpi, three panels), and a 12 MP row at full size held some 100 MB (photo, mask, float32 map)
FIGURE_SIDE = 512
#: Smallest region kept when maps are cut into masks (``--min-area``), in pixels.
MIN_AREA = 16


def scored_records(
    run: AnomalyRun, *, root=None, category=None, data=None, split: str = "test", progress: bool = False
) -> tuple[list[ImageRecord], str, list[ImageRecord] | None]:
    """The records to score, the protocol's name and the records of ``data``'s ``val`` split where another
    split is scored (:func:`pick_threshold`'s; None without ``data`` or scoring ``val``): the image tree and
    ``splits.json`` are read here once. Refuses a scored record the run was fit on (``progress``: a bar
    while their files are hashed, and one while their masks are read: :func:`anomaly.data.read_masks`)."""
    category = category or run.info["category"]
    records = load_records(root or run.info["root"], category)
    # here, not where the val split's threshold reads the tree again; the MVTec protocol scores test/ alone,
    # so an empty test/good/ beside a full train/good/ leaves no good photo scored
    held = [r for r in records if r.layout_split == "test"] if data is None else None
    warn_empty_folders(records, held=held)
    warn_other_category(run, records, category)
    splits = read_splits(data, category) if data is not None else None
    chosen = eval_records(records, splits, split)
    check_sizes([r.image for r in chosen], run.image_shape)  # headers only: before every byte is hashed
    check_mask_sizes(chosen)  # headers too: a mask of another size was found when scoring reached it
    # a photo fit on by key (never a defect photo read_masks may skip) refused in one line, before any bar
    check_disjoint(run.fit_keys, chosen, hint=split_fit_hint(run, data, split))
    reading = read_masks(chosen, progress=progress)  # each mask decoded once, for the skips and the warnings
    where = "test/" if splits is None else f"split '{split}'"  # as eval_records names it
    chosen = scorable(note_skipped(reading), where=where, notes=len(reading.skipped))
    check_disjoint((), chosen, run.fit_hashes, progress=progress)  # and a copy of one, among those scored
    warn_narrow_photos([r.image for r in chosen])  # as anomaly.train: 12-bit data reads nearly black
    warn_lines(reading.warnings)  # JPEG or soft masks: every value > 0 is defect, as the converters warn
    # the data set absolute, as the run's root in the report: a relative one names nothing elsewhere
    protocol = f"split {split} of {recorded_path(data)}" if data is not None else "mvtec test/"
    if splits is None or split == "val":
        return chosen, protocol, None
    try:
        val = eval_records(records, splits, "val")
    except UserError:  # no val image of the category, or one not in the tree: the scored images pick it
        val = []
    return chosen, protocol, val


def scorable(records: list[ImageRecord], *, where: str, notes: int) -> list[ImageRecord]:
    """``records``, the photos left to score once the defect photos whose mask holds no defect value (all
    zero, or only values its value map names good) are out (:func:`anomaly.data.read_masks`). ``where``:
    what was to be scored (``test/``, ``split 'test'``); ``notes``: the ``note:`` lines said of them.

    Raises:
        UserError: none is left (its notes name why).
    """
    if not records:
        said = "the notes above say" if notes > 1 else "the note above says"
        raise UserError(
            f"no images to score in {where}: each is a defect photo whose mask holds no defect value "
            f"({said} why)"
        )
    return records


def warn_other_category(run: AnomalyRun, records: Sequence[ImageRecord], category: str) -> None:
    """One ``warning:`` line when ``category`` is not the one the run was fit on (``run.json``) and none of
    its good photos is one the run was fit on (by ``fit_sha256``): a copy or a renamed folder of the run's
    own category is scored without a word.

    The memory bank holds the fit product's patches: another product's photos, good or defective, score as
    unlike them throughout, and the metrics say nothing about its defects (on hazelnut_toy, a run's own
    threshold flags at most 16% of a defect photo and all of each photo of another product). Not refused:
    the same product photographed anew and filed under another category name is a fair test of the run.
    """
    fit = run.info["category"]
    if category == fit:
        return
    hashes = set(run.fit_hashes.values())  # empty for runs fit before they were recorded: a warning then
    if hashes and any(sha256_file(r.image, what="image") in hashes for r in records if r.is_good):
        return
    print(
        f"warning: {run.path} was fit on '{fit}' photos and '{category}' holds none of them: if it is "
        f"another product, each of its photos scores as unlike '{fit}' throughout, good or defective, and "
        f"these metrics say nothing about its defects (fit a run on it with anomaly.train --category "
        f"{category})",
        file=sys.stderr,
        flush=True,
    )


def split_fit_hint(run: AnomalyRun, data, split: str = "test") -> str:
    """The way out when a converter split (``data``'s ``split``) holds images the run was fit on.

    The converters add good images from ``train/good`` to val and test as backgrounds, so an MVTec-protocol
    run refuses them: the bare refusal named no way to score such a split. A run fit with ``anomaly.train
    --data D`` was fit on D's good images outside val and test: its own train split is refused.
    """
    if data is None:
        return ""
    protocol = run.info.get("protocol") or {}
    if protocol.get("mode") != "mvtec":
        own = protocol.get("data")
        if split != "train" or own is None or splits_path(data).resolve() != splits_path(own).resolve():
            return ""
        return (
            f"; the run was fit by anomaly.train --data {own} on its good images outside val and test, the "
            "train split's among them: score --split val or --split test"
        )
    return (
        f"; the run was fit on the category's train/good (MVTec protocol), which the splits of {data} draw "
        f"good images from: score them with a run fit by anomaly.train --data {data}, or test/ without --data"
    )


def score_records(
    run: AnomalyRun, records: Sequence[ImageRecord], *, progress: bool = True
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], float]:
    """Image scores, maps and masks on the model's input grid, and seconds per image (decode included).

    Each photo is checked as :meth:`~anomaly.run.AnomalyRun.predict` checks it (``run.check_photo``): its
    size, and the run's one ``warning:`` line at the first photo grey where the fit photos were colour, or
    the other way.

    Returns:
        ``(N,)`` scores, ``N`` ``(S, S)`` float32 maps, ``N`` ``(S, S)`` bool masks, seconds per image.
    """
    model, size = run.model, run.model.image_size
    scores, maps, masks = [], [], []
    start = time.perf_counter()
    batch = model.batch_size
    for first in tqdm(range(0, len(records), batch), desc="scoring", unit="batch", disable=not progress):
        chunk = records[first : first + batch]
        images = []
        for record in chunk:
            image = read_rgb(record.image)
            # the size alone was checked: a grey photo scored by a run fit on colour ones got no warning
            # unless it was among the figure's or --masks read it again
            run.check_photo(image, record.image)
            mask = read_mask(record, image.shape[:2])
            masks.append(cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0)
            images.append(image)
        batch_maps, batch_scores = model.score(to_tensor(images, size))
        maps += list(batch_maps.numpy())
        scores += batch_scores.tolist()
    seconds = (time.perf_counter() - start) / max(len(records), 1)
    return np.asarray(scores), maps, masks, seconds


def figure_examples(records: Sequence[ImageRecord], scores: np.ndarray, maps: Sequence[np.ndarray]) -> list:
    """The figure's rows: top defect images by score, then the top good image, shrunk to at most
    :data:`FIGURE_SIDE` pixels a side (:func:`figure_row`).

    Args:
        records, scores, maps: as :func:`score_records` scored them; each row's ``(S, S)`` map is resized
            bilinearly to its photo's size, as :meth:`~anomaly.patchcore.PatchCore.predict` resizes it
            (PatchCore is not run on the figure's photos again: it was, for maps and scores held here).
    """
    order = np.argsort(-scores)
    defect = [i for i in order if not records[i].is_good][:FIGURE_DEFECTS]
    good = [i for i in order if records[i].is_good][:1]
    rows = []
    for i in defect + good:
        record = records[i]
        image = read_rgb(record.image)
        anomaly_map = to_image_size(torch.from_numpy(maps[i]), image.shape[:2]).numpy()
        title = f"{record.defect}/{record.image.name} score {scores[i]:.2f}"
        title += " (no mask)" if record.mask_missing else ""  # its ground truth panel is blank
        rows.append(figure_row(title, image, read_mask(record, image.shape[:2]), anomaly_map))
    return rows


def figure_row(title: str, image: np.ndarray, mask: np.ndarray, anomaly_map: np.ndarray) -> tuple:
    """``(title, photo, mask, map)`` area-averaged to at most :data:`FIGURE_SIDE` pixels a side (the
    mask as the float share of each pixel it covers: a thin defect stays visible, in grey)."""
    scale = FIGURE_SIDE / max(image.shape[:2])
    if scale >= 1:
        return title, image, mask, anomaly_map
    size = (max(round(image.shape[1] * scale), 1), max(round(image.shape[0] * scale), 1))

    def shrink(array: np.ndarray) -> np.ndarray:
        return cv2.resize(array, size, interpolation=cv2.INTER_AREA)

    return title, shrink(image), shrink(mask.astype(np.float32)), shrink(anomaly_map.astype(np.float32))


def pick_threshold(
    run: AnomalyRun, metrics: dict, *, val: Sequence[ImageRecord] | None = None, data=None, progress=True
):
    """The map threshold for masks: pixel F1-max on a split's ``val`` images, else on the scored ones.

    ``val``: the records of ``data``'s ``val`` split, from the image tree the scored images come from
    (:func:`scored_records`); None where no other split than the scored one may pick it.

    Returns:
        ``(threshold, where it was picked)``.

    Raises:
        UserError: no image to pick on holds a defect pixel (on the model's grid): the threshold
            would be NaN, no pixel would pass it and every good image would count as left clean; or
            :func:`~anomaly.data.check_disjoint`'s, for a val photo the pick scores that the run was fit on
            (of those it scores alone: not a defect photo left out of the pick).
    """
    if val is not None:
        check_mask_sizes(val)
        # as scored: a defect photo whose mask holds no defect value would count as good pixels
        reading = read_masks(val, progress=progress)  # each mask decoded once
        val = note_skipped(reading, left_out="of split 'val' not used for the threshold")
        warn_lines(reading.warnings)  # the threshold is picked against them
        val = masked(val)  # a defect photo without a mask would count as good pixels
        if any(not r.is_good for r in val):
            # the photos scored alone: one skipped above, or a val split that picks nothing, is never scored
            hint = split_fit_hint(run, data)
            check_disjoint(run.fit_keys, val, run.fit_hashes, hint=hint, progress=progress)
            _, maps, truths, _ = score_records(run, val, progress=progress)
            if any(truth.any() for truth in truths):  # else no defect pixel survived the model's grid
                # F1-max alone: val's pixel AUROC and AUPRO, as long again, are reported nowhere
                _, threshold = pixel_f1_max(maps, truths)
                return float(threshold), f"pixel F1-max on the val split ({len(val)} images)"
    threshold = float(metrics["pixel"]["f1_threshold"])
    if np.isnan(threshold):
        unmasked = metrics["pixel"].get("defect_images_without_mask", 0)
        why = f" ({unmasked} defect image{'s' * (unmasked != 1)} without a mask)" if unmasked else ""
        raise UserError(
            f"no defect pixel in the scored images{why} to pick the mask threshold on: pass --threshold "
            f"VALUE (the largest map value on a good image here is {metrics['pixel']['good_peak']:.6g})"
        )
    return threshold, "pixel F1-max on the scored images themselves (optimistic)"


def check_options(*, data, split: str, threshold: float | None, min_area: int, masks: bool) -> None:
    """Refuses option values that would be ignored or score nothing, before any file is read.

    Raises:
        UserError: ``split`` other than ``test`` without ``data`` (the MVTec protocol scores
            ``test/``), a ``threshold`` or a ``min_area`` other than :data:`MIN_AREA` without
            ``masks`` (both only cut the maps into masks), a NaN, infinite or negative
            ``threshold`` (no pixel or every pixel above it), ``min_area`` < 1.
    """
    if data is None and split != "test":
        raise UserError(
            f"--split {split} needs --data (a converter output with splits.json); "
            "without it the category's test/ images are scored"
        )
    mask_options = (("--threshold", threshold is not None), ("--min-area", min_area != MIN_AREA))
    given = [flag for flag, changed in mask_options if changed]
    if given and not masks:
        raise UserError(f"{given[0]} needs --masks (or --sam, --sam-zero-shot): without it no map is cut")
    if threshold is not None:  # 1e400 (inf once read) is named as typed, not as 'inf'
        check_threshold(threshold, "--threshold", typed=getattr(threshold, "typed", None))
    if min_area < 1:
        raise UserError(f"--min-area must be at least 1, got {min_area}")


def check_out(out: Path, *, run: Path, root: Path, overwrite: bool, data: Path | None = None) -> Path:
    """An explicit ``out`` resolved, once the report may be written there (replacing what is there);
    ``data``: the converter output scored (its folder, or its ``splits.json``), None for none.

    Raises:
        UserError: ``out`` is or holds the run folder, lies inside the image tree or the ``data`` folder or
            holds it (``--overwrite`` would delete them; a report inside a data set is in the way of its
            next conversion, as every other command refuses it), is a file, exists without ``overwrite``,
            holds other names than the report's or some of them without ``metrics.json`` (made by hand:
            :func:`common.folders.check_replaceable`), or cannot be created.
    """
    out, run = out.resolve(), run.resolve()
    if out == run or out in run.parents:
        raise UserError(f"output folder {out} holds the run ({run}); choose another --out")
    check_outside_tree(out, root)
    if data is not None:
        check_outside_tree(out, splits_path(data).parent)
    # a folder of the report's names without metrics.json (a report.md of the user's) is no earlier report
    return check_output_folder(
        out, what="report folder", overwrite=overwrite, holds=REPORT_NAMES, marker="metrics.json"
    )


def report_folder(
    run_path: str | Path,
    run: AnomalyRun,
    *,
    out,
    root,
    data,
    split: str,
    overwrite: bool,
    category=None,
    makes: tuple[bool, bool] = (False, True),
) -> tuple[Path, bool]:
    """Where the report goes, and whether a folder there is replaced; checked before any scoring.

    The default ``<run>/eval-mvtec`` (``<run>/eval-<split>``) is the run's own evaluation, which
    each re-run replaces, with a ``note:`` naming the earlier report (:func:`note_replaced_report`; ``makes``:
    whether this run makes ``--masks`` scores and ``anomaly_maps.png``); an explicit ``out`` is checked by
    :func:`check_out`.

    Raises:
        UserError: no ``out`` for images other than the run's own (another ``root``, ``category`` or
            ``data``): the default folder is where ``anomaly.predict`` takes its threshold from.
    """
    if out is None and (other := other_images(run, root=root, category=category, data=data)):
        raise UserError(
            f"scoring {other}, not the images {run_path} was fit with: pass --out (its own eval-* "
            "folder is where anomaly.predict takes its default threshold from)"
        )
    if out is None:
        default = Path(run_path) / (f"eval-{split}" if data is not None else "eval-mvtec")
        # replaced by every re-run, no --out or --overwrite given: the message names neither
        default = check_output_folder(
            default,
            flag="the run's report folder",
            what="report folder",
            overwrite=True,
            holds=REPORT_NAMES,
            replaced_by="each re-run (without --out)",
            marker="metrics.json",
        )
        note_replaced_report(default, masks=makes[0], figure=makes[1])
        return default, True
    tree = Path(root or run.info["root"])
    checked = check_out(Path(out), run=Path(run_path), root=tree, overwrite=overwrite, data=data)
    return checked, overwrite


def note_replaced_report(folder: Path, *, masks: bool, figure: bool) -> None:
    """One ``note:`` line on stderr when the default report ``folder`` holds an earlier report, which this
    run replaces whole: naming the folder, and what of it this run does not make again (its ``--masks``
    scores, whose threshold ``anomaly.predict`` takes, or its ``anomaly_maps.png`` where ``figure`` is
    False). They went without a word, while an explicit ``--out`` there is refused without ``--overwrite``.
    """
    if not (folder / "metrics.json").is_file():  # none, or an empty folder: no report is replaced
        return
    lost = []
    if not masks:
        try:
            earlier = read_json(folder / "metrics.json", what="report", utf8=False)
        except UserError:  # unreadable or hand-broken: it is replaced whole all the same
            earlier = None
        if isinstance(earlier, dict) and isinstance(earlier.get("masks"), dict):
            lost.append("--masks scores and their threshold")
    if not figure and (folder / "anomaly_maps.png").is_file():
        lost.append("anomaly_maps.png")
    said = f" (it had {', and '.join(lost)}, which this run does not make)" if lost else ""
    print(f"note: replacing the earlier report in {folder}{said}", file=sys.stderr, flush=True)


def other_images(run: AnomalyRun, *, root=None, category=None, data=None) -> str | None:
    """What differs from the images the run was fit with (``--root X``, ...), or None.

    A ``root`` is compared by the category folder it gives: the data root and the category folder
    itself name the same images.

    Raises:
        UserError: a ``root`` that is no folder or holds no such category, or a ``category`` not in the
            tree, named as such (they were told to pass ``--out``, as if they named other images).
    """
    if root is not None and Path(root).resolve() != Path(run.info["root"]).resolve():
        theirs = category_dir(root, category or run.info["category"]).resolve()
        if theirs != _category_folder(run.info["root"], run.info["category"]):  # None: the run's is gone
            return f"--root {root}"
    if category is not None and category != run.info["category"]:
        # a typo is named as such (did you mean), not told to take an --out
        category_dir(root or run.info["root"], category)
        return f"--category {category}"
    own = (run.info.get("protocol") or {}).get("data")
    # the folder and its splits.json are one data set, whichever of the two the run was fit with
    if data is not None and own is not None and splits_path(data).resolve() != splits_path(own).resolve():
        return f"--data {data}"
    return None


def _category_folder(root: str | Path, category: str) -> Path | None:
    """``category``'s folder under ``root`` resolved (:func:`converters.mvtec.category_dir`), None if none."""
    try:
        return category_dir(root, category).resolve()
    except UserError:  # scanning the images names what is wrong
        return None


def check_image_tree(run_path: str | Path, run: AnomalyRun, *, root=None) -> None:
    """Refuses, naming the way out, a run whose recorded image tree is gone when no ``root`` is given.

    The scanner would name the missing folder as one that holds no category (it read nothing there).

    Raises:
        UserError: the tree the run was fit from (``run.json`` ``root``) is not a folder now.
    """
    tree = Path(run.info["root"])
    if root is None and not tree.is_dir():
        raise UserError(
            f"{run_path} was fit on the image tree {tree}, which is not there now: pass --root with its new "
            "place, and an --out for the report"
        )


@dataclass(frozen=True)
class MaskOptions:
    """How ``--masks`` turns the maps into instance masks to score (threshold -> regions -> ``sam``; see
    :mod:`anomaly.mask_scores` for where the threshold comes from): :func:`evaluate_run`'s arguments.

    Attributes:
        sam, zero_shot, model: the segmenter (:func:`anomaly.masks.load_segmenter`), given as ``sam``,
            ``sam_zero_shot`` and ``sam_model``.
        threshold: the map threshold (None: picked, :func:`pick_threshold`).
        min_area: regions of fewer pixels are dropped.
        cache_dir: where SAM's embeddings of the scored photos are kept (None: not kept), as
            ``anomaly.predict`` and the inspection cascade keep them.
        no_colour: ``(no_colour_head, no_colour_prompt)``: leave out the ``sam`` decoder's colour head,
            colour prompt (:func:`anomaly.masks.load_segmenter`); recorded in the metrics' ``masks``.
    """

    sam: str | Path | None = None
    zero_shot: bool = False
    model: str | None = None
    threshold: float | None = None
    min_area: int = MIN_AREA
    cache_dir: str | Path | None = None
    no_colour: tuple[bool, bool] = (False, False)


def evaluate_run(
    run_path: str | Path,
    *,
    root: str | Path | None = None,
    category: str | None = None,
    data: str | Path | None = None,
    split: str = "test",
    out: str | Path | None = None,
    figure: bool = True,
    progress: bool = True,
    masks: bool = False,
    sam: str | Path | None = None,
    sam_zero_shot: bool = False,
    sam_model: str | None = None,
    threshold: float | None = None,
    min_area: int = MIN_AREA,
    overwrite: bool = False,
    cache_dir: str | Path | None = None,
    no_colour_head: bool = False,
    no_colour_prompt: bool = False,
) -> dict:
    """Scores a run on labelled images and writes the report; returns the metrics.

    Args:
        run_path: folder written by :func:`anomaly.run.fit_run`.
        root, category: the image tree (default: those the run was fit from).
        data, split: score one split of a converter output's ``splits.json`` instead of ``test/``;
            ``data`` defaults to the one the run was fit with (``anomaly.train --data``), if any.
        out: report folder (default ``<run>/eval-mvtec`` or ``<run>/eval-<split>``, which a re-run
            replaces); an existing one is refused unless ``overwrite``.
        figure: write ``anomaly_maps.png``; progress: progress bars.
        masks: also turn the maps into instance masks and score them (per-image IoU, mask AP), as
            ``sam``, ``sam_zero_shot``, ``sam_model``, ``threshold``, ``min_area``, ``cache_dir``,
            ``no_colour_head`` and ``no_colour_prompt`` say (:class:`MaskOptions`).
        overwrite: replace an existing ``out`` (once the new report is complete).

    Raises:
        UserError: a bad option value (``split`` without ``data``, a non-finite or negative
            ``threshold``, ``min_area`` < 1 or above the run's photos' pixel count), a corrupt run, an
            image it was fit on, an image of another size, a bad split, a ``splits.json`` without the
            category, or an ``out`` that may not be written (:func:`check_out`); before any image is scored.
    """
    data = scored_data(run_path, data)
    check_options(data=data, split=split, threshold=threshold, min_area=min_area, masks=masks)
    threshold = None if threshold is None else float(threshold)  # a TypedFloat: its text is no more needed
    run = checked_run(run_path, root=root, min_area=min_area if masks else None)
    images = {"root": root, "category": category, "data": data, "split": split}  # the images scored
    makes = (masks, figure)  # what the earlier report in the default folder had and this run lacks is named
    out, replace = report_folder(run_path, run, out=out, **images, overwrite=overwrite, makes=makes)
    if cache_dir is not None and masks:  # made at SAM's first photo: the report was refused as 'exists'
        check_cache_outside(cache_dir, out)
    no_colour = (no_colour_head, no_colour_prompt)
    options = MaskOptions(sam, sam_zero_shot, sam_model, threshold, min_area, cache_dir, no_colour)
    # a Ctrl-C on a re-run: 'interrupted' alone left the earlier report in ``out`` reading as this one
    with earlier_run_note(out, until="the report is complete"):
        return scored_report(
            run_path, run, images, out, replace, options if masks else None, figure=figure, progress=progress
        )


def checked_run(run_path: str | Path, *, root: str | Path | None, min_area: int | None) -> AnomalyRun:
    """The run at ``run_path``, loaded, once ``min_area`` (``--min-area``; None: no masks are cut) is checked
    against its photos and the image tree scored (``root``; None: the run's) against the one it was fit on
    (:func:`check_image_tree`)."""
    run = load_run(run_path)
    # the run's photos: a larger one drops every region; without --masks the default 16 refused photos of
    # fewer pixels, where no region is cut
    if min_area is not None:
        check_min_area(min_area, run.image_shape)
    check_image_tree(run_path, run, root=root)
    return run


def scored_report(
    run_path: str | Path,
    run: AnomalyRun,
    images: dict,
    out: Path,
    replace: bool,
    masks: MaskOptions | None,
    *,
    figure: bool,
    progress: bool,
) -> dict:
    """Scores ``images`` (:func:`scored_records`' ``root``, ``category``, ``data`` and ``split``) with
    ``run``, their masks too as ``masks`` says (None: not), and writes the report folder ``out``
    (``replace``: over an earlier report; ``figure``: with ``anomaly_maps.png``); :func:`evaluate_run`'s
    result."""
    records, protocol, val = scored_records(run, **images, progress=progress)
    segmenter = masks_segmenter(records, masks) if masks is not None else None
    scores, maps, metrics = scored_metrics(run, records, progress=progress)
    if segmenter is not None:
        metrics["masks"] = mask_metrics(
            run, records, maps, metrics, segmenter, masks, val=val, data=images["data"], progress=progress
        )
    root, category = images["root"], images["category"]
    settings = report_settings(run_path, run, root=root, category=category, protocol=protocol)
    rows = ([r.key for r in records], [r.defect for r in records], list(scores))
    png = figure_png(records, scores, maps) if figure else None
    write_report_folder(out, metrics, settings, rows, png, overwrite=replace)
    # figure: whether anomaly_maps.png was written (none without a defect image to show)
    return {"settings": settings, **metrics, "out": str(out), "figure": png is not None}


def masks_segmenter(records: Sequence[ImageRecord], options: MaskOptions) -> Segmenter:
    """The segmenter of ``--masks`` (:func:`anomaly.masks.load_segmenter`, as ``options`` name it), with its
    ``warning:`` where it reads colour and most of the scored ``records``' photos are grey
    (:func:`anomaly.masks.warn_grey_photos`)."""
    no_colour_head, no_colour_prompt = options.no_colour
    segmenter = load_segmenter(
        options.sam,
        zero_shot=options.zero_shot,
        model=options.model,
        cache_dir=options.cache_dir,
        no_colour_head=no_colour_head,
        no_colour_prompt=no_colour_prompt,
    )
    warn_grey_photos([Path(r.image) for r in records], segmenter)
    return segmenter


def scored_metrics(
    run: AnomalyRun, records: Sequence[ImageRecord], *, progress: bool = False
) -> tuple[np.ndarray, list[np.ndarray], dict]:
    """:func:`score_records` of ``records`` and the metrics' ``image``, ``pixel`` and ``seconds_per_image``.

    Returns:
        ``(N,)`` scores, ``N`` ``(S, S)`` float32 maps, the metrics.
    """
    scores, maps, truths, seconds = score_records(run, records, progress=progress)
    metrics = {
        "image": image_metrics(scores, [r.defect for r in records]),
        "pixel": masked_pixel_metrics(records, maps, truths, progress=progress),
        "seconds_per_image": seconds,
    }
    return scores, maps, metrics


def mask_metrics(
    run: AnomalyRun,
    records: Sequence[ImageRecord],
    maps: Sequence[np.ndarray],
    metrics: dict,
    segmenter: Segmenter,
    options: MaskOptions,
    *,
    val: Sequence[ImageRecord] | None,
    data: str | Path | None,
    progress: bool = False,
) -> dict:
    """The metrics' ``masks``: :func:`anomaly.mask_scores.score_masks` of the scored photos with ground
    truth at ``options.threshold`` (None: :func:`pick_threshold`'s), and the settings the masks were made
    with (``options``: :func:`evaluate_run`'s).

    Args:
        records, maps, metrics: the scored records, per record its ``(S, S)`` map, and the metrics
            (:func:`scored_metrics`).
        val, data: the ``val`` split's records (:func:`scored_records`) and the data set scored, which
            :func:`pick_threshold` picks the threshold on.
    """
    no_colour_head, no_colour_prompt = options.no_colour
    threshold, min_area = options.threshold, options.min_area
    if threshold is None:
        threshold, picked_on = pick_threshold(run, metrics, val=val, data=data, progress=progress)
    else:
        picked_on = "given"
        note_above_every_map(threshold, records, maps)
    # a defect photo without a mask has no truth to score a mask against; the maps scored above,
    # not PatchCore once more on every photo
    kept = [i for i, record in enumerate(records) if not record.mask_missing]
    with segmenter.noting_interrupts():  # 'interrupted' alone: whether SAM's embeddings were lost
        return {
            **score_masks(
                run,
                [records[i] for i in kept],
                [maps[i] for i in kept],
                segmenter,
                threshold,
                picked_on,
                min_area=min_area,
                progress=progress,
            ),
            **segmenter.colour_record(),  # what the --sam decoder.pt carries and the masks applied
            # true: the --sam decoder.pt carries one, left out (a null above is then no lack)
            "no_colour_head": no_colour_head,
            "no_colour_prompt": no_colour_prompt,
            "min_area": min_area,  # --min-area: the regions kept, as anomaly.predict's predict.json
        }


def note_above_every_map(
    threshold: float, records: Sequence[ImageRecord], maps: Sequence[np.ndarray]
) -> None:
    """One ``note:`` line on stderr when ``--threshold`` is above every value of the ``maps`` of the scored
    ``records`` and some are defect photos: every mask is empty, and their IoU of 0 said nothing of why."""
    if all(r.is_good for r in records) or threshold <= max(float(m.max()) for m in maps):
        return
    peak = max(float(m.max()) for m in maps)
    print(
        f"note: --threshold {threshold:g} is above every map value scored (the highest: {peak:.6g}): no "
        "pixel is flagged and every mask is empty; without --threshold one is picked (pixel F1-max)",
        file=sys.stderr,
        flush=True,
    )


def masked_pixel_metrics(
    records: Sequence[ImageRecord],
    maps: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    *,
    progress: bool = False,
) -> dict:
    """:func:`pixel_metrics` of the scored photos that have ground truth (:func:`anomaly.data.masked`), and
    ``defect_images_without_mask``: how many defect photos were left out of them (scored by image alone).

    Args:
        records, maps, truths: the scored records and, per record, its ``(S, S)`` map and bool mask.
    """
    kept = [i for i, record in enumerate(records) if not record.mask_missing]
    pixel = pixel_metrics(
        [maps[i] for i in kept],
        [truths[i] for i in kept],
        good=[records[i].is_good for i in kept],
        progress=progress,
    )
    return {**pixel, "defect_images_without_mask": len(records) - len(kept)}


def scored_data(run_path: str | Path, data: str | Path | None) -> Path | None:
    """The converter output whose split is scored: ``data``, else the one the run was fit with, if any.

    Raises:
        UserError: the run was fit with ``--data`` whose ``splits.json`` is gone (moved, deleted).
    """
    if data is not None:
        return data_set_folder(data)
    # a run fit with --data D holds test/'s good images out of nothing but D's val and test
    data = protocol_data(run_path)
    if data is not None and not splits_path(data).is_file():
        raise UserError(
            f"{run_path} was fit with --data {data}, which holds no splits.json now: "
            "pass --data with the converter output's new place"
        )
    return data


def report_settings(
    run_path: str | Path, run: AnomalyRun, *, root: str | Path | None, category: str | None, protocol: str
) -> dict:
    """``metrics.json``'s ``settings``: what was scored, absolute (``--root`` and ``--category`` may
    name another tree than the run's), and the run that scored it."""
    return {
        "run": recorded_path(run_path),
        "root": recorded_path(root or run.info["root"]),
        "category": category or run.info["category"],
        "protocol": protocol,
        "backbone": run.info["config"]["backbone"],
        "image_size": run.model.image_size,
        "memory_bank": f"{run.info['bank']['rows']} x {run.info['bank']['dim']}",
        # the bank's bytes, as run.json records them: a run refit in place under the same folder differs
        "memory_bank_sha256": run.info["bank"]["sha256"],
        "fit_images": len(run.fit_keys),
        "pixel_metrics_at": f"{run.model.image_size} x {run.model.image_size} (model input grid)",
    }


def figure_png(
    records: Sequence[ImageRecord], scores: np.ndarray, maps: Sequence[np.ndarray]
) -> bytes | None:
    """``anomaly_maps.png``'s bytes (maps on one colour scale, its 99.9th percentile), None without a
    defect image to show."""
    if not any(not r.is_good for r in records):
        return None
    examples = figure_examples(records, scores, maps)
    vmax = float(np.percentile(np.concatenate([m.ravel() for m in maps]), 99.9))
    return map_figure(examples, vmax)


def write_report_folder(
    out: Path, metrics: dict, settings: dict, rows: tuple, png: bytes | None, *, overwrite: bool
) -> None:
    """Builds the report folder hidden beside ``out`` and renames it into place (:func:`build_folder`),
    so no earlier report's file survives in it."""

    def write(folder: Path) -> None:
        write_report(folder, metrics, settings, rows)
        if png is not None:
            atomic_write(folder / "anomaly_maps.png", png)

    build_folder(out, write, overwrite=overwrite)


def parser() -> OneLineParser:
    p = OneLineParser(
        prog=command_name("anomaly.evaluate"),
        description="Score an anomaly run on labelled images (MVTec protocol or a converter split).",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--run", type=user_path_text, required=True, help="run folder written by anomaly.train")
    p.add_argument("--root", type=user_path_text, help="image tree (default: the run's)")
    p.add_argument("--category", help="category (default: the run's)")
    p.add_argument(
        "--data",
        type=user_path_text,
        help="converter output with splits.json (or its data.yaml): score one of its splits "
        "(default: the run's own --data)",
    )
    p.add_argument("--split", default="test", choices=SPLITS, help="split of --data to score")
    p.add_argument(
        "--out",
        type=user_path_text,
        help="report folder (default <run>/eval-mvtec or <run>/eval-<split>, replaced by a re-run)",
    )
    p.add_argument("--no-figure", action="store_true", help="no anomaly_maps.png")
    p.add_argument(
        "--masks", action="store_true", help="also make instance masks and score them (IoU, mask AP)"
    )
    p.add_argument(
        "--sam",
        type=user_path_text,
        help="fine-tuned SAM for --masks: decoder.pt from segmentation.train, or a full sam_finetuned.pth "
        "(with --sam-model)",
    )
    p.add_argument("--sam-zero-shot", action="store_true", help="zero-shot SAM (MobileSAM) for --masks")
    p.add_argument("--sam-model", help="SAM registry model (zero-shot or a full state dict; default vit_t)")
    add_colour_options(p)
    p.add_argument(
        "--threshold",
        type=typed_float,
        help="map threshold for --masks (default: picked, see docs/anomaly.md)",
    )
    p.add_argument("--min-area", type=int, default=MIN_AREA, help="smallest region kept, pixels (--masks)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out when done")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_cache_options(p)
    return p


class TypedFloat(float):
    """A float that keeps the text it was read from (``typed``): ``--threshold 1e400`` reads as inf, and
    its refusal names ``1e400`` (:func:`anomaly.regions.check_threshold`)."""

    typed: str


def typed_float(text: str) -> float:
    """``--threshold``'s argparse type: ``float(text)``, keeping ``text`` (:class:`TypedFloat`)."""
    value = TypedFloat(text)
    value.typed = text
    return value


typed_float.__name__ = "float"  # argparse's "invalid float value: 'x'", as with type=float


def run(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    check_sam_flags(args.sam, args.sam_zero_shot, args.sam_model)
    check_colour_options(args)
    if args.data is None and (data := protocol_data(args.run)):
        print(f"scoring split {args.split} of {data}, the converter output the run was fit with (--data)")
    result = evaluate_run(
        args.run,
        root=args.root,
        category=args.category,
        data=args.data,
        split=args.split,
        out=args.out,
        figure=not args.no_figure,
        progress=not args.no_progress,
        masks=args.masks or bool(args.sam) or args.sam_zero_shot,
        sam=args.sam,
        sam_zero_shot=args.sam_zero_shot,
        sam_model=args.sam_model,
        threshold=args.threshold,
        min_area=args.min_area,
        overwrite=args.overwrite,
        cache_dir=embedding_cache_dir(args),
        no_colour_head=args.no_colour_head,
        no_colour_prompt=args.no_colour_prompt,
    )
    print(summary(result))
    for note in undefined_notes(result):
        print(f"note: {note}")
    if not args.no_figure and not result["figure"]:  # it was left out without a word
        print("note: no anomaly_maps.png: its rows are the top-scoring defect images, and none was scored")
    if "masks" in result:
        print(masks_summary(result["masks"]))


def shown(value: float | None) -> str:
    """A figure of the printed summary: ``0.912``, or ``undefined`` (it printed ``nan``)."""
    return "undefined" if undefined(value) else f"{value:.3f}"


def summary(result: dict) -> str:
    """The printed line of an evaluation's headline figures; :func:`undefined_notes` says why any is
    ``undefined``."""
    image, pixel = result["image"], result["pixel"]
    return (
        f"{image['images']} images ({image['defect_images']} defect): image AUROC {shown(image['auroc'])}, "
        f"F1-max {shown(image['f1_max'])}; pixel AUROC {shown(pixel['auroc'])}, "
        f"AUPRO {shown(pixel['aupro'])}; "
        f"{result['seconds_per_image']:.3f} s/image -> {result['out']}/report.md"
    )


def masks_summary(masks: dict) -> str:
    """The printed line of the mask scores (``undefined``: no image of that kind, or no instance)."""
    return (
        f"masks ({masks['segmenter']}, threshold {masks['threshold']:.6g}, {masks['threshold_from']}): "
        f"per-image IoU {shown(masks['iou_defect'])} on defect images, {shown(masks['iou_good'])} on good "
        f"ones; mask AP {shown(masks['mask_ap'])} (AP50 {shown(masks['mask_ap50'])})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return exit_code(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
