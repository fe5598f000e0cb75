"""Evaluating scaling policies: read (policy_reading.py), decide (the pure
apps/control/policy package), fire the scale-out or scale-in chain, and keep
a decision record.

One scaling, even with several evaluators
    As for triggers (evaluator.py), the firing is claimed with a conditional
    UPDATE of the policy row that must change exactly one row: the policy is
    still enabled and its ``last_scale_out_at`` / ``last_scale_in_at`` are
    still the values this evaluation loaded (a compare-and-swap). The claim
    and the execution commit in one transaction. The chain then runs through
    the same executions, the cluster-bounds lock of sizing.py, the blocking
    of concurrent automatic scaling and the dry run as a trigger's chain, with
    the number of nodes to add or remove in the chain's context
    (``node_count``, apps/actions/contract.py).

Decision records
    A new PolicyDecision is written when the outcome (sizes, direction,
    blocking guards) differs from the policy's latest record or an execution
    was started; otherwise the latest record is refreshed (its inputs, its
    evaluation time, ``repeats``), so the newest decision is always there and
    an unchanged one does not add a row per tick.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import sizing
from .choices import PolicyDirection
from .models import Execution
from .policy.decide import Decision, decide
from .policy.inputs import Inputs, PolicyConfig
from .policy.words import decision_summary
from .policy_models import PolicyDecision, ScalingPolicy
from .policy_reading import (
    kind_of, load_policies, node_counts, readings, scaling_execution, schedule_in_force, split_counters)
from .trigger_series import Store, default_store

logger = logging.getLogger(__name__)

FireCallable = Callable[..., Execution]


def _default_fire() -> FireCallable:
    from .executions import fire_policy

    return fire_policy


@dataclass
class PolicyReport:
    now: datetime
    policies: int = 0
    decisions: dict[int, str] = field(default_factory=dict)
    executions: dict[int, int] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"now": self.now.isoformat(), "policies": self.policies, "decisions": self.decisions,
                "executions": self.executions, "errors": self.errors}


def config_of(policy: ScalingPolicy) -> PolicyConfig:
    cluster = policy.cluster
    return PolicyConfig(
        kind=kind_of(policy), tolerance=policy.tolerance_pct / 100,
        scale_out_window_s=policy.scale_out_window_s, scale_in_window_s=policy.scale_in_window_s,
        scale_out_cooldown_s=policy.scale_out_cooldown_s, scale_in_cooldown_s=policy.scale_in_cooldown_s,
        max_step=min(policy.max_step, cluster.max_step_size), min_size=cluster.min_size,
        max_size=cluster.max_size)


def gather(policy: ScalingPolicy, store: Store, now: datetime) -> tuple[Inputs, dict]:
    """The inputs of one decision, and their record (JSON-able)."""
    metrics, readiness = split_counters(policy)
    counts = node_counts(policy, readiness, store, now)
    schedule = schedule_in_force(policy, now)
    recs = tuple((datetime.fromisoformat(s), int(r)) for s, r in policy.recommendations or [])
    inputs = Inputs(
        now=now, in_service=len(counts.in_service), warming=len(counts.warming), in_flight=counts.in_flight,
        removing=counts.removing, readings=readings(policy, metrics, counts, store, now), schedule=schedule,
        recommendations=recs,
        last_scale_out_at=policy.last_scale_out_at, last_scale_in_at=policy.last_scale_in_at,
        scaling_execution=scaling_execution(policy))
    record = {
        **counts.as_dict(),
        "readiness": [c.name for c in readiness],
        "schedule": None if schedule is None else {
            "name": schedule.name, "min_size": schedule.min_size, "max_size": schedule.max_size,
            "desired_size": schedule.desired_size,
            "until": schedule.until.isoformat() if schedule.until else None},
    }
    return inputs, record


def evaluate_policy(policy: ScalingPolicy, now: datetime, store: Store, fire: FireCallable
                    ) -> tuple[Decision, PolicyDecision]:
    inputs, record = gather(policy, store, now)
    decision = decide(config_of(policy), inputs)
    _remember(policy, now, decision)
    execution = None
    if decision.direction != "hold" and not _repeated_dry_run(policy, decision):
        execution = _claim_and_fire(policy, decision, now, fire)
    record["counters"] = decision.per_counter
    return decision, _record(policy, decision, record, now, execution)


def _repeated_dry_run(policy: ScalingPolicy, decision: Decision) -> bool:
    """A dry run changes nothing, so the same decision would come back at
    every tick: its "would fire" execution is recorded once per change."""
    if not policy.dry_run:
        return False
    latest = PolicyDecision.objects.filter(policy=policy).order_by("-created", "-pk").first()
    return latest is not None and latest.outcome == outcome_key(decision)


def _remember(policy: ScalingPolicy, now: datetime, decision: Decision) -> None:
    """Keep this evaluation's recommendation for the stabilization windows."""
    keep = max(policy.scale_in_window_s, policy.scale_out_window_s)
    since = now - timedelta(seconds=keep)
    recs = [[s, r] for s, r in policy.recommendations or [] if datetime.fromisoformat(s) > since]
    recs.append([now.isoformat(), decision.recommendation])
    policy.recommendations = recs
    ScalingPolicy.objects.filter(pk=policy.pk).update(recommendations=recs)


def _claim_and_fire(policy: ScalingPolicy, decision: Decision, now: datetime, fire: FireCallable
                    ) -> Execution | None:
    """Claim the scaling (compare-and-swap on the policy row) and record its
    execution in one transaction; None when another evaluator claimed it."""
    out = decision.direction == "out"
    stamp_field = "last_scale_out_at" if out else "last_scale_in_at"
    seen = getattr(policy, stamp_field)
    direction = PolicyDirection.OUT if out else PolicyDirection.IN
    reasons = {
        "policy_id": policy.pk, "policy": policy.name, "cluster": policy.cluster.name,
        "evaluated_at": now.isoformat(), "direction": str(direction), "node_count": abs(decision.change),
        "size_before": decision.current, "desired": decision.desired, "raw_desired": decision.raw_desired,
        "summary": decision_summary(decision), "counters": decision.per_counter,
        "effects": [e.as_dict() for e in decision.effects], "dry_run": policy.dry_run,
    }
    with transaction.atomic():
        claimed = ScalingPolicy.objects.filter(pk=policy.pk, enabled=True, **{stamp_field: seen}).update(
            **{stamp_field: now})
        if claimed != 1:
            return None
        setattr(policy, stamp_field, now)
        return fire(policy, direction=direction, reasons=reasons, dry_run=policy.dry_run)


def outcome_key(decision: Decision) -> str:
    blocking = ",".join(e.guard for e in decision.blocking)
    return f"{decision.direction}:{decision.current}:{decision.raw_desired}:{decision.desired}:{blocking}"[:200]


def _record(policy: ScalingPolicy, decision: Decision, inputs: dict, now: datetime,
            execution: Execution | None) -> PolicyDecision:
    fields: dict[str, Any] = dict(
        evaluated_at=now, current=decision.current, actual=sizing.running_size(policy.cluster_id),
        raw_desired=decision.raw_desired, desired=decision.desired, direction=decision.direction,
        summary=decision_summary(decision)[:500], inputs=inputs,
        effects=[e.as_dict() for e in decision.effects], outcome=outcome_key(decision), dry_run=policy.dry_run)
    latest = PolicyDecision.objects.filter(policy=policy).order_by("-created", "-pk").first()
    if execution is None and latest is not None and latest.outcome == fields["outcome"]:
        PolicyDecision.objects.filter(pk=latest.pk).update(repeats=F("repeats") + 1, **fields)
        latest.refresh_from_db()
        return latest
    return PolicyDecision.objects.create(policy=policy, cluster_id=policy.cluster_id, created=now,
                                         execution=execution, **fields)


def prune_decisions(policy: ScalingPolicy, now: datetime) -> int:
    """Delete the policy's decision records older than the retention, always
    keeping its newest one."""
    days = int(getattr(settings, "POLICY_DECISION_RETENTION_DAYS", 30))
    newest = PolicyDecision.objects.filter(policy=policy).order_by("-created", "-pk").values_list(
        "pk", flat=True).first()
    old = PolicyDecision.objects.filter(policy=policy, created__lt=now - timedelta(days=days))
    return old.exclude(pk=newest).delete()[0] if newest is not None else 0


def evaluate_policies(now: datetime | None = None, store: Store | None = None,
                      fire: FireCallable | None = None, policy_ids=None) -> PolicyReport:
    """Evaluate every enabled policy once (the body of the control-queue task)."""
    now = now or timezone.now()
    store = store if store is not None else default_store()
    fire = fire or _default_fire()
    policies = load_policies(policy_ids)
    report = PolicyReport(now=now, policies=len(policies))
    for policy in policies:
        try:
            decision, row = evaluate_policy(policy, now, store, fire)
        except Exception as exc:  # noqa: BLE001 - one policy's failure must not stop the others
            report.errors[policy.pk] = f"{type(exc).__name__}: {exc}"
            logger.exception("policy %s: evaluation failed", policy)
            continue
        report.decisions[policy.pk] = row.summary
        prune_decisions(policy, now)
        if row.execution_id and row.created == now:
            report.executions[policy.pk] = row.execution_id
            logger.info("policy %s: %s (execution #%s)", policy, row.summary, row.execution_id)
    return report
