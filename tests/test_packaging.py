"""The core install converts masks without torch; the extras are named when a command needs them.

Builds a fresh virtual environment with ``pip install <this checkout>`` (no extras),
as a user who only converts masks would, then runs the converter commands from
it. Needs the package index (CI has it); slow (~1 min with a warm pip cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(python: Path, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    done = subprocess.run(
        [str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if check:
        assert done.returncode == 0, (
            f"{args} exited {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return done


def tracked_files() -> list[str]:
    done = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    return [name for name in done.stdout.splitlines() if (REPO / name).is_file()]


def copy_tracked(source: Path) -> Path:
    """A copy of the tracked files: pip builds in the source folder (build/, *.egg-info), and a
    user's checkout has no .venv or runs/ to carry along."""
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    return source


@pytest.fixture(scope="module")
def core_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with only the core distribution installed (not editable: what a user gets)."""
    folder = tmp_path_factory.mktemp("core-venv")
    source = copy_tracked(folder / "source")
    venv.EnvBuilder(with_pip=True).create(folder / "venv")
    python = folder / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source), cwd=folder)
    return python


@pytest.mark.slow
def test_core_install_has_no_torch(core_python: Path, tmp_path: Path) -> None:
    done = run(core_python, "-c", "import importlib.util as u; print([u.find_spec(m) is None for m in "
               "('torch', 'ultralytics', 'fastapi', 'onnxruntime')])", cwd=tmp_path)  # fmt: skip
    assert done.stdout.strip() == "[True, True, True, True]"


@pytest.mark.slow
def test_core_install_converts_masks(core_python: Path, tmp_path: Path) -> None:
    run(core_python, "-m", "converters.synthetic", "--out", "mvtec", "--no-progress", cwd=tmp_path)
    done = run(
        core_python, "-m", "converters.mvtec2yolo", "--root", "mvtec", "--out", "data", "--coco",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert "Wrote yolo, coco data set" in done.stdout
    assert (tmp_path / "data" / "data.yaml").is_file()
    assert (tmp_path / "data" / "annotations" / "instances_test.json").is_file()
    checked = run(core_python, "-m", "converters.validate", "data", cwd=tmp_path, check=False)
    assert checked.returncode == 2 and checked.stderr.strip().count("\n") == 0, checked.stderr
    assert "checking YOLO labels with ultralytics needs the 'train' extra" in checked.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "extra"),
    [("detection.train", "train"), ("segmentation.train", "train"), ("segmentation.annotate", "annotate")],
)
def test_commands_of_an_extra_name_it_in_one_line(core_python: Path, tmp_path: Path, module, extra) -> None:
    done = run(core_python, "-m", module, "--help", cwd=tmp_path, check=False)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and f"pip install '.[{extra}]' in the mvtec-finetune" in lines[0]


@pytest.mark.slow
def test_wheel_carries_the_configs_and_the_page(tmp_path: Path) -> None:
    """The commands' defaults name configs/ files (augment_policy: configs/detection/augment.yaml) and the
    annotation page serves static/: a pip-installed wheel without them breaks those commands."""
    source = copy_tracked(tmp_path / "source")
    # The building venv's setuptools, no index needed (pyproject.toml's build requirement).
    run(Path(sys.executable), "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--disable-pip-version-check", str(source), "-w", str(tmp_path / "wheel"), cwd=tmp_path)  # fmt: skip
    [wheel] = (tmp_path / "wheel").glob("mvtec_finetune-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    shipped = ("configs/", "segmentation/annotate/static/")
    data = [name for name in tracked_files() if name.startswith(shipped)]
    assert "configs/detection/augment.yaml" in data and "segmentation/annotate/static/index.html" in data
    assert [name for name in data if name not in packed] == []


@pytest.mark.slow
def test_core_install_finds_the_default_augment_policy(core_python: Path, tmp_path: Path) -> None:
    """Run from a folder that is not the checkout, the default policy file resolves to the installed copy."""
    done = run(core_python, "-c", "from common.augment_policy import load_policy; "
               "from common.config import project_path; "
               "print(load_policy(project_path('configs/detection/augment.yaml')).path.is_file())",
               cwd=tmp_path)  # fmt: skip
    assert done.stdout.strip() == "True"
