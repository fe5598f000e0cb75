"""Prometheus exposition of PyScaler's figures (/metrics).

A collector builds fresh gauges on every scrape from memcached and the
database (prometheus_client's custom-collector pattern), so no process keeps
global metric state and every web process answers the same. What it reads
per scrape: one ``get_many`` for the newest sample of every counter on every
node, one per trigger for its breach state, and a few aggregate queries.

Metrics (all gauges):
  pyscaler_sample_value{cluster,node,counter,kind,jvm}      newest sample
  pyscaler_sample_timestamp_seconds{...same...}      its stamp
  pyscaler_threshold{cluster,counter,kind,jvm}
  pyscaler_counter_config_error{cluster,counter,kind,jvm,error}  1: a stored number is out of range
                                                     (the counter is neither collected nor counted)
  pyscaler_collection_consecutive_failures{cluster,node,kind}
  pyscaler_collection_last_success_timestamp_seconds{cluster,node,kind}
  pyscaler_nodes_by_health{cluster,health}, pyscaler_collection_series_consecutive_failures{...counter labels...}
                                                     (apps.web.health_metrics)
  pyscaler_nodes{cluster,state}
  pyscaler_executions{cluster,status}
  pyscaler_trigger_breach_progress{cluster,trigger}          0..1 towards firing
  pyscaler_trigger_cooldown_remaining_seconds{cluster,trigger}
  pyscaler_evaluator_lag_seconds{cluster,trigger}            now - newest stamp counted
  pyscaler_sample_store_up                                   memcached readable (1/0)
  pyscaler_collection_unassigned_nodes       due nodes no collect worker had room for (last dispatch)
"""
from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4  # text 0.0.4: every Prometheus reads it

from apps.monitoring import series as series_svc
from apps.monitoring import sources
from apps.monitoring.collection import unassigned_nodes
from apps.monitoring.counters import config_error
from apps.web.health_metrics import health_metrics

COUNTER_LABELS = ["cluster", "node", "counter", "kind", "jvm"]


class PyScalerCollector:
    def __init__(self, store=None, now: datetime | None = None) -> None:
        self.store = store
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or timezone.now()
        store = self.store or series_svc.default_store()
        store_up = yield from self._counters(store, now)
        yield from self._collection_health()
        yield from health_metrics(COUNTER_LABELS)
        yield from self._nodes_and_executions()
        store_up = (yield from self._triggers(store, now)) and store_up
        up = GaugeMetricFamily("pyscaler_sample_store_up", "1 when memcached could be read during this scrape.")
        up.add_metric([], 1.0 if store_up else 0.0)
        yield up
        unassigned = GaugeMetricFamily("pyscaler_collection_unassigned_nodes", "Due nodes the last dispatch "
                                       "left uncollected: no collect worker had room (COLLECT_MAX_NODES_PER_PROCESS).")
        unassigned.add_metric([], float(unassigned_nodes(store)))
        yield unassigned

    # -- counters --------------------------------------------------------
    def _counters(self, store, now: datetime):
        from apps.control.choices import NodeState
        from apps.control.models import Node

        value = GaugeMetricFamily("pyscaler_sample_value", "Newest sample of a counter on a node.",
                                  labels=COUNTER_LABELS)
        stamp = GaugeMetricFamily("pyscaler_sample_timestamp_seconds",
                                  "Time (stamp) of the newest sample of a counter on a node.", labels=COUNTER_LABELS)
        threshold = GaugeMetricFamily("pyscaler_threshold", "A counter's threshold.",
                                      labels=["cluster", "counter", "kind", "jvm"])
        broken = GaugeMetricFamily("pyscaler_counter_config_error",
                                   "1 for a counter stored with a number out of range: neither collected nor counted.",
                                   labels=["cluster", "counter", "kind", "jvm", "error"])
        nodes_by_cluster = defaultdict(list)
        for node in Node.objects.exclude(state=NodeState.TERMINATED).select_related("cluster"):
            nodes_by_cluster[node.cluster_id].append(node)
        wanted = []
        for kind in sources.all():
            for counter in kind.counters():
                cluster_id = kind.cluster_id(counter)
                jvm = kind.endpoint_name(counter) or ""
                cluster = kind.cluster(counter)
                if error := config_error(counter):
                    broken.add_metric([cluster.name, counter.name, kind.name, jvm, error], 1.0)
                    continue
                threshold.add_metric([cluster.name, counter.name, kind.name, jvm], counter.threshold)
                for node in nodes_by_cluster.get(cluster_id, []):
                    labels = [cluster.name, node.name, counter.name, kind.name, jvm]
                    wanted.append((kind.series(counter, node.pk), counter.interval_s, labels))
        ok = True
        try:
            latest = series_svc.latest_samples([(ref, interval) for ref, interval, _ in wanted], now=now, store=store)
        except series_svc.store_errors():
            latest, ok = {}, False
        for ref, _, labels in wanted:
            if ref in latest:
                when, sample = latest[ref]
                value.add_metric(labels, sample)
                stamp.add_metric(labels, when.timestamp())
        yield value
        yield stamp
        yield threshold
        yield broken
        return ok

    # -- collection health -------------------------------------------------
    def _collection_health(self):
        from apps.monitoring.models import CollectionHealth

        failures = GaugeMetricFamily(
            "pyscaler_collection_consecutive_failures",
            "Failed collection rounds in a row (worst of the node's scopes: SSH, each JVM, each counter).",
            labels=["cluster", "node", "kind"],
        )
        success = GaugeMetricFamily("pyscaler_collection_last_success_timestamp_seconds",
                                    "When collection from the node last succeeded.",
                                    labels=["cluster", "node", "kind"])
        rows = (CollectionHealth.objects.values("node__cluster__name", "node__name", "kind")
                .annotate(failures=Max("consecutive_failures"), success=Max("last_success_at"))
                .order_by("node__cluster__name", "node__name", "kind"))
        for row in rows:
            labels = [row["node__cluster__name"], row["node__name"], row["kind"]]
            failures.add_metric(labels, row["failures"] or 0)
            if row["success"] is not None:
                success.add_metric(labels, row["success"].timestamp())
        yield failures
        yield success

    # -- nodes and executions ----------------------------------------------
    def _nodes_and_executions(self):
        from apps.control.models import Execution, Node

        nodes = GaugeMetricFamily("pyscaler_nodes", "Nodes by state.", labels=["cluster", "state"])
        for row in Node.objects.values("cluster__name", "state").annotate(n=Count("id")).order_by():
            nodes.add_metric([row["cluster__name"], row["state"]], row["n"])
        executions = GaugeMetricFamily("pyscaler_executions", "Executions recorded, by status.",
                                       labels=["cluster", "status"])
        for row in Execution.objects.values("cluster__name", "status").annotate(n=Count("id")).order_by():
            executions.add_metric([row["cluster__name"], row["status"]], row["n"])
        yield nodes
        yield executions

    # -- triggers ----------------------------------------------------------
    def _triggers(self, store, now: datetime):
        from apps.control.models import Trigger
        from apps.control.trigger_status import trigger_statuses

        labels = ["cluster", "trigger"]
        progress = GaugeMetricFamily("pyscaler_trigger_breach_progress",
                                     "Highest breach count of the trigger's series over the count that fires it (0-1).",
                                     labels=labels)
        cooldown = GaugeMetricFamily("pyscaler_trigger_cooldown_remaining_seconds",
                                     "Seconds until the trigger may fire again.", labels=labels)
        lag = GaugeMetricFamily("pyscaler_evaluator_lag_seconds",
                                "Now minus the newest sample stamp the evaluator has counted for the trigger "
                                "(about interval + grace when it keeps up; grows when it stops).", labels=labels)
        ok = True
        triggers = list(Trigger.objects.filter(enabled=True).select_related("cluster")
                        .order_by("cluster__name", "name"))
        try:
            # One batched read for every trigger, not one per trigger per scrape.
            statuses = trigger_statuses([t.pk for t in triggers], store=store, now=now)
        except series_svc.store_errors():
            statuses, ok = {}, False
        for trigger in triggers:
            names = [trigger.cluster.name, trigger.name]
            st = statuses.get(trigger.pk)
            if st is None:
                ok = False
                continue
            if st.store_error:
                ok = False
            cooldown.add_metric(names, st.cooldown_left_s)
            if st.progress is not None:
                progress.add_metric(names, st.progress)
            counted = [s.last_counted for s in st.series if s.last_counted is not None]
            if counted:
                lag.add_metric(names, max(0.0, (now - max(counted)).total_seconds()))
        yield progress
        yield cooldown
        yield lag
        return ok


def render_metrics(store=None, now: datetime | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PyScalerCollector(store=store, now=now))
    return generate_latest(registry)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format behind a bearer token (METRICS_TOKEN). Without
    a configured token the endpoint does not exist (404): nothing is exposed
    by accident."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: set METRICS_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = HttpResponse("a valid bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="pyscaler metrics"'
        return response
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
