"""The loop users rely on, whole: beat's collection and evaluation entries ->
a real worker collects over SSH -> the evaluate task counts the breach from
the samples that collection wrote -> the trigger fires by itself -> the chain
runs on the worker -> the e-mail reaches the SMTP server (aiosmtpd), or moto
launches and registers exactly one instance.

Nothing is fired by hand and no tick is turned off: the node's counter reads a
file the test writes, so the test decides when the node starts breaching."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.models import Execution, Node
from apps.monitoring.ssh.models import SSHCounter
from devservers.celery_worker import wait_until
from tests.ec2kit import instances, make_target_group, target_ids
from tests.factories import make_action, make_cluster, make_ec2_cluster, make_node, make_trigger
from tests.sshkit import trust

pytestmark = pytest.mark.slow

INTERVAL = 2
THRESHOLD = 10.0


def breaching_counter(cluster, reading) -> SSHCounter:
    return SSHCounter.objects.create(cluster=cluster, name="reading", command=f"cat {reading.path}",
                                     threshold=THRESHOLD, comparison=">=", interval_s=INTERVAL)


def loop_env(known_hosts: Path, **extra: str) -> dict[str, str]:
    return {"SSH_KNOWN_HOSTS": str(known_hosts), "COLLECT_TICK_S": "0.5", "EVALUATE_TICK_S": "0.5", **extra}


def executions_of(trigger) -> list[Execution]:
    return list(Execution.objects.filter(trigger=trigger).order_by("pk"))


def quiet_for(seconds: float, trigger) -> None:
    """The loop runs and fires nothing while the node does not breach."""
    time.sleep(seconds)
    assert executions_of(trigger) == [], "fired before the node breached"


def finished(trigger, timeout: float, logs: Callable[[], str]) -> Execution:
    try:
        wait_until(lambda: any(e.is_finished for e in executions_of(trigger)), timeout,
                   what=f"an execution of trigger {trigger.name} finished")
    except Exception:
        pytest.fail(f"no finished execution after {timeout} s; executions: "
                    f"{[(e.pk, e.status) for e in executions_of(trigger)]}\n{logs()}")
    return executions_of(trigger)[0]


def test_a_breaching_node_makes_the_trigger_email_by_itself(make_celery_worker, celery_beat, sshd_node, smtp_server,
                                                             reading, settings, tmp_path):
    smtp_server.clear()
    known_hosts = trust(settings, tmp_path, sshd_node)
    cluster = make_cluster("loop")
    node = make_node(cluster, sshd_node, name="loop-1")
    counter = breaching_counter(cluster, reading)
    mail = make_action(cluster, K.EMAIL, {
        "to": ["ops@example.com"],
        "subject": "{{ trigger.name }} fired on {{ cluster }}",
        "body": "node {{ node }} read {{ values }}",
    }, name="notify")
    trigger = make_trigger(cluster, [counter, mail], name="high-reading", timing_minutes=0, cooldown_s=3600)

    worker = make_celery_worker(isolated=True, env=loop_env(known_hosts, EMAIL_URL=smtp_server.email_url))
    beat = celery_beat(worker)

    def logs() -> str:
        return f"worker log:\n{worker.log_tail()}\nbeat log:\n{beat.log_tail()}"

    quiet_for(4 * INTERVAL, trigger)
    reading(THRESHOLD + 40)
    execution = finished(trigger, 60, logs)

    assert execution.status == ExecutionStatus.SUCCEEDED, logs()
    assert execution.automatic and execution.fired_by_user is None
    assert execution.reasons["node"] == node.name and execution.reasons["counter"] == counter.name
    assert [s.status for s in execution.steps.all()] == [StepStatus.SUCCEEDED]
    wait_until(lambda: smtp_server.messages, 10, what="the e-mail at the SMTP server")
    (message,) = smtp_server.messages
    assert message.rcpt_tos == ("ops@example.com",)
    assert message.subject == "high-reading fired on loop"
    assert "loop-1" in message.body and "50" in message.body
    # Cooldown: the node keeps breaching, the trigger does not fire again.
    time.sleep(3 * INTERVAL)
    assert len(executions_of(trigger)) == 1 and len(smtp_server.messages) == 1


def test_a_breaching_node_scales_the_cluster_out_on_moto(make_celery_worker, celery_beat, moto, moto_server, sshd_node,
                                                          reading, settings, tmp_path):
    known_hosts = trust(settings, tmp_path, sshd_node)
    cluster = make_ec2_cluster(moto, name="loop-ec2", max_size=3, target_group_arn=make_target_group(moto),
                               ssh_user=sshd_node.user, ssh_key_path=str(sshd_node.client_key_path))
    make_node(cluster, sshd_node, name="loop-ec2-1")
    counter = breaching_counter(cluster, reading)
    deploy = make_action(cluster, K.DEPLOY_EC2_NODE, {"wait_running_s": 60}, name="deploy", timeout_s=120)
    trigger = make_trigger(cluster, [counter, deploy], name="scale-out", timing_minutes=0, cooldown_s=3600)

    worker = make_celery_worker(isolated=True, env=loop_env(
        known_hosts, **moto_server.env(), AWS_WAITER_DELAY_S="1",
        # Test-only: the instance moto invents is the loopback sshd; nothing connects to moto's addresses.
        NODE_ADDRESS_OVERRIDE=f"*={sshd_node.host}:{sshd_node.port}"))
    beat = celery_beat(worker)

    def logs() -> str:
        return f"worker log:\n{worker.log_tail()}\nbeat log:\n{beat.log_tail()}"

    quiet_for(4 * INTERVAL, trigger)
    assert instances(moto) == []
    reading(THRESHOLD + 1)
    execution = finished(trigger, 120, logs)

    assert execution.status == ExecutionStatus.SUCCEEDED, [(s.action_name, s.error) for s in execution.steps.all()]
    assert execution.automatic and (execution.size_before, execution.size_after) == (1, 2)
    (instance,) = instances(moto)
    assert target_ids(moto, cluster.target_group_arn) == {instance["InstanceId"]}
    assert Node.objects.filter(cluster=cluster, ec2_instance_id=instance["InstanceId"]).count() == 1
    # Still breaching, but cooling down: no second instance.
    time.sleep(3 * INTERVAL)
    assert len(instances(moto)) == 1 and len(executions_of(trigger)) == 1
