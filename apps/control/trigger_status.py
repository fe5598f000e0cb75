"""What the console, the API and /metrics show of each trigger: breach
progress, cooldown, newest values. A read-only view of the state the evaluator
keeps in memcached, kept apart from evaluator.py so the hot path holds only
what an evaluation needs and pages never import it."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from . import breach
from .models import Trigger
from .trigger_series import (
    StampGrid,
    Store,
    build_plans,
    counter_problems,
    default_store,
    load_nodes,
    load_triggers,
    never_fires,
    observations,
    sample_keys,
    store_errors,
    trigger_config_error,
)


@dataclass
class SeriesStatus:
    label: str
    kind: str
    counter_id: int
    counter: str
    node_id: int | None
    node: str | None
    count: int | None  # None: state unknown (memcached unreachable or not counted yet)
    needed: int
    last_counted: datetime | None
    latest_value: float | None  # newest sample (aggregate) of the last two stamps
    latest_stamp: datetime | None

    @property
    def progress(self) -> float | None:
        return None if self.count is None else min(1.0, self.count / self.needed)

    @property
    def no_data(self) -> bool:
        return self.latest_value is None


@dataclass
class TriggerStatus:
    trigger_id: int
    enabled: bool
    dry_run: bool
    last_fired_at: datetime | None
    cooldown_left_s: float
    series: list[SeriesStatus]
    store_error: str | None = None
    #: Why the trigger can never fire as configured ("no counters"), or "".
    never_fires: str = ""
    #: Configuration errors that leave some of its counters out ("counter x: interval out of range").
    problems: list[str] = field(default_factory=list)

    @property
    def progress(self) -> float | None:
        known = [s.progress for s in self.series if s.progress is not None]
        return max(known) if known else None


def trigger_status(trigger: Trigger, store: Store | None = None, now: datetime | None = None) -> TriggerStatus:
    """Breach progress of each series of a trigger, its cooldown and last
    firing, read from memcached (one get_many) without changing anything."""
    return trigger_statuses([trigger.pk], store=store, now=now)[trigger.pk]


def trigger_statuses(trigger_ids: Sequence[int] | None = None, store: Store | None = None,
                     now: datetime | None = None) -> dict[int, TriggerStatus]:
    """``trigger_status`` of several triggers (all when ``trigger_ids`` is None)
    with a few queries (one, plus one per counter source, plus the nodes) and
    one get_many in all: what an overview page or the /metrics collector
    should call rather than one status per trigger.

    Raises nothing when memcached is unreachable: each status then has
    ``store_error`` set and unknown (None) counts."""
    now = now or timezone.now()
    store = store or default_store()
    triggers = load_triggers(trigger_ids, enabled_only=False)  # fresh last_fired_at and counters
    nodes = load_nodes(t.cluster_id for t in triggers)
    grid = StampGrid(now)
    plans_of = {t.pk: build_plans(t, nodes.get(t.cluster_id, [])) for t in triggers}
    keys: set[str] = set()
    for plans in plans_of.values():
        for plan in plans:
            keys.add(plan.key)
            keys.update(sample_keys(plan, grid.recent(plan.counter.interval_s, 2), grid))
    error = None
    try:
        values = store.get_many(list(keys)) if keys else {}
    except store_errors() as exc:
        values, error = None, str(exc)
    statuses = {}
    for trigger in triggers:
        cooldown_left = 0.0
        if trigger.last_fired_at is not None and not trigger_config_error(trigger):
            cooldown_left = max(0.0, (trigger.last_fired_at + timedelta(seconds=trigger.cooldown_s) - now)
                                .total_seconds())
        mark = breach.counting_mark(trigger.last_fired_at, trigger.counting_since)
        series = []
        for plan in plans_of[trigger.pk]:
            count = last = latest = latest_stamp = None
            if values is not None:
                state = breach.decode_states(values.get(plan.key)).get(trigger.pk)
                if state is not None:
                    count = 0 if state.fired < mark else state.count
                    last = state.last_stamp
                recent = grid.recent(plan.counter.interval_s, 2)
                for stamp, value in reversed(observations(plan, recent, values, grid, settled=now)):
                    if value is not None:
                        latest, latest_stamp = value, stamp
                        break
            series.append(SeriesStatus(plan.label, plan.counter.kind, plan.counter.id, plan.counter.name,
                                       plan.node_id, plan.node_name, count, plan.needed, last, latest,
                                       latest_stamp))
        statuses[trigger.pk] = TriggerStatus(trigger.pk, trigger.enabled, trigger.dry_run, trigger.last_fired_at,
                                             cooldown_left, series, error, never_fires(trigger),
                                             counter_problems(trigger))
    return statuses
