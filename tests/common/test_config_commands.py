"""Each command's ``--config`` file and overrides go through :func:`common.config.load_config`: what YAML
reads otherwise than it is written is read or refused alike in every one of them."""

from __future__ import annotations

import pytest

from common.config import load_config
from common.errors import UserError


def _segmentation(path, overrides):
    from segmentation.train_config import load_train_config

    return load_train_config(path, overrides)


def _detection(path, overrides):
    from detection.train_config import _checked_config, default_config

    return _checked_config(default_config(), path, overrides)


def _anomaly(path, overrides):
    from anomaly.config import SCHEMA

    return load_config(SCHEMA, path, overrides)


#: segmentation.train, detection.train and anomaly.train read their config so; inspection has no --config.
COMMANDS = {"segmentation": _segmentation, "detection": _detection, "anomaly": _anomaly}


@pytest.mark.parametrize("command", ["segmentation", "detection"])
def test_a_run_name_that_is_a_date_is_its_text_in_a_file_and_an_override(tmp_path, command):
    # YAML 1.1 read it as a datetime.date: segmentation refused it as no string, detection took it on
    load = COMMANDS[command]
    path = tmp_path / "run.yaml"
    path.write_text("name: 2026-12-07\n")
    assert load(path, [])["name"] == load(None, ["name=2026-12-07"])["name"] == "2026-12-07"


@pytest.mark.parametrize("key", ["name", "project"])
def test_detections_run_folder_keys_refuse_a_number_written_otherwise_in_a_file_and_an_override(
    tmp_path, key
):
    # name: 1.0e+3 made the run folder '1000.0' and name=0x10 the folder '16'; name: 2024 is the run '2024'
    path = tmp_path / "run.yaml"
    for text, number in (("1.0e+3", 1000.0), ("0x10", 16)):
        path.write_text(f"{key}: {text}\n")
        problem = (
            f"config key '{key}' got '{text}', which YAML reads as the number {number} "
            f"(write {number} for that number, or quote it to mean text"
        )
        with pytest.raises(UserError) as error:
            _detection(path, [])
        assert str(error.value) == f"config file {path}: {problem})"
        with pytest.raises(UserError) as error:
            _detection(None, [f"{key}={text}"])
        assert str(error.value) == f"override '{key}={text}': {problem}: \"{key}='{text}'\" in a shell)"
        path.write_text(f"{key}: '{text}'\n")
        assert _detection(path, [])[key] == text
    path.write_text(f"{key}: 2024\n")
    assert _detection(path, [])[key] == _detection(None, [f"{key}=2024"])[key] == "2024"


def test_detections_run_name_refuses_a_mapping_without_brackets_in_an_override():
    # name=a: was the mapping {'a': None}, where the file's "name: a:" is refused as needing quotes
    with pytest.raises(
        UserError, match=r"^override 'name=a:': config key 'name' got 'a:', which YAML reads as"
    ):
        _detection(None, ["name=a:"])


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_tag_is_refused_by_every_commands_config(tmp_path, command):
    # !!binary read as bytes in a file, and an override's unknown tag was its text
    key = "backbone" if command == "anomaly" else "name"
    path = tmp_path / "run.yaml"
    path.write_text(f"{key}: !!binary aGk=\n")
    problem = "YAML reads '!!binary' as a tag, which a config does not take: quote the value to mean text"
    with pytest.raises(UserError, match=f"^cannot read config .*: {problem}, line 1"):
        COMMANDS[command](path, [])
    with pytest.raises(UserError, match=f"^override '{key}=!python/x': YAML reads '!python/x' as a tag"):
        COMMANDS[command](None, [f"{key}=!python/x"])
