"""Outages of the broker and of the database, against servers of the test's own
(devservers/rabbitmq.py, devservers/postgres.py: the machine's shared broker
and PostgreSQL are never stopped).

The broker stops for a minute while beat collects, the evaluator evaluates
and a chain is mid-step; it comes back and nobody restarts anything. The
database restarts while a chain step runs. Each step appends to a file on the
node, so "ran exactly once" is read off the node, not off the records alone.
Recovery times are printed (run with ``-s`` to see them).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.actions.choices import ActionKindChoice as K
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.executions import fire_trigger
from apps.control.models import Execution
from apps.monitoring.samples import SeriesRef
from apps.monitoring.store import SampleStore
from devservers.celery_worker import CeleryBeat, CeleryWorker, point_app_at_broker
from devservers.postgres import PostgresServer
from devservers.rabbitmq import RabbitMQNode
from devservers.util import REPO_ROOT
from tests.factories import make_action, make_cluster, make_node, make_trigger, ssh_counter
from tests.sshkit import trust

pytestmark = pytest.mark.slow

OUTAGE_S = 60
#: Counter interval: two of them bound how long collection may take to resume.
INTERVAL = 10
#: How long the chain's first step runs: it starts before the outage and ends
#: during it, or outlasts it (its message is redelivered while it still runs).
STEP_S = {"ends-during-the-outage": 20, "outlasts-the-outage": OUTAGE_S + 30}
THRESHOLD = 10.0


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

class Stage:
    """The processes of one test and a bounded wait that fails with their logs."""

    def __init__(self, *procs: CeleryWorker | CeleryBeat, extra: Callable[[], str] = lambda: "") -> None:
        self.procs = procs
        self.extra = extra

    def logs(self) -> str:
        parts = []
        for proc in self.procs:
            name = "beat" if isinstance(proc, CeleryBeat) else f"worker {proc.nodename}"
            parts.append(f"--- {name} log tail ---\n{proc.log_tail()}")
        return "\n".join(parts) + self.extra()

    def alive(self) -> None:
        for proc in self.procs:
            running = proc.running
            assert running, f"{proc!r} exited by itself\n{self.logs()}"

    def wait(self, predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> float:
        """Seconds until ``predicate`` held; fails after ``timeout`` with the logs."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if predicate():
                return time.monotonic() - start
            time.sleep(interval)
        pytest.fail(f"{what}: not within {timeout:.0f} s\n{self.logs()}")


# ---------------------------------------------------------------------------
# Test (a): the broker is stopped for a minute
# ---------------------------------------------------------------------------

@pytest.fixture
def own_broker(rabbitmq_node: RabbitMQNode) -> Iterator[RabbitMQNode]:
    """The project app in this process publishes to the test's own node."""
    from pyscaler.celery import app

    original = app.conf.broker_url
    point_app_at_broker(app, rabbitmq_node.url)
    try:
        yield rabbitmq_node
    finally:
        point_app_at_broker(app, original)


def _samples(store: SampleStore, ref: SeriesRef, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    return [(s, v) for s, v in store.read_series(ref, INTERVAL, start, end) if v is not None]


def _runs(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.mark.timeout(480)
@pytest.mark.parametrize("step_s", STEP_S.values(), ids=STEP_S.keys())
def test_a_minute_without_the_broker_loses_only_that_minute(own_broker, transactional_db, worker_database_url,
                                                            memcached_clean, sshd_node, settings, tmp_path,
                                                            step_s):
    known_hosts = trust(settings, tmp_path, sshd_node)
    runs, fired, reading = tmp_path / "runs", tmp_path / "fired", tmp_path / "reading"
    reading.write_text("1\n")
    cluster = make_cluster("outage")
    node = make_node(cluster, sshd_node, name="outage-1")
    steady = ssh_counter(cluster, "steady", command="echo 7", threshold=1000.0, interval_s=INTERVAL)
    level = ssh_counter(cluster, "level", command=f"cat {reading}", threshold=THRESHOLD, interval_s=INTERVAL)
    slow = make_action(cluster, K.LOCAL_SCRIPT, {"script": f"echo step1-start >> {runs}; sleep {step_s}; "
                                                           f"echo step1-end >> {runs}"}, name="slow", timeout_s=120)
    after = make_action(cluster, K.LOCAL_SCRIPT, {"script": f"echo step2 >> {runs}"}, name="after")
    alarm = make_action(cluster, K.LOCAL_SCRIPT, {"script": f"echo fired >> {fired}"}, name="alarm")
    chain = make_trigger(cluster, [steady, slow, after], name="chain", cooldown_s=3600)  # never breaches
    make_trigger(cluster, [level, alarm], name="level-high", cooldown_s=3600)

    env = {"DATABASE_URL": worker_database_url, "MEMCACHED_SERVERS": ",".join(memcached_clean),
           "PYSCALER_VAR_DIR": str(tmp_path), "SAMPLE_LOG_DIR": str(tmp_path / "samples"),
           "SSH_KNOWN_HOSTS": str(known_hosts), "COLLECT_TICK_S": "0.5", "EVALUATE_TICK_S": "0.5"}
    worker = CeleryWorker(own_broker.url, name="outage", env=env, concurrency=3, log_path=tmp_path / "worker.log")
    worker.start()
    beat = CeleryBeat(worker, tmp_path)
    stage = Stage(worker, beat, extra=lambda: f"\n--- broker ---\n{own_broker.log_tail(15)}")
    store = SampleStore(memcached_clean, retention_s=3600)
    series = SeriesRef("ssh", node.id, steady.id)
    try:
        begun = timezone.now()
        stage.wait(lambda: _samples(store, series, begun, timezone.now()), 4 * INTERVAL, "a first sample")
        execution = fire_trigger(chain, reasons={}, fired_by="outage test", target_node=node)
        stage.wait(lambda: "step1-start" in _runs(runs), 30, "step 1 started")

        down_at = timezone.now()
        own_broker.stop()
        stopped_at = timezone.now()  # nothing collected after this can be stored until the broker is back
        outage_end = time.monotonic() + OUTAGE_S
        while time.monotonic() < outage_end:
            stage.alive()  # nobody exits because the broker is gone
            time.sleep(1)
        starting_at = timezone.now()  # the broker may answer before start() returns (a loaded machine)
        own_broker.start()
        up_at, back = timezone.now(), time.monotonic()

        first_sample_s = stage.wait(lambda: _samples(store, series, up_at, timezone.now()), 2 * INTERVAL,
                                    "a sample collected after the broker came back")
        chain_done_s = stage.wait(lambda: Execution.objects.get(pk=execution.pk).is_finished, 120,
                                  "the chain finished after the broker came back")
        chain_done_s = time.monotonic() - back
        reading.write_text(f"{THRESHOLD + 40}\n")  # the evaluator, reconnected, must see this
        fired_s = stage.wait(lambda: "fired" in _runs(fired), 4 * INTERVAL + 30, "the level trigger fired")
        fired_s = time.monotonic() - back
        print(f"\nbroker outage {OUTAGE_S} s, a {step_s} s step: broker back -> first new sample {first_sample_s:.1f} s "
              f"(interval {INTERVAL} s); broker back -> chain finished {chain_done_s:.1f} s; "
              f"broker back -> a trigger fired by the evaluator {fired_s:.1f} s")

        execution = Execution.objects.get(pk=execution.pk)
        steps = list(execution.steps.order_by("position"))
        assert execution.status == ExecutionStatus.SUCCEEDED, ([(s.status, s.error) for s in steps], stage.logs())
        assert [s.status for s in steps] == [StepStatus.SUCCEEDED] * 2
        assert _runs(runs) == ["step1-start", "step1-end", "step2"], stage.logs()  # each step ran once
        assert [s.attempts for s in steps] == [1, 1]
        assert _runs(fired) == ["fired"]

        # The stamps of the outage are missing, not invented; those around it are there.
        now = timezone.now()
        grid = store.read_series(series, INTERVAL, begun, now)
        # A stamp after the stop whose interval ended before the restart began
        # can only hold an invented value.
        gap = [v for s, v in grid if stopped_at < s < starting_at - timedelta(seconds=INTERVAL)]
        assert gap and all(v is None for v in gap), grid
        assert any(v is not None for s, v in grid if s < down_at)
        assert any(v is not None for s, v in grid if s >= up_at)
        stage.alive()
    finally:
        beat.stop()
        worker.kill()


# ---------------------------------------------------------------------------
# Test (b): PostgreSQL restarts mid-chain
# ---------------------------------------------------------------------------
# The worker, beat and the rows live on the test's own PostgreSQL, which this
# process's Django (on the test database) does not know: the rows are made and
# the chain fired by `manage.py shell` subprocesses, and read back with psql.

#: (seconds PostgreSQL stays down, seconds step 1 runs): restarted while the
#: step runs, and still down when the step ends (its result waits for it).
PG_OUTAGES = [(5, 15), (20, 8)]

_WORLD = """

from apps.actions.models import Action
from apps.control.models import Cluster, Node, Trigger, TriggerAction
from apps.monitoring.ssh.models import SSHCounter
a = {args}
cluster = Cluster.objects.create(name="pg-outage")
node = Node.objects.create(cluster=cluster, name="pg-1", address=a["host"], ssh_port=a["port"],
                           ssh_user=a["user"], ssh_key_path=a["key"])
steady = SSHCounter.objects.create(cluster=cluster, name="steady", command="echo 7", threshold=1000,
                                   comparison=">=", interval_s=a["interval"])
trigger = Trigger.objects.create(cluster=cluster, name="chain", timing_minutes=0, cooldown_s=3600)
trigger.ssh_counters.add(steady)
for position, (name, script) in enumerate(a["steps"], start=1):
    action = Action(cluster=cluster, name=name, kind="local_script", params={{"script": script}}, timeout_s=120)
    action.full_clean()
    action.save()
    TriggerAction.objects.create(trigger=trigger, action=action, position=10 * position)
print("ids", trigger.pk, node.pk, steady.pk)
"""

_FIRE = """
from apps.control.executions import fire_trigger
from apps.control.models import Node, Trigger
execution = fire_trigger(Trigger.objects.get(pk={trigger}), reasons={{}}, fired_by="outage test",
                         target_node=Node.objects.get(pk={node}))
print("execution", execution.pk)
"""


def _manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _row(server: PostgresServer, sql: str) -> list[str]:
    return server.psql(sql, database="pyscaler").strip().split("|")


@pytest.mark.timeout(480)
@pytest.mark.parametrize(("down_s", "step_s"), PG_OUTAGES, ids=["back-before-the-step-ends", "down-when-it-ends"])
def test_a_postgresql_restart_mid_chain_runs_each_step_once(own_broker, postgres_server, memcached_clean,
                                                            sshd_node, tmp_path, down_s, step_s):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd_node.host_key_line + "\n")
    runs = tmp_path / "runs"
    env = {"DATABASE_URL": postgres_server.create_database("pyscaler"),
           "CELERY_BROKER_URL": own_broker.url, "MEMCACHED_SERVERS": ",".join(memcached_clean),
           "PYSCALER_VAR_DIR": str(tmp_path), "SAMPLE_LOG_DIR": str(tmp_path / "samples"),
           "SSH_KNOWN_HOSTS": str(known_hosts), "COLLECT_TICK_S": "0.5", "EVALUATE_TICK_S": "0.5"}
    _manage(env, "migrate", "--noinput")
    world = {"host": sshd_node.host, "port": sshd_node.port, "user": sshd_node.user,
             "key": str(sshd_node.client_key_path), "interval": INTERVAL,
             "steps": [["slow", f"echo step1-start >> {runs}; sleep {step_s}; echo step1-end >> {runs}"],
                       ["after", f"echo step2 >> {runs}"]]}
    ids = _manage(env, "shell", "-c", _WORLD.format(args=repr(world))).split("ids", 1)[1].split()
    trigger_id, node_id, counter_id = (int(i) for i in ids)

    worker = CeleryWorker(own_broker.url, name="pg-outage", env=env, concurrency=3,
                          log_path=tmp_path / "worker.log")
    worker.start()
    beat = CeleryBeat(worker, tmp_path)
    stage = Stage(worker, beat, extra=lambda: f"\n--- postgres ---\n{postgres_server.log_tail(15)}")
    store = SampleStore(memcached_clean, retention_s=3600)
    series = SeriesRef("ssh", node_id, counter_id)
    try:
        begun = timezone.now()
        stage.wait(lambda: _samples(store, series, begun, timezone.now()), 4 * INTERVAL, "a first sample")
        fired = _manage(env, "shell", "-c", _FIRE.format(trigger=trigger_id, node=node_id))
        execution_id = int(fired.split("execution", 1)[1].split()[0])
        stage.wait(lambda: "step1-start" in _runs(runs), 30, "step 1 started")

        postgres_server.stop()
        time.sleep(down_s)
        stage.alive()
        postgres_server.start()
        up_at, back = timezone.now(), time.monotonic()

        def status() -> str:
            return _row(postgres_server, f"SELECT status FROM control_execution WHERE id = {execution_id}")[0]

        stage.wait(lambda: status() in ("succeeded", "failed", "cancelled", "blocked", "would_fire"), 120,
                   "the chain finished after PostgreSQL came back")
        chain_done_s = time.monotonic() - back
        stage.wait(lambda: _samples(store, series, up_at, timezone.now()), 2 * INTERVAL,
                   "a sample collected after PostgreSQL came back")
        first_sample_s = time.monotonic() - back
        print(f"\npostgresql down {down_s} s during a {step_s} s step: postgres back -> chain finished "
              f"{chain_done_s:.1f} s; postgres back -> a new sample seen within {first_sample_s:.1f} s "
              f"(interval {INTERVAL} s)")

        steps = postgres_server.psql(f"SELECT status, attempts, error FROM control_executionstep WHERE "
                                     f"execution_id = {execution_id} ORDER BY position", database="pyscaler")
        assert status() == "succeeded", (steps, stage.logs())
        assert [line.split("|")[:2] for line in steps.strip().splitlines()] == [["succeeded", "1"]] * 2, steps
        assert _runs(runs) == ["step1-start", "step1-end", "step2"], stage.logs()  # each step ran once
        stage.alive()
    finally:
        beat.stop()
        worker.kill()
