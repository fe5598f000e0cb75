"""The SMTP harness is a real SMTP server: Django's smtp backend delivers to it
over TCP and the test reads what arrived."""
from __future__ import annotations

import smtplib
from collections.abc import Callable

import pytest
from django.core.mail import get_connection, send_mail

from devservers.smtp import SmtpServer
from devservers.util import ServerError


def test_it_receives_mail_sent_by_djangos_smtp_backend(smtp: SmtpServer) -> None:
    sent = send_mail("Scale-out on web", "CPU above 90% on node 3", "pyscaler@localhost",
                     ["ops@example.org", "oncall@example.org"])
    assert sent == 1
    [message] = smtp.wait_for(1, timeout=5)
    assert message.mail_from == "pyscaler@localhost"
    assert message.rcpt_tos == ("ops@example.org", "oncall@example.org")
    assert message.subject == "Scale-out on web"
    assert message.body.strip() == "CPU above 90% on node 3"


def test_it_refuses_mail_when_told_to(smtp: SmtpServer) -> None:
    smtp.fail_with = "451 4.3.0 Try again later"
    with pytest.raises(smtplib.SMTPDataError) as excinfo:
        send_mail("s", "b", "pyscaler@localhost", ["ops@example.org"])
    assert excinfo.value.smtp_code == 451
    assert smtp.messages == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_it_requires_the_configured_credentials(make_smtp_server: Callable[..., SmtpServer]) -> None:
    server = make_smtp_server(credentials=("mailer", "s3cret"))

    def connection(password: str):
        return get_connection("django.core.mail.backends.smtp.EmailBackend", host=server.host,
                              port=server.port, username="mailer", password=password, timeout=5)

    with pytest.raises(smtplib.SMTPAuthenticationError):
        send_mail("s", "b", "pyscaler@localhost", ["ops@example.org"], connection=connection("wrong"))
    send_mail("s", "b", "pyscaler@localhost", ["ops@example.org"], connection=connection("s3cret"))
    [message] = server.wait_for(1, timeout=5)
    assert message.login == "mailer"


def test_it_times_out_waiting_for_mail_that_never_comes(smtp: SmtpServer) -> None:
    with pytest.raises(ServerError, match="received 0 message"):
        smtp.wait_for(1, timeout=0.2)
