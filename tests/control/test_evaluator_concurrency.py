"""Several evaluators at once (two beats, several control workers): each
breach fires its trigger exactly once. Real threads, each with its own
database connection and memcached client, against the same database and
memcached; run again on PostgreSQL and MariaDB (dbbackends)."""
from __future__ import annotations


import pytest

from apps.control.evaluator import EvaluationReport, Evaluator
from tests import concurrently
from tests.evaluatorkit import at, firings, put
from tests.factories import make_cluster, make_trigger, ssh_counter

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dbbackends]

EVALUATORS = 4


def run_at_once(now_of, count: int = EVALUATORS) -> list[EvaluationReport]:
    """``count`` evaluators started together (a barrier), each in its own
    thread with its own connection and store client."""
    from apps.monitoring.store import SampleStore

    reports, errors = concurrently.at_once(
        lambda prepared: prepared[0].run(now_of(prepared[1])), count,
        prepare=lambda i: (Evaluator(store=SampleStore.from_settings()), i), timeout=60)
    assert not errors, errors
    return reports  # type: ignore[return-value]


@pytest.mark.parametrize("cooldown_s", [0, 300])
def test_concurrent_evaluators_fire_each_breach_once(store, cooldown_s):
    cluster, (n1, n2) = make_cluster("web", nodes=2)
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=0, cooldown_s=cooldown_s)
    rounds = 4
    for k in range(rounds):
        put(store, n1, load, k, 2.0)
        put(store, n2, load, k, 3.0)
        # The evaluators' clocks differ by a few milliseconds, as on real hosts.
        reports = run_at_once(lambda i: at(k, 6 + i / 1000))
        fired = [r for r in reports if r.fired]
        assert len(fired) <= 1
        if cooldown_s == 0 or k == 0:
            assert len(fired) == 1, [r.as_dict() for r in reports]
    # Cooldown 0: a new breaching stamp each round, one firing each.
    # Cooldown 300 s: one firing in all.
    assert len(firings(trigger)) == (rounds if cooldown_s == 0 else 1)


def test_concurrent_evaluators_of_several_triggers(store):
    cluster, (n1,) = make_cluster("web", nodes=1)
    loads = [ssh_counter(cluster, f"c{i}") for i in range(5)]
    triggers = [make_trigger(cluster, [c], name=f"t{i}", timing_minutes=1) for i, c in enumerate(loads)]
    for c in loads:
        put(store, n1, c, 0, 2.0)
    reports = run_at_once(lambda i: at(0, 6 + i / 1000))
    assert sum(len(r.fired) for r in reports) == len(triggers)
    assert all(len(firings(t)) == 1 for t in triggers)


READY_THEN_EVALUATE = """
import json, sys
from datetime import datetime
import django
django.setup()
from apps.control.evaluator import evaluate
from apps.control.models import Trigger
Trigger.objects.count()  # connected
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps(evaluate(datetime.fromisoformat(sys.argv[1])).as_dict()), flush=True)
"""


@pytest.mark.slow
def test_concurrent_evaluator_processes_fire_once(store, memcached_clean, worker_database_url, tmp_path):
    """As with several control workers: separate processes, released together."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    cluster, (n1, n2) = make_cluster("web", nodes=2)
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=0, cooldown_s=0)
    put(store, n1, load, 0, 2.0)
    put(store, n2, load, 0, 2.0)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pyscaler.settings", "DATABASE_URL": worker_database_url,
           "MEMCACHED_SERVERS": ",".join(memcached_clean), "PYSCALER_VAR_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", READY_THEN_EVALUATE, at(0, 6 + i / 1000).isoformat()],
                              cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()[-2000:]
        for p in procs:  # release them together
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    reports = []
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(len(r["fired"]) for r in reports) == 1, reports
    assert len(firings(trigger)) == 1
