"""Files written whole or not at all, file hashing, the cache root, and leftovers of killed runs.

Every output of this project goes through :func:`atomic_write` (one file; :class:`StreamedFile`
for one written a piece at a time) or :func:`partial_dir` + rename (a folder): a reader sees the old
version or the whole new one, and a run killed half-way leaves only a hidden temporary whose
name carries the writer's host and process id. :func:`remove_stale` deletes
those once their writer is gone, so a crash is cleaned up by the next run and
a run in progress beside it is never disturbed. JSON files of figures get their
text from :func:`json_text`: strict JSON, an undefined figure (NaN) as ``null``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from common.errors import UnreadableFileError, UserError, file_error, one_line

#: Environment variable that moves the whole cache (weights, embeddings).
CACHE_ENV = "MVTEC_FINETUNE_CACHE"
#: A leftover from another machine (a shared network cache) is stale after this long.
FOREIGN_STALE_S = 24 * 3600.0

_CHUNK = 1 << 20
# A \u escape of a surrogate (d800-dfff) in JSON text: paired (an emoji) or lone, see read_json.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
# sha256_file's digests by file identity (see there).
_HASHED: dict[tuple[int, int, int, int, int], str] = {}
_SETTLED_S = 2.0
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
# ".<name>.<host>-<pid>-<random>.tmp" (files) and ".<name>.partial-<host>-<pid>-<random>" (folders).
_TOKEN = re.compile(r"(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}")


def _file_mode() -> int:
    # What open() would give a new file: 0o666 less the umask (mkstemp gives 0o600, which made
    # entries of a shared cache unreadable to the rest of a team).
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _token() -> str:
    return f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def home_dir() -> Path:
    """The user's home folder, or a :class:`UserError` naming what to set when there is none.

    A container run with an arbitrary user id and no ``HOME`` has no home: ``Path.home()`` raised
    RuntimeError ("Could not determine home directory."), a traceback wherever a default path was needed.
    Only ``HOME`` gives one (:func:`cache_root` names ``MVTEC_FINETUNE_CACHE`` too, which moves the cache
    alone: it said so also of ``--out ~/runs``).
    """
    home = os.path.expanduser("~")
    if home.startswith("~"):  # os.path.expanduser leaves "~" as it is when it finds no home
        raise UserError(
            f"no home folder: HOME is not set and user id {os.getuid()} has no passwd entry; set HOME"
        )
    return Path(home)


def expand_user(path: str | os.PathLike[str]) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded, as a shell does.

    Every path a user gives goes through this, not ``Path.expanduser``: that raises RuntimeError
    ("Could not determine home directory.") for ``~name`` when no user is called ``name``, where a
    shell leaves the word as it is, so ``~lot_7`` is the file or folder of that name (its missing
    file is then named in the usual one-line error, not a traceback). ``~`` or ``~/x`` with no home
    folder (:func:`home_dir`) is a :class:`UserError`: left as it is, it made a folder named ``~``.

    >>> expand_user("~no_such_user_lot_7/x.pt").as_posix()
    '~no_such_user_lot_7/x.pt'
    >>> expand_user("~") == Path.home()
    True
    """
    text = os.fspath(path)
    expanded = os.path.expanduser(text)
    if expanded == text and (text == "~" or text.startswith("~/")):
        try:
            home_dir()
        except UserError as error:
            raise UserError(f"{text}: {error}") from None
    return Path(expanded)


def cache_root() -> Path:
    """The project's cache folder: ``$MVTEC_FINETUNE_CACHE`` if set, else ``~/.cache/mvtec-finetune``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return expand_user(configured)
    try:
        return home_dir() / ".cache" / "mvtec-finetune"
    except UserError as error:
        raise UserError(f"{error}, or {CACHE_ENV} for the cache folder") from None


def homeless_config_dir() -> Path | None:
    """Where ultralytics keeps its settings and fonts when there is no home folder; None when there is one.

    ultralytics finds its config folder as it is imported, calling ``Path.home()`` unless ``YOLO_CONFIG_DIR``
    is set (on Linux even with ``XDG_CONFIG_HOME`` set, a default argument): with no home (a container
    run with an arbitrary user id and no ``HOME``) every command that loads a model died in a RuntimeError
    traceback. ``common`` sets ``YOLO_CONFIG_DIR`` to this folder, to which ultralytics adds
    ``Ultralytics``: ``$XDG_CONFIG_HOME`` (where ultralytics would have put it), else
    ``$MVTEC_FINETUNE_CACHE``, else a folder of this user's own in the temp folder.
    """
    try:
        home_dir()
        return None
    except UserError:
        pass
    if xdg := os.environ.get("XDG_CONFIG_HOME"):
        return Path(xdg)
    if os.environ.get(CACHE_ENV):
        with contextlib.suppress(UserError):  # '~/cache': its error comes when the cache is used
            return cache_root().absolute()
    return _private_temp_dir()


def _private_temp_dir() -> Path | None:
    """``mvtec-finetune-<uid>`` in the temp folder, made private to this user; None when no folder of this
    user's own can be had there (ultralytics' error then).

    The temp folder is shared by every user: a folder of that name someone else made (or a link, or one
    open to others) is not used, as ultralytics' own fallback does. An earlier run's own folder then
    (``mvtec-finetune-<uid>-*``, :func:`_is_private`) is, else a new one: each run made another.
    """
    temp = Path(tempfile.gettempdir())
    folder = temp / f"mvtec-finetune-{os.getuid()}"
    with contextlib.suppress(OSError):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        if _is_private(folder):
            return folder
    with contextlib.suppress(OSError):
        for earlier in sorted(temp.glob(f"{folder.name}-*")):
            if _is_private(earlier):
                return earlier
    try:
        return Path(tempfile.mkdtemp(prefix=f"{folder.name}-"))
    except OSError:
        return None


def _is_private(folder: Path) -> bool:
    """Whether ``folder`` is a folder (not a link) of this user's that nobody else could write into; it is
    given mode 0o700 where it has another (a umask's 0o500 or 0o755, which made a new folder each run)."""
    try:
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            return False
        if info.st_mode & 0o777 != 0o700:
            os.chmod(folder, 0o700)
    except OSError:
        return False
    return True


def embeddings_root() -> Path:
    """Where SAM's image embeddings are cached unless a command is given ``--cache-dir``: one root for
    every command (training, evaluation, the annotation page, the cascade, anomaly masks), so that a
    photo is encoded once for all of them."""
    return cache_root() / "embeddings"


def copied_note(count: int, example: Path, out: Path) -> str:
    """The ``note:`` line for images that ``--link hardlink`` copied: the file system refused the link
    (another file system, or one without hard links), so they take the space a link would have saved."""
    images = "1 image was" if count == 1 else f"{count} images were"
    return (
        f"note: {images} copied into {out}, not hard-linked (e.g. {example}): the file system refused "
        "the link (another file system than the images', or one without hard links); --link symlink saves "
        "the space"
    )


def recorded_path(path: str | Path) -> str:
    """``path`` as a run's records (``args.yaml``, ``predict.json``, ``metrics.json``) write it: absolute,
    from any folder, without ``.`` or ``..`` (``Path.absolute`` kept them: ``/w/runs/../data/lot_7``).

    ``..`` is removed by its spelling (``os.path.abspath``), as a shell's ``cd`` reads it, not by
    following links (``Path.resolve``): a data folder reached through a link keeps the name the user
    gave it, which stays true when the link is pointed elsewhere. Only a link followed by ``..``
    (``link/..``) reads otherwise than the file system would; a glob pattern keeps its wildcards.

    >>> recorded_path("/w/runs/../data/./lot_7")
    '/w/data/lot_7'
    """
    return os.path.abspath(path)


def temporary_path(path: str | Path) -> Path:
    """A hidden sibling of ``path`` to write first, named so that :func:`remove_stale` can judge it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_token()}.tmp")


def write_failure(error: OSError, path: str | Path) -> str:
    """Why writing ``path`` failed, as one line that does not name ``path`` again (it follows "cannot
    write PATH"): the reason alone when the error is about ``path``, :func:`common.errors.file_error`
    (the other file named) when it is about another.

    >>> write_failure(OSError(28, "No space left on device", "/out/t.pt"), "/out/t.pt")
    'No space left on device'
    >>> write_failure(OSError(28, "No space left on device", "/out/t.json"), "/out/t.pt")
    'No space left on device: /out/t.json'
    """
    if error.strerror and error.filename and not error.filename2 and Path(error.filename) == Path(path):
        return one_line(error.strerror)
    return file_error(error)


def atomic_write(path: str | Path, data: bytes | str | Callable[[BinaryIO], object]) -> Path:
    """Writes ``path`` whole or not at all: a temporary file in its folder, then ``os.replace``.

    Args:
        path: the target; its folder is created.
        data: bytes, text (UTF-8), or a function that writes to the open binary file
            (``lambda f: torch.save(obj, f)``, ``lambda f: figure.savefig(f, format="png")``).

    Returns:
        ``path``. The file gets the permissions a plain ``open`` would give (umask
        applied), so entries of a shared cache are readable by the team.

    The rename is atomic within one file system, hence the same folder. No fsync: after
    a power cut the worst case is an empty file, which every reader treats as bad.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    written = None
    try:
        with open(temporary, "xb") as file, _closed_quietly_on_error(file):
            written = _Written(file)
            if callable(data):
                data(written)
            else:
                written.write(data.encode() if isinstance(data, str) else data)
            written.flush()
        os.chmod(temporary, _file_mode())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if written is not None and written.error is not None and not isinstance(error, KeyboardInterrupt):
            # a full disk: as an error naming the file (the commands' one line), whatever the writer made
            # of it (torch.save: "RuntimeError: [enforce fail at inline_container.cc:672] ...")
            written.error.filename = written.error.filename or str(path)
            raise written.error from None
        if isinstance(error, OSError):
            _name_target(error, temporary, path)
        raise
    return path


@contextlib.contextmanager
def _closed_quietly_on_error(file: BinaryIO) -> Iterator[None]:
    """Closes ``file`` when the writer fails, dropping what it still buffers: a full disk refusing those
    bytes as ``with`` closed it raised an OSError naming no file in place of the writer's error (a Ctrl-C
    ended as a traceback, a bad photo's error as ``No space left on device``)."""
    try:
        yield
    except BaseException as error:
        with contextlib.suppress(OSError):
            file.__exit__(type(error), error, error.__traceback__)  # close(); closed again by 'with': no-op
        raise


def _name_target(error: OSError, temporary: Path, path: Path) -> None:
    """Names ``path`` in an error of its hidden ``temporary`` (opening, ``chmod``, ``os.replace``).

    The commands' one line named the temporary, a file the user never sees and which is gone by then
    (``Permission denied: /srv/out/.a.json.0bbfd16a-4242-3a529955.tmp``, or ``... : a.json (from
    .a.json.<...>.tmp)`` for the rename); it names the file being written.
    """
    if error.filename is not None and os.fsdecode(error.filename) == str(temporary):
        error.filename = str(path)
        if error.filename2 is not None and os.fsdecode(error.filename2) == str(path):
            error.filename2 = None


class _Written:
    """The file :func:`atomic_write`'s writer gets: the first error of writing to it is kept.

    torch.save turns a full disk (``OSError: [Errno 28]``, with no file name) into a RuntimeError of its
    own; a plain write's error names no file either. Anything else is the file's own.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self._file.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as error:
            self.error = self.error or error
            raise

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)


class StreamedFile:
    """A text file written a piece at a time into a hidden temporary beside ``path``, renamed into place
    by :meth:`close`: :func:`atomic_write` for text that comes a photo at a time and need not be held.

    A reader sees the old ``path`` or the whole new one; :meth:`abort` (or a process killed before
    :meth:`close`) leaves ``path`` as it was, and the temporary to :func:`remove_stale` after a kill.

    Args:
        path: the final file; its folder is created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = temporary_path(self.path)
        # newline="": "\n" as given on every system, as atomic_write writes text
        try:
            self._file: TextIO | None = open(self.temporary, "x", encoding="utf-8", newline="")
        except OSError as error:
            _name_target(error, self.temporary, self.path)
            raise

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`abort` ran."""
        return self._file is None

    def write(self, text: str) -> int:
        assert self._file is not None, f"{self.path} is closed"
        with self._naming_the_file():
            return self._file.write(text)

    def close(self) -> Path:
        """Renames the temporary into place (once; a closed file stays as it is).

        Where its last write, the rename or a Ctrl-C stops it, the temporary is removed and ``path`` left as
        it was: after a failed rename the file counted as closed, so :meth:`abort` dropped nothing, and the
        temporary stayed beside ``path`` for good (:func:`remove_stale` looks only where a command cleans up).
        """
        if self._file is not None:
            file, self._file = self._file, None
            try:
                with self._naming_the_file():
                    file.close()  # a full disk's last flush fails here
                os.chmod(self.temporary, _file_mode())
                os.replace(self.temporary, self.path)
            except BaseException as error:
                self.temporary.unlink(missing_ok=True)
                if isinstance(error, OSError):
                    _name_target(error, self.temporary, self.path)
                raise
        return self.path

    @contextlib.contextmanager
    def _naming_the_file(self) -> Iterator[None]:
        """A full disk's OSError (no file name) names ``path``, as :func:`atomic_write`'s does: the
        commands' one ``error:`` line, not a traceback."""
        try:
            yield
        except OSError as error:
            error.filename = error.filename or str(self.path)
            raise

    def abort(self) -> None:
        """Drops the temporary; ``path`` stays as it was (a file closed before stays too).

        Text still buffered that a full disk refuses as the file is closed is dropped with it: the close's
        OSError (naming no file) took the place of the error being handled (a Ctrl-C among them) and left
        the temporary behind.
        """
        if self._file is not None:
            file, self._file = self._file, None
            try:
                with contextlib.suppress(OSError):
                    file.close()
            finally:
                self.temporary.unlink(missing_ok=True)


def partial_dir(out: str | Path) -> Path:
    """Creates and returns a hidden folder beside ``out`` to build it in, then rename into place."""
    out = Path(out)
    folder = out.parent / f".{out.name}.partial-{_token()}"
    folder.mkdir(parents=True)
    return folder


def is_stale(path: Path, *, now: float | None = None) -> bool:
    """Whether a temporary named by this module (or an older, unnamed one) has lost its writer.

    Same host: its process is gone. Another host (a network cache): older than
    :data:`FOREIGN_STALE_S`. No token in the name (written by an older version): stale.
    """
    match = _TOKEN.search(path.name)
    if match is None:
        return True
    if match["host"] != _HOST:
        try:
            age = (time.time() if now is None else now) - path.lstat().st_mtime
        except OSError:
            return False
        return age > FOREIGN_STALE_S
    return not pid_alive(int(match["pid"]))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


def written_here(path: Path) -> bool:
    """Whether a temporary of this module (:func:`temporary_path`) was named by a process of this machine."""
    match = _TOKEN.search(path.name)
    return match is not None and match["host"] == _HOST


def writer_pid(path: Path) -> int | None:
    """The process id in the name of a temporary of this module (:func:`temporary_path`), else None."""
    match = _TOKEN.search(path.name)
    return int(match["pid"]) if match else None


def is_token(text: str) -> bool:
    """Whether ``text`` is the ``<host>-<pid>-<random>`` that :func:`temporary_path` names a temporary with.

    >>> is_token("0a1b2c3d-42-0123abcd"), is_token("x")
    (True, False)
    """
    return _TOKEN.fullmatch(text) is not None


def remove_stale(folder: str | Path, pattern: str) -> list[Path]:
    """Deletes the stale temporaries in ``folder`` whose names match the glob ``pattern``.

    Args:
        folder: where to look (missing: nothing to do).
        pattern: e.g. ``".data.partial-*"`` or ``".*.tmp"``.

    Returns:
        What was removed, for the caller to report. Files or folders that cannot be
        removed (someone else's, read-only) are left alone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.glob(pattern)):
        if not is_stale(path):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def link_loop(path: str | Path) -> Path | None:
    """The link loop that ``path`` (made absolute) goes through, None if it goes through none.

    A link loop is a symbolic link that leads back to itself (``loop -> loop``, or ``a -> b -> a``):
    looked up, it ends in no file or folder (``ELOOP``). A chain of more than 40 links (``l45 -> l44 -> ...
    -> l0 -> file``), which the system refuses with the same ``ELOOP``, is none. Python 3.10 to 3.12's
    ``Path.resolve`` raises ``RuntimeError: Symlink loop from '<path>'`` for a path through one; 3.13's
    raises an ``OSError`` in strict mode only. The first folder or file of ``path`` that cannot be looked up
    for one is followed where it is a link into a loop elsewhere (``a -> loop/sub``): that loop is named,
    not ``a``. A ``..`` after a link is taken as the system takes it, in the link's target (not by striking
    out the name before it); a loop past one is named by its folder's real path.

    >>> link_loop("/") is None
    True
    """
    return _link_loop(Path(path).absolute(), {})


def _link_loop(absolute: Path, followed: dict[tuple[int, int], Path]) -> Path | None:
    """:func:`link_loop` of an absolute path; ``followed``: the links followed to it, by device and inode,
    each as first met (a link met again under another spelling, ``a -> here/a`` with ``here -> .``, is the
    loop: compared by path, each spelling was followed anew, down to one the system gave up on). A link
    whose target does not loop is none (a chain of more than 40 links, which the system refuses too)."""
    place = _refused(absolute)
    if place is None:
        return None
    try:
        link = os.lstat(place)
        target = place.parent / os.readlink(place)
    except OSError:  # no link (EINVAL), or gone meanwhile
        return place
    key = (link.st_dev, link.st_ino)
    if key in followed:
        return followed[key]
    return _link_loop(target, {**followed, key: place})


def _refused(absolute: Path) -> Path | None:
    """The first folder or file of an absolute path that the system cannot look up for ``ELOOP`` (a link
    loop, or too many links in a row), None if there is none; past a ``..``, named by its folder's real
    path (the ``..`` taken as the system takes it)."""
    for place in (*reversed(absolute.parents), absolute):
        try:
            os.stat(place)
        except OSError as error:
            if error.errno != errno.ELOOP:
                return None
            if ".." in place.parts:  # its folder was looked up: named as the system found it
                return Path(os.path.realpath(place.parent)) / place.name
            return place
    return None


def link_loop_text(path: str | Path, *, what: str = "", given: str = "") -> str | None:
    """One line saying that ``path`` (the ``what`` option or file, when given) goes through a link loop
    (:func:`link_loop`), naming the link, or through more links in a row than the system follows (no loop,
    refused with the same ``ELOOP``), naming the first path it refuses; None if neither. ``given``: how the
    user named ``path``, as the line begins (``data=loop``), instead of ``<what> <path>``.

    >>> link_loop_text("/") is None
    True
    """
    absolute = Path(path).absolute()
    loop = link_loop(absolute)
    chain = _refused(absolute) if loop is None else None  # refused for its links' number (ELOOP too)
    place = loop or chain
    if place is None:
        return None
    named = given or (f"{what} {path}" if what else str(path))
    where = named if place == absolute else f"{named}: {place}"
    if loop is None:
        return (
            f"{where} goes through too many symbolic links in a row (more than the system follows, 40 on "
            "Linux), though none leads back; point it straight at the file or folder they end in"
        )
    return (
        f"{where} is a link loop (a symbolic link that leads back to itself, to no file or folder); "
        "point it elsewhere or give another path"
    )


def not_found_text(path: str | Path, what: str) -> str:
    """``<what> not found: <path>``, or :func:`link_loop_text` where ``path`` goes through a link loop
    (which ``Path.exists`` takes for nothing there)."""
    return link_loop_text(path, what=what) or f"{what} not found: {path}"


def file_exists(path: str | Path) -> bool:
    """Whether a file is at ``path``: False where nothing is there (or a folder), an error where it cannot
    be looked for.

    From Python 3.13 ``Path.is_file`` is False too where a folder of the path cannot be searched (no
    execute permission, a disk error): a file the caller would keep (an earlier ``splits.json``) was
    taken for gone, and what it records made anew without a word.

    Raises:
        UnreadableFileError: naming ``path``, which cannot be looked for (permissions, a disk error).
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as error:
        raise UnreadableFileError(error.errno, error.strerror, str(path)) from error
    return stat.S_ISREG(mode)


def sha256_file(path: str | Path, *, what: str = "file") -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (checkpoints are up to 2.5 GB).

    Remembered for the process by the file's identity (device, inode, size, modification and change
    times in ns: :func:`_identity`):
    one command compares a split with several records (a detector's, SAM's, a PatchCore run's
    train photos), and each would read every byte again. A file written since, renamed over or
    replaced has another identity and is read again. A file modified or changed (its mtime or its ctime)
    in the last :data:`_SETTLED_S` seconds is not remembered: the file system's clock ticks in
    milliseconds, so a same-size rewrite within one tick would keep its identity (git's "racy" index
    entries); a ``cp -p`` sets the mtime back but not the ctime, which is part of the identity.
    The identity remembered is the opened file's (``fstat``), not the path's: a file renamed over
    the path between a look at the path and the open would have its digest remembered under the
    identity of the file it replaced.

    Raises:
        UserError: the file is missing or unreadable; the message names it as ``what``.
    """
    path = Path(path)
    try:
        if (known := _HASHED.get(_identity(path.stat()))) is not None:
            return known
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            opened = os.fstat(stream.fileno())
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {one_line(error.strerror or error)}") from None
    if time.time_ns() - max(opened.st_mtime_ns, opened.st_ctime_ns) > _SETTLED_S * 1e9:
        _HASHED[_identity(opened)] = digest.hexdigest()
    return digest.hexdigest()


def _identity(status: os.stat_result) -> tuple[int, int, int, int, int]:
    """A file's identity for :data:`_HASHED`: device, inode, size, modification and change times in ns.

    The change time because no tool sets it back: a photo copied in place with its time kept (``cp -p``
    of one of the same size and time, as two files from one archive have) kept its old digest, and the
    embedding cache gave it the old photo's embedding.
    """
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def load_torch(
    path: str | Path, *, what: str = "checkpoint", weights_only: bool = True, mmap: bool = False
) -> object:
    """``torch.load`` onto the CPU with a one-line :class:`UserError` for a missing or damaged file.

    ``weights_only`` (the default) runs no pickled code, so a file from elsewhere is
    safe to open; our own resumable states (optimizer and all) pass False. Damaged
    files make ``torch.load`` raise nearly anything (IndexError to UnpicklingError),
    hence the broad catch. torch is imported here, not at the top, so that the core
    stays importable without it (converting masks needs no torch). ``mmap`` maps a
    zip-format file (``torch.save``'s default) instead of reading it, so a caller that looks
    at a few entries of a large file reads only those; other files are read whole.
    """
    import pickle
    import zipfile

    import torch

    from common.folders import lookup_text  # which imports this module

    path = Path(path)
    if not path.is_file():  # lookup_text: in a folder that cannot be searched, not missing (Python 3.13)
        raise UserError(lookup_text(path, what) or not_found_text(path, what))
    zipped = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=mmap and zipped)
    except Exception as error:
        # torch.save writes a zip file, or (legacy) a pickle stream, which opens with the PROTO
        # opcode 0x80; anything else (a text file) makes torch raise e.g. KeyError(174812789).
        kind = torch_file_kind(path) if zipped else None
        if not _first_byte(path):  # it said "not a torch file", which sent users looking for another file
            reason = "the file is empty (0 bytes: an interrupted download or copy?)"
        elif _cut_short(path, zipped, error):
            reason = "the file ends early (truncated: an interrupted download or copy?)"
        elif not zipped and _first_byte(path) != b"\x80" or isinstance(error, pickle.UnpicklingError):
            # a torch file of another program's classes (a detector's best.pt as --sam) says what it is
            reason = (
                f"it is {kind}, not a {what}"
                if kind
                else ("not a torch file, or one that only loads by running pickled code")
            )
        else:
            reason = one_line(str(error).strip().splitlines()[0] if str(error).strip() else error)
            reason += f" (it is {kind})" if kind else ""
        raise UserError(f"cannot read {what} {path}: {reason}") from None


#: Text in a torch file's pickle that says what wrote it (strings are stored as they are), and what it is.
#: The first found names it: the decoder's format tag before the bare word ``ultralytics``, which a
#: decoder.pt's recorded training config may hold too (a data set path under an ``ultralytics`` folder);
#: SAM's own keys last (``sam_finetuned.pth``, the official files), which an ultralytics SAM model holds too.
_TORCH_FILE_KINDS = (
    (b"mvtec-finetune/sam-decoder", "a SAM decoder.pt from segmentation.train"),
    # segmentation.train's last.pt (segmentation.run_folder.RESUME_KEYS; ultralytics' says best_fitness)
    (b"best_iou", "a training state of segmentation.train (last.pt, for its --resume)"),
    (b"ultralytics", "an ultralytics model (detection weights)"),
    (b"mask_decoder.", "a SAM state dict, such as sam_finetuned.pth"),
    # anomaly.run's {"bank": tensor}: the pickle's first key, then its tensor (a bare b"bank" would also
    # match a path such as runs/memory_bank in another file's recorded config)
    (
        b"X\x04\x00\x00\x00bankq\x01ctorch._utils\n_rebuild_tensor_v2",
        "a PatchCore memory bank from anomaly.train, which inspection takes as "
        "--anomaly-run <its run folder>",
    ),
)


def torch_file_kind(path: str | Path) -> str | None:
    """What a ``torch.save`` zip file holds, told from its pickle's text without unpickling it.

    For the errors of a file given in the wrong place (a detector's ``best.pt`` as a SAM checkpoint,
    a ``decoder.pt`` as detector weights). None when not a zip or not one of :data:`_TORCH_FILE_KINDS`.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
            data = archive.read(pickles[0]) if pickles else b""
    except (OSError, zipfile.BadZipFile):
        return None
    return next((kind for text, kind in _TORCH_FILE_KINDS if text in data), None)


def _cut_short(path: Path, zipped: bool, error: Exception) -> bool:
    """Whether a torch file that failed to load was cut short: a zip without its end (the central
    directory is written last), or the legacy pickle format running out of bytes mid-record."""
    import struct

    with path.open("rb") as file:
        start = file.read(4)
    # torch's own words for a legacy file's missing storage bytes; struct.error and EOFError mid-pickle
    ended = isinstance(error, EOFError | struct.error) or "unexpected EOF" in str(error)
    return not zipped and (start == b"PK\x03\x04" or start[:1] == b"\x80" and ended)


def _first_byte(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(1)


def save_torch(obj: object, path: str | Path) -> Path:
    """``torch.save`` through :func:`atomic_write`: a killed run leaves the previous file intact."""
    import torch

    return atomic_write(path, lambda file: torch.save(obj, file))


def read_json(path: str | Path, *, what: str, utf8: bool = True) -> object:
    """The JSON value in ``path``, every string of it UTF-8 text; a one-line :class:`UserError` otherwise.

    Python's ``json`` reads a lone surrogate escape (``"\\udcff"``, as ``json.dumps`` writes a Linux
    file name that is not UTF-8, or ``"\\ud800"``) as a string no UTF-8 output takes: a class name
    or file name holding one stopped the command with a ``UnicodeEncodeError`` at its first print,
    after the outputs were written, or went on into them (``data.yaml``, a COCO file) as it was.

    Args:
        path: the file.
        what: how the message names it (``"splits file"``, ``"COCO file"``).
        utf8: refuse such strings; False for a run's own files, which record a folder given to the run
            as it was named (a Linux name that is not UTF-8 included) and read back as the same path.

    Raises:
        UserError: the file is unreadable, not JSON, or holds such a string (named by :func:`ascii`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM first, as Windows tools write UTF-8, is no text
        data = json.loads(text)
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror or one_line(error)}") from None
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError alike
        raise UserError(f"cannot read {what} {path}: not JSON ({one_line(error)})") from None
    if utf8 and _SURROGATE_ESCAPE.search(text):  # else no string holds one: a large COCO file is not walked
        check_utf8_text(data, f"{what} {path}")
    return data


def check_utf8_text(data: object, where: str) -> None:
    """Refuses a string in ``data`` (dicts, their keys, lists) that is not UTF-8 text (a lone surrogate).

    Args:
        data: a value read from a JSON or YAML file.
        where: the file, for the message (``"COCO file a/b.json"``).

    Raises:
        UserError: naming ``where`` and the first such string, as :func:`ascii` writes it.
    """
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise UserError(
                    f"cannot read {where}: it holds {ascii(value)}, which is not UTF-8 text (a lone "
                    "surrogate escape, as json.dumps writes a file name that is not UTF-8): fix or rename it"
                ) from None


def read_json_object(path: str | Path, *, what: str, utf8: bool = True) -> dict:
    """A JSON object from ``path`` (:func:`read_json`); else a one-line :class:`UserError` naming ``what``.

    Args:
        path: the file.
        what: how the message names it (``"splits file"``, ``"COCO file"``).
        utf8: as for :func:`read_json`.
    """
    path = Path(path)
    data = read_json(path, what=what, utf8=utf8)
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must hold a JSON object, not {type(data).__name__}")
    return data


def read_coco_instances(path: str | Path) -> dict:
    """A COCO instances file: a JSON object whose ``images``, ``annotations`` and ``categories`` are lists of
    objects; else a one-line :class:`UserError` naming the file and the part (pycocotools and the scorers
    failed on a hand-edited one with ``KeyError`` or ``string indices must be integers`` tracebacks).
    """
    data = read_json_object(path, what="COCO file")
    if not all(key in data for key in ("images", "annotations", "categories")):
        raise UserError(f"{path} is not a COCO instances file (needs images, annotations, categories)")
    for key in ("images", "annotations", "categories"):
        entries = data[key]
        listed = entries if isinstance(entries, list) else []
        kinds = [type(entry).__name__ for entry in listed if not isinstance(entry, dict)]
        if not isinstance(entries, list) or kinds:
            got = f"a list holding {kinds[0]}" if isinstance(entries, list) else type(entries).__name__
            raise UserError(f"COCO file {path}: '{key}' must be a list of objects, got {got}")
    return data


def finite_json(value: object) -> object:
    """``value`` with every non-finite float (NaN, inf, -inf) replaced by None, for strict JSON.

    Walks dicts, lists and tuples (a tuple becomes a list, as ``json`` writes it); numpy scalars
    and arrays (anything with ``tolist``) become Python values first. Anything else is returned as
    it is, for ``json.dumps`` (or its ``default``) to deal with.

    >>> finite_json({"auroc": float("nan"), "iou": [0.5, float("inf")]})
    {'auroc': None, 'iou': [0.5, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    if not isinstance(value, str | bytes) and callable(getattr(value, "tolist", None)):
        return finite_json(value.tolist())
    return value


def json_text(value: object, **options) -> str:
    """``json.dumps`` for the files this project writes: strict JSON, an undefined figure as ``null``.

    Python's ``json.dumps`` writes NaN and infinities as bare ``NaN`` / ``Infinity``, which is not
    JSON (jq, JavaScript's ``JSON.parse``, Go and Rust refuse the whole file). Here they become
    ``null`` (:func:`finite_json`); the values a program keeps in memory stay NaN. ``allow_nan`` is
    False, so a non-finite float that gets past the conversion (one returned by a ``default``
    function) raises ValueError instead of being written. Readers turn ``null`` back into NaN with
    :func:`json_float`.

    Args:
        value: what to write.
        options: ``json.dumps`` keywords (``indent``, ``default``, ``sort_keys``, ...).
    """
    return json.dumps(finite_json(value), allow_nan=False, **options)


def json_float(value: float | None) -> float:
    """A figure read back from a file :func:`json_text` wrote: ``null`` (undefined) as NaN."""
    return math.nan if value is None else float(value)
