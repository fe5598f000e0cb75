from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from pyscaler.secretrefs import SecretUnavailable, resolve_secret_ref, validate_secret_ref

from .. import webhook_http, webhook_payload
from ..choices import ActionKindChoice
from ..contract import ActionError, ActionKind, StepContext, StepResult
from ..plain_text import render
from ..registry import register
from .email import template_context
from .fields import TemplateField

FORMATS = (("json", "json: the firing as a JSON object (with a text field)"),
           ("slack", "slack: only {\"text\": ...}, for Slack-compatible incoming webhooks"))


def url_problem(value: str, shown: str = "") -> str | None:
    """Why ``value`` cannot be a webhook's URL, or None. Only http and https:
    a worker must not be made to read files or speak other protocols; no
    user:password@, which would store a credential in plain text. ``shown``
    replaces the value in the message when the value is a secret."""
    shown = shown or repr(value)
    if not value or any(c.isspace() for c in value):
        return f"{shown} is not a URL (empty, or it holds spaces)"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"{shown} is not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"must be an http:// or https:// URL, not {parts.scheme or 'one without a scheme'}://"
    if not parts.hostname:
        return f"{shown} names no host"
    if parts.username is not None or parts.password is not None:
        return ("must not hold a user name or password (user:password@host): give the URL "
                "as url_ref when the URL itself is a secret")
    return None


class HttpUrlField(forms.CharField):
    def validate(self, value):
        super().validate(value)
        if value:
            problem = url_problem(value)
            if problem:
                raise ValidationError(problem)


@register
class Webhook(ActionKind):
    """POSTs the firing (cluster, what fired, sizes, values) to a URL,
    signed with HMAC-SHA256 when a secret reference is given.

    Delivery is at least once: a try that got no answer, a 5xx or a 429 is
    retried by the chain runner (apps/control/retries.py), each with the same
    X-PyScaler-Delivery id so a receiver can drop a duplicate; a 2xx is
    checkpointed before the step is acknowledged, so a redelivered step does
    not post again. Another 4xx fails the step at once.
    """

    kind = ActionKindChoice.WEBHOOK
    label = "Webhook"

    class Params(forms.Form):
        url = HttpUrlField(required=False, max_length=2000,
                           help_text="http:// or https:// URL the payload is POSTed to")
        url_ref = forms.CharField(
            required=False, max_length=500, validators=[validate_secret_ref],
            help_text="instead of url: a secret reference (env:PYSCALER_SECRET_… or file:…) holding "
                      "the URL, for URLs that are themselves secrets (Slack's)")
        secret_ref = forms.CharField(
            required=False, max_length=500, validators=[validate_secret_ref],
            help_text="secret reference of the HMAC-SHA256 key: each request then carries "
                      f"{webhook_http.SIGNATURE_HEADER}: sha256=HMAC(key, timestamp + '.' + body) and "
                      f"{webhook_http.TIMESTAMP_HEADER}")
        format = forms.ChoiceField(required=False, choices=FORMATS,
                                   help_text="json (default) or slack")
        text = TemplateField(required=False, max_length=4000,
                             help_text="template of the text field (the Email kind's context); "
                                       "default: one line saying what fired, where, and the sizes")
        timeout_s = forms.FloatField(required=False, min_value=0.1, max_value=120,
                                     help_text="bound on one POST in seconds (default WEBHOOK_TIMEOUT_S); "
                                               "the action's timeout bounds all tries together")

        def clean(self):
            cleaned = super().clean()
            if "url" in self.errors or "url_ref" in self.errors:
                return cleaned
            if bool(cleaned.get("url")) == bool(cleaned.get("url_ref")):
                self.add_error("url", "give either url or url_ref (a secret reference holding the URL), "
                                      "exactly one of them")
            return cleaned

    @classmethod
    def describe_step(cls, action) -> str:
        return f"POSTs the firing to {_shown_url(action.params)}"

    def run(self, ctx: StepContext) -> StepResult:
        if ctx.state.get("delivered_at"):
            return StepResult(summary=f"already delivered at {ctx.state['delivered_at']} "
                                      f"(HTTP {ctx.state.get('status')}); not posted again")
        url, shown = self._url(), _shown_url(self.params)
        body = self._body(ctx)
        timeout = min(float(self.params.get("timeout_s") or settings.WEBHOOK_TIMEOUT_S), ctx.remaining())
        if timeout <= 0:
            raise ActionError("the step's deadline passed before posting", retryable=True)
        try:
            answer = webhook_http.post(url, body, self._headers(ctx, body), timeout)
        except webhook_http.DeliveryFailed as exc:
            raise ActionError(f"POST {shown}: {exc}", retryable=exc.retryable) from None
        outcome = f"POST {shown} (try {ctx.attempt}): {answer.describe()}"
        if not answer.delivered:
            why = ("worth another try" if answer.retryable
                   else "not retried: the same request would get the same answer")
            raise ActionError(f"{outcome} [{why}]", retryable=answer.retryable)
        ctx.checkpoint(delivered_at=timezone.now().isoformat(), status=answer.status)
        ctx.log(outcome)
        return StepResult(summary=f"delivered to {shown}: HTTP {answer.status}")

    # -- parts ---------------------------------------------------------------

    def _url(self) -> str:
        if self.params.get("url"):
            return self.params["url"]
        try:
            url = resolve_secret_ref(self.params["url_ref"])
        except SecretUnavailable as exc:
            raise ActionError(f"url_ref: {exc}") from None
        problem = url_problem(url, shown="the URL it holds")  # a secret: never echoed
        if problem:
            raise ActionError(f"url_ref: {problem}")
        return url

    def _body(self, ctx: StepContext) -> bytes:
        text = None
        if self.params.get("text"):
            try:
                text = render(self.params["text"], template_context(ctx, self.action))
            except Exception as exc:  # template errors surface at render time too
                raise ActionError(f"text template: {type(exc).__name__}: {exc}") from None
        payload: dict[str, Any] = webhook_payload.build(ctx, getattr(self.action, "name", ""), text)
        if self.params.get("format") == "slack":
            payload = {"text": payload["text"]}
        return json.dumps(payload, default=str).encode()

    def _headers(self, ctx: StepContext, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            webhook_http.DELIVERY_HEADER: ctx.step_id or "",
            webhook_http.TIMESTAMP_HEADER: timestamp,
        }
        if self.params.get("secret_ref"):
            try:
                secret = resolve_secret_ref(self.params["secret_ref"])
            except SecretUnavailable as exc:
                raise ActionError(f"secret_ref: {exc}") from None
            headers[webhook_http.SIGNATURE_HEADER] = webhook_http.sign(secret, timestamp, body)
        return headers


def _shown_url(params: dict[str, Any]) -> str:
    """The URL as the step's output shows it: without its query (tokens
    often travel there); a url_ref's URL is a secret, so only the reference."""
    if not params.get("url"):
        return f"the URL in {params.get('url_ref', '?')}"
    parts = urlsplit(params["url"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")
