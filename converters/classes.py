"""Class names: the ``--names-template`` namer, the ``--mask-values`` map, the sorted class list.

A class is its name: two (category, defect) pairs that the template names alike are one
class (``{defect}`` merges ``scratch`` across categories). Class ids are the positions in
the sorted list, so they are stable for the same inputs.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from pathlib import Path

from common.errors import UserError, one_line
from common.io import read_json_object
from converters.records import GOOD, ImageRecord

SINGLE_CLASS_NAME = "defect"
TEMPLATE_FIELDS = ("defect", "category", "defect_text", "category_text")

#: ``name(category, defect) -> class name``.
Namer = Callable[[str, str], str]


def check_template(template: str) -> None:
    """Refuses a ``--names-template`` that is empty or uses anything but the plain fields.

    Attribute and index access (``{defect.__class__}``, ``{defect[0]}``), positional
    fields (``{}``) and fields nested in a format spec are refused: they reach into
    Python objects, not into the names.
    """
    fields = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
    if not template.strip():
        raise UserError(f"--names-template is empty; use some of {fields}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise UserError(f"bad --names-template '{template}': {one_line(error)}; fields: {fields}") from None
    for _, field, spec, _ in parsed:
        if field is not None and (field not in TEMPLATE_FIELDS or "{" in (spec or "")):
            shown = "{" + field + (":" + spec if spec else "") + "}"
            raise UserError(f"bad --names-template '{template}': {shown} is not one of {fields}")


def class_namer(template: str, *, single_class: bool = False) -> Namer:
    """Returns ``name(category, defect) -> class name`` after checking the template.

    Raises:
        UserError: a bad template; the namer itself raises it for a name that comes
            out empty or blank (``{defect_text}`` of a folder named ``_``) or ``good`` for a defect type.
    """
    if single_class:
        return lambda category, defect: SINGLE_CLASS_NAME
    check_template(template)

    def name(category: str, defect: str) -> str:
        text = _format(template, category, defect)
        if not text.strip():
            raise UserError(
                f"--names-template '{template}' gives an empty class name for category '{category}', "
                f"defect '{defect}'"
            )
        if text == GOOD and defect != GOOD:  # every command that calls images would call it good
            raise UserError(
                f"--names-template '{template}' names the class of category '{category}', defect "
                f"'{defect}' '{GOOD}', the call of an image without defects: choose a template that "
                "names it otherwise"
            )
        return text

    try:
        _format(template, "category", "defect")
    except (KeyError, IndexError, ValueError, TypeError) as error:
        raise UserError(f"bad --names-template '{template}': {one_line(error)}") from None
    return name


def _format(template: str, category: str, defect: str) -> str:
    """The template filled in for one category and defect type."""
    return template.format(
        defect=defect,
        category=category,
        defect_text=defect.replace("_", " "),
        category_text=category.replace("_", " "),
    )


def load_value_map(path: str | Path, *, what: str = "mask-values file") -> dict[int, str]:
    """Reads a mask-values JSON (``{"255": "contamination", "0": "good"}``) into ``{value: name}``.

    Value 0 is the background: absent, it is added as ``good``; mapped to anything else, an error.
    ``what`` names the file in errors: ``--mask-values``' file, or a layout's own map (MVTec 3D-AD's
    ``class_ids.json``).

    Raises:
        UserError: unreadable, not a JSON object, a key that is no integer >= 0, two keys of
            one value (``"255"`` and ``"0255"``), an empty name, or 0 mapped to a defect.
    """
    path = Path(path)
    data = read_json_object(path, what=what)
    if not data:
        raise UserError(f'{what} {path} must be a JSON object like {{"255": "scratch"}}')
    values: dict[int, str] = {}
    keys: dict[int, str] = {}
    for key, name in data.items():
        value = _mask_value(f"{what} {path}", key, name)
        if value in keys:
            raise UserError(
                f"{what} {path}: keys '{keys[value]}' and '{key}' are the same pixel value {value}"
            )
        keys[value], values[value] = key, name.strip()
    if values.setdefault(0, GOOD) != GOOD:
        raise UserError(
            f"{what} {path}: value 0 is the background and can only be '{GOOD}', not '{values[0]}'"
        )
    return values


def _mask_value(where: str, key: str, name: object) -> int:
    """The pixel value of one mask-values entry, after checking the entry; ``where``: the file, for errors."""
    try:
        value = int(key)
    except ValueError:
        raise UserError(f"{where}: key '{key}' is not an integer pixel value") from None
    if value < 0 or not isinstance(name, str) or not name.strip():
        raise UserError(f"{where}: entry '{key}': {name!r} needs a value >= 0 and a name")
    return value


def class_names(
    records: Sequence[ImageRecord], *, namer: Namer, value_names: dict[int, str] | None, single_class: bool
) -> list[str]:
    """Sorted class names: the ids are their positions, stable for the same inputs.

    With ``value_names`` (``--mask-values``) every category has every class of the map;
    otherwise a record's class is its defect, or each name of the value map that came
    with its data (:attr:`ImageRecord.value_names`).
    """
    if single_class:
        return [SINGLE_CLASS_NAME]
    categories = sorted({r.category for r in records})
    if value_names is not None:
        defects = {n for n in value_names.values() if n != GOOD}
        return sorted({namer(c, d) for c in categories for d in defects})
    names: set[str] = set()
    for record in records:
        if record.is_good or record.unlabelled:
            continue
        if record.value_names:
            names |= {namer(record.category, n) for _, n in record.value_names if n != GOOD}
        else:
            names.add(namer(record.category, record.defect))
    return sorted(names)
