"""Replication between two real PyScaler instances on loopback, each a
gunicorn server with its own SQLite database: production pulls staging's
configuration with sync_config through staging's /api/v1/config."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devservers.pyscaler_web import PyScalerWeb
from devservers.util import REPO_ROOT, free_port, stop_process, wait_for_port

# Two migrated instances and several manage.py runs: minutes on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BASE = """\
pyscaler_config: 1
clusters:
  - name: web
    description: the web tier
    min_size: 1
    max_size: 4
    nodes:
      - {name: web-1, address: 127.0.0.11}
    ssh_counters:
      - {name: load1, command: "cut -d' ' -f1 /proc/loadavg", threshold: 1.5, interval_s: 10}
    jvms:
      - {name: tomcat, jmx_port: 9010, username: monitor, password_ref: "env:PYSCALER_SECRET_JMX"}
    jmx_counters:
      - {jvm: tomcat, name: heap_used, mbean: "java.lang:type=Memory", attribute: HeapMemoryUsage,
         composite_key: used, threshold: 512000000}
    actions:
      - {name: notify-ops, kind: email, params: {to: [ops@example.com], subject: "{{ trigger }} fired"}}
    triggers:
      - name: high-load
        timing_minutes: 1
        counters: {ssh: [load1]}
        actions: [notify-ops]
"""
NEW_TOKEN = """\
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
user = User.objects.create_user("syncbot")
user.user_permissions.add(Permission.objects.get(codename="view_config", content_type__app_label="control"))
print(Token.objects.create(user=user).key)
"""
NEW_REMOTE = """\
from apps.configsync.models import RemoteInstance
RemoteInstance.objects.create(name="{name}", base_url="{url}", token_ref="{ref}", timeout_s=5)
"""


@dataclass
class Instances:
    staging: PyScalerWeb
    production: PyScalerWeb
    workdir: Path

    def load(self, instance: PyScalerWeb, text: str) -> str:
        path = self.workdir / f"{instance.name}.yaml"
        path.write_text(text)
        return instance.manage("import_config", str(path), "--prune").stdout

    def config(self, instance: PyScalerWeb) -> dict:
        """The instance's configuration through its own web API."""
        request = urllib.request.Request(f"{instance.url}/api/v1/config",
                                         headers={"Authorization": f"Token {instance.extra_env['OWN_TOKEN']}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def records(self) -> list[tuple]:
        with sqlite3.connect(self.production.db_path) as db:
            return db.execute("SELECT remote_name, ok, dry_run, plan, error, by FROM configsync_syncrecord "
                              "ORDER BY id").fetchall()


def _token(instance: PyScalerWeb) -> str:
    return instance.manage("shell", "-c", NEW_TOKEN).stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instances]:
    workdir = tmp_path_factory.mktemp("instances")
    staging = PyScalerWeb(workdir / "staging", "staging")
    production = PyScalerWeb(workdir / "production", "production")
    template = staging.migrate_or_copy(None)
    production.migrate_or_copy(workdir / "staging" / "db.sqlite3")
    assert template != production.db_path
    staging.extra_env["OWN_TOKEN"] = _token(staging)
    production.extra_env["OWN_TOKEN"] = _token(production)
    production.extra_env.update(PYSCALER_SECRET_STAGING_TOKEN=staging.extra_env["OWN_TOKEN"],
                                PYSCALER_SECRET_WRONG_TOKEN="0123456789abcdef0123456789abcdef01234567")
    relay_port = free_port()
    for name, url, ref in [("staging", staging.url, "env:PYSCALER_SECRET_STAGING_TOKEN"),
                           ("staging-bad-token", staging.url, "env:PYSCALER_SECRET_WRONG_TOKEN"),
                           ("staging-relay", f"http://127.0.0.1:{relay_port}", "env:PYSCALER_SECRET_STAGING_TOKEN"),
                           ("nobody-home", f"http://127.0.0.1:{free_port()}", "env:PYSCALER_SECRET_STAGING_TOKEN")]:
        production.manage("shell", "-c", NEW_REMOTE.format(name=name, url=url, ref=ref))
    production.extra_env["RELAY_PORT"] = str(relay_port)
    with staging.start(), production.start():
        yield Instances(staging, production, workdir)


@pytest.fixture
def both_at_base(instances: Instances) -> Instances:
    instances.load(instances.staging, BASE)
    instances.load(instances.production, BASE)
    return instances


def staging_change() -> str:
    return BASE.replace("timing_minutes: 1", "timing_minutes: 3").replace("threshold: 1.5", "threshold: 2.5")


def _trigger(config: dict) -> dict:
    return config["clusters"][0]["triggers"][0]


def test_a_trigger_changed_on_staging_reaches_production(both_at_base: Instances):
    inst = both_at_base
    inst.load(inst.staging, staging_change())
    out = inst.production.manage("sync_config", "staging").stdout
    assert "update SSH counter web/load1" in out and "    threshold: 1.5 → 2.5" in out
    assert "update trigger web/high-load  (its triggers' breach counts" in out and "    timing_minutes: 1 → 3\n" in out
    assert out.endswith("plan: 0 to create, 2 to update, 0 to delete\n")
    production, staging = inst.config(inst.production), inst.config(inst.staging)
    assert _trigger(production)["timing_minutes"] == 3 and production == staging
    remote, ok, dry_run, plan, error, by = inst.records()[-1]
    assert (remote, ok, dry_run, error) == ("staging", 1, 0, "") and plan == out and by.startswith("command line")
    again = inst.production.manage("sync_config", "staging").stdout
    assert again == "plan: 0 to create, 0 to update, 0 to delete\n"


def test_a_dry_run_shows_the_plan_and_changes_nothing(both_at_base: Instances):
    inst = both_at_base
    inst.load(inst.staging, staging_change())
    before = inst.config(inst.production)
    out = inst.production.manage("sync_config", "staging", "--dry-run").stdout
    assert "timing_minutes: 1 → 3" in out and out.endswith("dry run: nothing changed\n")
    assert inst.config(inst.production) == before
    assert inst.records()[-1][:3] == ("staging", 1, 1)


def test_a_bad_token_is_refused_with_a_clear_message(both_at_base: Instances):
    inst = both_at_base
    inst.load(inst.staging, staging_change())
    before = inst.config(inst.production)
    result = inst.production.manage("sync_config", "staging-bad-token", check=False)
    assert result.returncode == 1
    assert ("sync from staging-bad-token failed: staging-bad-token refused the API token (HTTP 401: Invalid "
            "token.); check env:PYSCALER_SECRET_WRONG_TOKEN and that its user holds control.view_config there"
            ) in result.stderr
    assert inst.config(inst.production) == before
    assert inst.records()[-1][:2] == ("staging-bad-token", 0)


def test_a_remote_that_is_down_changes_nothing(both_at_base: Instances):
    inst = both_at_base
    before = inst.config(inst.production)
    result = inst.production.manage("sync_config", "nobody-home", check=False)
    assert result.returncode == 1 and "cannot reach nobody-home at http://127.0.0.1:" in result.stderr
    assert "Connection refused" in result.stderr
    assert inst.config(inst.production) == before and inst.records()[-1][:2] == ("nobody-home", 0)


def test_a_remote_killed_mid_transfer_changes_nothing(both_at_base: Instances):
    inst = both_at_base
    inst.load(inst.staging, staging_change())
    before = inst.config(inst.production)
    marker = inst.workdir / "relay-halfway"
    marker.unlink(missing_ok=True)
    port = int(inst.production.extra_env["RELAY_PORT"])
    relay = subprocess.Popen([sys.executable, str(Path(__file__).with_name("halfway_relay.py")), str(port),
                              str(inst.staging.port), str(marker)])
    try:
        wait_for_port("127.0.0.1", port, proc=relay, what="relay")
        sync = subprocess.Popen([sys.executable, "manage.py", "sync_config", "staging-relay"], cwd=REPO_ROOT,
                                env=inst.production.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not marker.exists():  # half of the answer is on its way
            assert time.monotonic() < deadline and relay.poll() is None, "the relay never sent half an answer"
            time.sleep(0.05)
        relay.send_signal(signal.SIGKILL)
        out, err = sync.communicate(timeout=60)
    finally:
        stop_process(relay)
    assert sync.returncode == 1, out
    assert "sync from staging-relay failed: the answer of staging-relay broke off" in err
    assert "IncompleteRead" in err
    assert inst.config(inst.production) == before
    assert inst.records()[-1][:2] == ("staging-relay", 0)
