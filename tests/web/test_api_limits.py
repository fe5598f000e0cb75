"""/api/v1/executions?limit=… has a maximum (issue 15, security 8): asking
for more is a 400 naming ``limit``, not a query over the whole table."""
from __future__ import annotations

import pytest

from apps.web.api.pagination import MAX_LIMIT

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("limit", [MAX_LIMIT + 1, 10**9, 10**30])
def test_a_limit_above_the_maximum_is_a_400_naming_limit(operator_client, console_world, limit):
    response = operator_client.get("/api/v1/executions", {"limit": limit})
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"limit": [f"limit may be at most {MAX_LIMIT}"]}


@pytest.mark.parametrize("limit", ["x", "-1", "1.5"])
def test_a_limit_that_is_not_a_count_is_a_400_naming_limit(operator_client, console_world, limit):
    response = operator_client.get("/api/v1/executions", {"limit": limit})
    assert response.status_code == 400, response.content[:300]
    assert list(response.json()) == ["limit"]


@pytest.mark.parametrize("limit", [1, MAX_LIMIT])
def test_a_limit_up_to_the_maximum_is_served(operator_client, console_world, limit):
    response = operator_client.get("/api/v1/executions", {"limit": limit})
    assert response.status_code == 200
    assert "results" in response.json()


def test_the_openapi_description_states_the_maximum(operator_client):
    spec = operator_client.get("/api/v1/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/v1/executions"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == MAX_LIMIT
