"""The data set layouts the converters read, and which one a category folder is.

Each layout is one :class:`~converters.layouts.base.Layout` entry of :data:`LAYOUTS`
(a module per layout: how to recognise a category folder, how to read it into
:class:`~converters.records.ImageRecord` s). Adding a layout is one module and one entry.

>>> sorted(LAYOUTS)[:3]
['btad', 'folder', 'kolektor_sdd']
"""

from __future__ import annotations

from pathlib import Path

from common.errors import UserError
from converters.layouts import (
    btad,
    folder,
    kolektor,
    kolektor_sdd,
    mvtec_3d,
    mvtec_ad,
    mvtec_ad2,
    mvtec_loco,
    visa,
)
from converters.layouts.base import Layout

#: Every layout by its ``--layout`` name, MVTec AD first (the generic train/test tree).
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        mvtec_ad.LAYOUT,
        mvtec_ad2.LAYOUT,
        mvtec_3d.LAYOUT,
        mvtec_loco.LAYOUT,
        visa.LAYOUT,
        btad.LAYOUT,
        kolektor.LAYOUT,
        kolektor_sdd.LAYOUT,
        folder.LAYOUT,
    )
}

__all__ = ["LAYOUTS", "Layout", "detect_layout", "get_layout", "looked_for", "matching_layouts"]


def get_layout(name: str) -> Layout:
    """The layout called ``name``.

    Raises:
        UserError: no such layout; the message lists the known ones.
    """
    if name not in LAYOUTS:
        raise UserError(f"unknown layout '{name}' (expected one of: {', '.join(LAYOUTS)})")
    return LAYOUTS[name]


def matching_layouts(folder: Path) -> list[Layout]:
    """The layouts ``folder`` looks like a category of, less those another match refines."""
    found = [layout for layout in LAYOUTS.values() if layout.matches(folder)]
    refined = {name for layout in found for name in layout.refines}
    return [layout for layout in found if layout.name not in refined]


def looked_for() -> str:
    """What detection looks for, layout by layout, for the error when nothing matches."""
    return "; ".join(f"{layout.title}: {layout.looks_for}" for layout in LAYOUTS.values())


def detect_layout(folder: str | Path) -> Layout:
    """The one layout ``folder`` is a category of.

    Raises:
        UserError: none matches (the message says what was looked for), or several do
            (it names them and asks for ``--layout``).
    """
    folder = Path(folder)
    found = matching_layouts(folder)
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"no known data set layout in {folder}; looked for {looked_for()}")
    names = " and ".join(f"{layout.name} ({layout.looks_for})" for layout in found)
    raise UserError(f"{folder} matches several layouts: {names}; choose one with --layout")
