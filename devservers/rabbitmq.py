"""A RabbitMQ node of the harness's own, for outage tests.

The machine's shared broker (127.0.0.1:5672) serves every session and must
never be stopped, so a test that takes "the broker" away needs a node nobody
else uses: a separate Erlang node (``pyscaler-test-<pid>@localhost``) on its
own AMQP and distribution ports, with its data, logs, configuration and
Erlang cookie (HOME) in a temporary directory. ``stop()`` / ``start()`` stop
and restart that node on the same ports and data directory, so durable queues
and the messages in them survive, exactly as after a broker host's reboot.

Debian's ``/usr/sbin/rabbitmq-server`` is a wrapper that switches to the
``rabbitmq`` user and reads /etc/rabbitmq (the shared node's settings, port
5672 included), so this runs the real script under /usr/lib/rabbitmq/bin with
RABBITMQ_CONF_ENV_FILE and RABBITMQ_CONFIG_FILE pointing at files of its own.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from devservers.process import ServerProcess
from devservers.util import ServerError, free_port, owner_alive, pids_mentioning, port_open, require_binary

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
NODE_PREFIX = "pyscaler-test"
DIR_PREFIX = "pyscaler-rabbitmq-"


def sweep_stale() -> list[Path]:
    """Kill the nodes and remove the directories that test sessions which
    died without cleaning up (a timeout's SIGKILL) left behind: a node runs
    in a session of its own and would outlive them."""
    removed = []
    for directory in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        if not directory.is_dir() or owner_alive(directory):
            continue
        for pid in pids_mentioning(str(directory / "home")):  # beam.smp -home <dir>/home
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


class RabbitMQNode(ServerProcess):
    """One RabbitMQ node on ``127.0.0.1:port``; user guest/guest, vhost ``/``."""

    #: A graceful stop flushes queues to disk; give it time before SIGKILL.
    stop_timeout = 30.0

    def __init__(self, port: int | None = None, dist_port: int | None = None,
                 base_dir: Path | None = None, name: str | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.dist_port = dist_port or free_port(self.host)
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix=DIR_PREFIX))
        self.nodename = f"{name or f'{NODE_PREFIX}-{os.getpid()}-{self.port}'}@localhost"
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._write_files()

    @property
    def url(self) -> str:
        """The AMQP URL of the default vhost."""
        return f"amqp://guest:guest@{self.host}:{self.port}//"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "server.out"

    def _write_files(self) -> None:
        (self.base_dir / "home").mkdir(parents=True, exist_ok=True)
        (self.base_dir / "owner.pid").write_text(str(os.getpid()))  # for sweep_stale
        # guest may log in over loopback only by default; that is all we use,
        # but the setting keeps 127.0.0.1 vs localhost from mattering.
        (self.base_dir / "rabbitmq.conf").write_text("loopback_users = none\n")
        (self.base_dir / "enabled_plugins").write_text("[].\n")  # no management plugin
        (self.base_dir / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's NODENAME

    def env(self) -> dict[str, str]:
        """The variables both the server and rabbitmqctl need (node name, cookie)."""
        base = self.base_dir
        return {
            **os.environ,
            "HOME": str(base / "home"),  # the Erlang cookie lives here, private to this node
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # The distribution port listens on loopback only, like everything in tests.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """``rabbitmqctl -n <this node> ...``."""
        ctl = require_binary(str(RABBITMQ_BIN / "rabbitmqctl"), "rabbitmq-server")
        try:
            done = subprocess.run([ctl, "-q", "-n", self.nodename, *args], env=self.env(),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ServerError(f"rabbitmqctl {' '.join(args)} took longer than {timeout:.0f} s") from None
        if done.returncode != 0:
            raise ServerError(f"rabbitmqctl -n {self.nodename} {' '.join(args)} failed ({done.returncode}): "
                              f"{done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def start(self, timeout: float = 90.0) -> RabbitMQNode:
        if self.running:
            return self
        server = require_binary(str(RABBITMQ_BIN / "rabbitmq-server"), "rabbitmq-server")
        self._log = open(self.log_path, "ab")
        # Own session: stop()/kill() reach beam.smp and its helpers, never the test runner.
        self._proc = subprocess.Popen([server], env=self.env(), cwd=self.base_dir, stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except ServerError as exc:
            self.kill()
            raise ServerError(f"{exc}; server output tail:\n{self.log_tail()}") from None
        return self

    def _wait_ready(self, timeout: float) -> None:
        """The AMQP listener opens late in boot; ``await_startup`` then
        confirms every boot step ran (one rabbitmqctl call: each costs ~1 s)."""
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise ServerError(f"rabbitmq node {self.nodename} exited with status {code} during start-up")
            if time.monotonic() > deadline:
                raise ServerError(f"rabbitmq node {self.nodename} did not listen on {self.port} "
                                  f"within {timeout:.0f} s")
            time.sleep(0.1)
        self.ctl("await_startup", "--timeout", str(max(1, int(deadline - time.monotonic()))),
                 timeout=max(5.0, deadline - time.monotonic() + 5))

    def _signal(self, sig: int) -> None:
        """The script does not exec beam.smp: signal the whole session (the
        node and its helpers), which start_new_session made a group of its own."""
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    def _request_stop(self) -> None:
        # SIGTERM: RabbitMQ shuts down cleanly (queues closed, data synced).
        self._signal(signal.SIGTERM)

    def stop(self, timeout: float | None = None) -> None:
        """Clean stop; the data directory stays for the next start()."""
        super().stop(timeout)
        self._wait_port_closed(10.0)

    def kill(self) -> None:
        super().kill()
        self._wait_port_closed(10.0)

    def _wait_port_closed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _release(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        """Kill the node and remove its directory (data, logs, cookie)."""
        if self.running:
            self.kill()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"RabbitMQNode({self.nodename}, port={self.port}, running={self.running})"
