"""moto's real HTTP server on a loopback port: the EC2 and ELB of tests and the demo.

boto3 must go through its whole stack (endpoint resolution, signing, HTTP,
XML parsing, retries) exactly as against AWS, so tests talk HTTP to moto's
server rather than patching boto3 in-process. It runs as a subprocess: its
state and its Flask threads stay out of the test process, and a Celery worker
subprocess sees the same "AWS" as the test that inspects it.

moto invents private and public IP addresses for instances; nothing may ever
connect to them (see the network rule in the README).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from devservers.util import ServerError, free_port, wait_for_port

# An AMI from moto's bundled default set (moto/ec2/resources/amis.json.gz),
# present in every region after each reset.
DEFAULT_AMI_ID = "ami-12c6146b"


def _moto_command() -> list[str]:
    """The ``moto_server`` entry point of the interpreter running us (the venv's)."""
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from moto.server import main; main()"]


class MotoServer:
    """One moto server on ``host:port``; ``reset()`` empties every backend."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1",
                 log_path: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / (
            f"pyscaler-moto-{self.port}.log"
        )
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def endpoint_url(self) -> str:
        """What AWS_ENDPOINT_URL (and boto3's ``endpoint_url=``) take."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        """Environment for a process that must reach this server and nothing
        else: the endpoint, dummy credentials, no instance-metadata lookup."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self, timeout: float = 30.0) -> MotoServer:
        if self.running:
            return self
        self._log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [*_moto_command(), "-H", self.host, "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(self.host, self.port, timeout=timeout, proc=self._proc, what="moto_server")
            self._request("GET", "/moto-api/", timeout=timeout)
        except (ServerError, OSError) as exc:
            self.stop()
            raise ServerError(f"moto_server did not start: {exc}; log tail:\n{self.log_tail()}") from None
        return self

    def reset(self) -> None:
        """Forget every instance, target group, ... (moto's reset API)."""
        status = self._request("POST", "/moto-api/reset")
        if status != 200:
            raise ServerError(f"moto reset answered HTTP {status}")

    def _request(self, method: str, path: str, timeout: float = 10.0) -> int:
        data = b"" if method == "POST" else None
        request = urllib.request.Request(self.endpoint_url + path, method=method, data=data)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=timeout)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MotoServer({self.endpoint_url}, running={self.running})"

