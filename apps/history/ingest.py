"""Merging a batch of samples into the summaries, exactly once per cluster.

Idempotence — the choice and why: a batch carries an id (the feed makes one
per collect round, ``uuid4``), and for each cluster whose rows are merged a
claim ``"<batch>@<cluster>"`` is inserted into ``AppliedBatch`` in the same
transaction as the merge. A batch delivered again (Celery redelivers a task
whose worker died before acknowledging it) merges only the clusters not
claimed yet; a worker killed mid-merge rolls the whole transaction back,
claims included, so the redelivery merges it. Claims are per cluster, not
per batch, because a batch's clusters may live on different history
databases (one transaction each: one may commit and the next fail) and a
moved cluster takes its own claims along (apps.history.move), never those of
the batch's other clusters. A claim written before per-cluster claims (a
plain batch id) covers every cluster of its batch on its database.

Rows of a cluster being moved are published again as ``"<batch>~deferred"``;
their claim is made under the batch's own id, so the deferred part and a
redelivery of the original batch merge those rows once between them.

Summarising from the sample log with an offset was the other way; it would
need every worker host to run its own summariser and lose whatever a dead
host had not read yet, while the task's message is in the broker, durable,
whichever host dies. Imports of sample logs use the offset way instead
(apps.history.backfill).

Samples older than a table's retention are left out of it (they would
recreate a partition retention just dropped).
"""
from __future__ import annotations

import logging
import uuid
from collections import Counter
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
    """Merge ``rows`` into the summaries; returns the summary rows written (0
    when the batch was merged before). Rows go to each cluster's history
    database, one transaction each; those of a cluster being moved are
    deferred (published again for later). Each cluster's rows of a batch are
    merged once, however often and in whatever parts the batch arrives."""
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


#: What a deferred part's id ends with (``defer``).
DEFERRED_SUFFIX = "~deferred"


def defer(rows: list[Row], batch_id: str | None) -> None:
    """Publish rows of clusters being moved again, to merge after the move.
    The id marks the part as deferred, once however often it is deferred
    again; its claims are the batch's own (``claim_id``), so the deferred
    part and a redelivered original cannot both merge the same cluster."""
    from django.conf import settings

    from .tasks import summarise_task

    key = deferred_id(batch_id or uuid.uuid4().hex)
    summarise_task.apply_async(args=(key, [list(r) for r in rows]), countdown=settings.HISTORY_DEFER_S)
    log.info("history: %d row(s) of a cluster being moved deferred by %s s", len(rows), settings.HISTORY_DEFER_S)


def deferred_id(batch_id: str) -> str:
    return base_id(batch_id) + DEFERRED_SUFFIX


def base_id(batch_id: str) -> str:
    """The batch a (possibly deferred, possibly several times before 0003) part belongs to."""
    while batch_id.endswith(DEFERRED_SUFFIX):
        batch_id = batch_id[:-len(DEFERRED_SUFFIX)]
    return batch_id


def claim_id(batch_id: str, cluster_id: int) -> str:
    """The claim that ``cluster_id``'s rows of ``batch_id`` are merged."""
    return f"{batch_id}@{cluster_id}"


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
        if batch_id is not None:
            wanted = Counter(clusters.get(row[1], 0) for row in rows)
            claimed = _claim(batch_id, wanted, using)
            if not claimed:
                log.info("history: batch %s was merged before on %s; skipped", batch_id, using)
                return 0
            if claimed != set(wanted):
                log.info("history: batch %s: cluster(s) %s merged before on %s; merging %s", batch_id,
                         sorted(set(wanted) - claimed), using, sorted(claimed))
                per_resolution = {resolution: {k: v for k, v in table.items() if clusters.get(k[0][1], 0) in claimed}
                                  for resolution, table in per_resolution.items()}
        for resolution, model in MODELS.items():
            written += upsert.merge(model, per_resolution[resolution], clusters, using)
        # Last, just before committing: a move that froze these clusters
        # meanwhile (it waits HISTORY_MOVE_SETTLE_S before copying) must not
        # lose this merge to the copy it is about to make.
        if check is not None and not check():
            raise Moved()
    return written


def _claim(batch_id: str, samples: Counter, using: str) -> set[int]:
    """Claim the clusters of ``samples`` (cluster id -> its samples in the
    batch) not claimed yet for this batch on ``using``; returns those now
    claimed (empty: the batch's rows here were all merged before). Call
    inside the merge's transaction.

    Claimed before means one of: the claim of the batch's own id (a deferred
    part shares its batch's claims); the claim of exactly this id (a claim
    written before 0003 that a move carried over as ``"<id>@<cluster>"``); or
    a claim written before 0003 of this id, no cluster named, which covers
    them all. A delivery of the same batch running at the same time inserts
    the same keys: the primary key makes one of them wait and then fail, and
    the clusters are then claimed one by one."""
    base = base_id(batch_id)
    keys = {cid: {claim_id(base, cid), claim_id(batch_id, cid)} for cid in samples}
    limit = AppliedBatch._meta.get_field("batch_id").max_length
    if max(len(claim_id(base, cid)) for cid in samples) > limit:
        raise ValueError(f"batch_id: {batch_id!r} is too long for a claim "
                         f"(\"<batch id>@<cluster id>\" must fit in {limit} characters)")
    found = set(AppliedBatch.objects.using(using).filter(
        batch_id__in=[batch_id, *{k for ks in keys.values() for k in ks}]).values_list("batch_id", "cluster_id"))
    if (batch_id, None) in found:
        return set()
    todo = [cid for cid in sorted(samples) if not any((k, cid) in found for k in keys[cid])]  # one order: no deadlock
    claims = [AppliedBatch(batch_id=claim_id(base, cid), cluster_id=cid, samples=samples[cid]) for cid in todo]
    try:
        with transaction.atomic(using=using):
            AppliedBatch.objects.using(using).bulk_create(claims)
        return set(todo)
    except IntegrityError:
        pass
    claimed = set()
    for claim in claims:
        try:
            with transaction.atomic(using=using):
                claim.save(using=using, force_insert=True)
        except IntegrityError:
            continue
        claimed.add(claim.cluster_id)
    return claimed
