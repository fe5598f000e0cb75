"""Collect tasks carry commands, addresses and secret references: a worker
runs one only when the dispatcher signed it (COLLECT_SIGNING_KEY). A forged
message published straight to the broker — unsigned, or signed with another
key — runs nothing and is logged as rejected, naming the task id; a signed
one collects; the id-only legacy format (no commands in it) stays accepted."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from apps.monitoring import collection
from apps.monitoring.collection import NodeWork, signing
from tests.factories import make_cluster, make_node, ssh_counter

pytestmark = pytest.mark.slow
TASK = "apps.monitoring.tasks.collect_task"


@pytest.fixture
def target(sshd_node, tmp_path):
    """A node on the real sshd and a counter whose command leaves a mark."""
    cluster = make_cluster("signed")
    node = make_node(cluster, server=sshd_node, name="signed-1")
    mark = tmp_path / "ran"
    counter = ssh_counter(cluster, "mark", command=f"touch {mark}; echo 1", interval_s=10)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd_node.host_key_line + "\n")
    return node, counter, mark, known_hosts


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_forged_collect_message_runs_nothing_and_a_signed_one_collects(make_celery_worker, target) -> None:
    from pyscaler.celery import app

    node, counter, mark, known_hosts = target
    worker = make_celery_worker(isolated=True, queues=("collect",), env={"SSH_KNOWN_HOSTS": str(known_hosts)})
    at = datetime.now(timezone.utc).isoformat()
    [message] = collection.make_messages([[NodeWork(node.id, {"ssh": [counter.id]})]])
    assert message["ssh_counters"][0]["command"].startswith("touch ")

    unsigned = app.send_task(TASK, args=(message, at), queue="collect")
    other_key = signing.sign(message, at, key=b"not-the-dispatcher-key-0123456789abcdef")
    wrong = app.send_task(TASK, args=(other_key, at), queue="collect")
    tampered = signing.sign(message, at)
    tampered["signed"] = tampered["signed"].replace("echo 1", "echo 2")
    edited = app.send_task(TASK, args=(tampered, at), queue="collect")
    for task in (unsigned, wrong, edited):
        assert _wait_for(lambda t=task: f"{t.id}" in worker.log_text() and "rejected" in worker.log_text(), 30), \
            worker.log_tail()
    time.sleep(1)
    assert not mark.exists(), "a forged collect message ran its command"
    log = worker.log_text()
    for task in (unsigned, wrong, edited):
        assert f"collect task {task.id} rejected" in log, log

    signed = app.send_task(TASK, args=(signing.sign(message, at), at), queue="collect")
    assert _wait_for(mark.exists, 30), worker.log_tail()
    assert f"collect task {signed.id} rejected" not in worker.log_text()


def test_the_dispatcher_signs_what_it_enqueues(db, settings) -> None:
    from apps.monitoring import tasks

    cluster = make_cluster("d")
    node = make_node(cluster, name="d-1")
    counter = ssh_counter(cluster, "c", command="echo 1", interval_s=10)
    [message] = collection.make_messages([[NodeWork(node.id, {"ssh": [counter.id]})]])
    envelope, at = tasks.collect_args(message, "2026-11-30T00:00:00+00:00")
    assert "command" not in envelope and signing.open_signed(envelope, at) == message
    settings.COLLECT_SIGNING_KEY = "another-key-another-key-another-key-0123"
    with pytest.raises(signing.ForgedMessage):
        signing.open_signed(envelope, at)
    with pytest.raises(signing.ForgedMessage, match="signed for another round"):
        signing.open_signed(signing.sign(message, at), "2026-11-30T00:00:05+00:00")


def test_legacy_id_only_messages_are_still_collected(db, sshd_node, settings, tmp_path, sample_store) -> None:
    from apps.monitoring.tasks import collect_task
    from tests.sshkit import trust

    trust(settings, tmp_path / "known_hosts", sshd_node)
    cluster = make_cluster("old")
    node = make_node(cluster, server=sshd_node, name="old-1")
    counter = ssh_counter(cluster, "one", command="echo 1", interval_s=10)
    report = collect_task([{"node_id": node.id, "ssh_counter_ids": [counter.id]}],
                          datetime.now(timezone.utc).isoformat())
    assert report["samples"] == 1


def test_a_weak_key_is_an_error_and_an_unset_one_fails_the_deploy_check(settings) -> None:
    from pyscaler.secret_checks import check_collect_signing_key, check_secrets

    settings.DEBUG = False
    settings.COLLECT_SIGNING_KEY = "CHANGE_ME"
    assert any("COLLECT_SIGNING_KEY is the placeholder" in e.msg for e in check_secrets())
    settings.COLLECT_SIGNING_KEY = "short"
    assert any("COLLECT_SIGNING_KEY is 5 characters long" in e.msg for e in check_secrets())
    settings.COLLECT_SIGNING_KEY, settings.COLLECT_SIGNING_KEY_SET = "generated-under-var-" + "k" * 40, False
    assert check_secrets() == []
    assert [e.id for e in check_collect_signing_key()] == ["pyscaler.E010"]
    settings.DEBUG = True
    assert check_collect_signing_key() == []
