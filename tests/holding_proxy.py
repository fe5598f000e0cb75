"""A loopback HTTP proxy that holds chosen AWS requests, so a test can kill a
worker at an exact point of a step (after the launch, before the terminate)."""
from __future__ import annotations

import http.client
import http.server
import threading
from urllib.parse import urlsplit


class HoldingProxy:
    """A loopback HTTP proxy in front of moto that holds every request whose
    body contains ``hold`` (here: the ELB registration) until released, so a
    test can kill the worker between launching an instance and registering it.
    moto still answers everything; the proxy only delays."""

    def __init__(self, upstream: str, hold: bytes):
        self.upstream = urlsplit(upstream)
        self.hold = hold
        self.held = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.hold in body and not proxy.release.is_set():
                    proxy.held.set()
                    proxy.release.wait(60)
                    self.close_connection = True
                    return  # the caller died meanwhile: answer nothing
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                try:
                    conn.request("POST", self.path, body=body, headers=dict(self.headers))
                    response = conn.getresponse()
                    data = response.read()
                finally:
                    conn.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HoldingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
