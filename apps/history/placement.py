"""Which database holds a cluster's history (HISTORY_DATABASES, after TAO).

Every cluster's summaries live on exactly one database alias, recorded in the
configuration database (``ClusterPlacement``) when the cluster's first
summaries are written: on the first alias listed at that time. Adding a
server to the list therefore never moves old data; ``manage.py move_history``
does, and while it copies a cluster (state ``frozen``) merges for that
cluster are deferred (apps.history.ingest). Queries read one database each.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from .models import ClusterPlacement, Placement

#: What database_for_clusters answers for clusters being moved.
DEFERRED = ""


def databases() -> list[str]:
    return list(settings.HISTORY_DATABASES)


def placements(cluster_ids: Iterable[int], record: bool = True) -> dict[int, ClusterPlacement]:
    """The clusters' placements; with ``record``, the missing ones are
    recorded now, on the first history database."""
    ids = set(cluster_ids)
    found = ClusterPlacement.objects.using(DEFAULT_DB_ALIAS).in_bulk(list(ids))
    missing = ids - set(found)
    if missing and record:
        ClusterPlacement.objects.using(DEFAULT_DB_ALIAS).bulk_create(
            [ClusterPlacement(cluster_id=cid, alias=databases()[0]) for cid in sorted(missing)],
            ignore_conflicts=True)
        found = ClusterPlacement.objects.using(DEFAULT_DB_ALIAS).in_bulk(list(ids))
    return found


def database_for_clusters(cluster_ids: Iterable[int]) -> dict[str, list[int]]:
    """Alias -> the clusters (of ``cluster_ids``) whose history it holds,
    recording new clusters; clusters being moved are under DEFERRED."""
    out: dict[str, list[int]] = {}
    for cid, placement in sorted(placements(cluster_ids).items()):
        alias = DEFERRED if placement.state == Placement.FROZEN else placement.alias
        out.setdefault(alias, []).append(cid)
    return out


def still_placed(alias: str, cluster_ids: Iterable[int]) -> bool:
    """True while none of the clusters has been frozen for a move or placed
    elsewhere: checked just before a merge commits."""
    current = placements(cluster_ids, record=False)
    return all(p.state != Placement.FROZEN and p.alias == alias for p in current.values())


def database_for(cluster_id: int) -> str:
    """Where to read a cluster's history (nothing recorded by reading)."""
    placement = placements([cluster_id], record=False).get(cluster_id)
    return placement.alias if placement is not None else databases()[0]
