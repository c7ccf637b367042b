"""``python -m anomaly.predict``: anomaly maps, scores and instance masks for new photos.

    python -m anomaly.predict --run runs/anomaly/hazelnut --source photos/ [--sam runs/sam/<run>/decoder.pt]
    python -m anomaly.predict --run runs/anomaly/hazelnut --source "lot_7/**/*.png"   # a quoted glob pattern
    python -m segmentation.annotate --images photos/ --out datasets/new --proposals <out>/predictions.json

Each photo's map (at its own size) is cut at the threshold, its connected regions become boxes, and
SAM outlines each box (a fine-tuned ``decoder.pt``, ``--sam-zero-shot`` MobileSAM, or neither: the
regions themselves are the masks). A ``decoder.pt``'s colour prompt and colour head are applied, as in
the inspection cascade, unless ``--no-colour-prompt`` / ``--no-colour-head``; ``predict.json`` records
them (``colour_head``, ``colour_prompt``, ``no_colour_head``, ``no_colour_prompt``). Outputs are
described in :mod:`anomaly.outputs`.

The threshold is ``--threshold VALUE``, or ``--threshold PATH`` to an ``anomaly.evaluate``
``metrics.json`` (its pixel F1-max threshold, or the one its masks used); by default the run's own
evaluation: ``<run>/eval-val``, then ``<run>/eval-test``, then ``<run>/eval-mvtec``, the first that
exists (the command names the file it used).

The output folder is built hidden beside ``--out`` and renamed into place when complete, so a
failed or interrupted run leaves nothing half-written; ``--overwrite`` replaces an existing one
only then. An ``--out`` that holds the run or the photos, lies inside the photo folder (a folder
``--source``, or a ``**`` pattern's leading folder), or whose masks or anomaly maps a pattern
``--source`` could match as glob would (``lots/*/*/*.png`` and ``lots/pred``:
``lots/pred/anomaly_maps/*.png``, not written with ``--no-maps``; the names' suffixes and a hidden
``--out`` count), is refused.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from anomaly.data import check_header_sizes, read_rgb
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
from anomaly.outputs import OUTPUT_NAMES, PredictionWriter, written_images
from anomaly.regions import check_min_area, check_threshold, map_regions
from anomaly.run import RUN_FILE, AnomalyRun, evaluate_command, load_run
from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path_text
from common.errors import UserError
from common.folders import (
    build_folder,
    check_cache_outside,
    check_output_folder,
    check_unique_names,
    earlier_run_note,
    output_name,
)
from common.images import decode_photos
from common.io import expand_user, read_json_object, recorded_path
from common.out_folders import check_holds_no_photos, check_out_of_photos
from common.photo_sources import photo_files, photo_root
from common.pixels import warn_narrow_photos

#: Evaluation folders whose metrics.json gives the default threshold, in order of preference.
EVAL_FOLDERS = ("eval-val", "eval-test", "eval-mvtec")


def list_photos(source: str | Path) -> tuple[Path, list[Path]]:
    """``(base folder, photos)`` of :func:`common.photo_sources.photo_files`; one file's base is its folder.

    Outputs are named by each photo's path relative to the base.
    """
    photos, base = photo_files(source)
    return (Path(source).parent if base is None else base), photos


def resolve_threshold(
    value: str | None, run_path: Path, *, clean_goods: bool = False, flag: str = "--threshold"
) -> tuple[float, str]:
    """The map threshold and where it came from (see the module docstring).

    Args:
        value: a number, a metrics.json (or the ``anomaly.evaluate`` folder holding one), or None
            (the run's own evaluation).
        run_path: the run folder.
        clean_goods: raise a metrics file's threshold just above the largest map value of the good
            images it scored (``pixel.good_peak``), so that none of them would get a region.
        flag: the option the errors name (``--anomaly-threshold`` in the inspection cascade).
    """
    if value is not None:
        try:
            number = float(value)
        except ValueError:  # not a number: a metrics.json (absolute: the origin is recorded with the run)
            path = given_metrics_file(value, flag)
        else:
            return check_threshold(number, flag, typed=value), "given"  # 1e400 is named, not 'inf'
    else:
        path = run_metrics_file(run_path, flag)
    metrics = read_json_object(path, what="metrics file", utf8=False)  # anomaly.evaluate's, paths as given
    check_metrics_model(metrics, path, run_path, flag)
    threshold = metrics_threshold(metrics, path, flag)
    peak = _section(metrics, "pixel").get("good_peak")
    if clean_goods and isinstance(peak, int | float) and math.isfinite(peak) and peak >= threshold:
        above = float(np.nextafter(np.float32(peak), np.float32(math.inf)))  # maps are float32
        return above, f"from {recorded_path(path)}, above its good images"
    return float(threshold), f"from {recorded_path(path)}"


def given_metrics_file(value: str, flag: str) -> Path:
    """The metrics.json that ``value`` (not a number) names: the file, or the ``anomaly.evaluate`` folder
    holding it; without '..', as errors name it and the threshold's origin records it.

    Raises:
        UserError: nothing there (a mistyped number; '' is the cwd), or a folder without metrics.json
            (the run folder, say: the error names the evaluation inside it to pass).
    """
    try:  # --threshold '~/eval' was looked for in a folder named '~'
        path = Path(recorded_path(expand_user(value)))
    except UserError as error:  # no home folder
        raise UserError(f"{flag} {error}") from None
    if not value.strip() or not path.exists():
        named = value if value.strip() else repr(value)
        raise UserError(
            f"{flag} {named}: neither a number nor an existing metrics.json (of anomaly.evaluate)"
        ) from None
    if path.is_dir() and (path / "metrics.json").is_file():  # its eval-val/: 'Is a directory'
        return path / "metrics.json"
    if path.is_dir():  # the run folder itself, say: 'cannot read metrics file ...: Is a directory'
        inside = [path / name for name in EVAL_FOLDERS if (path / name / "metrics.json").is_file()]
        evaluations = f"an anomaly.evaluate folder (a run's {', '.join(EVAL_FOLDERS)}) or its metrics.json"
        way = f"pass {inside[0]}" if inside else f"pass {evaluations}"
        raise UserError(
            f"{flag} {value} is a folder without metrics.json: {way}; without {flag} the run's own "
            "evaluation gives it"
        ) from None
    return path


def run_metrics_file(run_path: Path, flag: str) -> Path:
    """The metrics.json of the run's own evaluation: the first of :data:`EVAL_FOLDERS` that holds one;
    absolute, as a given file (the origin is recorded with the predictions, ``threshold_from``).

    Raises:
        UserError: none of them does; it names the ``anomaly.evaluate`` command to run.
    """
    found = [Path(recorded_path(run_path)) / name / "metrics.json" for name in EVAL_FOLDERS]
    path = next((p for p in found if p.is_file()), None)
    if path is None:
        raise UserError(
            f"no threshold: pass {flag} VALUE, or evaluate the run first ({evaluate_command(run_path)}) "
            "so that its metrics.json gives one"
        )
    return path


def metrics_threshold(metrics: dict, path: Path, flag: str) -> float:
    """The pixel threshold of an ``anomaly.evaluate`` metrics file: the one its masks used, else its
    pixel F1-max threshold (an int as written).

    Raises:
        UserError: none there (an evaluation of good images only picks none: the error says what to
            pass), or a non-finite or negative one.
    """
    pixel = _section(metrics, "pixel")
    threshold = _section(metrics, "masks").get("threshold", pixel.get("f1_threshold"))
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        peak = pixel.get("good_peak")
        known = isinstance(peak, int | float) and math.isfinite(peak)
        hint = f"; pass {flag} VALUE above its largest map value on a good image, {peak:.6g}" if known else ""
        unmasked = pixel.get("defect_images_without_mask")
        if isinstance(unmasked, int) and unmasked > 0:  # or it reads as if the test split held no defect
            images = "defect image" if unmasked == 1 else "defect images"
            hint = f": its {unmasked} {images} had no mask to pick one on{hint}"
        raise UserError(f"{path} holds no pixel threshold (masks.threshold or pixel.f1_threshold){hint}")
    # a hand-edited file's negative value flagged every pixel without a word (--threshold is checked)
    check_threshold(float(threshold), f"the pixel threshold of {path}")
    return threshold


def _section(metrics: dict, name: str) -> dict:
    """``metrics[name]`` where it is a mapping, else empty: a hand-edited ``"pixel": [1]`` was an
    AttributeError traceback."""
    section = metrics.get(name)
    return section if isinstance(section, dict) else {}


def check_metrics_model(metrics: dict, path: Path, run_path: Path, flag: str = "--threshold") -> None:
    """Refuses a metrics file that scored a model of another backbone or input size than the run's, and
    warns of one that scored another memory bank.

    Map values are distances in the backbone's feature space at the run's input size: another
    model's threshold is on another scale (MobileNetV2's maps on hazelnut_toy peak near 4,
    EfficientNet-Lite0's near 40), so every photo would pass as good, or none. Another run of the same
    model (``settings.memory_bank_sha256`` not the run's) has the scale but was fit, and its threshold
    picked, on other photos, maybe of another product: one ``warning:`` line names that run and its
    category. A file or run that does not say (no ``settings``, no readable ``run.json``) is taken as it is.

    Raises:
        UserError: naming both models.
    """
    try:
        info = read_json_object(run_path / RUN_FILE, what="run file", utf8=False)
    except UserError:  # loading the run names what is wrong with it
        return
    settings, config = metrics.get("settings"), info.get("config")
    if not isinstance(settings, dict) or not isinstance(config, dict):
        return
    keys = ("backbone", "image_size")
    theirs, ours = [settings.get(k) for k in keys], [config.get(k) for k in keys]
    if None not in theirs and theirs != ours:
        raise UserError(
            f"{flag} {path} scored backbone {theirs[0]} at {theirs[1]} px, but {run_path} is {ours[0]} at "
            f"{ours[1]} px: its threshold is on another distance scale; evaluate this run "
            f"({evaluate_command(run_path)}) or pass {flag} VALUE"
        )
    bank = info.get("bank")
    ours_bank = bank.get("sha256") if isinstance(bank, dict) else None
    theirs_bank = settings.get("memory_bank_sha256")
    if isinstance(ours_bank, str) and isinstance(theirs_bank, str) and ours_bank != theirs_bank:
        print(
            f"warning: {flag} {path} is a threshold picked on the maps of another memory bank (run "
            f"{settings.get('run')}, category '{settings.get('category')}'), not of {run_path}'s (fit on "
            f"'{info.get('category')}'); evaluate this run for its own ({evaluate_command(run_path)})",
            file=sys.stderr,
            flush=True,
        )


def check_out(out: Path, *, run: Path, source: str | Path, overwrite: bool, maps: bool) -> Path:
    """``out`` resolved, once it is a place the predictions may be written (built beside it); ``maps``:
    whether anomaly maps are written there (:func:`anomaly.outputs.written_images`).

    Raises:
        UserError: ``out`` holds the run folder or the photos (``--overwrite`` would delete them),
            lies inside the photo folder searched recursively, or a pattern ``source`` could match
            its images (:func:`common.out_folders.check_out_of_photos`: a later run would score them as
            photos, the message naming which: the masks, or the anomaly maps), is a file, exists and
            is not empty without ``overwrite``, holds other names than the outputs' or some of them
            without ``predict.json`` (made by hand: :func:`common.folders.check_replaceable`), or cannot
            be created.
    """
    out = check_out_of_photos(
        out,
        source,
        later="score its {} as photos",  # the masks alone with --no-maps
        images=written_images(maps=maps),
        kept=[(run, "the run")],
    )
    empty = out.is_dir() and not any(out.iterdir())  # made by hand: replaced like an old run's
    # a folder of the outputs' names without predict.json (a masks/ of the user's) is not an earlier run
    return check_output_folder(out, overwrite=overwrite or empty, holds=OUTPUT_NAMES, marker="predict.json")


def predict_photos(
    run_path: str | Path,
    source: str | Path,
    out: str | Path | None = None,
    *,
    threshold: str | None = None,
    sam: str | Path | None = None,
    sam_zero_shot: bool = False,
    sam_model: str | None = None,
    min_area: int = 16,
    maps: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    no_colour_head: bool = False,
    no_colour_prompt: bool = False,
) -> dict:
    """Scores and segments every photo of ``source``; returns a summary.

    ``cache_dir``: where SAM's embeddings of the photos are kept (:func:`anomaly.masks.load_segmenter`);
    None: computed each time. ``no_colour_head``, ``no_colour_prompt``: leave out the ``sam`` decoder's
    colour head, colour prompt.

    Raises:
        UserError: a corrupt run, no photos, two photos sharing an output name, an ``out`` that
            may not be written (see :func:`check_out`), a photo of another size or unreadable, no
            threshold or a non-finite or negative one, SAM weights that cannot be loaded, or a
            ``no_colour_head`` / ``no_colour_prompt`` that changes nothing; nothing is written then.
    """
    run_path = Path(run_path)
    run = load_run(run_path)
    check_min_area(min_area, run.image_shape)  # the run's photos: a larger one drops every region
    base, photos, out = photos_and_out(run_path, source, out, overwrite=overwrite, maps=maps)
    if cache_dir is not None:  # made at SAM's first photo: the finished run was refused as 'exists'
        check_cache_outside(cache_dir, out)
    no_colour = (no_colour_head, no_colour_prompt)
    # a Ctrl-C while the photos are checked or SAM loads, too: 'interrupted' alone, its files read as new
    with earlier_run_note(out, until="every photo is done"):
        check_photos_for_run(photos, out=out, image_shape=run.image_shape)
        value, origin = resolve_threshold(threshold, run_path)
        segmenter = photos_segmenter(
            photos, sam, zero_shot=sam_zero_shot, model=sam_model, cache_dir=cache_dir, no_colour=no_colour
        )
        info = prediction_info(
            run_path,
            run,
            source=source,
            photos=len(photos),
            threshold=(value, origin),
            segmenter=segmenter,
            sam=sam,
            min_area=min_area,
            maps=maps,
            no_colour=no_colour,
        )
        return write_predictions(
            out, info, run, segmenter, photos, base, maps=maps, overwrite=overwrite, progress=progress
        )


def photos_segmenter(
    photos: Sequence[Path],
    sam: str | Path | None,
    *,
    zero_shot: bool,
    model: str | None,
    cache_dir: str | Path | None,
    no_colour: tuple[bool, bool],
) -> Segmenter:
    """The segmenter (:func:`anomaly.masks.load_segmenter`; ``no_colour``: ``(no_colour_head,
    no_colour_prompt)``), with its ``warning:`` where it reads colour and most of ``photos`` are grey
    (:func:`anomaly.masks.warn_grey_photos`)."""
    no_colour_head, no_colour_prompt = no_colour
    segmenter = load_segmenter(
        sam,
        zero_shot=zero_shot,
        model=model,
        cache_dir=cache_dir,
        no_colour_head=no_colour_head,
        no_colour_prompt=no_colour_prompt,
    )
    warn_grey_photos(photos, segmenter)
    return segmenter


def write_predictions(
    out: Path,
    info: dict,
    run: AnomalyRun,
    segmenter: Segmenter,
    photos: Sequence[Path],
    base: Path,
    *,
    maps: bool,
    overwrite: bool,
    progress: bool,
) -> dict:
    """Predicts ``photos`` as ``info`` (``predict.json``: :func:`prediction_info`) records them, at its
    ``threshold`` and ``min_area``, and writes them into ``out`` (:func:`predict_into`), built hidden beside
    it and renamed into place; an existing ``out`` is replaced (its check: :func:`check_out`).

    Returns:
        :func:`predict_photos`' summary: ``info``, ``out``, the photos flagged and the instances.
    """
    threshold, min_area = info["threshold"], info["min_area"]
    map_range = (0.0, 2 * threshold) if maps else None

    def write(folder: Path) -> tuple[int, int]:
        """Into the hidden build of ``out``; returns the photos flagged and the instances."""
        with PredictionWriter(folder, map_range=map_range) as writer:
            predict_into(
                writer,
                run,
                segmenter,
                photos,
                base,
                threshold=threshold,
                min_area=min_area,
                progress=progress,
            )
            writer.close(info)
        return writer.flagged, writer.instances

    # an empty existing folder (made by hand) is replaced like an old run's
    with segmenter.noting_interrupts():  # 'interrupted' alone: whether SAM's embeddings were lost
        flagged, instances = build_folder(out, write, overwrite=overwrite or out.is_dir())
    return {**info, "out": str(out), "flagged": flagged, "instances": instances}


def check_photos_for_run(photos: Sequence[Path], *, out: Path, image_shape: tuple[int, int]) -> None:
    """The photos' checks before SAM loads: ``out`` holds none of them, each is of the run's
    ``image_shape`` (height, width in pixels) and decodes; a ``warning:`` when 12-bit data reads nearly
    black, as ``anomaly.train`` and ``inspection.predict`` give.

    Raises:
        UserError: naming the photo (:func:`~common.out_folders.check_holds_no_photos`; one of another
            size after every photo whose header does not read, in one line:
            :func:`anomaly.data.check_header_sizes`), or every photo that does not read, header or pixels,
            in one line (:func:`check_decodes`).
    """
    check_holds_no_photos(out, photos)
    unread: dict[Path, str] = {}  # named with those whose pixels do not read, unless a size is refused
    check_header_sizes(photos, image_shape, unread)
    check_decodes(photos, unread)
    warn_narrow_photos(photos)


def check_decodes(photos: Sequence[Path], unread: dict[Path, str]) -> None:
    """Decodes every photo once before SAM loads, as ``detection.predict`` and the inspection commands do.

    :func:`anomaly.data.check_header_sizes` reads headers only: a photo cut short, or a TIFF OpenCV cannot
    read, stopped the run when it was reached, every photo before it scored for nothing.

    Raises:
        UserError: photos that do not decode, or whose header did not read (``unread``, not read again);
            one line naming them all, or the first three and how many more
            (:func:`common.images.decode_photos`).
    """
    decode_photos(photos, unread=unread)


def photos_and_out(
    run_path: Path, source: str | Path, out: str | Path | None, *, overwrite: bool, maps: bool
) -> tuple[Path, list[Path], Path]:
    """The photos of ``source`` (with the folder their output names are relative to) and the folder the
    predictions go to: ``out``, else ``<run>/predict-<source's folder name>`` (``maps``: as for
    :func:`check_out`).

    Raises:
        UserError: no photos, two sharing an output name, a name that is not UTF-8 (the JSON names
            it), or an ``out`` that may not be written.
    """
    base, photos = list_photos(source)
    names = [photo.relative_to(base).as_posix() for photo in photos]
    check_unique_names((output_name(name), name) for name in names)
    if out is None:
        out = run_path / f"predict-{photo_root(source).resolve().name}"
        check_default_out(out, source, overwrite=overwrite)
    return base, photos, check_out(Path(out), run=run_path, source=source, overwrite=overwrite, maps=maps)


def check_default_out(out: Path, source: str | Path, *, overwrite: bool) -> None:
    """:class:`UserError` when the default ``out`` holds the predictions of another ``--source``.

    It is named after the photo folder alone, so ``lot_7/photos`` and then ``lot_8/photos`` share
    ``<run>/predict-photos``: the second was told to pass ``--overwrite``, which deletes the first's.
    The same folder through a link (``data/photos``, then the folder ``data`` links to) is the same.
    """
    if overwrite:
        return
    source = expand_user(source)  # as recorded: a quoted ~/photos is the home folder's
    try:
        earlier = json.loads((out / "predict.json").read_text(encoding="utf-8")).get("source")
    except (OSError, ValueError, AttributeError):  # none there, or not ours: check_out's own message
        return
    if not isinstance(earlier, str) or earlier == recorded_path(source):
        return
    if Path(earlier).resolve() == Path(source).resolve():  # recorded as spelled: links kept their names
        return
    raise UserError(
        f"output folder exists: {out}, holding the predictions of {earlier} (the default --out is named "
        f"after the photo folder alone): pass --out for those of {recorded_path(source)}, or --overwrite "
        "to replace the earlier ones"
    )


def prediction_info(
    run_path: Path,
    run: AnomalyRun,
    *,
    source: str | Path,
    photos: int,
    threshold: tuple[float, str],
    segmenter: Segmenter,
    sam: str | Path | None,
    min_area: int,
    maps: bool,
    no_colour: tuple[bool, bool] = (False, False),
) -> dict:
    """``predict.json``: how the predictions were made, paths absolute so that it traces the output back
    from any folder. ``threshold``: ``(value, where it came from)``; ``no_colour``: the flags
    ``(no_colour_head, no_colour_prompt)`` (the ``sam`` decoder's part left out)."""
    value, origin = threshold
    no_colour_head, no_colour_prompt = no_colour
    return {
        "run": recorded_path(run_path),
        # a run refit in place under the same folder differs
        "memory_bank_sha256": run.info["bank"]["sha256"],
        "source": recorded_path(expand_user(source)),  # a pattern too; a quoted ~/photos: the home folder's
        "photos": photos,
        "threshold": value,
        "threshold_from": origin,
        "segmenter": segmenter.name,
        # the file the segmenter's name gives, spelled alike; null for zero-shot SAM or none
        "sam": recorded_path(sam) if sam else None,
        **segmenter.colour_record(),  # what the --sam decoder.pt carries and the masks applied
        # true: the --sam decoder.pt carries one, left out (a null above then is no decoder's lack)
        "no_colour_head": no_colour_head,
        "no_colour_prompt": no_colour_prompt,
        "min_area": min_area,
        "map_png": "16-bit, 0 = 0.0, 65535 = 2 x threshold" if maps else None,
    }


def predict_into(
    writer: PredictionWriter,
    run: AnomalyRun,
    segmenter: Segmenter,
    photos: Sequence[Path],
    base: Path,
    *,
    threshold: float,
    min_area: int,
    progress: bool,
) -> None:
    """Scores each photo, cuts its map at ``threshold`` into regions, segments them, and adds it all to
    ``writer`` under the photo's path relative to ``base``."""
    for photo in tqdm(photos, desc="photos", unit="img", disable=not progress):
        image = read_rgb(photo)
        [prediction] = run.predict([image], [photo])
        run.warn_flagged_throughout(prediction.anomaly_map, threshold, photo)
        regions = map_regions(prediction.anomaly_map, threshold, min_area=min_area)
        instances = segmenter(image, regions, min_area=min_area, path=photo)
        file_name = photo.relative_to(base).as_posix()
        writer.add(
            file_name, image.shape[:2], prediction.score, instances, prediction.anomaly_map, path=photo
        )
        # unbound before the next photo is read: bound, this one's pixels, full-size map, regions and
        # masks were held beside the next one's
        del image, prediction, regions, instances


def parser() -> OneLineParser:
    p = OneLineParser(
        prog=command_name("anomaly.predict"),
        description="Anomaly maps, scores and instance masks for new photos.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--run", type=user_path_text, required=True, help="run folder written by anomaly.train")
    p.add_argument(
        "--source",
        required=True,
        help='a photo, a folder of photos (searched recursively) or a quoted glob ("lot_7/**/*.png")',
    )
    p.add_argument(
        "--out",
        type=user_path_text,
        help="output folder (default <run>/predict-<the source folder's name, a pattern's folder's, or one "
        "photo's file name>)",
    )
    p.add_argument(
        "--threshold",
        help="map threshold: a number, or an anomaly.evaluate metrics.json or its folder (default: the "
        "run's own evaluation, <run>/eval-val, eval-test or eval-mvtec, the first that exists)",
    )
    p.add_argument(
        "--sam",
        type=user_path_text,
        help="fine-tuned SAM: decoder.pt from segmentation.train, or a full sam_finetuned.pth "
        "(with --sam-model)",
    )
    p.add_argument("--sam-zero-shot", action="store_true", help="zero-shot SAM (MobileSAM, offline)")
    p.add_argument("--sam-model", help="SAM registry model (zero-shot or a full state dict; default vit_t)")
    add_colour_options(p)
    p.add_argument("--min-area", type=int, default=16, help="smallest region kept, pixels")
    p.add_argument("--no-maps", action="store_true", help="do not write anomaly_maps/*.png")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out when done")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_cache_options(p)
    return p


def run(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    check_sam_flags(args.sam, args.sam_zero_shot, args.sam_model)
    check_colour_options(args)
    if args.min_area < 1:
        raise UserError(f"--min-area must be at least 1, got {args.min_area}")
    cache_dir = embedding_cache_dir(args)
    result = predict_photos(
        args.run,
        args.source,
        args.out,
        threshold=args.threshold,
        sam=args.sam,
        sam_zero_shot=args.sam_zero_shot,
        sam_model=args.sam_model,
        min_area=args.min_area,
        maps=not args.no_maps,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        cache_dir=cache_dir,
        no_colour_head=args.no_colour_head,
        no_colour_prompt=args.no_colour_prompt,
    )
    photos, instances = result["photos"], result["instances"]
    print(
        f"{photos} photo{'s' * (photos != 1)}, {result['flagged']} flagged, "
        f"{instances} instance{'s' * (instances != 1)} "
        f"(threshold {result['threshold']:.6g} {result['threshold_from']}; masks: {result['segmenter']}) "
        f"-> {result['out']}/predictions.json"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return exit_code(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
