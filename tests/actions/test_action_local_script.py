"""LocalScript's run(ctx) called directly against a real sshd: output, exit
status, host-key verification, deadline (what the script started is killed
at it) and bounded output."""
from __future__ import annotations

import time

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.actions.contract import ActionError, StepContext
from apps.actions.kinds.local_script import OUTPUT_LIMIT
from apps.actions.remote_guard import STOP_GRACE_S
from tests.factories import make_action, make_cluster, make_node
from tests.sshkit import trust
from tests.nodeprocs import kill_all, left_after, running, unique_sleep, watched

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(sshd_node, settings, tmp_path):
    trust(settings, tmp_path, sshd_node)
    return make_node(make_cluster(), sshd_node, "target")


def run(node, script: str, timeout: float = 10):
    action = make_action(node.cluster, K.LOCAL_SCRIPT, {"script": script})
    ctx = StepContext(cluster=node.cluster, target_node=node, deadline=time.monotonic() + timeout)
    return action.kind_class()(action).run(ctx), ctx


def test_it_runs_a_multiline_script_with_sh_and_captures_both_streams(node, sshd_node):
    result, ctx = run(node, "set -e\nx=\"it's quoted\"\necho \"$x\"\necho to-stderr >&2\necho $HOME\n")
    output = "\n".join(ctx.output)
    assert "it's quoted" in output and "to-stderr" in output and str(sshd_node.home) in output
    assert "exited 0" in result.summary


def test_a_non_zero_exit_fails_with_the_status_and_the_output_tail(node):
    with pytest.raises(ActionError, match=r"exited with status 7; output tail:\n(.|\n)*line 30") as info:
        run(node, "for i in $(seq 1 30); do echo line $i; done; exit 7")
    assert "line 1\n" not in str(info.value)  # only the tail, not everything


def test_a_script_cannot_read_its_way_into_a_hang(node):
    result, _ = run(node, "cat; echo after-cat", timeout=5)  # stdin is closed: cat ends at once
    assert "exited 0" in result.summary


def test_a_script_running_at_the_deadline_is_killed_with_everything_it_started(node):
    seconds = unique_sleep()
    # A child in a process group of its own, and a shell that ignores TERM.
    script = f"echo started; timeout 600 sleep {seconds} & trap '' TERM; sleep {seconds}; :"
    with watched(seconds) as watch, pytest.raises(ActionError) as info:
        run(node, script, timeout=2)

    assert watch.elapsed < 2 + STOP_GRACE_S + 1
    assert watch.left == [], f"still running on the node after the step: {watch.left}"
    message = str(info.value)
    assert "script on target timed out after" in message
    assert "the node sent TERM, then KILL, to the script and every process it started" in message
    assert "started\npyscaler: stopped at the step's timeout" in message
    assert info.value.retryable


def test_the_node_stops_the_script_when_pyscaler_ends_its_input_or_the_connection_drops(node):
    """The guard's limit on the node is a backstop; a worker that gives up
    first (its deadline) or dies (the connection drops) stops the script too."""
    from apps.actions import ssh_exec
    from apps.actions.remote_guard import guarded_command

    target = ssh_exec.SshTarget.for_node(node)
    first, second = unique_sleep(), unique_sleep()
    try:
        client = ssh_exec.connect(target, time.monotonic() + 10)
        try:
            result = ssh_exec.run_command(client, guarded_command(f"sleep {first}", 60),
                                          time.monotonic() + 1, limit=1000)
        finally:
            client.close()
        left_first = left_after(first, wait_s=10)  # a bound, not a wait: a loaded machine needs slack

        client = ssh_exec.connect(target, time.monotonic() + 10)
        channel = client.get_transport().open_session()
        channel.exec_command(guarded_command(f"sleep {second}", 60))
        while not running(second):
            time.sleep(0.05)
        client.close()  # as when the worker dies
        left_second = left_after(second, wait_s=10)
    finally:
        kill_all(first)
        kill_all(second)

    assert result.timed_out and result.stopped and result.exit_status is None
    assert "stopped at the step's timeout (PyScaler ended its input" in result.output
    assert left_first == [], ("first", left_first)
    assert left_second == [], ("second", left_second)


def test_a_scripts_own_exit_124_is_its_status_not_a_timeout(node):
    with pytest.raises(ActionError, match="exited with status 124"):
        run(node, "exit 124")


def test_an_unknown_host_key_is_refused(node, settings, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    settings.SSH_KNOWN_HOSTS = str(empty)
    with pytest.raises(ActionError, match="host key for .* is unknown .* SSH_HOST_KEY_POLICY is 'reject'"):
        run(node, "echo never")


def test_a_changed_host_key_is_refused(node, settings, tmp_path, sshd_node):
    other = tmp_path / "other_key"
    other.write_text(f"[{sshd_node.host}]:{sshd_node.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    settings.SSH_KNOWN_HOSTS = str(other)
    with pytest.raises(ActionError, match=r"host key for \[127.0.0.1\]:\d+ changed: SSH_KNOWN_HOSTS"):
        run(node, "echo never")


def test_a_dead_node_fails_fast(make_sshd, settings, tmp_path):
    server = make_sshd()
    trust(settings, tmp_path, server)
    node = make_node(make_cluster(), server)
    server.kill()
    started = time.monotonic()
    with pytest.raises(ActionError, match="cannot connect"):
        run(node, "echo never")
    assert time.monotonic() - started < 2


def test_the_output_kept_is_bounded(node):
    result, ctx = run(node, "head -c 300000 /dev/zero | tr '\\0' 'x'; echo; echo THE-END")
    output = "\n".join(ctx.output)
    assert len(output) < OUTPUT_LIMIT + 100
    assert output.rstrip().endswith("THE-END") and "bytes cut" in output


def test_trust_on_first_use_records_the_key_and_then_holds_the_node_to_it(node, settings, tmp_path, sshd_node):
    from apps.monitoring.ssh.models import KnownHostKey

    empty = tmp_path / "empty"
    empty.write_text("")
    settings.SSH_KNOWN_HOSTS = str(empty)
    settings.SSH_HOST_KEY_POLICY = "tofu"
    result, _ = run(node, "echo first contact")
    assert "exited 0" in result.summary
    row = KnownHostKey.objects.get(host=sshd_node.host, port=sshd_node.port)
    assert row.key_base64 == sshd_node.host_public_key.split()[1]
    # A different key recorded for the node (as if it had been replaced): refused.
    row.key_base64 = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    row.save()
    with pytest.raises(ActionError, match="host key for .* changed"):
        run(node, "echo never")
