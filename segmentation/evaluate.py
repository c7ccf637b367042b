"""Scores SAM on a split with ground-truth box prompts: zero-shot and fine-tuned side by side.

    python -m segmentation.evaluate --data runs/demo/synthetic_nut --checkpoint runs/sam/<name>/decoder.pt \\
        --compare-zero-shot

Protocol: one box per ground-truth connected region (the instance's tight
box, no jitter), one mask per box (SAM's single-mask output, as recommended
for box prompts). Per image, the union of its predicted masks is compared with
its whole ground-truth mask (IoU, Dice, and Boundary IoU on the band along
the outlines, 2 % of the image diagonal wide), each instance with its own mask
(instance IoU), and the masks scored by the decoder's predicted IoU go through
COCOeval (mask AP). Zero-shot and fine-tuned models see the same images and
the same prompts.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from tqdm import tqdm

from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path
from common.config import override_keys, text_override
from common.data_sets import data_set_folder
from common.devices import check_device_name, cuda_devices_visible, given, missing_cuda
from common.errors import UserError
from common.extras import package_versions
from common.folders import (
    build_folder,
    check_cache_outside,
    check_not_inside,
    check_output_folder,
    earlier_run_note,
    path_exists,
)
from common.image_files import encode_image
from common.io import atomic_write, cache_root, embeddings_root, json_text, recorded_path
from common.tables import fmt, markdown_cell
from common.text import put_text
from common.trained_images import trained_overlap_warning
from converters.masks import mask_to_rle
from converters.splits import SPLITS
from segmentation.colour_head import ColourHead, refuse_idle_no_colour_head
from segmentation.colour_prompt import (
    ColourPrompt,
    mask_input_of,
    refuse_colour_with_crops,
    refuse_idle_no_colour_prompt,
)
from segmentation.crops import CropRule, Window, decode_with_crops, small_box_windows
from segmentation.data import (
    SegmentationImage,
    SegmentationSplit,
    check_image_sizes,
    defects_step,
    load_split,
)
from segmentation.embeddings import EmbeddingCache, ImageEmbedding, load_rgb, noting_interrupts
from segmentation.finetuned import (
    BASE_OPTION,
    colour_left_behind,
    greyscale_warning,
    load_colour_head,
    load_colour_prompt,
    load_finetuned,
    tuned_crop_fraction,
)
from segmentation.folds import check_fold_count, check_resumable, is_folds_run, show_killed_asides
from segmentation.metrics import ImageScore, Summary, coco_mask_ap, score_image, summarise
from segmentation.models import DEFAULT_MODEL, SAM_MODELS, is_official_weights, load_sam
from segmentation.predict import box_logits, predict_masks
from segmentation.tta import TTA_VIEWS, flip_averaged_logits
from segmentation.views import View

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: The devices a user may name (``--device``, ``device:``): CUDA when present, or one of these; an index
#: with a leading zero (``cuda:01``) is not one: torch refuses it ("Invalid device string"), a traceback.
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:(0|[1-9][0-9]*))?"
#: Those devices as a refusal lists them (:func:`common.devices.check_device_name`).
DEVICE_NAMES = "auto, cpu, cuda, cuda:N or mps"


@dataclass
class ModelEvaluation:
    """One model's scores on one split."""

    name: str
    summary: Summary
    scores: list[ImageScore]


def resolve_device(device: str = "auto", *, what: str = "--device") -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU; a named device must exist here.

    A CUDA device comes back with its index (``cuda`` and ``auto`` are ``cuda:0``, torch's current device),
    as records write it: the cascade recorded ``cuda`` where ``detection.predict`` recorded ``cuda:0``
    (:func:`detection.train_config.chosen_device`, ultralytics' name) for the same device.

    Raises:
        UserError: ``device`` is not ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, or this
            machine has no such device (checked now: torch would fail at the first tensor moved,
            deep inside a run, with a traceback); after ``what`` and the device as given
            (``--device cuda: no CUDA device is visible ...``); a number (``--device 0``, detection's
            first GPU) is told the name it is written as here (:func:`check_device_number`).
    """
    check_device_number(device, what=what)
    check_device_name(device, DEVICE_PATTERN, DEVICE_NAMES, what=what)
    if device == "auto":
        device = "cuda" if cuda_devices_visible() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cuda":
        missing = missing_cuda([resolved.index or 0])
        if missing:
            raise UserError(f"{what}{given(device, what)}: {missing}")
        if resolved.index is None:
            resolved = torch.device("cuda", torch.cuda.current_device())
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{what}{given(device, what)}: torch has no MPS backend on this machine; pass cpu")
    return resolved


def check_device_number(device: object, *, what: str) -> None:
    """Refuses a device given as a number (``0``, ``'0'``: detection's first GPU, ultralytics' name), telling
    the name it is written as here (``cuda:0``); a negative number gets the names alone.

    Raises:
        UserError: ``--device takes a device name, not the number 0: write cuda:0 for that GPU, or use
            auto, cpu, cuda, cuda:N or mps``.

    >>> check_device_number("cuda:0", what="--device")
    """
    if isinstance(device, int) and not isinstance(device, bool):
        number = device
    elif isinstance(device, str) and re.fullmatch(r"-?[0-9]+", device):
        number = int(device)
    else:
        return
    write = f"write cuda:{number} for that GPU, or use" if number >= 0 else "use"
    raise UserError(f"{what} takes a device name, not the number {number}: {write} {DEVICE_NAMES}")


def predict_image(
    sam: Sam,
    image: SegmentationImage,
    embedding: ImageEmbedding,
    *,
    crops: CropRule | None = None,
    crop_embedding: Callable[[Window], ImageEmbedding] | None = None,
    flip_embeddings: Mapping[str, ImageEmbedding] | None = None,
    colour_head: ColourHead | None = None,
    colour_prompt: ColourPrompt | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One mask per ground-truth box: ``(N, H, W)`` bool masks and ``(N,)`` predicted IoUs.

    With ``crops``, a small box is decoded on its zoomed crop (``crop_embedding(window)``) and the
    mask pasted back (:mod:`segmentation.crops`). With ``flip_embeddings`` (the flipped views'
    embeddings by transform name, :mod:`segmentation.tta`), the logits of ``embedding`` and
    those views are averaged; not together with crops. With ``colour_head``, the logits go
    through it (:mod:`segmentation.colour_head`, the photo read from ``image.path``); with
    ``colour_prompt``, each box's colour map is SAM's mask prompt (:mod:`segmentation.colour_prompt`).
    Neither goes together with crops; with flips, each view's boxes get the maps drawn on that view.
    """
    boxes = image.boxes()
    size = (image.height, image.width)
    whole_photo = flip_embeddings or colour_head is not None or colour_prompt is not None
    if whole_photo and crops is not None:
        raise ValueError("zoomed crops do not combine with test-time flips, a colour head or a colour prompt")
    rgb = load_rgb(image.path) if colour_head is not None or colour_prompt is not None else None
    if flip_embeddings:
        views = {"identity": embedding, **flip_embeddings}
        logits, scores = flip_averaged_logits(sam, views, boxes, size, colour_prompt=colour_prompt, rgb=rgb)
    elif colour_head is not None or colour_prompt is not None:
        prompt = mask_input_of(colour_prompt, sam, embedding, rgb, boxes)
        logits, scores = box_logits(sam, embedding, boxes, mask_input=prompt)
    else:
        windows = small_box_windows(crops, boxes, size)
        if crop_embedding is None and any(w is not None for w in windows):
            raise ValueError("crops asked for without a crop_embedding source")
        return decode_with_crops(
            lambda emb, b: _box_masks(sam, emb, b), embedding, boxes, windows, crop_embedding, size
        )
    if colour_head is not None:
        logits = colour_head.refine(logits, rgb, boxes)
    return logits > sam.mask_threshold, scores


def _box_masks(sam: Sam, embedding: ImageEmbedding, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    masks, scores, _ = predict_masks(sam, embedding, boxes=boxes, multimask_output=False)
    return masks[:, 0], scores[:, 0]


def crop_views(split: SegmentationSplit, crops: CropRule | None) -> list[tuple[int, View]]:
    """``(image index, crop view)`` of every small ground-truth box of ``split``'s defect images."""
    if crops is None:
        return []
    pairs = []
    for index, image in enumerate(split.images):
        for window in small_box_windows(crops, image.boxes(), (image.height, image.width)):
            if window is not None:
                pairs.append((index, View(window=window)))
    return list(dict.fromkeys(pairs))


def flip_views(split: SegmentationSplit, tta: bool) -> list[tuple[int, View]]:
    """``(image index, flipped view)`` of every defect image of ``split`` for test-time flips (or none)."""
    if not tta:
        return []
    return [
        (index, View(transform=name))
        for index, image in enumerate(split.images)
        if not image.is_background
        for name in TTA_VIEWS[1:]
    ]


def embed_views(
    cache: EmbeddingCache,
    split: SegmentationSplit,
    pairs: list[tuple[int, View]],
    *,
    device: torch.device | str | None = None,
    batch_size: int = 4,
    progress: bool = False,
) -> dict[tuple[int, View], ImageEmbedding]:
    """Embeddings of views (crops, flips) of ``split``'s images through the cache, by image index and view."""
    paths = [split.images[index].path for index, _ in pairs]
    views = [view for _, view in pairs]
    embeddings = cache.embed(paths, views=views, device=device, batch_size=batch_size, progress=progress)
    return dict(zip(pairs, embeddings, strict=True))


def evaluate_model(
    sam: Sam,
    split: SegmentationSplit,
    embeddings: list[ImageEmbedding],
    *,
    name: str,
    progress: bool = True,
    crops: CropRule | None = None,
    view_embeddings: dict[tuple[int, View], ImageEmbedding] | None = None,
    tta: bool = False,
    colour_head: ColourHead | None = None,
    colour_prompt: ColourPrompt | None = None,
) -> ModelEvaluation:
    """Scores ``sam`` on every defect image of ``split`` (embeddings in the split's image order).

    Args:
        crops: decode small boxes on zoomed crops; their embeddings in ``view_embeddings``
            (:func:`embed_views` of :func:`crop_views`), keyed by image index and view.
        tta: average the logits over flipped views (:mod:`segmentation.tta`); their embeddings
            in ``view_embeddings`` too (:func:`embed_views` of :func:`flip_views`).
        colour_head: refine each box's logits with it (:mod:`segmentation.colour_head`).
        colour_prompt: give each box its colour map as SAM's mask prompt (:mod:`segmentation.colour_prompt`).
    """
    scores, classes, detections = [], [], []
    view_embeddings = view_embeddings or {}
    pairs = [(i, im, emb) for i, (im, emb) in enumerate(zip(split.images, embeddings, strict=True))]
    pairs = [pair for pair in pairs if not pair[1].is_background]
    for index, image, embedding in tqdm(
        pairs, desc=f"evaluating {name}", unit="img", disable=not progress, file=sys.stderr
    ):
        gt = image.instance_masks()
        pred, predicted_iou = predict_image(
            sam,
            image,
            embedding,
            crops=crops,
            crop_embedding=lambda window, i=index: view_embeddings[(i, View(window=window))],
            flip_embeddings={v: view_embeddings[(index, View(transform=v))] for v in TTA_VIEWS[1:]}
            if tta
            else None,
            colour_head=colour_head,
            colour_prompt=colour_prompt,
        )
        category_ids = [a["category_id"] for a in image.annotations]
        scores.append(score_image(image.image_id, gt, pred, category_ids))
        classes.append(category_ids)
        for mask, score, category in zip(pred, predicted_iou, category_ids, strict=True):
            detections.append(
                {
                    "image_id": image.image_id,
                    "category_id": category,
                    "segmentation": mask_to_rle(mask),
                    "score": float(score),
                }
            )
    ap = coco_mask_ap(split.annotation_file, detections)
    return ModelEvaluation(name, summarise(scores, split.categories, classes, ap), scores)


def format_table(evaluations: list[ModelEvaluation]) -> str:
    """Markdown table: one row per class and ``all``, IoU / Dice / bIoU / inst IoU / mask AP per model."""
    columns = ["IoU", "Dice", "bIoU", "inst IoU", "mask AP", "AP50"]
    header = "| class | images | " + " | ".join(f"{e.name} {c}" for e in evaluations for c in columns) + " |"
    lines = [header, "|" + "---|" * (2 + len(columns) * len(evaluations))]
    first = evaluations[0].summary
    names = ["all"] + sorted(k for k in first.iou if k != "all")
    for name in names:
        cells = []
        for evaluation in evaluations:
            s = evaluation.summary
            values = [
                s.iou.get(name),
                s.dice.get(name),
                s.boundary_iou.get(name),
                s.instance_iou.get(name),
                s.mask_ap.get(name),
                s.mask_ap50.get(name),
            ]
            cells += [fmt(v) for v in values]
        lines.append(f"| {markdown_cell(name)} | {first.n_images.get(name, 0)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scoring_notes(
    *,
    tta: bool,
    crop_fraction: float,
    colour_head: ColourHead | None,
    colour_prompts: Sequence[str] = (),
    left_out: Sequence[str] = (),
    official: bool = False,
) -> list[str]:
    """Lines under the table for what changed the scored masks beyond the models' names (else the table
    of a run with a colour head, flips or crops reads like a plain one; ``metrics.json`` records them).

    ``colour_prompts``: the names of the models whose boxes got a colour prompt. ``left_out``: the flags
    that left out what the fine-tuned ``decoder.pt`` carries (``--no-colour-head``, ``--no-colour-prompt``;
    else its table reads like that of a decoder trained without them). ``official``: the ``--checkpoint``
    is SAM's official weights (:func:`official_checkpoint`; else its table reads like a fine-tune's).
    """
    notes = []
    if official:
        notes.append("fine-tuned: its --checkpoint is SAM's official weights, so it is zero-shot SAM")
    if colour_prompts:
        notes.append(
            f"{', '.join(colour_prompts)}: each box's colour map is SAM's mask prompt (colour prompt)"
        )
    if colour_head is not None:
        notes.append("fine-tuned: its colour head refines the logits on the photo's colours (colour_head)")
    for flag in left_out:
        what = flag.removeprefix("--no-").replace("-", " ")  # --no-colour-head: colour head
        notes.append(f"fine-tuned: scored without the {what} its decoder.pt carries ({flag})")
    if tta:
        notes.append("every model: logits averaged over the photo and its flips (--tta)")
    if crop_fraction > 0:
        notes.append(f"every model: boxes under {crop_fraction:g} of the long side decoded on zoomed crops")
    return notes


def _outline(canvas: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(canvas, contours, -1, colour, max(1, canvas.shape[1] // 300))


def overlay(image: np.ndarray, gt: np.ndarray, pred: np.ndarray, title: str) -> np.ndarray:
    """RGB panel: prediction filled red, ground truth outlined green, title on top."""
    canvas = image.copy()
    red = np.zeros_like(canvas)
    red[..., 0] = 255
    canvas[pred] = (0.55 * canvas[pred] + 0.45 * red[pred]).astype(np.uint8)
    _outline(canvas, gt, (0, 255, 0))
    bar = np.full((28, canvas.shape[1], 3), 255, np.uint8)
    put_text(bar, title, (4, 20), 0.55, (0, 0, 0))
    return np.vstack([bar, canvas])


def overlay_counts(n_images: int, n: int) -> tuple[int, int]:
    """``(worst, best)`` overlays of a split of ``n_images`` scored images with ``--n-overlays n``.

    No photo is drawn twice: a split of fewer than ``2 * n`` images gives its best ``n`` (or all of
    them) and fewer worst, the images left.

    >>> overlay_counts(10, 4), overlay_counts(5, 4), overlay_counts(3, 4)
    ((4, 4), (1, 4), (0, 3))
    """
    best = min(n, n_images)
    return min(n, n_images - best), best


def overlays_note(n_images: int, n: int) -> str | None:
    """Why fewer than ``n`` worst overlays were drawn (:func:`overlay_counts`), or None when they all were."""
    n_worst, n_best = overlay_counts(n_images, n)
    if n_worst == n:
        return None
    return (
        f"the split's {n_images} scored images are drawn once each: {n_best} best and {n_worst} worst "
        f"overlays, not {n} of each (--n-overlays {n})"
    )


def overlay_choice(scores: list[ImageScore], n: int) -> list[tuple[str, int, ImageScore]]:
    """``(kind, rank, score)`` of the images drawn: the worst by IoU first, then the best; disjoint.

    Ranked within each list from 0 (a split of fewer than n images once numbered best_3, best_0, ...);
    how many of each: :func:`overlay_counts`.
    """
    ordered = sorted(scores, key=lambda s: s.iou)  # stable: tied images keep their split order
    n_worst, n_best = overlay_counts(len(ordered), n)
    best = ordered[len(ordered) - n_best :][::-1]
    return [("worst", rank, s) for rank, s in enumerate(ordered[:n_worst])] + [
        ("best", rank, s) for rank, s in enumerate(best)
    ]


def save_overlays(
    models: list[tuple[str, Sam]],
    ranking: ModelEvaluation,
    split: SegmentationSplit,
    embeddings: list[dict[int, ImageEmbedding]],
    out: Path,
    *,
    n: int = 4,
    heads: Mapping[str, ColourHead] | None = None,
    prompts: Mapping[str, ColourPrompt] | None = None,
) -> list[Path]:
    """Saves ground truth vs every model's prediction for the ``n`` worst and best images of ``ranking``.

    No image is drawn twice: a split of fewer than ``2 * n`` scored images has fewer worst
    (:func:`overlay_counts`).

    Overlays of an earlier evaluation into ``out`` that are not rewritten are removed.

    ``embeddings``: per model, its embeddings by image id (models with a tuned encoder have their own).
    ``heads``, ``prompts``: colour heads and colour prompts by model name (:mod:`segmentation.colour_head`,
    :mod:`segmentation.colour_prompt`).
    """
    heads, prompts = heads or {}, prompts or {}
    out.mkdir(parents=True, exist_ok=True)
    by_id = {im.image_id: im for im in split.images}
    written = []
    for kind, rank, score in overlay_choice(ranking.scores, n):
        image = by_id[score.image_id]
        rgb = load_rgb(image.path)
        gt = image.union_mask()
        panels = []
        for (name, sam), by_id_of_model in zip(models, embeddings, strict=True):
            pred, _ = predict_image(
                sam,
                image,
                by_id_of_model[image.image_id],
                colour_head=heads.get(name),
                colour_prompt=prompts.get(name),
            )
            union = pred.any(0)
            iou = np.count_nonzero(union & gt) / max(np.count_nonzero(union | gt), 1)
            panels.append(overlay(rgb, gt, union, f"{name}  IoU {iou:.3f}"))
        path = out / f"{kind}_{rank}_{image.path.stem}.png"
        png = encode_image(".png", cv2.cvtColor(np.hstack(panels), cv2.COLOR_RGB2BGR))
        written.append(atomic_write(path, png))
    # An earlier evaluation into the same folder ranked other images: its overlays would pass for these.
    for stale in {*out.glob("worst_*.png"), *out.glob("best_*.png")} - set(written):
        stale.unlink()
    return written


#: One model's embeddings of a split: per image (in split order), and per (image index, view).
ModelInputs = tuple[list[ImageEmbedding], dict[tuple[int, View], ImageEmbedding]]


def embed_for_models(
    sams: list[Sam],
    split: SegmentationSplit,
    views: list[tuple[int, View]],
    *,
    model: str,
    cache_dir: Path,
    device: torch.device | str | None = None,
    batch_size: int = 4,
    progress: bool = False,
) -> list[ModelInputs]:
    """Each model's embeddings of ``split``'s images and ``views``, through the shared cache.

    Models with one image encoder (a zero-shot SAM and a decoder tuned on it) share one set;
    a run that tuned the encoder (``train_encoder``) has its own, since the cache keys
    entries by encoder.
    """
    by_encoder: dict[str, ModelInputs] = {}
    inputs = []
    for sam in sams:
        cache = EmbeddingCache(
            cache_dir, sam, model_name=model, elsewhere="pass --cache-dir <a writable folder>"
        )
        if cache.fingerprint not in by_encoder:
            paths = [image.path for image in split.images]
            asked = paths + [split.images[index].path for index, _ in views]
            with noting_interrupts(cache, asked, [None] * len(paths) + [view for _, view in views]):
                embeddings = cache.embed(paths, batch_size=batch_size, device=device, progress=progress)
                sizes = [embedding.original_size for embedding in embeddings]
                check_image_sizes(split.images, sizes, source=split.annotation_file)
                by_view = embed_views(
                    cache, split, views, device=device, batch_size=batch_size, progress=progress
                )
            by_encoder[cache.fingerprint] = (embeddings, by_view)
        inputs.append(by_encoder[cache.fingerprint])
    return inputs


def _folds_overrides(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The training overrides ``--folds`` takes from this command's own flags and ``--set``, and those
    made of a flag by the flag as typed (``load_config``'s ``flags``: a bad ``--device`` is named so).

    ``--base-checkpoint`` was silently dropped (the rounds tuned and scored the official weights);
    ``--crop-fraction`` was too, and is the tuning's rule there, so it is refused for
    ``--set crops.max_fraction=``.

    Raises:
        UserError: ``--crop-fraction`` with ``--folds``.
    """
    if args.crop_fraction > 0:
        raise UserError(
            f"--folds tunes and scores with the config's crop rule: pass --set crops.max_fraction="
            f"{args.crop_fraction:g} instead of --crop-fraction {args.crop_fraction:g}"
        )
    for override in args.set:  # the rounds' data and folders are the command's own: these were ignored
        key = next(iter(override_keys([override])))
        if key in ("data", "out", "name", "exist_ok"):
            where = "--data" if key == "data" else "--out (the rounds train in its runs/fold<i>)"
            raise UserError(f"--folds takes its {key} from {where}: drop --set {override}")
    # the flags' paths as text, not YAML (--data 'lot #7' was refused as the override data=lot #7)
    flags = {
        text_override("data", args.data): f"--data {args.data}",
        f"device={args.device}": f"--device {args.device}",
    }
    overrides = list(flags)
    # recorded in folds.json absolute, but with any .. left (not recorded_path): the rounds' fingerprints
    # (segmentation.crossval.round_fingerprint) hash this spelling, and --resume of an earlier run keeps them;
    # a --resume naming it otherwise takes the spelling recorded (segmentation.folds.recorded_checkpoint)
    if args.base_checkpoint:
        overrides.append(text_override("checkpoint", Path(args.base_checkpoint).absolute()))
        flags[overrides[-1]] = f"--base-checkpoint {args.base_checkpoint}"
    overrides += args.set  # --set over the flags above; --model, --cache-dir and --no-progress over --set
    if args.model:
        overrides.append(text_override("model", args.model))
        flags[overrides[-1]] = f"--model {args.model}"
    if args.cache_dir:
        overrides.append(text_override("cache_dir", args.cache_dir))
        flags[overrides[-1]] = f"--cache-dir {args.cache_dir}"
    if args.no_progress:
        overrides.append("progress=false")
    return overrides, flags


def run_folds(args: argparse.Namespace) -> dict:
    """``--folds K``: fine-tune and score per round (:mod:`segmentation.crossval`); writes ``folds.json``."""
    from common.config import with_source
    from segmentation.crossval import cross_validate, earlier_run_back, stopped_in_round, summary, write_folds
    from segmentation.train_config import load_train_config

    out = Path(args.out) if args.out else Path("runs") / "sam" / f"folds_{Path(args.data).name}"
    # a killed run's hidden earlier run, shown before any refusal (cross_validate shows it after these)
    show_killed_asides(out)
    _check_arguments(args, out)
    overrides, flags = _folds_overrides(args)
    # check_settings before an earlier run in out is removed, as round 0's training would
    config = load_train_config(args.config, overrides, flags=flags)
    if args.tta and (fraction := config["crops"]["max_fraction"]) > 0:
        error = UserError(
            f"config key 'crops.max_fraction' ({fraction:g}) and --tta do not combine: drop one of them"
        )
        raise with_source(error, args.config, overrides, flags)
    data = recorded_path(args.data)
    metrics = {"data": data, "config": config, "fold_seed": args.fold_seed, "tta": args.tta}

    def finish(results: list) -> None:  # while the run's marker is in out (another --folds run is refused)
        metrics.update(summary(results))  # its "folds": K
        print(write_folds(out, metrics))

    try:
        cross_validate(
            args.data,
            args.folds,
            config,
            work=out,
            seed=args.fold_seed,
            tta=args.tta,
            resume=args.resume,
            finish=finish,
        )
    except KeyboardInterrupt as stopped:  # the rounds trained so far are kept for --resume
        if not earlier_run_back(stopped):  # none of this run's: the earlier run is back (its note said so)
            print(folds_stopped_line(in_round=stopped_in_round(stopped)), file=sys.stderr)
        raise
    print(f"\nfolds.json, folds.md, folds.png and the rounds' runs in {out}")
    return metrics


def folds_stopped_line(*, in_round: bool) -> str:
    """What a Ctrl-C of ``--folds`` says; ``in_round``: it stopped a round's training, which ``--resume``
    does not go on from (:func:`segmentation.crossval.stopped_in_round`)."""
    line = "stopped; go on from the rounds it trained with the same command and --resume"
    return f"{line} (the round it stopped in trains again from epoch 0)" if in_round else line


def run(args: argparse.Namespace) -> dict:
    """The whole evaluation behind the CLI; returns the metrics it writes to ``metrics.json``."""
    args.data = data_set_folder(args.data)  # the converter's data.yaml names its folder, as recorded
    if args.folds:
        return run_folds(args)
    out = Path(args.out) if args.out else _default_out(args)
    _check_arguments(args, out)
    # a Ctrl-C said 'interrupted' alone: an earlier evaluation left in out read as this one
    with earlier_run_note(out, until="the evaluation is complete"):
        return _evaluate(args, out)


def _evaluate(args: argparse.Namespace, out: Path) -> dict:
    """:func:`run`'s work once its arguments are checked: scores the models into ``out``."""
    device = resolve_device(args.device)
    split = _defect_split(args)
    heads = _colour_heads(args)  # reads only the checkpoint file: its errors come before any model loads
    prompts = _colour_prompts(args)  # so does this
    _note_colour_left_behind(args, prompts)
    tuned = None if args.colour_prompt else prompts.get("fine-tuned")  # --colour-prompt: asked for
    photos = [image.path for image in split.images]
    if warning := greyscale_warning(photos, colour_head=heads.get("fine-tuned"), colour_prompt=tuned):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    _note_other_crops(args)
    _warn_if_trained_on(args, split)
    models, model_name = _load_models(args, device)
    cache_dir = Path(args.cache_dir) if args.cache_dir else embeddings_root()
    crops = CropRule(args.crop_fraction) if args.crop_fraction > 0 else None
    inputs = embed_for_models(
        [sam for _, sam in models],
        split,
        crop_views(split, crops) + flip_views(split, args.tta),
        model=model_name,
        cache_dir=cache_dir,
        device=device,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    evaluations = _evaluate_models(args, models, split, inputs, heads=heads, prompts=prompts, crops=crops)
    by_id = [
        {im.image_id: emb for im, emb in zip(split.images, emb_list, strict=True)} for emb_list, _ in inputs
    ]

    def write(folder: Path) -> tuple[int, dict]:  # built hidden beside ``out``: never two evaluations mixed
        with torch.inference_mode():
            overlays = save_overlays(
                models,
                evaluations[-1],
                split,
                by_id,
                folder / "overlays",
                n=args.n_overlays,
                heads=heads,
                prompts=prompts,
            )
        return len(overlays), _write_metrics(
            args, model_name, evaluations, folder, heads.get("fine-tuned"), prompts=prompts, device=device
        )

    n_overlays, metrics = build_folder(out, write, overwrite=True)
    if note := overlays_note(len(evaluations[-1].scores), args.n_overlays):
        print(f"\nnote: {note}")
    print(f"\nmetrics, table and {n_overlays} overlays (green: ground truth, red: prediction) in {out}")
    return metrics


def _evaluate_models(
    args: argparse.Namespace,
    models: list[tuple[str, Sam]],
    split: SegmentationSplit,
    inputs: list,
    *,
    heads: dict,
    prompts: dict,
    crops: CropRule | None,
) -> list[ModelEvaluation]:
    """Each model's :func:`evaluate_model` on ``split``, given its embeddings and view embeddings."""
    with torch.inference_mode():
        return [
            evaluate_model(
                sam,
                split,
                embeddings,
                name=name,
                progress=not args.no_progress,
                crops=crops,
                view_embeddings=view_embeddings,
                tta=args.tta,
                colour_head=heads.get(name),
                colour_prompt=prompts.get(name),
            )
            for (name, sam), (embeddings, view_embeddings) in zip(models, inputs, strict=True)
        ]


def _defect_split(args: argparse.Namespace) -> SegmentationSplit:
    """The split ``--split`` names.

    Raises:
        UserError: it holds no defect image (or as :func:`segmentation.data.load_split`).
    """
    split = load_split(args.data, args.split)
    if not any(not im.is_background for im in split.images):
        way = defects_step(args.data, args.split) or f"give {split.annotation_file} annotated images"
        raise UserError(
            f"split '{args.split}' of {args.data} has no defect images to evaluate (SAM is prompted with "
            f"each defect's box): score another split with --split, or {way}"
        )
    return split


def _warn_if_trained_on(args: argparse.Namespace, split: SegmentationSplit) -> None:
    """A warning on stderr when the checkpoint's run trained on photos of ``split``."""
    run_folder = Path(args.checkpoint).parent if args.checkpoint else None
    scored = [image.path for image in split.images]
    warning = trained_overlap_warning(
        run_folder, scored, args.split, model="the decoder", progress=not args.no_progress
    )
    if warning:
        print(warning, file=sys.stderr, flush=True)


def _load_models(args: argparse.Namespace, device: torch.device) -> tuple[list[tuple[str, Sam]], str]:
    """The models to score, named (zero-shot first), and the SAM model name their cache folder uses."""
    models: list[tuple[str, Sam]] = []
    model_name = args.model
    if args.checkpoint:
        tuned, model_name = load_finetuned(
            args.checkpoint, model=args.model, device=device, base_checkpoint=args.base_checkpoint
        )
        models.append(("fine-tuned", tuned))
        if official_checkpoint(args):  # a mistake that scored SAM against itself
            print(
                f"note: --checkpoint {args.checkpoint} is SAM's official {model_name} weights, not a "
                "fine-tune: the model scored as fine-tuned is zero-shot SAM",
                file=sys.stderr,
                flush=True,
            )
    if args.compare_zero_shot or not args.checkpoint:
        model_name = model_name or DEFAULT_MODEL
        zero_shot = load_sam(model_name, args.base_checkpoint, device=device, path_option=BASE_OPTION)
        models.insert(0, ("zero-shot", zero_shot))
    return models, model_name


def official_checkpoint(args: argparse.Namespace) -> bool:
    """Whether ``--checkpoint`` is SAM's official ``--model`` weights byte for byte (``mobile_sam.pt`` with
    ``--model vit_t``): the model scored as fine-tuned is then zero-shot SAM.

    Only a full state dict can be (it needs ``--model``; a ``decoder.pt`` names its model and never is);
    :func:`segmentation.models.is_official_weights` hashes a file of the official size once per process.
    """
    return bool(args.checkpoint and args.model and is_official_weights(args.model, args.checkpoint))


def _colour_heads(args: argparse.Namespace) -> dict[str, ColourHead]:
    """The fine-tuned model's colour head by model name (``decoder.pt`` carries it), unless refused.

    Raises:
        UserError: a head together with ``--crop-fraction`` (the head works on whole-photo logits; with
            the checkpoint's colour prompt too, both named); ``--no-colour-head`` with a checkpoint that
            carries none (the flag changed nothing).
    """
    head = load_colour_head(args.checkpoint) if args.checkpoint else None
    if args.no_colour_head:
        refuse_idle_no_colour_head(head, args.checkpoint, flag="--checkpoint")
        head = None
    if head is not None and args.crop_fraction > 0:
        prompt = None if args.no_colour_prompt else load_colour_prompt(args.checkpoint)
        refuse_colour_with_crops(head, prompt, args.crop_fraction, args.checkpoint)
    return {} if head is None else {"fine-tuned": head}


def _colour_prompts(args: argparse.Namespace) -> dict[str, ColourPrompt]:
    """The colour prompt of each model by name: the ``decoder.pt``'s (unless ``--no-colour-prompt``), and
    ``--colour-prompt``'s for the rest.

    Raises:
        UserError: a colour prompt together with ``--crop-fraction`` (its maps are drawn on the whole
            photo); ``--no-colour-prompt`` with a checkpoint that carries none (the flag changed nothing).
    """
    names = (["zero-shot"] if args.compare_zero_shot or not args.checkpoint else []) + (
        ["fine-tuned"] if args.checkpoint else []
    )
    prompts = {name: ColourPrompt() for name in names} if args.colour_prompt else {}
    tuned = load_colour_prompt(args.checkpoint) if args.checkpoint else None
    if args.no_colour_prompt:
        refuse_idle_no_colour_prompt(tuned, args.checkpoint, flag="--checkpoint")
        tuned = None
    if args.colour_prompt and args.crop_fraction > 0:
        raise UserError("--colour-prompt works on the whole photo: drop --crop-fraction")
    refuse_colour_with_crops(None, tuned, args.crop_fraction, args.checkpoint)
    if tuned is not None:
        prompts["fine-tuned"] = tuned
    return prompts


def _note_colour_left_behind(args: argparse.Namespace, prompts: dict[str, ColourPrompt]) -> None:
    """A ``note:`` on stderr when ``--checkpoint`` is a full state dict whose run's ``decoder.pt``
    carries a colour head or colour prompt that it has no place for
    (:func:`segmentation.finetuned.colour_left_behind`): the split is scored without what the run's own
    evaluation applied. A ``--colour-prompt`` that draws the run's maps leaves its prompt in."""
    if args.checkpoint is None:
        return
    note = colour_left_behind(args.checkpoint, flag="--checkpoint", given_prompt=prompts.get("fine-tuned"))
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)


def _note_other_crops(args: argparse.Namespace) -> None:
    """A ``note:`` on stderr when ``--checkpoint`` is a ``decoder.pt`` tuned with another crop rule than
    ``--crop-fraction`` (its default 0 is off): small instances are then decoded another way than the
    decoder learnt them, and its figures differ without a word from its training's evaluate command."""
    tuned = tuned_crop_fraction(args.checkpoint) if args.checkpoint else None
    if tuned is not None and tuned != args.crop_fraction:
        print(
            f"note: {args.checkpoint} was tuned with crops.max_fraction={tuned:g}, scored here with "
            f"--crop-fraction {args.crop_fraction:g}: pass --crop-fraction {tuned:g} to score it as it was "
            "tuned",
            file=sys.stderr,
            flush=True,
        )


#: The flags that leave out what a ``decoder.pt`` carries, with their ``args`` names.
LEFT_OUT_FLAGS = {"--no-colour-head": "no_colour_head", "--no-colour-prompt": "no_colour_prompt"}


def _write_metrics(
    args: argparse.Namespace,
    model_name: str,
    evaluations: list[ModelEvaluation],
    out: Path,
    colour_head: ColourHead | None = None,
    *,
    prompts: Mapping[str, ColourPrompt] | None = None,
    device: torch.device | None = None,
) -> dict:
    """Writes ``metrics.json`` and ``table.md`` to ``out`` and prints the table; returns the metrics.

    ``device``: the one the models ran on (:func:`resolve_device`), recorded as the cascade records its.
    """
    prompts = prompts or {}
    official = official_checkpoint(args)
    notes = scoring_notes(
        tta=args.tta,
        crop_fraction=args.crop_fraction,
        colour_head=colour_head,
        colour_prompts=sorted(prompts),
        left_out=[flag for flag, given in LEFT_OUT_FLAGS.items() if getattr(args, given)],
        official=official,
    )
    table = format_table(evaluations)
    if notes:  # a paragraph of its own under the table
        table += "\n\n" + "\n".join(f"- {note}" for note in notes)
    metrics = {
        "data": recorded_path(args.data),
        "split": args.split,
        "model": model_name,
        "checkpoint": recorded_path(args.checkpoint) if args.checkpoint else None,  # as data
        # true: the checkpoint is SAM's official weights, so 'fine-tuned' below is zero-shot SAM (the note)
        "checkpoint_official": official,
        # the SAM weights scored (and the decoder put on); None: the official ones of ``model``
        "base_checkpoint": recorded_path(args.base_checkpoint) if args.base_checkpoint else None,
        "tta": args.tta,
        "crop_fraction": args.crop_fraction,  # 0: off; scores with and without zoomed crops differ
        "colour_head": None if colour_head is None else colour_head.to_dict(),
        "colour_prompts": {name: prompt.to_dict() for name, prompt in prompts.items()},
        # true: the --checkpoint carries one, left out (an empty record above then is no decoder's lack)
        "no_colour_head": args.no_colour_head,
        "no_colour_prompt": args.no_colour_prompt,
        "device": None if device is None else str(device),  # --device auto: what it chose (cuda:0, cpu)
        "results": {e.name: asdict(e.summary) for e in evaluations},
        "versions": package_versions(),  # the packages the figures depend on
    }
    atomic_write(out / "metrics.json", json_text(metrics, indent=1))
    atomic_write(out / "table.md", table + "\n")
    print(table)
    return metrics


#: ``--n-overlays``' default: the best and the worst images drawn.
N_OVERLAYS = 4
#: ``--batch-size``' default: images per encoder batch.
BATCH_SIZE = 4
#: ``--split``'s default: the split scored.
SPLIT = "test"
#: What an evaluation folder holds; a re-run replaces such a folder whole, and refuses any other.
EVALUATION_FILES = frozenset({"metrics.json", "table.md", "overlays"})


def _check_arguments(args: argparse.Namespace, out: Path) -> None:
    """Refuses what argparse lets through (``--batch-size 0``, an output file) before any model loads."""
    if args.folds:  # before --out is judged as a --folds run's: a K of 1 was told to choose another --out
        check_fold_count(args.folds)
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.folds and args.checkpoint:
        raise UserError("--folds fine-tunes a decoder per round: drop --checkpoint")
    if args.folds:
        _refuse_flags_folds_ignores(args)
    if args.resume and not args.folds:
        raise UserError("--resume goes on from a stopped --folds run: it applies only with --folds K")
    # path_exists: an --out that cannot be searched is named as such, not as holding no run (Python 3.13)
    if args.resume and not (path_exists(out) and out.is_dir() and any(out.iterdir()) and is_folds_run(out)):
        raise UserError(f"--resume: no earlier --folds run in {out} to go on from (drop --resume to start)")
    if args.resume:
        check_resumable(out, args.folds)  # another K: none of its rounds kept, its extra ones left over
    if args.fold_seed < 0:  # numpy's generators refuse it with a bare ValueError, after the embeddings
        raise UserError(f"--fold-seed must be an integer >= 0, got {args.fold_seed}")
    if not args.folds and (args.config or args.set):
        raise UserError(
            "--config and --set are the fine-tuning's settings: they apply only with --folds K (K >= 3; "
            "0, the default, is off)"
        )
    if args.folds and args.colour_prompt:
        raise UserError("--folds trains a colour prompt with --set colour_prompt=true: drop --colour-prompt")
    if args.folds and args.no_colour_head:
        raise UserError("--folds fits a colour head only with --set colour_head=true: drop --no-colour-head")
    if args.no_colour_head and not args.folds and not args.checkpoint:  # before any model loads
        refuse_idle_no_colour_head(None, None, flag="--checkpoint")
    if args.colour_prompt and args.no_colour_prompt:
        raise UserError("--colour-prompt and --no-colour-prompt contradict each other: drop one of them")
    if args.folds and args.no_colour_prompt:
        raise UserError(
            "--folds trains a colour prompt only with --set colour_prompt=true: drop --no-colour-prompt"
        )
    if args.no_colour_prompt and not args.folds and not args.checkpoint:  # before any model loads
        refuse_idle_no_colour_prompt(None, None, flag="--checkpoint")
    if args.compare_zero_shot and not args.folds and not args.checkpoint:  # it scored zero-shot alone
        raise UserError(
            "--compare-zero-shot scores the untuned model beside a fine-tuned one: it applies only with "
            "--checkpoint (without one, the zero-shot model is what is scored)"
        )
    if not 0 <= args.crop_fraction <= 1:
        raise UserError(f"--crop-fraction must be in [0, 1], got {args.crop_fraction}")
    if args.tta and args.crop_fraction > 0:
        raise UserError("--tta and --crop-fraction do not combine: drop one of them")
    if args.n_overlays is not None and args.n_overlays < 0:
        raise UserError(f"--n-overlays must be 0 or more, got {args.n_overlays}")
    _check_folders(args, out)
    _fill_run_defaults(args)


def _fill_run_defaults(args: argparse.Namespace) -> None:
    """``--batch-size``, ``--n-overlays`` and ``--split`` left out (None in the parser, so that ``--folds``
    refuses each given whatever its value: ``--n-overlays 4``, ``--split test`` passed, ignored):
    :data:`BATCH_SIZE`, :data:`N_OVERLAYS`, :data:`SPLIT`."""
    if args.batch_size is None:
        args.batch_size = BATCH_SIZE
    if args.n_overlays is None:
        args.n_overlays = N_OVERLAYS
    if args.split is None:
        args.split = SPLIT


def _refuse_flags_folds_ignores(args: argparse.Namespace) -> None:
    """Refuses the flags of one scoring that ``--folds`` took without a word and did not use; ``--split``,
    ``--n-overlays`` and ``--batch-size`` whatever their value (their defaults were taken without a word)."""
    if args.split is not None:  # it scored each round's test fold, whatever --split said
        raise UserError(
            f"--folds scores each round on its test fold of the pooled splits: drop --split {args.split}"
        )
    if args.n_overlays is not None:  # none are drawn: folds.png plots every test image
        raise UserError(
            f"--folds draws no overlays (folds.png plots every test image): drop --n-overlays "
            f"{args.n_overlays}"
        )
    if args.batch_size is not None:  # the rounds embedded in batches of the config's embed_batch_size
        raise UserError(
            f"--folds embeds in batches of the config's embed_batch_size: pass --set embed_batch_size="
            f"{args.batch_size} instead of --batch-size {args.batch_size}"
        )
    if args.compare_zero_shot:  # each round scores both models whatever the flag said
        raise UserError(
            "--folds scores zero-shot SAM beside the fine-tuned decoder in every round: drop "
            "--compare-zero-shot"
        )


def _check_folders(args: argparse.Namespace, out: Path) -> None:
    """Refuses an ``--out`` or ``--cache-dir`` that may not be written (in the data set, foreign files)."""
    check_output_folder(out)
    check_not_inside(out, args.data)
    if args.folds and out.is_dir() and any(out.iterdir()) and not is_folds_run(out):
        raise UserError(
            f"--out {out} holds other files than an earlier --folds run's, which a re-run replaces whole: "
            "choose another --out"
        )
    if not args.folds and out.is_dir() and not {path.name for path in out.iterdir()} <= EVALUATION_FILES:
        raise UserError(
            f"--out {out} holds other files than an earlier evaluation's, which a re-run replaces whole: "
            "choose another --out"
        )
    if args.cache_dir is not None:
        # made inside the folder the evaluation replaces whole: a re-run finds --out holding other files
        check_cache_outside(args.cache_dir, out, replaced_by="a re-run")
        check_output_folder(args.cache_dir, flag="--cache-dir")
        check_not_inside(args.cache_dir, args.data, flag="--cache-dir")  # as --out


def _default_out(args: argparse.Namespace) -> Path:
    """Beside a run's checkpoint; ``runs/sam/<name>/`` for zero-shot or a checkpoint in the shared cache."""
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    split = args.split or SPLIT  # left out: read before _check_arguments fills it (_fill_run_defaults)
    if checkpoint is not None and cache_root().resolve() not in checkpoint.resolve().parents:
        return checkpoint.parent / f"eval_{split}"
    name = checkpoint.stem if checkpoint is not None else f"zero_shot_{Path(args.data).name}"
    return Path("runs") / "sam" / name / f"eval_{split}"


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """What is scored: the data set, the weights and where the results go."""
    parser.add_argument(
        "--data",
        type=user_path,
        required=True,
        help="data set folder with annotations/ (converters), or its data.yaml",
    )
    parser.add_argument(
        "--checkpoint", type=user_path, help="decoder.pt or sam_finetuned.pth of a fine-tuning run"
    )
    parser.add_argument(
        "--model",
        choices=sorted(SAM_MODELS),
        help=f"registry model: read from decoder.pt, needed for a full state dict (sam_finetuned.pth); "
        f"without --checkpoint: {DEFAULT_MODEL}",
    )
    parser.add_argument(
        "--base-checkpoint",
        type=user_path,
        help="base SAM weights the decoder was tuned on (default: the official file)",
    )
    parser.add_argument(
        "--compare-zero-shot", action="store_true", help="also score the untuned model (with --checkpoint)"
    )
    parser.add_argument("--split", choices=SPLITS, help=f"split to score (default: {SPLIT})")
    parser.add_argument(
        "--out",
        type=user_path,
        help="output folder (default: eval_<split> beside the checkpoint; without one "
        "runs/sam/zero_shot_<data>/eval_<split>, for one in the weights cache "
        "runs/sam/<its name>/eval_<split>; with --folds runs/sam/folds_<data>)",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """How the scoring runs: embedding cache, device, batch size and overlays."""
    parser.add_argument(
        "--cache-dir",
        type=user_path,
        help="embedding cache (default: $MVTEC_FINETUNE_CACHE/embeddings if that is set, "
        "else ~/.cache/mvtec-finetune/embeddings)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--batch-size",
        type=int,
        help=f"images per encoder batch when embedding (default: {BATCH_SIZE}; with --folds: --set "
        "embed_batch_size=N)",
    )
    parser.add_argument(
        "--n-overlays",
        type=int,
        help="best and worst images drawn, each once (a split of fewer than twice as many: fewer worst; "
        f"default: {N_OVERLAYS})",
    )


def _add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    """Prompt options: zoomed crops, test-time flips and the colour head or prompt."""
    parser.add_argument(
        "--crop-fraction",
        type=float,
        default=0.0,
        help="zoomed crop for boxes whose longest side < this x the image's, e.g. 0.125 (use the "
        "value the decoder was tuned with); 0: off",
    )
    parser.add_argument(
        "--tta",
        action="store_true",
        help="test-time flips: average the logits over the image and its left-right, up-down and "
        "180-degree flips (4 encoder runs per image the first time, cached; a colour prompt is drawn on "
        "each flipped view); not with --crop-fraction",
    )
    parser.add_argument(
        "--no-colour-head",
        action="store_true",
        help="score a decoder.pt that carries a colour head (colour_head=true in training) without it; "
        "only with such a --checkpoint",
    )
    parser.add_argument(
        "--colour-prompt",
        action="store_true",
        help="give every model's box prompts their colour-distance map as SAM's mask prompt "
        "(segmentation.colour_prompt; untrained, MobileSAM reads it through its own mask path); a "
        "decoder.pt of a colour_prompt=true run applies its own without this flag",
    )
    parser.add_argument(
        "--no-colour-prompt",
        action="store_true",
        help="score a decoder.pt that carries a colour prompt (colour_prompt=true in training) without it, "
        "e.g. with --crop-fraction (which refuses it); only with such a --checkpoint",
    )


def _add_folds_arguments(parser: argparse.ArgumentParser) -> None:
    """K-fold cross-validation: rounds, seed, resume and the training settings."""
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="K-fold cross-validation over the defect images: fine-tune per round (--config, --set), "
        "score zero-shot and fine-tuned on each round's test fold; 0: off",
    )
    parser.add_argument("--fold-seed", type=int, default=0, help="seed of the folds")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --folds: go on from a stopped --folds run in --out (of the same K, fold seed and "
        "settings, or refused), keeping the rounds it trained on the same data (scored again) and training "
        "the rest",
    )
    parser.add_argument("--config", type=user_path, help="with --folds: segmentation.train config YAML")
    parser.add_argument(
        "--set",
        nargs="*",
        action="extend",  # --set a=1 --set b=2 is both, not b=2 alone
        default=[],
        metavar="KEY=VALUE",
        help="with --folds: train overrides",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=command_name("segmentation.evaluate"),
        description="Score SAM with ground-truth box prompts: IoU, Dice, instance IoU and COCO mask AP.",
        formatter_class=DefaultsHelpFormatter,
    )
    _add_model_arguments(parser)
    _add_run_arguments(parser)
    _add_prompt_arguments(parser)
    _add_folds_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    return exit_code(lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
