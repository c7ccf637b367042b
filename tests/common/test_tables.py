"""Figures and Markdown tables of the reports."""

from __future__ import annotations

import numpy as np
import pytest

from common.tables import fmt, markdown_table


@pytest.mark.parametrize("missing", [None, float("nan"), np.float32("nan"), np.float64("nan")])
def test_a_missing_figure_is_a_dash_whatever_its_float_type(missing):
    assert fmt(missing) == "-"


def test_figures_keep_the_asked_digits_whatever_their_float_type():
    assert (fmt(0.91234), fmt(np.float32(0.5), 1), fmt(2, 2)) == ("0.912", "0.5", "2.00")


def test_a_table_has_a_header_a_rule_and_a_row_per_record():
    assert markdown_table(["a", "b"], [["1", "2"], ["3", "4"]]).splitlines() == [
        "| a | b |",
        "|---|---|",
        "| 1 | 2 |",
        "| 3 | 4 |",
    ]
