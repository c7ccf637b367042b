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


def test_an_extra_counts_the_extras_it_includes(no_torch) -> None:
    assert "torch" in extras.missing("annotate")  # pip install '.[annotate]' brings train's torch too


@pytest.mark.parametrize(
    ("argv", "orig_argv"),
    [
        (["-m", "--help"], ["python3", "-m", "segmentation.annotate", "--help"]),
        (["/venv/bin/mvtec-annotate", "--help"], ["/venv/bin/python", "/venv/bin/mvtec-annotate", "--help"]),
    ],
)
def test_the_annotation_page_names_its_own_extra(no_torch, monkeypatch, capsys, argv, orig_argv) -> None:
    """segmentation's __init__ asks for 'train'; the page needs 'annotate' (it brings train): one install."""
    monkeypatch.setattr(extras.sys, "argv", argv)
    monkeypatch.setattr(extras.sys, "orig_argv", orig_argv)
    with pytest.raises(SystemExit) as stop:
        extras.require_for_package("train", "segmentation")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    command = "segmentation.annotate" if argv[0] == "-m" else "mvtec-annotate"
    assert err.startswith(
        f"error: {command} needs the 'annotate' extra (torch not installed): pip install '.[annotate]'"
    )
