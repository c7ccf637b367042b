from __future__ import annotations

import fnmatch
import itertools
import random

import pytest

from common.globs import name_could_match


@pytest.mark.parametrize(
    ("part", "name", "expected"),
    [
        ("*.png", "*.jpg", False),  # the suffix counts
        ("*.*", "*.jpg", True),
        ("*", "*.jpg", True),
        ("*.[jp][pn]g", "*.jpg", True),
        ("*.[!j]pg", "*.jpg", False),
        ("*.jp?", "*.jpg", True),
        ("?????", "*.jpg", True),  # a one-letter name
        ("????", "*.jpg", False),  # the name before .jpg is never empty
        ("*_mask.png", "*.png", True),  # a photo named x_mask
        ("*_mask.png", "*_mask.png", True),
        ("*.jpeg", "*.jpg", False),
        ("a.jpg", "*.jpg", True),  # no wildcard: that very name
        (".*", "*.jpg", False),  # '*.jpg': a visible name
        (".*", ".*.jpg", True),  # '.*.jpg': a hidden one, a photo's below a hidden folder a pattern names
        (".*.jpg", ".*.jpg", True),
        (".*.png", ".*.jpg", False),
        ("*.jpg", ".*.jpg", False),  # glob leaves hidden names out of '*'
        (".", ".*.jpg", False),
        ("..jpg", ".*.jpg", False),  # the name after the dot is never empty
        (".?.jpg", ".*.jpg", True),
        ("[.]*", "*.jpg", False),  # glob leaves hidden names to a part starting with a dot
        ("*", "run", True),
        ("r?n", "run", True),
        ("*", ".run", False),  # glob's '*' leaves hidden names out
        ("?run", ".run", False),
        (".*", ".run", True),
        (".run", ".run", True),
        ("*[", "*.jpg", False),  # an unclosed '[' is a character
        ("[!]", "*", True),
    ],
)
def test_name_could_match(part: str, name: str, expected: bool) -> None:
    assert name_could_match(part, name) is expected


def test_a_suffixes_case_counts_where_glob_counts_it() -> None:
    assert name_could_match("*.JPG", "*.jpg") is (fnmatch.fnmatch("a.jpg", "*.JPG"))


def test_name_could_match_agrees_with_fnmatch_over_short_names() -> None:
    # parts of up to 3 of these characters, against every visible name of up to 3 before its end
    rng = random.Random(0)
    chars = "a.jb-!][z?*"
    stems = ["".join(p) for k in range(1, 4) for p in itertools.product(chars, repeat=k) if p[0] != "."]
    for _ in range(1000):
        part = "".join(rng.choice("a.j*?[]!-") for _ in range(rng.randint(1, 3)))
        end = "".join(rng.choice("a.j") for _ in range(rng.randint(0, 2)))
        some = any(fnmatch.fnmatchcase(stem + end, part) for stem in stems)
        assert name_could_match(part, f"*{end}") is some, (part, end)


def test_name_could_match_agrees_with_glob_over_short_hidden_names() -> None:
    # a hidden name '.<stem><end>': glob takes it for a part starting with a dot, or one without wildcards
    rng = random.Random(1)
    chars = "a.jb-!][z?*"
    stems = ["".join(p) for k in range(1, 4) for p in itertools.product(chars, repeat=k)]
    for _ in range(1000):
        part = "".join(rng.choice("a.j*?[]!-") for _ in range(rng.randint(1, 4)))
        end = "".join(rng.choice("a.j") for _ in range(rng.randint(0, 2)))
        hidden_ok = part.startswith(".") or not any(c in part for c in "*?[")
        some = hidden_ok and any(fnmatch.fnmatchcase(f".{stem}{end}", part) for stem in stems)
        assert name_could_match(part, f".*{end}") is some, (part, end)
