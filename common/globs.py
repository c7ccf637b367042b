"""Whether one part of a glob pattern could match a name, as :func:`glob.glob` reads it.

A command that writes ``overlays/<photo>.jpg`` asks whether a pattern ``--source`` could match one
of them: whether a part such as ``*.png`` or ``.*`` matches ``*.jpg``, any visible name ending in
``.jpg`` (``.*.jpg``, any hidden one, for the photos below a hidden folder a pattern names).
:func:`name_could_match` answers it exactly for fnmatch's ``*``, ``?`` and ``[...]``, by running the
pattern and the name's shape together one character at a time, with glob's hidden names
(``include_hidden=False``, as :func:`common.photo_sources.photo_files` calls it) and its case.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Sequence

#: What makes a part of a pattern a wildcard: :func:`glob.has_magic`'s characters.
GLOB_MAGIC = re.compile(r"[*?[]")

#: One character of a name: a test of it, or None for fnmatch's ``*`` (any run of characters).
Token = Callable[[str], bool] | None


def name_could_match(part: str, name: str) -> bool:
    """Whether ``glob`` would take ``name`` for the pattern ``part``, or when ``name`` is ``*<end>``,
    some visible name ``<x><end>`` with ``<x>`` not empty (``*.jpg``, ``*_mask.png``, ``*``), when it
    is ``.*<end>``, some hidden name ``.<x><end>`` with ``<x>`` not empty (``.*.jpg``).

    As :func:`glob.glob` reads a pattern: a wildcard ``part`` matches a name with a leading dot
    (hidden) only when it has one too, a part without wildcards names a file whatever its dot, and
    case counts where the platform's glob counts it (:func:`os.path.normcase`: not on Windows).

    >>> name_could_match("*.png", "*.jpg"), name_could_match("*.*", "*.jpg"), name_could_match("*", "*.jpg")
    (False, True, True)
    >>> name_could_match("*", "run"), name_could_match("*", ".run"), name_could_match(".*", ".run")
    (True, False, True)
    >>> name_could_match("*.jpg", ".*.jpg"), name_could_match(".*", ".*.jpg")
    (False, True)
    """
    part, name = os.path.normcase(part), os.path.normcase(name)
    if name.startswith(".") and GLOB_MAGIC.search(part) and not part.startswith("."):
        return False  # glob leaves hidden names out of '*', '?' and '[.]'
    if name.startswith("*"):  # a visible first character, then anything, then the fixed end
        shape: list[Token] = [lambda c: c != ".", None, *(_is(c) for c in name[1:])]
    elif name.startswith(".*"):  # a dot, a character, then anything, then the fixed end
        shape = [_is("."), lambda c: True, None, *(_is(c) for c in name[2:])]
    else:
        shape = [_is(c) for c in name]
    return _meet(_tokens(part), shape, _alphabet(part + name))


def _is(char: str) -> Callable[[str], bool]:
    return lambda c: c == char


def _tokens(part: str) -> list[Token]:
    """``part`` as fnmatch reads it (:func:`fnmatch.translate`'s reading of ``[``): one token a character."""
    tokens: list[Token] = []
    i = 0
    while i < len(part):
        char, i = part[i], i + 1
        if char == "*":
            if not tokens or tokens[-1] is not None:  # '**' is '*' within a name
                tokens.append(None)
        elif char == "?":
            tokens.append(lambda c: True)
        elif char == "[" and (end := _set_end(part, i)) is not None:
            tokens.append(re.compile(fnmatch.translate(part[i - 1 : end + 1])).match)
            i = end + 1
        else:
            tokens.append(_is(char))
    return tokens


def _set_end(part: str, start: int) -> int | None:
    """The index of the ``]`` closing a set opened before ``start``; None where ``[`` is a character."""
    end = start
    if end < len(part) and part[end] == "!":
        end += 1
    if end < len(part) and part[end] == "]":  # the set's first character
        end += 1
    end = part.find("]", end)
    return None if end < 0 else end


def _alphabet(text: str) -> list[str]:
    """Characters enough to try: every character of ``text`` and those beside it (the edges of any set
    it writes), a dot, and one it does not name. Where two tokens both take some character, one of
    these is such a character."""
    codes = {ord("."), 0xE000}
    for char in text:
        codes.update(code for code in (ord(char) - 1, ord(char), ord(char) + 1) if 0 <= code <= 0x10FFFF)
    return [chr(code) for code in sorted(codes)]


def _meet(first: Sequence[Token], second: Sequence[Token], alphabet: Sequence[str]) -> bool:
    """Whether some string matches both token lists: their automata run side by side."""
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        i, j = state
        if i == len(first) and j == len(second):
            return True
        if i < len(first) and first[i] is None:  # '*' taking no more characters
            todo.append((i + 1, j))
        if j < len(second) and second[j] is None:
            todo.append((i, j + 1))
        for char in alphabet:
            after = (_step(first, i, char), _step(second, j, char))
            if after[0] is not None and after[1] is not None:
                todo.append((after[0], after[1]))
    return False


def _step(tokens: Sequence[Token], i: int, char: str) -> int | None:
    """Where token ``i`` goes on ``char``: stays on a ``*``, moves on when it takes it, else None."""
    if i == len(tokens):
        return None
    token = tokens[i]
    if token is None:
        return i
    return i + 1 if token(char) else None
