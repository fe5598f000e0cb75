"""An SMTP server on loopback that keeps what it receives: the mail server of tests.

The Email action must speak real SMTP (Django's smtp backend, its timeouts and
errors), so tests point it at aiosmtpd rather than at Django's locmem backend.
The server runs in a thread of the test process (aiosmtpd's Controller), which
lets a test read the received messages directly; a Celery worker subprocess
reaches it over TCP like any mail server.
"""
from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devservers.util import ServerError, free_port


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None = None  # the authenticated user, when AUTH was used
    message: EmailMessage = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        object.__setattr__(self, "message", parsed)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def body(self) -> str:
        """The plain-text body (the first text/plain part of a multipart message)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


class _RecordingHandler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        if self._server.fail_with:
            return self._server.fail_with
        login = session.auth_data.login.decode() if getattr(session, "auth_data", None) else None
        self._server._record(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content),
                login=login,
            )
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on ``host:port`` recording every accepted message.

    ``credentials=(user, password)`` makes it require AUTH (over plain TCP:
    this is loopback). Setting ``fail_with`` to an SMTP reply such as
    ``"451 Try again later"`` makes it refuse messages (a fault test).
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1",
                 credentials: tuple[str, str] | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.credentials = credentials
        self.fail_with: str | None = None
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()
        self._controller: Controller | None = None

    @property
    def email_url(self) -> str:
        """EMAIL_URL for a PyScaler process (settings read it)."""
        if self.credentials:
            user, password = self.credentials
            return f"smtp://{user}:{password}@{self.host}:{self.port}"
        return f"smtp://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpServer:
        if self._controller is not None:
            return self
        options = {}
        if self.credentials:
            options = {"authenticator": self._authenticate, "auth_required": True,
                       "auth_require_tls": False}
        controller = Controller(_RecordingHandler(self), hostname=self.host, port=self.port,
                                ready_timeout=10, **options)
        try:
            controller.start()
        except Exception as exc:  # aiosmtpd raises several kinds on a failed start
            raise ServerError(f"aiosmtpd did not start on {self.host}:{self.port}: {exc}") from exc
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _record(self, message: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()
        self.fail_with = None

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServerError(
                        f"SMTP server {self.host}:{self.port} received {len(self._messages)} "
                        f"message(s) within {timeout:.0f} s, expected {count}"
                    )
                self._cond.wait(remaining)
            return list(self._messages)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SmtpServer({self.host}:{self.port}, running={self.running})"
