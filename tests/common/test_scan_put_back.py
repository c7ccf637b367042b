"""tests/conftest.py puts ultralytics' scan back after a test stopped by Ctrl-C inside it.

The two tests run in this order, in one process (``make test`` runs pytest-xdist with ``--dist loadfile``).
"""

from __future__ import annotations

import pytest
from ultralytics.data import utils
from ultralytics.utils import LOGGER

from common.ultralytics_scan import images_left_as_they_are


def test_a_ctrl_c_inside_a_scan_leaves_its_stand_in_for_the_process() -> None:
    own = utils._replace_image
    with pytest.raises(KeyboardInterrupt), images_left_as_they_are([]):
        raise KeyboardInterrupt
    assert utils._replace_image is not own
    assert LOGGER.filters


def test_the_next_test_gets_ultralytics_own_scan_back() -> None:
    assert utils._replace_image.__module__ == "ultralytics.data.utils"
    assert utils._replace_image.__name__ == "_replace_image"
    assert not [f for f in LOGGER.filters if type(f).__name__ == "_NoResavedLines"]
