"""common.devices: the device-name checks every command's --device shares."""

from __future__ import annotations

import pytest

import detection.train_config
import segmentation.evaluate
from common.devices import check_device_name
from common.errors import UserError

#: The SAM commands' names, and detection's, which take GPU lists (the commands' own: a copy here passed
#: whatever they became).
SAM = (segmentation.evaluate.DEVICE_PATTERN, segmentation.evaluate.DEVICE_NAMES)
DETECTION = (detection.train_config.DEVICE_PATTERN, detection.train_config.DEVICE_NAMES)


@pytest.mark.parametrize(
    ("device", "first"),
    [
        ("0,1", "0"),
        ("1,2,3", "1"),
        ("cuda:2,cuda:3", "2"),
        (" 0, 1 ", "0"),
        ("01,02", "1"),
        ("cuda:00,1", "0"),
    ],
)
def test_a_gpu_list_where_one_device_is_taken_says_so_and_names_the_first(device: str, first: str) -> None:
    # --device 0,1 (detection's two GPUs) said "unknown device '0,1': use auto, cpu, ..." with no word of
    # why: the SAM side runs one device per process
    with pytest.raises(UserError) as error:
        check_device_name(device, *SAM, what="--device")
    assert str(error.value) == (
        f"--device: {device!r} lists several GPUs, and one process here takes one device: pass "
        f"cuda:{first} (several GPUs: detection's --device 0,1, or segmentation.train under torchrun)"
    )
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("device", ["0,1", "cuda:0,cuda:1", "0"])
def test_detections_gpu_lists_still_pass(device: str) -> None:
    check_device_name(device, *DETECTION, what="--device")


@pytest.mark.parametrize("device", ["gpu", "0,", ",1", "0,x", "cuda,cuda"])
def test_other_words_are_still_unknown_devices(device: str) -> None:
    with pytest.raises(UserError, match=f"^--device: unknown device '{device}': use auto, cpu"):
        check_device_name(device, *SAM, what="--device")


def test_resolve_device_of_the_sam_commands_tells_a_gpu_list_the_first_gpu() -> None:
    pytest.importorskip("torch")
    from segmentation.evaluate import resolve_device

    with pytest.raises(UserError, match=r"^config key 'device': '0,1' lists several GPUs.*: pass cuda:0 "):
        resolve_device("0,1", what="config key 'device'")
