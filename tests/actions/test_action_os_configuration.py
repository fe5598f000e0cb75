"""OSConfiguration: real Puppet applied over a real sshd to this machine (the
test node), sealed in a loopback-only network namespace, with the cloud fact
groups blocked as well. The jvm_node role really starts a JVM whose JMX
remote port is the one the cluster's JVM record names."""
from __future__ import annotations

import ipaddress
import json
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from apps.actions.contract import ActionError
from apps.actions.kinds.os_configuration import OSConfiguration
from apps.actions.puppet_apply import jmx_files, parse_output
from apps.control.models import Cluster
from apps.monitoring.jmx.collector import collect_jvm
from apps.monitoring.jmx.connector import (Endpoint, JmxAuthError, JmxConnection, JmxConnectionError, close_all,
                                           endpoint_for)
from apps.monitoring.jmx.models import JMXCounter, JVM
from apps.monitoring.jmx.trust import certificate_path
from apps.monitoring.samples import Sample
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


JMX_USER, JMX_PASSWORD = "monitor", "node-jmx-pw-5c1e"
PASSWORD_VAR = "PYSCALER_SECRET_NODE_JMX"
#: The role's default user for the JVM; created on this machine by the test (left in place).
JVM_USER = "pyscaler-jvm"


@pytest.fixture
def node(sshd_node, settings, tmp_path, monkeypatch):
    trust(settings, tmp_path, sshd_node)
    settings.JMX_TRUST_DIR = tmp_path / "jmx-trust"
    monkeypatch.setenv(PASSWORD_VAR, JMX_PASSWORD)
    cluster = Cluster.objects.create(name="jvms")
    jvm = JVM.objects.create(cluster=cluster, name="app", jmx_port=free_port(), username=JMX_USER,
                             password_ref=f"env:{PASSWORD_VAR}", tls=True)
    return make_node(cluster, sshd_node), jvm


@pytest.fixture
def jvm_dir():
    """Where the role installs the JVM; the JVM is stopped after the test.
    Not under tmp_path: the JVM's own user must be able to reach it."""
    base = Path(tempfile.mkdtemp(prefix="pyscaler-jvm-role-")) / "jvm"
    base.parent.chmod(0o755)
    yield base
    ctl = base / "bin" / "jvmctl"
    if ctl.exists():
        subprocess.run([str(ctl), "stop"], timeout=30, check=False)
    shutil.rmtree(base.parent, ignore_errors=True)


def configure(node, **params):
    action = make_action(node.cluster, KIND, params)
    ctx = context(node.cluster, target_node=node, timeout_s=180)
    return OSConfiguration(action).run(ctx), ctx


def role_facts(base: Path) -> dict:
    """The JMX address is not among them: it defaults to the node's (127.0.0.1)."""
    return {"pyscaler_jvm_base_dir": str(base)}


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (/proc/net/tcp*);
    0.0.0.0 or :: would mean every address."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(str(ipaddress.IPv4Address(raw[::-1])))
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    v6 = ipaddress.IPv6Address(words)
                    found.add(str(v6.ipv4_mapped or v6))  # Java listens dual-stack: ::ffff:a.b.c.d
    return found


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_jvm_node_role_starts_a_jvm_with_jmx_on_the_clusters_port(node, jvm_dir, settings):
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
    assert not any((Path(settings.PUPPET_REMOTE_DIR) / "runs").iterdir())
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


def test_jvm_node_role_secures_jmx(node, jvm_dir, settings):
    """The JVM requires the password and TLS, listens on the node's address
    only, runs as its own user; the password never reaches a fact, an option
    or Puppet's output; the collector reads it over TLS with the password."""
    node, jvm = node
    result, ctx = configure(node, facts=role_facts(jvm_dir))
    assert result.data["puppet_exit_code"] == 2
    pid = int((jvm_dir / "run" / "jvm.pid").read_text())
    user = pwd.getpwnam(JVM_USER)

    # Its own system user, not root.
    assert user.pw_uid != 0 and uid_of(pid) == user.pw_uid
    # One address: the node's (the JMX port and the RMI port are the same one).
    assert listening_addresses(jvm.jmx_port) == {"127.0.0.1"}
    # The password file and the TLS settings: the JVM's user's only.
    for path, mode in [(jvm_dir / "conf" / "jmxremote.password", 0o400),
                       (jvm_dir / "conf" / "management.properties", 0o600),
                       (jvm_dir / "tls" / "ssl.properties", 0o600),
                       (jvm_dir / "tls" / "keystore.p12", 0o600)]:
        info = path.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (user.pw_uid, mode), path
    assert (jvm_dir / "conf" / "jmxremote.password").read_text() == f"{JMX_USER} {JMX_PASSWORD}\n"
    management = (jvm_dir / "conf" / "management.properties").read_text()
    assert "com.sun.management.jmxremote.authenticate=true" in management
    assert "com.sun.management.jmxremote.ssl=true" in management
    assert "com.sun.management.jmxremote.registry.ssl=true" in management
    options = (jvm_dir / "conf" / "jvm.options").read_text()
    assert "-Dcom.sun.management.jmxremote.host=127.0.0.1" in options
    assert "authenticate=false" not in options and "ssl=false" not in options
    command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    everything = "\n".join([*ctx.output, options, command_line, json.dumps(result.data), result.summary])
    assert JMX_PASSWORD not in everything
    ssl_password = (jvm_dir / "tls" / "ssl.properties").read_text().split("keyStorePassword=")[1].split()[0]
    assert ssl_password not in everything
    # PyScaler trusts the certificate read back from the node.
    assert [p.name for p in settings.JMX_TRUST_DIR.glob("*.pem")] == [Path(certificate_path(jvm, node)).name]
    assert "trusting the JMX certificate of JVM app" in "\n".join(ctx.output)

    # Plain JMX, or TLS without the password: refused.
    with pytest.raises(JmxConnectionError):
        JmxConnection.open(Endpoint("127.0.0.1", jvm.jmx_port, JMX_USER, JMX_PASSWORD, tls=False))
    with pytest.raises(JmxAuthError):
        JmxConnection.open(Endpoint("127.0.0.1", jvm.jmx_port, tls=True))
    with pytest.raises(JmxAuthError):
        JmxConnection.open(Endpoint("127.0.0.1", jvm.jmx_port, JMX_USER, "wrong", tls=True))
    # The collector reads a counter over TLS with the password.
    counter = JMXCounter.objects.create(jvm=jvm, name="threads", threshold=1000.0, interval_s=60,
                                        mbean="java.lang:type=Threading", attribute="ThreadCount")
    try:
        samples = collect_jvm(node, jvm, [counter], datetime.now(timezone.utc))
    finally:
        close_all()
    assert isinstance(samples[0], Sample), samples
    assert samples[0].value > 0

    # A new key pair (the operator deleted the key store): the next apply makes
    # one, restarts the JVM and records the new certificate, which this running
    # process trusts at once.
    recorded = Path(certificate_path(jvm, node))
    old_certificate = recorded.read_text()
    (jvm_dir / "tls" / "keystore.p12").unlink()
    rekeyed, _ = configure(node, facts=role_facts(jvm_dir))
    assert "Service[pyscaler-jvm]" in rekeyed.data["puppet_changed"]
    assert recorded.read_text() != old_certificate
    assert recorded.read_text() == (jvm_dir / "tls" / "jmx-cert.pem").read_text()
    try:
        samples = collect_jvm(node, jvm, [counter], datetime.now(timezone.utc))
    finally:
        close_all()
    assert isinstance(samples[0], Sample), samples


def test_jvm_node_role_refuses_a_jvm_record_without_password_or_tls(node, jvm_dir):
    node, jvm = node
    JVM.objects.filter(pk=jvm.pk).update(username="", password_ref="")
    with pytest.raises(ActionError, match="requires JMX authentication"):
        configure(node, facts=role_facts(jvm_dir))
    JVM.objects.filter(pk=jvm.pk).update(username=JMX_USER, password_ref=f"env:{PASSWORD_VAR}", tls=False)
    with pytest.raises(ActionError, match="serves JMX over TLS only"):
        configure(node, facts=role_facts(jvm_dir))
    assert not (jvm_dir / "run" / "jvm.pid").exists()


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


def test_the_jmx_password_reaches_the_node_as_private_files_not_facts(node, settings, tmp_path):
    """A probe manifest looks at what PyScaler copied: a directory of mode
    0700 with files of mode 0600, named by a fact that holds only its path;
    no environment variable of Puppet's holds the password; the run's
    clean-up removes the files."""
    node, _ = node
    probe = tmp_path / "probe.txt"
    settings.PUPPET_DIR = str(_puppet_dir(tmp_path, "probe.pp", f"""
        $dir = $facts['pyscaler_jmx_secrets_dir']
        exec {{ 'probe':
          command  => "stat -c '%a %n' ${{dir}} ${{dir}}/* > {probe}; cat ${{dir}}/jmxremote.* >> {probe}; \\
(env | grep -c {JMX_PASSWORD} || true) >> {probe}",
          path     => ['/usr/bin', '/bin'],
          provider => shell,
        }}
    """))
    result, _ = configure(node, manifest="manifests/probe.pp")
    assert result.data["puppet_exit_code"] == 2
    lines = probe.read_text().splitlines()
    secrets = lines[0].split()[1]
    assert lines == [f"700 {secrets}", f"600 {secrets}/jmxremote.access", f"600 {secrets}/jmxremote.password",
                     f"{JMX_USER} readonly", f"{JMX_USER} {JMX_PASSWORD}", "0"]
    assert secrets.startswith(settings.PUPPET_REMOTE_DIR) and not Path(secrets).exists()


def test_jmx_files_need_a_usable_password(node, monkeypatch):
    node, jvm = node
    assert jmx_files(node.cluster) == {"jmxremote.password": f"{JMX_USER} {JMX_PASSWORD}\n",
                                       "jmxremote.access": f"{JMX_USER} readonly\n"}
    monkeypatch.setenv(PASSWORD_VAR, "two words")
    with pytest.raises(ActionError, match="contains white space"):
        jmx_files(node.cluster)
    monkeypatch.delenv(PASSWORD_VAR)
    with pytest.raises(ActionError, match="JMX password of JVM app") as info:
        jmx_files(node.cluster)
    assert info.value.retryable
    JVM.objects.filter(pk=jvm.pk).update(username="", password_ref="")
    assert jmx_files(node.cluster) == {}


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
