"""Run configs: one declaration per entry point, YAML defaults, ``key=value`` overrides, saved with each run.

    python -m segmentation.train --config configs/segmentation/sam_decoder.yaml epochs=5 prompts.p_box=1.0

An entry point declares its keys once, as a :class:`Schema` of :class:`Option`
(default, type, range or choices, help). :func:`load_config` layers the
defaults, the YAML file and the overrides, and checks the result against the
declaration before anything runs: an unknown key (a typo), a wrong type
(``lr=true`` is not 1.0), a value out of range (``batch_size=0``) or a NaN is
one :class:`~common.errors.UserError` line naming the key, led by the override or
the file that set it (``override 'batch_size=0': config key 'batch_size' needs ...``).

Nested keys use dots. Values are parsed as YAML, an override's as a config
file's (``5`` is an int, ``null`` is None, ``[1, 2]`` a list); an empty value
(``key=``) is refused, not read as null. Text YAML 1.1 reads where YAML 1.2
reads a number (``1e-3``, ``08``) is that number for a key that takes a number
(its default is one, or its declaration says so), else text.
What YAML 1.1 would read otherwise than it looks is refused, in a file or an
override, naming it: an octal (``010`` is 8) or base-60 number (``1:30`` is 90),
a key given twice, an override's comment (``name=lot #7`` is ``lot``). A word it
reads as a bool or a number (``name: no``) for a key an :class:`Option` declares
as text is refused with the advice to quote it (in a shell too, for an override),
or with the choices of a key that has them; a key of no declared kind (a plain
mapping's) is given what YAML reads: detection's ``tracker=off`` is False.
A number written otherwise than Python writes it (``0x10`` is 16, ``1.0e+3`` is
1000.0, ``1_000``, ``.5``) is that number for a key that takes a number, as in a
config file; for a key of no declared kind that does not (detection's run
``name``, null by default, and ``project``) it is refused with the advice to
quote it, in a file and an override alike, where ``name: 2024`` is the run
``2024``; a declared key's check refuses it as any number. A date
(``2026-12-07``) is text, as in YAML 1.2: no key takes a date. A tag
(``!!binary``, ``!!python/...``) is refused, but for a value's kind
(``!!str 010``; in an override not the bare ``!``, which reads ``name=! 7`` as
``7``); so is YAML's syntax that reads as no text in an override, one line: an
anchor (``name=&x`` is null), a block scalar (``name=|`` is empty), a document
start (``name=---`` is null), and for a key of no declared kind a mapping or
list written without brackets (``name=a:`` is ``{'a': None}``, where a file's
``name: a:`` is refused; ``name=a:b``, with no space, is the text ``a:b`` in
both); a key declared as text refuses a mapping or a list it takes none of
(``name=x: y``) with the advice to quote it. An alias
YAML cannot resolve (``*_good``, a glob) is its text, and so are YAML 1.1's
``<<`` and ``=`` given as a value; one inside the value its anchor names
(``tags: &a [*a]``, endless) is refused, and so are aliases nested in aliases that
expand a text by over :data:`MAX_ALIASED_VALUES` values (a "billion laughs"), counted once per node.
"""

from __future__ import annotations

import copy
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from common.errors import UserError, close_match, one_line
from common.folders import path_exists
from common.io import atomic_write, expand_user

#: The checkout (or installed tree) holding ``configs/``: the shipped files' default paths are relative to it.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}


@dataclass(frozen=True)
class Option:
    """One config key: its default and what values it takes.

    Attributes:
        default: the value when nobody sets it.
        kind: ``bool``, ``int``, ``float`` (ints accepted), ``str``, ``list``, or a tuple of
            these (``(str, list)``: one name or several).
        help: what the key does, for ``--help`` and error messages.
        low, high: inclusive bounds for numbers; ``low_open`` / ``high_open`` make them
            exclusive (``> 0``, ``< 1``).
        choices: the allowed values (strings).
        nullable: None is allowed (``null`` in YAML: "off" or "pick automatically").
        pattern: a regular expression that a string value must match whole, for open sets
            that ``choices`` cannot list (``auto|cpu|mps|cuda(:[0-9]+)?``).
        multiple: an integer value must be a multiple of it (a model input side, by the backbone's stride).
    """

    default: object
    kind: type | tuple[type, ...]
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    nullable: bool = False
    pattern: str | None = None
    multiple: int | None = None

    def check(self, key: str, value: object) -> None:
        """Raises :class:`UserError` naming ``key`` when ``value`` is not allowed."""
        if value is None:
            if self.nullable:
                return
            raise UserError(f"config key '{key}' needs {self.describe()}, got null")
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if self.choices is not None and (
            value not in self.choices or not any(_is_kind(value, k) for k in kinds)
        ):
            # before the kind: train_encoder=no (False) was told to quote the word, which no choice is
            nulls = " or null" if self.nullable else ""
            choices = ", ".join(map(str, self.choices))
            raise UserError(f"config key '{key}' must be one of {choices}{nulls}, got {value!r}")
        if not any(_is_kind(value, kind) for kind in kinds):
            text = _quote_hint(value) if str in kinds else ""
            raise UserError(f"config key '{key}' needs {self.describe()}, got {value!r}{text}")
        if isinstance(value, str) and not value.strip() and self.default != "":
            # a blank name: ``Path("")`` is the working folder (``cache_dir=''`` filled it with entries)
            default = "; null gives the default" if self.nullable else ""
            got = "an empty string" if value == "" else f"a blank string {value!r}"
            raise UserError(f"config key '{key}' needs {self.describe()}, got {got}{default}")
        if self.pattern is not None and isinstance(value, str) and not re.fullmatch(self.pattern, value):
            raise UserError(f"config key '{key}' needs {self.describe()}, got {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            self._check_range(key, value)

    def _check_range(self, key: str, value: float) -> None:
        if isinstance(value, int) and abs(value) > sys.float_info.max:  # math.isnan: OverflowError
            raise UserError(f"config key '{key}' needs a finite number, got an integer over 1e308")
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"config key '{key}' needs a finite number, got {value}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            raise UserError(f"config key '{key}' needs {self.describe()}, got {value}")
        if self.multiple is not None and value % self.multiple:
            below = value // self.multiple * self.multiple
            near = [side for side in (below, below + self.multiple) if self._in_range(side)]
            are = f" ({' or '.join(map(str, near))} {'is' if len(near) == 1 else 'are'})" if near else ""
            raise UserError(f"config key '{key}' needs {self.describe()}, got {value}{are}")

    def _in_range(self, value: float) -> bool:
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        return low_ok and (self.high is None or (value < self.high if self.high_open else value <= self.high))

    def describe(self) -> str:
        """``'a number > 0'``, ``'an integer in [1, 100]'``, ``'a string or null'``..."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        text = " or ".join(_TYPE_NAMES.get(kind, kind.__name__) for kind in kinds)
        low, high = _bound_text(self.low), _bound_text(self.high)
        if self.low is not None and self.high is not None and not self.low_open:
            text += f" in [{low}, {high}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text += f" {'>' if self.low_open else '>='} {low}"
            text += f" and {'<' if self.high_open else '<='} {high}" if self.high is not None else ""
        elif self.high is not None:
            text += f" {'<' if self.high_open else '<='} {high}"
        if self.pattern is not None:
            text += f" matching '{self.pattern}'"
        if self.multiple is not None:
            text += f", a multiple of {self.multiple}"
        return text + (" or null" if self.nullable else "")


def _quote_hint(value: object) -> str:
    """How to give a key that takes text the word YAML read as a bool or a number (``name: no``, ``2024``):
    quoted, YAML reads it as text (``name: 'no'``; ``"name='no'"`` in a shell, which drops bare quotes).

    A mapping or a list (``name=x: y``, ``a:`` on the line under ``name:``, ``name=- a``), which the key takes
    none of, is what YAML made of a ``: `` or a line's last ``:``, or of a leading ``- ``: quoted, it is text.

    >>> _quote_hint(False), _quote_hint(2024), _quote_hint(None)
    (' (YAML reads no, off and false as False: quote the word to mean text)', ' (quote it to mean text)', '')
    >>> _quote_hint({"x": "y"})
    ' (YAML reads it as a mapping: quote it to mean text)'
    """
    if isinstance(value, bool):
        words = "yes, on and true" if value else "no, off and false"
        return f" (YAML reads {words} as {value}: quote the word{_QUOTE_END}"
    if isinstance(value, Mapping | list | tuple):
        kind = "a mapping" if isinstance(value, Mapping) else "a list"
        return f" (YAML reads it as {kind}: quote it{_QUOTE_END}"
    return f" (quote it{_QUOTE_END}" if isinstance(value, int | float) else ""


#: How the quote-it advice ends: :func:`with_source` adds the shell's form there for an override.
_QUOTE_END = " to mean text)"


def _bound_text(bound: float | None) -> str:
    # Integers in full (a seed's 4294967295, not 4.29497e+09); floats short (0.0001, 1e-08).
    return str(bound) if bound is None or isinstance(bound, int) else f"{bound:g}"


def _is_kind(value: object, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list | tuple)
    return isinstance(value, kind)


class Schema(dict):
    """An entry point's keys, ``{name: Option | Schema}``; a nested Schema is a section (``loss.x``)."""

    def defaults(self) -> dict:
        """The config when nobody sets anything."""
        return {
            key: value.defaults() if isinstance(value, Schema) else copy.deepcopy(value.default)
            for key, value in self.items()
        }

    def check(self, config: Mapping, *, where: str = "") -> None:
        """Checks every declared key of ``config``; unknown keys are errors too."""
        for key in config:
            if key not in self:
                raise UserError(unknown_key_text(f"{where}{key}", self))
        for key, option in self.items():
            value = config.get(key)
            if isinstance(option, Schema):
                if not isinstance(value, Mapping):
                    raise UserError(_mapping_needed(f"{where}{key}", option, value))
                option.check(value, where=f"{where}{key}.")
            else:
                option.check(f"{where}{key}", value)

    def needs(self, path: str) -> str | None:
        """What the key ``path`` (``loss.dice``) takes, as its :class:`Option` says it; None if undeclared."""
        option: Option | Schema | None = self
        for key in path.split("."):
            option = option.get(key) if isinstance(option, Schema) else None
        return option.describe() if isinstance(option, Option) else None


def merge(
    defaults: Mapping,
    updates: Mapping,
    *,
    where: str = "",
    needs: Callable[[str], str | None] | None = None,
    written: Mapping[str, str] | None = None,
) -> dict:
    """Deep-merges ``updates`` into a copy of ``defaults``; unknown keys are errors.

    Text for a key whose default is a number, or that ``needs(key)`` says takes a number (``max_steps``,
    null by default: ``an integer >= 1 or null``), is read as one (``08`` and ``1e-3``, text to YAML 1.1).
    A word (``epochs=abc``) for such a key is refused as needing what ``needs(key)`` says the key takes
    (:meth:`Schema.needs`), else by its default: ``an integer`` for an int, ``a number`` for a float.
    ``written``: the values' text as written by dotted key, where YAML may read it otherwise: for a key
    of no declared kind, ``name=0x10`` is refused (:func:`_read_otherwise`); ``epochs=0x10`` is 16.
    """
    merged = copy.deepcopy(dict(defaults))
    for key, value in updates.items():
        path = f"{where}{key}"
        if key not in merged:
            raise UserError(_dotted_key_text(path, key, merged) or unknown_key_text(path, merged))
        if isinstance(merged[key], dict):
            if not isinstance(value, Mapping):
                raise UserError(_mapping_needed(path, merged[key], value))
            merged[key] = merge(merged[key], value, where=f"{path}.", needs=needs, written=written)
        else:
            text = (written or {}).get(path)
            wanted = needs(path) if needs is not None and (isinstance(value, str) or text) else None
            number = _is_number(merged[key]) or _names_number(wanted)  # max_steps: null, an integer
            otherwise = None if number or wanted is not None else _read_otherwise(path, value, text)
            if otherwise:
                raise UserError(otherwise)
            if isinstance(value, str) and number:
                value = _number(value)  # YAML 1.1 reads "1e-3" (no dot) and "08" as strings
            if number and isinstance(value, str):
                raise UserError(
                    f"config key '{path}' needs {wanted or _number_kind(merged[key])}, got {value!r}"
                )
            merged[key] = value
    return merged


def _dotted_key_text(path: str, key: object, known: Mapping) -> str | None:
    """The error for a file's dotted key (``prompts.p_box: 1.0``, as an override is written) whose first
    part is a section: it was "unknown config key" with ``prompts`` among the known keys. None otherwise.

    >>> _dotted_key_text("loss.weight", "loss.weight", {"loss": {}}).partition(": a config")[0]
    "unknown config key 'loss.weight'"
    >>> _dotted_key_text("lr.x", "lr.x", {"lr": 1}) is None
    True
    """
    head, dot, rest = str(key).partition(".")
    if not dot or not isinstance(known.get(head), dict):
        return None
    return (
        f"unknown config key '{path}': a config file nests a section's keys, '{head}:' with '  {rest}: ...' "
        f"on the line below (a dotted key is an override's, {path}=...)"
    )


def _read_otherwise(path: str, value: object, text: str | None) -> str | None:
    """Why the key ``path``, of no declared kind and no number default, may not have ``value``, which YAML
    read otherwise than ``text``, as written: a number (``0x10``, ``1.0e+3``, ``1_000``, ``.5``: detection's
    run folder ``16`` or ``1000.0``), or an override's mapping or list (``name=a:`` is ``{'a': None}``,
    a file's ``name: a:`` is refused); None if it reads as written or is none of these.

    >>> _read_otherwise("name", 16, "0x10").partition(" (")[0]
    "config key 'name' got '0x10', which YAML reads as the number 16"
    >>> _read_otherwise("name", 2024, "2024") is None
    True
    """
    if text is None:
        return None
    if _is_number(value) and str(value) != text:
        read, write = f"the number {value}", f"write {value} for that number, or quote it"
    elif isinstance(value, dict | list):
        read, write = f"{'a mapping' if isinstance(value, dict) else 'a list'}, {value!r}", "quote it"
    else:
        return None
    return f"config key '{path}' got '{text}', which YAML reads as {read} ({write}{_QUOTE_END}"


def _names_number(needs: str | None) -> bool:
    """Whether ``needs`` (:meth:`Option.describe`) names a number and no other kind than null.

    >>> _names_number("an integer >= 1 or null"), _names_number("a string or an integer"), _names_number(None)
    (True, False, False)
    """
    others = [_TYPE_NAMES[kind] for kind in (bool, str, list)]
    return (
        needs is not None
        and needs.startswith(("an integer", "a number"))
        and not any(other in needs for other in others)
    )


def _mapping_needed(path: str, section: Mapping, value: object) -> str:
    """``config key 'loss' needs a mapping of its keys (kind, weight), got null``: a section given a value.

    ``loss: null`` or ``loss=3`` said only "needs a mapping, got None": neither YAML's word nor the keys
    that go under it.
    """
    got = "null" if value is None else repr(value)
    keys = ", ".join(sorted(map(str, section)))
    return f"config key '{path}' needs a mapping of its keys ({keys}), got {got}"


def _number_kind(default: int | float) -> str:
    return "an integer" if isinstance(default, int) else "a number"


def unknown_key_text(path: str, known: Mapping) -> str:
    """``unknown config key 'epoch' (did you mean 'epochs'?; known here: ...)``: a typo is named first.

    The closest known key is offered before the full list, which for ``detection.train`` is ultralytics'
    150-odd keys, too long to spot ``epochs`` in.
    """
    key = path.rpartition(".")[2]
    names = sorted(map(str, known))
    close = close_match(key, names)
    hint = f"did you mean '{path[: len(path) - len(key)]}{close}'?; " if close else ""
    return f"unknown config key '{path}' ({hint}known here: {', '.join(names)})"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(text: str) -> int | float | str:
    """``"1e-3"`` -> 0.001: YAML 1.1 (PyYAML) reads exponents without a dot as strings."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def override_keys(items: Sequence[str]) -> set[str]:
    """The top-level keys ``key=value`` overrides set (``prompts.p_box=1``: ``prompts``), read as
    :func:`parse_overrides` reads them, for commands that refuse some keys before loading their config.

    Raises:
        UserError: as :func:`parse_overrides`.
    """
    return set(parse_overrides(items))


def parse_overrides(items: Sequence[str]) -> dict:
    """``["epochs=5", "prompts.p_box=1"]`` -> ``{"epochs": 5, "prompts": {"p_box": 1}}``.

    An empty value (``cache_dir=``, as ``cache_dir=$CACHE`` gives with ``CACHE`` unset) is refused:
    YAML reads it as null, which put the default back without a word. ``key=null`` (or ``key=~``)
    unsets a key; ``key=''`` as the program receives it (``"key=''"`` in a shell) is the empty string, and
    a quoted number (``"device='0'"``, ``"name='2024'"``) is text, as in a config file (a key whose default
    is a number still reads it as one: :func:`merge`). Text YAML 1.1 reads so (a plain exponent ``1e-3``,
    ``08``) stays text, as a config file's value: :func:`merge` reads it as a number for a number key.

    Raises:
        UserError: an item that is not ``key=value`` or has an empty value; a value that gives a key twice
            or that YAML reads otherwise than it looks (:func:`_override_value`).
    """
    return _parse_overrides(items)[0]


def _parse_overrides(items: Sequence[str]) -> tuple[dict, dict[str, str]]:
    """:func:`parse_overrides`, and the text of each value YAML may read otherwise than it is written,
    by its dotted key, for :func:`merge` (:func:`_written_texts`)."""
    result: dict = {}
    written: dict[str, str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()  # " data=x" (quoted in a script): the key data, as override_keys reads it
        if not sep or not key or any(not part for part in key.split(".")):
            raise UserError(f"override '{item}' is not key=value")
        if not text.strip():
            raise UserError(
                f"override '{item}' has no value (an unset shell variable?): "
                f"write {key}=null to unset '{key}' explicitly"
            )
        value, read = _override_value(item, text)
        written.update(_written_texts(read, key))
        if isinstance(read, yaml.CollectionNode) and not read.flow_style and "\n" not in text.strip():
            written[key] = text.strip()  # name=a: is {'a': None}, where a file's "name: a:" is refused
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override '{item}' sets a key inside '{part}', which was given a value")
        node[parts[-1]] = value
    return result, written


def _override_value(item: str, text: str) -> tuple[object, yaml.Node | None]:
    """The value of the override ``item`` (``key=text``): ``text`` read as YAML (:func:`parse_overrides`),
    and its node (None for text YAML cannot read, which is that text: ``*.png``, ``*x``, ``[1,``).

    Raises:
        UserError: ``text`` is nested too deeply for PyYAML's recursion, gives a key twice, holds a YAML
            1.1 octal or base-60 number, a tag, or YAML's syntax that reads as no text where an override
            is one line: a comment (``name=lot #7`` was ``lot``, ``name=#7`` null), an anchor (``name=&x``
            was null), a block scalar (``name=|`` was the empty string) or a document start (``name=---``
            was null); each with the quoted form.
    """
    key, plain = item.partition("=")[0].strip(), text.strip()
    try:
        value, node = _load(text)
    except DuplicateKeyError as error:  # {a: 1, a: 2}: the first would be lost silently
        raise UserError(f"override '{item}': key '{error.key}' is given twice") from None
    except Yaml11NumberError as error:  # seed=010 is not 8, and not 10 either
        # quoted as typed in a shell, name='12:30' reaches the program as name=12:30: the shell's form
        shell = f" (\"{key}='{plain}'\" in a shell)" if error.text == plain else ""
        raise UserError(f"override '{item}': {error.problem}{shell}") from None
    except EndlessAliasError as error:
        raise UserError(f"override '{item}': {error.problem}") from None
    except TagError as error:  # x=!!python/name:os.system was that text, a file's line is refused
        raise UserError(f"override '{item}': {error.problem}{_shell_form(item)}") from None
    except RecursionError:  # PyYAML composes and builds a value by recursion: a RecursionError traceback
        shown = f"'{item}'" if len(item) <= 80 else f"'{item[:40]}...' ({len(item)} characters)"
        raise UserError(f"override {shown}: {_TOO_DEEP}") from None
    except yaml.YAMLError:
        return text, None
    comment = plain if node is None else text[node.end_mark.index :].strip()  # all a value leaves
    if comment:
        raise UserError(
            f"override '{item}': YAML reads '{comment}' as a comment and drops it: leave it out, or quote "
            f"the value to mean text{_shell_form(item)}"
        )
    syntax = _no_text_syntax(text, node)
    if syntax:
        raise UserError(
            f"override '{item}': YAML reads {syntax}: quote the value to mean text{_shell_form(item)}"
        )
    return value, node


#: Why YAML nested past the reader's recursion (``[[[...]]]`` a thousand deep) is refused.
_TOO_DEEP = "nested too deeply (lists or mappings inside one another, past what the YAML reader takes)"


def _shell_form(item: str) -> str:
    """`` ("name='lot #7'" in a shell)``: the quoted form of the override ``item`` a shell passes on;
    empty when its value holds a quote already.

    >>> print(_shell_form("name=&x").strip()); _shell_form("name='a'")
    ("name='&x'" in a shell)
    ''
    """
    key, _, text = item.partition("=")
    plain = text.strip()
    return "" if "'" in plain or '"' in plain else f" (\"{key.strip()}='{plain}'\" in a shell)"


def _no_text_syntax(text: str, node: yaml.Node | None) -> str:
    """What YAML's syntax in the one-line override value ``text`` (composed as ``node``) reads as, where
    it reads as no text: an anchor (``&x``: null), a tag a config does not take (``! a``: ``a``), a block
    scalar's start (``|``: the empty string), a document start (``---``: null); empty for none of these.

    >>> _no_text_syntax("&x", None), _no_text_syntax("a & b", None)
    ("'&x' as an anchor, a name for the value after it", '')
    """
    plain = text.strip()
    if re.match(r"---(\s|$)", plain):
        return "'---' as the start of a document, not as text"
    events = [
        event for event in yaml.parse(text, Loader=UniqueKeyLoader) if isinstance(event, yaml.NodeEvent)
    ]
    anchors = [event.anchor for event in events if not isinstance(event, yaml.AliasEvent) and event.anchor]
    if anchors:
        return f"'&{anchors[0]}' as an anchor, a name for the value after it"
    tags = [event.tag for event in events if getattr(event, "tag", None) and event.tag not in _TAKEN_TAGS]
    if tags:
        return _tag_problem(tags[0]).removeprefix("YAML reads ").partition(": quote")[0]
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">") and "\n" not in plain:
        return f"'{plain}' as the start of a block of text on the lines below, which an override has none of"
    return ""


class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives one key twice, which PyYAML reads as the last value with the first dropped silently."""

    def __init__(self, key: str, line: int, first_line: int) -> None:
        super().__init__(key, line, first_line)
        self.key, self.line, self.first_line = key, line, first_line

    def __str__(self) -> str:
        return f"key '{self.key}' is given twice, on lines {self.first_line} and {self.line}: keep one"


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping, at any depth.

    Two ``epochs:`` in a config, or two ``0:`` under ``names:``, load as the last one: the first is
    lost without a word. Keys a ``<<: *anchor`` merge brings in may still be overridden (what merges
    are for); only the keys written in the mapping itself must differ. It also refuses YAML 1.1's
    octal and base-60 numbers (:func:`_construct_number`) and tags no config value takes
    (:func:`_refuse_tag`), and reads a date as text.
    """

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._checked: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # runs on every mapping before its merges are spliced in; once per node, as later calls see them
        if id(node) not in self._checked:
            self._checked.add(id(node))
            self._check_unique(node)
        super().flatten_mapping(node)

    def _check_unique(self, node: yaml.MappingNode) -> None:
        first_lines: dict[object, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a list as a key is refused by PyYAML itself (unhashable)
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_lines:
                raise DuplicateKeyError(key_node.value, line, first_lines[key])
            first_lines[key] = line


class Yaml11NumberError(yaml.constructor.ConstructorError):
    """A plain number YAML 1.1 reads otherwise than it looks: ``010`` is octal 8, ``1:30`` base 60 (90); or
    an integer over 1e308, which no key takes. ``text``: the number as written (empty for the last)."""

    text = ""


def _construct_number(loader: UniqueKeyLoader, node: yaml.ScalarNode) -> int | float:
    """YAML 1.1's int or float of ``node``; refused when it is an octal whose digits read otherwise in
    decimal (``010``, not ``07``), a base-60 number (``1:30``), or an integer over 1e308 (a float's is
    inf, which a key's check refuses): it stopped with an OverflowError in a number key's check, or a
    ValueError over Python's 4300 digits.

    ``epochs: 010`` trained 8 epochs and ``seed=1:30`` seeded 90, without a word: YAML 1.2, and any
    reader, takes them for 10 and a time or text.
    """
    is_int = node.tag.endswith(":int")
    text = node.value.replace("_", "")
    try:
        value = loader.construct_yaml_int(node) if is_int else loader.construct_yaml_float(node)
        decimal = int(text) if is_int and text.lstrip("+-").isdigit() else value
    except ValueError:  # over Python's 4300 digits (sys.get_int_max_str_digits): a traceback
        value = decimal = math.inf
    if is_int and abs(value) > sys.float_info.max:  # a float's is inf: the check of a key refuses it
        problem = (
            f"'{node.value[:12]}...' ({len(node.value)} characters) reads as a number larger than any a "
            "config takes (over 1e308): quote it for text"
        )
        raise Yaml11NumberError(None, None, problem, node.start_mark)
    octal = is_int and decimal != value  # a float's .nan is no number it equals
    if node.style is None and (octal or ":" in text):
        read, write = (
            (f"octal {value}", f"{value} or {decimal} without the leading zero")
            if octal
            else (f"the base-60 number {value}", f"{value} for that number")
        )
        problem = f"'{node.value}' reads as {read} in YAML 1.1: write {write}, or quote it for text"
        error = Yaml11NumberError(None, None, problem, node.start_mark)
        error.text = node.value
        raise error
    return value


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_number)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", _construct_number)

# A date is text: no key takes a date, and YAML 1.2 reads 2026-12-07 as text (YAML 1.1: datetime.date,
# which made a run folder of no text a command checks, in a file and an override alike).
UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class TagError(yaml.constructor.ConstructorError):
    """A tag no config value is read with: ``!!binary`` (bytes), ``!!set``, ``!!timestamp``, ``!!python/...``
    (refused by PyYAML's safe loader as an unknown tag, in words that did not say to quote it)."""


#: The tags an override may name (``!!str 010``): those a config's values are read with.
_TAKEN_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null", "seq", "map")
)


def _tag_problem(tag: str) -> str:
    """Why the tag ``tag`` is refused, in the short form it is written in.

    >>> _tag_problem("tag:yaml.org,2002:binary").partition(",")[0]
    "YAML reads '!!binary' as a tag"
    """
    tag = tag.replace("tag:yaml.org,2002:", "!!", 1)
    return f"YAML reads '{tag}' as a tag, which a config does not take: quote the value to mean text"


def _untagged(node: yaml.ScalarNode) -> bool:
    """Whether the plain scalar ``node`` was written as its value alone, with no tag before it."""
    return node.end_mark.index - node.start_mark.index == len(node.value)


def _refuse_tag(loader: UniqueKeyLoader, node: yaml.Node) -> str:
    """Refuses a tag no config value is read with (:class:`TagError`); YAML 1.1's implicit ``<<`` and ``=``
    given as a value (no constructor: a file's ``key: <<`` was refused as a tag) are their text."""
    implicit = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")
    if isinstance(node, yaml.ScalarNode) and node.tag in implicit and _untagged(node):
        return loader.construct_scalar(node)
    raise TagError(None, None, _tag_problem(node.tag), node.start_mark)


for _tag in ("binary", "set", "omap", "pairs", "timestamp"):
    UniqueKeyLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)
UniqueKeyLoader.add_constructor(None, _refuse_tag)  # any other tag PyYAML's safe loader does not know


def _load(text: str) -> tuple[object, yaml.Node | None]:
    """``text`` read as :class:`UniqueKeyLoader` reads it, and its node (None for no document), merges
    spliced in: :func:`_written_texts` reads the numbers as written from it."""
    loader = UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_endless(node, set(), set())
            _refuse_alias_bomb(node)
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


class EndlessAliasError(yaml.constructor.ConstructorError):
    """An alias inside the value its anchor names (``tags: &a [*a]``): YAML reads an endless value, which
    was taken as a list holding itself and stopped writing the run's config with a RecursionError (a
    mapping's, ``loss: &a {x: *a}``, as it was read)."""


def _refuse_endless(node: yaml.Node, inside: set[int], done: set[int]) -> None:
    """Raises :class:`EndlessAliasError` where ``node`` holds itself through an alias; ``inside``: the
    nodes it stands in, ``done``: those checked (an alias to a value written before is no loop)."""
    if id(node) in inside:
        problem = "an alias stands inside the value its anchor names, which YAML reads as endless"
        raise EndlessAliasError(None, None, problem, node.start_mark)
    if id(node) in done or not isinstance(node, yaml.CollectionNode):
        return
    inside.add(id(node))
    for child in node.value:
        for each in child if isinstance(child, tuple) else (child,):
            _refuse_endless(each, inside, done)
    inside.discard(id(node))
    done.add(id(node))


#: The most values a YAML text's aliases may add to it, expanded: a config's handful of reused values is far
#: under it; nested aliases (each one's value holding ten of the one before, a "billion laughs") are over it.
MAX_ALIASED_VALUES = 100_000


class AliasBombError(EndlessAliasError):
    """Aliases that expand a small text into more values than :data:`MAX_ALIASED_VALUES` (nested, each
    value holding several aliases of the one before): loaded as shared values, they were written out in
    full by :func:`save_config` (and walked by each check), a billion values from a few lines."""


def _refuse_alias_bomb(node: yaml.Node) -> None:
    """Raises :class:`AliasBombError` where ``node``'s aliases expand it by over :data:`MAX_ALIASED_VALUES`
    values; each node is counted once (:func:`_expanded_count`), however often its aliases stand."""
    counts: dict[int, int] = {}
    added = _expanded_count(node, counts) - len(counts)  # a text without aliases: each node once
    if added > MAX_ALIASED_VALUES:
        problem = (
            f"its aliases expand it to over {MAX_ALIASED_VALUES} more values than are written (aliases "
            "nested in aliases): write the values out, or alias fewer times"
        )
        raise AliasBombError(None, None, problem)  # the whole text's count: no one line to point at


def _expanded_count(node: yaml.Node, counts: dict[int, int]) -> int:
    """How many values ``node`` stands for with each alias in it expanded: keys and values of its mappings,
    items of its lists, itself; ``counts``: each node's count once made (memoised: linear in the nodes)."""
    if id(node) not in counts:
        children = node.value if isinstance(node, yaml.CollectionNode) else ()
        flat = [each for child in children for each in (child if isinstance(child, tuple) else (child,))]
        counts[id(node)] = 1 + sum(_expanded_count(each, counts) for each in flat)
    return counts[id(node)]


def _written_texts(node: yaml.Node | None, path: str = "") -> dict[str, str]:
    """The text of each plain number in ``node``'s mappings by its dotted key (``path`` that of ``node``
    itself), for :func:`merge` to tell a number that YAML read otherwise than written (``0x10``, 16).

    >>> _written_texts(_load("a: 0x10\\nb: {c: 1.0e+3, d: x}\\ne: [1]")[1])
    {'a': '0x10', 'b.c': '1.0e+3'}
    """
    if isinstance(node, yaml.ScalarNode):
        number = node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and node.style is None
        number = number and _untagged(node)  # !!float 1 says the number is meant
        return {path: node.value} if number and path else {}
    texts: dict[str, str] = {}
    for key_node, value_node in node.value if isinstance(node, yaml.MappingNode) else ():
        if isinstance(key_node, yaml.ScalarNode):
            texts.update(_written_texts(value_node, f"{path}.{key_node.value}" if path else key_node.value))
    return texts


def colon_value_hint(error: BaseException) -> str:
    """How to write the value PyYAML refused as 'mapping values are not allowed here', when the line's
    value ends with ``:`` or holds ``": "`` (``device: cuda:``, ``name: run: 1``): quoted, it is text.
    The quoting is YAML's single quotes (``'`` doubled), which reads back the very text typed.
    An empty string for any other error.

    >>> colon_value_hint(yaml.YAMLError())
    ''
    """
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or ""
    if mark is None or not isinstance(mark.buffer, str) or not problem.startswith("mapping values"):
        return ""
    lines = mark.buffer.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    key, colon, value = line.strip().removeprefix("- ").partition(": ")
    value = re.split(r"\s#", value, maxsplit=1)[0].strip()  # a comment after it is no part of it
    if not colon or not (value.endswith(":") or ": " in value) or value[:1] in "'\"[{":
        return ""
    quoted = "'" + value.replace("'", "''") + "'"  # single quotes read no escapes: runs\new stays as typed
    return f" (a value ending in ':' or holding ': ' must be quoted: {key}: {quoted})"


def _tab_hint(error: BaseException) -> str:
    """What to do about a tab PyYAML refused ("found character '\\t' that cannot start any token"), where
    it takes spaces: indenting a key, after a ``:`` or a ``-``, and in a plain value; empty for another
    error.

    >>> _tab_hint(yaml.YAMLError())
    ''
    """
    if "'\\t'" not in (getattr(error, "problem", None) or ""):
        return ""
    return " (a tab: YAML indents and separates with spaces; write spaces, or quote a value holding a tab)"


def read_yaml(path: str | Path, *, what: str = "config") -> dict:
    """A YAML mapping from ``path`` (a file of no document, empty or only comments: ``{}``); a one-line
    error naming ``what`` otherwise (a document that is no mapping, ``false`` or ``[]`` too).

    A key given twice in one mapping is an error (:class:`UniqueKeyLoader`), not the last one silently.
    """
    return _read_yaml(path, what)[0]


def _read_yaml(path: str | Path, what: str) -> tuple[dict, dict[str, str]]:
    """:func:`read_yaml`, and the text of each plain number in it as written (:func:`_written_texts`)."""
    path = Path(path)
    try:
        data, node = _load(path.read_text(encoding="utf-8"))  # YAML's own
    except DuplicateKeyError as error:
        raise UserError(f"{what} {path}: {error}") from None
    except OSError as error:  # as common.io.read_json: "[Errno 21] Is a directory: '<path>'" named it twice
        raise UserError(f"cannot read {what} {path}: {error.strerror or one_line(error)}") from None
    except RecursionError:  # PyYAML composes and builds a value by recursion: a RecursionError traceback
        raise UserError(f"cannot read {what} {path}: {_TOO_DEEP}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        # the text was read from a string: PyYAML's 'in "<unicode string>",' names no file
        text = one_line(re.sub(r'\s+in "<unicode string>",', ",", str(error)))
        advice = " (not UTF-8 text: save it as UTF-8)" if isinstance(error, UnicodeDecodeError) else ""
        hint = colon_value_hint(error) + _tab_hint(error)
        raise UserError(f"cannot read {what} {path}: {text}{advice}{hint}") from None
    if data is None:  # no document (empty, or only comments); a false, 0, [] or '' is one, and no mapping
        return {}, {}
    if not isinstance(data, Mapping):
        raise UserError(f"{what} {path} must be a YAML mapping (key: value lines), not {_kind_text(data)}")
    return dict(data), _written_texts(node)


def _kind_text(data: object) -> str:
    """What a YAML document that is no mapping holds, for the error that refuses it.

    >>> _kind_text([1]), _kind_text("runs/x"), _kind_text(3), _kind_text(True)
    ('a list', "the text 'runs/x'", 'the number 3', 'the value True')
    """
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return f"the text {one_line(repr(data))[:60]}"
    if isinstance(data, int | float) and not isinstance(data, bool):
        return f"the number {data}"
    return f"the value {data!r}"


def load_config(
    defaults: Schema | Mapping,
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    note_empty: bool = True,
    flags: Mapping[str, str] | None = None,
    needs: Callable[[str], str | None] | None = None,
) -> dict:
    """Defaults, then the YAML file, then the command-line overrides; checked when given a :class:`Schema`.

    ``path`` not found from the working folder is read from the project (:func:`project_path`): the
    README's ``--config configs/...yaml`` works from any folder. A bad value is named with where it
    was set (:func:`with_source`): ``override 'batch_size=0': ...`` or ``config file X: ...``.
    A file that sets no key (empty, or only comments: a truncated copy, the wrong file) gives the
    defaults with a ``note:`` on stderr saying so; ``note_empty=False`` for a second read of it.
    ``flags``: the overrides a command made of its own flags, by the flag as typed
    (``{"backbone=foo": "--backbone foo"}``), which a bad value's message names instead.
    ``needs``: what a key takes, which says the keys that read text as a number (:func:`merge`) and is
    named for a word given to one; a Schema's own by default. Any other key's value is read as a config
    file reads it: ``name=1e3`` (null by default) is the text ``1e3``.
    """
    schema = defaults if isinstance(defaults, Schema) else None
    if needs is None and schema is not None:
        needs = schema.needs
    config = schema.defaults() if schema is not None else copy.deepcopy(dict(defaults))
    if path is not None:
        file = project_path(path)
        try:
            given, written = _read_yaml(file, "config")
            _FILES_READ[Path(path)] = (file, given)
            config = merge(config, given, needs=needs, written=written)
        except UserError as error:
            # Name the file: "unknown config key 'path'" alone did not say that --config got a data.yaml.
            message = str(error)
            raise UserError(message if str(file) in message else f"config file {file}: {message}") from None
        if not given and note_empty:  # it ran on the defaults without a word
            also = " and the overrides" if overrides else ""
            print(
                f"note: config file {file} sets no keys (it is empty or only comments): "
                f"the defaults{also} are used",
                file=sys.stderr,
                flush=True,
            )
    try:
        given, written = _parse_overrides(overrides)
        config = merge(config, given, needs=needs, written=written)
        if schema is not None:
            schema.check(config)
    except UserError as error:
        raise with_source(error, path, overrides, flags) from None
    return config


#: What each ``--config`` file set when :func:`load_config` read it, by the path as given, with the file
#: it resolved to: :func:`with_source` names the source from this, not from a re-read of a file that may
#: have changed or gone since (``detection.train`` names errors raised after a weights download).
_FILES_READ: dict[Path, tuple[Path, dict]] = {}

#: The key a check's message names: ``config key 'prompts.p_box' needs ...``.
_NAMED_KEY = re.compile(r"config key '([^']+)'")


def with_source(
    error: UserError,
    path: str | Path | None,
    overrides: Sequence[str],
    flags: Mapping[str, str] | None = None,
) -> UserError:
    """``error`` led by where the value of the config key it names was set, as :func:`load_config` layers.

    ``override 'batch_size=0': config key 'batch_size' needs ...`` when an override set the key (or
    its section), else ``config file X: ...`` when the file at ``path`` did; ``error`` itself when
    the value is a default, or the message names no key or already its source. An override a
    command made of a flag is named as ``flags`` gives it (``--device gpu: config key 'device' ...``).
    The file's keys are those :func:`load_config` read from ``path`` (a file not loaded names nothing).
    """
    message = str(error)
    named = _NAMED_KEY.search(message)
    if named is None or message.startswith(("override '", "config file ")):
        return error
    key = named.group(1)
    for item in reversed(overrides):  # the last one wins, as in parse_overrides
        given = item.partition("=")[0].strip()
        if key == given or key.startswith(given + ".") or given.startswith(key + "."):
            typed = (flags or {}).get(item)
            if typed:
                return UserError(f"{typed}: {message}")
            return UserError(
                f"override '{item}': {_shell_quoted(message, item) if key == given else message}"
            )
    if path is not None and Path(path) in _FILES_READ:
        file, node = _FILES_READ[Path(path)]
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return error
            node = node[part]
        return UserError(f"config file {file}: {message}")
    return error


def _shell_quoted(message: str, item: str) -> str:
    """``message`` with the form the quote-it advice of :func:`_quote_hint` takes in a shell, for the
    override ``item`` that set the key: ``name='no'`` as typed reaches the program as ``name=no``.

    >>> print(_shell_quoted("got False (... quote the word to mean text)", "name=no"))
    got False (... quote the word to mean text: "name='no'" in a shell)
    """
    key, _, text = item.partition("=")
    text = text.strip()
    if not message.endswith(_QUOTE_END) or "'" in text or '"' in text:
        return message
    return f"{message[:-1]}: \"{key.strip()}='{text}'\" in a shell)"


def save_config(config: Mapping, path: str | Path) -> None:
    """Writes the resolved config (``args.yaml`` in the run folder), atomically, as :func:`yaml_text`."""
    atomic_write(path, yaml_text(config))


def yaml_text(data: Mapping) -> str:
    """YAML text of ``data`` in its own key order, paths as strings, to be written as UTF-8: a path with
    an ``é`` reads as written, not as ``"\\u00e9"`` (:func:`read_yaml` and ultralytics' ``YAML.load``
    read it back as UTF-8). Text that does not read back so (a NEL, U+0085, in a key or value: PyYAML
    writes it raw inside quotes and reads it as a line break) is written with escapes instead; a NaN
    (``.nan``) reads back as one (:func:`_same`), so it does not make the rest escaped."""
    plain = _plain(data)
    text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    if _same(yaml.safe_load(text), plain):
        return text
    return yaml.safe_dump(plain, sort_keys=False)


def _same(read: object, written: object) -> bool:
    """``read == written``, nested, with a NaN equal to a NaN (``==`` says a NaN read back differs).

    >>> _same({"a": [float("nan"), "é"]}, {"a": [float("nan"), "é"]}), _same({"a": "é"}, {"a": "e"})
    (True, False)
    """
    if isinstance(read, dict) and isinstance(written, dict):
        return read.keys() == written.keys() and all(_same(read[key], written[key]) for key in read)
    if isinstance(read, list) and isinstance(written, list):
        return len(read) == len(written) and all(map(_same, read, written))
    if isinstance(read, float) and isinstance(written, float) and math.isnan(read) and math.isnan(written):
        return True
    return read == written


def _plain(value):
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def project_path(path: str | Path) -> Path:
    """``path`` as given if it exists (relative to the working folder), else relative to this project.

    The configs name shipped files by project-relative paths (``configs/detection/augment.yaml``):
    run from another folder, those resolve to the project's copy, not to nothing.
    """
    path = expand_user(path)
    # path_exists: one here that cannot be looked for is named as such; Python 3.13's Path.exists (False
    # there) silently gave the project's copy instead of the user's file
    if path.is_absolute() or path_exists(path) or not (PROJECT_ROOT / path).exists():
        return path
    return PROJECT_ROOT / path


def text_override(key: str, value: object) -> str:
    """The override ``key=value`` that sets ``key`` to the text of ``value`` as given: for an override a
    command makes of its own flag (``--data``, ``--backbone``), which the user typed as text, not as YAML.

    Plain, ``key={value}`` read ``x #7`` as ``x`` with a comment, ``010`` as an octal number and
    ``12:30`` as a base-60 one, and refused them; YAML's single quotes (``'`` doubled) read no escapes
    and give back the very text; one they would fold (a line break) is written double-quoted, escaped.

    >>> text_override("data", "lot #7"), text_override("name", "it's 010")
    ("data='lot #7'", "name='it''s 010'")
    """
    text = str(value)
    quoted = "'" + text.replace("'", "''") + "'"
    try:
        same = yaml.safe_load(quoted) == text
    except yaml.YAMLError:  # a character YAML takes nowhere unescaped (a control character)
        same = False
    if not same:
        quoted = yaml.safe_dump(text, default_style='"', width=math.inf).rstrip("\n")
    return f"{key}={quoted}"
