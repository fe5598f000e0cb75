"""The seed's "new node deployment steps" end to end through a real Celery
worker on the real broker: DeployEc2Node (moto's HTTP server) ->
OSConfiguration (real Puppet over the test sshd) -> LocalScript -> Email
(aiosmtpd). The node moto invents is mapped to the loopback sshd by the
worker's NODE_ADDRESS_OVERRIDE; nothing connects to moto's addresses.

Also: a worker SIGKILLed in the middle of DeployEc2Node (after the instance
was launched) and the step redelivered to another worker -> exactly one
instance; and an AWS error stops the chain with AWS's message."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.actions.ec2 import STEP_TAG
from apps.control.choices import ExecutionStatus, NodeState, StepStatus
from apps.control.executions import fire_trigger
from apps.control.models import Execution, Node
from apps.monitoring.jmx.models import JVM
from devservers.celery_worker import wait_until
from devservers.util import free_port, port_open, require_binary
from tests.ec2kit import instances, make_target_group, target_ids
from tests.factories import make_action, make_ec2_cluster, make_trigger
from tests.holding_proxy import HoldingProxy
from tests.sshkit import trust

pytestmark = pytest.mark.slow

BLOCKLIST = "EC2,GCE,virtualization,hypervisors"


@pytest.fixture
def world(transactional_db, moto, moto_server, sshd_node, smtp_server, settings, tmp_path) -> Iterator[dict]:
    """A cluster launching into moto, its nodes reached through the test sshd,
    and the environment a worker needs for all of it."""
    require_binary("puppet", "puppet")
    known_hosts = trust(settings, tmp_path, sshd_node)
    smtp_server.clear()
    cluster = make_ec2_cluster(moto, name="web", max_size=3, target_group_arn=make_target_group(moto),
                               ssh_user=sshd_node.user, ssh_key_path=str(sshd_node.client_key_path))
    # The jvm_node role requires a JMX password and TLS.
    jvm = JVM.objects.create(cluster=cluster, name="app", jmx_port=free_port(), username="monitor",
                             password_ref="env:PYSCALER_SECRET_CHAIN_JMX", tls=True)
    # Not under tmp_path (mode 0700): the role's JVM runs as its own user.
    jvm_dir = Path(tempfile.mkdtemp(prefix="pyscaler-jvm-chain-")) / "jvm"
    jvm_dir.parent.chmod(0o755)
    env = {
        **moto_server.env(),
        "SSH_KNOWN_HOSTS": str(known_hosts),
        # Test-only: the instance moto invents is the loopback sshd.
        "NODE_ADDRESS_OVERRIDE": f"*={sshd_node.host}:{sshd_node.port}",
        "PUPPET_REMOTE_DIR": str(tmp_path / "remote"),
        "PUPPET_SEAL_NETWORK": "true",
        "PUPPET_FACTER_BLOCKLIST": BLOCKLIST,
        "EMAIL_URL": smtp_server.email_url,
        "AWS_WAITER_DELAY_S": "1",
        "PYSCALER_SECRET_CHAIN_JMX": "chain-jmx-pw",
        "JMX_TRUST_DIR": str(tmp_path / "jmx-trust"),
    }
    yield {"cluster": cluster, "jvm": jvm, "jvm_dir": jvm_dir, "env": env}
    ctl = jvm_dir / "bin" / "jvmctl"
    if ctl.exists():
        subprocess.run([str(ctl), "stop"], timeout=30, check=False)
    shutil.rmtree(jvm_dir.parent, ignore_errors=True)


@pytest.fixture
def start_worker(make_celery_worker, world):
    def start(**env):
        return make_celery_worker(queues=("actions",), isolated=True, env={**world["env"], **env})
    return start


def scale_out_chain(world, *, with_puppet: bool = True):
    cluster = world["cluster"]
    steps = [make_action(cluster, K.DEPLOY_EC2_NODE, {"wait_running_s": 60}, name="deploy", timeout_s=120)]
    if with_puppet:
        steps.append(make_action(cluster, K.OS_CONFIGURATION, {
            "facts": {"pyscaler_jvm_base_dir": str(world["jvm_dir"]), "pyscaler_jmx_host": "127.0.0.1"},
        }, name="puppet", timeout_s=300))
    steps.append(make_action(cluster, K.LOCAL_SCRIPT, {
        "script": f"echo configured on $(hostname); grep jmxremote.port= {world['jvm_dir']}/conf/jvm.options"
        if with_puppet else "echo hello from the new node",
    }, name="check", timeout_s=60))
    steps.append(make_action(cluster, K.EMAIL, {
        "to": ["ops@example.com"],
        "subject": "{{ cluster }}: {{ new_node.name }} joined",
        "body": "{{ new_node.name }} at {{ new_node.address }} (trigger {{ trigger.name }})",
    }, name="notify", timeout_s=60))
    return make_trigger(cluster, steps, name="scale-out")


def finished(execution: Execution, timeout: float) -> Execution:
    wait_until(lambda: Execution.objects.get(pk=execution.pk).is_finished, timeout,
               what=f"execution {execution.pk} finished")
    return Execution.objects.get(pk=execution.pk)


def test_the_full_scale_out_chain_runs_through_a_worker(world, start_worker, moto, smtp_server, sshd_node):
    cluster, jvm = world["cluster"], world["jvm"]
    start_worker()
    trigger = scale_out_chain(world)

    execution = fire_trigger(trigger, reasons={"trigger": "scale-out", "counter": "load1", "values": [3.2]})
    execution = finished(execution, 400)

    steps = list(execution.steps.order_by("position"))
    assert execution.status == ExecutionStatus.SUCCEEDED, [(s.action_name, s.error) for s in steps]
    assert [s.status for s in steps] == [StepStatus.SUCCEEDED] * 4
    assert (execution.size_before, execution.size_after) == (0, 1)
    # EC2: one instance, tagged with the deploy step, registered with the target group.
    (instance,) = instances(moto)
    iid = instance["InstanceId"]
    assert {"Key": STEP_TAG, "Value": f"pyscaler-step-{steps[0].pk}"} in instance["Tags"]
    assert target_ids(moto, cluster.target_group_arn) == {iid}
    node = Node.objects.get(ec2_instance_id=iid)
    assert (node.address, node.ssh_port, node.state) == (sshd_node.host, sshd_node.port, NodeState.RUNNING)
    assert execution.data["deployed_node_ids"] == [node.pk]
    # Puppet changed the node: the role's files and its JVM with JMX on the record's port.
    assert "changes applied (exit 2)" in steps[1].output
    options = (world["jvm_dir"] / "conf" / "jvm.options").read_text()
    assert f"-Dcom.sun.management.jmxremote.port={jvm.jmx_port}" in options
    assert port_open("127.0.0.1", jvm.jmx_port)
    # ... and the worker now trusts the certificate of the new node's JMX.
    assert len(list(Path(world["env"]["JMX_TRUST_DIR"]).glob("*.pem"))) == 1
    # LocalScript ran on the new node and saw Puppet's work.
    assert f"jmxremote.port={jvm.jmx_port}" in steps[2].output
    # The e-mail arrived, naming the new node.
    (message,) = smtp_server.wait_for(1)
    assert message.subject == f"web: {iid} joined"
    assert f"{iid} at {sshd_node.host}" in message.body and "trigger scale-out" in message.body


def test_an_aws_error_stops_the_chain_with_aws_message(world, start_worker, moto, smtp_server):
    cluster = world["cluster"]
    cluster.ec2_subnet_id = "subnet-0123456789abcdef0"  # moto does not know it
    cluster.save()
    start_worker()
    trigger = scale_out_chain(world, with_puppet=False)

    execution = finished(fire_trigger(trigger, reasons={"counter": "load1", "values": [3.2]}), 120)

    deploy, *later = execution.steps.order_by("position")
    assert execution.status == ExecutionStatus.FAILED
    assert deploy.status == StepStatus.FAILED
    assert "AWS error InvalidSubnetID.NotFound" in deploy.error and "subnet-0123456789abcdef0" in deploy.error
    assert [s.status for s in later] == [StepStatus.SKIPPED] * len(later)
    assert instances(moto) == [] and not Node.objects.filter(cluster=cluster).exists()
    assert smtp_server.messages == []  # the e-mail step was skipped


# ---------------------------------------------------------------------------
# SIGKILL mid-deploy
# ---------------------------------------------------------------------------


def test_a_worker_killed_mid_deploy_is_redelivered_and_launches_no_second_instance(world, start_worker, moto,
                                                                                    moto_server):
    cluster = world["cluster"]
    deploy = make_action(cluster, K.DEPLOY_EC2_NODE, {"wait_running_s": 60}, name="deploy", timeout_s=120)
    trigger = make_trigger(cluster, [deploy], name="scale-out")
    with HoldingProxy(moto_server.endpoint_url, hold=b"Action=RegisterTargets") as proxy:
        first = start_worker(AWS_ENDPOINT_URL=proxy.url)
        execution = fire_trigger(trigger, reasons={"counter": "load1", "values": [3.2]})
        assert proxy.held.wait(120), "the deploy never reached the load balancer registration"
        (launched,) = instances(moto)  # launched, not yet registered, no Node yet
        assert not Node.objects.filter(ec2_instance_id=launched["InstanceId"]).exists()
        first.kill()  # SIGKILL: the step's message was never acked
        proxy.release.set()
        start_worker(AWS_ENDPOINT_URL=proxy.url)  # RabbitMQ redelivers to this one
        execution = finished(execution, 120)

    step = execution.steps.get()
    assert execution.status == ExecutionStatus.SUCCEEDED, step.error
    assert step.attempts == 2, "the step was not redelivered"
    assert [i["InstanceId"] for i in instances(moto, states=("pending", "running", "shutting-down",
                                                              "terminated", "stopping", "stopped"))] == [
        launched["InstanceId"]]
    assert target_ids(moto, cluster.target_group_arn) == {launched["InstanceId"]}
    node = Node.objects.get(cluster=cluster)
    assert node.ec2_instance_id == launched["InstanceId"] and node.state == NodeState.RUNNING
    assert "adopting" in step.output
