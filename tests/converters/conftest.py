"""Fixtures of the converters' tests: ``dataset``, a converted set for converters.validate's."""

from __future__ import annotations

import pytest

from converters.convert import ConvertConfig, convert


@pytest.fixture
def dataset(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    convert(
        ConvertConfig(root=tmp_path / "data", out=tmp_path / "out", formats=("yolo", "coco"), progress=False)
    )
    return tmp_path / "out"
