"""`manage.py check --deploy` passes with the production env template
(deploy/pyscaler.env.example), its CHANGE_ME placeholders filled with valid
values; and it does fail when a production switch is turned off."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from devservers.util import REPO_ROOT

ENV_EXAMPLE = REPO_ROOT / "deploy" / "pyscaler.env.example"
PLACEHOLDER = "CHANGE_ME"
# Test values for every variable holding a placeholder. A new placeholder in the
# template must be added here: the test fails naming it.
FILLED = {
    "SECRET_KEY": lambda value: secrets.token_urlsafe(50),
    "DATABASE_URL": lambda value: value.replace(PLACEHOLDER, "db-password"),
    "CELERY_BROKER_URL": lambda value: value.replace(PLACEHOLDER, "broker-password"),
    "EMAIL_HOST_PASSWORD": lambda value: "smtp-password",
    "METRICS_TOKEN": lambda value: secrets.token_urlsafe(32),
    "COLLECT_SIGNING_KEY": lambda value: secrets.token_urlsafe(32),
}


def template_env(tmp_path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not match:
            continue
        name, value = match.groups()
        if PLACEHOLDER in value:
            assert name in FILLED, f"{name} has a {PLACEHOLDER} placeholder this test does not fill"
            value = FILLED[name](value)
        env[name] = value
    # Paths of the production layout are not writable here; the check itself
    # opens no connection, so the example's host names are never contacted.
    env["PYSCALER_VAR_DIR"] = str(tmp_path / "var")
    env["SAMPLE_LOG_DIR"] = str(tmp_path / "var" / "samples")
    env["STATIC_ROOT"] = str(tmp_path / "static")
    env["PATH"] = os.environ["PATH"]
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_check_deploy_passes_with_the_production_env_template(tmp_path):
    result = check_deploy(template_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_when_a_production_switch_is_off(tmp_path):
    env = template_env(tmp_path)
    env.update(SECURE_HSTS_SECONDS="0", SECURE_COOKIES="false")
    result = check_deploy(env)
    assert result.returncode != 0
    for warning in ("security.W004", "security.W012", "security.W016"):
        assert warning in result.stderr, result.stderr


def check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Plain `manage.py check` (what migrate and runserver run at start)."""
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("SECRET_KEY", PLACEHOLDER, "SECRET_KEY is the placeholder CHANGE_ME"),
        ("SECRET_KEY", "x" * 31, "SECRET_KEY is 31 characters long; use at least 32"),
        ("METRICS_TOKEN", PLACEHOLDER, "METRICS_TOKEN is the placeholder CHANGE_ME"),
        ("METRICS_TOKEN", "t" * 15, "METRICS_TOKEN is 15 characters long; use at least 16"),
        ("COLLECT_SIGNING_KEY", PLACEHOLDER, "COLLECT_SIGNING_KEY is the placeholder CHANGE_ME"),
    ],
)
def test_a_placeholder_or_short_secret_is_an_error_naming_the_variable(tmp_path, name, value, words):
    env = template_env(tmp_path)
    env[name] = value
    for result in (check_deploy(env), check(env)):
        assert result.returncode != 0, result.stdout + result.stderr
        assert words in result.stderr, result.stderr
        assert "ERRORS:" in result.stderr


def test_placeholders_are_accepted_while_debugging(tmp_path):
    env = template_env(tmp_path)
    env.update(DEBUG="true", SECRET_KEY=PLACEHOLDER, METRICS_TOKEN=PLACEHOLDER, COLLECT_SIGNING_KEY="")
    result = check(env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unset_collect_signing_key_fails_the_deploy_check_only(tmp_path):
    """Unset, each host generates its own key under var/: fine for one host
    (and development), wrong for beat and workers on several."""
    env = template_env(tmp_path)
    del env["COLLECT_SIGNING_KEY"]
    assert check(env).returncode == 0
    result = check_deploy(env)
    assert result.returncode != 0 and "COLLECT_SIGNING_KEY is not set" in result.stderr, result.stderr


def test_an_empty_metrics_token_is_allowed_it_turns_metrics_off(tmp_path):
    env = template_env(tmp_path)
    env["METRICS_TOKEN"] = ""
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr


def load_wsgi(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What gunicorn does first: import the WSGI application."""
    return subprocess.run([sys.executable, "-c", "import pyscaler.wsgi"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_wsgi_application_refuses_a_placeholder_secret(tmp_path):
    env = template_env(tmp_path)
    assert load_wsgi(env).returncode == 0
    env["METRICS_TOKEN"] = PLACEHOLDER
    result = load_wsgi(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured: METRICS_TOKEN is the placeholder CHANGE_ME" in result.stderr, result.stderr
