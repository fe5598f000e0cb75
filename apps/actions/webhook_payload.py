"""What a webhook step sends: the firing in a JSON object a receiver can
act on, or, for Slack-compatible receivers, only a ``text``.

The facts come from the chain's context, the same the Email kind renders:
who or what fired (a trigger, a scaling policy, or a person), the values
that caused it, and the cluster's size before the firing and when the step
runs (after earlier steps, e.g. a deploy, changed it). A scaling policy's
firing names itself with ``policy`` in its reasons and gives the size it
aims at as ``desired`` (apps/control/policy_runner.py; ``desired_size`` is
read too); both are sent when present.
"""
from __future__ import annotations

from typing import Any

from django.utils import timezone

from .contract import StepContext

#: Schema version of the JSON payload; bumped when a field changes meaning.
PAYLOAD_VERSION = 1


def fired_by(ctx: StepContext) -> dict[str, Any]:
    """{"type": "trigger" | "policy" | "user" | "action", "name": ..., "label": ...}."""
    data = ctx.data
    label = data.get("fired_by") or getattr(ctx.execution, "fired_by", "") or ""
    execution = ctx.execution
    by_hand = bool(data.get("manual")) or (execution is not None and not execution.automatic)
    if data.get("policy"):
        return {"type": "policy", "name": str(data["policy"]), "label": label or f"policy {data['policy']}"}
    if by_hand:
        return {"type": "user", "name": label.removeprefix("user "), "label": label}
    trigger = ctx.trigger.name if ctx.trigger is not None else data.get("trigger")
    if trigger:
        return {"type": "trigger", "name": str(trigger), "label": label or f"trigger {trigger}"}
    return {"type": "action", "name": "", "label": label}


def sizes(ctx: StepContext) -> dict[str, int | None]:
    """The cluster's running size when the chain fired and now; what a
    policy wanted, if one fired it."""
    from apps.control import sizing

    before = getattr(ctx.execution, "size_before", None)
    desired = ctx.data.get("desired", ctx.data.get("desired_size"))
    return {
        "before": before,
        "now": sizing.running_size(ctx.cluster),
        "desired": desired if isinstance(desired, int) else None,
    }


def default_text(payload: dict[str, Any]) -> str:
    """One line for a chat channel when the action gives no ``text`` template."""
    source, size = payload["fired_by"], payload["size"]
    words = f"PyScaler: {source['label'] or 'an action'} on cluster {payload['cluster']}"
    if payload["counter"]:
        words += f" ({payload['counter']}"
        values = [_number(v) for v in payload["values"]]
        words += f" = {', '.join(values)})" if values else ")"
    if size["before"] is not None and size["now"] is not None:
        words += f"; size {size['before']} → {size['now']}"
    if size["desired"] is not None:
        words += f" (desired {size['desired']})"
    return words


def build(ctx: StepContext, action_name: str, text: str | None) -> dict[str, Any]:
    """The JSON payload of the ``json`` format."""
    data = ctx.data
    values = data.get("values") if isinstance(data.get("values"), list) else []
    node = ctx.target_node.name if ctx.target_node is not None else data.get("node")
    deployed = data.get("deployed_node_ids") or []
    payload = {
        "version": PAYLOAD_VERSION,
        "event": "pyscaler.action",
        "cluster": ctx.cluster.name,
        "action": action_name,
        "execution": getattr(ctx.execution, "pk", None) or data.get("execution_id"),
        "fired_by": fired_by(ctx),
        "trigger": ctx.trigger.name if ctx.trigger is not None else data.get("trigger"),
        "policy": data.get("policy"),
        "counter": data.get("counter"),
        "node": node,
        "values": values,
        "size": sizes(ctx),
        "deployed_nodes": _node_names(deployed),
        "sent_at": timezone.now().isoformat(),
    }
    payload["text"] = text if text else default_text(payload)
    return payload


def _node_names(ids: list[int]) -> list[str]:
    from apps.control import sizing

    return [node.name for node in sizing.nodes_by_ids(ids)] if ids else []


def _number(value: Any) -> str:
    # The evaluator sends {"stamp", "value"} readings; a firing by hand or a
    # test may send bare numbers.
    if isinstance(value, dict):
        value = value.get("value")
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)
