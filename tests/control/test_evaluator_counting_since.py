"""A trigger counts from the moment it is created or enabled, or its
counters change (Trigger.counting_since): samples stamped before that never
count, so a trigger saved a second ago does not fire from the history it was
saved into, and enabling a trigger again restarts its count."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.control.models import Trigger
from tests.evaluatorkit import at, evaluator, firings, put, stamp
from tests.factories import make_cluster, make_trigger, ssh_counter

pytestmark = pytest.mark.django_db


def started_at(trigger: Trigger, when) -> None:
    """The trigger (re)started counting at ``when`` (on the tests' stamp grid:
    the save itself stamps the real clock)."""
    Trigger.objects.filter(pk=trigger.pk).update(counting_since=when)


def test_samples_stamped_before_the_trigger_was_created_do_not_count(store):
    cluster, (n1, _) = make_cluster("web", nodes=2)
    load = ssh_counter(cluster, interval_s=60)
    for k in range(5):
        put(store, n1, load, k, 2.0)  # breaching for five minutes before the trigger exists
    trigger = make_trigger(cluster, [load], timing_minutes=3, cooldown_s=0)
    started_at(trigger, stamp(4) + timedelta(seconds=10))
    ev = evaluator(store)

    assert not ev.run(at(5, seconds=1)).fired
    for k in (5, 6):
        put(store, n1, load, k, 2.0)
        assert not ev.run(at(k, seconds=7)).fired, f"fired at stamp {k} with samples from before its creation"
    put(store, n1, load, 7, 2.0)
    assert ev.run(at(7, seconds=7)).fired
    [execution] = firings(trigger)
    assert [v["stamp"] for v in execution.reasons["values"]] == [stamp(k).isoformat() for k in (5, 6, 7)]


def test_a_trigger_without_state_does_not_rebuild_from_before_it_existed(store):
    """A fresh evaluator (no state anywhere) looking back over a window that
    reaches before the trigger's creation counts only what came after it."""
    cluster, (n1, _) = make_cluster("web", nodes=2)
    load = ssh_counter(cluster, interval_s=60)
    for k in range(8):
        put(store, n1, load, k, 2.0)
    trigger = make_trigger(cluster, [load], timing_minutes=3, cooldown_s=0)
    started_at(trigger, stamp(6))
    assert not evaluator(store).run(at(7, seconds=7)).fired  # stamps 6 and 7 only: 2 of 3
    put(store, n1, load, 8, 2.0)
    assert evaluator(store).run(at(8, seconds=7)).fired


def test_enabling_a_trigger_again_restarts_its_count(store):
    cluster, (n1, _) = make_cluster("web", nodes=2)
    load = ssh_counter(cluster, interval_s=60)
    trigger = make_trigger(cluster, [load], timing_minutes=3, cooldown_s=0)
    started_at(trigger, stamp(0) - timedelta(seconds=30))
    ev = evaluator(store)
    for k in (0, 1):
        put(store, n1, load, k, 2.0)
        ev.run(at(k, seconds=7))  # 2 of 3

    trigger.refresh_from_db()
    trigger.enabled = False
    trigger.save()
    put(store, n1, load, 2, 2.0)
    assert not ev.run(at(2, seconds=7)).fired  # disabled: not evaluated
    trigger.enabled = True
    trigger.save()
    started_at(trigger, stamp(2) + timedelta(seconds=20))  # enabled during stamp 2

    put(store, n1, load, 3, 2.0)
    assert not ev.run(at(3, seconds=7)).fired, "counted the breaches from before it was disabled"
    put(store, n1, load, 4, 2.0)
    assert not ev.run(at(4, seconds=7)).fired
    put(store, n1, load, 5, 2.0)
    assert ev.run(at(5, seconds=7)).fired


def test_creating_enabling_and_changing_counters_stamp_the_moment(db):
    cluster = make_cluster("web")
    load, other = ssh_counter(cluster, "load1"), ssh_counter(cluster, "load5")
    before = timezone.now()
    trigger = make_trigger(cluster, [load])
    assert before <= trigger.counting_since <= timezone.now()

    def since() -> object:
        return Trigger.objects.get(pk=trigger.pk).counting_since

    started_at(trigger, before - timedelta(days=1))
    trigger.refresh_from_db()
    trigger.name = "renamed"
    trigger.save()
    assert since() == before - timedelta(days=1)  # an edit that is not enabling keeps counting
    trigger.enabled = False
    trigger.save(update_fields=["enabled"])
    assert since() == before - timedelta(days=1)
    trigger.enabled = True
    trigger.save(update_fields=["enabled"])
    assert since() >= before

    started_at(trigger, before - timedelta(days=1))
    trigger.ssh_counters.add(other)
    assert since() >= before
    started_at(trigger, before - timedelta(days=1))
    other.triggers.remove(trigger)  # from the counter's side
    assert since() >= before


def test_the_help_text_says_when_counting_starts():
    text = str(Trigger._meta.get_field("enabled").help_text)
    assert "created or enabled" in text and "before that moment never count" in text
