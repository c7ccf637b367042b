"""What detection needs to know about a converted data set: class names and MVTec categories.

The converters write ``data.yaml`` (``path``, ``train``, ``val``, ``test``,
``names``) and, beside it, ``splits.json`` whose record keys are
``category/subset/defect/stem``; the categories come from those keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from converters.errors import ConversionError
from converters.splits import SPLITS, load_splits


def read_data_yaml(path: str | Path) -> dict:
    """The mapping in a YOLO ``data.yaml``; a one-line :class:`ConversionError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"data file not found: {path} (a data.yaml written by converters.mvtec2yolo)")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConversionError(f"cannot read data file {path}: {' '.join(str(error).split())}") from None
    if not isinstance(data, dict):
        raise ConversionError(f"data file {path} is not a YAML mapping")
    return data


def data_names(path: str | Path) -> list[str]:
    """Class names of a ``data.yaml`` in id order (``names`` as a list or an ``{id: name}`` mapping)."""
    names = read_data_yaml(path).get("names")
    if isinstance(names, Mapping):
        names = [names[k] for k in sorted(names, key=int)]
    if not isinstance(names, list) or not names:
        raise ConversionError(f"data file {path} has no class names ('names:')")
    return [str(n) for n in names]


def splits_file(data_yaml: str | Path) -> Path | None:
    """The ``splits.json`` beside ``data_yaml`` (or in its ``path:`` folder), or None."""
    data_yaml = Path(data_yaml)
    candidates = [data_yaml.parent / "splits.json"]
    root = read_data_yaml(data_yaml).get("path")
    if root:
        candidates.append(Path(root) / "splits.json")
    return next((c for c in candidates if c.is_file()), None)


def dataset_categories(data_yaml: str | Path) -> list[str]:
    """Sorted MVTec categories of the images in a converted data set; empty when there is no splits.json."""
    found = splits_file(data_yaml)
    if found is None:
        return []
    splits = load_splits(found)
    return sorted({key.split("/", 1)[0] for split in SPLITS for key in splits[split]})
