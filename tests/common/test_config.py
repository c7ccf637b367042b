"""Tests for segmentation.config: YAML defaults, key=value overrides, typos refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from common.config import load_config, parse_overrides, save_config
from common.errors import UserError
from segmentation.train import DEFAULTS

REPO = Path(__file__).resolve().parents[2]


def test_overrides_nest_and_parse_as_yaml():
    assert parse_overrides(["epochs=5", "prompts.p_box=1.0", "name=null", "lr=1e-3", "out=runs/x"]) == {
        "epochs": 5,
        "prompts": {"p_box": 1.0},
        "name": None,
        "lr": 0.001,  # PyYAML alone reads "1e-3" as a string
        "out": "runs/x",
    }


def test_file_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nprompts:\n  n_positive: 2\n")
    config = load_config(DEFAULTS, path, ["epochs=4", "loss.iou_weight=0"])
    assert config["epochs"] == 4 and config["prompts"]["n_positive"] == 2
    assert config["prompts"]["p_box"] == DEFAULTS["prompts"]["p_box"]
    assert config["loss"]["iou_weight"] == 0
    assert DEFAULTS["epochs"] == 20, "defaults must not be mutated"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["epoch=3"], "unknown config key 'epoch'"),
        (["prompts.pbox=1"], "unknown config key 'prompts.pbox'"),
        (["prompts=3"], "needs a mapping"),
        (["lr=fast"], "'lr' needs a number"),
        (["epochs"], "not key=value"),
    ],
)
def test_bad_overrides_are_named(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config(DEFAULTS, None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="cannot read config"):
        load_config(DEFAULTS, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must be a YAML mapping"):
        load_config(DEFAULTS, tmp_path / "list.yaml")


def test_shipped_config_matches_the_defaults_and_round_trips(tmp_path):
    shipped = load_config(DEFAULTS, REPO / "configs" / "segmentation" / "sam_decoder.yaml")
    assert set(shipped) == set(DEFAULTS)
    save_config({**shipped, "out": Path("runs/x")}, tmp_path / "args.yaml")
    again = load_config(DEFAULTS, tmp_path / "args.yaml")
    assert again == {**shipped, "out": "runs/x"}
    assert yaml.safe_load((tmp_path / "args.yaml").read_text())["prompts"] == shipped["prompts"]
