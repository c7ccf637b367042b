"""Output folders: where one may go, and how it is put in place whole.

A command's output folder is checked before any work (:func:`check_output_folder`), so a
mistyped ``--out`` costs no model run. It is then built in a hidden
``.<out>.partial-<host>-<pid>-<random>`` beside its target (:func:`common.io.partial_dir`) and
renamed into place when complete (:func:`build_folder`), so a failed or interrupted run leaves
nothing half-written. An old folder replaced with ``--overwrite`` is first moved aside to
``.<out>.old.<host>-<pid>-<random>.tmp`` and removed only once the new one is in place. A run
killed half-way leaves those hidden folders behind: the next run of the same target removes them
once their writer is gone (:func:`common.io.remove_stale`; a concurrent run's build is left
alone) and says so in one ``note:`` line on stderr.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TypeVar

from common.errors import UserError, few, file_error, one_line, read_advice
from common.io import (
    expand_user,
    is_stale,
    link_loop_text,
    not_found_text,
    partial_dir,
    remove_stale,
    temporary_path,
)

T = TypeVar("T")


def check_creatable(folder: Path, *, what: str = "folder", flag: str = "") -> None:
    """Refuses ``folder`` when it goes through a link loop (:func:`common.io.link_loop_text`, named as
    ``flag`` or else ``what``), or when its nearest existing ancestor is a file or a folder we cannot write.

    ``what`` names it in the message: ``file`` for a file to be written there (it said ``folder``). A loop
    on its path, which ``Path.exists`` takes for nothing, was passed over for the folder above it: a
    single-file output (``detection.text_embeddings --out loop/names.pt``) was made, then not written.
    """
    if loop := link_loop_text(folder, what=flag or what):
        raise UserError(loop)
    _check_ancestor(folder, what=what)


def _check_ancestor(folder: Path, *, what: str) -> None:
    """Refuses ``folder`` when its nearest existing ancestor is a file or a folder we cannot write.

    :func:`check_creatable` without its link-loop check, for :func:`check_output_folder`, which made it
    before anything was touched.
    """
    absolute = Path(folder).absolute()
    # os.path.exists: the nearest one that can be looked up; below a folder that cannot be searched none can
    ancestor = next(parent for parent in absolute.parents if os.path.exists(parent))
    if not ancestor.is_dir():
        raise UserError(f"cannot create {what} {folder}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        if _search_refused(ancestor / absolute.relative_to(ancestor).parts[0]):  # was 'is not writable'
            raise UserError(
                f"cannot create {what} {folder}: {ancestor} cannot be searched; {search_advice(ancestor)}"
            )
        raise UserError(f"cannot create {what} {folder}: {ancestor} is not writable")


def _search_refused(path: Path) -> bool:
    """Whether the lookup of ``path`` is refused (its folder may not be searched: no ``x`` permission)."""
    try:
        os.lstat(path)
    except PermissionError:
        return True
    except OSError:
        return False
    return False


def check_output_folder(
    folder: str | Path,
    *,
    flag: str = "--out",
    what: str = "folder",
    overwrite: bool | None = None,
    holds: Iterable[str] | None = None,
    replaced_by: str = "--overwrite",
    marker: str | None = None,
) -> Path:
    """``folder`` once a command may write its results there; checked before any work.

    Args:
        folder: the output folder.
        flag: how messages name it (``--out``, ``--cache-dir``, ``config key 'project':``).
        what: what the folder holds, for the message about a file in its place.
        overwrite: False: an existing folder is refused, unless it is empty (:func:`is_empty_folder`:
            made beforehand, as ``git clone`` takes one); True: it will be replaced whole (never a
            file); None: results are written into an existing folder.
        holds: with ``overwrite``, the names (``fnmatch`` patterns) an earlier run of the command
            leaves in the folder: one holding anything else is refused (:func:`check_replaceable`).
            None: any folder is replaced.
        replaced_by: what replaces the folder, for that message: ``--overwrite``, or a default
            folder that each re-run replaces without it (``anomaly.evaluate``'s ``<run>/eval-mvtec``).
        marker: with ``holds``, the file every run of the command leaves there (``splits.json``): a
            folder holding some of ``holds`` but not it was made by hand or by another tool
            (:func:`check_replaceable`).

    Raises:
        UserError: its path is not UTF-8 (:func:`check_utf8_path`) or goes through a link loop
            (:func:`common.io.link_loop_text`); a file stands at ``folder`` (with or without
            ``overwrite``); it exists and ``overwrite`` is False, or holds other names than ``holds``; it
            is to be replaced (``overwrite`` not None) and is or holds the working folder
            (:func:`check_not_working_folder`); a file or a read-only folder is on its path; it exists, is
            to be replaced and its parent is read-only.
    """
    folder = Path(folder)
    check_utf8_path(folder, flag=flag)  # before the old-copy rename below: nothing is touched
    if loop := link_loop_text(folder, what=flag):  # exists() is False through one: it passed, the work done
        raise UserError(loop)
    restore_old_copy(folder)  # a killed replacement's old copy is the folder: checked as it
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {folder} is a file, not a {what}")
    if folder.exists() and overwrite is False and not is_empty_folder(folder):
        raise UserError(f"output folder exists: {folder} (pass --overwrite to replace it)")
    if overwrite is not None:  # replaced by renaming (an empty one too): None writes into it
        check_not_working_folder(folder, flag=flag)
    if folder.exists() and overwrite and holds is not None:
        check_replaceable(folder, holds, flag=flag, replaced_by=replaced_by, marker=marker)
    if not folder.exists():
        _check_ancestor(folder, what="folder")  # check_creatable, its loop check made above
    elif overwrite is not None and not os.access(folder.absolute().parent, os.W_OK | os.X_OK):
        # built beside it and renamed into place (:func:`build_folder`): refused only once the work was done
        raise UserError(f"cannot replace {folder}: {folder.absolute().parent} is not writable")
    return folder


def check_not_working_folder(folder: Path, *, flag: str = "--out", removed: str | None = None) -> None:
    """Refuses to replace ``folder`` when it is the working folder or holds it.

    A folder is replaced by renaming (:func:`build_folder`): the shell that ran the command would be
    left in the old one, deleted (``ls`` shows nothing), the results beside it under the same name.
    A link is renamed, not the folder it points to: allowed.

    ``removed``: the folder is removed, not replaced; why, for the message in place of ``flag``
    (``an earlier run's that this run removes from its folder (exist_ok)``). A link is allowed here too:
    removing it leaves the folder it points to.

    Raises:
        UserError: naming ``folder`` (and the working folder when ``folder`` holds it).
    """
    if folder.is_symlink() or not folder.is_dir():
        return
    try:
        here, target = Path.cwd(), folder.resolve()
    except FileNotFoundError:  # the working folder is gone already (deleted from another shell): in none
        return
    if here != target and target not in here.parents:
        return
    where = "is the working folder" if here == target else f"holds the working folder {here}"
    named, happens = f"{flag} {folder}", "the results are renamed into its place, which"
    if removed is not None:
        named, happens = f"{folder}, {removed},", "removing it"
    raise UserError(
        f"{named} {where}: {happens} would leave your shell in a deleted folder; "
        "run the command from outside it"
    )


def path_exists(path: str | Path) -> bool:
    """Whether anything is at ``path`` (a link followed to what it points to), as Python 3.11's
    ``Path.exists`` says on every version: False where nothing is there (or a link loop, which a caller
    names with :func:`common.io.link_loop_text`), an error where it cannot be looked for.

    From Python 3.13 ``Path.exists`` is ``os.path.exists``, False for every ``OSError``: a photo in a folder
    that may not be searched (no ``x`` permission), or a path too long for the file system, was called
    missing, and its line told the user to put back what was there.

    Raises:
        OSError: naming ``path``, which cannot be looked for (permissions, a name too long, a disk error).
    """
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as error:
        if error.errno == errno.ELOOP:
            return False
        raise
    except ValueError:  # a NUL in the path: no file can be named so
        return False
    return True


def unsearchable_folder(path: str | Path) -> Path | None:
    """The outermost folder of ``path`` that may not be searched (no ``x`` permission), None when each may.
    The outermost: a folder below one that may not be searched reads as one too."""
    return next(
        (folder for folder in reversed(Path(path).absolute().parents) if not os.access(folder, os.X_OK)), None
    )


def search_advice(folder: str | Path) -> str:
    """``let <folder> be searched (chmod a+x <folder>)``, the folder quoted for a shell."""
    return f"let {folder} be searched (chmod a+x {shlex.quote(str(folder))})"


def lookup_text(path: str | Path, what: str) -> str | None:
    """``cannot read <what> <path>: <reason>: <advice>`` where ``path`` cannot be looked for (a folder of it
    that may not be searched: :func:`search_advice`), else None (there, or nothing there: the caller says).

    From Python 3.13 ``Path.is_file`` is False there (3.11 raised): a checkpoint in a folder the user may not
    search was called not found.
    """
    try:
        path_exists(path)
    except OSError as error:
        blocked = unsearchable_folder(path) if error.errno in (errno.EACCES, errno.EPERM) else None
        advice = search_advice(blocked) if blocked is not None else read_advice(error, path)
        return f"cannot read {what} {path}: {error.strerror or one_line(error)}: {advice}"
    return None


def is_empty_folder(folder: Path) -> bool:
    """``folder`` is a folder of its own (not a link to one) with nothing in it, hidden files included.

    One that cannot be listed is not known to be empty: False (refused as an existing folder, as before).
    """
    try:
        return folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir())
    except PermissionError:
        return False


#: Files a file browser writes by itself into a folder it shows (macOS Finder, Windows Explorer): not the
#: user's, so a folder replaced whole may lose them; opening an export to look at it blocked every later one.
BROWSER_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


def foreign_names(folder: Path, holds: Iterable[str]) -> list[str]:
    """The names in ``folder`` matching none of the patterns ``holds`` (nor :data:`BROWSER_FILES`), sorted."""
    patterns = [*holds, *BROWSER_FILES]
    return sorted(p.name for p in folder.iterdir() if not any(fnmatchcase(p.name, pat) for pat in patterns))


def check_replaceable(
    folder: Path,
    holds: Iterable[str],
    *,
    flag: str = "--out",
    replaced_by: str = "--overwrite",
    marker: str | None = None,
) -> None:
    """Refuses to replace ``folder`` whole when it holds anything but names matching ``holds``, or, given a
    ``marker``, holds some of them without it.

    ``--overwrite`` replaces an earlier run's output; a folder that also holds the user's own
    files (or is another folder altogether, mistyped) would lose them with it. Names alone do not tell
    a run's folder from one of the same layout made otherwise: a YOLO data set of ``images/``, ``labels/``
    and ``data.yaml`` made by hand holds the user's photos, and ``marker`` is what only a run leaves.

    Raises:
        UserError: naming up to three of the other entries, or the missing ``marker``.
    """
    holds = list(holds)
    others = foreign_names(folder, holds)
    if others:
        shown = few(others)
        raise UserError(
            f"{flag} {folder} holds {shown}, which this command does not write: {replaced_by} replaces "
            "the folder whole and would delete it; choose another folder, or move those out"
        )
    ours = foreign_names(folder, ())
    if marker is not None and ours and marker not in ours:
        raise UserError(
            f"{flag} {folder} holds {few(ours)} but no {marker}, which every run of this command writes: "
            f"it was made otherwise (by hand, another tool), and {replaced_by} replaces the folder whole and "
            "would delete it; choose another folder, or move it away"
        )


def check_run_name(name: object, *, inside: str) -> None:
    """``name`` is one plain folder name: joined to the folder of key ``inside``, ``../x`` would escape it.

    Raises:
        UserError: a name with a path separator, or ``.`` / ``..``; None and ``""`` pass (default names).
    """
    if name is None or name == "":
        return
    text = str(name)
    if text in {".", ".."} or any(sep in text for sep in "/\\"):
        raise UserError(f"config key 'name' needs a plain folder name inside '{inside}', got {text!r}")


#: What Windows keeps for its devices, in any letter case and with any extension (``nul.txt`` too): no
#: file or folder takes such a name there.
WINDOWS_DEVICE_NAMES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)), *(f"lpt{n}" for n in range(1, 10))}
)
#: The longest name :func:`check_folder_name` takes, in characters.
MAX_FOLDER_NAME = 100


def check_folder_name(name: object, what: str, *, spaces: bool = False, windows: bool = True) -> str:
    """``name`` when it can be one folder's name on Linux, macOS and Windows alike; UserError otherwise.

    The one rule of the names that become folders of a tree (the annotation page's classes and
    category, a synthetic set's category): letters and digits of any script (:meth:`str.isalnum`:
    ``傷``, ``défaut``), ``_``, ``-``, ``.`` and, with ``spaces``, spaces between words; up to
    :data:`MAX_FOLDER_NAME` characters (and 255 UTF-8 bytes), starting with a letter or digit: never
    ``.``, ``..``, a hidden name, ``/``, ``\\`` or a control character. Refused too is what Windows
    cannot hold: a name ending with ``.`` or a space (``scratch.`` is the folder ``scratch`` there)
    and a device name (:data:`WINDOWS_DEVICE_NAMES`).

    >>> check_folder_name("傷", "class"), check_folder_name("big scratch", "class", spaces=True)
    ('傷', 'big scratch')

    Args:
        name: the name as given.
        what: how the message names it (``"class"``, ``"category"``).
        spaces: spaces between words are allowed (never at either end).
        windows: False: a name only Windows cannot hold (:func:`windows_problem`) is taken, as the rule
            took it before it refused those (an annotation session saved then, whose names stay).

    Raises:
        UserError: ``bad <what> name '<name>': <why>``, one line.
    """
    separators = "_-. " if spaces else "_-."

    def plain(text: str) -> bool:
        return bool(text) and text[0].isalnum() and all(c.isalnum() or c in separators for c in text)

    if windows and isinstance(name, str) and name != name.rstrip(". ") and plain(name.rstrip(". ")):
        raise UserError(f"bad {what} name {name!r}: {windows_problem(name)}; remove it")
    if not isinstance(name, str) or len(name) > MAX_FOLDER_NAME or not plain(name):
        between = "spaces between words, " if spaces else ""
        raise UserError(
            f"bad {what} name {name!r}: use letters and digits (any script), {between}'_', '-', '.' (up to "
            f"{MAX_FOLDER_NAME}, starting with a letter or digit)"
        )
    if (size := len(name.encode())) > 255:
        raise UserError(f"bad {what} name {name!r}: {size} bytes in UTF-8, over the 255 a folder name takes")
    if windows and (problem := windows_problem(name)) is not None:
        raise UserError(f"bad {what} name {name!r}: {problem}; choose another")
    return name


def windows_problem(name: str) -> str | None:
    """Why Windows cannot hold a file or folder named ``name``; None when it can (as far as
    :func:`check_folder_name` looks: a ``.`` or space at the end, a device name).

    >>> windows_problem("scratch.")
    "Windows drops a '.' or space at the end of a folder name, so it would be the folder 'scratch' there"
    >>> windows_problem("scratch") is None
    True
    """
    if name != (kept := name.rstrip(". ")):
        return (
            "Windows drops a '.' or space at the end of a folder name, so it would be the folder "
            f"{kept!r} there"
        )
    device = name.split(".", 1)[0].rstrip(" ").casefold()
    if device in WINDOWS_DEVICE_NAMES:
        return (
            f"Windows keeps the name {device!r} for a device (con, prn, aux, nul, com1-com9, lpt1-lpt9, "
            "with any extension), so no folder there can have it"
        )
    return None


#: Characters no Windows file or folder name holds, besides the path separators and control characters.
_WINDOWS_RESERVED_CHARACTERS = frozenset('<>:"|?*')


def windows_safe_name(name: str) -> str:
    """``name`` as one visible folder name that Linux, macOS and Windows all hold; unchanged when it is one.

    A path separator, control character or one of ``<>:"|?*`` becomes ``_``, as does each leading
    ``.`` (hidden, or ``.`` and ``..``) and each trailing ``.`` or space (Windows drops those); a device
    name (:data:`WINDOWS_DEVICE_NAMES`) gets ``_`` after it; a name over 255 UTF-8 bytes is cut to 240,
    leaving room for a suffix that tells it from another. For names given by others (a detector's
    classes), where :func:`check_folder_name` would refuse them.

    >>> windows_safe_name("crack/scratch"), windows_safe_name("../x"), windows_safe_name("scratch.")
    ('crack_scratch', '___x', 'scratch_')
    >>> windows_safe_name("con"), windows_safe_name("Aux.x"), windows_safe_name("big dent")
    ('con_', 'Aux_.x', 'big dent')
    """
    name = "".join("_" if c in "/\\" or c in _WINDOWS_RESERVED_CHARACTERS or ord(c) < 32 else c for c in name)
    if len(name.encode()) > 255:
        name = name.encode()[:240].decode(errors="ignore")  # a cut character is dropped
    kept = name.strip(".").rstrip(". ")
    if kept:
        start = name.index(kept)
        name = "_" * start + kept + "_" * (len(name) - start - len(kept))
    else:
        name = "_" * len(name)
    stem, dot, rest = name.partition(".")
    if stem.rstrip(" ").casefold() in WINDOWS_DEVICE_NAMES:
        name = f"{stem}_{dot}{rest}"
    return name or "_"


def check_input_file(path: str | Path, what: str, *, inside: Iterable[str] = ()) -> Path:
    """``path`` when it is a file; a run folder given instead gets the file in it named.

    Args:
        what: the file's kind, as the message begins (``weights``, ``SAM checkpoint``).
        inside: where a run folder holds the file (``weights/best.pt``), first found named.

    Raises:
        UserError: ``<what> not found: <path>``, or ``<what> <path> is a folder, not a file: pass
            <path>/<file>`` (or ``pass the <what> file itself`` when none of ``inside`` is there).
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise UserError(lookup_text(path, what) or not_found_text(path, what))
    found = [path / name for name in inside if (path / name).is_file()]
    wanted = f"pass {found[0]}" if found else f"pass the {what} file itself"
    raise UserError(f"{what} {path} is a folder, not a file: {wanted}")


def check_outside_tree(out: str | Path, tree: str | Path) -> None:
    """Refuses an output folder inside the input ``tree``, or holding it (``--overwrite`` would delete it).

    Both sides are resolved (symlinks and ``..`` followed), so ``--out root/x/../root/sub`` and a
    symlinked input are seen for what they are.

    Raises:
        UserError: naming both folders.
    """
    check_not_inside(out, tree)
    out, tree = Path(out).resolve(), Path(tree).resolve()
    if out in tree.parents:
        raise UserError(f"output folder {out} contains the input tree {tree}; choose another --out")


def check_not_inside(out: str | Path, tree: str | Path, *, flag: str = "--out") -> None:
    """Refuses an output folder that is the input ``tree`` or lies inside it (resolved, as above).

    Results written into a data set are in the way of its next conversion (``--overwrite``
    replaces only the folders a converter writes), and may be read back as its files.

    Raises:
        UserError: naming both folders and ``flag``.
    """
    out, tree = Path(out).resolve(), Path(tree).resolve()
    if out == tree or tree in out.parents:
        raise UserError(f"output folder {out} is inside the input tree {tree}; choose another {flag}")


def check_cache_outside(cache_dir: str | Path, out: str | Path, *, replaced_by: str = "--overwrite") -> None:
    """Refuses a ``--cache-dir`` that is ``out`` or lies inside it (resolved); ``replaced_by``: what
    replaces ``out`` whole, for the message (``--overwrite``, or ``a re-run``).

    The cache made there at the first photo's embedding got the finished run refused, once every
    photo was done, as "output folder exists", and the same with ``--overwrite`` as holding files it
    does not write (the cache): no way on but another folder, which neither message named.

    Raises:
        UserError: naming both folders.
    """
    cache, folder = Path(cache_dir).resolve(), Path(out).resolve()
    if cache == folder or folder in cache.parents:
        where = "the folder of" if cache == folder else "inside"
        raise UserError(
            f"--cache-dir {cache} is {where} --out {folder}, which holds this run's results alone "
            f"({replaced_by} replaces it whole): choose a cache folder outside it"
        )


def check_utf8_names(path: str | Path, *, below: str | Path | None = None, flag: str | None = None) -> None:
    """Refuses a file or folder name of ``path`` (below ``below``, if given) that is not UTF-8.

    Linux names are bytes; Python gives those it cannot decode as lone surrogates
    (``os.fsdecode(b"bad\\xff.png") == "bad\\udcff.png"``), which ``json.dumps`` writes as
    ``"\\udcff"``: other JSON readers (browsers, jq, Go, Rust) reject or mangle such a file, so a
    name that goes into a COCO file, ``images.json`` or a report is refused before anything is written.

    Args:
        path: the file or folder.
        below: check only the names below this folder (a ``--source`` whose own path was checked).
        flag: the option that named ``path`` (``--out``, ``--data``), for the message about a folder
            given to a command (:func:`check_utf8_path`); None: a name found in a folder read.

    Raises:
        UserError: naming the folder and the name (as bytes, ``b'bad\\xff.png'``): rename it.
    """
    if below is None and isinstance(path, str | Path) and _is_utf8(str(path)):  # then every name is
        return
    path = Path(path)
    folder = Path(path.anchor if below is None else below)
    for part in path.relative_to(folder).parts:
        try:
            part.encode("utf-8")
        except UnicodeEncodeError:
            shown = ascii(os.fsencode(part))
            if flag is not None:
                raise UserError(
                    f"{flag.rstrip(':')} has a name that is not UTF-8, {shown} (in {folder}): rename it, or "
                    "pass another folder (the commands' files record the path, and JSON and YAML readers "
                    "refuse such names)"
                ) from None
            raise UserError(
                f"{folder} holds a name that is not UTF-8, {shown}: rename it "
                "(the JSON files written name it, and JSON readers refuse such names)"
            ) from None
        folder = folder / part


def _is_utf8(text: str) -> bool:
    """Whether ``text`` (a path; a name not UTF-8 holds lone surrogates) encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: The characters :meth:`str.splitlines` breaks a line at.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def check_one_line_names(path: str | Path, *, below: str | Path | None = None) -> None:
    """Refuses a file or folder name of ``path`` (below ``below``, if given) that holds a line break
    (:data:`LINE_BREAKS`).

    Such a name was taken and written into the files a command writes: the converted data set's file
    names, which lists of one file per line (YOLO's image lists, a shell loop, ``ls``) read as two
    names, neither a file; the anomaly commands' ``scores.csv`` rows and ``report.md`` table rows.

    Args:
        path: the file or folder.
        below: check only the names below this folder: those that reach the outputs (a category's
            folder and what lies in it), not the folders above the data root, which none names. A file
            listed outside it (a VisA split file's absolute path) has every name of its path checked.

    Raises:
        UserError: naming the folder and the name, escaped (``'bad\\n000.png'``): rename it.
    """
    path = Path(path)
    folder = Path(path.anchor if below is None else below)
    if not path.is_relative_to(folder):  # one absolute, the other not; or a file listed elsewhere
        path, folder = path.absolute(), folder.absolute()
        if not path.is_relative_to(folder):
            folder = Path(path.anchor)
    for part in path.relative_to(folder).parts:
        if not LINE_BREAKS.isdisjoint(part):
            raise UserError(
                f"{folder} holds a name with a line break, {part!r}: rename it (the outputs list names one "
                "per line, as a data set's image lists and a report's rows do, and would read it as two)"
            )
        folder = folder / part


def check_utf8_path(path: str | Path, *, flag: str) -> None:
    """Refuses a folder or file given to a command when its absolute path holds a name that is not UTF-8.

    Every output folder (:func:`check_output_folder`, :func:`build_folder`) and output file
    (``segmentation.export``, ``detection.text_embeddings``), and the inputs a command records:
    ``--data`` (:mod:`common.data_sets`), an MVTec ``--root`` (``converters.mvtec.named_root``), an
    anomaly ``--run`` (``anomaly.run.read_run_info``).
    A folder from an old Windows share (``M\\xfcll`` in Latin-1) was written into ``data.yaml``'s
    ``path:``, ``args.yaml``, ``run.json`` and ``metrics.json`` as ``"\\udcfc"``, and the command's
    last line, printing it, stopped with a traceback on a UTF-8 terminal once those files were
    written. A UTF-8 name is taken whatever its characters (``Müll``, ``検査``).

    Args:
        path: as given (relative to the working folder, which is checked too: outputs record it absolute).
        flag: how the message names it (``--out``, ``config key 'project':``).

    Raises:
        UserError: one line naming ``flag``, the name as bytes and the folder holding it.
    """
    check_utf8_names(expand_user(path).absolute(), flag=flag)


def output_name(file_name: str) -> str:
    """The stem of a photo's output files: its relative path without suffix, folders joined by ``__``.

    >>> output_name("lot_2/a.png"), output_name("a.png")
    ('lot_2__a', 'a')
    """
    path = Path(file_name)
    return "__".join([*path.parent.parts, path.stem]) if path.parent.parts else path.stem


#: The longest output name (bytes) a photo may get: 255, the longest file name of the common file
#: systems, less the longest suffix a command adds for a photo (``<name>_mask.png``) and the 32 bytes
#: of the hidden temporary it is first written as (:func:`common.io.temporary_path`). Longer, the
#: run would fail at that photo's first file, after the models had run on every photo before it.
MAX_NAME_BYTES = 255 - len("_mask.png") - 32


class UniqueNames:
    """Output names handed out so far: refuses a second photo under one name, ignoring case, and a
    name too long for a file name (:data:`MAX_NAME_BYTES`).

    Two photos under one name would share their output files, the second silently replacing the
    first's (and on a case-insensitive file system ``A`` and ``a`` are one name too).
    """

    def __init__(self) -> None:
        self._seen: dict[str, object] = {}

    def add(self, name: str, photo: object) -> None:
        """Takes ``name`` for ``photo`` (its path is what a message shows).

        Raises:
            UserError: ``name`` (ignoring case) was taken by another photo, naming both; ``name``
                is longer than :data:`MAX_NAME_BYTES`, naming the photo.
        """
        if (size := len(os.fsencode(name))) > MAX_NAME_BYTES:
            raise UserError(
                f"the output files of {photo} would be named after '{name[:40]}...', {size} bytes, "
                f"over the {MAX_NAME_BYTES} a file name leaves it (folders below the source count too, "
                "joined by '__'): rename it, or pass a folder nearer to it"
            )
        key = name.casefold()
        if key in self._seen:
            raise UserError(
                f"two photos map to one output name '{name}': {self._seen[key]} and {photo} "
                "(rename one of them)"
            )
        self._seen[key] = photo


def check_unique_names(named: Iterable[tuple[str, object]]) -> None:
    """Refuses two photos whose output names are equal ignoring case (``a.png`` and ``a.jpg`` both ``a``).

    Args:
        named: ``(output name, photo)`` pairs; the photo (its path) is what the message shows.

    Raises:
        UserError: naming both photos (:class:`UniqueNames`).
    """
    names = UniqueNames()
    for name, photo in named:
        names.add(name, photo)


def build_folder(out: Path, write: Callable[[Path], T], *, overwrite: bool) -> T:
    """Runs ``write(folder)`` on a hidden folder beside ``out``, then renames it into place.

    Leftovers of killed runs of the same ``out`` are removed first (see the module docstring). The folders
    above ``out`` that it creates are removed again, deepest first and only while empty, where the run fails
    or is stopped (Ctrl-C): ``--out new/deeper/out`` left ``new/deeper`` behind.

    Returns:
        What ``write`` returned (a report of what it wrote, say).

    Raises:
        UserError: ``out`` exists, not empty, without ``overwrite``, its path is not UTF-8, it is or
            holds the working folder (:func:`check_not_working_folder`), or a file system error while
            writing (a read-only folder, a full disk); one line naming ``out``.
    """
    check_utf8_path(out, flag="output folder")  # where check_output_folder was not called first
    check_not_working_folder(out, flag="output folder")  # where it was called without ``overwrite``
    remove_leftovers(out)
    partial = None
    made: list[Path] = []
    try:
        try:
            _make_folder(out.parent, made)
            partial = partial_dir(out)
            result = write(partial)
            _replace(partial, out, overwrite=overwrite)
        except OSError as error:
            # any errno: mkdir of a link loop's own folder is EEXIST ('cannot write loop/x: File exists')
            loop = link_loop_text(out, what="output folder")
            written = _written(error, out, partial)
            _name_in_out(error, out, partial)
            raise UserError(loop or f"cannot write {written}: {file_error(error)}") from None
        finally:
            if partial is not None and partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
    except BaseException:  # a Ctrl-C too
        _remove_made(made)
        raise
    return result


def _make_folder(folder: Path, made: list[Path], *, parents: bool = True) -> None:
    """``folder.mkdir(parents=True, exist_ok=True)``, adding each folder this call created to ``made``,
    outermost first; one that was there (or made meanwhile by another process) is not added."""
    try:
        folder.mkdir()
    except FileNotFoundError:
        if not parents or folder.parent == folder:
            raise
        _make_folder(folder.parent, made)
        _make_folder(folder, made, parents=False)
    except OSError:
        if not folder.is_dir():
            raise
    else:
        made.append(folder)


def _remove_made(made: list[Path]) -> None:
    """Removes the folders :func:`_make_folder` listed in ``made``, deepest first, each only while empty."""
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def earlier_run_note(out: Path, *, until: str) -> Iterator[None]:
    """On Ctrl-C, one ``stopped:`` line on stderr when ``out`` holds an earlier run's files.

    After ``interrupted`` alone, the earlier run's files in ``out`` (left whole by :func:`build_folder`)
    read as this run's. ``until``: when ``out`` is replaced ("every photo is done").

    A folder other than the one ``out`` was on entering is this run's, put in place whole before the stop
    (a Ctrl-C while :func:`build_folder` deleted the replaced copy, or after it returned): no line. It said
    that ``out`` held an earlier run's, of the finished output.
    """
    before = _folder_identity(out)
    try:
        yield
    except KeyboardInterrupt:
        # an empty one made by hand holds no earlier run
        if out.is_dir() and not is_empty_folder(out) and _folder_identity(out) == before:
            print(
                # 'there': the embeddings SAM encoded meanwhile are kept in their cache (anomaly.predict)
                f"stopped: {out} is replaced only once {until}, so nothing of this run was kept there; "
                "what it holds is an earlier run's",
                file=sys.stderr,
                flush=True,
            )
        raise


def _folder_identity(folder: Path) -> tuple[int, int] | None:
    """The device and inode of the folder at ``folder`` (a link followed), None where there is none."""
    try:
        info = folder.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def _name_in_out(error: OSError, out: Path, partial: Path | None) -> None:
    """Names a file of the hidden build in ``error`` by its place in ``out``: the line named the build
    (``No space left on device: /r/.eval.partial-0bbfd16a-2659-e4fa791d/metrics.json``), which is removed
    by the time it is read. The build folder itself keeps its name (its own rename failed)."""
    if partial is None:
        return
    for attribute in ("filename", "filename2"):
        name = getattr(error, attribute)
        if not isinstance(name, str | bytes | os.PathLike):
            continue
        path, build = Path(os.fsdecode(name)).absolute(), partial.absolute()
        if path.is_relative_to(build) and path != build:
            setattr(error, attribute, str(out / path.relative_to(build)))


def _written(error: OSError, out: Path, partial: Path | None) -> Path:
    """What failed to be written: ``out``, unless the error names a file elsewhere (an embedding cache)."""
    # A copy, link or rename fails with (source, target): the target is what was being written
    # (shutil's copy on a full disk names the source first, an image of the input tree).
    written = error.filename2 or error.filename
    if not written or partial is None:
        return out
    failed = Path(os.fsdecode(written)).absolute()
    ours = [partial.absolute(), out.absolute()]
    if failed in out.absolute().parents or any(f == failed or f in failed.parents for f in ours):
        return out
    return failed.parent


def remove_leftovers(out: Path) -> list[Path]:
    """Removes the hidden folders of ``out`` whose writer is gone; one ``note:`` line per kind.

    A run killed between moving the old ``out`` aside and putting the new one in place leaves no
    ``out`` but its old copy: that copy is put back first (:func:`restore_old_copy`), not removed.
    """
    name = glob.escape(out.name)
    restore_old_copy(out)
    builds = remove_stale(out.parent, f".{name}.partial-*")
    replaced = [path for pattern in _old_copy_patterns(out) for path in remove_stale(out.parent, pattern)]
    kinds = ((builds, "unfinished build", "unfinished builds"), (replaced, "old copy", "old copies"))
    for found, one, many in kinds:
        if found:
            what = f"{len(found)} {one if len(found) == 1 else many}"
            print(f"note: removed {what} of {out} left by a killed run", file=sys.stderr, flush=True)
    return builds + replaced


def restore_old_copy(out: Path) -> Path | None:
    """Renames the newest old copy of a missing ``out`` (its writer gone) back to ``out``; says so."""
    if out.exists() or out.is_symlink() or not out.parent.is_dir():
        return None
    copies = [path for pattern in _old_copy_patterns(out) for path in out.parent.glob(pattern)]
    stale = [path for path in copies if is_stale(path)]
    if not stale:
        return None
    newest = max(stale, key=lambda path: path.lstat().st_mtime)
    try:
        newest.rename(out)
    except OSError:
        return None
    print(f"note: restored {out} from the old copy a killed run had moved aside", file=sys.stderr, flush=True)
    return out


def _old_copy_patterns(out: Path) -> tuple[str, str]:
    """Globs of ``out``'s old copies: :func:`_replace`'s, and an older version's ``.<out>.old-<pid>``."""
    name = glob.escape(out.name)
    return f".{name}.old.*.tmp", f".{name}.old-*"


def _replace(partial: Path, out: Path, *, overwrite: bool) -> None:
    """Moves the finished folder into place; an old one is removed only after the new one is there."""
    if is_empty_folder(out):
        out.rmdir()  # taken as absent (check_output_folder)
    if not out.exists() and not out.is_symlink():
        partial.rename(out)
        return
    if not overwrite:
        raise UserError(f"output folder exists: {out} (pass --overwrite to replace it)")
    old = temporary_path(out.with_name(f"{out.name}.old"))
    out.rename(old)
    try:
        partial.rename(out)
    except BaseException:
        old.rename(out)  # put the old one back
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)  # a leftover is removed by the next run
    else:
        old.unlink()
