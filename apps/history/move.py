"""Moving one cluster's history to another database (``manage.py move_history``).

Copy, verify, switch, delete — each step recorded in the cluster's
``ClusterPlacement`` (configuration database), so the move is safe to
interrupt at any point and a second run resumes it:

1. **freeze** (state ``frozen``, ``target`` set): merges for the cluster are
   deferred from now on (apps.history.ingest), then the move waits
   HISTORY_MOVE_SETTLE_S for a merge that read the old placement to commit
   (each merge re-checks the placement just before it commits);
2. **copy**: the target's rows of the cluster are cleared (what an earlier,
   interrupted copy left), then every row is copied, table by table, in
   chunks;
3. **verify**: rows and sample counts per table must be equal on both sides,
   or the move stops, still frozen, naming the difference; then the
   cluster's claims (which batches' rows of it are merged,
   apps.history.ingest) are copied, and only its own: a batch with rows of
   other clusters too may not have merged theirs yet;
4. **switch** (state ``cleaning``, ``alias`` = target, ``source`` = old):
   merges go to the target; the deferred ones land there;
5. **delete** the old copy (rows and claims), then state ``placed``.

Queries never join across databases: each step reads one and writes one.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import Count, Sum

from . import partitions
from .ingest import claim_id
from .models import AppliedBatch, ClusterPlacement, HourSummary, MinuteSummary, Placement
from .placement import databases

TABLES = (MinuteSummary, HourSummary)
CHUNK = 5000


class MoveError(RuntimeError):
    pass


def _save(placement: ClusterPlacement, **changes) -> None:
    for name, value in changes.items():
        setattr(placement, name, value)
    placement.save(using=DEFAULT_DB_ALIAS)


def figures(alias: str, cluster_id: int) -> dict[str, tuple[int, int]]:
    """Rows and samples of the cluster per table on ``alias``."""
    out = {}
    for model in TABLES:
        agg = model.objects.using(alias).filter(cluster_id=cluster_id).aggregate(rows=Count("bucket"),
                                                                                 samples=Sum("count"))
        out[model._meta.db_table] = (agg["rows"], agg["samples"] or 0)
    return out


def _copy(model, source: str, target: str, cluster_id: int) -> int:
    model.objects.using(target).filter(cluster_id=cluster_id)._raw_delete(target)
    copied = 0
    rows = model.objects.using(source).filter(cluster_id=cluster_id).order_by("bucket")
    batch = []
    for row in rows.iterator(chunk_size=CHUNK):
        batch.append(row)
        if len(batch) >= CHUNK:
            copied += _write(model, target, batch)
            batch = []
    return copied + _write(model, target, batch)


def _write(model, target: str, batch: list) -> int:
    """Insert one chunk; a partition this process believed in may have been
    dropped meanwhile (retention elsewhere, a server replaced): then it is
    created and the chunk written once more, as ingest.merge_into does."""
    if not batch:
        return 0
    for attempt in (1, 2):
        partitions.ensure(model, {row.bucket for row in batch}, target)
        try:
            with transaction.atomic(using=target):
                model.objects.using(target).bulk_create(batch)
            return len(batch)
        except IntegrityError as exc:
            if attempt == 2 or "no partition" not in str(exc):
                raise
            partitions.forget(target)
    return 0  # not reached


def move(cluster_id: int, target: str, say: Callable[[str], None] = print,
         settle_s: float | None = None) -> None:
    if target not in databases():
        raise MoveError(f"target: {target!r} is not in HISTORY_DATABASES ({', '.join(databases())})")
    placement = ClusterPlacement.objects.using(DEFAULT_DB_ALIAS).filter(cluster_id=cluster_id).first()
    if placement is None:
        raise MoveError(f"cluster {cluster_id} has no history yet (nothing to move)")
    if placement.state == Placement.PLACED:
        if placement.alias == target:
            say(f"cluster {cluster_id}: already on {target}")
            return
        _save(placement, state=Placement.FROZEN, target=target)
        say(f"cluster {cluster_id}: frozen for the move {placement.alias} -> {target}")
        time.sleep(settings.HISTORY_MOVE_SETTLE_S if settle_s is None else settle_s)
    elif placement.state == Placement.FROZEN and placement.target != target:
        raise MoveError(f"cluster {cluster_id} is being moved to {placement.target}: resume with that target")
    if placement.state == Placement.FROZEN:
        _copy_verify_switch(placement, say)
    _delete_old(placement, say)


def _copy_verify_switch(placement: ClusterPlacement, say: Callable[[str], None]) -> None:
    source, target, cluster_id = placement.alias, placement.target, placement.cluster_id
    for model in TABLES:
        copied = _copy(model, source, target, cluster_id)
        say(f"cluster {cluster_id}: copied {copied} row(s) of {model._meta.db_table} to {target}")
    before, after = figures(source, cluster_id), figures(target, cluster_id)
    if before != after:
        raise MoveError(f"cluster {cluster_id}: the copy on {target} differs from {source} "
                        f"({after} != {before}); still frozen: run the move again")
    claims = _copy_claims(source, target, cluster_id)
    say(f"cluster {cluster_id}: copied {claims} claim(s) of merged batches to {target}")
    _save(placement, state=Placement.CLEANING, alias=target, source=source, target="")
    say(f"cluster {cluster_id}: verified {before}; switched to {target}")


def _copy_claims(source: str, target: str, cluster_id: int) -> int:
    """A batch whose rows of the cluster were merged on the source, delivered
    again, must not merge them again on the target; its rows of other
    clusters must still merge (their claims stay where those clusters are).
    A claim written before per-cluster claims (no cluster) covered every
    cluster of its batch on the source, this one included: it is copied as
    this cluster's claim of that id. ``applied_at`` is kept, so maintenance
    forgets copies when it forgets the originals."""
    claims = AppliedBatch.objects.using(source)
    own = (AppliedBatch(batch_id=b, cluster_id=cluster_id, samples=n, applied_at=at)
           for b, n, at in claims.filter(cluster_id=cluster_id).values_list("batch_id", "samples", "applied_at")
           .iterator(chunk_size=CHUNK))
    # How many of an old claim's samples were this cluster's is not known: 0.
    old = (AppliedBatch(batch_id=claim_id(b, cluster_id), cluster_id=cluster_id, samples=0, applied_at=at)
           for b, at in claims.filter(cluster_id__isnull=True).values_list("batch_id", "applied_at")
           .iterator(chunk_size=CHUNK))
    copied = 0
    for chunk in _chunks(chain(own, old)):
        # bulk_create with ignore_conflicts returns every object given: what
        # a resumed move had copied already is counted by the difference.
        before = AppliedBatch.objects.using(target).filter(cluster_id=cluster_id).count()
        AppliedBatch.objects.using(target).bulk_create(chunk, ignore_conflicts=True)
        copied += AppliedBatch.objects.using(target).filter(cluster_id=cluster_id).count() - before
    return copied


def _chunks(items: Iterable) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def _delete_old(placement: ClusterPlacement, say: Callable[[str], None]) -> None:
    if placement.state != Placement.CLEANING:
        return
    for model in TABLES:
        deleted = model.objects.using(placement.source).filter(cluster_id=placement.cluster_id)._raw_delete(
            placement.source)
        say(f"cluster {placement.cluster_id}: deleted {deleted} row(s) of {model._meta.db_table} "
            f"from {placement.source}")
    AppliedBatch.objects.using(placement.source).filter(cluster_id=placement.cluster_id).delete()
    _save(placement, state=Placement.PLACED, source="")
    say(f"cluster {placement.cluster_id}: moved to {placement.alias}")
