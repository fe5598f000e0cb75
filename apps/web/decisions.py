"""A cluster's scaling-policy timeline for the console: the newest decisions
in words (times in the server's time zone) and the desired-vs-actual size
series the timeline chart draws."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from apps.control.models import Cluster, PolicyDecision
from apps.control.policy.words import summary

#: Decisions the cluster page shows (the API pages through all of them).
TIMELINE_DECISIONS = 30


@dataclass
class Timeline:
    rows: list[tuple[PolicyDecision, str]] = field(default_factory=list)
    #: uPlot's data: [epoch seconds], [desired], [actual].
    chart: dict[str, Any] = field(default_factory=dict)


def _local(effects: list[dict]) -> list[dict]:
    out = []
    for effect in effects:
        until = effect.get("until")
        if until:
            from datetime import datetime

            effect = {**effect, "until": timezone.localtime(datetime.fromisoformat(until))}
        out.append(effect)
    return out


def words(decision: PolicyDecision) -> str:
    """The decision in words, its times in the server's time zone."""
    return summary(decision.current, decision.raw_desired, decision.desired, _local(decision.effects or []))


def timeline(cluster: Cluster, limit: int = TIMELINE_DECISIONS) -> Timeline:
    newest = list(PolicyDecision.objects.filter(cluster=cluster).select_related("policy", "execution")
                  .order_by("-created", "-pk")[:limit])
    result = Timeline(rows=[(d, words(d)) for d in newest])
    times, desired, actual = [], [], []
    for d in reversed(newest):
        for moment in dict.fromkeys([d.created, d.evaluated_at]):
            times.append(int(moment.timestamp()))
            desired.append(d.desired)
            actual.append(d.actual)
    result.chart = {"times": times, "desired": desired, "actual": actual}
    return result
