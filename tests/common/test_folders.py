"""``common.folders``: output names, output-folder checks and folders put in place whole."""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import pytest

from common.errors import UserError
from common.folders import (
    MAX_NAME_BYTES,
    build_folder,
    check_creatable,
    check_folder_name,
    check_input_file,
    check_not_inside,
    check_not_working_folder,
    check_output_folder,
    check_outside_tree,
    check_replaceable,
    check_unique_names,
    check_utf8_names,
    check_utf8_path,
    earlier_run_note,
    output_name,
    remove_leftovers,
    restore_old_copy,
    windows_problem,
    windows_safe_name,
)
from common.io import temporary_path
from tests.conftest import assert_link_loop_line


@pytest.mark.parametrize(
    ("parts", "below", "folder", "shown"),
    [
        ((b"lot", b"bad\xff.png"), None, "lot", "b'bad\\xff.png'"),
        ((b"l\xfeot", b"a.png"), None, "", "b'l\\xfeot'"),
        ((b"l\xfeot", b"a.png"), "", "", "b'l\\xfeot'"),  # a folder below ``below``: checked too
        ((b"l\xfeot", b"a.png"), "l\udcfeot", None, None),  # only the names below are checked
    ],
)
def test_a_name_that_is_not_utf8_is_refused_naming_its_folder(tmp_path, parts, below, folder, shown) -> None:
    # json.dumps wrote such a name as "\udcff", which other JSON readers refuse or mangle
    path = tmp_path.joinpath(*map(os.fsdecode, parts))
    if shown is None:
        check_utf8_names(path, below=tmp_path / below)
        return
    with pytest.raises(UserError) as error:
        check_utf8_names(path, below=None if below is None else tmp_path / below)
    assert str(error.value) == (
        f"{tmp_path / folder} holds a name that is not UTF-8, {shown}: rename it (the JSON files written "
        "name it, and JSON readers refuse such names)"
    )
    check_utf8_names(tmp_path / "lot" / "a.png")  # no file is looked at


def _not_utf8_message(flag: str, folder: Path) -> str:
    return (
        f"{flag} has a name that is not UTF-8, b'bad\\xff' (in {folder}): rename it, or pass another folder "
        "(the commands' files record the path, and JSON and YAML readers refuse such names)"
    )


@pytest.mark.parametrize("below", ["", "out", "out/sub"], ids=["the folder", "its parent", "above it"])
def test_an_output_folder_whose_path_is_not_utf8_is_refused_before_anything_is_made(
    not_utf8_folder: Path, below: str
) -> None:
    # written into data.yaml's path: and run.json as "\udcff", and the report printing it stopped with a
    # UnicodeEncodeError on a UTF-8 terminal, once the outputs were written
    out = not_utf8_folder / below if below else not_utf8_folder
    before = sorted(not_utf8_folder.parent.rglob("*"))
    for flag, check in [
        ("--out", lambda: check_output_folder(out, overwrite=False)),
        ("config key 'project'", lambda: check_output_folder(out, flag="config key 'project':")),
        (
            "output folder",
            lambda: build_folder(out, lambda folder: (folder / "a.txt").write_text("x"), overwrite=True),
        ),
    ]:
        with pytest.raises(UserError) as error:
            check()
        assert str(error.value) == _not_utf8_message(flag, not_utf8_folder.parent)
    assert sorted(not_utf8_folder.parent.rglob("*")) == before, "nothing made or removed"


def test_a_relative_path_is_checked_with_the_working_folder(not_utf8_folder: Path, monkeypatch) -> None:
    # the commands record folders absolute (data.yaml's path:, run.json)
    monkeypatch.chdir(not_utf8_folder)
    with pytest.raises(UserError, match="^" + re.escape(_not_utf8_message("--out", not_utf8_folder.parent))):
        check_output_folder("out")


def test_an_output_folder_through_a_link_loop_is_one_line_naming_the_link(link_loop: Path) -> None:
    # converters.synthetic --out loop/r1 said "cannot write loop/r1/synthetic_nut: Too many levels of
    # symbolic links: loop/r1" (its mkdir's ELOOP); any other error of the write is named as before
    out = link_loop / "r1" / "set"
    with pytest.raises(UserError) as error:
        build_folder(out, lambda folder: (folder / "a.txt").write_text("x"), overwrite=False)
    assert_link_loop_line(f"error: {error.value}\n", f"output folder {out}: ", link_loop)
    (link_loop.parent / "source.png").symlink_to("source.png")  # a loop the write meets: not the output's

    def write(folder: Path) -> None:
        (folder / "a.png").write_bytes((link_loop.parent / "source.png").read_bytes())

    with pytest.raises(UserError, match="^cannot write .*: Too many levels of symbolic links"):
        build_folder(link_loop.parent / "out", write, overwrite=False)


def test_a_file_to_create_through_a_link_loop_is_named_as_one(link_loop: Path) -> None:
    # the nearest existing folder above loop/x.json was taken past the loop (exists() is False through one):
    # it passed, and the write failed once the work was done
    for out in (link_loop / "x.json", link_loop / "r1" / "x.json"):
        with pytest.raises(UserError) as error:
            check_creatable(out, what="file")
        assert_link_loop_line(f"error: {error.value}\n", f"file {out}: ", link_loop)
        with pytest.raises(UserError) as error:
            check_creatable(out, what="file", flag="--out")
        assert_link_loop_line(f"error: {error.value}\n", f"--out {out}: ", link_loop)
    check_creatable(link_loop.parent / "new" / "x.json", what="file")  # no loop: passes


@pytest.mark.parametrize("overwrite", [None, False, True])
def test_an_output_folder_in_a_link_loop_is_refused_before_the_work(link_loop: Path, overwrite) -> None:
    # check_output_folder took loop/x for a folder not there yet, and build_folder's mkdir of loop itself
    # failed only once the work was done, with EEXIST: 'cannot write loop/x: File exists: loop' (anomaly.train
    # --out loop/x after the fit; Python 3.13's Path.resolve lets the commands' paths through a loop)
    for out in (link_loop / "x", link_loop / "r1" / "set"):
        with pytest.raises(UserError) as error:
            check_output_folder(out, overwrite=overwrite)
        assert_link_loop_line(f"error: {error.value}\n", f"--out {out}: ", link_loop)
        with pytest.raises(UserError) as error:
            build_folder(out, lambda folder: (folder / "a.txt").write_text("x"), overwrite=bool(overwrite))
        assert_link_loop_line(f"error: {error.value}\n", f"output folder {out}: ", link_loop)
    assert sorted(path.name for path in link_loop.parent.iterdir()) == ["loop"]


@pytest.mark.parametrize("name", ["M\u00fcll", "\u691c\u67fb \u30e9\u30a4\u30f3", "caf\u00e9/\u00c5r 2024"])
def test_a_utf8_path_with_other_characters_is_taken(tmp_path: Path, name: str) -> None:
    # 'Müll' in UTF-8 (not Latin-1), a Japanese folder: text, written to JSON as it is
    out = tmp_path / name / "out"
    check_utf8_path(out, flag="--out")
    assert check_output_folder(out, overwrite=False) == out
    build_folder(out, lambda folder: (folder / "a.txt").write_text("x"), overwrite=False)
    assert (out / "a.txt").read_text() == "x"


@pytest.mark.parametrize(
    ("file_name", "stem"),
    [("a.png", "a"), ("lot_2/a.png", "lot_2__a"), ("a/b/c.PNG", "a__b__c"), ("x/a.b.png", "x__a.b")],
)
def test_output_name_flattens_folders_and_drops_the_suffix(file_name, stem) -> None:
    assert output_name(file_name) == stem


def test_names_that_differ_only_in_case_or_suffix_are_refused_naming_both() -> None:
    check_unique_names([("a", "a.png"), ("b", "b.png")])
    with pytest.raises(UserError, match=r"one output name 'A': a\.png and A\.jpg"):
        check_unique_names([(output_name("a.png"), "a.png"), (output_name("A.jpg"), "A.jpg")])


def test_a_name_too_long_for_its_files_is_refused_naming_the_photo(tmp_path: Path) -> None:
    fits = "x" * MAX_NAME_BYTES
    check_unique_names([(fits, "fits.png")])
    # the longest file written for it, as a hidden temporary, is a name the file system takes
    temporary = temporary_path(tmp_path / f"{fits}_mask.png")
    temporary.write_bytes(b"")
    too_long = "\u00e9" * (MAX_NAME_BYTES // 2 + 1)  # 2 bytes each in UTF-8: bytes count, not characters
    with pytest.raises(UserError) as error:
        check_unique_names([(too_long, "lot/a.png")])
    # its first 40 characters name it, and the way out: a file name is not all a photo's own name
    assert str(error.value) == (
        f"the output files of lot/a.png would be named after '{too_long[:40]}...', {MAX_NAME_BYTES + 2} "
        f"bytes, over the {MAX_NAME_BYTES} a file name leaves it (folders below the source count too, "
        "joined by '__'): rename it, or pass a folder nearer to it"
    )


def test_an_existing_folder_or_a_file_in_its_place_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "metrics.json").write_text("{}")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="output folder exists"):
        check_output_folder(tmp_path / "taken", overwrite=False)
    assert check_output_folder(tmp_path / "taken", overwrite=True) == tmp_path / "taken"
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file", overwrite=True)
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file" / "below")


def test_an_empty_folder_made_beforehand_is_taken_as_absent(tmp_path: Path) -> None:
    # `mkdir out && cmd --out out` was refused as an existing folder, as if it held an earlier run
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty", overwrite=False) == tmp_path / "empty"
    build_folder(tmp_path / "empty", lambda folder: (folder / "a.txt").write_text("new"), overwrite=False)
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["a.txt"]
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".keep").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "empty2", target_is_directory=True)
    (tmp_path / "empty2").mkdir()
    for taken in ("hidden", "link"):  # a hidden file is something; a link's folder is elsewhere
        with pytest.raises(UserError, match="output folder exists"):
            check_output_folder(tmp_path / taken, overwrite=False)
        with pytest.raises(UserError, match="output folder exists"):
            build_folder(tmp_path / taken, lambda folder: None, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "empty2", "hidden", "link"]
    (tmp_path / "file").write_text("x")  # put there while the build ran: refused as it was, not a crash
    with pytest.raises(UserError, match="output folder exists"):
        build_folder(tmp_path / "file", lambda folder: None, overwrite=False)
    assert (tmp_path / "file").read_text() == "x"


def test_an_output_folder_that_cannot_be_listed_is_refused_as_existing(tmp_path: Path, monkeypatch) -> None:
    # a user's folder they may not read (root reads every folder, so the listing is made to fail): the
    # emptiness test raised PermissionError where "output folder exists" was said before
    (tmp_path / "locked").mkdir()

    def refused(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refused)
    with pytest.raises(UserError, match="output folder exists"):
        check_output_folder(tmp_path / "locked", overwrite=False)


def test_a_failed_build_leaves_the_old_folder_and_nothing_hidden(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_folder(out, lambda folder: (folder / "a.txt").write_text("old"), overwrite=False)

    def fail(folder: Path) -> None:
        (folder / "a.txt").write_text("half")
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError, match="^model crashed$"):  # the writer's own error, as it was
        build_folder(out, fail, overwrite=True)
    assert (out / "a.txt").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    build_folder(out, lambda folder: (folder / "b.txt").write_text("new"), overwrite=True)
    assert [p.name for p in out.iterdir()] == ["b.txt"] and sorted(p.name for p in tmp_path.iterdir()) == [
        "out"
    ]
    with pytest.raises(UserError, match="output folder exists"):
        build_folder(out, lambda folder: None, overwrite=False)


def test_a_stop_once_the_new_folder_is_in_place_says_no_earlier_run_is_there(tmp_path, monkeypatch, capsys):
    # a Ctrl-C while the replaced copy was deleted (a large data set's, seconds): the finished folder was
    # in place, and the line said 'nothing of this run was kept there; what it holds is an earlier run's'
    out = tmp_path / "out"
    build_folder(out, lambda folder: (folder / "a.txt").write_text("old"), overwrite=False)

    def stopped(path, *args, **kwargs) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", stopped)  # the old copy's removal, the last step
    with pytest.raises(KeyboardInterrupt), earlier_run_note(out, until="the data set is done"):
        build_folder(out, lambda folder: (folder / "b.txt").write_text("new"), overwrite=True)
    assert [p.name for p in out.iterdir()] == ["b.txt"] and capsys.readouterr().err == ""
    monkeypatch.undo()
    with pytest.raises(KeyboardInterrupt), earlier_run_note(out, until="the data set is done"):
        raise KeyboardInterrupt  # before the new folder is in place: the earlier run's, said so
    assert capsys.readouterr().err.startswith(f"stopped: {out} is replaced only once the data set is done")


def test_an_output_folder_inside_or_around_the_input_tree_is_refused(tmp_path):
    tree = tmp_path / "data"
    (tree / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tree)
    for out in (tree, tree / "sub" / "run", tmp_path / "link" / "run", tree / "sub" / ".." / "x"):
        with pytest.raises(UserError, match=r"is inside the input tree .*data; choose another --out"):
            check_outside_tree(out, tree)
    with pytest.raises(UserError, match=r"output folder .* contains the input tree"):
        check_outside_tree(tmp_path, tree)
    check_outside_tree(tmp_path / "runs", tree)  # beside it: fine


def test_an_output_inside_a_data_set_is_refused_one_holding_it_is_not(tmp_path):
    data = tmp_path / "ds"
    data.mkdir()
    with pytest.raises(UserError, match=f"inside the input tree {data}; choose another project=$"):
        check_not_inside(data / "runs", data, flag="project=")
    with pytest.raises(UserError, match="inside the input tree"):
        check_not_inside(tmp_path / "x" / ".." / "ds", data)
    check_not_inside(tmp_path, data)  # a project folder holding the data set: runs go beside it
    check_not_inside(tmp_path / "runs", data)


def test_an_old_copy_a_killed_run_moved_aside_is_put_back_not_removed(tmp_path, capsys):
    out = tmp_path / "run"
    old = tmp_path / ".run.old-4242"  # a writer long gone; `out` itself is missing
    old.mkdir()
    (old / "metrics.json").write_text("{}")
    build_folder(out, lambda folder: (folder / "metrics.json").write_text('{"new": 1}'), overwrite=True)
    assert (out / "metrics.json").read_text() == '{"new": 1}'
    assert "restored" in capsys.readouterr().err
    assert not old.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_old_copy_is_left_alone_while_out_exists(tmp_path):
    out, old = tmp_path / "run", tmp_path / ".run.old-4242"
    out.mkdir()
    old.mkdir()
    assert restore_old_copy(out) is None and old.exists()


def test_a_put_back_old_copy_is_an_existing_output(tmp_path):
    out, old = tmp_path / "run", tmp_path / ".run.old-4242"  # a killed run's, `out` missing
    old.mkdir()
    (old / "metrics.json").write_text("{}")
    with pytest.raises(UserError, match="output folder exists"):
        check_output_folder(out, overwrite=False)
    assert out.is_dir() and not old.exists()


def test_the_newest_old_copy_is_put_back_and_a_live_runs_is_left(tmp_path):
    out = tmp_path / "run"
    for name, when in ((".run.old-4242", 1_000), (".run.old-4243", 2_000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "which.txt").write_text(name)
        os.utime(tmp_path / name, (when, when))
    live = temporary_path(out.with_name("run.old"))  # this process's own: still being written
    live.mkdir()
    os.utime(live, (3_000, 3_000))
    assert restore_old_copy(out) == out
    assert (out / "which.txt").read_text() == ".run.old-4243" and live.exists()


def test_build_folder_returns_what_its_writer_returned(tmp_path):
    assert build_folder(tmp_path / "run", lambda folder: 7, overwrite=False) == 7


@pytest.mark.parametrize("replacing", [True, False], ids=["over-an-old-folder", "fresh"])
def test_a_failed_final_rename_keeps_the_old_folder_and_removes_the_build(tmp_path, monkeypatch, replacing):
    out = tmp_path / "out"
    if replacing:
        build_folder(out, lambda folder: (folder / "a.txt").write_text("old"), overwrite=False)
    rename = os.rename

    def refuse_the_build(source, target, *args, **kwargs):  # a full disk, a lost network share
        if ".partial-" in Path(source).name:
            raise OSError(errno.EIO, "Input/output error", str(source))
        return rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "rename", refuse_the_build)
    with pytest.raises(UserError, match=rf"^cannot write {out}: Input/output error: .*\.out\.partial-"):
        build_folder(out, lambda folder: (folder / "a.txt").write_text("new"), overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if replacing else [])  # nothing hidden
    if replacing:
        assert [p.name for p in out.iterdir()] == ["a.txt"] and (out / "a.txt").read_text() == "old"


def test_an_existing_folder_is_taken_as_it_is_when_overwrite_is_unset(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    assert check_output_folder(tmp_path / "cache", flag="--cache-dir") == tmp_path / "cache"


@pytest.mark.parametrize(("count", "what"), [(1, "1 unfinished build"), (2, "2 unfinished builds")])
def test_removed_leftovers_are_counted_in_one_note(tmp_path: Path, capsys, count, what) -> None:
    for i in range(count):
        (tmp_path / f".out.partial-{i}").mkdir()  # no writer token: an older version's, stale
    assert len(remove_leftovers(tmp_path / "out")) == count
    assert capsys.readouterr().err == f"note: removed {what} of {tmp_path / 'out'} left by a killed run\n"


def test_overwrite_replaces_only_a_folder_of_the_names_a_command_writes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "eval-val").mkdir(parents=True)
    (out / "run.json").write_text("{}")
    holds = ("run.json", "eval-*")
    assert check_output_folder(out, overwrite=True, holds=holds) == out
    assert check_output_folder(out, overwrite=True) == out  # no names given: any folder
    for name in ("notes.txt", "b", "c", "d", "Run.json"):
        (out / name).write_text("mine")
    with pytest.raises(
        UserError,
        match=r"--out .*out holds Run.json, b, c and 2 more, which this command does not write: --overwrite "
        "replaces the folder whole",
    ):
        check_output_folder(out, overwrite=True, holds=holds)
    with pytest.raises(UserError, match=r"does not write: each re-run replaces the folder whole"):
        check_output_folder(out, overwrite=True, holds=holds, replaced_by="each re-run")
    with pytest.raises(UserError, match="output folder exists"):  # without overwrite: refused as before
        check_output_folder(out, overwrite=False, holds=holds)
    assert check_output_folder(out, holds=holds) == out  # written into, not replaced: no check
    with pytest.raises(UserError, match=r"--cache-dir .* holds b,"):
        check_replaceable(out, ["*.txt", "eval-*", "run.json", "Run.json", "c", "d"], flag="--cache-dir")


def test_a_file_browsers_own_files_do_not_block_a_replacement(tmp_path: Path) -> None:
    # macOS Finder leaves .DS_Store in a folder it showed: every later --overwrite was refused for it
    out = tmp_path / "out"
    out.mkdir()
    for name in (".DS_Store", "Thumbs.db", "desktop.ini", "run.json"):
        (out / name).write_text("x")
    assert check_output_folder(out, overwrite=True, holds=["run.json"]) == out
    (out / ".DS_Store.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds .DS_Store.txt, which"):
        check_replaceable(out, ["run.json"])


def test_a_marker_tells_a_runs_folder_from_one_of_the_same_names_made_otherwise(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)  # a data set made by hand: the names of a run's, not a run's
    (out / "data.yaml").write_text("x")
    (out / ".DS_Store").write_text("x")
    holds = ["images", "data.yaml", "splits.json"]
    assert check_output_folder(out, overwrite=True, holds=holds) == out  # names alone: replaced
    with pytest.raises(
        UserError,
        match=r"^--out .*out holds data.yaml, images but no splits.json, which every run of this command "
        r"writes: it was made otherwise \(by hand, another tool\), and --overwrite replaces the folder whole",
    ):
        check_output_folder(out, overwrite=True, holds=holds, marker="splits.json")
    (out / "splits.json").write_text("{}")
    assert check_output_folder(out, overwrite=True, holds=holds, marker="splits.json") == out
    (out / "splits.json").unlink()
    assert check_output_folder(out, holds=holds, marker="splits.json") == out  # written into: no check
    for path in (out / "images", out / "data.yaml"):
        path.rmdir() if path.is_dir() else path.unlink()
    assert check_output_folder(out, overwrite=True, holds=holds, marker="splits.json") == out  # browser's


def test_a_failure_to_write_elsewhere_names_that_place_not_out(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "ab"

    def write(folder: Path) -> None:  # an embedding cache on a read-only disk, say
        raise OSError(30, "Read-only file system", str(cache / "photo.pt.tmp"))

    with pytest.raises(UserError, match=rf"^cannot write {cache}: Read-only file system: "):
        build_folder(tmp_path / "out", write, overwrite=False)

    def fail_inside(folder: Path) -> None:
        raise OSError(28, "No space left on device", str(folder / "masks" / "a.png"))

    with pytest.raises(UserError, match=rf"^cannot write {tmp_path / 'out'}: No space left"):
        build_folder(tmp_path / "out", fail_inside, overwrite=False)


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_a_file_of_the_build_that_fails_is_named_by_its_place_in_out(tmp_path, monkeypatch, relative):
    # the line named the hidden build, gone by the time it is read: 'cannot write <run>/eval-mvtec: No space
    # left on device: <run>/.eval-mvtec.partial-0bbfd16a-2659-e4fa791d/metrics.json'
    monkeypatch.chdir(tmp_path)
    out = Path("run/eval") if relative else tmp_path / "run" / "eval"

    def full(folder: Path) -> None:  # as atomic_write names a full disk's error
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "maps" / "a.png"))

    with pytest.raises(UserError) as raised:
        build_folder(out, full, overwrite=False)
    assert str(raised.value) == f"cannot write {out}: No space left on device: {out / 'maps' / 'a.png'}"

    def copy_refused(folder: Path) -> None:  # a copy names its source (an input) and its target
        raise OSError(errno.ENOSPC, "No space left on device", "/data/a.png", None, str(folder / "a.png"))

    with pytest.raises(UserError) as raised:
        build_folder(out, copy_refused, overwrite=False)
    assert str(raised.value) == (
        f"cannot write {out}: No space left on device: {out / 'a.png'} (from /data/a.png)"
    )
    assert list(tmp_path.iterdir()) == []  # run/, made by the build, goes too


def test_an_input_file_given_as_its_run_folder_names_the_file_inside(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    with pytest.raises(
        UserError, match=f"^weights {run} is a folder, not a file: pass the weights file itself$"
    ):
        check_input_file(run, "weights", inside=("weights/best.pt",))
    (run / "weights" / "best.pt").write_bytes(b"w")
    with pytest.raises(UserError, match=f"is a folder, not a file: pass {run / 'weights' / 'best.pt'}$"):
        check_input_file(run, "weights", inside=("best.pt", "weights/best.pt"))
    with pytest.raises(UserError, match=f"^SAM checkpoint not found: {tmp_path / 'nope.pt'}$"):
        check_input_file(tmp_path / "nope.pt", "SAM checkpoint")
    assert check_input_file(run / "weights" / "best.pt", "weights") == run / "weights" / "best.pt"


def test_a_run_folder_names_the_first_of_its_files_that_is_a_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "weights" / "best.pt").mkdir(parents=True)  # a folder of that name is not the file
    (run / "best.pt").write_bytes(b"w")
    with pytest.raises(UserError, match=f"not a file: pass {run / 'best.pt'}$"):
        check_input_file(run, "weights", inside=("weights/best.pt", "best.pt"))
    (run / "weights" / "best.pt").rmdir()
    (run / "weights" / "best.pt").write_bytes(b"w")  # both there: the first of inside is named
    with pytest.raises(UserError, match=f"not a file: pass {run / 'weights' / 'best.pt'}$"):
        check_input_file(run, "weights", inside=("weights/best.pt", "best.pt"))


def test_three_other_names_are_all_named_and_nothing_more(tmp_path: Path) -> None:
    for name in ("a", "b", "c", "run.json"):
        (tmp_path / name).write_text("")
    with pytest.raises(UserError, match=r"holds a, b, c, which this command does not write"):
        check_replaceable(tmp_path, ["run.json"])


def test_a_failure_to_make_outs_parent_names_out(tmp_path: Path) -> None:
    out = tmp_path / "parent" / "out"

    def write(folder: Path) -> None:  # the error names a folder above out, not some other place
        raise OSError(13, "Permission denied", str(tmp_path / "parent"))

    with pytest.raises(UserError, match=rf"^cannot write {out}: Permission denied"):
        build_folder(out, write, overwrite=False)


def test_a_folder_of_other_names_is_refused_naming_the_callers_flag(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"^--cache-dir .* holds notes.txt"):
        check_output_folder(tmp_path, flag="--cache-dir", overwrite=True, holds=["*.pt"])


def test_a_folder_to_replace_in_a_read_only_folder_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it is rebuilt beside itself and renamed into place: anomaly.evaluate on a run in a read-only
    # folder scored every image, then said 'cannot write .../eval-mvtec: Read-only file system'
    import common.folders

    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "metrics.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    writable = os.access
    monkeypatch.setattr(
        common.folders.os, "access", lambda path, mode: Path(path) != tmp_path and writable(path, mode)
    )
    for folder, overwrite in ((tmp_path / "report", True), (tmp_path / "empty", False)):
        with pytest.raises(UserError, match=f"^cannot replace {folder}: {tmp_path} is not writable$"):
            check_output_folder(folder, overwrite=overwrite)
    # written into as it is (an embedding cache): its parent is not written
    assert check_output_folder(tmp_path / "report") == tmp_path / "report"


@pytest.mark.parametrize(
    ("name", "spaces"),
    [
        ("傷", False),  # any script's letters: '傷' was told "use letters, digits"
        ("défaut_2", False),
        ("キズ-大.v2", False),
        ("big scratch", True),
        ("con_scratch", False),  # a device name only as the whole name, or before a '.'
        ("console", False),
        ("com10", False),
        ("a" * 100, False),
    ],
)
def test_a_folder_name_takes_letters_and_digits_of_any_script(name, spaces):
    assert check_folder_name(name, "class", spaces=spaces) == name


@pytest.mark.parametrize("name", ["scratch.", "con", "Aux.scratch", "傷.."])
def test_a_name_only_windows_cannot_hold_is_taken_when_windows_is_off(name):
    # an annotation session saved before the rule refused such names still resumes
    assert check_folder_name(name, "class", windows=False) == name
    assert windows_problem(name).startswith("Windows ")


@pytest.mark.parametrize("name", ["a/b", "..", ".hidden", " scratch", "scratch ", ""])
def test_what_would_break_a_path_is_refused_with_windows_off_too(name):
    with pytest.raises(UserError, match="use letters and digits"):
        check_folder_name(name, "category", windows=False)


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("scratch", "scratch"),  # a safe name stays as it is
        ("big scratch", "big scratch"),
        ("傷", "傷"),
        ("crack/scratch", "crack_scratch"),
        ("..", "__"),
        ("scratch. ", "scratch__"),
        ("nul", "nul_"),
        ("COM1.x", "COM1_.x"),
        ('a<b>c:"d"|e?*', "a_b_c__d__e__"),
        ("a\tb", "a_b"),
        ("", "_"),
        ("傷" * 90, "傷" * 80),  # 270 bytes: cut to 240
    ],
)
def test_any_name_becomes_a_folder_name_every_os_holds(name, safe):
    assert windows_safe_name(name) == safe
    assert windows_problem(safe) is None


@pytest.mark.parametrize(
    ("name", "spaces", "why"),
    [
        (
            "scratch.",
            False,
            "Windows drops a '.' or space at the end of a folder name, so it would be the "
            "folder 'scratch' there; remove it",
        ),
        (
            "scratch ",
            True,
            "Windows drops a '.' or space at the end of a folder name, so it would be the "
            "folder 'scratch' there",
        ),
        ("傷..", False, "Windows drops a '.' or space at the end"),
        ("con", False, "Windows keeps the name 'con' for a device"),
        ("NUL", False, "Windows keeps the name 'nul' for a device"),
        ("Aux.scratch", False, "Windows keeps the name 'aux' for a device"),
        ("com1", False, "Windows keeps the name 'com1' for a device"),
        ("lpt9 .x", True, "Windows keeps the name 'lpt9' for a device"),
        (
            "prn",
            False,
            "Windows keeps the name 'prn' for a device (con, prn, aux, nul, com1-com9, lpt1-lpt9, with any "
            "extension), so no folder there can have it; choose another",
        ),
        # what would break a path stays refused, whatever the script
        ("a/b", False, "use letters and digits"),
        ("a\\b", False, "use letters and digits"),
        ("..", False, "use letters and digits"),
        (".hidden", False, "use letters and digits"),
        ("a\x00b", False, "use letters and digits"),
        ("a\nb", True, "use letters and digits"),
        ("a\u200bb", False, "use letters and digits"),  # a zero-width space
        ("a:b", False, "use letters and digits"),  # Windows refuses ':' '*' '?' '<' '>' '|' '"'
        ("big scratch", False, "use letters and digits"),  # no spaces in a category
        (" scratch", True, "use letters and digits"),
        ("", False, "use letters and digits"),
        ("a" * 101, False, "use letters and digits (any script), '_', '-', '.' (up to 100, starting with"),
        ("傷" * 90, False, "270 bytes in UTF-8, over the 255 a folder name takes"),
    ],
)
def test_a_folder_name_no_os_can_hold_is_refused_saying_why(name, spaces, why):
    with pytest.raises(UserError, match=f"^bad class name {re.escape(repr(name))}: {re.escape(why)}"):
        check_folder_name(name, "class", spaces=spaces)


@pytest.mark.parametrize("inside", ["", "sub"], ids=["is the working folder", "holds it"])
@pytest.mark.parametrize("spelled", ["relative", "absolute"])
def test_replacing_the_working_folder_is_refused_before_any_work(tmp_path, monkeypatch, inside, spelled):
    # `cd out && cmd --out . --overwrite`: out was renamed aside and deleted, the shell left in it (`ls`
    # showed nothing); an empty working folder was renamed over the same way, without --overwrite
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    monkeypatch.chdir(out / inside)
    given = Path(os.path.relpath(out)) if spelled == "relative" else out
    where = "is the working folder" if not inside else f"holds the working folder {out / inside}"
    message = f"--out {re.escape(str(given))} {where}: .* run the command from outside it"
    with pytest.raises(UserError, match=message):
        check_output_folder(given, overwrite=True)
    with pytest.raises(UserError, match="output folder .* run the command from outside it"):
        build_folder(given, lambda folder: pytest.fail("built"), overwrite=True)
    if not inside:  # empty, so taken as absent: still renamed over
        (out / "sub").rmdir()
        with pytest.raises(UserError, match=message):
            check_output_folder(given, overwrite=False)
    assert Path.cwd() == out / inside and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_removing_the_working_folder_is_refused_saying_it_is_removed(tmp_path, monkeypatch) -> None:
    # a folder removed, not replaced, says so: detection.train's stale tiles/ (test_train.py) had its own copy
    (tmp_path / "tiles" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "tiles", target_is_directory=True)
    monkeypatch.chdir(tmp_path / "tiles")
    with pytest.raises(UserError) as error:
        check_not_working_folder(tmp_path / "tiles", removed="an earlier run's")
    assert str(error.value) == (
        f"{tmp_path / 'tiles'}, an earlier run's, is the working folder: removing it would leave your shell "
        "in a deleted folder; run the command from outside it"
    )
    check_not_working_folder(tmp_path / "link", removed="an earlier run's")  # the link goes, not the folder
    check_not_working_folder(tmp_path / "tiles" / "sub", removed="an earlier run's")  # inside it: stays


def test_a_folder_beside_the_working_folder_or_a_link_to_it_is_replaced(tmp_path, monkeypatch) -> None:
    # the link is renamed, not the folder it names: the working folder stays where it is
    (tmp_path / "here").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "here", target_is_directory=True)
    monkeypatch.chdir(tmp_path / "here")
    for out in (Path("../beside"), Path("../link")):
        build_folder(out, lambda folder: (folder / "a.txt").write_text("new"), overwrite=True)
        assert (tmp_path / out.name / "a.txt").read_text() == "new"
    assert Path.cwd() == tmp_path / "here" and not (tmp_path / "here" / "a.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beside", "here", "link"]
    # writing into the working folder (overwrite unset: nothing is renamed) is no replacement
    assert check_output_folder(Path("."), flag="--cache-dir") == Path(".")
    (tmp_path / "gone").mkdir()
    monkeypatch.chdir(tmp_path / "gone")
    (tmp_path / "gone").rmdir()  # a working folder deleted from another shell is inside no folder
    assert check_output_folder(tmp_path / "beside", overwrite=True) == tmp_path / "beside"
    build_folder(tmp_path / "beside", lambda folder: (folder / "b.txt").write_text("new"), overwrite=True)
    assert [p.name for p in (tmp_path / "beside").iterdir()] == ["b.txt"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError], ids=["ctrl-c", "failed-write"])
def test_a_stopped_build_removes_the_folders_it_made_above_out_and_no_other(tmp_path, stop):
    # --out new/deeper/out stopped at once left new/deeper behind, empty, made by the run
    (tmp_path / "there").mkdir()
    (tmp_path / "there" / "kept.txt").write_text("mine")
    out = tmp_path / "there" / "new" / "deeper" / "out"

    def stopped(folder: Path) -> None:
        (folder / "a.txt").write_text("half")
        raise stop

    with pytest.raises(stop):
        build_folder(out, stopped, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"]
    assert sorted(p.name for p in (tmp_path / "there").iterdir()) == ["kept.txt"]


def test_a_folder_made_above_out_that_something_else_wrote_into_is_kept(tmp_path):
    out = tmp_path / "new" / "deeper" / "out"

    def stopped(folder: Path) -> None:
        (tmp_path / "new" / "other.txt").write_text("another program's")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_folder(out, stopped, overwrite=False)
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["other.txt"]


def test_a_build_whose_folders_cannot_all_be_made_removes_those_it_made(tmp_path, monkeypatch):
    (tmp_path / "old").mkdir()
    out = tmp_path / "old" / "new" / "locked" / "out"
    mkdir = Path.mkdir

    def refused(self: Path, *args, **kwargs) -> None:
        if self.name == "locked" and self.parent.is_dir():  # its folder, made by the run, may not be written
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refused)
    with pytest.raises(UserError, match="cannot write .*Permission denied"):
        build_folder(out, lambda folder: None, overwrite=False)
    assert [p.name for p in tmp_path.iterdir()] == ["old"] and not any((tmp_path / "old").iterdir())


def test_a_finished_build_keeps_the_folders_it_made_above_out(tmp_path):
    out = tmp_path / "new" / "deeper" / "out"
    build_folder(out, lambda folder: (folder / "a.txt").write_text("done"), overwrite=False)
    assert (out / "a.txt").read_text() == "done"


def test_a_stopped_build_of_a_relative_out_through_dot_dot_removes_what_it_made(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "there").mkdir()

    def stopped(folder: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_folder(Path("new1/../there/new2/out"), stopped, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"] and not any((tmp_path / "there").iterdir())
