"""One bad row — however it got into the database (here an UPDATE that
skips validation) — never takes down a page, an API list or /metrics: the
row shows its own error and the rest renders."""
from __future__ import annotations

import pytest

from apps.monitoring.jmx.models import JMXCounter
from apps.monitoring.ssh.models import SSHCounter

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"
HUGE = 99999999999999

PAGES = ["/", "/clusters/web/", "/api/v1/clusters", "/api/v1/clusters/web", "/graphs/ssh/{load}/",
         "/api/v1/triggers/{trigger}/status"]


@pytest.fixture
def bad_interval(console_world):
    SSHCounter.objects.filter(pk=console_world.load.pk).update(interval_s=HUGE)
    return console_world


@pytest.mark.parametrize("template", PAGES)
def test_a_counter_with_an_interval_out_of_range_does_not_break_a_page(operator_client, bad_interval,
                                                                       sample_store, template):
    w = bad_interval
    response = operator_client.get(template.format(load=w.load.pk, trigger=w.trigger.pk))
    assert response.status_code == 200, response.content[:2000]
    body = response.content.decode()
    if template.startswith("/graphs/"):
        assert "interval out of range" in body
    elif "status" not in template:
        assert "interval out of range" in body
        assert "heap_used" in body  # the other counter still shows


@pytest.mark.parametrize("field,value", [
    # SQLite stores NaN as NULL (refused by NOT NULL): a NaN threshold exists only on a server database.
    pytest.param("threshold", float("nan"), marks=[pytest.mark.postgresql, pytest.mark.dbbackends]),
    ("threshold", float("inf")), ("threshold", 1e300), ("interval_s", 0), ("comparison", "=>")])
def test_other_bad_values_show_as_errors_too(operator_client, console_world, sample_store, field, value):
    from apps.monitoring import collection
    from apps.monitoring.samples import Sample, SeriesRef, floor_stamp
    from django.utils import timezone

    w = console_world
    stamp = floor_stamp(timezone.now(), 10)
    collection.record([Sample(SeriesRef("jmx", w.nodes[0].pk, w.heap.pk, w.jvm.pk), stamp, 1.0)])
    JMXCounter.objects.filter(pk=console_world.heap.pk).update(**{field: value})
    for url in ("/", "/clusters/web/", "/api/v1/clusters/web"):
        response = operator_client.get(url)
        assert response.status_code == 200, (url, response.content[:2000])
        body = response.content.decode()
        assert any(error in body for error in ("out of range", "not a finite number", "unknown comparison"))


def test_metrics_skip_the_bad_counter_and_show_the_rest(client, settings, bad_interval, sample_store):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:2000]
    body = response.content.decode()
    assert 'counter="heap_used"' in body
    assert 'pyscaler_counter_config_error{' in body and 'counter="load1"' in body


def test_a_trigger_without_counters_shows_can_never_fire(operator_client, console_world, sample_store):
    from tests.factories import make_trigger

    empty = make_trigger(console_world.cluster, [console_world.mail], name="watches-nothing")
    for url in ("/", "/clusters/web/"):
        body = operator_client.get(url).content.decode()
        assert "can never fire: no counters" in body
    api = operator_client.get("/api/v1/clusters/web").json()
    row = next(t for t in api["triggers"] if t["name"] == "watches-nothing")
    assert (row["state"], row["never_fires"]) == ("can never fire", "no counters")
    status = operator_client.get(f"/api/v1/triggers/{empty.pk}/status").json()
    assert status["state"] == "can never fire"
    high_load = next(t for t in api["triggers"] if t["name"] == "high-load")
    assert high_load["state"] != "can never fire" and high_load["never_fires"] == ""


def test_the_trigger_status_names_its_bad_counter(operator_client, bad_interval, sample_store):
    body = operator_client.get(f"/api/v1/triggers/{bad_interval.trigger.pk}/status").json()
    assert body["problems"] == ["counter load1: interval out of range (99999999999999 s; allowed 1..86400 s)"]
    assert body["never_fires"] == "no usable counter"
    page = operator_client.get("/clusters/web/").content.decode()
    assert "counter load1: interval out of range" in page


def test_the_series_api_answers_400_naming_the_bad_counter(operator_client, bad_interval, sample_store):
    response = operator_client.get("/api/v1/series", {"kind": "ssh", "counter": bad_interval.load.pk})
    assert response.status_code == 400
    assert "interval out of range" in str(response.json())
