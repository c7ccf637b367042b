"""Fine-tunes YOLOE, YOLO-World or plain YOLO on a converted data set, offline-safe.

    python -m detection.train --config configs/detection/yoloe11n.yaml data=datasets/metal_nut/data.yaml
    python -m detection.train --config configs/detection/yolo11n_world.yaml data=...  # WorldDetect head
    python -m detection.train --config configs/detection/yolo_world.yaml text_embeddings=table.pt epochs=50
    python -m detection.train --config configs/detection/yolo11n.yaml     # plain YOLO11n, COCO-pretrained

One entry point for all families, on ultralytics' own trainers:

- ``model`` is an ultralytics model config (``yoloe-11n.yaml``,
  ``yolov8{n,s,m,l,x}-worldv2.yaml``, ``yolo11n.yaml``: random init, works
  offline), a project model yaml (``configs/detection/models/yolo11n-worldv2.yaml``),
  official weights (``yolov8s-worldv2.pt``, ``yoloe-11s-seg.pt``: ultralytics
  downloads them; ``yolo11n.pt``: found offline by :mod:`detection.weights`) or a
  previous run's ``best.pt``. A YOLOE segmentation checkpoint trains the
  detection yaml of its scale from its weights (ultralytics' documented way).
- ``pretrained`` (ultralytics' key) names weights a yaml model starts from:
  ``pretrained: yolo11n.pt`` (resolved offline like ``model``) gives YOLOE-11n and
  YOLO-World's head on YOLO11n every tensor of COCO-pretrained YOLO11n that fits
  (ultralytics' own transfer); the run prints how many (:mod:`detection.transfer`).
- YOLO-World and YOLOE train with :mod:`detection.world`'s trainers, whose
  class-name embeddings come from :mod:`detection.text_embeddings` (a table
  file; CLIP, or MobileCLIP for YOLOE, when on disk; with
  ``text_embeddings=auto`` fixed seeded vectors otherwise), never from a
  download; the run output names the source. Without any, the run stops before
  training with one line saying so. Plain YOLO trains with ultralytics'
  ``DetectionTrainer``.
- Augmentation follows the per-category policy (:mod:`detection.augmentation`)
  for the category the converter's ``splits.json`` names. Rotating or shearing
  box labels prints a NOTE: ultralytics turns a box as its four corners, so the
  box grows; polygon labels (``mvtec2yolo --task segment``) stay tight.
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
``weights/{best,last}.pt``, ``results.csv`` and plots, for YOLO-World and YOLOE
``text_embeddings.pt`` (+ ``.json``), the class vectors the model was trained
with, and with ``tile``/``repeat_factor`` the data the run trained on (``tiles/``,
``data.yaml`` + ``train_repeat.txt`` + ``repeat_factors.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, NoReturn

from tqdm import tqdm

from common.cli import (
    OneLineParser,
    command_name,
    exit_code,
    keep_interrupts,
    raise_swallowed_interrupt,
    user_path,
)
from common.config import project_path, save_config, with_source
from common.errors import UserError, message_line
from common.exif import directory_warnings, pil_open
from common.folders import check_not_inside, check_not_working_folder, check_output_folder
from common.fonts import ensure_ultralytics_fonts
from common.image_files import check_tiff_strips, decode_image_file
from common.images import image_size, raise_unread, read_photos
from common.io import atomic_write, expand_user, recorded_path
from common.label_cache import no_label_cache
from common.photo_sources import ULTRALYTICS_FIGURES
from common.pixels import NARROW_PHOTO_SAMPLE, warn_narrow_photos
from common.trained_images import record_trained_images
from common.ultralytics_scan import images_left_as_they_are, resaved_images_note
from detection.checkpoint_files import atomic_checkpoints, atomic_weights
from detection.data import (
    EmptySplitError,
    check_own_root,
    check_photo_type,
    check_split_labelled,
    check_splits_read,
    data_names,
    dataset_root,
    dropped_reasons,
    has_polygon_labels,
    present_split_images,
    read_data_yaml,
    split_images,
    splits_file,
    unloadable_image,
    written_by_converters,
)
from detection.embedding_table import sidecar_path
from detection.freeze_log import FreezeLog
from detection.image_level import check_class_names
from detection.sampling import write_repeated_train_list
from detection.text_embeddings import (
    CLIP_ENCODER,
    TextEmbeddingError,
    TextEmbeddings,
    resolve_text_embeddings,
    save_table,
)
from detection.tiling import tile_dataset
from detection.train_config import (
    build_config,
    check_class_indices,
    check_config,
    data_path,
    describe_augmentation,
    ultralytics_keys,
)
from detection.transfer import Transfer
from detection.weights import (
    NAME_ERRORS,
    QUERY_MARK,
    check_model_file,
    load_error_reason,
    load_yolo,
    resolve_model,
    stride_imgsz,
)

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
        embeddings: the open-vocabulary class-name embeddings used, None for plain YOLO.
        train_data: the ``data.yaml`` the trainer read (the source's, or a tiled / repeated one).
        tile: tile size of a tiled run (0: whole images); ``tile_overlap`` its overlap, ``imgsz``
            the size the model saw (tiled inference should use the same).
        transfer: what the model took over from pretrained weights (open-vocabulary trainers), or None.
    """

    save_dir: Path
    weights: Path
    metrics: dict = field(default_factory=dict)
    embeddings: TextEmbeddings | None = None
    train_data: Path | None = None
    tile: int = 0
    tile_overlap: float = 0.2
    imgsz: int = 640
    transfer: Transfer | None = None


#: Open-vocabulary families: how ``detection.train`` names them in its output.
WORLD, YOLOE_FAMILY = "YOLO-World", "YOLOE"


def build_model(model: str) -> tuple[Model, str | None]:
    """The ultralytics ``Model`` for ``model`` and its open-vocabulary family (None: plain YOLO).

    ``YOLO()`` picks YOLO-World / YOLOE by file name (``*-world*``, ``yoloe*``) for a
    yaml and by module type for a checkpoint; a renamed YOLO-World checkpoint (a run's
    ``best.pt``) is recognised by its module type.

    Raises:
        UserError: a config or weights that do not load (:func:`detection.weights.load_yolo`).
    """
    from ultralytics import YOLOWorld
    from ultralytics.nn.tasks import WorldModel, YOLOEModel

    yolo = load_yolo(model)
    if isinstance(yolo.model, WorldModel):
        return (yolo if isinstance(yolo, YOLOWorld) else YOLOWorld(model)), WORLD
    return yolo, (YOLOE_FAMILY if isinstance(yolo.model, YOLOEModel) else None)


def yoloe_detector(yolo: Model, model: str) -> str | None:
    """The detection yaml to train for a YOLOE *segmentation* checkpoint ``model``; None for anything else.

    ultralytics publishes YOLOE as segmentation checkpoints (``yoloe-11s-seg.pt``); its way to a
    detector is the detection yaml of the same scale with the checkpoint as pretrained weights
    (``model=yoloe-11s.yaml pretrained=yoloe-11s-seg.pt``), which :func:`train` then does and says.
    """
    from ultralytics.nn.tasks import YOLOESegModel

    if not isinstance(yolo.model, YOLOESegModel) or not str(model).endswith(".pt"):
        return None
    return Path(str(yolo.model.yaml.get("yaml_file", "yoloe-11s-seg.yaml"))).name.replace("-seg", "")


def resolve_pretrained(pretrained: object, download: bool) -> object:
    """ultralytics' ``pretrained``: True/False as they are; a weights name made local (``yolo11n.pt``).

    Any other name is fetched as ultralytics' trainer would (its GitHub assets), and the file is read
    once as ``model`` is, all before the run folder is made: ultralytics read it only when training
    started, so a name it could not download offline (``yolov8s-worldv2.pt``), a file that is not a
    checkpoint or a ``.yaml`` stopped with a traceback and left a run folder without weights.

    Raises:
        UserError: not a ``.pt``, not on disk nor downloadable, not an ultralytics checkpoint, or one
            of a classifier, oriented-box or pose model (:func:`check_detection_task`).
    """
    if isinstance(pretrained, bool) or pretrained is None:
        return pretrained
    path = resolve_model(str(pretrained), download=download)
    if Path(path).suffix.lower() != ".pt":
        raise UserError(
            f"config key 'pretrained': {pretrained} is not weights (.pt): it names the weights a yaml model "
            "starts from (the model itself is model=)"
        )
    if not Path(path).is_file():
        from ultralytics.utils.downloads import attempt_download_asset

        try:
            path = attempt_download_asset(path)  # what ultralytics' trainer does with it
        except NAME_ERRORS as error:
            reason = load_error_reason(error, path, is_file=False)
            raise UserError(f"config key 'pretrained': cannot get {pretrained}: {reason}") from None
        if not Path(path).is_file():
            raise UserError(
                f"config key 'pretrained': no weights file {pretrained} (not on disk, nor one of "
                "ultralytics' downloadable weights)"
            )
    try:
        yolo = load_yolo(path)
    except UserError as error:
        raise UserError(f"config key 'pretrained': {error}") from None
    # a segmentation checkpoint's detection head transfers whole (YOLOE's documented way to a detector);
    # a classifier's backbone is a start ultralytics supports (its ImageNet-trained layers, the head new)
    check_detection_task(yolo, str(pretrained), key="pretrained", tasks=("detect", "segment", "classify"))
    return path


def start_model(config: Mapping) -> tuple[str, object, Model, str | None]:
    """``(model, pretrained, yolo, family)`` for a checked config: names made local, the model built.

    A YOLOE segmentation checkpoint becomes the detection yaml of its scale with the checkpoint as
    ``pretrained`` (:func:`yoloe_detector`), said in one line.
    """
    download = bool(config["download"])
    # ultralytics would fail only once training starts (TypeError: model=... should be a *.pt), after the
    # run folder is made; names that are not on disk are resolved (and refused) below
    check_model_file(config["model"], exports=False, key="model")
    model = resolve_model(project_model(config["model"]), download=download)
    pretrained = resolve_pretrained(config["pretrained"], download)
    yolo, family = build_model(model)
    detector = yoloe_detector(yolo, model)
    if detector is None:
        check_detection_task(yolo, str(config["model"]))
        return model, checkpoint_pretrained(model, pretrained), yolo, family
    print(f"note: {Path(model).name} is a YOLOE segmentation model: training {detector} from it", flush=True)
    return (detector, model, *build_model(detector))


def checkpoint_pretrained(model: str, pretrained: object) -> object:
    """``pretrained`` for a checkpoint ``model``: its own weights (True), never another file's over them.

    ultralytics' ``Model.train`` loads a ``pretrained`` file in place of a checkpoint's own weights, so the
    open-vocabulary configs' ``pretrained: yolo11n.pt`` (meant for their yaml models) threw away a
    ``model=<run>/weights/last.pt`` (this command's way to go on from a run) or the official
    ``model=yolov8s-worldv2.pt``: 355 of its 448 tensors started untrained, silently. Said in a note.
    """
    if not str(model).lower().endswith(".pt") or not isinstance(pretrained, str | Path):
        return pretrained
    if Path(pretrained).resolve() != Path(model).resolve():
        print(
            f"note: model={Path(model).name} is a checkpoint: it starts from its own weights, not from "
            f"pretrained: {Path(pretrained).name} (weights for a yaml model, which ultralytics would load in "
            "place of the checkpoint's)",
            flush=True,
        )
    return True


def trained_names(model: str, pretrained: object, yolo: Model) -> tuple[str, list[str]] | None:
    """``(key=file, class names)`` of the weights a plain YOLO run starts from: a checkpoint ``model``'s,
    else a ``pretrained`` file's (read once more); None for a yaml model from scratch."""
    if str(model).lower().endswith(".pt"):
        return f"model={Path(model).name}", [str(n) for n in yolo.names.values()]
    if isinstance(pretrained, str | Path):
        return f"pretrained={Path(pretrained).name}", [str(n) for n in load_yolo(pretrained).names.values()]
    return None


def class_names_note(
    trained: Sequence[str], names: Sequence[str], *, weights: str, by_name: bool
) -> str | None:
    """A ``note:`` when weights of as many classes as the data set's were trained on other names.

    Training on from a ``last.pt`` whose class was renamed since said nothing. ultralytics' ``cls_remap``
    (``by_name``) copies the head's class rows to the classes of the same name (case and spaces aside):
    a renamed class starts untrained, what it learnt under its old name dropped. Where no name matches
    (or without ``cls_remap``) it copies them by position: each renamed class starts as what the model
    learnt as the old name in its place. Either way the trained model is saved with the data set's names.
    The same classes in another order are mapped by name: no note. Other counts: no note (the head's
    class rows are rebuilt).

    Args:
        trained: the checkpoint's class names, by index. names: the data set's.
        weights: how the run names the weights (``model=last.pt``).
    """

    def key(name: str) -> str:
        return str(name).strip().lower()  # as ultralytics matches them (BaseModel._remap_cls_by_names)

    old, new = [key(n) for n in trained], [key(n) for n in names]
    matched = set(old) & set(new)
    if len(old) != len(new) or old == new or (by_name and matched == set(new)):
        return None
    head = f"note: {weights} was trained on classes {list(trained)} and the data set's are {list(names)}: "
    if by_name and matched:
        renamed = [f"'{n}'" for n in names if key(n) not in old]
        dropped = ", ".join(f"'{t}'" for t in trained if key(t) not in new)
        return head + (
            f"ultralytics carries the head's classes over by name, so {', '.join(renamed)} "
            f"{'starts' if len(renamed) == 1 else 'start'} untrained (what it learnt as {dropped} is "
            "dropped); give the data set the checkpoint's names to keep it"
        )
    moved = [(t, n) for t, n in zip(trained, names, strict=True) if key(t) != key(n)]
    pairs = ", ".join(f"'{n}' as what it learnt as '{t}'" for t, n in moved)
    return head + (
        f"ultralytics carries the head's classes over by position, so it starts {pairs}, and saves the "
        "trained model with the data set's names"
    )


def check_freeze_layers(freeze: object, *, layers: int, model: str) -> None:
    """Refuses a ``freeze`` that leaves none of the model's ``layers`` to train or names layers it lacks.

    ultralytics freezes layers ``0 .. freeze-1`` (a count) or the listed indices. Every layer frozen
    stopped the run with a ``RuntimeError`` traceback once the run folder was made; an index the
    model lacks froze nothing, silently.

    Raises:
        UserError: one line naming the key, the value and the model's layer count.
    """
    if isinstance(freeze, bool) or not isinstance(freeze, int | list | tuple):
        return  # None / False: nothing frozen; other types are refused by check_config
    counted = isinstance(freeze, int)
    frozen = set(range(freeze)) if counted else {int(i) for i in freeze if isinstance(i, int | float)}
    lacking = sorted(i for i in frozen if i >= layers)
    if lacking and not counted:
        raise UserError(
            f"config key 'freeze' names layer(s) {lacking} that {model} lacks (its layers are 0-{layers - 1})"
        )
    if frozen >= set(range(layers)):
        raise UserError(
            f"config key 'freeze' ({freeze}) freezes all {layers} layers of {model}: nothing would train "
            f"(a count of at most {layers - 1})"
        )


def random_freeze_note(freeze: object, *, model: str, pretrained: object) -> str | None:
    """A note when ``freeze`` holds layers of a model that starts untrained: they stay random all run.

    A model config (``model=yolo11n.yaml``) without ``pretrained`` weights, or ``pretrained=false``, starts
    from random weights; with the configs' ``freeze: 10`` (there to keep a pretrained backbone) layers 0-9
    stayed at their random initial values for the whole run, without a word.
    """
    if isinstance(freeze, bool) or not freeze or not isinstance(freeze, int | list | tuple):
        return None  # None / False / 0 / []: nothing frozen
    if pretrained is False:
        start = "pretrained=false starts the model from random weights"
    elif str(model).lower().endswith((".yaml", ".yml")) and not isinstance(pretrained, str | Path):
        start = f"{Path(model).name} is a model config: random weights without pretrained=<weights>"
    else:
        return None
    return (
        f"note: freeze={freeze} keeps those layers at their random initial weights all run ({start}); "
        "set freeze=0, or start from trained weights (model=yolo11n.pt, or pretrained=yolo11n.pt)"
    )


def check_detection_task(
    yolo: Model, model: str, *, key: str = "model", tasks: Sequence[str] = ("detect",)
) -> None:
    """Refuses a model of another task than detection (``yolo11n-seg.pt``, ``-cls``, ``-obb``, ``-pose``).

    ultralytics trained it as its own task and stopped reading the data set (``ValueError: Segment
    dataset requires equal numbers of boxes and segments``) with a traceback, once the run folder was
    made; ``detection.evaluate`` and ``detection.predict`` refuse such weights too. As ``pretrained``
    (``key``) an oriented-box or pose checkpoint was taken without a word, its tensors of the same name
    and shape loaded into the detector (an oriented-box model's box branch, which learnt rotated boxes),
    where a detector's own weights (``yolo11n.pt``) were meant. ``tasks``: those accepted
    (``pretrained``: segmentation too, a detector with a mask branch, and a classifier, whose backbone
    is a deliberate start: ``yolo11n-cls.pt``'s ImageNet layers, 192 of yolo11n's 499 tensors).
    """
    if yolo.task not in tasks:
        raise UserError(
            f"config key '{key}': {model} holds a '{yolo.task}' model, not a detection model "
            "(detection.train fine-tunes detectors: yolo11n.pt, a YOLO-World or YOLOE config, a best.pt)"
        )


def project_model(model: str) -> str:
    """A model yaml of this project (``configs/detection/models/...``) found from any working folder."""
    return str(project_path(model)) if str(model).endswith((".yaml", ".yml")) else model


def check_training_splits(data: Path) -> None:
    """Raises :class:`UserError` unless the train and val splits of ``data`` hold images, each there.

    ultralytics validates after every epoch, so an empty val split would fail only
    once the first epoch is over (or, worse, deep inside its data loader); the images of a ``.txt``
    list that are gone it leaves out with a warning, and trains on the rest.
    """
    for split in TRAINING_SPLITS:
        try:
            present_split_images(data, split)
        except EmptySplitError as error:
            if not (written_by_converters(data) or splits_file(data)):  # a Roboflow export, say
                raise UserError(
                    f"{error}: training needs images in both train and val; give the data file a '{split}:' "
                    "folder or list of images (val: held out of train)"
                ) from None
            raise UserError(
                f"{error}: training needs images in both train and val; re-convert the data set with "
                "--split ratios that give each split images (e.g. --split 0.6 0.2 0.2)"
            ) from None
        except UserError as error:  # a moved data set (path: is absolute), not a split ratio
            raise UserError(f"{error}: training needs images in both train and val") from None
    check_train_labels(data)


def check_train_labels(data: Path) -> None:
    """Refuses a train split none of whose images has a label file where ultralytics looks for one.

    ultralytics stopped with a ``ValueError: No labels found in .../labels.cache`` traceback (after the
    run folder was made): a data set whose labels lie elsewhere than ``images/`` -> ``labels/``.
    """
    check_split_labelled(data, "train", needs="training")


def check_training_photos(data: Path) -> None:
    """Every photo of the train and val splits read from its header (a TIFF decoded by OpenCV too), before the
    model is built; those that do not read are named in one line (:func:`common.images.raise_unread`).

    A file that is no image (junk, an empty file, another program's) was named by :func:`add_callbacks`'
    check only once the model was built and ultralytics' loaders had scanned both splits.
    """
    photos = dict.fromkeys(path for split in TRAINING_SPLITS for path in split_images(data, split))
    # Headers, not pixels: a training set may hold tens of thousands of photos, which ultralytics' own scan
    # (PIL's verify of each, in threads) and every epoch read again; decoding all of them first, as
    # detection.evaluate does the split it scores, would be a pass of its own over the largest set. What a
    # header passes and that scan drops (a PNG cut short) add_callbacks' check still names before the first
    # epoch. A TIFF of a layout OpenCV decodes is read from its header too (opencv_reads_tiff); any other is
    # decoded by OpenCV: PIL reads some OpenCV cannot, which stopped the run when an epoch reached them. A bar
    # only where the pass takes a while.
    bar = tqdm(photos, desc="checking photos", unit="photo", delay=2.0, leave=False, file=sys.stderr)
    failed: dict[Path, str] = {}
    order: list[Path] = []
    read_photos(bar, training_photo_size, failed, order=order)
    raise_unread([(path, failed[path]) for path in order if path in failed])


def training_photo_size(path: Path) -> tuple[int, int]:
    """:func:`image_size` from the header; a JPEG that does not end in its end marker (one cut short) is
    decoded by OpenCV too, as ultralytics' loader will: its scan keeps it (``images_left_as_they_are``), and
    one OpenCV could not decode stopped the run in its first epoch, after the model was built ('Image Not
    Found', no reason). Only such JPEGs are decoded, and TIFFs their header does not show OpenCV reads
    (:func:`opencv_reads_tiff`): two bytes read of every other. A HEIC/HEIF photo is refused by its suffix
    (PIL here reads none: 'corrupt or not an image' was said of a phone's good photo)."""
    check_photo_type(path)
    size = image_size(path, decode=False)
    with open(path, "rb") as file:
        jpeg = file.read(2) == b"\xff\xd8"
        file.seek(-2, os.SEEK_END)
        ended = file.read(2) == b"\xff\xd9"
    if (jpeg and not ended) or (path.suffix.lower() in (".tif", ".tiff") and not opencv_reads_tiff(path)):
        import cv2

        decode_image_file(path, cv2.IMREAD_COLOR)
    return size


#: TIFF header tags and the values OpenCV's decoder (``IMREAD_COLOR``) reads, each with its default: bits
#: per sample, sample format (unsigned integers: 32-bit and floating-point samples it cannot), compression
#: (none, LZW, JPEG, deflate, PackBits), photometric interpretation, planar configuration (chunky), samples
#: per pixel (1 to 4: an RGB with two extra samples it cannot).
_OPENCV_TIFF_TAGS = {
    258: ({1, 8, 16}, 1),
    339: ({1}, 1),
    259: ({1, 5, 7, 8, 32773, 32946}, 1),
    262: ({0, 1, 2, 3, 5, 6}, None),
    284: ({1}, 1),
    277: ({1, 2, 3, 4}, 1),
}


def opencv_reads_tiff(path: Path) -> bool:
    """``path``, a TIFF that :func:`training_photo_size` has read the header of, is one untiled page of a
    layout OpenCV decodes (:data:`_OPENCV_TIFF_TAGS`) whose directory PIL reads without damage and whose
    strips all lie within the file, uncompressed ones each holding its rows
    (:func:`~common.image_files.check_tiff_strips`): its header says so, nothing is decoded. False for any
    other (then decoded by OpenCV up front, as every TIFF was: a large TIFF-only data set was decoded whole
    before training).

    A TIFF cut short whose strips' table came first names bytes past its end; one whose table came last lost
    it, or tag data past it (PIL skips that tag: a damaged directory). Any error of PIL's TIFF reader (a
    ``TypeError`` of a next page's offset past the end, which OpenCV reads past) leaves it to OpenCV's
    decode, as do tiles (OpenCV fails on some uncompressed tiled TIFFs PIL reads).

    Raises:
        UserError: an uncompressed strip that holds some bytes but fewer than its rows need (its
            StripByteCounts too small), one line naming the file: OpenCV decoded such a TIFF without a word,
            often with rows of it wrong. That of a TIFF of several pages, the first page's (the one OpenCV
            reads), is refused by the decode (:func:`~common.image_files.decode_image_file`).
    """
    try:  # not ultralytics' Image.open, which may install pi-heif; its damage is named by image_size
        with directory_warnings(path) as damaged, pil_open()(path) as image:
            pages, tags = getattr(image, "n_frames", 1), dict(image.tag_v2) if image.format == "TIFF" else {}
    except Exception:  # TypeError, KeyError, EOFError, struct.error...: OpenCV's decode decides
        return False
    if damaged or not tags or pages != 1 or 324 in tags:
        return False
    for tag, (allowed, default) in _OPENCV_TIFF_TAGS.items():
        value = tags.get(tag, default)
        values = value if isinstance(value, tuple) else (value,)
        if not values or not set(values) <= allowed:
            return False
    if not check_tiff_strips(path, tags):
        return False
    offsets, counts = tags[273], tags[279]
    return max(offset + count for offset, count in zip(offsets, counts, strict=True)) <= path.stat().st_size


def rotation_note(config: Mapping, data: Path) -> str | None:
    """A NOTE when the run rotates or shears box labels (they grow), None otherwise or with polygon labels."""
    turning = [k for k in ("degrees", "shear", "perspective") if float(config[k])]
    if not turning or has_polygon_labels(data):  # tiles keep a polygon as a polygon (detection.tiling)
        return None
    return (
        f"NOTE: {', '.join(f'{k}={config[k]}' for k in turning)} turns box labels, and a turned box is "
        "bigger than the defect in it; convert with --task segment (polygon labels: ultralytics turns the "
        "polygon and keeps its box tight) for better boxes (bench/results/detect_levers60rot_polygons.md)"
    )


def optimizer_note(config: Mapping) -> str | None:
    """A note when ``optimizer: auto`` will ignore a ``lr0`` or ``momentum`` set away from its default.

    ultralytics' ``auto`` picks the optimizer, learning rate and momentum itself and says so only in
    its own log, while the run's ``config.yaml`` records the value given as if it had been used.
    """
    from ultralytics.utils import DEFAULT_CFG_DICT

    if str(config.get("optimizer", "auto")).lower() != "auto":
        return None
    ignored = [f"{k}={config[k]}" for k in ("lr0", "momentum") if config.get(k) != DEFAULT_CFG_DICT[k]]
    if not ignored:
        return None
    return (
        f"note: {' and '.join(ignored)} will not be used: optimizer=auto picks its own learning rate and "
        "momentum (ultralytics); set optimizer=AdamW or optimizer=SGD to train with them"
    )


def accumulation_note(config: Mapping, train_images: int) -> str | None:
    """A note when ultralytics' gradient accumulation steps the optimizer less than once an epoch.

    ultralytics sums gradients over ``nbs / batch`` batches (64 images by default) before each step,
    across epochs: 15 train images at ``batch=8`` make 2 batches an epoch and one step every 4 epochs,
    so validation figures stand still in blocks of 4 and ``epochs`` buys a quarter of the steps it
    seems to. Tiled or repeat-factor runs train on another number of images: no note then.
    """
    from ultralytics.utils import DEFAULT_CFG_DICT

    batch, nbs = config.get("batch"), config.get("nbs", DEFAULT_CFG_DICT["nbs"])
    if config.get("tile") or config.get("repeat_factor") or not isinstance(batch, int) or batch <= 0:
        return None
    accumulate = max(round(nbs / batch), 1)
    per_epoch = math.ceil(train_images / batch)
    if train_images == 0 or accumulate <= per_epoch:
        return None
    return (
        f"note: {train_images} train {'image' if train_images == 1 else 'images'} at batch={batch} "
        f"{'makes' if train_images == 1 else 'make'} "
        f"{per_epoch} batch{'' if per_epoch == 1 else 'es'} an epoch, and with "
        f"nbs={nbs} ultralytics steps the optimizer once every {accumulate} batches after warmup: once every "
        f"{accumulate / per_epoch:.3g} epochs; set nbs={batch} to step after every batch"
    )


def run_dir(config: Mapping, model: str, data: Path) -> Path:
    """``project/name``, numbered (``name-2``, ...) when taken unless ``exist_ok`` (a note says so); as
    records write a path (:func:`common.io.recorded_path`: ``project=runs/../x`` kept its ``..`` in
    ``args.yaml``).

    The default name is ``<model>_<data set folder>``, the folder as the user spelt it, as
    ``segmentation.train`` names its runs: ``data=datasets/nut/data.yaml``, with ``nut`` a link to
    ``synthetic_nut``, trains into ``..._nut`` (it followed the link, to ``..._synthetic_nut``).
    """
    from ultralytics.utils.files import increment_path

    name = config.get("name") or f"{Path(model).stem}_{Path(recorded_path(data)).parent.name}"
    path = increment_path(Path(config["project"]) / name, exist_ok=bool(config.get("exist_ok")))
    if path.name != name:  # the folder the user named, or saw last time, was found only in the closing lines
        taken = recorded_path(path.with_name(name))
        print(f"note: run folder {taken} is taken (exist_ok=false): this run goes to {path.name}", flush=True)
    if QUERY_MARK in str(path):  # ultralytics' final validation reloads weights/best.pt: a traceback
        raise UserError(
            f"run folder {path} (project/name) has a '?', where ultralytics cuts a path (as a URL's query): "
            "it could not reload the weights it trained; choose a project and name without '?'"
        )
    return Path(recorded_path(path))


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


def class_embeddings(
    config: Mapping, names: list[str], yolo: Model, family: str | None
) -> TextEmbeddings | None:
    """The class-name vectors an open-vocabulary model trains with (printed); None for plain YOLO.

    YOLO-World's text model is CLIP ViT-B/32; YOLOE's the one its yaml names (``text_model``,
    MobileCLIP). Either is used only from disk (:func:`detection.text_embeddings.resolve_text_embeddings`).
    """
    if family is None:
        if config.get("text_embeddings"):
            print(
                f"note: text_embeddings ignored, {config['model']} is plain YOLO (no text head)", flush=True
            )
        return None
    encoder = getattr(yolo.model, "text_model", CLIP_ENCODER) if family == YOLOE_FAMILY else CLIP_ENCODER
    try:
        embeddings = resolve_text_embeddings(
            names,
            table=config["text_embeddings"],
            clip_weights=config["clip_weights"],
            encoder=encoder,
            family=family,
        )
    except TextEmbeddingError as error:
        weights = Path(str(config["model"]))  # a run's checkpoint: <run>/weights/<name>.pt
        own = weights.parent.parent / "text_embeddings.pt"
        if config["text_embeddings"] is not None or weights.parent.name != "weights" or not own.is_file():
            raise
        hint = f"the checkpoint's run trained with text_embeddings={own}"
        raise TextEmbeddingError(f"{error}; {hint}") from None
    print(f"{family} {embeddings.describe()}", flush=True)
    return embeddings


#: ultralytics' files in a run folder that a run may not write over: plots (:data:`ULTRALYTICS_FIGURES`,
#: only with ``plots``; batch mosaics as many as it has batches; curves and confusion matrices after its last
#: validation, so not at all when it stops early) and ``save_json``'s predictions. ``args.yaml``,
#: ``results.csv`` (which ultralytics deletes itself) and ``weights/`` (where ``model=<run>/weights/last.pt``
#: may be) are not here.
ULTRALYTICS_OUTPUTS = (*ULTRALYTICS_FIGURES, "predictions.json")


def remove_stale_files(save_dir: Path, config: Mapping, embeddings: TextEmbeddings | None) -> list[str]:
    """Removes what an earlier run in ``save_dir`` (``exist_ok``) wrote and this one will not rewrite.

    This command's own files, and ultralytics' plots (:data:`ULTRALYTICS_OUTPUTS`), which it writes over
    only when the new run makes the same ones: a plain YOLO re-run into a YOLO-World run's folder kept
    its ``text_embeddings.pt``, one without ``repeat_factor`` its repeat-sampled ``data.yaml``, one with
    ``plots=false`` (or fewer val batches, or stopped) the earlier run's confusion matrices and
    ``val_batch*.jpg``, one without ``visualize`` its ``visualizations/`` (each val photo drawn with its
    matches), and the folder misdescribed the run. In ``weights/`` only the ``save_period``
    checkpoints (``epoch*.pt``) go, which a run without it (or with another period, or fewer epochs) left
    beside its own; ``last.pt`` and ``best.pt`` are written over by ultralytics, and a ``model=`` or
    ``pretrained=`` file of the folder (``weights/last.pt`` to train on, or an ``epoch*.pt``) is this
    run's input, so it stays.

    Returns:
        The names removed, relative to ``save_dir`` (``weights/epoch5.pt``).
    """
    stale = []
    if embeddings is None:
        stale += ["text_embeddings.pt", sidecar_path("text_embeddings.pt").name]
    if not config.get("tile"):
        stale.append("tiles")
    if not config.get("repeat_factor"):
        stale += ["data.yaml", "train_repeat.txt", "repeat_factors.json"]
    removed = [name for name in stale if (save_dir / name).exists()]
    plots = {p.name for pattern in ULTRALYTICS_OUTPUTS for p in save_dir.glob(pattern) if p.is_file()}
    removed += sorted(plots)
    if (save_dir / "visualizations").is_dir():  # ``plots`` with ``visualize``: each val photo drawn
        removed.append("visualizations")
    inputs = {Path(str(config[key])).resolve() for key in ("model", "pretrained") if config.get(key)}
    epochs = [p for p in save_dir.glob("weights/epoch*.pt") if p.is_file() and p.resolve() not in inputs]
    removed += [f"weights/{p.name}" for p in sorted(epochs, key=lambda p: (len(p.name), p.name))]
    for name in removed:
        # ``cd <run>/tiles`` and a re-run there without ``tile``: the shell was left in a deleted folder
        check_not_working_folder(
            save_dir / name, removed="an earlier run's that this run removes from its folder (exist_ok)"
        )
    for name in removed:
        path = save_dir / name
        if path.is_dir() and not path.is_symlink():  # a link to a folder is unlinked, its folder kept
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def stale_names(removed: Sequence[str]) -> str:
    """:func:`remove_stale_files`' names for one line: more than three ``save_period`` checkpoints
    (one per epoch at ``save_period=1``) as their count and first and last."""
    epochs = [name for name in removed if name.startswith("weights/epoch")]
    if len(epochs) <= 3:
        return ", ".join(removed)
    others = [name for name in removed if name not in epochs]
    return ", ".join([*others, f"{len(epochs)} save_period checkpoints ({epochs[0]} to {epochs[-1]})"])


#: Keys naming a file or folder, which ``config.yaml`` records from the root of the file system.
PATH_KEYS = ("data", "model", "pretrained", "text_embeddings", "clip_weights", "augment_policy", "project")


def recorded_config(config: Mapping) -> dict:
    """``config`` with its paths made absolute, so that ``--config <run>/config.yaml`` repeats the run from
    any folder: ``data=hz`` was recorded as ``hz/data.yaml``, and the Ctrl-C line's command, pasted
    elsewhere, stopped at ``data file not found``. A name that is not a path here (``model: yolo11n.pt``
    from the weights cache, the project's ``configs/detection/augment.yaml``) stays as written."""
    recorded = dict(config)
    for key in PATH_KEYS:
        value = recorded.get(key)
        if isinstance(value, str) and value and (key == "project" or expand_user(value).exists()):
            recorded[key] = recorded_path(expand_user(value))
    return recorded


def start_run(config: Mapping, model: str, data: Path, embeddings: TextEmbeddings | None) -> Path:
    """Creates the run folder with ``config.yaml``, ``trained_images.json`` (and ``text_embeddings.pt``);
    returns it."""
    save_dir = run_dir(config, model, data)
    save_dir.mkdir(parents=True, exist_ok=True)
    if removed := remove_stale_files(save_dir, config, embeddings):
        print(
            f"note: removed the earlier run's {stale_names(removed)} from {save_dir} (exist_ok)", flush=True
        )
    save_config(recorded_config(config), save_dir / "config.yaml")
    record_trained_images(save_dir, split_images(data, "train"))  # what a later evaluation is checked against
    if embeddings is not None:
        save_table(embeddings, save_dir / "text_embeddings.pt")
    return save_dir


def train(config: Mapping) -> TrainResult:
    """Trains as ``config`` says (:func:`detection.train_config.build_config`); prints where the results are.

    Raises:
        UserError: a bad config value, data file, split, model or weights, or no text
            embeddings for a YOLO-World or YOLOE model; raised before any training, one line each.
    """
    config = check_config(config)
    data, names = checked_data(config)
    model, pretrained, yolo, family = start_model(config)
    check_started_model(config, names, model=model, pretrained=pretrained, yolo=yolo, family=family)
    config = with_stride_imgsz(config, yolo)
    embeddings = class_embeddings(config, names, yolo, family)
    print_training_notes(config, data)
    save_dir = start_run(config, model, data, embeddings)
    try:
        train_data = prepare_training_data(config, data, save_dir)
        ensure_ultralytics_fonts()
        args = {k: config[k] for k in ultralytics_keys()}
        args.update(
            data=recorded_path(train_data),  # args.yaml: as config.yaml records it (resolve() followed links)
            project=str(save_dir.parent),
            name=save_dir.name,
            exist_ok=True,
            pretrained=pretrained,
        )
        trainer = open_vocabulary_trainer(family, embeddings)
        metrics = fit(yolo, trainer, args, save_dir=save_dir, data=train_data)
    except KeyboardInterrupt:
        if not config["exist_ok"]:  # a folder it made for itself
            discard_unstarted(save_dir)
        raise
    # refused before an epoch: an image ultralytics dropped (a class id beyond names:); or stdout closed
    # ('| head -n 3'), whose exit left the folder to send the same command again to <name>-2
    except (UserError, BrokenPipeError):
        if not config["exist_ok"]:
            discard_unstarted(save_dir, say=False)  # the error line says why, or stdout is gone; no run
        raise
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
        transfer=getattr(yolo.trainer, "transfer", None),
    )
    print_summary(result, data)
    return result


def print_summary(result: TrainResult, data: Path) -> None:
    """Prints :func:`format_summary`; a Ctrl-C after the training ended, which ultralytics' final plotting
    swallowed or which came as this printed, is re-raised after a line that says the run was saved.

    It surfaced once the whole summary was printed, as ``interrupted`` alone: the run read as cut short.
    """
    try:
        raise_swallowed_interrupt()
    except KeyboardInterrupt:
        late: str | None = " (a plot ultralytics was drawing then may be missing)"
    else:
        late = None
    try:
        print(format_summary(result, data), flush=True)
    except KeyboardInterrupt:
        late = late or ""
    if late is not None:
        note = f"stopped after training ended: the run in {result.save_dir} is complete{late}"
        print(note, file=sys.stderr, flush=True)
        raise KeyboardInterrupt


def checked_data(config: Mapping) -> tuple[Path, list[str]]:
    """``(data.yaml, its class names)`` of a checked config; the data set and ``project`` are checked
    here, before a model is loaded.

    Raises:
        UserError: a bad data file, class names or training split, a ``project`` that may not be
            written or lies inside the data set, or photos of either split that do not read
            (:func:`check_training_photos`).
    """
    data = data_path(config)
    names = data_names(data)
    check_class_names(names, f"data file {data}")
    check_class_indices(config.get("classes"), names, data=data)
    root = check_own_root(data)
    check_training_splits(data)
    check_output_folder(config["project"], flag="config key 'project':")
    check_not_inside(config["project"], root, flag="value for config key 'project'")  # named by with_source
    check_training_photos(data)
    # 12-bit data in 16-bit files reads nearly black (OpenCV drops the low 8 bits); a spread of photos tells
    warn_narrow_photos(split_images(data, "train"), sample=NARROW_PHOTO_SAMPLE)
    return data, names


def check_started_model(
    config: Mapping,
    names: Sequence[str],
    *,
    model: str,
    pretrained: object,
    yolo: Model,
    family: str | None,
) -> None:
    """Checks ``config``'s ``freeze`` against the model :func:`start_model` built, and prints a note where
    its weights were trained on other class names than ``names`` or ``freeze`` holds untrained layers.

    Raises:
        UserError: a ``freeze`` that leaves no layer to train or names layers the model lacks.
    """
    # open-vocabulary heads score a class by its name's vector: a renamed class is a new name to them
    if family is None and (source := trained_names(model, pretrained, yolo)) is not None:
        note = class_names_note(source[1], names, weights=source[0], by_name=bool(config["cls_remap"]))
        if note:
            print(note, flush=True)
    check_freeze_layers(config["freeze"], layers=len(yolo.model.model), model=str(config["model"]))
    if note := random_freeze_note(config["freeze"], model=model, pretrained=pretrained):
        print(note, flush=True)


def with_stride_imgsz(config: Mapping, yolo: Model) -> Mapping:
    """``config`` with ``imgsz`` rounded up to the model's stride as ultralytics will, saying so."""
    if (imgsz := stride_imgsz(int(config["imgsz"]), yolo.model)) == config["imgsz"]:
        return config
    print(
        f"note: imgsz={config['imgsz']} is not a multiple of the model's stride: ultralytics trains at "
        f"imgsz={imgsz}, which this run records and prints",
        flush=True,
    )
    return {**config, "imgsz": imgsz}


def print_training_notes(config: Mapping, data: Path) -> None:
    """The augmentation in use, and notes on rotation, optimiser and gradient accumulation where due."""
    print(describe_augmentation(config), flush=True)
    train_images = len(split_images(data, "train"))
    notes = rotation_note(config, data), optimizer_note(config), accumulation_note(config, train_images)
    for note in notes:
        if note:
            print(note, flush=True)


def fit(yolo: Model, trainer: type | None, args: dict, *, save_dir: Path, data: Path) -> object:
    """``yolo.train`` with ``args`` (and a ``trainer`` class, unless None); returns its metrics.

    Raises:
        UserError: an image of the training data (``data``, the yaml ``args`` name) cannot be loaded,
            or ultralytics' loader left one of the train or val split out (a corrupt label), before
            the first epoch; a multi-GPU run's workers stopped (:func:`workers_stopped`).
        OSError: naming the file: one of ultralytics' own writes in place failed (``results.csv`` on a full
            disk named no file: :func:`named_write_error`).
        KeyboardInterrupt: after saying where the weights of the last finished epoch are (all epochs'
            once the last one's were saved: :func:`ended_note`). One that ultralytics' plotting swallowed
            surfaces at the next epoch, batch or save (the last epoch's validation draws the confusion
            matrix: it surfaced after ultralytics' whole final validation).
    """
    started = time.time()
    # the data set is read, never written (no label cache, no JPEG re-saved); the weights are written whole
    with (
        no_label_cache(),
        atomic_checkpoints(),
        FreezeLog() as freezing,
        run_notes() as notes,
        images_left_as_they_are(notes.resaved),
        dropped_reasons(notes.reasons),
    ):
        add_callbacks(yolo, data, notes)
        try:
            metrics = yolo.train(trainer=trainer, **args) if trainer is not None else yolo.train(**args)
        except FileNotFoundError as error:
            raise unloadable_image(error, f"the training data {data}") from None
        except OSError as error:  # ultralytics' own writes in place: results.csv appended, on a full disk
            if error.filename is not None or (named := named_write_error(error, save_dir)) is None:
                raise
            raise named from None
        except subprocess.CalledProcessError as error:  # a multi-GPU (DDP) launch whose workers stopped
            raise UserError(notes.refusal() or workers_stopped(error)) from None  # not the launch's traceback
        except KeyboardInterrupt:  # a Ctrl-C: say where the weights so far are and how to start from them
            save = bool(args.get("save", True))
            if notes.saved():
                note = ended_note(save_dir, plots=bool(args.get("plots", True)))
            else:
                note = stopped_note(save_dir, since=started, save=save)
            if note:
                print(note, file=sys.stderr, flush=True)
            raise
        summary = freezing.summary() or notes.frozen()  # a multi-GPU run's: its worker's (RunNotes)
    for line in summary:
        print(line, flush=True)
    return metrics


def workers_stopped(error: subprocess.CalledProcessError) -> str:
    """The line for a multi-GPU (DDP) run whose workers stopped without a refusal (:meth:`RunNotes.refuse`):
    a note they could not write (:meth:`RunNotes._write`), an error of ultralytics' own (a full disk as it
    appended ``results.csv``). Their output, which ultralytics does not capture, is printed above it: the
    launch's ``CalledProcessError`` traceback added nothing to it."""
    return (
        f"the multi-GPU training's worker processes stopped (exit status {error.returncode}); "
        "their output above says why"
    )


def named_write_error(error: OSError, save_dir: Path) -> OSError | None:
    """``error``, which names no file, naming the file ultralytics was writing when it was raised (an open
    file of the innermost frame that holds one: ``results.csv``, which ``BaseTrainer.save_metrics`` appends
    in place), else the run folder ``save_dir`` for a full disk or quota; None for any other error (a bug).

    A full disk refuses the appended row as the file is closed, with an OSError naming no file, which
    :func:`common.cli.exit_code` took for a bug: a traceback.
    """
    frames = []
    trace = error.__traceback__
    while trace is not None:
        frames.append(trace.tb_frame)
        trace = trace.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            name, mode = getattr(value, "name", None), getattr(value, "mode", "")
            if (
                isinstance(value, io.IOBase)
                and isinstance(name, str | os.PathLike)
                and set(str(mode)) & set("wax+")
            ):
                return OSError(error.errno, error.strerror, os.fspath(name))
    if error.errno in {errno.ENOSPC, errno.EDQUOT}:
        return OSError(error.errno, error.strerror, str(save_dir))
    return None


def add_callbacks(yolo: Model, data: Path, notes: RunNotes) -> None:
    """:func:`fit`'s callbacks on ``yolo``: the loaders checked for dropped images of ``data``, the JPEGs
    their scan would have re-saved named, the last save noted, the weights written whole, a Ctrl-C that
    ultralytics' plotting swallowed re-raised.

    A multi-GPU (DDP) run's workers run pickled copies of them (``ultralytics.utils.dist.generate_ddp_file``):
    what one changes of this process's objects there is not seen here, so they tell ``notes`` (files).
    """

    def check_loaded(loaded: object) -> None:  # ultralytics trained without a corrupt label's image
        kept = {"train": loaded.train_loader.dataset.im_files, "val": loaded.test_loader.dataset.im_files}
        try:
            check_splits_read(kept, data, notes.reasons)
        except UserError as error:
            notes.refuse(error)

    def say_resaved(loaded: object) -> None:  # once, by the process that logs (a multi-GPU run's rank 0)
        from ultralytics.utils import RANK

        if RANK in {-1, 0} and notes.resaved:
            note = resaved_images_note(notes.resaved, dataset_root(data), by="training")
            print(f"note: {note}", flush=True)

    # a Ctrl-C its plotting swallowed stops the run; first at the loaders' end: a refusal raised before it
    # removed the run folder without a word, and 'interrupted' alone followed
    yolo.add_callback("on_pretrain_routine_end", raise_swallowed_interrupt)
    yolo.add_callback("on_pretrain_routine_end", check_loaded)  # its loaders are built, no epoch run yet
    yolo.add_callback("on_pretrain_routine_end", say_resaved)  # their scans are done
    yolo.add_callback("on_model_save", notes.note_save)  # before a swallowed Ctrl-C is raised at that save
    # ultralytics runs it before it freezes layers, in this process or a multi-GPU run's rank 0, not in both
    yolo.add_callback("on_pretrain_routine_start", notes.hold_freezing)
    yolo.add_callback("on_pretrain_routine_end", notes.note_freezing)
    yolo.add_callback("on_pretrain_routine_end", atomic_weights)  # last.pt, best.pt never left cut short
    for event in ("on_train_epoch_start", "on_train_batch_start", "on_model_save"):
        yolo.add_callback(event, raise_swallowed_interrupt)


class RunNotes:
    """What :func:`fit`'s callbacks tell it: in this process, as flags; from a multi-GPU (DDP) run's
    workers, through files in ``folder``.

    Those workers run pickled copies of the callbacks (``ultralytics.utils.dist.generate_ddp_file``), whose
    changes to this process's objects the command never saw: pickling the notes for them makes ``folder``, a
    temporary one that :func:`run_notes` removes (a single-process run needs none). ``last-save``: the last
    epoch's weights (or an early stop's) were saved, ultralytics' final validation follows (a Ctrl-C after it
    named ``last.pt`` as the last finished epoch to train on from); ``refusal``: a callback's one-line error
    (the worker's traceback, then the launch's ``CalledProcessError`` traceback, were all the command said);
    ``frozen``: the worker's :class:`~detection.freeze_log.FreezeLog` summary (its ``Freezing layer`` line
    per tensor printed, and the command's ``frozen:`` line was missing: its filter saw none of them).

    ``resaved``: the JPEGs ultralytics' scans would have re-saved in place, which
    :func:`~common.ultralytics_scan.images_left_as_they_are` left as they are: :func:`fit`'s, in this process;
    in a worker, every rank, the unpickled copy's own, held off from its unpickling to the worker's end (the
    scans run before any callback a rank other than 0 runs), as is the label cache
    (:func:`~common.label_cache.no_label_cache`: rank 0 saved ``labels/<split>.cache`` in the data set).
    """

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.closed = False  # run_notes ended: a copy pickled later (a model trained again) gets no folder
        self._saved = False
        self._freezing: FreezeLog | None = None
        self.resaved: list[Path] = []
        self.reasons: dict[str, str] = {}  # why the scan left an image out (dropped_reasons)

    def __getstate__(self) -> dict:
        if self.folder is None and not self.closed:
            self.folder = notes_folder()
        return {
            "folder": self.folder,
            "closed": True,
            "_saved": False,
            "_freezing": None,
            "resaved": [],
            "reasons": {},
        }

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.folder is not None and os.environ.get("RANK", "-1") != "-1":  # torchrun's worker
            # the worker's scans run after its unpickling and before its callbacks (rank 0's alone run
            # on_pretrain_routine_start): the data set is read, never written, until the worker ends
            self._read_only = contextlib.ExitStack()
            self._read_only.enter_context(images_left_as_they_are(self.resaved))
            self._read_only.enter_context(no_label_cache())
            self._read_only.enter_context(dropped_reasons(self.reasons))

    def hold_freezing(self, trainer: object) -> None:
        """The ``on_pretrain_routine_start`` callback: in a multi-GPU run's worker (ultralytics' ``RANK``
        set; ultralytics runs it on rank 0 alone, the one that logs), a :class:`FreezeLog` of its own holds
        the freezing lines, which :func:`fit`'s, in the command, does not see. In this process fit's does."""
        from ultralytics.utils import RANK

        if RANK != -1 and self._freezing is None:
            self._freezing = FreezeLog().__enter__()

    def note_freezing(self, trainer: object) -> None:
        """The ``on_pretrain_routine_end`` callback: the worker's freezing summary (layers are frozen by
        then), kept for :meth:`frozen`."""
        if self._freezing is not None:
            self._freezing.__exit__()
            self._write("frozen", "\n".join(self._freezing.summary()))
            self._freezing = None

    def frozen(self) -> list[str]:
        """The freezing summary a worker noted with :meth:`note_freezing`; none in this process."""
        if self.folder is None or not (path := self.folder / "frozen").is_file():
            return []
        return path.read_text(encoding="utf-8").splitlines()

    def note_save(self, trainer: object) -> None:
        """The ``on_model_save`` callback; ultralytics sets ``trainer.stop`` before the last epoch's save."""
        if getattr(trainer, "stop", False):
            self._saved = True
            self._write("last-save", "")

    def saved(self) -> bool:
        return self._saved or (self.folder is not None and (self.folder / "last-save").is_file())

    def refuse(self, error: UserError) -> NoReturn:
        """Raises ``error``, kept for :meth:`refusal` first; a multi-GPU run's worker exits with status 2.

        ultralytics launches the workers with ``subprocess.run(cmd, check=True)``, their output not captured:
        each one's traceback printed before the command's one line.
        """
        self._write("refusal", str(error))
        if self.folder is not None and os.environ.get("RANK", "-1") != "-1":  # torchrun's worker
            raise SystemExit(2)
        raise error

    def refusal(self) -> str | None:
        """The error a worker's callback raised with :meth:`refuse`, if any."""
        if self.folder is None or not (path := self.folder / "refusal").is_file():
            return None
        return path.read_text(encoding="utf-8")

    def _write(self, name: str, text: str) -> None:
        if self.folder is None:  # this process: the flags tell
            return
        # whole or not at all: a rank that torchrun killed (another one failed) between write_text's
        # truncating and its writing left an empty refusal, a blank 'error: ' line. atomic_write: each rank
        # its own temporary; a full temporary folder's error names the note (it named no file: a traceback)
        if not self.folder.is_dir():  # gone: a model trained again keeps old callbacks
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                atomic_write(self.folder / name, text)
        except OSError as error:
            if os.environ.get("RANK", "-1") == "-1":  # this process: common.cli's one line names the note
                raise
            # a worker: its traceback, then the launch's, were all the command said (workers_stopped)
            line = f"a multi-GPU worker could not write its note: {error}"
            if name == "refusal":  # the reason itself, which the command would have said
                line = f"{text} ({line})"
            print(f"error: {message_line(line)}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None


def notes_folder() -> Path:
    """A new temporary folder for a multi-GPU run's :class:`RunNotes`.

    Raises:
        UserError: no usable temporary folder (Python's 'No usable temporary directory found in [...]' named
            no file), or TMPDIR's cannot be written.
    """
    try:
        return Path(tempfile.mkdtemp(prefix="detection-train-"))
    except OSError as error:
        raise UserError(
            "a multi-GPU run passes its workers' notes through a temporary folder, and none is usable "
            f"({error}): set TMPDIR to a writable folder"
        ) from None


@contextlib.contextmanager
def run_notes() -> Iterator[RunNotes]:
    """:class:`RunNotes`; the temporary folder a multi-GPU run's made for them is removed on leaving."""
    notes = RunNotes()
    try:
        yield notes
    finally:
        notes.closed = True
        if notes.folder is not None:
            shutil.rmtree(notes.folder, ignore_errors=True)  # also gone already: a cleaner of /tmp


def stopped_note(save_dir: Path, *, since: float | None = None, save: bool = True) -> str | None:
    """The line after a Ctrl-C: the last epoch's weights and a command that trains on from them, or None
    before the first epoch ended (a ``last.pt`` older than ``since``, the training's start, is an earlier
    run's in the same folder, ``exist_ok``: it was named as this run's last finished epoch).

    ultralytics' ``resume`` is refused (:func:`~detection.train_config.check_no_resume`), so the command
    starts a new schedule from those weights (``model=`` a checkpoint keeps them), in a new run folder
    (``exist_ok=false``: this one, with the weights, is kept). A ``save=false`` run (``save``, the run's
    setting) saves weights after its last epoch alone: the line names its ``results.csv``, the finished
    epochs' metrics (it said nothing); so does one stopped after an epoch's metrics, before its weights.
    """
    last = save_dir / "weights" / "last.pt"
    if not _written_since(last, since):
        if _written_since(results := save_dir / "results.csv", since):
            why = "yet" if save else "(save=false saves them after the last epoch alone)"
            return f"stopped; no weights were saved {why}; the finished epochs' metrics are in {results}"
        return None
    config = save_dir / "config.yaml"
    command = (
        f"python -m detection.train --config {quote(str(config))} model={quote(str(last))} exist_ok=false"
    )
    if (table := save_dir / "text_embeddings.pt").is_file():  # the very class vectors it trained with
        command += f" text_embeddings={quote(str(table))}"
    return f"stopped; {last} holds the last finished epoch; train on from it (a new schedule) with: {command}"


def ended_note(save_dir: Path, *, plots: bool = True) -> str:
    """The line after a Ctrl-C once the last epoch's weights were saved (it named ``last.pt`` as 'the last
    finished epoch' to train on from, as if the run were cut short).

    It names no stage: ultralytics' final validation, its ``results.png`` (``plots``, the run's setting: its
    plotting lets a Ctrl-C through) and its ``on_train_end`` follow that save, then ``Model.train`` loads
    ``best.pt``, and a Ctrl-C in any of them reaches here; one in the summary is :func:`print_summary`'s.
    """
    missing = "ultralytics' final validation, results.png and the summary"
    if not plots:
        missing = "ultralytics' final validation and the summary"
    weights = save_dir / "weights"
    return f"stopped after training ended: the run's weights are in {weights} ({missing} may be missing)"


def _written_since(path: Path, since: float | None) -> bool:
    """``path`` is a file written at ``since`` or later (any time when None): this run's, not an earlier
    one's in the same folder (``exist_ok``)."""
    return path.is_file() and (since is None or path.stat().st_mtime >= since)


def discard_unstarted(save_dir: Path, *, say: bool = True) -> None:
    """Removes the run folder of a training stopped before its first epoch's weights were saved, saying so
    unless ``say`` is False (a refusal, whose one error line is all the output).

    It held ``config.yaml`` and ``trained_images.json`` (with ultralytics' ``args.yaml``, tiles, ...) but no
    weights: it read as a run, with nothing to train on from, and the same command again trained into
    ``<name>2``. Only for a folder the run made (not ``exist_ok``), so everything in it is this run's. One
    whose ``results.csv`` says an epoch ended is kept: ``save=false`` saves weights at the last epoch alone,
    and a Ctrl-C in a later epoch removed the finished epochs' metrics.
    """
    if any((save_dir / "weights").glob("*.pt")) or (save_dir / "results.csv").is_file():
        return
    shutil.rmtree(save_dir, ignore_errors=True)
    if say:
        note = f"stopped before the first epoch's weights were saved: removed its run folder {save_dir}"
        print(note, file=sys.stderr, flush=True)


def open_vocabulary_trainer(family: str | None, embeddings: TextEmbeddings | None) -> type | None:
    """The trainer class bound to ``embeddings`` for an open-vocabulary ``family``; None: ultralytics' own."""
    from detection.world import world_trainer, yoloe_trainer

    if family is None:
        return None
    return (world_trainer if family == WORLD else yoloe_trainer)(embeddings)


def format_summary(result: TrainResult, data: Path) -> str:
    """The lines printed after training: figures, then where everything is."""
    lines = [f"Results in {result.save_dir}"]
    if result.transfer is not None:
        lines.append(f"  {result.transfer.describe()}")
    figures = {"mAP50": "metrics/mAP50(B)", "mAP50-95": "metrics/mAP50-95(B)"}
    shown = [f"{label} {result.metrics[key]:.3f}" for label, key in figures.items() if key in result.metrics]
    if shown:
        lines.append(("  val (tiles) " if result.tile else "  val ") + "  ".join(shown))
    rows = [
        (f"weights/{result.weights.name}", "trained weights (weights/last.pt: the last epoch)"),
        plots_row(result.save_dir),
        ("config.yaml", "this run's resolved config (--config it to repeat the run)"),
        ("trained_images.json", "the train photos' sha256: an evaluation warns when it scores one"),
    ]
    if result.embeddings is not None:
        rows.append(("text_embeddings.pt", "the class-name vectors this model was trained with"))
    lines += [f"  {name:<22s}{text}" for name, text in rows]
    if result.embeddings is not None and not result.embeddings.open_vocabulary:
        lines.append("  NOTE: fixed class vectors: this open-vocabulary model is a closed-set detector")
    if result.train_data is not None and result.train_data != data:
        lines.append(f"  {'trained on':<22s}{result.train_data}")
    return "\n".join([*lines, *evaluate_lines(result, data)])


def plots_row(save_dir: Path) -> tuple[str, str]:
    """The summary's row for ``results.csv`` and the plots, which a ``plots=false`` run does not draw (the row
    named ``*.png`` files that were not there)."""
    if any(save_dir.glob("*.png")):
        return "results.csv, *.png", "per-epoch losses and metrics, curves, label plots"
    return "results.csv", "per-epoch losses and metrics (no curves or label plots: plots=false)"


def evaluate_lines(result: TrainResult, data: Path) -> list[str]:
    """The closing ``evaluate with:`` line: the test split with ``--conf-from val``, or val if test is empty.

    A data set converted without a test fraction (``--split 3 1 0``) was shown a command that stopped at
    ``no images in the 'test' split``; one whose ``images/test`` was deleted (or whose ``test:`` names
    nothing, or images that are gone) a command that stopped at ``does not exist``.
    """
    data_file = recorded_path(data)  # pasted in another folder too
    command = f"python -m detection.evaluate --data {quote(data_file)} --weights {quote(str(result.weights))}"
    if result.tile:
        command += f" --tile {result.tile} --tile-overlap {result.tile_overlap:g} --imgsz {result.imgsz}"
    else:
        command += f" --imgsz {result.imgsz}"
    unusable = _unusable_split(data, "test")
    if unusable is None:
        # the image-level threshold picked on val (bench/results/detect_bench*.md)
        return [f"evaluate with: {command} --conf-from val"]
    converted = written_by_converters(data)  # a user's own data set (a Roboflow export) is not re-converted
    if isinstance(unusable, EmptySplitError) and converted:
        reason, fix = "the test split is empty", "re-convert with a test fraction (--split 0.6 0.2 0.2)"
    elif isinstance(unusable, EmptySplitError):
        reason = (
            "the test split is empty"
            if read_data_yaml(data).get("test")
            else "the data file has no test split"
        )
        fix = "give it a 'test:' of images held out of train and val"
    else:
        reason, fix = str(unusable), "restore the test images" + (" (or re-convert)" if converted else "")
    return [
        f"  NOTE: {reason}: the command below scores val, on which best.pt was chosen (an optimistic "
        f"figure); {fix} for an unbiased one",
        f"evaluate with: {command} --split val",
    ]


def _unusable_split(data: Path, split: str) -> UserError | None:
    """Why ``split`` of ``data`` cannot be scored, None when it can.

    An :class:`EmptySplitError` when the data file has no such split or it holds no image; a
    :class:`UserError` naming the path when its folder or list, or an image listed, is not there.
    """
    try:
        present_split_images(data, split)
    except UserError as error:
        return error
    return None


#: Printed by a run without ``--config``: what it starts from, and where the tried recipes are.
NO_CONFIG_NOTE = (
    "note: no --config: built-in defaults for every key not given (model yolov8s-worldv2.yaml from random "
    "weights unless model=, ultralytics' patience 100 and workers 8); the shipped recipes are "
    "configs/detection/*.yaml (make demo trains yolo11n_world.yaml)"
)


def build_parser() -> argparse.ArgumentParser:
    """``--config FILE`` and ``key=value`` overrides."""
    parser = OneLineParser(
        prog=command_name("detection.train"),
        description="Fine-tune YOLOE, YOLO-World or plain YOLO on a converted MVTec data set.",
    )
    parser.add_argument(
        "--config",
        type=user_path,
        help="run config YAML, e.g. configs/detection/yolo11n_world.yaml (make demo's recipe); "
        "without one: built-in defaults (yolov8s-worldv2.yaml from random weights)",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. epochs=5 imgsz=320"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m detection.train``; bad input is one ``error:`` line and exit code 2."""

    def work() -> None:
        # intermixed: an override after --config (epochs=1 --config C imgsz=64) was "unrecognized arguments"
        args = build_parser().parse_intermixed_args(argv)
        if args.config is None:
            print(NO_CONFIG_NOTE, flush=True)
        with keep_interrupts():  # ultralytics' plotting swallows Ctrl-C
            config = build_config(args.config, args.overrides)
            try:
                train(config)
            except UserError as error:  # project=, pretrained=, freeze=: checked against the disk and model
                raise with_source(error, args.config, args.overrides) from None

    return exit_code(work)


if __name__ == "__main__":
    raise SystemExit(main())
