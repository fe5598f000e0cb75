"""One filter set (apps/web/filters.py) for the executions API and page: the
same parameters, the same words for a bad one — a 400 naming it in the API,
a message above an empty list on the page, never a 500."""
from __future__ import annotations

import pytest

from apps.control import executions

pytestmark = pytest.mark.django_db

BAD = [
    ({"status": "exploded"}, "status", "'exploded' is not one of pending"),
    ({"trigger": "x"}, "trigger", "'x' is not a trigger id"),
    ({"trigger": "1,2"}, "trigger", "'1,2' is not a trigger id"),
    ({"automatic": "maybe"}, "automatic", "'maybe' is not true or false"),
    # A "%" typed into a value is data, not a format string.
    ({"status": "%s"}, "status", "'%s' is not one of pending"),
    ({"trigger": "%(x)d"}, "trigger", "'%(x)d' is not a trigger id"),
]


@pytest.mark.parametrize("params,name,words", BAD)
def test_a_bad_filter_is_named_alike_by_the_api_and_the_page(operator_client, console_world, params, name, words):
    response = operator_client.get("/api/v1/executions", params)
    assert response.status_code == 400 and response.json()[name][0].startswith(words)
    page = operator_client.get("/executions/", params)
    assert page.status_code == 200
    body = page.content.decode().replace("&#x27;", "'")
    assert f'<li class="error">{name}: {words}' in body and "no executions" in body


def test_api_and_page_list_the_same_executions(operator_client, operator_user, console_world):
    w = console_world
    by_hand = executions.fire_action(w.mail, cluster=w.cluster, fired_by_user=operator_user)
    automatic = executions.fire_trigger(w.trigger, reasons={"trigger": "high-load"})
    for params in ({"automatic": "YES"}, {"automatic": "true", "trigger": f" {w.trigger.pk} ", "cluster": "web"},
                   {"automatic": "0"}, {"cluster": "elsewhere"}, {"status": ""}):
        ids = [e["id"] for e in operator_client.get("/api/v1/executions", params).json()["results"]]
        body = operator_client.get("/executions/", params).content.decode()
        shown = [pk for pk in (automatic.pk, by_hand.pk) if f'data-execution="{pk}"' in body]
        assert sorted(shown) == sorted(ids), params
    assert operator_client.get("/api/v1/executions", {"automatic": "yes"}).json()["results"][0]["id"] == automatic.pk
