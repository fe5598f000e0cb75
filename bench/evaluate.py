#!/usr/bin/env python
"""Evaluator and sample-log benchmark (the timings tests/ no longer assert).

- The evaluator at 1,000 series (100 counters x 10 nodes, 10 triggers) on a
  real memcached and a real (SQLite) database: CPU seconds of the first run
  (every state rebuilt from its look-back) and of steady runs (one new stamp),
  against the reference of the same run: a plain ``get_many`` of the keys one
  steady evaluation reads (the floor no evaluator can beat).
- The sample log writing 10,000 samples, against the reference of writing the
  same number of JSON lines with ``json.dumps`` and one ``write``.

Run:  .venv/bin/python bench/evaluate.py [--steady 6]
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NODES, TRIGGERS, COUNTERS_PER_TRIGGER, INTERVAL = 10, 10, 10, 10
T0 = datetime(2030, 1, 7, 12, 0, 0, tzinfo=timezone.utc)


def stamp(k: int) -> datetime:
    return T0 + timedelta(seconds=k * INTERVAL)


def setup_django(workdir: Path, memcached: list[str]) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "pyscaler.settings",
        "PYSCALER_VAR_DIR": str(workdir / "var"),
        "SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
        "MEMCACHED_SERVERS": ",".join(memcached),
        "SAMPLE_LOG_DIR": str(workdir / "samples"),
        "LOG_LEVEL": "WARNING",
    })
    (workdir / "var").mkdir(parents=True, exist_ok=True)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def configure():
    from apps.control.models import Cluster, Node, Trigger
    from apps.monitoring.ssh.models import SSHCounter

    cluster = Cluster.objects.create(name="bench", max_size=NODES)
    nodes = [Node.objects.create(cluster=cluster, name=f"n{i}", address=f"127.0.0.{i + 1}") for i in range(NODES)]
    counters = SSHCounter.objects.bulk_create(
        SSHCounter(cluster=cluster, name=f"c{i}", command="true", threshold=1.0, interval_s=INTERVAL)
        for i in range(TRIGGERS * COUNTERS_PER_TRIGGER))
    for t in range(TRIGGERS):
        trigger = Trigger.objects.create(cluster=cluster, name=f"t{t}", timing_minutes=1, cooldown_s=300,
                                         dry_run=True)
        trigger.ssh_counters.add(*counters[t * COUNTERS_PER_TRIGGER:(t + 1) * COUNTERS_PER_TRIGGER])
    return nodes, counters


def bench_evaluator(steady_runs: int) -> dict[str, float]:
    from apps.control.breach import DEFAULT_GRACE_S
    from apps.control.evaluator import Evaluator
    from apps.monitoring.samples import Sample, SeriesRef
    from apps.monitoring.store import SampleStore

    nodes, counters = configure()
    store = SampleStore.from_settings()
    refs = [SeriesRef("ssh", n.pk, c.pk) for n in nodes for c in counters]

    def collect(k: int) -> None:
        store.put_many(Sample(r, stamp(k), 0.5) for r in refs)

    def at(k: int) -> datetime:
        return stamp(k) + timedelta(seconds=DEFAULT_GRACE_S + 1)

    evaluator = Evaluator(store=store)
    for k in range(3):
        collect(k)
    cpu = time.process_time()
    evaluator.run(at(2))
    first = time.process_time() - cpu
    steady, floor = [], []
    for k in range(3, 3 + steady_runs):
        collect(k)
        cpu = time.process_time()
        report = evaluator.run(at(k))
        steady.append(time.process_time() - cpu)
        keys = [r.sample_key(stamp(k)) for r in refs]
        cpu = time.process_time()
        store.get_many(keys)
        floor.append(time.process_time() - cpu)
    assert report.series == NODES * TRIGGERS * COUNTERS_PER_TRIGGER, report
    return {
        "evaluator_1000_first_cpu_s": first,
        "evaluator_1000_steady_cpu_s": statistics.median(steady),
        "evaluator_1000_steady_max_cpu_s": max(steady),
        "get_many_1000_cpu_s": statistics.median(floor),
    }


def bench_sample_log(workdir: Path) -> dict[str, float]:
    from apps.monitoring.samplelog import SampleLog
    from apps.monitoring.samples import Sample, SeriesRef

    collected = T0 + timedelta(seconds=1.25)
    samples = [Sample(SeriesRef("ssh", n, c), T0, n * c / 7, collected_at=collected)
               for n in range(1000) for c in range(10)]
    best, plain = [], []
    for run in range(3):
        log = SampleLog(workdir / f"log{run}", host="bench")
        started = time.perf_counter()
        log.write(samples)
        best.append(time.perf_counter() - started)
        started = time.perf_counter()
        with open(workdir / f"plain{run}.jsonl", "w") as out:
            out.write("".join(json.dumps({"kind": s.series.kind, "node": s.series.node_id, "counter": s.series.counter_id,
                                          "stamp": s.stamp.isoformat(), "value": s.value}) + "\n"
                              for s in samples))
        plain.append(time.perf_counter() - started)
    return {"sample_log_10k_write_s": min(best), "plain_jsonl_10k_write_s": min(plain)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steady", type=int, default=6, help="steady evaluations measured")
    args = parser.parse_args()

    from devservers.memcached import MemcachedServer

    workdir = Path(tempfile.mkdtemp(prefix="pyscaler-bench-"))
    memcached = MemcachedServer().start()
    try:
        setup_django(workdir, [memcached.address])
        figures = {**bench_evaluator(args.steady), **bench_sample_log(workdir)}
        figures["evaluator_steady_vs_get_many"] = (figures["evaluator_1000_steady_cpu_s"]
                                                   / figures["get_many_1000_cpu_s"])
        figures["sample_log_vs_plain_jsonl"] = figures["sample_log_10k_write_s"] / figures["plain_jsonl_10k_write_s"]
        for key, value in figures.items():
            print(f"{key:<36}{value:>12.4f}")
        print(json.dumps({k: round(v, 4) for k, v in figures.items()}))
        return 0
    finally:
        memcached.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
