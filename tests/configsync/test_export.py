"""export_config: by name, stable, launched nodes and runtime state left out,
secrets only as references."""
from __future__ import annotations

import io
import json
import re

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.control.models import Node
from tests.factories import make_node
from tests.fixtures.console import make_world


def export(*args) -> str:
    out = io.StringIO()
    call_command("export_config", *args, stdout=out)
    return out.getvalue()


def test_it_writes_every_section_by_name_and_twice_the_same_bytes(db):
    world = make_world()
    world.cluster.ssh_password_ref = "env:PYSCALER_SECRET_WEB"
    world.cluster.save()
    text = export()
    assert text == export()
    doc = yaml.safe_load(text)
    assert doc["pyscaler_config"] == 1 and doc["selection"] == "all"
    (web,) = doc["clusters"]
    assert web["name"] == "web" and web["ssh_password_ref"] == "env:PYSCALER_SECRET_WEB"
    assert [n["name"] for n in web["nodes"]] == ["web-1", "web-2"]
    assert web["jmx_counters"][0]["jvm"] == "tomcat"
    assert web["triggers"][0]["counters"] == {"ssh": ["load1"], "jmx": []}
    assert web["triggers"][0]["actions"] == ["notify-ops"]
    # never a database id, nor runtime state
    assert not re.search(r"^\s*-?\s*(id|pk|\w+_id): \d", text, re.MULTILINE)
    assert "counting_since" not in text and "last_fired_at" not in text and "created" not in text


def test_it_leaves_out_the_nodes_pyscaler_launched(db):
    world = make_world()
    make_node(world.cluster, name="web-launched", launched_by_pyscaler=True)
    assert Node.objects.filter(name="web-launched").exists()
    assert "web-launched" not in export()


def test_it_exports_chosen_clusters_in_json(db):
    make_world("web")
    make_world("db", mail_to="dba@example.com")
    doc = json.loads(export("--cluster", "db", "--format", "json"))
    assert doc["selection"] == ["db"] and [c["name"] for c in doc["clusters"]] == ["db"]
    make_world("cache", mail_to="ops@example.com")
    both = json.loads(export("--cluster", "web", "db", "--format", "json"))
    assert both["selection"] == ["db", "web"] and both == json.loads(export("--cluster", "db", "--cluster", "web",
                                                                            "--format", "json"))


def test_an_unknown_cluster_is_named(db):
    make_world()
    with pytest.raises(CommandError, match="no cluster named 'nope'"):
        export("--cluster", "nope")
