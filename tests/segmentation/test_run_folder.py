"""A fine-tuning's run folder: the training curves' figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from common.errors import UserError
from segmentation.run_folder import check_run_dir, curves_figure
from segmentation.train_config import DEFAULTS


@pytest.mark.parametrize("epochs", [1, 2, 3, 40])
def test_the_curves_mark_whole_epochs_only(epochs: int) -> None:
    row = {"train_loss": 0.3, "val_iou": 0.5, "val_mask_ap": 0.4}
    rows = [{"epoch": e, **row} for e in range(epochs)]
    fig = curves_figure(rows)
    try:
        for axes in fig.axes:
            ticks = [t for t in axes.get_xticks() if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
    finally:
        plt.close(fig)


def test_a_cache_dir_inside_the_data_set_is_refused(tmp_path):
    # cache_dir=<data>/cache was filled in the data set, in the way of its re-conversion (as out= there)
    data = tmp_path / "data"
    data.mkdir()
    config = {**DEFAULTS, "data": str(data), "out": str(tmp_path / "runs"), "cache_dir": str(data / "cache")}
    with pytest.raises(UserError, match=r"is inside the input tree .*; choose another cache_dir="):
        check_run_dir(config, None)
