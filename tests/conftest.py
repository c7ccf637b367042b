"""Shared test set-up: an isolated, offline ultralytics config and MVTec-tree factories."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import settings

# Before anything imports ultralytics: settings and fonts go to a throw-away
# folder, and ultralytics does not probe the network. Made only where none is set
# (xdist workers inherit the controller's) and removed at exit: one per run was left in /tmp.
if "YOLO_CONFIG_DIR" not in os.environ:
    os.environ["YOLO_CONFIG_DIR"] = tempfile.mkdtemp(prefix="yolo-config-")
    atexit.register(shutil.rmtree, os.environ["YOLO_CONFIG_DIR"], ignore_errors=True)
os.environ.setdefault("YOLO_OFFLINE", "1")

# Under pytest-xdist (`make test` runs one worker per core) each worker, and every command it starts,
# gets its share of the cores: two workers at torch's default threads would each take every core and
# run several times slower than one after the other.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

# No per-example deadline anywhere: property tests run beside torch jobs on 2 busy cores, where an
# example of 50 ms can take 300 (hypothesis' default 200 ms deadline failed a mask round trip so).
settings.register_profile("busy_cores", deadline=None)
settings.load_profile("busy_cores")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HAZELNUT = SHARED_DATA / "hazelnut_toy"


#: ultralytics' own ``_replace_image``, kept when first seen (:func:`_ultralytics_scan_put_back`).
_OWN_REPLACE_IMAGE: list = []


@pytest.fixture(autouse=True)
def _ultralytics_scan_put_back():
    """A test stopped by Ctrl-C inside a scan (``common.ultralytics_scan``) leaves ultralytics'
    ``_replace_image`` held off and a filter on its LOGGER for the process: both put back after each test.
    Imports no ultralytics; one first imported during the test gets only its own ``_replace_image`` back."""
    utils = sys.modules.get("ultralytics.data.utils")
    if utils is None:
        yield
        utils = sys.modules.get("ultralytics.data.utils")
        if utils is not None and _OWN_REPLACE_IMAGE and hasattr(utils, "_replace_image"):
            utils._replace_image = _OWN_REPLACE_IMAGE[0]
        return
    from ultralytics.utils import LOGGER

    replace, filters = getattr(utils, "_replace_image", None), list(LOGGER.filters)
    if replace is not None and not _OWN_REPLACE_IMAGE and replace.__module__ == utils.__name__:
        _OWN_REPLACE_IMAGE.append(replace)
    yield
    if replace is not None:
        utils._replace_image = replace
    LOGGER.filters[:] = filters


@pytest.fixture(autouse=True)
def _ctrl_c_raises():
    """A Ctrl-C raises KeyboardInterrupt in every test, as at a terminal: a suite started in the background
    (``nohup make test &``, a CI runner's shell) inherits SIGINT ignored, and the tests that send a real
    SIGINT (``common.cli.signals_held``, the run folders' put-backs) saw nothing arrive. Restored after."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        yield


@pytest.fixture(scope="session")
def hazelnut_root() -> Path:
    """The real hazelnut photos of ../shared/data, or a skip where they are absent."""
    if not HAZELNUT.is_dir():
        pytest.skip(f"real data not present at {HAZELNUT} (it is in CI, beside the checkout)")
    return HAZELNUT


def write_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array), path
    return path


def blob_mask(
    height: int, width: int, boxes: list[tuple[int, int, int, int]], value: int = 255
) -> np.ndarray:
    """``(H, W)`` uint8 mask with filled rectangles ``(x1, y1, x2, y2)`` (exclusive ends)."""
    mask = np.zeros((height, width), np.uint8)
    for x1, y1, x2, y2 in boxes:
        mask[y1:y2, x1:x2] = value
    return mask


def make_category(
    root: Path,
    name: str = "widget",
    *,
    defects: dict[str, list[np.ndarray]] | None = None,
    n_train_good: int = 4,
    n_test_good: int = 2,
    size: tuple[int, int] = (48, 64),
    image_ext: str = ".png",
) -> Path:
    """Writes a small MVTec-layout category; ``defects`` maps defect type to its masks.

    Images are random noise of ``size`` ``(H, W)``; returns the category folder.
    """
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    folder = root / name
    height, width = size
    if defects is None:
        defects = {
            "scratch": [blob_mask(height, width, [(5, 5, 15, 9)]) for _ in range(5)],
            "hole": [blob_mask(height, width, [(20, 20, 30, 30), (40, 5, 44, 9)]) for _ in range(5)],
        }
    for subset, count in (("train", n_train_good), ("test", n_test_good)):
        for i in range(count):
            write_image(
                folder / subset / "good" / f"{i:03d}{image_ext}", rng.integers(0, 255, (*size, 3), np.uint8)
            )
    for defect, masks in defects.items():
        for i, mask in enumerate(masks):
            write_image(
                folder / "test" / defect / f"{i:03d}{image_ext}", rng.integers(0, 255, (*size, 3), np.uint8)
            )
            write_image(folder / "ground_truth" / defect / f"{i:03d}_mask.png", mask)
    return folder


@pytest.fixture
def category_factory():
    """``make_category`` as a fixture (tests import no helpers under importlib mode)."""
    return make_category


@pytest.fixture
def mask_factory():
    """``blob_mask`` as a fixture."""
    return blob_mask


@pytest.fixture
def image_writer():
    """``write_image`` as a fixture."""
    return write_image


@pytest.fixture
def not_utf8_folder(tmp_path: Path) -> Path:
    """``tmp_path/bad\\xff``, made: a folder named in bytes no UTF-8 decoder reads (a Latin-1 name from
    an old Windows share), which Python gives as ``bad\\udcff``; skips where the file system refuses it."""
    folder = tmp_path / os.fsdecode(b"bad\xff")
    try:
        folder.mkdir()
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    return folder


@pytest.fixture
def link_loop(tmp_path: Path) -> Path:
    """``tmp_path/loop``, a symbolic link to itself: looked up, it ends in no file or folder (``ELOOP``);
    Python 3.11's ``Path.resolve`` raises a RuntimeError for a path through it."""
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    return loop


def assert_link_loop_line(err: str, given: str, loop: Path) -> None:
    """``err`` is one ``error:`` line naming ``given`` and saying that ``loop`` is a link loop."""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: ") and err.endswith(
        "is a link loop (a symbolic link that leads back to itself, to no file or folder); "
        "point it elsewhere or give another path\n"
    ), err
    real = Path(os.path.realpath(loop.parent)) / loop.name  # as Path.resolve names it
    assert given in err and (f"{loop} is a link loop" in err or f"{real} is a link loop" in err), err


@pytest.fixture
def official_vit_t(tmp_path: Path, monkeypatch) -> Path:
    """A tiny ``mobile_sam.pt`` the SAM registry takes for vit_t's official weights (its size, its sha256)."""
    import hashlib
    from dataclasses import replace

    import segmentation.models

    official = tmp_path / "mobile_sam.pt"
    official.write_bytes(b"the official weights")
    entry = segmentation.models.SAM_MODELS["vit_t"]
    spec = replace(
        entry.weights, size=official.stat().st_size, sha256=hashlib.sha256(official.read_bytes()).hexdigest()
    )
    monkeypatch.setitem(segmentation.models.SAM_MODELS, "vit_t", replace(entry, weights=spec))
    return official


def read_strict_json(path: Path) -> object:
    """A file's JSON as jq or JavaScript's ``JSON.parse`` would take it: bare NaN or Infinity fail."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{path} holds {constant}, which is not JSON")

    return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=refuse)


def without_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a container run with an arbitrary user id: no HOME, no passwd entry, no MVTEC_FINETUNE_CACHE."""
    import pwd

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("MVTEC_FINETUNE_CACHE", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)


def interrupting(function, *, after: int):
    """``function`` wrapped to raise KeyboardInterrupt (a Ctrl-C) on its call ``after + 1``, and the list
    that grows by one per call: ``(wrapped, calls)``."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        if len(calls) == after + 1:
            raise KeyboardInterrupt
        return function(*args, **kwargs)

    return counted, calls


@pytest.fixture
def strict_json():
    """``read_strict_json`` as a fixture."""
    return read_strict_json


def stock_yolo_train(data: Path, model: str, project: Path, **overrides: str) -> Path:
    """``yolo train model=... data=...`` in a subprocess: 1 epoch at 64 px on the CPU; returns the run folder.

    The stock ultralytics command, no project code in the loop: what a user types after converting.
    Fails the test with the command's output tail when it does not exit 0.
    """
    import shutil
    import subprocess
    import sys

    yolo = shutil.which("yolo", path=os.path.dirname(sys.executable)) or shutil.which("yolo")
    assert yolo, "the ultralytics 'yolo' command is not installed"
    args = {"epochs": "1", "imgsz": "64", "batch": "4", "workers": "0", "device": "cpu", "amp": "False"}
    args.update(overrides)
    command = [yolo, "train", f"model={model}", f"data={data}", f"project={project}", "name=run"]
    command += [f"{key}={value}" for key, value in args.items()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=project.parent)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = project / "run"
    assert (run / "weights" / "last.pt").is_file()
    return run


@pytest.fixture
def yolo_train():
    """``stock_yolo_train`` as a fixture."""
    return stock_yolo_train


@pytest.fixture
def unsearchable(monkeypatch):
    """Python 3.13's lookups (``Path.exists`` and kin are ``os.path``'s: False for every ``OSError``) with the
    folders given to the returned function unsearchable, as for a user without their ``x`` permission (root,
    which runs these tests, searches any folder): a lookup of anything in one raises ``PermissionError``.
    Here for every package's tests (common, detection, segmentation)."""
    blocked: list[Path] = []
    stat, lstat, access = os.stat, os.lstat, os.access

    def inside(path) -> bool:
        return isinstance(path, str | os.PathLike) and any(
            folder in Path(os.fspath(path)).absolute().parents for folder in blocked
        )

    def looked_up(real):
        def lookup(path, *args, **kwargs):
            if inside(path):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path, *args, **kwargs)

        return lookup

    monkeypatch.setattr(os, "stat", looked_up(stat))
    monkeypatch.setattr(os, "lstat", looked_up(lstat))
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: Path(path) not in blocked and access(path, mode, **kw)
    )
    for name, new in (("exists", os.path.exists), ("is_file", os.path.isfile), ("is_dir", os.path.isdir)):
        monkeypatch.setattr(Path, name, lambda self, *, follow_symlinks=True, new=new: new(self))
    monkeypatch.setattr(Path, "is_symlink", lambda self: os.path.islink(self))
    return blocked.append
