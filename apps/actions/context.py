"""What an action step gets to work with, and what it gives back.

The chain runner (apps/control) builds a StepContext for each step; the
action kind's ``run(ctx)`` does its work and returns a StepResult. Keeping
this plain lets tests call a kind's ``run`` directly, with no Celery.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepContext:
    #: The cluster the chain acts on (apps.control.models.Cluster).
    cluster: Any
    #: The node the chain targets: the breaching node, the operator's choice,
    #: or the node an earlier DeployEc2Node step created. None if there is none.
    target_node: Any = None
    #: JSON-able data flowing along the chain: the firing's reasons
    #: ("trigger", "counter", "node", "values"), what earlier steps added
    #: (e.g. "deployed_node_ids"). Email templates render against it.
    data: dict[str, Any] = field(default_factory=dict)
    #: Identity of this step, stable across redeliveries: used as the EC2
    #: ClientToken and the instance tag that makes launching idempotent.
    step_id: str = ""
    #: time.monotonic() value after which the step must give up.
    deadline: float = field(default_factory=lambda: time.monotonic() + 600)
    #: Lines of output the step produced so far (stored on the step record).
    output: list[str] = field(default_factory=list)
    #: The execution record (apps.control.models.Execution) and its trigger,
    #: for kinds that report on the firing (Email). None when a test runs a
    #: kind on its own.
    execution: Any = None
    trigger: Any = None
    #: 1 for the first run of the step, more when it was redelivered or resumed.
    attempt: int = 1
    #: What earlier attempts of this same step recorded with checkpoint().
    state: dict[str, Any] = field(default_factory=dict)
    #: Called by checkpoint() with the whole state; the runner commits it to
    #: the step's row before returning, so it survives a killed worker.
    persist_state: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)

    def log(self, line: str) -> None:
        self.output.append(line)

    def checkpoint(self, **values: Any) -> None:
        """Durably record progress (e.g. ``sent_at``) before a side effect is
        acknowledged, so a redelivered attempt can tell what was done."""
        self.state.update(values)
        if self.persist_state is not None:
            self.persist_state(dict(self.state))

    def remaining(self) -> float:
        """Seconds left before the step's deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())


@dataclass
class StepResult:
    #: Human-readable summary stored as the step's output (besides ctx.output).
    summary: str = ""
    #: Merged into the chain's data for later steps.
    data: dict[str, Any] = field(default_factory=dict)
    #: If set, later steps target this node (e.g. the node DeployEc2Node made).
    target_node_id: int | None = None
