"""Resuming re-runs the steps as recorded (their kind and parameters at
firing time), so the console and API check the permissions of the recorded
kinds, not of what the action has become since (issue 15, security 7)."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from apps.control import executions
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.models import Execution

pytestmark = pytest.mark.django_db


@pytest.fixture
def firer(client, db) -> User:
    """May fire, may not manage nodes (deploy/remove)."""
    user = User.objects.create_user("fiona", password="fiona-pw-1234")
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_cluster", "fire_trigger"]))
    client.force_login(user)
    return user


def _failed(world, user, recorded_kind: str) -> Execution:
    """An execution whose step was recorded with ``recorded_kind``; the action
    itself is an e-mail now (edited since the firing)."""
    execution = executions.fire_action(world.mail, cluster=world.cluster, fired_by_user=user)
    execution.steps.update(kind=recorded_kind, status=StepStatus.FAILED, error="boom",
                           started=timezone.now(), finished=timezone.now())
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.FAILED, finished=timezone.now())
    return Execution.objects.get(pk=execution.pk)


def test_the_console_refuses_to_resume_a_recorded_remove_without_node_permission(client, firer, console_world):
    execution = _failed(console_world, firer, "remove_ec2_node")
    response = client.post(f"/executions/{execution.pk}/resume/")
    assert response.status_code == 403
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.FAILED


def test_the_api_refuses_to_resume_a_recorded_remove_without_node_permission(client, firer, console_world):
    execution = _failed(console_world, firer, "remove_ec2_node")
    response = client.post(f"/api/v1/executions/{execution.pk}/resume", content_type="application/json")
    assert response.status_code == 403
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.FAILED


def test_a_recorded_email_step_may_be_resumed_by_a_firer(client, firer, console_world):
    execution = _failed(console_world, firer, "email")
    response = client.post(f"/executions/{execution.pk}/resume/")
    assert response.status_code == 302
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.PENDING


def test_succeeded_steps_do_not_count(client, firer, console_world):
    """Only the steps that will run again matter."""
    execution = _failed(console_world, firer, "email")
    execution.steps.update(kind="deploy_ec2_node", status=StepStatus.SUCCEEDED)
    second = execution.steps.get()
    second.pk = None
    second.position = 2
    second.kind = "email"
    second.status = StepStatus.FAILED
    second.save()
    response = client.post(f"/executions/{execution.pk}/resume/")
    assert response.status_code == 302
