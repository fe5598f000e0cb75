"""Builders shared by the chain, execution and action tests: clusters whose
nodes are the real test sshd servers, validated actions, triggers.

Also two small action kinds for testing the runner's own logic (order,
context flow, redelivery) where the work itself does not matter. They are
real implementations of the kind contract, registered like the others, not
stand-ins for a kind a user meets.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from django import forms

from apps.actions.contract import ActionError, ActionKind, StepContext, StepResult
from apps.actions.models import Action
from apps.actions.registry import all_kinds, register
from apps.control.models import Cluster, Node, Trigger, TriggerAction
from pyscaler.localservers.sshd import SshServer

_names = itertools.count(1)


def make_cluster(name: str | None = None, **fields: Any) -> Cluster:
    return Cluster.objects.create(name=name or f"c{next(_names)}", **fields)


def make_node(cluster: Cluster, server: SshServer, name: str | None = None, **fields: Any) -> Node:
    return Node.objects.create(
        cluster=cluster,
        name=name or f"n{next(_names)}",
        address=server.host,
        ssh_port=server.port,
        ssh_user=server.user,
        ssh_key_path=str(server.client_key_path),
        **fields,
    )


def trust(settings, tmp_path: Path, *servers: SshServer) -> Path:
    """Point SSH_KNOWN_HOSTS at a file holding exactly these servers' keys."""
    path = tmp_path / f"known_hosts-{next(_names)}"
    path.write_text("".join(s.host_key_line + "\n" for s in servers))
    settings.SSH_KNOWN_HOSTS = str(path)
    return path


def make_action(cluster: Cluster, kind: str, params: dict[str, Any], *, name: str | None = None,
                timeout_s: int = 30, validate: bool = True) -> Action:
    action = Action(cluster=cluster, name=name or f"a{next(_names)}", kind=kind, params=params,
                    timeout_s=timeout_s)
    if validate:
        action.full_clean()  # the kind's own parameter validation, as in the admin
    action.save()
    return action


def make_trigger(cluster: Cluster, actions: list[Action], name: str | None = None, **fields: Any) -> Trigger:
    trigger = Trigger.objects.create(cluster=cluster, name=name or f"t{next(_names)}", **fields)
    for position, action in enumerate(actions, start=1):
        TriggerAction.objects.create(trigger=trigger, action=action, position=position * 10)
    return trigger


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
