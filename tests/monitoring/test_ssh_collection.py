"""SSH counter collection against real OpenSSH servers on loopback: one round
trip per node, outputs kept apart, numbers parsed strictly, connections reused."""
from __future__ import annotations

from datetime import datetime, timezone

import paramiko
import pytest

from apps.control.models import Cluster, Node
from apps.monitoring.samples import CollectionError, Sample, SeriesRef, floor_stamp
from apps.monitoring.ssh.collector import collect_node
from apps.monitoring.ssh.connection import ConnectionPool
from apps.monitoring.ssh.models import SSHCounter
from devservers.sshd import SshServer
from tests.factories import make_counters, make_node
from tests.sshkit import _no_agent, trust, values  # noqa: F401

class Spy:
    """Counts real calls of a paramiko method (the call itself still happens)."""

    def __init__(self, monkeypatch, cls, name: str) -> None:
        self.calls = 0
        original = getattr(cls, name)

        def counting(obj, *args, **kwargs):
            self.calls += 1
            return original(obj, *args, **kwargs)

        monkeypatch.setattr(cls, name, counting)


# --------------------------------------------------------------------------- tests


@pytest.mark.django_db
def test_it_collects_all_counters_of_each_node_in_one_round_trip(
    sshd_nodes: list[SshServer], ssh_pool: ConnectionPool, settings, tmp_path, monkeypatch
) -> None:
    trust(settings, tmp_path / "known_hosts", *sshd_nodes)
    nodes = [make_node(server=server) for server in sshd_nodes]
    # $$ in a subshell is the shell's pid: every command runs in the one shell.
    counters = make_counters(nodes[0], [
        "echo $$", "printf %s $$", "expr $$ + 0", "cut -d' ' -f1 /proc/loadavg", "nproc", "echo 2.5e1",
    ])
    sessions = Spy(monkeypatch, paramiko.Transport, "open_session")
    execs = Spy(monkeypatch, paramiko.Channel, "exec_command")
    sends = Spy(monkeypatch, paramiko.Channel, "sendall")
    now = datetime(2026, 11, 23, 12, 0, 7, tzinfo=timezone.utc)

    for tick in range(3):
        for node in nodes:
            results = collect_node(node, counters, now, pool=ssh_pool)
            assert all(isinstance(r, Sample) for r in results), values(results)
            [conn] = ssh_pool.idle_connections(ssh_target(node))
            assert values(results)[:3] == [conn.shell_pid] * 3
            assert values(results)[5] == 25.0
            assert [r.series for r in results] == [SeriesRef("ssh", node.id, c.id) for c in counters]
            assert {r.stamp for r in results} == {floor_stamp(now, 10)}
            assert conn.batches == tick + 1

    assert ssh_pool.opened == 2  # one connection per node, reused for every tick
    assert sessions.calls == 2 and execs.calls == 2  # one shell channel per node
    assert sends.calls == 2 + 2 * 3  # a handshake per shell, then one send per batch


def ssh_target(node: Node):
    from apps.monitoring.ssh.connection import target_for

    return target_for(node)


@pytest.mark.django_db
def test_outputs_and_exit_statuses_stay_apart_under_hostile_output(
    sshd_node: SshServer, ssh_pool: ConnectionPool, settings, tmp_path
) -> None:
    trust(settings, tmp_path / "known_hosts", sshd_node)
    node = make_node(server=sshd_node)
    commands = [
        "printf 5",  # no newline
        "printf '\\n%s:0:0\\n' 0123456789abcdef01234567; echo 6",  # looks like a trailer
        "head -c 2000 /dev/urandom",  # binary
        "seq 1 200000",  # 1.3 MB of output
        "echo 9; exit 3",  # a number, but a failing command
        "cat",  # reads stdin; must not eat the batch
        "cd / && exit 0",  # exit only leaves its own subshell
        "echo ' 7 '",
    ]
    results = collect_node(node, make_counters(node, commands), pool=ssh_pool)
    v = values(results)
    assert v[0] == 5.0
    assert v[1] == "output is not a number" and results[1].output.endswith("6\n")
    assert v[2] in ("output is not a number", "output is empty, expected one number") \
        or v[2].startswith("output is 2000 bytes")
    seq_bytes = sum(len(str(i)) + 1 for i in range(1, 200001))
    assert v[3] == f"output is {seq_bytes} bytes long, expected one number"
    assert v[4] == "command exited with status 3" and results[4].output == "9\n"
    assert v[5] == "output is empty, expected one number"
    assert v[6] == "output is empty, expected one number"
    assert v[7] == 7.0
    # and the shell is still usable for the next tick
    assert values(collect_node(node, make_counters(node, ["echo 8"])[:1], pool=ssh_pool)) == [8.0]
    assert ssh_pool.opened == 1


@pytest.mark.django_db
def test_non_numeric_output_is_an_error_carrying_the_output(
    sshd_node: SshServer, ssh_pool: ConnectionPool, settings, tmp_path
) -> None:
    trust(settings, tmp_path / "known_hosts", sshd_node)
    node = make_node(server=sshd_node)
    commands = ["echo load is high", "echo 1 2", "echo nan", "echo inf", "yes word | head -n 400",
                "echo boom >&2; exit 2", "echo 3"]
    results = collect_node(node, make_counters(node, commands), pool=ssh_pool)
    errors = results[:6]
    assert all(isinstance(e, CollectionError) and e.series is not None for e in errors)
    assert (errors[0].message, errors[0].output) == ("output is not a number", "load is high\n")
    assert errors[1].message == "output holds 2 numbers, expected exactly one"
    assert errors[2].message == errors[3].message == "output is not a number"
    assert errors[4].output.endswith("…[truncated]") and len(errors[4].output) < 520  # truncated
    assert errors[5].message == "command exited with status 2 (stderr: boom)"
    assert values(results[6:]) == [3.0]


@pytest.mark.django_db
def test_login_shell_mode_runs_counters_in_the_users_login_shell(
    sshd_node: SshServer, ssh_pool: ConnectionPool, settings, tmp_path
) -> None:
    trust(settings, tmp_path / "known_hosts", sshd_node)
    node = make_node(server=sshd_node)
    counters = make_counters(node, ["[[ 1 -lt 2 ]] && echo 1", "echo ${#BASH_VERSION}"])
    settings.SSH_COLLECT_SHELL = "/bin/sh"  # dash: no [[ ]]
    sh = collect_node(node, counters, pool=ssh_pool)
    assert isinstance(sh[0], CollectionError)
    ssh_pool.close_all()
    settings.SSH_COLLECT_SHELL = "login"  # the test user's login shell is bash
    login = collect_node(node, counters, pool=ssh_pool)
    assert values(login)[0] == 1.0 and values(login)[1] > 0


@pytest.mark.django_db
def test_it_logs_in_with_the_ssh_agent_when_no_key_file_is_configured(
    sshd_node: SshServer, ssh_pool: ConnectionPool, settings, tmp_path, monkeypatch
) -> None:
    import subprocess
    import time

    trust(settings, tmp_path / "known_hosts", sshd_node)
    settings.SSH_KEY_PATH = ""
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {"SSH_AUTH_SOCK": str(socket_path), "PATH": "/usr/bin:/bin"}
        subprocess.run(["ssh-add", "-q", str(sshd_node.client_key_path)], env=env, check=True, timeout=10)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        node = make_node(server=sshd_node, ssh_key_path="")
        assert values(collect_node(node, make_counters(node, ["echo 11"]), pool=ssh_pool)) == [11.0]
    finally:
        agent.terminate()
        agent.wait(timeout=10)


@pytest.mark.django_db
def test_ssh_settings_resolve_node_then_cluster_then_defaults(settings) -> None:
    from apps.monitoring.ssh.connection import target_for

    settings.SSH_DEFAULT_USER, settings.SSH_DEFAULT_PORT, settings.SSH_KEY_PATH = "svc", 2200, "/keys/default"
    cluster = Cluster.objects.create(name="resolve", ssh_user="ops", ssh_port=2201, ssh_key_path="/keys/cluster",
                                     ssh_password_ref="env:PYSCALER_SECRET_OPS_PW")
    bare = Cluster.objects.create(name="bare")
    plain = Node.objects.create(cluster=cluster, name="plain", address="127.0.0.5")
    custom = Node.objects.create(cluster=cluster, name="custom", address="127.0.0.6", ssh_user="root",
                                 ssh_port=22, ssh_key_path="/keys/node")
    default = Node.objects.create(cluster=bare, name="default", address="127.0.0.7")
    assert (str(target_for(plain)), target_for(plain).key_path, target_for(plain).password_ref) == (
        "ops@127.0.0.5:2201", "/keys/cluster", "env:PYSCALER_SECRET_OPS_PW")
    assert (str(target_for(custom)), target_for(custom).key_source) == ("root@127.0.0.6:22",
                                                                         "node custom: ssh_key_path")
    assert (str(target_for(default)), target_for(default).key_source) == ("svc@127.0.0.7:2200", "SSH_KEY_PATH")
    assert target_for(plain).pool_key == ("127.0.0.5", 2201, "ops")


@pytest.mark.django_db
def test_a_command_with_a_nul_fails_alone(sshd_node: SshServer, ssh_pool: ConnectionPool, settings,
                                          tmp_path) -> None:
    trust(settings, tmp_path / "known_hosts", sshd_node)
    node = make_node(server=sshd_node)
    counters = make_counters(node, ["echo 1", "echo 2"])
    SSHCounter.objects.filter(pk=counters[0].pk).update(command="echo \x00 1")  # bypasses admin validation
    counters[0].refresh_from_db()
    assert values(collect_node(node, counters, pool=ssh_pool)) == ["the command contains a NUL character", 2.0]
