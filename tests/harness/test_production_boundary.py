"""The development harness stays out of production: no module of pyscaler/ or
apps/ imports devservers or tests, and a production worker carries none of
the probe tasks that harness workers load to look inside themselves."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from devservers.celery_worker import PROBE_TASK_PREFIX, CeleryWorker
from devservers.util import REPO_ROOT

PRODUCTION_PACKAGES = ("pyscaler", "apps")
DEVELOPMENT_PACKAGES = ("devservers", "tests", "bench")


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_no_production_module_imports_the_harness_or_the_tests():
    offenders = []
    for package in PRODUCTION_PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            for module in imported_modules(path):
                if module.split(".")[0] in DEVELOPMENT_PACKAGES:
                    offenders.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_the_production_app_registers_no_probe_task(tmp_path):
    """What `celery -A pyscaler worker` loads: the app with production
    settings, then every module the worker imports at start-up (settings'
    imports and the apps' autodiscovered tasks)."""
    script = (
        "import json, sys, django\n"
        "django.setup()\n"
        "from pyscaler.celery import app\n"
        "app.loader.import_default_modules()\n"
        "print(json.dumps({'tasks': sorted(app.tasks), "
        "'harness': sorted(m for m in sys.modules if m.split('.')[0] in ('devservers', 'tests'))}))\n"
    )
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "pyscaler.settings",
           "SECRET_KEY": "production-boundary-test-" + "k" * 40, "PYSCALER_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "pyscaler.celery.ping" in loaded["tasks"]
    assert any(name.startswith("apps.control.tasks.") for name in loaded["tasks"])  # autodiscovery ran
    assert [name for name in loaded["tasks"] if name.startswith(PROBE_TASK_PREFIX)] == []
    assert loaded["harness"] == []


def test_a_worker_started_as_production_does_lists_no_probe_task(
        make_celery_worker: Callable[..., CeleryWorker]) -> None:
    plain = make_celery_worker(name="plain", concurrency=1, isolated=True, probes=False)
    harness = make_celery_worker(name="probing", concurrency=1, isolated=True)
    assert "--include" not in plain.command()
    plain_tasks, harness_tasks = plain.registered_tasks(), harness.registered_tasks()
    assert "pyscaler.celery.ping" in plain_tasks
    assert [name for name in plain_tasks if name.startswith(PROBE_TASK_PREFIX)] == []
    assert {name for name in harness_tasks if name.startswith(PROBE_TASK_PREFIX)} == {
        PROBE_TASK_PREFIX + "count_rows", PROBE_TASK_PREFIX + "setting", PROBE_TASK_PREFIX + "block_until"}
