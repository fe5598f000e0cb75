"""Three small action kinds for testing the chain runner's own logic (order,
context flow, redelivery, time limits) where the work itself does not matter.
They are real implementations of the kind contract, registered like the
others, not stand-ins for a kind a user meets. (Rows are built by
tests/factories.py, known hosts written by tests/sshkit.py.)
"""
from __future__ import annotations

from pathlib import Path

from django import forms

from apps.actions.contract import ActionError, ActionKind, StepContext, StepResult
from apps.actions.registry import all_kinds, register

# ---------------------------------------------------------------------------
# Test kinds
# ---------------------------------------------------------------------------

TARGET = "test_set_target"
COUNT = "test_count_runs"
SLEEP = "test_sleep"


class SetTarget(ActionKind):
    """Makes the named node the chain's target and adds data: what
    DeployEc2Node does for the steps after it, without EC2."""

    kind = TARGET
    label = "SetTarget (tests)"

    class Params(forms.Form):
        node = forms.CharField()
        fail = forms.BooleanField(required=False)

    def run(self, ctx: StepContext) -> StepResult:
        if self.params.get("fail"):
            raise ActionError("asked to fail")
        node = ctx.cluster.nodes.get(name=self.params["node"])
        ctx.log(f"target is now {node.name}")
        return StepResult(summary="picked", data={"picked": node.name, "deployed_node_ids": [node.pk]},
                          target_node_id=node.pk)


class CountRuns(ActionKind):
    """Counts its runs in a file: proves a step ran once, or not again."""

    kind = COUNT
    label = "CountRuns (tests)"

    class Params(forms.Form):
        path = forms.CharField()

    def run(self, ctx: StepContext) -> StepResult:
        path = Path(self.params["path"])
        with path.open("a") as fh:
            fh.write(f"{ctx.step_id} attempt {ctx.attempt}\n")
        return StepResult(summary="counted")


class Sleep(ActionKind):
    """Sleeps ignoring ctx.deadline (what a badly written kind would do), to
    prove Celery's time limits still bound the step; ``ignore_soft`` also
    swallows the soft limit, leaving only the hard one."""

    kind = SLEEP
    label = "Sleep (tests)"

    class Params(forms.Form):
        seconds = forms.FloatField()
        ignore_soft = forms.BooleanField(required=False)

    def run(self, ctx: StepContext) -> StepResult:
        import time

        from celery.exceptions import SoftTimeLimitExceeded

        end = time.monotonic() + self.params["seconds"]
        while time.monotonic() < end:
            try:
                time.sleep(max(0.0, end - time.monotonic()))
            except SoftTimeLimitExceeded:
                if not self.params.get("ignore_soft"):
                    raise
        return StepResult(summary="slept")


for _cls in (SetTarget, CountRuns, Sleep):
    if _cls.kind not in all_kinds():
        register(_cls)
