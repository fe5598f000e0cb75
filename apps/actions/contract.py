"""The action-kind contract: everything the chain runner and the firing
pages of apps/control know about a kind.

A kind is one class deriving from :class:`ActionKind`, registered with
``apps.actions.registry.register``. Every kind-specific fact control needs
(does it change the cluster's size, does it need or remove the chain's
target node, how a step is described before firing, which permissions
firing it takes) is a class attribute or class method here, so control never
names a kind and a new kind is one module plus its registration.

The runner builds a :class:`StepContext` for each step; the kind's
``run(ctx)`` does the work and returns a :class:`StepResult` or raises
:class:`ActionError`. Keeping this plain lets tests call a kind's ``run``
directly, with no Celery.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError

#: Control's permissions (Django codenames of apps.control's Trigger model).
#: Every firing by hand needs the first; kinds that launch or retire nodes
#: also need the second.
FIRE_PERMISSION = "control.fire_trigger"
MANAGE_NODES_PERMISSION = "control.manage_nodes"


#: The chain data's key for the number of nodes a scaling policy's chain adds
#: or removes; DeployEc2Node and RemoveEc2Node take it over their ``count``.
NODE_COUNT_KEY = "node_count"


class ActionError(Exception):
    """A step failed. ``retryable`` says whether running it again may help
    (a timeout, a throttled API) or not (bad parameters, a bound reached):
    the chain runner retries a retryable failure a bounded number of times
    within the step's deadline (apps/control/retries.py)."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


@dataclass
class StepContext:
    #: The cluster the chain acts on (a control Cluster row).
    cluster: Any
    #: The node the chain targets: the breaching node, the operator's choice,
    #: or the node an earlier step made the target. None if there is none.
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
    #: The execution record and its trigger, for kinds that report on the
    #: firing (Email). None when a test runs a kind on its own.
    execution: Any = None
    trigger: Any = None
    #: 1 for the first run of the step, more when it was retried,
    #: redelivered or resumed.
    attempt: int = 1
    #: What earlier attempts of this same step recorded with checkpoint().
    state: dict[str, Any] = field(default_factory=dict)
    #: Called by checkpoint() with the whole state; the runner commits it to
    #: the step's row before returning, so it survives a killed worker.
    persist_state: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)

    def node_count(self, default: int) -> int:
        """How many nodes a size-changing step adds or removes: the chain's
        ``node_count`` (a scaling policy's decision) if it has one, else
        ``default`` (the action's own parameter)."""
        count = self.data.get(NODE_COUNT_KEY)
        return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else default

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
    #: If set, later steps target this node (e.g. the node a deploy made).
    target_node_id: int | None = None


class ActionKind:
    """The base of every kind. A kind declares its parameters as a Django
    form (``Params``): the admin and the console validate an action's JSON
    parameters through it, so every error names the parameter at fault and
    nothing invalid is saved."""

    kind: ClassVar[str]
    label: ClassVar[str]
    #: Every step of this kind acts on the chain's target node: the runner
    #: fails it at once when the chain has none.
    needs_target_node: ClassVar[bool] = False
    #: Steps of this kind may make a new node the chain's target
    #: (StepResult.target_node_id), so later steps can need one.
    sets_target_node: ClassVar[bool] = False
    #: Steps of this kind launch or retire nodes: two automatic chains with
    #: such steps must not run at once on one cluster (each would decide on a
    #: stale size).
    changes_cluster_size: ClassVar[bool] = False
    #: Permissions a person needs to fire (or resume) a step of this kind.
    fire_permissions: ClassVar[tuple[str, ...]] = (FIRE_PERMISSION,)
    #: The console's button that fires an action of this kind by hand.
    fire_label: ClassVar[str] = "Fire…"

    class Params(forms.Form):
        pass

    # -- facts about one action of this kind ----------------------------------

    @classmethod
    def removes_target(cls, action) -> bool:
        """Whether the action retires the chain's target node ("remove this node")."""
        return False

    @classmethod
    def needs_target(cls, action) -> bool:
        """Whether firing the action by hand asks for a target node."""
        return cls.needs_target_node or cls.removes_target(action)

    @classmethod
    def describe_step(cls, action) -> str:
        """What a step of the action will do, in the firing confirmation's
        words; "" when its name and parameters say enough."""
        return ""

    # -- parameters -------------------------------------------------------------

    @classmethod
    def validate_params(cls, params: dict[str, Any], cluster=None) -> dict[str, Any]:
        """Return the cleaned parameters or raise ValidationError on 'params'
        with one message per bad parameter, each naming it."""
        unknown = sorted(set(params) - set(cls.Params.base_fields))
        form = cls.Params(data=params)
        messages = [f"unknown parameter {key!r} (known: {', '.join(cls.Params.base_fields) or 'none'})"
                    for key in unknown]
        if not form.is_valid():
            for field_name, errors in form.errors.items():
                for error in errors:
                    messages.append(f"{field_name}: {error}" if field_name != "__all__" else error)
        if not messages:
            try:
                cls.check_cluster(form.cleaned_data, cluster)
            except ValidationError as exc:
                messages.extend(exc.messages)
        if messages:
            raise ValidationError({"params": messages})
        return {k: v for k, v in form.cleaned_data.items() if v not in (None, "", [])}

    @classmethod
    def check_cluster(cls, params: dict[str, Any], cluster) -> None:
        """Hook: reject parameters the cluster's settings cannot support."""

    @classmethod
    def params_help(cls) -> str:
        parts = []
        for name, param in cls.Params.base_fields.items():
            req = "required" if param.required else "optional"
            parts.append(f"{name} ({req}): {param.help_text}")
        return "; ".join(parts) or "no parameters"

    @classmethod
    def state_for_resume(cls, state: dict[str, Any]) -> dict[str, Any]:
        """What an operator's resume keeps of a failed step's checkpointed
        state (StepContext.checkpoint). By default all of it: a resumed step
        continues where the failed attempt left off."""
        return dict(state)

    # -- running ---------------------------------------------------------------

    def __init__(self, action):
        self.action = action
        self.params = action.params

    def run(self, ctx: StepContext) -> StepResult:  # pragma: no cover - implemented per kind
        """Do the work; raise ActionError on failure. Must honour ctx.deadline."""
        raise NotImplementedError
