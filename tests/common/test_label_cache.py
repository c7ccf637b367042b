"""ultralytics' label scan, never saved as labels/<split>.cache inside the data set."""

from __future__ import annotations

import pytest
from ultralytics.data import dataset

from common.label_cache import no_label_cache


def test_the_save_is_skipped_inside_and_restored_after_even_on_error(tmp_path) -> None:
    original = dataset.save_dataset_cache_file
    with pytest.raises(RuntimeError, match="stop"), no_label_cache():
        cache = {"labels": []}
        dataset.save_dataset_cache_file("prefix", tmp_path / "labels.cache", cache, "1.0.3")
        assert cache["version"] == "1.0.3"  # stamped as the original does: get_labels pops it
        raise RuntimeError("stop")
    assert dataset.save_dataset_cache_file is original
    assert list(tmp_path.iterdir()) == []
