"""puppet/: Debian's real Puppet validates every manifest and template, and a
`puppet apply --noop` of the PyScaler host role compiles and evaluates on this
machine, for a full host and for a collect-only worker host; bad parameters
are refused naming them. Puppet runs sealed in a loopback-only network
namespace (apps/actions/puppet_command.py): facter never reaches a
metadata address."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from apps.actions.puppet_command import PuppetDirs, apply_command, parser_validate_command
from devservers.puppet import PUPPET_DIR, manifests_under, run_sealed
from devservers.util import REPO_ROOT

pytestmark = pytest.mark.slow

ROLE = PUPPET_DIR / "manifests" / "pyscaler_host.pp"
MODULES = PUPPET_DIR / "modules"
SECRET_KEY = "puppet-test-secret-key-" + "s" * 40
DB_PASSWORD = "db-pw-7f3a"

HOST = {
    "pyscaler::source_dir": str(REPO_ROOT),
    "pyscaler::secret_key": SECRET_KEY,
    "pyscaler::database_url": f"postgres://pyscaler:{DB_PASSWORD}@127.0.0.1:5432/pyscaler",
    "pyscaler::broker_url": "amqp://pyscaler:broker-pw@127.0.0.1:5672/pyscaler",
    "pyscaler::memcached_servers": ["127.0.0.1:11211", "127.0.0.2:11211"],
    "pyscaler::allowed_hosts": ["pyscaler.test", "localhost"],
    "pyscaler::server_name": "pyscaler.test",
    "pyscaler::collect_signing_key": "collect-signing-key-for-the-puppet-test-0123",
}
UNIT_OF_ROLE = {
    "web": "pyscaler-web.service",
    "beat": "pyscaler-beat.service",
    "collect": "pyscaler-worker-collect@.service",  # a template: instances @1 .. @collect_processes
    "control": "pyscaler-worker-control.service",
    "actions": "pyscaler-worker-actions.service",
}


def puppet_errors(stderr: str) -> list[str]:
    """Puppet's errors, without facter's complaints about this container
    (reading /proc/1/environ is not permitted here; facter carries on)."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", stderr)
    return [line for line in plain.splitlines() if line.startswith("Error:") and "Error: Facter:" not in line]


def noop_apply(tmp_path: Path, data: dict) -> subprocess.CompletedProcess[str]:
    dirs = PuppetDirs(tmp_path / "puppet").create()
    datadir = tmp_path / "hieradata"
    datadir.mkdir()
    (datadir / "host.yaml").write_text(json.dumps(data))  # JSON is YAML
    hiera = tmp_path / "hiera.yaml"
    hiera.write_text(
        "version: 5\n"
        f"defaults: {{datadir: {datadir}, data_hash: yaml_data}}\n"
        "hierarchy: [{name: host, path: host.yaml}]\n"
    )
    return run_sealed(apply_command(ROLE, dirs, modulepath=[MODULES], noop=True, hiera_config=hiera),
                      timeout=240)


def planned(stdout: str) -> set[str]:
    """Resources the noop run would change, e.g. 'File[/etc/pyscaler/pyscaler.env]'."""
    return set(re.findall(r"/Stage\[main\]/[^ ]*?/(\w+\[[^\]]+\])(?:/\w+)?: current_value", stdout))


def test_puppet_validates_every_manifest_and_template(tmp_path):
    manifests = manifests_under()
    assert ROLE in manifests and len(manifests) >= 7
    dirs = PuppetDirs(tmp_path).create()
    result = run_sealed(parser_validate_command(manifests, dirs))
    assert result.returncode == 0 and not puppet_errors(result.stderr), result.stderr
    templates = sorted(str(p) for p in PUPPET_DIR.rglob("*.epp"))
    result = run_sealed(["puppet", "epp", "validate", *dirs.args(), "--color=false", *templates])
    assert result.returncode == 0 and not puppet_errors(result.stderr), result.stderr


def test_noop_apply_of_a_full_host(tmp_path):
    data = {**HOST, "pyscaler::roles": ["web", "beat", "collect", "control", "actions"],
            "pyscaler::run_migrations": True}
    result = noop_apply(tmp_path, data)
    # --detailed-exitcodes: 0 or 2 are success; 1, 4, 6 mean errors.
    assert result.returncode in (0, 2), result.stdout + result.stderr
    assert not puppet_errors(result.stderr), result.stderr
    plan = planned(result.stdout)
    expected = {
        "User[pyscaler]", "File[/opt/pyscaler/app]", "Exec[pyscaler: virtualenv]",
        "File[/etc/pyscaler/pyscaler.env]", "Exec[pyscaler: npm ci]", "Exec[pyscaler: collectstatic]",
        "Exec[pyscaler: migrate]",
        "File[/etc/systemd/system/pyscaler.target]", "File[/etc/nginx/sites-available/pyscaler]",
        *(f"File[/etc/systemd/system/{unit}]" for unit in UNIT_OF_ROLE.values()),
        *(f"Service[{unit}]" for role, unit in UNIT_OF_ROLE.items() if role != "collect"),
        "Service[pyscaler-worker-collect@1.service]", "Service[pyscaler-worker-collect@2.service]",
    }
    assert expected <= plan, sorted(expected - plan)
    # The env file is Sensitive: neither the key nor a password shows in the report.
    assert SECRET_KEY not in result.stdout + result.stderr
    assert DB_PASSWORD not in result.stdout + result.stderr


def test_noop_apply_of_a_collect_only_worker_host(tmp_path):
    """The scale-out case: another host for the collect queue, nothing else."""
    result = noop_apply(tmp_path, {**HOST, "pyscaler::roles": ["collect"], "pyscaler::collect_processes": 3})
    assert result.returncode in (0, 2), result.stdout + result.stderr
    assert not puppet_errors(result.stderr), result.stderr
    plan = planned(result.stdout)
    assert {f"Service[pyscaler-worker-collect@{i}.service]" for i in (1, 2, 3)} <= plan, plan
    assert "Service[pyscaler-worker-collect@4.service]" not in plan
    assert "File[/etc/systemd/system/pyscaler-worker-collect@.service]" in plan
    others = [unit for role, unit in UNIT_OF_ROLE.items() if role != "collect"]
    assert not [r for r in plan if any(unit in r for unit in others)], plan
    assert not [r for r in plan if any(word in r for word in ("nginx", "npm", "collectstatic", "migrate"))], plan


def test_a_collect_host_without_the_signing_key_is_refused(tmp_path):
    """Beat signs collect tasks and every collect worker verifies them: hosts
    with a key each (the settings' per-host fallback) would refuse every task."""
    data = {key: value for key, value in HOST.items() if key != "pyscaler::collect_signing_key"}
    result = noop_apply(tmp_path, {**data, "pyscaler::roles": ["collect"]})
    assert result.returncode not in (0, 2)
    errors = re.sub(r"\x1b\[[0-9;]*m", "", result.stderr)
    assert "collect_signing_key is required on hosts with the beat or collect role" in errors, errors


def test_bad_parameters_are_refused_naming_them(tmp_path):
    result = noop_apply(tmp_path, {**HOST, "pyscaler::roles": ["collect", "bogus"],
                                   "pyscaler::secret_key": "short"})
    assert result.returncode not in (0, 2)
    assert puppet_errors(result.stderr)
    errors = re.sub(r"\x1b\[[0-9;]*m", "", result.stderr)  # the message spans several lines
    assert "parameter 'roles' index 1 expects a match for Enum" in errors and "'bogus'" in errors, errors
    assert "parameter 'secret_key'" in errors, errors
    assert "short" not in errors  # the rejected value of a secret is not echoed


def test_the_env_file_puppet_writes_uses_only_documented_variables():
    """pyscaler::config's variables are those of deploy/pyscaler.env.example
    (the settings read them); a typo would silently be ignored by Django."""
    config = (MODULES / "pyscaler" / "manifests" / "config.pp").read_text()
    written = set(re.findall(r"^\s*'([A-Z][A-Z0-9_]*)'\s*=>", config, re.M))
    example = (REPO_ROOT / "deploy" / "pyscaler.env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.M))
    assert len(written) > 15
    assert sorted(written - documented) == []
