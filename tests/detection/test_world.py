"""The YOLO-World hook: the trainer hands the table's vectors to the model, never calls CLIP's loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ultralytics.models.yolo.world import train as world_train
from ultralytics.nn.tasks import WorldModel

from common.fonts import ensure_ultralytics_fonts
from detection.text_embeddings import EMBEDDING_DIM, TextEmbeddingError, TextEmbeddings, load_table
from detection.world import TableWorldTrainer, set_class_embeddings, set_ema_classes, world_trainer

NAMES = ["bent", "color", "flip", "scratch"]


@pytest.fixture
def table(tmp_path: Path) -> TextEmbeddings:
    """A table of deliberately non-unit vectors, loaded (so normalised) as training would."""
    generator = torch.Generator().manual_seed(0)
    raw = {name: 5.0 * torch.randn(EMBEDDING_DIM, generator=generator) for name in NAMES}
    torch.save(raw, tmp_path / "table.pt")
    return load_table(tmp_path / "table.pt", NAMES)


@pytest.fixture(autouse=True)
def no_clip_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """ultralytics' CLIP path fails the test if anything reaches it."""

    def fail(*args, **kwargs):
        raise AssertionError("WorldModel.get_text_pe (CLIP) was called")

    monkeypatch.setattr(WorldModel, "get_text_pe", fail)


def normalised(matrix: torch.Tensor) -> torch.Tensor:
    return matrix / matrix.norm(dim=-1, keepdim=True)


def test_set_class_embeddings_gives_the_model_the_table(tmp_path: Path, table: TextEmbeddings) -> None:
    model = WorldModel("yolov8n-worldv2.yaml", nc=len(NAMES), verbose=False)
    set_class_embeddings(model, ["flip", "bent"], table)
    raw = torch.load(tmp_path / "table.pt")
    expected = normalised(torch.stack([raw["flip"], raw["bent"]])).unsqueeze(0)
    assert model.txt_feats.shape == (1, 2, EMBEDDING_DIM)
    assert torch.allclose(model.txt_feats, expected, atol=1e-6)
    assert model.model[-1].nc == 2
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 3, 64, 64))
    assert (out[0] if isinstance(out, tuple) else out).shape[1] == 4 + 2  # box + one score per class


def test_trainer_without_embeddings_is_refused() -> None:
    with pytest.raises(TextEmbeddingError, match="needs text embeddings"):
        TableWorldTrainer(overrides={"model": "yolov8n-worldv2.yaml"})


def test_trainer_hooks_replace_both_clip_calls(tiny_dataset: Path, tmp_path: Path, table) -> None:
    ensure_ultralytics_fonts()
    overrides = {
        "model": "yolov8n-worldv2.yaml",
        "data": str(tiny_dataset / "data.yaml"),
        "imgsz": 64,
        "device": "cpu",
        "project": str(tmp_path),
        "name": "run",
        "plots": False,
    }
    trainer = world_trainer(table)(overrides=overrides)
    assert isinstance(trainer, TableWorldTrainer) and trainer.class_embeddings is table

    # 1. the model (and so its EMA) gets the table's vectors; the stock CLIP callback is swapped for ours
    model = trainer.get_model(cfg="yolov8n-worldv2.yaml", verbose=False)
    assert torch.allclose(model.txt_feats, table.matrix(NAMES)) and model.model[-1].nc == len(NAMES)
    hooks = trainer.callbacks["on_pretrain_routine_end"]
    assert set_ema_classes in hooks and world_train.on_pretrain_routine_end not in hooks

    # 2. per-batch text features come from the table, and no cache file is written into the data set
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    vectors = trainer.generate_text_embeddings(["scratch", "bent"], 4, cache_dir=cache_dir)
    assert torch.equal(vectors["scratch"], table.vectors["scratch"]) and list(cache_dir.iterdir()) == []
    with pytest.raises(TextEmbeddingError, match="no text embedding for \\['hole'\\]"):
        trainer.generate_text_embeddings(["hole"], 4, cache_dir=cache_dir)
