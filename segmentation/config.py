"""Run configs: YAML defaults, ``key=value`` overrides from the command line, saved with each run.

    python -m segmentation.train --config configs/segmentation/sam_decoder.yaml epochs=5 prompts.p_box=1.0

Nested keys use dots. Values are parsed as YAML (``5`` is an int, ``null`` is
None, ``[1, 2]`` a list). A key that the defaults do not have is an error,
so a typo never silently trains with the default.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from converters.errors import ConversionError


def merge(defaults: Mapping, updates: Mapping, *, where: str = "") -> dict:
    """Deep-merges ``updates`` into a copy of ``defaults``; unknown keys are errors."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in updates.items():
        path = f"{where}{key}"
        if key not in merged:
            known = ", ".join(sorted(merged))
            raise ConversionError(f"unknown config key '{path}' (known here: {known})")
        if isinstance(merged[key], dict):
            if not isinstance(value, Mapping):
                raise ConversionError(f"config key '{path}' needs a mapping, got {value!r}")
            merged[key] = merge(merged[key], value, where=f"{path}.")
        else:
            current = merged[key]
            if isinstance(value, str) and _is_number(current):
                value = _number(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
            if _is_number(current) and isinstance(value, str):
                raise ConversionError(f"config key '{path}' needs a number, got {value!r}")
            merged[key] = value
    return merged


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(text: str) -> int | float | str:
    """``"1e-3"`` -> 0.001: YAML 1.1 (PyYAML) reads exponents without a dot as strings."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_overrides(items: Sequence[str]) -> dict:
    """``["epochs=5", "prompts.p_box=1"]`` -> ``{"epochs": 5, "prompts": {"p_box": 1}}``."""
    result: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConversionError(f"override '{item}' is not key=value")
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            value = text
        if isinstance(value, str):
            value = _number(value)
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


def load_config(defaults: Mapping, path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict:
    """Defaults, then the YAML file, then the command-line overrides."""
    config = copy.deepcopy(dict(defaults))
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConversionError(f"cannot read config {path}: {error}") from None
        if not isinstance(data, Mapping):
            raise ConversionError(f"config {path} must be a YAML mapping")
        config = merge(config, data)
    return merge(config, parse_overrides(overrides))


def save_config(config: Mapping, path: str | Path) -> None:
    """Writes the resolved config (``args.yaml`` in the run folder)."""
    Path(path).write_text(yaml.safe_dump(_plain(config), sort_keys=False))


def _plain(value):
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
