"""Control learns what it must know about a kind from the kind itself
(apps/actions/contract.py), never from a list of kind names: a kind
registered here, in a test, blocks concurrent automatic scaling, asks for a
target node, describes its step and demands node management just by
declaring so, with no edit to apps/control."""
from __future__ import annotations

import pytest
from django import forms
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied

from apps.actions.contract import (
    FIRE_PERMISSION,
    MANAGE_NODES_PERMISSION,
    ActionKind,
    StepContext,
    StepResult,
)
from apps.actions.registry import register, unregister
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.console import firing
from apps.control.executions import check_may_fire, fire_trigger, permissions_to_fire, scaling_kinds
from apps.control.models import Execution
from tests.chainkit import make_action, make_cluster, make_trigger

pytestmark = pytest.mark.django_db


class Resize(ActionKind):
    """A kind that changes the cluster's size and may retire the target."""

    kind = "test_resize"
    label = "Resize (tests)"
    changes_cluster_size = True
    fire_permissions = (FIRE_PERMISSION, MANAGE_NODES_PERMISSION)
    fire_label = "Resize now…"

    class Params(forms.Form):
        by = forms.IntegerField()

    @classmethod
    def removes_target(cls, action) -> bool:
        return action.params.get("by", 0) < 0

    @classmethod
    def describe_step(cls, action) -> str:
        return f"resizes the cluster by {action.params['by']}"

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult(summary="resized")


class Note(ActionKind):
    """A kind that declares nothing: the contract's defaults."""

    kind = "test_note"
    label = "Note (tests)"

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult(summary="noted")


@pytest.fixture(autouse=True)
def registered_test_kinds():
    register(Resize)
    register(Note)
    yield
    unregister(Resize)
    unregister(Note)


@pytest.fixture
def cluster():
    return make_cluster()


def test_a_kind_that_changes_the_size_blocks_a_second_automatic_firing(cluster):
    assert Resize.kind in scaling_kinds() and Note.kind not in scaling_kinds()
    grow = make_trigger(cluster, [make_action(cluster, Resize.kind, {"by": 1}, validate=False)])
    first = fire_trigger(grow, reasons={}, enqueue=False)
    second = fire_trigger(grow, reasons={}, enqueue=False)
    assert first.status == ExecutionStatus.PENDING
    assert second.status == ExecutionStatus.BLOCKED and f"execution #{first.pk}" in second.log
    note = make_trigger(cluster, [make_action(cluster, Note.kind, {}, validate=False)])
    assert fire_trigger(note, reasons={}, enqueue=False).status == ExecutionStatus.PENDING


def test_the_firing_page_asks_the_kind_for_its_target_its_words_and_its_button(cluster):
    shrink = make_action(cluster, Resize.kind, {"by": -1}, name="shrink", validate=False)
    grow = make_action(cluster, Resize.kind, {"by": 2}, name="grow", validate=False)
    note = make_action(cluster, Note.kind, {}, name="note", validate=False)
    (step,) = firing.plan_action(shrink)
    assert step.needs_target and firing.removes_target(shrink)
    assert step.text.endswith(": resizes the cluster by -1")
    assert not firing.plan_action(grow)[0].needs_target
    assert firing.plan_action(note)[0].text == "note (test_note)"  # no words of its own
    assert not firing.plan_action(note)[0].needs_target
    assert (grow.fire_label, note.fire_label) == ("Resize now…", "Fire…")  # the console's buttons


def test_the_kinds_say_which_permissions_firing_needs(cluster):
    grow = make_action(cluster, Resize.kind, {"by": 1}, validate=False)
    note = make_action(cluster, Note.kind, {}, validate=False)
    assert permissions_to_fire([note]) == (FIRE_PERMISSION,)
    assert permissions_to_fire([note, grow]) == (FIRE_PERMISSION, MANAGE_NODES_PERMISSION)
    firer = User.objects.create_user("fiona")
    firer.user_permissions.add(Permission.objects.get(codename="fire_trigger"))
    check_may_fire(firer, [note])
    with pytest.raises(PermissionDenied, match="control.manage_nodes"):
        check_may_fire(firer, [note, grow])


def test_the_admin_resumes_only_what_the_user_may_fire(cluster, client):
    grow = make_trigger(cluster, [make_action(cluster, Resize.kind, {"by": 1}, validate=False)], name="grow")
    execution = fire_trigger(grow, reasons={}, enqueue=False)
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.FAILED)
    execution.steps.update(status=StepStatus.FAILED, error="no")
    firer = User.objects.create_user("fiona", is_staff=True)
    firer.user_permissions.add(*Permission.objects.filter(codename__in=["fire_trigger", "view_execution"]))
    client.force_login(firer)
    response = client.post("/admin/control/execution/", {"action": "resume_selected",
                                                         "_selected_action": [execution.pk]}, follow=True)
    assert response.status_code == 200
    assert b"you need the permission(s) control.manage_nodes" in response.content
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED

    firer.user_permissions.add(Permission.objects.get(codename="manage_nodes"))
    firer = User.objects.get(pk=firer.pk)  # a fresh permission cache
    client.force_login(firer)
    client.post("/admin/control/execution/", {"action": "resume_selected", "_selected_action": [execution.pk]})
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.PENDING
