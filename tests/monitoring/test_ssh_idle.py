"""Idle SSH connections are closed: a node whose collection moved to another
worker process (node affinity, apps/monitoring/collection/affinity.py) must
not keep a session from this one. Real sshd; sessions counted as sshd's
per-connection processes."""
from __future__ import annotations

import time

import pytest

from apps.monitoring.ssh.collector import collect_node
from apps.monitoring.ssh.connection import target_for
from tests.factories import make_counters, make_node
from tests.sshkit import _no_agent, session_pids, trust, values  # noqa: F401

pytestmark = pytest.mark.django_db


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_close_idle_closes_only_connections_unused_that_long(make_sshd, ssh_pool, settings, tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    node = make_node(server=server)
    counters = make_counters(node, ["echo 1"])
    assert values(collect_node(node, counters, pool=ssh_pool)) == [1.0]
    assert ssh_pool.close_idle(60) == 0
    assert len(ssh_pool.idle_connections(target_for(node))) == 1
    assert ssh_pool.close_idle(0) == 1
    assert ssh_pool.idle_connections(target_for(node)) == []
    assert _wait(lambda: not session_pids(server), 5), "sshd still has the session"
    # The next round simply opens a new one.
    assert values(collect_node(node, counters, pool=ssh_pool)) == [1.0]
    assert ssh_pool.opened == 2


def test_the_pool_closes_idle_connections_by_itself(make_sshd, ssh_pool, settings, tmp_path) -> None:
    settings.SSH_IDLE_CLOSE_S = 1
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    node = make_node(server=server)
    assert values(collect_node(node, make_counters(node, ["echo 2"]), pool=ssh_pool)) == [2.0]
    assert session_pids(server)
    assert _wait(lambda: not ssh_pool.idle_connections(target_for(node)), 5)
    assert _wait(lambda: not session_pids(server), 5), "sshd still has the session"


def test_an_idle_connection_s_thread_wakes_once_a_second_and_a_close_is_not_held_up(
        make_sshd, ssh_pool, settings, tmp_path) -> None:
    """paramiko's reader thread polls its socket every 0.1 s; hundreds of idle
    connections waking that often starved a collect process at fleet size
    (bench/fleet.py). A close still returns at once; the thread and the
    session end within one wake-up."""
    from apps.monitoring.ssh.transport import IDLE_WAKEUP_S, QuietTransport

    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    node = make_node(server=server)
    assert values(collect_node(node, make_counters(node, ["echo 1"]), pool=ssh_pool)) == [1.0]
    (conn,) = ssh_pool.idle_connections(target_for(node))
    transport = conn.client.get_transport()
    assert isinstance(transport, QuietTransport) and transport.sock.gettimeout() == IDLE_WAKEUP_S == 1.0
    started = time.monotonic()
    assert ssh_pool.close_idle(0) == 1
    assert time.monotonic() - started < 0.5
    transport.join(5)
    assert not transport.is_alive() and time.monotonic() - started < IDLE_WAKEUP_S + 0.5
    assert _wait(lambda: not session_pids(server), 5), "sshd still has the session"
