"""``python -m inspection.predict``: new photos -> detector boxes -> fine-tuned SAM masks -> verdicts.

    python -m inspection.predict --detector runs/detect/RUN/weights/best.pt \\
        --sam runs/sam/RUN/decoder.pt --source photos/ --out runs/inspect/lot_7

``--source`` is a folder (searched recursively), one image, or a quoted glob
pattern (``"photos/**/*.png"``). Every photo goes through
:class:`~inspection.inspector.Inspector`; the outputs (``predictions.json``,
``images.json``, the masks tree, overlays, anomaly maps) are described in
:mod:`inspection.outputs`, and ``args.yaml`` records the resolved options.

Bad input is one ``error:`` line and exit code 2 before anything heavy runs,
cheapest check first: option values, the two checkpoint files (a ``decoder.pt``
of another SAM than ``--model`` included), the photos found, the output folder,
the detector's weights, then every photo decoded once (a corrupt one is named);
only then are SAM's weights loaded.

The output folder is built hidden beside ``--out`` and renamed into place when
complete (as the converters do), so a failed or interrupted run leaves nothing
half-written. An existing ``--out`` (not an empty one) is refused unless ``--overwrite`` is given,
rather than numbered like ultralytics' runs (``lot_72``): the masks tree and the
JSON files are read by later commands, which need a name that does not move.

A ``decoder.pt`` that carries a colour head (``colour_head: true`` in training) refines
the masks with it unless ``--no-colour-head``; ``args.yaml`` records the head applied
(``colour_head``, or null). One that carries a colour prompt (``colour_prompt: true``) gives
every box its colour-distance map as SAM's mask prompt unless ``--no-colour-prompt``, recorded
as ``colour_prompt``; it is refused with ``--crop-fraction``. ``--tta`` averages
SAM's logits over the photo and its three flips (four encoder runs per photo with boxes, each
view cached; a colour prompt's maps drawn on each view).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote

from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path
from common.config import yaml_text
from common.errors import UserError
from common.folders import (
    build_folder,
    check_cache_outside,
    check_output_folder,
    earlier_run_note,
)
from common.io import atomic_write, expand_user, recorded_path
from common.out_folders import check_holds_no_photos, check_out_of_photos
from converters.value_masks import MASK_VALUES_FILE
from detection.weights import check_trained_on_defects, load_detector, print_tiling_note, weights_file
from inspection.anomaly_regions import ANOMALY
from inspection.checkpoints import check_sam_checkpoint, load_sam_checkpoint
from inspection.inspector import Inspector
from inspection.mask_tree import LINK_MODES, category_name
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
    ANOMALY_MAPS_DIR,
    IMAGES_FILE,
    MASKS_DIR,
    OVERLAYS_DIR,
    PREDICTIONS_FILE,
    RANK_BY,
    PredictionWriter,
    written_images,
)
from inspection.photos import Photo, check_photos, find_photos
from inspection.report import dropped_note, regions_note
from segmentation.embeddings import noting_interrupts
from segmentation.evaluate import resolve_device
from segmentation.finetuned import greyscale_warning

#: The resolved options, written into ``--out``.
ARGS_FILE = "args.yaml"
#: What ``--out`` holds; ``--overwrite`` replaces no folder holding anything else.
OUTPUT_NAMES = (ARGS_FILE, PREDICTIONS_FILE, IMAGES_FILE, MASKS_DIR, OVERLAYS_DIR, ANOMALY_MAPS_DIR)


@dataclass(frozen=True, kw_only=True)
class InspectOptions(CascadeOptions):
    """Every option of ``python -m inspection.predict``, one to one (see ``--help``)."""

    source: str
    out: Path
    anomaly_maps: bool = False
    overlays: int = 50
    link: str = "symlink"
    rank_by: str = "box"
    overwrite: bool = False

    def record(self) -> dict:
        """As :meth:`CascadeOptions.record`, ``--source`` (a path or a pattern, a ``str``) absolute too, a
        quoted ``~/photos`` the home folder's it read: ``images.json``'s ``file_name`` is relative to it."""
        return {**super().record(), "source": recorded_path(expand_user(self.source))}


@dataclass
class InspectionRun:
    """What a run wrote, for the summary and for tests."""

    out: Path
    category_dir: Path
    photos: int
    verdicts: dict[str, int] = field(default_factory=dict)
    instances: int = 0
    seconds: float = 0.0
    overlays: int = 0
    anomaly_maps: bool = False
    rank_by: str = "box"
    duplicates: int = 0
    mask_iou: float = 1.0
    #: ``(instances of PatchCore's regions, the map threshold)`` with ``--anomaly-run``, else None
    anomaly: tuple[int, float] | None = None

    @classmethod
    def planned(cls, options: InspectOptions, *, photos: int) -> InspectionRun:
        """The run ``options`` ask for on ``photos`` photos, before any is inspected (no counts yet)."""
        out = Path(options.out)
        return cls(
            out=out,
            category_dir=out / MASKS_DIR / category_name(out.name),
            photos=photos,
            anomaly_maps=options.anomaly_maps,
            rank_by=options.rank_by,
            overlays=photos if options.overlays < 0 else min(options.overlays, photos),
        )

    def convert_hint(self) -> str:
        """The converters' command for the masks tree, or why there is none.

        A tree of good photos only is refused by the converters (no defect image): the command was
        printed for it all the same, and pasted, it stopped with an error.
        """
        if not self.instances:
            return "every photo called good: no defect for converters.mvtec2yolo to convert"
        masks = self.out / MASKS_DIR
        values = self.category_dir / MASK_VALUES_FILE
        return (
            f"python -m converters.mvtec2yolo --root {quote(str(masks))} --mask-values {quote(str(values))} "
            "--out DATASET --coco"
        )

    def anomaly_note(self) -> str:
        """How many instances ``--anomaly-run``'s regions gave (the summary said nothing of them)."""
        return "" if self.anomaly is None else regions_note(*self.anomaly)

    def describe(self) -> str:
        """The lines printed after a run: counts, speed, and where each output is."""
        calls = ", ".join(
            f"{verdict} {n}" for verdict, n in sorted(self.verdicts.items(), key=lambda x: -x[1])
        )
        per_photo = self.seconds / max(self.photos, 1)
        lines = [
            f"inspected {self.photos} photo{'' if self.photos == 1 else 's'} in {self.seconds:.1f} s "
            f"({per_photo:.2f} s/photo): {calls}; "
            f"{self.instances} instance{'' if self.instances == 1 else 's'}"
            f"{dropped_note({'duplicate_masks_dropped': self.duplicates, 'mask_iou': self.mask_iou})}"
            f"{self.anomaly_note()}",
            f"  predictions   {self.out / PREDICTIONS_FILE}  (COCO results, score = {self.rank_by} score)",
            f"  images        {self.out / IMAGES_FILE}  (verdict and score per photo)",
            f"  masks         {self.category_dir}  (MVTec layout; {self.convert_hint()})",
        ]
        if self.overlays:
            lines.append(
                f"  overlays      {self.out / OVERLAYS_DIR}  ({self.overlays} of {self.photos} photos)"
            )
        if self.anomaly_maps:
            lines.append(
                f"  anomaly maps  {self.out / ANOMALY_MAPS_DIR}  (16-bit PNG, value / 65535: box score x "
                "mask probability)"
            )
        lines.append(f"  settings      {self.out / ARGS_FILE}")
        return "\n".join(lines)


def check_options(options: InspectOptions) -> None:
    """Refuses option values out of range before any file is read."""
    check_cascade(options)
    if options.overlays < -1:
        raise UserError(f"--overlays must be -1 (all), 0 (none) or a count, got {options.overlays}")
    for value, allowed, flag in (
        (options.rank_by, RANK_BY, "--rank-by"),
        (options.link, LINK_MODES, "--link"),
    ):
        if value not in allowed:
            raise UserError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")


def check_out(out: Path, source: str, *, overwrite: bool, overlays: int, anomaly_maps: bool) -> Path:
    """``out`` resolved, once it is a place the run may write; see the module docstring.

    ``overlays``, ``anomaly_maps``: the options, which say what images it writes
    (:func:`inspection.outputs.written_images`).

    Raises:
        UserError: ``out`` holds the photos (``--overwrite`` would delete them), lies inside a
            folder searched recursively, a pattern ``source`` could match the images it writes (the
            next run would inspect them too, the message naming which), is a file,
            exists without ``overwrite``, or cannot be created.
    """
    images = written_images(overlays=overlays, anomaly_maps=anomaly_maps)
    out = check_out_of_photos(out, source, later="inspect its {} too", images=images)
    check_output_folder(out, overwrite=overwrite, holds=OUTPUT_NAMES, marker=PREDICTIONS_FILE)
    return out


def inspect_photos(options: InspectOptions) -> InspectionRun:
    """Checks everything, loads both models, inspects every photo and writes ``options.out``.

    Raises:
        UserError: any bad input (see the module docstring), before the output folder exists.
    """
    check_options(options)
    device = resolve_device(options.device)
    weights = weights_file(options.detector)
    checkpoint = check_sam_checkpoint(
        options.sam, model=options.model, base_checkpoint=options.base_checkpoint
    )
    colour_head = colour_head_for(options, checkpoint)
    colour_prompt = colour_prompt_for(options, checkpoint)
    photos = find_photos(options.source)
    paths = [photo.path for photo in photos]
    if warning := greyscale_warning(paths, colour_head=colour_head, colour_prompt=colour_prompt):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    out = check_out(
        options.out,
        options.source,
        overwrite=options.overwrite,
        overlays=options.overlays,
        anomaly_maps=options.anomaly_maps,
    )
    if options.cache_dir is not None and not options.no_cache:
        check_cache_outside(options.cache_dir, out)  # made at the first photo: the finished run was refused
    # a Ctrl-C said 'interrupted' alone: an earlier run's files left in --out read as this one's
    with earlier_run_note(out, until="every photo is done"):
        check_holds_no_photos(out, (photo.path for photo in photos))
        detector = load_detector(weights)
        check_trained_on_defects(detector, options.detector)
        largest_side = check_photos(photos, progress=options.progress)
        print_tiling_note(detector, options.tile, weights, largest_side)  # none where each window is a photo
        regions = load_regions(options, [photo.path for photo in photos])
        sam = load_sam_checkpoint(checkpoint, device=device)
        resolved = options.resolved(model=checkpoint.model, device=str(device))
        inspector = build_inspector(
            resolved,
            detector,
            sam,
            keep_probs=options.anomaly_maps,
            colour_head=colour_head,
            colour_prompt=colour_prompt,
            regions=regions,
        )
        run = InspectionRun.planned(options, photos=len(photos))
        with noting_interrupts(inspector.cache):  # the photos' embeddings so far are kept for a rerun
            build_folder(
                out,
                lambda folder: write_run(folder, inspector, photos, resolved, run),
                overwrite=options.overwrite,
            )
    return run


def write_run(
    folder: Path, inspector: Inspector, photos: Sequence[Photo], options: InspectOptions, run: InspectionRun
) -> None:
    """Inspects the photos into ``folder`` (the hidden build of ``--out``) and fills in ``run``."""
    settings = run_settings(options, inspector)
    atomic_write(folder / ARGS_FILE, yaml_text(settings))  # UTF-8: a path's é reads as typed
    writer = PredictionWriter(
        folder,
        class_names=inspector.class_names,
        rank_by=options.rank_by,
        anomaly_maps=options.anomaly_maps,
        overlays=options.overlays,
        link=options.link,
        category=category_name(Path(options.out).name),
        info={"settings": settings},
        speck_cells=inspector.speck_cells,
    )
    start = time.perf_counter()
    with writer:
        # not zip(photos, results): zip reuses its result tuple, which holds the last photo's inspection
        # until the next one is made, so a photo's full-size masks and probabilities were held beside
        # the next one's (two photos' worth at the peak); the name is unbound for the same reason
        order = iter(photos)
        for inspection in inspector.inspect_many([photo.path for photo in photos], progress=options.progress):
            writer.add(inspection, next(order))
            del inspection
    run.seconds = time.perf_counter() - start
    run.verdicts, run.instances = dict(writer.verdicts), writer.instances
    run.duplicates, run.mask_iou = inspector.duplicates_dropped, inspector.mask_iou
    if regions := settings.get("anomaly_regions"):
        run.anomaly = (writer.per_class[ANOMALY], float(regions["threshold"]))


def build_parser() -> argparse.ArgumentParser:
    """The command line; its destinations are :class:`InspectOptions`' fields."""
    parser = OneLineParser(
        prog=command_name("inspection.predict"),
        formatter_class=DefaultsHelpFormatter,
        description="Detector boxes, fine-tuned SAM masks and a verdict per photo, written as COCO results, "
        "an MVTec-layout masks tree, overlays and anomaly maps.",
    )
    add_model_arguments(parser)
    io = parser.add_argument_group("photos and outputs")
    io.add_argument(
        "--source", required=True, help="a folder (recursive), an image, or a quoted glob pattern"
    )
    io.add_argument(
        "--out", type=user_path, required=True, help="output folder (refused if it exists, not empty)"
    )
    io.add_argument("--overwrite", action="store_true", help="replace an existing --out once the run is done")
    io.add_argument(
        "--anomaly-maps",
        action="store_true",
        help="write anomaly_maps/<name>.png (16-bit): per pixel the highest box score x SAM mask probability "
        "(the cascade's, not --anomaly-run's PatchCore map)",
    )
    io.add_argument("--overlays", type=int, default=50, help="draw the first N photos (0 none, -1 all)")
    io.add_argument(
        "--link", choices=LINK_MODES, default="symlink", help="photos in the masks tree (default symlink)"
    )
    io.add_argument(
        "--rank-by",
        choices=RANK_BY,
        default="box",
        help="score in predictions.json: box, mask (SAM IoU), product",
    )
    add_running_arguments(parser)
    return parser


def run(argv: Sequence[str] | None = None) -> InspectionRun:
    """The command's work: parse, inspect, print the summary."""
    options = InspectOptions(**vars(build_parser().parse_args(argv)))
    result = inspect_photos(options)
    print(result.describe())
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m inspection.predict``; bad input is one ``error:`` line and exit code 2."""
    return exit_code(lambda: run(argv))


if __name__ == "__main__":
    raise SystemExit(main())
