"""``python -m inspection.evaluate``: the cascade scored end to end on a converted split, in one report.

    python -m inspection.evaluate --detector runs/detect/RUN/weights/best.pt --sam runs/sam/RUN/decoder.pt \\
        --data datasets/metal_nut_yolo --split test --out runs/inspect/metal_nut_test

Every image of the split goes through the cascade (:class:`~inspection.inspector.Inspector`)
exactly as new photos do, and SAM is also prompted with the ground-truth boxes
on the same embedding: the oracle behind every mask figure of
``segmentation.evaluate``. :mod:`inspection.scoring` turns both into the
figures; the output folder gets ``report.html`` (one self-contained file),
``report.md`` and ``metrics.json`` (:mod:`inspection.report`), plus the
cascade's own outputs for the split (``predictions.json`` with the split's
COCO image ids, ``images.json``, the masks tree) and ``overlays/<name>.jpg``: each
photo's overlay with the ground truth outlined in green, full size (``--overlays N``:
the first N photos only; the report's gallery and list of photos called wrong link to
them). The data set is the converters' folder (``--coco`` or ``mvtec2coco``:
``annotations/instances_<split>.json`` and ``images/``), and the detector must have been
trained on its classes.

``--conf-from val`` picks the cascade's threshold on another split first, as
``detection.evaluate --conf-from`` does (:func:`pick_conf`): the detector alone
runs on that split's photos, keeping boxes down to :data:`PICK_FLOOR`, and the
threshold with the best defect-type accuracy there
(:func:`detection.image_level.tuned_conf`) becomes ``--conf`` for the scored
split; with ``--anomaly-run`` that accuracy is the detector's alone (PatchCore's regions
call photos in the scored split only; the report says so). The report records the picked
value; pass it as ``--conf`` to ``inspection.predict`` to run new photos at the same
operating point.

A ``decoder.pt``'s colour head refines the cascade's masks and the oracle's alike
(``--no-colour-head``: neither); the report's settings record it (``colour_head``). Its
colour prompt, if any, is every box's mask prompt, the cascade's and the oracle's
(``--no-colour-prompt``: neither; ``colour_prompt`` in the settings).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch

from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path
from common.data_sets import data_set_folder
from common.errors import UserError, few
from common.folders import (
    build_folder,
    check_cache_outside,
    check_not_inside,
    check_output_folder,
    earlier_run_note,
    output_name,
)
from common.image_files import decode_image_file
from common.io import atomic_write, read_json_object
from common.tables import fmt
from common.trained_images import trained_overlap_warning
from detection.image_level import (
    PICK_WARNING_ADVICE,
    conf_flags_all,
    conf_ties_warning,
    image_labels,
    picked_on_train_warning,
    predict_hint,
    tuned_conf,
)
from detection.weights import load_detector, print_tiling_note, training_run, weights_file
from inspection.anomaly_regions import ANOMALY
from inspection.checkpoints import check_sam_checkpoint, load_sam_checkpoint
from inspection.inspector import Inspector
from inspection.mask_tree import category_name
from inspection.options import (
    CascadeOptions,
    add_model_arguments,
    add_running_arguments,
    build_inspector,
    check_cascade,
    colour_head_for,
    colour_prompt_for,
    load_regions,
    run_settings,
)
from inspection.outputs import (
    IMAGES_FILE,
    MASKS_DIR,
    OVERLAY_QUALITY,
    OVERLAYS_DIR,
    PREDICTIONS_FILE,
    RANK_BY,
    PredictionWriter,
    encode_image,
)
from inspection.overlays import draw_overlay
from inspection.photos import Photo, check_photos
from inspection.report import (
    METRICS_FILE,
    REPORT_FILES,
    GalleryItem,
    anomaly_note,
    conf_ties,
    dropped_note,
    write_report,
)
from inspection.result import Inspection
from inspection.scoring import ImageRecord, SplitScorer, TrueInstances, oracle_inspection
from segmentation.data import SegmentationImage, SegmentationSplit, check_image_sizes, load_split
from segmentation.embeddings import noting_interrupts
from segmentation.evaluate import resolve_device
from segmentation.finetuned import greyscale_warning

#: Width of a gallery thumbnail in pixels, and how many worst and best images the gallery shows.
THUMBNAIL_WIDTH = 320
GALLERY_SIZE = 6
#: Ground-truth outlines in the gallery (BGR).
TRUTH_COLOR = (60, 200, 60)
#: Lowest box score the detector keeps while ``--conf-from`` picks the threshold, and for each photo's image
#: score (ultralytics' val default, as ``detection.evaluate``'s).
PICK_FLOOR = 0.001
#: The printed summary's word on the image AUROC, on a line of its own: it read "defect-type accuracy X  image
#: AUROC Y  at conf Z", as if the AUROC were taken at that conf; it is not (:data:`PICK_FLOOR`).
IMAGE_AUROC_NOTE = f"(top box score down to {PICK_FLOOR:g}, whatever the conf)"
#: The note with ``--anomaly-run``: a photo with an anomaly region scores at least the conf (the region's box
#: score), so that AUROC moves with it (``inspection.report.IMAGE_AUROC_REGIONS_ROW``); it read as above.
IMAGE_AUROC_REGIONS_NOTE = (
    f"(top box score down to {PICK_FLOOR:g}, or the conf on a photo with an anomaly region: "
    "moves with --conf)"
)

#: What ``--out`` holds; ``--overwrite`` replaces no folder holding anything else.
EVALUATION_NAMES = (*REPORT_FILES, PREDICTIONS_FILE, IMAGES_FILE, MASKS_DIR, OVERLAYS_DIR)


@dataclass(frozen=True, kw_only=True)
class EvaluateOptions(CascadeOptions):
    """Every option of ``python -m inspection.evaluate``, one to one (see ``--help``)."""

    data: Path
    out: Path
    split: str = "test"
    conf_from: str | None = None
    rank_by: str = "box"
    gallery: int = GALLERY_SIZE
    overlays: int = -1
    overwrite: bool = False


def check_classes(split: SegmentationSplit, class_names: Sequence[str]) -> None:
    """The detector's classes must be the split's categories in id order (category id = class id + 1)."""
    if sorted(split.categories) != list(range(1, len(split.categories) + 1)):  # class id = category id - 1
        raise UserError(
            f"the categories of {split.annotation_file} are numbered {sorted(split.categories)}, not 1..N "
            "as the converters number them: convert the data set with converters.mvtec2coco"
        )
    expected = [split.categories[key] for key in sorted(split.categories)]
    if list(class_names) != expected:
        shown = f"[{few([repr(n) for n in class_names], 8)}]"  # COCO's 80 would fill the screen
        raise UserError(
            f"the detector's classes {shown} are not the categories {expected} of "
            f"{split.annotation_file}: evaluate a detector trained on this data set"
        )


def true_instances(image: SegmentationImage) -> TrueInstances:
    """The image's ground truth; class id = COCO category id - 1."""
    classes = np.array([a["category_id"] - 1 for a in image.annotations], dtype=int)
    return TrueInstances(masks=image.instance_masks(), boxes=image.boxes(), classes=classes)


def truth_overlay(photo: np.ndarray, inspection: Inspection, truth: np.ndarray) -> np.ndarray:
    """The cascade's overlay (:func:`~inspection.overlays.draw_overlay`), the ground truth outlined green."""
    drawn = draw_overlay(photo, inspection)
    offset = drawn.shape[0] - photo.shape[0]  # the verdict bar sits above the photo
    contours, _ = cv2.findContours(truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, round(photo.shape[1] / 320))
    cv2.drawContours(drawn, [c + np.array([0, offset]) for c in contours], -1, TRUTH_COLOR, thickness)
    return drawn


def thumbnail(drawn: np.ndarray) -> bytes:
    """A small JPEG of an overlay, :data:`THUMBNAIL_WIDTH` wide, for the report's gallery."""
    height = max(1, round(drawn.shape[0] * THUMBNAIL_WIDTH / drawn.shape[1]))
    small = cv2.resize(drawn, (THUMBNAIL_WIDTH, height), interpolation=cv2.INTER_AREA)
    return encode_image(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])


def caption(record: ImageRecord) -> str:
    """A gallery image's line; on a defect image the oracle's IoU beside the cascade's says who lost it.
    The score says whose it is: the top box's (below the threshold on a photo called good), or, on a photo
    called ``anomaly`` (``--anomaly-run``), its anomaly region's."""
    oracle = f" (from the true boxes {record.oracle_iou:.2f})" if record.n_true else ""
    whose = "anomaly region" if record.verdict == ANOMALY else "top box"
    return (
        f"{record.file_name}: true {record.truth}, called {record.verdict} ({whose} {record.score:.2f}); "
        f"IoU {record.iou:.2f}{oracle}; {record.n_found} found, {record.n_true} true"
    )


def gallery_items(items: Sequence[tuple[ImageRecord, bytes]], size: int) -> list[tuple[ImageRecord, bytes]]:
    """The ``size`` worst and the ``size`` best of ``items`` (record, thumbnail) by per-image IoU,
    worst first."""
    ordered = sorted(items, key=lambda item: (item[0].iou, item[0].file_name))
    if size <= 0:
        return []  # (ordered[-0:] would be every item)
    return ordered if len(ordered) <= 2 * size else ordered[:size] + ordered[-size:]


def inspect_image(
    inspector: Inspector, image: SegmentationImage, *, source: Path
) -> tuple[Inspection, TrueInstances, Inspection]:
    """The cascade's result, the ground truth, and SAM prompted with the ground-truth boxes.

    The detector runs once at :data:`PICK_FLOOR`: the cascade goes on with its boxes above ``conf``, the
    same as a pass at ``conf`` gives (:meth:`~inspection.inspector.Inspector.detect_scored`), and the photo's
    image score is its top box whatever the threshold, so the image AUROC is ``detection.evaluate``'s
    (it was the top box at or above ``conf``, 0 without one, and moved with ``--conf``). With
    ``--anomaly-run`` a photo with a region scores at least ``conf``, the region's box score, and the AUROC
    moves with ``--conf`` again (:data:`IMAGE_AUROC_REGIONS_NOTE`): PatchCore's map values and the box
    scores share no scale for a rule that combines them.
    """
    inspection = inspector(image.path, score_floor=PICK_FLOOR)
    check_image_sizes([image], [(inspection.height, inspection.width)], source=source)
    truth = true_instances(image)
    # The inspector keeps the photo's embedding (and its crops'), so the oracle reuses it. Its boxes are
    # the truth's, not the cascade's, so their decodes are its own; its probabilities are none: only
    # the cascade's anomaly map is scored (2 bytes a pixel a box, and a sigmoid, saved).
    embedding = inspector.embedding(image.path) if len(truth.boxes) else None
    masks, scores, _ = (
        inspector.segment(embedding, truth.boxes, keep_probs=False)
        if embedding is not None
        else (truth.masks, np.zeros(0, np.float32), None)
    )
    if embedding is not None:
        masks = inspector.without_specks(masks)  # as the cascade's own masks
    return inspection, truth, oracle_inspection(inspection, truth, masks, scores)


def evaluate_split(
    inspector: Inspector,
    split: SegmentationSplit,
    writer: PredictionWriter | None = None,
    *,
    gallery: int = GALLERY_SIZE,
    overlay_dir: Path | None = None,
    overlays: int = -1,
    rank_by: str = "box",
    progress: bool = True,
) -> tuple[dict, list[GalleryItem]]:
    """Scores every image of ``split`` (see the module docstring); returns the figures and the gallery.

    Args:
        inspector: the cascade; it must keep mask probabilities (the anomaly maps are scored).
        split: the converters' split.
        writer: where the cascade's own outputs go, if anywhere.
        gallery: worst and best images shown (a small JPEG per image is kept until the end).
        overlay_dir: where each photo's full-size overlay with the ground truth goes
            (``<name>.jpg``; its path relative to the folder above is the photo's ``overlay`` in
            the figures' ``photos``, the gallery's link); None: nowhere.
        overlays: how many photos get one there: the first ones of the split, and every photo
            the report shows (the gallery's, those called wrong); -1: all, 0: none.
        rank_by: the ranking of the headline mask AP (:class:`~inspection.scoring.SplitScorer`).
    """
    from tqdm import tqdm

    check_classes(split, inspector.detector_class_names)
    if not inspector.keep_probs:
        raise ValueError("the evaluation scores anomaly maps: build the Inspector with keep_probs=True")
    scorer = SplitScorer(
        ground_truth=read_json_object(split.annotation_file, what="COCO file"),
        names=list(inspector.class_names),
        conf=inspector.conf,
        rank_by=rank_by,
        truth_names=list(inspector.detector_class_names),
    )
    thumbs, files = [], OverlayFiles(overlay_dir, overlays if overlay_dir is not None else 0, gallery)
    for image in tqdm(split.images, desc="evaluating", unit="img", disable=not progress):
        relative = image.path.relative_to(split.annotation_file.parent.parent / "images").as_posix()
        photo = Photo(image.path, relative, output_name(relative), image.image_id)
        inspection, truth, oracle = inspect_image(inspector, image, source=split.annotation_file)
        record = scorer.add(photo, inspection, truth, oracle)
        if writer is not None:
            writer.add(inspection, photo)
        pixels = decode_image_file(image.path, cv2.IMREAD_COLOR)
        drawn = truth_overlay(pixels, inspection, truth.union(*pixels.shape[:2]))
        thumbs.append((record, thumbnail(drawn)))
        files.add(photo.name, thumbs[-1], drawn)
        # unbound before the next image is inspected: bound, this one's full-size masks, probabilities,
        # pixels and overlay were held beside the next one's
        del inspection, truth, oracle, pixels, drawn
    figures = scorer.finish(progress=progress)
    return figures, linked_gallery(figures, thumbs, files, gallery)


def linked_gallery(
    figures: dict, thumbs: list[tuple[ImageRecord, bytes]], files: OverlayFiles, gallery: int
) -> list[GalleryItem]:
    """The report's worst and best images among ``thumbs``, each linked to its overlay, once the overlays
    are written; sets each photo's ``overlay`` in ``figures``."""
    shown = gallery_items(thumbs, gallery)
    links = files.finish(shown)
    for entry in figures["photos"]:
        entry["overlay"] = links.get(entry["file_name"])
    groups = ["worst"] * (len(shown) // 2) + ["best"] * (len(shown) // 2) if len(thumbs) > len(shown) else []
    return [
        GalleryItem(caption(record), small, links.get(record.file_name), group)
        for (record, small), group in zip(shown, groups or [""] * len(shown), strict=True)
    ]


class OverlayFiles:
    """The full-size overlays ``--overlays count`` writes to ``folder``: every photo's (-1), none (0),
    or the first ``count`` photos' and those of every photo the report shows (called wrong: written at
    once; in the gallery: held as JPEG bytes while the photo is among the worst or best so far, written
    at the end), so that no file is written only to be deleted."""

    def __init__(self, folder: Path | None, count: int, gallery: int) -> None:
        self.folder, self.count, self.gallery = folder, count, gallery
        self.links: dict[str, str] = {}  # file name -> path relative to the evaluation folder
        self.seen = 0
        self.leading: list[tuple[ImageRecord, bytes]] = []  # the gallery of the photos so far
        self.held: dict[str, tuple[str, bytes]] = {}  # file name -> (output name, JPEG)

    def add(self, name: str, item: tuple[ImageRecord, bytes], drawn: np.ndarray) -> None:
        """One photo's overlay (``item``: its record and thumbnail), written, held or dropped."""
        self.seen += 1
        record = item[0]
        kept = self.count < 0 or self.seen <= self.count or record.verdict != record.truth
        if self.count == 0 or (not kept and not self.may_be_shown(item)):
            return
        jpeg = encode_image(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, OVERLAY_QUALITY])
        if kept:
            self.write(record.file_name, name, jpeg)
        else:
            self.held[record.file_name] = (name, jpeg)

    def may_be_shown(self, item: tuple[ImageRecord, bytes]) -> bool:
        """Whether the photo is among the worst or best so far; drops held photos no longer among them.
        (IoU, file name) orders the photos totally, so a photo once out of them stays out."""
        self.leading = gallery_items([*self.leading, item], self.gallery)
        leading = {record.file_name for record, _ in self.leading}
        self.held = {key: value for key, value in self.held.items() if key in leading}
        return item[0].file_name in leading

    def finish(self, shown: Sequence[tuple[ImageRecord, bytes]]) -> dict[str, str]:
        """Writes the held overlays of the photos in the gallery; returns every photo's link."""
        for record, _ in shown:
            if record.file_name in self.held:
                self.write(record.file_name, *self.held.pop(record.file_name))
        return self.links

    def write(self, file_name: str, name: str, jpeg: bytes) -> None:
        atomic_write(self.folder / f"{name}.jpg", jpeg)
        self.links[file_name] = f"{self.folder.name}/{name}.jpg"


class ConfPick(NamedTuple):
    """:func:`pick_conf`'s answer."""

    conf: float
    accuracy: float  # the defect-type accuracy at ``conf`` on the split picked on
    warning: str | None  # the ``warning:`` line printed, None when there was none
    picked: bool  # False: nothing to pick from (no box on any photo), ``--conf`` kept as given


def pick_conf(
    inspector: Inspector, split: SegmentationSplit, *, default: float, progress: bool = True
) -> ConfPick:
    """The threshold that calls ``split``'s photos best, its defect-type accuracy there, and the
    ``warning:`` line printed when it is no threshold to recommend (:class:`ConfPick`).

    Only the detector runs (no SAM), keeping boxes down to :data:`PICK_FLOOR`;
    :func:`~detection.image_level.tuned_conf` picks among the thresholds that
    change a call, ties going to the one nearest ``default``. When no photo has a
    box every threshold ties: ``default`` is kept, not picked, and the warning says
    so alone (a 'picked on ... images, none of them good' warning would name a pick
    that was not made). A pick below the floor is the floor: boxes under it were never seen.

    Raises:
        UserError: the split has no photos, or a photo cannot be read.
    """
    from tqdm import tqdm

    if not split.images:
        raise UserError(f"--conf-from {split.name}: {split.annotation_file} has no images to pick it on")
    detections = {}
    for image in tqdm(split.images, desc=f"picking conf on {split.name}", unit="img", disable=not progress):
        pixels = decode_image_file(image.path, cv2.IMREAD_COLOR)
        detections[image.path.name] = inspector.detect(pixels, conf=PICK_FLOOR)
    truth = image_labels(read_json_object(split.annotation_file, what="COCO file"))
    conf, accuracy = tuned_conf(truth, detections, inspector.class_names, default=default)
    picked = any(len(found.scores) for found in detections.values())
    if picked:
        conf = max(conf, PICK_FLOOR)
        warning = pick_warning(split.name, truth, detections, inspector.class_names, conf, default)
    else:  # nothing to pick from: --conf is kept as given, and its accuracy is the share of good photos
        warning = (
            f"warning: on the {split.name} split the detector scores no box {PICK_FLOOR:g} or more on any "
            f"photo: no threshold to pick, --conf {conf:g} kept (an undertrained detector?)"
        )
    if warning:
        print(warning, file=sys.stderr)
    return ConfPick(conf, accuracy, warning, picked)


def pick_warning(
    split: str, truth: dict[str, str], detections: dict, names: Sequence[str], conf: float, default: float
) -> str | None:
    """The ``warning:`` line on a ``conf`` picked on ``split`` that is no threshold to use
    (:func:`~detection.image_level.conf_flags_all`, or :func:`~detection.image_level.conf_ties_warning`
    where every threshold ties there and ``conf`` is only ``default``'s neighbour, with its advice); None
    when it is one."""
    if not (flagged := conf_flags_all(truth, detections, names, conf)):
        if ties := conf_ties_warning(truth, detections, names, conf, default):
            return f"warning: on the {split} split, {ties}; {PICK_WARNING_ADVICE}"
        return None
    # a pick on good photos alone is high, not low: it sends few boxes to SAM and misses defects
    sam = "" if all(label == "good" for label in truth.values()) else ": every box down to it goes to SAM"
    return f"warning: on the {split} split, {flagged}{sam}; {PICK_WARNING_ADVICE}"


def check_options(options: EvaluateOptions) -> None:
    """Refuses option values out of range, and an ``--out`` the run may not write, before loading."""
    check_cascade(options)
    if options.rank_by not in RANK_BY:
        raise UserError(f"--rank-by must be one of {', '.join(RANK_BY)}, got {options.rank_by!r}")
    if options.gallery < 0:
        raise UserError(f"--gallery must be >= 0, got {options.gallery}")
    if options.overlays < -1:
        raise UserError(f"--overlays must be -1 (all), 0 (none) or a count, got {options.overlays}")
    if options.conf_from is not None and options.conf_from == options.split:
        raise UserError(
            f"--conf-from {options.conf_from}: pick the threshold on another split than the one scored"
        )
    # first: a folder of the data set (its images/) was told to 'move those out', its own photos
    check_not_inside(options.out, options.data)
    if options.cache_dir is not None and not options.no_cache:
        check_cache_outside(options.cache_dir, options.out)  # made at the first photo: the report was refused
    check_output_folder(
        Path(options.out).resolve(), overwrite=options.overwrite, holds=EVALUATION_NAMES, marker=METRICS_FILE
    )
    if warning := picked_on_train_warning(options.conf_from):
        print(warning, file=sys.stderr, flush=True)


def load_inspector(
    options: EvaluateOptions, device: torch.device, split: SegmentationSplit, largest_side: int | None = None
) -> tuple[Inspector, dict]:
    """Loads both models, cheapest checks first; returns the inspector and the resolved settings.

    Args:
        split: the scored split: the detector's classes are checked against it, and its photos
            against ``--anomaly-run``'s size, before SAM loads.
        largest_side: the longest side in px of every photo the detector runs on (:func:`longest_side`);
            None: not known (:func:`detection.weights.tiling_note`).
    """
    photos = [image.path for image in split.images]
    weights = weights_file(options.detector)
    checkpoint = check_sam_checkpoint(
        options.sam, model=options.model, base_checkpoint=options.base_checkpoint
    )
    colour_head = colour_head_for(options, checkpoint)
    colour_prompt = colour_prompt_for(options, checkpoint)
    if warning := greyscale_warning(photos, colour_head=colour_head, colour_prompt=colour_prompt):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    detector = load_detector(weights)
    check_classes(split, [str(name) for _, name in sorted(detector.names.items())])
    print_tiling_note(detector, options.tile, weights, largest_side)
    trained = ((training_run(detector, weights), "the detector"), (_sam_run(options.sam), "SAM's decoder"))
    for folder, model in trained:
        if warning := trained_overlap_warning(
            folder, photos, options.split, model=model, progress=options.progress
        ):
            print(warning, file=sys.stderr, flush=True)
    regions = load_regions(options, photos)
    if regions is not None:
        regions.check_not_fit_on(options.data, options.split, photos, progress=options.progress)
    sam = load_sam_checkpoint(checkpoint, device=device)
    resolved = options.resolved(model=checkpoint.model, device=str(device))
    inspector = build_inspector(
        resolved,
        detector,
        sam,
        keep_probs=True,
        colour_head=colour_head,
        colour_prompt=colour_prompt,
        regions=regions,
    )
    return inspector, run_settings(resolved, inspector)


def _sam_run(sam: str | Path | None) -> Path | None:
    """The run folder a ``decoder.pt`` (or exported file) lies in; None for zero-shot SAM."""
    return Path(sam).parent if sam else None


def checked_splits(options: EvaluateOptions) -> tuple[SegmentationSplit, SegmentationSplit | None]:
    """The scored split and the ``--conf-from`` one (None without it), every photo of both decoded once
    (:func:`~inspection.photos.check_photos`), before the models load.

    Raises:
        UserError: what stops either split (:func:`_checked_split`) in one line; both: the scored split's,
            then ``; the --conf-from val split: ...`` (its ``--conf-from val:`` dropped there, named once).
            Raised one after the other, the second split's unreadable photos were learned of only once the
            first's were fixed and the run made again.
    """
    split = _checked_split(options.data, options.split, progress=options.progress, scored=True)
    picking = (
        _checked_split(options.data, options.conf_from, progress=options.progress)
        if options.conf_from
        else None
    )
    if isinstance(split, UserError) and isinstance(picking, UserError):
        # the --conf-from split's own line names it ('--conf-from val: ... has no images'): named once
        alone = str(picking).removeprefix(f"--conf-from {options.conf_from}: ")
        raise UserError(f"{split}; the --conf-from {options.conf_from} split: {alone}")
    if isinstance(split, UserError):
        raise split
    if isinstance(picking, UserError):
        raise picking
    return split, picking


def longest_side(*splits: SegmentationSplit | None) -> int:
    """The longest side in px of the photos of ``splits`` (None: none), as their COCO entries give it: the
    detector runs on every one of them, and :func:`~segmentation.data.load_split` checked each entry's size
    against its file."""
    return max(
        (max(image.width, image.height) for split in splits if split for image in split.images), default=0
    )


def _checked_split(
    data: Path, name: str, *, progress: bool, scored: bool = False
) -> SegmentationSplit | UserError:
    """The split read (:func:`~segmentation.data.load_split`, ``keep_unread``: its photos that do not read
    are named with those the decode pass finds) and its photos decoded, or the error that stopped it, also
    when it has no images (the ``scored`` split, or the ``--conf-from`` one: :func:`pick_conf` refused it
    once both models had loaded)."""
    try:
        split = load_split(data, name, keep_unread=True)
        if not split.images:
            raise UserError(
                f"the {name} split of {data} has no images: nothing to score"
                if scored
                else f"--conf-from {name}: {split.annotation_file} has no images to pick it on"
            )
        check_photos(
            split.images, progress=progress, desc=f"checking {name} photos", labelled=True,
            unread=split.unread,
        )  # fmt: skip
    except UserError as error:
        return error
    return split


def evaluate(options: EvaluateOptions) -> dict:
    """The command's work: checks (every photo decoded once), loads, scores the split into ``options.out``.

    Returns:
        The figures (:mod:`inspection.scoring`).
    """
    options = replace(options, data=data_set_folder(options.data))  # as recorded when the folder is passed
    check_options(options)
    # a Ctrl-C said 'interrupted' alone: an earlier evaluation left in --out read as this one
    with earlier_run_note(Path(options.out), until="the report is complete"):
        device = resolve_device(options.device)
        split, picking = checked_splits(options)
        inspector, settings = load_inspector(options, device, split, longest_side(split, picking))
        with noting_interrupts(inspector.cache):  # the photos' embeddings so far are kept for a rerun
            return score(options, inspector, settings, split, picking)


def score(
    options: EvaluateOptions,
    inspector: Inspector,
    settings: dict,
    split: SegmentationSplit,
    picking: SegmentationSplit | None,
) -> dict:
    """:func:`evaluate`'s work once the models are loaded: picks ``conf`` on ``picking`` if given, then
    scores ``split`` into ``options.out``; returns the figures."""
    if picking is not None:
        conf, accuracy, warning, picked = pick_conf(
            inspector, picking, default=options.conf, progress=options.progress
        )
        inspector.set_conf(conf)
        settings.update(conf=float(f"{conf:.6g}"), conf_picked_accuracy=round(accuracy, 4))  # as printed
        settings.update(conf_pick_warning=warning, conf_picked=picked)  # False: --conf kept, nothing picked
    start = time.perf_counter()
    figures: dict = {}

    def write(folder: Path) -> None:
        writer = PredictionWriter(
            folder, class_names=inspector.class_names, rank_by=options.rank_by, overlays=0,
            category=category_name(Path(options.out).name), speck_cells=inspector.speck_cells,
            info={"description": "inspection.evaluate", "settings": settings},
        )  # fmt: skip
        with writer:
            metrics, gallery = evaluate_split(
                inspector, split, writer, gallery=options.gallery, overlay_dir=folder / OVERLAYS_DIR,
                overlays=options.overlays, rank_by=options.rank_by, progress=options.progress,
            )  # fmt: skip
        settings["seconds"] = round(time.perf_counter() - start, 1)
        settings["duplicate_masks_dropped"] = inspector.duplicates_dropped  # by --mask-iou
        if settings.get("anomaly_regions"):  # the summary line says how many detections they are
            settings["anomaly_detections"] = writer.per_class[ANOMALY]
        write_report(folder, metrics, settings, gallery)
        figures.update(metrics, settings=settings)  # as metrics.json holds them

    build_folder(Path(options.out).resolve(), write, overwrite=options.overwrite)
    return figures


def detection_flags(options: CascadeOptions) -> str:
    """The detection flags given away from their defaults, which ``inspection.predict`` needs as well to
    find the same boxes at a picked ``--conf`` (a tiled detector's scores are the tiles')."""
    defaults = CascadeOptions(detector=options.detector)
    flags = [
        f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"
        for flag, value, default in (
            ("--imgsz", options.imgsz, defaults.imgsz),
            ("--tile", options.tile, defaults.tile),
            ("--tile-overlap", options.tile_overlap, defaults.tile_overlap),
            ("--iou", options.iou, defaults.iou),
            ("--max-det", options.max_det, defaults.max_det),
        )
        if value != default
    ]
    return "".join(f" {flag}" for flag in flags)


def summary(figures: dict, out: Path, conf_from: str | None = None, *, flags: str = "") -> str:
    """The lines printed after an evaluation (``figures['settings']``, where given, adds the mask NMS).

    Args:
        flags: the detection flags that go with a picked ``--conf`` (:func:`detection_flags`).
    """
    rank = figures["rank_by"]
    defect = figures["per_image"]["defect"]
    settings = figures.get("settings", {})
    picked = picked_note(figures["image_level"]["conf"], settings, conf_from, flags) if conf_from else ""
    return "\n".join(
        [
            f"{figures['images']} images ({figures['defect_images']} with defects), "
            f"{figures['instances']} ground-truth instances, {figures['detections']} detections"
            f"{dropped_note(settings)}{anomaly_note(settings)}",
            f"  box AP50 {fmt(figures['box']['AP50'])}  "
            f"mask AP end to end {fmt(figures['mask'][rank]['AP'])} "
            f"(ranked by {rank}; any defect type {fmt(figures['mask_any_class'][rank]['AP'])}) "
            f"vs oracle {fmt(figures['mask_oracle']['AP'])}",
            f"  per-image IoU {fmt(figures['per_image']['all']['iou'])} (defect images {fmt(defect['iou'])}, "
            f"oracle {fmt(defect['oracle_iou'])}; boundary IoU {fmt(defect['boundary_iou'])})",
            f"  pixel AUROC {fmt(figures['pixel']['auroc'])}  AUPRO {fmt(figures['pixel']['aupro'])}",
            f"  defect-type accuracy {fmt(figures['image_level']['accuracy'])} "
            f"at conf {fmt(figures['image_level']['conf'])}{picked}",
            f"  image AUROC {fmt(figures['image_level']['auroc'])} "
            f"{IMAGE_AUROC_REGIONS_NOTE if settings.get('anomaly_regions') else IMAGE_AUROC_NOTE}",
            f"report: {out / 'report.html'}",
        ]
        + overlay_line(figures, out)
    )


def picked_note(conf: float, settings: dict, conf_from: str, flags: str) -> str:
    """The summary's note on a ``--conf`` picked on ``conf_from``: its defect-type accuracy there (the
    detector's alone with ``--anomaly-run``: the pick runs no PatchCore), and what to pass to
    ``inspection.predict``, or the warning printed above instead; ``kept`` instead of ``picked`` where the
    detector boxed nothing there (``settings['conf_picked']`` False: ``--conf`` kept as given), ``not
    picked`` where every threshold ties there (:func:`~inspection.report.conf_ties`)."""
    picked = settings.get("conf_picked", True)  # metrics.json before it was recorded: picked
    where = f"picked on {conf_from}" if picked else f"kept: nothing to pick it from on {conf_from}"
    if picked and conf_ties(settings):  # the candidate nearest --conf: no pick
        where = f"not picked: every threshold ties on {conf_from}"
    if (accuracy := settings.get("conf_picked_accuracy")) is not None:
        alone = ", the detector's alone" if settings.get("anomaly_regions") else ""
        where += f", accuracy {fmt(accuracy)} there{alone}"
    if picked_on_train_warning(conf_from):  # the detector's own photos: no advice for new ones
        return f" ({where}, warned of above: pick it on val)"
    if not picked:  # the detector boxes nothing there: another --conf would change nothing either
        return f" ({where}, warned of above)"
    if settings.get("conf_pick_warning"):  # the pick is no advice
        return f" ({where}, warned of above: choose inspection.predict's --conf yourself)"
    return f" ({where}: {predict_hint(conf, 'inspection.predict', flags)})"


def overlay_line(figures: dict, out: Path) -> list[str]:
    """Where the full-size overlays went, if any were drawn."""
    drawn = sum(photo.get("overlay") is not None for photo in figures.get("photos", ()))
    if not drawn:
        return []
    return [
        f"overlays: {out / OVERLAYS_DIR} ({drawn} of {len(figures['photos'])} photos, ground truth in green)"
    ]


def build_parser() -> argparse.ArgumentParser:
    """The command line; its destinations are :class:`EvaluateOptions`' fields."""
    parser = OneLineParser(
        prog=command_name("inspection.evaluate"),
        formatter_class=DefaultsHelpFormatter,
        description="Score the cascade (detector -> SAM) end to end on a converted split, beside SAM from "
        "ground-truth boxes, in one report (report.html, report.md, metrics.json).",
    )
    add_model_arguments(parser)
    data = parser.add_argument_group("data and report")
    data.add_argument(
        "--data",
        type=user_path,
        required=True,
        help="data set folder written by the converters, or its data.yaml",
    )
    data.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to score")
    data.add_argument(
        "--conf-from",
        choices=("train", "val", "test"),
        help="pick --conf on this split first: the threshold with the best defect-type accuracy there, "
        "the detector's alone (--conf breaks ties; no --anomaly-run regions); default: --conf as given",
    )
    data.add_argument(
        "--out", type=user_path, required=True, help="report folder (refused if it exists, not empty)"
    )
    data.add_argument("--overwrite", action="store_true", help="replace an existing --out once done")
    data.add_argument(
        "--rank-by",
        choices=RANK_BY,
        default="box",
        help="score written in predictions.json, and the ranking of the headline mask AP (the report "
        "gives all three)",
    )
    data.add_argument(
        "--gallery", type=int, default=GALLERY_SIZE, help="worst and best images shown in the report"
    )
    data.add_argument(
        "--overlays",
        type=int,
        default=-1,
        help="full-size overlays with the ground truth outlined, in overlays/: the first N photos "
        "(0 none, -1 all); the gallery and the list of photos called wrong link to them",
    )
    add_running_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m inspection.evaluate``; bad input is one ``error:`` line and exit code 2."""

    def run() -> None:
        options = EvaluateOptions(**vars(build_parser().parse_args(argv)))
        figures = evaluate(options)
        print(summary(figures, Path(options.out), options.conf_from, flags=detection_flags(options)))

    return exit_code(run)


if __name__ == "__main__":
    raise SystemExit(main())
