"""Fetching a remote instance's configuration over HTTP(S), with bounded
waits and a bounded size. Any failure is a ``RemoteError`` in an operator's
words; nothing here touches the local database."""
from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from pyscaler.secretrefs import SecretUnavailable, resolve_secret_ref

#: Largest answer accepted (a configuration of thousands of objects is far less).
MAX_BYTES = 32 * 1024 * 1024
CHUNK = 64 * 1024


class RemoteError(Exception):
    """The remote's configuration could not be fetched."""


def config_url(base_url: str, clusters: list[str]) -> str:
    query = urllib.parse.urlencode([("format", "json"), *(("cluster", c) for c in clusters)])
    return f"{base_url.rstrip('/')}/api/v1/config?{query}"


def fetch(remote) -> bytes:
    """The body of the remote's ``GET /api/v1/config`` for its clusters."""
    try:
        token = resolve_secret_ref(remote.token_ref)
    except SecretUnavailable as exc:
        raise RemoteError(f"the API token of {remote.name} is unavailable: {exc}") from None
    url = config_url(remote.base_url, remote.cluster_list)
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}",
                                                   "Accept": "application/json"})
    try:
        tls = ssl.create_default_context(cafile=remote.ca_file or None)
        with urllib.request.urlopen(request, timeout=remote.timeout_s, context=tls) as response:
            body = _read(response, remote.timeout_s)
            missing = getattr(response, "length", None)
            if missing:  # read(amt) returns what came before the connection died, silently
                raise http.client.IncompleteRead(body, missing)
            return body
    except urllib.error.HTTPError as exc:
        raise RemoteError(_refusal(remote, exc)) from None
    except urllib.error.URLError as exc:
        raise RemoteError(f"cannot reach {remote.name} at {url}: {exc.reason}") from None
    except TimeoutError:
        raise RemoteError(f"{remote.name} did not answer within {remote.timeout_s} s ({url})") from None
    except (http.client.HTTPException, ssl.SSLError, OSError) as exc:
        raise RemoteError(f"the answer of {remote.name} broke off ({url}): {_why(exc)}") from None


def _why(exc: Exception) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"IncompleteRead: {len(exc.partial)} bytes came, {exc.expected} more were announced"
    return f"{type(exc).__name__}: {exc}"


def _read(response, timeout_s: int) -> bytes:
    """The whole body, within a total deadline (slow drip: a remote sending a
    byte per timeout would otherwise hold us for ever)."""
    deadline = time.monotonic() + 4 * timeout_s
    parts, size = [], 0
    while True:
        chunk = response.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_BYTES:
            raise RemoteError(f"the answer is larger than {MAX_BYTES} bytes")
        if time.monotonic() > deadline:
            raise RemoteError(f"the answer took longer than {4 * timeout_s} s")
        parts.append(chunk)
    return b"".join(parts)


def _refusal(remote, exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read(4096) or b"{}").get("detail", "")
    except (ValueError, AttributeError, OSError):
        detail = ""
    detail = f": {detail}" if detail else ""
    if exc.code in (401, 403):
        return (f"{remote.name} refused the API token (HTTP {exc.code}{detail}); check {remote.token_ref} and "
                f"that its user holds control.view_config there")
    return f"{remote.name} answered HTTP {exc.code}{detail} ({exc.url})"
