from __future__ import annotations

import logging

from detection.freeze_log import FreezeLog


def test_freezing_lines_are_summed_up_and_other_lines_pass(caplog) -> None:
    logger = logging.getLogger("ultralytics")
    with caplog.at_level(logging.INFO, logger="ultralytics"), FreezeLog() as log:
        for name in (
            "model.0.conv.weight",
            "model.10.bn.bias",
            "model.2.m.0.cv1.conv.weight",
            "model.23.dfl.conv.weight",
        ):
            logger.info(f"Freezing layer '{name}'")
        logger.warning(
            "setting 'requires_grad=True' for frozen layer 'model.23.cv3.0.1.0.bn.bias'. "
            "See ultralytics.engine.trainer for customization of frozen layers."
        )
        logger.info("Starting training for 60 epochs...")
    assert [record.getMessage() for record in caplog.records] == ["Starting training for 60 epochs..."]
    assert log.summary() == [
        "frozen: 4 tensors of layers 0, 2, 10, 23 (freeze, and .dfl)",
        "trainable: 1 tensors that came frozen from the pretrained checkpoint "
        "(e.g. model.23.cv3.0.1.0.bn.bias), made trainable by ultralytics "
        "(as any layer freeze does not name)",
    ]
    with caplog.at_level(logging.INFO, logger="ultralytics"):
        logger.info("Freezing layer 'model.1.conv.weight'")  # the filter is gone after the block
    assert caplog.records[-1].getMessage() == "Freezing layer 'model.1.conv.weight'"
    assert FreezeLog().summary() == []


def test_the_summary_counts_tensors_and_lists_each_layer_once_numbers_first(caplog) -> None:
    logger = logging.getLogger("ultralytics")
    with caplog.at_level(logging.INFO, logger="ultralytics"), FreezeLog() as log:
        # two tensors of layer 3, a name of two dots, a layer that is no number, a name too short
        for name in ("model.3.conv.weight", "model.3.bn.bias", "model.12.bias", "head.dfl.weight", "bias"):
            logger.info(f"Freezing layer '{name}'")
        for name in ("model.22.cv3.0.bias", "model.22.cv3.1.bias"):
            logger.warning(f"setting 'requires_grad=True' for frozen layer '{name}'. See ultralytics.")
    assert not caplog.records
    assert len(log.frozen) == 5 and log.frozen[-1] == "bias"
    frozen, trainable = log.summary()
    assert frozen == "frozen: 5 tensors of layers 3, 12, dfl (freeze, and .dfl)"
    assert trainable.startswith("trainable: 2 tensors ") and "(e.g. model.22.cv3.0.bias)" in trainable
