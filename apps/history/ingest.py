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
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone

from django.db import IntegrityError, transaction

from . import partitions, upsert
from .models import AppliedBatch, HourSummary, MinuteSummary
from .placement import DEFERRED, database_for_clusters, databases, still_placed
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
    batch was merged before). Rows go to each cluster's history database;
    those of a cluster being moved are deferred (published again for later)."""
    if not rows:
        return 0
    clusters = clusters_of(row[1] for row in rows)
    merged = 0
    single = len(databases()) == 1  # no move possible: no check needed
    for alias, cluster_ids in database_for_clusters({clusters.get(row[1], 0) for row in rows}).items():
        wanted = set(cluster_ids)
        part = [row for row in rows if clusters.get(row[1], 0) in wanted]
        if not part:
            continue
        if alias == DEFERRED:
            defer(part, batch_id)
            continue
        try:
            check = None if single else (lambda a=alias, c=cluster_ids: still_placed(a, c))
            merged += merge_into(alias, part, clusters, batch_id, now, check=check)
        except Moved:
            defer(part, batch_id)
    return merged


class Moved(Exception):
    """The clusters were frozen for a move while their rows were merged: the
    merge is rolled back and the rows deferred."""


def defer(rows: list[Row], batch_id: str | None) -> None:
    """Publish rows of clusters being moved again, to merge after the move
    (a derived batch id: the deferred part is merged once too)."""
    from django.conf import settings

    from .tasks import summarise_task

    key = f"{batch_id or uuid.uuid4().hex}~deferred"
    summarise_task.apply_async(args=(key, [list(r) for r in rows]), countdown=settings.HISTORY_DEFER_S)
    log.info("history: %d row(s) of a cluster being moved deferred by %s s", len(rows), settings.HISTORY_DEFER_S)


def merge_into(using: str, rows: list[Row], clusters: dict[int, int], batch_id: str | None,
               now: datetime | None = None, check=None) -> int:
    """Merge ``rows`` into database ``using`` in one transaction. A partition
    this process believed in may have been dropped meanwhile (retention run
    elsewhere, a rolled-back creation): then it is created and the merge
    tried once more."""
    try:
        return _merge_once(using, rows, clusters, batch_id, now, check)
    except IntegrityError as exc:
        if "no partition" not in str(exc):
            raise
        partitions.forget(using)
        return _merge_once(using, rows, clusters, batch_id, now, check)


def _merge_once(using: str, rows: list[Row], clusters: dict[int, int], batch_id: str | None,
                now: datetime | None, check) -> int:
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
        # Last, just before committing: a move that froze these clusters
        # meanwhile (it waits HISTORY_MOVE_SETTLE_S before copying) must not
        # lose this merge to the copy it is about to make.
        if check is not None and not check():
            raise Moved()
    return written


def _claim(batch_id: str, samples: int, using: str) -> bool:
    try:
        with transaction.atomic(using=using):
            AppliedBatch.objects.using(using).create(batch_id=batch_id, samples=samples)
    except IntegrityError:
        return False
    return True
