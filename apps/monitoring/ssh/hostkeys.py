"""Host key verification: a node is only asked once its key is trusted.

Trusted keys come from the SSH_KNOWN_HOSTS file (managed by the operator,
e.g. with ssh-keyscan or configuration management) and from KnownHostKey rows
(recorded by trust on first use). SSH_HOST_KEY_POLICY decides what happens to
a host neither knows:

* ``reject``: refused, as OpenSSH's StrictHostKeyChecking=yes;
* ``tofu``: the first key seen is recorded in the database and trusted from
  then on; a different key later is refused. A password is never sent on a
  first contact: a login that would offer one (a cluster's ssh_password_ref,
  SSH_PASSWORD) needs the host's key to be known already, or whoever answers
  first in the node's place would receive the password.

A known host presenting a different key, or a key of another type, is always
refused (paramiko's SSHClient does that comparison); there is deliberately no
policy that adds keys silently, unlike Fabric's default. The database is read
and written in the caller's thread, before and after paramiko's handshake,
never from inside it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import paramiko
from django.conf import settings
from django.db import IntegrityError, transaction

from .errors import HostKeyError, SshConfigError
from .models import KnownHostKey

log = logging.getLogger(__name__)

DB_SOURCE = "the database (admin: Known host keys)"


def host_key_name(host: str, port: int) -> str:
    """The name OpenSSH writes in known_hosts: ``host`` on port 22, ``[host]:port`` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def describe(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


@dataclass
class HostKeyCheck:
    """The trusted keys of one host and, after a first contact under "tofu",
    the key to record."""

    host: str
    port: int
    policy: str
    file_keys: dict[str, paramiko.PKey]
    db_keys: dict[str, paramiko.PKey]
    first_seen: paramiko.PKey | None = None
    #: The login would offer a password: an unknown host is refused even under "tofu".
    password_login: bool = False

    @property
    def name(self) -> str:
        return host_key_name(self.host, self.port)

    def source_of(self, key_type: str) -> str:
        if key_type in self.file_keys or not self.db_keys:
            return f"SSH_KNOWN_HOSTS ({settings.SSH_KNOWN_HOSTS})"
        return DB_SOURCE

    def install(self, client: paramiko.SSHClient) -> None:
        """Give paramiko the trusted keys (the file's win over the database's
        for the same key type) and the policy for an unknown host."""
        keys = client.get_host_keys()
        for key_type, key in {**self.db_keys, **self.file_keys}.items():
            keys.add(self.name, key_type, key)
        client.set_missing_host_key_policy(POLICIES[self.policy](self))

    def changed_error(self, offered: paramiko.PKey, expected: paramiko.PKey) -> HostKeyError:
        return HostKeyError(
            f"host key for {self.name} changed: {self.source_of(expected.get_name())} has "
            f"{describe(expected)}, the server offered {describe(offered)}. Refused: this may be "
            f"a different machine. If the change is legitimate (node rebuilt), delete the old key "
            f"there and collection will resume"
            + (" (recording the new key)." if self.policy == "tofu" else ".")
        )


def prepare(host: str, port: int, *, password_login: bool = False) -> HostKeyCheck:
    """Read the trusted keys of ``host:port`` (file and database)."""
    name = host_key_name(host, port)
    file_keys: dict[str, paramiko.PKey] = {}
    path = Path(settings.SSH_KNOWN_HOSTS) if settings.SSH_KNOWN_HOSTS else None
    if path is not None and path.exists():
        try:
            entries = paramiko.HostKeys(str(path)).lookup(name)
        except OSError as exc:
            raise SshConfigError(f"cannot read SSH_KNOWN_HOSTS {path}: {exc.strerror}") from None
        file_keys = dict(entries or {})
    db_keys: dict[str, paramiko.PKey] = {}
    for row in KnownHostKey.objects.filter(host=host, port=port):
        try:
            db_keys[row.key_type] = paramiko.PKey.from_type_string(row.key_type, _b64(row.key_base64))
        except Exception as exc:  # noqa: BLE001 - one unreadable row must not hide the others
            log.warning("ignoring unreadable known host key %s: %s", row, exc)
    return HostKeyCheck(host, port, settings.SSH_HOST_KEY_POLICY, file_keys, db_keys, password_login=password_login)


def record_first_seen(check: HostKeyCheck) -> None:
    """After a first contact under "tofu", record the key, unless another
    worker recorded a different one in the meantime (then refuse)."""
    key = check.first_seen
    if key is None:
        return
    try:
        with transaction.atomic():
            row, created = KnownHostKey.objects.get_or_create(
                host=check.host, port=check.port, key_type=key.get_name(),
                defaults={"key_base64": key.get_base64()},
            )
    except IntegrityError:  # recorded concurrently
        row, created = KnownHostKey.objects.get(host=check.host, port=check.port, key_type=key.get_name()), False
    if created:
        log.warning("recorded the host key of %s on first use: %s", check.name, describe(key))
    elif row.key_base64 != key.get_base64():
        expected = paramiko.PKey.from_type_string(row.key_type, _b64(row.key_base64))
        raise check.changed_error(key, expected)


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, check: HostKeyCheck) -> None:
        self.check = check

    def missing_host_key(self, client, hostname, key) -> None:
        raise HostKeyError(
            f"host key for {self.check.name} is unknown ({describe(key)}) and SSH_HOST_KEY_POLICY is "
            f"'reject': add the host to {settings.SSH_KNOWN_HOSTS or 'SSH_KNOWN_HOSTS'} "
            f"(ssh-keyscan -p {self.check.port} {self.check.host}, after checking the fingerprint) "
            f"or set SSH_HOST_KEY_POLICY=tofu"
        )


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accepts the unknown key for this connection; the caller records it
    (record_first_seen) before any command runs."""

    def __init__(self, check: HostKeyCheck) -> None:
        self.check = check

    def missing_host_key(self, client, hostname, key) -> None:
        if self.check.password_login:
            raise HostKeyError(
                f"host key for {self.check.name} is unknown ({describe(key)}) and this login would send a "
                f"password: under SSH_HOST_KEY_POLICY 'tofu' a password is never sent to a host seen for "
                f"the first time. Add the host to {settings.SSH_KNOWN_HOSTS or 'SSH_KNOWN_HOSTS'} "
                f"(ssh-keyscan -p {self.check.port} {self.check.host}, after checking the fingerprint) "
                f"or log in once with a key"
            )
        self.check.first_seen = key


POLICIES: dict[str, type[paramiko.MissingHostKeyPolicy]] = {
    "reject": _RejectUnknown,
    "tofu": _TrustOnFirstUse,
}
