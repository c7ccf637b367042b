"""inspection.checkpoints: what the messages of a SAM checkpoint that cannot be loaded name."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from common.weights import CheckpointError
from inspection.checkpoints import check_sam_checkpoint, load_sam_checkpoint
from segmentation.finetuned import save_decoder
from tests.segmentation.conftest import build_tiny_sam


@pytest.mark.parametrize("sam", ["decoder.pt", None], ids=["decoder on the official base", "zero-shot"])
def test_missing_official_weights_name_the_base_checkpoint_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sam: str | None
) -> None:
    # the inspection commands take the base weights as --base-checkpoint: --checkpoint is no flag of theirs
    if sam is not None:
        sam = save_decoder(build_tiny_sam(), tmp_path / sam, model="vit_b")
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    checkpoint = check_sam_checkpoint(sam, model="vit_b")
    with pytest.raises(CheckpointError) as error:
        load_sam_checkpoint(checkpoint)
    message = str(error.value)
    assert "no verified sam_vit_b_01ec64.pth" in message and "--checkpoint" not in message
    assert message.endswith(f"pass --base-checkpoint PATH or put it in {tmp_path / 'cache' / 'weights'}")
