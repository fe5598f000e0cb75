"""DistributedScript's run(ctx) on two real sshd nodes through Fabric's
ThreadingGroup: parallel, per-node output and status, failures, tolerance,
Fabric tasks, host keys and the deadline (what a command started on the
nodes is killed at it)."""
from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.actions.contract import ActionError, StepContext
from apps.actions.remote_guard import STOP_GRACE_S
from tests.factories import make_action, make_cluster, make_node
from tests.sshkit import trust
from tests.nodeprocs import kill_all, running, unique_sleep, watched

pytestmark = pytest.mark.django_db


def home_of_task(c):
    """A Fabric task: a function taking a Connection (used by a test below)."""
    return "task saw " + c.run("echo $HOME").stdout.strip()


def failing_task(c):
    c.run("echo about to fail; exit 4")


SLEEP = {"seconds": "1"}  # set by a test before it runs sleeping_task


def sleeping_task(c):
    c.run("echo started")
    c.run(f"sleep {SLEEP['seconds']}")


@pytest.fixture
def cluster(sshd_nodes, settings, tmp_path):
    trust(settings, tmp_path, *sshd_nodes)
    cluster = make_cluster()
    make_node(cluster, sshd_nodes[0], "node-a")
    make_node(cluster, sshd_nodes[1], "node-b")
    make_node(cluster, sshd_nodes[1], "node-gone", state="terminated")
    return cluster


def run(cluster, params, timeout: float = 15):
    action = make_action(cluster, K.DISTRIBUTED_SCRIPT, params)
    ctx = StepContext(cluster=cluster, deadline=time.monotonic() + timeout)
    return action.kind_class()(action).run(ctx), ctx


def test_it_runs_on_every_running_node_in_parallel_with_per_node_output(cluster, sshd_nodes):
    started = time.monotonic()
    result, ctx = run(cluster, {"command": "sleep 1; echo home=$HOME"})
    elapsed = time.monotonic() - started

    assert elapsed < 1.9, f"not parallel: {elapsed:.2f} s for two 1 s commands"
    output = "\n".join(ctx.output)
    assert f"[node-a] exit 0\nhome={sshd_nodes[0].home}" in output
    assert f"[node-b] exit 0\nhome={sshd_nodes[1].home}" in output
    assert "node-gone" not in output
    assert result.summary == "2 of 2 nodes succeeded"
    assert result.data["distributed_script"] == {"node-a": "exit 0", "node-b": "exit 0"}


def test_one_failing_node_fails_the_step_naming_it(cluster, sshd_nodes):
    command = f'echo trying; test "$HOME" != "{sshd_nodes[1].home}" || exit 5'
    with pytest.raises(ActionError, match="1 of 2 nodes succeeded; failed on: node-b"):
        run(cluster, {"command": command})


def test_failures_can_be_tolerated(cluster, sshd_nodes):
    command = f'echo trying; test "$HOME" != "{sshd_nodes[1].home}" || exit 5'
    result, ctx = run(cluster, {"command": command, "tolerate_failures": True})
    assert "failures tolerated: node-b" in result.summary
    assert "[node-b] exit 5\ntrying" in "\n".join(ctx.output)


def test_it_runs_on_the_named_nodes_only(cluster):
    result, ctx = run(cluster, {"command": "echo hi", "nodes": ["node-b"]})
    assert result.data["distributed_script"] == {"node-b": "exit 0"}
    with pytest.raises(ActionError, match=r"nodes not running: node-gone \(terminated\)"):
        run(cluster, {"command": "echo hi", "nodes": ["node-gone"]})


def test_a_fabric_task_runs_per_node_with_its_result_recorded(cluster, sshd_nodes):
    result, ctx = run(cluster, {"fabric_task": f"{__name__}.home_of_task"})
    output = "\n".join(ctx.output)
    assert f"[node-a] ok\ntask saw {sshd_nodes[0].home}" in output
    assert f"[node-b] ok\ntask saw {sshd_nodes[1].home}" in output
    with pytest.raises(ActionError, match="0 of 2 nodes succeeded"):
        run(cluster, {"fabric_task": f"{__name__}.failing_task"})


def test_a_hanging_command_is_stopped_at_the_deadline(cluster):
    started = time.monotonic()
    with pytest.raises(ActionError, match="0 of 2 nodes succeeded") as info:
        run(cluster, {"command": "sleep 30"}, timeout=2)
    assert time.monotonic() - started < 5
    assert "node-a" in str(info.value)


@pytest.mark.parametrize("command", [
    "sleep {s}",
    "trap '' TERM; sleep {s}; :",  # ignores TERM: needs the KILL
    "timeout 600 sleep {s}",  # a process group of its own
    "echo started >&2; sleep {s} & sleep {s}",  # a background child too
    "FABRIC TASK",
])
def test_a_command_running_at_the_deadline_is_killed_on_every_node(cluster, command):
    seconds = unique_sleep()
    if command == "FABRIC TASK":
        SLEEP["seconds"] = seconds
        params = {"fabric_task": f"{__name__}.sleeping_task"}
    else:
        params = {"command": command.format(s=seconds)}
    action = make_action(cluster, K.DISTRIBUTED_SCRIPT, params)
    ctx = StepContext(cluster=cluster, deadline=time.monotonic() + 2)
    with watched(seconds) as watch, pytest.raises(ActionError) as info:
        action.kind_class()(action).run(ctx)

    assert watch.elapsed < 2 + STOP_GRACE_S + 1
    assert watch.left == [], f"still running on the nodes after the step: {watch.left}"
    assert "0 of 2 nodes succeeded; failed on: node-a (timed out), node-b (timed out)" in str(info.value)
    output = "\n".join(ctx.output)
    for node in ("node-a", "node-b"):
        assert f"[{node}] timed out: stopped at the step's timeout; the node sent TERM, then KILL" in output


def test_what_a_command_started_in_the_background_outlives_it_when_it_ends_in_time(cluster):
    seconds = unique_sleep()
    try:
        result, _ = run(cluster, {"command": f"nohup sleep {seconds} >/dev/null 2>&1 & echo started"},
                        timeout=5)
        time.sleep(0.5)
        left = running(seconds)
    finally:
        kill_all(seconds)
    assert result.summary == "2 of 2 nodes succeeded"
    assert len(left) == 2 and all(line.endswith(f" sleep {seconds}") for line in left), left


def test_an_unknown_host_key_is_refused_not_added(cluster, settings, tmp_path, sshd_nodes):
    only_a = trust(settings, tmp_path, sshd_nodes[0])
    before = only_a.read_text()
    with pytest.raises(ActionError, match="failed on: node-b"):
        _, ctx = run(cluster, {"command": "echo hi"})
    assert only_a.read_text() == before
    result, ctx = run(cluster, {"command": "echo hi", "tolerate_failures": True})
    assert "[node-b] error\nHostKeyError: host key for" in "\n".join(ctx.output)
    assert "is unknown" in "\n".join(ctx.output)


def test_trust_on_first_use_applies_to_fabric_too(cluster, settings, tmp_path, sshd_nodes):
    from apps.monitoring.ssh.models import KnownHostKey

    trust(settings, tmp_path)  # nothing trusted
    settings.SSH_HOST_KEY_POLICY = "tofu"
    result, _ = run(cluster, {"command": "echo hi"})
    assert result.summary == "2 of 2 nodes succeeded"
    assert {(k.host, k.port) for k in KnownHostKey.objects.all()} == {(s.host, s.port) for s in sshd_nodes}


# -- a noisy node does not fill the worker's memory (issue 15, security 6) ---


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


def test_a_node_printing_50_mb_keeps_head_and_tail_in_bounded_memory(cluster):
    """Each node's output streams into a bounded buffer: the first and last
    lines are kept, the middle counted and dropped as it arrives, so this
    process's peak memory hardly grows although two nodes print 50 MB each."""
    command = {"command": "echo FIRST-LINE; head -c 50000000 /dev/zero | tr '\\0' x; echo; echo LAST-LINE"}
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS
    except OSError:
        # A kernel or container that refuses it: the peak of Python's own
        # allocations (where an unbounded buffer would grow) stands in.
        tracemalloc.start()
        try:
            result, ctx = run(cluster, command, timeout=60)
            growth_mb = tracemalloc.get_traced_memory()[1] / 1024 / 1024
        finally:
            tracemalloc.stop()
    else:
        before_kb = _status_kb("VmRSS")
        result, ctx = run(cluster, command, timeout=60)
        growth_mb = (_status_kb("VmHWM") - before_kb) / 1024
    assert result.summary == "2 of 2 nodes succeeded"
    assert growth_mb < 40, f"peak memory grew {growth_mb:.0f} MB while reading 2 x 50 MB"
    output = "\n".join(ctx.output)
    for node in ("node-a", "node-b"):
        report = output[output.index(f"[{node}] exit 0"):]
        report = report[:report.index("LAST-LINE") + len("LAST-LINE")]
        assert report.startswith(f"[{node}] exit 0\nFIRST-LINE\nxxxx"), report[:200]
        cut = int(re.search(r"\n\[\.\.\. (\d+) characters cut \.\.\.\]\n", report).group(1))
        assert 50_000_000 - 8 * 1024 < cut < 50_000_000, cut
        assert report.endswith("xxxx\nLAST-LINE")
        assert len(report) < 9 * 1024
