"""Password login through a cluster's ssh_password_ref, against a real sshd
on which the test account logs in by password only (so a success cannot come
from a key or an agent): collection and the script actions log in with the
referenced password; a wrong one fails naming the reference, and the password
itself reaches no error message, sample log line or health row."""
from __future__ import annotations

import pwd
import secrets
import time

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.actions.contract import ActionError, StepContext
from apps.control.models import Cluster, Node
from apps.monitoring import collection
from apps.monitoring.models import CollectionHealth
from apps.monitoring.samples import CollectionError, Sample
from apps.monitoring.ssh.collector import collect_node
from tests.factories import make_action, make_counters
from tests.sshkit import _no_agent, trust, values  # noqa: F401

pytestmark = pytest.mark.django_db

PASSWORD_VAR = "PYSCALER_SECRET_TEST_SSH_PASSWORD"
PASSWORD_REF = f"env:{PASSWORD_VAR}"


@pytest.fixture
def node(sshd_password_node, password_account, settings, tmp_path) -> Node:
    """A node of a cluster that names the password by reference; no key
    anywhere in its settings."""
    trust(settings, tmp_path / "known_hosts", sshd_password_node)
    settings.SSH_KEY_PATH = ""
    settings.SSH_PASSWORD = ""
    cluster = Cluster.objects.create(name="pw", ssh_user=password_account.user, ssh_password_ref=PASSWORD_REF)
    return Node.objects.create(cluster=cluster, name="pw-node", address=sshd_password_node.host,
                               ssh_port=sshd_password_node.port)


@pytest.fixture
def recorded(settings, tmp_path, memcached_clean):
    """collection.record() into real memcached, a sample log of this test's own
    and the health table; returns everything it wrote, as text."""
    settings.MEMCACHED_SERVERS = memcached_clean
    settings.SAMPLE_LOG_DIR = tmp_path / "samples"
    collection._store.cache_clear()
    collection._sample_log.cache_clear()

    def record(results: list) -> str:
        collection.record(results)
        collection._sample_log().close()
        log_text = "".join(path.read_text() for path in sorted(settings.SAMPLE_LOG_DIR.glob("*")))
        health_text = "\n".join(
            f"{row.last_error}\n{row.last_error_output}" for row in CollectionHealth.objects.all()
        )
        return log_text + "\n" + health_text

    yield record
    collection._store.cache_clear()
    collection._sample_log.cache_clear()


def test_collection_logs_in_with_the_referenced_password(node, password_account, ssh_pool, monkeypatch,
                                                         recorded) -> None:
    monkeypatch.setenv(PASSWORD_VAR, password_account.password)
    counters = make_counters(node, ["id -u", "echo 42"])

    results = collect_node(node, counters, pool=ssh_pool)

    assert all(isinstance(r, Sample) for r in results), values(results)
    # The commands ran as the password account, not as the user the keys log in as.
    assert values(results) == [pwd.getpwnam(password_account.user).pw_uid, 42.0]
    written = recorded(results)
    assert '"value":42' in written.replace(" ", "")  # the log really got the samples
    assert password_account.password not in written


def test_a_wrong_password_fails_naming_the_reference_never_the_password(
    node, sshd_password_node, password_account, ssh_pool, monkeypatch, recorded
) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(16)
    monkeypatch.setenv(PASSWORD_VAR, wrong)
    counters = make_counters(node, ["echo 1", "echo 2"])

    results = collect_node(node, counters, pool=ssh_pool)

    assert all(isinstance(r, CollectionError) for r in results), values(results)
    assert values(results) == [
        f"authentication refused for {password_account.user}@{sshd_password_node.host}:"
        f"{sshd_password_node.port} (tried: SSH agent (none running), "
        f"password from cluster pw: ssh_password_ref {PASSWORD_REF})"
    ] * 2
    written = recorded(results)
    assert "authentication refused" in written  # the log and health got the error...
    for secret in (wrong, password_account.password):
        assert secret not in written  # ...but no password
        assert all(secret not in r.message for r in results)

    # The right password on the next tick: the node recovers.
    monkeypatch.setenv(PASSWORD_VAR, password_account.password)
    assert values(collect_node(node, counters, pool=ssh_pool)) == [1.0, 2.0]


def _run_action(node: Node, kind: str, params: dict, timeout: float = 15):
    action = make_action(node.cluster, kind, params)
    ctx = StepContext(cluster=node.cluster, target_node=node, deadline=time.monotonic() + timeout)
    return action.kind_class()(action).run(ctx), ctx


def test_local_script_logs_in_with_the_referenced_password(node, password_account, monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, password_account.password)
    result, ctx = _run_action(node, K.LOCAL_SCRIPT, {"script": "echo ran as $(id -un)"})
    assert "exited 0" in result.summary
    assert ctx.output == [f"ran as {password_account.user}"]


def test_distributed_script_logs_in_with_the_referenced_password(node, password_account, monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, password_account.password)
    result, ctx = _run_action(node, K.DISTRIBUTED_SCRIPT, {"command": "echo ran as $(id -un)"})
    assert result.summary == "1 of 1 nodes succeeded"
    assert f"[pw-node] exit 0\nran as {password_account.user}" in "\n".join(ctx.output)


def test_a_wrong_password_fails_the_script_naming_the_reference_never_the_password(
    node, password_account, monkeypatch
) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(16)
    monkeypatch.setenv(PASSWORD_VAR, wrong)
    with pytest.raises(ActionError) as info:
        _run_action(node, K.LOCAL_SCRIPT, {"script": "echo never"})
    message = str(info.value)
    assert message.startswith(
        f"node pw-node: SSH authentication failed as {password_account.user} "
        f"(password from cluster pw: ssh_password_ref {PASSWORD_REF})"
    ), message
    assert wrong not in message and password_account.password not in message


@pytest.fixture
def unknown_host(node, settings, tmp_path) -> Node:
    """The same node, but its host key in neither SSH_KNOWN_HOSTS nor the
    database, under the trust-on-first-use policy."""
    (tmp_path / "empty_known_hosts").write_text("")
    settings.SSH_KNOWN_HOSTS = str(tmp_path / "empty_known_hosts")
    settings.SSH_HOST_KEY_POLICY = "tofu"
    return node


def test_tofu_never_sends_a_password_to_a_host_seen_for_the_first_time(
    unknown_host, password_account, ssh_pool, monkeypatch
) -> None:
    """The right password would log in (see above): refused here, so it was
    never offered. Whoever answers first in the node's place must not get it."""
    from apps.monitoring.ssh.models import KnownHostKey

    monkeypatch.setenv(PASSWORD_VAR, password_account.password)
    counters = make_counters(unknown_host, ["echo 1"])

    (result,) = collect_node(unknown_host, counters, pool=ssh_pool)
    assert isinstance(result, CollectionError), result
    assert "is unknown" in result.message and "never sent to a host seen for the first time" in result.message
    assert not KnownHostKey.objects.exists()  # nothing learned from this contact either

    with pytest.raises(ActionError) as info:
        _run_action(unknown_host, K.LOCAL_SCRIPT, {"script": "echo never"})
    assert "never sent to a host seen for the first time" in str(info.value)
    assert password_account.password not in str(info.value)
