"""The chain runner's retry policy (apps/control/chain.py, RetryPolicy): a
step whose kind raises a retryable ActionError runs again, a bounded number
of times with a growing pause, never past the step's deadline; any other
failure stops the chain at once.

The kind here is a real implementation of the contract registered for these
tests only: it fails a given number of times, counting its tries in its
checkpointed state (what a kind that must not repeat a side effect does).
"""
from __future__ import annotations

import time

import pytest
from django import forms

from apps.actions.contract import ActionError, ActionKind, StepContext, StepResult
from apps.actions.registry import register, unregister
from apps.control import chain
from apps.control.retries import RetryPolicy
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.executions import fire_action
from tests.chainkit import make_action, make_cluster


class Flaky(ActionKind):
    """Fails its first ``fail_times`` tries, retryably or not."""

    kind = "test_flaky"
    label = "Flaky (tests)"

    class Params(forms.Form):
        fail_times = forms.IntegerField(min_value=0)
        retryable = forms.BooleanField(required=False)

    def run(self, ctx: StepContext) -> StepResult:
        tries = ctx.state.get("tries", 0) + 1
        ctx.checkpoint(tries=tries, attempts_seen=[*ctx.state.get("attempts_seen", []), ctx.attempt])
        if tries <= self.params["fail_times"]:
            raise ActionError(f"failure {tries}", retryable=bool(self.params.get("retryable")))
        return StepResult(summary=f"succeeded on try {tries}", data={"tries": tries})


@pytest.fixture(autouse=True)
def flaky_kind():
    register(Flaky)
    yield
    unregister(Flaky)


@pytest.fixture
def quick_retries(settings):
    settings.CHAIN_STEP_RETRY_ATTEMPTS = 3
    settings.CHAIN_STEP_RETRY_BACKOFF_S = 0.05
    settings.CHAIN_STEP_RETRY_MAX_BACKOFF_S = 1.0


def run(fail_times: int, retryable: bool, timeout_s: int = 30):
    cluster = make_cluster()
    action = make_action(cluster, Flaky.kind, {"fail_times": fail_times, "retryable": retryable},
                         timeout_s=timeout_s, validate=False)
    execution = chain.run_inline(fire_action(action, cluster=cluster, fired_by="test", enqueue=False))
    return execution, execution.steps.get()


@pytest.mark.django_db
def test_a_retryable_failure_is_retried_and_the_step_then_succeeds(quick_retries):
    execution, step = run(fail_times=2, retryable=True)
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert step.status == StepStatus.SUCCEEDED and step.error == ""
    assert step.state["tries"] == 3 and step.attempts == 3
    assert step.state["attempts_seen"] == [1, 2, 3]  # the kind sees which attempt it is
    assert "try 1 failed (retryable): failure 1; trying again in 0.05 s" in step.output
    assert "try 2 failed (retryable): failure 2; trying again in 0.1 s" in step.output
    assert "succeeded on try 3" in step.output
    assert execution.data["tries"] == 3


@pytest.mark.django_db
def test_a_failure_that_is_not_retryable_fails_the_step_at_once(quick_retries):
    execution, step = run(fail_times=1, retryable=False)
    assert execution.status == ExecutionStatus.FAILED
    assert step.status == StepStatus.FAILED and step.error == "failure 1"
    assert step.state["tries"] == 1 and step.attempts == 1
    assert "trying again" not in step.output


@pytest.mark.django_db
def test_a_retryable_failure_that_persists_stops_after_the_bound_with_its_error(quick_retries):
    execution, step = run(fail_times=10, retryable=True)
    assert execution.status == ExecutionStatus.FAILED
    assert step.status == StepStatus.FAILED
    assert step.state["tries"] == 3 and step.attempts == 3
    assert step.error == "failure 3"
    assert "try 3 failed (retryable): failure 3; not tried again: 3 tries is the bound" in step.output


@pytest.mark.django_db
def test_no_retry_waits_past_the_steps_deadline(settings):
    settings.CHAIN_STEP_RETRY_ATTEMPTS = 5
    settings.CHAIN_STEP_RETRY_BACKOFF_S = 5.0
    started = time.monotonic()
    execution, step = run(fail_times=10, retryable=True, timeout_s=2)
    assert time.monotonic() - started < 2
    assert execution.status == ExecutionStatus.FAILED and step.state["tries"] == 1
    assert step.error == "failure 1"
    assert "not tried again: the step's deadline comes first" in step.output


def test_the_pause_doubles_up_to_its_cap():
    policy = RetryPolicy(attempts=6, backoff_s=1.0, max_backoff_s=5.0)
    assert [policy.pause(tries, remaining=100) for tries in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, None]
    assert policy.pause(1, remaining=0.5) is None
