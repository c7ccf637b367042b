"""Why a CUDA device asked for is not there, in one sentence every command's ``--device`` check shares.

detection's commands ask ultralytics (:func:`detection.train_config.check_device`), the SAM commands
ask torch (:func:`segmentation.evaluate.resolve_device`); both say a missing CUDA device in these words,
after the flag or config key as the user spelled it.
"""

from __future__ import annotations

from collections.abc import Sequence


def cuda_devices_visible() -> int:
    """How many CUDA devices torch sees here (0 without CUDA, or without a driver)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def missing_cuda(indices: Sequence[int]) -> str | None:
    """Why CUDA devices ``indices`` cannot be used on this machine, or None where torch sees them all.

    >>> missing_cuda([]) is None
    True
    """
    if not indices:
        return None
    count = cuda_devices_visible()
    if count == 0:
        return "no CUDA device is visible on this machine (torch sees none); pass cpu"
    beyond = [index for index in indices if index >= count]
    if not beyond:
        return None
    seen = "0" if count == 1 else f"0 to {count - 1}"
    return (
        f"CUDA device {beyond[0]} asked for, but torch sees {count} here ({seen}); pass one of those, or cpu"
    )


def given(value: object, what: str) -> str:
    """A value as given, after the flag (``--device cuda``) or the config key (``'device' (cuda)``)."""
    return f" {value}" if what.startswith("--") else f" ({value})"
