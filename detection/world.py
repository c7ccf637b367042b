"""The one place where YOLO-World training takes this project's text embeddings instead of CLIP's loader.

ultralytics (8.4) asks for class-name embeddings at two points of a
``WorldTrainer`` run, both through ``WorldModel.get_text_pe``, which builds CLIP
ViT-B/32 on the spot (downloading its weights, pip-installing ``clip`` from
GitHub when it is missing):

1. ``build_dataset("train")`` -> ``set_text_embeddings`` -> ``generate_text_embeddings``:
   a ``{text: vector}`` map that ``preprocess_batch`` turns into each batch's
   ``txt_feats`` (it also writes a cache file into the data set's folder);
2. the ``on_pretrain_routine_end`` callback that ``WorldTrainer.get_model``
   registers: ``ema.set_classes(names)``, the class embeddings the EMA model
   validates with and is saved with.

:class:`TableWorldTrainer` replaces exactly these two: it overrides
``generate_text_embeddings`` (no file is written) and, in ``get_model``, swaps
ultralytics' callback for :func:`set_ema_classes`. Nothing else is patched, and
the saved checkpoints hold a stock ``WorldModel`` whose ``txt_feats`` are the
table's vectors, so ``YOLO("best.pt")`` predicts with the trained classes
anywhere, no text encoder needed.

ultralytics instantiates trainers from a class (``model.train(trainer=cls)``),
so :func:`world_trainer` binds the embeddings to a subclass::

    YOLOWorld("yolov8s-worldv2.yaml").train(trainer=world_trainer(embeddings), data="data.yaml")

Tested in one process. ultralytics' multi-GPU (DDP) launcher pickles the
trainer class with cloudpickle, which carries such a bound subclass by value;
that path is untested here.
"""

from __future__ import annotations

from typing import Any

import torch
from ultralytics.models.yolo.world import train as world_train
from ultralytics.models.yolo.world.train import WorldTrainer
from ultralytics.nn.tasks import WorldModel
from ultralytics.utils import DEFAULT_CFG

from detection.text_embeddings import TextEmbeddingError, TextEmbeddings, class_texts


def set_class_embeddings(model: WorldModel, names: list[str], embeddings: TextEmbeddings) -> None:
    """``WorldModel.set_classes`` from a table: ``txt_feats`` ``(1, N, 512)`` and the head's class count.

    Args:
        model: the YOLO-World model (training model, its EMA, or a loaded one).
        names: class names in id order; the first ``/``-synonym of each is looked up.
        embeddings: vectors for every name.
    """
    texts = class_texts(names)
    device = next(model.parameters()).device
    model.txt_feats = embeddings.matrix(texts).to(device)
    model.model[-1].nc = len(texts)


def set_ema_classes(trainer: TableWorldTrainer) -> None:
    """Replaces ultralytics' ``on_pretrain_routine_end`` callback: the EMA's classes from the table."""
    if getattr(trainer, "class_embeddings", None) is None:  # a stock trainer reusing the Model's callbacks
        return
    names = list(trainer.test_loader.dataset.data["names"].values())
    set_class_embeddings(trainer.ema.ema, names, trainer.class_embeddings)


class TableWorldTrainer(WorldTrainer):
    """``WorldTrainer`` whose class-name embeddings come from a :class:`TextEmbeddings`.

    Attributes:
        class_embeddings: the vectors; given to the constructor or bound to a
            subclass by :func:`world_trainer`.
    """

    class_embeddings: TextEmbeddings | None = None

    def __init__(
        self,
        cfg=DEFAULT_CFG,
        overrides: dict[str, Any] | None = None,
        _callbacks: dict | None = None,
        embeddings: TextEmbeddings | None = None,
    ) -> None:
        if embeddings is not None:
            self.class_embeddings = embeddings
        if self.class_embeddings is None:
            raise TextEmbeddingError(
                "TableWorldTrainer needs text embeddings: pass embeddings= or use world_trainer(embeddings)"
            )
        super().__init__(cfg, overrides, _callbacks)

    def get_model(self, cfg=None, weights=None, verbose: bool = True) -> WorldModel:
        """ultralytics' model, with its classes set from the table and the CLIP callback swapped for ours."""
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        hooks = self.callbacks["on_pretrain_routine_end"]
        # The list is shared with the caller's Model object, so the stock callback is removed, not skipped.
        while world_train.on_pretrain_routine_end in hooks:
            hooks.remove(world_train.on_pretrain_routine_end)
        if set_ema_classes not in hooks:
            hooks.append(set_ema_classes)
        set_class_embeddings(model, list(self.data["names"].values()), self.class_embeddings)
        return model

    def generate_text_embeddings(self, texts: list[str], batch: int, cache_dir) -> dict[str, torch.Tensor]:
        """The table's vectors for ``texts`` (every prompt text the training set samples)."""
        vectors = self.class_embeddings.vectors
        missing = [t for t in texts if t not in vectors]
        if missing:  # load_table checked the data.yaml names; this catches a different data set
            raise TextEmbeddingError(f"no text embedding for {missing} ({self.class_embeddings.source})")
        return {t: vectors[t] for t in texts}


def world_trainer(embeddings: TextEmbeddings) -> type[TableWorldTrainer]:
    """A :class:`TableWorldTrainer` subclass bound to ``embeddings``, for ``Model.train(trainer=...)``."""
    return type(TableWorldTrainer.__name__, (TableWorldTrainer,), {"class_embeddings": embeddings})
