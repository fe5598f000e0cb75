#!/usr/bin/env python3
"""Docker HEALTHCHECK of the web container: GET /healthz from gunicorn.

Healthy only when /healthz answers 200, i.e. when this container can reach
the database, the broker and every memcached server. The request carries a
Host header from ALLOWED_HOSTS (Django refuses others) and goes to the
address gunicorn binds (GUNICORN_BIND). Standard library only; no curl in
the slim image.
"""
from __future__ import annotations

import http.client
import os
import sys

TIMEOUT_S = 8.0


def target() -> tuple[str, int]:
    bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")[0].strip()
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return host.strip("[]"), int(port)


def host_header() -> str:
    for entry in os.environ.get("ALLOWED_HOSTS", "localhost").split(","):
        entry = entry.strip()
        if entry and entry != "*":
            return entry.lstrip(".")
    return "localhost"


def main() -> int:
    host, port = target()
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
    try:
        conn.request("GET", "/healthz", headers={"Host": host_header()})
        response = conn.getresponse()
        body = response.read(2000).decode(errors="replace")
    except OSError as exc:
        print(f"healthz: {host}:{port} unreachable: {exc}")
        return 1
    finally:
        conn.close()
    print(f"healthz: {response.status} {body}")
    return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
