"""A whole PyScaler web server of its own on loopback: its own SQLite
database file and var directory, served by gunicorn, with manage.py run
against the same database. Two of them are a staging and a production
instance for configuration replication tests (sync_config)."""
from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from .process import ServerProcess
from .util import REPO_ROOT, ServerError, descendants, free_port, wait_for_port


def _python() -> str:
    venv = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


class PyScalerWeb(ServerProcess):
    def __init__(self, workdir: Path, name: str, extra_env: dict[str, str] | None = None):
        self.name = name
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = workdir / "db.sqlite3"
        self.port = free_port()
        self.extra_env = dict(extra_env or {})
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update(
            DJANGO_SETTINGS_MODULE="pyscaler.settings", DEBUG="false", DATABASE_URL=f"sqlite:///{self.db_path}",
            PYSCALER_VAR_DIR=str(self.workdir / "var"), STATIC_ROOT=str(self.workdir / "static"),
            SECRET_KEY=f"{self.name}-instance-secret-key-" + "k" * 40, ALLOWED_HOSTS="127.0.0.1,localhost",
            **self.extra_env,
        )
        return env

    def manage(self, *args: str, check: bool = True, timeout: float = 120,
               stdin: str | None = None) -> subprocess.CompletedProcess:
        """``manage.py args`` against this instance's database."""
        result = subprocess.run([_python(), "manage.py", *args], cwd=REPO_ROOT, env=self.env(), input=stdin,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise ServerError(f"{self.name}: manage.py {' '.join(args)} failed ({result.returncode}):\n"
                              f"{result.stdout}\n{result.stderr}")
        return result

    def migrate_or_copy(self, template: Path | None) -> Path:
        """Migrate a new database, or copy an already migrated one (faster)."""
        if template is not None and template.exists():
            shutil.copyfile(template, self.db_path)
        else:
            self.manage("migrate", "--noinput", "-v", "0", timeout=300)
        return self.db_path

    def start(self, timeout: float = 60.0) -> Self:
        self._log = open(self.workdir / "gunicorn.log", "wb")
        self._proc = subprocess.Popen(
            [_python(), "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
             "--timeout", "30", "--graceful-timeout", "5", "pyscaler.wsgi"],
            cwd=REPO_ROOT, env=self.env(), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port("127.0.0.1", self.port, timeout=timeout, proc=self._proc, what=f"{self.name} gunicorn")
        self._wait_for_django(timeout)
        return self

    def _wait_for_django(self, timeout: float) -> None:
        """gunicorn listens before its worker has imported Django."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerError(f"{self.name} gunicorn exited with status {self._proc.returncode}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                return
            except OSError:
                time.sleep(0.2)
            finally:
                conn.close()
        raise ServerError(f"{self.name}: Django did not answer within {timeout:.0f} s")

    def _signal_targets(self) -> list[int]:
        """The master and its worker: pausing only the master would leave the
        worker answering."""
        return [self._proc.pid, *descendants(self._proc.pid)]

    def _release(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
