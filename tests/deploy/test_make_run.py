"""`make run` (scripts/run.py) brings up web, worker and beat with the demo;
the admin login works at the printed URL; Ctrl-C stops everything it started."""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from devservers.celery_worker import BrokerVhost
from devservers.util import REPO_ROOT, free_port, port_open

pytestmark = pytest.mark.slow


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if text in cmdline or text.encode() in environ:
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


@pytest.fixture
def own_vhost():
    """A vhost of its own: this stack's beat and worker never meet the tasks
    of the test session's workers."""
    with BrokerVhost("amqp://guest:guest@127.0.0.1:5672//") as vhost:
        yield vhost


def _publish_a_stale_step(env: dict, tmp_path: Path) -> None:
    """A step message an earlier run (another database) left in the queue."""
    publish = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from apps.control.tasks import run_step_task; run_step_task.apply_async(args=(987654,))"],
        cwd=REPO_ROOT, env={**env, "PYSCALER_VAR_DIR": str(tmp_path / "earlier-run"),
                            "SECRET_KEY": "an-earlier-run-" + "k" * 50},
        capture_output=True, text=True, timeout=60)
    assert publish.returncode == 0, publish.stdout + publish.stderr


def _shell(env: dict, code: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", code], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def _running_demo_nodes(env: dict) -> int:
    return int(_shell(env, "from apps.control.models import Node; "
                           "print(Node.objects.filter(cluster__name='demo', state='running').count())"))


def _the_demo_grows_under_load_and_shrinks_after(env: dict) -> None:
    """The demo policy scales the cluster on the EC2 emulator. The load is
    played by the counter's command (a constant), so the test does not burn
    the machine's CPU as `make load` does; everything else is the demo's."""
    set_load = ("from apps.monitoring.ssh.models import SSHCounter; "
                "SSHCounter.objects.filter(cluster__name='demo', name='load1').update(command='echo {}')")
    _shell(env, set_load.format(3.0))  # average 3 for a target of 1: grow to the maximum, 3
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and _running_demo_nodes(env) < 3:
        time.sleep(2)
    assert _running_demo_nodes(env) == 3, _shell(env, _DECISIONS)
    _shell(env, set_load.format(0.1))  # the load stops: back to the minimum, 1
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and _running_demo_nodes(env) > 1:
        time.sleep(3)
    assert _running_demo_nodes(env) == 1, _shell(env, _DECISIONS)
    directions = _shell(env, "from apps.control.models import Execution; print(' '.join(e.data['direction'] "
                             "for e in Execution.objects.filter(policy__name='demo-size', status='succeeded')"
                             ".order_by('pk')))").split()
    # (This machine's own load may have scaled the demo before the test set it.)
    assert "out" in directions and directions[-1] == "in", _shell(env, _DECISIONS)


_DECISIONS = ("from apps.control.models import PolicyDecision; "
              "print('\\n'.join(d.summary for d in PolicyDecision.objects.order_by('created')))")


def test_make_run_serves_the_admin_and_ctrl_c_stops_everything(tmp_path, own_vhost):
    var = tmp_path / "var"
    ports = {name: free_port() for name in ("RUN_PORT", "DEMO_SSH_PORT", "DEMO_JMX_PORT", "DEMO_MOTO_PORT",
                                            "MEMCACHED")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))},
        "PYSCALER_VAR_DIR": str(var),
        "STATIC_ROOT": str(tmp_path / "static"),
        "RUN_PORT": str(ports["RUN_PORT"]),
        "DEMO_SSH_PORT": str(ports["DEMO_SSH_PORT"]),
        "DEMO_JMX_PORT": str(ports["DEMO_JMX_PORT"]),
        "DEMO_MOTO_PORT": str(ports["DEMO_MOTO_PORT"]),
        "MEMCACHED_SERVERS": f"127.0.0.1:{ports['MEMCACHED']}",
        "PYSCALER_ADMIN_PASSWORD": "demo-admin-pw-1234",
        "CELERY_BROKER_URL": own_vhost.url,
    }
    env.pop("SECRET_KEY", None)  # make run generates one under var/
    env.pop("COLLECT_SIGNING_KEY", None)  # and one collect signing key per run
    _publish_a_stale_step(env, tmp_path)
    proc = subprocess.Popen([sys.executable, "scripts/run.py"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    url = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"PyScaler is up: (http://\S+/)", line)
            if match:
                url = match.group(1)
                break
        assert url, "run.py never printed its URL:\n" + "".join(lines[-40:])
        assert any("admin user created: admin" in line for line in lines)

        # Log in to the admin through its own login form, CSRF token included.
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(url + "admin/login/", timeout=10).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": "admin",
                                       "password": "demo-admin-pw-1234", "next": "/admin/"}).encode()
        request = urllib.request.Request(url + "admin/login/", data=body, headers={"Referer": url})
        response = opener.open(request, timeout=10)
        admin_page = response.read().decode()
        assert response.geturl().endswith("/admin/"), response.geturl()
        assert "Site administration" in admin_page or "PyScaler administration" in admin_page
        clusters = opener.open(url + "admin/control/cluster/", timeout=10).read().decode()
        assert "demo" in clusters

        for name, port in ports.items():
            assert port_open("127.0.0.1", port), f"{name} port {port} not open while running"

        # Beat and the worker collect the demo node's SSH and JMX counters.
        log_dir = var / "samples"
        deadline = time.monotonic() + 60
        kinds: set = set()
        while time.monotonic() < deadline and kinds != {"ssh", "jmx"}:
            kinds = {json.loads(line)["kind"] for f in log_dir.glob("samples-*.jsonl")
                     for line in f.read_text().splitlines() if '"value"' in line}
            time.sleep(0.5)
        assert kinds == {"ssh", "jmx"}, f"sample log after 60 s: {kinds}"

        # The demo trigger's chain, fired by hand, e-mails through the file backend.
        fired = subprocess.run(
            [sys.executable, "manage.py", "fire_action", "demo-high-load", "--cluster", "demo", "--wait"],
            cwd=REPO_ROOT, env={**env, "EMAIL_URL": "filemail://", "EMAIL_FILE_PATH": str(var / "mail")},
            capture_output=True, text=True, timeout=120)
        assert fired.returncode == 0, fired.stdout + fired.stderr
        # (The demo policy may have e-mailed too, if this machine's load is above its target.)
        mails = [m.read_text() for m in (var / "mail").glob("*")]
        assert any("demo-high-load fired on demo" in text for text in mails), mails

        _the_demo_grows_under_load_and_shrinks_after(env)
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        lines.append(rest)
    output = "".join(lines)
    assert proc.returncode == 0, output[-3000:]
    # The stale message was purged on start, not run against this run's database.
    assert "message dropped" not in output, [line for line in output.splitlines() if "dropped" in line]
    # Every-second ticks are DEBUG: no INFO line about the dispatcher's or the evaluator's tasks.
    routine = [line for line in output.splitlines() if " INFO " in line
               and re.search(r"(dispatch_collection_task|evaluate_task|collect_task)\b", line)]
    assert routine == [], routine[:5]
    assert "all processes stopped" in output
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(port_open("127.0.0.1", p) for p in ports.values()):
        time.sleep(0.1)
    assert not [n for n, p in ports.items() if port_open("127.0.0.1", p)], "ports still open after Ctrl-C"
    assert _processes_mentioning(str(var)) == [], "processes left behind"
