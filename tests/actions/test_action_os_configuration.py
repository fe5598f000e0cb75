"""OSConfiguration: real Puppet applied over a real sshd to this machine (the
test node), sealed in a loopback-only network namespace, with the cloud fact
groups blocked as well. The jvm_node role really starts a JVM whose JMX
remote port is the one the cluster's JVM record names."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from apps.actions.contract import ActionError
from apps.actions.kinds.os_configuration import OSConfiguration
from apps.actions.puppet_apply import parse_output
from apps.control.models import Cluster
from apps.monitoring.jmx.connector import JmxConnection, endpoint_for
from apps.monitoring.jmx.models import JVM
from devservers.util import free_port, port_open, require_binary
from tests.ec2kit import context
from tests.factories import make_action, make_node
from tests.sshkit import trust

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

KIND = "os_configuration"
# Cloud-metadata fact groups, blocked on top of the network seal.
BLOCKLIST = ["EC2", "GCE", "virtualization", "hypervisors"]


@pytest.fixture(autouse=True)
def puppet_settings(settings, tmp_path):
    require_binary("puppet", "puppet")
    require_binary("unshare", "util-linux")
    settings.PUPPET_REMOTE_DIR = str(tmp_path / "remote")
    settings.PUPPET_SEAL_NETWORK = True
    settings.PUPPET_FACTER_BLOCKLIST = BLOCKLIST
    return settings


@pytest.fixture
def node(sshd_node, settings, tmp_path):
    trust(settings, tmp_path, sshd_node)
    cluster = Cluster.objects.create(name="jvms")
    jvm = JVM.objects.create(cluster=cluster, name="app", jmx_port=free_port())
    return make_node(cluster, sshd_node), jvm


@pytest.fixture
def jvm_dir(tmp_path):
    """Where the role installs the JVM; the JVM is stopped after the test."""
    base = tmp_path / "jvm"
    yield base
    ctl = base / "bin" / "jvmctl"
    if ctl.exists():
        subprocess.run([str(ctl), "stop"], timeout=30, check=False)


def configure(node, **params):
    action = make_action(node.cluster, KIND, params)
    ctx = context(node.cluster, target_node=node, timeout_s=180)
    return OSConfiguration(action).run(ctx), ctx


def role_facts(base: Path) -> dict:
    return {"pyscaler_jvm_base_dir": str(base), "pyscaler_jmx_host": "127.0.0.1"}


def test_jvm_node_role_starts_a_jvm_with_jmx_on_the_clusters_port(node, jvm_dir):
    node, jvm = node
    result, ctx = configure(node, facts=role_facts(jvm_dir))

    assert result.data["puppet_exit_code"] == 2
    assert "changes applied (exit 2)" in result.summary
    changed = result.data["puppet_changed"]
    assert "Service[pyscaler-jvm]" in changed and f"File[{jvm_dir}/conf/jvm.options]" in changed
    # The files on the node ...
    options = (jvm_dir / "conf" / "jvm.options").read_text()
    assert f"-Dcom.sun.management.jmxremote.port={jvm.jmx_port}" in options
    assert "-Djava.rmi.server.hostname=127.0.0.1" in options  # the node's address, from the Node row
    # ... and the service: a JVM reached over JMX remote on the JVM record's port.
    pid = int((jvm_dir / "run" / "jvm.pid").read_text())
    connection = JmxConnection.open(endpoint_for(node, jvm))
    try:
        runtime = connection.get_attributes("java.lang:type=Runtime", ("Name",))
    finally:
        connection.close()
    assert str(runtime["Name"]).startswith(f"{pid}@")
    # Puppet's run directory is gone; its output is the step's.
    assert not any((jvm_dir.parent / "remote" / "runs").iterdir())
    assert any("Notice: Applied catalog" in line for line in ctx.output)

    # Applied again: nothing to change, the same JVM keeps running.
    again, _ = configure(node, facts=role_facts(jvm_dir))
    assert again.data == {"puppet_exit_code": 0, "puppet_changed": []}
    assert "no changes (exit 0)" in again.summary
    assert int((jvm_dir / "run" / "jvm.pid").read_text()) == pid

    # A changed option is a change: the file, and a restart of the JVM.
    changed, _ = configure(node, facts={**role_facts(jvm_dir), "pyscaler_jvm_heap": "48m"})
    assert changed.data["puppet_exit_code"] == 2
    assert changed.data["puppet_changed"] == [f"File[{jvm_dir}/conf/jvm.options]", "Service[pyscaler-jvm]"]
    assert "-Xmx48m" in (jvm_dir / "conf" / "jvm.options").read_text()
    new_pid = int((jvm_dir / "run" / "jvm.pid").read_text())
    assert new_pid != pid
    assert port_open("127.0.0.1", jvm.jmx_port)


def test_puppet_runs_sealed_in_loopback_with_cloud_facts_blocked(node, settings, tmp_path):
    """A probe manifest records what Puppet saw: only the loopback interface
    (the network namespace) and no EC2 facts (the facter.conf blocklist)."""
    node, _ = node
    probe = tmp_path / "probe.txt"
    settings.PUPPET_DIR = str(_puppet_dir(tmp_path, "probe.pp", f"""
        file {{ '{probe}':
          content => "interfaces=${{join(keys($facts['networking']['interfaces']), ',')}}\\n\\
ec2=${{facts['ec2_metadata']}}\\nnetns=${{facts['pyscaler_service_netns']}}\\n\\
jmx_port=${{facts['pyscaler_jmx_port']}}\\nmine=${{facts['pyscaler_extra']}}\\n",
        }}
    """))

    result, _ = configure(node, manifest="manifests/probe.pp", facts={"pyscaler_extra": "yes"})

    assert result.data == {"puppet_exit_code": 2, "puppet_changed": [f"File[{probe}]"]}
    seen = dict(line.split("=", 1) for line in probe.read_text().splitlines())
    assert seen["interfaces"] == "lo"
    assert seen["ec2"] == ""
    assert seen["netns"].startswith("/proc/") and seen["netns"].endswith("/ns/net")
    assert seen["jmx_port"] == str(node.cluster.jvms.get().jmx_port)
    assert seen["mine"] == "yes"


def test_without_a_blocklist_puppet_resolves_facts_itself_still_sealed(node, settings, tmp_path):
    node, _ = node
    settings.PUPPET_FACTER_BLOCKLIST = []
    probe = tmp_path / "probe.txt"
    settings.PUPPET_DIR = str(_puppet_dir(tmp_path, "probe.pp", f"""
        file {{ '{probe}': content => join(keys($facts['networking']['interfaces']), ',') }}
    """))
    result, _ = configure(node, manifest="manifests/probe.pp")
    assert result.data["puppet_exit_code"] == 2
    assert probe.read_text() == "lo"


def test_a_broken_manifest_fails_the_step_with_puppets_message(node, settings, tmp_path):
    node, _ = node
    settings.PUPPET_DIR = str(_puppet_dir(tmp_path, "broken.pp", "file { '/tmp/x': ensure => "))
    with pytest.raises(ActionError) as info:
        configure(node, manifest="manifests/broken.pp")
    message = str(info.value)
    assert "puppet apply of manifests/broken.pp on" in message and "failed (exit 1)" in message
    assert "Syntax error" in message
    assert not info.value.retryable


def test_failed_resources_fail_the_step_and_are_named(node, settings, tmp_path):
    node, _ = node
    made = tmp_path / "made.txt"
    settings.PUPPET_DIR = str(_puppet_dir(tmp_path, "failing.pp", f"""
        file {{ '{made}': content => 'x' }}
        exec {{ 'refuse': command => '/bin/false' }}
    """))
    with pytest.raises(ActionError) as info:
        configure(node, manifest="manifests/failing.pp")
    message = str(info.value)
    assert "changed some resources and failed on others (exit 6)" in message
    assert "failed resources: Exec[refuse]" in message
    assert f"changed: File[{made}]" in message
    assert made.read_text() == "x"


def test_it_needs_a_target_node_and_an_existing_manifest(db):
    cluster = Cluster.objects.create(name="c")
    action = make_action(cluster, KIND)
    with pytest.raises(ActionError, match="needs a target node"):
        OSConfiguration(action).run(context(cluster))
    from apps.control.models import Node

    node = Node.objects.create(cluster=cluster, name="n", address="127.0.0.1")
    action = make_action(cluster, KIND, {"manifest": "manifests/nope.pp"})
    with pytest.raises(ActionError, match="manifest 'manifests/nope.pp' not found"):
        OSConfiguration(action).run(context(cluster, target_node=node))


def test_an_unknown_jvm_is_refused(node):
    node, _ = node
    with pytest.raises(ActionError, match="has no JVM named 'tomcat'"):
        configure(node, jvm="tomcat")


def test_parse_output_lists_changed_and_failed_resources():
    text = "\n".join([
        "Notice: /Stage[main]/Jvm_node/File[/opt/j/conf/jvm.options]/content: content changed 'a' to 'b'",
        "Notice: /Stage[main]/Jvm_node/Service[pyscaler-jvm]: Triggered 'refresh' from 1 event",
        "Notice: /Stage[main]/Main/Mod::Thing[x]/File[/etc/a b]/ensure: created",
        "Error: /Stage[main]/Main/Exec[refuse]/returns: change from 'notrun' to ['0'] failed: '/bin/false' returned 1",
        "Notice: Applied catalog in 0.1 seconds",
        "Error: Could not parse for environment production: Syntax error at end of input",
    ])
    changed, failed, errors = parse_output(text)
    assert changed == ["File[/opt/j/conf/jvm.options]", "Service[pyscaler-jvm]", "File[/etc/a b]"]
    assert failed == ["Exec[refuse]"]
    assert errors[-1] == "Could not parse for environment production: Syntax error at end of input"


def _puppet_dir(tmp_path: Path, name: str, body: str) -> Path:
    root = tmp_path / f"puppet-{time.time_ns()}"
    (root / "manifests").mkdir(parents=True)
    (root / "modules").mkdir()
    (root / "manifests" / name).write_text(body)
    return root
