"""Open-vocabulary detectors that learn offline: YOLOE-11n and YOLO-World's head on YOLO11n from yolo11n.pt.

Transfer counts, YOLOE's text hook (no MobileCLIP, network blocked by ``conftest.py``), 1-epoch
train + predict round trips of the shipped configs, the official checkpoints' path with tiny fake
checkpoints saved from yaml models, and stock ``YOLO(best.pt)`` loads in a process without the project.
"""

from __future__ import annotations

import importlib.machinery
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from ultralytics import YOLO
from ultralytics.nn.tasks import WorldModel, YOLOEModel, load_checkpoint

from common.config import PROJECT_ROOT
from detection.text_embeddings import (
    EMBEDDING_DIM,
    TextEmbeddingError,
    fixed_embeddings,
    resolve_text_embeddings,
    save_table,
)
from detection.train import main
from detection.transfer import Transfer, count_transferred
from detection.weights import CheckpointError, resolve_model
from detection.world import TableYOLOEValidator, set_class_embeddings, yoloe_trainer

CONFIGS = PROJECT_ROOT / "configs" / "detection"
WORLD11_YAML = CONFIGS / "models" / "yolo11n-worldv2.yaml"
NAMES = ["bent", "color", "flip", "scratch"]
#: yolo11n.pt's tensors that cannot transfer: the 1x1 convs giving its 80 COCO class scores.
CLASS_OUTPUTS = {f"model.23.cv3.{level}.2.{kind}" for level in range(3) for kind in ("weight", "bias")}


@pytest.fixture(scope="module")
def yolo11n() -> torch.nn.Module:
    """COCO-pretrained YOLO11n from the cache; skipped where it was never fetched."""
    try:
        path = resolve_model("yolo11n.pt", download=False)
    except CheckpointError as error:
        pytest.skip(f"yolo11n.pt not cached: {error}")
    return load_checkpoint(path)[0]


@pytest.fixture(autouse=True)
def no_text_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """ultralytics' text-model loaders (CLIP, MobileCLIP: downloads) fail the test if reached."""

    def fail(*args, **kwargs):
        raise AssertionError("an ultralytics text model was built")

    monkeypatch.setattr(YOLOEModel, "get_text_pe", fail)
    monkeypatch.setattr(WorldModel, "get_text_pe", fail)
    monkeypatch.setitem(sys.modules, "clip", None)  # whatever this machine has installed


# --- transfer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "model_tensors"),
    [
        (lambda: YOLOEModel("yoloe-11n.yaml", nc=4, verbose=False), 592),
        (lambda: WorldModel(str(WORLD11_YAML), nc=4, verbose=False), 520),
    ],
    ids=["yoloe-11n", "yolo11n-worldv2"],
)
def test_every_tensor_but_the_class_outputs_transfers(yolo11n, build, model_tensors: int) -> None:
    model = build()
    assert count_transferred(model, yolo11n).transferred < 10  # a random model holds none of them
    model.load(yolo11n)  # what ultralytics' trainer does with pretrained=yolo11n.pt
    transfer = count_transferred(model, yolo11n)
    assert (transfer.transferred, transfer.source_tensors, transfer.model_tensors) == (
        493,
        499,
        model_tensors,
    )
    assert set(transfer.not_transferred) == CLASS_OUTPUTS
    assert "493 of its 499 tensors transferred" in transfer.describe()


def test_transfer_describes_what_the_model_starts_without() -> None:
    transfer = Transfer("yolo11n.pt", transferred=493, source_tensors=499, model_tensors=520)
    assert transfer.describe() == (
        "pretrained yolo11n.pt: 493 of its 499 tensors transferred (same name, same shape, equal values); "
        "27 of the model's 520 tensors start untrained"
    )


# --- YOLOE's text hook ---------------------------------------------------------------------------


def test_yoloe_without_mobileclip_says_so_or_falls_back_when_auto() -> None:
    with pytest.raises(TextEmbeddingError) as error:
        resolve_text_embeddings(NAMES, encoder="mobileclip:blt", family="YOLOE")
    message = str(error.value)
    assert message.startswith("YOLOE needs text embeddings") and "mobileclip:blt not usable" in message
    auto = resolve_text_embeddings(NAMES, table="auto", encoder="mobileclip:blt", family="YOLOE")
    assert not auto.open_vocabulary and "mobileclip:blt is not usable here" in auto.source
    assert torch.equal(auto.matrix(NAMES), fixed_embeddings(NAMES).matrix(NAMES))


def test_mobileclip_on_disk_gives_real_text_embeddings(tmp_path: Path, monkeypatch) -> None:
    """A TorchScript text encoder on disk (a tiny stand-in for mobileclip_blt.ts) and CLIP's tokenizer."""

    class Encoder(torch.nn.Module):
        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(tokens[:, 1] % 512, 512).float() * 3  # 512: EMBEDDING_DIM

    torch.jit.script(Encoder()).save(str(tmp_path / "mobileclip_blt.ts"))
    clip = types.ModuleType("clip")
    clip.__spec__ = importlib.machinery.ModuleSpec("clip", None)
    clip.load = None
    clip.tokenize = lambda texts, truncate=True: torch.tensor([[0, 10 + i, 0] for i, _ in enumerate(texts)])
    monkeypatch.setitem(sys.modules, "clip", clip)
    embeddings = resolve_text_embeddings(
        NAMES, table="auto", clip_weights=tmp_path / "mobileclip_blt.ts", encoder="mobileclip:blt"
    )
    assert embeddings.open_vocabulary and embeddings.source.startswith("MobileCLIP mobileclip:blt (")
    assert torch.equal(
        embeddings.vectors["color"], torch.nn.functional.one_hot(torch.tensor(11), 512).float()
    )


def test_yoloe_trainer_and_validator_take_the_table(tiny_dataset: Path, tmp_path: Path) -> None:
    table = fixed_embeddings(NAMES)
    overrides = {"model": "yoloe-11n.yaml", "data": str(tiny_dataset / "data.yaml"), "imgsz": 64}
    trainer = yoloe_trainer(table)(overrides={**overrides, "device": "cpu", "project": str(tmp_path)})
    model = trainer.get_model(cfg="yoloe-11n.yaml", verbose=False)
    head = model.model[-1]
    with torch.no_grad():
        expected = head.get_tpe(table.matrix(NAMES))
    assert torch.allclose(model.pe, expected) and list(model.names.values()) == NAMES
    assert trainer.generate_text_embeddings(["flip"], 4, cache_dir=tmp_path)["flip"] is table.vectors["flip"]
    validator = type("V", (TableYOLOEValidator,), {"class_embeddings": table})(
        args={**overrides, "device": "cpu"}
    )
    path = tmp_path / "untrained.pt"
    YOLO("yoloe-11n.yaml").save(path)
    loaded = validator.get_model(str(path))  # the final validation of best.pt: from the table, no MobileCLIP
    assert loaded.pe.shape == (1, 4, EMBEDDING_DIM) and list(loaded.names.values()) == NAMES


def test_set_class_embeddings_fits_both_heads() -> None:
    table = fixed_embeddings(NAMES)
    world = WorldModel(str(WORLD11_YAML), nc=4, verbose=False)
    set_class_embeddings(world, ["flip", "bent"], table)
    assert torch.equal(world.txt_feats, table.matrix(["flip", "bent"])) and world.model[-1].nc == 2
    yoloe = YOLOEModel("yoloe-11n.yaml", nc=4, verbose=False)
    set_class_embeddings(yoloe, ["flip", "bent"], table)
    assert yoloe.pe.shape == (1, 2, EMBEDDING_DIM) and not yoloe.pe.requires_grad


# --- round trips ---------------------------------------------------------------------------------


def one_epoch(tiny_dataset: Path, tmp_path: Path, config: Path, *extra: str) -> list[str]:
    return [
        "--config", str(config), f"data={tiny_dataset / 'data.yaml'}", f"project={tmp_path / 'runs'}",
        "epochs=1", "imgsz=64", "batch=4", "workers=0", "device=cpu", "plots=false", "name=run", *extra,
    ]  # fmt: skip


STOCK_PREDICT = """
import json, sys
from ultralytics import YOLO
model = YOLO(sys.argv[1])
result = model.predict(sys.argv[2], imgsz=64, conf=0.0001, verbose=False)[0]
project = sorted(k for k in sys.modules if k.split(".")[0] in {"detection", "common", "converters"})
print(json.dumps({"class": type(model).__name__, "names": result.names, "boxes": len(result.boxes),
                  "project_modules": project}))
"""


def stock_predict(weights: Path, image: Path, cwd: Path) -> dict:
    """``YOLO(weights).predict(image)`` in an isolated interpreter (no PYTHONPATH, no project on sys.path)."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", STOCK_PREDICT, str(weights), str(image)],
        cwd=cwd, env={"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "YOLO_CONFIG_DIR": str(cwd)},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "family", "text_model", "stock_class"),
    [
        ("yoloe11n.yaml", "YOLOE", "mobileclip:blt", "YOLOE"),
        ("yolo11n_world.yaml", "YOLO-World", "clip:ViT-B/32", "YOLOWorld"),
    ],
)
def test_new_configs_train_offline_and_load_in_stock_ultralytics(
    yolo11n,
    tiny_dataset: Path,
    tmp_path: Path,
    capsys,
    network_attempts,
    config,
    family,
    text_model,
    stock_class,
) -> None:
    assert main(one_epoch(tiny_dataset, tmp_path, CONFIGS / config)) == 0
    out = capsys.readouterr().out
    assert (
        f"{family} text embeddings: fixed seeded random unit vectors (seed 0), made because {text_model}"
        in out
    )
    assert (
        out.count("pretrained yolo11n.pt: 493 of its 499 tensors transferred") == 2
    )  # at start, in the summary
    best = tmp_path / "runs" / "run" / "weights" / "best.pt"
    image = sorted((tiny_dataset / "images" / "val").iterdir())[0]
    stock = stock_predict(best, image, tmp_path)
    assert stock["class"] == stock_class and list(stock["names"].values()) == NAMES
    assert stock["project_modules"] == [] and network_attempts == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("yaml", "saved_as", "config", "expected"),
    [
        (
            "yolov8n-worldv2.yaml",
            "yolov8s-worldv2.pt",
            "yolo_world.yaml",
            "412 of its 412 tensors transferred",
        ),
        (
            "yoloe-11n-seg.yaml",
            "yoloe-11s-seg.pt",
            "yoloe11n.yaml",
            "is a YOLOE segmentation model: training",
        ),
    ],
)
def test_official_checkpoints_fine_tune_through_the_same_entry_point(
    tiny_dataset: Path, tmp_path: Path, capsys, yaml: str, saved_as: str, config: str, expected: list[str]
) -> None:
    """Tiny stand-ins for the official files (saved from yaml models under their names): what a user with
    internet gets from ultralytics' assets takes the same path."""
    weights = tmp_path / saved_as
    YOLO(yaml).save(weights)
    table = save_table(fixed_embeddings(NAMES), tmp_path / "table.pt")
    extra = [f"model={weights}", f"text_embeddings={table}"]
    assert main(one_epoch(tiny_dataset, tmp_path, CONFIGS / config, *extra)) == 0
    out = capsys.readouterr().out
    assert all(text in out for text in expected) and f"pretrained {saved_as}: " in out
    assert YOLO(tmp_path / "runs" / "run" / "weights" / "best.pt").names == dict(enumerate(NAMES))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("yaml", "config"), [("yolov8n-worldv2.yaml", "yolo11n_world.yaml"), ("yoloe-11n.yaml", "yoloe11n.yaml")]
)
def test_a_checkpoint_model_starts_from_its_own_weights_not_the_configs_pretrained(
    tiny_dataset: Path, tmp_path: Path, capsys, yaml: str, config: str
) -> None:
    # the configs' pretrained: yolo11n.pt was loaded in place of model=<run>/weights/last.pt
    # (docs/detection.md's way to go on from a run) or the official yolov8s-worldv2.pt: 355 of its 448 tensors
    # started untrained
    weights = tmp_path / "last.pt"
    model = YOLO(yaml)
    model.save(weights)
    tensors = len(model.model.state_dict())
    table = save_table(fixed_embeddings(NAMES), tmp_path / "table.pt")
    assert (
        main(
            one_epoch(
                tiny_dataset, tmp_path, CONFIGS / config, f"model={weights}", f"text_embeddings={table}"
            )
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "note: model=last.pt is a checkpoint: it starts from its own weights, not from pretrained: yolo11n.pt"
        in out
    )
    # every tensor of the checkpoint's that fits (YOLOE's stand-in has 80 classes, the data set 4)
    transferred = re.search(r"pretrained last\.pt: (\d+) of its (\d+) tensors transferred", out)
    assert transferred and int(transferred[2]) == tensors and int(transferred[1]) > 0.9 * tensors
    assert "pretrained yolo11n.pt" not in out


@pytest.mark.parametrize(
    ("config", "model"),
    [
        ("yoloe11n.yaml", "yoloe-11n.yaml"),
        ("yolo11n_world.yaml", "configs/detection/models/yolo11n-worldv2.yaml"),
    ],
)
def test_shipped_open_vocabulary_configs_start_from_yolo11n(
    tiny_dataset: Path, config: str, model: str
) -> None:
    from detection.train_config import build_config

    resolved = build_config(CONFIGS / config, [f"data={tiny_dataset / 'data.yaml'}"])
    assert (resolved["model"], resolved["pretrained"], resolved["text_embeddings"]) == (
        model,
        "yolo11n.pt",
        "auto",
    )
    assert (resolved["freeze"], resolved["mosaic"]) == (10, 0.0)  # the measured recipe
