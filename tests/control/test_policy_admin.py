"""An admin configures a scaling policy through Django admin's own forms;
bad input is refused with the field named and nothing saved."""
import pytest

from apps.control.models import PolicyAction, PolicyCounter, ScalingPolicy, ScheduleWindow, StepBand
from tests.factories import make_action, make_cluster, make_policy, source_kind, ssh_counter

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]


def management(prefix: str, total: int = 0, initial: int = 0) -> dict:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


@pytest.fixture
def admin_client(client, admin_user_in_group):
    client.force_login(admin_user_in_group)
    return client


def policy_form(cluster, counter, **overrides) -> dict:
    data = {
        "cluster": cluster.pk, "name": "size", "description": "", "kind": "target", "enabled": "on",
        "tolerance_pct": "10", "max_step": "2", "warmup_s": "180",
        "scale_out_window_s": "0", "scale_in_window_s": "300",
        "scale_out_cooldown_s": "60", "scale_in_cooldown_s": "300",
        **management("counters", total=1),
        "counters-0-role": "metric", "counters-0-counter_id": f"{source_kind(counter)}:{counter.pk}",
        "counters-0-target": "60",
        **management("schedules", total=1),
        "schedules-0-name": "office", "schedules-0-cron": "0 8 * * 1-5", "schedules-0-duration_minutes": "720",
        "schedules-0-min_size": "3", "schedules-0-max_size": "", "schedules-0-desired_size": "",
        **management("steps"),
    }
    data.update(overrides)
    return data


def errors(response) -> str:
    assert response.status_code == 200, "expected the form again, with errors"
    context = response.context
    parts = [str(context["adminform"].errors)] + [str(f.errors) + str(f.non_form_errors())
                                                  for f in context["inline_admin_formsets"] and
                                                  [i.formset for i in context["inline_admin_formsets"]]]
    return " ".join(parts)


def test_it_creates_a_policy_with_counters_schedule_and_chains(admin_client):
    cluster = make_cluster("web")
    cpu = ssh_counter(cluster, "cpu")
    tell = make_action(cluster, "local_script", {"script": "true"}, name="tell")
    response = admin_client.post("/admin/control/scalingpolicy/add/", policy_form(
        cluster, cpu, **management("steps", total=2), **{
            "steps-0-direction": "out", "steps-0-position": "1", "steps-0-action": tell.pk,
            "steps-1-direction": "in", "steps-1-position": "1", "steps-1-action": tell.pk}))
    assert response.status_code == 302, errors(response)
    policy = ScalingPolicy.objects.get()
    assert policy.counters.get().counter_id == cpu.pk and policy.counters.get().target == 60
    assert ScheduleWindow.objects.get().cron == "0 8 * * 1-5"
    assert list(policy.chain("out")) == [tell] and list(policy.chain("in")) == [tell]


@pytest.mark.parametrize("overrides,field,words", [
    ({"schedules-0-cron": "0 25 * * *"}, "cron", "not a valid cron expression"),
    ({"schedules-0-min_size": ""}, "min_size", "Set a minimum, a maximum or a desired size"),
    ({"counters-0-target": ""}, "target", "Target tracking needs a target"),
    ({"tolerance_pct": "101"}, "tolerance_pct", "less than or equal to 100"),
    ({"max_step": "0"}, "max_step", "greater than or equal to 1"),
])
def test_bad_input_is_refused_with_the_field_named(admin_client, overrides, field, words):
    cluster = make_cluster("web")
    cpu = ssh_counter(cluster, "cpu")
    response = admin_client.post("/admin/control/scalingpolicy/add/", policy_form(cluster, cpu, **overrides))
    text = errors(response)
    assert words in text and field in text
    assert not ScalingPolicy.objects.exists() and not PolicyCounter.objects.exists()


def test_a_counter_of_another_cluster_is_refused(admin_client):
    cluster, other = make_cluster("web"), make_cluster("db")
    foreign = ssh_counter(other, "cpu")
    response = admin_client.post("/admin/control/scalingpolicy/add/", policy_form(cluster, foreign))
    assert "is not a counter of cluster web" in errors(response)
    assert not ScalingPolicy.objects.exists()


def test_overlapping_step_bands_are_refused(admin_client):
    cluster = make_cluster("web")
    cpu = ssh_counter(cluster, "cpu")
    policy = make_policy(cluster, [(cpu, None)], kind="steps")
    row = policy.counters.get()
    url = f"/admin/control/policycounter/{row.pk}/change/"
    data = {"role": "metric", "counter_id": f"{row.source}:{cpu.pk}", "target": "",
            **management("bands", total=2),
            "bands-0-lower": "70", "bands-0-upper": "85", "bands-0-adjustment": "1",
            "bands-1-lower": "80", "bands-1-upper": "", "bands-1-adjustment": "3"}
    response = admin_client.post(url, data)
    assert "overlaps band 70–85 → +1" in errors(response)
    assert not StepBand.objects.exists()
    data["bands-1-lower"] = "85"
    assert admin_client.post(url, data).status_code == 302
    assert StepBand.objects.count() == 2
    assert not PolicyAction.objects.exists()
