"""The chain runner: runs one step of an execution and says which step is next.

Each step is one Celery task (apps/control/tasks.py is a thin wrapper around
:func:`run_step`), so tests can drive a chain without a worker by calling
:func:`run_step` in a loop (:func:`run_inline`).

Delivery is at least once (late acks, reject on worker loss), so running a
step is guarded, as healthchecks' sendalerts claims a check:

* a conditional UPDATE claims the step (pending -> running, or a running step
  whose lease expired or whose holder died, which RabbitMQ tells us by
  redelivering the message) and stamps it with a claim token; a duplicate
  message finds nothing to claim and does nothing;
* the result is recorded only if the token still holds, so an attempt that
  lost the step to a newer one cannot overwrite its result;
* kinds with side effects that must not repeat checkpoint them
  (StepContext.checkpoint, committed at once) before the task acks.

A kind's retryable failure runs the kind again within the same claim,
a bounded number of times before the step's deadline (apps/control/retries.py).

No database transaction is open while a kind runs: a step may take minutes
(an EC2 launch, a Puppet run) and must not hold SQLite's write lock.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.actions.contract import ActionError, StepContext, StepResult
from apps.actions.registry import all_kinds, get_kind

from . import step_holder
from .choices import ExecutionStatus, StepStatus
from .models import Execution, ExecutionStep
from .retries import RetryPolicy
from .sizing import running_size

logger = logging.getLogger(__name__)

# A kind gives up at its deadline (action.timeout_s) with its own message;
# Celery's soft limit comes CHAIN_SOFT_LIMIT_GRACE_S later, for code that
# ignores the deadline; the hard limit (the pool kills the process)
# CHAIN_HARD_LIMIT_GRACE_S after that, for code that ignores even the soft
# limit (e.g. a blocking C call).
# A running step whose lease expired has no live worker: the reaper fails it.
LEASE_GRACE_S = 30
#: How long a finished step's result waits for an unreachable database (a
#: restart) before the attempt gives up; the lease and the reaper cover the rest.
RECORD_RETRY_S = 60

ACTIVE = ExecutionStatus.active()


class StepLost(Exception):
    """A newer attempt claimed this step; this attempt must stop recording."""


@dataclass(frozen=True)
class TimeLimits:
    soft: int
    hard: int

    @classmethod
    def for_timeout(cls, timeout_s: int) -> TimeLimits:
        soft = int(timeout_s) + int(getattr(settings, "CHAIN_SOFT_LIMIT_GRACE_S", 5))
        return cls(soft=soft, hard=soft + int(getattr(settings, "CHAIN_HARD_LIMIT_GRACE_S", 10)))


def output_limit() -> int:
    return int(getattr(settings, "CHAIN_STEP_OUTPUT_MAX_CHARS", 65536))


def bound_text(text: str, limit: int | None = None) -> str:
    """Keep the head and, mostly, the tail of a long text: the end of a
    script's output usually says why it failed."""
    limit = limit or output_limit()
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head - 60
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[-tail:]}"


# ---------------------------------------------------------------------------
# Running one step
# ---------------------------------------------------------------------------


def run_step(step_id: int, *, redelivered: bool = False) -> int | None:
    """Run the step if this delivery may, record the outcome and return the
    id of the step to run next (None when the chain stopped or ended, or when
    this delivery had nothing to do)."""
    claimed = _claim(step_id, redelivered=redelivered)
    if claimed is None:
        return _next_after_unclaimable(step_id)
    step, token = claimed
    execution = (
        Execution.objects.select_related("cluster", "trigger", "target_node").get(pk=step.execution_id)
    )
    ctx = _context(step, execution, token)
    with step_holder.holding(step_id):  # until recorded: a redelivery must not take it over
        try:
            result, error = _invoke(step, ctx, token)
        except StepLost:
            logger.warning("step %s was claimed by a newer attempt; this attempt stops", step_id)
            return None
        return _record_when_reachable(step, token, ctx, result, error)


def run_inline(execution: Execution) -> Execution:
    """Run an execution's remaining steps in this process, without Celery
    (tests, and the command line's --inline)."""
    step = execution.steps.filter(status=StepStatus.PENDING).order_by("position").first()
    next_id = step.pk if step else None
    while next_id is not None:
        next_id = run_step(next_id)
    execution.refresh_from_db()
    return execution


def _claim(step_id: int, *, redelivered: bool) -> tuple[ExecutionStep, str] | None:
    step = ExecutionStep.objects.filter(pk=step_id).select_related("execution").first()
    if step is None or step.execution.status not in ACTIVE:
        return None
    earlier_unfinished = (
        ExecutionStep.objects.filter(execution_id=step.execution_id, position__lt=step.position)
        .exclude(status=StepStatus.SUCCEEDED)
        .exists()
    )
    if earlier_unfinished:  # e.g. a stale message from before a resume
        return None
    now = timezone.now()
    token = uuid.uuid4().hex
    claimable = Q(status=StepStatus.PENDING) | Q(status=StepStatus.RUNNING, lease_expires__lt=now)
    if redelivered and not step_holder.held_by_live_process(step_id):
        # RabbitMQ redelivers when the consumer that held the message is gone
        # (killed worker) or lost its connection (broker restart): the holder
        # is presumed dead unless it is seen alive on this host (step_holder).
        claimable |= Q(status=StepStatus.RUNNING)
    lease = now + timedelta(seconds=TimeLimits.for_timeout(step.timeout_s).hard + LEASE_GRACE_S)
    # One commit for the step and its execution: no reader ever sees a running
    # step under a pending execution. The execution's row is locked first, as
    # _record and cancel lock it, so claims and results never deadlock.
    with transaction.atomic():
        locked = Execution.objects.select_for_update().filter(pk=step.execution_id)
        if locked.values_list("status", flat=True).first() not in ACTIVE:
            return None  # cancelled since the check above
        # Only the row's own columns in the WHERE clause: the database re-checks
        # them against a concurrent claim's committed row (PostgreSQL's recheck
        # does not re-run subqueries, and MySQL cannot update a table it reads
        # in a subquery), so exactly one claim wins.
        claimed = ExecutionStep.objects.filter(claimable, pk=step_id).update(
            status=StepStatus.RUNNING, claim=token, lease_expires=lease, started=now, finished=None,
            error="", attempts=F("attempts") + 1,
        )
        if claimed != 1:
            return None
        Execution.objects.filter(pk=step.execution_id, started__isnull=True).update(started=now)
        Execution.objects.filter(pk=step.execution_id, status=ExecutionStatus.PENDING).update(
            status=ExecutionStatus.RUNNING
        )
    return ExecutionStep.objects.select_related("action").get(pk=step_id), token


def _next_after_unclaimable(step_id: int) -> int | None:
    """A delivery found its step already claimed or finished. If the step
    succeeded but its worker died before publishing the next step, this
    (redelivered) message is the only thing left to move the chain on."""
    step = ExecutionStep.objects.select_related("execution").filter(pk=step_id).first()
    if step is None:
        logger.warning("step %s does not exist; message dropped", step_id)
        return None
    logger.info("step %s is %s (execution %s); this delivery runs nothing",
                step_id, step.status, step.execution.status)
    if step.status != StepStatus.SUCCEEDED or step.execution.status not in ACTIVE:
        return None
    steps = step.execution.steps
    if steps.filter(status=StepStatus.RUNNING).exists():
        return None
    following = steps.filter(position__gt=step.position).order_by("position").first()
    if following is not None and following.status == StepStatus.PENDING:
        return following.pk
    return None


def _context(step: ExecutionStep, execution: Execution, token: str) -> StepContext:
    output: list[str] = []
    if step.attempts > 1:
        output.append(f"[attempt {step.attempts}: an earlier attempt of this step did not finish]")
    return StepContext(
        cluster=execution.cluster,
        target_node=execution.target_node,
        data=dict(execution.data),
        step_id=f"pyscaler-step-{step.pk}",
        deadline=time.monotonic() + step.timeout_s,
        output=output,
        execution=execution,
        trigger=execution.trigger,
        attempt=step.attempts,
        state=dict(step.state or {}),
        persist_state=partial(_persist_state, step.pk, token),
    )


def _persist_state(step_id: int, token: str, state: dict[str, Any]) -> None:
    # Autocommit: no transaction is open while a kind runs, so this is
    # durable when it returns.
    updated = ExecutionStep.objects.filter(pk=step_id, claim=token, status=StepStatus.RUNNING).update(
        state=state
    )
    if updated != 1:
        raise StepLost(step_id)


def _invoke(step: ExecutionStep, ctx: StepContext, token: str) -> tuple[StepResult | None, str]:
    """Run the kind, again after a retryable failure while the retry policy
    allows (apps/control/retries.py); return (result, "") or (None, error)."""
    try:
        kind_cls = get_kind(step.kind)
    except LookupError as exc:
        return None, str(exc)
    if kind_cls.needs_target_node and ctx.target_node is None:
        return None, _no_target(kind_cls.label)
    policy = RetryPolicy.from_settings()
    tries = 1
    while True:
        result, error, retryable = _try(kind_cls, step, ctx)
        if not (error and retryable):
            return result, error
        pause = policy.pause(tries, ctx.remaining())
        if pause is None:
            ctx.log(f"[try {tries} failed (retryable): {error}; not tried again: {policy.why_not(tries)}]")
            return None, error
        ctx.log(f"[try {tries} failed (retryable): {error}; trying again in {pause:g} s]")
        try:
            time.sleep(pause)
        except SoftTimeLimitExceeded:
            return None, _timed_out(step)
        _count_try(step, ctx, token)
        tries += 1


def _try(kind_cls, step: ExecutionStep, ctx: StepContext) -> tuple[StepResult | None, str, bool]:
    """One run of the kind: (result, "", False) or (None, error, retryable)."""
    kind = kind_cls(step.action)
    kind.params = dict(step.params)  # the snapshot taken at firing time
    try:
        result = kind.run(ctx) or StepResult()
    except StepLost:
        raise
    except ActionError as exc:
        return None, str(exc) or type(exc).__name__, exc.retryable
    except SoftTimeLimitExceeded:
        return None, _timed_out(step), False
    except Exception as exc:
        logger.exception("step %s (%s) raised", step.pk, step.kind)
        return None, f"{type(exc).__name__}: {exc}", False
    try:
        json.dumps(result.data)
    except (TypeError, ValueError) as exc:
        return None, f"{kind_cls.label} returned data that is not JSON: {exc}", False
    return result, "", False


def _timed_out(step: ExecutionStep) -> str:
    return f"timed out: still running {step.timeout_s} s after it started (the action's timeout)"


def _count_try(step: ExecutionStep, ctx: StepContext, token: str) -> None:
    """Another try of the same claim: one more attempt on the step's row."""
    updated = ExecutionStep.objects.filter(pk=step.pk, claim=token, status=StepStatus.RUNNING).update(
        attempts=F("attempts") + 1
    )
    if updated != 1:
        raise StepLost(step.pk)
    ctx.attempt += 1


def _no_target(label: str) -> str:
    makers = " or ".join(cls.label for cls in all_kinds().values() if cls.sets_target_node)
    return f"{label} needs a target node: fire it with a node" + (
        f", or put a {makers} step before it" if makers else "")


def _record(step: ExecutionStep, token: str, ctx: StepContext, result: StepResult | None,
            error: str) -> int | None:
    now = timezone.now()
    lines = list(ctx.output)
    if result is not None and result.summary:
        lines.append(result.summary)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().get(pk=step.execution_id)
        updated = ExecutionStep.objects.filter(pk=step.pk, claim=token, status=StepStatus.RUNNING).update(
            status=StepStatus.FAILED if error else StepStatus.SUCCEEDED,
            finished=now,
            output=bound_text("\n".join(lines)),
            error=bound_text(error, 8192),
            state=ctx.state,
            lease_expires=None,
        )
        if updated != 1:
            logger.warning("step %s: result of a stale attempt not recorded", step.pk)
            return None
        if execution.status not in ACTIVE:  # cancelled meanwhile
            return None
        if error:
            _stop_execution(execution, after_position=step.position, now=now)
            return None
        assert result is not None
        execution.data = {**(execution.data or {}), **result.data}
        if result.target_node_id:
            from .models import Node

            node = Node.objects.filter(pk=result.target_node_id).first()
            execution.target_node = node
            execution.target_node_name = node.name if node else ""
        following = (
            execution.steps.filter(position__gt=step.position, status=StepStatus.PENDING)
            .order_by("position")
            .first()
        )
        if following is None:
            execution.status = ExecutionStatus.SUCCEEDED
            execution.finished = now
            execution.size_after = running_size(execution.cluster_id)
        execution.save(update_fields=["data", "target_node", "target_node_name", "status", "finished",
                                      "size_after"])
        return following.pk if following else None


def _record_when_reachable(step: ExecutionStep, token: str, ctx: StepContext, result: StepResult | None,
                           error: str) -> int | None:
    """Record the outcome of work that is done and must not be redone. The
    kind may have run for minutes, during which the database may have
    restarted: its connection is then dead (found by the health check that
    ``close_if_unusable_or_obsolete`` re-arms), or the server is still coming
    back, so retry for a while instead of losing the result."""
    if connection.in_atomic_block:  # run_inline inside a caller's transaction
        return _record(step, token, ctx, result, error)
    deadline = time.monotonic() + RECORD_RETRY_S
    while True:
        connection.close_if_unusable_or_obsolete()
        try:
            return _record(step, token, ctx, result, error)
        except OperationalError as exc:
            if time.monotonic() >= deadline:
                raise
            logger.warning("step %s: cannot record the result yet (%s); retrying", step.pk, exc)
            connection.close()
            time.sleep(1.0)


def _stop_execution(execution: Execution, *, after_position: int, now,
                    status: str = ExecutionStatus.FAILED) -> None:
    """Within a transaction: later steps skipped, the execution finished."""
    execution.steps.filter(position__gt=after_position, status=StepStatus.PENDING).update(
        status=StepStatus.SKIPPED
    )
    execution.status = status
    execution.finished = now
    execution.size_after = running_size(execution.cluster_id)
    execution.save(update_fields=["status", "finished", "size_after"])


# ---------------------------------------------------------------------------
# Faults outside a step's own code
# ---------------------------------------------------------------------------


def fail_step(step_id: int, error: str) -> bool:
    """Fail a pending or running step from outside its attempt (broker down,
    worker killed at the hard time limit, lease expired) and stop its
    execution. Returns whether anything changed."""
    now = timezone.now()
    with transaction.atomic():
        step = ExecutionStep.objects.filter(pk=step_id).first()
        if step is None:
            return False
        execution = Execution.objects.select_for_update().get(pk=step.execution_id)
        updated = ExecutionStep.objects.filter(
            pk=step_id, status__in=(StepStatus.PENDING, StepStatus.RUNNING)
        ).update(status=StepStatus.FAILED, finished=now, error=bound_text(error, 8192), lease_expires=None)
        if not updated:
            return False
        if execution.status in ACTIVE:
            _stop_execution(execution, after_position=step.position, now=now)
        return True


def reap_stale_steps() -> int:
    """Fail running steps whose lease expired. Their worker is gone and no
    redelivery will come (e.g. the message was acked at a hard time limit);
    left alone, their executions would stay running and block the cluster's
    automatic scaling for ever. Returns how many steps were failed."""
    now = timezone.now()
    reaped = 0
    for step_id in ExecutionStep.objects.filter(status=StepStatus.RUNNING, lease_expires__lt=now).values_list(
        "pk", flat=True
    ):
        reaped += fail_step(
            step_id, "no result: the worker running this step was lost (lease expired); "
                     "resume the execution to run it again"
        )
    return reaped
