"""One-line messages for requests the annotation app cannot read: which field, what is wrong, the value.

FastAPI's own say "Input should be a valid dictionary" of a body sent as text/plain, and "There
was an error parsing the body" (a 400) of one that is not UTF-8, nested too deeply or holding a
number of more digits than Python reads; values are echoed whole, however long. The app's error
handlers (:func:`segmentation.annotate.app.create_app`) answer 422 with these instead.
"""

from __future__ import annotations

import json
import sys

from common.errors import one_line

#: Longest piece of a malformed request (a field name, a value) quoted in its message.
QUOTE_CHARS = 40


def validation_problem(item: dict, content_type: str | None) -> str:
    """One of FastAPI's validation errors as ``where: what``, naming the field and quoting the value given."""
    kind, loc, message = item.get("type"), tuple(item.get("loc", ())), item.get("msg", "invalid")
    if kind == "json_invalid":  # loc: ("body", character offset)
        return f"body: invalid JSON at character {loc[-1]}: {item.get('ctx', {}).get('error', message)}"
    if loc == ("body",) and kind == "missing":
        return "body: missing: send a JSON object"
    if loc == ("body",) and not is_json(content_type):
        got = quoted(content_type or "none")
        return f"body: send a JSON object with Content-Type: application/json (got {got})"
    if loc == ("body",) and kind == "string_unicode" and isinstance(item.get("input"), str):
        # a key pydantic cannot read as text, as {"\\ud800": 1}: the body is an object all the same
        key = quoted(item["input"].encode("utf-8", "backslashreplace").decode("utf-8"))
        return f'body: key "{key}" is not valid text (a lone surrogate, which UTF-8 cannot encode)'
    if loc == ("body",):
        return f"body: expected a JSON object, got {quoted(_json(item.get('input')))}"
    where = ".".join(quoted(part) for part in loc if part != "body") or "body"
    value = item.get("input")
    if kind not in ("missing", "extra_forbidden") and isinstance(value, str | int | float | bool | None):
        return f"{where}: {message}, got {quoted(_json(value))}"
    return f"{where}: {message}"


def unparsable_body(cause: ValueError | RecursionError, body: bytes) -> str:
    """Why ``body`` is not JSON Python can read, as ``where: what``: not UTF-8, too deep, a huge number."""
    if isinstance(cause, UnicodeDecodeError):
        return f"body: not UTF-8: byte 0x{cause.object[cause.start]:02x} at position {cause.start}"
    if isinstance(cause, RecursionError):
        return "body: JSON nested too deeply"
    return long_number(body) or f"body: cannot be read as JSON: {quoted(cause)}"


def long_number(body: bytes) -> str | None:
    """The first integer in ``body`` with more digits than Python converts, as ``where: what``; None: none.

    >>> long_number(b'{"points": [[' + b"1" * 5000 + b', 2]]}')[:52]
    'points.0.0: a number of 5000 digits (at most 4300): '
    """
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()  # 0: no limit (Python < 3.10.7)

    def parse_int(text: str) -> int | _TooLong:
        return _TooLong(text) if limit and len(text.lstrip("-")) > limit else int(text)

    try:
        document = json.loads(body, parse_int=parse_int)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[tuple, object]] = [((), document)]
    while stack:  # depth first, in document order
        loc, value = stack.pop()
        if isinstance(value, _TooLong):
            where = ".".join(quoted(part) for part in loc) or "body"
            digits = len(value.lstrip("-"))
            return f"{where}: a number of {digits} digits (at most {limit}): {quoted(value)}"
        items = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        stack.extend(reversed([((*loc, key), item) for key, item in items]))
    return None


class _TooLong(str):
    """An integer literal with more digits than ``int()`` reads, kept as its text."""


def quoted(value: object) -> str:
    """``value`` as one line of at most :data:`QUOTE_CHARS` characters (longer ones end in ``...``).

    Characters UTF-8 cannot carry (JSON's lone surrogates, ``"\\ud800"``) become ``?``.
    """
    text = str(value).encode("utf-8", "replace").decode("utf-8")
    return one_line(text, limit=QUOTE_CHARS)


def _json(value: object) -> str:
    """``value`` as the JSON the client sent (``true``, ``null``, ``"x"``); bytes as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return json.dumps(value, ensure_ascii=False, default=str)


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this Content-Type as JSON (``application/json``, ``*/*+json``)."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))
