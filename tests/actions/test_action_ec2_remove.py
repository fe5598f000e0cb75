"""RemoveEc2Node against moto's real HTTP server: which node goes, the min
bound, deregistration, termination, and resuming a claimed removal."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.actions.contract import ActionError
from apps.actions.kinds.remove_ec2_node import RemoveEc2Node
from apps.control.choices import NodeState
from apps.control.models import Node
from tests.ec2kit import (
    classic_ids,
    context,
    make_classic_elb,
    make_target_group,
    state_of,
    target_ids,
    aws,
)
from tests.factories import make_action, make_ec2_cluster, nodes_in_moto

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]

KIND = "remove_ec2_node"


def remove(cluster, ctx=None, **params):
    ctx = ctx or context(cluster)
    return RemoveEc2Node(make_action(cluster, KIND, params)).run(ctx), ctx


def test_it_removes_the_newest_node_deregisters_and_terminates_it(moto):
    arn = make_target_group(moto)
    cluster = make_ec2_cluster(moto, target_group_arn=arn)
    old, new = nodes_in_moto(moto, cluster, 2)
    aws(moto, "elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": old.name}, {"Id": new.name}])

    result, ctx = remove(cluster)

    assert result.data["removed_node_ids"] == [new.pk]
    assert result.data["removed_instance_ids"] == [new.ec2_instance_id]
    assert state_of(moto, new.ec2_instance_id) == "terminated"
    assert state_of(moto, old.ec2_instance_id) == "running"
    assert target_ids(moto, arn) == {old.ec2_instance_id}
    new.refresh_from_db()
    old.refresh_from_db()
    assert new.state == NodeState.TERMINATED and not new.collection_enabled  # kept as history
    assert old.state == NodeState.RUNNING
    assert any("deregistered from target group web" in line for line in ctx.output)


def test_oldest_first_when_configured(moto):
    cluster = make_ec2_cluster(moto)
    old, new = nodes_in_moto(moto, cluster, 2)
    result, _ = remove(cluster, choose="oldest")
    assert result.data["removed_node_ids"] == [old.pk]
    assert state_of(moto, new.ec2_instance_id) == "running"


def test_it_deregisters_from_a_classic_elb(moto):
    name = make_classic_elb(moto)
    cluster = make_ec2_cluster(moto, classic_elb_name=name)
    a, b = nodes_in_moto(moto, cluster, 2)
    aws(moto, "elb").register_instances_with_load_balancer(
        LoadBalancerName=name, Instances=[{"InstanceId": a.name}, {"InstanceId": b.name}])

    remove(cluster)

    assert classic_ids(moto, name) == {a.name}
    assert state_of(moto, b.name) == "terminated"


def test_it_never_picks_a_protected_or_foreign_node(moto):
    cluster = make_ec2_cluster(moto)
    ours, = nodes_in_moto(moto, cluster, 1, minutes_apart=0)
    protected, = nodes_in_moto(moto, cluster, 1, protected=True)
    foreign, = nodes_in_moto(moto, cluster, 1, launched_by_pyscaler=False)
    # The protected and foreign nodes are newer: "newest" would pick them if allowed.
    Node.objects.filter(pk=ours.pk).update(created=timezone.now() - timedelta(days=1))

    result, _ = remove(cluster)
    assert result.data["removed_node_ids"] == [ours.pk]

    with pytest.raises(ActionError, match="has no node RemoveEc2Node may remove") as info:
        remove(cluster)
    assert not info.value.retryable
    assert state_of(moto, protected.name) == "running"
    assert state_of(moto, foreign.name) == "running"
    assert set(Node.objects.filter(state=NodeState.RUNNING).values_list("pk", flat=True)) == {
        protected.pk, foreign.pk}


def test_include_foreign_allows_nodes_pyscaler_did_not_launch_but_never_protected_ones(moto):
    cluster = make_ec2_cluster(moto)
    foreign, = nodes_in_moto(moto, cluster, 1, launched_by_pyscaler=False)
    protected, = nodes_in_moto(moto, cluster, 1, protected=True, launched_by_pyscaler=False)
    Node.objects.filter(pk=foreign.pk).update(created=timezone.now() - timedelta(days=1))

    result, _ = remove(cluster, include_foreign=True, count=2)

    assert result.data["removed_node_ids"] == [foreign.pk]
    assert state_of(moto, protected.name) == "running"


def test_it_never_goes_below_min_size(moto):
    cluster = make_ec2_cluster(moto, min_size=2)
    nodes_in_moto(moto, cluster, 3)

    result, _ = remove(cluster, count=3)  # room for one only
    assert len(result.data["removed_node_ids"]) == 1

    with pytest.raises(ActionError, match=r"at its min size: 2 running node\(s\), min_size 2"):
        remove(cluster)
    assert Node.objects.filter(cluster=cluster, state=NodeState.RUNNING).count() == 2


def test_min_size_zero_allows_removing_the_last_node(moto):
    cluster = make_ec2_cluster(moto, min_size=0)
    (only,) = nodes_in_moto(moto, cluster, 1)
    remove(cluster)
    assert state_of(moto, only.name) == "terminated"
    with pytest.raises(ActionError, match="min size: 0 running"):
        remove(cluster)


def test_the_breaching_node_goes_when_configured(moto):
    cluster = make_ec2_cluster(moto)
    a, b, c = nodes_in_moto(moto, cluster, 3)
    result, _ = remove(cluster, context(cluster, data={"node": b.name, "node_id": b.pk}), choose="breaching")
    assert result.data["removed_node_ids"] == [b.pk]
    assert state_of(moto, b.name) == "terminated"
    assert state_of(moto, c.name) == "running"


def test_a_protected_breaching_node_is_refused_with_the_reason(moto):
    cluster = make_ec2_cluster(moto)
    a, b = nodes_in_moto(moto, cluster, 2)
    Node.objects.filter(pk=b.pk).update(protected=True)
    with pytest.raises(ActionError, match=f"node '{b.name}' cannot be removed: it is protected"):
        remove(cluster, context(cluster, target_node=b), choose="breaching")
    assert state_of(moto, b.name) == "running"
    assert Node.objects.get(pk=b.pk).state == NodeState.RUNNING


def test_an_aws_error_before_deregistration_leaves_the_node_running(moto):
    arn = make_target_group(moto)
    cluster = make_ec2_cluster(moto, target_group_arn=arn)
    (node,) = nodes_in_moto(moto, cluster, 1)
    aws(moto, "elbv2").delete_target_group(TargetGroupArn=arn)

    with pytest.raises(ActionError, match=r"TargetGroupNotFound.*left running"):
        remove(cluster)

    assert state_of(moto, node.name) == "running"
    assert Node.objects.get(pk=node.pk).state == NodeState.RUNNING


def test_a_redelivered_step_finishes_the_nodes_the_first_attempt_claimed(moto):
    """The first attempt claimed (checkpointed) a node and died; meanwhile a
    newer node appeared. The redelivered step removes the claimed one."""
    cluster = make_ec2_cluster(moto)
    claimed, newer = nodes_in_moto(moto, cluster, 2)
    Node.objects.filter(pk=claimed.pk).update(state=NodeState.DRAINING)

    result, ctx = remove(cluster, context(cluster, state={"removing_node_ids": [claimed.pk]}))

    assert result.data["removed_node_ids"] == [claimed.pk]
    assert state_of(moto, claimed.name) == "terminated"
    assert state_of(moto, newer.name) == "running"
    assert any("claimed by an earlier attempt" in line for line in ctx.output)


def test_the_claim_is_checkpointed_in_the_step_state(moto):
    cluster = make_ec2_cluster(moto)
    (node,) = nodes_in_moto(moto, cluster, 1)
    persisted: list[dict] = []
    ctx = context(cluster, persist_state=persisted.append)
    remove(cluster, ctx)
    assert persisted == [{"removing_node_ids": [node.pk]}]


@pytest.mark.parametrize("balancer", ["target_group", "classic_elb"])
def test_a_redelivered_step_whose_node_was_already_deregistered_finishes_it(moto, balancer):
    """The first attempt deregistered the claimed node and died before the
    terminate: the load balancer no longer knows it, which must not fail the
    redelivered step (ELBv2 answers InvalidTarget to a second deregistration)."""
    if balancer == "target_group":
        cluster = make_ec2_cluster(moto, target_group_arn=make_target_group(moto))
    else:
        cluster = make_ec2_cluster(moto, classic_elb_name=make_classic_elb(moto))
    kept, claimed = nodes_in_moto(moto, cluster, 2)
    if balancer == "target_group":
        aws(moto, "elbv2").register_targets(TargetGroupArn=cluster.target_group_arn, Targets=[{"Id": kept.name}])
    else:
        aws(moto, "elb").register_instances_with_load_balancer(
            LoadBalancerName=cluster.classic_elb_name, Instances=[{"InstanceId": kept.name}])
    Node.objects.filter(pk=claimed.pk).update(state=NodeState.DRAINING)

    result, ctx = remove(cluster, context(cluster, state={"removing_node_ids": [claimed.pk]}))

    assert result.data["removed_node_ids"] == [claimed.pk]
    assert state_of(moto, claimed.name) == "terminated" and state_of(moto, kept.name) == "running"
    assert any("already deregistered" in line for line in ctx.output)
    if balancer == "target_group":
        assert target_ids(moto, cluster.target_group_arn) == {kept.name}
    else:
        assert classic_ids(moto, cluster.classic_elb_name) == {kept.name}
