"""A real memcached on a loopback port: the sample store of tests and the demo.

The sample store's promises (one server down loses only its share, a restart
empties it and the client recovers by itself, expiry is honoured) are only
worth something against the server production runs, so this starts Debian's
``/usr/bin/memcached`` rather than an in-process fake. ``restart()`` keeps the
port, because a client reconnecting to the same address is exactly the
"memcached restarted" fault.
"""
from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time

from devservers.process import ServerProcess
from devservers.util import ServerError, free_port, require_binary, wait_for_port

MEMCACHED = "/usr/bin/memcached"


def _run_as_user() -> list[str]:
    """memcached refuses to run as root without ``-u``; Debian's package creates
    the unprivileged ``memcache`` user, which we prefer when it exists."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("memcache")
        return ["-u", "memcache"]
    except KeyError:
        return ["-u", "root"]


class MemcachedServer(ServerProcess):
    """One memcached listening on ``host:port`` (TCP only, no UDP)."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", memory_mb: int = 64,
                 max_connections: int = 1024) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.memory_mb = memory_mb
        self.max_connections = max_connections
        self._proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        """``host:port``, the form MEMCACHED_SERVERS takes."""
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            require_binary(MEMCACHED, "memcached"),
            "-l", self.host,
            "-p", str(self.port),
            "-U", "0",  # no UDP listener: nothing but loopback TCP
            "-m", str(self.memory_mb),
            "-c", str(self.max_connections),
            *_run_as_user(),
        ]

    def start(self, timeout: float = 10.0) -> MemcachedServer:
        if self.running:
            return self
        # Own session: a kill() reaches only this server, never the test runner.
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            wait_for_port(self.host, self.port, timeout=timeout, proc=self._proc, what="memcached")
            self._wait_for_version(timeout)
        except ServerError as exc:
            err = b""
            if self._proc.poll() is not None and self._proc.stderr is not None:
                err = self._proc.stderr.read() or b""
            self.kill()
            raise ServerError(f"{exc}: {err.decode(errors='replace').strip()}") from None
        return self

    def _wait_for_version(self, timeout: float) -> None:
        """The port may accept before the worker threads answer; a ``version``
        round trip proves the server serves requests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    sock.sendall(b"version\r\n")
                    if sock.recv(64).startswith(b"VERSION"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise ServerError(f"memcached on {self.address} did not answer `version` within {timeout:.0f} s")

    def restart(self, timeout: float = 10.0) -> MemcachedServer:
        """Stop and start again on the same address: an empty server where the
        clients expect the old one."""
        self.stop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.start(timeout=max(0.5, deadline - time.monotonic()))
            except ServerError:
                # The port may linger a moment after the old process exits.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def flush(self) -> None:
        """Empty the server (between tests sharing a session server)."""
        with socket.create_connection((self.host, self.port), timeout=2.0) as sock:
            sock.sendall(b"flush_all\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"OK"):
            raise ServerError(f"memcached {self.address}: flush_all answered {reply!r}")

    def _release(self) -> None:
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()

    def __repr__(self) -> str:
        return f"MemcachedServer({self.address}, running={self.running})"
