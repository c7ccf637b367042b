"""Which optional packages each part of the project needs, and a clear message when they are missing.

The core (``pip install .`` in a checkout; it is not on PyPI) converts masks without torch; detection
and SAM need the ``train`` extra, the annotation page the ``annotate`` extra
(pyproject.toml). A user who runs ``python -m detection.train`` with the core
alone gets one line naming the extra to install, not a ``ModuleNotFoundError``
traceback from deep inside an import.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from importlib import metadata
from pathlib import Path

from common.cli import starting_a_command
from common.errors import UserError

#: Import names each extra provides (pyproject.toml's ``[project.optional-dependencies]``).
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "torchvision", "ultralytics", "segment_anything"),
    "annotate": ("fastapi", "uvicorn", "onnx", "onnxruntime"),
}
#: Extras another extra brings along (pyproject.toml: ``annotate = ["mvtec-finetune[train]", ...]``).
INCLUDES: dict[str, tuple[str, ...]] = {"annotate": ("train",)}
#: Commands that need more than their package's extra, by module and by console script: the annotation
#: page is in ``segmentation`` (``train``) but needs ``annotate``; naming ``train`` sent a core user
#: round twice (install ``train``, then be told ``annotate``).
COMMAND_EXTRAS: dict[str, str] = {"segmentation.annotate": "annotate", "mvtec-annotate": "annotate"}
#: The distribution name users install.
DISTRIBUTION = "mvtec-finetune"
#: The distributions whose code makes the figures of an evaluation (pyproject.toml's names).
RESULT_PACKAGES = (
    "numpy",
    "opencv-python-headless",
    "pycocotools",
    "torch",
    "torchvision",
    "ultralytics",
    "segment-anything",
    "onnxruntime",
)


def package_versions() -> dict[str, str | None]:
    """``{"python": "3.12.3", "numpy": "2.1.0", ...}``: the versions an evaluation's figures depend on
    (:data:`RESULT_PACKAGES`), recorded beside them as ``versions``; None for one not installed.

    Read from the installed distributions' metadata: nothing is imported.
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in RESULT_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def missing(extra: str) -> list[str]:
    """The import names of ``extra`` (and of the extras it includes) that are not installed.

    ``find_spec``: nothing is imported.
    """
    names = [name for included in (*INCLUDES.get(extra, ()), extra) for name in EXTRAS[included]]
    return [name for name in names if importlib.util.find_spec(name) is None]


def starting_command() -> str | None:
    """The module of ``python -m <module>`` or the console script's name being started, else None."""
    if not starting_a_command():
        return None
    if sys.argv[0] == "-m":
        arguments = getattr(sys, "orig_argv", [])
        return next((arguments[i + 1] for i, a in enumerate(arguments[:-1]) if a == "-m"), None)
    return Path(sys.argv[0]).name


def install_hint(extra: str, absent: list[str], what: str) -> str:
    """``"<what> needs the 'train' extra (torch not installed): pip install '.[train]' in ..."``.

    The distribution is not on PyPI, so the hint installs the extra from this project's checkout.
    """
    packages = ", ".join(absent)
    command = f"pip install '.[{extra}]' in the {DISTRIBUTION} checkout"
    return f"{what} needs the '{extra}' extra ({packages} not installed): {command}"


def require(extra: str, *, what: str) -> None:
    """Raises :class:`UserError` when ``extra`` is incomplete; for optional parts inside a command."""
    absent = missing(extra)
    if absent:
        raise UserError(install_hint(extra, absent, what))


def require_for_package(extra: str, package: str) -> None:
    """Called by a feature package's ``__init__``: stops early when ``extra`` is incomplete.

    Run as a command (``python -m <package>.x``) that is one ``error:`` line and exit
    code 2, like any other bad input; imported as a library it is a
    ``ModuleNotFoundError`` carrying the same message. A command that needs more than its package
    (:data:`COMMAND_EXTRAS`: the annotation page) names its own extra, so one install is enough.
    """
    command = starting_command()
    if command in COMMAND_EXTRAS:
        extra, package = COMMAND_EXTRAS[command], command
    absent = missing(extra)
    if not absent:
        return
    message = install_hint(extra, absent, package)
    if starting_a_command():
        print(f"error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    raise ModuleNotFoundError(message, name=absent[0])
