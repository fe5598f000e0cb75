"""A trigger that cannot fire as stored says so, and one bad row never stops
the evaluator: a trigger without counters is "can never fire: no counters"
(not "ok"), and a counter or trigger stored with a number out of range (an
UPDATE skips validation) is left out, logged once, while the rest is counted."""
from __future__ import annotations

import logging

import pytest

from apps.control.evaluator import Evaluator
from apps.control.models import Trigger
from apps.control.trigger_status import trigger_status
from apps.monitoring import counters
from apps.monitoring.ssh.models import SSHCounter
from apps.monitoring.store import SampleStore
from tests.evaluatorkit import at, firings, put
from tests.factories import make_cluster, make_trigger, ssh_counter

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(memcached_clean, settings):
    settings.MEMCACHED_SERVERS = memcached_clean
    counters._reported.clear()
    return SampleStore.from_settings()


def test_a_trigger_without_counters_can_never_fire(store):
    cluster, _ = make_cluster("web", nodes=1)
    trigger = make_trigger(cluster, [], name="empty")
    status = trigger_status(trigger, store)
    assert status.never_fires == "no counters"


def test_a_trigger_whose_counters_are_all_disabled_can_never_fire(store):
    cluster, _ = make_cluster("web", nodes=1)
    load = ssh_counter(cluster, enabled=False)
    trigger = make_trigger(cluster, [load])
    assert trigger_status(trigger, store).never_fires == "every counter is disabled"


def test_the_evaluator_counts_the_good_counter_and_skips_the_bad_one_logging_it_once(store, caplog):
    cluster, (n1,) = make_cluster("web", nodes=1)
    good = ssh_counter(cluster, "good")
    bad = ssh_counter(cluster, "huge")
    trigger = make_trigger(cluster, [good, bad], timing_minutes=2, cooldown_s=300)
    SSHCounter.objects.filter(pk=bad.pk).update(interval_s=99999999999999)
    ev = Evaluator(store=store)
    with caplog.at_level(logging.DEBUG, logger="apps.control"):
        for k in range(2):
            put(store, n1, good, k, 5.0)
            ev.run(at(k))
    assert len(firings(trigger)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "huge" in errors[0] and "interval out of range" in errors[0]
    status = trigger_status(trigger, store, now=at(2))
    assert status.never_fires == ""
    assert status.problems == [
        "counter huge: interval out of range (99999999999999 s; allowed 1..86400 s)"]


def test_a_trigger_with_a_cooldown_out_of_range_is_skipped_not_fatal(store):
    cluster, (n1,) = make_cluster("web", nodes=1)
    load = ssh_counter(cluster, "load")
    broken = make_trigger(cluster, [load], name="broken", timing_minutes=0)
    fine = make_trigger(cluster, [load], name="fine", timing_minutes=0)
    Trigger.objects.filter(pk=broken.pk).update(cooldown_s=99999999999999)
    put(store, n1, load, 0, 5.0)
    Evaluator(store=store).run(at(0))
    assert len(firings(fine)) == 1 and firings(broken) == []
    status = trigger_status(Trigger.objects.get(pk=broken.pk), store, now=at(1))
    assert status.never_fires.startswith("cooldown out of range")
