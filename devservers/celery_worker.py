"""A real Celery worker subprocess on the real RabbitMQ broker.

Late acks, redelivery after a worker dies, queue routing and fork-safety of
what a pool process opens (JVM, SSH connections) exist only with a real broker
and a real prefork pool, so tests run ``celery -A pyscaler worker`` as a
separate process rather than Celery's in-process test worker.

Each test session gets its own RabbitMQ virtual host (``BrokerVhost``): two
test runs on one machine (or a test run next to ``make run``) never consume
each other's tasks, and deleting the vhost at the end drops every queue and
message the session left behind.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urlsplit, urlunsplit

from celery import Celery

from devservers.process import ServerProcess
from devservers.util import REPO_ROOT, ServerError, require_binary, stop_process

VHOST_PREFIX = "pyscaler-test"

# The probe tasks (devservers/probe_tasks.py) exist only in workers started
# with ``probes=True``: the module is passed to ``celery worker --include``, so a
# production worker (``celery -A pyscaler worker``) never imports it.
PROBE_TASKS_MODULE = "devservers.probe_tasks"
PROBE_TASK_PREFIX = "devservers.probe."


# ---------------------------------------------------------------------------
# Broker virtual hosts
# ---------------------------------------------------------------------------

def _rabbitmqctl(*args: str, timeout: float = 60.0) -> str:
    ctl = require_binary("rabbitmqctl", "rabbitmq-server")
    try:
        done = subprocess.run([ctl, "-q", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ServerError(f"rabbitmqctl {' '.join(args)} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        raise ServerError(
            f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): "
            f"{done.stderr.strip() or done.stdout.strip()}"
            " — creating a test vhost needs rabbitmqctl rights (run the tests as root, or as a user"
            " in the rabbitmq group)"
        )
    return done.stdout


def vhost_url(base_url: str, vhost: str) -> str:
    """``base_url`` (amqp://user:pw@host:port/<anything>) pointed at ``vhost``."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, ""))


class BrokerVhost:
    """A RabbitMQ virtual host that lives as long as this object (or the test
    session holding it). Names carry the host name and pid, so ``sweep_stale``
    can delete what a crashed session on this machine left behind."""

    def __init__(self, base_url: str, user: str = "guest", name: str | None = None) -> None:
        self.base_url = base_url
        self.user = user
        self.name = name or f"{VHOST_PREFIX}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.created = False

    @property
    def url(self) -> str:
        return vhost_url(self.base_url, self.name)

    def create(self) -> BrokerVhost:
        _rabbitmqctl("add_vhost", self.name)
        self.created = True
        _rabbitmqctl("set_permissions", "-p", self.name, self.user, ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        if self.created:
            _rabbitmqctl("delete_vhost", self.name)
            self.created = False

    @staticmethod
    def sweep_stale() -> list[str]:
        """Delete test vhosts of this machine whose session process is gone."""
        host = re.escape(socket.gethostname())
        pattern = re.compile(rf"^{re.escape(VHOST_PREFIX)}-{host}-(\d+)-[0-9a-f]+$")
        removed = []
        for line in _rabbitmqctl("list_vhosts", "name").splitlines():
            match = pattern.match(line.strip())
            if match and not Path(f"/proc/{match.group(1)}").exists():
                _rabbitmqctl("delete_vhost", line.strip())
                removed.append(line.strip())
        return removed

    def __enter__(self) -> BrokerVhost:
        return self.create()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.delete()


def point_app_at_broker(app: Celery, broker_url: str) -> None:
    """Re-point an already configured Celery app (the project's, in the test
    process) at ``broker_url``, dropping connections made to the old one.

    Celery caches the connection and producer pools and the result backend
    (whose rpc:// reply consumer is bound to the old vhost); forgetting them is
    what Celery itself does after a fork, hence ``_after_fork``.
    """
    old_backend = getattr(app._local, "backend", None)
    consumer = getattr(old_backend, "result_consumer", None)
    if consumer is not None:
        try:
            consumer.stop()  # else it keeps taking replies when a later test returns to that vhost
        except Exception:  # noqa: BLE001 - its connection may be gone already
            pass
    app.conf.broker_url = broker_url
    app.conf.broker_read_url = None
    app.conf.broker_write_url = None
    app._after_fork()
    app._backend_cache = None
    if hasattr(app._local, "backend"):
        del app._local.backend
    # The rpc:// reply queue is named after the app's thread oid, which is the
    # same every time; a fresh one gives the new backend a reply queue no
    # forgotten consumer listens on.
    app._local.oid = str(uuid.uuid4())


# ---------------------------------------------------------------------------
# The worker
# ---------------------------------------------------------------------------

def _celery_command() -> list[str]:
    script = Path(sys.executable).with_name("celery")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "celery"]


class CeleryWorker(ServerProcess):
    """``celery -A pyscaler worker`` for ``queues`` with the prefork pool.

    ``env`` is added to this process's environment: give it DATABASE_URL,
    MEMCACHED_SERVERS, ... so the worker sees the same world as the test. The
    broker URL is always ``broker_url`` (CELERY_BROKER_URL). ``probes=True``
    also loads the probe tasks a harness test sends to look inside the worker.
    """

    def __init__(self, broker_url: str, name: str | None = None,
                 queues: Sequence[str] = ("collect", "control", "actions"),
                 env: Mapping[str, str] | None = None, concurrency: int = 2, pool: str = "prefork",
                 log_path: Path | None = None, loglevel: str = "INFO",
                 extra_args: Sequence[str] = (), probes: bool = False) -> None:
        self.broker_url = broker_url
        self.name = name or f"w{uuid.uuid4().hex[:8]}"
        self.queues = tuple(queues)
        self.env = dict(env or {})
        self.concurrency = concurrency
        self.pool = pool
        self.loglevel = loglevel
        self.extra_args = tuple(extra_args)
        self.probes = probes
        self.log_path = Path(log_path) if log_path else Path(f"/tmp/pyscaler-worker-{self.name}.log")
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._control_app: Celery | None = None

    @property
    def nodename(self) -> str:
        """What Celery calls this worker (``-n name@%h``): the ``hostname`` in
        task requests and the destination of remote-control commands."""
        return f"{self.name}@{socket.gethostname()}"

    def command(self) -> list[str]:
        return [
            *_celery_command(), "-A", "pyscaler", "worker",
            "-Q", ",".join(self.queues),
            "-n", f"{self.name}@%h",
            "--pool", self.pool, "-c", str(self.concurrency),
            "--loglevel", self.loglevel,
            # Mingle and gossip talk to other workers; a test worker has none
            # to talk to and mingle alone adds ~1 s to start-up.
            "--without-mingle", "--without-gossip",
            *(("--include", PROBE_TASKS_MODULE) if self.probes else ()),
            *self.extra_args,
        ]

    def start(self, timeout: float = 60.0) -> CeleryWorker:
        if self.running:
            return self
        env = {**os.environ, **self.env, "CELERY_BROKER_URL": self.broker_url,
               "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "pyscaler.settings"),
               "PYTHONUNBUFFERED": "1"}
        self._log = open(self.log_path, "ab")
        # Own session: kill() reaches the pool processes, never the test runner.
        self._proc = subprocess.Popen(
            self.command(), cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            self.wait_ready(timeout)
        except ServerError as exc:
            self.kill()
            raise ServerError(f"{exc}; worker log tail:\n{self.log_tail()}") from None
        return self

    def _control(self) -> Celery:
        """A bare Celery app on the same broker, for remote control only: the
        readiness check must not depend on (or disturb) the project app."""
        if self._control_app is None:
            self._control_app = Celery("pyscaler-harness", broker=self.broker_url, set_as_current=False)
        return self._control_app

    def ping(self, timeout: float = 1.0) -> bool:
        """A remote-control ping answered by this worker: it consumes from the broker."""
        replies = self._control().control.ping(destination=[self.nodename], timeout=timeout)
        return any(self.nodename in reply for reply in replies or [])

    def registered_tasks(self, timeout: float = 5.0) -> list[str]:
        """The task names this worker answers ``inspect registered`` with: what
        it would run, as the running process itself reports it."""
        replies = self._control().control.inspect(destination=[self.nodename], timeout=timeout).registered()
        if not replies or self.nodename not in replies:
            raise ServerError(f"celery worker {self.nodename} did not answer `inspect registered`")
        return sorted(name.split(" ")[0] for name in replies[self.nodename])

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise ServerError(f"celery worker {self.nodename} exited with status {code} during start-up")
            if self._log_says_ready() and self.ping(timeout=0.5):
                return
            time.sleep(0.1)
        raise ServerError(f"celery worker {self.nodename} did not answer a ping within {timeout:.0f} s")

    def _log_says_ready(self) -> bool:
        """Cheap pre-check before a broker round trip: Celery logs ``ready.``
        once its consumer runs."""
        try:
            return b" ready." in self.log_path.read_bytes()[-65536:]
        except OSError:
            return False

    def pool_pids(self) -> list[int]:
        """The pool processes (children of the main worker process)."""
        if self._proc is None:
            return []
        try:
            text = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown (SIGTERM to the main process: running tasks finish,
        nothing new is taken), then SIGKILL of everything left, stray pool
        processes included."""
        super().stop(timeout)

    def _cleanup(self) -> None:
        if self._proc is not None:
            self._signal_group(signal.SIGKILL)  # pool processes that outlived the main one
        super()._cleanup()

    # kill(): SIGKILL of the main process and its pool at once (the worker host
    # died); tasks it held unacknowledged go back to their queue (late acks).

    def kill_pool_process(self) -> int:
        """SIGKILL one pool process while the main process lives on: Celery
        notices the lost process and, with reject-on-worker-lost, requeues its
        task. Returns the killed pid."""
        pids = self.pool_pids()
        if not pids:
            raise ServerError(f"celery worker {self.nodename} has no pool process to kill")
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def _release(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._control_app is not None:
            self._control_app.close()
            self._control_app = None

    def __repr__(self) -> str:
        return f"CeleryWorker({self.nodename}, queues={','.join(self.queues)}, running={self.running})"


class CeleryBeat:
    """``celery -A pyscaler beat`` with a worker's environment (database,
    memcached, broker), its schedule file and log in ``workdir``."""

    def __init__(self, worker: CeleryWorker, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_path = workdir / "beat.log"
        environment = {**os.environ, **worker.env, "CELERY_BROKER_URL": worker.broker_url, **(env or {})}
        environment.setdefault("DJANGO_SETTINGS_MODULE", "pyscaler.settings")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [*_celery_command(), "-A", "pyscaler", "beat", "-l", "INFO", "-s", str(workdir / "beat-schedule")],
            cwd=REPO_ROOT, env=environment, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05,
               what: str = "condition") -> None:
    """Poll ``predicate`` until true; a bounded wait for cross-process effects."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise ServerError(f"{what} not met within {timeout:.1f} s")

