"""The systemd units' own command lines start real processes: each ExecStart=
of deploy/systemd, expanded as systemd expands it (its Environment= defaults,
overridden by what an env file would set; %% -> %, a template's %i -> 1)
and pointed at this checkout instead of /opt/pyscaler, runs against the real
RabbitMQ until it is ready, then stops cleanly on SIGTERM (KillMode=mixed)
within the unit's TimeoutStopSec."""
from __future__ import annotations

import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from celery import Celery

from devservers.celery_worker import BrokerVhost
from devservers.util import REPO_ROOT, free_port

pytestmark = pytest.mark.slow

UNITS = REPO_ROOT / "deploy" / "systemd"
READY_TIMEOUT_S = 90


def unit_setting(text: str, key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", text, re.M)


def command_of(unit: Path, env_file: dict[str, str], var_dir: Path) -> tuple[list[str], dict[str, str]]:
    """ExecStart= as systemd would run it, with the production paths mapped here."""
    text = unit.read_text()
    env: dict[str, str] = {}
    for line in unit_setting(text, "Environment"):
        env.update(item.split("=", 1) for item in shlex.split(line))
    env.update(env_file)  # EnvironmentFile= is read after Environment=
    (exec_start,) = unit_setting(text, "ExecStart")
    # A template unit runs here as its instance 1 (pyscaler-worker-collect@1).
    line = exec_start.replace("%%", "\0").replace("%i", "1").replace("\0", "%")
    # ${NAME} is one word in systemd; all values here are single words.
    line = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: env[m.group(1)], line)
    line = (line.replace("/opt/pyscaler/venv/bin/", f"{REPO_ROOT}/.venv/bin/")
                .replace("/opt/pyscaler/app", str(REPO_ROOT))
                .replace("/var/lib/pyscaler", str(var_dir)))
    env["PYSCALER_VAR_DIR"] = str(var_dir)
    return shlex.split(line), env


def stop_timeout(unit: Path) -> float:
    (value,) = unit_setting(unit.read_text(), "TimeoutStopSec")
    return float(value)


def wait(predicate, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not ready within {READY_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def test_every_unit_command_starts_and_stops_cleanly(tmp_path, isolated_broker_vhost: BrokerVhost,
                                                    memcached_servers: list[str]):
    web_port = free_port()
    env_file = {
        # What /etc/pyscaler/pyscaler.env would hold, pointed at loopback.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": isolated_broker_vhost.url,
        "MEMCACHED_SERVERS": ",".join(memcached_servers),
        "SECRET_KEY": "units-test-" + "u" * 50,
        "COLLECT_SIGNING_KEY": "units-test-collect-" + "c" * 40,
        "ALLOWED_HOSTS": "localhost",
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "GUNICORN_WORKERS": "1",
        "PYSCALER_CONTROL_CONCURRENCY": "1",
        "PYSCALER_ACTIONS_CONCURRENCY": "1",
    }
    host = socket.gethostname()
    control = Celery("units-test", broker=isolated_broker_vhost.url, set_as_current=False)
    started: dict[str, tuple[subprocess.Popen, Path]] = {}
    try:
        for unit in sorted(UNITS.glob("*.service")):
            var_dir = tmp_path / unit.stem
            var_dir.mkdir()
            argv, env = command_of(unit, env_file, var_dir)
            log = tmp_path / f"{unit.stem}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(argv, cwd=REPO_ROOT, env={**os.environ, **env}, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            started[unit.name] = (proc, log)

        for queue, unit_name in (("collect1", "pyscaler-worker-collect@.service"),
                                 ("control", "pyscaler-worker-control.service"),
                                 ("actions", "pyscaler-worker-actions.service")):
            proc, log = started[unit_name]
            name = f"{queue}@{host}"  # --hostname=<queue>@%h, collect<instance>@%h
            wait(lambda: any(name in reply for reply in control.control.ping(destination=[name], timeout=0.5)),
                 f"worker {name}", proc, log)

        proc, log = started["pyscaler-beat.service"]
        wait(lambda: "beat: Starting" in log.read_text(), "beat", proc, log)

        proc, log = started["pyscaler-web.service"]

        def web_answers() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", web_port, timeout=5)
            try:
                conn.request("GET", "/admin/login/", headers={"Host": "localhost"})
                return conn.getresponse().status == 200
            except OSError:
                return False
            finally:
                conn.close()
        wait(web_answers, "gunicorn", proc, log)

        # KillMode=mixed: SIGTERM to the main process only; it must wind down
        # its children and exit 0 before systemd's TimeoutStopSec.
        for unit_name, (proc, _) in started.items():
            proc.send_signal(signal.SIGTERM)
        for unit_name, (proc, log) in started.items():
            limit = stop_timeout(UNITS / unit_name)
            assert proc.wait(timeout=limit) == 0, f"{unit_name}:\n{log.read_text()[-3000:]}"
    finally:
        control.close()
        for proc, _ in started.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
