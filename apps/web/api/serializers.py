"""API shapes of cluster and trigger status, executions and firing."""
from __future__ import annotations

import math

from rest_framework import serializers

from apps.control.choices import ExecutionStatus, NodeState, StepStatus
from apps.control.models import Execution, ExecutionStep
from apps.control.why import explain_execution
from apps.monitoring import sources
from apps.web.status import ClusterStatus, TriggerRow
from apps.web.summary import TOP_BREACHING, ClusterSummary, CounterSummary, Tallied


# ---------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------
#: Named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]: two "state" fields
#: with different choices must not share a generated enum name.
NODE_HEALTH_STATES = ["ok", "degraded", "failing", "unknown", "paused"]
TRIGGER_STATES = ["ok", "breaching", "cooling down", "no data", "disabled", "can never fire"]


class NodeHealthSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=NODE_HEALTH_STATES,
        help_text="degraded: some counters fail while others collect; failing: nothing collects.")
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_error_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    consecutive_failures = serializers.IntegerField()


class NodeStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()
    state = serializers.ChoiceField(choices=NodeState.choices)
    collection_enabled = serializers.BooleanField()
    protected = serializers.BooleanField()
    health = NodeHealthSerializer()


class LatestValueSerializer(serializers.Serializer):
    node_id = serializers.IntegerField()
    value = serializers.FloatField(allow_null=True, help_text="null: no sample among the newest stamps.")
    stamp = serializers.DateTimeField(allow_null=True)
    breaching = serializers.BooleanField()
    stale = serializers.BooleanField(help_text="The newest sample is older than three intervals (rounds were missed).")


class WorstNodeSerializer(serializers.Serializer):
    node_id = serializers.IntegerField()
    node = serializers.CharField()
    value = serializers.FloatField()


class CounterSpreadSerializer(serializers.Serializer):
    nodes = serializers.IntegerField(help_text="Nodes with a newest sample (the figures are over these).")
    min = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True, help_text="Nearest rank: a value some node has.")
    max = serializers.FloatField(allow_null=True)
    breaching = serializers.IntegerField(help_text="Nodes whose newest sample breaches the threshold.")
    worst = WorstNodeSerializer(many=True, help_text=f"The worst breaching nodes (at most {TOP_BREACHING}).")


class ClusterCounterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sources.kinds())
    id = serializers.IntegerField()
    name = serializers.CharField()
    jvm = serializers.CharField(allow_null=True)
    unit = serializers.CharField(allow_blank=True)
    threshold = serializers.FloatField(allow_null=True, help_text="null: the stored threshold is not a finite number.")
    comparison = serializers.CharField()
    interval_s = serializers.IntegerField()
    enabled = serializers.BooleanField()
    error = serializers.CharField(allow_blank=True, help_text="A stored number out of range (the counter is "
                                                            "neither collected nor counted until fixed); "
                                                            "empty when the counter is fine.")
    summary = CounterSpreadSerializer(help_text="The newest samples of every node of the cluster, summed up.")


class CounterStatusSerializer(ClusterCounterSerializer):
    latest = LatestValueSerializer(many=True, help_text="The newest sample of each node of this page.")


class SeriesProgressSerializer(serializers.Serializer):
    label = serializers.CharField()
    kind = serializers.CharField()
    counter_id = serializers.IntegerField()
    counter = serializers.CharField()
    node_id = serializers.IntegerField(allow_null=True, help_text="null: a cluster aggregate.")
    node = serializers.CharField(allow_null=True)
    count = serializers.IntegerField(allow_null=True, help_text="Consecutive breaching samples; null: unknown.")
    needed = serializers.IntegerField(help_text="Samples in a row that fire the trigger.")
    progress = serializers.FloatField(allow_null=True)
    latest_value = serializers.FloatField(allow_null=True)
    latest_stamp = serializers.DateTimeField(allow_null=True)


class TriggerSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    cluster = serializers.CharField()
    state = serializers.ChoiceField(choices=TRIGGER_STATES)
    never_fires = serializers.CharField(allow_blank=True, help_text='Why it can never fire ("no counters"), '
                                                                    "or empty.")
    problems = serializers.ListField(child=serializers.CharField(),
                                     help_text="Counters left out because a stored number is out of range.")
    enabled = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    timing_minutes = serializers.IntegerField()
    cooldown_s = serializers.IntegerField()
    cooldown_left_s = serializers.FloatField(allow_null=True)
    last_fired_at = serializers.DateTimeField(allow_null=True)
    progress = serializers.FloatField(allow_null=True, help_text="The highest series' progress towards firing (0-1).")
    store_error = serializers.CharField(allow_null=True)


class TriggerStatusSerializer(TriggerSummarySerializer):
    series = SeriesProgressSerializer(many=True)


class ClusterSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.CharField(help_text="The cluster's status with its nodes.")
    description = serializers.CharField(allow_blank=True)
    size = serializers.IntegerField(help_text="Running nodes.")
    min_size = serializers.IntegerField()
    max_size = serializers.IntegerField()
    nodes_up = serializers.IntegerField(help_text="Nodes collecting (ok or degraded).")
    nodes_degraded = serializers.IntegerField(help_text="Nodes with some counters failing, others collecting.")
    nodes_failing = serializers.IntegerField(help_text="Nodes of which nothing collects.")
    node_count = serializers.IntegerField(help_text="Nodes not terminated.")
    store_error = serializers.CharField(allow_blank=True)
    counters = ClusterCounterSerializer(many=True)
    triggers = TriggerSummarySerializer(many=True, help_text="Each trigger's series: /api/v1/triggers/<id>/status.")


class ClusterStatusSerializer(ClusterSummarySerializer):
    nodes_matching = serializers.IntegerField(help_text="Nodes matching q (all nodes without q).")
    next = serializers.CharField(allow_null=True, help_text="The next page of nodes.")
    previous = serializers.CharField(allow_null=True, help_text="The previous page of nodes.")
    nodes = NodeStatusSerializer(many=True, help_text="This page of nodes (limit/offset, q, sort).")
    counters = CounterStatusSerializer(many=True)
    triggers = TriggerStatusSerializer(many=True, help_text="Series of this page's nodes and cluster aggregates.")


def trigger_payload(row: TriggerRow) -> dict:
    t, s = row.trigger, row.status
    return {
        "id": t.pk, "name": t.name, "cluster": t.cluster.name, "state": row.state, "enabled": t.enabled,
        "dry_run": t.dry_run, "timing_minutes": t.timing_minutes, "cooldown_s": t.cooldown_s,
        "cooldown_left_s": s.cooldown_left_s if s else None,
        "last_fired_at": t.last_fired_at if s is None else s.last_fired_at,
        "progress": s.progress if s else None,
        "store_error": (s.store_error if s else row.error) or None,
        "never_fires": s.never_fires if s else "", "problems": s.problems if s else [],
        "series": [
            {**{k: getattr(x, k) for k in ("label", "kind", "counter_id", "counter", "node_id", "node", "count",
                                              "needed", "latest_value", "latest_stamp")},
             "progress": x.progress}
            for x in (s.series if s else [])
        ],
    }


def _counter_info(kind, counter, error: str, spread: CounterSummary) -> dict:
    return {"kind": kind.name, "id": counter.pk, "name": counter.name, "jvm": kind.endpoint_name(counter),
            "unit": counter.unit, "threshold": counter.threshold if math.isfinite(counter.threshold) else None,
            "error": error, "comparison": counter.comparison, "interval_s": counter.interval_s,
            "enabled": counter.enabled,
            "summary": {"nodes": spread.nodes, "min": spread.min, "median": spread.median, "p95": spread.p95,
                        "max": spread.max, "breaching": spread.breaching,
                        "worst": [{"node_id": n, "node": name, "value": v} for n, name, v in spread.top]}}


def _cluster_head(status: Tallied, store_error: str) -> dict:
    c = status.cluster
    return {
        "name": c.name, "url": f"/api/v1/clusters/{c.name}", "description": c.description, "size": status.size,
        "min_size": c.min_size, "max_size": c.max_size, "node_count": status.node_count,
        "nodes_up": status.nodes_up, "nodes_degraded": status.nodes_degraded, "nodes_failing": status.nodes_failing,
        "store_error": store_error,
    }


def summary_payload(summary: ClusterSummary) -> dict:
    """A cluster in the list: no per-node entries, whatever its size."""
    triggers = []
    for row in summary.triggers:
        payload = trigger_payload(row)
        del payload["series"]
        triggers.append(payload)
    return {**_cluster_head(summary, summary.store_error),
            "counters": [_counter_info(s.kind, s.counter, s.error, s) for s in summary.counters],
            "triggers": triggers}


def cluster_payload(status: ClusterStatus, spreads: list[CounterSummary], page: dict) -> dict:
    """A cluster with one page of nodes (``page``: nodes_matching, next,
    previous); its triggers' series are those of these nodes and aggregates."""
    shown = {n.pk for n in status.nodes}
    by_key = {s.key: s for s in spreads}
    triggers = []
    for row in status.triggers:
        payload = trigger_payload(row)
        payload["series"] = [x for x in payload["series"] if x["node_id"] is None or x["node_id"] in shown]
        triggers.append(payload)
    return {
        **_cluster_head(status, status.store_error), **page,
        "nodes": [
            {"id": n.pk, "name": n.name, "address": n.address, "state": n.state,
             "collection_enabled": n.collection_enabled, "protected": n.protected,
             "health": vars(status.health[n.pk])}
            for n in status.nodes
        ],
        "counters": [
            {**_counter_info(row.kind, row.counter, row.error, by_key[row.key]),
             "latest": [{"node_id": node_id, **vars(cell)} for node_id, cell in row.latest.items()]}
            for row in status.counters
        ],
        "triggers": triggers,
    }


# ---------------------------------------------------------------------------
# Executions
# ---------------------------------------------------------------------------
class ExecutionStepSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=StepStatus.choices)
    duration_s = serializers.FloatField(allow_null=True)

    class Meta:
        model = ExecutionStep
        fields = ["position", "action_name", "kind", "params", "timeout_s", "status", "started", "finished",
                  "duration_s", "attempts", "output", "error"]


class ExecutionSerializer(serializers.ModelSerializer):
    cluster = serializers.SlugRelatedField(slug_field="name", read_only=True)
    trigger = serializers.SerializerMethodField()
    action = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()
    fired_by_user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    duration_s = serializers.FloatField(allow_null=True)
    url = serializers.SerializerMethodField()
    why_text = serializers.SerializerMethodField(
        help_text="Why it fired, in words (read-only): the breaching values against the threshold, who "
                  "fired it, a dry run or a block, the cooldown. The same sentences as the console's "
                  "execution page; `reasons` (on executions/{id}) holds the record they are made from.",
    )

    class Meta:
        model = Execution
        fields = ["id", "url", "cluster", "trigger", "action", "policy", "automatic", "fired_by", "fired_by_user",
                  "target_node_name", "status", "created", "started", "finished", "duration_s", "size_before",
                  "size_after", "why_text"]

    def get_trigger(self, obj) -> str | None:
        return obj.trigger.name if obj.trigger_id else None

    def get_action(self, obj) -> str | None:
        return obj.action.name if obj.action_id else None

    def get_policy(self, obj) -> str | None:
        """The scaling policy whose chain ran (its decision is in ``reasons``)."""
        return obj.policy.name if obj.policy_id else None

    def get_url(self, obj) -> str:
        return f"/api/v1/executions/{obj.pk}"

    def get_why_text(self, obj) -> str:
        return explain_execution(obj).text


class ExecutionDetailSerializer(ExecutionSerializer):
    steps = ExecutionStepSerializer(many=True, read_only=True)

    class Meta(ExecutionSerializer.Meta):
        fields = ExecutionSerializer.Meta.fields + ["reasons", "log", "steps"]


# ---------------------------------------------------------------------------
# Firing
# ---------------------------------------------------------------------------
class FireRequestSerializer(serializers.Serializer):
    target_node = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=999_999_999_999_999_999,
        help_text="Id of the node the chain acts on (needed by LocalScript, OSConfiguration, "
                  "RemoveEc2Node choose=breaching); must be in the cluster.",
    )


class CollectionRequestSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="true: collect from the node; false: pause collection.")


class NodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    cluster = serializers.CharField()
    state = serializers.CharField()
    collection_enabled = serializers.BooleanField()
