"""The one exception type for bad user input, and how to print any error on one line."""

from __future__ import annotations

import difflib
import errno
import re
from collections.abc import Iterable, Sequence

#: Longest text :func:`one_line` keeps; longer library messages are cut.
ONE_LINE_LIMIT = 300


class UserError(ValueError):
    """The user gave something wrong: a missing, unreadable or inconsistent file, or a bad option value.

    Messages name the offending file or value and read on their own, because
    :func:`common.cli.exit_code` prints them as a single ``error: ...`` line.
    Anything else that escapes an entry point is a bug and keeps its traceback.
    """


class UnreadableFileError(OSError):
    """A file that is there but cannot be read (permissions, a disk error), raised where a write may fail in
    the same call: its advice is a readable file (:func:`read_advice`), not a writable folder."""


def one_line(error: BaseException | str, *, limit: int = ONE_LINE_LIMIT) -> str:
    """An exception (or text) as one line of at most ``limit`` characters; its type name if empty.

    Line breaks fold as in :func:`joined_lines`; runs of spaces within a line stay, so a value a wrapped
    library message quotes (``'lot  7'``) reads as given.

    >>> one_line(OSError("disk\\n  full"))
    'disk full'
    """
    text = joined_lines(str(error))
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def joined_lines(text: str) -> str:
    """``text`` on one line: its line breaks, with the indents around them, become one space each.

    Runs of spaces within a line stay: a value the message quotes (``--name 'lot  7'``) is printed as it
    is (all whitespace was folded, so the line named a value that was not the one given).

    >>> joined_lines("Dataset 'x' error\\n  images not found in 'a  b'")
    "Dataset 'x' error images not found in 'a  b'"
    """
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


#: A run of line feeds (``\n``, ``\r\n``), each with the indent after it: how a library wraps its message.
_WRAPS = re.compile(r"(?:(?:\r\n|\n)[ \t]*)+")

#: The other characters :meth:`str.splitlines` breaks a line at (``common.folders.LINE_BREAKS``): a ``\r``
#: not before a ``\n`` (a path's, from a file written with CRLF: ``--root "$(cat root.txt)"``), ``\v``,
#: ``\f``, ``\x1c``-``\x1e``, ``\x85``, ``\u2028``, ``\u2029``. No message wraps at them.
_VALUE_BREAKS = re.compile(r"\r(?!\n)|[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def escaped_breaks(text: str) -> str:
    """``text`` with each line break other than a line feed (:data:`_VALUE_BREAKS`) shown escaped, as
    :func:`repr` writes it (``\\r``, ``\\x0b``, ``\\u2028``): a path or value holding one stays on one line.

    Printed raw, a terminal breaks the line at ``\\x0b`` and ``\\x0c`` and :meth:`str.splitlines` at all
    of them, and a ``\\r`` goes back to the line's start, so that the rest of the line overwrites it.

    >>> print(escaped_breaks("no photos in /data/lot\\r"))
    no photos in /data/lot\\r
    """
    return _VALUE_BREAKS.sub(lambda found: repr(found.group())[1:-1], text)


def message_line(text: str) -> str:
    """A :class:`UserError`'s message on one line, its paths as given and recognisable.

    A line feed (``\\n`` or ``\\r\\n``) is how a wrapped library message goes on: each run of them, with
    the indent after it, is one space (none at either end), so the message reads as one sentence. Any
    other line break (a ``\\r`` not before a ``\\n``; ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``,
    ``\\u2028``, ``\\u2029``) is part of a path or value the message names, and is shown escaped
    (:func:`escaped_breaks`): a ``--root`` read from a CRLF file printed as the folder without its ``\\r``,
    one that exists, and the others were printed raw, breaking the line. Nothing else changes.

    Not :func:`joined_lines`, which strips the ends of each line and breaks at every character
    :meth:`str.splitlines` does: a message ending in a path lost the path's trailing space, and
    ``a\\u2028b.png`` read ``a b.png``, files other than those given. A space at the end of a wrapped
    message's line stays.

    >>> message_line("no photos in /data/lot 7 ")
    'no photos in /data/lot 7 '
    >>> message_line("ultralytics rejects data.yaml: Dataset 'x' error\\n  images not found\\n")
    "ultralytics rejects data.yaml: Dataset 'x' error images not found"
    >>> print(message_line("data root does not exist: /data/mvtec\\r"))
    data root does not exist: /data/mvtec\\r
    """
    folded = _WRAPS.sub(lambda found: "" if found.start() == 0 or found.end() == len(text) else " ", text)
    return escaped_breaks(folded)


def few(items: Sequence[object], limit: int = 3, *, sep: str = ", ") -> str:
    """The first ``limit`` of ``items`` joined, and how many more: a message names a few, not a thousand.

    >>> few(["a.png", "b.png", "c.png", "d.png", "e.png"])
    'a.png, b.png, c.png and 2 more'
    >>> few(["person", "bicycle"], 8)
    'person, bicycle'
    """
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return sep.join(str(item) for item in items[:limit]) + more


def close_match(word: str, names: Iterable[object]) -> str | None:
    """The one of ``names`` that ``word`` is likely a typo of, for a ``did you mean`` hint; None if none is.

    >>> close_match("scrach", ["bent", "color", "flip", "scratch"])
    'scratch'
    >>> close_match("dent", ["bent", "scratch"]) is None
    True
    """
    close = difflib.get_close_matches(word, sorted(map(str, names)), n=1, cutoff=0.8)
    return close[0] if close else None


def file_error(error: OSError) -> str:
    """A file system error as one line: ``strerror: filename``, or its text when it names no file.

    >>> file_error(PermissionError(13, "Permission denied", "/srv/out"))
    'Permission denied: /srv/out'
    >>> file_error(OSError(28, "No space left on device", "/data/a.png", None, "/srv/out/a.png"))
    'No space left on device: /srv/out/a.png (from /data/a.png)'
    """
    if error.strerror and error.filename and error.filename2:  # a copy, link or rename: target first
        return f"{error.strerror}: {error.filename2} (from {error.filename})"
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return one_line(error.strerror or error)


def write_advice(error: OSError, folder: object) -> str:
    """What would let a write into ``folder`` that failed with ``error`` succeed, chosen by its errno.

    A full disk wants space and a refusal a writable folder; a file where a folder of the path should
    be (``Not a directory``, ``File exists``), or a folder where the file should be, wants that moved
    away, which neither space nor permissions would do. Any other error: the two usual causes.

    >>> write_advice(OSError(errno.ENOSPC, "No space left on device"), "/srv/out")
    'free space on its disk'
    >>> write_advice(PermissionError(errno.EACCES, "Permission denied"), "/srv/out")
    'make /srv/out writable'
    >>> write_advice(NotADirectoryError(errno.ENOTDIR, "Not a directory"), "/srv/out")
    'a file stands where a folder of that path should be: move it away'
    """
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free space on its disk"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make {folder} writable"
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a file stands where a folder of that path should be: move it away"
    if error.errno == errno.EISDIR:
        return "a folder stands where that file should be: move it away"
    return f"free space on its disk or make {folder} writable"


def read_advice(error: OSError, file: object) -> str:
    """What would let a read of ``file`` that failed with ``error`` succeed, chosen by its errno.

    >>> read_advice(PermissionError(errno.EACCES, "Permission denied"), "/srv/out/splits.json")
    'make /srv/out/splits.json readable'
    >>> read_advice(OSError(errno.EIO, "Input/output error"), "/srv/out/splits.json")
    'check the disk that holds /srv/out/splits.json'
    """
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"make {file} readable"
    return f"check the disk that holds {file}"
