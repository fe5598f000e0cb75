"""Which JMX TLS certificates this worker trusts: one PEM file per (JVM, node)
in settings.JMX_TRUST_DIR.

Why this design: the jvm_node role generates each node's key pair on the node
(keytool, so the private key never leaves it) and exports its certificate;
OSConfiguration reads that certificate back over the SSH connection whose
host key it has just verified, and records it here. Trust is therefore
anchored in the SSH known-hosts file, with no CA to run. An operator who runs
a CA instead drops the CA's certificate (PEM) into the same directory.

Why a trust manager of our own: Java's RMI over TLS takes its sockets from the
process's default SSLContext (the server's stub carries an
SslRMIClientSocketFactory, which calls SSLSocketFactory.getDefault()), and a
default context built from ``javax.net.ssl.trustStore`` reads the store once.
A worker that started before a node was configured would never trust that
node. So the default context gets a trust manager that re-reads the directory
whenever its listing changes, and delegates the checking itself (chain,
signature, validity) to Java's PKIX trust manager. Every trusted certificate
is accepted from any JVM: RMI does no host-name check, and the directory only
holds certificates of nodes PyScaler configured.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import jpype
from django.conf import settings

from . import jvmruntime

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_END = "-----END CERTIFICATE-----"
_PEM = re.compile(re.escape(PEM_BEGIN) + r"[A-Za-z0-9+/=\s]+" + re.escape(PEM_END))


class TrustError(Exception):
    """A certificate read back from a node is not one."""


def trust_dir() -> Path:
    return Path(settings.JMX_TRUST_DIR)


def certificate_path(jvm: Any, node: Any) -> Path:
    """One file per JVM record and node: re-configuring a node replaces its
    certificate, and a removed node's file can be deleted by name."""
    def safe(name: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", name)

    return trust_dir() / f"{jvm.cluster_id}-{safe(jvm.name)}--{node.id}-{safe(node.name)}.pem"


def record_certificate(jvm: Any, node: Any, pem: str) -> Path:
    """Trust ``pem`` (one PEM certificate) for ``jvm`` on ``node`` from now on.
    Written atomically: a worker reading the directory never sees half a file."""
    match = _PEM.search(pem or "")
    if match is None:
        raise TrustError("not a PEM certificate")
    path = certificate_path(jvm, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pem")
    with os.fdopen(fd, "w") as fh:
        fh.write(match.group(0) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def _listing(directory: Path) -> tuple:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return ()
    return tuple((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries
                 if e.name.endswith(".pem") and not e.name.startswith("."))


def _delegate(directory: Path) -> Any:
    """Java's PKIX trust manager over every certificate in ``directory``, or
    None when it holds none."""
    KeyStore = jpype.JClass("java.security.KeyStore")
    CertificateFactory = jpype.JClass("java.security.cert.CertificateFactory")
    ByteArrayInputStream = jpype.JClass("java.io.ByteArrayInputStream")
    TrustManagerFactory = jpype.JClass("javax.net.ssl.TrustManagerFactory")
    store = KeyStore.getInstance("PKCS12")
    store.load(None, None)
    factory = CertificateFactory.getInstance("X.509")
    count = 0
    for name, _, _ in _listing(directory):
        try:
            data = (directory / name).read_bytes()
        except OSError:
            continue
        for index, cert in enumerate(factory.generateCertificates(ByteArrayInputStream(data)).toArray()):
            store.setCertificateEntry(f"{name}#{index}", cert)
            count += 1
    if not count:
        return None
    tmf = TrustManagerFactory.getInstance("PKIX")
    tmf.init(store)
    return tmf.getTrustManagers()[0]


@jpype.JImplements("javax.net.ssl.X509TrustManager", deferred=True)  # no JVM at import
class _DirectoryTrustManager:
    """Called by Java in each TLS handshake (only when a connection is made)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._delegate: Any = None

    def _current(self) -> Any:
        directory = trust_dir()
        listing = (str(directory), _listing(directory))
        with self._lock:
            if listing != self._seen:
                self._delegate, self._seen = _delegate(directory), listing
            delegate = self._delegate
        if delegate is None:
            raise jpype.JClass("java.security.cert.CertificateException")(
                f"no trusted JMX certificate in {directory} (JMX_TRUST_DIR): OSConfiguration records one "
                "per node it configures")
        return delegate

    @jpype.JOverride
    def checkServerTrusted(self, chain: Any, auth_type: Any) -> None:
        CertificateException = jpype.JClass("java.security.cert.CertificateException")
        try:
            self._current().checkServerTrusted(chain, auth_type)
        except CertificateException as exc:
            # PKIX's own words ("Signature does not match") do not say which
            # certificate: name it, so the operator can compare the node's.
            cert = chain[0]
            fingerprint = hashlib.sha256(bytes(cert.getEncoded())).hexdigest()
            raise CertificateException(
                f"the JVM's certificate ({cert.getSubjectX500Principal().getName()}, SHA-256 {fingerprint}) "
                f"is not trusted by {trust_dir()} (JMX_TRUST_DIR): {exc.getMessage()}") from None

    @jpype.JOverride
    def checkClientTrusted(self, chain: Any, auth_type: Any) -> None:
        raise jpype.JClass("java.security.cert.CertificateException")("a JMX client accepts no clients")

    @jpype.JOverride
    def getAcceptedIssuers(self) -> Any:
        try:
            return self._current().getAcceptedIssuers()
        except jpype.JClass("java.security.cert.CertificateException"):
            return jpype.JArray(jpype.JClass("java.security.cert.X509Certificate"))(0)


_installed_pid: int | None = None
_install_lock = threading.Lock()


def install() -> None:
    """Make the directory's certificates the trust of this process's default
    SSLContext, before the first TLS connection (afterwards Java has cached
    the default socket factory)."""
    global _installed_pid
    jvmruntime.ensure_started()
    with _install_lock:
        if _installed_pid == os.getpid():
            return
        SSLContext = jpype.JClass("javax.net.ssl.SSLContext")
        TrustManager = jpype.JClass("javax.net.ssl.TrustManager")
        context = SSLContext.getInstance("TLS")
        context.init(None, jpype.JArray(TrustManager)([_DirectoryTrustManager()]), None)
        SSLContext.setDefault(context)
        _installed_pid = os.getpid()


def client_socket_factory() -> Any:
    """The socket factory for the RMI registry lookup (the environment's
    ``com.sun.jndi.rmi.factory.socket``); later connections use the one the
    server's stubs carry, which also reads the default context."""
    install()
    return jpype.JClass("javax.rmi.ssl.SslRMIClientSocketFactory")()
