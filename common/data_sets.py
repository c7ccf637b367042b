"""A converted data set named on the command line: its folder, or the converters' ``data.yaml`` in it.

Training takes the ``data.yaml`` (``yolo train data=...``, ``detection.train``, ``segmentation.train``),
and users copy that path into the commands that read the folder (``segmentation.evaluate``,
``segmentation.embed``, ``inspection.evaluate``, ``anomaly.train``, ``anomaly.evaluate``,
``converters.validate``), and the folder into the commands that read the ``data.yaml``
(``detection.train``, ``detection.evaluate``, ``detection.text_embeddings``). :func:`data_set_folder`
and :func:`data_yaml_of` read both spellings as the one each command needs, so what a run records
(``args.yaml``, ``metrics.json``, ``run.json``, ``evaluation.json``) is the same either way; both
refuse a path that is not UTF-8 (:func:`common.folders.check_utf8_path`), which those files would record.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from common.errors import UserError
from common.folders import check_utf8_path, path_exists
from common.io import expand_user

#: The converters write both at the top of every data set folder (``converters.convert``); a
#: ``data.yaml`` is theirs when ``splits.json`` lies beside it.
DATA_YAML = "data.yaml"
SPLITS_JSON = "splits.json"

YAML_SUFFIXES = (".yaml", ".yml")

P = TypeVar("P", str, Path)


def data_set_folder(data: P, *, given: str | None = None, flag: str = "--data") -> P:
    """``data``, or its folder when ``data`` is the ``data.yaml`` the converters wrote in it.

    Anything but a YAML file (a folder, a missing path, ``splits.json``) comes back as given, for the
    command's own checks to name.

    Args:
        data: what the user passed.
        given: how the user named it, as the message begins (``data=PATH``); ``--data PATH`` by default.
        flag: the option alone, for the message about a path that is not UTF-8 (``config key 'data'``).

    Returns:
        The folder, of the type of ``data`` and spelled as its parent (``ds/data.yaml`` -> ``ds``), so a
        path recorded from it is the one recorded when the folder itself is passed.

    Raises:
        UserError: ``data`` is another YAML file, or a ``data.yaml`` without ``splits.json`` beside it
            (a hand-written one, a repeat-sampled run's); its path is not UTF-8: one line naming it.

    >>> data_set_folder("datasets/metal_nut_yolo")
    'datasets/metal_nut_yolo'
    """
    check_utf8_path(data, flag=flag)
    path = Path(data)
    if path.suffix.lower() not in YAML_SUFFIXES or not path.is_file():
        return data
    given = given or f"--data {data}"
    if path.name != DATA_YAML:
        raise UserError(
            f"{given} is a YAML file, not a data set folder the converters wrote (or the {DATA_YAML} in one)"
        )
    if not (path.parent / SPLITS_JSON).is_file():
        raise UserError(
            f"{given} has no {SPLITS_JSON} beside it: not a data set the converters wrote; "
            "pass a folder written by converters.mvtec2yolo / mvtec2coco"
        )
    return type(data)(path.parent)


def data_yaml_of(data: P, *, given: str | None = None, flag: str = "--data") -> P:
    """``data``, or the ``data.yaml`` in it when ``data`` is a folder (a converted data set's).

    Any folder holding a ``data.yaml`` qualifies, not only the converters' (a tiled or repeat-sampled
    detection data set has no ``splits.json``): the YOLO commands read the ``data.yaml`` alone. A file
    or a missing path comes back as given, for the command's own checks to name.

    Args:
        data: what the user passed; ``~`` is expanded when it is a folder (a config key is not
            expanded by a shell).
        given: how the user named it, as the message begins (``data=PATH``); ``--data PATH`` by default.
        flag: as for :func:`data_set_folder`.

    Returns:
        The ``data.yaml``, of the type of ``data`` and spelled as the folder's child (``ds`` ->
        ``ds/data.yaml``), so a path recorded from it is the one recorded when the file itself is passed.

    Raises:
        UserError: ``data`` is a folder without a ``data.yaml`` file; its path is not UTF-8: one line
            naming it.

    >>> data_yaml_of("datasets/metal_nut_yolo/data.yaml")
    'datasets/metal_nut_yolo/data.yaml'
    """
    check_utf8_path(data, flag=flag)
    folder = expand_user(data)  # ~lot_7 (no such user): that folder, as in a shell
    # path_exists: one that cannot be searched is named as such, not passed on or refused as holding no
    # data.yaml (Python 3.13's Path.is_dir and is_file are False there)
    if not (path_exists(folder) and folder.is_dir()):
        return data
    if not (path_exists(folder / DATA_YAML) and (folder / DATA_YAML).is_file()):
        given = given or f"--data {data}"
        raise UserError(
            f"{given} is a folder without a {DATA_YAML}: pass a data set folder written by "
            f"converters.mvtec2yolo, or a {DATA_YAML}"
        )
    return type(data)(folder / DATA_YAML)
