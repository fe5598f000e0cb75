"""Counter numbers have bounds admin enforces (interval 1 s..1 day, a finite
threshold), and a row stored past them anyway (an UPDATE skips validation)
costs only that counter: the dispatcher skips it, logs it once by name, and
goes on collecting the others."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from django.core.exceptions import ValidationError

from apps.monitoring import collection
from apps.monitoring.samples import floor_stamp
from apps.monitoring.ssh.models import SSHCounter
from tests.factories import SSHCounterFactory, make_cluster, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispatch_settings(settings, memcached_clean):
    settings.MEMCACHED_SERVERS = memcached_clean
    collection._store.cache_clear()
    yield settings
    collection._store.cache_clear()


def test_dispatcher_skips_a_counter_with_an_interval_out_of_range_and_logs_it_once(dispatch_settings, caplog):
    cluster = make_cluster("web")
    node = make_node(cluster, name="web-1")
    good = SSHCounterFactory(cluster=cluster, name="good", interval_s=5)
    bad = SSHCounterFactory(cluster=cluster, name="huge", interval_s=5)
    SSHCounter.objects.filter(pk=bad.pk).update(interval_s=99999999999999)
    t0 = floor_stamp(datetime.now(timezone.utc), 5)
    sent: list = []
    with caplog.at_level(logging.DEBUG):
        for tick in range(3):
            collection.dispatch_round(t0 + timedelta(seconds=5 * tick), lambda m, at, exp: sent.append(m))
    assert len(sent) == 3
    assert all([(n["id"], n["ssh"]) for n in m["nodes"]] == [(node.id, [good.id])] for m in sent)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "huge" in errors[0].getMessage() and "interval out of range" in errors[0].getMessage()


@pytest.mark.parametrize("value,ok", [(0, False), (-5, False), (1, True), (86400, True), (86401, False),
                                      (99999999999999, False)])
def test_interval_bounds(value, ok):
    counter = SSHCounterFactory.build(cluster=make_cluster("web"), interval_s=value)
    if ok:
        counter.full_clean()
    else:
        with pytest.raises(ValidationError) as info:
            counter.full_clean()
        assert "interval_s" in info.value.message_dict


def test_zero_and_negative_intervals_get_the_same_message():
    cluster = make_cluster("web")
    messages = []
    for value in (-5, 0):
        with pytest.raises(ValidationError) as info:
            SSHCounterFactory.build(cluster=cluster, interval_s=value).full_clean()
        messages.append(info.value.message_dict["interval_s"])
    assert messages[0] == messages[1] == ["Ensure this value is greater than or equal to 1."]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e300])
def test_thresholds_must_be_finite(value):
    with pytest.raises(ValidationError) as info:
        SSHCounterFactory.build(cluster=make_cluster("web"), threshold=value).full_clean()
    assert "threshold" in info.value.message_dict


def test_admin_form_names_the_interval_field_and_the_widget_minimum_is_one(admin_client):
    cluster = make_cluster("web")
    page = admin_client.get("/admin/ssh/sshcounter/add/").content.decode()
    assert 'name="interval_s"' in page and 'min="1"' in page and 'max="86400"' in page
    assert "&lt;comparison&gt;" not in page and "value  threshold" not in page
    data = {"cluster": cluster.pk, "name": "x", "command": "echo 1", "threshold": "1", "comparison": ">=",
            "interval_s": "99999999999999", "unit": "", "enabled": "on"}
    response = admin_client.post("/admin/ssh/sshcounter/add/", data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "interval_s" in errors
    assert not SSHCounter.objects.exists()


def test_admin_gives_one_minimum_message_for_minus_five_and_zero(admin_client):
    cluster = make_cluster("web")
    messages = []
    for value in ("-5", "0"):
        data = {"cluster": cluster.pk, "name": "x", "command": "echo 1", "threshold": "1", "comparison": ">=",
                "interval_s": value, "unit": "", "enabled": "on"}
        response = admin_client.post("/admin/ssh/sshcounter/add/", data)
        messages.append(response.context["adminform"].form.errors["interval_s"])
    assert messages[0] == messages[1] == ["Ensure this value is greater than or equal to 1."]
