"""The control half of /api/v1/: status, executions, firing (permissions,
CSRF, token auth), node collection, and the OpenAPI description."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from apps.control import executions
from apps.control.models import Execution
from apps.monitoring import collection
from apps.monitoring.samples import Sample, SeriesRef, floor_stamp

pytestmark = pytest.mark.django_db


def test_cluster_status_has_size_nodes_newest_values_and_triggers(operator_client, console_world, sample_store):
    w = console_world
    stamp = floor_stamp(timezone.now(), 10) - timedelta(seconds=10)
    collection.record([Sample(SeriesRef("ssh", w.nodes[0].pk, w.load.pk), stamp, 2.0)])
    body = operator_client.get("/api/v1/clusters/web").json()
    assert (body["name"], body["size"], body["min_size"], body["max_size"]) == ("web", 2, 1, 4)
    assert [n["name"] for n in body["nodes"]] == ["web-1", "web-2"]
    assert body["nodes"][0]["health"]["state"] in {"ok", "unknown"}
    load = next(c for c in body["counters"] if c["name"] == "load1")
    latest = {c["node_id"]: c for c in load["latest"]}
    assert latest[w.nodes[0].pk]["value"] == 2.0 and latest[w.nodes[0].pk]["breaching"] is True
    assert latest[w.nodes[1].pk]["value"] is None
    (trigger,) = body["triggers"]
    assert trigger["name"] == "high-load" and trigger["timing_minutes"] == 1
    assert trigger["cooldown_left_s"] == 0 and trigger["last_fired_at"] is None
    assert operator_client.get("/api/v1/clusters").json()["results"][0]["name"] == "web"  # paginated (issue 11)
    assert operator_client.get("/api/v1/clusters/nope").status_code == 404


def test_trigger_status_shows_each_series(operator_client, console_world, sample_store):
    body = operator_client.get(f"/api/v1/triggers/{console_world.trigger.pk}/status").json()
    assert body["name"] == "high-load" and body["state"] in {"ok", "no data"}
    assert {s["node"] for s in body["series"]} == {"web-1", "web-2"}
    assert all(s["needed"] == 6 for s in body["series"])  # 1 minute of 10 s samples


def _fire_url(world) -> str:
    return f"/api/v1/triggers/{world.trigger.pk}/fire"


def test_session_firing_needs_the_csrf_token(operator_user, console_world):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator_user)
    response = strict.post(_fire_url(console_world), {}, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Execution.objects.exists()
    strict.get("/")  # sets the csrftoken cookie, as the console page does
    token = strict.cookies["csrftoken"].value
    response = strict.post(_fire_url(console_world), {"target_node": console_world.nodes[0].pk},
                           content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["fired_by"] == "user oscar" and body["fired_by_user"] == "oscar"
    assert body["target_node_name"] == "web-1" and body["automatic"] is False
    assert [s["action_name"] for s in body["steps"]] == ["notify-ops"]
    assert Execution.objects.get().fired_by_user == operator_user


def test_token_firing_needs_no_csrf_and_records_the_user(client, operator_user, console_world):
    token = Token.objects.create(user=operator_user)
    response = client.post(f"/api/v1/actions/{console_world.mail.pk}/fire", {}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 201
    assert Execution.objects.get().fired_by_user == operator_user


def test_firing_without_permission_is_403(client, console_world):
    viewer = User.objects.create_user("vera", password="vera-pw-1234")
    viewer.user_permissions.set(Permission.objects.filter(codename="view_cluster"))
    client.force_login(viewer)
    assert client.post(_fire_url(console_world), {}, content_type="application/json").status_code == 403
    assert client.get("/api/v1/clusters/web").status_code == 200
    assert not Execution.objects.exists()


def test_firing_names_a_bad_target_node(operator_client, console_world):
    from tests.fixtures.console import make_world

    other = make_world("batch")
    for value, text in ((other.nodes[0].pk, "no node with id"), ("first", "valid integer")):
        response = operator_client.post(_fire_url(console_world), {"target_node": value},
                                        content_type="application/json")
        assert response.status_code == 400
        assert list(response.json()) == ["target_node"] and text in response.json()["target_node"][0]
    assert not Execution.objects.exists()
    assert operator_client.post("/api/v1/triggers/999999/fire", {}, content_type="application/json").status_code == 404


def test_executions_list_filters_and_detail(operator_client, operator_user, console_world):
    w = console_world
    by_hand = executions.fire_action(w.mail, cluster=w.cluster, fired_by_user=operator_user)
    automatic = executions.fire_trigger(w.trigger, reasons={"trigger": "high-load", "node_id": w.nodes[0].pk})
    body = operator_client.get("/api/v1/executions").json()
    assert body["count"] == 2 and [e["id"] for e in body["results"]] == [automatic.pk, by_hand.pk]
    body = operator_client.get("/api/v1/executions", {"automatic": "true", "cluster": "web"}).json()
    assert [e["id"] for e in body["results"]] == [automatic.pk]
    assert operator_client.get("/api/v1/executions", {"trigger": w.trigger.pk}).json()["count"] == 1
    for params, name in (({"status": "exploded"}, "status"), ({"trigger": "x"}, "trigger"),
                         ({"automatic": "maybe"}, "automatic")):
        response = operator_client.get("/api/v1/executions", params)
        assert response.status_code == 400 and list(response.json()) == [name]
    detail = operator_client.get(f"/api/v1/executions/{automatic.pk}").json()
    assert detail["trigger"] == "high-load" and detail["reasons"]["trigger"] == "high-load"
    assert detail["steps"][0]["status"] == "pending" and detail["steps"][0]["kind"] == "email"


def test_resume_refuses_an_execution_that_did_not_fail(operator_client, operator_user, console_world):
    execution = executions.fire_action(console_world.mail, cluster=console_world.cluster, fired_by_user=operator_user)
    response = operator_client.post(f"/api/v1/executions/{execution.pk}/resume", content_type="application/json")
    assert response.status_code == 409 and "only a failed execution" in response.json()["detail"]


def test_node_collection_toggle(operator_client, console_world):
    node = console_world.nodes[1]
    response = operator_client.post(f"/api/v1/nodes/{node.pk}/collection", {"enabled": False},
                                    content_type="application/json")
    assert response.status_code == 200 and response.json()["collection_enabled"] is False
    node.refresh_from_db()
    assert node.collection_enabled is False
    response = operator_client.post(f"/api/v1/nodes/{node.pk}/collection", {}, content_type="application/json")
    assert response.status_code == 400 and list(response.json()) == ["enabled"]


def test_openapi_description_lists_every_endpoint(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) >= {
        "/api/v1/series", "/api/v1/clusters", "/api/v1/clusters/{name}", "/api/v1/triggers/{id}/status",
        "/api/v1/triggers/{id}/fire", "/api/v1/actions/{id}/fire", "/api/v1/executions",
        "/api/v1/executions/{id}", "/api/v1/executions/{id}/resume", "/api/v1/nodes/{id}/collection",
    }
    params = {p["name"] for p in spec["paths"]["/api/v1/series"]["get"]["parameters"]}
    assert params == {"kind", "counter", "node", "range", "from", "to", "aggregate", "worst"}  # + issue 11


def test_a_newest_sample_from_missed_rounds_is_shown_but_marked_stale(operator_client, console_world, sample_store):
    w = console_world
    newest = floor_stamp(timezone.now(), 10)
    collection.record([Sample(SeriesRef("ssh", w.nodes[0].pk, w.load.pk), newest - timedelta(seconds=10), 0.5),
                       Sample(SeriesRef("ssh", w.nodes[1].pk, w.load.pk), newest - timedelta(seconds=40), 0.7)])
    load = next(c for c in operator_client.get("/api/v1/clusters/web").json()["counters"] if c["name"] == "load1")
    latest = {c["node_id"]: c for c in load["latest"]}
    assert (latest[w.nodes[0].pk]["value"], latest[w.nodes[0].pk]["stale"]) == (0.5, False)
    assert (latest[w.nodes[1].pk]["value"], latest[w.nodes[1].pk]["stale"]) == (0.7, True)
    page = operator_client.get("/clusters/web/").content.decode()
    assert "stale: rounds missed since" in page
