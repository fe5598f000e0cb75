"""Two chains at once cannot both pass a bound: real threads, each with its
own database connection, against the same database (and moto); run again on
PostgreSQL and MariaDB (dbbackends), where the row lock is a real one."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from apps.control import sizing
from apps.actions.contract import ActionError
from apps.actions.kinds.deploy_ec2_node import DeployEc2Node
from apps.actions.kinds.remove_ec2_node import RemoveEc2Node
from apps.control.choices import NodeState
from apps.control.models import Cluster, Node
from tests import concurrently
from tests.ec2kit import context, instances, launch_foreign, make_target_group, target_ids
from tests.factories import make_action, make_ec2_cluster

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dbbackends]


def at_once(work: Callable[[int], object], count: int) -> tuple[list[object], list[BaseException]]:
    """``work(i)`` in ``count`` threads released together; the successes and the errors."""
    results, errors = concurrently.at_once(work, count)
    return [r for r in results if r is not None], errors


def test_many_reservations_at_once_never_pass_max_size():
    cluster = Cluster.objects.create(name="web", max_size=3, max_step_size=1)
    Node.objects.create(cluster=cluster, name="web-0", address="127.0.0.1")

    results, errors = at_once(lambda i: sizing.reserve_slots(cluster, 1, f"step-{i}"), 6)

    assert len(results) == 2
    assert len(errors) == 4 and all(isinstance(e, ActionError) and "max size" in str(e) for e in errors), errors
    assert sizing.cluster_size(cluster) == 3


def test_two_deploys_at_max_size_minus_one_launch_exactly_one_node(moto):
    arn = make_target_group(moto)
    cluster = make_ec2_cluster(moto, max_size=2, target_group_arn=arn)
    Node.objects.create(cluster=cluster, name="web-0", address="127.0.0.1")
    actions = [make_action(cluster, "deploy_ec2_node"), make_action(cluster, "deploy_ec2_node")]

    results, errors = at_once(lambda i: DeployEc2Node(actions[i]).run(context(cluster)), 2)

    assert len(results) == 1, (results, errors)
    assert len(errors) == 1 and isinstance(errors[0], ActionError), errors
    assert "max size" in str(errors[0])
    (iid,) = results[0].data["deployed_instance_ids"]
    assert [i["InstanceId"] for i in instances(moto)] == [iid]
    assert target_ids(moto, arn) == {iid}
    assert Node.objects.filter(cluster=cluster, state=NodeState.RUNNING).count() == 2
    assert not Node.objects.filter(cluster=cluster, state=NodeState.PENDING).exists()


def test_two_removes_at_min_size_plus_one_remove_exactly_one_node(moto):
    cluster = make_ec2_cluster(moto, min_size=1)
    for iid in launch_foreign(moto, 2):
        Node.objects.create(cluster=cluster, name=iid, address="127.0.0.1", ec2_instance_id=iid,
                            launched_by_pyscaler=True)
    actions = [make_action(cluster, "remove_ec2_node"), make_action(cluster, "remove_ec2_node")]

    results, errors = at_once(lambda i: RemoveEc2Node(actions[i]).run(context(cluster)), 2)

    assert len(results) == 1, (results, errors)
    assert len(errors) == 1 and "min size" in str(errors[0]), errors
    assert len(instances(moto)) == 1
    assert Node.objects.filter(cluster=cluster, state=NodeState.RUNNING).count() == 1
    assert Node.objects.filter(cluster=cluster, state=NodeState.TERMINATED).count() == 1
