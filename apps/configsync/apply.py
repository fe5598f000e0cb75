"""Applying a plan: all of it in one transaction, or nothing.

Creates and updates run in section order (a trigger's counters and actions
exist before it), deletes afterwards in the reverse order (a trigger lets go
of an action before the action goes). Each object is validated as admin
validates it; the first refusal rolls everything back and names the object
and the field. A dry run goes through the same steps, so it finds the same
refusals, and rolls back.

Runtime state: a trigger updated in place keeps its row, so its breach counts
(memcached, keyed by trigger id), ``counting_since`` and ``last_fired_at``
(its cooldown) stay. When what it counts changes (timing, aggregation,
missing-data policy, its counters, or a counter's threshold, comparison or
interval), its counting restarts and its cooldown is cleared: counts kept
from another rule would fire it on samples the new rule never judged.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone

from .plan import CREATE, DELETE, Change, Plan
from .sections import CLUSTERS, ConfigError


def apply_plan(plan: Plan, *, dry_run: bool = False) -> Plan:
    """Carry the plan out; ConfigError (nothing changed) when an object is refused."""
    with transaction.atomic():
        restart: set[int] = set()
        for change in plan.changes:
            if change.op != DELETE:
                obj = _write(change)
                if change.semantic:
                    restart.update(_triggers_of(change, obj))
        for change in reversed(plan.changes):
            if change.op == DELETE:
                _delete(change)
        _restart_counting(restart)
        if dry_run:
            transaction.set_rollback(True)
    return plan


def _cluster(name: str):
    from apps.control.models import Cluster

    return Cluster.objects.filter(name=name).first()


def _write(change: Change):
    cluster = _cluster(change.cluster)
    if change.section is CLUSTERS:
        obj = None if change.op == CREATE else cluster
        return CLUSTERS.write(None, obj, change.item, change.title)
    obj = None if change.op == CREATE else change.section.lookup(cluster, change.key)
    return change.section.write(cluster, obj, change.item, change.title)


def _delete(change: Change) -> None:
    cluster = _cluster(change.cluster)
    obj = cluster if change.section is CLUSTERS else change.section.lookup(cluster, change.key)
    if obj is None:
        return
    try:
        with transaction.atomic():
            obj.delete()
    except (ProtectedError, RestrictedError) as exc:
        found = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        users = sorted({_describe(o) for o in found})
        more = f" (and {len(users) - 3} more)" if len(users) > 3 else ""
        raise ConfigError(f"{change.title}: cannot delete, still in use by {', '.join(users[:3])}{more}") from None


def _describe(obj) -> str:
    """What holds on to an object, as an operator knows it (a chain's step:
    its trigger)."""
    from apps.control.models import TriggerAction

    if isinstance(obj, TriggerAction):
        return f"trigger {obj.trigger} (step {obj.position})"
    return f"{obj._meta.verbose_name} {obj}"


def _triggers_of(change: Change, obj) -> list[int]:
    from apps.control.models import Trigger

    if isinstance(obj, Trigger):
        return [obj.pk]
    return list(change.section.triggers_of(obj))


def _restart_counting(trigger_ids: set[int]) -> None:
    from apps.control.models import Trigger

    if trigger_ids:
        Trigger.objects.filter(pk__in=trigger_ids).update(counting_since=timezone.now(), last_fired_at=None)
