"""JMX remote connections, one per (host, port, credentials), kept per process.

Opening a JMX connector costs ~0.2-0.4 s and a read through a new connector is
~20x slower than through an open one (field-notes), so a connection is opened
once and reused for every read in this process, and only re-opened when it
breaks.

Every wait is bounded. RMI's own socket timeouts do not bound a call: against
a hung JVM one read measured 3 minutes with ``responseTimeout`` set (a dead
pooled connection, then up to three connection handshakes of
``handshakeTimeout`` each). So each call runs in a daemon thread of a Java
executor and the caller waits on its future for at most JMX_CONNECT_TIMEOUT_S
(connect) or JMX_READ_TIMEOUT_S (read) — jpype documents this recipe for
limiting a Java call's time. Reads are bound to their arguments with method
handles, so the executor thread runs no Python and needs no GIL.

A JVM record with ``tls`` is reached over TLS: the registry lookup through an
SslRMIClientSocketFactory given in the environment, later calls through the
factory the server's stubs carry. Both use the process's default SSLContext,
whose trust trust.py keeps (only a TLS handshake runs Python: a new socket).
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import jpype
from django.conf import settings

from pyscaler.secretrefs import SecretUnavailable, resolve_secret_ref

from . import jvmruntime, trust

logger = logging.getLogger(__name__)


class JmxError(Exception):
    """A read failed for the MBean asked (the connection may still be good)."""


class MBeanNotFound(JmxError):
    pass


class JmxConnectionError(JmxError):
    """The JVM cannot be reached, refused us, or the connection broke: every
    counter of that JVM is missing this round. ``timed_out``: the JVM did not
    answer in time (hung), so trying again at once would only wait again."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class JmxAuthError(JmxConnectionError):
    pass


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"service:jmx:rmi:///jndi/rmi://{host}:{self.port}/jmxrmi"

    def __str__(self) -> str:
        return (f"{self.host}:{self.port}" + (f" as {self.username}" if self.username else "")
                + (" over TLS" if self.tls else ""))


def endpoint_for(node: Any, jvm: Any) -> Endpoint:
    """The endpoint of ``jvm`` on ``node``; the password is read from its
    reference now (SecretUnavailable if it cannot be)."""
    password = resolve_secret_ref(jvm.password_ref) if jvm.password_ref else ""
    return Endpoint(host=node.address, port=jvm.jmx_port, username=jvm.username or "", password=password,
                    tls=bool(getattr(jvm, "tls", False)))


# -- Java classes, looked up once per process (after the JVM started) ---------

@functools.cache
def _java() -> Any:
    jvmruntime.ensure_started()

    class J:  # a namespace of the classes this module uses
        JMXServiceURL = jpype.JClass("javax.management.remote.JMXServiceURL")
        JMXConnectorFactory = jpype.JClass("javax.management.remote.JMXConnectorFactory")
        JMXConnector = jpype.JClass("javax.management.remote.JMXConnector")
        ObjectName = jpype.JClass("javax.management.ObjectName")
        HashMap = jpype.JClass("java.util.HashMap")
        Thread = jpype.JClass("java.lang.Thread")
        TimeUnit = jpype.JClass("java.util.concurrent.TimeUnit")
        TimeoutException = jpype.JClass("java.util.concurrent.TimeoutException")
        ExecutionException = jpype.JClass("java.util.concurrent.ExecutionException")
        IOException = jpype.JClass("java.io.IOException")
        SecurityException = jpype.JClass("java.lang.SecurityException")
        SocketTimeoutException = jpype.JClass("java.net.SocketTimeoutException")
        InstanceNotFoundException = jpype.JClass("javax.management.InstanceNotFoundException")
        JMException = jpype.JClass("javax.management.JMException")
        RuntimeException = jpype.JClass("java.lang.RuntimeException")
        StringArray = jpype.JArray(jpype.JString)
        MBeanServerConnection = jpype.JClass("javax.management.MBeanServerConnection")
        AttributeList = jpype.JClass("javax.management.AttributeList")
        Object = jpype.JClass("java.lang.Object")
        String = jpype.JClass("java.lang.String")
        MethodHandles = jpype.JClass("java.lang.invoke.MethodHandles")
        MethodType = jpype.JClass("java.lang.invoke.MethodType")
        MethodHandleProxies = jpype.JClass("java.lang.invoke.MethodHandleProxies")
        Callable = jpype.JClass("java.util.concurrent.Callable")
        Executors = jpype.JClass("java.util.concurrent.Executors")
        MILLISECONDS = TimeUnit.MILLISECONDS

    return J


@functools.lru_cache(maxsize=4096)
def _object_name(name: str) -> Any:
    return _java().ObjectName(name)


@functools.lru_cache(maxsize=4096)
def _attribute_names(names: tuple[str, ...]) -> Any:
    return _java().StringArray(list(names))


def _describe(exc: BaseException) -> str:
    """A Java exception's message with its root cause, which is where RMI puts
    the useful part ("Connection refused", "Read timed out")."""
    text = str(exc).split("; nested exception is:")[0].strip()
    cause = getattr(exc, "getCause", lambda: None)()
    root = None
    while cause is not None:
        root = cause
        cause = cause.getCause()
    if root is not None:
        root_text = f"{root.getClass().getSimpleName()}: {root.getMessage()}"
        if root_text not in text:
            text = f"{text} ({root_text})"
    return text


def _timed_out(exc: BaseException) -> bool:
    J = _java()
    cause = exc
    while cause is not None:
        if isinstance(cause, J.SocketTimeoutException):
            return True
        cause = cause.getCause()
    return False


@jpype.JImplements("java.util.concurrent.ThreadFactory", deferred=True)  # no JVM at import
class _DaemonThreads:
    """Executor threads must be daemons: one stuck on a hung JVM may not keep
    the process from exiting. Called only when the executor adds a thread."""

    @jpype.JOverride
    def newThread(self, runnable: Any) -> Any:
        thread = _java().Thread(runnable, "pyscaler-jmx")
        thread.setDaemon(True)
        return thread


_executor_of_pid: tuple[int, Any] | None = None


def _executor() -> Any:
    global _executor_of_pid
    if _executor_of_pid is None or _executor_of_pid[0] != os.getpid():
        _executor_of_pid = (os.getpid(), _java().Executors.newCachedThreadPool(_DaemonThreads()))
    return _executor_of_pid[1]


def _bound_call(mbsc: Any, method: str, return_type: Any, parameter_types: list[Any], args: list[Any]) -> Any:
    """A Java Callable running ``mbsc.method(*args)`` without any Python."""
    J = _java()
    handle = J.MethodHandles.publicLookup().findVirtual(
        J.MBeanServerConnection, method, J.MethodType.methodType(return_type, parameter_types))
    handle = J.MethodHandles.insertArguments(handle.bindTo(mbsc), 0, *args)
    return J.MethodHandleProxies.asInterfaceInstance(J.Callable, handle)


def _wait(callable_: Any, timeout_s: float, what: str) -> Any:
    """Run ``callable_`` in the executor; its result, its own exception, or
    JmxConnectionError(timed_out=True) after ``timeout_s``."""
    return _result(_executor().submit(callable_), timeout_s, what)


def _result(future: Any, timeout_s: float, what: str) -> Any:
    J = _java()
    try:
        return future.get(int(timeout_s * 1000), J.MILLISECONDS)
    except J.TimeoutException:
        future.cancel(True)
        raise JmxConnectionError(f"{what}: no answer within {timeout_s:g} s", timed_out=True) from None
    except J.ExecutionException as exc:
        raise exc.getCause() from None


class JmxConnection:
    """An open JMX connector and its MBeanServerConnection."""

    def __init__(self, endpoint: Endpoint, connector: Any) -> None:
        self.endpoint = endpoint
        self._connector = connector
        self._mbsc = connector.getMBeanServerConnection()
        self._readers: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._ordered: set[tuple[str, tuple[str, ...]]] = set()
        self.read_timeout_s = float(settings.JMX_READ_TIMEOUT_S)
        self.broken = False

    @classmethod
    def open(cls, endpoint: Endpoint, timeout_s: float | None = None) -> JmxConnection:
        J = _java()
        timeout_s = timeout_s if timeout_s is not None else settings.JMX_CONNECT_TIMEOUT_S
        url = J.JMXServiceURL(endpoint.url)
        env = J.HashMap()
        if endpoint.username:
            env.put(J.JMXConnector.CREDENTIALS, J.StringArray([endpoint.username, endpoint.password]))
        if endpoint.tls:
            # TLS to the RMI registry too; the stubs it hands out carry the
            # server's own SSL socket factory (see trust.py for whom we trust).
            env.put("com.sun.jndi.rmi.factory.socket", trust.client_socket_factory())
        abandoned = threading.Event()
        guard = threading.Lock()

        @jpype.JImplements("java.util.concurrent.Callable")
        class Connect:  # rare, so a Python callable is fine here
            @jpype.JOverride
            def call(self) -> Any:
                connector = J.JMXConnectorFactory.connect(url, env)
                with guard:
                    late = abandoned.is_set()
                if late:  # the caller gave up waiting: do not leak the connection
                    connector.close()
                return connector

        try:
            connector = _wait(Connect(), timeout_s, f"JMX connect to {endpoint}")
        except JmxConnectionError:
            with guard:
                abandoned.set()
            raise
        except J.SecurityException as exc:
            raise JmxAuthError(f"JMX authentication to {endpoint} refused: {exc.getMessage()}") from None
        except (J.IOException, J.RuntimeException) as exc:
            raise JmxConnectionError(f"cannot connect to JMX at {endpoint}: {_describe(exc)}",
                                     timed_out=_timed_out(exc)) from None
        return cls(endpoint, connector)

    def _reader(self, mbean: str, names: tuple[str, ...]) -> Any:
        key = (mbean, names)
        reader = self._readers.get(key)
        if reader is None:
            J = _java()
            reader = _bound_call(self._mbsc, "getAttributes", J.AttributeList, [J.ObjectName, J.StringArray],
                                 [_object_name(mbean), _attribute_names(names)])
            self._readers[key] = reader
        return reader

    def submit_read(self, mbean: str, names: tuple[str, ...]) -> Any:
        """Start reading ``names`` of ``mbean``; ``finish_read`` collects it.
        A JVM's MBeans are read concurrently this way: RMI runs concurrent
        calls on separate connections, so a round costs about one round trip
        instead of one per MBean."""
        return _executor().submit(self._reader(mbean, names))

    def cancel_read(self, future: Any) -> None:
        future.cancel(True)

    def get_attributes(self, mbean: str, names: tuple[str, ...]) -> dict[str, Any]:
        """Read ``names`` of ``mbean`` in one call. Attributes the MBean does
        not have (or cannot read) are absent from the result, as in JMX."""
        return self.finish_read(self.submit_read(mbean, names), mbean, names)

    def finish_read(self, future: Any, mbean: str, names: tuple[str, ...]) -> dict[str, Any]:
        J = _java()
        try:
            found = _result(future, self.read_timeout_s, f"JMX read from {self.endpoint}")
        except J.InstanceNotFoundException:
            raise MBeanNotFound(f"MBean {mbean} not found") from None
        except JmxConnectionError:
            self.broken = True
            raise
        except J.IOException as exc:
            self.broken = True
            raise JmxConnectionError(f"JMX read from {self.endpoint} failed: {_describe(exc)}",
                                     timed_out=_timed_out(exc)) from None
        except (J.JMException, J.RuntimeException) as exc:
            raise JmxError(f"reading {mbean}: {_describe(exc)}") from None
        attributes = found.toArray()  # one Java call; jpype's List iterator costs more
        key = (mbean, names)
        if key in self._ordered and len(attributes) == len(names):
            # Every getName is a JNI round trip (~20% of a read): once this
            # MBean has answered in the order asked, match by position.
            return dict(zip(names, [attribute.getValue() for attribute in attributes]))
        values = {str(attribute.getName()): attribute.getValue() for attribute in attributes}
        if tuple(values) == names:
            self._ordered.add(key)
        return values

    def why_unreadable(self, mbean: str, name: str) -> str:
        """Why getAttributes left ``name`` out: JMX only tells on a single read."""
        J = _java()
        reader = _bound_call(self._mbsc, "getAttribute", J.Object, [J.ObjectName, J.String],
                             [_object_name(mbean), J.String(name)])
        try:
            _wait(reader, self.read_timeout_s, f"JMX read from {self.endpoint}")
        except JmxConnectionError as exc:
            self.broken = True
            return str(exc)
        except J.IOException as exc:
            self.broken = True
            return f"JMX read from {self.endpoint} failed: {_describe(exc)}"
        except (J.JMException, J.RuntimeException) as exc:
            return _describe(exc)
        return f"attribute {name} of {mbean} was not returned"

    def close(self) -> None:
        """Close in the background: RMI's close is a remote call, which a hung
        JVM would not answer."""
        connector, self._connector = self._connector, None
        self._readers.clear()
        if connector is None:
            return
        J = _java()
        handle = J.MethodHandles.publicLookup().findVirtual(
            J.JMXConnector, "close", J.MethodType.methodType(jpype.JClass("java.lang.Void").TYPE))
        _executor().submit(J.MethodHandleProxies.asInterfaceInstance(
            jpype.JClass("java.lang.Runnable"), handle.bindTo(connector)))


# -- the per-process pool ---------------------------------------------------------

_pool: dict[Endpoint, JmxConnection] = {}
_pool_lock = threading.Lock()
_endpoint_locks: dict[Endpoint, threading.Lock] = {}


def get_connection(endpoint: Endpoint) -> tuple[JmxConnection, bool]:
    """The open connection to ``endpoint`` (opened now if needed), and whether
    it was reused from an earlier call."""
    jvmruntime.ensure_started()  # also refuses a JVM (and pool) inherited through fork
    with _pool_lock:
        lock = _endpoint_locks.setdefault(endpoint, threading.Lock())
    with lock:  # one connect per endpoint at a time, even with threads
        connection = _pool.get(endpoint)
        if connection is not None and not connection.broken:
            return connection, True
        if connection is not None:
            discard(endpoint)
        connection = JmxConnection.open(endpoint)
        _pool[endpoint] = connection
        return connection, False


def discard(endpoint: Endpoint) -> None:
    connection = _pool.pop(endpoint, None)
    if connection is not None:
        connection.close()


def close_all() -> None:
    for endpoint in list(_pool):
        discard(endpoint)


__all__ = [
    "Endpoint",
    "JmxAuthError",
    "JmxConnection",
    "JmxConnectionError",
    "JmxError",
    "MBeanNotFound",
    "SecretUnavailable",
    "close_all",
    "discard",
    "endpoint_for",
    "get_connection",
]
