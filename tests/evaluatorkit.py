"""Shared set-up of the evaluator tests: samples written to the real memcached
under the real keys, and a clock on the stamp grid. (Clusters, counters and
triggers are built by tests/factories.py.)"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from apps.control.breach import DEFAULT_GRACE_S
from apps.control.evaluator import Evaluator
from apps.control.models import Execution, Node, Trigger
from apps.monitoring.jmx.models import JMXCounter
from apps.monitoring.samples import Sample, SeriesRef

# On every interval's grid (a whole hour).
T0 = datetime(2030, 1, 7, 12, 0, 0, tzinfo=timezone.utc)


def series(node: Node, counter) -> SeriesRef:
    if isinstance(counter, JMXCounter):
        return SeriesRef("jmx", node.pk, counter.pk, counter.jvm_id)
    return SeriesRef("ssh", node.pk, counter.pk)


def stamp(k: int, interval_s: int = 60) -> datetime:
    return T0 + timedelta(seconds=k * interval_s)


def at(k: int, seconds: float = DEFAULT_GRACE_S + 1, interval_s: int = 60) -> datetime:
    """A moment ``seconds`` into stamp ``k``'s interval; by default just after
    the previous stamp settled (so a sample absent there counts as missing)."""
    return stamp(k, interval_s) + timedelta(seconds=seconds)


def put(store, node: Node, counter, k: int, value: float) -> None:
    """A sample of stamp ``k``, written the way collection writes it."""
    store.put_many([Sample(series(node, counter), stamp(k, counter.interval_s), float(value))])


def firings(trigger: Trigger) -> list[Execution]:
    return list(Execution.objects.filter(trigger=trigger).order_by("pk"))


def evaluator(store) -> Evaluator:
    """An evaluator wired to the real fire_trigger (the default)."""
    return Evaluator(store=store)
