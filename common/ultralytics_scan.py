"""ultralytics' scan of a split's images, kept from writing into the data set it reads.

ultralytics' ``YOLODataset`` checks every image of a split (``ultralytics.data.utils.check_image``) and
re-encodes in place a JPEG whose last two bytes are not its end marker ("corrupt JPEG restored and
saved"). ``converters.validate``, ``detection.train`` and ``detection.evaluate`` run that scan on the
user's data set, which this project promises to read, never to write.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from common.errors import few

#: The end of ultralytics' scan line for a JPEG it re-saved (``{image}: corrupt JPEG restored and saved``).
RESAVED_LINE = ": corrupt JPEG restored and saved"


@contextlib.contextmanager
def images_left_as_they_are(resaved: list[Path]):
    """Keeps ultralytics' scan from re-saving a JPEG that does not end in its end marker (its ``check_image``:
    "corrupt JPEG restored and saved", re-encoded in place), adding the image's path to ``resaved`` instead
    (:func:`resaved_images_note`; ``converters.validate``'s ``resaved_note``).

    A check wrote into the data set it checked: the image was re-encoded, a link to a photo replaced by a
    copy, and the split called ``ok``. The scan's line saying it restored and saved the image is dropped from
    ultralytics' log (:class:`_NoResavedLines`): the image was left as it is. An ultralytics without that
    helper is left as it is, its line too: it re-saved the image, and says so.

    Stopped by Ctrl-C (or ``SystemExit``), the helper is left held off: the scan's threads may still be
    checking images, and one checking such a JPEG once the helper was back re-saved it after all. It stays
    held off for the rest of the process (a notebook's next scan too), the line still dropped, and what it
    no longer re-saves is kept in no list: the stopped run's is done.
    """
    from ultralytics.data import utils
    from ultralytics.utils import LOGGER

    replace = getattr(utils, "_replace_image", None)
    if replace is None:
        yield
        return
    utils._replace_image = lambda image, write: resaved.append(Path(image))
    said = _NoResavedLines()
    LOGGER.addFilter(said)
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        # the process is ending, a scan thread maybe not yet; in a notebook it goes on
        utils._replace_image = _not_resaved
        LOGGER.addFilter(_AFTER_A_STOP)  # once, however many stops
        raise
    except BaseException:
        utils._replace_image = replace
        raise
    finally:
        LOGGER.removeFilter(said)
    utils._replace_image = replace


def _not_resaved(image: str, write: bool) -> None:
    """ultralytics' ``_replace_image`` once a scan held off by :func:`images_left_as_they_are` was stopped:
    the image is left as it is, in no run's list."""


class _NoResavedLines(logging.Filter):
    """Drops ultralytics' ``corrupt JPEG restored and saved`` lines from its scan's log record (one record,
    its messages joined): :func:`images_left_as_they_are` left those images as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        lines = record.getMessage().split("\n")
        kept = [line for line in lines if not line.endswith(RESAVED_LINE)]
        if len(kept) == len(lines):
            return True
        record.msg, record.args = "\n".join(kept), ()
        return bool(kept)


#: Drops the lines of every scan after a stopped one (:func:`images_left_as_they_are`).
_AFTER_A_STOP = _NoResavedLines()


def resaved_images_note(
    resaved: Sequence[Path | str], root: Path | None = None, *, by: str, decodes: bool = True
) -> str | None:
    """A note naming the images that ultralytics would re-save, ``resaved`` (:func:`images_left_as_they_are`),
    named below the data set's folder ``root`` (None: as they are given, names already), in the words of
    ``converters.validate``'s; ``by`` says who left them ("training") and, with ``decodes``, that it reads
    them as they decode. None if none is.

    >>> resaved_images_note([Path("/d/images/val/a.jpg")], Path("/d"), by="training")  # doctest: +ELLIPSIS
    '1 JPEG image does not end in its end marker (images/val/a.jpg): ultralytics re-saves it in place ...'
    """
    named = [str(path) if root is None else _in_folder(Path(path), root) for path in dict.fromkeys(resaved)]
    if not named:
        return None
    one = len(named) == 1
    images = "1 JPEG image does" if one else f"{len(named)} JPEG images do"
    its, them, are, they = ("its", "it", "it is", "it") if one else ("their", "them", "they are", "they")
    note = (
        f"{images} not end in {its} end marker ({few(named)}): ultralytics re-saves {them} in place when it "
        f"reads {them} (re-encoded; a link to a photo becomes a copy); {by} left {them} as {are}"
    )
    return f"{note} and reads {them} as {they} {'decodes' if one else 'decode'}" if decodes else note


def _in_folder(path: Path, root: Path) -> str:
    """``path`` below ``root`` (or the folder it links to), else as it is."""
    absolute = Path(os.path.abspath(path))
    for base in (Path(os.path.abspath(root)), Path(root).resolve()):
        if absolute.is_relative_to(base):
            return absolute.relative_to(base).as_posix()
    return str(path)
