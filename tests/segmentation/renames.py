"""Path.rename and Path.touch refused for chosen paths: the faults the run-folder and --folds tests stage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def refuse_rename(monkeypatch, refused: Path | Callable[[Path], bool], code: int = 13) -> Callable:
    """Path.rename raises PermissionError(``code``) for ``refused`` (a path, or a test of the source path).

    Returns the real Path.rename, to put back with ``monkeypatch.setattr(Path, "rename", real)``.
    """
    real = Path.rename
    test = refused if callable(refused) else (lambda path: path == refused)
    words = "Permission denied" if code == 13 else "Operation not permitted"

    def rename(self, target):
        if test(self):
            raise PermissionError(code, words, str(self))
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    return real


def refuse_touch(monkeypatch, name: str) -> None:
    """Path.touch raises PermissionError(13) for a file named ``name``."""
    real = Path.touch

    def touch(self, *args, **kwargs):
        if self.name == name:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "touch", touch)
