"""An admin configures a cluster end to end through Django admin's own forms,
and bad input is refused with the field named and nothing saved."""
import pytest
from django.contrib.auth.models import User

from apps.actions.models import Action
from apps.control.models import Cluster, Node, Trigger, TriggerAction
from apps.monitoring.jmx.models import JVM, JMXCounter
from apps.monitoring.ssh.models import SSHCounter

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]


def management(prefix: str, total: int = 0, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def cluster_form(**overrides) -> dict:
    data = {
        "name": "web",
        "description": "front end",
        "min_size": "1",
        "max_size": "4",
        "max_step_size": "1",
        "ssh_user": "",
        "ssh_port": "",
        "ssh_key_path": "",
        "ssh_password_ref": "",
        "ec2_region": "eu-west-1",
        "ec2_ami": "ami-12c6146b",
        "ec2_instance_type": "t3.micro",
        "ec2_subnet_id": "",
        "ec2_security_group_ids": "sg-0123456789abcdef0",
        "ec2_key_name": "",
        "ec2_tags": '{"team": "web"}',
        "target_group_arn": "",
        "classic_elb_name": "web-elb",
        **management("nodes"),
        **management("jvms"),
        **management("ssh_counters"),
    }
    data.update(overrides)
    return data


@pytest.fixture
def admin_client(client, admin_user_in_group):
    client.force_login(admin_user_in_group)
    return client


def test_it_creates_a_whole_configuration_through_admin_forms(admin_client):
    # Cluster with one node and one SSH counter inline.
    data = cluster_form(
        **management("nodes", total=1),
        **{"nodes-0-name": "web-1", "nodes-0-address": "127.0.0.1", "nodes-0-ssh_port": "2222",
           "nodes-0-state": "running", "nodes-0-collection_enabled": "on", "nodes-0-ec2_instance_id": ""},
        **management("ssh_counters", total=1),
        **{"ssh_counters-0-name": "load1", "ssh_counters-0-command": "cut -d' ' -f1 /proc/loadavg",
           "ssh_counters-0-comparison": ">=", "ssh_counters-0-threshold": "2.5",
           "ssh_counters-0-interval_s": "10", "ssh_counters-0-unit": "", "ssh_counters-0-enabled": "on"},
    )
    response = admin_client.post("/admin/control/cluster/add/", data)
    assert response.status_code == 302, response.context["adminform"].errors if response.context else response
    cluster = Cluster.objects.get(name="web")
    assert cluster.ec2_tags == {"team": "web"}
    assert cluster.nodes.get().address == "127.0.0.1"
    counter = SSHCounter.objects.get(cluster=cluster)
    assert counter._meta.db_table == "ssh_sshcounter"

    # A second node through the node form.
    response = admin_client.post("/admin/control/node/add/", {
        "cluster": cluster.pk, "name": "web-2", "address": "web-2.internal", "ssh_port": "",
        "ssh_user": "", "ssh_key_path": "", "state": "running", "collection_enabled": "on",
        "ec2_instance_id": "",
    })
    assert response.status_code == 302
    assert Node.objects.filter(cluster=cluster).count() == 2

    # A JVM with a JMX counter inline.
    response = admin_client.post("/admin/jmx/jvm/add/", {
        "cluster": cluster.pk, "name": "tomcat", "jmx_port": "9010", "username": "monitor",
        "password_ref": "env:PYSCALER_SECRET_TOMCAT_JMX_PASSWORD",
        **management("counters", total=1),
        "counters-0-name": "heap_used", "counters-0-mbean": "java.lang:type=Memory",
        "counters-0-attribute": "HeapMemoryUsage", "counters-0-composite_key": "used",
        "counters-0-comparison": ">", "counters-0-threshold": "500000000",
        "counters-0-interval_s": "30", "counters-0-unit": "bytes", "counters-0-enabled": "on",
    })
    assert response.status_code == 302
    jmx_counter = JMXCounter.objects.get(jvm__cluster=cluster)
    assert jmx_counter._meta.db_table == "jmx_jmxcounter"
    assert JVM.objects.get().password_ref == "env:PYSCALER_SECRET_TOMCAT_JMX_PASSWORD"

    # Two actions, then a trigger chaining them in order.
    for name, kind, params in (
        ("notify", "email", '{"to": ["ops@example.com"], "subject": "{{ trigger }} fired"}'),
        ("warm-up", "local_script", '{"script": "systemctl restart tomcat"}'),
    ):
        response = admin_client.post("/admin/actions/action/add/", {
            "cluster": cluster.pk, "name": name, "kind": kind, "params": params, "timeout_s": "60",
            "description": "",
        })
        assert response.status_code == 302, response.context["adminform"].errors
    notify, warm_up = Action.objects.get(name="notify"), Action.objects.get(name="warm-up")

    response = admin_client.post("/admin/control/trigger/add/", {
        "cluster": cluster.pk, "name": "high-load", "description": "", "enabled": "on",
        "ssh_counters": [counter.pk], "jmx_counters": [jmx_counter.pk],
        "timing_minutes": "2", "aggregation": "any", "missing_data": "ignore", "cooldown_s": "300",
        **management("steps", total=2),
        "steps-0-position": "2", "steps-0-action": notify.pk,
        "steps-1-position": "1", "steps-1-action": warm_up.pk,
    })
    assert response.status_code == 302, response.context["adminform"].errors
    trigger = Trigger.objects.get(name="high-load")
    assert list(trigger.ordered_actions()) == [warm_up, notify]
    assert set(trigger.ssh_counters.all()) == {counter}


def test_it_rejects_min_larger_than_max_naming_the_field_and_saves_nothing(admin_client):
    response = admin_client.post("/admin/control/cluster/add/", cluster_form(min_size="5", max_size="2"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "min_size" in errors and "larger than maximum" in errors["min_size"][0]
    assert not Cluster.objects.exists()


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("ec2_ami", "ami-nothex", "is not an AMI id"),
        ("ec2_security_group_ids", "sg-0123456789abcdef0, default", "is not a security group id"),
        ("ec2_tags", '["not", "an", "object"]', "JSON object"),
        ("ssh_password_ref", "hunter2", "not a secret reference"),
        ("target_group_arn", "arn:aws:nothing", "not an ELBv2 target group ARN"),
    ],
)
def test_it_names_the_bad_cluster_field(admin_client, field, value, fragment):
    response = admin_client.post("/admin/control/cluster/add/", cluster_form(**{field: value}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert fragment in " ".join(errors[field])
    assert not Cluster.objects.exists()


def test_a_bad_inline_node_saves_neither_cluster_nor_nodes(admin_client):
    data = cluster_form(
        **management("nodes", total=1),
        **{"nodes-0-name": "web 1", "nodes-0-address": "not a host!", "nodes-0-state": "running",
           "nodes-0-ec2_instance_id": ""},
    )
    response = admin_client.post("/admin/control/cluster/add/", data)
    assert response.status_code == 200
    node_errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert "address" in node_errors and "name" in node_errors
    assert not Cluster.objects.exists() and not Node.objects.exists()


def test_it_rejects_a_bad_mbean_name_and_short_interval(admin_client):
    cluster = Cluster.objects.create(name="c1")
    jvm = JVM.objects.create(cluster=cluster, name="app", jmx_port=9010)
    response = admin_client.post("/admin/jmx/jmxcounter/add/", {
        "jvm": jvm.pk, "name": "heap", "mbean": "java.lang type=Memory", "attribute": "HeapMemoryUsage",
        "composite_key": "", "comparison": ">=", "threshold": "1", "interval_s": "0", "unit": "",
        "enabled": "on",
    })
    errors = response.context["adminform"].form.errors
    assert "not a valid MBean object name" in errors["mbean"][0]
    assert "interval_s" in errors
    assert not JMXCounter.objects.exists()


def test_it_rejects_a_trigger_with_another_clusters_counter_and_action(admin_client):
    web, db = Cluster.objects.create(name="web"), Cluster.objects.create(name="db")
    foreign_counter = SSHCounter.objects.create(cluster=db, name="load", command="echo 1", threshold=1)
    foreign_action = Action.objects.create(cluster=db, name="mail", kind="email",
                                           params={"to": ["a@example.com"], "subject": "x"})
    response = admin_client.post("/admin/control/trigger/add/", {
        "cluster": web.pk, "name": "t", "ssh_counters": [foreign_counter.pk],
        "timing_minutes": "1", "aggregation": "any", "missing_data": "ignore", "cooldown_s": "300",
        **management("steps", total=1), "steps-0-position": "1", "steps-0-action": foreign_action.pk,
    })
    assert response.status_code == 200
    assert "Not counters of cluster web" in response.context["adminform"].form.errors["ssh_counters"][0]
    step_errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert "belongs to cluster db" in step_errors["action"][0]
    assert not Trigger.objects.exists() and not TriggerAction.objects.exists()


@pytest.mark.parametrize(
    "kind, params, fragment",
    [
        ("email", '{"to": ["ops@example.com", "not-an-address"], "subject": "x"}',
         "to: 'not-an-address' is not a valid e-mail address"),
        ("email", '{"to": ["ops@example.com"], "subject": "{% if %}"}', "subject: template error"),
        ("email", '{"to": ["ops@example.com"], "subject": "x", "cc": "b@example.com"}',
         "unknown parameter 'cc'"),
        ("local_script", "{}", "script: This field is required."),
        ("deploy_ec2_node", '{"count": 3}', "more than cluster 'web''s max step size"),
        ("distributed_script", '{"command": "uptime", "fabric_task": "os.getcwd"}',
         "exactly one of 'command' or 'fabric_task'"),
        ("os_configuration", '{"manifest": "../../etc/passwd"}', "must be a path inside the Puppet directory"),
    ],
)
def test_it_validates_action_parameters_per_kind(admin_client, kind, params, fragment):
    cluster = Cluster.objects.create(name="web", ec2_ami="ami-12c6146b", ec2_instance_type="t3.micro")
    response = admin_client.post("/admin/actions/action/add/", {
        "cluster": cluster.pk, "name": "a", "kind": kind, "params": params, "timeout_s": "60",
    })
    assert response.status_code == 200
    messages = " | ".join(response.context["adminform"].form.errors["params"])
    assert fragment in messages
    assert not Action.objects.exists()


def test_an_operator_can_view_but_not_change_anything(client, operator_user):
    cluster = Cluster.objects.create(name="web", min_size=1, max_size=3)
    client.force_login(operator_user)
    assert client.get(f"/admin/control/cluster/{cluster.pk}/change/").status_code == 200
    # Change, add and delete are all refused, and nothing changes.
    assert client.post(f"/admin/control/cluster/{cluster.pk}/change/",
                       cluster_form(name="renamed")).status_code == 403
    assert client.post("/admin/control/cluster/add/", cluster_form(name="new")).status_code == 403
    assert client.post(f"/admin/control/cluster/{cluster.pk}/delete/", {"post": "yes"}).status_code == 403
    for url in ("/admin/control/node/add/", "/admin/control/trigger/add/", "/admin/actions/action/add/",
                "/admin/ssh/sshcounter/add/", "/admin/jmx/jmxcounter/add/", "/admin/jmx/jvm/add/",
                "/admin/auth/user/"):
        assert client.get(url).status_code == 403, url
    assert list(Cluster.objects.values_list("name", flat=True)) == ["web"]


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/admin/control/cluster/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_forms_enforce_csrf(admin_user_in_group):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin_user_in_group)
    response = csrf_client.post("/admin/control/cluster/add/", cluster_form())
    assert response.status_code == 403
    assert not Cluster.objects.exists()


def test_role_groups_exist_with_the_right_permissions(db):
    from django.contrib.auth.models import Group

    operators = Group.objects.get(name="operators")
    codenames = set(operators.permissions.values_list("codename", flat=True))
    assert {"view_cluster", "view_trigger", "fire_trigger", "manage_nodes"} <= codenames
    assert not any(c.startswith(("add_", "change_", "delete_")) for c in codenames)
    admins = Group.objects.get(name="admins")
    assert admins.permissions.filter(codename="change_trigger").exists()
    assert User.objects.count() == 0


def test_it_refuses_a_trigger_without_counters(admin_client):
    cluster = Cluster.objects.create(name="web")
    mail = Action.objects.create(cluster=cluster, name="mail", kind="email",
                                 params={"to": ["a@example.com"], "subject": "x"})
    response = admin_client.post("/admin/control/trigger/add/", {
        "cluster": cluster.pk, "name": "t", "enabled": "on",
        "timing_minutes": "1", "aggregation": "any", "missing_data": "ignore", "cooldown_s": "300",
        **management("steps", total=1), "steps-0-position": "1", "steps-0-action": mail.pk,
    })
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert "at least one counter" in errors[0] and "SSH counters" in errors[0]
    assert not Trigger.objects.exists()


@pytest.mark.parametrize("field, value", [("timing_minutes", "1441"), ("cooldown_s", "99999999999999"),
                                          ("timing_minutes", "-1")])
def test_it_refuses_trigger_numbers_out_of_range(admin_client, field, value):
    cluster = Cluster.objects.create(name="web")
    counter = SSHCounter.objects.create(cluster=cluster, name="load", command="echo 1", threshold=1)
    mail = Action.objects.create(cluster=cluster, name="mail", kind="email",
                                 params={"to": ["a@example.com"], "subject": "x"})
    data = {"cluster": cluster.pk, "name": "t", "ssh_counters": [counter.pk], "timing_minutes": "1",
            "aggregation": "any", "missing_data": "ignore", "cooldown_s": "300",
            **management("steps", total=1), "steps-0-position": "1", "steps-0-action": mail.pk, field: value}
    response = admin_client.post("/admin/control/trigger/add/", data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Trigger.objects.exists()


@pytest.mark.parametrize("field, value", [("max_size", "99999999999999"), ("max_step_size", "0"),
                                          ("max_step_size", "101"), ("ssh_port", "65536")])
def test_it_refuses_cluster_numbers_out_of_range(admin_client, field, value):
    response = admin_client.post("/admin/control/cluster/add/", cluster_form(**{field: value}))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Cluster.objects.exists()


def test_help_texts_speak_to_admins(admin_client):
    page = admin_client.get("/admin/control/trigger/add/").content.decode()
    for internal in ("the seed", "conditional UPDATE", "claims a firing"):
        assert internal not in page


def test_a_trigger_may_watch_only_counters_of_a_source_that_holds_the_relation(admin_client):
    """tests/monitoring/constant's counters name their triggers; admin offers them too."""
    from tests.monitoring.constant.models import ConstantCounter

    cluster = Cluster.objects.create(name="web")
    counter = ConstantCounter.objects.create(cluster=cluster, name="one", value=1, threshold=2)
    mail = Action.objects.create(cluster=cluster, name="mail", kind="email",
                                 params={"to": ["a@example.com"], "subject": "x"})
    assert 'name="constant_counters"' in admin_client.get("/admin/control/trigger/add/").content.decode()
    response = admin_client.post("/admin/control/trigger/add/", {
        "cluster": cluster.pk, "name": "t", "constant_counters": [counter.pk], "timing_minutes": "1",
        "aggregation": "any", "missing_data": "ignore", "cooldown_s": "300",
        **management("steps", total=1), "steps-0-position": "1", "steps-0-action": mail.pk,
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    trigger = Trigger.objects.get(name="t")
    assert list(trigger.constant_counters.all()) == [counter]
    page = admin_client.get(f"/admin/control/trigger/{trigger.pk}/change/").content.decode()
    assert f'<option value="{counter.pk}" selected>' in page


@pytest.mark.parametrize("command", ["", "   "])
def test_an_empty_ssh_command_gets_one_message(admin_client, command):
    cluster = Cluster.objects.create(name="c1")
    response = admin_client.post("/admin/ssh/sshcounter/add/", {
        "cluster": cluster.pk, "name": "load1", "command": command, "comparison": ">=", "threshold": "1",
        "interval_s": "10", "unit": "", "enabled": "on",
    })
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["command"] and len(errors["command"]) == 1, errors
    assert not SSHCounter.objects.exists()
