"""RemoveEc2Node: shrink a cluster by one (or more) nodes PyScaler launched.

Order of work: claim the victims under the cluster lock (apps/control/sizing.py:
never below min_size, never a protected node, only PyScaler's own nodes unless
include_foreign) -> deregister from the load balancer (waiting, bounded, for
its draining) -> terminate -> wait until terminated (bounded) -> mark the Nodes
terminated (kept as history). The claim is checkpointed in the same
transaction, so a redelivered step finishes the same nodes instead of
choosing others. Nothing removable is a failure, not a silent success: a
scale-in chain must not go on to report a removal that did not happen.
"""
from __future__ import annotations

from django import forms

from apps.control import sizing

from .. import aws, ec2, load_balancer
from ..choices import ActionKindChoice
from ..contract import (
    FIRE_PERMISSION,
    MANAGE_NODES_PERMISSION,
    ActionError,
    ActionKind,
    StepContext,
    StepResult,
)
from ..registry import register

DEFAULT_WAIT_S = 300


@register
class RemoveEc2Node(ActionKind):
    """Deregister a node from the load balancer, terminate its instance and
    retire the Node, never below the cluster's minimum size."""

    kind = ActionKindChoice.REMOVE_EC2_NODE
    label = "RemoveEc2Node"
    changes_cluster_size = True
    fire_permissions = (FIRE_PERMISSION, MANAGE_NODES_PERMISSION)
    fire_label = "Remove a node…"

    class Params(forms.Form):
        count = forms.IntegerField(
            required=False, min_value=1, max_value=100, help_text="nodes to remove (default 1)"
        )
        choose = forms.ChoiceField(
            required=False,
            choices=[("newest", "newest"), ("oldest", "oldest"), ("breaching", "breaching")],
            help_text="which node goes: newest (default), oldest, or the breaching node",
        )
        include_foreign = forms.BooleanField(
            required=False,
            help_text="also remove nodes PyScaler did not launch (default false)",
        )
        wait_terminated_s = forms.IntegerField(
            required=False, min_value=1, max_value=3600,
            help_text="how long to wait for 'terminated' (default 300)",
        )

    @classmethod
    def removes_target(cls, action) -> bool:
        return action.params.get("choose") == "breaching"

    @classmethod
    def describe_step(cls, action) -> str:
        c = action.cluster
        bounds = f"never below min size {c.min_size}, never a protected node"
        if cls.removes_target(action):
            return f"removes the target node ({bounds})"
        who = "any" if action.params.get("include_foreign") else "PyScaler-launched"
        return (f"removes the {action.params.get('choose') or 'newest'} {who} node(s), "
                f"{action.params.get('count') or 1} at most ({bounds}); the target node does not choose which")

    def run(self, ctx: StepContext) -> StepResult:
        cluster = ctx.cluster
        nodes = self._resume(ctx)
        if nodes is None:
            nodes = sizing.claim_for_removal(
                cluster,
                count=ctx.node_count(self.params.get("count") or 1),
                choose=self.params.get("choose") or "newest",
                node_id=self._breaching_node_id(ctx),
                include_foreign=bool(self.params.get("include_foreign")),
                on_claim=lambda claimed: ctx.checkpoint(removing_node_ids=[n.pk for n in claimed]),
                actor=self.label,
            )
        names = ", ".join(n.name for n in nodes)
        ctx.log(f"removing {names}")
        live = sizing.not_terminated(nodes)
        ids = [n.ec2_instance_id for n in live]
        if ids:
            ec2_client = aws.cluster_client("ec2", cluster)
            balancer = load_balancer.for_cluster(cluster)
            wait_s = float(self.params.get("wait_terminated_s") or DEFAULT_WAIT_S)
            deregistered = False
            try:
                if balancer is not None:
                    ctx.log(balancer.deregister(ids, budget_s=min(wait_s, ctx.remaining() / 3)))
                deregistered = True
                ec2.terminate(ec2_client, ids)
                ctx.log(f"terminating {', '.join(ids)}")
                ec2.wait(ec2_client, "instance_terminated", ids, min(wait_s, ctx.remaining() - 5),
                         f"waiting for {', '.join(ids)} to terminate")
            except ActionError as exc:
                if not deregistered:
                    # Still in service: give the nodes back to the running set.
                    sizing.return_to_service(live)
                    exc.args = (f"{exc.args[0]} ({names} left running)",)
                else:
                    exc.args = (f"{exc.args[0]} ({names} left draining: out of the load balancer, "
                                f"maybe still running; resume the step to finish)",)
                raise
            sizing.mark_terminated(live)
        return StepResult(
            summary=f"removed {names} (instances {', '.join(n.ec2_instance_id for n in nodes)} terminated)",
            data={
                "removed_node_ids": [n.pk for n in nodes],
                "removed_node_names": [n.name for n in nodes],
                "removed_instance_ids": [n.ec2_instance_id for n in nodes],
            },
        )

    @staticmethod
    def _resume(ctx: StepContext) -> list | None:
        """The nodes an earlier delivery of this step claimed, if it did not finish them."""
        claimed = ctx.state.get("removing_node_ids") or []
        nodes = sizing.claimed_nodes(claimed)
        if not nodes:
            return None
        ctx.log(f"resuming the removal of {', '.join(n.name for n in nodes)} claimed by an earlier attempt")
        return nodes

    @staticmethod
    def _breaching_node_id(ctx: StepContext) -> int | None:
        """The node whose samples fired the trigger: the firing's reasons name
        it, else the chain's target node."""
        node = ctx.data.get("node_id", ctx.data.get("node"))
        if isinstance(node, dict):
            node = node.get("id")
        if isinstance(node, int):
            return node
        if isinstance(node, str) and node:
            found = sizing.node_id_by_name(ctx.cluster, node)
            if found is not None:
                return found
        return ctx.target_node.pk if ctx.target_node is not None else None
