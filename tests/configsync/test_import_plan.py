"""import_config: the plan (create / update field: old → new / delete with
--prune), applied all or nothing; dry runs change nothing; a trigger keeps
its runtime state unless what it counts changed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError
from django.utils import timezone

from apps.actions.models import Action
from apps.control.models import Cluster, Trigger
from apps.monitoring.ssh.models import SSHCounter
from tests.factories import make_node
from tests.fixtures.console import make_world

from .confkit import cluster_of, current, item, run_import


def test_importing_the_export_again_is_an_empty_plan(db, tmp_path):
    make_world()
    assert run_import(tmp_path, current()) == "plan: 0 to create, 0 to update, 0 to delete\n"


def test_the_plan_names_each_object_and_each_changed_field(db, tmp_path):
    make_world()
    doc = current()
    web = cluster_of(doc)
    item(web, "ssh_counters", "load1")["threshold"] = 2.5
    web["description"] = "the new web tier"
    web["actions"].append({"name": "page", "kind": "email", "params": {"to": ["pager@example.com"],
                                                                        "subject": "s"}})
    item(web, "triggers", "high-load")["actions"] = ["page", "notify-ops"]
    out = run_import(tmp_path, doc)
    assert out.splitlines() == [
        "update cluster web",
        "    description: the web tier → the new web tier",
        "update SSH counter web/load1  (its triggers' breach counts and cooldown restart: what they count changed)",
        "    threshold: 1.5 → 2.5",
        "create action web/page",
        "update trigger web/high-load",
        "    actions: ['notify-ops'] → ['page', 'notify-ops']",
        "plan: 1 to create, 3 to update, 0 to delete",
    ]
    assert SSHCounter.objects.get(name="load1").threshold == 2.5
    trigger = Trigger.objects.get(name="high-load")
    assert [a.name for a in trigger.ordered_actions()] == ["page", "notify-ops"]
    assert run_import(tmp_path, doc).endswith("plan: 0 to create, 0 to update, 0 to delete\n")


def test_deletes_only_with_prune_and_never_launched_nodes(db, tmp_path):
    world = make_world()
    make_node(world.cluster, name="web-launched", launched_by_pyscaler=True)
    doc = current()
    web = cluster_of(doc)
    web["nodes"] = [n for n in web["nodes"] if n["name"] != "web-2"]
    assert run_import(tmp_path, doc).endswith("plan: 0 to create, 0 to update, 0 to delete\n")
    out = run_import(tmp_path, doc, "--prune")
    assert "delete node web/web-2" in out and out.endswith("plan: 0 to create, 0 to update, 1 to delete\n")
    assert sorted(world.cluster.nodes.values_list("name", flat=True)) == ["web-1", "web-launched"]


def test_a_dry_run_shows_the_plan_and_changes_nothing(db, tmp_path):
    make_world()
    doc = current()
    cluster_of(doc)["max_size"] = 8
    doc["clusters"].append({**cluster_of(doc), "name": "db", "nodes": []})
    out = run_import(tmp_path, doc, "--dry-run", "--prune")
    assert out.startswith("create cluster db\ncreate SSH counter db/load1\n")
    assert "update cluster web\n    max_size: 4 → 8\n" in out
    assert "plan: 6 to create, 1 to update, 0 to delete" in out and out.endswith("dry run: nothing changed\n")
    assert Cluster.objects.get(name="web").max_size == 4 and not Cluster.objects.filter(name="db").exists()


def test_a_refusal_late_in_the_plan_leaves_nothing_half_done(db, tmp_path):
    make_world()
    doc = current()
    web = cluster_of(doc)
    web["max_size"] = 9  # applied first ...
    web["actions"].append({"name": "new", "kind": "email", "params": {"to": ["x@example.com"], "subject": "s"}})
    item(web, "triggers", "high-load")["timing_minutes"] = 99999  # ... refused last
    with pytest.raises(CommandError, match=r"trigger web/high-load: field timing_minutes: .*1440"):
        run_import(tmp_path, doc)
    assert Cluster.objects.get(name="web").max_size == 4 and not Action.objects.filter(name="new").exists()


def _fired(trigger: Trigger):
    fired = timezone.now() - timedelta(seconds=30)
    since = timezone.now() - timedelta(hours=1)
    Trigger.objects.filter(pk=trigger.pk).update(last_fired_at=fired, counting_since=since)
    return fired, since


def test_a_trigger_keeps_its_runtime_state_when_only_its_wording_changes(db, tmp_path):
    world = make_world()
    fired, since = _fired(world.trigger)
    doc = current()
    trigger = item(cluster_of(doc), "triggers", "high-load")
    trigger["description"] = "now documented"
    trigger["cooldown_s"] = 600
    item(cluster_of(doc), "ssh_counters", "load1")["unit"] = "procs"
    run_import(tmp_path, doc)
    world.trigger.refresh_from_db()
    assert world.trigger.pk == Trigger.objects.get(name="high-load").pk  # same row: memcached counts still its
    assert (world.trigger.last_fired_at, world.trigger.counting_since) == (fired, since)
    assert world.trigger.description == "now documented" and world.trigger.cooldown_s == 600


@pytest.mark.parametrize("change", ["threshold", "comparison", "timing", "counters"])
def test_a_trigger_whose_semantics_change_restarts_counting_and_cooldown(db, tmp_path, change):
    world = make_world()
    _fired(world.trigger)
    doc = current()
    web = cluster_of(doc)
    trigger, counter = item(web, "triggers", "high-load"), item(web, "ssh_counters", "load1")
    if change == "threshold":
        counter["threshold"] = 3.0
    elif change == "comparison":
        counter["comparison"] = ">"
    elif change == "timing":
        trigger["timing_minutes"] = 5
    else:
        trigger["counters"]["jmx"] = [{"jvm": "tomcat", "name": "heap_used"}]
    before = timezone.now()
    run_import(tmp_path, doc)
    world.trigger.refresh_from_db()
    assert world.trigger.last_fired_at is None and world.trigger.counting_since >= before
