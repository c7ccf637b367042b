"""Fixtures of the common package's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def unsearchable(monkeypatch):
    """Python 3.13's lookups (``Path.exists`` and kin are ``os.path``'s: False for every ``OSError``) with the
    folders given to the returned function unsearchable, as for a user without their ``x`` permission (root,
    which runs these tests, searches any folder): a lookup of anything in one raises ``PermissionError``.
    A minimal copy of tests/segmentation/conftest.py's (importlib mode: no fixture is shared across)."""
    blocked: list[Path] = []
    stat, lstat, access = os.stat, os.lstat, os.access

    def inside(path) -> bool:
        return isinstance(path, str | os.PathLike) and any(
            folder in Path(os.fspath(path)).absolute().parents for folder in blocked
        )

    def looked_up(real):
        def lookup(path, *args, **kwargs):
            if inside(path):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path, *args, **kwargs)

        return lookup

    monkeypatch.setattr(os, "stat", looked_up(stat))
    monkeypatch.setattr(os, "lstat", looked_up(lstat))
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: Path(path) not in blocked and access(path, mode, **kw)
    )
    for name, new in (("exists", os.path.exists), ("is_file", os.path.isfile), ("is_dir", os.path.isdir)):
        monkeypatch.setattr(Path, name, lambda self, *, follow_symlinks=True, new=new: new(self))
    monkeypatch.setattr(Path, "is_symlink", lambda self: os.path.islink(self))
    return blocked.append
