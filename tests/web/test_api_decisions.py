"""GET /api/v1/clusters/<name>/decisions: a cluster's policy decisions, newest
first, paged like the other lists, in the OpenAPI description."""
from __future__ import annotations

import pytest

from apps.control.policy_runner import evaluate_policies
from tests.evaluatorkit import at, put
from tests.factories import make_cluster, make_policy, ssh_counter

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]


@pytest.fixture
def decided(sample_store):
    cluster, nodes = make_cluster("web", nodes=2, max_size=10, max_step_size=5)
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    policy = make_policy(cluster, [(cpu, 50.0)], scale_in_window_s=600)
    for k, value in ((0, 50), (1, 10), (2, 100)):
        for node in nodes:
            put(sample_store, node, cpu, k, value)
        evaluate_policies(at(k), store=sample_store)
    return cluster, policy


def test_it_lists_the_decisions_newest_first_with_inputs_and_guards(operator_client, decided):
    response = operator_client.get("/api/v1/clusters/web/decisions")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    newest, held, first = body["results"]
    assert first["summary"] == "at 2, as wanted"
    assert held["summary"].startswith("wanted 1, held at 2: scale-in stabilization: 2 recommended within 600 s")
    [effect] = held["effects"]
    assert effect["guard"] == "stabilization" and effect["blocked"] and effect["until"]
    assert held["inputs"]["counters"][0]["value"] == 10 and held["inputs"]["in_service"] == 2
    assert sorted(held["inputs"]["counters"][0]["nodes"]) == ["web-1", "web-2"]
    assert newest["summary"] == "wanted 4, scaling out 2 → 4" and newest["policy"] == "size"
    page = operator_client.get("/api/v1/clusters/web/decisions?limit=1&offset=1").json()
    assert [d["id"] for d in page["results"]] == [held["id"]] and page["next"]


def test_unknown_cluster_and_bad_limit(operator_client, decided):
    assert operator_client.get("/api/v1/clusters/nope/decisions").status_code == 404
    response = operator_client.get("/api/v1/clusters/web/decisions?limit=x")
    assert response.status_code == 400 and "limit" in response.json()


def test_it_needs_a_login(client, decided):
    assert client.get("/api/v1/clusters/web/decisions").status_code in (401, 403)


def test_it_is_in_the_openapi_description(client):
    spec = client.get("/api/v1/openapi.json").json()
    operation = spec["paths"]["/api/v1/clusters/{name}/decisions"]["get"]
    assert operation["operationId"] == "cluster_decisions"
    assert {p["name"] for p in operation["parameters"]} >= {"name", "limit", "offset"}


def test_a_policy_execution_names_its_policy_and_decision(operator_client, sample_store):
    from apps.control.models import Execution
    from tests.factories import make_action

    cluster, nodes = make_cluster("shop", nodes=2, max_size=10, max_step_size=5)
    cpu = ssh_counter(cluster, "cpu", interval_s=60)
    tell = make_action(cluster, "local_script", {"script": "true"}, name="tell")
    make_policy(cluster, [(cpu, 50.0)], scale_out=[tell], dry_run=True)
    for node in nodes:
        put(sample_store, node, cpu, 0, 100)
    evaluate_policies(at(0), store=sample_store)
    execution = Execution.objects.get(cluster=cluster)
    body = operator_client.get(f"/api/v1/executions/{execution.pk}").json()
    assert body["policy"] == "size" and body["trigger"] is None and body["reasons"]["node_count"] == 2
    page = operator_client.get(f"/executions/{execution.pk}/").content.decode()
    assert "scaling policy size (scale out by 2)" in page
    assert "wanted 4, scaling out 2 → 4" in page
