"""ultralytics' scan of a split's images, kept from writing into the data set it reads.

ultralytics' ``YOLODataset`` checks every image of a split (``ultralytics.data.utils.check_image``) and
re-encodes in place a JPEG whose last two bytes are not its end marker ("corrupt JPEG restored and
saved"). ``converters.validate``, ``detection.train`` and ``detection.evaluate`` run that scan on the
user's data set, which this project promises to read, never to write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path


@contextlib.contextmanager
def images_left_as_they_are(resaved: list[Path]):
    """Keeps ultralytics' scan from re-saving a JPEG that does not end in its end marker (its ``check_image``:
    "corrupt JPEG restored and saved", re-encoded in place), adding the image's path to ``resaved`` instead
    (:func:`converters.validation.ultralytics_scan.resaved_note`).

    A check wrote into the data set it checked: the image was re-encoded, a link to a photo replaced by a
    copy, and the split called ``ok``. An ultralytics without that helper is left as it is.

    Stopped by Ctrl-C (or ``SystemExit``), the helper is left held off: the scan's threads may still be
    checking images, and one checking such a JPEG once the helper was back re-saved it after all.
    """
    from ultralytics.data import utils

    replace = getattr(utils, "_replace_image", None)
    if replace is not None:
        utils._replace_image = lambda image, write: resaved.append(Path(image))
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise  # the helper stays held off: the process is ending, a scan thread maybe not yet
    except BaseException:
        _put_back(utils, replace)
        raise
    _put_back(utils, replace)


def _put_back(utils, replace: Callable | None) -> None:
    """Puts ultralytics' ``_replace_image`` (``replace``; None: it had none) back into ``utils``."""
    if replace is not None:
        utils._replace_image = replace
