"""Atomic writes, stale temporaries of killed runs, hashing, torch files: the shared IO."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import common.io
from common.cli import exit_code
from common.errors import UnreadableFileError, UserError
from common.io import (
    FOREIGN_STALE_S,
    StreamedFile,
    atomic_write,
    cache_root,
    copied_note,
    expand_user,
    file_exists,
    finite_json,
    home_dir,
    homeless_config_dir,
    is_stale,
    json_float,
    json_text,
    link_loop,
    link_loop_text,
    load_torch,
    not_found_text,
    partial_dir,
    pid_alive,
    read_coco_instances,
    read_json_object,
    recorded_path,
    remove_stale,
    save_torch,
    sha256_file,
    temporary_path,
    torch_file_kind,
)
from tests.conftest import without_home


def dead_pid() -> int:
    """The id of a process that has exited (a child we waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_write_takes_bytes_text_or_a_writer(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.bin"
    atomic_write(target, b"one")
    assert target.read_bytes() == b"one"
    atomic_write(target, "two")
    assert target.read_text() == "two"
    atomic_write(target, lambda file: file.write(b"three"))
    assert target.read_bytes() == b"three"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write(target, "old")

    def fail(file) -> None:
        file.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="^disk full$"):  # the writer's own error, as it was
        atomic_write(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664)])
def test_written_files_follow_the_umask_like_open(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "shared.pt", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.pt").stat().st_mode & 0o777 == mode  # readable by the team, not 0600


def test_an_interrupted_write_leaves_no_temporary(tmp_path: Path) -> None:
    def interrupted(file) -> None:
        file.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "f.txt", interrupted)
    assert list(tmp_path.iterdir()) == []


class FullDisk:
    """A file on a full disk: every write or flush of bytes fails with ENOSPC, as the kernel's does."""

    def __init__(self, file) -> None:
        self.file = file

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        self.file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def __getattr__(self, name: str):
        return getattr(self.file, name)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        common.io, "open", lambda *args, **kwargs: FullDisk(open(*args, **kwargs)), raising=False
    )


@pytest.mark.parametrize("data", [b"bytes", "text", {"a torch": "payload"}], ids=["bytes", "text", "torch"])
def test_a_full_disk_is_one_line_naming_the_file_and_keeps_the_old_one(tmp_path, full_disk, capsys, data):
    # a command stopped with a traceback: torch.save's "RuntimeError: [enforce fail at inline_container.cc",
    # or an OSError naming no file, which exit_code takes for a bug
    target = tmp_path / "f.pt"
    target.write_bytes(b"old")
    torch_file = isinstance(data, dict)
    assert exit_code(lambda: save_torch(data, target) if torch_file else atomic_write(target, data)) == 1
    assert capsys.readouterr().err == f"error: No space left on device: {target}\n"
    assert sorted(tmp_path.iterdir()) == [target] and target.read_bytes() == b"old"


class PendingOnFullDisk(FullDisk):
    """A file on a full disk whose writes are buffered: the bytes are refused as it is closed."""

    def write(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        if not self.file.closed:  # closed all the same, and a second close does nothing, as a real file's
            self.file.close()
            raise OSError(errno.ENOSPC, "No space left on device")

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.mark.parametrize("stop", [KeyboardInterrupt, UserError], ids=["ctrl-c", "user-error"])
def test_the_writers_error_is_not_replaced_by_the_close_on_a_full_disk(tmp_path, monkeypatch, stop):
    # the buffered bytes refused as 'with' closed the file: a bare OSError(28) took the writer's error's place
    monkeypatch.setattr(common.io, "open", lambda *a, **k: PendingOnFullDisk(open(*a, **k)), raising=False)

    def writer(file) -> None:
        file.write(b"half")
        raise stop("bad photo")

    with pytest.raises(stop, match="bad photo"):
        atomic_write(tmp_path / "f.bin", writer)
    assert list(tmp_path.iterdir()) == []


def test_text_is_written_as_utf8(tmp_path: Path) -> None:
    assert atomic_write(tmp_path / "f.txt", "défaut ✓").read_bytes() == "défaut ✓".encode()


def test_stale_temporaries_are_judged_by_their_writer(tmp_path: Path) -> None:
    alive = temporary_path(tmp_path / "a.pt")  # this process: in progress
    alive.write_bytes(b"")
    dead = tmp_path / alive.name.replace(f"-{os.getpid()}-", f"-{dead_pid()}-")
    dead.write_bytes(b"")
    legacy = tmp_path / ".b.pt.abc123.tmp"  # written by an older version, no writer recorded
    legacy.write_bytes(b"")
    assert not is_stale(alive) and is_stale(dead) and is_stale(legacy)
    assert remove_stale(tmp_path, ".*.tmp") == sorted([dead, legacy])
    assert alive.exists() and not dead.exists()


def foreign_temporary(folder: Path, pid: int) -> Path:
    """A temporary named as another machine's process ``pid`` would name it (a shared network cache)."""
    ours = temporary_path(folder / "a.pt").name  # ".a.pt.<host>-<pid>-<random>.tmp"
    host = ours.split(".")[-2].split("-")[0]
    return folder / f".a.pt.{'ffffffff' if host != 'ffffffff' else '00000000'}-{pid}-0123abcd.tmp"


@pytest.mark.parametrize(
    ("age_s", "stale"),
    [(FOREIGN_STALE_S + 60, True), (FOREIGN_STALE_S, False), (3600.0, False)],
    ids=["over-a-day", "exactly-a-day", "an-hour"],
)
def test_a_temporary_from_another_host_is_judged_by_its_age_not_its_pid(tmp_path, age_s, stale) -> None:
    # Its pid means nothing here: whether a process of ours (this one) or a dead one, only age counts.
    for pid in (os.getpid(), dead_pid()):
        path = foreign_temporary(tmp_path, pid)
        path.write_bytes(b"")
        os.utime(path, (1_000_000, 1_000_000))  # a whole second: `now - mtime` is exact
        assert is_stale(path, now=1_000_000 + age_s) is stale, f"pid {pid}"


def test_someone_elses_process_is_alive(tmp_path, monkeypatch) -> None:
    def kill(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")  # a pid of another user's process

    monkeypatch.setattr(os, "kill", kill)
    assert pid_alive(1)
    theirs = temporary_path(tmp_path / "a.pt")
    theirs = theirs.with_name(theirs.name.replace(f"-{os.getpid()}-", "-1-"))  # this host, pid 1
    theirs.write_bytes(b"")
    assert not is_stale(theirs) and remove_stale(tmp_path, ".*.tmp") == [] and theirs.exists()


def test_partial_dirs_of_dead_runs_are_removed(tmp_path: Path) -> None:
    mine = partial_dir(tmp_path / "data")
    (mine / "x").write_text("x")
    dead = tmp_path / mine.name.replace(f"-{os.getpid()}-", f"-{dead_pid()}-")
    dead.mkdir()
    (dead / "labels").mkdir()
    assert remove_stale(tmp_path, ".data.partial-*") == [dead]
    assert mine.is_dir() and not dead.exists()
    assert remove_stale(tmp_path / "missing", ".*") == []


def test_sha256_file_streams_and_names_a_missing_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # 2.3 MB: more than two 1 MiB chunks
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
    with pytest.raises(UserError, match=r"cannot read image .*missing\.png"):
        sha256_file(tmp_path / "missing.png", what="image")


def counted_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files ``open`` is called on from now on, in order (the list fills as they are opened)."""
    import builtins

    reads: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):  # noqa: ANN001, ANN202
        reads.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    return reads


def test_sha256_file_reads_a_settled_file_once_and_a_changed_one_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reads = counted_opens(monkeypatch)
    blob, old = tmp_path / "blob", time.time() - 3600
    blob.write_bytes(b"a" * 1000)
    os.utime(blob, (old, old))
    later = time.time_ns() + 10 * 10**9  # its ctime (changed just now) settled too
    with monkeypatch.context() as settled:
        settled.setattr(time, "time_ns", lambda: later)
        first = sha256_file(blob)
        assert sha256_file(blob) == first == hashlib.sha256(b"a" * 1000).hexdigest()
    assert reads.count(str(blob)) == 1  # the second call read nothing
    blob.write_bytes(b"b" * 1000)  # same size, same inode, another modification time
    os.utime(blob, (old + 1, old + 1))
    assert sha256_file(blob) == hashlib.sha256(b"b" * 1000).hexdigest()
    fresh = tmp_path / "fresh"  # modified just now: a same-size rewrite within one clock tick
    fresh.write_bytes(b"c" * 10)
    sha256_file(fresh)
    fresh.write_bytes(b"d" * 10)
    assert sha256_file(fresh) == hashlib.sha256(b"d" * 10).hexdigest()
    blob.unlink()
    with pytest.raises(UserError, match=r"cannot read image .*blob"):  # gone since: not remembered
        sha256_file(blob, what="image")


def test_sha256_file_reads_again_a_file_replaced_with_its_size_and_time(tmp_path: Path) -> None:
    old = time.time_ns() - 3600 * 10**9
    blob = tmp_path / "blob"
    blob.write_bytes(b"a" * 100)
    os.utime(blob, ns=(old, old))
    assert sha256_file(blob) == hashlib.sha256(b"a" * 100).hexdigest()
    other = tmp_path / "other"  # renamed over it, times kept (cp -p, rsync -t): another inode
    other.write_bytes(b"b" * 100)
    os.utime(other, ns=(old, old))
    os.replace(other, blob)
    assert sha256_file(blob) == hashlib.sha256(b"b" * 100).hexdigest()
    blob.write_bytes(b"c" * 50)  # same inode and time, another size
    os.utime(blob, ns=(old, old))
    assert sha256_file(blob) == hashlib.sha256(b"c" * 50).hexdigest()


def test_sha256_file_reads_again_a_file_copied_in_place_with_its_size_and_time(tmp_path: Path) -> None:
    # cp -p of another photo of the same size onto it, both with one time (unpacked from one archive):
    # same inode, size and modification time, so the first photo's digest was given for the second
    old = time.time_ns() - 3600 * 10**9
    blob = tmp_path / "blob"
    blob.write_bytes(b"a" * 100)
    os.utime(blob, ns=(old, old))
    assert sha256_file(blob) == hashlib.sha256(b"a" * 100).hexdigest()
    time.sleep(0.05)  # past a tick of the kernel's clock for change times (a few ms)
    blob.write_bytes(b"b" * 100)
    os.utime(blob, ns=(old, old))
    assert sha256_file(blob) == hashlib.sha256(b"b" * 100).hexdigest()


def test_sha256_file_remembers_the_digest_under_the_opened_files_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import builtins

    old = time.time_ns() - 3600 * 10**9
    blob, kept, other = tmp_path / "blob", tmp_path / "kept", tmp_path / "other"
    blob.write_bytes(b"a" * 100)
    os.utime(blob, ns=(old, old))
    os.link(blob, kept)  # the first file lives on under another name: its identity stays
    other.write_bytes(b"b" * 100)
    os.utime(other, ns=(old, old))
    real_open = builtins.open

    def open_after_a_swap(file, *args, **kwargs):  # noqa: ANN001, ANN202
        if str(file) == str(blob) and other.exists():
            os.replace(other, blob)  # renamed over between the look at the path and the open
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_after_a_swap)
    assert sha256_file(blob) == hashlib.sha256(b"b" * 100).hexdigest()  # the bytes it read
    assert sha256_file(kept) == hashlib.sha256(b"a" * 100).hexdigest()  # not the swapped file's


def test_sha256_file_does_not_remember_a_file_modified_just_now(tmp_path: Path) -> None:
    fresh, now = tmp_path / "fresh", time.time_ns()
    fresh.write_bytes(b"c" * 10)
    os.utime(fresh, ns=(now, now))
    sha256_file(fresh)
    fresh.write_bytes(b"d" * 10)  # rewritten within one tick of the file system's clock: same identity
    os.utime(fresh, ns=(now, now))
    assert sha256_file(fresh) == hashlib.sha256(b"d" * 10).hexdigest()


def test_sha256_file_does_not_remember_a_file_changed_just_now_with_an_old_mtime(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # cp -p sets the mtime back but not the ctime (part of the identity, ticking coarsely): remembered
    # at once by its old mtime, a second same-size cp -p within one ctime tick kept the first's digest
    reads = counted_opens(monkeypatch)
    copied = tmp_path / "copied"
    copied.write_bytes(b"a" * 10)
    old = time.time_ns() - 3600 * 10**9
    os.utime(copied, ns=(old, old))
    changed = copied.stat().st_ctime_ns
    monkeypatch.setattr(time, "time_ns", lambda: changed + 10**9)  # changed a second ago
    assert sha256_file(copied) == sha256_file(copied) == hashlib.sha256(b"a" * 10).hexdigest()
    assert reads.count(str(copied)) == 2  # not remembered: read each time
    monkeypatch.setattr(time, "time_ns", lambda: changed + 5 * 10**9)  # settled: remembered
    assert sha256_file(copied) == sha256_file(copied)
    assert reads.count(str(copied)) == 3


def test_sha256_file_tells_apart_times_within_one_second(tmp_path: Path) -> None:
    # another version copied in place with its own time kept (rsync --inplace -t), a microsecond
    # later than the first: only the time in ns tells them apart
    old = time.time_ns() - 3600 * 10**9
    blob = tmp_path / "blob"
    blob.write_bytes(b"a" * 100)
    os.utime(blob, ns=(old, old))
    assert sha256_file(blob) == hashlib.sha256(b"a" * 100).hexdigest()
    blob.write_bytes(b"b" * 100)
    os.utime(blob, ns=(old + 1000, old + 1000))
    assert sha256_file(blob) == hashlib.sha256(b"b" * 100).hexdigest()


def test_sha256_file_remembers_a_file_once_two_seconds_old(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reads = counted_opens(monkeypatch)
    now = time.time_ns()
    recent = tmp_path / "recent"  # one second old: within the 2 s, not remembered
    recent.write_bytes(b"c" * 10)
    os.utime(recent, ns=(now - 10**9, now - 10**9))
    sha256_file(recent)
    recent.write_bytes(b"d" * 10)
    os.utime(recent, ns=(now - 10**9, now - 10**9))
    assert sha256_file(recent) == hashlib.sha256(b"d" * 10).hexdigest()
    settled = tmp_path / "settled"  # five seconds old: remembered, read once
    settled.write_bytes(b"e" * 10)
    os.utime(settled, ns=(now - 5 * 10**9, now - 5 * 10**9))
    later = settled.stat().st_ctime_ns + 5 * 10**9  # and changed (its ctime) five seconds ago
    monkeypatch.setattr(time, "time_ns", lambda: later)
    assert sha256_file(settled) == sha256_file(settled) == hashlib.sha256(b"e" * 10).hexdigest()
    assert reads.count(str(settled)) == 1


def test_a_tilde_and_a_name_that_is_no_users_stays_that_path_as_in_a_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Path.expanduser raised RuntimeError ('Could not determine home directory.'): a traceback where
    # the missing file should have been named (MVTEC_FINETUNE_CACHE=~lot_7_cache, --config ~lot_7.yaml)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert expand_user("~no_such_user_lot_7/x.pt") == Path("~no_such_user_lot_7/x.pt")
    assert expand_user(Path("~/x.pt")) == tmp_path / "x.pt"
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", "~no_such_user_lot_7_cache")
    assert cache_root() == Path("~no_such_user_lot_7_cache")


def test_no_home_folder_is_a_user_error_naming_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a container run with an arbitrary user id and no HOME: Path.home() raised RuntimeError (a traceback),
    # and os.path.expanduser left '~/x' as it was: a folder named '~' in the working folder
    without_home(monkeypatch)
    # MVTEC_FINETUNE_CACHE moves the cache alone: it was named for '~/runs' too, where only HOME helps
    for call in (home_dir, lambda: expand_user("~"), lambda: expand_user("~/runs")):
        with pytest.raises(UserError, match="no home folder: HOME is not set and user id .*; set HOME$"):
            call()
    with pytest.raises(
        UserError,
        match="^no home folder: HOME is not set and user id .*; set HOME, or MVTEC_FINETUNE_CACHE for the "
        "cache folder$",
    ):
        cache_root()
    with pytest.raises(UserError, match="^~/runs: no home folder"):
        expand_user("~/runs")
    assert expand_user("~no_such_user_lot_7/x.pt") == Path("~no_such_user_lot_7/x.pt")  # as in a shell
    assert expand_user("runs/~") == Path("runs/~")
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"


def test_ultralytics_config_with_no_home_is_a_folder_of_this_users_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the temp folder is shared by every user: a folder of that name someone else made (here one open
    # to all, or a link) is not used; a private one of this user's is, the one an earlier run made too
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert homeless_config_dir() is None  # a home: ultralytics finds its own folder
    without_home(monkeypatch)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    mine = tmp_path / f"mvtec-finetune-{os.getuid()}"
    assert homeless_config_dir() == mine and (mine.stat().st_mode & 0o777) == 0o700
    for mode in (0o500, 0o755):  # a umask's modes, nobody else's files inside: made private again
        mine.chmod(mode)
        assert homeless_config_dir() == mine and (mine.stat().st_mode & 0o777) == 0o700
    mine.chmod(0o777)
    other = homeless_config_dir()
    assert other is not None and other != mine and other.parent == tmp_path and other.is_dir()
    assert (other.stat().st_mode & 0o777) == 0o700
    # the next run: that one again, not a new folder each run
    assert homeless_config_dir() == other and len(list(tmp_path.iterdir())) == 2
    other.chmod(0o777)  # open to others since: neither is used
    third = homeless_config_dir()
    assert third not in (None, mine, other) and third.parent == tmp_path
    mine.rmdir(), mine.symlink_to(third)
    assert homeless_config_dir() == third  # its own name, not the link
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", "~/cache")  # no home: refused when the cache is used
    assert homeless_config_dir().parent == tmp_path
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", "cache")
    monkeypatch.chdir(tmp_path)
    assert homeless_config_dir() == tmp_path / "cache"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert homeless_config_dir() == tmp_path / "xdg"


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("MVTEC_FINETUNE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "mvtec-finetune"


def test_torch_files_round_trip_and_garbage_is_one_line(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    save_torch({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(load_torch(tmp_path / "ok.pt")["w"], torch.ones(2))
    (tmp_path / "bad.pt").write_bytes(b"garbage, not a zip and not a pickle")
    for path, expected in (
        (tmp_path / "bad.pt", "cannot read checkpoint"),
        (tmp_path / "no.pt", "not found"),
    ):
        with pytest.raises(UserError) as error:
            load_torch(path)
        assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "content",
    [b"garbage, not a zip and not a pickle", b"w: 1\n", b"\x80\x02garbage after pickle's PROTO"],
    ids=["text", "yaml", "broken-pickle"],
)
def test_a_file_that_is_no_torch_file_says_so(tmp_path: Path, content: bytes) -> None:
    pytest.importorskip("torch")
    (tmp_path / "junk.pt").write_bytes(content)
    with pytest.raises(UserError) as error:
        load_torch(tmp_path / "junk.pt", what="SAM checkpoint")
    message = str(error.value)
    assert message.startswith(f"cannot read SAM checkpoint {tmp_path / 'junk.pt'}: ")
    if content[:1] != b"\x80":  # torch's own reason for these is a bare number (KeyError)
        assert message.endswith("not a torch file, or one that only loads by running pickled code")


def test_an_empty_torch_file_says_it_is_empty(tmp_path: Path) -> None:
    # a zero-byte checkpoint (a download that never started) said "not a torch file, or one that only
    # loads by running pickled code", which sent users looking for another file
    pytest.importorskip("torch")
    (tmp_path / "mobile_sam.pt").write_bytes(b"")
    with pytest.raises(UserError) as error:
        load_torch(tmp_path / "mobile_sam.pt", what="SAM checkpoint")
    assert str(error.value) == (
        f"cannot read SAM checkpoint {tmp_path / 'mobile_sam.pt'}: the file is empty (0 bytes: an "
        "interrupted download or copy?)"
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_truncated_torch_file_says_it_ends_early(tmp_path: Path, legacy: bool) -> None:
    # a partial download said "unpack requires a buffer of 4 bytes", or "not a torch file" of a zip
    torch = pytest.importorskip("torch")
    whole = tmp_path / "whole.pt"
    torch.save({"w": torch.arange(4096.0)}, whole, _use_new_zipfile_serialization=not legacy)
    (tmp_path / "cut.pt").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(UserError) as error:
        load_torch(tmp_path / "cut.pt", what="weights file")
    assert str(error.value) == (
        f"cannot read weights file {tmp_path / 'cut.pt'}: the file ends early (truncated: an interrupted "
        "download or copy?)"
    )


def test_torch_files_load_memory_mapped_or_whole(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    save_torch({"w": torch.arange(4.0)}, tmp_path / "zip.pt")
    torch.save({"w": torch.arange(4.0)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("zip.pt", "legacy.pt"):  # the old format cannot be mapped: read whole instead
        assert torch.equal(load_torch(tmp_path / name, mmap=True)["w"], torch.arange(4.0))
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_torch(tmp_path / "bad.pt", mmap=True)


def test_now_zero_is_a_time_not_a_missing_value(tmp_path: Path) -> None:
    path = foreign_temporary(tmp_path, os.getpid())
    path.write_bytes(b"")
    os.utime(path, (1_000_000, 1_000_000))
    assert not is_stale(path, now=0.0)  # "now" before the file was written: not old


def test_a_detectors_checkpoint_given_as_a_sam_checkpoint_is_named_for_what_it_is(tmp_path: Path) -> None:
    from ultralytics import YOLO

    best = tmp_path / "best.pt"
    YOLO("yolo11n.yaml").save(str(best))
    assert torch_file_kind(best) == "an ultralytics model (detection weights)"
    with pytest.raises(UserError) as error:
        load_torch(best, what="SAM checkpoint")
    # it said "not a torch file, or one that only loads by running pickled code (it is ...)"
    assert str(error.value) == (
        f"cannot read SAM checkpoint {best}: it is an ultralytics model (detection weights), "
        "not a SAM checkpoint"
    )
    save_torch({"format": "mvtec-finetune/sam-decoder", "model": "vit_t"}, tmp_path / "decoder.pt")
    assert torch_file_kind(tmp_path / "decoder.pt") == "a SAM decoder.pt from segmentation.train"
    save_torch({"weights": [1, 2]}, tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("not a zip")
    assert torch_file_kind(tmp_path / "other.pt") is None and torch_file_kind(tmp_path / "text.pt") is None


def test_a_decoder_whose_config_names_an_ultralytics_folder_is_still_a_decoder(tmp_path: Path) -> None:
    config = {"data": "/home/me/ultralytics/datasets/nut"}  # its training config, recorded in the file
    decoder = save_torch({"format": "mvtec-finetune/sam-decoder", "config": config}, tmp_path / "decoder.pt")
    assert torch_file_kind(decoder) == "a SAM decoder.pt from segmentation.train"


def test_a_sam_state_dict_saved_by_ultralytics_is_an_ultralytics_model(tmp_path: Path) -> None:
    # SAM's keys are looked for last: ultralytics' own checkpoints of a SAM model hold them too
    checkpoint = {
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "model": {"mask_decoder.iou_token.weight": [1.0]},
    }
    assert (
        torch_file_kind(save_torch(checkpoint, tmp_path / "sam.pt"))
        == "an ultralytics model (detection weights)"
    )
    state = save_torch({"mask_decoder.iou_token.weight": [1.0]}, tmp_path / "sam_finetuned.pth")
    assert torch_file_kind(state) == "a SAM state dict, such as sam_finetuned.pth"


def test_only_a_tensor_under_bank_is_a_patchcore_memory_bank(tmp_path: Path) -> None:
    import torch

    bank = save_torch({"bank": torch.zeros(3, 4)}, tmp_path / "memory_bank.pt")
    assert torch_file_kind(bank).startswith("a PatchCore memory bank from anomaly.train")
    # a first key named bank that holds no tensor (a setting, a path) is no memory bank
    assert torch_file_kind(save_torch({"bank": "runs/memory_bank"}, tmp_path / "other.pt")) is None


@pytest.mark.parametrize(
    ("count", "images"),
    [(1, "1 image was"), (2, "2 images were")],  # one copied photo is no plural
)
def test_the_note_on_copied_images_counts_them(tmp_path: Path, count: int, images: str) -> None:
    note = copied_note(count, tmp_path / "a.png", tmp_path / "out")
    assert note.startswith(
        f"note: {images} copied into {tmp_path / 'out'}, not hard-linked (e.g. {tmp_path / 'a.png'})"
    )


def test_json_text_writes_undefined_figures_as_null_wherever_they_sit(strict_json, tmp_path: Path) -> None:
    value = {
        "auroc": float("nan"),
        "ratio": float("inf"),
        "low": -math.inf,
        "kept": 0.5,
        "rounds": [{"iou": np.float32("nan")}, (1, np.float64("-inf"))],  # nested, numpy, a tuple
        "per_image": np.array([0.25, np.nan]),
        "count": np.int64(3),
        "name": "NaN",  # a string stays a string
    }
    text = json_text(value, indent=1)
    strict = strict_json(atomic_write(tmp_path / "metrics.json", text))
    assert strict == {
        "auroc": None, "ratio": None, "low": None, "kept": 0.5, "rounds": [{"iou": None}, [1, None]],
        "per_image": [0.25, None], "count": 3, "name": "NaN",
    }  # fmt: skip
    assert math.isnan(value["auroc"]) and math.isnan(value["per_image"][1])  # the caller's values stay NaN
    assert json.loads(text) == json.loads(json.dumps(finite_json(value), indent=1))


def test_the_strict_reader_of_the_writers_tests_refuses_what_json_dumps_writes(strict_json, tmp_path) -> None:
    # the tests of every writer read its files with it: one that let NaN through would pass them all
    path = atomic_write(tmp_path / "metrics.json", json.dumps({"auroc": math.nan, "ratio": math.inf}))
    with pytest.raises(AssertionError, match="holds NaN, which is not JSON"):
        strict_json(path)


def test_a_non_finite_float_json_text_could_not_convert_raises_instead_of_being_written() -> None:
    # ``default`` runs inside json.dumps, after the conversion: its NaN is refused, never written
    with pytest.raises(ValueError, match="not JSON compliant"):
        json_text({"figure": object()}, default=lambda _: float("nan"))
    assert json_text({"path": Path("a")}, default=str) == '{"path": "a"}'


@pytest.mark.parametrize(("written", "read"), [(None, math.nan), (0.5, 0.5), (1, 1.0), (0.0, 0.0), (0, 0.0)])
def test_json_float_reads_null_back_as_nan(written, read) -> None:
    # only null is undefined: a figure of 0 is 0 (a truthiness test read it as NaN), and a float either way
    value = json_float(json.loads(json_text({"x": written}))["x"])
    assert type(value) is float and (value == read or (math.isnan(read) and math.isnan(value)))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"name": "crack\\udcff"}', r"'crack\udcff'"),  # json.dumps of an undecodable Linux name
        ('{"images": [{"file_name": "a\\ud800.png"}]}', r"'a\ud800.png'"),  # nested in a list
        ('{"\\uDC80": 1}', r"'\udc80'"),  # a key, the escape in capitals
    ],
    ids=["value", "nested", "key"],
)
def test_a_lone_surrogate_escape_in_a_json_file_is_refused_naming_file_and_value(tmp_path, text, value):
    # json.loads took it; the first print or UTF-8 write of the string raised UnicodeEncodeError
    path = tmp_path / "class_ids.json"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        read_json_object(path, what="mask-values file")
    assert str(error.value).startswith(
        f"cannot read mask-values file {path}: it holds {value}, which is not UTF-8"
    )
    assert "\n" not in str(error.value)


def test_a_runs_own_file_reads_a_folder_name_that_is_not_utf8_back_as_it_was(tmp_path):
    # anomaly.evaluate's metrics.json records the run folder as given; json.loads gives the same path back
    run = os.fsdecode(os.fsencode(tmp_path) + b"/run\xff")
    path = atomic_write(tmp_path / "metrics.json", json.dumps({"run": run}))
    assert read_json_object(path, what="metrics file", utf8=False) == {"run": run}
    with pytest.raises(UserError, match=r"it holds '.*run\\udcff'"):
        read_json_object(path, what="metrics file")


def test_a_surrogate_pair_escape_is_text_and_read(tmp_path):
    # json.dumps writes an emoji as a pair of escapes, which json.loads joins into one character
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"name": "crack \U0001f600", "escaped": "\\ud800"}))
    assert read_json_object(path, what="file") == {"name": "crack \U0001f600", "escaped": "\\ud800"}


def test_a_json_file_beginning_with_a_bom_is_read(tmp_path):
    # a COCO file saved by a Windows tool: "not JSON (Unexpected UTF-8 BOM (decode using utf-8-sig) ...)"
    path = tmp_path / "instances_test.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"images": [], "name": "kratzer \u00e4"}).encode())
    assert read_json_object(path, what="COCO file") == {"images": [], "name": "kratzer \u00e4"}


def test_recorded_path_is_absolute_without_dots_keeping_a_linked_folders_name(tmp_path, monkeypatch) -> None:
    # Path.absolute() recorded '/w/h/../shared/data' in args.yaml, predict.json and metrics.json
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "linked").symlink_to(tmp_path / "shared" / "data", target_is_directory=True)
    monkeypatch.chdir(tmp_path / "h")
    assert recorded_path("../shared/./data") == str(tmp_path / "shared" / "data")
    assert recorded_path(Path("linked/")) == str(tmp_path / "h" / "linked")  # the name given, not its target
    pattern = f"{tmp_path}/h/../shared/**/*.png"
    assert recorded_path(pattern) == f"{tmp_path}/shared/**/*.png"  # its wildcards kept


@pytest.mark.parametrize(
    ("coco", "message"),
    [
        (
            {"images": [], "annotations": []},
            "is not a COCO instances file (needs images, annotations, categories)",
        ),
        (
            {"images": [], "annotations": "x", "categories": []},
            "'annotations' must be a list of objects, got str",
        ),
        ({"images": {}, "annotations": [], "categories": []}, "'images' must be a list of objects, got dict"),
        # 0 is falsy: still not an object
        (
            {"images": [], "annotations": [], "categories": [0]},
            "'categories' must be a list of objects, got a list",
        ),
    ],
)
def test_a_coco_file_of_another_shape_is_one_line_naming_the_part(tmp_path, coco, message):
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps(coco))
    with pytest.raises(UserError) as error:
        read_coco_instances(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_a_coco_file_of_lists_of_objects_is_read(tmp_path):
    coco = {"images": [{"id": 1}], "annotations": [], "categories": [{"id": 1, "name": "cut"}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    assert read_coco_instances(tmp_path / "c.json") == coco


def test_a_streamed_file_appears_whole_at_close_and_abort_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "scores.csv"
    streamed = StreamedFile(target)
    streamed.write("a,1\n")
    streamed.write("b,2\r\n")
    assert not target.exists() and [p.name for p in (tmp_path / "sub").iterdir()] == [streamed.temporary.name]
    assert streamed.close() == target and target.read_bytes() == b"a,1\nb,2\r\n"  # newlines as given
    assert streamed.close() == target and target.read_bytes() == b"a,1\nb,2\r\n"  # once
    again = StreamedFile(target)
    again.write("half")
    again.abort()
    assert target.read_bytes() == b"a,1\nb,2\r\n" and [p.name for p in (tmp_path / "sub").iterdir()] == [
        "scores.csv"
    ]


class _FullDisk:
    """A text file whose writes fail as a full disk's do: an OSError without a file name."""

    def __init__(self, file) -> None:
        self.file = file

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        self.file.close()


def test_a_streamed_file_on_a_full_disk_is_an_error_naming_it_and_leaves_nothing(tmp_path: Path) -> None:
    # its OSError named no file: the commands' error line (common.cli) needs one, so it was a traceback
    target = tmp_path / "predictions.json"
    streamed = StreamedFile(target)
    streamed._file = _FullDisk(streamed._file)
    with pytest.raises(OSError) as raised:
        streamed.write("[")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    streamed.abort()
    assert list(tmp_path.iterdir()) == []


def _refuse(refused: Path):
    """``os.replace`` failing for ``refused``'s temporary as a read-only or full file system's rename does."""
    real = os.replace

    def replace(source, target) -> None:
        if Path(target) == refused:
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(source), None, os.fspath(target))
        real(source, target)

    return replace


def test_a_streamed_file_whose_rename_fails_leaves_no_temporary_and_names_it(tmp_path, monkeypatch, capsys):
    # the file counted as closed before the rename: abort() then dropped nothing, the temporary stayed;
    # the error line named the hidden temporary ('... (from .scores.csv.<host>-<pid>-<random>.tmp)')
    target = tmp_path / "scores.csv"
    target.write_text("old")
    streamed = StreamedFile(target)
    streamed.write("new")
    monkeypatch.setattr(os, "replace", _refuse(target))
    assert exit_code(streamed.close) == 1
    assert capsys.readouterr().err == f"error: No space left on device: {target}\n"
    streamed.abort()
    assert sorted(tmp_path.iterdir()) == [target] and target.read_text() == "old"


def test_a_streamed_file_whose_last_flush_fails_at_close_leaves_no_temporary(tmp_path: Path) -> None:
    class FlushFails:
        def __init__(self, file) -> None:
            self.file = file

        def close(self) -> None:
            self.file.close()
            raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "images.json"
    streamed = StreamedFile(target)
    streamed._file = FlushFails(streamed._file)
    with pytest.raises(OSError) as raised:
        streamed.close()
    assert raised.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []  # no abort() needed: PredictionWriter.close() calls none


def test_an_abort_whose_buffered_text_a_full_disk_refuses_drops_it_quietly(tmp_path: Path) -> None:
    # the close's OSError (no file name) replaced the error handled, a Ctrl-C too; the temporary stayed
    class BufferedOnFullDisk:
        def __init__(self, file) -> None:
            self.file = file

        def close(self) -> None:
            self.file.close()  # closed all the same, as TextIOWrapper.close does when its flush fails
            raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "predictions.json"
    target.write_text("old")
    streamed = StreamedFile(target)
    streamed._file = BufferedOnFullDisk(streamed._file)
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt
        finally:
            streamed.abort()
    assert sorted(tmp_path.iterdir()) == [target] and target.read_text() == "old" and streamed.closed


@pytest.mark.parametrize("streamed", [False, True], ids=["atomic_write", "StreamedFile"])
def test_a_refused_temporary_is_named_as_the_file_written(tmp_path, monkeypatch, capsys, streamed):
    # 'error: Permission denied: <out>/.a.json.<host>-<pid>-<random>.tmp', a file the user never sees
    target = tmp_path / "a.json"

    def refused(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    monkeypatch.setattr(common.io, "open", refused, raising=False)
    assert exit_code(lambda: StreamedFile(target) if streamed else atomic_write(target, "{}")) == 1
    assert capsys.readouterr().err == f"error: Permission denied: {target}\n"


def test_a_folder_in_the_place_of_the_file_is_named_alone(tmp_path, capsys):
    (tmp_path / "a.json").mkdir()
    assert exit_code(lambda: atomic_write(tmp_path / "a.json", "{}")) == 1
    assert capsys.readouterr().err == f"error: Is a directory: {tmp_path / 'a.json'}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_streamed_file_gets_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    streamed = StreamedFile(tmp_path / "scores.csv")
    streamed.write("a")
    os.chmod(streamed.temporary, 0o600)  # as a temporary made by mkstemp would be
    streamed.close()
    assert (tmp_path / "scores.csv").stat().st_mode & 0o777 == common.io._file_mode()


def test_a_link_into_a_link_loop_names_the_loop_not_the_link(tmp_path, monkeypatch):
    # 'into -> loop/sub' was named as the loop ('leads back to itself'), though it leads into one elsewhere
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    (tmp_path / "into").symlink_to("loop/sub")
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    (tmp_path / "broken").symlink_to("nowhere")
    monkeypatch.chdir(tmp_path)
    assert link_loop("into/x") == link_loop(tmp_path / "into") == link_loop(tmp_path / "into/x") == loop
    assert link_loop_text("into/x") == (
        f"into/x: {loop} is a link loop (a symbolic link that leads back to itself, to no file or folder); "
        "point it elsewhere or give another path"
    )
    assert link_loop("b/x") == tmp_path / "b" and link_loop("a") == tmp_path / "a"  # a -> b -> a
    assert link_loop("broken/x") is None and link_loop("broken") is None  # leads nowhere: not a loop
    assert not_found_text("broken/x", "--source") == "--source not found: broken/x"


def test_a_link_loop_after_a_link_and_dotdot_is_found_where_the_system_finds_it(tmp_path, monkeypatch):
    # 'up -> other/inner', so up/../loop is other/loop (the loop); it was read as loop/, a plain folder
    (tmp_path / "other" / "inner").mkdir(parents=True)
    (tmp_path / "other" / "loop").symlink_to("loop")
    (tmp_path / "loop").mkdir()
    (tmp_path / "up").symlink_to("other/inner")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OSError) as error:
        os.stat("up/../loop/x")
    assert error.value.errno == errno.ELOOP
    real = Path(os.path.realpath(tmp_path)) / "other" / "loop"  # named past the '..' as the system found it
    assert link_loop("up/../loop/x") == link_loop(tmp_path / "up/../loop") == real
    assert not_found_text("up/../loop/x", "--source").startswith(
        f"--source up/../loop/x: {real} is a link loop ("
    )
    assert link_loop("up/../inner/x") is None and link_loop("loop/x") is None


def test_file_exists_is_false_only_where_nothing_is_there(tmp_path, monkeypatch):
    (tmp_path / "splits.json").write_text("{}")
    assert file_exists(tmp_path / "splits.json")
    assert not file_exists(tmp_path / "gone.json") and not file_exists(tmp_path)  # absent, a folder
    assert not file_exists(tmp_path / "splits.json" / "x")  # a file where a folder should be
    stat = os.stat

    def unsearchable(path, *args, **kwargs):  # Path.is_file is False here from Python 3.13
        if Path(path).parent == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", unsearchable)
    with pytest.raises(UnreadableFileError) as refused:
        file_exists(tmp_path / "splits.json")
    assert refused.value.filename == str(tmp_path / "splits.json") and refused.value.errno == errno.EACCES


@pytest.mark.parametrize(
    ("links", "given", "loop"),
    [
        ({"loop": "loop"}, "loop/x", "loop"),
        ({"a": "b", "b": "a"}, "a", "a"),  # a loop of two links, named where entered
        ({"loopdir": "loopdir", "a.png": "loopdir/x.png"}, "a.png", "loopdir"),  # a link into the loop
        ({"loopdir": "loopdir", "lot": "loopdir"}, "lot/a.png", "loopdir"),  # a folder link into it
        ({"loopdir": "loopdir", "sub/a.png": "../loopdir/x.png"}, "sub/a.png", "loopdir"),  # '..' of sub
        ({"a.png": "b.png", "b.png": "c.png"}, "a.png", None),  # a broken link, no loop
        # a link to itself through a link to its folder: was named as the system gave up, here/here/.../a.png
        ({"here": ".", "a.png": "here/a.png"}, "a.png", "a.png"),
        ({"here": ".", "a.png": "here/a.png"}, "here/a.png", "here/a.png"),
    ],
)
def test_link_loop_names_the_link_to_point_elsewhere(tmp_path: Path, links, given, loop) -> None:
    # a link leading into a loop (a.png -> loopdir/x.png) was named as the loop, not loopdir
    (tmp_path / "sub").mkdir()
    for name, target in links.items():
        (tmp_path / name).symlink_to(target)
    assert link_loop(tmp_path / given) == (tmp_path / loop if loop else None)


def test_a_chain_of_more_than_40_links_is_no_loop_but_named_as_too_many(tmp_path, monkeypatch):
    # l45 -> l44 -> ... -> l0 -> f: refused by the system (ELOOP, as a loop is); was named a link loop at l40
    (tmp_path / "f").write_text("x")
    (tmp_path / "l0").symlink_to("f")
    for i in range(1, 46):
        (tmp_path / f"l{i}").symlink_to(f"l{i - 1}")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "m0").symlink_to("loop")
    for i in range(1, 46):
        (tmp_path / f"m{i}").symlink_to(f"m{i - 1}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OSError) as error:
        os.stat("l45")
    assert error.value.errno == errno.ELOOP
    assert link_loop("l45") is None and link_loop("l45/x") is None and link_loop("l30") is None
    too_many = (
        "goes through too many symbolic links in a row (more than the system follows, 40 on Linux), though "
        "none leads back; point it straight at the file or folder they end in"
    )
    assert not_found_text("l45", "--source") == f"--source l45 {too_many}"
    assert link_loop_text("l45/x", given="data=l45/x") == f"data=l45/x: {tmp_path / 'l45'} {too_many}"
    assert link_loop_text("l30") is None
    assert link_loop("m45") == tmp_path / "loop"  # a long chain into a loop: the loop
