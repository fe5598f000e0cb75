"""Host key verification against real sshd host keys: known hosts file,
trust on first use recorded in the database, changed keys refused under both
policies, and the admin's way to accept a legitimately changed key."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from apps.monitoring.samples import CollectionError, Sample
from apps.monitoring.ssh.collector import collect_node
from apps.monitoring.ssh.models import KnownHostKey
from tests.factories import make_counters, make_node
from tests.sshkit import _no_agent, trust, values  # noqa: F401

pytestmark = pytest.mark.django_db


def test_reject_policy_refuses_an_unknown_host_and_records_nothing(make_sshd, ssh_pool, settings,
                                                                   tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts")  # knows no host
    settings.SSH_HOST_KEY_POLICY = "reject"
    node = make_node(server=server)
    [result] = collect_node(node, make_counters(node, ["echo 1"]), pool=ssh_pool)
    assert isinstance(result, CollectionError)
    assert result.message.startswith(
        f"host key for [{server.host}]:{server.port} is unknown (ssh-ed25519 SHA256:"
    )
    assert "SSH_HOST_KEY_POLICY is 'reject'" in result.message
    assert not KnownHostKey.objects.exists()


def test_a_changed_host_key_is_refused_under_reject(make_sshd, ssh_pool, settings, tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    settings.SSH_HOST_KEY_POLICY = "reject"
    node = make_node(server=server)
    counters = make_counters(node, ["echo 1"])
    assert values(collect_node(node, counters, pool=ssh_pool)) == [1.0]
    old_fingerprint = KnownHostKey(key_base64=server.host_public_key.split()[1]).fingerprint

    server.stop()
    ssh_pool.close_all()
    server.regenerate_host_key()
    server.start()
    [result] = collect_node(node, counters, pool=ssh_pool)
    assert isinstance(result, CollectionError)
    assert result.message.startswith(
        f"host key for [{server.host}]:{server.port} changed: SSH_KNOWN_HOSTS ({settings.SSH_KNOWN_HOSTS}) "
        f"has ssh-ed25519 {old_fingerprint}, the server offered ssh-ed25519 SHA256:"
    )


def test_tofu_records_the_first_key_and_refuses_a_changed_one_until_an_admin_deletes_it(
    make_sshd, ssh_pool, settings, tmp_path, client
) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts")  # the file knows nothing: the database decides
    settings.SSH_HOST_KEY_POLICY = "tofu"
    node = make_node(server=server)
    counters = make_counters(node, ["echo 1"])

    assert values(collect_node(node, counters, pool=ssh_pool)) == [1.0]
    [recorded] = KnownHostKey.objects.all()
    assert (recorded.host, recorded.port) == (server.host, server.port)
    assert f"{recorded.key_type} {recorded.key_base64}" == server.host_public_key
    ssh_pool.close_all()
    assert values(collect_node(node, counters, pool=ssh_pool)) == [1.0]  # the recorded key verifies
    assert KnownHostKey.objects.count() == 1

    server.stop()
    ssh_pool.close_all()
    server.regenerate_host_key()
    server.start()
    [refused] = collect_node(node, counters, pool=ssh_pool)
    assert isinstance(refused, CollectionError)
    assert refused.message.startswith(f"host key for [{server.host}]:{server.port} changed: the database")
    assert KnownHostKey.objects.get().key_base64 == recorded.key_base64  # not overwritten

    # The admin accepts the change by deleting the old key (the only change allowed there).
    admin = User.objects.create_superuser("root-admin", password="pw-123456789")
    client.force_login(admin)
    change_url = reverse("admin:ssh_knownhostkey_change", args=[recorded.pk])
    page = client.get(change_url)
    assert page.status_code == 200 and recorded.fingerprint in page.content.decode()
    assert client.get(reverse("admin:ssh_knownhostkey_add")).status_code == 403
    client.post(reverse("admin:ssh_knownhostkey_delete", args=[recorded.pk]), {"post": "yes"})
    assert not KnownHostKey.objects.exists()

    [result] = collect_node(node, counters, pool=ssh_pool)
    assert isinstance(result, Sample)
    assert f"ssh-ed25519 {KnownHostKey.objects.get().key_base64}" == server.host_public_key


def test_tofu_never_overrides_the_known_hosts_file(make_sshd, ssh_pool, settings, tmp_path) -> None:
    server = make_sshd()
    trust(settings, tmp_path / "known_hosts", server)
    settings.SSH_HOST_KEY_POLICY = "tofu"
    node = make_node(server=server)
    server.stop()
    server.regenerate_host_key()
    server.start()
    [result] = collect_node(node, make_counters(node, ["echo 1"]), pool=ssh_pool)
    assert isinstance(result, CollectionError) and " changed: SSH_KNOWN_HOSTS" in result.message
    assert not KnownHostKey.objects.exists()
