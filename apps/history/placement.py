"""Which database holds a cluster's history (HISTORY_DATABASES).

Every cluster's summaries live on one database alias. With a single history
database (the default: the configuration database) there is nothing to
choose."""
from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings


def databases() -> list[str]:
    return list(settings.HISTORY_DATABASES)


def database_for_clusters(cluster_ids: Iterable[int]) -> dict[str, list[int]]:
    """Alias -> the clusters (of ``cluster_ids``) whose history it holds."""
    return {databases()[0]: sorted(set(cluster_ids))}


def database_for(cluster_id: int) -> str:
    return next(iter(database_for_clusters([cluster_id])))
