"""RemoveEc2Node through a real worker SIGKILLed mid-step: the worker claimed
a node and deregistered it, and dies while its terminate request is in flight
(held by a proxy in front of moto). RabbitMQ redelivers the step to a second
worker, which finishes the same node: exactly one instance terminated, the
other left running, and the Node records consistent."""
from __future__ import annotations

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.control.choices import ExecutionStatus, NodeState
from apps.control.executions import fire_action
from apps.control.models import Execution, Node
from devservers.celery_worker import wait_until
from tests.ec2kit import aws, make_target_group, state_of, target_ids
from tests.factories import make_action, make_ec2_cluster, nodes_in_moto
from tests.holding_proxy import HoldingProxy

pytestmark = pytest.mark.slow


def test_a_worker_killed_mid_removal_is_redelivered_and_terminates_exactly_one(make_celery_worker, moto,
                                                                                moto_server):
    arn = make_target_group(moto)
    cluster = make_ec2_cluster(moto, name="shrink", target_group_arn=arn, min_size=1)
    old, new = nodes_in_moto(moto, cluster, 2)
    aws(moto, "elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": old.name}, {"Id": new.name}])
    remove = make_action(cluster, K.REMOVE_EC2_NODE, {"wait_terminated_s": 60}, name="remove", timeout_s=120)

    def start_worker(proxy: HoldingProxy):
        return make_celery_worker(queues=("actions",), isolated=True,
                                  env={**moto_server.env(), "AWS_ENDPOINT_URL": proxy.url,
                                       "AWS_WAITER_DELAY_S": "1"})

    with HoldingProxy(moto_server.endpoint_url, hold=b"Action=TerminateInstances") as proxy:
        first = start_worker(proxy)
        execution = fire_action(remove, cluster=cluster)
        assert proxy.held.wait(120), "the removal never reached TerminateInstances"
        new.refresh_from_db()
        assert new.state == NodeState.DRAINING  # claimed and out of the load balancer ...
        assert target_ids(moto, arn) == {old.ec2_instance_id}
        assert state_of(moto, new.ec2_instance_id) == "running"  # ... but not terminated yet
        first.kill()  # SIGKILL: the step's message was never acked
        proxy.release.set()
        start_worker(proxy)  # RabbitMQ redelivers to this one
        wait_until(lambda: Execution.objects.get(pk=execution.pk).is_finished, 120,
                   what=f"execution {execution.pk} finished")

    execution.refresh_from_db()
    step = execution.steps.get()
    assert execution.status == ExecutionStatus.SUCCEEDED, step.error
    assert step.attempts == 2, "the step was not redelivered"
    assert "resuming the removal of" in step.output
    assert execution.data["removed_node_ids"] == [new.pk]
    assert state_of(moto, new.ec2_instance_id) == "terminated"
    assert state_of(moto, old.ec2_instance_id) == "running"
    assert {n.pk: n.state for n in Node.objects.filter(cluster=cluster)} == {
        old.pk: NodeState.RUNNING, new.pk: NodeState.TERMINATED}
    assert (execution.size_before, execution.size_after) == (2, 1)
