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
