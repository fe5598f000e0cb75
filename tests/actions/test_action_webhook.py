"""The Webhook kind against a real HTTP server on loopback
(devservers/webhook.py): the payload and its signature as a receiver checks
it, the Slack format, and which answers are tried again — a hung server and
a 500 retried within bounds and visible in the execution, a 4xx not."""
from __future__ import annotations

import json
import time

import pytest

from apps.actions.choices import ActionKindChoice as K
from apps.control import chain
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.executions import fire_action, fire_trigger
from apps.control.models import Execution, ExecutionStep, Node
from devservers.util import free_port
from devservers.webhook import Reply
from tests.chainkit import TARGET
from tests.factories import make_action, make_cluster, make_trigger

pytestmark = pytest.mark.django_db

SECRET_VAR = "PYSCALER_SECRET_WEBHOOK_TEST"
READINGS = [{"stamp": "2026-11-30T19:45:10+00:00", "value": 3.2},
            {"stamp": "2026-11-30T19:45:20+00:00", "value": 4.1}]


@pytest.fixture
def cluster():
    cluster = make_cluster("shop")
    Node.objects.create(cluster=cluster, name="shop-1", address="127.0.0.1")
    return cluster


@pytest.fixture
def fast_retries(settings):
    settings.CHAIN_STEP_RETRY_ATTEMPTS = 3
    settings.CHAIN_STEP_RETRY_BACKOFF_S = 0.05
    settings.CHAIN_STEP_RETRY_MAX_BACKOFF_S = 0.1
    return settings


def fire(cluster, params, *, before=(), timeout_s=30, name="hook") -> Execution:
    hook = make_action(cluster, K.WEBHOOK, params, name=name, timeout_s=timeout_s)
    trigger = make_trigger(cluster, [*before, hook], name=f"load-high-{name}")
    return chain.run_inline(fire_trigger(trigger, reasons={
        "trigger": "load-high", "counter": "load1", "node": "shop-1", "values": READINGS}))


def hook_step(execution: Execution) -> ExecutionStep:
    return execution.steps.get(kind=K.WEBHOOK)


def test_the_payload_arrives_signed_and_the_receiver_verifies_it(cluster, webhook, monkeypatch):
    monkeypatch.setenv(SECRET_VAR, "s3cret-key")
    webhook.secret = "s3cret-key"
    Node.objects.create(cluster=cluster, name="shop-new", address="127.0.0.9")
    pick = make_action(cluster, TARGET, {"node": "shop-new"}, validate=False)
    execution = fire(cluster, {"url": webhook.url("/hook?token=abc"), "secret_ref": f"env:{SECRET_VAR}"},
                     before=[pick])
    assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values("error"))

    [request] = webhook.wait_for(1)
    assert request.signature_ok is True
    assert request.path == "/hook?token=abc"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-pyscaler-delivery"] == f"pyscaler-step-{hook_step(execution).pk}"
    payload = request.json()
    assert payload["cluster"] == "shop" and payload["action"] == "hook"
    assert payload["execution"] == execution.pk
    assert payload["fired_by"] == {"type": "trigger", "name": "load-high-hook",
                                   "label": "trigger load-high-hook"}
    assert payload["counter"] == "load1" and payload["values"] == READINGS
    assert payload["node"] == "shop-new" and payload["deployed_nodes"] == ["shop-new"]
    assert payload["size"] == {"before": 2, "now": 2, "desired": None}
    assert payload["text"] == "PyScaler: trigger load-high-hook on cluster shop (load1 = 3.2, 4.1); size 2 → 2"
    step = hook_step(execution)
    assert step.attempts == 1 and step.state["status"] == 200
    # The output shows the answer, but not the URL's query (tokens travel there).
    assert "HTTP 200 OK" in step.output and "body: ok" in step.output
    assert "token=abc" not in step.output and "?…" in step.output


def test_a_receiver_with_another_secret_refuses_and_it_is_not_retried(cluster, webhook, monkeypatch,
                                                                       fast_retries):
    monkeypatch.setenv(SECRET_VAR, "the-wrong-key")
    webhook.secret = "s3cret-key"
    execution = fire(cluster, {"url": webhook.url(), "secret_ref": f"env:{SECRET_VAR}"})
    step = hook_step(execution)
    assert execution.status == ExecutionStatus.FAILED and step.status == StepStatus.FAILED
    assert [r.signature_ok for r in webhook.received] == [False]
    assert step.attempts == 1
    assert "HTTP 401" in step.error and "bad signature" in step.error and "not retried" in step.error


def test_the_slack_format_sends_only_a_rendered_text(cluster, webhook):
    execution = fire(cluster, {"url": webhook.url("/services/T0/B0/x"), "format": "slack",
                               "text": ":warning: {{ counter }} on {{ node }} in {{ cluster }}: {{ values }}"})
    assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values("error"))
    [request] = webhook.wait_for(1)
    assert request.json() == {"text": ":warning: load1 on shop-1 in shop: 3.2, 4.1"}
    assert "x-pyscaler-signature" not in request.headers  # no secret_ref: unsigned


def test_a_firing_by_hand_says_who(cluster, webhook):
    from django.contrib.auth.models import User

    alice = User.objects.create_user("alice")
    hook = make_action(cluster, K.WEBHOOK, {"url": webhook.url()}, name="hook")
    execution = chain.run_inline(fire_action(hook, cluster=cluster, fired_by_user=alice))
    assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values("error"))
    payload = webhook.wait_for(1)[0].json()
    assert payload["fired_by"] == {"type": "user", "name": "alice", "label": "user alice"}
    assert payload["trigger"] is None and payload["counter"] is None and payload["values"] == []
    assert payload["text"] == "PyScaler: user alice on cluster shop; size 1 → 1"


def test_a_server_answering_500_is_retried_then_fails_visibly(cluster, webhook, fast_retries):
    webhook.default = Reply(500, "database is down\n" + "x" * 5000)
    execution = fire(cluster, {"url": webhook.url()})
    step = hook_step(execution)
    assert execution.status == ExecutionStatus.FAILED and step.status == StepStatus.FAILED
    assert len(webhook.received) == 3 and step.attempts == 3
    # Every try is in the output with the server's answer, bounded.
    assert step.output.count("failed (retryable): POST") == 3, step.output
    assert "HTTP 500 Internal Server Error" in step.error and "database is down" in step.error
    assert "not tried again: 3 tries is the bound" in step.output
    assert len(step.error) < 800 and "x" * 600 not in step.output
    # One delivery id for all tries: a receiver can drop duplicates.
    assert len({r.headers["x-pyscaler-delivery"] for r in webhook.received}) == 1


def test_a_500_then_a_200_succeeds_on_the_second_try(cluster, webhook, fast_retries):
    webhook.replies = [Reply(503, "busy"), Reply(429, "slow down")]
    execution = fire(cluster, {"url": webhook.url()})
    step = hook_step(execution)
    assert execution.status == ExecutionStatus.SUCCEEDED, step.error
    assert len(webhook.received) == 3 and step.attempts == 3
    assert "HTTP 503" in step.output and "HTTP 429" in step.output and "HTTP 200" in step.output


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_4xx_is_not_retried(cluster, webhook, fast_retries, status):
    webhook.default = Reply(status, "no such hook")
    execution = fire(cluster, {"url": webhook.url()})
    step = hook_step(execution)
    assert step.status == StepStatus.FAILED and step.attempts == 1
    assert len(webhook.received) == 1
    assert f"HTTP {status}" in step.error and "no such hook" in step.error and "not retried" in step.error


def test_a_redirect_is_not_followed(cluster, webhook, fast_retries):
    webhook.default = Reply(302, "")
    execution = fire(cluster, {"url": webhook.url()})
    step = hook_step(execution)
    assert step.status == StepStatus.FAILED and step.attempts == 1 and "not followed" in step.error


def test_a_server_that_never_answers_fails_within_timeout_times_tries(cluster, webhook, fast_retries):
    fast_retries.CHAIN_STEP_RETRY_ATTEMPTS = 2
    webhook.default = Reply(200, "too late", delay_s=30)
    started = time.monotonic()
    execution = fire(cluster, {"url": webhook.url(), "timeout_s": 1})
    elapsed = time.monotonic() - started
    step = hook_step(execution)
    assert step.status == StepStatus.FAILED and step.attempts == 2
    assert len(webhook.received) == 2
    assert "timed out" in step.error
    # 2 tries of 1 s and one pause of 0.05 s, with room for a slow machine.
    assert elapsed < 2 * 1 + 0.05 + 1.5, elapsed


def test_the_action_timeout_bounds_all_tries_together(cluster, webhook, fast_retries):
    fast_retries.CHAIN_STEP_RETRY_ATTEMPTS = 10
    webhook.default = Reply(200, "too late", delay_s=30)
    started = time.monotonic()
    execution = fire(cluster, {"url": webhook.url(), "timeout_s": 1}, timeout_s=2)
    step = hook_step(execution)
    assert step.status == StepStatus.FAILED and step.attempts <= 3
    assert time.monotonic() - started < 2 + 1.5


def test_a_refused_connection_is_retried_then_fails(cluster, fast_retries):
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    execution = fire(cluster, {"url": url})
    step = hook_step(execution)
    assert step.status == StepStatus.FAILED and step.attempts == 3
    assert "cannot connect" in step.error and "refused" in step.error.lower()


def test_a_step_delivered_before_a_redelivery_does_not_post_again(cluster, webhook):
    execution = fire(cluster, {"url": webhook.url()})
    step = hook_step(execution)
    ExecutionStep.objects.filter(pk=step.pk).update(status=StepStatus.RUNNING, claim="dead")
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.RUNNING)
    assert chain.run_step(step.pk, redelivered=True) is None
    step.refresh_from_db()
    assert step.status == StepStatus.SUCCEEDED and "not posted again" in step.output
    time.sleep(0.2)
    assert len(webhook.received) == 1


def test_a_url_held_by_a_secret_reference_is_used_and_never_shown(cluster, webhook, monkeypatch):
    monkeypatch.setenv("PYSCALER_SECRET_HOOK_URL", webhook.url("/services/T0/B0/secret-part"))
    execution = fire(cluster, {"url_ref": "env:PYSCALER_SECRET_HOOK_URL", "format": "slack"})
    assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values("error"))
    assert webhook.wait_for(1)[0].path == "/services/T0/B0/secret-part"
    step = hook_step(execution)
    assert "secret-part" not in step.output + step.error
    assert "the URL in env:PYSCALER_SECRET_HOOK_URL" in step.output

    monkeypatch.setenv("PYSCALER_SECRET_HOOK_URL", "ftp://127.0.0.1/secret-part")
    step = hook_step(fire(cluster, {"url_ref": "env:PYSCALER_SECRET_HOOK_URL"}, name="hook2"))
    assert step.status == StepStatus.FAILED and step.attempts == 1
    assert step.error.startswith("url_ref: must be an http:// or https:// URL") and "secret-part" not in step.error


def test_a_missing_secret_fails_the_step_naming_the_parameter(cluster, webhook):
    execution = fire(cluster, {"url": webhook.url(), "secret_ref": "env:PYSCALER_SECRET_NOT_SET_HERE"})
    step = hook_step(execution)
    assert step.status == StepStatus.FAILED and step.error.startswith("secret_ref:")
    assert "PYSCALER_SECRET_NOT_SET_HERE is not set" in step.error
    assert webhook.received == []


def test_sizes_are_the_firing_s_and_the_step_s_and_a_policy_s_desired_size(cluster, webhook):
    """Before: the execution's record; now: the running nodes when the step
    posts (a node retired meanwhile shows); desired: what a policy asked for."""
    hook = make_action(cluster, K.WEBHOOK, {"url": webhook.url()}, name="hook")
    execution = fire_action(hook, cluster=cluster, fired_by="policy cpu-target",
                            reasons={"policy": "cpu-target", "desired_size": 3}, enqueue=False)
    cluster.nodes.update(state="draining")
    chain.run_inline(execution)
    payload = json.loads(webhook.wait_for(1)[0].body)
    assert payload["size"] == {"before": 1, "now": 0, "desired": 3}
    assert payload["policy"] == "cpu-target"
    assert payload["fired_by"] == {"type": "policy", "name": "cpu-target", "label": "policy cpu-target"}


def test_the_readme_s_verification_code_accepts_a_real_request_and_refuses_a_changed_one(
        cluster, webhook, monkeypatch):
    """The snippet receivers copy from the README works on what is really sent."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = readme.split("### The Webhook action", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    verify = namespace["verify"]

    monkeypatch.setenv(SECRET_VAR, "s3cret-key")
    fire(cluster, {"url": webhook.url(), "secret_ref": f"env:{SECRET_VAR}"})
    [request] = webhook.wait_for(1)
    headers = {"X-PyScaler-Timestamp": request.headers["x-pyscaler-timestamp"],
               "X-PyScaler-Signature": request.headers["x-pyscaler-signature"]}
    assert verify(b"s3cret-key", headers, request.body) is True
    assert verify(b"another-key", headers, request.body) is False
    assert verify(b"s3cret-key", headers, request.body.replace(b"shop", b"shoq")) is False
    stale = {**headers, "X-PyScaler-Timestamp": str(int(headers["X-PyScaler-Timestamp"]) - 3600)}
    assert verify(b"s3cret-key", stale, request.body) is False


def test_https_with_the_receiver_s_ca_delivers_and_an_unknown_certificate_is_not_retried(
        cluster, webhook_tls, settings, fast_retries):
    settings.WEBHOOK_CA_BUNDLE = str(webhook_tls.ca_path)
    execution = fire(cluster, {"url": webhook_tls.url()})
    assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values("error"))
    assert webhook_tls.wait_for(1)[0].json()["cluster"] == "shop"

    settings.WEBHOOK_CA_BUNDLE = ""  # certifi's public CAs do not know it
    step = hook_step(fire(cluster, {"url": webhook_tls.url()}, name="hook2"))
    assert step.status == StepStatus.FAILED and step.attempts == 1
    assert "TLS failed" in step.error and "certificate verify failed" in step.error
    assert len(webhook_tls.received) == 1
