"""An evaluator restarted as a new process loses nothing: the breach counts
live in memcached, not in the process. Two real processes, one after the
other, on the same (committed) test database and memcached."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.evaluatorkit import at, firings, put
from tests.factories import make_cluster, make_trigger, ssh_counter

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EVALUATE = """
import json, sys
from datetime import datetime
import django
django.setup()
from apps.control.evaluator import evaluate
for when in sys.argv[1:]:
    print(json.dumps(evaluate(datetime.fromisoformat(when)).as_dict()))
"""


def evaluator_process(when, *, database_url: str, memcached: list[str], tmp_path: Path) -> list[dict]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pyscaler.settings", "DATABASE_URL": database_url,
           "MEMCACHED_SERVERS": ",".join(memcached), "PYSCALER_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", EVALUATE, *[w.isoformat() for w in when]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_a_new_evaluator_process_continues_the_count(memcached_clean, settings, worker_database_url, tmp_path):
    from apps.monitoring.store import SampleStore

    settings.MEMCACHED_SERVERS = memcached_clean
    store = SampleStore.from_settings()
    cluster, (n1, _) = make_cluster("web", nodes=2)
    load = ssh_counter(cluster)
    trigger = make_trigger(cluster, [load], timing_minutes=3)  # 3 samples; missing ignored
    put(store, n1, load, 0, 2.0)
    put(store, n1, load, 1, 2.0)
    run = dict(database_url=worker_database_url, memcached=memcached_clean, tmp_path=tmp_path)

    # Process 1 counts 2 breaches, then 4 stamps without samples, and exits.
    reports = evaluator_process([at(k) for k in range(6)], **run)
    assert [r["fired"] for r in reports] == [[]] * 6 and reports[0]["store_error"] is None
    # Process 2 sees the third breach. The samples still in its look-back
    # hold only one: it fires because the count survived in memcached.
    put(store, n1, load, 6, 2.0)
    [report] = evaluator_process([at(6)], **run)
    assert report["fired"] == [trigger.pk]
    [execution] = firings(trigger)
    assert execution.reasons["breaches"][0]["count"] == 3
