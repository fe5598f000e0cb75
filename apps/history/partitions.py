"""Time partitions of the summary tables on PostgreSQL, and retention.

PostgreSQL: both tables are partitioned by range of ``bucket`` — the minute
table by UTC day, the hour table by UTC month — so retention drops whole
partitions (instant, no dead rows, no vacuum debt) instead of deleting rows.
The periodic maintenance task (apps.history.tasks) creates partitions ahead of
time; a write whose period has no partition yet (a backfill of an old log, a
maintenance task that did not run) creates it first, outside the write's
transaction (creating a partition locks the parent table).

SQLite and MariaDB keep plain tables: retention there is a DELETE of expired
rows, acceptable at the sizes those deployments have.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.db import DatabaseError, connections

from .models import HourSummary, MinuteSummary

log = logging.getLogger(__name__)

#: Partitions created ahead of now by the maintenance task.
AHEAD_DAYS = 3
AHEAD_MONTHS = 2

# Partition names known to exist, per database alias (cleared when dropping).
_known: dict[str, set[str]] = {}


def retention_days(model) -> int:
    if model is MinuteSummary:
        return int(settings.HISTORY_MINUTE_RETENTION_DAYS)
    return int(settings.HISTORY_HOUR_RETENTION_DAYS)


def horizon(model, now: datetime | None = None) -> datetime:
    """The oldest period start ``model`` keeps."""
    now = now or datetime.now(timezone.utc)
    return now - timedelta(days=retention_days(model))


def partitioned(using: str) -> bool:
    return connections[using].vendor == "postgresql"


def span(model, when: datetime) -> tuple[datetime, datetime, str]:
    """The partition holding ``when``: its bounds and its name."""
    when = when.astimezone(timezone.utc)
    base = model._meta.db_table
    if model is MinuteSummary:
        start = when.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1), f"{base}_d{start:%Y%m%d}"
    start = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end, f"{base}_m{start:%Y%m}"


def existing(model, using: str) -> dict[str, tuple[datetime, datetime]]:
    """The partitions of ``model``'s table by name, with their bounds (read
    from their names)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s", [model._meta.db_table])
        names = [row[0] for row in cursor.fetchall()]
    out = {}
    for name in names:
        suffix = name.rsplit("_", 1)[1]
        fmt = "d%Y%m%d" if suffix.startswith("d") else "m%Y%m"
        start = datetime.strptime(suffix, fmt).replace(tzinfo=timezone.utc)
        out[name] = span(model, start)[:2]
    return out


def forget(using: str) -> None:
    """Drop what this process believes exists on ``using``."""
    _known.pop(using, None)


def ensure(model, periods: Iterable[datetime], using: str) -> int:
    """Create the partitions ``periods`` fall in, if missing (PostgreSQL only;
    elsewhere nothing to do). Returns how many were created."""
    if not partitioned(using):
        return 0
    known = _known.setdefault(using, set())
    wanted = {}
    for when in periods:
        start, end, name = span(model, when)
        if name not in known:
            wanted[name] = (start, end)
    if not wanted:
        return 0
    known |= set(existing(model, using))
    created = 0
    for name, (start, end) in sorted(wanted.items()):
        if name not in known:
            created += _create(model, name, start, end, using)
            known.add(name)
    return created


def _create(model, name: str, start: datetime, end: datetime, using: str) -> int:
    connection = connections[using]
    q = connection.ops.quote_name
    sql = (f"CREATE TABLE IF NOT EXISTS {q(name)} PARTITION OF {q(model._meta.db_table)} "
           f"FOR VALUES FROM (%s) TO (%s)")
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, [start, end])
    except DatabaseError as exc:
        # Another process created it at the same moment: fine if it is there now.
        if name not in existing(model, using):
            raise
        log.debug("partition %s created concurrently: %s", name, exc)
        return 0
    log.info("history: created partition %s [%s, %s)", name, start.isoformat(), end.isoformat())
    return 1


def create_ahead(using: str, now: datetime | None = None) -> int:
    now = now or datetime.now(timezone.utc)
    days = [now + timedelta(days=i) for i in range(AHEAD_DAYS + 1)]
    months = [(now.replace(day=1) + timedelta(days=32 * i)) for i in range(AHEAD_MONTHS + 1)]
    return ensure(MinuteSummary, days, using) + ensure(HourSummary, months, using)


def expire(using: str, now: datetime | None = None) -> dict[str, int]:
    """Apply retention: drop partitions wholly older than the horizon
    (PostgreSQL), or delete expired rows (elsewhere). Returns what went, by
    table: partitions dropped or rows deleted."""
    out = {}
    for model in (MinuteSummary, HourSummary):
        oldest = horizon(model, now)
        if not partitioned(using):
            deleted, _ = model.objects.using(using).filter(bucket__lt=oldest).delete()
            out[model._meta.db_table] = deleted
            continue
        dropped = 0
        for name, (_, end) in existing(model, using).items():
            if end <= oldest:
                with connections[using].cursor() as cursor:
                    cursor.execute(f"DROP TABLE IF EXISTS {connections[using].ops.quote_name(name)}")
                _known.get(using, set()).discard(name)
                log.info("history: dropped partition %s (older than %s)", name, oldest.isoformat())
                dropped += 1
        out[model._meta.db_table] = dropped
    return out
