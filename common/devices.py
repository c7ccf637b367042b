"""The checks every command's ``--device`` shares: a device name it takes, a CUDA device that is there.

detection's commands ask ultralytics (:func:`detection.train_config.check_device`), the SAM commands
ask torch (:func:`segmentation.evaluate.resolve_device`); both refuse a word that is no device name,
and say a missing CUDA device, in these words, after the flag or config key as the user spelled it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from common.errors import UserError

#: Several GPUs in one device name (detection's ``0,1``, which ultralytics spreads a run over).
_GPU_LIST = r"(cuda:)?[0-9]+(\s*,\s*(cuda:)?[0-9]+)+"


def check_device_name(device: object, pattern: str, names: str, *, what: str, name: object = None) -> None:
    """Refuses a ``device`` that is none of the names ``pattern`` matches (``foo``, ``gpu``).

    Args:
        device: the device as given, shown in the error.
        pattern: the names taken, a regular expression matched in full.
        names: those names as the error lists them (``cpu, cuda, cuda:N or mps``).
        what: the flag or config key (``--device``).
        name: the device as the command reads it, where that is not ``device`` itself (ultralytics
            reads ``CUDA:0`` and ``[0, 1]`` as ``cuda:0`` and ``0,1``).

    Raises:
        UserError: ``--device: unknown device 'foo': use cpu, cuda, cuda:N or mps``; a list of GPUs
            (``0,1``) that ``pattern`` does not take is told that one process takes one device, and
            the first GPU's name (``cuda:0``): it was 'unknown device', with no word of why.

    >>> check_device_name("cuda:1", r"cpu|cuda(:[0-9]+)?", "cpu, cuda or cuda:N", what="--device")
    """
    name = device if name is None else name
    if isinstance(name, str) and not re.fullmatch(pattern, name) and re.fullmatch(_GPU_LIST, name.strip()):
        first = int(re.findall(r"[0-9]+", name)[0])  # 00,1 is cuda:0: torch refuses cuda:00
        raise UserError(
            f"{what}: {device!r} lists several GPUs, and one process here takes one device: pass "
            f"cuda:{first} (several GPUs: detection's --device 0,1, or segmentation.train under torchrun)"
        )
    if not isinstance(name, str) or not re.fullmatch(pattern, name):
        raise UserError(f"{what}: unknown device {device!r}: use {names}")


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
