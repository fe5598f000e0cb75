"""`manage.py demo_setup`: the demo configuration loads, twice, and its
e-mail action passes its kind's own validation (the action's data lives in
apps/actions/demo.py, so control names no kind)."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.actions.models import Action
from apps.control.models import Trigger


@pytest.mark.django_db
def test_the_demo_configuration_loads_idempotently_with_a_valid_email_action(tmp_path):
    args = ["--ssh-port", "2222", "--ssh-user", "demo", "--ssh-key", str(tmp_path / "key"),
            "--mail-to", "ops@example.org"]
    for _ in range(2):
        call_command("demo_setup", *args, stdout=StringIO())
    action = Action.objects.get(cluster__name="demo", name="notify-ops")
    action.full_clean()
    assert action.kind_class().label == "Email"
    assert action.params["to"] == ["ops@example.org"]
    trigger = Trigger.objects.get(cluster__name="demo", name="demo-high-load")
    assert list(trigger.ordered_actions()) == [action]
