"""The Action admin through Django's test client: each bad input gets one
message that names the field at fault (issue 15, bad input 4), and nothing
is saved."""
from __future__ import annotations

import re

import pytest

from apps.actions.models import Action
from apps.control.models import Cluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user_in_group):
    client.force_login(admin_user_in_group)
    return client


def post_action(admin_client, kind: str, params: str) -> list[str]:
    """The error messages the add page shows (every error list on it)."""
    cluster, _ = Cluster.objects.get_or_create(name="web")
    response = admin_client.post("/admin/actions/action/add/", {
        "cluster": cluster.pk, "name": "a", "kind": kind, "params": params, "timeout_s": "60",
    })
    assert response.status_code == 200, "saved although the input is bad"
    html = response.content.decode()
    lists = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S)
    return [re.sub(r"<[^>]+>", "", item) for block in lists for item in re.findall(r"<li>(.*?)</li>", block, re.S)]


@pytest.mark.parametrize("params, named", [
    ('{"to": ["ops@example.com"], "subject": "x"', "parameters"),
    ("not json", "parameters"),
    ("{'to': ['ops@example.com']}", "parameters"),
])
def test_parameters_that_are_not_json_get_one_message(admin_client, params, named):
    messages = post_action(admin_client, "email", params)
    assert len(messages) == 1, messages
    assert named in messages[0].lower() and "json" in messages[0].lower(), messages
    assert not Action.objects.exists()


def test_parameters_that_are_json_but_not_an_object_get_one_message(admin_client):
    messages = post_action(admin_client, "email", '["ops@example.com"]')
    assert len(messages) == 1 and "json object" in messages[0].lower(), messages


@pytest.mark.parametrize("kind, params, named", [
    ("distributed_script", '{"command": ""}', "command"),
    ("distributed_script", '{"command": "   "}', "command"),
    ("local_script", '{"script": ""}', "script"),
    ("local_script", '{"script": "  \\n "}', "script"),
])
def test_an_empty_command_gets_one_message_naming_it(admin_client, kind, params, named):
    messages = post_action(admin_client, kind, params)
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"{named}:"), messages
    assert not Action.objects.exists()


def test_good_parameters_still_save(admin_client):
    cluster = Cluster.objects.create(name="web")
    response = admin_client.post("/admin/actions/action/add/", {
        "cluster": cluster.pk, "name": "a", "kind": "distributed_script",
        "params": '{"command": "uptime"}', "timeout_s": "60",
    })
    assert response.status_code == 302
    assert Action.objects.get().params["command"] == "uptime"


def test_the_change_page_shows_the_parameters_as_json_and_saves_them_unchanged(admin_client):
    cluster = Cluster.objects.create(name="web")
    action = Action.objects.create(cluster=cluster, name="a", kind="distributed_script",
                                   params={"command": "echo 'hi' && uptime"}, timeout_s=60)
    page = admin_client.get(f"/admin/actions/action/{action.pk}/change/")
    assert page.status_code == 200
    assert "{&quot;command&quot;: &quot;echo &#x27;hi&#x27; &amp;&amp; uptime&quot;}" in page.content.decode()
    assert admin_client.get("/admin/actions/action/add/").status_code == 200
    response = admin_client.post(f"/admin/actions/action/{action.pk}/change/", {
        "cluster": cluster.pk, "name": "a", "kind": "distributed_script",
        "params": page.context["adminform"].form["params"].value(), "timeout_s": "60",
    })
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.params["command"] == "echo 'hi' && uptime"
