"""The segmentation command lines given bad input: one ``error:`` line, exit 2, nothing written.

Each case runs the real entry point in a subprocess (``python -m segmentation.train`` and
friends, network blocked) against a tiny converted data set. Every error here is found before
SAM's weights are loaded, so the children get an empty cache (``MVTEC_FINETUNE_CACHE``): a
check that slipped behind weight loading would fail with "no verified mobile_sam.pt" instead
of its own message. ``unchanged`` watches the test folder and the data set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.reliability.conftest import assert_user_error, call_main, run_cli

# Subprocess CLIs (about 2.5 s each); the same checks run in-process in tests/segmentation.
pytestmark = pytest.mark.slow

TRAIN = "segmentation.train"
EVALUATE = "segmentation.evaluate"
EMBED = "segmentation.embed"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A converted synthetic data set (COCO, 64-px images): 4 defect types x 4 images."""
    from converters.convert import ConvertConfig, convert
    from converters.synthetic import SyntheticConfig, generate

    root = tmp_path_factory.mktemp("segmentation_cli")
    generate(
        root / "mvtec",
        SyntheticConfig(size=64, n_train_good=2, n_test_good=2, n_per_defect=4),
        progress=False,
    )
    convert(ConvertConfig(root=root / "mvtec", out=root / "nut", formats=("coco",), progress=False))
    return root / "nut"


@pytest.fixture
def empty_cache(tmp_path_factory) -> dict[str, str]:
    """Environment of a child whose weight and embedding cache is empty (and outside the watched folders)."""
    return {"MVTEC_FINETUNE_CACHE": str(tmp_path_factory.mktemp("empty_cache"))}


def train_cli(*args: object, env: dict[str, str], runner=run_cli):
    return runner(TRAIN, "progress=false", "device=cpu", *args, env=env)


FIRST_BAD_CONFIG = "lr=true"  # must not train at lr 1.0; a subprocess, the rest in-process (call_main)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        (FIRST_BAD_CONFIG, "'lr' needs a number > 0, got True"),
        ("lr=-1", "'lr' needs a number > 0, got -1"),
        ("lr=.nan", "'lr' needs a finite number"),
        ("lr=[1]", "'lr' needs a number > 0, got [1]"),
        ("batch_size=0", "'batch_size' needs an integer >= 1, got 0"),
        ("batch_size=1.5", "'batch_size' needs an integer >= 1, got 1.5"),
        ("max_steps=abc", "'max_steps' needs an integer >= 1 or null, got 'abc'"),
        ("epochs=-3", "'epochs' needs an integer >= 1, got -3"),
        ("prompts.p_box=2", "'prompts.p_box' needs a number in [0, 1], got 2"),
        ("loss.focal_weight=-1", "'loss.focal_weight' needs a number >= 0, got -1"),
        ("device=gpu", "'device': unknown device 'gpu': use auto, cpu, cuda, cuda:N or mps"),
        ("model=vit_x", "'model' must be one of vit_b, vit_h, vit_l, vit_t"),
    ],
)
def test_train_bad_config_values(tmp_path, data, unchanged, empty_cache, override, fragment):
    out = tmp_path / "runs"
    runner = run_cli if override == FIRST_BAD_CONFIG else call_main
    with unchanged(tmp_path, data):
        result = train_cli(f"data={data}", f"out={out}", override, env=empty_cache, runner=runner)
    assert_user_error(result, fragment)
    assert not out.exists()


def test_train_bad_config_file(tmp_path, data, unchanged, empty_cache):
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {data}\nout: {tmp_path / 'runs'}\nprompts:\n  n_positive: 0\n")
    with unchanged(tmp_path, data):
        result = train_cli("--config", config, env=empty_cache)
        assert_user_error(result, "'prompts.n_positive' needs an integer >= 1, got 0")


def test_train_data_without_annotations(tmp_path, unchanged, empty_cache):
    (tmp_path / "photos").mkdir()
    with unchanged(tmp_path):
        result = train_cli(f"data={tmp_path / 'photos'}", f"out={tmp_path / 'runs'}", env=empty_cache)
        assert_user_error(result, "no COCO annotations", "instances_train.json")


def resumable(folder: Path, data: Path) -> Path:
    """A run folder as ``--resume`` reads it: a valid args.yaml (last.pt is up to the test)."""
    folder.mkdir(parents=True)
    (folder / "args.yaml").write_text(f"data: {data}\nout: {folder.parent}\nname: {folder.name}\nepochs: 2\n")
    return folder


@pytest.mark.parametrize(
    ("write_last", "fragments"),
    [
        (lambda path: path.write_bytes(b"PK\x03\x04 half a zip"), ["cannot read resume state", "last.pt"]),
        (lambda path: path.write_bytes(b""), ["cannot read resume state", "last.pt"]),
        (
            lambda path: torch.save({"mask_decoder": {}, "epoch": 3}, path),
            ["last.pt is not a whole training state", "lacks optimizer, scheduler"],
        ),
    ],
    ids=["corrupt", "empty", "missing keys"],
)
def test_train_resume_from_a_bad_last_pt(tmp_path, data, unchanged, empty_cache, write_last, fragments):
    run = resumable(tmp_path / "runs" / "cut", data)
    write_last(run / "last.pt")
    with unchanged(tmp_path, data):
        assert_user_error(run_cli(TRAIN, "--resume", run, env=empty_cache), *fragments)


def test_train_resume_checks_args_yaml(tmp_path, data, unchanged, empty_cache):
    run = resumable(tmp_path / "runs" / "cut", data)
    (run / "args.yaml").write_text((run / "args.yaml").read_text() + "batch_size: 0\n")
    torch.save({"mask_decoder": {}}, run / "last.pt")
    with unchanged(tmp_path, data):
        result = run_cli(TRAIN, "--resume", run, env=empty_cache)
        assert_user_error(result, "'batch_size' needs an integer >= 1, got 0")


def test_train_resume_without_last_pt(tmp_path, data, unchanged, empty_cache):
    run = resumable(tmp_path / "runs" / "cut", data)
    with unchanged(tmp_path, data):
        assert_user_error(run_cli(TRAIN, "--resume", run, env=empty_cache), "nothing to resume", "no last.pt")


@pytest.mark.parametrize(
    ("checkpoint", "fragments"),
    [
        (b"\x00garbage" * 64, ["cannot read checkpoint", "decoder.pt"]),
        (b"", ["cannot read checkpoint", "decoder.pt"]),
    ],
    ids=["garbage", "empty"],
)
def test_evaluate_garbage_checkpoint(tmp_path, data, unchanged, empty_cache, checkpoint, fragments):
    path = tmp_path / "run" / "decoder.pt"
    path.parent.mkdir()
    path.write_bytes(checkpoint)
    with unchanged(tmp_path, data):
        result = run_cli(EVALUATE, "--data", data, "--checkpoint", path, "--no-progress", env=empty_cache)
        assert_user_error(result, *fragments)


def test_evaluate_decoder_of_another_model(tmp_path, data, unchanged, empty_cache):
    from segmentation.finetuned import DECODER_FORMAT

    path = tmp_path / "run" / "decoder.pt"
    path.parent.mkdir()
    torch.save({"format": DECODER_FORMAT, "model": "vit_t", "mask_decoder": {}}, path)
    with unchanged(tmp_path, data):
        args = ("--data", data, "--checkpoint", path, "--model", "vit_b", "--no-progress")
        assert_user_error(run_cli(EVALUATE, *args, env=empty_cache), "trained on model 'vit_t', not 'vit_b'")


def test_evaluate_data_without_annotations(tmp_path, unchanged, empty_cache):
    (tmp_path / "photos").mkdir()
    with unchanged(tmp_path):
        result = run_cli(EVALUATE, "--data", tmp_path / "photos", "--out", tmp_path / "eval", env=empty_cache)
        assert_user_error(result, "no COCO annotations", "instances_test.json")


def test_evaluate_bad_device(tmp_path, data, unchanged, empty_cache):
    with unchanged(tmp_path, data):
        result = run_cli(
            EVALUATE, "--data", data, "--out", tmp_path / "eval", "--device", "gpu", env=empty_cache
        )
        assert_user_error(result, "unknown device 'gpu'")


def test_embed_missing_data(tmp_path, unchanged, empty_cache):
    with unchanged(tmp_path):
        result = run_cli(EMBED, "--data", tmp_path / "missing", "--no-progress", env=empty_cache)
        # was told to convert into that path with --overwrite
        assert_user_error(result, f"--data {tmp_path / 'missing'} does not exist")


def test_embed_batch_size_zero(tmp_path, data, unchanged, empty_cache):
    with unchanged(tmp_path, data):
        result = run_cli(EMBED, "--data", data, "--batch-size", "0", env=empty_cache)
        assert_user_error(result, "--batch-size must be at least 1, got 0")
