"""Admin: export as a download, import with the plan shown before anything
changes, a remote's sync button; admins only, CSRF checked."""
from __future__ import annotations

import io
import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.configsync.document import dump, export_document
from apps.configsync.models import RemoteInstance, SyncRecord
from apps.control.models import Cluster

from .confkit import cluster_of, current

IMPORT = "/admin/configsync/remoteinstance/import/"
EXPORT = "/admin/configsync/remoteinstance/export/"


def shown_digest(page: str) -> str:
    return re.search(r'name="plan_digest" value="([0-9a-f]{64})"', page).group(1)


def upload(text: str, name: str = "config.yaml") -> io.BytesIO:
    data = io.BytesIO(text.encode())
    data.name = name
    return data


def test_export_downloads_the_configuration(admin_client_in_group, console_world):
    response = admin_client_in_group.get(EXPORT + "?format=json")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="pyscaler-config-')
    assert response.content.decode() == dump(export_document(), "json")
    page = admin_client_in_group.get("/admin/configsync/remoteinstance/").content.decode()
    assert EXPORT in page and IMPORT in page


def test_import_shows_the_plan_then_applies_it(admin_client_in_group, console_world):
    doc = current()
    cluster_of(doc)["max_size"] = 7
    text = dump(doc)
    preview = admin_client_in_group.post(IMPORT, {"file": upload(text)})
    page = preview.content.decode()
    assert preview.status_code == 200 and "update cluster web\n    max_size: 4 → 7" in page
    assert 'name="apply" value="yes"' in page and "csrfmiddlewaretoken" in page
    assert Cluster.objects.get(name="web").max_size == 4  # nothing yet
    applied = admin_client_in_group.post(IMPORT, {"text": text, "apply": "yes", "plan_digest": shown_digest(page)},
                                         follow=True)
    assert "Configuration imported: plan: 0 to create, 1 to update, 0 to delete" in applied.content.decode()
    assert Cluster.objects.get(name="web").max_size == 7


def test_a_plan_that_changed_since_it_was_shown_is_not_applied(admin_client_in_group, console_world):
    doc = current()
    cluster_of(doc)["max_size"] = 7
    text = dump(doc)
    page = admin_client_in_group.post(IMPORT, {"text": text}).content.decode()
    Cluster.objects.filter(name="web").update(max_size=5)  # someone else, meanwhile
    response = admin_client_in_group.post(IMPORT, {"text": text, "apply": "yes", "plan_digest": shown_digest(page)})
    page = response.content.decode()
    assert "import refused, nothing changed: the plan changed since it was shown" in page
    assert "max_size: 5 → 7" in page and Cluster.objects.get(name="web").max_size == 5


def test_import_shows_a_refusal_and_changes_nothing(admin_client_in_group, console_world):
    doc = current()
    cluster_of(doc)["min_size"] = 50
    response = admin_client_in_group.post(IMPORT, {"text": dump(doc)})  # the preview checks as the apply does
    assert "import refused, nothing changed: cluster web: field min_size" in response.content.decode()
    assert Cluster.objects.get(name="web").min_size == 1


def test_operators_may_export_but_not_import(operator_client, console_world):
    assert operator_client.get(EXPORT).status_code == 200
    assert operator_client.get(IMPORT).status_code == 403
    assert operator_client.post(IMPORT, {"text": dump(current()), "apply": "yes"}).status_code == 403


def test_import_checks_csrf(admin_user_in_group, console_world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user_in_group)
    assert client.post(IMPORT, {"text": dump(current()), "apply": "yes"}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_sync_button_shows_the_plan_then_applies_and_records_it(live_server, admin_user_in_group,
                                                                     monkeypatch):
    """This instance pulls from itself (Django's live server on loopback):
    the plan is empty, and the attempt is recorded."""
    from tests.fixtures.console import make_world

    make_world()
    monkeypatch.setenv("PYSCALER_SECRET_SELF", Token.objects.create(user=admin_user_in_group).key)
    remote = RemoteInstance.objects.create(name="self", base_url=live_server.url,
                                           token_ref="env:PYSCALER_SECRET_SELF")
    client = Client()
    client.force_login(admin_user_in_group)
    form = client.get(f"/admin/configsync/remoteinstance/{remote.pk}/change/").content.decode()
    assert f"/admin/configsync/remoteinstance/{remote.pk}/sync/" in form
    preview = client.get(f"/admin/configsync/remoteinstance/{remote.pk}/sync/").content.decode()
    assert "plan: 0 to create, 0 to update, 0 to delete" in preview and 'value="Apply"' in preview
    applied = client.post(f"/admin/configsync/remoteinstance/{remote.pk}/sync/",
                          {"plan_digest": shown_digest(preview)}, follow=True)
    assert "Sync from self: plan: 0 to create, 0 to update, 0 to delete" in applied.content.decode()
    assert list(SyncRecord.objects.values_list("dry_run", "ok", "by")) == [(False, True, "user alice"),
                                                                          (True, True, "user alice")]
