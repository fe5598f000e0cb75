"""SSH collection faults, each with the server really stopped, paused, restarted
or the command really hanging: bounded in time, an error per counter, other
nodes unaffected, recovery on the next tick."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from apps.monitoring.samples import CollectionError, Sample
from apps.monitoring.ssh.collector import collect_node
from apps.monitoring.ssh.connection import ConnectionPool
from tests.factories import make_counters, make_node
from tests.sshkit import _no_agent, take_down, trust, values  # noqa: F401

pytestmark = pytest.mark.django_db


def timed(fn, *args, **kwargs):
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - start


def own_processes_running(needle: bytes) -> list[int]:
    """Pids of processes whose command line contains ``needle`` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def test_an_unreachable_node_fails_fast_and_the_other_node_is_still_collected(
    make_sshd, ssh_pool: ConnectionPool, settings, tmp_path
) -> None:
    up, down = make_sshd(host="127.0.0.2"), make_sshd(host="127.0.0.3")
    trust(settings, tmp_path / "known_hosts", up, down)
    node_up, node_down = make_node(server=up), make_node(server=down)
    counters = make_counters(node_up, ["echo 1", "echo 2", "echo 3"])
    assert values(collect_node(node_down, counters, pool=ssh_pool)) == [1.0, 2.0, 3.0]
    take_down(down)

    results = {}
    for node in (node_down, node_up):
        results[node.id], elapsed = timed(collect_node, node, counters, pool=ssh_pool)
        assert elapsed < 3.0  # refused at once: well under the 5 s connect timeout
    failed = results[node_down.id]
    assert all(isinstance(r, CollectionError) for r in failed)
    assert [r.series.counter_id for r in failed] == [c.id for c in counters]  # one error per counter
    assert failed[0].message == f"connection refused by {down.host}:{down.port} (is sshd running on that port?)"
    assert values(results[node_up.id]) == [1.0, 2.0, 3.0]


def test_a_hung_node_costs_at_most_the_connect_timeout(make_sshd, ssh_pool, settings, tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    settings.SSH_CONNECT_TIMEOUT_S = 1.0
    node = make_node(server=server)
    counters = make_counters(node, ["echo 1", "echo 2"])
    server.pause()  # TCP still connects (kernel backlog) but sshd never answers
    try:
        results, elapsed = timed(collect_node, node, counters, pool=ssh_pool)
    finally:
        server.resume()
    assert elapsed < 3.0  # the 1 s connect timeout, plus slack
    assert values(results) == [f"no SSH banner from {server.host}:{server.port} after 1 s "
                               f"(server hung or overloaded, or not an SSH server)"] * 2
    assert values(collect_node(node, counters, pool=ssh_pool)) == [1.0, 2.0]


def test_a_wrong_key_is_refused_with_a_clear_message(make_sshd, ssh_pool, settings, tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True, timeout=30)
    node = make_node(server=server, ssh_key_path=str(other_key))
    [result], elapsed = timed(collect_node, node, make_counters(node, ["echo 1"]), pool=ssh_pool)
    assert elapsed < 3.0  # refused at once: well under the 5 s connect timeout
    assert result.message == (
        f"authentication refused for {server.user}@{server.host}:{server.port} "
        f"(tried: key file {other_key}, SSH agent (none running))"
    )


def test_configuration_errors_name_the_field_and_touch_no_network(make_sshd, ssh_pool, settings,
                                                                   tmp_path, monkeypatch) -> None:
    server = make_sshd(start=False)  # nothing listens: a network attempt would say so
    trust(settings, tmp_path / "known_hosts", server)
    node = make_node(server=server, ssh_key_path="/nonexistent/id_ed25519")
    [missing] = collect_node(node, make_counters(node, ["echo 1"]), pool=ssh_pool)
    assert missing.message == (f"SSH key file /nonexistent/id_ed25519 (node {node.name}: ssh_key_path) "
                               f"does not exist")

    monkeypatch.delenv("PYSCALER_SECRET_TEST_SSH_PW", raising=False)
    node.cluster.ssh_password_ref = "env:PYSCALER_SECRET_TEST_SSH_PW"
    node.ssh_key_path = str(server.client_key_path)
    [unset] = collect_node(node, make_counters(node, ["echo 2"]), pool=ssh_pool)
    assert unset.message == (f"cluster {node.cluster.name}: ssh_password_ref env:PYSCALER_SECRET_TEST_SSH_PW: "
                             f"environment variable PYSCALER_SECRET_TEST_SSH_PW is not set")


def test_a_hanging_command_is_cut_at_the_deadline_then_the_next_batch_works(
    make_sshd, ssh_pool, settings, tmp_path
) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    settings.SSH_COMMAND_TIMEOUT_S = 1.0
    node = make_node(server=server)
    hang = "sleep 29.731"  # a distinctive command line to look for afterwards
    counters = make_counters(node, ["echo 1", f"echo partial; {hang}", "echo 3"])

    results, elapsed = timed(collect_node, node, counters, pool=ssh_pool)
    assert 1.0 <= elapsed < 2.5  # the deadline (plus a loaded machine's slack), not the 30 s the command wanted
    assert isinstance(results[0], Sample) and results[0].value == 1.0
    assert (results[1].message, results[1].output) == ("timed out after 1 s", "partial\n")
    assert results[2].message == "not run: an earlier command of the batch failed (timed out after 1 s)"

    # The hung shell is killed on the node, not left to pile up tick after tick.
    deadline = time.monotonic() + 5
    while own_processes_running(hang.encode().replace(b" ", b"\0")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert own_processes_running(hang.encode().replace(b" ", b"\0")) == []

    assert values(collect_node(node, counters[::2], pool=ssh_pool)) == [1.0, 3.0]
    assert ssh_pool.opened == 2  # the hung connection was replaced


def test_the_connection_is_reused_and_reopened_after_sshd_restarts(make_sshd, ssh_pool, settings,
                                                                   tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    node = make_node(server=server)
    counters = make_counters(node, ["echo $$"])
    first = values(collect_node(node, counters, pool=ssh_pool))
    assert values(collect_node(node, counters, pool=ssh_pool)) == first  # same shell
    assert ssh_pool.opened == 1

    take_down(server)
    server.start()
    # The dead connection is noticed and replaced within the same tick: no sample lost.
    results, elapsed = timed(collect_node, node, counters, pool=ssh_pool)
    assert isinstance(results[0], Sample) and values(results) != first
    assert ssh_pool.opened == 2 and elapsed < 3.0

    take_down(server, "kill")  # the host dies
    server.start()
    assert isinstance(collect_node(node, counters, pool=ssh_pool)[0], Sample)
    assert ssh_pool.opened == 3


def test_a_shell_killed_between_ticks_is_replaced(make_sshd, ssh_pool, settings, tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    node = make_node(server=server)
    counters = make_counters(node, ["echo $$"])
    [pid] = values(collect_node(node, counters, pool=ssh_pool))
    os.kill(int(pid), 9)
    [result] = collect_node(node, counters, pool=ssh_pool)
    assert isinstance(result, Sample) and result.value != pid


def test_a_command_flooding_its_output_is_stopped_early(make_sshd, ssh_pool, settings, tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    node = make_node(server=server)
    counters = make_counters(node, ["echo 1", "yes 0123456789", "echo 3"])
    results, elapsed = timed(collect_node, node, counters, pool=ssh_pool)
    assert elapsed < settings.SSH_COMMAND_TIMEOUT_S  # not left running until the deadline
    assert values(results)[0] == 1.0
    assert values(results)[1] == "output flood: the batch printed more than 16 MiB"
    assert values(collect_node(node, counters[::2], pool=ssh_pool)) == [1.0, 3.0]


def test_output_left_behind_by_a_background_process_goes_to_no_counter(make_sshd, ssh_pool, settings,
                                                                        tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    node = make_node(server=server)
    [late, plain] = make_counters(node, ["(sleep 0.3; echo 999) >&1 & echo 1", "echo 2"])
    assert values(collect_node(node, [late], pool=ssh_pool)) == [1.0]
    time.sleep(0.6)  # the background echo arrives between ticks
    assert values(collect_node(node, [plain], pool=ssh_pool)) == [2.0]
