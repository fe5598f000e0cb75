"""How the console writes numbers and durations (pure functions)."""
from __future__ import annotations

import pytest

from apps.web.templatetags.console_tags import pairs, percent, seconds, value


@pytest.mark.parametrize(("number", "text"), [
    (None, "—"), (0, "0"), (0.42, "0.42"), (2.5, "2.5"), (1234, "1234"), (9999.5, "10000"), (1234.56, "1235"),
    (20618.0, "20.6k"), (10403680.0, "10.4M"), (536870912, "537M"), (2.5e9, "2.5G"), (-25000, "-25k"),
    (0.000123, "0.000123"),
])
def test_sample_values_are_short_and_never_mislabelled(number, text):
    assert value(number) == text


def test_durations_progress_and_reasons():
    assert seconds(None) == "—" and seconds(0.4) == "0.4s" and seconds(12) == "12s"
    assert seconds(250) == "4m 10s" and seconds(3 * 3600 + 120) == "3h 2m"
    assert percent(None) == 0 and percent(0.456) == 46
    assert pairs({"node": "web-1", "values": [1.5, 2]}) == 'node: web-1 · values: [1.5, 2]'
