"""The Webhook action's parameters in the admin: each bad input gets a
message naming the parameter at fault, and nothing is saved."""
from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from apps.actions.choices import ActionKindChoice as K
from apps.actions.models import Action
from apps.actions.registry import get_kind
from tests.actions.test_action_admin import post_action

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user_in_group):
    client.force_login(admin_user_in_group)
    return client


@pytest.mark.parametrize("params, named, words", [
    ({"url": "ftp://127.0.0.1/hook"}, "url", "http:// or https://"),
    ({"url": "file:///etc/passwd"}, "url", "http:// or https://"),
    ({"url": "javascript:alert(1)"}, "url", "http:// or https://"),
    ({"url": "127.0.0.1:8080/hook"}, "url", "http:// or https://"),
    ({"url": "http:///hook"}, "url", "names no host"),
    ({"url": "http://127.0.0.1:99999/hook"}, "url", "not a valid URL"),
    ({"url": "http://hooks example.com/x"}, "url", "holds spaces"),
    ({"url": "https://bob:pw@hooks.example.com/x"}, "url", "user name or password"),
    ({}, "url", "either url or url_ref"),
    ({"url": "https://hooks.example.com/x", "url_ref": "env:PYSCALER_SECRET_URL"}, "url", "exactly one"),
    ({"url_ref": "https://hooks.example.com/x"}, "url_ref", "not a secret reference"),
    ({"url": "https://hooks.example.com/x", "secret_ref": "s3cret"}, "secret_ref", "not a secret reference"),
    ({"url": "https://hooks.example.com/x", "secret_ref": "env:AWS_SECRET_ACCESS_KEY"}, "secret_ref",
     "outside the secret prefix"),
    ({"url": "https://hooks.example.com/x", "format": "xml"}, "format", "xml"),
    ({"url": "https://hooks.example.com/x", "timeout_s": 0}, "timeout_s", "greater than or equal to 0.1"),
    ({"url": "https://hooks.example.com/x", "timeout_s": 500}, "timeout_s", "less than or equal to 120"),
    ({"url": "https://hooks.example.com/x", "text": "{% if %}"}, "text", "template error"),
    ({"url": "https://hooks.example.com/x", "headers": {"X": "1"}}, "headers", "unknown parameter"),
])
def test_a_bad_parameter_gets_one_message_naming_it(admin_client, params, named, words):
    messages = post_action(admin_client, K.WEBHOOK, json.dumps(params))
    assert len(messages) == 1, messages
    assert named in messages[0] and words in messages[0], messages
    assert messages[0].startswith(f"{named}:") or named == "headers", messages
    assert not Action.objects.exists()


def test_good_parameters_save_and_the_help_lists_them(admin_client):
    from apps.control.models import Cluster

    cluster = Cluster.objects.create(name="web")
    params = {"url": "http://alertmanager:9093/hook", "secret_ref": "env:PYSCALER_SECRET_HOOK",
              "format": "slack", "text": "{{ cluster }}", "timeout_s": 2.5}
    response = admin_client.post("/admin/actions/action/add/", {
        "cluster": cluster.pk, "name": "hook", "kind": K.WEBHOOK, "params": json.dumps(params),
        "timeout_s": "60"})
    assert response.status_code == 302
    assert Action.objects.get().params == params
    page = admin_client.get("/admin/actions/action/add/").content.decode()
    assert "<b>Webhook</b>" in page and "secret_ref" in page and "url_ref" in page


def test_the_model_refuses_a_bad_url_written_around_the_form():
    with pytest.raises(ValidationError) as caught:
        get_kind(K.WEBHOOK).validate_params({"url": "gopher://127.0.0.1/"})
    assert caught.value.message_dict["params"] == [
        "url: must be an http:// or https:// URL, not gopher://"]
