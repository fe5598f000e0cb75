"""What an import may touch: the file's clusters (all of them only for a whole
export), minus the excludes of a remote instance."""
from __future__ import annotations

from apps.configsync.document import dump, export_document, load
from apps.configsync.importing import import_text
from apps.configsync.plan import make_plan
from apps.control.models import Cluster
from tests.fixtures.console import make_world

from .confkit import cluster_of, current


def test_a_partial_export_never_prunes_other_clusters(db):
    make_world("web")
    make_world("db", mail_to="dba@example.com")
    partial = dump(export_document(["web"]))
    assert import_text(partial, prune=True).empty
    whole = current()
    whole["clusters"] = [cluster_of(whole, "web")]
    plan = import_text(dump(whole), prune=True, dry_run=True)
    assert "delete cluster db" in plan.text() and plan.summary().endswith("8 to delete")
    assert Cluster.objects.filter(name="db").exists()


def test_excluded_objects_are_neither_changed_nor_deleted(db):
    make_world("web")
    make_world("db", mail_to="dba@example.com")
    doc = current()
    web = cluster_of(doc, "web")
    web["max_size"] = 9
    web["nodes"] = []
    web["ssh_counters"][0]["threshold"] = 9.0
    cluster_of(doc, "db")["description"] = "changed"
    plan = make_plan(load(dump(doc)), prune=True, excludes=["db", "web/nodes/*", "web/ssh_counters/load1"])
    assert plan.text() == "update cluster web\n    max_size: 4 → 9\nplan: 0 to create, 1 to update, 0 to delete\n"


def test_a_name_written_as_a_number_is_a_name(db, tmp_path):
    make_world("web")
    doc = current()
    doc["clusters"][0]["nodes"].append({"name": 42, "address": "127.0.0.42"})
    assert import_text(dump(doc)).summary() == "plan: 1 to create, 0 to update, 0 to delete"
    assert import_text(dump(doc)).empty
