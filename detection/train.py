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

Config (:mod:`detection.train_config`): defaults (this entry point's keys plus
every ultralytics train argument), then the ``--config`` YAML, then
``key=value`` overrides; unknown keys, wrong types and values out of range are
one-line errors before anything is created. The data set's train and val
splits must hold images (ultralytics validates after every epoch). The run
folder (``project/name``) holds ``config.yaml`` (the resolved config;
``--config`` it to repeat the run), ultralytics' ``args.yaml``,
``weights/{best,last}.pt``, ``results.csv`` and plots, for YOLO-World
``text_embeddings.pt`` (+ ``.json``), the class vectors the model was trained
with, and with ``tile``/``repeat_factor`` the data the run trained on (``tiles/``,
``data.yaml`` + ``train_repeat.txt`` + ``repeat_factors.json``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from common.cli import exit_code
from common.config import save_config
from common.errors import UserError
from common.fonts import ensure_ultralytics_fonts
from detection.data import data_names, split_images
from detection.sampling import write_repeated_train_list
from detection.text_embeddings import TextEmbeddings, resolve_text_embeddings, save_table
from detection.tiling import tile_dataset
from detection.train_config import (
    build_config,
    check_config,
    data_path,
    describe_augmentation,
    ultralytics_keys,
)
from detection.weights import load_yolo, resolve_model

if TYPE_CHECKING:
    from ultralytics.engine.model import Model

#: The splits ultralytics trains on: ``train``, and ``val`` after every epoch.
TRAINING_SPLITS = ("train", "val")


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


def build_model(model: str) -> tuple[Model, bool]:
    """The ultralytics ``Model`` for ``model`` and whether it is YOLO-World.

    ``YOLO()`` picks YOLO-World by file name (``*-world*``); a renamed YOLO-World
    checkpoint (a run's ``best.pt``) is recognised by its module type.

    Raises:
        UserError: a config or weights that do not load (:func:`detection.weights.load_yolo`).
    """
    from ultralytics import YOLOWorld
    from ultralytics.nn.tasks import WorldModel

    yolo = load_yolo(model)
    is_world = isinstance(yolo.model, WorldModel)
    if is_world and not isinstance(yolo, YOLOWorld):
        yolo = YOLOWorld(model)
    return yolo, is_world


def check_training_splits(data: Path) -> None:
    """Raises :class:`UserError` unless the train and val splits of ``data`` hold images.

    ultralytics validates after every epoch, so an empty val split would fail only
    once the first epoch is over (or, worse, deep inside its data loader).
    """
    for split in TRAINING_SPLITS:
        try:
            split_images(data, split)
        except UserError as error:
            raise UserError(
                f"{error}: training needs images in both train and val; re-convert the data set with "
                "--split ratios that give each split images (e.g. --split 0.6 0.2 0.2)"
            ) from None


def run_dir(config: Mapping, model: str, data: Path) -> Path:
    """``project/name``, numbered (``name2``, ...) when taken unless ``exist_ok``."""
    from ultralytics.utils.files import increment_path

    name = config.get("name") or f"{Path(model).stem}_{data.resolve().parent.name}"
    path = increment_path(Path(config["project"]) / name, exist_ok=bool(config.get("exist_ok")))
    return Path(path).absolute()


def prepare_training_data(config: Mapping, data: Path, save_dir: Path) -> Path:
    """The ``data.yaml`` to train on: ``data``, or its tiled and/or repeat-sampled version in ``save_dir``.

    Tiling comes first, so repeat factors count tiles (a rare defect's tiles are oversampled).
    ``config`` is checked (:func:`detection.train_config.check_config`).
    """
    tile, threshold = int(config.get("tile") or 0), float(config.get("repeat_factor") or 0)
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


def class_embeddings(config: Mapping, names: list[str], model: str, is_world: bool) -> TextEmbeddings | None:
    """The class-name vectors a YOLO-World model trains with (printed); None for plain YOLO."""
    if not is_world:
        if config.get("text_embeddings"):
            print(f"note: text_embeddings ignored, {model} is plain YOLO (no text head)", flush=True)
        return None
    embeddings = resolve_text_embeddings(
        names, table=config["text_embeddings"], clip_weights=config["clip_weights"]
    )
    print(embeddings.describe(), flush=True)
    return embeddings


def start_run(config: Mapping, model: str, data: Path, embeddings: TextEmbeddings | None) -> Path:
    """Creates the run folder with ``config.yaml`` (and ``text_embeddings.pt``); returns it."""
    save_dir = run_dir(config, model, data)
    save_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, save_dir / "config.yaml")
    if embeddings is not None:
        save_table(embeddings, save_dir / "text_embeddings.pt")
    return save_dir


def train(config: Mapping) -> TrainResult:
    """Trains as ``config`` says (:func:`detection.train_config.build_config`); prints where the results are.

    Raises:
        UserError: a bad config value, data file, split, model or weights, or no text
            embeddings for a YOLO-World model; raised before any training, one line each.
    """
    config = check_config(config)
    data = data_path(config)
    names = data_names(data)
    check_training_splits(data)
    model = resolve_model(config["model"], download=bool(config["download"]))
    yolo, is_world = build_model(model)
    embeddings = class_embeddings(config, names, model, is_world)
    print(describe_augmentation(config), flush=True)

    save_dir = start_run(config, model, data, embeddings)
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
        tile=int(config["tile"]),
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
    """``--config FILE`` and ``key=value`` overrides."""
    parser = argparse.ArgumentParser(
        prog="python -m detection.train",
        description="Fine-tune YOLO-World (or plain YOLO) on a converted MVTec data set.",
    )
    parser.add_argument("--config", type=Path, help="run config YAML (configs/detection/yolo_world.yaml)")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. epochs=5 imgsz=320"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detection.train``; bad input is one ``error:`` line and exit code 2."""
    args = build_parser().parse_args(argv)
    return exit_code(lambda: train(build_config(args.config, args.overrides)))


if __name__ == "__main__":
    raise SystemExit(main())
