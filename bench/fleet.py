#!/usr/bin/env python
"""Fleet benchmark: PyScaler collecting from N simulated nodes as it runs in
production — a real RabbitMQ broker, the real beat dispatcher, a real control
worker running its dispatch task and two real collect workers of one pool
process each (node affinity pins each node to one of them) — at N = 10, 100
and 1,000 nodes × 10 SSH counters, plus two JVMs with two JMX counters each,
every counter at one interval (30 s).

Each size gets a fleet of its own (devservers.fleet: node i is 127.1.x.y,
one sshd per 16 addresses), a cluster in a fresh database state, and freshly
started workers and beat. After ``--warmup`` ticks and once every node holds
its SSH session (at most ``--max-warmup`` ticks), ``--ticks`` ticks are
measured:

  samples            samples stored for the measured stamps (read back from
                     memcached through SampleStore)
  missed_stamps      series × measured stamps that should hold a sample and don't
  cpu_ms_per_sample  user+system CPU of the collect workers (main processes and
                     pool processes, from /proc/<pid>/stat) over the measured
                     ticks, divided by samples
  sessions_per_node  sshd per-connection processes (children of the fleet's
                     sshd listeners) per node, after the last measured tick
  worker_rss_mb      VmRSS of the collect workers' processes, summed
  dispatch_ms        one dispatch_round (claim, due work, messages, signing;
                     nothing sent) in this process, against the same database
  evaluate_ms        one run of a long-lived Evaluator (as a control worker
                     keeps one) over every series (one dry-run trigger per
                     counter), median of the runs made mid-tick
                     during the measured ticks (the first, rebuilding, not counted)
  overview_ms/_kib   the console overview fetched with Django's test client as
                     a logged-in admin: server time (median of 3) and size

SSH counters are shell builtins reading /proc (no fork per command on the
node side), so the nodes' own CPU disturbs the shared machine as little as
possible; the commands still run through sshd, a session and a shell.

Run:  .venv/bin/python bench/fleet.py [--sizes 10,100,1000] [--interval 30] [--ticks 5]
      .venv/bin/python bench/fleet.py --sizes 10,100 --interval 10 --ticks 3 --warmup 1   # quick
The last line printed is one JSON object: {"n10": {...}, "n100": {...}, ...}.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Shell builtins only (read, echo, parameter expansion): no process per sample
# on the node side.
COMMANDS = [
    "read a b c r < /proc/loadavg; echo $a",
    "read a b c r < /proc/loadavg; echo $b",
    "read a b c r < /proc/loadavg; echo $c",
    "read u i < /proc/uptime; echo ${u%.*}",
    "read u i < /proc/uptime; echo ${i%.*}",
    "read t f < /proc/sys/fs/file-nr; echo $t",
    "read m < /proc/sys/kernel/threads-max; echo $m",
    "read p < /proc/sys/kernel/pid_max; echo $p",
    "read n < /proc/sys/kernel/ngroups_max; echo $n",
    "echo $$",
]
JMX_ATTRS = [
    ("java.lang:type=Threading", "ThreadCount", ""),
    ("java.lang:type=Memory", "HeapMemoryUsage", "used"),
]
JVMS = 2
CLK_TCK = os.sysconf("SC_CLK_TCK")
KEYS = ("samples", "missed_stamps", "cpu_ms_per_sample", "sessions_per_node", "worker_rss_mb",
        "dispatch_ms", "evaluate_ms", "overview_ms", "overview_kib")


# --------------------------------------------------------------------------- /proc

def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of ``pid`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(fields[i]) for i in (11, 12, 13, 14))


def tree_cpu(pid: int) -> dict[int, int]:
    """CPU ticks of a process and of each of its children, by pid: a child that
    ends moves its time into the parent's cutime, so the sum stays whole."""
    return {p: cpu_ticks(p) for p in (pid, *children(pid))}


def cpu_delta_s(before: dict[int, int], after: dict[int, int]) -> float:
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items()) / CLK_TCK


def rss_mb(pids) -> float:
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def raise_nofile() -> tuple[int, int]:
    """Soft descriptor limit up to the hard one: the workers inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --------------------------------------------------------------------------- Django

def setup_django(workdir: Path, env: dict[str, str]) -> None:
    os.environ.update(env)
    (workdir / "var").mkdir(parents=True, exist_ok=True)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def configure(n: int, fleet, jvm_ports: list[int], interval: int):
    """A cluster of the fleet's n nodes with 10 SSH counters, a cluster of one
    local node with the JVMs' JMX counters, and one dry-run trigger per
    counter (every series is evaluated). Returns the expected series."""
    from apps.control.models import Cluster, Node, Trigger
    from apps.monitoring.jmx.models import JVM, JMXCounter
    from apps.monitoring.samples import SeriesRef
    from apps.monitoring.ssh.models import SSHCounter

    cluster = Cluster.objects.create(name=f"fleet{n}", max_size=max(n, 10), ssh_user=fleet.user,
                                     ssh_port=fleet.port, ssh_key_path=str(fleet.client_key_path))
    nodes = Node.objects.bulk_create(Node(cluster=cluster, name=f"f{n}-n{i}", address=address)
                                     for i, address in enumerate(fleet.addresses))
    counters = [SSHCounter.objects.create(cluster=cluster, name=f"c{i}", command=command, threshold=1e15,
                                          interval_s=interval) for i, command in enumerate(COMMANDS)]
    for counter in counters:
        Trigger.objects.create(cluster=cluster, name=f"t-{counter.name}", timing_minutes=1,
                               dry_run=True).ssh_counters.set([counter])
    jvm_cluster = Cluster.objects.create(name=f"jvms{n}", max_size=10)
    jvm_node = Node.objects.create(cluster=jvm_cluster, name=f"f{n}-jvm", address="127.0.0.1")
    jmx = []
    for j, port in enumerate(jvm_ports):
        jvm = JVM.objects.create(cluster=jvm_cluster, name=f"jvm{j}", jmx_port=port)
        jmx += [JMXCounter.objects.create(jvm=jvm, name=f"j{j}-{i}", mbean=m, attribute=a, composite_key=k,
                                          threshold=1e15, interval_s=interval)
                for i, (m, a, k) in enumerate(JMX_ATTRS)]
    Trigger.objects.create(cluster=jvm_cluster, name="t-jmx", timing_minutes=1,
                           dry_run=True).jmx_counters.set(jmx)
    return ([SeriesRef("ssh", node.id, c.id) for node in nodes for c in counters]
            + [SeriesRef("jmx", jvm_node.id, c.id, c.jvm_id) for c in jmx])


def unconfigure() -> None:
    """Every row a size made, so the next size's dispatcher, evaluator and
    overview see only its own fleet."""
    from apps.control.models import Cluster, Node, Trigger
    from apps.monitoring.jmx.models import JVM, JMXCounter
    from apps.monitoring.models import CollectionHealth
    from apps.monitoring.ssh.models import SSHCounter

    for model in (Trigger, SSHCounter, JMXCounter, JVM, CollectionHealth, Node, Cluster):
        model.objects.all().delete()


def time_dispatch(when: datetime) -> float:
    """One dispatcher tick as beat's task runs it, nothing sent: at a stamp a
    day ahead, so it claims a stamp the running beat never uses."""
    from apps.monitoring.collection import dispatch_round
    from apps.monitoring.tasks import collect_args

    sent = []
    started = time.perf_counter()
    dispatch_round(when + timedelta(days=1), lambda message, at, expires: sent.append(collect_args(message, at)))
    elapsed = time.perf_counter() - started
    if not sent:
        raise SystemExit("dispatch_round sent nothing: no counter due?")
    return elapsed * 1000


def time_evaluate(evaluator, now: datetime, series: int) -> float:
    started = time.perf_counter()
    report = evaluator.run(now)
    elapsed = time.perf_counter() - started
    if report.series != series:
        print(f"  evaluator counted {report.series} series, expected {series}", flush=True)
    return elapsed * 1000


def time_overview(repeats: int = 3) -> tuple[float, float]:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    user = get_user_model().objects.filter(username="bench").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-x1")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    times, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(reverse("console:overview"))
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"overview answered {response.status_code}")
        size = len(response.content)
    return statistics.median(times) * 1000, size / 1024


def read_back(series, stamps) -> int:
    """How many of series × stamps hold a sample in memcached."""
    from apps.monitoring.store import SampleStore

    store = SampleStore.from_settings()
    keys = [ref.sample_key(stamp) for ref in series for stamp in stamps]
    found = 0
    for i in range(0, len(keys), 2000):
        found += sum(v is not None for v in store.get_values(keys[i:i + 2000]).values())
    return found


# --------------------------------------------------------------------------- one size

def sleep_until(epoch: float) -> None:
    time.sleep(max(0.0, epoch - time.time()))


def sessions_per_node(fleet, n: int) -> float:
    return sum(len(children(s.pid)) for s in fleet.servers) / n


def warm_up(first: float, args, fleet, n: int) -> float:
    """The first measured stamp: after ``--warmup`` ticks, and after every node
    holds its session (checked mid-tick before it; at most ``--max-warmup``
    ticks). Making 1,000 first connections takes a few minutes here, where
    the fleet's sshd run on the same two cores as the collectors; the
    measured ticks are the steady state the targets are about."""
    interval = args.interval
    window_start = first + args.warmup * interval
    while window_start < first + args.max_warmup * interval:
        sleep_until(window_start - interval / 2)
        if sessions_per_node(fleet, n) >= 0.995:
            break
        window_start += interval
    return window_start


def start_processes(workdir: Path, tag: str, vhost_url: str, env: dict[str, str]):
    from devservers.celery_worker import CeleryWorker
    from devservers.util import REPO_ROOT

    # Two collect workers of one pool process each, as deploy/ runs them: node
    # affinity is per worker, so a single-process worker is what pins a node
    # to one process (and one SSH session).
    collect = [CeleryWorker(vhost_url, name=f"collect{k}-{tag}", queues=("collect",), env=env, concurrency=1,
                            log_path=workdir / f"collect{k}-{tag}.log").start()
               for k in (1, 2)]
    control = CeleryWorker(vhost_url, name=f"control{tag}", queues=("control",), env=env, concurrency=1,
                           log_path=workdir / f"control{tag}.log").start()
    beat = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "pyscaler", "beat", "-l", "WARNING",
         "-s", str(workdir / f"beat{tag}-schedule")],
        cwd=REPO_ROOT, env={**os.environ, **env, "CELERY_BROKER_URL": vhost_url},
        stdout=open(workdir / f"beat{tag}.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    return collect, control, beat


def measure_size(n: int, args, workdir: Path, vhost_url: str, env: dict[str, str], jvm_ports) -> dict:
    from apps.control.evaluator import Evaluator
    from devservers.fleet import Fleet
    from devservers.util import stop_process

    interval = args.interval
    started = time.monotonic()
    fleet = Fleet(workdir / f"fleet{n}", n).start(timeout=60)
    collect = control = beat = None
    try:
        series = configure(n, fleet, jvm_ports, interval)
        size_env = {**env, "SSH_KNOWN_HOSTS": str(fleet.known_hosts_path)}
        collect, control, beat = start_processes(workdir, str(n), vhost_url, size_env)
        print(f"n={n}: {len(fleet.servers)} sshd, {len(series)} series, set up in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        first = (time.time() // interval + 1) * interval  # the first whole stamp the beat sees
        window_start = warm_up(first, args, fleet, n)
        print(f"n={n}: warm-up {round((window_start - first) / interval)} tick(s)", flush=True)
        stamps = [datetime.fromtimestamp(window_start + k * interval, tz=timezone.utc)
                  for k in range(args.ticks)]
        sleep_until(window_start - 0.3)
        cpu_before = {pid: t for worker in collect for pid, t in tree_cpu(worker.pid).items()}
        dispatch, evaluate, sessions = [], [], []
        # One evaluator for the whole size, as a control worker process keeps
        # one (apps.control.evaluator.evaluate): its first run rebuilds.
        evaluator = Evaluator(fire=lambda *a, **k: None)
        for k in range(args.ticks):
            sleep_until(window_start + k * interval + interval / 2)
            dispatch.append(time_dispatch(datetime.now(timezone.utc)))
            evaluate.append(time_evaluate(evaluator, datetime.now(timezone.utc), len(series)))
            sessions.append(sessions_per_node(fleet, n))
        sleep_until(window_start + args.ticks * interval - 0.3)
        cpu_s = cpu_delta_s(cpu_before, {pid: t for worker in collect for pid, t in tree_cpu(worker.pid).items()})
        rss = rss_mb([pid for worker in collect for pid in (worker.pid, *worker.pool_pids())])
        sessions.append(sessions_per_node(fleet, n))
        samples = read_back(series, stamps)
        overview_ms, overview_kib = time_overview()
        steady = evaluate[1:] or evaluate
        return {
            "samples": samples,
            "missed_stamps": len(series) * len(stamps) - samples,
            "cpu_ms_per_sample": round(cpu_s * 1000 / samples, 3) if samples else None,
            "sessions_per_node": round(sessions[-1], 3),
            "worker_rss_mb": round(rss, 1),
            "dispatch_ms": round(statistics.median(dispatch), 2),
            "evaluate_ms": round(statistics.median(steady), 1),
            "overview_ms": round(overview_ms, 1),
            "overview_kib": round(overview_kib, 1),
        }
    except BaseException:
        for worker in collect or ():
            print(f"{worker.name} log tail:\n" + worker.log_tail(40), file=sys.stderr)
        raise
    finally:
        stop_process(beat)
        for worker in (control, *(collect or ())):
            if worker is not None:
                worker.stop()
        fleet.stop()
        unconfigure()


# --------------------------------------------------------------------------- main

def print_table(results: dict[str, dict]) -> None:
    print()
    print(f"{'nodes':>6}" + "".join(f"{key:>19}" for key in KEYS))
    for name, row in results.items():
        print(f"{name[1:]:>6}" + "".join(f"{str(row[key]):>19}" for key in KEYS))
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000", help="node counts to measure")
    parser.add_argument("--interval", type=int, default=30, help="every counter's interval (s)")
    parser.add_argument("--ticks", type=int, default=5, help="ticks measured per size")
    parser.add_argument("--warmup", type=int, default=3,
                        help="ticks collected before measuring (every process connects to its nodes)")
    parser.add_argument("--max-warmup", type=int, default=10,
                        help="most warm-up ticks while nodes still lack their session")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (worker and beat logs)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from devservers.celery_worker import BrokerVhost
    from devservers.jvm import JmxJvm
    from devservers.memcached import MemcachedServer

    warnings.filterwarnings("ignore", message="No directory at")  # static files: not collected here
    nofile = raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="pyscaler-fleet-"))
    memcached = MemcachedServer().start()
    jvms = [JmxJvm(workdir=workdir / f"jvm{j}").start() for j in range(JVMS)]
    vhost = BrokerVhost(os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")).create()
    env = {
        "DJANGO_SETTINGS_MODULE": "pyscaler.settings",
        "PYSCALER_VAR_DIR": str(workdir / "var"),
        "DATABASE_URL": f"sqlite:///{workdir / 'fleet.sqlite3'}",
        "SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
        "COLLECT_SIGNING_KEY": "bench-only-signing-key-0123456789-0123456789-0123456789",
        "MEMCACHED_SERVERS": memcached.address,
        "SAMPLE_LOG_DIR": str(workdir / "samples"),
        "EVALUATE_TICK_S": "0",  # the bench evaluates in-process, once per tick
        # 1,000 nodes (and the JVMs' node) over two single-process workers.
        "COLLECT_MAX_NODES_PER_PROCESS": "510",
        "ALLOWED_HOSTS": "localhost",
        "LOG_LEVEL": "WARNING",
    }
    results: dict[str, dict] = {}
    try:
        setup_django(workdir, env)
        print(f"sizes {sizes}, 10 SSH counters per node + {JVMS} JVMs × {len(JMX_ATTRS)} JMX counters, "
              f"interval {args.interval} s, {args.warmup} warm-up + {args.ticks} measured ticks; "
              f"RLIMIT_NOFILE {nofile[0]}", flush=True)
        for n in sizes:
            results[f"n{n}"] = row = measure_size(n, args, workdir, vhost.url, env, [j.port for j in jvms])
            print(f"n={n}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        print_table(results)
        print(json.dumps(results))
        return 0
    finally:
        vhost.delete()
        for jvm in jvms:
            jvm.stop()
        memcached.stop()
        if args.keep:
            print(f"work directory kept: {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
