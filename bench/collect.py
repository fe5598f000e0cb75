#!/usr/bin/env python
"""Collection benchmark: PyScaler's collection path against references measured
in the same run, on the same machine, against the same real servers.

SSH (N loopback sshd "nodes" × K counters, external commands):
  pyscaler     apps.monitoring.collection.collect_message — the code the
               collect task runs on the message the dispatcher sends — storing
               into two memcached servers (the dispatcher's making of messages,
               once per tick for all batches, is timed apart: dispatch_plan_ms)
  rawshell     the floor: one persistent paramiko channel per node running
               /bin/sh, the same commands written on stdin, outputs read back,
               every node free-running in a thread of its own
  rawshell_rounds  the same floor in rounds as collection runs them (all nodes
               sent at once, the round ends with the slowest node)
  controlmaster OpenSSH's client with ControlMaster, one `ssh -S` per command,
               in one loop over the nodes' counters (what a script collector does)
  naive        paramiko connecting per sample, in one loop over the nodes'
               counters (what a simple collector does)
JMX (one JVM with JMX remote):
  pyscaler     apps.monitoring.jmx.collector.collect_jvm over M attributes
  java         bench/JmxBench.java: plain Java getAttributes, persistent connection
               (the two alternate three times; each keeps its best run)
memcached: SampleStore.put_many of 10,000 samples over two memcached servers.

PyScaler and the SSH floors alternate three times, as do PyScaler's JMX and
the Java client; each figure is its best run (the machines are shared).

Run:  .venv/bin/python bench/collect.py [--nodes 4] [--counters 10] [--seconds 5]
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# External commands (not shell builtins), each printing one number.
COMMANDS = [
    "cut -d' ' -f1 /proc/loadavg",
    "cut -d' ' -f2 /proc/loadavg",
    "cut -d' ' -f3 /proc/loadavg",
    "awk '/MemAvailable/ {print $2}' /proc/meminfo",
    "awk '/MemFree/ {print $2}' /proc/meminfo",
    "grep -c ^processor /proc/cpuinfo",
    "cut -d' ' -f1 /proc/uptime",
    "wc -l < /proc/self/mounts",
    "cat /proc/sys/kernel/threads-max",
    "cut -d. -f1 /proc/uptime",
]
JMX_ATTRS = [
    ("java.lang:type=OperatingSystem", "AvailableProcessors", ""),
    ("java.lang:type=OperatingSystem", "SystemLoadAverage", ""),
    ("java.lang:type=OperatingSystem", "FreeMemorySize", ""),
    ("java.lang:type=OperatingSystem", "TotalMemorySize", ""),
    ("java.lang:type=OperatingSystem", "ProcessCpuTime", ""),
    ("java.lang:type=OperatingSystem", "CommittedVirtualMemorySize", ""),
    ("java.lang:type=Memory", "HeapMemoryUsage", "used"),
    ("java.lang:type=Threading", "ThreadCount", ""),
]


def counter_commands(k: int) -> list[str]:
    return [COMMANDS[i % len(COMMANDS)] for i in range(k)]


def run_for(seconds: float, body) -> tuple[int, float]:
    """Call body() until `seconds` pass; return (units done, elapsed)."""
    done = 0
    start = time.perf_counter()
    while True:
        done += body()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done, elapsed


def parallel_nodes(servers, seconds: float, per_node) -> float:
    """Run per_node(server, stop_at) in one thread per node; total units/s."""
    stop_at = time.perf_counter() + seconds
    start = time.perf_counter()
    with ThreadPoolExecutor(len(servers)) as pool:
        counts = list(pool.map(lambda s: per_node(s, stop_at), servers))
    return sum(counts) / (time.perf_counter() - start)


# --------------------------------------------------------------------------- SSH references

def _paramiko_client(server):
    import paramiko

    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(server.host, server.port, username=server.user, key_filename=str(server.client_key_path),
                   sock=sock, allow_agent=False, look_for_keys=False, timeout=5)
    return client


def bench_rawshell(servers, commands, seconds) -> float:
    def per_node(server, stop_at):
        client = _paramiko_client(server)
        chan = client.get_transport().open_session()
        chan.exec_command("/bin/sh")
        buf = b""
        done = 0
        try:
            while time.perf_counter() < stop_at:
                script = "".join(f"{c}\n" for c in commands) + "echo __END__\n"
                chan.sendall(script.encode())
                while b"__END__\n" not in buf:
                    buf += chan.recv(65536)
                out, _, buf = buf.partition(b"__END__\n")
                assert len(out.splitlines()) == len(commands), out
                done += len(commands)
        finally:
            chan.close()
            client.close()
        return done

    return parallel_nodes(servers, seconds, per_node)


def sequential_loop(servers, commands, seconds, sample_one) -> float:
    """What a simple collector does: one loop over every node's every counter,
    one sample at a time. Returns samples/s."""
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        server = servers[done % len(servers)]
        sample_one(server, commands[(done // len(servers)) % len(commands)])
        done += 1
    return done / (time.perf_counter() - start)


def bench_rawshell_rounds(servers, commands, seconds) -> float:
    """The same floor in rounds, as collection works: every node's commands
    are sent at once and a round ends when the slowest node has answered."""
    shells = []
    for server in servers:
        client = _paramiko_client(server)
        chan = client.get_transport().open_session()
        chan.exec_command("/bin/sh")
        shells.append([client, chan, b""])
    script = ("".join(f"{c}\n" for c in commands) + "echo __END__\n").encode()

    def one(shell):
        _, chan, _ = shell
        chan.sendall(script)
        while b"__END__\n" not in shell[2]:
            shell[2] += chan.recv(65536)
        out, _, shell[2] = shell[2].partition(b"__END__\n")
        return len(out.splitlines())

    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            done, elapsed = run_for(seconds, lambda: sum(pool.map(one, shells)))
        return done / elapsed
    finally:
        for client, chan, _ in shells:
            chan.close()
            client.close()


def bench_naive(servers, commands, seconds) -> float:
    def sample_one(server, command):
        client = _paramiko_client(server)
        try:
            _, out, _ = client.exec_command(command, timeout=10)
            float(out.read().strip())
        finally:
            client.close()

    return sequential_loop(servers, commands, seconds, sample_one)


def bench_controlmaster(servers, commands, seconds, workdir: Path) -> float:
    ssh = shutil.which("ssh")
    if not ssh:
        raise SystemExit("ssh not found: apt-get install -y openssh-client")

    def base(server):
        control = workdir / f"cm-{server.host}-{server.port}"
        return [ssh, "-p", str(server.port), "-i", str(server.client_key_path),
                "-o", f"UserKnownHostsFile={server.known_hosts_path}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", f"ControlPath={control}", f"{server.user}@{server.host}"]

    masters = []
    for server in servers:
        argv = base(server)
        masters.append(argv)
        subprocess.run(argv[:-1] + ["-o", "ControlMaster=yes", "-o", "ControlPersist=120", "-fN", argv[-1]],
                       check=True, timeout=20)

    def sample_one(server, command):
        out = subprocess.run(base(server) + [command], capture_output=True, timeout=10)
        float(out.stdout.strip())

    try:
        return sequential_loop(servers, commands, seconds, sample_one)
    finally:
        for argv in masters:
            subprocess.run(argv[:-1] + ["-O", "exit", argv[-1]], capture_output=True, timeout=10)


# --------------------------------------------------------------------------- PyScaler (Django)

def setup_django(workdir: Path, memcached: list[str], known_hosts: Path) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "pyscaler.settings",
        "PYSCALER_VAR_DIR": str(workdir / "var"),
        "SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
        "MEMCACHED_SERVERS": ",".join(memcached),
        "SSH_KNOWN_HOSTS": str(known_hosts),
        "SAMPLE_LOG_DIR": str(workdir / "samples"),
        "LOG_LEVEL": "WARNING",
    })
    (workdir / "var").mkdir(parents=True, exist_ok=True)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def configure(servers, commands, jvm_port: int | None):
    from apps.control.models import Cluster, Node
    from apps.monitoring.ssh.models import SSHCounter

    cluster = Cluster.objects.create(name="bench", max_size=len(servers))
    nodes = [Node.objects.create(cluster=cluster, name=f"node{i}", address=s.host, ssh_port=s.port,
                                 ssh_user=s.user, ssh_key_path=str(s.client_key_path))
             for i, s in enumerate(servers)]
    counters = [SSHCounter.objects.create(cluster=cluster, name=f"c{i}", command=c, threshold=1e12,
                                          interval_s=1)
                for i, c in enumerate(commands)]
    return cluster, nodes, counters


def bench_pyscaler_ssh(nodes, counters, seconds) -> float:
    """The collect task's work (collect_message) on the message a dispatcher
    sends each tick; the dispatcher's own making of messages, once per tick
    for all batches, is bench_dispatch_plan."""
    from apps.monitoring.collection import NodeWork, collect_message, make_messages

    [message] = make_messages([[NodeWork(n.id, {"ssh": [c.id for c in counters]}) for n in nodes]])
    collect_message(message, datetime.now(timezone.utc))  # connect once, as a warm worker has
    samples = 0

    def body():
        nonlocal samples
        report = collect_message(message, datetime.now(timezone.utc))
        if report.errors:
            raise SystemExit(f"collection errors during the benchmark: {report.as_dict()}")
        samples += report.samples
        return report.samples

    done, elapsed = run_for(seconds, body)
    return done / elapsed


def bench_dispatch_plan(nodes, counters, seconds: float = 1.0) -> float:
    """Milliseconds the dispatcher spends making one tick's messages for these nodes."""
    from apps.monitoring.collection import NodeWork, make_messages

    work = [NodeWork(n.id, {"ssh": [c.id for c in counters]}) for n in nodes]
    done, elapsed = run_for(seconds, lambda: len(make_messages([work])))
    return elapsed / done * 1000


def bench_pyscaler_jmx(cluster, jvm_port, seconds, repeats=1, between=None) -> list[float]:
    from apps.monitoring.jmx.collector import collect_jvm
    from apps.monitoring.jmx.models import JVM, JMXCounter

    jvm = JVM.objects.create(cluster=cluster, name="bench-jvm", jmx_port=jvm_port)
    counters = [JMXCounter.objects.create(jvm=jvm, name=f"j{i}", mbean=m, attribute=a, composite_key=k,
                                          threshold=1e18, interval_s=1)
                for i, (m, a, k) in enumerate(JMX_ATTRS)]
    from apps.control.models import Node

    # The JVM's agent listens on 127.0.0.1: a node of its own, not collected over SSH.
    local = Node.objects.create(cluster=cluster, name="jvm-node", address="127.0.0.1",
                                collection_enabled=False)
    for _ in range(200):  # warm-up, as the Java reference warms up too
        collect_jvm(local, jvm, counters, datetime.now(timezone.utc))

    def body():
        results = collect_jvm(local, jvm, counters, datetime.now(timezone.utc))
        bad = [r for r in results if not hasattr(r, "value")]
        if bad:
            raise SystemExit(f"JMX errors during the benchmark: {bad[:2]}")
        return len(results)

    runs = []
    for _ in range(repeats):
        done, elapsed = run_for(seconds, body)
        runs.append(done / elapsed)
        if between is not None:
            between()
    return runs


def bench_java_jmx(jvm_port: int, seconds: float) -> float:
    by_mbean: dict[str, list[str]] = {}
    for mbean, attr, _ in JMX_ATTRS:
        by_mbean.setdefault(mbean, []).append(attr)
    argv = ["java", str(REPO / "bench" / "JmxBench.java"), "127.0.0.1", str(jvm_port), str(seconds)]
    for mbean, attrs in by_mbean.items():
        argv += [mbean, ",".join(attrs)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise SystemExit(f"JmxBench failed: {out.stderr[-2000:]}")
    line = [l for l in out.stdout.splitlines() if l.startswith("values_per_s=")][-1]
    return float(line.split()[0].split("=")[1])


def bench_memcached_store(repeats: int = 5) -> float:
    from apps.monitoring.samples import Sample, SeriesRef, floor_stamp
    from apps.monitoring.store import SampleStore

    store = SampleStore.from_settings()
    stamp = floor_stamp(datetime.now(timezone.utc), 10)
    samples = [Sample(SeriesRef("ssh", n, c), stamp, float(n * c))
               for n in range(100) for c in range(100)]
    store.put_many(samples[:100])  # connections open
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        stored = store.put_many(samples)
        times.append(time.perf_counter() - start)
        if stored != len(samples):
            raise SystemExit(f"stored {stored} of {len(samples)} samples")
    return statistics.median(times)


# --------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--counters", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--naive-seconds", type=float, default=3.0)
    args = parser.parse_args()

    from devservers.jvm import JmxJvm
    from devservers.memcached import MemcachedServer
    from devservers.sshd import SshServer

    workdir = Path(tempfile.mkdtemp(prefix="pyscaler-bench-"))
    servers, started = [], []
    try:
        for i in range(args.nodes):
            server = SshServer(workdir / f"node{i}", host=f"127.0.0.{i + 2}").start()
            servers.append(server)
            started.append(server)
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text("".join(Path(s.known_hosts_path).read_text() for s in servers))
        memcached = [MemcachedServer().start() for _ in range(2)]
        started.extend(memcached)
        jvm = JmxJvm(workdir=workdir / "jvm").start()
        started.append(jvm)

        setup_django(workdir, [m.address for m in memcached], known_hosts)
        commands = counter_commands(args.counters)
        cluster, nodes, counters = configure(servers, commands, jvm.port)

        print(f"{args.nodes} sshd nodes × {args.counters} counters; {args.seconds:.0f} s per measurement",
              flush=True)
        figures = {}
        # Alternate PyScaler and the floors three times; each keeps its best
        # run, so a burst of load elsewhere on the machine favours neither.
        runs: dict[str, list[float]] = {"ssh_samples_per_s": [], "ssh_rawshell_per_s": [],
                                        "ssh_rawshell_rounds_per_s": []}
        for _ in range(3):
            runs["ssh_samples_per_s"].append(bench_pyscaler_ssh(nodes, counters, args.seconds))
            runs["ssh_rawshell_per_s"].append(bench_rawshell(servers, commands, args.seconds))
            runs["ssh_rawshell_rounds_per_s"].append(bench_rawshell_rounds(servers, commands, args.seconds))
        figures.update({key: max(values) for key, values in runs.items()})
        figures["ssh_controlmaster_per_s"] = bench_controlmaster(servers, commands, args.seconds, workdir)
        figures["ssh_naive_per_s"] = bench_naive(servers, commands, args.naive_seconds)
        # JMX figures swing with whatever else the two cores do: alternate the
        # two measurements and keep each one's best of three.
        java_runs: list[float] = []
        jmx_runs = bench_pyscaler_jmx(cluster, jvm.port, args.seconds, repeats=3,
                                      between=lambda: java_runs.append(bench_java_jmx(jvm.port, args.seconds)))
        figures["jmx_values_per_s"] = max(jmx_runs)
        figures["jmx_java_values_per_s"] = max(java_runs)
        figures["memcached_10k_store_s"] = bench_memcached_store()
        figures["dispatch_plan_ms"] = bench_dispatch_plan(nodes, counters)

        ratio = {
            "ssh_vs_rawshell": figures["ssh_samples_per_s"] / figures["ssh_rawshell_per_s"],
            "ssh_vs_rawshell_rounds": figures["ssh_samples_per_s"] / figures["ssh_rawshell_rounds_per_s"],
            "ssh_vs_controlmaster": figures["ssh_samples_per_s"] / figures["ssh_controlmaster_per_s"],
            "ssh_vs_naive": figures["ssh_samples_per_s"] / figures["ssh_naive_per_s"],
            "jmx_vs_java": figures["jmx_values_per_s"] / figures["jmx_java_values_per_s"],
        }
        targets = {"ssh_vs_rawshell": 0.7, "ssh_vs_rawshell_rounds": 0.7, "ssh_vs_controlmaster": 8,
                   "ssh_vs_naive": 40, "jmx_vs_java": 0.65}
        print()
        print(f"{'measurement':<34}{'per second':>14}")
        for key in ("ssh_samples_per_s", "ssh_rawshell_per_s", "ssh_rawshell_rounds_per_s",
                    "ssh_controlmaster_per_s", "ssh_naive_per_s",
                    "jmx_values_per_s", "jmx_java_values_per_s"):
            print(f"{key:<34}{figures[key]:>14.1f}")
        print(f"{'memcached_10k_store_s':<34}{figures['memcached_10k_store_s']:>14.4f}  (target < 0.1 s)")
        print(f"{'dispatch_plan_ms':<34}{figures['dispatch_plan_ms']:>14.2f}  (once per tick, all batches)")
        print()
        print(f"{'ratio':<34}{'measured':>10}{'target':>10}")
        for key, value in ratio.items():
            mark = "ok" if value >= targets[key] else "BELOW"
            print(f"{key:<34}{value:>10.2f}{targets[key]:>10}  {mark}")
        result = {**{k: round(v, 4) for k, v in figures.items()},
                  **{k: round(v, 3) for k, v in ratio.items()},
                  "nodes": args.nodes, "counters": args.counters, "jmx_attributes": len(JMX_ATTRS),
                  "seconds": args.seconds}
        print(json.dumps(result))
        return 0
    finally:
        for server in reversed(started):
            try:
                server.stop()
            except Exception:  # noqa: BLE001
                pass
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
