"""What importing ``common`` (first, in every package) does to the process: third-party switches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A one-node ONNX model run on CPUs: what the SAM decoder does, in a second.
_RUN_ONNX = """
import common, numpy as np, onnxruntime
from onnx import TensorProto, helper
x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy")
graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
print(session.run(None, {"x": np.ones(1, np.float32)})[0][0], os.environ.get("ORT_DISABLE_TELEMETRY"))
"""


def _run_onnx(tmp_path: Path, **env: str) -> tuple[str, list[str]]:
    """Runs the model with an empty home and temp folder; returns stdout and what landed in them."""
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir(), temp.mkdir()
    child_env = {k: v for k, v in os.environ.items() if k not in ("CI", "ORT_DISABLE_TELEMETRY")}
    child_env.update(HOME=str(home), TMPDIR=str(temp), PYTHONPATH=str(REPO), **env)
    child_env.pop("XDG_CACHE_HOME", None)
    done = subprocess.run(
        [sys.executable, "-c", "import os" + _RUN_ONNX],
        env=child_env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    return done.stdout.strip(), written


@pytest.fixture
def onnx_runtime() -> None:
    pytest.importorskip("onnxruntime", reason="the annotate extra is not installed")
    pytest.importorskip("onnx", reason="the annotate extra is not installed")


def test_onnx_runtime_writes_no_device_id_and_no_session_file(onnx_runtime, tmp_path):
    # ONNX Runtime 1.29+ otherwise leaves home/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid
    # and tmp/.ses (it skips them itself when CI is set, hence CI removed above)
    assert _run_onnx(tmp_path) == ("1.0 1", [])


def test_a_users_own_telemetry_setting_is_kept(onnx_runtime, tmp_path):
    stdout, written = _run_onnx(tmp_path, ORT_DISABLE_TELEMETRY="0")
    assert stdout == "1.0 0"
    if not written:  # an ONNX Runtime older than 1.29 has no telemetry here
        pytest.skip("this ONNX Runtime writes no telemetry files")
    assert "home/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid" in written


def test_a_users_program_keeps_its_excepthook(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = tmp_path / "notebook.py"
    script.write_text("import sys, common\nprint(sys.excepthook is sys.__excepthook__)\n")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True"


@pytest.mark.parametrize("command", [True, False])
def test_a_command_keeps_pils_photo_size_warning_out_of_its_output(tmp_path, command):
    # PIL warns on a photo over MAX_IMAGE_PIXELS (89.5 MP) with a raw Python warning; a command's
    # photos are files the user named, so a command drops it; a user's program keeps PIL's behaviour
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = tmp_path / "big.py"
    script.write_text(
        "import sys\n"
        + ("sys.argv[0] = '-m'  # as while `python -m pkg.mod` imports pkg\n" if command else "")
        + "import common\n"
        "from PIL import Image\n"
        "from common.images import image_size\n"
        "Image.MAX_IMAGE_PIXELS = 100 * 100\n"
        f"Image.new('L', (120, 120)).save({str(tmp_path / 'big.png')!r})\n"
        f"print(image_size({str(tmp_path / 'big.png')!r}))\n"
    )
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "(120, 120)", done.stderr
    assert ("DecompressionBombWarning" in done.stderr) is not command


@pytest.mark.parametrize("variable", [None, "XDG_CONFIG_HOME", "MVTEC_FINETUNE_CACHE"])
def test_a_command_loads_a_model_with_no_home_folder(tmp_path, variable):
    # a container run with an arbitrary user id and no HOME: ultralytics' Path.home(), called as it is
    # imported (XDG_CONFIG_HOME set too), raised RuntimeError, a traceback from every command
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR")}
    env.update(PYTHONPATH=str(REPO), TMPDIR=str(tmp_path / "tmp"))
    env.pop("YOLO_CONFIG_DIR", None), env.pop("MVTEC_FINETUNE_CACHE", None)
    (tmp_path / "tmp").mkdir()
    if variable:
        env[variable] = str(tmp_path / "set")
    script = (
        "import pwd, sys\n"
        "def no_entry(uid):\n"
        "    raise KeyError(f'getpwuid(): uid not found: {uid}')\n"
        "pwd.getpwuid = no_entry\n"
        "sys.argv[0] = '-m'  # as while `python -m pkg.mod` imports pkg\n"
        "import detection\n"
        "from ultralytics import YOLO\n"
        "from ultralytics.utils import USER_CONFIG_DIR\n"
        "import matplotlib\n"
        "YOLO('yolo11n.yaml')\n"
        "print(USER_CONFIG_DIR, matplotlib.get_cachedir())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / ("set" if variable else f"tmp/mvtec-finetune-{os.getuid()}")
    assert done.stdout.splitlines()[-1].split() == [str(folder / "Ultralytics"), str(folder / "matplotlib")]
    assert "Matplotlib created a temporary cache directory" not in done.stderr
    assert (folder / "Ultralytics" / "settings.json").is_file()


def test_the_package_docstring_lists_every_module_of_common_on_one_line() -> None:
    # the list named 10 of its 22 modules: a reader looking for where a function lives was sent nowhere
    import common

    modules = sorted(path.stem for path in (REPO / "common").glob("*.py") if path.stem != "__init__")
    listed = [line.split("`")[1].removeprefix("common.") for line in common.__doc__.splitlines()
              if line.startswith("- :mod:`common.")]  # fmt: skip
    assert sorted(listed) == modules
