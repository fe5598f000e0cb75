#!/usr/bin/env python
"""Reaction-time benchmark: from a breaching sample becoming visible in
memcached to the first action step starting, with a real Celery worker, a real
beat and the real RabbitMQ broker, at 10 and at 1,000 counters.

Samples are written by this script (collection dispatch is switched off with
COLLECT_TICK_S=0) so that "visible" is an exact instant: every series gets a
non-breaching sample at every stamp, as collection would write it; for each
measurement one series gets a breaching sample at the current stamp and the
clock starts when memcached has acknowledged it. Every trigger has timing 0
(fire at the first breaching sample), cooldown 0 and one e-mail step (file
backend), so the step's recorded start time ends the measurement.

Run:  .venv/bin/python bench/react.py [--interval 5] [--samples 15]
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

COUNTERS_PER_NODE = 10


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


class SampleWriter(threading.Thread):
    """Writes every series' non-breaching sample at every stamp, as collection
    would, so the evaluator reads a full cluster at each tick."""

    def __init__(self, store, series, interval_s: int):
        super().__init__(daemon=True)
        self.store, self.series, self.interval_s = store, series, interval_s
        self.stop = threading.Event()
        self.override: dict = {}  # key -> value written instead (the breach)
        self.lock = threading.Lock()

    def write_stamp(self, stamp) -> None:
        from apps.monitoring.samples import Sample

        with self.lock:
            samples = [Sample(s, stamp, 0.0) for s in self.series
                       if s.sample_key(stamp) not in self.override]
        self.store.put_many(samples)

    def run(self) -> None:
        from apps.monitoring.samples import floor_stamp

        last = None
        while not self.stop.is_set():
            stamp = floor_stamp(datetime.now(timezone.utc), self.interval_s)
            if stamp != last:
                self.write_stamp(stamp)
                last = stamp
            self.stop.wait(0.2)


def configure(series_count: int, interval_s: int, tag: str):
    """A cluster of series_count // 10 nodes × 10 counters; one trigger per
    counter (any node), each with one e-mail step."""
    from apps.actions.models import Action
    from apps.control.models import Cluster, Node, Trigger, TriggerAction
    from apps.monitoring.samples import SeriesRef
    from apps.monitoring.ssh.models import SSHCounter

    cluster = Cluster.objects.create(name=f"react-{tag}", max_size=10_000)
    nodes = Node.objects.bulk_create(
        Node(cluster=cluster, name=f"{tag}-n{i}", address="127.0.0.1")
        for i in range(max(1, series_count // COUNTERS_PER_NODE))
    )
    counters = [SSHCounter.objects.create(cluster=cluster, name=f"c{i}", command="true", threshold=100,
                                          comparison=">=", interval_s=interval_s)
                for i in range(COUNTERS_PER_NODE)]
    action = Action.objects.create(cluster=cluster, name="mail", kind="email", timeout_s=30,
                                   params={"to": ["ops@example.com"], "subject": "{{ trigger }} fired"})
    triggers = {}
    for counter in counters:
        trigger = Trigger.objects.create(cluster=cluster, name=f"t-{counter.name}", timing_minutes=0,
                                         cooldown_s=0)
        trigger.ssh_counters.set([counter])
        TriggerAction.objects.create(trigger=trigger, action=action, position=1)
        triggers[counter.id] = trigger
    series = [SeriesRef("ssh", n.id, c.id) for n in nodes for c in counters]
    return cluster, series, triggers


def measure(store, writer, series, triggers, interval_s: int, samples: int, timeout_s: float) -> list[float]:
    from apps.control.models import ExecutionStep
    from apps.monitoring.samples import Sample, floor_stamp

    latencies = []
    rng = random.Random(42)
    for _ in range(samples):
        ref = rng.choice(series)
        trigger = triggers[ref.counter_id]
        # A sample is counted once: the breach must be the first value of its
        # stamp. Reserve the next stamp for it, and write it as that stamp begins.
        stamp = floor_stamp(datetime.now(timezone.utc), interval_s) + timedelta(seconds=interval_s)
        with writer.lock:
            writer.override[ref.sample_key(stamp)] = 500.0
        time.sleep(max(0.0, stamp.timestamp() - time.time()) + rng.uniform(0.05, 0.5))
        store.put_many([Sample(ref, stamp, 500.0)])
        visible = time.time()
        deadline = time.monotonic() + timeout_s
        started = None
        while time.monotonic() < deadline:
            step = (ExecutionStep.objects.filter(execution__trigger=trigger, started__isnull=False,
                                                 execution__created__gte=datetime.fromtimestamp(
                                                     visible - 0.001, tz=timezone.utc))
                    .order_by("started").first())
            if step is not None:
                started = step.started.timestamp()
                break
            time.sleep(0.02)
        if started is None:
            raise SystemExit(f"no step started within {timeout_s:.0f} s of a breach of {ref}")
        latencies.append(started - visible)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=int, default=5, help="collection interval of every counter (s)")
    parser.add_argument("--samples", type=int, default=12, help="measurements per size")
    parser.add_argument("--sizes", default="10,1000", help="series counts to measure")
    args = parser.parse_args()

    from devservers.celery_worker import BrokerVhost, CeleryWorker
    from devservers.memcached import MemcachedServer
    from devservers.util import REPO_ROOT, stop_process

    workdir = Path(tempfile.mkdtemp(prefix="pyscaler-react-"))
    memcached = MemcachedServer().start()
    vhost = BrokerVhost(os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")).create()
    env = {
        "DJANGO_SETTINGS_MODULE": "pyscaler.settings",
        "PYSCALER_VAR_DIR": str(workdir / "var"),
        "DATABASE_URL": f"sqlite:///{workdir / 'react.sqlite3'}",
        "SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
        "MEMCACHED_SERVERS": memcached.address,
        "CELERY_BROKER_URL": vhost.url,
        "COLLECT_TICK_S": "0",
        "EVALUATE_TICK_S": os.environ.get("EVALUATE_TICK_S", "1"),
        "EMAIL_URL": "filemail://",
        "EMAIL_FILE_PATH": str(workdir / "mail"),
        "JMX_START_IN_POOL_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    import subprocess

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from apps.monitoring.store import SampleStore

    store = SampleStore.from_settings()
    worker = beat = None
    writers = []
    figures: dict = {"interval_s": args.interval}
    try:
        worker = CeleryWorker(vhost.url, env=env, queues=("control", "actions"), concurrency=2,
                              log_path=workdir / "worker.log").start()
        beat = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "pyscaler", "beat", "-l", "WARNING",
             "-s", str(workdir / "beat-schedule")],
            cwd=REPO_ROOT, env={**os.environ}, stdout=open(workdir / "beat.log", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        for size in (int(s) for s in args.sizes.split(",")):
            cluster, series, triggers = configure(size, args.interval, f"s{size}")
            writer = SampleWriter(store, series, args.interval)
            writer.start()
            writers.append(writer)
            time.sleep(args.interval + 1.5)  # one full stamp of normal samples everywhere
            try:
                latencies = measure(store, writer, series, triggers, args.interval, args.samples,
                                    timeout_s=args.interval * 3 + 10)
            except SystemExit:
                print("worker log tail:\n" + worker.log_tail(60), file=sys.stderr)
                print("beat log tail:\n" + (workdir / "beat.log").read_text()[-3000:], file=sys.stderr)
                raise
            writer.stop.set()
            cluster.triggers.update(enabled=False)  # the next size's evaluations only
            figures[f"react_median_s_{size}"] = round(statistics.median(latencies), 3)
            figures[f"react_p95_s_{size}"] = round(p95(latencies), 3)
            figures[f"react_max_s_{size}"] = round(max(latencies), 3)
            print(f"{size:>6} series: median {statistics.median(latencies):.3f} s, "
                  f"p95 {p95(latencies):.3f} s, max {max(latencies):.3f} s over {len(latencies)} breaches",
                  flush=True)
        target = args.interval + 2
        worst = max(v for k, v in figures.items() if k.startswith("react_p95"))
        print(f"target: p95 <= interval + 2 s = {target} s -> {'ok' if worst <= target else 'MISSED'}")
        figures["samples_per_size"] = args.samples
        figures["evaluate_tick_s"] = float(env["EVALUATE_TICK_S"])
        print(json.dumps(figures))
        return 0
    finally:
        for writer in writers:
            writer.stop.set()
        stop_process(beat)
        if worker is not None:
            worker.stop()
        vhost.delete()
        memcached.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
