"""The evaluator at 1,000 series (100 counters x 10 nodes, 10 triggers), on
real memcached and the database: a handful of queries and two reads per run
(the writer token, then the samples each series has left to count). Its CPU time is measured in bench/evaluate.py, not asserted here (the
machines are shared)."""
from __future__ import annotations

import pytest

from apps.control.evaluator import Evaluator
from apps.control.models import Node
from apps.monitoring import sources
from apps.monitoring.samples import Sample, SeriesRef
from apps.monitoring.ssh.models import SSHCounter
from tests.evaluatorkit import at, firings, stamp
from tests.factories import make_cluster, make_trigger

pytestmark = pytest.mark.django_db

NODES, TRIGGERS, COUNTERS_PER_TRIGGER, INTERVAL = 10, 10, 10, 10


def test_1000_series_take_a_handful_of_queries_and_two_batched_reads(store, django_assert_max_num_queries):
    cluster, nodes = make_cluster("big", nodes=NODES)
    counters = SSHCounter.objects.bulk_create(
        SSHCounter(cluster=cluster, name=f"c{i}", command="true", threshold=1.0, interval_s=INTERVAL)
        for i in range(TRIGGERS * COUNTERS_PER_TRIGGER)
    )
    triggers = [
        make_trigger(cluster, counters[t * COUNTERS_PER_TRIGGER:(t + 1) * COUNTERS_PER_TRIGGER],
                     name=f"t{t}", timing_minutes=1)  # 6 samples of 10 s
        for t in range(TRIGGERS)
    ]
    refs = [SeriesRef("ssh", n.pk, c.pk) for n in nodes for c in counters]
    assert len(refs) == 1000

    def collect(k: int, hot: set[SeriesRef] = frozenset()) -> None:
        store.put_many(Sample(r, stamp(k, INTERVAL), 2.0 if r in hot else 0.5) for r in refs)

    ev = Evaluator(store=store)
    for k in range(3):
        collect(k)
    first = ev.run(at(2, interval_s=INTERVAL))  # every state rebuilt from its look-back

    hot = {SeriesRef("ssh", nodes[3].pk, counters[42].pk)}  # trigger t4
    for k in range(3, 9):
        collect(k, hot)
        # The triggers, one query per counter source, the nodes; k=8: + the claim and fire_trigger.
        loads = 2 + len(sources.all())
        with django_assert_max_num_queries(loads if k < 8 else loads + 21):
            report = ev.run(at(k, interval_s=INTERVAL))
        # This process wrote the states last: only its writer token is read
        # back, then the one new stamp of each series (k=8: + the reasons).
        assert report.series == 1000 and report.reads == (2 if k < 8 else 3)
        if k < 8:
            assert report.keys_read == 1 + 1000
    assert [len(firings(t)) for t in triggers] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert firings(triggers[4])[0].reasons["node"] == nodes[3].name
    assert first.reads == 2
    assert Node.objects.count() == NODES
