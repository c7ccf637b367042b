"""Files of the annotation app: which images it lists, which paths it serves, how it writes.

The server reads only below two roots, the ``--images`` folder and the ``--out``
folder. :func:`resolve_inside` is the one gate every served path goes through:
a relative POSIX path whose resolved target (symlinks followed) is a regular
file inside its root. :func:`list_images` applies the same rule while listing,
so a symlink in ``--images`` that leads elsewhere is never shown either.

Every file the app writes goes through :func:`common.io.atomic_write` (a
temporary file in the same folder, then ``os.replace``), so a killed server
leaves the old file or the new one, never a half-written one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from common.folders import check_utf8_names
from common.image_files import IMAGE_SUFFIXES
from segmentation.annotate.errors import AnnotationError, NotFoundError

#: Longest relative path accepted in a request (characters); longer ones are refused unread.
MAX_RELATIVE_PATH = 1024


def check_relative(relative: str) -> PurePosixPath:
    """A request path checked for shape only: relative, POSIX, no ``..``, no empty parts.

    Args:
        relative: path as sent by the browser, ``/``-separated (``lot_3/0001.jpg``).

    Returns:
        The path as a :class:`PurePosixPath`.

    Raises:
        AnnotationError: absolute (``/etc/passwd``, ``C:/x``, ``C:``, ``//host/x``), a backslash,
            a NUL or control character, a ``.`` or ``..`` part, an empty part, or too long.
    """
    if not relative or len(relative) > MAX_RELATIVE_PATH:
        raise AnnotationError(f"bad path: empty or longer than {MAX_RELATIVE_PATH} characters")
    if any(ord(char) < 32 for char in relative) or "\\" in relative:
        raise AnnotationError("bad path: control characters and backslashes are not allowed")
    if relative.startswith("/") or re.match(r"[A-Za-z]:(/|$)", relative):  # a drive; "1:30.png" is a name
        raise AnnotationError(f"absolute paths are refused: {relative!r}")
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise AnnotationError(f"path parts '', '.' and '..' are refused: {relative!r}")
    return PurePosixPath(relative)


def resolve_inside(root: Path, relative: str) -> Path:
    """The regular file ``root/relative``, refused unless it really lies inside ``root``.

    Symlinks are followed and the final target must still be inside ``root`` (as
    resolved itself), so neither ``..`` nor a link to ``/etc`` reaches outside.

    >>> resolve_inside(Path("photos"), "lot_3/0001.jpg")  # doctest: +SKIP
    PosixPath('/abs/photos/lot_3/0001.jpg')

    Raises:
        AnnotationError: a malformed or absolute path, or one leading outside ``root``.
        NotFoundError: nothing there, or not a regular file.
    """
    checked = check_relative(relative)
    base = root.resolve()
    try:
        target = base.joinpath(*checked.parts).resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(f"no such file: {relative}") from None
    except (OSError, RuntimeError) as error:  # symlink loop, permission
        raise AnnotationError(f"cannot open {relative}: {error}") from None
    if target != base and base not in target.parents:
        raise AnnotationError(f"refused: {relative} leads outside the served folder")
    if not target.is_file():
        raise NotFoundError(f"not a file: {relative}")
    return target


def list_images(root: Path, *, exclude: Path | None = None) -> list[str]:
    """Image files below ``root`` as sorted relative POSIX paths (the app's image keys).

    Hidden files and folders (``.name``) are skipped, and so are symlinks whose
    target lies outside ``root``, files below ``exclude`` (the output folder,
    should it sit inside ``root``) and files whose suffix is not one of
    :data:`converters.mvtec.IMAGE_SUFFIXES`.

    Raises:
        AnnotationError: ``root`` is not a folder; an image whose path the page could not ask for
            (:func:`check_relative`: a backslash or control character in a name, a top folder named
            like a drive, ``C:``, or a path over :data:`MAX_RELATIVE_PATH`), which was left out unsaid.
        UserError: a name that is not UTF-8 (``annotate_state.json``, the page's JSON and the
            export's COCO files name every image: :func:`common.folders.check_utf8_names`).
    """
    if not root.is_dir():
        raise AnnotationError(f"image folder does not exist or is not a folder: {root}")
    base = root.resolve()
    check_utf8_names(base)  # annotate_state.json records the folder itself
    skip = exclude.resolve() if exclude is not None else None
    keys: list[str] = []
    for folder, dirs, files in os.walk(base, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or here / d != skip))
        for name in files:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            relative = (here / name).relative_to(base).as_posix()
            try:  # a name the page cannot ask for: it was left out of the list, unsaid
                check_relative(relative)
            except AnnotationError as error:
                photo = repr(str(here / name))  # a newline in a name shows as \n
                raise AnnotationError(f"{photo} cannot be annotated ({error}): rename it") from None
            try:
                resolve_inside(base, relative)
            except AnnotationError:
                continue  # a dangling link or one that leads outside: never listed, never served
            check_utf8_names(here / name, below=base)  # the state file and the page's JSON name it
            keys.append(relative)
    return sorted(keys)
