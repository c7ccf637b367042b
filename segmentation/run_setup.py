"""Setting up a fine-tuning of SAM's decoder: process, data, model, optimiser, run folder, embeddings.

:func:`set_up` runs everything that can fail on bad input before the run folder is written,
then fills the embedding cache (rank 0 encodes, the others read). :class:`Run` is what the
epochs of :mod:`segmentation.train` work with, :class:`RunState` where they stand.
"""

from __future__ import annotations

import hashlib
import json
import random
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from common.augment_policy import check_named_categories, geometry_settings, load_policy
from common.config import project_path
from common.data_sets import data_set_folder
from common.errors import UserError, one_line
from common.folders import path_exists
from common.io import embeddings_root, file_exists, recorded_path
from segmentation.augment import allowed_transforms
from segmentation.colour_prompt import ColourPrompt
from segmentation.crops import CropRule
from segmentation.data import (
    SegmentationSplit,
    category_difference,
    check_data_folder,
    check_image_sizes,
    check_separate_splits,
    defects_step,
    load_split,
)
from segmentation.distributed import Dist, barrier, init_distributed, local_device
from segmentation.embeddings import EmbeddingCache, ImageEmbedding, load_rgb, noting_interrupts
from segmentation.encoder_part import EncoderPart, encoder_part
from segmentation.evaluate import crop_views, resolve_device
from segmentation.finetuned import base_sha256, grey_photos, load_tuned_parts
from segmentation.instances import InstanceSet, trainable_parameters, training_samples
from segmentation.models import load_sam
from segmentation.prompts import PromptConfig
from segmentation.run_folder import check_run_dir, prepare_run_dir, read_resume_state
from segmentation.schedule import StepPlan, build_optimizer, plan_steps
from segmentation.train_config import SCHEMA, check_settings, data_categories
from segmentation.views import View

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class RunState:
    """Where a run stands; saved in ``last.pt`` after every epoch, beside the weights and optimiser.


    Attributes:
        next_epoch: 0-based index of the next epoch to train (``last.pt`` stores the last finished one).
        best_iou: best val IoU so far (epoch 0, the untuned model, included).
        stale: epochs since the best one, for early stopping.
        step: optimiser steps made.
        rows: one ``results.csv`` row per finished epoch, epoch 0 first.
    """

    next_epoch: int = 0
    best_iou: float = -1.0
    stale: int = 0
    step: int = 0
    rows: list[dict] = field(default_factory=list)


@dataclass
class Run:
    """What a fine-tuning works with once set up: process, model, data, optimiser, run folder."""

    config: dict
    world: Dist
    device: torch.device
    sam: Sam
    base_sha256: str | None
    parameters: list[torch.nn.Parameter]
    instances: InstanceSet
    val_split: SegmentationSplit
    prompt_config: PromptConfig
    plan: StepPlan
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    folder: Path
    train_embeddings: dict[tuple[int, View], ImageEmbedding]
    val_embeddings: list[ImageEmbedding]
    crops: CropRule | None = None
    val_crop_embeddings: dict[tuple[int, View], ImageEmbedding] = field(default_factory=dict)
    #: The top of the image encoder that trains; the ``*_embeddings`` then hold its cached input.
    encoder: EncoderPart | None = None
    #: :func:`split_fingerprint` of the data's train and val splits, saved in ``last.pt``.
    split: str | None = None
    #: :func:`masks_fingerprint` of the same splits' annotations, saved in ``last.pt``.
    masks: str | None = None
    #: :func:`class_names` of the same splits, saved in ``last.pt``.
    classes: dict[str, dict[int, str]] | None = None
    #: Each box prompt's colour map as SAM's mask prompt (``colour_prompt: true``).
    colour_prompt: ColourPrompt | None = None
    #: RGB photos of the train samples' views, read once (the colour prompt's input).
    photos: dict[tuple[int, View], np.ndarray] = field(default_factory=dict)

    @property
    def progress(self) -> bool:
        """Progress bars: asked for, and only from rank 0."""
        return bool(self.config["progress"]) and self.world.main

    def embedding(self, entry: ImageEmbedding) -> ImageEmbedding:
        """What the decoder takes for a cached entry: the entry, or the trained top run on its features."""
        if self.encoder is None:
            return entry
        features = entry.embedding.to(self.device)[None]
        return ImageEmbedding(self.encoder.head(self.sam, features)[0], entry.original_size, entry.input_size)

    def photo(self, image_index: int, view: View) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB of a train image in ``view`` (read once, then kept)."""
        key = (image_index, view)
        if key not in self.photos:
            self.photos[key] = view.apply(load_rgb(self.instances.split.images[image_index].path))
        return self.photos[key]

    def val_inputs(self) -> tuple[list[ImageEmbedding], dict[tuple[int, View], ImageEmbedding]]:
        """The val images' and crops' embeddings for the current weights (call without a graph)."""
        if self.encoder is None:
            return self.val_embeddings, self.val_crop_embeddings
        crops = {key: self.embedding(entry) for key, entry in self.val_crop_embeddings.items()}
        return [self.embedding(entry) for entry in self.val_embeddings], crops


def set_up_process(config: dict) -> tuple[torch.device, Dist]:
    """Picks the device, joins torchrun's process group if any, and seeds this process."""
    device = resolve_device(config["device"], what="config key 'device'")
    world = init_distributed(device)
    device = local_device(device, world)
    seed_everything(config["seed"] + world.rank)
    return device, world


def load_training_data(data: str | Path) -> tuple[SegmentationSplit, SegmentationSplit]:
    """The train and val splits of a converted data set, both checked to have defects and no photo in
    common (:func:`~segmentation.data.check_separate_splits`)."""
    train_split, val_split = load_split(data, "train"), load_split(data, "val")
    check_separate_splits([train_split, val_split])
    if train_split.n_instances == 0:
        way = defects_step(data, "train") or f"give {train_split.annotation_file} annotated images"
        raise UserError(f"the train split of {data} has no defect instances to fine-tune on: {way}")
    if val_split.n_instances == 0:
        way = defects_step(data, "val") or (
            f"give {val_split.annotation_file} annotated images (from {train_split.annotation_file.name})"
        )
        raise UserError(
            f"the val split of {data} has no defect instances: validation IoU picks the best epoch "
            f"and stops early, so {way}"
        )
    return train_split, val_split


def category_note(train: SegmentationSplit, val: SegmentationSplit, *, data: str) -> str | None:
    """A ``note:`` when the train and val COCO files list different categories; None when they agree.

    Training takes no class from them, so it goes on; it went on without a word, though
    ``segmentation.evaluate --folds`` refuses such a data set (:func:`segmentation.folds.pool_defect_images`).
    The test file, which training does not read, is not compared, and the note names the two files alone.
    """
    if (difference := category_difference([train, val])) is None:
        return None
    return (
        f"note: the train and val COCO files of {data} list different categories ({difference}): "
        "fine-tuning takes no class from them and goes on, but segmentation.evaluate --folds refuses such "
        "a data set, and each split's scores use its own names"
    )


def split_fingerprint(train: SegmentationSplit, val: SegmentationSplit) -> str:
    """sha256 of the sorted photo file names of the train and the val split.

    By file name, not path: a converter names a photo by its split-independent key, and a data set
    that moved (``--resume ... data=<where it is now>``) holds the same split.
    """
    names = {split.name: sorted(image.path.name for image in split.images) for split in (train, val)}
    return hashlib.sha256(json.dumps(names, sort_keys=True).encode()).hexdigest()


def masks_fingerprint(train: SegmentationSplit, val: SegmentationSplit) -> str:
    """sha256 of the train and val splits' annotations (class, box, mask) by photo file name.

    :func:`split_fingerprint` holds the file names alone: a data set converted again with defects
    outlined anew under the same names resumed, and compared val IoUs against two sets of masks. The
    annotations as read, not the COCO file's bytes: a conversion that writes the same masks resumes.
    """
    names = {
        split.name: sorted(
            [
                image.path.name,
                [[a["category_id"], a["bbox"], a["segmentation"]] for a in image.annotations],
            ]
            for image in split.images
        )
        for split in (train, val)
    }
    return hashlib.sha256(json.dumps(names, sort_keys=True).encode()).hexdigest()


def class_names(train: SegmentationSplit, val: SegmentationSplit) -> dict[str, dict[int, str]]:
    """The names of the classes the train and val annotations use, by split and COCO id.

    :func:`masks_fingerprint` holds each annotation's category id, not its name: a class renamed in a
    COCO file resumed. Names, not a hash, so that a refusal can say which changed; a key of its own,
    so that a ``last.pt`` written before it (its masks fingerprint unchanged) still resumes.
    """
    return {
        split.name: {
            number: split.categories[number]
            for number in sorted({a["category_id"] for image in split.images for a in image.annotations})
        }
        for split in (train, val)
    }


def check_same_split(saved: dict, split: str, *, data: str, resume: Path) -> None:
    """Refuses to resume a run whose data set was converted again into another train/val split.

    Its val IoU would be compared across two val sets in ``results.csv``, and its best epoch picked
    by that. A ``last.pt`` written before the fingerprint was recorded resumes unchecked.
    """
    if saved.get("split") not in (None, split):
        raise UserError(
            f"the train/val split of {data} is not the one {resume} was trained on (converted again "
            "with another seed or split?): start a new run without --resume, or convert the data "
            "again with the seed and split it was made with"
        )


def check_same_masks(saved: dict, masks: str, *, data: str, resume: Path) -> None:
    """Refuses to resume a run whose train/val photos' annotations changed since (:func:`masks_fingerprint`).

    A ``last.pt`` written before the fingerprint was recorded resumes unchecked.
    """
    if saved.get("masks") not in (None, masks):
        raise UserError(
            f"the train/val annotations of {data} are not the ones {resume} was trained on (defects outlined "
            "again, or given another class, under the same photos?): start a new run without --resume"
        )


def check_same_classes(saved: dict, classes: dict[str, dict[int, str]], *, data: str, resume: Path) -> None:
    """Refuses to resume a run whose train/val classes were renamed since (:func:`class_names`).

    Called after :func:`check_same_masks`, so each split's annotations use the same class ids. A
    ``last.pt`` written before the names were recorded resumes unchecked.
    """
    if saved.get("classes") in (None, classes):
        return
    renamed: dict[tuple[str, str], list[str]] = {}  # (name then, name now) -> splits
    for split, names in classes.items():
        for number, name in names.items():
            if (before := saved["classes"].get(split, {}).get(number, name)) != name:
                renamed.setdefault((before, name), []).append(split)
    changes = "; ".join(
        f"{before!r} is now {now!r} in {' and '.join(splits)}" for (before, now), splits in renamed.items()
    )
    raise UserError(
        f"the classes of {data} are not named as when {resume} was trained ({changes or 'renamed'}): "
        "start a new run without --resume, or name them back in the COCO files"
    )


def crop_rule(config: dict) -> CropRule | None:
    """The config's zoomed-crop rule, or None when ``crops.max_fraction`` is 0."""
    rule = CropRule(**config["crops"])
    return rule if rule.max_fraction > 0 else None


def augment_plan(config: dict) -> tuple[list[str], tuple[str, ...]]:
    """``(categories, cached flips/rotations they allow)``; both empty unless ``augment.enabled``."""
    settings = config["augment"]
    if not settings["enabled"]:
        return [], ()
    policy, in_data = load_policy(project_path(settings["policy"])), data_categories(config["data"])
    if settings["category"]:
        check_named_categories(policy, [settings["category"]], in_data, key="augment.category")
    categories = [settings["category"]] if settings["category"] else in_data
    return categories, allowed_transforms(geometry_settings(policy, categories))


def augment_transforms(config: dict) -> tuple[str, ...]:
    """The cached flips/rotations the data set's categories allow (empty unless ``augment.enabled``)."""
    return augment_plan(config)[1]


def augment_line(config: dict) -> str | None:
    """What ``augment.enabled`` adds, in one line; None when it is off.

    A policy that allows no label-safe view for the categories (``metal_nut``, ``cable``: flips would
    change the label, no rotation) trained on the photos as they are without a word; now a ``note:``.
    """
    categories, transforms = augment_plan(config)
    if not config["augment"]["enabled"]:
        return None
    policy, named = config["augment"]["policy"], ", ".join(categories) or "the data set"
    if not transforms:
        return (
            f"note: augment.enabled=true, but the augmentation policy {policy} allows no label-safe flip or "
            f"rotation for {named}: training on the photos as they are"
        )
    return (
        f"augmentation: {', '.join(transforms)} views of every train photo ({policy} for {named}), each "
        "encoded once into the embedding cache"
    )


def build_instances(split: SegmentationSplit, config: dict) -> InstanceSet:
    """The training samples: every instance, in each allowed view, small ones in zoomed crops."""
    return InstanceSet(
        split, training_samples(split, transforms=augment_transforms(config), crops=crop_rule(config))
    )


def load_model(config: dict, sam: Sam | None, device: torch.device) -> tuple[Sam, str | None]:
    """The model to tune on ``device`` and the sha256 of its base weights (None for a given ``sam``)."""
    if sam is not None:
        return sam.to(device), None
    sam = load_sam(config["model"], config["checkpoint"], device=device, path_option="checkpoint=PATH")
    return sam, base_sha256(config["model"], config["checkpoint"])


def restore(
    state: dict,
    *,
    sam: Sam,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    source: Path,
) -> RunState:
    """Loads a :func:`read_resume_state` into the model, optimiser and scheduler; returns where it stood.

    The configured rates win over the saved ones (:func:`keep_configured_rates`).
    """
    try:
        load_tuned_parts(sam, state)
        configured = [(group["initial_lr"], group["weight_decay"]) for group in optimizer.param_groups]
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        keep_configured_rates(optimizer, scheduler, configured)
        return RunState(
            next_epoch=int(state["epoch"]) + 1,
            best_iou=float(state["best_iou"]),
            stale=int(state["stale"]),
            step=int(state["step"]),
            rows=list(state["rows"]),
        )
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise UserError(
            f"{source} does not fit this run ({one_line(error, limit=160)}); "
            "resume with the model, train_prompt_encoder, train_transformer, train_encoder and "
            "colour_prompt it was started with"
        ) from None


def keep_configured_rates(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    configured: list[tuple[float, float]],
) -> None:
    """Puts each group's configured ``(peak lr, weight decay)`` back after a resume state was loaded.

    The saved optimiser and scheduler carry the rates the run started with, so ``--resume <run> lr=...``
    (or ``weight_decay``, ``encoder_lr``, ``colour_prompt_lr``) went on at the old rates while
    ``args.yaml`` recorded the new ones. The schedule's step is kept: the new peak follows the same curve.
    """
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for group, (peak, decay) in zip(optimizer.param_groups, configured, strict=True):
        group.update(initial_lr=peak, lr=peak * factor, weight_decay=decay)
    scheduler.base_lrs = [peak for peak, _ in configured]


def embed_splits(
    sam: Sam,
    instances: InstanceSet,
    val_split: SegmentationSplit,
    config: dict,
    world: Dist,
    device: torch.device,
) -> tuple[
    dict[tuple[int, View], ImageEmbedding], list[ImageEmbedding], dict[tuple[int, View], ImageEmbedding]
]:
    """Through the shared cache: the train samples' views, the val images and the val crops.

    With ``train_encoder`` set, the cache holds (and this returns) the input of that encoder part.
    """
    cache = EmbeddingCache(
        config["cache_dir"] or embeddings_root(),
        sam,
        model_name=config["model"],
        part=encoder_part(config["train_encoder"]),
        elsewhere="set cache_dir=<a writable folder>",
    )
    train_views = instances.views()
    val_views = [(index, View()) for index in range(len(val_split.images))]
    val_crops = crop_views(val_split, crop_rule(config))
    pairs = [(instances.split, pair) for pair in train_views] + [
        (val_split, p) for p in val_views + val_crops
    ]
    paths = [split.images[index].path for split, (index, _) in pairs]
    views = [view for _, (_, view) in pairs]
    # Rank 0 fills the cache; the others wait and then read it (no duplicated encoder work).
    if world.main:
        progress = bool(config["progress"])
        with noting_interrupts(cache, paths, views):
            embeddings = cache.embed(
                paths, views=views, batch_size=config["embed_batch_size"], device=device, progress=progress
            )
    barrier(world)
    if not world.main:
        embeddings = cache.embed(paths, views=views, device=device, progress=False)
    n_train, n_val = len(train_views), len(val_views)
    train = dict(zip(train_views, embeddings[:n_train], strict=True))
    val = embeddings[n_train : n_train + n_val]
    check_image_sizes(val_split.images, [e.original_size for e in val], source=val_split.annotation_file)
    # Flips and crops change the frame: the plain view of each train image carries its size.
    split = instances.split
    plain = [(split.images[index], entry) for (index, view), entry in train.items() if view == View()]
    images, sizes = [image for image, _ in plain], [entry.original_size for _, entry in plain]
    check_image_sizes(images, sizes, source=split.annotation_file)
    crops = dict(zip(val_crops, embeddings[n_train + n_val :], strict=True))
    return train, val, crops


def grey_data_warning(
    config: dict, photos: Sequence[str | Path], *, where: str, flag: str | None = None
) -> str | None:
    """Why ``colour_head`` / ``colour_prompt`` learn nothing from this data set, when the ``photos`` they
    learn from (``where``: which they are, ``the train split of DATA``) are grey
    (:func:`segmentation.finetuned.grey_photos`, a few spread over the list): both read each pixel's colour
    distance to its box's border, which on a grey photo is brightness alone (the commands that apply the
    ``decoder.pt`` to grey photos warn of it as well). None without either, or on colour photos.

    ``flag``: the option the command takes its training overrides after (``--set``, for
    ``segmentation.evaluate --folds``), put before the ``key=false`` it advises; None:
    ``segmentation.train``'s own ``key=value`` arguments.
    """
    keys = [key for key in ("colour_head", "colour_prompt") if config[key]]
    if not keys or (grey := grey_photos(photos)) is None:
        return None
    parts = " and ".join(key.replace("_", " ") for key in keys)
    verb = "read" if len(keys) > 1 else "reads"
    overrides = " ".join([*([flag] if flag else []), *(f"{key}=false" for key in keys)])
    return (
        f"{grey} greyscale ({where}), and the {parts} {verb} colour, which a "
        f"grey photo does not have: train without {'them' if len(keys) > 1 else 'it'} ({overrides})"
    )


def check_config(config: dict, resume: Path | None) -> None:
    """Checks ``config`` against the schema and its data set; makes its paths absolute, in place.

    Raises:
        UserError: no or a missing data set, or settings that do not go together.
    """
    SCHEMA.check(config)
    if not config.get("data"):
        raise UserError("no data set: pass data=<folder written by the converters> (or set it in the config)")
    if resume is not None and not path_exists(config["data"]):  # the run's args.yaml named it
        raise UserError(
            f"data={config['data']} ({resume / 'args.yaml'}) does not exist: if the data set moved, "
            f"go on with --resume {shlex.quote(str(resume))} data=<where it is now>"
        )
    config["data"] = data_set_folder(
        config["data"], given=f"data={config['data']}", flag="config key 'data'"
    )  # or its data.yaml
    check_data_folder(config["data"], given=f"data={config['data']}")
    # args.yaml's paths hold from any folder (--resume); out as detection.train's config.yaml project
    for key in ("data", "checkpoint", "cache_dir", "out"):
        if config[key]:
            config[key] = recorded_path(config[key])
    check_settings(config)


def set_up(
    config: dict, *, resume: Path | None, sam: Sam | None, announce: bool = True
) -> tuple[Run, RunState]:
    """Checks the config and data, loads the model and any resume state, then makes the run folder.

    ``announce``: print the lines on the data and settings (:func:`announce_data`,
    :func:`augment_line`); off in a ``--folds`` round, whose run says them once
    (:func:`segmentation.crossval.cross_validate`).
    """
    check_config(config, resume)
    check_run_dir(config, resume)
    device, world = set_up_process(config)
    saved = resume_state(config, resume)
    train_split, val_split = load_training_data(config["data"])
    announce = announce and world.main
    if announce:
        announce_data(config, train_split, val_split)
    split, masks, classes = checked_fingerprints(
        train_split, val_split, saved=saved, data=config["data"], resume=resume
    )
    instances = build_instances(train_split, config)
    if announce and (line := augment_line(config)):
        print(line, file=sys.stderr if line.startswith("note:") else sys.stdout, flush=True)
    sam, base = load_model(config, sam, device)
    encoder, parameters, plan, optimizer, scheduler = set_up_optimisation(config, sam, len(instances), world)
    state = RunState()
    if saved is not None:
        state = restore(saved, sam=sam, optimizer=optimizer, scheduler=scheduler, source=resume / "last.pt")
    # Images are first decoded here (a corrupt one is a UserError): the run folder comes after.
    train_embeddings, val_embeddings, val_crops = embed_splits(
        sam, instances, val_split, config, world, device
    )
    folder = prepare_run_dir(config, world, resume, train_images=[image.path for image in train_split.images])
    run = Run(
        config=config,
        world=world,
        device=device,
        sam=sam,
        base_sha256=base,
        parameters=parameters,
        instances=instances,
        val_split=val_split,
        prompt_config=PromptConfig(**config["prompts"]),
        plan=plan,
        optimizer=optimizer,
        scheduler=scheduler,
        folder=folder,
        train_embeddings=train_embeddings,
        val_embeddings=val_embeddings,
        crops=crop_rule(config),
        val_crop_embeddings=val_crops,
        encoder=encoder,
        split=split,
        masks=masks,
        classes=classes,
        colour_prompt=colour_prompt_of(config),
    )
    return run, state


def announce_data(config: dict, train: SegmentationSplit, val: SegmentationSplit) -> None:
    """Prints, on stderr, :func:`grey_data_warning` on the train photos and :func:`category_note`."""
    where = f"the train split of {config['data']}"
    if warning := grey_data_warning(config, [image.path for image in train.images], where=where):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if note := category_note(train, val, data=config["data"]):
        print(note, file=sys.stderr, flush=True)


def resume_state(config: dict, resume: Path | None) -> dict | None:
    """The state of the run ``resume`` goes on (:func:`read_resume_state`), checked against ``config``; None
    without ``resume``.

    Raises:
        UserError: see :func:`check_resume_epochs` and :func:`check_kept_decoder`.
    """
    if resume is None:
        return None
    saved = read_resume_state(resume)
    check_resume_epochs(config, saved, resume)
    check_kept_decoder(saved, resume)
    return saved


def checked_fingerprints(
    train: SegmentationSplit, val: SegmentationSplit, *, saved: dict | None, data: str, resume: Path | None
) -> tuple[str, str, dict[str, dict[int, str]]]:
    """:func:`split_fingerprint`, :func:`masks_fingerprint` and :func:`class_names` of the splits, checked
    against those of the run ``resume`` goes on (``saved``, its state; None: a new run).

    Raises:
        UserError: see :func:`check_same_split`, :func:`check_same_masks` and :func:`check_same_classes`.
    """
    split, masks = split_fingerprint(train, val), masks_fingerprint(train, val)
    classes = class_names(train, val)
    if saved is not None:
        check_same_split(saved, split, data=data, resume=resume)
        check_same_masks(saved, masks, data=data, resume=resume)
        check_same_classes(saved, classes, data=data, resume=resume)
    return split, masks, classes


def set_up_optimisation(config: dict, sam: Sam, n_instances: int, world: Dist) -> tuple:
    """``(encoder part, trainable parameters, step plan, optimizer, scheduler)`` the config asks for."""
    encoder = encoder_part(config["train_encoder"])
    mask_prompt = bool(config["colour_prompt"]) and config["colour_prompt_lr"] > 0
    parameters = trainable_parameters(
        sam,
        prompt_encoder=bool(config["train_prompt_encoder"]),
        transformer=bool(config["train_transformer"]),
        encoder=encoder,
        mask_prompt=mask_prompt,
    )
    plan = plan_steps(n_instances, config, world)
    own_lr = [(encoder.parameters(sam), config["encoder_lr"])] if encoder else []
    if mask_prompt:
        own_lr.append((list(sam.prompt_encoder.mask_downscaling.parameters()), config["colour_prompt_lr"]))
    optimizer, scheduler = build_optimizer(parameters, config, plan, own_lr=own_lr)
    return encoder, parameters, plan, optimizer, scheduler


def tunes_prompt_encoder(config: dict) -> bool:
    """Whether a run changes the prompt encoder (all of it, or the colour prompt's mask downscaling)."""
    return bool(config["train_prompt_encoder"]) or (
        bool(config["colour_prompt"]) and config["colour_prompt_lr"] > 0
    )


def colour_prompt_of(config: dict) -> ColourPrompt | None:
    """The colour prompt a run config asks for (``colour_prompt: true``), or None."""
    return ColourPrompt() if config["colour_prompt"] else None


def check_resume_epochs(config: dict, saved: dict, resume: Path) -> None:
    """Refuses ``epochs`` fewer than ``resume`` has trained (args.yaml would say fewer than results.csv)."""
    done = int(saved["epoch"]) + 1
    if done > config["epochs"]:
        raise UserError(
            f"epochs={config['epochs']} is fewer than the {done} epochs {resume} has trained: pass "
            f"epochs={done} or more (or leave epochs= out)"
        )


def check_kept_decoder(saved: dict, resume: Path) -> None:
    """Refuses to resume a run whose ``decoder.pt`` is gone: ``last.pt`` holds the last epoch, not the best.

    The run went on and, when no later epoch beat the lost decoder's val IoU, finished naming a
    ``decoder.pt`` that was not there (and wrote no ``sam_finetuned.pth`` of it).
    """
    best = resume / "decoder.pt"
    if not file_exists(best):
        kept = next((row["epoch"] for row in saved["rows"] if row["val_iou"] == saved["best_iou"]), 0)
        raise UserError(
            f"{best} is missing (deleted?): it held the run's best decoder (epoch {kept}, val IoU "
            f"{saved['best_iou']:.4f}), which last.pt (the last epoch's) cannot give back: start a new run "
            "without --resume"
        )
