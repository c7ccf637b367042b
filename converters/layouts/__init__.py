"""The data set layouts the converters read, and which one a category folder is.

Each layout is one :class:`~converters.layouts.base.Layout` entry of :data:`LAYOUTS`
(a module per layout: how to recognise a category folder, how to read it into
:class:`~converters.records.ImageRecord` s). Adding a layout is one module and one entry.

>>> sorted(LAYOUTS)[:3]
['btad', 'folder', 'kolektor_sdd']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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
from converters.records import GOOD, ImageRecord

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

__all__ = [
    "LAYOUTS",
    "Layout",
    "detect_layout",
    "empty_folder_warnings",
    "empty_type_folders",
    "get_layout",
    "looked_for",
    "matching_layouts",
]


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


def empty_folder_warnings(
    records: Sequence[ImageRecord], *, missing: str, held: Sequence[ImageRecord] | None = None
) -> list[str]:
    """A line for each defect-type folder beside the records' own that is empty (``test/crack/`` made before
    its photos were copied; MVTec 3D-AD's ``test/crack/rgb/``): its type is read nowhere, which nothing else
    would say (:func:`empty_type_folders`). ``missing``: what the folder's category then lacks, in its line,
    with ``{photos}`` (``'crack' photos``, or ``good photos`` for a folder of good ones:
    :attr:`Layout.good_folder`, VisA's ``Normal/``) and ``{category}`` (the converters': ``the data set
    holds no {photos} of category '{category}'``; ``anomaly.evaluate``'s: ``no {photos} are scored``); where
    the category's records in ``held`` (default: ``records``; the scored ones, ``anomaly.evaluate``'s
    ``test/``) hold photos of that type all the same (another subset's ``good/``), the line claims nothing of
    it. A type folder of the layout's own name (:attr:`Layout.type_names`: the folder layout's ``images/``)
    is named by the type it holds (``'defect'``, not ``'images'``); one the layout cannot do without
    (:attr:`Layout.needed`: that ``images/``) is asked to be filled, another to be filled or removed.
    Several folders were one line (``2 empty folders, e.g. test/crack: ...``) claiming the first's type
    alone, and nothing of the others'.
    """
    held_types = {
        (r.category, GOOD if r.is_good else r.defect)
        for r in (records if held is None else held)
        if not r.unlabelled
    }
    lines = []
    for type_folder, photos, layout, category in empty_type_folders(records):
        name = type_folder.name
        # a folder the layout cannot do without (the folder layout's images/) is to be filled, not removed
        ask = f"(add them{'' if name in layout.needed else ' or remove it'})"
        type_name = GOOD if name == layout.good_folder else layout.type_names.get(name, name)
        if (category, type_name) in held_types:  # read from another folder of the category: it lacks nothing
            lines.append(f"empty folder {photos}: no photos {ask}")
            continue
        kind = "good photos" if type_name == GOOD else f"'{type_name}' photos"
        lines.append(
            f"empty folder {photos}: no photos, so {missing.format(photos=kind, category=category)} {ask}"
        )
    return lines


def empty_type_folders(records: Sequence[ImageRecord]) -> list[tuple[Path, Path, Layout, str]]:
    """The defect-type folders beside the records' own whose photos' folder (:attr:`Layout.photos_in`:
    MVTec 3D-AD's ``test/crack/rgb/``) holds nothing but hidden entries (``.DS_Store``), sorted, each as
    ``(folder, photos' folder, layout, category)``. The type folders are the records' layouts'
    (:attr:`Layout.type_folders`): an empty folder of another kind (3D-AD's ``gt/``, the folder layout's
    ``masks/``) is no type. A folder holding anything else is not looked into.
    """
    types: dict[Path, tuple[Path, Layout, str]] = {}  # each type folder: its photos' folder, layout, category
    for name, category, photo_folder in sorted(
        {(record.layout, record.category, Path(record.image).parent) for record in records}
    ):
        layout = LAYOUTS.get(name)
        if layout is not None:
            types |= {f: (f / layout.photos_in, layout, category) for f in layout.type_folders(photo_folder)}
    return [
        (folder, *found)
        for folder, found in sorted(types.items())
        if found[0].is_dir() and all(entry.name.startswith(".") for entry in os.scandir(found[0]))
    ]
