"""ultralytics' per-tensor freezing lines, summed up in one line each.

ultralytics' trainer logs one ``Freezing layer 'model.3.conv.weight'`` line per tensor of the
layers ``freeze`` names (about 100 for ``freeze: 10`` on YOLO11n), and a ``WARNING ⚠️ setting
'requires_grad=True' for frozen layer ...`` per tensor that arrives frozen without being named:
the head branch an open-vocabulary model rebuilds from ``yolo11n.pt`` keeps that checkpoint's
stored ``requires_grad=False`` (ultralytics saves every tensor so), and the trainer makes it
trainable again, which is what training it needs. Neither says anything a user can act on, so
:class:`FreezeLog` keeps them off the console while a run starts and :meth:`FreezeLog.summary`
says the same in one line each.
"""

from __future__ import annotations

import logging

#: ultralytics' logger (``ultralytics.utils.LOGGING_NAME``).
LOGGER_NAME = "ultralytics"


class FreezeLog(logging.Filter):
    """A filter on ultralytics' logger, counting the freezing lines it drops; a context manager.

    >>> with FreezeLog() as log:                  # doctest: +SKIP
    ...     yolo.train(**args)
    >>> print(log.summary())                      # doctest: +SKIP
    """

    def __init__(self) -> None:
        super().__init__()
        self.frozen: list[str] = []
        self.unfrozen: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Freezing layer '"):
            self.frozen.append(message.split("'")[1])
            return False
        if message.startswith("setting 'requires_grad=True' for frozen layer '"):
            self.unfrozen.append(message.split("'")[3])
            return False
        return True

    def __enter__(self) -> FreezeLog:
        logging.getLogger(LOGGER_NAME).addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(LOGGER_NAME).removeFilter(self)

    def summary(self) -> list[str]:
        """One line per kind of line dropped (none: nothing to say)."""
        lines = []
        if self.frozen:
            layers = sorted({name.split(".")[1] for name in self.frozen if name.count(".") >= 2}, key=_number)
            lines.append(
                f"frozen: {len(self.frozen)} tensors of layers {', '.join(layers)} (freeze, and .dfl)"
            )
        if self.unfrozen:
            lines.append(
                f"trainable: {len(self.unfrozen)} tensors that came frozen from the pretrained checkpoint "
                f"(e.g. {self.unfrozen[0]}), made trainable by ultralytics (as any layer freeze "
                "does not name)"
            )
        return lines


def _number(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (10**9, text)
