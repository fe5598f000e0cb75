"""DeployEc2Node: grow a cluster by launching EC2 instances.

Order of work, each part safe to redo when the step is redelivered:
reserve room under the cluster's bounds (a lock, apps/control/sizing.py) ->
find instances an earlier delivery launched (by tag) or launch the missing
ones -> wait until running (bounded) -> register with the load balancer ->
turn the reserved slots into running Nodes. A failure after launching rolls
back what this step launched.
"""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

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
#: Seconds of the step's time kept for rolling back after a failed wait.
ROLLBACK_RESERVE_S = 15


@register
class DeployEc2Node(ActionKind):
    """Launch EC2 instances with the cluster's launch settings, register them
    with its load balancer and create their Nodes."""

    kind = ActionKindChoice.DEPLOY_EC2_NODE
    label = "DeployEc2Node"
    sets_target_node = True
    changes_cluster_size = True
    fire_permissions = (FIRE_PERMISSION, MANAGE_NODES_PERMISSION)
    fire_label = "Deploy a node now…"

    class Params(forms.Form):
        count = forms.IntegerField(
            required=False, min_value=1, max_value=100,
            help_text="nodes to launch (default 1; capped by the cluster's max step size and max size)",
        )
        instance_type = forms.CharField(
            required=False, max_length=30, help_text="overrides the cluster's instance type"
        )
        wait_running_s = forms.IntegerField(
            required=False, min_value=1, max_value=3600,
            help_text="how long to wait for 'running' (default 300)",
        )

    @classmethod
    def describe_step(cls, action) -> str:
        c = action.cluster
        return (f"launches {action.params.get('count') or 1} EC2 node(s), at most {c.max_step_size} at once "
                f"and never past the cluster's max size {c.max_size}")

    @classmethod
    def check_cluster(cls, params, cluster) -> None:
        if cluster is None:
            return
        missing = [label for label, value in (("AMI", cluster.ec2_ami),
                                              ("instance type", params.get("instance_type") or cluster.ec2_instance_type))
                   if not value]
        if missing:
            raise ValidationError(
                f"cluster {cluster.name!r} has no {' and no '.join(missing)} set; DeployEc2Node needs them"
            )
        if params.get("count") and params["count"] > cluster.max_step_size:
            raise ValidationError(
                f"count: {params['count']} is more than cluster {cluster.name!r}'s max step size "
                f"({cluster.max_step_size})"
            )

    def run(self, ctx: StepContext) -> StepResult:
        if not ctx.step_id:
            raise ActionError("DeployEc2Node needs the step's id: it tags and finds its instances by it")
        cluster = ctx.cluster
        # The cluster's settings may have changed since the action was saved.
        if not cluster.ec2_ami or not (self.params.get("instance_type") or cluster.ec2_instance_type):
            raise ActionError(f"cluster {cluster.name!r} needs an AMI and an instance type for DeployEc2Node")
        ec2_client = aws.cluster_client("ec2", cluster)
        balancer = load_balancer.for_cluster(cluster)

        # What an earlier delivery of this same step already did.
        tagged = ec2.step_instances(ec2_client, cluster.name, ctx.step_id)
        live = [i for i in tagged if i.live]
        known = sizing.nodes_by_instance(i.id for i in live)
        if live and len(known) == len(live):
            ctx.log(f"an earlier delivery of this step deployed {', '.join(sorted(known))}; not launching again")
            if balancer is not None:
                balancer.register([i.id for i in live])  # idempotent: make sure it got that far
            return self._result([known[i.id] for i in live], balancer, resumed=True)

        reservation = sizing.reserve_slots(
            cluster, ctx.node_count(self.params.get("count") or 1), ctx.step_id, at_least=len(live), actor=self.label
        )
        slots = reservation.slots
        if reservation.capped_by:
            ctx.log(f"launching {len(slots)} node(s), capped by {reservation.capped_by}")
        instances = list(live[: len(slots)])
        registered = False
        try:
            missing = len(slots) - len(instances)
            if missing > 0:
                token = ec2.client_token(ctx.step_id, len(tagged))
                launched = ec2.launch(
                    ec2_client, cluster, missing, ctx.step_id, token, self.params.get("instance_type")
                )
                instances += launched
                ctx.log(f"launched {', '.join(i.id for i in launched)} (ClientToken {token})")
            else:
                ctx.log(f"adopting {', '.join(i.id for i in instances)} launched by an earlier delivery")
            ids = [i.id for i in instances]
            budget = min(float(self.params.get("wait_running_s") or DEFAULT_WAIT_S), ctx.remaining() - ROLLBACK_RESERVE_S)
            ec2.wait(ec2_client, "instance_running", ids, budget, f"waiting for {', '.join(ids)} to run")
            instances = ec2.describe(ec2_client, ids)
            if balancer is not None:
                registered = True  # from here on, a rollback deregisters first
                balancer.register(ids)
                ctx.log(f"registered {', '.join(ids)} with {balancer.label}")
            nodes = sizing.fill_slots(slots, [self._launched(i, ctx) for i in instances])
        except BaseException as exc:
            self._roll_back(ctx, ec2_client, balancer if registered else None, slots,
                            [i.id for i in instances], exc)
            raise
        return self._result(nodes, balancer, capped_by=reservation.capped_by)

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def _launched(instance: ec2.Instance, ctx: StepContext) -> sizing.Launched:
        override = settings.NODE_ADDRESS_OVERRIDE.get(instance.id) or settings.NODE_ADDRESS_OVERRIDE.get("*")
        if override:
            host, port = override
            ctx.log(
                f"{instance.id}: address {instance.address} replaced by {host}:{port or 'default port'} "
                f"(NODE_ADDRESS_OVERRIDE, a test/demo setting)"
            )
            return sizing.Launched(instance.id, host, port)
        return sizing.Launched(instance.id, instance.address)

    @staticmethod
    def _roll_back(ctx, ec2_client, balancer, slots, instance_ids: list[str], exc: BaseException) -> None:
        """Leave nothing half-done silently: terminate what this step launched
        (deregistering it first) and give the reserved room back; if that fails
        too, keep the instances visible as pending Nodes and say so."""
        notes = []
        if instance_ids:
            if balancer is not None:
                try:
                    notes.append(balancer.deregister(instance_ids, budget_s=0))
                except ActionError as dereg_exc:  # terminating matters more; say so and go on
                    notes.append(f"deregistration failed: {dereg_exc}")
            try:
                ec2.terminate(ec2_client, instance_ids)
                notes.append(f"terminated {', '.join(instance_ids)}")
                sizing.release_slots(slots)
            except Exception as cleanup_exc:  # the original error stays the one raised
                sizing.record_unterminated(slots, instance_ids)
                notes.append(
                    f"COULD NOT TERMINATE {', '.join(instance_ids)} ({cleanup_exc}); they are kept as pending "
                    f"nodes of cluster {ctx.cluster.name!r}: terminate them by hand"
                )
        else:
            sizing.release_slots(slots)
        if notes:
            ctx.log("rolled back: " + "; ".join(notes))
            if isinstance(exc, ActionError):
                exc.args = (f"{exc.args[0]} (rolled back: {'; '.join(notes)})",)

    @staticmethod
    def _result(nodes: list, balancer, capped_by: str = "", resumed: bool = False) -> StepResult:
        ids = [n.ec2_instance_id for n in nodes]
        where = f", registered with {balancer.label}" if balancer is not None else ", no load balancer configured"
        summary = f"deployed {', '.join(f'{n.name} ({n.address})' for n in nodes)}{where}"
        if capped_by:
            summary += f"; count capped by {capped_by}"
        if resumed:
            summary += " (completed by an earlier delivery of this step)"
        return StepResult(
            summary=summary,
            data={
                "deployed_node_ids": [n.pk for n in nodes],
                "deployed_node_names": [n.name for n in nodes],
                "deployed_instance_ids": ids,
            },
            target_node_id=nodes[0].pk,
        )
