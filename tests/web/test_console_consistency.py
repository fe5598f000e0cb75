"""The console says the same thing the same way on every page (issue 15,
bad input 8 and 9): one time format, one number format, kinds by their
display names, parameters as a list, progress that never reads "29/6", an
execution that runs while its step runs, and no request for a missing icon."""
from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from apps.control import executions
from apps.control.choices import ExecutionStatus, StepStatus
from apps.control.models import Execution
from apps.monitoring import collection
from apps.monitoring.samples import CollectionError, Sample, SeriesRef, floor_stamp

pytestmark = pytest.mark.django_db

# "2026-11-30 19:45:11 UTC": the one way a console page writes a time.
ONE_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
ANY_TIME = re.compile(r"(?:\d{4}-\d\d-\d\d )?\d{1,2}:\d\d(?::\d\d)?(?:\s*[ap]\.?m\.?|\s*[AP]M)?(?: UTC)?",
                      re.IGNORECASE)


def times_in(body: str) -> list[str]:
    text = re.sub(r"<script.*?</script>", "", body, flags=re.S)
    return ANY_TIME.findall(text)


def _ran(world, user) -> Execution:
    execution = executions.fire_action(world.mail, cluster=world.cluster, fired_by_user=user)
    now = timezone.now()
    execution.steps.update(status=StepStatus.FAILED, error="SMTP refused", started=now - timedelta(seconds=3),
                           finished=now)
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.FAILED, started=now - timedelta(seconds=4),
                                                     finished=now)
    return Execution.objects.get(pk=execution.pk)


def test_every_console_page_writes_times_one_way(operator_client, operator_user, console_world, sample_store):
    w = console_world
    stamp = floor_stamp(timezone.now(), 10) - timedelta(seconds=10)
    collection.record([Sample(SeriesRef("ssh", w.nodes[0].pk, w.load.pk), stamp, 0.5),
                       CollectionError(node_id=w.nodes[1].pk, message="refused", jvm_id=w.jvm.pk)])
    execution = _ran(w, operator_user)
    pages = ["/", "/clusters/web/", "/executions/", f"/executions/{execution.pk}/",
             f"/graphs/ssh/{w.load.pk}/"]
    seen = 0
    for path in pages:
        body = operator_client.get(path).content.decode()
        for found in times_in(body):
            assert ONE_FORMAT.match(found), f"{path}: {found!r}"
            seen += 1
    assert seen >= 6  # updated stamps, sample stamps, created/started/finished, the error's time


def test_the_graph_page_gives_its_script_the_time_zone_and_the_threshold_label(operator_client, console_world):
    w = console_world
    body = operator_client.get(f"/graphs/jmx/{w.heap.pk}/").content.decode()
    assert '"timeZone": "UTC"' in body
    # The page's text and the chart's legend both say 512M (the script gets the label).
    assert "&gt;= 512M" in body and '"thresholdLabel": "512M"' in body


def test_breach_progress_is_capped_and_explained_during_cooldown(console_world):
    row = {"trigger": console_world.trigger, "state": "cooling down",
           "status": SimpleNamespace(progress=1.0, cooldown_left_s=120, store_error=None,
                                     series=[{"label": "load1 on web-1", "count": 29, "needed": 6,
                                              "latest_value": 2.0}])}
    html = render_to_string("console/_triggers.html", {"rows": [row], "compact": False})
    assert "29/6" not in html
    assert "6/6 (cooling down)" in html


def test_an_execution_whose_step_runs_is_shown_running(operator_client, operator_user, console_world):
    execution = executions.fire_action(console_world.mail, cluster=console_world.cluster,
                                       fired_by_user=operator_user)
    execution.steps.update(status=StepStatus.RUNNING, started=timezone.now())
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.PENDING
    body = operator_client.get(f"/executions/{execution.pk}/").content.decode()
    header = re.search(r'<span class="badge status-(\w+)" id="execution-status">([^<]*)</span>', body)
    assert header and header.groups() == ("running", "running")
    listing = operator_client.get("/executions/").content.decode()
    row = re.search(rf'data-execution="{execution.pk}".*?</tr>', listing, re.S).group(0)
    assert "running" in row and "pending" not in row


def test_kinds_are_written_by_their_display_name(operator_client, operator_user, console_world):
    w = console_world
    w.mail.kind = "distributed_script"
    w.mail.params = {"command": "uptime"}
    w.mail.save()
    execution = executions.fire_action(w.mail, cluster=w.cluster, fired_by_user=operator_user)
    for path in ("/clusters/web/", f"/executions/{execution.pk}/"):
        body = operator_client.get(path).content.decode()
        assert "DistributedScript" in body, path
        assert "distributed_script" not in body.replace('"distributed_script"', ""), path


def test_action_parameters_are_a_definition_list(operator_client, console_world):
    body = operator_client.get("/clusters/web/").content.decode()
    row = re.search(r'<tr data-action="notify-ops">.*?</tr>', body, re.S).group(0)
    assert '<dl class="params">' in row
    assert "<dt>to</dt><dd>ops@example.com</dd>" in row
    assert "<dt>subject</dt><dd>{{ trigger }} on {{ cluster }}</dd>" in row
    assert "&quot;to&quot;" not in row and '{"' not in row


def test_backticks_in_a_description_become_code(operator_client, console_world, sample_store):
    cluster = console_world.cluster
    cluster.description = "Reached through the sshd started by `make run` <b>here</b>."
    cluster.save()
    body = operator_client.get("/").content.decode()
    assert "by <code>make run</code> &lt;b&gt;here&lt;/b&gt;." in body
    assert "`" not in body


def test_every_page_links_an_icon_that_exists(operator_client, console_world, sample_store):
    anonymous = Client()
    for client, path in ((anonymous, "/login/"), (operator_client, "/"), (operator_client, "/executions/")):
        body = client.get(path).content.decode()
        icon = re.search(r'<link rel="icon" [^>]*href="([^"]+)"', body)
        assert icon, path
        assert b"".join(anonymous.get(icon.group(1)).streaming_content).startswith(b"<svg")
    response = anonymous.get("/favicon.ico")
    assert response.status_code in (200, 301, 302)
    if response.status_code != 200:
        assert anonymous.get(response["Location"]).status_code == 200


def test_the_cluster_pages_graphs_open_on_the_range_they_show(operator_client, console_world, sample_store):
    w = console_world
    body = operator_client.get("/clusters/web/").content.decode()
    assert "last 15 minutes" in body
    assert f'href="/graphs/ssh/{w.load.pk}/?range=15m"' in body
    assert 'data-range="15m"' in body
    graph = operator_client.get(f"/graphs/ssh/{w.load.pk}/?range=15m").content.decode()
    assert 'data-range="15m" class="active"' in graph


def test_admin_writes_times_as_the_console_does(admin_client_in_group, operator_user, console_world):
    execution = _ran(console_world, operator_user)
    body = admin_client_in_group.get("/admin/control/execution/").content.decode()
    assert f"{timezone.localtime(execution.created):%Y-%m-%d %H:%M:%S} UTC" in body
    assert not re.search(r"\d{1,2}:\d\d (a|p)\.m\.", body)
