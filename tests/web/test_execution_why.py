"""An execution's "why" where people read it: the console's execution page
(words and the chart's data), the data API's `why_text` (and its OpenAPI
description), Django admin's execution page — for a firing by the real
evaluator on samples in the real memcached, and firings by hand."""
from __future__ import annotations

import json
import re

import pytest

from apps.control import executions
from apps.control.models import Execution
from tests.evaluatorkit import at, evaluator, put

pytestmark = pytest.mark.django_db

WORDS = ("load1 on node web-1 was ≥ 1.5 for 6 consecutive samples (1.6, 1.7, 1.8, 1.9, …, 2.1) "
         "from 2030-01-07 12:00:00 to 12:00:50 UTC; fired by the trigger high-load, whose condition held "
         "for 1 min.")


@pytest.fixture
def fired(console_world, sample_store, settings) -> Execution:
    """high-load (load1 ≥ 1.5 for 1 min, every 10 s) fired by the evaluator on web-1's samples."""
    settings.TIME_ZONE = "UTC"
    w = console_world
    ev = evaluator(sample_store)
    for k in range(6):
        put(sample_store, w.nodes[0], w.load, k, 1.6 + k / 10)
        put(sample_store, w.nodes[1], w.load, k, 0.4)
        ev.run(at(k, seconds=11, interval_s=10))
    return Execution.objects.get(trigger=w.trigger)


def chart_data(body: str) -> list[dict]:
    match = re.search(r'<script id="why-chart-data" type="application/json">(.*?)</script>', body, re.DOTALL)
    assert match, "no chart data on the page"
    return json.loads(match.group(1))


def test_the_console_page_says_why_in_words_and_carries_the_chart(operator_client, fired):
    body = operator_client.get(f"/executions/{fired.pk}/").content.decode()
    assert f"<p>{WORDS}</p>" in body
    # Fired at 12:01:01 (the evaluation after the sixth sample), cooldown 300 s.
    assert "kept it from firing again before 2030-01-07 12:06:01 UTC.</p>" in body
    assert '"breaches"' not in body and "node_id" not in body  # no JSON dump
    [chart] = chart_data(body)
    assert chart["title"] == "load1 ≥ 1.5" and chart["threshold"] == 1.5
    assert [line["label"] for line in chart["lines"]] == ["web-1"]
    assert chart["lines"][0]["values"] == pytest.approx([1.6, 1.7, 1.8, 1.9, 2.0, 2.1])
    assert 'data-threshold-charts="why-chart-data"' in body and "console/threshold_chart.js" in body
    # The live part re-fetched while it runs: the words again, no second chart.
    partial = operator_client.get(f"/executions/{fired.pk}/?partial=1").content.decode()
    assert f"<p>{WORDS}</p>" in partial and "why-chart-data" not in partial


def test_a_firing_from_the_console_names_the_person_and_has_no_chart(operator_client, console_world):
    w = console_world
    response = operator_client.post(f"/clusters/web/triggers/{w.trigger.pk}/fire/", {"target_node": w.nodes[1].pk})
    execution = Execution.objects.get()
    assert execution.reasons["via"] == "console"
    body = operator_client.get(response["Location"]).content.decode()
    assert "<p>Fired by user oscar from the console: the trigger high-load&#x27;s chain, on node web-2.</p>" in body
    assert "why-chart-data" not in body and "uPlot" not in body


def test_a_firing_through_the_api_says_so(operator_client, console_world):
    response = operator_client.post(f"/api/v1/actions/{console_world.mail.pk}/fire", {},
                                    content_type="application/json")
    assert response.status_code == 201
    assert response.json()["why_text"] == "Fired by user oscar through the data API: the action notify-ops."


def test_a_damaged_record_still_gives_a_page(operator_client, console_world):
    execution = executions.fire_trigger(console_world.trigger, reasons={"breaches": [{"values": "x"}, 3]})
    Execution.objects.filter(pk=execution.pk).update(reasons=["not", "an", "object"])
    response = operator_client.get(f"/executions/{execution.pk}/")
    assert response.status_code == 200
    assert "<p>The recorded reason is in a form this version does not read.</p>" in response.content.decode()


def test_the_api_gives_the_same_words_read_only(operator_client, fired):
    detail = operator_client.get(f"/api/v1/executions/{fired.pk}").json()
    assert detail["why_text"].startswith(WORDS + " The trigger's cooldown of 5 min")
    [row] = operator_client.get("/api/v1/executions").json()["results"]
    assert row["why_text"] == detail["why_text"]
    schema = operator_client.get("/api/v1/openapi.json").json()
    field = schema["components"]["schemas"]["Execution"]["properties"]["why_text"]
    assert field["type"] == "string" and field["readOnly"] is True
    assert "Why it fired, in words" in field["description"]


def test_admin_shows_the_words_and_links_to_the_console(admin_client_in_group, fired):
    body = admin_client_in_group.get(f"/admin/control/execution/{fired.pk}/change/").content.decode()
    assert f"<p>{WORDS}</p>" in body
    assert f'<a href="/executions/{fired.pk}/">Open in the console</a>' in body
