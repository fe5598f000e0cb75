"""Firing by hand and node management, as the console and the API offer them.

Both front ends call these functions, so the permission checks, the
confirmation text and the recorded user are the same whichever is used. The
executions themselves are created by apps/control/executions.py, exactly as
automatic firings are.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.actions.choices import ActionKindChoice
from apps.actions.models import Action
from apps.control import executions
from apps.control.choices import NodeState, StepStatus
from apps.control.models import Cluster, Execution, Node, Trigger

from apps.web.access import FIRE, MANAGE_NODES

#: Kinds that change the cluster's nodes: firing them by hand is node
#: management and needs that permission as well as the firing one.
NODE_MANAGEMENT_KINDS = frozenset({ActionKindChoice.DEPLOY_EC2_NODE, ActionKindChoice.REMOVE_EC2_NODE})


def _describe_deploy(action: Action) -> str:
    c = action.cluster
    return (f"launches {action.params.get('count') or 1} EC2 node(s), at most {c.max_step_size} at once and never "
            f"past the cluster's max size {c.max_size}")


def _describe_remove(action: Action) -> str:
    c = action.cluster
    bounds = f"never below min size {c.min_size}, never a protected node"
    if action.params.get("choose") == "breaching":
        return f"removes the target node ({bounds})"
    who = "any" if action.params.get("include_foreign") else "PyScaler-launched"
    return (f"removes the {action.params.get('choose') or 'newest'} {who} node(s), {action.params.get('count') or 1} "
            f"at most ({bounds}); the target node does not choose which")


def _describe_email(action: Action) -> str:
    to = action.params.get("to") or []
    return f"sends an e-mail to {', '.join(to) if isinstance(to, list) else to}"


#: What a step of a kind will do, in the confirmation's words (kinds not
#: listed are described by their name and parameters alone).
DESCRIBE = {
    ActionKindChoice.DEPLOY_EC2_NODE: _describe_deploy,
    ActionKindChoice.REMOVE_EC2_NODE: _describe_remove,
    ActionKindChoice.EMAIL: _describe_email,
}


def removes_target(action: Action) -> bool:
    """A RemoveEc2Node that removes the chain's target node ("remove this node")."""
    return action.kind == ActionKindChoice.REMOVE_EC2_NODE and action.params.get("choose") == "breaching"


@dataclass(frozen=True)
class PlannedStep:
    position: int
    action: Action
    needs_target: bool

    @property
    def text(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in sorted(self.action.params.items()) if k != "body")
        where = " on the target node" if self.needs_target and not removes_target(self.action) else ""
        describe = DESCRIBE.get(self.action.kind)
        what = f": {describe(self.action)}" if describe else ""
        return (f"{self.action.name} ({self.action.get_kind_display()}{': ' + params if params else ''}){where}"
                f"{what}")


def _needs_target(action: Action) -> bool:
    if removes_target(action):
        return True
    try:
        return bool(action.kind_class().needs_target_node)
    except LookupError:
        return False


def plan_trigger(trigger: Trigger) -> list[PlannedStep]:
    return [PlannedStep(i, a, _needs_target(a)) for i, a in enumerate(trigger.ordered_actions(), start=1)]


def plan_action(action: Action) -> list[PlannedStep]:
    return [PlannedStep(1, action, _needs_target(action))]


def required_perms(actions: list[Action]) -> tuple[str, ...]:
    return required_perms_of_kinds(a.kind for a in actions)


def required_perms_of_kinds(kinds) -> tuple[str, ...]:
    if any(kind in NODE_MANAGEMENT_KINDS for kind in kinds):
        return (FIRE, MANAGE_NODES)
    return (FIRE,)


def check_may_fire(user, actions: list[Action]) -> None:
    _check_perms(user, required_perms(actions))


def _check_perms(user, perms: tuple[str, ...]) -> None:
    missing = [p for p in perms if not user.has_perm(p)]
    if missing:
        raise PermissionDenied(f"you need the permission(s) {', '.join(missing)}")


def firable_nodes(cluster: Cluster):
    """Nodes an operator may pick as a firing's target."""
    return cluster.nodes.exclude(state=NodeState.TERMINATED).order_by("name")


def _manual_reasons(user, what: str, target: Node | None) -> dict:
    reasons = {"manual": True, "fired": what, "user": user.get_username()}
    if target is not None:
        reasons.update({"node": target.name, "node_id": target.pk})
    return reasons


def fire_trigger_by_hand(trigger: Trigger, user, target_node: Node | None = None) -> Execution:
    """Run a trigger's chain now, recorded as fired by ``user``. Cooldown and
    breach counts do not apply: a person decided."""
    check_may_fire(user, list(trigger.ordered_actions()))
    return executions.fire_trigger(
        trigger,
        reasons=_manual_reasons(user, f"trigger {trigger.name}", target_node),
        fired_by_user=user,
        target_node=target_node,
    )


def fire_action_by_hand(action: Action, user, target_node: Node | None = None) -> Execution:
    check_may_fire(user, [action])
    return executions.fire_action(
        action,
        cluster=action.cluster,
        target_node=target_node,
        fired_by_user=user,
        reasons=_manual_reasons(user, f"action {action.name}", target_node),
    )


def resume_by_hand(execution: Execution, user) -> Execution:
    """Resume runs the steps left as they were recorded (kind and parameters
    at firing time), so those kinds decide the permissions, whatever the
    actions have become since."""
    first = execution.steps.exclude(status=StepStatus.SUCCEEDED).order_by("position").first()
    if first is not None:  # none left: executions.resume says so
        again = execution.steps.filter(position__gte=first.position).values_list("kind", flat=True)
        _check_perms(user, required_perms_of_kinds(list(again)))
    return executions.resume(execution, user)


def set_collection(node: Node, enabled: bool, user) -> Node:
    """Turn collection from a node on or off; recorded in the node's admin
    history, so "who paused collection on this node?" has an answer."""
    if not user.has_perm(MANAGE_NODES):
        raise PermissionDenied(f"you need the permission {MANAGE_NODES}")
    if node.collection_enabled != enabled:
        Node.objects.filter(pk=node.pk).update(collection_enabled=enabled, updated=timezone.now())
        node.collection_enabled = enabled
        LogEntry.objects.log_actions(
            user.pk,
            Node.objects.filter(pk=node.pk),
            CHANGE,
            change_message=f"collection {'enabled' if enabled else 'disabled'} from the console",
            single_object=True,
        )
    return node


FiringError = executions.FiringError
