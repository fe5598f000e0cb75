"""A real OpenSSH server on a loopback address: the "node" of tests and the demo.

Collection, Fabric and Puppet must meet the same sshd a production node runs,
so this starts Debian's ``/usr/sbin/sshd`` in the foreground with its own
config, host key and authorized client key, all kept in one work directory
(reused across runs, so the demo keeps its keys and known_hosts stays valid).

Several nodes are several servers on 127.0.0.2, 127.0.0.3, ... (all of
127.0.0.0/8 is loopback on Linux) or on different ports of one address; or
one server listening on up to 16 addresses (``more_hosts``; OpenSSH's
MAX_LISTEN_SOCKS), each a node of its own: devservers/fleet.py builds
hundreds of nodes that way.

Logins are by key only, except for one named ``password_user`` a server may
be given: that account (which must exist with a password in /etc/shadow, as
sshd without PAM checks there) logs in by password alone, so a test that
succeeds proves the password was used. Root never logs in by password.
"""
from __future__ import annotations

import getpass
import os
import re
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from devservers.process import ServerProcess
from devservers.util import ServerError, descendants, free_port, require_binary, wait_for_port

SSHD = "/usr/sbin/sshd"  # sshd refuses to run unless started by its absolute path
PRIVSEP_DIR = Path("/run/sshd")
#: What may follow "Match User" without becoming a pattern list or a second keyword.
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
#: Listen sockets one sshd opens at most (OpenSSH's MAX_LISTEN_SOCKS); it
#: refuses to start with more ListenAddress lines.
MAX_LISTEN_ADDRESSES = 16
#: Concurrent unauthenticated connections before sshd starts dropping new ones
#: (its default, 10:30:100, drops logins a collection round opens at once).
DEFAULT_MAX_STARTUPS = "200:30:400"


def _keygen(path: Path, comment: str) -> None:
    keygen = require_binary("ssh-keygen", "openssh-client")
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )


class SshServer(ServerProcess):
    """One sshd listening on ``host:port`` (and on ``more_hosts``, same port),
    accepting ``user`` with ``client_key_path`` and, when given,
    ``password_user`` with its password."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1", port: int | None = None,
                 password_user: str | None = None, more_hosts: Sequence[str] = (),
                 max_startups: str = DEFAULT_MAX_STARTUPS) -> None:
        self.workdir = Path(workdir)
        self.host = host
        #: Every address this server listens on, ``host`` first.
        self.hosts = list(dict.fromkeys([host, *more_hosts]))
        if len(self.hosts) > MAX_LISTEN_ADDRESSES:
            raise ValueError(f"one sshd listens on at most {MAX_LISTEN_ADDRESSES} addresses, "
                             f"not {len(self.hosts)}")
        self.max_startups = max_startups
        self.port = port or free_port(host)
        self.user = getpass.getuser()
        if password_user is not None and not _USER_NAME.fullmatch(password_user):
            raise ValueError(f"password_user {password_user!r} is not a plain user name")
        if password_user in (self.user, "root"):
            raise ValueError(
                f"password_user {password_user!r} must be a dedicated account, not {self.user} or root"
            )
        self.password_user = password_user
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host_key_path = self.workdir / "ssh_host_ed25519_key"
        self.client_key_path = self.workdir / "id_ed25519"
        self.authorized_keys_path = self.workdir / "authorized_keys"
        self.known_hosts_path = self.workdir / "known_hosts"
        self.config_path = self.workdir / "sshd_config"
        self.pid_path = self.workdir / "sshd.pid"
        self.log_path = self.workdir / "sshd.log"
        # Commands run with this HOME: an operator's heavy ~/.bashrc (pyenv init:
        # ~130 ms of CPU per command) must not distort tests and benchmarks.
        self.home = self.workdir / "home"
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._prepare_files()

    # -- files ----------------------------------------------------------------

    def _prepare_files(self) -> None:
        self.home.mkdir(exist_ok=True)
        if not self.host_key_path.exists():
            _keygen(self.host_key_path, f"pyscaler-test-host@{self.host}")
        if not self.client_key_path.exists():
            _keygen(self.client_key_path, "pyscaler-test-client")
        self.authorized_keys_path.write_text(self.client_key_path.with_suffix(".pub").read_text())
        self.authorized_keys_path.chmod(0o600)
        self._write_known_hosts()
        self.config_path.write_text(
            "\n".join(
                [
                    *(f"ListenAddress {address}" for address in self.hosts),
                    f"Port {self.port}",
                    f"HostKey {self.host_key_path}",
                    f"AuthorizedKeysFile {self.authorized_keys_path}",
                    f"PidFile {self.pid_path}",
                    "StrictModes no",  # keys live under a temporary directory
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "MaxSessions 100",
                    f"MaxStartups {self.max_startups}",
                    "LogLevel ERROR",
                    "PrintMotd no",
                    "Subsystem sftp internal-sftp",
                    # A clean environment: bash reads $HOME/.bashrc even for
                    # non-interactive ssh commands.
                    f"SetEnv HOME={self.home} LANG=C.UTF-8",
                    *self._password_login_lines(),
                    "",
                ]
            )
        )

    def _password_login_lines(self) -> list[str]:
        """A Match block (it must come last): only this account, and only by
        password, so the key every other login uses cannot stand in for it."""
        if self.password_user is None:
            return []
        return [
            f"Match User {self.password_user}",
            "    PasswordAuthentication yes",
            "    PubkeyAuthentication no",
            "    AuthenticationMethods password",
        ]

    @property
    def host_public_key(self) -> str:
        """``ssh-ed25519 AAAA...`` of the current host key."""
        key_type, key_b64 = self.host_key_path.with_suffix(".pub").read_text().split()[:2]
        return f"{key_type} {key_b64}"

    @property
    def host_key_line(self) -> str:
        """The known_hosts line for this server, as OpenSSH writes it for a
        non-22 port: one line naming every address it listens on."""
        names = ",".join(f"[{address}]:{self.port}" for address in self.hosts)
        return f"{names} {self.host_public_key}"

    def _write_known_hosts(self) -> None:
        self.known_hosts_path.write_text(self.host_key_line + "\n")

    def regenerate_host_key(self) -> str:
        """Replace the host key (the "host key changed" fault), leaving known_hosts
        with the old key so clients must refuse the server. Takes effect at the
        next start(); returns the new public key."""
        for path in (self.host_key_path, self.host_key_path.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        _keygen(self.host_key_path, f"pyscaler-test-host@{self.host}")
        return self.host_public_key

    def trust_current_host_key(self) -> None:
        """Rewrite known_hosts with the current host key (after regenerate_host_key)."""
        self._write_known_hosts()

    # -- process --------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> SshServer:
        if self.running:
            return self
        require_binary(SSHD, "openssh-server")
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        self._log = open(self.log_path, "ab")
        # Own session: stop/kill/pause reach the per-connection children too,
        # as when a whole host dies or hangs.
        self._proc = subprocess.Popen(
            [SSHD, "-f", str(self.config_path), "-D", "-e"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(self.host, self.port, timeout=timeout, proc=self._proc, what="sshd")
            self._wait_for_banner(timeout)
            self._check_listening()
        except ServerError as exc:
            self.kill()
            raise ServerError(f"{exc}; sshd log tail:\n{self.log_tail()}") from None
        return self

    def _wait_for_banner(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ServerError(f"sshd exited with status {self._proc.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    if sock.recv(256).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise ServerError(f"sshd on {self.host}:{self.port} sent no SSH banner within {timeout:.0f} s")

    def _check_listening(self) -> None:
        """Every address listens, on a socket of this sshd (it starts when only
        some could be bound). Read from the kernel's socket tables: a probe
        connection per address would cost sshd a fork and an exec each."""
        own = _socket_inodes(self._proc.pid)
        missing = [address for address in self.hosts if listener(address, self.port) not in own]
        if missing:
            raise ServerError(f"sshd does not listen on {', '.join(missing)} (port {self.port})")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _signal_targets(self) -> list[int]:
        """sshd and every session it serves: each connection's sshd runs in a
        session of its own, which a process-group signal misses."""
        return [*descendants(self._proc.pid), self._proc.pid]

    def _release(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __repr__(self) -> str:
        password = f", password login for {self.password_user}" if self.password_user else ""
        more = f" and {len(self.hosts) - 1} more addresses" if len(self.hosts) > 1 else ""
        return f"SshServer({self.user}@{self.host}:{self.port}{more}{password}, running={self.running})"


def listener(host: str, port: int) -> int | None:
    """The socket inode listening on IPv4 ``host:port``, from /proc/net/tcp
    (None when nothing listens there)."""
    wanted = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)  # the header
        for fields in (line.split() for line in table):
            if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
                return int(fields[9])
    return None


def listening(host: str, port: int) -> bool:
    return listener(host, port) is not None


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes
