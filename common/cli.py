"""The wrapper every command-line entry point runs its work in."""

from __future__ import annotations

import argparse
import ast
import contextlib
import errno
import logging
import os
import re
import select
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import NoReturn

from common.errors import UserError, escaped_breaks, few, file_error, message_line
from common.io import expand_user, link_loop_text

#: Exit codes: a file system refusal, bad input (argparse uses 2 too), Ctrl-C (128 + SIGINT) and a
#: ``kill`` (128 + SIGTERM).
EXIT_FILE_ERROR = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
#: A pipe's reader gone (``| head -1``): 128 + SIGPIPE, what the shell shows for ``cat``, ``grep``, ``yes``.
EXIT_BROKEN_PIPE = 141


def exit_code(action: Callable[[], object]) -> int:
    """Runs a CLI's work and returns its exit code.

    0 when ``action`` returns; a :class:`~common.errors.UserError` is printed as one ``error: ...`` line on
    stderr (its line feeds become spaces, each with the indent of a wrapped library message's next line; its
    other line breaks, a path's trailing ``\\r`` among them, are shown escaped; nothing else of it changes, a
    path's trailing space included: :func:`~common.errors.message_line`) and gives 2; a file system error that
    names its file (a read-only folder, a full disk, a file where a folder should be) is one
    ``error: <reason>: <file>`` line and gives 1, but a path through a link loop (either path of a rename or
    link: :func:`_link_loop_of`; also ``Path.resolve``'s RuntimeError for one: :func:`_symlink_loop_text`) is
    one ``error: <path>: <link> is a link loop ...`` line and gives 2, as the commands' own ``not found`` does
    (a path's ``\\n`` or ``\\r\\n`` becomes a space there, its other line breaks are shown escaped, and
    nothing else of it changes: :func:`_path_line`); Ctrl-C gives one ``interrupted`` line and 130 (the work
    itself keeps its outputs atomic; wrap work whose libraries swallow Ctrl-C in :func:`keep_interrupts`). A
    SIGTERM (``kill``, a job scheduler's stop) is handled as a Ctrl-C, so that the same clean-up runs (hidden
    half-built output folders removed), with one ``terminated`` line and 143, also when code inside swallowed
    it (ultralytics' ``TryExcept``) and the work went on to return, or to fail with one of the errors above
    (:func:`_run`); a second SIGTERM kills at once. Work for which a SIGTERM is its ordinary stop (a server's
    ``kill``, ``docker stop``) says it stopped as asked with :func:`acknowledge_termination`: it then ends as
    a Ctrl-C it swallowed does, with 0. Output, printed or logged (:func:`_logging_raises_at_a_closed_pipe`),
    piped to a reader that closed it early (``| head -1``, ``| true``) ends quietly with 141, as a Unix tool
    killed by SIGPIPE does (:func:`_pipe_closed`; not without ``select.poll``, Windows: there it keeps its
    traceback, :func:`_reader_gone`). Any other exception is a bug and propagates with its traceback.
    """
    received: list[int] = []
    _received_lists.append(received)
    try:
        with _terminate_as_interrupt(received):
            return _run(action, received)
    finally:
        _received_lists.remove(received)


#: The SIGTERMs received by each :func:`exit_code` now running.
_received_lists: list[list[int]] = []


def acknowledge_termination() -> None:
    """Tells each :func:`exit_code` now running that the SIGTERM it received was handled as the work's
    ordinary stop: it returns 0 with no ``terminated`` line, as for a Ctrl-C the work swallowed.

    For a server (``segmentation.annotate``) a ``kill``, ``docker stop`` or ``systemctl stop`` is how it is
    stopped: it shut down gracefully and said so, yet ended ``terminated`` with 143. Every other command
    keeps 143. A SIGTERM received after this call counts again.
    """
    for received in _received_lists:
        received.clear()


def _run(action: Callable[[], object], received: list[int]) -> int:
    """:func:`exit_code`'s work; ``received`` holds SIGTERM once it arrived.

    A SIGTERM that the work swallowed ends it as ``terminated`` whatever came after: it returned, or it went
    on and failed with one of the errors :func:`exit_code` prints (their line is not printed: the user asked
    it to stop, and such an error often follows from the stop; it exited 2 or 1 as if never killed).
    """
    try:
        with _logging_raises_at_a_closed_pipe():
            action()
        # a pipe whose reader is gone fails here, not in Python's own flush at exit ('Exception ignored')
        sys.stdout.flush()
    except KeyboardInterrupt:
        return _stopped(received)
    except BrokenPipeError:
        if not _pipe_closed():
            raise
        return _stopped(received) if received else EXIT_BROKEN_PIPE
    except (UserError, OSError, RuntimeError) as error:
        line, code = _error_line(error)
        if line is None:
            raise
        if received:
            return _stopped(received)
        print(f"error: {line}", file=sys.stderr, flush=True)
        return code
    if received:  # swallowed where no keep_interrupts re-raised it: it exited 0 as if never sent
        return _stopped(received)
    return 0


@contextlib.contextmanager
def _logging_raises_at_a_closed_pipe() -> Iterator[None]:
    """Lets a log record's BrokenPipeError on stdout or stderr, their reader gone, propagate as a
    ``print``'s does (:func:`_run`: 141), while the work inside runs.

    ``logging`` catches every error of a handler's write: ultralytics' ``LOGGER`` (a ``StreamHandler`` on
    stdout) into ``| head -1`` printed a ``--- Logging error ---`` traceback on stderr for each record and
    the work went on. An error of any other handler, or of another pipe, is left to ``logging`` as before.
    """
    original = logging.Handler.handleError

    def handle_error(handler: logging.Handler, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, BrokenPipeError) and _writes_to_a_closed_std_stream(handler):
            raise error
        original(handler, record)

    logging.Handler.handleError = handle_error  # type: ignore[method-assign]
    try:
        yield
    finally:
        if logging.Handler.handleError is handle_error:  # else another thread's command set its own since
            logging.Handler.handleError = original  # type: ignore[method-assign]


def _writes_to_a_closed_std_stream(handler: logging.Handler) -> bool:
    """Whether ``handler`` writes to stdout's or stderr's file and that is a pipe whose reader is gone."""
    fd = _fileno(getattr(handler, "stream", None))
    return fd is not None and fd in {_fileno(sys.stdout), _fileno(sys.stderr)} and _reader_gone(fd)


def _fileno(stream: object) -> int | None:
    """``stream``'s file number; None for one with none (replaced by pytest's capture, say)."""
    try:
        return stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


def _pipe_closed() -> bool:
    """Whether stdout or stderr is a pipe whose reader is gone; each such one is pointed at ``os.devnull``.

    Python ignores SIGPIPE, so a write there raises BrokenPipeError: a traceback and exit 1, once a
    command's work was done and its last line printed (``... | head -1``). Not letting SIGPIPE kill it
    keeps the ``finally`` clean-up of work stopped midway (hidden build folders removed); outputs already
    renamed into place stay. Pointed at ``os.devnull`` (the Python docs' idiom, ``signal`` module), Python's
    own flush at exit writes there. A BrokenPipeError of another pipe or socket (neither stream is one
    with its reader gone) is no such case: False.
    """
    closed = False
    for stream in (sys.stdout, sys.stderr):
        fd = _fileno(stream)
        if fd is not None and _reader_gone(fd):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            closed = True
    return closed


def _reader_gone(fd: int) -> bool:
    """Whether ``fd`` is the writing end of a pipe with no reader: ``poll`` reports an error there (Linux
    POLLERR; POLLHUP elsewhere), never for a file or a terminal. Without ``poll`` (Windows) it cannot tell:
    False, so that a BrokenPipeError keeps its traceback rather than a bug's being taken for ``| head``."""
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # errors and hang-ups are reported whatever is asked
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _stopped(received: list[int]) -> int:
    """The line and exit code of a Ctrl-C, or of a SIGTERM once ``received`` holds one."""
    if received:
        print("terminated", file=sys.stderr, flush=True)
        return EXIT_TERMINATED
    print("interrupted", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def _error_line(error: UserError | OSError | RuntimeError) -> tuple[str | None, int]:
    """The ``error:`` line's text and the exit code for an error :func:`exit_code` prints; None for the text
    of one it lets propagate (a bug: an OSError naming no file, a RuntimeError other than a link loop)."""
    if isinstance(error, UserError):
        return message_line(str(error)), EXIT_USER_ERROR
    if isinstance(error, OSError):
        if error.filename is None:
            return None, EXIT_FILE_ERROR
        loop = _link_loop_of(error)
        return _path_line(loop or file_error(error)), EXIT_FILE_ERROR if loop is None else EXIT_USER_ERROR
    loop = _symlink_loop_text(error)
    return (None if loop is None else _path_line(loop)), EXIT_USER_ERROR


def _path_line(text: str) -> str:
    """A file error or link loop line, whose paths may hold line breaks, on one line: each ``\\r\\n`` or
    ``\\n`` becomes one space, any other line break (a ``\\r`` not before a ``\\n``, ``\\x0b``, ``\\u2028``
    ...) is shown escaped (:func:`~common.errors.escaped_breaks`), and nothing else changes.

    Not :func:`~common.errors.joined_lines`, which strips the ends of each line and also breaks at the
    characters :meth:`str.splitlines` does: the line named a path other than the one given (``out ``
    without its trailing space, ``a\\u2028b`` as ``a b``). A path's trailing ``\\r`` (read from a file
    written with CRLF) became a space, the other breaks were printed raw, breaking the line.

    >>> _path_line("No such file or directory: /data/lot\\n  7/out ")
    'No such file or directory: /data/lot   7/out '
    >>> print(_path_line("No such file or directory: /data/lot\\x0b7\\r"))
    No such file or directory: /data/lot\\x0b7\\r
    """
    return escaped_breaks(re.sub(r"\r\n|\n", " ", text))


def _link_loop_of(error: OSError) -> str | None:
    """:func:`~common.io.link_loop_text` for the path of an ``ELOOP`` error that goes through the loop, None
    for any other error (or where neither path does any longer).

    A rename, hard link or symbolic link names two paths; the loop may be in the second (``os.replace(tmp,
    "loop/out")``), which the line named as a file system refusal, with exit 1. The second is looked at
    first: ``os.symlink``'s first is the link's text, which it never follows.
    """
    if error.errno != errno.ELOOP:
        return None
    for name in (error.filename2, error.filename):
        if isinstance(name, (str, bytes, os.PathLike)):
            loop = link_loop_text(os.fsdecode(name))
            if loop is not None:
                return loop
    return None


def _symlink_loop_text(error: RuntimeError) -> str | None:
    """:func:`~common.io.link_loop_text` for the path of a ``Path.resolve`` through a link loop, None for any
    other RuntimeError.

    Up to Python 3.12 ``resolve`` raises ``RuntimeError("Symlink loop from '<path>'")`` rather than an
    OSError (3.13 does), so an ``--out loop/r1`` with ``loop -> loop`` ended in a traceback.
    """
    found = re.fullmatch(r"Symlink loop from ('.*'|\".*\")", str(error), flags=re.DOTALL)
    if type(error) is not RuntimeError or found is None:
        return None
    try:
        path = ast.literal_eval(found.group(1))
    except (SyntaxError, ValueError):
        return None
    if not isinstance(path, str):
        return None
    return link_loop_text(path) or f"{path} goes through a link loop (a symbolic link leading back to itself)"


@contextlib.contextmanager
def _terminate_as_interrupt(received: list[int]) -> Iterator[None]:
    """Raises KeyboardInterrupt on the first SIGTERM (noted in ``received``), in the main thread.

    Python's default for SIGTERM ends the process without running ``finally`` blocks, which left a
    killed command's hidden ``.partial`` build folder behind until the next run of the same target. It is
    also noted in each open :func:`keep_interrupts`, which raises it again if the code inside swallowed it
    (so does :func:`raise_swallowed_interrupt`): they noted Ctrl-C alone, and a SIGTERM that ultralytics'
    plotting swallowed was lost: the run trained on to its end and exited 0.
    """

    def on_terminate(signum: int, frame: object) -> None:
        received.append(signum)
        for pressed in _pressed_lists:
            pressed.append(signum)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second one kills at once
        raise KeyboardInterrupt

    with _handling(signal.SIGTERM, on_terminate):
        yield


@contextlib.contextmanager
def _handling(signum: int, handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler`` for ``signum`` inside, the previous one restored after; only the main thread
    receives signals, so elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Holds a Ctrl-C (SIGINT) or ``kill`` (SIGTERM) that arrives inside until the block has ended, then
    raises it there as its own handler would have (:func:`exit_code`'s: a SIGTERM handled as a Ctrl-C, a
    second one killing at once), a SIGTERM first.

    For moves that a stop halfway would leave split: a second Ctrl-C while ``--folds`` put an earlier run
    back left part of it in ``--out`` and the rest hidden beside it. Only the main thread receives signals;
    elsewhere this does nothing.
    """
    held: list[int] = []

    def hold(signum: int, frame: object) -> None:
        held.append(signum)

    try:
        with _handling(signal.SIGINT, hold), _handling(signal.SIGTERM, hold):
            yield
    finally:
        for signum in sorted(set(held), key=lambda signum: signum != signal.SIGTERM):
            signal.raise_signal(signum)


def user_path(text: str) -> Path:
    """An argparse ``type`` for a folder option: a leading ``~`` is the home folder even when quoted
    (``--out '~/runs'``), as in a training config (:mod:`segmentation.train_config`), not a folder named
    ``~`` in the working folder; ``~name`` with no such user stays that folder name (:func:`expand_user`)."""
    try:
        return expand_user(text)
    except UserError as error:  # argparse printed a ValueError as "invalid user_path value: '~/c'"
        raise argparse.ArgumentTypeError(str(error)) from None


def user_path_text(text: str) -> str:
    """:func:`user_path` as the text the user typed, for an option whose value is passed on and named in
    messages as a ``str`` (``anomaly``'s ``--run``, ``--root``, ``--out``): only a leading ``~`` or
    ``~user`` changes (``--run '~/runs/screw'``), ``./lot_7`` stays ``./lot_7``; ``~/x`` with no home
    folder is refused as :func:`user_path` refuses it (it stayed ``~/x``: a folder named ``~``)."""
    user_path(text)
    return os.path.expanduser(text)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after an option's help, unless it has no default (None, or an empty list: an
    ``extend`` option such as ``--set`` given no values), takes no value (a switch such as
    ``--overwrite``) or its help names one already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        no_value = action.nargs == 0  # store_true / store_false / store_const
        unset = action.default is None or action.default == [] or action.default is argparse.SUPPRESS
        if unset or no_value or "(default" in text:
            return text
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are :class:`~common.errors.UserError`s: one ``error:`` line and exit 2.

    Stock argparse prints its whole usage before the error; run inside :func:`exit_code`,
    a bad flag then reads like any other bad input.
    """

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")

    def _get_value(self, action: argparse.Action, arg_string: str) -> object:
        # Path("") is the working folder: --out "$OUT" with the variable unset wrote the results there
        # (anomaly.train --out "" too: its "" became "." further on)
        if action.type in (Path, user_path, user_path_text) and not arg_string.strip():
            raise argparse.ArgumentError(action, f"is empty ({arg_string!r}; an unset shell variable?)")
        value = super()._get_value(action, arg_string)
        if OUTPUT_OPTIONS.intersection(action.option_strings):
            check_new_names(action, Path(value))
        return value

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """argparse's, but a ``--source`` pattern the shell expanded is named as such, not listed whole.

        ``--source photos/*.png`` unquoted reaches the command as ``--source photos/a.png photos/b.png
        ...``: argparse's error listed every other file (a thousand photos: a thousand names).
        """
        parsed, extras = self.parse_known_args(args, namespace)
        if not extras:
            return parsed
        shown = few(extras, sep=" ")
        if "--source" in self._option_string_actions and all(Path(extra).exists() for extra in extras):
            self.error(
                f"unrecognized arguments: {shown}: the shell expanded a --source pattern into files; "
                "quote it (--source 'photos/*.png')"
            )
        self.error(f"unrecognized arguments: {shown}")


#: The options that name what a command writes, a folder or file it may create.
OUTPUT_OPTIONS = frozenset({"--out", "--cache-dir"})


def check_new_names(action: argparse.Action, path: Path) -> None:
    """Refuses an output ``path`` (:data:`OUTPUT_OPTIONS`) whose names not there yet, those the command would
    create, start or end with whitespace; a name that exists is taken as given, as any input path is.

    ``--out "y2 "`` (a space copied with the name) made the folder ``'y2 '``, which ``ls`` shows as ``y2``
    and ``converters.validate y2`` then named as not found.

    Raises:
        argparse.ArgumentError: naming the first such name in ``repr`` and the path to pass instead; one of
            whitespace alone as empty, with the whole path (``'runs/ '``: ``runs`` is no fix for a lost name).
    """
    new = 0  # how many of the last names of path are not there yet
    for part in (path, *path.parents):
        if os.path.lexists(part) or not part.name:
            break
        new += 1
    parts = path.parts
    spaced = [name for name in parts[len(parts) - new :] if name != name.strip()]
    if not spaced:
        return
    name, flag = spaced[0], action.option_strings[-1]
    if not name.strip():  # --out "runs/$NAME" with NAME=' ': as an empty value is named
        raise argparse.ArgumentError(
            action,
            f"the new name {name!r} is empty but for whitespace ({str(path)!r}; an unset shell variable?)",
        )
    first, last = name[0].isspace(), name[-1].isspace()
    end = "starts and ends" if first and last else "starts" if first else "ends"
    instead = Path(*parts[: len(parts) - new], *(part.strip() for part in parts[len(parts) - new :]))
    raise argparse.ArgumentError(
        action,
        f"the new name {name!r} {end} with whitespace, which it would keep ({name.strip()!r} would not find "
        f"it): pass {flag} {shlex.quote(str(instead))}",
    )


@contextlib.contextmanager
def keep_interrupts() -> Iterator[None]:
    """Re-raises a Ctrl-C (or a SIGTERM: :func:`exit_code`) that the code inside swallowed, once that code
    returns, or in place of an error it went on to raise that :func:`exit_code` prints as one line (a
    :class:`~common.errors.UserError`, a file error, a link loop; a bug keeps its traceback).

    ultralytics wraps its plotting in ``TryExcept``, which swallows every exception, KeyboardInterrupt
    included: a Ctrl-C there printed a plot warning and the run went on to exit 0, or, where the work failed
    after it, exited 2 with the error's line as if never pressed (``detection.evaluate`` without its
    ``stopped:`` line). Only the main thread receives signals; elsewhere this does nothing. The warning
    ``TryExcept`` logs for the swallowed Ctrl-C, whose text is empty (a bare ``WARNING ⚠️`` line, or
    ``ConfusionMatrix plot failure:``), is dropped (:class:`_SwallowedInterruptWarning`): the command's
    ``interrupted`` line says it.
    """
    pressed: list[int] = []

    def on_interrupt(signum: int, frame: object) -> None:
        pressed.append(signum)
        raise KeyboardInterrupt

    _pressed_lists.append(pressed)
    dropped = _SwallowedInterruptWarning(pressed)
    logging.getLogger("ultralytics").addFilter(dropped)
    try:
        with _handling(signal.SIGINT, on_interrupt):
            yield
    except (UserError, OSError, RuntimeError) as error:
        if pressed and _error_line(error)[0] is not None:  # the user asked it to stop: as if not swallowed
            raise KeyboardInterrupt from error
        raise
    finally:
        _pressed_lists.remove(pressed)
        logging.getLogger("ultralytics").removeFilter(dropped)
    if pressed:
        raise KeyboardInterrupt


#: The Ctrl-Cs and SIGTERMs seen by each :func:`keep_interrupts` now open.
_pressed_lists: list[list[int]] = []


class _SwallowedInterruptWarning(logging.Filter):
    """Drops ultralytics' warning for a Ctrl-C its ``TryExcept`` swallowed, once ``pressed`` holds one.

    ``TryExcept`` logs ``f"{msg}: {error}"`` (``msg`` may be empty), and a KeyboardInterrupt's text is
    empty: the record is a warning that is empty or ends in ``": "``; any other is let through.
    """

    def __init__(self, pressed: list[int]) -> None:
        super().__init__()
        self.pressed = pressed

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.pressed or record.levelno != logging.WARNING:
            return True
        text = record.getMessage()
        return bool(text.strip()) and not text.endswith(": ")


def raise_swallowed_interrupt(*_: object) -> None:
    """Raises a Ctrl-C (or SIGTERM) that code inside :func:`keep_interrupts` swallowed, now: a callback for
    the next step of a long loop (``detection.train`` runs it before each of ultralytics' epochs and batches).

    Re-raised only once that code returned, a Ctrl-C pressed while ultralytics plotted its labels, before the
    first epoch, let the whole run train to its end before the command said ``interrupted``.
    """
    if any(_pressed_lists):
        raise KeyboardInterrupt


def command_name(module: str) -> str:
    """What the user typed to start ``module``'s command, for its usage line and error hints.

    The console script's name (``mvtec2yolo``) when ``sys.argv[0]`` is one of pyproject.toml's
    ``[project.scripts]`` that runs ``module``; otherwise ``python -m <module>``. A hardcoded
    ``prog`` had ``mvtec2yolo --help`` print ``usage: python -m converters.mvtec2yolo``.

    >>> command_name("converters.mvtec2yolo")  # under pytest, not a console script
    'python -m converters.mvtec2yolo'
    """
    typed = Path(sys.argv[0]).name.removesuffix(".exe") if sys.argv else ""
    for script in metadata.entry_points(group="console_scripts", name=typed):
        if script.module.removesuffix(".__main__") == module:  # mvtec-annotate runs segmentation.annotate
            return typed
    return f"python -m {module}"


def starting_a_command() -> bool:
    """Whether this import happens while a command starts rather than inside a user's program.

    ``python -m pkg.mod`` imports ``pkg`` while ``sys.argv[0]`` is still ``"-m"``
    (Python sets the module's path only once it is found); the console scripts of
    pyproject.toml are all named ``mvtec*``.
    """
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or Path(first).name.startswith("mvtec")


def quiet_photo_size_warnings() -> None:
    """Silences PIL's ``DecompressionBombWarning`` for the command's run: its photos are files the user named.

    PIL warns on every image over ``Image.MAX_IMAGE_PIXELS`` (89.5 MP: a 10000x9000 line-scan photo)
    with a raw Python warning and a source line from PIL's innards, once per reader (ours and
    ultralytics'). Over twice that PIL refuses to open the file, and the commands refuse it in one line
    naming it (:func:`common.images.image_size`). A message filter, so PIL need not be imported here.
    """
    warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit of \d+ pixels")


def quiet_damaged_exif_warnings() -> None:
    """Silences PIL's warnings of a damaged EXIF (or TIFF) directory for the command's run.

    PIL reads such a photo all the same, skipping the tags it cannot, and warns with a raw Python
    ``UserWarning`` naming neither the file nor the command (``Tag data larger than file. Skipping tag
    270``), also when ultralytics' loader opens it. This project's readers say it in one line naming the
    file (``common.exif``: they record PIL's warnings themselves, whatever the filters say).
    """
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")


def quiet_startup_interrupts() -> None:
    """Makes a Ctrl-C while a command's modules import one ``interrupted`` line, as during its work.

    :func:`exit_code` catches Ctrl-C only once the work runs; the 1-5 s before it (torch and
    ultralytics importing) ended in a traceback. This hook prints the line instead and leaves
    everything else to the previous hook; Python still exits by SIGINT (status 130 in a shell).
    ``common`` installs it only while a command starts (:func:`starting_a_command`), never inside
    a user's program.
    """
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, trace: object) -> None:
        if issubclass(kind, KeyboardInterrupt):
            print("interrupted", file=sys.stderr, flush=True)
            return
        previous(kind, error, trace)

    sys.excepthook = hook
