"""The one JVM each collecting process embeds (through jpype) to speak JMX.

jpype documents that a process holds at most one JVM, that it cannot be
restarted, and that a JVM does not survive ``fork``: a child of a process
whose JVM is running inherits a copy that hangs, and cannot start its own.
Celery's prefork pool forks its children from the main worker process, so:

- the JVM is started lazily, on first use, in the process that uses it —
  never at import;
- each pool process of a worker that consumes the ``collect`` queue starts
  its own right after the fork, from Celery's ``worker_process_init`` signal
  (connected below), so the first collection does not pay the start-up; a
  control or actions worker never collects and starts none (a JVM is some
  60 MB and a second of CPU per pool process);
- the main worker process never starts one (it only forks and supervises);
- a process that finds a JVM started by its parent fails with a clear error
  instead of hanging.
"""
from __future__ import annotations

import faulthandler
import logging
import os
import threading
from pathlib import Path

import jpype
from celery.signals import celeryd_after_setup, worker_process_init
from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_started_pid: int | None = None
#: Whether this Celery worker consumes the collect queue (None: not known,
#: e.g. not started by ``celery worker``). Set in the main process before the
#: pool forks, so every pool process inherits it.
_worker_collects: bool | None = None
COLLECT_QUEUE = "collect"


class JvmUnavailable(RuntimeError):
    """No usable JVM in this process: collection reports it per counter."""


def _libjvm_under(java_home: Path) -> Path | None:
    for relative in ("lib/server/libjvm.so", "jre/lib/server/libjvm.so", "lib/server/libjvm.dylib",
                     "jre/lib/amd64/server/libjvm.so"):
        candidate = java_home / relative
        if candidate.exists():
            return candidate
    return None


def jvm_path() -> str:
    """libjvm from settings.JVM_PATH, else $JAVA_HOME, else jpype's own search."""
    configured = getattr(settings, "JVM_PATH", "")
    if configured:
        if not Path(configured).is_file():
            raise JvmUnavailable(f"JVM_PATH={configured!r} is not a file: point it at libjvm.so")
        return configured
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        found = _libjvm_under(Path(java_home))
        if found is None:
            raise JvmUnavailable(f"JAVA_HOME={java_home!r} holds no lib/server/libjvm.so: "
                                 "fix JAVA_HOME or set JVM_PATH")
        return str(found)
    try:
        return jpype.getDefaultJVMPath()
    except jpype.JVMNotFoundException as exc:
        raise JvmUnavailable(
            f"no JVM found ({exc}); install one (`apt-get install -y openjdk-17-jdk-headless`) "
            "or set JAVA_HOME or JVM_PATH"
        ) from None


def _jvm_options() -> list[str]:
    read_ms = int(getattr(settings, "JMX_READ_TIMEOUT_S", 10.0) * 1000)
    connect_ms = int(getattr(settings, "JMX_CONNECT_TIMEOUT_S", 5.0) * 1000)
    return [
        # RMI (under JMX remote) waits forever for a hung server by default.
        # The connector bounds each call itself (see connector.py); these
        # bound how long an abandoned call keeps its thread.
        f"-Dsun.rmi.transport.tcp.responseTimeout={read_ms}",
        f"-Dsun.rmi.transport.tcp.handshakeTimeout={max(read_ms, connect_ms)}",
        # Leave SIGINT/SIGTERM/SIGHUP to Celery: the JVM must not turn a warm
        # shutdown into its own exit.
        "-Xrs",
        # A JMX client needs little memory and few GC threads per pool process.
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-Djava.awt.headless=true",
    ]


def ensure_started() -> None:
    """Start this process's JVM once; cheap when already started here."""
    global _started_pid
    pid = os.getpid()
    if _started_pid == pid:
        return
    with _lock:
        if _started_pid == pid:
            return
        if _started_pid is not None:
            raise JvmUnavailable(
                f"the JVM was started in process {_started_pid} before this process ({pid}) was forked "
                "from it; a forked JVM is unusable. Start it after the fork (worker_process_init)."
            )
        if jpype.isJVMStarted():
            # Started in this process by other code (e.g. a test): usable as is,
            # but our RMI timeouts must still apply to it.
            _set_timeouts_on_running_jvm()
            _started_pid = pid
            return
        path = jvm_path()
        # jpype: Python's faulthandler mistakes the JVM's deliberate SIGSEGVs
        # (JIT, safepoints) for crashes, and re-installing its handlers later
        # (pytest does at exit) would remove the JVM's. Disable it first.
        if faulthandler.is_enabled():
            faulthandler.disable()
        try:
            jpype.startJVM(*_jvm_options(), jvmpath=path, convertStrings=False, interrupt=False)
        except OSError as exc:
            raise JvmUnavailable(f"cannot start the JVM at {path}: {exc}") from None
        _started_pid = pid
        logger.info("started JVM %s in process %s", path, pid)


def _set_timeouts_on_running_jvm() -> None:
    system = jpype.JClass("java.lang.System")
    for option in _jvm_options():
        if option.startswith("-Dsun.rmi"):
            key, _, value = option[2:].partition("=")
            if system.getProperty(key) is None:
                system.setProperty(key, value)


def started_here() -> bool:
    return _started_pid == os.getpid()


@celeryd_after_setup.connect(weak=False)
def note_worker_queues(sender: str, instance, **_kwargs: object) -> None:
    global _worker_collects
    _worker_collects = COLLECT_QUEUE in instance.app.amqp.queues.consume_from


@worker_process_init.connect(weak=False)
def start_in_pool_process(**_kwargs: object) -> None:
    """Celery pool process just forked: start its own JVM now, if its worker
    collects. A failure is logged, not raised, so the pool process still
    serves SSH collection; JMX counters then report the reason each time."""
    if not getattr(settings, "JMX_START_IN_POOL_PROCESS", True) or _worker_collects is False:
        return
    try:
        ensure_started()
    except JvmUnavailable as exc:
        logger.error("JMX collection unavailable in pool process %s: %s", os.getpid(), exc)
