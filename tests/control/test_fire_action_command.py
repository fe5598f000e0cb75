"""`manage.py fire_action`: argument errors that name the argument, who is
recorded as the firer, and the end-to-end run through a real worker."""
from __future__ import annotations

import getpass
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from apps.actions.choices import ActionKindChoice as K
from apps.control.choices import ExecutionStatus
from apps.control.models import Execution
from tests.factories import make_action, make_cluster, make_node, make_trigger
from tests.sshkit import trust

@pytest.fixture
def cluster(db, sshd_node, settings, tmp_path):
    trust(settings, tmp_path, sshd_node)
    cluster = make_cluster("web")
    make_node(cluster, sshd_node, "web-1")
    hello = make_action(cluster, K.LOCAL_SCRIPT, {"script": "echo hello from $HOME"}, name="hello")
    make_action(cluster, K.LOCAL_SCRIPT, {"script": "exit 9"}, name="broken")
    make_trigger(cluster, [hello], name="hello")  # same name as the action on purpose
    make_trigger(cluster, [hello], name="only-trigger")
    return cluster


def fire(*args: str) -> str:
    out = StringIO()
    call_command("fire_action", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hello", "--cluster", "nope"], "--cluster: no cluster named 'nope' (clusters: web)"),
        (["hello", "--cluster", "web"], "'action:hello' or 'trigger:hello'"),
        (["ghost", "--cluster", "web"], "name: no action or trigger named 'ghost' in cluster web (actions: broken, "
                                        "hello; triggers: hello, only-trigger)"),
        (["action:only-trigger", "--cluster", "web"], "name: no action named 'only-trigger'"),
        (["action:hello", "--cluster", "web", "--node", "web-9"], "--node: no node named 'web-9' in cluster web "
                                                                  "(nodes: web-1)"),
        (["action:hello", "--cluster", "web", "--user", "mallory"], "--user: no user named 'mallory'"),
    ],
)
def test_bad_arguments_are_named(cluster, args, message):
    with pytest.raises(CommandError) as info:
        fire(*args)
    assert message in str(info.value)
    assert not Execution.objects.exists()


def test_it_records_the_command_line_or_the_user_as_the_firer(cluster):
    out = fire("trigger:only-trigger", "--cluster", "web", "--node", "web-1")
    execution = Execution.objects.get()
    assert out.startswith(f"execution {execution.pk}: trigger only-trigger on web")
    assert execution.fired_by == f"command line ({getpass.getuser()})"
    assert not execution.automatic and execution.trigger.name == "only-trigger"
    assert execution.status == ExecutionStatus.PENDING and execution.target_node.name == "web-1"

    alice = User.objects.create_user("alice")
    fire("action:hello", "--cluster", "web", "--user", "alice")
    latest = Execution.objects.order_by("-pk").first()
    assert latest.fired_by == "user alice" and latest.fired_by_user == alice and latest.action.name == "hello"


def test_inline_runs_to_the_end_and_a_failure_exits_non_zero(cluster, sshd_node):
    out = fire("action:hello", "--cluster", "web", "--node", "web-1", "--inline")
    assert "step 1 " in out and "succeeded" in out
    assert Execution.objects.get().status == ExecutionStatus.SUCCEEDED
    assert f"hello from {sshd_node.home}" in Execution.objects.get().steps.get().output

    with pytest.raises(CommandError, match=r"execution \d+ failed"):
        fire("broken", "--cluster", "web", "--node", "web-1", "--inline")


def test_it_fires_through_the_real_worker_and_waits_for_success(celery_worker, smtp_server):
    smtp_server.clear()
    cluster = make_cluster("shop")
    make_action(cluster, K.EMAIL, {"to": ["ops@example.com"], "subject": "{{ execution.fired_by }} says hi"},
                name="notify")
    User.objects.create_user("alice")

    out = fire("notify", "--cluster", "shop", "--user", "alice", "--wait", "--wait-timeout", "30")

    execution = Execution.objects.get()
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert f"execution {execution.pk} succeeded" in out and "step 1 notify: succeeded" in out
    assert [m.subject for m in smtp_server.wait_for(1)] == ["user alice says hi"]
