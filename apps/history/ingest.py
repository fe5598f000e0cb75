"""Merging a batch of samples into the summaries, exactly once.

Idempotence — the choice and why: a batch carries an id (the feed makes one
per collect round, ``uuid4``), and that id is inserted into
``AppliedBatch`` in the same transaction as the merge. A batch delivered
again (Celery redelivers a task whose worker died before acknowledging it)
finds its id there and changes nothing; a worker killed mid-merge rolls the
whole transaction back, id included, so the redelivery merges it. Summarising
from the sample log with an offset was the other way; it would need every
worker host to run its own summariser and lose whatever a dead host had not
read yet, while the task's message is in the broker, durable, whichever host
dies. Imports of sample logs use the offset way instead (apps.history.backfill).

Samples older than a table's retention are left out of it (they would
recreate a partition retention just dropped).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone

from django.db import IntegrityError, transaction

from . import partitions, upsert
from .models import AppliedBatch, HourSummary, MinuteSummary
from .placement import database_for_clusters
from .summary import Row, summarise

log = logging.getLogger(__name__)

MODELS = {60: MinuteSummary, 3600: HourSummary}


def clusters_of(node_ids: Iterable[int]) -> dict[int, int]:
    """Node id -> cluster id, from the configuration database (a node
    deleted since is missing: its rows get cluster 0)."""
    from apps.control.models import Node

    return dict(Node.objects.filter(pk__in=set(node_ids)).values_list("pk", "cluster_id"))


def apply_rows(rows: list[Row], batch_id: str | None = None, now: datetime | None = None) -> int:
    """Merge ``rows`` into the summaries; returns the rows merged (0 when the
    batch was merged before). Rows go to each cluster's history database."""
    if not rows:
        return 0
    clusters = clusters_of(row[1] for row in rows)
    by_db: dict[str, list[Row]] = {}
    for alias, cluster_ids in database_for_clusters(set(clusters.values()) | {0}).items():
        wanted = set(cluster_ids)
        part = [row for row in rows if clusters.get(row[1], 0) in wanted]
        if part:
            by_db[alias] = part
    merged = 0
    for alias, part in by_db.items():
        key = batch_id if batch_id is None or len(by_db) == 1 else f"{batch_id}@{alias}"
        merged += merge_into(alias, part, clusters, key, now)
    return merged


def merge_into(using: str, rows: list[Row], clusters: dict[int, int], batch_id: str | None,
               now: datetime | None = None) -> int:
    """Merge ``rows`` into database ``using`` in one transaction. A partition
    this process believed in may have been dropped meanwhile (retention run
    elsewhere, a rolled-back creation): then it is created and the merge
    tried once more."""
    try:
        return _merge_once(using, rows, clusters, batch_id, now)
    except IntegrityError as exc:
        if "no partition" not in str(exc):
            raise
        partitions.forget(using)
        return _merge_once(using, rows, clusters, batch_id, now)


def _merge_once(using: str, rows: list[Row], clusters: dict[int, int], batch_id: str | None,
                now: datetime | None) -> int:
    now = now or datetime.now(timezone.utc)
    per_resolution = summarise(rows)
    for resolution, model in MODELS.items():
        oldest = partitions.horizon(model, now).timestamp()
        table = per_resolution[resolution]
        for key in [k for k in table if k[1] < oldest]:
            del table[key]
        partitions.ensure(model, {datetime.fromtimestamp(k[1], tz=timezone.utc) for k in table}, using)
    written = 0
    with transaction.atomic(using=using):
        if batch_id is not None and not _claim(batch_id, len(rows), using):
            log.info("history: batch %s was merged before; skipped", batch_id)
            return 0
        for resolution, model in MODELS.items():
            written += upsert.merge(model, per_resolution[resolution], clusters, using)
    return written


def _claim(batch_id: str, samples: int, using: str) -> bool:
    try:
        with transaction.atomic(using=using):
            AppliedBatch.objects.using(using).create(batch_id=batch_id, samples=samples)
    except IntegrityError:
        return False
    return True
