"""A PostgreSQL instance of the harness's own, for outage tests.

The machine's shared PostgreSQL (127.0.0.1:5432) must never be stopped, so a
test that restarts "the database" gets a cluster nobody else uses: Debian's
``initdb`` and ``pg_ctl`` (/usr/lib/postgresql/<version>/bin) on a port and a
socket directory of its own, data in a temporary directory. PostgreSQL
refuses to run as root, so under root the cluster belongs to the ``postgres``
system user (Debian's package creates it) and every command runs through
``runuser``. ``stop()`` / ``start()`` keep the data directory: a restart, not
a new database.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from devservers.util import ServerError, free_port, owner_alive, pids_mentioning, port_open

SYSTEM_USER = "postgres"
DIR_PREFIX = "pyscaler-postgres-"


def sweep_stale() -> list[Path]:
    """Stop the clusters and remove the directories that test sessions which
    died without cleaning up left behind (pg_ctl runs the server detached,
    so it would outlive them)."""
    removed = []
    for directory in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        if not directory.is_dir() or owner_alive(directory):
            continue
        for pid in pids_mentioning(str(directory / "data")):
            try:
                os.kill(pid, signal.SIGQUIT)  # the postmaster's immediate shutdown
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while pids_mentioning(str(directory / "data")) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def pg_bindir() -> Path:
    """The newest installed server's bin directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not found:
        raise ServerError("pg_ctl not found: install it with `apt-get install -y postgresql`")
    return Path(found[-1]).parent


class PostgresServer:
    """One PostgreSQL cluster on ``127.0.0.1:port``, trust authentication,
    superuser ``postgres``."""

    def __init__(self, port: int | None = None, base_dir: Path | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.bindir = pg_bindir()
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix=DIR_PREFIX))
        (self.base_dir / "owner.pid").write_text(str(os.getpid()))  # for sweep_stale
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_path = self.base_dir / "server.log"
        self.user = "postgres"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # The directory must belong to the user the server runs as.
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chmod(self.base_dir, 0o700)
            os.chown(self.base_dir, entry.pw_uid, entry.pw_gid)
            self._as_user = ["runuser", "-u", SYSTEM_USER, "--"]
        self.initialized = False

    def url(self, database: str = "postgres") -> str:
        """A DATABASE_URL (django-environ's syntax) over TCP on loopback."""
        return f"postgres://{self.user}@{self.host}:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60.0) -> str:
        try:
            done = subprocess.run([*self._as_user, *args], capture_output=True, text=True, timeout=timeout,
                                  cwd="/", stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ServerError(f"{' '.join(args)} took longer than {timeout:.0f} s") from None
        if done.returncode != 0:
            raise ServerError(f"{' '.join(args)} failed ({done.returncode}): "
                              f"{done.stderr.strip() or done.stdout.strip()}\n{self.log_tail()}")
        return done.stdout

    def initdb(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-N")
        self._run("mkdir", "-p", str(self.socket_dir))
        self.initialized = True

    def start(self, timeout: float = 60.0) -> PostgresServer:
        if not self.initialized:
            self.initdb()
        if self.running:
            return self
        options = (f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories={self.socket_dir} "
                   "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
                  "-o", options, "-w", "-t", str(int(timeout)), "start", timeout=timeout + 10)
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if time.monotonic() > deadline:
                raise ServerError(f"postgres did not listen on {self.port}\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """``pg_ctl stop -m fast``: sessions are cut, as in a database restart."""
        if self.running:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w",
                      "-t", str(int(timeout)), "stop", timeout=timeout + 10)

    def restart(self) -> PostgresServer:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        return Path(f"/proc/{pid}").exists()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql (tuples only, unaligned) and return its output."""
        return self._run(str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                         "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database, "-c", sql)

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Stop (immediately) and remove the cluster's directory."""
        try:
            self.stop(mode="immediate", timeout=20)
        except ServerError:
            pass
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, running={self.running})"
