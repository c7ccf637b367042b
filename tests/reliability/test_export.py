"""``python -m segmentation.export`` given bad input: one ``error:`` line, exit 2, nothing written.

Every error here is found before SAM's weights are loaded, so the children get an empty
cache (``MVTEC_FINETUNE_CACHE``): a check that slipped behind weight loading would fail with
"no verified mobile_sam.pt" instead of its own message. The exports that succeed are tested
in-process in tests/segmentation/test_export.py (a tiny SAM is no registry model).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.reliability.conftest import REPO, assert_user_error, run_cli

# Subprocess CLIs (a few seconds each).
pytestmark = pytest.mark.slow

EXPORT = "segmentation.export"


@pytest.fixture
def empty_cache(tmp_path_factory) -> dict[str, str]:
    """Environment of a child whose weight cache is empty (and outside the watched folder)."""
    return {"MVTEC_FINETUNE_CACHE": str(tmp_path_factory.mktemp("empty_cache"))}


def decoder_pt(path: Path, *, model: str = "vit_t", base_checkpoint_sha256: str | None = None) -> Path:
    """A ``decoder.pt`` as segmentation.train writes it, without weights (every check here comes first)."""
    from segmentation.finetuned import DECODER_FORMAT

    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": DECODER_FORMAT, "model": model, "mask_decoder": {}}
    torch.save({**data, "base_checkpoint_sha256": base_checkpoint_sha256}, path)
    return path


def write(content: bytes):
    def make(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    return make


@pytest.mark.parametrize(
    ("make", "extra", "fragments"),
    [
        (None, [], ["checkpoint not found", "decoder.pt"]),
        (write(b"\x00garbage" * 64), [], ["cannot read checkpoint", "decoder.pt"]),
        (write(b""), [], ["cannot read checkpoint", "decoder.pt"]),
        (decoder_pt, ["--model", "vit_b"], ["trained on model 'vit_t', not 'vit_b'"]),
        (
            lambda path: torch.save({"mask_decoder.a": torch.zeros(1)}, path) or path,
            [],
            ["full state dict", "--model"],
        ),
        (lambda path: torch.save({"a": torch.zeros(1)}, path) or path, [], ["a state dict, but of no SAM"]),
        (
            lambda path: decoder_pt(path, base_checkpoint_sha256="0" * 64),
            [],
            ["was tuned on base weights with sha256 " + "0" * 64, "--base-checkpoint"],
        ),
    ],
    ids=[
        "missing",
        "garbage",
        "empty",
        "other model",
        "full state dict without --model",
        "state dict of another network",
        "other base",
    ],
)
def test_bad_checkpoint(tmp_path, unchanged, empty_cache, make, extra, fragments):
    checkpoint = tmp_path / "run" / "decoder.pt"
    if make is not None:
        checkpoint.parent.mkdir()
        make(checkpoint)
    out = tmp_path / "decoder.onnx"
    with unchanged(tmp_path):
        result = run_cli(EXPORT, "--checkpoint", checkpoint, "--out", out, *extra, env=empty_cache)
        assert_user_error(result, *fragments)
    assert not out.exists()


def test_decoder_on_another_base_checkpoint(tmp_path, unchanged, empty_cache):
    checkpoint = decoder_pt(tmp_path / "run" / "decoder.pt", base_checkpoint_sha256="0" * 64)
    base = write(b"not the base weights")(tmp_path / "other_base.pth")
    with unchanged(tmp_path):
        args = ("--checkpoint", checkpoint, "--base-checkpoint", base, "--out", tmp_path / "d.onnx")
        assert_user_error(
            run_cli(EXPORT, *args, env=empty_cache), "was tuned on base weights", "other_base.pth"
        )


@pytest.mark.parametrize(
    ("out", "fragments"),
    [
        ("file/decoder.onnx", ["cannot create file", "file is a file, not a folder"]),
        ("folder", ["cannot write", "it is a folder"]),
        ("run/decoder.pt", ["would overwrite the input", "decoder.pt"]),
    ],
    ids=["parent is a file", "out is a folder", "out is the checkpoint"],
)
def test_bad_out(tmp_path, unchanged, empty_cache, out, fragments):
    checkpoint = decoder_pt(tmp_path / "run" / "decoder.pt")
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    with unchanged(tmp_path):
        result = run_cli(EXPORT, "--checkpoint", checkpoint, "--out", tmp_path / out, env=empty_cache)
        assert_user_error(result, *fragments)


def test_bad_opset(tmp_path, unchanged, empty_cache):
    checkpoint = decoder_pt(tmp_path / "run" / "decoder.pt")
    with unchanged(tmp_path):
        args = ("--checkpoint", checkpoint, "--out", tmp_path / "d.onnx", "--opset", "9")
        assert_user_error(run_cli(EXPORT, *args, env=empty_cache), "--opset must be in 11..20, got 9")


def test_without_onnx_names_the_extra(tmp_path, unchanged, empty_cache):
    # A sitecustomize that hides onnx and onnxruntime: find_spec gives None, import fails.
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\nsys.modules['onnx'] = None\nsys.modules['onnxruntime'] = None\n"
    )
    checkpoint = decoder_pt(tmp_path / "run" / "decoder.pt")
    env = {**empty_cache, "PYTHONPATH": os.pathsep.join([str(hide), str(REPO)])}
    with unchanged(tmp_path):
        result = run_cli(EXPORT, "--checkpoint", checkpoint, "--out", tmp_path / "d.onnx", env=env)
        assert_user_error(
            result, "needs the 'annotate' extra (onnx, onnxruntime not installed)", "install '.[annotate]'"
        )
