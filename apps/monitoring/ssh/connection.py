"""SSH connections to nodes, opened carefully and reused across ticks.

A new paramiko connection costs ~80 ms (key exchange, login, first session)
and a command over a reused collection shell ~1 ms, so each worker process
keeps its connections in a pool keyed by (host, port, user) and opens a new
one only when the old one broke. Every step of opening is bounded by one
overall SSH_CONNECT_TIMEOUT_S, so a dead or hung node costs a tick at most
that long; paramiko's exceptions become PyScaler's own (errors.py) with
messages an operator can act on.

Each connection runs one long-lived collection shell (SSH_COLLECT_SHELL,
started through the user's login shell, reading scripts on stdin: see
framing.py). A connection whose shell hung is "abandoned": the shell's
process group is killed through a second session and the connection closed,
in a background thread, so the worker returns at once and no hung command
piles up on the node tick after tick.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import paramiko
from django.conf import settings

from pyscaler.secretrefs import SecretUnavailable, resolve_secret_ref

from . import hostkeys
from .errors import SshAuthError, SshChannelError, SshConfigError
from .failures import translate as _translate
from .framing import FramingError, handshake_script, make_nonce, parse_handshake
from .readiness import wait_readable
from .transport import QuietTransport

log = logging.getLogger(__name__)

#: Seconds between SSH keepalive messages on idle connections (keeps NAT and
#: firewalls from dropping a connection between ticks of long intervals).
KEEPALIVE_S = 30
#: Idle connections kept per (host, port, user); more only exist while batches
#: for the same node overlap (threads), and are closed when they come back.
MAX_IDLE_PER_KEY = 2
#: How long the background clean-up of a hung shell may take.
REAP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to log in, resolved from node -> cluster -> settings."""

    host: str
    port: int
    user: str
    key_path: str = ""
    key_source: str = ""  # which setting the key path came from, for messages
    password_ref: str = ""
    password_source: str = ""
    cluster_name: str = field(default="", compare=False)

    @property
    def pool_key(self) -> tuple[str, int, str]:
        return (self.host, self.port, self.user)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def password_origin(self) -> str:
        """Where a password would come from, for messages: they land in the
        sample log, health and the console, so never the password itself."""
        return f"{self.password_source} {self.password_ref}" if self.password_ref else "SSH_PASSWORD"

    def __str__(self) -> str:
        return f"{self.user}@{self.address}"


def target_for(node) -> SshTarget:
    """Effective SSH settings of a node (pass nodes with select_related("cluster"))."""
    cluster = node.cluster
    key_path, key_source = "", ""
    for value, source in (
        (node.ssh_key_path, f"node {node.name}: ssh_key_path"),
        (cluster.ssh_key_path, f"cluster {cluster.name}: ssh_key_path"),
        (settings.SSH_KEY_PATH, "SSH_KEY_PATH"),
    ):
        if value:
            key_path, key_source = value, source
            break
    return SshTarget(
        host=node.address,
        port=node.ssh_port or cluster.ssh_port or settings.SSH_DEFAULT_PORT,
        user=node.ssh_user or cluster.ssh_user or settings.SSH_DEFAULT_USER,
        key_path=key_path,
        key_source=key_source,
        password_ref=cluster.ssh_password_ref,
        password_source=f"cluster {cluster.name}: ssh_password_ref",
        cluster_name=cluster.name,
    )


def shell_command() -> str:
    """What the collection channel executes. sshd runs it through the user's
    login shell, so the collection shell inherits the user's normal
    non-interactive environment (PATH etc.; no interactive rc files). The
    collection shell itself is SSH_COLLECT_SHELL: /bin/sh by default, POSIX
    and the cheapest to fork (dash: field-notes' raw-shell floor), or "login"
    for the login shell itself (bash syntax in counters, ~40% more CPU per
    command on the node)."""
    shell = settings.SSH_COLLECT_SHELL
    if shell == "login":
        return 'exec "${SHELL:-/bin/sh}" -s'
    return f"exec {shell} -s"


# --------------------------------------------------------------------------- credentials

def _private_key(target: SshTarget) -> paramiko.PKey | None:
    if not target.key_path:
        return None
    where = f"SSH key file {target.key_path} ({target.key_source})"
    try:
        return paramiko.PKey.from_path(target.key_path)
    except FileNotFoundError:
        raise SshConfigError(f"{where} does not exist") from None
    except paramiko.PasswordRequiredException:
        raise SshConfigError(
            f"{where} is encrypted: PyScaler cannot type its passphrase; load it into the SSH agent "
            f"(SSH_AUTH_SOCK) and leave the key path empty"
        ) from None
    except OSError as exc:
        raise SshConfigError(f"cannot read {where}: {exc.strerror or exc}") from None
    except (paramiko.SSHException, paramiko.pkey.UnknownKeyType, ValueError) as exc:
        raise SshConfigError(f"{where} is not a usable private key: {exc}") from None


def _password(target: SshTarget) -> str | None:
    if target.password_ref:
        try:
            return resolve_secret_ref(target.password_ref)
        except SecretUnavailable as exc:
            raise SshConfigError(f"{target.password_source} {target.password_ref}: {exc}") from None
    return settings.SSH_PASSWORD or None


def _methods(pkey: paramiko.PKey | None, target: SshTarget, password: str | None) -> str:
    tried = []
    if pkey is not None:
        tried.append(f"key file {target.key_path}")
    tried.append("SSH agent" if os.environ.get("SSH_AUTH_SOCK") else "SSH agent (none running)")
    if password:
        tried.append(f"password from {target.password_origin}")
    return ", ".join(tried)


# --------------------------------------------------------------------------- connection

class SshConnection:
    """One logged-in transport and its collection shell."""

    def __init__(self, target: SshTarget, client: paramiko.SSHClient, channel: paramiko.Channel,
                 shell_pid: int) -> None:
        self.target = target
        self.client = client
        self.channel = channel
        self.shell_pid = shell_pid
        self.batches = 0  # how many batches it has run (a reuse counter for tests and logs)
        self.opened_at = self.idle_since = time.monotonic()

    @property
    def usable(self) -> bool:
        transport = self.client.get_transport()
        return (
            transport is not None
            and transport.is_active()
            and not self.channel.closed
            and not self.channel.eof_received
        )

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not raise
            log.debug("error closing SSH connection to %s", self.target, exc_info=True)

    def abandon(self) -> None:
        """Give up a connection whose shell hangs: kill the shell's process
        group through a second session, then close. Runs in the background so
        the caller is not held beyond its own deadline."""
        threading.Thread(target=self._kill_and_close, name=f"ssh-reap-{self.target.host}", daemon=True).start()

    def _kill_and_close(self) -> None:
        try:
            transport = self.client.get_transport()
            if transport is not None and transport.is_active():
                channel = transport.open_session(timeout=REAP_TIMEOUT_S)
                # sshd makes every session a new process group led by the shell,
                # so this reaches the hung command and anything it started.
                channel.exec_command(f"kill -9 -{self.shell_pid}")
                channel.status_event.wait(REAP_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - best effort: the node may be gone entirely
            log.debug("could not kill the hung shell on %s", self.target, exc_info=True)
        finally:
            self.close()

    def __repr__(self) -> str:
        return f"SshConnection({self.target}, shell pid {self.shell_pid}, batches={self.batches})"


def open_connection(target: SshTarget, timeout: float | None = None) -> SshConnection:
    """Connect, verify the host key, log in and start the collection shell,
    all within ``timeout`` (default SSH_CONNECT_TIMEOUT_S) seconds."""
    timeout = settings.SSH_CONNECT_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        return left

    # Configuration errors first: no network traffic for a node that cannot work.
    password = _password(target)
    check = hostkeys.prepare(target.host, target.port, password_login=password is not None)
    pkey = _private_key(target)

    step = "connecting to"
    sock = None
    client = paramiko.SSHClient()
    try:
        sock = socket.create_connection((target.host, target.port), timeout=remaining())
        # Without it Nagle and delayed ACKs cost ~40 ms per round trip (field-notes: 10x).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        check.install(client)
        step = "logging in to"
        _log_in(client, sock, target, check, pkey, password, remaining())
        hostkeys.record_first_seen(check)
        transport = client.get_transport()
        transport.set_keepalive(KEEPALIVE_S)
        step = "starting the collection shell on"
        channel, pid = _start_shell(transport, target, remaining)
    except BaseException as exc:
        transport = client.get_transport()
        banner = transport.remote_version if transport is not None else ""
        client.close()
        if sock is not None:
            sock.close()
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(exc, paramiko.SSHException) and "No existing session" in str(exc):
            # paramiko's handshake wait ended at our deadline without an error of its own
            exc = paramiko.SSHException(
                "Error reading SSH protocol banner: timed out" if not banner else "key exchange timed out"
            )
        raise _translate(exc, target, timeout, step) from None
    return SshConnection(target, client, channel, pid)


def _log_in(client: paramiko.SSHClient, sock: socket.socket, target: SshTarget, check, pkey, password: str | None,
            left: float) -> None:
    """Key exchange, host key check and authentication, within ``left`` seconds."""
    try:
        client.connect(
            target.host, port=target.port, username=target.user, pkey=pkey, password=password,
            sock=sock, timeout=left, banner_timeout=left, auth_timeout=left, channel_timeout=left,
            allow_agent=True, look_for_keys=False, transport_factory=QuietTransport,
        )
    except paramiko.BadHostKeyException as exc:
        exc._pyscaler_check = check
        raise
    except paramiko.AuthenticationException as exc:
        if "timeout" not in str(exc).lower():
            raise SshAuthError(
                f"authentication refused for {target} (tried: {_methods(pkey, target, password)})"
            ) from None
        raise


def _start_shell(transport: paramiko.Transport, target: SshTarget, remaining) -> tuple[paramiko.Channel, int]:
    channel = transport.open_session(timeout=remaining())
    command = shell_command()
    channel.exec_command(command)
    nonce = make_nonce()
    channel.settimeout(remaining())
    channel.sendall(handshake_script(nonce))
    marker = f"{nonce}:".encode()
    buf = b""
    fd = channel.fileno()
    while True:
        # Login scripts may print to stdout before the shell reads our script:
        # skip whole lines until ours.
        start = (b"\n" + buf).find(b"\n" + marker)
        if start >= 0 and buf.find(b"\n", start) >= 0:
            line = buf[start: buf.index(b"\n", start) + 1]
            break
        if channel.recv_ready():
            buf += channel.recv(4096)
            if len(buf) > 65536:
                raise SshChannelError(f"the collection shell on {target.address} printed too much at start")
            continue
        if channel.eof_received or channel.closed:
            stderr = b""
            while channel.recv_stderr_ready():
                stderr += channel.recv_stderr(4096)
            raise SshChannelError(
                f"the collection shell ({command}) on {target.address} exited at once"
                + (f": {stderr.decode(errors='replace').strip()[:300]}" if stderr else "")
                + "; the collection shell must be a POSIX shell (SSH_COLLECT_SHELL)"
            )
        wait_readable(fd, remaining())
    try:
        pid = parse_handshake(line, nonce)
    except FramingError as exc:
        raise SshChannelError(f"the collection shell on {target.address} answered unexpectedly: {exc}") from None
    while channel.recv_stderr_ready():  # login scripts' chatter is not a command's error
        channel.recv_stderr(65536)
    return channel, pid


# --------------------------------------------------------------------------- pool

class ConnectionPool:
    """Idle connections of one process. A connection is used by one batch at a
    time (checkout/checkin), so threads collecting different nodes share the
    pool safely; two overlapping batches for one node get two connections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, int, str], list[SshConnection]] = defaultdict(list)
        self._inherited: list = []
        self._reaper: threading.Thread | None = None
        self._reaper_stop = threading.Event()
        self.opened = 0  # connections opened by this process (tests prove reuse with it)

    def checkout(self, target: SshTarget, timeout: float | None = None) -> tuple[SshConnection, bool]:
        """A usable connection and whether it was reused."""
        broken = []
        conn = None
        with self._lock:
            idle = self._idle[target.pool_key]
            while idle:
                candidate = idle.pop()
                if candidate.usable:
                    conn = candidate
                    break
                broken.append(candidate)
        for old in broken:
            old.close()
        if conn is not None:
            return conn, True
        conn = open_connection(target, timeout)
        with self._lock:
            self.opened += 1
        return conn, False

    def checkin(self, conn: SshConnection) -> None:
        if not conn.usable:
            conn.close()
            return
        with self._lock:
            idle = self._idle[conn.target.pool_key]
            if len(idle) < MAX_IDLE_PER_KEY:
                conn.idle_since = time.monotonic()
                idle.append(conn)
                self._start_reaper()
                return
        conn.close()

    def close_idle(self, max_idle_s: float) -> int:
        """Close connections unused for ``max_idle_s``: nodes this process no
        longer collects (their collection moved to another worker) must not
        keep a session each. Returns how many were closed."""
        limit = time.monotonic() - max_idle_s
        stale = []
        with self._lock:
            for key, idle in list(self._idle.items()):
                stale.extend(c for c in idle if c.idle_since < limit)
                kept = [c for c in idle if c.idle_since >= limit]
                if kept:
                    self._idle[key] = kept
                else:
                    del self._idle[key]
        for conn in stale:
            conn.close()
        return len(stale)

    def _start_reaper(self) -> None:
        """One daemon thread per process (started on first checkin, so after
        a worker's fork) closes idle connections every few seconds, until
        close_all."""
        max_idle_s = float(settings.SSH_IDLE_CLOSE_S)
        if self._reaper is not None or max_idle_s <= 0:
            return
        stop = self._reaper_stop = threading.Event()

        def reap() -> None:
            while not stop.wait(min(30.0, max(0.5, max_idle_s / 4))):
                if self.close_idle(max_idle_s):
                    log.debug("closed idle SSH connections (unused for %g s)", max_idle_s)

        self._reaper = threading.Thread(target=reap, name="ssh-idle-reaper", daemon=True)
        self._reaper.start()

    def discard(self, conn: SshConnection, hung: bool = False) -> None:
        if hung:
            conn.abandon()
        else:
            conn.close()

    def idle_connections(self, target: SshTarget) -> list[SshConnection]:
        with self._lock:
            return list(self._idle.get(target.pool_key, []))

    def close_all(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
            self._reaper_stop.set()
            self._reaper = None
        for conn in conns:
            conn.close()

    def _forget_after_fork(self) -> None:
        """In a forked child the parent's connections are not ours: closing
        them would write on the parent's sockets (and paramiko's threads did
        not survive the fork). Keep them referenced, never used, never
        garbage-collected (a Channel's __del__ would send a close)."""
        self._inherited.append(self._idle)
        self._idle = defaultdict(list)
        self._lock = threading.Lock()
        self._reaper = None  # the parent's thread did not survive the fork
        self.opened = 0


pool = ConnectionPool()
os.register_at_fork(after_in_child=pool._forget_after_fork)
