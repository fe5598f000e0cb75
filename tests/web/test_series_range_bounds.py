"""A custom range at the edges of the calendar is a 400 naming the parameter,
never a 500 (issue 15, bad input 2); a lone ``from`` in the future names the
missing ``to`` it was compared with."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def _get(client, counter, **params):
    return client.get("/api/v1/series", {"kind": "ssh", "counter": counter.pk, **params})


@pytest.mark.parametrize(
    ("start", "end", "param"),
    [
        ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59Z", "to"),
        ("9999-12-31T23:59:58Z", "9999-12-31T23:59:59Z", "to"),
        ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z", "from"),
        ("1969-12-31T00:00:00Z", "1970-01-01T00:00:10Z", "from"),
    ],
)
def test_a_range_at_the_calendar_edges_is_a_400_naming_the_parameter(operator_client, console_world,
                                                                     start, end, param):
    response = _get(operator_client, console_world.load, **{"from": start, "to": end})
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert list(body) == [param], body
    assert "between 1970-01-01 and" in body[param][0]


def test_a_lone_future_from_names_the_missing_to(operator_client, console_world):
    response = _get(operator_client, console_world.load, **{"from": "9999-12-30T00:00:00Z"})
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert list(body) == ["to"], body
    assert body["to"] == ["to is missing, so the range ends now, which is not later than from"]
