"""bench/photo_listing.py: which ``photo_files`` each side times (a small tree, no timings checked)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # it imports bench/report.py as ``report``
    import photo_listing

    return photo_listing


def test_a_baseline_from_before_photo_sources_times_its_own_images_module(bench, tmp_path: Path) -> None:
    # a revision from before the split: common/ with no photo_sources.py, photo_files in images.py
    old = tmp_path / "old"
    shutil.copytree(ROOT / "common", old / "common", ignore=shutil.ignore_patterns("__pycache__"))
    (old / "common" / "photo_sources.py").unlink()
    with (old / "common" / "images.py").open("a") as images:
        images.write("\n\ndef photo_files(source):\n    return sorted(Path(source).rglob('*.png')), None\n")
    tree = tmp_path / "tree"
    bench.build_tree(tree, 6, 2)
    timed = {"baseline": [bench.run_worker(old, tree)], "this checkout": [bench.run_worker(ROOT, tree)]}
    # not this checkout's (or an editable install's) common/photo_sources.py under the baseline's name
    assert Path(timed["baseline"][0]["module"]) == old / "common" / "images.py"
    assert Path(timed["this checkout"][0]["module"]) == ROOT / "common" / "photo_sources.py"
    assert {row[0]["files"] for row in timed.values()} == {6}
    assert bench.listed_by(timed) == (
        "`common.images.photo_files(<tree>)` and `common.photo_sources.photo_files(<tree>)`"
    )
