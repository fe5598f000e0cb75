"""SSH for the actions that run scripts on nodes (LocalScript,
DistributedScript): where to connect, how host keys are verified, and how a
remote command is bounded by the step's deadline.

Host keys are always verified exactly as collection verifies them
(apps/monitoring/ssh/hostkeys.py): trusted keys from SSH_KNOWN_HOSTS and the
database, unknown hosts refused or recorded on first use per
SSH_HOST_KEY_POLICY, changed keys always refused. Fabric's Connection
auto-adds unknown keys by default; :class:`VerifiedConnection` replaces that
client. (Collection's own connection pool is not reused: it runs a framed
collection shell per connection, while a step runs one command and leaves.)

A remote command runs under the guard of remote_guard.py, which stops it
and every process it started at the step's deadline: by its own limit on the
node, or when PyScaler ends the channel's input at the deadline (closing an
SSH channel alone does not stop the remote process).
"""
from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass, field

import paramiko
from django.conf import settings
from fabric import Config, Connection

from apps.monitoring.ssh import hostkeys
from apps.monitoring.ssh.connection import target_for
from apps.monitoring.ssh.errors import SshError
from apps.monitoring.ssh.readiness import wait_readable
from pyscaler.secretrefs import SecretUnavailable, resolve_secret_ref

from .contract import ActionError
from .remote_guard import (STOP_GRACE_S, STREAM_CHARS, GuardedRemote, end_input, guarded_command, remote_seconds,
                           was_stopped)


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to connect to a node (node, then cluster, then settings)."""

    name: str
    host: str
    port: int
    user: str
    key_path: str | None
    password: str | None = field(repr=False)
    #: Where the password came from, for messages (the password never goes in one).
    password_source: str = ""

    @classmethod
    def for_node(cls, node) -> SshTarget:
        # The same node -> cluster -> settings resolution as collection's.
        base = target_for(node)
        if base.password_ref:
            try:
                password = resolve_secret_ref(base.password_ref)
            except SecretUnavailable as exc:
                raise ActionError(
                    f"node {node.name}: SSH password of cluster {base.cluster_name}: {exc}"
                ) from None
        else:
            password = settings.SSH_PASSWORD or None
        return cls(
            name=node.name,
            host=base.host,
            port=base.port,
            user=base.user,
            key_path=base.key_path or None,
            password=password,
            password_source=base.password_origin if password else "",
        )

    def auth_kwargs(self) -> dict:
        use_agent = self.key_path is None and self.password is None
        kwargs: dict = {"look_for_keys": False, "allow_agent": use_agent}
        if self.key_path:
            kwargs["key_filename"] = self.key_path
        if self.password:
            kwargs["password"] = self.password
        return kwargs


def host_key_check(target: SshTarget) -> hostkeys.HostKeyCheck:
    """The trusted keys of the target (file and database) and the policy for
    an unknown one. Reads the database: call it in the step's own thread."""
    try:
        return hostkeys.prepare(target.host, target.port, password_login=bool(target.password))
    except SshError as exc:
        raise ActionError(f"node {target.name}: {exc}") from None


def verifying_client(check: hostkeys.HostKeyCheck) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    check.install(client)
    return client


def record_first_seen(target: SshTarget, check: hostkeys.HostKeyCheck) -> None:
    """Under "tofu", record a first-seen key (refusing if another worker
    recorded a different one meanwhile)."""
    try:
        hostkeys.record_first_seen(check)
    except SshError as exc:
        raise ActionError(f"node {target.name}: {exc}") from None


def open_socket(target: SshTarget, timeout: float) -> socket.socket:
    """TCP connection with TCP_NODELAY (10x faster round trips, see field notes)."""
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except OSError as exc:
        raise ActionError(f"node {target.name}: cannot connect to {target.host}:{target.port}: {exc}",
                          retryable=True) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def connect(target: SshTarget, deadline: float) -> paramiko.SSHClient:
    """Connected, authenticated client; every phase bounded by the deadline."""
    check = host_key_check(target)
    timeout = _connect_timeout(deadline)
    sock = open_socket(target, timeout)
    client = verifying_client(check)
    try:
        client.connect(
            target.host,
            port=target.port,
            username=target.user,
            sock=sock,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            **target.auth_kwargs(),
        )
    except SshError as exc:  # the host-key policy refused an unknown host
        _close(client, sock)
        raise ActionError(f"node {target.name}: {exc}") from None
    except paramiko.BadHostKeyException as exc:
        _close(client, sock)
        raise ActionError(f"node {target.name}: {check.changed_error(exc.key, exc.expected_key)}") from None
    except paramiko.AuthenticationException as exc:
        _close(client, sock)
        tried = f" (password from {target.password_source})" if target.password_source else ""
        raise ActionError(
            f"node {target.name}: SSH authentication failed as {target.user}{tried}: {exc}"
        ) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        _close(client, sock)
        raise ActionError(f"node {target.name}: SSH connection failed: {exc}", retryable=True) from None
    try:
        record_first_seen(target, check)
    except ActionError:
        _close(client, sock)
        raise
    return client


def _close(client: paramiko.SSHClient, sock: socket.socket) -> None:
    client.close()
    sock.close()


def _connect_timeout(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ActionError("the step's deadline passed before connecting", retryable=True)
    return max(0.1, min(float(settings.SSH_CONNECT_TIMEOUT_S), remaining))


class Tail:
    """The last `limit` bytes of a stream, and how many were dropped before."""

    def __init__(self, limit: int):
        self.limit = limit
        self.buf = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        self.buf += data
        excess = len(self.buf) - self.limit
        if excess > 0:
            del self.buf[:excess]
            self.dropped += excess

    def text(self) -> str:
        body = self.buf.decode("utf-8", errors="replace")
        return f"[... {self.dropped} bytes cut ...]\n{body}" if self.dropped else body


@dataclass
class CommandResult:
    exit_status: int | None  # None: it ended without one (stopped, killed, connection lost)
    output: str  # stdout and stderr interleaved, bounded
    elapsed_s: float
    stopped: bool = False  # the node's guard reported stopping it at the timeout
    deadline_passed: bool = False  # still running when PyScaler's deadline came

    @property
    def timed_out(self) -> bool:
        return self.stopped or (self.deadline_passed and self.exit_status is None)


def run_command(client: paramiko.SSHClient, command: str, deadline: float, limit: int) -> CommandResult:
    """Run `command`, a guarded_command(), on one channel, stdout+stderr
    interleaved and bounded, until it exits. At the deadline the channel's
    input is ended, the guard's order to stop the command; its confirmation
    is read for STOP_GRACE_S at most, then the channel is closed."""
    started = time.monotonic()
    tail = Tail(limit)
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise ActionError("SSH connection closed before the command ran", retryable=True)
    try:
        channel = transport.open_session(timeout=_connect_timeout(deadline))
        channel.set_combine_stderr(True)
        channel.exec_command(command)
    except paramiko.SSHException as exc:
        raise ActionError(f"cannot start the command: {exc}", retryable=True) from None
    try:
        # Not shutdown_write() here: the guard gives the command /dev/null as
        # its stdin and takes end of file on the channel's as "stop".
        deadline_passed = not _read_until_eof(channel, tail, deadline)
        if deadline_passed:
            grace_end = time.monotonic() + STOP_GRACE_S
            if end_input(channel) and _read_until_eof(channel, tail, grace_end):
                channel.status_event.wait(max(0.0, grace_end - time.monotonic()))
        elif not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
            deadline_passed = True
        status = channel.exit_status if channel.status_event.is_set() else -1
        output = tail.text()
        return CommandResult(None if status == -1 else status, output, time.monotonic() - started,
                             stopped=status == -1 and was_stopped(output), deadline_passed=deadline_passed)
    finally:
        channel.close()


def _read_until_eof(channel: paramiko.Channel, tail: Tail, until: float) -> bool:
    """Read the channel's output into `tail`; False if `until` came first."""
    while True:
        remaining = until - time.monotonic()
        if remaining <= 0:
            return False
        if wait_readable(channel, min(remaining, 1.0)):
            data = channel.recv(65536)
            if not data:
                return True  # EOF: the command closed its output
            tail.add(data)


def run_bounded(client: paramiko.SSHClient, script: str, deadline: float, limit: int) -> CommandResult:
    """`script` under /bin/sh and the guard, stopped at the deadline."""
    return run_command(client, guarded_command(script, remote_seconds(deadline)), deadline, limit)


class VerifiedConnection(Connection):
    """Fabric's Connection with host keys verified as collection verifies
    them, instead of its default AutoAddPolicy, and a TCP_NODELAY socket."""

    def __init__(self, target: SshTarget, *, deadline: float, config: Config | None = None):
        timeout = _connect_timeout(deadline)
        super().__init__(
            target.host,
            user=target.user,
            port=target.port,
            config=config or fabric_config(deadline),
            connect_kwargs={
                "banner_timeout": timeout,
                "auth_timeout": timeout,
                "channel_timeout": timeout,
                **target.auth_kwargs(),
            },
            connect_timeout=max(1, math.ceil(timeout)),
        )
        self.target = target
        self.deadline = deadline
        # Read here, in the step's thread; Fabric opens connections in its own.
        self.host_key_check = host_key_check(target)
        self.client = verifying_client(self.host_key_check)

    def open(self):
        if not self.is_connected:
            self.connect_kwargs["sock"] = open_socket(self.target, _connect_timeout(self.deadline))
        try:
            return super().open()
        except paramiko.BadHostKeyException as exc:
            raise ActionError(
                f"node {self.target.name}: {self.host_key_check.changed_error(exc.key, exc.expected_key)}"
            ) from None

    def record_first_seen(self) -> None:
        """Call in the step's thread after the group ran (see host_key_check)."""
        if self.is_connected:
            record_first_seen(self.target, self.host_key_check)


def fabric_config(deadline: float, stream_chars: int = STREAM_CHARS) -> Config:
    """Fabric settings for unattended runs: no ~/.ssh/config surprises, no
    stdin (a worker has none), output captured not printed and bounded
    (``stream_chars`` of each stream kept, head and tail), every command
    bounded by the step's deadline."""
    return Config(
        overrides={
            "pyscaler": {"stream_chars": int(stream_chars)},
            "run": {"hide": True, "in_stream": False, "warn": False},
            # The runner holds each command to the deadline itself; this only
            # has to be no shorter (and set, for invoke to raise CommandTimedOut).
            "timeouts": {"command": max(1, math.ceil(deadline - time.monotonic()))},
            # Every command under the guard that stops it at the deadline.
            "runners": {"remote": GuardedRemote},
        },
        # An explicit, empty SSH config and lazy loading: the worker's
        # ~/.ssh/config and ~/.fabric.yaml must not change where we connect.
        ssh_config=paramiko.SSHConfig(),
        lazy=True,
    )
