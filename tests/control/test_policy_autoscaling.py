"""Scaling policies on the real stack: beat's collection and policy entries ->
a real worker collects over SSH from sshd nodes -> the policy decides from the
samples -> its chain runs on the worker and moto launches or terminates
instances -> a decision record explains each step.

The nodes' counter reads a file the test writes (every node of these clusters
is the one loopback sshd, and launched instances are mapped to it), so the
test decides the cluster's average load."""
from __future__ import annotations

import time

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.control.choices import ExecutionStatus, NodeState
from apps.control.models import Execution, Node, PolicyDecision
from apps.monitoring.ssh.models import SSHCounter
from devservers.celery_worker import wait_until
from tests.ec2kit import instances
from tests.factories import make_action, make_cluster, make_ec2_cluster, make_node, make_policy
from tests.sshkit import trust

pytestmark = pytest.mark.slow

INTERVAL = 2


def load_counter(cluster, reading) -> SSHCounter:
    return SSHCounter.objects.create(cluster=cluster, name="load", command=f"cat {reading.path}",
                                     threshold=1000, comparison=">=", interval_s=INTERVAL)


def env(known_hosts, **extra: str) -> dict[str, str]:
    return {"SSH_KNOWN_HOSTS": str(known_hosts), "COLLECT_TICK_S": "0.5", "EVALUATE_TICK_S": "0",
            "POLICY_TICK_S": "0.5", **extra}


def ec2_env(moto_server, sshd_node) -> dict[str, str]:
    # Test-only: the instances moto invents are the loopback sshd; nothing connects to moto's addresses.
    return {**moto_server.env(), "AWS_WAITER_DELAY_S": "1",
            "NODE_ADDRESS_OVERRIDE": f"*={sshd_node.host}:{sshd_node.port}"}


def running(cluster) -> int:
    return Node.objects.filter(cluster=cluster, state=NodeState.RUNNING).count()


def executions(policy) -> list[Execution]:
    return list(Execution.objects.filter(policy=policy).order_by("pk"))


def decisions(policy) -> list[PolicyDecision]:
    return list(PolicyDecision.objects.filter(policy=policy).order_by("created", "pk"))


def wait(condition, timeout, what, logs):
    try:
        wait_until(condition, timeout, what=what)
    except Exception:
        pytest.fail(f"{what}: not after {timeout} s\n{logs()}")


def ec2_cluster(moto, sshd_node, name):
    return make_ec2_cluster(moto, name=name, max_size=3, ssh_user=sshd_node.user,
                            ssh_key_path=str(sshd_node.client_key_path))


def test_target_tracking_scales_out_waits_for_warm_up_and_scales_back_in(
        make_celery_worker, celery_beat, moto, moto_server, sshd_node, reading, settings, tmp_path):
    known_hosts = trust(settings, tmp_path, sshd_node)
    cluster = ec2_cluster(moto, sshd_node, "pol-ec2")
    make_node(cluster, sshd_node, name="pol-ec2-1")
    load = load_counter(cluster, reading)
    reading(50.0)
    deploy = make_action(cluster, K.DEPLOY_EC2_NODE, {"wait_running_s": 60}, name="deploy", timeout_s=120)
    remove = make_action(cluster, K.REMOVE_EC2_NODE, {"wait_terminated_s": 60}, name="remove", timeout_s=120)
    policy = make_policy(cluster, [(load, 50.0)], scale_out=[deploy], scale_in=[remove], warmup_s=20,
                         max_step=1)
    worker = make_celery_worker(isolated=True, env=env(known_hosts, **ec2_env(moto_server, sshd_node)))
    beat = celery_beat(worker)

    def logs() -> str:
        return (f"decisions: {[d.summary for d in decisions(policy)]}\nworker log:\n{worker.log_tail()}\n"
                f"beat log:\n{beat.log_tail()}")

    wait(lambda: decisions(policy) and decisions(policy)[-1].summary == "at 1, as wanted", 30,
         "a first decision", logs)
    reading(100.0)  # ceil(1 × 100 / 50) = 2
    wait(lambda: running(cluster) == 2 and executions(policy)[0].is_finished, 90,
         "the cluster scaled out to 2", logs)
    [out] = executions(policy)
    assert out.status == ExecutionStatus.SUCCEEDED and out.data["node_count"] == 1, logs()
    assert len(instances(moto)) == 1
    # The new node still warms up: its load is not averaged and it counts as
    # capacity, so the same reading does not launch a second node.
    time.sleep(4 * INTERVAL)
    assert len(executions(policy)) == 1 and len(instances(moto)) == 1, logs()
    assert any(e["guard"] == "warm-up" and e["blocked"] for d in decisions(policy) for e in d.effects), logs()

    reading(10.0)  # once warmed up: ceil(2 × 10 / 50) = 1
    wait(lambda: running(cluster) == 1 and len(executions(policy)) == 2 and executions(policy)[1].is_finished,
         90, "the cluster scaled back in to 1", logs)
    back = executions(policy)[1]
    assert back.status == ExecutionStatus.SUCCEEDED and back.data["direction"] == "in", logs()
    assert instances(moto) == [] and len(instances(moto, states=("shutting-down", "terminated"))) == 1
    recorded = [d for d in decisions(policy) if d.execution_id]
    assert [d.direction for d in recorded] == ["out", "in"]
    assert recorded[0].summary == "wanted 2, scaling out 1 → 2"
    assert recorded[1].summary == "wanted 1, scaling in 2 → 1"


def test_the_flap_check_refuses_a_scale_in(make_celery_worker, celery_beat, sshd_node, reading, settings,
                                           tmp_path):
    known_hosts = trust(settings, tmp_path, sshd_node)
    cluster = make_cluster("pol-flap", max_size=4)
    make_node(cluster, sshd_node, name="pol-flap-1")
    make_node(cluster, sshd_node, name="pol-flap-2")
    load = load_counter(cluster, reading)
    reading(28.0)  # in the -1 band; on one node it would be 56, in the +1 band
    shrink = make_action(cluster, K.LOCAL_SCRIPT, {"script": "true"}, name="shrink")
    policy = make_policy(cluster, [(load, None)], kind="steps", scale_in=[shrink],
                         bands=[(None, 30.0, -1), (50.0, None, 1)])
    worker = make_celery_worker(isolated=True, env=env(known_hosts))
    beat = celery_beat(worker)

    def logs() -> str:
        return (f"decisions: {[d.summary for d in decisions(policy)]}\nworker log:\n{worker.log_tail()}\n"
                f"beat log:\n{beat.log_tail()}")

    wait(lambda: any(e["guard"] == "flap check" for d in decisions(policy) for e in d.effects), 45,
         "a decision refused by the flap check", logs)
    time.sleep(3 * INTERVAL)
    assert executions(policy) == [] and running(cluster) == 2, logs()
    refused = decisions(policy)[-1]
    assert refused.summary.startswith("wanted 1, held at 2: removing 1 would ask for a scale-out again "
                                      "(load 28 → 56)"), refused.summary
    assert refused.inputs["counters"][0]["value"] == 28 and refused.repeats >= 1


def test_a_schedule_raises_the_minimum(make_celery_worker, celery_beat, moto, moto_server, sshd_node, reading,
                                       settings, tmp_path):
    known_hosts = trust(settings, tmp_path, sshd_node)
    cluster = ec2_cluster(moto, sshd_node, "pol-sched")
    make_node(cluster, sshd_node, name="pol-sched-1")
    load = load_counter(cluster, reading)
    reading(50.0)  # on target: only the schedule asks for more
    deploy = make_action(cluster, K.DEPLOY_EC2_NODE, {"wait_running_s": 60}, name="deploy", timeout_s=120)
    policy = make_policy(cluster, [(load, 50.0)], scale_out=[deploy], warmup_s=600, windows=[
        {"name": "all day", "cron": "0 0 * * *", "duration_minutes": 1440, "min_size": 2}])
    worker = make_celery_worker(isolated=True, env=env(known_hosts, **ec2_env(moto_server, sshd_node)))
    beat = celery_beat(worker)

    def logs() -> str:
        return (f"decisions: {[d.summary for d in decisions(policy)]}\nworker log:\n{worker.log_tail()}\n"
                f"beat log:\n{beat.log_tail()}")

    wait(lambda: running(cluster) == 2 and executions(policy)[0].is_finished, 90,
         "the schedule's minimum of 2 reached", logs)
    time.sleep(3 * INTERVAL)
    assert len(executions(policy)) == 1 and len(instances(moto)) == 1, logs()
    first = next(d for d in decisions(policy) if d.execution_id)
    assert first.raw_desired == 1 and first.desired == 2
    assert first.inputs["schedule"]["name"] == "all day"
    # (Before the first sample the record also notes the missing data, which never holds a scale-out.)
    [schedule] = [e for e in first.effects if e["guard"] == "schedule"]
    assert (schedule["before"], schedule["after"]) == (1, 2) and "min 2" in schedule["note"]


def test_the_demo_configuration_grows_and_shrinks_the_demo_cluster(
        make_celery_worker, celery_beat, moto, moto_server, sshd_node, smtp_server, settings, tmp_path):
    """`make run`'s demo (demo_setup with the EC2 emulator): its policy's chains
    run whole — DeployEc2Node, LocalScript on the new node, e-mail; RemoveEc2Node,
    e-mail. The load is played by the load counter's command (a constant)."""
    from io import StringIO

    from django.core.management import call_command

    from tests.ec2kit import DEFAULT_AMI_ID, default_subnet

    smtp_server.clear()
    known_hosts = trust(settings, tmp_path, sshd_node)
    _, subnet = default_subnet(moto)
    call_command("demo_setup", "--ssh-host", sshd_node.host, "--ssh-port", str(sshd_node.port),
                 "--ssh-user", sshd_node.user, "--ssh-key", str(sshd_node.client_key_path), "--interval", "2",
                 "--ec2-ami", DEFAULT_AMI_ID, "--ec2-subnet", subnet, stdout=StringIO())
    load = SSHCounter.objects.get(cluster__name="demo", name="load1")
    SSHCounter.objects.filter(cluster__name="demo").exclude(pk=load.pk).update(enabled=False)
    SSHCounter.objects.filter(pk=load.pk).update(command="echo 3")
    policy = load.cluster.policies.get()
    worker = make_celery_worker(isolated=True, env=env(known_hosts, **ec2_env(moto_server, sshd_node),
                                                       EMAIL_URL=smtp_server.email_url))
    beat = celery_beat(worker)

    def logs() -> str:
        steps = [(e.pk, e.status, [(s.action_name, s.error) for s in e.steps.all()])
                 for e in executions(policy)]
        return (f"decisions: {[d.summary for d in decisions(policy)]}\nexecutions: {steps}"
                f"\nworker log:\n{worker.log_tail()}\nbeat log:\n{beat.log_tail()}")

    wait(lambda: running(load.cluster) == 3 and all(e.is_finished for e in executions(policy)), 150,
         "the demo cluster grown to its maximum, 3", logs)
    SSHCounter.objects.filter(pk=load.pk).update(command="echo 0.1")
    wait(lambda: running(load.cluster) == 1 and all(e.is_finished for e in executions(policy)), 200,
         "the demo cluster back to 1", logs)
    done = [e for e in executions(policy) if e.status == ExecutionStatus.SUCCEEDED]
    assert [e.data["direction"] for e in done] == ["out", "out", "in", "in"], logs()
    assert "configured" in done[0].steps.get(position=2).output, logs()
    subjects = [m.subject for m in smtp_server.messages]
    assert "PyScaler: demo-size scaled demo out by 1" in subjects, subjects
    assert "PyScaler: demo-size scaled demo in by 1" in subjects, subjects
