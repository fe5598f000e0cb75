"""Actions' SSH execution in a process that already holds more than 1024
descriptors (a worker collecting a large fleet): the step's socket and its
channel's pipe are numbered past 1023, where select() fails with
"filedescriptor out of range in select()". The scripts run as anywhere else."""
from __future__ import annotations

import os
import resource
import time

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.actions.contract import StepContext
from tests.factories import make_action, make_cluster, make_node
from tests.sshkit import trust

pytestmark = pytest.mark.django_db

#: Every descriptor below this is taken before the step runs.
FILLED_BELOW = 1100


@pytest.fixture
def high_descriptors():
    """Fill the lowest free descriptors, so the next ones opened are numbered
    FILLED_BELOW and up (the kernel always hands out the lowest free one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = FILLED_BELOW + 256
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"this test needs {needed} descriptors; the hard limit is {hard}", pytrace=False)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    filler = []
    try:
        while not filler or filler[-1] < FILLED_BELOW - 1:
            filler.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in filler:
            os.close(fd)


def test_a_local_script_runs_with_descriptors_past_1023(sshd_node, settings, tmp_path, high_descriptors):
    trust(settings, tmp_path, sshd_node)
    node = make_node(make_cluster(), sshd_node, "target")
    action = make_action(node.cluster, K.LOCAL_SCRIPT, {"script": "echo far; echo away >&2"})
    ctx = StepContext(cluster=node.cluster, target_node=node, deadline=time.monotonic() + 15)
    result = action.kind_class()(action).run(ctx)
    output = "\n".join(ctx.output)
    assert "far" in output and "away" in output
    assert "exited 0" in result.summary


def test_a_distributed_script_runs_with_descriptors_past_1023(sshd_nodes, settings, tmp_path,
                                                              high_descriptors):
    trust(settings, tmp_path, *sshd_nodes)
    cluster = make_cluster()
    for number, server in enumerate(sshd_nodes):
        make_node(cluster, server, f"node-{number}")
    action = make_action(cluster, K.DISTRIBUTED_SCRIPT, {"command": "echo from $SSH_CONNECTION"})
    ctx = StepContext(cluster=cluster, deadline=time.monotonic() + 15)
    action.kind_class()(action).run(ctx)
    output = "\n".join(ctx.output)
    assert all(f" {server.host} {server.port}" in output for server in sshd_nodes)  # SSH_CONNECTION
