"""dspl.report.html: table cells as a reader sees them."""

from __future__ import annotations

import pytest

from dspl.report.html import cell


@pytest.mark.parametrize("value, shown", [
    (None, "<td>–</td>"),  # not measured: a dash, not Python's "None"
    (True, "<td>True</td>"),
    (0.000123456, '<td class="num">0.0001235</td>'),
    (12, '<td class="num">12</td>'),
    ("a<b", "<td>a&lt;b</td>"),
])
def test_a_cell_shows_its_value_escaped_and_numbers_right_aligned(value, shown):
    assert cell(value) == shown
