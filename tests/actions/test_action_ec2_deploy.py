"""DeployEc2Node against moto's real HTTP server: launching, load balancer
registration, bounds, idempotent redelivery and AWS errors."""
from __future__ import annotations

import pytest

from apps.actions import ec2
from apps.control import sizing
from apps.actions.aws import client
from apps.actions.contract import ActionError
from apps.actions.kinds.deploy_ec2_node import DeployEc2Node
from apps.control.choices import NodeState
from apps.control.models import Node
from tests.ec2kit import (
    aws,
    classic_ids,
    context,
    instances,
    make_classic_elb,
    make_target_group,
    state_of,
    target_ids,
)
from tests.factories import make_action, make_ec2_cluster

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]

KIND = "deploy_ec2_node"


def deploy(cluster, ctx=None, **params):
    ctx = ctx or context(cluster)
    return DeployEc2Node(make_action(cluster, KIND, params)).run(ctx), ctx


def test_it_launches_registers_with_the_target_group_and_creates_the_node(moto):
    arn = make_target_group(moto)
    cluster = make_ec2_cluster(moto, target_group_arn=arn, ec2_tags={"team": "web"})

    result, ctx = deploy(cluster)

    (instance,) = instances(moto, step=ctx.step_id, cluster=cluster.name)
    iid = instance["InstanceId"]
    assert instance["ImageId"] == cluster.ec2_ami
    assert instance["InstanceType"] == "t3.micro"
    assert instance["SubnetId"] == cluster.ec2_subnet_id
    assert {"Key": "team", "Value": "web"} in instance["Tags"]
    assert state_of(moto, iid) == "running"
    assert target_ids(moto, arn) == {iid}

    node = Node.objects.get(ec2_instance_id=iid)
    assert node.cluster == cluster
    assert node.name == iid
    assert node.address == instance["PrivateIpAddress"]  # stored, never connected to
    assert node.state == NodeState.RUNNING
    assert node.launched_by_pyscaler and node.collection_enabled and not node.protected
    assert result.target_node_id == node.pk
    assert result.data == {"deployed_node_ids": [node.pk], "deployed_node_names": [iid],
                           "deployed_instance_ids": [iid]}
    assert iid in result.summary and "target group web" in result.summary
    # No slot is left behind.
    assert list(Node.objects.filter(cluster=cluster).values_list("name", flat=True)) == [iid]


def test_it_registers_with_a_classic_elb(moto):
    name = make_classic_elb(moto)
    cluster = make_ec2_cluster(moto, classic_elb_name=name)

    result, _ = deploy(cluster)

    (iid,) = result.data["deployed_instance_ids"]
    assert classic_ids(moto, name) == {iid}
    assert "classic ELB web-classic" in result.summary


def test_instance_type_parameter_overrides_the_cluster(moto):
    cluster = make_ec2_cluster(moto)
    result, _ = deploy(cluster, instance_type="m5.large")
    (instance,) = instances(moto)
    assert instance["InstanceType"] == "m5.large"
    assert result.data["deployed_instance_ids"] == [instance["InstanceId"]]


def test_count_is_capped_by_max_step_size(moto):
    cluster = make_ec2_cluster(moto, max_step_size=2, max_size=10)
    action = make_action(cluster, KIND)
    action.params = {"count": 2}  # the admin refuses count > max_step_size; the cluster may shrink it later
    action.save()
    cluster.max_step_size = 1
    cluster.save()

    ctx = context(cluster)
    result = DeployEc2Node(action).run(ctx)

    assert len(result.data["deployed_instance_ids"]) == 1
    assert len(instances(moto)) == 1
    assert "launching 1 node(s), capped by max_step_size 1" in ctx.output


def test_count_is_capped_by_the_room_under_max_size(moto):
    cluster = make_ec2_cluster(moto, max_step_size=3, max_size=3)
    Node.objects.create(cluster=cluster, name="existing", address="127.0.0.1")

    result, ctx = deploy(cluster, count=3)

    assert len(result.data["deployed_instance_ids"]) == 2
    assert len(instances(moto)) == 2
    assert "capped by max_size 3 with 1 node(s)" in result.summary
    assert Node.objects.filter(cluster=cluster, state=NodeState.RUNNING).count() == 3


def test_it_refuses_at_max_size_and_launches_nothing(moto):
    cluster = make_ec2_cluster(moto, max_size=1)
    Node.objects.create(cluster=cluster, name="existing", address="127.0.0.1")

    with pytest.raises(ActionError, match=r"at its max size: 1 node\(s\), max_size 1") as info:
        deploy(cluster)

    assert not info.value.retryable
    assert instances(moto) == []
    assert Node.objects.filter(cluster=cluster).count() == 1


def test_pending_and_running_nodes_count_against_max_size_but_terminated_do_not(moto):
    cluster = make_ec2_cluster(moto, max_size=2)
    Node.objects.create(cluster=cluster, name="old", address="127.0.0.1", state=NodeState.TERMINATED)
    Node.objects.create(cluster=cluster, name="launching", address="", state=NodeState.PENDING)

    deploy(cluster)  # room for one
    with pytest.raises(ActionError, match="max size"):
        deploy(cluster)
    assert len(instances(moto)) == 1


def test_running_the_same_step_twice_launches_one_instance(moto):
    arn = make_target_group(moto)
    cluster = make_ec2_cluster(moto, target_group_arn=arn)
    action = make_action(cluster, KIND)
    ctx = context(cluster)

    first = DeployEc2Node(action).run(ctx)
    again = DeployEc2Node(action).run(context(cluster, step_id=ctx.step_id))

    assert len(instances(moto)) == 1
    assert again.data == first.data
    assert again.target_node_id == first.target_node_id
    assert "earlier delivery" in again.summary
    assert Node.objects.filter(cluster=cluster).count() == 1


def test_a_redelivered_step_adopts_the_instances_an_earlier_delivery_launched(moto):
    """The worker died after run_instances returned, before the Node rows
    were written: the redelivered step finds the instance by its tag."""
    arn = make_target_group(moto)
    cluster = make_ec2_cluster(moto, target_group_arn=arn)
    ctx = context(cluster)
    # What the first delivery got done before dying: the reservation and the launch.
    reservation = sizing.reserve_slots(cluster, 1, ctx.step_id)
    (launched,) = ec2.launch(client("ec2"), cluster, 1, ctx.step_id, ec2.client_token(ctx.step_id, 0))

    result = DeployEc2Node(make_action(cluster, KIND)).run(context(cluster, step_id=ctx.step_id))

    assert [i["InstanceId"] for i in instances(moto)] == [launched.id]
    assert result.data["deployed_instance_ids"] == [launched.id]
    node = Node.objects.get(pk=result.target_node_id)
    assert node.pk == reservation.slots[0].pk  # the slot became the node
    assert node.state == NodeState.RUNNING
    assert target_ids(moto, arn) == {launched.id}


def test_a_retry_after_a_rolled_back_attempt_launches_afresh(moto):
    """A failed attempt terminated its instance; resuming the same step must
    not adopt the terminated one, and uses a new ClientToken."""
    cluster = make_ec2_cluster(moto)
    ctx = context(cluster)
    (dead,) = ec2.launch(client("ec2"), cluster, 1, ctx.step_id, ec2.client_token(ctx.step_id, 0))
    client("ec2").terminate_instances(InstanceIds=[dead.id])

    result = DeployEc2Node(make_action(cluster, KIND)).run(ctx)

    (iid,) = result.data["deployed_instance_ids"]
    assert iid != dead.id
    assert any(f"ClientToken {ctx.step_id}-1" in line for line in ctx.output)


def test_an_aws_error_fails_with_aws_message_and_leaves_nothing(moto):
    arn = make_target_group(moto)
    cluster = make_ec2_cluster(moto, target_group_arn=arn, ec2_subnet_id="subnet-0123456789abcdef0")

    with pytest.raises(ActionError) as info:
        deploy(cluster)

    message = str(info.value)
    assert "InvalidSubnetID.NotFound" in message
    assert "subnet-0123456789abcdef0" in message  # AWS's own message names it
    assert not info.value.retryable
    assert instances(moto) == []
    assert target_ids(moto, arn) == set()
    assert not Node.objects.filter(cluster=cluster).exists()  # the reservation was given back


def test_a_failed_registration_terminates_what_the_step_launched(moto):
    """The load balancer refuses (its target group is gone): nothing may stay
    launched-but-unregistered silently."""
    arn = make_target_group(moto)
    cluster = make_ec2_cluster(moto, target_group_arn=arn)
    aws(moto, "elbv2").delete_target_group(TargetGroupArn=arn)

    with pytest.raises(ActionError) as info:
        deploy(cluster)

    message = str(info.value)
    assert "TargetGroupNotFound" in message
    (launched,) = instances(moto, states=("shutting-down", "terminated"))
    assert "rolled back: " in message and f"terminated {launched['InstanceId']}" in message
    assert instances(moto) == []
    assert not Node.objects.filter(cluster=cluster).exists()


def test_missing_launch_settings_are_refused_before_calling_aws(moto):
    cluster = make_ec2_cluster(moto)
    action = make_action(cluster, KIND)
    cluster.ec2_ami = ""
    cluster.save()
    with pytest.raises(ActionError, match="needs an AMI and an instance type"):
        DeployEc2Node(action).run(context(cluster))
    assert instances(moto) == []


def test_node_address_override_points_the_node_at_a_loopback_host(moto, settings):
    settings.NODE_ADDRESS_OVERRIDE = {"*": ("127.0.0.1", 2222)}
    cluster = make_ec2_cluster(moto)

    result, ctx = deploy(cluster)

    node = Node.objects.get(pk=result.target_node_id)
    (instance,) = instances(moto)
    assert (node.address, node.ssh_port) == ("127.0.0.1", 2222)
    assert any(instance["PrivateIpAddress"] in line and "NODE_ADDRESS_OVERRIDE" in line for line in ctx.output)


def test_address_override_by_instance_id_wins_over_the_wildcard(moto, settings):
    cluster = make_ec2_cluster(moto)
    ctx = context(cluster)
    (launched,) = ec2.launch(client("ec2"), cluster, 1, ctx.step_id, "t")
    settings.NODE_ADDRESS_OVERRIDE = {"*": ("127.0.0.1", None), launched.id: ("127.0.0.5", 2200)}
    result = DeployEc2Node(make_action(cluster, KIND)).run(ctx)
    node = Node.objects.get(pk=result.target_node_id)
    assert (node.address, node.ssh_port) == ("127.0.0.5", 2200)
