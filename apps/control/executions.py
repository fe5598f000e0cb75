"""Firing: turning a trigger (or one action fired by hand) into an execution
record with its steps, and queueing the first step.

Automatic and manual firings go through the same functions, so the scaling
history looks the same whoever fired. Everything is created in one
transaction; the first step is published only after it commits, so a worker
never looks for a step that is not there yet.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from apps.actions.contract import FIRE_PERMISSION
from apps.actions.models import Action
from apps.actions.registry import get_kind, kinds_that

from . import chain, sizing, step_queue
from .choices import ExecutionStatus, StepStatus
from .models import Cluster, Execution, ExecutionStep, Node, Trigger

logger = logging.getLogger(__name__)


class FiringError(ValueError):
    """The firing request itself is wrong (action of another cluster, node
    not in the cluster, execution not resumable); the message says which."""


def block_concurrent_scaling() -> bool:
    return bool(getattr(settings, "CHAIN_BLOCK_CONCURRENT_SCALING", True))


# ---------------------------------------------------------------------------
# What the kinds of a chain say about it (apps/actions/contract.py)
# ---------------------------------------------------------------------------


def scaling_kinds() -> frozenset[str]:
    """Kinds that change the cluster's size: two automatic chains with these
    must not run at once on one cluster (each would decide on a stale size)."""
    return kinds_that("changes_cluster_size")


def changes_cluster_size(actions: Iterable[Action]) -> bool:
    kinds = scaling_kinds()
    return any(a.kind in kinds for a in actions)


def permissions_for_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """Every permission these kinds ask of a person running them by hand,
    the firing permission first."""
    needed = [FIRE_PERMISSION]
    for kind in kinds:
        try:
            perms = get_kind(kind).fire_permissions
        except LookupError:
            continue
        needed += [p for p in perms if p not in needed]
    return tuple(needed)


def permissions_to_fire(actions: Iterable[Action]) -> tuple[str, ...]:
    return permissions_for_kinds(a.kind for a in actions)


def _check_perms(user, perms: tuple[str, ...]) -> None:
    missing = [p for p in perms if not user.has_perm(p)]
    if missing:
        raise PermissionDenied(f"you need the permission(s) {', '.join(missing)}")


def check_may_fire(user, actions: Iterable[Action]) -> None:
    _check_perms(user, permissions_to_fire(actions))


def check_may_resume(user, execution: Execution) -> None:
    """Resume runs the steps left as they were recorded (kind and parameters
    at firing time), so those kinds decide the permissions, whatever the
    actions have become since. Console, API and admin all ask here."""
    first = execution.steps.exclude(status=StepStatus.SUCCEEDED).order_by("position").first()
    if first is not None:  # none left: resume() says so
        again = execution.steps.filter(position__gte=first.position).values_list("kind", flat=True)
        _check_perms(user, permissions_for_kinds(list(again)))


def fire_trigger(
    trigger: Trigger,
    *,
    reasons: dict[str, Any],
    fired_by_user=None,
    fired_by: str = "",
    target_node: Node | None = None,
    dry_run: bool = False,
    enqueue: bool = True,
) -> Execution:
    """Record a firing of ``trigger`` and queue its chain.

    The evaluator calls this with ``reasons`` ({"trigger", "counter", "node",
    "node_id", "values", ...}); a person firing by hand passes
    ``fired_by_user`` or ``fired_by``, which also makes the firing manual
    (manual firings are never blocked). The target node is ``target_node``,
    else the node named by ``reasons["node_id"]``. A dry run (argument or
    the trigger's setting) records "would fire" and runs nothing.
    ``enqueue=False`` leaves the steps for chain.run_inline (no worker).
    """
    automatic = fired_by_user is None and not fired_by
    if not fired_by:
        fired_by = _user_label(fired_by_user) if fired_by_user is not None else f"trigger {trigger.name}"
    if target_node is None:
        target_node = _node_from_reasons(trigger.cluster, reasons)
    return _create(FiringRequest(
        cluster=trigger.cluster,
        trigger=trigger,
        actions=list(trigger.ordered_actions()),
        reasons=reasons,
        automatic=automatic,
        fired_by_user=fired_by_user,
        fired_by=fired_by,
        target_node=target_node,
        dry_run=dry_run or trigger.dry_run,
        enqueue=enqueue,
    ))


def fire_action(
    action: Action,
    *,
    cluster: Cluster,
    target_node: Node | None = None,
    fired_by_user=None,
    fired_by: str = "",
    reasons: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> Execution:
    """Record a firing of one action by hand (console, command line) and queue it."""
    if action.cluster_id != cluster.pk:
        raise FiringError(f"action {action.name!r} belongs to cluster {action.cluster}, not to {cluster}")
    if not fired_by:
        fired_by = _user_label(fired_by_user) if fired_by_user is not None else "unknown"
    return _create(FiringRequest(
        cluster=cluster,
        action=action,
        actions=[action],
        reasons=dict(reasons or {}),
        fired_by_user=fired_by_user,
        fired_by=fired_by,
        target_node=target_node,
        enqueue=enqueue,
    ))


def fire_policy(policy, *, direction: str, reasons: dict[str, Any], dry_run: bool = False,
                enqueue: bool = True) -> Execution:
    """Record a scaling policy's decision as an execution of its scale-out or
    scale-in chain (automatic, like a trigger's); ``reasons`` carry the
    ``node_count`` the size-changing kinds act on."""
    return _create(FiringRequest(
        cluster=policy.cluster,
        policy=policy,
        actions=list(policy.chain(direction)),
        reasons=reasons,
        automatic=True,
        fired_by=f"policy {policy.name} (scale {direction})",
        dry_run=dry_run or policy.dry_run,
        enqueue=enqueue,
    ))


def resume(execution: Execution, user=None, *, fired_by: str = "") -> Execution:
    """Re-run a failed execution from its failed step; the steps after it are
    reset to pending. Earlier, succeeded steps are not run again."""
    who = fired_by or (_user_label(user) if user is not None else "unknown")
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(pk=execution.pk)
        if execution.status != ExecutionStatus.FAILED:
            raise FiringError(
                f"execution #{execution.pk} is {execution.get_status_display()}; only a failed execution "
                "can be resumed"
            )
        first = execution.steps.exclude(status=StepStatus.SUCCEEDED).order_by("position").first()
        if first is None:
            raise FiringError(f"execution #{execution.pk} has no step left to run")
        now = timezone.now()
        try:
            kept_state = get_kind(first.kind).state_for_resume(first.state or {})
        except LookupError:
            kept_state = {}
        _append_log(
            execution,
            now,
            f"resumed by {who} from step {first.position} ({first.action_name})"
            + (f", which had failed: {first.error}" if first.error else ""),
        )
        execution.steps.filter(position__gte=first.position).update(
            status=StepStatus.PENDING, started=None, finished=None, error="", output="",
            claim="", lease_expires=None,
        )
        ExecutionStep.objects.filter(pk=first.pk).update(state=kept_state)
        execution.status = ExecutionStatus.PENDING
        execution.finished = None
        execution.size_after = None
        execution.save(update_fields=["status", "finished", "size_after", "log"])
        step_queue.enqueue_on_commit(first.pk)
    return execution


def cancel(execution: Execution, user=None, *, fired_by: str = "") -> Execution:
    """Stop an execution before its next step: pending steps are skipped; a
    step already running finishes (it cannot be interrupted safely) and is
    recorded, but nothing runs after it."""
    who = fired_by or (_user_label(user) if user is not None else "unknown")
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(pk=execution.pk)
        if execution.status not in ExecutionStatus.active():
            raise FiringError(
                f"execution #{execution.pk} is {execution.get_status_display()}; nothing to cancel"
            )
        now = timezone.now()
        execution.steps.filter(status=StepStatus.PENDING).update(status=StepStatus.SKIPPED)
        _append_log(execution, now, f"cancelled by {who}")
        execution.status = ExecutionStatus.CANCELLED
        execution.finished = now
        execution.size_after = sizing.running_size(execution.cluster_id)
        execution.save(update_fields=["status", "finished", "size_after", "log"])
    return execution


# ---------------------------------------------------------------------------
# Recording a firing, phase by phase
# ---------------------------------------------------------------------------


@dataclass
class FiringRequest:
    """One firing as fire_trigger and fire_action describe it."""

    cluster: Cluster
    actions: list[Action]
    reasons: dict[str, Any]
    fired_by: str
    automatic: bool = False
    trigger: Trigger | None = None
    #: The action fired by hand (None for a trigger's chain).
    action: Action | None = None
    #: The scaling policy whose chain this is (a ScalingPolicy), if any.
    policy: Any = None
    fired_by_user: Any = None
    target_node: Node | None = None
    dry_run: bool = False
    enqueue: bool = True

    @property
    def may_block(self) -> bool:
        """Automatic firings that change the cluster's size wait for one
        already in progress (manual firings are never blocked)."""
        return self.automatic and block_concurrent_scaling() and changes_cluster_size(self.actions)


def _create(request: FiringRequest) -> Execution:
    _check(request)
    if request.may_block and not request.dry_run:
        # A step whose worker vanished would block the cluster for ever: fail
        # such steps first (the reap_stale_steps task may also run from beat).
        chain.reap_stale_steps()
    with transaction.atomic():
        # Serialise firings per cluster, so two evaluators cannot both find
        # "no scaling execution in progress" (on SQLite the IMMEDIATE
        # transaction already holds the write lock).
        Cluster.objects.select_for_update().filter(pk=request.cluster.pk).exists()
        status, note = _decide(request)
        execution = _record(request, status, note)
        if execution.status == ExecutionStatus.PENDING and request.enqueue:
            # Not bulk_create's objects: not every database returns their ids.
            step_queue.enqueue_on_commit(execution.steps.order_by("position").values_list("pk", flat=True)[0])
    if note:
        logger.info("execution #%s of %s: %s", execution.pk, request.cluster, note)
    return execution


def _check(request: FiringRequest) -> None:
    cluster, target = request.cluster, request.target_node
    if target is not None and target.cluster_id != cluster.pk:
        raise FiringError(f"node {target.name!r} is not in cluster {cluster.name!r}")
    foreign = [a for a in request.actions if a.cluster_id != cluster.pk]
    if foreign:
        raise FiringError(f"actions of another cluster: {', '.join(str(a) for a in foreign)}")


def _decide(request: FiringRequest) -> tuple[str, str]:
    """The new execution's status and the note logged with it. Runs under
    the cluster's lock, so a blocking execution cannot appear meanwhile."""
    if request.dry_run:
        return ExecutionStatus.WOULD_FIRE, "dry run: would fire; nothing was run"
    if not request.actions:
        return ExecutionStatus.SUCCEEDED, "no actions to run"
    if request.may_block:
        blocker = _scaling_in_progress(request.cluster)
        if blocker is not None:
            return ExecutionStatus.BLOCKED, (
                f"blocked: execution #{blocker.pk} ({blocker.fired_by}) is still "
                f"{blocker.get_status_display()} and changes the cluster's size; automatic "
                "deploy/remove waits for it (setting CHAIN_BLOCK_CONCURRENT_SCALING)"
            )
    return ExecutionStatus.PENDING, ""


def _record(request: FiringRequest, status: str, note: str) -> Execution:
    """The execution row and a snapshot of each action as a step."""
    now = timezone.now()
    finished = status != ExecutionStatus.PENDING
    size = sizing.running_size(request.cluster)
    target = request.target_node
    execution = Execution.objects.create(
        cluster=request.cluster,
        trigger=request.trigger,
        action=request.action,
        policy=request.policy,
        automatic=request.automatic,
        fired_by_user=request.fired_by_user,
        fired_by=request.fired_by[:200],
        reasons=request.reasons,
        target_node=target,
        target_node_name=target.name if target else "",
        status=status,
        finished=now if finished else None,
        size_before=size,
        size_after=size if finished else None,
        log=f"{now:%Y-%m-%d %H:%M:%S} {note}" if note else "",
    )
    execution.data = {**request.reasons, "execution_id": execution.pk, "fired_by": execution.fired_by}
    execution.save(update_fields=["data"])
    ExecutionStep.objects.bulk_create(
        ExecutionStep(
            execution=execution,
            position=position,
            action=a,
            action_name=a.name,
            kind=a.kind,
            params=a.params,
            timeout_s=a.timeout_s,
            status=StepStatus.SKIPPED if finished else StepStatus.PENDING,
        )
        for position, a in enumerate(request.actions, start=1)
    )
    return execution


def scaling_in_progress(cluster: Cluster) -> Execution | None:
    """The oldest execution under way on the cluster that changes its size
    (a scaling policy waits for it), or None."""
    return _scaling_in_progress(cluster)


def _scaling_in_progress(cluster: Cluster) -> Execution | None:
    return (
        Execution.objects.filter(
            cluster=cluster, status__in=ExecutionStatus.active(), steps__kind__in=scaling_kinds()
        )
        .order_by("created")
        .first()
    )


def _node_from_reasons(cluster: Cluster, reasons: dict[str, Any]) -> Node | None:
    node_id = reasons.get("node_id")
    if isinstance(node_id, int):
        return Node.objects.filter(pk=node_id, cluster=cluster).first()
    return None


def _user_label(user) -> str:
    return f"user {user.get_username()}"


def _append_log(execution: Execution, now, line: str) -> None:
    stamped = f"{now:%Y-%m-%d %H:%M:%S} {line}"
    execution.log = f"{execution.log}\n{stamped}" if execution.log else stamped
