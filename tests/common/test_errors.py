"""common.errors: message helpers."""

from __future__ import annotations

import pytest

from common.errors import close_match, few


@pytest.mark.parametrize(
    ("items", "limit", "sep", "expected"),
    [
        pytest.param([], 3, ", ", "", id="none"),
        pytest.param(["a", "b", "c"], 3, ", ", "a, b, c", id="exactly the limit: no 'and 0 more'"),
        pytest.param(["a", "b", "c", "d"], 3, ", ", "a, b, c and 1 more", id="one over"),
        pytest.param(["a", "b", "c", "d"], 2, " ", "a b and 2 more", id="the separator of a command line"),
        pytest.param([1, 2], 8, ", ", "1, 2", id="not strings"),
    ],
)
def test_few_names_the_first_and_counts_the_rest(items: list, limit: int, sep: str, expected: str) -> None:
    assert few(items, limit, sep=sep) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [("scrach", "scratch"), ("epoch", "epochs"), ("dent", None), ("scratch", "scratch"), ("", None)],
)
def test_close_match_names_the_likely_typo_only(word: str, expected: str | None) -> None:
    # one helper for config keys (unknown_key_text) and converters.synthetic's defect types
    assert close_match(word, ["bent", "epochs", "scratch"]) == expected
