"""The Email kind through Django's real SMTP backend to an aiosmtpd server:
rendered templates, bounded time, and at-most-once sending when a step is
run again (redelivered) for the same firing."""
from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.actions.choices import ActionKindChoice as K
from apps.actions.contract import ActionError, StepContext
from apps.control import chain
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.executions import fire_trigger, resume
from apps.control.models import Execution, ExecutionStep, Node
from tests.chainkit import TARGET
from tests.factories import make_action, make_cluster, make_trigger

pytestmark = pytest.mark.django_db

SUBJECT = "[{{ cluster }}] {{ trigger.name }}: {{ counter }} on {{ node }} = {{ values|join:', ' }}"
BODY = (
    "Execution #{{ execution.pk }} fired by {{ execution.fired_by }}.\n"
    "{% if new_node %}New node: {{ new_node.name }} at {{ new_node.address }}{% endif %}\n"
)


@pytest.fixture
def cluster():
    cluster = make_cluster("shop")
    Node.objects.create(cluster=cluster, name="shop-1", address="127.0.0.1")
    Node.objects.create(cluster=cluster, name="shop-new", address="127.0.0.9")
    return cluster


def email_chain(cluster, **params):
    pick = make_action(cluster, TARGET, {"node": "shop-new"}, validate=False)
    email = make_action(cluster, K.EMAIL, {"to": ["ops@example.com", "oncall@example.com"],
                                           "subject": SUBJECT, "body": BODY, **params})
    return make_trigger(cluster, [pick, email], name="load-high")


def fire(cluster, **params):
    return fire_trigger(email_chain(cluster, **params), reasons={
        "trigger": "load-high", "counter": "load1", "node": "shop-1", "values": [4.2, 5.0]})


def test_the_rendered_message_arrives_at_the_smtp_server(cluster, smtp):
    execution = chain.run_inline(fire(cluster))
    assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values("error"))

    [message] = smtp.wait_for(1)
    # {{ node }} is the chain's target: the node the first step "deployed".
    assert message.subject == "[shop] load-high: load1 on shop-new = 4.2, 5.0"
    assert message.body.replace("\r\n", "\n").strip() == (
        f"Execution #{execution.pk} fired by trigger load-high.\nNew node: shop-new at 127.0.0.9"
    )
    assert set(message.rcpt_tos) == {"ops@example.com", "oncall@example.com"}
    step = execution.steps.get(position=2)
    assert step.state["sent_at"] and "Subject: [shop] load-high" in step.output


def test_a_step_run_again_after_sending_does_not_send_again(cluster, smtp):
    execution = chain.run_inline(fire(cluster))
    step = execution.steps.get(position=2)
    assert len(smtp.wait_for(1)) == 1

    # The same message delivered again: the step is finished, nothing runs.
    assert chain.run_step(step.pk) is None
    # The worker died after sending but before recording the step (it stays
    # "running"), and RabbitMQ redelivers: the checkpoint says "sent".
    ExecutionStep.objects.filter(pk=step.pk).update(status=StepStatus.RUNNING, claim="dead")
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.RUNNING)
    assert chain.run_step(step.pk, redelivered=True) is None
    step.refresh_from_db()
    assert step.status == StepStatus.SUCCEEDED and step.attempts == 2
    assert "not sent again" in step.output
    time.sleep(0.3)
    assert len(smtp.messages) == 1


def test_an_attempt_interrupted_mid_send_is_not_repeated_until_resumed(cluster, smtp):
    execution = fire(cluster)
    pick, email = execution.steps.order_by("position")
    assert chain.run_step(pick.pk) == email.pk
    # An attempt died between "sending" and "sent": it may have been delivered.
    ExecutionStep.objects.filter(pk=email.pk).update(
        status=StepStatus.RUNNING, claim="dead", attempts=1, state={"sending_at": "2026-01-01T00:00:00"},
        lease_expires=timezone.now() - timedelta(seconds=1),
    )
    assert chain.run_step(email.pk) is None
    email.refresh_from_db()
    assert email.status == StepStatus.FAILED and "not sent again" in email.error
    assert smtp.messages == []

    execution = chain.run_inline(resume(execution, fired_by="user alice"))
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert len(smtp.wait_for(1)) == 1


def test_a_refusing_server_fails_the_step_with_its_reply(cluster, smtp):
    smtp.fail_with = "451 Try again later"
    execution = chain.run_inline(fire(cluster))
    email = execution.steps.get(position=2)
    assert email.status == StepStatus.FAILED
    assert "451" in email.error and "Try again later" in email.error
    assert not email.state.get("sending_at")  # nothing accepted: a resume may send


def test_a_server_that_never_answers_fails_within_the_email_timeout(cluster, settings):
    # A listening socket that accepts and never says a word (a hung SMTP server).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = listener.getsockname()
    settings.EMAIL_TIMEOUT = 1
    # One try: the bound under test is one try's e-mail timeout (the runner
    # retries this retryable failure otherwise; tests/control/test_chain_retry.py).
    settings.CHAIN_STEP_RETRY_ATTEMPTS = 1
    try:
        started = time.monotonic()
        execution = chain.run_inline(fire(cluster))
        assert time.monotonic() - started < 3
        email = execution.steps.get(position=2)
        assert email.status == StepStatus.FAILED and "timed out" in email.error.lower()
        assert "failed (retryable)" in email.output and "not tried again" in email.output
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_a_template_error_at_render_time_names_the_template_and_sends_nothing(cluster, smtp):
    action = make_action(cluster, K.EMAIL, {"to": ["ops@example.com"], "subject": "ok",
                                           "body": "{{ cluster.nodes.get }}"})
    ctx = StepContext(cluster=cluster, data={})
    with pytest.raises(ActionError, match="body template: MultipleObjectsReturned"):
        action.kind_class()(action).run(ctx)
    assert not ctx.state  # nothing checkpointed: it never tried to send
    action.params = {**action.params, "body": "fine"}
    with pytest.raises(ActionError, match="the step's deadline passed"):
        action.kind_class()(action).run(StepContext(cluster=cluster, deadline=time.monotonic() - 1))
    assert smtp.messages == []


# -- plain text, readable values, firings by hand (issue 15, bad input 3) ----

EVALUATOR_VALUES = [{"stamp": "2026-11-30T19:45:10+00:00", "value": 3.2},
                    {"stamp": "2026-11-30T19:45:20+00:00", "value": 4.1}]


def test_a_plain_text_mail_is_not_html_escaped_and_values_read_as_numbers(cluster, smtp):
    email = make_action(cluster, K.EMAIL, {
        "to": ["ops@example.com"], "subject": "{{ counter }} on {{ node }}: {{ values }}",
        "body": "Counter {{ counter }} on node {{ node }} breached: {{ values }}.\n"
                "Last: {{ values|last }} at {{ readings.1.stamp }}; cluster {{ cluster }}.\n"})
    trigger = make_trigger(cluster, [email], name="load-high")
    node = cluster.nodes.get(name="shop-1")
    execution = chain.run_inline(fire_trigger(trigger, reasons={
        "trigger": "load-high", "counter": "it's <load> & \"more\"", "node": "shop-1", "node_id": node.pk,
        "values": EVALUATOR_VALUES}))
    assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values("error"))
    [message] = smtp.wait_for(1)
    assert message.subject == "it's <load> & \"more\" on shop-1: 3.2, 4.1"
    body = message.body.replace("\r\n", "\n")
    assert body == (
        "Counter it's <load> & \"more\" on node shop-1 breached: 3.2, 4.1.\n"
        "Last: 4.1 at 2026-11-30T19:45:20+00:00; cluster shop.\n"
    )
    assert "&#x27;" not in body and "&amp;" not in body and "&lt;" not in body


def test_an_email_fired_by_hand_reads_well(cluster, smtp):
    from django.contrib.auth.models import User

    from apps.actions.demo import notify_ops
    from apps.control.executions import fire_action

    alice = User.objects.create_user("alice")
    action = notify_ops(cluster, "ops@example.com")
    plain = make_action(cluster, K.EMAIL, {
        "to": ["ops@example.com"], "subject": "plain",
        "body": "[{{ counter }}] [{{ node }}] [{{ values }}] [{{ trigger }}]"
                "{% if counter %} breached{% else %} by hand: {{ fired_by }}{% endif %}"}, name="plain")
    for fired in (action, plain):
        execution = chain.run_inline(fire_action(fired, cluster=cluster, fired_by_user=alice))
        assert execution.status == ExecutionStatus.SUCCEEDED, list(execution.steps.values("error"))
    demo, bare = smtp.wait_for(2)
    demo_body = demo.body.replace("\r\n", "\n")
    assert "None" not in demo_body and "  " not in demo_body and "&#x27;" not in demo_body
    assert "fired by hand by user alice" in demo_body, demo_body
    assert demo.subject == "PyScaler: notify-ops fired on shop (by hand)"
    assert bare.body.strip() == ("[(fired by hand)] [(fired by hand)] [(fired by hand)] [(fired by hand)]"
                                 " by hand: user alice")


def test_the_help_text_says_what_a_template_sees_when_fired_by_hand():
    from apps.actions.registry import get_kind

    help_text = get_kind(K.EMAIL).params_help()
    assert "by hand" in help_text and "{% if counter %}" in help_text
    assert "values" in help_text and "node" in help_text
