"""Console pages through Django's test client: who sees what, firing by
hand with its confirmation, node management, execution history."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.utils import timezone

from apps.actions.models import Action
from apps.control import executions
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.models import Execution
from apps.monitoring import collection
from apps.monitoring.samples import CollectionError, Sample, floor_stamp

pytestmark = pytest.mark.django_db

PAGES = ["/", "/clusters/web/", "/executions/", "/graphs/ssh/{load}/"]


def _url(template: str, world) -> str:
    return template.format(load=world.load.pk)


@pytest.fixture
def viewer(db) -> User:
    """Logged in, may view, but fires nothing (view_* permissions only)."""
    user = User.objects.create_user("vera", password="vera-pw-1234")
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_",
                                                        content_type__app_label="control"))
    return user


@pytest.mark.parametrize("template", PAGES)
def test_anonymous_visitors_go_to_the_login_page(client, console_world, template):
    url = _url(template, console_world)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_login_page_logs_an_operator_in_and_lands_on_the_console(client, operator_user):
    assert b"Log in to PyScaler" in client.get("/login/").content
    response = client.post("/login/", {"username": "oscar", "password": "oscar-pw-1234"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_user_without_console_permission_gets_403_not_a_login_loop(client, db):
    user = User.objects.create_user("nobody", password="nobody-pw-1234")
    client.force_login(user)
    assert client.get("/").status_code == 403


def test_overview_shows_size_health_triggers_and_newest_values(operator_client, console_world, sample_store):
    now = timezone.now()
    stamp = floor_stamp(now, 10) - timedelta(seconds=10)
    w = console_world
    collection.record([
        Sample(_ssh(w, 0), stamp, 0.42),
        Sample(_ssh(w, 1), stamp, 2.5),
        CollectionError(node_id=w.nodes[1].pk, message="JVM refused the connection", jvm_id=w.jvm.pk),
    ])
    body = operator_client.get("/").content.decode()
    assert 'data-cluster="web"' in body
    assert "size <b>2</b>" in body and "(1..4)" in body
    assert "high-load" in body
    assert ">0.42<" in body
    assert 'class="num breach"' in body and ">2.5<" in body  # 2.5 >= 1.5 breaches
    assert "Configuration (read-only)" in body and "Configuration (admin)" not in body


def _ssh(world, index: int):
    from apps.monitoring.samples import SeriesRef

    return SeriesRef("ssh", world.nodes[index].pk, world.load.pk)


def test_admins_see_the_link_to_django_admin(admin_client_in_group, console_world, sample_store):
    body = admin_client_in_group.get("/").content.decode()
    assert 'href="/admin/"' in body and "Configuration (admin)" in body


def test_cluster_page_lists_nodes_counters_graphs_and_fire_buttons(operator_client, console_world, sample_store):
    w = console_world
    body = operator_client.get("/clusters/web/").content.decode()
    for text in ('data-node="web-1"', 'data-node="web-2"', "load1", "heap_used", "data-mini-graph",
                 f'/clusters/web/triggers/{w.trigger.pk}/fire/', f'/clusters/web/actions/{w.mail.pk}/fire/',
                 "Pause collection"):
        assert text in body, text


def test_partial_returns_only_the_live_fragment(operator_client, console_world, sample_store):
    body = operator_client.get("/clusters/web/?partial=1").content.decode()
    assert body.lstrip().startswith('<div id="cluster-live"')
    assert "<html" not in body


def test_viewer_sees_no_fire_buttons_and_cannot_fire(client, viewer, console_world, sample_store):
    client.force_login(viewer)
    body = client.get("/clusters/web/").content.decode()
    assert "/fire/" not in body and "Pause collection" not in body
    assert client.get(f"/clusters/web/triggers/{console_world.trigger.pk}/fire/").status_code == 403
    assert client.post(f"/clusters/web/triggers/{console_world.trigger.pk}/fire/").status_code == 403
    assert not Execution.objects.exists()


def test_firing_a_trigger_asks_first_naming_the_steps(operator_client, console_world):
    w = console_world
    body = operator_client.get(f"/clusters/web/triggers/{w.trigger.pk}/fire/").content.decode()
    assert "Fire trigger high-load?" in body
    assert "notify-ops (Email" in body and "sends an e-mail to ops@example.com" in body
    assert not Execution.objects.exists()  # asking fires nothing


def test_firing_a_trigger_records_the_user_and_opens_the_execution(operator_client, operator_user, console_world):
    w = console_world
    response = operator_client.post(f"/clusters/web/triggers/{w.trigger.pk}/fire/",
                                    {"target_node": w.nodes[1].pk})
    execution = Execution.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/executions/{execution.pk}/"
    assert execution.fired_by_user == operator_user
    assert execution.fired_by == "user oscar" and not execution.automatic
    assert execution.target_node == w.nodes[1]
    assert [s.action_name for s in execution.steps.all()] == ["notify-ops"]
    page = operator_client.get(response["Location"]).content.decode()
    assert "Execution #" in page and "notify-ops" in page and "user oscar" in page


def test_firing_needs_a_target_node_when_a_step_acts_on_one(operator_client, console_world):
    w = console_world
    script = Action.objects.create(cluster=w.cluster, name="restart-app", kind="local_script",
                                   params={"script": "echo restarting"}, timeout_s=30)
    url = f"/clusters/web/actions/{script.pk}/fire/"
    body = operator_client.get(url).content.decode()
    assert "on the target node" in body and "Required: a step acts on the target node." in body
    response = operator_client.post(url, {})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    assert not Execution.objects.exists()
    response = operator_client.post(url, {"target_node": w.nodes[0].pk})
    assert response.status_code == 302
    assert Execution.objects.get().target_node == w.nodes[0]


def test_a_target_node_of_another_cluster_is_refused(operator_client, console_world):
    from tests.fixtures.console import make_world

    other = make_world("batch")
    response = operator_client.post(f"/clusters/web/actions/{console_world.mail.pk}/fire/",
                                    {"target_node": other.nodes[0].pk})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Execution.objects.exists()


def test_deploy_and_remove_need_the_node_management_permission(client, console_world):
    w = console_world
    deploy = Action.objects.create(cluster=w.cluster, name="add-node", kind="deploy_ec2_node", params={})
    firer = User.objects.create_user("fiona", password="fiona-pw-1234")
    firer.user_permissions.set(Permission.objects.filter(codename__in=["view_cluster", "fire_trigger"]))
    client.force_login(firer)
    assert client.get(f"/clusters/web/actions/{deploy.pk}/fire/").status_code == 403
    assert client.get(f"/clusters/web/actions/{w.mail.pk}/fire/").status_code == 200


def test_fire_post_without_csrf_token_is_refused(operator_user, console_world):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator_user)
    response = strict.post(f"/clusters/web/triggers/{console_world.trigger.pk}/fire/", {})
    assert response.status_code == 403
    assert not Execution.objects.exists()


def test_operator_pauses_and_resumes_collection_recorded_in_admin_history(operator_client, operator_user,
                                                                          console_world):
    node = console_world.nodes[0]
    response = operator_client.post(f"/nodes/{node.pk}/collection/", {"enabled": "0"})
    assert response.status_code == 302
    node.refresh_from_db()
    assert node.collection_enabled is False
    entry = LogEntry.objects.get(object_id=str(node.pk))
    assert entry.user == operator_user and "collection disabled" in entry.get_change_message()
    operator_client.post(f"/nodes/{node.pk}/collection/", {"enabled": "1"})
    node.refresh_from_db()
    assert node.collection_enabled is True


def test_viewer_cannot_pause_collection(client, viewer, console_world):
    client.force_login(viewer)
    node = console_world.nodes[0]
    assert client.post(f"/nodes/{node.pk}/collection/", {"enabled": "0"}).status_code == 403
    node.refresh_from_db()
    assert node.collection_enabled is True


def _failed_execution(world, user) -> Execution:
    execution = executions.fire_action(world.mail, cluster=world.cluster, fired_by_user=user)
    execution.steps.update(status=StepStatus.FAILED, error="SMTP refused: 550 no such user",
                           started=timezone.now(), finished=timezone.now())
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.FAILED, finished=timezone.now())
    return Execution.objects.get(pk=execution.pk)


def test_execution_list_filters_and_names_a_bad_filter(operator_client, operator_user, console_world):
    failed = _failed_execution(console_world, operator_user)
    ok = executions.fire_trigger(console_world.trigger, reasons={}, fired_by_user=operator_user)
    body = operator_client.get("/executions/?status=failed").content.decode()
    assert f'data-execution="{failed.pk}"' in body and f'data-execution="{ok.pk}"' not in body
    body = operator_client.get("/executions/?status=exploded").content.decode()
    assert "status: &#x27;exploded&#x27; is not one of" in body


def test_failed_execution_shows_the_error_and_can_be_resumed(operator_client, operator_user, console_world):
    failed = _failed_execution(console_world, operator_user)
    body = operator_client.get(f"/executions/{failed.pk}/").content.decode()
    assert "SMTP refused: 550 no such user" in body and 'id="resume"' in body
    assert 'data-live="0"' in body  # finished: the page stops polling
    response = operator_client.post(f"/executions/{failed.pk}/resume/")
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == ExecutionStatus.PENDING and "resumed by user oscar" in failed.log


def test_running_execution_page_keeps_polling(operator_client, operator_user, console_world):
    execution = executions.fire_trigger(console_world.trigger, reasons={}, fired_by_user=operator_user)
    body = operator_client.get(f"/executions/{execution.pk}/").content.decode()
    assert 'data-live="1"' in body and 'data-status="pending"' in body


def test_operator_cannot_reach_an_admin_edit_form(operator_client, console_world):
    cluster = console_world.cluster
    assert operator_client.get("/admin/control/cluster/add/").status_code == 403
    change = operator_client.get(f"/admin/control/cluster/{cluster.pk}/change/")
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()  # read-only view
    assert operator_client.post(f"/admin/control/cluster/{cluster.pk}/change/",
                                {"name": "renamed"}).status_code == 403
    cluster.refresh_from_db()
    assert cluster.name == "web"


def test_operators_group_has_the_firing_permissions():
    operators = Group.objects.get(name="operators")
    codenames = set(operators.permissions.values_list("codename", flat=True))
    assert {"fire_trigger", "manage_nodes", "view_cluster"} <= codenames
    assert "change_cluster" not in codenames


def test_the_live_execution_list_keeps_its_filters_and_one_partial_flag(operator_client, console_world):
    body = operator_client.get("/executions/?status=failed&partial=1").content.decode()
    assert 'data-live-url="/executions/?status=failed&amp;partial=1"' in body
