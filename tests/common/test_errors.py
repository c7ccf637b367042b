"""common.errors: message helpers."""

from __future__ import annotations

import pytest

from common.errors import few


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
