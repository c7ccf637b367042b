"""How much of a pretrained checkpoint a new model took over: tensors equal under the same name.

An open-vocabulary model built from its yaml (``yoloe-11n.yaml``, the project's
``yolo11n-worldv2.yaml``) starts from COCO-pretrained ``yolo11n.pt`` through
ultralytics' own transfer (``pretrained=yolo11n.pt``: ``BaseModel.load`` copies every
tensor whose name and shape match, and rebuilds the head's class branch at the
source's width to take its hidden layers). :func:`count_transferred` checks the
result instead of trusting the log: a tensor counts when the model's tensor of that
name equals the source's, so what it reports is what the model really holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Transfer:
    """Tensors a model took over from a pretrained source.

    Attributes:
        source: the source's file (or yaml) name, for the run output.
        transferred: the model's tensors equal to the source's tensor of the same name.
        source_tensors: tensors in the source's state dict.
        model_tensors: tensors in the model's state dict.
        not_transferred: names of the source tensors that did not transfer (the class outputs, say).
    """

    source: str
    transferred: int
    source_tensors: int
    model_tensors: int
    not_transferred: tuple[str, ...] = ()

    def describe(self) -> str:
        return (
            f"pretrained {self.source}: {self.transferred} of its {self.source_tensors} tensors transferred "
            f"(same name, same shape, equal values); {self.model_tensors - self.transferred} of the model's "
            f"{self.model_tensors} tensors start untrained"
        )


def source_name(source: torch.nn.Module) -> str:
    """The file a checkpoint's model came from, else its yaml, else its class name."""
    path = getattr(source, "pt_path", None)
    if path:
        return Path(path).name
    yaml = getattr(source, "yaml", None)
    return (
        str(yaml.get("yaml_file", type(source).__name__)) if isinstance(yaml, dict) else type(source).__name__
    )


def count_transferred(model: torch.nn.Module, source: torch.nn.Module) -> Transfer:
    """Which of ``source``'s tensors ``model`` holds after loading them (``model.load(source)``).

    Args:
        model: the model after the transfer.
        source: the pretrained model (``weights`` of ultralytics' ``get_model``).
    """
    theirs = source.state_dict()
    ours = model.state_dict()
    same = [
        key
        for key, value in theirs.items()
        if key in ours
        and ours[key].shape == value.shape
        and torch.equal(ours[key].detach().cpu().to(value.dtype), value.detach().cpu())
    ]
    missing = tuple(key for key in theirs if key not in set(same))
    return Transfer(source_name(source), len(same), len(theirs), len(ours), missing)
