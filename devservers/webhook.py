"""An HTTP server on loopback that receives webhooks: the receiver of the
Webhook action's tests.

A real server (the standard library's threaded http.server in a thread of
the test process), so the kind speaks real HTTP: connecting, timeouts,
status codes. It records every request, checks the HMAC-SHA256 signature
the way a receiver would (README, "The Webhook action") and answers what the
test scripts: a status, a body, or a delay longer than the sender waits.
A Celery worker subprocess reaches it over TCP like any receiver.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from devservers.util import ServerError


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = "ok"
    #: Seconds to wait before answering (a hung receiver).
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    #: None without a secret; else whether the signature header was right.
    signature_ok: bool | None
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


def self_signed_cert(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate for ``host`` (an IP address) signed by its own key:
    the one file a client names as its CA bundle (WEBHOOK_CA_BUNDLE)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "webhook-tls.pem", directory / "webhook-tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What a receiver computes (written apart from PyScaler's own code, as a
    receiver would write it) and compares with hmac.compare_digest."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        owner = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        signature_ok = owner._check_signature(headers, body)
        owner._record(Received(path=self.path, headers=headers, body=body, signature_ok=signature_ok))
        reply = Reply(401, "bad signature") if signature_ok is False else owner._next_reply()
        if reply.delay_s and owner._stopping.wait(reply.delay_s):
            return
        payload = reply.body.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: WebhookServer


class WebhookServer:
    """Receives POSTs on ``host:port``. ``replies`` (a list, consumed in
    order) scripts the answers; when it is empty, ``default`` answers.
    With ``secret`` set, each request's signature is checked (recorded as
    ``signature_ok``) and a wrong or missing one is answered 401, as a real
    receiver would. With ``tls_dir`` it speaks HTTPS with a self-signed
    certificate written there (``ca_path``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls_dir: Path | None = None) -> None:
        self.host = host
        self._port = port
        self._tls = self_signed_cert(tls_dir, host) if tls_dir is not None else None
        self.secret: str | None = None
        self.default = Reply()
        self.replies: list[Reply] = []
        self._received: list[Received] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise ServerError("the webhook server is not started")
        return self._server.server_address[1]

    @property
    def ca_path(self) -> Path:
        if self._tls is None:
            raise ServerError("this webhook server speaks plain HTTP")
        return self._tls[0]

    def url(self, path: str = "/hook") -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}{path}"

    @property
    def received(self) -> list[Received]:
        with self._cond:
            return list(self._received)

    def reset(self) -> None:
        with self._cond:
            self._received.clear()
        self.secret, self.default, self.replies = None, Reply(), []

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._received) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self._received)} in {timeout} s")
            return list(self._received)

    def start(self) -> WebhookServer:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server((self.host, self._port), _Handler)
            self._server.owner = self
            if self._tls is not None:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*map(str, self._tls))
                self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-server",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # delayed replies give up at once
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- handler side ----------------------------------------------------------

    def _record(self, request: Received) -> None:
        with self._cond:
            self._received.append(request)
            self._cond.notify_all()

    def _next_reply(self) -> Reply:
        with self._cond:
            reply = self.replies.pop(0) if self.replies else self.default
        return reply

    def _check_signature(self, headers: dict[str, str], body: bytes) -> bool | None:
        if self.secret is None:
            return None
        given = headers.get("x-pyscaler-signature", "")
        wanted = expected_signature(self.secret, headers.get("x-pyscaler-timestamp", ""), body)
        return hmac.compare_digest(given, wanted)
