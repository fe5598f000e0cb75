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


@pytest.mark.django_db
def test_with_ec2_settings_the_demo_autoscales_with_a_policy_and_valid_chains(tmp_path):
    from apps.control.models import ScalingPolicy

    args = ["--ssh-port", "2222", "--ssh-user", "demo", "--ssh-key", str(tmp_path / "key"),
            "--ec2-ami", "ami-12c6146b", "--ec2-subnet", "subnet-0123456789abcdef0"]
    for _ in range(2):
        call_command("demo_setup", *args, stdout=StringIO())
    policy = ScalingPolicy.objects.get(cluster__name="demo", name="demo-size")
    policy.full_clean()
    [counter] = policy.counters.all()
    counter.full_clean()
    assert counter.counter().name == "load1" and counter.target == 1.0
    out, in_ = list(policy.chain("out")), list(policy.chain("in"))
    assert [a.kind_class().label for a in out] == ["DeployEc2Node", "LocalScript", "Email"]
    assert [a.kind_class().label for a in in_] == ["RemoveEc2Node", "Email"]
    for action in out + in_:
        action.full_clean()  # each kind validates its parameters against the cluster
