"""A real JVM with JMX remote on loopback: the JMX target of tests and the demo.

Runs devservers/java/DemoService.java, which registers ``pyscaler.test:type=Demo``
and takes commands on stdin (``set Value 12.5``), so a test changes what JMX
reports without itself speaking JMX. The JMX agent is Java's own
(``-Dcom.sun.management.jmxremote.*``), as on a production Tomcat.
"""
from __future__ import annotations

import hashlib
import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from devservers.process import ServerProcess
from devservers.util import ServerError, free_port, require_binary, wait_for_port

DEMO_SOURCE = Path(__file__).resolve().parent / "java" / "DemoService.java"
DEMO_MBEAN = "pyscaler.test:type=Demo"
# A small, quick-starting target: no JIT tiers beyond C1, one GC thread.
_TARGET_JVM_OPTIONS = ["-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"]


def _compiled_classes(java: str) -> list[str]:
    """Class path of a compiled DemoService, or the source file to launch.

    Single-file source launch compiles in memory on every start (~1.7 s here);
    a class compiled once per source version starts in ~0.6 s. Without javac
    (a JRE only) the source launch still works.
    """
    javac = shutil.which("javac")
    if javac is None:
        return [str(DEMO_SOURCE)]
    digest = hashlib.sha256(DEMO_SOURCE.read_bytes()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"pyscaler-demoservice-{digest}"
    if not (cache / "DemoService.class").exists():
        building = Path(tempfile.mkdtemp(prefix="pyscaler-demoservice-build-"))
        result = subprocess.run([javac, "-d", str(building), str(DEMO_SOURCE)],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise ServerError(f"javac failed on {DEMO_SOURCE}:\n{result.stderr[-2000:]}")
        try:
            os.rename(building, cache)  # atomic: concurrent builders cannot half-write the cache
        except OSError:
            shutil.rmtree(building, ignore_errors=True)  # another process won the race
    return ["-cp", str(cache), "DemoService"]


class JmxJvm(ServerProcess):
    """One DemoService JVM whose JMX agent listens on ``127.0.0.1:port``."""

    host = "127.0.0.1"
    stop_timeout = 10.0

    def __init__(self, port: int | None = None, credentials: tuple[str, str] | None = None,
                 workdir: Path | None = None, tls: bool = False) -> None:
        self.port = port or free_port(self.host)
        self.credentials = credentials
        self.tls = tls
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="pyscaler-jvm-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.workdir / f"jvm-{self.port}.stderr"
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()

    @property
    def username(self) -> str | None:
        return self.credentials[0] if self.credentials else None

    @property
    def password(self) -> str | None:
        return self.credentials[1] if self.credentials else None

    def _jmx_options(self) -> list[str]:
        options = [
            f"-Dcom.sun.management.jmxremote.port={self.port}",
            f"-Dcom.sun.management.jmxremote.rmi.port={self.port}",
            f"-Dcom.sun.management.jmxremote.host={self.host}",
            f"-Djava.rmi.server.hostname={self.host}",
            "-Dcom.sun.management.jmxremote.local.only=false",
            *self._tls_options(),
        ]
        if self.credentials is None:
            return options + ["-Dcom.sun.management.jmxremote.authenticate=false"]
        user, password = self.credentials
        password_file = self.workdir / f"jmxremote-{self.port}.password"
        access_file = self.workdir / f"jmxremote-{self.port}.access"
        password_file.write_text(f"{user} {password}\n")
        password_file.chmod(0o600)  # the JMX agent refuses a password file others can read
        access_file.write_text(f"{user} readonly\n")
        access_file.chmod(0o600)
        return options + [
            "-Dcom.sun.management.jmxremote.authenticate=true",
            f"-Dcom.sun.management.jmxremote.password.file={password_file}",
            f"-Dcom.sun.management.jmxremote.access.file={access_file}",
        ]

    @property
    def certificate_path(self) -> Path:
        return self.workdir / f"jmx-{self.port}-cert.pem"

    def _tls_options(self) -> list[str]:
        """TLS on the connector and the registry, as the jvm_node role sets it
        up: a key pair made with keytool, its password in the SSL config file."""
        if not self.tls:
            return ["-Dcom.sun.management.jmxremote.ssl=false"]
        keytool = require_binary("keytool", "openjdk-17-jdk-headless")
        keystore = self.workdir / f"jmx-{self.port}.p12"
        ssl_config = self.workdir / f"jmx-{self.port}-ssl.properties"
        password = secrets.token_hex(16)
        if not keystore.exists():
            env = {**os.environ, "PW": password}
            for command in (
                [keytool, "-genkeypair", "-keystore", str(keystore), "-storetype", "PKCS12", "-storepass:env",
                 "PW", "-alias", "jmx", "-keyalg", "EC", "-groupname", "secp256r1", "-validity", "30",
                 "-dname", f"CN={self.host}"],
                [keytool, "-exportcert", "-rfc", "-keystore", str(keystore), "-storepass:env", "PW",
                 "-alias", "jmx", "-file", str(self.certificate_path)],
            ):
                result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
                if result.returncode != 0:
                    raise ServerError(f"keytool failed: {result.stdout}{result.stderr}")
            ssl_config.write_text(f"javax.net.ssl.keyStore={keystore}\n"
                                  f"javax.net.ssl.keyStorePassword={password}\n")
            ssl_config.chmod(0o600)
        return [
            "-Dcom.sun.management.jmxremote.ssl=true",
            "-Dcom.sun.management.jmxremote.registry.ssl=true",
            f"-Dcom.sun.management.jmxremote.ssl.config.file={ssl_config}",
        ]

    def start(self, timeout: float = 30.0) -> JmxJvm:
        if self.running:
            return self
        java = require_binary("java", "openjdk-17-jdk-headless")
        command = [java, *_TARGET_JVM_OPTIONS, *self._jmx_options(), *_compiled_classes(java)]
        self._lines = queue.Queue()
        with open(self.stderr_path, "wb") as stderr:
            self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=stderr, text=True, bufsize=1, start_new_session=True)
        threading.Thread(target=self._read_stdout, args=(self._proc, self._lines), daemon=True,
                         name=f"jvm-{self.port}-stdout").start()
        try:
            line = self._next_line(timeout)
            if line != "READY":
                raise ServerError(f"DemoService said {line!r} instead of READY")
            wait_for_port(self.host, self.port, timeout=timeout, proc=self._proc, what="JVM")
        except ServerError as exc:
            self.kill()
            raise ServerError(f"JVM on port {self.port} failed to start: {exc}\n"
                              f"command: {' '.join(command)}\nstderr tail:\n{self.stderr_tail()}") from None
        return self

    @staticmethod
    def _read_stdout(proc: subprocess.Popen, lines: queue.Queue) -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _next_line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise ServerError(f"no answer from the JVM within {timeout:.0f} s") from None
        if line is None:
            code = self._proc.wait(timeout=5) if self._proc is not None else None
            raise ServerError(f"the JVM exited (status {code})")
        return line

    def command(self, line: str, timeout: float = 10.0) -> str:
        """Send one stdin command; return the text after OK or raise on ERR."""
        with self._lock:
            if not self.running:
                raise ServerError(f"the JVM on port {self.port} is not running")
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
            reply = self._next_line(timeout)
        if not reply.startswith("OK"):
            raise ServerError(f"JVM refused {line!r}: {reply}")
        return reply[2:].strip()

    def set(self, attribute: str, value: object) -> None:
        """Change a Demo attribute (Value, Requests, Healthy, PoolUsed, PoolMax, Label, SlowMillis)."""
        if isinstance(value, bool):
            value = "true" if value else "false"
        self.command(f"set {attribute} {value}")

    def get(self, attribute: str) -> str:
        return self.command(f"get {attribute}")

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


    def _request_stop(self) -> None:
        self._proc.stdin.write("quit\n")
        self._proc.stdin.flush()

    def _release(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"JmxJvm({self.host}:{self.port}, running={self.running})"
