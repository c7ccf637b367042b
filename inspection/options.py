"""The options ``inspection.predict`` and ``inspection.evaluate`` share: the two models and how they run.

One declaration (:class:`CascadeOptions`) with its flags (:func:`add_model_arguments`,
:func:`add_running_arguments`), its checks (:func:`check_cascade`, :func:`colour_head_for`,
:func:`colour_prompt_for`, :func:`load_regions`),
the :class:`~inspection.inspector.Inspector` it builds (:func:`build_inspector`) and the
settings a run records (:func:`run_settings`); each command adds its own fields by subclassing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from anomaly.data import check_sizes
from common.cli import user_path
from common.errors import UserError
from common.folders import check_output_folder
from common.io import embeddings_root, recorded_path
from detection.tiling import DEFAULT_OVERLAP, check_overlap_has_tile
from inspection.anomaly_regions import AnomalyRegions, check_max_covered, check_min_area
from inspection.checkpoints import SamCheckpoint
from inspection.inspector import Inspector, check_colour, check_settings, check_tta
from segmentation.colour_head import ColourHead, refuse_idle_no_colour_head
from segmentation.colour_prompt import ColourPrompt, refuse_idle_no_colour_prompt
from segmentation.crops import CropRule
from segmentation.decoder_onnx import RUNTIMES
from segmentation.duplicates import MASK_IOU
from segmentation.embeddings import EmbeddingCache
from segmentation.finetuned import colour_left_behind
from segmentation.models import SAM_MODELS
from segmentation.specks import DEFAULT_CELLS, check_speck_cells

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


@dataclass(frozen=True, kw_only=True)
class CascadeOptions:
    """The models and the detection and running settings (one field per flag, see ``--help``)."""

    detector: Path
    sam: Path | None = None
    model: str | None = None
    base_checkpoint: Path | None = None
    no_colour_head: bool = False
    no_colour_prompt: bool = False
    conf: float = 0.25
    iou: float = 0.7
    mask_iou: float = MASK_IOU
    speck_cells: float = DEFAULT_CELLS
    imgsz: int | None = None  # None: the size the detector was trained at
    tile: int | None = None
    tile_overlap: float = DEFAULT_OVERLAP
    max_det: int = 300
    device: str = "auto"
    cache_dir: Path | None = None
    no_cache: bool = False
    runtime: str = "auto"
    crop_fraction: float = 0.0
    tta: bool = False
    anomaly_run: Path | None = None
    anomaly_threshold: str | None = None
    anomaly_min_area: int = 16
    anomaly_max_covered: float = 1.0
    progress: bool = True

    def resolved(self, *, model: str, device: str) -> CascadeOptions:
        """These options with what loading found: the SAM model, the device, the cache folder (or None)."""
        cache_dir = None if self.no_cache else Path(self.cache_dir or embeddings_root())
        return replace(self, model=model, device=device, cache_dir=cache_dir)

    def crop_rule(self) -> CropRule | None:
        """The zoomed crops ``--crop-fraction`` asks for; None when it is 0."""
        return CropRule(max_fraction=self.crop_fraction) if self.crop_fraction > 0 else None

    def record(self) -> dict:
        """The options as plain YAML values (paths as absolute strings), for ``args.yaml`` and reports.

        ``--anomaly-threshold`` a metrics.json (a ``str``, as it may be a number) is made absolute too.
        """
        record = {
            key: recorded_path(value) if isinstance(value, Path) else value
            for key, value in asdict(self).items()
        }
        if (threshold := self.anomaly_threshold) is not None and not _is_number(threshold):
            record["anomaly_threshold"] = recorded_path(threshold)
        return record


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_cascade(options: CascadeOptions) -> None:
    """Refuses option values out of range, and a ``--cache-dir`` that cannot be a folder, before loading."""
    check_settings(
        conf=options.conf, iou=options.iou, mask_iou=options.mask_iou, tile=options.tile,
        tile_overlap=options.tile_overlap, imgsz=options.imgsz, max_det=options.max_det,
    )  # fmt: skip
    if not 0 <= options.crop_fraction <= 1:
        raise UserError(f"--crop-fraction must be in [0, 1], got {options.crop_fraction}")
    check_tta(options.tta, options.crop_rule())
    check_speck_cells(options.speck_cells)
    check_min_area(options.anomaly_min_area)
    check_max_covered(options.anomaly_max_covered)
    if options.anomaly_run is None:  # each would be ignored without a run
        given = [
            flag
            for flag, unset in (
                ("--anomaly-threshold", options.anomaly_threshold is None),
                ("--anomaly-min-area", options.anomaly_min_area == CascadeOptions.anomaly_min_area),
                ("--anomaly-max-covered", options.anomaly_max_covered == CascadeOptions.anomaly_max_covered),
            )
            if not unset
        ]
        if given:
            raise UserError(f"{given[0]} needs --anomaly-run")
    check_overlap_has_tile(options.tile, options.tile_overlap)  # whole photos have no windows to overlap
    if options.runtime not in RUNTIMES:
        raise UserError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {options.runtime!r}")
    if options.model is not None and options.model not in SAM_MODELS:
        raise UserError(
            f"unknown SAM model '{options.model}': known models are {', '.join(sorted(SAM_MODELS))}"
        )
    if options.cache_dir is not None and not options.no_cache:
        # otherwise found at the first photo with a box, after both models load, and blamed on --out
        check_output_folder(options.cache_dir, flag="--cache-dir")


def colour_head_for(options: CascadeOptions, checkpoint: SamCheckpoint) -> ColourHead | None:
    """The colour head the cascade applies: the checkpoint's, unless ``--no-colour-head``.

    A full state dict beside a ``decoder.pt`` that carries a colour head or colour prompt gets a
    ``note:`` (:func:`segmentation.finetuned.colour_left_behind`): it has no place for either.

    Raises:
        UserError: a head together with ``--crop-fraction`` (checked before anything loads; with the
            checkpoint's colour prompt too, both named);
            ``--no-colour-head`` without ``--sam`` or with one that carries no head (it changed nothing).
    """
    if options.no_colour_head:
        refuse_idle_no_colour_head(checkpoint.colour_head, checkpoint.path, flag="--sam")
    head = None if options.no_colour_head else checkpoint.colour_head
    prompt = None if options.no_colour_prompt else checkpoint.colour_prompt
    check_colour(head, prompt, options.crop_rule(), checkpoint.path)
    if checkpoint.kind == "full" and checkpoint.path is not None:
        if note := colour_left_behind(checkpoint.path):  # its run's colour prompt too: said once, here
            print(f"note: {note}", file=sys.stderr, flush=True)
    return head


def colour_prompt_for(options: CascadeOptions, checkpoint: SamCheckpoint) -> ColourPrompt | None:
    """The colour prompt the cascade gives every box: the ``decoder.pt``'s (None without one), unless
    ``--no-colour-prompt``.

    Raises:
        UserError: a prompt together with ``--crop-fraction`` (checked before anything loads; its maps
            are drawn on the whole photo); ``--no-colour-prompt`` without ``--sam`` or with one that
            carries no prompt (it changed nothing).
    """
    if options.no_colour_prompt:
        refuse_idle_no_colour_prompt(checkpoint.colour_prompt, checkpoint.path, flag="--sam")
    prompt = None if options.no_colour_prompt else checkpoint.colour_prompt
    check_colour(None, prompt, options.crop_rule(), checkpoint.path)
    return prompt


def load_regions(options: CascadeOptions, photos: Sequence[Path]) -> AnomalyRegions | None:
    """The ``--anomaly-run``'s regions (None without one), once every photo is of the run's size.

    Raises:
        UserError: a corrupt run, no threshold or a bad one, a photo of another size than the
            photos the run was fit on (named).
    """
    if options.anomaly_run is None:
        return None
    regions = AnomalyRegions.from_run(
        options.anomaly_run,
        threshold=options.anomaly_threshold,
        min_area=options.anomaly_min_area,
        max_covered=options.anomaly_max_covered,
    )
    # 'the model was fit on 512x512' could be read as the detector's or SAM's
    check_sizes(photos, regions.image_shape, model=f"--anomaly-run {options.anomaly_run}")
    return regions


def build_inspector(
    options: CascadeOptions,
    detector: object,
    sam: Sam,
    *,
    keep_probs: bool,
    colour_head: ColourHead | None = None,
    colour_prompt: ColourPrompt | None = None,
    regions: AnomalyRegions | None = None,
) -> Inspector:
    """The :class:`Inspector` of :meth:`CascadeOptions.resolved` options and the loaded models.

    Args:
        colour_head: see :class:`Inspector` (:func:`colour_head_for`).
        colour_prompt: see :class:`Inspector` (:func:`colour_prompt_for`).
        regions: see :class:`Inspector` (:func:`load_regions`).
    """
    cache = None
    if options.cache_dir is not None:
        cache = EmbeddingCache(
            options.cache_dir,
            sam,
            model_name=str(options.model),
            elsewhere="pass --cache-dir <a writable folder> or --no-cache",
        )
    return Inspector(
        detector,
        sam,
        conf=options.conf,
        iou=options.iou,
        mask_iou=options.mask_iou,
        speck_cells=options.speck_cells,
        imgsz=options.imgsz,
        tile=options.tile,
        tile_overlap=options.tile_overlap,
        max_det=options.max_det,
        device=options.device,
        cache=cache,
        keep_probs=keep_probs,
        runtime=options.runtime,
        crops=options.crop_rule(),
        colour_head=colour_head,
        colour_prompt=colour_prompt,
        tta=options.tta,
        regions=regions,
        note_tiling=False,  # the commands give it before the models load, for their photos' longest side
    )


def run_settings(options: CascadeOptions, inspector: Inspector) -> dict:
    """What a run records: the options (:meth:`CascadeOptions.record`), the colour head and colour prompt
    applied and the anomaly regions' run and threshold (each None without)."""
    head, prompt, regions = inspector.colour_head, inspector.colour_prompt, inspector.regions
    return {
        **options.record(),
        "imgsz": inspector.settings["imgsz"],  # the detector's own size when --imgsz was not given
        "runtime": inspector.runtime,  # what --runtime auto chose (onnx, or torch without onnxruntime)
        "colour_head": None if head is None else head.to_dict(),
        "colour_prompt": None if prompt is None else prompt.to_dict(),
        "anomaly_regions": None if regions is None else regions.record(),
    }


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--detector``, ``--sam``, ``--model``, ``--base-checkpoint``, ``--no-colour-head``,
    ``--no-colour-prompt`` and the anomaly regions' flags (:func:`add_anomaly_arguments`)."""
    models = parser.add_argument_group("models")
    models.add_argument("--detector", type=user_path, required=True, help="a detection run's weights/best.pt")
    models.add_argument(
        "--sam",
        type=user_path,
        help="decoder.pt from segmentation.train, or a full sam_finetuned.pth (with --model); "
        "default: zero-shot SAM",
    )
    models.add_argument(
        "--model", help=f"SAM model: {', '.join(sorted(SAM_MODELS))} (read from decoder.pt; default vit_t)"
    )
    models.add_argument(
        "--base-checkpoint", type=user_path, help="base SAM weights under decoder.pt (default: official)"
    )
    models.add_argument(
        "--no-colour-head",
        action="store_true",
        help="SAM's own masks even when decoder.pt carries a colour head (colour_head: true in training)",
    )
    models.add_argument(
        "--no-colour-prompt",
        action="store_true",
        help="box prompts without their colour maps even when decoder.pt carries a colour prompt "
        "(colour_prompt: true in training), e.g. with --crop-fraction (which refuses it)",
    )
    add_anomaly_arguments(parser)


def add_anomaly_arguments(parser: argparse.ArgumentParser) -> None:
    """``--anomaly-run``, ``--anomaly-threshold``, ``--anomaly-min-area``."""
    regions = parser.add_argument_group("anomaly regions (a second source of boxes)")
    regions.add_argument(
        "--anomaly-run",
        type=user_path,
        help="an anomaly.train run folder: each region of its map becomes one more box for SAM, "
        "class 'anomaly' (photos must be of the size it was fit on)",
    )
    regions.add_argument(
        "--anomaly-threshold",
        help="map threshold: a number, or an anomaly.evaluate metrics.json or its folder (default: the "
        "run's own evaluation, found as anomaly.predict finds it); a metrics file's threshold is raised "
        "above the largest map value it saw on a good image, unlike anomaly.predict's",
    )
    regions.add_argument("--anomaly-min-area", type=int, default=16, help="smallest region kept, pixels")
    regions.add_argument(
        "--anomaly-max-covered",
        type=float,
        default=1.0,
        help="a region with more than this fraction of its pixels inside the detector's boxes is left out",
    )


def add_running_arguments(parser: argparse.ArgumentParser) -> None:
    """Detection settings, device and embedding cache."""
    run = parser.add_argument_group("detection and running")
    run.add_argument("--conf", type=float, default=0.25, help="lowest box score kept; the verdict threshold")
    run.add_argument("--iou", type=float, default=0.7, help="the detector's NMS IoU")
    run.add_argument(
        "--mask-iou",
        type=float,
        default=MASK_IOU,
        help="after SAM, of two masks of one class overlapping by more than this IoU only the "
        "better-scored box's is kept (mask NMS); 1: keep every box's mask",
    )
    run.add_argument(
        "--speck-cells",
        type=float,
        default=DEFAULT_CELLS,
        help="then remove islands and holes under this many of SAM's 256x256 output cells from each mask "
        "(a cell is (long side / 256)^2 px; each would be an instance of its own once the masks tree is "
        "converted); 0: SAM's masks as they are",
    )
    run.add_argument(
        "--imgsz", type=int, help="detector input size, per window with --tile (default: its training size)"
    )
    run.add_argument("--tile", type=int, help="tiled detection with windows of this many px (>= 32)")
    run.add_argument(
        "--tile-overlap", type=float, default=DEFAULT_OVERLAP, help="window overlap, fraction of --tile"
    )
    run.add_argument("--max-det", type=int, default=300, help="boxes kept per photo")
    run.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N, mps")
    run.add_argument(
        "--cache-dir", type=user_path, help="SAM embedding cache (default: <cache root>/embeddings)"
    )
    run.add_argument("--no-cache", action="store_true", help="compute every embedding, read and store none")
    run.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="SAM's decoder: auto (ONNX Runtime on a CPU, torch on a GPU), onnx, torch",
    )
    run.add_argument(
        "--crop-fraction",
        type=float,
        default=0.0,
        help="decode boxes whose longest side < this x the photo's on a zoomed crop (segmentation's rule, "
        "e.g. 0.125; one more encoder run per small box, cached); 0: off",
    )
    run.add_argument(
        "--tta",
        action="store_true",
        help="test-time flips: average SAM's logits over the photo and its 3 flips "
        "(4 encoder runs per photo with boxes, cached; a colour prompt is drawn on each flipped view); "
        "not with --crop-fraction",
    )
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
