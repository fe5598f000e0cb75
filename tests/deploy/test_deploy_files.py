"""deploy/: systemd accepts the units, the env template documents every
setting, the gunicorn config and the template renderer behave."""
from __future__ import annotations

import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devservers.util import REPO_ROOT, require_binary

sys.path.insert(0, str(REPO_ROOT / "deploy"))
import render  # noqa: E402  (deploy/render.py: stdlib-only, not a package)

DEPLOY = REPO_ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())
ENV_EXAMPLE = DEPLOY / "pyscaler.env.example"
SETTINGS = REPO_ROOT / "pyscaler" / "settings.py"
INSTALL_PREFIX = "/opt/pyscaler/venv/bin/"
# Variables the settings read through _secret(): NAME or NAME_FILE.
SECRET_READERS = re.compile(r'_secret\(\s*"([A-Z][A-Z0-9_]*)"')
ENV_READERS = re.compile(r'\benv\.\w+\(\s*"([A-Z][A-Z0-9_]*)"')
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


# --- systemd -------------------------------------------------------------------

def installed_root(tmp_path: Path, units: list[Path], entry_points: set[str] | None = None) -> Path:
    """A file-system root as on a PyScaler host: Debian's system units, ours in
    /etc/systemd/system, the virtualenv's entry points under /opt/pyscaler.

    `systemd-analyze verify` checks that every Exec*= binary exists; --root
    makes it look in this tree instead of the test machine's /opt.
    """
    root = tmp_path / "root"
    (root / "usr" / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "bin").symlink_to("usr/bin")
    (root / "usr" / "bin").mkdir()
    shutil.copy2("/usr/bin/kill", root / "usr" / "bin" / "kill")
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    for unit in units:
        shutil.copy2(unit, root / "etc" / "systemd" / "system" / unit.name)
    venv_bin = root / INSTALL_PREFIX.strip("/")
    venv_bin.mkdir(parents=True)
    for command in commands_in(units) if entry_points is None else entry_points:
        name = command.removeprefix(INSTALL_PREFIX)
        real = REPO_ROOT / ".venv" / "bin" / name
        assert real.exists(), f"{command}: the virtualenv has no {name} (is it in requirements.txt?)"
        shutil.copy2(real, venv_bin / name)
    return root


def commands_in(units: list[Path]) -> set[str]:
    found = set()
    for unit in units:
        for match in re.finditer(r"^Exec\w+=(\S+)", unit.read_text(), re.M):
            if match.group(1).startswith(INSTALL_PREFIX):
                found.add(match.group(1))
    return found


def verify(root: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    analyze = require_binary("systemd-analyze", "systemd")
    return subprocess.run([analyze, "verify", f"--root={root}", "--man=no", "--generators=no", *names],
                          capture_output=True, text=True, timeout=60)


def test_systemd_accepts_every_unit(tmp_path):
    root = installed_root(tmp_path, UNITS)
    # A template is verified as an instance of it (pyscaler-worker-collect@1).
    result = verify(root, [unit.name.replace("@.", "@1.") for unit in UNITS])
    # verify reports problems on stderr, often with exit status 0.
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_the_unit_check_catches_a_broken_unit(tmp_path):
    broken = tmp_path / "pyscaler-web.service"
    broken.write_text((DEPLOY / "systemd" / "pyscaler-web.service").read_text()
                      .replace("Type=notify", "Type=notifyish")
                      .replace("bin/gunicorn", "bin/no-such-gunicorn"))
    root = installed_root(tmp_path, [broken], entry_points=set())
    result = verify(root, [broken.name])
    assert "Failed to parse service type" in result.stderr
    assert "no-such-gunicorn is not executable" in result.stderr


def test_there_is_a_unit_per_role_and_workers_are_split_by_queue():
    names = {unit.name for unit in UNITS}
    assert names == {"pyscaler.target", "pyscaler-web.service", "pyscaler-beat.service",
                     "pyscaler-worker-collect@.service", "pyscaler-worker-control.service",
                     "pyscaler-worker-actions.service"}
    from django.conf import settings
    for queue in (q.name for q in settings.CELERY_TASK_QUEUES):
        if queue == "collect":
            # One process per instance (node affinity is per worker), named by the instance.
            text = (DEPLOY / "systemd" / "pyscaler-worker-collect@.service").read_text()
            assert "--queues=collect " in text and "--hostname=collect%i@%%h " in text
            assert "--concurrency=1 " in text
            continue
        text = (DEPLOY / "systemd" / f"pyscaler-worker-{queue}.service").read_text()
        assert f"--queues={queue} " in text and f"--hostname={queue}@%%h " in text
        # Each queue's concurrency comes from its own variable, with a default.
        variable = f"PYSCALER_{queue.upper()}_CONCURRENCY"
        assert f"--concurrency=${{{variable}}}" in text and f"Environment={variable}=" in text


# --- the environment template -------------------------------------------------------

def example_assignments() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        match = ASSIGNMENT.match(line)
        if match:
            name, value = match.groups()
            assert not line.startswith("#") or name not in values, f"line {number}: {name} twice"
            values.setdefault(name, value)
        else:
            assert line == "" or line.startswith("#"), f"{ENV_EXAMPLE.name} line {number}: {line!r}"
    return values


def test_the_env_template_documents_every_setting():
    source = SETTINGS.read_text()
    documented = example_assignments()
    read = set(ENV_READERS.findall(source)) | set(SECRET_READERS.findall(source))
    assert {"DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL", "MEMCACHED_SERVERS"} <= read
    missing = sorted(read - documented.keys())
    assert not missing, f"add these to deploy/pyscaler.env.example (with a production value): {missing}"
    secret_files = sorted(f"{name}_FILE" for name in SECRET_READERS.findall(source))
    text = ENV_EXAMPLE.read_text()
    assert [name for name in secret_files if f"{name}=" not in text] == []


def test_the_env_template_sets_what_the_units_and_gunicorn_read():
    documented = example_assignments()
    units = "\n".join(unit.read_text() for unit in UNITS)
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", units))
    used |= set(re.findall(r'os\.environ\.get\("([A-Z][A-Z0-9_]*)"', (DEPLOY / "gunicorn.conf.py").read_text()))
    used |= set(re.findall(r'_int\("([A-Z][A-Z0-9_]*)"', (DEPLOY / "gunicorn.conf.py").read_text()))
    assert sorted(used - documented.keys()) == []


def test_the_env_template_is_production_grade():
    values = example_assignments()
    assert values["DEBUG"] == "false"
    assert values["DATABASE_URL"].startswith("postgres://")
    assert values["CELERY_BROKER_URL"].startswith("amqp://")
    assert len(values["MEMCACHED_SERVERS"].split(",")) >= 2
    for name in ("BEHIND_TLS_PROXY", "SECURE_SSL_REDIRECT", "SECURE_COOKIES"):
        assert values[name] == "true", name
    assert int(values["SECURE_HSTS_SECONDS"]) >= 31536000
    assert values["SECRET_KEY"] == "CHANGE_ME"  # never a usable key in the repository


# --- gunicorn.conf.py ------------------------------------------------------------

def load_gunicorn_config(monkeypatch, **env: str) -> dict:
    for name in ("GUNICORN_BIND", "GUNICORN_WORKERS", "GUNICORN_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_gunicorn_workers_follow_the_cpu_count(monkeypatch):
    config = load_gunicorn_config(monkeypatch)
    cpus = len(__import__("os").sched_getaffinity(0))
    assert config["workers"] == min(2 * cpus + 1, 16)
    assert [config["default_workers"](n) for n in (1, 2, 4, 64)] == [3, 5, 9, 16]
    assert config["bind"] == ["127.0.0.1:8000"]
    assert config["control_socket_disable"] is True


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    config = load_gunicorn_config(monkeypatch, GUNICORN_WORKERS="3", GUNICORN_TIMEOUT_S="90",
                                  GUNICORN_BIND="0.0.0.0:8000,unix:/run/pyscaler/web.sock")
    assert (config["workers"], config["timeout"]) == (3, 90)
    assert config["bind"] == ["0.0.0.0:8000", "unix:/run/pyscaler/web.sock"]


@pytest.mark.parametrize("value", ["many", "-2", "1.5"])
def test_a_bad_gunicorn_number_names_the_variable(monkeypatch, value):
    with pytest.raises(SystemExit, match=f"GUNICORN_WORKERS: .*{re.escape(value)}"):
        load_gunicorn_config(monkeypatch, GUNICORN_WORKERS=value)


def test_nginx_waits_a_little_longer_than_gunicorn(monkeypatch):
    timeout = load_gunicorn_config(monkeypatch)["timeout"]
    template = (DEPLOY / "nginx" / "pyscaler.conf.template").read_text()
    read = [int(s) for s in re.findall(r"proxy_read_timeout (\d+)s;", template)]
    assert max(read) > timeout


# --- deploy/render.py ------------------------------------------------------------

def test_render_fills_only_pyscaler_placeholders():
    out = render.render("listen ${PYSCALER_HTTP_LISTEN}; return 301 https://$host$request_uri;",
                        {"PYSCALER_HTTP_LISTEN": "80"})
    assert out == "listen 80; return 301 https://$host$request_uri;"


def test_render_names_a_missing_value():
    with pytest.raises(render.RenderError, match="PYSCALER_TLS_KEY"):
        render.render("${PYSCALER_TLS_CERT} ${PYSCALER_TLS_KEY}", {"PYSCALER_TLS_CERT": "/c.pem"})


@pytest.mark.parametrize("value", ["x; include /etc/passwd", "a\nb", "", "{"])
def test_render_refuses_values_that_would_inject_directives(value):
    with pytest.raises(render.RenderError, match="PYSCALER_SERVER_NAME"):
        render.render("server_name ${PYSCALER_SERVER_NAME};", {"PYSCALER_SERVER_NAME": value})


def test_render_command_line(tmp_path):
    template = tmp_path / "t.conf"
    template.write_text("server ${PYSCALER_UPSTREAM};\n")
    ok = subprocess.run([sys.executable, str(DEPLOY / "render.py"), str(template), "PYSCALER_UPSTREAM=web:8000"],
                        capture_output=True, text=True, timeout=30)
    assert (ok.returncode, ok.stdout) == (0, "server web:8000;\n")
    missing = subprocess.run([sys.executable, str(DEPLOY / "render.py"), str(template)],
                             capture_output=True, text=True, timeout=30,
                             env={"PATH": "/usr/bin:/bin"})
    assert missing.returncode == 1 and "PYSCALER_UPSTREAM" in missing.stderr
