"""The one place where open-vocabulary training takes this project's text embeddings instead of a text model.

ultralytics (8.4) asks a text model for class-name embeddings at start-up of
every open-vocabulary run, and downloads it to do so:

- YOLO-World (``WorldTrainer``): ``WorldModel.get_text_pe`` builds CLIP ViT-B/32
  (weights downloaded, ``clip`` pip-installed from GitHub when missing), once in
  ``build_dataset("train")`` -> ``generate_text_embeddings`` (each batch's
  ``txt_feats``; it also writes a cache file into the data set's folder) and once
  in the ``on_pretrain_routine_end`` callback ``ema.set_classes(names)`` (the
  classes the EMA validates and is saved with).
- YOLOE (``YOLOETrainer`` and its ``YOLOEDetectValidator``): the validator calls
  ``YOLOEModel.get_text_pe(names)``, which builds MobileCLIP
  (``mobileclip_blt.ts`` downloaded), at every validation and on the final
  ``best.pt``. The stock ``YOLOETrainer`` gives its batches no text features at
  all; :class:`TableYOLOETrainer` trains like YOLO-World does (each image's
  sampled class names and negatives as ``txt_feats``, ultralytics'
  ``WorldTrainer.set_text_embeddings`` / ``preprocess_batch``).

:class:`TableWorldTrainer` and :class:`TableYOLOETrainer` replace exactly these
calls with a :class:`~detection.text_embeddings.TextEmbeddings` (a table file,
CLIP or MobileCLIP on disk, or fixed vectors; chosen by
:func:`detection.text_embeddings.resolve_text_embeddings`). Nothing else is
patched, and the saved checkpoints hold a stock ``WorldModel`` (``txt_feats``) or
``YOLOEModel`` (``pe``, after the trained text head ``reprta``), so
``YOLO("best.pt")`` predicts with the trained classes anywhere, no text model needed.

When the trainer builds its model from a pretrained one (``pretrained=yolo11n.pt``
with a yaml model, or a ``.pt`` model), both report what transferred
(:func:`detection.transfer.count_transferred`, kept as ``trainer.transfer``).

ultralytics instantiates trainers from a class (``model.train(trainer=cls)``),
so :func:`world_trainer` / :func:`yoloe_trainer` bind the embeddings to a subclass::

    YOLOWorld("yolov8s-worldv2.yaml").train(trainer=world_trainer(embeddings), data="data.yaml")
    YOLOE("yoloe-11n.yaml").train(trainer=yoloe_trainer(embeddings), data="d.yaml", pretrained="yolo11n.pt")
"""

from __future__ import annotations

from copy import copy
from pathlib import Path
from typing import Any

import torch
from ultralytics.data.utils import check_det_dataset
from ultralytics.models.yolo.world import train as world_train
from ultralytics.models.yolo.world.train import WorldTrainer
from ultralytics.models.yolo.yoloe import YOLOEDetectValidator, YOLOETrainer
from ultralytics.nn.tasks import WorldModel, YOLOEModel, load_checkpoint
from ultralytics.utils import DEFAULT_CFG
from ultralytics.utils.torch_utils import select_device

from detection.text_embeddings import TextEmbeddingError, TextEmbeddings, class_texts
from detection.transfer import Transfer, count_transferred


def set_class_embeddings(
    model: WorldModel | YOLOEModel, names: list[str], embeddings: TextEmbeddings
) -> None:
    """A model's classes from a table, as ``set_classes`` would set them from its text model.

    YOLO-World: ``txt_feats`` ``(1, N, 512)`` and the head's class count. YOLOE: ``names`` and
    ``pe``, the vectors passed through the head's text branch (``get_tpe``), as ``get_text_pe`` does.

    Args:
        model: the training model, its EMA, or a loaded one.
        names: class names in id order; the first ``/``-synonym of each is looked up.
        embeddings: vectors for every name.
    """
    texts = class_texts(names)
    device = next(model.parameters()).device
    matrix = embeddings.matrix(texts).to(device)
    if isinstance(model, YOLOEModel):
        with torch.no_grad():  # pe is a constant of the saved model, not part of a graph
            model.set_classes(texts, model.model[-1].get_tpe(matrix))
        return
    model.txt_feats = matrix
    model.model[-1].nc = len(texts)


def table_vectors(embeddings: TextEmbeddings, texts: list[str]) -> dict[str, torch.Tensor]:
    """``{text: vector}`` for every prompt text a training set samples; an error for one not in the table."""
    missing = [t for t in texts if t not in embeddings.vectors]
    if missing:  # load_table checked the data.yaml names; this catches a different data set
        raise TextEmbeddingError(f"no text embedding for {missing} ({embeddings.source})")
    return {t: embeddings.vectors[t] for t in texts}


class TableTextMixin:
    """What both trainers share: the bound embeddings, the transfer report, the table as text model.

    Attributes:
        class_embeddings: the vectors; given to the constructor or bound to a subclass.
        transfer: what the model took over from pretrained weights (None: built without any).
    """

    class_embeddings: TextEmbeddings | None = None
    transfer: Transfer | None = None

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
                f"{type(self).__name__} needs text embeddings: pass embeddings= or bind them "
                "(world_trainer / yoloe_trainer)"
            )
        super().__init__(cfg, overrides, _callbacks)
        self.text_embeddings = None  # WorldTrainer's per-text map, filled by set_text_embeddings

    def get_model(self, cfg=None, weights=None, verbose: bool = True):
        """ultralytics' model (pretrained ``weights`` transferred, counted), its classes from the table."""
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        if weights is not None:
            self.transfer = count_transferred(model, weights)
            print(self.transfer.describe(), flush=True)
        set_class_embeddings(model, list(self.data["names"].values()), self.class_embeddings)
        return model

    def generate_text_embeddings(self, texts: list[str], batch: int, cache_dir) -> dict[str, torch.Tensor]:
        """The table's vectors for ``texts``; no text model is built and no cache file written."""
        return table_vectors(self.class_embeddings, texts)


def set_ema_classes(trainer: TableWorldTrainer) -> None:
    """Replaces ultralytics' ``on_pretrain_routine_end`` callback: the EMA's classes from the table."""
    if getattr(trainer, "class_embeddings", None) is None:  # a stock trainer reusing the Model's callbacks
        return
    names = list(trainer.test_loader.dataset.data["names"].values())
    set_class_embeddings(trainer.ema.ema, names, trainer.class_embeddings)


class TableWorldTrainer(TableTextMixin, WorldTrainer):
    """``WorldTrainer`` whose class-name embeddings come from a :class:`TextEmbeddings`."""

    def get_model(self, cfg=None, weights=None, verbose: bool = True) -> WorldModel:
        """The table's model, with ultralytics' CLIP callback swapped for :func:`set_ema_classes`."""
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        hooks = self.callbacks["on_pretrain_routine_end"]
        # The list is shared with the caller's Model object, so the stock callback is removed, not skipped.
        while world_train.on_pretrain_routine_end in hooks:
            hooks.remove(world_train.on_pretrain_routine_end)
        if set_ema_classes not in hooks:
            hooks.append(set_ema_classes)
        return model


class TableYOLOEValidator(YOLOEDetectValidator):
    """``YOLOEDetectValidator`` whose text prompts come from a table instead of MobileCLIP.

    Visual-prompt validation (``load_vp``) is ultralytics' own: it needs no text model.
    """

    class_embeddings: TextEmbeddings | None = None

    def get_model(self, model=None, trainer=None, refer_data: str | None = None, load_vp: bool = False):
        """The EMA (during training) or the loaded checkpoint, its classes set from the table."""
        if load_vp or self.class_embeddings is None:
            return super().get_model(model, trainer, refer_data=refer_data, load_vp=load_vp)
        if trainer is not None:
            self.device = trainer.device
            model, names = trainer.ema.ema, self.dataloader.dataset.data["names"]
        else:
            self.device = select_device(self.args.device, verbose=False)
            if isinstance(model, str | Path):
                model, _ = load_checkpoint(model, device=self.device)
            model.eval().to(self.device)
            names = check_det_dataset(self.args.data)["names"]
        set_class_embeddings(model, list(names.values()), self.class_embeddings)
        return model


class TableYOLOETrainer(TableTextMixin, YOLOETrainer):
    """``YOLOETrainer`` trained and validated with a table's class-name vectors.

    Each training image gets its class names plus sampled negatives as text
    prompts (ultralytics' multi-modal dataset), their vectors as the batch's
    ``txt_feats``, so the head's text branch (``reprta``) trains as in YOLOE's
    own text-prompt training; validation prompts with the table too.
    """

    set_text_embeddings = WorldTrainer.set_text_embeddings
    preprocess_batch = WorldTrainer.preprocess_batch

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
        """ultralytics' YOLOE dataset (multi-modal for training), its prompt texts mapped to vectors."""
        dataset = super().build_dataset(img_path, mode, batch)
        if mode == "train":
            self.set_text_embeddings([dataset], batch)
        return dataset

    def get_validator(self) -> TableYOLOEValidator:
        """A :class:`TableYOLOEValidator` with this trainer's embeddings."""
        bound = {"class_embeddings": self.class_embeddings}
        validator = type(TableYOLOEValidator.__name__, (TableYOLOEValidator,), bound)
        return validator(
            self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks
        )


def world_trainer(embeddings: TextEmbeddings) -> type[TableWorldTrainer]:
    """A :class:`TableWorldTrainer` subclass bound to ``embeddings``, for ``Model.train(trainer=...)``."""
    return type(TableWorldTrainer.__name__, (TableWorldTrainer,), {"class_embeddings": embeddings})


def yoloe_trainer(embeddings: TextEmbeddings) -> type[TableYOLOETrainer]:
    """A :class:`TableYOLOETrainer` subclass bound to ``embeddings``, for ``Model.train(trainer=...)``."""
    return type(TableYOLOETrainer.__name__, (TableYOLOETrainer,), {"class_embeddings": embeddings})
