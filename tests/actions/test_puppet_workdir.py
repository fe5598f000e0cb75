"""Puppet's work directory on the node is private to the SSH user (issue 15,
security 3): real Puppet over the real sshd test node, set up as in
test_action_os_configuration.py (whose fixtures these tests share)."""
from __future__ import annotations

import os
import pwd
import shutil
import stat
import uuid
from pathlib import Path

import pytest

from apps.actions.contract import ActionError
from apps.control.models import Cluster
from apps.monitoring.jmx.models import JVM
from devservers.util import free_port
from tests.actions.test_action_os_configuration import _puppet_dir, configure
from tests.actions.test_action_os_configuration import puppet_settings  # noqa: F401 (autouse fixture)
from tests.factories import make_node
from tests.sshkit import trust

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def node(sshd_node, settings, tmp_path):
    trust(settings, tmp_path, sshd_node)
    cluster = Cluster.objects.create(name="jvms")
    JVM.objects.create(cluster=cluster, name="app", jmx_port=free_port())
    return make_node(cluster, sshd_node)


def _probe_manifest(settings, tmp_path):
    made = tmp_path / "made.txt"
    settings.PUPPET_DIR = str(_puppet_dir(tmp_path, "probe.pp", f"file {{ '{made}': content => 'x' }}"))
    return made


@pytest.mark.parametrize("squat", ["world-writable", "group-writable", "another owner", "a symlink"])
def test_a_work_directory_others_can_write_or_own_is_refused(node, settings, tmp_path, squat):
    """A local user who made the work directory first would have their script
    run by Puppet (often root): the step refuses before copying anything."""
    made = _probe_manifest(settings, tmp_path)
    remote = Path(settings.PUPPET_REMOTE_DIR)
    owner = 65534
    if squat == "a symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        remote.symlink_to(tmp_path / "elsewhere")
    elif squat == "another owner" and os.geteuid() != 0:
        # Only root can give a directory away: a directory root owns (and
        # keeps to itself) stands in for one another user made first.
        remote, owner = Path("/usr/bin").resolve(), 0
        settings.PUPPET_REMOTE_DIR = str(remote)
    else:
        remote.mkdir()
        os.chmod(remote, {"world-writable": 0o1777, "group-writable": 0o770}.get(squat, 0o700))
        if squat == "another owner":
            os.chown(remote, owner, owner)
    target = tmp_path / "elsewhere" if squat == "a symlink" else remote
    before = sorted(target.iterdir())

    with pytest.raises(ActionError) as info:
        configure(node, manifest="manifests/probe.pp")
    message = str(info.value)
    assert f"Puppet's work directory {remote}" in message, message
    assert "PUPPET_REMOTE_DIR" in message and "0700" in message
    assert {"world-writable": "writable by others", "group-writable": "writable by others",
            "another owner": f"owned by uid {owner}", "a symlink": "a symbolic link"}[squat] in message
    assert not info.value.retryable
    assert sorted(target.iterdir()) == before, "files were copied into a directory the step refused"
    assert not made.exists()


def test_the_work_directory_is_made_private_and_a_run_still_works(node, settings, tmp_path):
    made = _probe_manifest(settings, tmp_path)
    remote = Path(settings.PUPPET_REMOTE_DIR)
    assert not remote.exists()
    result, _ = configure(node, manifest="manifests/probe.pp")
    assert result.data["puppet_exit_code"] == 2 and made.read_text() == "x"
    info = remote.lstat()
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.geteuid()
    # A second run reuses it (it is ours and private).
    made.unlink()
    again, _ = configure(node, manifest="manifests/probe.pp")
    assert again.data["puppet_exit_code"] == 2 and made.read_text() == "x"


def test_a_work_directory_under_the_ssh_users_home(node, settings, tmp_path):
    """The default, ~/.pyscaler-puppet: the SSH user's home, which no other
    user can squat."""
    made = _probe_manifest(settings, tmp_path)
    name = f".pyscaler-puppet-test-{uuid.uuid4().hex[:8]}"
    settings.PUPPET_REMOTE_DIR = f"~/{name}"
    home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    try:
        result, ctx = configure(node, manifest="manifests/probe.pp")
        assert result.data["puppet_exit_code"] == 2 and made.read_text() == "x"
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o700
        assert any(f"{home}/{name}/runs/" in line for line in ctx.output)
    finally:
        shutil.rmtree(home / name, ignore_errors=True)
        # Where a release that took "~" literally put it (SFTP paths are relative to home).
        shutil.rmtree(home / "~" / name, ignore_errors=True)
        if (home / "~").is_dir() and not any((home / "~").iterdir()):
            (home / "~").rmdir()
