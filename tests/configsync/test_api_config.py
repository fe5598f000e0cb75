"""GET /api/v1/config: the export, for holders of control.view_config, with a token."""
from __future__ import annotations

import json

import yaml
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token

from apps.configsync.document import dump, export_document


def token_for(user: User) -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}


def test_it_serves_the_export_to_a_token_holding_view_config(client, admin_user_in_group, console_world):
    response = client.get("/api/v1/config", **token_for(admin_user_in_group))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.content.decode() == dump(export_document(), "json")
    assert json.loads(response.content)["clusters"][0]["name"] == "web"


def test_it_serves_yaml_and_chosen_clusters(client, admin_user_in_group, console_world):
    response = client.get("/api/v1/config?format=yaml&cluster=web", **token_for(admin_user_in_group))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(response.content)["selection"] == ["web"]


def test_bad_parameters_are_named(client, admin_user_in_group, console_world):
    headers = token_for(admin_user_in_group)
    response = client.get("/api/v1/config?cluster=nope", **headers)
    assert response.status_code == 400 and response.json() == {"cluster": ["no cluster named 'nope'"]}
    response = client.get("/api/v1/config?format=xml", **headers)
    assert response.status_code == 400 and "format" in response.json()


def test_it_needs_the_view_config_permission(client, console_world):
    user = User.objects.create_user("viewer", password="viewer-pw-1234")
    user.user_permissions.add(Permission.objects.get(codename="view_cluster"))
    headers = token_for(user)
    response = client.get("/api/v1/config", **headers)
    assert response.status_code == 403
    assert response.json() == {"detail": "you need the permission control.view_config"}
    user.user_permissions.add(Permission.objects.get(codename="view_config", content_type__app_label="control"))
    user = User.objects.get(pk=user.pk)  # permissions are cached per user object
    assert client.get("/api/v1/config", **headers).status_code == 200


def test_a_bad_token_is_refused(client, console_world):
    response = client.get("/api/v1/config", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401 and response.json() == {"detail": "Invalid token."}


def test_the_openapi_description_has_it(client, admin_user_in_group):
    client.force_login(admin_user_in_group)
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/config"]["get"]
    assert operation["operationId"] == "config_export"
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "application/yaml"}
