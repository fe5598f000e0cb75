"""One webhook delivery over HTTP: a bounded POST, its answer sorted into
delivered, worth another try, or not, and the signature receivers check.

requests (pinned in requirements.txt) rather than urllib: it gives separate
connect and read timeouts, never follows a redirect unless asked, and reads
a response body in chunks, so only a bounded excerpt of a large answer is
ever held. The session ignores the worker's environment (``trust_env``):
HTTP_PROXY and ~/.netrc are not read, so no credential of the worker's is
sent to a URL an admin typed; WEBHOOK_PROXY_URL is the proxy, when one is
needed, and WEBHOOK_CA_BUNDLE the certificates trusted for https (else
certifi's).

Which failures are worth another try (the chain runner retries them,
apps/control/retries.py): no connection, no answer in time, HTTP 5xx, 429
(throttled), 408 and 425. Any other 4xx says the request itself is wrong
(bad URL, refused signature) and trying again changes nothing; a 3xx is not
followed (the receiver must be given its final URL) and fails the same way,
as does a certificate that does not verify.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

import requests
from django.conf import settings

SIGNATURE_HEADER = "X-PyScaler-Signature"
TIMESTAMP_HEADER = "X-PyScaler-Timestamp"
DELIVERY_HEADER = "X-PyScaler-Delivery"
USER_AGENT = "PyScaler-Webhook/1"

#: Characters of the receiver's answer kept in the step's output and error.
EXCERPT_CHARS = 500
#: Bytes of the answer read at most (the excerpt is cut from these).
_READ_BYTES = 16 * 1024
#: 4xx statuses that mean "later", not "never".
_RETRYABLE_4XX = frozenset({408, 425, 429})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over "<timestamp>.<body>"
    with the shared secret, as ``sha256=<hex>``. The timestamp is signed too,
    so a receiver can refuse an old request replayed."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class DeliveryFailed(Exception):
    """No answer at all (refused, reset, timed out, bad TLS)."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    #: The start of the body, whitespace collapsed, at most EXCERPT_CHARS.
    excerpt: str
    elapsed_s: float
    location: str = ""

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status in _RETRYABLE_4XX

    def describe(self) -> str:
        words = f"HTTP {self.status} {self.reason}".rstrip() + f" in {self.elapsed_s:.2f} s"
        if 300 <= self.status < 400:
            words += f" (redirect to {self.location or '?'} not followed: give the final URL)"
        return words + (f"; body: {self.excerpt}" if self.excerpt else "; empty body")


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST ``body`` to ``url``; ``timeout`` bounds connecting and each wait
    for the server, and reading the answer stops at the same deadline."""
    started = time.monotonic()
    session = requests.Session()
    session.trust_env = False
    proxy = settings.WEBHOOK_PROXY_URL
    try:
        with session.post(url, data=body, headers={"User-Agent": USER_AGENT, **headers},
                          timeout=(timeout, timeout), allow_redirects=False, stream=True,
                          verify=settings.WEBHOOK_CA_BUNDLE or True,
                          proxies={"http": proxy, "https": proxy} if proxy else None) as response:
            excerpt = _excerpt(response, started + timeout)
            return Answer(status=response.status_code, reason=response.reason or "", excerpt=excerpt,
                          elapsed_s=time.monotonic() - started,
                          location=response.headers.get("Location", ""))
    except requests.Timeout:
        raise DeliveryFailed(f"no answer within {timeout:g} s (timed out)", retryable=True) from None
    except requests.exceptions.SSLError as exc:  # a ConnectionError too, but not a passing one
        raise DeliveryFailed(f"TLS failed: {_why(exc)}", retryable=False) from None
    except requests.ConnectionError as exc:
        raise DeliveryFailed(f"cannot connect: {_why(exc)}", retryable=True) from None
    except requests.RequestException as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {_why(exc)}", retryable=False) from None
    finally:
        session.close()


def _excerpt(response: requests.Response, deadline: float) -> str:
    data = b""
    try:
        for chunk in response.iter_content(chunk_size=4096):
            data += chunk
            if len(data) >= _READ_BYTES or time.monotonic() > deadline:
                break
    except requests.RequestException:
        pass  # the status is what matters; keep what arrived
    text = re.sub(r"\s+", " ", data[:_READ_BYTES].decode("utf-8", "replace")).strip()
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS - 1] + "…"


def _why(exc: Exception) -> str:
    # requests nests urllib3's reason several levels deep; the innermost
    # words ("Connection refused") are the useful ones.
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] [^'\")]+", text)
    return (found[-1] if found else text)[:EXCERPT_CHARS]
