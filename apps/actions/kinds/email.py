from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.utils import timezone

from ..choices import ActionKindChoice
from ..contract import ActionError, ActionKind, StepContext, StepResult
from ..plain_text import Absent, Named, numbers, render
from ..registry import register
from .fields import EmailListField, TemplateField

#: What subject and body templates see, for the help text.
CONTEXT_HELP = (
    "Templates are plain text (nothing is HTML-escaped) and see: cluster, trigger, counter, node "
    "(each prints as its name), values (the breaching values, printing as \"3.2, 4.1\"; readings "
    "holds each with its stamp), action (this action's name), execution, fired_by (\"trigger …\" "
    "or \"user …\"), fired_by_hand, new_node and new_nodes (nodes an earlier step deployed), now. "
    "Fired by hand, counter, values and node (unless a node was chosen) and trigger (when an "
    "action is fired on its own) print \"(fired by hand)\" and are false: write "
    "{% if counter %}…{% else %}…{% endif %} for text that reads well either way."
)


@register
class Email(ActionKind):
    """An e-mail whose subject and body are templates over the chain's context
    (cluster, trigger, breaching values, new node).

    Sending is at most once: the step checkpoints "sending" before talking to
    the SMTP server and "sent" after it, both committed at once. A redelivered
    step that finds "sent" does not send again; one that finds only "sending"
    (the worker died mid-conversation, the message may have gone) fails
    rather than risk a duplicate, and an operator's resume sends it.
    """

    kind = ActionKindChoice.EMAIL
    label = "Email"

    class Params(forms.Form):
        to = EmailListField(help_text="list of recipient addresses")
        subject = TemplateField(
            max_length=200,
            help_text="template, e.g. 'PyScaler: {{ trigger }} fired on {{ cluster }}'",
        )
        body = TemplateField(required=False, strip=False,
                             help_text="template of the message body. " + CONTEXT_HELP)

    @classmethod
    def describe_step(cls, action) -> str:
        to = action.params.get("to") or []
        return f"sends an e-mail to {', '.join(to) if isinstance(to, list) else to}"

    @classmethod
    def state_for_resume(cls, state: dict[str, Any]) -> dict[str, Any]:
        # The operator chose to send again: forget the interrupted attempt.
        return {k: v for k, v in state.items() if k != "sending_at"}

    def run(self, ctx: StepContext) -> StepResult:
        to = list(self.params["to"])
        if ctx.state.get("sent_at"):
            return StepResult(
                summary=f"already sent at {ctx.state['sent_at']} to {', '.join(to)}; not sent again"
            )
        if ctx.state.get("sending_at"):
            raise ActionError(
                f"an earlier attempt was interrupted while sending (at {ctx.state['sending_at']}); "
                "the message may have been delivered, so it is not sent again. Resume the execution "
                "to send it anyway."
            )
        context = template_context(ctx, self.action)
        subject = _one_line(_render(self.params["subject"], context, "subject"))
        body = _render(self.params.get("body", ""), context, "body")
        timeout = min(float(settings.EMAIL_TIMEOUT), ctx.remaining())
        if timeout <= 0:
            raise ActionError("the step's deadline passed before sending", retryable=True)
        ctx.checkpoint(sending_at=timezone.now().isoformat())
        try:
            connection = get_connection(timeout=timeout)
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to, connection=connection)
        except Exception as exc:  # smtplib, socket and backend errors alike
            # Nothing was accepted: a later attempt may send.
            ctx.checkpoint(sending_at=None)
            raise ActionError(f"sending to {', '.join(to)} failed: {type(exc).__name__}: {exc}",
                              retryable=True) from None
        ctx.checkpoint(sent_at=timezone.now().isoformat())
        ctx.log(f"Subject: {subject}")
        return StepResult(summary=f"sent to {', '.join(to)}")


def template_context(ctx: StepContext, action=None) -> dict[str, Any]:
    """What subject and body templates see: the chain's data (reasons and
    what earlier steps added) plus the objects it refers to, each in a form
    that reads well as plain text; what the firing has not got (a firing by
    hand has no counter) is an Absent that says so."""
    from apps.control import sizing

    data = dict(ctx.data)
    by_hand = bool(data.get("manual")) or (ctx.execution is not None and not ctx.execution.automatic)
    missing = Absent("(fired by hand)" if by_hand else "(none)")
    new_nodes = sizing.nodes_by_ids(data.get("deployed_node_ids") or [])
    readings = data.get("values") if isinstance(data.get("values"), list) else []
    trigger = Named(ctx.trigger) if ctx.trigger is not None else data.get("trigger")
    node = ctx.target_node if ctx.target_node is not None else data.get("node")
    return {
        **data,
        "data": data,
        "values": numbers(readings) if readings else missing,
        "readings": readings,
        "counter": data.get("counter") or missing,
        "cluster": ctx.cluster,
        "trigger": trigger or missing,
        "execution": ctx.execution,
        "node": node or missing,
        "target_node": ctx.target_node,
        "action": getattr(action, "name", ""),
        "fired_by": data.get("fired_by") or getattr(ctx.execution, "fired_by", ""),
        "fired_by_hand": by_hand,
        "new_nodes": new_nodes,
        "new_node": new_nodes[-1] if new_nodes else None,
        "now": timezone.now(),
    }


def _render(source: str, context: dict[str, Any], what: str) -> str:
    try:
        return render(source, context)
    except Exception as exc:  # template errors surface at render time too
        raise ActionError(f"{what} template: {type(exc).__name__}: {exc}") from None


def _one_line(text: str) -> str:
    # A header cannot hold newlines (Django refuses them as header injection).
    return re.sub(r"\s+", " ", text).strip()[:998]
