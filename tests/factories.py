"""Builders of the database rows tests need: clusters, nodes, counters, JVMs,
actions, triggers. One place, so that a model change is one edit here and
every test states only the fields that matter to it.

The factory_boy factories hold each model's test defaults; the ``make_*``
functions are the shapes tests ask for (a cluster with its nodes, a node that
logs in to a harness sshd, a trigger with its counters and steps, an action
validated as the admin would). Rows outside the database (moto's instances
and load balancers, samples in memcached) are built by the kits beside this
module (ec2kit.py, evaluatorkit.py).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, overload

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.actions.models import Action
from apps.control.models import Cluster, Node, Trigger, TriggerAction
from apps.monitoring.jmx.models import JVM, JMXCounter
from apps.monitoring.ssh.models import SSHCounter
from devservers.moto_server import DEFAULT_AMI_ID, MotoServer
from tests.ec2kit import default_subnet, launch_foreign

if TYPE_CHECKING:
    from devservers.sshd import SshServer


class ClusterFactory(DjangoModelFactory):
    class Meta:
        model = Cluster

    name = factory.Sequence(lambda n: f"c{n + 1}")


class NodeFactory(DjangoModelFactory):
    """A running node on loopback; ``server=`` (a harness SshServer) makes it
    log in to that server with the server's client key."""

    class Meta:
        model = Node

    class Params:
        server = None

    cluster = factory.SubFactory(ClusterFactory)
    name = factory.Sequence(lambda n: f"n{n + 1}")
    address = factory.LazyAttribute(lambda o: o.server.host if o.server else "127.0.0.1")
    ssh_port = factory.LazyAttribute(lambda o: o.server.port if o.server else None)
    ssh_user = factory.LazyAttribute(lambda o: o.server.user if o.server else "")
    ssh_key_path = factory.LazyAttribute(lambda o: str(o.server.client_key_path) if o.server else "")


class SSHCounterFactory(DjangoModelFactory):
    class Meta:
        model = SSHCounter

    cluster = factory.SubFactory(ClusterFactory)
    name = factory.Sequence(lambda n: f"c{n + 1}")
    command = "cut -d' ' -f1 /proc/loadavg"
    threshold = 1.0
    comparison = ">="
    interval_s = 60


class JVMFactory(DjangoModelFactory):
    class Meta:
        model = JVM
        django_get_or_create = ("cluster", "name")

    cluster = factory.SubFactory(ClusterFactory)
    name = "app"
    jmx_port = 9010


class JMXCounterFactory(DjangoModelFactory):
    """Heap used, read from the platform MBean every JVM has."""

    class Meta:
        model = JMXCounter

    jvm = factory.SubFactory(JVMFactory)
    name = factory.Sequence(lambda n: f"j{n + 1}")
    mbean = "java.lang:type=Memory"
    attribute = "HeapMemoryUsage"
    composite_key = "used"
    threshold = 1.0
    interval_s = 60


class ActionFactory(DjangoModelFactory):
    class Meta:
        model = Action

    cluster = factory.SubFactory(ClusterFactory)
    name = factory.Sequence(lambda n: f"a{n + 1}")
    kind = "email"
    params = factory.LazyFunction(dict)
    timeout_s = 30


class TriggerFactory(DjangoModelFactory):
    """Fires on the first breaching sample (timing 0): a test that is about
    timing says so."""

    class Meta:
        model = Trigger

    cluster = factory.SubFactory(ClusterFactory)
    name = factory.Sequence(lambda n: f"t{n + 1}")
    timing_minutes = 0
    cooldown_s = 300


def _saved(instance, validate: bool):
    if validate:
        instance.full_clean()  # the model's (and a kind's) own validation, as in the admin
    instance.save()
    return instance


# ---------------------------------------------------------------------------
# Clusters and nodes
# ---------------------------------------------------------------------------

@overload
def make_cluster(name: str | None = None, *, validate: bool = False, **fields: Any) -> Cluster: ...
@overload
def make_cluster(name: str | None = None, *, nodes: int, validate: bool = False,
                 **fields: Any) -> tuple[Cluster, list[Node]]: ...
def make_cluster(name: str | None = None, *, nodes: int | None = None, validate: bool = False,
                 **fields: Any):
    """A cluster (model defaults unless ``fields`` say otherwise; ``validate``
    runs the admin's validation first).

    With ``nodes=N`` also N running nodes named ``<name>-1`` .. ``<name>-N`` on
    127.0.0.1 .. 127.0.0.N (one loopback address each, as separate hosts),
    returned as ``(cluster, nodes)``.
    """
    if name is not None:
        fields["name"] = name
    cluster = _saved(ClusterFactory.build(**fields), validate)
    if nodes is None:
        return cluster
    made = [NodeFactory(cluster=cluster, name=f"{cluster.name}-{i}", address=f"127.0.0.{i}")
            for i in range(1, nodes + 1)]
    return cluster, made


def make_ec2_cluster(moto: MotoServer, **fields: Any) -> Cluster:
    """A validated cluster launching t3.micro instances of moto's default AMI
    into its default VPC's subnet, 0 to 5 nodes, one at a time."""
    _, subnet = default_subnet(moto)
    defaults: dict[str, Any] = {"ec2_ami": DEFAULT_AMI_ID, "ec2_instance_type": "t3.micro",
                                "ec2_subnet_id": subnet, "min_size": 0, "max_size": 5, "max_step_size": 1}
    return make_cluster(validate=True, **{**defaults, **fields})


def make_node(cluster: Cluster | None = None, server: SshServer | None = None, name: str | None = None,
              **fields: Any) -> Node:
    """A running node of ``cluster`` (a new cluster when None); with
    ``server`` it logs in to that harness sshd."""
    if cluster is not None:
        fields["cluster"] = cluster
    if name is not None:
        fields["name"] = name
    return NodeFactory(server=server, **fields)


def node_for(cluster: Cluster, instance_id: str, **fields: Any) -> Node:
    """The node of an existing EC2 instance (an operator's, or PyScaler's),
    named after the instance unless ``fields`` name it."""
    fields.setdefault("name", instance_id)
    return make_node(cluster, ec2_instance_id=instance_id, **fields)


def nodes_in_moto(moto: MotoServer, cluster: Cluster, count: int, *, minutes_apart: int = 1,
                  **fields: Any) -> list[Node]:
    """``count`` running instances on moto and their nodes (launched by
    PyScaler unless ``fields`` say otherwise), oldest first,
    ``minutes_apart`` apart."""
    made = []
    base = timezone.now() - timedelta(hours=1)
    for i, iid in enumerate(launch_foreign(moto, count)):
        node = node_for(cluster, iid, **{"launched_by_pyscaler": True, **fields})
        Node.objects.filter(pk=node.pk).update(created=base + timedelta(minutes=i * minutes_apart))
        node.refresh_from_db()
        made.append(node)
    return made


# ---------------------------------------------------------------------------
# Counters
# ---------------------------------------------------------------------------

def ssh_counter(cluster: Cluster, name: str = "load1", **fields: Any) -> SSHCounter:
    """An SSH counter of ``cluster`` (the load average, >= 1.0, every 60 s
    unless ``fields`` say otherwise)."""
    return SSHCounterFactory(cluster=cluster, name=name, **fields)


def make_counters(node: Node, commands: Sequence[str], interval_s: int = 10) -> list[SSHCounter]:
    """One SSH counter per command on ``node``'s cluster, in that order."""
    return [SSHCounterFactory(cluster=node.cluster, command=command, interval_s=interval_s)
            for command in commands]


def jmx_counter(cluster: Cluster, name: str = "heap", **fields: Any) -> JMXCounter:
    """A JMX counter (heap used) of the cluster's JVM ``app`` on port 9010."""
    return JMXCounterFactory(jvm=JVMFactory(cluster=cluster), name=name, **fields)


# ---------------------------------------------------------------------------
# Actions and triggers
# ---------------------------------------------------------------------------

def make_action(cluster: Cluster, kind: str, params: dict[str, Any] | None = None, *, name: str | None = None,
                timeout_s: int = 30, validate: bool = True) -> Action:
    """An action of ``cluster``, its parameters validated by its kind unless
    ``validate=False``."""
    fields: dict[str, Any] = {"name": name} if name is not None else {}
    action = ActionFactory.build(cluster=cluster, kind=kind, params=dict(params or {}), timeout_s=timeout_s,
                                 **fields)
    return _saved(action, validate)


def make_trigger(cluster: Cluster, parts: Iterable[Action | SSHCounter | JMXCounter] = (),
                 name: str | None = None, **fields: Any) -> Trigger:
    """A trigger of ``cluster`` built from ``parts``: the counters it watches
    and the actions it runs, in the order given (positions 10, 20, ...)."""
    if name is not None:
        fields["name"] = name
    trigger = TriggerFactory(cluster=cluster, **fields)
    position = 0
    for part in parts:
        if isinstance(part, Action):
            position += 10
            TriggerAction.objects.create(trigger=trigger, action=part, position=position)
        elif isinstance(part, JMXCounter):
            trigger.jmx_counters.add(part)
        else:
            trigger.ssh_counters.add(part)
    return trigger


# ---------------------------------------------------------------------------
# Scaling policies
# ---------------------------------------------------------------------------

def source_kind(counter) -> str:
    """The counter-source kind of a counter row (through the registry)."""
    from apps.monitoring import sources

    return next(s.kind for s in sources.all() if isinstance(counter, s.model))


def make_policy(cluster: Cluster, metrics: Iterable[tuple[Any, float | None]] = (), *,
                scale_out: Iterable[Action] = (), scale_in: Iterable[Action] = (),
                readiness: Any = None, bands: Iterable[tuple[float | None, float | None, int]] = (),
                windows: Iterable[dict[str, Any]] = (), **fields: Any):
    """A scaling policy of ``cluster``: ``metrics`` are (counter, target)
    pairs; ``bands`` (lower, upper, adjustment) belong to the first metric;
    the chains run ``scale_out`` and ``scale_in`` in order. No stabilization,
    cooldown or warm-up unless ``fields`` say otherwise."""
    from apps.control.models import PolicyAction, PolicyCounter, ScalingPolicy, ScheduleWindow, StepBand

    defaults: dict[str, Any] = {"name": "size", "scale_in_window_s": 0, "scale_out_cooldown_s": 0,
                                "scale_in_cooldown_s": 0, "warmup_s": 0, "max_step": 10}
    policy = ScalingPolicy(cluster=cluster, **{**defaults, **fields})
    policy.full_clean()
    policy.save()
    rows = []
    for counter, target in metrics:
        row = PolicyCounter(policy=policy, source=source_kind(counter), counter_id=counter.pk, target=target)
        row.full_clean()
        row.save()
        rows.append(row)
    for lower, upper, adjustment in bands:
        StepBand.objects.create(counter=rows[0], lower=lower, upper=upper, adjustment=adjustment)
    if readiness is not None:
        PolicyCounter.objects.create(policy=policy, role="readiness", source=source_kind(readiness),
                                     counter_id=readiness.pk)
    for direction, actions in (("out", scale_out), ("in", scale_in)):
        for position, action in enumerate(actions, start=1):
            PolicyAction.objects.create(policy=policy, direction=direction, action=action, position=position)
    for window in windows:
        ScheduleWindow.objects.create(policy=policy, **window)
    return policy
