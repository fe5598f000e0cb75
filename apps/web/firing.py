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

from apps.actions.models import Action
from apps.control import executions
from apps.control.choices import NodeState
from apps.control.models import Cluster, Execution, Node, Trigger
from apps.web.access import MANAGE_NODES


def _kind(action: Action):
    """The action's kind class (apps/actions/contract.py), None if unknown."""
    try:
        return action.kind_class()
    except LookupError:
        return None


def removes_target(action: Action) -> bool:
    """Whether the action retires the chain's target node ("remove this node")."""
    kind = _kind(action)
    return kind is not None and kind.removes_target(action)


@dataclass(frozen=True)
class PlannedStep:
    position: int
    action: Action
    needs_target: bool

    @property
    def text(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in sorted(self.action.params.items()) if k != "body")
        where = " on the target node" if self.needs_target and not removes_target(self.action) else ""
        kind = _kind(self.action)
        described = kind.describe_step(self.action) if kind is not None else ""
        what = f": {described}" if described else ""
        return (f"{self.action.name} ({self.action.get_kind_display()}{': ' + params if params else ''}){where}"
                f"{what}")


def _needs_target(action: Action) -> bool:
    kind = _kind(action)
    return kind is not None and kind.needs_target(action)


def plan_trigger(trigger: Trigger) -> list[PlannedStep]:
    return [PlannedStep(i, a, _needs_target(a)) for i, a in enumerate(trigger.ordered_actions(), start=1)]


def plan_action(action: Action) -> list[PlannedStep]:
    return [PlannedStep(1, action, _needs_target(action))]


check_may_fire = executions.check_may_fire


def firable_nodes(cluster: Cluster):
    """Nodes an operator may pick as a firing's target."""
    return cluster.nodes.exclude(state=NodeState.TERMINATED).order_by("name")


def _manual_reasons(user, what: str, target: Node | None, via: str) -> dict:
    """What a firing by hand records; ``via`` ("console", "api") is where the
    person fired from, for the execution's words (apps/control/why.py)."""
    reasons = {"manual": True, "fired": what, "user": user.get_username(), "via": via}
    if target is not None:
        reasons.update({"node": target.name, "node_id": target.pk})
    return reasons


def fire_trigger_by_hand(trigger: Trigger, user, target_node: Node | None = None, *,
                         via: str = "console") -> Execution:
    """Run a trigger's chain now, recorded as fired by ``user``. Cooldown and
    breach counts do not apply: a person decided."""
    check_may_fire(user, list(trigger.ordered_actions()))
    return executions.fire_trigger(
        trigger,
        reasons=_manual_reasons(user, f"trigger {trigger.name}", target_node, via),
        fired_by_user=user,
        target_node=target_node,
    )


def fire_action_by_hand(action: Action, user, target_node: Node | None = None, *,
                        via: str = "console") -> Execution:
    check_may_fire(user, [action])
    return executions.fire_action(
        action,
        cluster=action.cluster,
        target_node=target_node,
        fired_by_user=user,
        reasons=_manual_reasons(user, f"action {action.name}", target_node, via),
    )


def resume_by_hand(execution: Execution, user) -> Execution:
    """Resume runs the steps left as they were recorded (kind and parameters
    at firing time), so those kinds decide the permissions, whatever the
    actions have become since."""
    executions.check_may_resume(user, execution)
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
