"""Missing optional packages are named with the extra that brings them."""

from __future__ import annotations

import importlib.util

import pytest

from common import extras
from common.errors import UserError


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        extras.importlib.util, "find_spec", lambda name: None if name == "torch" else real(name)
    )


def test_package_versions_name_python_and_each_result_package(monkeypatch) -> None:
    import platform
    from importlib import metadata

    versions = extras.package_versions()
    assert list(versions) == ["python", *extras.RESULT_PACKAGES]
    assert versions["python"] == platform.python_version() and versions["torch"] == metadata.version("torch")
    real = metadata.version

    def without_onnxruntime(name: str) -> str:
        if name == "onnxruntime":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(extras.metadata, "version", without_onnxruntime)
    assert extras.package_versions()["onnxruntime"] is None  # not installed: recorded as such


def test_complete_extras_pass() -> None:
    extras.require("train", what="training")  # the dev environment has every extra
    extras.require_for_package("annotate", "segmentation.annotate")


def test_require_names_the_extra_and_the_command(no_torch) -> None:
    with pytest.raises(UserError) as error:
        extras.require("train", what="checking labels")
    assert str(error.value) == (
        "checking labels needs the 'train' extra (torch not installed): "
        "pip install '.[train]' in the mvtec-finetune checkout"
    )


def test_library_import_raises_module_not_found(no_torch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras.sys, "argv", ["notebook.py"])
    with pytest.raises(ModuleNotFoundError, match=r"detection needs the 'train' extra \(torch"):
        extras.require_for_package("train", "detection")


@pytest.mark.parametrize("argv0", ["-m", "/venv/bin/mvtec-detect-train"])
def test_command_start_is_one_line_and_exit_2(no_torch, monkeypatch, capsys, argv0: str) -> None:
    monkeypatch.setattr(extras.sys, "argv", [argv0, "--help"])
    with pytest.raises(SystemExit) as stop:
        extras.require_for_package("train", "detection")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: detection needs the 'train' extra")
