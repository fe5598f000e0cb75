"""The periodic upkeep of the history databases: partitions created ahead,
expired periods dropped (apps.history.partitions), and claims of merged
batches (per cluster, or a whole batch's from before 0003) older than any
redelivery forgotten: HISTORY_BATCH_ID_DAYS after the merge, a claim a move
copied included (it keeps its ``applied_at``)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from django.conf import settings

from . import partitions
from .models import AppliedBatch
from .placement import databases


def run(now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    report = {}
    for alias in databases():
        created = partitions.create_ahead(alias, now)
        expired = partitions.expire(alias, now)
        cutoff = now - timedelta(days=int(settings.HISTORY_BATCH_ID_DAYS))
        forgotten, _ = AppliedBatch.objects.using(alias).filter(applied_at__lt=cutoff).delete()
        report[alias] = {"created": created, "expired": expired, "batch_ids_forgotten": forgotten}
    return report
