"""The base of every action kind.

A kind declares its parameters as a Django form (``Params``): the admin and
the console validate an action's JSON parameters through it, so every error
names the parameter at fault and nothing invalid is saved.
"""
from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError

from ..context import StepContext, StepResult  # noqa: F401  (the kinds' contract)


class ActionError(Exception):
    """A step failed. ``retryable`` says whether running it again may help
    (a timeout, a throttled API) or not (bad parameters, a bound reached)."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class ActionKind:
    kind: ClassVar[str]
    label: ClassVar[str]
    #: Steps of this kind act on the chain's target node (e.g. LocalScript).
    needs_target_node: ClassVar[bool] = False

    class Params(forms.Form):
        pass

    @classmethod
    def validate_params(cls, params: dict[str, Any], cluster=None) -> dict[str, Any]:
        """Return the cleaned parameters or raise ValidationError on 'params'
        with one message per bad parameter, each naming it."""
        unknown = sorted(set(params) - set(cls.Params.base_fields))
        form = cls.Params(data=params)
        messages = [f"unknown parameter {key!r} (known: {', '.join(cls.Params.base_fields) or 'none'})"
                    for key in unknown]
        if not form.is_valid():
            for field, errors in form.errors.items():
                for error in errors:
                    messages.append(f"{field}: {error}" if field != "__all__" else error)
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
        for name, field in cls.Params.base_fields.items():
            req = "required" if field.required else "optional"
            parts.append(f"{name} ({req}): {field.help_text}")
        return "; ".join(parts) or "no parameters"

    @classmethod
    def state_for_resume(cls, state: dict[str, Any]) -> dict[str, Any]:
        """What an operator's resume keeps of a failed step's checkpointed
        state (StepContext.checkpoint). By default all of it: a resumed step
        continues where the failed attempt left off."""
        return dict(state)

    def __init__(self, action):
        self.action = action
        self.params = action.params

    def run(self, ctx: "StepContext") -> "StepResult":  # pragma: no cover - implemented per kind
        """Do the work; raise ActionError on failure. Must honour ctx.deadline."""
        raise NotImplementedError
