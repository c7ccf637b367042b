"""A fine-tuning's run folder: the training curves' figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from segmentation.run_folder import curves_figure


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
