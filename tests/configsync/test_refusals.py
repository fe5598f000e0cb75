"""Every refusal of an import names the object and the field, and changes nothing."""
from __future__ import annotations

import pytest
from django.core.management import CommandError

from apps.control.models import Cluster, Execution
from tests.factories import make_cluster, make_node
from tests.fixtures.console import make_world

from .confkit import cluster_of, current, item, run_import


def refused(tmp_path, doc, *args) -> str:
    before = current()
    with pytest.raises(CommandError) as info:
        run_import(tmp_path, doc, *args)
    assert current() == before  # nothing changed
    message = str(info.value)
    assert message.startswith("import refused, nothing changed: ")
    return message


@pytest.fixture
def doc(db):
    make_world()
    return current()


def test_an_unknown_counter_of_a_trigger(tmp_path, doc):
    item(cluster_of(doc), "triggers", "high-load")["counters"]["ssh"] = ["load9"]
    assert "trigger web/high-load, field counters.ssh: unknown SSH counter 'load9' in cluster web" in refused(
        tmp_path, doc)


def test_an_unknown_jvm_counter_reference(tmp_path, doc):
    item(cluster_of(doc), "triggers", "high-load")["counters"]["jmx"] = [{"jvm": "jetty", "name": "heap_used"}]
    assert "trigger web/high-load, field counters.jmx: unknown JMX counter 'jetty/heap_used'" in refused(tmp_path, doc)


def test_an_unknown_action_of_a_trigger(tmp_path, doc):
    item(cluster_of(doc), "triggers", "high-load")["actions"] = ["notify-ops", "scale-out"]
    assert "trigger web/high-load, field actions: unknown action 'scale-out' in cluster web" in refused(tmp_path, doc)


def test_an_unknown_jvm_of_a_jmx_counter(tmp_path, doc):
    item(cluster_of(doc), "jmx_counters", "heap_used")["jvm"] = "jetty"
    assert "JMX counter web/jetty/heap_used, field jvm: unknown JVM 'jetty' in cluster web" in refused(tmp_path, doc)


def test_a_name_twice_in_a_cluster(tmp_path, doc):
    web = cluster_of(doc)
    web["actions"].append(dict(web["actions"][0]))
    assert "action web/notify-ops: the name appears twice in cluster web" in refused(tmp_path, doc)


def test_a_cluster_twice(tmp_path, doc):
    doc["clusters"].append(dict(cluster_of(doc)))
    assert "cluster web: the name appears twice in the file" in refused(tmp_path, doc)


def test_a_node_name_another_cluster_uses(tmp_path, doc):
    make_node(make_cluster("db"), name="db-1")
    cluster_of(doc)["nodes"].append({"name": "db-1", "address": "127.0.0.9"})
    message = refused(tmp_path, doc)
    assert "node web/db-1: field name: Node with this Name already exists." in message


@pytest.mark.parametrize(("section", "name", "field", "value", "words"), [
    ("ssh_counters", "load1", "threshold", "lots", "“lots” value must be a float"),
    ("ssh_counters", "load1", "interval_s", 0, "greater than or equal to 1"),
    ("ssh_counters", "load1", "comparison", "=~", "'=~' is not a valid choice"),
    ("jvms", "tomcat", "password_ref", "hunter2", "'hunter2' is not a secret reference"),
    ("actions", "notify-ops", "params", {"to": ["not-an-address"], "subject": "s"}, "to:"),
    ("triggers", "high-load", "aggregation", "median", "Select a valid choice"),
])
def test_an_invalid_value(tmp_path, doc, section, name, field, value, words):
    item(cluster_of(doc), section, name)[field] = value
    message = refused(tmp_path, doc)
    label = {"ssh_counters": "SSH counter", "jvms": "JVM", "actions": "action", "triggers": "trigger"}[section]
    assert f"{label} web/{name}: field {field}: " in message and words in message


def test_an_invalid_cluster_value(tmp_path, doc):
    cluster_of(doc)["min_size"] = 50
    assert "cluster web: field min_size: Minimum size (50) is larger than maximum size (4)." in refused(tmp_path, doc)


def test_a_secret_in_plain_text_is_refused(tmp_path, doc):
    cluster_of(doc)["ssh_password_ref"] = "s3cret-password"
    assert "cluster web: field ssh_password_ref: 's3cret-password' is not a secret reference" in refused(tmp_path, doc)


def test_an_unknown_field(tmp_path, doc):
    item(cluster_of(doc), "jvms", "tomcat")["pasword_ref"] = "env:PYSCALER_SECRET_X"
    assert "JVM web/tomcat: unknown field 'pasword_ref'" in refused(tmp_path, doc)


def test_a_trigger_without_actions(tmp_path, doc):
    item(cluster_of(doc), "triggers", "high-load")["actions"] = []
    assert "trigger web/high-load, field actions: A trigger needs at least one action step." in refused(
        tmp_path, doc)


def test_a_trigger_without_counters(tmp_path, doc):
    item(cluster_of(doc), "triggers", "high-load")["counters"] = {"ssh": [], "jmx": []}
    assert "trigger web/high-load: A trigger needs at least one counter to watch" in refused(tmp_path, doc)


def test_deleting_an_action_a_trigger_still_uses(tmp_path, doc):
    cluster_of(doc)["actions"] = []
    message = refused(tmp_path, doc, "--prune")
    assert "action web/notify-ops: cannot delete, still in use by trigger web/high-load (step 10)" in message


def test_deleting_an_action_the_history_still_uses(tmp_path, doc):
    web = Cluster.objects.get(name="web")
    Execution.objects.create(cluster=web, action=web.actions.get(name="notify-ops"), fired_by="user alice")
    cluster_of(doc)["triggers"] = []
    cluster_of(doc)["actions"] = []
    message = refused(tmp_path, doc, "--prune")
    assert "action web/notify-ops: cannot delete, still in use by execution #" in message


def test_deleting_a_cluster_with_nodes_pyscaler_launched(tmp_path, doc):
    make_node(Cluster.objects.get(name="web"), name="web-launched", launched_by_pyscaler=True)
    doc["clusters"] = []
    assert "cluster web: cannot delete, still in use by node web-launched" in refused(tmp_path, doc, "--prune")


def test_a_file_that_is_not_a_configuration(tmp_path, doc):
    assert "not a PyScaler configuration" in refused(tmp_path, "- just\n- a list\n")
    assert "not a YAML or JSON document" in refused(tmp_path, "clusters: [\n")


def test_an_object_without_its_name(tmp_path, doc):
    cluster_of(doc)["jvms"].append({"jmx_port": 9011})
    assert "JVM in cluster web: field name is required" in refused(tmp_path, doc)
    del cluster_of(doc)["jvms"][-1]
    doc["clusters"].append({"description": "nameless"})
    assert "a cluster: field name is required" in refused(tmp_path, doc)
