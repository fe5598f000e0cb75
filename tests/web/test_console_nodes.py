"""Node management from the console: deploy a node now, remove a chosen
node (EC2 on moto's real HTTP server; the execution's steps run inline, as a
worker would run them), and what the confirmations say."""
from __future__ import annotations

import pytest

from apps.control.chain import run_inline
from apps.control.choices import ExecutionStatus, NodeState
from apps.control.models import Execution, Node
from tests.ec2kit import state_of
from tests.factories import make_action, make_ec2_cluster, nodes_in_moto

pytestmark = pytest.mark.django_db


@pytest.fixture
def ec2_cluster(moto):
    return make_ec2_cluster(moto, name="fleet", min_size=1, max_size=3, max_step_size=1)


def test_deploy_a_node_now(operator_client, operator_user, ec2_cluster, moto, settings):
    settings.AWS_WAITER_DELAY_S = 0.2
    deploy = make_action(ec2_cluster, "deploy_ec2_node", {"wait_running_s": 60}, timeout_s=120)
    page = operator_client.get("/clusters/fleet/").content.decode()
    assert "Deploy a node now…" in page
    confirm = operator_client.get(f"/clusters/fleet/actions/{deploy.pk}/fire/").content.decode()
    assert "launches 1 EC2 node(s), at most 1 at once and never past the cluster&#x27;s max size 3" in confirm

    response = operator_client.post(f"/clusters/fleet/actions/{deploy.pk}/fire/", {})
    assert response.status_code == 302
    execution = run_inline(Execution.objects.get())
    assert execution.status == ExecutionStatus.SUCCEEDED, execution.steps.get().error
    assert execution.fired_by_user == operator_user
    (node,) = Node.objects.filter(cluster=ec2_cluster)
    assert node.state == NodeState.RUNNING and node.launched_by_pyscaler
    assert state_of(moto, node.ec2_instance_id) == "running"
    assert (execution.size_before, execution.size_after) == (0, 1)


def test_remove_a_chosen_node(operator_client, ec2_cluster, moto, settings):
    settings.AWS_WAITER_DELAY_S = 0.2
    first, chosen, last = nodes_in_moto(moto, ec2_cluster, 3)
    remove = make_action(ec2_cluster, "remove_ec2_node", {"choose": "breaching", "wait_terminated_s": 60},
                         timeout_s=120)
    make_action(ec2_cluster, "remove_ec2_node", {"choose": "newest"}, timeout_s=120)  # offers no per-node button

    page = operator_client.get("/clusters/fleet/").content.decode()
    link = f"/clusters/fleet/actions/{remove.pk}/fire/?target_node={chosen.pk}"
    assert link in page and page.count("Remove…</a>") == 3  # one per node: the choose=breaching action
    confirm = operator_client.get(link).content.decode()
    assert "removes the target node (never below min size 1, never a protected node)" in confirm
    assert f'<option value="{chosen.pk}" selected>' in confirm

    operator_client.post(f"/clusters/fleet/actions/{remove.pk}/fire/", {"target_node": chosen.pk})
    execution = run_inline(Execution.objects.get())
    assert execution.status == ExecutionStatus.SUCCEEDED, execution.steps.get().error
    for node in (first, chosen, last):
        node.refresh_from_db()
    assert chosen.state == NodeState.TERMINATED
    assert first.state == last.state == NodeState.RUNNING  # not the newest: the chosen one
    assert state_of(moto, chosen.ec2_instance_id) in ("shutting-down", "terminated")


def test_a_newest_node_removal_says_the_target_does_not_choose(operator_client, ec2_cluster, moto):
    remove = make_action(ec2_cluster, "remove_ec2_node", {"choose": "newest", "count": 2}, timeout_s=120)
    confirm = operator_client.get(f"/clusters/fleet/actions/{remove.pk}/fire/").content.decode()
    assert "removes the newest PyScaler-launched node(s), 2 at most" in confirm
    assert "the target node does not choose which" in confirm
