"""The wrapper every entry point runs in: exit codes and one-line errors."""

from __future__ import annotations

import argparse
import os
import sys

import pytest

from common.cli import (
    EXIT_FILE_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USER_ERROR,
    DefaultsHelpFormatter,
    OneLineParser,
    acknowledge_termination,
    command_name,
    exit_code,
    user_path,
    user_path_text,
)
from common.errors import UserError
from common.folders import LINE_BREAKS
from tests.conftest import assert_link_loop_line
from tests.test_readme import entry_points, module_of


def _raise(error: BaseException):
    def action():
        raise error

    return action


def test_work_that_returns_exits_0(capsys):
    assert exit_code(lambda: "anything") == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("message", "printed"),
    [
        ("data.yaml has no 'val' split", "error: data.yaml has no 'val' split\n"),
        # a library's message wrapped as is: two lines and an indent
        ("ultralytics rejects data.yaml: Dataset 'x' error\n  images not found", None),
        # a quoted value keeps its runs of spaces: it was printed as 'lot 7', not the name given
        ("no class 'lot  7' in data.yaml", "error: no class 'lot  7' in data.yaml\n"),
        # a path's trailing space stays: the line named '/data/lot 7', a folder other than the one given
        ("no photos in /data/lot 7 ", "error: no photos in /data/lot 7 \n"),
        # a line break no message wraps at is a path's, shown escaped: printed raw, the line was two for
        # str.splitlines (and a terminal, at \x0c); folded, 'a b.png' named a file other than the one given
        ("cannot read /data/a\u2028b.png: no photo", "error: cannot read /data/a\\u2028b.png: no photo\n"),
        ("cannot read /data/a\x0cb \x1c.png", "error: cannot read /data/a\\x0cb \\x1c.png\n"),
        # --root "$(cat root.txt)" from a CRLF file: its '\r' was dropped, naming a folder that exists
        ("data root does not exist: /data/mvtec\r", "error: data root does not exist: /data/mvtec\\r\n"),
        # a path's line feed is a space, as in a file error's line; the trailing space before it stays
        ("no photos in /data/lot \r\n7/out\r", "error: no photos in /data/lot  7/out\\r\n"),
    ],
)
def test_a_user_error_is_one_line_and_exit_2(capsys, message, printed):
    assert exit_code(_raise(UserError(message))) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    if printed is not None:
        assert err == printed
    else:
        assert err == "error: ultralytics rejects data.yaml: Dataset 'x' error images not found\n"


@pytest.mark.parametrize("line_break", sorted(LINE_BREAKS))
def test_a_user_error_naming_a_path_with_any_line_break_is_one_line(capsys, line_break):
    # \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029 were printed raw: str.splitlines read two lines (a terminal
    # too at \x0b and \x0c); a trailing '\r' was dropped. Only a line feed, how a message wraps, is a space
    assert exit_code(_raise(UserError(f"no photos in /data/lot{line_break}7{line_break}"))) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    shown = repr(line_break)[1:-1]
    assert err == (
        "error: no photos in /data/lot 7\n"
        if line_break == "\n"
        else f"error: no photos in /data/lot{shown}7{shown}\n"
    )
    assert len(err.splitlines()) == 1


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    assert exit_code(_raise(KeyboardInterrupt())) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        exit_code(lambda: 1 / 0)


def test_a_path_through_a_link_loop_is_one_line_naming_the_link_and_exit_2(link_loop, capsys):
    # Python 3.11's Path.resolve raises RuntimeError("Symlink loop from ...") for it, not an OSError: an
    # --out loop/r1 ended in a traceback in every command that resolves its --out
    # (3.13's raises nothing outside strict mode, so it is raised here as 3.10 to 3.12 word it)
    if sys.version_info < (3, 13):
        with pytest.raises(RuntimeError, match=r"^Symlink loop from '/.*/loop/r1'$"):
            (link_loop / "r1").resolve()
    assert exit_code(_raise(RuntimeError(f"Symlink loop from {str(link_loop / 'r1')!r}"))) == EXIT_USER_ERROR
    assert_link_loop_line(capsys.readouterr().err, f"{link_loop}/r1: ", link_loop)
    assert exit_code(lambda: os.stat(link_loop / "r1")) == EXIT_USER_ERROR  # the OSError, once one line more
    assert_link_loop_line(capsys.readouterr().err, f"{link_loop}/r1: ", link_loop)
    assert exit_code(lambda: os.stat(link_loop)) == EXIT_USER_ERROR
    assert capsys.readouterr().err.startswith(f"error: {link_loop} is a link loop (")


@pytest.mark.parametrize(
    "call",
    [
        # the loop in the second path a rename, link or symbolic link names (OSError.filename2): the line
        # was a file system refusal, exit 1, and named no link
        lambda other, loop: os.replace(other, loop / "r1"),
        lambda other, loop: os.link(other, loop / "r1"),
        lambda other, loop: os.symlink(other, loop / "r1"),
        lambda other, loop: os.rename(loop / "r1", other),  # in the first, as before
    ],
    ids=["replace-to", "link-to", "symlink-to", "rename-from"],
)
def test_a_link_loop_in_either_path_of_a_rename_is_named(tmp_path, link_loop, capsys, call):
    other = tmp_path / "a.json"
    other.write_text("{}")
    assert exit_code(lambda: call(other, link_loop)) == EXIT_USER_ERROR
    assert_link_loop_line(capsys.readouterr().err, f"{link_loop}/r1: ", link_loop)


def test_a_line_break_in_a_path_of_a_file_error_or_link_loop_stays_on_the_line(tmp_path, capsys):
    folder = tmp_path / "lot\n7"
    folder.mkdir()
    loop = folder / "loop"
    loop.symlink_to("loop")
    assert exit_code(lambda: os.stat(loop / "r1")) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path}/lot 7/loop/r1: " in err and "is a link loop" in err
    assert exit_code(lambda: os.replace(tmp_path / "missing", loop / "r1")) == EXIT_USER_ERROR
    assert capsys.readouterr().err.count("\n") == 1
    assert exit_code(lambda: os.stat(folder / "missing")) == EXIT_FILE_ERROR
    assert capsys.readouterr().err == f"error: No such file or directory: {tmp_path}/lot 7/missing\n"
    resolved = RuntimeError(f"Symlink loop from {str(loop / 'r1')!r}")  # Python 3.11's Path.resolve
    assert exit_code(_raise(resolved)) == EXIT_USER_ERROR
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("name", ["out ", "a\tb"])
def test_a_file_error_names_the_path_as_given(tmp_path, capsys, name):
    # the path's ends were stripped: a path the user never gave
    assert exit_code(lambda: os.stat(tmp_path / name / "x")) == EXIT_FILE_ERROR
    assert capsys.readouterr().err == f"error: No such file or directory: {tmp_path}/{name}/x\n"
    assert exit_code(lambda: os.stat(tmp_path / name)) == EXIT_FILE_ERROR
    assert capsys.readouterr().err == f"error: No such file or directory: {tmp_path}/{name}\n"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a\u2028b", "a\\u2028b"),
        ("a\x1cb", "a\\x1cb"),
        ("a\x85b", "a\\x85b"),
        ("a\x0cb", "a\\x0cb"),
        ("lot\r", "lot\\r"),
    ],
)
def test_a_file_error_shows_a_line_break_of_its_path_escaped(tmp_path, capsys, name, shown):
    # printed raw, the line was two for str.splitlines (and a terminal, at \x0c); a trailing '\r' was a
    # space, and joined_lines made 'a b', a path the user never gave
    assert exit_code(lambda: os.stat(tmp_path / name / "x")) == EXIT_FILE_ERROR
    assert capsys.readouterr().err == f"error: No such file or directory: {tmp_path}/{shown}/x\n"
    assert exit_code(lambda: os.stat(tmp_path / name)) == EXIT_FILE_ERROR
    assert capsys.readouterr().err == f"error: No such file or directory: {tmp_path}/{shown}\n"


def test_a_line_break_in_a_path_keeps_the_indent_after_it(tmp_path, capsys):
    assert exit_code(lambda: os.stat(tmp_path / "lot\r\n  7")) == EXIT_FILE_ERROR
    assert capsys.readouterr().err == f"error: No such file or directory: {tmp_path}/lot   7\n"


@pytest.mark.parametrize("message", ["Symlink loop", "Symlink loop from nowhere", "cannot reenter"])
def test_any_other_runtime_error_keeps_its_traceback(message):
    # only Path.resolve's own loop error names a user's path
    with pytest.raises(RuntimeError, match=message):
        exit_code(_raise(RuntimeError(message)))
    with pytest.raises(NotImplementedError):  # a RuntimeError subclass, whatever its text
        exit_code(_raise(NotImplementedError("Symlink loop from '/nowhere/loop'")))


def test_a_bad_flag_is_one_line_naming_the_help(capsys):
    parser = OneLineParser(prog="python -m tool")
    parser.add_argument("--size", type=int)
    assert exit_code(lambda: parser.parse_args(["--size", "big"])) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--size" in err and "'big'" in err and "(see python -m tool --help)" in err


@pytest.mark.parametrize("value", ["", " "])  # an unset variable, or one holding a stray space
def test_an_empty_path_argument_is_refused(capsys, value):
    from pathlib import Path

    # Path("") and Path(" ") are no folder the user named: --out "$OUT" wrote into the working folder
    parser = OneLineParser(prog="python -m tool")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--name")
    assert exit_code(lambda: parser.parse_args(["--out", value])) == EXIT_USER_ERROR
    assert capsys.readouterr().err == (
        f"error: argument --out: is empty ({value!r}; an unset shell variable?) (see python -m tool --help)\n"
    )
    assert parser.parse_args(["--name", value]).name == value  # only a path is refused


def test_a_folder_option_reads_a_quoted_tilde_as_the_home_folder(tmp_path, monkeypatch, capsys):
    # --out '~/runs' wrote into a folder named '~' in the working folder, unlike out: ~/runs in a config
    monkeypatch.setenv("HOME", str(tmp_path))
    parser = OneLineParser(prog="python -m tool")
    parser.add_argument("--out", type=user_path)
    assert parser.parse_args(["--out", "~/runs"]).out == tmp_path / "runs"
    assert parser.parse_args(["--out", "runs/~"]).out.as_posix() == "runs/~"  # only a leading one
    # ~name with no such user is that folder, as a shell leaves it (Path.expanduser raised a RuntimeError)
    assert parser.parse_args(["--out", "~no_user_lot_7/runs"]).out.as_posix() == "~no_user_lot_7/runs"
    assert exit_code(lambda: parser.parse_args(["--out", ""])) == EXIT_USER_ERROR  # refused as a Path is
    assert "argument --out: is empty ('';" in capsys.readouterr().err


def test_an_empty_user_path_text_argument_is_refused(capsys):
    # anomaly.train --out "$OUT" with the variable unset: "" went on as "." (the working folder) and
    # --run "" read "not an anomaly run folder: ." instead of naming the empty value
    parser = OneLineParser(prog="python -m tool")
    parser.add_argument("--out", type=user_path_text)
    for value in ("", " "):
        assert exit_code(lambda value=value: parser.parse_args(["--out", value])) == EXIT_USER_ERROR
        assert f"argument --out: is empty ({value!r};" in capsys.readouterr().err
    assert parser.parse_args(["--out", "./runs"]).out == "./runs"  # kept as typed


@pytest.mark.parametrize(
    ("option", "kind", "value", "said", "instead"),
    [
        # copied with a trailing space: the folder 'y2 ', which 'converters.validate y2' named as not found
        ("--out", user_path, "y2 ", "'y2 ' ends with whitespace, which it would keep ('y2'", "y2"),
        ("--out", user_path_text, " y2", "' y2' starts with whitespace, which it would keep ('y2'", "y2"),
        (
            "--out",
            None,
            "y2\t",
            "'y2\\t' ends with whitespace, which it would keep ('y2'",
            "y2",
        ),  # synthetic's
        (
            "--out",
            user_path,
            " y2 ",
            "' y2 ' starts and ends with whitespace, which it would keep ('y2'",
            "y2",
        ),
        # a folder it would create on the way too
        (
            "--out",
            user_path,
            "a b/sub /y2",
            "'sub ' ends with whitespace, which it would keep ('sub'",
            "'a b/sub/y2'",
        ),
        (
            "--cache-dir",
            user_path,
            "cache ",
            "'cache ' ends with whitespace, which it would keep ('cache'",
            "cache",
        ),
    ],
)
def test_an_output_name_with_whitespace_at_an_end_is_refused(
    tmp_path, monkeypatch, capsys, option, kind, value, said, instead
):
    monkeypatch.chdir(tmp_path)
    parser = OneLineParser(prog="python -m tool")
    parser.add_argument(option, type=kind)
    assert exit_code(lambda: parser.parse_args([option, value])) == EXIT_USER_ERROR
    assert capsys.readouterr().err == (
        f"error: argument {option}: the new name {said} would not find it): pass {option} {instead} "
        "(see python -m tool --help)\n"
    )
    assert sorted(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.parametrize(
    ("value", "said"),
    [
        # 'runs/$NAME' with NAME=' ': it said "' ' starts and ends with whitespace ... ('' would not find it)"
        ("runs/ ", "' ' is empty but for whitespace ('runs/ '; an unset shell variable?)"),
        ("runs/\t/y2", "'\\t' is empty but for whitespace ('runs/\\t/y2'; an unset shell variable?)"),
    ],
)
def test_an_output_name_of_whitespace_alone_is_named_empty(tmp_path, monkeypatch, capsys, value, said):
    monkeypatch.chdir(tmp_path)
    parser = OneLineParser(prog="python -m tool")
    parser.add_argument("--out", type=user_path)
    assert exit_code(lambda: parser.parse_args(["--out", value])) == EXIT_USER_ERROR
    assert capsys.readouterr().err == (
        f"error: argument --out: the new name {said} (see python -m tool --help)\n"
    )
    assert sorted(tmp_path.iterdir()) == []


#: The commands with neither --out nor --cache-dir: a report alone, or a training config naming the run.
NO_OUTPUT_OPTION = {"mvtec-validate", "mvtec-sam-train", "mvtec-detect-train"}


@pytest.mark.parametrize(
    ("script", "target"), sorted((s, t) for s, t in entry_points().items() if s not in NO_OUTPUT_OPTION)
)
def test_every_commands_output_options_refuse_a_new_name_with_whitespace(
    tmp_path, monkeypatch, capsys, script, target
):
    import importlib

    from tests.test_readme import help_options

    monkeypatch.chdir(tmp_path)
    module, function = target.split(":")
    options = sorted({"--out", "--cache-dir"} & help_options(target))
    assert options
    capsys.readouterr()
    for option in options:
        assert getattr(importlib.import_module(module), function)([option, "y2 "]) == EXIT_USER_ERROR
        assert capsys.readouterr().err.startswith(f"error: argument {option}: the new name 'y2 ' ends with")
    assert sorted(tmp_path.iterdir()) == []


def test_an_existing_output_name_with_whitespace_is_taken_as_given(tmp_path, monkeypatch):
    # a folder the user made under that name (an input path is taken as given too), and inputs whatever
    # they hold
    monkeypatch.chdir(tmp_path)
    (tmp_path / "y2 ").mkdir()
    parser = OneLineParser(prog="python -m tool")
    parser.add_argument("--out", type=user_path)
    parser.add_argument("--root", type=user_path)
    assert parser.parse_args(["--out", "y2 "]).out.name == "y2 "
    assert parser.parse_args(["--out", "y2 /sub"]).out.as_posix() == "y2 /sub"
    assert (
        parser.parse_args(["--root", "photos "]).root.name == "photos "
    )  # not an output: its command names it


def test_a_user_path_text_tilde_with_no_home_folder_is_refused(monkeypatch, capsys):
    # a container's arbitrary user id with no HOME: anomaly.train --out '~/runs' wrote into a folder named '~'
    from tests.conftest import without_home

    without_home(monkeypatch)
    parser = OneLineParser(prog="python -m tool")
    parser.add_argument("--out", type=user_path_text)
    assert exit_code(lambda: parser.parse_args(["--out", "~/runs"])) == EXIT_USER_ERROR
    assert "argument --out: ~/runs: no home folder" in capsys.readouterr().err
    assert parser.parse_args(["--out", "~no_user_lot_7/runs"]).out == "~no_user_lot_7/runs"


def test_an_unquoted_source_pattern_is_named_as_such(tmp_path, capsys):
    photos = [tmp_path / f"{index}.png" for index in range(5)]
    for photo in photos:
        photo.write_bytes(b"")
    parser = OneLineParser(prog="python -m tool")
    parser.add_argument("--source")
    argv = ["--source", *map(str, photos)]  # what the shell makes of --source tmp/*.png
    assert exit_code(lambda: parser.parse_args(argv)) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{photos[3]} and 1 more" in err and str(photos[4]) not in err
    assert "the shell expanded a --source pattern into files; quote it (--source 'photos/*.png')" in err
    assert f"{photos[1]} {photos[2]} {photos[3]} and 1 more" in err  # spaced as typed, not a list
    assert exit_code(lambda: parser.parse_args(["--source", "a", "b"])) == EXIT_USER_ERROR  # not files
    assert capsys.readouterr().err == "error: unrecognized arguments: b (see python -m tool --help)\n"
    assert parser.parse_args(["--source", "a"]).source == "a"


def test_a_file_system_error_naming_its_file_is_one_line_and_exit_1(capsys):
    error = PermissionError(13, "Permission denied", "/srv/out/run")
    assert exit_code(_raise(error)) == EXIT_FILE_ERROR
    assert capsys.readouterr().err == "error: Permission denied: /srv/out/run\n"


def test_a_file_system_error_naming_no_file_keeps_its_traceback():
    with pytest.raises(OSError, match="socket"):
        exit_code(_raise(OSError("socket closed")))


def test_a_ctrl_c_that_library_code_swallowed_is_raised_again():
    import os
    import signal

    from common.cli import keep_interrupts

    def swallowing_plot():  # ultralytics' TryExcept around its plots
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            pass
        return "went on"

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), keep_interrupts():
        assert swallowing_plot() == "went on"
    assert signal.getsignal(signal.SIGINT) is before
    with keep_interrupts():  # no Ctrl-C: nothing raised
        pass


@pytest.mark.parametrize(
    "error",
    [
        UserError("no photos in /data/lot 7"),
        PermissionError(13, "Permission denied", "/srv/out"),
        RuntimeError("Symlink loop from '/srv/loop'"),
    ],
    ids=["user error", "file error", "link loop"],
)
def test_a_ctrl_c_swallowed_inside_keep_interrupts_before_an_error_ends_it_as_interrupted(capsys, error):
    """The user asked it to stop: an error after a Ctrl-C that ultralytics' plotting swallowed made it exit 2
    or 1 with the error's line, as if never pressed; a bug after it keeps its traceback."""
    import signal

    from common.cli import keep_interrupts

    def swallowing_then_failing(raised: BaseException):
        def work():
            with keep_interrupts():
                try:  # ultralytics' TryExcept around a plot
                    signal.raise_signal(signal.SIGINT)
                except BaseException:
                    pass
                raise raised

        return work

    assert exit_code(swallowing_then_failing(error)) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"
    with pytest.raises(TypeError, match="a bug"):
        exit_code(swallowing_then_failing(TypeError("a bug")))
    with pytest.raises(OSError, match="socket"):  # an OSError naming no file is a bug too
        exit_code(swallowing_then_failing(OSError("socket closed")))


@pytest.mark.parametrize("message", ["", "ConfusionMatrix plot failure"])
def test_ultralytics_warning_for_a_swallowed_ctrl_c_is_not_printed(message):
    import logging
    import os
    import signal

    from ultralytics.utils import LOGGER, TryExcept

    from common.cli import keep_interrupts

    class Kept(logging.Handler):  # what ultralytics' own handler printed (its prefix added to the record)
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage().removeprefix("WARNING").removeprefix(" ⚠️").removeprefix(" "))

    said, kept = [], Kept()
    LOGGER.addHandler(kept)
    try:
        # TryExcept logged the Ctrl-C's empty text: a bare 'WARNING ⚠️ ' line before 'interrupted'
        with pytest.raises(KeyboardInterrupt), keep_interrupts():
            LOGGER.warning("a warning before the Ctrl-C")
            with TryExcept(msg=message):
                os.kill(os.getpid(), signal.SIGINT)
            LOGGER.warning("a warning after it")
        assert said == ["a warning before the Ctrl-C", "a warning after it"]
        with keep_interrupts(), TryExcept(msg=message):  # no Ctrl-C: another error's warning is printed
            raise ValueError("no font")
        assert said[2:] == [f"{message}{': ' if message else ''}no font"]
    finally:
        LOGGER.removeHandler(kept)


@pytest.mark.parametrize(
    ("argv", "starting"),
    [(["-m"], True), (["/venv/bin/mvtec-segment-train", "x"], True), (["notebook.py"], False), ([], False)],
)
def test_starting_a_command(monkeypatch, argv, starting):
    import sys

    from common.cli import starting_a_command

    monkeypatch.setattr(sys, "argv", argv)
    assert starting_a_command() is starting


def test_the_startup_hook_prints_ctrl_c_as_one_line_and_passes_the_rest_on(monkeypatch, capsys):
    import sys

    from common.cli import quiet_startup_interrupts

    passed_on = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc_info: passed_on.append(exc_info[0]))
    quiet_startup_interrupts()
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert capsys.readouterr().err == "interrupted\n"
    assert passed_on == []
    sys.excepthook(ValueError, ValueError("a bug"), None)
    assert passed_on == [ValueError]
    assert capsys.readouterr().err == ""


def test_ctrl_c_while_a_command_imports_is_one_line(tmp_path):
    """``python -m <package>.<module>``: Ctrl-C after ``common`` is imported, before any work runs."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    package = tmp_path / "slow_package"
    package.mkdir()
    (package / "__init__.py").write_text("import common\n")
    (package / "command.py").write_text("import time\nprint('importing', flush=True)\ntime.sleep(60)\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)])}
    with subprocess.Popen(
        [sys.executable, "-m", "slow_package.command"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        # a shell's background job (CI) starts with Ctrl-C ignored, and Python keeps it so: a terminal's
        # command does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as process:
        assert process.stdout.readline() == "importing\n"
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=30)
        finally:
            process.kill()  # still sleeping: the Ctrl-C was lost
    assert err == "interrupted\n"
    assert process.returncode == -signal.SIGINT  # Python's exit for Ctrl-C: status 130 in a shell


def test_a_kill_removes_the_half_built_folder_and_is_one_line(tmp_path):
    """SIGTERM (``kill``, a scheduler's stop) ended Python at once: the hidden ``.partial`` build stayed."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "command.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from common.cli import exit_code\n"
        "from common.folders import build_folder\n"
        "def write(folder):\n"
        "    (folder / 'half.txt').write_text('x')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        f"out = Path({str(tmp_path / 'out')!r})\n"
        "sys.exit(exit_code(lambda: build_folder(out, write, overwrite=False)))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    ) as process:
        assert process.stdout.readline() == "writing\n"
        assert [p.name for p in tmp_path.glob(".out.partial-*")]  # the build is there while it runs
        process.send_signal(signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert (err, process.returncode) == ("terminated\n", EXIT_TERMINATED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["command.py"]  # no .partial, no out


def test_sigterm_is_restored_after_the_command(capsys):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert exit_code(lambda: signal.getsignal(signal.SIGTERM) is not before or 1 / 0) == 0
    assert signal.getsignal(signal.SIGTERM) is before
    assert exit_code(_raise(KeyboardInterrupt())) == EXIT_INTERRUPTED  # a Ctrl-C is not called a kill
    assert capsys.readouterr().err == "interrupted\n"


def test_a_kill_is_a_ctrl_c_whose_second_kill_ends_at_once(capsys):
    """The first SIGTERM runs the clean-up as a Ctrl-C; the handler then gives way to the default."""
    import signal

    after_first: list[object] = []

    def killed():
        try:
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt:
            after_first.append(signal.getsignal(signal.SIGTERM))
            raise

    assert exit_code(killed) == EXIT_TERMINATED == 128 + signal.SIGTERM  # a shell's status for kill
    assert after_first == [signal.SIG_DFL]  # a second kill ends the process, clean-up or not
    assert capsys.readouterr().err == "terminated\n"


def test_a_kill_that_the_work_swallowed_still_ends_it_as_terminated(capsys):
    """A SIGTERM caught where no keep_interrupts re-raises it (as ultralytics' TryExcept catches every
    exception) was lost: the work went on and the command exited 0."""
    import signal

    def swallowing():
        try:
            signal.raise_signal(signal.SIGTERM)
        except BaseException:
            pass
        return "went on"

    assert exit_code(swallowing) == EXIT_TERMINATED
    assert capsys.readouterr().err == "terminated\n"


@pytest.mark.parametrize(
    "error",
    [
        UserError("no photos in /data/lot 7"),
        PermissionError(13, "Permission denied", "/srv/out"),
        RuntimeError("Symlink loop from '/srv/loop'"),
    ],
    ids=["user error", "file error", "link loop"],
)
def test_a_kill_the_work_swallowed_before_an_error_ends_it_as_terminated(capsys, error):
    """The user asked it to stop: an error after a swallowed SIGTERM (ultralytics' plotting swallowed it, the
    work went on and then failed) made it exit 2 or 1 with the error's line, as if never killed."""
    import signal

    def swallowing_then_failing():
        try:
            signal.raise_signal(signal.SIGTERM)
        except BaseException:
            pass
        raise error

    assert exit_code(swallowing_then_failing) == EXIT_TERMINATED
    assert capsys.readouterr().err == "terminated\n"

    def acknowledged_then_failing():  # a server's kill, acknowledged: the error counts again
        try:
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt:
            acknowledge_termination()
        raise UserError("no photos in /data/lot 7")

    assert exit_code(acknowledged_then_failing) == EXIT_USER_ERROR
    assert capsys.readouterr().err == "error: no photos in /data/lot 7\n"


def test_a_kill_the_work_acknowledged_as_its_ordinary_stop_exits_0(capsys):
    """A server stopped by kill (docker stop, systemctl stop) shut down gracefully and said so, yet ended
    'terminated' with 143; acknowledged, it ends as a Ctrl-C it swallowed does. Unacknowledged (every
    other command: test_a_kill_that_the_work_swallowed_still_ends_it_as_terminated) it stays 143."""
    import signal

    def server():
        try:
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt:
            acknowledge_termination()
        return "stopped"

    assert exit_code(server) == 0
    assert capsys.readouterr().err == ""

    def acknowledged_then_ctrl_c():
        acknowledge_termination()  # no SIGTERM received: nothing changes
        raise KeyboardInterrupt

    assert exit_code(acknowledged_then_ctrl_c) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"
    acknowledge_termination()  # outside any command: nothing to tell


def test_a_kill_swallowed_inside_keep_interrupts_stops_the_next_step(capsys):
    """As a swallowed Ctrl-C: the next step's raise_swallowed_interrupt raises it, keep_interrupts would at
    its end, and ultralytics' empty warning for it is dropped; it reads 'terminated', not 'interrupted'."""
    import logging
    import signal

    from common.cli import keep_interrupts, raise_swallowed_interrupt

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    said: list[str] = []
    steps: list[int] = []
    kept, logger = Kept(), logging.getLogger("ultralytics")

    def training():
        with keep_interrupts():
            for step in range(3):
                raise_swallowed_interrupt()
                steps.append(step)
                try:  # TryExcept around a plot: the kill comes during the first step's
                    if step == 0:
                        signal.raise_signal(signal.SIGTERM)
                except BaseException as error:
                    logger.warning(f"ConfusionMatrix plot failure: {error}")

    logger.addHandler(kept)
    try:
        assert exit_code(training) == EXIT_TERMINATED
    finally:
        logger.removeHandler(kept)
    assert (steps, said) == ([0], [])
    assert capsys.readouterr().err == "terminated\n"


def test_a_command_run_outside_the_main_thread_handles_no_signals(capsys):
    """Only the main thread may set signal handlers (ValueError elsewhere): a notebook's worker thread."""
    import signal
    import threading

    from common.cli import keep_interrupts

    def in_keep_interrupts():
        with keep_interrupts():
            return "done"

    results: list[object] = []
    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=lambda: results.append(exit_code(in_keep_interrupts)))
    thread.start()
    thread.join()
    assert results == [0]
    assert signal.getsignal(signal.SIGTERM) is before
    assert capsys.readouterr().err == ""


def test_help_gives_each_default_once_and_none_for_unset_flags() -> None:
    parser = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--out", help="output folder (default: beside the run)")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--cache", help="cache folder")
    parser.add_argument("--min-area", type=int, default=16, help="smallest region (default: 16 px)")
    text = " ".join(parser.format_help().split())
    assert "output folder (default: beside the run) --seed" in text and "seed (default: 0)" in text
    assert "smallest region (default: 16 px)" in text
    assert "(default: None)" not in text and text.count("(default") == 3


def test_help_gives_no_default_for_an_option_of_no_values() -> None:
    # evaluate's --set (nargs="*", action="extend", default=[]) read 'train overrides (default: [])'
    parser = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--set", nargs="*", action="extend", default=[], help="train overrides")
    parser.add_argument("--split", nargs="+", default=["test"], help="splits")
    text = " ".join(parser.format_help().split())
    assert "(default: [])" not in text and "train overrides --split" in text
    assert "splits (default: ['test'])" in text


def test_help_gives_no_default_for_a_switch() -> None:
    parser = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--progress", action="store_false", dest="quiet", help="no progress bars")
    parser.add_argument("--conf", type=float, default=0.25, help="lowest box score kept")
    text = " ".join(parser.format_help().split())
    assert "replace an existing --out --progress" in text and "(default: False)" not in text
    assert "(default: True)" not in text and "lowest box score kept (default: 0.25)" in text


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("inspection.evaluate", ["split to score (default: test)", "(default: 6)", "(default: 0.25)"]),
        ("inspection.predict", ["(default: 0.25)", "(default: 300)"]),
        ("detection.evaluate", ["(default: 0.25)", "(default: test)"]),
        ("detection.predict", ["(default: 0.25)", "NMS IoU threshold (default: 0.7)"]),
    ],
)
def test_the_detection_and_inspection_commands_give_their_defaults(command, shown) -> None:
    import importlib

    text = " ".join(importlib.import_module(command).build_parser().format_help().split())
    assert all(item in text for item in shown), text
    assert "(default: None)" not in text and "(default: False)" not in text


ENTRY_POINT_PARSERS = [
    ("converters.cli", "build_parser", ("python -m converters.mvtec2yolo",), {"primary": "yolo"}),
    ("detection.evaluate", "build_parser", (), {}),
    ("detection.predict", "build_parser", (), {}),
    ("detection.text_embeddings", "build_parser", (), {}),
    ("segmentation.embed", "build_parser", (), {}),
    ("segmentation.evaluate", "build_parser", (), {}),
    ("segmentation.export", "build_parser", (), {}),
    ("segmentation.annotate.__main__", "build_parser", (), {}),
    ("inspection.evaluate", "build_parser", (), {}),
    ("inspection.predict", "build_parser", (), {}),
    ("anomaly.train", "parser", (), {}),
    ("anomaly.evaluate", "parser", (), {}),
    ("anomaly.predict", "parser", (), {}),
]


@pytest.mark.parametrize(("module", "function", "args", "kwargs"), ENTRY_POINT_PARSERS)
def test_every_option_of_an_entry_point_gives_its_default_once(module, function, args, kwargs) -> None:
    """inspection.predict's --help said '(0 none, -1 all; default 50) (default: 50)'."""
    import importlib
    import re

    parser = getattr(importlib.import_module(module), function)(*args, **kwargs)
    options = re.split(r"\n(?=  -)", parser.format_help())
    twice = [" ".join(o.split()) for o in options if len(re.findall(r"\(default[: ]|; default ", o)) > 1]
    assert twice == []


def _installed() -> bool:
    from importlib import metadata

    try:
        metadata.distribution("mvtec-finetune")
    except metadata.PackageNotFoundError:
        return False
    return True


needs_install = pytest.mark.skipif(
    not _installed(), reason="console scripts exist once the project is installed"
)


@needs_install
@pytest.mark.parametrize(("script", "target"), sorted(entry_points().items()))
def test_a_console_script_is_named_as_typed(monkeypatch, script, target):
    """``mvtec2yolo --help`` printed ``usage: python -m converters.mvtec2yolo``: not what the user typed."""
    monkeypatch.setattr("sys.argv", [f"/venv/bin/{script}", "--help"])
    assert command_name(module_of(target)) == script


@pytest.mark.parametrize(
    "first",
    [
        "/repo/converters/mvtec2yolo.py",  # python -m converters.mvtec2yolo: the module's file
        "/venv/bin/mvtec2coco",  # another command's script calling this module's main
        "/venv/bin/python",
        "",
    ],
)
def test_anything_else_is_named_as_python_dash_m(monkeypatch, first):
    monkeypatch.setattr("sys.argv", [first])
    assert command_name("converters.mvtec2yolo") == "python -m converters.mvtec2yolo"


@needs_install
def test_the_console_script_s_help_names_it(monkeypatch, capsys):
    from converters.mvtec2yolo import main

    monkeypatch.setattr("sys.argv", ["/venv/bin/mvtec2yolo", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert capsys.readouterr().out.startswith("usage: mvtec2yolo ")
    monkeypatch.setattr("sys.argv", ["/venv/bin/mvtec2yolo", "--no-such-flag"])
    assert main() == EXIT_USER_ERROR
    assert capsys.readouterr().err.endswith("(see mvtec2yolo --help)\n")


def test_python_dash_m_help_names_the_module():
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run(
        [sys.executable, "-m", "converters.mvtec2yolo", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        check=True,
    )
    assert done.stdout.startswith("usage: python -m converters.mvtec2yolo ")


def test_a_command_keeps_pils_damaged_exif_warning_out_of_its_output(tmp_path):
    """ultralytics' loader opens each photo with PIL: its raw UserWarning reached stderr from evaluate."""
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    exif = Image.Exif()
    exif[0x010E] = "x" * 200  # ImageDescription: its data lies past the directory, and is cut short
    photo = tmp_path / "cut.jpg"
    Image.new("RGB", (12, 8)).save(photo, exif=exif.tobytes()[:-150])
    package = tmp_path / "loader"
    package.mkdir()
    (package / "__init__.py").write_text("import common\n")
    (package / "command.py").write_text(f"from PIL import Image\nImage.open({str(photo)!r}).load()\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)])}
    done = subprocess.run(
        [sys.executable, "-m", "loader.command"], capture_output=True, text=True, env=env, timeout=120
    )
    assert (done.returncode, done.stderr) == (0, "")


def _run_into_a_closed_pipe(argv: list[str], *, both: bool = False, cwd=None):
    """``argv`` run with stdout (and stderr too, ``both``: ``2>&1``) a pipe whose reader is gone, as in
    ``... | true``; ``(exit code, stderr)``."""
    import subprocess
    from pathlib import Path

    read, write = os.pipe()
    os.close(read)  # the reader gone before the command prints: every write to it fails
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    try:
        done = subprocess.run(
            argv,
            stdout=write,
            stderr=write if both else subprocess.PIPE,
            env=env,
            text=True,
            timeout=120,
            cwd=cwd or repo,
        )
    finally:
        os.close(write)
    return done.returncode, done.stderr


def _closed_pipe_script(tmp_path, action: str):
    script = tmp_path / "command.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from common.cli import exit_code\n"
        "from common.folders import build_folder\n"
        f"out = Path({str(tmp_path / 'out')!r})\n"
        "def work():\n"
        "    build_folder(out, lambda folder: (folder / 'done.txt').write_text('x'), overwrite=False)\n"
        f"    {action}\n"
        "sys.exit(exit_code(work))\n"
    )
    return script


@pytest.mark.parametrize("both", [False, True])
def test_output_into_a_pipe_closed_early_ends_quietly_with_141_and_keeps_the_work(tmp_path, both):
    # '... | head -1': BrokenPipeError's traceback and exit 1 (buffered: Python's 'Exception ignored' and 120)
    from common.cli import EXIT_BROKEN_PIPE

    script = _closed_pipe_script(tmp_path, "print(f'wrote {out}')")
    code, err = _run_into_a_closed_pipe([sys.executable, str(script)], both=both)
    assert (code, err) == (EXIT_BROKEN_PIPE, None if both else "")
    assert (tmp_path / "out" / "done.txt").read_text() == "x"  # renamed into place before the print: kept


@pytest.mark.parametrize("both", [False, True])
def test_logging_into_a_pipe_closed_early_ends_quietly_with_141_and_stops_the_work(tmp_path, both):
    # ultralytics' LOGGER is a StreamHandler on stdout: logging swallowed each BrokenPipeError, printed a
    # '--- Logging error ---' traceback per record on stderr and the work went on to exit 0
    from common.cli import EXIT_BROKEN_PIPE

    script = tmp_path / "command.py"
    script.write_text(
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from common.cli import exit_code\n"
        "log = logging.getLogger('ultralytics_like')\n"
        "log.addHandler(logging.StreamHandler(sys.stdout))\n"
        "log.setLevel(logging.INFO)\n"
        "def work():\n"
        "    for epoch in range(3):\n"
        "        log.info('epoch %d', epoch)\n"
        f"    Path({str(tmp_path / 'finished')!r}).touch()\n"
        "sys.exit(exit_code(work))\n"
    )
    code, err = _run_into_a_closed_pipe([sys.executable, str(script)], both=both)
    assert (code, err) == (EXIT_BROKEN_PIPE, None if both else "")
    assert not (tmp_path / "finished").exists()  # stopped at the first record, as at a print


def test_a_logging_error_of_another_pipe_is_left_to_logging(tmp_path):
    # a handler on a pipe other than stdout's or stderr's: logging's own report, the work going on
    import subprocess
    from pathlib import Path

    script = tmp_path / "command.py"
    script.write_text(
        "import logging, os, sys\n"
        "from common.cli import exit_code\n"
        "read, write = os.pipe()\n"
        "os.close(read)\n"
        "log = logging.getLogger('other_pipe')\n"
        "log.addHandler(logging.StreamHandler(os.fdopen(write, 'w')))\n"
        "def work():\n"
        "    log.warning('one')\n"
        "    print('finished')\n"
        "sys.exit(exit_code(work))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert (done.returncode, done.stdout) == (0, "finished\n")
    assert "--- Logging error ---" in done.stderr and "BrokenPipeError" in done.stderr


def test_a_broken_pipe_of_the_work_itself_is_a_bug_with_its_traceback(tmp_path):
    # another pipe or socket than stdout's: not taken for the user's '| head'
    import subprocess
    from pathlib import Path

    script = _closed_pipe_script(tmp_path, "raise BrokenPipeError(32, 'Broken pipe')")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 1 and "Traceback" in done.stderr and "BrokenPipeError" in done.stderr


def test_a_conversion_into_a_pipe_closed_early_ends_quietly_with_its_data_set_whole(tmp_path, hazelnut_root):
    # 'mvtec2yolo ... | true': BrokenPipeError's traceback and exit 1 once the data set was written
    from common.cli import EXIT_BROKEN_PIPE

    argv = ["-m", "converters.mvtec2yolo", "--root", str(hazelnut_root), "--out", "y", "--no-progress"]
    code, err = _run_into_a_closed_pipe([sys.executable, *argv], cwd=tmp_path)
    assert (code, err) == (EXIT_BROKEN_PIPE, "")
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == [
        "data.yaml",
        "images",
        "labels",
        "splits.json",
    ]


def test_without_poll_a_broken_pipe_keeps_its_traceback(monkeypatch):
    # Windows has no select.poll: every BrokenPipeError was taken for '| head', a bug's too (exit 141, silent)
    import select

    import common.cli as cli

    monkeypatch.delattr(select, "poll")
    with open(os.devnull, "w") as devnull:  # streams with a file number, as a real stdout and stderr have
        monkeypatch.setattr(sys, "stdout", devnull)
        monkeypatch.setattr(sys, "stderr", devnull)

        def work():
            raise BrokenPipeError(32, "Broken pipe")

        with pytest.raises(BrokenPipeError):
            cli.exit_code(work)


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_signals_held_raises_a_ctrl_c_or_kill_after_the_block_and_not_inside(signum):
    # for moves a stop halfway would split (segmentation.folds: an earlier --folds run put back)
    import signal

    from common.cli import exit_code, signals_held

    done = []

    def work():
        with signals_held():
            signal.raise_signal(getattr(signal, signum))
            done.append("moved")  # not stopped inside
        done.append("after")  # stopped here

    assert exit_code(work) == {"SIGINT": 130, "SIGTERM": 143}[signum]
    assert done == ["moved"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
